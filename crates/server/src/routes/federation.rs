//! Workload identity federation over HTTP: the account's federation policies
//! (`/api/2.0/accounts/{account_id}/federationPolicies`, the SDK's `a.federation_policy`) and
//! a service principal's (`.../servicePrincipals/{service_principal_id}/federationPolicies`,
//! `a.service_principal_federation_policy`), with Databricks' bodies; and the fetcher of
//! issuers' discovery documents and key sets that the application verifies exchanged JWTs with
//! (the token exchange itself is served at the token endpoints, `routes::oauth`). Thin: bodies
//! are read here, the application validates and decides (`scimitar_app::federation`).

use crate::context::{DatabricksContext, Mount};
use crate::error::DatabricksResult;
use crate::routes::{json_request, method_not_allowed};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Json, Router};
use scimitar_app::federation::{
    may_fetch_from, DocumentFetcher, OidcPolicyInput, PolicyInput, MAX_FETCHED_BYTES,
};
use scimitar_domain::{PrincipalId, ScimError};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// A policy body: a few short fields and, at most, an inline key set.
const MAX_POLICY_BODY_BYTES: usize = 128 * 1024;

const ACCOUNT_POLICIES: &str = "/api/2.0/accounts/{account_id}/federationPolicies";

const PRINCIPAL_POLICIES: &str =
    "/api/2.0/accounts/{account_id}/servicePrincipals/{service_principal_id}/federationPolicies";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            ACCOUNT_POLICIES,
            get(list_policies)
                .post(create_policy)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{ACCOUNT_POLICIES}/{{policy_id}}"),
            get(get_policy)
                .patch(update_policy)
                .delete(delete_policy)
                .fallback(method_not_allowed),
        )
        .route(
            PRINCIPAL_POLICIES,
            get(list_policies)
                .post(create_policy)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{PRINCIPAL_POLICIES}/{{policy_id}}"),
            get(get_policy)
                .patch(update_policy)
                .delete(delete_policy)
                .fallback(method_not_allowed),
        )
        // The account is named by the path, as on the account SCIM API.
        .layer(Extension(Mount::DatabricksAccount { api_version: "2.0" }))
}

/// `FederationPolicy` as the SDK sends it. The fields the server sets (`name`, `uid`,
/// `policy_id`, the times, `service_principal_id`) are accepted and ignored, so that a policy
/// read back can be sent again; anything else unknown is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    description: Option<String>,
    oidc_policy: Option<OidcPolicyBody>,
    #[serde(rename = "name")]
    _name: Option<Value>,
    #[serde(rename = "uid")]
    _uid: Option<Value>,
    #[serde(rename = "policy_id")]
    _policy_id: Option<Value>,
    #[serde(rename = "create_time")]
    _create_time: Option<Value>,
    #[serde(rename = "update_time")]
    _update_time: Option<Value>,
    #[serde(rename = "service_principal_id")]
    _service_principal_id: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcPolicyBody {
    issuer: Option<String>,
    audiences: Option<Vec<String>>,
    subject: Option<String>,
    subject_claim: Option<String>,
    jwks_json: Option<String>,
    jwks_uri: Option<String>,
}

impl From<PolicyBody> for PolicyInput {
    fn from(body: PolicyBody) -> PolicyInput {
        PolicyInput {
            description: body.description,
            oidc_policy: body.oidc_policy.map(|oidc| OidcPolicyInput {
                issuer: oidc.issuer,
                audiences: oidc.audiences,
                subject: oidc.subject,
                subject_claim: oidc.subject_claim,
                jwks_json: oidc.jwks_json,
                jwks_uri: oidc.jwks_uri,
            }),
        }
    }
}

/// The service principal a path names, if it names one.
fn owner_of(params: &HashMap<String, String>) -> Option<PrincipalId> {
    params
        .get("service_principal_id")
        .map(|id| PrincipalId::new(id.as_str()))
}

fn policy_id_of(params: &HashMap<String, String>) -> &str {
    params.get("policy_id").map_or("", String::as_str)
}

