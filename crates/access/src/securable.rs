//! Unity Catalog securable types, where each sits in the catalog tree, and which privileges
//! apply to each (Databricks' table, reference section 7.3).

use std::fmt;
use std::str::FromStr;

use crate::error::AccessError;
use crate::privilege::{Privilege, PrivilegeSet};

/// A kind of Unity Catalog object.
///
/// The tree is `METASTORE > CATALOG > SCHEMA > {TABLE, VIEW, VOLUME, FUNCTION,
/// REGISTERED_MODEL}`; external locations, storage credentials and connections stand outside
/// it. Grants on the metastore are not inherited, so for access purposes the tree starts at
/// the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurableType {
    Metastore,
    Catalog,
    Schema,
    Table,
    View,
    Volume,
    Function,
    RegisteredModel,
    ExternalLocation,
    StorageCredential,
    Connection,
}

use Privilege as P;

const fn set(privileges: &[Privilege]) -> PrivilegeSet {
    PrivilegeSet::of(privileges)
}

const METASTORE: PrivilegeSet = set(&[
    P::CreateCatalog,
    P::CreateCleanRoom,
    P::CreateConnection,
    P::CreateExternalLocation,
    P::CreateProvider,
    P::CreateRecipient,
    P::CreateShare,
    P::CreateServiceCredential,
    P::CreateStorageCredential,
    P::SetSharePermission,
    P::UseMarketplaceAssets,
    P::UseProvider,
    P::UseRecipient,
    P::UseShare,
]);
const CATALOG_DIRECT: PrivilegeSet = set(&[
    P::AllPrivileges,
    P::ApplyTag,
    P::Browse,
    P::CreateConnection,
    P::CreateSchema,
    P::Manage,
    P::UseCatalog,
]);
// The schema-level creation privileges are inheritable from the catalog, as CREATE_TABLE is;
// Databricks' privilege reference lists CREATE MODEL, CREATE MATERIALIZED VIEW and EXTERNAL
// USE SCHEMA on catalogs and schemas alike.
const CATALOG_INHERITABLE: PrivilegeSet = set(&[
    P::CreateFunction,
    P::CreateMaterializedView,
    P::CreateModel,
    P::CreateTable,
    P::CreateVolume,
    P::Execute,
    P::ExternalUseSchema,
    P::Modify,
    P::Refresh,
    P::Select,
    P::ReadVolume,
    P::WriteVolume,
    P::UseSchema,
]);
const SCHEMA_DIRECT: PrivilegeSet = set(&[
    P::AllPrivileges,
    P::ApplyTag,
    P::CreateFunction,
    P::CreateMaterializedView,
    P::CreateModel,
    P::CreateTable,
    P::CreateVolume,
    P::ExternalUseSchema,
    P::Manage,
    P::UseSchema,
]);
const SCHEMA_INHERITABLE: PrivilegeSet = set(&[
    P::Execute,
    P::Modify,
    P::Refresh,
    P::Select,
    P::ReadVolume,
    P::WriteVolume,
]);
const TABLE: PrivilegeSet = set(&[
    P::AllPrivileges,
    P::ApplyTag,
    P::Manage,
    P::Select,
    P::Modify,
]);
const VIEW: PrivilegeSet = set(&[P::AllPrivileges, P::ApplyTag, P::Manage, P::Select]);
const VOLUME: PrivilegeSet = set(&[
    P::AllPrivileges,
    P::ApplyTag,
    P::Manage,
    P::ReadVolume,
    P::WriteVolume,
]);
const REGISTERED_MODEL: PrivilegeSet = set(&[P::AllPrivileges, P::ApplyTag, P::Execute, P::Manage]);
const FUNCTION: PrivilegeSet = set(&[P::AllPrivileges, P::Execute, P::Manage]);
const STORAGE_CREDENTIAL: PrivilegeSet = set(&[
    P::AllPrivileges,
    P::CreateExternalLocation,
    P::CreateExternalTable,
    P::Manage,
    P::ReadFiles,
    P::WriteFiles,
]);
const EXTERNAL_LOCATION: PrivilegeSet = set(&[
    P::AllPrivileges,
    P::Browse,
    P::CreateExternalTable,
    P::CreateManagedStorage,
    P::CreateExternalVolume,
    P::ExternalUseLocation,
    P::Manage,
    P::ReadFiles,
    P::WriteFiles,
]);
const CONNECTION: PrivilegeSet = set(&[
    P::AllPrivileges,
    P::Manage,
    P::UseConnection,
    P::CreateForeignCatalog,
]);

/// What `ALL PRIVILEGES` never stands for: Databricks leaves out `MANAGE` and the two
/// `EXTERNAL USE` privileges, which must be granted by name.
const NOT_IN_ALL_PRIVILEGES: PrivilegeSet = set(&[
    P::AllPrivileges,
    P::Manage,
    P::ExternalUseSchema,
    P::ExternalUseLocation,
]);

