//! `scimitar audit`: what an operator or auditor holding the database does with the audit
//! trail. `checkpoint` prints an account's signed checkpoint (to keep); `verify` recomputes
//! every account's trail (or one's) from the stored events and checks it against its head and,
//! given one, a checkpoint kept earlier, reporting the first event that does not match;
//! `export` writes events as JSON Lines in Databricks' `system.access.audit` column names;
//! `query` prints the events matching filters (the events API's), `tail` the last ones and,
//! with `-f`, those that follow; `prune` removes events past a retention horizon, keeping the
//! trail verifiable. The work is `scimitar_store::audit`'s and `scimitar_app::audit`'s; this
//! wires files and output.

use clap::{Args, Subcommand};
use scimitar_audit::{Checkpoint, NoteSigner, NoteVerifier};
use scimitar_domain::ids::{IdGenerator, RandomIds};
use scimitar_domain::{AccountId, Clock, SystemClock};
use scimitar_store::audit::{checkpoint_origin, signing_seed_or_new, verify_trail};
use scimitar_store::Store;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print an account's current checkpoint, a C2SP signed note (size and root of its
    /// trail), for an auditor to keep and verify against later.
    Checkpoint {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        #[arg(long)]
        account: String,
    },
    /// Print the verifier key of an account's checkpoints.
    VerifierKey {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        #[arg(long)]
        account: String,
    },
    /// Verify audit trails: every leaf recomputed from the stored events, positions without
    /// gaps, the stored heads, and (with --checkpoint) that the trail extends a kept
    /// checkpoint. Exits non-zero at the first mismatch, naming it.
    Verify(VerifyArgs),
    /// Write audit events as JSON Lines, one Databricks `system.access.audit` row per line
    /// (snake_case columns), oldest first.
    Export {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        /// Only this account (default: every account, one after another).
        #[arg(long)]
        account: Option<String>,
        /// File to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print the events that match filters (those of GET /api/2.0/audit/events), oldest
    /// first, as a table or, with --json, as JSON Lines of `system.access.audit` rows.
    Query(QueryArgs),
    /// Print an account's last events and, with -f, every event appended after them.
    Tail(TailArgs),
    /// Prune events older than a horizon from every account's trail, keeping the Merkle
    /// frontier they leave, so `verify` still checks the events kept (and says how many were
    /// pruned). The prune is itself an event of the trail.
    Prune {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        /// Prune events older than this many days.
        #[arg(long, conflicts_with = "before", required_unless_present = "before")]
        retention_days: Option<u32>,
        /// Prune events before this time (RFC 3339).
        #[arg(long)]
        before: Option<String>,
    },
}

#[derive(Args)]
pub struct QueryArgs {
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// The account (default: the deployment's only one).
    #[arg(long)]
    account: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[arg(long)]
    start_time: Option<String>,
    /// Events before this time (RFC 3339).
    #[arg(long)]
    end_time: Option<String>,
    /// The acting principal's id.
    #[arg(long)]
    actor: Option<String>,
    /// The action name (add, updatePermissions, tokenLogin, ...).
    #[arg(long)]
    action_name: Option<String>,
    /// The service name (accounts, unityCatalog, workspace, ...).
    #[arg(long)]
    service_name: Option<String>,
    /// A target's id (principal, securable full name, workspace, token id).
    #[arg(long)]
    target: Option<String>,
    /// success (a change) or failure (a refused request).
    #[arg(long, value_parser = ["success", "failure"])]
    result: Option<String>,
    /// The response's status code.
    #[arg(long)]
    status_code: Option<u16>,
    /// At most this many events (1 to 1000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Continue after this position (printed after a full page).
    #[arg(long)]
    page_token: Option<u64>,
    /// JSON Lines of `system.access.audit` rows instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TailArgs {
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// The account (default: the deployment's only one).
    #[arg(long)]
    account: Option<String>,
    /// How many of the last events to print first.
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: u64,
    /// Keep printing events as they are appended, until interrupted.
    #[arg(short = 'f', long)]
    follow: bool,
    /// How often to look for new events while following.
    #[arg(long, default_value = "1s", value_parser = crate::config::parse_duration)]
    interval: std::time::Duration,
    /// JSON Lines of `system.access.audit` rows instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// Only this account (default: every account, or the kept checkpoint's).
    #[arg(long)]
    account: Option<String>,
    /// A checkpoint kept earlier (a signed note): the trail must still extend it.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The verifier key kept with it (default: the database's own key, which someone who can
    /// rewrite the database could also replace).
    #[arg(long)]
    verifier_key: Option<PathBuf>,
}

