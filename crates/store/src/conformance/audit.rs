//! Conformance cases of the audit trail: every change writes one event in its own
//! transaction (and a refused change none), events carry their context and what changed but
//! no secret, and each account's trail is numbered in commit order with a head whose root is
//! the Merkle root of the stored events, however many writers race.

use super::*;
use crate::{AuditContext, AuditEvent, Store, UserIdentity};
use scimitar_audit::merkle;

/// Every event of an account's trail, parsed, after checking what any trail must be: numbered
/// 1, 2, 3 ... with no gap, each stored leaf the hash of its text, and the head's size and
/// root those of the tree over them.
async fn checked_trail(store: &dyn Store, account: &AccountId) -> Vec<AuditEvent> {
    let stored = store
        .audit_events(account, 0, usize::MAX >> 1)
        .await
        .unwrap();
    let mut leaves = Vec::new();
    let mut events = Vec::new();
    for (index, event) in stored.iter().enumerate() {
        assert_eq!(
            event.seq,
            index as u64 + 1,
            "the trail has a gap or a duplicate"
        );
        let leaf = merkle::leaf_hash(event.text.as_bytes());
        assert_eq!(event.leaf, scimitar_domain::ids::lower_hex(&leaf));
        leaves.push(leaf);
        let parsed: AuditEvent = serde_json::from_str(&event.text).unwrap();
        assert_eq!(parsed.seq, event.seq);
        assert_eq!(parsed.account_id, account.as_str());
        events.push(parsed);
    }
    let head = store.audit_head(account).await.unwrap();
    assert_eq!(head.size, leaves.len() as u64);
    assert_eq!(
        head.root,
        scimitar_domain::ids::lower_hex(&merkle::root(&leaves))
    );
    assert_eq!(
        store.audit_leaves(account, head.size).await.unwrap(),
        leaves
    );
    events
}

fn actions(events: &[AuditEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.action_name.as_str())
        .collect()
}

