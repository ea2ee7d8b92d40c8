//! The storage conformance suite: behaviour every backend must show, written once against the
//! [`Store`] trait. [`conformance_tests!`](crate::conformance_tests) expands each case into one
//! test per backend (`sqlite::case` and `postgres::case`), so a failure names its case and
//! backend and hides no other; each case takes its databases from [`Stores`]. PostgreSQL cases
//! run when `TEST_DATABASE_URL` names a server to create scratch databases on, and say they are
//! skipped otherwise. Built only with the `testing` feature, with the PostgreSQL scratch
//! databases it uses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::postgres::{scratch, PostgresStore};
use crate::sqlite::SqliteStore;
use crate::transfer::{self, TransferError};
use crate::SharedStore;
use crate::{
    AccessEvent, AccessSnapshot, Account, BindingRow, Change, GovernanceChange, GrantRow,
    LoggedEvent, MembershipRow, RuleSetRows, Store, Workspace, WorkspaceEntry,
};
use scimitar_access::{
    AclEntry, BindingType, IsolationMode, ObjectType, PermissionLevel, Privilege, SecurableType,
    WorkspacePermission,
};
use scimitar_domain::credentials::{Token, TokenScope};
use scimitar_domain::error::ScimType;
use scimitar_domain::filter::{parse_filter, ResolvedFilter};
use scimitar_domain::patch::MembershipStep;
use scimitar_domain::query::{ListParameters, ListQuery};
use scimitar_domain::resource::MemberValue;
use scimitar_domain::schema::{PrincipalKind, GROUP_RESOURCE};
use scimitar_domain::{AccountId, Principal, PrincipalId, ScimError, Timestamp, WorkspaceId};
use serde_json::{json, Map, Value};

use std::path::PathBuf;

mod alerts;
mod audit;
pub use alerts::*;
pub use audit::*;
mod sync_state;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
pub use sync_state::*;

/// Expands every conformance case into a test per backend: `sqlite::case` and
/// `postgres::case`, plus the checks that compare the two backends' schemas. Invoke it once,
/// at the top level of an integration test.
#[macro_export]
macro_rules! conformance_tests {
    () => {
        $crate::conformance_tests!(@cases
            user_names_are_unique_ignoring_case,
            users_join_the_users_group_and_leave_every_group_when_deleted,
            members_must_exist_and_cycles_are_refused,
            a_stale_version_is_a_precondition_failure,
            groups_of_lists_inherited_groups_as_indirect,
            sql_filters_agree_with_the_reference_evaluator,
            pages_are_stable_and_counted,
            pages_read_one_after_another_answer_as_offsets_do_through_any_nodes_changes,
            tokens_are_found_by_digest_only,
            small_member_lists_are_returned_and_large_ones_are_not,
            principals_are_found_by_name_ignoring_case_and_kind_apart,
            concurrent_writes_succeed_or_fail_each_alone,
            the_access_log_records_changes_in_commit_order,
            a_snapshot_counts_its_own_accounts_log_entries_only,
            governance_state_round_trips_through_snapshot_and_log,
            a_rename_carries_the_subtree_and_its_grants_and_a_comment_is_not_logged,
            a_governance_batch_commits_whole_or_not_at_all,
            the_workspace_tree_is_found_by_path_and_listed_by_directory,
            an_acl_write_computed_from_a_stale_acl_is_a_conflict,
            a_taken_id_is_a_uniqueness_conflict,
            opposite_nestings_at_once_never_make_a_cycle,
            concurrent_updates_from_one_version_commit_one,
            an_open_store_is_ready,
            only_one_first_account_is_made_by_racing_bootstraps,
            an_export_imports_into_an_empty_store_unchanged,
            workspaces_and_assignments_follow_their_changes,
            catalog_bindings_follow_their_catalog_and_their_workspaces,
            workspace_objects_belong_to_one_workspace,
            an_export_from_before_assignments_assigns_every_principal,
            the_last_active_admin_cannot_be_removed_from_admins,
            the_last_active_admin_cannot_be_deleted_or_deactivated,
            an_account_without_an_active_admin_is_not_held_to_the_rule,
            two_nodes_removing_the_two_last_admins_at_once_leave_one,
            a_rule_set_is_replaced_whole_from_the_version_it_was_read_at,
            a_rule_set_goes_with_its_principal_and_names_only_existing_ones,
            entitlements_are_kept_per_workspace_and_go_with_their_principal_and_workspace,
            an_export_from_before_workspace_entitlements_gives_them_to_every_workspace,
            tokens_are_selected_rotated_used_and_deleted_with_log_entries,
            deactivating_a_principal_revokes_its_tokens_for_good,
            workspace_settings_are_set_cleared_and_go_with_their_workspace,
            every_change_writes_one_audit_event_and_a_refused_change_none,
            racing_writers_number_an_accounts_trail_without_gaps,
            refused_requests_join_the_trail_one_event_each_with_their_status,
            a_pruned_trail_keeps_the_frontier_of_what_it_pruned_and_still_verifies,
            a_trail_past_its_head_folds_keeps_its_root_through_appends_and_prunes,
            oauth_secrets_are_capped_deleted_with_log_entries_and_go_with_deactivation,
            signing_keys_are_kept_newest_first_until_their_tokens_expire,
            sync_jobs_keep_their_mappings_watermark_and_runs_apart,
            a_sync_runs_events_join_its_accounts_trail_with_its_record,
            a_sync_job_lease_is_held_by_one_owner_until_it_expires_or_is_released,
            a_sync_jobs_status_is_listed_to_its_own_account_only,
            federation_policies_are_unique_per_owner_updated_and_deleted_with_log_entries,
            an_exchanged_token_is_recorded_once_until_it_expires,
            alert_rules_are_unique_by_name_audited_without_their_secret_and_start_after_the_trail,
            an_alert_cursor_moves_only_for_its_lease_holder_from_where_it_read,
            an_alert_firing_is_stored_once_per_rule_and_event,
            an_alert_delivery_is_claimed_by_one_node_and_never_due_once_delivered,
        );
    };
    (@cases $($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let mut stores = $crate::conformance::Stores::sqlite();
                    $crate::conformance::$case(&mut stores).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(mut stores) = $crate::conformance::Stores::postgres() else {
                        return;
                    };
                    $crate::conformance::$case(&mut stores).await;
                }
            )+

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn has_the_tables_columns_and_indexes_of_sqlite() {
                let Some(mut stores) = $crate::conformance::Stores::postgres() else {
                    return;
                };
                $crate::conformance::the_schemas_of_both_backends_agree(&mut stores).await;
            }
        }
    };
}

/// Where a case's stores live: fresh databases of one backend, removed when the case ends,
/// whether it passed or panicked.
pub struct Stores {
    backend: TestBackend,
    /// The URL (or path) of the database [`Stores::fresh`] made last.
    last: Option<String>,
}

enum TestBackend {
    Sqlite {
        directory: PathBuf,
    },
    Postgres {
        server: String,
        databases: Vec<String>,
    },
}

/// Numbers the databases of one test process, so cases running at once never share one.
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

fn next_database() -> usize {
    NEXT_DATABASE.fetch_add(1, Ordering::SeqCst)
}

/// The connections a PostgreSQL store of the suite holds: enough for the concurrent cases to
/// overlap.
const POOL: usize = 8;

impl Stores {
    /// SQLite databases in a temporary directory of their own.
    pub fn sqlite() -> Stores {
        let directory = std::env::temp_dir().join(format!(
            "scimitar-conformance-{}-{}",
            std::process::id(),
            next_database()
        ));
        let _ = std::fs::remove_dir_all(&directory);
        Stores {
            backend: TestBackend::Sqlite { directory },
            last: None,
        }
    }

    /// Scratch databases on the server `TEST_DATABASE_URL` names; `None`, said on stderr, when
    /// it is unset.
    pub fn postgres() -> Option<Stores> {
        let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!(
                "skipped: TEST_DATABASE_URL is unset (set it to a PostgreSQL server URL, e.g. \
                 postgres://postgres@127.0.0.1:5432/test, to run this case on PostgreSQL)"
            );
            return None;
        };
        Some(Stores {
            backend: TestBackend::Postgres {
                server,
                databases: Vec::new(),
            },
            last: None,
        })
    }

    /// A store on a new, empty database.
    pub async fn fresh(&mut self) -> SharedStore {
        let index = next_database();
        let location = match &mut self.backend {
            TestBackend::Sqlite { directory } => directory
                .join(format!("store-{index}.db"))
                .to_string_lossy()
                .into_owned(),
            TestBackend::Postgres { server, databases } => {
                let name = format!("scimitar_conformance_{}_{index}", std::process::id());
                // Remembered before it exists, so a failed creation is still dropped.
                databases.push(name.clone());
                scratch::create(server, &name)
                    .await
                    .unwrap_or_else(|error| panic!("cannot create the database {name}: {error}"))
            }
        };
        self.last = Some(location);
        self.again().await
    }

    /// Another store on the database [`Stores::fresh`] made last: a second node.
    pub async fn again(&self) -> SharedStore {
        let location = self.last.as_deref().expect("a database made by fresh()");
        match &self.backend {
            TestBackend::Sqlite { .. } => Arc::new(
                SqliteStore::open(location)
                    .await
                    .unwrap_or_else(|error| panic!("cannot open {location}: {error}")),
            ),
            TestBackend::Postgres { .. } => Arc::new(
                PostgresStore::connect(location, POOL)
                    .await
                    .unwrap_or_else(|error| panic!("cannot open {location}: {error}")),
            ),
        }
    }

    /// Runs `sql` on the database made last directly, behind every store's back.
    pub async fn execute_directly(&self, sql: &str) {
        let location = self.location();
        match &self.backend {
            TestBackend::Sqlite { .. } => {
                let connection = rusqlite::Connection::open(location).unwrap();
                connection.execute_batch(sql).unwrap();
            }
            TestBackend::Postgres { .. } => {
                use deadpool_postgres::tokio_postgres;
                let (client, connection) = tokio_postgres::connect(location, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let driver = tokio::spawn(connection);
                client.batch_execute(sql).await.unwrap();
                drop(client);
                driver.await.unwrap().unwrap();
            }
        }
    }

    /// The URL (PostgreSQL) or path (SQLite) of the database made last.
    pub fn location(&self) -> &str {
        self.last.as_deref().expect("a database made by fresh()")
    }
}

impl Drop for Stores {
    fn drop(&mut self) {
        match &self.backend {
            TestBackend::Sqlite { directory } => {
                let _ = std::fs::remove_dir_all(directory);
            }
            TestBackend::Postgres { server, databases } => {
                let (server, databases) = (server.clone(), databases.clone());
                // Drop is synchronous and runs inside the test's runtime: the databases are
                // dropped on a thread with a runtime of its own.
                let _ = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    for name in databases {
                        if let Err(error) = runtime.block_on(scratch::drop(&server, &name)) {
                            eprintln!("could not drop the test database {name}: {error}");
                        }
                    }
                })
                .join();
            }
        }
    }
}

const ACCOUNT: &str = "acct-1";

fn principal(id: &str, kind: PrincipalKind, attributes: Value, created: i64) -> Principal {
    Principal {
        id: PrincipalId::new(id),
        kind,
        attributes: attributes.as_object().cloned().unwrap_or_else(Map::new),
        password_hash: None,
        system: false,
        created: Timestamp::from_micros(created),
        last_modified: Timestamp::from_micros(created),
        version: 1,
    }
}

/// A new workspace where the `users` group holds no entitlements.
fn new_workspace(workspace: Workspace) -> Change {
    Change::CreateWorkspace {
        workspace,
        users_entitlements: Vec::new(),
    }
}

/// Workspace object changes made in the workspace with this id.
fn in_workspace(workspace: &str, changes: Vec<GovernanceChange>) -> Change {
    Change::WorkspaceObjects {
        workspace: WorkspaceId::new(workspace),
        changes,
    }
}

async fn seed_account(store: &dyn Store) -> AccountId {
    seed_account_with(store, ACCOUNT, "1000").await
}

/// An account with its system groups, under these ids.
async fn seed_account_with(store: &dyn Store, id: &str, workspace: &str) -> AccountId {
    let account = AccountId::new(id);
    let mut users = principal(
        "users",
        PrincipalKind::Group,
        json!({"displayName": "users"}),
        0,
    );
    users.system = true;
    let mut admins = principal(
        "admins",
        PrincipalKind::Group,
        json!({"displayName": "admins"}),
        0,
    );
    admins.system = true;
    store
        .apply(
            &account,
            Change::CreateAccount {
                account: Account {
                    id: account.clone(),
                    name: "first".into(),
                    created: Timestamp::from_micros(0),
                },
                workspace: Workspace {
                    id: WorkspaceId::new(workspace),
                    account: account.clone(),
                    name: "main".into(),
                    created: Timestamp::from_micros(0),
                    deployment_name: None,
                },
                system_groups: vec![admins, users],
                only_if_first: false,
                first_admin: None,
            },
        )
        .await
        .unwrap();
    account
}

async fn create(
    store: &dyn Store,
    account: &AccountId,
    principal: Principal,
    members: &[&str],
) -> Result<(), ScimError> {
    let members = members
        .iter()
        .map(|id| MemberValue {
            id: PrincipalId::new(*id),
            kind_hint: None,
        })
        .collect();
    store
        .apply(
            account,
            Change::CreatePrincipal {
                principal,
                members,
                assign_to: None,
            },
        )
        .await
}

fn user(id: &str, user_name: &str, created: i64) -> Principal {
    principal(
        id,
        PrincipalKind::User,
        json!({"userName": user_name, "active": true, "emails": [{"value": format!("{user_name}@example.com"), "type": "work"}]}),
        created,
    )
}

fn group(id: &str, name: &str) -> Principal {
    principal(id, PrincipalKind::Group, json!({"displayName": name}), 10)
}

async fn add_members(
    store: &dyn Store,
    account: &AccountId,
    group_id: &str,
    members: &[&str],
) -> Result<(), ScimError> {
    let mut current = store
        .principal(account, &PrincipalId::new(group_id))
        .await
        .unwrap()
        .unwrap();
    let expected_version = current.version;
    current.version += 1;
    let members = members
        .iter()
        .map(|id| MemberValue {
            id: PrincipalId::new(*id),
            kind_hint: None,
        })
        .collect();
    store
        .apply(
            account,
            Change::UpdatePrincipal {
                principal: current,
                expected_version,
                membership: vec![MembershipStep::Add(members)],
                workspace: None,
            },
        )
        .await
}

/// A group's member ids, sorted; read both ways, with display names and without (the
/// membership rows alone), which must name the same members of the same kinds.
async fn member_ids(store: &dyn Store, account: &AccountId, group_id: &str) -> Vec<String> {
    let id = PrincipalId::new(group_id);
    let group = std::slice::from_ref(&id);
    let members = store.members(account, group).await.unwrap().remove(&id);
    let bare = store.member_ids(account, group).await.unwrap().remove(&id);
    let (members, bare) = (members.unwrap_or_default(), bare.unwrap_or_default());
    assert!(bare.iter().all(|member| member.display.is_none()));
    let shape = |list: &[scimitar_domain::render::MemberRef]| -> Vec<(String, PrincipalKind)> {
        list.iter().map(|m| (m.id.to_string(), m.kind)).collect()
    };
    assert_eq!(shape(&bare), shape(&members), "members of {group_id}");
    let mut ids: Vec<String> = members.into_iter().map(|m| m.id.to_string()).collect();
    ids.sort();
    ids
}

pub async fn user_names_are_unique_ignoring_case(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("1", "Alice", 1), &[])
        .await
        .unwrap();
    let error = create(store, &account, user("2", "ALICE", 2), &[])
        .await
        .unwrap_err();
    assert_eq!(error.code(), "uniqueness");
    assert!(store
        .principal(&account, &PrincipalId::new("2"))
        .await
        .unwrap()
        .is_none());
}

pub async fn users_join_the_users_group_and_leave_every_group_when_deleted(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("1", "alice", 1), &[])
        .await
        .unwrap();
    create(store, &account, group("g", "engineers"), &["1"])
        .await
        .unwrap();
    assert_eq!(member_ids(store, &account, "users").await, vec!["1"]);
    assert_eq!(member_ids(store, &account, "g").await, vec!["1"]);
    store
        .apply(
            &account,
            Change::DeletePrincipal {
                id: PrincipalId::new("1"),
                expected_version: None,
            },
        )
        .await
        .unwrap();
    assert!(member_ids(store, &account, "users").await.is_empty());
    assert!(member_ids(store, &account, "g").await.is_empty());
}

pub async fn members_must_exist_and_cycles_are_refused(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let error = create(store, &account, group("g", "g"), &["missing"])
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalidValue");
    assert!(
        store
            .principal(&account, &PrincipalId::new("g"))
            .await
            .unwrap()
            .is_none(),
        "no half-applied create"
    );
    create(store, &account, group("a", "a"), &[]).await.unwrap();
    create(store, &account, group("b", "b"), &["a"])
        .await
        .unwrap();
    create(store, &account, group("c", "c"), &["b"])
        .await
        .unwrap();
    let error = add_members(store, &account, "a", &["c"]).await.unwrap_err();
    assert_eq!(error.code(), "invalidValue");
    let error = add_members(store, &account, "a", &["a"]).await.unwrap_err();
    assert_eq!(error.code(), "invalidValue");
    assert!(member_ids(store, &account, "a").await.is_empty());
}

pub async fn groups_of_lists_inherited_groups_as_indirect(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("1", "alice", 1), &[])
        .await
        .unwrap();
    create(store, &account, group("inner", "inner"), &["1"])
        .await
        .unwrap();
    create(store, &account, group("outer", "outer"), &["inner"])
        .await
        .unwrap();
    create(store, &account, group("top", "top"), &["outer", "1"])
        .await
        .unwrap();
    let id = PrincipalId::new("1");
    let groups = store
        .groups_of(&account, std::slice::from_ref(&id))
        .await
        .unwrap();
    let mut seen: Vec<(String, bool)> = groups[&id]
        .iter()
        .map(|g| (g.id.to_string(), g.direct))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("inner".to_string(), true),
            ("outer".to_string(), false),
            ("top".to_string(), true),
            ("users".to_string(), true)
        ]
    );
}

pub async fn a_stale_version_is_a_precondition_failure(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("1", "alice", 1), &[])
        .await
        .unwrap();
    let mut current = store
        .principal(&account, &PrincipalId::new("1"))
        .await
        .unwrap()
        .unwrap();
    current.version = 3;
    let error = store
        .apply(
            &account,
            Change::UpdatePrincipal {
                principal: current,
                expected_version: 2,
                membership: vec![],
                workspace: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ScimError::PreconditionFailed(_)));
}

