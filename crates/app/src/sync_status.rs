//! The status of `scimitar sync` jobs, as `GET /api/2.0/sync/jobs` serves it (issue #17):
//! each job an account's admins may see, with each of its targets' last run, watermark and
//! quarantine, and the job's lease.
//!
//! A job's state is kept per state key (`job`, or `job/target` for one of its `[[targets]]`;
//! a job's name holds no `/`), each naming the account its job answers to, set by the job's
//! runs (`scimitar_sync::trail::account_of`). A job is an account's when one of its keys
//! names the account; a job whose keys name none (never run, or run where the state database
//! held no account) is nobody's and served to no one. Only account admins are answered:
//! sync jobs move the whole directory, so a workspace admin, whose writes are kept to one
//! workspace, sees nothing of them, and another account's admin sees only its own account's.
//!
//! A run's counts are read from the report the engine recorded with it
//! (`SyncRunRecord::summary`: the plan's lists' exact counts, `writes`, `failures`), whether
//! stored bounded, each list a count and a sample, or whole by an earlier build; a report
//! written before a count existed simply has none of it.

use crate::authority::{is_admin, not_an_admin, Actor};
use crate::Services;
use scimitar_domain::{ScimError, ScimResult, Timestamp};
use scimitar_store::{
    Change, SyncAudit, SyncAuditEvent, SyncJobSummary, SyncQuarantine, SyncRunRecord,
    SyncStateChange, SYNC_RUN_RESUMED,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many of a job's latest runs per target `GET /api/2.0/sync/jobs/{name}` shows.
pub const RECENT_RUNS: usize = 20;

/// One job, as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncJobStatus {
    pub name: String,
    /// The job's lease: which `watch` (or `serve` node) runs it, while one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseStatus>,
    pub targets: Vec<TargetStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseStatus {
    pub holder: String,
    /// Epoch milliseconds; a holder that stops renewing loses it then.
    pub expiry_time: i64,
}

/// One target of a job: a lone `[target]` has no name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunStatus>,
    /// Where an incremental run of the source resumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineStatus>,
    /// The latest runs, newest first (the job's own page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_runs: Option<Vec<RunStatus>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineStatus {
    /// Runs failed wholly in a row.
    pub failures: u32,
    /// Epoch milliseconds: when `watch` tries the target again.
    pub next_run_time: i64,
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunStatus {
    /// Numbered per target from 1.
    pub run: i64,
    pub start_time: i64,
    pub end_time: i64,
    /// `applied`, `failed` (some items failed), `stopped` (the deletion guard), `error` (the
    /// run could not complete), `resumed` (an operator lifted the quarantine).
    pub result: String,
    pub counts: BTreeMap<String, u64>,
    /// What went wrong: the run's error, or its first failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn millis(timestamp: Timestamp) -> i64 {
    timestamp.as_micros().div_euclid(1000)
}

impl RunStatus {
    fn of(run: &SyncRunRecord) -> RunStatus {
        let summary = run.summary();
        let counts = summary.counts();
        let error = summary.problem();
        RunStatus {
            run: run.seq,
            start_time: millis(run.started),
            end_time: millis(run.ended),
            result: run.outcome.clone(),
            counts,
            error,
        }
    }
}

fn quarantine_status(quarantine: SyncQuarantine) -> QuarantineStatus {
    QuarantineStatus {
        failures: quarantine.failures,
        next_run_time: millis(quarantine.next_run),
    }
}

/// The job a state key belongs to, and the target it names (`None`: the job's lone target).
fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once('/') {
        Some((job, target)) => (job, Some(target)),
        None => (key, None),
    }
}

impl Services {
    /// Every sync job of the actor's account, by name (account admins only).
    pub async fn sync_jobs(&self, actor: &Actor) -> ScimResult<Vec<SyncJobStatus>> {
        self.authorize_sync_status(actor).await?;
        let keys = self.store.sync_jobs(actor.account()).await?;
        let mut jobs: BTreeMap<String, Vec<SyncJobSummary>> = BTreeMap::new();
        for key in keys {
            let (job, _) = split_key(&key.key);
            jobs.entry(job.to_string()).or_default().push(key);
        }
        let mut statuses = Vec::with_capacity(jobs.len());
        for (name, keys) in jobs {
            statuses.push(self.job_status(actor, name, keys).await?);
        }
        Ok(statuses)
    }