pub async fn every_change_writes_one_audit_event_and_a_refused_change_none(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let mut alice = user("u1", "alice", 1);
    alice.password_hash = Some("$argon2id$v=19$SECRET-HASH".into());
    let context = AuditContext {
        event_id: "event-1".into(),
        event_time: Some(Timestamp::from_micros(1_000_000)),
        workspace_id: Some(WorkspaceId::new("1000")),
        user_identity: Some(UserIdentity {
            principal_id: "admin-1".into(),
            credential_kind: "token".into(),
            credential_id: Some("t-admin".into()),
        }),
        source_ip_address: Some("192.0.2.7".into()),
        user_agent: Some("terraform/1.9".into()),
        request_id: Some("req-42".into()),
    };
    let create_alice = Change::CreatePrincipal {
        principal: alice.clone(),
        members: Vec::new(),
        assign_to: None,
    };
    store
        .apply_audited(&account, create_alice.clone(), context.clone())
        .await
        .unwrap();
    // The same user again is refused: neither it nor its event is kept.
    let refused = store
        .apply_audited(&account, create_alice, context.clone())
        .await;
    assert!(refused.is_err());
    create(store, &account, group("g", "team"), &[])
        .await
        .unwrap();
    add_members(store, &account, "g", &["u1"]).await.unwrap();
    let mut renamed = alice.clone();
    renamed
        .attributes
        .insert("displayName".into(), json!("Alice A."));
    renamed.attributes.insert("active".into(), json!(false));
    renamed.version = 2;
    store
        .apply(
            &account,
            Change::UpdatePrincipal {
                principal: renamed,
                expected_version: 1,
                membership: Vec::new(),
                workspace: None,
            },
        )
        .await
        .unwrap();
    let token = Token {
        id: "t1".into(),
        account: account.clone(),
        principal: PrincipalId::new("u1"),
        scope: TokenScope::AllApis,
        comment: None,
        created: Timestamp::from_micros(5),
        expires: None,
        workspace: None,
        created_by: None,
    };
    let digest = "d1g3st-OF-THE-SECRET";
    store
        .apply(
            &account,
            Change::CreateToken {
                token,
                digest: digest.into(),
            },
        )
        .await
        .unwrap();
    store
        .apply(
            &account,
            Change::Governance(GovernanceChange::CreateSecurable {
                securable_type: SecurableType::Catalog,
                full_name: "main".into(),
                owner: PrincipalId::new("u1"),
                comment: None,
                created: Timestamp::from_micros(6),
            }),
        )
        .await
        .unwrap();
    store
        .apply(
            &account,
            Change::Governance(GovernanceChange::Grant {
                securable_type: SecurableType::Catalog,
                full_name: "main".into(),
                principal: PrincipalId::new("g"),
                privileges: vec![Privilege::UseCatalog],
            }),
        )
        .await
        .unwrap();
    // Bookkeeping is not an event.
    store
        .apply(
            &account,
            Change::TokensUsed(vec![("t1".into(), Timestamp::from_micros(7))]),
        )
        .await
        .unwrap();
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

    let events = checked_trail(store, &account).await;
    assert_eq!(
        actions(&events),
        [
            "createAccount",
            "add",
            "createGroup",
            "addPrincipalToGroup",
            "updateUser",
            "generateDbToken",
            "createSecurable",
            "updatePermissions",
            "delete"
        ]
    );
    // The context given with the change is the event's.
    let added = &events[1];
    assert_eq!(added.event_id, "event-1");
    assert_eq!(
        added.event_time.as_deref(),
        Some("1970-01-01T00:00:01.000Z")
    );
    assert_eq!(added.workspace_id.as_deref(), Some("1000"));
    assert_eq!(added.user_identity, context.user_identity);
    assert_eq!(added.source_ip_address.as_deref(), Some("192.0.2.7"));
    assert_eq!(added.user_agent.as_deref(), Some("terraform/1.9"));
    assert_eq!(added.request_id.as_deref(), Some("req-42"));
    assert_eq!(added.request_params["targetUserName"], "alice");
    // An unattributed change says so rather than inventing someone.
    assert_eq!(events[2].user_identity, None);
    assert_eq!(events[2].event_time, None);
    // The membership names its group and member.
    let membership = &events[3];
    assert_eq!(membership.request_params["targetGroupId"], "g");
    assert_eq!(membership.request_params["targetUserId"], "u1");
    assert_eq!(
        membership
            .targets
            .iter()
            .map(|target| target.id.as_str())
            .collect::<Vec<_>>(),
        ["g", "u1"]
    );
    assert_eq!(
        membership.request_params["membership"],
        json!([{"op": "add", "members": ["u1"]}])
    );
    // The update has the attributes before and after, and only those that changed.
    let updated = serde_json::to_value(&events[4].targets[0].modified_properties).unwrap();
    assert_eq!(
        updated,
        json!([
            {"display_name": "active", "old_value": true, "new_value": false},
            {"display_name": "displayName", "old_value": null, "new_value": "Alice A."},
        ])
    );
    // The grant has the privileges added and removed.
    assert_eq!(
        events[7].request_params["changes"],
        json!([{"principal": "g", "add": ["USE_CATALOG"], "remove": []}])
    );
    // The delete has the attributes it removed.
    let deleted = &events[8].targets[0];
    assert_eq!(deleted.id, "u1");
    assert!(deleted
        .modified_properties
        .iter()
        .any(|property| property.display_name == "userName" && property.new_value.is_null()));
    // No secret anywhere in the trail.
    let whole: String = store
        .audit_events(&account, 0, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.text)
        .collect();
    for secret in ["SECRET-HASH", "argon2", digest, "password"] {
        assert!(!whole.contains(secret), "the trail holds {secret:?}");
    }
}

