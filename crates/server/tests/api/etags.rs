//! Entity tags: `ETag` on reads and writes, `If-None-Match` on GET, `If-Match` on writes.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

async fn user(app: &TestApp) -> String {
    let created = app.create_user("tagged@example.com").await;
    format!("/Users/{}", str_of(&created, "id"))
}

#[tokio::test]
async fn get_returns_an_etag_matching_meta_version() {
    let app = spawn_app().await;
    let path = user(&app).await;
    let reply = app.get(&path).await;
    assert_eq!(reply.header("etag"), reply.body["meta"]["version"].as_str());
    let group = app.create_group("tagged", &[]).await;
    let reply = app.get(&format!("/Groups/{}", str_of(&group, "id"))).await;
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
}

#[tokio::test]
async fn if_none_match_with_the_current_version_is_a_304() {
    let app = spawn_app().await;
    let path = user(&app).await;
    let response = app
        .scim(Method::GET, &path)
        .header("if-none-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 304);
    assert_eq!(
        response.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("W/\"1\"")
    );
    let stale = read(
        app.scim(Method::GET, &path)
            .header("if-none-match", "W/\"0\"")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stale.status, 200);
}

#[tokio::test]
async fn a_stale_if_match_is_a_412_and_changes_nothing() {
    let app = spawn_app().await;
    let path = user(&app).await;
    app.patch_ops(
        &path,
        json!([{"op": "replace", "path": "title", "value": "v2"}]),
    )
    .await;
    let before = app.get(&path).await;
    assert_eq!(before.header("etag"), Some("W/\"2\""));
    let stale = "W/\"1\"";
    let requests = [
        app.scim(Method::PUT, &path)
            .json(&json!({"userName": "tagged@example.com", "title": "put"})),
        app.scim(Method::PATCH, &path).json(&patch_op(
            json!([{"op": "replace", "path": "title", "value": "patch"}]),
        )),
        app.scim(Method::DELETE, &path),
    ];
    for request in requests {
        let reply = read(request.header("if-match", stale).send().await.unwrap()).await;
        reply.assert_error(412, None);
    }
    let after = app.get(&path).await;
    assert_eq!(after.body, before.body, "nothing changed");
}

#[tokio::test]
async fn a_current_if_match_lets_writes_through_and_the_version_increments() {
    let app = spawn_app().await;
    let path = user(&app).await;
    let put = read(
        app.scim(Method::PUT, &path)
            .header("if-match", "W/\"1\"")
            .json(&json!({"userName": "tagged@example.com", "title": "put"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.header("etag"), Some("W/\"2\""));
    assert_eq!(put.body["meta"]["version"], "W/\"2\"");
    let patched = read(
        app.scim(Method::PATCH, &path)
            .header("if-match", "\"2\"")
            .json(&patch_op(
                json!([{"op": "replace", "path": "title", "value": "patch"}]),
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.header("etag"), Some("W/\"3\""));
    let any = read(
        app.scim(Method::PATCH, &path)
            .header("if-match", "*")
            .json(&patch_op(
                json!([{"op": "replace", "path": "title", "value": "star"}]),
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(any.header("etag"), Some("W/\"4\""));
    let deleted = read(
        app.scim(Method::DELETE, &path)
            .header("if-match", "W/\"4\"")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(deleted.status, 204);
}

#[tokio::test]
async fn a_malformed_if_match_is_a_400_invalid_version() {
    let app = spawn_app().await;
    let path = user(&app).await;
    let reply = read(
        app.scim(Method::DELETE, &path)
            .header("if-match", "not-a-tag")
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(400, Some("invalidVers"));
}
