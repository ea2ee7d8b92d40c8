//! The audit trail over HTTP: a change made through the API is in the trail with who made it,
//! from where and what changed (never a secret); the checkpoint is signed by the verifier key
//! served beside it; inclusion and consistency proofs check offline with `scimitar-audit`
//! alone; and only the account's admins may read any of it.

use crate::support::*;
use reqwest::Method;
use scimitar_audit::{merkle, Hash, NoteVerifier};
use scimitar_domain::clock::ManualClock;
use scimitar_domain::{Clock, SystemClock};
use serde_json::{json, Value};
use std::sync::Arc;

fn hash(value: &Value) -> Hash {
    let text = value.as_str().expect("a hex hash");
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).expect("hex");
    }
    hash
}

fn hashes(value: &Value) -> Vec<Hash> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(hash)
        .collect()
}

/// A GET of a path from the root, with a query, as the bootstrap admin.
async fn get_from_root(app: &TestApp, path: &str, query: &[(&str, &str)]) -> Reply {
    read(
        app.request(Method::GET, path)
            .query(query)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

async fn text(app: &TestApp, path: &str, token: &str) -> (u16, Option<String>, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_string());
    (status, kind, response.text().await.expect("a body"))
}

#[tokio::test]
async fn a_change_is_in_the_signed_trail_with_who_where_and_what_and_its_proofs_check_offline() {
    let app = spawn_app().await;
    let (status, kind, key) = text(&app, "/api/2.0/audit/verifier-key", &app.token).await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(kind.as_deref(), Some("text/plain; charset=utf-8"));
    let verifier = NoteVerifier::from_verifier_key(key.trim()).expect("a verifier key");
    let (_, _, before) = text(&app, "/api/2.0/audit/checkpoint", &app.token).await;
    let before = verifier
        .verify_checkpoint(&before)
        .expect("a signed checkpoint");
    assert!(before.size >= 1, "bootstrap is in the trail");

    let created = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&app.token)
        .header("user-agent", "audit-test/1.0")
        .header("x-request-id", "req-audit-1")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ana@example.com",
            "password": "correct horse battery staple",
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status().as_u16(), 201);
    let (_, kind, after) = text(&app, "/api/2.0/audit/checkpoint", &app.token).await;
    assert_eq!(kind.as_deref(), Some("text/plain; charset=utf-8"));
    let after = verifier
        .verify_checkpoint(&after)
        .expect("a signed checkpoint");
    assert_eq!(after.size, before.size + 1);

    // The new event, proved to be in the checkpoint's tree.
    let proof = get_from_root(
        &app,
        "/api/2.0/audit/proof/inclusion",
        &[
            ("seq", &after.size.to_string()),
            ("size", &after.size.to_string()),
        ],
    )
    .await;
    assert_eq!(proof.status, 200, "{}", proof.body);
    let event_text = proof.body["event"].as_str().unwrap();
    let leaf = merkle::leaf_hash(event_text.as_bytes());
    assert!(merkle::verify_inclusion(
        &leaf,
        after.size - 1,
        after.size,
        &hashes(&proof.body["hashes"]),
        &after.root
    ));
    let event: Value = serde_json::from_str(event_text).unwrap();
    assert_eq!(event["action_name"], "add");
    assert_eq!(event["service_name"], "accounts");
    assert_eq!(event["account_id"], app.account.as_str());
    assert_eq!(event["user_agent"], "audit-test/1.0");
    assert_eq!(event["request_id"], "req-audit-1");
    assert_eq!(event["source_ip_address"], "127.0.0.1");
    assert_eq!(event["user_identity"]["credential_kind"], "token");
    assert!(event["user_identity"]["principal_id"].is_string());
    assert_eq!(event["request_params"]["targetUserName"], "ana@example.com");
    assert!(!event_text.contains("correct horse"), "{event_text}");
    assert!(!event_text.contains("argon2"), "{event_text}");
    assert!(!event_text.contains(&app.token), "{event_text}");

    // The later checkpoint extends the earlier one.
    let consistency = get_from_root(
        &app,
        "/api/2.0/audit/proof/consistency",
        &[
            ("from", &before.size.to_string()),
            ("to", &after.size.to_string()),
        ],
    )
    .await;
    assert_eq!(consistency.status, 200, "{}", consistency.body);
    assert!(merkle::verify_consistency(
        before.size,
        after.size,
        &before.root,
        &after.root,
        &hashes(&consistency.body["hashes"])
    ));
    // A proof about a tree the trail has not reached is refused.
    let beyond = get_from_root(
        &app,
        "/api/2.0/audit/proof/consistency",
        &[("from", "1"), ("to", &(after.size + 5).to_string())],
    )
    .await;
    assert_eq!(beyond.status, 400, "{}", beyond.body);
}

