//! The one mapping from [`ScimError`] to an HTTP response: an RFC 7644 error body on the SCIM
//! mounts, and Databricks' `{"error_code", "message"}` body on the Databricks REST APIs (Unity
//! Catalog, SQL statements), which the Databricks SDKs turn into their typed errors. Access
//! engine errors become [`ScimError`]s in one place, `impl From<AccessError> for ScimError` in
//! `scimitar-access`.
//!
//! Client mistakes get their status, `scimType` and a sentence saying what was wrong; server
//! faults get an opaque 500 while the whole cause goes to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use scimitar_domain::schema::ERROR_SCHEMA;
use scimitar_domain::{ScimError, ScimType};
use serde_json::{json, Map, Value};

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// The status a [`ScimError`] is sent with.
pub fn status_of(error: &ScimError) -> StatusCode {
    match error {
        ScimError::BadRequest {
            scim_type: ScimType::Uniqueness,
            ..
        } => StatusCode::CONFLICT,
        ScimError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        ScimError::NotFound(_) => StatusCode::NOT_FOUND,
        ScimError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        ScimError::Conflict(_) => StatusCode::CONFLICT,
        ScimError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ScimError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ScimError::Forbidden(_) => StatusCode::FORBIDDEN,
        ScimError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        ScimError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        ScimError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ScimError::Unavailable(_) | ScimError::OutcomeUnknown(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// How long a client told to come back (503) should wait, in seconds: long enough for a
/// database failover or a restart, short enough that an IdP's retry does not miss a cycle.
pub const RETRY_AFTER_SECONDS: &str = "5";

/// The RFC 7644 section 3.12 error document for an error.
pub fn error_body(error: &ScimError) -> Map<String, Value> {
    let status = status_of(error);
    let mut body = Map::new();
    body.insert("schemas".into(), json!([ERROR_SCHEMA]));
    body.insert("status".into(), json!(status.as_u16().to_string()));
    if let ScimError::BadRequest { scim_type, .. } = error {
        body.insert("scimType".into(), json!(scim_type.as_str()));
    }
    body.insert("detail".into(), json!(client_message(error)));
    body
}

/// What the client is told: the error's sentence, except for server faults, whose cause goes
/// to the log only.
fn client_message(error: &ScimError) -> String {
    match error {
        ScimError::Internal(fault) => {
            tracing::error!(cause = %fault.chain(), "internal error");
            "the server failed to process the request; the cause is in its log".to_string()
        }
        ScimError::Unavailable(fault) => {
            tracing::warn!(cause = %fault.chain(), "unavailable");
            "the server cannot reach its database or the database cannot take writes now; \
             nothing was changed; retry later"
                .to_string()
        }
        ScimError::OutcomeUnknown(fault) => {
            tracing::error!(cause = %fault.chain(), "write outcome unknown");
            "the connection to the database was lost while this write was committing, so \
             whether it took effect is unknown; read the resource before retrying"
                .to_string()
        }
        other => other.to_string(),
    }
}

/// The Databricks `error_code` of an error. The SDKs pick their exception from it first
/// (`RESOURCE_DOES_NOT_EXIST` is `NotFound`, `RESOURCE_ALREADY_EXISTS` a conflict) and from
/// the status otherwise (403 is `PermissionDenied`), so both must agree.
pub fn databricks_error_code(error: &ScimError) -> &'static str {
    match error {
        ScimError::BadRequest {
            scim_type: ScimType::Uniqueness,
            ..
        } => "RESOURCE_ALREADY_EXISTS",
        ScimError::BadRequest {
            scim_type: ScimType::InvalidSyntax,
            ..
        } => "MALFORMED_REQUEST",
        ScimError::BadRequest { .. } | ScimError::PayloadTooLarge(_) => "INVALID_PARAMETER_VALUE",
        ScimError::NotFound(_) => "RESOURCE_DOES_NOT_EXIST",
        ScimError::PreconditionFailed(_) => "INVALID_STATE",
        ScimError::Conflict(_) => "RESOURCE_CONFLICT",
        ScimError::Unauthorized(_) => "UNAUTHENTICATED",
        ScimError::Forbidden(_) => "PERMISSION_DENIED",
        ScimError::MethodNotAllowed(_) => "BAD_REQUEST",
        ScimError::NotImplemented(_) => "NOT_IMPLEMENTED",
        ScimError::Internal(_) => "INTERNAL_ERROR",
        ScimError::Unavailable(_) | ScimError::OutcomeUnknown(_) => "TEMPORARILY_UNAVAILABLE",
    }
}

/// The Databricks REST error document: `{"error_code": "...", "message": "..."}`.
pub fn databricks_error_body(error: &ScimError) -> Value {
    json!({
        "error_code": databricks_error_code(error),
        "message": client_message(error),
    })
}

/// The `status.error` of a failed statement in the Statement Execution API. Its
/// `error_code` is one of the API's `ServiceErrorCode`s, and the message starts with the
/// Databricks SQL error class in brackets (`[INSUFFICIENT_PERMISSIONS] ...`), as Databricks
/// writes it; `sql_state` goes beside it in `status`.
pub fn statement_error(error: &ScimError) -> Value {
    let (code, class) = match error {
        ScimError::BadRequest {
            scim_type: ScimType::Uniqueness,
            ..
        } => ("ALREADY_EXISTS", "RESOURCE_ALREADY_EXISTS"),
        ScimError::BadRequest {
            scim_type: ScimType::InvalidSyntax,
            ..
        } => ("BAD_REQUEST", "PARSE_SYNTAX_ERROR"),
        ScimError::BadRequest { .. } | ScimError::PayloadTooLarge(_) => {
            ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
        }
        ScimError::NotFound(_) => ("NOT_FOUND", "RESOURCE_DOES_NOT_EXIST"),
        ScimError::Conflict(_) => ("BAD_REQUEST", "RESOURCE_CONFLICT"),
        ScimError::Forbidden(_) => ("BAD_REQUEST", "INSUFFICIENT_PERMISSIONS"),
        ScimError::Unauthorized(_) => ("UNAUTHENTICATED", "UNAUTHENTICATED"),
        ScimError::PreconditionFailed(_)
        | ScimError::MethodNotAllowed(_)
        | ScimError::NotImplemented(_) => ("BAD_REQUEST", "UNSUPPORTED_FEATURE"),
        ScimError::Internal(_) => ("INTERNAL_ERROR", "INTERNAL_ERROR"),
        ScimError::Unavailable(_) | ScimError::OutcomeUnknown(_) => {
            ("TEMPORARILY_UNAVAILABLE", "TEMPORARILY_UNAVAILABLE")
        }
    };
    json!({
        "error_code": code,
        "message": format!("[{class}] {}", client_message(error)),
    })
}

/// A SCIM JSON response with the SCIM media type.
pub fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

/// [`scim_json`] for a body already written as JSON text.
pub fn scim_json_text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

/// The headers an error status calls for: how to authenticate after a 401 (RFC 6750), when
/// to come back after a 503 (RFC 9110 section 10.2.3).
pub fn with_status_headers(mut response: Response) -> Response {
    let status = response.status();
    let headers = response.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scimitar\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}

/// Lets handlers return `Result<Response, ApiError>` and use `?` on domain results.
#[derive(Debug)]
pub struct ApiError(pub ScimError);

impl From<ScimError> for ApiError {
    fn from(error: ScimError) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let mut response = scim_json(status, Value::Object(error_body(&self.0)));
        response
            .extensions_mut()
            .insert(crate::metrics::ErrorCode(self.0.code()));
        with_status_headers(response)
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

/// [`ApiError`] for the Databricks REST APIs: the same status, with Databricks' error body.
#[derive(Debug)]
pub struct DatabricksError(pub ScimError);

impl From<ScimError> for DatabricksError {
    fn from(error: ScimError) -> Self {
        DatabricksError(error)
    }
}

impl From<ApiError> for DatabricksError {
    fn from(error: ApiError) -> Self {
        DatabricksError(error.0)
    }
}

impl IntoResponse for DatabricksError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let mut response = (status, axum::Json(databricks_error_body(&self.0))).into_response();
        response
            .extensions_mut()
            .insert(crate::metrics::ErrorCode(self.0.code()));
        with_status_headers(response)
    }
}

pub type DatabricksResult<T = Response> = Result<T, DatabricksError>;

/// Which API's error body a request gets, decided from its path alone, so that the router's
/// fallback, method refusals and axum's own extractor rejections answer in the shape of the API
/// the client called, as handlers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// RFC 7644 error JSON: `/scim/v2` and the Databricks SCIM mounts.
    Scim,
    /// Databricks' `{"error_code", "message"}`: every other path under `/api/`.
    Databricks,
}

