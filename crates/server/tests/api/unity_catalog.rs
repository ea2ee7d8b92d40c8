//! The Unity Catalog REST API: catalogs and schemas created, read, listed and dropped;
//! permissions granted and revoked all or nothing; effective permissions that follow SCIM
//! membership at once; and the rules on who may create and grant, with errors in
//! Databricks' `{"error_code", "message"}` shape.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

pub const UC: &str = "/api/2.1/unity-catalog";

/// A Unity Catalog request with the given token.
pub async fn uc(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}{UC}{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("sent")).await
}

/// Asserts a Databricks error body with this status and `error_code`; returns the message.
pub fn databricks_error(reply: &Reply, status: u16, code: &str) -> String {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error_code"], code, "{}", reply.body);
    reply.body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {}", reply.body))
        .to_string()
}

async fn patch_permissions(app: &TestApp, path: &str, token: &str, changes: Value) -> Reply {
    uc(
        app,
        Method::PATCH,
        &format!("/permissions/{path}"),
        token,
        Some(json!({ "changes": changes })),
    )
    .await
}

/// The privileges a principal holds on a securable, as effective-permissions lists them.
async fn effective(app: &TestApp, path: &str, principal: &str) -> Vec<String> {
    let reply = read(
        app.client
            .get(format!("{}{UC}/effective-permissions/{path}", app.address))
            .query(&[("principal", principal)])
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut privileges: Vec<String> = reply.body["privilege_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|assignment| assignment["privileges"].as_array().unwrap().clone())
        .map(|privilege| str_of(&privilege, "privilege").to_string())
        .collect();
    privileges.sort();
    privileges.dedup();
    privileges
}

async fn create_catalog(app: &TestApp, token: &str, name: &str) -> Reply {
    uc(
        app,
        Method::POST,
        "/catalogs",
        token,
        Some(json!({"name": name})),
    )
    .await
}

async fn create_schema(app: &TestApp, token: &str, catalog: &str, name: &str) -> Reply {
    uc(
        app,
        Method::POST,
        "/schemas",
        token,
        Some(json!({"name": name, "catalog_name": catalog, "comment": "sales data"})),
    )
    .await
}

#[tokio::test]
async fn catalogs_and_schemas_are_created_read_listed_and_owned_by_their_creator() {
    let app = spawn_app().await;
    let created = create_catalog(&app, &app.token, "Main").await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["name"], "main", "names fold to lower case");
    assert_eq!(created.body["full_name"], "main");
    assert_eq!(created.body["owner"], "admin@scimitar.local");
    assert!(created.body["created_at"].as_i64().unwrap() > 0);

    let schema = create_schema(&app, &app.token, "main", "sales").await;
    assert_eq!(schema.status, 200, "{}", schema.body);
    assert_eq!(schema.body["full_name"], "main.sales");
    assert_eq!(schema.body["catalog_name"], "main");
    assert_eq!(schema.body["comment"], "sales data");

    let fetched = uc(&app, Method::GET, "/catalogs/main", &app.token, None).await;
    assert_eq!(fetched.body["name"], "main");
    let listed = uc(&app, Method::GET, "/catalogs", &app.token, None).await;
    assert_eq!(
        listed.body["catalogs"][0]["name"], "main",
        "{}",
        listed.body
    );
    let schemas = read(
        app.client
            .get(format!("{}{UC}/schemas", app.address))
            .query(&[("catalog_name", "main")])
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(schemas.body["schemas"][0]["full_name"], "main.sales");
    let one = uc(&app, Method::GET, "/schemas/main.sales", &app.token, None).await;
    assert_eq!(one.body["name"], "sales");
}

#[tokio::test]
async fn errors_come_in_the_databricks_shape_and_name_the_object() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    let again = create_catalog(&app, &app.token, "MAIN").await;
    let message = databricks_error(&again, 409, "RESOURCE_ALREADY_EXISTS");
    assert!(message.contains("main"), "{message}");
    let missing = uc(&app, Method::GET, "/catalogs/nowhere", &app.token, None).await;
    assert!(databricks_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST").contains("nowhere"));
    let orphan = create_schema(&app, &app.token, "nowhere", "s").await;
    assert!(databricks_error(&orphan, 404, "RESOURCE_DOES_NOT_EXIST").contains("nowhere"));
    let bad_name = create_catalog(&app, &app.token, "a b").await;
    databricks_error(&bad_name, 400, "INVALID_PARAMETER_VALUE");
    let unknown_privilege = patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "users", "add": ["SELEKT"]}]),
    )
    .await;
    assert!(
        databricks_error(&unknown_privilege, 400, "INVALID_PARAMETER_VALUE").contains("SELEKT")
    );
    let wrong_type = patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "users", "add": ["SELECT", "MODIFY", "READ_FILES"]}]),
    )
    .await;
    assert!(databricks_error(&wrong_type, 400, "INVALID_PARAMETER_VALUE").contains("READ_FILES"));
    let no_token = read(
        app.client
            .get(format!("{}{UC}/catalogs", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    databricks_error(&no_token, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_group_grant_reaches_members_added_by_scim_at_once_and_leaves_with_them() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    create_schema(&app, &app.token, "main", "sales").await;
    let user = app.create_user("ana@example.com").await;
    let group = app.create_group("analysts", &[]).await;
    let user_id = str_of(&user, "id");
    let group_id = str_of(&group, "id");
    let granted = patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "analysts", "add": ["USE_CATALOG", "SELECT"]}]),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(
        granted.body["privilege_assignments"],
        json!([{"principal": "analysts", "privileges": ["SELECT", "USE_CATALOG"]}])
    );
    assert!(effective(&app, "schema/main.sales", "ana@example.com")
        .await
        .is_empty());

    let added = app
        .patch_ops(
            &format!("/Groups/{group_id}"),
            json!([{"op": "add", "path": "members", "value": [{"value": user_id}]}]),
        )
        .await;
    assert!(added.status < 300, "{}", added.body);
    // SELECT passes down from the catalog to the schema, with where it comes from.
    let reply = read(
        app.client
            .get(format!(
                "{}{UC}/effective-permissions/schema/main.sales",
                app.address
            ))
            .query(&[("principal", "ana@example.com")])
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        reply.body["privilege_assignments"],
        json!([{"principal": "ana@example.com", "privileges": [
            {"privilege": "SELECT", "inherited_from_type": "CATALOG", "inherited_from_name": "main"}
        ]}]),
    );
    assert_eq!(
        effective(&app, "catalog/main", "ana@example.com").await,
        ["SELECT", "USE_CATALOG"]
    );

    app.patch_ops(
        &format!("/Groups/{group_id}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{user_id}\"]")}]),
    )
    .await;
    assert!(effective(&app, "catalog/main", "ana@example.com")
        .await
        .is_empty());

    app.patch_ops(
        &format!("/Groups/{group_id}"),
        json!([{"op": "add", "path": "members", "value": [{"value": user_id}]}]),
    )
    .await;
    assert_eq!(
        effective(&app, "catalog/main", "ana@example.com")
            .await
            .len(),
        2
    );
    let deactivated = app
        .patch_ops(
            &format!("/Users/{user_id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert!(deactivated.status < 300, "{}", deactivated.body);
    assert!(
        effective(&app, "catalog/main", "ana@example.com")
            .await
            .is_empty(),
        "a deactivated user holds nothing"
    );
}

#[tokio::test]
async fn only_admins_owners_and_managers_may_grant() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    let bob = app.create_user("bob@example.com").await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;
    let refused = patch_permissions(
        &app,
        "catalog/main",
        &bob_token,
        json!([{"principal": "bob@example.com", "add": ["USE_CATALOG"]}]),
    )
    .await;
    // A catalog bob holds nothing on does not exist for him (`leaks.rs`).
    databricks_error(&refused, 404, "RESOURCE_DOES_NOT_EXIST");
    assert!(effective(&app, "catalog/main", "bob@example.com")
        .await
        .is_empty());
    // Once he may see it, he is told what he lacks.
    patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "bob@example.com", "add": ["BROWSE"]}]),
    )
    .await;
    let refused = patch_permissions(
        &app,
        "catalog/main",
        &bob_token,
        json!([{"principal": "bob@example.com", "add": ["USE_CATALOG"]}]),
    )
    .await;
    let message = databricks_error(&refused, 403, "PERMISSION_DENIED");
    assert!(message.contains("MANAGE"), "{message}");

    // MANAGE (with USE CATALOG, which managing needs) lets bob grant.
    patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "bob@example.com", "add": ["MANAGE", "USE_CATALOG"]}]),
    )
    .await;
    let allowed = patch_permissions(
        &app,
        "catalog/main",
        &bob_token,
        json!([{"principal": "users", "add": ["BROWSE"]}]),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);

    // Ownership transferred to bob by SQL is the other way.
    let carol = app.create_user("carol@example.com").await;
    let carol_token = app.token_for(str_of(&carol, "id")).await;
    let refused = patch_permissions(
        &app,
        "catalog/main",
        &carol_token,
        json!([{"principal": "carol@example.com", "add": ["SELECT"]}]),
    )
    .await;
    databricks_error(&refused, 403, "PERMISSION_DENIED");
}

