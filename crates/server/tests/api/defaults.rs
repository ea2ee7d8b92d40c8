//! Defaults and details real clients trip on (issue #14): the `users` group's default
//! entitlements, a multipart `workspace/import` as the Python SDK's `w.workspace.upload` sends
//! it, Databricks' 404 and 405 on its REST paths, and the one SQL warehouse tools look up.

use crate::leaks::{second_account, spawn_app_with_url};
use crate::support::*;
use crate::unity_catalog::databricks_error;
use reqwest::Method;
use serde_json::json;

/// `GET /api/2.0/access/check` with `token`.
async fn check(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Reply {
    read(
        app.client
            .get(format!("{}/api/2.0/access/check", app.address))
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

async fn holds(app: &TestApp, principal: &str, entitlement: &str) -> bool {
    let reply = check(
        app,
        &app.token,
        &[("principal", principal), ("entitlement", entitlement)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("allowed in {}", reply.body))
}

#[tokio::test]
async fn the_users_group_gives_every_principal_workspace_and_sql_access_until_an_admin_removes_it()
{
    let app = spawn_app().await;
    let users_id = app.system_group_id("users").await;
    let users = app.get(&format!("/Groups/{users_id}")).await;
    assert_eq!(
        users.body["entitlements"],
        json!([{"value": "workspace-access"}, {"value": "databricks-sql-access"}]),
        "{}",
        users.body
    );

    // A new user holds both through `users`, and nothing more.
    let alice = app.create_user("alice@example.com").await;
    assert!(holds(&app, "alice@example.com", "workspace-access").await);
    assert!(holds(&app, "alice@example.com", "databricks-sql-access").await);
    assert!(!holds(&app, "alice@example.com", "allow-cluster-create").await);
    let reply = check(
        &app,
        &app.token,
        &[
            ("principal", "alice@example.com"),
            ("entitlement", "databricks-sql-access"),
        ],
    )
    .await;
    let chain: Vec<&str> = reply.body["reasons"][0]["chain"]
        .as_array()
        .unwrap_or_else(|| panic!("a chain in {}", reply.body))
        .iter()
        .filter_map(|step| step["name"].as_str())
        .collect();
    assert_eq!(chain, ["alice@example.com", "users"], "{}", reply.body);
    // The user asks about itself, as any principal may.
    let alice_token = app.token_for(str_of(&alice, "id")).await;
    let reply = check(&app, &alice_token, &[("entitlement", "workspace-access")]).await;
    assert_eq!(reply.body["allowed"], json!(true), "{}", reply.body);

    // An admin who takes them away from `users` is obeyed at the very next check.
    let reply = app
        .patch_ops(
            &format!("/Groups/{users_id}"),
            json!([{"op": "remove", "path": "entitlements[value eq \"databricks-sql-access\"]"}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!holds(&app, "alice@example.com", "databricks-sql-access").await);
    assert!(holds(&app, "alice@example.com", "workspace-access").await);
    let reply = app
        .patch_ops(
            &format!("/Groups/{users_id}"),
            json!([{"op": "remove", "path": "entitlements"}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!holds(&app, "alice@example.com", "workspace-access").await);
    let users = app.get(&format!("/Groups/{users_id}")).await;
    assert_eq!(users.body.get("entitlements"), None, "{}", users.body);
}

// ----- multipart workspace/import ------------------------------------------------------------

const BOUNDARY: &str = "d9f0c1a2b3e4f5a6b7c8d9e0f1a2b3c4";

/// A `multipart/form-data` body as Python `requests` writes `w.workspace.upload`'s request:
/// the `data` fields first, then the file part `content` (named after its key).
fn form(fields: &[(&str, &str)], content: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(content) = content {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; \
                 filename=\"content\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(app: &TestApp, token: &str, content_type: &str, body: Vec<u8>) -> Reply {
    read(
        app.client
            .post(format!("{}/api/2.0/workspace/import", app.address))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

async fn mkdirs(app: &TestApp, path: &str) {
    let reply = read(
        app.request(Method::POST, "/api/2.0/workspace/mkdirs")
            .json(&json!({ "path": path }))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn multipart() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

async fn status_of(app: &TestApp, path: &str) -> Reply {
    read(
        app.request(Method::GET, "/api/2.0/workspace/get-status")
            .query(&[("path", path)])
            .send()
            .await
            .expect("sent"),
    )
    .await
}

#[tokio::test]
async fn a_multipart_import_as_the_sdk_uploads_is_taken_like_the_json_form() {
    let app = spawn_app().await;
    mkdirs(&app, "/Shared").await;
    // `w.workspace.upload("/Shared/report.py", b"print(1)")`: SOURCE implied, language from
    // the suffix.
    let body = form(
        &[("path", "/Shared/report.py"), ("language", "PYTHON")],
        Some(b"print(1)"),
    );
    let reply = upload(&app, &app.token, &multipart(), body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({}));
    let status = status_of(&app, "/Shared/report.py").await;
    assert_eq!(
        status.body["object_type"],
        json!("NOTEBOOK"),
        "{}",
        status.body
    );
    assert_eq!(status.body["language"], json!("PYTHON"), "{}", status.body);

    // `format=ImportFormat.AUTO` without a language: a file.
    let body = form(
        &[("path", "/Shared/data.csv"), ("format", "AUTO")],
        Some(b"a,b\n1,2\n"),
    );
    let reply = upload(&app, &app.token, &multipart(), body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        status_of(&app, "/Shared/data.csv").await.body["object_type"],
        json!("FILE")
    );

    // Again without overwrite: it exists; with `overwrite=true` (a form's text): replaced.
    let again = || {
        form(
            &[("path", "/Shared/data.csv"), ("format", "RAW")],
            Some(b"x"),
        )
    };
    let reply = upload(&app, &app.token, &multipart(), again()).await;
    databricks_error(&reply, 409, "RESOURCE_ALREADY_EXISTS");
    let body = form(
        &[
            ("path", "/Shared/data.csv"),
            ("format", "RAW"),
            ("overwrite", "true"),
        ],
        Some(&[0xff, 0x00, 0xfe]),
    );
    let reply = upload(&app, &app.token, &multipart(), body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A boundary in quotes, as some clients write it, and a part of a field nobody asked for.
    let body = form(
        &[
            ("path", "/Shared/quoted.py"),
            ("language", "PYTHON"),
            ("extra", "ignored"),
        ],
        Some(b"1"),
    );
    let quoted = format!("multipart/form-data; boundary=\"{BOUNDARY}\"");
    let reply = upload(&app, &app.token, &quoted, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn a_bad_multipart_import_is_a_databricks_400_and_writes_nothing() {
    let app = spawn_app().await;
    mkdirs(&app, "/Shared").await;
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "no boundary",
            "multipart/form-data".to_string(),
            form(&[("path", "/Shared/a.py")], Some(b"1")),
            "MALFORMED_REQUEST",
        ),
        (
            "cut short",
            multipart(),
            form(
                &[("path", "/Shared/a.py"), ("language", "PYTHON")],
                Some(b"1"),
            )[..60]
                .to_vec(),
            "MALFORMED_REQUEST",
        ),
        (
            "not multipart at all",
            multipart(),
            b"path=/Shared/a.py".to_vec(),
            "MALFORMED_REQUEST",
        ),
        (
            "a field twice",
            multipart(),
            form(
                &[
                    ("path", "/Shared/a.py"),
                    ("path", "/Shared/b.py"),
                    ("language", "PYTHON"),
                ],
                Some(b"1"),
            ),
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "overwrite not a boolean",
            multipart(),
            form(
                &[
                    ("path", "/Shared/a.py"),
                    ("language", "PYTHON"),
                    ("overwrite", "yes"),
                ],
                Some(b"1"),
            ),
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "no path",
            multipart(),
            form(&[("language", "PYTHON")], Some(b"1")),
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "an unknown language",
            multipart(),
            form(
                &[("path", "/Shared/a.py"), ("language", "COBOL")],
                Some(b"1"),
            ),
            "INVALID_PARAMETER_VALUE",
        ),
    ];
    for (case, content_type, body, code) in cases {
        let reply = upload(&app, &app.token, &content_type, body).await;
        assert_eq!(reply.status, 400, "{case}: {}", reply.body);
        assert_eq!(
            reply.body["error_code"],
            json!(code),
            "{case}: {}",
            reply.body
        );
        assert!(reply.body["message"].is_string(), "{case}: {}", reply.body);
    }
    for path in ["/Shared/a.py", "/Shared/b.py"] {
        let reply = status_of(&app, path).await;
        databricks_error(&reply, 404, "RESOURCE_DOES_NOT_EXIST");
    }

    // Over the import limit (10 MiB): 413 in Databricks' shape, nothing written.
    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let body = form(
        &[("path", "/Shared/big.py"), ("language", "PYTHON")],
        Some(&big),
    );
    let reply = upload(&app, &app.token, &multipart(), body).await;
    databricks_error(&reply, 413, "INVALID_PARAMETER_VALUE");
    let reply = status_of(&app, "/Shared/big.py").await;
    databricks_error(&reply, 404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn a_multipart_import_needs_a_credential_of_the_account_and_manage_on_the_folder() {
    let (app, url) = spawn_app_with_url().await;
    let (_, foreign_token) = second_account(&app, &url).await;
    let bob = app.create_user("bob@example.com").await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;
    mkdirs(&app, "/Shared").await;
    let body = || {
        form(
            &[("path", "/Shared/x.py"), ("language", "PYTHON")],
            Some(b"1"),
        )
    };

    let reply = read(
        app.client
            .post(format!("{}/api/2.0/workspace/import", app.address))
            .header("content-type", multipart())
            .body(body())
            .send()
            .await
            .expect("sent"),
    )
    .await;
    databricks_error(&reply, 401, "UNAUTHENTICATED");
    let reply = upload(&app, &foreign_token, &multipart(), body()).await;
    refused_as_foreign(&app, &reply);
    let reply = upload(&app, &bob_token, &multipart(), body()).await;
    databricks_error(&reply, 403, "PERMISSION_DENIED");
    let reply = status_of(&app, "/Shared/x.py").await;
    databricks_error(&reply, 404, "RESOURCE_DOES_NOT_EXIST");
}

// ----- unknown paths and methods -------------------------------------------------------------

#[tokio::test]
async fn unknown_databricks_paths_are_endpoint_not_found_and_wrong_methods_405_with_allow() {
    let app = spawn_app().await;
    for path in [
        "/api/2.0/clusters/list",
        "/api/2.1/jobs/list",
        "/api/2.0/preview/accounts/x/nothing",
        "/api/2.0/accounts/x/nothing/here",
        "/api/2.0/sql/warehouses/a/b",
    ] {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let reply = read(app.request(method.clone(), path).send().await.unwrap()).await;
            let message = databricks_error(&reply, 404, "ENDPOINT_NOT_FOUND");
            assert!(message.contains(path), "{method} {path}: {message}");
        }
    }
    // The method names what the route serves, in Databricks' shape, with `Allow`.
    for (method, path, allowed) in [
        (Method::DELETE, "/api/2.0/workspace/import", "POST"),
        (Method::GET, "/api/2.0/workspace/mkdirs", "POST"),
        (Method::POST, "/api/2.0/workspace/list", "GET,HEAD"),
        (Method::PUT, "/api/2.0/sql/statements", "POST"),
        (Method::POST, "/api/2.0/sql/warehouses", "GET,HEAD"),
        (
            Method::DELETE,
            "/api/2.1/unity-catalog/catalogs",
            "GET,HEAD,POST",
        ),
        (Method::POST, "/api/2.0/access/check", "GET,HEAD"),
    ] {
        let reply = read(app.request(method.clone(), path).send().await.unwrap()).await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.body);
        assert!(reply.body["error_code"].is_string(), "{}", reply.body);
        assert!(reply.body["message"].is_string(), "{}", reply.body);
        assert_eq!(reply.body.get("schemas"), None, "{}", reply.body);
        let mut allow: Vec<String> = reply
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow header"))
            .split(',')
            .map(|method| method.trim().to_string())
            .collect();
        allow.sort();
        assert_eq!(allow.join(","), allowed, "{method} {path}");
    }
    // SCIM mounts keep the SCIM shape.
    for path in ["/api/2.0/preview/scim/v2/Bulk", "/scim/v2/Bulk"] {
        let reply = read(app.request(Method::GET, path).send().await.unwrap()).await;
        reply.assert_error(405, None);
        assert!(reply.header("allow").is_some(), "{path}");
    }
}

// ----- warehouses ----------------------------------------------------------------------------

async fn get_as(app: &TestApp, token: Option<&str>, path: &str) -> Reply {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().await.expect("sent")).await
}

#[tokio::test]
async fn every_principal_of_the_account_finds_a_running_warehouse_and_runs_sql_on_it() {
    let (app, url) = spawn_app_with_url().await;
    let bob = app.create_user("bob@example.com").await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;
    let sp = app.create_service_principal("ci").await;
    let sp_token = app.token_for(str_of(&sp, "id")).await;

    let mut id = String::new();
    for token in [&app.token, &bob_token, &sp_token] {
        let reply = get_as(&app, Some(token), "/api/2.0/sql/warehouses").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let warehouses = reply.body["warehouses"].as_array().unwrap();
        assert_eq!(warehouses.len(), 1, "{}", reply.body);
        assert_eq!(warehouses[0]["state"], json!("RUNNING"));
        assert!(warehouses[0]["name"].is_string());
        id = str_of(&warehouses[0], "id").to_string();
        let reply = get_as(&app, Some(token), &format!("/api/2.0/sql/warehouses/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body, warehouses[0]);
    }

    // A statement names it, as lsql does once it has looked it up.
    let reply = read(
        app.request(Method::POST, "/api/2.0/sql/statements")
            .json(&json!({
                "statement": "CREATE CATALOG main",
                "warehouse_id": id,
                "wait_timeout": "30s",
                "format": "JSON_ARRAY",
                "disposition": "INLINE",
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["status"]["state"],
        json!("SUCCEEDED"),
        "{}",
        reply.body
    );

    // Another id is not a warehouse; no credential, or another account's, sees none.
    let reply = get_as(
        &app,
        Some(&app.token),
        "/api/2.0/sql/warehouses/0123456789abcdef",
    )
    .await;
    databricks_error(&reply, 404, "RESOURCE_DOES_NOT_EXIST");
    let (_, foreign_token) = second_account(&app, &url).await;
    for path in [
        "/api/2.0/sql/warehouses".to_string(),
        format!("/api/2.0/sql/warehouses/{id}"),
    ] {
        let reply = get_as(&app, None, &path).await;
        databricks_error(&reply, 401, "UNAUTHENTICATED");
        let reply = get_as(&app, Some(&foreign_token), &path).await;
        refused_as_foreign(&app, &reply);
        let reply = get_as(&app, Some("dapi-not-a-token"), &path).await;
        databricks_error(&reply, 401, "UNAUTHENTICATED");
    }
}

/// Another account's credential is refused, as a forbidden request or as a workspace that does
/// not exist for it (either, in Databricks' shape), naming nothing of the account addressed.
fn refused_as_foreign(app: &TestApp, reply: &Reply) {
    let code = reply.body["error_code"].as_str().unwrap_or_default();
    assert!(
        matches!(
            (reply.status, code),
            (403, "PERMISSION_DENIED") | (404, "RESOURCE_DOES_NOT_EXIST")
        ),
        "{} {}",
        reply.status,
        reply.body
    );
    assert!(
        !reply.body.to_string().contains(app.account.as_str()),
        "{}",
        reply.body
    );
}
