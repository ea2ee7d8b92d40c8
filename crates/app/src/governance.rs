//! The governance service: Unity Catalog objects, their owners and grants, created, changed
//! and read on behalf of a caller, for the Unity Catalog REST API, the Statement Execution API
//! and the CLI alike.
//!
//! Authorisation is by construction. A write can only be committed from an [`Authorized`]
//! value, and only the `authorize_*` methods of [`Caller`] make one, after asking the access
//! engine whether the caller may make the change and whether the change is valid (the
//! securable and principal exist, the privileges apply). Handlers cannot reach
//! [`Services::commit`] for governance any other way than through a [`Caller`].
//!
//! Who may do what follows Databricks (reference section 7): workspace admins (active members
//! of `admins`) may do anything; granting, revoking, transferring ownership and dropping need
//! [`AccessModel::can_manage`] (the owner, an owner above, or a holder of `MANAGE`); creating
//! needs the `CREATE_*` privilege on the parent with the `USE` privileges above it (the
//! engine's [`AccessModel::allows`] applies those), or `CREATE_CATALOG` on the metastore.

use std::sync::Arc;

use scimitar_access::statement::{name_part_problem, SecurableName, SHOW_GRANTS_COLUMNS};
use scimitar_access::{
    parse_statement, AccessError, AccessModel, BindingType, Decision, IsolationMode, Privilege,
    PrivilegeSet, SecurableRef, SecurableType, Statement, WorkspaceUse,
};
use scimitar_domain::{
    AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp, WorkspaceId,
};
use scimitar_store::{Change, GovernanceChange, PrincipalFacts};

use crate::authority::{is_admin, Actor};
use crate::service::Services;

/// The full name the account's one metastore has in the access model. Databricks addresses a
/// metastore by its id; every account here has exactly one, so any id names it, and SQL's
/// `ON METASTORE` takes no name at all.
pub const METASTORE_NAME: &str = "metastore";

/// The governance service over [`Services`]. Cheap to clone.
#[derive(Clone)]
pub struct Governance {
    services: Services,
    /// Serialises governance writes on this node, so that the state a change was checked
    /// against is the state it commits on: without it, a schema could be created in a catalog
    /// being dropped at the same moment. Writes from other nodes are still caught by the
    /// store's constraints.
    writes: Arc<tokio::sync::Mutex<()>>,
}

impl Governance {
    pub fn new(services: Services) -> Governance {
        Governance {
            services,
            writes: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Finds a principal as Databricks names it: a userName, else a group's displayName, else
    /// a service principal's applicationId, each ignoring case. Returns its id and its name
    /// as stored.
    pub async fn principal_named(
        &self,
        account: &AccountId,
        name: &str,
    ) -> ScimResult<(PrincipalId, String)> {
        let store = &self.services.store;
        for kind in [
            PrincipalKind::User,
            PrincipalKind::Group,
            PrincipalKind::ServicePrincipal,
        ] {
            if let Some(principal) = store.principal_by_name(account, kind, name).await? {
                let facts = PrincipalFacts::of(&principal);
                return Ok((facts.id, facts.name));
            }
        }
        Err(ScimError::NotFound(format!(
            "principal `{name}` does not exist: no user has that userName, no group that \
             name and no service principal that applicationId"
        )))
    }

    /// Acts as `actor`: every method of the [`Caller`] is authorised as it.
    pub fn caller(&self, actor: &Actor) -> Caller<'_> {
        Caller {
            governance: self,
            account: actor.account().clone(),
            principal: actor.principal().clone(),
            workspace: actor.workspace().cloned(),
        }
    }
}

/// A securable as the APIs show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Securable {
    pub securable_type: SecurableType,
    /// Canonical (lower case): `main.sales.orders`.
    pub full_name: String,
    /// The owner as Databricks names principals (userName, group name, applicationId).
    pub owner: String,
    pub comment: Option<String>,
    pub created: Timestamp,
    /// A catalog's isolation mode (`OPEN` for every other type).
    pub isolation_mode: IsolationMode,
}

impl Securable {
    /// The last part of the full name.
    pub fn name(&self) -> &str {
        self.full_name
            .rsplit_once('.')
            .map_or(self.full_name.as_str(), |(_, name)| name)
    }
}

/// The account's metastore as the Metastores API shows it. Every account has exactly one,
/// assigned to every workspace of the account (`docs/design/governance-surfaces.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metastore {
    /// [`metastore_id`] of the account.
    pub id: String,
    /// The account's name.
    pub name: String,
    /// Its owner, the metastore admin: the `admins` group until ownership is transferred.
    pub owner: String,
    /// The account's creation time.
    pub created: Timestamp,
}

/// The id of an account's metastore: a UUID derived from the account id (SHA-256, version 8,
/// the version for such custom UUIDs), so that every node names it the same without storing
/// it, and it never equals the account id it is derived from.
pub fn metastore_id(account: &AccountId) -> String {
    let hex = scimitar_domain::credentials::token_digest(&format!("metastore of {account}"));
    let variant = match hex.as_bytes().get(16) {
        Some(digit) => ['8', '9', 'a', 'b'][usize::from(*digit) % 4],
        None => '8',
    };
    format!(
        "{}-{}-8{}-{variant}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// One principal's part of a permissions change: privileges to add and to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeChanges {
    pub principal: String,
    pub add: Vec<Privilege>,
    pub remove: Vec<Privilege>,
}

/// What a `PATCH` of a catalog, schema or table changes: each field that is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurableUpdate {
    /// The object's new name in its parent (a catalog's or a schema's last part).
    pub new_name: Option<String>,
    /// The new comment; an empty one clears it.
    pub comment: Option<String>,
    /// The new owner, as Databricks names principals.
    pub owner: Option<String>,
    /// A catalog's new isolation mode. Isolating a catalog from a workspace binds that
    /// workspace to it (read-write), as Databricks does, so the caller keeps the catalog.
    pub isolation_mode: Option<IsolationMode>,
}

/// What a `PATCH` of a catalog's workspace bindings changes: workspaces to bind (with how)
/// and to unbind, as the caller wrote their ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingChanges {
    pub add: Vec<(String, BindingType)>,
    pub remove: Vec<String>,
}

/// The most workspaces one bindings change may name; an account holds far fewer.
pub const MAX_BINDING_CHANGES: usize = 1_000;

/// The longest comment of a catalog, schema or table, in characters. Names are held to
/// Databricks' 255 characters per part by the statement parser
/// (`scimitar_access::statement::MAX_NAME_PART_CHARS`); a comment is free text, kept with the
/// securable and returned by every read of it.
pub const MAX_COMMENT_CHARACTERS: usize = 1024;

fn check_comment(comment: Option<&str>) -> ScimResult<()> {
    match comment {
        Some(text)
            if text.chars().take(MAX_COMMENT_CHARACTERS + 1).count() > MAX_COMMENT_CHARACTERS =>
        {
            Err(ScimError::invalid_value(format!(
                "a comment is at most {MAX_COMMENT_CHARACTERS} characters"
            )))
        }
        _ => Ok(()),
    }
}

/// The most distinct entries one permissions update may carry (after [`without_repeated_changes`]).
/// Each entry is resolved and written on its own, so the number bounds one request's work; a
/// thousand principals changed at once is far beyond what a person or a sync tool sends.
pub const MAX_PRIVILEGE_CHANGES: usize = 1_000;

