//! `GET`/`PUT`/`PATCH /api/2.0/permissions/{object_type}/{object_id}` and
//! `GET .../permissionLevels`: the Databricks workspace object Permissions API. Thin: the path
//! and body are parsed, the service decides and commits, errors come back in Databricks' shape.

use crate::context::DatabricksContext;
use crate::error::DatabricksError;
use crate::routes::wire::AccessControlListBody;
use crate::routes::{json_request, MAX_PERMISSIONS_BODY_BYTES};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scimitar_access::AclWrite;
use scimitar_app::workspace_permissions::{self, PermissionsPath, RequestedEntry};
use scimitar_domain::ScimError;

type Result<T = Response> = std::result::Result<T, DatabricksError>;

/// `GET`: the object's ACL, or with `/permissionLevels`, the levels its type knows.
pub async fn get(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(rest): Path<String>,
) -> Result {
    let path = PermissionsPath::parse(&rest)?;
    if path.levels {
        return Ok(Json(workspace_permissions::permission_levels(&path.object)).into_response());
    }
    let body = workspace_permissions::get(&state.services, &context.actor, &path.object).await?;
    Ok(Json(body).into_response())
}

/// `PUT`: the body's entries become the object's whole direct ACL.
pub async fn put(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(rest): Path<String>,
    body: Body,
) -> Result {
    write(context, state, rest, body, AclWrite::Replace).await
}

/// `PATCH`: the body's entries are added, or change the level of principals already listed.
pub async fn patch(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(rest): Path<String>,
    body: Body,
) -> Result {
    write(context, state, rest, body, AclWrite::Update).await
}

async fn write(
    context: DatabricksContext,
    state: AppState,
    rest: String,
    body: Body,
    mode: AclWrite,
) -> Result {
    let path = PermissionsPath::parse(&rest)?;
    if path.levels {
        return Err(ScimError::MethodNotAllowed(
            "permissionLevels is read-only; use GET".to_string(),
        )
        .into());
    }
    let body: AccessControlListBody = json_request(body, MAX_PERMISSIONS_BODY_BYTES).await?;
    let requested: Vec<RequestedEntry> = body.try_into()?;
    let answer = workspace_permissions::write(
        &state.services,
        &context.actor,
        &path.object,
        requested,
        mode,
    )
    .await?;
    Ok(Json(answer).into_response())
}
