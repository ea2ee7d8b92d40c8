//! `scimitar audit verify` as an auditor runs it: a trail made through the CLI verifies, and
//! each way of tampering with its rows directly in the database (altering an event, deleting
//! one, inserting one, reordering two) is detected and named, in SQLite and in PostgreSQL;
//! truncating the trail back to an older, self-consistent state is detected against a
//! checkpoint the auditor kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Output};
use support::Scratch;

fn scimitar(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scimitar"))
        .env("SCIMITAR_LOG", "error")
        .env_remove("SCIMITAR_DATABASE_URL")
        .args(arguments)
        .output()
        .expect("the binary runs")
}

fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Raw SQL on the test's database, behind the store's back.
trait Raw {
    fn execute(&mut self, sql: &str);
    fn texts(&mut self, sql: &str) -> Vec<String>;
}

struct Sqlite(rusqlite::Connection);

impl Raw for Sqlite {
    fn execute(&mut self, sql: &str) {
        self.0.execute_batch(sql).unwrap();
    }
    fn texts(&mut self, sql: &str) -> Vec<String> {
        let mut statement = self.0.prepare(sql).unwrap();
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }
}

struct Postgres {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Raw for Postgres {
    fn execute(&mut self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap();
    }
    fn texts(&mut self, sql: &str) -> Vec<String> {
        let rows = self.runtime.block_on(self.client.query(sql, &[])).unwrap();
        rows.iter().map(|row| row.get::<_, String>(0)).collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A SQL string literal.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs `scimitar audit verify`, returning whether it passed and what it printed.
fn verify(database: &str, extra: &[&str]) -> (bool, String) {
    let mut arguments = vec!["audit", "verify", "--database", database];
    arguments.extend_from_slice(extra);
    let output = scimitar(&arguments);
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), printed)
}

fn assert_detected(database: &str, extra: &[&str], expected: &str) {
    let (passed, printed) = verify(database, extra);
    assert!(!passed, "tampering went unnoticed: {printed}");
    assert!(printed.contains(expected), "{printed}");
}

fn every_tampering_is_detected(database: &str, raw: &mut dyn Raw, scratch: &Scratch) {
    // Bootstrap and a few changes through the CLI.
    succeeded(scimitar(&["token", "create", "--database", database]));
    let account = succeeded(scimitar(&["account", "list", "--database", database]));
    let account = account.split('\t').next().unwrap().trim().to_string();
    for name in ["second", "third", "fourth"] {
        succeeded(scimitar(&[
            "workspace",
            "create",
            "--database",
            database,
            "--account",
            &account,
            name,
        ]));
    }
    let kept = scratch.path("kept-checkpoint");
    let note = succeeded(scimitar(&[
        "audit",
        "checkpoint",
        "--database",
        database,
        "--account",
        &account,
    ]));
    std::fs::write(&kept, &note).unwrap();
    let key = scratch.path("verifier-key");
    let key_text = succeeded(scimitar(&[
        "audit",
        "verifier-key",
        "--database",
        database,
        "--account",
        &account,
    ]));
    std::fs::write(&key, key_text).unwrap();
    let kept = kept.display().to_string();
    let key = key.display().to_string();
    let with_kept = [
        "--checkpoint",
        kept.as_str(),
        "--verifier-key",
        key.as_str(),
    ];
    let (passed, printed) = verify(database, &with_kept);
    assert!(passed, "{printed}");
    // Exported as Databricks rows, one per line, every event once.
    let exported = succeeded(scimitar(&["audit", "export", "--database", database]));
    let rows: Vec<serde_json::Value> = exported
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows[0]["action_name"], "createAccount");
    assert!(rows
        .iter()
        .any(|row| row["action_name"] == "createWorkspace"
            && row["user_agent"]
                .as_str()
                .unwrap_or_default()
                .starts_with("scimitar-cli/")
            && row["user_identity"]["credential_kind"] == "operator"));
    let size: i64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert!(
        printed.contains(&format!("{size} events verified")),
        "{printed}"
    );
    assert!(size >= 5, "{note}");
    assert_eq!(rows.len() as i64, size);

