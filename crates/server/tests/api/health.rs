//! Liveness and readiness: `/healthz` says the process answers, `/readyz` that its database
//! answers and has the schema this build needs.

use crate::support::*;

#[tokio::test]
async fn a_server_over_a_current_database_is_alive_and_ready() {
    let app = spawn_app().await;
    let alive = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), 200);
    let ready = read(
        app.client
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["status"], "ready");
}

#[tokio::test]
async fn a_database_missing_a_migration_makes_the_server_unready_with_a_reason() {
    // SQLite whatever the backend selected: the test edits the schema record directly.
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("db.sqlite");
    let url = format!("sqlite://{}", path.display());
    let app = spawn_app_on(
        TestDatabase::Sqlite {
            _directory: directory,
        },
        &url,
    )
    .await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute(
            "DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)",
            [],
        )
        .unwrap();
    let reply = read(
        app.client
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["status"], "unavailable");
    assert!(
        reply.body["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("schema is at version")),
        "{}",
        reply.body
    );
    let alive = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), 200, "still alive while not ready");
}