/// Writers on several nodes (store handles on one database) race: the trail still has one
/// event per change, numbered without gaps, and a head that matches them.
pub async fn racing_writers_number_an_accounts_trail_without_gaps(stores: &mut Stores) {
    let first = stores.fresh().await;
    let second = stores.again().await;
    let account = seed_account(&*first).await;
    let other = seed_account_with(&*first, "acct-2", "2000").await;
    let mut writers = Vec::new();
    for (node, store) in [first.clone(), second.clone()].into_iter().enumerate() {
        for writer in 0..3 {
            let (store, account, other) = (store.clone(), account.clone(), other.clone());
            writers.push(tokio::spawn(async move {
                for n in 0..6 {
                    let id = format!("n{node}w{writer}u{n}");
                    let target = if n % 3 == 0 { &other } else { &account };
                    create(&*store, target, user(&id, &id, 1), &[])
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let events = checked_trail(&*second, &account).await;
    assert_eq!(events.len(), 1 + 2 * 3 * 4);
    let events = checked_trail(&*first, &other).await;
    assert_eq!(events.len(), 1 + 2 * 3 * 2);
}

/// A context at `micros` on the clock, as the application gives one.
fn at(micros: i64) -> AuditContext {
    AuditContext {
        event_id: format!("event-{micros}"),
        event_time: Some(Timestamp::from_micros(micros)),
        ..AuditContext::default()
    }
}

/// A user created with the context of `micros`.
async fn create_at(store: &dyn Store, account: &AccountId, id: &str, micros: i64) {
    let change = Change::CreatePrincipal {
        principal: user(id, id, micros),
        members: Vec::new(),
        assign_to: None,
    };
    store
        .apply_audited(account, change, at(micros))
        .await
        .unwrap();
}

pub async fn refused_requests_join_the_trail_one_event_each_with_their_status(stores: &mut Stores) {
    let store = stores.fresh().await;
    let account = seed_account(&*store).await;
    let before = store.audit_head(&account).await.unwrap().size;
    let refusal = |status: u16, request: &str| crate::Refusal {
        context: AuditContext {
            request_id: Some(request.to_string()),
            source_ip_address: Some("192.0.2.7".into()),
            ..at(5_000_000)
        },
        service_name: "accounts".into(),
        action_name: "tokenLogin".into(),
        request_params: serde_json::Map::from_iter([(
            "credential_kind".to_string(),
            json!("personal_access_token"),
        )]),
        status_code: status,
        error_message: Some("not authenticated".into()),
    };
    let change = Change::RecordRefusals(vec![
        refusal(401, "r1"),
        refusal(403, "r2"),
        refusal(404, "r3"),
    ]);
    store
        .apply_audited(&account, change, AuditContext::unattributed())
        .await
        .unwrap();
    let events = checked_trail(&*store, &account).await;
    assert_eq!(events.len() as u64, before + 3);
    let refused: Vec<(u16, Option<&str>)> = events[before as usize..]
        .iter()
        .map(|event| (event.response.status_code, event.request_id.as_deref()))
        .collect();
    assert_eq!(
        refused,
        vec![(401, Some("r1")), (403, Some("r2")), (404, Some("r3"))]
    );
    let verified = crate::audit::verify_trail(&*store, &account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
    assert_eq!(verified.events, before + 3);
}

pub async fn a_pruned_trail_keeps_the_frontier_of_what_it_pruned_and_still_verifies(
    stores: &mut Stores,
) {
    let store = stores.fresh().await;
    let account = seed_account(&*store).await;
    for (index, micros) in [10_000_000, 11_000_000, 12_000_000].into_iter().enumerate() {
        create_at(&*store, &account, &format!("old{index}"), micros).await;
    }
    let old_size = store.audit_head(&account).await.unwrap().size;
    let old_root = store.audit_head(&account).await.unwrap().root;
    for (index, micros) in [50_000_000, 51_000_000].into_iter().enumerate() {
        create_at(&*store, &account, &format!("new{index}"), micros).await;
    }
    assert_eq!(store.audit_pruned(&account).await.unwrap(), None);

    let prune = Change::PruneAuditTrail {
        before: Timestamp::from_micros(20_000_000),
    };
    store
        .apply_audited(&account, prune.clone(), at(60_000_000))
        .await
        .unwrap();
    // Everything up to the last old event went; its tree is kept as a frontier.
    let base = store.audit_pruned(&account).await.unwrap().unwrap();
    assert_eq!(base.size, old_size);
    assert_eq!(base.root, old_root);
    let kept = store.audit_events(&account, 0, 100).await.unwrap();
    assert_eq!(kept.first().map(|event| event.seq), Some(old_size + 1));
    assert_eq!(kept.len(), 3, "two new events and the prune's own");
    let last: AuditEvent = serde_json::from_str(&kept[2].text).unwrap();
    assert_eq!(last.action_name, "pruneAuditEvents");
    let head = store.audit_head(&account).await.unwrap();
    let verified = crate::audit::verify_trail(&*store, &account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
    assert_eq!((verified.events, verified.pruned), (head.size, old_size));
    assert_eq!(scimitar_domain::ids::lower_hex(&verified.root), head.root);
    assert_eq!(
        store.audit_leaves(&account, head.size).await.unwrap().len() as u64,
        head.size - old_size
    );

    // Pruning again at the same horizon finds nothing more to prune.
    store
        .apply_audited(&account, prune, at(61_000_000))
        .await
        .unwrap();
    assert_eq!(
        store
            .audit_pruned(&account)
            .await
            .unwrap()
            .map(|base| base.size),
        Some(old_size)
    );
    let verified = crate::audit::verify_trail(&*store, &account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
}

/// A trail longer than the head's fold interval (`sql::audit::FOLD_EVERY`, 1,024 events): its
/// head is the tree of every event whether it stands just before, on or after a fold; a prune
/// past the last fold keeps the trail verifiable; events appended afterwards extend it.
pub async fn a_trail_past_its_head_folds_keeps_its_root_through_appends_and_prunes(
    stores: &mut Stores,
) {
    let store = stores.fresh().await;
    let account = seed_account(&*store).await;
    let refusals = |from: i64, count: i64| {
        Change::RecordRefusals(
            (from..from + count)
                .map(|n| crate::Refusal {
                    context: at(1_000_000 + n * 1_000),
                    service_name: "accounts".into(),
                    action_name: "tokenLogin".into(),
                    request_params: serde_json::Map::new(),
                    status_code: 401,
                    error_message: None,
                })
                .collect(),
        )
    };
    let start = store.audit_head(&account).await.unwrap().size as i64;
    // Up to one event before the first fold, then across it.
    store
        .apply_audited(
            &account,
            refusals(0, 1023 - start),
            AuditContext::unattributed(),
        )
        .await
        .unwrap();
    assert_eq!(checked_trail(&*store, &account).await.len(), 1023);
    store
        .apply_audited(&account, refusals(2_000, 477), AuditContext::unattributed())
        .await
        .unwrap();
    assert_eq!(checked_trail(&*store, &account).await.len(), 1500);

    // Pruned past the last fold (1,024): events up to 1,300 go.
    let horizon = store.audit_events(&account, 1299, 1).await.unwrap();
    let horizon: AuditEvent = serde_json::from_str(&horizon[0].text).unwrap();
    let horizon = Timestamp::parse_rfc3339(horizon.event_time.as_deref().unwrap()).unwrap();
    store
        .apply_audited(
            &account,
            Change::PruneAuditTrail {
                before: Timestamp::from_micros(horizon.as_micros() + 1),
            },
            at(9_000_000),
        )
        .await
        .unwrap();
    let verified = crate::audit::verify_trail(&*store, &account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
    assert_eq!((verified.events, verified.pruned), (1501, 1300));

    store
        .apply_audited(&account, refusals(5_000, 600), AuditContext::unattributed())
        .await
        .unwrap();
    let verified = crate::audit::verify_trail(&*store, &account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
    let head = store.audit_head(&account).await.unwrap();
    assert_eq!(head.size, 2101);
    assert_eq!(scimitar_domain::ids::lower_hex(&verified.root), head.root);
}
