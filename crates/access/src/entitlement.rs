//! Workspace entitlements (`workspace-access`, ...) and sets of them as a small bit mask.

use std::fmt;
use std::str::FromStr;

use crate::error::AccessError;

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
