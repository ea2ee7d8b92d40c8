//! The audit trail's tamper evidence, for an account's admins: `GET /api/2.0/audit/checkpoint`
//! (the C2SP signed note of the trail's size and root, `text/plain; charset=utf-8`),
//! `GET .../audit/verifier-key` (the key an auditor keeps to check checkpoints), and the
//! proofs `GET .../audit/proof/inclusion?seq=N&size=M` and
//! `GET .../audit/proof/consistency?from=M&to=N` (JSON, hashes in hex), which an auditor
//! checks offline with `scimitar-audit`; and `GET .../audit/events` (filters `start_time`,
//! `end_time` in RFC 3339, `actor`, `action` or `action_name`, `service_name`, `target`,
//! `result` (`success`, `failure`), `status_code`; `page_token`, `limit`), the events, refusals
//! included, as Databricks `system.access.audit` rows (`docs/design/audit.md`). Thin: the application
//! authorizes and computes (`scimitar_app::audit`).

use crate::context::DatabricksContext;
use crate::error::DatabricksResult;
use crate::routes::method_not_allowed;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use scimitar_app::audit::EventQuery;
use scimitar_domain::{ScimError, Timestamp};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/2.0/audit/events",
            get(events).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/audit/checkpoint",
            get(checkpoint).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/audit/verifier-key",
            get(verifier_key).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/audit/proof/inclusion",
            get(inclusion).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/audit/proof/consistency",
            get(consistency).fallback(method_not_allowed),
        )
}

/// Signed notes are text; C2SP asks that a checkpoint be cached only briefly, and a private
/// one (it is an account's, behind its admins' credentials) not at all by shared caches.
fn note(text: String) -> axum::response::Response {
    (
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (CACHE_CONTROL, "private, no-store"),
        ],
        text,
    )
        .into_response()
}

async fn checkpoint(context: DatabricksContext, State(state): State<AppState>) -> DatabricksResult {
    Ok(note(state.services.audit_checkpoint(&context.actor).await?))
}

async fn verifier_key(
    context: DatabricksContext,
    State(state): State<AppState>,
) -> DatabricksResult {
    let key = state.services.audit_verifier_key(&context.actor).await?;
    Ok(note(format!("{key}\n")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    seq: u64,
    size: u64,
}

async fn inclusion(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<InclusionQuery>,
) -> DatabricksResult {
    let proof = state
        .services
        .audit_inclusion_proof(&context.actor, query.seq, query.size)
        .await?;
    Ok(Json(proof).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

async fn consistency(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<ConsistencyQuery>,
) -> DatabricksResult {
    let proof = state
        .services
        .audit_consistency_proof(&context.actor, query.from, query.to)
        .await?;
    Ok(Json(proof).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    start_time: Option<String>,
    end_time: Option<String>,
    actor: Option<String>,
    /// `action` and `action_name` are the same filter (the column's name, and the short one).
    action: Option<String>,
    action_name: Option<String>,
    service_name: Option<String>,
    target: Option<String>,
    result: Option<String>,
    status_code: Option<u16>,
    page_token: Option<String>,
    limit: Option<usize>,
}

/// The default page size of the events API.
const DEFAULT_EVENTS_PAGE: usize = 100;

fn time(name: &str, text: Option<String>) -> Result<Option<Timestamp>, ScimError> {
    text.map(|text| {
        Timestamp::parse_rfc3339(&text).ok_or_else(|| {
            ScimError::invalid_value(format!("{name}: {text:?} is not an RFC 3339 time"))
        })
    })
    .transpose()
}

async fn events(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
) -> DatabricksResult {
    let after = match query.page_token.as_deref() {
        None => 0,
        Some(token) => token.parse().map_err(|_| {
            ScimError::invalid_value(format!("page_token: {token:?} is not one this API gave"))
        })?,
    };
    if let Some(result) = query.result.as_deref() {
        if !["success", "failure"].contains(&result) {
            return Err(ScimError::invalid_value("result: must be success or failure").into());
        }
    }
    let action = match (query.action, query.action_name) {
        (Some(action), Some(name)) if action != name => {
            return Err(ScimError::invalid_value(
                "action and action_name are the same filter: give one, or the same value",
            )
            .into())
        }
        (action, name) => action.or(name),
    };
    let query = EventQuery {
        start_time: time("start_time", query.start_time)?,
        end_time: time("end_time", query.end_time)?,
        actor: query.actor,
        action,
        service: query.service_name,
        target: query.target,
        result: query.result,
        status_code: query.status_code,
        after,
        limit: query.limit.unwrap_or(DEFAULT_EVENTS_PAGE),
    };
    let page = state.services.audit_events(&context.actor, &query).await?;
    Ok(Json(page).into_response())
}
