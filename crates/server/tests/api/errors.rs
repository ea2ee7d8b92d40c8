//! Client mistakes and their RFC 7644 error bodies.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

async fn raw(app: &TestApp, method: Method, path: &str, body: &str) -> Reply {
    read(
        app.scim(method, path)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_syntax() {
    let app = spawn_app().await;
    let user = app.create_user("target@example.com").await;
    let path = format!("/Users/{}", str_of(&user, "id"));
    for (method, target) in [
        (Method::POST, "/Users"),
        (Method::PUT, path.as_str()),
        (Method::PATCH, path.as_str()),
        (Method::POST, "/Users/.search"),
        (Method::POST, "/Bulk"),
    ] {
        raw(&app, method.clone(), target, "{\"userName\": ")
            .await
            .assert_error(400, Some("invalidSyntax"));
    }
}

#[tokio::test]
async fn an_empty_body_is_a_400() {
    let app = spawn_app().await;
    raw(&app, Method::POST, "/Users", "")
        .await
        .assert_error(400, Some("invalidSyntax"));
    raw(&app, Method::POST, "/Groups", "   ")
        .await
        .assert_error(400, Some("invalidSyntax"));
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_a_400() {
    let app = spawn_app().await;
    raw(&app, Method::POST, "/Users", "[1, 2]")
        .await
        .assert_error(400, Some("invalidSyntax"));
}

#[tokio::test]
async fn a_missing_required_attribute_is_a_400_invalid_value() {
    let app = spawn_app().await;
    app.post(
        "/Users",
        json!({"schemas": [USER_SCHEMA], "displayName": "No Name"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    app.post("/Groups", json!({"schemas": [GROUP_SCHEMA]}))
        .await
        .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn a_wrongly_typed_value_is_a_400_invalid_value() {
    let app = spawn_app().await;
    for body in [
        json!({"userName": "typed@example.com", "active": "maybe"}),
        json!({"userName": {"first": "x"}}),
        json!({"userName": "typed@example.com", "emails": "not-a-list"}),
        json!({"userName": "typed@example.com", "name": "not an object"}),
    ] {
        app.post("/Users", body)
            .await
            .assert_error(400, Some("invalidValue"));
    }
    assert_eq!(app.get("/Users").await.total(), 1);
}

#[tokio::test]
async fn an_unknown_endpoint_is_a_404_with_a_scim_body() {
    let app = spawn_app().await;
    app.get("/Widgets").await.assert_error(404, None);
    app.get("/Widgets/1").await.assert_error(404, None);
    app.get("/Users/1/extra/segments")
        .await
        .assert_error(404, None);
    let outside = read(
        app.request(Method::GET, "/no/such/place")
            .send()
            .await
            .unwrap(),
    )
    .await;
    outside.assert_error(404, None);
}

#[tokio::test]
async fn an_unsupported_method_is_a_405_with_a_scim_body() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::POST, "/ServiceProviderConfig"),
        (Method::DELETE, "/Schemas"),
        (Method::PUT, "/ResourceTypes"),
        (Method::POST, "/Me"),
        (Method::GET, "/Bulk"),
        (Method::DELETE, "/Users"),
        (Method::POST, "/Users/some-id"),
    ] {
        let reply = read(app.scim(method.clone(), path).send().await.unwrap()).await;
        reply.assert_error(405, None);
    }
}

#[tokio::test]
async fn an_immutable_or_read_only_change_by_put_is_reported_or_ignored() {
    let app = spawn_app().await;
    let user = app.create_user("ro@example.com").await;
    let reply = app
        .put(
            &format!("/Users/{}", str_of(&user, "id")),
            json!({"userName": "ro@example.com", "meta": {"created": "1999-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["meta"]["created"], user["meta"]["created"]);
}
