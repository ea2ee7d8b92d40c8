//! The audit trail as storage keeps it: what a caller tells the store about a change
//! ([`AuditContext`]: who, from where, when), the event the store writes for it in the same
//! transaction ([`AuditEvent`], whose JSON text is the Merkle leaf), and the per-account head
//! that carries the tree on ([`AuditHead`]). What each [`crate::Change`] records is decided
//! once, for both backends, in `sql::audit`.
//!
//! The event's stored text is its canonical form: it is hashed as it is, never re-serialized,
//! so a verifier needs no agreement on JSON formatting, only the bytes.

use scimitar_domain::{Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version of the event's shape, written into every event.
pub const AUDIT_EVENT_VERSION: u32 = 1;

/// What the store cannot know about a change: who made it, with what credential, from where,
/// when, and through which workspace. Made by the application for each commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditContext {
    /// A unique id of the event (a UUID), so that an event can be named outside the trail.
    pub event_id: String,
    /// When the change was made, by the application's clock. `None` only for changes
    /// applied with no context at all ([`AuditContext::unattributed`]).
    pub event_time: Option<Timestamp>,
    /// The workspace the change came through; `None` for the account API and the CLI.
    pub workspace_id: Option<WorkspaceId>,
    /// Who acted; `None` when the change has no principal behind it (bootstrap).
    pub user_identity: Option<UserIdentity>,
    pub source_ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl AuditContext {
    /// The context of a change given to [`crate::Store::apply`] without one: recorded all the
    /// same, with nobody behind it and no time, so that no write escapes the trail.
    pub fn unattributed() -> AuditContext {
        AuditContext::default()
    }
}

/// The acting principal and the credential it used. Never the credential's secret: a token
/// is named by its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIdentity {
    pub principal_id: String,
    /// `token` (a personal access token, named by `credential_id`) or `operator` (someone
    /// holding the database, through the CLI).
    pub credential_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
}

/// One event of an account's trail, as stored and hashed. The field names follow Databricks'
/// `system.access.audit` columns where one exists; `targets` follows Entra's
/// `targetResources` with its `modifiedProperties`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub version: u32,
    pub account_id: String,
    /// The event's position in its account's trail, from 1, in commit order. Part of the
    /// hashed bytes, so an event moved to another position no longer matches its leaf.
    pub seq: u64,
    pub event_id: String,
    /// RFC 3339, UTC.
    pub event_time: Option<String>,
    pub workspace_id: Option<String>,
    pub user_identity: Option<UserIdentity>,
    pub source_ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub service_name: String,
    pub action_name: String,
    /// What was asked, without secrets (no token values or digests, no passwords or their
    /// hashes): built from the change by the store, never copied from a request body.
    pub request_params: Map<String, Value>,
    pub response: AuditResponse,
    /// What the change touched and how.
    pub targets: Vec<AuditTarget>,
}

/// The outcome: a change in the trail committed, so its status is a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditResponse {
    pub status_code: u16,
    pub error_message: Option<String>,
}

/// A thing a change touched: a principal, a group's membership, a securable's grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditTarget {
    /// `User`, `Group`, `ServicePrincipal`, `Account`, `Workspace`, `Token`, a securable
    /// type (`CATALOG`, ...) or an object type (`notebook`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Attributes before and after, as Entra's `modifiedProperties` (JSON values, `null`
    /// for absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modified_properties: Vec<ModifiedProperty>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModifiedProperty {
    pub display_name: String,
    pub old_value: Value,
    pub new_value: Value,
}

/// An event as read back: its position and its exact stored text (the leaf's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditEvent {
    pub seq: u64,
    pub text: String,
    /// The leaf hash stored beside it when it was written (hex): what later proofs use.
    pub leaf: String,
}

/// Where an account's trail stands: its size and the Merkle frontier after its last event,
/// written in the same transaction as that event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub size: u64,
    /// The frontier's subtree roots, hex, largest first (`scimitar_audit::Frontier::hashes`).
    pub frontier: Vec<String>,
    /// The tree's root at `size`, hex.
    pub root: String,
}

/// A hash from 64 hex digits.
pub fn hash_from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(hash)
}

/// The Ed25519 seed checkpoints are signed with, held in the database. Its `Debug` never
/// prints it, so a change or a key cannot leak it into a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKeySeed(pub [u8; 32]);

impl std::fmt::Debug for AuditKeySeed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AuditKeySeed(<redacted>)")
    }
}
