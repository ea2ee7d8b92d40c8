//! Account access-control rule sets (issue #14, "Account admins and account roles"): the
//! assignable roles of the account, a group and a service principal; rule sets read and
//! replaced whole with their etag, on the account host and through the workspace proxy; who
//! may read and write them; and the manager roles enforced on SCIM writes.

use crate::leaks::{second_account, spawn_app_with_url};
use crate::support::*;
use crate::unity_catalog::databricks_error;
use reqwest::Method;
use serde_json::{json, Value};

const GROUP_MANAGER: &str = "roles/group.manager";
const SP_MANAGER: &str = "roles/servicePrincipal.manager";
const SP_USER: &str = "roles/servicePrincipal.user";

/// The two places the API lives: the account host (with the account id) and the workspace
/// proxy (the default workspace's account).
fn bases(app: &TestApp) -> [String; 2] {
    [
        format!("/api/2.0/preview/accounts/{}/access-control", app.account),
        "/api/2.0/preview/accounts/access-control".to_string(),
    ]
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .query(query);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("sent")).await
}

fn account_set(app: &TestApp) -> String {
    format!("accounts/{}/ruleSets/default", app.account)
}

fn group_set(app: &TestApp, group_id: &str) -> String {
    format!(
        "accounts/{}/groups/{group_id}/ruleSets/default",
        app.account
    )
}

fn sp_set(app: &TestApp, application_id: &str) -> String {
    format!(
        "accounts/{}/servicePrincipals/{application_id}/ruleSets/default",
        app.account
    )
}

async fn get_set(app: &TestApp, token: &str, name: &str) -> Reply {
    let path = format!("{}/rule-sets", bases(app)[0]);
    call(
        app,
        Some(token),
        Method::GET,
        &path,
        &[("name", name), ("etag", "")],
        None,
    )
    .await
}

fn update(name: &str, etag: &str, rules: Value) -> Value {
    json!({"name": name, "rule_set": {"name": name, "etag": etag, "grant_rules": rules}})
}

async fn put_set(app: &TestApp, token: &str, body: Value) -> Reply {
    let path = format!("{}/rule-sets", bases(app)[0]);
    call(app, Some(token), Method::PUT, &path, &[], Some(body)).await
}

