//! The change feed, `GET /api/2.0/sync/changes`, which `scimitar sync watch` long-polls: who
//! may wait, what a bad parameter is told, that a wait ends with a write on the same node or
//! on another node over the same database, that it ends at its timeout with the token
//! unchanged, and that a server shutting down answers a pending wait instead of holding
//! shutdown to its deadline. No assertion is about speed: a wait that a write did not end
//! would end only at its (long) timeout, with the token unchanged, and fail.

use crate::multi_node::two_nodes;
use crate::support::*;
use reqwest::Method;
use scimitar_domain::clock::ManualClock;
use scimitar_domain::credentials::TokenScope;
use scimitar_domain::{Clock, PrincipalId, SystemClock};
use serde_json::json;
use std::sync::Arc;

const CHANGES: &str = "/api/2.0/sync/changes";

fn databricks_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error_code"], code, "{}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.body
    );
}

/// The feed's answer on `address` with `token`: status and the change token as a number.
async fn changes_at(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    query: &str,
) -> (Reply, Option<u64>) {
    let reply = read(
        client
            .get(format!("{address}{CHANGES}?{query}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("the server answers"),
    )
    .await;
    let token = reply.body["change_token"]
        .as_str()
        .and_then(|text| text.parse().ok());
    (reply, token)
}

async fn changes(app: &TestApp, token: &str, query: &str) -> (Reply, Option<u64>) {
    changes_at(&app.client, &app.address, token, query).await
}

/// The account's change token now, without waiting.
async fn current(app: &TestApp) -> u64 {
    let (reply, token) = changes(app, &app.token, "after=0&timeout_seconds=0").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    token.expect("a change token")
}

/// A token of `scope` for `principal`, as `scimitar token create --scope` makes it.
async fn token_of_scope(app: &TestApp, principal: &str, scope: TokenScope) -> String {
    let operator = app.services.act_as_admin(&app.account).await.unwrap();
    let admin = app.services.authorize_admin(&operator).await.unwrap();
    app.services
        .create_token(&admin, &PrincipalId::new(principal), scope, None)
        .await
        .unwrap()
        .expose()
        .to_string()
}

#[tokio::test]
async fn the_feed_refuses_missing_expired_foreign_and_unprivileged_credentials() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let expiring = call(
        &app,
        Method::POST,
        "/api/2.0/token/create",
        Some(&app.token),
        Some(json!({"lifetime_seconds": 60})),
    )
    .await;
    assert_eq!(expiring.status, 200, "{}", expiring.body);
    let expiring = str_of(&expiring.body, "token_value").to_string();
    clock.advance_micros(61 * 1_000_000);
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let foreign_token = foreign.admin_token.expose().to_string();
    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;
    let query = "after=0&timeout_seconds=0";

    let without = call(&app, Method::GET, &format!("{CHANGES}?{query}"), None, None).await;
    databricks_error(&without, 401, "UNAUTHENTICATED");
    let (expired, _) = changes(&app, &expiring, query).await;
    databricks_error(&expired, 401, "UNAUTHENTICATED");
    let (foreign, token) = changes(&app, &foreign_token, query).await;
    assert!(
        [401, 403, 404].contains(&foreign.status),
        "{} {}",
        foreign.status,
        foreign.body
    );
    assert_eq!(token, None, "another account's token is never shown");
    let (unprivileged, token) = changes(&app, &plain_token, query).await;
    databricks_error(&unprivileged, 403, "PERMISSION_DENIED");
    assert_eq!(token, None);
    // A read-only token of that user is no better.
    let read_only = token_of_scope(&app, str_of(&plain, "id"), TokenScope::ReadOnly).await;
    let (refused, _) = changes(&app, &read_only, query).await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");

    // What a sync job holds, a token of the SCIM scope, may follow the feed; so may an admin.
    let provisioning = token_of_scope(&app, str_of(&plain, "id"), TokenScope::Scim).await;
    let (allowed, token) = changes(&app, &provisioning, query).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let (admin, admin_token) = changes(&app, &app.token, query).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert_eq!(token, admin_token);
    assert!(token.is_some_and(|token| token > 0), "{}", allowed.body);
    // And that token is still refused everywhere else but SCIM.
    let elsewhere = call(
        &app,
        Method::GET,
        "/api/2.0/token/list",
        Some(&provisioning),
        None,
    )
    .await;
    databricks_error(&elsewhere, 403, "PERMISSION_DENIED");
}

#[tokio::test]
async fn bad_parameters_are_refused_with_400_naming_them() {
    let app = spawn_app().await;
    for query in [
        "after=-1",
        "after=soon",
        "after=1&after=2",
        "timeout_seconds=1.5",
        "timeout_seconds=",
        "since=4",
    ] {
        let (reply, _) = changes(&app, &app.token, query).await;
        databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE");
    }
    let posted = call(&app, Method::POST, CHANGES, Some(&app.token), None).await;
    assert_eq!(posted.status, 405, "{}", posted.body);
}

#[tokio::test]
async fn a_wait_ends_at_its_timeout_with_the_token_unchanged() {
    let app = spawn_app().await;
    let now = current(&app).await;
    let (reply, token) = changes(&app, &app.token, &format!("after={now}&timeout_seconds=1")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(token, Some(now));
    // A caller behind (or new) is answered at once with where the account is.
    let (reply, token) = changes(&app, &app.token, "timeout_seconds=60").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(token, Some(now));
}

#[tokio::test]
async fn a_wait_is_ended_by_a_write_on_the_same_node() {
    let app = spawn_app().await;
    let now = current(&app).await;
    let (client, address, token) = (app.client.clone(), app.address.clone(), app.token.clone());
    let waiting = tokio::spawn(async move {
        changes_at(
            &client,
            &address,
            &token,
            &format!("after={now}&timeout_seconds=60"),
        )
        .await
    });
    // Whether the write lands before or after the wait begins, the answer is the same.
    let created = app.create_user("moved@example.com").await;
    assert!(created["id"].is_string());
    let (reply, token) = waiting.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(token.is_some_and(|token| token > now), "{}", reply.body);
}

#[tokio::test]
async fn a_wait_on_one_node_is_ended_by_a_write_on_another() {
    let (app, other) = two_nodes().await;
    let now = current(&app).await;
    let (client, address, token) = (app.client.clone(), other.address.clone(), app.token.clone());
    let waiting = tokio::spawn(async move {
        changes_at(
            &client,
            &address,
            &token,
            &format!("after={now}&timeout_seconds=60"),
        )
        .await
    });
    let group = app.create_group("elsewhere", &[]).await;
    assert!(group["id"].is_string());
    let (reply, token) = waiting.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(token.is_some_and(|token| token > now), "{}", reply.body);
}

#[tokio::test]
async fn a_pending_wait_is_answered_when_the_server_shuts_down() {
    let (database, url) = TestDatabase::fresh().await;
    let (services, token, _) = bootstrapped(&url).await;
    let application = scimitar_server::Application::bind("127.0.0.1:0", services)
        .await
        .expect("binds");
    let address = format!("http://{}", application.local_addr().expect("an address"));
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let (reply, now) = changes_at(&client, &address, &token, "timeout_seconds=0").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let now = now.expect("a token");
    let waiting = {
        let (client, address, token) = (client.clone(), address.clone(), token.clone());
        tokio::spawn(async move {
            changes_at(
                &client,
                &address,
                &token,
                &format!("after={now}&timeout_seconds=60"),
            )
            .await
        })
    };
    // Let the wait reach the server before shutdown stops accepting (ordering, not timing:
    // the assertions below hold however long anything takes).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    shutdown.send(()).expect("the server is running");
    // Without the stop signal the wait would hold the connection past the shutdown deadline,
    // and the server would drop it unanswered.
    let (reply, token) = waiting.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(token, Some(now));
    server.await.unwrap().unwrap();
    drop(database);
}