pub async fn sql_filters_agree_with_the_reference_evaluator(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    for (index, name) in ["alice", "Bob", "carol", "dave", "Eve"].iter().enumerate() {
        let mut created = user(&format!("{index}"), name, index as i64 * 1_000_000);
        if index % 2 == 0 {
            created
                .attributes
                .insert("externalId".into(), json!(format!("EXT-{index}")));
            created.attributes.insert("title".into(), json!("Engineer"));
        }
        created
            .attributes
            .insert("active".into(), json!(index != 3));
        create(store, &account, created, &[]).await.unwrap();
    }
    let filters = [
        r#"userName eq "ALICE""#,
        r#"userName sw "c" or userName ew "E""#,
        r#"not (externalId pr)"#,
        r#"externalId eq "ext-0""#,
        r#"active eq false"#,
        r#"title eq "engineer" and userName gt "b""#,
        r#"emails[value co "bob@" or type eq "home"]"#,
        r#"not (emails.value co "e@") and userName ne "bob""#,
        r#"meta.created ge "1970-01-01T00:00:02Z""#,
        r#"userName le "carol" and not (title pr or active eq false)"#,
    ];
    let everything = ListQuery::parse(
        PrincipalKind::User.resource_type(),
        &ListParameters::default(),
    )
    .unwrap();
    let all = store
        .list_principals(&account, PrincipalKind::User, &everything)
        .await
        .unwrap();
    assert_eq!(all.total_results, 5);
    for text in filters {
        let filter = parse_filter(PrincipalKind::User.resource_type(), text).unwrap();
        let mut expected: Vec<String> = all
            .principals
            .iter()
            .filter(|p| filter.matches(&scimitar_domain::render::render(p, "", None, None)))
            .map(|p| p.id.to_string())
            .collect();
        expected.sort();
        let query = ListQuery::parse(
            PrincipalKind::User.resource_type(),
            &ListParameters {
                filter: Some(text.into()),
                ..Default::default()
            },
        )
        .unwrap();
        let page = store
            .list_principals(&account, PrincipalKind::User, &query)
            .await
            .unwrap();
        let mut actual: Vec<String> = page.principals.iter().map(|p| p.id.to_string()).collect();
        actual.sort();
        assert_eq!(actual, expected, "filter {text}");
        assert_eq!(
            page.total_results as usize,
            expected.len(),
            "totalResults for {text}"
        );
    }
}

