//! What the server must not tell: that a refused token was once valid, whether a securable
//! the caller may not see exists, another principal's statement results, another account's
//! activity, and a Host header's choice of base URL.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

/// A response read as bytes, for comparing two answers exactly.
async fn raw(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// An app, and the URL of its database, for tests that write what no API makes (an expired
/// token) through a second store on the same database.
pub(crate) async fn spawn_app_with_url() -> (TestApp, String) {
    let (database, url) = TestDatabase::fresh().await;
    (spawn_app_on(database, &url).await, url)
}

#[tokio::test]
async fn every_refused_token_gets_the_same_401_whatever_the_reason() {
    let (app, url) = spawn_app_with_url().await;
    // A token that expired: no API makes one, so it is written to the database directly.
    let admin_id = app.get("/Me").await.id();
    let store =
        scimitar_store::open_with(&url, &scimitar_store::StoreOptions { max_connections: 1 })
            .await
            .expect("a second store");
    let expired_secret = format!(
        "{}{}",
        scimitar_domain::credentials::TOKEN_PREFIX,
        "e".repeat(64)
    );
    store
        .apply(
            &app.account,
            scimitar_store::Change::CreateToken {
                token: scimitar_domain::credentials::Token {
                    id: "00000000-0000-4000-8000-00000000e001".into(),
                    account: app.account.clone(),
                    principal: scimitar_domain::PrincipalId::new(&admin_id),
                    scope: scimitar_domain::credentials::TokenScope::AllApis,
                    comment: None,
                    created: scimitar_domain::Timestamp::from_micros(1),
                    expires: Some(scimitar_domain::Timestamp::from_micros(2)),
                    workspace: None,
                    created_by: None,
                },
                digest: scimitar_domain::credentials::token_digest(&expired_secret),
            },
        )
        .await
        .expect("the expired token is written");
    // A token whose principal is deactivated.
    let alice = app.create_user("alice@example.com").await;
    let alice_id = str_of(&alice, "id").to_string();
    let deactivated_secret = app.token_for(&alice_id).await;
    let reply = app
        .patch_ops(
            &format!("/Users/{alice_id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let unknown_secret = format!(
        "{}{}",
        scimitar_domain::credentials::TOKEN_PREFIX,
        "0".repeat(64)
    );

    for path in [
        "/scim/v2/Users",
        "/api/2.0/preview/scim/v2/Me",
        "/api/2.1/unity-catalog/catalogs",
        "/api/2.0/sql/statements/some-id",
    ] {
        let url = format!("{}{path}", app.address);
        let send = |authorization: Option<String>| {
            let mut request = app.client.request(Method::GET, &url);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            raw(request)
        };
        let expired = send(Some(format!("Bearer {expired_secret}"))).await;
        let deactivated = send(Some(format!("Bearer {deactivated_secret}"))).await;
        let unknown = send(Some(format!("Bearer {unknown_secret}"))).await;
        let malformed = send(Some("Bearer".to_string())).await;
        let other_scheme = send(Some("Basic YWxpY2U6c2VjcmV0".to_string())).await;
        let missing = send(None).await;
        assert_eq!(expired.0, 401, "{path}: {}", expired.1);
        assert!(!expired.1.contains("expire"), "{path}: {}", expired.1);
        for (what, answer) in [
            ("deactivated", &deactivated),
            ("unknown", &unknown),
            ("malformed", &malformed),
            ("another scheme", &other_scheme),
            ("missing", &missing),
        ] {
            assert_eq!(
                answer, &expired,
                "{path}: the {what} token's answer differs"
            );
        }
    }
}

/// A second account in the app's database, made as an operator would (no API makes one),
/// with an admin user; returns the account and a token of that admin.
pub(crate) async fn second_account(
    app: &TestApp,
    url: &str,
) -> (scimitar_domain::AccountId, String) {
    use scimitar_domain::{Principal, PrincipalId, PrincipalKind, Timestamp};
    let store =
        scimitar_store::open_with(url, &scimitar_store::StoreOptions { max_connections: 1 })
            .await
            .expect("a second store");
    let account = scimitar_domain::AccountId::new("00000000-0000-4000-8000-0000000000b2");
    // Newer than the app's own account, which stays the first (the generic mounts' account).
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let now = Timestamp::from_micros(i64::try_from(micros).unwrap() + 1_000_000);
    let principal = |id: &str, kind, attributes: serde_json::Value, system| Principal {
        id: PrincipalId::new(id),
        kind,
        attributes: attributes.as_object().cloned().unwrap_or_default(),
        password_hash: None,
        system,
        created: now,
        last_modified: now,
        version: 1,
    };
    let admins = principal(
        "9100000001",
        PrincipalKind::Group,
        json!({"displayName": "admins"}),
        true,
    );
    let users = principal(
        "9100000002",
        PrincipalKind::Group,
        json!({"displayName": "users"}),
        true,
    );
    let admin = principal(
        "9100000003",
        PrincipalKind::User,
        json!({"userName": "b.admin@example.com", "active": true}),
        false,
    );
    let secret = format!(
        "{}{}",
        scimitar_domain::credentials::TOKEN_PREFIX,
        "b".repeat(64)
    );
    store
        .apply(
            &account,
            scimitar_store::Change::CreateAccount {
                account: scimitar_store::Account {
                    id: account.clone(),
                    name: "second".into(),
                    created: now,
                },
                workspace: scimitar_store::Workspace {
                    id: scimitar_domain::WorkspaceId::new("9100000000"),
                    account: account.clone(),
                    name: "second".into(),
                    created: now,
                    deployment_name: None,
                },
                first_admin: Some(Box::new(scimitar_store::FirstAdmin {
                    group: admins.id.clone(),
                    user: admin,
                    token: Some(scimitar_store::NewToken {
                        digest: scimitar_domain::credentials::token_digest(&secret),
                        token: scimitar_domain::credentials::Token {
                            id: "00000000-0000-4000-8000-0000000000b3".into(),
                            account: account.clone(),
                            principal: PrincipalId::new("9100000003"),
                            scope: scimitar_domain::credentials::TokenScope::AllApis,
                            comment: None,
                            created: now,
                            expires: None,
                            workspace: None,
                            created_by: None,
                        },
                    }),
                })),
                system_groups: vec![admins, users],
                only_if_first: false,
            },
        )
        .await
        .expect("the second account is made");
    // The app reads the new account's part of the access log before its token is used.
    app.services.catch_up().await.expect("caught up");
    (account, secret)
}

/// Runs a statement with `token`; returns its `statement_id`.
async fn run_statement(app: &TestApp, token: &str, statement: &str) -> String {
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
    str_of(&reply.body, "statement_id").to_string()
}

async fn get_statement(app: &TestApp, token: &str, id: &str) -> (u16, String) {
    let (status, body) = raw(app
        .client
        .get(format!("{}/api/2.0/sql/statements/{id}", app.address))
        .bearer_auth(token))
    .await;
    // The unknown id is named in the message; put every id in one place to compare.
    (status, body.replace(id, "ID"))
}

#[tokio::test]
async fn a_statements_result_is_read_only_by_whoever_ran_it_and_the_admins() {
    let (app, url) = spawn_app_with_url().await;
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let alice_token = app.token_for(str_of(&alice, "id")).await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;
    let (_, foreign_token) = second_account(&app, &url).await;
    let admins_statement = run_statement(&app, &app.token, "CREATE CATALOG main").await;
    let alices_statement = run_statement(
        &app,
        &alice_token,
        "SHOW GRANTS `alice@example.com` ON CATALOG main",
    )
    .await;
    let unknown = "01234567-89ab-4def-8123-456789abcdef";

    // Whoever ran a statement reads it; an admin reads anyone's.
    assert_eq!(
        get_statement(&app, &alice_token, &alices_statement).await.0,
        200
    );
    assert_eq!(
        get_statement(&app, &app.token, &alices_statement).await.0,
        200
    );
    assert_eq!(
        get_statement(&app, &app.token, &admins_statement).await.0,
        200
    );

    // Anyone else is answered as for an id that was never issued.
    for (who, token) in [
        ("bob", &bob_token),
        ("another account's admin", &foreign_token),
    ] {
        let never_issued = get_statement(&app, token, unknown).await;
        assert!(never_issued.0 >= 400, "{who}: {never_issued:?}");
        for statement in [&alices_statement, &admins_statement] {
            assert_eq!(
                get_statement(&app, token, statement).await,
                never_issued,
                "{who} reading {statement}"
            );
        }
    }
    let alice_reading_the_admins = get_statement(&app, &alice_token, &admins_statement).await;
    assert_eq!(
        alice_reading_the_admins,
        get_statement(&app, &alice_token, unknown).await
    );
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_when_short_and_of_safe_characters() {
    let app = spawn_app().await;
    let echoed = |id: &'static str| {
        let request = app.scim(Method::GET, "/Me").header("x-request-id", id);
        async move {
            let reply = read(request.send().await.expect("sent")).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply
                .header("x-request-id")
                .expect("an id is echoed")
                .to_string()
        }
    };
    assert_eq!(echoed("client-id.1:ok_2").await, "client-id.1:ok_2");
    let too_long: &'static str = "a".repeat(65).leak();
    for refused in [
        "two words",
        "tab\there",
        "\" level=ERROR forged=\"1",
        "percent%0Aencoded",
        too_long,
    ] {
        let used = echoed(refused).await;
        assert_ne!(used, refused);
        assert!(
            !used.is_empty()
                && used.len() <= 64
                && used
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte)),
            "{used:?}"
        );
    }
    let generated_one = echoed("a b").await;
    let generated_two = echoed("a b").await;
    assert_ne!(generated_one, generated_two, "each request gets its own id");
}

