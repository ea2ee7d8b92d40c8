//! Defaults and details real clients trip on (issue #14): the `users` group's default
//! entitlements, a multipart `workspace/import` as the Python SDK's `w.workspace.upload` sends
//! it, Databricks' 404 and 405 on its REST paths, and the one SQL warehouse tools look up.

use crate::support::*;
use serde_json::json;

/// `GET /api/2.0/access/check` with `token`.
async fn check(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Reply {
    read(
        app.client
            .get(format!("{}/api/2.0/access/check", app.address))
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

async fn holds(app: &TestApp, principal: &str, entitlement: &str) -> bool {
    let reply = check(
        app,
        &app.token,
        &[("principal", principal), ("entitlement", entitlement)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("allowed in {}", reply.body))
}

#[tokio::test]
async fn the_users_group_gives_every_principal_workspace_and_sql_access_until_an_admin_removes_it()
{
    let app = spawn_app().await;
    let users_id = app.system_group_id("users").await;
    let users = app.get(&format!("/Groups/{users_id}")).await;
    assert_eq!(
        users.body["entitlements"],
        json!([{"value": "workspace-access"}, {"value": "databricks-sql-access"}]),
        "{}",
        users.body
    );

    // A new user holds both through `users`, and nothing more.
    let alice = app.create_user("alice@example.com").await;
    assert!(holds(&app, "alice@example.com", "workspace-access").await);
    assert!(holds(&app, "alice@example.com", "databricks-sql-access").await);
    assert!(!holds(&app, "alice@example.com", "allow-cluster-create").await);
    let reply = check(
        &app,
        &app.token,
        &[
            ("principal", "alice@example.com"),
            ("entitlement", "databricks-sql-access"),
        ],
    )
    .await;
    let chain: Vec<&str> = reply.body["reasons"][0]["chain"]
        .as_array()
        .unwrap_or_else(|| panic!("a chain in {}", reply.body))
        .iter()
        .filter_map(|step| step["name"].as_str())
        .collect();
    assert_eq!(chain, ["alice@example.com", "users"], "{}", reply.body);
    // The user asks about itself, as any principal may.
    let alice_token = app.token_for(str_of(&alice, "id")).await;
    let reply = check(&app, &alice_token, &[("entitlement", "workspace-access")]).await;
    assert_eq!(reply.body["allowed"], json!(true), "{}", reply.body);

    // An admin who takes them away from `users` is obeyed at the very next check.
    let reply = app
        .patch_ops(
            &format!("/Groups/{users_id}"),
            json!([{"op": "remove", "path": "entitlements[value eq \"databricks-sql-access\"]"}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!holds(&app, "alice@example.com", "databricks-sql-access").await);
    assert!(holds(&app, "alice@example.com", "workspace-access").await);
    let reply = app
        .patch_ops(
            &format!("/Groups/{users_id}"),
            json!([{"op": "remove", "path": "entitlements"}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!holds(&app, "alice@example.com", "workspace-access").await);
    let users = app.get(&format!("/Groups/{users_id}")).await;
    assert_eq!(users.body.get("entitlements"), None, "{}", users.body);
}

