//! `/Bulk` (RFC 7644 section 3.7): many operations in one request, each applied on its own
//! (bulk is not a transaction), with `bulkId` references between them and `failOnErrors`.

use super::json_body;
use crate::context::ScimContext;
use crate::error::{error_body, scim_json, status_of, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use futures_util::future::join_all;
use scimitar_app::AccountAdmin;
use scimitar_domain::patch::parse_patch_request;
use scimitar_domain::resource::{parse_etag, parse_resource, Principal};
use scimitar_domain::schema::{PrincipalKind, BULK_RESPONSE_SCHEMA};
use scimitar_domain::{PrincipalId, ScimError, ScimType};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Advertised in `/ServiceProviderConfig`; larger requests get 413.
pub const MAX_BULK_OPERATIONS: usize = 1_000;
pub const MAX_BULK_PAYLOAD_BYTES: usize = 1024 * 1024;

const BULK_ID_PREFIX: &str = "bulkId:";

pub async fn bulk(State(state): State<AppState>, context: ScimContext, body: Body) -> ApiResult {
    let body = json_body(body, MAX_BULK_PAYLOAD_BYTES).await?;
    let object = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a bulk request must be a JSON object"))?;
    let get = |name: &str| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let operations = get("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a bulk request needs an 'Operations' array"))?;
    if operations.len() > MAX_BULK_OPERATIONS {
        return Err(ScimError::PayloadTooLarge(format!(
            "a bulk request may carry at most {MAX_BULK_OPERATIONS} operations, this one has {}",
            operations.len()
        ))
        .into());
    }
    let fail_on_errors = match get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            ScimError::invalid_value("'failOnErrors' must be a positive integer")
        })?),
    };
    // Every bulk operation is a change only admins may make: a non-admin's request is refused
    // whole, before anything runs.
    let admin = state.services.authorize_admin(&context.actor).await?;
    let mut created: HashMap<String, PrincipalId> = HashMap::new();
    let mut results = Vec::with_capacity(operations.len());
    let mut errors = 0u64;
    let mut next = 0;
    while next < operations.len() {
        if fail_on_errors.is_some_and(|limit| errors >= limit) {
            break;
        }
        // With `failOnErrors` the request stops at the nth error, which only one operation
        // after another can say.
        let together = match fail_on_errors {
            None => independent_creates(&operations[next..]),
            Some(_) => 0,
        };
        let outcomes = if together > 1 {
            let run = &operations[next..next + together];
            next += together;
            let outcomes = join_all(run.iter().map(|operation| async {
                let mut own = HashMap::new();
                let outcome = run_operation(&state, &context, &admin, operation, &mut own).await;
                (outcome, own)
            }))
            .await;
            outcomes
                .into_iter()
                .map(|(outcome, own)| {
                    created.extend(own);
                    outcome
                })
                .collect()
        } else {
            let operation = &operations[next];
            next += 1;
            vec![run_operation(&state, &context, &admin, operation, &mut created).await]
        };
        for outcome in outcomes {
            if outcome.get("response").is_some() {
                errors += 1;
            }
            results.push(Value::Object(outcome));
        }
    }
    Ok(scim_json(
        StatusCode::OK,
        json!({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": results}),
    ))
}

/// How many of the leading `operations` are creates that can run at once: POSTs that name no
/// `bulkId` of another operation, and no two of the same kind with the same unique name
/// (`userName`, `displayName`, `applicationId`), so that none depends on another's outcome and
/// each answer is what it would be one after the other. Submitted together, their changes
/// share the store's commits (SQLite's group commit) instead of one commit each.
fn independent_creates(operations: &[Value]) -> usize {
    let mut names = std::collections::HashSet::new();
    operations
        .iter()
        .take_while(|operation| {
            let field = |name: &str| field_of(operation, name);
            let post = field("method")
                .and_then(Value::as_str)
                .is_some_and(|method| method.eq_ignore_ascii_case("POST"));
            let data = field("data");
            post && !field("path").is_some_and(mentions_bulk_id)
                && !data.is_some_and(mentions_bulk_id)
                && unique_name_of(field("path"), data).is_none_or(|name| names.insert(name))
        })
        .count()
}

/// A member of a bulk operation (names are case-insensitive, as RFC 7644 reads them).
fn field_of<'a>(operation: &'a Value, name: &str) -> Option<&'a Value> {
    operation
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// Whether any string in `value` is a `bulkId:` reference.
fn mentions_bulk_id(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains(BULK_ID_PREFIX),
        Value::Array(items) => items.iter().any(mentions_bulk_id),
        Value::Object(object) => object.values().any(mentions_bulk_id),
        _ => false,
    }
}

/// The endpoint and lowercased unique name a create would take (what the store refuses a
/// second of); `None` when the data names none.
fn unique_name_of(path: Option<&Value>, data: Option<&Value>) -> Option<(String, String)> {
    let endpoint = path?.as_str()?.trim_matches('/').to_ascii_lowercase();
    let name = ["userName", "displayName", "applicationId"]
        .iter()
        .find_map(|attribute| field_of(data?, attribute)?.as_str())?;
    Some((endpoint, name.to_lowercase()))
}

/// Replaces every `"bulkId:x"` string in `value` with the id created for `x`.
fn resolve_references(
    value: &mut Value,
    created: &HashMap<String, PrincipalId>,
) -> Result<(), ScimError> {
    match value {
        Value::String(text) => {
            if let Some(reference) = text.strip_prefix(BULK_ID_PREFIX) {
                let id = created.get(reference).ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "bulkId '{reference}' does not name an earlier successful POST"
                    ))
                })?;
                *text = id.to_string();
            }
        }
        Value::Array(items) => {
            for item in items {
                resolve_references(item, created)?;
            }
        }
        Value::Object(object) => {
            for item in object.values_mut() {
                resolve_references(item, created)?;
            }
        }
        _ => {}
    }
    Ok(())
}