/// A server over a fresh database with a public URL configured: its address, admin token,
/// and what keeps it running.
async fn spawn_with_public_url(
    public_url: &str,
) -> (
    String,
    String,
    tokio::sync::oneshot::Sender<()>,
    TestDatabase,
) {
    let (database, url) = TestDatabase::fresh().await;
    let store =
        scimitar_store::open_with(&url, &scimitar_store::StoreOptions { max_connections: 4 })
            .await
            .expect("the store opens");
    let services = scimitar_app::Services::new(
        store,
        std::sync::Arc::new(scimitar_domain::SystemClock),
        std::sync::Arc::new(scimitar_domain::RandomIds),
    );
    let bootstrap = services.bootstrap().await.unwrap().unwrap();
    let public_url = scimitar_server::context::PublicUrl::parse(public_url).unwrap();
    let application = scimitar_server::Application::bind("127.0.0.1:0", services)
        .await
        .unwrap()
        .with_public_url(Some(public_url));
    let address = format!("http://{}", application.local_addr().unwrap());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    (
        address,
        bootstrap.admin_token.expose().to_string(),
        shutdown,
        database,
    )
}

/// Creates a user and a group holding it with a forged `Host` (and forwarding headers);
/// returns the user's `Location`, `meta.location`, the group's member `$ref`, and the
/// `/ServiceProviderConfig` location.
async fn urls_made_for_a_forged_host(address: &str, token: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let send = |method: Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = client
            .request(method, format!("{address}/scim/v2{path}"))
            .bearer_auth(token)
            .header("host", "evil.example")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "evil-forwarded.example");
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { read(request.send().await.expect("sent")).await }
    };
    let user = send(
        Method::POST,
        "/Users",
        Some(json!({"schemas": [USER_SCHEMA], "userName": "hosted@example.com"})),
    )
    .await;
    assert_eq!(user.status, 201, "{}", user.body);
    let group = send(
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Hosted",
                    "members": [{"value": user.id()}]})),
    )
    .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let group = send(Method::GET, &format!("/Groups/{}", group.id()), None).await;
    let config = send(Method::GET, "/ServiceProviderConfig", None).await;
    vec![
        user.header("location").unwrap().to_string(),
        str_of(&user.body["meta"], "location").to_string(),
        str_of(&group.body["members"][0], "$ref").to_string(),
        str_of(&config.body["meta"], "location").to_string(),
    ]
}

