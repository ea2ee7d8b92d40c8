//! The Statement Execution API for governance SQL: objects created and dropped, grants made
//! and shown, names qualified with the request's catalog and schema, and failures reported
//! as Databricks does (`status.state` `FAILED` with the error inside, naming the offending
//! token).

use crate::support::*;
use crate::unity_catalog::{databricks_error, uc};
use reqwest::Method;
use serde_json::{json, Value};

/// Runs a statement with the given token, in the given session catalog and schema.
async fn sql(
    app: &TestApp,
    token: &str,
    statement: &str,
    catalog: Option<&str>,
    schema: Option<&str>,
) -> Reply {
    let mut body = json!({"statement": statement, "warehouse_id": "any-warehouse"});
    if let Some(catalog) = catalog {
        body["catalog"] = json!(catalog);
    }
    if let Some(schema) = schema {
        body["schema"] = json!(schema);
    }
    read(
        app.client
            .post(format!("{}/api/2.0/sql/statements", app.address))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

/// Runs a statement as the admin and asserts it succeeded; returns its rows.
async fn ok(app: &TestApp, statement: &str) -> Vec<Value> {
    let reply = sql(app, &app.token, statement, Some("main"), Some("sales")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["status"]["state"], "SUCCEEDED",
        "{statement}: {}",
        reply.body
    );
    reply.body["result"]["data_array"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Asserts a statement failed with this `error_code`; returns the message.
fn failed(reply: &Reply, code: &str) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"]["state"], "FAILED", "{}", reply.body);
    assert_eq!(
        reply.body["status"]["error"]["error_code"], code,
        "{}",
        reply.body
    );
    reply.body["status"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn objects_made_in_sql_appear_in_the_rest_api_and_grants_show_in_show_grants() {
    let app = spawn_app().await;
    app.create_group("Data Engineers", &[]).await;
    ok(&app, "CREATE CATALOG main").await;
    ok(&app, "CREATE SCHEMA main.sales COMMENT 'sales'").await;
    // Unqualified: the request's catalog and schema complete the name.
    ok(
        &app,
        "CREATE TABLE orders (id INT, total DECIMAL(10, 2)) USING DELTA",
    )
    .await;
    ok(&app, "CREATE TABLE IF NOT EXISTS orders (id INT)").await;
    let table = uc(
        &app,
        Method::GET,
        "/tables/main.sales.orders",
        &app.token,
        None,
    )
    .await;
    assert_eq!(table.status, 200, "{}", table.body);
    assert_eq!(table.body["table_type"], "MANAGED");
    assert_eq!(table.body["schema_name"], "sales");

    ok(
        &app,
        "GRANT SELECT, MODIFY ON TABLE orders TO `Data Engineers`",
    )
    .await;
    ok(
        &app,
        "GRANT USE SCHEMA ON SCHEMA main.sales TO `Data Engineers`",
    )
    .await;
    let reply = sql(
        &app,
        &app.token,
        "SHOW GRANTS ON TABLE main.sales.orders",
        None,
        None,
    )
    .await;
    let columns: Vec<&str> = reply.body["manifest"]["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|column| str_of(column, "name"))
        .collect();
    assert_eq!(
        columns,
        ["principal", "actionType", "objectType", "objectKey"]
    );
    let rows = reply.body["result"]["data_array"].as_array().unwrap();
    for expected in [
        json!(["admin@scimitar.local", "OWN", "TABLE", "main.sales.orders"]),
        json!(["Data Engineers", "MODIFY", "TABLE", "main.sales.orders"]),
        json!(["Data Engineers", "SELECT", "TABLE", "main.sales.orders"]),
        json!(["Data Engineers", "USE SCHEMA", "SCHEMA", "main.sales"]),
    ] {
        assert!(rows.contains(&expected), "{expected} not in {rows:?}");
    }
    let only_group = ok(&app, "SHOW GRANTS `Data Engineers` ON SCHEMA main.sales").await;
    assert_eq!(
        only_group,
        [json!([
            "Data Engineers",
            "USE SCHEMA",
            "SCHEMA",
            "main.sales"
        ])]
    );

    ok(&app, "REVOKE MODIFY ON TABLE orders FROM `Data Engineers`").await;
    let grants = uc(
        &app,
        Method::GET,
        "/permissions/table/main.sales.orders",
        &app.token,
        None,
    )
    .await;
    assert_eq!(
        grants.body["privilege_assignments"],
        json!([{"principal": "Data Engineers", "privileges": ["SELECT"]}])
    );

    ok(&app, "DROP TABLE orders").await;
    let gone = uc(
        &app,
        Method::GET,
        "/tables/main.sales.orders",
        &app.token,
        None,
    )
    .await;
    databricks_error(&gone, 404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn a_statement_that_does_not_parse_fails_naming_the_token() {
    let app = spawn_app().await;
    let reply = sql(&app, &app.token, "GRANT TO `x`", None, None).await;
    let message = failed(&reply, "BAD_REQUEST");
    assert!(message.starts_with("[PARSE_SYNTAX_ERROR]"), "{message}");
    assert!(
        message.contains("'TO'") && message.contains("offset 6"),
        "{message}"
    );
    assert!(reply.body["statement_id"].is_string());
}

#[tokio::test]
async fn unknown_objects_and_principals_fail_as_not_found() {
    let app = spawn_app().await;
    ok(&app, "CREATE CATALOG main").await;
    let reply = sql(
        &app,
        &app.token,
        "GRANT USE CATALOG ON CATALOG main TO `ghost@example.com`",
        None,
        None,
    )
    .await;
    assert!(failed(&reply, "NOT_FOUND").contains("ghost@example.com"));
    let reply = sql(
        &app,
        &app.token,
        "GRANT SELECT ON TABLE main.nowhere.t TO users",
        None,
        None,
    )
    .await;
    assert!(failed(&reply, "NOT_FOUND").contains("main.nowhere.t"));
    let reply = sql(&app, &app.token, "CREATE CATALOG main", None, None).await;
    failed(&reply, "ALREADY_EXISTS");
    let reply = sql(&app, &app.token, "CREATE TABLE t (id INT)", None, None).await;
    assert!(failed(&reply, "BAD_REQUEST").contains("not fully qualified"));
}

#[tokio::test]
async fn a_non_admin_needs_use_catalog_use_schema_and_create_table_to_create_a_table() {
    let app = spawn_app().await;
    ok(&app, "CREATE CATALOG main").await;
    ok(&app, "CREATE SCHEMA main.sales").await;
    let dev = app.create_user("dev@example.com").await;
    let dev_token = app.token_for(str_of(&dev, "id")).await;
    let create = "CREATE TABLE main.sales.mine (id INT)";

    ok(
        &app,
        "GRANT CREATE TABLE ON SCHEMA main.sales TO `dev@example.com`",
    )
    .await;
    let message = failed(
        &sql(&app, &dev_token, create, None, None).await,
        "BAD_REQUEST",
    );
    assert!(
        message.starts_with("[INSUFFICIENT_PERMISSIONS]"),
        "{message}"
    );
    assert!(
        message.contains("USE_SCHEMA") && message.contains("USE_CATALOG"),
        "{message}"
    );

    ok(
        &app,
        "GRANT USE CATALOG ON CATALOG main TO `dev@example.com`",
    )
    .await;
    let message = failed(
        &sql(&app, &dev_token, create, None, None).await,
        "BAD_REQUEST",
    );
    assert!(
        message.contains("USE_SCHEMA") && !message.contains("USE_CATALOG"),
        "{message}"
    );

    ok(
        &app,
        "GRANT USE SCHEMA ON SCHEMA main.sales TO `dev@example.com`",
    )
    .await;
    let reply = sql(&app, &dev_token, create, None, None).await;
    assert_eq!(reply.body["status"]["state"], "SUCCEEDED", "{}", reply.body);
    // The creator owns it and may grant on it, but not on the schema it does not own.
    let reply = sql(
        &app,
        &dev_token,
        "GRANT SELECT ON TABLE main.sales.mine TO users",
        None,
        None,
    )
    .await;
    assert_eq!(reply.body["status"]["state"], "SUCCEEDED", "{}", reply.body);
    let reply = sql(
        &app,
        &dev_token,
        "GRANT SELECT ON SCHEMA main.sales TO users",
        None,
        None,
    )
    .await;
    failed(&reply, "BAD_REQUEST");
    // Ownership moves with ALTER ... OWNER TO.
    ok(&app, "ALTER TABLE main.sales.mine OWNER TO users").await;
    let table = uc(
        &app,
        Method::GET,
        "/tables/main.sales.mine",
        &app.token,
        None,
    )
    .await;
    assert_eq!(table.body["owner"], "users");
}

#[tokio::test]
async fn dropping_a_schema_with_cascade_takes_its_tables() {
    let app = spawn_app().await;
    ok(&app, "CREATE CATALOG main").await;
    ok(&app, "CREATE SCHEMA main.sales").await;
    ok(&app, "CREATE TABLE main.sales.orders (id INT)").await;
    let reply = sql(&app, &app.token, "DROP SCHEMA main.sales", None, None).await;
    assert!(failed(&reply, "BAD_REQUEST").contains("not empty"));
    ok(&app, "DROP SCHEMA main.sales CASCADE").await;
    let gone = uc(
        &app,
        Method::GET,
        "/tables/main.sales.orders",
        &app.token,
        None,
    )
    .await;
    databricks_error(&gone, 404, "RESOURCE_DOES_NOT_EXIST");
    ok(&app, "DROP SCHEMA IF EXISTS main.sales").await;
}

#[tokio::test]
async fn answers_can_be_fetched_again_by_statement_id_and_bad_requests_are_4xx() {
    let app = spawn_app().await;
    let reply = sql(&app, &app.token, "CREATE CATALOG main", None, None).await;
    let id = str_of(&reply.body, "statement_id").to_string();
    let again = read(
        app.request(Method::GET, &format!("/api/2.0/sql/statements/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again.body, reply.body);
    let unknown = read(
        app.request(Method::GET, "/api/2.0/sql/statements/nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    databricks_error(&unknown, 404, "RESOURCE_DOES_NOT_EXIST");
    let no_statement = read(
        app.request(Method::POST, "/api/2.0/sql/statements")
            .json(&json!({"warehouse_id": "w"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(databricks_error(&no_statement, 400, "INVALID_PARAMETER_VALUE").contains("statement"));
}

#[tokio::test]
async fn wrongly_typed_fields_are_refused_by_their_path_and_run_nothing() {
    let app = spawn_app().await;
    let post = |body: Value| {
        app.request(Method::POST, "/api/2.0/sql/statements")
            .json(&body)
            .send()
    };
    // Each statement would succeed were the request taken.
    let cases = [
        (
            json!({"statement": "CREATE CATALOG typed", "catalog": 5}),
            "catalog: invalid type: integer `5`, expected a string",
        ),
        (
            json!({"statement": "CREATE CATALOG typed", "schema": ["s"]}),
            "schema: invalid type: sequence, expected a string",
        ),
        (
            json!({"statement": ["CREATE CATALOG typed"]}),
            "statement: invalid type: sequence, expected a string",
        ),
        (
            json!({"statement": "  ", "warehouse_id": "w"}),
            "`statement` is required",
        ),
        (
            json!(["CREATE CATALOG typed"]),
            "the request body must be a JSON object",
        ),
    ];
    for (body, message) in cases {
        let reply = read(post(body.clone()).await.unwrap()).await;
        assert_eq!(
            databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE"),
            message,
            "{body}"
        );
    }
    let missing = uc(&app, Method::GET, "/catalogs/typed", &app.token, None).await;
    databricks_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn the_sdks_other_request_fields_are_accepted_and_ignored() {
    let app = spawn_app().await;
    let reply = read(
        app.request(Method::POST, "/api/2.0/sql/statements")
            .json(&json!({
                "statement": "CREATE CATALOG tolerated",
                "warehouse_id": "abc123",
                "catalog": "",
                "schema": null,
                "wait_timeout": "30s",
                "on_wait_timeout": "CONTINUE",
                "disposition": "INLINE",
                "format": "JSON_ARRAY",
                "row_limit": 100,
                "byte_limit": 1048576,
                "parameters": [{"name": "x", "value": "1", "type": "STRING"}],
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"]["state"], "SUCCEEDED", "{}", reply.body);
    let created = uc(&app, Method::GET, "/catalogs/tolerated", &app.token, None).await;
    assert_eq!(created.status, 200, "{}", created.body);
}
