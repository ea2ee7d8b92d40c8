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
    for path in [
        "/scim/v2/Nothing/here/at/all",
        "/api/2.0/preview/scim/v2/a/b/c",
    ] {
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

#[tokio::test]
async fn a_malformed_unity_catalog_permissions_patch_body_is_a_databricks_400_naming_the_problem() {
    let app = spawn_app().await;
    let created = send(
        &app,
        Method::POST,
        "/api/2.1/unity-catalog/catalogs",
        Some(json!({"name": "sales"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    for body in [json!([]), json!("x"), Value::Null, json!(7)] {
        let reply = send(
            &app,
            Method::PATCH,
            "/api/2.1/unity-catalog/permissions/catalog/sales",
            Some(body),
        )
        .await;
        let message = databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE");
        assert!(message.contains("JSON object"), "{message}");
    }
}

/// Nothing was stored under a refused name.
async fn assert_no_user_named(app: &TestApp, user_name: &str) {
    let filter = format!("userName eq \"{user_name}\"");
    let listed = app.get_with("/Users", &[("filter", &filter)]).await;
    assert_eq!(listed.total(), 0, "{}", listed.body);
}

#[tokio::test]
async fn a_number_array_object_or_boolean_where_a_string_is_required_is_refused_by_name() {
    let app = spawn_app().await;
    let cases = [
        (json!({"userName": 123}), "userName"),
        (json!({"userName": ["a@example.com"]}), "userName"),
        (json!({"userName": true}), "userName"),
        (
            json!({"userName": "t1@example.com", "displayName": 5}),
            "displayName",
        ),
        (
            json!({"userName": "t2@example.com", "externalId": 7}),
            "externalId",
        ),
        (
            json!({"userName": "t3@example.com", "name": {"givenName": 1}}),
            "name.givenName",
        ),
        (
            json!({"userName": "t4@example.com", "emails": [{"value": 5}]}),
            "emails.value",
        ),
        (
            json!({"userName": "t5@example.com", "title": {"x": 1}}),
            "title",
        ),
    ];
    for (body, attribute) in &cases {
        let reply = app.post("/Users", body.clone()).await;
        reply.assert_error(400, Some("invalidValue"));
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(attribute), "{attribute}: {detail}");
    }
    assert_no_user_named(&app, "123").await;
    // The same rule on replace, PATCH and inside Bulk.
    let user = app.create_user("typed@example.com").await;
    let path = format!("/Users/{}", str_of(&user, "id"));
    app.put(&path, json!({"userName": 123}))
        .await
        .assert_error(400, Some("invalidValue"));
    app.patch_ops(
        &path,
        json!([{"op": "replace", "path": "userName", "value": 123}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    app.patch_ops(
        &path,
        json!([{"op": "replace", "value": {"displayName": 9}}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let bulk = app
        .post(
            "/Bulk",
            json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": 456}}
            ]}),
        )
        .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_eq!(
        bulk.body["Operations"][0]["status"],
        json!("400"),
        "{}",
        bulk.body
    );
    assert_no_user_named(&app, "456").await;
    let unchanged = app.get(&path).await;
    assert_eq!(unchanged.body["userName"], json!("typed@example.com"));
}

#[tokio::test]
async fn an_empty_or_blank_name_is_refused_on_create_replace_and_patch() {
    let app = spawn_app().await;
    for user_name in ["", "   ", "\t"] {
        app.post("/Users", json!({"userName": user_name}))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    for display_name in ["", "  "] {
        app.post("/Groups", json!({"displayName": display_name}))
            .await
            .assert_error(400, Some("invalidValue"));
        app.post("/ServicePrincipals", json!({"displayName": display_name}))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    let user = app.create_user("named@example.com").await;
    let user_path = format!("/Users/{}", str_of(&user, "id"));
    app.put(&user_path, json!({"userName": " "}))
        .await
        .assert_error(400, Some("invalidValue"));
    app.patch_ops(
        &user_path,
        json!([{"op": "replace", "path": "userName", "value": ""}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let group = app.create_group("named group", &[]).await;
    let group_path = format!("/Groups/{}", str_of(&group, "id"));
    app.patch_ops(
        &group_path,
        json!([{"op": "replace", "path": "displayName", "value": " "}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_eq!(
        app.get(&user_path).await.body["userName"],
        json!("named@example.com")
    );
    assert_eq!(
        app.get(&group_path).await.body["displayName"],
        json!("named group")
    );
}

#[tokio::test]
async fn schemas_given_as_a_string_is_refused() {
    let app = spawn_app().await;
    app.post(
        "/Users",
        json!({"schemas": USER_SCHEMA, "userName": "s@example.com"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_no_user_named(&app, "s@example.com").await;
    let user = app.create_user("s2@example.com").await;
    let path = format!("/Users/{}", str_of(&user, "id"));
    app.patch(
        &path,
        json!({"schemas": PATCH_OP_SCHEMA, "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn a_date_compared_with_something_that_is_not_a_date_is_an_invalid_filter() {
    let app = spawn_app().await;
    app.create_user("dated@example.com").await;
    for filter in [
        "meta.created gt \"not-a-date\"",
        "meta.lastModified eq 5",
        "meta.created lt true",
        "userName eq \"dated@example.com\" and meta.lastModified ge \"yesterday\"",
    ] {
        app.get_with("/Users", &[("filter", filter)])
            .await
            .assert_error(400, Some("invalidFilter"));
    }
    let listed = app
        .get_with(
            "/Users",
            &[("filter", "meta.created gt \"2000-01-01T00:00:00Z\"")],
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.total() >= 1);
}

#[tokio::test]
async fn nul_in_any_string_and_control_characters_in_names_are_the_same_400_on_both_databases() {
    let app = spawn_app().await;
    for body in [
        json!({"userName": "nul\u{0}@example.com"}),
        json!({"userName": "line\nbreak@example.com"}),
        json!({"userName": "c@example.com", "title": "chief\u{0}"}),
        json!({"userName": "d@example.com", "name": {"givenName": "\u{0}"}}),
    ] {
        app.post("/Users", body)
            .await
            .assert_error(400, Some("invalidValue"));
    }
    app.post("/Groups", json!({"displayName": "g\u{0}"}))
        .await
        .assert_error(400, Some("invalidValue"));
    app.get_with("/Users", &[("filter", "userName eq \"a\u{0}\"")])
        .await
        .assert_error(400, Some("invalidFilter"));
    // Other control characters stay allowed outside names: an address may hold line breaks.
    let created = app
        .post(
            "/Users",
            json!({"userName": "e@example.com", "addresses": [{"formatted": "1 Main St\nSpringfield"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

#[tokio::test]
async fn names_are_kept_in_nfc_so_composed_and_decomposed_forms_are_one_name() {
    let app = spawn_app().await;
    let composed = "ren\u{e9}e@example.com";
    let decomposed = "rene\u{301}e@example.com";
    let created = app.post("/Users", json!({"userName": decomposed})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["userName"], json!(composed));
    app.post("/Users", json!({"userName": composed}))
        .await
        .assert_error(409, Some("uniqueness"));
    for form in [composed, decomposed] {
        let filter = format!("userName eq \"{form}\"");
        let listed = app.get_with("/Users", &[("filter", &filter)]).await;
        assert_eq!(listed.total(), 1, "{form}: {}", listed.body);
    }
    let group = app.create_group("Caf\u{e9}", &[]).await;
    assert_eq!(group["displayName"], json!("Caf\u{e9}"));
    app.post("/Groups", json!({"displayName": "Cafe\u{301}"}))
        .await
        .assert_error(409, Some("uniqueness"));
    let listed = app
        .get_with("/Groups", &[("filter", "displayName eq \"Cafe\u{301}\"")])
        .await;
    assert_eq!(listed.total(), 1, "{}", listed.body);
}

#[tokio::test]
async fn permissions_of_a_workspace_object_that_does_not_exist_are_not_found_and_never_written() {
    let app = spawn_app().await;
    let reader = app.create_user("reader@example.com").await;
    let entry = json!({"access_control_list": [
        {"user_name": "reader@example.com", "permission_level": "CAN_READ"}
    ]});
    for path in [
        "/api/2.0/permissions/directories/424242",
        "/api/2.0/permissions/notebooks/424242",
        "/api/2.0/permissions/files/424242",
    ] {
        for method in [Method::PATCH, Method::PUT] {
            let reply = send(&app, method, path, Some(entry.clone())).await;
            databricks_error(&reply, 404, "RESOURCE_DOES_NOT_EXIST");
        }
        // Nothing was written: the object is still unknown, not an object with an ACL.
        let reply = send(&app, Method::GET, path, None).await;
        databricks_error(&reply, 404, "RESOURCE_DOES_NOT_EXIST");
    }
    // Someone without a level on it is refused alike for a missing and an existing directory.
    let created = send(
        &app,
        Method::POST,
        "/api/2.0/workspace/mkdirs",
        Some(json!({"path": "/Shared/team"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let status = read(
        app.request(Method::GET, "/api/2.0/workspace/get-status")
            .query(&[("path", "/Shared/team")])
            .send()
            .await
            .expect("sent"),
    )
    .await;
    let folder_id = status.body["object_id"].to_string();
    let token = app.token_for(str_of(&reader, "id")).await;
    for folder in [folder_id.as_str(), "424242"] {
        let reply = read(
            app.client
                .get(format!(
                    "{}/api/2.0/permissions/directories/{folder}",
                    app.address
                ))
                .bearer_auth(&token)
                .send()
                .await
                .expect("sent"),
        )
        .await;
        databricks_error(&reply, 403, "PERMISSION_DENIED");
    }
    // The directory that exists has permissions to read and change.
    let path = format!("/api/2.0/permissions/directories/{folder_id}");
    let reply = send(&app, Method::PATCH, &path, Some(entry)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(send(&app, Method::GET, &path, None).await.status, 200);
    // Objects Scimitar does not model (jobs, clusters, ...) keep their ACLs for any id.
    let reply = send(&app, Method::GET, "/api/2.0/permissions/jobs/77", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Runs one SQL statement as the admin and returns its `status`.
async fn sql(app: &TestApp, statement: &str) -> Value {
    let reply = send(
        app,
        Method::POST,
        "/api/2.0/sql/statements",
        Some(json!({"statement": statement, "warehouse_id": "w"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["status"].clone()
}

#[tokio::test]
async fn a_unity_catalog_name_sql_could_not_write_is_refused_by_rest_and_sql_alike() {
    let app = spawn_app().await;
    let too_long = "c".repeat(256);
    for name in [
        "two words",
        "dotted.name",
        "slash/name",
        "nul\u{0}name",
        "line\nbreak",
        too_long.as_str(),
    ] {
        let reply = send(
            &app,
            Method::POST,
            "/api/2.1/unity-catalog/catalogs",
            Some(json!({"name": name})),
        )
        .await;
        databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE");
        let escaped = name.replace('`', "``");
        let status = sql(&app, &format!("CREATE CATALOG `{escaped}`")).await;
        assert_eq!(status["state"], json!("FAILED"), "{name:?}: {status}");
    }
    let listed = send(&app, Method::GET, "/api/2.1/unity-catalog/catalogs", None).await;
    assert_eq!(
        listed.body["catalogs"].as_array().map_or(0, Vec::len),
        0,
        "{}",
        listed.body
    );
    // A backtick is a character SQL can write (doubled inside backticks), so it is allowed.
    let created = send(
        &app,
        Method::POST,
        "/api/2.1/unity-catalog/catalogs",
        Some(json!({"name": "back`tick"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let status = sql(&app, "SHOW GRANTS ON CATALOG `back``tick`").await;
    assert_eq!(status["state"], json!("SUCCEEDED"), "{status}");
}

#[tokio::test]
async fn unity_catalog_names_are_kept_in_nfc_on_rest_and_sql() {
    let app = spawn_app().await;
    let created = send(
        &app,
        Method::POST,
        "/api/2.1/unity-catalog/catalogs",
        Some(json!({"name": "Cafe\u{301}"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["name"], json!("caf\u{e9}"));
    let again = send(
        &app,
        Method::POST,
        "/api/2.1/unity-catalog/catalogs",
        Some(json!({"name": "Caf\u{e9}"})),
    )
    .await;
    databricks_error(&again, 409, "RESOURCE_ALREADY_EXISTS");
    let status = sql(&app, "CREATE CATALOG `caf\u{e9}`").await;
    assert_eq!(status["state"], json!("FAILED"), "{status}");
    for spelling in ["caf%C3%A9", "cafe%CC%81"] {
        let found = send(
            &app,
            Method::GET,
            &format!("/api/2.1/unity-catalog/catalogs/{spelling}"),
            None,
        )
        .await;
        assert_eq!(found.status, 200, "{spelling}: {}", found.body);
    }
}

#[tokio::test]
async fn a_principal_named_in_another_unicode_form_is_found_by_grants_and_acls() {
    let app = spawn_app().await;
    app.create_user("ren\u{e9}e@example.com").await;
    app.create_group("Caf\u{e9} staff", &[]).await;
    let created = send(
        &app,
        Method::POST,
        "/api/2.1/unity-catalog/catalogs",
        Some(json!({"name": "sales"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let reply = send(
        &app,
        Method::PATCH,
        "/api/2.1/unity-catalog/permissions/catalog/sales",
        Some(json!({"changes": [
            {"principal": "rene\u{301}e@example.com", "add": ["USE_CATALOG"]},
            {"principal": "Cafe\u{301} staff", "add": ["BROWSE"]}
        ]})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let status = sql(
        &app,
        "GRANT SELECT ON CATALOG sales TO `rene\u{301}e@example.com`",
    )
    .await;
    assert_eq!(status["state"], json!("SUCCEEDED"), "{status}");
    let reply = send(
        &app,
        Method::PATCH,
        "/api/2.0/permissions/jobs/1",
        Some(json!({"access_control_list": [
            {"user_name": "rene\u{301}e@example.com", "permission_level": "CAN_VIEW"}
        ]})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
