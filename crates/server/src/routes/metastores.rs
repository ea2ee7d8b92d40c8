//! The Metastores API as the Databricks SDKs call it, on the workspace host
//! (`/api/2.1/unity-catalog/current-metastore-assignment`, `metastore_summary`, `metastores`,
//! `workspaces/{id}/metastore`) and the account host (`/api/2.0/accounts/{id}/metastores`,
//! `.../workspaces/{id}/metastore[s/{id}]`). Every account has one metastore, assigned to
//! every workspace of the account: assigning it again changes nothing, and the calls that
//! would unassign it, or assign another, say so. Catalog workspace bindings
//! (`workspace-bindings/catalogs/{name}`, `bindings/{type}/{name}`) are read and changed here;
//! what they mean for an `ISOLATED` catalog is the governance service's rule.

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Json, Router};
use scimitar_access::{BindingType, SecurableType};
use scimitar_app::governance::{BindingChanges, Metastore};
use scimitar_app::{Actor, Workspace};
use scimitar_domain::{AccountId, ScimError, WorkspaceId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::{DatabricksContext, Mount};
use crate::error::DatabricksResult;
use crate::routes::unity_catalog::{method_not_allowed, Paging};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    let uc = "/api/2.1/unity-catalog";
    let workspace_host = Router::new()
        .route(
            &format!("{uc}/current-metastore-assignment"),
            get(current_assignment).fallback(method_not_allowed),
        )
        .route(
            &format!("{uc}/metastore_summary"),
            get(summary).fallback(method_not_allowed),
        )
        .route(
            &format!("{uc}/metastores"),
            get(list).fallback(method_not_allowed),
        )
        .route(
            &format!("{uc}/metastores/{{metastore_id}}"),
            get(get_one).fallback(method_not_allowed),
        )
        .route(
            &format!("{uc}/workspaces/{{workspace_id}}/metastore"),
            axum::routing::put(assign)
                .patch(assign)
                .delete(unassign_from_query)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{uc}/workspace-bindings/catalogs/{{name}}"),
            get(get_catalog_bindings)
                .patch(update_catalog_bindings)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{uc}/bindings/{{securable_type}}/{{name}}"),
            get(get_bindings)
                .patch(update_bindings)
                .fallback(method_not_allowed),
        );
    let account = "/api/2.0/accounts/{account_id}";
    let account_host = Router::new()
        .route(
            &format!("{account}/metastores"),
            get(account_list).fallback(method_not_allowed),
        )
        .route(
            &format!("{account}/metastores/{{metastore_id}}"),
            get(account_get).fallback(method_not_allowed),
        )
        .route(
            &format!("{account}/workspaces/{{workspace_id}}/metastore"),
            get(account_assignment).fallback(method_not_allowed),
        )
        .route(
            &format!("{account}/workspaces/{{workspace_id}}/metastores/{{metastore_id}}"),
            axum::routing::post(account_assign)
                .put(account_assign)
                .delete(account_unassign)
                .fallback(method_not_allowed),
        )
        // The account is the one the path names, as on the account SCIM mount.
        .layer(Extension(Mount::DatabricksAccount { api_version: "2.0" }));
    workspace_host.merge(account_host)
}

type Params = Result<Path<HashMap<String, String>>, PathRejection>;
type QueryParams = Result<Query<HashMap<String, String>>, QueryRejection>;

fn path_param(params: Params, name: &str) -> DatabricksResult<String> {
    let Path(mut values) =
        params.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    values
        .remove(name)
        .ok_or_else(|| ScimError::invalid_value(format!("the path names no {name}")).into())
}

/// The workspace a workspace-host request addresses: the one its caller entered.
async fn addressed_workspace(state: &AppState, actor: &Actor) -> DatabricksResult<Workspace> {
    let id = actor
        .workspace()
        .ok_or_else(|| ScimError::NotFound("the request addresses no workspace".into()))?;
    Ok(state.services.workspace(id).await?)
}

/// A workspace of the account by its id; another account's, or none, does not exist.
async fn workspace_of(
    state: &AppState,
    account: &AccountId,
    id: &str,
) -> DatabricksResult<Workspace> {
    Ok(state
        .services
        .workspaces(account)
        .await?
        .into_iter()
        .find(|workspace| workspace.id.as_str() == id)
        .ok_or_else(|| ScimError::NotFound(format!("workspace {id} does not exist")))?)
}

