//! Who is asking, and of which account: the mount point a request came through, its bearer
//! token, and the absolute base URL that `location` and `$ref` values are built from.

use crate::error::{ApiError, DatabricksError, ErrorShape};
use crate::routes::addressing::{AddressPrefix, WorkspaceAddress};
use crate::AppState;
use axum::extract::{FromRequestParts, OriginalUri, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use scimitar_app::service::Surface;
use scimitar_app::{Actor, Workspace};
use scimitar_domain::credentials::RequestKind;
use scimitar_domain::{AccountId, ScimError, ScimResult, WorkspaceId};
use std::collections::HashMap;

/// The SCIM mount points. They share semantics and differ only in how the account is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// `/scim/v2`: the addressed workspace's directory (see `routes::addressing`).
    Generic,
    /// `/api/2.0/preview/scim/v2`: the Databricks workspace API, on the addressed workspace.
    DatabricksWorkspace,
    /// `/api/2.0/accounts/{account_id}/scim/v2` (or `2.1`): the Databricks account API.
    DatabricksAccount { api_version: &'static str },
}

impl Mount {
    /// Which API a directory read through this mount is: the account API's rules differ.
    pub fn surface(self) -> Surface {
        match self {
            Mount::Generic | Mount::DatabricksWorkspace => Surface::Workspace,
            Mount::DatabricksAccount { .. } => Surface::Account,
        }
    }

    fn prefix(self, account: &AccountId) -> String {
        match self {
            Mount::Generic => "/scim/v2".to_string(),
            Mount::DatabricksWorkspace => "/api/2.0/preview/scim/v2".to_string(),
            Mount::DatabricksAccount { api_version } => {
                format!("/api/{api_version}/accounts/{account}/scim/v2")
            }
        }
    }
}

/// The account a request addresses, and for a workspace-level path the workspace, before
/// authentication (discovery endpoints need only this).
pub struct AddressedAccount {
    pub account: AccountId,
    /// The workspace of a workspace-level request; `None` on the account API.
    pub workspace: Option<std::sync::Arc<Workspace>>,
    pub mount: Mount,
    pub base_url: String,
}

/// An authenticated SCIM request: who acts (a principal of the addressed account, with its
/// token, in the addressed workspace), through which mount, and the base URL of the mount
/// point.
pub struct ScimContext {
    pub actor: Actor,
    pub mount: Mount,
    pub base_url: String,
}

/// The configured public base URL of the server (`public_url`): what clients reach it at,
/// behind whatever proxies. Checked once at startup: an absolute `http` or `https` URL with a
/// host, no user, query or fragment; kept without its trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn parse(text: &str) -> Result<PublicUrl, String> {
        let refuse = |why: &str| Err(format!("public_url {text:?} {why}"));
        let trimmed = text.trim().trim_end_matches('/');
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return refuse("is not an absolute URL (http://HOST or https://HOST)");
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return refuse("must use http or https");
        }
        if !trimmed.chars().all(|c| c.is_ascii_graphic()) {
            return refuse("may hold only visible ASCII characters (percent-encode the rest)");
        }
        if trimmed.contains(['?', '#']) {
            return refuse("must not have a query or a fragment");
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.starts_with(':') {
            return refuse("has no host");
        }
        if authority.contains('@') {
            return refuse("must not name a user");
        }
        Ok(PublicUrl(format!(
            "{}://{rest}",
            scheme.to_ascii_lowercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where `location`, `meta.location` and `$ref` values point: the configured public URL, or,
/// when none is configured, `http://` and the request's `Host` header, which is then trusted
/// (an operator behind a proxy sets `public_url`). `X-Forwarded-*` headers are never read:
/// any client can send them.
fn origin(public_url: Option<&PublicUrl>, headers: &HeaderMap) -> String {
    if let Some(public_url) = public_url {
        return public_url.as_str().to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty() && host.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

impl FromRequestParts<AppState> for AddressedAccount {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mount = parts
            .extensions
            .get::<Mount>()
            .copied()
            .unwrap_or(Mount::Generic);
        let (account, workspace) = match mount {
            Mount::DatabricksAccount { .. } => {
                let Path(params) =
                    Path::<HashMap<String, String>>::from_request_parts(parts, state)
                        .await
                        .map_err(|_| ScimError::NotFound("account not found".into()))?;
                let id = params
                    .get("account_id")
                    .ok_or_else(|| ScimError::NotFound("account not found".into()))?;
                (state.account(id).await?, None)
            }
            Mount::Generic | Mount::DatabricksWorkspace => {
                let workspace = addressed_workspace(parts, state).await?;
                (workspace.account.clone(), Some(workspace))
            }
        };
        let prefix = parts
            .extensions
            .get::<AddressPrefix>()
            .map_or("", |prefix| prefix.0.as_str());
        let base_url = format!(
            "{}{prefix}{}",
            origin(state.public_url.as_ref(), &parts.headers),
            mount.prefix(&account)
        );
        Ok(AddressedAccount {
            account,
            workspace,
            mount,
            base_url,
        })
    }
}

/// The server's origin as a client reaches it (`public_url`, else `http://` and `Host`), for
/// answers that give a URL outside the mount point called (the URL a workspace is served at).
pub struct Origin(pub String);

impl FromRequestParts<AppState> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Origin(origin(state.public_url.as_ref(), &parts.headers)))
    }
}

/// The workspace a workspace-level request addresses: by `/w/{id}`, by host name, or the
/// default ([`AppState::default_workspace`]).
pub async fn addressed_workspace(
    parts: &Parts,
    state: &AppState,
) -> ScimResult<std::sync::Arc<Workspace>> {
    match parts.extensions.get::<WorkspaceAddress>() {
        Some(WorkspaceAddress::Id(id)) => state
            .services
            .workspace(&WorkspaceId::new(id))
            .await
            .map(std::sync::Arc::new),
        Some(WorkspaceAddress::DeploymentName(name)) => state
            .services
            .workspace_by_deployment_name(name)
            .await
            .map(std::sync::Arc::new),
        None => state.default_workspace().await,
    }
}

/// The bearer secret of a request, if it carries one.
pub fn bearer_secret(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|s| !s.is_empty())
}

/// Who a request authenticated as, and in which account: for its log line, and for the
/// change token its answer carries. The request-log middleware puts an empty one in the
/// request's extensions, and authentication fills it.
#[derive(Clone, Default)]
pub struct RequestPrincipal(std::sync::Arc<std::sync::OnceLock<(AccountId, String)>>);

impl RequestPrincipal {
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(|(_, principal)| principal.as_str())
    }

    pub fn account(&self) -> Option<&AccountId> {
        self.0.get().map(|(account, _)| account)
    }

    fn set(&self, account: &AccountId, principal: &str) {
        let _ = self.0.set((account.clone(), principal.to_string()));
    }
}

