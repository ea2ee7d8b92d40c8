//! Audit alerts end to end: rules made through `/api/2.0/audit/alert-rules` (or the config
//! file) fire on committed events, exactly once for their trigger and never for a near miss,
//! and reach a real HTTP receiver started here on loopback, signed (`X-Scimitar-Signature`),
//! once per firing even when the receiver fails the first attempts or the server restarts
//! between firing and delivery.
//!
//! Waiting is for conditions (the evaluator caught up with the trail and the outbox is
//! delivered), never for a time.

use crate::support::*;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use scimitar_app::alerts::{AlertDelivery, AlertRule, AlertRuleSpec, AlertSettings, WebhookSpec};
use scimitar_domain::{AccountId, RandomIds, SystemClock};
use scimitar_server::Application;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Fast polls and retries, so that the tests wait little.
fn fast() -> AlertSettings {
    AlertSettings {
        poll_interval: Duration::from_millis(30),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..AlertSettings::default()
    }
}

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    signature: String,
    timestamp: String,
    content_type: String,
    body: String,
    answered: u16,
}

#[derive(Default)]
struct Inbox {
    received: Vec<Received>,
    failures_left: usize,
}

/// A webhook receiver on loopback that records every request and answers 500 to the first
/// `fail_first`, then 200.
struct Receiver {
    url: String,
    inbox: Arc<Mutex<Inbox>>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let inbox = Arc::new(Mutex::new(Inbox {
            received: Vec::new(),
            failures_left: fail_first,
        }));
        let state = inbox.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let inbox = state.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let mut inbox = inbox.lock().unwrap();
                    let answered = if inbox.failures_left > 0 {
                        inbox.failures_left -= 1;
                        500
                    } else {
                        200
                    };
                    inbox.received.push(Received {
                        delivery: header("x-scimitar-delivery"),
                        signature: header("x-scimitar-signature"),
                        timestamp: header("x-scimitar-timestamp"),
                        content_type: header("content-type"),
                        body,
                        answered,
                    });
                    StatusCode::from_u16(answered).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            url: format!("http://{address}/hook"),
            inbox,
            _stop: stop,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().received.clone()
    }

    /// The requests answered 200: one per delivered firing.
    fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|received| received.answered == 200)
            .collect()
    }
}

