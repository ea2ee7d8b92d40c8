//! [`AccessModel`], one per account, and every change that can be made to it. Queries are in
//! `query.rs`.

use scimitar_domain::{PrincipalId, PrincipalKind, WorkspaceId};

use crate::catalog::Catalog;
use crate::entitlement::{EntitlementSet, WorkspaceEntitlements};
use crate::error::AccessError;
use crate::object::{AclEntry, ObjectType, PermissionLevel};
use crate::principals::{Holding, Principals};
use crate::privilege::{Privilege, PrivilegeSet};
use crate::securable::SecurableType;
use crate::workspace::Objects;

/// How a write to an object's ACL combines with the entries already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclWrite {
    /// `PUT /permissions/...`: the entries given become the whole direct ACL.
    Replace,
    /// `PATCH /permissions/...`: the entries given are added, or change the level of a
    /// principal already listed; the others stay.
    Update,
}

/// Everything the engine knows about one account's access: principals and groups, Unity
/// Catalog securables with their owners and grants, and workspace objects with their ACLs.
///
/// Changes take `&mut self` and queries `&self`. What the model derives and keeps (each
/// group's closure, the grantee index of long grant lists, member positions of large groups)
/// is rebuilt inside the change that affects it, before the change returns, so no query can
/// read it stale. A change is therefore seen by the very next query, whoever holds the model
/// (the server keeps it behind a lock and applies each committed change in commit order).
///
/// The model does not decide who may make a change: callers ask
/// [`AccessModel::can_manage`](crate::AccessModel::can_manage) first.
#[derive(Debug, Clone, Default)]
pub struct AccessModel {
    pub(crate) principals: Principals,
    pub(crate) catalog: Catalog,
    pub(crate) objects: Objects,
    pub(crate) assignments: crate::assignment::Assignments,
    /// What each principal is assigned itself, per workspace.
    pub(crate) entitlements: WorkspaceEntitlements,
}

/// How much one model holds, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelSize {
    /// Principal slots (users, groups, service principals; a removed one's slot is kept).
    pub principals: usize,
    /// Direct group memberships.
    pub memberships: usize,
    /// Unity Catalog securable slots.
    pub securables: usize,
}

impl AccessModel {
    pub fn new() -> AccessModel {
        AccessModel::default()
    }

    /// What the model holds. Counts memberships principal by principal: for a scrape, not for
    /// a request path.
    pub fn size(&self) -> ModelSize {
        ModelSize {
            principals: self.principals.slot_count(),
            memberships: self.principals.membership_count(),
            securables: self.catalog.slots.len(),
        }
    }

    // ----- principals and groups -------------------------------------------------------------

    /// Creates a principal, or updates the name and active flag of an existing one. `name`
    /// is how Databricks writes it: userName, group displayName, or applicationId. A group
    /// named `admins` makes its members workspace admins. Deactivation takes effect at the
    /// next query.
    pub fn upsert_principal(
        &mut self,
        id: &PrincipalId,
        kind: PrincipalKind,
        name: &str,
        active: bool,
    ) -> Result<(), AccessError> {
        self.principals.upsert(id, kind, name, active).map(|_| ())
    }

    /// Deletes a principal: its memberships (both ways), entitlements, grants and ACL
    /// entries go with it. Securables it owns keep it as their owner of record, which confers
    /// nothing, until [`AccessModel::set_owner`] names a new one.
    pub fn remove_principal(&mut self, id: &PrincipalId) -> Result<(), AccessError> {
        let slot = self.principals.slot(id)?;
        let mut owned = Vec::new();
        for holding in self.principals.take_holdings(slot) {
            match holding {
                Holding::Grant(securable) => {
                    self.catalog.slot_mut(securable).grants.remove_grantee(slot);
                }
                Holding::Acl(object) => {
                    self.objects
                        .slot_mut(object)
                        .acl
                        .retain(|(principal, _)| *principal != slot);
                }
                Holding::Owns(securable) => owned.push(Holding::Owns(securable)),
            }
        }
        for holding in owned {
            self.principals.add_holding(slot, holding);
        }
        self.forget_assignments_of(slot);
        self.entitlements.forget_slot(slot);
        self.principals.remove(slot);
        Ok(())
    }

    /// Puts `member` (any principal) into `group`. Returns false if it was already a direct
    /// member. Refused if it would close a cycle, nest groups deeper than
    /// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH), or put a group into `admins`.
    pub fn add_membership(
        &mut self,
        group: &PrincipalId,
        member: &PrincipalId,
    ) -> Result<bool, AccessError> {
        let group = self.principals.slot(group)?;
        let member = self.principals.slot(member)?;
        self.principals.add_membership(group, member)
    }