/// What every client whose authentication fails is told, whatever the reason: a token that
/// has expired, or whose principal was deactivated, must not tell the one holding it that it
/// was once valid. The reason goes to the log instead.
pub const UNAUTHENTICATED_MESSAGE: &str =
    "the request is not authenticated: send 'Authorization: Bearer <token>' with a valid token";

/// The one refusal of a request whose authentication failed. `reason` (never the token) is
/// logged, inside the request's span, which carries its request id.
fn unauthenticated(reason: &str) -> ScimError {
    tracing::info!(reason = %reason.escape_debug(), "authentication failed");
    ScimError::Unauthorized(UNAUTHENTICATED_MESSAGE.into())
}

/// What a request does, as a token's scope sees it: whether it only reads (`GET`, `HEAD`, and
/// SCIM searches, which are `POST .../.search`), and whether it is a SCIM request, decided by
/// the one rule for which API a path belongs to ([`ErrorShape::for_path`]: the SCIM mounts, as
/// the client sent the path, before nesting took a prefix off, after its workspace prefix).
fn request_kind(parts: &Parts) -> RequestKind {
    let original = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.path(), |original| original.0.path());
    // A `/w/{workspace_id}` prefix names the workspace, not the API: what follows it does.
    let path = parts
        .extensions
        .get::<AddressPrefix>()
        .and_then(|prefix| original.strip_prefix(prefix.0.as_str()))
        .unwrap_or(original);
    // The change feed is part of provisioning: a sync job reads the directory with a token of
    // the SCIM scope and follows the feed with the same one.
    let scim = ErrorShape::for_path(path) == ErrorShape::Scim
        || path == crate::routes::sync_changes::CHANGES_PATH;
    let search = scim && parts.method == Method::POST && path.ends_with("/.search");
    RequestKind {
        reads_only: matches!(parts.method, Method::GET | Method::HEAD) || search,
        scim,
    }
}