/// Reads the set as the admin and replaces it with `rules` from its current etag.
async fn grant(app: &TestApp, name: &str, rules: Value) -> Value {
    let current = get_set(app, &app.token, name).await;
    assert_eq!(current.status, 200, "{}", current.body);
    let etag = str_of(&current.body, "etag").to_string();
    let reply = put_set(app, &app.token, update(name, &etag, rules)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn each_resource_names_the_roles_it_takes_on_both_hosts() {
    let app = spawn_app().await;
    let team = app.create_group("team", &[]).await;
    let sp = app.create_service_principal("ci").await;
    let application_id = str_of(&sp, "applicationId");
    let cases = [
        (
            format!("accounts/{}", app.account),
            vec!["roles/billing.admin", "roles/marketplace.admin"],
        ),
        (
            format!("accounts/{}/groups/{}", app.account, str_of(&team, "id")),
            vec![GROUP_MANAGER],
        ),
        (
            format!(
                "accounts/{}/servicePrincipals/{application_id}",
                app.account
            ),
            vec![SP_MANAGER, SP_USER],
        ),
        // The SDK's example writes the service principal's id; it is taken too.
        (
            format!(
                "accounts/{}/servicePrincipals/{}",
                app.account,
                str_of(&sp, "id")
            ),
            vec![SP_MANAGER, SP_USER],
        ),
    ];
    // Any principal of the account may ask.
    let bob = app.create_user("bob@example.com").await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;
    for base in bases(&app) {
        for (resource, roles) in &cases {
            for token in [&app.token, &bob_token] {
                let path = format!("{base}/assignable-roles");
                let reply = call(
                    &app,
                    Some(token),
                    Method::GET,
                    &path,
                    &[("resource", resource)],
                    None,
                )
                .await;
                assert_eq!(reply.status, 200, "{resource}: {}", reply.body);
                let names: Vec<&str> = reply.body["roles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|role| str_of(role, "name"))
                    .collect();
                assert_eq!(&names, roles, "{resource}");
            }
        }
    }
    let path = format!("{}/assignable-roles", bases(&app)[0]);
    for (resource, status, code) in [
        (
            format!("accounts/{}/groups/404404", app.account),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "accounts/someone-else/groups/1".to_string(),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            format!("accounts/{}/budgetPolicies/1", app.account),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("groups/1".to_string(), 400, "INVALID_PARAMETER_VALUE"),
        (String::new(), 400, "INVALID_PARAMETER_VALUE"),
    ] {
        let reply = call(
            &app,
            Some(&app.token),
            Method::GET,
            &path,
            &[("resource", &resource)],
            None,
        )
        .await;
        databricks_error(&reply, status, code);
    }
}

#[tokio::test]
async fn an_admin_replaces_a_groups_rule_set_whole_from_its_etag_and_a_stale_etag_is_a_409() {
    let app = spawn_app().await;
    let team = app.create_group("team", &[]).await;
    let team_id = str_of(&team, "id");
    app.create_user("alice@example.com").await;
    app.create_user("bob@example.com").await;
    app.create_group("leads", &[]).await;
    let name = group_set(&app, team_id);

    // Never written: empty, with the etag of version 0.
    let empty = get_set(&app, &app.token, &name).await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.body["name"], json!(name));
    assert_eq!(empty.body["grant_rules"], json!([]));
    let first_etag = str_of(&empty.body, "etag").to_string();

    let rules =
        json!([{"role": GROUP_MANAGER, "principals": ["users/alice@example.com", "groups/leads"]}]);
    let written = put_set(&app, &app.token, update(&name, &first_etag, rules)).await;
    assert_eq!(written.status, 200, "{}", written.body);
    assert_eq!(written.body["name"], json!(name));
    assert_eq!(
        written.body["grant_rules"],
        json!([{"role": GROUP_MANAGER, "principals": ["groups/leads", "users/alice@example.com"]}])
    );
    let second_etag = str_of(&written.body, "etag").to_string();
    assert_ne!(second_etag, first_etag);
    // Both hosts read the same, whatever etag is given (a read is always fresh).
    for base in bases(&app) {
        let path = format!("{base}/rule-sets");
        for etag in ["", first_etag.as_str(), second_etag.as_str()] {
            let query = [("name", name.as_str()), ("etag", etag)];
            let reply = call(&app, Some(&app.token), Method::GET, &path, &query, None).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.body, written.body);
        }
    }

    // The old etag again: a conflict, nothing written. Through the proxy, replaced whole.
    let rules = json!([{"role": GROUP_MANAGER, "principals": ["users/bob@example.com"]}]);
    let stale = put_set(&app, &app.token, update(&name, &first_etag, rules.clone())).await;
    databricks_error(&stale, 409, "RESOURCE_CONFLICT");
    assert_eq!(get_set(&app, &app.token, &name).await.body, written.body);
    let path = format!("{}/rule-sets", bases(&app)[1]);
    let body = update(&name, &second_etag, rules);
    let replaced = call(&app, Some(&app.token), Method::PUT, &path, &[], Some(body)).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        replaced.body["grant_rules"],
        json!([{"role": GROUP_MANAGER, "principals": ["users/bob@example.com"]}])
    );

    // A deleted holder is gone from the set, whose version stays.
    let bob_id = app
        .get_with("/Users", &[("filter", "userName eq \"bob@example.com\"")])
        .await
        .resources()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = app.delete(&format!("/Users/{bob_id}")).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(
        get_set(&app, &app.token, &name).await.body["grant_rules"],
        json!([])
    );
    // A deleted group's rule set is gone with it.
    assert_eq!(app.delete(&format!("/Groups/{team_id}")).await.status, 204);
    databricks_error(
        &get_set(&app, &app.token, &name).await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );
}

#[tokio::test]
async fn a_bad_rule_set_update_is_a_databricks_400_and_writes_nothing() {
    let app = spawn_app().await;
    let team = app.create_group("team", &[]).await;
    app.create_user("alice@example.com").await;
    let name = group_set(&app, str_of(&team, "id"));
    let etag = str_of(&get_set(&app, &app.token, &name).await.body, "etag").to_string();
    let alice = json!([{"role": GROUP_MANAGER, "principals": ["users/alice@example.com"]}]);
    let cases = [
        (
            "a role groups do not take",
            update(
                &name,
                &etag,
                json!([{"role": SP_USER, "principals": ["users/alice@example.com"]}]),
            ),
        ),
        (
            "an unknown role",
            update(
                &name,
                &etag,
                json!([{"role": "roles/owner", "principals": []}]),
            ),
        ),
        (
            "no role",
            update(
                &name,
                &etag,
                json!([{"principals": ["users/alice@example.com"]}]),
            ),
        ),
        (
            "an unknown principal",
            update(
                &name,
                &etag,
                json!([{"role": GROUP_MANAGER, "principals": ["users/nobody@example.com"]}]),
            ),
        ),
        (
            "a principal not named by kind",
            update(
                &name,
                &etag,
                json!([{"role": GROUP_MANAGER, "principals": ["alice@example.com"]}]),
            ),
        ),
        (
            "principals not an array",
            update(
                &name,
                &etag,
                json!([{"role": GROUP_MANAGER, "principals": "users/alice@example.com"}]),
            ),
        ),
        (
            "grant_rules not an array",
            update(&name, &etag, json!({"role": GROUP_MANAGER})),
        ),
        (
            "no etag",
            json!({"name": name, "rule_set": {"name": name, "grant_rules": alice}}),
        ),
        (
            "an etag this server never issued",
            update(&name, "not-an-etag", alice.clone()),
        ),
        (
            "no name",
            json!({"rule_set": {"name": name, "etag": etag, "grant_rules": alice}}),
        ),
        ("no rule_set", json!({"name": name})),
        (
            "rule_set of another name",
            json!({"name": name, "rule_set": {"name": account_set(&app), "etag": etag, "grant_rules": alice}}),
        ),
        (
            "a name that is not a rule set",
            update(
                &format!("accounts/{}/groups/1", app.account),
                &etag,
                alice.clone(),
            ),
        ),
        (
            "a budget policy",
            update(
                &format!("accounts/{}/budgetPolicies/1/ruleSets/default", app.account),
                &etag,
                alice.clone(),
            ),
        ),
        ("not an object", json!([name])),
    ];
    for (case, body) in cases {
        let reply = put_set(&app, &app.token, body).await;
        assert_eq!(reply.status, 400, "{case}: {}", reply.body);
        assert_eq!(
            reply.body["error_code"],
            json!("INVALID_PARAMETER_VALUE"),
            "{case}: {}",
            reply.body
        );
    }
    let path = format!("{}/rule-sets", bases(&app)[0]);
    let reply = read(
        app.request(Method::PUT, &path)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    databricks_error(&reply, 400, "MALFORMED_REQUEST");
    for (case, query) in [
        ("no name", vec![]),
        (
            "a garbage etag",
            vec![("name", name.as_str()), ("etag", "%%%")],
        ),
    ] {
        let reply = call(&app, Some(&app.token), Method::GET, &path, &query, None).await;
        assert_eq!(reply.status, 400, "{case}: {}", reply.body);
    }
    // Nothing was written: still the etag of a set never written.
    let after = get_set(&app, &app.token, &name).await;
    assert_eq!(str_of(&after.body, "etag"), etag);
    assert_eq!(after.body["grant_rules"], json!([]));
    // Unknown and foreign sets: not found.
    for missing in [
        group_set(&app, "404404"),
        "accounts/another/groups/1/ruleSets/default".into(),
    ] {
        databricks_error(
            &get_set(&app, &app.token, &missing).await,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        );
        let reply = put_set(&app, &app.token, update(&missing, &etag, alice.clone())).await;
        databricks_error(&reply, 404, "RESOURCE_DOES_NOT_EXIST");
    }
}

#[tokio::test]
async fn service_principal_and_account_rule_sets_name_principals_as_databricks_does() {
    let app = spawn_app().await;
    let sp = app.create_service_principal("ci").await;
    let application_id = str_of(&sp, "applicationId").to_string();
    let other = app.create_service_principal("deployer").await;
    let other_application_id = str_of(&other, "applicationId").to_string();
    app.create_user("alice@example.com").await;
    app.create_group("ops", &[]).await;
    let name = sp_set(&app, &application_id);
    let body = grant(
        &app,
        &name,
        json!([
            {"role": SP_USER, "principals": ["groups/ops", format!("servicePrincipals/{other_application_id}")]},
            {"role": SP_MANAGER, "principals": ["users/alice@example.com"]},
            {"role": SP_USER, "principals": ["groups/ops"]},
        ]),
    )
    .await;
    assert_eq!(body["name"], json!(name));
    assert_eq!(
        body["grant_rules"],
        json!([
            {"role": SP_MANAGER, "principals": ["users/alice@example.com"]},
            {"role": SP_USER, "principals": ["groups/ops", format!("servicePrincipals/{other_application_id}")]},
        ])
    );
    // Named by its SCIM id, it is the same set, under its application id's name.
    let by_id = get_set(&app, &app.token, &sp_set(&app, str_of(&sp, "id"))).await;
    assert_eq!(by_id.body, body);

    let account = grant(
        &app,
        &account_set(&app),
        json!([{"role": "roles/billing.admin", "principals": ["users/alice@example.com"]}]),
    )
    .await;
    assert_eq!(account["name"], json!(account_set(&app)));
    assert_eq!(
        account["grant_rules"][0]["principals"],
        json!(["users/alice@example.com"])
    );
}

#[tokio::test]
async fn rule_sets_need_a_credential_of_the_account_and_an_admin_or_the_manager() {
    let (app, url) = spawn_app_with_url().await;
    let (foreign_account, foreign_token) = second_account(&app, &url).await;
    let team = app.create_group("team", &[]).await;
    let other = app.create_group("other", &[]).await;
    let bob = app.create_user("bob@example.com").await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;
    let carol = app.create_user("carol@example.com").await;
    let carol_token = app.token_for(str_of(&carol, "id")).await;
    let name = group_set(&app, str_of(&team, "id"));
    let written = grant(
        &app,
        &name,
        json!([{"role": GROUP_MANAGER, "principals": ["users/bob@example.com"]}]),
    )
    .await;
    let etag = str_of(&written, "etag").to_string();
    let carol_manages = update(
        &name,
        &etag,
        json!([{"role": GROUP_MANAGER, "principals": ["users/carol@example.com"]}]),
    );

    for base in bases(&app) {
        let path = format!("{base}/rule-sets");
        let query = [("name", name.as_str())];
        // No credential, or one that is not a token: 401.
        for token in [None, Some("dapi-nothing")] {
            let reply = call(&app, token, Method::GET, &path, &query, None).await;
            databricks_error(&reply, 401, "UNAUTHENTICATED");
            let reply = call(
                &app,
                token,
                Method::PUT,
                &path,
                &[],
                Some(carol_manages.clone()),
            )
            .await;
            databricks_error(&reply, 401, "UNAUTHENTICATED");
        }
        // Another account's admin: refused, whatever it names.
        let reply = call(&app, Some(&foreign_token), Method::GET, &path, &query, None).await;
        refused_as_foreign(&app, &reply);
        let reply = call(
            &app,
            Some(&foreign_token),
            Method::PUT,
            &path,
            &[],
            Some(carol_manages.clone()),
        )
        .await;
        refused_as_foreign(&app, &reply);
        // A principal of the account who manages nothing: 403.
        let reply = call(&app, Some(&carol_token), Method::GET, &path, &query, None).await;
        databricks_error(&reply, 403, "PERMISSION_DENIED");
        let reply = call(
            &app,
            Some(&carol_token),
            Method::PUT,
            &path,
            &[],
            Some(carol_manages.clone()),
        )
        .await;
        databricks_error(&reply, 403, "PERMISSION_DENIED");
    }
    // The foreign admin, on its own account's host, finds nothing of this account.
    let path = format!("/api/2.0/preview/accounts/{foreign_account}/access-control/rule-sets");
    let reply = call(
        &app,
        Some(&foreign_token),
        Method::GET,
        &path,
        &[("name", &name)],
        None,
    )
    .await;
    databricks_error(&reply, 404, "RESOURCE_DOES_NOT_EXIST");
    assert!(!reply.body.to_string().contains("bob"), "{}", reply.body);
    // Nothing was written.
    assert_eq!(get_set(&app, &app.token, &name).await.body, written);

    // The manager reads and updates the set it manages, and no other.
    let reply = get_set(&app, &bob_token, &name).await;
    assert_eq!(reply.body, written);
    databricks_error(
        &get_set(&app, &bob_token, &group_set(&app, str_of(&other, "id"))).await,
        403,
        "PERMISSION_DENIED",
    );
    databricks_error(
        &get_set(&app, &bob_token, &account_set(&app)).await,
        403,
        "PERMISSION_DENIED",
    );
    let both = update(
        &name,
        &etag,
        json!([{"role": GROUP_MANAGER, "principals": ["users/bob@example.com", "users/carol@example.com"]}]),
    );
    let reply = put_set(&app, &bob_token, both).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Carol now manages it too: she reads it.
    assert_eq!(get_set(&app, &carol_token, &name).await.status, 200);
}

// ----- the manager roles, enforced on SCIM writes --------------------------------------------

async fn scim_as(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Reply {
    read(
        app.client
            .request(method, app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

#[tokio::test]
async fn a_group_manager_changes_the_groups_members_and_name_but_nothing_else() {
    let app = spawn_app().await;
    let team = app.create_group("team", &[]).await;
    let team_id = str_of(&team, "id").to_string();
    let other = app.create_group("other", &[]).await;
    let bob = app.create_user("bob@example.com").await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;
    let carol = app.create_user("carol@example.com").await;
    let carol_id = str_of(&carol, "id").to_string();
    let group_path = format!("/Groups/{team_id}");

    // Not yet a manager: 403, as any non-admin.
    let add_carol =
        patch_op(json!([{"op": "add", "path": "members", "value": [{"value": carol_id}]}]));
    let reply = scim_as(
        &app,
        &bob_token,
        Method::PATCH,
        &group_path,
        add_carol.clone(),
    )
    .await;
    reply.assert_error(403, None);

    grant(
        &app,
        &group_set(&app, &team_id),
        json!([{"role": GROUP_MANAGER, "principals": ["users/bob@example.com"]}]),
    )
    .await;
    let reply = scim_as(&app, &bob_token, Method::PATCH, &group_path, add_carol).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.member_ids(&team_id).await, vec![carol_id.clone()]);
    assert_eq!(
        member_ids_of(&reply.body),
        vec![carol_id.clone()],
        "the manager sees the members"
    );
    let rename =
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "team-renamed"}]));
    let reply = scim_as(&app, &bob_token, Method::PATCH, &group_path, rename).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["displayName"], json!("team-renamed"));
    // Through the Databricks workspace path too, and by PUT.
    let reply = read(
        app.client
            .put(format!(
                "{}/api/2.0/preview/scim/v2{group_path}",
                app.address
            ))
            .bearer_auth(&bob_token)
            .json(&json!({"schemas": [GROUP_SCHEMA], "displayName": "team", "members": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(app.member_ids(&team_id).await.is_empty());

    // Not what only admins change, not another group, not a deletion: 403, nothing written.
    let before = app.get(&group_path).await.body;
    for body in [
        patch_op(
            json!([{"op": "add", "path": "entitlements", "value": [{"value": "allow-cluster-create"}]}]),
        ),
        patch_op(json!([{"op": "replace", "path": "externalId", "value": "x"}])),
        patch_op(
            json!([{"op": "replace", "path": "displayName", "value": "renamed"}, {"op": "add", "path": "entitlements", "value": [{"value": "workspace-access"}]}]),
        ),
    ] {
        let reply = scim_as(&app, &bob_token, Method::PATCH, &group_path, body).await;
        reply.assert_error(403, None);
    }
    let reply = scim_as(
        &app,
        &bob_token,
        Method::PUT,
        &group_path,
        json!({"schemas": [GROUP_SCHEMA], "displayName": "team", "externalId": "x"}),
    )
    .await;
    reply.assert_error(403, None);
    assert_eq!(app.get(&group_path).await.body, before);
    let reply = scim_as(
        &app,
        &bob_token,
        Method::PATCH,
        &format!("/Groups/{}", str_of(&other, "id")),
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "mine"}])),
    )
    .await;
    reply.assert_error(403, None);
    let reply = read(
        app.client
            .delete(app.url(&group_path))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(403, None);
    let reply = scim_as(
        &app,
        &bob_token,
        Method::PATCH,
        &format!("/Users/{carol_id}"),
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "C"}])),
    )
    .await;
    reply.assert_error(403, None);

    // The role taken away: refused at the next write.
    grant(&app, &group_set(&app, &team_id), json!([])).await;
    let reply = scim_as(
        &app,
        &bob_token,
        Method::PATCH,
        &group_path,
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "again"}])),
    )
    .await;
    reply.assert_error(403, None);
}

