//! The HTTP routes, and the small helpers they share for reading requests and writing responses.

pub mod access;
pub mod access_control;
pub mod accounts;
pub mod addressing;
pub mod bulk;
pub mod consistency;
pub mod discovery;
pub mod metastores;
pub mod permissions;
pub mod resources;
pub mod statements;
pub mod unity_catalog;
pub mod wire;
pub mod workspace;

use crate::context::{AddressedAccount, Mount};
use crate::error::{scim_json_text, ApiError, ApiResult, ErrorShape};
use crate::AppState;
use axum::body::Body;
use axum::http::HeaderName;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json, Router};
use scimitar_app::service::DocumentJson;
use scimitar_domain::query::ListParameters;
use scimitar_domain::resource::parse_etag;
use scimitar_domain::ScimError;
use serde_json::{json, Value};
use std::collections::HashMap;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

/// The largest body of a SCIM resource write or search (`POST`, `PUT`, `PATCH` on `/Users`,
/// `/Groups`, `/ServicePrincipals`, and `.search`). The largest legitimate one is a group
/// `PATCH` adding members: Entra ID and Okta send membership changes in batches of at most a
/// few hundred, and a member is under 200 bytes even with `display` and `$ref`, so 1 MiB holds
/// thousands of members (over 20,000 given by `value` alone). A user is a few KiB at most
/// under the attribute limits. A larger group is built by several PATCHes, as every IdP does.
/// The same size as `/Bulk`'s advertised `maxPayloadSize`, so a client that fits one fits both.
pub const MAX_RESOURCE_BODY_BYTES: usize = 1024 * 1024;

/// The largest body of the permissions API (`PUT`/`PATCH /api/2.0/permissions/...`): an
/// access control list of a few thousand entries.
pub const MAX_PERMISSIONS_BODY_BYTES: usize = 1024 * 1024;

/// The largest body of the Workspace API's `mkdirs` and `delete`: a path and a flag.
pub const MAX_WORKSPACE_BODY_BYTES: usize = 64 * 1024;

/// The largest body of a Workspace `import`. Databricks refuses imports over 10 MB; Scimitar
/// keeps only the tree, not the content, so the content is read and dropped.
pub const MAX_WORKSPACE_IMPORT_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The most JSON values (objects, arrays and scalars) one request body may hold, whatever its
/// size. A parsed `serde_json::Value` takes 32 bytes or more per value however short its
/// text, so a body of many small values (`[0,0,0,...]`) would grow thirty-fold or more in
/// memory; counting before parsing bounds a request's parse tree to a few tens of MiB. The
/// largest legitimate body, a member PATCH filling [`MAX_RESOURCE_BODY_BYTES`], holds well
/// under a hundred thousand values.
pub const MAX_BODY_JSON_VALUES: usize = 128 * 1024;

pub fn router(state: AppState) -> Router {
    let mounts = [
        ("/scim/v2", Mount::Generic),
        ("/api/2.0/preview/scim/v2", Mount::DatabricksWorkspace),
        (
            "/api/2.0/accounts/{account_id}/scim/v2",
            Mount::DatabricksAccount { api_version: "2.0" },
        ),
        (
            "/api/2.1/accounts/{account_id}/scim/v2",
            Mount::DatabricksAccount { api_version: "2.1" },
        ),
    ];
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", read_only(get(crate::metrics::scrape)))
        .route("/.well-known/databricks-config", get(databricks_config))
        .route(
            "/api/2.0/permissions/{*object}",
            get(permissions::get)
                .put(permissions::put)
                .patch(permissions::patch)
                .fallback(method_not_allowed),
        )
        .route("/api/2.0/access/check", read_only(get(access::check)))
        .route("/api/2.0/access/who", read_only(get(access::who)))
        .route("/api/2.0/access/what", read_only(get(access::what)));
    for (prefix, mount) in mounts {
        router = router.nest(prefix, scim_routes().layer(Extension(mount)));
    }
    // The Databricks REST APIs, answering errors in Databricks' shape.
    router = router
        .merge(unity_catalog::routes())
        .merge(metastores::routes())
        .merge(statements::routes())
        .merge(workspace::routes())
        .merge(accounts::routes())
        .merge(access_control::routes());
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let router = router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            consistency::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(
            request_id,
            SequentialRequestIds::default(),
        ))
        .layer(axum::middleware::map_request(drop_unsafe_request_id))
        .with_state(state.clone());
    addressing::addressed(router, state.workspaces.workspace_domain.clone())
}

/// The header a request id travels in, both ways.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id a client may choose.
const MAX_CLIENT_REQUEST_ID: usize = 64;

/// A client's `x-request-id` is kept only when it is short and made of characters that are
/// safe in any log format (`A-Z a-z 0-9 . _ : -`); otherwise it is dropped and the server
/// makes one, which the response echoes. A request id is printed into every log line of its
/// request, so a chosen one must not be able to forge lines or fill the log.
async fn drop_unsafe_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let safe = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_CLIENT_REQUEST_ID
            && bytes
                .iter()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(byte))
    };
    let headers = request.headers_mut();
    let all_safe = headers.get_all(REQUEST_ID_HEADER).iter().all(safe);
    if !all_safe || headers.get_all(REQUEST_ID_HEADER).iter().count() > 1 {
        headers.remove(REQUEST_ID_HEADER);
    }
    request
}

