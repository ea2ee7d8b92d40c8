//! Isolation between workspaces and accounts, route by route: a credential of another
//! workspace of the account, of another workspace's admin, or of another account reads and
//! writes nothing of a workspace through any of its APIs (SCIM on both workspace mounts, Bulk,
//! Unity Catalog, statements, permissions, the workspace tree, access questions): every answer
//! is 403 or 404, no body or header carries the workspace's data, and nothing is written.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

/// What the workspace under attack holds, which no refusal may show.
struct Secrets {
    user_id: String,
    group_id: String,
    folder_id: String,
    statement_id: String,
    strings: Vec<String>,
}

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (Reply, String) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let headers = format!("{:?}", response.headers());
    (read(response).await, headers)
}

async fn seed(app: &TestApp, workspace: &str) -> Secrets {
    let at = |path: &str| format!("/w/{workspace}{path}");
    let user = app.create_user("secret.user@victim.test").await;
    let user_id = str_of(&user, "id").to_string();
    let group = app.create_group("secret-group", &[&user_id]).await;
    let group_id = str_of(&group, "id").to_string();
    let statement = read(
        app.request(Method::POST, &at("/api/2.0/sql/statements"))
            .json(&json!({"warehouse_id": "any", "statement": "CREATE CATALOG secret_catalog"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(statement.status, 200, "{}", statement.body);
    let statement_id = str_of(&statement.body, "statement_id").to_string();
    for (path, body) in [(
        "/api/2.0/workspace/mkdirs",
        json!({"path": "/Shared/secret-folder"}),
    )] {
        let reply = read(
            app.request(Method::POST, &at(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let status = read(
        app.request(Method::GET, &at("/api/2.0/workspace/get-status"))
            .query(&[("path", "/Shared/secret-folder")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let folder_id = status.body["object_id"].to_string();
    Secrets {
        strings: vec![
            "secret.user@victim.test".into(),
            "secret-group".into(),
            "secret_catalog".into(),
            "secret-folder".into(),
            user_id.clone(),
            group_id.clone(),
            app.account.to_string(),
        ],
        user_id,
        group_id,
        folder_id,
        statement_id,
    }
}

/// Every workspace-level route, with a body where it takes one, as `(method, path from the
/// workspace's root, body)`.
fn routes(secrets: &Secrets) -> Vec<(Method, String, Option<Value>)> {
    let (user, group, folder, statement) = (
        &secrets.user_id,
        &secrets.group_id,
        &secrets.folder_id,
        &secrets.statement_id,
    );
    let user_body = json!({"schemas": [USER_SCHEMA], "userName": "intruder@evil.test"});
    let patch = patch_op(json!([{"op": "replace", "path": "displayName", "value": "pwned"}]));
    let mut routes = Vec::new();
    for mount in ["/scim/v2", "/api/2.0/preview/scim/v2"] {
        routes.extend([
            (Method::GET, format!("{mount}/Users"), None),
            (Method::GET, format!("{mount}/Users/{user}"), None),
            (Method::GET, format!("{mount}/Groups"), None),
            (Method::GET, format!("{mount}/Groups/{group}"), None),
            (Method::GET, format!("{mount}/ServicePrincipals"), None),
            (Method::GET, format!("{mount}/Me"), None),
            (
                Method::POST,
                format!("{mount}/Users/.search"),
                Some(json!({"schemas": [SEARCH_REQUEST_SCHEMA]})),
            ),
            (
                Method::POST,
                format!("{mount}/Users"),
                Some(user_body.clone()),
            ),
            (
                Method::PUT,
                format!("{mount}/Users/{user}"),
                Some(json!({"schemas": [USER_SCHEMA], "userName": "pwned@evil.test"})),
            ),
            (
                Method::PATCH,
                format!("{mount}/Users/{user}"),
                Some(patch.clone()),
            ),
            (
                Method::PATCH,
                format!("{mount}/Groups/{group}"),
                Some(patch_op(json!([{"op": "remove", "path": "members"}]))),
            ),
            (Method::DELETE, format!("{mount}/Users/{user}"), None),
            (
                Method::POST,
                format!("{mount}/Bulk"),
                Some(json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [
                    {"method": "DELETE", "path": format!("/Users/{user}")}]})),
            ),
        ]);
    }
    let uc = "/api/2.1/unity-catalog";
    routes.extend([
        (Method::GET, format!("{uc}/catalogs"), None),
        (Method::GET, format!("{uc}/catalogs/secret_catalog"), None),
        (Method::POST, format!("{uc}/catalogs"), Some(json!({"name": "intruder"}))),
        (Method::DELETE, format!("{uc}/catalogs/secret_catalog"), None),
        (Method::GET, format!("{uc}/schemas?catalog_name=secret_catalog"), None),
        (Method::GET, format!("{uc}/permissions/catalog/secret_catalog"), None),
        (
            Method::PATCH,
            format!("{uc}/permissions/catalog/secret_catalog"),
            Some(json!({"changes": [{"principal": "intruder@evil.test", "add": ["USE_CATALOG"]}]})),
        ),
        (Method::GET, format!("{uc}/effective-permissions/catalog/secret_catalog"), None),
        (
            Method::POST,
            "/api/2.0/sql/statements".to_string(),
            Some(json!({"warehouse_id": "any", "statement": "SHOW GRANTS ON CATALOG secret_catalog"})),
        ),
        (Method::GET, format!("/api/2.0/sql/statements/{statement}"), None),
        (Method::GET, format!("/api/2.0/permissions/directories/{folder}"), None),
        (
            Method::PUT,
            format!("/api/2.0/permissions/directories/{folder}"),
            Some(json!({"access_control_list": [{"user_name": "intruder@evil.test", "permission_level": "CAN_MANAGE"}]})),
        ),
        (Method::GET, "/api/2.0/workspace/list?path=/Shared".to_string(), None),
        (Method::GET, "/api/2.0/workspace/get-status?path=/Shared/secret-folder".to_string(), None),
        (Method::POST, "/api/2.0/workspace/mkdirs".to_string(), Some(json!({"path": "/Shared/intruder"}))),
        (Method::POST, "/api/2.0/workspace/delete".to_string(), Some(json!({"path": "/Shared/secret-folder", "recursive": true}))),
        (
            Method::GET,
            format!("/api/2.0/access/check?principal={user}&privilege=USE_CATALOG&securable_type=catalog&securable=secret_catalog"),
            None,
        ),
        (Method::GET, "/api/2.0/access/who?privilege=USE_CATALOG&securable_type=catalog&securable=secret_catalog".to_string(), None),
        (Method::GET, format!("/api/2.0/access/what?principal={user}"), None),
    ]);
    routes
}

#[tokio::test]
async fn no_route_of_a_workspace_answers_another_workspace_or_account() {
    let app = spawn_app().await;
    let victim = read(
        app.request(Method::GET, "/.well-known/databricks-config")
            .send()
            .await
            .unwrap(),
    )
    .await
    .body["workspace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secrets = seed(&app, &victim).await;

    // Another workspace of the same account, with a user and an admin of its own.
    let made = read(
        app.request(
            Method::POST,
            &format!("/api/2.0/accounts/{}/workspaces", app.account),
        )
        .json(&json!({"workspace_name": "other"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    let other = made.body["workspace_id"].as_i64().unwrap().to_string();
    let mut tokens = Vec::new();
    for (user_name, permission) in [
        ("neighbour@other.test", "USER"),
        ("neighbour.admin@other.test", "ADMIN"),
    ] {
        let user = read(
            app.request(Method::POST, &format!("/w/{other}/scim/v2/Users"))
                .json(&json!({"schemas": [USER_SCHEMA], "userName": user_name}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(user.status, 201, "{}", user.body);
        let assigned = read(
            app.request(
                Method::PUT,
                &format!(
                    "/api/2.0/accounts/{}/workspaces/{other}/permissionassignments/principals/{}",
                    app.account,
                    user.id()
                ),
            )
            .json(&json!({"permissions": [permission]}))
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(assigned.status, 200, "{}", assigned.body);
        tokens.push((user_name.to_string(), app.token_for(&user.id()).await));
    }
    let foreign = app
        .services
        .create_account("foreign", "foreign")
        .await
        .unwrap();
    tokens.push((
        "another account's admin".into(),
        foreign.admin_token.expose().to_string(),
    ));

    let routes = routes(&secrets);
    assert!(routes.len() > 40, "{} routes", routes.len());
    for (who, token) in &tokens {
        for (method, path, body) in &routes {
            for prefix in [format!("/w/{victim}"), String::new()] {
                let path = format!("{prefix}{path}");
                let (reply, headers) =
                    send(&app, token, method.clone(), &path, body.as_ref()).await;
                assert!(
                    reply.status == 403 || reply.status == 404,
                    "{who}: {method} {path} answered {}: {}",
                    reply.status,
                    reply.body
                );
                let text = format!("{headers} {}", reply.body);
                for secret in &secrets.strings {
                    assert!(
                        !text.contains(secret.as_str()),
                        "{who}: {method} {path} shows {secret}: {text}"
                    );
                }
            }
        }
    }

    // Nothing was written: the workspace reads as it was seeded.
    let at = |path: &str| format!("/w/{victim}{path}");
    let user = read(
        app.request(
            Method::GET,
            &at(&format!("/scim/v2/Users/{}", secrets.user_id)),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(user.status, 200);
    assert_eq!(user.body["userName"], "secret.user@victim.test");
    assert!(user.body.get("displayName").is_none(), "{}", user.body);
    let group = read(
        app.request(
            Method::GET,
            &at(&format!("/scim/v2/Groups/{}", secrets.group_id)),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(member_ids_of(&group.body), [secrets.user_id.as_str()]);
    let intruders = app
        .get_with(
            "/Users",
            &[(
                "filter",
                "userName sw \"intruder\" or userName sw \"pwned\"",
            )],
        )
        .await;
    assert_eq!(intruders.total(), 0, "{}", intruders.body);
    let catalogs = read(
        app.request(Method::GET, &at("/api/2.1/unity-catalog/catalogs"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = catalogs.body["catalogs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|catalog| catalog["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["secret_catalog"]);
    let grants = read(
        app.request(
            Method::GET,
            &at("/api/2.1/unity-catalog/permissions/catalog/secret_catalog"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(
        !grants.body.to_string().contains("intruder"),
        "{}",
        grants.body
    );
    let listed = read(
        app.request(Method::GET, &at("/api/2.0/workspace/list"))
            .query(&[("path", "/Shared")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let listed = listed.body.to_string();
    assert!(
        listed.contains("secret-folder") && !listed.contains("intruder"),
        "{listed}"
    );
}
