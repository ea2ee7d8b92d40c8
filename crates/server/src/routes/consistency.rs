//! Read-your-writes across nodes, as Zanzibar's zookies give it.
//!
//! Every successful write answers with `Scimitar-Change-Token: N`, where `N` counts the
//! changes of the writer's account that the answering node had applied, which includes the
//! write itself. A request that carries `Scimitar-Read-After: N` is answered only once the
//! node that receives it has applied that many of its account's changes: its access answers,
//! `groups` attributes and cached reads then include that write, whichever node made it.
//! Storage reads are always current; what this orders is the node's in-memory state, which
//! otherwise follows other nodes within the follower interval.
//!
//! Tokens count one account's own changes only, so an account cannot learn from them how much
//! any other writes. And nothing here happens before authentication: the wait is done by the
//! request's credential check ([`read_after`], called from `context.rs`), in the credential's
//! account, and a request that did not authenticate never waits and is never given a token.

use crate::context::RequestPrincipal;
use crate::AppState;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use scimitar_domain::{AccountId, ScimError, ScimResult};

pub const CHANGE_TOKEN_HEADER: &str = "scimitar-change-token";
pub const READ_AFTER_HEADER: &str = "scimitar-read-after";

/// Holds an authenticated request in `account` until this node has applied the changes its
/// `Scimitar-Read-After` names, if it carries one; says whether it did.
pub async fn read_after(
    state: &AppState,
    headers: &HeaderMap,
    account: &AccountId,
) -> ScimResult<bool> {
    let Some(value) = headers.get(READ_AFTER_HEADER) else {
        return Ok(false);
    };
    let Some(wanted) = value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
    else {
        return Err(ScimError::invalid_value(format!(
            "{READ_AFTER_HEADER} must be a change token: the number a write answered with in {CHANGE_TOKEN_HEADER}"
        )));
    };
    state
        .services
        .read_after(account, wanted)
        .await
        .map(|()| true)
}

/// Adds the change token to the answer of a successful write by an authenticated principal
/// (`principal` is the request's slot, filled by authentication). Called for writes only, by
/// the router's one middleware (`routes::ObserveLayer`).
pub fn add_change_token(
    state: &AppState,
    principal: Option<&RequestPrincipal>,
    response: &mut Response,
) {
    if !response.status().is_success() {
        return;
    }
    if let Some(account) = principal.and_then(RequestPrincipal::account) {
        let token = state.services.change_token(account);
        if let Ok(value) = HeaderValue::from_str(&token.to_string()) {
            response.headers_mut().insert(CHANGE_TOKEN_HEADER, value);
        }
    }
}