#[tokio::test]
async fn the_manager_role_held_by_a_group_passes_to_its_members_but_never_over_the_builtin_groups()
{
    let app = spawn_app().await;
    let team = app.create_group("team", &[]).await;
    let team_id = str_of(&team, "id").to_string();
    let dave = app.create_user("dave@example.com").await;
    let dave_id = str_of(&dave, "id").to_string();
    let dave_token = app.token_for(&dave_id).await;
    let inner = app.create_group("inner", &[&dave_id]).await;
    app.create_group("leads", &[str_of(&inner, "id")]).await;
    grant(
        &app,
        &group_set(&app, &team_id),
        json!([{"role": GROUP_MANAGER, "principals": ["groups/leads"]}]),
    )
    .await;
    let rename = patch_op(json!([{"op": "replace", "path": "displayName", "value": "team2"}]));
    let reply = scim_as(
        &app,
        &dave_token,
        Method::PATCH,
        &format!("/Groups/{team_id}"),
        rename,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A manager role on `admins` is stored but gives nothing: managing it would make admins.
    let admins_id = app.system_group_id("admins").await;
    grant(
        &app,
        &group_set(&app, &admins_id),
        json!([{"role": GROUP_MANAGER, "principals": ["users/dave@example.com"]}]),
    )
    .await;
    let add_self =
        patch_op(json!([{"op": "add", "path": "members", "value": [{"value": dave_id}]}]));
    let reply = scim_as(
        &app,
        &dave_token,
        Method::PATCH,
        &format!("/Groups/{admins_id}"),
        add_self,
    )
    .await;
    reply.assert_error(403, None);
    assert!(!app.member_ids(&admins_id).await.contains(&dave_id));
    databricks_error(
        &get_set(&app, &dave_token, &group_set(&app, &admins_id)).await,
        403,
        "PERMISSION_DENIED",
    );

    // Deactivated, the manager's token no longer works at all.
    let reply = app
        .patch_ops(
            &format!("/Users/{dave_id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = scim_as(
        &app,
        &dave_token,
        Method::PATCH,
        &format!("/Groups/{team_id}"),
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "team3"}])),
    )
    .await;
    reply.assert_error(401, None);
}