#[tokio::test]
async fn creating_a_schema_needs_use_catalog_and_create_schema() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    let dev = app.create_user("dev@example.com").await;
    let dev_token = app.token_for(str_of(&dev, "id")).await;
    let refused = create_catalog(&app, &dev_token, "mine").await;
    assert!(databricks_error(&refused, 403, "PERMISSION_DENIED").contains("CREATE CATALOG"));

    patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "dev@example.com", "add": ["CREATE_SCHEMA"]}]),
    )
    .await;
    let refused = create_schema(&app, &dev_token, "main", "scratch").await;
    let message = databricks_error(&refused, 403, "PERMISSION_DENIED");
    assert!(message.contains("USE_CATALOG"), "{message}");

    patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "dev@example.com", "add": ["USE_CATALOG"]}]),
    )
    .await;
    let created = create_schema(&app, &dev_token, "main", "scratch").await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(
        created.body["owner"], "dev@example.com",
        "the creator owns it"
    );
    // The owner may grant on what it owns.
    let granted = patch_permissions(
        &app,
        "schema/main.scratch",
        &dev_token,
        json!([{"principal": "users", "add": ["USE_SCHEMA"]}]),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);

    // CREATE CATALOG on the metastore lets a non-admin create catalogs.
    let on_metastore = patch_permissions(
        &app,
        "metastore/any-metastore-id",
        &app.token,
        json!([{"principal": "dev@example.com", "add": ["CREATE_CATALOG"]}]),
    )
    .await;
    assert_eq!(on_metastore.status, 200, "{}", on_metastore.body);
    assert_eq!(create_catalog(&app, &dev_token, "mine").await.status, 200);
}

