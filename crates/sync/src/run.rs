//! One run of a job, end to end: read the state, the source and the target, plan, and (for
//! `apply`) carry the plan out and record the run with the job's next state.

use crate::apply::{apply, Applied, Failure};
use crate::config::{Policy, Profile};
use crate::model::{Capabilities, Identity, JobState, Kind, Snapshot};
use crate::plan::{plan, Plan};
use crate::scim::{ScimEndpoint, Secret};
use crate::{state, SyncError, SyncResult};
use scimitar_domain::Clock;
use scimitar_store::{Store, SyncRunRecord};
use serde::Serialize;
use std::path::PathBuf;

/// Where a job reads identities.
#[derive(Debug, Clone)]
pub enum Source {
    Scim(ScimEndpoint),
    /// A `.csv` or `.jsonl` export.
    File(PathBuf),
    /// An LDAP directory, and the bind password (read from a file or the environment).
    Ldap {
        directory: scimitar_ldap::DirectoryConfig,
        password: Option<Secret>,
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

/// How a job answers for what it does: whose audit trail its actions join
/// ([`crate::trail`]), and when failing runs quarantine it ([`crate::quarantine`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Oversight {
    /// The account whose trail the job's events join (`account` in the job's file); `None`:
    /// the state database's only account.
    pub account: Option<String>,
    pub quarantine: crate::quarantine::QuarantineSettings,
}

/// `plan` computes and shows; `apply` also acts and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    Plan,
    Apply,
}

/// What a run did, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub job: String,
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

async fn read_scim(
    endpoint: &ScimEndpoint,
    kinds: &[Kind],
    what: &str,
) -> SyncResult<(Snapshot, Option<String>)> {
    let mut identities: Vec<Identity> = Vec::new();
    let mut latest: Option<String> = None;
    for kind in kinds {
        let read = endpoint.read_all(*kind).await;
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

/// Runs `job` once.
pub async fn run(
    job: &Job,
    store: &dyn Store,
    clock: &dyn Clock,
    mode: Mode,
) -> SyncResult<Report> {
    let started = clock.now();
    let before = state::load(store, &job.name).await?;
    let capabilities = job
        .target
        .capabilities(job.nested_groups)
        .await
        .map_err(|failure| {
            SyncError::Target(format!("reading /ServiceProviderConfig: {failure}"))
        })?;
    let mut kinds = vec![Kind::User, Kind::Group];
    if capabilities.service_principals {
        kinds.push(Kind::ServicePrincipal);
    }
    let (source, watermark) = match &job.source {
        Source::Scim(endpoint) => read_scim(endpoint, &kinds, "source").await?,
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
        } => (
            crate::ldap::read(directory, password.as_ref().map(Secret::expose)).await?,
            None,
        ),
    };
    let (target, _) = read_scim(&job.target, &kinds, "target").await?;
    let planned = plan(
        &source,
        &target,
        &before,
        &job.policy,
        &capabilities,
        started.as_micros(),
    );
    let mut report = Report {
        job: job.name.clone(),
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
            &before,
            started.as_micros(),
        )
        .await
    };
    report.writes = applied.writes;
    report.adopted_on_conflict = applied.adopted_on_conflict;
    report.failures = applied.failures;
    let actions = applied.actions;
    if report.stopped.is_none() && watermark.is_some() {
        after.watermark = watermark;
    }
    let record = SyncRunRecord {
        seq: 0,
        started,
        ended: clock.now(),
        outcome: report.outcome().to_string(),
        report: serde_json::to_string(&report)
            .map_err(|error| SyncError::Config(error.to_string()))?,
    };
    let events = crate::trail::of_run(&job.name, job.target.base(), &report, &actions);
    let events = crate::trail::for_run(store, job, &record, events).await?;
    let audit = crate::trail::audit(clock, &job.name, account, events);
    state::record(store, &job.name, &before, &after, record, audit).await?;
    Ok(report)
}

/// The state a job would start its next run from (for tests and status).
pub async fn job_state(store: &dyn Store, job: &str) -> SyncResult<JobState> {
    state::load(store, job).await
}
