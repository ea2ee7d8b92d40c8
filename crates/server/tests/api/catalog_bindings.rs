//! Catalog workspace bindings: an `ISOLATED` catalog, and everything in it, is usable only
//! from the workspaces bound to it (read-only from those bound `BINDING_TYPE_READ_ONLY`);
//! from any other it is answered as a missing one. The bindings calls as the SDK sends them
//! (`workspace-bindings/catalogs/{name}`, `bindings/catalog/{name}`), for whoever may manage
//! the catalog; a deleted workspace's bindings go with it, and a renamed catalog keeps its
//! own.

use crate::leaks::{second_account, spawn_app_with_url};
use crate::support::*;
use crate::unity_catalog::{databricks_error, UC};
use reqwest::Method;
use serde_json::{json, Value};

/// A Unity Catalog request addressed to a workspace by `/w/{id}`.
async fn uc_in(
    app: &TestApp,
    workspace: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    call(
        app,
        method,
        &format!("/w/{workspace}{UC}{path}"),
        Some(token),
        body,
    )
    .await
}

/// A statement of governance SQL run in a workspace.
async fn sql_in(app: &TestApp, workspace: &str, token: &str, statement: &str) -> Reply {
    let body = json!({"statement": statement, "warehouse_id": "any-warehouse"});
    call(
        app,
        Method::POST,
        &format!("/w/{workspace}/api/2.0/sql/statements"),
        Some(token),
        Some(body),
    )
    .await
}

