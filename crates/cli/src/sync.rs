//! `scimitar sync plan|apply|watch|status|resume`: reconcile a source of identities into a SCIM
//! target (`scimitar-sync`). A job comes from a TOML file (`--config`), or, for one
//! SCIM-to-SCIM sync, from flags (`--from URL --to URL`). Tokens come from files or the
//! environment, never from the command line. The exit status says whether the target matches
//! the source: 0 yes, 2 (`plan`) changes to make, 1 anything failed or the deletion guard
//! stopped the run. `watch` runs until SIGINT or SIGTERM and exits 0.

use clap::{Args, Subcommand};
use scimitar_domain::{Clock, SystemClock};
use scimitar_sync::config::{state_key, JobConfig, Policy, Profile, SourceConfig, WatchSettings};
use scimitar_sync::ldap_incremental::DirectoryMemory;
use scimitar_sync::reviewed::ReviewedPlan;
use scimitar_sync::run::TargetOutcome;
use scimitar_sync::run::{
    run_all, FanOut, FanOutReport, Job, Mode, Oversight, Report, Source, Target,
};
use scimitar_sync::scim::{RetryPolicy, ScimEndpoint, Secret, TlsFiles};
use scimitar_sync::trail::TargetRef;
use scimitar_sync::watch::{trigger_of, Trigger, Turn, Watch};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Show every change a run would make (a readable diff, or JSON with --json), writing
    /// nothing anywhere.
    Plan(SyncArgs),
    /// Make the changes, item by item (one failing does not stop the others), and record the
    /// run and the job's state in the database.
    Apply(SyncArgs),
    /// Apply again and again: on every change of a Scimitar source that follows its change
    /// feed (`follow_changes`), else every `[watch] interval_seconds`; until SIGINT or
    /// SIGTERM, which end it between runs. One process at a time runs a job.
    Watch(SyncArgs),
    /// A job's latest runs, newest first: when, the outcome (applied, failed, stopped,
    /// error, resumed), writes and failures; whether it is quarantined, and who runs it now.
    Status(StatusArgs),
    /// Lift a job's quarantine: `watch` runs it again at its next trigger.
    Resume(JobArgs),
}

/// Which job, from its configuration file or by name and database.
#[derive(Args)]
pub struct JobArgs {
    /// The job's TOML configuration: its name, state database, account and quarantine.
    #[arg(long, env = "SCIMITAR_SYNC_CONFIG", conflicts_with_all = ["job", "database"])]
    config: Option<PathBuf>,
    /// The job's name (a job from flags is named after its URLs, `FROM -> TO`, as `plan` and
    /// `apply` print it).
    #[arg(long, required_unless_present = "config")]
    job: Option<String>,
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// One of the job's `[[targets]]`, by name: each keeps its own run history and
    /// quarantine. Without it, every target of the job's file.
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    which: JobArgs,
    /// How many runs.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Print the runs, with their reports, the quarantine and the lease, as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SyncArgs {
    /// The job's TOML configuration (see README, "Sync"). Without it, --from and --to.
    #[arg(long, env = "SCIMITAR_SYNC_CONFIG", conflicts_with_all = ["from", "to"])]
    config: Option<PathBuf>,
    /// The source SCIM base URL (such as https://idp.example.com/scim/v2).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// A file holding the source's bearer token (else SCIMITAR_SYNC_FROM_TOKEN).
    #[arg(long)]
    from_token_file: Option<PathBuf>,
    /// The target SCIM base URL.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// A file holding the target's bearer token (else SCIMITAR_SYNC_TO_TOKEN).
    #[arg(long)]
    to_token_file: Option<PathBuf>,
    /// The target's profile: generic (RFC 7644), databricks (a workspace) or
    /// databricks-account (default: databricks-account for an account SCIM URL, else generic).
    #[arg(long)]
    to_profile: Option<String>,
    /// Flatten nested groups into transitive membership (for a target that does not nest).
    #[arg(long)]
    flatten: bool,
    /// Only these source groups (by displayName), their nested groups and their members.
    #[arg(long = "group", value_name = "NAME")]
    groups: Vec<String>,
    /// Where the job's state lives (with --from/--to; a config file names its own).
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// Let this run deactivate or delete past the deletion guard.
    #[arg(long)]
    allow_deletions: bool,
    /// Only this one of the job's `[[targets]]` (by name); without it, every target.
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
    /// Print the run's report as JSON.
    #[arg(long)]
    json: bool,
    /// `plan`: also save the plan to this file, for review and for `apply --plan` (one
    /// target's plan: the job's only target, or the one --target names).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// `apply`: apply a target's plan only if it makes exactly the changes of this saved plan
    /// (`plan --out`), else write nothing to it and exit 1. A plan saved against production
    /// can be applied to a sandbox that mirrors it first, then to production.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
}

