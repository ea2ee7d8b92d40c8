//! Reading the audit trail, and what it records beyond changes: refused requests (401, 403 and
//! client mistakes) are events of the addressed account's trail, without any token, and the
//! trail still verifies with them on two nodes; a flood of refusals is held to the account's
//! budget; the events API filters by service, status and action and pages stably while events
//! are appended; `SELECT ... FROM system.access.audit` answers admins only and refuses SQL it
//! does not understand; retention prunes old events and the rest still verifies and proves.

use crate::multi_node::node_on;
use crate::support::*;
use reqwest::Method;
use scimitar_app::audit_refusals::RefusalSettings;
use scimitar_audit::{merkle, Hash, NoteVerifier};
use scimitar_domain::clock::ManualClock;
use scimitar_domain::credentials::token_digest;
use scimitar_domain::{Clock, SystemClock, Timestamp};
use scimitar_server::Application;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

/// The refusals in the trail, once at least `at_least` were written: the writer works behind
/// the answers, so the test looks again (a bounded number of times) until they are there.
async fn refusals(app: &TestApp, address: &str, at_least: usize) -> Vec<Value> {
    for _ in 0..400 {
        let reply = read(
            app.client
                .get(format!("{address}/api/2.0/audit/events"))
                .query(&[("result", "failure"), ("limit", "1000")])
                .bearer_auth(&app.token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let events = reply.body["events"].as_array().unwrap().clone();
        if events.len() >= at_least {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("fewer than {at_least} refusals were recorded");
}

async fn get(app: &TestApp, address: &str, path: &str, token: Option<&str>) -> Reply {
    let mut request = app.client.get(format!("{address}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().await.unwrap()).await
}

fn hex_hash(value: &Value) -> Hash {
    let text = value.as_str().expect("a hex hash");
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).expect("hex");
    }
    hash
}

fn hex_hashes(value: &Value) -> Vec<Hash> {
    value.as_array().unwrap().iter().map(hex_hash).collect()
}

#[tokio::test]
async fn refused_requests_are_in_the_trail_without_their_token_and_the_trail_verifies_on_two_nodes()
{
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on(database, &url).await;
    let second = node_on(&url).await;
    let plain = app.create_user("plain@example.com").await;
    let plain_id = str_of(&plain, "id").to_string();
    let plain_token = app.token_for(&plain_id).await;
    let forged = "dapi0123456789abcdef-not-a-token";

    let unauthenticated = get(&app, &app.address, "/scim/v2/Users", Some(forged)).await;
    assert_eq!(unauthenticated.status, 401);
    let forbidden = get(
        &app,
        &second.address,
        "/api/2.0/audit/events",
        Some(&plain_token),
    )
    .await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    let missing = get(
        &app,
        &app.address,
        "/scim/v2/Users/no-such-user",
        Some(&app.token),
    )
    .await;
    assert_eq!(missing.status, 404);
    let bad = get(
        &app,
        &second.address,
        "/api/2.0/audit/events?result=maybe",
        Some(&app.token),
    )
    .await;
    assert_eq!(bad.status, 400);

    // Another account's admin probing this account: recorded in this account's trail.
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let foreign_token = foreign.admin_token.expose().to_string();
    let probe = get(
        &app,
        &app.address,
        &format!("/api/2.0/accounts/{}/scim/v2/Users", app.account),
        Some(&foreign_token),
    )
    .await;
    assert!([401, 403].contains(&probe.status), "{}", probe.body);

    let events = refusals(&app, &app.address, 5).await;
    assert!(
        events.iter().any(|event| event["action_name"]
            .as_str()
            .is_some_and(|action| action.contains("/api/2.0/accounts/{account_id}/scim/v2"))
            || (event["action_name"] == "tokenLogin"
                && event["request_params"]["path"]
                    .as_str()
                    .is_some_and(|path| path.contains("accounts/{account_id}")))),
        "the probe is in the addressed account's trail"
    );
    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        forged,
        plain_token.as_str(),
        app.token.as_str(),
        foreign_token.as_str(),
    ] {
        assert!(!text.contains(secret), "a token is in the trail: {text}");
    }
    let by_status = |status: u64| {
        events
            .iter()
            .find(|event| event["response"]["status_code"] == status)
            .unwrap_or_else(|| panic!("no {status} in {text}"))
    };
    let login = by_status(401);
    assert_eq!(login["action_name"], "tokenLogin");
    assert_eq!(login["service_name"], "accounts");
    assert_eq!(login["user_identity"], Value::Null);
    assert_eq!(
        login["request_params"]["credential_kind"],
        "personal_access_token"
    );
    assert_eq!(login["source_ip_address"], "127.0.0.1");
    assert!(login["request_id"].is_string());
    assert!(login["response"]["error_message"].is_string());
    // Two 403s may be there (the foreign probe's too), in the order the two nodes' refusal
    // queues happened to flush them: pick the plain user's by what it asked for.
    let denied = events
        .iter()
        .find(|event| {
            event["response"]["status_code"] == 403
                && event["action_name"] == "GET /api/2.0/audit/events"
        })
        .unwrap_or_else(|| panic!("no 403 for the audit events in {text}"));
    assert_eq!(denied["user_identity"]["subject_name"], plain_id.as_str());
    assert_eq!(denied["service_name"], "audit");
    assert_eq!(denied["action_name"], "GET /api/2.0/audit/events");
    assert!(by_status(404)["action_name"]
        .as_str()
        .unwrap()
        .starts_with("GET "));
    assert_eq!(by_status(400)["user_identity"]["credential_kind"], "token");

    // The trail, refusals from both nodes included, verifies as stored.
    let store = scimitar_store::open(&url).await.unwrap();
    let verified = scimitar_store::audit::verify_trail(store.as_ref(), &app.account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
    let head = store.audit_head(&app.account).await.unwrap();
    assert_eq!(verified.events, head.size);
}

#[tokio::test]
async fn a_flood_of_refusals_is_held_to_the_accounts_budget_and_the_server_keeps_answering() {
    const BUDGET: u32 = 20;
    const FLOOD: u64 = 300;
    const SCRAPE_TOKEN: &str = "scrape-token-for-the-refusal-flood";
    // A clock that stands still: the flood stays in one budget minute.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let (database, url) = TestDatabase::fresh().await;
    let (services, token, _account) = bootstrapped_with_clock(&url, clock).await;
    let application = Application::bind("127.0.0.1:0", services)
        .await
        .unwrap()
        .with_refusal_settings(RefusalSettings {
            queue_capacity: 16,
            per_account_per_minute: BUDGET,
        })
        .offer_metrics_to(token_digest(SCRAPE_TOKEN));
    let address = format!("http://{}", application.local_addr().unwrap());
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    for attempt in 0..FLOOD {
        let status = client
            .get(format!("{address}/scim/v2/Users"))
            .bearer_auth(format!("not-a-token-{attempt}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 401);
    }
    let ok = client
        .get(format!("{address}/scim/v2/Users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200, "the server still answers");

    // Every refusal is accounted for: recorded, or dropped and counted.
    let count = |metrics: &str, outcome: &str| -> u64 {
        let line = format!("scimitar_audit_refusals{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|found| found.strip_prefix(&line))
            .map_or(0, |value| value.trim().parse().unwrap())
    };
    let mut settled = None;
    for _ in 0..400 {
        let metrics = client
            .get(format!("{address}/metrics"))
            .bearer_auth(SCRAPE_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let recorded = count(&metrics, "recorded");
        let dropped = count(&metrics, "over_budget") + count(&metrics, "queue_full");
        if recorded + dropped >= FLOOD {
            settled = Some((recorded, dropped));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (recorded, dropped) = settled.expect("every refusal was recorded or dropped");
    assert!(recorded <= u64::from(BUDGET), "{recorded} recorded");
    assert!(recorded >= 1);
    assert_eq!(recorded + dropped, FLOOD);

    let store = scimitar_store::open(&url).await.unwrap();
    let account = store.accounts().await.unwrap().remove(0).id;
    let stored = store.audit_events(&account, 0, 10_000).await.unwrap();
    let refused = stored
        .iter()
        .filter(|event| event.text.contains("\"tokenLogin\""))
        .count() as u64;
    assert_eq!(
        refused, recorded,
        "the table holds exactly what was recorded"
    );
    drop(shutdown);
    drop(database);
}

#[tokio::test]
async fn events_are_filtered_by_service_status_and_action_name_and_paged_stably_under_appends() {
    let app = spawn_app().await;
    for name in ["a@example.com", "b@example.com"] {
        app.create_user(name).await;
    }
    for missing in ["x", "y"] {
        let reply = app.get(&format!("/Users/{missing}")).await;
        assert_eq!(reply.status, 404);
    }
    refusals(&app, &app.address, 2).await;
    let query = |pairs: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let reply = read(
                app.request(Method::GET, "/api/2.0/audit/events")
                    .query(&pairs)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.body
        }
    };
    let not_found = query(vec![("status_code", "404".into())]).await;
    assert_eq!(not_found["events"].as_array().unwrap().len(), 2);
    let added = query(vec![
        ("action_name", "add".into()),
        ("service_name", "accounts".into()),
        ("result", "success".into()),
    ])
    .await;
    assert_eq!(added["events"].as_array().unwrap().len(), 2);
    let none = query(vec![("service_name", "unityCatalog".into())]).await;
    assert_eq!(none["events"], json!([]));
    let conflicting = read(
        app.request(Method::GET, "/api/2.0/audit/events")
            .query(&[("action", "add"), ("action_name", "delete")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(conflicting.status, 400);

    // Paged one at a time while users are created between pages: every event once, in order.
    let mut seen: Vec<u64> = Vec::new();
    let mut token: Option<String> = None;
    let mut appended = 0;
    loop {
        let mut pairs = vec![("limit", "1".to_string()), ("result", "success".into())];
        if let Some(token) = &token {
            pairs.push(("page_token", token.clone()));
        }
        let page = query(pairs).await;
        for row in page["events"].as_array().unwrap() {
            seen.push(row["audit_seq"].as_u64().unwrap());
        }
        match page["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
        // Appended while the pages are read: each is paged once, after what was read.
        if appended < 3 {
            app.create_user(&format!("late{appended}@example.com"))
                .await;
            appended += 1;
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, seen, "in order, each once");
    let everything = query(vec![("result", "success".into()), ("limit", "1000".into())]).await;
    let all: Vec<u64> = everything["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["audit_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, all, "the late events were paged too");
    assert_eq!(appended, 3);
}

/// Runs a statement through the Statement Execution API.
async fn sql(app: &TestApp, token: &str, statement: &str) -> Reply {
    read(
        app.client
            .post(format!("{}/api/2.0/sql/statements", app.address))
            .bearer_auth(token)
            .json(&json!({"statement": statement, "warehouse_id": "any"}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn sql_over_system_access_audit_answers_admins_and_refuses_others_and_unknown_sql() {
    let app = spawn_app().await;
    for name in ["a@example.com", "b@example.com", "c@example.com"] {
        app.create_user(name).await;
    }
    assert_eq!(app.get("/Users/nope").await.status, 404);
    refusals(&app, &app.address, 1).await;

    let newest_adds = sql(
        &app,
        &app.token,
        "SELECT event_time, action_name, user_identity.email, response.status_code, \
         request_params FROM system.access.audit WHERE action_name = 'add' \
         AND event_time > TIMESTAMP '2020-01-01' ORDER BY event_time DESC LIMIT 2",
    )
    .await;
    assert_eq!(newest_adds.status, 200, "{}", newest_adds.body);
    assert_eq!(
        newest_adds.body["status"]["state"], "SUCCEEDED",
        "{}",
        newest_adds.body
    );
    let columns: Vec<&str> = newest_adds.body["manifest"]["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|column| column["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "event_time",
            "action_name",
            "user_identity.email",
            "response.status_code",
            "request_params"
        ]
    );
    let rows = newest_adds.body["result"]["data_array"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][1], "add");
    assert_eq!(rows[0][3], "200");
    assert_eq!(
        rows[0][2],
        scimitar_app::service::BOOTSTRAP_ADMIN_USER_NAME,
        "the actor's userName"
    );
    let params: Value = serde_json::from_str(rows[0][4].as_str().unwrap()).unwrap();
    assert_eq!(params["targetUserName"], "c@example.com", "newest first");

    let refused = sql(
        &app,
        &app.token,
        "SELECT action_name, response.status_code FROM system.access.audit \
         WHERE response.status_code IN (401, 403, 404) AND response.error_message IS NOT NULL",
    )
    .await;
    let rows = refused.body["result"]["data_array"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", refused.body);
    assert_eq!(rows[0][1], "404");

    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;
    let denied = sql(&app, &plain_token, "SELECT * FROM system.access.audit").await;
    assert_eq!(denied.body["status"]["state"], "FAILED", "{}", denied.body);
    let message = denied.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("only admins"), "{message}");

    for (statement, expected) in [
        (
            "SELECT * FROM system.access.audit WHERE action_name = 'add' OR action_name = 'delete'",
            "found 'OR'",
        ),
        (
            "SELECT * FROM main.sales.orders",
            "only system.access.audit",
        ),
        (
            "SELECT secret FROM system.access.audit",
            "no column 'secret'",
        ),
        (
            "SELECT * FROM system.access.audit WHERE event_time > 'yesterday'",
            "not a time",
        ),
    ] {
        let reply = sql(&app, &app.token, statement).await;
        assert_eq!(reply.body["status"]["state"], "FAILED", "{}", reply.body);
        let message = reply.body["status"]["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{statement}: {message}");
    }
}

#[tokio::test]
async fn retention_prunes_old_events_and_the_rest_still_verifies_and_proves() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on_with_clock(database, &url, clock.clone()).await;
    for name in ["old1@example.com", "old2@example.com"] {
        app.create_user(name).await;
    }
    let horizon = Timestamp::from_micros(clock.now().as_micros() + 1_000_000);
    clock.advance_micros(2 * 86_400_000_000);
    for name in ["new1@example.com", "new2@example.com"] {
        app.create_user(name).await;
    }
    let store = scimitar_store::open(&url).await.unwrap();
    let before = store.audit_head(&app.account).await.unwrap();

    let pruned = app.services.prune_audit_trails(horizon).await.unwrap();
    assert_eq!(pruned.len(), 1);
    let pruned_through = pruned[0].pruned_through;
    assert_eq!(
        pruned_through,
        before.size - 2,
        "all but the two new events"
    );
    // Nothing more is that old: a second prune writes nothing.
    assert!(app
        .services
        .prune_audit_trails(horizon)
        .await
        .unwrap()
        .is_empty());

    let verified = scimitar_store::audit::verify_trail(store.as_ref(), &app.account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
    assert_eq!(verified.pruned, pruned_through);

    // The checkpoint now, and proofs of kept events against it, checked offline.
    let (_, key) = text_of(&app, "/api/2.0/audit/verifier-key").await;
    let verifier = NoteVerifier::from_verifier_key(key.trim()).unwrap();
    let (_, note) = text_of(&app, "/api/2.0/audit/checkpoint").await;
    let checkpoint = verifier.verify_checkpoint(&note).unwrap();
    assert_eq!(
        checkpoint.size,
        before.size + 1,
        "the prune is an event too"
    );
    let seq = pruned_through + 1;
    let proof = app
        .get_from_root(
            "/api/2.0/audit/proof/inclusion",
            &[
                ("seq", &seq.to_string()),
                ("size", &checkpoint.size.to_string()),
            ],
        )
        .await;
    assert_eq!(proof.status, 200, "{}", proof.body);
    let leaf = merkle::leaf_hash(proof.body["event"].as_str().unwrap().as_bytes());
    assert!(merkle::verify_inclusion(
        &leaf,
        seq - 1,
        checkpoint.size,
        &hex_hashes(&proof.body["hashes"]),
        &checkpoint.root
    ));
    let consistency = app
        .get_from_root(
            "/api/2.0/audit/proof/consistency",
            &[
                ("from", &before.size.to_string()),
                ("to", &checkpoint.size.to_string()),
            ],
        )
        .await;
    assert_eq!(consistency.status, 200, "{}", consistency.body);
    let old_root = hex_hash(&json!(before.root));
    assert!(merkle::verify_consistency(
        before.size,
        checkpoint.size,
        &old_root,
        &checkpoint.root,
        &hex_hashes(&consistency.body["hashes"])
    ));
    // A proof about a pruned event is a clear refusal.
    let gone = app
        .get_from_root(
            "/api/2.0/audit/proof/inclusion",
            &[("seq", "1"), ("size", &checkpoint.size.to_string())],
        )
        .await;
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert!(gone.body["message"].as_str().unwrap().contains("pruned"));
}

/// A GET of a text document as the bootstrap admin: status and body.
async fn text_of(app: &TestApp, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

trait FromRoot {
    async fn get_from_root(&self, path: &str, query: &[(&str, &str)]) -> Reply;
}

impl FromRoot for TestApp {
    async fn get_from_root(&self, path: &str, query: &[(&str, &str)]) -> Reply {
        read(
            self.request(Method::GET, path)
                .query(query)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn a_workspace_admin_queries_only_its_workspaces_rows_of_system_access_audit() {
    let app = spawn_app().await;
    let workspaces = format!("/api/2.0/accounts/{}/workspaces", app.account);
    let listed = call(&app, Method::GET, &workspaces, Some(&app.token), None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let workspace = listed.body[0]["workspace_id"].as_i64().unwrap().to_string();
    let admin = app.create_user("ws.admin@example.com").await;
    let admin_id = str_of(&admin, "id").to_string();
    let assigned = call(
        &app,
        Method::PUT,
        &format!("{workspaces}/{workspace}/permissionassignments/principals/{admin_id}"),
        Some(&app.token),
        Some(json!({"permissions": ["ADMIN"]})),
    )
    .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    let admin_token = app.token_for(&admin_id).await;
    let statement = "SELECT workspace_id, action_name FROM system.access.audit";

    let scoped = sql(&app, &admin_token, statement).await;
    assert_eq!(
        scoped.body["status"]["state"], "SUCCEEDED",
        "{}",
        scoped.body
    );
    let rows = scoped.body["result"]["data_array"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|row| row[0] == workspace.as_str()),
        "only the workspace's rows: {}",
        scoped.body
    );
    let everything = sql(&app, &app.token, statement).await;
    let rows = everything.body["result"]["data_array"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|row| row[0] == "0" && row[1] == "createAccount"),
        "an account admin sees the account's events too: {}",
        everything.body
    );
}

#[tokio::test]
async fn a_server_with_a_retention_horizon_prunes_older_events_by_itself() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let (database, url) = TestDatabase::fresh().await;
    let (services, _token, account) = bootstrapped_with_clock(&url, clock.clone()).await;
    // The bootstrap's events are two days old when the server starts with a one-day horizon.
    clock.advance_micros(2 * 86_400_000_000);
    let application = Application::bind("127.0.0.1:0", services)
        .await
        .unwrap()
        .with_audit_retention(Some(std::time::Duration::from_secs(86_400)));
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    let store = scimitar_store::open(&url).await.unwrap();
    let mut pruned = None;
    for _ in 0..400 {
        pruned = store.audit_pruned(&account).await.unwrap();
        if pruned.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let pruned = pruned.expect("the server pruned the old events");
    assert!(pruned.size >= 1);
    let verified = scimitar_store::audit::verify_trail(store.as_ref(), &account, None)
        .await
        .unwrap();
    assert_eq!(verified.problem, None);
    assert_eq!(verified.pruned, pruned.size);
    drop(shutdown);
    drop(database);
}
