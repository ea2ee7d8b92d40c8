//! Conformance cases of `scimitar sync` jobs' state: mappings, watermarks and runs are kept
//! per job, written whole with their run or not at all, and readable on a database with no
//! account at all (a sync job's state needs none).

use super::*;
use crate::{SyncLease, SyncMappingRow, SyncQuarantine, SyncRunRecord, SyncStateChange};

fn mapping(kind: &str, source: &str, target: &str) -> SyncMappingRow {
    SyncMappingRow {
        kind: kind.into(),
        source_id: source.into(),
        target_id: target.into(),
        ownership: "created".into(),
        deprovisioned_at: None,
        digest: Some(format!("d-{source}")),
    }
}

fn run_of(
    job: &str,
    upserts: Vec<SyncMappingRow>,
    removals: Vec<(String, String)>,
    watermark: Option<&str>,
) -> Change {
    Change::RecordSyncRun(Box::new(SyncStateChange {
        job: job.into(),
        upserts,
        removals,
        watermark: watermark.map(str::to_string),
        run: SyncRunRecord {
            seq: 0,
            started: Timestamp::from_micros(10),
            ended: Timestamp::from_micros(20),
            outcome: "applied".into(),
            report: "{\"creates\":1}".into(),
        },
        audit: None,
        account: None,
        quarantine: None,
    }))
}

