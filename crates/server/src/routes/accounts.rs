//! The Account API's workspaces and workspace assignment, as the Databricks SDKs call them
//! (`a.workspaces`, `a.workspace_assignment`): `/api/2.0/accounts/{account_id}/workspaces...`.
//! For account admins only; a workspace is provisioned at once, so its status is `RUNNING`
//! from its creation (the SDK's `create_and_wait` returns at its first poll).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use scimitar_access::{PrincipalRef, WorkspacePermission};
use scimitar_app::tenancy::{Assignment, WorkspaceUpdate};
use scimitar_app::{AccountAdmin, Workspace};
use scimitar_domain::{PrincipalId, PrincipalKind, ScimError, WorkspaceId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::{DatabricksContext, Mount, Origin};
use crate::error::{DatabricksError, DatabricksResult};
use crate::routes::json_request;
use crate::AppState;

/// Workspace and assignment bodies are a few fields.
const MAX_BODY_BYTES: usize = 64 * 1024;

const PREFIX: &str = "/api/2.0/accounts/{account_id}/workspaces";

pub fn routes() -> Router<AppState> {
    let route = |path: &str| format!("{PREFIX}{path}");
    Router::new()
        .route(
            PREFIX,
            get(list_workspaces)
                .post(create_workspace)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/{workspace_id}"),
            get(get_workspace)
                .patch(update_workspace)
                .delete(delete_workspace)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/{workspace_id}/permissionassignments"),
            get(list_assignments).fallback(method_not_allowed),
        )
        .route(
            &route("/{workspace_id}/permissionassignments/permissions"),
            get(assignable_permissions).fallback(method_not_allowed),
        )
        .route(
            &route("/{workspace_id}/permissionassignments/principals/{principal_id}"),
            put(assign).delete(unassign).fallback(method_not_allowed),
        )
        // The account is named by the path, as on the account SCIM API.
        .layer(Extension(Mount::DatabricksAccount { api_version: "2.0" }))
}

type Params = Result<Path<HashMap<String, String>>, PathRejection>;

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    DatabricksError(ScimError::MethodNotAllowed(format!(
        "{method} is not supported on {}",
        uri.path()
    )))
    .into_response()
}

/// A named path parameter; a malformed path is the client's 400.
fn param(params: &Params, name: &str) -> DatabricksResult<String> {
    match params {
        Ok(Path(values)) => values
            .get(name)
            .cloned()
            .ok_or_else(|| ScimError::invalid_value(format!("the path names no {name}")).into()),
        Err(rejection) => Err(ScimError::invalid_value(rejection.body_text()).into()),
    }
}

/// Workspace and principal ids are int64 on the wire; anything else names nothing here.
fn numeric_id(text: &str, what: &str) -> DatabricksResult<i64> {
    text.parse::<i64>().map_err(|_| {
        ScimError::invalid_value(format!("{what} must be an integer, not {text:?}")).into()
    })
}

async fn admin_of(state: &AppState, context: DatabricksContext) -> DatabricksResult<AccountAdmin> {
    Ok(state.services.authorize_admin(&context.actor).await?)
}

/// A workspace as `Workspace` names its fields. Ids made by Scimitar are decimal digits.
/// `workspace_url` is Scimitar's own: where the workspace's APIs are served (the SDKs ignore
/// fields they do not know).
fn workspace_json(workspace: &Workspace, origin: &str) -> Value {
    let id = workspace
        .id
        .as_str()
        .parse::<i64>()
        .map_or_else(|_| json!(workspace.id.as_str()), |id| json!(id));
    let mut body = json!({
        "workspace_id": id,
        "workspace_name": workspace.name,
        "account_id": workspace.account.as_str(),
        "creation_time": workspace.created.as_micros() / 1000,
        "workspace_status": "RUNNING",
        "workspace_status_message": "Workspace is running.",
        "pricing_tier": "PREMIUM",
        "workspace_url": format!("{origin}/w/{}", workspace.id),
    });
    if let (Some(name), Some(object)) = (&workspace.deployment_name, body.as_object_mut()) {
        object.insert("deployment_name".into(), json!(name));
    }
    body
}

async fn list_workspaces(
    context: DatabricksContext,
    Origin(origin): Origin,
    State(state): State<AppState>,
) -> DatabricksResult {
    let admin = admin_of(&state, context).await?;
    let workspaces = state.services.workspaces(admin.account()).await?;
    // A bare array, as the SDK reads it.
    let body: Vec<Value> = workspaces
        .iter()
        .map(|workspace| workspace_json(workspace, &origin))
        .collect();
    Ok(Json(body).into_response())
}

/// `POST .../workspaces`: the fields Scimitar keeps; the cloud ones are accepted and ignored.
#[derive(Debug, Deserialize)]
struct CreateWorkspaceBody {
    workspace_name: Option<String>,
    deployment_name: Option<String>,
}

async fn create_workspace(
    context: DatabricksContext,
    Origin(origin): Origin,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: CreateWorkspaceBody = json_request(body, MAX_BODY_BYTES).await?;
    let name = body
        .workspace_name
        .ok_or_else(|| ScimError::invalid_value("workspace_name is required"))?;
    let admin = admin_of(&state, context).await?;
    let workspace = state
        .services
        .create_workspace(&admin, &name, body.deployment_name.as_deref())
        .await?;
    Ok(Json(workspace_json(&workspace, &origin)).into_response())
}

