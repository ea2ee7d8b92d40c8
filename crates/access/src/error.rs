//! The one error type of the access engine. Every message names the offending thing, so the
//! HTTP and SQL layers can pass it to the client as it is.

use std::fmt;

use scimitar_domain::{PrincipalId, PrincipalKind, ScimError, ScimType};

use crate::object::{ObjectType, PermissionLevel};
use crate::privilege::Privilege;
use crate::securable::SecurableType;

/// Why a change or a question was refused.
///
/// Variants are grouped by what they mean to a caller: the `Unknown*` ones are "not found"
/// (404), the `*Exists` ones are conflicts (409), and the rest are requests the rules forbid
/// (400). The server keeps that mapping in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessError {
    // Parsing names that come from clients.
    UnknownPrivilege {
        text: String,
    },
    UnknownSecurableType {
        text: String,
    },
    UnknownEntitlement {
        text: String,
    },
    UnknownObjectType {
        text: String,
    },
    UnknownPermissionLevel {
        text: String,
    },
    /// A governance SQL statement that does not parse; `message` names the offending token
    /// and `position` is its byte offset (see `statement::StatementError`).
    InvalidStatement {
        position: usize,
        message: String,
    },

    // Principals and groups.
    UnknownPrincipal {
        principal: PrincipalId,
    },
    PrincipalKindChanged {
        principal: PrincipalId,
        was: PrincipalKind,
        now: PrincipalKind,
    },
    NotAGroup {
        principal: PrincipalId,
    },
    MembershipCycle {
        group: PrincipalId,
        member: PrincipalId,
    },
    NestingTooDeep {
        group: PrincipalId,
        member: PrincipalId,
        depth: usize,
        max: usize,
    },
    GroupInAdmins {
        group: PrincipalId,
    },

    // Unity Catalog securables and grants.
    UnknownSecurable {
        securable_type: SecurableType,
        full_name: String,
    },
    SecurableExists {
        securable_type: SecurableType,
        full_name: String,
    },
    InvalidSecurableName {
        securable_type: SecurableType,
        full_name: String,
        why: String,
    },
    MissingParent {
        securable_type: SecurableType,
        full_name: String,
        parent_type: SecurableType,
        parent_name: String,
    },
    SecondMetastore {
        existing: String,
    },
    PrivilegeNotApplicable {
        privilege: Privilege,
        securable_type: SecurableType,
    },

    // Workspace object permissions.
    LevelNotApplicable {
        level: PermissionLevel,
        object_type: ObjectType,
    },
    GroupCannotOwn {
        group: PrincipalId,
        object_type: ObjectType,
        object_id: String,
    },
    SeveralOwners {
        object_type: ObjectType,
        object_id: String,
    },
    AdminsLevelFixed {
        object_type: ObjectType,
        object_id: String,
    },
    TokensManageReserved {
        principal: PrincipalId,
    },
    NotInDirectories {
        object_type: ObjectType,
    },
    DirectoryCycle {
        object_id: String,
        parent_id: String,
    },

    /// More than `u32::MAX` principals, securables or objects: indices are 32-bit to keep the
    /// hot arrays small.
    CapacityExceeded {
        what: &'static str,
    },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::UnknownPrivilege { text } => {
                write!(f, "`{text}` is not a Unity Catalog privilege")
            }
            AccessError::UnknownSecurableType { text } => {
                write!(f, "`{text}` is not a securable type")
            }
            AccessError::UnknownEntitlement { text } => {
                write!(f, "`{text}` is not an entitlement")
            }
            AccessError::UnknownObjectType { text } => {
                write!(f, "`{text}` is not a workspace object type")
            }
            AccessError::UnknownPermissionLevel { text } => {
                write!(f, "`{text}` is not a permission level")
            }
            AccessError::InvalidStatement { message, .. } => f.write_str(message),
            AccessError::UnknownPrincipal { principal } => {
                write!(f, "principal {principal} does not exist")
            }
            AccessError::PrincipalKindChanged {
                principal,
                was,
                now,
            } => write!(
                f,
                "principal {principal} is a {}, it cannot become a {}",
                was.as_str(),
                now.as_str()
            ),
            AccessError::NotAGroup { principal } => {
                write!(
                    f,
                    "principal {principal} is not a group, so it has no members"
                )
            }
            AccessError::MembershipCycle { group, member } => write!(
                f,
                "adding {member} to group {group} would make a cycle: {group} is already \
                 inside {member}"
            ),
            AccessError::NestingTooDeep {
                group,
                member,
                depth,
                max,
            } => write!(
                f,
                "adding {member} to group {group} would nest groups {depth} deep; at most \
                 {max} levels are allowed"
            ),
            AccessError::GroupInAdmins { group } => {
                write!(f, "group {group} cannot be added to `admins`: only users and service principals can")
            }
            AccessError::UnknownSecurable {
                securable_type,
                full_name,
            } => write!(f, "{securable_type} `{full_name}` does not exist"),
            AccessError::SecurableExists {
                securable_type,
                full_name,
            } => write!(f, "{securable_type} `{full_name}` already exists"),
            AccessError::InvalidSecurableName {
                securable_type,
                full_name,
                why,
            } => write!(
                f,
                "`{full_name}` is not a valid {securable_type} name: {why}"
            ),
            AccessError::MissingParent {
                securable_type,
                full_name,
                parent_type,
                parent_name,
            } => write!(
                f,
                "cannot create {securable_type} `{full_name}`: its {parent_type} \
                 `{parent_name}` does not exist"
            ),
            AccessError::SecondMetastore { existing } => write!(
                f,
                "this account's access model already has metastore `{existing}`"
            ),
            AccessError::PrivilegeNotApplicable {
                privilege,
                securable_type,
            } => write!(
                f,
                "privilege {privilege} does not apply to a {securable_type}"
            ),
            AccessError::LevelNotApplicable { level, object_type } => {
                write!(
                    f,
                    "permission level {level} does not apply to {object_type}"
                )
            }
            AccessError::GroupCannotOwn {
                group,
                object_type,
                object_id,
            } => write!(
                f,
                "group {group} cannot be IS_OWNER of {object_type}/{object_id}: only a user \
                 or service principal can own it"
            ),
            AccessError::SeveralOwners {
                object_type,
                object_id,
            } => write!(f, "{object_type}/{object_id} can have only one IS_OWNER"),
            AccessError::AdminsLevelFixed {
                object_type,
                object_id,
            } => write!(
                f,
                "the `admins` group always has CAN_MANAGE on {object_type}/{object_id}; its \
                 level cannot be changed"
            ),
            AccessError::TokensManageReserved { principal } => write!(
                f,
                "only workspace admins hold CAN_MANAGE on tokens; {principal} can be given \
                 CAN_USE"
            ),
            AccessError::NotInDirectories { object_type } => {
                write!(
                    f,
                    "{object_type} objects do not live in workspace directories"
                )
            }
            AccessError::DirectoryCycle {
                object_id,
                parent_id,
            } => write!(
                f,
                "directory {parent_id} is inside {object_id}, so it cannot be its parent"
            ),
            AccessError::CapacityExceeded { what } => {
                write!(f, "too many {what} for one access model")
            }
        }
    }
}