/// Runs the command; the exit status is the report's.
pub async fn run_command(command: SyncCommand) -> ExitCode {
    let outcome = match command {
        SyncCommand::Plan(args) => run_sync(Mode::Plan, &args).await,
        SyncCommand::Apply(args) => run_sync(Mode::Apply, &args).await,
        SyncCommand::Watch(args) => watch(&args).await.map(|()| 0),
        SyncCommand::Status(args) => status(&args).await.map(|()| 0),
        SyncCommand::Resume(args) => resume(&args).await.map(|()| 0),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_sync(mode: Mode, args: &SyncArgs) -> Result<u8, String> {
    let JobOf {
        mut job,
        database,
        settings,
        ..
    } = job_of(args)?;
    match (mode, &args.out, &args.plan) {
        (Mode::Apply, Some(_), _) => return Err("--out is for `plan`".to_string()),
        (Mode::Plan, _, Some(_)) => return Err("--plan is for `apply`".to_string()),
        (Mode::Plan, Some(_), None) if job.targets.len() > 1 => {
            return Err(format!(
                "--out saves one target's plan: name one of job {}'s targets with --target",
                job.name
            ))
        }
        (Mode::Apply, None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|error| format!("{}: {error}", file.display()))?;
            let reviewed = ReviewedPlan::parse(&text)
                .map_err(|error| format!("{}: {error}", file.display()))?;
            job.oversight.reviewed = Some(reviewed);
        }
        _ => {}
    }
    let store = scimitar_store::open(&database)
        .await
        .map_err(|error| format!("the state database: {error}"))?;
    // An `apply` holds the job's lease while it runs, so that it never races a `watch` or
    // another `apply` of the job.
    let run = async {
        match mode {
            Mode::Apply => {
                let lease = scimitar_sync::watch::JobLease {
                    job: job.name.clone(),
                    owner: scimitar_sync::watch::owner_name(),
                    length: Duration::from_secs(settings.lease_seconds),
                };
                scimitar_sync::watch::apply_once(&job, &*store, &SystemClock, &lease).await
            }
            Mode::Plan => run_all(&job, &*store, &SystemClock, mode).await,
        }
    };
    let mut report = with_progress(run)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(file) = &args.out {
        save_plan(file, &report)?;
    }
    // A job of one unnamed `[target]` reports as it always has: one report, not sections.
    if let [Target { name: None, .. }] = job.targets.as_slice() {
        return match report.targets.pop() {
            Some(TargetOutcome::Ran(report)) => {
                print_report(&report, args.json)?;
                Ok(report.exit_code())
            }
            Some(TargetOutcome::Failed { error, .. }) => Err(error),
            None => Err("the job ran no target".to_string()),
        };
    }
    print_sections(&report, args.json)?;
    Ok(report.exit_code())
}

/// `plan --out`: the one target's plan, in the source's terms, for `apply --plan`.
fn save_plan(file: &Path, report: &FanOutReport) -> Result<(), String> {
    let planned = match report.targets.as_slice() {
        [TargetOutcome::Ran(planned)] => planned,
        [TargetOutcome::Failed { error, .. }] => {
            return Err(format!("no plan to save to {}: {error}", file.display()))
        }
        _ => return Err("--out saves one target's plan".to_string()),
    };
    let reviewed = ReviewedPlan::of(
        &planned.job,
        planned.target.as_deref(),
        &planned.plan,
        SystemClock.now().to_rfc3339(),
    );
    let mut text = serde_json::to_string_pretty(&reviewed).map_err(|error| error.to_string())?;
    text.push('\n');
    std::fs::write(file, text).map_err(|error| format!("{}: {error}", file.display()))
}

/// Runs `run` showing its progress on stderr when stderr is a terminal (a person is watching),
/// the line erased once it ends; otherwise exactly as it is, so that scripts, pipes and `--json`
/// see nothing new.
async fn with_progress<F: std::future::Future>(run: F) -> F::Output {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return run.await;
    }
    let output = scimitar_sync::progress::showing(scimitar_sync::progress::to_stderr(), run).await;
    eprint!("{}", scimitar_sync::progress::CLEAR);
    output
}

