//! The Metastores API: the account's one metastore, assigned to every workspace of the
//! account, as the SDK's `w.metastores` and `a.metastores`/`a.metastore_assignments` read it;
//! assigning it again is a no-op, and nothing else can be assigned or unassigned.

use crate::leaks::{second_account, spawn_app_with_url};
use crate::support::*;
use crate::unity_catalog::{databricks_error, uc, UC};
use reqwest::Method;
use serde_json::{json, Value};

/// A request to a path from the root with `token`.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("sent")).await
}

/// The app's account name and its (first) workspace's id.
async fn account_and_workspace(app: &TestApp) -> (String, String) {
    let account = app
        .services
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .find(|account| account.id == app.account)
        .unwrap();
    let workspace = app.services.workspaces(&app.account).await.unwrap();
    (account.name, workspace[0].id.to_string())
}

async fn user_token(app: &TestApp, name: &str) -> String {
    let user = app.create_user(name).await;
    app.token_for(str_of(&user, "id")).await
}

#[tokio::test]
async fn every_principal_reads_the_current_assignment_and_the_summary() {
    let app = spawn_app().await;
    let (account_name, workspace) = account_and_workspace(&app).await;
    let ana = user_token(&app, "ana@example.com").await;
    let current = uc(
        &app,
        Method::GET,
        "/current-metastore-assignment",
        &ana,
        None,
    )
    .await;
    assert_eq!(current.status, 200, "{}", current.body);
    let id = current.body["metastore_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_ne!(id, app.account.to_string());
    assert_eq!(
        current.body["workspace_id"],
        json!(workspace.parse::<i64>().unwrap()),
        "a number, as Databricks writes it"
    );
    let summary = uc(&app, Method::GET, "/metastore_summary", &ana, None).await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert_eq!(summary.body["metastore_id"], id);
    assert_eq!(summary.body["name"], account_name);
    assert_eq!(summary.body["owner"], "admins");
    assert!(summary.body["created_at"].as_i64().unwrap() > 0);
    // The same id for the admin, and after the metastore is first granted on.
    ok(&call(
        &app,
        Method::PATCH,
        &format!("{UC}/permissions/metastore/{id}"),
        &app.token,
        Some(json!({"changes": [{"principal": "users", "add": ["CREATE_CATALOG"]}]})),
    )
    .await);
    let again = uc(&app, Method::GET, "/metastore_summary", &app.token, None).await;
    assert_eq!(again.body["metastore_id"], id);
    assert_eq!(again.body["owner"], "admins");
    let no_token = read(
        app.client
            .get(format!("{}{UC}/metastore_summary", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    databricks_error(&no_token, 401, "UNAUTHENTICATED");
}

fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    &reply.body
}

#[tokio::test]
async fn list_and_get_are_for_metastore_admins_and_page_as_unity_catalog_lists_do() {
    let app = spawn_app().await;
    let summary = uc(&app, Method::GET, "/metastore_summary", &app.token, None).await;
    let id = ok(&summary)["metastore_id"].as_str().unwrap().to_string();
    let listed = uc(&app, Method::GET, "/metastores", &app.token, None).await;
    assert_eq!(ok(&listed)["metastores"], json!([summary.body.clone()]));
    assert!(listed.body.get("next_page_token").is_none());
    for max_results in ["0", "1", "500"] {
        let page = uc(
            &app,
            Method::GET,
            &format!("/metastores?max_results={max_results}"),
            &app.token,
            None,
        )
        .await;
        assert_eq!(ok(&page)["metastores"].as_array().unwrap().len(), 1);
        assert!(page.body.get("next_page_token").is_none());
    }
    let after = uc(
        &app,
        Method::GET,
        &format!("/metastores?max_results=1&page_token={id}"),
        &app.token,
        None,
    )
    .await;
    assert_eq!(ok(&after)["metastores"], json!([]));
    databricks_error(
        &uc(
            &app,
            Method::GET,
            "/metastores?max_results=-1",
            &app.token,
            None,
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
    );
    let one = uc(
        &app,
        Method::GET,
        &format!("/metastores/{id}"),
        &app.token,
        None,
    )
    .await;
    assert_eq!(ok(&one), &summary.body);
    let other = uc(
        &app,
        Method::GET,
        "/metastores/00000000-0000-4000-8000-000000000000",
        &app.token,
        None,
    )
    .await;
    databricks_error(&other, 404, "RESOURCE_DOES_NOT_EXIST");

    let ana = user_token(&app, "ana@example.com").await;
    for path in ["/metastores".to_string(), format!("/metastores/{id}")] {
        databricks_error(
            &uc(&app, Method::GET, &path, &ana, None).await,
            403,
            "PERMISSION_DENIED",
        );
    }
    let create = uc(
        &app,
        Method::POST,
        "/metastores",
        &app.token,
        Some(json!({"name": "m"})),
    )
    .await;
    assert_eq!(create.status, 405, "{}", create.body);
}

#[tokio::test]
async fn the_account_host_lists_gets_and_shows_each_workspaces_assignment() {
    let (app, url) = spawn_app_with_url().await;
    let (_, workspace) = account_and_workspace(&app).await;
    let account = format!("/api/2.0/accounts/{}", app.account);
    let id = ok(&uc(&app, Method::GET, "/metastore_summary", &app.token, None).await)
        ["metastore_id"]
        .as_str()
        .unwrap()
        .to_string();

    let listed = call(
        &app,
        Method::GET,
        &format!("{account}/metastores"),
        &app.token,
        None,
    )
    .await;
    assert_eq!(ok(&listed)["metastores"][0]["metastore_id"], id);
    let one = call(
        &app,
        Method::GET,
        &format!("{account}/metastores/{id}"),
        &app.token,
        None,
    )
    .await;
    assert_eq!(
        ok(&one)["metastore_info"]["metastore_id"],
        id,
        "wrapped, as the account API wraps it"
    );
    let assigned = call(
        &app,
        Method::GET,
        &format!("{account}/workspaces/{workspace}/metastore"),
        &app.token,
        None,
    )
    .await;
    assert_eq!(
        ok(&assigned)["metastore_assignment"],
        json!({"workspace_id": workspace.parse::<i64>().unwrap(), "metastore_id": id})
    );
    for path in [
        format!("{account}/workspaces/424242/metastore"),
        format!("{account}/metastores/00000000-0000-4000-8000-000000000000"),
        "/api/2.0/accounts/00000000-0000-4000-8000-00000000dead/metastores".to_string(),
    ] {
        let missing = call(&app, Method::GET, &path, &app.token, None).await;
        assert_eq!(missing.status, 404, "{path}: {}", missing.body);
    }

    // Another account's admin, a user without admin rights and no token at all read nothing.
    let (_, foreign) = second_account(&app, &url).await;
    let ana = user_token(&app, "ana@example.com").await;
    for path in [
        format!("{account}/metastores"),
        format!("{account}/metastores/{id}"),
        format!("{account}/workspaces/{workspace}/metastore"),
    ] {
        let refused = call(&app, Method::GET, &path, &foreign, None).await;
        assert!(
            [403, 404].contains(&refused.status),
            "{path}: {}",
            refused.body
        );
        assert!(!refused.body.to_string().contains(&id), "{}", refused.body);
        databricks_error(
            &call(&app, Method::GET, &path, &ana, None).await,
            403,
            "PERMISSION_DENIED",
        );
        let anonymous = read(
            app.client
                .get(format!("{}{path}", app.address))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    }
}

#[tokio::test]
async fn assigning_the_accounts_metastore_again_changes_nothing_and_nothing_else_is_assigned() {
    let app = spawn_app().await;
    let (_, workspace) = account_and_workspace(&app).await;
    let id = ok(&uc(&app, Method::GET, "/metastore_summary", &app.token, None).await)
        ["metastore_id"]
        .as_str()
        .unwrap()
        .to_string();
    let account = format!("/api/2.0/accounts/{}", app.account);
    let workspace_path = format!("/workspaces/{workspace}/metastore");
    let other = "00000000-0000-4000-8000-000000000000";

    for method in [Method::PUT, Method::PATCH] {
        let again = uc(
            &app,
            method.clone(),
            &workspace_path,
            &app.token,
            Some(json!({"metastore_id": id, "default_catalog_name": "main"})),
        )
        .await;
        assert_eq!(ok(&again), &json!({}));
        let another = uc(
            &app,
            method,
            &workspace_path,
            &app.token,
            Some(json!({"metastore_id": other})),
        )
        .await;
        databricks_error(&another, 404, "RESOURCE_DOES_NOT_EXIST");
    }
    let bad = uc(
        &app,
        Method::PUT,
        &workspace_path,
        &app.token,
        Some(json!({"metastore_id": 5})),
    )
    .await;
    databricks_error(&bad, 400, "INVALID_PARAMETER_VALUE");
    let elsewhere = uc(
        &app,
        Method::PUT,
        "/workspaces/424242/metastore",
        &app.token,
        Some(json!({"metastore_id": id})),
    )
    .await;
    databricks_error(&elsewhere, 404, "RESOURCE_DOES_NOT_EXIST");
    let unassigned = uc(
        &app,
        Method::DELETE,
        &format!("{workspace_path}?metastore_id={id}"),
        &app.token,
        None,
    )
    .await;
    assert!(
        databricks_error(&unassigned, 400, "INVALID_PARAMETER_VALUE")
            .contains("cannot be unassigned")
    );

    let account_path = format!("{account}/workspaces/{workspace}/metastores/{id}");
    let body = json!({"metastore_assignment": {"metastore_id": id}});
    for method in [Method::POST, Method::PUT] {
        let again = call(&app, method, &account_path, &app.token, Some(body.clone())).await;
        assert_eq!(ok(&again), &json!({}));
    }
    let another = call(
        &app,
        Method::POST,
        &format!("{account}/workspaces/{workspace}/metastores/{other}"),
        &app.token,
        Some(body.clone()),
    )
    .await;
    databricks_error(&another, 404, "RESOURCE_DOES_NOT_EXIST");
    let unassigned = call(&app, Method::DELETE, &account_path, &app.token, None).await;
    databricks_error(&unassigned, 400, "INVALID_PARAMETER_VALUE");

    // Only a metastore admin assigns.
    let ana = user_token(&app, "ana@example.com").await;
    let refused = uc(
        &app,
        Method::PUT,
        &workspace_path,
        &ana,
        Some(json!({"metastore_id": id})),
    )
    .await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
    let refused = call(&app, Method::PUT, &account_path, &ana, Some(body)).await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
    // And the assignment is what it was.
    let current = uc(
        &app,
        Method::GET,
        "/current-metastore-assignment",
        &ana,
        None,
    )
    .await;
    assert_eq!(ok(&current)["metastore_id"], id);
}
