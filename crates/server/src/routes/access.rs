//! The access API: `GET /api/2.0/access/check`, `/who` and `/what`. Each answers from the
//! node's access engine, which has applied every change committed before the request began.
//!
//! Who may ask is decided in the application layer (`access_questions::asked_*`): admins
//! anything; anyone else only about themselves. `who` lists other principals, so it is for
//! admins only.

use crate::context::DatabricksContext;
use crate::error::DatabricksError;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use scimitar_app::access_questions::{self, Target};
use std::collections::HashMap;

type Result<T = Response> = std::result::Result<T, DatabricksError>;

/// What `Json` answers with, for the body `who` writes itself.
const JSON_CONTENT_TYPE: &str = "application/json";

/// `?principal=P&privilege=X&securable_type=T&full_name=N` (or `object_type`, `object_id`,
/// `permission_level`; or `entitlement`): allowed or not, every reason, and what is missing.
pub async fn check(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(parameters): Query<HashMap<String, String>>,
) -> Result {
    let target = Target::from_parameters(&without(&parameters, "principal"))?;
    let principal = parameters.get("principal").map(String::as_str);
    let body =
        access_questions::asked_check(&state.services, &context.actor, principal, &target).await?;
    Ok(([(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body).into_response())
}

/// `?privilege=X&securable_type=T&full_name=N` (or the object or entitlement form): every
/// user and service principal that has it, through any nesting of groups, with one chain each.
pub async fn who(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(parameters): Query<HashMap<String, String>>,
) -> Result {
    let target = Target::from_parameters(&parameters)?;
    let body = access_questions::asked_who(&state.services, &context.actor, &target).await?;
    Ok(([(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body).into_response())
}

/// `?principal=P`: everything the principal holds and through which grant, ACL entry,
/// entitlement or admin membership.
pub async fn what(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(parameters): Query<HashMap<String, String>>,
) -> Result {
    let principal = parameters.get("principal").map(String::as_str);
    let body = access_questions::asked_what(&state.services, &context.actor, principal).await?;
    Ok(Json(body).into_response())
}

fn without(parameters: &HashMap<String, String>, name: &str) -> HashMap<String, String> {
    parameters
        .iter()
        .filter(|(key, _)| key.as_str() != name)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}