async fn open(database: Option<String>) -> Result<scimitar_store::SharedStore, String> {
    let database = database.unwrap_or_else(|| crate::config::DEFAULT_DATABASE.to_string());
    scimitar_store::open(&database)
        .await
        .map_err(|error| format!("cannot open the database: {error}"))
}

/// The signer of an account's checkpoints; the deployment's key is made on first use.
async fn signer(store: &dyn Store, account: &AccountId) -> Result<NoteSigner, String> {
    let fresh = || {
        let mut seed = [0u8; 32];
        for (byte, random) in seed.iter_mut().zip(RandomIds.random_bytes(32)) {
            *byte = random;
        }
        seed
    };
    let seed = signing_seed_or_new(store, account, fresh, SystemClock.now())
        .await
        .map_err(|error| error.to_string())?;
    NoteSigner::from_seed(&checkpoint_origin(account), &seed.0).map_err(|error| error.to_string())
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}

pub async fn run(command: AuditCommand) -> Result<(), String> {
    match command {
        AuditCommand::Checkpoint { database, account } => {
            let store = open(database).await?;
            let account = AccountId::new(account);
            let signer = signer(store.as_ref(), &account).await?;
            let head = store
                .audit_head(&account)
                .await
                .map_err(|error| error.to_string())?;
            let root = scimitar_store::audit::hash_from_hex(&head.root)
                .ok_or("the stored root is not a hash")?;
            let note = signer
                .sign_checkpoint(head.size, &root)
                .map_err(|error| error.to_string())?;
            print!("{note}");
            Ok(())
        }
        AuditCommand::VerifierKey { database, account } => {
            let store = open(database).await?;
            let signer = signer(store.as_ref(), &AccountId::new(account)).await?;
            println!("{}", signer.verifier().to_verifier_key());
            Ok(())
        }
        AuditCommand::Verify(args) => verify(args).await,
        AuditCommand::Export {
            database,
            account,
            output,
        } => export(database, account, output).await,
        AuditCommand::Query(args) => query(args).await,
        AuditCommand::Tail(args) => tail(args).await,
        AuditCommand::Prune {
            database,
            retention_days,
            before,
        } => prune(database, retention_days, before).await,
    }
}

/// The account named, or the deployment's only one.
async fn account_or_only(store: &dyn Store, account: Option<String>) -> Result<AccountId, String> {
    if let Some(account) = account {
        return Ok(AccountId::new(account));
    }
    let mut accounts = store.accounts().await.map_err(|error| error.to_string())?;
    match accounts.len() {
        1 => Ok(accounts.remove(0).id),
        0 => Err("the database holds no account".to_string()),
        _ => Err("the database holds several accounts: name one with --account".to_string()),
    }
}

fn time_flag(
    name: &str,
    text: Option<String>,
) -> Result<Option<scimitar_domain::Timestamp>, String> {
    text.map(|text| {
        scimitar_domain::Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| format!("--{name}: {text:?} is not an RFC 3339 time"))
    })
    .transpose()
}