impl ErrorShape {
    /// The shape for a request path (as sent, percent-encoded). The Databricks SCIM mounts are
    /// `/api/{version}/preview/scim/v2...` and `/api/{version}/accounts/{id}/scim/v2...`; paths
    /// outside `/api/` (the generic mount, health, unknown roots) keep the SCIM shape.
    pub fn for_path(path: &str) -> ErrorShape {
        let mut segments = path.split('/').skip(1);
        if segments.next() != Some("api") {
            return ErrorShape::Scim;
        }
        let _version = segments.next();
        let rest: Vec<&str> = segments.take(4).collect();
        let is_scim = matches!(
            rest.as_slice(),
            ["preview", "scim", "v2", ..] | ["accounts", _, "scim", "v2"]
        );
        if is_scim {
            ErrorShape::Scim
        } else {
            ErrorShape::Databricks
        }
    }

    /// The error response in this shape.
    pub fn respond(self, error: ScimError) -> Response {
        match self {
            ErrorShape::Scim => ApiError(error).into_response(),
            ErrorShape::Databricks => DatabricksError(error).into_response(),
        }
    }

    /// An error response for a status that no [`ScimError`] stands for (415, 408, 503, ...):
    /// the status is kept and the body has this shape, with no `scimType`.
    pub fn respond_with_status(self, status: StatusCode, message: &str) -> Response {
        let body = match self {
            ErrorShape::Scim => json!({
                "schemas": [ERROR_SCHEMA],
                "status": status.as_u16().to_string(),
                "detail": message,
            }),
            ErrorShape::Databricks => {
                let code = match status.as_u16() {
                    408 => "REQUEST_TIMEOUT",
                    415 | 422 => "MALFORMED_REQUEST",
                    429 => "TOO_MANY_REQUESTS",
                    503 => "TEMPORARILY_UNAVAILABLE",
                    code if code >= 500 => "INTERNAL_ERROR",
                    _ => "BAD_REQUEST",
                };
                json!({"error_code": code, "message": message})
            }
        };
        match self {
            ErrorShape::Scim => scim_json(status, body),
            ErrorShape::Databricks => (status, axum::Json(body)).into_response(),
        }
    }
}

