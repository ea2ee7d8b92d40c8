//! The Databricks Workspace API's tree operations: `POST /api/2.0/workspace/mkdirs`,
//! `import` and `delete`, `GET .../get-status` and `.../list`. Thin: the request is read into
//! validated values, [`scimitar_app::workspace_tree`] decides and commits, errors come back in
//! Databricks' shape.

use crate::context::DatabricksContext;
use crate::error::DatabricksResult;
use crate::routes::{json_body, method_not_allowed, MAX_BODY_BYTES};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use scimitar_app::workspace_tree::{self, Imported, WorkspacePath};
use scimitar_domain::ScimError;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/2.0/workspace/mkdirs",
            post(mkdirs).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/workspace/import",
            post(import).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/workspace/delete",
            post(delete).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/workspace/get-status",
            get(status).fallback(method_not_allowed),
        )
        .route(
            "/api/2.0/workspace/list",
            get(list).fallback(method_not_allowed),
        )
}

/// The `path` of a query string or body, parsed.
fn path_of(path: Option<&str>) -> DatabricksResult<WorkspacePath> {
    let path = path.ok_or_else(|| ScimError::invalid_value("path is required"))?;
    Ok(WorkspacePath::parse(path)?)
}

/// A string field of a body, if present.
fn text<'a>(body: &'a Value, name: &str) -> DatabricksResult<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string")).into()),
    }
}

/// A boolean field of a body, false when absent.
fn flag(body: &Value, name: &str) -> DatabricksResult<bool> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(ScimError::invalid_value(format!("{name} must be true or false")).into()),
    }
}

async fn status(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> DatabricksResult {
    let path = path_of(query.get("path").map(String::as_str))?;
    let info = workspace_tree::status(&state.services, &context.actor, &path).await?;
    Ok(Json(info).into_response())
}

async fn list(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> DatabricksResult {
    let path = path_of(query.get("path").map(String::as_str))?;
    let listing = workspace_tree::list(&state.services, &context.actor, &path).await?;
    Ok(Json(listing).into_response())
}

async fn mkdirs(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body = json_body(body, MAX_BODY_BYTES).await?;
    let path = path_of(text(&body, "path")?)?;
    workspace_tree::mkdirs(&state.services, &context.actor, &path).await?;
    Ok(Json(json!({})).into_response())
}

async fn import(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body = json_body(body, MAX_BODY_BYTES).await?;
    let path = path_of(text(&body, "path")?)?;
    let imported = Imported::from_request(text(&body, "format")?, text(&body, "language")?)?;
    // The content is not kept (see `workspace_tree`), but a malformed field is still refused.
    text(&body, "content")?;
    let overwrite = flag(&body, "overwrite")?;
    workspace_tree::import(&state.services, &context.actor, &path, imported, overwrite).await?;
    Ok(Json(json!({})).into_response())
}

async fn delete(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body = json_body(body, MAX_BODY_BYTES).await?;
    let path = path_of(text(&body, "path")?)?;
    let recursive = flag(&body, "recursive")?;
    workspace_tree::delete(&state.services, &context.actor, &path, recursive).await?;
    Ok(Json(json!({})).into_response())
}