fn sql_state(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    (
        reply.body["status"]["state"].as_str().unwrap().to_string(),
        reply.body["status"]["error"]["error_code"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

/// Makes a workspace through the Account API as the bootstrap admin; returns its id.
async fn new_workspace(app: &TestApp, name: &str) -> String {
    let reply = call(
        app,
        Method::POST,
        &format!("/api/2.0/accounts/{}/workspaces", app.account),
        Some(&app.token),
        Some(json!({"workspace_name": name})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["workspace_id"].as_i64().unwrap().to_string()
}

async fn default_workspace(app: &TestApp) -> String {
    app.services.workspaces(&app.account).await.unwrap()[0]
        .id
        .to_string()
}

fn number(id: &str) -> Value {
    json!(id.parse::<i64>().unwrap())
}

/// A catalog `main` with a schema `sales` holding a table `orders`, made by the admin in the
/// default workspace.
async fn catalog_with_a_table(app: &TestApp, workspace: &str) {
    for statement in [
        "CREATE CATALOG main",
        "CREATE SCHEMA main.sales",
        "CREATE TABLE main.sales.orders",
    ] {
        let reply = sql_in(app, workspace, &app.token, statement).await;
        assert_eq!(sql_state(&reply).0, "SUCCEEDED", "{}", reply.body);
    }
}

async fn isolate(app: &TestApp, workspace: &str, catalog: &str) -> Reply {
    uc_in(
        app,
        workspace,
        Method::PATCH,
        &format!("/catalogs/{catalog}"),
        &app.token,
        Some(json!({"isolation_mode": "ISOLATED"})),
    )
    .await
}

async fn bind(app: &TestApp, catalog: &str, workspace: &str, binding_type: &str) -> Reply {
    call(
        app,
        Method::PATCH,
        &format!("{UC}/bindings/catalog/{catalog}"),
        Some(&app.token),
        Some(json!({"add": [{"workspace_id": number(workspace), "binding_type": binding_type}]})),
    )
    .await
}

async fn user_token(app: &TestApp, name: &str) -> String {
    let user = app.create_user(name).await;
    app.token_for(str_of(&user, "id")).await
}

#[tokio::test]
async fn bindings_are_read_and_changed_by_whoever_may_manage_the_catalog_for_the_accounts_workspaces(
) {
    let (app, url) = spawn_app_with_url().await;
    let home = default_workspace(&app).await;
    catalog_with_a_table(&app, &home).await;
    let other = new_workspace(&app, "other").await;
    let legacy = format!("{UC}/workspace-bindings/catalogs/main");
    let current = format!("{UC}/bindings/catalog/main");
    let admin = Some(app.token.as_str());

    let none = call(&app, Method::GET, &legacy, admin, None).await;
    assert_eq!(none.body, json!({"workspaces": []}), "{}", none.body);
    let none = call(&app, Method::GET, &current, admin, None).await;
    assert_eq!(none.body, json!({"bindings": []}), "{}", none.body);

    // The deprecated call binds read-write; the current one says how.
    let assigned = call(
        &app,
        Method::PATCH,
        &legacy,
        admin,
        Some(json!({"assign_workspaces": [number(&other)]})),
    )
    .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    assert_eq!(assigned.body, json!({"workspaces": [number(&other)]}));
    let added = bind(&app, "main", &home, "BINDING_TYPE_READ_ONLY").await;
    assert_eq!(added.status, 200, "{}", added.body);
    let mut expected = vec![
        json!({"workspace_id": number(&home), "binding_type": "BINDING_TYPE_READ_ONLY"}),
        json!({"workspace_id": number(&other), "binding_type": "BINDING_TYPE_READ_WRITE"}),
    ];
    expected.sort_by_key(|binding| binding["workspace_id"].to_string());
    assert_eq!(added.body["bindings"], json!(expected));

    // A page at a time: the first page carries a token, the last none.
    let first = call(
        &app,
        Method::GET,
        &format!("{current}?max_results=1"),
        admin,
        None,
    )
    .await;
    assert_eq!(
        first.body["bindings"],
        json!([expected[0]]),
        "{}",
        first.body
    );
    let token = first.body["next_page_token"].as_str().unwrap().to_string();
    let second = call(
        &app,
        Method::GET,
        &format!("{current}?max_results=1&page_token={token}"),
        admin,
        None,
    )
    .await;
    assert_eq!(
        second.body["bindings"],
        json!([expected[1]]),
        "{}",
        second.body
    );
    assert!(
        second.body.get("next_page_token").is_none(),
        "{}",
        second.body
    );

    let removed = call(
        &app,
        Method::PATCH,
        &legacy,
        admin,
        Some(json!({"unassign_workspaces": [number(&home)]})),
    )
    .await;
    assert_eq!(removed.body, json!({"workspaces": [number(&other)]}));

    // Another account's workspace and a missing one are both missing, said alike; nothing
    // of the change is kept.
    let foreign = second_account(&app, &url).await;
    let foreign_workspace = app.services.workspaces(&foreign.0).await.unwrap()[0]
        .id
        .to_string();
    let mut messages = Vec::new();
    for id in [foreign_workspace.as_str(), "987654321"] {
        let refused = call(
            &app,
            Method::PATCH,
            &current,
            admin,
            Some(json!({"add": [{"workspace_id": number(&other)}, {"workspace_id": number(id)}]})),
        )
        .await;
        let message = databricks_error(&refused, 404, "RESOURCE_DOES_NOT_EXIST");
        messages.push(message.replace(id, "ID"));
    }
    assert_eq!(messages[0], messages[1]);
    let unchanged = call(&app, Method::GET, &legacy, admin, None).await;
    assert_eq!(unchanged.body, json!({"workspaces": [number(&other)]}));

    // Only catalogs are bound; a bad binding type is the client's error.
    for (path, body) in [
        (format!("{UC}/bindings/external_location/somewhere"), None),
        (format!("{UC}/bindings/table/main.sales.orders"), None),
        (
            current.clone(),
            Some(json!({"add": [{"workspace_id": number(&other), "binding_type": "SOMETIMES"}]})),
        ),
        (legacy.clone(), Some(json!({"assign_workspaces": "all"}))),
    ] {
        let method = if body.is_some() {
            Method::PATCH
        } else {
            Method::GET
        };
        let refused = call(&app, method, &path, admin, body).await;
        databricks_error(&refused, 400, "INVALID_PARAMETER_VALUE");
    }

    // No credential; one who does not see the catalog; one who sees it and may not manage
    // it; another account's admin.
    let anonymous = call(&app, Method::GET, &legacy, None, None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let ana = user_token(&app, "ana@example.com").await;
    let refused = call(&app, Method::GET, &current, Some(&ana), None).await;
    databricks_error(&refused, 404, "RESOURCE_DOES_NOT_EXIST");
    let grant = json!({"changes": [{"principal": "ana@example.com", "add": ["USE_CATALOG"]}]});
    let granted = call(
        &app,
        Method::PATCH,
        &format!("{UC}/permissions/catalog/main"),
        admin,
        Some(grant),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    let refused = call(&app, Method::GET, &current, Some(&ana), None).await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
    let body = json!({"assign_workspaces": [number(&home)]});
    let refused = call(&app, Method::PATCH, &legacy, Some(&ana), Some(body)).await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
    let body = json!({"add": [{"workspace_id": number(&home)}]});
    let refused = call(&app, Method::PATCH, &current, Some(&foreign.1), Some(body)).await;
    assert!([403, 404].contains(&refused.status), "{}", refused.body);
    let unchanged = call(&app, Method::GET, &legacy, admin, None).await;
    assert_eq!(unchanged.body, json!({"workspaces": [number(&other)]}));

    // The owner may.
    let transferred = call(
        &app,
        Method::PATCH,
        &format!("{UC}/catalogs/main"),
        admin,
        Some(json!({"owner": "ana@example.com"})),
    )
    .await;
    assert_eq!(transferred.status, 200, "{}", transferred.body);
    let body = json!({"remove": [{"workspace_id": number(&other)}]});
    let emptied = call(&app, Method::PATCH, &current, Some(&ana), Some(body)).await;
    assert_eq!(emptied.body, json!({"bindings": []}), "{}", emptied.body);
}

#[tokio::test]
async fn an_isolated_catalog_is_missing_from_a_workspace_not_bound_to_it_and_there_in_one_that_is()
{
    let app = spawn_app().await;
    let home = default_workspace(&app).await;
    catalog_with_a_table(&app, &home).await;
    let other = new_workspace(&app, "other").await;
    let token = app.token.clone();

    // Isolating it from a workspace binds that workspace, so its admin keeps it.
    let isolated = isolate(&app, &home, "main").await;
    assert_eq!(isolated.status, 200, "{}", isolated.body);
    assert_eq!(isolated.body["isolation_mode"], "ISOLATED");
    let bound = uc_in(
        &app,
        &home,
        Method::GET,
        "/bindings/catalog/main",
        &token,
        None,
    )
    .await;
    assert_eq!(
        bound.body["bindings"],
        json!([{"workspace_id": number(&home), "binding_type": "BINDING_TYPE_READ_WRITE"}])
    );
    let got = uc_in(&app, &home, Method::GET, "/catalogs/main", &token, None).await;
    assert_eq!(got.body["isolation_mode"], "ISOLATED", "{}", got.body);

    // From the unbound workspace, even to an account admin, every read of it or of what it
    // holds answers as for a catalog that does not exist.
    let reads = [
        "/catalogs/{c}",
        "/schemas?catalog_name={c}",
        "/schemas/{c}.sales",
        "/tables?catalog_name={c}&schema_name=sales",
        "/tables/{c}.sales.orders",
        "/table-summaries?catalog_name={c}",
        "/permissions/catalog/{c}",
        "/effective-permissions/catalog/{c}",
        "/permissions/table/{c}.sales.orders",
        "/bindings/catalog/{c}",
    ];
    for read in reads {
        let isolated = uc_in(
            &app,
            &other,
            Method::GET,
            &read.replace("{c}", "main"),
            &token,
            None,
        )
        .await;
        let missing = uc_in(
            &app,
            &other,
            Method::GET,
            &read.replace("{c}", "nowhere"),
            &token,
            None,
        )
        .await;
        assert_eq!(isolated.status, 404, "{read}: {}", isolated.body);
        assert_eq!(
            isolated.body["error_code"], missing.body["error_code"],
            "{read}: {} / {}",
            isolated.body, missing.body
        );
        assert_eq!(
            isolated.body["message"]
                .as_str()
                .unwrap()
                .replace("main", "X"),
            missing.body["message"]
                .as_str()
                .unwrap()
                .replace("nowhere", "X"),
            "{read}"
        );
    }
    let exists = uc_in(
        &app,
        &other,
        Method::GET,
        "/tables/main.sales.orders/exists",
        &token,
        None,
    )
    .await;
    assert_eq!(
        exists.body,
        json!({"table_exists": false}),
        "{}",
        exists.body
    );
    let listed = uc_in(&app, &other, Method::GET, "/catalogs", &token, None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        !listed.body.to_string().contains("\"main\""),
        "{}",
        listed.body
    );
    for statement in [
        "SHOW GRANTS ON CATALOG main",
        "SHOW GRANTS ON TABLE main.sales.orders",
        "CREATE SCHEMA main.more",
        "DROP CATALOG main CASCADE",
    ] {
        let reply = sql_in(&app, &other, &token, statement).await;
        assert_eq!(
            sql_state(&reply),
            ("FAILED".to_string(), "NOT_FOUND".to_string()),
            "{statement}"
        );
    }
    let refused = uc_in(
        &app,
        &other,
        Method::PATCH,
        "/catalogs/main",
        &token,
        Some(json!({"comment": "mine now"})),
    )
    .await;
    assert_eq!(refused.status, 404, "{}", refused.body);

    // Bound, it is there.
    let bound = bind(&app, "main", &other, "BINDING_TYPE_READ_WRITE").await;
    assert_eq!(bound.status, 200, "{}", bound.body);
    for read in reads {
        let reply = uc_in(
            &app,
            &other,
            Method::GET,
            &read.replace("{c}", "main"),
            &token,
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{read}: {}", reply.body);
    }
    let listed = uc_in(&app, &other, Method::GET, "/catalogs", &token, None).await;
    assert!(
        listed.body.to_string().contains("\"main\""),
        "{}",
        listed.body
    );

    // Open again, it is there for every workspace, whatever its bindings.
    let third = new_workspace(&app, "third").await;
    let missing = uc_in(&app, &third, Method::GET, "/catalogs/main", &token, None).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let opened = uc_in(
        &app,
        &home,
        Method::PATCH,
        "/catalogs/main",
        &token,
        Some(json!({"isolation_mode": "OPEN"})),
    )
    .await;
    assert_eq!(opened.body["isolation_mode"], "OPEN", "{}", opened.body);
    let found = uc_in(&app, &third, Method::GET, "/catalogs/main", &token, None).await;
    assert_eq!(found.status, 200, "{}", found.body);

    // A schema has no isolation mode.
    let refused = uc_in(
        &app,
        &home,
        Method::PATCH,
        "/schemas/main.sales",
        &token,
        Some(json!({"isolation_mode": "ISOLATED"})),
    )
    .await;
    databricks_error(&refused, 400, "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn a_read_only_binding_lets_its_workspace_read_and_refuses_every_write() {
    let app = spawn_app().await;
    let home = default_workspace(&app).await;
    catalog_with_a_table(&app, &home).await;
    let reader = new_workspace(&app, "reader").await;
    assert_eq!(isolate(&app, &home, "main").await.status, 200);
    let bound = bind(&app, "main", &reader, "BINDING_TYPE_READ_ONLY").await;
    assert_eq!(bound.status, 200, "{}", bound.body);
    let token = app.token.clone();

    for read in [
        "/catalogs/main",
        "/schemas/main.sales",
        "/tables/main.sales.orders",
        "/permissions/catalog/main",
    ] {
        let reply = uc_in(&app, &reader, Method::GET, read, &token, None).await;
        assert_eq!(reply.status, 200, "{read}: {}", reply.body);
    }
    let grant = json!({"changes": [{"principal": "admins", "add": ["SELECT"]}]});
    let writes = [
        (
            Method::POST,
            "/schemas",
            Some(json!({"name": "more", "catalog_name": "main"})),
        ),
        (
            Method::PATCH,
            "/catalogs/main",
            Some(json!({"comment": "read only?"})),
        ),
        (
            Method::PATCH,
            "/schemas/main.sales",
            Some(json!({"new_name": "sold"})),
        ),
        (
            Method::PATCH,
            "/tables/main.sales.orders",
            Some(json!({"owner": "admins"})),
        ),
        (
            Method::PATCH,
            "/permissions/catalog/main",
            Some(grant.clone()),
        ),
        (
            Method::PATCH,
            "/permissions/table/main.sales.orders",
            Some(grant),
        ),
        (Method::DELETE, "/tables/main.sales.orders", None),
        (Method::DELETE, "/schemas/main.sales?force=true", None),
        (Method::DELETE, "/catalogs/main?force=true", None),
    ];
    for (method, path, body) in writes {
        let refused = uc_in(&app, &reader, method, path, &token, body).await;
        databricks_error(&refused, 403, "PERMISSION_DENIED");
    }
    for statement in [
        "CREATE TABLE main.sales.more",
        "GRANT SELECT ON TABLE main.sales.orders TO admins",
        "ALTER TABLE main.sales.orders OWNER TO admins",
        "DROP TABLE main.sales.orders",
    ] {
        let reply = sql_in(&app, &reader, &token, statement).await;
        // Statements say a refusal as Databricks' SQL does: the error class in the message.
        assert_eq!(
            sql_state(&reply),
            ("FAILED".to_string(), "BAD_REQUEST".to_string()),
            "{statement}: {}",
            reply.body
        );
        let message = reply.body["status"]["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("[INSUFFICIENT_PERMISSIONS]") && message.contains("read-only"),
            "{statement}: {message}"
        );
    }
    // Nothing was written, and the bound read-write workspace still writes.
    let tables = uc_in(
        &app,
        &home,
        Method::GET,
        "/tables?catalog_name=main&schema_name=sales",
        &token,
        None,
    )
    .await;
    assert_eq!(tables.body["tables"].as_array().unwrap().len(), 1);
    let reply = sql_in(&app, &home, &token, "CREATE TABLE main.sales.more").await;
    assert_eq!(sql_state(&reply).0, "SUCCEEDED", "{}", reply.body);
}

#[tokio::test]
async fn deleting_a_workspace_deletes_its_bindings() {
    let app = spawn_app().await;
    let home = default_workspace(&app).await;
    catalog_with_a_table(&app, &home).await;
    let doomed = new_workspace(&app, "doomed").await;
    assert_eq!(isolate(&app, &home, "main").await.status, 200);
    assert_eq!(
        bind(&app, "main", &doomed, "BINDING_TYPE_READ_ONLY")
            .await
            .status,
        200
    );
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("/api/2.0/accounts/{}/workspaces/{doomed}", app.account),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let bound = call(
        &app,
        Method::GET,
        &format!("{UC}/workspace-bindings/catalogs/main"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(bound.body, json!({"workspaces": [number(&home)]}));
}

#[tokio::test]
async fn a_renamed_catalog_keeps_its_isolation_and_its_bindings() {
    let app = spawn_app().await;
    let home = default_workspace(&app).await;
    catalog_with_a_table(&app, &home).await;
    let reader = new_workspace(&app, "reader").await;
    let outsider = new_workspace(&app, "outsider").await;
    assert_eq!(isolate(&app, &home, "main").await.status, 200);
    assert_eq!(
        bind(&app, "main", &reader, "BINDING_TYPE_READ_ONLY")
            .await
            .status,
        200
    );
    let token = app.token.clone();
    let renamed = uc_in(
        &app,
        &home,
        Method::PATCH,
        "/catalogs/main",
        &token,
        Some(json!({"new_name": "primary"})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["isolation_mode"], "ISOLATED");
    let bound = uc_in(
        &app,
        &home,
        Method::GET,
        "/bindings/catalog/primary",
        &token,
        None,
    )
    .await;
    assert_eq!(
        bound.body["bindings"].as_array().unwrap().len(),
        2,
        "{}",
        bound.body
    );
    let read = uc_in(
        &app,
        &reader,
        Method::GET,
        "/tables/primary.sales.orders",
        &token,
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let missing = uc_in(
        &app,
        &outsider,
        Method::GET,
        "/catalogs/primary",
        &token,
        None,
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let old = uc_in(
        &app,
        &home,
        Method::GET,
        "/bindings/catalog/main",
        &token,
        None,
    )
    .await;
    assert_eq!(old.status, 404, "{}", old.body);

    // A catalog made again under the old name starts open, with no bindings.
    let reply = sql_in(&app, &home, &token, "CREATE CATALOG main").await;
    assert_eq!(sql_state(&reply).0, "SUCCEEDED", "{}", reply.body);
    let fresh = uc_in(&app, &outsider, Method::GET, "/catalogs/main", &token, None).await;
    assert_eq!(fresh.body["isolation_mode"], "OPEN", "{}", fresh.body);
}

/// A Unity Catalog read on `node`, in a workspace, after a change token.
async fn read_on(
    node: &crate::multi_node::Node,
    app: &TestApp,
    workspace: &str,
    path: &str,
    after: &str,
) -> Reply {
    read(
        app.client
            .get(format!("{}/w/{workspace}{UC}{path}", node.address))
            .bearer_auth(&app.token)
            .header("scimitar-read-after", after)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn another_node_follows_isolation_and_bindings_and_a_node_started_later_loads_them() {
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on(database, &url).await;
    let other = crate::multi_node::node_on(&url).await;
    let home = default_workspace(&app).await;
    catalog_with_a_table(&app, &home).await;
    let second = new_workspace(&app, "second").await;

    let isolated = isolate(&app, &home, "main").await;
    assert_eq!(isolated.status, 200, "{}", isolated.body);
    let after = crate::multi_node::change_token(&isolated);
    let missing = read_on(&other, &app, &second, "/catalogs/main", &after).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let found = read_on(&other, &app, &home, "/catalogs/main", &after).await;
    assert_eq!(found.body["isolation_mode"], "ISOLATED", "{}", found.body);

    let bound = bind(&app, "main", &second, "BINDING_TYPE_READ_ONLY").await;
    assert_eq!(bound.status, 200, "{}", bound.body);
    let after = crate::multi_node::change_token(&bound);
    let found = read_on(&other, &app, &second, "/tables/main.sales.orders", &after).await;
    assert_eq!(found.status, 200, "{}", found.body);

    // A node that starts now builds its engine from the stored rows, not the log.
    let later = crate::multi_node::node_on(&url).await;
    let found = read_on(&later, &app, &second, "/schemas/main.sales", &after).await;
    assert_eq!(found.status, 200, "{}", found.body);
    let third = new_workspace(&app, "third").await;
    let missing = read_on(&later, &app, &third, "/catalogs/main", &after).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let bindings = read_on(&later, &app, &home, "/bindings/catalog/main", &after).await;
    assert_eq!(
        bindings.body["bindings"].as_array().unwrap().len(),
        2,
        "{}",
        bindings.body
    );
}

fn on_orders(privilege: &str) -> Vec<(&str, &str)> {
    vec![
        ("principal", "reader@example.com"),
        ("privilege", privilege),
        ("securable_type", "TABLE"),
        ("full_name", "main.sales.orders"),
    ]
}

#[tokio::test]
async fn access_questions_hold_a_securable_to_the_catalog_bindings_of_the_workspace_asked_from() {
    let app = spawn_app().await;
    let home = default_workspace(&app).await;
    catalog_with_a_table(&app, &home).await;
    let read_only = new_workspace(&app, "read-only").await;
    let unbound = new_workspace(&app, "unbound").await;
    // A reader in all three workspaces, who may read and modify the table.
    let reader = app.create_user("reader@example.com").await;
    for workspace in [&read_only, &unbound] {
        let assigned = call(
            &app,
            Method::PUT,
            &format!(
                "/api/2.0/accounts/{}/workspaces/{workspace}/permissionassignments/principals/{}",
                app.account,
                str_of(&reader, "id")
            ),
            Some(&app.token),
            Some(json!({"permissions": ["USER"]})),
        )
        .await;
        assert_eq!(assigned.status, 200, "{}", assigned.body);
    }
    for statement in [
        "GRANT USE CATALOG ON CATALOG main TO `reader@example.com`",
        "GRANT USE SCHEMA, SELECT, MODIFY ON SCHEMA main.sales TO `reader@example.com`",
    ] {
        let reply = sql_in(&app, &home, &app.token, statement).await;
        assert_eq!(sql_state(&reply).0, "SUCCEEDED", "{}", reply.body);
    }
    assert_eq!(isolate(&app, &home, "main").await.status, 200);
    let bound = bind(&app, "main", &read_only, "BINDING_TYPE_READ_ONLY").await;
    assert_eq!(bound.status, 200, "{}", bound.body);

    // Bound read-write: allowed, as everywhere before the catalog was isolated.
    for privilege in ["SELECT", "MODIFY"] {
        let reply = ask_in(&app, &home, &app.token, "check", &on_orders(privilege)).await;
        assert_eq!(reply.body["allowed"], true, "{privilege}: {}", reply.body);
    }

    // Bound read-only: reads are allowed; a write is not, and the answer says why.
    let select = ask_in(&app, &read_only, &app.token, "check", &on_orders("SELECT")).await;
    assert_eq!(select.body["allowed"], true, "{}", select.body);
    let modify = ask_in(&app, &read_only, &app.token, "check", &on_orders("MODIFY")).await;
    assert_eq!(modify.status, 200, "{}", modify.body);
    assert_eq!(modify.body["allowed"], false, "{}", modify.body);
    assert_eq!(
        modify.body["missing"],
        json!([{
            "catalog": "main",
            "binding_type": "BINDING_TYPE_READ_ONLY",
            "message": "CATALOG main is bound read-only to this workspace, which may only read it",
        }]),
        "{}",
        modify.body
    );
    let readers = ask_in(
        &app,
        &read_only,
        &app.token,
        "who",
        &on_orders("SELECT")[1..],
    )
    .await;
    assert!(
        readers.body.to_string().contains("reader@example.com"),
        "{}",
        readers.body
    );
    let writers = ask_in(
        &app,
        &read_only,
        &app.token,
        "who",
        &on_orders("MODIFY")[1..],
    )
    .await;
    assert_eq!(writers.status, 200, "{}", writers.body);
    assert_eq!(writers.body["principals"], json!([]), "{}", writers.body);
    let what = ask_in(
        &app,
        &read_only,
        &app.token,
        "what",
        &[("principal", "reader@example.com")],
    )
    .await;
    let held = what.body.to_string();
    assert!(
        held.contains("\"SELECT\"") && !held.contains("\"MODIFY\""),
        "{held}"
    );

    // Not bound: the table, and everything about it, is missing, as Unity Catalog answers.
    let from_catalog = uc_in(
        &app,
        &unbound,
        Method::GET,
        "/tables/main.sales.orders",
        &app.token,
        None,
    )
    .await;
    assert_eq!(from_catalog.status, 404, "{}", from_catalog.body);
    for (question, query) in [
        ("check", &on_orders("SELECT")[..]),
        ("who", &on_orders("SELECT")[1..]),
    ] {
        let reply = ask_in(&app, &unbound, &app.token, question, query).await;
        assert_eq!(reply.status, 404, "{question}: {}", reply.body);
        assert_eq!(reply.body, from_catalog.body, "{question}");
    }
    let what = ask_in(
        &app,
        &unbound,
        &app.token,
        "what",
        &[("principal", "reader@example.com")],
    )
    .await;
    assert_eq!(what.status, 200, "{}", what.body);
    assert!(!what.body.to_string().contains("main"), "{}", what.body);
}
