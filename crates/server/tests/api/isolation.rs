//! Isolation between workspaces and accounts, route by route: a credential of another
//! workspace of the account (a user and that workspace's admin) or of another account reads
//! and writes nothing of a workspace through any route the server has. Addressed to the
//! workspace, every answer is 403 or 404 (but for the few public routes); addressed to the
//! caller's own workspace, an answer may succeed, about the caller's own things. Either way no
//! body or header carries the workspace's data (ids, names, statement results), a read about
//! its things from the caller's own workspace answers as one about things that never existed
//! (nothing can be probed), nothing is written to it, and the walk covers every route of the
//! router: a route added later fails the test until it is walked here.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// What the workspace under attack holds, which no answer outside it may show.
struct Secrets {
    user_id: String,
    group_id: String,
    folder_id: String,
    statement_id: String,
    token_id: String,
    /// A service principal of the workspace, and one of its OAuth secrets.
    service_principal_id: String,
    oauth_secret_id: String,
    /// Secret from everyone outside the workspace.
    workspace: Vec<String>,
    /// Secret from other accounts only: the account id and its metastore's, which every
    /// principal of the account may read.
    account: Vec<String>,
}

/// One route walked: its method and template as the router has them, and what is sent.
struct Walked {
    method: Method,
    template: String,
    path: String,
    body: Option<Body>,
}

enum Body {
    Json(Value),
    /// A `multipart/form-data` body, as the Python SDK uploads to `workspace/import`.
    Multipart(Vec<u8>),
}

const BOUNDARY: &str = "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e";

/// Routes that answer anyone, without a credential: health, discovery, the SDK's
/// `.well-known` document, and OAuth's discovery documents, public keys and token endpoints
/// (which authenticate a client by its own credentials, never a bearer token). They answer the addressed workspace too, so only what is secret
/// from every caller is held against them; `.well-known` names the workspace's account by
/// design (the SDK reads it to learn the account of a host).
fn is_public(template: &str) -> bool {
    template == "/healthz"
        || template == "/readyz"
        || template == "/.well-known/databricks-config"
        || template.starts_with("/oidc/")
        || ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"]
            .iter()
            .any(|discovery| {
                template.ends_with(discovery) || template.contains(&format!("{discovery}/"))
            })
}

/// Account routes that answer any principal of the account: `/Me` (about itself) and the roles
/// a resource takes (no secret, `rule_sets::assignable_roles`).
fn answers_the_accounts_principals(template: &str) -> bool {
    template.ends_with("/Me") || template.ends_with("/assignable-roles")
}

/// Routes whose path names the account (`{account_id}`): the account API, answered at the
/// account level, not in a workspace.
fn is_account_level(template: &str) -> bool {
    template.contains("{account_id}")
}

/// Every (method, template) the router serves, read from its `Debug` form: axum lists each
/// route's path (`RouteId(n): "/path"`) and each route's methods (`RouteId(n):
/// MethodRouter(MethodRouter { get: ..., head: None, ... })`). Only the main path router is
/// read (the fallback router numbers its routes anew), and the catch-alls axum adds for nested
/// fallbacks are left out.
fn routes_of_the_router() -> BTreeSet<(String, String)> {
    let text = format!("{:?}", scimitar_server::routes::routes());
    let main = text.split("fallback_router:").next().unwrap();
    let mut paths = std::collections::HashMap::new();
    let mut methods = std::collections::HashMap::new();
    for entry in main.split("RouteId(").skip(1) {
        let Some((id, rest)) = entry.split_once("): ") else {
            continue;
        };
        if let Some(quoted) = rest.strip_prefix('"') {
            paths.insert(
                id.to_string(),
                quoted.split('"').next().unwrap().to_string(),
            );
        } else if let Some(router) = rest.strip_prefix("MethodRouter(MethodRouter { ") {
            let fields = router.split(", fallback:").next().unwrap();
            let served: Vec<String> = fields
                .split(", ")
                .filter_map(|field| field.split_once(": "))
                .filter(|(_, endpoint)| *endpoint != "None")
                .map(|(method, _)| method.to_ascii_uppercase())
                .collect();
            methods.insert(id.to_string(), served);
        }
    }
    let mut routes = BTreeSet::new();
    for (id, path) in paths {
        if path.contains("__private__axum") {
            continue;
        }
        let served = methods
            .get(&id)
            .unwrap_or_else(|| panic!("no methods read for {path} in {main}"));
        for method in served {
            routes.insert((method.clone(), path.clone()));
        }
    }
    assert!(
        routes.len() > 100,
        "the router's Debug form was not read ({} routes): {main}",
        routes.len()
    );
    routes
}

/// Whether a path (its query left out) is one the template matches: `{name}` stands for one
/// segment, `{*name}` for the rest.
fn matches_template(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap();
    let (mut wanted, mut given) = (template.split('/'), path.split('/'));
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(segment), Some(rest)) if segment.starts_with("{*") => {
                return !rest.is_empty();
            }
            (Some(segment), Some(part)) if segment.starts_with('{') => {
                if part.is_empty() {
                    return false;
                }
            }
            (Some(segment), Some(part)) if segment == part => {}
            _ => return false,
        }
    }
}

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Body>,
) -> (Reply, String) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token);
    match body {
        Some(Body::Json(body)) => request = request.json(body),
        Some(Body::Multipart(bytes)) => {
            request = request
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(bytes.clone())
        }
        None => {}
    }
    let response = request.send().await.unwrap();
    let headers = format!("{:?}", response.headers());
    (read(response).await, headers)
}

