//! Unity Catalog privileges by their Databricks names, and sets of them as one 64-bit mask.

use std::fmt;
use std::str::FromStr;

use crate::error::AccessError;

macro_rules! privileges {
    ($($variant:ident => $name:literal,)*) => {
        /// A Unity Catalog privilege, named as the REST API and Terraform name it
        /// (`USE_CATALOG`); SQL writes the same names with spaces (`USE CATALOG`).
        ///
        /// The discriminant is the privilege's bit in a [`PrivilegeSet`], so the list must stay
        /// below 64 entries.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Privilege {
            $($variant,)*
        }

        impl Privilege {
            /// Every privilege, in bit order (alphabetical, as the SDK lists them).
            pub const ALL: &'static [Privilege] = &[$(Privilege::$variant,)*];

            /// The REST name, for example `USE_CATALOG`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Privilege::$variant => $name,)*
                }
            }
        }
    };
}

privileges! {
    Access => "ACCESS",
    AllPrivileges => "ALL_PRIVILEGES",
    ApplyTag => "APPLY_TAG",
    Browse => "BROWSE",
    Create => "CREATE",
    CreateCatalog => "CREATE_CATALOG",
    CreateCleanRoom => "CREATE_CLEAN_ROOM",
    CreateConnection => "CREATE_CONNECTION",
    CreateExternalLocation => "CREATE_EXTERNAL_LOCATION",
    CreateExternalTable => "CREATE_EXTERNAL_TABLE",
    CreateExternalVolume => "CREATE_EXTERNAL_VOLUME",
    CreateForeignCatalog => "CREATE_FOREIGN_CATALOG",
    CreateForeignSecurable => "CREATE_FOREIGN_SECURABLE",
    CreateFunction => "CREATE_FUNCTION",
    CreateManagedStorage => "CREATE_MANAGED_STORAGE",
    CreateMaterializedView => "CREATE_MATERIALIZED_VIEW",
    CreateModel => "CREATE_MODEL",
    CreateProvider => "CREATE_PROVIDER",
    CreateRecipient => "CREATE_RECIPIENT",
    CreateSchema => "CREATE_SCHEMA",
    CreateServiceCredential => "CREATE_SERVICE_CREDENTIAL",
    CreateShare => "CREATE_SHARE",
    CreateStorageCredential => "CREATE_STORAGE_CREDENTIAL",
    CreateTable => "CREATE_TABLE",
    CreateView => "CREATE_VIEW",
    CreateVolume => "CREATE_VOLUME",
    Execute => "EXECUTE",
    ExecuteCleanRoomTask => "EXECUTE_CLEAN_ROOM_TASK",
    ExternalUseLocation => "EXTERNAL_USE_LOCATION",
    ExternalUseSchema => "EXTERNAL_USE_SCHEMA",
    Manage => "MANAGE",
    ManageAllowlist => "MANAGE_ALLOWLIST",
    Modify => "MODIFY",
    ModifyCleanRoom => "MODIFY_CLEAN_ROOM",
    ReadFiles => "READ_FILES",
    ReadMetadata => "READ_METADATA",
    ReadPrivateFiles => "READ_PRIVATE_FILES",
    ReadVolume => "READ_VOLUME",
    Refresh => "REFRESH",
    Select => "SELECT",
    SetSharePermission => "SET_SHARE_PERMISSION",
    Usage => "USAGE",
    UseCatalog => "USE_CATALOG",
    UseConnection => "USE_CONNECTION",
    UseMarketplaceAssets => "USE_MARKETPLACE_ASSETS",
    UseProvider => "USE_PROVIDER",
    UseRecipient => "USE_RECIPIENT",
    UseSchema => "USE_SCHEMA",
    UseShare => "USE_SHARE",
    WriteFiles => "WRITE_FILES",
    WritePrivateFiles => "WRITE_PRIVATE_FILES",
    WriteVolume => "WRITE_VOLUME",
}

