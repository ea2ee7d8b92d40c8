//! The status of `scimitar sync` jobs: `GET /api/2.0/sync/jobs` lists the caller's account's
//! jobs (each target's last run, watermark and quarantine, and the job's lease), and
//! `GET /api/2.0/sync/jobs/{name}` shows one with each target's recent runs. `POST
//! /api/2.0/sync/jobs/{name}/resume` (a job's lone target) and `POST
//! /api/2.0/sync/jobs/{name}/targets/{target}/resume` lift a quarantine, as `scimitar sync
//! resume` does, and answer the job's status. Thin: the application authorizes (account
//! admins only), reads and writes (`scimitar_app::sync_status`); errors come back in
//! Databricks' shape. The response's shape is in `docs/design/sync.md`.

use crate::context::DatabricksContext;
use crate::error::DatabricksResult;
use crate::routes::method_not_allowed;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

/// The list's path; a job is `{JOBS_PATH}/{name}`.
pub const JOBS_PATH: &str = "/api/2.0/sync/jobs";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(JOBS_PATH, get(list).fallback(method_not_allowed))
        .route(
            &format!("{JOBS_PATH}/{{name}}"),
            get(one).fallback(method_not_allowed),
        )
        .route(
            &format!("{JOBS_PATH}/{{name}}/resume"),
            post(resume).fallback(method_not_allowed),
        )
        .route(
            &format!("{JOBS_PATH}/{{name}}/targets/{{target}}/resume"),
            post(resume_target).fallback(method_not_allowed),
        )
}

async fn list(context: DatabricksContext, State(state): State<AppState>) -> DatabricksResult {
    let jobs = state.services.sync_jobs(&context.actor).await?;
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

async fn one(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> DatabricksResult {
    let job = state.services.sync_job(&context.actor, &name).await?;
    Ok(Json(job).into_response())
}

async fn resume(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> DatabricksResult {
    let job = state
        .services
        .resume_sync_target(&context.actor, &name, None)
        .await?;
    Ok(Json(job).into_response())
}

async fn resume_target(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path((name, target)): Path<(String, String)>,
) -> DatabricksResult {
    let job = state
        .services
        .resume_sync_target(&context.actor, &name, Some(&target))
        .await?;
    Ok(Json(job).into_response())
}
