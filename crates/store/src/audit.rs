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

/// A refused request as the trail records it: who asked (as far as is known), from where,
/// what was asked (service, action, the method and route in `request_params`, never a body or
/// a header's value) and how it was answered. Made by the application from what the HTTP edge
/// saw; its event joins the account's Merkle trail like any change's.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub context: AuditContext,
    pub service_name: String,
    pub action_name: String,
    pub request_params: Map<String, Value>,
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

/// The checkpoint origin (and signing key name) of an account's trail.
pub fn checkpoint_origin(account: &scimitar_domain::AccountId) -> String {
    format!("scimitar/audit/{account}")
}

/// How many events verification reads at a time: bounded memory whatever the trail's size.
const VERIFY_PAGE: usize = 10_000;

/// What [`verify_trail`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailVerification {
    /// Events read and found in order, up to the first problem (the pruned ones included:
    /// the tree's size so far).
    pub events: u64,
    /// How many events at the trail's start were pruned (retention): they are checked only
    /// through the frontier kept for them.
    pub pruned: u64,
    /// The root recomputed over those events.
    pub root: [u8; 32],
    /// The first thing that does not match, if any.
    pub problem: Option<TrailProblem>,
}

/// The first mismatch: the event it is at (when one can be named) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailProblem {
    pub seq: Option<u64>,
    pub reason: String,
}

/// Verifies an account's trail as stored, against itself and, if given, a checkpoint an
/// auditor kept (already checked to be signed): recomputes every leaf from the stored event
/// text, checks that positions run 1, 2, 3 ... with no gap and that each event names its own
/// position and account, compares the stored leaves and the head (size, frontier, root) with
/// what was recomputed, and checks that the first `kept.size` events still hash to the kept
/// root (with every leaf at hand, that is the consistency of the kept tree with the current
/// one). Someone who can write the database can rewrite the events, their leaves and the head
/// consistently; only a kept checkpoint catches that, which is why auditors keep them.
pub async fn verify_trail(
    store: &dyn crate::Store,
    account: &scimitar_domain::AccountId,
    kept: Option<&scimitar_audit::Checkpoint>,
) -> scimitar_domain::ScimResult<TrailVerification> {
    use scimitar_audit::{merkle, Frontier};
    // A pruned trail starts at its kept frontier: the events after it must extend it.
    let base = store.audit_pruned(account).await?;
    let pruned = base.as_ref().map_or(0, |base| base.size);
    let mut frontier = match &base {
        None => Frontier::default(),
        Some(base) => base_frontier(base)?,
    };
    let problem = |frontier: &Frontier, seq: Option<u64>, reason: String| TrailVerification {
        events: frontier.size(),
        pruned,
        root: frontier.root(),
        problem: Some(TrailProblem { seq, reason }),
    };
    let kept_root_matches = |frontier: &Frontier| match kept {
        Some(kept) if kept.size == frontier.size() && kept.root != frontier.root() => {
            Some(format!(
                "the first {} events do not hash to the kept checkpoint's root: an event at or \
             before {} was altered, removed, inserted or reordered",
                kept.size, kept.size
            ))
        }
        _ => None,
    };
    if let Some(kept) = kept {
        if kept.size < pruned {
            let reason = format!(
                "the kept checkpoint ({} events) is older than the retention horizon: events 1 \
                 to {pruned} were pruned, so it can no longer be checked; keep a checkpoint \
                 taken after the last prune",
                kept.size
            );
            return Ok(problem(&frontier, None, reason));
        }
    }
    if let Some(reason) = kept_root_matches(&frontier) {
        return Ok(problem(&frontier, None, reason));
    }
    loop {
        let page = store
            .audit_events(account, frontier.size(), VERIFY_PAGE)
            .await?;
        let done = page.len() < VERIFY_PAGE;
        for event in page {
            let expected = frontier.size() + 1;
            if event.seq != expected {
                let reason = format!(
                    "event {expected} is missing: the next stored event is {}",
                    event.seq
                );
                return Ok(problem(&frontier, Some(expected), reason));
            }
            let leaf = merkle::leaf_hash(event.text.as_bytes());
            let parsed: Result<AuditEvent, _> = serde_json::from_str(&event.text);
            let reason = match parsed {
                Err(error) => Some(format!("its text is not an audit event: {error}")),
                Ok(parsed) if parsed.seq != event.seq => {
                    Some(format!("it says it is event {}: it was moved", parsed.seq))
                }
                Ok(parsed) if parsed.account_id != account.as_str() => {
                    Some(format!("it belongs to account {:?}", parsed.account_id))
                }
                Ok(_) if hash_from_hex(&event.leaf) != Some(leaf) => {
                    Some("its text does not hash to the leaf stored with it".to_string())
                }
                Ok(_) => None,
            };
            if let Some(reason) = reason {
                return Ok(problem(&frontier, Some(event.seq), reason));
            }
            frontier.push(leaf);
            if let Some(reason) = kept_root_matches(&frontier) {
                return Ok(problem(&frontier, None, reason));
            }
        }
        if done {
            break;
        }
    }
    if let Some(kept) = kept {
        if frontier.size() < kept.size {
            let reason = format!(
                "the trail holds {} events, fewer than the {} of the kept checkpoint: it was \
                 truncated",
                frontier.size(),
                kept.size
            );
            return Ok(problem(&frontier, Some(frontier.size() + 1), reason));
        }
    }
    let head = store.audit_head(account).await?;
    let frontier_hex: Vec<String> = frontier
        .hashes()
        .iter()
        .map(|hash| scimitar_domain::ids::lower_hex(hash))
        .collect();
    let root_hex = scimitar_domain::ids::lower_hex(&frontier.root());
    if head.size != frontier.size() || head.root != root_hex || head.frontier != frontier_hex {
        let reason = format!(
            "the stored head (size {}, root {}) is not the tree of the stored events (size {}, \
             root {root_hex})",
            head.size,
            head.root,
            frontier.size()
        );
        return Ok(problem(&frontier, None, reason));
    }
    Ok(TrailVerification {
        events: frontier.size(),
        pruned,
        root: frontier.root(),
        problem: None,
    })
}

