//! `scimitar serve` as an operator runs it: SIGTERM lets the requests in flight finish, then
//! the process exits cleanly; the runtime's threads are configured; tokens made with
//! `scimitar token create` for other principals act as them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::Scratch;

#[test]
fn sigterm_finishes_the_request_in_flight_before_the_server_exits() {
    let scratch = Scratch::new("serve");
    let database = scratch.sqlite("db.sqlite");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let token = Command::new(binary)
        .args(["token", "create", "--database", &database])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();

    let (mut server, address) = start_server(binary, &database);

    // A Bulk request of 1,000 creations: long enough to still be running when SIGTERM comes.
    let operations: Vec<String> = (0..1000)
        .map(|index| {
            format!(
                r#"{{"method":"POST","path":"/Users","bulkId":"u{index}","data":{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"inflight-{index}@example.com"}}}}"#
            )
        })
        .collect();
    let body = format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{}]}}"#,
        operations.join(",")
    );
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "POST /scim/v2/Bulk HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Let the server read the request and start on it, then ask it to stop.
    std::thread::sleep(Duration::from_millis(200));
    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());

    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{}",
        &response[..response.len().min(300)]
    );
    assert_eq!(response.matches(r#""status":"201""#).count(), 1000);

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("the server did not exit within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

/// The runtime runs as many worker threads as configured (by flag, environment or file), as
/// the runtime itself reports them; zero is refused before anything starts.
#[test]
fn worker_threads_come_from_the_flag_the_environment_or_the_file() {
    let scratch = Scratch::new("workers");
    let database = scratch.sqlite("db.sqlite");
    let config = scratch.path("scimitar.toml");
    std::fs::write(&config, "worker_threads = 4\n").unwrap();
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let reported = |extra_args: &[&str], environment: &[(&str, &str)]| {
        let mut server = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
            .args(extra_args)
            .env("SCIMITAR_LOG", "info")
            .env_remove("SCIMITAR_WORKER_THREADS")
            .env_remove("TOKIO_WORKER_THREADS")
            .envs(environment.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let serving = BufReader::new(server.stderr.take().unwrap())
            .lines()
            .map(Result::unwrap)
            .find(|line| line.contains("scimitar is serving"));
        let _ = server.kill();
        let _ = server.wait();
        let serving = serving.expect("the server logged that it is serving");
        serving
            .split_whitespace()
            .find_map(|field| field.strip_prefix("worker_threads="))
            .and_then(|count| count.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no worker_threads in {serving:?}"))
    };
    // Three and four differ from the default on the 2-core machines this runs on, and from
    // each other.
    assert_eq!(reported(&["--worker-threads", "3"], &[]), 3);
    assert_eq!(reported(&[], &[("SCIMITAR_WORKER_THREADS", "1")]), 1);
    let config_arg = config.to_str().unwrap();
    assert_eq!(reported(&["--config", config_arg], &[]), 4);
    assert_eq!(
        reported(&["--config", config_arg, "--worker-threads", "3"], &[]),
        3
    );
    let default = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(reported(&[], &[]), default);

    let refused = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .args(["--worker-threads", "0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("worker_threads must be at least 1"),
        "{message}"
    );
}

/// Starts `scimitar serve` on a free port over `database` and returns it with its address.
fn start_server(binary: &str, database: &str) -> (std::process::Child, String) {
    let mut server = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .env("SCIMITAR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
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
    (server, address)
}

/// One HTTP/1.1 request over a fresh connection: the status and the body.
fn http(address: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn token_create_makes_a_token_for_a_user_or_service_principal_that_acts_as_them() {
    let scratch = Scratch::new("tokens");
    let database = scratch.sqlite("db.sqlite");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let token_create = |extra: &[&str]| {
        Command::new(binary)
            .args(["token", "create", "--database", &database])
            .args(extra)
            .output()
            .unwrap()
    };
    let admin = token_create(&[]);
    assert!(admin.status.success());
    let admin = String::from_utf8(admin.stdout).unwrap().trim().to_string();
    let (mut server, address) = start_server(binary, &database);

    let (status, body) = http(
        &address,
        "POST",
        "/scim/v2/Users",
        &admin,
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"nora@example.com"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = http(
        &address,
        "POST",
        "/scim/v2/ServicePrincipals",
        &admin,
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],"applicationId":"robot-app","displayName":"robot"}"#,
    );
    assert_eq!(status, 201, "{body}");

    // Made while the server runs, on the same database; names compare ignoring case.
    let for_nora = token_create(&["--user", "NORA@example.com"]);
    assert!(
        for_nora.status.success(),
        "{}",
        String::from_utf8_lossy(&for_nora.stderr)
    );
    let stdout = String::from_utf8(for_nora.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "the secret alone: {stdout:?}");
    let nora = stdout.trim().to_string();
    assert!(nora.starts_with("dapi") && nora.len() == 68, "{nora}");

    let (status, body) = http(&address, "GET", "/scim/v2/Me", &nora, "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""userName":"nora@example.com""#), "{body}");
    let (status, body) = http(
        &address,
        "POST",
        "/scim/v2/Users",
        &nora,
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"mallory@example.com"}"#,
    );
    assert_eq!(status, 403, "a non-admin's token cannot write: {body}");

    let for_robot = token_create(&["--service-principal", "robot-app"]);
    assert!(for_robot.status.success());
    let robot = String::from_utf8(for_robot.stdout)
        .unwrap()
        .trim()
        .to_string();
    let (status, body) = http(&address, "GET", "/scim/v2/Me", &robot, "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""applicationId":"robot-app""#), "{body}");

    let unknown = token_create(&["--user", "nobody@example.com"]);
    assert!(!unknown.status.success());
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(message.contains("nobody@example.com"), "{message}");
    assert!(unknown.stdout.is_empty());
    let both = token_create(&[
        "--user",
        "nora@example.com",
        "--service-principal",
        "robot-app",
    ]);
    assert!(!both.status.success());

    let _ = server.kill();
    let _ = server.wait();
}

/// One HTTP/1.1 request with extra header lines (each ending in `\r\n`): status, headers
/// and body as text.
fn http_raw(address: &str, request_line: &str, headers: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{request_line} HTTP/1.1\r\nHost: {address}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    (status, response)
}

/// Starts `scimitar serve` with these log settings; returns it, its address, and a thread
/// that collects every line of its stderr until it exits.
fn start_logging_server(
    binary: &str,
    database: &str,
    format: &str,
) -> (
    std::process::Child,
    String,
    std::thread::JoinHandle<Vec<String>>,
) {
    let mut server = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .env("SCIMITAR_LOG", "info")
        .env("SCIMITAR_LOG_FORMAT", format)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (address_sender, address_receiver) = std::sync::mpsc::channel();
    let stderr = BufReader::new(server.stderr.take().unwrap());
    let json = format == "json";
    let collector = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in stderr.lines() {
            let line = line.unwrap();
            let address = if json {
                serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .filter(|entry| entry["message"] == "scimitar is serving")
                    .and_then(|entry| entry["address"].as_str().map(str::to_string))
            } else {
                line.strip_prefix("scimitar listening on http://")
                    .map(|address| address.trim().to_string())
            };
            if let Some(address) = address {
                let _ = address_sender.send(address);
            }
            lines.push(line);
        }
        lines
    });
    let address = address_receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the server said where it listens");
    (server, address, collector)
}

/// What the log tests send: a request with a forged request id (a tab, quotes and a fake
/// field), a statement whose quoted name holds a newline and a forged log line, a request
/// with an unknown token, and one with a request id of the client's that is kept.
fn send_hostile_requests(address: &str, token: &str) {
    let authorization = format!("Authorization: Bearer {token}\r\n");
    let (status, response) = http_raw(
        address,
        "GET /scim/v2/Users",
        &format!("{authorization}x-request-id: forged\t\" level=ERROR request_id=\"x\r\n"),
        "",
    );
    assert_eq!(status, 200, "{response}");
    assert!(!response.contains("forged"), "the forged id is not echoed");
    let statement = r#"{"warehouse_id": "any", "statement": "DROP CATALOG `nope\n2026-01-01T00:00:00Z ERROR forged: {\"level\":\"ERROR\"}`"}"#;
    let (status, response) = http_raw(
        address,
        "POST /api/2.0/sql/statements",
        &authorization,
        statement,
    );
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("FAILED"), "{response}");
    let (status, _) = http_raw(
        address,
        "GET /scim/v2/Me",
        "Authorization: Bearer dapi0000\r\nx-request-id: client-chosen.1\r\n",
        "",
    );
    assert_eq!(status, 401);
}

fn stop(mut server: std::process::Child) -> std::process::ExitStatus {
    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    server.wait().unwrap()
}

#[test]
fn json_logs_are_one_json_object_per_line_with_a_line_per_request_and_no_secret() {
    let scratch = Scratch::new("json-logs");
    let database = scratch.sqlite("db.sqlite");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let token = Command::new(binary)
        .args(["token", "create", "--database", &database])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();

    let (server, address, collector) = start_logging_server(binary, &database, "json");
    send_hostile_requests(&address, &token);
    let mut server = server;
    let stdout = {
        let mut text = String::new();
        let mut pipe = server.stdout.take().unwrap();
        let status = stop(server);
        assert!(status.success(), "{status}");
        pipe.read_to_string(&mut text).unwrap();
        text
    };
    let lines = collector.join().unwrap();
    assert!(
        stdout.is_empty(),
        "nothing but the log is written: {stdout}"
    );
    let entries: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line:?}"))
        })
        .collect();
    for line in &lines {
        assert!(!line.contains(&token), "a secret was logged: {line}");
        assert!(!line.contains("dapi0000"), "a token was logged: {line}");
    }
    let requests: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|entry| entry["message"] == "request answered")
        .collect();
    assert_eq!(requests.len(), 3, "one line per request: {lines:#?}");
    let users = requests[0];
    assert_eq!(users["level"], "INFO");
    assert_eq!(users["method"], "GET");
    assert_eq!(users["route"], "/scim/v2/{resource}");
    assert_eq!(users["status"], 200);
    assert!(users["duration_ms"].as_f64().is_some(), "{users}");
    assert!(
        users["principal"]
            .as_str()
            .is_some_and(|id| id != "-" && !id.is_empty()),
        "{users}"
    );
    let request_id = users["request_id"].as_str().unwrap();
    assert!(!request_id.contains("forged"), "{users}");
    assert_eq!(requests[1]["route"], "/api/2.0/sql/statements");
    assert_eq!(requests[2]["status"], 401);
    assert_eq!(requests[2]["principal"], "-");
    assert_eq!(requests[2]["request_id"], "client-chosen.1");
    // The statement's failure is logged inside its request's span, name and all, escaped.
    let failure = entries
        .iter()
        .find(|entry| entry["message"] == "statement failed")
        .unwrap_or_else(|| panic!("the failed statement is logged: {lines:#?}"));
    assert_eq!(failure["span"]["request_id"], requests[1]["request_id"]);
    // And the refused token's reason is logged, the token is not.
    assert!(
        entries
            .iter()
            .any(|entry| entry["message"] == "authentication failed"
                && entry["span"]["request_id"] == "client-chosen.1"),
        "{lines:#?}"
    );
}

#[test]
fn text_logs_escape_control_characters_so_a_client_cannot_forge_a_line() {
    let scratch = Scratch::new("text-logs");
    let database = scratch.sqlite("db.sqlite");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let token = Command::new(binary)
        .args(["token", "create", "--database", &database])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let (server, address, collector) = start_logging_server(binary, &database, "text");
    send_hostile_requests(&address, &token);
    assert!(stop(server).success());
    let lines = collector.join().unwrap();
    // Every log line starts with its own timestamp (and the address line is the one other).
    for line in &lines {
        assert!(
            line.starts_with("scimitar listening on ")
                || line
                    .get(..4)
                    .is_some_and(|year| year.bytes().all(|b| b.is_ascii_digit())),
            "a line the server did not start: {line:?}"
        );
        assert!(!line.contains('\t') && !line.contains(&token), "{line:?}");
        assert!(
            !line.starts_with("2026-01-01T00:00:00Z"),
            "forged: {line:?}"
        );
    }
    let failure = lines
        .iter()
        .find(|line| line.contains("statement failed"))
        .unwrap_or_else(|| panic!("the failed statement is logged: {lines:#?}"));
    assert!(
        failure.contains(r"nope\n2026-01-01T00:00:00Z ERROR forged"),
        "{failure}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.contains("request answered"))
            .count(),
        3,
        "{lines:#?}"
    );
}

#[test]
fn an_unknown_log_format_stops_the_start() {
    let scratch = Scratch::new("log-format");
    let database = scratch.sqlite("db.sqlite");
    let refused = Command::new(env!("CARGO_BIN_EXE_scimitar"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .env("SCIMITAR_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("SCIMITAR_LOG_FORMAT"), "{message}");
}

#[test]
fn account_create_and_workspace_create_make_tenants_served_side_by_side() {
    let scratch = Scratch::new("tenants");
    let database = scratch.sqlite("db.sqlite");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let run = |args: &[&str]| {
        let output = Command::new(binary)
            .args(args)
            .args(["--database", &database])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    // The first account (bootstrap), then a second one: its id, its workspace, its token.
    let first_admin = run(&["token", "create"]).trim().to_string();
    let made = run(&["account", "create", "Acme", "--workspace", "acme-main"]);
    let lines: Vec<&str> = made.lines().collect();
    assert_eq!(lines.len(), 3, "{made}");
    let (account, workspace, token) = (lines[0], lines[1], lines[2]);
    assert!(token.starts_with("dapi"), "{token}");
    let listed = run(&["account", "list"]);
    assert!(listed.contains(&format!("{account}\tAcme")), "{listed}");
    let second_workspace = run(&["workspace", "create", "--account", account, "Acme BI"])
        .trim()
        .to_string();
    let workspaces = run(&["workspace", "list", "--account", account]);
    assert_eq!(
        workspaces,
        format!("{workspace}\tacme-main\n{second_workspace}\tAcme BI\n")
    );
    let refused = Command::new(binary)
        .args(["workspace", "create", "--account", "no-such-account", "x"])
        .args(["--database", &database])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no-such-account"));

    let (mut server, address) = start_server(binary, &database);
    // The new account's admin works in its workspace, and its token is nothing in the first.
    let (status, body) = http(
        &address,
        "GET",
        &format!("/w/{workspace}/scim/v2/Me"),
        token,
        "",
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        &address,
        "POST",
        &format!("/w/{second_workspace}/scim/v2/Users"),
        token,
        r#"{"userName":"bi@acme.test"}"#,
    );
    assert_eq!(status, 201, "{body}");
    // Several workspaces and no default_workspace: unprefixed paths say how to name one.
    let (status, body) = http(&address, "GET", "/scim/v2/Me", token, "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("/w/{workspace_id}"), "{body}");
    let (status, body) = http(
        &address,
        "GET",
        &format!("/w/{workspace}/scim/v2/Users"),
        &first_admin,
        "",
    );
    assert_eq!(
        status, 404,
        "another account's workspace is as a missing one: {body}"
    );
    assert!(!body.contains("acme"), "{body}");
    let _ = server.kill();
    let _ = server.wait();
}
