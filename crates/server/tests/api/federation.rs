//! Workload identity federation, as the Databricks SDK's `a.federation_policy`,
//! `a.service_principal_federation_policy` and its OIDC auth types use it: the policy APIs
//! (shapes, validation, who may use them), and the RFC 8693 token exchange at the token
//! endpoints against an issuer these tests run themselves on loopback (a discovery document
//! and a key set, RS256 and ES256 keys signing JWTs here), with every refusal the exchange
//! owes: `alg: none`, HMAC, an unknown key, bad signatures, expired and early tokens, wrong
//! issuer, audience and subject, and a replay.

use crate::support::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::Method;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use scimitar_domain::clock::ManualClock;
use scimitar_domain::{Clock, SystemClock};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const WORKSPACE_TOKEN: &str = "/oidc/v1/token";

/// A 2048-bit RSA key (PKCS#8, DER, base64) made for these tests alone with
/// `openssl genpkey -algorithm RSA`; ring signs with RSA keys but does not make them.
const TEST_RSA_PKCS8: &str = concat!(
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDYMBeCJq4jFjrdgSr8aaWVzDzCGBEFAiFL9mMh5p",
    "StQQY7ipEtLuGnzom68pgvfNGUxzwRKqHIlcVw9CpdvAw0sCz/gqZflWAC0dPZp8pN4TFpmIulT6HHB5T/wE/mNEcK",
    "xPUOSn8gCRMNWig97909z9+ImVPASp5BIw04oH4ivwLA7LD1waTtOatOs6tJZZd4xIVEVz8drbvtJOthynzbm+2Bop",
    "f4Mu+ieOcD9kwAPTt2z8mHYBTKgFss/csXyUfH7ApoFDBOYAhGHidk2G5uUPqAzONJD9hNnoCXIqdfszQw9WXHTzdP",
    "3jethsCRc1qHE/U5+iON3ZpdvwMSo77LAgMBAAECggEAGyaPDULGWT8QItl3XelME8VpVrGnEYtJmzyqXouS3d9uD5",
    "7rdKflTH8ylPlQBkbAG4CaGUh9YQT48vf3NNEfx04zmIipVGpyJb3XGV1qmYqlUK8JJWMcMjQlkP5vX73uXiU2PEE8",
    "OKMVyCDWhPt8PFMVrmtzNTx/JjcSEKviANg5Qj1SmeJ4X7+zbIvEI2ylB4utijnRw3LDVaBCbSAX74iyEUqVSj9Pmy",
    "i2VUS0qcw+O1VW9MOgoFaoEiU4MAook6x0XzcQ7/Q717QkEtBY1SZPVNjz/YuJ6Q4w5tJG1kiKAaX4ov+kaHJc1l8i",
    "AWJZ1+tGdKjC6WfM5H5/eC4MYQKBgQDsOJnksa8DNDC0DbrogdVhqA6+krqpA4hmQ0vLRK5aZMLHOQv7ybR1RP/ck+",
    "UsmzjDE8QZvtTkbNAWDQ7E5mhn553Wz7aZ8MCA8Qvsj3Dud2FLJ0zHdizGLkHjGxf/gZ4SYJhPnLYua9T8m981P+Xm",
    "q3F58zhB9WSKgtsHiytkvQKBgQDqShQGuRyjj7pHneRLXlPF4RxMywMFFJKGIYEfXZoMfwoziK6f2MFFfu4RGC2tcA",
    "VB3aWjcUqd7uaK79QpUjEfT6oO51f76sD15U6+Kb45/4GF8kU8QmAfX+3JFJjkENzDm11OSbE7EVxMbCUbP4BpyvhV",
    "3yVXg1JBsaVc0dJeJwKBgEwCaoKMKiR9xq4pPNtT67Vgvl3UGPwJhvpg7SKbFv8/LO2uDY0XelnBuhLgA/42dC1RTu",
    "h530chPFPcH8R731yPyto0PC2MqmTTK2MTRON2xnfITYxhGkcq20iYj0BIFPUU3+2+H2EQkZg3D7uys+dlgz4aZR/U",
    "NmXbdV8YCP6BAoGBAIvpWxY8u3aNoV+dUbUUipCUAxN09MO26l2BapuxiQpHX28xA59fkOOQjljVCIoXaHxSAdWeFU",
    "JFZZW47QkUFVOufk7SJr/BDCSMIL79LKV0CQRVjrUSqlZyMg0v6LHhxARoJotXBKjSkDzvJCWmgWgsFqspTCJ7wMaM",
    "cMUCZE9nAoGAd++Tu91+qmSsqXkfhGIBL7RZHdgy+b2wjM6v7iyyZEaipdmchuxa3Tu2w1j9bSrKw3UyaxgQ50pMCW",
    "XaqdOUwEoIr3TrWOU6VdV5s7T6YzpewKJsXnWbP9QeUkHfJ872HEGTZ9A1XVsBmpLin2NDMAW5npzWATR/hRbgckNr",
    "tsU=",
);