#[tokio::test]
async fn a_configured_public_url_makes_every_location_and_ref_whatever_the_host_header() {
    let (address, token, _running, _database) =
        spawn_with_public_url("https://idp.example.com/scimitar/").await;
    for url in urls_made_for_a_forged_host(&address, &token).await {
        assert!(
            url.starts_with("https://idp.example.com/scimitar/scim/v2/"),
            "{url}"
        );
    }
}

#[tokio::test]
async fn without_a_public_url_the_host_is_used_and_forwarding_headers_are_not() {
    let app = spawn_app().await;
    for url in urls_made_for_a_forged_host(&app.address, &app.token).await {
        assert!(url.starts_with("http://evil.example/scim/v2/"), "{url}");
    }
}

/// An answer with the securable's name and any statement id taken out, for comparing the
/// answers about an existing and a missing securable.
fn normalised((status, body): (u16, String), name: &str) -> (u16, String) {
    let body = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(mut value) => {
            if let Some(object) = value.as_object_mut() {
                object.remove("statement_id");
            }
            value.to_string()
        }
        Err(_) => body,
    };
    (status, body.replace(name, "NAME"))
}

#[tokio::test]
async fn a_caller_without_privileges_gets_the_same_answer_for_an_existing_and_a_missing_securable()
{
    let app = spawn_app().await;
    let uc = |path: &str| format!("/api/2.1/unity-catalog{path}");
    let admin_sql = |statement: &'static str| {
        let request = app
            .request(Method::POST, "/api/2.0/sql/statements")
            .json(&json!({"statement": statement, "warehouse_id": "any"}));
        async move {
            let reply = read(request.send().await.expect("sent")).await;
            assert_eq!(reply.body["status"]["state"], "SUCCEEDED", "{}", reply.body);
        }
    };
    // `hidden` exists, with a schema holding two tables; `absent` (the same length) does not.
    admin_sql("CREATE CATALOG hidden").await;
    admin_sql("CREATE SCHEMA hidden.sales").await;
    admin_sql("CREATE TABLE hidden.sales.orders").await;
    admin_sql("CREATE TABLE hidden.sales.refunds").await;
    let alice = app.create_user("alice@example.com").await;
    let alice_token = app.token_for(str_of(&alice, "id")).await;

    let as_alice = |method: Method, path: String, body: Option<serde_json::Value>| {
        let mut request = app
            .client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&alice_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        raw(request)
    };
    let questions: Vec<(&str, Method, &str, Option<serde_json::Value>)> = vec![
        ("GET", Method::GET, "/permissions/catalog/NAME", None),
        ("GET", Method::GET, "/permissions/schema/NAME.sales", None),
        (
            "GET",
            Method::GET,
            "/effective-permissions/schema/NAME.sales",
            None,
        ),
        (
            "GET about itself",
            Method::GET,
            "/effective-permissions/schema/NAME.sales?principal=alice@example.com",
            None,
        ),
        (
            "PATCH",
            Method::PATCH,
            "/permissions/schema/NAME.sales",
            Some(json!({"changes": [{"principal": "alice@example.com", "add": ["SELECT"]}]})),
        ),
        ("GET", Method::GET, "/catalogs/NAME", None),
        ("GET", Method::GET, "/schemas/NAME.sales", None),
        ("list", Method::GET, "/schemas?catalog_name=NAME", None),
        ("DELETE", Method::DELETE, "/schemas/NAME.sales", None),
        ("DELETE", Method::DELETE, "/catalogs/NAME?force=true", None),
        (
            "POST",
            Method::POST,
            "/schemas",
            Some(json!({"catalog_name": "NAME", "name": "sales"})),
        ),
    ];
    for (what, method, path, body) in questions {
        let ask = |name: &str| {
            let body = body
                .as_ref()
                .map(|body| serde_json::from_str(&body.to_string().replace("NAME", name)).unwrap());
            as_alice(method.clone(), uc(&path.replace("NAME", name)), body)
        };
        let existing = normalised(ask("hidden").await, "hidden");
        let missing = normalised(ask("absent").await, "absent");
        assert!(existing.0 >= 400, "{what} {path}: {existing:?}");
        assert_eq!(existing, missing, "{what} {path}");
    }
    for statement in [
        "SHOW GRANTS ON SCHEMA NAME.sales",
        "SHOW GRANTS `alice@example.com` ON SCHEMA NAME.sales",
        "DROP SCHEMA NAME.sales",
        "DROP SCHEMA IF EXISTS NAME.sales",
        "DROP CATALOG NAME",
        "DROP CATALOG NAME CASCADE",
        "ALTER SCHEMA NAME.sales OWNER TO `alice@example.com`",
        "GRANT SELECT ON SCHEMA NAME.sales TO `alice@example.com`",
        "REVOKE SELECT ON SCHEMA NAME.sales FROM `alice@example.com`",
        "CREATE SCHEMA NAME.sales",
        "CREATE TABLE IF NOT EXISTS NAME.sales.orders",
    ] {
        let run = |name: &str| {
            as_alice(
                Method::POST,
                "/api/2.0/sql/statements".to_string(),
                Some(json!({"statement": statement.replace("NAME", name), "warehouse_id": "any"})),
            )
        };
        let existing = normalised(run("hidden").await, "hidden");
        let missing = normalised(run("absent").await, "absent");
        assert!(
            !existing.1.contains("2 object"),
            "{statement}: {existing:?}"
        );
        assert_eq!(existing, missing, "{statement}");
    }
    let check = |name: &str| {
        as_alice(
            Method::GET,
            format!(
                "/api/2.0/access/check?privilege=SELECT&securable_type=SCHEMA&full_name={name}.sales"
            ),
            None,
        )
    };
    let existing = normalised(check("hidden").await, "hidden");
    assert_eq!(
        existing,
        normalised(check("absent").await, "absent"),
        "access check"
    );
    // Nothing was changed by any of it.
    let still = read(
        app.request(
            Method::GET,
            &uc("/tables?catalog_name=hidden&schema_name=sales"),
        )
        .send()
        .await
        .expect("sent"),
    )
    .await;
    assert_eq!(
        still.body["tables"].as_array().map(Vec::len),
        Some(2),
        "{}",
        still.body
    );
}

