//! OAuth machine-to-machine access for service principals, as the Databricks SDK's
//! `service_principal_secrets` and `auth_type="oauth-m2m"` use it: secrets and who may manage
//! them, the client-credentials grant at the workspace's and the account's token endpoints,
//! where the minted tokens work, the RFC 6749 errors, hostile JWTs, signing-key rotation, and
//! that deleting a secret or deactivating its principal stops its tokens on every node.

use crate::multi_node::{change_token, node_on};
use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::Method;
use scimitar_domain::clock::ManualClock;
use scimitar_domain::{Clock, SystemClock};
use serde_json::{json, Value};
use std::sync::Arc;

const WORKSPACE_TOKEN: &str = "/oidc/v1/token";

fn account_token_path(app: &TestApp) -> String {
    format!("/oidc/accounts/{}/v1/token", app.account)
}

fn account_secrets(app: &TestApp, sp_id: &str) -> String {
    format!(
        "/api/2.0/accounts/{}/servicePrincipals/{sp_id}/credentials/secrets",
        app.account
    )
}

fn proxy_secrets(sp_id: &str) -> String {
    format!("/api/2.0/accounts/servicePrincipals/{sp_id}/credentials/secrets")
}

/// A service principal of the default workspace: `(id, applicationId)`.
async fn service_principal(app: &TestApp, name: &str) -> (String, String) {
    let sp = app.create_service_principal(name).await;
    (
        str_of(&sp, "id").to_string(),
        str_of(&sp, "applicationId").to_string(),
    )
}

