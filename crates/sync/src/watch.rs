//! `scimitar sync watch`: a job run again and again, each run as `apply` makes it (plan, the
//! deletion guard, apply, record), then a wait for the next trigger:
//!
//! - a Scimitar source followed through its change feed ([`Trigger::Changes`]): the feed is
//!   long-polled from the token read just before the last run, so a change made during a run
//!   triggers the next one at once; and at least every `interval` a run happens anyway, which
//!   retries items that failed and corrects drift when nothing changes at the source. A run
//!   the feed triggers reads only what changed ([`crate::incremental`]) while the last full
//!   run is less than an interval old; the interval's run is full;
//! - an LDAP directory with `poll_seconds` ([`Trigger::Poll`]): every `poll_seconds`, reading
//!   only what changed since the last run ([`crate::ldap_incremental`]) while the last full run
//!   is less than an interval old; the interval's run is full;
//! - any other source ([`Trigger::Interval`]): every `interval`.
//!
//! A run that cannot complete (the source, the target or the state database down) is recorded
//! in the run history as `error`, reported, and tried again after a back-off that doubles from
//! one second up to `max_backoff`; a run whose items failed, or that the guard stopped, is
//! recorded as `apply` records it and the next trigger runs it again. Nothing ends the loop but
//! `stop`, which is looked at between runs and cuts a wait short, never a run.
//!
//! Each run reads the source once and runs every target of the job from it ([`run_all`], or
//! [`run_incremental`] from the oldest of the targets' watermarks); a target that cannot be run
//! is recorded as `error` in its own history and retried after the back-off while the others
//! are applied. A target quarantined ([`crate::quarantine`]) is left out of the runs until its
//! quarantine interval has passed, and the waits are cut short when it is due; the job's other
//! targets run on every trigger.
//!
//! Two processes watching one job never run it at once: each run, and each wait, is done
//! holding the job's lease in the state database, renewed every third of its length; a process
//! that finds it held by another stands by and tries again, and takes over once the holder has
//! stopped renewing it (or gave it up on stopping).

use crate::config::state_key;
use crate::feed::{ChangeFeed, MAX_POLL};
use crate::incremental::run_incremental;
use crate::quarantine::Quarantine;
use crate::run::{run_all, FanOut, FanOutReport, Job, Mode, Report, Target, TargetOutcome};
use crate::{state, SyncError, SyncResult};
use scimitar_domain::{Clock, Timestamp};
use scimitar_store::{Store, SyncRunRecord};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch::Receiver;

/// The shortest wait between runs, whatever is configured: a source is read whole each time.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest wait between two polls of a directory ([`Trigger::Poll`]): a poll that took
/// longer than its period still leaves the directory a moment.
const MIN_POLL_GAP: Duration = Duration::from_millis(100);

/// How long to wait before the next poll, when the last one began `elapsed` ago: polls are
/// spaced from start to start, so that a change waits at most about `every` for the poll
/// that reads it to begin, however long a poll takes; never past `next_due` (a quarantined
/// target's run), never less than [`MIN_POLL_GAP`].
fn next_poll_in(every: Duration, elapsed: Duration, next_due: Option<Duration>) -> Duration {
    let wait = every.saturating_sub(elapsed);
    next_due.map_or(wait, |due| wait.min(due)).max(MIN_POLL_GAP)
}

/// The first wait after a run that could not complete; it doubles up to `max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// When to run again.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// When the source's change feed moves past the token read before the last run, and at
    /// least every `interval`.
    Changes {
        feed: ChangeFeed,
        interval: Duration,
    },
    /// Every `interval`.
    Interval(Duration),
    /// Every `every`, reading only what changed at the source since the last run (an LDAP
    /// directory, `crate::ldap_incremental`), and the whole source at least every `interval`.
    Poll { every: Duration, interval: Duration },
}

/// A job to watch, and how.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The job, with every target it runs (each run reads the source once for all of them).
    pub job: FanOut,
    pub trigger: Trigger,
    /// The longest wait between attempts while a run cannot complete.
    pub max_backoff: Duration,
    /// How long this process's hold on the job lasts without renewal.
    pub lease: Duration,
    /// This process, as the lease's holder: unique among the processes that may watch the job.
    pub owner: String,
}