/// A job's mappings are inserted, replaced and removed by its runs, its watermark is kept when
/// a run names none, each run is numbered after the job's last, and another job's state is its
/// own; none of it needs an account, and none of it writes an audit event.
pub async fn sync_jobs_keep_their_mappings_watermark_and_runs_apart(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let nobody = AccountId::new("no-account");
    assert_eq!(store.sync_state("hr").await.unwrap(), Default::default());
    store
        .apply(
            &nobody,
            run_of(
                "hr",
                vec![mapping("user", "s1", "t1"), mapping("group", "g1", "tg1")],
                vec![],
                Some("2026-01-01T00:00:00Z"),
            ),
        )
        .await
        .unwrap();
    let mut moved = mapping("user", "s1", "t9");
    moved.ownership = "adopted".into();
    moved.deprovisioned_at = Some(Timestamp::from_micros(7));
    store
        .apply(
            &nobody,
            run_of(
                "hr",
                vec![moved.clone()],
                vec![("group".into(), "g1".into())],
                None,
            ),
        )
        .await
        .unwrap();
    store
        .apply(
            &nobody,
            run_of("other", vec![mapping("user", "s1", "x")], vec![], None),
        )
        .await
        .unwrap();

    let state = store.sync_state("hr").await.unwrap();
    assert_eq!(state.mappings, vec![moved]);
    assert_eq!(state.watermark.as_deref(), Some("2026-01-01T00:00:00Z"));
    let runs = store.sync_runs("hr", 10).await.unwrap();
    assert_eq!(runs.iter().map(|run| run.seq).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(runs[0].report, "{\"creates\":1}");
    assert_eq!(store.sync_runs("hr", 1).await.unwrap().len(), 1);
    let other = store.sync_state("other").await.unwrap();
    assert_eq!(other.mappings[0].target_id, "x");
    assert_eq!(other.watermark, None);
    assert_eq!(store.audit_head(&nobody).await.unwrap().size, 0);
}

/// A run's audit events join the trail of the account its job is attributed to, in order, in
/// the run's transaction, under the service `sync`, with the job as the actor; the trail still
/// verifies, and the account the record is applied under gets none.
pub async fn a_sync_runs_events_join_its_accounts_trail_with_its_record(stores: &mut Stores) {
    use crate::audit::{AuditContext, AuditTarget, UserIdentity};
    use crate::{SyncAudit, SyncAuditEvent};
    let store = &*stores.fresh().await;
    let nobody = AccountId::new("-");
    let account = AccountId::new("acme");
    let event = |id: &str, action: &str, status_code: u16| SyncAuditEvent {
        context: AuditContext {
            event_id: id.into(),
            event_time: Some(Timestamp::from_micros(15)),
            user_identity: Some(UserIdentity {
                principal_id: "sync-job:hr".into(),
                credential_kind: "operator".into(),
                credential_id: None,
            }),
            ..AuditContext::default()
        },
        action_name: action.into(),
        request_params: serde_json::json!({"job": "hr", "target": "http://t/scim/v2"})
            .as_object()
            .cloned()
            .unwrap(),
        targets: vec![AuditTarget {
            kind: "User".into(),
            id: "t1".into(),
            display_name: Some("ada".into()),
            modified_properties: Vec::new(),
        }],
        status_code,
        error_message: (status_code != 200).then(|| "injected".to_string()),
    };
    let Change::RecordSyncRun(mut change) =
        run_of("hr", vec![mapping("user", "s1", "t1")], vec![], None)
    else {
        unreachable!()
    };
    change.audit = Some(SyncAudit {
        account: account.clone(),
        events: vec![
            event("e1", "syncCreateUser", 200),
            event("e2", "syncRunFailed", 500),
        ],
    });
    store
        .apply(&nobody, Change::RecordSyncRun(change))
        .await
        .unwrap();
    assert_eq!(store.sync_runs("hr", 10).await.unwrap().len(), 1);
    let events = store.audit_events(&account, 0, 10).await.unwrap();
    let events: Vec<serde_json::Value> = events
        .iter()
        .map(|event| serde_json::from_str(&event.text).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["service_name"], "sync");
    assert_eq!(events[0]["action_name"], "syncCreateUser");
    assert_eq!(events[0]["user_identity"]["principal_id"], "sync-job:hr");
    assert_eq!(events[0]["request_params"]["job"], "hr");
    assert_eq!(events[0]["targets"][0]["id"], "t1");
    assert_eq!(events[1]["action_name"], "syncRunFailed");
    assert_eq!(events[1]["response"]["status_code"], 500);
    assert_eq!(events[1]["seq"], 2);
    let verified = crate::audit::verify_trail(store, &account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
    assert_eq!(verified.events, 2);
    assert_eq!(store.audit_head(&nobody).await.unwrap().size, 0);
}

/// A job's lease is held by one owner at a time: another's take does not match until the
/// holder's time has passed or the holder gave it up; the holder renews it; taking it makes the
/// job's row without disturbing a later run's record, and none of it writes an audit event.
pub async fn a_sync_job_lease_is_held_by_one_owner_until_it_expires_or_is_released(
    stores: &mut Stores,
) {
    let store = &*stores.fresh().await;
    let nobody = AccountId::new("no-account");
    let take = |owner: &str, now: i64, until: i64| {
        Change::SyncLease(SyncLease::Take {
            job: "hr".into(),
            owner: owner.into(),
            now: Timestamp::from_micros(now),
            until: Timestamp::from_micros(until),
        })
    };
    // The lease as the job's state has it, which `sync_lease` (read without the mappings)
    // always agrees with.
    async fn holder(store: &dyn Store) -> (Option<String>, Option<i64>) {
        let state = store.sync_state("hr").await.unwrap();
        let held = (
            state.lease_owner,
            state.lease_until.map(Timestamp::as_micros),
        );
        let lease = store.sync_lease("hr").await.unwrap();
        assert_eq!(
            lease.map(|(owner, until)| (Some(owner), Some(until.as_micros()))),
            held.0.is_some().then(|| held.clone()),
        );
        held
    }
    assert_eq!(store.sync_lease("hr").await.unwrap(), None);
    store.apply(&nobody, take("a", 100, 200)).await.unwrap();
    assert_eq!(holder(store).await, (Some("a".into()), Some(200)));
    // Another owner's take before the lease has passed changes nothing.
    store.apply(&nobody, take("b", 150, 250)).await.unwrap();
    assert_eq!(holder(store).await, (Some("a".into()), Some(200)));
    // The holder renews it.
    store.apply(&nobody, take("a", 190, 300)).await.unwrap();
    assert_eq!(holder(store).await, (Some("a".into()), Some(300)));
    // A run's record keeps the lease, and the lease keeps the run's watermark.
    store
        .apply(
            &nobody,
            run_of("hr", vec![mapping("user", "s1", "t1")], vec![], Some("w1")),
        )
        .await
        .unwrap();
    assert_eq!(holder(store).await, (Some("a".into()), Some(300)));
    // Once it has passed, another owner takes it.
    store.apply(&nobody, take("b", 300, 400)).await.unwrap();
    assert_eq!(holder(store).await, (Some("b".into()), Some(400)));
    // Only the holder gives it up; then anyone takes it at once.
    store
        .apply(
            &nobody,
            Change::SyncLease(SyncLease::Release {
                job: "hr".into(),
                owner: "a".into(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(holder(store).await, (Some("b".into()), Some(400)));
    store
        .apply(
            &nobody,
            Change::SyncLease(SyncLease::Release {
                job: "hr".into(),
                owner: "b".into(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(holder(store).await, (None, None));
    store.apply(&nobody, take("a", 310, 410)).await.unwrap();
    assert_eq!(holder(store).await, (Some("a".into()), Some(410)));
    let state = store.sync_state("hr").await.unwrap();
    assert_eq!(state.watermark.as_deref(), Some("w1"));
    assert_eq!(state.mappings.len(), 1);
    assert_eq!(store.audit_head(&nobody).await.unwrap().size, 0);
}

/// Each state key names the account its job answers to, set by a run that names one and kept
/// by a run that names none; an account's listing holds its own keys only (a key of another
/// account, or of none, never), by key, each with its latest run, lease and quarantine, which
/// a later run replaces (a run that leaves it unquarantined clears it).
pub async fn a_sync_jobs_status_is_listed_to_its_own_account_only(stores: &mut Stores) {
    let store = &*stores.fresh().await;
    let nobody = AccountId::new("-");
    let acme = AccountId::new("acme");
    let other = AccountId::new("other");
    let run = |job: &str, account: Option<&AccountId>, quarantine, outcome: &str, ended: i64| {
        let Change::RecordSyncRun(mut change) = run_of(job, vec![], vec![], Some("w")) else {
            unreachable!()
        };
        change.account = account.cloned();
        change.quarantine = quarantine;
        change.run.outcome = outcome.into();
        change.run.ended = Timestamp::from_micros(ended);
        Change::RecordSyncRun(change)
    };
    let quarantined = SyncQuarantine {
        failures: 5,
        next_run: Timestamp::from_micros(3_600_000_000),
    };
    assert!(store.sync_jobs(&acme).await.unwrap().is_empty());
    for change in [
        run("hr/prod", Some(&acme), None, "applied", 30),
        run("hr/prod", None, Some(quarantined), "error", 40),
        run("hr/sandbox", Some(&acme), None, "applied", 50),
        run("payroll", Some(&other), None, "applied", 60),
        run("orphan", None, None, "applied", 70),
    ] {
        store.apply(&nobody, change).await.unwrap();
    }
    store
        .apply(
            &nobody,
            Change::SyncLease(SyncLease::Take {
                job: "hr".into(),
                owner: "node-1".into(),
                now: Timestamp::from_micros(1),
                until: Timestamp::from_micros(99),
            }),
        )
        .await
        .unwrap();

    let listed = store.sync_jobs(&acme).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|job| job.key.as_str()).collect();
    // `hr` (the lease's row) names no account until one of its runs does.
    assert_eq!(keys, ["hr/prod", "hr/sandbox"]);
    let prod = &listed[0];
    let last = prod.last_run.as_ref().expect("a run");
    assert_eq!((last.seq, last.outcome.as_str()), (2, "error"));
    assert_eq!(last.ended, Timestamp::from_micros(40));
    assert_eq!(prod.quarantine, Some(quarantined));
    assert_eq!(prod.watermark.as_deref(), Some("w"));
    assert_eq!(listed[1].quarantine, None);
    let others = store.sync_jobs(&other).await.unwrap();
    assert_eq!(
        others
            .iter()
            .map(|job| job.key.as_str())
            .collect::<Vec<_>>(),
        ["payroll"]
    );
    let state = store.sync_state("hr/prod").await.unwrap();
    assert_eq!(state.account, Some(acme.clone()));
    assert_eq!(state.quarantine, Some(quarantined));
    let lease = store.sync_state("hr").await.unwrap();
    assert_eq!(lease.lease_owner.as_deref(), Some("node-1"));
    assert_eq!(lease.account, None);
    assert_eq!(store.sync_state("orphan").await.unwrap().account, None);

    // A run that succeeds lifts the quarantine.
    store
        .apply(&nobody, run("hr/prod", Some(&acme), None, "applied", 80))
        .await
        .unwrap();
    let listed = store.sync_jobs(&acme).await.unwrap();
    assert_eq!(listed[0].quarantine, None);
    assert_eq!(listed[0].last_run.as_ref().map(|run| run.seq), Some(3));
}