/// An error that the listener answers before any route runs (408 for a body that did not
/// arrive in time, 414, 431), and so no [`ScimError`]: in the shape of the API that `path`
/// belongs to, as the router's own errors are.
pub fn error_outside_the_router(path: &str, status: StatusCode, message: String) -> Response {
    ErrorShape::for_path(path).respond_with_status(status, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_status_and_scim_type() {
        let cases = [
            (ScimError::uniqueness("x"), 409, Some("uniqueness")),
            (ScimError::invalid_filter("x"), 400, Some("invalidFilter")),
            (ScimError::invalid_syntax("x"), 400, Some("invalidSyntax")),
            (ScimError::invalid_path("x"), 400, Some("invalidPath")),
            (ScimError::invalid_value("x"), 400, Some("invalidValue")),
            (ScimError::mutability("x"), 400, Some("mutability")),
            (ScimError::no_target("x"), 400, Some("noTarget")),
            (ScimError::bad(ScimType::TooMany, "x"), 400, Some("tooMany")),
            (ScimError::NotFound("x".into()), 404, None),
            (ScimError::PreconditionFailed("x".into()), 412, None),
            (ScimError::Conflict("x".into()), 409, None),
            (ScimError::PayloadTooLarge("x".into()), 413, None),
            (ScimError::Unauthorized("x".into()), 401, None),
            (ScimError::Forbidden("x".into()), 403, None),
            (ScimError::MethodNotAllowed("x".into()), 405, None),
            (ScimError::internal("secret cause"), 500, None),
            (
                ScimError::unavailable_caused_by("pool", std::io::Error::other("refused")),
                503,
                None,
            ),
            (
                ScimError::outcome_unknown_caused_by("commit", std::io::Error::other("reset")),
                503,
                None,
            ),
        ];
        for (error, status, scim_type) in cases {
            let body = error_body(&error);
            assert_eq!(status_of(&error).as_u16(), status, "{error:?}");
            assert_eq!(body["status"], json!(status.to_string()));
            assert_eq!(body.get("scimType").and_then(Value::as_str), scim_type);
            assert_eq!(body["schemas"], json!([ERROR_SCHEMA]));
        }
    }

    #[test]
    fn databricks_codes_pick_the_sdk_error_the_status_implies() {
        let cases = [
            (
                ScimError::NotFound("x".into()),
                404,
                "RESOURCE_DOES_NOT_EXIST",
            ),
            (ScimError::uniqueness("x"), 409, "RESOURCE_ALREADY_EXISTS"),
            (ScimError::Conflict("x".into()), 409, "RESOURCE_CONFLICT"),
            (ScimError::Forbidden("x".into()), 403, "PERMISSION_DENIED"),
            (
                ScimError::unavailable_caused_by("pool", std::io::Error::other("refused")),
                503,
                "TEMPORARILY_UNAVAILABLE",
            ),
            (
                ScimError::invalid_value("x"),
                400,
                "INVALID_PARAMETER_VALUE",
            ),
            (ScimError::Unauthorized("x".into()), 401, "UNAUTHENTICATED"),
            (ScimError::internal("x"), 500, "INTERNAL_ERROR"),
        ];
        for (error, status, code) in cases {
            assert_eq!(status_of(&error).as_u16(), status, "{error:?}");
            let body = databricks_error_body(&error);
            assert_eq!(body["error_code"], json!(code));
            assert!(body["message"].is_string());
        }
        let body = databricks_error_body(&ScimError::internal("hunter2"));
        assert!(!body.to_string().contains("hunter2"));
    }

    #[test]
    fn access_errors_map_to_not_found_conflict_or_bad_request() {
        use scimitar_access::{AccessError, SecurableType};
        let unknown = AccessError::UnknownSecurable {
            securable_type: SecurableType::Catalog,
            full_name: "main".into(),
        };
        assert_eq!(status_of(&ScimError::from(unknown)).as_u16(), 404);
        let exists = AccessError::SecurableExists {
            securable_type: SecurableType::Catalog,
            full_name: "main".into(),
        };
        assert_eq!(status_of(&ScimError::from(exists)).as_u16(), 409);
        let bad = AccessError::UnknownPrivilege {
            text: "SELEKT".into(),
        };
        let mapped = ScimError::from(bad);
        assert_eq!(status_of(&mapped).as_u16(), 400);
        assert!(mapped.to_string().contains("SELEKT"));
    }

    #[test]
    fn a_conflict_is_a_409_without_a_scim_type_and_a_failed_statement() {
        let error = ScimError::Conflict("keep an admin".into());
        assert_eq!(status_of(&error).as_u16(), 409);
        assert_eq!(error_body(&error).get("scimType"), None);
        assert_eq!(databricks_error_code(&error), "RESOURCE_CONFLICT");
        let failed = statement_error(&error);
        assert_eq!(failed["error_code"], json!("BAD_REQUEST"));
        assert_eq!(
            failed["message"],
            json!("[RESOURCE_CONFLICT] keep an admin")
        );
    }

    #[test]
    fn the_error_shape_follows_the_api_of_the_path() {
        for scim in [
            "/scim/v2/Users",
            "/scim/v2/nowhere",
            "/api/2.0/preview/scim/v2/Users/x",
            "/api/2.0/accounts/acme/scim/v2",
            "/api/2.1/accounts/acme/scim/v2/Groups",
            "/healthz",
            "/",
        ] {
            assert_eq!(ErrorShape::for_path(scim), ErrorShape::Scim, "{scim}");
        }
        for databricks in [
            "/api/2.0/nowhere",
            "/api/2.1/unity-catalog/catalogs/x",
            "/api/2.0/permissions/directories/1",
            "/api/2.0/accounts/acme/other",
            "/api/2.0/preview/other/v2",
            "/api",
        ] {
            assert_eq!(
                ErrorShape::for_path(databricks),
                ErrorShape::Databricks,
                "{databricks}"
            );
        }
    }

    #[test]
    fn internal_causes_never_reach_the_client() {
        let body = error_body(&ScimError::internal("database password is hunter2"));
        assert!(!body["detail"].to_string().contains("hunter2"));
    }
}

#[cfg(test)]
mod listener_error_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn errors_outside_the_router_take_the_shape_of_the_api_called() {
        for (path, databricks) in [
            ("/scim/v2/Users", false),
            ("/api/2.0/preview/scim/v2/Users", false),
            ("/api/2.1/accounts/a/scim/v2/Groups", false),
            ("/api/2.1/unity-catalog/catalogs", true),
            ("/api/2.0/sql/statements", true),
            ("/healthz", false),
        ] {
            let response = error_outside_the_router(path, StatusCode::URI_TOO_LONG, "long".into());
            let content_type = response.headers()[header::CONTENT_TYPE].clone();
            assert_eq!(
                content_type == "application/json",
                databricks,
                "{path}: {content_type:?}"
            );
        }
    }
}