/// Events as a table: position, time, service, action, actor, status, source and request id.
fn event_table(rows: &[serde_json::Value]) -> String {
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                text(&row["audit_seq"]),
                text(&row["event_time"]),
                text(&row["service_name"]),
                text(&row["action_name"]),
                text(&row["user_identity"]["subject_name"]),
                text(&row["response"]["status_code"]),
                text(&row["source_ip_address"]),
                text(&row["request_id"]),
            ]
        })
        .collect();
    crate::sql::table(
        &[
            "seq",
            "event_time",
            "service",
            "action",
            "actor",
            "status",
            "source",
            "request_id",
        ],
        &rows,
    )
}

fn print_rows(rows: &[serde_json::Value], json: bool) {
    if json {
        for row in rows {
            println!("{row}");
        }
    } else if !rows.is_empty() {
        print!("{}", event_table(rows));
    }
}

async fn query(args: QueryArgs) -> Result<(), String> {
    let store = open(args.database).await?;
    let account = account_or_only(store.as_ref(), args.account).await?;
    let query = scimitar_app::audit::EventQuery {
        start_time: time_flag("start-time", args.start_time)?,
        end_time: time_flag("end-time", args.end_time)?,
        actor: args.actor,
        action: args.action_name,
        service: args.service_name,
        target: args.target,
        result: args.result,
        status_code: args.status_code,
        after: args.page_token.unwrap_or(0),
        limit: args.limit,
    };
    let page = scimitar_app::audit::query_events(store.as_ref(), &account, &query)
        .await
        .map_err(|error| error.to_string())?;
    print_rows(&page.events, args.json);
    if let Some(next) = page.next_page_token {
        eprintln!("more events may follow: --page-token {next}");
    }
    Ok(())
}

async fn tail(args: TailArgs) -> Result<(), String> {
    let store = open(args.database).await?;
    let account = account_or_only(store.as_ref(), args.account).await?;
    let failed = |error: scimitar_domain::ScimError| error.to_string();
    let head = store.audit_head(&account).await.map_err(failed)?;
    let mut after = head.size.saturating_sub(args.lines);
    loop {
        let page = store
            .audit_events(&account, after, EXPORT_PAGE)
            .await
            .map_err(failed)?;
        let full = page.len() == EXPORT_PAGE;
        let mut rows = Vec::with_capacity(page.len());
        for stored in page {
            after = stored.seq;
            let event: scimitar_store::AuditEvent = serde_json::from_str(&stored.text)
                .map_err(|error| format!("event {}: {error}", stored.seq))?;
            rows.push(scimitar_store::audit::databricks_row(&event));
        }
        print_rows(&rows, args.json);
        if full {
            continue;
        }
        if !args.follow {
            return Ok(());
        }
        tokio::time::sleep(args.interval).await;
    }
}

async fn prune(
    database: Option<String>,
    retention_days: Option<u32>,
    before: Option<String>,
) -> Result<(), String> {
    let clock = SystemClock;
    let before = match (retention_days, before) {
        (Some(days), _) => scimitar_domain::Timestamp::from_micros(
            clock.now().as_micros() - i64::from(days) * 86_400_000_000,
        ),
        (None, Some(text)) => time_flag("before", Some(text))?.ok_or("--before is required")?,
        (None, None) => return Err("give --retention-days or --before".to_string()),
    };
    let store = open(database).await?;
    let services = scimitar_app::Services::new(
        store,
        std::sync::Arc::new(SystemClock),
        std::sync::Arc::new(RandomIds),
    );
    let pruned = services
        .prune_audit_trails(before)
        .await
        .map_err(|error| error.to_string())?;
    if pruned.is_empty() {
        println!("no audit event is older than {}", before.to_rfc3339());
    }
    for pruned in pruned {
        println!(
            "account {}: {} events pruned; events 1 to {} are now pruned",
            pruned.account, pruned.events, pruned.pruned_through
        );
    }
    Ok(())
}