    let event = |raw: &mut dyn Raw, seq: i64| {
        raw.texts(&format!(
            "SELECT event FROM audit_events WHERE account_id = {} AND seq = {seq}",
            quoted(&account)
        ))
        .pop()
        .unwrap()
    };
    let row = |seq: i64| format!("account_id = {} AND seq = {seq}", quoted(&account));

    // Altered: one event's text.
    let original = event(raw, 3);
    let altered = original.replace("\"version\":1", "\"version\":2");
    assert_ne!(altered, original);
    raw.execute(&format!(
        "UPDATE audit_events SET event = {} WHERE {}",
        quoted(&altered),
        row(3)
    ));
    assert_detected(database, &[], "FAILED at event 3");
    raw.execute(&format!(
        "UPDATE audit_events SET event = {} WHERE {}",
        quoted(&original),
        row(3)
    ));
    assert!(verify(database, &with_kept).0);

    // Deleted: one event.
    raw.execute(&format!(
        "CREATE TABLE kept_row AS SELECT * FROM audit_events WHERE {}; \
         DELETE FROM audit_events WHERE {}",
        row(2),
        row(2)
    ));
    assert_detected(database, &[], "FAILED at event 2: event 2 is missing");
    raw.execute("INSERT INTO audit_events SELECT * FROM kept_row; DROP TABLE kept_row");
    assert!(verify(database, &with_kept).0);

    // Inserted: an event after the last, copied from another.
    raw.execute(&format!(
        "INSERT INTO audit_events (account_id, seq, event_time, action_name, event, leaf) \
         SELECT account_id, {}, event_time, action_name, event, leaf FROM audit_events WHERE {}",
        size + 1,
        row(2)
    ));
    assert_detected(database, &[], &format!("FAILED at event {}", size + 1));
    raw.execute(&format!("DELETE FROM audit_events WHERE {}", row(size + 1)));
    assert!(verify(database, &with_kept).0);

    // Reordered: events 2 and 3 swap places.
    raw.execute(&format!(
        "UPDATE audit_events SET seq = -1 WHERE {}; \
         UPDATE audit_events SET seq = 2 WHERE {}; \
         UPDATE audit_events SET seq = 3 WHERE {}",
        row(2),
        row(3),
        row(-1)
    ));
    assert_detected(database, &[], "FAILED at event 2");
    // Swapped back, the same way.
    raw.execute(&format!(
        "UPDATE audit_events SET seq = -1 WHERE {}; \
         UPDATE audit_events SET seq = 2 WHERE {}; \
         UPDATE audit_events SET seq = 3 WHERE {}",
        row(2),
        row(3),
        row(-1)
    ));
    assert!(verify(database, &with_kept).0);

    // Truncated: back to the state after the bootstrap, head and all, so that the trail is
    // consistent with itself; only the kept checkpoint shows it.
    let head_at = |raw: &mut dyn Raw| {
        raw.texts(&format!(
            "SELECT frontier || ' ' || root || ' ' || CAST(size AS TEXT) FROM audit_heads \
             WHERE account_id = {}",
            quoted(&account)
        ))
        .pop()
        .unwrap()
    };
    let after_all = head_at(raw);
    assert!(after_all.ends_with(&format!(" {size}")), "{after_all}");
    // Cut to the first event, whose tree is its own leaf: the head an attacker would write.
    let first_leaf = raw
        .texts(&format!("SELECT leaf FROM audit_events WHERE {}", row(1)))
        .pop()
        .unwrap();
    raw.execute(&format!(
        "DELETE FROM audit_events WHERE account_id = {} AND seq > 1; \
         UPDATE audit_heads SET size = 1, folded_size = 1, frontier = {}, root = {} WHERE account_id = {}",
        quoted(&account),
        quoted(&first_leaf),
        quoted(&first_leaf),
        quoted(&account)
    ));
    let (passed, printed) = verify(database, &[]);
    assert!(
        passed,
        "a consistent truncated trail verifies on its own: {printed}"
    );
    assert_detected(database, &with_kept, "truncated");
}

