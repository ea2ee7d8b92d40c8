//! Conformance cases of alerting's storage: rules are unique by name per account and apply
//! after the trail as it stood at their creation; the evaluation cursor moves only for the
//! lease holder and only from where it read it; a firing is stored once per rule and event;
//! and a delivery is claimed by one node at a time and, once acknowledged, never due again.

use super::*;
use crate::alerts::{AlertChange, AlertFiring, StoredAlertRule};
use crate::Store;
use scimitar_domain::ScimResult;

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

fn rule(id: &str, name: &str) -> StoredAlertRule {
    StoredAlertRule {
        id: id.into(),
        name: name.into(),
        definition: r#"{"name":"n","kind":"admins_group_change","webhook":{"url":"http://h/x"}}"#
            .into(),
        secret: "SECRET-SIGNING-KEY".into(),
        after_seq: 999,
        created: at(1),
        updated: at(1),
    }
}

fn firing(id: &str, rule: &str, seq: u64) -> AlertFiring {
    AlertFiring {
        id: id.into(),
        rule_id: rule.into(),
        event_seq: seq,
        url: "http://h/x".into(),
        format: "generic".into(),
        secret: "SECRET-SIGNING-KEY".into(),
        body: "{}".into(),
    }
}

async fn alert(store: &dyn Store, account: &AccountId, change: AlertChange) -> ScimResult<()> {
    store.apply(account, Change::Alerts(change)).await
}

fn lease(owner: &str, now: i64, until: i64) -> AlertChange {
    AlertChange::TakeLease {
        owner: owner.into(),
        now: at(now),
        until: at(until),
    }
}

fn advance(owner: &str, from: u64, to: u64, firings: Vec<AlertFiring>) -> AlertChange {
    AlertChange::Advance {
        owner: owner.into(),
        from,
        to,
        firings,
        now: at(10),
    }
}

pub async fn alert_rules_are_unique_by_name_audited_without_their_secret_and_start_after_the_trail(
    stores: &mut Stores,
) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let size = store.audit_head(&account).await.unwrap().size;
    alert(
        store,
        &account,
        AlertChange::CreateRule(rule("r1", "watch")),
    )
    .await
    .unwrap();
    let stored = store.alert_rules(&account).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].after_seq, size,
        "the trail as it stood, not what was given"
    );
    assert_eq!(stored[0].secret, "SECRET-SIGNING-KEY");
    // The cursor exists from the rule's creation, at the same place.
    let cursor = store.alert_cursor(&account).await.unwrap().unwrap();
    assert_eq!(cursor.position, size);
    let taken = alert(
        store,
        &account,
        AlertChange::CreateRule(rule("r2", "watch")),
    )
    .await;
    assert!(
        matches!(
            taken,
            Err(ScimError::BadRequest { .. }) | Err(ScimError::Conflict(_))
        ),
        "{taken:?}"
    );
    let missing = AlertChange::UpdateRule {
        id: "nope".into(),
        name: "other".into(),
        definition: "{}".into(),
        secret: None,
        updated: at(2),
    };
    assert!(matches!(
        alert(store, &account, missing).await,
        Err(ScimError::NotFound(_))
    ));
    let renamed = AlertChange::UpdateRule {
        id: "r1".into(),
        name: "renamed".into(),
        definition: "{}".into(),
        secret: None,
        updated: at(2),
    };
    alert(store, &account, renamed).await.unwrap();
    let stored = store.alert_rules(&account).await.unwrap();
    assert_eq!(stored[0].name, "renamed");
    assert_eq!(
        stored[0].secret, "SECRET-SIGNING-KEY",
        "kept when none is given"
    );
    // Another account holds none of it.
    let other = seed_account_with(store, "acct-2", "2000").await;
    assert!(store.alert_rules(&other).await.unwrap().is_empty());
    alert(store, &account, AlertChange::DeleteRule { id: "r1".into() })
        .await
        .unwrap();
    let again = alert(store, &account, AlertChange::DeleteRule { id: "r1".into() }).await;
    assert!(matches!(again, Err(ScimError::NotFound(_))));
    // Three rule writes are in the trail, without the secret; the lease is not.
    alert(store, &account, lease("node-a", 1, 100))
        .await
        .unwrap();
    let events = store.audit_events(&account, size, 100).await.unwrap();
    let actions: Vec<String> = events
        .iter()
        .map(|event| {
            assert!(!event.text.contains("SECRET-SIGNING-KEY"), "{}", event.text);
            serde_json::from_str::<crate::AuditEvent>(&event.text)
                .unwrap()
                .action_name
        })
        .collect();
    assert_eq!(
        actions,
        vec!["createAlertRule", "updateAlertRule", "deleteAlertRule"]
    );
}

