//! One run of a job, end to end: read the state, the source and the target, plan, and (for
//! `apply`) carry the plan out and record the run with the job's next state ([`finish`], the
//! tail that full and incremental runs share). A job with several targets ([`FanOut`]) reads
//! its source once and runs each target's part from it, side by side; one target failing is
//! reported in its section and never stops the others.

use crate::apply::{apply, Applied, Failure};
use crate::config::{state_key, Policy, Profile};
use crate::model::{Capabilities, Identity, JobState, Kind, Snapshot};
use crate::plan::{plan, Plan};
use crate::scim::{ScimEndpoint, Secret};
use crate::{state, SyncError, SyncResult};
use futures_util::future::join_all;
use scimitar_domain::Clock;
use scimitar_store::{Store, SyncRunRecord};
use serde::Serialize;
use std::borrow::Cow;
use std::path::PathBuf;

/// Where a job reads identities.
#[derive(Debug, Clone)]
pub enum Source {
    Scim(ScimEndpoint),
    /// A `.csv` or `.jsonl` export.
    File(PathBuf),
    /// An LDAP directory, and the bind password (read from a file or the environment);
    /// `memory` is what its incremental reads keep between runs (shared by the job's clones).
    Ldap {
        directory: scimitar_ldap::DirectoryConfig,
        password: Option<Secret>,
        memory: crate::ldap_incremental::DirectoryMemory,
    },
}

/// A job ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub source: Source,
    pub target: ScimEndpoint,
    pub profile: Profile,
    /// Overrides whether the target nests groups.
    pub nested_groups: Option<bool>,
    pub policy: Policy,
    pub oversight: Oversight,
}

impl Job {
    /// How audit events name this job's target: its base URL, and `name` among the job's
    /// `[[targets]]` (none for a lone `[target]`).
    pub fn target_ref<'a>(&'a self, name: Option<&'a str>) -> crate::trail::TargetRef<'a> {
        crate::trail::TargetRef {
            name,
            url: self.target.base(),
        }
    }
}

/// How a job answers for what it does: whose audit trail its actions join
/// ([`crate::trail`]), and when failing runs quarantine one of its targets
/// ([`crate::quarantine`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Oversight {
    /// The account whose trail the job's events join (`account` in the job's file); `None`:
    /// the state database's only account.
    pub account: Option<String>,
    pub quarantine: crate::quarantine::QuarantineSettings,
    /// `apply --plan F`: each target applies only a plan that makes exactly these changes,
    /// else the run stops before writing ([`crate::reviewed`]).
    pub reviewed: Option<crate::reviewed::ReviewedPlan>,
}

/// One of a job's targets.
#[derive(Debug, Clone)]
pub struct Target {
    /// `None` for the lone `[target]` of a job, whose state is the job's own.
    pub name: Option<String>,
    pub endpoint: ScimEndpoint,
    pub profile: Profile,
    /// Overrides whether the target nests groups.
    pub nested_groups: Option<bool>,
}

/// A job as its file gives it: one source, read once a run and planned against each of its
/// targets (one for a `[target]` job), each with a state of its own.
#[derive(Debug, Clone)]
pub struct FanOut {
    pub name: String,
    pub source: Source,
    pub targets: Vec<Target>,
    pub policy: Policy,
    /// The job's account and quarantine settings; each target is quarantined on its own.
    pub oversight: Oversight,
}

impl FanOut {
    /// The one-target job that `target`'s part of a run is.
    pub fn job_for(&self, target: &Target) -> Job {
        Job {
            name: self.name.clone(),
            source: self.source.clone(),
            target: target.endpoint.clone(),
            profile: target.profile,
            nested_groups: target.nested_groups,
            policy: self.policy.clone(),
            oversight: self.oversight.clone(),
        }
    }

    /// The job with only the target named `name` (`--target`).
    pub fn only(mut self, name: &str) -> SyncResult<FanOut> {
        let names: Vec<&str> = self
            .targets
            .iter()
            .filter_map(|target| target.name.as_deref())
            .collect();
        if !names.contains(&name) {
            return Err(SyncError::Config(if names.is_empty() {
                format!(
                    "job {} has one unnamed [target]; --target picks one of [[targets]]",
                    self.name
                )
            } else {
                format!(
                    "job {} has no target named {name} (it has {})",
                    self.name,
                    names.join(", ")
                )
            }));
        }
        self.targets
            .retain(|target| target.name.as_deref() == Some(name));
        Ok(self)
    }
}

impl From<Job> for FanOut {
    /// A job of one unnamed target, its state under the job's name.
    fn from(job: Job) -> FanOut {
        FanOut {
            name: job.name,
            source: job.source,
            targets: vec![Target {
                name: None,
                endpoint: job.target,
                profile: job.profile,
                nested_groups: job.nested_groups,
            }],
            policy: job.policy,
            oversight: job.oversight,
        }
    }
}

