//! The change feed, `GET /api/2.0/sync/changes?after=N&timeout_seconds=T`: answers
//! `{"change_token": "M"}` as soon as the caller's account has more than `N` changes applied
//! on this node, or after `T` seconds (capped at 60; default 30) with the token as it is. What a
//! `scimitar sync watch` job whose source is this deployment long-polls between runs
//! (`docs/design/sync.md`). Thin: the application authorizes and waits
//! (`scimitar_app::change_feed`); errors come back in Databricks' shape. A pending wait ends
//! when the server begins to shut down, answered as at its timeout, so shutdown never waits
//! out a poll.

use crate::context::DatabricksContext;
use crate::error::DatabricksResult;
use crate::routes::method_not_allowed;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use scimitar_app::change_feed::MAX_CHANGE_WAIT;
use scimitar_domain::{ScimError, ScimResult};
use serde_json::json;
use std::time::Duration;

/// The feed's path. A token of the SCIM provisioning scope may call it (`context.rs` counts
/// it with the SCIM API for scopes): a sync job following a Scimitar source holds one.
pub const CHANGES_PATH: &str = "/api/2.0/sync/changes";

/// How long a wait lasts when the caller names no `timeout_seconds`.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

pub fn routes() -> Router<AppState> {
    Router::new().route(CHANGES_PATH, get(changes).fallback(method_not_allowed))
}

async fn changes(
    context: DatabricksContext,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> DatabricksResult {
    let (after, timeout) = parameters(query.as_deref().unwrap_or(""))?;
    let mut stopping = state.stopping.subscribe();
    let stop = async move {
        // An error means the sender is gone, which is a server stopping too.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    let token = state
        .services
        .wait_for_changes(&context.actor, after, timeout, stop)
        .await?;
    Ok(Json(json!({ "change_token": token.to_string() })).into_response())
}

/// `after` (a change token, default 0) and `timeout_seconds` (default 30, capped at 60).
/// Anything else, a repeated parameter, or a value that is not a whole number is a 400 that
/// names it.
fn parameters(query: &str) -> ScimResult<(u64, Duration)> {
    let mut after = None;
    let mut timeout = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "after" => &mut after,
            "timeout_seconds" => &mut timeout,
            other => {
                return Err(ScimError::invalid_value(format!(
                    "unknown parameter {:?}: the change feed takes after and timeout_seconds",
                    other.escape_debug().to_string()
                )))
            }
        };
        if slot.is_some() {
            return Err(ScimError::invalid_value(format!(
                "{name} is given more than once"
            )));
        }
        let number = value.parse::<u64>().map_err(|_| {
            ScimError::invalid_value(format!(
                "{name} must be a whole number, not {:?}",
                value.escape_debug().to_string()
            ))
        })?;
        *slot = Some(number);
    }
    // A longer wait is capped, not refused: the caller asks again at the cap.
    let timeout = timeout.map_or(DEFAULT_WAIT, |seconds| {
        Duration::from_secs(seconds).min(MAX_CHANGE_WAIT)
    });
    Ok((after.unwrap_or(0), timeout))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_parameters_are_whole_numbers_in_range_given_once() {
        assert_eq!(parameters("").unwrap(), (0, DEFAULT_WAIT));
        assert_eq!(
            parameters("after=7&timeout_seconds=0").unwrap(),
            (7, Duration::ZERO)
        );
        assert_eq!(
            parameters("timeout_seconds=600").unwrap(),
            (0, MAX_CHANGE_WAIT)
        );
        for refused in [
            "after=-1",
            "after=x",
            "after=",
            "after=1&after=2",
            "timeout_seconds=99999999999999999999999",
            "timeout_seconds=1.5",
            "since=3",
        ] {
            assert!(parameters(refused).is_err(), "{refused}");
        }
    }
}
