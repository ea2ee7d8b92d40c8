//! OAuth for service principals over HTTP: the token endpoints with the client-credentials
//! grant and the token exchange of federation (`POST /oidc/v1/token` for a workspace,
//! `POST /oidc/accounts/{account_id}/v1/token` for the account), their discovery documents and JWKS, and the service principal secrets API
//! as the SDK's `a.service_principal_secrets` and `w.service_principal_secrets_proxy` call it.
//! Thin: the form and the client's credentials are read here, the application decides and
//! mints (`scimitar_app::oauth`).
//!
//! The token endpoints answer errors in RFC 6749 section 5.2's shape only
//! ([`token_error_response`], the one mapping), never a Databricks or SCIM body: OAuth
//! clients, the SDK among them, read `error` and `error_description`.

use crate::context::{AddressedAccount, DatabricksContext, Mount, Origin};
use crate::error::{status_of, DatabricksResult};
use crate::routes::addressing::AddressPrefix;
use crate::routes::{json_request, method_not_allowed};
use crate::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use scimitar_app::oauth::{SecretRequest, TokenAudience, TokenEndpointError, TokenRequestForm};
use scimitar_domain::{PrincipalId, ScimError};
use serde::Deserialize;
use serde_json::{json, Value};

/// A token request is a few short form fields.
const MAX_TOKEN_REQUEST_BYTES: usize = 16 * 1024;

/// A secret's creation body: a lifetime and a few scopes.
const MAX_SECRET_BODY_BYTES: usize = 16 * 1024;

const ACCOUNT_OIDC: &str = "/oidc/accounts/{account_id}";

const ACCOUNT_SECRETS: &str =
    "/api/2.0/accounts/{account_id}/servicePrincipals/{service_principal_id}/credentials/secrets";

/// The workspace proxy the SDK's `ServicePrincipalSecretsProxyAPI` calls.
const WORKSPACE_SECRETS: &str =
    "/api/2.0/accounts/servicePrincipals/{service_principal_id}/credentials/secrets";

pub fn routes() -> Router<AppState> {
    let workspace = Router::new()
        .route(
            "/oidc/v1/token",
            post(token).fallback(token_method_not_allowed),
        )
        .route("/oidc/v1/keys", get(keys).fallback(method_not_allowed))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(discovery).fallback(method_not_allowed),
        )
        .route(
            "/oidc/.well-known/openid-configuration",
            get(discovery).fallback(method_not_allowed),
        )
        .route(
            WORKSPACE_SECRETS,
            get(list_secrets)
                .post(create_secret)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{WORKSPACE_SECRETS}/{{secret_id}}"),
            delete(delete_secret).fallback(method_not_allowed),
        );
    let account = Router::new()
        .route(
            &format!("{ACCOUNT_OIDC}/v1/token"),
            post(token).fallback(token_method_not_allowed),
        )
        .route(
            &format!("{ACCOUNT_OIDC}/v1/keys"),
            get(keys).fallback(method_not_allowed),
        )
        .route(
            &format!("{ACCOUNT_OIDC}/.well-known/oauth-authorization-server"),
            get(discovery).fallback(method_not_allowed),
        )
        .route(
            &format!("{ACCOUNT_OIDC}/.well-known/openid-configuration"),
            get(discovery).fallback(method_not_allowed),
        )
        .route(
            ACCOUNT_SECRETS,
            get(list_secrets)
                .post(create_secret)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{ACCOUNT_SECRETS}/{{secret_id}}"),
            delete(delete_secret).fallback(method_not_allowed),
        )
        // The account is named by the path, as on the account SCIM API.
        .layer(Extension(Mount::DatabricksAccount { api_version: "2.0" }));
    workspace.merge(account)
}

/// The OAuth authorization server a request addresses: the account's, or a workspace's, with
/// the URL it is reached at (its `issuer`, under which every endpoint lies).
struct OidcServer {
    audience: TokenAudience,
    issuer: String,
}

impl FromRequestParts<AppState> for OidcServer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let addressed = AddressedAccount::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Origin(origin) = Origin::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let prefix = parts
            .extensions
            .get::<AddressPrefix>()
            .map_or("", |prefix| prefix.0.as_str());
        let issuer = match &addressed.workspace {
            Some(_) => format!("{origin}{prefix}/oidc"),
            None => format!("{origin}/oidc/accounts/{}", addressed.account),
        };
        Ok(OidcServer {
            audience: TokenAudience {
                account: addressed.account,
                workspace: addressed.workspace.map(|workspace| workspace.id.clone()),
            },
            issuer,
        })
    }
}

