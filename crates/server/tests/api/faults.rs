//! Honest answers while the database fails: 503 with `Retry-After` when PostgreSQL cannot be
//! reached or SQLite's disk is full (and `/readyz` says so), service again once it is back, and
//! a write whose commit confirmation was lost answered by what the database actually holds.
//!
//! PostgreSQL is reached through a TCP proxy the test controls, which can refuse and cut every
//! connection, or forward one COMMIT and then drop the connection before its answer. SQLite's
//! database lives on a small tmpfs the test fills.

use crate::support::*;
use reqwest::Method;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Whether this run tests PostgreSQL (the proxy tests need it).
fn on_postgres() -> bool {
    std::env::var("SCIMITAR_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// A TCP proxy in front of PostgreSQL.
struct Proxy {
    address: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    /// New connections are closed at once, as if the server were down.
    refusing: AtomicBool,
    /// Bytes that arm a connection: the next COMMIT it sends is forwarded, its answer never
    /// reaches the client, and the connection is dropped.
    lose_commit_after: Mutex<Option<Vec<u8>>>,
    connections: Mutex<Vec<AbortHandle>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.refusing.load(Ordering::SeqCst) {
                    continue; // dropped: closed
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let task = tokio::spawn(forward(client, server, shared.clone()));
                shared.connections.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { address, state }
    }

    /// The database is gone: every open connection is cut and new ones are refused.
    fn cut(&self) {
        self.state.refusing.store(true, Ordering::SeqCst);
        for connection in self.state.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.state.refusing.store(false, Ordering::SeqCst);
    }

    /// The next COMMIT on a connection that sent `marker` reaches the database, but its answer
    /// is lost with the connection.
    fn lose_commit_after(&self, marker: &str) {
        *self.state.lose_commit_after.lock().unwrap() = Some(marker.as_bytes().to_vec());
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

async fn forward(client: TcpStream, server: TcpStream, state: Arc<ProxyState>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let muted = Arc::new(AtomicBool::new(false));
    let answers_muted = muted.clone();
    let answers = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let Ok(read) = server_read.read(&mut buffer).await else {
                return;
            };
            if read == 0 || answers_muted.load(Ordering::SeqCst) {
                return;
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    });
    let mut armed = false;
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(read) = client_read.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let bytes = &buffer[..read];
        if !armed {
            let marker = state.lose_commit_after.lock().unwrap().clone();
            armed = marker.is_some_and(|marker| contains(bytes, &marker));
        }
        if armed && contains(bytes, b"COMMIT") {
            state.lose_commit_after.lock().unwrap().take();
            muted.store(true, Ordering::SeqCst);
            let _ = server_write.write_all(bytes).await;
            // Let PostgreSQL commit, then drop both sides without its answer.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            break;
        }
        if server_write.write_all(bytes).await.is_err() {
            break;
        }
    }
    answers.abort();
}

/// An app whose PostgreSQL connections go through a proxy.
async fn app_behind_proxy() -> (TestApp, Proxy) {
    let (database, url) = TestDatabase::fresh().await;
    let TestDatabase::Postgres { server, .. } = &database else {
        panic!("a PostgreSQL database");
    };
    let authority = server
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in TEST_DATABASE_URL")
        .to_string();
    let upstream = tokio::net::lookup_host(&authority)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    let proxied = url.replacen(&authority, &proxy.address.to_string(), 1);
    let app = spawn_app_on(database, &proxied).await;
    (app, proxy)
}

async fn readiness(app: &TestApp) -> Reply {
    read(
        app.client
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn assert_retry_later(reply: &Reply) {
    reply.assert_error(503, None);
    assert_eq!(
        reply.header("retry-after"),
        Some("5"),
        "{:?}",
        reply.headers
    );
}

#[tokio::test]
async fn with_postgresql_unreachable_every_call_is_a_503_to_retry_and_service_resumes() {
    if !on_postgres() {
        return; // SQLite has no server to lose; its disk fills below
    }
    let (app, proxy) = app_behind_proxy().await;
    let before = app.create_user("before@example.com").await;
    proxy.cut();

    let read_reply = app.get(&format!("/Users/{}", str_of(&before, "id"))).await;
    assert_retry_later(&read_reply);
    let list = app.get("/Users").await;
    assert_retry_later(&list);
    let write = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "during@example.com"}),
        )
        .await;
    assert_retry_later(&write);
    assert!(
        write.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("retry")),
        "{}",
        write.body
    );
    // The Databricks REST APIs answer in their own shape, with the code the SDKs retry.
    let catalogs = read(
        app.request(Method::GET, "/api/2.1/unity-catalog/catalogs")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(catalogs.status, 503, "{}", catalogs.body);
    assert_eq!(catalogs.body["error_code"], "TEMPORARILY_UNAVAILABLE");
    assert_eq!(catalogs.header("retry-after"), Some("5"));
    let unready = readiness(&app).await;
    assert_eq!(unready.status, 503, "{}", unready.body);

    proxy.restore();
    let mut resumed = None;
    for _ in 0..50 {
        let reply = app
            .post(
                "/Users",
                json!({"schemas": [USER_SCHEMA], "userName": "after@example.com"}),
            )
            .await;
        if reply.status != 503 {
            resumed = Some(reply);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resumed = resumed.expect("service resumes once the database is back");
    assert_eq!(resumed.status, 201, "{}", resumed.body);
    assert_eq!(readiness(&app).await.status, 200);
    // Nothing of the refused write was kept.
    let during = app
        .get_with(
            "/Users",
            &[("filter", "userName eq \"during@example.com\"")],
        )
        .await;
    assert_eq!(during.total(), 0, "{}", during.body);
}

#[tokio::test]
async fn a_create_whose_commit_answer_is_lost_is_answered_by_what_the_database_holds() {
    if !on_postgres() {
        return; // only a networked database can lose a COMMIT's answer
    }
    let (app, proxy) = app_behind_proxy().await;
    app.create_user("warm-up@example.com").await;
    proxy.lose_commit_after("lost-answer@example.com");
    let created = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "lost-answer@example.com"}),
        )
        .await;
    assert!(
        proxy.state.lose_commit_after.lock().unwrap().is_none(),
        "the proxy lost the COMMIT's answer"
    );
    // The commit took effect, so the client is told it succeeded, with the stored user.
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    let stored = app.get(&format!("/Users/{id}")).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.body["userName"], "lost-answer@example.com");
    let listed = app
        .get_with(
            "/Users",
            &[("filter", "userName eq \"lost-answer@example.com\"")],
        )
        .await;
    assert_eq!(listed.total(), 1, "{}", listed.body);
}

