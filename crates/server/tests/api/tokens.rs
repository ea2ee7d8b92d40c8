//! Personal access tokens, as the Databricks SDK's `w.tokens`, `w.token_management` and
//! `w.workspace_conf` call them: who may make them, what they may do (scopes), where they are
//! valid (their workspace alone), how they are rotated without downtime, and that a revoked
//! token, or one whose principal was deactivated, is refused at once, on every node.

use crate::multi_node::{change_token, node_on};
use crate::support::*;
use reqwest::Method;
use scimitar_domain::clock::ManualClock;
use scimitar_domain::{Clock, SystemClock};
use serde_json::{json, Value};
use std::sync::Arc;

const DAY_SECONDS: i64 = 86_400;

/// An app on a clock the test moves, starting now.
async fn app_with_clock() -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    (app, clock)
}

fn advance(clock: &ManualClock, seconds: i64) {
    clock.advance_micros(seconds * 1_000_000);
}

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

/// Makes a token through the token API; returns `(token_value, token_id)`.
async fn create_token(app: &TestApp, token: &str, body: Value) -> (String, String) {
    let reply = call(
        app,
        Method::POST,
        "/api/2.0/token/create",
        Some(token),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let value = str_of(&reply.body, "token_value").to_string();
    let id = str_of(&reply.body["token_info"], "token_id").to_string();
    (value, id)
}

/// A user of the default workspace with `CAN_USE` on its tokens, and its CLI-made token.
async fn token_user(app: &TestApp, user_name: &str) -> (String, String) {
    let user = app.create_user(user_name).await;
    let id = str_of(&user, "id").to_string();
    let granted = call(
        app,
        Method::PATCH,
        "/api/2.0/permissions/authorization/tokens",
        Some(&app.token),
        Some(json!({"access_control_list": [
            {"user_name": user_name, "permission_level": "CAN_USE"}
        ]})),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    let token = app.token_for(&id).await;
    (id, token)
}

async fn me(app: &TestApp, token: &str) -> Reply {
    call(
        app,
        Method::GET,
        "/api/2.0/preview/scim/v2/Me",
        Some(token),
        None,
    )
    .await
}

fn token_ids(reply: &Reply) -> Vec<String> {
    let mut ids: Vec<String> = reply.body["token_infos"]
        .as_array()
        .unwrap_or_else(|| panic!("no token_infos in {}", reply.body))
        .iter()
        .map(|info| str_of(info, "token_id").to_string())
        .collect();
    ids.sort();
    ids
}

async fn own_tokens(app: &TestApp, token: &str) -> Vec<String> {
    let reply = call(app, Method::GET, "/api/2.0/token/list", Some(token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    token_ids(&reply)
}

async fn managed_tokens(app: &TestApp, query: &str) -> Vec<String> {
    let path = format!("/api/2.0/token-management/tokens{query}");
    let reply = call(app, Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    token_ids(&reply)
}

#[tokio::test]
async fn a_user_with_can_use_makes_lists_and_deletes_its_own_tokens_and_sees_no_one_elses() {
    let (app, _clock) = app_with_clock().await;
    let (user_id, user_token) = token_user(&app, "ana@example.com").await;
    let reply = call(
        &app,
        Method::POST,
        "/api/2.0/token/create",
        Some(&user_token),
        Some(json!({"comment": "laptop", "lifetime_seconds": 3600})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let value = str_of(&reply.body, "token_value").to_string();
    assert!(value.starts_with("dapi"), "{value}");
    let info = &reply.body["token_info"];
    let created = info["creation_time"].as_i64().unwrap();
    assert_eq!(info["expiry_time"].as_i64().unwrap(), created + 3_600_000);
    assert_eq!(info["comment"], "laptop");
    assert_eq!(info["scopes"], json!(["all-apis"]));
    let id = str_of(info, "token_id").to_string();
    // The new token is the user's own credential.
    let own = me(&app, &value).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["id"], user_id.as_str());
    // Each sees its own tokens only.
    let (_, admin_token_id) = create_token(&app, &app.token, json!({"comment": "admin"})).await;
    assert_eq!(own_tokens(&app, &user_token).await, vec![id.clone()]);
    assert_eq!(own_tokens(&app, &value).await, vec![id.clone()]);
    assert_eq!(
        own_tokens(&app, &app.token).await,
        vec![admin_token_id.clone()]
    );
    // Another's token is not found, and stays.
    let foreign = call(
        &app,
        Method::POST,
        "/api/2.0/token/delete",
        Some(&user_token),
        Some(json!({"token_id": admin_token_id})),
    )
    .await;
    databricks_error(&foreign, 404, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(own_tokens(&app, &app.token).await, [admin_token_id]);
    // Deleting its own revokes it at once.
    let deleted = call(
        &app,
        Method::POST,
        "/api/2.0/token/delete",
        Some(&user_token),
        Some(json!({"token_id": id})),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(me(&app, &value).await.status, 401);
    assert!(own_tokens(&app, &user_token).await.is_empty());
    let again = call(
        &app,
        Method::POST,
        "/api/2.0/token/delete",
        Some(&user_token),
        Some(json!({"token_id": id})),
    )
    .await;
    databricks_error(&again, 404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn making_a_token_needs_can_use_or_admin_and_tokens_switched_on() {
    let (app, _clock) = app_with_clock().await;
    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;
    let refused = call(
        &app,
        Method::POST,
        "/api/2.0/token/create",
        Some(&plain_token),
        Some(json!({"comment": "no"})),
    )
    .await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
    assert!(own_tokens(&app, &plain_token).await.is_empty());
    // Through a group holding CAN_USE.
    let group = app
        .create_group("token-users", &[str_of(&plain, "id")])
        .await;
    let granted = call(
        &app,
        Method::PUT,
        "/api/2.0/permissions/authorization/tokens",
        Some(&app.token),
        Some(json!({"access_control_list": [
            {"group_name": str_of(&group, "displayName"), "permission_level": "CAN_USE"}
        ]})),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    create_token(&app, &plain_token, json!({})).await;
    // Switched off, nobody makes one, admins included; the plain user may not switch it on.
    let off = json!({"enableTokensConfig": "false"});
    let by_plain = call(
        &app,
        Method::PATCH,
        "/api/2.0/workspace-conf",
        Some(&plain_token),
        Some(off.clone()),
    )
    .await;
    databricks_error(&by_plain, 403, "PERMISSION_DENIED");
    let by_admin = call(
        &app,
        Method::PATCH,
        "/api/2.0/workspace-conf",
        Some(&app.token),
        Some(off),
    )
    .await;
    assert_eq!(by_admin.status, 200, "{}", by_admin.body);
    for token in [&plain_token, &app.token] {
        let refused = call(
            &app,
            Method::POST,
            "/api/2.0/token/create",
            Some(token),
            Some(json!({})),
        )
        .await;
        databricks_error(&refused, 403, "PERMISSION_DENIED");
    }
    let on = json!({"enableTokensConfig": "TRUE"});
    let reply = call(
        &app,
        Method::PATCH,
        "/api/2.0/workspace-conf",
        Some(&app.token),
        Some(on),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    create_token(&app, &app.token, json!({})).await;
}

#[tokio::test]
async fn workspace_conf_answers_strings_caps_lifetimes_and_refuses_unknown_keys_and_bad_values() {
    let (app, _clock) = app_with_clock().await;
    let conf = "/api/2.0/workspace-conf?keys=enableTokensConfig,maxTokenLifetimeDays";
    let read = call(&app, Method::GET, conf, Some(&app.token), None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(
        read.body,
        json!({"enableTokensConfig": "true", "maxTokenLifetimeDays": null})
    );
    let set = call(
        &app,
        Method::PATCH,
        "/api/2.0/workspace-conf",
        Some(&app.token),
        Some(json!({"maxTokenLifetimeDays": "1"})),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let read = call(&app, Method::GET, conf, Some(&app.token), None).await;
    assert_eq!(read.body["maxTokenLifetimeDays"], "1");
    // Longer than the maximum is refused; none asked is the maximum.
    let long = call(
        &app,
        Method::POST,
        "/api/2.0/token/create",
        Some(&app.token),
        Some(json!({"lifetime_seconds": DAY_SECONDS + 1})),
    )
    .await;
    databricks_error(&long, 400, "INVALID_PARAMETER_VALUE");
    let reply = call(
        &app,
        Method::POST,
        "/api/2.0/token/create",
        Some(&app.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let info = &reply.body["token_info"];
    assert_eq!(
        info["expiry_time"].as_i64().unwrap() - info["creation_time"].as_i64().unwrap(),
        DAY_SECONDS * 1000
    );
    // Unknown keys, values of the wrong type or out of range: refused, nothing changed.
    for body in [
        json!({"enableIpAccessLists": "true"}),
        json!({"maxTokenLifetimeDays": 5}),
        json!({"maxTokenLifetimeDays": "0"}),
        json!({"maxTokenLifetimeDays": "731"}),
        json!({"maxTokenLifetimeDays": "ninety"}),
        json!({"enableTokensConfig": "yes"}),
        json!({"enableTokensConfig": "false", "unknown": "x"}),
        json!(["maxTokenLifetimeDays"]),
    ] {
        let reply = call(
            &app,
            Method::PATCH,
            "/api/2.0/workspace-conf",
            Some(&app.token),
            Some(body.clone()),
        )
        .await;
        databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE");
    }
    let read = call(&app, Method::GET, conf, Some(&app.token), None).await;
    assert_eq!(
        read.body,
        json!({"enableTokensConfig": "true", "maxTokenLifetimeDays": "1"})
    );
    let unknown = call(
        &app,
        Method::GET,
        "/api/2.0/workspace-conf?keys=nope",
        Some(&app.token),
        None,
    )
    .await;
    databricks_error(&unknown, 400, "INVALID_PARAMETER_VALUE");
    // An empty value clears the maximum.
    let cleared = call(
        &app,
        Method::PATCH,
        "/api/2.0/workspace-conf",
        Some(&app.token),
        Some(json!({"maxTokenLifetimeDays": ""})),
    )
    .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    let read = call(&app, Method::GET, conf, Some(&app.token), None).await;
    assert_eq!(read.body["maxTokenLifetimeDays"], Value::Null);
}

#[tokio::test]
async fn bad_token_requests_get_databricks_errors_and_change_nothing() {
    let (app, _clock) = app_with_clock().await;
    let bad = [
        (json!({"lifetime_secs": 60}), "INVALID_PARAMETER_VALUE"),
        (json!({"lifetime_seconds": "60"}), "INVALID_PARAMETER_VALUE"),
        (json!({"lifetime_seconds": -1}), "INVALID_PARAMETER_VALUE"),
        (json!({"lifetime_seconds": 0}), "INVALID_PARAMETER_VALUE"),
        (
            json!({"lifetime_seconds": 731 * DAY_SECONDS}),
            "INVALID_PARAMETER_VALUE",
        ),
        (json!({"lifetime_seconds": 1.5}), "INVALID_PARAMETER_VALUE"),
        (json!({"comment": 7}), "INVALID_PARAMETER_VALUE"),
        (json!({"scopes": ["root"]}), "INVALID_PARAMETER_VALUE"),
        (
            json!({"scopes": ["scim", "read-only"]}),
            "INVALID_PARAMETER_VALUE",
        ),
        (json!({"scopes": "scim"}), "INVALID_PARAMETER_VALUE"),
        (json!([1]), "INVALID_PARAMETER_VALUE"),
    ];
    for (body, code) in bad {
        let reply = call(
            &app,
            Method::POST,
            "/api/2.0/token/create",
            Some(&app.token),
            Some(body.clone()),
        )
        .await;
        databricks_error(&reply, 400, code);
    }
    let malformed = read(
        app.request(Method::POST, "/api/2.0/token/create")
            .header("content-type", "application/json")
            .body("{\"comment\":")
            .send()
            .await
            .unwrap(),
    )
    .await;
    databricks_error(&malformed, 400, "MALFORMED_REQUEST");
    for (path, body) in [
        ("/api/2.0/token/delete", json!({})),
        ("/api/2.0/token/delete", json!({"token_id": 5})),
        (
            "/api/2.0/token/delete",
            json!({"token_id": "x", "extra": 1}),
        ),
        (
            "/api/2.0/token/rotate",
            json!({"token_id": "x", "lifetime_seconds": "a"}),
        ),
        ("/api/2.0/token-management/on-behalf-of/tokens", json!({})),
        (
            "/api/2.0/token-management/on-behalf-of/tokens",
            json!({"application_id": "a", "lifetime_seconds": -5}),
        ),
    ] {
        let reply = call(
            &app,
            Method::POST,
            path,
            Some(&app.token),
            Some(body.clone()),
        )
        .await;
        databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE");
    }
    assert!(own_tokens(&app, &app.token).await.is_empty());
    assert!(managed_tokens(&app, "").await.is_empty());
}

#[tokio::test]
async fn every_token_endpoint_refuses_missing_expired_foreign_other_workspace_and_unprivileged_credentials(
) {
    let (app, clock) = app_with_clock().await;
    let (_, user_token) = token_user(&app, "user@example.com").await;
    let (expiring, _) = create_token(&app, &user_token, json!({"lifetime_seconds": 60})).await;
    let (own_value, own_id) = create_token(
        &app,
        &user_token,
        json!({"lifetime_seconds": 7 * DAY_SECONDS}),
    )
    .await;
    advance(&clock, 61);
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let foreign_token = foreign.admin_token.expose().to_string();
    // A token made in a second workspace, by an admin assigned there.
    let second = call(
        &app,
        Method::POST,
        &format!("/api/2.0/accounts/{}/workspaces", app.account),
        Some(&app.token),
        Some(json!({"workspace_name": "second"})),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    let second_id = second.body["workspace_id"].as_i64().unwrap().to_string();
    let (elsewhere, _) = {
        let path = format!("/w/{second_id}/api/2.0/token/create");
        let reply = call(&app, Method::POST, &path, Some(&app.token), Some(json!({}))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        (str_of(&reply.body, "token_value").to_string(), ())
    };
    let endpoints: Vec<(Method, String, Option<Value>, bool)> = vec![
        // (method, path, body, open to any principal of the workspace)
        (
            Method::POST,
            "/api/2.0/token/create".into(),
            Some(json!({})),
            false,
        ),
        (Method::GET, "/api/2.0/token/list".into(), None, true),
        (
            Method::POST,
            "/api/2.0/token/delete".into(),
            Some(json!({"token_id": own_id})),
            true,
        ),
        (
            Method::POST,
            "/api/2.0/token/rotate".into(),
            Some(json!({"token_id": own_id})),
            true,
        ),
        (
            Method::GET,
            "/api/2.0/token-management/tokens".into(),
            None,
            false,
        ),
        (
            Method::GET,
            format!("/api/2.0/token-management/tokens/{own_id}"),
            None,
            false,
        ),
        (
            Method::DELETE,
            format!("/api/2.0/token-management/tokens/{own_id}"),
            None,
            false,
        ),
        (
            Method::POST,
            format!("/api/2.0/token-management/tokens/{own_id}/rotate"),
            None,
            false,
        ),
        (
            Method::POST,
            "/api/2.0/token-management/on-behalf-of/tokens".into(),
            Some(json!({"application_id": "x"})),
            false,
        ),
        (Method::GET, "/api/2.0/workspace-conf".into(), None, true),
        (
            Method::PATCH,
            "/api/2.0/workspace-conf".into(),
            Some(json!({"enableTokensConfig": "false"})),
            false,
        ),
    ];
    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;
    for (method, path, body, open) in &endpoints {
        let without = call(&app, method.clone(), path, None, body.clone()).await;
        databricks_error(&without, 401, "UNAUTHENTICATED");
        let expired = call(&app, method.clone(), path, Some(&expiring), body.clone()).await;
        databricks_error(&expired, 401, "UNAUTHENTICATED");
        // Another workspace's token is answered as one that does not exist.
        let other_workspace =
            call(&app, method.clone(), path, Some(&elsewhere), body.clone()).await;
        databricks_error(&other_workspace, 401, "UNAUTHENTICATED");
        assert_eq!(other_workspace.body["message"], without.body["message"]);
        // Another account's token does not reach this workspace.
        let foreign = call(
            &app,
            method.clone(),
            path,
            Some(&foreign_token),
            body.clone(),
        )
        .await;
        assert!(
            [403, 404].contains(&foreign.status),
            "{method} {path}: {} {}",
            foreign.status,
            foreign.body
        );
        if !open {
            let unprivileged =
                call(&app, method.clone(), path, Some(&plain_token), body.clone()).await;
            databricks_error(&unprivileged, 403, "PERMISSION_DENIED");
        }
    }
    // Nothing was changed by any of them: the user's token still works, the setting is on.
    assert_eq!(me(&app, &own_value).await.status, 200);
    let conf = call(
        &app,
        Method::GET,
        "/api/2.0/workspace-conf",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(conf.body["enableTokensConfig"], "true");
    // The other workspace's token works there, and nowhere else.
    let there = call(
        &app,
        Method::GET,
        &format!("/w/{second_id}/api/2.0/preview/scim/v2/Me"),
        Some(&elsewhere),
        None,
    )
    .await;
    assert_eq!(there.status, 200, "{}", there.body);
    let account_api = call(
        &app,
        Method::GET,
        &format!("/api/2.0/accounts/{}/scim/v2/Me", app.account),
        Some(&elsewhere),
        None,
    )
    .await;
    assert_eq!(account_api.status, 401, "{}", account_api.body);
    // The CLI's account-level token keeps working in both workspaces and on the account API.
    for path in [
        format!("/w/{second_id}/api/2.0/preview/scim/v2/Me"),
        "/api/2.0/preview/scim/v2/Me".to_string(),
        format!("/api/2.0/accounts/{}/scim/v2/Me", app.account),
    ] {
        assert_eq!(
            call(&app, Method::GET, &path, Some(&app.token), None)
                .await
                .status,
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn admins_list_filter_get_and_revoke_any_token_of_the_workspace() {
    let (app, _clock) = app_with_clock().await;
    let (user_id, user_token) = token_user(&app, "bea@example.com").await;
    let (user_value, user_token_id) =
        create_token(&app, &user_token, json!({"comment": "bea"})).await;
    let (_, admin_token_id) = create_token(&app, &app.token, json!({"comment": "admin"})).await;
    let admin_id = app.get("/Me").await.id();
    let mut all = vec![user_token_id.clone(), admin_token_id.clone()];
    all.sort();
    assert_eq!(managed_tokens(&app, "").await, all);
    assert_eq!(
        managed_tokens(&app, &format!("?created_by_id={user_id}")).await,
        vec![user_token_id.clone()]
    );
    assert_eq!(
        managed_tokens(&app, "?created_by_username=BEA@example.com").await,
        vec![user_token_id.clone()]
    );
    assert!(
        managed_tokens(&app, "?created_by_username=nobody@example.com")
            .await
            .is_empty()
    );
    let path = format!("/api/2.0/token-management/tokens/{user_token_id}");
    let got = call(&app, Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let info = &got.body["token_info"];
    assert_eq!(info["token_id"], user_token_id.as_str());
    assert_eq!(info["created_by_id"].as_u64().unwrap().to_string(), user_id);
    assert_eq!(info["owner_id"].as_u64().unwrap().to_string(), user_id);
    assert_eq!(info["created_by_username"], "bea@example.com");
    assert_eq!(info["comment"], "bea");
    assert!(info["workspace_id"].as_u64().is_some(), "{info}");
    assert_ne!(user_id, admin_id);
    // Revoked by the admin: refused at once, and gone.
    let deleted = call(&app, Method::DELETE, &path, Some(&app.token), None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(me(&app, &user_value).await.status, 401);
    let gone = call(&app, Method::GET, &path, Some(&app.token), None).await;
    databricks_error(&gone, 404, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(managed_tokens(&app, "").await, [admin_token_id]);
}

#[tokio::test]
async fn an_on_behalf_of_token_acts_as_its_service_principal() {
    let (app, _clock) = app_with_clock().await;
    let principal = app.create_service_principal("ci-robot").await;
    let application_id = str_of(&principal, "applicationId").to_string();
    let reply = call(
        &app,
        Method::POST,
        "/api/2.0/token-management/on-behalf-of/tokens",
        Some(&app.token),
        Some(json!({"application_id": application_id, "lifetime_seconds": 600, "comment": "ci"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let value = str_of(&reply.body, "token_value").to_string();
    let id = str_of(&reply.body["token_info"], "token_id").to_string();
    // Answered with the token management API's TokenInfo: whose it is and who made it.
    let made = &reply.body["token_info"];
    assert_eq!(
        made["owner_id"].as_u64().unwrap().to_string(),
        str_of(&principal, "id")
    );
    assert_eq!(made["created_by_username"], "admin@scimitar.local");
    assert_eq!(made["comment"], "ci");
    let acting = me(&app, &value).await;
    assert_eq!(acting.status, 200, "{}", acting.body);
    assert_eq!(acting.body["id"], principal["id"]);
    let got = call(
        &app,
        Method::GET,
        &format!("/api/2.0/token-management/tokens/{id}"),
        Some(&app.token),
        None,
    )
    .await;
    let info = &got.body["token_info"];
    assert_eq!(
        info["owner_id"].as_u64().unwrap().to_string(),
        str_of(&principal, "id")
    );
    assert_eq!(
        info["created_by_id"].as_u64().unwrap().to_string(),
        app.get("/Me").await.id()
    );
    let unknown = call(
        &app,
        Method::POST,
        "/api/2.0/token-management/on-behalf-of/tokens",
        Some(&app.token),
        Some(json!({"application_id": "00000000-0000-4000-8000-000000000000"})),
    )
    .await;
    databricks_error(&unknown, 404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn a_read_only_token_only_reads_and_a_scim_token_only_provisions() {
    let (app, _clock) = app_with_clock().await;
    let (read_only, _) = create_token(&app, &app.token, json!({"scopes": ["read-only"]})).await;
    let (scim, _) = create_token(&app, &app.token, json!({"scopes": ["scim"]})).await;
    let user = json!({"schemas": [USER_SCHEMA], "userName": "new@example.com"});
    let search = json!({"schemas": [SEARCH_REQUEST_SCHEMA], "filter": "userName pr"});
    // Read-only: reads anywhere, SCIM searches included; nothing else.
    for (method, path, body) in [
        (Method::GET, "/scim/v2/Users", None),
        (Method::POST, "/scim/v2/Users/.search", Some(search.clone())),
        (Method::GET, "/api/2.0/token/list", None),
        (Method::GET, "/api/2.1/unity-catalog/catalogs", None),
    ] {
        let reply = call(&app, method, path, Some(&read_only), body).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let refused = call(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(&read_only),
        Some(user.clone()),
    )
    .await;
    refused.assert_error(403, None);
    assert!(
        str_of(&refused.body, "detail").contains("read-only"),
        "{}",
        refused.body
    );
    for (method, path, body) in [
        (Method::POST, "/api/2.0/token/create", Some(json!({}))),
        (
            Method::PATCH,
            "/api/2.0/workspace-conf",
            Some(json!({"enableTokensConfig": "false"})),
        ),
        (
            Method::POST,
            "/api/2.1/unity-catalog/catalogs",
            Some(json!({"name": "main"})),
        ),
    ] {
        let reply = call(&app, method, path, Some(&read_only), body).await;
        databricks_error(&reply, 403, "PERMISSION_DENIED");
    }
    // SCIM only: every SCIM mount, reads and writes; nothing else.
    let created = call(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(&scim),
        Some(user),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let reply = call(
        &app,
        Method::GET,
        "/api/2.0/preview/scim/v2/Users",
        Some(&scim),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // An account's SCIM connector holds an account-level SCIM token, as the CLI makes them.
    let operator = app.services.act_as_admin(&app.account).await.unwrap();
    let admin = app.services.authorize_admin(&operator).await.unwrap();
    let request = scimitar_app::TokenRequest {
        scopes: vec!["scim".into()],
        ..Default::default()
    };
    let account_scim = app
        .services
        .create_account_token(&admin, operator.principal(), &request)
        .await
        .unwrap();
    let account_scim = account_scim.secret.expose().to_string();
    let groups = format!("/api/2.0/accounts/{}/scim/v2/Groups", app.account);
    let reply = call(&app, Method::GET, &groups, Some(&account_scim), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let workspaces = format!("/api/2.0/accounts/{}/workspaces", app.account);
    let reply = call(&app, Method::GET, &workspaces, Some(&account_scim), None).await;
    databricks_error(&reply, 403, "PERMISSION_DENIED");
    for (method, path) in [
        (Method::GET, "/api/2.0/token/list"),
        (Method::GET, "/api/2.1/unity-catalog/catalogs"),
        (Method::GET, "/api/2.0/permissions/authorization/tokens"),
    ] {
        let reply = call(&app, method, path, Some(&scim), None).await;
        databricks_error(&reply, 403, "PERMISSION_DENIED");
        assert!(
            str_of(&reply.body, "message").contains("SCIM"),
            "{}",
            reply.body
        );
    }
    // Addressed by `/w/{workspace_id}`, the API is what follows the prefix.
    let workspace = call(
        &app,
        Method::GET,
        "/.well-known/databricks-config",
        None,
        None,
    )
    .await;
    let prefix = format!("/w/{}", str_of(&workspace.body, "workspace_id"));
    let reply = call(
        &app,
        Method::GET,
        &format!("{prefix}/api/2.0/token/list"),
        Some(&scim),
        None,
    )
    .await;
    databricks_error(&reply, 403, "PERMISSION_DENIED");
    let reply = call(
        &app,
        Method::GET,
        &format!("{prefix}/scim/v2/Users"),
        Some(&scim),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = call(
        &app,
        Method::POST,
        &format!("{prefix}/scim/v2/Users/.search"),
        Some(&read_only),
        Some(search),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // A scope never widens its principal: a plain user's full token still cannot write SCIM.
    let plain = app.create_user("plain@example.com").await;
    let plain_token = app.token_for(str_of(&plain, "id")).await;
    let write = call(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(&plain_token),
        Some(json!({"schemas": [USER_SCHEMA], "userName": "x@example.com"})),
    )
    .await;
    write.assert_error(403, None);
}

#[tokio::test]
async fn a_rotated_token_works_through_the_overlap_and_is_refused_after_it() {
    let (app, clock) = app_with_clock().await;
    let (user_id, user_token) = token_user(&app, "cy@example.com").await;
    let (old, old_id) = create_token(
        &app,
        &user_token,
        json!({"lifetime_seconds": 30 * DAY_SECONDS, "comment": "ci", "scopes": ["scim"]}),
    )
    .await;
    let reply = call(
        &app,
        Method::POST,
        "/api/2.0/token/rotate",
        Some(&old),
        Some(json!({"token_id": old_id})),
    )
    .await;
    // A SCIM-only token may not rotate itself: the token API is not SCIM.
    databricks_error(&reply, 403, "PERMISSION_DENIED");
    let reply = call(
        &app,
        Method::POST,
        "/api/2.0/token/rotate",
        Some(&user_token),
        Some(json!({"token_id": old_id})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let new = str_of(&reply.body, "token_value").to_string();
    let info = &reply.body["token_info"];
    assert_ne!(info["token_id"], old_id.as_str());
    assert_eq!(info["comment"], "ci");
    assert_eq!(info["scopes"], json!(["scim"]));
    assert_eq!(
        info["expiry_time"].as_i64().unwrap() - info["creation_time"].as_i64().unwrap(),
        30 * DAY_SECONDS * 1000
    );
    let users = "/api/2.0/preview/scim/v2/Users";
    for token in [&old, &new] {
        let reply = call(&app, Method::GET, users, Some(token), None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!(own_tokens(&app, &user_token).await.len(), 2);
    advance(&clock, DAY_SECONDS - 1);
    assert_eq!(
        call(&app, Method::GET, users, Some(&old), None)
            .await
            .status,
        200
    );
    advance(&clock, 1);
    assert_eq!(
        call(&app, Method::GET, users, Some(&old), None)
            .await
            .status,
        401
    );
    let reply = call(&app, Method::GET, users, Some(&new), None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(own_tokens(&app, &user_token).await.len(), 1);
    advance(&clock, DAY_SECONDS);
    assert_eq!(
        call(&app, Method::GET, users, Some(&new), None)
            .await
            .status,
        200
    );
    // An admin is never handed a secret acting as a user.
    let new_id = str_of(info, "token_id").to_string();
    let refused = call(
        &app,
        Method::POST,
        &format!("/api/2.0/token-management/tokens/{new_id}/rotate"),
        Some(&app.token),
        None,
    )
    .await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
    assert_eq!(
        call(&app, Method::GET, users, Some(&new), None)
            .await
            .status,
        200
    );
    assert_ne!(user_id, app.get("/Me").await.id());
}

#[tokio::test]
async fn an_admin_rotates_a_service_principals_token_and_a_workspace_admin_never_reaches_an_account_admin(
) {
    let (app, clock) = app_with_clock().await;
    let robot = app.create_service_principal("robot").await;
    let obo = call(
        &app,
        Method::POST,
        "/api/2.0/token-management/on-behalf-of/tokens",
        Some(&app.token),
        Some(json!({"application_id": robot["applicationId"], "lifetime_seconds": 3600})),
    )
    .await;
    assert_eq!(obo.status, 200, "{}", obo.body);
    let old = str_of(&obo.body, "token_value").to_string();
    let id = str_of(&obo.body["token_info"], "token_id").to_string();
    let rotated = call(
        &app,
        Method::POST,
        &format!("/api/2.0/token-management/tokens/{id}/rotate"),
        Some(&app.token),
        Some(json!({"lifetime_seconds": 7 * DAY_SECONDS})),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = str_of(&rotated.body, "token_value").to_string();
    for token in [&old, &new] {
        assert_eq!(me(&app, token).await.body["id"], robot["id"]);
    }
    advance(&clock, DAY_SECONDS);
    assert_eq!(me(&app, &old).await.status, 401);
    assert_eq!(me(&app, &new).await.status, 200);
    // A workspace admin who is no account admin: a service principal that is an account
    // admin is out of its reach, for new tokens and rotations alike.
    let admins = app.system_group_id("admins").await;
    let boss = app.create_service_principal("boss").await;
    let joined = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "add", "path": "members", "value": [{"value": boss["id"]}]}]),
        )
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let workspace_admin = app.create_user("ws.admin@example.com").await;
    let workspace = call(
        &app,
        Method::GET,
        "/.well-known/databricks-config",
        None,
        None,
    )
    .await;
    let workspace = str_of(&workspace.body, "workspace_id").to_string();
    let assigned = call(
        &app,
        Method::PUT,
        &format!(
            "/api/2.0/accounts/{}/workspaces/{workspace}/permissionassignments/principals/{}",
            app.account,
            str_of(&workspace_admin, "id")
        ),
        Some(&app.token),
        Some(json!({"permissions": ["ADMIN"]})),
    )
    .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    let workspace_admin_token = app.token_for(str_of(&workspace_admin, "id")).await;
    let boss_token = call(
        &app,
        Method::POST,
        "/api/2.0/token-management/on-behalf-of/tokens",
        Some(&app.token),
        Some(json!({"application_id": boss["applicationId"]})),
    )
    .await;
    assert_eq!(boss_token.status, 200, "{}", boss_token.body);
    let boss_token_id = str_of(&boss_token.body["token_info"], "token_id").to_string();
    for (path, body) in [
        (
            "/api/2.0/token-management/on-behalf-of/tokens".to_string(),
            Some(json!({"application_id": boss["applicationId"]})),
        ),
        (
            format!("/api/2.0/token-management/tokens/{boss_token_id}/rotate"),
            None,
        ),
    ] {
        let reply = call(
            &app,
            Method::POST,
            &path,
            Some(&workspace_admin_token),
            body,
        )
        .await;
        databricks_error(&reply, 403, "PERMISSION_DENIED");
    }
    // It still manages the workspace's other service principals.
    let reply = call(
        &app,
        Method::POST,
        &format!(
            "/api/2.0/token-management/tokens/{}/rotate",
            str_of(&rotated.body["token_info"], "token_id")
        ),
        Some(&workspace_admin_token),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn the_day_a_token_was_last_used_is_recorded_by_the_node_in_batches() {
    let (app, _clock) = app_with_clock().await;
    let (value, id) = create_token(&app, &app.token, json!({})).await;
    let path = format!("/api/2.0/token-management/tokens/{id}");
    let unused = call(&app, Method::GET, &path, Some(&app.token), None).await;
    assert!(
        unused.body["token_info"].get("last_used_day").is_none(),
        "{}",
        unused.body
    );
    for _ in 0..3 {
        assert_eq!(me(&app, &value).await.status, 200);
    }
    // Nothing is written per request; the node records what it noted when it flushes.
    let before = call(&app, Method::GET, &path, Some(&app.token), None).await;
    assert!(
        before.body["token_info"].get("last_used_day").is_none(),
        "{}",
        before.body
    );
    app.services.record_token_uses().await;
    let used = call(&app, Method::GET, &path, Some(&app.token), None).await;
    let day = used.body["token_info"]["last_used_day"].as_i64().unwrap();
    let now = app.services.clock().now().as_micros() / 1000;
    assert_eq!(day, now - now.rem_euclid(DAY_SECONDS * 1000));
}

#[tokio::test]
async fn deactivating_a_principal_revokes_its_tokens_and_reactivating_it_revives_none() {
    let (app, _clock) = app_with_clock().await;
    let (user_id, user_token) = token_user(&app, "dee@example.com").await;
    let (personal, _) = create_token(&app, &user_token, json!({})).await;
    assert_eq!(me(&app, &personal).await.status, 200);
    let path = format!("/Users/{user_id}");
    let off = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    for token in [&personal, &user_token] {
        assert_eq!(me(&app, token).await.status, 401);
    }
    let on = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "active", "value": true}]),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    for token in [&personal, &user_token] {
        assert_eq!(me(&app, token).await.status, 401, "an old token came back");
    }
    // A token made after reactivation works.
    let fresh = app.token_for(&user_id).await;
    assert_eq!(me(&app, &fresh).await.status, 200);
}

/// The node that did not revoke a token refuses it too: at once given the revocation's
/// change token, and within its follower interval without it. The token was cached there
/// first, so a stale cache would let it through.
#[tokio::test]
async fn a_token_revoked_or_cut_short_on_one_node_is_refused_by_the_other() {
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on(database, &url).await;
    let other = node_on(&url).await;
    let on_other = |token: &str, read_after: Option<&str>| {
        let (token, read_after) = (token.to_string(), read_after.map(str::to_string));
        let (app, other) = (&app, &other);
        async move { other.me_status(app, &token, read_after.as_deref()).await }
    };
    let (first, first_id) = create_token(&app, &app.token, json!({})).await;
    let (second, second_id) = create_token(&app, &app.token, json!({})).await;
    assert_eq!(on_other(&first, None).await, 200);
    assert_eq!(on_other(&second, None).await, 200);
    // Revoked through the first node: refused by the other with the change token.
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/api/2.0/token-management/tokens/{first_id}"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(on_other(&first, Some(&change_token(&revoked))).await, 401);
    // Cut short by a rotation without overlap (as `scimitar token rotate --overlap 0`): the
    // other node, which never made the change, refuses it once it follows the log.
    let operator = app.services.act_as_admin(&app.account).await.unwrap();
    let admin = app.services.authorize_admin(&operator).await.unwrap();
    let rotated = app
        .services
        .clone()
        .with_rotation_overlap(std::time::Duration::ZERO)
        .rotate_account_token(&admin, &second_id, None)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while on_other(&second, None).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the other node kept the token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(on_other(rotated.secret.expose(), None).await, 200);
    // A principal deactivated through the first node: its tokens, cached on the other, are
    // refused there, and stay refused when it is reactivated.
    let (user_id, user_token) = token_user(&app, "eve@example.com").await;
    let (personal, _) = create_token(&app, &user_token, json!({})).await;
    assert_eq!(on_other(&personal, None).await, 200);
    let path = format!("/Users/{user_id}");
    let off = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(on_other(&personal, Some(&change_token(&off))).await, 401);
    let on = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "active", "value": true}]),
        )
        .await;
    assert_eq!(on_other(&personal, Some(&change_token(&on))).await, 401);
}