/// Where the workspace's authorization server is, for `/.well-known/databricks-config`'s
/// `oidc_endpoint`: the SDK appends `/.well-known/oauth-authorization-server` to it.
pub fn workspace_oidc_endpoint(origin: &str, prefix: &str) -> String {
    format!("{origin}{prefix}/oidc")
}

/// RFC 8414's metadata (and, at `openid-configuration`, the same document): the SDK reads
/// `token_endpoint` and `authorization_endpoint`. There is no authorization endpoint (only
/// machine-to-machine grants are served), so the URL given answers 404.
async fn discovery(server: OidcServer) -> Response {
    let issuer = &server.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/v1/authorize"),
        "token_endpoint": format!("{issuer}/v1/token"),
        "jwks_uri": format!("{issuer}/v1/keys"),
        "grant_types_supported": [
            "client_credentials",
            scimitar_app::federation::TOKEN_EXCHANGE_GRANT,
        ],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["all-apis", "read-only", "scim"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    }))
    .into_response()
}

async fn keys(server: OidcServer, State(state): State<AppState>) -> DatabricksResult {
    let keys = state.services.jwks(&server.audience.account).await?;
    Ok(Json(keys).into_response())
}

/// `POST .../v1/token`: reads the form and the client's credentials, asks the application.
async fn token(
    server: Result<OidcServer, Response>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // An unknown account or workspace is a client that cannot authenticate there.
    let Ok(server) = server else {
        return token_error_response(TokenEndpointError::InvalidClient(
            "the addressed account or workspace does not exist".into(),
        ));
    };
    let form = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(error) => return token_error_response(error),
    };
    match state
        .services
        .client_credentials(&server.audience, &server.issuer, &form)
        .await
    {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            // RFC 6749 section 5.1: a response carrying a token is never cached.
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => token_error_response(error),
    }
}

/// Any method but `POST` at a token endpoint: 405, still in RFC 6749's shape.
async fn token_method_not_allowed() -> Response {
    let mut response = token_error_response(TokenEndpointError::InvalidRequest(
        "a token request is a POST".into(),
    ));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// The form of a token request (`application/x-www-form-urlencoded`, RFC 6749 section 4.4.2)
/// and the client's credentials, from `Authorization: Basic` (RFC 6749 section 2.3.1, each
/// part form-encoded) or from the form's `client_id` and `client_secret`, never both. A
/// parameter given twice is refused.
async fn read_form(
    headers: &HeaderMap,
    body: Body,
) -> Result<TokenRequestForm, TokenEndpointError> {
    let invalid = |why: &str| TokenEndpointError::InvalidRequest(why.to_string());
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| {
            value
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(invalid(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_TOKEN_REQUEST_BYTES)
        .await
        .map_err(|_| invalid("the request body is too large"))?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&bytes).map_err(|_| invalid("the form is malformed"))?;
    let mut form = TokenRequestForm::default();
    let mut seen = std::collections::HashSet::new();
    for (name, value) in pairs {
        if !seen.insert(name.clone()) {
            return Err(invalid(&format!(
                "{:?} is given more than once",
                name.escape_debug().to_string()
            )));
        }
        match name.as_str() {
            "grant_type" => form.grant_type = Some(value),
            "scope" => form.scope = Some(value),
            "client_id" => form.client_id = Some(value),
            "client_secret" => form.client_secret = Some(value),
            "subject_token" => form.subject_token = Some(value),
            "subject_token_type" => form.subject_token_type = Some(value),
            "requested_token_type" => form.requested_token_type = Some(value),
            "actor_token" => form.actor_token = Some(value),
            // Other parameters (`authorization_details`, `assume_group`...) are ignored, as
            // RFC 6749 section 3.2 asks of unrecognized ones.
            _ => {}
        }
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let (id, secret) = basic_credentials(value).ok_or_else(|| {
            TokenEndpointError::InvalidClient("a malformed Authorization header".into())
        })?;
        if form.client_secret.is_some() {
            return Err(invalid(
                "authenticate the client one way: the Authorization header or the form",
            ));
        }
        if form.client_id.as_ref().is_some_and(|named| *named != id) {
            return Err(invalid("client_id differs from the Authorization header's"));
        }
        form.client_id = Some(id);
        form.client_secret = Some(secret);
    }
    Ok(form)
}

fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let (scheme, encoded) = value.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let form_decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|text| text.into_owned())
    };
    Some((form_decode(id)?, form_decode(secret)?))
}