/// As the bootstrap admin, in `workspace`; the answer must succeed.
async fn admin_in(
    app: &TestApp,
    workspace: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Reply {
    let reply = call(
        app,
        method.clone(),
        &format!("/w/{workspace}{path}"),
        Some(&app.token),
        (!body.is_null()).then_some(body),
    )
    .await;
    assert!(
        reply.status < 300,
        "{method} {path}: {} {}",
        reply.status,
        reply.body
    );
    reply
}

async fn seed(app: &TestApp, workspace: &str) -> Secrets {
    let user = app.create_user("secret.user@victim.test").await;
    let user_id = str_of(&user, "id").to_string();
    let group = app.create_group("secret-group", &[&user_id]).await;
    let group_id = str_of(&group, "id").to_string();
    let sql = "/api/2.0/sql/statements";
    for statement in [
        "CREATE CATALOG secret_catalog",
        "CREATE SCHEMA secret_catalog.secret_schema",
        "CREATE TABLE secret_catalog.secret_schema.secret_table",
        "GRANT USE CATALOG ON CATALOG secret_catalog TO `secret-group`",
    ] {
        let body = json!({"warehouse_id": "any", "statement": statement});
        let reply = admin_in(app, workspace, Method::POST, sql, body).await;
        assert_eq!(reply.body["status"]["state"], "SUCCEEDED", "{}", reply.body);
    }
    // Isolated: usable from this workspace only, so that no other may see it.
    admin_in(
        app,
        workspace,
        Method::PATCH,
        "/api/2.1/unity-catalog/catalogs/secret_catalog",
        json!({"isolation_mode": "ISOLATED"}),
    )
    .await;
    // A kept statement whose result names the group.
    let statement = admin_in(
        app,
        workspace,
        Method::POST,
        sql,
        json!({"warehouse_id": "any", "statement": "SHOW GRANTS ON CATALOG secret_catalog"}),
    )
    .await;
    assert!(
        statement.body.to_string().contains("secret-group"),
        "{}",
        statement.body
    );
    let statement_id = str_of(&statement.body, "statement_id").to_string();
    admin_in(
        app,
        workspace,
        Method::POST,
        "/api/2.0/workspace/mkdirs",
        json!({"path": "/Shared/secret-folder"}),
    )
    .await;
    let status = admin_in(
        app,
        workspace,
        Method::GET,
        "/api/2.0/workspace/get-status?path=/Shared/secret-folder",
        Value::Null,
    )
    .await;
    let folder_id = status.body["object_id"].to_string();
    admin_in(
        app,
        workspace,
        Method::PUT,
        "/api/2.0/permissions/jobs/secret-job",
        json!({"access_control_list": [
            {"group_name": "secret-group", "permission_level": "CAN_VIEW"}]}),
    )
    .await;
    // A token made through the workspace's token API, with a telling comment.
    let token = admin_in(
        app,
        workspace,
        Method::POST,
        "/api/2.0/token/create",
        json!({"comment": "secret-token-comment", "lifetime_seconds": 3600}),
    )
    .await;
    let token_id = token.body["token_info"]["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    let token_value = str_of(&token.body, "token_value").to_string();
    // A service principal of the workspace, with an OAuth secret.
    let sp = admin_in(
        app,
        workspace,
        Method::POST,
        "/scim/v2/ServicePrincipals",
        json!({"schemas": [SERVICE_PRINCIPAL_SCHEMA], "displayName": "secret-robot"}),
    )
    .await;
    let service_principal_id = str_of(&sp.body, "id").to_string();
    let oauth_secret = admin_in(
        app,
        workspace,
        Method::POST,
        &format!("/api/2.0/accounts/servicePrincipals/{service_principal_id}/credentials/secrets"),
        json!({}),
    )
    .await;
    let oauth_secret_id = str_of(&oauth_secret.body, "id").to_string();
    let oauth_secret_value = str_of(&oauth_secret.body, "secret").to_string();
    // The group's rule set names its manager.
    let set = format!(
        "accounts/{}/groups/{group_id}/ruleSets/default",
        app.account
    );
    let rule_sets = "/api/2.0/preview/accounts/access-control/rule-sets";
    let current = admin_in(
        app,
        workspace,
        Method::GET,
        &format!("{rule_sets}?name={set}&etag="),
        Value::Null,
    )
    .await;
    admin_in(
        app,
        workspace,
        Method::PUT,
        rule_sets,
        json!({"name": set, "rule_set": {"name": set, "etag": current.body["etag"],
            "grant_rules": [{"role": "roles/group.manager",
                             "principals": ["users/secret.user@victim.test"]}]}}),
    )
    .await;
    Secrets {
        workspace: vec![
            "secret.user@victim.test".into(),
            "secret-group".into(),
            "secret_catalog".into(),
            "secret_schema".into(),
            "secret_table".into(),
            "secret-folder".into(),
            user_id.clone(),
            group_id.clone(),
            folder_id.clone(),
            statement_id.clone(),
            "secret-token-comment".into(),
            token_id.clone(),
            token_value,
            "secret-robot".into(),
            service_principal_id.clone(),
            oauth_secret_id.clone(),
            oauth_secret_value,
        ],
        account: vec![
            app.account.to_string(),
            scimitar_app::governance::metastore_id(&app.account),
        ],
        user_id,
        group_id,
        folder_id,
        statement_id,
        token_id,
        service_principal_id,
        oauth_secret_id,
    }
}

/// Every route of the router, as `Walked` requests about the workspace's things: paths from
/// the root without a workspace prefix (the walk adds each prefix), the account routes
/// naming the workspace's account.
fn routes(secrets: &Secrets, account: &str, workspace: &str) -> Vec<Walked> {
    let (user, group, folder, statement) = (
        &secrets.user_id,
        &secrets.group_id,
        &secrets.folder_id,
        &secrets.statement_id,
    );
    let metastore = &secrets.account[1];
    let mut routes = Vec::new();
    let mut walk = |method: Method, template: &str, path: &str, body: Option<Value>| {
        routes.push(Walked {
            method,
            template: template.to_string(),
            path: path.to_string(),
            body: body.map(Body::Json),
        });
    };
    let patch = patch_op(json!([{"op": "replace", "path": "displayName", "value": "pwned"}]));
    let account_mounts = [
        "/api/2.0/accounts/{account_id}/scim/v2",
        "/api/2.1/accounts/{account_id}/scim/v2",
    ];
    for mount in ["/scim/v2", "/api/2.0/preview/scim/v2"]
        .into_iter()
        .chain(account_mounts)
    {
        let at = mount.replace("{account_id}", account);
        let scim = |path: &str| (format!("{mount}{path}"), format!("{at}{path}"));
        for (path, concrete) in [
            "/ServiceProviderConfig",
            "/ResourceTypes",
            "/Schemas",
            "/Me",
            "/{resource}",
        ]
        .map(scim)
        {
            walk(
                Method::GET,
                &path,
                &concrete.replace("{resource}", "Users"),
                None,
            );
        }
        let (template, path) = scim("/{resource}");
        walk(
            Method::GET,
            &template,
            &path.replace("{resource}", "Groups"),
            None,
        );
        let (template, path) = scim("/ResourceTypes/{name}");
        walk(
            Method::GET,
            &template,
            &path.replace("{name}", "User"),
            None,
        );
        let (template, path) = scim("/Schemas/{name}");
        walk(
            Method::GET,
            &template,
            &path.replace("{name}", USER_SCHEMA),
            None,
        );
        let search = json!({"schemas": [SEARCH_REQUEST_SCHEMA]});
        let (template, path) = scim("/.search");
        walk(Method::POST, &template, &path, Some(search.clone()));
        let (template, path) = scim("/{resource}/.search");
        walk(
            Method::POST,
            &template,
            &path.replace("{resource}", "Users"),
            Some(search),
        );
        let (template, path) = scim("/{resource}");
        walk(
            Method::POST,
            &template,
            &path.replace("{resource}", "Users"),
            Some(json!({"schemas": [USER_SCHEMA], "userName": "intruder@evil.test"})),
        );
        let (template, path) = scim("/{resource}/{id}");
        let user_path = path.replace("{resource}", "Users").replace("{id}", user);
        let group_path = path.replace("{resource}", "Groups").replace("{id}", group);
        walk(Method::GET, &template, &user_path, None);
        walk(Method::GET, &template, &group_path, None);
        walk(
            Method::PUT,
            &template,
            &user_path,
            Some(json!({"schemas": [USER_SCHEMA], "userName": "pwned@evil.test"})),
        );
        walk(Method::PATCH, &template, &user_path, Some(patch.clone()));
        walk(
            Method::PATCH,
            &template,
            &group_path,
            Some(patch_op(json!([{"op": "remove", "path": "members"}]))),
        );
        walk(Method::DELETE, &template, &user_path, None);
        let (template, path) = scim("/Bulk");
        walk(
            Method::POST,
            &template,
            &path,
            Some(json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [
                {"method": "DELETE", "path": format!("/Users/{user}")}]})),
        );
    }

    for (template, path) in [
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/metrics", "/metrics"),
        (
            "/.well-known/databricks-config",
            "/.well-known/databricks-config",
        ),
    ] {
        walk(Method::GET, template, path, None);
    }
    let permissions = "/api/2.0/permissions/{*object}";
    let acl = json!({"access_control_list": [
        {"user_name": "intruder@evil.test", "permission_level": "CAN_MANAGE"}]});
    for object in [
        format!("directories/{folder}"),
        "jobs/secret-job".to_string(),
    ] {
        let path = format!("/api/2.0/permissions/{object}");
        walk(Method::GET, permissions, &path, None);
        walk(Method::PUT, permissions, &path, Some(acl.clone()));
        walk(Method::PATCH, permissions, &path, Some(acl.clone()));
    }
    let on_catalog = "privilege=USE_CATALOG&securable_type=CATALOG&full_name=secret_catalog";
    for (question, query) in [
        ("check", format!("principal={user}&{on_catalog}")),
        (
            "check",
            format!("principal={user}&entitlement=workspace-access"),
        ),
        ("who", on_catalog.to_string()),
        (
            "who",
            "object_type=jobs&object_id=secret-job&permission_level=CAN_VIEW".to_string(),
        ),
        ("what", format!("principal={user}")),
    ] {
        let template = format!("/api/2.0/access/{question}");
        walk(Method::GET, &template, &format!("{template}?{query}"), None);
    }

    let uc = "/api/2.1/unity-catalog";
    let table = "secret_catalog.secret_schema.secret_table";
    let grant = json!({"changes": [{"principal": "intruder@evil.test", "add": ["USE_CATALOG"]}]});
    for (method, template, path, body) in [
        (Method::GET, "/catalogs", "/catalogs".to_string(), None),
        (
            Method::POST,
            "/catalogs",
            "/catalogs".to_string(),
            Some(json!({"name": "intruder"})),
        ),
        (
            Method::GET,
            "/catalogs/{name}",
            "/catalogs/secret_catalog".to_string(),
            None,
        ),
        (
            Method::PATCH,
            "/catalogs/{name}",
            "/catalogs/secret_catalog".to_string(),
            Some(json!({"isolation_mode": "OPEN"})),
        ),
        (
            Method::DELETE,
            "/catalogs/{name}",
            "/catalogs/secret_catalog?force=true".to_string(),
            None,
        ),
        (
            Method::GET,
            "/schemas",
            "/schemas?catalog_name=secret_catalog".to_string(),
            None,
        ),
        (
            Method::POST,
            "/schemas",
            "/schemas".to_string(),
            Some(json!({"name": "intruder", "catalog_name": "secret_catalog"})),
        ),
        (
            Method::GET,
            "/schemas/{full_name}",
            "/schemas/secret_catalog.secret_schema".to_string(),
            None,
        ),
        (
            Method::PATCH,
            "/schemas/{full_name}",
            "/schemas/secret_catalog.secret_schema".to_string(),
            Some(json!({"new_name": "pwned"})),
        ),
        (
            Method::DELETE,
            "/schemas/{full_name}",
            "/schemas/secret_catalog.secret_schema?force=true".to_string(),
            None,
        ),
        (
            Method::GET,
            "/tables",
            "/tables?catalog_name=secret_catalog&schema_name=secret_schema".to_string(),
            None,
        ),
        (
            Method::POST,
            "/tables",
            "/tables".to_string(),
            Some(json!({"name": "intruder", "catalog_name": "secret_catalog",
                        "schema_name": "secret_schema", "table_type": "MANAGED",
                        "data_source_format": "DELTA"})),
        ),
        (
            Method::GET,
            "/tables/{full_name}",
            format!("/tables/{table}"),
            None,
        ),
        (
            Method::PATCH,
            "/tables/{full_name}",
            format!("/tables/{table}"),
            Some(json!({"owner": "intruder@evil.test"})),
        ),
        (
            Method::DELETE,
            "/tables/{full_name}",
            format!("/tables/{table}"),
            None,
        ),
        (
            Method::GET,
            "/tables/{full_name}/exists",
            format!("/tables/{table}/exists"),
            None,
        ),
        (
            Method::GET,
            "/table-summaries",
            "/table-summaries?catalog_name=secret_catalog".to_string(),
            None,
        ),
        (
            Method::GET,
            "/permissions/{securable_type}/{full_name}",
            "/permissions/catalog/secret_catalog".to_string(),
            None,
        ),
        (
            Method::PATCH,
            "/permissions/{securable_type}/{full_name}",
            "/permissions/catalog/secret_catalog".to_string(),
            Some(grant.clone()),
        ),
        (
            Method::GET,
            "/effective-permissions/{securable_type}/{full_name}",
            format!("/effective-permissions/table/{table}"),
            None,
        ),
        (
            Method::GET,
            "/current-metastore-assignment",
            "/current-metastore-assignment".to_string(),
            None,
        ),
        (
            Method::GET,
            "/metastore_summary",
            "/metastore_summary".to_string(),
            None,
        ),
        (Method::GET, "/metastores", "/metastores".to_string(), None),
        (
            Method::GET,
            "/metastores/{metastore_id}",
            format!("/metastores/{metastore}"),
            None,
        ),
        (
            Method::PUT,
            "/workspaces/{workspace_id}/metastore",
            format!("/workspaces/{workspace}/metastore"),
            Some(json!({"metastore_id": metastore})),
        ),
        (
            Method::PATCH,
            "/workspaces/{workspace_id}/metastore",
            format!("/workspaces/{workspace}/metastore"),
            Some(json!({"metastore_id": metastore})),
        ),
        (
            Method::DELETE,
            "/workspaces/{workspace_id}/metastore",
            format!("/workspaces/{workspace}/metastore?metastore_id={metastore}"),
            None,
        ),
        (
            Method::GET,
            "/workspace-bindings/catalogs/{name}",
            "/workspace-bindings/catalogs/secret_catalog".to_string(),
            None,
        ),
        (
            Method::PATCH,
            "/workspace-bindings/catalogs/{name}",
            "/workspace-bindings/catalogs/secret_catalog".to_string(),
            Some(json!({"assign_workspaces": "all"})),
        ),
        (
            Method::GET,
            "/bindings/{securable_type}/{name}",
            "/bindings/catalog/secret_catalog".to_string(),
            None,
        ),
        (
            Method::PATCH,
            "/bindings/{securable_type}/{name}",
            "/bindings/catalog/secret_catalog".to_string(),
            Some(
                json!({"remove": [{"workspace_id": workspace.parse::<i64>().unwrap(),
                                    "binding_type": "BINDING_TYPE_READ_WRITE"}]}),
            ),
        ),
    ] {
        walk(
            method,
            &format!("{uc}{template}"),
            &format!("{uc}{path}"),
            body,
        );
    }
    let accounts = format!("/api/2.0/accounts/{account}");
    for (method, template, path, body) in [
        (Method::GET, "/metastores", "/metastores".to_string(), None),
        (
            Method::GET,
            "/metastores/{metastore_id}",
            format!("/metastores/{metastore}"),
            None,
        ),
        (
            Method::GET,
            "/workspaces/{workspace_id}/metastore",
            format!("/workspaces/{workspace}/metastore"),
            None,
        ),
        (
            Method::POST,
            "/workspaces/{workspace_id}/metastores/{metastore_id}",
            format!("/workspaces/{workspace}/metastores/{metastore}"),
            Some(json!({})),
        ),
        (
            Method::PUT,
            "/workspaces/{workspace_id}/metastores/{metastore_id}",
            format!("/workspaces/{workspace}/metastores/{metastore}"),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            "/workspaces/{workspace_id}/metastores/{metastore_id}",
            format!("/workspaces/{workspace}/metastores/{metastore}"),
            None,
        ),
        (Method::GET, "/workspaces", "/workspaces".to_string(), None),
        (
            Method::POST,
            "/workspaces",
            "/workspaces".to_string(),
            Some(json!({"workspace_name": "intruder"})),
        ),
        (
            Method::GET,
            "/workspaces/{workspace_id}",
            format!("/workspaces/{workspace}"),
            None,
        ),
        (
            Method::PATCH,
            "/workspaces/{workspace_id}",
            format!("/workspaces/{workspace}"),
            Some(json!({"workspace_name": "pwned"})),
        ),
        (
            Method::DELETE,
            "/workspaces/{workspace_id}",
            format!("/workspaces/{workspace}"),
            None,
        ),
        (
            Method::GET,
            "/workspaces/{workspace_id}/permissionassignments",
            format!("/workspaces/{workspace}/permissionassignments"),
            None,
        ),
        (
            Method::GET,
            "/workspaces/{workspace_id}/permissionassignments/permissions",
            format!("/workspaces/{workspace}/permissionassignments/permissions"),
            None,
        ),
        (
            Method::PUT,
            "/workspaces/{workspace_id}/permissionassignments/principals/{principal_id}",
            format!("/workspaces/{workspace}/permissionassignments/principals/{user}"),
            Some(json!({"permissions": ["ADMIN"]})),
        ),
        (
            Method::DELETE,
            "/workspaces/{workspace_id}/permissionassignments/principals/{principal_id}",
            format!("/workspaces/{workspace}/permissionassignments/principals/{user}"),
            None,
        ),
    ] {
        walk(
            method,
            &format!("/api/2.0/accounts/{{account_id}}{template}"),
            &format!("{accounts}{path}"),
            body,
        );
    }
    let set = format!("accounts/{account}/groups/{group}/ruleSets/default");
    for (template_base, base) in [
        (
            "/api/2.0/preview/accounts/{account_id}".to_string(),
            format!("/api/2.0/preview/accounts/{account}"),
        ),
        (
            "/api/2.0/preview/accounts".to_string(),
            "/api/2.0/preview/accounts".to_string(),
        ),
    ] {
        let roles = format!("{template_base}/access-control/assignable-roles");
        walk(
            Method::GET,
            &roles,
            &format!(
                "{base}/access-control/assignable-roles?resource=accounts/{account}/groups/{group}"
            ),
            None,
        );
        let rule_sets = format!("{template_base}/access-control/rule-sets");
        walk(
            Method::GET,
            &rule_sets,
            &format!("{base}/access-control/rule-sets?name={set}&etag="),
            None,
        );
        walk(
            Method::PUT,
            &rule_sets,
            &format!("{base}/access-control/rule-sets"),
            Some(
                json!({"name": set, "rule_set": {"name": set, "etag": "AAAAAAAAAAE=",
                "grant_rules": [{"role": "roles/group.manager",
                                 "principals": ["users/intruder@evil.test"]}]}}),
            ),
        );
    }

    walk(
        Method::POST,
        "/api/2.0/sql/statements",
        "/api/2.0/sql/statements",
        Some(json!({"warehouse_id": "any", "statement": "SHOW GRANTS ON CATALOG secret_catalog"})),
    );
    walk(
        Method::POST,
        "/api/2.0/sql/statements/",
        "/api/2.0/sql/statements/",
        Some(json!({"warehouse_id": "any", "statement": "DROP CATALOG secret_catalog CASCADE"})),
    );
    walk(
        Method::GET,
        "/api/2.0/sql/statements/{statement_id}",
        &format!("/api/2.0/sql/statements/{statement}"),
        None,
    );
    walk(
        Method::GET,
        "/api/2.0/sql/warehouses",
        "/api/2.0/sql/warehouses",
        None,
    );
    walk(
        Method::GET,
        "/api/2.0/sql/warehouses/{warehouse_id}",
        "/api/2.0/sql/warehouses/5c1a17a000000001",
        None,
    );

    // Tokens: the caller's own API, and the admins' token management, about the workspace's
    // token.
    let token = &secrets.token_id;
    for (method, template, path, body) in [
        (
            Method::GET,
            "/api/2.0/token/list",
            "/api/2.0/token/list".to_string(),
            None,
        ),
        (
            Method::POST,
            "/api/2.0/token/create",
            "/api/2.0/token/create".to_string(),
            Some(json!({"comment": "intruder", "lifetime_seconds": 600})),
        ),
        (
            Method::POST,
            "/api/2.0/token/delete",
            "/api/2.0/token/delete".to_string(),
            Some(json!({"token_id": token})),
        ),
        (
            Method::POST,
            "/api/2.0/token/rotate",
            "/api/2.0/token/rotate".to_string(),
            Some(json!({"token_id": token})),
        ),
        (
            Method::GET,
            "/api/2.0/token-management/tokens",
            "/api/2.0/token-management/tokens".to_string(),
            None,
        ),
        (
            Method::GET,
            "/api/2.0/token-management/tokens/{token_id}",
            format!("/api/2.0/token-management/tokens/{token}"),
            None,
        ),
        (
            Method::DELETE,
            "/api/2.0/token-management/tokens/{token_id}",
            format!("/api/2.0/token-management/tokens/{token}"),
            None,
        ),
        (
            Method::POST,
            "/api/2.0/token-management/tokens/{token_id}/rotate",
            format!("/api/2.0/token-management/tokens/{token}/rotate"),
            None,
        ),
        (
            Method::POST,
            "/api/2.0/token-management/on-behalf-of/tokens",
            "/api/2.0/token-management/on-behalf-of/tokens".to_string(),
            Some(
                json!({"application_id": "00000000-0000-0000-0000-000000000000",
                        "lifetime_seconds": 600}),
            ),
        ),
        (
            Method::GET,
            "/api/2.0/workspace-conf",
            "/api/2.0/workspace-conf?keys=enableTokensConfig".to_string(),
            None,
        ),
        (
            Method::PATCH,
            "/api/2.0/workspace-conf",
            "/api/2.0/workspace-conf".to_string(),
            Some(json!({"enableTokensConfig": "false"})),
        ),
        // The audit trail is the account's admins' alone.
        (
            Method::GET,
            "/api/2.0/audit/events",
            "/api/2.0/audit/events".to_string(),
            None,
        ),
        (
            Method::GET,
            "/api/2.0/audit/checkpoint",
            "/api/2.0/audit/checkpoint".to_string(),
            None,
        ),
        (
            Method::GET,
            "/api/2.0/audit/verifier-key",
            "/api/2.0/audit/verifier-key".to_string(),
            None,
        ),
        (
            Method::GET,
            "/api/2.0/audit/proof/inclusion",
            "/api/2.0/audit/proof/inclusion?seq=1&size=1".to_string(),
            None,
        ),
        (
            Method::GET,
            "/api/2.0/audit/proof/consistency",
            "/api/2.0/audit/proof/consistency?from=1&to=1".to_string(),
            None,
        ),
        // Alert rules, too (crates/server/tests/api/alerts.rs tests them further).
        (
            Method::GET,
            "/api/2.0/audit/alert-rules",
            "/api/2.0/audit/alert-rules".to_string(),
            None,
        ),
        (
            Method::POST,
            "/api/2.0/audit/alert-rules",
            "/api/2.0/audit/alert-rules".to_string(),
            Some(json!({"name": "walk", "kind": "admins_group_change",
                        "webhook": {"url": "http://127.0.0.1:9/hook"}})),
        ),
        (
            Method::GET,
            "/api/2.0/audit/alert-rules/{id}",
            "/api/2.0/audit/alert-rules/00000000-0000-0000-0000-000000000000".to_string(),
            None,
        ),
        (
            Method::PUT,
            "/api/2.0/audit/alert-rules/{id}",
            "/api/2.0/audit/alert-rules/00000000-0000-0000-0000-000000000000".to_string(),
            Some(json!({"name": "walk", "kind": "admins_group_change",
                        "webhook": {"url": "http://127.0.0.1:9/hook"}})),
        ),
        (
            Method::DELETE,
            "/api/2.0/audit/alert-rules/{id}",
            "/api/2.0/audit/alert-rules/00000000-0000-0000-0000-000000000000".to_string(),
            None,
        ),
        // The change feed: admins and SCIM-scoped tokens only, and only the caller's own
        // account's token (crates/server/tests/api/sync_changes.rs tests it further).
        (
            Method::GET,
            "/api/2.0/sync/changes",
            "/api/2.0/sync/changes?after=0&timeout_seconds=0".to_string(),
            None,
        ),
        // The sync jobs' status: account admins only, each its own account's jobs
        // (crates/server/tests/api/sync_jobs.rs tests it further).
        (
            Method::GET,
            "/api/2.0/sync/jobs",
            "/api/2.0/sync/jobs".to_string(),
            None,
        ),
        (
            Method::GET,
            "/api/2.0/sync/jobs/{name}",
            "/api/2.0/sync/jobs/hr".to_string(),
            None,
        ),
        // Lifting a quarantine: account admins only, their own account's jobs.
        (
            Method::POST,
            "/api/2.0/sync/jobs/{name}/resume",
            "/api/2.0/sync/jobs/hr/resume".to_string(),
            None,
        ),
        (
            Method::POST,
            "/api/2.0/sync/jobs/{name}/targets/{target}/resume",
            "/api/2.0/sync/jobs/hr/targets/prod/resume".to_string(),
            None,
        ),
    ] {
        walk(method, template, &path, body);
    }

    // OAuth: a service principal's secrets, through the workspace proxy and the account API;
    // the token endpoints, discovery documents and keys of the workspace and the account.
    let (sp, oauth_secret) = (&secrets.service_principal_id, &secrets.oauth_secret_id);
    for base in [
        "/api/2.0/accounts/servicePrincipals/{service_principal_id}/credentials/secrets",
        "/api/2.0/accounts/{account_id}/servicePrincipals/{service_principal_id}/credentials/secrets",
    ] {
        let at = base
            .replace("{account_id}", account)
            .replace("{service_principal_id}", sp);
        walk(Method::GET, base, &at, None);
        walk(Method::POST, base, &at, Some(json!({"lifetime": "600s"})));
        walk(
            Method::DELETE,
            &format!("{base}/{{secret_id}}"),
            &format!("{at}/{oauth_secret}"),
            None,
        );
    }
    for base in ["/oidc", "/oidc/accounts/{account_id}"] {
        let at = base.replace("{account_id}", account);
        for document in ["oauth-authorization-server", "openid-configuration"] {
            walk(
                Method::GET,
                &format!("{base}/.well-known/{document}"),
                &format!("{at}/.well-known/{document}"),
                None,
            );
        }
        walk(
            Method::GET,
            &format!("{base}/v1/keys"),
            &format!("{at}/v1/keys"),
            None,
        );
        walk(
            Method::POST,
            &format!("{base}/v1/token"),
            &format!("{at}/v1/token"),
            None,
        );
    }

    // Federation policies of the account and of a service principal (account admins only).
    for base in [
        "/api/2.0/accounts/{account_id}/federationPolicies",
        "/api/2.0/accounts/{account_id}/servicePrincipals/{service_principal_id}/federationPolicies",
    ] {
        let at = base
            .replace("{account_id}", account)
            .replace("{service_principal_id}", sp);
        let body = json!({"oidc_policy": {"issuer": "https://idp.example", "subject": "s"}});
        walk(Method::GET, base, &at, None);
        walk(Method::POST, base, &at, Some(body.clone()));
        let one = format!("{base}/{{policy_id}}");
        let at_one = format!("{at}/p1");
        walk(Method::GET, &one, &at_one, None);
        walk(Method::PATCH, &one, &at_one, Some(body));
        walk(Method::DELETE, &one, &at_one, None);
    }

    let tree = "/api/2.0/workspace";
    for (method, route, query, body) in [
        (Method::GET, "/list", "?path=/Shared", None),
        (
            Method::GET,
            "/get-status",
            "?path=/Shared/secret-folder",
            None,
        ),
        (
            Method::POST,
            "/mkdirs",
            "",
            Some(json!({"path": "/Shared/intruder"})),
        ),
        (
            Method::POST,
            "/delete",
            "",
            Some(json!({"path": "/Shared/secret-folder", "recursive": true})),
        ),
    ] {
        walk(
            method,
            &format!("{tree}{route}"),
            &format!("{tree}{route}{query}"),
            body,
        );
    }
    let mut multipart = Vec::new();
    for (name, value) in [
        ("path", "/Shared/intruder.py"),
        ("format", "AUTO"),
        ("overwrite", "true"),
    ] {
        multipart.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    multipart.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; \
             filename=\"content\"\r\n\r\nprint('pwned')\r\n--{BOUNDARY}--\r\n"
        )
        .as_bytes(),
    );
    routes.push(Walked {
        method: Method::POST,
        template: format!("{tree}/import"),
        path: format!("{tree}/import"),
        body: Some(Body::Multipart(multipart)),
    });
    routes
}

