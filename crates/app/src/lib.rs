//! Scimitar's application layer: what every operation does, for whom, between the edges that
//! parse requests (the HTTP crate, the CLI) and storage. It knows no HTTP: its inputs are
//! validated domain values and its errors are [`ScimError`](scimitar_domain::ScimError)s.
//!
//! # Layout
//! - [`service`]: [`Services`], the handle on one deployment: identities (create, replace,
//!   patch with optimistic retries, delete, render), tokens, bootstrap, and the one private
//!   commit through which this node writes.
//! - [`audit`]: the context every commit carries into the audit trail (who, from where, in
//!   which request), and the trail's checkpoint, verifier key and proofs for an account's
//!   admins; the events API's filters and paging, and retention (pruning).
//! - [`audit_refusals`]: refused requests queued (bounded) and written to the trail in batches
//!   by a background writer, within a per-account budget.
//! - [`audit_sql`]: `SELECT ... FROM system.access.audit` answered over the trail for admins.
//! - [`tenancy`]: workspaces of an account, entering one with a credential, and workspace
//!   assignment.
//! - [`access`]: the node's access engine, one model per account, following the access log.
//! - [`change_feed`]: a long poll on an account's change token, woken by the engine when it
//!   applies changes (what `scimitar sync watch` follows).
//! - [`sync_status`]: the status of an account's `scimitar sync` jobs, for its admins.
//! - [`governance`]: Unity Catalog objects, owners and grants changed and read for a caller.
//! - [`workspace_permissions`]: the workspace object Permissions API (read, PUT, PATCH).
//! - [`workspace_tree`]: the Workspace API's tree of folders, notebooks and files.
//! - [`access_questions`]: check, who and what, and the one JSON and text rendering of the
//!   engine's explanations.
//! - [`rule_sets`]: the account access-control rule sets (who manages a group or service
//!   principal) and their roles.
//! - [`recent_statements`]: the answers of recent SQL statements, per workspace, for
//!   `GET /sql/statements/{id}`.
//! - [`tokens`]: bearer tokens checked into credentials (with their scopes), the token and
//!   token management APIs, rotation, workspace-conf, and when tokens were last used.
//! - [`alerts`]: audit alert rules (API and config), their evaluation over committed events
//!   from a cursor in the database, and signed webhook delivery through an outbox.
//! - [`oauth`]: OAuth for service principals: their secrets, the client-credentials grant,
//!   Ed25519-signed JWT access tokens, their verification, and signing-key rotation.
//! - [`federation`]: workload identity federation: federation policies and the RFC 8693 token
//!   exchange of an external issuer's JWT for an access token.

pub mod access;
pub mod access_questions;
pub mod alerts;
pub mod audit;
pub mod audit_refusals;
pub mod audit_sql;
pub mod authority;
pub mod change_feed;
pub mod federation;
pub mod governance;
pub mod oauth;
pub mod recent_statements;
pub mod rule_sets;
pub mod service;
pub mod sync_status;
pub mod tenancy;
pub mod tokens;
pub mod workspace_permissions;
pub mod workspace_tree;

pub use authority::{AccountAdmin, Actor, Credential};
pub use scimitar_store::{Account, NotReady, PoolStatus, StoreOptions, Workspace};
pub use service::Services;
pub use tokens::{IssuedToken, TokenRequest};