    /// Takes `member` out of `group`. Returns false if it was not a direct member.
    pub fn remove_membership(
        &mut self,
        group: &PrincipalId,
        member: &PrincipalId,
    ) -> Result<bool, AccessError> {
        let group = self.principals.slot(group)?;
        let member = self.principals.slot(member)?;
        Ok(self.principals.remove_membership(group, member))
    }

    /// Recomputes up to `budget` of the users' and service principals' precomputed access
    /// sets that a change to some group's closure made stale, and returns true once none is
    /// left. Answers never depend on it: a stale set is not read, `allows` then takes the
    /// slower way through each direct group's closure. Callers run it after loading a model
    /// and, a bounded budget at a time, after changes, so that a group-in-group change above
    /// many users does not hold the model for long.
    pub fn refresh_access_sets(&mut self, budget: usize) -> bool {
        self.principals.refresh_access_sets(budget)
    }

    /// Whether [`AccessModel::refresh_access_sets`] has nothing left to do, so a caller can
    /// tell without taking the model for writing.
    pub fn access_sets_fresh(&self) -> bool {
        self.principals.access_sets_fresh()
    }

    /// Replaces the entitlements assigned to the principal itself in `workspace`; those it
    /// holds in other workspaces stay as they are.
    pub fn set_entitlements(
        &mut self,
        workspace: &WorkspaceId,
        principal: &PrincipalId,
        entitlements: EntitlementSet,
    ) -> Result<(), AccessError> {
        let slot = self.principals.slot(principal)?;
        self.entitlements.set(workspace, slot, entitlements);
        Ok(())
    }

    // ----- Unity Catalog ---------------------------------------------------------------------

    /// Registers a securable with its owner (the creator, in Databricks). The parent catalog
    /// or schema must exist; grants already made on it reach the new object at once.
    pub fn create_securable(
        &mut self,
        securable_type: SecurableType,
        full_name: &str,
        owner: &PrincipalId,
    ) -> Result<(), AccessError> {
        let owner = self.principals.slot(owner)?;
        let slot = self.catalog.insert(securable_type, full_name, owner)?;
        self.principals.add_holding(owner, Holding::Owns(slot));
        Ok(())
    }

