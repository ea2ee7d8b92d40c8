//! Which workspace a request addresses, found before routing: every workspace of a deployment
//! is served by this one process, so the workspace-level paths (`/scim/v2`, the Databricks
//! workspace APIs) are the same for each and the workspace is named around them:
//! - by a path prefix, `/w/{workspace_id}/...`, which the Databricks SDKs keep when a host is
//!   configured with a path (they fetch `/.well-known/databricks-config` under it too);
//! - by the host name, `{deployment_name}.{workspace_domain}`, when a domain is configured;
//! - else it is the deployment's default workspace ([`crate::AppState::default_workspace`]).
//!
//! The prefix is taken off before the router sees the path, so every route and handler is
//! written once; what was taken off is kept in the request's extensions for base URLs.

use axum::extract::Request;
use axum::http::{header, Uri};
use axum::Router;
use std::convert::Infallible;
use std::task::{Context, Poll};

/// The workspace a request named, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceAddress {
    /// `/w/{workspace_id}/...`; the prefix is in [`AddressPrefix`].
    Id(String),
    /// The first label of a host name under the configured workspace domain.
    DeploymentName(String),
}

/// The path prefix a request came with (`/w/{workspace_id}`), put back in front of every URL
/// the answer gives (`location`, `$ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPrefix(pub String);

/// The path prefix that names a workspace.
const WORKSPACE_PREFIX: &str = "/w/";

/// The longest workspace id a path may name (Databricks' are int64, 19 digits at most).
const MAX_WORKSPACE_ID: usize = 32;

/// Wraps `router` so that requests are addressed first ([`address`]).
pub fn addressed(router: Router, workspace_domain: Option<String>) -> Router {
    Router::new().fallback_service(Addressing {
        inner: router,
        workspace_domain: workspace_domain.map(|domain| domain.to_ascii_lowercase()),
    })
}

#[derive(Clone)]
struct Addressing {
    inner: Router,
    /// Lowercase, without a leading dot.
    workspace_domain: Option<String>,
}

impl tower_service::Service<Request> for Addressing {
    type Response = axum::response::Response;
    type Error = Infallible;
    // The router's own future: addressing adds no allocation to a request.
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        address(&mut request, self.workspace_domain.as_deref());
        tower_service::Service::call(&mut self.inner, request)
    }
}

/// Finds the workspace a request names, takes a `/w/{id}` prefix off its path, and records
/// both in its extensions. A malformed prefix (`/w/` with no id, or not digits) is left as it
/// is, for the router to answer 404.
pub fn address(request: &mut Request, workspace_domain: Option<&str>) {
    if let Some((id, rest)) = workspace_prefix(request.uri().path()) {
        let (id, rest) = (id.to_string(), rest.to_string());
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{rest}?{query}"),
            None => rest,
        };
        let mut parts = request.uri().clone().into_parts();
        match path_and_query.parse() {
            Ok(path_and_query) => parts.path_and_query = Some(path_and_query),
            Err(_) => return,
        }
        let Ok(uri) = Uri::from_parts(parts) else {
            return;
        };
        *request.uri_mut() = uri;
        request
            .extensions_mut()
            .insert(AddressPrefix(format!("{WORKSPACE_PREFIX}{id}")));
        request.extensions_mut().insert(WorkspaceAddress::Id(id));
        return;
    }
    let Some(domain) = workspace_domain else {
        return;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(|host| {
            host.split(':')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        });
    if let Some(label) = host
        .as_deref()
        .and_then(|host| deployment_label(host, domain))
    {
        let label = label.to_string();
        request
            .extensions_mut()
            .insert(WorkspaceAddress::DeploymentName(label));
    }
}

/// `("123", "/scim/v2/Users")` for `/w/123/scim/v2/Users`; `None` when the path does not
/// start with a well-formed workspace prefix.
fn workspace_prefix(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix(WORKSPACE_PREFIX)?;
    let (id, rest) = match after.find('/') {
        Some(slash) => (&after[..slash], &after[slash..]),
        None => (after, "/"),
    };
    let well_formed = !id.is_empty()
        && id.len() <= MAX_WORKSPACE_ID
        && id.bytes().all(|byte| byte.is_ascii_digit());
    well_formed.then_some((id, rest))
}

/// The deployment name in `host` when it is exactly one label under `domain`.
fn deployment_label<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let label = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!label.is_empty() && !label.contains('.')).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_prefix_is_digits_and_what_follows_is_the_path() {
        assert_eq!(
            workspace_prefix("/w/123/scim/v2/Users"),
            Some(("123", "/scim/v2/Users"))
        );
        assert_eq!(workspace_prefix("/w/123"), Some(("123", "/")));
        assert_eq!(workspace_prefix("/w//scim"), None);
        assert_eq!(workspace_prefix("/w/abc/scim"), None);
        assert_eq!(workspace_prefix("/scim/v2/w/1/x"), None);
        assert_eq!(workspace_prefix(&format!("/w/{}/x", "1".repeat(33))), None);
    }

    #[test]
    fn a_deployment_name_is_one_label_under_the_domain() {
        assert_eq!(
            deployment_label("sales.ws.example.com", "ws.example.com"),
            Some("sales")
        );
        assert_eq!(
            deployment_label("a.b.ws.example.com", "ws.example.com"),
            None
        );
        assert_eq!(deployment_label("ws.example.com", "ws.example.com"), None);
        assert_eq!(
            deployment_label("salesws.example.com", "ws.example.com"),
            None
        );
    }

    #[test]
    fn the_prefix_is_taken_off_and_remembered_with_the_query_kept() {
        let mut request = Request::builder()
            .uri("/w/42/scim/v2/Users?filter=x")
            .body(axum::body::Body::empty())
            .unwrap_or_default();
        address(&mut request, None);
        assert_eq!(request.uri().path(), "/scim/v2/Users");
        assert_eq!(request.uri().query(), Some("filter=x"));
        assert_eq!(
            request.extensions().get::<WorkspaceAddress>(),
            Some(&WorkspaceAddress::Id("42".into()))
        );
        assert_eq!(
            request.extensions().get::<AddressPrefix>(),
            Some(&AddressPrefix("/w/42".into()))
        );
    }
}
