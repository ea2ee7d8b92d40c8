//! `scimitar sync` as an operator runs it: two `scimitar serve` processes as source and
//! target, tokens from files and the environment, a plan that writes nothing and exits 2, an
//! apply that exits 0, a second plan that finds nothing to do, and the run in `status`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use support::Scratch;

/// A `scimitar serve` process, killed when dropped.
struct Server {
    child: Child,
    address: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &str, database: &str) -> Server {
    let token = Command::new(binary)
        .args(["token", "create", "--database", database])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .env("SCIMITAR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(address) = line.strip_prefix("scimitar listening on http://") {
            break address.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        address,
        token,
    }
}

fn post(server: &Server, path: &str, body: &str) -> String {
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "POST /scim/v2/{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.address,
        server.token,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    let created: serde_json::Value = serde_json::from_str(body).unwrap();
    created["id"].as_str().unwrap().to_string()
}

#[test]
fn sync_plans_then_applies_a_scim_to_scim_job_with_tokens_from_a_file_and_the_environment() {
    let scratch = Scratch::new("sync");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let source = start(binary, &scratch.sqlite("source.db"));
    let target = start(binary, &scratch.sqlite("target.db"));
    let ada = post(
        &source,
        "Users",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada"}"#,
    );
    post(
        &source,
        "Groups",
        &format!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"eng","members":[{{"value":"{ada}"}}]}}"#
        ),
    );
    let token_file = scratch.path("source-token");
    std::fs::write(&token_file, &source.token).unwrap();
    let state = scratch.sqlite("state.db");
    let sync = |verb: &str, json: bool| {
        let mut command = Command::new(binary);
        command
            .args(["sync", verb])
            .args(["--from", &format!("http://{}/scim/v2", source.address)])
            .arg("--from-token-file")
            .arg(&token_file)
            .args(["--to", &format!("http://{}/scim/v2", target.address)])
            .args(["--group", "eng", "--database", &state])
            .env("SCIMITAR_SYNC_TO_TOKEN", &target.token);
        if json {
            command.arg("--json");
        }
        command.output().unwrap()
    };

    let plan = sync("plan", true);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(
        report["plan"]["creates"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert!(!String::from_utf8_lossy(&plan.stdout).contains(&target.token));

    let apply = sync("apply", false);
    let text = String::from_utf8_lossy(&apply.stdout);
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert!(text.contains("+ create user ada"), "{text}");
    assert!(text.contains("+ user ada"), "{text}");

    let again = sync("plan", false);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("no changes"));

    let job = format!(
        "http://{}/scim/v2 -> http://{}/scim/v2",
        source.address, target.address
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains(&format!("job: {job}")));
    let status = Command::new(binary)
        .args(["sync", "status", "--job", &job, "--database", &state])
        .output()
        .unwrap();
    assert!(status.status.success());
    let text = String::from_utf8_lossy(&status.stdout);
    // The job's status, then the apply, the only run recorded: a plan writes nothing, not
    // even its run.
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(
        text.lines().next(),
        Some(format!("job {job}: active").as_str())
    );
    assert!(
        text.lines().nth(1).unwrap().starts_with("#1 applied"),
        "{text}"
    );
    assert!(text.contains("3 writes, 0 failed"), "{text}");
}

#[test]
fn sync_without_a_token_refuses_to_start_and_names_the_variable() {
    let scratch = Scratch::new("sync-no-token");
    let output = Command::new(env!("CARGO_BIN_EXE_scimitar"))
        .args([
            "sync",
            "plan",
            "--from",
            "http://127.0.0.1:9/scim/v2",
            "--to",
            "http://127.0.0.1:9/scim/v2",
        ])
        .args(["--database", &scratch.sqlite("state.db")])
        .env_remove("SCIMITAR_SYNC_FROM_TOKEN")
        .env_remove("SCIMITAR_SYNC_TO_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SCIMITAR_SYNC_FROM_TOKEN"));
}