impl SecurableType {
    pub const ALL: [SecurableType; 11] = [
        SecurableType::Metastore,
        SecurableType::Catalog,
        SecurableType::Schema,
        SecurableType::Table,
        SecurableType::View,
        SecurableType::Volume,
        SecurableType::Function,
        SecurableType::RegisteredModel,
        SecurableType::ExternalLocation,
        SecurableType::StorageCredential,
        SecurableType::Connection,
    ];

    /// The REST spelling, as in `inherited_from_type` (`CATALOG`, `EXTERNAL_LOCATION`).
    pub fn as_str(self) -> &'static str {
        match self {
            SecurableType::Metastore => "METASTORE",
            SecurableType::Catalog => "CATALOG",
            SecurableType::Schema => "SCHEMA",
            SecurableType::Table => "TABLE",
            SecurableType::View => "VIEW",
            SecurableType::Volume => "VOLUME",
            SecurableType::Function => "FUNCTION",
            SecurableType::RegisteredModel => "REGISTERED_MODEL",
            SecurableType::ExternalLocation => "EXTERNAL_LOCATION",
            SecurableType::StorageCredential => "STORAGE_CREDENTIAL",
            SecurableType::Connection => "CONNECTION",
        }
    }

    /// Reads a type written as REST, path segment or SQL spells it (`external_location`,
    /// `EXTERNAL LOCATION`), including the SQL aliases `DATABASE`, `SERVER` and `MODEL`.
    pub fn parse(text: &str) -> Result<SecurableType, AccessError> {
        let canonical = text
            .split(|c: char| c.is_whitespace() || c == '_')
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("_")
            .to_ascii_uppercase();
        let alias = match canonical.as_str() {
            "DATABASE" => Some(SecurableType::Schema),
            "SERVER" => Some(SecurableType::Connection),
            "MODEL" => Some(SecurableType::RegisteredModel),
            _ => None,
        };
        alias
            .or_else(|| {
                SecurableType::ALL
                    .into_iter()
                    .find(|kind| kind.as_str() == canonical)
            })
            .ok_or_else(|| AccessError::UnknownSecurableType {
                text: text.to_string(),
            })
    }

    /// The type of this type's parent in the tree, or `None` for the catalog (whose metastore
    /// passes nothing down) and for objects outside the tree.
    pub fn parent_type(self) -> Option<SecurableType> {
        match self {
            SecurableType::Schema => Some(SecurableType::Catalog),
            SecurableType::Table
            | SecurableType::View
            | SecurableType::Volume
            | SecurableType::Function
            | SecurableType::RegisteredModel => Some(SecurableType::Schema),
            SecurableType::Metastore
            | SecurableType::Catalog
            | SecurableType::ExternalLocation
            | SecurableType::StorageCredential
            | SecurableType::Connection => None,
        }
    }

    /// The other type an address of this type also finds: a view is a kind of table in
    /// Databricks' REST API (the SDKs' `SecurableType` has no `VIEW`, so a view's grants are
    /// asked for as `table`) and in SQL (`GRANT ... ON TABLE <view>`). Tables and views share
    /// one namespace, so at most one of the two is found. The one place this rule is kept:
    /// every lookup by address goes through [`crate::AccessModel::addressed_type`].
    pub fn also_addresses(self) -> Option<SecurableType> {
        match self {
            SecurableType::Table => Some(SecurableType::View),
            _ => None,
        }
    }

    /// How many dot-separated parts a full name of this type has.
    pub fn name_parts(self) -> usize {
        match self.parent_type() {
            Some(SecurableType::Schema) => 3,
            Some(_) => 2,
            None => 1,
        }
    }

    /// Privileges that may be granted on an object of this type (direct and inheritable).
    pub fn applicable(self) -> PrivilegeSet {
        self.direct().union(self.inheritable())
    }

    /// Privileges that, granted here, apply to this object only.
    pub fn direct(self) -> PrivilegeSet {
        match self {
            SecurableType::Metastore => METASTORE,
            SecurableType::Catalog => CATALOG_DIRECT,
            SecurableType::Schema => SCHEMA_DIRECT,
            SecurableType::Table => TABLE,
            SecurableType::View => VIEW,
            SecurableType::Volume => VOLUME,
            SecurableType::Function => FUNCTION,
            SecurableType::RegisteredModel => REGISTERED_MODEL,
            SecurableType::ExternalLocation => EXTERNAL_LOCATION,
            SecurableType::StorageCredential => STORAGE_CREDENTIAL,
            SecurableType::Connection => CONNECTION,
        }
    }

    /// Privileges that, granted here, also reach every current and future child. Only
    /// catalogs and schemas pass privileges down.
    pub fn inheritable(self) -> PrivilegeSet {
        match self {
            SecurableType::Catalog => CATALOG_INHERITABLE,
            SecurableType::Schema => SCHEMA_INHERITABLE,
            _ => PrivilegeSet::EMPTY,
        }
    }

    /// What `ALL PRIVILEGES` granted on this type stands for, worked out at check time so
    /// that privileges Databricks adds later are covered without rewriting grants.
    pub fn all_privileges_expansion(self) -> PrivilegeSet {
        if self.applicable().contains(Privilege::AllPrivileges) {
            self.applicable().difference(NOT_IN_ALL_PRIVILEGES)
        } else {
            PrivilegeSet::EMPTY
        }
    }
}

