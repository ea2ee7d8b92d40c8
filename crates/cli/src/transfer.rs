//! `scimitar export` and `scimitar import`: a deployment's data as JSON Lines, to move it
//! between databases (SQLite to PostgreSQL, or back). The format and the work are
//! `scimitar_store::transfer`'s; this wires files, standard streams and progress on stderr.

use clap::Args;
use scimitar_store::transfer::{self, Progress};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// Database to read: sqlite://PATH (or a path), or postgres://USER@HOST:PORT/DATABASE
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// File to write (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Database to load into; it must not already hold the accounts being imported.
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// File to read (default: standard input).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Records per transaction.
    #[arg(long, default_value_t = transfer::DEFAULT_IMPORT_BATCH)]
    batch_size: usize,
}

fn database_or_default(database: Option<String>) -> String {
    database.unwrap_or_else(|| crate::config::DEFAULT_DATABASE.to_string())
}

pub async fn export(args: ExportArgs) -> Result<(), String> {
    let database = database_or_default(args.database);
    let store = scimitar_store::open(&database)
        .await
        .map_err(|error| format!("cannot open the database: {error}"))?;
    let mut output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .map_err(|error| format!("cannot create {}: {error}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut report = |progress: &Progress| {
        eprintln!(
            "exported {} records (account {})",
            progress.records, progress.account
        );
    };
    let records = transfer::export(
        store.as_ref(),
        &mut output,
        transfer::DEFAULT_EXPORT_PAGE,
        &mut report,
    )
    .await
    .map_err(|error| format!("export failed: {error}"))?;
    output
        .flush()
        .map_err(|error| format!("export failed: {error}"))?;
    eprintln!("export done: {records} records");
    Ok(())
}

pub async fn import(args: ImportArgs) -> Result<(), String> {
    let database = database_or_default(args.database);
    let store = scimitar_store::open(&database)
        .await
        .map_err(|error| format!("cannot open the database: {error}"))?;
    let existing = store
        .accounts()
        .await
        .map_err(|error| format!("cannot read the database: {error}"))?;
    if !existing.is_empty() {
        // Allowed (several deployments may be merged into one database), but rarely meant when
        // moving one: a `serve` started on the target first creates a default account.
        eprintln!(
            "note: the target database already holds {} account(s); the imported ones are added beside them",
            existing.len()
        );
    }
    let mut input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(BufReader::new(
            std::fs::File::open(path)
                .map_err(|error| format!("cannot open {}: {error}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut committed: u64 = 0;
    let mut report = |progress: &Progress| {
        committed = progress.records;
        eprintln!(
            "imported {} records (account {})",
            progress.records, progress.account
        );
    };
    let outcome = transfer::import(store.as_ref(), &mut input, args.batch_size, &mut report).await;
    match outcome {
        Ok(summary) => {
            eprintln!(
                "import done: {} records of {} account(s) in {} transactions",
                summary.records,
                summary.accounts.len(),
                summary.batches
            );
            Ok(())
        }
        Err(error) if committed == 0 => Err(format!("import failed: {error}; nothing was imported")),
        Err(error) => Err(format!(
            "import failed: {error}; the {committed} records committed before it stay in the database"
        )),
    }
}
