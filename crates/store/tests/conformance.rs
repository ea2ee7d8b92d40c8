//! The storage conformance suite, one test per case and backend (`sqlite::case`,
//! `postgres::case`), and the PostgreSQL checks that need a server of their own.

#![allow(clippy::panic, clippy::unwrap_used)]

scimitar_store::conformance_tests!();

/// Where the server's autovacuum is off, a node analyzes its tables itself once they have
/// changed enough, so filters keep their index plans as a directory grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statistics_are_kept_current_when_autovacuum_is_off() {
    let Some(mut stores) = scimitar_store::conformance::Stores::postgres() else {
        return;
    };
    let _store = stores.fresh().await;
    let (client, connection) = tokio_postgres::connect(stores.location(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect: {error}"));
    tokio::spawn(connection);
    let autovacuum: String = client
        .query_one("SHOW autovacuum", &[])
        .await
        .map(|row| row.get(0))
        .unwrap_or_default();
    if autovacuum != "off" {
        eprintln!("skipped: this server's autovacuum is on, which keeps statistics itself");
        return;
    }
    client
        .batch_execute(
            "INSERT INTO accounts (id, name, created) VALUES ('a', 'a', 0); \
             INSERT INTO principals (account_id, id, kind, user_name_lower, attributes, created, last_modified, version) \
             SELECT 'a', 'u' || n, 'User', 'user' || n, '{}', 0, 0, 1 FROM generate_series(1, 200) AS n",
        )
        .await
        .unwrap_or_else(|error| panic!("cannot insert: {error}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let analyzed: bool = client
            .query_one(
                "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'principals'",
                &[],
            )
            .await
            .map(|row| row.get(0))
            .unwrap_or(false);
        if analyzed {
            break;
        }
        if std::time::Instant::now() > deadline {
            panic!("principals was not analyzed within a minute of 200 inserts");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A database made before migration 4 (memberships and email rows clustered on their key)
/// keeps every membership and email through it, and what storage answers from them.
#[tokio::test]
#[allow(clippy::unwrap_used)]
async fn sqlite_migration_4_keeps_memberships_and_emails() {
    use scimitar_domain::{AccountId, PrincipalId};
    use scimitar_store::migrations::SQLITE_MIGRATIONS;
    use scimitar_store::sqlite::SqliteStore;
    use scimitar_store::Store;

    let directory =
        std::env::temp_dir().join(format!("scimitar-migration-4-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("db.sqlite");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .unwrap();
        connection
            .execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)")
            .unwrap();
        for (version, statements) in SQLITE_MIGRATIONS
            .iter()
            .filter(|(version, _)| *version <= 3)
        {
            connection.execute_batch(statements).unwrap();
            connection
                .execute("INSERT INTO schema_migrations VALUES (?1, 0)", [version])
                .unwrap();
        }
        connection
            .execute_batch(
                r#"
INSERT INTO accounts (id, name, created) VALUES ('a', 'default', 0);
INSERT INTO principals (account_id, id, kind, user_name_lower, display_name, display_name_lower, attributes, created, last_modified, version)
    VALUES ('a', 'u1', 'User', 'ada@example.com', 'Ada', 'ada', '{"userName":"ada@example.com","emails":[{"value":"Ada@Example.com"},{"value":"a2@example.com"}]}', 0, 0, 1);
INSERT INTO principals (account_id, id, kind, display_name, display_name_lower, attributes, created, last_modified, version)
    VALUES ('a', 'g1', 'Group', 'Team', 'team', '{"displayName":"Team"}', 0, 0, 1);
INSERT INTO principal_emails (account_id, principal_id, position, value_lower, type, is_primary)
    VALUES ('a', 'u1', 0, 'ada@example.com', 'work', 1), ('a', 'u1', 1, 'a2@example.com', NULL, 0);
INSERT INTO memberships (account_id, group_id, member_id, member_kind, created)
    VALUES ('a', 'g1', 'u1', 'User', 0);
"#,
            )
            .unwrap();
    }
    let store = SqliteStore::open(&path.to_string_lossy()).await.unwrap();
    let account = AccountId::new("a");
    let members = store
        .members(&account, &[PrincipalId::new("g1")])
        .await
        .unwrap();
    let ids: Vec<&str> = members[&PrincipalId::new("g1")]
        .iter()
        .map(|member| member.id.as_str())
        .collect();
    assert_eq!(ids, ["u1"]);
    let groups = store
        .groups_of(&account, &[PrincipalId::new("u1")])
        .await
        .unwrap();
    assert_eq!(groups[&PrincipalId::new("u1")][0].id.as_str(), "g1");
    drop(store);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let emails: Vec<(i64, String)> = connection
        .prepare("SELECT position, value_lower FROM principal_emails ORDER BY position")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        emails,
        [
            (0, "ada@example.com".to_string()),
            (1, "a2@example.com".to_string())
        ]
    );
    for table in ["memberships", "principal_emails"] {
        let sql: String = connection
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .unwrap();
        assert!(sql.ends_with("WITHOUT ROWID"), "{sql}");
    }
    let version: i64 = connection
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(
        version,
        scimitar_store::migrations::latest(SQLITE_MIGRATIONS)
    );
    drop(connection);
    let _ = std::fs::remove_dir_all(&directory);
}