/// One target's report: the JSON, or the readable plan with what was written and what failed.
fn print_report(report: &Report, json: bool) -> Result<(), String> {
    if json {
        let text = serde_json::to_string_pretty(report).map_err(|error| error.to_string())?;
        println!("{text}");
        return Ok(());
    }
    match &report.target {
        Some(target) => println!("job: {} target: {target}", report.job),
        None => println!("job: {}", report.job),
    }
    print!("{}", scimitar_sync::render::plan_text(&report.plan));
    // The guard's stop is part of the plan's text; any other (`apply --plan`) is said here.
    if let (Some(why), None) = (&report.stopped, &report.plan.guard) {
        println!("STOPPED: {why}");
    }
    if report.mode == Mode::Apply && report.stopped.is_none() {
        println!("{} writes, {} failed", report.writes, report.failures.len());
    }
    for failure in &report.failures {
        println!("FAILED {}: {}", failure.item, failure.error);
    }
    Ok(())
}

/// A job of `[[targets]]`: one section per target, in the order the file gives them.
fn print_sections(report: &FanOutReport, json: bool) -> Result<(), String> {
    if json {
        let text = serde_json::to_string_pretty(report).map_err(|error| error.to_string())?;
        println!("{text}");
        return Ok(());
    }
    for (index, outcome) in report.targets.iter().enumerate() {
        if index > 0 {
            println!();
        }
        match outcome {
            TargetOutcome::Ran(target) => print_report(target, false)?,
            TargetOutcome::Failed { job, target, error } => {
                println!("job: {job} target: {}", target.as_deref().unwrap_or("-"));
                println!("ERROR {error}");
            }
        }
    }
    Ok(())
}