    /// One sync job of the actor's account, with each target's recent runs (account admins
    /// only); 404 for a job that is not the account's, whether or not it exists.
    pub async fn sync_job(&self, actor: &Actor, name: &str) -> ScimResult<SyncJobStatus> {
        self.authorize_sync_status(actor).await?;
        let keys: Vec<SyncJobSummary> = self
            .store
            .sync_jobs(actor.account())
            .await?
            .into_iter()
            .filter(|key| split_key(&key.key).0 == name)
            .collect();
        if keys.is_empty() {
            return Err(ScimError::NotFound(format!("sync job {name:?} not found")));
        }
        let mut status = self.job_status(actor, name.to_string(), keys).await?;
        for target in &mut status.targets {
            let key = match &target.name {
                Some(target) => format!("{name}/{target}"),
                None => name.to_string(),
            };
            let runs = self.store.sync_runs(&key, RECENT_RUNS).await?;
            target.recent_runs = Some(runs.iter().map(RunStatus::of).collect());
        }
        Ok(status)
    }

    /// Lifts the quarantine of one of the account's jobs' targets (`target`: its name among
    /// the job's `[[targets]]`, `None` for a job's lone target), as `scimitar sync resume`
    /// does: a run of the outcome `resumed` is recorded under the target's state key, which
    /// ends its streak of failed runs, so the `watch` running the job runs it again at its
    /// next turn; its audit event (`syncResumed`) names the caller. Account admins only; 404
    /// for a job or target that is not the account's, 409 for a target not quarantined.
    /// Answers the job's status after the lift.
    pub async fn resume_sync_target(
        &self,
        actor: &Actor,
        name: &str,
        target: Option<&str>,
    ) -> ScimResult<SyncJobStatus> {
        self.authorize_sync_admin(actor, "resume a sync job's target")
            .await?;
        let key = match target {
            Some(target) => format!("{name}/{target}"),
            None => name.to_string(),
        };
        let keys = self.store.sync_jobs(actor.account()).await?;
        if !keys.iter().any(|each| split_key(&each.key).0 == name) {
            return Err(ScimError::NotFound(format!("sync job {name:?} not found")));
        }
        let Some(found) = keys.iter().find(|each| each.key == key) else {
            return Err(ScimError::NotFound(match target {
                Some(target) => format!("sync job {name:?} has no target {target:?}"),
                None => format!("sync job {name:?} has targets: name the one to resume"),
            }));
        };
        if found.quarantine.is_none() {
            return Err(ScimError::Conflict(format!(
                "sync job {name:?}{} is not quarantined",
                target
                    .map(|target| format!(" target {target:?}"))
                    .unwrap_or_default()
            )));
        }
        let now = self.clock.now();
        let mut params = serde_json::Map::new();
        params.insert("job".into(), serde_json::json!(name));
        if let Some(target) = target {
            params.insert("targetName".into(), serde_json::json!(target));
        }
        let event = SyncAuditEvent {
            context: crate::audit::context(self.ids.uuid(), now),
            action_name: "syncResumed".into(),
            request_params: params,
            targets: Vec::new(),
            status_code: 200,
            error_message: None,
        };
        let change = SyncStateChange {
            job: key,
            upserts: Vec::new(),
            removals: Vec::new(),
            watermark: None,
            run: SyncRunRecord {
                seq: 0,
                started: now,
                ended: now,
                outcome: SYNC_RUN_RESUMED.to_string(),
                report: serde_json::json!({"job": name, "target": target, "mode": "resume"})
                    .to_string(),
            },
            audit: Some(SyncAudit {
                account: actor.account().clone(),
                events: vec![event],
            }),
            account: Some(actor.account().clone()),
            // A lifted target is quarantined again only by the failures that follow.
            quarantine: None,
        };
        self.commit(actor.account(), Change::RecordSyncRun(Box::new(change)))
            .await?;
        self.sync_job(actor, name).await
    }

    /// A job from its keys (all the account's): its targets, and its lease, kept under the
    /// job's own key, which for a job of `[[targets]]` holds nothing else and may not yet name
    /// an account (a lease taken before the job's first run).
    async fn job_status(
        &self,
        actor: &Actor,
        name: String,
        keys: Vec<SyncJobSummary>,
    ) -> ScimResult<SyncJobStatus> {
        let mut lease = None;
        let mut targets = Vec::new();
        for key in keys {
            let (_, target) = split_key(&key.key);
            if target.is_none() {
                lease = key.lease_owner.clone().zip(key.lease_until);
                // A job of `[[targets]]` keeps only its lease under its name, and shows no
                // target of its own.
                if key.last_run.is_none() {
                    continue;
                }
            }
            targets.push(TargetStatus {
                name: target.map(str::to_string),
                last_run: key.last_run.as_ref().map(RunStatus::of),
                watermark: key.watermark,
                quarantine: key.quarantine.map(quarantine_status),
                recent_runs: None,
            });
        }
        if lease.is_none() && targets.iter().all(|target| target.name.is_some()) {
            let state = self.store.sync_state(&name).await?;
            // The job's own row is read only for its lease, and only when it names this
            // account or none.
            if state.account.is_none() || state.account.as_ref() == Some(actor.account()) {
                lease = state.lease_owner.zip(state.lease_until);
            }
        }
        Ok(SyncJobStatus {
            name,
            lease: lease.map(|(holder, until)| LeaseStatus {
                holder,
                expiry_time: millis(until),
            }),
            targets,
        })
    }

