//! The HTTP routes, and the small helpers they share for reading requests and writing responses.

pub mod access;
pub mod access_control;
pub mod accounts;
pub mod addressing;
pub mod alerts;
pub mod audit;
pub mod bulk;
pub mod consistency;
pub mod discovery;
pub mod federation;
pub mod metastores;
pub mod oauth;
pub mod permissions;
pub mod resources;
pub mod statements;
pub mod sync_changes;
pub mod sync_jobs;
pub mod tokens;
pub mod unity_catalog;
pub mod wire;
pub mod workspace;

use crate::context::{AddressedAccount, Mount};
use crate::error::{scim_json_text, ApiError, ApiResult, ErrorShape};
use crate::metrics::RouteLabel;
use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json, Router};
use scimitar_app::service::DocumentJson;
use scimitar_domain::query::ListParameters;
use scimitar_domain::resource::parse_etag;
use scimitar_domain::ScimError;
use serde_json::{json, Value};
use std::collections::HashMap;

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
    let router = routes()
        .fallback(not_found)
        .layer(ObserveLayer {
            state: state.clone(),
            request_ids: SequentialRequestIds::default(),
        })
        .with_state(state.clone());
    addressing::addressed(router, state.workspaces.workspace_domain.clone())
}

/// Every route the server answers, before the fallback, the layers and the state: the one
/// table [`router`] serves, which tests also read (its `Debug` form lists each path and
/// method) to walk every route there is.
pub fn routes() -> Router<AppState> {
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
    router
        .merge(unity_catalog::routes())
        .merge(metastores::routes())
        .merge(statements::routes())
        .merge(workspace::routes())
        .merge(accounts::routes())
        .merge(access_control::routes())
        .merge(tokens::routes())
        .merge(audit::routes())
        .merge(alerts::routes())
        .merge(oauth::routes())
        .merge(federation::routes())
        .merge(sync_changes::routes())
        .merge(sync_jobs::routes())
}

/// The header a request id travels in, both ways.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id a client may choose.
const MAX_CLIENT_REQUEST_ID: usize = 64;

/// A client's `x-request-id`, when it is kept: one only, short, and made of characters that
/// are safe in any log format (`A-Z a-z 0-9 . _ : -`). Otherwise it is removed from the request
/// and the server makes one, which the response echoes. A request id is printed into every log
/// line of its request, so a chosen one must not be able to forge lines or fill the log.
fn client_request_id(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let safe = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_CLIENT_REQUEST_ID
            && bytes
                .iter()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(byte))
    };
    let mut sent = headers.get_all(REQUEST_ID_HEADER).iter();
    let first = sent.next()?;
    if sent.next().is_none() && safe(first) {
        return Some(first.clone());
    }
    headers.remove(REQUEST_ID_HEADER);
    None
}

/// What every request passes once, around its route's handler: its request id (the client's
/// when safe, [`client_request_id`], else a new one; echoed in the response), the per-request
/// span (its id, method and route, which every log line of the request carries), the change
/// token of a successful write ([`consistency::add_change_token`]), errors that axum wrote
/// itself put in the shape of the API called ([`in_the_shape_of_the_api`]), the request
/// counted and timed in the metrics, and the one log line per answered request, at info:
/// method, route template, path, status, duration, principal (when one authenticated) and
/// request id. Never a header's value other than the request id, so no token is ever logged.
/// The path is the client's and is logged with `Debug` escaping, as all client text is: the
/// binary's log writer escapes control characters in any case (`scimitar` `main.rs`).
///
/// One hand-written layer rather than one each: axum applies a router's layers to every
/// route, and each costs a boxed clone of the stack inside it per request (an axum `from_fn`
/// two), which cost GET by id a fifth of its throughput (BENCHMARKS.md, issue #13).
#[derive(Clone)]
struct ObserveLayer {
    state: AppState,
    request_ids: SequentialRequestIds,
}

impl<S> tower_layer::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            state: self.state.clone(),
            request_ids: self.request_ids.clone(),
        }
    }
}

/// One route's handler under [`ObserveLayer`].
#[derive(Clone)]
struct Observe<S> {
    inner: S,
    state: AppState,
    request_ids: SequentialRequestIds,
}

