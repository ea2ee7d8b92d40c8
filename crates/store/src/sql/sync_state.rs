//! Sync jobs' state in SQL, written once for both backends: the reads, and what
//! [`Change::RecordSyncRun`] means.
//!
//! [`Change::RecordSyncRun`]: crate::Change::RecordSyncRun

use crate::sql::transaction::{params, query_one, query_opt, SqlRow, SqlTransaction};
use crate::sync_state::{
    SyncJobState, SyncJobSummary, SyncLease, SyncMappingRow, SyncQuarantine, SyncRunRecord,
    SyncStateChange,
};
use scimitar_domain::{AccountId, ScimResult, Timestamp};

/// A job's mappings (by kind, then source id) and watermark; empty for a job never run.
pub async fn job_state<T: SqlTransaction>(session: &mut T, job: &str) -> ScimResult<SyncJobState> {
    let rows = session
        .query(
            "SELECT kind, source_id, target_id, ownership, deprovisioned_at, digest \
             FROM sync_mappings WHERE job = $1 ORDER BY kind, source_id",
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
                digest: row.optional_text(5)?,
            })
        })
        .collect::<ScimResult<Vec<_>>>()?;
    let Some(mut row) = query_opt(
        session,
        &format!("SELECT {JOB_COLUMNS} FROM sync_jobs WHERE job = $1"),
        params![job],
    )
    .await?
    else {
        return Ok(SyncJobState {
            mappings,
            ..SyncJobState::default()
        });
    };
    let job_row = job_row(&mut row, 0)?;
    Ok(SyncJobState {
        mappings,
        watermark: job_row.watermark,
        lease_owner: job_row.lease_owner,
        lease_until: job_row.lease_until,
        account: job_row.account,
        quarantine: job_row.quarantine,
    })
}

/// Who holds a job's lease, and until when; `None` when nobody does (or ever did).
pub async fn lease_of<T: SqlTransaction>(
    session: &mut T,
    job: &str,
) -> ScimResult<Option<(String, Timestamp)>> {
    let Some(mut row) = query_opt(
        session,
        "SELECT lease_owner, lease_until FROM sync_jobs WHERE job = $1",
        params![job],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(match (row.optional_text(0)?, row.optional_integer(1)?) {
        (Some(owner), Some(until)) => Some((owner, Timestamp::from_micros(until))),
        _ => None,
    })
}

/// What `sync_jobs` holds of a job, in [`job_row`]'s order.
const JOB_COLUMNS: &str = "watermark, lease_owner, lease_until, account_id, \
                           quarantine_failures, quarantine_next_run";

/// A job's row as [`JOB_COLUMNS`] read it, from the column `at`.
struct JobRow {
    watermark: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<Timestamp>,
    account: Option<AccountId>,
    quarantine: Option<SyncQuarantine>,
}

fn job_row(row: &mut SqlRow, at: usize) -> ScimResult<JobRow> {
    let quarantine = match (row.optional_integer(at + 4)?, row.optional_integer(at + 5)?) {
        (Some(failures), Some(next_run)) => Some(SyncQuarantine {
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            next_run: Timestamp::from_micros(next_run),
        }),
        _ => None,
    };
    Ok(JobRow {
        watermark: row.optional_text(at)?,
        lease_owner: row.optional_text(at + 1)?,
        lease_until: row.optional_integer(at + 2)?.map(Timestamp::from_micros),
        account: row.optional_text(at + 3)?.map(AccountId::new),
        quarantine,
    })
}

/// Every state key of `account`'s jobs, by key, each with its latest run (one query: the
/// run is joined on the key's highest number).
pub async fn jobs_of<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Vec<SyncJobSummary>> {
    let rows = session
        .query(
            &format!(
                "SELECT sync_jobs.job, {JOB_COLUMNS}, sync_runs.seq, sync_runs.started, \
                 sync_runs.ended, sync_runs.outcome, sync_runs.report FROM sync_jobs \
                 LEFT JOIN sync_runs ON sync_runs.job = sync_jobs.job AND sync_runs.seq = \
                 (SELECT MAX(seq) FROM sync_runs AS latest WHERE latest.job = sync_jobs.job) \
                 WHERE sync_jobs.account_id = $1 ORDER BY sync_jobs.job"
            ),
            params![account.as_str()],
        )
        .await?;
    rows.into_iter()
        .map(|mut row| {
            let key = row.text(0)?;
            let job_row = job_row(&mut row, 1)?;
            let last_run = match row.optional_integer(7)? {
                None => None,
                Some(seq) => Some(SyncRunRecord {
                    seq,
                    started: Timestamp::from_micros(row.integer(8)?),
                    ended: Timestamp::from_micros(row.integer(9)?),
                    outcome: row.text(10)?,
                    report: row.text(11)?,
                }),
            };
            Ok(SyncJobSummary {
                key,
                watermark: job_row.watermark,
                lease_owner: job_row.lease_owner,
                lease_until: job_row.lease_until,
                quarantine: job_row.quarantine,
                last_run,
            })
        })
        .collect()
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
    let quarantine = change.quarantine.as_ref();
    transaction
        .execute(
            "INSERT INTO sync_jobs \
             (job, watermark, account_id, quarantine_failures, quarantine_next_run) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (job) DO UPDATE SET watermark = COALESCE($2, sync_jobs.watermark), \
             account_id = COALESCE($3, sync_jobs.account_id), quarantine_failures = $4, \
             quarantine_next_run = $5",
            params![
                job,
                change.watermark.as_deref(),
                change.account.as_ref().map(AccountId::as_str),
                quarantine.map(|quarantine| i64::from(quarantine.failures)),
                quarantine.map(|quarantine| quarantine.next_run.as_micros()),
            ],
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
                 (job, kind, source_id, target_id, ownership, deprovisioned_at, digest) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (job, kind, source_id) DO UPDATE SET target_id = $4, \
                 ownership = $5, deprovisioned_at = $6, digest = $7",
                params![
                    job,
                    mapping.kind.as_str(),
                    mapping.source_id.as_str(),
                    mapping.target_id.as_str(),
                    mapping.ownership.as_str(),
                    mapping.deprovisioned_at.map(Timestamp::as_micros),
                    mapping.digest.as_deref(),
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