#[test]
fn tampering_with_a_sqlite_trail_is_detected() {
    let scratch = Scratch::new("audit-sqlite");
    let database = scratch.sqlite("db.sqlite");
    // Made by the CLI first, then opened raw.
    succeeded(scimitar(&["migrate", "--database", &database]));
    let connection = rusqlite::Connection::open(scratch.path("db.sqlite")).unwrap();
    let mut raw = Sqlite(connection);
    every_tampering_is_detected(&database, &mut raw, &scratch);
}

#[test]
fn tampering_with_a_postgres_trail_is_detected() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is unset");
        return;
    };
    let scratch = Scratch::new("audit-postgres");
    let name = format!("scimitar_cli_audit_{}", std::process::id());
    let runtime = runtime();
    let url = runtime
        .block_on(scimitar_store::postgres::scratch::create(&server, &name))
        .unwrap();
    let (client, connection) = runtime
        .block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))
        .unwrap();
    runtime.spawn(connection);
    let mut raw = Postgres { runtime, client };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        every_tampering_is_detected(&url, &mut raw, &scratch)
    }));
    drop(raw.client);
    let _ = raw
        .runtime
        .block_on(scimitar_store::postgres::scratch::drop(&server, &name));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Retention through the CLI: `audit prune --before` removes the events before a time, the
/// rest still verifies (with a checkpoint kept after the horizon, too) and says what was
/// pruned; a kept event altered afterwards is caught; `query` and `tail` print what is kept.
fn pruning_keeps_the_trail_verifiable(database: &str, raw: &mut dyn Raw, scratch: &Scratch) {
    succeeded(scimitar(&["token", "create", "--database", database]));
    let account = succeeded(scimitar(&["account", "list", "--database", database]));
    let account = account.split('\t').next().unwrap().trim().to_string();
    let workspace = |name: &str| {
        succeeded(scimitar(&[
            "workspace",
            "create",
            "--database",
            database,
            "--account",
            &account,
            name,
        ]));
    };
    workspace("old");
    let pruned_size = raw.texts(&format!(
        "SELECT CAST(MAX(seq) AS TEXT) FROM audit_events WHERE account_id = {}",
        quoted(&account)
    ));
    let pruned_size: u64 = pruned_size[0].parse().unwrap();
    // Events carry millisecond times: the next ones are certainly later.
    std::thread::sleep(std::time::Duration::from_millis(20));
    workspace("new-one");
    workspace("new-two");
    let first_kept = raw.texts(&format!(
        "SELECT event FROM audit_events WHERE account_id = {} AND seq = {}",
        quoted(&account),
        pruned_size + 1
    ));
    let first_kept: serde_json::Value = serde_json::from_str(&first_kept[0]).unwrap();
    let horizon = first_kept["event_time"].as_str().unwrap().to_string();
    let kept = scratch.path("kept-after-horizon");
    std::fs::write(
        &kept,
        succeeded(scimitar(&[
            "audit",
            "checkpoint",
            "--database",
            database,
            "--account",
            &account,
        ])),
    )
    .unwrap();
    let kept = kept.display().to_string();

    let printed = succeeded(scimitar(&[
        "audit",
        "prune",
        "--database",
        database,
        "--before",
        &horizon,
    ]));
    assert!(
        printed.contains(&format!("events 1 to {pruned_size} are now pruned")),
        "{printed}"
    );
    let (passed, printed) = verify(database, &[]);
    assert!(passed, "{printed}");
    assert!(
        printed.contains(&format!("events 1 to {pruned_size} were pruned")),
        "{printed}"
    );
    let (passed, printed) = verify(database, &["--checkpoint", &kept]);
    assert!(
        passed,
        "the kept checkpoint is after the horizon: {printed}"
    );

    // What is kept is listed; the prune is an event of its own.
    let listed = succeeded(scimitar(&[
        "audit",
        "query",
        "--database",
        database,
        "--action-name",
        "createWorkspace",
        "--json",
    ]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let tail = succeeded(scimitar(&[
        "audit",
        "tail",
        "--database",
        database,
        "-n",
        "1",
    ]));
    assert!(tail.contains("pruneAuditEvents"), "{tail}");

    // A kept event altered after the prune is caught.
    let row = format!(
        "account_id = {} AND seq = {}",
        quoted(&account),
        pruned_size + 2
    );
    let original = raw.texts(&format!("SELECT event FROM audit_events WHERE {row}"));
    let altered = original[0].replace("new-two", "new-2wo");
    assert_ne!(altered, original[0]);
    raw.execute(&format!(
        "UPDATE audit_events SET event = {} WHERE {row}",
        quoted(&altered)
    ));
    assert_detected(
        database,
        &[],
        &format!("FAILED at event {}", pruned_size + 2),
    );
}

#[test]
fn a_pruned_sqlite_trail_still_verifies_and_catches_a_tampered_kept_event() {
    let scratch = Scratch::new("audit-prune-sqlite");
    let database = scratch.sqlite("db.sqlite");
    succeeded(scimitar(&["migrate", "--database", &database]));
    let connection = rusqlite::Connection::open(scratch.path("db.sqlite")).unwrap();
    let mut raw = Sqlite(connection);
    pruning_keeps_the_trail_verifiable(&database, &mut raw, &scratch);
}

#[test]
fn a_pruned_postgres_trail_still_verifies_and_catches_a_tampered_kept_event() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is unset");
        return;
    };
    let scratch = Scratch::new("audit-prune-postgres");
    let name = format!("scimitar_cli_audit_prune_{}", std::process::id());
    let runtime = runtime();
    let url = runtime
        .block_on(scimitar_store::postgres::scratch::create(&server, &name))
        .unwrap();
    let (client, connection) = runtime
        .block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))
        .unwrap();
    runtime.spawn(connection);
    let mut raw = Postgres { runtime, client };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pruning_keeps_the_trail_verifiable(&url, &mut raw, &scratch)
    }));
    drop(raw.client);
    let _ = raw
        .runtime
        .block_on(scimitar_store::postgres::scratch::drop(&server, &name));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `audit tail -f` keeps printing: events appended by another process after it started are
