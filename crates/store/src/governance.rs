//! Governance state as stored: Unity Catalog securables, their owners and grants, workspace
//! objects and their ACLs; and the access log, the ordered record of every change that can
//! alter an access answer.
//!
//! The access engine (`scimitar-access`) answers questions from memory. It is built from an
//! [`AccessSnapshot`] and then kept current by replaying [`LoggedEvent`]s in log order. Every
//! backend writes the log rows in the same transaction as the change they describe, so the
//! log never disagrees with the tables, and a reader that has replayed up to sequence number
//! `n` has seen exactly the committed state as of `n`. The same log lets several nodes
//! follow each other's writes, and a sequence number is the change token a client can hand
//! back to read its own writes.

use scimitar_access::{
    AclEntry, BindingType, IsolationMode, ObjectType, PermissionLevel, Privilege, SecurableType,
    WorkspacePermission,
};
use scimitar_domain::resource::IndexKeys;
use scimitar_domain::{
    AccountId, Principal, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp, WorkspaceId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A change to governance state, already validated by the access engine (the securable
/// exists, the privileges apply to its type, the caller may make it).
///
/// Its serde form is the one the access log stores (see [`AccessEvent::to_json`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum GovernanceChange {
    /// Registers a securable with its owner. Its parent catalog or schema must exist.
    CreateSecurable {
        #[serde(with = "wire")]
        securable_type: SecurableType,
        full_name: String,
        #[serde(with = "wire")]
        owner: PrincipalId,
        #[serde(deserialize_with = "present")]
        comment: Option<String>,
        #[serde(with = "micros")]
        created: Timestamp,
    },
    /// Drops a securable with everything below it and all their grants.
    DropSecurable {
        #[serde(with = "wire")]
        securable_type: SecurableType,
        full_name: String,
    },
    SetOwner {
        #[serde(with = "wire")]
        securable_type: SecurableType,
        full_name: String,
        #[serde(with = "wire")]
        owner: PrincipalId,
    },
    /// Renames a catalog or schema to `new_name` (its new full name, under the same parent),
    /// with everything below it and all their grants, in one step: no reader, and no node
    /// following the log, sees the tree half renamed.
    RenameSecurable {
        #[serde(with = "wire")]
        securable_type: SecurableType,
        full_name: String,
        new_name: String,
    },
    /// Sets a securable's comment (`None` clears it). A comment alters no access answer, so
    /// this is written but not logged, and has no serde form of its own.
    #[serde(skip)]
    SetComment {
        securable_type: SecurableType,
        full_name: String,
        comment: Option<String>,
    },
    /// Adds privileges to what the principal holds on the securable.
    Grant {
        #[serde(with = "wire")]
        securable_type: SecurableType,
        full_name: String,
        #[serde(with = "wire")]
        principal: PrincipalId,
        #[serde(with = "wire_list")]
        privileges: Vec<Privilege>,
    },
    /// Removes exactly these privileges (`ALL_PRIVILEGES` already expanded by the caller).
    Revoke {
        #[serde(with = "wire")]
        securable_type: SecurableType,
        full_name: String,
        #[serde(with = "wire")]
        principal: PrincipalId,
        #[serde(with = "wire_list")]
        privileges: Vec<Privilege>,
    },
    /// Makes an object's direct ACL exactly `entries` (one per principal), registering the
    /// object if it is new.
    SetObjectAcl {
        #[serde(with = "wire")]
        object_type: ObjectType,
        object_id: String,
        #[serde(with = "acl_entries")]
        entries: Vec<AclEntry>,
    },
    /// Puts an object into a directory (`None`: at the top), registering both if new.
    SetObjectParent {
        #[serde(with = "wire")]
        object_type: ObjectType,
        object_id: String,
        #[serde(deserialize_with = "present")]
        directory: Option<String>,
    },
    /// Creates a workspace object at a path of the workspace tree (the Workspace API:
    /// `mkdirs`, `import`), in `entry.directory` (`None`: at the root). Refused with a
    /// uniqueness error when the path is taken or the object already exists. The access log
    /// records it as the [`GovernanceChange::SetObjectParent`] it amounts to (placement is all
    /// the engine keeps), so this variant has no serde form of its own.
    #[serde(skip)]
    CreateWorkspaceEntry { entry: WorkspaceEntry },
    /// Forgets a workspace object and its ACL.
    RemoveObject {
        #[serde(with = "wire")]
        object_type: ObjectType,
        object_id: String,
    },
    /// Sets a catalog's isolation mode (`OPEN`, `ISOLATED`); its bindings are kept either way.
    SetIsolationMode {
        catalog: String,
        #[serde(with = "wire")]
        isolation_mode: IsolationMode,
    },
    /// Binds a workspace of the account to a catalog (`None`: unbinds it).
    BindWorkspace {
        catalog: String,
        #[serde(with = "wire")]
        workspace: WorkspaceId,
        #[serde(with = "optional_binding")]
        binding_type: Option<BindingType>,
    },
    /// A precondition, not a change: the object's direct ACL is exactly `entries` (in any
    /// order; none for an object without one), or the batch it is in is refused as a conflict
    /// (412) and writes nothing. A node computes a new ACL from its in-memory view, which may
    /// be behind another node's write; batched before the `SetObjectAcl`, this turns what would
    /// be a lost update into a retry. It writes nothing and is not logged.
    ExpectObjectAcl {
        #[serde(with = "wire")]
        object_type: ObjectType,
        object_id: String,
        #[serde(with = "acl_entries")]
        entries: Vec<AclEntry>,
    },
}

impl GovernanceChange {
    /// Whether this only checks state (and so has no access-log entry).
    pub fn is_precondition(&self) -> bool {
        matches!(self, GovernanceChange::ExpectObjectAcl { .. })
    }
}

/// Whether two ACLs hold the same entries, whatever their order.
pub fn same_acl(left: &[AclEntry], right: &[AclEntry]) -> bool {
    let key = |entry: &AclEntry| (entry.principal.clone(), entry.level.as_str());
    let mut left: Vec<_> = left.iter().map(key).collect();
    let mut right: Vec<_> = right.iter().map(key).collect();
    left.sort();
    right.sort();
    left == right
}

/// What the access engine needs to know of a principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalFacts {
    #[serde(with = "wire")]
    pub id: PrincipalId,
    #[serde(with = "wire")]
    pub kind: PrincipalKind,
    /// How Databricks names it in grants: userName, group displayName, or applicationId.
    pub name: String,
    pub active: bool,
    /// The entitlement values a principal's document carried when entitlements were per
    /// account. They are per workspace now ([`AccessEvent::EntitlementsSet`], SQLite migration
    /// 12, PostgreSQL 9), and this is written empty; the field stays so that entries of
    /// earlier builds, and of this one, keep their stored form.
    pub entitlements: Vec<String>,
}