    /// Account admins only ([`is_admin`], not a workspace's admins), after reading the access
    /// log up to now, so that an admin removed on another node is refused at once.
    async fn authorize_sync_status(&self, actor: &Actor) -> ScimResult<()> {
        self.authorize_sync_admin(actor, "read the status of sync jobs")
            .await
    }

    /// Sync jobs move the whole directory: only the account's admins see or lift them.
    async fn authorize_sync_admin(&self, actor: &Actor, doing: &str) -> ScimResult<()> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let admin = self
            .access
            .read(actor.account(), |model| is_admin(model, actor.principal()))?;
        if admin {
            Ok(())
        } else {
            Err(not_an_admin(actor, doing))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_runs_counts_come_from_its_report_and_its_error_from_its_failure() {
        let run = SyncRunRecord {
            seq: 3,
            started: Timestamp::from_micros(1_500_000),
            ended: Timestamp::from_micros(2_500_999),
            outcome: "failed".into(),
            report: serde_json::json!({
                "plan": {"creates": [1, 2], "updates": [], "drift": [1]},
                "writes": 2,
                "failures": [{"item": "user ada", "error": "HTTP 500"}],
            })
            .to_string(),
        };
        let status = RunStatus::of(&run);
        assert_eq!(
            (status.run, status.start_time, status.end_time),
            (3, 1500, 2500)
        );
        assert_eq!(status.counts["creates"], 2);
        assert_eq!(status.counts["updates"], 0);
        assert_eq!(status.counts["drift"], 1);
        assert_eq!(status.counts["writes"], 2);
        assert_eq!(status.counts["failures"], 1);
        assert!(!status.counts.contains_key("deletions"));
        assert_eq!(status.error.as_deref(), Some("user ada: HTTP 500"));
        let errored = SyncRunRecord {
            outcome: "error".into(),
            report: "{\"error\":\"target down\"}".into(),
            ..run.clone()
        };
        assert_eq!(
            RunStatus::of(&errored).error.as_deref(),
            Some("target down")
        );
        let garbled = SyncRunRecord {
            report: "not json".into(),
            ..run
        };
        assert!(RunStatus::of(&garbled).counts.is_empty());
    }

    /// Reports are stored bounded (each list a count and a sample of its first items): the
    /// counts are the lists' exact sizes, never their samples' lengths.
    #[test]
    fn a_bounded_runs_counts_come_from_its_lists_counts_and_its_error_from_its_sample() {
        let run = SyncRunRecord {
            seq: 4,
            started: Timestamp::from_micros(1_000),
            ended: Timestamp::from_micros(2_000),
            outcome: "failed".into(),
            report: serde_json::json!({
                "plan": {
                    "creates": {"count": 100_005, "truncated": true, "sample": [{}, {}]},
                    "memberships": {"count": 1, "truncated": false, "sample": [{}]},
                    "drift": {"count": 0, "truncated": false, "sample": []},
                    "guard": null,
                },
                "writes": 100_004,
                "failures": {
                    "count": 250,
                    "truncated": true,
                    "sample": [{"item": "create user ada", "error": "HTTP 500"}],
                },
            })
            .to_string(),
        };
        let status = RunStatus::of(&run);
        assert_eq!(status.counts["creates"], 100_005);
        assert_eq!(status.counts["memberships"], 1);
        assert_eq!(status.counts["drift"], 0);
        assert_eq!(status.counts["writes"], 100_004);
        assert_eq!(status.counts["failures"], 250);
        assert!(!status.counts.contains_key("deletions"));
        assert_eq!(status.error.as_deref(), Some("create user ada: HTTP 500"));
    }

    #[test]
    fn a_state_key_names_its_job_and_target() {
        assert_eq!(split_key("hr"), ("hr", None));
        assert_eq!(split_key("hr/prod-1"), ("hr", Some("prod-1")));
    }
}
