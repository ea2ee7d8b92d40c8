//! The access API: check, who and what over workspace objects, entitlements and Unity Catalog
//! securables, through nested groups; and every SCIM change (deactivation, deletion,
//! membership) visible to the very next check.

use crate::permissions::permissions;
use crate::support::*;
use reqwest::Method;
use scimitar_access::{Privilege, SecurableType};
use scimitar_app::governance::{Governance, PrivilegeChanges};
use serde_json::{json, Value};

async fn ask(app: &TestApp, token: &str, question: &str, query: &[(&str, &str)]) -> Reply {
    read(
        app.client
            .get(format!("{}/api/2.0/access/{question}", app.address))
            .bearer_auth(token)
            .query(query)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

/// The names of a chain, principal first.
fn chain(via: &Value) -> Vec<&str> {
    via["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

fn names(who: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = who["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|holder| holder["principal"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    names
}

/// alice in team in analysts; analysts may view job 42.
async fn nested_job(app: &TestApp) -> (String, String) {
    let alice = app.create_user("alice@example.com").await;
    let alice_id = alice["id"].as_str().unwrap().to_string();
    let team = app.create_group("team", &[&alice_id]).await;
    let team_id = team["id"].as_str().unwrap().to_string();
    app.create_group("analysts", &[&team_id]).await;
    let body = json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_VIEW"}]});
    let put = permissions(app, Method::PUT, "jobs/42", &app.token, Some(body)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    (alice_id, team_id)
}

const VIEW_JOB: [(&str, &str); 3] = [
    ("object_type", "jobs"),
    ("object_id", "42"),
    ("permission_level", "CAN_VIEW"),
];

fn with_principal<'a>(principal: &'a str, rest: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut query = vec![("principal", principal)];
    query.extend_from_slice(rest);
    query
}

#[tokio::test]
async fn check_explains_an_object_level_held_through_nested_groups() {
    let app = spawn_app().await;
    nested_job(&app).await;
    let reply = ask(
        &app,
        &app.token,
        "check",
        &with_principal("alice@example.com", &VIEW_JOB),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["allowed"], json!(true));
    let reason = &reply.body["reasons"][0];
    assert_eq!(chain(reason), ["alice@example.com", "team", "analysts"]);
    assert_eq!(reason["grantee"]["name"], json!("analysts"));
    assert_eq!(reason["source"]["kind"], json!("object_acl"));
    assert_eq!(reason["source"]["permission_level"], json!("CAN_VIEW"));
    assert_eq!(reply.body["missing"], json!([]));

    let run = [
        ("object_type", "jobs"),
        ("object_id", "42"),
        ("permission_level", "CAN_MANAGE_RUN"),
    ];
    let reply = ask(
        &app,
        &app.token,
        "check",
        &with_principal("alice@example.com", &run),
    )
    .await;
    assert_eq!(reply.body["allowed"], json!(false), "{}", reply.body);
    assert_eq!(reply.body["reasons"], json!([]));
    assert_eq!(
        reply.body["missing"][0]["permission_level"],
        json!("CAN_MANAGE_RUN")
    );

    // The admin holds CAN_MANAGE everywhere, through admins.
    let reply = ask(
        &app,
        &app.token,
        "check",
        &with_principal(BOOTSTRAP_ADMIN, &run),
    )
    .await;
    assert_eq!(reply.body["allowed"], json!(true), "{}", reply.body);
    assert_eq!(
        reply.body["reasons"][0]["source"]["kind"],
        json!("workspace_admin")
    );
}

const BOOTSTRAP_ADMIN: &str = "admin@scimitar.local";

#[tokio::test]
async fn who_lists_users_reached_through_nesting_each_with_a_chain() {
    let app = spawn_app().await;
    nested_job(&app).await;
    let bob = app.create_user("bob@example.com").await;
    app.create_group("outsiders", &[bob["id"].as_str().unwrap()])
        .await;
    let reply = ask(&app, &app.token, "who", &VIEW_JOB).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        names(&reply.body),
        ["admin@scimitar.local", "alice@example.com"]
    );
    let alice = reply.body["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|holder| holder["principal"]["name"] == json!("alice@example.com"))
        .unwrap();
    assert_eq!(
        chain(&alice["via"]),
        ["alice@example.com", "team", "analysts"]
    );
}

#[tokio::test]
async fn entitlements_are_inherited_from_groups_and_admins_hold_them_all() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com").await;
    let alice_id = alice["id"].as_str().unwrap();
    let team = app.create_group("team", &[alice_id]).await;
    let reply = app
        .post(
            "/Groups",
            json!({
                "schemas": [GROUP_SCHEMA],
                "displayName": "workspace-users",
                "members": [{"value": team["id"]}],
                "entitlements": [{"value": "workspace-access"}],
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    let query = with_principal("alice@example.com", &[("entitlement", "workspace-access")]);
    let reply = ask(&app, &app.token, "check", &query).await;
    assert_eq!(reply.body["allowed"], json!(true), "{}", reply.body);
    // Held through the nested groups, and through `users`, which carries it by default.
    let chains: Vec<Vec<&str>> = reply.body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(chain)
        .collect();
    assert!(
        chains.contains(&vec!["alice@example.com", "team", "workspace-users"]),
        "{}",
        reply.body
    );
    assert!(
        chains.contains(&vec!["alice@example.com", "users"]),
        "{}",
        reply.body
    );
    let query = with_principal(
        "alice@example.com",
        &[("entitlement", "allow-cluster-create")],
    );
    let reply = ask(&app, &app.token, "check", &query).await;
    assert_eq!(reply.body["allowed"], json!(false), "{}", reply.body);
    assert_eq!(
        reply.body["missing"][0]["entitlement"],
        json!("allow-cluster-create")
    );
    let query = with_principal(BOOTSTRAP_ADMIN, &[("entitlement", "allow-cluster-create")]);
    let reply = ask(&app, &app.token, "check", &query).await;
    assert_eq!(reply.body["allowed"], json!(true), "{}", reply.body);

    let reply = ask(
        &app,
        &app.token,
        "who",
        &[("entitlement", "workspace-access")],
    )
    .await;
    assert_eq!(
        names(&reply.body),
        ["admin@scimitar.local", "alice@example.com"]
    );

    let reply = ask(
        &app,
        &app.token,
        "what",
        &[("principal", "alice@example.com")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let access = reply.body["access"].as_array().unwrap();
    assert!(
        access.iter().any(|via| via["source"]
            == json!({"kind": "entitlement", "entitlement": "workspace-access"})),
        "{}",
        reply.body
    );
    // Unknown entitlement names are the client's mistake.
    let query = with_principal("alice@example.com", &[("entitlement", "fly")]);
    let reply = ask(&app, &app.token, "check", &query).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error_code"], json!("INVALID_PARAMETER_VALUE"));
}

#[tokio::test]
async fn deactivation_deletion_and_membership_changes_reach_the_very_next_check() {
    let app = spawn_app().await;
    let (alice_id, team_id) = nested_job(&app).await;
    let query = with_principal("alice@example.com", &VIEW_JOB);
    assert_eq!(
        ask(&app, &app.token, "check", &query).await.body["allowed"],
        json!(true)
    );

    // Out of the team: no longer reached from analysts.
    let reply = app
        .patch_ops(
            &format!("/Groups/{team_id}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{alice_id}\"]")}]),
        )
        .await;
    assert!(reply.status < 300, "{}", reply.body);
    let reply = ask(&app, &app.token, "check", &query).await;
    assert_eq!(reply.body["allowed"], json!(false), "{}", reply.body);

    // Back in, then deactivated: denied with the reason, and gone from who.
    let reply = app
        .patch_ops(
            &format!("/Groups/{team_id}"),
            json!([{"op": "add", "path": "members", "value": [{"value": alice_id}]}]),
        )
        .await;
    assert!(reply.status < 300, "{}", reply.body);
    assert_eq!(
        ask(&app, &app.token, "check", &query).await.body["allowed"],
        json!(true)
    );
    let reply = app
        .patch_ops(
            &format!("/Users/{alice_id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = ask(&app, &app.token, "check", &query).await;
    assert_eq!(reply.body["allowed"], json!(false), "{}", reply.body);
    assert_eq!(
        reply.body["missing"][0]["deactivated"]["name"],
        json!("alice@example.com")
    );
    let reply = ask(&app, &app.token, "who", &VIEW_JOB).await;
    assert_eq!(names(&reply.body), ["admin@scimitar.local"]);

    // Deleted: the principal is unknown.
    let reply = app.delete(&format!("/Users/{alice_id}")).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let reply = ask(&app, &app.token, "check", &query).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.body["error_code"], json!("RESOURCE_DOES_NOT_EXIST"));
}

#[tokio::test]
async fn callers_may_ask_about_themselves_and_admins_about_anyone() {
    let app = spawn_app().await;
    let (alice_id, _) = nested_job(&app).await;
    let bob = app.create_user("bob@example.com").await;
    let alice_token = app.token_for(&alice_id).await;
    let bob_token = app.token_for(bob["id"].as_str().unwrap()).await;

    let own = with_principal("alice@example.com", &VIEW_JOB);
    let reply = ask(&app, &alice_token, "check", &own).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // No principal means the caller.
    let reply = ask(&app, &alice_token, "check", &VIEW_JOB).await;
    assert_eq!(reply.body["principal"]["name"], json!("alice@example.com"));
    let reply = ask(&app, &alice_token, "what", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let reply = ask(&app, &bob_token, "check", &own).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.body["error_code"], json!("PERMISSION_DENIED"));
    let reply = ask(
        &app,
        &bob_token,
        "what",
        &[("principal", alice_id.as_str())],
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let reply = ask(&app, &bob_token, "who", &VIEW_JOB).await;
    assert_eq!(reply.status, 403, "{}", reply.body);

    // Malformed questions are 400s, not 500s.
    for query in [
        vec![("principal", "alice@example.com")],
        vec![("principal", "alice@example.com"), ("object_type", "jobs")],
        vec![
            ("principal", "alice@example.com"),
            ("entitlement", "workspace-access"),
            ("object_type", "jobs"),
        ],
        vec![
            ("principal", "alice@example.com"),
            ("object_type", "jobs"),
            ("object_id", "42"),
            ("permission_level", "CAN_ATTACH_TO"),
        ],
    ] {
        let reply = ask(&app, &app.token, "check", &query).await;
        assert_eq!(reply.status, 400, "{query:?}: {}", reply.body);
    }
}

/// Acts through the governance service as the account's admin, as the Unity Catalog API does.
async fn as_admin(app: &TestApp) -> scimitar_app::Actor {
    app.services
        .act_as_admin(&app.account)
        .await
        .expect("an admin to act as")
}

async fn create_securable(app: &TestApp, kind: SecurableType, name: &str) {
    let actor = as_admin(app).await;
    Governance::new(app.services.clone())
        .caller(&actor)
        .create(kind, name, None, false)
        .await
        .expect("created");
}

/// Grants `privilege` to the principal named `to` (a userName or group name).
async fn grant(app: &TestApp, kind: SecurableType, name: &str, to: &str, privilege: Privilege) {
    let actor = as_admin(app).await;
    Governance::new(app.services.clone())
        .caller(&actor)
        .update_privileges(
            kind,
            name,
            vec![PrivilegeChanges {
                principal: to.to_string(),
                add: vec![privilege],
                remove: Vec::new(),
            }],
        )
        .await
        .expect("granted");
}

#[tokio::test]
async fn unity_catalog_checks_name_the_grant_and_what_is_missing() {
    let app = spawn_app().await;
    let (alice_id, team_id) = nested_job(&app).await;
    let admin = as_admin(&app).await;
    for (kind, name) in [
        (SecurableType::Catalog, "main"),
        (SecurableType::Schema, "main.sales"),
        (SecurableType::Table, "main.sales.orders"),
    ] {
        create_securable(&app, kind, name).await;
    }
    grant(
        &app,
        SecurableType::Schema,
        "main.sales",
        "team",
        Privilege::Select,
    )
    .await;
    grant(
        &app,
        SecurableType::Catalog,
        "main",
        "team",
        Privilege::UseCatalog,
    )
    .await;
    let select = [
        ("principal", "alice@example.com"),
        ("privilege", "SELECT"),
        ("securable_type", "TABLE"),
        ("full_name", "main.sales.orders"),
    ];
    let reply = ask(&app, &app.token, "check", &select).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["allowed"], json!(false), "{}", reply.body);
    assert_eq!(
        reply.body["missing"],
        json!([{"privilege": "USE_SCHEMA", "securable_type": "SCHEMA", "full_name": "main.sales",
                "message": "missing USE_SCHEMA on SCHEMA main.sales"}])
    );

    grant(
        &app,
        SecurableType::Schema,
        "main.sales",
        "alice@example.com",
        Privilege::UseSchema,
    )
    .await;
    let reply = ask(&app, &app.token, "check", &select).await;
    assert_eq!(reply.body["allowed"], json!(true), "{}", reply.body);
    let select_reason = reply.body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|reason| reason["requirement"]["privilege"] == json!("SELECT"))
        .unwrap();
    assert_eq!(
        select_reason["source"],
        json!({"kind": "grant", "privilege": "SELECT", "securable_type": "SCHEMA", "full_name": "main.sales"})
    );
    assert_eq!(chain(select_reason), ["alice@example.com", "team"]);

    let who = [
        ("privilege", "SELECT"),
        ("securable_type", "TABLE"),
        ("full_name", "main.sales.orders"),
    ];
    let reply = ask(&app, &app.token, "who", &who).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // Every field of every holder: the body is written straight from the engine's compact
    // answer, so this is what keeps its shape from drifting.
    let user = |id: &str, name: &str| json!({"id": id, "type": "user", "name": name});
    let admin_user = user(admin.principal().as_str(), BOOTSTRAP_ADMIN);
    let alice_user = user(&alice_id, "alice@example.com");
    let team = json!({"id": team_id, "type": "group", "name": "team"});
    assert_eq!(
        reply.body,
        json!({
            "target": {"privilege": "SELECT", "securable_type": "TABLE",
                       "full_name": "main.sales.orders"},
            "principals": [
                {
                    "principal": admin_user,
                    "via": {
                        "source": {"kind": "ownership", "securable_type": "TABLE",
                                   "full_name": "main.sales.orders"},
                        "grantee": admin_user,
                        "chain": [admin_user],
                    },
                },
                {
                    "principal": alice_user,
                    "via": {
                        "source": {"kind": "grant", "privilege": "SELECT",
                                   "securable_type": "SCHEMA", "full_name": "main.sales"},
                        "grantee": team,
                        "chain": [alice_user, team],
                    },
                },
            ],
        })
    );

    let reply = ask(
        &app,
        &app.token,
        "what",
        &[("principal", "alice@example.com")],
    )
    .await;
    let access = reply.body["access"].as_array().unwrap();
    assert!(access
        .iter()
        .any(|via| via["source"]["kind"] == json!("grant")
            && via["source"]["privilege"] == json!("SELECT")
            && chain(via) == ["alice@example.com", "team"]));
    assert!(access
        .iter()
        .any(|via| via["source"]["kind"] == json!("object_acl")));

    // An unknown table is 404; a privilege that does not apply to it is 400.
    let mut missing = select;
    missing[3] = ("full_name", "main.sales.nothing");
    assert_eq!(ask(&app, &app.token, "check", &missing).await.status, 404);
    let mut misapplied = select;
    misapplied[1] = ("privilege", "CREATE_CATALOG");
    assert_eq!(
        ask(&app, &app.token, "check", &misapplied).await.status,
        400
    );
}
