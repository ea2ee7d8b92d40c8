//! Quarantine: a target whose runs keep failing wholly is run far less often until one
//! succeeds. A target that is down, refuses the job's token, or fails every write would
//! otherwise be hammered every interval (and every back-off) for as long as nobody looks;
//! Entra's provisioning service does the same. The quarantine is read from the run history
//! under the target's state key (`config::state_key`), not kept beside it: a target is
//! quarantined when its latest `after_failures` runs all failed wholly, so a run that succeeds
//! lifts it, and an operator lifts it by recording a run of the outcome `resumed` (`scimitar
//! sync resume`), which breaks the streak. While a target is quarantined, `watch` leaves it out
//! of the job's runs until `interval` has passed since its last run; the job's other targets
//! still run on every trigger.
//!
//! A run failed wholly when it could not complete (`error`) or when it wrote nothing and some
//! item failed (`failed` with no write): a run that did some of its work is a partial
//! success, retried at the next trigger as before.

use crate::config::state_key;
use crate::run::Oversight;
use crate::trail::TargetRef;
use crate::{SyncError, SyncResult};
use scimitar_domain::{Clock, Timestamp};
use scimitar_store::{Store, SyncRunRecord};
use std::time::Duration;

/// `[watch] quarantine_after_failures` and `quarantine_interval_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineSettings {
    /// Runs failed wholly in a row that quarantine the job; 0 never quarantines it.
    pub after_failures: u32,
    /// While quarantined, the time between runs.
    pub interval: Duration,
}

impl Default for QuarantineSettings {
    fn default() -> Self {
        QuarantineSettings {
            after_failures: 5,
            interval: Duration::from_secs(3600),
        }
    }
}

/// The outcome an operator's lift records in the run history.
pub const RESUMED: &str = scimitar_store::SYNC_RUN_RESUMED;

/// A quarantined job, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// Runs failed wholly in a row (of those read: at least the threshold).
    pub failures: u32,
    /// The latest run's error.
    pub last_error: String,
    /// When the latest run ended.
    pub last_run: Timestamp,
    /// When `watch` runs the job again.
    pub next_run: Timestamp,
}

/// Whether a recorded run failed wholly (see the module's note).
pub fn failed_wholly(run: &SyncRunRecord) -> bool {
    match run.outcome.as_str() {
        "error" => true,
        "failed" => run.summary().writes == Some(0),
        _ => false,
    }
}

/// What a wholly failed run says went wrong: its error, or its first failure.
pub fn error_of(run: &SyncRunRecord) -> String {
    let summary = run.summary();
    summary
        .error
        .or(summary.first_failure)
        .unwrap_or_else(|| run.outcome.clone())
}

/// The job's quarantine, from its latest runs (newest first, at least `after_failures` of
/// them when there are that many); `None` when it is not quarantined.
pub fn of_runs(runs: &[SyncRunRecord], settings: &QuarantineSettings) -> Option<Quarantine> {
    let threshold = usize::try_from(settings.after_failures).ok()?;
    if threshold == 0 {
        return None;
    }
    let streak = runs.iter().take_while(|run| failed_wholly(run)).count();
    if streak < threshold {
        return None;
    }
    let latest = &runs[0];
    let interval = i64::try_from(settings.interval.as_micros()).unwrap_or(i64::MAX);
    Some(Quarantine {
        failures: u32::try_from(streak).unwrap_or(u32::MAX),
        last_error: error_of(latest),
        last_run: latest.ended,
        next_run: Timestamp::from_micros(latest.ended.as_micros().saturating_add(interval)),
    })
}

/// Whether a run that failed wholly (or not: `this_failed_wholly`) makes the job quarantined
/// now, given the runs before it (newest first): the streak reaches the threshold with it, and
/// did not before.
pub fn enters(
    earlier: &[SyncRunRecord],
    this_failed_wholly: bool,
    settings: &QuarantineSettings,
) -> bool {
    let Ok(threshold) = usize::try_from(settings.after_failures) else {
        return false;
    };
    if threshold == 0 || !this_failed_wholly {
        return false;
    }
    earlier.iter().take_while(|run| failed_wholly(run)).count() == threshold - 1
}

/// The runs the quarantine is decided from: the latest under the target's state `key`, as
/// many as the threshold.
pub async fn latest_runs(
    store: &dyn Store,
    key: &str,
    settings: &QuarantineSettings,
) -> SyncResult<Vec<SyncRunRecord>> {
    let count = usize::try_from(settings.after_failures).unwrap_or(usize::MAX);
    if count == 0 {
        return Ok(Vec::new());
    }
    Ok(store.sync_runs(key, count).await?)
}

/// The quarantine of the target whose state is under `key`, as the store has it now.
pub async fn status(
    store: &dyn Store,
    key: &str,
    settings: &QuarantineSettings,
) -> SyncResult<Option<Quarantine>> {
    Ok(of_runs(&latest_runs(store, key, settings).await?, settings))
}

/// How long `watch` waits before the job's next run because it is quarantined (`None`: it
/// may run now).
pub fn wait_before_run(quarantine: Option<&Quarantine>, now: Timestamp) -> Option<Duration> {
    let quarantine = quarantine?;
    let left = quarantine
        .next_run
        .as_micros()
        .checked_sub(now.as_micros())?;
    (left > 0).then(|| Duration::from_micros(left.unsigned_abs()))
}

