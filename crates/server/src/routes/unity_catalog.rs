//! The Unity Catalog REST API (`/api/2.1/unity-catalog/...`) in the shapes the Databricks
//! SDKs read: catalogs, schemas, tables, permissions and effective permissions. Thin: parse
//! the request, call the governance service as the token's principal, render. Tables are
//! created with SQL (`POST /api/2.0/sql/statements`), as in Databricks.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use scimitar_access::{IsolationMode, Privilege, SecurableType};
use scimitar_domain::ScimError;
use serde_json::{json, Map, Value};

use crate::context::DatabricksContext;
use crate::error::{DatabricksError, DatabricksResult};
use crate::routes::json_request;
use crate::routes::wire::{
    CreateCatalogBody, CreateSchemaBody, NewSecurable, UpdatePermissionsBody,
};
use crate::AppState;
use scimitar_app::governance::{Caller, PrivilegeChanges, Securable, SecurableUpdate};
use serde::Deserialize;

/// Unity Catalog request bodies are small; a permissions PATCH for a few hundred principals
/// fits easily.
const MAX_BODY_BYTES: usize = 1024 * 1024;

const PREFIX: &str = "/api/2.1/unity-catalog";

pub fn routes() -> Router<AppState> {
    let route = |path: &str| format!("{PREFIX}{path}");
    Router::new()
        .route(
            &route("/catalogs"),
            get(list_catalogs)
                .post(create_catalog)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/catalogs/{name}"),
            get(get_catalog)
                .patch(update_catalog)
                .delete(delete_catalog)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/schemas"),
            get(list_schemas)
                .post(create_schema)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/schemas/{full_name}"),
            get(get_schema)
                .patch(update_schema)
                .delete(delete_schema)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/tables"),
            get(list_tables)
                .post(create_table)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/tables/{full_name}"),
            get(get_table)
                .patch(update_table)
                .delete(delete_table)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/tables/{full_name}/exists"),
            get(table_exists).fallback(method_not_allowed),
        )
        .route(
            &route("/table-summaries"),
            get(table_summaries).fallback(method_not_allowed),
        )
        .route(
            &route("/permissions/{securable_type}/{full_name}"),
            get(get_permissions)
                .patch(update_permissions)
                .fallback(method_not_allowed),
        )
        .route(
            &route("/effective-permissions/{securable_type}/{full_name}"),
            get(get_effective_permissions).fallback(method_not_allowed),
        )
}

type Params = Result<Path<HashMap<String, String>>, PathRejection>;
type QueryParams = Result<Query<HashMap<String, String>>, QueryRejection>;

fn caller<'a>(state: &'a AppState, context: DatabricksContext) -> Caller<'a> {
    state.governance.caller(&context.actor)
}

/// The path parameters by name; a malformed path is the client's 400 in Databricks' shape.
fn path_params(params: Params) -> DatabricksResult<HashMap<String, String>> {
    params
        .map(|Path(values)| values)
        .map_err(|rejection| ScimError::invalid_value(rejection.body_text()).into())
}

fn query_params(query: QueryParams) -> DatabricksResult<HashMap<String, String>> {
    query
        .map(|Query(values)| values)
        .map_err(|rejection| ScimError::invalid_value(rejection.body_text()).into())
}

/// The one object a path names (`{name}` or `{full_name}`).
fn one(params: Params) -> DatabricksResult<String> {
    let mut params = path_params(params)?;
    params
        .remove("full_name")
        .or_else(|| params.remove("name"))
        .ok_or_else(|| ScimError::invalid_value("the path names no object").into())
}

/// `{securable_type}/{full_name}`.
fn two(params: Params) -> DatabricksResult<(String, String)> {
    let mut params = path_params(params)?;
    match (params.remove("securable_type"), params.remove("full_name")) {
        (Some(kind), Some(full_name)) => Ok((kind, full_name)),
        _ => Err(ScimError::invalid_value("the path names no securable").into()),
    }
}

