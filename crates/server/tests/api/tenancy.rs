//! Accounts and workspaces: the Account API's workspaces and workspace assignment, workspace
//! addressing (`/w/{id}`, host names, the default), and isolation: a principal reaches a
//! workspace only by assignment, and a credential of one workspace or account reads and
//! writes nothing of another.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

fn workspaces_path(app: &TestApp) -> String {
    format!("/api/2.0/accounts/{}/workspaces", app.account)
}

/// Makes a workspace through the Account API as the bootstrap admin; returns its id.
async fn new_workspace(app: &TestApp, name: &str, deployment_name: Option<&str>) -> String {
    let mut body = json!({"workspace_name": name});
    if let Some(deployment_name) = deployment_name {
        body["deployment_name"] = json!(deployment_name);
    }
    let reply = call(
        app,
        Method::POST,
        &workspaces_path(app),
        Some(&app.token),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["workspace_status"], "RUNNING");
    reply.body["workspace_id"].as_i64().unwrap().to_string()
}

async fn assign(app: &TestApp, workspace: &str, principal: &str, permissions: Value) -> Reply {
    call(
        app,
        Method::PUT,
        &format!(
            "{}/{workspace}/permissionassignments/principals/{principal}",
            workspaces_path(app)
        ),
        Some(&app.token),
        Some(json!({"permissions": permissions})),
    )
    .await
}