/// A key an external issuer signs with.
enum TestKey {
    Rsa { pair: RsaKeyPair, kid: String },
    Ec { pair: EcdsaKeyPair, kid: String },
}

impl TestKey {
    fn rsa(kid: &str) -> TestKey {
        let der = STANDARD.decode(TEST_RSA_PKCS8).unwrap();
        TestKey::Rsa {
            pair: RsaKeyPair::from_pkcs8(&der).unwrap(),
            kid: kid.into(),
        }
    }

    fn ec(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let algorithm = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(algorithm, &rng).unwrap();
        TestKey::Ec {
            pair: EcdsaKeyPair::from_pkcs8(algorithm, pkcs8.as_ref(), &rng).unwrap(),
            kid: kid.into(),
        }
    }

    fn kid(&self) -> &str {
        match self {
            TestKey::Rsa { kid, .. } | TestKey::Ec { kid, .. } => kid,
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            TestKey::Rsa { .. } => "RS256",
            TestKey::Ec { .. } => "ES256",
        }
    }

    /// The public key as a JWK.
    fn jwk(&self) -> Value {
        match self {
            TestKey::Rsa { pair, kid } => {
                let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                       "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)})
            }
            TestKey::Ec { pair, kid } => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                       "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
            }
        }
    }

    /// A JWT with this key's `alg` and `kid` in its header and `claims`, signed.
    fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"alg": self.alg(), "kid": self.kid(), "typ": "JWT"}),
            claims,
        )
    }

    fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let signed = format!("{}.{}", encode(header), encode(claims));
        let rng = SystemRandom::new();
        let signature = match self {
            TestKey::Rsa { pair, .. } => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    signed.as_bytes(),
                    &mut signature,
                )
                .unwrap();
                signature
            }
            TestKey::Ec { pair, .. } => pair
                .sign(&rng, signed.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// An OIDC issuer on loopback: its discovery document and its key set, which a test changes,
/// and how often the key set was fetched.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_issuer(keys: &[&TestKey]) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let key_set = Arc::new(Mutex::new(
        json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}),
    ));
    let fetches = Arc::new(AtomicUsize::new(0));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
    let served = (Arc::clone(&key_set), Arc::clone(&fetches));
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let discovery = discovery.clone();
                async move { axum::Json(discovery) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let (key_set, fetches) = (Arc::clone(&served.0), Arc::clone(&served.1));
                async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let keys = key_set.lock().unwrap().clone();
                    axum::Json(keys)
                }
            }),
        );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Issuer {
        url,
        keys: key_set,
        fetches,
        _stop: stop,
    }
}

impl Issuer {
    fn serve(&self, keys: &[&TestKey]) {
        *self.keys.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    }
}

fn now_seconds(clock: &dyn Clock) -> i64 {
    clock.now().as_micros() / 1_000_000
}

/// Claims as a CI system's token carries them, for `audience` and `subject`, valid for ten
/// minutes from `now`, with a fresh `jti`.
fn claims(issuer: &str, audience: &str, subject: &str, now: i64) -> Value {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    json!({
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": format!("jti-{}", NEXT.fetch_add(1, Ordering::SeqCst)),
    })
}

fn account_policies(app: &TestApp) -> String {
    format!("/api/2.0/accounts/{}/federationPolicies", app.account)
}

fn sp_policies(app: &TestApp, sp_id: &str) -> String {
    format!(
        "/api/2.0/accounts/{}/servicePrincipals/{sp_id}/federationPolicies",
        app.account
    )
}

/// An app that accepts loopback `http` issuers (as `federation_allow_loopback_http` does).
async fn federating_app(clock: Arc<dyn Clock>) -> TestApp {
    let app = spawn_app_with_clock(clock).await;
    app.services.allow_loopback_http_issuers(true);
    app
}

/// A service principal of the default workspace: `(id, applicationId)`.
async fn service_principal(app: &TestApp, name: &str) -> (String, String) {
    let sp = app.create_service_principal(name).await;
    (
        str_of(&sp, "id").to_string(),
        str_of(&sp, "applicationId").to_string(),
    )
}

async fn create_policy(app: &TestApp, path: &str, body: Value) -> Value {
    let reply = call(app, Method::POST, path, Some(&app.token), Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// A token-exchange request as the SDK sends it: no client authentication, `client_id` for a
/// service principal's policy.
async fn exchange(app: &TestApp, path: &str, jwt: &str, client_id: Option<&str>) -> Reply {
    exchange_with(app, path, jwt, client_id, &[]).await
}

async fn exchange_with(
    app: &TestApp,
    path: &str,
    jwt: &str,
    client_id: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", jwt),
        ("subject_token_type", JWT_TYPE),
        ("scope", "all-apis"),
    ];
    if let Some(client_id) = client_id {
        form.push(("client_id", client_id));
    }
    for (name, value) in extra {
        form.retain(|(field, _)| field != name);
        form.push((name, value));
    }
    let request = app
        .client
        .post(format!("{}{path}", app.address))
        .form(&form);
    read(request.send().await.expect("sent")).await
}

/// An RFC 6749 error, and nothing of Databricks' or SCIM's shapes.
fn oauth_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"], code, "{}", reply.body);
    assert!(reply.body.get("error_code").is_none(), "{}", reply.body);
}