/// The entries of a permissions update, each with its privilege lists sorted and deduplicated,
/// leaving out an entry identical to the last one kept for the same principal: applying it
/// again would change nothing, yet it would be resolved, written and logged once more. An
/// identical entry that follows a different one for the same principal is kept, because the
/// entry between may have undone it (add, remove, add).
pub fn without_repeated_changes(changes: Vec<PrivilegeChanges>) -> Vec<PrivilegeChanges> {
    let mut kept: Vec<PrivilegeChanges> = Vec::new();
    let mut last_for_principal: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    for change in changes {
        let normalized = PrivilegeChanges {
            add: change
                .add
                .iter()
                .copied()
                .collect::<PrivilegeSet>()
                .iter()
                .collect(),
            remove: change
                .remove
                .iter()
                .copied()
                .collect::<PrivilegeSet>()
                .iter()
                .collect(),
            principal: change.principal,
        };
        if let Some(&index) = last_for_principal.get(&normalized.principal) {
            if kept.get(index) == Some(&normalized) {
                continue;
            }
        }
        last_for_principal.insert(normalized.principal.clone(), kept.len());
        kept.push(normalized);
    }
    kept
}

/// The privileges granted to one principal on one securable itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub principal: String,
    pub privileges: PrivilegeSet,
}

/// One privilege a principal holds, and the catalog or schema above it is inherited from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub privilege: Privilege,
    pub inherited_from: Option<SecurableRef>,
}

/// Everything one principal holds on a securable, with where each privilege comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveAssignment {
    pub principal: String,
    pub privileges: Vec<Effective>,
}

/// One row of `SHOW GRANTS`: a privilege (`OWN` for ownership) held on `on`, which is the
/// securable itself or a catalog or schema above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantLine {
    pub principal: String,
    /// SQL spelling: `SELECT`, `USE CATALOG`, `OWN`.
    pub action: String,
    pub on: SecurableRef,
}

/// What a statement produced: nothing to show, or rows under named columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Rows {
        columns: Vec<&'static str>,
        rows: Vec<Vec<String>>,
    },
    /// Rows whose cells may be null: the answer of a query of `system.access.audit`
    /// (`crate::audit_sql`).
    Table {
        columns: Vec<&'static str>,
        rows: Vec<Vec<Option<String>>>,
    },
}

/// Governance changes the caller has been found allowed to make and the engine found valid.
/// Private fields: only this module makes one, so only checked changes are committed.
struct Authorized(Vec<GovernanceChange>);

/// The governance service acting for one principal of one account. Made only from an
/// [`Actor`], so every write is authorised as a principal that authenticated (or an operator
/// acting as one).
pub struct Caller<'a> {
    governance: &'a Governance,
    account: AccountId,
    principal: PrincipalId,
    /// The workspace the request addresses (`None`: the account API or an operator): an
    /// `ISOLATED` catalog is usable only from the workspaces bound to it
    /// ([`AccessModel::workspace_use`], asked by [`Caller::visible`] and
    /// [`Caller::writable`]).
    workspace: Option<WorkspaceId>,
}

