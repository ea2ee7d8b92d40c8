//! Scimitar's effective-access engine: who may do what, and why, over nested groups, Unity
//! Catalog grants, workspace object ACLs and entitlements. Pure: no I/O, no async, no clock.
//!
//! Storage loads an [`AccessModel`] per account and applies every committed change to it;
//! the server asks it every access question. The design and its costs are described in
//! `docs/design/access-engine.md`.
//!
//! # Layout
//! - [`model`]: [`AccessModel`] and every change to it (principals, memberships,
//!   entitlements, securables, owners, grants, object ACLs and directories).
//! - `query`: the questions: [`AccessModel::check`] (and [`AccessModel::explain`], its
//!   compact form), [`AccessModel::allows`],
//!   [`AccessModel::who`] (and [`AccessModel::holders`], its compact form),
//!   [`AccessModel::what`], [`AccessModel::effective_privileges`],
//!   [`AccessModel::can_manage`], [`AccessModel::object_permission`] and the entitlement
//!   queries.
//! - [`explain`]: the answers: [`Decision`], [`Reason`], [`Via`] (a source and the membership
//!   chain to it), [`Missing`] and the per-query result types.
//! - [`assignment`]: workspace assignment ([`WorkspacePermission`]), reaching members
//!   through nested groups.
//! - [`binding`]: catalog isolation ([`IsolationMode`]) and workspace bindings
//!   ([`BindingType`]), and the one rule of which workspace may use a catalog
//!   ([`AccessModel::workspace_use`]).
//! - [`privilege`]: [`Privilege`] by its Unity Catalog name, and [`PrivilegeSet`], a bit mask.
//! - [`securable`]: [`SecurableType`], the tree, and which privileges apply to which type.
//! - [`entitlement`]: [`Entitlement`] and [`EntitlementSet`].
//! - [`object`]: workspace [`ObjectType`]s, their [`PermissionLevel`]s in order, ACL entries.
//! - [`error`]: [`AccessError`], the one error type.
//! - [`statement`]: governance SQL (`CREATE`/`DROP`, `ALTER ... OWNER TO`, `GRANT`, `REVOKE`,
//!   `SHOW GRANTS`) parsed into a typed [`Statement`] by [`parse_statement`]; no execution.
//! - `principals`, `catalog`, `workspace`: the internal stores (dense indices, the group
//!   graph, the securable tree, object slots); `hash`: their indices, each hashed with a seed
//!   of its own.
//!
//! Invariant: nothing here reads a clock, a file, a socket or a database, and no answer is
//! served from state derived before the latest change. (The one exception is the hash seed,
//! which foldhash draws once per process from addresses and the system clock; no answer
//! depends on it, as nothing iterates a hashed index.)

pub mod assignment;
pub mod binding;
pub mod entitlement;
pub mod error;
pub mod explain;
pub mod model;
pub mod object;
pub mod privilege;
pub mod securable;
pub mod statement;

mod catalog;
mod closure_arena;
mod hash;
mod principals;
mod query;
mod workspace;

pub use assignment::WorkspacePermission;
pub use binding::{BindingType, IsolationMode, WorkspaceUse};
pub use entitlement::{Entitlement, EntitlementSet};
pub use error::AccessError;
pub use explain::{
    AclView, Decision, EffectivePrivilege, EntitlementAccess, GroupMembership, Holder, Missing,
    ObjectPermission, PrincipalRef, PrincipalView, Reason, Requirement, Source, Via,
};
pub use model::{AccessModel, AclWrite, ModelSize};
pub use object::{
    client_object_id, object_id_in, AclEntry, ObjectRef, ObjectType, PermissionLevel,
    TOKENS_OBJECT_ID,
};
pub use privilege::{Privilege, PrivilegeSet};
pub use query::{Explanation, HolderView, Holders, ReasonView, RequirementView};
pub use securable::{SecurableRef, SecurableType, SecurableView};
pub use statement::{parse_statement, Statement, StatementError};

/// The most groups any membership chain may pass through (a member's direct group counts as
/// one). Changes that would make a longer chain are refused, so every walk up the graph, and
/// every cycle and depth test on a new edge, has a cost bounded whatever the data. Real
/// directories nest a handful of levels; 32 matches the storage layer's bound and sits
/// between OpenFGA's default (25) and SpiceDB's (50).
pub const MAX_NESTING_DEPTH: usize = 32;