/// `watch`: the job's runs, one line each (or the report as one line of JSON with `--json`),
/// until a signal.
async fn watch(args: &SyncArgs) -> Result<(), String> {
    let JobOf {
        job,
        database,
        settings,
        trigger,
    } = job_of(args)?;
    let store = scimitar_store::open(&database)
        .await
        .map_err(|error| format!("the state database: {error}"))?;
    let watch = Watch {
        job,
        trigger,
        max_backoff: Duration::from_secs(settings.max_backoff_seconds),
        lease: Duration::from_secs(settings.lease_seconds),
        owner: scimitar_sync::watch::owner_name(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let json = args.json;
    // On a terminal each run's progress is drawn as `apply` draws it, and erased before the
    // run's line is printed; anywhere else (a pipe, a service's log, `--json`) nothing new.
    let terminal = !json && {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal()
    };
    let watching = watch.run(&*store, &SystemClock, stopped, |turn| {
        if terminal {
            eprint!("{}", scimitar_sync::progress::CLEAR);
        }
        show(turn, json)
    });
    if terminal {
        scimitar_sync::progress::showing(scimitar_sync::progress::to_stderr(), watching).await;
        eprint!("{}", scimitar_sync::progress::CLEAR);
    } else {
        watching.await;
    }
    Ok(())
}

fn show(turn: &Turn, json: bool) {
    match turn {
        Turn::Ran(report) if json => match serde_json::to_string(report) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("error: {error}"),
        },
        Turn::Ran(report) => {
            let plan = &report.plan;
            let outcome = match (&report.stopped, report.failures.len()) {
                (Some(why), _) => format!("stopped: {why}"),
                (None, 0) => "applied".to_string(),
                (None, failed) => format!("{failed} failed"),
            };
            let job = match &report.target {
                Some(target) => format!("{} target {target}", report.job),
                None => report.job.clone(),
            };
            println!(
                "job {job}: {} writes ({} creates, {} updates, {} membership changes), {outcome}",
                report.writes,
                plan.creates.len(),
                plan.updates.len(),
                plan.memberships.len(),
            );
            for failure in &report.failures {
                println!("FAILED {}: {}", failure.item, failure.error);
            }
        }
        Turn::Failed { error, retry_in } => {
            eprintln!(
                "run failed: {error}; trying again in {}s",
                retry_in.as_secs()
            )
        }
        Turn::StandingBy { holder } => eprintln!(
            "another process runs this job ({}); standing by",
            holder.as_deref().unwrap_or("unknown")
        ),
        Turn::Quarantined { target, quarantine } => eprintln!(
            "{}quarantined after {} runs failed in a row ({}); next run at {}, or after \
             `scimitar sync resume`",
            target
                .as_deref()
                .map(|target| format!("target {target}: "))
                .unwrap_or_default(),
            quarantine.failures,
            quarantine.last_error,
            quarantine.next_run.to_rfc3339()
        ),
    }
}

/// A job as `status` and `resume` name it: its name, state database, targets (each with its
/// name and URL, for the audit event) and oversight, from its file (no token is read) or from
/// flags (the defaults).
struct JobRef {
    name: String,
    database: String,
    /// `(name, url)` of each target `status` and `resume` look at: the job's, or the one
    /// `--target` names.
    targets: Vec<(Option<String>, String)>,
    oversight: Oversight,
}

fn job_ref(args: &JobArgs) -> Result<JobRef, String> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let config =
            JobConfig::parse(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        let mut targets: Vec<(Option<String>, String)> = config
            .all_targets()
            .into_iter()
            .map(|target| (target.name.clone(), target.url.clone()))
            .collect();
        if let Some(name) = &args.target {
            targets.retain(|(target, _)| target.as_ref() == Some(name));
            if targets.is_empty() {
                return Err(format!(
                    "{}: job {} has no target named {name}",
                    path.display(),
                    config.job
                ));
            }
        }
        return Ok(JobRef {
            name: config.job.clone(),
            database: config.state_database.clone(),
            targets,
            oversight: oversight_of(&config),
        });
    }
    let name = args
        .job
        .as_deref()
        .ok_or("give --config FILE, or --job NAME")?;
    let name = scimitar_sync::config::job_name_given(name)?;
    // A job from flags is named after its URLs; without its file, a named target's URL is
    // not known here.
    let url = match &args.target {
        Some(_) => "-".to_string(),
        None => scimitar_sync::config::target_url_of_flags_name(&name)
            .unwrap_or_else(|| "-".to_string()),
    };
    Ok(JobRef {
        targets: vec![(args.target.clone(), url)],
        name,
        database: args
            .database
            .clone()
            .unwrap_or_else(|| crate::config::DEFAULT_DATABASE.to_string()),
        oversight: Oversight::default(),
    })
}

fn oversight_of(config: &JobConfig) -> Oversight {
    Oversight {
        account: config.account.clone(),
        quarantine: config.watch.quarantine(),
        reviewed: None,
    }
}

/// The job and target as a line names them: `job j` or `job j target t`.
fn named(job: &str, target: Option<&str>) -> String {
    match target {
        Some(target) => format!("job {job} target {target}"),
        None => format!("job {job}"),
    }
}

