//! Who may change and read the directory, on every SCIM mount. Admins (active, direct members
//! of `admins`) change users, groups and service principals; anyone else is refused with a 403
//! and nothing is written. Non-admins read a limited view of others (ids and names), on a
//! workspace's API only, and themselves whole through `/Me`.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The SCIM mount points: generic, Databricks workspace, Databricks account.
fn mounts(app: &TestApp) -> Vec<String> {
    vec![
        "/scim/v2".to_string(),
        "/api/2.0/preview/scim/v2".to_string(),
        format!("/api/2.0/accounts/{}/scim/v2", app.account),
    ]
}

/// A request to `mount` + `path` with `token`.
async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    mount: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}{mount}{path}", app.address))
        .bearer_auth(token)
        .header("content-type", "application/scim+json");
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.unwrap()).await
}

/// A user who is not an admin, and a token for them.
async fn non_admin(app: &TestApp, user_name: &str) -> (String, String) {
    let user = app.create_user(user_name).await;
    let id = user["id"].as_str().unwrap().to_string();
    let token = app.token_for(&id).await;
    (id, token)
}

/// The directory as an admin sees it: every resource of every kind, whole.
async fn directory(app: &TestApp) -> Vec<Value> {
    let mut everything = Vec::new();
    for endpoint in ["/Users", "/Groups", "/ServicePrincipals"] {
        let reply = app.get_with(endpoint, &[("count", "1000")]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        everything.extend(reply.resources().iter().cloned());
    }
    everything
}

fn assert_refused(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 403, "{what}: {}", reply.body);
    reply.assert_error(403, None);
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("only admins"),
        "{what}: the refusal says why: {detail}"
    );
}

#[tokio::test]
async fn a_non_admin_cannot_create_replace_patch_or_delete_anything_on_any_mount() {
    let app = spawn_app().await;
    let (_, token) = non_admin(&app, "nora@example.com").await;
    let target_user = app.create_user("target@example.com").await;
    let target_group = app.create_group("target-group", &[]).await;
    let target_sp = app.create_service_principal("target-sp").await;
    let admins = app.system_group_id("admins").await;
    let before = directory(&app).await;

    let resources = [
        (
            "/Users",
            target_user["id"].as_str().unwrap().to_string(),
            json!({"schemas": [USER_SCHEMA], "userName": "intruder@example.com"}),
        ),
        (
            "/Groups",
            target_group["id"].as_str().unwrap().to_string(),
            json!({"schemas": [GROUP_SCHEMA], "displayName": "intruders"}),
        ),
        (
            "/Groups",
            admins.clone(),
            json!({"schemas": [GROUP_SCHEMA], "displayName": "admins"}),
        ),
        (
            "/ServicePrincipals",
            target_sp["id"].as_str().unwrap().to_string(),
            json!({"schemas": [SERVICE_PRINCIPAL_SCHEMA], "displayName": "intruder-sp"}),
        ),
    ];
    for mount in mounts(&app) {
        for (endpoint, id, document) in &resources {
            let created = send(
                &app,
                &token,
                Method::POST,
                &mount,
                endpoint,
                Some(document.clone()),
            )
            .await;
            assert_refused(&created, &format!("POST {mount}{endpoint}"));
            let path = format!("{endpoint}/{id}");
            let replaced = send(
                &app,
                &token,
                Method::PUT,
                &mount,
                &path,
                Some(document.clone()),
            )
            .await;
            assert_refused(&replaced, &format!("PUT {mount}{path}"));
            let patched = send(
                &app,
                &token,
                Method::PATCH,
                &mount,
                &path,
                Some(patch_op(json!([
                    {"op": "replace", "path": "displayName", "value": "renamed"},
                ]))),
            )
            .await;
            assert_refused(&patched, &format!("PATCH {mount}{path}"));
            let deleted = send(&app, &token, Method::DELETE, &mount, &path, None).await;
            assert_refused(&deleted, &format!("DELETE {mount}{path}"));
        }
    }
    // In particular, a non-admin cannot make itself an admin.
    let joined = send(
        &app,
        &token,
        Method::PATCH,
        SCIM,
        &format!("/Groups/{admins}"),
        Some(patch_op(json!([
            {"op": "add", "path": "members", "value": [{"value": target_user["id"]}]},
        ]))),
    )
    .await;
    assert_refused(&joined, "joining admins");
    assert_eq!(directory(&app).await, before, "nothing was written");
}

