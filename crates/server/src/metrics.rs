//! `GET /metrics`: Prometheus metrics of this node, in the text exposition format written by
//! the `prometheus-client` crate. Requests are counted and timed by route template (never by
//! raw path, whose ids would make a series per resource) and status; error responses by their
//! stable code (`unavailable` counts database outages); the database pool, the access engine's
//! size and how fresh its view of the access log is are read at scrape time.
//!
//! The metrics span every account of the deployment, so they are for its operator, not for any
//! account's admin: the endpoint answers only a bearer token whose SHA-256 digest is configured
//! (`metrics_token_sha256`), and does not exist without one.

use crate::AppState;
use axum::extract::{MatchedPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Duration;

/// The code of the error a response carries, put there where errors become responses, so that
/// metrics count errors by kind without reading bodies.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// The route a request matched, as a label: its template, or `(no route)`. The template is
/// axum's own shared string, so labelling a request copies no text.
#[derive(Debug, Clone)]
pub enum RouteLabel {
    Template(MatchedPath),
    Unmatched,
}

impl RouteLabel {
    pub fn as_str(&self) -> &str {
        match self {
            RouteLabel::Template(matched) => matched.as_str(),
            RouteLabel::Unmatched => "(no route)",
        }
    }
}

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RouteLabel {}

impl std::hash::Hash for RouteLabel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// A request method as a label; cloning a standard method copies no text.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct MethodLabel(Method);

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        std::fmt::Write::write_str(encoder, self.0.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: MethodLabel,
    route: RouteLabel,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: MethodLabel,
    route: RouteLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    code: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn duration_histogram() -> Histogram {
    // 0.5 ms to about 16 s: a GET by id is well under a millisecond, a large Bulk seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The node's metrics and the digest of the token that may read them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    errors: Family<ErrorLabels, Counter>,
    pool_max: Gauge,
    pool_open: Gauge,
    pool_idle: Gauge,
    pool_waiting: Gauge,
    engine_accounts: Gauge,
    engine_principals: Gauge,
    engine_memberships: Gauge,
    engine_securables: Gauge,
    engine_cached_principals: Gauge,
    follower_lag: FloatGauge,
    /// Refused requests by what became of them (`scimitar_app::audit_refusals`).
    audit_refusals: Family<RefusalLabels, Gauge>,
    scrape_token_digest: OnceLock<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    outcome: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("scimitar");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head, by method and route template",
            durations.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "http_errors",
            "Error responses by error code (unavailable: the database could not serve; \
             outcomeUnknown: a commit's answer was lost; internal: a server fault)",
            errors.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let pool_max = gauge(
            &mut registry,
            "database_pool_max_connections",
            "The most connections the PostgreSQL pool opens",
        );
        let pool_open = gauge(
            &mut registry,
            "database_pool_open_connections",
            "PostgreSQL connections open, in use or idle",
        );
        let pool_idle = gauge(
            &mut registry,
            "database_pool_idle_connections",
            "PostgreSQL connections open and idle",
        );
        let pool_waiting = gauge(
            &mut registry,
            "database_pool_waiting_requests",
            "Requests waiting for a PostgreSQL connection",
        );
        let engine_accounts = gauge(
            &mut registry,
            "engine_accounts",
            "Accounts the access engine holds a model of",
        );
        let engine_principals = gauge(
            &mut registry,
            "engine_principals",
            "Principal slots in the access engine (users, groups, service principals)",
        );
        let engine_memberships = gauge(
            &mut registry,
            "engine_memberships",
            "Direct group memberships in the access engine",
        );
        let engine_securables = gauge(
            &mut registry,
            "engine_securables",
            "Unity Catalog securable slots in the access engine",
        );
        let engine_cached_principals = gauge(
            &mut registry,
            "engine_cached_principals",
            "Principal documents cached for reads",
        );
        let follower_lag = FloatGauge::default();
        registry.register(
            "access_log_follower_lag_seconds",
            "Seconds since this node last read the access log to its end: under the follower's \
             100 ms interval while the database answers, growing while it does not",
            follower_lag.clone(),
        );
        let audit_refusals = Family::<RefusalLabels, Gauge>::default();
        registry.register(
            "audit_refusals",
            "Refused requests since the node started, by what became of them: recorded in the \
             audit trail, or dropped (queue_full, over_budget: the account's refusals per \
             minute, unattributed: no account) or lost (write_failed)",
            audit_refusals.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            errors,
            pool_max,
            pool_open,
            pool_idle,
            pool_waiting,
            engine_accounts,
            engine_principals,
            engine_memberships,
            engine_securables,
            engine_cached_principals,
            follower_lag,
            audit_refusals,
            scrape_token_digest: OnceLock::new(),
        }
    }
}

impl Metrics {
    /// Offers `/metrics` to the holder of the token with this lowercase hex SHA-256 digest.
    pub fn allow_scrapes_by(&self, token_digest: String) {
        let _ = self.scrape_token_digest.set(token_digest);
    }

    /// Counts and times one answered request by its route template (`/scim/v2/{resource}/{id}`,
    /// never the raw path, whose ids would make a series per resource), and its error by code.
    pub fn observe(
        &self,
        method: &Method,
        route: &RouteLabel,
        response: &Response,
        elapsed: Duration,
    ) {
        let route_labels = RouteLabels {
            method: MethodLabel(method.clone()),
            route: route.clone(),
        };
        self.durations
            .get_or_create(&route_labels)
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method: route_labels.method,
                route: route_labels.route,
                status: response.status().as_u16(),
            })
            .inc();
        if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
            self.errors.get_or_create(&ErrorLabels { code }).inc();
        }
    }

    /// The exposition, with the gauges read now.
    fn render(&self, state: &AppState) -> String {
        let to_gauge = |count: usize| i64::try_from(count).unwrap_or(i64::MAX);
        if let Some(pool) = state.services.pool_status() {
            self.pool_max.set(to_gauge(pool.max_size));
            self.pool_open.set(to_gauge(pool.open));
            self.pool_idle.set(to_gauge(pool.idle));
            self.pool_waiting.set(to_gauge(pool.waiting));
        }
        let engine = state.services.access();
        let size = engine.size();
        self.engine_accounts.set(to_gauge(size.accounts));
        self.engine_principals.set(to_gauge(size.model.principals));
        self.engine_memberships
            .set(to_gauge(size.model.memberships));
        self.engine_securables.set(to_gauge(size.model.securables));
        self.engine_cached_principals
            .set(to_gauge(size.cached_principals));
        if let Some(lag) = engine.since_caught_up() {
            self.follower_lag.set(lag.as_secs_f64());
        }
        let refusals = state.refusals.counters();
        for (outcome, count) in [
            ("recorded", &refusals.recorded),
            ("queue_full", &refusals.dropped_queue_full),
            ("over_budget", &refusals.dropped_over_budget),
            ("unattributed", &refusals.dropped_unattributed),
            ("write_failed", &refusals.write_failures),
        ] {
            let count = count.load(std::sync::atomic::Ordering::Relaxed);
            self.audit_refusals
                .get_or_create(&RefusalLabels { outcome })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// `GET /metrics`, for the holder of the scrape token only.
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = state.metrics.scrape_token_digest.get() else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off: configure metrics_token_sha256 to offer them\n",
        )
            .into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(scimitar_domain::credentials::token_digest);
    if !presented.is_some_and(|digest| same_digest(&digest, expected)) {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            "the metrics scrape token is missing or wrong\n",
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scimitar-metrics\""),
        );
        return response;
    }
    let mut response = state.metrics.render(&state).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Compares two digests in time that does not depend on where they differ.
fn same_digest(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// Parses a configured scrape token digest: 64 hex digits, any case.
pub fn parse_token_digest(text: &str) -> Result<String, String> {
    let digest = text.trim().to_ascii_lowercase();
    if digest.len() == 64 && digest.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(digest)
    } else {
        Err(
            "metrics_token_sha256 must be the SHA-256 digest of the scrape token, as 64 hex \
             digits (printf %s \"$TOKEN\" | sha256sum)"
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_scrape_token_digest_is_64_hex_digits() {
        let digest = "AB".repeat(32);
        assert_eq!(parse_token_digest(&digest).unwrap(), "ab".repeat(32));
        assert!(parse_token_digest("abc").is_err());
        assert!(parse_token_digest(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        assert!(same_digest("abcd", "abcd"));
        assert!(!same_digest("abcd", "abce"));
        assert!(!same_digest("abcd", "abc"));
    }
}
