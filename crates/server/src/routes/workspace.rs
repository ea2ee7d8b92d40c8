//! The Databricks Workspace API's tree operations: `POST /api/2.0/workspace/mkdirs`,
//! `import` and `delete`, `GET .../get-status` and `.../list`. Thin: the request is read into
//! validated values, [`scimitar_app::workspace_tree`] decides and commits, errors come back in
//! Databricks' shape.
//!
//! `import` takes a JSON body or, as the Python SDK's `w.workspace.upload` sends it,
//! `multipart/form-data`: the text fields `path`, `format`, `language` and `overwrite`
//! (`"true"`), and the file part `content`, which is read and dropped as the JSON form's is.

use crate::context::DatabricksContext;
use crate::error::DatabricksResult;
use crate::routes::wire::{DeleteBody, ImportBody, MkdirsBody, WorkspaceDelete, WorkspaceImport};
use crate::routes::{
    json_request, method_not_allowed, MAX_WORKSPACE_BODY_BYTES, MAX_WORKSPACE_IMPORT_BODY_BYTES,
};
use crate::AppState;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::header;
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
            post(import)
                .fallback(method_not_allowed)
                // The limit a multipart body is read under; a JSON body is read under the
                // same one by `json_request`.
                .layer(DefaultBodyLimit::max(MAX_WORKSPACE_IMPORT_BODY_BYTES)),
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
    request: Request,
) -> DatabricksResult {
    let body = if is_multipart(&request) {
        let form = Multipart::from_request(request, &state)
            .await
            .map_err(|rejection| {
                ScimError::invalid_syntax(format!(
                    "the multipart/form-data body could not be read: {}",
                    rejection.body_text()
                ))
            })?;
        import_form(form).await?
    } else {
        json_request(request.into_body(), MAX_WORKSPACE_IMPORT_BODY_BYTES).await?
    };
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

/// Whether the request says its body is `multipart/form-data` (any other type, or none, is
/// read as JSON, as before multipart was accepted).
fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| {
            media_type
                .trim()
                .eq_ignore_ascii_case("multipart/form-data")
        })
}

/// The import a multipart form asks for: its text fields by name, each at most once; the
/// `content` part read to its end (so a truncated body is refused) and dropped; other parts
/// ignored, as unknown JSON fields are.
async fn import_form(mut form: Multipart) -> DatabricksResult<ImportBody> {
    let unreadable = |error: axum::extract::multipart::MultipartError| {
        let message = format!(
            "the multipart/form-data body could not be read: {}",
            error.body_text()
        );
        if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ScimError::PayloadTooLarge(format!(
                "the request body is larger than {MAX_WORKSPACE_IMPORT_BODY_BYTES} bytes"
            ))
        } else {
            ScimError::invalid_syntax(message)
        }
    };
    let mut fields = ImportFormFields::default();
    while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        let slot = match name.as_str() {
            "path" => &mut fields.path,
            "format" => &mut fields.format,
            "language" => &mut fields.language,
            "overwrite" => &mut fields.overwrite,
            "content" => {
                if fields.content_seen {
                    return Err(twice(&name).into());
                }
                fields.content_seen = true;
                while field.chunk().await.map_err(unreadable)?.is_some() {}
                continue;
            }
            _ => {
                while field.chunk().await.map_err(unreadable)?.is_some() {}
                continue;
            }
        };
        if slot.is_some() {
            return Err(twice(&name).into());
        }
        *slot = Some(field.text().await.map_err(unreadable)?);
    }
    Ok(ImportBody::from_form(
        fields.path,
        fields.format,
        fields.language,
        fields.overwrite.as_deref(),
    )?)
}

/// The text fields of a multipart import, as sent.
#[derive(Default)]
struct ImportFormFields {
    path: Option<String>,
    format: Option<String>,
    language: Option<String>,
    overwrite: Option<String>,
    content_seen: bool,
}

fn twice(name: &str) -> ScimError {
    ScimError::invalid_value(format!("the form field `{name}` is given more than once"))
}