#[tokio::test]
async fn a_non_admin_bulk_request_is_refused_whole_and_writes_nothing() {
    let app = spawn_app().await;
    let (_, token) = non_admin(&app, "nora@example.com").await;
    let target = app.create_user("target@example.com").await;
    let target_id = target["id"].as_str().unwrap();
    let before = directory(&app).await;
    let operations = [
        json!({"method": "POST", "path": "/Users", "bulkId": "u1",
               "data": {"schemas": [USER_SCHEMA], "userName": "intruder@example.com"}}),
        json!({"method": "POST", "path": "/Groups", "bulkId": "g1",
               "data": {"schemas": [GROUP_SCHEMA], "displayName": "intruders"}}),
        json!({"method": "PUT", "path": format!("/Users/{target_id}"),
               "data": {"schemas": [USER_SCHEMA], "userName": "target@example.com", "active": false}}),
        json!({"method": "PATCH", "path": format!("/Users/{target_id}"),
               "data": patch_op(json!([{"op": "replace", "path": "active", "value": false}]))}),
        json!({"method": "DELETE", "path": format!("/Users/{target_id}")}),
    ];
    for mount in mounts(&app) {
        // Each method alone, and all of them in one request.
        let mut requests: Vec<Vec<Value>> = operations.iter().map(|op| vec![op.clone()]).collect();
        requests.push(operations.to_vec());
        for batch in requests {
            let reply = send(
                &app,
                &token,
                Method::POST,
                &mount,
                "/Bulk",
                Some(json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": batch})),
            )
            .await;
            assert_refused(&reply, &format!("{mount}/Bulk with {batch:?}"));
        }
    }
    assert_eq!(directory(&app).await, before, "nothing was written");
}

#[tokio::test]
async fn an_admin_token_stops_writing_with_the_request_after_its_principal_leaves_admins() {
    let app = spawn_app().await;
    let (deputy, token) = non_admin(&app, "deputy@example.com").await;
    let admins = app.system_group_id("admins").await;
    let member = |id: &str| json!([{"op": "add", "path": "members", "value": [{"value": id}]}]);
    let joined = app
        .patch_ops(&format!("/Groups/{admins}"), member(&deputy))
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);

    let user = |name: &str| json!({"schemas": [USER_SCHEMA], "userName": name});
    let created = send(
        &app,
        &token,
        Method::POST,
        SCIM,
        "/Users",
        Some(user("first@example.com")),
    )
    .await;
    assert_eq!(created.status, 201, "an admin writes: {}", created.body);

    let removed = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{deputy}\"]")}]),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    let refused = send(
        &app,
        &token,
        Method::POST,
        SCIM,
        "/Users",
        Some(user("second@example.com")),
    )
    .await;
    assert_refused(&refused, "a former admin's write");
    // Nor can it put itself back.
    let rejoined = send(
        &app,
        &token,
        Method::PATCH,
        SCIM,
        &format!("/Groups/{admins}"),
        Some(patch_op(member(&deputy))),
    )
    .await;
    assert_refused(&rejoined, "a former admin rejoining admins");
    assert!(!app.member_ids(&admins).await.contains(&deputy));
    let second = app
        .get_with(
            "/Users",
            &[("filter", "userName eq \"second@example.com\"")],
        )
        .await;
    assert_eq!(second.total(), 0, "{}", second.body);
}