impl<S> tower_service::Service<axum::extract::Request> for Observe<S>
where
    S: tower_service::Service<
            axum::extract::Request,
            Response = Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: axum::extract::Request) -> Self::Future {
        let started = std::time::Instant::now();
        let request_id =
            client_request_id(request.headers_mut()).unwrap_or_else(|| self.request_ids.next());
        let route = match request.extensions().get::<axum::extract::MatchedPath>() {
            Some(matched) => RouteLabel::Template(matched.clone()),
            None => RouteLabel::Unmatched,
        };
        let method = request.method().clone();
        let uri = request.uri().clone();
        let is_write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        // Who authenticated is wanted for a write's change token and for the log line; a read
        // with the log line off goes without the slot.
        let principal = (is_write || tracing::level_enabled!(tracing::Level::INFO)).then(|| {
            let principal = crate::context::RequestPrincipal::default();
            request.extensions_mut().insert(principal.clone());
            principal
        });
        let request_id_text = request_id.to_str().unwrap_or("-");
        let span = tracing::info_span!(
            "request",
            request_id = %request_id_text,
            method = %method,
            route = %route.as_str(),
        );
        // The request's audit context: every commit made while handling it records where it
        // came from (`scimitar_app::audit`).
        let audit = scimitar_app::audit::RequestInfo {
            source_ip_address: request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|peer| peer.0.ip()),
            user_agent: request
                .headers()
                .get(axum::http::header::USER_AGENT)
                .and_then(|agent| agent.to_str().ok())
                .map(str::to_string),
            request_id: Some(request_id_text.to_string()),
        };
        // What a refusal's audit event needs from the request, taken before the handler has it:
        // the kind of credential (never its value) and the workspace the request addressed.
        let credential_kind = scimitar_app::audit_refusals::credential_kind(
            request
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok()),
        );
        let workspace_address = request
            .extensions()
            .get::<addressing::WorkspaceAddress>()
            .cloned();
        let handled = span.in_scope(|| self.inner.call(request));
        let handled = scimitar_app::audit::within_reporting(audit, handled);
        let state = self.state.clone();
        Box::pin(async move {
            let (Ok(mut response), audit, actor) =
                tracing::Instrument::instrument(handled, span.clone()).await;
            if is_write {
                consistency::add_change_token(&state, principal.as_ref(), &mut response);
            }
            let mut response = in_the_shape_of_the_api(uri.path(), response).await;
            if is_refusal(response.status()) {
                record_refusal(
                    &state,
                    &response,
                    Refused {
                        actor: actor.as_ref().map(scimitar_app::audit::RequestActor::of),
                        info: audit,
                        credential_kind,
                        workspace_address,
                        method: &method,
                        route: &route,
                        path: uri.path(),
                    },
                );
            }
            let elapsed = started.elapsed();
            state.metrics.observe(&method, &route, &response, elapsed);
            {
                let _inside = span.enter();
                tracing::info!(
                    method = %method,
                    route = %route.as_str(),
                    path = ?uri.path(),
                    status = response.status().as_u16(),
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    principal = %principal.as_ref().and_then(|principal| principal.get()).unwrap_or("-"),
                    request_id = %request_id.to_str().unwrap_or("-"),
                    "request answered"
                );
            }
            if !response.headers().contains_key(REQUEST_ID_HEADER) {
                response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
            }
            Ok(response)
        })
    }
}

/// The answers the audit trail records as refusals: authentication and authorization
/// failures, and the client mistakes a caller may probe with (`docs/design/audit.md`).
fn is_refusal(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        400 | 401 | 403 | 404 | 405 | 409 | 413 | 422 | 429
    )
}

/// What the request middleware knows of a refused request.
struct Refused<'a> {
    actor: Option<scimitar_app::audit::RequestActor>,
    info: scimitar_app::audit::RequestInfo,
    credential_kind: &'static str,
    workspace_address: Option<addressing::WorkspaceAddress>,
    method: &'a Method,
    route: &'a RouteLabel,
    path: &'a str,
}

