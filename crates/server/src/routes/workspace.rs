//! The Databricks Workspace API's tree operations: `POST /api/2.0/workspace/mkdirs`,
//! `import` and `delete`, `GET .../get-status` and `.../list`. Thin: the request is read into
//! validated values, [`scimitar_app::workspace_tree`] decides and commits, errors come back in
//! Databricks' shape.

use crate::context::DatabricksContext;
use crate::error::DatabricksResult;
use crate::routes::wire::{DeleteBody, ImportBody, MkdirsBody, WorkspaceDelete, WorkspaceImport};
use crate::routes::{
    json_request, method_not_allowed, MAX_WORKSPACE_BODY_BYTES, MAX_WORKSPACE_IMPORT_BODY_BYTES,
};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use scimitar_app::workspace_tree::{self, WorkspacePath};
use scimitar_domain::ScimError;
use serde_json::json;
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

/// The `path` of a query string, parsed.
fn path_of(path: Option<&str>) -> DatabricksResult<WorkspacePath> {
    let path = path.ok_or_else(|| ScimError::invalid_value("`path` is required"))?;
    Ok(WorkspacePath::parse(path)?)
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
    let body: MkdirsBody = json_request(body, MAX_WORKSPACE_BODY_BYTES).await?;
    let path = WorkspacePath::try_from(body)?;
    workspace_tree::mkdirs(&state.services, &context.actor, &path).await?;
    Ok(Json(json!({})).into_response())
}

async fn import(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: ImportBody = json_request(body, MAX_WORKSPACE_IMPORT_BODY_BYTES).await?;
    let import = WorkspaceImport::try_from(body)?;
    workspace_tree::import(
        &state.services,
        &context.actor,
        &import.path,
        import.imported,
        import.overwrite,
    )
    .await?;
    Ok(Json(json!({})).into_response())
}

async fn delete(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: DeleteBody = json_request(body, MAX_WORKSPACE_BODY_BYTES).await?;
    let delete = WorkspaceDelete::try_from(body)?;
    workspace_tree::delete(
        &state.services,
        &context.actor,
        &delete.path,
        delete.recursive,
    )
    .await?;
    Ok(Json(json!({})).into_response())
}