#[tokio::test]
async fn a_non_admin_reads_others_as_ids_and_names_and_itself_whole() {
    let app = spawn_app().await;
    let (nora, token) = non_admin(&app, "nora@example.com").await;
    let target = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "target@example.com",
                   "displayName": "Target", "externalId": "ext-1",
                   "emails": [{"value": "target@example.com", "type": "work"}]}),
        )
        .await;
    let target_id = target.id();
    app.create_group("team", &[&target_id]).await;
    let sp = app.create_service_principal("robot").await;

    for mount in ["/scim/v2", "/api/2.0/preview/scim/v2"] {
        let one = send(
            &app,
            &token,
            Method::GET,
            mount,
            &format!("/Users/{target_id}"),
            None,
        )
        .await;
        assert_eq!(one.status, 200, "{}", one.body);
        let mut keys: Vec<&str> = one
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            ["displayName", "id", "schemas", "userName"],
            "{}",
            one.body
        );
        assert_eq!(one.body["userName"], json!("target@example.com"));

        let users = send(&app, &token, Method::GET, mount, "/Users", None).await;
        assert_eq!(users.status, 200, "{}", users.body);
        for resource in users.resources() {
            if resource["id"] == json!(nora) {
                // Itself, whole.
                assert_eq!(resource["active"], json!(true), "{resource}");
                assert!(resource.get("meta").is_some(), "{resource}");
            } else {
                assert!(resource.get("emails").is_none(), "{resource}");
                assert!(resource.get("active").is_none(), "{resource}");
                assert!(resource.get("externalId").is_none(), "{resource}");
                assert!(resource.get("groups").is_none(), "{resource}");
            }
        }
        let groups = send(&app, &token, Method::GET, mount, "/Groups", None).await;
        assert_eq!(groups.status, 200, "{}", groups.body);
        for group in groups.resources() {
            assert!(group.get("members").is_none(), "{group}");
            assert!(group["displayName"].is_string(), "{group}");
        }
        let robots = send(&app, &token, Method::GET, mount, "/ServicePrincipals", None).await;
        let robot = robots
            .resources()
            .iter()
            .find(|robot| robot["id"] == sp["id"])
            .unwrap()
            .clone();
        assert!(robot["applicationId"].is_string(), "{robot}");
        assert!(robot.get("active").is_none(), "{robot}");

        // Searching by what the view shows works; by anything hidden it is refused, so a
        // hidden value cannot be found out by searching for it.
        let by_name = send(
            &app,
            &token,
            Method::GET,
            mount,
            "/Users?filter=userName%20eq%20%22target@example.com%22",
            None,
        )
        .await;
        assert_eq!(by_name.total(), 1, "{}", by_name.body);
        for hidden in [
            "emails.value%20eq%20%22target@example.com%22",
            "externalId%20eq%20%22ext-1%22",
            "active%20eq%20false",
            "emails%5Btype%20eq%20%22work%22%5D",
            "userName%20pr%20and%20not%20(externalId%20pr)",
        ] {
            let probe = send(
                &app,
                &token,
                Method::GET,
                mount,
                &format!("/Users?filter={hidden}"),
                None,
            )
            .await;
            assert_eq!(probe.status, 403, "{hidden}: {}", probe.body);
            probe.assert_error(403, None);
        }
        let sorted = send(
            &app,
            &token,
            Method::GET,
            mount,
            "/Users?sortBy=emails.value",
            None,
        )
        .await;
        assert_eq!(sorted.status, 403, "{}", sorted.body);

        let me = send(&app, &token, Method::GET, mount, "/Me", None).await;
        assert_eq!(me.status, 200, "{}", me.body);
        assert_eq!(me.body["id"], json!(nora));
        assert_eq!(me.body["active"], json!(true));
    }
}

#[tokio::test]
async fn the_account_api_is_for_admins_except_me() {
    let app = spawn_app().await;
    let (nora, token) = non_admin(&app, "nora@example.com").await;
    let target = app.create_user("target@example.com").await;
    let account = format!("/api/2.0/accounts/{}/scim/v2", app.account);
    for path in [
        "/Users".to_string(),
        format!("/Users/{}", target["id"].as_str().unwrap()),
        "/Groups".to_string(),
        "/ServicePrincipals".to_string(),
    ] {
        let reply = send(&app, &token, Method::GET, &account, &path, None).await;
        assert_refused(&reply, &format!("GET {account}{path}"));
    }
    let searched = send(
        &app,
        &token,
        Method::POST,
        &account,
        "/.search",
        Some(json!({"schemas": [SEARCH_REQUEST_SCHEMA]})),
    )
    .await;
    assert_refused(&searched, "account-wide search");
    let me = send(&app, &token, Method::GET, &account, "/Me", None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["id"], json!(nora));
    // The admin reads everything there.
    let users = send(&app, &app.token, Method::GET, &account, "/Users", None).await;
    assert_eq!(users.status, 200, "{}", users.body);
    assert!(users.total() >= 3, "{}", users.body);
}

#[tokio::test]
async fn a_service_principal_in_admins_is_an_admin_and_one_outside_is_not() {
    let app = spawn_app().await;
    let robot = app.create_service_principal("robot").await;
    let robot_id = robot["id"].as_str().unwrap().to_string();
    let token = app.token_for(&robot_id).await;
    let user = json!({"schemas": [USER_SCHEMA], "userName": "made-by-robot@example.com"});
    let refused = send(
        &app,
        &token,
        Method::POST,
        SCIM,
        "/Users",
        Some(user.clone()),
    )
    .await;
    assert_refused(&refused, "a service principal outside admins");

    let admins = app.system_group_id("admins").await;
    let joined = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "add", "path": "members", "value": [{"value": robot_id}]}]),
        )
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let created = send(&app, &token, Method::POST, SCIM, "/Users", Some(user)).await;
    assert_eq!(created.status, 201, "{}", created.body);
}
