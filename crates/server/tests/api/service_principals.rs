//! `/ServicePrincipals`: the Databricks resource type for machine identities.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn creating_a_service_principal_generates_an_application_id_and_joins_users() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/ServicePrincipals",
            json!({"schemas": [SERVICE_PRINCIPAL_SCHEMA], "displayName": "etl-service"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["schemas"], json!([SERVICE_PRINCIPAL_SCHEMA]));
    assert_eq!(reply.body["meta"]["resourceType"], "ServicePrincipal");
    assert_eq!(reply.body["active"], true);
    let application_id = str_of(&reply.body, "applicationId");
    assert_eq!(application_id.len(), 36, "a UUID: {application_id}");
    assert_eq!(application_id.matches('-').count(), 4);
    let location = app.url(&format!("/ServicePrincipals/{}", reply.id()));
    assert_eq!(reply.header("location"), Some(location.as_str()));
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    let users = app.system_group_id("users").await;
    let groups = reply.body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["value"], json!(users));
    assert_eq!(groups[0]["type"], "direct");
}

#[tokio::test]
async fn a_given_application_id_is_kept_and_must_be_unique() {
    let app = spawn_app().await;
    let application_id = "8b4b5e2a-3d5f-4c1b-9a57-1f0e3c2b7d11";
    let reply = app
        .post(
            "/ServicePrincipals",
            json!({"applicationId": application_id, "displayName": "given"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["applicationId"], application_id);
    app.post(
        "/ServicePrincipals",
        json!({"applicationId": application_id.to_uppercase(), "displayName": "copy"}),
    )
    .await
    .assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn a_service_principal_can_be_read_listed_replaced_patched_and_deleted() {
    let app = spawn_app().await;
    let created = app.create_service_principal("lifecycle").await;
    let id = str_of(&created, "id");
    let path = format!("/ServicePrincipals/{id}");
    assert_eq!(app.get(&path).await.body["displayName"], "lifecycle");
    let listed = app.get("/ServicePrincipals").await;
    assert_eq!(listed.total(), 1);
    assert_eq!(listed.resources()[0]["id"], json!(id));
    let replaced = app
        .put(
            &path,
            json!({"applicationId": created["applicationId"], "displayName": "renamed"}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["displayName"], "renamed");
    assert_eq!(replaced.body["active"], true);
    let patched = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["active"], false);
    assert_eq!(app.delete(&path).await.status, 204);
    app.get(&path).await.assert_error(404, None);
}

#[tokio::test]
async fn a_service_principal_id_is_not_found_at_the_users_endpoint() {
    let app = spawn_app().await;
    let created = app.create_service_principal("not-a-user").await;
    app.get(&format!("/Users/{}", str_of(&created, "id")))
        .await
        .assert_error(404, None);
}