/// `plan` computes and shows; `apply` also acts and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    Plan,
    Apply,
}

/// What a run did, as `--json` prints it: the whole plan. What the run's record keeps of it
/// is bounded ([`crate::stored::StoredReport`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub job: String,
    /// The target's name, for one of a job's `[[targets]]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub mode: Mode,
    pub capabilities: Capabilities,
    pub plan: Plan,
    /// Set when the deletion guard stopped the run.
    pub stopped: Option<String>,
    /// Write requests made to the target (0 for `plan`).
    pub writes: usize,
    pub adopted_on_conflict: usize,
    pub failures: Vec<Failure>,
}

impl Report {
    /// The exit status: 0 when the target matches the source (after `apply`: every item
    /// applied; for `plan`: nothing to do), 2 when `plan` found changes to make, 1 when
    /// anything failed or the guard stopped the run.
    pub fn exit_code(&self) -> u8 {
        if self.stopped.is_some() || !self.failures.is_empty() {
            return 1;
        }
        if !self.plan.ambiguities.is_empty() {
            return 1;
        }
        match self.mode {
            Mode::Plan if !self.plan.writes_nothing() => 2,
            _ => 0,
        }
    }

    fn outcome(&self) -> &'static str {
        if self.stopped.is_some() {
            "stopped"
        } else if self.failures.is_empty() {
            "applied"
        } else {
            "failed"
        }
    }
}

/// One target's section of a run of a [`FanOut`].
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum TargetOutcome {
    /// The target was planned (and for `apply`, applied and recorded).
    Ran(Box<Report>),
    /// The target could not be read, written or recorded; the others went on.
    #[serde(rename_all = "camelCase")]
    Failed {
        job: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        error: String,
    },
}

impl TargetOutcome {
    /// The section of `job`'s report for `target`'s part of a run, as it ended.
    pub(crate) fn of(job: &str, target: Option<&str>, outcome: SyncResult<Report>) -> Self {
        match outcome {
            Ok(report) => TargetOutcome::Ran(Box::new(report)),
            Err(error) => TargetOutcome::Failed {
                job: job.to_string(),
                target: target.map(str::to_string),
                error: error.to_string(),
            },
        }
    }

    /// As [`Report::exit_code`]; 1 for a target that could not be run.
    pub fn exit_code(&self) -> u8 {
        match self {
            TargetOutcome::Ran(report) => report.exit_code(),
            TargetOutcome::Failed { .. } => 1,
        }
    }
}

/// What a run of every target of a job did: one section per target, as `--json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOutReport {
    pub job: String,
    pub mode: Mode,
    pub targets: Vec<TargetOutcome>,
}

impl FanOutReport {
    /// The worst of the targets' exit statuses: 1 (anything failed or stopped) over 2
    /// (`plan` found changes) over 0.
    pub fn exit_code(&self) -> u8 {
        let codes = self.targets.iter().map(TargetOutcome::exit_code);
        codes.fold(0, |worst, code| match (worst, code) {
            (1, _) | (_, 1) => 1,
            (2, _) | (_, 2) => 2,
            _ => 0,
        })
    }
}

/// Every object of `kinds` at `endpoint`, the kinds read at once (each paged concurrently,
/// [`ScimEndpoint::read_all`]), and the latest `meta.lastModified` among them.
async fn read_scim(
    endpoint: &ScimEndpoint,
    kinds: &[Kind],
    what: &str,
) -> SyncResult<(Snapshot, Option<String>)> {
    let reads = join_all(kinds.iter().map(|kind| endpoint.read_all(*kind))).await;
    let mut identities: Vec<Identity> = Vec::new();
    let mut latest: Option<String> = None;
    for (kind, read) in kinds.iter().zip(reads) {
        // A service without `/ServicePrincipals` (most that are not Databricks-shaped) has
        // none to give.
        if *kind == Kind::ServicePrincipal
            && matches!(&read, Err(failure) if failure.status == Some(404))
        {
            continue;
        }
        let (mut found, modified) = read.map_err(|failure| {
            let message = format!("reading {}: {failure}", kind.endpoint());
            if what == "source" {
                SyncError::Source(message)
            } else {
                SyncError::Target(message)
            }
        })?;
        identities.append(&mut found);
        if modified > latest {
            latest = modified;
        }
    }
    Ok((Snapshot::of(identities), latest))
}

/// Runs `job` once: its one target, its state under the job's name.
pub async fn run(
    job: &Job,
    store: &dyn Store,
    clock: &dyn Clock,
    mode: Mode,
) -> SyncResult<Report> {
    let started = clock.now();
    let capabilities = capabilities_of(&job.target, job.nested_groups).await?;
    let (source, target) = futures_util::future::join(
        read_source(&job.source, &kinds_for(capabilities.service_principals)),
        read_target(job, None, capabilities, store),
    )
    .await;
    run_target(job, None, &source?, target?, started, store, clock, mode).await
}

