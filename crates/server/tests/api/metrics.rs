//! `GET /metrics`: Prometheus metrics for the deployment's operator, behind a scrape token
//! whose digest is configured, counting requests by route template and status, errors by code,
//! and showing the engine's size, the follower's freshness and (PostgreSQL) the pool.

use crate::support::*;
use scimitar_domain::credentials::token_digest;
use scimitar_server::Application;
use tokio::sync::oneshot;

const SCRAPE_TOKEN: &str = "scrape-token-for-tests";

struct MetricsApp {
    address: String,
    admin_token: String,
    client: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
    _database: TestDatabase,
}

/// An app offering metrics to [`SCRAPE_TOKEN`] when `offered`.
async fn app(offered: bool) -> MetricsApp {
    let (database, url) = TestDatabase::fresh().await;
    let (services, admin_token, _) = bootstrapped(&url).await;
    let mut application = Application::bind("127.0.0.1:0", services).await.unwrap();
    if offered {
        application = application.offer_metrics_to(token_digest(SCRAPE_TOKEN));
    }
    let address = format!("http://{}", application.local_addr().unwrap());
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    MetricsApp {
        address,
        admin_token,
        client: reqwest::Client::new(),
        _shutdown: shutdown,
        _database: database,
    }
}

async fn scrape(app: &MetricsApp, token: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(format!("{}/metrics", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The value of the sample whose line starts with `series` (name and labels, exactly).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.split(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_errors_by_code() {
    let app = app(true).await;
    let me = app
        .client
        .get(format!("{}{SCIM}/Me", app.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    let id = me.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        let reply = app
            .client
            .get(format!("{}{SCIM}/Users/{id}", app.address))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    let missing = app
        .client
        .get(format!("{}{SCIM}/Users/no-such-user", app.address))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let (status, text) = scrape(&app, Some(SCRAPE_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    // By template, so ids never become series of their own.
    assert_eq!(
        sample(
            &text,
            r#"scimitar_http_requests_total{method="GET",route="/scim/v2/{resource}/{id}",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(!text.contains(&id), "a resource id became a label: {text}");
    assert_eq!(
        sample(
            &text,
            r#"scimitar_http_request_duration_seconds_count{method="GET",route="/scim/v2/{resource}/{id}"}"#
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"scimitar_http_errors_total{code="notFound"}"#),
        Some(1.0),
        "{text}"
    );
    // The bootstrap's admin user and its two system groups, at least.
    assert!(
        sample(&text, "scimitar_engine_principals").is_some_and(|count| count >= 3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "scimitar_engine_accounts"),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "scimitar_access_log_follower_lag_seconds").is_some(),
        "{text}"
    );
    let on_postgres = std::env::var("SCIMITAR_TEST_BACKEND").as_deref() == Ok("postgres");
    let pool = sample(&text, "scimitar_database_pool_max_connections");
    if on_postgres {
        assert!(pool.is_some_and(|size| size >= 1.0), "{text}");
    }
}

#[tokio::test]
async fn metrics_answer_only_the_scrape_token_and_only_when_configured() {
    let app = app(true).await;
    for token in [None, Some("wrong"), Some(app.admin_token.as_str())] {
        let (status, text) = scrape(&app, token).await;
        assert_eq!(status, 401, "{token:?}: {text}");
        assert!(!text.contains("scimitar_http"), "{text}");
    }
    let off = self::app(false).await;
    let (status, _) = scrape(&off, Some(SCRAPE_TOKEN)).await;
    assert_eq!(status, 404);
}