pub async fn an_alert_cursor_moves_only_for_its_lease_holder_from_where_it_read(
    stores: &mut Stores,
) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    let size = store.audit_head(&account).await.unwrap().size;
    alert(store, &account, lease("node-a", 10, 100))
        .await
        .unwrap();
    let cursor = store.alert_cursor(&account).await.unwrap().unwrap();
    assert_eq!(cursor.position, size, "made where the trail stood");
    assert_eq!(cursor.lease_owner.as_deref(), Some("node-a"));
    // Another node cannot take a lease that has not expired, nor move the cursor.
    alert(store, &account, lease("node-b", 50, 140))
        .await
        .unwrap();
    let cursor = store.alert_cursor(&account).await.unwrap().unwrap();
    assert_eq!(cursor.lease_owner.as_deref(), Some("node-a"));
    assert_eq!(cursor.lease_until, Some(at(100)));
    let stolen = alert(
        store,
        &account,
        advance("node-b", size, size + 5, vec![firing("d1", "r", 3)]),
    )
    .await;
    assert!(matches!(stolen, Err(ScimError::Conflict(_))), "{stolen:?}");
    // The holder moves it only from where it is; a stale move writes nothing.
    let stale = alert(
        store,
        &account,
        advance("node-a", size + 1, size + 5, vec![firing("d1", "r", 3)]),
    )
    .await;
    assert!(matches!(stale, Err(ScimError::Conflict(_))), "{stale:?}");
    assert!(store.alert_deliveries(&account).await.unwrap().is_empty());
    alert(
        store,
        &account,
        advance("node-a", size, size + 5, vec![firing("d1", "r", 3)]),
    )
    .await
    .unwrap();
    let cursor = store.alert_cursor(&account).await.unwrap().unwrap();
    assert_eq!(cursor.position, size + 5);
    assert_eq!(store.alert_deliveries(&account).await.unwrap().len(), 1);
    // Renewed by its holder; taken by another once expired.
    alert(store, &account, lease("node-a", 90, 190))
        .await
        .unwrap();
    alert(store, &account, lease("node-b", 150, 250))
        .await
        .unwrap();
    let cursor = store.alert_cursor(&account).await.unwrap().unwrap();
    assert_eq!(cursor.lease_owner.as_deref(), Some("node-a"));
    alert(store, &account, lease("node-b", 190, 290))
        .await
        .unwrap();
    let cursor = store.alert_cursor(&account).await.unwrap().unwrap();
    assert_eq!(cursor.lease_owner.as_deref(), Some("node-b"));
    assert_eq!(
        cursor.position,
        size + 5,
        "a lease changing hands keeps the position"
    );
}

pub async fn an_alert_firing_is_stored_once_per_rule_and_event(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    alert(store, &account, lease("node-a", 10, 100))
        .await
        .unwrap();
    let from = store
        .alert_cursor(&account)
        .await
        .unwrap()
        .unwrap()
        .position;
    let firings = vec![firing("d1", "r1", 7), firing("d2", "r2", 7)];
    alert(store, &account, advance("node-a", from, from + 1, firings))
        .await
        .unwrap();
    // The same rule and event again (another evaluation's delivery id): skipped.
    let again = vec![firing("d3", "r1", 7), firing("d4", "r1", 8)];
    alert(
        store,
        &account,
        advance("node-a", from + 1, from + 2, again),
    )
    .await
    .unwrap();
    let mut ids: Vec<String> = store
        .alert_deliveries(&account)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.firing.id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["d1", "d2", "d4"]);
}

pub async fn an_alert_delivery_is_claimed_by_one_node_and_never_due_once_delivered(
    stores: &mut Stores,
) {
    let store = &*stores.fresh().await;
    let account = seed_account(store).await;
    alert(store, &account, lease("node-a", 10, 100))
        .await
        .unwrap();
    let from = store
        .alert_cursor(&account)
        .await
        .unwrap()
        .unwrap()
        .position;
    alert(
        store,
        &account,
        advance("node-a", from, from + 1, vec![firing("d1", "r1", 7)]),
    )
    .await
    .unwrap();
    let due = store.alert_deliveries_due(at(10), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 0);
    let claim = |attempts: u32, now: i64, until: i64| AlertChange::ClaimDelivery {
        id: "d1".into(),
        attempts,
        now: at(now),
        until: at(until),
    };
    alert(store, &account, claim(0, 10, 50)).await.unwrap();
    let twice = alert(store, &account, claim(0, 10, 50)).await;
    assert!(matches!(twice, Err(ScimError::Conflict(_))), "{twice:?}");
    assert!(
        store
            .alert_deliveries_due(at(20), 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed"
    );
    let failed = AlertChange::DeliveryFailed {
        id: "d1".into(),
        next_attempt: at(30),
        error: "the receiver answered 500".into(),
    };
    alert(store, &account, failed).await.unwrap();
    assert!(store
        .alert_deliveries_due(at(29), 10)
        .await
        .unwrap()
        .is_empty());
    let due = store.alert_deliveries_due(at(30), 10).await.unwrap();
    assert_eq!(due[0].attempts, 1);
    assert_eq!(
        due[0].last_error.as_deref(),
        Some("the receiver answered 500")
    );
    alert(store, &account, claim(1, 30, 80)).await.unwrap();
    alert(
        store,
        &account,
        AlertChange::Delivered {
            id: "d1".into(),
            at: at(35),
        },
    )
    .await
    .unwrap();
    assert!(store
        .alert_deliveries_due(at(1_000_000), 10)
        .await
        .unwrap()
        .is_empty());
    let rows = store.alert_deliveries(&account).await.unwrap();
    assert_eq!(rows[0].delivered, Some(at(35)));
    assert_eq!(rows[0].attempts, 2);
    assert!(rows[0].last_error.is_none());
    // A claim of a delivered row is refused: it is never sent again.
    let late = alert(store, &account, claim(2, 1_000_000, 1_000_100)).await;
    assert!(matches!(late, Err(ScimError::Conflict(_))), "{late:?}");
}