/// A user made at the account level (in no workspace); returns its id.
async fn account_user(app: &TestApp, user_name: &str) -> String {
    let reply = call(
        app,
        Method::POST,
        &format!("/api/2.0/accounts/{}/scim/v2/Users", app.account),
        Some(&app.token),
        Some(json!({"userName": user_name})),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.id()
}

async fn account_group(app: &TestApp, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let reply = call(
        app,
        Method::POST,
        &format!("/api/2.0/accounts/{}/scim/v2/Groups", app.account),
        Some(&app.token),
        Some(json!({"displayName": name, "members": members})),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.id()
}

async fn default_workspace_id(app: &TestApp) -> String {
    let reply = call(
        app,
        Method::GET,
        "/.well-known/databricks-config",
        None,
        None,
    )
    .await;
    reply.body["workspace_id"].as_str().unwrap().to_string()
}

fn databricks_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error_code"], code, "{}", reply.body);
}

#[tokio::test]
async fn workspaces_are_made_listed_renamed_and_deleted_through_the_account_api() {
    let app = spawn_app().await;
    let first = default_workspace_id(&app).await;
    let second = new_workspace(&app, "Sales", Some("sales")).await;

    let listed = call(
        &app,
        Method::GET,
        &workspaces_path(&app),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(listed.status, 200);
    let ids: Vec<String> = listed
        .body
        .as_array()
        .expect("a bare array, as the SDK reads it")
        .iter()
        .map(|workspace| workspace["workspace_id"].as_i64().unwrap().to_string())
        .collect();
    assert_eq!(ids, [first.clone(), second.clone()]);

    let path = format!("{}/{second}", workspaces_path(&app));
    let got = call(&app, Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(got.body["workspace_name"], "Sales");
    assert_eq!(got.body["deployment_name"], "sales");
    assert_eq!(got.body["account_id"], app.account.as_str());
    let served_at = format!("{}/w/{second}", app.address);
    assert_eq!(got.body["workspace_url"], served_at.as_str());
    let config = call(
        &app,
        Method::GET,
        "/w/{second}/.well-known/databricks-config"
            .replace("{second}", &second)
            .as_str(),
        None,
        None,
    )
    .await;
    assert_eq!(config.body["workspace_url"], served_at.as_str());

    // With an update mask, only the fields it names change.
    let renamed = call(
        &app,
        Method::PATCH,
        &format!("{path}?update_mask=workspace_name"),
        Some(&app.token),
        Some(json!({"workspace_name": "Sales EU", "deployment_name": "ignored"})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["workspace_name"], "Sales EU");
    assert_eq!(renamed.body["deployment_name"], "sales");

    // Bad input: a clear 400 or 409 in Databricks' shape, and nothing made.
    for (body, status, code) in [
        (json!({}), 400, "INVALID_PARAMETER_VALUE"),
        (
            json!({"workspace_name": ""}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            json!({"workspace_name": "x", "deployment_name": "Not A Label"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            json!({"workspace_name": "x", "deployment_name": "sales"}),
            409,
            "RESOURCE_ALREADY_EXISTS",
        ),
        (json!({"workspace_name": 7}), 400, "INVALID_PARAMETER_VALUE"),
    ] {
        let reply = call(
            &app,
            Method::POST,
            &workspaces_path(&app),
            Some(&app.token),
            Some(body),
        )
        .await;
        databricks_error(&reply, status, code);
    }
    let reply = call(
        &app,
        Method::GET,
        &format!("{}/not-a-number", workspaces_path(&app)),
        Some(&app.token),
        None,
    )
    .await;
    databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE");
    let listed = call(
        &app,
        Method::GET,
        &workspaces_path(&app),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);

    let deleted = call(&app, Method::DELETE, &path, Some(&app.token), None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let gone = call(&app, Method::GET, &path, Some(&app.token), None).await;
    databricks_error(&gone, 404, "RESOURCE_DOES_NOT_EXIST");
    let gone = call(
        &app,
        Method::GET,
        &format!("/w/{second}/scim/v2/Me"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[tokio::test]
async fn the_account_api_refuses_missing_expired_foreign_and_unprivileged_credentials() {
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on(database, &url).await;
    // An account admin's token that has expired: no API makes one, so it is written directly.
    let admin_id = app.get("/Me").await.id();
    let expired = format!(
        "{}{}",
        scimitar_domain::credentials::TOKEN_PREFIX,
        "e".repeat(64)
    );
    let store = scimitar_store::open(&url).await.unwrap();
    store
        .apply(
            &app.account,
            scimitar_store::Change::CreateToken {
                token: scimitar_domain::credentials::Token {
                    id: "00000000-0000-4000-8000-00000000e014".into(),
                    account: app.account.clone(),
                    principal: scimitar_domain::PrincipalId::new(&admin_id),
                    scope: scimitar_domain::credentials::TokenScope::AllApis,
                    comment: None,
                    created: scimitar_domain::Timestamp::from_micros(1),
                    expires: Some(scimitar_domain::Timestamp::from_micros(2)),
                    workspace: None,
                    created_by: None,
                },
                digest: scimitar_domain::credentials::token_digest(&expired),
            },
        )
        .await
        .unwrap();
    let workspace = new_workspace(&app, "B", None).await;
    let user = account_user(&app, "plain@example.com").await;
    let user_token = app.token_for(&user).await;
    // A workspace admin is no account admin.
    let workspace_admin = account_user(&app, "ws.admin@example.com").await;
    assert_eq!(
        assign(&app, &workspace, &workspace_admin, json!(["ADMIN"]))
            .await
            .status,
        200
    );
    let workspace_admin_token = app.token_for(&workspace_admin).await;
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let foreign_token = foreign.admin_token.expose().to_string();
    let base = workspaces_path(&app);
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, base.clone(), None),
        (
            Method::POST,
            base.clone(),
            Some(json!({"workspace_name": "evil"})),
        ),
        (Method::GET, format!("{base}/{workspace}"), None),
        (
            Method::PATCH,
            format!("{base}/{workspace}"),
            Some(json!({"workspace_name": "evil"})),
        ),
        (Method::DELETE, format!("{base}/{workspace}"), None),
        (
            Method::GET,
            format!("{base}/{workspace}/permissionassignments"),
            None,
        ),
        (
            Method::GET,
            format!("{base}/{workspace}/permissionassignments/permissions"),
            None,
        ),
        (
            Method::PUT,
            format!("{base}/{workspace}/permissionassignments/principals/{user}"),
            Some(json!({"permissions": ["ADMIN"]})),
        ),
        (
            Method::DELETE,
            format!("{base}/{workspace}/permissionassignments/principals/{workspace_admin}"),
            None,
        ),
    ];
    for (method, path, body) in &routes {
        let missing = call(&app, method.clone(), path, None, body.clone()).await;
        databricks_error(&missing, 401, "UNAUTHENTICATED");
        let expired_reply = call(&app, method.clone(), path, Some(&expired), body.clone()).await;
        assert_eq!(expired_reply.body, missing.body, "{method} {path}");
        assert_eq!(expired_reply.status, 401);
        for token in [&user_token, &workspace_admin_token, &foreign_token] {
            let refused = call(&app, method.clone(), path, Some(token), body.clone()).await;
            databricks_error(&refused, 403, "PERMISSION_DENIED");
            assert!(
                !refused.body.to_string().contains("\"B\""),
                "nothing of the workspace in a refusal: {}",
                refused.body
            );
        }
    }
    let expired_in_workspace = call(
        &app,
        Method::GET,
        &format!("/w/{workspace}/scim/v2/Users"),
        Some(&expired),
        None,
    )
    .await;
    expired_in_workspace.assert_error(401, None);
    // Nothing changed.
    let listed = call(&app, Method::GET, &base, Some(&app.token), None).await;
    let names: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|workspace| workspace["workspace_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "B"]);
    let assignments = call(
        &app,
        Method::GET,
        &format!("{base}/{workspace}/permissionassignments"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(
        assignments.body["permission_assignments"],
        json!([{
            "principal": {
                "principal_id": workspace_admin.parse::<i64>().unwrap(),
                "display_name": "ws.admin@example.com",
                "user_name": "ws.admin@example.com",
            },
            "permissions": ["ADMIN"],
        }])
    );
    // The other account's admin manages its own workspaces, and cannot see this one.
    let foreign_base = format!("/api/2.0/accounts/{}/workspaces", foreign.account.id);
    let own = call(&app, Method::GET, &foreign_base, Some(&foreign_token), None).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body.as_array().unwrap().len(), 1);
    let theirs = call(
        &app,
        Method::GET,
        &format!("{foreign_base}/{workspace}"),
        Some(&foreign_token),
        None,
    )
    .await;
    databricks_error(&theirs, 404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn a_group_assignment_brings_its_members_into_the_workspace_and_no_one_else() {
    let app = spawn_app().await;
    let workspace = new_workspace(&app, "B", None).await;
    let member = account_user(&app, "member@example.com").await;
    let outsider = account_user(&app, "outsider@example.com").await;
    let inner = account_group(&app, "inner", &[&member]).await;
    let outer = account_group(&app, "analysts", &[&inner]).await;
    let (member_token, outsider_token) =
        (app.token_for(&member).await, app.token_for(&outsider).await);
    let at = |path: &str| format!("/w/{workspace}/scim/v2{path}");

    // Before the assignment, neither may enter.
    let refused = call(&app, Method::GET, &at("/Me"), Some(&member_token), None).await;
    refused.assert_error(403, None);
    let assigned = assign(&app, &workspace, &outer, json!(["USER"])).await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    assert_eq!(assigned.body["permissions"], json!(["USER"]));
    assert_eq!(assigned.body["principal"]["group_name"], "analysts");

    // A member through nested groups enters and sees the workspace's directory only.
    let me = call(&app, Method::GET, &at("/Me"), Some(&member_token), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let users = call(&app, Method::GET, &at("/Users"), Some(&member_token), None).await;
    assert_eq!(names_of(&users, "userName"), ["member@example.com"]);
    let groups = call(&app, Method::GET, &at("/Groups"), Some(&member_token), None).await;
    let mut group_names = names_of(&groups, "displayName");
    group_names.sort();
    assert_eq!(group_names, ["admins", "analysts", "inner", "users"]);
    let hidden = call(
        &app,
        Method::GET,
        &at(&format!("/Users/{outsider}")),
        Some(&member_token),
        None,
    )
    .await;
    hidden.assert_error(404, None);
    // The account admin, through the workspace, sees the same directory.
    let seen = call(
        &app,
        Method::GET,
        &at(&format!("/Users/{outsider}")),
        Some(&app.token),
        None,
    )
    .await;
    seen.assert_error(404, None);
    let filtered = call(
        &app,
        Method::GET,
        &at("/Users?filter=userName%20eq%20%22outsider@example.com%22"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(filtered.body["totalResults"], 0, "{}", filtered.body);

    // The unassigned user, and this workspace's member at the default workspace, are refused.
    for (path, token) in [
        (at("/Me"), &outsider_token),
        ("/scim/v2/Me".to_string(), &member_token),
        ("/api/2.0/preview/scim/v2/Users".to_string(), &member_token),
        ("/api/2.1/unity-catalog/catalogs".to_string(), &member_token),
    ] {
        let refused = call(&app, Method::GET, &path, Some(token), None).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
        assert!(!refused.body.to_string().contains("member@example.com"));
    }

    // An account admin unassigns; the member is out at once.
    let removed = call(
        &app,
        Method::DELETE,
        &format!(
            "{}/{workspace}/permissionassignments/principals/{outer}",
            workspaces_path(&app)
        ),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    let refused = call(&app, Method::GET, &at("/Me"), Some(&member_token), None).await;
    refused.assert_error(403, None);

    // A PUT with no known permission removes the assignment, as in Databricks; an unknown
    // principal or a built-in group is refused.
    assert_eq!(
        assign(&app, &workspace, &member, json!(["USER"]))
            .await
            .status,
        200
    );
    assert_eq!(
        assign(&app, &workspace, &member, json!(["user"]))
            .await
            .status,
        200
    );
    let refused = call(&app, Method::GET, &at("/Me"), Some(&member_token), None).await;
    refused.assert_error(403, None);
    databricks_error(
        &assign(&app, &workspace, "9999999999999999", json!(["USER"])).await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );
    let users_group = app.system_group_id("users").await;
    databricks_error(
        &assign(&app, &workspace, &users_group, json!(["USER"])).await,
        400,
        "INVALID_PARAMETER_VALUE",
    );
}

#[tokio::test]
async fn a_workspace_admin_administers_its_workspace_and_not_the_account() {
    let app = spawn_app().await;
    let workspace = new_workspace(&app, "B", None).await;
    let admin = account_user(&app, "b.admin@example.com").await;
    assert_eq!(
        assign(&app, &workspace, &admin, json!(["ADMIN", "USER"]))
            .await
            .status,
        200
    );
    let token = app.token_for(&admin).await;
    let at = |path: &str| format!("/w/{workspace}/scim/v2{path}");

    // It creates users in its workspace, which lands them there and nowhere else.
    let created = call(
        &app,
        Method::POST,
        &at("/Users"),
        Some(&token),
        Some(json!({"userName": "new.hire@example.com"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let location = format!(
        "{}/w/{workspace}/scim/v2/Users/{}",
        app.address,
        created.id()
    );
    assert_eq!(created.header("location"), Some(location.as_str()));
    assert_eq!(
        call(
            &app,
            Method::GET,
            &at(&format!("/Users/{}", created.id())),
            Some(&token),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.get(&format!("/Users/{}", created.id())).await.status,
        404
    );
    let patched = call(
        &app,
        Method::PATCH,
        &at(&format!("/Users/{}", created.id())),
        Some(&token),
        Some(patch_op(
            json!([{"op": "replace", "path": "displayName", "value": "New Hire"}]),
        )),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);

    // It cannot reach the account's admins, delete principals, or act elsewhere.
    let admins = app.system_group_id("admins").await;
    let escalate = call(
        &app,
        Method::PATCH,
        &at(&format!("/Groups/{admins}")),
        Some(&token),
        Some(patch_op(
            json!([{"op": "add", "path": "members", "value": [{"value": admin}]}]),
        )),
    )
    .await;
    escalate.assert_error(403, None);
    let bootstrap_admin = app.services.initial_admin(&app.account).await.unwrap();
    assert_eq!(
        assign(
            &app,
            &workspace,
            bootstrap_admin.id.as_str(),
            json!(["USER"])
        )
        .await
        .status,
        200
    );
    let deactivate = call(
        &app,
        Method::PATCH,
        &at(&format!("/Users/{}", bootstrap_admin.id)),
        Some(&token),
        Some(patch_op(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
    )
    .await;
    deactivate.assert_error(403, None);
    let delete = call(
        &app,
        Method::DELETE,
        &at(&format!("/Users/{}", created.id())),
        Some(&token),
        None,
    )
    .await;
    delete.assert_error(403, None);
    assert_eq!(
        call(&app, Method::GET, "/scim/v2/Me", Some(&token), None)
            .await
            .status,
        403,
        "not assigned to the default workspace"
    );
    let admins_now = app.member_ids(&admins).await;
    assert!(!admins_now.contains(&admin), "{admins_now:?}");
    // The account admin, through the workspace, still deletes.
    let deleted = call(
        &app,
        Method::DELETE,
        &at(&format!("/Users/{}", created.id())),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
}

#[tokio::test]
async fn a_workspace_is_addressed_by_path_by_host_name_and_by_the_configured_default() {
    let app = spawn_app_with_workspaces(scimitar_server::WorkspaceSettings {
        default_workspace: None,
        workspace_domain: Some("ws.example.test".into()),
    })
    .await;
    let first = default_workspace_id(&app).await;
    let second = new_workspace(&app, "B", Some("bravo")).await;
    // The discovery document under a prefix names that workspace.
    let config = call(
        &app,
        Method::GET,
        &format!("/w/{second}/.well-known/databricks-config"),
        None,
        None,
    )
    .await;
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(config.body["workspace_id"], second.as_str());
    assert_eq!(config.body["account_id"], app.account.as_str());
    // By host name.
    let by_host = read(
        app.client
            .get(format!("{}/.well-known/databricks-config", app.address))
            .header("host", "bravo.ws.example.test")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        by_host.body["workspace_id"],
        second.as_str(),
        "{}",
        by_host.body
    );
    let unknown_host = read(
        app.client
            .get(format!("{}/scim/v2/Me", app.address))
            .header("host", "nowhere.ws.example.test")
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    unknown_host.assert_error(404, None);
    // Unprefixed paths keep the workspace the server started with, though there are two now.
    assert_eq!(default_workspace_id(&app).await, first);
    assert_eq!(app.get("/Me").await.status, 200);
    // A workspace that does not exist, or a malformed prefix, is 404.
    let missing = call(
        &app,
        Method::GET,
        "/w/4242/scim/v2/Me",
        Some(&app.token),
        None,
    )
    .await;
    missing.assert_error(404, None);
    let malformed = call(
        &app,
        Method::GET,
        "/w/abc/scim/v2/Me",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(malformed.status, 404);

    // Configured explicitly, the default is that workspace from the start.
    let configured = spawn_app_with_workspaces(scimitar_server::WorkspaceSettings {
        default_workspace: Some(scimitar_domain::WorkspaceId::new("4242")),
        workspace_domain: None,
    })
    .await;
    let reply = configured.get("/Me").await;
    reply.assert_error(404, None);
}

#[tokio::test]
async fn an_account_made_later_with_an_older_creation_time_changes_nothing_for_others() {
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on(database, &url).await;
    let first = default_workspace_id(&app).await;
    let user = app.create_user("stays@example.com").await;
    // An import writes an account as it was, older than the one serving.
    let mut export = Vec::new();
    let other = scimitar_domain::AccountId::new("00000000-0000-4000-8000-000000000001");
    let lines = [
        r#"{"type":"scimitar-export","version":2}"#.to_string(),
        format!(r#"{{"type":"account","id":"{other}","name":"older","created":0}}"#),
        format!(
            r#"{{"type":"workspace","account":"{other}","id":"1","name":"older","created":0}}"#
        ),
    ];
    for line in lines {
        export.extend_from_slice(line.as_bytes());
        export.push(b'\n');
    }
    let store = scimitar_store::open(&url).await.unwrap();
    let imported =
        scimitar_store::transfer::import(&*store, &mut export.as_slice(), 10, &mut |_| {}).await;
    assert!(imported.is_ok(), "{imported:?}");
    app.services.catch_up().await.unwrap();
    assert_eq!(default_workspace_id(&app).await, first);
    let reply = app.get(&format!("/Users/{}", str_of(&user, "id"))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let listed = app.get("/Users").await;
    assert!(names_of(&listed, "userName").contains(&"stays@example.com".to_string()));
    let config = call(
        &app,
        Method::GET,
        "/.well-known/databricks-config",
        None,
        None,
    )
    .await;
    assert_eq!(config.body["account_id"], app.account.as_str());
}

#[tokio::test]
async fn a_workspace_renders_only_its_own_members_and_groups() {
    let app = spawn_app().await;
    let workspace = new_workspace(&app, "B", None).await;
    let inside = account_user(&app, "inside@example.com").await;
    let outside = account_user(&app, "outside@example.com").await;
    let elsewhere = account_group(&app, "elsewhere", &[&inside, &outside]).await;
    assert_eq!(
        assign(&app, &workspace, &inside, json!(["USER"]))
            .await
            .status,
        200
    );
    let at = |path: &str| format!("/w/{workspace}/scim/v2{path}");
    let users_group = app.system_group_id("users").await;

    // Read by the account admin through the workspace: the built-in `users` group lists the
    // workspace's users only, and a user's groups leave out groups the workspace lacks.
    let users = call(
        &app,
        Method::GET,
        &at(&format!("/Groups/{users_group}")),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(users.status, 200, "{}", users.body);
    let members = member_ids_of(&users.body);
    assert!(members.contains(&inside), "{members:?}");
    assert!(!members.contains(&outside), "{members:?}");
    let user = call(
        &app,
        Method::GET,
        &at(&format!("/Users/{inside}")),
        Some(&app.token),
        None,
    )
    .await;
    let groups: Vec<&str> = user.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["display"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["users"], "{}", user.body);
    assert!(!user.body.to_string().contains(&elsewhere));
    // Through the account API, everything is shown.
    let whole = call(
        &app,
        Method::GET,
        &format!(
            "/api/2.0/accounts/{}/scim/v2/Groups/{users_group}",
            app.account
        ),
        Some(&app.token),
        None,
    )
    .await;
    assert!(
        member_ids_of(&whole.body).contains(&outside),
        "{}",
        whole.body
    );
}
