//! The resource endpoints: `/Users`, `/Groups`, `/ServicePrincipals` (list, create, get,
//! replace, patch, delete, `.search`), the root `/.search`, and `/Me`.

use super::{
    if_match, if_none_match, json_body, list_parameters, resource_response, MAX_RESOURCE_BODY_BYTES,
};
use crate::context::ScimContext;
use crate::error::{scim_json_text, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use scimitar_app::authority::PrincipalUpdate;
use scimitar_app::service::DocumentJson;
use scimitar_domain::patch::parse_patch_request;
use scimitar_domain::projection::Projection;
use scimitar_domain::query::{
    ListParameters, ListQuery, MAX_LIST_PAGE_MEMBERS, MAX_LIST_RESPONSE_BYTES,
};
use scimitar_domain::resource::parse_resource;
use scimitar_domain::schema::LIST_RESPONSE_SCHEMA;
use scimitar_domain::{PrincipalId, PrincipalKind, ScimError};
use serde_json::Value;
use std::collections::HashMap;

fn kind_of(params: &HashMap<String, String>) -> Result<PrincipalKind, ScimError> {
    let segment = params
        .get("resource")
        .map(String::as_str)
        .unwrap_or_default();
    PrincipalKind::from_endpoint(segment)
        .ok_or_else(|| ScimError::NotFound(format!("there is no resource type at /{segment}")))
}

fn id_of(params: &HashMap<String, String>) -> PrincipalId {
    PrincipalId::new(params.get("id").cloned().unwrap_or_default())
}

fn projection(
    kind: PrincipalKind,
    query: &HashMap<String, String>,
) -> Result<Projection, ScimError> {
    let parameters = list_parameters(query);
    Projection::parse(
        kind.resource_type(),
        parameters.attributes.as_deref(),
        parameters.excluded_attributes.as_deref(),
    )
}

/// How many resources of a list page are rendered at once: few enough that little is rendered
/// past a page's byte budget, many enough that a page of groups reads its members in a few
/// queries.
const RENDERED_AT_ONCE: usize = 250;

fn list_response(total: u64, start_index: u64, mut resources: Vec<DocumentJson>) -> Response {
    // A page ends before the resource that would take it past its byte budget (keeping at
    // least one); `itemsPerPage` tells the client where to go on from.
    let mut size = 0usize;
    let fitting = resources
        .iter()
        .position(|document| {
            size += document.as_str().len() + 1;
            size > MAX_LIST_RESPONSE_BYTES
        })
        .unwrap_or(resources.len())
        .max(1);
    resources.truncate(fitting);
    // Written as text around the documents, which are JSON text already.
    let mut body = String::with_capacity(
        128 + resources
            .iter()
            .map(|document| document.as_str().len() + 1)
            .sum::<usize>(),
    );
    body.push_str(&format!(
        "{{\"schemas\":[{}],\"totalResults\":{total},\"startIndex\":{start_index},\"itemsPerPage\":{},\"Resources\":[",
        Value::from(LIST_RESPONSE_SCHEMA),
        resources.len()
    ));
    for (index, document) in resources.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(document.as_str());
    }
    body.push_str("]}");
    scim_json_text(StatusCode::OK, body)
}

async fn list_kind(
    state: &AppState,
    context: &ScimContext,
    kind: PrincipalKind,
    parameters: &ListParameters,
) -> ApiResult {
    let query = ListQuery::parse(kind.resource_type(), parameters)?;
    let services = &state.services;
    let reader = services
        .directory_reader(&context.actor, context.mount.surface())
        .await?;
    let mut page = services.list(&reader, kind, &query).await?;
    let (fitting, _) = services.within_member_budget(
        context.actor.account(),
        &page.principals,
        &query.projection,
        MAX_LIST_PAGE_MEMBERS,
    );
    page.principals.truncate(fitting);
    // Rendered a slice at a time, stopping at the page's byte budget: what lies past it is
    // never rendered.
    let mut resources = Vec::new();
    let mut size = 0usize;
    'slices: for slice in page.principals.chunks(RENDERED_AT_ONCE) {
        let rendered = services
            .render_all(&reader, slice, &context.base_url, &query.projection)
            .await?;
        for document in rendered {
            size += document.as_str().len() + 1;
            if size > MAX_LIST_RESPONSE_BYTES && !resources.is_empty() {
                break 'slices;
            }
            resources.push(document);
        }
    }
    Ok(list_response(
        page.total_results,
        query.start_index,
        resources,
    ))
}

pub async fn list(
    State(state): State<AppState>,
    context: ScimContext,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let kind = kind_of(&params)?;
    list_kind(&state, &context, kind, &list_parameters(&query)).await
}