impl PrincipalFacts {
    pub fn of(principal: &Principal) -> PrincipalFacts {
        PrincipalFacts::from_keys(principal, &principal.index_keys())
    }

    /// [`PrincipalFacts::of`] from index keys a caller has already computed (the backends do,
    /// for their columns, in the same write).
    pub fn from_keys(principal: &Principal, keys: &IndexKeys) -> PrincipalFacts {
        let name = match principal.kind {
            PrincipalKind::User => keys.user_name.clone(),
            PrincipalKind::Group => keys.display_name.clone(),
            PrincipalKind::ServicePrincipal => keys
                .application_id
                .clone()
                .or_else(|| keys.display_name.clone()),
        }
        .unwrap_or_else(|| principal.id.to_string());
        PrincipalFacts {
            id: principal.id.clone(),
            kind: principal.kind,
            name,
            // Groups have no active flag; a missing one on a user means active, as in SCIM.
            active: keys.active.unwrap_or(true),
            entitlements: Vec::new(),
        }
    }
}

/// The values of an `entitlements` attribute (`[{"value": "workspace-access"}, ...]`), in
/// order; elements without a string `value` name none.
pub fn entitlement_values(entitlements: &Value) -> Vec<String> {
    entitlements
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|value| value.get("value").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// One entry of the access log.
///
/// Stored as a JSON object tagged by `event` (`principal_saved`, `member_added`,
/// `create_securable`, ...): the derives here and on [`PrincipalFacts`] and
/// [`GovernanceChange`] are that format, held byte for byte to what earlier builds wrote by a
/// golden test. Every field is required when read back, so a damaged or incomplete entry is
/// an error, never a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum AccessEvent {
    /// A principal was created or changed (its name or active flag may differ).
    PrincipalSaved(PrincipalFacts),
    /// A principal was deleted, with its memberships, grants and ACL entries.
    PrincipalDeleted {
        #[serde(with = "wire")]
        id: PrincipalId,
    },
    MemberAdded {
        #[serde(with = "wire")]
        group: PrincipalId,
        #[serde(with = "wire")]
        member: PrincipalId,
    },
    MemberRemoved {
        #[serde(with = "wire")]
        group: PrincipalId,
        #[serde(with = "wire")]
        member: PrincipalId,
    },
    /// What a principal is directly assigned in a workspace changed (`None`: unassigned).
    WorkspaceAssigned {
        #[serde(with = "wire")]
        workspace: WorkspaceId,
        #[serde(with = "wire")]
        principal: PrincipalId,
        #[serde(with = "optional_permission")]
        permission: Option<WorkspacePermission>,
    },
    /// A workspace was deleted, with its assignments and entitlements.
    WorkspaceDeleted {
        #[serde(with = "wire")]
        workspace: WorkspaceId,
    },
    /// What a principal is assigned itself in a workspace changed: these entitlement values,
    /// as stored (none: it holds none there itself any more).
    EntitlementsSet {
        #[serde(with = "wire")]
        workspace: WorkspaceId,
        #[serde(with = "wire")]
        principal: PrincipalId,
        entitlements: Vec<String>,
    },
    /// A token was deleted or its expiry shortened (rotation): every node drops it from its
    /// token cache, so its next request is decided from storage.
    TokenChanged { id: String },
    /// Tagged by the change's own `event` (`grant`, `set_object_acl`, ...).
    #[serde(untagged)]
    Governance(GovernanceChange),
}

