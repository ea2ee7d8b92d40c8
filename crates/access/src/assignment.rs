//! Workspace assignment: which principals of an account may use which of its workspaces, and
//! as what. A principal reaches a workspace when it, or a group it is in (directly or through
//! nested groups), is assigned there; `ADMIN` wins over `USER` wherever both reach it.

use std::collections::BTreeMap;

use scimitar_domain::{PrincipalId, WorkspaceId};

use crate::error::AccessError;
use crate::explain::PrincipalRef;
use crate::model::AccessModel;

/// What an assignment gives in a workspace, in Databricks' words. Ordered: `Admin` is more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkspacePermission {
    /// May use the workspace (its APIs, with whatever else it is granted).
    User,
    /// Administers the workspace: its directory view, its objects, its assignments' users.
    Admin,
}

impl WorkspacePermission {
    /// The wire name (`USER`, `ADMIN`), case-sensitive as in Databricks.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspacePermission::User => "USER",
            WorkspacePermission::Admin => "ADMIN",
        }
    }

    /// The permission a wire name stands for; anything else (other case included) is `None`.
    pub fn parse(text: &str) -> Option<WorkspacePermission> {
        match text {
            "USER" => Some(WorkspacePermission::User),
            "ADMIN" => Some(WorkspacePermission::Admin),
            _ => None,
        }
    }
}

/// Every assignment of an account, by workspace, then principal slot. Ordered maps: the
/// lists are small (principals are assigned mostly through groups) and read in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Assignments {
    by_workspace: BTreeMap<WorkspaceId, BTreeMap<u32, WorkspacePermission>>,
}

impl Assignments {
    fn forget_slot(&mut self, slot: u32) {
        for assigned in self.by_workspace.values_mut() {
            assigned.remove(&slot);
        }
    }
}

impl AccessModel {
    /// Sets what `principal` is directly assigned in `workspace`; `None` removes it.
    pub fn assign(
        &mut self,
        workspace: &WorkspaceId,
        principal: &PrincipalId,
        permission: Option<WorkspacePermission>,
    ) -> Result<(), AccessError> {
        let slot = self.principals.slot(principal)?;
        let assigned = self
            .assignments
            .by_workspace
            .entry(workspace.clone())
            .or_default();
        match permission {
            Some(permission) => {
                assigned.insert(slot, permission);
            }
            None => {
                assigned.remove(&slot);
            }
        }
        Ok(())
    }

    /// Forgets a deleted workspace's assignments, entitlements and catalog bindings.
    pub fn forget_workspace(&mut self, workspace: &WorkspaceId) {
        self.assignments.by_workspace.remove(workspace);
        self.entitlements.forget_workspace(workspace);
        self.forget_bindings_of(workspace);
    }

    pub(crate) fn forget_assignments_of(&mut self, slot: u32) {
        self.assignments.forget_slot(slot);
    }

    /// The direct assignments of a workspace, in principal id order.
    pub fn workspace_assignments(
        &self,
        workspace: &WorkspaceId,
    ) -> Vec<(PrincipalRef, WorkspacePermission)> {
        let mut assignments: Vec<_> = self
            .assignments
            .by_workspace
            .get(workspace)
            .into_iter()
            .flatten()
            .map(|(slot, permission)| (self.principals.reference(*slot), *permission))
            .collect();
        assignments.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        assignments
    }

    /// What `principal` may do in `workspace`: the most any assignment reaching it gives,
    /// through active groups only (a deactivated group passes nothing on); `None` when it is
    /// not active or not assigned at all.
    pub fn workspace_permission(
        &self,
        workspace: &WorkspaceId,
        principal: &PrincipalId,
    ) -> Option<WorkspacePermission> {
        let assigned = self.assignments.by_workspace.get(workspace)?;
        let subject = self.principals.slot(principal).ok()?;
        if !self.principals.can_hold_access(subject) {
            return None;
        }
        self.principals.with_ancestry(subject, |ancestry| {
            ancestry
                .nodes()
                .filter_map(|(slot, _)| assigned.get(&slot).copied())
                .max()
        })
    }

    /// How an `ADMIN` assignment of `workspace` reaches `principal`: `Some(true)` when it is
    /// assigned `ADMIN` itself, `Some(false)` when only through a group it is in (active groups
    /// only, as [`AccessModel::workspace_permission`]), `None` when none does. The workspace's
    /// `admins` group is rendered from this (`Services::within_workspace_of`).
    pub fn admin_assignment(
        &self,
        workspace: &WorkspaceId,
        principal: &PrincipalId,
    ) -> Option<bool> {
        let assigned = self.assignments.by_workspace.get(workspace)?;
        let subject = self.principals.slot(principal).ok()?;
        if assigned.get(&subject) == Some(&WorkspacePermission::Admin) {
            return Some(true);
        }
        let through_group = self.principals.with_ancestry(subject, |ancestry| {
            ancestry
                .nodes()
                .any(|(slot, _)| assigned.get(&slot) == Some(&WorkspacePermission::Admin))
        });
        through_group.then_some(false)
    }

    /// The principals assigned `ADMIN` in `workspace` themselves, in principal id order.
    pub fn admin_assignees(&self, workspace: &WorkspaceId) -> Vec<PrincipalRef> {
        self.workspace_assignments(workspace)
            .into_iter()
            .filter(|(_, permission)| *permission == WorkspacePermission::Admin)
            .map(|(principal, _)| principal)
            .collect()
    }

