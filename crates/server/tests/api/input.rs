//! Strict input: every refusal answers in the shape of the API that was called (RFC 7644 error
//! JSON on the SCIM mounts, Databricks' `{"error_code", "message"}` on the other `/api/` paths),
//! values of the wrong type or empty names are refused rather than coerced, and both databases
//! refuse the same names.

use crate::support::*;
use crate::unity_catalog::databricks_error;
use reqwest::Method;
use serde_json::{json, Value};

/// A request to a path from the root with the admin token and an optional JSON body.
async fn send(app: &TestApp, method: Method, path_from_root: &str, body: Option<Value>) -> Reply {
    let mut request = app.request(method, path_from_root);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("sent")).await
}

fn assert_scim_content_type(reply: &Reply) {
    assert_eq!(
        reply.header("content-type"),
        Some("application/scim+json"),
        "{}",
        reply.body
    );
}

fn assert_json_content_type(reply: &Reply) {
    assert!(
        reply
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/json")),
        "{:?}: {}",
        reply.header("content-type"),
        reply.body
    );
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_a_400_in_the_shape_of_the_api() {
    let app = spawn_app().await;
    for scim_path in [
        "/scim/v2/Users/%FF%FE",
        "/api/2.0/preview/scim/v2/Users/%FF",
    ] {
        let reply = send(&app, Method::GET, scim_path, None).await;
        reply.assert_error(400, Some("invalidValue"));
        assert_scim_content_type(&reply);
    }
    // On the account mount the account is read from the path first, so the bad segment
    // makes the account unreadable: SCIM's 404, in SCIM's shape.
    let account_path = format!("/api/2.0/accounts/{}/scim/v2/Groups/%C3%28", app.account);
    let reply = send(&app, Method::GET, &account_path, None).await;
    reply.assert_error(404, None);
    assert_scim_content_type(&reply);
    for databricks_path in [
        "/api/2.0/permissions/directories/%FF",
        "/api/2.1/unity-catalog/catalogs/%FF",
    ] {
        let reply = send(&app, Method::GET, databricks_path, None).await;
        databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE");
        assert_json_content_type(&reply);
    }
}

#[tokio::test]
async fn an_unknown_databricks_endpoint_is_a_databricks_404_and_an_unknown_scim_one_a_scim_404() {
    let app = spawn_app().await;
    for path in ["/api/2.0/nowhere", "/api/2.1/unity-catalog/nothing/here"] {
        let reply = send(&app, Method::GET, path, None).await;
        let message = databricks_error(&reply, 404, "ENDPOINT_NOT_FOUND");
        assert!(message.contains(path), "{message}");
        assert_json_content_type(&reply);
    }
    for path in ["/scim/v2/Nothing/here/at/all", "/api/2.0/preview/scim/v2/a/b/c"] {
        let reply = send(&app, Method::GET, path, None).await;
        reply.assert_error(404, None);
        assert_scim_content_type(&reply);
    }
}

#[tokio::test]
async fn a_method_a_databricks_endpoint_does_not_serve_is_a_databricks_405() {
    let app = spawn_app().await;
    for path in [
        "/api/2.1/unity-catalog/catalogs",
        "/api/2.0/permissions/directories/1",
        "/api/2.0/access/check",
    ] {
        let reply = send(&app, Method::DELETE, path, None).await;
        assert_eq!(reply.status, 405, "{path}: {}", reply.body);
        assert!(reply.body["error_code"].is_string(), "{}", reply.body);
        assert!(reply.body["message"].is_string(), "{}", reply.body);
    }
    let reply = send(&app, Method::DELETE, "/scim/v2/ServiceProviderConfig", None).await;
    reply.assert_error(405, None);
}

#[tokio::test]
async fn malformed_json_to_a_databricks_api_is_a_malformed_request() {
    let app = spawn_app().await;
    let reply = read(
        app.request(Method::POST, "/api/2.1/unity-catalog/catalogs")
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    databricks_error(&reply, 400, "MALFORMED_REQUEST");
}