/// What every request passes once, outermost after its id is set: the per-request span (its
/// id, method and route, which every log line of the request carries), errors that axum wrote
/// itself put in the shape of the API called ([`in_the_shape_of_the_api`]), the request
/// counted and timed in the metrics, and the one log line per answered request, at info:
/// method, route template, path, status, duration, principal (when one authenticated) and
/// request id. Never a header's value other than the request id, so no token is ever logged.
/// The path is the client's and is logged with `Debug` escaping, as all client text is: the
/// binary's log writer escapes control characters in any case (`scimitar` `main.rs`).
///
/// One middleware rather than one each: every axum `from_fn` layer clones and boxes the
/// stack inside it for each request, and three of them cost GET by id a fifth of its
/// throughput (BENCHMARKS.md, issue #13).
async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let route = route
        .as_ref()
        .map_or("(no route)", |matched| matched.as_str());
    let method = request.method().clone();
    let uri = request.uri().clone();
    let principal = crate::context::RequestPrincipal::default();
    request.extensions_mut().insert(principal.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
    );
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let response = in_the_shape_of_the_api(uri.path(), response).await;
    state.metrics.observe(&method, route, &response, started);
    let _inside = span.enter();
    tracing::info!(
        method = %method,
        route = %route,
        path = ?uri.path(),
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        principal = %principal.get().unwrap_or("-"),
        request_id = %request_id,
        "request answered"
    );
    response
}

/// Request ids: a per-process random prefix and a counter, unique enough to find one request's
/// log lines, and cheap. A client-supplied `x-request-id` is kept when it is safe
/// ([`drop_unsafe_request_id`]).
#[derive(Clone)]
struct SequentialRequestIds {
    prefix: u32,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for SequentialRequestIds {
    fn default() -> Self {
        SequentialRequestIds {
            // RandomState is seeded from the OS: a random prefix without another dependency.
            prefix: {
                use std::hash::{BuildHasher, Hasher};
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish() as u32
            },
            next: Default::default(),
        }
    }
}

impl MakeRequestId for SequentialRequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let sequence = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:08x}-{sequence}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

fn scim_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            read_only(get(discovery::service_provider_config)),
        )
        .route("/ResourceTypes", read_only(get(discovery::resource_types)))
        .route(
            "/ResourceTypes/{name}",
            read_only(get(discovery::resource_type)),
        )
        .route("/Schemas", read_only(get(discovery::schemas)))
        .route("/Schemas/{name}", read_only(get(discovery::schema)))
        .route("/Me", get(resources::me).fallback(method_not_allowed))
        .route("/Bulk", post(bulk::bulk).fallback(method_not_allowed))
        .route(
            "/.search",
            post(resources::search_all).fallback(method_not_allowed),
        )
        .route(
            "/{resource}",
            get(resources::list)
                .post(resources::create)
                .fallback(method_not_allowed),
        )
        .route(
            "/{resource}/.search",
            post(resources::search).fallback(method_not_allowed),
        )
        .route(
            "/{resource}/{id}",
            get(resources::get_one)
                .put(resources::replace)
                .patch(resources::patch)
                .delete(resources::delete)
                .fallback(method_not_allowed),
        )
        .fallback(not_found)
}

fn read_only(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(method_not_allowed)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Readiness, for load balancers and orchestrators: 200 when the database answers and its
/// schema is current, else 503 with a short JSON reason. `/healthz` only says the process is
/// alive; a node whose database is down is alive but must not be sent traffic. The reason
/// names the kind of failure only; the cause (which may name hosts) goes to the log.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.services.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
        Err(not_ready) => {
            tracing::warn!(reason = %not_ready, "not ready");
            let reason = match &not_ready {
                scimitar_app::NotReady::Unreachable(_) => "the database is unreachable".to_string(),
                scimitar_app::NotReady::MigrationsBehind { .. } => not_ready.to_string(),
                scimitar_app::NotReady::WritesFailing(_) => {
                    "writes to the database are failing".to_string()
                }
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": reason})),
            )
                .into_response()
        }
    }
}

/// The Databricks SDK reads this first to learn the account and workspace of a host. No
/// `oidc_endpoint` is given because Scimitar does not serve OAuth yet.
async fn databricks_config(
    addressed: AddressedAccount,
    crate::context::Origin(origin): crate::context::Origin,
) -> ApiResult {
    let workspace_id = addressed
        .workspace
        .as_ref()
        .map(|workspace| workspace.id.to_string());
    // Scimitar's own field: the URL that serves this workspace under any name it was reached by.
    let workspace_url = workspace_id.as_ref().map(|id| format!("{origin}/w/{id}"));
    Ok(Json(json!({
        "account_id": addressed.account.as_str(),
        "workspace_id": workspace_id,
        "workspace_url": workspace_url,
    }))
    .into_response())
}