async fn verify(args: VerifyArgs) -> Result<(), String> {
    let store = open(args.database).await?;
    let kept_note = args.checkpoint.as_ref().map(read).transpose()?;
    // The kept checkpoint names its account by its origin.
    let kept_account = kept_note
        .as_deref()
        .map(|note| {
            let origin = note.lines().next().unwrap_or_default();
            origin
                .strip_prefix(&checkpoint_origin(&AccountId::new("")))
                .map(AccountId::new)
                .ok_or_else(|| {
                    format!("the checkpoint's origin {origin:?} is not an audit trail's")
                })
        })
        .transpose()?;
    let accounts: Vec<AccountId> = match (args.account, &kept_account) {
        (Some(account), Some(kept)) if account != kept.as_str() => {
            return Err(format!(
                "the checkpoint is account {kept}'s, not {account}'s"
            ))
        }
        (Some(account), _) => vec![AccountId::new(account)],
        (None, Some(kept)) => vec![kept.clone()],
        (None, None) => store
            .accounts()
            .await
            .map_err(|error| error.to_string())?
            .into_iter()
            .map(|account| account.id)
            .collect(),
    };
    let mut failed = false;
    for account in accounts {
        let kept: Option<Checkpoint> = match &kept_note {
            None => None,
            Some(note) => {
                let verifier = match &args.verifier_key {
                    Some(path) => NoteVerifier::from_verifier_key(read(path)?.trim())
                        .map_err(|error| error.to_string())?,
                    None => signer(store.as_ref(), &account).await?.verifier(),
                };
                Some(
                    verifier
                        .verify_checkpoint(note)
                        .map_err(|error| format!("the kept checkpoint does not verify: {error}"))?,
                )
            }
        };
        let found = verify_trail(store.as_ref(), &account, kept.as_ref())
            .await
            .map_err(|error| error.to_string())?;
        let root = scimitar_domain::ids::lower_hex(&found.root);
        match found.problem {
            None => {
                let extends = kept
                    .map(|kept| format!(", extending the kept checkpoint of {} events", kept.size))
                    .unwrap_or_default();
                let pruned = match found.pruned {
                    0 => String::new(),
                    pruned => format!(
                        " (events 1 to {pruned} were pruned: checked through the frontier kept \
                         for them)"
                    ),
                };
                println!(
                    "account {account}: {} events verified, root {root}{extends}{pruned}",
                    found.events
                );
            }
            Some(problem) => {
                failed = true;
                let at = problem
                    .seq
                    .map(|seq| format!(" at event {seq}"))
                    .unwrap_or_default();
                println!(
                    "account {account}: FAILED{at}: {} ({} events verified before it)",
                    problem.reason, found.events
                );
            }
        }
    }
    if failed {
        return Err("the audit trail does not verify".to_string());
    }
    Ok(())
}

/// How many events export reads at a time.
const EXPORT_PAGE: usize = 10_000;

async fn export(
    database: Option<String>,
    account: Option<String>,
    output: Option<PathBuf>,
) -> Result<(), String> {
    use std::io::Write;
    let store = open(database).await?;
    let accounts: Vec<AccountId> = match account {
        Some(account) => vec![AccountId::new(account)],
        None => store
            .accounts()
            .await
            .map_err(|error| error.to_string())?
            .into_iter()
            .map(|account| account.id)
            .collect(),
    };
    let mut output: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|error| format!("cannot create {}: {error}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let failed = |error: std::io::Error| format!("cannot write: {error}");
    for account in accounts {
        let mut after = 0;
        loop {
            let page = store
                .audit_events(&account, after, EXPORT_PAGE)
                .await
                .map_err(|error| error.to_string())?;
            let last_page = page.len() < EXPORT_PAGE;
            for stored in page {
                after = stored.seq;
                let event: scimitar_store::AuditEvent = serde_json::from_str(&stored.text)
                    .map_err(|error| {
                        format!("event {} of account {account}: {error}", stored.seq)
                    })?;
                let row = scimitar_store::audit::databricks_row(&event);
                writeln!(output, "{row}").map_err(failed)?;
            }
            if last_page {
                break;
            }
        }
    }
    output.flush().map_err(failed)
}