impl Caller<'_> {
    fn services(&self) -> &Services {
        &self.governance.services
    }

    /// Answers a question from the account's access model.
    fn read<T>(&self, question: impl FnOnce(&AccessModel) -> T) -> ScimResult<T> {
        self.services().access.read(&self.account, question)
    }

    fn is_admin(&self, model: &AccessModel) -> bool {
        is_admin(model, &self.principal)
    }

    /// The only way a governance change is written.
    async fn commit(&self, authorized: Authorized) -> ScimResult<()> {
        let Authorized(mut changes) = authorized;
        let change = match changes.len() {
            0 => return Ok(()),
            1 => match changes.pop() {
                Some(change) => Change::Governance(change),
                None => return Ok(()),
            },
            _ => Change::GovernanceBatch(changes),
        };
        self.services().commit(&self.account, change).await
    }

    async fn resolve(&self, name: &str) -> ScimResult<(PrincipalId, String)> {
        self.governance.principal_named(&self.account, name).await
    }

    /// The securable an address names, as its own type and canonical name: a view addressed
    /// as a table is the view ([`SecurableType::also_addresses`], the one rule). Every read
    /// and grant by address starts here; `DROP TABLE` and `ALTER TABLE` in SQL do not, as
    /// Databricks refuses them on a view.
    fn addressed(
        &self,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<(SecurableType, String)> {
        let full_name = canonical_name(securable_type, full_name)?;
        let found = self.read(|model| {
            let found = model.addressed_type(securable_type, &full_name);
            // A view the caller may not see stays a missing table: "VIEW ... does not
            // exist" would tell that a view of that name exists.
            if found == securable_type || self.visible(model, found, &full_name) {
                found
            } else {
                securable_type
            }
        })?;
        Ok((found, full_name))
    }

    // ----- reads -----------------------------------------------------------------------------

    /// One securable, if the caller may see it (a workspace admin, one who may manage it, or
    /// one who holds any privilege on it).
    pub async fn get(
        &self,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<Securable> {
        let (securable_type, full_name) = self.addressed(securable_type, full_name)?;
        let row = self
            .services()
            .store
            .securable(&self.account, securable_type, &full_name)
            .await?
            .ok_or_else(|| not_found(securable_type, &full_name))?;
        let visible = self.read(|model| self.visible(model, securable_type, &full_name))?;
        if !visible {
            // Said as "does not exist", as Databricks does, so names cannot be probed.
            return Err(not_found(securable_type, &full_name));
        }
        let owner = self.read(|model| owner_name(model, securable_type, &full_name))?;
        Ok(Securable {
            securable_type,
            full_name: row.full_name,
            owner,
            comment: row.comment,
            created: row.created,
            isolation_mode: row.isolation_mode,
        })
    }

    /// The securables of a type the caller may see, by name; below `parent` when given
    /// (which must exist).
    pub async fn list(
        &self,
        securable_type: SecurableType,
        parent: Option<&str>,
    ) -> ScimResult<Vec<Securable>> {
        let parent = match (parent, securable_type.parent_type()) {
            (Some(parent), Some(parent_type)) => {
                let parent = canonical_name(parent_type, parent)?;
                let exists = self.read(|model| model.owner(parent_type, &parent).is_ok())?;
                if !exists {
                    return Err(not_found(parent_type, &parent));
                }
                Some((parent_type, parent))
            }
            _ => None,
        };
        let rows = self
            .services()
            .store
            .securables(
                &self.account,
                securable_type,
                parent.as_ref().map(|(_, name)| name.as_str()),
            )
            .await?;
        self.read(|model| {
            let listed: Vec<Securable> = rows
                .into_iter()
                .filter(|row| self.visible(model, row.securable_type, &row.full_name))
                .map(|row| Securable {
                    owner: owner_name(model, row.securable_type, &row.full_name),
                    securable_type: row.securable_type,
                    full_name: row.full_name,
                    comment: row.comment,
                    created: row.created,
                    isolation_mode: row.isolation_mode,
                })
                .collect();
            // A container the caller may not see, holding nothing it may see, is answered
            // as a missing one: an empty list would say it exists.
            match &parent {
                Some((parent_type, parent))
                    if listed.is_empty() && !self.visible(model, *parent_type, parent) =>
                {
                    Err(not_found(*parent_type, parent))
                }
                _ => Ok(listed),
            }
        })?
    }

    /// The grants made on the securable itself (`GET /permissions`), per principal; only
    /// `principal`'s when given.
    pub async fn grants(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        principal: Option<&str>,
    ) -> ScimResult<Vec<Assignment>> {
        let (securable_type, full_name) = self.addressed(securable_type, full_name)?;
        let only = self.resolve_filter(principal).await?;
        self.read(|model| {
            self.may_read_grants(model, securable_type, &full_name, only.as_ref())?;
            let grants = match model.grants_on(securable_type, &full_name) {
                Ok(grants) => grants,
                Err(AccessError::UnknownSecurable { .. })
                    if securable_type == SecurableType::Metastore =>
                {
                    Vec::new()
                }
                Err(error) => return Err(ScimError::from(error)),
            };
            Ok(grants
                .into_iter()
                .filter(|(grantee, _)| only.as_ref().is_none_or(|(id, _)| *id == grantee.id))
                .map(|(grantee, privileges)| Assignment {
                    principal: grantee.name,
                    privileges,
                })
                .collect())
        })?
    }

    /// What principals hold on the securable, granted there or inherited from above, through
    /// their groups or ownership (`GET /effective-permissions`). With `principal`, that
    /// principal only (a user's privileges through its groups included); without, every
    /// principal granted something on the securable or above it, and its owner.
    pub async fn effective(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        principal: Option<&str>,
    ) -> ScimResult<Vec<EffectiveAssignment>> {
        let (securable_type, full_name) = self.addressed(securable_type, full_name)?;
        let only = self.resolve_filter(principal).await?;
        self.read(|model| {
            self.may_read_grants(model, securable_type, &full_name, only.as_ref())?;
            if securable_type == SecurableType::Metastore
                && model.owner(securable_type, &full_name).is_err()
            {
                return Ok(Vec::new());
            }
            let subjects: Vec<(PrincipalId, String)> = match only {
                Some(subject) => vec![subject],
                None => holders(model, securable_type, &full_name).map_err(ScimError::from)?,
            };
            let mut assignments = Vec::new();
            for (id, name) in subjects {
                let mut privileges: Vec<Effective> = Vec::new();
                for held in model
                    .effective_privileges(&id, securable_type, &full_name)
                    .map_err(ScimError::from)?
                {
                    let effective = Effective {
                        privilege: held.privilege,
                        inherited_from: held.inherited_from,
                    };
                    // Held several ways (own grant, a group's, ownership) is one entry per
                    // place it is held on, as Databricks lists it.
                    if !privileges.contains(&effective) {
                        privileges.push(effective);
                    }
                }
                assignments.push(EffectiveAssignment {
                    principal: name,
                    privileges,
                });
            }
            Ok(assignments)
        })?
    }

    /// `SHOW GRANTS`: the owner (`OWN`), the grants on the securable, and the grants on the
    /// catalog and schema above it that reach it (what they pass down, and the `USE`
    /// privileges that reading it needs).
    pub async fn show_grants(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        principal: Option<&str>,
    ) -> ScimResult<Vec<GrantLine>> {
        let (securable_type, full_name) = self.addressed(securable_type, full_name)?;
        let only = self.resolve_filter(principal).await?;
        self.read(|model| {
            self.may_read_grants(model, securable_type, &full_name, only.as_ref())?;
            let wanted = |id: &PrincipalId| only.as_ref().is_none_or(|(only, _)| only == id);
            let mut lines = Vec::new();
            let target = SecurableRef::new(securable_type, full_name.clone());
            match model.owner(securable_type, &full_name) {
                Ok(owner) => {
                    if wanted(&owner.id) {
                        lines.push(GrantLine {
                            principal: owner.name,
                            action: "OWN".to_string(),
                            on: target.clone(),
                        });
                    }
                }
                // The metastore exists once something is granted on it.
                Err(_) if securable_type == SecurableType::Metastore => return Ok(lines),
                Err(error) => return Err(ScimError::from(error)),
            }
            for on in lineage(securable_type, &full_name) {
                let reaching = if on == target {
                    PrivilegeSet::of(Privilege::ALL)
                } else {
                    on.securable_type.inheritable().union(PrivilegeSet::of(&[
                        Privilege::AllPrivileges,
                        Privilege::UseCatalog,
                        Privilege::UseSchema,
                    ]))
                };
                let grants = model
                    .grants_on(on.securable_type, &on.full_name)
                    .map_err(ScimError::from)?;
                for (grantee, privileges) in grants {
                    if !wanted(&grantee.id) {
                        continue;
                    }
                    for privilege in privileges.intersection(reaching).iter() {
                        lines.push(GrantLine {
                            principal: grantee.name.clone(),
                            action: privilege.as_sql(),
                            on: on.clone(),
                        });
                    }
                }
            }
            Ok(lines)
        })?
    }

    // ----- the metastore ---------------------------------------------------------------------

    /// The account's metastore, for any principal of the account (`metastores.current` and
    /// `summary` are asked by every client that starts).
    pub async fn metastore(&self) -> ScimResult<Metastore> {
        let account = self
            .services()
            .accounts()
            .await?
            .into_iter()
            .find(|account| account.id == self.account)
            .ok_or_else(|| ScimError::NotFound(format!("account {} not found", self.account)))?;
        let owner = self.read(|model| {
            model
                .owner(SecurableType::Metastore, METASTORE_NAME)
                .map(|owner| owner.name)
                .ok()
        })?;
        Ok(Metastore {
            id: metastore_id(&self.account),
            name: account.name,
            // The metastore is registered with `admins` as its owner when first granted on.
            owner: owner.unwrap_or_else(|| "admins".to_string()),
            created: account.created,
        })
    }

    /// The metastore with this id, for a metastore admin (`metastores.get`, `list`): an admin
    /// of the account or a member of the metastore's owner. An id that is not the account's
    /// metastore's does not exist.
    pub async fn metastore_for_admin(&self, id: Option<&str>) -> ScimResult<Metastore> {
        let admin = self.read(|model| {
            self.is_admin(model)
                || model
                    .can_manage(&self.principal, SecurableType::Metastore, METASTORE_NAME)
                    .is_ok_and(|decision| decision.allowed)
        })?;
        if !admin {
            return Err(ScimError::Forbidden(
                "permission denied: only a metastore admin may read the metastore".into(),
            ));
        }
        let metastore = self.metastore().await?;
        match id {
            Some(id) if !id.eq_ignore_ascii_case(&metastore.id) => Err(ScimError::NotFound(
                format!("METASTORE `{id}` does not exist"),
            )),
            _ => Ok(metastore),
        }
    }

    /// The workspaces a catalog is bound to, by workspace id, for one who may manage it (its
    /// owner, an admin), as Databricks asks. Bindings matter only while the catalog is
    /// `ISOLATED`, and are kept (and listed) either way.
    pub async fn workspace_bindings(
        &self,
        catalog: &str,
    ) -> ScimResult<Vec<(WorkspaceId, BindingType)>> {
        let catalog = canonical_name(SecurableType::Catalog, catalog)?;
        self.read(|model| {
            self.may_manage(
                model,
                SecurableType::Catalog,
                &catalog,
                "read the bindings of",
            )?;
            model.workspace_bindings(&catalog).map_err(ScimError::from)
        })?
    }

    /// Binds and unbinds workspaces of the caller's account to a catalog, in one change, for
    /// one who may manage it; removals first, so naming a workspace in both rebinds it.
    /// Every workspace must be of the account: one of another account, or none, is a 404
    /// that does not say which of the two it is. Returns the bindings as they then are.
    pub async fn update_workspace_bindings(
        &self,
        catalog: &str,
        changes: BindingChanges,
    ) -> ScimResult<Vec<(WorkspaceId, BindingType)>> {
        let catalog = canonical_name(SecurableType::Catalog, catalog)?;
        if changes.add.len() + changes.remove.len() > MAX_BINDING_CHANGES {
            return Err(ScimError::invalid_value(format!(
                "a bindings change may name at most {MAX_BINDING_CHANGES} workspaces"
            )));
        }
        // Authorized before any workspace id is looked at, so that one who may not manage
        // the catalog learns nothing of which workspaces exist.
        self.read(|model| {
            self.may_manage(
                model,
                SecurableType::Catalog,
                &catalog,
                "change the bindings of",
            )
        })??;
        let mut own = std::collections::HashSet::new();
        for workspace in self.services().store.workspaces(&self.account).await? {
            own.insert(workspace.id.to_string());
        }
        let resolve = |id: &str| {
            if own.contains(id) {
                Ok(WorkspaceId::new(id))
            } else {
                Err(ScimError::NotFound(format!(
                    "workspace `{id}` does not exist"
                )))
            }
        };
        let mut authorized = Vec::new();
        for id in &changes.remove {
            authorized.push(GovernanceChange::BindWorkspace {
                catalog: catalog.clone(),
                workspace: resolve(id)?,
                binding_type: None,
            });
        }
        for (id, binding_type) in &changes.add {
            authorized.push(GovernanceChange::BindWorkspace {
                catalog: catalog.clone(),
                workspace: resolve(id)?,
                binding_type: Some(*binding_type),
            });
        }
        let _turn = self.governance.writes.lock().await;
        self.read(|model| {
            self.may_manage(
                model,
                SecurableType::Catalog,
                &catalog,
                "change the bindings of",
            )
        })??;
        self.commit(Authorized(authorized)).await?;
        drop(_turn);
        self.read(|model| model.workspace_bindings(&catalog).map_err(ScimError::from))?
    }

    // ----- writes ----------------------------------------------------------------------------

    /// Creates a securable owned by the caller. With `if_not_exists`, an existing one is
    /// returned as it is.
    pub async fn create(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        comment: Option<String>,
        if_not_exists: bool,
    ) -> ScimResult<Securable> {
        let full_name = canonical_name(securable_type, full_name)?;
        check_comment(comment.as_deref())?;
        let _turn = self.governance.writes.lock().await;
        let authorized =
            self.read(|model| self.authorize_create(model, securable_type, &full_name, comment))?;
        match authorized {
            Ok(authorized) => self.commit(authorized).await?,
            Err(CreateRefused::Exists(_)) if if_not_exists => {}
            Err(CreateRefused::Exists(error)) | Err(CreateRefused::Other(error)) => {
                return Err(error)
            }
        }
        drop(_turn);
        self.get_unchecked(securable_type, &full_name).await
    }

    /// Drops a securable and everything in it. A catalog or schema that is not empty is
    /// dropped only with `cascade`; a missing one is fine with `if_exists`.
    pub async fn drop(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        if_exists: bool,
        cascade: bool,
    ) -> ScimResult<()> {
        let full_name = canonical_name(securable_type, full_name)?;
        let _turn = self.governance.writes.lock().await;
        // Authorized before anything about the object is looked at: one that the caller may
        // not see is missing to it (so `IF EXISTS` is a no-op, as for a missing one), and
        // only one who may drop it learns what it holds.
        let exists =
            self.read(|model| self.exists_for_caller(model, securable_type, &full_name))?;
        if !exists {
            return if if_exists {
                Ok(())
            } else {
                Err(not_found(securable_type, &full_name))
            };
        }
        let authorized = self.read(|model| {
            self.authorize_managing(model, securable_type, &full_name, "drop")
                .map(|()| {
                    Authorized(vec![GovernanceChange::DropSecurable {
                        securable_type,
                        full_name: full_name.clone(),
                    }])
                })
        })??;
        if !cascade {
            let mut contents = 0;
            for child_type in child_types(securable_type) {
                contents += self
                    .services()
                    .store
                    .securables(&self.account, *child_type, Some(&full_name))
                    .await?
                    .len();
            }
            if contents > 0 {
                return Err(ScimError::invalid_value(format!(
                    "{securable_type} `{full_name}` is not empty: it holds {contents} \
                     object(s); drop it with CASCADE (or force=true) to drop them too"
                )));
            }
        }
        self.commit(authorized).await
    }

    /// Transfers ownership (`ALTER ... OWNER TO`).
    pub async fn set_owner(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        owner: &str,
    ) -> ScimResult<()> {
        let full_name = canonical_name(securable_type, full_name)?;
        let (owner, _) = self.resolve(owner).await?;
        let _turn = self.governance.writes.lock().await;
        let authorized = self.read(|model| {
            self.authorize_ownership_transfer(model, securable_type, &full_name)?;
            Ok::<_, ScimError>(Authorized(vec![GovernanceChange::SetOwner {
                securable_type,
                full_name: full_name.clone(),
                owner,
            }]))
        })??;
        self.commit(authorized).await
    }

    /// Changes a catalog's, schema's or table's name, comment and owner (`PATCH`), all in one
    /// change: a rename carries everything below the object and every grant on it, and the
    /// comment and owner are set on the new name. Renaming and the comment need what
    /// managing the object needs; the owner, [`Caller::authorize_ownership_transfer`]'s rule.
    /// Returns the object as it then is.
    pub async fn update(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        update: SecurableUpdate,
    ) -> ScimResult<Securable> {
        let (securable_type, full_name) = self.addressed(securable_type, full_name)?;
        check_comment(update.comment.as_deref())?;
        if update.isolation_mode.is_some() && securable_type != SecurableType::Catalog {
            return Err(ScimError::invalid_value(format!(
                "only a catalog has an isolation mode, not a {securable_type}"
            )));
        }
        let renamed = match &update.new_name {
            Some(new_name) => self.new_full_name(securable_type, &full_name, new_name)?,
            None => None,
        };
        let owner = match &update.owner {
            Some(owner) => Some(self.resolve(owner).await?.0),
            None => None,
        };
        let _turn = self.governance.writes.lock().await;
        let authorized = self.read(|model| {
            if !self.exists_for_caller(model, securable_type, &full_name) {
                return Err(not_found(securable_type, &full_name));
            }
            let mut changes = Vec::new();
            let mut name = full_name.clone();
            if let Some(new_name) = &renamed {
                self.authorize_managing(model, securable_type, &full_name, "rename")?;
                if model.owner(securable_type, new_name).is_ok() {
                    return Err(ScimError::from(AccessError::SecurableExists {
                        securable_type,
                        full_name: new_name.clone(),
                    }));
                }
                changes.push(GovernanceChange::RenameSecurable {
                    securable_type,
                    full_name: full_name.clone(),
                    new_name: new_name.clone(),
                });
                name = new_name.clone();
            }
            if let Some(comment) = &update.comment {
                self.authorize_managing(model, securable_type, &full_name, "comment on")?;
                changes.push(GovernanceChange::SetComment {
                    securable_type,
                    full_name: name.clone(),
                    comment: Some(comment.clone()).filter(|text| !text.is_empty()),
                });
            }
            if let Some(owner) = owner {
                self.authorize_ownership_transfer(model, securable_type, &full_name)?;
                changes.push(GovernanceChange::SetOwner {
                    securable_type,
                    full_name: name.clone(),
                    owner,
                });
            }
            if let Some(isolation_mode) = update.isolation_mode {
                self.authorize_managing(model, securable_type, &full_name, "isolate")?;
                changes.extend(self.isolation_changes(model, &full_name, &name, isolation_mode)?);
            }
            Ok(Authorized(changes))
        })??;
        self.commit(authorized).await?;
        drop(_turn);
        self.get_unchecked(securable_type, renamed.as_deref().unwrap_or(&full_name))
            .await
    }

    /// The changes that give a catalog (`full_name`, to be named `name`) an isolation mode:
    /// isolating it from a workspace also binds that workspace read-write, unless it is bound
    /// already, so that the caller is not shut out of what it has just isolated.
    fn isolation_changes(
        &self,
        model: &AccessModel,
        full_name: &str,
        name: &str,
        isolation_mode: IsolationMode,
    ) -> ScimResult<Vec<GovernanceChange>> {
        let mut changes = vec![GovernanceChange::SetIsolationMode {
            catalog: name.to_string(),
            isolation_mode,
        }];
        if let (IsolationMode::Isolated, Some(workspace)) = (isolation_mode, &self.workspace) {
            let bound = model
                .workspace_bindings(full_name)
                .map_err(ScimError::from)?
                .iter()
                .any(|(id, _)| id == workspace);
            if !bound {
                changes.push(GovernanceChange::BindWorkspace {
                    catalog: name.to_string(),
                    workspace: workspace.clone(),
                    binding_type: Some(BindingType::ReadWrite),
                });
            }
        }
        Ok(changes)
    }

    /// The full name `new_name` gives an object (the last part replaced); `None` when it is
    /// the name it has. Only catalogs and schemas are renamed, as in Databricks' API.
    fn new_full_name(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        new_name: &str,
    ) -> ScimResult<Option<String>> {
        if !matches!(
            securable_type,
            SecurableType::Catalog | SecurableType::Schema
        ) {
            return Err(ScimError::invalid_value(format!(
                "a {securable_type} is not renamed here: only catalogs and schemas take                  `new_name`"
            )));
        }
        if let Some(problem) = name_part_problem(new_name) {
            return Err(ScimError::invalid_value(format!(
                "`new_name` `{new_name}` is not a valid name: {problem}"
            )));
        }
        let renamed = match full_name.rsplit_once('.') {
            Some((parent, _)) => format!("{parent}.{new_name}"),
            None => new_name.to_string(),
        };
        let renamed = canonical_name(securable_type, &renamed)?;
        Ok((renamed != full_name).then_some(renamed))
    }

    /// Tables and views whose schema and name match SQL `LIKE` patterns (`%` any run, `_` one
    /// character, `\` escaping either; case ignored as names are), in one catalog, as far as
    /// the caller may see them, by full name (`GET /table-summaries`).
    pub async fn table_summaries(
        &self,
        catalog: &str,
        schema_pattern: Option<&str>,
        table_pattern: Option<&str>,
    ) -> ScimResult<Vec<Securable>> {
        let catalog = canonical_name(SecurableType::Catalog, catalog)?;
        let exists = self.read(|model| model.owner(SecurableType::Catalog, &catalog).is_ok())?;
        if !exists {
            return Err(not_found(SecurableType::Catalog, &catalog));
        }
        let mut rows = Vec::new();
        for kind in [SecurableType::Table, SecurableType::View] {
            rows.extend(
                self.services()
                    .store
                    .securables(&self.account, kind, Some(&catalog))
                    .await?,
            );
        }
        let matches = |pattern: Option<&str>, name: &str| {
            pattern.is_none_or(|pattern| like(&pattern.to_lowercase(), name))
        };
        rows.retain(|row| {
            let mut parts = row.full_name.split('.').skip(1);
            let (schema, table) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            matches(schema_pattern, schema) && matches(table_pattern, table)
        });
        rows.sort_by(|a, b| a.full_name.cmp(&b.full_name));
        self.read(|model| {
            let listed: Vec<Securable> = rows
                .into_iter()
                .filter(|row| self.visible(model, row.securable_type, &row.full_name))
                .map(|row| Securable {
                    owner: owner_name(model, row.securable_type, &row.full_name),
                    securable_type: row.securable_type,
                    full_name: row.full_name,
                    comment: row.comment,
                    created: row.created,
                    isolation_mode: row.isolation_mode,
                })
                .collect();
            // As for any list: a catalog the caller may not see, holding nothing it may see
            // (among what was asked for), is answered as a missing one.
            if listed.is_empty() && !self.visible(model, SecurableType::Catalog, &catalog) {
                return Err(not_found(SecurableType::Catalog, &catalog));
            }
            Ok(listed)
        })?
    }

    /// Applies grants and revokes for several principals as one change: either every one is
    /// valid and allowed and all commit together, or nothing changes. Within one principal's
    /// entry, removals are applied before additions, so "remove ALL, add SELECT" leaves
    /// SELECT. Revoking `ALL_PRIVILEGES` revokes every privilege it stands for as well.
    pub async fn update_privileges(
        &self,
        securable_type: SecurableType,
        full_name: &str,
        changes: Vec<PrivilegeChanges>,
    ) -> ScimResult<()> {
        let (securable_type, full_name) = self.addressed(securable_type, full_name)?;
        let changes = without_repeated_changes(changes);
        if changes.len() > MAX_PRIVILEGE_CHANGES {
            return Err(ScimError::invalid_value(format!(
                "a permissions update may carry at most {MAX_PRIVILEGE_CHANGES} distinct changes, \
                 this one has {}",
                changes.len()
            )));
        }
        let mut resolved = Vec::with_capacity(changes.len());
        for change in changes {
            let (id, _) = self.resolve(&change.principal).await?;
            resolved.push((id, change));
        }
        let metastore = if securable_type == SecurableType::Metastore {
            self.metastore_creation().await?
        } else {
            None
        };
        let _turn = self.governance.writes.lock().await;
        let authorized = self.read(|model| {
            self.authorize_privileges(model, securable_type, &full_name, metastore, resolved)
        })??;
        self.commit(authorized).await
    }

    /// Parses and runs one statement of governance SQL, or a query of `system.access.audit`;
    /// a statement that does not parse is an `invalidSyntax` error whose message names the
    /// offending token and its offset.
    pub async fn run_sql(
        &self,
        text: &str,
        catalog: Option<&str>,
        schema: Option<&str>,
    ) -> ScimResult<Outcome> {
        // A SELECT is a query of the audit trail (`system.access.audit`), the one table.
        let audit_query = scimitar_access::statement::audit_query::parse_audit_query(text)
            .map_err(|error| ScimError::from(AccessError::from(error)))?;
        if let Some(query) = audit_query {
            let services = &self.governance.services;
            return crate::audit_sql::run(
                services,
                &self.account,
                &self.principal,
                self.workspace.as_ref(),
                query,
            )
            .await;
        }
        let statement =
            parse_statement(text).map_err(|error| ScimError::from(AccessError::from(error)))?;
        self.execute(statement, catalog, schema).await
    }

    /// Runs one parsed statement; names that are not fully qualified take the session's
    /// `catalog` and `schema`.
    pub async fn execute(
        &self,
        statement: Statement,
        catalog: Option<&str>,
        schema: Option<&str>,
    ) -> ScimResult<Outcome> {
        match statement {
            Statement::Create(create) => {
                let (securable_type, full_name) = qualify(&create.securable, catalog, schema)?;
                // OR REPLACE keeps the object, its owner and its grants, as Databricks does
                // for a replaced table; the registry has nothing else to replace.
                self.create(
                    securable_type,
                    &full_name,
                    create.comment,
                    create.if_not_exists || create.or_replace,
                )
                .await
                .map(|_| Outcome::Done)
            }
            Statement::Drop(drop) => {
                let (securable_type, full_name) = qualify(&drop.securable, catalog, schema)?;
                self.drop(securable_type, &full_name, drop.if_exists, drop.cascade)
                    .await
                    .map(|()| Outcome::Done)
            }
            Statement::SetOwner(change) => {
                let (securable_type, full_name) = qualify(&change.securable, catalog, schema)?;
                self.set_owner(securable_type, &full_name, change.owner.as_str())
                    .await
                    .map(|()| Outcome::Done)
            }
            Statement::Grant(grant) => {
                let (securable_type, full_name) = qualify(&grant.securable, catalog, schema)?;
                let changes = vec![PrivilegeChanges {
                    principal: grant.principal.as_str().to_string(),
                    add: grant.privileges.iter().collect(),
                    remove: Vec::new(),
                }];
                self.update_privileges(securable_type, &full_name, changes)
                    .await
                    .map(|()| Outcome::Done)
            }
            Statement::Revoke(revoke) => {
                let (securable_type, full_name) = qualify(&revoke.securable, catalog, schema)?;
                let changes = vec![PrivilegeChanges {
                    principal: revoke.principal.as_str().to_string(),
                    add: Vec::new(),
                    remove: revoke.privileges.iter().collect(),
                }];
                self.update_privileges(securable_type, &full_name, changes)
                    .await
                    .map(|()| Outcome::Done)
            }
            Statement::ShowGrants(show) => {
                let (securable_type, full_name) = qualify(&show.securable, catalog, schema)?;
                let principal = show.principal.as_ref().map(|name| name.as_str());
                let lines = self
                    .show_grants(securable_type, &full_name, principal)
                    .await?;
                Ok(Outcome::Rows {
                    columns: SHOW_GRANTS_COLUMNS.to_vec(),
                    rows: lines
                        .into_iter()
                        .map(|line| {
                            vec![
                                line.principal,
                                line.action,
                                line.on.securable_type.as_str().to_string(),
                                if line.on.securable_type == SecurableType::Metastore {
                                    String::new()
                                } else {
                                    line.on.full_name
                                },
                            ]
                        })
                        .collect(),
                })
            }
        }
    }

    // ----- authorisation ---------------------------------------------------------------------

    /// A securable whose existence the caller has just established, without the visibility
    /// check (the creator owns what it created; an existing one it was told about exists).
    async fn get_unchecked(
        &self,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<Securable> {
        let row = self
            .services()
            .store
            .securable(&self.account, securable_type, full_name)
            .await?
            .ok_or_else(|| not_found(securable_type, full_name))?;
        let owner = self.read(|model| owner_name(model, securable_type, full_name))?;
        Ok(Securable {
            securable_type,
            full_name: row.full_name,
            owner,
            comment: row.comment,
            created: row.created,
            isolation_mode: row.isolation_mode,
        })
    }

    fn authorize_create(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
        comment: Option<String>,
    ) -> Result<Authorized, CreateRefused> {
        let other = CreateRefused::Other;
        if securable_type == SecurableType::Metastore {
            return Err(other(ScimError::invalid_value(
                "the metastore exists once per account and is not created",
            )));
        }
        // Authorized before looking for the object: whether a name is taken is told only to
        // one who may create there.
        let parent = securable_type.parent_type().zip(
            full_name
                .rsplit_once('.')
                .map(|(parent, _)| parent.to_string()),
        );
        if let Some((parent_type, parent_name)) = &parent {
            // A parent the caller may not see is missing to it, like one that is.
            if !self.usable_here(model, *parent_type, parent_name)
                || (!self.is_admin(model) && !self.visible(model, *parent_type, parent_name))
                || model.owner(*parent_type, parent_name).is_err()
            {
                return Err(other(ScimError::from(AccessError::MissingParent {
                    securable_type,
                    full_name: full_name.to_string(),
                    parent_type: *parent_type,
                    parent_name: parent_name.clone(),
                })));
            }
        }
        if !self.is_admin(model) {
            let (needed, on_type, on_name) = match (&parent, creation_privilege(securable_type)) {
                (Some((parent_type, parent_name)), Some(needed)) => {
                    (needed, *parent_type, parent_name.as_str())
                }
                (None, Some(needed)) => (needed, SecurableType::Metastore, METASTORE_NAME),
                (_, None) => {
                    return Err(other(ScimError::Forbidden(format!(
                        "only workspace admins may create a {securable_type}"
                    ))))
                }
            };
            let decision = model.check(&self.principal, needed, on_type, on_name);
            let what = format!("create {securable_type} `{full_name}`");
            match decision {
                Ok(decision) if decision.allowed => {}
                Ok(decision) => return Err(other(denied(&what, &decision))),
                // No metastore yet: nobody holds CREATE_CATALOG on it.
                Err(AccessError::UnknownSecurable { .. }) => {
                    return Err(other(ScimError::Forbidden(format!(
                        "permission denied: cannot {what}: it needs {} on the metastore, \
                         which only a workspace admin can grant",
                        needed.as_sql()
                    ))))
                }
                Err(error) => return Err(other(ScimError::from(error))),
            }
        }
        if let Some((parent_type, parent_name)) = &parent {
            self.writable(model, *parent_type, parent_name)
                .map_err(other)?;
        }
        // Tables and views share one namespace.
        let namesakes: &[SecurableType] = match securable_type {
            SecurableType::Table | SecurableType::View => {
                &[SecurableType::Table, SecurableType::View]
            }
            _ => std::slice::from_ref(&securable_type),
        };
        if let Some(existing) = namesakes
            .iter()
            .find(|kind| model.owner(**kind, full_name).is_ok())
        {
            return Err(CreateRefused::Exists(ScimError::from(
                AccessError::SecurableExists {
                    securable_type: *existing,
                    full_name: full_name.to_string(),
                },
            )));
        }
        Ok(Authorized(vec![GovernanceChange::CreateSecurable {
            securable_type,
            full_name: full_name.to_string(),
            owner: self.principal.clone(),
            comment,
            created: self.services().clock.now().truncated_to_millis(),
        }]))
    }

    /// Admins, and whoever [`AccessModel::can_manage`] allows, may change grants, ownership
    /// and existence.
    /// A change to the securable (in a catalog bound read-only to the addressed workspace,
    /// refused).
    fn authorize_managing(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
        verb: &str,
    ) -> ScimResult<()> {
        self.may_manage(model, securable_type, full_name, verb)?;
        self.writable(model, securable_type, full_name)
    }

    /// Whether the caller may manage the securable, which need not be a change to it (reading
    /// or changing its workspace bindings).
    fn may_manage(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
        verb: &str,
    ) -> ScimResult<()> {
        // The metastore is one per account and no secret; any other securable the caller
        // may not see does not exist for it.
        if securable_type != SecurableType::Metastore
            && !self.exists_for_caller(model, securable_type, full_name)
        {
            return Err(not_found(securable_type, full_name));
        }
        if self.is_admin(model) {
            return model
                .owner(securable_type, full_name)
                .map(drop)
                .map_err(ScimError::from);
        }
        let decision = model
            .can_manage(&self.principal, securable_type, full_name)
            .map_err(ScimError::from)?;
        if decision.allowed {
            Ok(())
        } else {
            Err(denied(
                &format!("{verb} {securable_type} `{full_name}`"),
                &decision,
            ))
        }
    }

    /// Who may transfer ownership, by `ALTER ... OWNER TO` and by `PATCH` alike: an admin,
    /// or one who may manage the object (its owner, the owner of its catalog or schema, the
    /// metastore owner, a holder of `MANAGE`) and may use the catalog and schema it is in, as
    /// Databricks states it for tables (the catalog owner with `USE CATALOG`, the schema owner
    /// with `USE CATALOG`, the table owner with both `USE` privileges; an owner above holds
    /// what it owns implicitly).
    fn authorize_ownership_transfer(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<()> {
        self.authorize_managing(model, securable_type, full_name, "change the owner of")?;
        if self.is_admin(model) {
            return Ok(());
        }
        let parent = securable_type.parent_type().zip(
            full_name
                .rsplit_once('.')
                .map(|(parent, _)| parent.to_string()),
        );
        let Some((parent_type, parent_name)) = parent else {
            return Ok(());
        };
        let needed = match parent_type {
            SecurableType::Schema => Privilege::UseSchema,
            _ => Privilege::UseCatalog,
        };
        // `USE SCHEMA` on the schema is asked with `USE CATALOG` on its catalog.
        let decision = model
            .check(&self.principal, needed, parent_type, &parent_name)
            .map_err(ScimError::from)?;
        if decision.allowed {
            Ok(())
        } else {
            Err(denied(
                &format!("change the owner of {securable_type} `{full_name}`"),
                &decision,
            ))
        }
    }

    fn authorize_privileges(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
        metastore: Option<GovernanceChange>,
        changes: Vec<(PrincipalId, PrivilegeChanges)>,
    ) -> ScimResult<Authorized> {
        let mut authorized = Vec::new();
        let metastore_missing = securable_type == SecurableType::Metastore
            && model.owner(securable_type, full_name).is_err();
        if metastore_missing {
            // Only an admin can be the first to grant on the metastore: nobody owns it yet.
            if !self.is_admin(model) {
                return Err(ScimError::Forbidden(
                    "permission denied: only workspace admins may grant on the metastore".into(),
                ));
            }
            authorized.extend(metastore);
        } else {
            self.authorize_managing(model, securable_type, full_name, "change grants on")?;
        }
        let applicable = securable_type.applicable();
        for (principal, change) in changes {
            // Resolved from storage; the engine must know it too, or the grant would not apply.
            model.groups_of(&principal).map_err(ScimError::from)?;
            for privilege in change.add.iter().chain(&change.remove) {
                if !applicable.contains(*privilege) {
                    return Err(ScimError::from(AccessError::PrivilegeNotApplicable {
                        privilege: *privilege,
                        securable_type,
                    }));
                }
            }
            if !change.remove.is_empty() {
                let mut removed: PrivilegeSet = change.remove.iter().copied().collect();
                if removed.contains(Privilege::AllPrivileges) {
                    removed = removed.union(securable_type.all_privileges_expansion());
                }
                authorized.push(GovernanceChange::Revoke {
                    securable_type,
                    full_name: full_name.to_string(),
                    principal: principal.clone(),
                    privileges: removed.iter().collect(),
                });
            }
            if !change.add.is_empty() {
                authorized.push(GovernanceChange::Grant {
                    securable_type,
                    full_name: full_name.to_string(),
                    principal,
                    privileges: change
                        .add
                        .iter()
                        .copied()
                        .collect::<PrivilegeSet>()
                        .iter()
                        .collect(),
                });
            }
        }
        Ok(Authorized(authorized))
    }

    /// The change that creates the metastore, owned by `admins`, for when something is first
    /// granted on it; `None` when it exists.
    async fn metastore_creation(&self) -> ScimResult<Option<GovernanceChange>> {
        let exists = self.read(|model| {
            model
                .owner(SecurableType::Metastore, METASTORE_NAME)
                .is_ok()
        })?;
        if exists {
            return Ok(None);
        }
        let admins = self
            .services()
            .store
            .principal_by_name(&self.account, PrincipalKind::Group, "admins")
            .await?
            .ok_or_else(|| ScimError::internal("the account has no `admins` group"))?;
        Ok(Some(GovernanceChange::CreateSecurable {
            securable_type: SecurableType::Metastore,
            full_name: METASTORE_NAME.to_string(),
            owner: admins.id,
            comment: None,
            created: self.services().clock.now().truncated_to_millis(),
        }))
    }

    async fn resolve_filter(
        &self,
        principal: Option<&str>,
    ) -> ScimResult<Option<(PrincipalId, String)>> {
        match principal.map(str::trim).filter(|name| !name.is_empty()) {
            Some(name) => self.resolve(name).await.map(Some),
            None => Ok(None),
        }
    }

    /// Who may read grants: admins, whoever may manage the securable, and a principal asking
    /// about itself (Databricks' rule for `SHOW GRANTS`).
    fn may_read_grants(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
        only: Option<&(PrincipalId, String)>,
    ) -> ScimResult<()> {
        if securable_type != SecurableType::Metastore
            && !self.exists_for_caller(model, securable_type, full_name)
        {
            return Err(not_found(securable_type, full_name));
        }
        if self.is_admin(model) || only.is_some_and(|(id, _)| *id == self.principal) {
            return Ok(());
        }
        let decision = match model.can_manage(&self.principal, securable_type, full_name) {
            Ok(decision) => decision,
            Err(_) => {
                return Err(ScimError::Forbidden(
                    "permission denied: only workspace admins may read the metastore's grants"
                        .into(),
                ))
            }
        };
        if decision.allowed {
            Ok(())
        } else {
            Err(denied(
                &format!("read the grants on {securable_type} `{full_name}`"),
                &decision,
            ))
        }
    }

    /// Whether the securable exists as far as the caller may know: it exists and the caller
    /// may see it. Every question about a securable asks this before anything else, and
    /// answers "does not exist" when it is false, so a caller without privileges gets the same
    /// answer for an object that exists and one that does not, as Databricks answers it
    /// (`docs/design/governance-surfaces.md`).
    fn exists_for_caller(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
    ) -> bool {
        model.owner(securable_type, full_name).is_ok()
            && self.visible(model, securable_type, full_name)
    }

    /// Whether the caller may see a securable: an admin, one who may manage it, or one who
    /// holds any privilege on it.
    /// A securable in a catalog that the addressed workspace may not use is not visible to
    /// anyone there, admins included.
    fn visible(&self, model: &AccessModel, securable_type: SecurableType, full_name: &str) -> bool {
        self.usable_here(model, securable_type, full_name)
            && visible_to(model, &self.principal, securable_type, full_name)
    }

    /// Whether the workspace the request addresses may use the securable at all: the one
    /// rule of catalog workspace bindings, [`AccessModel::workspace_use`].
    fn usable_here(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
    ) -> bool {
        model.workspace_use(self.workspace.as_ref(), securable_type, full_name)
            != WorkspaceUse::None
    }

    /// Refuses a write to a securable in a catalog bound read-only to the addressed
    /// workspace. Asked after the securable was found to exist for the caller.
    fn writable(
        &self,
        model: &AccessModel,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<()> {
        match model.workspace_use(self.workspace.as_ref(), securable_type, full_name) {
            WorkspaceUse::ReadWrite => Ok(()),
            WorkspaceUse::ReadOnly | WorkspaceUse::None => Err(ScimError::Forbidden(format!(
                "permission denied: {securable_type} `{full_name}` is in a catalog bound \
                 read-only to this workspace"
            ))),
        }
    }
}

/// Whether `principal` may see a securable: an admin, one who may manage it, or one who holds
/// any privilege on it. A securable that does not exist is visible only to admins; every
/// question about one that is not visible is answered as about a missing one.
pub(crate) fn visible_to(
    model: &AccessModel,
    principal: &PrincipalId,
    securable_type: SecurableType,
    full_name: &str,
) -> bool {
    is_admin(model, principal)
        || model
            .can_manage(principal, securable_type, full_name)
            .is_ok_and(|decision| decision.allowed)
        || model
            .effective_privileges(principal, securable_type, full_name)
            .is_ok_and(|held| !held.is_empty())
}

/// Why a create was refused: because the object exists (fine with `IF NOT EXISTS`) or not.
enum CreateRefused {
    Exists(ScimError),
    Other(ScimError),
}

/// The privilege on the parent (or the metastore) that creating a type needs; `None` for the
/// types only admins create here.
fn creation_privilege(securable_type: SecurableType) -> Option<Privilege> {
    match securable_type {
        SecurableType::Catalog => Some(Privilege::CreateCatalog),
        SecurableType::Schema => Some(Privilege::CreateSchema),
        // Databricks asks CREATE TABLE for views too.
        SecurableType::Table | SecurableType::View => Some(Privilege::CreateTable),
        SecurableType::Volume => Some(Privilege::CreateVolume),
        SecurableType::Function => Some(Privilege::CreateFunction),
        SecurableType::RegisteredModel => Some(Privilege::CreateModel),
        SecurableType::ExternalLocation => Some(Privilege::CreateExternalLocation),
        SecurableType::StorageCredential => Some(Privilege::CreateStorageCredential),
        SecurableType::Connection => Some(Privilege::CreateConnection),
        SecurableType::Metastore => None,
    }
}

/// The types that live directly in a container.
fn child_types(securable_type: SecurableType) -> &'static [SecurableType] {
    match securable_type {
        SecurableType::Catalog => &[SecurableType::Schema],
        SecurableType::Schema => &[
            SecurableType::Table,
            SecurableType::View,
            SecurableType::Volume,
            SecurableType::Function,
            SecurableType::RegisteredModel,
        ],
        _ => &[],
    }
}

/// The securable and the schema and catalog above it, itself first.
fn lineage(securable_type: SecurableType, full_name: &str) -> Vec<SecurableRef> {
    let mut lineage = vec![SecurableRef::new(securable_type, full_name)];
    let mut at = (securable_type, full_name);
    while let (Some(parent_type), Some((parent_name, _))) =
        (at.0.parent_type(), at.1.rsplit_once('.'))
    {
        lineage.push(SecurableRef::new(parent_type, parent_name));
        at = (parent_type, parent_name);
    }
    lineage
}

/// Everyone granted something on the securable or on a catalog or schema above it, and its
/// owner: the principals effective-permissions lists when not asked about one.
fn holders(
    model: &AccessModel,
    securable_type: SecurableType,
    full_name: &str,
) -> Result<Vec<(PrincipalId, String)>, AccessError> {
    let owner = model.owner(securable_type, full_name)?;
    // A catalog may be granted to thousands: duplicates are found by hashing, not by
    // searching the list for each grantee.
    let mut seen = std::collections::HashSet::from([owner.id.clone()]);
    let mut holders = vec![(owner.id, owner.name)];
    for on in lineage(securable_type, full_name) {
        for (grantee, _) in model.grants_on(on.securable_type, &on.full_name)? {
            if seen.insert(grantee.id.clone()) {
                holders.push((grantee.id, grantee.name));
            }
        }
    }
    Ok(holders)
}

fn owner_name(model: &AccessModel, securable_type: SecurableType, full_name: &str) -> String {
    model
        .owner(securable_type, full_name)
        .map(|owner| owner.name)
        .unwrap_or_default()
}

pub(crate) fn not_found(securable_type: SecurableType, full_name: &str) -> ScimError {
    ScimError::from(AccessError::UnknownSecurable {
        securable_type,
        full_name: full_name.to_string(),
    })
}

/// A 403 naming what was attempted and every requirement that is missing.
fn denied(what: &str, decision: &Decision) -> ScimError {
    let missing: Vec<String> = decision.missing.iter().map(ToString::to_string).collect();
    ScimError::Forbidden(format!(
        "permission denied: cannot {what}: {}",
        missing.join("; ")
    ))
}

/// Checks a full name given outside SQL (a REST path or field) and folds it to lower case, as
/// Unity Catalog does, in Unicode NFC (`scimitar_domain::names`), so a composed and a
/// decomposed "é" are one name. The metastore has one name whatever its id is written as.
pub fn canonical_name(securable_type: SecurableType, full_name: &str) -> ScimResult<String> {
    if securable_type == SecurableType::Metastore {
        return Ok(METASTORE_NAME.to_string());
    }
    let parts: Vec<&str> = full_name.split('.').collect();
    let wanted = securable_type.name_parts();
    if parts.len() != wanted {
        return Err(ScimError::invalid_value(format!(
            "`{full_name}` is not a {securable_type} name: it has {wanted} dot-separated \
             part(s)"
        )));
    }
    if let Some(problem) = parts.iter().find_map(|part| name_part_problem(part)) {
        return Err(ScimError::invalid_value(format!(
            "`{full_name}` is not a valid {securable_type} name: {problem}"
        )));
    }
    Ok(scimitar_domain::names::normalise(&full_name.to_lowercase()).into_owned())
}

/// A statement's name completed with the session's catalog and schema, and checked.
fn qualify(
    name: &SecurableName,
    catalog: Option<&str>,
    schema: Option<&str>,
) -> ScimResult<(SecurableType, String)> {
    let securable_type = name.securable_type;
    if securable_type == SecurableType::Metastore {
        return Ok((securable_type, METASTORE_NAME.to_string()));
    }
    let missing = securable_type.name_parts().saturating_sub(name.parts.len());
    let session = [catalog, schema];
    if session
        .iter()
        .take(missing)
        .any(|part| part.is_none_or(|part| part.trim().is_empty()))
    {
        return Err(ScimError::invalid_value(format!(
            "{securable_type} `{}` is not fully qualified: write it as {} or give the \
             request a catalog{}",
            name.full_name(),
            match securable_type.name_parts() {
                3 => "catalog.schema.name",
                _ => "catalog.name",
            },
            if missing > 1 { " and a schema" } else { "" }
        )));
    }
    let qualified = name.qualified(catalog.unwrap_or(""), schema.unwrap_or(""));
    let full_name = canonical_name(securable_type, &qualified.full_name())?;
    Ok((securable_type, full_name))
}

/// SQL `LIKE`: `%` matches any run of characters, `_` exactly one, and a backslash makes the next
/// character literal. Iterative, with one remembered `%` to fall back to, so no pattern can
/// make it take more than length of pattern times length of text steps.
pub fn like(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Token {
        Any,
        One,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            other => Token::Char(other),
        });
    }
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut fallback: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Any) => {
                fallback = Some((p, t));
                p += 1;
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match fallback {
                Some((star, from)) => {
                    p = star + 1;
                    t = from + 1;
                    fallback = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|token| *token == Token::Any)
}

#[cfg(test)]
mod like_tests {
    use super::like;

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("%", ""));
        assert!(like("sales%", "sales_2024"));
        assert!(like("%_2024", "sales_2024"));
        assert!(like("s_les", "sales"));
        assert!(!like("s_les", "sles"));
        assert!(like("a%b%c", "axxbyyc"));
        assert!(!like("a%b%c", "axxbyy"));
        assert!(like("sales\\_2024", "sales_2024"));
        assert!(!like("sales\\_2024", "salesx2024"));
        assert!(like("", ""));
        assert!(!like("", "a"));
        assert!(!like("abc", "ab"));
    }
}
