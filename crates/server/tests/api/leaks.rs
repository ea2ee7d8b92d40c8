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
async fn spawn_app_with_url() -> (TestApp, String) {
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
                    scope: scimitar_domain::credentials::TokenScope::Admin,
                    comment: None,
                    created: scimitar_domain::Timestamp::from_micros(1),
                    expires: Some(scimitar_domain::Timestamp::from_micros(2)),
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