/// A boolean query parameter (`force=true`); absent is false.
fn flag(query: &HashMap<String, String>, name: &str) -> DatabricksResult<bool> {
    match query
        .get(name)
        .map(|value| value.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false") | Some("0") | Some("") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ScimError::invalid_value(format!(
            "`{name}` must be true or false, not `{other}`"
        ))
        .into()),
    }
}

fn required<'a>(query: &'a HashMap<String, String>, name: &str) -> DatabricksResult<&'a str> {
    query
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value(format!("`{name}` is required")).into())
}

fn securable_type(text: &str) -> DatabricksResult<SecurableType> {
    SecurableType::parse(text).map_err(|error| ScimError::from(error).into())
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    DatabricksError(ScimError::MethodNotAllowed(format!(
        "{method} is not supported on {}",
        uri.path()
    )))
    .into_response()
}

// ----- rendering ---------------------------------------------------------------------------

/// The fields every securable shares, as `CatalogInfo`, `SchemaInfo` and `TableInfo` name
/// them. Times are milliseconds since the epoch; the registry keeps no separate update time.
fn common(securable: &Securable) -> Map<String, Value> {
    let millis = securable.created.as_micros() / 1000;
    let mut info = Map::new();
    info.insert("name".into(), json!(securable.name()));
    info.insert("full_name".into(), json!(securable.full_name));
    info.insert("owner".into(), json!(securable.owner));
    if let Some(comment) = &securable.comment {
        info.insert("comment".into(), json!(comment));
    }
    info.insert("created_at".into(), json!(millis));
    info.insert("updated_at".into(), json!(millis));
    info.insert("browse_only".into(), json!(false));
    info
}

fn catalog_info(catalog: &Securable) -> Value {
    let mut info = common(catalog);
    info.insert("securable_type".into(), json!("CATALOG"));
    info.insert("catalog_type".into(), json!("MANAGED_CATALOG"));
    info.insert(
        "isolation_mode".into(),
        json!(catalog.isolation_mode.as_str()),
    );
    Value::Object(info)
}