pub async fn pages_are_stable_and_counted(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    for index in 0..7 {
        create(
            store,
            &account,
            user(&format!("u{index}"), &format!("user{index}"), index),
            &[],
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    for start in [1, 4, 7] {
        let query = ListQuery::parse(
            PrincipalKind::User.resource_type(),
            &ListParameters {
                start_index: Some(start.to_string()),
                count: Some("3".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let page = store
            .list_principals(&account, PrincipalKind::User, &query)
            .await
            .unwrap();
        assert_eq!(page.total_results, 7);
        seen.extend(page.principals.into_iter().map(|p| p.id.to_string()));
    }
    assert_eq!(seen, (0..7).map(|i| format!("u{i}")).collect::<Vec<_>>());
}

/// A list read page after page starts each page from where an earlier page of the same list
/// ended (`sql::list_anchors`) while nothing changed; every page, and its total, must still be
/// what `OFFSET` gives, on the node that read and after another node changed the list. The
/// reference is a filter that matches every user: filtered lists are never anchored.
pub async fn pages_read_one_after_another_answer_as_offsets_do_through_any_nodes_changes(
    stores: &mut Stores,
) {
    let store = stores.fresh().await;
    let account = seed_account(&*store).await;
    let workspace = WorkspaceId::new("1000");
    // Three users share each creation time, so the id orders them; every other one is made
    // through the workspace, so its list is not the account's.
    for index in 0..250 {
        let principal = user(
            &format!("u{index:03}"),
            &format!("user{index}"),
            100 + index / 3,
        );
        let assign_to = (index % 2 == 0).then(|| workspace.clone());
        let change = Change::CreatePrincipal {
            principal,
            members: Vec::new(),
            assign_to,
        };
        store.apply(&account, change).await.unwrap();
    }
    let other_node = stores.again().await;
    let query = |start: u64, count: u64, filter: Option<&str>| {
        ListQuery::parse(
            PrincipalKind::User.resource_type(),
            &ListParameters {
                start_index: Some(start.to_string()),
                count: Some(count.to_string()),
                filter: filter.map(str::to_string),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let page = |within: Option<WorkspaceId>, query: ListQuery| {
        let (store, account) = (Arc::clone(&store), account.clone());
        async move {
            let page = match within {
                Some(workspace) => store
                    .list_workspace_principals(&account, &workspace, PrincipalKind::User, &query)
                    .await
                    .unwrap(),
                None => store
                    .list_principals(&account, PrincipalKind::User, &query)
                    .await
                    .unwrap(),
            };
            let ids: Vec<String> = page.principals.iter().map(|p| p.id.to_string()).collect();
            (page.total_results, ids)
        }
    };
    // Pages as a client makes them: in order, one ending early, overlapping, past the end.
    let windows = [
        (1, 37),
        (38, 37),
        (75, 37),
        (100, 50),
        (150, 37),
        (160, 200),
        (240, 5),
        (300, 10),
    ];
    let every_page_as_offsets_give = |moment: &'static str| {
        let page = &page;
        async move {
            for within in [None, Some(WorkspaceId::new("1000"))] {
                let mut reads = 0;
                for (start, count) in windows {
                    let reference = page(within.clone(), query(start, count, Some("userName pr")));
                    let reference = reference.await;
                    let anchored = page(within.clone(), query(start, count, None)).await;
                    assert_eq!(
                        anchored, reference,
                        "{moment}: the page at {start} of {count} (workspace {within:?})"
                    );
                    reads += anchored.1.len();
                }
                assert!(
                    reads > 100,
                    "{moment}: the windows read the list ({within:?}: {reads})"
                );
            }
        }
    };
    every_page_as_offsets_give("first read").await;
    every_page_as_offsets_give("read again, from remembered keys").await;
    let created = Change::CreatePrincipal {
        principal: user("u500", "user500", 120),
        members: Vec::new(),
        assign_to: Some(workspace.clone()),
    };
    other_node.apply(&account, created).await.unwrap();
    every_page_as_offsets_give("after another node created a user in the middle").await;
    let deleted = Change::DeletePrincipal {
        id: PrincipalId::new("u010"),
        expected_version: None,
    };
    other_node.apply(&account, deleted).await.unwrap();
    every_page_as_offsets_give("after another node deleted one").await;
    let unassigned = Change::AssignToWorkspace {
        workspace: workspace.clone(),
        principal: PrincipalId::new("u100"),
        permission: None,
    };
    other_node.apply(&account, unassigned).await.unwrap();
    every_page_as_offsets_give("after another node unassigned one").await;
    // What was remembered is used: a row deleted behind the stores' backs, without the
    // access-log entry that every change of the store writes, is still counted by the node
    // that had read the list, until the log moves.
    let (total_before, _) = page(None, query(1, 10, None)).await;
    stores
        .execute_directly(&format!(
            "DELETE FROM principals WHERE account_id = '{ACCOUNT}' AND id = 'u200'"
        ))
        .await;
    let (total_remembered, _) = page(None, query(11, 10, None)).await;
    let (total_counted, _) = page(None, query(11, 10, Some("userName pr"))).await;
    assert_eq!(
        (total_remembered, total_counted),
        (total_before, total_before - 1)
    );
    other_node
        .apply(
            &account,
            Change::DeletePrincipal {
                id: PrincipalId::new("u201"),
                expected_version: None,
            },
        )
        .await
        .unwrap();
    every_page_as_offsets_give("once the log moved again").await;
}

pub async fn tokens_are_found_by_digest_only(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("1", "alice", 1), &[])
        .await
        .unwrap();
    let token = Token {
        id: "t1".into(),
        account: account.clone(),
        principal: PrincipalId::new("1"),
        scope: TokenScope::AllApis,
        comment: None,
        created: Timestamp::from_micros(5),
        expires: None,
        workspace: None,
        created_by: None,
    };
    store
        .apply(
            &account,
            Change::CreateToken {
                token: token.clone(),
                digest: "abc".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.token_by_digest("abc").await.unwrap(), Some(token));
    assert_eq!(store.token_by_digest("abd").await.unwrap(), None);
}

fn workspace_token(id: &str, principal: &str, workspace: &str, created: i64) -> Token {
    Token {
        id: id.into(),
        account: AccountId::new(ACCOUNT),
        principal: PrincipalId::new(principal),
        scope: TokenScope::ReadOnly,
        comment: Some(format!("token {id}")),
        created: Timestamp::from_micros(created),
        expires: Some(Timestamp::from_micros(1_000)),
        workspace: Some(WorkspaceId::new(workspace)),
        created_by: None,
    }
}

async fn token_events(store: &dyn Store) -> Vec<String> {
    store
        .access_log_after(0, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|entry| match entry.event {
            AccessEvent::TokenChanged { id } => Some(id),
            _ => None,
        })
        .collect()
}

/// A workspace's tokens are read by id, workspace, owner and maker (its owner when no maker
/// is recorded), oldest first, with their workspace, maker and scope; a rotation stores the
/// replacement and only ever shortens the old one's expiry; uses are recorded only forward;
/// a deletion removes the token; both are logged for the nodes' caches, and a token that is
/// not there is not found, changing nothing.
pub async fn tokens_are_selected_rotated_used_and_deleted_with_log_entries(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    for (id, name) in [("1", "ann"), ("2", "bob")] {
        create(store, &account, user(id, name, 1), &[])
            .await
            .unwrap();
    }
    let mut made_by_admin = workspace_token("t2", "2", "1000", 20);
    made_by_admin.created_by = Some(PrincipalId::new("1"));
    let other_workspace = workspace_token("t3", "1", "2000", 30);
    for (token, digest) in [
        (workspace_token("t1", "1", "1000", 10), "d1"),
        (made_by_admin.clone(), "d2"),
        (other_workspace, "d3"),
    ] {
        let change = Change::CreateToken {
            token,
            digest: digest.into(),
        };
        store.apply(&account, change).await.unwrap();
    }
    assert_eq!(
        store.token_by_digest("d2").await.unwrap(),
        Some(made_by_admin.clone())
    );
    let ids = |records: Vec<crate::TokenRecord>| {
        records
            .into_iter()
            .map(|record| record.token.id)
            .collect::<Vec<_>>()
    };
    let query = |workspace: Option<&str>, owner: Option<&str>, created_by: Option<&str>| {
        crate::TokenQuery {
            id: None,
            workspace: workspace.map(WorkspaceId::new),
            owner: owner.map(PrincipalId::new),
            created_by: created_by.map(PrincipalId::new),
        }
    };
    let read = |query: crate::TokenQuery| {
        let account = account.clone();
        async move { ids(store.tokens_where(&account, &query).await.unwrap()) }
    };
    assert_eq!(read(query(Some("1000"), None, None)).await, ["t1", "t2"]);
    assert_eq!(read(query(Some("1000"), Some("1"), None)).await, ["t1"]);
    assert_eq!(read(query(None, None, Some("1"))).await, ["t1", "t2", "t3"]);
    assert_eq!(
        read(query(None, None, Some("2"))).await,
        Vec::<String>::new()
    );
    assert_eq!(read(query(None, Some("2"), None)).await, ["t2"]);
    let by_id = crate::TokenQuery {
        id: Some("t3".into()),
        ..crate::TokenQuery::default()
    };
    assert_eq!(read(by_id).await, ["t3"]);
    // Uses move forward only.
    for used in [500, 400] {
        let change = Change::TokensUsed(vec![("t1".into(), Timestamp::from_micros(used))]);
        store.apply(&account, change).await.unwrap();
    }
    let t1 = store
        .tokens_where(&account, &query(Some("1000"), Some("1"), None))
        .await
        .unwrap();
    assert_eq!(t1[0].last_used, Some(Timestamp::from_micros(500)));
    // A rotation shortens, never lengthens, the old token's life.
    let replacement = workspace_token("t4", "1", "1000", 40);
    for (old, expires) in [("t1", 100), ("t2", 5_000)] {
        let change = Change::RotateToken {
            id: old.into(),
            expires: Timestamp::from_micros(expires),
            replacement: Box::new(crate::NewToken {
                token: Token {
                    id: format!("{old}-new"),
                    ..replacement.clone()
                },
                digest: format!("{old}-digest"),
            }),
        };
        store.apply(&account, change).await.unwrap();
    }
    let expiry = |digest: &'static str| async move {
        store
            .token_by_digest(digest)
            .await
            .unwrap()
            .unwrap()
            .expires
    };
    assert_eq!(expiry("d1").await, Some(Timestamp::from_micros(100)));
    assert_eq!(expiry("d2").await, Some(Timestamp::from_micros(1_000)));
    assert_eq!(
        store
            .token_by_digest("t1-digest")
            .await
            .unwrap()
            .map(|token| token.id),
        Some("t1-new".to_string())
    );
    store
        .apply(&account, Change::DeleteToken { id: "t1".into() })
        .await
        .unwrap();
    assert_eq!(store.token_by_digest("d1").await.unwrap(), None);
    for missing in ["t1", "nope"] {
        let again = store
            .apply(&account, Change::DeleteToken { id: missing.into() })
            .await;
        assert!(matches!(again, Err(ScimError::NotFound(_))), "{again:?}");
        let rotated = store
            .apply(
                &account,
                Change::RotateToken {
                    id: missing.into(),
                    expires: Timestamp::from_micros(1),
                    replacement: Box::new(crate::NewToken {
                        token: Token {
                            id: "never".into(),
                            ..replacement.clone()
                        },
                        digest: "never".into(),
                    }),
                },
            )
            .await;
        assert!(
            matches!(rotated, Err(ScimError::NotFound(_))),
            "{rotated:?}"
        );
    }
    assert_eq!(store.token_by_digest("never").await.unwrap(), None);
    assert_eq!(token_events(store).await, ["t1", "t2", "t1"]);
    // An export carries what a token is, and an import writes it back as it was.
    let exported = store.tokens(&account).await.unwrap();
    let t2 = exported.iter().find(|row| row.token.id == "t2").unwrap();
    assert_eq!(t2.token.created_by, Some(PrincipalId::new("1")));
    assert_eq!(t2.token.workspace, Some(WorkspaceId::new("1000")));
}

/// Deactivating a principal revokes its tokens in the same write, logged as the principal's
/// change; reactivating it brings none back. Another principal's tokens stay.
pub async fn deactivating_a_principal_revokes_its_tokens_for_good(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    for (id, name) in [("1", "ann"), ("2", "bob")] {
        create(store, &account, user(id, name, 1), &[])
            .await
            .unwrap();
    }
    for (id, owner) in [("t1", "1"), ("t2", "2")] {
        let change = Change::CreateToken {
            token: workspace_token(id, owner, "1000", 1),
            digest: format!("d{id}"),
        };
        store.apply(&account, change).await.unwrap();
    }
    deactivate(store, &account, "1").await.unwrap();
    assert_eq!(store.token_by_digest("dt1").await.unwrap(), None);
    update(
        store,
        &account,
        "1",
        |principal| {
            principal.attributes.insert("active".into(), json!(true));
        },
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(store.token_by_digest("dt1").await.unwrap(), None);
    assert!(store.token_by_digest("dt2").await.unwrap().is_some());
    let revoked = store.tokens(&account).await.unwrap();
    let t1 = revoked.iter().find(|row| row.token.id == "t1").unwrap();
    assert!(t1.revoked.is_some(), "kept, revoked, for the record");
    let live = store
        .tokens_where(&account, &crate::TokenQuery::default())
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
}

fn oauth_secret(id: &str, principal: &str, created: i64) -> crate::OAuthSecret {
    crate::OAuthSecret {
        id: id.into(),
        account: AccountId::new("acct"),
        principal: PrincipalId::new(principal),
        scopes: vec!["all-apis".into()],
        created: Timestamp::from_micros(created),
        expires: Some(Timestamp::from_micros(created + 1_000)),
    }
}

/// A service principal holds at most `limit` OAuth secrets, read back oldest first with their
/// digests; only a service principal holds them; a deletion is logged as a changed credential
/// (the nodes' caches forget it) and a missing one is not found; deactivating the principal
/// deletes them all, logged, so reactivating it brings none back; deleting it deletes them.
pub async fn oauth_secrets_are_capped_deleted_with_log_entries_and_go_with_deactivation(
    stores: &mut Stores,
) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let sp = |id: &str, app: &str| {
        principal(
            id,
            PrincipalKind::ServicePrincipal,
            json!({"applicationId": app, "displayName": app, "active": true}),
            1,
        )
    };
    create(store, &account, sp("s1", "app-1"), &[])
        .await
        .unwrap();
    create(store, &account, sp("s2", "app-2"), &[])
        .await
        .unwrap();
    create(store, &account, user("u1", "ann", 1), &[])
        .await
        .unwrap();
    let make = |id: &str, principal: &str, created: i64| Change::CreateOAuthSecret {
        secret: crate::OAuthSecret {
            account: account.clone(),
            ..oauth_secret(id, principal, created)
        },
        digest: format!("digest-{id}"),
        limit: 2,
    };
    store.apply(&account, make("a", "s1", 20)).await.unwrap();
    store.apply(&account, make("b", "s1", 10)).await.unwrap();
    let third = store.apply(&account, make("c", "s1", 30)).await;
    assert!(matches!(third, Err(ScimError::Conflict(_))), "{third:?}");
    let of_user = store.apply(&account, make("d", "u1", 30)).await;
    assert!(
        matches!(of_user, Err(ScimError::NotFound(_))),
        "{of_user:?}"
    );
    store.apply(&account, make("e", "s2", 30)).await.unwrap();
    let secrets = store
        .oauth_secrets(&account, &PrincipalId::new("s1"))
        .await
        .unwrap();
    let ids: Vec<&str> = secrets.iter().map(|s| s.secret.id.as_str()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(secrets[1].digest, "digest-a");
    assert_eq!(secrets[1].secret.scopes, ["all-apis"]);
    assert_eq!(
        secrets[1].secret.expires,
        Some(Timestamp::from_micros(1_020))
    );
    let delete_secret = |principal: &str, id: &str| Change::DeleteOAuthSecret {
        principal: PrincipalId::new(principal),
        id: id.into(),
    };
    store
        .apply(&account, delete_secret("s1", "a"))
        .await
        .unwrap();
    let again = store.apply(&account, delete_secret("s1", "a")).await;
    assert!(matches!(again, Err(ScimError::NotFound(_))), "{again:?}");
    let foreign = store.apply(&account, delete_secret("s1", "e")).await;
    assert!(
        matches!(foreign, Err(ScimError::NotFound(_))),
        "{foreign:?}"
    );
    assert_eq!(token_events(store).await, ["a"]);
    deactivate(store, &account, "s1").await.unwrap();
    assert_eq!(token_events(store).await, ["a", "b"]);
    update(
        store,
        &account,
        "s1",
        |principal| {
            principal.attributes.insert("active".into(), json!(true));
        },
        vec![],
    )
    .await
    .unwrap();
    let s1 = PrincipalId::new("s1");
    assert!(store.oauth_secrets(&account, &s1).await.unwrap().is_empty());
    delete(store, &account, "s2").await.unwrap();
    let s2 = PrincipalId::new("s2");
    assert!(store.oauth_secrets(&account, &s2).await.unwrap().is_empty());
}

/// An account's signing keys are read newest first, private key included; adding one deletes
/// the keys whose tokens have all expired by then and keeps the others; another account's
/// keys are its own.
pub async fn signing_keys_are_kept_newest_first_until_their_tokens_expire(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let other = seed_account_with(store, "other", "9000").await;
    let key = |account: &AccountId, kid: &str, created: i64| crate::SigningKey {
        account: account.clone(),
        kid: kid.into(),
        private_key: format!("seed-{kid}"),
        created: Timestamp::from_micros(created),
        signs_until: Timestamp::from_micros(created + 100),
        remove_after: Timestamp::from_micros(created + 150),
    };
    for (kid, created) in [("k1", 0), ("k2", 100), ("k3", 200)] {
        let change = Change::AddSigningKey(key(&account, kid, created));
        store.apply(&account, change).await.unwrap();
    }
    let change = Change::AddSigningKey(key(&other, "k9", 0));
    store.apply(&other, change).await.unwrap();
    let kids = |keys: Vec<crate::SigningKey>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
    // k1 could sign until 100 and its tokens lived until 150: gone when k3 came at 200.
    assert_eq!(
        kids(store.signing_keys(&account).await.unwrap()),
        ["k3", "k2"]
    );
    let keys = store.signing_keys(&account).await.unwrap();
    assert_eq!(keys[0], key(&account, "k3", 200));
    assert_eq!(kids(store.signing_keys(&other).await.unwrap()), ["k9"]);
}

/// Workspace settings are set and cleared by name, per workspace; a workspace that does not
/// exist is not found; deleting a workspace deletes its settings and its tokens.
pub async fn workspace_settings_are_set_cleared_and_go_with_their_workspace(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("1", "ann", 1), &[])
        .await
        .unwrap();
    let second = WorkspaceId::new("2000");
    store
        .apply(
            &account,
            new_workspace(Workspace {
                id: second.clone(),
                account: account.clone(),
                name: "second".into(),
                created: Timestamp::from_micros(5),
                deployment_name: None,
            }),
        )
        .await
        .unwrap();
    let set =
        |workspace: &WorkspaceId, values: &[(&str, Option<&str>)]| Change::SetWorkspaceSettings {
            workspace: workspace.clone(),
            values: values
                .iter()
                .map(|(name, value)| (name.to_string(), value.map(str::to_string)))
                .collect(),
        };
    let main = WorkspaceId::new("1000");
    store
        .apply(&account, set(&main, &[("b", Some("1")), ("a", Some("x"))]))
        .await
        .unwrap();
    store
        .apply(&account, set(&second, &[("a", Some("y"))]))
        .await
        .unwrap();
    store
        .apply(&account, set(&main, &[("b", None), ("a", Some("z"))]))
        .await
        .unwrap();
    let settings = |workspace: WorkspaceId| {
        let account = account.clone();
        async move {
            store
                .workspace_settings(&account, &workspace)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        settings(main.clone()).await,
        [("a".to_string(), "z".to_string())]
    );
    assert_eq!(
        settings(second.clone()).await,
        [("a".to_string(), "y".to_string())]
    );
    let missing = store
        .apply(&account, set(&WorkspaceId::new("9"), &[("a", Some("q"))]))
        .await;
    assert!(
        matches!(missing, Err(ScimError::NotFound(_))),
        "{missing:?}"
    );
    let change = Change::CreateToken {
        token: workspace_token("t1", "1", "2000", 1),
        digest: "d1".into(),
    };
    store.apply(&account, change).await.unwrap();
    store
        .apply(&account, Change::DeleteWorkspace { id: second.clone() })
        .await
        .unwrap();
    assert!(settings(second).await.is_empty());
    assert_eq!(store.token_by_digest("d1").await.unwrap(), None);
    assert_eq!(settings(main).await.len(), 1);
}

pub async fn small_member_lists_are_returned_and_large_ones_are_not(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    for (index, name) in ["u1", "u2", "u3"].iter().enumerate() {
        create(store, &account, user(name, name, index as i64 + 1), &[])
            .await
            .unwrap();
    }
    create(store, &account, group("g", "team"), &["u3", "u1", "u2"])
        .await
        .unwrap();
    let group_id = PrincipalId::new("g");
    let three = store
        .members_up_to(&account, &group_id, 3)
        .await
        .unwrap()
        .expect("three members fit a cap of three");
    let ids: Vec<&str> = three.iter().map(|member| member.id.as_str()).collect();
    assert_eq!(ids, ["u1", "u2", "u3"], "members come in id order");
    assert_eq!(
        three[0].display.as_deref(),
        Some("u1"),
        "a user shows its userName"
    );
    assert_eq!(
        store.members_up_to(&account, &group_id, 2).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .members_up_to(&account, &PrincipalId::new("u1"), 2)
            .await
            .unwrap(),
        Some(vec![]),
        "a principal without members has an empty list"
    );
}

pub async fn principals_are_found_by_name_ignoring_case_and_kind_apart(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("u1", "Alice@Example.com", 1), &[])
        .await
        .unwrap();
    create(store, &account, group("g", "Data Team"), &[])
        .await
        .unwrap();
    let found = store
        .principal_by_name(&account, PrincipalKind::User, "alice@example.COM")
        .await
        .unwrap()
        .expect("userName is matched ignoring case");
    assert_eq!(found.id.as_str(), "u1");
    let found = store
        .principal_by_name(&account, PrincipalKind::Group, "DATA TEAM")
        .await
        .unwrap()
        .expect("displayName is matched ignoring case");
    assert_eq!(found.id.as_str(), "g");
    assert_eq!(
        store
            .principal_by_name(&account, PrincipalKind::Group, "alice@example.com")
            .await
            .unwrap(),
        None,
        "a user's name does not find a group"
    );
}

/// Many writes at once (which a backend may commit together) still succeed or fail each on its
/// own: a failing change leaves nothing behind and takes no other change down with it.
pub async fn concurrent_writes_succeed_or_fail_each_alone(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let attempts = (0..40).map(|index| {
        // Every fourth attempt reuses one userName, cased differently: only one of those wins.
        let name = match index % 8 {
            0 => "dup@example.com".to_string(),
            4 => "DUP@example.com".to_string(),
            _ => format!("user-{index}"),
        };
        let account = account.clone();
        async move {
            create(
                store,
                &account,
                user(&format!("id-{index}"), &name, index as i64 + 1),
                &[],
            )
            .await
        }
    });
    // Groups whose second member does not exist fail after their own row is written: that row
    // must go with them.
    let broken_groups = (0..5).map(|index| {
        let account = account.clone();
        async move {
            create(
                store,
                &account,
                group(&format!("g-{index}"), &format!("broken-{index}")),
                &["id-1", "missing"],
            )
            .await
        }
    });
    let (outcomes, broken) = futures_util::future::join(
        futures_util::future::join_all(attempts),
        futures_util::future::join_all(broken_groups),
    )
    .await;
    assert!(broken.iter().all(Result::is_err));
    for index in 0..5 {
        let id = PrincipalId::new(format!("g-{index}"));
        assert_eq!(store.principal(&account, &id).await.unwrap(), None);
    }
    let failures: Vec<&ScimError> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(failures.len(), 9, "ten attempts on one userName: nine fail");
    assert!(failures.iter().all(|error| matches!(
        error,
        ScimError::BadRequest {
            scim_type: ScimType::Uniqueness,
            ..
        }
    )));
    let everyone = store
        .list_principals(
            &account,
            PrincipalKind::User,
            &ListQuery::parse(
                PrincipalKind::User.resource_type(),
                &ListParameters::default(),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(everyone.total_results, 31);
    // The losers left no trace: not as principals, not in the users group.
    assert_eq!(member_ids(store, &account, "users").await.len(), 31);
}

fn log_since(events: &[LoggedEvent], seq: u64) -> Vec<AccessEvent> {
    events
        .iter()
        .filter(|logged| logged.seq > seq)
        .map(|logged| logged.event.clone())
        .collect()
}

async fn whole_log(store: &dyn Store) -> Vec<LoggedEvent> {
    let mut events: Vec<LoggedEvent> = Vec::new();
    loop {
        let after = events.last().map_or(0, |logged| logged.seq);
        let page = store.access_log_after(after, 3).await.unwrap();
        if page.is_empty() {
            return events;
        }
        assert!(page.len() <= 3, "the limit is kept");
        events.extend(page);
    }
}

/// Every change that can alter an access answer is in the access log, in commit order, and
/// only changes that did change something are there.
/// An account's snapshot counts the access-log entries of that account only, up to its
/// position: the change tokens of one account must not move with another's writes.
pub async fn a_snapshot_counts_its_own_accounts_log_entries_only(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let first = seed_account(store).await;
    let second = seed_account_with(store, "second-account", "2000").await;
    let counted = |account: &AccountId| {
        let account = account.clone();
        async move {
            let snapshot = store.access_snapshot(&account).await.unwrap();
            let own = whole_log(store)
                .await
                .iter()
                .filter(|logged| logged.account == account && logged.seq <= snapshot.seq)
                .count();
            assert_eq!(snapshot.log_entries, own as u64, "{account}");
            snapshot.log_entries
        }
    };
    let before = counted(&first).await;
    for index in 0..3 {
        create(
            store,
            &second,
            user(&format!("s{index}"), &format!("s{index}"), 1),
            &[],
        )
        .await
        .unwrap();
    }
    assert_eq!(counted(&first).await, before, "the other account's writes");
    assert!(counted(&second).await >= 3);
    create(store, &first, user("u1", "alice", 1), &[])
        .await
        .unwrap();
    assert!(counted(&first).await > before);
}

pub async fn the_access_log_records_changes_in_commit_order(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let start = whole_log(store).await.last().map_or(0, |logged| logged.seq);
    create(store, &account, user("u1", "alice", 1), &[])
        .await
        .unwrap();
    create(store, &account, group("g", "team"), &["u1"])
        .await
        .unwrap();
    // Adding a member twice logs it once.
    add_members(store, &account, "g", &["u1"]).await.unwrap();
    store
        .apply(
            &account,
            Change::DeletePrincipal {
                id: PrincipalId::new("u1"),
                expected_version: None,
            },
        )
        .await
        .unwrap();
    let log = whole_log(store).await;
    assert!(log.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert!(log.iter().all(|logged| logged.account == account));
    let events = log_since(&log, start);
    let kinds: Vec<String> = events
        .iter()
        .map(|event| match event {
            AccessEvent::PrincipalSaved(facts) => format!("saved {}", facts.name),
            AccessEvent::PrincipalDeleted { id } => format!("deleted {id}"),
            AccessEvent::MemberAdded { group, member } => format!("added {member} to {group}"),
            AccessEvent::MemberRemoved { group, member } => {
                format!("removed {member} from {group}")
            }
            AccessEvent::WorkspaceAssigned { principal, .. } => format!("assigned {principal}"),
            AccessEvent::WorkspaceDeleted { workspace } => format!("deleted workspace {workspace}"),
            AccessEvent::EntitlementsSet {
                workspace,
                principal,
                ..
            } => format!("entitled {principal} in {workspace}"),
            AccessEvent::TokenChanged { id } => format!("token {id} changed"),
            AccessEvent::Governance(_) => "governance".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "saved alice",
            "added u1 to users",
            "saved team",
            "added u1 to g",
            "saved team",
            "deleted u1"
        ]
    );
}

/// A catalog renamed takes everything below it and every grant on them, in one change with
/// one log entry; a rename onto a taken name, or of a missing securable, changes nothing. A
/// comment is written and read back, and not logged.
pub async fn a_rename_carries_the_subtree_and_its_grants_and_a_comment_is_not_logged(
    stores: &mut Stores,
) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("u1", "alice", 1), &[])
        .await
        .unwrap();
    let governance = |change| store.apply(&account, Change::Governance(change));
    for (securable_type, full_name) in [
        (SecurableType::Catalog, "main"),
        (SecurableType::Schema, "main.sales"),
        (SecurableType::Table, "main.sales.orders"),
        (SecurableType::View, "main.sales.recent"),
        (SecurableType::Catalog, "mainly"),
        (SecurableType::Catalog, "taken"),
    ] {
        governance(GovernanceChange::CreateSecurable {
            securable_type,
            full_name: full_name.into(),
            owner: PrincipalId::new("u1"),
            comment: Some(format!("about {full_name}")),
            created: Timestamp::from_micros(5),
        })
        .await
        .unwrap();
    }
    for (securable_type, full_name, privilege) in [
        (SecurableType::Catalog, "main", Privilege::UseCatalog),
        (SecurableType::Schema, "main.sales", Privilege::UseSchema),
        (SecurableType::Table, "main.sales.orders", Privilege::Select),
    ] {
        governance(GovernanceChange::Grant {
            securable_type,
            full_name: full_name.into(),
            principal: PrincipalId::new("u1"),
            privileges: vec![privilege],
        })
        .await
        .unwrap();
    }
    let log_before = whole_log(store).await.len();
    let rename = |full_name: &str, new_name: &str| GovernanceChange::RenameSecurable {
        securable_type: SecurableType::Catalog,
        full_name: full_name.into(),
        new_name: new_name.into(),
    };
    assert!(matches!(
        governance(rename("main", "taken")).await,
        Err(ScimError::BadRequest {
            scim_type: ScimType::Uniqueness,
            ..
        })
    ));
    assert!(matches!(
        governance(rename("nowhere", "prod")).await,
        Err(ScimError::NotFound(_))
    ));
    assert_eq!(whole_log(store).await.len(), log_before, "nothing logged");
    governance(rename("main", "prod")).await.unwrap();

    let snapshot = store.access_snapshot(&account).await.unwrap();
    let names: Vec<&str> = snapshot
        .securables
        .iter()
        .map(|row| row.full_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "mainly",
            "prod",
            "taken",
            "prod.sales",
            "prod.sales.orders",
            "prod.sales.recent"
        ],
        "`mainly` is not below `main`"
    );
    let orders = store
        .securable(&account, SecurableType::Table, "prod.sales.orders")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(orders.comment.as_deref(), Some("about main.sales.orders"));
    assert_eq!(orders.created, Timestamp::from_micros(5));
    assert_eq!(orders.owner, PrincipalId::new("u1"));
    let mut granted: Vec<(String, Privilege)> = snapshot
        .grants
        .iter()
        .map(|grant| (grant.full_name.clone(), grant.privilege))
        .collect();
    granted.sort();
    assert_eq!(
        granted,
        [
            ("prod".to_string(), Privilege::UseCatalog),
            ("prod.sales".to_string(), Privilege::UseSchema),
            ("prod.sales.orders".to_string(), Privilege::Select),
        ]
    );
    let log = whole_log(store).await;
    assert_eq!(log.len(), log_before + 1);
    assert_eq!(
        log.last().unwrap().event,
        AccessEvent::Governance(rename("main", "prod"))
    );

    // A comment is kept (or cleared) and not logged; a missing securable's is refused.
    let comment = |full_name: &str, comment: Option<&str>| GovernanceChange::SetComment {
        securable_type: SecurableType::Schema,
        full_name: full_name.into(),
        comment: comment.map(str::to_string),
    };
    governance(comment("prod.sales", Some("renamed")))
        .await
        .unwrap();
    let sales = store
        .securable(&account, SecurableType::Schema, "prod.sales")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sales.comment.as_deref(), Some("renamed"));
    governance(comment("prod.sales", None)).await.unwrap();
    let sales = store
        .securable(&account, SecurableType::Schema, "prod.sales")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sales.comment, None);
    assert!(matches!(
        governance(comment("main.sales", Some("x"))).await,
        Err(ScimError::NotFound(_))
    ));
    assert_eq!(whole_log(store).await.len(), log_before + 1);
}

/// Securables, grants and ACLs are stored, dropped with their subtree, logged, and come back
/// in a snapshot that names the log position it is consistent with.
pub async fn governance_state_round_trips_through_snapshot_and_log(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("u1", "alice", 1), &[])
        .await
        .unwrap();
    let governance = |change| store.apply(&account, Change::Governance(change));
    for (securable_type, full_name) in [
        (SecurableType::Catalog, "main"),
        (SecurableType::Schema, "main.sales"),
        (SecurableType::Table, "main.sales.orders"),
        (SecurableType::Catalog, "other"),
    ] {
        governance(GovernanceChange::CreateSecurable {
            securable_type,
            full_name: full_name.into(),
            owner: PrincipalId::new("u1"),
            comment: None,
            created: Timestamp::from_micros(5),
        })
        .await
        .unwrap();
    }
    let duplicate = governance(GovernanceChange::CreateSecurable {
        securable_type: SecurableType::Catalog,
        full_name: "main".into(),
        owner: PrincipalId::new("u1"),
        comment: None,
        created: Timestamp::from_micros(6),
    })
    .await;
    assert!(matches!(
        duplicate,
        Err(ScimError::BadRequest {
            scim_type: ScimType::Uniqueness,
            ..
        })
    ));
    governance(GovernanceChange::Grant {
        securable_type: SecurableType::Schema,
        full_name: "main.sales".into(),
        principal: PrincipalId::new("users"),
        privileges: vec![Privilege::UseSchema, Privilege::Select],
    })
    .await
    .unwrap();
    governance(GovernanceChange::Revoke {
        securable_type: SecurableType::Schema,
        full_name: "main.sales".into(),
        principal: PrincipalId::new("users"),
        privileges: vec![Privilege::Select],
    })
    .await
    .unwrap();
    let in_main = |change| store.apply(&account, in_workspace("1000", vec![change]));
    in_main(GovernanceChange::SetObjectAcl {
        object_type: ObjectType::Jobs,
        object_id: "42".into(),
        entries: vec![AclEntry::new(
            PrincipalId::new("u1"),
            PermissionLevel::CanManageRun,
        )],
    })
    .await
    .unwrap();
    in_main(GovernanceChange::SetObjectParent {
        object_type: ObjectType::Notebooks,
        object_id: "7".into(),
        directory: Some("3".into()),
    })
    .await
    .unwrap();

    let below_main = store
        .securables(&account, SecurableType::Schema, Some("main"))
        .await
        .unwrap();
    assert_eq!(below_main.len(), 1);
    assert_eq!(below_main[0].full_name, "main.sales");
    let snapshot = store.access_snapshot(&account).await.unwrap();
    let log = whole_log(store).await;
    assert_eq!(snapshot.seq, log.last().unwrap().seq);
    let names: Vec<&str> = snapshot
        .securables
        .iter()
        .map(|row| row.full_name.as_str())
        .collect();
    assert_eq!(names, ["main", "other", "main.sales", "main.sales.orders"]);
    assert_eq!(
        snapshot.grants,
        vec![GrantRow {
            securable_type: SecurableType::Schema,
            full_name: "main.sales".into(),
            principal: PrincipalId::new("users"),
            privilege: Privilege::UseSchema,
        }]
    );
    assert_eq!(snapshot.acl.len(), 1);
    assert_eq!(
        snapshot.objects.len(),
        3,
        "the job, the notebook and its directory"
    );
    assert!(snapshot
        .principals
        .iter()
        .any(|facts| facts.name == "alice" && facts.active));
    assert!(snapshot
        .memberships
        .contains(&(PrincipalId::new("users"), PrincipalId::new("u1"))));

    // Dropping the catalog takes its schema, table and grants; the other catalog stays.
    governance(GovernanceChange::DropSecurable {
        securable_type: SecurableType::Catalog,
        full_name: "main".into(),
    })
    .await
    .unwrap();
    let snapshot = store.access_snapshot(&account).await.unwrap();
    let names: Vec<&str> = snapshot
        .securables
        .iter()
        .map(|row| row.full_name.as_str())
        .collect();
    assert_eq!(names, ["other"]);
    assert!(snapshot.grants.is_empty());
    assert!(matches!(
        governance(GovernanceChange::DropSecurable {
            securable_type: SecurableType::Catalog,
            full_name: "main".into(),
        })
        .await,
        Err(ScimError::NotFound(_))
    ));
    let last = whole_log(store).await.pop().unwrap();
    assert_eq!(
        last.event,
        AccessEvent::Governance(GovernanceChange::DropSecurable {
            securable_type: SecurableType::Catalog,
            full_name: "main".into(),
        }),
        "a failed change logs nothing"
    );
    // A deleted principal's grants and ACL entries go with it.
    store
        .apply(
            &account,
            Change::DeletePrincipal {
                id: PrincipalId::new("u1"),
                expected_version: None,
            },
        )
        .await
        .unwrap();
    assert!(store
        .access_snapshot(&account)
        .await
        .unwrap()
        .acl
        .is_empty());
}

/// The workspace tree: entries found by path and listed by directory in path order; a taken
/// path refused (the batch it is in writing nothing); creations logged as placements; a
/// removed entry's path free again.
pub async fn the_workspace_tree_is_found_by_path_and_listed_by_directory(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let main = WorkspaceId::new("1000");
    let entry = |object_type, id: &str, path: &str, directory: Option<&str>| WorkspaceEntry {
        object_type,
        object_id: id.into(),
        path: path.into(),
        directory: directory.map(str::to_string),
        language: (object_type == ObjectType::Notebooks).then(|| "PYTHON".to_string()),
    };
    let create = |entry: WorkspaceEntry| GovernanceChange::CreateWorkspaceEntry { entry };
    let shared = entry(ObjectType::Directories, "10", "/Shared", None);
    let team = entry(ObjectType::Directories, "11", "/Shared/team", Some("10"));
    let notebook = entry(ObjectType::Notebooks, "12", "/Shared/team/nb", Some("11"));
    let file = entry(ObjectType::Files, "13", "/Shared/a.csv", Some("10"));
    store
        .apply(
            &account,
            in_workspace(
                "1000",
                vec![
                    create(shared.clone()),
                    create(team.clone()),
                    create(notebook.clone()),
                    create(file.clone()),
                ],
            ),
        )
        .await
        .unwrap();
    for expected in [&shared, &team, &notebook, &file] {
        assert_eq!(
            store
                .workspace_entry(&account, &main, &expected.path)
                .await
                .unwrap()
                .as_ref(),
            Some(expected)
        );
    }
    assert_eq!(
        store
            .workspace_entry(&account, &main, "/Shared/none")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .workspace_entry(&account, &main, "/shared")
            .await
            .unwrap(),
        None,
        "paths are case-sensitive"
    );
    assert_eq!(
        store
            .workspace_entries_in(&account, &main, None)
            .await
            .unwrap(),
        std::slice::from_ref(&shared)
    );
    assert_eq!(
        store
            .workspace_entries_in(&account, &main, Some("10"))
            .await
            .unwrap(),
        [file.clone(), team.clone()],
        "by path"
    );
    // Objects known only from an ACL are not in the tree.
    store
        .apply(
            &account,
            in_workspace(
                "1000",
                vec![GovernanceChange::SetObjectAcl {
                    object_type: ObjectType::Jobs,
                    object_id: "77".into(),
                    entries: Vec::new(),
                }],
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .workspace_entries_in(&account, &main, None)
            .await
            .unwrap()
            .len(),
        1
    );

    // The log records placements, which the snapshot agrees with.
    let log = whole_log(store).await;
    assert!(log.iter().any(|logged| logged.event
        == AccessEvent::Governance(GovernanceChange::SetObjectParent {
            object_type: ObjectType::Notebooks,
            object_id: "12".into(),
            directory: Some("11".into()),
        })));
    let snapshot = store.access_snapshot(&account).await.unwrap();
    let placed = snapshot
        .objects
        .iter()
        .find(|row| row.object_id == "12")
        .unwrap();
    assert_eq!(placed.directory.as_deref(), Some("11"));
    assert_eq!(placed.path.as_deref(), Some("/Shared/team/nb"));
    assert_eq!(placed.language.as_deref(), Some("PYTHON"));

    // A taken path is a uniqueness conflict, and the batch it is in writes nothing.
    let before = whole_log(store).await.len();
    let refused = store
        .apply(
            &account,
            in_workspace(
                "1000",
                vec![
                    create(entry(ObjectType::Directories, "20", "/Other", None)),
                    create(entry(
                        ObjectType::Notebooks,
                        "21",
                        "/Shared/team",
                        Some("10"),
                    )),
                ],
            ),
        )
        .await;
    assert!(matches!(
        refused,
        Err(ScimError::BadRequest {
            scim_type: ScimType::Uniqueness,
            ..
        })
    ));
    assert_eq!(
        store
            .workspace_entry(&account, &main, "/Other")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        whole_log(store).await.len(),
        before,
        "a refused batch logs nothing"
    );
    // So is a taken id.
    let refused = store
        .apply(
            &account,
            in_workspace(
                "1000",
                vec![create(entry(
                    ObjectType::Notebooks,
                    "12",
                    "/Shared/copy",
                    Some("10"),
                ))],
            ),
        )
        .await;
    assert!(refused.is_err());

    // Removed, the path is free again.
    store
        .apply(
            &account,
            in_workspace(
                "1000",
                vec![GovernanceChange::RemoveObject {
                    object_type: ObjectType::Notebooks,
                    object_id: "12".into(),
                }],
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .workspace_entry(&account, &main, "/Shared/team/nb")
            .await
            .unwrap(),
        None
    );
    store
        .apply(
            &account,
            in_workspace(
                "1000",
                vec![create(entry(
                    ObjectType::Files,
                    "22",
                    "/Shared/team/nb",
                    Some("11"),
                ))],
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .workspace_entries_in(&account, &main, Some("11"))
            .await
            .unwrap()[0]
            .object_id,
        "22"
    );
}

/// A batch of governance changes commits whole, one log entry per change, or, when one of
/// them fails, not at all: a permissions PATCH that names an unknown securable halfway must
/// leave the grants before it unmade.
pub async fn a_governance_batch_commits_whole_or_not_at_all(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("u1", "alice", 1), &[])
        .await
        .unwrap();
    let catalog = |name: &str| GovernanceChange::CreateSecurable {
        securable_type: SecurableType::Catalog,
        full_name: name.into(),
        owner: PrincipalId::new("u1"),
        comment: None,
        created: Timestamp::from_micros(5),
    };
    let grant = |privilege| GovernanceChange::Grant {
        securable_type: SecurableType::Catalog,
        full_name: "main".into(),
        principal: PrincipalId::new("users"),
        privileges: vec![privilege],
    };
    store
        .apply(&account, Change::Governance(catalog("main")))
        .await
        .unwrap();
    let before = whole_log(store).await.len();
    let failed = store
        .apply(
            &account,
            Change::GovernanceBatch(vec![
                grant(Privilege::UseCatalog),
                // Already exists: the whole batch must fail.
                catalog("main"),
            ]),
        )
        .await;
    assert!(failed.is_err());
    assert!(store
        .access_snapshot(&account)
        .await
        .unwrap()
        .grants
        .is_empty());
    assert_eq!(
        whole_log(store).await.len(),
        before,
        "a failed batch logs nothing"
    );

    store
        .apply(
            &account,
            Change::GovernanceBatch(vec![
                grant(Privilege::UseCatalog),
                grant(Privilege::CreateSchema),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        store.access_snapshot(&account).await.unwrap().grants.len(),
        2
    );
    assert_eq!(
        whole_log(store).await.len(),
        before + 2,
        "one entry per change"
    );
}

/// Two additions of opposite nestings at once (A into B, B into A), as two nodes might make
/// them: at most one succeeds, and no cycle exists afterwards. A backend whose cycle check reads
/// only committed data must serialise these checks, or both pass.
pub async fn opposite_nestings_at_once_never_make_a_cycle(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    for round in 0..12 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        create(store, &account, group(&a, &a), &[]).await.unwrap();
        create(store, &account, group(&b, &b), &[]).await.unwrap();
        let (a_into_b, b_into_a) = futures_util::future::join(
            add_members(store, &account, &b, &[a.as_str()]),
            add_members(store, &account, &a, &[b.as_str()]),
        )
        .await;
        assert!(
            a_into_b.is_err() || b_into_a.is_err(),
            "round {round}: both opposite nestings succeeded"
        );
        for outcome in [&a_into_b, &b_into_a] {
            if let Err(error) = outcome {
                assert_eq!(error.code(), "invalidValue", "round {round}: {error}");
            }
        }
        let a_members = member_ids(store, &account, &a).await;
        let b_members = member_ids(store, &account, &b).await;
        assert!(
            !(a_members.contains(&b) && b_members.contains(&a)),
            "round {round}: a cycle was stored"
        );
    }
}

/// Two updates of one group from the same version at once, each adding a different member:
/// one commits, the other is a precondition failure that wrote nothing (no lost update, no
/// half-applied membership).
pub async fn concurrent_updates_from_one_version_commit_one(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    for id in ["u1", "u2"] {
        create(store, &account, user(id, id, 1), &[]).await.unwrap();
    }
    create(store, &account, group("g", "team"), &[])
        .await
        .unwrap();
    let current = store
        .principal(&account, &PrincipalId::new("g"))
        .await
        .unwrap()
        .unwrap();
    let update = |member: &str| {
        let mut next = current.clone();
        next.version += 1;
        store.apply(
            &account,
            Change::UpdatePrincipal {
                principal: next,
                expected_version: current.version,
                membership: vec![MembershipStep::Add(vec![MemberValue {
                    id: PrincipalId::new(member),
                    kind_hint: None,
                }])],
                workspace: None,
            },
        )
    };
    let (first, second) = futures_util::future::join(update("u1"), update("u2")).await;
    assert!(
        first.is_ok() != second.is_ok(),
        "exactly one commits: {first:?} {second:?}"
    );
    let loser = if first.is_ok() { second } else { first };
    assert!(matches!(loser, Err(ScimError::PreconditionFailed(_))));
    assert_eq!(member_ids(store, &account, "g").await.len(), 1);
}

/// Reads an account's whole directory through the export pages, `limit` at a time.
async fn all_principals(store: &dyn Store, account: &AccountId, limit: usize) -> Vec<Principal> {
    let mut principals: Vec<Principal> = Vec::new();
    loop {
        let after = principals.last().map(|principal| principal.id.clone());
        let page = store
            .principals_page(account, after.as_ref(), limit)
            .await
            .unwrap();
        assert!(page.len() <= limit, "the limit is kept");
        if page.is_empty() {
            return principals;
        }
        principals.extend(page);
    }
}

async fn all_memberships(
    store: &dyn Store,
    account: &AccountId,
    limit: usize,
) -> Vec<MembershipRow> {
    let mut memberships: Vec<MembershipRow> = Vec::new();
    loop {
        let page = store
            .memberships_page(account, memberships.last(), limit)
            .await
            .unwrap();
        assert!(page.len() <= limit, "the limit is kept");
        if page.is_empty() {
            return memberships;
        }
        memberships.extend(page);
    }
}

async fn export_text(store: &dyn Store, page_size: usize) -> String {
    let mut output = Vec::new();
    transfer::export(store, &mut output, page_size, &mut |_| {})
        .await
        .unwrap();
    String::from_utf8(output).unwrap()
}

async fn import_text(
    store: &dyn Store,
    text: &str,
    batch_size: usize,
) -> Result<transfer::ImportSummary, TransferError> {
    transfer::import(store, &mut text.as_bytes(), batch_size, &mut |_| {}).await
}

/// Fills an account with every kind of record an export carries: users with password hashes,
/// enterprise attributes and entitlements, an inactive user, a service principal, nested
/// groups, a principal at a later version, tokens (one revoked-free, one expiring),
/// securables with grants, and workspace objects in a directory with ACLs.
async fn populate_for_export(store: &dyn Store) -> AccountId {
    let account = seed_account(store).await;
    let mut alice = principal(
        "u1",
        PrincipalKind::User,
        json!({
            "userName": "alice@example.com",
            "displayName": "Alice",
            "active": true,
            "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
            "entitlements": [{"value": "workspace-access"}, {"value": "databricks-sql-access"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "0042",
                "manager": {"value": "u2"},
                "costCenter": "R&D ✓"
            }
        }),
        1_700_000_000_123_456,
    );
    alice.password_hash =
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into());
    create(store, &account, alice, &[]).await.unwrap();
    let mut bob = user("u2", "bob", 2);
    bob.attributes.insert("active".into(), json!(false));
    create(store, &account, bob, &[]).await.unwrap();
    for index in 3..8 {
        create(
            store,
            &account,
            user(&format!("u{index}"), &format!("user{index}"), index),
            &[],
        )
        .await
        .unwrap();
    }
    create(
        store,
        &account,
        principal(
            "sp1",
            PrincipalKind::ServicePrincipal,
            json!({"applicationId": "9f0c-ci", "displayName": "ci", "active": true}),
            9,
        ),
        &[],
    )
    .await
    .unwrap();
    create(store, &account, group("eng", "engineers"), &["u1", "u3"])
        .await
        .unwrap();
    create(
        store,
        &account,
        group("all", "everyone"),
        &["eng", "sp1", "u4"],
    )
    .await
    .unwrap();
    // Two updates: versions and last_modified must come across as they are.
    add_members(store, &account, "admins", &["u1"])
        .await
        .unwrap();
    add_members(store, &account, "all", &["u5"]).await.unwrap();
    for (id, principal_id, digest, expires) in [
        ("t1", "u1", "d1", Some(9_999_999_999_000_000)),
        ("t2", "sp1", "d2", None),
    ] {
        store
            .apply(
                &account,
                Change::CreateToken {
                    token: Token {
                        id: id.into(),
                        account: account.clone(),
                        principal: PrincipalId::new(principal_id),
                        scope: TokenScope::AllApis,
                        comment: Some(format!("token {id}")),
                        created: Timestamp::from_micros(77),
                        expires: expires.map(Timestamp::from_micros),
                        workspace: None,
                        created_by: None,
                    },
                    digest: digest.into(),
                },
            )
            .await
            .unwrap();
    }
    let mut changes = Vec::new();
    for (securable_type, full_name, comment) in [
        (SecurableType::Catalog, "main", Some("the main catalog")),
        (SecurableType::Schema, "main.sales", None),
        (SecurableType::Table, "main.sales.orders", None),
    ] {
        changes.push(GovernanceChange::CreateSecurable {
            securable_type,
            full_name: full_name.into(),
            owner: PrincipalId::new("u1"),
            comment: comment.map(str::to_string),
            created: Timestamp::from_micros(5),
        });
    }
    changes.push(GovernanceChange::Grant {
        securable_type: SecurableType::Catalog,
        full_name: "main".into(),
        principal: PrincipalId::new("users"),
        privileges: vec![Privilege::UseCatalog],
    });
    changes.push(GovernanceChange::Grant {
        securable_type: SecurableType::Schema,
        full_name: "main.sales".into(),
        principal: PrincipalId::new("eng"),
        privileges: vec![Privilege::UseSchema, Privilege::Select],
    });
    changes.push(GovernanceChange::SetObjectAcl {
        object_type: ObjectType::Jobs,
        object_id: "42".into(),
        entries: vec![
            AclEntry::new(PrincipalId::new("u1"), PermissionLevel::CanManageRun),
            AclEntry::new(PrincipalId::new("all"), PermissionLevel::CanView),
            AclEntry::new(PrincipalId::new("sp1"), PermissionLevel::CanManage),
        ],
    });
    changes.push(GovernanceChange::SetObjectParent {
        object_type: ObjectType::Notebooks,
        object_id: "7".into(),
        directory: Some("3".into()),
    });
    changes.push(GovernanceChange::SetObjectAcl {
        object_type: ObjectType::Directories,
        object_id: "3".into(),
        entries: vec![AclEntry::new(
            PrincipalId::new("eng"),
            PermissionLevel::CanManage,
        )],
    });
    // Part of the workspace tree: paths and a language travel too.
    for (object_type, id, path, directory, language) in [
        (ObjectType::Directories, "30", "/Shared", None, None),
        (
            ObjectType::Notebooks,
            "31",
            "/Shared/nb",
            Some("30"),
            Some("SQL"),
        ),
    ] {
        changes.push(GovernanceChange::CreateWorkspaceEntry {
            entry: WorkspaceEntry {
                object_type,
                object_id: id.into(),
                path: path.into(),
                directory: directory.map(str::to_string),
                language: language.map(str::to_string),
            },
        });
    }
    // An isolated catalog and its binding travel too.
    changes.push(GovernanceChange::SetIsolationMode {
        catalog: "main".into(),
        isolation_mode: IsolationMode::Isolated,
    });
    changes.push(GovernanceChange::BindWorkspace {
        catalog: "main".into(),
        workspace: WorkspaceId::new("1000"),
        binding_type: Some(BindingType::ReadOnly),
    });
    store
        .apply(&account, in_workspace("1000", changes))
        .await
        .unwrap();
    // A second workspace with a tree of its own, at the same path, and a job's ACL.
    let second = Workspace {
        id: WorkspaceId::new("2000"),
        account: account.clone(),
        name: "second".into(),
        created: Timestamp::from_micros(7),
        deployment_name: None,
    };
    // Its `users` group holds the defaults there, which the first workspace's does not.
    store
        .apply(
            &account,
            Change::CreateWorkspace {
                workspace: second,
                users_entitlements: vec![json!({"value": "workspace-access"})],
            },
        )
        .await
        .unwrap();
    let shared_there = WorkspaceEntry {
        object_type: ObjectType::Directories,
        object_id: "40".into(),
        path: "/Shared".into(),
        directory: None,
        language: None,
    };
    let job_there = GovernanceChange::SetObjectAcl {
        object_type: ObjectType::Jobs,
        object_id: "43".into(),
        entries: vec![AclEntry::new(
            PrincipalId::new("eng"),
            PermissionLevel::CanView,
        )],
    };
    let there = vec![
        GovernanceChange::CreateWorkspaceEntry {
            entry: shared_there,
        },
        job_there,
    ];
    store
        .apply(&account, in_workspace("2000", there))
        .await
        .unwrap();
    for (principal, permission) in [
        ("eng", WorkspacePermission::User),
        ("u1", WorkspacePermission::Admin),
    ] {
        store
            .apply(
                &account,
                Change::AssignToWorkspace {
                    workspace: WorkspaceId::new("1000"),
                    principal: PrincipalId::new(principal),
                    permission: Some(permission),
                },
            )
            .await
            .unwrap();
    }
    // Rule sets: one written twice (its version must come across), one of the account.
    let eng = rule_set("groups/eng", Some("eng"), &[("roles/group.manager", "u1")]);
    replace_rule_set(store, &account, eng, 0).await.unwrap();
    let eng = rule_set(
        "groups/eng",
        Some("eng"),
        &[
            ("roles/group.manager", "u1"),
            ("roles/group.manager", "all"),
        ],
    );
    replace_rule_set(store, &account, eng, 1).await.unwrap();
    let sp = rule_set(
        "servicePrincipals/sp1",
        Some("sp1"),
        &[("roles/servicePrincipal.user", "u1")],
    );
    replace_rule_set(store, &account, sp, 0).await.unwrap();
    // Entitlements per workspace: alice holds her document's in the first workspace only,
    // and another one, with a display, in the second.
    for (workspace, entitlements) in [
        (
            "1000",
            json!([{"value": "workspace-access"}, {"value": "databricks-sql-access"}]),
        ),
        (
            "2000",
            json!([{"value": "allow-cluster-create", "display": "clusters ✓"}]),
        ),
    ] {
        let workspace = WorkspaceId::new(workspace);
        let mut alice = store
            .principal_in(&account, &workspace, &PrincipalId::new("u1"))
            .await
            .unwrap()
            .unwrap();
        alice.attributes.insert("entitlements".into(), entitlements);
        let expected_version = alice.version;
        alice.version += 1;
        store
            .apply(
                &account,
                Change::UpdatePrincipal {
                    principal: alice,
                    expected_version,
                    membership: vec![],
                    workspace: Some(workspace),
                },
            )
            .await
            .unwrap();
    }
    account
}

/// What an account's access log says its state is, as sorted plain values.
#[derive(Debug, PartialEq)]
struct Replayed {
    principals: Vec<String>,
    memberships: Vec<(String, String)>,
    /// `full_name principal PRIVILEGE`.
    grants: Vec<String>,
    /// `(type/id, principal, level)`: the last ACL logged for each object.
    acl: Vec<(String, String, String)>,
}

/// The log replayed into plain sets, which is what a following access engine does with it.
fn replayed(events: &[LoggedEvent], account: &AccountId) -> Replayed {
    let mut principals = Vec::new();
    let mut memberships = Vec::new();
    let mut grants = Vec::new();
    let mut acl: std::collections::BTreeMap<String, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    for logged in events.iter().filter(|logged| logged.account == *account) {
        match &logged.event {
            AccessEvent::PrincipalSaved(facts) => principals.push(facts.id.to_string()),
            AccessEvent::MemberAdded { group, member } => {
                memberships.push((group.to_string(), member.to_string()))
            }
            AccessEvent::Governance(GovernanceChange::Grant {
                full_name,
                principal,
                privileges,
                ..
            }) => {
                for privilege in privileges {
                    grants.push(format!("{full_name} {principal} {}", privilege.as_str()));
                }
            }
            AccessEvent::Governance(GovernanceChange::SetObjectAcl {
                object_type,
                object_id,
                entries,
            }) => {
                acl.insert(
                    format!("{}/{object_id}", object_type.as_str()),
                    entries
                        .iter()
                        .map(|entry| (entry.principal.to_string(), entry.level.as_str().into()))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    principals.sort();
    principals.dedup();
    memberships.sort();
    grants.sort();
    let mut acl_rows: Vec<(String, String, String)> = acl
        .into_iter()
        .flat_map(|(object, entries)| {
            entries
                .into_iter()
                .map(move |(principal, level)| (object.clone(), principal, level))
        })
        .collect();
    acl_rows.sort();
    Replayed {
        principals,
        memberships,
        grants,
        acl: acl_rows,
    }
}

/// An export imported into an empty store gives back the same store: every principal field by
/// field (password hashes, versions, timestamps), memberships, tokens that still authenticate
/// by their digest, governance state; exporting the copy gives the same text; and the copy's
/// access log describes exactly its state, so an engine following it agrees. Import refuses an
/// account the target holds, a malformed line by its number, and a batch the store refuses,
/// leaving nothing of that batch.
pub async fn an_export_imports_into_an_empty_store_unchanged(stores: &mut Stores) {
    let (source, target) = (stores.fresh().await, stores.fresh().await);
    let (source, target) = (&*source, &*target);
    let account = populate_for_export(source).await;
    // Small pages and batches: keyset paging and batch boundaries (an ACL split across two
    // batches included) are crossed many times.
    let text = export_text(source, 2).await;
    assert!(text.starts_with("{\"type\":\"scimitar-export\",\"version\":5}\n"));
    assert!(
        text.contains("\"type\":\"assignment\""),
        "assignments are exported"
    );
    assert_eq!(
        text.matches("\"type\":\"entitlements\"").count(),
        3,
        "alice's in two workspaces, users' in the second"
    );
    assert!(
        text.contains("\"type\":\"binding\"") && text.contains("\"isolation_mode\":\"ISOLATED\""),
        "catalog isolation and bindings are exported"
    );
    assert!(!text.contains("password\""), "no clear password field");
    let lines = text.lines().count();
    let summary = import_text(target, &text, 3).await.unwrap();
    assert_eq!(summary.accounts, vec![account.clone()]);
    assert_eq!(summary.records, u64::try_from(lines - 1).unwrap());
    assert!(summary.batches > 5);

    assert_eq!(
        target.accounts().await.unwrap(),
        source.accounts().await.unwrap()
    );
    assert_eq!(
        target.workspaces(&account).await.unwrap(),
        source.workspaces(&account).await.unwrap()
    );
    let principals = all_principals(source, &account, 3).await;
    assert_eq!(
        principals.len(),
        12,
        "admins, users, 7 users, sp1, eng, all"
    );
    assert_eq!(all_principals(target, &account, 4).await, principals);
    let alice = target
        .principal_by_name(&account, PrincipalKind::User, "ALICE@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(alice
        .password_hash
        .as_deref()
        .unwrap()
        .starts_with("$argon2id$"));
    assert_eq!(
        alice.attributes["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
            ["costCenter"],
        "R&D ✓"
    );
    let memberships = all_memberships(source, &account, 2).await;
    assert!(memberships.contains(&MembershipRow {
        group: PrincipalId::new("all"),
        member: PrincipalId::new("eng"),
        created: Timestamp::from_micros(10),
    }));
    assert_eq!(all_memberships(target, &account, 5).await, memberships);
    assert_eq!(
        member_ids(target, &account, "users").await.len(),
        8,
        "every user and the service principal, once each"
    );
    assert_eq!(
        target.tokens(&account).await.unwrap(),
        source.tokens(&account).await.unwrap()
    );
    let entitlements = source.entitlements(&account).await.unwrap();
    assert_eq!(entitlements.len(), 3);
    assert_eq!(target.entitlements(&account).await.unwrap(), entitlements);
    let alice_there = target
        .principal_in(&account, &WorkspaceId::new("2000"), &PrincipalId::new("u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        alice_there.attributes["entitlements"],
        json!([{"value": "allow-cluster-create", "display": "clusters ✓"}])
    );
    for digest in ["d1", "d2"] {
        let moved = target.token_by_digest(digest).await.unwrap();
        assert!(
            moved.is_some(),
            "token {digest} authenticates after the move"
        );
        assert_eq!(moved, source.token_by_digest(digest).await.unwrap());
    }
    let (mut before, mut after) = (
        source.access_snapshot(&account).await.unwrap(),
        target.access_snapshot(&account).await.unwrap(),
    );
    for snapshot in [&mut before, &mut after] {
        // Log positions, which an import does not carry over.
        snapshot.seq = 0;
        snapshot.log_entries = 0;
        snapshot.principals.sort_by(|a, b| a.id.cmp(&b.id));
        snapshot.memberships.sort();
    }
    assert_eq!(after, before);
    assert_eq!(
        target
            .workspace_entries_in(&account, &WorkspaceId::new("1000"), Some("30"))
            .await
            .unwrap()[0]
            .language
            .as_deref(),
        Some("SQL")
    );
    let rule_sets = source.rule_sets(&account).await.unwrap();
    assert_eq!(rule_sets.len(), 2);
    assert_eq!(rule_sets[0].1, 2, "groups/eng was written twice");
    assert_eq!(target.rule_sets(&account).await.unwrap(), rule_sets);
    // Each object stays in its workspace: one path, two objects.
    for (workspace, id) in [("1000", "30"), ("2000", "40")] {
        let workspace = WorkspaceId::new(workspace);
        let shared = target.workspace_entry(&account, &workspace, "/Shared");
        assert_eq!(shared.await.unwrap().unwrap().object_id, id);
    }
    assert_eq!(
        target
            .object_workspace(&account, ObjectType::Jobs, "43")
            .await
            .unwrap(),
        Some(WorkspaceId::new("2000"))
    );
    assert_eq!(
        export_text(target, 5).await,
        text,
        "the copy exports the same"
    );

    let log = replayed(&whole_log(target).await, &account);
    let mut expected_ids: Vec<String> = principals.iter().map(|p| p.id.to_string()).collect();
    expected_ids.sort();
    assert_eq!(log.principals, expected_ids);
    let mut expected_memberships: Vec<(String, String)> = memberships
        .iter()
        .map(|row| (row.group.to_string(), row.member.to_string()))
        .collect();
    expected_memberships.sort();
    assert_eq!(log.memberships, expected_memberships);
    let mut expected_grants: Vec<String> = after
        .grants
        .iter()
        .map(|grant| {
            format!(
                "{} {} {}",
                grant.full_name,
                grant.principal,
                grant.privilege.as_str()
            )
        })
        .collect();
    expected_grants.sort();
    assert_eq!(log.grants, expected_grants);
    let mut expected_acl: Vec<(String, String, String)> = after
        .acl
        .iter()
        .map(|row| {
            (
                format!("{}/{}", row.object_type.as_str(), row.object_id),
                row.entry.principal.to_string(),
                row.entry.level.as_str().to_string(),
            )
        })
        .collect();
    expected_acl.sort();
    assert_eq!(
        log.acl, expected_acl,
        "an ACL split across batches is logged whole"
    );

    // The target holds the account now: a second import is refused before it writes.
    let log_length = whole_log(target).await.len();
    match import_text(target, &text, 3).await {
        Err(TransferError::AccountExists {
            line: 2,
            account: refused,
        }) => {
            assert_eq!(refused, account)
        }
        other => panic!("expected AccountExists, got {other:?}"),
    }
    assert_eq!(whole_log(target).await.len(), log_length);

    // A malformed line is named; the batch it would have joined is not written.
    let header = "{\"type\":\"scimitar-export\",\"version\":1}";
    let account_line =
        |id: &str| format!("{{\"type\":\"account\",\"id\":\"{id}\",\"name\":\"x\",\"created\":1}}");
    let malformed = format!(
        "{header}\n{}\n{{\"type\":\"workspace\",\"account\":\"acct-2\",\"id\":\"w2\",\"name\":\"w\",\"created\":1}}\n{{\"type\":\"principal\",\"account\":\"acct-2\"}}\n",
        account_line("acct-2")
    );
    match import_text(target, &malformed, 100).await {
        Err(TransferError::Malformed { line: 4, .. }) => {}
        other => panic!("expected a malformed line 4, got {other:?}"),
    }
    match import_text(target, "{\"type\":\"account\"}\n", 100).await {
        Err(TransferError::Malformed { line: 1, .. }) => {}
        other => panic!("expected a missing header, got {other:?}"),
    }
    // A batch the store refuses (a member that does not exist) is written not at all.
    let refused = format!(
        "{header}\n{}\n{{\"type\":\"membership\",\"account\":\"acct-3\",\"group\":\"g\",\"member\":\"nobody\",\"created\":1}}\n",
        account_line("acct-3")
    );
    match import_text(target, &refused, 100).await {
        Err(TransferError::Refused {
            first_line: 2,
            last_line: 3,
            ..
        }) => {}
        other => panic!("expected a refused batch, got {other:?}"),
    }
    let accounts: Vec<AccountId> = target
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|account| account.id)
        .collect();
    assert_eq!(
        accounts,
        vec![account],
        "nothing of the failed imports remains"
    );
    assert_eq!(whole_log(target).await.len(), log_length);
}

/// A store that has just opened is ready: it answers, and its schema is current.
pub async fn an_open_store_is_ready(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    assert_eq!(store.ready().await, Ok(()));
}

/// An ACL write guarded by the ACL it was computed from goes through only while that is still
/// the stored ACL; otherwise the whole batch is a 412 that writes and logs nothing.
pub async fn an_acl_write_computed_from_a_stale_acl_is_a_conflict(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("u1", "alice", 1), &[])
        .await
        .unwrap();
    create(store, &account, user("u2", "bob", 2), &[])
        .await
        .unwrap();
    let alice = AclEntry::new(PrincipalId::new("u1"), PermissionLevel::CanView);
    let bob = AclEntry::new(PrincipalId::new("u2"), PermissionLevel::CanView);
    let guarded = |expected: Vec<AclEntry>, entries: Vec<AclEntry>| {
        in_workspace(
            "1000",
            vec![
                GovernanceChange::ExpectObjectAcl {
                    object_type: ObjectType::Jobs,
                    object_id: "7".into(),
                    entries: expected,
                },
                GovernanceChange::SetObjectAcl {
                    object_type: ObjectType::Jobs,
                    object_id: "7".into(),
                    entries,
                },
            ],
        )
    };
    // From "no ACL yet" to alice: the object had none, so this goes through.
    store
        .apply(&account, guarded(vec![], vec![alice.clone()]))
        .await
        .unwrap();
    let before = whole_log(store).await;
    // A second writer that also started from "no ACL" is refused, and leaves no trace.
    let stale = store
        .apply(&account, guarded(vec![], vec![bob.clone()]))
        .await;
    assert!(
        matches!(stale, Err(ScimError::PreconditionFailed(_))),
        "{stale:?}"
    );
    assert_eq!(
        whole_log(store).await,
        before,
        "a refused batch logs nothing"
    );
    let acl: Vec<AclEntry> = store
        .access_snapshot(&account)
        .await
        .unwrap()
        .acl
        .into_iter()
        .map(|row| row.entry)
        .collect();
    assert_eq!(acl, vec![alice.clone()]);
    // Computed again from the current ACL, it goes through; the precondition is not logged.
    store
        .apply(&account, guarded(vec![alice.clone()], vec![alice, bob]))
        .await
        .unwrap();
    let after = whole_log(store).await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only the SetObjectAcl is logged"
    );
}

/// A new principal whose id is taken (ids are drawn without coordination between nodes) is a
/// uniqueness conflict that writes nothing, which the service answers by drawing again.
pub async fn a_taken_id_is_a_uniqueness_conflict(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("u1", "alice", 1), &[])
        .await
        .unwrap();
    let taken = create(store, &account, user("u1", "bob", 2), &[]).await;
    assert!(
        matches!(
            taken,
            Err(ScimError::BadRequest {
                scim_type: ScimType::Uniqueness,
                ..
            })
        ),
        "{taken:?}"
    );
    let kept = store
        .principal(&account, &PrincipalId::new("u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.attributes["userName"], "alice");
}

/// Eight nodes bootstrapping an empty database at once make one account between them; an
/// account made without `only_if_first` (a later, deliberate one) is not refused.
pub async fn only_one_first_account_is_made_by_racing_bootstraps(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let attempt = |index: usize| {
        let id = AccountId::new(format!("first-{index}"));
        let mut admins = principal(
            &format!("admins-{index}"),
            PrincipalKind::Group,
            json!({"displayName": "admins"}),
            0,
        );
        admins.system = true;
        let change = Change::CreateAccount {
            account: Account {
                id: id.clone(),
                name: "default".into(),
                created: Timestamp::from_micros(0),
            },
            workspace: Workspace {
                id: WorkspaceId::new(format!("{}", 2000 + index)),
                account: id.clone(),
                name: "default".into(),
                created: Timestamp::from_micros(0),
                deployment_name: None,
            },
            first_admin: Some(Box::new(crate::FirstAdmin {
                group: admins.id.clone(),
                user: user(&format!("admin-{index}"), &format!("admin{index}"), 0),
                token: Some(crate::NewToken {
                    token: Token {
                        id: format!("token-{index}"),
                        account: id.clone(),
                        principal: PrincipalId::new(format!("admin-{index}")),
                        scope: TokenScope::AllApis,
                        comment: None,
                        created: Timestamp::from_micros(0),
                        expires: None,
                        workspace: None,
                        created_by: None,
                    },
                    digest: format!("digest-{index}"),
                }),
            })),
            system_groups: vec![admins],
            only_if_first: true,
        };
        async move { store.apply(&id, change).await }
    };
    // Connections opened first, so that the attempts overlap rather than queue for them.
    for listed in futures_util::future::join_all((0..8).map(|_| store.accounts())).await {
        assert!(listed.unwrap().is_empty());
    }
    let outcomes = futures_util::future::join_all((0..8).map(attempt)).await;
    let made = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(made, 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(error) = outcome {
            assert!(
                matches!(
                    error,
                    ScimError::BadRequest {
                        scim_type: ScimType::Uniqueness,
                        ..
                    }
                ),
                "{error:?}"
            );
        }
    }
    // The one account has its admin, in its `admins` group, and the admin's token; the
    // refused attempts left nothing of theirs.
    let winner = outcomes.iter().position(Result::is_ok).unwrap();
    let account = AccountId::new(format!("first-{winner}"));
    assert_eq!(store.accounts().await.unwrap()[0].id, account);
    assert_eq!(
        member_ids(store, &account, &format!("admins-{winner}")).await,
        vec![format!("admin-{winner}")]
    );
    let token = store
        .token_by_digest(&format!("digest-{winner}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.principal, PrincipalId::new(format!("admin-{winner}")));
    for loser in (0..8).filter(|index| *index != winner) {
        assert_eq!(
            store
                .token_by_digest(&format!("digest-{loser}"))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(store.accounts().await.unwrap().len(), 1);
    seed_account(store).await;
    assert_eq!(store.accounts().await.unwrap().len(), 2);
}

/// The inside of a `members[...]` filter, as a PATCH removing the members it selects carries it.
fn member_filter(text: &str) -> ResolvedFilter {
    match parse_filter(&GROUP_RESOURCE, text).unwrap() {
        ResolvedFilter::ValuePath(_, inner) => *inner,
        other => panic!("not a value filter: {other:?}"),
    }
}

/// A user in the account's `admins` group (made by `seed_account`, which leaves it empty).
async fn make_admin(store: &dyn Store, account: &AccountId, id: &str, active: bool) {
    let mut admin = user(id, id, 1);
    admin.attributes.insert("active".into(), json!(active));
    create(store, account, admin, &[]).await.unwrap();
    add_members(store, account, "admins", &[id]).await.unwrap();
}

/// Applies an update of `id` made by `edit` from its current version.
async fn update(
    store: &dyn Store,
    account: &AccountId,
    id: &str,
    edit: impl FnOnce(&mut Principal),
    membership: Vec<MembershipStep>,
) -> Result<(), ScimError> {
    let mut current = store
        .principal(account, &PrincipalId::new(id))
        .await
        .unwrap()
        .unwrap();
    let expected_version = current.version;
    edit(&mut current);
    current.version += 1;
    store
        .apply(
            account,
            Change::UpdatePrincipal {
                principal: current,
                expected_version,
                membership,
                workspace: None,
            },
        )
        .await
}

async fn deactivate(store: &dyn Store, account: &AccountId, id: &str) -> Result<(), ScimError> {
    update(
        store,
        account,
        id,
        |principal| {
            principal.attributes.insert("active".into(), json!(false));
        },
        vec![],
    )
    .await
}

async fn delete(store: &dyn Store, account: &AccountId, id: &str) -> Result<(), ScimError> {
    store
        .apply(
            account,
            Change::DeletePrincipal {
                id: PrincipalId::new(id),
                expected_version: None,
            },
        )
        .await
}

fn is_last_admin_conflict(outcome: &Result<(), ScimError>) -> bool {
    matches!(outcome, Err(ScimError::Conflict(message)) if message == crate::sql::write::LAST_ADMIN)
}

/// Removing the last active admin from `admins`, by any kind of membership step, is a
/// conflict that writes and logs nothing; removing one of two is not.
pub async fn the_last_active_admin_cannot_be_removed_from_admins(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    make_admin(store, &account, "a1", true).await;
    let before = whole_log(store).await;
    let steps = [
        MembershipStep::Remove(vec![PrincipalId::new("a1")]),
        MembershipStep::RemoveAll,
        MembershipStep::ReplaceAll(vec![]),
        MembershipStep::RemoveMatching(member_filter(
            r#"members[value eq "a1" or type eq "Group"]"#,
        )),
    ];
    for step in steps {
        let outcome = update(store, &account, "admins", |_| {}, vec![step.clone()]).await;
        assert!(is_last_admin_conflict(&outcome), "{step:?}: {outcome:?}");
    }
    assert_eq!(member_ids(store, &account, "admins").await, ["a1"]);
    assert_eq!(
        whole_log(store).await,
        before,
        "refused changes log nothing"
    );
    // An inactive admin does not count as one: replacing the members with it is refused.
    create(store, &account, user("idle", "idle", 2), &[])
        .await
        .unwrap();
    deactivate(store, &account, "idle").await.unwrap();
    let outcome = update(
        store,
        &account,
        "admins",
        |_| {},
        vec![MembershipStep::ReplaceAll(vec![MemberValue {
            id: PrincipalId::new("idle"),
            kind_hint: None,
        }])],
    )
    .await;
    assert!(is_last_admin_conflict(&outcome), "{outcome:?}");
    // With a second active admin (a service principal counts), the first may go.
    create(
        store,
        &account,
        principal(
            "sp",
            PrincipalKind::ServicePrincipal,
            json!({"applicationId": "sp-app", "active": true}),
            3,
        ),
        &[],
    )
    .await
    .unwrap();
    add_members(store, &account, "admins", &["sp"])
        .await
        .unwrap();
    update(
        store,
        &account,
        "admins",
        |_| {},
        vec![MembershipStep::Remove(vec![PrincipalId::new("a1")])],
    )
    .await
    .unwrap();
    assert_eq!(member_ids(store, &account, "admins").await, ["sp"]);
}

/// Deleting or deactivating the last active admin is a conflict; with another active admin,
/// both go through.
pub async fn the_last_active_admin_cannot_be_deleted_or_deactivated(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    make_admin(store, &account, "a1", true).await;
    make_admin(store, &account, "a2", false).await;
    let outcome = delete(store, &account, "a1").await;
    assert!(is_last_admin_conflict(&outcome), "{outcome:?}");
    let outcome = deactivate(store, &account, "a1").await;
    assert!(is_last_admin_conflict(&outcome), "{outcome:?}");
    let kept = store
        .principal(&account, &PrincipalId::new("a1"))
        .await
        .unwrap()
        .expect("the refused delete left the admin");
    assert_eq!(kept.attributes["active"], json!(true));
    // An inactive admin may go, and non-admins are not affected.
    delete(store, &account, "a2").await.unwrap();
    create(store, &account, user("u", "someone", 4), &[])
        .await
        .unwrap();
    deactivate(store, &account, "u").await.unwrap();
    // With a second active admin, the first may be deactivated, then deleted.
    make_admin(store, &account, "a3", true).await;
    deactivate(store, &account, "a1").await.unwrap();
    delete(store, &account, "a1").await.unwrap();
    let outcome = deactivate(store, &account, "a3").await;
    assert!(is_last_admin_conflict(&outcome), "{outcome:?}");
    // Deleting the `admins` group itself would take every admin with it.
    let outcome = delete(store, &account, "admins").await;
    assert!(is_last_admin_conflict(&outcome), "{outcome:?}");
}

/// The rule keeps an admin the account has; it does not demand one: an account whose admins
/// are all inactive (or that has none) may change its `admins` group freely, and creating an
/// account, or importing one, is never refused by it.
pub async fn an_account_without_an_active_admin_is_not_held_to_the_rule(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    make_admin(store, &account, "idle", false).await;
    update(
        store,
        &account,
        "admins",
        |_| {},
        vec![MembershipStep::RemoveAll],
    )
    .await
    .unwrap();
    make_admin(store, &account, "idle2", false).await;
    delete(store, &account, "idle2").await.unwrap();
    assert!(member_ids(store, &account, "admins").await.is_empty());
    // An export of this account (no active admin) imports.
    let text = export_text(store, 10).await;
    let target = &*stores.fresh().await;
    import_text(target, &text, 3).await.unwrap();
}

/// Two nodes removing the two last admins at once, by deletion, deactivation or removal from
/// the group: exactly one succeeds, the other is the last-admin conflict, and the account
/// keeps an active admin. A backend whose check reads only committed data must serialise
/// these checks, or both pass.
pub async fn two_nodes_removing_the_two_last_admins_at_once_leave_one(stores: &mut Stores) {
    let first = stores.fresh().await;
    let second = stores.again().await;
    let (first, second) = (&*first, &*second);
    let account = seed_account(first).await;
    for round in 0..6 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        make_admin(first, &account, &a, true).await;
        make_admin(first, &account, &b, true).await;
        // Earlier rounds' survivors leave; these two are the only active admins.
        let others: Vec<PrincipalId> = member_ids(first, &account, "admins")
            .await
            .into_iter()
            .filter(|id| *id != a && *id != b)
            .map(PrincipalId::new)
            .collect();
        if !others.is_empty() {
            update(
                first,
                &account,
                "admins",
                |_| {},
                vec![MembershipStep::Remove(others)],
            )
            .await
            .unwrap();
        }
        let (one, other) = match round % 3 {
            0 => {
                futures_util::future::join(
                    delete(first, &account, &a),
                    delete(second, &account, &b),
                )
                .await
            }
            1 => {
                futures_util::future::join(
                    deactivate(first, &account, &a),
                    deactivate(second, &account, &b),
                )
                .await
            }
            _ => {
                futures_util::future::join(
                    delete(first, &account, &a),
                    deactivate(second, &account, &b),
                )
                .await
            }
        };
        assert!(
            one.is_ok() != other.is_ok(),
            "round {round}: exactly one may succeed: {one:?} {other:?}"
        );
        let refused = if one.is_ok() { &other } else { &one };
        assert!(
            is_last_admin_conflict(refused),
            "round {round}: {refused:?}"
        );
        let snapshot = first.access_snapshot(&account).await.unwrap();
        let active: Vec<&PrincipalId> = snapshot
            .memberships
            .iter()
            .filter(|(group, _)| group.as_str() == "admins")
            .map(|(_, member)| member)
            .filter(|member| {
                snapshot
                    .principals
                    .iter()
                    .any(|facts| facts.id == **member && facts.active)
            })
            .collect();
        assert_eq!(active.len(), 1, "round {round}: {active:?}");
    }
}

/// A table as the two backends must both have it, with what legitimately differs normalised
/// away: column types as their class (SQLite's `INTEGER` is PostgreSQL's `BIGINT` or, for
/// flags, `BOOLEAN`; `COLLATE "C"` is PostgreSQL's way of comparing text as SQLite does),
/// primary-key columns as not null (PostgreSQL enforces it, SQLite stores what it is given),
/// indexes backing a primary key left to `primary_key`, indexes backing a `UNIQUE` column
/// named by their columns (each backend names them its own way), and partial-index conditions
/// in one spelling.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TableShape {
    name: String,
    /// `(name, "text" | "integer", not null)`, by name.
    columns: Vec<(String, &'static str, bool)>,
    primary_key: Vec<String>,
    /// `(name, columns, unique, condition)`, by name.
    indexes: Vec<(String, Vec<String>, bool, Option<String>)>,
}

fn type_class(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "text" => "text",
        "integer" | "bigint" | "boolean" => "integer",
        other => panic!("a column of an unexpected type: {other}"),
    }
}

/// A partial index's condition in one spelling: PostgreSQL writes `(kind = 'User'::text)`
/// for SQLite's `kind = 'User'`.
fn condition(text: &str) -> String {
    text.replace("::text", "")
        .replace(['(', ')'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn unique_constraint(columns: &[String]) -> String {
    format!("unique({})", columns.join(", "))
}

fn sqlite_schema(path: &str) -> Vec<TableShape> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let strings = |sql: &str, parameter: &str| -> Vec<String> {
        let mut statement = connection.prepare(sql).unwrap();
        statement
            .query_map([parameter], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let tables = strings(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> ?1 \
         ORDER BY name",
        "sqlite_",
    );
    let mut shapes = Vec::new();
    for table in tables {
        let mut statement = connection
            .prepare(&format!("PRAGMA table_info('{table}')"))
            .unwrap();
        let mut described: Vec<(String, String, bool, i64)> = statement
            .query_map([], |row| {
                Ok((
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)? == 1,
                    row.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut key: Vec<(i64, String)> = described
            .iter()
            .filter(|(_, _, _, position)| *position > 0)
            .map(|(name, _, _, position)| (*position, name.clone()))
            .collect();
        key.sort();
        described.sort();
        let columns = described
            .into_iter()
            .map(|(name, declared, not_null, position)| {
                (name, type_class(&declared), not_null || position > 0)
            })
            .collect();
        let mut statement = connection
            .prepare(&format!("PRAGMA index_list('{table}')"))
            .unwrap();
        let listed: Vec<(String, bool, String)> = statement
            .query_map([], |row| {
                Ok((row.get(1)?, row.get::<_, i64>(2)? == 1, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut indexes = Vec::new();
        for (name, unique, origin) in listed {
            if origin == "pk" {
                continue;
            }
            let mut statement = connection
                .prepare(&format!("PRAGMA index_info('{name}')"))
                .unwrap();
            let columns: Vec<String> = statement
                .query_map([], |row| row.get(2))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let sql = strings(
                "SELECT COALESCE(sql, '') FROM sqlite_master WHERE name = ?1",
                &name,
            )
            .pop()
            .unwrap_or_default();
            let predicate = sql.split_once(" WHERE ").map(|(_, text)| condition(text));
            let name = if origin == "u" {
                unique_constraint(&columns)
            } else {
                name
            };
            indexes.push((name, columns, unique, predicate));
        }
        indexes.sort();
        shapes.push(TableShape {
            name: table,
            columns,
            primary_key: key.into_iter().map(|(_, name)| name).collect(),
            indexes,
        });
    }
    shapes
}

async fn postgres_schema(url: &str) -> Vec<TableShape> {
    use deadpool_postgres::tokio_postgres;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut shapes = Vec::new();
    for table in tables {
        let mut columns: Vec<(String, &'static str, bool)> = client
            .query(
                "SELECT column_name::text, data_type::text, is_nullable = 'NO' \
                 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
                &[&table],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), type_class(row.get(1)), row.get(2)))
            .collect();
        columns.sort();
        let indexes = client
            .query(
                "SELECT c.relname::text, i.indisunique, i.indisprimary, \
                        pg_get_expr(i.indpred, i.indrelid), \
                        ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                              ORDER BY k.n), \
                        EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.contype = 'u') \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE i.indrelid = $1::text::regclass",
                &[&table],
            )
            .await
            .unwrap();
        let mut primary_key = Vec::new();
        let mut shaped = Vec::new();
        for row in indexes {
            let (name, unique, primary): (String, bool, bool) =
                (row.get(0), row.get(1), row.get(2));
            let predicate: Option<String> = row.get(3);
            let columns: Vec<String> = row.get(4);
            let constraint: bool = row.get(5);
            if primary {
                primary_key = columns;
                continue;
            }
            let name = if constraint {
                unique_constraint(&columns)
            } else {
                name
            };
            shaped.push((name, columns, unique, predicate.as_deref().map(condition)));
        }
        shaped.sort();
        shapes.push(TableShape {
            name: table,
            columns,
            primary_key,
            indexes: shaped,
        });
    }
    drop(client);
    let _ = driver.await;
    shapes
}

/// Both backends, migrated, have the same tables, columns and indexes (normalised as
/// [`TableShape`] says), so neither lacks an index the other's queries rely on.
pub async fn the_schemas_of_both_backends_agree(postgres: &mut Stores) {
    let _store = postgres.fresh().await;
    let postgres_shape = postgres_schema(postgres.location()).await;
    let mut sqlite = Stores::sqlite();
    let _store = sqlite.fresh().await;
    let sqlite_shape = sqlite_schema(sqlite.location());
    let names = |shapes: &[TableShape]| {
        shapes
            .iter()
            .map(|shape| shape.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&postgres_shape), names(&sqlite_shape), "the tables");
    for (postgres, sqlite) in postgres_shape.iter().zip(&sqlite_shape) {
        assert_eq!(postgres, sqlite, "table {}", sqlite.name);
    }
}

/// Workspace objects belong to one workspace: one path in two workspaces is two objects, each
/// found and listed only in its own; an object of another workspace is refused as missing
/// (an ACL write or a placement), writing nothing; a change naming no workspace is refused;
/// deleting a workspace deletes its objects and their ACLs, logged as removals, and leaves
/// the other's; an export from before objects named their workspace imports them into the
/// account's one workspace.
pub async fn workspace_objects_belong_to_one_workspace(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("u1", "ann", 1), &[])
        .await
        .unwrap();
    let (first, second) = (WorkspaceId::new("1000"), WorkspaceId::new("2000"));
    store
        .apply(
            &account,
            new_workspace(Workspace {
                id: second.clone(),
                account: account.clone(),
                name: "second".into(),
                created: Timestamp::from_micros(5),
                deployment_name: None,
            }),
        )
        .await
        .unwrap();
    let directory = |id: &str| GovernanceChange::CreateWorkspaceEntry {
        entry: WorkspaceEntry {
            object_type: ObjectType::Directories,
            object_id: id.into(),
            path: "/Shared".into(),
            directory: None,
            language: None,
        },
    };
    let acl = |object_type, id: &str| GovernanceChange::SetObjectAcl {
        object_type,
        object_id: id.into(),
        entries: vec![AclEntry::new(
            PrincipalId::new("u1"),
            PermissionLevel::CanManage,
        )],
    };
    for (workspace, id) in [("1000", "10"), ("2000", "20")] {
        let changes = vec![directory(id), acl(ObjectType::Directories, id)];
        store
            .apply(&account, in_workspace(workspace, changes))
            .await
            .unwrap();
    }
    store
        .apply(
            &account,
            in_workspace("1000", vec![acl(ObjectType::Jobs, "42")]),
        )
        .await
        .unwrap();
    for (workspace, id) in [(&first, "10"), (&second, "20")] {
        let found = store.workspace_entry(&account, workspace, "/Shared");
        assert_eq!(found.await.unwrap().unwrap().object_id, id);
        let listed = store.workspace_entries_in(&account, workspace, None);
        let listed: Vec<String> = listed
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.object_id)
            .collect();
        assert_eq!(listed, [id]);
    }
    let by_id = store.workspace_entry_by_id(&account, &second, ObjectType::Directories, "10");
    assert_eq!(by_id.await.unwrap(), None, "by id, only in its workspace");
    assert_eq!(
        store
            .object_workspace(&account, ObjectType::Jobs, "42")
            .await
            .unwrap(),
        Some(first.clone())
    );

    // Another workspace's objects are missing to writes made in this one.
    let before = whole_log(store).await.len();
    let placed_there = GovernanceChange::SetObjectParent {
        object_type: ObjectType::Notebooks,
        object_id: "21".into(),
        directory: Some("10".into()),
    };
    for change in [
        acl(ObjectType::Jobs, "42"),
        acl(ObjectType::Directories, "10"),
        placed_there,
    ] {
        let refused = store
            .apply(&account, in_workspace("2000", vec![change]))
            .await;
        assert!(
            matches!(refused, Err(ScimError::NotFound(_))),
            "{refused:?}"
        );
    }
    let unnamed = store
        .apply(&account, Change::Governance(acl(ObjectType::Jobs, "44")))
        .await;
    assert!(unnamed.is_err(), "an object change names its workspace");
    assert_eq!(
        whole_log(store).await.len(),
        before,
        "refusals write nothing"
    );

    // Deleting the second workspace deletes its tree and ACLs, and only those.
    store
        .apply(&account, Change::DeleteWorkspace { id: second.clone() })
        .await
        .unwrap();
    let snapshot = store.access_snapshot(&account).await.unwrap();
    assert!(snapshot.objects.iter().all(|row| row.workspace == first));
    assert!(snapshot.acl.iter().all(|row| row.object_id != "20"));
    assert_eq!(
        snapshot.objects.len(),
        2,
        "the first workspace's directory and job"
    );
    let log = whole_log(store).await;
    assert!(log.iter().any(|logged| logged.event
        == AccessEvent::Governance(GovernanceChange::RemoveObject {
            object_type: ObjectType::Directories,
            object_id: "20".into(),
        })));

    // An export of version 2 (objects named no workspace) puts them in the account's one.
    let older = "{\"type\":\"scimitar-export\",\"version\":2}\n\
        {\"type\":\"account\",\"id\":\"acct-2\",\"name\":\"x\",\"created\":1}\n\
        {\"type\":\"workspace\",\"account\":\"acct-2\",\"id\":\"w2\",\"name\":\"w\",\"created\":1}\n\
        {\"type\":\"object\",\"account\":\"acct-2\",\"object_type\":\"directories\",\"object_id\":\"5\",\"directory\":null,\"path\":\"/Shared\"}\n\
        {\"type\":\"object\",\"account\":\"acct-2\",\"object_type\":\"jobs\",\"object_id\":\"77\",\"directory\":null,\"path\":null}\n";
    import_text(store, older, 10).await.unwrap();
    let other = AccountId::new("acct-2");
    let workspace = WorkspaceId::new("w2");
    let found = store.workspace_entry(&other, &workspace, "/Shared");
    assert_eq!(found.await.unwrap().unwrap().object_id, "5");
    // A job (an id its client chose) is kept under its workspace since format 5; the tree's
    // directory keeps its id.
    let job = store.object_workspace(&other, ObjectType::Jobs, "w2/77");
    assert_eq!(job.await.unwrap(), Some(workspace.clone()));
    let unscoped = store.object_workspace(&other, ObjectType::Jobs, "77");
    assert_eq!(unscoped.await.unwrap(), None);
}

/// Workspaces are made, renamed and deleted; assignments are set, replaced and removed; a
/// workspace's directory is its assigned principals, the members of assigned groups (through
/// nested groups) and the built-in groups; deleting a principal or a workspace takes its
/// assignments along, and the access log says each of these.
pub async fn workspaces_and_assignments_follow_their_changes(stores: &mut Stores) {
    let store = stores.fresh().await;
    let store = &*store;
    let account = seed_account(store).await;
    let start = whole_log(store).await.len();
    let second = Workspace {
        id: WorkspaceId::new("2000"),
        account: account.clone(),
        name: "second".into(),
        created: Timestamp::from_micros(5),
        deployment_name: Some("second".into()),
    };
    store
        .apply(&account, new_workspace(second.clone()))
        .await
        .unwrap();
    let mut clash = second.clone();
    clash.id = WorkspaceId::new("2001");
    let refused = store
        .apply(&account, new_workspace(clash))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ScimError::BadRequest {
                scim_type: scimitar_domain::ScimType::Uniqueness,
                ..
            }
        ),
        "a deployment name is unique: {refused:?}"
    );
    assert_eq!(
        store.workspace_by_deployment_name("second").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store.workspace(&second.id).await.unwrap(),
        Some(second.clone())
    );

    create(store, &account, user("u1", "ann", 1), &[])
        .await
        .unwrap();
    create(store, &account, user("u2", "bob", 2), &[])
        .await
        .unwrap();
    create(store, &account, user("u3", "cy", 3), &[])
        .await
        .unwrap();
    create(store, &account, group("inner", "inner"), &["u1"])
        .await
        .unwrap();
    create(store, &account, group("outer", "outer"), &["inner"])
        .await
        .unwrap();
    let assign =
        |principal: &str, permission: Option<WorkspacePermission>| Change::AssignToWorkspace {
            workspace: second.id.clone(),
            principal: PrincipalId::new(principal),
            permission,
        };
    for change in [
        assign("outer", Some(WorkspacePermission::User)),
        assign("u2", Some(WorkspacePermission::User)),
        assign("u2", Some(WorkspacePermission::Admin)),
    ] {
        store.apply(&account, change).await.unwrap();
    }
    let refused = store
        .apply(&account, assign("nobody", Some(WorkspacePermission::User)))
        .await
        .unwrap_err();
    assert!(matches!(refused, ScimError::NotFound(_)), "{refused:?}");
    let everything = ListQuery::parse(
        PrincipalKind::User.resource_type(),
        &ListParameters::default(),
    )
    .unwrap();
    let listed = |kind| {
        let everything = everything.clone();
        let workspace = second.id.clone();
        let account = account.clone();
        async move {
            let page = store
                .list_workspace_principals(&account, &workspace, kind, &everything)
                .await
                .unwrap();
            let ids: Vec<String> = page.principals.iter().map(|p| p.id.to_string()).collect();
            (page.total_results, ids)
        }
    };
    assert_eq!(
        listed(PrincipalKind::User).await,
        (2, vec!["u1".into(), "u2".into()])
    );
    let (_, groups) = listed(PrincipalKind::Group).await;
    assert_eq!(
        groups,
        ["admins", "users", "inner", "outer"].map(String::from),
        "in creation order"
    );
    let snapshot = store.access_snapshot(&account).await.unwrap();
    assert_eq!(
        snapshot.assignments,
        vec![
            (
                second.id.clone(),
                PrincipalId::new("outer"),
                WorkspacePermission::User
            ),
            (
                second.id.clone(),
                PrincipalId::new("u2"),
                WorkspacePermission::Admin
            ),
        ]
    );

    store.apply(&account, assign("outer", None)).await.unwrap();
    assert_eq!(listed(PrincipalKind::User).await, (1, vec!["u2".into()]));
    // Taking back an assignment that is not there changes nothing and is no error.
    store.apply(&account, assign("outer", None)).await.unwrap();
    store
        .apply(
            &account,
            Change::DeletePrincipal {
                id: PrincipalId::new("u2"),
                expected_version: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed(PrincipalKind::User).await, (0, vec![]));
    store
        .apply(&account, assign("u3", Some(WorkspacePermission::User)))
        .await
        .unwrap();
    let mut renamed = second.clone();
    renamed.name = "renamed".into();
    renamed.deployment_name = Some("renamed".into());
    store
        .apply(&account, Change::UpdateWorkspace(renamed.clone()))
        .await
        .unwrap();
    assert_eq!(store.workspace(&second.id).await.unwrap(), Some(renamed));
    assert_eq!(
        store.workspace_by_deployment_name("second").await.unwrap(),
        None
    );
    store
        .apply(
            &account,
            Change::DeleteWorkspace {
                id: second.id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.workspace(&second.id).await.unwrap(), None);
    assert!(store
        .access_snapshot(&account)
        .await
        .unwrap()
        .assignments
        .is_empty());
    let missing = store
        .apply(
            &account,
            Change::DeleteWorkspace {
                id: second.id.clone(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, ScimError::NotFound(_)), "{missing:?}");
    // A principal made through a workspace deleted meanwhile: refused whole.
    let late = store
        .apply(
            &account,
            Change::CreatePrincipal {
                principal: user("u4", "dee", 4),
                members: vec![],
                assign_to: Some(second.id.clone()),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(late, ScimError::NotFound(_)), "{late:?}");
    assert!(store
        .principal(&account, &PrincipalId::new("u4"))
        .await
        .unwrap()
        .is_none());
    // Assigning, or taking an assignment back, in a deleted workspace: not found either way.
    for permission in [Some(WorkspacePermission::Admin), None] {
        let gone = store
            .apply(&account, assign("u3", permission))
            .await
            .unwrap_err();
        assert!(matches!(gone, ScimError::NotFound(_)), "{gone:?}");
    }

    let events: Vec<String> = whole_log(store).await[start..]
        .iter()
        .filter_map(|logged| match &logged.event {
            AccessEvent::WorkspaceAssigned {
                principal,
                permission,
                ..
            } => Some(format!(
                "{principal}={}",
                permission.map_or("none", WorkspacePermission::as_str)
            )),
            AccessEvent::WorkspaceDeleted { workspace } => Some(format!("deleted {workspace}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [
            "outer=USER",
            "u2=USER",
            "u2=ADMIN",
            "outer=none",
            "u3=USER",
            "deleted 2000"
        ]
    );
}

/// An export made before assignments existed (format version 1) imports with every
/// principal but the built-in groups assigned to the account's workspaces, as they all were
/// in them then.
pub async fn an_export_from_before_assignments_assigns_every_principal(stores: &mut Stores) {
    let store = stores.fresh().await;
    let store = &*store;
    let text = [
        r#"{"type":"scimitar-export","version":1}"#,
        r#"{"type":"account","id":"acc-old","name":"old","created":0}"#,
        r#"{"type":"workspace","account":"acc-old","id":"77","name":"main","created":0}"#,
        r#"{"type":"principal","account":"acc-old","id":"g1","kind":"Group","attributes":{"displayName":"users"},"password_hash":null,"system":true,"created":0,"last_modified":0,"version":1}"#,
        r#"{"type":"principal","account":"acc-old","id":"u1","kind":"User","attributes":{"userName":"ann","active":true},"password_hash":null,"system":false,"created":1,"last_modified":1,"version":1}"#,
        r#"{"type":"principal","account":"acc-old","id":"g2","kind":"Group","attributes":{"displayName":"eng"},"password_hash":null,"system":false,"created":2,"last_modified":2,"version":1}"#,
    ]
    .join("\n");
    import_text(store, &text, 2).await.unwrap();
    let account = AccountId::new("acc-old");
    let snapshot = store.access_snapshot(&account).await.unwrap();
    assert_eq!(
        snapshot.assignments,
        vec![
            (
                WorkspaceId::new("77"),
                PrincipalId::new("g2"),
                WorkspacePermission::User
            ),
            (
                WorkspaceId::new("77"),
                PrincipalId::new("u1"),
                WorkspacePermission::User
            ),
        ]
    );
}

/// Writes `entitlements` (`None`: none) as `principal`'s through `workspace`, as a PUT or
/// PATCH made there does: the principal read as the workspace sees it, one version on.
async fn set_entitlements_through(
    store: &dyn Store,
    account: &AccountId,
    workspace: &str,
    principal: &str,
    entitlements: Option<Value>,
) -> Principal {
    let workspace = WorkspaceId::new(workspace);
    let mut current = store
        .principal_in(account, &workspace, &PrincipalId::new(principal))
        .await
        .unwrap()
        .unwrap();
    let expected_version = current.version;
    current.version += 1;
    match entitlements {
        Some(entitlements) => current
            .attributes
            .insert("entitlements".into(), entitlements),
        None => current.attributes.remove("entitlements"),
    };
    store
        .apply(
            account,
            Change::UpdatePrincipal {
                principal: current.clone(),
                expected_version,
                membership: vec![],
                workspace: Some(workspace),
            },
        )
        .await
        .unwrap();
    current
}

/// The `entitlements` of a principal as a workspace sees it (`None`: none).
async fn entitlements_in(
    store: &dyn Store,
    account: &AccountId,
    workspace: &str,
    principal: &str,
) -> Option<Value> {
    store
        .principal_in(
            account,
            &WorkspaceId::new(workspace),
            &PrincipalId::new(principal),
        )
        .await
        .unwrap()
        .unwrap()
        .attributes
        .get("entitlements")
        .cloned()
}

/// Entitlements are per workspace: a principal's are written through one workspace and read
/// there only (its own document, as the account sees it, has none); a new workspace gives the
/// `users` group the entitlements it is made with; a workspace's list carries and filters by
/// its own; each change is logged once; and rows go with their principal and workspace.
pub async fn entitlements_are_kept_per_workspace_and_go_with_their_principal_and_workspace(
    stores: &mut Stores,
) {
    let store = stores.fresh().await;
    let store = &*store;
    let account = seed_account(store).await;
    let second = Workspace {
        id: WorkspaceId::new("2000"),
        account: account.clone(),
        name: "second".into(),
        created: Timestamp::from_micros(5),
        deployment_name: None,
    };
    let defaults = json!([{"value": "workspace-access"}, {"value": "databricks-sql-access"}]);
    store
        .apply(
            &account,
            Change::CreateWorkspace {
                workspace: second.clone(),
                users_entitlements: defaults.as_array().unwrap().clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        entitlements_in(store, &account, "2000", "users").await,
        Some(defaults.clone())
    );
    assert_eq!(
        entitlements_in(store, &account, "1000", "users").await,
        None
    );
    let start = whole_log(store).await.len();

    // Made through the first workspace: its entitlements are that workspace's.
    let mut ann = user("u1", "ann", 1);
    ann.attributes.insert(
        "entitlements".into(),
        json!([{"value": "allow-cluster-create"}]),
    );
    store
        .apply(
            &account,
            Change::CreatePrincipal {
                principal: ann,
                members: vec![],
                assign_to: Some(WorkspaceId::new("1000")),
            },
        )
        .await
        .unwrap();
    let stored = store
        .principal(&account, &PrincipalId::new("u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.attributes.get("entitlements"),
        None,
        "the account sees none"
    );
    assert_eq!(
        entitlements_in(store, &account, "1000", "u1").await,
        Some(json!([{"value": "allow-cluster-create"}]))
    );
    assert_eq!(entitlements_in(store, &account, "2000", "u1").await, None);

    // Written through the second: the first keeps its own, and the version moves.
    let written = set_entitlements_through(
        store,
        &account,
        "2000",
        "u1",
        Some(json!([{"value": "workspace-access"}])),
    )
    .await;
    assert_eq!(written.version, 2);
    assert_eq!(
        entitlements_in(store, &account, "1000", "u1").await,
        Some(json!([{"value": "allow-cluster-create"}]))
    );
    assert_eq!(
        entitlements_in(store, &account, "2000", "u1").await,
        Some(json!([{"value": "workspace-access"}]))
    );
    // A write that leaves them as they are logs no entitlement change.
    set_entitlements_through(
        store,
        &account,
        "2000",
        "u1",
        Some(json!([{"value": "workspace-access"}])),
    )
    .await;
    let entitlement_events: Vec<AccessEvent> = whole_log(store).await[start..]
        .iter()
        .filter(|logged| matches!(logged.event, AccessEvent::EntitlementsSet { .. }))
        .map(|logged| logged.event.clone())
        .collect();
    assert_eq!(
        entitlement_events,
        vec![
            AccessEvent::EntitlementsSet {
                workspace: WorkspaceId::new("1000"),
                principal: PrincipalId::new("u1"),
                entitlements: vec!["allow-cluster-create".into()],
            },
            AccessEvent::EntitlementsSet {
                workspace: WorkspaceId::new("2000"),
                principal: PrincipalId::new("u1"),
                entitlements: vec!["workspace-access".into()],
            },
        ]
    );

    // A workspace's list shows, and filters by, that workspace's entitlements: ann is in both
    // directories, with cluster creation in the first only.
    store
        .apply(
            &account,
            Change::AssignToWorkspace {
                workspace: second.id.clone(),
                principal: PrincipalId::new("u1"),
                permission: Some(WorkspacePermission::User),
            },
        )
        .await
        .unwrap();
    for (workspace, expected) in [("1000", vec!["u1"]), ("2000", vec![])] {
        let query = ListQuery::parse(
            PrincipalKind::User.resource_type(),
            &ListParameters {
                filter: Some("entitlements.value eq \"allow-cluster-create\"".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let page = store
            .list_workspace_principals(
                &account,
                &WorkspaceId::new(workspace),
                PrincipalKind::User,
                &query,
            )
            .await
            .unwrap();
        let ids: Vec<&str> = page.principals.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, expected, "in workspace {workspace}");
        assert_eq!(page.total_results, expected.len() as u64);
    }
    let everything = ListQuery::parse(
        PrincipalKind::Group.resource_type(),
        &ListParameters::default(),
    )
    .unwrap();
    let groups = store
        .list_workspace_principals(
            &account,
            &WorkspaceId::new("2000"),
            PrincipalKind::Group,
            &everything,
        )
        .await
        .unwrap();
    let users = groups
        .principals
        .iter()
        .find(|group| group.id.as_str() == "users")
        .unwrap();
    assert_eq!(users.attributes.get("entitlements"), Some(&defaults));
    let account_wide = store
        .list_principals(&account, PrincipalKind::Group, &everything)
        .await
        .unwrap();
    assert!(account_wide
        .principals
        .iter()
        .all(|group| group.attributes.get("entitlements").is_none()));

    // Removed through one workspace: gone there only.
    set_entitlements_through(store, &account, "1000", "u1", None).await;
    assert_eq!(entitlements_in(store, &account, "1000", "u1").await, None);
    let snapshot = store.access_snapshot(&account).await.unwrap();
    assert_eq!(
        snapshot.entitlements,
        vec![
            (
                WorkspaceId::new("2000"),
                PrincipalId::new("u1"),
                vec!["workspace-access".to_string()]
            ),
            (
                WorkspaceId::new("2000"),
                PrincipalId::new("users"),
                vec![
                    "workspace-access".to_string(),
                    "databricks-sql-access".to_string()
                ]
            ),
        ]
    );

    // A deleted principal's and a deleted workspace's rows go with them.
    create(store, &account, user("u2", "bob", 2), &[])
        .await
        .unwrap();
    set_entitlements_through(
        store,
        &account,
        "2000",
        "u2",
        Some(json!([{"value": "workspace-consume"}])),
    )
    .await;
    store
        .apply(
            &account,
            Change::DeletePrincipal {
                id: PrincipalId::new("u2"),
                expected_version: None,
            },
        )
        .await
        .unwrap();
    assert!(store
        .entitlements(&account)
        .await
        .unwrap()
        .iter()
        .all(|row| row.principal.as_str() != "u2"));
    store
        .apply(
            &account,
            Change::DeleteWorkspace {
                id: second.id.clone(),
            },
        )
        .await
        .unwrap();
    assert!(store.entitlements(&account).await.unwrap().is_empty());
    assert!(store
        .access_snapshot(&account)
        .await
        .unwrap()
        .entitlements
        .is_empty());
}

/// An export of version 3, when a principal's document carried its entitlements for the whole
/// account, gives them to every workspace of the account, as the database migration does.
pub async fn an_export_from_before_workspace_entitlements_gives_them_to_every_workspace(
    stores: &mut Stores,
) {
    let store = stores.fresh().await;
    let store = &*store;
    let text = [
        r#"{"type":"scimitar-export","version":3}"#,
        r#"{"type":"account","id":"acc-old","name":"old","created":0}"#,
        r#"{"type":"workspace","account":"acc-old","id":"77","name":"main","created":0}"#,
        r#"{"type":"workspace","account":"acc-old","id":"78","name":"second","created":1}"#,
        r#"{"type":"principal","account":"acc-old","id":"g1","kind":"Group","attributes":{"displayName":"users","entitlements":[{"value":"workspace-access"}]},"password_hash":null,"system":true,"created":0,"last_modified":0,"version":1}"#,
        r#"{"type":"principal","account":"acc-old","id":"u1","kind":"User","attributes":{"userName":"ann","active":true,"entitlements":[{"value":"allow-cluster-create"}]},"password_hash":null,"system":false,"created":1,"last_modified":1,"version":3}"#,
        r#"{"type":"principal","account":"acc-old","id":"u2","kind":"User","attributes":{"userName":"bob","active":true},"password_hash":null,"system":false,"created":2,"last_modified":2,"version":1}"#,
    ]
    .join("\n");
    import_text(store, &text, 2).await.unwrap();
    let account = AccountId::new("acc-old");
    for workspace in ["77", "78"] {
        assert_eq!(
            entitlements_in(store, &account, workspace, "u1").await,
            Some(json!([{"value": "allow-cluster-create"}])),
            "in workspace {workspace}"
        );
        assert_eq!(
            entitlements_in(store, &account, workspace, "g1").await,
            Some(json!([{"value": "workspace-access"}]))
        );
        assert_eq!(
            entitlements_in(store, &account, workspace, "u2").await,
            None
        );
    }
    let ann = store
        .principal(&account, &PrincipalId::new("u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.version, 3, "the version comes across as it was");
    assert_eq!(ann.attributes.get("entitlements"), None);
    let snapshot = store.access_snapshot(&account).await.unwrap();
    assert_eq!(snapshot.entitlements.len(), 4);
}

fn rule_set(resource: &str, target: Option<&str>, grants: &[(&str, &str)]) -> RuleSetRows {
    RuleSetRows {
        resource: resource.to_string(),
        target: target.map(PrincipalId::new),
        grants: grants
            .iter()
            .map(|(role, principal)| (role.to_string(), PrincipalId::new(*principal)))
            .collect(),
    }
}

async fn replace_rule_set(
    store: &dyn Store,
    account: &AccountId,
    rule_set: RuleSetRows,
    expected_version: u64,
) -> Result<(), ScimError> {
    store
        .apply(
            account,
            Change::ReplaceRuleSet {
                rule_set,
                expected_version,
            },
        )
        .await
}

fn grants_of(grants: &[(String, PrincipalId)]) -> Vec<(&str, &str)> {
    grants
        .iter()
        .map(|(role, principal)| (role.as_str(), principal.as_str()))
        .collect()
}

/// A rule set is written whole, only from the version it was read at: the first write from
/// version 0, each next from the one before; a write from any other version is a conflict
/// that leaves the set as it was. Rule sets of one account are invisible to another.
pub async fn a_rule_set_is_replaced_whole_from_the_version_it_was_read_at(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let other = seed_account_with(store, "acct-2", "2000").await;
    create(store, &account, user("u1", "ann", 1), &[])
        .await
        .unwrap();
    create(store, &account, user("u2", "bo", 2), &[])
        .await
        .unwrap();
    create(store, &account, group("g", "team"), &[])
        .await
        .unwrap();
    let resource = "groups/g";
    assert_eq!(
        store.rule_set(&account, resource).await.unwrap(),
        (0, vec![])
    );

    let first = rule_set(resource, Some("g"), &[("roles/group.manager", "u1")]);
    replace_rule_set(store, &account, first.clone(), 0)
        .await
        .unwrap();
    let (version, grants) = store.rule_set(&account, resource).await.unwrap();
    assert_eq!(version, 1);
    assert_eq!(grants_of(&grants), [("roles/group.manager", "u1")]);

    // From a version that is not the current one: a conflict, nothing written.
    for stale in [0, 2, 7] {
        let outcome = replace_rule_set(
            store,
            &account,
            rule_set(resource, Some("g"), &[("roles/group.manager", "u2")]),
            stale,
        )
        .await;
        assert!(
            matches!(&outcome, Err(ScimError::Conflict(message)) if message == crate::sql::write::RULE_SET_CHANGED),
            "{stale}: {outcome:?}"
        );
    }
    assert_eq!(store.rule_set(&account, resource).await.unwrap().0, 1);

    // Replaced whole: the old grant goes, the new ones come.
    let second = rule_set(
        resource,
        Some("g"),
        &[("roles/group.manager", "u2"), ("roles/group.manager", "g")],
    );
    replace_rule_set(store, &account, second, 1).await.unwrap();
    let (version, grants) = store.rule_set(&account, resource).await.unwrap();
    assert_eq!(version, 2);
    assert_eq!(
        grants_of(&grants),
        [("roles/group.manager", "g"), ("roles/group.manager", "u2")]
    );
    // Emptied, it keeps its version.
    replace_rule_set(store, &account, rule_set(resource, Some("g"), &[]), 2)
        .await
        .unwrap();
    assert_eq!(
        store.rule_set(&account, resource).await.unwrap(),
        (3, vec![])
    );

    // The account's own rule set has no principal behind it.
    let account_set = rule_set("account", None, &[("roles/billing.admin", "u1")]);
    replace_rule_set(store, &account, account_set, 0)
        .await
        .unwrap();
    assert_eq!(store.rule_set(&account, "account").await.unwrap().0, 1);
    // Another account sees none of it, and its own first write is its own.
    assert_eq!(
        store.rule_set(&other, "account").await.unwrap(),
        (0, vec![])
    );
    assert_eq!(store.rule_set(&other, resource).await.unwrap(), (0, vec![]));
    let outcome = replace_rule_set(store, &other, first, 0).await;
    assert!(
        matches!(outcome, Err(ScimError::NotFound(_))),
        "{outcome:?}"
    );
}

/// The principals a rule set names must exist (a missing one is a 404 that writes nothing),
/// and deleting one takes its grants, or the whole set when it is the set's own principal.
pub async fn a_rule_set_goes_with_its_principal_and_names_only_existing_ones(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    create(store, &account, user("u1", "ann", 1), &[])
        .await
        .unwrap();
    create(store, &account, user("u2", "bo", 2), &[])
        .await
        .unwrap();
    create(store, &account, group("g", "team"), &[])
        .await
        .unwrap();
    let sp = principal(
        "sp",
        PrincipalKind::ServicePrincipal,
        json!({"applicationId": "app-1", "displayName": "ci", "active": true}),
        3,
    );
    create(store, &account, sp, &[]).await.unwrap();

    let outcome = replace_rule_set(
        store,
        &account,
        rule_set("groups/g", Some("g"), &[("roles/group.manager", "nobody")]),
        0,
    )
    .await;
    assert!(
        matches!(outcome, Err(ScimError::NotFound(_))),
        "{outcome:?}"
    );
    let outcome = replace_rule_set(
        store,
        &account,
        rule_set(
            "groups/gone",
            Some("gone"),
            &[("roles/group.manager", "u1")],
        ),
        0,
    )
    .await;
    assert!(
        matches!(outcome, Err(ScimError::NotFound(_))),
        "{outcome:?}"
    );
    assert_eq!(
        store.rule_set(&account, "groups/g").await.unwrap(),
        (0, vec![])
    );
    assert_eq!(
        store.rule_set(&account, "groups/gone").await.unwrap(),
        (0, vec![])
    );

    replace_rule_set(
        store,
        &account,
        rule_set(
            "servicePrincipals/sp",
            Some("sp"),
            &[
                ("roles/servicePrincipal.manager", "u1"),
                ("roles/servicePrincipal.user", "u2"),
                ("roles/servicePrincipal.user", "g"),
            ],
        ),
        0,
    )
    .await
    .unwrap();
    replace_rule_set(
        store,
        &account,
        rule_set("groups/g", Some("g"), &[("roles/group.manager", "u2")]),
        0,
    )
    .await
    .unwrap();

    // A holder deleted: its grants go, the set's version stays.
    delete(store, &account, "u2").await.unwrap();
    let (version, grants) = store
        .rule_set(&account, "servicePrincipals/sp")
        .await
        .unwrap();
    assert_eq!(version, 1);
    assert_eq!(
        grants_of(&grants),
        [
            ("roles/servicePrincipal.manager", "u1"),
            ("roles/servicePrincipal.user", "g")
        ]
    );
    assert_eq!(
        store.rule_set(&account, "groups/g").await.unwrap(),
        (1, vec![])
    );
    // The set's own principal deleted: the set goes whole, grants and version.
    delete(store, &account, "g").await.unwrap();
    assert_eq!(
        store.rule_set(&account, "groups/g").await.unwrap(),
        (0, vec![])
    );
    delete(store, &account, "sp").await.unwrap();
    assert_eq!(
        store
            .rule_set(&account, "servicePrincipals/sp")
            .await
            .unwrap(),
        (0, vec![])
    );
}

/// A catalog's isolation mode and workspace bindings are written by their changes and logged
/// for the engines; a binding names a workspace and a catalog of the account (another
/// account's workspace is missing); a rename carries them, deleting the workspace deletes its
/// bindings, and dropping the catalog deletes the rest.
pub async fn catalog_bindings_follow_their_catalog_and_their_workspaces(stores: &mut Stores) {
    let store = stores.fresh().await;
    let store = &*store;
    let account = seed_account(store).await;
    let foreign = seed_account_with(store, "00000000-0000-4000-8000-0000000000f2", "9000").await;
    create(store, &account, user("u1", "ann", 1), &[])
        .await
        .unwrap();
    let second = Workspace {
        id: WorkspaceId::new("2000"),
        account: account.clone(),
        name: "second".into(),
        created: Timestamp::from_micros(5),
        deployment_name: None,
    };
    store
        .apply(&account, new_workspace(second.clone()))
        .await
        .unwrap();
    let governance = |change: GovernanceChange| Change::Governance(change);
    for (securable_type, full_name) in [
        (SecurableType::Catalog, "main"),
        (SecurableType::Schema, "main.sales"),
    ] {
        store
            .apply(
                &account,
                governance(GovernanceChange::CreateSecurable {
                    securable_type,
                    full_name: full_name.into(),
                    owner: PrincipalId::new("u1"),
                    comment: None,
                    created: Timestamp::from_micros(6),
                }),
            )
            .await
            .unwrap();
    }
    let start = whole_log(store).await.len();
    let bind = |catalog: &str, workspace: &str, binding_type| {
        governance(GovernanceChange::BindWorkspace {
            catalog: catalog.into(),
            workspace: WorkspaceId::new(workspace),
            binding_type,
        })
    };
    let isolate = GovernanceChange::SetIsolationMode {
        catalog: "main".into(),
        isolation_mode: IsolationMode::Isolated,
    };
    for change in [
        governance(isolate.clone()),
        bind("main", "1000", Some(BindingType::ReadWrite)),
        bind("main", "2000", Some(BindingType::ReadWrite)),
        bind("main", "2000", Some(BindingType::ReadOnly)),
    ] {
        store.apply(&account, change).await.unwrap();
    }
    for refused in [
        bind("main", "9000", Some(BindingType::ReadWrite)),
        bind("main", "9999", Some(BindingType::ReadWrite)),
        bind("nowhere", "1000", Some(BindingType::ReadWrite)),
        governance(GovernanceChange::SetIsolationMode {
            catalog: "main.sales".into(),
            isolation_mode: IsolationMode::Isolated,
        }),
    ] {
        let error = store.apply(&account, refused).await.unwrap_err();
        assert!(matches!(error, ScimError::NotFound(_)), "{error:?}");
    }
    let logged: Vec<AccessEvent> = whole_log(store).await[start..]
        .iter()
        .map(|logged| logged.event.clone())
        .collect();
    assert_eq!(
        logged.len(),
        4,
        "each change logged once, refusals not at all"
    );
    assert_eq!(logged[0], AccessEvent::Governance(isolate));
    let binding = |catalog: &str, workspace: &str, binding_type| BindingRow {
        catalog: catalog.into(),
        workspace: WorkspaceId::new(workspace),
        binding_type,
    };
    let snapshot = store.access_snapshot(&account).await.unwrap();
    assert_eq!(
        snapshot.bindings,
        vec![
            binding("main", "1000", BindingType::ReadWrite),
            binding("main", "2000", BindingType::ReadOnly),
        ]
    );
    let isolation = |snapshot: &AccessSnapshot, name: &str| {
        snapshot
            .securables
            .iter()
            .find(|row| row.full_name == name)
            .map(|row| row.isolation_mode)
    };
    assert_eq!(isolation(&snapshot, "main"), Some(IsolationMode::Isolated));
    assert_eq!(
        isolation(&snapshot, "main.sales"),
        Some(IsolationMode::Open)
    );
    assert!(store
        .access_snapshot(&foreign)
        .await
        .unwrap()
        .bindings
        .is_empty());

    store
        .apply(
            &account,
            governance(GovernanceChange::RenameSecurable {
                securable_type: SecurableType::Catalog,
                full_name: "main".into(),
                new_name: "primary".into(),
            }),
        )
        .await
        .unwrap();
    let snapshot = store.access_snapshot(&account).await.unwrap();
    assert_eq!(
        isolation(&snapshot, "primary"),
        Some(IsolationMode::Isolated)
    );
    assert_eq!(snapshot.bindings.len(), 2);
    assert!(snapshot.bindings.iter().all(|row| row.catalog == "primary"));

    store
        .apply(&account, Change::DeleteWorkspace { id: second.id })
        .await
        .unwrap();
    assert_eq!(
        store.access_snapshot(&account).await.unwrap().bindings,
        vec![binding("primary", "1000", BindingType::ReadWrite)]
    );
    store
        .apply(
            &account,
            governance(GovernanceChange::DropSecurable {
                securable_type: SecurableType::Catalog,
                full_name: "primary".into(),
            }),
        )
        .await
        .unwrap();
    assert!(store
        .access_snapshot(&account)
        .await
        .unwrap()
        .bindings
        .is_empty());
}

fn federation_policy(
    account: &AccountId,
    uid: &str,
    policy_id: &str,
    principal: Option<&str>,
    created: i64,
) -> crate::FederationPolicy {
    crate::FederationPolicy {
        account: account.clone(),
        uid: uid.into(),
        policy_id: policy_id.into(),
        service_principal: principal.map(PrincipalId::new),
        description: Some(format!("policy {uid}")),
        oidc: crate::OidcPolicy {
            issuer: "https://issuer.example".into(),
            audiences: vec!["aud-1".into(), "aud-2".into()],
            subject: principal.map(|_| "repo:x".to_string()),
            subject_claim: None,
            jwks_json: Some(r#"{"keys":[]}"#.into()),
            jwks_uri: None,
        },
        created: Timestamp::from_micros(created),
        updated: Timestamp::from_micros(created),
    }
}

/// Federation policies are kept per owner (the account, or one service principal), oldest
/// first, and read back whole; a `policy_id` is unique per owner only; a service principal's
/// must name a service principal; an update replaces the settings of the policy its uid names;
/// a deletion is logged under the uid (the nodes forget the tokens exchanged through it); a
/// missing policy is not found; deleting the principal deletes its policies.
pub async fn federation_policies_are_unique_per_owner_updated_and_deleted_with_log_entries(
    stores: &mut Stores,
) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let sp = principal(
        "s1",
        PrincipalKind::ServicePrincipal,
        json!({"applicationId": "app-1", "displayName": "app-1", "active": true}),
        1,
    );
    create(store, &account, sp, &[]).await.unwrap();
    create(store, &account, user("u1", "ann", 1), &[])
        .await
        .unwrap();
    let create_policy = |policy: crate::FederationPolicy| Change::CreateFederationPolicy(policy);
    let account_policy = federation_policy(&account, "uid-a", "ci", None, 20);
    store
        .apply(&account, create_policy(account_policy.clone()))
        .await
        .unwrap();
    store
        .apply(
            &account,
            create_policy(federation_policy(&account, "uid-b", "other", None, 10)),
        )
        .await
        .unwrap();
    // The same policy_id for a service principal is another owner's: allowed.
    let sp_policy = federation_policy(&account, "uid-c", "ci", Some("s1"), 30);
    store
        .apply(&account, create_policy(sp_policy.clone()))
        .await
        .unwrap();
    let taken = store
        .apply(
            &account,
            create_policy(federation_policy(&account, "uid-d", "ci", None, 40)),
        )
        .await;
    assert!(
        matches!(
            &taken,
            Err(ScimError::BadRequest {
                scim_type: ScimType::Uniqueness,
                ..
            })
        ),
        "{taken:?}"
    );
    let of_user = store
        .apply(
            &account,
            create_policy(federation_policy(&account, "uid-e", "x", Some("u1"), 40)),
        )
        .await;
    assert!(
        matches!(of_user, Err(ScimError::NotFound(_))),
        "{of_user:?}"
    );
    let listed = store.federation_policies(&account, None).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|p| p.uid.as_str()).collect();
    assert_eq!(ids, ["uid-b", "uid-a"]);
    assert_eq!(listed[1], account_policy);
    let s1 = PrincipalId::new("s1");
    assert_eq!(
        store
            .federation_policies(&account, Some(&s1))
            .await
            .unwrap(),
        std::slice::from_ref(&sp_policy)
    );
    assert_eq!(
        store.federation_policy(&account, "uid-c").await.unwrap(),
        Some(sp_policy.clone())
    );
    let mut changed = sp_policy.clone();
    changed.oidc.audiences = vec!["aud-3".into()];
    changed.oidc.jwks_json = None;
    changed.oidc.jwks_uri = Some("https://issuer.example/keys".into());
    changed.description = None;
    changed.updated = Timestamp::from_micros(50);
    store
        .apply(&account, Change::UpdateFederationPolicy(changed.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.federation_policy(&account, "uid-c").await.unwrap(),
        Some(changed)
    );
    let missing = store
        .apply(
            &account,
            Change::UpdateFederationPolicy(federation_policy(&account, "nope", "n", None, 1)),
        )
        .await;
    assert!(
        matches!(missing, Err(ScimError::NotFound(_))),
        "{missing:?}"
    );
    let delete_policy = |uid: &str| Change::DeleteFederationPolicy { uid: uid.into() };
    store.apply(&account, delete_policy("uid-a")).await.unwrap();
    let again = store.apply(&account, delete_policy("uid-a")).await;
    assert!(matches!(again, Err(ScimError::NotFound(_))), "{again:?}");
    assert_eq!(token_events(store).await, ["uid-a"]);
    delete(store, &account, "s1").await.unwrap();
    assert!(store
        .federation_policies(&account, Some(&s1))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.federation_policy(&account, "uid-c").await.unwrap(),
        None
    );
}

/// An exchanged JWT is recorded once: recording it again is a conflict (a replay), on any
/// connection; the same id from another issuer or account is another token; a record is
/// deleted once it has expired, by the next exchange.
pub async fn an_exchanged_token_is_recorded_once_until_it_expires(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let other = seed_account_with(store, "other", "9000").await;
    let record = |issuer: &str, id: &str, expires: i64, now: i64| {
        Change::RecordExchangedToken(crate::ExchangedToken {
            issuer: issuer.into(),
            token_id: id.into(),
            expires: Timestamp::from_micros(expires),
            now: Timestamp::from_micros(now),
        })
    };
    store
        .apply(&account, record("https://a", "j1", 100, 0))
        .await
        .unwrap();
    let replay = store
        .apply(&account, record("https://a", "j1", 100, 50))
        .await;
    assert!(matches!(replay, Err(ScimError::Conflict(_))), "{replay:?}");
    store
        .apply(&account, record("https://b", "j1", 100, 50))
        .await
        .unwrap();
    store
        .apply(&other, record("https://a", "j1", 100, 50))
        .await
        .unwrap();
    // At 100 the first record has expired, and the next exchange deletes it: the JWT itself
    // can no longer be presented, so recording it again is no replay.
    store
        .apply(&account, record("https://a", "j2", 200, 100))
        .await
        .unwrap();
    store
        .apply(&account, record("https://a", "j1", 300, 100))
        .await
        .unwrap();
}