/// Reads a `SearchRequest` body (RFC 7644 section 3.4.3) into list parameters.
fn search_parameters(body: &Value) -> Result<ListParameters, ScimError> {
    let object = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a search request must be a JSON object"))?;
    let get = |name: &str| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    };
    let text = |name: &str| -> Result<Option<String>, ScimError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            Some(_) => Err(ScimError::invalid_value(format!(
                "'{name}' has the wrong type"
            ))),
        }
    };
    Ok(ListParameters {
        filter: text("filter")?,
        sort_by: text("sortBy")?,
        sort_order: text("sortOrder")?,
        start_index: text("startIndex")?,
        count: text("count")?,
        attributes: text("attributes")?,
        excluded_attributes: text("excludedAttributes")?,
    })
}

pub async fn search(
    State(state): State<AppState>,
    context: ScimContext,
    Path(params): Path<HashMap<String, String>>,
    body: Body,
) -> ApiResult {
    let kind = kind_of(&params)?;
    let body = json_body(body, MAX_RESOURCE_BODY_BYTES).await?;
    list_kind(&state, &context, kind, &search_parameters(&body)?).await
}

/// `POST /.search`: one search across users, groups and service principals, paged as one list.
/// A filter naming an attribute some resource types lack matches nothing of those types.
pub async fn search_all(
    State(state): State<AppState>,
    context: ScimContext,
    body: Body,
) -> ApiResult {
    let body = json_body(body, MAX_RESOURCE_BODY_BYTES).await?;
    let parameters = search_parameters(&body)?;
    let mut queries = Vec::new();
    let mut last_error = None;
    for kind in PrincipalKind::ALL {
        match ListQuery::parse(kind.resource_type(), &parameters) {
            Ok(query) => queries.push((kind, query)),
            Err(error) => last_error = Some(error),
        }
    }
    if queries.is_empty() {
        return Err(last_error
            .unwrap_or_else(|| ScimError::invalid_filter("invalid search"))
            .into());
    }
    let start_index = queries
        .first()
        .map(|(_, query)| query.start_index)
        .unwrap_or(1);
    let mut skip = start_index - 1;
    let mut remaining = queries.first().map(|(_, query)| query.count).unwrap_or(0);
    let mut total = 0;
    let mut resources = Vec::new();
    let mut members_left = MAX_LIST_PAGE_MEMBERS;
    // Set once the member budget ends the page: later kinds add to the total only.
    let mut page_ended = false;
    let reader = state
        .services
        .directory_reader(&context.actor, context.mount.surface())
        .await?;
    for (kind, mut query) in queries {
        query.start_index = skip + 1;
        query.count = remaining;
        if page_ended {
            query.count = 0;
        }
        let mut page = state.services.list(&reader, kind, &query).await?;
        total += page.total_results;
        skip = skip.saturating_sub(page.total_results);
        remaining -= page.principals.len() as u64;
        let (mut fitting, used) = state.services.within_member_budget(
            context.actor.account(),
            &page.principals,
            &query.projection,
            members_left,
        );
        // The first resource of the page always fits; a later kind's first does not.
        if !resources.is_empty() && used > members_left {
            fitting = 0;
        }
        if fitting < page.principals.len() {
            page.principals.truncate(fitting);
            page_ended = true;
        }
        members_left = members_left.saturating_sub(used);
        resources.extend(
            state
                .services
                .render_all(
                    &reader,
                    &page.principals,
                    &context.base_url,
                    &query.projection,
                )
                .await?,
        );
    }
    Ok(list_response(total, start_index, resources))
}

pub async fn create(
    State(state): State<AppState>,
    context: ScimContext,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult {
    let kind = kind_of(&params)?;
    let projection = projection(kind, &query)?;
    let body = json_body(body, MAX_RESOURCE_BODY_BYTES).await?;
    let parsed = parse_resource(kind.resource_type(), &body)?;
    let admin = state.services.authorize_admin(&context.actor).await?;
    let created = state.services.create(&admin, kind, parsed).await?;
    let document = state
        .services
        .render_one(&admin.reader(), &created, &context.base_url, &projection)
        .await?;
    let mut response = resource_response(StatusCode::CREATED, document, &created.etag());
    let location = scimitar_domain::render::location(&context.base_url, kind, &created.id);
    if let Ok(value) = axum::http::HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    Ok(response)
}

pub async fn get_one(
    State(state): State<AppState>,
    context: ScimContext,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    let kind = kind_of(&params)?;
    let projection = projection(kind, &query)?;
    let reader = state
        .services
        .directory_reader(&context.actor, context.mount.surface())
        .await?;
    let principal = state
        .services
        .get_for_read(&reader, kind, &id_of(&params))
        .await?;
    if if_none_match(&headers)? == Some(principal.version) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(&principal.etag()) {
            response
                .headers_mut()
                .insert(axum::http::header::ETAG, value);
        }
        return Ok(response);
    }
    let document = state
        .services
        .render_one(&reader, &principal, &context.base_url, &projection)
        .await?;
    Ok(resource_response(
        StatusCode::OK,
        document,
        &principal.etag(),
    ))
}