impl fmt::Display for SecurableType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecurableType {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SecurableType::parse(text)
    }
}

/// A securable as callers name it: its type and full name (`cat`, `cat.sch`, `cat.sch.tbl`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecurableRef {
    pub securable_type: SecurableType,
    pub full_name: String,
}

impl SecurableRef {
    pub fn new(securable_type: SecurableType, full_name: impl Into<String>) -> SecurableRef {
        SecurableRef {
            securable_type,
            full_name: full_name.into(),
        }
    }

    /// The same securable, borrowed.
    pub fn as_view(&self) -> SecurableView<'_> {
        SecurableView {
            securable_type: self.securable_type,
            full_name: &self.full_name,
        }
    }
}

impl fmt::Display for SecurableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.securable_type, self.full_name)
    }
}

/// A securable as callers name it, borrowed from the model rather than copied: what
/// [`crate::Explanation`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurableView<'a> {
    pub securable_type: SecurableType,
    pub full_name: &'a str,
}

impl SecurableView<'_> {
    /// The same as an owned [`SecurableRef`].
    pub fn to_ref(&self) -> SecurableRef {
        SecurableRef::new(self.securable_type, self.full_name)
    }
}

impl fmt::Display for SecurableView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.securable_type, self.full_name)
    }
}

/// Checks a full name's shape and returns it in canonical (lower-case) form, as Unity Catalog
/// folds identifiers to lower case.
pub(crate) fn canonical_name(
    securable_type: SecurableType,
    full_name: &str,
) -> Result<String, AccessError> {
    let invalid = |why: &str| AccessError::InvalidSecurableName {
        securable_type,
        full_name: full_name.to_string(),
        why: why.to_string(),
    };
    let trimmed = full_name.trim();
    if trimmed.is_empty() {
        return Err(invalid("the name is empty"));
    }
    let parts: Vec<&str> = trimmed.split('.').collect();
    if parts.len() != securable_type.name_parts() {
        return Err(invalid(&format!(
            "a {} name has {} dot-separated part(s)",
            securable_type,
            securable_type.name_parts()
        )));
    }
    if parts.iter().any(|part| part.trim().is_empty()) {
        return Err(invalid("a part of the name is empty"));
    }
    Ok(parts
        .iter()
        .map(|part| part.trim().to_lowercase())
        .collect::<Vec<_>>()
        .join("."))
}

/// The full name of a tree object's parent (`cat.sch` for `cat.sch.tbl`).
pub(crate) fn parent_name(canonical: &str) -> Option<&str> {
    canonical.rsplit_once('.').map(|(parent, _)| parent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn all_privileges_never_stands_for_manage() {
        for kind in SecurableType::ALL {
            let expansion = kind.all_privileges_expansion();
            assert!(!expansion.contains(Privilege::Manage));
            assert!(!expansion.contains(Privilege::AllPrivileges));
            assert!(!expansion.contains(Privilege::ExternalUseSchema));
        }
        assert!(SecurableType::Table
            .all_privileges_expansion()
            .contains(Privilege::Select));
    }

    #[test]
    fn the_metastore_takes_no_all_privileges() {
        assert!(SecurableType::Metastore
            .all_privileges_expansion()
            .is_empty());
    }

    #[test]
    fn names_are_checked_and_folded_to_lower_case() {
        assert_eq!(
            canonical_name(SecurableType::Table, "Main.Sales.Orders").unwrap(),
            "main.sales.orders"
        );
        assert!(canonical_name(SecurableType::Table, "main.sales").is_err());
        assert!(canonical_name(SecurableType::Schema, "main..x").is_err());
        assert!(canonical_name(SecurableType::Catalog, "").is_err());
    }

    #[test]
    fn type_names_parse_in_every_spelling() {
        assert_eq!(
            SecurableType::parse("external location").unwrap(),
            SecurableType::ExternalLocation
        );
        assert_eq!(
            SecurableType::parse("database").unwrap(),
            SecurableType::Schema
        );
        assert_eq!(
            SecurableType::parse("catalog").unwrap(),
            SecurableType::Catalog
        );
        assert!(SecurableType::parse("share").is_err());
    }
}
