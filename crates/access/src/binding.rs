//! Catalog workspace bindings: which workspaces of an account may use an `ISOLATED` catalog,
//! and how. An `OPEN` catalog (the default) is usable from every workspace of its account; an
//! isolated one, and everything in it, only from the workspaces bound to it, read-only from
//! those bound `BINDING_TYPE_READ_ONLY`. [`AccessModel::workspace_use`] is the one rule every
//! Unity Catalog question asks.

use std::collections::BTreeMap;

use scimitar_domain::WorkspaceId;

use crate::error::AccessError;
use crate::model::AccessModel;
use crate::privilege::{Privilege, PrivilegeSet};
use crate::securable::SecurableType;

/// Whether a catalog is open to every workspace of its account or only to those bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationMode {
    #[default]
    Open,
    Isolated,
}

impl IsolationMode {
    /// The wire name (`OPEN`, `ISOLATED`), as Databricks writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationMode::Open => "OPEN",
            IsolationMode::Isolated => "ISOLATED",
        }
    }

    /// The mode a wire name stands for; anything else (other case included) is `None`.
    pub fn parse(text: &str) -> Option<IsolationMode> {
        match text {
            "OPEN" => Some(IsolationMode::Open),
            "ISOLATED" => Some(IsolationMode::Isolated),
            _ => None,
        }
    }
}

/// What a binding lets a workspace do with an isolated catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BindingType {
    ReadWrite,
    ReadOnly,
}

impl BindingType {
    /// The wire name (`BINDING_TYPE_READ_WRITE`, `BINDING_TYPE_READ_ONLY`).
    pub fn as_str(self) -> &'static str {
        match self {
            BindingType::ReadWrite => "BINDING_TYPE_READ_WRITE",
            BindingType::ReadOnly => "BINDING_TYPE_READ_ONLY",
        }
    }

    /// The binding type a wire name stands for; anything else is `None`.
    pub fn parse(text: &str) -> Option<BindingType> {
        match text {
            "BINDING_TYPE_READ_WRITE" => Some(BindingType::ReadWrite),
            "BINDING_TYPE_READ_ONLY" => Some(BindingType::ReadOnly),
            _ => None,
        }
    }
}

/// How a request made in a workspace may use a securable, by the catalog it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceUse {
    /// Read and write, as its grants allow.
    ReadWrite,
    /// Read only: the catalog is bound to the workspace `BINDING_TYPE_READ_ONLY`.
    ReadOnly,
    /// Not at all: the catalog is isolated and not bound to the workspace, so it and what it
    /// holds do not exist for the request.
    None,
}

/// The privileges that only read: what a workspace bound `BINDING_TYPE_READ_ONLY` may exercise
/// on the catalog's securables. Everything else (creating, modifying, writing files, managing,
/// `ALL_PRIVILEGES` as a whole) changes the catalog, which such a workspace may not.
pub const READ_PRIVILEGES: PrivilegeSet = PrivilegeSet::of(&[
    Privilege::Browse,
    Privilege::Execute,
    Privilege::ReadFiles,
    Privilege::ReadMetadata,
    Privilege::ReadPrivateFiles,
    Privilege::ReadVolume,
    Privilege::Select,
    Privilege::Usage,
    Privilege::UseCatalog,
    Privilege::UseConnection,
    Privilege::UseSchema,
]);

impl WorkspaceUse {
    /// Whether a request made with this use may exercise `privilege`: every privilege when
    /// read-write, only [`READ_PRIVILEGES`] when read-only, none when the catalog is unusable.
    pub fn allows(self, privilege: Privilege) -> bool {
        match self {
            WorkspaceUse::ReadWrite => true,
            WorkspaceUse::ReadOnly => READ_PRIVILEGES.contains(privilege),
            WorkspaceUse::None => false,
        }
    }
}

/// A catalog's isolation and bindings, kept on its slot so that a rename carries them and a
/// drop forgets them.
#[derive(Debug, Clone, Default)]
pub(crate) struct CatalogBindings {
    pub(crate) mode: IsolationMode,
    pub(crate) workspaces: BTreeMap<WorkspaceId, BindingType>,
}

impl AccessModel {
    fn catalog_slot(&self, catalog: &str) -> Result<u32, AccessError> {
        self.catalog.find(SecurableType::Catalog, catalog)
    }

    /// Sets a catalog's isolation mode. Its bindings are kept either way: they apply again
    /// when it is isolated again, as in Databricks.
    pub fn set_isolation_mode(
        &mut self,
        catalog: &str,
        mode: IsolationMode,
    ) -> Result<(), AccessError> {
        let slot = self.catalog_slot(catalog)?;
        self.catalog.slot_mut(slot).bindings.mode = mode;
        Ok(())
    }

    /// Binds a workspace to a catalog as `binding`; `None` unbinds it.
    pub fn bind_workspace(
        &mut self,
        catalog: &str,
        workspace: &WorkspaceId,
        binding: Option<BindingType>,
    ) -> Result<(), AccessError> {
        let slot = self.catalog_slot(catalog)?;
        let workspaces = &mut self.catalog.slot_mut(slot).bindings.workspaces;
        match binding {
            Some(binding) => {
                workspaces.insert(workspace.clone(), binding);
            }
            None => {
                workspaces.remove(workspace);
            }
        }
        Ok(())
    }

    /// Forgets a deleted workspace's bindings, on every catalog.
    pub(crate) fn forget_bindings_of(&mut self, workspace: &WorkspaceId) {
        for slot in &mut self.catalog.slots {
            if slot.kind == SecurableType::Catalog {
                slot.bindings.workspaces.remove(workspace);
            }
        }
    }

