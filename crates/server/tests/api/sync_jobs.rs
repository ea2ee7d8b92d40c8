//! The status of sync jobs, `GET /api/2.0/sync/jobs` and `GET /api/2.0/sync/jobs/{name}`:
//! who may read it (account admins; not a missing, malformed, expired, revoked, unprivileged
//! (a plain user, a workspace's admin) or foreign credential), and that a job is served to its own account only, with each
//! target's last run, watermark and quarantine and the job's lease. The jobs' state is written
//! through the store as `scimitar sync` writes it (`Change::RecordSyncRun`), into the database
//! the server runs on.

use crate::support::*;
use reqwest::Method;
use scimitar_domain::clock::ManualClock;
use scimitar_domain::{AccountId, Clock, SystemClock, Timestamp};
use scimitar_store::{Change, SyncLease, SyncQuarantine, SyncRunRecord, SyncStateChange};
use serde_json::json;
use std::sync::Arc;

const JOBS: &str = "/api/2.0/sync/jobs";

/// The path of the jobs at the app's own account's workspace: the deployment has two
/// accounts' workspaces, so a path names the one it addresses.
async fn jobs_at_ours(app: &TestApp) -> String {
    let workspace = app.services.workspaces(&app.account).await.unwrap()[0]
        .id
        .as_str()
        .to_string();
    format!("/w/{workspace}{JOBS}")
}

/// The bootstrap admin's GET of `path` from the server's root.
async fn admin_get(app: &TestApp, path: &str) -> Reply {
    call(app, Method::GET, path, Some(&app.token), None).await
}

fn databricks_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error_code"], code, "{}", reply.body);
}

/// A run of the state key `key` as the engine records it, attributed to `account`.
fn run(
    key: &str,
    account: &AccountId,
    seq_end: i64,
    outcome: &str,
    report: serde_json::Value,
    quarantine: Option<SyncQuarantine>,
) -> Change {
    Change::RecordSyncRun(Box::new(SyncStateChange {
        job: key.into(),
        upserts: vec![],
        removals: vec![],
        watermark: Some(format!("w{seq_end}")),
        run: SyncRunRecord {
            seq: 0,
            started: Timestamp::from_micros(seq_end * 1_000_000 - 500_000),
            ended: Timestamp::from_micros(seq_end * 1_000_000),
            outcome: outcome.into(),
            report: report.to_string(),
        },
        audit: None,
        account: Some(account.clone()),
        quarantine,
    }))
}

/// An app whose database holds, for its account, a job `hr` of two targets (`prod`
/// quarantined after two failed runs, `sandbox` applied) leased by `node-1`. Returns the app,
/// its database's URL and the clock.
async fn app_with_jobs() -> (TestApp, String, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on_with_clock(database, &url, clock.clone()).await;
    let store = scimitar_store::open(&url).await.unwrap();
    let nobody = AccountId::new("-");
    let failed = json!({"error": "target down"});
    let quarantine = SyncQuarantine {
        failures: 2,
        next_run: Timestamp::from_micros(9_000_000),
    };
    for change in [
        run("hr/prod", &app.account, 1, "applied", applied(), None),
        run("hr/prod", &app.account, 2, "error", failed.clone(), None),
        run(
            "hr/prod",
            &app.account,
            3,
            "error",
            failed,
            Some(quarantine),
        ),
        run("hr/sandbox", &app.account, 4, "applied", bounded(), None),
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
                until: Timestamp::from_micros(60_000_000),
            }),
        )
        .await
        .unwrap();
    (app, url, clock)
}

/// A run's report that created two objects and updated one, as earlier builds stored it:
/// each list whole.
fn applied() -> serde_json::Value {
    json!({"plan": {"creates": [{}, {}], "updates": [{}], "drift": []},
           "writes": 3, "failures": []})
}

/// A run's report as it is stored now (`scimitar_sync::stored`): each list its exact count and
/// a sample of its first items, here of 100,005 creates.
fn bounded() -> serde_json::Value {
    let list = |count: u64, sample: serde_json::Value| {
        json!({"count": count, "truncated": sample.as_array().unwrap().len() as u64 != count,
               "sample": sample})
    };
    json!({"plan": {"creates": list(100_005, json!([{}, {}])), "updates": list(1, json!([{}])),
                    "drift": list(0, json!([])), "guard": null},
           "writes": 100_006, "failures": list(0, json!([]))})
}