/// A tmpfs of `megabytes`, unmounted when dropped.
struct SmallDisk {
    directory: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let directory = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(directory.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "this test mounts a small tmpfs to fill SQLite's disk, which needs root \
             (CAP_SYS_ADMIN)"
        );
        SmallDisk { directory }
    }

    fn path(&self) -> &std::path::Path {
        self.directory.path()
    }

    /// Writes a file until the disk refuses more.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.directory.path())
            .status();
    }
}

#[tokio::test]
async fn with_sqlite_disk_full_writes_are_503_reads_still_work_and_readyz_reports_it() {
    let disk = SmallDisk::mount(16);
    let database = disk.path().join("db");
    std::fs::create_dir(&database).unwrap();
    let url = format!("sqlite://{}/db.sqlite", database.display());
    let app = spawn_app_on(
        TestDatabase::Sqlite {
            _directory: tempfile::tempdir().unwrap(),
        },
        &url,
    )
    .await;
    let before = app.create_user("before@example.com").await;
    let filler = disk.fill();

    // Users near the size limit, so each needs new pages, which the full disk cannot give.
    let emails: Vec<_> = (0..50)
        .map(|n| json!({"value": format!("{n}{}@example.com", "x".repeat(230))}))
        .collect();
    let mut refused = None;
    for attempt in 0..200 {
        let reply = app
            .post(
                "/Users",
                json!({"schemas": [USER_SCHEMA], "userName": format!("full{attempt}@example.com"),
                       "displayName": "x".repeat(250), "emails": emails}),
            )
            .await;
        if reply.status != 201 {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a write fails once the disk is full");
    assert_retry_later(&refused);
    let read_reply = app.get(&format!("/Users/{}", str_of(&before, "id"))).await;
    assert_eq!(read_reply.status, 200, "{}", read_reply.body);
    let unready = readiness(&app).await;
    assert_eq!(unready.status, 503, "{}", unready.body);
    assert_eq!(unready.body["reason"], "writes to the database are failing");

    std::fs::remove_file(filler).unwrap();
    let after = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "after@example.com"}),
        )
        .await;
    assert_eq!(after.status, 201, "{}", after.body);
    assert_eq!(readiness(&app).await.status, 200);
    drop(app);
}
