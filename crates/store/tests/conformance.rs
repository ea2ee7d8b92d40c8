//! Runs the storage conformance suite against SQLite, and against PostgreSQL when
//! `TEST_DATABASE_URL` names a server to create scratch databases on.

#![allow(clippy::panic)]

use scimitar_store::conformance::run_all;
use scimitar_store::postgres::{scratch, PostgresStore};
use scimitar_store::sqlite::SqliteStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_storage_conformance_suite() {
    let directory =
        std::env::temp_dir().join(format!("scimitar-conformance-{}", std::process::id()));
    let counter = AtomicUsize::new(0);
    run_all(|| {
        let index = counter.fetch_add(1, Ordering::SeqCst);
        let path = directory.join(format!("store-{index}.db"));
        let _ = std::fs::remove_file(&path);
        async move {
            match SqliteStore::open(&path.to_string_lossy()).await {
                Ok(store) => store,
                Err(error) => panic!("cannot open {}: {error}", path.display()),
            }
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_storage_conformance_suite() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is unset (set it to a PostgreSQL server URL, e.g. postgres://postgres@127.0.0.1:5432/test, to run the suite on PostgreSQL)");
        return;
    };
    let counter = AtomicUsize::new(0);
    let created = ScratchDatabases {
        server: server.clone(),
        names: Mutex::new(Vec::new()),
    };
    run_all(|| {
        // One database per case: the cases share account ids, and a fresh database is what the
        // SQLite run gets too.
        let name = format!(
            "scimitar_conformance_{}_{}",
            std::process::id(),
            counter.fetch_add(1, Ordering::SeqCst)
        );
        if let Ok(mut names) = created.names.lock() {
            names.push(name.clone());
        }
        let server = server.clone();
        async move {
            let url = match scratch::create(&server, &name).await {
                Ok(url) => url,
                Err(error) => panic!("cannot create the database {name} on {server}: {error}"),
            };
            match PostgresStore::connect(&url, 8).await {
                Ok(store) => store,
                Err(error) => panic!("cannot open {url}: {error}"),
            }
        }
    })
    .await;
}

/// The scratch databases a run created, dropped when the run ends, whether it passed or a case
/// panicked.
struct ScratchDatabases {
    server: String,
    names: Mutex<Vec<String>>,
}

impl Drop for ScratchDatabases {
    fn drop(&mut self) {
        let names = self
            .names
            .lock()
            .map(|names| names.clone())
            .unwrap_or_default();
        let server = self.server.clone();
        // Drop is synchronous and may run inside the test's runtime: the databases are dropped
        // on a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            for name in names {
                if let Err(error) = runtime.block_on(scratch::drop(&server, &name)) {
                    eprintln!("could not drop the test database {name}: {error}");
                }
            }
        })
        .join();
    }
}