    /// The most any assignment in `workspace` gives one of the ancestry's nodes, with the
    /// position of the node that holds it: [`AccessModel::workspace_permission`] for a walk
    /// the caller has already made.
    pub(crate) fn permission_in_ancestry(
        &self,
        workspace: &WorkspaceId,
        ancestry: &crate::principals::Ancestry,
    ) -> Option<(WorkspacePermission, u32)> {
        let assigned = self.assignments.by_workspace.get(workspace)?;
        ancestry
            .nodes()
            .filter_map(|(slot, position)| {
                assigned
                    .get(&slot)
                    .map(|permission| (*permission, position))
            })
            .max_by_key(|(permission, _)| *permission)
    }

    /// What the slot is directly assigned in `workspace`, if anything.
    pub(crate) fn assigned_permission(
        &self,
        workspace: &WorkspaceId,
        slot: u32,
    ) -> Option<WorkspacePermission> {
        self.assignments
            .by_workspace
            .get(workspace)?
            .get(&slot)
            .copied()
    }

    /// The slots directly assigned in `workspace`, each with what it is assigned, in slot
    /// order.
    pub(crate) fn assigned_slots(
        &self,
        workspace: &WorkspaceId,
    ) -> Vec<(u32, WorkspacePermission)> {
        self.assignments
            .by_workspace
            .get(workspace)
            .into_iter()
            .flatten()
            .map(|(slot, permission)| (*slot, *permission))
            .collect()
    }

    /// Whether `principal` belongs to `workspace`'s directory: it, or a group it is in, is
    /// assigned there. Unlike [`AccessModel::workspace_permission`] this counts inactive
    /// principals and groups, so that admins still see (and can reactivate) a deactivated user
    /// of their workspace.
    pub fn in_workspace(&self, workspace: &WorkspaceId, principal: &PrincipalId) -> bool {
        let Some(assigned) = self.assignments.by_workspace.get(workspace) else {
            return false;
        };
        let Ok(subject) = self.principals.slot(principal) else {
            return false;
        };
        // Most principals of a workspace were made through it and are assigned directly: no
        // walk for them.
        if assigned.contains_key(&subject) {
            return true;
        }
        self.principals
            .walk_up(subject, true)
            .nodes()
            .any(|(slot, _)| assigned.contains_key(&slot))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scimitar_domain::PrincipalKind;

    fn id(text: &str) -> PrincipalId {
        PrincipalId::new(text)
    }

    fn model() -> AccessModel {
        let mut model = AccessModel::new();
        model
            .upsert_principal(&id("ann"), PrincipalKind::User, "ann@x", true)
            .unwrap();
        model
            .upsert_principal(&id("bob"), PrincipalKind::User, "bob@x", true)
            .unwrap();
        model
            .upsert_principal(&id("eng"), PrincipalKind::Group, "eng", true)
            .unwrap();
        model
            .upsert_principal(&id("all"), PrincipalKind::Group, "all", true)
            .unwrap();
        model.add_membership(&id("all"), &id("eng")).unwrap();
        model.add_membership(&id("eng"), &id("ann")).unwrap();
        model
    }

    #[test]
    fn an_assignment_reaches_members_through_nested_groups_and_admin_wins() {
        let mut model = model();
        let (one, two) = (WorkspaceId::new("1"), WorkspaceId::new("2"));
        model
            .assign(&one, &id("all"), Some(WorkspacePermission::User))
            .unwrap();
        assert_eq!(
            model.workspace_permission(&one, &id("ann")),
            Some(WorkspacePermission::User)
        );
        assert!(model.in_workspace(&one, &id("eng")));
        assert!(!model.in_workspace(&one, &id("bob")));
        assert!(!model.in_workspace(&two, &id("ann")));
        assert_eq!(model.workspace_permission(&two, &id("ann")), None);
        model
            .assign(&one, &id("ann"), Some(WorkspacePermission::Admin))
            .unwrap();
        assert_eq!(
            model.workspace_permission(&one, &id("ann")),
            Some(WorkspacePermission::Admin)
        );
        model.assign(&one, &id("ann"), None).unwrap();
        model.assign(&one, &id("all"), None).unwrap();
        assert!(!model.in_workspace(&one, &id("ann")));
    }

    #[test]
    fn a_deactivated_group_passes_no_permission_but_its_members_stay_listed() {
        let mut model = model();
        let one = WorkspaceId::new("1");
        model
            .assign(&one, &id("eng"), Some(WorkspacePermission::User))
            .unwrap();
        model
            .upsert_principal(&id("eng"), PrincipalKind::Group, "eng", false)
            .unwrap();
        assert_eq!(model.workspace_permission(&one, &id("ann")), None);
        assert!(model.in_workspace(&one, &id("ann")));
    }

    #[test]
    fn deleting_a_principal_or_a_workspace_drops_its_assignments() {
        let mut model = model();
        let one = WorkspaceId::new("1");
        model
            .assign(&one, &id("bob"), Some(WorkspacePermission::User))
            .unwrap();
        model.remove_principal(&id("bob")).unwrap();
        assert!(model.workspace_assignments(&one).is_empty());
        model
            .upsert_principal(&id("bob"), PrincipalKind::User, "bob@x", true)
            .unwrap();
        assert!(!model.in_workspace(&one, &id("bob")));
        model
            .assign(&one, &id("ann"), Some(WorkspacePermission::User))
            .unwrap();
        model.forget_workspace(&one);
        assert!(!model.in_workspace(&one, &id("ann")));
    }

    #[test]
    fn permissions_are_read_case_sensitively() {
        assert_eq!(
            WorkspacePermission::parse("ADMIN"),
            Some(WorkspacePermission::Admin)
        );
        assert_eq!(WorkspacePermission::parse("admin"), None);
        assert_eq!(WorkspacePermission::User.as_str(), "USER");
    }
}
