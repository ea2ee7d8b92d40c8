//! Databases made by an earlier build open and serve with this one. Each fixture in
//! `tests/fixtures` is a dump of a database that the build before the shared SQL write path
//! made (see `tests/fixtures/README.md`); loaded into a fresh database, it must open (applying
//! whatever migrations came since) and read back exactly as it was written: principals,
//! memberships, tokens by their digest, securables, grants, workspace objects and ACLs, the
//! access snapshot and every access-log entry. A new write must then follow on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_access::{AclEntry, ObjectType, PermissionLevel, Privilege, SecurableType};
use scimitar_domain::{AccountId, Principal, PrincipalId, PrincipalKind, Timestamp, WorkspaceId};
use scimitar_store::{AccessEvent, Change, GrantRow, Store};
use serde_json::json;

const ACCOUNT: &str = "7f3a2c10-acct";
const T0: i64 = 1_700_000_000_000_000;

fn id(text: &str) -> PrincipalId {
    PrincipalId::new(text)
}

async fn member_ids(store: &dyn Store, group: &str) -> Vec<String> {
    let account = AccountId::new(ACCOUNT);
    let members = store.members(&account, &[id(group)]).await.unwrap();
    members[&id(group)]
        .iter()
        .map(|member| member.id.to_string())
        .collect()
}