async fn create_rule(app: &TestApp, body: Value) -> Value {
    let reply = call(
        app,
        Method::POST,
        "/api/2.0/audit/alert-rules",
        Some(&app.token),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// Waits until the account's evaluation has reached the end of its trail and every firing in
/// its outbox is delivered, and returns the outbox.
async fn settled(services: &scimitar_app::Services, account: &AccountId) -> Vec<AlertDelivery> {
    for _ in 0..6_000 {
        let caught_up = services.alerts_caught_up(account).await.unwrap();
        let outbox = services.alert_outbox(account).await.unwrap();
        if caught_up && outbox.iter().all(|row| row.delivered.is_some()) {
            return outbox;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the alerts never settled");
}

/// The event a delivered generic body carries.
fn event_of(received: &Received) -> Value {
    let body: Value = serde_json::from_str(&received.body).unwrap();
    body["event"].clone()
}

/// Checks the signature as a receiver does: HMAC-SHA256 over `"{timestamp}.{raw body}"`.
fn assert_signed(received: &Received, secret: &str) {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2_11::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}", received.timestamp, received.body).as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(received.signature, format!("sha256={hex}"));
    assert_eq!(received.content_type, "application/json");
    assert!(received.timestamp.parse::<i64>().is_ok());
}

async fn add_members(app: &TestApp, group: &str, members: &[&str]) {
    let values: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let reply = app
        .patch_ops(
            &format!("/Groups/{group}"),
            json!([{"op": "add", "path": "members", "value": values}]),
        )
        .await;
    assert!([200, 204].contains(&reply.status), "{}", reply.body);
}

#[tokio::test]
async fn a_change_to_a_group_that_makes_admins_fires_at_any_nesting_and_other_groups_do_not() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with_alerts(fast()).await;
    let workspace = app.services.workspaces(&app.account).await.unwrap()[0]
        .id
        .as_str()
        .to_string();
    let ops = str_of(&app.create_group("ops", &[]).await, "id").to_string();
    let oncall = str_of(&app.create_group("oncall", &[]).await, "id").to_string();
    let misc = str_of(&app.create_group("misc", &[]).await, "id").to_string();
    let first = str_of(&app.create_user("first@example.com").await, "id").to_string();
    let second = str_of(&app.create_user("second@example.com").await, "id").to_string();
    add_members(&app, &ops, &[&oncall]).await;
    let assigned = call(
        &app,
        Method::PUT,
        &format!(
            "/api/2.0/accounts/{}/workspaces/{workspace}/permissionassignments/principals/{ops}",
            app.account
        ),
        Some(&app.token),
        Some(json!({"permissions": ["ADMIN"]})),
    )
    .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    let rule = create_rule(
        &app,
        json!({"name": "admins", "kind": "admins_group_change",
               "webhook": {"url": receiver.url}}),
    )
    .await;
    let secret = rule["webhook"]["secret"].as_str().unwrap().to_string();

    add_members(&app, &misc, &[&first]).await; // near miss: makes nobody an admin
    add_members(&app, &oncall, &[&second]).await; // in ops, which is ADMIN in the workspace
    let admins = app.system_group_id("admins").await;
    add_members(&app, &admins, &[&first]).await;

    let outbox = settled(&app.services, &app.account).await;
    assert_eq!(outbox.len(), 2, "{outbox:?}");
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 2);
    let groups: Vec<String> = accepted
        .iter()
        .map(|received| {
            assert_signed(received, &secret);
            event_of(received)["targets"][0]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(groups, vec![oncall, admins]);
    // The delivery id is the outbox row's, in the header and the body.
    for (received, row) in accepted.iter().zip(&outbox) {
        assert_eq!(received.delivery, row.firing.id);
        let body: Value = serde_json::from_str(&received.body).unwrap();
        assert_eq!(body["delivery_id"], json!(row.firing.id));
        assert_eq!(body["rule"]["id"], rule["id"]);
    }
}

#[tokio::test]
async fn a_grant_or_owner_change_fires_for_securables_matching_the_pattern_only() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with_alerts(fast()).await;
    for name in ["sales", "hr"] {
        let created = call(
            &app,
            Method::POST,
            "/api/2.1/unity-catalog/catalogs",
            Some(&app.token),
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.body);
    }
    app.create_user("analyst@example.com").await;
    create_rule(
        &app,
        json!({"name": "sales grants", "kind": "securable_change", "pattern": "sal*",
               "webhook": {"url": receiver.url, "secret": "0123456789abcdef-sales"}}),
    )
    .await;
    let grant = |catalog: &str| {
        let path = format!("/api/2.1/unity-catalog/permissions/catalog/{catalog}");
        let app = &app;
        async move {
            call(
                app,
                Method::PATCH,
                &path,
                Some(&app.token),
                Some(json!({"changes": [{"principal": "analyst@example.com",
                                         "add": ["USE_CATALOG"]}]})),
            )
            .await
        }
    };
    assert_eq!(grant("hr").await.status, 200); // near miss: another name
    assert_eq!(grant("sales").await.status, 200);
    let owned = call(
        &app,
        Method::PATCH,
        "/api/2.1/unity-catalog/catalogs/sales",
        Some(&app.token),
        Some(json!({"owner": "analyst@example.com"})),
    )
    .await;
    assert_eq!(owned.status, 200, "{}", owned.body);

    let outbox = settled(&app.services, &app.account).await;
    assert_eq!(outbox.len(), 2, "{outbox:?}");
    let actions: Vec<Value> = receiver
        .accepted()
        .iter()
        .map(|received| {
            assert_signed(received, "0123456789abcdef-sales");
            let event = event_of(received);
            assert_eq!(event["targets"][0]["id"], "sales");
            event["action_name"].clone()
        })
        .collect();
    assert_eq!(
        actions,
        vec![json!("updatePermissions"), json!("changeSecurableOwner")]
    );
}

#[tokio::test]
async fn more_deletions_or_deactivations_than_the_threshold_within_the_window_fire_once() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with_alerts(fast()).await;
    let mut users = Vec::new();
    for index in 0..4 {
        let user = app.create_user(&format!("leaver{index}@example.com")).await;
        users.push(str_of(&user, "id").to_string());
    }
    create_rule(
        &app,
        json!({"name": "mass", "kind": "mass_deprovisioning", "threshold": 2,
               "window_seconds": 3600, "webhook": {"url": receiver.url}}),
    )
    .await;
    let delete = |id: &str| {
        let path = format!("/Users/{id}");
        let app = &app;
        async move { app.delete(&path).await }
    };
    assert_eq!(delete(&users[0]).await.status, 204);
    let deactivated = app
        .patch_ops(
            &format!("/Users/{}", users[1]),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    // Two so far: not more than the threshold (the near miss). The third crosses it; the
    // fourth is still above it and fires no second alert.
    assert_eq!(delete(&users[2]).await.status, 204);
    assert_eq!(delete(&users[3]).await.status, 204);

    let outbox = settled(&app.services, &app.account).await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    let event = event_of(&accepted[0]);
    assert_eq!(event["action_name"], "delete");
    assert_eq!(event["targets"][0]["id"], json!(users[2]));
}

#[tokio::test]
async fn a_token_without_expiry_or_with_a_short_one_fires_and_a_long_lived_one_does_not() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with_alerts(fast()).await;
    let user = app.create_user("holder@example.com").await;
    create_rule(
        &app,
        json!({"name": "tokens", "kind": "token_expiry", "min_lifetime_seconds": 3600,
               "webhook": {"url": receiver.url}}),
    )
    .await;
    let token = |lifetime: i64| {
        call(
            &app,
            Method::POST,
            "/api/2.0/token/create",
            Some(&app.token),
            Some(json!({"lifetime_seconds": lifetime})),
        )
    };
    assert_eq!(token(7200).await.status, 200); // near miss: lives long enough
    assert_eq!(token(600).await.status, 200);
    app.token_for(str_of(&user, "id")).await; // made by an operator, without expiry

    let outbox = settled(&app.services, &app.account).await;
    assert_eq!(outbox.len(), 2, "{outbox:?}");
    let expiries: Vec<bool> = receiver
        .accepted()
        .iter()
        .map(|received| event_of(received)["request_params"]["expires"].is_null())
        .collect();
    assert_eq!(expiries, vec![false, true]);
}

/// Appends a refused authentication (a `tokenLogin` answered 401) from `source` to the
/// account's trail, as the store appends an event: the event and its leaf at the next position,
/// and the head's size (its frontier is folded later), so the trail stays verifiable.
async fn append_refusal(url: &str, account: &AccountId, source: &str) {
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    let next = |size: i64| {
        let seq = size + 1;
        let now = scimitar_domain::Clock::now(&SystemClock);
        let event = scimitar_store::AuditEvent {
            version: 1,
            account_id: account.to_string(),
            seq: seq as u64,
            event_id: format!("refusal-{seq}"),
            event_time: Some(now.to_rfc3339()),
            workspace_id: None,
            user_identity: None,
            source_ip_address: Some(source.to_string()),
            user_agent: Some("attacker/1.0".into()),
            request_id: None,
            service_name: "accounts".into(),
            action_name: "tokenLogin".into(),
            request_params: serde_json::Map::new(),
            response: scimitar_store::audit::AuditResponse {
                status_code: 401,
                error_message: Some("invalid token".into()),
            },
            targets: Vec::new(),
        };
        let text = serde_json::to_string(&event).unwrap();
        let leaf = hex(&scimitar_audit::merkle::leaf_hash(text.as_bytes()));
        (seq, now.as_micros(), text, leaf)
    };
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut connection = rusqlite::Connection::open(path).unwrap();
        connection.busy_timeout(Duration::from_secs(30)).unwrap();
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let size: i64 = transaction
            .query_row(
                "SELECT size FROM audit_heads WHERE account_id = ?1",
                [account.as_str()],
                |row| row.get(0),
            )
            .unwrap();
        let (seq, time, text, leaf) = next(size);
        transaction
            .execute(
                "INSERT INTO audit_events (account_id, seq, event_time, action_name, event, leaf) \
                 VALUES (?1, ?2, ?3, 'tokenLogin', ?4, ?5)",
                rusqlite::params![account.as_str(), seq, time, text, leaf],
            )
            .unwrap();
        transaction
            .execute(
                "UPDATE audit_heads SET size = ?2 WHERE account_id = ?1",
                rusqlite::params![account.as_str(), seq],
            )
            .unwrap();
        transaction.commit().unwrap();
    } else {
        let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        let transaction = client.transaction().await.unwrap();
        let row = transaction
            .query_one(
                "SELECT size FROM audit_heads WHERE account_id = $1 FOR UPDATE",
                &[&account.as_str()],
            )
            .await
            .unwrap();
        let (seq, time, text, leaf) = next(row.get(0));
        transaction
            .execute(
                "INSERT INTO audit_events (account_id, seq, event_time, action_name, event, leaf) \
                 VALUES ($1, $2, $3, 'tokenLogin', $4, $5)",
                &[&account.as_str(), &seq, &time, &text, &leaf],
            )
            .await
            .unwrap();
        transaction
            .execute(
                "UPDATE audit_heads SET size = $2 WHERE account_id = $1",
                &[&account.as_str(), &seq],
            )
            .await
            .unwrap();
        transaction.commit().await.unwrap();
        drop(client);
        let _ = driver.await;
    }
}