/// Databricks' service name for the API a path belongs to, as `system.access.audit` names
/// them.
fn service_name(path: &str) -> &'static str {
    let path = path.trim_start_matches('/');
    if path.contains("scim/v2") {
        "accounts"
    } else if path.starts_with("api/2.1/unity-catalog") || path.starts_with("api/2.0/unity-catalog")
    {
        "unityCatalog"
    } else if path.starts_with("api/2.0/sql") {
        "databrickssql"
    } else if path.starts_with("api/2.0/workspace") {
        "workspace"
    } else if path.starts_with("api/2.0/permissions") {
        "permissions"
    } else if path.starts_with("api/2.0/audit") {
        "audit"
    } else if path.starts_with("oidc") || path.contains("/oidc/") {
        "oauth2"
    } else {
        "accounts"
    }
}

/// Offers a refused request to the audit trail's queue: never waits, never fails the answer
/// (`scimitar_app::audit_refusals`).
fn record_refusal(state: &AppState, response: &Response, refused: Refused<'_>) {
    use scimitar_app::audit_refusals::{cut, AddressedAccount, RefusedRequest};
    let addressed = match (&refused.workspace_address, account_in_path(refused.path)) {
        (_, Some(account)) => AddressedAccount::Account(cut(account)),
        (Some(addressing::WorkspaceAddress::Id(id)), None) => {
            AddressedAccount::WorkspaceId(cut(id))
        }
        (Some(addressing::WorkspaceAddress::DeploymentName(name)), None) => {
            AddressedAccount::DeploymentName(cut(name))
        }
        (None, None) => AddressedAccount::Default,
    };
    // The route's template and the status's reason: never text the client chose (a path, an
    // error message quoting its input), which would let any client write into a trail.
    let route = refused.route.as_str().to_string();
    let status = response.status();
    let error_message = status.canonical_reason().map(str::to_string);
    state.refusals.offer(RefusedRequest {
        time: state.services.clock().now(),
        actor: refused.actor,
        addressed,
        info: refused.info,
        credential_kind: refused.credential_kind,
        service_name: service_name(refused.path),
        method: refused.method.as_str().to_string(),
        route,
        status: status.as_u16(),
        error_code: response
            .extensions()
            .get::<crate::metrics::ErrorCode>()
            .map(|code| code.0),
        error_message,
    });
}

/// The account id of an account-level path (`/api/2.x/accounts/{account_id}/...`, also under
/// `/api/2.0/preview/`); a word that is no account id is looked up and not found.
fn account_in_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/")?;
    let mut segments = rest.split('/');
    segments.by_ref().find(|segment| *segment == "accounts")?;
    segments.next().filter(|id| !id.is_empty())
}

/// Request ids: a per-process random prefix and a counter, unique enough to find one request's
/// log lines, and cheap. A client-supplied `x-request-id` is kept when it is safe
/// ([`client_request_id`]).
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

impl SequentialRequestIds {
    fn next(&self) -> HeaderValue {
        let sequence = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Hex digits, a dash and decimal digits: always a valid header value. The String
        // becomes the value's bytes without a copy.
        HeaderValue::try_from(format!("{:08x}-{sequence}", self.prefix))
            .unwrap_or_else(|_| HeaderValue::from_static("-"))
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
    prefix: Option<Extension<addressing::AddressPrefix>>,
) -> ApiResult {
    let workspace_id = addressed
        .workspace
        .as_ref()
        .map(|workspace| workspace.id.to_string());
    // Scimitar's own field: the URL that serves this workspace under any name it was reached by.
    let workspace_url = workspace_id.as_ref().map(|id| format!("{origin}/w/{id}"));
    // The workspace's OAuth authorization server, under the prefix the host was given with
    // (the SDK reads its discovery document there, for `oauth-m2m`).
    let oidc_endpoint = oauth::workspace_oidc_endpoint(
        &origin,
        prefix.as_ref().map_or("", |Extension(p)| p.0.as_str()),
    );
    Ok(Json(json!({
        "account_id": addressed.account.as_str(),
        "workspace_id": workspace_id,
        "workspace_url": workspace_url,
        "oidc_endpoint": oidc_endpoint,
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
