//! What storage keeps for `scimitar sync` jobs (issue #17): each job's id mappings with
//! their ownership, its watermark, and its run history. Deployment bookkeeping keyed by the
//! job's name, not a tenant's data: a job runs for an operator and may move identities
//! between services none of whose accounts live in this database. Each job's state names the
//! account it answers to (set by its runs), so that its status is served to that account's
//! admins and to no one else. See `docs/design/sync.md`.

use crate::audit::{AuditContext, AuditTarget};
use scimitar_domain::{AccountId, Timestamp};
use serde_json::{Map, Value};

/// One source object a job manages in its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMappingRow {
    /// `user`, `group` or `servicePrincipal`.
    pub kind: String,
    pub source_id: String,
    pub target_id: String,
    /// `created` or `adopted`: only these objects are ever modified or deleted by the job.
    pub ownership: String,
    /// When the job first deprovisioned it, for the grace period before deletion.
    pub deprovisioned_at: Option<Timestamp>,
    /// What the source wanted of it at the run that last brought it in line (a digest made
    /// by the sync engine): how drift in the target is told from the source's changes.
    pub digest: Option<String>,
}

/// A job's state as read at the start of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncJobState {
    pub mappings: Vec<SyncMappingRow>,
    pub watermark: Option<String>,
    /// Who holds the job's lease (a `watch` process), and until when.
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    /// The account the job answers to, as its last run recorded it; `None` for a job never
    /// run, or run where the state database held no account.
    pub account: Option<AccountId>,
    /// The quarantine its last run left it in.
    pub quarantine: Option<SyncQuarantine>,
}

/// A quarantined target (`scimitar_sync::quarantine`), as the run that left it so judged it
/// by the job's thresholds: kept so that its status can be read without the job's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncQuarantine {
    /// Runs failed wholly in a row.
    pub failures: u32,
    /// When `watch` runs it again.
    pub next_run: Timestamp,
}

/// One state key of an account's sync jobs (a job's, or one of its targets' under
/// `job/target`) as its status shows it: [`SyncJobState`] without the mappings, and its
/// latest run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncJobSummary {
    pub key: String,
    pub watermark: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub quarantine: Option<SyncQuarantine>,
    pub last_run: Option<SyncRunRecord>,
}

/// `scimitar sync watch`'s hold on a job ([`crate::Change::SyncLease`]): taken (or renewed)
/// only when nobody else holds it or the holder's time has passed, as one conditional update;
/// whoever reads itself as the owner afterwards holds it. Bookkeeping, with no audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncLease {
    Take {
        job: String,
        owner: String,
        now: Timestamp,
        until: Timestamp,
    },
    /// Gives the lease up, if `owner` holds it, so that another process need not wait it out.
    Release { job: String, owner: String },
}

/// One finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRunRecord {
    /// Numbered per job from 1 in commit order (set by the store; ignored when written).
    pub seq: i64,
    pub started: Timestamp,
    pub ended: Timestamp,
    /// `applied`, `failed` (some items failed), `stopped` (the deletion guard).
    pub outcome: String,
    /// The run's report as JSON (counts, failures with the target's error).
    pub report: String,
}

/// What a run changes in its job's state, written with its run record in one transaction:
/// mappings inserted or replaced, mappings removed, the new watermark (`None`: kept), and the
/// run's actions as audit events (`None`: no trail to write to).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncStateChange {
    pub job: String,
    pub upserts: Vec<SyncMappingRow>,
    /// `(kind, source id)`.
    pub removals: Vec<(String, String)>,
    pub watermark: Option<String>,
    pub run: SyncRunRecord,
    pub audit: Option<SyncAudit>,
    /// The account the job answers to (`scimitar_sync::trail::account_of`), set on the job's
    /// state so that its status is served to that account's admins; `None` keeps the one
    /// recorded.
    pub account: Option<AccountId>,
    /// The quarantine the run leaves the job in (`None`: not quarantined).
    pub quarantine: Option<SyncQuarantine>,
}

/// A run's actions in an account's audit trail, appended in the transaction that records the
/// run, so the trail says exactly what the history says: both commit, or neither. The job's
/// state stays keyed by the job; only these events belong to an account (the one the job is
/// attributed to), numbered and hashed into its Merkle tree like every other event.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncAudit {
    pub account: AccountId,
    pub events: Vec<SyncAuditEvent>,
}

/// One sync action as the trail records it, under the service `sync`. Made by the sync engine
/// from what it did; it names the job, the target and the item, never a token.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncAuditEvent {
    /// Who acted (the job, as `sync-job:<name>`), when, and the event's id.
    pub context: AuditContext,
    /// `syncCreateUser`, `syncDeprovision`, `syncGuardStop`, `syncRunFailed`, ...
    pub action_name: String,
    pub request_params: Map<String, Value>,
    pub targets: Vec<AuditTarget>,
    /// 200 for an action done; for a failure, the target's status (or 502 when it gave none).
    pub status_code: u16,
    pub error_message: Option<String>,
}