/// Everything the fixture's account holds, read through the store.
async fn reads_back_as_written(store: &dyn Store) {
    let account = AccountId::new(ACCOUNT);
    assert_eq!(store.ready().await, Ok(()));
    let accounts = store.accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, account);
    assert_eq!(accounts[0].created, Timestamp::from_micros(T0));
    assert_eq!(
        store.workspaces(&account).await.unwrap()[0].id.as_str(),
        "1000000000000001"
    );

    // Every principal was in the account's one workspace before assignments existed, and
    // stays so: each is assigned there, the members of `admins` as ADMIN; the built-in groups
    // belong to every workspace without assignment.
    let snapshot = store.access_snapshot(&account).await.unwrap();
    let assigned: Vec<(&str, &str)> = snapshot
        .assignments
        .iter()
        .map(|(workspace, principal, permission)| {
            assert_eq!(workspace.as_str(), "1000000000000001");
            (principal.as_str(), permission.as_str())
        })
        .collect();
    assert_eq!(
        assigned,
        [
            ("g-all", "USER"),
            ("g-eng", "USER"),
            ("sp-ci", "USER"),
            ("u-admin", "ADMIN"),
            ("u-alice", "ADMIN"),
            ("u-bob", "USER"),
        ]
    );

    // Principals, field by field where it matters; the deleted one is gone.
    let principals: Vec<Principal> = store.principals_page(&account, None, 100).await.unwrap();
    let ids: Vec<&str> = principals.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["g-admins", "g-all", "g-eng", "g-users", "sp-ci", "u-admin", "u-alice", "u-bob"]
    );
    let alice = store
        .principal_by_name(&account, PrincipalKind::User, "ALICE@example.com")
        .await
        .unwrap()
        .expect("userName found ignoring case");
    assert_eq!(alice.id, id("u-alice"));
    assert!(alice
        .password_hash
        .as_deref()
        .unwrap()
        .starts_with("$argon2id$"));
    assert_eq!(
        alice.attributes["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
            ["costCenter"],
        json!("R&D ✓")
    );
    assert_eq!(alice.created, Timestamp::from_micros(T0 + 1));
    let bob = store
        .principal(&account, &id("u-bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.version, 2);
    assert_eq!(bob.attributes["active"], json!(false));
    assert_eq!(bob.attributes["displayName"], json!("Bob B."));
    assert!(store
        .principal(&account, &id("u-carol"))
        .await
        .unwrap()
        .is_none());
    let admins_group = store
        .principal_by_name(&account, PrincipalKind::Group, "Admins")
        .await
        .unwrap()
        .unwrap();
    assert!(admins_group.system);
    let ci = store
        .principal_by_name(&account, PrincipalKind::ServicePrincipal, "9F0C-CI")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ci.id, id("sp-ci"));

    // Memberships, direct and inherited.
    assert_eq!(member_ids(store, "g-admins").await, ["u-admin", "u-alice"]);
    assert_eq!(member_ids(store, "g-eng").await, ["u-alice"]);
    assert_eq!(member_ids(store, "g-all").await, ["g-eng", "sp-ci"]);
    assert_eq!(
        member_ids(store, "g-users").await,
        ["sp-ci", "u-admin", "u-alice", "u-bob"]
    );
    let groups = store.groups_of(&account, &[id("u-alice")]).await.unwrap();
    let mut seen: Vec<(String, bool)> = groups[&id("u-alice")]
        .iter()
        .map(|group| (group.id.to_string(), group.direct))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("g-admins".to_string(), true),
            ("g-all".to_string(), false),
            ("g-eng".to_string(), true),
            ("g-users".to_string(), true)
        ]
    );
    let memberships = store.memberships_page(&account, None, 100).await.unwrap();
    assert_eq!(memberships.len(), 9);

    // Tokens authenticate by the digest of their secret.
    let admin_token = store
        .token_by_digest("5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8")
        .await
        .unwrap()
        .expect("the first admin's token");
    assert_eq!(admin_token.principal, id("u-admin"));
    assert_eq!(admin_token.account, account);
    let alice_token = store
        .token_by_digest("9b74c9897bac770ffc029102a200c5de")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice_token.id, "t-alice");
    assert_eq!(
        alice_token.expires,
        Some(Timestamp::from_micros(1_900_000_000_000_000))
    );
    assert_eq!(store.token_by_digest("not-a-digest").await.unwrap(), None);
    assert_eq!(store.tokens(&account).await.unwrap().len(), 3);

    // Governance: what was dropped, revoked or removed stays so.
    let orders = store
        .securable(&account, SecurableType::Table, "main.sales.orders")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(orders.owner, id("g-eng"));
    let catalogs = store
        .securables(&account, SecurableType::Catalog, None)
        .await
        .unwrap();
    assert_eq!(catalogs.len(), 1);
    assert_eq!(catalogs[0].comment.as_deref(), Some("the main catalog"));
    let snapshot = store.access_snapshot(&account).await.unwrap();
    let names: Vec<&str> = snapshot
        .securables
        .iter()
        .map(|row| row.full_name.as_str())
        .collect();
    assert_eq!(names, ["main", "main.sales", "main.sales.orders"]);
    let grant = |full_name: &str, securable_type, principal: &str, privilege| GrantRow {
        securable_type,
        full_name: full_name.into(),
        principal: id(principal),
        privilege,
    };
    assert_eq!(
        snapshot.grants,
        [
            grant(
                "main",
                SecurableType::Catalog,
                "g-users",
                Privilege::UseCatalog
            ),
            grant(
                "main.sales",
                SecurableType::Schema,
                "g-eng",
                Privilege::Select
            ),
            grant(
                "main.sales",
                SecurableType::Schema,
                "g-eng",
                Privilege::UseSchema
            ),
        ]
    );
    let objects: Vec<(String, Option<&str>, Option<&str>)> = snapshot
        .objects
        .iter()
        .map(|row| {
            (
                format!("{}/{}", row.object_type.as_str(), row.object_id),
                row.directory.as_deref(),
                row.path.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        objects,
        [
            // Objects whose ids clients choose are kept under their workspace (SQLite
            // migration 15, PostgreSQL 12).
            (
                "authorization/tokens/1000000000000001/tokens".to_string(),
                None,
                None
            ),
            ("directories/3".to_string(), None, None),
            ("directories/30".to_string(), None, Some("/Shared")),
            ("files/32".to_string(), Some("30"), Some("/Shared/data.csv")),
            ("jobs/1000000000000001/42".to_string(), None, None),
            (
                "notebooks/31".to_string(),
                Some("30"),
                Some("/Shared/report")
            ),
            ("notebooks/7".to_string(), Some("3"), None),
        ]
    );
    let acl: Vec<(String, AclEntry)> = snapshot
        .acl
        .iter()
        .map(|row| (row.object_id.clone(), row.entry.clone()))
        .collect();
    assert_eq!(
        acl,
        [
            (
                "1000000000000001/tokens".to_string(),
                AclEntry::new(id("g-users"), PermissionLevel::CanUse)
            ),
            (
                "30".to_string(),
                AclEntry::new(id("g-eng"), PermissionLevel::CanManage)
            ),
            (
                "1000000000000001/42".to_string(),
                AclEntry::new(id("g-all"), PermissionLevel::CanView)
            ),
            (
                "1000000000000001/42".to_string(),
                AclEntry::new(id("u-alice"), PermissionLevel::CanManageRun)
            ),
        ]
    );
    // Each account had one workspace, whose tree and objects they all are.
    let workspace = WorkspaceId::new("1000000000000001");
    assert!(snapshot
        .objects
        .iter()
        .all(|row| row.workspace == workspace));
    let tree = store
        .workspace_entries_in(&account, &workspace, Some("30"))
        .await
        .unwrap();
    assert_eq!(tree.len(), 2);
    let shared = store.workspace_entry(&account, &workspace, "/Shared");
    assert_eq!(shared.await.unwrap().unwrap().object_id, "30");
    let job = store.object_workspace(&account, ObjectType::Jobs, "1000000000000001/42");
    assert_eq!(job.await.unwrap(), Some(workspace.clone()));
    assert_eq!(tree[1].language.as_deref(), Some("SQL"));
    // Alice's document entitlements are now the workspace's (migration 12, PostgreSQL 9);
    // the document's own are no longer read.
    let facts = snapshot
        .principals
        .iter()
        .find(|facts| facts.id == id("u-alice"))
        .unwrap();
    assert!(facts.entitlements.is_empty());
    assert!(snapshot.entitlements.contains(&(
        workspace.clone(),
        id("u-alice"),
        vec![
            "workspace-access".to_string(),
            "databricks-sql-access".to_string()
        ]
    )));
    assert_eq!(alice.attributes.get("entitlements"), None);
    assert!(
        !snapshot
            .principals
            .iter()
            .find(|facts| facts.id == id("u-bob"))
            .unwrap()
            .active
    );

    // The `users` group was never written after it was made, so the migration gave it the
    // default entitlements, with a new version and an access-log entry the engine follows.
    // They are its workspace's since entitlements are per workspace.
    let users = store
        .principal_in(&account, &workspace, &id("g-users"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        users.attributes["entitlements"],
        json!([{"value": "workspace-access"}, {"value": "databricks-sql-access"}])
    );
    assert_eq!(users.attributes["displayName"], json!("users"));
    assert_eq!(users.version, 2);
    assert!(users.last_modified > users.created);
    let facts = snapshot
        .principals
        .iter()
        .find(|facts| facts.id == id("g-users"))
        .unwrap();
    assert!(facts.entitlements.is_empty());

    // Every access-log entry reads back, in order, up to the snapshot's position: the last
    // is migration 8's, which named the entitlements as a document then held them.
    let log = store.access_log_after(0, 1_000).await.unwrap();
    assert_eq!(log.len(), 46);
    let mut logged_facts = facts.clone();
    logged_facts.entitlements = vec![
        "workspace-access".to_string(),
        "databricks-sql-access".to_string(),
    ];
    assert_eq!(
        log.last().unwrap().event,
        AccessEvent::PrincipalSaved(logged_facts)
    );
    assert!(log.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!(log.last().unwrap().seq, snapshot.seq);
    let mut kinds: Vec<&str> = log
        .iter()
        .map(|logged| match &logged.event {
            AccessEvent::PrincipalSaved(_) => "principal_saved",
            AccessEvent::PrincipalDeleted { .. } => "principal_deleted",
            AccessEvent::MemberAdded { .. } => "member_added",
            AccessEvent::MemberRemoved { .. } => "member_removed",
            AccessEvent::WorkspaceAssigned { .. } | AccessEvent::WorkspaceDeleted { .. } => {
                "workspace"
            }
            AccessEvent::EntitlementsSet { .. } => "entitlements_set",
            AccessEvent::TokenChanged { .. } => "token_changed",
            AccessEvent::Governance(_) => "governance",
        })
        .collect();
    kinds.dedup();
    assert!(kinds.contains(&"principal_deleted") && kinds.contains(&"member_removed"));
    assert_eq!(
        log.iter()
            .filter(|logged| matches!(logged.event, AccessEvent::Governance(_)))
            .count(),
        19
    );
    assert!(log.iter().any(|logged| logged.event
        == AccessEvent::Governance(scimitar_store::GovernanceChange::RemoveObject {
            object_type: ObjectType::Clusters,
            object_id: "c-1".into(),
        })));

    // A new write follows on: numbered after the old entries, and seen by the next snapshot.
    let mut dana = alice.clone();
    dana.id = id("u-dana");
    dana.attributes = json!({"userName": "dana", "active": true})
        .as_object()
        .unwrap()
        .clone();
    dana.password_hash = None;
    dana.version = 1;
    store
        .apply(
            &account,
            Change::CreatePrincipal {
                principal: dana,
                members: vec![],
                assign_to: None,
            },
        )
        .await
        .unwrap();
    let after = store.access_log_after(snapshot.seq, 10).await.unwrap();
    assert_eq!(after.len(), 2, "saved, and joined users: {after:?}");
    assert!(after[0].seq > snapshot.seq);
    assert!(member_ids(store, "g-users")
        .await
        .contains(&"u-dana".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_of_schema_5_opens_and_reads_back_as_written() {
    let directory = std::env::temp_dir().join(format!("scimitar-existing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("db.sqlite");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(include_str!("fixtures/sqlite-schema-5.sql"))
            .unwrap();
    }
    let store = scimitar_store::sqlite::SqliteStore::open(&path.to_string_lossy())
        .await
        .unwrap();
    reads_back_as_written(&store).await;
    drop(store);
    let _ = std::fs::remove_dir_all(&directory);
}

/// Loads a plain `pg_dump` into a database: its SQL, without psql's meta-commands
/// (`\restrict`), which only psql understands.
async fn load_dump(url: &str, dump: &str) {
    let sql: String = dump
        .lines()
        .filter(|line| !line.starts_with('\\'))
        .map(|line| format!("{line}\n"))
        .collect();
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    client.batch_execute(&sql).await.unwrap();
    drop(client);
    let _ = driver.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_schema_3_opens_and_reads_back_as_written() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!(
            "skipped: TEST_DATABASE_URL is unset (set it to a PostgreSQL server URL, e.g. \
             postgres://postgres@127.0.0.1:5432/test, to run this test on PostgreSQL)"
        );
        return;
    };
    let name = format!("scimitar_existing_{}", std::process::id());
    let url = scimitar_store::postgres::scratch::create(&server, &name)
        .await
        .unwrap();
    load_dump(&url, include_str!("fixtures/postgres-schema-3.sql")).await;
    let store = scimitar_store::postgres::PostgresStore::connect(&url, 2)
        .await
        .unwrap();
    reads_back_as_written(&store).await;
    drop(store);
    scimitar_store::postgres::scratch::drop(&server, &name)
        .await
        .unwrap();
}

/// The fixture with its `users` group written once after it was made (version 2): an admin's
/// write, which the default-entitlements migration leaves as it is.
fn with_users_group_written(dump: &str, row_end: &str, written_row_end: &str) -> String {
    let edited = dump.replacen(row_end, written_row_end, 1);
    assert_ne!(edited, dump, "the fixture's users row was not found");
    edited
}

/// What the default-entitlements migration must not do: give them to a `users` group that an
/// admin has written to, whatever it holds now.
async fn a_written_users_group_is_left_alone(store: &dyn Store) {
    let account = AccountId::new(ACCOUNT);
    let users = store
        .principal_in(
            &account,
            &WorkspaceId::new("1000000000000001"),
            &id("g-users"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users.attributes.get("entitlements"), None);
    assert_eq!(users.version, 2);
    assert_eq!(store.access_log_after(0, 1_000).await.unwrap().len(), 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_users_group_an_admin_wrote_to_keeps_its_entitlements_as_they_are() {
    let directory =
        std::env::temp_dir().join(format!("scimitar-existing-written-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("db.sqlite");
    {
        let dump = with_users_group_written(
            include_str!("fixtures/sqlite-schema-5.sql"),
            "'{\"displayName\":\"users\"}',NULL,1700000000000000,1700000000000000,1);",
            "'{\"displayName\":\"users\"}',NULL,1700000000000000,1700000000000000,2);",
        );
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.execute_batch(&dump).unwrap();
    }
    let store = scimitar_store::sqlite::SqliteStore::open(&path.to_string_lossy())
        .await
        .unwrap();
    a_written_users_group_is_left_alone(&store).await;
    drop(store);
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_users_group_an_admin_wrote_to_keeps_its_entitlements_as_they_are() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is unset");
        return;
    };
    let name = format!("scimitar_existing_written_{}", std::process::id());
    let url = scimitar_store::postgres::scratch::create(&server, &name)
        .await
        .unwrap();
    let dump = with_users_group_written(
        include_str!("fixtures/postgres-schema-3.sql"),
        "'{\"displayName\":\"users\"}', NULL, 1700000000000000, 1700000000000000, 1);",
        "'{\"displayName\":\"users\"}', NULL, 1700000000000000, 1700000000000000, 2);",
    );
    load_dump(&url, &dump).await;
    let store = scimitar_store::postgres::PostgresStore::connect(&url, 2)
        .await
        .unwrap();
    a_written_users_group_is_left_alone(&store).await;
    drop(store);
    scimitar_store::postgres::scratch::drop(&server, &name)
        .await
        .unwrap();
}

/// Rows of a database of the schema just before entitlements were per workspace (SQLite
/// migration 11, PostgreSQL 8), as that build wrote them: an account with two workspaces;
/// `users` with the default entitlements in its document, ann with one of her own, bob with
/// none. Plain SQL both backends take.
const BEFORE_WORKSPACE_ENTITLEMENTS: &str = r#"
INSERT INTO accounts (id, name, created) VALUES ('acct-e', 'e', 0);
INSERT INTO workspaces (id, account_id, name, created, deployment_name)
    VALUES ('w1', 'acct-e', 'first', 1, NULL), ('w2', 'acct-e', 'second', 2, NULL);
INSERT INTO principals (account_id, id, kind, user_name_lower, display_name, display_name_lower,
    external_id, application_id_lower, active, system, attributes, password_hash, created,
    last_modified, version) VALUES
    ('acct-e', 'g-users', 'Group', NULL, 'users', 'users', NULL, NULL, NULL, TRUE,
     '{"displayName":"users","entitlements":[{"value":"workspace-access"},{"value":"databricks-sql-access"}]}',
     NULL, 0, 0, 2),
    ('acct-e', 'u-ann', 'User', 'ann', NULL, NULL, NULL, NULL, TRUE, FALSE,
     '{"userName":"ann","active":true,"entitlements":[{"value":"allow-cluster-create"}]}',
     NULL, 1, 1, 3),
    ('acct-e', 'u-bob', 'User', 'bob', NULL, NULL, NULL, NULL, TRUE, FALSE,
     '{"userName":"bob","active":true}', NULL, 2, 2, 1);
INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) VALUES
    ('acct-e', 'g-users', 'u-ann', 'User', 1), ('acct-e', 'g-users', 'u-bob', 'User', 2);
INSERT INTO workspace_assignments (account_id, workspace_id, principal_id, permission) VALUES
    ('acct-e', 'w1', 'u-ann', 'USER'), ('acct-e', 'w2', 'u-ann', 'USER'),
    ('acct-e', 'w1', 'u-bob', 'USER');
"#;

/// What the migration to per-workspace entitlements must do with [`BEFORE_WORKSPACE_ENTITLEMENTS`]:
/// every document's entitlements held in every workspace of the account (nothing anyone held
/// is lost), documents no longer showing them, versions unchanged; then a write through one
/// workspace changes that workspace's alone.
async fn entitlements_moved_to_every_workspace(store: &dyn Store) {
    let account = AccountId::new("acct-e");
    assert_eq!(store.ready().await, Ok(()));
    let entitlements_in = |workspace: &'static str, principal: &'static str| {
        let account = account.clone();
        async move {
            store
                .principal_in(&account, &WorkspaceId::new(workspace), &id(principal))
                .await
                .unwrap()
                .unwrap()
                .attributes
                .get("entitlements")
                .cloned()
        }
    };
    for workspace in ["w1", "w2"] {
        assert_eq!(
            entitlements_in(workspace, "g-users").await,
            Some(json!([{"value": "workspace-access"}, {"value": "databricks-sql-access"}])),
            "users in {workspace}"
        );
        assert_eq!(
            entitlements_in(workspace, "u-ann").await,
            Some(json!([{"value": "allow-cluster-create"}])),
            "ann in {workspace}"
        );
        assert_eq!(entitlements_in(workspace, "u-bob").await, None);
    }
    let ann = store
        .principal(&account, &id("u-ann"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.attributes.get("entitlements"), None, "{ann:?}");
    assert_eq!(ann.version, 3);
    let snapshot = store.access_snapshot(&account).await.unwrap();
    assert_eq!(snapshot.entitlements.len(), 4);

    // A write through the second workspace takes ann's away there, and there only.
    let mut written = store
        .principal_in(&account, &WorkspaceId::new("w2"), &id("u-ann"))
        .await
        .unwrap()
        .unwrap();
    written.attributes.remove("entitlements");
    written.version = 4;
    store
        .apply(
            &account,
            Change::UpdatePrincipal {
                principal: written,
                expected_version: 3,
                membership: vec![],
                workspace: Some(WorkspaceId::new("w2")),
            },
        )
        .await
        .unwrap();
    assert_eq!(entitlements_in("w2", "u-ann").await, None);
    assert_eq!(
        entitlements_in("w1", "u-ann").await,
        Some(json!([{"value": "allow-cluster-create"}]))
    );
}

/// The statements of every migration up to `last`, and their records.
fn migrations_up_to(list: &[(i64, &str)], last: i64) -> String {
    let mut sql = String::new();
    for (version, statements) in list.iter().filter(|(version, _)| *version <= last) {
        sql.push_str(statements);
        sql.push_str(&format!(
            "\nINSERT INTO schema_migrations (version, applied) VALUES ({version}, 0);\n"
        ));
    }
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_from_before_workspace_entitlements_keeps_them_in_every_workspace() {
    let directory = std::env::temp_dir().join(format!(
        "scimitar-existing-entitlements-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("db.sqlite");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL);",
            )
            .unwrap();
        let schema = migrations_up_to(scimitar_store::migrations::SQLITE_MIGRATIONS, 11);
        connection.execute_batch(&schema).unwrap();
        connection
            .execute_batch(BEFORE_WORKSPACE_ENTITLEMENTS)
            .unwrap();
    }
    let store = scimitar_store::sqlite::SqliteStore::open(&path.to_string_lossy())
        .await
        .unwrap();
    entitlements_moved_to_every_workspace(&store).await;
    drop(store);
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_before_workspace_entitlements_keeps_them_in_every_workspace() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is unset");
        return;
    };
    let name = format!("scimitar_existing_entitlements_{}", std::process::id());
    let url = scimitar_store::postgres::scratch::create(&server, &name)
        .await
        .unwrap();
    let schema = format!(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL);\n{}\n{}",
        migrations_up_to(scimitar_store::migrations::POSTGRES_MIGRATIONS, 8),
        BEFORE_WORKSPACE_ENTITLEMENTS
    );
    load_dump(&url, &schema).await;
    let store = scimitar_store::postgres::PostgresStore::connect(&url, 2)
        .await
        .unwrap();
    entitlements_moved_to_every_workspace(&store).await;
    drop(store);
    scimitar_store::postgres::scratch::drop(&server, &name)
        .await
        .unwrap();
}

/// Sync jobs' state as it was before a job's state named its account (SQLite 26, PostgreSQL
/// 23): a job of a config file, and one named by flags after its two URLs as typed.
const BEFORE_SYNC_ACCOUNTS: &str = "
INSERT INTO accounts (id, name, created) VALUES ('7f3a2c10-acct', 'acme', 1700000000000000);
INSERT INTO sync_jobs (job, watermark) VALUES ('hr', 'w1');
INSERT INTO sync_jobs (job, watermark) VALUES ('http://a/scim/v2 -> http://b/scim/v2', 'w2');
INSERT INTO sync_mappings (job, kind, source_id, target_id, ownership)
    VALUES ('http://a/scim/v2 -> http://b/scim/v2', 'user', 's1', 't1', 'created');
INSERT INTO sync_runs (job, seq, started, ended, outcome, report)
    VALUES ('http://a/scim/v2 -> http://b/scim/v2', 1, 1, 2, 'applied', '{}');
";

/// Each job's state names the database's only account, and the job named by flags keeps its
/// state under its new name, `/` written `%2F`.
async fn sync_jobs_took_the_only_account_and_flag_names_lost_their_slashes(store: &dyn Store) {
    let account = AccountId::new(ACCOUNT);
    let hr = store.sync_state("hr").await.unwrap();
    assert_eq!(hr.account, Some(account.clone()));
    assert_eq!(hr.watermark.as_deref(), Some("w1"));
    let renamed = "http:%2F%2Fa%2Fscim%2Fv2 -> http:%2F%2Fb%2Fscim%2Fv2";
    let flags = store.sync_state(renamed).await.unwrap();
    assert_eq!(flags.watermark.as_deref(), Some("w2"));
    assert_eq!(flags.mappings.len(), 1);
    assert_eq!(flags.mappings[0].digest, None);
    assert_eq!(store.sync_runs(renamed, 10).await.unwrap().len(), 1);
    let old = store
        .sync_state("http://a/scim/v2 -> http://b/scim/v2")
        .await
        .unwrap();
    assert!(old.mappings.is_empty() && old.watermark.is_none());
    let listed = store.sync_jobs(&account).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|job| job.key.as_str()).collect();
    assert_eq!(keys, ["hr", renamed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_from_before_sync_accounts_gives_its_jobs_the_only_account() {
    let directory = std::env::temp_dir().join(format!(
        "scimitar-existing-sync-accounts-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("db.sqlite");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL);",
            )
            .unwrap();
        let schema = migrations_up_to(scimitar_store::migrations::SQLITE_MIGRATIONS, 26);
        connection.execute_batch(&schema).unwrap();
        connection.execute_batch(BEFORE_SYNC_ACCOUNTS).unwrap();
    }
    let store = scimitar_store::sqlite::SqliteStore::open(&path.to_string_lossy())
        .await
        .unwrap();
    sync_jobs_took_the_only_account_and_flag_names_lost_their_slashes(&store).await;
    drop(store);
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_before_sync_accounts_gives_its_jobs_the_only_account() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is unset");
        return;
    };
    let name = format!("scimitar_existing_sync_accounts_{}", std::process::id());
    let url = scimitar_store::postgres::scratch::create(&server, &name)
        .await
        .unwrap();
    let schema = format!(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL);\n{}\n{}",
        migrations_up_to(scimitar_store::migrations::POSTGRES_MIGRATIONS, 23),
        BEFORE_SYNC_ACCOUNTS
    );
    load_dump(&url, &schema).await;
    let store = scimitar_store::postgres::PostgresStore::connect(&url, 2)
        .await
        .unwrap();
    sync_jobs_took_the_only_account_and_flag_names_lost_their_slashes(&store).await;
    drop(store);
    scimitar_store::postgres::scratch::drop(&server, &name)
        .await
        .unwrap();
}

/// The audit leaf's function as migration 23 defined it (IMMUTABLE around `convert_to`, which
/// is STABLE) was never inlined, so PostgreSQL parsed its body again on every event's insert.
/// A database from before migration 25 gets it redefined: the planner writes the hash into the
/// statement's own plan, and the hash is still RFC 9162's leaf of the text's UTF-8 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_before_migration_25_hashes_audit_leaves_inline_and_alike() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is unset");
        return;
    };
    let name = format!("scimitar_existing_audit_leaf_{}", std::process::id());
    let url = scimitar_store::postgres::scratch::create(&server, &name)
        .await
        .unwrap();
    let schema = format!(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL);\n{}",
        migrations_up_to(scimitar_store::migrations::POSTGRES_MIGRATIONS, 24),
    );
    load_dump(&url, &schema).await;
    let store = scimitar_store::postgres::PostgresStore::connect(&url, 2)
        .await
        .unwrap();
    drop(store);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let plan: Vec<String> = client
        .query(
            "EXPLAIN (VERBOSE) SELECT scimitar_audit_leaf(event) FROM audit_events",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        plan.iter()
            .all(|line| !line.contains("scimitar_audit_leaf")),
        "the leaf's function is called, not inlined: {plan:#?}"
    );
    assert!(plan.iter().any(|line| line.contains("sha256")), "{plan:#?}");
    let text = "{\"display_name\":\"Zoë Ångström ✓\"}";
    let leaf: String = client
        .query_one("SELECT scimitar_audit_leaf($1)", &[&text])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        leaf,
        scimitar_domain::ids::lower_hex(&scimitar_audit::merkle::leaf_hash(text.as_bytes()))
    );
    drop(client);
    let _ = driver.await;
    scimitar_store::postgres::scratch::drop(&server, &name)
        .await
        .unwrap();
}