/// The leading parts of a full name: (catalog, schema) of `c.s.t`, (catalog, _) of `c.s`.
fn parents(full_name: &str) -> (&str, &str) {
    let mut parts = full_name.split('.');
    (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
}

fn schema_info(schema: &Securable) -> Value {
    let mut info = common(schema);
    info.insert("catalog_name".into(), json!(parents(&schema.full_name).0));
    Value::Object(info)
}

fn table_info(table: &Securable) -> Value {
    let mut info = common(table);
    let (catalog, schema) = parents(&table.full_name);
    info.insert("catalog_name".into(), json!(catalog));
    info.insert("schema_name".into(), json!(schema));
    if table.securable_type == SecurableType::View {
        info.insert("table_type".into(), json!("VIEW"));
    } else {
        info.insert("table_type".into(), json!("MANAGED"));
        info.insert("data_source_format".into(), json!("DELTA"));
    }
    Value::Object(info)
}

fn empty() -> Response {
    Json(json!({})).into_response()
}

// ----- catalogs ----------------------------------------------------------------------------

/// Creates the catalog or schema a request asks for, as the caller.
async fn create(
    state: &AppState,
    context: DatabricksContext,
    new: NewSecurable,
) -> DatabricksResult<Securable> {
    let created = caller(state, context)
        .create(new.securable_type, &new.full_name, new.comment, false)
        .await?;
    Ok(created)
}

async fn create_catalog(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: CreateCatalogBody = json_request(body, MAX_BODY_BYTES).await?;
    let catalog = create(&state, context, body.try_into()?).await?;
    Ok(Json(catalog_info(&catalog)).into_response())
}

async fn list_catalogs(
    context: DatabricksContext,
    State(state): State<AppState>,
) -> DatabricksResult {
    let catalogs = caller(&state, context)
        .list(SecurableType::Catalog, None)
        .await?;
    let catalogs: Vec<Value> = catalogs.iter().map(catalog_info).collect();
    Ok(Json(json!({ "catalogs": catalogs })).into_response())
}

async fn get_catalog(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let name = one(params)?;
    let catalog = caller(&state, context)
        .get(SecurableType::Catalog, &name)
        .await?;
    Ok(Json(catalog_info(&catalog)).into_response())
}

async fn delete_catalog(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    query: QueryParams,
) -> DatabricksResult {
    let name = one(params)?;
    let force = flag(&query_params(query)?, "force")?;
    caller(&state, context)
        .drop(SecurableType::Catalog, &name, false, force)
        .await?;
    Ok(empty())
}

// ----- schemas -----------------------------------------------------------------------------

async fn create_schema(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: CreateSchemaBody = json_request(body, MAX_BODY_BYTES).await?;
    let schema = create(&state, context, body.try_into()?).await?;
    Ok(Json(schema_info(&schema)).into_response())
}

async fn list_schemas(
    context: DatabricksContext,
    State(state): State<AppState>,
    query: QueryParams,
) -> DatabricksResult {
    let query = query_params(query)?;
    let catalog = required(&query, "catalog_name")?;
    let schemas = caller(&state, context)
        .list(SecurableType::Schema, Some(catalog))
        .await?;
    let schemas: Vec<Value> = schemas.iter().map(schema_info).collect();
    Ok(Json(json!({ "schemas": schemas })).into_response())
}

async fn get_schema(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let full_name = one(params)?;
    let schema = caller(&state, context)
        .get(SecurableType::Schema, &full_name)
        .await?;
    Ok(Json(schema_info(&schema)).into_response())
}

async fn delete_schema(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    query: QueryParams,
) -> DatabricksResult {
    let full_name = one(params)?;
    let force = flag(&query_params(query)?, "force")?;
    caller(&state, context)
        .drop(SecurableType::Schema, &full_name, false, force)
        .await?;
    Ok(empty())
}

// ----- tables ------------------------------------------------------------------------------

async fn list_tables(
    context: DatabricksContext,
    State(state): State<AppState>,
    query: QueryParams,
) -> DatabricksResult {
    let query = query_params(query)?;
    let schema = format!(
        "{}.{}",
        required(&query, "catalog_name")?,
        required(&query, "schema_name")?
    );
    let caller = caller(&state, context);
    // Tables and views share a namespace and one listing, by name.
    let mut tables = caller.list(SecurableType::Table, Some(&schema)).await?;
    tables.extend(caller.list(SecurableType::View, Some(&schema)).await?);
    tables.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    let tables: Vec<Value> = tables.iter().map(table_info).collect();
    Ok(Json(json!({ "tables": tables })).into_response())
}

/// A table or a view by name: a table address finds a view too (the governance service's
/// one rule for it).
async fn find_table(caller: &Caller<'_>, full_name: &str) -> DatabricksResult<Securable> {
    Ok(caller.get(SecurableType::Table, full_name).await?)
}

async fn get_table(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let full_name = one(params)?;
    let caller = caller(&state, context);
    let table = find_table(&caller, &full_name).await?;
    Ok(Json(table_info(&table)).into_response())
}

async fn delete_table(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let full_name = one(params)?;
    let caller = caller(&state, context);
    let table = find_table(&caller, &full_name).await?;
    caller
        .drop(table.securable_type, &table.full_name, false, false)
        .await?;
    Ok(empty())
}

/// `PATCH /catalogs/{name}` and `/schemas/{full_name}`: what the SDK, the CLI and Terraform
/// send to rename, comment on, transfer or (a catalog) isolate a catalog or schema. Other
/// fields they may send (`properties`, ...) are not kept here and are ignored.
#[derive(Debug, Deserialize)]
struct UpdateSecurableBody {
    new_name: Option<String>,
    comment: Option<String>,
    owner: Option<String>,
    isolation_mode: Option<String>,
}

impl UpdateSecurableBody {
    fn into_update(self) -> DatabricksResult<SecurableUpdate> {
        let blank = |value: &Option<String>| value.as_ref().is_some_and(|v| v.trim().is_empty());
        if blank(&self.new_name) {
            return Err(ScimError::invalid_value("`new_name` must not be empty").into());
        }
        if blank(&self.owner) {
            return Err(ScimError::invalid_value("`owner` must not be empty").into());
        }
        let isolation_mode = match &self.isolation_mode {
            Some(mode) => Some(isolation_mode(mode)?),
            None => None,
        };
        Ok(SecurableUpdate {
            new_name: self.new_name,
            comment: self.comment,
            owner: self.owner,
            isolation_mode,
        })
    }
}

/// An isolation mode as clients write it: `OPEN` or `ISOLATED`, or the older SDKs'
/// `ISOLATION_MODE_OPEN` and `ISOLATION_MODE_ISOLATED`, in any case.
fn isolation_mode(text: &str) -> DatabricksResult<IsolationMode> {
    let upper = text.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("ISOLATION_MODE_").unwrap_or(&upper);
    IsolationMode::parse(bare).ok_or_else(|| {
        ScimError::invalid_value(format!(
            "`isolation_mode` `{text}` is not an isolation mode: OPEN or ISOLATED"
        ))
        .into()
    })
}

/// `PATCH /tables/{full_name}`: a table's owner, the one thing Databricks' table update takes.
#[derive(Debug, Deserialize)]
struct UpdateTableBody {
    owner: Option<String>,
}

async fn update_securable(
    state: &AppState,
    context: DatabricksContext,
    securable_type: SecurableType,
    params: Params,
    body: Body,
) -> DatabricksResult<Securable> {
    let full_name = one(params)?;
    let body: UpdateSecurableBody = json_request(body, MAX_BODY_BYTES).await?;
    let update = body.into_update()?;
    Ok(caller(state, context)
        .update(securable_type, &full_name, update)
        .await?)
}

async fn update_catalog(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: Body,
) -> DatabricksResult {
    let catalog = update_securable(&state, context, SecurableType::Catalog, params, body).await?;
    Ok(Json(catalog_info(&catalog)).into_response())
}

async fn update_schema(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: Body,
) -> DatabricksResult {
    let schema = update_securable(&state, context, SecurableType::Schema, params, body).await?;
    Ok(Json(schema_info(&schema)).into_response())
}

async fn update_table(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: Body,
) -> DatabricksResult {
    let full_name = one(params)?;
    let body: UpdateTableBody = json_request(body, MAX_BODY_BYTES).await?;
    let owner = match body.owner {
        Some(owner) if !owner.trim().is_empty() => owner,
        _ => {
            return Err(ScimError::invalid_value(
                "`owner` is required: a table update changes its owner only",
            )
            .into())
        }
    };
    let update = SecurableUpdate {
        owner: Some(owner),
        ..SecurableUpdate::default()
    };
    let table = caller(&state, context)
        .update(SecurableType::Table, &full_name, update)
        .await?;
    Ok(Json(table_info(&table)).into_response())
}

/// `POST /tables`: the fields Databricks requires. The registry keeps a table's or view's
/// name, owner and comment; `data_source_format` and `storage_location` are required, as
/// there, and not kept.
#[derive(Debug, Deserialize)]
struct CreateTableBody {
    name: Option<String>,
    catalog_name: Option<String>,
    schema_name: Option<String>,
    table_type: Option<String>,
    data_source_format: Option<String>,
    storage_location: Option<String>,
    comment: Option<String>,
}

impl CreateTableBody {
    /// The type and full name to create: `VIEW` makes a view, `MANAGED` a table. The other
    /// table types Databricks has (external, streaming, foreign, clones, ...) are refused
    /// rather than kept as something they are not.
    fn into_new(self) -> DatabricksResult<(SecurableType, String, Option<String>)> {
        let required = |value: Option<String>, name: &str| {
            value
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| ScimError::invalid_value(format!("`{name}` is required")))
        };
        let name = required(self.name, "name")?;
        let catalog = required(self.catalog_name, "catalog_name")?;
        let schema = required(self.schema_name, "schema_name")?;
        let table_type = required(self.table_type, "table_type")?;
        required(self.data_source_format, "data_source_format")?;
        required(self.storage_location, "storage_location")?;
        let securable_type = match table_type.to_ascii_uppercase().as_str() {
            "MANAGED" => SecurableType::Table,
            "VIEW" => SecurableType::View,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "`table_type` `{table_type}` is not one this registry keeps: MANAGED or VIEW"
                ))
                .into())
            }
        };
        for (part, field) in [
            (&catalog, "catalog_name"),
            (&schema, "schema_name"),
            (&name, "name"),
        ] {
            if part.contains('.') {
                return Err(ScimError::invalid_value(format!(
                    "`{field}` is one name, without dots"
                ))
                .into());
            }
        }
        Ok((
            securable_type,
            format!("{catalog}.{schema}.{name}"),
            self.comment,
        ))
    }
}