/// An access-log entry with its position in the log and its account.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub seq: u64,
    pub account: AccountId,
    pub event: AccessEvent,
}

/// A stored securable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurableRow {
    pub securable_type: SecurableType,
    pub full_name: String,
    pub owner: PrincipalId,
    pub comment: Option<String>,
    pub created: Timestamp,
    /// A catalog's isolation mode; `OPEN` for every other type.
    pub isolation_mode: IsolationMode,
}

/// A workspace bound to a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRow {
    pub catalog: String,
    pub workspace: WorkspaceId,
    pub binding_type: BindingType,
}

/// One privilege held by one principal on one securable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub securable_type: SecurableType,
    pub full_name: String,
    pub principal: PrincipalId,
    pub privilege: Privilege,
}

/// A workspace object and the directory it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    pub object_type: ObjectType,
    pub object_id: String,
    pub directory: Option<String>,
    /// Its path in the workspace tree, for objects made through the Workspace API; objects
    /// known only from their ACL (a job, a cluster) have none.
    pub path: Option<String>,
    /// A notebook's language, with its path.
    pub language: Option<String>,
    /// The workspace it belongs to: the one whose tree holds it, or, for an object known
    /// only from its ACL, the one it was first written from.
    pub workspace: WorkspaceId,
}

/// A workspace object at a path of the workspace tree (the Workspace API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceEntry {
    pub object_type: ObjectType,
    pub object_id: String,
    /// Absolute and normalized (`/Users/ana/reports`, `/` never stored); unique in its
    /// workspace.
    pub path: String,
    /// The directory it sits in (`None`: the workspace root).
    pub directory: Option<String>,
    /// A notebook's language (`PYTHON`, `SQL`, `SCALA`, `R`).
    pub language: Option<String>,
}

/// One direct ACL entry of a workspace object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRow {
    pub object_type: ObjectType,
    pub object_id: String,
    pub entry: AclEntry,
}

/// An account's whole access state as of log position `seq`: replaying the log from
/// `seq + 1` on top of it gives the current state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessSnapshot {
    pub seq: u64,
    /// How many access-log entries of this account are at or before `seq`: what the
    /// account's change tokens count (`docs/design/node-state.md`).
    pub log_entries: u64,
    pub principals: Vec<PrincipalFacts>,
    /// `(group, member)` pairs.
    pub memberships: Vec<(PrincipalId, PrincipalId)>,
    /// Parents before children (catalogs, then schemas, then the rest).
    pub securables: Vec<SecurableRow>,
    pub grants: Vec<GrantRow>,
    /// Directories before what they contain is not guaranteed; register objects first, then
    /// parents.
    pub objects: Vec<ObjectRow>,
    pub acl: Vec<AclRow>,
    /// Direct workspace assignments: `(workspace, principal, permission)`.
    pub assignments: Vec<(WorkspaceId, PrincipalId, WorkspacePermission)>,
    /// Catalog workspace bindings, by catalog and workspace.
    pub bindings: Vec<BindingRow>,
    /// What each principal is assigned itself in each workspace: `(workspace, principal,
    /// entitlement values)`, by workspace and principal.
    pub entitlements: Vec<(WorkspaceId, PrincipalId, Vec<String>)>,
}

/// The names a value is stored by: the stable wire names of the access crate (`USE_CATALOG`,
/// `CAN_MANAGE`, `jobs`) and of the domain (`User`), never Rust variant names.
trait WireName: Sized {
    fn wire(&self) -> &str;
    fn from_wire(text: &str) -> Result<Self, String>;
}

impl WireName for PrincipalId {
    fn wire(&self) -> &str {
        self.as_str()
    }
    fn from_wire(text: &str) -> Result<Self, String> {
        Ok(PrincipalId::new(text))
    }
}

impl WireName for WorkspaceId {
    fn wire(&self) -> &str {
        self.as_str()
    }
    fn from_wire(text: &str) -> Result<Self, String> {
        Ok(WorkspaceId::new(text))
    }
}

