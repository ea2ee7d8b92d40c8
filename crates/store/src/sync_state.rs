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
    /// Who holds the job's lease (a `watch` process), and until when.
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
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
