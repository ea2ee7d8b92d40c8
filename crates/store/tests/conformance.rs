//! Runs the storage conformance suite against SQLite.

#![allow(clippy::panic)]

use scimitar_store::conformance::run_all;
use scimitar_store::sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_storage_conformance_suite() {
    let directory =
        std::env::temp_dir().join(format!("scimitar-conformance-{}", std::process::id()));
    let counter = std::sync::atomic::AtomicUsize::new(0);
    run_all(|| {
        let index = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