/// Another account, with a job `payroll` of a lone target. Returns its admin token and the
/// path prefix of its workspace (`/w/{id}`, where it addresses its own account). From then on
/// the deployment has two accounts' workspaces, and a path must name the one it addresses.
async fn another_account_with_a_job(app: &TestApp, url: &str) -> (String, String) {
    let other = app.services.create_account("other", "other").await.unwrap();
    let store = scimitar_store::open(url).await.unwrap();
    let change = run("payroll", &other.account.id, 5, "applied", applied(), None);
    store.apply(&AccountId::new("-"), change).await.unwrap();
    let workspace = store.workspaces(&other.account.id).await.unwrap()[0]
        .id
        .as_str()
        .to_string();
    (
        other.admin_token.expose().to_string(),
        format!("/w/{workspace}"),
    )
}

#[tokio::test]
async fn an_account_admin_sees_its_jobs_targets_runs_quarantine_and_lease() {
    let (app, url, _) = app_with_jobs().await;
    another_account_with_a_job(&app, &url).await;
    let jobs = jobs_at_ours(&app).await;
    let listed = admin_get(&app, &jobs).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed_jobs = listed.body["jobs"].as_array().unwrap();
    assert_eq!(
        listed_jobs.len(),
        1,
        "another account's job is never listed: {}",
        listed.body
    );
    let hr = &listed_jobs[0];
    assert_eq!(hr["name"], "hr");
    assert_eq!(
        hr["lease"],
        json!({"holder": "node-1", "expiry_time": 60_000})
    );
    let targets = hr["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{hr}");
    assert_eq!(targets[0]["name"], "prod");
    assert_eq!(
        targets[0]["last_run"],
        json!({"run": 3, "start_time": 2_500, "end_time": 3_000, "result": "error",
               "counts": {}, "error": "target down"})
    );
    assert_eq!(targets[0]["watermark"], "w3");
    assert_eq!(
        targets[0]["quarantine"],
        json!({"failures": 2, "next_run_time": 9_000})
    );
    assert!(targets[0].get("recent_runs").is_none());
    assert_eq!(targets[1]["name"], "sandbox");
    assert_eq!(targets[1]["last_run"]["result"], "applied");
    // Counted from the lists' counts, not their samples.
    assert_eq!(
        targets[1]["last_run"]["counts"],
        json!({"creates": 100_005, "updates": 1, "drift": 0, "writes": 100_006, "failures": 0})
    );
    assert!(targets[1].get("quarantine").is_none());

    let one = admin_get(&app, &format!("{jobs}/hr")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    let recent: Vec<i64> = one.body["targets"][0]["recent_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["run"].as_i64().unwrap())
        .collect();
    assert_eq!(recent, [3, 2, 1], "newest first: {}", one.body);
    // A run stored whole by an earlier build is counted by its lists' lengths.
    assert_eq!(
        one.body["targets"][0]["recent_runs"][2]["counts"],
        json!({"creates": 2, "updates": 1, "drift": 0, "writes": 3, "failures": 0})
    );
    assert_eq!(one.body["targets"][1]["recent_runs"][0]["run"], 1);
}

#[tokio::test]
async fn a_job_of_another_account_is_never_visible() {
    let (app, url, _) = app_with_jobs().await;
    let (other_token, theirs_at) = another_account_with_a_job(&app, &url).await;
    let jobs = jobs_at_ours(&app).await;
    // Our admin asking for their job: as if it did not exist.
    let theirs = admin_get(&app, &format!("{jobs}/payroll")).await;
    databricks_error(&theirs, 404, "RESOURCE_DOES_NOT_EXIST");
    let missing = admin_get(&app, &format!("{jobs}/nothing")).await;
    databricks_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST");
    // Their admin, at our workspace, is not answered at all.
    for path in [jobs.clone(), format!("{jobs}/hr")] {
        let refused = call(&app, Method::GET, &path, Some(&other_token), None).await;
        assert!(
            [401, 403, 404].contains(&refused.status),
            "{} {}",
            refused.status,
            refused.body
        );
        assert!(
            !refused.body.to_string().contains("node-1"),
            "{}",
            refused.body
        );
    }
    // At its own workspace, it sees its job, and nothing of ours, by list or by name.
    let listed = call(
        &app,
        Method::GET,
        &format!("{theirs_at}{JOBS}"),
        Some(&other_token),
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let names: Vec<&str> = listed.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["payroll"]);
    assert_eq!(listed.body["jobs"][0]["targets"][0].get("name"), None);
    for path in [
        format!("{theirs_at}{JOBS}/hr"),
        format!("{theirs_at}{JOBS}/hr%2Fprod"),
    ] {
        let ours = call(&app, Method::GET, &path, Some(&other_token), None).await;
        databricks_error(&ours, 404, "RESOURCE_DOES_NOT_EXIST");
        assert!(!ours.body.to_string().contains("node-1"), "{}", ours.body);
    }
}

#[tokio::test]
async fn missing_malformed_expired_revoked_and_unprivileged_credentials_are_refused() {
    // One account only: the credentials are made through the unprefixed APIs.
    let (app, _, clock) = app_with_jobs().await;
    let jobs = jobs_at_ours(&app).await;
    let created = |lifetime: Option<i64>| {
        let body = match lifetime {
            Some(seconds) => json!({"lifetime_seconds": seconds}),
            None => json!({}),
        };
        call(
            &app,
            Method::POST,
            "/api/2.0/token/create",
            Some(&app.token),
            Some(body),
        )
    };
    let expiring = created(Some(60)).await;
    let expiring = str_of(&expiring.body, "token_value").to_string();
    let revoked = created(None).await;
    let revoked_id = str_of(&revoked.body["token_info"], "token_id").to_string();
    let revoked = str_of(&revoked.body, "token_value").to_string();
    let deleted = call(
        &app,
        Method::POST,
        "/api/2.0/token/delete",
        Some(&app.token),
        Some(json!({"token_id": revoked_id})),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    clock.advance_micros(61 * 1_000_000);
    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;

    for path in [jobs.clone(), format!("{jobs}/hr")] {
        let without = call(&app, Method::GET, &path, None, None).await;
        databricks_error(&without, 401, "UNAUTHENTICATED");
        let malformed = read(
            app.client
                .get(format!("{}{path}", app.address))
                .header("authorization", "Bearer")
                .send()
                .await
                .unwrap(),
        )
        .await;
        databricks_error(&malformed, 401, "UNAUTHENTICATED");
        let garbage = call(&app, Method::GET, &path, Some("dapi-not-a-token"), None).await;
        databricks_error(&garbage, 401, "UNAUTHENTICATED");
        for (what, token) in [("expired", &expiring), ("revoked", &revoked)] {
            let refused = call(&app, Method::GET, &path, Some(token), None).await;
            assert_eq!(refused.status, 401, "{what}: {}", refused.body);
            assert!(!refused.body.to_string().contains("node-1"), "{what}");
        }
        let unprivileged = call(&app, Method::GET, &path, Some(&plain_token), None).await;
        databricks_error(&unprivileged, 403, "PERMISSION_DENIED");
        let text = unprivileged.body.to_string();
        assert!(!text.contains("node-1") && !text.contains("prod"), "{text}");
    }
    // A workspace's admin is no account admin: sync jobs move the whole directory.
    let keeper_token = workspace_admin_token(&app).await;
    for path in [jobs.clone(), format!("{jobs}/hr")] {
        let refused = call(&app, Method::GET, &path, Some(&keeper_token), None).await;
        databricks_error(&refused, 403, "PERMISSION_DENIED");
    }

    // The admin still reads it, and nothing but GET is answered.
    assert_eq!(admin_get(&app, &jobs).await.status, 200);
    let posted = call(&app, Method::POST, &jobs, Some(&app.token), None).await;
    assert_eq!(posted.status, 405, "{}", posted.body);
}

/// The token of a new user made admin of the app's account's workspace (not of the account).
async fn workspace_admin_token(app: &TestApp) -> String {
    let workspace = app.services.workspaces(&app.account).await.unwrap()[0]
        .id
        .as_str()
        .to_string();
    let keeper = app.create_user("keeper@example.com").await;
    let assigned = call(
        app,
        Method::PUT,
        &format!(
            "/api/2.0/accounts/{}/workspaces/{workspace}/permissionassignments/principals/{}",
            app.account,
            str_of(&keeper, "id")
        ),
        Some(&app.token),
        Some(json!({"permissions": ["ADMIN"]})),
    )
    .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    app.token_for(str_of(&keeper, "id")).await
}

/// An account admin lifts a quarantined target through the API as `scimitar sync resume`
/// does: the target's latest run is `resumed`, its quarantine is gone, and the trail names the
/// admin. No credential, a plain user's, a workspace admin's or another account's admin's is
/// refused and changes nothing; a target not quarantined is 409, and a job or target that is
/// not the account's 404.
#[tokio::test]
async fn an_account_admin_lifts_a_quarantine_and_nobody_else_can() {
    let (app, url, clock) = app_with_jobs().await;
    let jobs = jobs_at_ours(&app).await;
    let prod = format!("{jobs}/hr/targets/prod/resume");
    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;
    let keeper_token = workspace_admin_token(&app).await;
    let created = call(
        &app,
        Method::POST,
        "/api/2.0/token/create",
        Some(&app.token),
        Some(json!({"lifetime_seconds": 60})),
    )
    .await;
    let expiring = str_of(&created.body, "token_value").to_string();
    clock.advance_micros(61 * 1_000_000);
    let without = call(&app, Method::POST, &prod, None, None).await;
    databricks_error(&without, 401, "UNAUTHENTICATED");
    let expired = call(&app, Method::POST, &prod, Some(&expiring), None).await;
    databricks_error(&expired, 401, "UNAUTHENTICATED");
    for token in [&plain_token, &keeper_token] {
        let refused = call(&app, Method::POST, &prod, Some(token), None).await;
        databricks_error(&refused, 403, "PERMISSION_DENIED");
    }
    let still = admin_get(&app, &format!("{jobs}/hr")).await;
    assert!(
        still.body["targets"][0].get("quarantine").is_some(),
        "{}",
        still.body
    );

    // Not quarantined, no such target, a job of targets named without one.
    let sandbox = call(
        &app,
        Method::POST,
        &format!("{jobs}/hr/targets/sandbox/resume"),
        Some(&app.token),
        None,
    )
    .await;
    databricks_error(&sandbox, 409, "RESOURCE_CONFLICT");
    for path in [
        format!("{jobs}/hr/targets/nothing/resume"),
        format!("{jobs}/hr/resume"),
        format!("{jobs}/nothing/resume"),
        // A state key smuggled through the job's name is no job's name.
        format!("{jobs}/hr%2Fprod/resume"),
        format!("{jobs}/hr%2Fprod/targets/prod/resume"),
        format!("{jobs}/{}/resume", "x".repeat(4096)),
    ] {
        let missing = call(&app, Method::POST, &path, Some(&app.token), None).await;
        databricks_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST");
    }

    let lifted = call(&app, Method::POST, &prod, Some(&app.token), None).await;
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    let target = &lifted.body["targets"][0];
    assert_eq!(target["name"], "prod");
    assert!(target.get("quarantine").is_none(), "{}", lifted.body);
    assert_eq!(target["last_run"]["result"], "resumed", "{}", lifted.body);
    assert_eq!(target["recent_runs"][0]["result"], "resumed");
    // The watermark a run left is kept.
    assert_eq!(target["watermark"], "w3");
    let events = call(
        &app,
        Method::GET,
        "/api/2.0/audit/events?action=syncResumed",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(events.status, 200, "{}", events.body);
    let events = events.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["request_params"]["job"], "hr");
    assert_eq!(events[0]["request_params"]["targetName"], "prod");
    assert_eq!(events[0]["service_name"], "sync");
    let me = call(
        &app,
        Method::GET,
        "/api/2.0/preview/scim/v2/Me",
        Some(&app.token),
        None,
    )
    .await;
    let admin_id = str_of(&me.body, "id");
    assert!(
        events[0]["user_identity"].to_string().contains(admin_id),
        "the admin who lifted it: {}",
        events[0]
    );
    let again = call(&app, Method::POST, &prod, Some(&app.token), None).await;
    databricks_error(&again, 409, "RESOURCE_CONFLICT");

    // Another account's admin is not answered at our workspace; ours does not reach theirs.
    let (other_token, _) = another_account_with_a_job(&app, &url).await;
    let foreign = call(&app, Method::POST, &prod, Some(&other_token), None).await;
    assert!(
        [401, 403, 404].contains(&foreign.status),
        "{} {}",
        foreign.status,
        foreign.body
    );
    let theirs = call(
        &app,
        Method::POST,
        &format!("{jobs}/payroll/resume"),
        Some(&app.token),
        None,
    )
    .await;
    databricks_error(&theirs, 404, "RESOURCE_DOES_NOT_EXIST");
}