impl WireName for PrincipalKind {
    fn wire(&self) -> &str {
        self.as_str()
    }
    fn from_wire(text: &str) -> Result<Self, String> {
        PrincipalKind::parse(text).ok_or_else(|| format!("unknown principal kind '{text}'"))
    }
}

macro_rules! wire_names_of_the_access_crate {
    ($($name:ty),+) => {$(
        impl WireName for $name {
            fn wire(&self) -> &str {
                self.as_str()
            }
            fn from_wire(text: &str) -> Result<Self, String> {
                <$name>::parse(text).map_err(|error| error.to_string())
            }
        }
    )+};
}

wire_names_of_the_access_crate!(SecurableType, Privilege, ObjectType, PermissionLevel);

/// `#[serde(with = "wire")]`: a value as its wire name.
mod wire {
    use super::WireName;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: WireName, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.wire())
    }

    pub fn deserialize<'de, T: WireName, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        T::from_wire(&String::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "optional_permission")]`: a workspace permission by its wire name, or
/// `null`; the field must be present (a custom deserializer makes a missing one an error).
mod optional_permission {
    use scimitar_access::WorkspacePermission;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<WorkspacePermission>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(permission) => serializer.serialize_some(permission.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<WorkspacePermission>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| {
                WorkspacePermission::parse(&text).ok_or_else(|| {
                    D::Error::custom(format!("unknown workspace permission '{text}'"))
                })
            })
            .transpose()
    }
}

macro_rules! optional_wire_names_of_the_access_crate {
    ($($name:ty),+) => {$(
        impl WireName for $name {
            fn wire(&self) -> &str {
                self.as_str()
            }
            fn from_wire(text: &str) -> Result<Self, String> {
                <$name>::parse(text).ok_or_else(|| format!("unknown value '{text}'"))
            }
        }
    )+};
}

optional_wire_names_of_the_access_crate!(IsolationMode, BindingType);

/// `#[serde(with = "optional_binding")]`: a binding type by its wire name, or `null`; the
/// field must be present.
mod optional_binding {
    use super::WireName;
    use scimitar_access::BindingType;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<BindingType>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(binding) => serializer.serialize_some(binding.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<BindingType>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| BindingType::from_wire(&text).map_err(D::Error::custom))
            .transpose()
    }
}

/// `#[serde(with = "wire_list")]`: values as a list of their wire names.
mod wire_list {
    use super::WireName;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: WireName, S: Serializer>(
        values: &[T],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(WireName::wire))
    }

    pub fn deserialize<'de, T: WireName, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| T::from_wire(text).map_err(D::Error::custom))
            .collect()
    }
}