/// What one turn of the loop did, for the caller to show.
#[derive(Debug)]
pub enum Turn {
    /// A run completed for one target (applied, failed items, or stopped by the guard) and was
    /// recorded.
    Ran(Box<Report>),
    /// A run could not complete (for one target, named in `error`, or, the source down, for
    /// all); recorded as `error`, tried again after `retry_in`.
    Failed { error: String, retry_in: Duration },
    /// Another process holds the job's lease: this one waits, then tries again.
    StandingBy { holder: Option<String> },
    /// One of the job's targets (`target`: its name among `[[targets]]`) is quarantined: it
    /// is left out of the job's runs until `quarantine.next_run` (or until resumed). Seen
    /// once per quarantined run, not on every look while waiting.
    Quarantined {
        target: Option<String>,
        quarantine: Quarantine,
    },
}

/// A name for this process as a lease holder: the host (from `HOSTNAME`, when set), the
/// process id and the time it started, so two processes on one host differ.
pub fn owner_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_string());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_micros())
        .unwrap_or_default();
    format!("{host}/{}/{started}", std::process::id())
}

/// Whether `stop` says to stop (or its sender is gone, which says the same).
fn stopping(stop: &Receiver<bool>) -> bool {
    stop.has_changed().is_err() || *stop.borrow()
}

/// Completes when `stop` says to stop.
async fn stopped(stop: &Receiver<bool>) {
    let mut stop = stop.clone();
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Sleeps for `duration` unless `stop` comes first; says whether it did.
async fn pause(stop: &Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = stopped(stop) => true,
        () = tokio::time::sleep(duration) => false,
    }
}

fn plus(time: Timestamp, duration: Duration) -> Timestamp {
    let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
    Timestamp::from_micros(time.as_micros().saturating_add(micros))
}

impl Watch {
    /// Runs the job until `stop` says to stop, calling `observe` after each turn. Returns when
    /// stopped, having given up the lease.
    pub async fn run(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        stop: Receiver<bool>,
        mut observe: impl FnMut(&Turn),
    ) {
        let lease = self.job_lease();
        let mut backoff = FIRST_BACKOFF;
        // Whether this process runs the job: each change is one line of the log, so an
        // operator of several nodes sees which runs it.
        let mut holding = false;
        // When the last full run began: runs woken by the feed are incremental until an
        // interval has passed since (`None`: none yet).
        let mut last_full: Option<tokio::time::Instant> = None;
        // The quarantines already shown, per target: each is shown once, not on every look.
        let mut announced: BTreeMap<Option<String>, Quarantine> = BTreeMap::new();
        while !stopping(&stop) {
            match lease.take(store, clock).await {
                Ok(true) => {
                    if !holding {
                        tracing::info!(job = %self.job.name, owner = %self.owner, "took the job's lease: this process runs the job");
                        holding = true;
                    }
                }
                Ok(false) => {
                    let holder = store
                        .sync_lease(&self.job.name)
                        .await
                        .ok()
                        .flatten()
                        .map(|(owner, _)| owner);
                    if holding {
                        tracing::warn!(job = %self.job.name, holder = holder.as_deref().unwrap_or("unknown"), "lost the job's lease: another process runs the job");
                        holding = false;
                    }
                    observe(&Turn::StandingBy { holder });
                    // Half a lease: a holder that died is taken over soon after it expires.
                    if pause(&stop, self.lease / 2).await {
                        break;
                    }
                    continue;
                }
                Err(error) => {
                    let retry_in = backoff;
                    backoff = (backoff * 2).min(self.max_backoff.max(FIRST_BACKOFF));
                    observe(&Turn::Failed {
                        error: format!("the job's lease: {error}"),
                        retry_in,
                    });
                    if pause(&stop, retry_in).await {
                        break;
                    }
                    continue;
                }
            }
            // A quarantined target is left out of the job's runs until its interval has
            // passed; the others run on every trigger. With every target quarantined, the
            // wait is looked at again every half lease, so an operator's resume is seen soon.
            let (job, held) = self.runnable(store, clock).await;
            for (target, _, quarantine) in &held {
                if announced.get(target) != Some(quarantine) {
                    announced.insert(target.clone(), quarantine.clone());
                    observe(&Turn::Quarantined {
                        target: target.clone(),
                        quarantine: quarantine.clone(),
                    });
                }
            }
            // The next quarantined target's run bounds every wait below.
            let next_due = held.iter().map(|(_, wait, _)| *wait).min();
            if job.targets.is_empty() {
                let wait = next_due
                    .unwrap_or(MIN_INTERVAL)
                    .min(self.lease / 2)
                    .max(MIN_INTERVAL);
                if self.holding_lease(store, clock, pause(&stop, wait)).await {
                    break;
                }
                continue;
            }
            // The source's token before the run: a change after it triggers the next run.
            let seen = match &self.trigger {
                Trigger::Changes { feed, .. } => feed.current().await.ok(),
                Trigger::Interval(_) | Trigger::Poll { .. } => None,
            };
            let started = clock.now();
            let began = tokio::time::Instant::now();
            let outcome = self
                .holding_lease(
                    store,
                    clock,
                    self.run_once(&job, store, clock, &mut last_full),
                )
                .await;
            let failed = self.failures_of(&job, outcome, &mut observe);
            let retry_in = if failed.is_empty() {
                backoff = FIRST_BACKOFF;
                None
            } else {
                // Every target that could run runs again after the back-off; those that were
                // applied find nothing to do, and their record says so.
                let retry_in = backoff;
                backoff = (backoff * 2).min(self.max_backoff.max(FIRST_BACKOFF));
                for (target, error) in failed {
                    record_error(store, clock, &job.job_for(target), target, started, &error).await;
                    let error = match &target.name {
                        Some(target) => format!("target {target}: {error}"),
                        None => error,
                    };
                    observe(&Turn::Failed { error, retry_in });
                }
                Some(retry_in)
            };
            if stopping(&stop) {
                break;
            }
            let bound = |wait: Duration| match next_due {
                Some(due) => wait.min(due).max(MIN_INTERVAL),
                None => wait.max(MIN_INTERVAL),
            };
            let stopped_in_wait = match (retry_in, &self.trigger) {
                (Some(retry_in), _) => {
                    self.holding_lease(store, clock, pause(&stop, bound(retry_in)))
                        .await
                }
                (None, Trigger::Interval(interval)) => {
                    self.holding_lease(store, clock, pause(&stop, bound(*interval)))
                        .await
                }
                (None, Trigger::Poll { every, .. }) => {
                    let wait = next_poll_in(*every, began.elapsed(), next_due);
                    self.holding_lease(store, clock, pause(&stop, wait)).await
                }
                (None, Trigger::Changes { feed, interval }) => {
                    let interval = bound(*interval);
                    let wait = self.wait_for_change(feed, seen, interval, &stop);
                    self.holding_lease(store, clock, wait).await
                }
            };
            if stopped_in_wait {
                break;
            }
        }
        lease.release(store).await;
        if holding {
            tracing::info!(job = %self.job.name, owner = %self.owner, "gave the job's lease up: stopping");
        }
    }

