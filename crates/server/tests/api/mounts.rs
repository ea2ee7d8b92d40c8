//! The mount points: one identity store served at the generic SCIM path and at the Databricks
//! workspace and account paths.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

async fn account_id(app: &TestApp) -> String {
    let reply = read(
        app.client
            .get(format!("{}/.well-known/databricks-config", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "needs no token: {}", reply.body);
    str_of(&reply.body, "account_id").to_string()
}

#[tokio::test]
async fn the_databricks_config_names_the_account_without_a_token() {
    let app = spawn_app().await;
    let account = account_id(&app).await;
    assert_eq!(account.len(), 36, "{account}");
}

#[tokio::test]
async fn the_same_user_is_visible_at_every_mount_point() {
    let app = spawn_app().await;
    let account = account_id(&app).await;
    let user = app.create_user("everywhere@example.com").await;
    let id = str_of(&user, "id");
    for prefix in [
        "/scim/v2".to_string(),
        "/api/2.0/preview/scim/v2".to_string(),
        format!("/api/2.0/accounts/{account}/scim/v2"),
        format!("/api/2.1/accounts/{account}/scim/v2"),
    ] {
        let reply = read(
            app.request(Method::GET, &format!("{prefix}/Users/{id}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200, "{prefix}: {}", reply.body);
        assert_eq!(reply.body["userName"], "everywhere@example.com");
        assert_eq!(
            reply.body["meta"]["location"],
            json!(format!("{}{prefix}/Users/{id}", app.address)),
            "the location names the mount the request came through"
        );
        let filtered = read(
            app.request(Method::GET, &format!("{prefix}/Users"))
                .query(&[("filter", "userName eq \"everywhere@example.com\"")])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(filtered.total(), 1, "{prefix}: {}", filtered.body);
    }
}

#[tokio::test]
async fn a_user_created_at_an_account_mount_reaches_the_workspace_only_when_assigned() {
    let app = spawn_app().await;
    let account = account_id(&app).await;
    let created = read(
        app.request(
            Method::POST,
            &format!("/api/2.1/accounts/{account}/scim/v2/Users"),
        )
        .json(&json!({"userName": "via.account@example.com"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let location = format!(
        "{}/api/2.1/accounts/{account}/scim/v2/Users/{}",
        app.address,
        created.id()
    );
    assert_eq!(created.header("location"), Some(location.as_str()));
    // An account user is not in the workspace until assigned to it.
    let path = format!("/Users/{}", created.id());
    assert_eq!(app.get(&path).await.status, 404);
    let listed = app
        .get("/Users?filter=userName%20eq%20%22via.account@example.com%22")
        .await;
    assert_eq!(listed.body["totalResults"], 0, "{}", listed.body);
    let workspace = read(
        app.request(Method::GET, "/.well-known/databricks-config")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let workspace_id = workspace.body["workspace_id"].as_str().unwrap().to_string();
    let assigned = read(
        app.request(
            Method::PUT,
            &format!(
                "/api/2.0/accounts/{account}/workspaces/{workspace_id}/permissionassignments/principals/{}",
                created.id()
            ),
        )
        .json(&json!({"permissions": ["USER"]}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    assert_eq!(app.get(&path).await.status, 200);
    let listed = app
        .get("/Users?filter=userName%20eq%20%22via.account@example.com%22")
        .await;
    assert_eq!(listed.body["totalResults"], 1, "{}", listed.body);
}

#[tokio::test]
async fn an_unknown_account_id_is_404() {
    let app = spawn_app().await;
    for version in ["2.0", "2.1"] {
        let reply = read(
            app.request(
                Method::GET,
                &format!(
                    "/api/{version}/accounts/00000000-0000-0000-0000-000000000000/scim/v2/Users"
                ),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        reply.assert_error(404, None);
    }
}

#[tokio::test]
async fn healthz_answers_200_without_a_token() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
