//! The Unity Catalog calls tools make first: `PATCH` on catalogs, schemas and tables (rename,
//! comment, ownership, and who may), `POST /tables`, `tables/{name}/exists`,
//! `table-summaries`, and a view's grants addressed as a table, over REST and in SQL.

use crate::leaks::{second_account, spawn_app_with_url};
use crate::multi_node::{change_token, two_nodes, Node};
use crate::support::*;
use crate::unity_catalog::{databricks_error, uc, UC};
use reqwest::Method;
use serde_json::{json, Value};

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Reply {
    uc(app, Method::POST, path, token, Some(body)).await
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> Reply {
    uc(app, Method::PATCH, path, token, Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> Reply {
    uc(app, Method::GET, path, token, None).await
}

/// A GET with query parameters.
async fn get_with(app: &TestApp, token: &str, path: &str, query: &[(&str, &str)]) -> Reply {
    read(
        app.client
            .get(format!("{}{UC}{path}", app.address))
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    &reply.body
}

/// A table (`MANAGED`) or view (`VIEW`) made through `POST /tables`.
async fn create_table(app: &TestApp, token: &str, full_name: &str, table_type: &str) -> Reply {
    let parts: Vec<&str> = full_name.split('.').collect();
    post(
        app,
        token,
        "/tables",
        json!({
            "catalog_name": parts[0], "schema_name": parts[1], "name": parts[2],
            "table_type": table_type, "data_source_format": "DELTA",
            "storage_location": "s3://bucket/x",
        }),
    )
    .await
}

/// `main`, `main.sales`, the table `main.sales.orders` and the view `main.sales.recent`,
/// made by the admin.
async fn tree(app: &TestApp) {
    ok(&post(app, &app.token, "/catalogs", json!({"name": "main"})).await);
    ok(&post(
        app,
        &app.token,
        "/schemas",
        json!({"name": "sales", "catalog_name": "main"}),
    )
    .await);
    ok(&create_table(app, &app.token, "main.sales.orders", "MANAGED").await);
    ok(&create_table(app, &app.token, "main.sales.recent", "VIEW").await);
}

async fn grant(app: &TestApp, path: &str, principal: &str, privileges: &[&str]) {
    ok(&patch(
        app,
        &app.token,
        &format!("/permissions/{path}"),
        json!({"changes": [{"principal": principal, "add": privileges}]}),
    )
    .await);
}

/// A user and a token of it.
async fn user(app: &TestApp, name: &str) -> String {
    let user = app.create_user(name).await;
    app.token_for(str_of(&user, "id")).await
}

/// The privileges `principal` holds on a securable itself, from `GET /permissions`.
async fn granted(app: &TestApp, path: &str, principal: &str) -> Vec<String> {
    let reply = get_with(
        app,
        &app.token,
        &format!("/permissions/{path}"),
        &[("principal", principal)],
    )
    .await;
    ok(&reply)["privilege_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|entry| entry["privileges"].as_array().unwrap().clone())
        .map(|privilege| privilege.as_str().unwrap().to_string())
        .collect()
}

/// Runs governance SQL with `token`; returns the statement's answer.
async fn sql(app: &TestApp, token: &str, statement: &str) -> Value {
    let reply = read(
        app.client
            .post(format!("{}/api/2.0/sql/statements", app.address))
            .bearer_auth(token)
            .json(&json!({"statement": statement, "warehouse_id": "any"}))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn succeeded(answer: &Value) -> Vec<Value> {
    assert_eq!(answer["status"]["state"], "SUCCEEDED", "{answer}");
    answer["result"]["data_array"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

// ----- PATCH -------------------------------------------------------------------------------

#[tokio::test]
async fn a_renamed_catalog_carries_its_schemas_tables_and_grants() {
    let app = spawn_app().await;
    tree(&app).await;
    let ana = user(&app, "ana@example.com").await;
    grant(&app, "catalog/main", "ana@example.com", &["USE_CATALOG"]).await;
    grant(
        &app,
        "schema/main.sales",
        "ana@example.com",
        &["USE_SCHEMA"],
    )
    .await;
    grant(
        &app,
        "table/main.sales.orders",
        "ana@example.com",
        &["SELECT"],
    )
    .await;

    let renamed = patch(
        &app,
        &app.token,
        "/catalogs/main",
        json!({"new_name": "Prod", "comment": "production"}),
    )
    .await;
    let renamed = ok(&renamed);
    assert_eq!(renamed["name"], "prod", "names fold to lower case");
    assert_eq!(renamed["full_name"], "prod");
    assert_eq!(renamed["comment"], "production");
    assert_eq!(renamed["owner"], "admin@scimitar.local");

    databricks_error(
        &get(&app, &app.token, "/catalogs/main").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );
    let schema = get(&app, &app.token, "/schemas/prod.sales").await;
    assert_eq!(ok(&schema)["catalog_name"], "prod");
    let table = get(&app, &ana, "/tables/prod.sales.orders").await;
    assert_eq!(
        ok(&table)["full_name"],
        "prod.sales.orders",
        "ana still reads it"
    );
    assert_eq!(
        granted(&app, "catalog/prod", "ana@example.com").await,
        ["USE_CATALOG"]
    );
    assert_eq!(
        granted(&app, "table/prod.sales.orders", "ana@example.com").await,
        ["SELECT"]
    );
    let listed = get_with(
        &app,
        &ana,
        "/tables",
        &[("catalog_name", "prod"), ("schema_name", "sales")],
    )
    .await;
    assert_eq!(
        ok(&listed)["tables"][0]["full_name"],
        "prod.sales.orders",
        "only what ana may see"
    );

    // A schema renamed takes its tables and their grants; the catalog stays.
    let schema = patch(
        &app,
        &app.token,
        "/schemas/prod.sales",
        json!({"new_name": "revenue"}),
    )
    .await;
    assert_eq!(ok(&schema)["full_name"], "prod.revenue");
    assert_eq!(
        granted(&app, "table/prod.revenue.orders", "ana@example.com").await,
        ["SELECT"]
    );
    ok(&get(&app, &app.token, "/tables/prod.revenue.recent").await);
    databricks_error(
        &get(&app, &app.token, "/tables/prod.sales.orders").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );
    // The engine follows the rename (its log entry): the grant answers access questions.
    let check = read(
        app.request(Method::GET, "/api/2.0/access/check")
            .query(&[
                ("principal", "ana@example.com"),
                ("privilege", "SELECT"),
                ("securable_type", "TABLE"),
                ("full_name", "prod.revenue.orders"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(check.body["allowed"], true, "{}", check.body);
}

#[tokio::test]
async fn a_rename_onto_a_taken_name_or_a_bad_one_changes_nothing() {
    let app = spawn_app().await;
    tree(&app).await;
    ok(&post(&app, &app.token, "/catalogs", json!({"name": "other"})).await);
    let taken = patch(
        &app,
        &app.token,
        "/catalogs/main",
        json!({"new_name": "OTHER", "owner": "users"}),
    )
    .await;
    databricks_error(&taken, 409, "RESOURCE_ALREADY_EXISTS");
    for (body, why) in [
        (json!({"new_name": "a.b"}), "a dot"),
        (json!({"new_name": " "}), "blank"),
        (json!({"new_name": 7}), "not a string"),
        (json!({"owner": ""}), "blank owner"),
        (json!({"comment": "x".repeat(1025)}), "too long a comment"),
        (json!(["new_name"]), "not an object"),
        (
            json!({"isolation_mode": "SOMETIMES"}),
            "not an isolation mode",
        ),
    ] {
        let refused = patch(&app, &app.token, "/catalogs/main", body).await;
        assert_eq!(refused.status, 400, "{why}: {}", refused.body);
        assert_eq!(
            refused.body["error_code"], "INVALID_PARAMETER_VALUE",
            "{why}"
        );
    }
    let unknown_owner = patch(
        &app,
        &app.token,
        "/catalogs/main",
        json!({"new_name": "x", "owner": "nobody@example.com"}),
    )
    .await;
    databricks_error(&unknown_owner, 404, "RESOURCE_DOES_NOT_EXIST");
    let missing = patch(
        &app,
        &app.token,
        "/catalogs/nowhere",
        json!({"comment": "c"}),
    )
    .await;
    databricks_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST");
    // Nothing was half written: main is as it was, with its owner and contents.
    let main = get(&app, &app.token, "/catalogs/main").await;
    assert_eq!(ok(&main)["owner"], "admin@scimitar.local");
    assert!(main.body.get("comment").is_none(), "{}", main.body);
    ok(&get(&app, &app.token, "/tables/main.sales.orders").await);
    databricks_error(
        &get(&app, &app.token, "/catalogs/x").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );
    let open = patch(
        &app,
        &app.token,
        "/catalogs/main",
        json!({"isolation_mode": "OPEN"}),
    )
    .await;
    assert_eq!(ok(&open)["isolation_mode"], "OPEN");
    // A comment set, then cleared with an empty one; the same name is no rename.
    let commented = patch(
        &app,
        &app.token,
        "/schemas/main.sales",
        json!({"comment": "c", "new_name": "sales"}),
    )
    .await;
    assert_eq!(ok(&commented)["comment"], "c");
    let cleared = patch(
        &app,
        &app.token,
        "/schemas/main.sales",
        json!({"comment": ""}),
    )
    .await;
    assert!(ok(&cleared).get("comment").is_none(), "{}", cleared.body);
}

#[tokio::test]
async fn ownership_moves_by_patch_for_owners_and_admins_only_by_the_rule_sql_shares() {
    let app = spawn_app().await;
    tree(&app).await;
    let ana = user(&app, "ana@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    let carl = user(&app, "carl@example.com").await;

    // The admin hands the catalog to ana; ana, its owner, hands it on to bob.
    let moved = patch(
        &app,
        &app.token,
        "/catalogs/main",
        json!({"owner": "ana@example.com"}),
    )
    .await;
    assert_eq!(ok(&moved)["owner"], "ana@example.com");
    let moved = patch(
        &app,
        &ana,
        "/catalogs/main",
        json!({"owner": "bob@example.com"}),
    )
    .await;
    assert_eq!(ok(&moved)["owner"], "bob@example.com");

    // carl sees nothing: every PATCH is "does not exist", as for a missing catalog.
    for path in [
        "/catalogs/main",
        "/schemas/main.sales",
        "/tables/main.sales.orders",
    ] {
        let refused = patch(&app, &carl, path, json!({"owner": "carl@example.com"})).await;
        databricks_error(&refused, 404, "RESOURCE_DOES_NOT_EXIST");
    }
    // Seeing it (a grant) is not managing it.
    grant(&app, "catalog/main", "carl@example.com", &["USE_CATALOG"]).await;
    let refused = patch(
        &app,
        &carl,
        "/catalogs/main",
        json!({"owner": "carl@example.com", "new_name": "mine"}),
    )
    .await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
    ok(&get(&app, &app.token, "/catalogs/main").await);

    // A schema's owner transfers a table in it only with USE CATALOG on the catalog.
    ok(&patch(
        &app,
        &app.token,
        "/schemas/main.sales",
        json!({"owner": "ana@example.com"}),
    )
    .await);
    let refused = patch(
        &app,
        &ana,
        "/tables/main.sales.orders",
        json!({"owner": "ana@example.com"}),
    )
    .await;
    let message = databricks_error(&refused, 403, "PERMISSION_DENIED");
    assert!(
        message.contains("USE_CATALOG") || message.contains("USE CATALOG"),
        "{message}"
    );
    // ALTER ... OWNER TO is refused by the same rule.
    let answer = sql(
        &app,
        &ana,
        "ALTER TABLE main.sales.orders OWNER TO `ana@example.com`",
    )
    .await;
    assert_eq!(answer["status"]["state"], "FAILED", "{answer}");
    let message = answer["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("INSUFFICIENT_PERMISSIONS"), "{answer}");
    grant(&app, "catalog/main", "ana@example.com", &["USE_CATALOG"]).await;
    let moved = patch(
        &app,
        &ana,
        "/tables/main.sales.orders",
        json!({"owner": "ana@example.com"}),
    )
    .await;
    assert_eq!(ok(&moved)["owner"], "ana@example.com");
    succeeded(
        &sql(
            &app,
            &ana,
            "ALTER TABLE main.sales.orders OWNER TO `bob@example.com`",
        )
        .await,
    );
    let table = get(&app, &app.token, "/tables/main.sales.orders").await;
    assert_eq!(ok(&table)["owner"], "bob@example.com");
    // The catalog's owner (bob) transfers the view, addressed as a table.
    let view = patch(
        &app,
        &bob,
        "/tables/main.sales.recent",
        json!({"owner": "users"}),
    )
    .await;
    assert_eq!(ok(&view)["owner"], "users");
    assert_eq!(view.body["table_type"], "VIEW");

    // A table PATCH takes an owner and nothing else.
    for body in [json!({}), json!({"new_name": "o2"}), json!({"owner": " "})] {
        let refused = patch(&app, &app.token, "/tables/main.sales.orders", body).await;
        databricks_error(&refused, 400, "INVALID_PARAMETER_VALUE");
    }
}

#[tokio::test]
async fn no_token_and_another_accounts_token_change_nothing() {
    let (app, url) = spawn_app_with_url().await;
    tree(&app).await;
    let (_, foreign) = second_account(&app, &url).await;
    let no_token = read(
        app.client
            .patch(format!("{}{UC}/catalogs/main", app.address))
            .json(&json!({"owner": "users"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    databricks_error(&no_token, 401, "UNAUTHENTICATED");
    for (method, path, body) in [
        (
            Method::PATCH,
            "/catalogs/main",
            Some(json!({"new_name": "stolen"})),
        ),
        (
            Method::PATCH,
            "/schemas/main.sales",
            Some(json!({"owner": "b.admin@example.com"})),
        ),
        (
            Method::PATCH,
            "/tables/main.sales.orders",
            Some(json!({"owner": "b.admin@example.com"})),
        ),
        (
            Method::POST,
            "/tables",
            Some(json!({
            "catalog_name": "main", "schema_name": "sales", "name": "t", "table_type": "MANAGED",
            "data_source_format": "DELTA", "storage_location": "s3://b/t"})),
        ),
        (Method::GET, "/tables/main.sales.orders/exists", None),
        (Method::GET, "/table-summaries?catalog_name=main", None),
        (Method::GET, "/permissions/table/main.sales.recent", None),
    ] {
        let refused = uc(&app, method.clone(), path, &foreign, body).await;
        assert!(
            [401, 403, 404].contains(&refused.status),
            "{method} {path}: {}",
            refused.body
        );
        let text = refused.body.to_string();
        assert!(
            !text.contains("orders") && !text.contains("recent"),
            "{text}"
        );
    }
    let main = get(&app, &app.token, "/catalogs/main").await;
    assert_eq!(ok(&main)["owner"], "admin@scimitar.local");
    databricks_error(
        &get(&app, &app.token, "/tables/main.sales.t").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );
}

// ----- POST /tables, exists, table-summaries --------------------------------------------------

#[tokio::test]
async fn tables_and_views_are_created_with_the_fields_databricks_requires() {
    let app = spawn_app().await;
    tree(&app).await;
    let orders = get(&app, &app.token, "/tables/main.sales.orders").await;
    assert_eq!(ok(&orders)["table_type"], "MANAGED");
    assert_eq!(orders.body["owner"], "admin@scimitar.local");
    let recent = get(&app, &app.token, "/tables/main.sales.recent").await;
    assert_eq!(ok(&recent)["table_type"], "VIEW");

    let again = create_table(&app, &app.token, "main.sales.RECENT", "MANAGED").await;
    databricks_error(&again, 409, "RESOURCE_ALREADY_EXISTS");
    let orphan = create_table(&app, &app.token, "main.nowhere.t", "MANAGED").await;
    databricks_error(&orphan, 404, "RESOURCE_DOES_NOT_EXIST");
    let complete = json!({
        "catalog_name": "main", "schema_name": "sales", "name": "t", "table_type": "MANAGED",
        "data_source_format": "DELTA", "storage_location": "s3://b/t",
    });
    for field in [
        "name",
        "catalog_name",
        "schema_name",
        "table_type",
        "data_source_format",
        "storage_location",
    ] {
        let mut body = complete.clone();
        body.as_object_mut().unwrap().remove(field);
        let refused = post(&app, &app.token, "/tables", body).await;
        assert!(databricks_error(&refused, 400, "INVALID_PARAMETER_VALUE").contains(field));
    }
    for (field, value) in [
        ("table_type", json!("STREAMING_TABLE")),
        ("name", json!("a.b")),
        ("name", json!(5)),
    ] {
        let mut body = complete.clone();
        body[field] = value;
        let refused = post(&app, &app.token, "/tables", body).await;
        databricks_error(&refused, 400, "INVALID_PARAMETER_VALUE");
    }
    databricks_error(
        &get(&app, &app.token, "/tables/main.sales.t").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );

    // Creating needs CREATE TABLE on the schema with the USE privileges, as in SQL.
    let ana = user(&app, "ana@example.com").await;
    grant(&app, "catalog/main", "ana@example.com", &["USE_CATALOG"]).await;
    grant(
        &app,
        "schema/main.sales",
        "ana@example.com",
        &["USE_SCHEMA"],
    )
    .await;
    let refused = create_table(&app, &ana, "main.sales.mine", "MANAGED").await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
    grant(
        &app,
        "schema/main.sales",
        "ana@example.com",
        &["CREATE_TABLE"],
    )
    .await;
    let mine = create_table(&app, &ana, "main.sales.mine", "VIEW").await;
    assert_eq!(ok(&mine)["owner"], "ana@example.com");
    assert_eq!(mine.body["table_type"], "VIEW");
}

#[tokio::test]
async fn exists_answers_an_invisible_table_as_a_missing_one() {
    let app = spawn_app().await;
    tree(&app).await;
    let exists = |token: String, name: &'static str| {
        let app = &app;
        async move { get(app, &token, &format!("/tables/{name}/exists")).await }
    };
    assert_eq!(
        ok(&exists(app.token.clone(), "main.sales.orders").await)["table_exists"],
        true
    );
    assert_eq!(
        ok(&exists(app.token.clone(), "main.sales.recent").await)["table_exists"],
        true
    );
    assert_eq!(
        ok(&exists(app.token.clone(), "main.sales.nothing").await)["table_exists"],
        false
    );
    let ana = user(&app, "ana@example.com").await;
    let hidden = exists(ana.clone(), "main.sales.orders").await;
    let missing = exists(ana.clone(), "main.sales.nothing").await;
    assert_eq!(ok(&hidden)["table_exists"], false);
    assert_eq!(hidden.body, missing.body);
    grant(
        &app,
        "table/main.sales.orders",
        "ana@example.com",
        &["SELECT"],
    )
    .await;
    assert_eq!(
        ok(&exists(ana, "main.sales.orders").await)["table_exists"],
        true
    );
    let bad = exists(app.token.clone(), "main.orders").await;
    databricks_error(&bad, 400, "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn table_summaries_match_like_patterns_show_what_the_caller_sees_and_page() {
    let app = spawn_app().await;
    tree(&app).await;
    ok(&post(
        &app,
        &app.token,
        "/schemas",
        json!({"name": "hr", "catalog_name": "main"}),
    )
    .await);
    ok(&create_table(&app, &app.token, "main.hr.people", "MANAGED").await);
    ok(&create_table(&app, &app.token, "main.hr.pay_2024", "MANAGED").await);
    let names = |reply: &Reply| -> Vec<String> {
        ok(reply)["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|table| table["full_name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = get_with(
        &app,
        &app.token,
        "/table-summaries",
        &[("catalog_name", "main")],
    )
    .await;
    assert_eq!(
        names(&all),
        [
            "main.hr.pay_2024",
            "main.hr.people",
            "main.sales.orders",
            "main.sales.recent"
        ]
    );
    assert!(all.body.get("next_page_token").is_none());
    assert_eq!(all.body["tables"][3]["table_type"], "VIEW");
    let matched = get_with(
        &app,
        &app.token,
        "/table-summaries",
        &[
            ("catalog_name", "main"),
            ("schema_name_pattern", "h_"),
            ("table_name_pattern", "%\\_2024"),
        ],
    )
    .await;
    assert_eq!(names(&matched), ["main.hr.pay_2024"]);
    let matched = get_with(
        &app,
        &app.token,
        "/table-summaries",
        &[("catalog_name", "MAIN"), ("table_name_pattern", "%E%")],
    )
    .await;
    assert_eq!(
        names(&matched),
        ["main.hr.people", "main.sales.orders", "main.sales.recent"]
    );

    // Pages of one, each carrying the token of the next until the last.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let mut query = vec![("catalog_name", "main"), ("max_results", "1")];
        if !token.is_empty() {
            query.push(("page_token", token.as_str()));
        }
        let page = get_with(&app, &app.token, "/table-summaries", &query).await;
        seen.extend(names(&page));
        match page.body["next_page_token"].as_str() {
            Some(next) => token = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, names(&all));
    let zero = get_with(
        &app,
        &app.token,
        "/table-summaries",
        &[("catalog_name", "main"), ("max_results", "0")],
    )
    .await;
    assert_eq!(names(&zero), names(&all), "0 is the server's page size");

    // What ana may not see is left out; a catalog she may not see at all does not exist.
    let ana = user(&app, "ana@example.com").await;
    let hidden = get_with(&app, &ana, "/table-summaries", &[("catalog_name", "main")]).await;
    databricks_error(&hidden, 404, "RESOURCE_DOES_NOT_EXIST");
    grant(&app, "table/main.hr.people", "ana@example.com", &["SELECT"]).await;
    let visible = get_with(&app, &ana, "/table-summaries", &[("catalog_name", "main")]).await;
    assert_eq!(names(&visible), ["main.hr.people"]);

    for query in [
        vec![],
        vec![("catalog_name", "main"), ("max_results", "-1")],
        vec![("catalog_name", "main"), ("max_results", "many")],
        vec![("catalog_name", "a.b")],
    ] {
        let refused = get_with(&app, &app.token, "/table-summaries", &query).await;
        databricks_error(&refused, 400, "INVALID_PARAMETER_VALUE");
    }
    let missing = get_with(
        &app,
        &app.token,
        "/table-summaries",
        &[("catalog_name", "nowhere")],
    )
    .await;
    databricks_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST");
}

// ----- a view addressed as a table -----------------------------------------------------------

#[tokio::test]
async fn a_view_is_granted_read_and_revoked_as_a_table_over_rest_and_sql() {
    let app = spawn_app().await;
    tree(&app).await;
    let ana = user(&app, "ana@example.com").await;
    grant(&app, "catalog/main", "ana@example.com", &["USE_CATALOG"]).await;
    grant(
        &app,
        "schema/main.sales",
        "ana@example.com",
        &["USE_SCHEMA"],
    )
    .await;

    // REST: the SDK has no VIEW type, so it says `table`.
    grant(
        &app,
        "table/main.sales.recent",
        "ana@example.com",
        &["SELECT"],
    )
    .await;
    assert_eq!(
        granted(&app, "table/main.sales.recent", "ana@example.com").await,
        ["SELECT"]
    );
    assert_eq!(
        granted(&app, "view/main.sales.recent", "ana@example.com").await,
        ["SELECT"]
    );
    let effective = get_with(
        &app,
        &app.token,
        "/effective-permissions/table/main.sales.recent",
        &[("principal", "ana@example.com")],
    )
    .await;
    assert_eq!(
        ok(&effective)["privilege_assignments"][0]["privileges"],
        json!([{"privilege": "SELECT"}])
    );
    ok(&get(&app, &ana, "/tables/main.sales.recent").await);
    // What does not apply to a view is refused as for a view.
    let modify = patch(
        &app,
        &app.token,
        "/permissions/table/main.sales.recent",
        json!({"changes": [{"principal": "ana@example.com", "add": ["MODIFY"]}]}),
    )
    .await;
    assert!(databricks_error(&modify, 400, "INVALID_PARAMETER_VALUE").contains("MODIFY"));

    // SQL: ON TABLE names the view too.
    succeeded(
        &sql(
            &app,
            &app.token,
            "REVOKE SELECT ON TABLE main.sales.recent FROM `ana@example.com`",
        )
        .await,
    );
    assert!(granted(&app, "table/main.sales.recent", "ana@example.com")
        .await
        .is_empty());
    succeeded(
        &sql(
            &app,
            &app.token,
            "GRANT SELECT ON TABLE main.sales.recent TO `ana@example.com`",
        )
        .await,
    );
    let rows = succeeded(
        &sql(
            &app,
            &app.token,
            "SHOW GRANTS `ana@example.com` ON TABLE main.sales.recent",
        )
        .await,
    );
    assert!(
        rows.iter()
            .any(|row| row[1] == "SELECT" && row[3] == "main.sales.recent"),
        "{rows:?}"
    );
    // A user who may not see the view is told it does not exist, as for a missing table.
    let bob = user(&app, "bob@example.com").await;
    let hidden = get(&app, &bob, "/permissions/table/main.sales.recent").await;
    let missing = get(&app, &bob, "/permissions/table/main.sales.nothing").await;
    databricks_error(&hidden, 404, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(
        hidden.body["message"]
            .as_str()
            .unwrap()
            .replace("recent", "X"),
        missing.body["message"]
            .as_str()
            .unwrap()
            .replace("nothing", "X")
    );
}

// ----- several nodes -------------------------------------------------------------------------

/// A Unity Catalog request to `node` with `token`, after the write `after` answered.
async fn on_node(node: &Node, app: &TestApp, path: &str, token: &str, after: &str) -> Reply {
    read(
        app.client
            .get(format!("{}{UC}{path}", node.address))
            .bearer_auth(token)
            .header("scimitar-read-after", after)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn another_node_follows_a_rename_and_an_ownership_transfer_given_the_change_token() {
    let (app, other) = two_nodes().await;
    tree(&app).await;
    let ana = user(&app, "ana@example.com").await;
    let granted = patch(
        &app,
        &app.token,
        "/permissions/table/main.sales.orders",
        json!({"changes": [{"principal": "ana@example.com", "add": ["SELECT"]}]}),
    )
    .await;
    // The other node has seen the table and ana's grant before the rename.
    ok(&on_node(
        &other,
        &app,
        "/permissions/table/main.sales.orders",
        &app.token,
        &change_token(&granted),
    )
    .await);

    let renamed = patch(
        &app,
        &app.token,
        "/catalogs/main",
        json!({"new_name": "prod", "owner": "ana@example.com"}),
    )
    .await;
    ok(&renamed);
    let after = change_token(&renamed);
    let grants = on_node(
        &other,
        &app,
        "/permissions/table/prod.sales.orders",
        &app.token,
        &after,
    )
    .await;
    assert_eq!(
        ok(&grants)["privilege_assignments"],
        json!([{"principal": "ana@example.com", "privileges": ["SELECT"]}])
    );
    // Its engine answers for ana as the new owner of the renamed catalog.
    let catalog = on_node(&other, &app, "/catalogs/prod", &ana, &after).await;
    assert_eq!(ok(&catalog)["owner"], "ana@example.com");
    let old = on_node(
        &other,
        &app,
        "/tables/main.sales.orders/exists",
        &app.token,
        &after,
    )
    .await;
    assert_eq!(ok(&old)["table_exists"], false);
}

#[tokio::test]
async fn two_nodes_renaming_one_catalog_at_once_leave_one_whole_tree() {
    let (app, other) = two_nodes().await;
    tree(&app).await;
    grant(&app, "schema/main.sales", "users", &["USE_SCHEMA"]).await;
    let rename = |address: &str, name: &str| {
        app.client
            .patch(format!("{address}{UC}/catalogs/main"))
            .bearer_auth(&app.token)
            .json(&json!({"new_name": name}))
            .send()
    };
    let (first, second) = tokio::join!(
        rename(&app.address, "left"),
        rename(&other.address, "right")
    );
    let (first, second) = (read(first.unwrap()).await, read(second.unwrap()).await);
    let mut statuses = [first.status, second.status];
    statuses.sort_unstable();
    assert_eq!(statuses[0], 200, "{} / {}", first.body, second.body);
    assert!(
        [404, 409].contains(&statuses[1]),
        "{} / {}",
        first.body,
        second.body
    );
    let winner = if first.status == 200 { "left" } else { "right" };
    let loser = if winner == "left" { "right" } else { "left" };
    // The reads below go to the first node, and the rename that won may be the other's: once
    // this node has caught up with it (a read after its change token), every later read sees it.
    let won = if first.status == 200 { &first } else { &second };
    let caught_up = app
        .client
        .get(format!("{}{UC}/catalogs/{winner}", app.address))
        .bearer_auth(&app.token)
        .header("scimitar-read-after", change_token(won))
        .send()
        .await
        .unwrap();
    assert_eq!(caught_up.status(), 200);
    let all = get_with(
        &app,
        &app.token,
        "/table-summaries",
        &[("catalog_name", winner)],
    )
    .await;
    assert_eq!(
        ok(&all)["tables"].as_array().unwrap().len(),
        2,
        "{}",
        all.body
    );
    assert_eq!(
        granted(&app, &format!("schema/{winner}.sales"), "users").await,
        ["USE_SCHEMA"]
    );
    for name in ["main", loser] {
        databricks_error(
            &get(&app, &app.token, &format!("/catalogs/{name}")).await,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        );
    }
    let listed = get(&app, &app.token, "/catalogs").await;
    assert_eq!(
        ok(&listed)["catalogs"].as_array().unwrap().len(),
        1,
        "{}",
        listed.body
    );
}