    /// Shows each target's completed run, and returns the targets of `job` (the targets this
    /// run ran) whose run could not complete, with their errors (every one of them when the
    /// source could not be read).
    fn failures_of<'job>(
        &self,
        job: &'job FanOut,
        outcome: SyncResult<FanOutReport>,
        observe: &mut impl FnMut(&Turn),
    ) -> Vec<(&'job Target, String)> {
        let report = match outcome {
            Ok(report) => report,
            Err(error) => {
                let error = error.to_string();
                return job
                    .targets
                    .iter()
                    .map(|target| (target, error.clone()))
                    .collect();
            }
        };
        let mut failed = Vec::new();
        for outcome in report.targets {
            match outcome {
                TargetOutcome::Ran(report) => observe(&Turn::Ran(report)),
                TargetOutcome::Failed { target, error, .. } => {
                    if let Some(target) = job.targets.iter().find(|one| one.name == target) {
                        failed.push((target, error));
                    }
                }
            }
        }
        failed
    }

    /// One run of `job` (the targets this turn runs): incremental ([`run_incremental`]) when
    /// the source's feed woke it and a full run began less than an interval ago, else (or when
    /// the job cannot run incrementally) full, which also finds what incremental runs cannot
    /// see (deletions, scope changes).
    async fn run_once(
        &self,
        job: &FanOut,
        store: &dyn Store,
        clock: &dyn Clock,
        last_full: &mut Option<tokio::time::Instant>,
    ) -> SyncResult<FanOutReport> {
        let now = tokio::time::Instant::now();
        if let (Trigger::Changes { interval, .. } | Trigger::Poll { interval, .. }, Some(last)) =
            (&self.trigger, *last_full)
        {
            if now.duration_since(last) < *interval {
                if let Some(report) = run_incremental(job, store, clock, Mode::Apply).await? {
                    return Ok(report);
                }
            }
        }
        let report = run_all(job, store, clock, Mode::Apply).await?;
        *last_full = Some(now);
        Ok(report)
    }

    /// The job as this turn runs it: without the targets that are quarantined and not yet
    /// due, which are returned with the time until they are and their quarantine. A target
    /// whose history cannot be read runs (the run then finds out what is wrong).
    async fn runnable(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
    ) -> (FanOut, Vec<(Option<String>, Duration, Quarantine)>) {
        let settings = &self.job.oversight.quarantine;
        let mut job = self.job.clone();
        let mut held = Vec::new();
        let mut runnable = Vec::new();
        for target in std::mem::take(&mut job.targets) {
            let key = state_key(&self.job.name, target.name.as_deref());
            let quarantine = match crate::quarantine::status(store, &key, settings).await {
                Ok(quarantine) => quarantine,
                Err(error) => {
                    tracing::warn!(%key, %error, "cannot read the target's runs");
                    None
                }
            };
            let wait = crate::quarantine::wait_before_run(quarantine.as_ref(), clock.now());
            match (quarantine, wait) {
                (Some(quarantine), Some(wait)) => held.push((target.name, wait, quarantine)),
                _ => runnable.push(target),
            }
        }
        job.targets = runnable;
        (job, held)
    }

    /// This process's hold on the job.
    fn job_lease(&self) -> JobLease {
        JobLease {
            job: self.job.name.clone(),
            owner: self.owner.clone(),
            length: self.lease,
        }
    }

    /// Runs `work` while renewing the job's lease ([`JobLease::holding`]).
    async fn holding_lease<T>(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        work: impl Future<Output = T>,
    ) -> T {
        self.job_lease().holding(store, clock, work).await
    }

    /// Long-polls the feed until the source's token moves past `seen`, `interval` passes, or
    /// `stop`; says whether it was `stop`. A feed that fails is polled again after a back-off
    /// (the interval still bounds the wait, so the job runs even while its feed is down).
    async fn wait_for_change(
        &self,
        feed: &ChangeFeed,
        mut seen: Option<u64>,
        interval: Duration,
        stop: &Receiver<bool>,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + interval;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let answer = tokio::select! {
                () = stopped(stop) => return true,
                answer = async {
                    match seen {
                        Some(after) => feed.wait(after, left.min(MAX_POLL)).await.map(Some),
                        // The token before the run could not be read: read it now, and wait
                        // from there (a change in between waits for the interval).
                        None => feed.current().await.map(|token| {
                            seen = Some(token);
                            None
                        }),
                    }
                } => answer,
            };
            match answer {
                Ok(Some(token)) if seen.is_some_and(|seen| token > seen) => return false,
                Ok(_) => backoff = FIRST_BACKOFF,
                Err(failure) => {
                    tracing::warn!(job = %self.job.name, %failure, ?backoff, "cannot follow the source's changes");
                    let wait = backoff.min(left);
                    backoff = (backoff * 2).min(self.max_backoff.max(FIRST_BACKOFF));
                    if pause(stop, wait).await {
                        return true;
                    }
                }
            }
        }
    }
}

