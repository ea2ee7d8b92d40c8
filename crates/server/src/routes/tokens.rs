//! The Databricks token APIs of a workspace, as the SDK's `w.tokens`, `w.token_management` and
//! `w.workspace_conf` call them: `POST /api/2.0/token/create`, `GET .../token/list`,
//! `POST .../token/delete`; `GET /api/2.0/token-management/tokens`, `GET` and `DELETE
//! .../tokens/{token_id}`, `POST .../on-behalf-of/tokens`; `GET` and `PATCH
//! /api/2.0/workspace-conf`; and Scimitar's rotation, `POST /api/2.0/token/rotate` and
//! `POST /api/2.0/token-management/tokens/{token_id}/rotate`. Thin: bodies are read into their
//! wire types (kept here, beside the only routes that read them), the application decides and
//! commits (`scimitar_app::tokens`), errors come back in Databricks' shape.
//!
//! Unlike the Unity Catalog bodies, these refuse fields they do not know: the SDK sends only
//! the ones below, and a misspelt `lifetime_secs` must not silently make a token that lives
//! two years.

use crate::context::DatabricksContext;
use crate::error::DatabricksResult;
use crate::routes::{json_body, json_request, method_not_allowed, wire};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use scimitar_app::TokenRequest;
use scimitar_domain::ScimError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The largest body of these APIs: a comment, a lifetime, a few scopes or settings.
pub const MAX_TOKEN_BODY_BYTES: usize = 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/2.0/token/create",
            post(create).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/token/list",
            get(list).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/token/delete",
            post(delete).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/token/rotate",
            post(rotate).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/token-management/tokens",
            get(manage_list).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/token-management/tokens/{token_id}",
            get(manage_get)
                .delete(manage_delete)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/token-management/tokens/{token_id}/rotate",
            post(manage_rotate).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/token-management/on-behalf-of/tokens",
            post(on_behalf_of).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/workspace-conf",
            get(conf_get).patch(conf_set).fallback(method_not_allowed),
        )
}

/// `POST /api/2.0/token/create`. (`autoscope_enabled` is accepted and has no effect.)
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    comment: Option<String>,
    lifetime_seconds: Option<i64>,
    scopes: Option<Vec<String>>,
    #[allow(dead_code)]
    autoscope_enabled: Option<bool>,
}

/// `POST /api/2.0/token/delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenIdBody {
    token_id: Option<String>,
}

/// `POST /api/2.0/token/rotate`, and the token management API's rotation (whose path names
/// the token, so its body may not).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    token_id: Option<String>,
    lifetime_seconds: Option<i64>,
}

/// `POST /api/2.0/token-management/on-behalf-of/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnBehalfOfBody {
    application_id: Option<String>,
    comment: Option<String>,
    lifetime_seconds: Option<i64>,
    scopes: Option<Vec<String>>,
    #[allow(dead_code)]
    autoscope_enabled: Option<bool>,
}

fn required(value: Option<String>, name: &str) -> Result<String, ScimError> {
    value
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value(format!("`{name}` is required")))
}

async fn create(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: CreateBody = json_request(body, MAX_TOKEN_BODY_BYTES).await?;
    let request = TokenRequest {
        lifetime_seconds: body.lifetime_seconds,
        comment: body.comment,
        scopes: body.scopes.unwrap_or_default(),
    };
    let issued = state
        .services
        .create_personal_token(&context.actor, &request)
        .await?;
    Ok(Json(issued.to_json()).into_response())
}

async fn list(context: DatabricksContext, State(state): State<AppState>) -> DatabricksResult {
    let tokens = state.services.list_personal_tokens(&context.actor).await?;
    Ok(Json(tokens).into_response())
}

async fn delete(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: TokenIdBody = json_request(body, MAX_TOKEN_BODY_BYTES).await?;
    let id = required(body.token_id, "token_id")?;
    state
        .services
        .delete_personal_token(&context.actor, &id)
        .await?;
    Ok(Json(json!({})).into_response())
}

