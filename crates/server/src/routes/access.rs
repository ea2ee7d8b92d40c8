//! The access API: `GET /api/2.0/access/check`, `/who` and `/what`. Each answers from the
//! node's access engine, which has applied every change committed before the request began.
//!
//! Who may ask: workspace admins anything; anyone else only about themselves (`check` and
//! `what` with their own principal). `who` lists other principals, so it is for admins only.

use crate::access_questions::{self, Target};
use crate::context::DatabricksContext;
use crate::error::{from_access_error, DatabricksError};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use scimitar_domain::{PrincipalId, ScimError};
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
    let principal = subject(&state, &context, &parameters).await?;
    // Rendered while the model is read, from the engine's compact answer.
    let body = state.services.access.read(&context.account, |model| {
        access_questions::check_json(model, &principal, &target, false)
    })??;
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
    ensure_admin(&state, &context, "listing who has an access")?;
    // Rendered while the model is read: the compact answer borrows from it, and writing its
    // JSON directly is several times cheaper than copying every holder's names first.
    let body = state.services.access.read(&context.account, |model| {
        access_questions::who_json(model, &target)
    })??;
    Ok(([(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body).into_response())
}

/// `?principal=P`: everything the principal holds and through which grant, ACL entry,
/// entitlement or admin membership.
pub async fn what(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(parameters): Query<HashMap<String, String>>,
) -> Result {
    let principal = subject(&state, &context, &parameters).await?;
    let body = state.services.access.read(&context.account, |model| {
        let reference = model.principal_ref(&principal).map_err(from_access_error)?;
        let held = model.what(&principal).map_err(from_access_error)?;
        Ok::<_, ScimError>(access_questions::what_json(&reference, &held))
    })??;
    Ok(Json(body).into_response())
}

/// The principal a question is about (the caller when `principal` is not given), refusing
/// a non-admin who asks about someone else.
async fn subject(
    state: &AppState,
    context: &DatabricksContext,
    parameters: &HashMap<String, String>,
) -> std::result::Result<PrincipalId, ScimError> {
    let principal = match parameters.get("principal") {
        Some(text) => {
            access_questions::resolve_principal(&state.services, &context.account, text).await?
        }
        None => context.token.principal.clone(),
    };
    if principal != context.token.principal {
        ensure_admin(state, context, "asking about another principal")?;
    }
    Ok(principal)
}

fn ensure_admin(
    state: &AppState,
    context: &DatabricksContext,
    doing: &str,
) -> std::result::Result<(), ScimError> {
    let admin = state.services.access.read(&context.account, |model| {
        model
            .is_workspace_admin(&context.token.principal)
            .map_err(from_access_error)
    })??;
    if admin {
        Ok(())
    } else {
        Err(ScimError::Forbidden(format!(
            "{doing} is for workspace admins; you may ask about yourself"
        )))
    }
}

fn without(parameters: &HashMap<String, String>, name: &str) -> HashMap<String, String> {
    parameters
        .iter()
        .filter(|(key, _)| key.as_str() != name)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}