/// Lifts the quarantine of the target `--target` names, or of the job's one target; for a job
/// of several targets without `--target`, of each of them that is quarantined.
async fn resume(args: &JobArgs) -> Result<(), String> {
    let job = job_ref(args)?;
    let store = scimitar_store::open(&job.database)
        .await
        .map_err(|error| format!("the state database: {error}"))?;
    let mut quarantined = job.targets.clone();
    if quarantined.len() > 1 {
        let mut held = Vec::new();
        for (name, url) in quarantined {
            let key = state_key(&job.name, name.as_deref());
            let status =
                scimitar_sync::quarantine::status(&*store, &key, &job.oversight.quarantine)
                    .await
                    .map_err(|error| error.to_string())?;
            if status.is_some() {
                held.push((name, url));
            }
        }
        if held.is_empty() {
            return Err(format!("no target of job {} is quarantined", job.name));
        }
        quarantined = held;
    }
    for (name, url) in &quarantined {
        let target = TargetRef {
            name: name.as_deref(),
            url,
        };
        scimitar_sync::quarantine::resume(&*store, &SystemClock, &job.name, target, &job.oversight)
            .await
            .map_err(|error| error.to_string())?;
        println!("{}: quarantine lifted", named(&job.name, name.as_deref()));
    }
    Ok(())
}

/// One target's status: its quarantine and latest runs, as JSON.
async fn target_status(
    store: &dyn scimitar_store::Store,
    job: &JobRef,
    target: Option<&str>,
    limit: usize,
) -> Result<serde_json::Value, String> {
    let key = state_key(&job.name, target);
    let runs = store
        .sync_runs(&key, limit)
        .await
        .map_err(|error| error.to_string())?;
    let quarantine = scimitar_sync::quarantine::status(store, &key, &job.oversight.quarantine)
        .await
        .map_err(|error| error.to_string())?;
    let report = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or_default();
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|run| {
            // The recorded report's lists are samples: what was done is counted in `counts`.
            let summary = run.summary();
            let mut shown = serde_json::json!({
                "seq": run.seq,
                "started": run.started.to_rfc3339(),
                "ended": run.ended.to_rfc3339(),
                "outcome": run.outcome,
                "counts": summary.counts(),
                "report": report(&run.report),
            });
            // As the status API says it: the run's error, the guard's reason, or its first
            // failure.
            if let Some(error) = summary.problem() {
                shown["error"] = error.into();
            }
            shown
        })
        .collect();
    let quarantine = quarantine.as_ref().map(|quarantine| {
        serde_json::json!({
            "failures": quarantine.failures,
            "lastError": quarantine.last_error,
            "lastRun": quarantine.last_run.to_rfc3339(),
            "nextRun": quarantine.next_run.to_rfc3339(),
        })
    });
    let mut status = serde_json::json!({
        "job": job.name,
        "status": if quarantine.is_some() { "quarantined" } else { "active" },
        "quarantine": quarantine,
        "runs": runs,
    });
    if let Some(target) = target {
        status["target"] = target.into();
    }
    Ok(status)
}

/// `status`: who runs the job now, and each target's quarantine and latest runs. With one
/// target (a `[target]` job, or `--target`) the JSON is that target's status with the lease
/// holder; with several, `{job, leaseHolder, targets: [...]}`.
async fn status(args: &StatusArgs) -> Result<(), String> {
    let job = job_ref(&args.which)?;
    let store = scimitar_store::open(&job.database)
        .await
        .map_err(|error| format!("the state database: {error}"))?;
    let holder = scimitar_sync::state::lease_holder(&*store, &job.name, SystemClock.now())
        .await
        .map_err(|error| error.to_string())?;
    let mut sections = Vec::new();
    for (target, _) in &job.targets {
        sections.push(target_status(&*store, &job, target.as_deref(), args.limit).await?);
    }
    if args.json {
        let status = match sections.as_mut_slice() {
            [one] => {
                one["leaseHolder"] = serde_json::json!(holder);
                one.take()
            }
            _ => serde_json::json!({
                "job": job.name,
                "leaseHolder": holder,
                "targets": sections,
            }),
        };
        let text = serde_json::to_string_pretty(&status).map_err(|error| error.to_string())?;
        println!("{text}");
        return Ok(());
    }
    if let Some(holder) = &holder {
        println!("job {}: run by {holder}", job.name);
    }
    for section in &sections {
        print_target_status(&job.name, section);
    }
    Ok(())
}