#[tokio::test]
async fn more_authentication_failures_than_the_threshold_from_one_source_fire_once() {
    let receiver = Receiver::start(0).await;
    let (database, url) = TestDatabase::fresh().await;
    let (services, token, account) = bootstrapped(&url).await;
    let node = Node::start(&services, fast()).await;
    let rule = call_node(
        &node.address,
        &token,
        Method::POST,
        "/api/2.0/audit/alert-rules",
        Some(
            json!({"name": "brute force", "kind": "authentication_failures", "threshold": 2,
                    "window_seconds": 600, "webhook": {"url": receiver.url}}),
        ),
    )
    .await;
    assert_eq!(rule.status, 200, "{}", rule.body);
    // Two from each of two sources: at the threshold, not above it (near misses).
    for source in ["203.0.113.7", "198.51.100.1", "203.0.113.7", "198.51.100.1"] {
        append_refusal(&url, &account, source).await;
    }
    append_refusal(&url, &account, "203.0.113.7").await; // the third from one source
    append_refusal(&url, &account, "203.0.113.7").await; // still above: no second alert

    let outbox = settled(&services, &account).await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    let event = event_of(&accepted[0]);
    assert_eq!(event["source_ip_address"], "203.0.113.7");
    assert_eq!(event["response"]["status_code"], 401);
    let seq = event["audit_seq"].as_u64().unwrap();
    assert_eq!(outbox[0].firing.event_seq, seq);
    // The trail is still whole: the refusals were appended as the trail appends.
    let verified = scimitar_store::audit::verify_trail(
        scimitar_store::open(&url).await.unwrap().as_ref(),
        &account,
        None,
    )
    .await
    .unwrap();
    assert!(verified.problem.is_none(), "{:?}", verified.problem);
    node.stop().await;
    drop(database);
}