/// The one mapping of the token endpoint's refusals to RFC 6749 section 5.2's responses. Why a
/// client was refused is logged (never its secret); the client is told `invalid_client` alone.
pub fn token_error_response(error: TokenEndpointError) -> Response {
    let (status, code, description) = match error {
        TokenEndpointError::InvalidRequest(why) => {
            (StatusCode::BAD_REQUEST, "invalid_request", why)
        }
        TokenEndpointError::InvalidClient(why) => {
            tracing::info!(reason = %why.escape_debug(), "client authentication failed");
            (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed".to_string(),
            )
        }
        TokenEndpointError::InvalidGrant(why) => {
            tracing::info!(reason = %why.escape_debug(), "a token exchange was refused");
            (StatusCode::BAD_REQUEST, "invalid_grant", why)
        }
        TokenEndpointError::UnsupportedGrantType(why) => {
            (StatusCode::BAD_REQUEST, "unsupported_grant_type", why)
        }
        TokenEndpointError::InvalidScope(why) => (StatusCode::BAD_REQUEST, "invalid_scope", why),
        TokenEndpointError::Server(error) => {
            let status = status_of(&error);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                (status, "temporarily_unavailable", error.to_string())
            } else {
                tracing::error!(error = %error, "the token endpoint failed");
                (status, "server_error", "internal error".to_string())
            }
        }
    };
    let mut response = (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"scimitar\""),
        );
    }
    response
        .extensions_mut()
        .insert(crate::metrics::ErrorCode(code));
    response
}

// ----- service principal secrets ------------------------------------------------------------

/// `POST .../credentials/secrets`: `lifetime` as the SDK sends it, a protobuf Duration's text
/// (`"63072000s"`), or a bare number of seconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSecretBody {
    lifetime: Option<String>,
    scopes: Option<Vec<String>>,
}

fn lifetime_seconds(text: &str) -> Result<i64, ScimError> {
    let trimmed = text.trim();
    let number = trimmed.strip_suffix('s').unwrap_or(trimmed);
    number.parse::<i64>().map_err(|_| {
        ScimError::invalid_value(format!(
            "lifetime must be a number of seconds such as \"3600s\", not {:?}",
            text.escape_debug().to_string()
        ))
    })
}

fn principal_of(params: &std::collections::HashMap<String, String>) -> PrincipalId {
    PrincipalId::new(
        params
            .get("service_principal_id")
            .map_or("", String::as_str),
    )
}

async fn create_secret(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    body: Body,
) -> DatabricksResult {
    let body: CreateSecretBody = json_request(body, MAX_SECRET_BODY_BYTES).await?;
    let request = SecretRequest {
        lifetime_seconds: body.lifetime.as_deref().map(lifetime_seconds).transpose()?,
        scopes: body.scopes.unwrap_or_default(),
    };
    let created = state
        .services
        .create_oauth_secret(&context.actor, &principal_of(&params), &request)
        .await?;
    Ok(Json(created).into_response())
}

async fn list_secrets(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
) -> DatabricksResult {
    let secrets = state
        .services
        .list_oauth_secrets(&context.actor, &principal_of(&params))
        .await?;
    Ok(Json(secrets).into_response())
}

async fn delete_secret(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
) -> DatabricksResult {
    let secret_id = params.get("secret_id").map_or("", String::as_str);
    state
        .services
        .delete_oauth_secret(&context.actor, &principal_of(&params), secret_id)
        .await?;
    Ok(Json(Value::Object(serde_json::Map::new())).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn basic_credentials_are_decoded_and_form_decoded() {
        let header =
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("app%3Aid:s+e%2Bcret")))
                .unwrap();
        assert_eq!(
            basic_credentials(&header).unwrap(),
            ("app:id".to_string(), "s e+cret".to_string())
        );
        for refused in ["Bearer abc", "Basic !!!", "Basic YWJj"] {
            assert!(basic_credentials(&HeaderValue::from_static(refused)).is_none());
        }
    }

    #[test]
    fn lifetimes_are_seconds_with_or_without_their_unit() {
        assert_eq!(lifetime_seconds("63072000s").unwrap(), 63_072_000);
        assert_eq!(lifetime_seconds("60").unwrap(), 60);
        assert!(lifetime_seconds("1h").is_err());
    }
}
