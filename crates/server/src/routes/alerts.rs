//! Audit alert rules, for an account's admins: `POST /api/2.0/audit/alert-rules` (create; the
//! response shows the webhook secret once, when the server made it), `GET
//! .../alert-rules` (list: the account's rules, then the config file's), and `GET`, `PUT`
//! (replace) and `DELETE .../alert-rules/{id}`. Bodies are [`AlertRuleSpec`]s, refusing unknown
//! fields. Thin: the application authorizes, validates and commits (`scimitar_app::alerts`);
//! errors come back in Databricks' shape.

use crate::context::DatabricksContext;
use crate::error::DatabricksResult;
use crate::routes::{json_request, method_not_allowed};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use scimitar_app::alerts::AlertRuleSpec;
use serde_json::json;

/// The largest rule body: a name, a URL, a filter, a secret.
pub const MAX_ALERT_RULE_BODY_BYTES: usize = 16 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/2.0/audit/alert-rules",
            get(list).post(create).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/audit/alert-rules/{id}",
            get(read)
                .put(replace)
                .delete(delete)
                .fallback(method_not_allowed),
        )
}

async fn create(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let spec: AlertRuleSpec = json_request(body, MAX_ALERT_RULE_BODY_BYTES).await?;
    let created = state
        .services
        .create_alert_rule(&context.actor, spec)
        .await?;
    Ok(Json(created.to_json()).into_response())
}

async fn list(context: DatabricksContext, State(state): State<AppState>) -> DatabricksResult {
    let rules = state
        .services
        .list_alert_rules(&context.actor, &state.alerts.rules)
        .await?;
    let rules: Vec<_> = rules.iter().map(|rule| rule.to_json()).collect();
    Ok(Json(json!({ "rules": rules })).into_response())
}

async fn read(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> DatabricksResult {
    let rule = state
        .services
        .get_alert_rule(&context.actor, &id, &state.alerts.rules)
        .await?;
    Ok(Json(rule.to_json()).into_response())
}

async fn replace(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> DatabricksResult {
    let spec: AlertRuleSpec = json_request(body, MAX_ALERT_RULE_BODY_BYTES).await?;
    let rule = state
        .services
        .update_alert_rule(&context.actor, &id, spec)
        .await?;
    Ok(Json(rule.to_json()).into_response())
}

async fn delete(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> DatabricksResult {
    state
        .services
        .delete_alert_rule(&context.actor, &id)
        .await?;
    Ok(Json(json!({})).into_response())
}