async fn get_workspace(
    context: DatabricksContext,
    Origin(origin): Origin,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let id = workspace_id(&params)?;
    let admin = admin_of(&state, context).await?;
    let workspace = state.services.account_workspace(&admin, &id).await?;
    Ok(Json(workspace_json(&workspace, &origin)).into_response())
}

fn workspace_id(params: &Params) -> DatabricksResult<WorkspaceId> {
    let text = param(params, "workspace_id")?;
    numeric_id(&text, "workspace_id")?;
    Ok(WorkspaceId::new(text))
}

/// `PATCH .../workspaces/{id}?update_mask=a,b`: the body is a `Workspace`; with a mask only
/// the fields it names change (`*`: all), without one the fields the body carries.
#[derive(Debug, Deserialize)]
struct UpdateWorkspaceBody {
    workspace_name: Option<String>,
    deployment_name: Option<String>,
}

async fn update_workspace(
    context: DatabricksContext,
    Origin(origin): Origin,
    State(state): State<AppState>,
    params: Params,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Body,
) -> DatabricksResult {
    let id = workspace_id(&params)?;
    let Query(query) =
        query.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    let body: UpdateWorkspaceBody = json_request(body, MAX_BODY_BYTES).await?;
    let mask: Option<Vec<&str>> = query
        .get("update_mask")
        .map(|mask| mask.split(',').map(str::trim).collect());
    let masked = |field: &str| {
        mask.as_ref()
            .is_none_or(|fields| fields.iter().any(|name| *name == "*" || *name == field))
    };
    let update = WorkspaceUpdate {
        name: body.workspace_name.filter(|_| masked("workspace_name")),
        deployment_name: body.deployment_name.filter(|_| masked("deployment_name")),
    };
    let admin = admin_of(&state, context).await?;
    let workspace = state.services.update_workspace(&admin, &id, update).await?;
    Ok(Json(workspace_json(&workspace, &origin)).into_response())
}

async fn delete_workspace(
    context: DatabricksContext,
    Origin(origin): Origin,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let id = workspace_id(&params)?;
    let admin = admin_of(&state, context).await?;
    let workspace = state.services.delete_workspace(&admin, &id).await?;
    Ok(Json(workspace_json(&workspace, &origin)).into_response())
}

/// A principal as `PermissionAssignment.principal` shows it.
fn principal_json(principal: &PrincipalRef) -> Value {
    let id = principal
        .id
        .as_str()
        .parse::<i64>()
        .map_or_else(|_| json!(principal.id.as_str()), |id| json!(id));
    let name_field = match principal.kind {
        PrincipalKind::User => "user_name",
        PrincipalKind::Group => "group_name",
        PrincipalKind::ServicePrincipal => "service_principal_name",
    };
    json!({
        "principal_id": id,
        "display_name": principal.name,
        name_field: principal.name,
    })
}

fn assignment_json(assignment: &Assignment) -> Value {
    json!({
        "principal": principal_json(&assignment.principal),
        "permissions": [assignment.permission.as_str()],
    })
}

async fn list_assignments(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let id = workspace_id(&params)?;
    let admin = admin_of(&state, context).await?;
    let assignments = state.services.workspace_assignments(&admin, &id).await?;
    let assignments: Vec<Value> = assignments.iter().map(assignment_json).collect();
    Ok(Json(json!({ "permission_assignments": assignments })).into_response())
}

async fn assignable_permissions(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let id = workspace_id(&params)?;
    let admin = admin_of(&state, context).await?;
    state.services.account_workspace(&admin, &id).await?;
    Ok(Json(json!({"permissions": [
        {"permission_level": "USER", "description": "Can use the workspace."},
        {"permission_level": "ADMIN", "description": "Can administer the workspace."},
    ]}))
    .into_response())
}

/// `PUT .../principals/{id}`: `{"permissions": ["USER"]}`.
#[derive(Debug, Deserialize)]
struct AssignBody {
    permissions: Option<Vec<String>>,
}

async fn assign(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: Body,
) -> DatabricksResult {
    let id = workspace_id(&params)?;
    let principal = principal_id(&params)?;
    let body: AssignBody = json_request(body, MAX_BODY_BYTES).await?;
    // As in Databricks: values are case-sensitive, ADMIN wins, and no (or no known) value
    // removes the assignment.
    let permission = body
        .permissions
        .unwrap_or_default()
        .iter()
        .filter_map(|text| WorkspacePermission::parse(text))
        .max();
    let admin = admin_of(&state, context).await?;
    let assigned = state
        .services
        .assign(&admin, &id, &principal, permission)
        .await?;
    Ok(match assigned {
        Some(assignment) => Json(assignment_json(&assignment)).into_response(),
        None => Json(json!({})).into_response(),
    })
}

async fn unassign(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let id = workspace_id(&params)?;
    let principal = principal_id(&params)?;
    let admin = admin_of(&state, context).await?;
    state.services.assign(&admin, &id, &principal, None).await?;
    Ok(Json(json!({})).into_response())
}

fn principal_id(params: &Params) -> DatabricksResult<PrincipalId> {
    let text = param(params, "principal_id")?;
    numeric_id(&text, "principal_id")?;
    Ok(PrincipalId::new(text))
}
