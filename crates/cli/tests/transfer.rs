//! `scimitar export` and `scimitar import` as an operator runs them: a deployment moved from
//! SQLite to PostgreSQL and back to SQLite, exports compared, and the token made before the
//! move used against `scimitar serve` on each database it reached.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use support::Scratch;

/// A PostgreSQL database created for the test and dropped with it.
struct ScratchPostgres {
    server: String,
    name: String,
    url: String,
}

impl ScratchPostgres {
    fn create(server: &str) -> ScratchPostgres {
        let name = format!("scimitar_cli_transfer_{}", std::process::id());
        let url = runtime()
            .block_on(scimitar_store::postgres::scratch::create(server, &name))
            .unwrap_or_else(|error| panic!("cannot create the database {name}: {error}"));
        ScratchPostgres {
            server: server.to_string(),
            name,
            url,
        }
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        if let Err(error) = runtime().block_on(scimitar_store::postgres::scratch::drop(
            &self.server,
            &self.name,
        )) {
            eprintln!("could not drop the test database {}: {error}", self.name);
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scimitar"));
    command
        .env("SCIMITAR_LOG", "error")
        .env_remove("SCIMITAR_DATABASE_URL");
    command
}

fn scimitar(arguments: &[&str]) -> Output {
    command().args(arguments).output().expect("the binary runs")
}

fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `scimitar import` with the export on its standard input.
fn import_from_stdin(database: &str, export: &[u8]) -> Output {
    let mut child = command()
        .args(["import", "--database", database])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(export).unwrap();
    child.wait_with_output().unwrap()
}

/// A `scimitar serve` on port 0, stopped when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(database: &str) -> Server {
        let mut child = command()
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let address = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("scimitar serve ended before listening");
            };
            if let Some(address) = line.strip_prefix("scimitar listening on http://") {
                break address.trim().to_string();
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, address }
    }

    /// `GET path` with a bearer token: the status code and the body.
    fn get(&self, path: &str, token: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        (status, response)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token made before a move still authenticates after it, as the same user.
fn assert_token_works(database: &str, token: &str) {
    let server = Server::start(database);
    let (status, response) = server.get("/scim/v2/Me", token);
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("admin@scimitar.local"), "{response}");
    let (status, _) = server.get("/scim/v2/Me", "dapi-not-a-token");
    assert_eq!(status, 401);
}

fn export_to_file(database: &str, file: &Path) -> Vec<u8> {
    succeeded(scimitar(&[
        "export",
        "--database",
        database,
        "--output",
        &file.display().to_string(),
    ]));
    std::fs::read(file).unwrap()
}

#[test]
fn a_deployment_moves_from_sqlite_to_postgres_and_back_with_its_tokens() {
    let scratch = Scratch::new("transfer");
    let source = scratch.sqlite("source.db");
    let token = succeeded(scimitar(&["token", "create", "--database", &source]))
        .trim()
        .to_string();
    for statement in [
        "CREATE CATALOG main",
        "CREATE SCHEMA main.sales",
        "GRANT USE CATALOG ON CATALOG main TO `users`",
        "GRANT SELECT ON SCHEMA main.sales TO `admins`",
    ] {
        succeeded(scimitar(&["sql", "--database", &source, statement]));
    }
    let exported = export_to_file(&source, &scratch.path("source.jsonl"));
    let text = String::from_utf8(exported.clone()).unwrap();
    assert!(text.starts_with("{\"type\":\"scimitar-export\",\"version\":5}\n"));
    for kind in [
        "account",
        "workspace",
        "principal",
        "membership",
        "token",
        "securable",
        "grant",
        "assignment",
        // The `users` group's default entitlements in the first workspace.
        "entitlements",
    ] {
        assert!(
            text.contains(&format!("{{\"type\":\"{kind}\"")),
            "{kind} records: {text}"
        );
    }
    assert!(
        !text.contains(&token),
        "the secret itself is never exported"
    );

    // Through PostgreSQL when there is one, else straight to the second SQLite database.
    let postgres = match std::env::var("TEST_DATABASE_URL") {
        Ok(server) => Some(ScratchPostgres::create(&server)),
        Err(_) => {
            eprintln!(
                "skipped the PostgreSQL leg: TEST_DATABASE_URL is unset (set it to a server URL, \
                 e.g. postgres://postgres@127.0.0.1:5432/test, to move through PostgreSQL)"
            );
            None
        }
    };
    let mut carried = exported.clone();
    if let Some(postgres) = &postgres {
        succeeded(scimitar(&[
            "import",
            "--database",
            &postgres.url,
            "--input",
            &scratch.path("source.jsonl").display().to_string(),
        ]));
        carried = export_to_file(&postgres.url, &scratch.path("postgres.jsonl"));
        assert_eq!(
            String::from_utf8(carried.clone()).unwrap(),
            text,
            "PostgreSQL holds what SQLite held"
        );
        assert_token_works(&postgres.url, &token);
    }

    let target = scratch.sqlite("target.db");
    let imported = import_from_stdin(&target, &carried);
    assert!(imported.status.success(), "{imported:?}");
    let progress = String::from_utf8_lossy(&imported.stderr);
    assert!(progress.contains("import done"), "{progress}");
    let again = succeeded(scimitar(&["export", "--database", &target]));
    assert_eq!(again, text, "the round trip changes nothing");
    assert_token_works(&target, &token);

    // A second import into a database that holds the account is refused.
    let refused = import_from_stdin(&target, &carried);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("already exists"), "{message}");
}

#[test]
fn a_malformed_line_is_named_and_its_batch_not_imported() {
    let scratch = Scratch::new("transfer-malformed");
    let source = scratch.sqlite("source.db");
    succeeded(scimitar(&["token", "create", "--database", &source]));
    let text = succeeded(scimitar(&["export", "--database", &source]));
    let mut lines: Vec<&str> = text.lines().collect();
    lines[3] = "{\"type\":\"principal\",\"account\":";
    let broken = lines.join("\n");

    let target = scratch.sqlite("target.db");
    let output = import_from_stdin(&target, broken.as_bytes());
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("nothing was imported"), "{message}");
    let accounts = succeeded(scimitar(&["account", "list", "--database", &target]));
    assert_eq!(
        accounts, "",
        "the account of the failed batch was not created"
    );
}