impl std::error::Error for AccessError {}

/// The one translation of access-engine errors into the error every layer returns: unknown
/// things are not found, things that exist already a uniqueness conflict, and everything else
/// a request the rules refuse (`invalidValue`, `invalidSyntax` or `tooMany`).
impl From<AccessError> for ScimError {
    fn from(error: AccessError) -> ScimError {
        let detail = error.to_string();
        match error {
            AccessError::UnknownPrincipal { .. }
            | AccessError::UnknownSecurable { .. }
            | AccessError::MissingParent { .. } => ScimError::NotFound(detail),
            AccessError::SecurableExists { .. } | AccessError::SecondMetastore { .. } => {
                ScimError::uniqueness(detail)
            }
            AccessError::CapacityExceeded { .. } => ScimError::bad(ScimType::TooMany, detail),
            AccessError::InvalidStatement { .. } => ScimError::invalid_syntax(detail),
            AccessError::UnknownPrivilege { .. }
            | AccessError::UnknownSecurableType { .. }
            | AccessError::UnknownEntitlement { .. }
            | AccessError::UnknownObjectType { .. }
            | AccessError::UnknownPermissionLevel { .. }
            | AccessError::PrincipalKindChanged { .. }
            | AccessError::NotAGroup { .. }
            | AccessError::MembershipCycle { .. }
            | AccessError::NestingTooDeep { .. }
            | AccessError::GroupInAdmins { .. }
            | AccessError::InvalidSecurableName { .. }
            | AccessError::PrivilegeNotApplicable { .. }
            | AccessError::LevelNotApplicable { .. }
            | AccessError::GroupCannotOwn { .. }
            | AccessError::SeveralOwners { .. }
            | AccessError::AdminsLevelFixed { .. }
            | AccessError::TokensManageReserved { .. }
            | AccessError::NotInDirectories { .. }
            | AccessError::DirectoryCycle { .. } => ScimError::invalid_value(detail),
        }
    }
}