async fn run_operation(
    state: &AppState,
    context: &ScimContext,
    admin: &AccountAdmin,
    operation: &Value,
    created: &mut HashMap<String, PrincipalId>,
) -> Map<String, Value> {
    let field = |name: &str| {
        operation
            .as_object()
            .and_then(|object| {
                object
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
            })
            .map(|(_, value)| value.clone())
    };
    let method = field("method")
        .and_then(|v| v.as_str().map(str::to_ascii_uppercase))
        .unwrap_or_default();
    let bulk_id = field("bulkId").and_then(|v| v.as_str().map(str::to_string));
    let mut outcome = Map::new();
    outcome.insert("method".into(), json!(method));
    if let Some(bulk_id) = &bulk_id {
        outcome.insert("bulkId".into(), json!(bulk_id));
    }
    let result = execute(
        state,
        admin,
        &method,
        bulk_id.as_deref(),
        field("path"),
        field("data"),
        field("version"),
        created,
    )
    .await;
    match result {
        Ok((status, principal)) => {
            if let Some(principal) = principal {
                let location = scimitar_domain::render::location(
                    &context.base_url,
                    principal.kind,
                    &principal.id,
                );
                outcome.insert("location".into(), json!(location));
                outcome.insert("version".into(), json!(principal.etag()));
            }
            outcome.insert("status".into(), json!(status.as_u16().to_string()));
        }
        Err(error) => {
            outcome.insert(
                "status".into(),
                json!(status_of(&error).as_u16().to_string()),
            );
            outcome.insert("response".into(), Value::Object(error_body(&error)));
        }
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    state: &AppState,
    admin: &AccountAdmin,
    method: &str,
    bulk_id: Option<&str>,
    path: Option<Value>,
    data: Option<Value>,
    version: Option<Value>,
    created: &mut HashMap<String, PrincipalId>,
) -> Result<(StatusCode, Option<Principal>), ScimError> {
    let mut path = path
        .and_then(|value| value.as_str().map(str::to_string))
        .ok_or_else(|| ScimError::invalid_syntax("each bulk operation needs a 'path'"))?;
    let mut path_value = Value::String(path.clone());
    resolve_references(&mut path_value, created)?;
    if let Value::String(resolved) = path_value {
        path = resolved;
    }
    // `/Groups/bulkId:x` holds the reference after a slash, not as the whole string.
    if let Some((head, reference)) = path.split_once(BULK_ID_PREFIX) {
        let id = created.get(reference).ok_or_else(|| {
            ScimError::invalid_value(format!(
                "bulkId '{reference}' does not name an earlier successful POST"
            ))
        })?;
        path = format!("{head}{id}");
    }
    let mut segments = path.trim_matches('/').splitn(2, '/');
    let endpoint = segments.next().unwrap_or_default();
    let kind = PrincipalKind::from_endpoint(endpoint)
        .ok_or_else(|| ScimError::invalid_path(format!("'{path}' is not a resource endpoint")))?;
    let id = segments.next().map(PrincipalId::new);
    let pinned = version
        .as_ref()
        .and_then(Value::as_str)
        .map(|tag| {
            parse_etag(tag).ok_or_else(|| {
                ScimError::bad(
                    ScimType::InvalidVersion,
                    format!("'{tag}' is not an entity tag"),
                )
            })
        })
        .transpose()?;
    let mut data = data;
    if let Some(data) = data.as_mut() {
        resolve_references(data, created)?;
    }
    let data = || {
        data.clone()
            .ok_or_else(|| ScimError::invalid_syntax(format!("{method} needs 'data'")))
    };
    let services = &state.services;
    // An earlier operation of this request may have removed the caller from `admins`.
    services.confirm_admin(admin)?;
    let need_id = || {
        id.clone()
            .ok_or_else(|| ScimError::invalid_path(format!("{method} needs a path with an id")))
    };
    match method {
        "POST" => {
            if id.is_some() {
                return Err(ScimError::invalid_path(
                    "POST takes a resource endpoint without an id",
                ));
            }
            let bulk_id = bulk_id.ok_or_else(|| {
                ScimError::invalid_syntax("POST in a bulk request needs a 'bulkId'")
            })?;
            let parsed = parse_resource(kind.resource_type(), &data()?)?;
            let principal = services.create(admin, kind, parsed).await?;
            created.insert(bulk_id.to_string(), principal.id.clone());
            Ok((StatusCode::CREATED, Some(principal)))
        }
        "PUT" => {
            let parsed = parse_resource(kind.resource_type(), &data()?)?;
            let principal = services
                .replace(admin, kind, &need_id()?, parsed, pinned)
                .await?;
            Ok((StatusCode::OK, Some(principal)))
        }
        "PATCH" => {
            let operations = parse_patch_request(&data()?)?;
            let principal = services
                .patch(admin, kind, &need_id()?, &operations, pinned)
                .await?;
            Ok((StatusCode::OK, Some(principal)))
        }
        "DELETE" => {
            services.delete(admin, kind, &need_id()?, pinned).await?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        other => Err(ScimError::invalid_syntax(format!(
            "'{other}' is not a bulk method (POST, PUT, PATCH, DELETE)"
        ))),
    }
}
