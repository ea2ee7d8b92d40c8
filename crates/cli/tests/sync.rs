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
    // Progress is drawn only on a terminal: stderr here is a pipe, and gets none of it.
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(
        !stderr.contains("sync: reading") && !stderr.contains('\r'),
        "{stderr}"
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
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        !stderr.contains("sync: reading") && !stderr.contains('\r'),
        "{stderr}"
    );
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

    // A job from flags is named after its URLs with each `/` written `%2F` (a `/` in a job's
    // name would reach into another job's state); the operator may name it as typed.
    let typed = format!(
        "http://{}/scim/v2 -> http://{}/scim/v2",
        source.address, target.address
    );
    let job = typed.replace('/', "%2F");
    assert!(String::from_utf8_lossy(&again.stdout).contains(&format!("job: {job}")));
    let status = Command::new(binary)
        .args(["sync", "status", "--job", &typed, "--database", &state])
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
    // ada, then eng created with ada as its member: two writes.
    assert!(text.contains("2 writes, 0 failed"), "{text}");
    // The recorded report's lists are samples; `counts` says how many of each there were.
    let status = Command::new(binary)
        .args([
            "sync",
            "status",
            "--json",
            "--job",
            &typed,
            "--database",
            &state,
        ])
        .output()
        .unwrap();
    assert!(status.status.success());
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let run = &status["runs"][0];
    assert_eq!(
        run["counts"],
        serde_json::json!({"creates": 2, "adoptions": 0, "updates": 0, "memberships": 1,
                           "deactivations": 0, "deletions": 0, "drift": 0, "ambiguities": 0,
                           "writes": 2, "failures": 0}),
        "{status}"
    );
    assert_eq!(run["report"]["plan"]["creates"]["count"], 2, "{status}");
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
/// A job file from `source` to `target` (their tokens in files beside it) with an hour between
/// full runs; `source_extra` is added to its `[source]`.
fn watch_job(
    scratch: &Scratch,
    job: &str,
    source: &Server,
    target: &Server,
    source_extra: &str,
) -> std::path::PathBuf {
    std::fs::write(scratch.path("source-token"), &source.token).unwrap();
    std::fs::write(scratch.path("target-token"), &target.token).unwrap();
    let config = scratch.path("job.toml");
    std::fs::write(
        &config,
        format!(
            "job = \"{job}\"\nstate_database = \"{}\"\n\
             [source]\ntype = \"scim\"\nurl = \"http://{}/scim/v2\"\ntoken_file = \"{}\"\n\
             {source_extra}\
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
    config
}

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
    let config = watch_job(
        &scratch,
        "fan-out",
        &source,
        &target,
        "follow_changes = true\n",
    );
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

/// A PostgreSQL database created for a test and dropped with it (after the processes using
/// it, which are declared after it and so dropped first).
struct ScratchPostgres {
    server: String,
    name: String,
    url: String,
}

impl ScratchPostgres {
    fn create(server: &str, test: &str) -> ScratchPostgres {
        let name = format!("scimitar_cli_{test}_{}", std::process::id());
        let url = runtime()
            .block_on(scimitar_store::postgres::scratch::create(server, &name))
            .unwrap_or_else(|error| panic!("cannot create the database {name}: {error}"));
        ScratchPostgres {
            server: server.to_string(),
            name,
            url,
        }
    }

    /// Who holds `job`'s lease, read from the lease row behind the nodes' backs.
    fn lease_owner(&self, job: &str) -> Option<String> {
        let runtime = runtime();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let row = client
                .query_opt("SELECT lease_owner FROM sync_jobs WHERE job = $1", &[&job])
                .await
                .unwrap();
            row.and_then(|row| row.get::<_, Option<String>>(0))
        })
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

/// On a terminal (a pseudo-terminal from util-linux's `script`), `watch` draws each run's
/// progress as `apply` does and erases it before the run's own line; with stderr a pipe (the
/// test above, a service's log) it draws nothing.
#[test]
fn sync_watch_on_a_terminal_draws_each_runs_progress_and_erases_it_before_its_line() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) to give the watch a terminal");
        return;
    }
    let scratch = Scratch::new("sync-watch-terminal");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let source = start(binary, &scratch.sqlite("source.db"));
    let target = start(binary, &scratch.sqlite("target.db"));
    post(
        &source,
        "Users",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada"}"#,
    );
    let config = watch_job(&scratch, "on-a-terminal", &source, &target, "");
    let command = format!("{binary} sync watch --config {}", config.display());
    let mut script = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut terminal = script.stdout.take().unwrap();
    let (seen, read) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(count) = terminal.read(&mut buffer) {
            if count == 0 || seen.send(buffer[..count].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !String::from_utf8_lossy(&shown).contains("job on-a-terminal: ") {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run's line: {}",
            String::from_utf8_lossy(&shown)
        );
        if let Ok(bytes) = read.recv_timeout(std::time::Duration::from_millis(100)) {
            shown.extend(bytes);
        }
    }
    let _ = script.kill();
    let _ = script.wait();
    let shown = String::from_utf8_lossy(&shown);
    assert!(shown.contains("sync: reading the source..."), "{shown:?}");
    assert!(shown.contains("sync: writing 1/"), "{shown:?}");
    assert!(
        shown.contains("\r\x1b[2Kjob on-a-terminal: "),
        "the progress erased before the run's line: {shown:?}"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A `scimitar serve` node running sync jobs, its log lines kept; killed when dropped.
struct Node {
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(binary: &str, database: &str, config: &std::path::Path) -> Node {
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .arg("--config")
            .arg(config)
            .env("SCIMITAR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        loop {
            let line = lines.next().expect("the node printed its address").unwrap();
            let listening = line.starts_with("scimitar listening on http://");
            log.lock().unwrap().push(line);
            if listening {
                break;
            }
        }
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Node { child, log }
    }

    fn logged(&self, text: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(text))
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// Waits for `check` to hold; 60 seconds is the failure bound, far above what any of this
/// takes (a lease of 5 seconds to expire included); nothing here asserts a speed.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The README's case: an IdP pushes into a Scimitar (the source), and a job fans its changes
/// out to two targets continuously, run by `scimitar serve` from its config on two nodes that
/// share one PostgreSQL database. Exactly one node runs the job (the lease row names it, and it
/// logs that it took the job); SIGKILLed, it cannot give the lease up, and the other node takes
/// the job over once the lease expires, so a later change still reaches both targets. SIGTERM
/// then stops the survivor cleanly, giving the lease up.
#[test]
fn sync_jobs_run_inside_serve_on_one_node_at_a_time_and_another_takes_over_when_it_dies() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is unset");
        return;
    };
    let scratch = Scratch::new("sync-serve");
    let postgres = ScratchPostgres::create(&server, "sync_serve");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let source = start(binary, &scratch.sqlite("source.db"));
    let first = start(binary, &scratch.sqlite("first.db"));
    let second = start(binary, &scratch.sqlite("second.db"));
    let ada = post(
        &source,
        "Users",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada"}"#,
    );
    for (name, server) in [("source", &source), ("first", &first), ("second", &second)] {
        std::fs::write(scratch.path(&format!("{name}-token")), &server.token).unwrap();
    }
    std::fs::write(
        scratch.path("fan-out.toml"),
        format!(
            "job = \"idp-fan-out\"\nstate_database = \"{}\"\n\
             [source]\ntype = \"scim\"\nurl = \"http://{}/scim/v2\"\ntoken_file = \"{}\"\n\
             follow_changes = true\n\
             [[targets]]\nname = \"first\"\nurl = \"http://{}/scim/v2\"\ntoken_file = \"{}\"\n\
             [[targets]]\nname = \"second\"\nurl = \"http://{}/api/2.0/preview/scim/v2\"\n\
             token_file = \"{}\"\nprofile = \"databricks\"\n\
             [watch]\ninterval_seconds = 3600\nmax_backoff_seconds = 2\nlease_seconds = 5\n",
            postgres.url,
            source.address,
            scratch.path("source-token").display(),
            first.address,
            scratch.path("first-token").display(),
            second.address,
            scratch.path("second-token").display(),
        ),
    )
    .unwrap();
    // A relative path: read from the config file's directory.
    let config = scratch.path("scimitar.toml");
    std::fs::write(&config, "sync_jobs = [\"fan-out.toml\"]\n").unwrap();
    let one = Node::start(binary, &postgres.url, &config);
    let two = Node::start(binary, &postgres.url, &config);

    let has_user = |server: &Server| {
        get(server, "Users?filter=userName%20eq%20%22ada%22")["totalResults"].as_u64() == Some(1)
    };
    eventually("ada at both targets", || {
        has_user(&first) && has_user(&second)
    });
    let holder_pid = || {
        postgres.lease_owner("idp-fan-out").and_then(|owner| {
            owner
                .split('/')
                .nth(1)
                .and_then(|pid| pid.parse::<u32>().ok())
        })
    };
    let holder = holder_pid().expect("a node holds the job's lease");
    let (holding, standing_by) = if holder == one.child.id() {
        (one, two)
    } else {
        assert_eq!(holder, two.child.id(), "the holder is one of the nodes");
        (two, one)
    };
    assert!(
        holding.logged("took the job's lease"),
        "{}",
        holding.log_text()
    );
    assert!(
        !standing_by.logged("took the job's lease"),
        "{}",
        standing_by.log_text()
    );

    let mut holding = holding;
    holding.child.kill().unwrap(); // SIGKILL: the lease is not given up
    holding.child.wait().unwrap();
    post(
        &source,
        "Groups",
        &format!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"ops","members":[{{"value":"{ada}"}}]}}"#
        ),
    );
    let has_ops = |server: &Server| {
        get(server, "Groups?filter=displayName%20eq%20%22ops%22")["totalResults"].as_u64()
            == Some(1)
    };
    eventually("ops at both targets after the takeover", || {
        has_ops(&first) && has_ops(&second)
    });
    assert!(
        standing_by.logged("took the job's lease"),
        "{}",
        standing_by.log_text()
    );
    assert_eq!(holder_pid(), Some(standing_by.child.id()));

    let mut survivor = standing_by;
    let terminated = Command::new("kill")
        .args(["-TERM", &survivor.child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let mut status = None;
    eventually("the node exits on SIGTERM", || {
        status = survivor.child.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success(), "{}", survivor.log_text());
    assert_eq!(
        postgres.lease_owner("idp-fan-out"),
        None,
        "the lease was given up"
    );
    assert!(
        survivor.logged("gave the job's lease up"),
        "{}",
        survivor.log_text()
    );
    let log = survivor.log_text();
    for token in [&source.token, &first.token, &second.token] {
        assert!(!log.contains(token.as_str()), "a token in the log");
    }

    // The same job from the command line: a section per target, or the one `--target` names.
    let plan = |extra: &[&str]| {
        let output = Command::new(binary)
            .args(["sync", "plan", "--json", "--config"])
            .arg(scratch.path("fan-out.toml"))
            .args(extra)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
        (output.status.code(), report)
    };
    let (code, every) = plan(&[]);
    assert_eq!(code, Some(0), "{every}");
    let targets: Vec<_> = every["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].clone())
        .collect();
    assert_eq!(targets, ["first", "second"], "{every}");
    let (code, one) = plan(&["--target", "second"]);
    assert_eq!(code, Some(0), "{one}");
    assert_eq!(one["targets"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one["targets"][0]["target"], "second", "{one}");
    let unknown = Command::new(binary)
        .args(["sync", "plan", "--config"])
        .arg(scratch.path("fan-out.toml"))
        .args(["--target", "third"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    let refusal = String::from_utf8_lossy(&unknown.stderr);
    assert!(refusal.contains("no target named third"), "{refusal}");
}

/// A sync job file that does not parse stops `serve` before it listens, naming the file.
#[test]
fn serve_refuses_to_start_with_a_sync_job_that_does_not_parse() {
    let scratch = Scratch::new("sync-serve-bad");
    std::fs::write(
        scratch.path("broken.toml"),
        "job = \"x\"\n[source]\ntype = \"ftp\"\n",
    )
    .unwrap();
    let config = scratch.path("scimitar.toml");
    std::fs::write(&config, "sync_jobs = [\"broken.toml\"]\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_scimitar"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--database", &scratch.sqlite("db.sqlite")])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("broken.toml"), "{message}");
    assert!(!message.contains("listening"), "{message}");
}

/// `status` and `resume` find the job, its state database and its quarantine settings in its
/// file: a job never run is active, with no lease holder and no runs, and resuming a job that is
/// not quarantined is refused, naming it.
/// A job of several targets: `status` shows each target's quarantine and runs (each under its
/// own state key), `--target` picks one, and `resume` names the target it refuses.
#[test]
fn sync_status_and_resume_look_at_each_target_of_a_job() {
    let scratch = Scratch::new("sync-status-targets");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let config = scratch.path("job.toml");
    std::fs::write(
        &config,
        format!(
            "job = \"hr\"\nstate_database = \"{}\"\n[source]\ntype = \"file\"\npath = \"x.csv\"\n\
             [[targets]]\nname = \"a\"\nurl = \"http://127.0.0.1:9/scim/v2\"\n\
             [[targets]]\nname = \"b\"\nurl = \"http://127.0.0.1:9/other/scim/v2\"\n",
            scratch.sqlite("state.db")
        ),
    )
    .unwrap();
    let sync = |args: &[&str]| {
        Command::new(binary)
            .arg("sync")
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let status = sync(&["status", "--json"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["job"], "hr", "{status}");
    let targets: Vec<_> = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|target| (target["target"].clone(), target["status"].clone()))
        .collect();
    assert_eq!(
        targets,
        [
            (serde_json::json!("a"), serde_json::json!("active")),
            (serde_json::json!("b"), serde_json::json!("active"))
        ]
    );
    let one = sync(&["status", "--json", "--target", "b"]);
    let one: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one["target"], "b", "{one}");
    assert_eq!(one["status"], "active", "{one}");

    let resume = sync(&["resume", "--target", "b"]);
    assert_eq!(resume.status.code(), Some(1));
    let message = String::from_utf8_lossy(&resume.stderr);
    assert!(
        message.contains("job hr target b is not quarantined"),
        "{message}"
    );
    let resume = sync(&["resume"]);
    let message = String::from_utf8_lossy(&resume.stderr);
    assert!(
        message.contains("no target of job hr is quarantined"),
        "{message}"
    );
    let unknown = sync(&["status", "--target", "zz"]);
    assert_eq!(unknown.status.code(), Some(1));
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(message.contains("no target named zz"), "{message}");
}

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

/// Runs `scimitar` with `args`, returning its exit status and stdout (stderr on failure to
/// start is the test's panic).
fn scimitar(binary: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(binary).args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The operator's "plan against production, try it on a sandbox first" workflow: a plan saved
/// against `prod` is applied to a sandbox that mirrors it, refused at `prod` once the source
/// changed (nothing written there, exit 1, the run recorded as stopped with an audit event),
/// and applied to `prod` after planning and saving again.
#[test]
fn a_plan_saved_against_production_is_tried_on_a_sandbox_and_applied_only_while_it_holds() {
    let scratch = Scratch::new("sync-reviewed");
    let binary = env!("CARGO_BIN_EXE_scimitar");
    let source = start(binary, &scratch.sqlite("source.db"));
    let sandbox = start(binary, &scratch.sqlite("sandbox.db"));
    let prod = start(binary, &scratch.sqlite("prod.db"));
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
    for (name, server) in [("source", &source), ("sandbox", &sandbox), ("prod", &prod)] {
        std::fs::write(scratch.path(&format!("{name}-token")), &server.token).unwrap();
    }
    let state = scratch.sqlite("state.db");
    // The state database holds an account, whose audit trail the job's events join.
    let (code, _, stderr) = scimitar(binary, &["token", "create", "--database", &state]);
    assert_eq!(code, Some(0), "{stderr}");
    let config = scratch.path("job.toml");
    std::fs::write(
        &config,
        format!(
            "job = \"reviewed\"\nstate_database = \"{state}\"\n\
             [source]\ntype = \"scim\"\nurl = \"http://{}/scim/v2\"\ntoken_file = \"{}\"\n\
             [[targets]]\nname = \"sandbox\"\nurl = \"http://{}/scim/v2\"\ntoken_file = \"{}\"\n\
             [[targets]]\nname = \"prod\"\nurl = \"http://{}/scim/v2\"\ntoken_file = \"{}\"\n\
             [policy]\ngroups = [\"eng\"]\n",
            source.address,
            scratch.path("source-token").display(),
            sandbox.address,
            scratch.path("sandbox-token").display(),
            prod.address,
            scratch.path("prod-token").display(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let saved = scratch.path("prod.plan.json");
    let saved = saved.to_str().unwrap();
    let users_named = |server: &Server, name: &str| {
        get(
            server,
            &format!("Users?filter=userName%20eq%20%22{name}%22"),
        )["totalResults"]
            .as_u64()
            .unwrap()
    };

    // One target's plan only, and each flag with its own verb.
    let (code, _, stderr) = scimitar(
        binary,
        &["sync", "plan", "--config", config, "--out", saved],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("name one of job reviewed's targets"),
        "{stderr}"
    );
    let (code, _, stderr) = scimitar(
        binary,
        &["sync", "apply", "--config", config, "--out", saved],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--out is for `plan`"), "{stderr}");

    let (code, stdout, stderr) = scimitar(
        binary,
        &[
            "sync", "plan", "--config", config, "--target", "prod", "--out", saved,
        ],
    );
    assert_eq!(code, Some(2), "{stdout} {stderr}");
    assert!(stdout.contains("+ create user ada"), "{stdout}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
    assert_eq!(file["target"], "prod");
    let changes: Vec<&str> = file["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert!(
        changes
            .iter()
            .any(|line| line.starts_with("create user ada")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|line| line.starts_with("create group eng")),
        "{changes:?}"
    );
    assert_eq!(users_named(&prod, "ada"), 0, "plan writes nothing");

    // The sandbox mirrors production (both empty): the reviewed plan applies there.
    let (code, stdout, stderr) = scimitar(
        binary,
        &[
            "sync", "apply", "--config", config, "--target", "sandbox", "--plan", saved,
        ],
    );
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert_eq!(users_named(&sandbox, "ada"), 1);

    // The source changes before production is applied: production's plan is no longer the
    // reviewed one, so nothing is written there.
    let cy = post(
        &source,
        "Users",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"cy"}"#,
    );
    let eng = get(&source, "Groups?filter=displayName%20eq%20%22eng%22")["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut stream = std::net::TcpStream::connect(&source.address).unwrap();
    let body = format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"add","path":"members","value":[{{"value":"{cy}"}}]}}]}}"#
    );
    write!(
        stream,
        "PATCH /scim/v2/Groups/{eng} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        source.address,
        source.token,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.1 204"),
        "{response}"
    );
    let (code, stdout, stderr) = scimitar(
        binary,
        &[
            "sync", "apply", "--config", config, "--target", "prod", "--plan", saved,
        ],
    );
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stdout.contains("STOPPED: the plan differs from the reviewed plan"),
        "{stdout}"
    );
    // cy's create and membership, the first of them (in the lines' order) named.
    assert!(
        stdout.contains("(2 changes not reviewed, 0 reviewed changes not planned)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not reviewed: add to group eng"),
        "{stdout}"
    );
    assert_eq!(users_named(&prod, "ada"), 0, "nothing written to prod");
    assert_eq!(users_named(&prod, "cy"), 0);
    let (code, stdout, _) = scimitar(
        binary,
        &["sync", "status", "--config", config, "--target", "prod"],
    );
    assert_eq!(code, Some(0));
    assert!(stdout.contains("#1 stopped"), "{stdout}");
    let (code, stdout, stderr) = scimitar(
        binary,
        &[
            "audit",
            "query",
            "--database",
            &state,
            "--action-name",
            "syncReviewedPlanMismatch",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("\"status_code\":409"), "{stdout}");

    // Planned and saved again, reviewed again: production takes it.
    let (code, _, stderr) = scimitar(
        binary,
        &[
            "sync", "plan", "--config", config, "--target", "prod", "--out", saved,
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stdout, stderr) = scimitar(
        binary,
        &[
            "sync", "apply", "--config", config, "--target", "prod", "--plan", saved,
        ],
    );
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert_eq!(users_named(&prod, "ada"), 1);
    assert_eq!(users_named(&prod, "cy"), 1);

    // A file that is not a saved plan is refused before anything runs.
    std::fs::write(saved, "{\"job\": \"reviewed\"}").unwrap();
    let (code, _, stderr) = scimitar(
        binary,
        &[
            "sync", "apply", "--config", config, "--target", "prod", "--plan", saved,
        ],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not a plan saved by"), "{stderr}");
}

#[test]
fn a_job_whose_name_holds_a_slash_is_refused_with_a_clear_error() {
    let scratch = Scratch::new("sync-slash");
    let path = scratch.path("job.toml");
    std::fs::write(
        &path,
        format!(
            "job = \"a/b\"\nstate_database = \"{}\"\n[source]\ntype = \"file\"\n\
             path = \"x.csv\"\n[target]\nurl = \"http://127.0.0.1:9/scim/v2\"\n",
            scratch.sqlite("state.db")
        ),
    )
    .unwrap();
    for verb in ["plan", "apply"] {
        let output = Command::new(env!("CARGO_BIN_EXE_scimitar"))
            .args(["sync", verb, "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains("job name \"a/b\""), "{message}");
        assert!(message.contains("may not hold `/`"), "{message}");
    }
    // Named by `--job`, as `status` takes it, the same.
    let output = Command::new(env!("CARGO_BIN_EXE_scimitar"))
        .args(["sync", "status", "--job", "a/b", "--database"])
        .arg(scratch.sqlite("state.db"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("may not hold `/`"));
}