impl FromRequestParts<AppState> for ScimContext {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = bearer_secret(&parts.headers).map(str::to_string) else {
            return Err(unauthenticated("the request has no bearer token").into());
        };
        let kind = request_kind(parts);
        let credential = match state.services.authenticate(&secret, kind).await {
            Ok(credential) => credential,
            Err(ScimError::Unauthorized(reason)) => return Err(unauthenticated(&reason).into()),
            Err(other) => return Err(other.into()),
        };
        if let Some(slot) = parts.extensions.get::<RequestPrincipal>() {
            slot.set(credential.account(), credential.principal().as_str());
        }
        let addressed = AddressedAccount::from_request_parts(parts, state).await?;
        let actor = match &addressed.workspace {
            Some(workspace) => state.services.enter_workspace(credential, workspace).await,
            None => credential.act_in(&addressed.account),
        };
        // A token of another workspace is answered as one that does not exist.
        let actor = match actor {
            Ok(actor) => actor,
            Err(ScimError::Unauthorized(reason)) => return Err(unauthenticated(&reason).into()),
            Err(other) => return Err(other.into()),
        };
        // Only now, authenticated and in its own account, may a request wait for changes.
        // Having waited, the node knows every change up to the token, so the credential is
        // checked again: a deactivation or revocation the token orders after is refused.
        if crate::routes::consistency::read_after(state, &parts.headers, actor.account()).await? {
            match state.services.authenticate(&secret, kind).await {
                Ok(_) => {}
                Err(ScimError::Unauthorized(reason)) => return Err(unauthenticated(&reason).into()),
                Err(other) => return Err(other.into()),
            }
        }
        Ok(ScimContext {
            actor,
            mount: addressed.mount,
            base_url: addressed.base_url,
        })
    }
}

/// An authenticated request to a Databricks REST API (Unity Catalog, SQL statements): the
/// same credential check as [`ScimContext`], with rejections in Databricks' error shape so
/// the Databricks SDKs raise their typed errors.
pub struct DatabricksContext {
    pub actor: Actor,
}

impl FromRequestParts<AppState> for DatabricksContext {
    type Rejection = DatabricksError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let context = ScimContext::from_request_parts(parts, state).await?;
        Ok(DatabricksContext {
            actor: context.actor,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::PublicUrl;

    #[test]
    fn a_public_url_is_an_absolute_http_url_without_query_user_or_fragment() {
        assert_eq!(
            PublicUrl::parse("HTTPS://idp.example.com/scimitar/")
                .unwrap()
                .as_str(),
            "https://idp.example.com/scimitar"
        );
        assert_eq!(
            PublicUrl::parse("http://10.0.0.1:8080").unwrap().as_str(),
            "http://10.0.0.1:8080"
        );
        for refused in [
            "idp.example.com",
            "ftp://idp.example.com",
            "https://",
            "https://:443",
            "https://idp.example.com/?a=b",
            "https://idp.example.com/#top",
            "https://user@idp.example.com",
            "https://idp example.com",
            "/scim",
        ] {
            assert!(PublicUrl::parse(refused).is_err(), "{refused}");
        }
    }
}
