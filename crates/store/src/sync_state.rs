//! What storage keeps for `scimitar sync` jobs (issue #17): each job's id mappings with
//! their ownership, its watermark, and its run history. Deployment bookkeeping keyed by the
//! job's name, not a tenant's data: a job runs for an operator and may move identities
//! between services none of whose accounts live in this database. Each job's state names the
//! account it answers to (set by its runs), so that its status is served to that account's
//! admins and to no one else. See `docs/design/sync.md`.

use crate::audit::{AuditContext, AuditTarget};
use scimitar_domain::{AccountId, Timestamp};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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
    /// The run's report as JSON, bounded: each list an exact count and a sample of its first
    /// items (`scimitar_sync::stored`), read through [`SyncRunRecord::summary`].
    pub report: String,
}

/// The plan's lists whose sizes a run's status shows, by their names in its stored report.
pub const SYNC_PLAN_LISTS: [&str; 8] = [
    "creates",
    "adoptions",
    "updates",
    "memberships",
    "deactivations",
    "deletions",
    "drift",
    "ambiguities",
];

/// What the readers of a job's run history (the status API, `scimitar sync status`, the
/// quarantine) take from a run's stored report. The report is the sync engine's to write
/// (`scimitar_sync::stored`); it is read here, in one place, because the application crate,
/// which serves the status, does not depend on the sync engine. A field the report lacks (a
/// run that could not complete has no plan; a report that does not parse has nothing) is
/// `None` or left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRunSummary {
    /// The exact size of each of the plan's lists ([`SYNC_PLAN_LISTS`]) the report holds.
    pub plan_counts: BTreeMap<&'static str, u64>,
    /// Write requests made to the target.
    pub writes: Option<u64>,
    /// Items that failed.
    pub failures: Option<u64>,
    /// The first item that failed, with the target's error, as `item: error`.
    pub first_failure: Option<String>,
    /// Why the deletion guard (or a plan that was not the reviewed one) stopped the run.
    pub stopped: Option<String>,
    /// Why the run could not complete (outcome `error`).
    pub error: Option<String>,
}

impl SyncRunSummary {
    /// What a run's status says went wrong: why it could not complete, why the guard stopped
    /// it, or its first failure (`None` for a run that applied everything).
    pub fn problem(&self) -> Option<String> {
        self.error
            .clone()
            .or_else(|| self.stopped.clone())
            .or_else(|| self.first_failure.clone())
    }

    /// The run's counts by name, as its status shows them: the plan's lists, `writes` and
    /// `failures`, each only when the report holds it.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = self
            .plan_counts
            .iter()
            .map(|(name, count)| ((*name).to_string(), *count))
            .collect();
        if let Some(writes) = self.writes {
            counts.insert("writes".into(), writes);
        }
        if let Some(failures) = self.failures {
            counts.insert("failures".into(), failures);
        }
        counts
    }
}

impl SyncRunRecord {
    /// What the run's report says, in the shape reports are stored in now (each list
    /// `{"count", "truncated", "sample"}`) or in the one earlier builds stored (each list
    /// whole, its length its count).
    pub fn summary(&self) -> SyncRunSummary {
        // A report that does not parse (none should) still leaves its run and outcome to show.
        let report: Value = serde_json::from_str(&self.report).unwrap_or_default();
        let mut plan_counts = BTreeMap::new();
        for name in SYNC_PLAN_LISTS {
            if let Some(list) = StoredList::of(&report["plan"][name]) {
                plan_counts.insert(name, list.count);
            }
        }
        let failures = StoredList::of(&report["failures"]);
        let first_failure = failures
            .as_ref()
            .and_then(|failures| failures.first)
            .and_then(
                |first| match (first["item"].as_str(), first["error"].as_str()) {
                    (Some(item), Some(error)) => Some(format!("{item}: {error}")),
                    _ => None,
                },
            );
        let text = |name: &str| report[name].as_str().map(str::to_string);
        SyncRunSummary {
            plan_counts,
            writes: report["writes"].as_u64(),
            failures: failures.map(|failures| failures.count),
            first_failure,
            stopped: text("stopped"),
            error: text("error"),
        }
    }
}

/// One list of a stored report: its exact size and its first item.
struct StoredList<'a> {
    count: u64,
    first: Option<&'a Value>,
}