/// A workspace id as Databricks writes it: a number (int64), when it is one.
fn workspace_id(workspace: &Workspace) -> Value {
    let id = workspace.id.as_str();
    id.parse::<i64>()
        .map_or_else(|_| json!(id), |number| json!(number))
}

/// `MetastoreInfo`, with the fields the registry knows; the storage and Delta Sharing fields
/// describe data this server does not hold and are left out.
fn metastore_info(metastore: &Metastore) -> Value {
    let millis = metastore.created.as_micros() / 1000;
    json!({
        "metastore_id": metastore.id,
        "global_metastore_id": format!("scimitar:{}", metastore.id),
        "name": metastore.name,
        "owner": metastore.owner,
        "created_at": millis,
        "updated_at": millis,
        "privilege_model_version": "1.0",
        "external_access_enabled": false,
    })
}

fn assignment(workspace: &Workspace, metastore: &Metastore) -> Value {
    json!({
        "workspace_id": workspace_id(workspace),
        "metastore_id": metastore.id,
    })
}

// ----- workspace host ----------------------------------------------------------------------

async fn current_assignment(
    context: DatabricksContext,
    State(state): State<AppState>,
) -> DatabricksResult {
    let workspace = addressed_workspace(&state, &context.actor).await?;
    let metastore = state.governance.caller(&context.actor).metastore().await?;
    Ok(Json(assignment(&workspace, &metastore)).into_response())
}

async fn summary(context: DatabricksContext, State(state): State<AppState>) -> DatabricksResult {
    let metastore = state.governance.caller(&context.actor).metastore().await?;
    Ok(Json(metastore_info(&metastore)).into_response())
}

async fn list(
    context: DatabricksContext,
    State(state): State<AppState>,
    query: QueryParams,
) -> DatabricksResult {
    let Query(query) =
        query.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    let paging = Paging::of(&query)?;
    let metastore = state
        .governance
        .caller(&context.actor)
        .metastore_for_admin(None)
        .await?;
    let (page, next) = paging.page(vec![metastore], |metastore| metastore.id.as_str());
    let metastores: Vec<Value> = page.iter().map(metastore_info).collect();
    let mut body = json!({ "metastores": metastores });
    if let Some(next) = next {
        body["next_page_token"] = json!(next);
    }
    Ok(Json(body).into_response())
}

async fn get_one(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let id = path_param(params, "metastore_id")?;
    let metastore = state
        .governance
        .caller(&context.actor)
        .metastore_for_admin(Some(&id))
        .await?;
    Ok(Json(metastore_info(&metastore)).into_response())
}

/// `PUT` and `PATCH .../workspaces/{id}/metastore` with `{metastore_id, default_catalog_name}`:
/// the account's metastore is assigned already, so assigning it again changes nothing.
async fn assign(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: axum::body::Body,
) -> DatabricksResult {
    let id = path_param(params, "workspace_id")?;
    let body: Value = crate::routes::json_request(body, 64 * 1024).await?;
    let wanted = match body.get("metastore_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err(ScimError::invalid_value("`metastore_id` must be a string").into()),
    };
    confirm_assignment(&state, &context, &id, wanted.as_deref()).await?;
    Ok(Json(json!({})).into_response())
}

/// `DELETE .../workspaces/{id}/metastore?metastore_id=`.
async fn unassign_from_query(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    query: QueryParams,
) -> DatabricksResult {
    let id = path_param(params, "workspace_id")?;
    let Query(query) =
        query.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    let wanted = query.get("metastore_id").cloned();
    refuse_unassignment(&state, &context, &id, wanted.as_deref()).await
}

/// Checks that the workspace and the metastore named are the account's: assigning the one to
/// the other is then what already holds. Only a metastore admin may assign.
async fn confirm_assignment(
    state: &AppState,
    context: &DatabricksContext,
    workspace: &str,
    metastore_id: Option<&str>,
) -> DatabricksResult<()> {
    let caller = state.governance.caller(&context.actor);
    caller.metastore_for_admin(metastore_id).await?;
    workspace_of(state, context.actor.account(), workspace).await?;
    Ok(())
}

