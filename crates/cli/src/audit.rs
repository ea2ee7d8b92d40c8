//! `scimitar audit`: what an operator or auditor holding the database does with the audit
//! trail. `checkpoint` prints an account's signed checkpoint (to keep); `verify` recomputes
//! every account's trail (or one's) from the stored events and checks it against its head and,
//! given one, a checkpoint kept earlier, reporting the first event that does not match;
//! `export` writes events as JSON Lines in Databricks' `system.access.audit` column names. The
//! work is `scimitar_store::audit`'s; this wires files and output.

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
    }
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
                println!(
                    "account {account}: {} events verified, root {root}{extends}",
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