impl<'a> StoredList<'a> {
    /// A list as reports are stored now, `{"count": n, "truncated": .., "sample": [..]}`, or
    /// as earlier builds stored it, the whole array; `None` for anything else.
    fn of(value: &'a Value) -> Option<StoredList<'a>> {
        match value {
            Value::Array(items) => Some(StoredList {
                count: u64::try_from(items.len()).unwrap_or(u64::MAX),
                first: items.first(),
            }),
            Value::Object(list) => Some(StoredList {
                count: list.get("count")?.as_u64()?,
                first: list.get("sample").and_then(|sample| sample.get(0)),
            }),
            _ => None,
        }
    }
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

/// The outcome of the run an operator's lift of a quarantine records (`scimitar sync resume`,
/// `POST /api/2.0/sync/jobs/{name}/resume`): it ends a target's streak of failed runs.
pub const SYNC_RUN_RESUMED: &str = "resumed";

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn run(report: Value) -> SyncRunRecord {
        SyncRunRecord {
            seq: 1,
            started: Timestamp::from_micros(1),
            ended: Timestamp::from_micros(2),
            outcome: "failed".into(),
            report: report.to_string(),
        }
    }

    #[test]
    fn a_bounded_report_is_read_by_its_counts_not_its_samples() {
        let summary = run(json!({
            "plan": {
                "creates": {"count": 100_005, "truncated": true, "sample": [{}, {}]},
                "updates": {"count": 0, "truncated": false, "sample": []},
                "guard": null,
            },
            "writes": 100_003,
            "failures": {"count": 2, "truncated": true,
                         "sample": [{"item": "create user ada", "error": "HTTP 500"}]},
        }))
        .summary();
        assert_eq!(summary.plan_counts["creates"], 100_005);
        assert_eq!(summary.plan_counts["updates"], 0);
        assert!(!summary.plan_counts.contains_key("deletions"));
        assert_eq!(summary.writes, Some(100_003));
        assert_eq!(summary.failures, Some(2));
        assert_eq!(
            summary.first_failure.as_deref(),
            Some("create user ada: HTTP 500")
        );
        let counts = summary.counts();
        assert_eq!(
            (counts["creates"], counts["writes"], counts["failures"]),
            (100_005, 100_003, 2)
        );
    }

    #[test]
    fn a_report_stored_whole_by_an_earlier_build_is_read_by_its_lists_lengths() {
        let summary = run(json!({
            "plan": {"creates": [{}, {}, {}], "drift": [], "guard": null},
            "stopped": "the plan deactivates or deletes 9 of the 10 objects",
            "writes": 0,
            "failures": [{"item": "create user bob", "error": "HTTP 409"}, {}],
        }))
        .summary();
        assert_eq!(summary.plan_counts["creates"], 3);
        assert_eq!(summary.plan_counts["drift"], 0);
        assert_eq!(summary.failures, Some(2));
        assert_eq!(
            summary.first_failure.as_deref(),
            Some("create user bob: HTTP 409")
        );
        assert_eq!(
            summary.stopped.as_deref(),
            Some("the plan deactivates or deletes 9 of the 10 objects")
        );
        assert_eq!(summary.writes, Some(0));
    }

    #[test]
    fn a_run_that_could_not_complete_or_a_garbled_report_has_no_counts() {
        let errored = run(json!({"job": "hr", "mode": "apply", "error": "target down"}));
        let summary = errored.summary();
        assert_eq!(summary.error.as_deref(), Some("target down"));
        assert!(summary.counts().is_empty());
        let garbled = SyncRunRecord {
            report: "not json".into(),
            ..errored
        };
        assert_eq!(garbled.summary(), SyncRunSummary::default());
        let odd = run(json!({"plan": {"creates": {"sample": []}}, "failures": "none"}));
        assert_eq!(odd.summary(), SyncRunSummary::default());
    }

    #[test]
    fn a_runs_problem_is_its_error_then_the_guards_reason_then_its_first_failure() {
        let failure = json!({"count": 1, "truncated": false,
                             "sample": [{"item": "create user ada", "error": "HTTP 500"}]});
        let all = run(json!({"error": "target down", "stopped": "guard", "failures": failure}));
        assert_eq!(all.summary().problem().as_deref(), Some("target down"));
        let stopped = run(json!({"stopped": "guard", "failures": failure}));
        assert_eq!(stopped.summary().problem().as_deref(), Some("guard"));
        let failed = run(json!({"failures": failure}));
        assert_eq!(
            failed.summary().problem().as_deref(),
            Some("create user ada: HTTP 500")
        );
        assert_eq!(run(json!({"writes": 3})).summary().problem(), None);
    }
}