async fn refuse_unassignment(
    state: &AppState,
    context: &DatabricksContext,
    workspace: &str,
    metastore_id: Option<&str>,
) -> DatabricksResult {
    confirm_assignment(state, context, workspace, metastore_id).await?;
    Err(ScimError::invalid_value(
        "the account's metastore is assigned to every workspace of the account and cannot be \
         unassigned: it is the only metastore there is",
    )
    .into())
}

// ----- account host ------------------------------------------------------------------------

async fn account_list(
    context: DatabricksContext,
    State(state): State<AppState>,
) -> DatabricksResult {
    let metastore = state
        .governance
        .caller(&context.actor)
        .metastore_for_admin(None)
        .await?;
    Ok(Json(json!({ "metastores": [metastore_info(&metastore)] })).into_response())
}

async fn account_get(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let id = path_param(params, "metastore_id")?;
    let metastore = state
        .governance
        .caller(&context.actor)
        .metastore_for_admin(Some(&id))
        .await?;
    Ok(Json(json!({ "metastore_info": metastore_info(&metastore) })).into_response())
}

async fn account_assignment(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let id = path_param(params, "workspace_id")?;
    let metastore = state
        .governance
        .caller(&context.actor)
        .metastore_for_admin(None)
        .await?;
    let workspace = workspace_of(&state, context.actor.account(), &id).await?;
    Ok(Json(json!({ "metastore_assignment": assignment(&workspace, &metastore) })).into_response())
}

/// `POST` and `PUT .../workspaces/{wid}/metastores/{mid}`: the body
/// (`{metastore_assignment: {...}}`) says nothing the path does not.
async fn account_assign(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let (workspace, metastore) = workspace_and_metastore(params)?;
    confirm_assignment(&state, &context, &workspace, Some(&metastore)).await?;
    Ok(Json(json!({})).into_response())
}

async fn account_unassign(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let (workspace, metastore) = workspace_and_metastore(params)?;
    refuse_unassignment(&state, &context, &workspace, Some(&metastore)).await
}

fn workspace_and_metastore(params: Params) -> DatabricksResult<(String, String)> {
    let Path(mut values) =
        params.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    match (values.remove("workspace_id"), values.remove("metastore_id")) {
        (Some(workspace), Some(metastore)) => Ok((workspace, metastore)),
        _ => Err(ScimError::invalid_value("the path names no workspace and metastore").into()),
    }
}

// ----- workspace bindings ------------------------------------------------------------------

/// A workspace id as clients send it: the SDKs send numbers, and a string of digits is taken
/// too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WorkspaceIdWire {
    Number(i64),
    Text(String),
}

impl WorkspaceIdWire {
    fn into_id(self) -> String {
        match self {
            WorkspaceIdWire::Number(number) => number.to_string(),
            WorkspaceIdWire::Text(text) => text.trim().to_string(),
        }
    }
}

/// `PATCH workspace-bindings/catalogs/{name}`: the deprecated form, read-write bindings only.
#[derive(Debug, Deserialize)]
struct CatalogBindingsBody {
    #[serde(default)]
    assign_workspaces: Option<Vec<WorkspaceIdWire>>,
    #[serde(default)]
    unassign_workspaces: Option<Vec<WorkspaceIdWire>>,
}

/// One entry of `add` or `remove` in `PATCH bindings/{type}/{name}`; a binding without a type
/// is read-write, as in Databricks, and the type of one removed is not looked at.
#[derive(Debug, Deserialize)]
struct BindingWire {
    workspace_id: WorkspaceIdWire,
    #[serde(default)]
    binding_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BindingsBody {
    #[serde(default)]
    add: Option<Vec<BindingWire>>,
    #[serde(default)]
    remove: Option<Vec<BindingWire>>,
}

impl BindingsBody {
    fn into_changes(self) -> DatabricksResult<BindingChanges> {
        let mut add = Vec::new();
        for (index, binding) in self.add.unwrap_or_default().into_iter().enumerate() {
            let binding_type = match binding.binding_type.as_deref().map(str::trim) {
                None | Some("") => BindingType::ReadWrite,
                Some(text) => BindingType::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "`add[{index}].binding_type` `{text}` is not a binding type: \
                         BINDING_TYPE_READ_WRITE or BINDING_TYPE_READ_ONLY"
                    ))
                })?,
            };
            add.push((binding.workspace_id.into_id(), binding_type));
        }
        let remove = self
            .remove
            .unwrap_or_default()
            .into_iter()
            .map(|binding| binding.workspace_id.into_id())
            .collect();
        Ok(BindingChanges { add, remove })
    }
}

