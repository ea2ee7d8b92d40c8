//! The Metastores API as the Databricks SDKs call it, on the workspace host
//! (`/api/2.1/unity-catalog/current-metastore-assignment`, `metastore_summary`, `metastores`,
//! `workspaces/{id}/metastore`) and the account host (`/api/2.0/accounts/{id}/metastores`,
//! `.../workspaces/{id}/metastore[s/{id}]`). Every account has one metastore, assigned to
//! every workspace of the account: assigning it again changes nothing, and the calls that
//! would unassign it, or assign another, say so. Catalog workspace bindings
//! (`workspace-bindings/catalogs/{name}`, `bindings/{type}/{name}`) are read as none, since
//! every catalog is `OPEN` to all the account's workspaces, and changing them is refused.

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Json, Router};
use scimitar_access::SecurableType;
use scimitar_app::governance::Metastore;
use scimitar_app::{Actor, Workspace};
use scimitar_domain::{AccountId, ScimError};
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

/// What refusing a binding change says.
const NO_BINDINGS: &str = "workspace bindings are not supported: every catalog is OPEN to \
                           every workspace of its account";

/// The securable types Databricks binds to workspaces, as the bindings path names them.
fn bindable(text: &str) -> DatabricksResult<SecurableType> {
    match SecurableType::parse(text) {
        Ok(
            kind @ (SecurableType::Catalog
            | SecurableType::ExternalLocation
            | SecurableType::StorageCredential),
        ) => Ok(kind),
        _ => Err(ScimError::invalid_value(format!(
            "`{text}` is not a securable type bound to workspaces: catalog, \
             external_location or storage_credential"
        ))
        .into()),
    }
}

/// Whether a list field of a binding change holds anything; anything but a list (or null) is
/// the client's error.
fn names_any(body: &Value, field: &str) -> DatabricksResult<bool> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Array(items)) => Ok(!items.is_empty()),
        Some(_) => Err(ScimError::invalid_value(format!("`{field}` must be a list")).into()),
    }
}

/// Authorizes a change of bindings and refuses it unless it changes nothing.
async fn refuse_binding_change(
    state: &AppState,
    context: &DatabricksContext,
    securable_type: SecurableType,
    name: &str,
    body: axum::body::Body,
    fields: [&str; 2],
) -> DatabricksResult<Vec<String>> {
    let body: Value = crate::routes::json_request(body, 1024 * 1024).await?;
    let changes = names_any(&body, fields[0])? | names_any(&body, fields[1])?;
    let bound = state
        .governance
        .caller(&context.actor)
        .workspace_bindings(securable_type, name)
        .await?;
    if changes {
        return Err(ScimError::invalid_value(NO_BINDINGS).into());
    }
    Ok(bound)
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
        .workspace_bindings(SecurableType::Catalog, &name)
        .await?;
    Ok(Json(json!({ "workspaces": bound })).into_response())
}

async fn update_catalog_bindings(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: axum::body::Body,
) -> DatabricksResult {
    let name = path_param(params, "name")?;
    let fields = ["assign_workspaces", "unassign_workspaces"];
    let bound = refuse_binding_change(
        &state,
        &context,
        SecurableType::Catalog,
        &name,
        body,
        fields,
    )
    .await?;
    Ok(Json(json!({ "workspaces": bound })).into_response())
}

/// `[{workspace_id, binding_type}]`, as the bindings API lists them.
fn binding_list(bound: &[String]) -> Vec<Value> {
    bound
        .iter()
        .map(|id| {
            let id = id
                .parse::<i64>()
                .map_or_else(|_| json!(id), |number| json!(number));
            json!({"workspace_id": id, "binding_type": "BINDING_TYPE_READ_WRITE"})
        })
        .collect()
}

fn type_and_name(params: Params) -> DatabricksResult<(SecurableType, String)> {
    let Path(mut values) =
        params.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    match (values.remove("securable_type"), values.remove("name")) {
        (Some(kind), Some(name)) => Ok((bindable(&kind)?, name)),
        _ => Err(ScimError::invalid_value("the path names no securable").into()),
    }
}

async fn get_bindings(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    query: QueryParams,
) -> DatabricksResult {
    let (securable_type, name) = type_and_name(params)?;
    let Query(query) =
        query.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    Paging::of(&query)?;
    let bound = state
        .governance
        .caller(&context.actor)
        .workspace_bindings(securable_type, &name)
        .await?;
    Ok(Json(json!({ "bindings": binding_list(&bound) })).into_response())
}

async fn update_bindings(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: axum::body::Body,
) -> DatabricksResult {
    let (securable_type, name) = type_and_name(params)?;
    let bound = refuse_binding_change(
        &state,
        &context,
        securable_type,
        &name,
        body,
        ["add", "remove"],
    )
    .await?;
    Ok(Json(json!({ "bindings": binding_list(&bound) })).into_response())
}
