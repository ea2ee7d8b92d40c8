//! What storage keeps for `scimitar sync` jobs (issue #17): each job's id mappings with
//! their ownership, its watermark, and its run history. Deployment bookkeeping keyed by the
//! job's name, not a tenant's data: a job runs for an operator and may move identities
//! between services none of whose accounts live in this database. See `docs/design/sync.md`.

use scimitar_domain::Timestamp;

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
}

/// A job's state as read at the start of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncJobState {
    pub mappings: Vec<SyncMappingRow>,
    pub watermark: Option<String>,
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
/// mappings inserted or replaced, mappings removed, and the new watermark (`None`: kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStateChange {
    pub job: String,
    pub upserts: Vec<SyncMappingRow>,
    /// `(kind, source id)`.
    pub removals: Vec<(String, String)>,
    pub watermark: Option<String>,
    pub run: SyncRunRecord,
}