fn access_token(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["token_type"], "Bearer", "{}", reply.body);
    assert_eq!(
        reply.body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token",
        "{}",
        reply.body
    );
    str_of(&reply.body, "access_token").to_string()
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

fn databricks_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.body["error_code"].is_string(), "{}", reply.body);
    assert!(reply.body["message"].is_string(), "{}", reply.body);
}

#[tokio::test]
async fn policies_are_created_read_listed_updated_and_deleted_in_the_sdks_shapes() {
    let app = federating_app(Arc::new(SystemClock)).await;
    let (sp_id, _) = service_principal(&app, "ci").await;
    // The account's policy, its id given.
    let path = format!("{}?policy_id=company-idp", account_policies(&app));
    let made = create_policy(
        &app,
        &path,
        json!({"description": "the IdP", "oidc_policy": {
            "issuer": "https://idp.example", "audiences": ["databricks"], "subject_claim": "email"}}),
    )
    .await;
    assert_eq!(made["policy_id"], "company-idp");
    assert_eq!(
        made["name"],
        format!("accounts/{}/federationPolicies/company-idp", app.account)
    );
    assert_eq!(made["oidc_policy"]["issuer"], "https://idp.example");
    assert_eq!(made["oidc_policy"]["audiences"], json!(["databricks"]));
    assert_eq!(made["oidc_policy"]["subject_claim"], "email");
    assert!(
        made["uid"].is_string() && made["create_time"].is_string(),
        "{made}"
    );
    // A service principal's policy, its id made by the server.
    let theirs = create_policy(
        &app,
        &sp_policies(&app, &sp_id),
        json!({"oidc_policy": {"issuer": "https://token.actions.githubusercontent.com",
                               "audiences": ["x"], "subject": "repo:org/repo:ref:refs/heads/main"}}),
    )
    .await;
    let their_id = str_of(&theirs, "policy_id").to_string();
    assert_eq!(theirs["service_principal_id"].to_string(), sp_id);
    assert_eq!(
        theirs["name"],
        format!(
            "accounts/{}/servicePrincipals/{sp_id}/federationPolicies/{their_id}",
            app.account
        )
    );
    // Each list holds its own.
    let listed = call(
        &app,
        Method::GET,
        &account_policies(&app),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["policies"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["policies"][0]["policy_id"], "company-idp");
    let listed = call(
        &app,
        Method::GET,
        &sp_policies(&app, &sp_id),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(listed.body["policies"][0]["policy_id"], their_id.as_str());
    // Pages: one at a time, with a token to the next.
    create_policy(
        &app,
        &format!("{}?policy_id=second", account_policies(&app)),
        json!({"oidc_policy": {"issuer": "https://second.example"}}),
    )
    .await;
    let first = call(
        &app,
        Method::GET,
        &format!("{}?page_size=1", account_policies(&app)),
        Some(&app.token),
        None,
    )
    .await;
    let next = str_of(&first.body, "next_page_token").to_string();
    let second = call(
        &app,
        Method::GET,
        &format!("{}?page_size=1&page_token={next}", account_policies(&app)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(second.body["policies"][0]["policy_id"], "second");
    assert!(
        second.body.get("next_page_token").is_none(),
        "{}",
        second.body
    );
    // An update of what the mask names only; the rest stays.
    let one = format!("{}/company-idp", account_policies(&app));
    let updated = call(
        &app,
        Method::PATCH,
        &format!("{one}?update_mask=oidc_policy.audiences"),
        Some(&app.token),
        Some(json!({"description": "ignored", "oidc_policy": {"audiences": ["a", "b"]}})),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["oidc_policy"]["audiences"], json!(["a", "b"]));
    assert_eq!(updated.body["oidc_policy"]["issuer"], "https://idp.example");
    assert_eq!(updated.body["description"], "the IdP");
    // The policy read back can be sent back whole.
    let got = call(&app, Method::GET, &one, Some(&app.token), None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let again = call(
        &app,
        Method::PATCH,
        &one,
        Some(&app.token),
        Some(got.body.clone()),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    // Deleted: gone, and a second delete is not found.
    let deleted = call(&app, Method::DELETE, &one, Some(&app.token), None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    databricks_error(
        &call(&app, Method::GET, &one, Some(&app.token), None).await,
        404,
    );
    databricks_error(
        &call(&app, Method::DELETE, &one, Some(&app.token), None).await,
        404,
    );
    // Each write is in the audit trail.
    let events = call(
        &app,
        Method::GET,
        "/api/2.0/audit/events",
        Some(&app.token),
        None,
    )
    .await;
    let text = events.body.to_string();
    for action in [
        "createFederationPolicy",
        "updateFederationPolicy",
        "deleteFederationPolicy",
    ] {
        assert!(text.contains(action), "{action} missing from {text}");
    }
}

#[tokio::test]
async fn bad_policies_are_refused_with_databricks_errors_and_change_nothing() {
    let app = spawn_app().await;
    let (sp_id, _) = service_principal(&app, "ci").await;
    let account = account_policies(&app);
    let sp = sp_policies(&app, &sp_id);
    let https = json!({"oidc_policy": {"issuer": "https://idp.example", "subject": "s"}});
    for (path, body) in [
        // Unknown fields, wrong types, nothing.
        (
            &sp,
            json!({"oidc_policy": {"issuer": "https://i.example", "subject": "s", "extra": 1}}),
        ),
        (
            &sp,
            json!({"oidc_policy": {"issuer": "https://i.example", "subject": "s"}, "color": 1}),
        ),
        (&sp, json!({"oidc_policy": {"issuer": 7, "subject": "s"}})),
        (&sp, json!({})),
        // Issuers: plain http, loopback http while the deployment does not allow it, not URLs.
        (
            &sp,
            json!({"oidc_policy": {"issuer": "http://idp.example", "subject": "s"}}),
        ),
        (
            &sp,
            json!({"oidc_policy": {"issuer": "http://127.0.0.1:9", "subject": "s"}}),
        ),
        (
            &sp,
            json!({"oidc_policy": {"issuer": "idp.example", "subject": "s"}}),
        ),
        // A subject is needed for a service principal and refused for the account.
        (
            &sp,
            json!({"oidc_policy": {"issuer": "https://idp.example"}}),
        ),
        (
            &account,
            json!({"oidc_policy": {"issuer": "https://idp.example", "subject": "s"}}),
        ),
        // An inline key set with no usable key, or not JSON.
        (
            &sp,
            json!({"oidc_policy": {"issuer": "https://i.example", "subject": "s",
                                     "jwks_json": "{\"keys\": [{\"kty\": \"oct\", \"k\": \"AA\"}]}"}}),
        ),
        (
            &sp,
            json!({"oidc_policy": {"issuer": "https://i.example", "subject": "s", "jwks_json": "nope"}}),
        ),
    ] {
        let reply = call(
            &app,
            Method::POST,
            path,
            Some(&app.token),
            Some(body.clone()),
        )
        .await;
        databricks_error(&reply, 400);
    }
    let bad_id = call(
        &app,
        Method::POST,
        &format!("{sp}?policy_id=Bad_Id"),
        Some(&app.token),
        Some(https.clone()),
    )
    .await;
    databricks_error(&bad_id, 400);
    for path in [&sp, &account] {
        let listed = call(&app, Method::GET, path, Some(&app.token), None).await;
        assert_eq!(listed.body["policies"], json!([]), "{}", listed.body);
    }
    // A taken id is a conflict.
    create_policy(&app, &format!("{sp}?policy_id=ci"), https.clone()).await;
    let taken = call(
        &app,
        Method::POST,
        &format!("{sp}?policy_id=ci"),
        Some(&app.token),
        Some(https.clone()),
    )
    .await;
    databricks_error(&taken, 409);
    // An update that would make the policy invalid changes nothing.
    let refused = call(
        &app,
        Method::PATCH,
        &format!("{sp}/ci?update_mask=oidc_policy.subject"),
        Some(&app.token),
        Some(json!({"oidc_policy": {}})),
    )
    .await;
    databricks_error(&refused, 400);
    let unknown_mask = call(
        &app,
        Method::PATCH,
        &format!("{sp}/ci?update_mask=uid"),
        Some(&app.token),
        Some(json!({})),
    )
    .await;
    databricks_error(&unknown_mask, 400);
    let kept = call(
        &app,
        Method::GET,
        &format!("{sp}/ci"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(kept.body["oidc_policy"]["subject"], "s", "{}", kept.body);
}

#[tokio::test]
async fn only_the_accounts_admins_manage_policies_and_only_their_own_accounts() {
    let app = spawn_app().await;
    let (sp_id, _) = service_principal(&app, "ci").await;
    let user = app.create_user("ann@example.com").await;
    let users_token = app.token_for(str_of(&user, "id")).await;
    let body = json!({"oidc_policy": {"issuer": "https://idp.example", "subject": "s"}});
    create_policy(
        &app,
        &format!("{}?policy_id=ci", sp_policies(&app, &sp_id)),
        body.clone(),
    )
    .await;
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let foreign_admin = foreign.admin_token.expose().to_string();
    for base in [account_policies(&app), sp_policies(&app, &sp_id)] {
        let one = format!("{base}/ci");
        for (method, path, body) in [
            (Method::GET, &base, None),
            (Method::POST, &base, Some(body.clone())),
            (Method::GET, &one, None),
            (Method::PATCH, &one, Some(body.clone())),
            (Method::DELETE, &one, None),
        ] {
            let none = call(&app, method.clone(), path, None, body.clone()).await;
            assert_eq!(none.status, 401, "{method} {path}: {}", none.body);
            let wrong = call(&app, method.clone(), path, Some("dapi0000"), body.clone()).await;
            assert_eq!(wrong.status, 401, "{method} {path}: {}", wrong.body);
            let user = call(&app, method.clone(), path, Some(&users_token), body.clone()).await;
            databricks_error(&user, 403);
            let other = call(
                &app,
                method.clone(),
                path,
                Some(&foreign_admin),
                body.clone(),
            )
            .await;
            assert!(
                [403, 404].contains(&other.status),
                "{method} {path}: {}",
                other.body
            );
        }
    }
    // An expired token is refused as any unknown one.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let timed = spawn_app_with_clock(clock.clone()).await;
    let made = call(
        &timed,
        Method::POST,
        "/api/2.0/token/create",
        Some(&timed.token),
        Some(json!({"lifetime_seconds": 60})),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    clock.advance_micros(120 * 1_000_000);
    let expired = call(
        &timed,
        Method::GET,
        &account_policies(&timed),
        Some(str_of(&made.body, "token_value")),
        None,
    )
    .await;
    assert_eq!(expired.status, 401, "{}", expired.body);
    // Still there for the admin; a missing principal or a user is not a service principal.
    let kept = call(
        &app,
        Method::GET,
        &format!("{}/ci", sp_policies(&app, &sp_id)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    for missing in ["999999", str_of(&user, "id")] {
        let reply = call(
            &app,
            Method::GET,
            &sp_policies(&app, missing),
            Some(&app.token),
            None,
        )
        .await;
        databricks_error(&reply, 404);
    }
}

#[tokio::test]
async fn a_service_principal_exchanges_a_loopback_issuers_jwt_for_tokens_that_work() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = federating_app(Arc::clone(&clock)).await;
    let key = TestKey::rsa("rsa-1");
    let issuer = start_issuer(&[&key]).await;
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    create_policy(
        &app,
        &sp_policies(&app, &sp_id),
        json!({"oidc_policy": {"issuer": issuer.url, "audiences": ["scimitar"], "subject": "repo:org/app"}}),
    )
    .await;
    let now = now_seconds(clock.as_ref());
    // At the workspace's endpoint: a workspace token of the service principal.
    let jwt = key.sign(&claims(&issuer.url, "scimitar", "repo:org/app", now));
    let reply = exchange(&app, WORKSPACE_TOKEN, &jwt, Some(&client_id)).await;
    let token = access_token(&reply);
    assert!(
        reply.body["expires_in"].as_i64().unwrap() <= 600,
        "{}",
        reply.body
    );
    let me = workspace_me(&app, &token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["id"], sp_id.as_str());
    // At the account's: an account token.
    let jwt = key.sign(&claims(&issuer.url, "scimitar", "repo:org/app", now));
    let path = format!("/oidc/accounts/{}/v1/token", app.account);
    let token = access_token(&exchange(&app, &path, &jwt, Some(&client_id)).await);
    let me = call(
        &app,
        Method::GET,
        &format!("/api/2.0/accounts/{}/scim/v2/Me", app.account),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    // The key set was fetched once, then cached.
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);
    // ES256 too, with the key set given inline.
    let ec = TestKey::ec("ec-1");
    let (other_id, other_client) = service_principal(&app, "deploy").await;
    create_policy(
        &app,
        &sp_policies(&app, &other_id),
        json!({"oidc_policy": {"issuer": "https://ci.example", "subject": "deploy",
                               "jwks_json": json!({"keys": [ec.jwk()]}).to_string()}}),
    )
    .await;
    // No audiences: the account's id is the one accepted.
    let jwt = ec.sign(&claims(
        "https://ci.example",
        app.account.as_str(),
        "deploy",
        now,
    ));
    let token = access_token(&exchange(&app, WORKSPACE_TOKEN, &jwt, Some(&other_client)).await);
    assert_eq!(
        workspace_me(&app, &token).await.body["id"],
        other_id.as_str()
    );
}

#[tokio::test]
async fn an_account_policy_maps_the_subject_claim_to_a_user_by_name() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = federating_app(Arc::clone(&clock)).await;
    let key = TestKey::ec("ec-1");
    let issuer = start_issuer(&[&key]).await;
    let user = app.create_user("ann@example.com").await;
    create_policy(
        &app,
        &account_policies(&app),
        json!({"oidc_policy": {"issuer": issuer.url, "audiences": ["scimitar"], "subject_claim": "email"}}),
    )
    .await;
    let now = now_seconds(clock.as_ref());
    let mut with_email = claims(&issuer.url, "scimitar", "opaque-id", now);
    with_email["email"] = json!("ann@example.com");
    let token = access_token(&exchange(&app, WORKSPACE_TOKEN, &key.sign(&with_email), None).await);
    assert_eq!(
        workspace_me(&app, &token).await.body["id"],
        str_of(&user, "id")
    );
    // A name no user has, and no claim at all, are refused.
    let mut stranger = claims(&issuer.url, "scimitar", "x", now);
    stranger["email"] = json!("bob@example.com");
    oauth_error(
        &exchange(&app, WORKSPACE_TOKEN, &key.sign(&stranger), None).await,
        400,
        "invalid_grant",
    );
    let no_claim = claims(&issuer.url, "scimitar", "x", now);
    oauth_error(
        &exchange(&app, WORKSPACE_TOKEN, &key.sign(&no_claim), None).await,
        400,
        "invalid_grant",
    );
}

#[tokio::test]
async fn every_bad_exchange_is_refused_with_an_rfc_6749_error_and_changes_nothing() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = federating_app(Arc::clone(&clock)).await;
    let key = TestKey::rsa("rsa-1");
    let stranger = TestKey::ec("ec-stranger");
    let issuer = start_issuer(&[&key]).await;
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    create_policy(
        &app,
        &sp_policies(&app, &sp_id),
        json!({"oidc_policy": {"issuer": issuer.url, "audiences": ["scimitar"], "subject": "repo:org/app"}}),
    )
    .await;
    let now = now_seconds(clock.as_ref());
    let good = || claims(&issuer.url, "scimitar", "repo:org/app", now);
    let with = |name: &str, value: Value| {
        let mut claims = good();
        claims[name] = value;
        claims
    };
    let header = |alg: &str| json!({"alg": alg, "kid": "rsa-1"});
    let claims_part = encode(&good());
    let forged_hmac = {
        // HS256 keyed with the public key's bytes: the classic confusion attack.
        let signed = format!("{}.{claims_part}", encode(&header("HS256")));
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(b"not-a-real-mac"))
    };
    let valid = key.sign(&good());
    let mut tampered = valid.clone();
    tampered.replace_range(
        valid.rfind('.').unwrap() + 1..,
        &URL_SAFE_NO_PAD.encode([7u8; 256]),
    );
    let refused: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{claims_part}.", encode(&header("none"))),
        ),
        ("HS256", forged_hmac),
        ("unknown kid", stranger.sign(&good())),
        (
            "a key the set does not hold, under a known kid",
            stranger.sign_with_header(&json!({"alg": "ES256", "kid": "rsa-1"}), &good()),
        ),
        ("a bad signature", tampered),
        (
            "malformed",
            "eyJhbGciOiJSUzI1NiJ9.not-json.c2ln".to_string(),
        ),
        ("not a JWT", "dapi0123".to_string()),
        ("expired", key.sign(&with("exp", json!(now - 10)))),
        (
            "no exp",
            key.sign(&{
                let mut c = good();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
        ("not yet valid", key.sign(&with("nbf", json!(now + 3_600)))),
        (
            "issued in the future",
            key.sign(&with("iat", json!(now + 3_600))),
        ),
        (
            "wrong issuer",
            key.sign(&with("iss", json!("https://evil.example"))),
        ),
        (
            "wrong audience",
            key.sign(&with("aud", json!(["other", "another"]))),
        ),
        (
            "wrong subject",
            key.sign(&with("sub", json!("repo:org/other"))),
        ),
    ];
    for (why, jwt) in &refused {
        let reply = exchange(&app, WORKSPACE_TOKEN, jwt, Some(&client_id)).await;
        assert_eq!(reply.status, 400, "{why}: {}", reply.body);
        assert_eq!(
            reply.body["error"], "invalid_grant",
            "{why}: {}",
            reply.body
        );
    }
    // Bad requests.
    for (why, extra) in [
        ("no subject token", vec![("subject_token", "")]),
        (
            "an access token type",
            vec![(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            )],
        ),
        (
            "a PAT exchange",
            vec![(
                "subject_token_type",
                "urn:databricks:params:oauth:token-type:personal-access-token",
            )],
        ),
        ("a client secret", vec![("client_secret", "dose0000")]),
        ("an actor token", vec![("actor_token", "x")]),
        (
            "another requested type",
            vec![(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            )],
        ),
    ] {
        let reply = exchange_with(&app, WORKSPACE_TOKEN, &valid, Some(&client_id), &extra).await;
        oauth_error(&reply, 400, "invalid_request");
        assert!(!why.is_empty());
    }
    oauth_error(
        &exchange(&app, WORKSPACE_TOKEN, &valid, Some("no-such-app")).await,
        401,
        "invalid_client",
    );
    // Without a client id, the account's policies are asked, and there are none for it.
    oauth_error(
        &exchange(&app, WORKSPACE_TOKEN, &valid, None).await,
        400,
        "invalid_grant",
    );
    // A scope that does not exist is refused before the JWT is recorded...
    let bad_scope = exchange_with(
        &app,
        WORKSPACE_TOKEN,
        &valid,
        Some(&client_id),
        &[("scope", "sql")],
    )
    .await;
    oauth_error(&bad_scope, 400, "invalid_scope");
    // ...so the JWT still exchanges once, and is refused as a replay after, on either endpoint.
    access_token(&exchange(&app, WORKSPACE_TOKEN, &valid, Some(&client_id)).await);
    let replay = exchange(&app, WORKSPACE_TOKEN, &valid, Some(&client_id)).await;
    oauth_error(&replay, 400, "invalid_grant");
    let path = format!("/oidc/accounts/{}/v1/token", app.account);
    oauth_error(
        &exchange(&app, &path, &valid, Some(&client_id)).await,
        400,
        "invalid_grant",
    );
    // A JWT without a jti is remembered by its digest.
    let no_jti = key.sign(&{
        let mut c = good();
        c.as_object_mut().unwrap().remove("jti");
        c
    });
    access_token(&exchange(&app, WORKSPACE_TOKEN, &no_jti, Some(&client_id)).await);
    oauth_error(
        &exchange(&app, WORKSPACE_TOKEN, &no_jti, Some(&client_id)).await,
        400,
        "invalid_grant",
    );
    // Another account's endpoint knows neither the client nor the policy.
    let foreign = app.services.create_account("other", "other").await.unwrap();
    let fresh = key.sign(&good());
    let path = format!("/oidc/accounts/{}/v1/token", foreign.account.id);
    oauth_error(
        &exchange(&app, &path, &fresh, Some(&client_id)).await,
        401,
        "invalid_client",
    );
    // A deactivated principal gets nothing.
    app.patch_ops(
        &format!("/ServicePrincipals/{sp_id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    oauth_error(
        &exchange(&app, WORKSPACE_TOKEN, &fresh, Some(&client_id)).await,
        400,
        "invalid_grant",
    );
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_key_set_again_at_most_every_few_seconds() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = federating_app(clock.clone()).await;
    let old = TestKey::rsa("old");
    let new = TestKey::ec("new");
    let issuer = start_issuer(&[&old]).await;
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    create_policy(
        &app,
        &sp_policies(&app, &sp_id),
        json!({"oidc_policy": {"issuer": issuer.url, "audiences": ["scimitar"], "subject": "s"}}),
    )
    .await;
    let now = now_seconds(clock.as_ref());
    access_token(
        &exchange(
            &app,
            WORKSPACE_TOKEN,
            &old.sign(&claims(&issuer.url, "scimitar", "s", now)),
            Some(&client_id),
        )
        .await,
    );
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);
    // The issuer rotates. Right away, the unknown kid does not fetch again...
    issuer.serve(&[&old, &new]);
    let rotated = new.sign(&claims(&issuer.url, "scimitar", "s", now));
    oauth_error(
        &exchange(&app, WORKSPACE_TOKEN, &rotated, Some(&client_id)).await,
        400,
        "invalid_grant",
    );
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);
    // ...a few seconds later it does, and the new key verifies.
    clock.advance_micros(11 * 1_000_000);
    let now = now_seconds(clock.as_ref());
    access_token(
        &exchange(
            &app,
            WORKSPACE_TOKEN,
            &new.sign(&claims(&issuer.url, "scimitar", "s", now)),
            Some(&client_id),
        )
        .await,
    );
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 2);
    // A kid no set holds costs one fetch per period, not one per request.
    let ghost = TestKey::ec("ghost");
    clock.advance_micros(11 * 1_000_000);
    let now = now_seconds(clock.as_ref());
    for _ in 0..3 {
        let jwt = ghost.sign(&claims(&issuer.url, "scimitar", "s", now));
        oauth_error(
            &exchange(&app, WORKSPACE_TOKEN, &jwt, Some(&client_id)).await,
            400,
            "invalid_grant",
        );
    }
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 3);
    // After the cache's lifetime the set is fetched again even for a known kid.
    clock.advance_micros(301 * 1_000_000);
    let now = now_seconds(clock.as_ref());
    access_token(
        &exchange(
            &app,
            WORKSPACE_TOKEN,
            &old.sign(&claims(&issuer.url, "scimitar", "s", now)),
            Some(&client_id),
        )
        .await,
    );
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn deleting_the_policy_or_deactivating_the_principal_stops_exchanged_tokens() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = federating_app(Arc::clone(&clock)).await;
    let key = TestKey::ec("ec-1");
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    let policy = |id: &str| {
        json!({"oidc_policy": {"issuer": "https://ci.example", "subject": "s",
                               "jwks_json": json!({"keys": [key.jwk()]}).to_string()}, "description": id})
    };
    create_policy(
        &app,
        &format!("{}?policy_id=one", sp_policies(&app, &sp_id)),
        policy("one"),
    )
    .await;
    let now = now_seconds(clock.as_ref());
    let mint = || {
        key.sign(&claims(
            "https://ci.example",
            app.account.as_str(),
            "s",
            now,
        ))
    };
    let token = access_token(&exchange(&app, WORKSPACE_TOKEN, &mint(), Some(&client_id)).await);
    assert_eq!(workspace_me(&app, &token).await.status, 200);
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("{}/one", sp_policies(&app, &sp_id)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(workspace_me(&app, &token).await.status, 401);
    // With a policy again, a new exchange works, until the principal is deactivated.
    create_policy(
        &app,
        &format!("{}?policy_id=two", sp_policies(&app, &sp_id)),
        policy("two"),
    )
    .await;
    let token = access_token(&exchange(&app, WORKSPACE_TOKEN, &mint(), Some(&client_id)).await);
    assert_eq!(workspace_me(&app, &token).await.status, 200);
    app.patch_ops(
        &format!("/ServicePrincipals/{sp_id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    assert_eq!(workspace_me(&app, &token).await.status, 401);
}

#[tokio::test]
async fn a_jwt_exchanged_on_one_node_is_a_replay_on_the_other_and_a_deletion_stops_tokens_on_both()
{
    let (app, other) = crate::multi_node::two_nodes().await;
    let key = TestKey::rsa("rsa-1");
    let (sp_id, client_id) = service_principal(&app, "ci").await;
    let made = call(
        &app,
        Method::POST,
        &format!("{}?policy_id=ci", sp_policies(&app, &sp_id)),
        Some(&app.token),
        Some(
            json!({"oidc_policy": {"issuer": "https://ci.example", "subject": "s",
                                    "jwks_json": json!({"keys": [key.jwk()]}).to_string()}}),
        ),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let now = now_seconds(&SystemClock);
    let jwt = key.sign(&claims(
        "https://ci.example",
        app.account.as_str(),
        "s",
        now,
    ));
    let on_other = |jwt: &str| {
        let request = app
            .client
            .post(format!("{}{WORKSPACE_TOKEN}", other.address))
            .form(&[
                ("grant_type", EXCHANGE),
                ("subject_token", jwt),
                ("subject_token_type", JWT_TYPE),
                ("client_id", client_id.as_str()),
            ]);
        async move { read(request.send().await.expect("sent")).await }
    };
    // Exchanged on the first node; the second knows it was, from the database.
    let token = access_token(&exchange(&app, WORKSPACE_TOKEN, &jwt, Some(&client_id)).await);
    oauth_error(&on_other(&jwt).await, 400, "invalid_grant");
    // A fresh JWT exchanged on the second node works on both.
    let fresh = key.sign(&claims(
        "https://ci.example",
        app.account.as_str(),
        "s",
        now,
    ));
    let from_other = access_token(&on_other(&fresh).await);
    assert_eq!(workspace_me(&app, &from_other).await.status, 200);
    assert_eq!(other.me_status(&app, &token, None).await, 200);
    // The policy deleted on the first node: both tokens are refused on both nodes.
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("{}/ci", sp_policies(&app, &sp_id)),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let change = crate::multi_node::change_token(&deleted);
    for token in [&token, &from_other] {
        assert_eq!(workspace_me(&app, token).await.status, 401);
        assert_eq!(other.me_status(&app, token, Some(&change)).await, 401);
    }
}

/// A policy's issuer is an account admin's text: the server must not become their way into
/// its own network. An issuer at a loopback address, written as one or as a name that
/// resolves to one, is never connected to unless the deployment allows loopback issuers; the
/// exchange fails as an issuer that cannot be fetched. A listener on that address counts the
/// connections, and with loopback allowed it does see one (so its zero is not vacuous).
#[tokio::test]
async fn an_issuer_at_an_internal_address_is_never_connected_to() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = spawn_app_with_clock(Arc::clone(&clock)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let key = TestKey::rsa("rsa-internal");
    let now = now_seconds(clock.as_ref());
    let attempt = |issuer: String, name: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            let (sp_id, client_id) = service_principal(app, name).await;
            create_policy(
                app,
                &sp_policies(app, &sp_id),
                json!({"oidc_policy": {"issuer": issuer, "audiences": ["scimitar"], "subject": "job"}}),
            )
            .await;
            let jwt = key.sign(&claims(&issuer, "scimitar", "job", now));
            exchange(app, WORKSPACE_TOKEN, &jwt, Some(&client_id)).await
        }
    };
    for (issuer, name) in [
        (format!("https://127.0.0.1:{port}"), "by-address"),
        (format!("https://localhost:{port}"), "by-name"),
        (format!("https://[::ffff:127.0.0.1]:{port}"), "mapped"),
    ] {
        let reply = attempt(issuer.clone(), name).await;
        oauth_error(&reply, 400, "invalid_grant");
        assert_eq!(
            connections.load(Ordering::SeqCst),
            0,
            "{issuer} was connected to"
        );
    }
    // Allowed, the same kind of issuer is reached (and fails there: the listener speaks no TLS).
    app.services.allow_loopback_http_issuers(true);
    let reply = attempt(format!("https://127.0.0.1:{port}/allowed"), "allowed").await;
    oauth_error(&reply, 400, "invalid_grant");
    assert!(connections.load(Ordering::SeqCst) >= 1);
}