#[tokio::test]
async fn a_service_principal_manager_updates_it_and_a_user_of_it_does_not() {
    let app = spawn_app().await;
    let sp = app.create_service_principal("ci").await;
    let sp_id = str_of(&sp, "id").to_string();
    let application_id = str_of(&sp, "applicationId").to_string();
    let erin = app.create_user("erin@example.com").await;
    let erin_token = app.token_for(str_of(&erin, "id")).await;
    let frank = app.create_user("frank@example.com").await;
    let frank_token = app.token_for(str_of(&frank, "id")).await;
    grant(
        &app,
        &sp_set(&app, &application_id),
        json!([
            {"role": SP_MANAGER, "principals": ["users/erin@example.com"]},
            {"role": SP_USER, "principals": ["users/frank@example.com"]},
        ]),
    )
    .await;
    let path = format!("/ServicePrincipals/{sp_id}");
    let rename = patch_op(json!([{"op": "replace", "path": "displayName", "value": "ci-2"}]));
    let reply = scim_as(&app, &frank_token, Method::PATCH, &path, rename.clone()).await;
    reply.assert_error(403, None);
    let reply = scim_as(&app, &erin_token, Method::PATCH, &path, rename).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["displayName"], json!("ci-2"));
    let deactivate = patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    let reply = scim_as(&app, &erin_token, Method::PATCH, &path, deactivate).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["active"], json!(false));
    let entitle = patch_op(
        json!([{"op": "add", "path": "entitlements", "value": [{"value": "allow-cluster-create"}]}]),
    );
    let reply = scim_as(&app, &erin_token, Method::PATCH, &path, entitle).await;
    reply.assert_error(403, None);
    assert_eq!(app.get(&path).await.body.get("entitlements"), None);
    // The manager reads and writes the service principal's rule set; its user does not.
    assert_eq!(
        get_set(&app, &erin_token, &sp_set(&app, &application_id))
            .await
            .status,
        200
    );
    databricks_error(
        &get_set(&app, &frank_token, &sp_set(&app, &application_id)).await,
        403,
        "PERMISSION_DENIED",
    );
}

