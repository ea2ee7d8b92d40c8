//! Read-your-writes across nodes, as Zanzibar's zookies give it.
//!
//! Every successful write answers with `Scimitar-Change-Token: N`, the access-log position this
//! node had applied when it answered, which includes the write itself. A request that carries
//! `Scimitar-Read-After: N` is answered only once the node that receives it has applied the
//! log up to `N`: its access answers, `groups` attributes and cached reads then include that
//! write, whichever node made it. Storage reads are always current; what this orders is the
//! node's in-memory state, which otherwise follows other nodes within the follower interval.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scimitar_domain::ScimError;

pub const CHANGE_TOKEN_HEADER: &str = "scimitar-change-token";
pub const READ_AFTER_HEADER: &str = "scimitar-read-after";

pub async fn layer(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    if let Some(value) = request.headers().get(READ_AFTER_HEADER) {
        let Some(wanted) = value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
        else {
            return ApiError::from(ScimError::invalid_value(format!(
                "{READ_AFTER_HEADER} must be a change token: the number a write answered with in {CHANGE_TOKEN_HEADER}"
            )))
            .into_response();
        };
        let services = &state.services;
        if services.access().applied() < wanted {
            match services.catch_up().await {
                Ok(reached) if reached >= wanted => {}
                Ok(reached) => {
                    return ApiError::from(ScimError::invalid_value(format!(
                        "change token {wanted} is ahead of every committed change ({reached})"
                    )))
                    .into_response()
                }
                Err(error) => return ApiError::from(error).into_response(),
            }
        }
    }
    let is_write = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let mut response = next.run(request).await;
    if is_write && response.status().is_success() {
        let token = state.services.access().applied();
        if let Ok(value) = HeaderValue::from_str(&token.to_string()) {
            response.headers_mut().insert(CHANGE_TOKEN_HEADER, value);
        }
    }
    response
}
