//! The job's state in Scimitar's database: read into a [`JobState`] at the start of a run,
//! and written back, as what changed, with the run's record in one transaction
//! (`Change::RecordSyncRun`); and the lease by which one `watch` process at a time runs a job
//! (`Change::SyncLease`).

use crate::model::{JobState, Kind, Mapping, Ownership};
use crate::quarantine::{self, QuarantineSettings};
use crate::SyncResult;
use scimitar_domain::{AccountId, ScimError, Timestamp};
use scimitar_store::{
    Change, Store, SyncAudit, SyncLease, SyncMappingRow, SyncQuarantine, SyncRunRecord,
    SyncStateChange,
};

/// The account a sync record is applied under. The store does not read it (a job's state is
/// keyed by the job, not by a tenant), but `Store::apply` names one.
const NO_ACCOUNT: &str = "-";

pub async fn load(store: &dyn Store, job: &str) -> SyncResult<JobState> {
    let stored = store.sync_state(job).await?;
    let mut state = JobState {
        watermark: stored.watermark,
        ..JobState::default()
    };
    for row in stored.mappings {
        let (Some(kind), Some(ownership)) =
            (Kind::parse(&row.kind), Ownership::parse(&row.ownership))
        else {
            return Err(ScimError::internal(format!(
                "sync job {job}: a mapping of unknown kind {} or ownership {}",
                row.kind, row.ownership
            ))
            .into());
        };
        if let Some(digest) = row.digest {
            state.digests.insert((kind, row.source_id.clone()), digest);
        }
        state.mappings.insert(
            (kind, row.source_id),
            Mapping {
                target_id: row.target_id,
                ownership,
                deprovisioned_at: row.deprovisioned_at.map(Timestamp::as_micros),
            },
        );
    }
    Ok(state)
}

/// Whom a run's record answers to: the job's account (`crate::trail::account_of`), set on its
/// state so that its status is served to that account; its audit events for that account's
/// trail; and the thresholds its target's quarantine is judged by.
pub struct RunTrail<'a> {
    pub account: Option<AccountId>,
    pub audit: Option<SyncAudit>,
    pub quarantine: &'a QuarantineSettings,
}

/// Records a run: its outcome and report, the difference between the state it started from
/// and the one it ends with, the quarantine it leaves the target in (judged from the runs
/// before it under `job`, the target's state key), and its audit events (`crate::trail`), in
/// one transaction.
pub async fn record(
    store: &dyn Store,
    job: &str,
    before: &JobState,
    after: &JobState,
    run: SyncRunRecord,
    trail: RunTrail<'_>,
) -> SyncResult<()> {
    let upserts = after
        .mappings
        .iter()
        .filter(|(key, mapping)| {
            before.mappings.get(*key) != Some(*mapping)
                || before.digests.get(*key) != after.digests.get(*key)
        })
        .map(|((kind, source_id), mapping)| SyncMappingRow {
            kind: kind.as_str().to_string(),
            source_id: source_id.clone(),
            target_id: mapping.target_id.clone(),
            ownership: mapping.ownership.as_str().to_string(),
            deprovisioned_at: mapping.deprovisioned_at.map(Timestamp::from_micros),
            digest: after.digests.get(&(*kind, source_id.clone())).cloned(),
        })
        .collect();
    let removals = before
        .mappings
        .keys()
        .filter(|key| !after.mappings.contains_key(*key))
        .map(|(kind, source_id)| (kind.as_str().to_string(), source_id.clone()))
        .collect();
    let watermark = after
        .watermark
        .clone()
        .filter(|_| after.watermark != before.watermark);
    let mut latest = vec![run.clone()];
    latest.extend(quarantine::latest_runs(store, job, trail.quarantine).await?);
    let quarantine =
        quarantine::of_runs(&latest, trail.quarantine).map(|quarantine| SyncQuarantine {
            failures: quarantine.failures,
            next_run: quarantine.next_run,
        });
    let change = SyncStateChange {
        job: job.to_string(),
        upserts,
        removals,
        watermark,
        run,
        audit: trail.audit,
        account: trail.account,
        quarantine,
    };
    store
        .apply(
            &AccountId::new(NO_ACCOUNT),
            Change::RecordSyncRun(Box::new(change)),
        )
        .await?;
    Ok(())
}

/// Takes (or renews) the job's lease for `owner` until `until`; says whether `owner` holds it
/// afterwards (someone else's unexpired lease is left alone).
pub async fn take_lease(
    store: &dyn Store,
    job: &str,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> SyncResult<bool> {
    let lease = SyncLease::Take {
        job: job.to_string(),
        owner: owner.to_string(),
        now,
        until,
    };
    store
        .apply(&AccountId::new(NO_ACCOUNT), Change::SyncLease(lease))
        .await?;
    let held = store.sync_lease(job).await?;
    Ok(held.is_some_and(|(holder, held_until)| holder == owner && held_until == until))
}

/// Gives the job's lease up, if `owner` holds it.
pub async fn release_lease(store: &dyn Store, job: &str, owner: &str) -> SyncResult<()> {
    let lease = SyncLease::Release {
        job: job.to_string(),
        owner: owner.to_string(),
    };
    store
        .apply(&AccountId::new(NO_ACCOUNT), Change::SyncLease(lease))
        .await?;
    Ok(())
}

/// Who holds the job's lease now (a running `watch`), if anyone does.
pub async fn lease_holder(
    store: &dyn Store,
    job: &str,
    now: Timestamp,
) -> SyncResult<Option<String>> {
    Ok(store
        .sync_lease(job)
        .await?
        .filter(|(_, until)| *until > now)
        .map(|(owner, _)| owner))
}
