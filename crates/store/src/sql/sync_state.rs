//! Sync jobs' state in SQL, written once for both backends: the reads, and what
//! [`Change::RecordSyncRun`] means.
//!
//! [`Change::RecordSyncRun`]: crate::Change::RecordSyncRun

use crate::sql::transaction::{params, query_one, query_opt, SqlTransaction};
use crate::sync_state::{SyncJobState, SyncLease, SyncMappingRow, SyncRunRecord, SyncStateChange};
use scimitar_domain::{ScimResult, Timestamp};

/// A job's mappings (by kind, then source id) and watermark; empty for a job never run.
pub async fn job_state<T: SqlTransaction>(session: &mut T, job: &str) -> ScimResult<SyncJobState> {
    let rows = session
        .query(
            "SELECT kind, source_id, target_id, ownership, deprovisioned_at FROM sync_mappings \
             WHERE job = $1 ORDER BY kind, source_id",
            params![job],
        )
        .await?;
    let mappings = rows
        .into_iter()
        .map(|mut row| {
            Ok(SyncMappingRow {
                kind: row.text(0)?,
                source_id: row.text(1)?,
                target_id: row.text(2)?,
                ownership: row.text(3)?,
                deprovisioned_at: row.optional_integer(4)?.map(Timestamp::from_micros),
            })
        })
        .collect::<ScimResult<Vec<_>>>()?;
    let job_row = query_opt(
        session,
        "SELECT watermark, lease_owner, lease_until FROM sync_jobs WHERE job = $1",
        params![job],
    )
    .await?
    .map(|mut row| {
        Ok::<_, scimitar_domain::ScimError>((
            row.optional_text(0)?,
            row.optional_text(1)?,
            row.optional_integer(2)?.map(Timestamp::from_micros),
        ))
    })
    .transpose()?;
    let (watermark, lease_owner, lease_until) = job_row.unwrap_or((None, None, None));
    Ok(SyncJobState {
        mappings,
        watermark,
        lease_owner,
        lease_until,
    })
}

/// [`crate::Change::SyncLease`]: the job's row is made if it is new; the lease is then taken
/// by one conditional update (free, already ours, or expired), which on PostgreSQL waits for a
/// concurrent taker's row lock and then re-reads the row, so of two takers one matches.
pub async fn lease<T: SqlTransaction>(transaction: &mut T, lease: &SyncLease) -> ScimResult<()> {
    match lease {
        SyncLease::Take {
            job,
            owner,
            now,
            until,
        } => {
            transaction
                .execute(
                    "INSERT INTO sync_jobs (job) VALUES ($1) ON CONFLICT (job) DO NOTHING",
                    params![job.as_str()],
                )
                .await?;
            transaction
                .execute(
                    "UPDATE sync_jobs SET lease_owner = $2, lease_until = $3 WHERE job = $1 \
                     AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until IS NULL \
                     OR lease_until <= $4)",
                    params![
                        job.as_str(),
                        owner.as_str(),
                        until.as_micros(),
                        now.as_micros()
                    ],
                )
                .await?;
        }
        SyncLease::Release { job, owner } => {
            transaction
                .execute(
                    "UPDATE sync_jobs SET lease_owner = NULL, lease_until = NULL \
                     WHERE job = $1 AND lease_owner = $2",
                    params![job.as_str(), owner.as_str()],
                )
                .await?;
        }
    }
    Ok(())
}

/// A job's latest `limit` runs, newest first.
pub async fn runs<T: SqlTransaction>(
    session: &mut T,
    job: &str,
    limit: usize,
) -> ScimResult<Vec<SyncRunRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = session
        .query(
            "SELECT seq, started, ended, outcome, report FROM sync_runs WHERE job = $1 \
             ORDER BY seq DESC LIMIT $2",
            params![job, limit],
        )
        .await?;
    rows.into_iter()
        .map(|mut row| {
            Ok(SyncRunRecord {
                seq: row.integer(0)?,
                started: Timestamp::from_micros(row.integer(1)?),
                ended: Timestamp::from_micros(row.integer(2)?),
                outcome: row.text(3)?,
                report: row.text(4)?,
            })
        })
        .collect()
}

/// [`crate::Change::RecordSyncRun`]: the job's row is written first (on PostgreSQL its row
/// lock orders two runs of one job that commit at once), then the mappings, then the run,
/// numbered after the job's last, and last the run's audit events, if any (the account's
/// head is taken after every other lock, as every change takes it: see `sql::audit`).
pub async fn record_run<T: SqlTransaction>(
    transaction: &mut T,
    change: &SyncStateChange,
) -> ScimResult<()> {
    let job = change.job.as_str();
    transaction
        .execute(
            "INSERT INTO sync_jobs (job, watermark) VALUES ($1, $2) \
             ON CONFLICT (job) DO UPDATE SET watermark = COALESCE($2, sync_jobs.watermark)",
            params![job, change.watermark.as_deref()],
        )
        .await?;
    for (kind, source_id) in &change.removals {
        transaction
            .execute(
                "DELETE FROM sync_mappings WHERE job = $1 AND kind = $2 AND source_id = $3",
                params![job, kind.as_str(), source_id.as_str()],
            )
            .await?;
    }
    for mapping in &change.upserts {
        transaction
            .execute(
                "INSERT INTO sync_mappings \
                 (job, kind, source_id, target_id, ownership, deprovisioned_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (job, kind, source_id) DO UPDATE SET target_id = $4, \
                 ownership = $5, deprovisioned_at = $6",
                params![
                    job,
                    mapping.kind.as_str(),
                    mapping.source_id.as_str(),
                    mapping.target_id.as_str(),
                    mapping.ownership.as_str(),
                    mapping.deprovisioned_at.map(Timestamp::as_micros),
                ],
            )
            .await?;
    }
    let seq = query_one(
        transaction,
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM sync_runs WHERE job = $1",
        params![job],
    )
    .await?
    .integer(0)?;
    let run = &change.run;
    transaction
        .execute(
            "INSERT INTO sync_runs (job, seq, started, ended, outcome, report) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            params![
                job,
                seq,
                run.started.as_micros(),
                run.ended.as_micros(),
                run.outcome.as_str(),
                run.report.as_str(),
            ],
        )
        .await?;
    if let Some(audit) = &change.audit {
        crate::sql::audit::append_sync_events(transaction, audit).await?;
    }
    Ok(())
}