/// Records a target's run that could not complete in its history (outcome `error`, the error as
/// its report), so `scimitar sync status` shows it, with its audit events (a failed run, and
/// the quarantine it may start); the state itself is left as it was.
async fn record_error(
    store: &dyn Store,
    clock: &dyn Clock,
    job: &Job,
    target: &Target,
    started: Timestamp,
    error: &str,
) {
    let name = target.name.as_deref();
    let mut report = serde_json::json!({"job": job.name, "mode": "apply", "error": error});
    if let Some(name) = name {
        report["target"] = name.into();
    }
    let record = SyncRunRecord {
        seq: 0,
        started,
        ended: clock.now(),
        outcome: "error".to_string(),
        report: report.to_string(),
    };
    let unchanged = crate::model::JobState::default();
    let key = state_key(&job.name, name);
    // The run's record matters more than its events: it is kept even when they cannot be made.
    let account = crate::trail::account_of(store, job.oversight.account.as_deref())
        .await
        .unwrap_or_else(|failure| {
            tracing::warn!(job = %job.name, error = %failure, "the failed run's account");
            None
        });
    let audit = async {
        let events = vec![crate::trail::of_error(
            &job.name,
            job.target_ref(name),
            error,
        )];
        let events = crate::trail::for_run(store, job, name, &record, events).await?;
        Ok::<_, SyncError>(crate::trail::audit(
            clock,
            &job.name,
            account.clone(),
            events,
        ))
    };
    let audit = audit.await.unwrap_or_else(|failure| {
        tracing::warn!(job = %job.name, error = %failure, "the failed run's audit events");
        None
    });
    let trail = state::RunTrail {
        account,
        audit,
        quarantine: &job.oversight.quarantine,
    };
    if let Err(failure) = state::record(store, &key, &unchanged, &unchanged, record, trail).await {
        tracing::warn!(%key, error = %failure, "could not record the failed run");
    }
}