async fn create_table(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: CreateTableBody = json_request(body, MAX_BODY_BYTES).await?;
    let (securable_type, full_name, comment) = body.into_new()?;
    let table = caller(&state, context)
        .create(securable_type, &full_name, comment, false)
        .await?;
    Ok(Json(table_info(&table)).into_response())
}

/// `GET /tables/{full_name}/exists`: the same question as `GET /tables/{full_name}`, so a
/// table the caller may not see is answered as a missing one (`false`), never as a 403.
async fn table_exists(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
) -> DatabricksResult {
    let full_name = one(params)?;
    let exists = match caller(&state, context)
        .get(SecurableType::Table, &full_name)
        .await
    {
        Ok(_) => true,
        Err(ScimError::NotFound(_)) => false,
        Err(error) => return Err(error.into()),
    };
    Ok(Json(json!({ "table_exists": exists })).into_response())
}

async fn table_summaries(
    context: DatabricksContext,
    State(state): State<AppState>,
    query: QueryParams,
) -> DatabricksResult {
    let query = query_params(query)?;
    let catalog = required(&query, "catalog_name")?;
    let paging = Paging::of(&query)?;
    let pattern = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|p| !p.is_empty())
    };
    let tables = caller(&state, context)
        .table_summaries(
            catalog,
            pattern("schema_name_pattern"),
            pattern("table_name_pattern"),
        )
        .await?;
    let (page, next) = paging.page(tables, |table| table.full_name.as_str());
    let tables: Vec<Value> = page
        .iter()
        .map(|table| {
            json!({
                "full_name": table.full_name,
                "table_type": if table.securable_type == SecurableType::View { "VIEW" } else { "MANAGED" },
            })
        })
        .collect();
    let mut body = json!({ "tables": tables });
    if let Some(next) = next {
        body["next_page_token"] = json!(next);
    }
    Ok(Json(body).into_response())
}

