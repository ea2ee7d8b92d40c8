//! Workspace entitlements (`workspace-access`, ...), sets of them as a small bit mask, and
//! what each principal is assigned in each workspace.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use scimitar_domain::WorkspaceId;

use crate::error::AccessError;
use crate::hash::FastMap;

/// A workspace entitlement, by its SCIM `entitlements[].value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Entitlement {
    WorkspaceAccess,
    DatabricksSqlAccess,
    WorkspaceConsume,
    AllowClusterCreate,
    AllowInstancePoolCreate,
}

impl Entitlement {
    pub const ALL: [Entitlement; 5] = [
        Entitlement::WorkspaceAccess,
        Entitlement::DatabricksSqlAccess,
        Entitlement::WorkspaceConsume,
        Entitlement::AllowClusterCreate,
        Entitlement::AllowInstancePoolCreate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Entitlement::WorkspaceAccess => "workspace-access",
            Entitlement::DatabricksSqlAccess => "databricks-sql-access",
            Entitlement::WorkspaceConsume => "workspace-consume",
            Entitlement::AllowClusterCreate => "allow-cluster-create",
            Entitlement::AllowInstancePoolCreate => "allow-instance-pool-create",
        }
    }

    /// Reads the SCIM value. The obsolete `allow-workspace-access` is refused on purpose: the
    /// reference treats it as an error, and accepting it would hide a client bug.
    pub fn parse(text: &str) -> Result<Entitlement, AccessError> {
        Entitlement::ALL
            .into_iter()
            .find(|entitlement| entitlement.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| AccessError::UnknownEntitlement {
                text: text.to_string(),
            })
    }

    const fn bit(self) -> u8 {
        1u8 << (self as u8)
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Entitlement {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Entitlement::parse(text)
    }
}

/// A set of entitlements; one byte per principal keeps the union over groups a few ORs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EntitlementSet(u8);

impl EntitlementSet {
    pub const EMPTY: EntitlementSet = EntitlementSet(0);

    /// Every entitlement: what workspace admins hold.
    pub fn all() -> EntitlementSet {
        Entitlement::ALL.into_iter().collect()
    }

    pub fn contains(self, entitlement: Entitlement) -> bool {
        self.0 & entitlement.bit() != 0
    }

    pub fn insert(&mut self, entitlement: Entitlement) {
        self.0 |= entitlement.bit();
    }

    pub fn union(self, other: EntitlementSet) -> EntitlementSet {
        EntitlementSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Entitlement> {
        Entitlement::ALL
            .into_iter()
            .filter(move |entitlement| self.contains(*entitlement))
    }
}

impl FromIterator<Entitlement> for EntitlementSet {
    fn from_iter<I: IntoIterator<Item = Entitlement>>(iter: I) -> Self {
        let mut set = EntitlementSet::EMPTY;
        for entitlement in iter {
            set.insert(entitlement);
        }
        set
    }
}

impl fmt::Display for EntitlementSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Entitlement::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

/// Entitlements are per workspace, as in Databricks: what each principal is assigned in each
/// workspace of the account, by workspace, then principal slot. Only principals assigned
/// something have an entry, so a workspace costs nothing for the principals it leaves alone.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkspaceEntitlements {
    by_workspace: BTreeMap<WorkspaceId, FastMap<u32, EntitlementSet>>,
}

impl WorkspaceEntitlements {
    /// What the slot is assigned itself in the workspace (not through groups).
    pub(crate) fn of(&self, workspace: &WorkspaceId, slot: u32) -> EntitlementSet {
        self.by_workspace
            .get(workspace)
            .and_then(|assigned| assigned.get(&slot))
            .copied()
            .unwrap_or(EntitlementSet::EMPTY)
    }

    pub(crate) fn set(&mut self, workspace: &WorkspaceId, slot: u32, set: EntitlementSet) {
        if set.is_empty() {
            if let Some(assigned) = self.by_workspace.get_mut(workspace) {
                assigned.remove(&slot);
            }
            return;
        }
        self.by_workspace
            .entry(workspace.clone())
            .or_default()
            .insert(slot, set);
    }

    /// Every slot assigned something in the workspace, with what, in slot order (so that
    /// answers built from it do not depend on the hash seed).
    pub(crate) fn assigned_in(&self, workspace: &WorkspaceId) -> Vec<(u32, EntitlementSet)> {
        let mut assigned: Vec<(u32, EntitlementSet)> = self
            .by_workspace
            .get(workspace)
            .into_iter()
            .flatten()
            .map(|(slot, set)| (*slot, *set))
            .collect();
        assigned.sort_unstable_by_key(|(slot, _)| *slot);
        assigned
    }

    pub(crate) fn forget_slot(&mut self, slot: u32) {
        for assigned in self.by_workspace.values_mut() {
            assigned.remove(&slot);
        }
    }

    pub(crate) fn forget_workspace(&mut self, workspace: &WorkspaceId) {
        self.by_workspace.remove(workspace);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_entitlement_round_trips_and_the_obsolete_name_is_refused() {
        for entitlement in Entitlement::ALL {
            assert_eq!(
                Entitlement::parse(entitlement.as_str()).unwrap(),
                entitlement
            );
        }
        assert!(Entitlement::parse("allow-workspace-access").is_err());
    }
}