/// A secret's stand-in that never existed: `secret` becomes `ghost` in names, and each hex
/// digit of an id the next one (decimal in a number, hex in a uuid), so that it keeps its shape.
fn ghost(secret: &str) -> String {
    if secret.contains("secret") {
        return secret.replace("secret", "ghost");
    }
    let radix = if secret.chars().all(|c| c.is_ascii_digit()) {
        10
    } else {
        16
    };
    secret
        .chars()
        .map(|c| match c.to_digit(radix) {
            Some(digit) => std::char::from_digit((digit + 1) % radix, radix).unwrap_or(c),
            None => c,
        })
        .collect()
}

/// `text` with every secret replaced by its ghost.
fn ghost_of(secrets: &[String], text: &str) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), &ghost(secret))
    })
}

/// `text` with every ghost replaced by its secret.
fn unghost(secrets: &[String], text: &str) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(&ghost(secret), secret)
    })
}

/// Who attacks: a name for messages, a token, the workspace its credential may enter, and
/// whether it is of the victim's account.
struct Attacker {
    name: String,
    token: String,
    own_workspace: String,
    same_account: bool,
}

#[tokio::test]
async fn no_route_of_a_workspace_answers_another_workspace_or_account() {
    let app = spawn_app().await;
    let victim = read(
        app.request(Method::GET, "/.well-known/databricks-config")
            .send()
            .await
            .unwrap(),
    )
    .await
    .body["workspace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secrets = seed(&app, &victim).await;

    // Another workspace of the same account, with a user and an admin of its own.
    let made = read(
        app.request(
            Method::POST,
            &format!("/api/2.0/accounts/{}/workspaces", app.account),
        )
        .json(&json!({"workspace_name": "other"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    let other = made.body["workspace_id"].as_i64().unwrap().to_string();
    let mut attackers = Vec::new();
    for (user_name, permission) in [
        ("neighbour@other.test", "USER"),
        ("neighbour.admin@other.test", "ADMIN"),
    ] {
        let user = read(
            app.request(Method::POST, &format!("/w/{other}/scim/v2/Users"))
                .json(&json!({"schemas": [USER_SCHEMA], "userName": user_name}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(user.status, 201, "{}", user.body);
        let assigned = read(
            app.request(
                Method::PUT,
                &format!(
                    "/api/2.0/accounts/{}/workspaces/{other}/permissionassignments/principals/{}",
                    app.account,
                    user.id()
                ),
            )
            .json(&json!({"permissions": [permission]}))
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(assigned.status, 200, "{}", assigned.body);
        attackers.push(Attacker {
            name: user_name.to_string(),
            token: app.token_for(&user.id()).await,
            own_workspace: other.clone(),
            same_account: true,
        });
    }
    let foreign = app
        .services
        .create_account("foreign", "foreign")
        .await
        .unwrap();
    let foreign_workspace = app.services.workspaces(&foreign.account.id).await.unwrap()[0]
        .id
        .to_string();
    attackers.push(Attacker {
        name: "another account's admin".into(),
        token: foreign.admin_token.expose().to_string(),
        own_workspace: foreign_workspace,
        same_account: false,
    });

    let routes = routes(&secrets, app.account.as_str(), &victim);
    // Every route of the router is walked, and nothing but routes of the router.
    let walked: BTreeSet<(String, String)> = routes
        .iter()
        .map(|route| (route.method.to_string(), route.template.clone()))
        .collect();
    let served = routes_of_the_router();
    let not_walked: Vec<_> = served.difference(&walked).collect();
    assert!(
        not_walked.is_empty(),
        "routes of the router the isolation walk does not walk: {not_walked:?}"
    );
    let unknown: Vec<_> = walked.difference(&served).collect();
    assert!(
        unknown.is_empty(),
        "walked routes the router does not have: {unknown:?}"
    );
    for route in &routes {
        assert!(
            matches_template(&route.template, &route.path),
            "{} does not match {}",
            route.path,
            route.template
        );
    }

    for attacker in &attackers {
        for route in &routes {
            let public = is_public(&route.template);
            let account_level = is_account_level(&route.template);
            for (prefix, addressed_to_victim) in [
                (format!("/w/{victim}"), true),
                (String::new(), true),
                (format!("/w/{}", attacker.own_workspace), false),
            ] {
                let path = format!("{prefix}{}", route.path);
                let (reply, headers) = send(
                    &app,
                    &attacker.token,
                    route.method.clone(),
                    &path,
                    route.body.as_ref(),
                )
                .await;
                let who = &attacker.name;
                let method = &route.method;
                // Refused, but for the public routes: the victim's workspace to anyone outside
                // it, and the victim's account API to another account and to anyone of the
                // account who is not its admin, but where it answers any of its principals.
                let refused = !public
                    && if account_level {
                        !attacker.same_account || !answers_the_accounts_principals(&route.template)
                    } else {
                        addressed_to_victim
                    };
                if refused {
                    assert!(
                        reply.status == 403 || reply.status == 404,
                        "{who}: {method} {path} answered {}: {}",
                        reply.status,
                        reply.body
                    );
                } else {
                    assert!(
                        reply.status < 500,
                        "{who}: {method} {path} answered {}: {}",
                        reply.status,
                        reply.body
                    );
                }
                // What the request itself names is no secret to its sender.
                let sent = format!(
                    "{path} {}",
                    match &route.body {
                        Some(Body::Json(body)) => body.to_string(),
                        Some(Body::Multipart(bytes)) => String::from_utf8_lossy(bytes).into(),
                        None => String::new(),
                    }
                );
                // `.well-known` names the addressed workspace's account to anyone.
                let account_secrets = !(attacker.same_account || public && addressed_to_victim);
                let text = format!("{headers} {}", reply.body);
                for secret in secrets
                    .workspace
                    .iter()
                    .chain(secrets.account.iter().filter(|_| account_secrets))
                {
                    assert!(
                        sent.contains(secret.as_str()) || !text.contains(secret.as_str()),
                        "{who}: {method} {path} shows {secret}: {text}"
                    );
                }
                // From its own workspace, a read about the victim's things is answered as the
                // same read about things that never existed: nothing can be probed. The
                // account API answers for the whole account, not for a workspace. (A job id is
                // each workspace's own, so the victim's `secret-job` is no secret: the walk uses
                // the same id in the attacker's workspace, and `workspace_objects.rs` shows that
                // an id used elsewhere reads as a fresh one.)
                let skipped = addressed_to_victim || account_level || route.method != Method::GET;
                let ghost = ghost_of(&secrets.workspace, &path);
                if skipped || ghost == path {
                    continue;
                }
                let (ghost_reply, _) = send(&app, &attacker.token, Method::GET, &ghost, None).await;
                assert_eq!(
                    (reply.status, reply.body.to_string()),
                    (
                        ghost_reply.status,
                        unghost(&secrets.workspace, &ghost_reply.body.to_string())
                    ),
                    "{who}: {path} and {ghost} answer apart"
                );
            }
        }
    }

    // Nothing was written: the workspace reads as it was seeded.
    let oauth_secrets = call(
        &app,
        Method::GET,
        &format!(
            "/api/2.0/accounts/{}/servicePrincipals/{}/credentials/secrets",
            app.account, secrets.service_principal_id
        ),
        Some(&app.token),
        None,
    )
    .await;
    let ids: Vec<&str> = oauth_secrets.body["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|secret| secret["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [secrets.oauth_secret_id.as_str()],
        "{}",
        oauth_secrets.body
    );
    let at = |path: &str| format!("/w/{victim}{path}");
    let user = call(
        &app,
        Method::GET,
        &at(&format!("/scim/v2/Users/{}", secrets.user_id)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(user.status, 200);
    assert_eq!(user.body["userName"], "secret.user@victim.test");
    assert!(user.body.get("displayName").is_none(), "{}", user.body);
    let group = call(
        &app,
        Method::GET,
        &at(&format!("/scim/v2/Groups/{}", secrets.group_id)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(member_ids_of(&group.body), [secrets.user_id.as_str()]);
    let intruders = call(
        &app,
        Method::GET,
        &at("/scim/v2/Users?filter=userName%20sw%20%22intruder%22%20or%20userName%20sw%20%22pwned%22"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(intruders.total(), 0, "{}", intruders.body);
    let catalog = call(
        &app,
        Method::GET,
        &at("/api/2.1/unity-catalog/catalogs/secret_catalog"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(
        catalog.body["isolation_mode"], "ISOLATED",
        "{}",
        catalog.body
    );
    let tables = call(
        &app,
        Method::GET,
        &at("/api/2.1/unity-catalog/tables?catalog_name=secret_catalog&schema_name=secret_schema"),
        Some(&app.token),
        None,
    )
    .await;
    let names: Vec<&str> = tables.body["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|table| table["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["secret_table"], "{}", tables.body);
    let catalogs = call(
        &app,
        Method::GET,
        &at("/api/2.1/unity-catalog/catalogs"),
        Some(&app.token),
        None,
    )
    .await;
    assert!(
        !catalogs.body.to_string().contains("intruder"),
        "{}",
        catalogs.body
    );
    for path in [
        "/api/2.1/unity-catalog/permissions/catalog/secret_catalog",
        "/api/2.0/permissions/jobs/secret-job",
        &format!("/api/2.0/permissions/directories/{}", secrets.folder_id),
        &format!(
            "/api/2.0/preview/accounts/access-control/rule-sets?name=accounts/{}/groups/{}/ruleSets/default&etag=",
            app.account, secrets.group_id
        ),
        "/api/2.0/workspace/list?path=/Shared/secret-folder",
    ] {
        let reply = call(&app, Method::GET, &at(path), Some(&app.token), None).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let text = reply.body.to_string();
        assert!(!text.contains("intruder") && !text.contains("pwned"), "{path}: {text}");
    }
    let assignments = call(
        &app,
        Method::GET,
        &format!(
            "/api/2.0/accounts/{}/workspaces/{victim}/permissionassignments",
            app.account
        ),
        Some(&app.token),
        None,
    )
    .await;
    let secret_user = assignments.body["permission_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|assignment| {
            assignment["principal"]["principal_id"]
                .to_string()
                .contains(&secrets.user_id)
        })
        .unwrap_or_else(|| {
            panic!(
                "the secret user is no longer assigned: {}",
                assignments.body
            )
        });
    assert_eq!(
        secret_user["permissions"],
        json!(["USER"]),
        "{}",
        assignments.body
    );
    let workspaces = call(
        &app,
        Method::GET,
        &format!("/api/2.0/accounts/{}/workspaces/{victim}", app.account),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(workspaces.status, 200, "{}", workspaces.body);
    assert!(
        !workspaces.body.to_string().contains("pwned"),
        "{}",
        workspaces.body
    );
}
