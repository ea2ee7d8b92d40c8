//! The account access-control rule sets, as the Databricks SDK calls them
//! (`a.access_control.get_rule_set`, `update_rule_set`, `get_assignable_roles_for_resource`):
//! `GET .../access-control/assignable-roles?resource=R`, `GET .../access-control/rule-sets?
//! name=N&etag=E` and `PUT .../access-control/rule-sets`, under
//! `/api/2.0/preview/accounts/{account_id}` (the account host) and under
//! `/api/2.0/preview/accounts` (the workspace proxy, for the default workspace's account).
//! Thin: the body is read into a [`RuleSetUpdate`], [`scimitar_app::rule_sets`] decides and
//! commits, errors come back in Databricks' shape.

use crate::context::{DatabricksContext, Mount};
use crate::error::DatabricksResult;
use crate::routes::{json_request, method_not_allowed};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Json, Router};
use scimitar_app::rule_sets::{self, RuleSetUpdate};
use scimitar_domain::{ScimError, ScimResult};
use serde::Deserialize;
use std::collections::HashMap;

/// The largest body of a rule-set update: a name, an etag and at most
/// [`rule_sets::MAX_RULE_SET_GRANTS`] principal names of a few hundred bytes.
pub const MAX_RULE_SET_BODY_BYTES: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    let operations = || {
        Router::new()
            .route(
                "/access-control/assignable-roles",
                get(assignable_roles).fallback(method_not_allowed),
            )
            .route(
                "/access-control/rule-sets",
                get(get_rule_set)
                    .put(update_rule_set)
                    .fallback(method_not_allowed),
            )
    };
    // On the account host the path names the account; through the workspace proxy it is the
    // default workspace's.
    let account_host =
        operations().layer(Extension(Mount::DatabricksAccount { api_version: "2.0" }));
    Router::new()
        .nest("/api/2.0/preview/accounts/{account_id}", account_host)
        .nest("/api/2.0/preview/accounts", operations())
}

/// A query parameter that must be given.
fn required<'a>(query: &'a HashMap<String, String>, name: &str) -> ScimResult<&'a str> {
    query
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ScimError::invalid_value(format!("the query parameter `{name}` is required"))
        })
}

async fn assignable_roles(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> DatabricksResult {
    let resource = required(&query, "resource")?;
    let roles = rule_sets::assignable_roles(&state.services, &context.actor, resource).await?;
    Ok(Json(roles).into_response())
}

async fn get_rule_set(
    context: DatabricksContext,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> DatabricksResult {
    let name = required(&query, "name")?;
    let etag = query.get("etag").map(String::as_str);
    let rule_set = rule_sets::get(&state.services, &context.actor, name, etag).await?;
    Ok(Json(rule_set).into_response())
}

async fn update_rule_set(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: UpdateRuleSetBody = json_request(body, MAX_RULE_SET_BODY_BYTES).await?;
    let update = RuleSetUpdate::try_from(body)?;
    let rule_set = rule_sets::replace(&state.services, &context.actor, &update).await?;
    Ok(Json(rule_set).into_response())
}

/// `PUT .../access-control/rule-sets`: `{"name", "rule_set": {"name", "etag",
/// "grant_rules": [{"role", "principals": [...]}]}}`.
#[derive(Debug, Deserialize)]
pub struct UpdateRuleSetBody {
    name: Option<String>,
    rule_set: Option<RuleSetBody>,
}

#[derive(Debug, Deserialize)]
pub struct RuleSetBody {
    name: Option<String>,
    etag: Option<String>,
    grant_rules: Option<Vec<GrantRuleBody>>,
}

#[derive(Debug, Deserialize)]
pub struct GrantRuleBody {
    role: Option<String>,
    principals: Option<Vec<String>>,
}

impl TryFrom<UpdateRuleSetBody> for RuleSetUpdate {
    type Error = ScimError;

    fn try_from(body: UpdateRuleSetBody) -> ScimResult<RuleSetUpdate> {
        let required = |value: Option<String>, path: &str| {
            value
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| ScimError::invalid_value(format!("`{path}` is required")))
        };
        let name = required(body.name, "name")?;
        let rule_set = body
            .rule_set
            .ok_or_else(|| ScimError::invalid_value("`rule_set` is required"))?;
        if let Some(inner) = rule_set.name.filter(|inner| !inner.is_empty()) {
            if inner != name {
                return Err(ScimError::invalid_value(
                    "`rule_set.name` must be the `name` being updated",
                ));
            }
        }
        let etag = required(rule_set.etag, "rule_set.etag")?;
        let grant_rules = rule_set
            .grant_rules
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(position, rule)| {
                let role = required(rule.role, &format!("rule_set.grant_rules[{position}].role"))?;
                Ok((role, rule.principals.unwrap_or_default()))
            })
            .collect::<ScimResult<Vec<_>>>()?;
        Ok(RuleSetUpdate {
            name,
            etag,
            grant_rules,
        })
    }
}