/// Runs every target of `job` once, from one read of its source. A target that cannot be
/// read or written is reported in its section and the others go on; only a source that
/// cannot be read fails the whole run (no target has anything to be planned from).
pub async fn run_all(
    job: &FanOut,
    store: &dyn Store,
    clock: &dyn Clock,
    mode: Mode,
) -> SyncResult<FanOutReport> {
    let started = clock.now();
    let capabilities = join_all(
        job.targets
            .iter()
            .map(|target| capabilities_of(&target.endpoint, target.nested_groups)),
    )
    .await;
    // Service principals are read from the source when any target takes them; a target
    // without them is planned without them.
    let service_principals = capabilities
        .iter()
        .any(|found| matches!(found, Ok(found) if found.service_principals));
    // The targets are read while the source is: the reads wait on different services (at
    // 100,000 objects, seconds each).
    let target_reads = join_all(job.targets.iter().zip(capabilities).map(
        |(target, found)| async move {
            let capabilities = found?;
            read_target(
                &job.job_for(target),
                target.name.as_deref(),
                capabilities,
                store,
            )
            .await
        },
    ));
    let (source, target_reads) = futures_util::future::join(
        read_source(&job.source, &kinds_for(service_principals)),
        target_reads,
    )
    .await;
    let source = source?;
    let runs = job.targets.iter().zip(target_reads).map(|(target, read)| {
        let source = &source;
        async move {
            let outcome = match read {
                Ok(read) => {
                    let one = job.job_for(target);
                    let name = target.name.as_deref();
                    run_target(&one, name, source, read, started, store, clock, mode).await
                }
                Err(error) => Err(error),
            };
            TargetOutcome::of(&job.name, target.name.as_deref(), outcome)
        }
    });
    Ok(FanOutReport {
        job: job.name.clone(),
        mode,
        targets: join_all(runs).await,
    })
}

/// What a target can do, from its `/ServiceProviderConfig` and profile.
pub(crate) async fn capabilities_of(
    target: &ScimEndpoint,
    nested_groups: Option<bool>,
) -> SyncResult<Capabilities> {
    target
        .capabilities(nested_groups)
        .await
        .map_err(|failure| SyncError::Target(format!("reading /ServiceProviderConfig: {failure}")))
}

/// The kinds a run reads: service principals only for targets that have them.
pub(crate) fn kinds_for(service_principals: bool) -> Vec<Kind> {
    let mut kinds = vec![Kind::User, Kind::Group];
    if service_principals {
        kinds.push(Kind::ServicePrincipal);
    }
    kinds
}

/// The source as one run read it, shared by every target of the job.
struct SourceRead {
    snapshot: Snapshot,
    /// The latest `meta.lastModified` the source showed.
    watermark: Option<String>,
}

async fn read_source(source: &Source, kinds: &[Kind]) -> SyncResult<SourceRead> {
    crate::progress::note(crate::progress::Step::Reading("source"));
    let (snapshot, watermark) = match source {
        Source::Scim(endpoint) => read_scim(endpoint, kinds, "source").await?,
        Source::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| SyncError::Source(format!("{}: {error}", path.display())))?;
            let csv = path.extension().is_some_and(|extension| extension == "csv");
            let snapshot = crate::file::parse(&text, csv)
                .map_err(|error| SyncError::Source(format!("{}: {error}", path.display())))?;
            (snapshot, None)
        }
        Source::Ldap {
            directory,
            password,
            ..
        } => crate::ldap::read(directory, password.as_ref().map(Secret::expose)).await?,
    };
    crate::progress::note(crate::progress::Step::Read {
        side: "source",
        objects: snapshot.identities.len(),
    });
    Ok(SourceRead {
        snapshot,
        watermark,
    })
}

/// One target as a run found it: what it can do, the job's state for it, and its objects.
struct TargetRead {
    capabilities: Capabilities,
    before: JobState,
    snapshot: Snapshot,
}

/// Reads one target's state (under [`state_key`] of the job and `target`) and its objects.
async fn read_target(
    job: &Job,
    target: Option<&str>,
    capabilities: Capabilities,
    store: &dyn Store,
) -> SyncResult<TargetRead> {
    let before = state::load(store, &state_key(&job.name, target)).await?;
    let kinds = kinds_for(capabilities.service_principals);
    let side = side_name(target);
    crate::progress::note(crate::progress::Step::Reading(&side));
    let (snapshot, _) = read_scim(&job.target, &kinds, "target").await?;
    crate::progress::note(crate::progress::Step::Read {
        side: &side,
        objects: snapshot.identities.len(),
    });
    Ok(TargetRead {
        capabilities,
        before,
        snapshot,
    })
}