/// A secret made by the admin through the account API: `(secret, secret id)`.
async fn new_secret(app: &TestApp, sp_id: &str) -> (String, String) {
    let reply = call(
        app,
        Method::POST,
        &account_secrets(app, sp_id),
        Some(&app.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    (
        str_of(&reply.body, "secret").to_string(),
        str_of(&reply.body, "id").to_string(),
    )
}

/// A client-credentials request with HTTP Basic, as the SDK sends it.
async fn mint_on(address: &str, path: &str, client_id: &str, secret: &str) -> Reply {
    let request = reqwest::Client::new()
        .post(format!("{address}{path}"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")]);
    read(request.send().await.expect("sent")).await
}

async fn mint(app: &TestApp, path: &str, client_id: &str, secret: &str) -> Reply {
    mint_on(&app.address, path, client_id, secret).await
}

fn access_token(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    str_of(&reply.body, "access_token").to_string()
}

/// An RFC 6749 section 5.2 error, and nothing of Databricks' or SCIM's shapes.
fn oauth_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"], code, "{}", reply.body);
    assert!(reply.body.get("error_code").is_none(), "{}", reply.body);
    assert!(reply.body.get("schemas").is_none(), "{}", reply.body);
    if status == 401 {
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|value| value.starts_with("Basic")),
            "{:?}",
            reply.headers
        );
    }
}

async fn workspace_me(app: &TestApp, token: &str) -> Reply {
    call(
        app,
        Method::GET,
        "/api/2.0/preview/scim/v2/Me",
        Some(token),
        None,
    )
    .await
}

async fn account_me(app: &TestApp, token: &str) -> Reply {
    let path = format!("/api/2.0/accounts/{}/scim/v2/Me", app.account);
    call(app, Method::GET, &path, Some(token), None).await
}

async fn second_workspace(app: &TestApp) -> String {
    let reply = call(
        app,
        Method::POST,
        &format!("/api/2.0/accounts/{}/workspaces", app.account),
        Some(&app.token),
        Some(json!({"workspace_name": "second"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["workspace_id"].as_i64().unwrap().to_string()
}

async fn set_active(app: &TestApp, sp_id: &str, active: bool) -> Reply {
    let reply = app
        .patch_ops(
            &format!("/ServicePrincipals/{sp_id}"),
            json!([{"op": "replace", "path": "active", "value": active}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
}

fn claims_of(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn header_of(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[tokio::test]
async fn a_service_principal_mints_tokens_that_work_where_they_were_minted_and_nowhere_else() {
    let app = spawn_app().await;
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    let created = call(
        &app,
        Method::POST,
        &account_secrets(&app, &sp_id),
        Some(&app.token),
        Some(json!({"lifetime": "3600s"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let secret = str_of(&created.body, "secret").to_string();
    assert!(secret.starts_with("dose"), "{secret}");
    for field in [
        "id",
        "secret_hash",
        "create_time",
        "update_time",
        "expire_time",
    ] {
        assert!(created.body[field].is_string(), "{field}: {}", created.body);
    }
    assert_eq!(created.body["status"], "ACTIVE");
    let created_at =
        scimitar_domain::Timestamp::parse_rfc3339(str_of(&created.body, "create_time"));
    let expires_at =
        scimitar_domain::Timestamp::parse_rfc3339(str_of(&created.body, "expire_time"));
    assert_eq!(
        expires_at.unwrap().as_micros() - created_at.unwrap().as_micros(),
        3_600_000_000
    );
    // Listed, through the account API and the workspace proxy, without the secret.
    for path in [account_secrets(&app, &sp_id), proxy_secrets(&sp_id)] {
        let listed = call(&app, Method::GET, &path, Some(&app.token), None).await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        let secrets = listed.body["secrets"].as_array().unwrap();
        assert_eq!(secrets.len(), 1, "{}", listed.body);
        assert_eq!(secrets[0]["id"], created.body["id"]);
        assert!(secrets[0].get("secret").is_none());
        assert!(!listed.body.to_string().contains(&secret));
    }

    // The workspace's token endpoint, with Basic, as the SDK calls it.
    let minted = mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await;
    assert_eq!(minted.body["token_type"], "Bearer");
    assert_eq!(minted.body["expires_in"], 3600);
    assert_eq!(minted.body["scope"], "all-apis");
    assert_eq!(minted.header("cache-control"), Some("no-store"));
    let workspace_token = access_token(&minted);
    let header = header_of(&workspace_token);
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string());
    let claims = claims_of(&workspace_token);
    assert_eq!(claims["sub"], sp_id.as_str());
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["account_id"], app.account.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["iss"].as_str().unwrap().ends_with("/oidc"));
    let me = workspace_me(&app, &workspace_token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["id"], sp_id.as_str());
    // Not on the account API: a workspace's token works in its workspace alone.
    assert_eq!(account_me(&app, &workspace_token).await.status, 401);

    // The account's token endpoint, with the credentials in the form.
    let form = reqwest::Client::new()
        .post(format!("{}{}", app.address, account_token_path(&app)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ]);
    let account_minted = read(form.send().await.unwrap()).await;
    let account_token = access_token(&account_minted);
    assert!(claims_of(&account_token).get("workspace_id").is_none());
    let me = account_me(&app, &account_token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    // Databricks' account-level OAuth tokens are for the account APIs: not a workspace's.
    assert_eq!(workspace_me(&app, &account_token).await.status, 401);

    // A second workspace: its endpoint refuses the principal until it is assigned there, and
    // its tokens work there and not in the default workspace.
    let second = second_workspace(&app).await;
    let second_token_path = format!("/w/{second}{WORKSPACE_TOKEN}");
    oauth_error(
        &mint(&app, &second_token_path, &client_id, &secret).await,
        401,
        "invalid_client",
    );
    let assigned = call(
        &app,
        Method::PUT,
        &format!(
            "/api/2.0/accounts/{}/workspaces/{second}/permissionassignments/principals/{sp_id}",
            app.account
        ),
        Some(&app.token),
        Some(json!({"permissions": ["USER"]})),
    )
    .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    let second_token = access_token(&mint(&app, &second_token_path, &client_id, &secret).await);
    assert_eq!(claims_of(&second_token)["workspace_id"], second.as_str());
    let there = call(
        &app,
        Method::GET,
        &format!("/w/{second}/api/2.0/preview/scim/v2/Me"),
        Some(&second_token),
        None,
    )
    .await;
    assert_eq!(there.status, 200, "{}", there.body);
    assert_eq!(workspace_me(&app, &second_token).await.status, 401);
}

#[tokio::test]
async fn discovery_documents_the_jwks_and_databricks_config_lead_a_client_to_the_token_endpoints() {
    let app = spawn_app().await;
    let config = call(
        &app,
        Method::GET,
        "/.well-known/databricks-config",
        None,
        None,
    )
    .await;
    assert_eq!(config.status, 200);
    assert_eq!(
        config.body["oidc_endpoint"],
        format!("{}/oidc", app.address).as_str()
    );
    let workspace = str_of(&config.body, "workspace_id").to_string();
    let prefixed = call(
        &app,
        Method::GET,
        &format!("/w/{workspace}/.well-known/databricks-config"),
        None,
        None,
    )
    .await;
    assert_eq!(
        prefixed.body["oidc_endpoint"],
        format!("{}/w/{workspace}/oidc", app.address).as_str()
    );
    let account_oidc = format!("/oidc/accounts/{}", app.account);
    for (base, documents) in [
        (
            "/oidc".to_string(),
            ["oauth-authorization-server", "openid-configuration"],
        ),
        (
            account_oidc.clone(),
            ["oauth-authorization-server", "openid-configuration"],
        ),
    ] {
        for document in documents {
            let reply = call(
                &app,
                Method::GET,
                &format!("{base}/.well-known/{document}"),
                None,
                None,
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let issuer = format!("{}{base}", app.address);
            assert_eq!(reply.body["issuer"], issuer.as_str());
            assert_eq!(
                reply.body["token_endpoint"],
                format!("{issuer}/v1/token").as_str()
            );
            assert_eq!(reply.body["jwks_uri"], format!("{issuer}/v1/keys").as_str());
            assert!(reply.body["authorization_endpoint"].is_string());
            assert_eq!(
                reply.body["grant_types_supported"],
                json!([
                    "client_credentials",
                    "urn:ietf:params:oauth:grant-type:token-exchange"
                ])
            );
            assert_eq!(
                reply.body["token_endpoint_auth_methods_supported"],
                json!(["client_secret_basic", "client_secret_post"])
            );
        }
    }
    // An unknown account has no authorization server.
    let missing = call(
        &app,
        Method::GET,
        "/oidc/accounts/nope/.well-known/oauth-authorization-server",
        None,
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    // The JWKS holds public keys only, the one that signed a token among them.
    let (sp_id, client_id) = service_principal(&app, "keys").await;
    let (secret, _) = new_secret(&app, &sp_id).await;
    let token = access_token(&mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await);
    let kid = header_of(&token)["kid"].clone();
    for path in [
        "/oidc/v1/keys".to_string(),
        format!("{account_oidc}/v1/keys"),
    ] {
        let jwks = call(&app, Method::GET, &path, None, None).await;
        assert_eq!(jwks.status, 200, "{}", jwks.body);
        let keys = jwks.body["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{}", jwks.body);
        assert_eq!(keys[0]["kid"], kid);
        assert_eq!(keys[0]["kty"], "OKP");
        assert_eq!(keys[0]["crv"], "Ed25519");
        assert_eq!(keys[0]["alg"], "EdDSA");
        assert!(keys[0].get("d").is_none(), "no private part: {}", jwks.body);
    }
}

#[tokio::test]
async fn the_token_endpoints_refuse_bad_clients_and_requests_with_rfc_6749_errors() {
    let app = spawn_app().await;
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    let (secret, secret_id) = new_secret(&app, &sp_id).await;
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let second = second_workspace(&app).await;
    let account_path = account_token_path(&app);
    let foreign_path = format!("/oidc/accounts/{}/v1/token", foreign.account.id);
    for path in [WORKSPACE_TOKEN.to_string(), account_path.clone()] {
        // Missing, wrong, unknown, and the right secret at another account's endpoint or a
        // workspace the principal is not assigned to: all the same invalid_client.
        let bare = reqwest::Client::new()
            .post(format!("{}{path}", app.address))
            .form(&[("grant_type", "client_credentials")]);
        oauth_error(
            &read(bare.send().await.unwrap()).await,
            401,
            "invalid_client",
        );
        let wrong = format!("{secret}x");
        for (id, given) in [
            (client_id.as_str(), wrong.as_str()),
            ("00000000-0000-0000-0000-000000000000", secret.as_str()),
            (sp_id.as_str(), secret.as_str()),
        ] {
            oauth_error(&mint(&app, &path, id, given).await, 401, "invalid_client");
        }
        // Bad requests, with good credentials.
        let send = |form: Vec<(&'static str, String)>| {
            let request = reqwest::Client::new()
                .post(format!("{}{path}", app.address))
                .basic_auth(&client_id, Some(&secret))
                .form(&form);
            async move { read(request.send().await.unwrap()).await }
        };
        oauth_error(&send(vec![]).await, 400, "invalid_request");
        oauth_error(
            &send(vec![("grant_type", "password".into())]).await,
            400,
            "unsupported_grant_type",
        );
        for scope in ["sql", "all-apis scim", "nonsense"] {
            let form = vec![
                ("grant_type", "client_credentials".to_string()),
                ("scope", scope.to_string()),
            ];
            oauth_error(&send(form).await, 400, "invalid_scope");
        }
        let twice = reqwest::Client::new()
            .post(format!("{}{path}", app.address))
            .basic_auth(&client_id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&grant_type=client_credentials");
        oauth_error(
            &read(twice.send().await.unwrap()).await,
            400,
            "invalid_request",
        );
        let both = reqwest::Client::new()
            .post(format!("{}{path}", app.address))
            .basic_auth(&client_id, Some(&secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_secret", secret.as_str()),
            ]);
        oauth_error(
            &read(both.send().await.unwrap()).await,
            400,
            "invalid_request",
        );
        let as_json = reqwest::Client::new()
            .post(format!("{}{path}", app.address))
            .basic_auth(&client_id, Some(&secret))
            .json(&json!({"grant_type": "client_credentials"}));
        oauth_error(
            &read(as_json.send().await.unwrap()).await,
            400,
            "invalid_request",
        );
        // offline_access is accepted, and no refresh token is granted.
        let offline = send(vec![
            ("grant_type", "client_credentials".into()),
            ("scope", "all-apis offline_access".into()),
        ])
        .await;
        assert_eq!(offline.status, 200, "{}", offline.body);
        assert!(offline.body.get("refresh_token").is_none());
    }
    oauth_error(
        &mint(&app, &foreign_path, &client_id, &secret).await,
        401,
        "invalid_client",
    );
    oauth_error(
        &mint(&app, "/oidc/accounts/nope/v1/token", &client_id, &secret).await,
        401,
        "invalid_client",
    );
    let second_path = format!("/w/{second}{WORKSPACE_TOKEN}");
    oauth_error(
        &mint(&app, &second_path, &client_id, &secret).await,
        401,
        "invalid_client",
    );
    // A deactivated principal, then a deleted secret.
    assert_eq!(
        mint(&app, WORKSPACE_TOKEN, &client_id, &secret)
            .await
            .status,
        200
    );
    set_active(&app, &sp_id, false).await;
    oauth_error(
        &mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await,
        401,
        "invalid_client",
    );
    set_active(&app, &sp_id, true).await;
    // Deactivation deleted its secrets for good: reactivating brings none back.
    oauth_error(
        &mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await,
        401,
        "invalid_client",
    );
    let listed = call(
        &app,
        Method::GET,
        &account_secrets(&app, &sp_id),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(listed.body["secrets"], json!([]), "{secret_id}");
    let (fresh, fresh_id) = new_secret(&app, &sp_id).await;
    assert_eq!(
        mint(&app, &account_path, &client_id, &fresh).await.status,
        200
    );
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("{}/{fresh_id}", account_secrets(&app, &sp_id)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    oauth_error(
        &mint(&app, &account_path, &client_id, &fresh).await,
        401,
        "invalid_client",
    );
    // GET on a token endpoint is not a token request, and is told so in RFC 6749's shape.
    for path in [WORKSPACE_TOKEN.to_string(), account_path] {
        let get = call(&app, Method::GET, &path, None, None).await;
        assert_eq!(get.status, 405, "{}", get.body);
        assert_eq!(get.body["error"], "invalid_request", "{}", get.body);
        assert_eq!(get.header("allow"), Some("POST"));
    }
}

#[tokio::test]
async fn secrets_are_capped_at_five_and_managed_by_admins_and_managers_only() {
    let app = spawn_app().await;
    let (sp_id, application_id) = service_principal(&app, "ci").await;
    for _ in 0..5 {
        new_secret(&app, &sp_id).await;
    }
    let sixth = call(
        &app,
        Method::POST,
        &account_secrets(&app, &sp_id),
        Some(&app.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(sixth.status, 409, "{}", sixth.body);
    assert!(sixth.body["error_code"].is_string(), "{}", sixth.body);
    // Bad bodies change nothing.
    for (index, body) in [
        json!({"lifetime": "forever"}),
        json!({"lifetime": "0s"}),
        json!({"lifetime": "63072001s"}),
        json!({"lifetime_seconds": 60}),
        json!({"scopes": ["everything"]}),
    ]
    .into_iter()
    .enumerate()
    {
        let other = service_principal(&app, &format!("bad-{index}")).await;
        let reply = call(
            &app,
            Method::POST,
            &account_secrets(&app, &other.0),
            Some(&app.token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let listed = call(
            &app,
            Method::GET,
            &account_secrets(&app, &other.0),
            Some(&app.token),
            None,
        )
        .await;
        assert_eq!(listed.body["secrets"], json!([]));
    }
    // A user who is no admin: refused on both paths, for listing, making and deleting.
    let user = app.create_user("mallory@example.com").await;
    let user_id = str_of(&user, "id").to_string();
    let user_token = app.token_for(&user_id).await;
    for path in [account_secrets(&app, &sp_id), proxy_secrets(&sp_id)] {
        let listed = call(&app, Method::GET, &path, Some(&user_token), None).await;
        assert_eq!(listed.status, 403, "{}", listed.body);
        let made = call(
            &app,
            Method::POST,
            &path,
            Some(&user_token),
            Some(json!({})),
        )
        .await;
        assert_eq!(made.status, 403, "{}", made.body);
        let gone = call(
            &app,
            Method::DELETE,
            &format!("{path}/x"),
            Some(&user_token),
            None,
        )
        .await;
        assert_eq!(gone.status, 403, "{}", gone.body);
    }
    // Made a manager of the principal (roles/servicePrincipal.manager), the user may.
    let name = format!(
        "accounts/{}/servicePrincipals/{application_id}/ruleSets/default",
        app.account
    );
    let base = format!(
        "/api/2.0/preview/accounts/{}/access-control/rule-sets",
        app.account
    );
    let current = read(
        app.client
            .get(format!("{}{base}", app.address))
            .bearer_auth(&app.token)
            .query(&[("name", name.as_str()), ("etag", "")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(current.status, 200, "{}", current.body);
    let etag = str_of(&current.body, "etag").to_string();
    let rules = json!([{"role": "roles/servicePrincipal.manager",
                         "principals": ["users/mallory@example.com"]}]);
    let put = call(
        &app,
        Method::PUT,
        &base,
        Some(&app.token),
        Some(json!({"name": name, "rule_set": {"name": name, "etag": etag, "grant_rules": rules}})),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let listed = call(
        &app,
        Method::GET,
        &account_secrets(&app, &sp_id),
        Some(&user_token),
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["secrets"].as_array().unwrap().len(), 5);
    let first = str_of(&listed.body["secrets"][0], "id").to_string();
    let gone = call(
        &app,
        Method::DELETE,
        &format!("{}/{first}", account_secrets(&app, &sp_id)),
        Some(&user_token),
        None,
    )
    .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    // A service principal that is an account admin: its secrets are the account admins' alone.
    let (admin_sp, _) = service_principal(&app, "admin-sp").await;
    let admins = app.system_group_id("admins").await;
    let joined = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "add", "path": "members", "value": [{"value": admin_sp}]}]),
        )
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    // Unknown and non-service-principal ids are not found.
    for id in ["12345", user_id.as_str()] {
        let reply = call(
            &app,
            Method::GET,
            &account_secrets(&app, id),
            Some(&app.token),
            None,
        )
        .await;
        assert_eq!(reply.status, 404, "{}", reply.body);
    }
    // A workspace admin of a second workspace: its principals only, through the proxy.
    let second = second_workspace(&app).await;
    let (other_sp, _) = {
        let reply = call(
            &app,
            Method::POST,
            &format!("/w/{second}/api/2.0/preview/scim/v2/ServicePrincipals"),
            Some(&app.token),
            Some(json!({"schemas": [SERVICE_PRINCIPAL_SCHEMA], "displayName": "theirs"})),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        (str_of(&reply.body, "id").to_string(), ())
    };
    let assigned = call(
        &app,
        Method::PUT,
        &format!(
            "/api/2.0/accounts/{}/workspaces/{second}/permissionassignments/principals/{user_id}",
            app.account
        ),
        Some(&app.token),
        Some(json!({"permissions": ["ADMIN"]})),
    )
    .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    let in_second = |path: String| format!("/w/{second}{path}");
    let theirs = call(
        &app,
        Method::POST,
        &in_second(proxy_secrets(&other_sp)),
        Some(&user_token),
        Some(json!({})),
    )
    .await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    let not_there = call(
        &app,
        Method::GET,
        &in_second(proxy_secrets(&sp_id)),
        Some(&user_token),
        None,
    )
    .await;
    assert_eq!(not_there.status, 404, "{}", not_there.body);
    let admin_sp_secrets = call(
        &app,
        Method::GET,
        &account_secrets(&app, &admin_sp),
        Some(&user_token),
        None,
    )
    .await;
    assert_eq!(admin_sp_secrets.status, 403, "{}", admin_sp_secrets.body);
    // The workspace admin is no account admin: the account API refuses its other principals.
    let account_level = call(
        &app,
        Method::POST,
        &account_secrets(&app, &other_sp),
        Some(&user_token),
        Some(json!({})),
    )
    .await;
    assert_eq!(account_level.status, 403, "{}", account_level.body);
}

#[tokio::test]
async fn hostile_and_broken_jwts_are_all_refused_with_the_same_401() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    let (secret, _) = new_secret(&app, &sp_id).await;
    let token = access_token(&mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await);
    // Used once first, so this node remembers its signature as verified: each tampered copy
    // below that keeps the signature must still be refused.
    let good = workspace_me(&app, &token).await;
    assert_eq!(good.status, 200, "{}", good.body);
    let parts: Vec<&str> = token.split('.').collect();
    let header = header_of(&token);
    let claims = claims_of(&token);
    let with_claims = |change: &dyn Fn(&mut Value)| {
        let mut changed = claims.clone();
        change(&mut changed);
        format!("{}.{}.{}", parts[0], encode(&changed), parts[2])
    };
    let with_header = |change: &dyn Fn(&mut Value), signature: &str| {
        let mut changed = header.clone();
        change(&mut changed);
        format!("{}.{}.{signature}", encode(&changed), parts[1])
    };
    // The JWKS's public key, as the key of an HS256 token (the classic confusion attack).
    let jwks = call(&app, Method::GET, "/oidc/v1/keys", None, None).await;
    let public = URL_SAFE_NO_PAD
        .decode(str_of(&jwks.body["keys"][0], "x"))
        .unwrap();
    let hs256 = {
        let head = encode(&json!({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}));
        let signed = format!("{head}.{}", parts[1]);
        let mac = hmac_sha256(&public, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac))
    };
    let hostile = vec![
        ("alg none", with_header(&|h| h["alg"] = json!("none"), "")),
        (
            "alg none, signature kept",
            with_header(&|h| h["alg"] = json!("none"), parts[2]),
        ),
        ("HS256 with the public key", hs256),
        (
            "unknown kid",
            with_header(&|h| h["kid"] = json!("nope"), parts[2]),
        ),
        ("tampered subject", with_claims(&|c| c["sub"] = json!("1"))),
        (
            "tampered expiry",
            with_claims(&|c| c["exp"] = json!(4_000_000_000_i64)),
        ),
        (
            "tampered workspace",
            with_claims(&|c| c["workspace_id"] = json!("42")),
        ),
        (
            "another account's name",
            with_claims(&|c| c["account_id"] = json!("other")),
        ),
        ("truncated", format!("{}.{}", parts[0], parts[1])),
        ("garbage", "eyJhbGciOi.eyJzdWIi.AAAA".to_string()),
        (
            "signature of another token",
            format!("{}.{}.{}", parts[0], parts[1], "A".repeat(86)),
        ),
    ];
    let refusal = workspace_me(&app, "dapi-not-a-token").await;
    assert_eq!(refusal.status, 401);
    for (what, jwt) in &hostile {
        let reply = workspace_me(&app, jwt).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(reply.body, refusal.body, "{what}");
        let account = account_me(&app, jwt).await;
        assert_eq!(
            account.status, 401,
            "{what} on the account API: {}",
            account.body
        );
    }
    // A genuine token of another account is answered as that account's personal tokens are
    // (403 on this account's API, 404 for a workspace it must not learn exists), and refused
    // at this account's token endpoint.
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let foreign_admin = foreign.admin_token.expose().to_string();
    let foreign_workspace = app.services.workspaces(&foreign.account.id).await.unwrap()[0]
        .id
        .to_string();
    let robot = call(
        &app,
        Method::POST,
        &format!("/w/{foreign_workspace}/api/2.0/preview/scim/v2/ServicePrincipals"),
        Some(&foreign_admin),
        Some(json!({"schemas": [SERVICE_PRINCIPAL_SCHEMA], "displayName": "theirs"})),
    )
    .await;
    assert_eq!(robot.status, 201, "{}", robot.body);
    let made = call(
        &app,
        Method::POST,
        &format!(
            "/api/2.0/accounts/{}/servicePrincipals/{}/credentials/secrets",
            foreign.account.id,
            str_of(&robot.body, "id")
        ),
        Some(&foreign_admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let (their_client, their_secret) = (
        str_of(&robot.body, "applicationId").to_string(),
        str_of(&made.body, "secret").to_string(),
    );
    let their_path = format!("/oidc/accounts/{}/v1/token", foreign.account.id);
    let theirs = access_token(&mint(&app, &their_path, &their_client, &their_secret).await);
    assert_eq!(account_me(&app, &theirs).await.status, 403);
    assert_eq!(workspace_me(&app, &theirs).await.status, 404);
    oauth_error(
        &mint(
            &app,
            &account_token_path(&app),
            &their_client,
            &their_secret,
        )
        .await,
        401,
        "invalid_client",
    );
    // Expired: an hour after it was minted.
    clock.advance_micros(3_600 * 1_000_000);
    let expired = workspace_me(&app, &token).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body, refusal.body);
}

/// HMAC-SHA-256 (RFC 2104), for forging an HS256 token in the test above.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

#[tokio::test]
async fn signing_keys_rotate_on_schedule_and_old_tokens_verify_until_they_expire() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let day = 86_400 * 1_000_000_i64;
    let minute = 60 * 1_000_000_i64;
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    let (secret, _) = new_secret(&app, &sp_id).await;
    let kids = || async {
        let jwks = call(&app, Method::GET, "/oidc/v1/keys", None, None).await;
        jwks.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| str_of(key, "kid").to_string())
            .collect::<Vec<_>>()
    };
    let first = access_token(&mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await);
    let first_kid = header_of(&first)["kid"].as_str().unwrap().to_string();
    // Ten minutes before the 30 days are up, the first key still signs.
    clock.advance_micros(30 * day - 10 * minute);
    let late = access_token(&mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await);
    assert_eq!(header_of(&late)["kid"], first_kid.as_str());
    // Past them, a new key signs; the old one still verifies what it signed.
    clock.advance_micros(11 * minute);
    let fresh = access_token(&mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await);
    let second_kid = header_of(&fresh)["kid"].as_str().unwrap().to_string();
    assert_ne!(second_kid, first_kid);
    assert_eq!(kids().await, [second_kid.clone(), first_kid.clone()]);
    assert_eq!(workspace_me(&app, &late).await.status, 200);
    assert_eq!(workspace_me(&app, &fresh).await.status, 200);
    // The late token expires an hour after it was minted; the old key stays in the JWKS until
    // the last token it could have signed has expired (an hour after it stopped signing), then
    // leaves it.
    clock.advance_micros(50 * minute);
    assert_eq!(workspace_me(&app, &late).await.status, 401);
    assert_eq!(workspace_me(&app, &fresh).await.status, 200);
    assert_eq!(kids().await, [second_kid.clone(), first_kid]);
    clock.advance_micros(9 * minute);
    assert_eq!(kids().await, [second_kid]);
    assert_eq!(workspace_me(&app, &fresh).await.status, 200);
}

#[tokio::test]
async fn deleting_a_secret_or_deactivating_the_principal_stops_its_tokens_on_every_node() {
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on(database, &url).await;
    let other = node_on(&url).await;
    let on_other = |token: &str, read_after: Option<&str>| {
        let (token, read_after) = (token.to_string(), read_after.map(str::to_string));
        let (app, other) = (&app, &other);
        async move { other.me_status(app, &token, read_after.as_deref()).await }
    };
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    let (first_secret, first_id) = new_secret(&app, &sp_id).await;
    let (second_secret, _) = new_secret(&app, &sp_id).await;
    // Minted on the other node, verified on both (the first node reads the keys it made).
    let from_first =
        access_token(&mint_on(&other.address, WORKSPACE_TOKEN, &client_id, &first_secret).await);
    let from_second = access_token(&mint(&app, WORKSPACE_TOKEN, &client_id, &second_secret).await);
    assert_eq!(workspace_me(&app, &from_first).await.status, 200);
    assert_eq!(on_other(&from_first, None).await, 200);
    assert_eq!(on_other(&from_second, None).await, 200);
    // The first secret deleted on the first node: its token is refused by both, the other
    // token is not.
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("{}/{first_id}", account_secrets(&app, &sp_id)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(workspace_me(&app, &from_first).await.status, 401);
    assert_eq!(
        on_other(&from_first, Some(&change_token(&deleted))).await,
        401
    );
    assert_eq!(on_other(&from_second, None).await, 200);
    // Deactivated on the first node: refused on both, and after reactivation too.
    let off = set_active(&app, &sp_id, false).await;
    assert_eq!(workspace_me(&app, &from_second).await.status, 401);
    assert_eq!(on_other(&from_second, Some(&change_token(&off))).await, 401);
    let on = set_active(&app, &sp_id, true).await;
    assert_eq!(on_other(&from_second, Some(&change_token(&on))).await, 401);
    assert_eq!(workspace_me(&app, &from_second).await.status, 401);
}

thread_local! {
    /// What the server logged on this thread, while a test captures it.
    static CAPTURED: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// The log writer of this test binary's one global subscriber: it keeps what is logged on a
/// thread that captures ([`capture_log`]) and drops the rest. A global subscriber, not a
/// scoped one: tracing caches each call site's interest process-wide, and a scoped
/// subscriber set while other tests run in parallel can miss events.
#[derive(Clone, Copy, Default)]
struct ThreadLog;

impl std::io::Write for ThreadLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|captured| {
            if let Some(buffer) = captured.borrow_mut().as_mut() {
                buffer.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadLog {
    type Writer = ThreadLog;

    fn make_writer(&'a self) -> ThreadLog {
        ThreadLog
    }
}

/// Starts keeping what is logged on this thread, where a current-thread test runs the server.
fn capture_log() {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(ThreadLog)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    CAPTURED.with(|captured| *captured.borrow_mut() = Some(Vec::new()));
}

fn captured_log() -> String {
    CAPTURED.with(|captured| {
        String::from_utf8_lossy(captured.borrow().as_deref().unwrap_or_default()).into_owned()
    })
}

#[tokio::test]
async fn no_secret_or_access_token_reaches_the_server_log() {
    // Everything the server logs at any level, on this test's thread, where the server runs
    // (a current-thread runtime).
    capture_log();
    let app = spawn_app().await;
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    let (secret, secret_id) = new_secret(&app, &sp_id).await;
    let workspace_token = access_token(&mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await);
    let form = reqwest::Client::new()
        .post(format!("{}{}", app.address, account_token_path(&app)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ]);
    let account_token = access_token(&read(form.send().await.unwrap()).await);
    assert_eq!(workspace_me(&app, &workspace_token).await.status, 200);
    assert_eq!(account_me(&app, &account_token).await.status, 200);
    let wrong = format!("{secret}0");
    oauth_error(
        &mint(&app, WORKSPACE_TOKEN, &client_id, &wrong).await,
        401,
        "invalid_client",
    );
    let tampered = format!("{workspace_token}A");
    assert_eq!(workspace_me(&app, &tampered).await.status, 401);
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("{}/{secret_id}", account_secrets(&app, &sp_id)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(workspace_me(&app, &workspace_token).await.status, 401);
    oauth_error(
        &mint(&app, WORKSPACE_TOKEN, &client_id, &secret).await,
        401,
        "invalid_client",
    );

    let text = captured_log();
    assert!(text.contains("client authentication failed"), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
    for (what, value) in [
        ("the secret", secret.as_str()),
        ("a wrong secret", wrong.as_str()),
        ("the workspace token", workspace_token.as_str()),
        ("the account token", account_token.as_str()),
        (
            "the workspace token's signature",
            workspace_token.rsplit('.').next().unwrap(),
        ),
        (
            "the account token's signature",
            account_token.rsplit('.').next().unwrap(),
        ),
        ("the admin token", app.token.as_str()),
    ] {
        assert!(!text.contains(value), "{what} is in the log");
    }
}