    pub fn isolation_mode(&self, catalog: &str) -> Result<IsolationMode, AccessError> {
        let slot = self.catalog_slot(catalog)?;
        Ok(self.catalog.slot(slot).bindings.mode)
    }

    /// The workspaces bound to a catalog, in workspace id order.
    pub fn workspace_bindings(
        &self,
        catalog: &str,
    ) -> Result<Vec<(WorkspaceId, BindingType)>, AccessError> {
        let slot = self.catalog_slot(catalog)?;
        Ok(self
            .catalog
            .slot(slot)
            .bindings
            .workspaces
            .iter()
            .map(|(workspace, binding)| (workspace.clone(), *binding))
            .collect())
    }

    /// How a request made in `workspace` may use a securable, decided by the catalog it is in
    /// (found by the first part of its name, so an object that does not exist yet is held to
    /// its catalog too). A request made in no workspace (the account API), a securable
    /// outside the catalog tree (the metastore, external locations, credentials,
    /// connections), an `OPEN` catalog and a missing one may be used fully; what exists is
    /// decided elsewhere.
    pub fn workspace_use(
        &self,
        workspace: Option<&WorkspaceId>,
        securable_type: SecurableType,
        full_name: &str,
    ) -> WorkspaceUse {
        let Some(workspace) = workspace else {
            return WorkspaceUse::ReadWrite;
        };
        let in_tree =
            securable_type == SecurableType::Catalog || securable_type.parent_type().is_some();
        if !in_tree {
            return WorkspaceUse::ReadWrite;
        }
        let catalog = full_name.split('.').next().unwrap_or(full_name);
        let Ok(slot) = self.catalog_slot(catalog) else {
            return WorkspaceUse::ReadWrite;
        };
        let bindings = &self.catalog.slot(slot).bindings;
        if bindings.mode == IsolationMode::Open {
            return WorkspaceUse::ReadWrite;
        }
        match bindings.workspaces.get(workspace) {
            Some(BindingType::ReadWrite) => WorkspaceUse::ReadWrite,
            Some(BindingType::ReadOnly) => WorkspaceUse::ReadOnly,
            None => WorkspaceUse::None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scimitar_domain::{PrincipalId, PrincipalKind};

    fn model_with_catalog() -> AccessModel {
        let mut model = AccessModel::new();
        let owner = PrincipalId::new("ana");
        model
            .upsert_principal(&owner, PrincipalKind::User, "ana", true)
            .unwrap();
        model
            .create_securable(SecurableType::Catalog, "main", &owner)
            .unwrap();
        model
            .create_securable(SecurableType::Schema, "main.sales", &owner)
            .unwrap();
        model
    }

    #[test]
    fn an_isolated_catalog_is_usable_only_from_the_workspaces_bound_to_it() {
        let mut model = model_with_catalog();
        let (bound, read_only, other) = (
            WorkspaceId::new("1"),
            WorkspaceId::new("2"),
            WorkspaceId::new("3"),
        );
        let schema = (SecurableType::Schema, "main.sales");
        let use_from = |model: &AccessModel, workspace: &WorkspaceId| {
            model.workspace_use(Some(workspace), schema.0, schema.1)
        };
        assert_eq!(use_from(&model, &other), WorkspaceUse::ReadWrite);
        model
            .bind_workspace("main", &bound, Some(BindingType::ReadWrite))
            .unwrap();
        model
            .bind_workspace("main", &read_only, Some(BindingType::ReadOnly))
            .unwrap();
        // Bindings matter only once the catalog is isolated.
        assert_eq!(use_from(&model, &other), WorkspaceUse::ReadWrite);
        model
            .set_isolation_mode("main", IsolationMode::Isolated)
            .unwrap();
        assert_eq!(use_from(&model, &bound), WorkspaceUse::ReadWrite);
        assert_eq!(use_from(&model, &read_only), WorkspaceUse::ReadOnly);
        assert_eq!(use_from(&model, &other), WorkspaceUse::None);
        assert_eq!(
            model.workspace_use(None, schema.0, schema.1),
            WorkspaceUse::ReadWrite
        );
        assert_eq!(
            model.workspace_use(Some(&other), SecurableType::Table, "main.sales.not_yet"),
            WorkspaceUse::None
        );

        // A rename carries them; deleting a workspace forgets its bindings.
        model
            .rename_securable(SecurableType::Catalog, "main", "primary")
            .unwrap();
        assert_eq!(
            model.workspace_use(Some(&other), SecurableType::Schema, "primary.sales"),
            WorkspaceUse::None
        );
        model.forget_workspace(&bound);
        assert_eq!(
            model.workspace_bindings("primary").unwrap(),
            vec![(read_only, BindingType::ReadOnly)]
        );
    }

    #[test]
    fn a_read_only_use_allows_reading_privileges_only() {
        for reading in [
            Privilege::Select,
            Privilege::UseCatalog,
            Privilege::ReadVolume,
        ] {
            assert!(WorkspaceUse::ReadOnly.allows(reading), "{reading}");
            assert!(!WorkspaceUse::None.allows(reading), "{reading}");
        }
        for writing in [
            Privilege::Modify,
            Privilege::CreateTable,
            Privilege::WriteVolume,
            Privilege::Manage,
            Privilege::AllPrivileges,
        ] {
            assert!(!WorkspaceUse::ReadOnly.allows(writing), "{writing}");
            assert!(WorkspaceUse::ReadWrite.allows(writing), "{writing}");
        }
    }
}