#[tokio::test]
async fn an_event_filter_fires_on_matching_events_only_with_a_slack_body() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with_alerts(fast()).await;
    create_rule(
        &app,
        json!({"name": "finance groups", "kind": "event_filter",
               "filter": "action_name eq \"createGroup\" and request_params.targetUserName sw \"fin\"",
               "webhook": {"url": receiver.url, "format": "slack"}}),
    )
    .await;
    app.create_group("marketing", &[]).await; // near miss
    app.create_user("finley@example.com").await; // near miss: not a group
    app.create_group("finance", &[]).await;

    let outbox = settled(&app.services, &app.account).await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    let body: Value = serde_json::from_str(&accepted[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("finance groups") && text.contains("createGroup"),
        "{text}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
}

#[tokio::test]
async fn a_receiver_failing_the_first_attempts_gets_exactly_one_accepted_copy_per_firing() {
    let receiver = Receiver::start(3).await;
    let app = spawn_app_with_alerts(fast()).await;
    let rule = create_rule(
        &app,
        json!({"name": "groups", "kind": "event_filter", "filter": "action_name eq \"createGroup\"",
               "webhook": {"url": receiver.url}}),
    )
    .await;
    let secret = rule["webhook"]["secret"].as_str().unwrap().to_string();
    app.create_group("one", &[]).await;
    app.create_group("two", &[]).await;

    let outbox = settled(&app.services, &app.account).await;
    assert_eq!(outbox.len(), 2, "{outbox:?}");
    let received = receiver.received();
    assert_eq!(
        received.len(),
        5,
        "three refused, two accepted: {received:?}"
    );
    for row in &outbox {
        let accepted: Vec<&Received> = received
            .iter()
            .filter(|received| received.delivery == row.firing.id && received.answered == 200)
            .collect();
        assert_eq!(accepted.len(), 1, "{received:?}");
        assert_signed(accepted[0], &secret);
    }
    let attempts: u32 = outbox.iter().map(|row| row.attempts).sum();
    assert_eq!(attempts, 5);
}

/// A node serving the database its services open, stopped on demand (a restart is a stop
/// and a new node over the same database).
struct Node {
    address: String,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<()>,
}

impl Node {
    async fn start(services: &scimitar_app::Services, settings: AlertSettings) -> Node {
        let application = Application::bind("127.0.0.1:0", services.clone())
            .await
            .unwrap()
            .with_alerts(settings);
        let address = format!("http://{}", application.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            application
                .run_until(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Node {
            address,
            stop,
            serving,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.serving.await.unwrap();
    }
}

async fn call_node(
    address: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = reqwest::Client::new()
        .request(method, format!("{address}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.unwrap()).await
}

/// New services over the same database: another process.
async fn reopened(url: &str) -> scimitar_app::Services {
    let store = scimitar_store::open(url).await.unwrap();
    scimitar_app::Services::new(store, Arc::new(SystemClock), Arc::new(RandomIds))
}

#[tokio::test]
async fn a_restart_between_firing_and_delivery_delivers_once_and_an_acknowledged_one_never_again() {
    let receiver = Receiver::start(0).await;
    let (database, url) = TestDatabase::fresh().await;
    let (services, token, account) = bootstrapped(&url).await;
    let evaluating_only = AlertSettings {
        deliver: false,
        ..fast()
    };
    let first = Node::start(&services, evaluating_only).await;
    let rule = call_node(
        &first.address,
        &token,
        Method::POST,
        "/api/2.0/audit/alert-rules",
        Some(json!({"name": "groups", "kind": "event_filter",
                    "filter": "action_name eq \"createGroup\"",
                    "webhook": {"url": receiver.url}})),
    )
    .await;
    assert_eq!(rule.status, 200, "{}", rule.body);
    let group = json!({"schemas": [GROUP_SCHEMA], "displayName": "before restart"});
    let created = call_node(
        &first.address,
        &token,
        Method::POST,
        "/scim/v2/Groups",
        Some(group),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Fired, not delivered.
    let fired = loop {
        let outbox = services.alert_outbox(&account).await.unwrap();
        if !outbox.is_empty() {
            break outbox;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(fired.len(), 1);
    assert!(fired[0].delivered.is_none());
    first.stop().await;
    assert!(receiver.received().is_empty());

    let services = reopened(&url).await;
    let second = Node::start(&services, fast()).await;
    let outbox = settled(&services, &account).await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(receiver.accepted().len(), 1);
    assert_eq!(receiver.accepted()[0].delivery, fired[0].firing.id);
    second.stop().await;

    // Another restart: the acknowledged delivery is not sent again. A new firing delivered
    // after it shows the new node has been through the outbox.
    let services = reopened(&url).await;
    let third = Node::start(&services, fast()).await;
    let group = json!({"schemas": [GROUP_SCHEMA], "displayName": "after restart"});
    let created = call_node(
        &third.address,
        &token,
        Method::POST,
        "/scim/v2/Groups",
        Some(group),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let outbox = loop {
        let outbox = settled(&services, &account).await;
        if outbox.len() == 2 {
            break outbox;
        }
    };
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    assert_eq!(accepted[0].delivery, outbox[0].firing.id);
    assert_eq!(accepted[1].delivery, outbox[1].firing.id);
    third.stop().await;
    drop(database);
}

#[tokio::test]
async fn rules_are_made_read_replaced_and_deleted_by_admins_audited_and_their_secret_never_shown() {
    let app = spawn_app_with_alerts(fast()).await;
    let body = json!({"name": "watch", "kind": "token_expiry",
                      "webhook": {"url": "http://127.0.0.1:9/hook",
                                  "secret": "a-secret-of-enough-length"}});
    let created = create_rule(&app, body.clone()).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["source"], "api");
    assert!(created["webhook"].get("secret").is_none(), "{created}");
    let duplicate = call(
        &app,
        Method::POST,
        "/api/2.0/audit/alert-rules",
        Some(&app.token),
        Some(body),
    )
    .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.body);

    let path = format!("/api/2.0/audit/alert-rules/{id}");
    let fetched = call(&app, Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["kind"], "token_expiry");
    let replaced = call(
        &app,
        Method::PUT,
        &path,
        Some(&app.token),
        Some(
            json!({"name": "watch", "kind": "token_expiry", "min_lifetime_seconds": 60,
                    "webhook": {"url": "http://127.0.0.1:9/other", "format": "slack"}}),
        ),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["min_lifetime_seconds"], 60);
    let listed = call(
        &app,
        Method::GET,
        "/api/2.0/audit/alert-rules",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(listed.body["rules"].as_array().unwrap().len(), 1);
    assert!(!listed
        .body
        .to_string()
        .contains("a-secret-of-enough-length"));

    for bad in [
        json!({"name": "x", "kind": "unknown", "webhook": {"url": "http://h/x"}}),
        json!({"name": "x", "kind": "mass_deprovisioning", "webhook": {"url": "http://h/x"}}),
        json!({"name": "x", "kind": "token_expiry", "pattern": "a", "webhook": {"url": "http://h/x"}}),
        json!({"name": "x", "kind": "token_expiry", "webhook": {"url": "file:///etc/passwd"}}),
        json!({"name": "x", "kind": "event_filter", "filter": "action_name eq", "webhook": {"url": "http://h/x"}}),
        json!({"name": "x", "kind": "token_expiry", "webhook": {"url": "http://h/x"}, "extra": 1}),
    ] {
        let refused = call(
            &app,
            Method::POST,
            "/api/2.0/audit/alert-rules",
            Some(&app.token),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
        assert!(refused.body["error_code"].is_string(), "{}", refused.body);
    }

    let deleted = call(&app, Method::DELETE, &path, Some(&app.token), None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let missing = call(&app, Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let again = call(&app, Method::DELETE, &path, Some(&app.token), None).await;
    assert_eq!(again.status, 404, "{}", again.body);

    // Each write is in the trail, without the secret.
    let mut actions = Vec::new();
    for action in ["createAlertRule", "updateAlertRule", "deleteAlertRule"] {
        let events = call(
            &app,
            Method::GET,
            &format!("/api/2.0/audit/events?action={action}"),
            Some(&app.token),
            None,
        )
        .await;
        assert_eq!(events.status, 200, "{}", events.body);
        let events = events.body["events"].as_array().unwrap().clone();
        assert_eq!(events.len(), 1, "{action}");
        assert!(!events[0].to_string().contains("a-secret-of-enough-length"));
        actions.push(events[0]["targets"][0]["id"].clone());
    }
    assert_eq!(actions, vec![json!(id), json!(id), json!(id)]);
}

#[tokio::test]
async fn the_rules_api_refuses_missing_expired_foreign_and_non_admin_credentials() {
    let clock = Arc::new(scimitar_domain::clock::ManualClock::new(
        scimitar_domain::Clock::now(&SystemClock),
    ));
    let app = spawn_app_with_clock(clock.clone()).await;
    let expiring = call(
        &app,
        Method::POST,
        "/api/2.0/token/create",
        Some(&app.token),
        Some(json!({"lifetime_seconds": 60})),
    )
    .await;
    let expiring = str_of(&expiring.body, "token_value").to_string();
    clock.advance_micros(61_000_000);
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let foreign_token = foreign.admin_token.expose().to_string();
    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;
    let rule = json!({"name": "r", "kind": "token_expiry", "webhook": {"url": "http://h/x"}});
    let created = create_rule(&app, rule.clone()).await;
    let path = format!("/api/2.0/audit/alert-rules/{}", str_of(&created, "id"));
    for (method, path, body) in [
        (Method::GET, "/api/2.0/audit/alert-rules".to_string(), None),
        (
            Method::POST,
            "/api/2.0/audit/alert-rules".to_string(),
            Some(rule.clone()),
        ),
        (Method::GET, path.clone(), None),
        (Method::PUT, path.clone(), Some(rule.clone())),
        (Method::DELETE, path.clone(), None),
    ] {
        let without = call(&app, method.clone(), &path, None, body.clone()).await;
        assert_eq!(without.status, 401, "{method} {path}: {}", without.body);
        let expired = call(&app, method.clone(), &path, Some(&expiring), body.clone()).await;
        assert_eq!(expired.status, 401, "{method} {path}: {}", expired.body);
        let other = call(
            &app,
            method.clone(),
            &path,
            Some(&foreign_token),
            body.clone(),
        )
        .await;
        assert!(
            [403, 404].contains(&other.status),
            "{method} {path}: {}",
            other.body
        );
        let unprivileged = call(
            &app,
            method.clone(),
            &path,
            Some(&plain_token),
            body.clone(),
        )
        .await;
        assert_eq!(
            unprivileged.status, 403,
            "{method} {path}: {}",
            unprivileged.body
        );
    }
    let still = call(&app, Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(
        still.status, 200,
        "nothing above changed the rule: {}",
        still.body
    );
}

#[tokio::test]
async fn rules_from_the_config_file_are_listed_and_fire_in_every_account() {
    let receiver = Receiver::start(0).await;
    let configured = AlertRule::from_config(AlertRuleSpec {
        name: "configured".into(),
        kind: "event_filter".into(),
        pattern: None,
        threshold: None,
        window_seconds: None,
        min_lifetime_seconds: None,
        filter: Some("action_name eq \"createGroup\"".into()),
        webhook: WebhookSpec {
            url: receiver.url.clone(),
            format: None,
            secret: Some("configured-secret-0123".into()),
        },
    })
    .unwrap();
    let app = spawn_app_with_alerts(AlertSettings {
        rules: vec![configured],
        ..fast()
    })
    .await;
    let listed = call(
        &app,
        Method::GET,
        "/api/2.0/audit/alert-rules",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let rules = listed.body["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["id"], "config:configured");
    assert_eq!(rules[0]["source"], "config");
    assert!(!listed.body.to_string().contains("configured-secret-0123"));
    let changed = call(
        &app,
        Method::DELETE,
        "/api/2.0/audit/alert-rules/config:configured",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(changed.status, 400, "{}", changed.body);
    // Evaluation starts where the trail stood on the first pass; wait for it before acting.
    while !app.services.alerts_caught_up(&app.account).await.unwrap() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.create_group("configured group", &[]).await;
    let outbox = settled(&app.services, &app.account).await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    assert_signed(&accepted[0], "configured-secret-0123");
    assert_eq!(event_of(&accepted[0])["action_name"], "createGroup");
}

#[tokio::test]
async fn two_nodes_on_one_database_fire_and_deliver_each_firing_once() {
    let receiver = Receiver::start(0).await;
    let (database, url) = TestDatabase::fresh().await;
    let (services, token, account) = bootstrapped(&url).await;
    let first = Node::start(&services, fast()).await;
    let other = reopened(&url).await;
    let second = Node::start(&other, fast()).await;
    let rule = call_node(
        &first.address,
        &token,
        Method::POST,
        "/api/2.0/audit/alert-rules",
        Some(json!({"name": "groups", "kind": "event_filter",
                    "filter": "action_name eq \"createGroup\"",
                    "webhook": {"url": receiver.url}})),
    )
    .await;
    assert_eq!(rule.status, 200, "{}", rule.body);
    for (index, node) in [&first, &second, &first, &second].into_iter().enumerate() {
        let group = json!({"schemas": [GROUP_SCHEMA], "displayName": format!("group {index}")});
        let created = call_node(
            &node.address,
            &token,
            Method::POST,
            "/scim/v2/Groups",
            Some(group),
        )
        .await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let outbox = loop {
        let outbox = settled(&other, &account).await;
        if outbox.len() >= 4 {
            break outbox;
        }
    };
    assert_eq!(outbox.len(), 4, "{outbox:?}");
    let accepted = receiver.accepted();
    let mut ids: Vec<&str> = accepted
        .iter()
        .map(|received| received.delivery.as_str())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert_eq!(
        accepted.len(),
        4,
        "no firing was posted by both nodes: {accepted:?}"
    );
    first.stop().await;
    second.stop().await;
    drop(database);
}
