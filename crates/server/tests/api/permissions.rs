//! The workspace object Permissions API: PUT replaces, PATCH adds or changes, GET shows direct
//! and inherited entries in the SDK's `ObjectPermissions` shape, `permissionLevels` lists each
//! type's levels, and only admins and managers may change an ACL.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

pub const PERMISSIONS: &str = "/api/2.0/permissions";

/// A Permissions API request with the given token.
pub async fn permissions(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}{PERMISSIONS}/{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("sent")).await
}

/// The permissions a document lists for the principal named `name`.
pub fn permissions_of<'a>(document: &'a Value, name: &str) -> Vec<&'a Value> {
    document["access_control_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| {
            ["user_name", "group_name", "service_principal_name"]
                .iter()
                .any(|field| entry[*field] == json!(name))
        })
        .flat_map(|entry| entry["all_permissions"].as_array().into_iter().flatten())
        .collect()
}

fn direct_level(document: &Value, name: &str) -> Option<String> {
    permissions_of(document, name)
        .into_iter()
        .find(|permission| permission["inherited"] == json!(false))
        .and_then(|permission| permission["permission_level"].as_str().map(str::to_string))
}

fn acl(entries: &[(&str, &str, &str)]) -> Value {
    let list: Vec<Value> = entries
        .iter()
        .map(|(field, name, level)| json!({ *field: name, "permission_level": level }))
        .collect();
    json!({ "access_control_list": list })
}