/// No route matched: a 404 in the shape of the API the path belongs to (Databricks answers an
/// unknown endpoint with `ENDPOINT_NOT_FOUND`, a code distinct from a missing resource).
async fn not_found(uri: Uri) -> Response {
    let message = format!("no endpoint at {}", uri.path());
    match ErrorShape::for_path(uri.path()) {
        ErrorShape::Scim => ApiError(ScimError::NotFound(message)).into_response(),
        ErrorShape::Databricks => (
            StatusCode::NOT_FOUND,
            Json(json!({"error_code": "ENDPOINT_NOT_FOUND", "message": message})),
        )
            .into_response(),
    }
}

pub(crate) async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Response {
    ErrorShape::for_path(uri.path()).respond(ScimError::MethodNotAllowed(format!(
        "{method} is not supported on {}",
        uri.path()
    )))
}

/// Rewrites the error responses that axum and tower write themselves (an extractor's rejection
/// of a path segment that is not UTF-8 or of a query it cannot read, a body over a limit, ...),
/// which are plain text, into the error body of the API the path belongs to. Handlers' own
/// errors are JSON already and pass untouched; the status and the other headers are kept.
async fn in_the_shape_of_the_api(path: &str, response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let shape = ErrorShape::for_path(path);
    let (parts, body) = response.into_parts();
    // A rejection's text is a sentence; a server fault's text is not the client's to read.
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) if !status.is_server_error() => {
            String::from_utf8_lossy(&bytes).trim().to_string()
        }
        _ => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut shaped = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            shape.respond(ScimError::invalid_value(message))
        }
        StatusCode::NOT_FOUND => shape.respond(ScimError::NotFound(message)),
        StatusCode::METHOD_NOT_ALLOWED => shape.respond(ScimError::MethodNotAllowed(message)),
        StatusCode::PAYLOAD_TOO_LARGE => shape.respond(ScimError::PayloadTooLarge(message)),
        StatusCode::UNAUTHORIZED => shape.respond(ScimError::Unauthorized(message)),
        StatusCode::FORBIDDEN => shape.respond(ScimError::Forbidden(message)),
        other => shape.respond_with_status(other, &message),
    };
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    shaped
}

/// Reads and parses a JSON body; a client mistake is `invalidSyntax`, an oversized body 413.
pub async fn json_body(body: Body, limit: usize) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
        // The limit error is http-body-util's `LengthLimitError`, boxed inside `axum::Error`.
        let too_large = format!("{error:?}").contains("LengthLimitError");
        if too_large {
            ScimError::PayloadTooLarge(format!("the request body is larger than {limit} bytes"))
        } else {
            ScimError::invalid_syntax(format!("the request body could not be read: {error}"))
        }
    })?;
    let values = json_values_upper_bound(&bytes);
    if values > MAX_BODY_JSON_VALUES {
        return Err(ScimError::PayloadTooLarge(format!(
            "the request body holds more than {MAX_BODY_JSON_VALUES} JSON values"
        ))
        .into());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax(
            "the request body is empty; a JSON object was expected",
        )
        .into());
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        ScimError::invalid_syntax(format!("the request body is not valid JSON: {error}")).into()
    })
}

/// An upper bound on the number of JSON values in `text`, counted without parsing: every
/// `{`, `[` and `,` outside a string starts at most one value, plus the top-level one. Text
/// that is not JSON gets some number; the parser refuses it afterwards.
fn json_values_upper_bound(text: &[u8]) -> usize {
    let mut values = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' | b',' => values += 1,
                _ => {}
            }
        }
    }
    values
}

/// Reads a JSON body ([`json_body`]) into a request's wire type ([`wire::from_object`]): the
/// body must be an object, and a field of the wrong type is refused by its path.
pub async fn json_request<T: serde::de::DeserializeOwned>(
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    Ok(wire::from_object(json_body(body, limit).await?)?)
}

/// Query parameters, with SCIM's parameter names matched ignoring case.
pub fn list_parameters(query: &HashMap<String, String>) -> ListParameters {
    let get = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    ListParameters {
        filter: get("filter"),
        sort_by: get("sortBy"),
        sort_order: get("sortOrder"),
        start_index: get("startIndex"),
        count: get("count"),
        attributes: get("attributes"),
        excluded_attributes: get("excludedAttributes"),
    }
}

/// The version an `If-Match` header pins, if any (`*` pins nothing).
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    precondition(headers, header::IF_MATCH)
}

pub fn if_none_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    precondition(headers, header::IF_NONE_MATCH)
}

fn precondition(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(&name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ScimError::invalid_value(format!("{name} is not valid text")))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    parse_etag(text).map(Some).ok_or_else(|| {
        ScimError::bad(
            scimitar_domain::ScimType::InvalidVersion,
            format!("'{text}' is not an entity tag this server issued"),
        )
        .into()
    })
}

/// A resource response: SCIM media type and `ETag` (a creation adds its `Location`).
pub fn resource_response(status: StatusCode, document: DocumentJson, etag: &str) -> Response {
    let mut response = scim_json_text(status, document.into_string());
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}