/// Lifts a target's quarantine (`scimitar sync resume`): records, under the target's state
/// key, a run of the outcome `resumed`, which ends the streak of failures, with its audit
/// event (`syncResumed`). Refused when the target is not quarantined, so a mistyped name says
/// so rather than doing nothing.
pub async fn resume(
    store: &dyn Store,
    clock: &dyn Clock,
    job: &str,
    target: TargetRef<'_>,
    oversight: &Oversight,
) -> SyncResult<()> {
    let key = state_key(job, target.name);
    if status(store, &key, &oversight.quarantine).await?.is_none() {
        return Err(SyncError::Config(match target.name {
            Some(name) => format!("job {job} target {name} is not quarantined"),
            None => format!("job {job} is not quarantined"),
        }));
    }
    let account = crate::trail::account_of(store, oversight.account.as_deref()).await?;
    let now = clock.now();
    let record = SyncRunRecord {
        seq: 0,
        started: now,
        ended: now,
        outcome: RESUMED.to_string(),
        report: serde_json::json!({"job": job, "target": target.name, "mode": "resume"})
            .to_string(),
    };
    let events = vec![crate::trail::resumed(job, target)];
    let audit = crate::trail::audit(clock, job, account.clone(), events);
    let unchanged = crate::model::JobState::default();
    let trail = crate::state::RunTrail {
        account,
        audit,
        quarantine: &oversight.quarantine,
    };
    crate::state::record(store, &key, &unchanged, &unchanged, record, trail).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn run(outcome: &str, report: serde_json::Value, ended: i64) -> SyncRunRecord {
        SyncRunRecord {
            seq: 0,
            started: Timestamp::from_micros(ended - 1),
            ended: Timestamp::from_micros(ended),
            outcome: outcome.into(),
            report: report.to_string(),
        }
    }

    fn error(ended: i64) -> SyncRunRecord {
        run("error", serde_json::json!({"error": "target: down"}), ended)
    }

    const SETTINGS: QuarantineSettings = QuarantineSettings {
        after_failures: 3,
        interval: Duration::from_secs(10),
    };

    #[test]
    fn runs_failed_wholly_in_a_row_quarantine_until_one_succeeds_or_is_resumed() {
        let runs = [error(30), error(20), error(10)];
        let quarantine = of_runs(&runs, &SETTINGS).expect("quarantined");
        assert_eq!(quarantine.failures, 3);
        assert_eq!(quarantine.last_error, "target: down");
        assert_eq!(quarantine.next_run.as_micros(), 30 + 10_000_000);
        assert_eq!(of_runs(&runs[..2], &SETTINGS), None);
        let applied = run("applied", serde_json::json!({"writes": 1}), 40);
        assert_eq!(of_runs(&[applied, error(30), error(20)], &SETTINGS), None);
        let resumed = run(RESUMED, serde_json::json!({}), 40);
        assert_eq!(of_runs(&[resumed, error(30), error(20)], &SETTINGS), None);
        let never = QuarantineSettings {
            after_failures: 0,
            ..SETTINGS
        };
        assert_eq!(of_runs(&runs, &never), None);
    }

    #[test]
    fn a_run_that_wrote_something_is_no_whole_failure() {
        let partly = run(
            "failed",
            serde_json::json!({"writes": 2, "failures": [{"item": "create user a", "error": "500"}]}),
            10,
        );
        assert!(!failed_wholly(&partly));
        let wholly = run(
            "failed",
            serde_json::json!({"writes": 0, "failures": [{"item": "create user a", "error": "500 boom"}]}),
            10,
        );
        assert!(failed_wholly(&wholly));
        assert_eq!(
            of_runs(&[wholly.clone(), wholly.clone(), wholly], &SETTINGS)
                .expect("quarantined")
                .last_error,
            "create user a: 500 boom"
        );
        assert!(!failed_wholly(&run(
            "stopped",
            serde_json::json!({"writes": 0}),
            1
        )));
    }

    /// Runs are recorded with their failures bounded (a count and a sample,
    /// [`crate::stored`]); those recorded whole by earlier builds are read as before.
    #[test]
    fn a_bounded_report_and_one_stored_whole_are_judged_alike() {
        let bounded = |writes: u64| {
            run(
                "failed",
                serde_json::json!({
                    "writes": writes,
                    "failures": {"count": 500, "truncated": true,
                                 "sample": [{"item": "create user a", "error": "503 busy"}]},
                }),
                10,
            )
        };
        assert!(failed_wholly(&bounded(0)));
        assert!(!failed_wholly(&bounded(7)));
        assert_eq!(error_of(&bounded(0)), "create user a: 503 busy");
        let whole = run(
            "failed",
            serde_json::json!({"writes": 0, "failures": [{"item": "create user a", "error": "503 busy"}]}),
            10,
        );
        assert!(failed_wholly(&whole));
        assert_eq!(error_of(&whole), "create user a: 503 busy");
        let nothing_said = run("failed", serde_json::json!({"writes": 0}), 10);
        assert_eq!(error_of(&nothing_said), "failed");
    }

    #[test]
    fn the_run_that_reaches_the_threshold_enters_the_quarantine_once() {
        assert!(enters(&[error(20), error(10)], true, &SETTINGS));
        assert!(!enters(&[error(20), error(10)], false, &SETTINGS));
        assert!(!enters(&[error(30), error(20), error(10)], true, &SETTINGS));
        assert!(!enters(&[error(20)], true, &SETTINGS));
        let quarantine = of_runs(&[error(30), error(20), error(10)], &SETTINGS);
        assert_eq!(
            wait_before_run(quarantine.as_ref(), Timestamp::from_micros(30)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            wait_before_run(quarantine.as_ref(), Timestamp::from_micros(30 + 10_000_000)),
            None
        );
        assert_eq!(wait_before_run(None, Timestamp::from_micros(0)), None);
    }
}