#[tokio::test]
async fn put_replaces_a_jobs_acl_and_get_reads_it_back_in_the_sdk_shape() {
    let app = spawn_app().await;
    app.create_user("alice@example.com").await;
    app.create_group("analysts", &[]).await;
    let body = acl(&[
        ("user_name", "alice@example.com", "IS_OWNER"),
        ("group_name", "analysts", "CAN_VIEW"),
    ]);
    let put = permissions(&app, Method::PUT, "jobs/123", &app.token, Some(body)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["object_id"], json!("/jobs/123"));
    assert_eq!(put.body["object_type"], json!("job"));
    assert_eq!(
        direct_level(&put.body, "alice@example.com").as_deref(),
        Some("IS_OWNER")
    );
    assert_eq!(
        direct_level(&put.body, "analysts").as_deref(),
        Some("CAN_VIEW")
    );
    let admins = permissions_of(&put.body, "admins");
    assert_eq!(
        admins,
        vec![
            &json!({"permission_level": "CAN_MANAGE", "inherited": true, "inherited_from_object": ["/jobs/"]})
        ]
    );

    let get = permissions(&app, Method::GET, "jobs/123", &app.token, None).await;
    assert_eq!(get.status, 200, "{}", get.body);
    assert_eq!(get.body, put.body);

    // A second PUT replaces everything that was there.
    let body = acl(&[("group_name", "analysts", "CAN_MANAGE_RUN")]);
    let put = permissions(&app, Method::PUT, "jobs/123", &app.token, Some(body)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(direct_level(&put.body, "alice@example.com"), None);
    assert_eq!(
        direct_level(&put.body, "analysts").as_deref(),
        Some("CAN_MANAGE_RUN")
    );
}

#[tokio::test]
async fn patch_adds_entries_changes_levels_and_keeps_one_owner() {
    let app = spawn_app().await;
    app.create_user("alice@example.com").await;
    app.create_user("bob@example.com").await;
    let sp = app.create_service_principal("etl").await;
    let application_id = sp["applicationId"].as_str().unwrap().to_string();
    let body = acl(&[("user_name", "alice@example.com", "IS_OWNER")]);
    let put = permissions(&app, Method::PUT, "pipelines/p1", &app.token, Some(body)).await;
    assert_eq!(put.status, 200, "{}", put.body);

    let body = acl(&[
        ("user_name", "bob@example.com", "IS_OWNER"),
        ("service_principal_name", &application_id, "CAN_RUN"),
    ]);
    let patch = permissions(&app, Method::PATCH, "pipelines/p1", &app.token, Some(body)).await;
    assert_eq!(patch.status, 200, "{}", patch.body);
    // The new owner replaces the old one: an object has one IS_OWNER.
    assert_eq!(direct_level(&patch.body, "alice@example.com"), None);
    assert_eq!(
        direct_level(&patch.body, "bob@example.com").as_deref(),
        Some("IS_OWNER")
    );
    assert_eq!(
        direct_level(&patch.body, &application_id).as_deref(),
        Some("CAN_RUN")
    );

    // PATCH lowers a level as readily as it raises one.
    let body = acl(&[("service_principal_name", &application_id, "CAN_VIEW")]);
    let patch = permissions(&app, Method::PATCH, "pipelines/p1", &app.token, Some(body)).await;
    assert_eq!(
        direct_level(&patch.body, &application_id).as_deref(),
        Some("CAN_VIEW")
    );
    assert_eq!(
        direct_level(&patch.body, "bob@example.com").as_deref(),
        Some("IS_OWNER")
    );
}

#[tokio::test]
async fn permission_levels_are_listed_per_object_type() {
    let app = spawn_app().await;
    let cases = [
        (
            "jobs/1",
            vec!["CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"],
        ),
        (
            "clusters/c1",
            vec!["CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"],
        ),
        (
            "sql/warehouses/w1",
            vec![
                "CAN_VIEW",
                "CAN_MONITOR",
                "CAN_USE",
                "CAN_MANAGE",
                "IS_OWNER",
            ],
        ),
        ("authorization/tokens", vec!["CAN_USE", "CAN_MANAGE"]),
        (
            "notebooks/n1",
            vec!["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"],
        ),
        (
            "serving-endpoints/e1",
            vec!["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"],
        ),
    ];
    for (path, expected) in cases {
        let reply = permissions(
            &app,
            Method::GET,
            &format!("{path}/permissionLevels"),
            &app.token,
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let levels: Vec<&str> = reply.body["permission_levels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|level| level["permission_level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, expected, "{path}");
    }
}

#[tokio::test]
async fn warehouses_answer_on_both_paths_and_tokens_on_authorization() {
    let app = spawn_app().await;
    let users = "users";
    let body = acl(&[("group_name", users, "CAN_USE")]);
    let put = permissions(
        &app,
        Method::PUT,
        "sql/warehouses/w1",
        &app.token,
        Some(body),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["object_id"], json!("/sql/warehouses/w1"));
    let get = permissions(&app, Method::GET, "warehouses/w1", &app.token, None).await;
    assert_eq!(get.body, put.body);

    let body = acl(&[("group_name", users, "CAN_USE")]);
    let put = permissions(
        &app,
        Method::PUT,
        "authorization/tokens",
        &app.token,
        Some(body),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["object_id"], json!("/authorization/tokens"));
    assert_eq!(direct_level(&put.body, users).as_deref(), Some("CAN_USE"));
}

#[tokio::test]
async fn rules_the_engine_refuses_are_client_errors_in_databricks_shape() {
    let app = spawn_app().await;
    app.create_user("alice@example.com").await;
    app.create_group("analysts", &[]).await;
    let cases = [
        (
            "jobs/1",
            acl(&[("group_name", "analysts", "IS_OWNER")]),
            "a group cannot own a job",
        ),
        (
            "jobs/1",
            acl(&[("user_name", "nobody@example.com", "CAN_VIEW")]),
            "an unknown user",
        ),
        (
            "jobs/1",
            acl(&[("user_name", "alice@example.com", "CAN_ATTACH_TO")]),
            "a cluster level on a job",
        ),
        (
            "jobs/1",
            acl(&[("group_name", "admins", "CAN_VIEW")]),
            "admins below CAN_MANAGE",
        ),
        (
            "authorization/tokens",
            acl(&[("user_name", "alice@example.com", "CAN_MANAGE")]),
            "token management for a non-admin",
        ),
        (
            "jobs/1",
            json!({"access_control_list": [{"user_name": "alice@example.com"}]}),
            "no level",
        ),
        ("jobs/1", json!({"access_control_list": 7}), "not a list"),
    ];
    for (path, body, why) in cases {
        let reply = permissions(&app, Method::PUT, path, &app.token, Some(body)).await;
        assert_eq!(reply.status, 400, "{why}: {}", reply.body);
        assert_eq!(
            reply.body["error_code"],
            json!("INVALID_PARAMETER_VALUE"),
            "{why}"
        );
        assert!(reply.body["message"].is_string(), "{why}");
    }
    let reply = permissions(&app, Method::GET, "widgets/1", &app.token, None).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.body["error_code"], json!("RESOURCE_DOES_NOT_EXIST"));
    let reply = permissions(&app, Method::GET, "jobs/1", "not-a-token", None).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.body["error_code"], json!("UNAUTHENTICATED"));
    // Nothing refused was written.
    let reply = permissions(&app, Method::GET, "jobs/1", &app.token, None).await;
    assert_eq!(direct_level(&reply.body, "alice@example.com"), None);
}