#[tokio::test]
async fn the_consistency_headers_do_nothing_before_authentication() {
    let app = spawn_app().await;
    app.create_user("someone@example.com").await;
    let beyond = "18446744073709551615";
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("scimitar-read-after", beyond)
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("scimitar-change-token").is_none());
    assert_eq!(health.text().await.unwrap(), "ok");
    for read_after in [beyond, "1", "not-a-number"] {
        let (status, body) = raw(app
            .client
            .get(format!("{}/scim/v2/Users", app.address))
            .header("scimitar-read-after", read_after))
        .await;
        assert_eq!(status, 401, "{read_after}: {body}");
        assert!(!body.contains("change"), "{body}");
    }
    // Authenticated, a token beyond every change is refused without naming the position.
    let reply = read(
        app.scim(Method::GET, "/Users")
            .header("scimitar-read-after", beyond)
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(400, Some("invalidValue"));
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(
        !detail
            .chars()
            .any(|c| c.is_ascii_digit() && !beyond.contains(c)),
        "{detail}"
    );
}

#[tokio::test]
async fn another_accounts_writes_do_not_move_an_accounts_change_tokens() {
    let (app, url) = spawn_app_with_url().await;
    let (other, other_token) = second_account(&app, &url).await;
    let create_in_a = |name: &str| {
        app.scim(Method::POST, "/Users")
            .json(&json!({"schemas": [USER_SCHEMA], "userName": name}))
    };
    let token_of = |reply: &Reply| -> u64 {
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply
            .header("scimitar-change-token")
            .expect("a write answers with a change token")
            .parse()
            .expect("a number")
    };
    let first = token_of(&read(create_in_a("a1@example.com").send().await.unwrap()).await);
    let second = token_of(&read(create_in_a("a2@example.com").send().await.unwrap()).await);
    // The other account writes, through its account mount.
    for index in 0..5 {
        let reply = read(
            app.client
                .post(format!(
                    "{}/api/2.0/accounts/{other}/scim/v2/Users",
                    app.address
                ))
                .bearer_auth(&other_token)
                .json(&json!({"userName": format!("b{index}@example.com")}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let third = token_of(&read(create_in_a("a3@example.com").send().await.unwrap()).await);
    assert!(second > first, "{first} {second}");
    assert_eq!(
        third - second,
        second - first,
        "the same write moves the token as much, whatever another account did"
    );
    // And a token still orders reads after the write it came from.
    let reply = read(
        app.scim(Method::GET, "/Users")
            .header("scimitar-read-after", third.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