/// A request to a path from the root with `token` and an optional body.
async fn call_with(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    call(app, Some(token), method, path, &[], body).await
}

#[tokio::test]
async fn a_manager_in_a_workspace_reaches_what_it_manages_there_and_never_an_account_admin() {
    let app = spawn_app().await;
    let accounts = format!("/api/2.0/accounts/{}", app.account);
    let created = call_with(
        &app,
        &app.token,
        Method::POST,
        &format!("{accounts}/workspaces"),
        Some(json!({"workspace_name": "B"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let workspace = created.body["workspace_id"].as_i64().unwrap().to_string();
    let account_scim = |path: &str| format!("{accounts}/scim/v2{path}");
    let made = call_with(
        &app,
        &app.token,
        Method::POST,
        &account_scim("/Users"),
        Some(json!({"userName": "mgr@example.com"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let manager = made.id();
    let manager_token = app.token_for(&manager).await;
    let mut groups = Vec::new();
    for name in ["elsewhere", "here"] {
        let made = call_with(
            &app,
            &app.token,
            Method::POST,
            &account_scim("/Groups"),
            Some(json!({"displayName": name})),
        )
        .await;
        assert_eq!(made.status, 201, "{}", made.body);
        let id = made.id();
        grant(
            &app,
            &group_set(&app, &id),
            json!([{"role": GROUP_MANAGER, "principals": ["users/mgr@example.com"]}]),
        )
        .await;
        groups.push(id);
    }
    let (elsewhere, here) = (groups[0].clone(), groups[1].clone());
    for principal in [&manager, &here] {
        let assigned = call_with(
            &app,
            &app.token,
            Method::PUT,
            &format!(
                "{accounts}/workspaces/{workspace}/permissionassignments/principals/{principal}"
            ),
            Some(json!({"permissions": ["USER"]})),
        )
        .await;
        assert_eq!(assigned.status, 200, "{}", assigned.body);
    }
    let rename =
        |name: &str| patch_op(json!([{"op": "replace", "path": "displayName", "value": name}]));
    let in_workspace = |id: &str| format!("/w/{workspace}/scim/v2/Groups/{id}");

    // In workspace B: the group B holds, and not the one it does not (not found, as for B's
    // admins); through the account API, both.
    let reply = call_with(
        &app,
        &manager_token,
        Method::PATCH,
        &in_workspace(&here),
        Some(rename("here-2")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = call_with(
        &app,
        &manager_token,
        Method::PATCH,
        &in_workspace(&elsewhere),
        Some(rename("x")),
    )
    .await;
    reply.assert_error(404, None);
    let reply = call_with(
        &app,
        &manager_token,
        Method::PATCH,
        &account_scim(&format!("/Groups/{elsewhere}")),
        Some(rename("elsewhere-2")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A service principal that is an account admin is the account admins' alone.
    let sp = app.create_service_principal("root-ci").await;
    let sp_id = str_of(&sp, "id").to_string();
    let admins = app.system_group_id("admins").await;
    let reply = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "add", "path": "members", "value": [{"value": sp_id}]}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    grant(
        &app,
        &sp_set(&app, str_of(&sp, "applicationId")),
        json!([{"role": SP_MANAGER, "principals": ["users/mgr@example.com"]}]),
    )
    .await;
    let reply = call_with(
        &app,
        &manager_token,
        Method::PATCH,
        &account_scim(&format!("/ServicePrincipals/{sp_id}")),
        Some(patch_op(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
    )
    .await;
    reply.assert_error(403, None);
    assert_eq!(
        app.get(&format!("/ServicePrincipals/{sp_id}")).await.body["active"],
        json!(true)
    );
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