pub async fn replace(
    State(state): State<AppState>,
    context: ScimContext,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let kind = kind_of(&params)?;
    let projection = projection(kind, &query)?;
    let pinned = if_match(&headers)?;
    let body = json_body(body, MAX_RESOURCE_BODY_BYTES).await?;
    let parsed = parse_resource(kind.resource_type(), &body)?;
    let id = id_of(&params);
    let update = state
        .services
        .authorize_update(&context.actor, kind, &id)
        .await?;
    let admin = match update {
        PrincipalUpdate::Admin(admin) => admin,
        PrincipalUpdate::Manager(manager) => {
            let services = &state.services;
            let updated = services
                .replace_managed(&manager, kind, parsed, pinned)
                .await?;
            let cap = PATCH_RESPONSE_MEMBER_CAP;
            let document = services
                .render_managed(&manager, &updated, &context.base_url, &projection, cap)
                .await?;
            return Ok(resource_response(StatusCode::OK, document, &updated.etag()));
        }
    };
    let updated = state
        .services
        .replace(&admin, kind, &id, parsed, pinned)
        .await?;
    let document = state
        .services
        .render_one(&admin.reader(), &updated, &context.base_url, &projection)
        .await?;
    Ok(resource_response(StatusCode::OK, document, &updated.etag()))
}

/// The largest member list a PATCH response carries unasked.
pub const PATCH_RESPONSE_MEMBER_CAP: usize = 1_000;

/// PATCH answers 200 with the resource (Databricks and strict clients expect a body). A group's
/// member list is included only when it has at most [`PATCH_RESPONSE_MEMBER_CAP`] members
/// (or when `attributes` asks for it), so a PATCH on a group of a million never serialises the
/// million.
pub async fn patch(
    State(state): State<AppState>,
    context: ScimContext,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let kind = kind_of(&params)?;
    let asks_for_members = list_parameters(&query)
        .attributes
        .is_some_and(|attributes| attributes.to_ascii_lowercase().contains("members"));
    let projection = projection(kind, &query)?;
    let pinned = if_match(&headers)?;
    let body = json_body(body, MAX_RESOURCE_BODY_BYTES).await?;
    let operations = parse_patch_request(&body)?;
    let id = id_of(&params);
    let update = state
        .services
        .authorize_update(&context.actor, kind, &id)
        .await?;
    let admin = match update {
        PrincipalUpdate::Admin(admin) => admin,
        // A manager of the group or service principal who is not an admin: only what
        // managers may change, and the response renders what it manages.
        PrincipalUpdate::Manager(manager) => {
            let services = &state.services;
            let updated = services
                .patch_managed(&manager, kind, &operations, pinned)
                .await?;
            let cap = PATCH_RESPONSE_MEMBER_CAP;
            let document = services
                .render_managed(&manager, &updated, &context.base_url, &projection, cap)
                .await?;
            return Ok(resource_response(StatusCode::OK, document, &updated.etag()));
        }
    };
    let updated = state
        .services
        .patch(&admin, kind, &id, &operations, pinned)
        .await?;
    let document = if asks_for_members {
        state
            .services
            .render_one(&admin.reader(), &updated, &context.base_url, &projection)
            .await?
    } else {
        state
            .services
            .render_with_small_member_list(
                &admin,
                &updated,
                &context.base_url,
                &projection,
                PATCH_RESPONSE_MEMBER_CAP,
            )
            .await?
    };
    Ok(resource_response(StatusCode::OK, document, &updated.etag()))
}

pub async fn delete(
    State(state): State<AppState>,
    context: ScimContext,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    let kind = kind_of(&params)?;
    let pinned = if_match(&headers)?;
    let admin = state.services.authorize_admin(&context.actor).await?;
    state
        .services
        .delete(&admin, kind, &id_of(&params), pinned)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /Me`: the principal behind the bearer token (RFC 7644 section 3.11), whole, whoever
/// it is.
pub async fn me(
    State(state): State<AppState>,
    context: ScimContext,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let (principal, document) = state
        .services
        .me(&context.actor, &context.base_url, |kind| {
            projection(kind, &query)
        })
        .await?;
    Ok(resource_response(
        StatusCode::OK,
        document,
        &principal.etag(),
    ))
}