#[tokio::test]
async fn only_admins_and_managers_may_change_an_acl() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let alice_token = app.token_for(alice["id"].as_str().unwrap()).await;
    let bob_token = app.token_for(bob["id"].as_str().unwrap()).await;
    let body = acl(&[
        ("user_name", "alice@example.com", "CAN_VIEW"),
        ("user_name", "bob@example.com", "IS_OWNER"),
    ]);
    let put = permissions(&app, Method::PUT, "jobs/7", &app.token, Some(body)).await;
    assert_eq!(put.status, 200, "{}", put.body);

    // A viewer may read the ACL but not change it.
    let get = permissions(&app, Method::GET, "jobs/7", &alice_token, None).await;
    assert_eq!(get.status, 200, "{}", get.body);
    let body = acl(&[("user_name", "alice@example.com", "CAN_MANAGE")]);
    let refused = permissions(
        &app,
        Method::PATCH,
        "jobs/7",
        &alice_token,
        Some(body.clone()),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body["error_code"], json!("PERMISSION_DENIED"));
    let refused = permissions(
        &app,
        Method::PUT,
        "jobs/7",
        &alice_token,
        Some(body.clone()),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    // Someone with no level at all may not even read it.
    let carol = app.create_user("carol@example.com").await;
    let carol_token = app.token_for(carol["id"].as_str().unwrap()).await;
    let refused = permissions(&app, Method::GET, "jobs/7", &carol_token, None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // The owner may, and the change shows at once.
    let granted = permissions(&app, Method::PATCH, "jobs/7", &bob_token, Some(body)).await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(
        direct_level(&granted.body, "alice@example.com").as_deref(),
        Some("CAN_MANAGE")
    );
    // Now a manager, alice may change it herself.
    let body = acl(&[("user_name", "carol@example.com", "CAN_VIEW")]);
    let changed = permissions(&app, Method::PATCH, "jobs/7", &alice_token, Some(body)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    // An object nobody has named yet is the admins' to register.
    let body = acl(&[("user_name", "alice@example.com", "CAN_MANAGE")]);
    let refused = permissions(&app, Method::PUT, "clusters/new", &alice_token, Some(body)).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
}

#[tokio::test]
async fn wrongly_typed_entries_are_refused_by_their_path_and_write_nothing() {
    let app = spawn_app().await;
    app.create_user("alice@example.com").await;
    // Each body starts with an entry that is fine on its own, so a refusal that let part of
    // the list through would show in the ACL read back.
    let alice = json!({"user_name": "alice@example.com", "permission_level": "CAN_VIEW"});
    let cases = [
        (
            json!({"access_control_list": [alice, {"user_name": 7, "permission_level": "CAN_VIEW"}]}),
            "access_control_list[1].user_name: invalid type: integer `7`, expected a string",
        ),
        (
            json!({"access_control_list": [alice, {"group_name": "users", "permission_level": ["CAN_VIEW"]}]}),
            "access_control_list[1].permission_level: invalid type: sequence, expected a string",
        ),
        (
            json!({"access_control_list": [alice, {"user_name": "alice@example.com", "group_name": "users", "permission_level": "CAN_VIEW"}]}),
            "access_control_list[1]: give exactly one of user_name, group_name and \
             service_principal_name",
        ),
        (
            json!({"access_control_list": [alice, {"group_name": "users"}]}),
            "access_control_list[1]: permission_level is missing",
        ),
        (
            json!({"access_control_list": [alice, {"group_name": "users", "permission_level": "CAN_FLY"}]}),
            "access_control_list[1].permission_level: `CAN_FLY` is not a permission level",
        ),
        (
            json!({"access_control_list": [alice, "users"]}),
            "access_control_list[1]: invalid type: string \"users\", expected an object",
        ),
        (
            json!({"access_control_list": alice}),
            "access_control_list: invalid type: map, expected a sequence",
        ),
        (json!([alice]), "the request body must be a JSON object"),
    ];
    for method in [Method::PUT, Method::PATCH] {
        for (body, message) in &cases {
            let reply = permissions(
                &app,
                method.clone(),
                "jobs/1",
                &app.token,
                Some(body.clone()),
            )
            .await;
            assert_eq!(reply.status, 400, "{method} {body}: {}", reply.body);
            assert_eq!(
                reply.body["error_code"],
                json!("INVALID_PARAMETER_VALUE"),
                "{method} {body}"
            );
            assert_eq!(reply.body["message"], json!(message), "{method} {body}");
        }
    }
    let reply = permissions(&app, Method::GET, "jobs/1", &app.token, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(direct_level(&reply.body, "alice@example.com"), None);
    assert_eq!(direct_level(&reply.body, "users"), None);
}