/// One target's status as `target_status` made it, as lines.
fn print_target_status(job: &str, section: &serde_json::Value) {
    let name = named(job, section["target"].as_str());
    match section["quarantine"].as_object() {
        Some(quarantine) => println!(
            "{name}: quarantined after {} runs failed in a row; next run at {}; last error: {}",
            quarantine["failures"],
            quarantine["nextRun"].as_str().unwrap_or("-"),
            quarantine["lastError"].as_str().unwrap_or("-"),
        ),
        None => println!("{name}: active"),
    }
    let runs = section["runs"].as_array().map_or(&[][..], Vec::as_slice);
    if runs.is_empty() {
        println!("no runs of {name}");
    }
    for run in runs {
        let counts = &run["counts"];
        println!(
            "#{} {} {} .. {}: {} writes, {} failed",
            run["seq"],
            run["outcome"].as_str().unwrap_or("-"),
            run["started"].as_str().unwrap_or("-"),
            run["ended"].as_str().unwrap_or("-"),
            counts["writes"].as_u64().unwrap_or(0),
            counts["failures"].as_u64().unwrap_or(0),
        );
        // Why the guard stopped it, why it could not complete (the source or target down), or
        // its first failure.
        if let Some(error) = run["error"].as_str() {
            println!("    {error}");
        }
    }
}

/// A token from a file, else from an environment variable; never from argv.
fn token(file: Option<&Path>, variable: &str, what: &str) -> Result<Secret, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|error| format!("the {what} token file {}: {error}", file.display()))?;
        return Ok(Secret::new(text));
    }
    std::env::var(variable)
        .map(Secret::new)
        .map_err(|_| format!("no {what} token: give a token file or set {variable}"))
}

/// The endpoint, trusting only the CAs of `ca_file` and presenting the client certificate
/// when the job names them.
fn trusting(endpoint: ScimEndpoint, tls: &TlsFiles) -> Result<ScimEndpoint, String> {
    if tls.is_default() {
        return Ok(endpoint);
    }
    endpoint.with_tls(tls)
}

/// The target's profile: the one named, else the one its URL implies.
fn profile(url: &str, name: Option<&str>) -> Result<Profile, String> {
    let written = name
        .map(|name| {
            Profile::parse(name).ok_or_else(|| {
                format!("unknown profile {name}: generic, databricks or databricks-account")
            })
        })
        .transpose()?;
    Ok(Profile::for_url(url, written))
}

/// A job ready to run, where its state lives, and how `watch` waits between its runs.
pub struct JobOf {
    pub job: FanOut,
    pub database: String,
    pub settings: WatchSettings,
    pub trigger: Trigger,
}