impl Privilege {
    /// The SQL spelling, for example `USE CATALOG`.
    pub fn as_sql(self) -> String {
        self.as_str().replace('_', " ")
    }

    /// Reads a privilege written either way (`USE CATALOG`, `use_catalog`, `Use  Catalog`).
    pub fn parse(text: &str) -> Result<Privilege, AccessError> {
        // Spaces and underscores are interchangeable and runs of either count once, so SQL
        // tokens joined with any whitespace and REST names both land on the same name.
        let canonical = text
            .split(|c: char| c.is_whitespace() || c == '_')
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("_")
            .to_ascii_uppercase();
        Privilege::ALL
            .iter()
            .copied()
            .find(|privilege| privilege.as_str() == canonical)
            .ok_or_else(|| AccessError::UnknownPrivilege {
                text: text.to_string(),
            })
    }

    pub(crate) const fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Privilege {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Privilege::parse(text)
    }
}

/// A set of privileges as one bit mask: a grant entry is a grantee and one of these, so a
/// check tests a grant with a single AND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PrivilegeSet(u64);

impl PrivilegeSet {
    pub const EMPTY: PrivilegeSet = PrivilegeSet(0);

    pub const fn of(privileges: &[Privilege]) -> PrivilegeSet {
        let mut bits = 0u64;
        let mut index = 0;
        while index < privileges.len() {
            bits |= privileges[index].bit();
            index += 1;
        }
        PrivilegeSet(bits)
    }

    pub const fn contains(self, privilege: Privilege) -> bool {
        self.0 & privilege.bit() != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn insert(&mut self, privilege: Privilege) {
        self.0 |= privilege.bit();
    }

    pub const fn union(self, other: PrivilegeSet) -> PrivilegeSet {
        PrivilegeSet(self.0 | other.0)
    }

    pub const fn intersection(self, other: PrivilegeSet) -> PrivilegeSet {
        PrivilegeSet(self.0 & other.0)
    }

    pub const fn difference(self, other: PrivilegeSet) -> PrivilegeSet {
        PrivilegeSet(self.0 & !other.0)
    }

    /// The privileges in bit order.
    pub fn iter(self) -> impl Iterator<Item = Privilege> {
        Privilege::ALL
            .iter()
            .copied()
            .filter(move |privilege| self.contains(*privilege))
    }
}

impl FromIterator<Privilege> for PrivilegeSet {
    fn from_iter<I: IntoIterator<Item = Privilege>>(iter: I) -> Self {
        let mut set = PrivilegeSet::EMPTY;
        for privilege in iter {
            set.insert(privilege);
        }
        set
    }
}

impl fmt::Display for PrivilegeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Privilege::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_privilege_fits_in_the_mask() {
        assert!(Privilege::ALL.len() <= 64);
        for (index, privilege) in Privilege::ALL.iter().enumerate() {
            assert_eq!(*privilege as usize, index);
        }
    }

    #[test]
    fn sql_and_rest_spellings_parse_to_the_same_privilege() {
        for text in [
            "USE CATALOG",
            "use_catalog",
            "Use  Catalog",
            " USE_CATALOG ",
        ] {
            assert_eq!(Privilege::parse(text).unwrap(), Privilege::UseCatalog);
        }
        assert_eq!(
            Privilege::parse("all privileges").unwrap(),
            Privilege::AllPrivileges
        );
        assert_eq!(Privilege::UseCatalog.as_sql(), "USE CATALOG");
    }

    #[test]
    fn an_unknown_privilege_is_named_in_the_error() {
        let error = Privilege::parse("SELEKT").unwrap_err();
        assert!(error.to_string().contains("SELEKT"));
    }

    #[test]
    fn every_name_round_trips() {
        for privilege in Privilege::ALL {
            assert_eq!(Privilege::parse(privilege.as_str()).unwrap(), *privilege);
            assert_eq!(Privilege::parse(&privilege.as_sql()).unwrap(), *privilege);
        }
    }
}