/// The change feed's URL and the watch's trigger, from a job's configuration.
pub fn trigger_of(
    source: &crate::config::SourceConfig,
    settings: &crate::config::WatchSettings,
    token: Option<&crate::scim::Secret>,
) -> SyncResult<Trigger> {
    let interval = Duration::from_secs(settings.interval_seconds);
    match source {
        crate::config::SourceConfig::Scim {
            url,
            follow_changes: true,
            changes_url,
            ..
        } => {
            let feed_url = match changes_url {
                Some(feed_url) => feed_url.clone(),
                None => crate::config::changes_url_of(url).ok_or_else(|| {
                    SyncError::Config(format!(
                        "follow_changes: {url} is no Scimitar SCIM URL (.../scim/v2); give \
                         changes_url"
                    ))
                })?,
            };
            let token = token.cloned().ok_or_else(|| {
                SyncError::Config("follow_changes needs the source's token".into())
            })?;
            let mut feed = ChangeFeed::new(&feed_url, token);
            let tls = source.tls();
            if !tls.is_default() {
                feed = feed.with_tls(&tls).map_err(SyncError::Config)?;
            }
            Ok(Trigger::Changes { feed, interval })
        }
        crate::config::SourceConfig::Ldap { .. } => match settings.poll_seconds {
            Some(poll_seconds) => Ok(Trigger::Poll {
                every: Duration::from_secs(poll_seconds),
                interval,
            }),
            None => Ok(Trigger::Interval(interval)),
        },
        _ => Ok(Trigger::Interval(interval)),
    }
}

/// One process's hold on a job in the state database, by which a `watch` and an `apply` of
/// the same job never run at once.
#[derive(Debug, Clone)]
pub struct JobLease {
    pub job: String,
    /// This process, as the lease's holder ([`owner_name`]).
    pub owner: String,
    /// How long the hold lasts without renewal.
    pub length: Duration,
}

impl JobLease {
    /// Takes the lease (or renews it); says whether this process holds it now.
    pub async fn take(&self, store: &dyn Store, clock: &dyn Clock) -> SyncResult<bool> {
        let now = clock.now();
        state::take_lease(store, &self.job, &self.owner, now, plus(now, self.length)).await
    }

    /// Runs `work` while renewing the lease every third of its length. A renewal that finds
    /// the lease lost is logged; `work` goes on (a run is never cut in the middle).
    pub async fn holding<T>(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        work: impl Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                () = tokio::time::sleep(self.length / 3) => {}
            }
            match self.take(store, clock).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(job = %self.job, "another process took the job's lease")
                }
                Err(error) => {
                    tracing::warn!(job = %self.job, %error, "could not renew the job's lease")
                }
            }
        }
    }

    /// Gives the lease up, if this process holds it; a failure is logged (the lease then
    /// expires by itself).
    pub async fn release(&self, store: &dyn Store) {
        if let Err(error) = state::release_lease(store, &self.job, &self.owner).await {
            tracing::warn!(job = %self.job, %error, "could not give the job's lease up");
        }
    }
}

/// `scimitar sync apply`: one run, holding the job's lease while it lasts and giving it up
/// after, so that it never runs beside a `watch` or another `apply` of the job. Refused with
/// [`SyncError::Busy`] while another process holds the lease.
pub async fn apply_once(
    job: &FanOut,
    store: &dyn Store,
    clock: &dyn Clock,
    lease: &JobLease,
) -> SyncResult<FanOutReport> {
    if !lease.take(store, clock).await? {
        let holder = state::lease_holder(store, &job.name, clock.now())
            .await?
            .unwrap_or_else(|| "a process whose lease just ended".to_string());
        return Err(SyncError::Busy(format!(
            "job {} is being run by another process ({holder}): a `scimitar sync watch` applies \
             its changes already; stop it first, or try again when the other run ends",
            job.name
        )));
    }
    let outcome = lease
        .holding(store, clock, run_all(job, store, clock, Mode::Apply))
        .await;
    lease.release(store).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_are_spaced_from_start_to_start_within_their_bounds() {
        let second = Duration::from_secs(1);
        let ms = Duration::from_millis;
        // A poll that took 400 ms waits the rest of its second.
        assert_eq!(next_poll_in(second, ms(400), None), ms(600));
        // One that overran its period leaves the directory a moment only.
        assert_eq!(next_poll_in(second, ms(2500), None), MIN_POLL_GAP);
        // A quarantined target due sooner cuts the wait short, not below the gap.
        assert_eq!(next_poll_in(second, ms(100), Some(ms(300))), ms(300));
        assert_eq!(next_poll_in(second, ms(100), Some(ms(0))), MIN_POLL_GAP);
    }
}