#[tokio::test]
async fn all_privileges_expands_and_revoking_it_removes_what_it_stood_for() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    app.create_user("eve@example.com").await;
    patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "eve@example.com", "add": ["ALL_PRIVILEGES", "SELECT", "MANAGE"]}]),
    )
    .await;
    let held = effective(&app, "catalog/main", "eve@example.com").await;
    for privilege in ["SELECT", "USE_CATALOG", "CREATE_SCHEMA", "MODIFY", "MANAGE"] {
        assert!(
            held.contains(&privilege.to_string()),
            "{privilege} in {held:?}"
        );
    }
    let revoked = patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([{"principal": "eve@example.com", "remove": ["ALL_PRIVILEGES"]}]),
    )
    .await;
    assert_eq!(
        revoked.body["privilege_assignments"],
        json!([{"principal": "eve@example.com", "privileges": ["MANAGE"]}]),
        "SELECT went with ALL PRIVILEGES; MANAGE is not part of it"
    );
}

#[tokio::test]
async fn a_permissions_patch_is_all_or_nothing() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    app.create_user("fay@example.com").await;
    let failed = patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([
            {"principal": "fay@example.com", "add": ["USE_CATALOG"]},
            {"principal": "nobody@example.com", "add": ["USE_CATALOG"]}
        ]),
    )
    .await;
    assert!(
        databricks_error(&failed, 404, "RESOURCE_DOES_NOT_EXIST").contains("nobody@example.com")
    );
    let now = uc(
        &app,
        Method::GET,
        "/permissions/catalog/main",
        &app.token,
        None,
    )
    .await;
    assert_eq!(now.body["privilege_assignments"], json!([]));

    let both = patch_permissions(
        &app,
        "catalog/main",
        &app.token,
        json!([
            {"principal": "fay@example.com", "add": ["USE_CATALOG"]},
            {"principal": "users", "add": ["BROWSE"]}
        ]),
    )
    .await;
    assert_eq!(
        both.body["privilege_assignments"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn dropping_a_catalog_needs_force_when_it_holds_schemas_and_takes_them_along() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    create_schema(&app, &app.token, "main", "sales").await;
    patch_permissions(
        &app,
        "schema/main.sales",
        &app.token,
        json!([{"principal": "users", "add": ["USE_SCHEMA"]}]),
    )
    .await;
    let refused = uc(&app, Method::DELETE, "/catalogs/main", &app.token, None).await;
    assert!(databricks_error(&refused, 400, "INVALID_PARAMETER_VALUE").contains("not empty"));
    let dropped = uc(
        &app,
        Method::DELETE,
        "/catalogs/main?force=true",
        &app.token,
        None,
    )
    .await;
    assert_eq!(dropped.status, 200, "{}", dropped.body);
    let gone = uc(&app, Method::GET, "/schemas/main.sales", &app.token, None).await;
    databricks_error(&gone, 404, "RESOURCE_DOES_NOT_EXIST");
    // Recreated, it starts with no grants.
    create_catalog(&app, &app.token, "main").await;
    create_schema(&app, &app.token, "main", "sales").await;
    let grants = uc(
        &app,
        Method::GET,
        "/permissions/schema/main.sales",
        &app.token,
        None,
    )
    .await;
    assert_eq!(grants.body["privilege_assignments"], json!([]));
}

#[tokio::test]
async fn effective_permissions_without_a_principal_list_each_holder_once() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    create_schema(&app, &app.token, "main", "sales").await;
    app.create_user("ana@example.com").await;
    app.create_group("analysts", &[]).await;
    // `analysts` is granted on the catalog and again on the schema; `ana` on the schema.
    for (path, principal, privileges) in [
        ("catalog/main", "analysts", json!(["USE_CATALOG", "SELECT"])),
        ("schema/main.sales", "analysts", json!(["USE_SCHEMA"])),
        ("schema/main.sales", "ana@example.com", json!(["MODIFY"])),
    ] {
        let granted = patch_permissions(
            &app,
            path,
            &app.token,
            json!([{"principal": principal, "add": privileges}]),
        )
        .await;
        assert_eq!(granted.status, 200, "{}", granted.body);
    }
    let reply = uc(
        &app,
        Method::GET,
        "/effective-permissions/schema/main.sales",
        &app.token,
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let assignments = reply.body["privilege_assignments"].as_array().unwrap();
    let principals: Vec<&str> = assignments
        .iter()
        .map(|assignment| str_of(assignment, "principal"))
        .collect();
    // The owner (the creator), then every grantee on the schema or above it, once each.
    assert_eq!(principals.len(), 3, "{}", reply.body);
    assert_eq!(
        principals[1..],
        ["analysts", "ana@example.com"],
        "{}",
        reply.body
    );
    // Held on the schema and passed down from the catalog, each privilege once; USE_CATALOG
    // does not apply to a schema.
    assert_eq!(
        assignments[1]["privileges"],
        json!([
            {"privilege": "SELECT", "inherited_from_type": "CATALOG", "inherited_from_name": "main"},
            {"privilege": "USE_SCHEMA"}
        ])
    );
}

#[tokio::test]
async fn wrongly_typed_or_missing_fields_are_refused_by_their_path_and_write_nothing() {
    let app = spawn_app().await;
    create_catalog(&app, &app.token, "main").await;
    app.create_user("fay@example.com").await;
    let cases = [
        (
            "/catalogs",
            json!({"name": "typed", "comment": 5}),
            "comment: invalid type: integer `5`, expected a string",
        ),
        (
            "/catalogs",
            json!({"name": ["typed"]}),
            "name: invalid type: sequence, expected a string",
        ),
        ("/catalogs", json!({"comment": "c"}), "`name` is required"),
        (
            "/catalogs",
            json!(["typed"]),
            "the request body must be a JSON object",
        ),
        (
            "/schemas",
            json!({"name": "typed", "catalog_name": 7}),
            "catalog_name: invalid type: integer `7`, expected a string",
        ),
        (
            "/schemas",
            json!({"name": "typed"}),
            "`catalog_name` is required",
        ),
    ];
    for (path, body, message) in cases {
        let reply = uc(&app, Method::POST, path, &app.token, Some(body.clone())).await;
        assert_eq!(
            databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE"),
            message,
            "{path} {body}"
        );
    }
    let missing = uc(&app, Method::GET, "/catalogs/typed", &app.token, None).await;
    databricks_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST");
    let missing = uc(&app, Method::GET, "/schemas/main.typed", &app.token, None).await;
    databricks_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST");

    // Each PATCH starts with a change that is fine on its own, so a refusal that let part of
    // the body through would show in the grants read back.
    let grant = json!({"principal": "fay@example.com", "add": ["USE_CATALOG"]});
    let cases = [
        (
            json!([grant, {"principal": "users", "add": "SELECT"}]),
            "changes[1].add: invalid type: string \"SELECT\", expected a sequence",
        ),
        (
            json!([grant, {"principal": "users", "remove": ["BROWSE", 3]}]),
            "changes[1].remove[1]: invalid type: integer `3`, expected a string",
        ),
        (
            json!([grant, {"principal": ["users"], "add": ["BROWSE"]}]),
            "changes[1].principal: invalid type: sequence, expected a string",
        ),
        (
            json!([grant, {"add": ["BROWSE"]}]),
            "`changes[1].principal` is required",
        ),
        (
            json!([grant, {"principal": "users", "add": ["BROWSE", "SELEKT"]}]),
            "changes[1].add[1]: `SELEKT` is not a Unity Catalog privilege",
        ),
        (
            json!(grant),
            "changes: invalid type: map, expected a sequence",
        ),
    ];
    for (changes, message) in cases {
        let reply = patch_permissions(&app, "catalog/main", &app.token, changes.clone()).await;
        assert_eq!(
            databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE"),
            message,
            "{changes}"
        );
    }
    let reply = uc(
        &app,
        Method::PATCH,
        "/permissions/catalog/main",
        &app.token,
        Some(json!([grant])),
    )
    .await;
    assert_eq!(
        databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE"),
        "the request body must be a JSON object"
    );
    let now = uc(
        &app,
        Method::GET,
        "/permissions/catalog/main",
        &app.token,
        None,
    )
    .await;
    assert_eq!(now.body["privilege_assignments"], json!([]));
}

#[tokio::test]
async fn fields_the_sdks_send_and_the_server_does_not_use_are_accepted() {
    let app = spawn_app().await;
    let catalog = uc(
        &app,
        Method::POST,
        "/catalogs",
        &app.token,
        Some(json!({
            "name": "main",
            "comment": "c",
            "properties": {"team": "data"},
            "storage_root": "s3://bucket/main",
        })),
    )
    .await;
    assert_eq!(catalog.status, 200, "{}", catalog.body);
    let schema = uc(
        &app,
        Method::POST,
        "/schemas",
        &app.token,
        Some(json!({
            "name": "sales",
            "catalog_name": "main",
            "properties": {"team": "data"},
            "storage_root": "s3://bucket/main/sales",
        })),
    )
    .await;
    assert_eq!(schema.status, 200, "{}", schema.body);
}
