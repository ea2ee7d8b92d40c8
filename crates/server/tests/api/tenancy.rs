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

/// The workspace's `admins` follows `ADMIN` assignment: in the workspace, `admins` lists the
/// principals assigned `ADMIN` there, and such a principal lists
/// `admins` among its groups; in another workspace, and through the account API, neither.
#[tokio::test]
async fn a_workspace_admins_group_follows_admin_assignment() {
    let app = spawn_app().await;
    let (one, two) = (
        new_workspace(&app, "one", None).await,
        new_workspace(&app, "two", None).await,
    );
    let ann = account_user(&app, "ann@example.com").await;
    let bob = account_user(&app, "bob@example.com").await;
    let team = account_group(&app, "stewards", &[&bob]).await;
    for (workspace, principal, permission) in [
        (&one, &ann, "ADMIN"),
        (&two, &ann, "USER"),
        (&one, &team, "ADMIN"),
        (&two, &team, "USER"),
    ] {
        let reply = assign(&app, workspace, principal, json!([permission])).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let admins = app.system_group_id("admins").await;
    let get = |path: String| {
        let app = &app;
        async move { call(app, Method::GET, &path, Some(&app.token), None).await }
    };
    let group_names = |body: &Value| -> Vec<(String, String)> {
        body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|group| {
                (
                    group["display"].as_str().unwrap().to_string(),
                    group["type"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };

    let in_one = get(format!("/w/{one}/scim/v2/Groups/{admins}")).await;
    assert_eq!(in_one.status, 200, "{}", in_one.body);
    let members = member_ids_of(&in_one.body);
    assert!(
        members.contains(&ann) && members.contains(&team),
        "{members:?}"
    );
    assert!(
        !members.contains(&bob),
        "a member of an ADMIN group is not listed itself"
    );
    let ann_in_one = get(format!("/w/{one}/scim/v2/Users/{ann}")).await;
    assert!(
        group_names(&ann_in_one.body).contains(&("admins".into(), "direct".into())),
        "{}",
        ann_in_one.body
    );
    let bob_in_one = get(format!("/w/{one}/scim/v2/Users/{bob}")).await;
    assert!(
        group_names(&bob_in_one.body).contains(&("admins".into(), "indirect".into())),
        "{}",
        bob_in_one.body
    );

    let in_two = get(format!("/w/{two}/scim/v2/Groups/{admins}")).await;
    let members = member_ids_of(&in_two.body);
    assert!(
        !members.contains(&ann) && !members.contains(&team),
        "{members:?}"
    );
    let ann_in_two = get(format!("/w/{two}/scim/v2/Users/{ann}")).await;
    assert!(
        !group_names(&ann_in_two.body)
            .iter()
            .any(|(name, _)| name == "admins"),
        "{}",
        ann_in_two.body
    );
    let account_view = get(format!(
        "/api/2.0/accounts/{}/scim/v2/Groups/{admins}",
        app.account
    ))
    .await;
    assert!(!member_ids_of(&account_view.body).contains(&ann));

    // Taking the assignment back takes `admins` back with it.
    assert_eq!(assign(&app, &one, &ann, json!(["USER"])).await.status, 200);
    let after = get(format!("/w/{one}/scim/v2/Groups/{admins}")).await;
    assert!(!member_ids_of(&after.body).contains(&ann), "{}", after.body);
}

// ----- entitlements per workspace ------------------------------------------------------------

/// The entitlement values a SCIM document shows (none when it has no `entitlements`).
fn entitlement_values(document: &Value) -> Vec<String> {
    document["entitlements"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|value| value["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `GET {prefix}/api/2.0/access/check` for `principal` and `entitlement`, as the admin:
/// whether it is allowed.
async fn holds_in(app: &TestApp, prefix: &str, principal: &str, entitlement: &str) -> bool {
    let reply = call(
        app,
        Method::GET,
        &format!("{prefix}/api/2.0/access/check?principal={principal}&entitlement={entitlement}"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["allowed"].as_bool().unwrap()
}

#[tokio::test]
async fn entitlements_are_per_workspace_read_and_written_through_each_workspaces_scim_api() {
    let app = spawn_app().await;
    let a = new_workspace(&app, "A", None).await;
    let b = new_workspace(&app, "B", None).await;
    let user = account_user(&app, "ent@example.com").await;
    for workspace in [&a, &b] {
        assert_eq!(
            assign(&app, workspace, &user, json!(["USER"])).await.status,
            200
        );
    }
    let in_a = format!("/w/{a}/api/2.0/preview/scim/v2/Users/{user}");
    let in_b = format!("/w/{b}/api/2.0/preview/scim/v2/Users/{user}");
    let on_account = format!("/api/2.0/accounts/{}/scim/v2/Users/{user}", app.account);
    let before = call(&app, Method::GET, &in_a, Some(&app.token), None).await;
    assert_eq!(before.status, 200, "{}", before.body);

    // Granted through A's SCIM API: A shows it, B does not, the account API shows none.
    let patched = call(
        &app,
        Method::PATCH,
        &in_a,
        Some(&app.token),
        Some(patch_op(json!([
            {"op": "add", "path": "entitlements", "value": [{"value": "allow-cluster-create"}]}
        ]))),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(entitlement_values(&patched.body), ["allow-cluster-create"]);
    assert_ne!(
        patched.body["meta"]["version"], before.body["meta"]["version"],
        "the version moves when a workspace's entitlements change"
    );
    let got = call(&app, Method::GET, &in_a, Some(&app.token), None).await;
    assert_eq!(entitlement_values(&got.body), ["allow-cluster-create"]);
    let got = call(&app, Method::GET, &in_b, Some(&app.token), None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(entitlement_values(&got.body).is_empty(), "{}", got.body);
    let got = call(&app, Method::GET, &on_account, Some(&app.token), None).await;
    assert_eq!(got.body.get("entitlements"), None, "{}", got.body);
    assert!(holds_in(&app, &format!("/w/{a}"), &user, "allow-cluster-create").await);
    assert!(!holds_in(&app, &format!("/w/{b}"), &user, "allow-cluster-create").await);

    // A filter on entitlements reads the workspace's own.
    let filter = "entitlements.value eq \"allow-cluster-create\"";
    for (workspace, expected) in [(&a, 1), (&b, 0)] {
        let listed = call(
            &app,
            Method::GET,
            &format!(
                "/w/{workspace}/api/2.0/preview/scim/v2/Users?filter={}",
                filter.replace(' ', "%20").replace('"', "%22")
            ),
            Some(&app.token),
            None,
        )
        .await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        assert_eq!(listed.total(), expected, "in {workspace}: {}", listed.body);
    }

    // A PUT in B without entitlements leaves A's as they are.
    let put = call(
        &app,
        Method::PUT,
        &in_b,
        Some(&app.token),
        Some(
            json!({"schemas": [USER_SCHEMA], "userName": "ent@example.com", "displayName": "Ent"}),
        ),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let got = call(&app, Method::GET, &in_a, Some(&app.token), None).await;
    assert_eq!(entitlement_values(&got.body), ["allow-cluster-create"]);
    assert_eq!(got.body["displayName"], "Ent");

    // A replace in B of one value, by a filtered path, changes B's alone.
    let replaced = call(
        &app,
        Method::PATCH,
        &in_b,
        Some(&app.token),
        Some(patch_op(json!([
            {"op": "add", "path": "entitlements", "value": [{"value": "workspace-consume"}]},
            {"op": "remove", "path": "entitlements[value eq \"workspace-consume\"]"},
            {"op": "add", "path": "entitlements", "value": [{"value": "allow-instance-pool-create"}]}
        ]))),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        entitlement_values(&replaced.body),
        ["allow-instance-pool-create"]
    );
    let got = call(&app, Method::GET, &in_a, Some(&app.token), None).await;
    assert_eq!(entitlement_values(&got.body), ["allow-cluster-create"]);

    // A Bulk request in B writes B's entitlements alone too.
    let bulk = call(
        &app,
        Method::POST,
        &format!("/w/{b}/api/2.0/preview/scim/v2/Bulk"),
        Some(&app.token),
        Some(json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [
            {"method": "PATCH", "path": format!("/Users/{user}"), "data": patch_op(json!([
                {"op": "add", "path": "entitlements", "value": [{"value": "workspace-consume"}]}
            ]))}
        ]})),
    )
    .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_eq!(bulk.body["Operations"][0]["status"], "200", "{}", bulk.body);
    let got = call(&app, Method::GET, &in_b, Some(&app.token), None).await;
    assert_eq!(
        entitlement_values(&got.body),
        ["allow-instance-pool-create", "workspace-consume"]
    );
    let got = call(&app, Method::GET, &in_a, Some(&app.token), None).await;
    assert_eq!(entitlement_values(&got.body), ["allow-cluster-create"]);

    // The account API names entitlements in vain: they are a workspace's, so it keeps none.
    let account_version = call(&app, Method::GET, &on_account, Some(&app.token), None)
        .await
        .body["meta"]["version"]
        .clone();
    let ignored = call(
        &app,
        Method::PATCH,
        &on_account,
        Some(&app.token),
        Some(patch_op(json!([
            {"op": "add", "path": "entitlements", "value": [{"value": "workspace-access"}]}
        ]))),
    )
    .await;
    assert_eq!(ignored.status, 200, "{}", ignored.body);
    assert_eq!(ignored.body.get("entitlements"), None, "{}", ignored.body);
    assert_eq!(ignored.body["meta"]["version"], account_version);
    for (path, expected) in [
        (&in_a, vec!["allow-cluster-create"]),
        (
            &in_b,
            vec!["allow-instance-pool-create", "workspace-consume"],
        ),
    ] {
        let got = call(&app, Method::GET, path, Some(&app.token), None).await;
        assert_eq!(entitlement_values(&got.body), expected, "{path}");
    }
}

#[tokio::test]
async fn a_groups_entitlement_in_one_workspace_reaches_its_members_there_only() {
    let app = spawn_app().await;
    let a = new_workspace(&app, "A", None).await;
    let b = new_workspace(&app, "B", None).await;
    let user = account_user(&app, "member@example.com").await;
    let outsider = account_user(&app, "outsider@example.com").await;
    let group = account_group(&app, "pool-makers", &[&user]).await;
    for workspace in [&a, &b] {
        assert_eq!(
            assign(&app, workspace, &group, json!(["USER"]))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        assign(&app, &b, &outsider, json!(["USER"])).await.status,
        200
    );
    let patched = call(
        &app,
        Method::PATCH,
        &format!("/w/{b}/scim/v2/Groups/{group}"),
        Some(&app.token),
        Some(patch_op(json!([
            {"op": "add", "path": "entitlements", "value": [{"value": "allow-instance-pool-create"}]}
        ]))),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let in_b = format!("/w/{b}");
    let in_a = format!("/w/{a}");
    assert!(holds_in(&app, &in_b, &user, "allow-instance-pool-create").await);
    assert!(!holds_in(&app, &in_a, &user, "allow-instance-pool-create").await);
    assert!(!holds_in(&app, &in_b, &outsider, "allow-instance-pool-create").await);
    let group_in_a = call(
        &app,
        Method::GET,
        &format!("/w/{a}/scim/v2/Groups/{group}"),
        Some(&app.token),
        None,
    )
    .await;
    assert!(
        entitlement_values(&group_in_a.body).is_empty(),
        "{}",
        group_in_a.body
    );

    // `who` in each workspace: B lists the member, A does not.
    for (prefix, expected) in [(&in_b, true), (&in_a, false)] {
        let who = call(
            &app,
            Method::GET,
            &format!("{prefix}/api/2.0/access/who?entitlement=allow-instance-pool-create"),
            Some(&app.token),
            None,
        )
        .await;
        assert_eq!(who.status, 200, "{}", who.body);
        let listed = who.body.to_string().contains("member@example.com");
        assert_eq!(listed, expected, "{prefix}: {}", who.body);
    }
}

#[tokio::test]
async fn a_workspace_made_later_gives_its_users_group_the_default_entitlements() {
    let app = spawn_app().await;
    let users = app.system_group_id("users").await;
    // The default workspace's `users` loses one; a workspace made afterwards starts whole.
    let reply = app
        .patch_ops(
            &format!("/Groups/{users}"),
            json!([{"op": "remove", "path": "entitlements[value eq \"databricks-sql-access\"]"}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let later = new_workspace(&app, "Later", None).await;
    let got = call(
        &app,
        Method::GET,
        &format!("/w/{later}/api/2.0/preview/scim/v2/Groups/{users}"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        entitlement_values(&got.body),
        ["workspace-access", "databricks-sql-access"]
    );
    assert_eq!(
        entitlement_values(&app.get(&format!("/Groups/{users}")).await.body),
        ["workspace-access"]
    );
    let user = account_user(&app, "late@example.com").await;
    assert_eq!(
        assign(&app, &later, &user, json!(["USER"])).await.status,
        200
    );
    let prefix = format!("/w/{later}");
    assert!(holds_in(&app, &prefix, &user, "databricks-sql-access").await);
    // A workspace it is not assigned to does not know it: asked there, it is not found.
    let elsewhere = new_workspace(&app, "Elsewhere", None).await;
    let asked = call(
        &app,
        Method::GET,
        &format!(
            "/w/{elsewhere}/api/2.0/access/check?principal={user}&entitlement=workspace-access"
        ),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(asked.status, 404, "{}", asked.body);
}

#[tokio::test]
async fn access_questions_from_a_workspace_know_only_its_directory_and_its_objects() {
    let app = spawn_app().await;
    let home = default_workspace_id(&app).await;
    let other = new_workspace(&app, "other", None).await;
    let insider = account_user(&app, "insider@example.com").await;
    let outsider = account_user(&app, "outsider@example.com").await;
    assert_eq!(
        assign(&app, &home, &insider, json!(["USER"])).await.status,
        200
    );
    assert_eq!(
        assign(&app, &other, &outsider, json!(["USER"]))
            .await
            .status,
        200
    );
    // Both may view the home workspace's job 42, through one group.
    account_group(&app, "viewers", &[&insider, &outsider]).await;
    let acl = call(
        &app,
        Method::PUT,
        &format!("/w/{home}/api/2.0/permissions/jobs/42"),
        Some(&app.token),
        Some(json!({"access_control_list": [
            {"group_name": "viewers", "permission_level": "CAN_VIEW"}]})),
    )
    .await;
    assert_eq!(acl.status, 200, "{}", acl.body);
    let view_job = [
        ("object_type", "jobs"),
        ("object_id", "42"),
        ("permission_level", "CAN_VIEW"),
    ];
    let admin = app.token.as_str();

    // `who` lists the workspace's own holders only, even to an account admin.
    let who = ask_in(&app, &home, admin, "who", &view_job).await;
    assert_eq!(who.status, 200, "{}", who.body);
    let listed = who.body.to_string();
    assert!(
        listed.contains("insider@example.com") && !listed.contains("outsider@example.com"),
        "{listed}"
    );

    // A principal of another workspace is answered as one that does not exist, named by
    // name or by id.
    for (workspace, stranger, stranger_id) in [
        (&home, "outsider@example.com", &outsider),
        (&other, "insider@example.com", &insider),
    ] {
        for named in [stranger, stranger_id.as_str()] {
            let ghost = if named == stranger {
                "ghost@example.com"
            } else {
                "00000000000000"
            };
            let mut check = vec![("principal", named)];
            check.extend_from_slice(&view_job);
            let mut unknown = vec![("principal", ghost)];
            unknown.extend_from_slice(&view_job);
            for (question, query, unknown) in [
                ("check", check, unknown),
                (
                    "what",
                    vec![("principal", named)],
                    vec![("principal", ghost)],
                ),
            ] {
                let reply = ask_in(&app, workspace, admin, question, &query).await;
                let missing = ask_in(&app, workspace, admin, question, &unknown).await;
                assert_eq!(reply.status, 404, "{question} {named}: {}", reply.body);
                assert_eq!(
                    reply.body.to_string(),
                    missing.body.to_string().replace(ghost, named),
                    "{question} {named}"
                );
            }
        }
    }

    // From its own workspace the outsider holds nothing on the home workspace's job 42,
    // whose id is another object there.
    let what = ask_in(
        &app,
        &other,
        admin,
        "what",
        &[("principal", "outsider@example.com")],
    )
    .await;
    assert_eq!(what.status, 200, "{}", what.body);
    assert!(!what.body.to_string().contains("jobs"), "{}", what.body);
    let own = ask_in(&app, &other, &app.token_for(&outsider).await, "what", &[]).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["access"], what.body["access"], "{}", own.body);
    let insider_what = ask_in(
        &app,
        &home,
        admin,
        "what",
        &[("principal", "insider@example.com")],
    )
    .await;
    assert!(
        insider_what.body.to_string().contains("\"42\""),
        "{}",
        insider_what.body
    );
}

#[tokio::test]
async fn a_rule_set_of_a_group_outside_the_workspace_is_answered_as_a_missing_one() {
    let app = spawn_app().await;
    let home = default_workspace_id(&app).await;
    let other = new_workspace(&app, "other", None).await;
    let member = account_user(&app, "member@example.com").await;
    let group = account_group(&app, "home-only", &[&member]).await;
    assert_eq!(
        assign(&app, &home, &group, json!(["USER"])).await.status,
        200
    );
    let base = "/api/2.0/preview/accounts/access-control";
    let ask = |workspace: &str, group: &str| {
        let resource = format!("accounts/{}/groups/{group}", app.account);
        [
            format!("/w/{workspace}{base}/assignable-roles?resource={resource}"),
            format!("/w/{workspace}{base}/rule-sets?name={resource}/ruleSets/default&etag="),
        ]
    };
    for (found, missing) in ask(&home, &group)
        .into_iter()
        .zip(ask(&home, "7777777777777777"))
    {
        let reply = call(&app, Method::GET, &found, Some(&app.token), None).await;
        assert_eq!(reply.status, 200, "{found}: {}", reply.body);
        let reply = call(&app, Method::GET, &missing, Some(&app.token), None).await;
        assert_eq!(reply.status, 404, "{missing}: {}", reply.body);
    }
    // From the other workspace, even to an account admin, the group is not there.
    for (elsewhere, missing) in ask(&other, &group)
        .into_iter()
        .zip(ask(&other, "7777777777777777"))
    {
        let reply = call(&app, Method::GET, &elsewhere, Some(&app.token), None).await;
        let unknown = call(&app, Method::GET, &missing, Some(&app.token), None).await;
        assert_eq!(reply.status, 404, "{elsewhere}: {}", reply.body);
        assert_eq!(
            reply.body.to_string(),
            unknown.body.to_string().replace("7777777777777777", &group),
            "{elsewhere}"
        );
    }
    // The account host answers for the whole account.
    let account_roles = format!(
        "/api/2.0/preview/accounts/{}/access-control/assignable-roles?resource=accounts/{}/groups/{group}",
        app.account, app.account
    );
    let reply = call(&app, Method::GET, &account_roles, Some(&app.token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// A workspace admin (assigned ADMIN, not an account admin) administers its workspace's
/// objects, as in Databricks: it creates at the tree's root, reads and deletes what others
/// made, and reads and changes any object's permissions there; a mere user of the workspace
/// does none of it.
#[tokio::test]
async fn a_workspace_admin_administers_the_objects_of_its_workspace() {
    let app = spawn_app().await;
    let workspace = new_workspace(&app, "B", None).await;
    let admin = account_user(&app, "b.admin@example.com").await;
    let user = account_user(&app, "b.user@example.com").await;
    for (principal, permission) in [(&admin, "ADMIN"), (&user, "USER")] {
        let reply = assign(&app, &workspace, principal, json!([permission])).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let (admin_token, user_token) = (app.token_for(&admin).await, app.token_for(&user).await);
    let at = |path: &str| format!("/w/{workspace}/api/2.0{path}");
    let send = |method: Method, path: String, token: String, body: Option<Value>| {
        let app = &app;
        async move { call(app, method, &path, Some(&token), body).await }
    };

    // The account admin makes a folder; the workspace's user may not even read it.
    let made = send(
        Method::POST,
        at("/workspace/mkdirs"),
        app.token.clone(),
        Some(json!({"path": "/Shared/finance"})),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let status = |token: String| {
        send(
            Method::GET,
            at("/workspace/get-status?path=/Shared/finance"),
            token,
            None,
        )
    };
    assert_eq!(status(user_token.clone()).await.status, 403);
    let read = status(admin_token.clone()).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let folder = read.body["object_id"].to_string();

    // At the root, only admins create.
    let root_folder = |token: String| {
        send(
            Method::POST,
            at("/workspace/mkdirs"),
            token,
            Some(json!({"path": "/Team"})),
        )
    };
    assert_eq!(root_folder(user_token.clone()).await.status, 403);
    let created = root_folder(admin_token.clone()).await;
    assert_eq!(created.status, 200, "{}", created.body);

    // Permissions of a job and of the folder: read and changed by the workspace admin.
    let grant = |level: &str| {
        json!({"access_control_list": [
            {"user_name": "b.user@example.com", "permission_level": level}
        ]})
    };
    for (object, level) in [
        ("/permissions/jobs/7".to_string(), "CAN_VIEW"),
        (format!("/permissions/directories/{folder}"), "CAN_READ"),
    ] {
        let grant = grant(level);
        let refused = send(
            Method::PATCH,
            at(&object),
            user_token.clone(),
            Some(grant.clone()),
        )
        .await;
        assert_eq!(refused.status, 403, "{object}: {}", refused.body);
        let changed = send(
            Method::PATCH,
            at(&object),
            admin_token.clone(),
            Some(grant.clone()),
        )
        .await;
        assert_eq!(changed.status, 200, "{object}: {}", changed.body);
        let got = send(Method::GET, at(&object), admin_token.clone(), None).await;
        assert_eq!(got.status, 200, "{object}: {}", got.body);
        assert!(
            got.body.to_string().contains("b.user@example.com"),
            "{}",
            got.body
        );
    }

    // It deletes what the account admin made.
    let deleted = send(
        Method::POST,
        at("/workspace/delete"),
        admin_token.clone(),
        Some(json!({"path": "/Shared/finance"})),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);

    // None of it in the default workspace, where it is not assigned.
    let elsewhere = call(
        &app,
        Method::GET,
        "/api/2.0/permissions/jobs/7",
        Some(&admin_token),
        None,
    )
    .await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);
}

/// Who may make tokens is each workspace's own `authorization/tokens` ACL: `CAN_USE` granted
/// in one workspace lets a user make tokens there, not in another it is assigned to, whose
/// admin grants its own.
#[tokio::test]
async fn each_workspace_has_its_own_tokens_permission() {
    let app = spawn_app().await;
    let (one, two) = (
        new_workspace(&app, "one", None).await,
        new_workspace(&app, "two", None).await,
    );
    let user = account_user(&app, "maker@example.com").await;
    for workspace in [&one, &two] {
        assert_eq!(
            assign(&app, workspace, &user, json!(["USER"])).await.status,
            200
        );
    }
    let token = app.token_for(&user).await;
    let create = |workspace: String| {
        let (app, token) = (&app, token.clone());
        async move {
            call(
                app,
                Method::POST,
                &format!("/w/{workspace}/api/2.0/token/create"),
                Some(&token),
                Some(json!({"comment": "mine", "lifetime_seconds": 600})),
            )
            .await
        }
    };
    let grant = |workspace: String| {
        let app = &app;
        async move {
            call(
                app,
                Method::PATCH,
                &format!("/w/{workspace}/api/2.0/permissions/authorization/tokens"),
                Some(&app.token),
                Some(json!({"access_control_list": [
                    {"user_name": "maker@example.com", "permission_level": "CAN_USE"}
                ]})),
            )
            .await
        }
    };
    assert_eq!(create(one.clone()).await.status, 403);
    assert_eq!(grant(one.clone()).await.status, 200);
    let made = create(one.clone()).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let refused = create(two.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let granted = grant(two.clone()).await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(create(two).await.status, 200);
}