/// `#[serde(with = "acl_entries")]`: an ACL as `[{"principal": ..., "level": ...}]`.
mod acl_entries {
    use scimitar_access::{AclEntry, PermissionLevel};
    use scimitar_domain::PrincipalId;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        #[serde(with = "super::wire")]
        principal: PrincipalId,
        #[serde(with = "super::wire")]
        level: PermissionLevel,
    }

    pub fn serialize<S: Serializer>(
        entries: &[AclEntry],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(entries.iter().map(|entry| Entry {
            principal: entry.principal.clone(),
            level: entry.level,
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<AclEntry>, D::Error> {
        Ok(Vec::<Entry>::deserialize(deserializer)?
            .into_iter()
            .map(|entry| AclEntry::new(entry.principal, entry.level))
            .collect())
    }
}

/// `#[serde(with = "micros")]`: a time as integer microseconds since the epoch.
mod micros {
    use scimitar_domain::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(time.as_micros())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(deserializer).map(Timestamp::from_micros)
    }
}

/// `#[serde(deserialize_with = "present")]` on an optional field: it must be there, `null` or
/// a value. (Without it serde reads a missing optional field as `None`; the log always writes
/// these fields, so a missing one means a damaged entry.)
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

impl AccessEvent {
    /// The stored form: a JSON object with an `event` tag (see the derives above). A workspace
    /// entry's creation is stored as the placement it amounts to (placement is all the engine
    /// keeps), and read back as one.
    pub fn to_json(&self) -> ScimResult<String> {
        let written = match self {
            AccessEvent::Governance(GovernanceChange::CreateWorkspaceEntry { entry }) => {
                serde_json::to_string(&AccessEvent::Governance(
                    GovernanceChange::SetObjectParent {
                        object_type: entry.object_type,
                        object_id: entry.object_id.clone(),
                        directory: entry.directory.clone(),
                    },
                ))
            }
            other => serde_json::to_string(other),
        };
        written.map_err(|error| {
            ScimError::internal_caused_by("cannot write an access log entry", error)
        })
    }

    /// An entry as stored: every field must be there and readable, or it is an error.
    pub fn from_json(stored: &str) -> ScimResult<AccessEvent> {
        serde_json::from_str(stored).map_err(|error| {
            ScimError::internal_caused_by("an access log entry cannot be read", error)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_event_survives_its_stored_form() {
        let events = vec![
            AccessEvent::PrincipalSaved(PrincipalFacts {
                id: PrincipalId::new("u1"),
                kind: PrincipalKind::User,
                name: "alice@example.com".into(),
                active: false,
                entitlements: vec!["workspace-access".into()],
            }),
            AccessEvent::PrincipalDeleted {
                id: PrincipalId::new("u1"),
            },
            AccessEvent::MemberAdded {
                group: PrincipalId::new("g"),
                member: PrincipalId::new("u1"),
            },
            AccessEvent::MemberRemoved {
                group: PrincipalId::new("g"),
                member: PrincipalId::new("u1"),
            },
            AccessEvent::Governance(GovernanceChange::CreateSecurable {
                securable_type: SecurableType::Schema,
                full_name: "main.sales".into(),
                owner: PrincipalId::new("u1"),
                comment: Some("quarterly".into()),
                created: Timestamp::from_micros(7),
            }),
            AccessEvent::Governance(GovernanceChange::DropSecurable {
                securable_type: SecurableType::Catalog,
                full_name: "main".into(),
            }),
            AccessEvent::Governance(GovernanceChange::SetOwner {
                securable_type: SecurableType::Table,
                full_name: "main.sales.orders".into(),
                owner: PrincipalId::new("g"),
            }),
            AccessEvent::Governance(GovernanceChange::Grant {
                securable_type: SecurableType::Schema,
                full_name: "main.sales".into(),
                principal: PrincipalId::new("g"),
                privileges: vec![Privilege::UseSchema, Privilege::Select],
            }),
            AccessEvent::Governance(GovernanceChange::Revoke {
                securable_type: SecurableType::Schema,
                full_name: "main.sales".into(),
                principal: PrincipalId::new("g"),
                privileges: vec![Privilege::AllPrivileges],
            }),
            AccessEvent::Governance(GovernanceChange::SetObjectAcl {
                object_type: ObjectType::Jobs,
                object_id: "42".into(),
                entries: vec![AclEntry::new(
                    PrincipalId::new("g"),
                    PermissionLevel::CanManageRun,
                )],
            }),
            AccessEvent::Governance(GovernanceChange::SetObjectParent {
                object_type: ObjectType::Notebooks,
                object_id: "7".into(),
                directory: Some("3".into()),
            }),
            AccessEvent::Governance(GovernanceChange::RemoveObject {
                object_type: ObjectType::Notebooks,
                object_id: "7".into(),
            }),
            AccessEvent::Governance(GovernanceChange::ExpectObjectAcl {
                object_type: ObjectType::Jobs,
                object_id: "42".into(),
                entries: vec![],
            }),
            AccessEvent::Governance(GovernanceChange::SetIsolationMode {
                catalog: "main".into(),
                isolation_mode: IsolationMode::Isolated,
            }),
            AccessEvent::Governance(GovernanceChange::BindWorkspace {
                catalog: "main".into(),
                workspace: WorkspaceId::new("1001"),
                binding_type: Some(BindingType::ReadOnly),
            }),
            AccessEvent::Governance(GovernanceChange::BindWorkspace {
                catalog: "main".into(),
                workspace: WorkspaceId::new("1001"),
                binding_type: None,
            }),
            AccessEvent::EntitlementsSet {
                workspace: WorkspaceId::new("1001"),
                principal: PrincipalId::new("u1"),
                entitlements: vec!["allow-cluster-create".into()],
            },
        ];
        for event in events {
            assert_eq!(
                AccessEvent::from_json(&event.to_json().unwrap()).unwrap(),
                event
            );
        }
    }

    /// Every kind of entry with the exact text the log holds for it, as the hand-written encoder
    /// of the first releases wrote it (captured from that code before the stored form became
    /// serde-derived): entries already in a database must keep decoding to the same event, and
    /// new ones must be written byte for byte the same. The third element is the event an entry
    /// reads back as, where that is not the one written.
    fn golden_entries() -> Vec<(AccessEvent, &'static str, Option<AccessEvent>)> {
        let notebook_in_directory = GovernanceChange::SetObjectParent {
            object_type: ObjectType::Notebooks,
            object_id: "12".into(),
            directory: Some("11".into()),
        };
        vec![
            (
                AccessEvent::PrincipalSaved(PrincipalFacts {
                    id: PrincipalId::new("u1"),
                    kind: PrincipalKind::User,
                    name: "alice@example.com".into(),
                    active: false,
                    entitlements: vec!["workspace-access".into(), "databricks-sql-access".into()],
                }),
                r#"{"event":"principal_saved","id":"u1","kind":"User","name":"alice@example.com","active":false,"entitlements":["workspace-access","databricks-sql-access"]}"#,
                None,
            ),
            (
                AccessEvent::PrincipalSaved(PrincipalFacts {
                    id: PrincipalId::new("g"),
                    kind: PrincipalKind::Group,
                    name: "Data \"Team\" ✓".into(),
                    active: true,
                    entitlements: vec![],
                }),
                r#"{"event":"principal_saved","id":"g","kind":"Group","name":"Data \"Team\" ✓","active":true,"entitlements":[]}"#,
                None,
            ),
            (
                AccessEvent::PrincipalSaved(PrincipalFacts {
                    id: PrincipalId::new("sp"),
                    kind: PrincipalKind::ServicePrincipal,
                    name: "9f0c-ci".into(),
                    active: true,
                    entitlements: vec![],
                }),
                r#"{"event":"principal_saved","id":"sp","kind":"ServicePrincipal","name":"9f0c-ci","active":true,"entitlements":[]}"#,
                None,
            ),
            (
                AccessEvent::PrincipalDeleted {
                    id: PrincipalId::new("u1"),
                },
                r#"{"event":"principal_deleted","id":"u1"}"#,
                None,
            ),
            (
                AccessEvent::MemberAdded {
                    group: PrincipalId::new("g"),
                    member: PrincipalId::new("u1"),
                },
                r#"{"event":"member_added","group":"g","member":"u1"}"#,
                None,
            ),
            (
                AccessEvent::MemberRemoved {
                    group: PrincipalId::new("g"),
                    member: PrincipalId::new("u1"),
                },
                r#"{"event":"member_removed","group":"g","member":"u1"}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::CreateSecurable {
                    securable_type: SecurableType::Schema,
                    full_name: "main.sales".into(),
                    owner: PrincipalId::new("u1"),
                    comment: Some("quarterly".into()),
                    created: Timestamp::from_micros(1_700_000_000_123_456),
                }),
                r#"{"event":"create_securable","securable_type":"SCHEMA","full_name":"main.sales","owner":"u1","comment":"quarterly","created":1700000000123456}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::CreateSecurable {
                    securable_type: SecurableType::ExternalLocation,
                    full_name: "landing".into(),
                    owner: PrincipalId::new("g"),
                    comment: None,
                    created: Timestamp::from_micros(-5),
                }),
                r#"{"event":"create_securable","securable_type":"EXTERNAL_LOCATION","full_name":"landing","owner":"g","comment":null,"created":-5}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::DropSecurable {
                    securable_type: SecurableType::Catalog,
                    full_name: "main".into(),
                }),
                r#"{"event":"drop_securable","securable_type":"CATALOG","full_name":"main"}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::SetOwner {
                    securable_type: SecurableType::Table,
                    full_name: "main.sales.orders".into(),
                    owner: PrincipalId::new("g"),
                }),
                r#"{"event":"set_owner","securable_type":"TABLE","full_name":"main.sales.orders","owner":"g"}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::RenameSecurable {
                    securable_type: SecurableType::Catalog,
                    full_name: "main".into(),
                    new_name: "prod".into(),
                }),
                r#"{"event":"rename_securable","securable_type":"CATALOG","full_name":"main","new_name":"prod"}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::Grant {
                    securable_type: SecurableType::Schema,
                    full_name: "main.sales".into(),
                    principal: PrincipalId::new("g"),
                    privileges: vec![Privilege::UseSchema, Privilege::Select],
                }),
                r#"{"event":"grant","securable_type":"SCHEMA","full_name":"main.sales","principal":"g","privileges":["USE_SCHEMA","SELECT"]}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::Revoke {
                    securable_type: SecurableType::Schema,
                    full_name: "main.sales".into(),
                    principal: PrincipalId::new("g"),
                    privileges: vec![Privilege::AllPrivileges],
                }),
                r#"{"event":"revoke","securable_type":"SCHEMA","full_name":"main.sales","principal":"g","privileges":["ALL_PRIVILEGES"]}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::SetObjectAcl {
                    object_type: ObjectType::Jobs,
                    object_id: "42".into(),
                    entries: vec![
                        AclEntry::new(PrincipalId::new("g"), PermissionLevel::CanManageRun),
                        AclEntry::new(PrincipalId::new("u1"), PermissionLevel::IsOwner),
                    ],
                }),
                r#"{"event":"set_object_acl","object_type":"jobs","object_id":"42","entries":[{"principal":"g","level":"CAN_MANAGE_RUN"},{"principal":"u1","level":"IS_OWNER"}]}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::SetObjectAcl {
                    object_type: ObjectType::Tokens,
                    object_id: "tokens".into(),
                    entries: vec![],
                }),
                r#"{"event":"set_object_acl","object_type":"authorization/tokens","object_id":"tokens","entries":[]}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::SetObjectParent {
                    object_type: ObjectType::Notebooks,
                    object_id: "7".into(),
                    directory: Some("3".into()),
                }),
                r#"{"event":"set_object_parent","object_type":"notebooks","object_id":"7","directory":"3"}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::SetObjectParent {
                    object_type: ObjectType::Directories,
                    object_id: "3".into(),
                    directory: None,
                }),
                r#"{"event":"set_object_parent","object_type":"directories","object_id":"3","directory":null}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::CreateWorkspaceEntry {
                    entry: WorkspaceEntry {
                        object_type: ObjectType::Notebooks,
                        object_id: "12".into(),
                        path: "/Shared/team/nb".into(),
                        directory: Some("11".into()),
                        language: Some("PYTHON".into()),
                    },
                }),
                r#"{"event":"set_object_parent","object_type":"notebooks","object_id":"12","directory":"11"}"#,
                Some(AccessEvent::Governance(notebook_in_directory)),
            ),
            (
                AccessEvent::Governance(GovernanceChange::ExpectObjectAcl {
                    object_type: ObjectType::Jobs,
                    object_id: "42".into(),
                    entries: vec![AclEntry::new(
                        PrincipalId::new("g"),
                        PermissionLevel::CanView,
                    )],
                }),
                r#"{"event":"expect_object_acl","object_type":"jobs","object_id":"42","entries":[{"principal":"g","level":"CAN_VIEW"}]}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::RemoveObject {
                    object_type: ObjectType::Notebooks,
                    object_id: "7".into(),
                }),
                r#"{"event":"remove_object","object_type":"notebooks","object_id":"7"}"#,
                None,
            ),
            (
                AccessEvent::WorkspaceAssigned {
                    workspace: WorkspaceId::new("1001"),
                    principal: PrincipalId::new("g"),
                    permission: Some(WorkspacePermission::Admin),
                },
                r#"{"event":"workspace_assigned","workspace":"1001","principal":"g","permission":"ADMIN"}"#,
                None,
            ),
            (
                AccessEvent::WorkspaceAssigned {
                    workspace: WorkspaceId::new("1001"),
                    principal: PrincipalId::new("u1"),
                    permission: None,
                },
                r#"{"event":"workspace_assigned","workspace":"1001","principal":"u1","permission":null}"#,
                None,
            ),
            (
                AccessEvent::WorkspaceDeleted {
                    workspace: WorkspaceId::new("1001"),
                },
                r#"{"event":"workspace_deleted","workspace":"1001"}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::SetIsolationMode {
                    catalog: "main".into(),
                    isolation_mode: IsolationMode::Isolated,
                }),
                r#"{"event":"set_isolation_mode","catalog":"main","isolation_mode":"ISOLATED"}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::BindWorkspace {
                    catalog: "main".into(),
                    workspace: WorkspaceId::new("1001"),
                    binding_type: Some(BindingType::ReadOnly),
                }),
                r#"{"event":"bind_workspace","catalog":"main","workspace":"1001","binding_type":"BINDING_TYPE_READ_ONLY"}"#,
                None,
            ),
            (
                AccessEvent::Governance(GovernanceChange::BindWorkspace {
                    catalog: "main".into(),
                    workspace: WorkspaceId::new("1001"),
                    binding_type: None,
                }),
                r#"{"event":"bind_workspace","catalog":"main","workspace":"1001","binding_type":null}"#,
                None,
            ),
            (
                AccessEvent::EntitlementsSet {
                    workspace: WorkspaceId::new("1001"),
                    principal: PrincipalId::new("u1"),
                    entitlements: vec!["allow-cluster-create".into(), "workspace-access".into()],
                },
                r#"{"event":"entitlements_set","workspace":"1001","principal":"u1","entitlements":["allow-cluster-create","workspace-access"]}"#,
                None,
            ),
            (
                AccessEvent::EntitlementsSet {
                    workspace: WorkspaceId::new("1001"),
                    principal: PrincipalId::new("g"),
                    entitlements: vec![],
                },
                r#"{"event":"entitlements_set","workspace":"1001","principal":"g","entitlements":[]}"#,
                None,
            ),
        ]
    }

    /// A principal's own document no longer carries entitlements into the log: a
    /// `principal_saved` entry is written with none, whatever the document held.
    #[test]
    fn a_saved_principal_is_logged_without_entitlements() {
        let mut attributes = serde_json::Map::new();
        attributes.insert("userName".into(), Value::String("alice".into()));
        attributes.insert(
            "entitlements".into(),
            serde_json::json!([{"value": "allow-cluster-create"}]),
        );
        let principal = Principal {
            id: PrincipalId::new("u1"),
            kind: PrincipalKind::User,
            attributes,
            password_hash: None,
            system: false,
            created: Timestamp::from_micros(1),
            last_modified: Timestamp::from_micros(1),
            version: 1,
        };
        let stored = AccessEvent::PrincipalSaved(PrincipalFacts::of(&principal))
            .to_json()
            .unwrap();
        assert_eq!(
            stored,
            r#"{"event":"principal_saved","id":"u1","kind":"User","name":"alice","active":true,"entitlements":[]}"#
        );
    }

    #[test]
    fn entitlement_values_are_read_in_order_and_elements_without_one_are_skipped() {
        let values = entitlement_values(&serde_json::json!([
            {"value": "workspace-access"},
            {"display": "no value"},
            {"value": "allow-cluster-create", "display": "clusters"},
        ]));
        assert_eq!(values, ["workspace-access", "allow-cluster-create"]);
        assert!(entitlement_values(&Value::Null).is_empty());
    }

    #[test]
    fn every_event_is_stored_as_the_golden_text_and_read_back_from_it() {
        for (event, stored, read_as) in golden_entries() {
            assert_eq!(event.to_json().unwrap(), stored, "{event:?}");
            let expected = read_as.unwrap_or(event);
            assert_eq!(
                AccessEvent::from_json(stored).unwrap(),
                expected,
                "{stored}"
            );
        }
    }

    /// Entries that earlier decoders read with a default (a missing `active` as true, a missing
    /// `created` as 0, a missing list as empty) or with a field ignored: each is an error now.
    #[test]
    fn a_damaged_or_incomplete_entry_is_an_error_never_a_default() {
        for stored in [
            r#"{"event":"principal_saved","id":"u1","kind":"User","name":"a","entitlements":[]}"#,
            r#"{"event":"principal_saved","id":"u1","kind":"User","name":"a","active":"yes","entitlements":[]}"#,
            r#"{"event":"principal_saved","id":"u1","kind":"User","name":"a","active":true}"#,
            r#"{"event":"principal_saved","id":"u1","kind":"Robot","name":"a","active":true,"entitlements":[]}"#,
            r#"{"event":"principal_saved","id":"u1","kind":"User","name":"a","active":true,"entitlements":[],"admin":true}"#,
            r#"{"event":"member_added","group":"g"}"#,
            r#"{"event":"create_securable","securable_type":"SCHEMA","full_name":"m.s","owner":"u1","comment":null}"#,
            r#"{"event":"create_securable","securable_type":"SCHEMA","full_name":"m.s","owner":"u1","created":7}"#,
            r#"{"event":"grant","securable_type":"SCHEMA","full_name":"m.s","principal":"g","privileges":[7]}"#,
            r#"{"event":"grant","securable_type":"SCHEMA","full_name":"m.s","principal":"g","privileges":["SELEKT"]}"#,
            r#"{"event":"set_object_parent","object_type":"notebooks","object_id":"7"}"#,
            r#"{"event":"set_object_acl","object_type":"jobs","object_id":"42","entries":[{"principal":"g"}]}"#,
            r#"{"event":"remove_object","object_type":"spaceships","object_id":"7"}"#,
            r#"{"event":"create_workspace_entry","entry":{}}"#,
            r#"{"event":"workspace_assigned","workspace":"1","principal":"u1"}"#,
            r#"{"event":"workspace_assigned","workspace":"1","principal":"u1","permission":"admin"}"#,
            r#"{"event":"workspace_deleted"}"#,
            r#"{"event":"set_isolation_mode","catalog":"main","isolation_mode":"isolated"}"#,
            r#"{"event":"bind_workspace","catalog":"main","workspace":"1"}"#,
            r#"{"event":"entitlements_set","workspace":"1","principal":"u1"}"#,
            r#"{"event":"entitlements_set","workspace":"1","entitlements":[]}"#,
            r#"{"event":"entitlements_set","workspace":"1","principal":"u1","entitlements":"workspace-access"}"#,
            r#"{"event":"bind_workspace","catalog":"main","workspace":"1","binding_type":"READ_ONLY"}"#,
        ] {
            assert!(
                matches!(AccessEvent::from_json(stored), Err(ScimError::Internal(_))),
                "{stored}"
            );
        }
    }

    #[test]
    fn an_unreadable_entry_is_an_internal_error_not_a_panic() {
        for stored in ["", "{}", r#"{"event":"grant"}"#, r#"{"event":"nope"}"#] {
            assert!(matches!(
                AccessEvent::from_json(stored),
                Err(ScimError::Internal(_))
            ));
        }
    }
}