/// A job file read and checked, its tokens and passwords read from their files or the
/// environment: what `sync --config` runs, and each of the jobs `serve` runs. Errors name the
/// file.
pub fn job_from_file(path: &Path) -> Result<JobOf, String> {
    let in_file = |error: String| format!("{}: {error}", path.display());
    let text = std::fs::read_to_string(path).map_err(|error| in_file(error.to_string()))?;
    let config = JobConfig::parse(&text).map_err(in_file)?;
    let retry = RetryPolicy::default();
    let mut source_token = None;
    let source = match &config.source {
        SourceConfig::Scim {
            url,
            token_file,
            token_env,
            ..
        } => {
            let variable = token_env.as_deref().unwrap_or("SCIMITAR_SYNC_FROM_TOKEN");
            let secret = token(token_file.as_deref(), variable, "source").map_err(in_file)?;
            source_token = Some(secret.clone());
            // A Databricks account as a source lists groups without members, as a target does.
            let endpoint = ScimEndpoint::new(url, secret, Profile::for_url(url, None), retry);
            Source::Scim(trusting(endpoint, &config.source.tls()).map_err(in_file)?)
        }
        SourceConfig::File { path } => Source::File(path.clone()),
        SourceConfig::Ldap {
            directory,
            password_file,
            password_env,
        } => {
            let variable = password_env
                .as_deref()
                .unwrap_or("SCIMITAR_SYNC_LDAP_PASSWORD");
            // Anonymous reads need no password; a bind DN without one is a mistake.
            let password = match &directory.bind_dn {
                None => None,
                Some(_) => Some(
                    token(password_file.as_deref(), variable, "LDAP bind password")
                        .map_err(in_file)?,
                ),
            };
            Source::Ldap {
                directory: directory.as_ref().clone(),
                password,
                memory: DirectoryMemory::listing_every(Duration::from_secs(
                    config.watch.deletion_check_seconds,
                )),
            }
        }
    };
    let mut targets = Vec::new();
    for target in config.all_targets() {
        let variable = target
            .token_env
            .as_deref()
            .unwrap_or("SCIMITAR_SYNC_TO_TOKEN");
        let what = match &target.name {
            Some(name) => format!("target {name}"),
            None => "target".to_string(),
        };
        let secret = token(target.token_file.as_deref(), variable, &what).map_err(in_file)?;
        let limits = target.limits().map_err(in_file)?;
        targets.push(Target {
            name: target.name.clone(),
            endpoint: trusting(
                ScimEndpoint::new(&target.url, secret, target.profile, retry)
                    .with_limits(limits)
                    .with_bulk(target.bulk),
                &target.tls(),
            )
            .map_err(in_file)?,
            profile: target.profile,
            nested_groups: target.nested_groups,
        });
    }
    let job = FanOut {
        name: config.job.clone(),
        source,
        targets,
        policy: config.policy.clone(),
        oversight: oversight_of(&config),
    };
    let trigger = trigger_of(&config.source, &config.watch, source_token.as_ref())
        .map_err(|error| in_file(error.to_string()))?;
    Ok(JobOf {
        job,
        database: config.state_database.clone(),
        settings: config.watch.clone(),
        trigger,
    })
}

fn job_of(args: &SyncArgs) -> Result<JobOf, String> {
    let mut of = if let Some(path) = &args.config {
        job_from_file(path)?
    } else {
        let (Some(from), Some(to)) = (&args.from, &args.to) else {
            return Err("give --config FILE, or --from URL and --to URL".into());
        };
        let retry = RetryPolicy::default();
        let target_profile = profile(to, args.to_profile.as_deref())?;
        let source_token = token(
            args.from_token_file.as_deref(),
            "SCIMITAR_SYNC_FROM_TOKEN",
            "source",
        )?;
        let target_token = token(
            args.to_token_file.as_deref(),
            "SCIMITAR_SYNC_TO_TOKEN",
            "target",
        )?;
        let job = Job {
            name: scimitar_sync::config::job_name_from_flags(from, to),
            source: Source::Scim(ScimEndpoint::new(
                from,
                source_token,
                Profile::for_url(from, None),
                retry,
            )),
            target: ScimEndpoint::new(to, target_token, target_profile, retry),
            profile: target_profile,
            nested_groups: None,
            policy: Policy::default(),
            oversight: Oversight::default(),
        };
        let database = args
            .database
            .clone()
            .unwrap_or_else(|| crate::config::DEFAULT_DATABASE.to_string());
        // A job from flags watches on the default interval (a config file can follow a
        // Scimitar source's changes instead).
        let settings = WatchSettings::default();
        let trigger = Trigger::Interval(Duration::from_secs(settings.interval_seconds));
        JobOf {
            job: job.into(),
            database,
            settings,
            trigger,
        }
    };
    if let Some(name) = &args.target {
        of.job = of.job.only(name).map_err(|error| error.to_string())?;
    }
    if args.flatten {
        for target in &mut of.job.targets {
            target.nested_groups = Some(false);
        }
    }
    if !args.groups.is_empty() {
        of.job.policy.groups = args.groups.clone();
    }
    of.job.policy.allow_deletions |= args.allow_deletions;
    Ok(of)
}

