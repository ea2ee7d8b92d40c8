//! The storage conformance suite: behaviour every backend must show, written once against the
//! [`Store`] trait. Each backend's tests call [`run_all`] with a factory for fresh, empty stores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{
    AccessEvent, Account, Change, GovernanceChange, GrantRow, LoggedEvent, Store, Workspace,
};
use scimitar_access::{AclEntry, ObjectType, PermissionLevel, Privilege, SecurableType};
use scimitar_domain::credentials::{Token, TokenScope};
use scimitar_domain::error::ScimType;
use scimitar_domain::filter::parse_filter;
use scimitar_domain::patch::MembershipStep;
use scimitar_domain::query::{ListParameters, ListQuery};
use scimitar_domain::resource::MemberValue;
use scimitar_domain::schema::PrincipalKind;
use scimitar_domain::{AccountId, Principal, PrincipalId, ScimError, Timestamp, WorkspaceId};
use serde_json::{json, Map, Value};
use std::future::Future;

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

async fn seed_account(store: &dyn Store) -> AccountId {
    let account = AccountId::new(ACCOUNT);
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
                    id: WorkspaceId::new("1000"),
                    account: account.clone(),
                    name: "main".into(),
                    created: Timestamp::from_micros(0),
                },
                system_groups: vec![admins, users],
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
        .apply(account, Change::CreatePrincipal { principal, members })
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
            },
        )
        .await
}

async fn member_ids(store: &dyn Store, account: &AccountId, group_id: &str) -> Vec<String> {
    let id = PrincipalId::new(group_id);
    let mut members = store
        .members(account, std::slice::from_ref(&id))
        .await
        .unwrap();
    let mut ids: Vec<String> = members
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.id.to_string())
        .collect();
    ids.sort();
    ids
}

pub async fn user_names_are_unique_ignoring_case(store: &dyn Store) {
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

pub async fn users_join_the_users_group_and_leave_every_group_when_deleted(store: &dyn Store) {
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

pub async fn members_must_exist_and_cycles_are_refused(store: &dyn Store) {
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

pub async fn groups_of_lists_inherited_groups_as_indirect(store: &dyn Store) {
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

pub async fn a_stale_version_is_a_precondition_failure(store: &dyn Store) {
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
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ScimError::PreconditionFailed(_)));
}

pub async fn sql_filters_agree_with_the_reference_evaluator(store: &dyn Store) {
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

pub async fn pages_are_stable_and_counted(store: &dyn Store) {
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

pub async fn tokens_are_found_by_digest_only(store: &dyn Store) {
    let account = seed_account(store).await;
    create(store, &account, user("1", "alice", 1), &[])
        .await
        .unwrap();
    let token = Token {
        id: "t1".into(),
        account: account.clone(),
        principal: PrincipalId::new("1"),
        scope: TokenScope::Admin,
        comment: None,
        created: Timestamp::from_micros(5),
        expires: None,
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

pub async fn small_member_lists_are_returned_and_large_ones_are_not(store: &dyn Store) {
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

pub async fn principals_are_found_by_name_ignoring_case_and_kind_apart(store: &dyn Store) {
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
pub async fn concurrent_writes_succeed_or_fail_each_alone(store: &dyn Store) {
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
pub async fn the_access_log_records_changes_in_commit_order(store: &dyn Store) {
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

/// Securables, grants and ACLs are stored, dropped with their subtree, logged, and come back
/// in a snapshot that names the log position it is consistent with.
pub async fn governance_state_round_trips_through_snapshot_and_log(store: &dyn Store) {
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
    governance(GovernanceChange::SetObjectAcl {
        object_type: ObjectType::Jobs,
        object_id: "42".into(),
        entries: vec![AclEntry::new(
            PrincipalId::new("u1"),
            PermissionLevel::CanManageRun,
        )],
    })
    .await
    .unwrap();
    governance(GovernanceChange::SetObjectParent {
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

/// A batch of governance changes commits whole, one log entry per change, or, when one of
/// them fails, not at all: a permissions PATCH that names an unknown securable halfway must
/// leave the grants before it unmade.
pub async fn a_governance_batch_commits_whole_or_not_at_all(store: &dyn Store) {
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
pub async fn opposite_nestings_at_once_never_make_a_cycle(store: &dyn Store) {
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
pub async fn concurrent_updates_from_one_version_commit_one(store: &dyn Store) {
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

/// A store that has just opened is ready: it answers, and its schema is current.
pub async fn an_open_store_is_ready(store: &dyn Store) {
    assert_eq!(store.ready().await, Ok(()));
}

/// Runs every case, each on a fresh store from `fresh`.
pub async fn run_all<S, F, Fut>(fresh: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    user_names_are_unique_ignoring_case(&fresh().await).await;
    users_join_the_users_group_and_leave_every_group_when_deleted(&fresh().await).await;
    members_must_exist_and_cycles_are_refused(&fresh().await).await;
    a_stale_version_is_a_precondition_failure(&fresh().await).await;
    groups_of_lists_inherited_groups_as_indirect(&fresh().await).await;
    sql_filters_agree_with_the_reference_evaluator(&fresh().await).await;
    pages_are_stable_and_counted(&fresh().await).await;
    tokens_are_found_by_digest_only(&fresh().await).await;
    small_member_lists_are_returned_and_large_ones_are_not(&fresh().await).await;
    principals_are_found_by_name_ignoring_case_and_kind_apart(&fresh().await).await;
    concurrent_writes_succeed_or_fail_each_alone(&fresh().await).await;
    the_access_log_records_changes_in_commit_order(&fresh().await).await;
    governance_state_round_trips_through_snapshot_and_log(&fresh().await).await;
    a_governance_batch_commits_whole_or_not_at_all(&fresh().await).await;
    opposite_nestings_at_once_never_make_a_cycle(&fresh().await).await;
    concurrent_updates_from_one_version_commit_one(&fresh().await).await;
    an_open_store_is_ready(&fresh().await).await;
}