/// A GET under `/scim/v2` on `server`, its JSON body.
fn get(server: &Server, path: &str) -> serde_json::Value {
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "GET /scim/v2/{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        server.address, server.token,
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap()
}

/// `sync watch --config` over a Scimitar source that follows its change feed: the first run,
/// then a group made at the source reaches the target (the interval is an hour, so only the
/// feed brings it), and SIGTERM ends the watch with status 0.
#[test]
fn sync_watch_follows_a_scimitar_source_until_sigterm() {
    let scratch = Scratch::new("sync-watch");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let source = start(binary, &scratch.sqlite("source.db"));
    let target = start(binary, &scratch.sqlite("target.db"));
    let ada = post(
        &source,
        "Users",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada"}"#,
    );
    std::fs::write(scratch.path("source-token"), &source.token).unwrap();
    std::fs::write(scratch.path("target-token"), &target.token).unwrap();
    let config = scratch.path("job.toml");
    std::fs::write(
        &config,
        format!(
            "job = \"fan-out\"\nstate_database = \"{}\"\n\
             [source]\ntype = \"scim\"\nurl = \"http://{}/scim/v2\"\ntoken_file = \"{}\"\n\
             follow_changes = true\n\
             [target]\nurl = \"http://{}/scim/v2\"\ntoken_file = \"{}\"\n\
             [watch]\ninterval_seconds = 3600\n",
            scratch.sqlite("state.db"),
            source.address,
            scratch.path("source-token").display(),
            target.address,
            scratch.path("target-token").display(),
        ),
    )
    .unwrap();
    let mut watch = Command::new(binary)
        .args(["sync", "watch", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let found = |name: &str| {
        let filter = format!("Groups?filter=displayName%20eq%20%22{name}%22");
        get(&target, &filter)["totalResults"].as_u64() == Some(1)
    };
    let users = || get(&target, "Users?filter=userName%20eq%20%22ada%22")["totalResults"].as_u64();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while users() != Some(1) {
        assert!(std::time::Instant::now() < deadline, "the first run");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    post(
        &source,
        "Groups",
        &format!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"ops","members":[{{"value":"{ada}"}}]}}"#
        ),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !found("ops") {
        assert!(std::time::Instant::now() < deadline, "ops at the target");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // While the watch holds the job, an `apply` of it refuses to race it.
    let apply = Command::new(binary)
        .args(["sync", "apply", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(apply.status.code(), Some(1));
    let refusal = String::from_utf8_lossy(&apply.stderr);
    assert!(refusal.contains("sync watch"), "{refusal}");
    let killed = Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "watch ends on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut stdout = String::new();
    watch
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(stdout.lines().count() >= 2, "{stdout}");
    assert!(stdout.starts_with("job fan-out: "), "{stdout}");
    assert!(!stdout.contains(&source.token) && !stdout.contains(&target.token));
}

/// `status` and `resume` find the job, its state database and its quarantine settings in its
/// file: a job never run is active, with no lease holder and no runs, and resuming a job that is
/// not quarantined is refused, naming it.
#[test]
fn sync_status_and_resume_take_the_jobs_file() {
    let scratch = Scratch::new("sync-status");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let config = scratch.path("job.toml");
    std::fs::write(
        &config,
        format!(
            "job = \"hr\"\nstate_database = \"{}\"\n[source]\ntype = \"file\"\npath = \"x.csv\"\n\
             [target]\nurl = \"http://127.0.0.1:9/scim/v2\"\n\
             [watch]\nquarantine_after_failures = 2\n",
            scratch.sqlite("state.db")
        ),
    )
    .unwrap();
    let status = Command::new(binary)
        .args(["sync", "status", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["job"], "hr", "{status}");
    assert_eq!(status["status"], "active", "{status}");
    assert_eq!(status["leaseHolder"], serde_json::Value::Null, "{status}");
    assert_eq!(status["runs"], serde_json::json!([]), "{status}");

    let resume = Command::new(binary)
        .args(["sync", "resume", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(resume.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&resume.stderr).contains("job hr is not quarantined"),
        "{}",
        String::from_utf8_lossy(&resume.stderr)
    );
}
