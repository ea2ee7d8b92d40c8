//! The one mapping from [`ScimError`] to an HTTP response with an RFC 7644 error body.
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
        ScimError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ScimError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ScimError::Forbidden(_) => StatusCode::FORBIDDEN,
        ScimError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        ScimError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        ScimError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The RFC 7644 section 3.12 error document for an error.
pub fn error_body(error: &ScimError) -> Map<String, Value> {
    let status = status_of(error);
    let mut body = Map::new();
    body.insert("schemas".into(), json!([ERROR_SCHEMA]));
    body.insert("status".into(), json!(status.as_u16().to_string()));
    if let ScimError::BadRequest { scim_type, .. } = error {
        body.insert("scimType".into(), json!(scim_type.as_str()));
    }
    let detail = match error {
        ScimError::Internal(cause) => {
            tracing::error!(%cause, "internal error");
            "the server failed to process the request; the cause is in its log".to_string()
        }
        other => other.to_string(),
    };
    body.insert("detail".into(), json!(detail));
    body
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
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimitar\""),
            );
        }
        response
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

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
            (ScimError::PayloadTooLarge("x".into()), 413, None),
            (ScimError::Unauthorized("x".into()), 401, None),
            (ScimError::Forbidden("x".into()), 403, None),
            (ScimError::MethodNotAllowed("x".into()), 405, None),
            (ScimError::Internal("secret cause".into()), 500, None),
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
    fn internal_causes_never_reach_the_client() {
        let body = error_body(&ScimError::Internal("database password is hunter2".into()));
        assert!(!body["detail"].to_string().contains("hunter2"));
    }
}
