//! `scimitar token create` and `scimitar token rotate` as an operator runs them, and the
//! server's log after a run that used every kind of token: it holds no secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use scimitar_domain::credentials::token_digest;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::Scratch;

fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scimitar"));
    command
        .env("SCIMITAR_LOG", "error")
        .env_remove("SCIMITAR_DATABASE_URL")
        .env_remove("SCIMITAR_TOKEN_ROTATION_OVERLAP");
    command
}

fn scimitar(arguments: &[&str]) -> Output {
    command().args(arguments).output().expect("the binary runs")
}

fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The token lines of an export of the database.
fn exported_tokens(scratch: &Scratch, database: &str) -> Vec<Value> {
    let file = scratch.path("export.jsonl");
    let output = file.display().to_string();
    succeeded(scimitar(&[
        "export",
        "--database",
        database,
        "--output",
        &output,
    ]));
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["type"] == "token")
        .collect()
}

#[test]
fn token_create_on_an_empty_database_stores_only_the_token_it_prints() {
    let scratch = Scratch::new("token-create");
    let database = scratch.sqlite("db.sqlite");
    let secret = succeeded(scimitar(&["token", "create", "--database", &database]));
    assert!(secret.starts_with("dapi"), "{secret}");
    let tokens = exported_tokens(&scratch, &database);
    assert_eq!(tokens.len(), 1, "{tokens:#?}");
    assert_eq!(tokens[0]["digest"], token_digest(&secret));
    assert_eq!(tokens[0]["scope"], "all-apis");
    assert_eq!(tokens[0]["expires"], Value::Null);
    // A lifetime and a scope.
    let read_only = succeeded(scimitar(&[
        "token",
        "create",
        "--database",
        &database,
        "--scope",
        "read-only",
        "--lifetime",
        "90d",
    ]));
    let tokens = exported_tokens(&scratch, &database);
    assert_eq!(tokens.len(), 2);
    let made = tokens
        .iter()
        .find(|token| token["digest"] == token_digest(&read_only))
        .unwrap();
    assert_eq!(made["scope"], "read-only");
    let lifetime = made["expires"].as_i64().unwrap() - made["created"].as_i64().unwrap();
    assert_eq!(lifetime, 90 * 86_400 * 1_000_000);
    // Refused before anything is written.
    for arguments in [
        ["--scope", "root"],
        ["--lifetime", "0"],
        ["--lifetime", "forever"],
    ] {
        let mut all = vec!["token", "create", "--database", &database];
        all.extend(arguments);
        assert!(!scimitar(&all).status.success(), "{arguments:?}");
    }
    assert_eq!(exported_tokens(&scratch, &database).len(), 2);
}

struct Server {
    child: Child,
    address: String,
    log: std::thread::JoinHandle<Vec<String>>,
}

impl Server {
    fn start(database: &str) -> Server {
        let mut child = command()
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .env("SCIMITAR_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (address_sender, address_receiver) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in stderr.lines() {
                let line = line.unwrap();
                if let Some(address) = line.strip_prefix("scimitar listening on http://") {
                    let _ = address_sender.send(address.trim().to_string());
                }
                lines.push(line);
            }
            lines
        });
        let address = address_receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("the server said where it listens");
        Server {
            child,
            address,
            log,
        }
    }

    /// A request with a bearer token and an optional JSON body: the status and the body.
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let mut stream = std::net::TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    /// Stops the server and returns every line it logged.
    fn stop(mut self) -> Vec<String> {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(terminated.success());
        assert!(self.child.wait().unwrap().success());
        self.log.join().unwrap()
    }
}

fn value_of(reply: &(u16, Value)) -> String {
    assert_eq!(reply.0, 200, "{}", reply.1);
    reply.1["token_value"].as_str().unwrap().to_string()
}

#[test]
fn tokens_rotate_without_downtime_and_no_secret_reaches_the_log() {
    let scratch = Scratch::new("token-rotate");
    let database = scratch.sqlite("db.sqlite");
    let operator = succeeded(scimitar(&["token", "create", "--database", &database]));
    let operator_id = exported_tokens(&scratch, &database)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let server = Server::start(&database);
    let me = |token: &str| server.call("GET", "/scim/v2/Me", token, None).0;
    // A personal access token, rotated through the API; an on-behalf-of token.
    let personal = server.call(
        "POST",
        "/api/2.0/token/create",
        &operator,
        Some(json!({"lifetime_seconds": 3600})),
    );
    let personal_id = personal.1["token_info"]["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    let personal = value_of(&personal);
    let rotated = value_of(&server.call(
        "POST",
        "/api/2.0/token/rotate",
        &operator,
        Some(json!({"token_id": personal_id})),
    ));
    let (status, principal) = server.call(
        "POST",
        "/scim/v2/ServicePrincipals",
        &operator,
        Some(json!({"displayName": "robot"})),
    );
    assert_eq!(status, 201, "{principal}");
    let on_behalf = value_of(&server.call(
        "POST",
        "/api/2.0/token-management/on-behalf-of/tokens",
        &operator,
        Some(json!({"application_id": principal["applicationId"], "lifetime_seconds": 600})),
    ));
    for token in [&personal, &rotated, &on_behalf] {
        assert_eq!(me(token), 200);
    }
    // The operator's own token, rotated with the CLI while the server runs, without overlap:
    // the server refuses the old secret once it reads the change, and takes the new one.
    let renewed = succeeded(scimitar(&[
        "token",
        "rotate",
        "--database",
        &database,
        "--overlap",
        "0",
        &operator_id,
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while me(&operator) != 401 {
        assert!(Instant::now() < deadline, "the rotated token kept working");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(me(&renewed), 200);
    let unknown = succeeded_not(scimitar(&[
        "token",
        "rotate",
        "--database",
        &database,
        "no-such-token",
    ]));
    assert!(unknown.contains("does not exist"), "{unknown}");
    let log = server.stop();
    assert!(!log.is_empty());
    for secret in [&operator, &renewed, &personal, &rotated, &on_behalf] {
        let hex = secret.trim_start_matches("dapi");
        for line in &log {
            assert!(!line.contains(hex), "a secret was logged: {line}");
        }
    }
}

fn succeeded_not(output: Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}