fn side_name(target: Option<&str>) -> String {
    target.map_or_else(|| "target".to_string(), |name| format!("target {name}"))
}

/// One target's part of a run once it is read: the plan from the shared source read, and for
/// `apply` the changes and the record.
#[allow(clippy::too_many_arguments)]
async fn run_target(
    job: &Job,
    target: Option<&str>,
    source: &SourceRead,
    read: TargetRead,
    started: scimitar_domain::Timestamp,
    store: &dyn Store,
    clock: &dyn Clock,
    mode: Mode,
) -> SyncResult<Report> {
    let TargetRead {
        capabilities,
        before,
        snapshot: target_snapshot,
    } = read;
    let source_snapshot = for_target(&source.snapshot, &capabilities);
    crate::progress::note(crate::progress::Step::Planning(&side_name(target)));
    let planned = plan(
        &source_snapshot,
        &target_snapshot,
        &before,
        &job.policy,
        &capabilities,
        started.as_micros(),
    );
    finish(
        job,
        target,
        mode,
        capabilities,
        &before,
        planned,
        source.watermark.clone(),
        started,
        store,
        clock,
    )
    .await
}

/// The source read as `capabilities`' target is planned from: without service principals for
/// a target that has none (they were read for another target of the job).
pub(crate) fn for_target<'a>(
    source: &'a Snapshot,
    capabilities: &Capabilities,
) -> Cow<'a, Snapshot> {
    if capabilities.service_principals {
        return Cow::Borrowed(source);
    }
    Cow::Owned(Snapshot::of(
        source
            .identities
            .iter()
            .filter(|identity| identity.kind != Kind::ServicePrincipal)
            .cloned()
            .collect(),
    ))
}

/// The rest of one target's part of a run once it is planned, full or partial: for `apply`,
/// carry the plan out (unless the guard stopped it) and record the run with the target's next
/// state under [`state_key`] of the job and `target`. The watermark moves on only when every
/// item applied, so that what failed is read again by the next incremental run.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    job: &Job,
    target: Option<&str>,
    mode: Mode,
    capabilities: Capabilities,
    before: &JobState,
    planned: Plan,
    watermark: Option<String>,
    started: scimitar_domain::Timestamp,
    store: &dyn Store,
    clock: &dyn Clock,
) -> SyncResult<Report> {
    let mut report = Report {
        job: job.name.clone(),
        target: target.map(str::to_string),
        mode,
        capabilities,
        stopped: planned.guard.as_ref().map(ToString::to_string),
        plan: planned,
        writes: 0,
        adopted_on_conflict: 0,
        failures: Vec::new(),
    };
    if mode == Mode::Plan {
        return Ok(report);
    }
    if report.stopped.is_none() {
        if let Some(reviewed) = &job.oversight.reviewed {
            report.stopped = reviewed
                .mismatch(&report.plan)
                .map(|mismatch| mismatch.to_string());
        }
    }
    // Before acting: a job whose events have no account to go to is a mistake to stop at
    // now, not after the target has been written.
    let account = crate::trail::account_of(store, job.oversight.account.as_deref()).await?;
    let (applied, mut after) = if report.stopped.is_some() {
        (Applied::default(), before.clone())
    } else {
        apply(
            &report.plan,
            &job.target,
            &capabilities,
            before,
            started.as_micros(),
        )
        .await
    };
    report.writes = applied.writes;
    report.adopted_on_conflict = applied.adopted_on_conflict;
    report.failures = applied.failures;
    let actions = applied.actions;
    let complete = report.stopped.is_none() && report.failures.is_empty();
    if complete && watermark.is_some() {
        after.watermark = watermark;
    }
    crate::drift::remember(&report.plan, complete, &mut after);
    let record = SyncRunRecord {
        seq: 0,
        started,
        ended: clock.now(),
        outcome: report.outcome().to_string(),
        // Bounded, whatever the size of the plan; the whole report is what the run returns.
        report: crate::stored::StoredReport::of(&report)
            .to_json()
            .map_err(|error| SyncError::Config(error.to_string()))?,
    };
    let events = crate::trail::of_run(&job.name, job.target_ref(target), &report, &actions);
    let events = crate::trail::for_run(store, job, target, &record, events).await?;
    let audit = crate::trail::audit(clock, &job.name, account.clone(), events);
    let trail = state::RunTrail {
        account,
        audit,
        quarantine: &job.oversight.quarantine,
    };
    state::record(
        store,
        &state_key(&job.name, target),
        before,
        &after,
        record,
        trail,
    )
    .await?;
    Ok(report)
}

/// The state a job would start its next run from (for tests and status).
pub async fn job_state(store: &dyn Store, job: &str) -> SyncResult<JobState> {
    state::load(store, job).await
}