/// The securable types the bindings path may name. Only catalogs are bound here; external
/// locations and credentials, which Databricks binds too, are not kept.
fn bindable(text: &str) -> DatabricksResult<()> {
    match SecurableType::parse(text) {
        Ok(SecurableType::Catalog) => Ok(()),
        _ => Err(ScimError::invalid_value(format!(
            "`{text}` is not a securable type bound to workspaces here: only catalogs are"
        ))
        .into()),
    }
}

/// A workspace id as the bindings APIs answer it: a number, as Databricks' ids are.
fn workspace_id_json(id: &WorkspaceId) -> Value {
    id.as_str()
        .parse::<i64>()
        .map_or_else(|_| json!(id.as_str()), |number| json!(number))
}

fn workspaces_body(bound: &[(WorkspaceId, BindingType)]) -> Value {
    let ids: Vec<Value> = bound.iter().map(|(id, _)| workspace_id_json(id)).collect();
    json!({ "workspaces": ids })
}

async fn get_catalog_bindings(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let name = path_param(params, "name")?;
    let bound = state
        .governance
        .caller(&context.actor)
        .workspace_bindings(&name)
        .await?;
    Ok(Json(workspaces_body(&bound)).into_response())
}

async fn update_catalog_bindings(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: axum::body::Body,
) -> DatabricksResult {
    let name = path_param(params, "name")?;
    let body: CatalogBindingsBody = crate::routes::json_request(body, 1024 * 1024).await?;
    let ids = |list: Option<Vec<WorkspaceIdWire>>| -> Vec<String> {
        list.unwrap_or_default()
            .into_iter()
            .map(WorkspaceIdWire::into_id)
            .collect()
    };
    let changes = BindingChanges {
        add: ids(body.assign_workspaces)
            .into_iter()
            .map(|id| (id, BindingType::ReadWrite))
            .collect(),
        remove: ids(body.unassign_workspaces),
    };
    let bound = state
        .governance
        .caller(&context.actor)
        .update_workspace_bindings(&name, changes)
        .await?;
    Ok(Json(workspaces_body(&bound)).into_response())
}

fn type_and_name(params: Params) -> DatabricksResult<String> {
    let Path(mut values) =
        params.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    match (values.remove("securable_type"), values.remove("name")) {
        (Some(kind), Some(name)) => bindable(&kind).map(|()| name),
        _ => Err(ScimError::invalid_value("the path names no securable").into()),
    }
}

/// `{bindings: [{workspace_id, binding_type}], next_page_token}`, one page of them.
fn bindings_body(bound: Vec<(WorkspaceId, BindingType)>, paging: &Paging) -> Value {
    let (page, next) = paging.page(bound, |(id, _)| id.as_str());
    let bindings: Vec<Value> = page
        .iter()
        .map(|(id, binding_type)| {
            json!({"workspace_id": workspace_id_json(id), "binding_type": binding_type.as_str()})
        })
        .collect();
    let mut body = json!({ "bindings": bindings });
    if let Some(next) = next {
        body["next_page_token"] = json!(next);
    }
    body
}

async fn get_bindings(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    query: QueryParams,
) -> DatabricksResult {
    let name = type_and_name(params)?;
    let Query(query) =
        query.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    let paging = Paging::of(&query)?;
    let bound = state
        .governance
        .caller(&context.actor)
        .workspace_bindings(&name)
        .await?;
    Ok(Json(bindings_body(bound, &paging)).into_response())
}

async fn update_bindings(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: axum::body::Body,
) -> DatabricksResult {
    let name = type_and_name(params)?;
    let body: BindingsBody = crate::routes::json_request(body, 1024 * 1024).await?;
    let changes = body.into_changes()?;
    let bound = state
        .governance
        .caller(&context.actor)
        .update_workspace_bindings(&name, changes)
        .await?;
    let all = Paging::of(&HashMap::new())?;
    Ok(Json(bindings_body(bound, &all)).into_response())
}