/// printed as they come, each once, in order.
#[test]
fn audit_tail_follow_prints_events_appended_after_it_started() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    let scratch = Scratch::new("audit-tail");
    let database = scratch.sqlite("db.sqlite");
    succeeded(scimitar(&["token", "create", "--database", &database]));
    let account = succeeded(scimitar(&["account", "list", "--database", &database]));
    let account = account.split('\t').next().unwrap().trim().to_string();
    let mut follower = Command::new(env!("CARGO_BIN_EXE_scimitar"))
        .env("SCIMITAR_LOG", "error")
        .env_remove("SCIMITAR_DATABASE_URL")
        .args([
            "audit",
            "tail",
            "-f",
            "--json",
            "-n",
            "1",
            "--interval",
            "100ms",
            "--database",
            &database,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // It prints the last event there is first (`-n 1`): once that is out, it has read where
    // the trail ends, and what is appended next is new to it.
    let first = received
        .recv_timeout(Duration::from_secs(60))
        .expect("tail printed the last event");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let mut last_seq = first["audit_seq"].as_u64().unwrap();
    for name in ["followed-1", "followed-2"] {
        succeeded(scimitar(&[
            "workspace",
            "create",
            "--database",
            &database,
            "--account",
            &account,
            name,
        ]));
    }
    let mut workspaces = Vec::new();
    while workspaces.len() < 2 {
        let line = received
            .recv_timeout(Duration::from_secs(60))
            .expect("tail -f printed the new events");
        let row: serde_json::Value = serde_json::from_str(&line).unwrap();
        let seq = row["audit_seq"].as_u64().unwrap();
        assert_eq!(seq, last_seq + 1, "each event once, in order: {line}");
        last_seq = seq;
        if row["action_name"] == "createWorkspace" {
            workspaces.push(row["request_params"].to_string());
        }
    }
    follower.kill().unwrap();
    let _ = follower.wait();
    assert!(workspaces[0].contains("followed-1"), "{workspaces:?}");
    assert!(workspaces[1].contains("followed-2"), "{workspaces:?}");
}