/// The sync jobs `scimitar serve` runs beside the server (`sync_jobs`), read and checked at
/// start: a file that does not parse, or a token that cannot be read, stops the start with an
/// error naming the file.
pub fn load_served_jobs(paths: &[PathBuf]) -> Result<Vec<JobOf>, String> {
    let mut jobs: Vec<JobOf> = Vec::new();
    for path in paths {
        let loaded = job_from_file(path).map_err(|error| format!("sync job {error}"))?;
        // Two files of one name would share one lease and state: one would never run.
        if jobs.iter().any(|job| job.job.name == loaded.job.name) {
            return Err(format!(
                "sync job {}: another sync job is named {} too",
                path.display(),
                loaded.job.name
            ));
        }
        jobs.push(loaded);
    }
    Ok(jobs)
}

/// The background `watch` loops of the jobs `serve` runs, until [`ServedJobs::stop`].
pub struct ServedJobs {
    tasks: Vec<(String, tokio::task::JoinHandle<()>)>,
}

impl ServedJobs {
    /// Starts one `watch` loop per job, each ending (its lease given up) once `stop` says so.
    /// A job whose state lives in the server's own database (`database_url`) shares the
    /// server's store; any other state database is opened here, and one that cannot be opened
    /// stops the start.
    pub async fn start(
        jobs: Vec<JobOf>,
        database_url: &str,
        store: &scimitar_store::SharedStore,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<ServedJobs, String> {
        let mut tasks = Vec::new();
        for JobOf {
            job,
            database,
            settings,
            trigger,
        } in jobs
        {
            let state = if database == database_url {
                store.clone()
            } else {
                scimitar_store::open(&database).await.map_err(|error| {
                    format!("sync job {}: the state database: {error}", job.name)
                })?
            };
            let name = job.name.clone();
            let watch = Watch {
                job,
                trigger,
                max_backoff: Duration::from_secs(settings.max_backoff_seconds),
                lease: Duration::from_secs(settings.lease_seconds),
                owner: scimitar_sync::watch::owner_name(),
            };
            let stop = stop.clone();
            let job_name = name.clone();
            let task = tokio::spawn(async move {
                let log = |turn: &Turn| log_turn(&job_name, turn);
                watch.run(&*state, &SystemClock, stop, log).await;
            });
            tracing::info!(job = %name, "sync job started: it runs on the node that holds its lease");
            tasks.push((name, task));
        }
        Ok(ServedJobs { tasks })
    }

    /// Waits for the jobs to end after `stop` was sent: each finishes its run in progress and
    /// gives its lease up. A run still going at `deadline` is left (its lease then expires by
    /// itself, and another node takes the job over).
    pub async fn stopped(self, deadline: Duration) {
        let deadline = tokio::time::Instant::now() + deadline;
        for (job, task) in self.tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(%job, "sync job still running at the shutdown deadline; its lease expires by itself");
            }
        }
    }
}

/// What a job `serve` runs did, as log lines (`watch` prints the same to stdout).
fn log_turn(job: &str, turn: &Turn) {
    match turn {
        Turn::Ran(report) => {
            let outcome = match (&report.stopped, report.failures.len()) {
                (Some(why), _) => format!("stopped: {why}"),
                (None, 0) => "applied".to_string(),
                (None, failed) => format!("{failed} failed"),
            };
            tracing::info!(
                job = %report.job,
                target = report.target.as_deref().unwrap_or("-"),
                writes = report.writes,
                %outcome,
                "sync run"
            );
            for failure in &report.failures {
                tracing::warn!(job = %report.job, item = %failure.item, error = %failure.error, "sync item failed");
            }
        }
        Turn::Failed { error, retry_in } => {
            tracing::warn!(%job, %error, retry_in_seconds = retry_in.as_secs(), "sync run failed")
        }
        Turn::Quarantined { target, quarantine } => tracing::warn!(
            %job,
            target = target.as_deref().unwrap_or("-"),
            failures = quarantine.failures,
            last_error = %quarantine.last_error,
            next_run = %quarantine.next_run.to_rfc3339(),
            "sync target quarantined: it runs again at next_run, or after `scimitar sync resume`"
        ),
        // The lease's changes of hands are logged by the watch itself, once each.
        Turn::StandingBy { .. } => {}
    }
}