/// Unity Catalog's paging of a list (reference: the UC pagination rule): `max_results` unset
/// is the whole list, 0 the server's page size, more than the cap the cap, below 0 an error;
/// `page_token` is the key of the last item of the page before, and the list goes on after it.
pub(crate) struct Paging {
    size: Option<usize>,
    after: Option<String>,
}

/// The server's page size, and the most one page holds, as Databricks caps table summaries.
pub(crate) const MAX_PAGE_SIZE: usize = 10_000;

impl Paging {
    pub(crate) fn of(query: &HashMap<String, String>) -> DatabricksResult<Paging> {
        let size = match query.get("max_results").map(|value| value.trim()) {
            None | Some("") => None,
            Some(text) => match text.parse::<i64>() {
                Ok(0) => Some(MAX_PAGE_SIZE),
                Ok(size) if size > 0 => Some(
                    usize::try_from(size)
                        .unwrap_or(MAX_PAGE_SIZE)
                        .min(MAX_PAGE_SIZE),
                ),
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "`max_results` must be a whole number of 0 or more, not `{text}`"
                    ))
                    .into())
                }
            },
        };
        let after = query
            .get("page_token")
            .filter(|token| !token.is_empty())
            .cloned();
        Ok(Paging { size, after })
    }

    /// One page of `items` (sorted by `key`) and the token of the next, if any remain.
    pub(crate) fn page<T>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> &str,
    ) -> (Vec<T>, Option<String>) {
        let mut items: Vec<T> = match &self.after {
            Some(after) => items
                .into_iter()
                .filter(|item| key(item) > after.as_str())
                .collect(),
            None => items,
        };
        match self.size {
            Some(size) if items.len() > size => {
                items.truncate(size);
                let next = items.last().map(|item| key(item).to_string());
                (items, next)
            }
            _ => (items, None),
        }
    }
}