async fn rotate(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: RotateBody = json_request(body, MAX_TOKEN_BODY_BYTES).await?;
    let id = required(body.token_id, "token_id")?;
    let issued = state
        .services
        .rotate_personal_token(&context.actor, &id, body.lifetime_seconds)
        .await?;
    Ok(Json(issued.to_json()).into_response())
}

async fn manage_list(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> DatabricksResult {
    let admin = state.services.authorize_token_admin(&context.actor).await?;
    let tokens = state
        .services
        .manage_list_tokens(
            &admin,
            query.get("created_by_id").map(String::as_str),
            query.get("created_by_username").map(String::as_str),
        )
        .await?;
    Ok(Json(tokens).into_response())
}

async fn manage_get(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
) -> DatabricksResult {
    let admin = state.services.authorize_token_admin(&context.actor).await?;
    let token = state.services.manage_get_token(&admin, &token_id).await?;
    Ok(Json(token).into_response())
}

async fn manage_delete(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
) -> DatabricksResult {
    let admin = state.services.authorize_token_admin(&context.actor).await?;
    state
        .services
        .manage_delete_token(&admin, &token_id)
        .await?;
    Ok(Json(json!({})).into_response())
}

async fn manage_rotate(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(token_id): Path<String>,
    body: Body,
) -> DatabricksResult {
    let body: RotateBody = optional_body(body).await?;
    if body.token_id.as_ref().is_some_and(|id| *id != token_id) {
        return Err(
            ScimError::invalid_value("`token_id` differs from the token in the path").into(),
        );
    }
    let admin = state.services.authorize_token_admin(&context.actor).await?;
    let issued = state
        .services
        .manage_rotate_token(&admin, &token_id, body.lifetime_seconds)
        .await?;
    Ok(Json(issued.to_json()).into_response())
}

async fn on_behalf_of(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: OnBehalfOfBody = json_request(body, MAX_TOKEN_BODY_BYTES).await?;
    let application_id = required(body.application_id, "application_id")?;
    let request = TokenRequest {
        lifetime_seconds: body.lifetime_seconds,
        comment: body.comment,
        scopes: body.scopes.unwrap_or_default(),
    };
    let admin = state.services.authorize_token_admin(&context.actor).await?;
    let issued = state
        .services
        .create_on_behalf_of(&admin, &application_id, &request)
        .await?;
    let answer = state.services.issued_with_management_info(&issued)?;
    Ok(Json(answer).into_response())
}

/// A body that may be empty (a rotation asking for nothing but a new secret).
async fn optional_body(body: Body) -> Result<RotateBody, ScimError> {
    let bytes = axum::body::to_bytes(body, MAX_TOKEN_BODY_BYTES)
        .await
        .map_err(|_| {
            ScimError::PayloadTooLarge(format!(
                "the request body is larger than {MAX_TOKEN_BODY_BYTES} bytes"
            ))
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(RotateBody {
            token_id: None,
            lifetime_seconds: None,
        });
    }
    json_body(Body::from(bytes), MAX_TOKEN_BODY_BYTES)
        .await
        .map_err(|error| error.0)
        .and_then(wire::from_object)
}

/// `GET /api/2.0/workspace-conf?keys=a,b`.
async fn conf_get(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> DatabricksResult {
    let keys: Vec<String> = query
        .get("keys")
        .map(|keys| {
            keys.split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let answer = state.services.workspace_conf(&context.actor, &keys).await?;
    Ok(Json(answer).into_response())
}

/// `PATCH /api/2.0/workspace-conf`: a flat object of strings, as Databricks takes it.
async fn conf_set(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let Value::Object(fields) = json_body(body, MAX_TOKEN_BODY_BYTES).await? else {
        return Err(ScimError::invalid_value("the request body must be a JSON object").into());
    };
    let mut values = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        let Value::String(value) = value else {
            return Err(ScimError::invalid_value(format!(
                "{key:?}: the value must be a string, as workspace-conf values are (\"true\", \"90\")"
            ))
            .into());
        };
        values.push((key, value));
    }
    state
        .services
        .set_workspace_conf(&context.actor, values)
        .await?;
    Ok(Json(json!({})).into_response())
}