    /// Drops a securable, everything below it, and all their grants.
    pub fn drop_securable(
        &mut self,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<(), AccessError> {
        let root = self.catalog.find(securable_type, full_name)?;
        // Children first, so that each removal detaches a leaf.
        for slot in self.catalog.subtree(root).into_iter().rev() {
            let entry = self.catalog.slot(slot);
            let owner = entry.owner;
            let grantees: Vec<u32> = entry.grants.iter().map(|grant| grant.grantee).collect();
            self.principals.remove_holding(owner, Holding::Owns(slot));
            for grantee in grantees {
                self.principals
                    .remove_holding(grantee, Holding::Grant(slot));
            }
            self.catalog.remove(slot);
        }
        Ok(())
    }

    /// Renames a catalog or schema (`PATCH` with `new_name`) to `new_name`, its new full
    /// name under the same parent; everything below it is renamed with it, and every grant
    /// and owner stays where it was.
    pub fn rename_securable(
        &mut self,
        securable_type: SecurableType,
        full_name: &str,
        new_name: &str,
    ) -> Result<(), AccessError> {
        let slot = self.catalog.find(securable_type, full_name)?;
        self.catalog.rename(slot, new_name)
    }

    /// Transfers ownership (`ALTER ... OWNER TO`).
    pub fn set_owner(
        &mut self,
        securable_type: SecurableType,
        full_name: &str,
        owner: &PrincipalId,
    ) -> Result<(), AccessError> {
        let slot = self.catalog.find(securable_type, full_name)?;
        let new_owner = self.principals.slot(owner)?;
        let old_owner = self.catalog.slot(slot).owner;
        self.principals
            .remove_holding(old_owner, Holding::Owns(slot));
        self.catalog.slot_mut(slot).owner = new_owner;
        self.principals.add_holding(new_owner, Holding::Owns(slot));
        Ok(())
    }

    /// Grants privileges to a principal (a group's grant reaches all its members). Every
    /// privilege must apply to the securable's type; nothing is granted if one does not.
    pub fn grant(
        &mut self,
        securable_type: SecurableType,
        full_name: &str,
        grantee: &PrincipalId,
        privileges: &[Privilege],
    ) -> Result<(), AccessError> {
        let slot = self.catalog.find(securable_type, full_name)?;
        let grantee = self.principals.slot(grantee)?;
        let added = applicable_set(self.catalog.slot(slot).kind, privileges)?;
        if added.is_empty() {
            return Ok(());
        }
        self.catalog.slot_mut(slot).grants.add(grantee, added);
        self.principals.add_holding(grantee, Holding::Grant(slot));
        Ok(())
    }

    /// Revokes privileges; revoking what was never granted succeeds, as in Databricks.
    /// Revoking `ALL_PRIVILEGES` removes that grant and every privilege it stands for on this
    /// type, as current Databricks documentation describes.
    pub fn revoke(
        &mut self,
        securable_type: SecurableType,
        full_name: &str,
        grantee: &PrincipalId,
        privileges: &[Privilege],
    ) -> Result<(), AccessError> {
        let slot = self.catalog.find(securable_type, full_name)?;
        let grantee = self.principals.slot(grantee)?;
        let kind = self.catalog.slot(slot).kind;
        let mut removed = applicable_set(kind, privileges)?;
        if removed.contains(Privilege::AllPrivileges) {
            removed = removed.union(kind.all_privileges_expansion());
        }
        let grants = &mut self.catalog.slot_mut(slot).grants;
        if grants.remove_privileges(grantee, removed) {
            self.principals
                .remove_holding(grantee, Holding::Grant(slot));
        }
        Ok(())
    }

    // ----- workspace objects -----------------------------------------------------------------

    /// Replaces an object's ACL (`PUT /permissions/...`), registering the object if new.
    pub fn set_object_acl(
        &mut self,
        object_type: ObjectType,
        object_id: &str,
        entries: &[AclEntry],
    ) -> Result<(), AccessError> {
        let next = self.next_acl(object_type, object_id, entries, AclWrite::Replace)?;
        self.install_acl(object_type, object_id, next)
    }

    /// Adds or changes entries, leaving the others (`PATCH /permissions/...`). A new
    /// `IS_OWNER` entry replaces the previous owner's, since an object has one owner.
    pub fn update_object_acl(
        &mut self,
        object_type: ObjectType,
        object_id: &str,
        entries: &[AclEntry],
    ) -> Result<(), AccessError> {
        let next = self.next_acl(object_type, object_id, entries, AclWrite::Update)?;
        self.install_acl(object_type, object_id, next)
    }

    /// The direct ACL an object would have after `write` with `entries`, under the same rules
    /// [`AccessModel::set_object_acl`] and [`AccessModel::update_object_acl`] apply (one entry
    /// per principal, one owner, no group owning, `admins` fixed at `CAN_MANAGE`), without
    /// changing anything. The server commits exactly this list, so storage and the engine
    /// cannot disagree about what a PUT or PATCH meant.
    pub fn planned_object_acl(
        &self,
        object_type: ObjectType,
        object_id: &str,
        entries: &[AclEntry],
        write: AclWrite,
    ) -> Result<Vec<AclEntry>, AccessError> {
        Ok(self
            .next_acl(object_type, object_id, entries, write)?
            .into_iter()
            .map(|(principal, level)| AclEntry::new(self.principals.id(principal).clone(), level))
            .collect())
    }

    /// The ACL, as slots, that `write` would leave on the object.
    fn next_acl(
        &self,
        object_type: ObjectType,
        object_id: &str,
        entries: &[AclEntry],
        write: AclWrite,
    ) -> Result<Vec<(u32, PermissionLevel)>, AccessError> {
        let resolved = self.resolve_acl(object_type, object_id, entries)?;
        if write == AclWrite::Replace {
            return Ok(merge_highest(object_type, Vec::new(), &resolved));
        }
        let mut current = self
            .objects
            .find(object_type, object_id)
            .map(|slot| self.objects.slot(slot).acl.clone())
            .unwrap_or_default();
        let new_owner = resolved
            .iter()
            .find(|(_, level)| *level == PermissionLevel::IsOwner)
            .map(|(principal, _)| *principal);
        if let Some(new_owner) = new_owner {
            current.retain(|(principal, level)| {
                *level != PermissionLevel::IsOwner || *principal == new_owner
            });
        }
        // The entries given replace the principal's current level, whether higher or lower.
        current.retain(|(principal, _)| !resolved.iter().any(|(given, _)| given == principal));
        Ok(merge_highest(object_type, current, &resolved))
    }

    /// Puts an object into a directory (or takes it out with `None`); it then inherits the
    /// directory's ACL. Both are registered if new.
    pub fn set_object_parent(
        &mut self,
        object_type: ObjectType,
        object_id: &str,
        directory_id: Option<&str>,
    ) -> Result<(), AccessError> {
        if !object_type.lives_in_directories() {
            return Err(AccessError::NotInDirectories { object_type });
        }
        let parent = match directory_id {
            Some(directory_id) => {
                let directory = self
                    .objects
                    .find_or_register(ObjectType::Directories, directory_id)?;
                if let Some(existing) = self.objects.find(object_type, object_id) {
                    if self
                        .objects
                        .lineage(directory)
                        .any(|above| above == existing)
                    {
                        return Err(AccessError::DirectoryCycle {
                            object_id: object_id.to_string(),
                            parent_id: directory_id.to_string(),
                        });
                    }
                }
                Some(directory)
            }
            None => None,
        };
        let slot = self.objects.find_or_register(object_type, object_id)?;
        self.objects.slot_mut(slot).parent = parent;
        Ok(())
    }

    /// Forgets a workspace object and its ACL; objects inside a removed directory keep no
    /// parent.
    pub fn remove_object(&mut self, object_type: ObjectType, object_id: &str) {
        if let Some(slot) = self.objects.find(object_type, object_id) {
            for (principal, _) in self.objects.slot(slot).acl.clone() {
                self.principals
                    .remove_holding(principal, Holding::Acl(slot));
            }
            self.objects.remove(slot);
        }
    }

    /// Resolves principals and checks each entry against the object type's rules.
    fn resolve_acl(
        &self,
        object_type: ObjectType,
        object_id: &str,
        entries: &[AclEntry],
    ) -> Result<Vec<(u32, PermissionLevel)>, AccessError> {
        let mut resolved = Vec::with_capacity(entries.len());
        for entry in entries {
            let principal = self.principals.slot(&entry.principal)?;
            if object_type.rank(entry.level).is_none() {
                return Err(AccessError::LevelNotApplicable {
                    level: entry.level,
                    object_type,
                });
            }
            let is_group = self.principals.status(principal).kind == PrincipalKind::Group;
            if entry.level == PermissionLevel::IsOwner && is_group {
                return Err(AccessError::GroupCannotOwn {
                    group: entry.principal.clone(),
                    object_type,
                    object_id: object_id.to_string(),
                });
            }
            let is_admins = self.principals.admins() == Some(principal);
            if is_admins && entry.level != PermissionLevel::CanManage {
                return Err(AccessError::AdminsLevelFixed {
                    object_type,
                    object_id: object_id.to_string(),
                });
            }
            if object_type == ObjectType::Tokens
                && entry.level == PermissionLevel::CanManage
                && !is_admins
            {
                return Err(AccessError::TokensManageReserved {
                    principal: entry.principal.clone(),
                });
            }
            resolved.push((principal, entry.level));
        }
        let owners: Vec<u32> = resolved
            .iter()
            .filter(|(_, level)| *level == PermissionLevel::IsOwner)
            .map(|(principal, _)| *principal)
            .collect();
        if owners.iter().any(|owner| *owner != owners[0]) {
            return Err(AccessError::SeveralOwners {
                object_type,
                object_id: object_id.to_string(),
            });
        }
        Ok(resolved)
    }

    fn install_acl(
        &mut self,
        object_type: ObjectType,
        object_id: &str,
        acl: Vec<(u32, PermissionLevel)>,
    ) -> Result<(), AccessError> {
        let slot = self.objects.find_or_register(object_type, object_id)?;
        let previous = std::mem::replace(&mut self.objects.slot_mut(slot).acl, acl);
        for (principal, _) in previous {
            self.principals
                .remove_holding(principal, Holding::Acl(slot));
        }
        for (principal, _) in self.objects.slot(slot).acl.clone() {
            self.principals.add_holding(principal, Holding::Acl(slot));
        }
        Ok(())
    }
}

/// The privileges as a set, refusing any that do not apply to the type.
fn applicable_set(
    kind: SecurableType,
    privileges: &[Privilege],
) -> Result<PrivilegeSet, AccessError> {
    let applicable = kind.applicable();
    for privilege in privileges {
        if !applicable.contains(*privilege) {
            return Err(AccessError::PrivilegeNotApplicable {
                privilege: *privilege,
                securable_type: kind,
            });
        }
    }
    Ok(privileges.iter().copied().collect())
}

/// Adds entries to an ACL keeping one entry per principal, the highest level given.
fn merge_highest(
    object_type: ObjectType,
    mut acl: Vec<(u32, PermissionLevel)>,
    entries: &[(u32, PermissionLevel)],
) -> Vec<(u32, PermissionLevel)> {
    for (principal, level) in entries {
        match acl.iter_mut().find(|(existing, _)| existing == principal) {
            Some((_, held)) => {
                if object_type.rank(*level) > object_type.rank(*held) {
                    *held = *level;
                }
            }
            None => acl.push((*principal, *level)),
        }
    }
    acl
}