/// The frontier a pruned trail's kept events continue from.
pub fn base_frontier(base: &AuditHead) -> scimitar_domain::ScimResult<scimitar_audit::Frontier> {
    let hashes = base
        .frontier
        .iter()
        .map(|hash| hash_from_hex(hash))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            scimitar_domain::ScimError::internal("a pruned audit frontier is not hex")
        })?;
    let frontier = scimitar_audit::Frontier::from_hashes(base.size, &hashes).ok_or_else(|| {
        scimitar_domain::ScimError::internal("a pruned audit frontier does not match its size")
    })?;
    if scimitar_domain::ids::lower_hex(&frontier.root()) != base.root {
        return Err(scimitar_domain::ScimError::internal(
            "a pruned audit frontier does not hash to its root",
        ));
    }
    Ok(frontier)
}

/// The deployment's checkpoint signing seed, stored first from `fresh` if there is none yet.
/// Two nodes making one at once store one between them (the first insert wins) and both
/// return that one.
pub async fn signing_seed_or_new(
    store: &dyn crate::Store,
    account: &scimitar_domain::AccountId,
    fresh: impl FnOnce() -> [u8; 32],
    now: Timestamp,
) -> scimitar_domain::ScimResult<AuditKeySeed> {
    if let Some(seed) = store.audit_signing_seed().await? {
        return Ok(seed);
    }
    let change = crate::Change::EnsureAuditKey {
        seed: AuditKeySeed(fresh()),
        created: now,
    };
    store
        .apply_audited(account, change, AuditContext::unattributed())
        .await?;
    store
        .audit_signing_seed()
        .await?
        .ok_or_else(|| scimitar_domain::ScimError::internal("the audit signing key was not stored"))
}

/// An event as a row of Databricks' `system.access.audit` (snake_case column names), for
/// export and the events API: `workspace_id` is 0 for an account-level event, as there;
/// `user_identity.subject_name` is the acting principal's id. Scimitar's own columns
/// (`audit_seq`, `targets`) follow.
pub fn databricks_row(event: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "version": "2.0",
        "event_id": event.event_id,
        "event_time": event.event_time,
        "event_date": event.event_time.as_deref().and_then(|time| time.get(..10)),
        "account_id": event.account_id,
        "workspace_id": event.workspace_id.as_deref().unwrap_or("0"),
        "audit_level": if event.workspace_id.is_some() { "WORKSPACE_LEVEL" } else { "ACCOUNT_LEVEL" },
        "source_ip_address": event.source_ip_address,
        "user_agent": event.user_agent,
        "user_identity": event.user_identity.as_ref().map(|identity| serde_json::json!({
            "subject_name": identity.principal_id,
            "credential_kind": identity.credential_kind,
            "credential_id": identity.credential_id,
        })),
        "service_name": event.service_name,
        "action_name": event.action_name,
        "request_id": event.request_id,
        "request_params": event.request_params,
        "response": {
            "status_code": event.response.status_code,
            "error_message": event.response.error_message,
            "result": null,
        },
        "audit_seq": event.seq,
        "targets": event.targets,
    })
}