async fn create_policy(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> DatabricksResult {
    let body: PolicyBody = json_request(body, MAX_POLICY_BODY_BYTES).await?;
    let owner = owner_of(&params);
    let created = state
        .services
        .create_federation_policy(
            &context.actor,
            owner.as_ref(),
            query.get("policy_id").map(String::as_str),
            body.into(),
        )
        .await?;
    Ok(Json(created).into_response())
}

async fn list_policies(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> DatabricksResult {
    let page_size = query
        .get("page_size")
        .map(|size| {
            size.parse::<usize>().map_err(|_| {
                ScimError::invalid_value(format!(
                    "page_size must be a number, not {:?}",
                    size.escape_debug().to_string()
                ))
            })
        })
        .transpose()?;
    let owner = owner_of(&params);
    let listed = state
        .services
        .list_federation_policies(
            &context.actor,
            owner.as_ref(),
            page_size,
            query.get("page_token").map(String::as_str),
        )
        .await?;
    Ok(Json(listed).into_response())
}

async fn get_policy(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> DatabricksResult {
    let owner = owner_of(&params);
    let policy = state
        .services
        .get_federation_policy(&context.actor, owner.as_ref(), policy_id_of(&params))
        .await?;
    Ok(Json(policy).into_response())
}

async fn update_policy(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> DatabricksResult {
    let body: PolicyBody = json_request(body, MAX_POLICY_BODY_BYTES).await?;
    let owner = owner_of(&params);
    let policy = state
        .services
        .update_federation_policy(
            &context.actor,
            owner.as_ref(),
            policy_id_of(&params),
            query.get("update_mask").map(String::as_str),
            body.into(),
        )
        .await?;
    Ok(Json(policy).into_response())
}

async fn delete_policy(
    context: DatabricksContext,
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> DatabricksResult {
    let owner = owner_of(&params);
    state
        .services
        .delete_federation_policy(&context.actor, owner.as_ref(), policy_id_of(&params))
        .await?;
    Ok(Json(Value::Object(serde_json::Map::new())).into_response())
}

// ----- the fetcher --------------------------------------------------------------------------

/// Fetches issuers' discovery documents and key sets over HTTPS (or loopback HTTP, where the
/// application allowed the URL): a short timeout, no redirects, at most [`MAX_FETCHED_BYTES`],
/// and only from addresses [`may_fetch_from`] allows, checked on the addresses a name resolves
/// to (by the client's own resolver, so the address checked is the one connected to) and on an
/// address written in the URL.
pub struct HttpDocumentFetcher {
    /// Connects to public addresses only.
    public: reqwest::Client,
    /// Also to loopback ones, for a deployment that allows loopback issuers.
    with_loopback: reqwest::Client,
}

/// How long a fetch may take in all; an issuer that slow fails the exchange, not the server.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The fetcher's resolver: the system's answer, without the addresses it may not reach.
struct AllowedAddresses {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for AllowedAddresses {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| may_fetch_from(address.ip(), allow_loopback))
                .collect();
            if resolved.is_empty() {
                return Err(format!(
                    "{host} resolves to no address this server may fetch from (private, \
                     link-local or loopback addresses are refused)"
                )
                .into());
            }
            Ok(Box::new(resolved.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl HttpDocumentFetcher {
    pub fn new() -> HttpDocumentFetcher {
        let client = |allow_loopback: bool| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(FETCH_TIMEOUT)
                .no_proxy()
                .dns_resolver(std::sync::Arc::new(AllowedAddresses { allow_loopback }))
                .build()
        };
        HttpDocumentFetcher {
            public: client(false).unwrap_or_else(|_| reqwest::Client::new()),
            with_loopback: client(true).unwrap_or_else(|_| reqwest::Client::new()),
        }
    }
}

impl Default for HttpDocumentFetcher {
    fn default() -> Self {
        HttpDocumentFetcher::new()
    }
}

/// The address a URL's host is written as, if it is one (no name to resolve).
fn literal_address(url: &str) -> Option<std::net::IpAddr> {
    let authority = url.split_once("://")?.1.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next()?,
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.parse().ok()
}

impl DocumentFetcher for HttpDocumentFetcher {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
        allow_loopback: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>> {
        Box::pin(async move {
            // An address in the URL is connected to without the resolver: checked here.
            if let Some(address) = literal_address(url) {
                if !may_fetch_from(address, allow_loopback) {
                    return Err(format!(
                        "{url} names {address}, which this server may not fetch from"
                    ));
                }
            }
            let client = if allow_loopback {
                &self.with_loopback
            } else {
                &self.public
            };
            let mut response = client
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|error| format!("fetching {url}: {error}"))?;
            if !response.status().is_success() {
                return Err(format!("{url} answered {}", response.status()));
            }
            let too_large = || format!("{url} is larger than {MAX_FETCHED_BYTES} bytes");
            if response
                .content_length()
                .is_some_and(|length| length > MAX_FETCHED_BYTES as u64)
            {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|error| format!("reading {url}: {error}"))?
            {
                if body.len() + chunk.len() > MAX_FETCHED_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
    }
}