// ----- permissions -------------------------------------------------------------------------

async fn render_permissions(
    caller: &Caller<'_>,
    securable_type: SecurableType,
    full_name: &str,
    principal: Option<&str>,
) -> DatabricksResult {
    let assignments = caller.grants(securable_type, full_name, principal).await?;
    let assignments: Vec<Value> = assignments
        .into_iter()
        .map(|assignment| {
            let privileges: Vec<&str> = assignment
                .privileges
                .iter()
                .map(Privilege::as_str)
                .collect();
            json!({"principal": assignment.principal, "privileges": privileges})
        })
        .collect();
    Ok(Json(json!({ "privilege_assignments": assignments })).into_response())
}

async fn get_permissions(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    query: QueryParams,
) -> DatabricksResult {
    let (kind, full_name) = two(params)?;
    let query = query_params(query)?;
    let caller = caller(&state, context);
    render_permissions(
        &caller,
        securable_type(&kind)?,
        &full_name,
        query.get("principal").map(String::as_str),
    )
    .await
}

async fn update_permissions(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    body: Body,
) -> DatabricksResult {
    let (kind, full_name) = two(params)?;
    let kind = securable_type(&kind)?;
    let body: UpdatePermissionsBody = json_request(body, MAX_BODY_BYTES).await?;
    let changes: Vec<PrivilegeChanges> = body.try_into()?;
    let caller = caller(&state, context);
    caller.update_privileges(kind, &full_name, changes).await?;
    render_permissions(&caller, kind, &full_name, None).await
}

async fn get_effective_permissions(
    context: DatabricksContext,
    State(state): State<AppState>,
    params: Params,
    query: QueryParams,
) -> DatabricksResult {
    let (kind, full_name) = two(params)?;
    let query = query_params(query)?;
    let caller = caller(&state, context);
    let assignments = caller
        .effective(
            securable_type(&kind)?,
            &full_name,
            query.get("principal").map(String::as_str),
        )
        .await?;
    let assignments: Vec<Value> = assignments
        .into_iter()
        .map(|assignment| {
            let privileges: Vec<Value> = assignment
                .privileges
                .into_iter()
                .map(|held| {
                    let mut entry = Map::new();
                    entry.insert("privilege".into(), json!(held.privilege.as_str()));
                    if let Some(from) = held.inherited_from {
                        entry.insert(
                            "inherited_from_type".into(),
                            json!(from.securable_type.as_str()),
                        );
                        entry.insert("inherited_from_name".into(), json!(from.full_name));
                    }
                    Value::Object(entry)
                })
                .collect();
            json!({"principal": assignment.principal, "privileges": privileges})
        })
        .collect();
    Ok(Json(json!({ "privilege_assignments": assignments })).into_response())
}