#[tokio::test]
async fn the_audit_endpoints_refuse_missing_expired_foreign_and_non_admin_credentials() {
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
    clock.advance_micros(61_000_000);
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let foreign_token = foreign.admin_token.expose().to_string();
    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;
    for path in [
        "/api/2.0/audit/checkpoint",
        "/api/2.0/audit/verifier-key",
        "/api/2.0/audit/proof/inclusion?seq=1&size=1",
        "/api/2.0/audit/proof/consistency?from=1&to=1",
        "/api/2.0/audit/events",
    ] {
        let without = call(&app, Method::GET, path, None, None).await;
        assert_eq!(without.status, 401, "{path}: {}", without.body);
        let expired = call(&app, Method::GET, path, Some(&expiring), None).await;
        assert_eq!(expired.status, 401, "{path}: {}", expired.body);
        let foreign = call(&app, Method::GET, path, Some(&foreign_token), None).await;
        assert!(
            [403, 404].contains(&foreign.status),
            "{path}: {}",
            foreign.body
        );
        let unprivileged = call(&app, Method::GET, path, Some(&plain_token), None).await;
        assert_eq!(unprivileged.status, 403, "{path}: {}", unprivileged.body);
        let admin = call(&app, Method::GET, path, Some(&app.token), None).await;
        assert_eq!(admin.status, 200, "{path}: {}", admin.body);
    }
}

#[tokio::test]
async fn events_are_filtered_by_action_actor_target_time_and_result_and_paged_by_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in ["a@example.com", "b@example.com", "c@example.com"] {
        ids.push(str_of(&app.create_user(name).await, "id").to_string());
    }
    let group = app.create_group("team", &[&ids[0]]).await;
    let group_id = str_of(&group, "id").to_string();

    let added = get_from_root(&app, "/api/2.0/audit/events", &[("action", "add")]).await;
    assert_eq!(added.status, 200, "{}", added.body);
    let rows = added.body["events"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{}", added.body);
    // Databricks' column names, snake_case.
    for column in [
        "event_time",
        "account_id",
        "workspace_id",
        "user_identity",
        "service_name",
        "action_name",
        "request_id",
        "request_params",
        "response",
        "source_ip_address",
        "user_agent",
    ] {
        assert!(
            rows[0].get(column).is_some(),
            "{column} missing: {}",
            rows[0]
        );
    }
    assert_eq!(rows[0]["response"]["status_code"], 200);
    let admin = rows[0]["user_identity"]["subject_name"]
        .as_str()
        .unwrap()
        .to_string();

    // By target, by actor, by result, by time.
    let about_b = get_from_root(&app, "/api/2.0/audit/events", &[("target", &ids[1])]).await;
    let about_b = about_b.body["events"].as_array().unwrap().clone();
    assert_eq!(about_b.len(), 1);
    assert_eq!(
        about_b[0]["request_params"]["targetUserName"],
        "b@example.com"
    );
    let by_admin = get_from_root(&app, "/api/2.0/audit/events", &[("actor", &admin)]).await;
    assert_eq!(
        by_admin.body["events"].as_array().unwrap().len(),
        4,
        "{}",
        by_admin.body
    );
    let failures = get_from_root(&app, "/api/2.0/audit/events", &[("result", "failure")]).await;
    assert_eq!(failures.body["events"], json!([]));
    let future = get_from_root(
        &app,
        "/api/2.0/audit/events",
        &[("start_time", "2999-01-01T00:00:00Z")],
    )
    .await;
    assert_eq!(future.body["events"], json!([]));
    let grouped = get_from_root(&app, "/api/2.0/audit/events", &[("target", &group_id)]).await;
    assert_eq!(grouped.body["events"][0]["action_name"], "createGroup");

    // Paged: two at a time, every event once, in order.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![("limit", "2".to_string())];
        if let Some(token) = &token {
            query.push(("page_token", token.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = get_from_root(&app, "/api/2.0/audit/events", &query).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for row in page.body["events"].as_array().unwrap() {
            seen.push(row["audit_seq"].as_u64().unwrap());
        }
        match page.body["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seen, expected);
    assert!(seen.len() >= 5);
    let bad = get_from_root(&app, "/api/2.0/audit/events", &[("result", "maybe")]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}
