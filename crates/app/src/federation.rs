//! Workload identity federation (issue #15): federation policies (the SDK's
//! `a.federation_policy` and `a.service_principal_federation_policy`), and the token-exchange
//! grant of RFC 8693 at the token endpoints, by which a JWT from an external OIDC issuer (a CI
//! system, a cloud workload, the company's IdP) becomes a Scimitar access token with no stored
//! secret at all. See `docs/design/oauth.md`.
//!
//! An exchanged JWT is verified here, fully, before anything in it is believed: `alg` RS256 or
//! ES256 only (never `none`, never an HMAC), the signature by a key of the issuer's key set
//! (given inline by the policy, or fetched from the issuer and cached per node for
//! [`KEY_SET_TTL_SECONDS`], fetched again at once for a `kid` the cached set lacks), `iss`, `aud`
//! among the policy's audiences, `exp`, `nbf` and `iat` with [`LEEWAY_SECONDS`], and the
//! subject. Each JWT is exchanged once: the exchange records it in storage
//! ([`scimitar_store::Change::RecordExchangedToken`]) in the account until it expires, so no
//! node exchanges it again.
//!
//! Fetching is the one piece of outbound I/O, and this crate knows no HTTP: the edge gives the
//! services a [`DocumentFetcher`] ([`Services::use_document_fetcher`]); without one, only
//! policies with an inline key set can verify.

use crate::authority::Actor;
use crate::oauth::{
    granted_scope, AccessTokenResponse, Minted, TokenAudience, TokenEndpointError, TokenRequestForm,
};
use crate::service::Services;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use scimitar_domain::credentials::token_digest;
use scimitar_domain::{AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp};
use scimitar_store::{Change, ExchangedToken, FederationPolicy, OidcPolicy};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The grant type of RFC 8693.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The only subject token type accepted: a JWT (RFC 8693 section 3).
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// What is issued (RFC 8693 section 2.2.1's `issued_token_type`).
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How far clocks may disagree when `nbf` and `iat` are checked. `exp` has none: the access
/// token issued never outlives the JWT it was exchanged for.
pub const LEEWAY_SECONDS: i64 = 30;

/// How long a fetched key set is used before it is fetched again.
pub const KEY_SET_TTL_SECONDS: i64 = 300;

/// A key set is fetched again for an unknown `kid` at most this often per issuer, so that a
/// stream of JWTs naming made-up keys cannot make the server fetch on every request.
pub const KEY_SET_REFETCH_SECONDS: i64 = 10;

/// The most key sets a node caches; past it, the oldest is dropped.
const MAX_CACHED_KEY_SETS: usize = 256;

/// The most policies an owner (the account, or one service principal) may have.
pub const MAX_POLICIES_PER_OWNER: usize = 20;

/// A fetched document's size limit, for the edge's fetcher.
pub const MAX_FETCHED_BYTES: usize = 256 * 1024;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Fetches a document by URL (a discovery document, a key set): the services' one outbound
/// call, given by the edge, which owns HTTP. The URL has been checked
/// ([`check_issuer_url`]); the fetcher adds a timeout and a size limit, follows no redirect,
/// and connects only to addresses [`may_fetch_from`] allows (`allow_loopback`: the
/// deployment's `federation_allow_loopback_http`), whatever the host's name resolves to. The
/// error is for the log.
pub trait DocumentFetcher: Send + Sync {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
        allow_loopback: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;
}

/// Whether the server may connect to `address` to fetch an issuer's documents: a policy's
/// issuer is written by an account admin, and without this rule the server would fetch from
/// wherever its own network reaches (a cloud's metadata service at 169.254.169.254, the
/// database, an internal admin page). Refused: private (10/8, 172.16/12, 192.168/16, fc00::/7),
/// shared (100.64/10), link-local (169.254/16, fe80::/10), unspecified, broadcast, multicast,
/// documentation and benchmarking ranges, and IPv4 written as IPv6; loopback only when
/// `allow_loopback` (tests, a local IdP).
pub fn may_fetch_from(address: std::net::IpAddr, allow_loopback: bool) -> bool {
    use std::net::IpAddr;
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                return allow_loopback;
            }
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return allow_loopback;
            }
            if let Some(v4) = v6.to_ipv4_mapped() {
                return may_fetch_from(IpAddr::V4(v4), allow_loopback);
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

/// This node's federation state: the fetcher, whether loopback `http` issuers are allowed, and
/// the key sets fetched.
#[derive(Default)]
pub struct Federation {
    fetcher: RwLock<Option<Arc<dyn DocumentFetcher>>>,
    allow_loopback_http: AtomicBool,
    key_sets: Mutex<HashMap<String, CachedKeySet>>,
}

struct CachedKeySet {
    keys: Arc<Vec<Jwk>>,
    fetched: Timestamp,
}

// ----- URLs -----------------------------------------------------------------------------------

/// Whether `url` may be an issuer or a key set's address: `https` with a host, or, where the
/// deployment allows it (tests, a local IdP), `http` to a loopback host (`127.0.0.0/8`,
/// `[::1]`, `localhost`). No user information, query or fragment.
pub fn check_issuer_url(url: &str, allow_loopback_http: bool) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not an absolute URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if authority.contains('@') || url.contains('?') || url.contains('#') {
        return Err(format!(
            "{url:?} may hold no user information, query or fragment"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} is not a URL"));
    }
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    match scheme {
        "https" => Ok(()),
        "http" if allow_loopback_http && is_loopback(host) => Ok(()),
        "http" if is_loopback(host) => Err(format!(
            "{url:?} is plain http; a loopback http issuer is allowed only when the \
             deployment enables federation_allow_loopback_http"
        )),
        _ => Err(format!("{url:?} must be an https URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|address| address.is_loopback())
}

// ----- keys -----------------------------------------------------------------------------------

/// One verification key of an issuer's key set.
#[derive(Debug, Clone)]
enum JwkKey {
    /// RSA: the modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// P-256: the uncompressed point (`04 || x || y`).
    P256 { point: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key: JwkKey,
}

/// The signature algorithms an exchanged JWT may use (Databricks accepts these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Rs256,
    Es256,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }
}

impl Jwk {
    /// Whether this key can check a signature of `algorithm` (its type fits, and its `alg`, if
    /// it names one, is that one).
    fn fits(&self, algorithm: Algorithm) -> bool {
        let kind_fits = matches!(
            (&self.key, algorithm),
            (JwkKey::Rsa { .. }, Algorithm::Rs256) | (JwkKey::P256 { .. }, Algorithm::Es256)
        );
        kind_fits
            && self
                .alg
                .as_deref()
                .is_none_or(|alg| alg == algorithm.name())
    }

    fn verifies(&self, algorithm: Algorithm, signed: &[u8], signature: &[u8]) -> bool {
        use ring::signature;
        match (&self.key, algorithm) {
            (JwkKey::Rsa { n, e }, Algorithm::Rs256) => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, signature)
                .is_ok(),
            (JwkKey::P256 { point }, Algorithm::Es256) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(signed, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

fn base64url_field(key: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(key.get(name)?.as_str()?.trim_end_matches('='))
        .ok()
}

/// Reads a JWK Set (RFC 7517 section 5): the RSA and P-256 signature keys in it; keys of other
/// types, curves or uses are skipped, as the RFC asks. Not a key set at all is an error.
fn parse_key_set(text: &[u8]) -> Result<Vec<Jwk>, String> {
    let document: Value =
        serde_json::from_slice(text).map_err(|_| "the key set is not JSON".to_string())?;
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "the key set has no \"keys\" array".to_string())?;
    let mut parsed = Vec::new();
    for key in keys {
        let Some(key) = key.as_object() else { continue };
        if key
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|use_| use_ != "sig")
        {
            continue;
        }
        let kid = key.get("kid").and_then(Value::as_str).map(str::to_string);
        let alg = key.get("alg").and_then(Value::as_str).map(str::to_string);
        let material = match key.get("kty").and_then(Value::as_str) {
            Some("RSA") => match (base64url_field(key, "n"), base64url_field(key, "e")) {
                (Some(n), Some(e)) if !n.is_empty() && !e.is_empty() => JwkKey::Rsa { n, e },
                _ => continue,
            },
            Some("EC") if key.get("crv").and_then(Value::as_str) == Some("P-256") => {
                match (base64url_field(key, "x"), base64url_field(key, "y")) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        let mut point = Vec::with_capacity(65);
                        point.push(4);
                        point.extend_from_slice(&x);
                        point.extend_from_slice(&y);
                        JwkKey::P256 { point }
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        parsed.push(Jwk {
            kid,
            alg,
            key: material,
        });
    }
    Ok(parsed)
}

// ----- the JWT ----------------------------------------------------------------------------------

/// An exchanged JWT split and decoded, its signature not yet checked: nothing in it is believed
/// but what picks the policy and the key.
struct UnverifiedJwt<'a> {
    algorithm: Algorithm,
    kid: Option<String>,
    claims: Map<String, Value>,
    signed: &'a str,
    signature: Vec<u8>,
}

fn invalid_grant(why: impl Into<String>) -> TokenEndpointError {
    TokenEndpointError::InvalidGrant(why.into())
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn split_jwt(jwt: &str) -> Result<UnverifiedJwt<'_>, TokenEndpointError> {
    let mut parts = jwt.split('.');
    let (Some(header_part), Some(claims_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_grant("the subject token is not a JWT"));
    };
    let header =
        decode_object(header_part).ok_or_else(|| invalid_grant("the JWT's header is malformed"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let algorithm = Algorithm::parse(alg).ok_or_else(|| {
        invalid_grant(format!(
            "the JWT is signed with {:?}; only RS256 and ES256 are accepted",
            alg.escape_debug().to_string()
        ))
    })?;
    if header.contains_key("crit") {
        return Err(invalid_grant("the JWT's header names critical extensions"));
    }
    let claims = decode_object(claims_part)
        .ok_or_else(|| invalid_grant("the JWT's claims are malformed"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_part)
        .map_err(|_| invalid_grant("the JWT's signature is malformed"))?;
    Ok(UnverifiedJwt {
        algorithm,
        kid: header
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_string),
        claims,
        signed: &jwt[..header_part.len() + 1 + claims_part.len()],
        signature,
    })
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenEndpointError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .or_else(|| value.as_f64().map(|seconds| seconds as i64))
            .map(Some)
            .ok_or_else(|| invalid_grant(format!("the JWT's {name} is not a number"))),
    }
}

/// What a verified JWT yields: who it is for, and until when.
struct Verified {
    principal: PrincipalId,
    expires: i64,
    token_id: String,
}

// ----- the policies API ---------------------------------------------------------------------------

/// A policy as the edge read it (the SDK's `FederationPolicy` body), to be validated here.
#[derive(Debug, Default, Clone)]
pub struct PolicyInput {
    pub description: Option<String>,
    pub oidc_policy: Option<OidcPolicyInput>,
}

/// `oidc_policy` as the edge read it.
#[derive(Debug, Default, Clone)]
pub struct OidcPolicyInput {
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub subject: Option<String>,
    pub subject_claim: Option<String>,
    pub jwks_json: Option<String>,
    pub jwks_uri: Option<String>,
}

/// Where a policy belongs: the account, or one of its service principals.
pub type PolicyOwner<'a> = Option<&'a PrincipalId>;

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_value(detail.into())
}

/// A policy id as the API takes it: lowercase letters, digits and `-`, at most 63.
fn check_policy_id(id: &str) -> ScimResult<()> {
    let fits = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if fits {
        Ok(())
    } else {
        Err(invalid(format!(
            "policy_id {:?} must be 1 to 63 lowercase letters, digits and '-'",
            id.escape_debug().to_string()
        )))
    }
}

fn non_empty(field: &str, value: Option<String>, max: usize) -> ScimResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) if text.len() > max => {
            Err(invalid(format!("{field} is longer than {max} characters")))
        }
        Some(text) => Ok(Some(text)),
    }
}

/// Validates a policy's OIDC settings for its owner: the issuer's and key set's URLs, the
/// audiences, a subject for (and only for) a service principal's policy, a claim name, and an
/// inline key set that holds at least one usable key.
fn validated_oidc(
    input: OidcPolicyInput,
    service_principal: bool,
    allow_loopback_http: bool,
) -> ScimResult<OidcPolicy> {
    let issuer = non_empty("oidc_policy.issuer", input.issuer, 1_000)?
        .ok_or_else(|| invalid("oidc_policy.issuer is required"))?;
    check_issuer_url(&issuer, allow_loopback_http)
        .map_err(|why| invalid(format!("oidc_policy.issuer: {why}")))?;
    let audiences = input.audiences.unwrap_or_default();
    if audiences.len() > 20
        || audiences
            .iter()
            .any(|a| a.trim().is_empty() || a.len() > 1_000)
    {
        return Err(invalid(
            "oidc_policy.audiences must be at most 20 non-empty strings",
        ));
    }
    let subject = non_empty("oidc_policy.subject", input.subject, 1_000)?;
    match (&subject, service_principal) {
        (None, true) => {
            return Err(invalid(
                "oidc_policy.subject is required in a service principal's federation policy",
            ))
        }
        (Some(_), false) => {
            return Err(invalid(
                "oidc_policy.subject is not allowed in an account federation policy: the \
                 subject claim names the user",
            ))
        }
        _ => {}
    }
    let subject_claim = non_empty("oidc_policy.subject_claim", input.subject_claim, 200)?;
    let jwks_uri = non_empty("oidc_policy.jwks_uri", input.jwks_uri, 1_000)?;
    if let Some(uri) = &jwks_uri {
        check_issuer_url(uri, allow_loopback_http)
            .map_err(|why| invalid(format!("oidc_policy.jwks_uri: {why}")))?;
    }
    let jwks_json = non_empty("oidc_policy.jwks_json", input.jwks_json, 64 * 1024)?;
    if let Some(text) = &jwks_json {
        let keys = parse_key_set(text.as_bytes())
            .map_err(|why| invalid(format!("oidc_policy.jwks_json: {why}")))?;
        if keys.is_empty() {
            return Err(invalid(
                "oidc_policy.jwks_json holds no RSA or P-256 signature key",
            ));
        }
        if jwks_uri.is_some() {
            return Err(invalid("give oidc_policy.jwks_json or jwks_uri, not both"));
        }
    }
    Ok(OidcPolicy {
        issuer,
        audiences,
        subject,
        subject_claim,
        jwks_json,
        jwks_uri,
    })
}

/// A policy as the SDK reads it (`FederationPolicy`).
fn policy_info(policy: &FederationPolicy) -> Value {
    let oidc = &policy.oidc;
    let mut oidc_policy = json!({ "issuer": oidc.issuer, "audiences": oidc.audiences });
    if let Value::Object(fields) = &mut oidc_policy {
        for (name, value) in [
            ("subject", &oidc.subject),
            ("subject_claim", &oidc.subject_claim),
            ("jwks_json", &oidc.jwks_json),
            ("jwks_uri", &oidc.jwks_uri),
        ] {
            if let Some(value) = value {
                fields.insert(name.into(), json!(value));
            }
        }
    }
    let name = match &policy.service_principal {
        Some(principal) => format!(
            "accounts/{}/servicePrincipals/{principal}/federationPolicies/{}",
            policy.account, policy.policy_id
        ),
        None => format!(
            "accounts/{}/federationPolicies/{}",
            policy.account, policy.policy_id
        ),
    };
    let mut info = json!({
        "name": name,
        "policy_id": policy.policy_id,
        "uid": policy.uid,
        "create_time": policy.created.to_rfc3339(),
        "update_time": policy.updated.to_rfc3339(),
        "oidc_policy": oidc_policy,
    });
    if let Value::Object(fields) = &mut info {
        if let Some(description) = &policy.description {
            fields.insert("description".into(), json!(description));
        }
        if let Some(principal) = &policy.service_principal {
            // The SDK reads the id as a number; Scimitar's ids are digits.
            let id = principal
                .as_str()
                .parse::<u64>()
                .map_or_else(|_| json!(principal.as_str()), |number| json!(number));
            fields.insert("service_principal_id".into(), id);
        }
    }
    info
}

impl Services {
    /// Gives the services the edge's fetcher of discovery documents and key sets.
    pub fn use_document_fetcher(&self, fetcher: Arc<dyn DocumentFetcher>) {
        if let Ok(mut current) = self.federation.fetcher.write() {
            *current = Some(fetcher);
        }
    }

    /// Whether federation policies may name a plain `http` issuer on a loopback host (for
    /// tests and a local IdP; off by default).
    pub fn allow_loopback_http_issuers(&self, allowed: bool) {
        self.federation
            .allow_loopback_http
            .store(allowed, Ordering::Relaxed);
    }

    fn loopback_http_allowed(&self) -> bool {
        self.federation.allow_loopback_http.load(Ordering::Relaxed)
    }

    /// Only the account's admins manage federation policies; a service principal's must be a
    /// service principal of the account (anything else is not found).
    async fn authorize_policies(&self, actor: &Actor, owner: PolicyOwner<'_>) -> ScimResult<()> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let admin = self.access.read(actor.account(), |model| {
            crate::authority::is_admin(model, actor.principal())
        })?;
        if !admin {
            return Err(crate::authority::not_an_admin(
                actor,
                "manage federation policies",
            ));
        }
        if let Some(principal) = owner {
            match self.store.principal(actor.account(), principal).await? {
                Some(found) if found.kind == PrincipalKind::ServicePrincipal => {}
                _ => {
                    return Err(ScimError::NotFound(format!(
                        "service principal {principal} not found"
                    )))
                }
            }
        }
        Ok(())
    }

    async fn policy_by_id(
        &self,
        actor: &Actor,
        owner: PolicyOwner<'_>,
        policy_id: &str,
    ) -> ScimResult<FederationPolicy> {
        self.store
            .federation_policies(actor.account(), owner)
            .await?
            .into_iter()
            .find(|policy| policy.policy_id == policy_id)
            .ok_or_else(|| {
                ScimError::NotFound(format!(
                    "federation policy {} not found",
                    policy_id.escape_debug()
                ))
            })
    }

    /// `POST .../federationPolicies[?policy_id=]`: a new policy, its id given or made.
    pub async fn create_federation_policy(
        &self,
        actor: &Actor,
        owner: PolicyOwner<'_>,
        policy_id: Option<&str>,
        input: PolicyInput,
    ) -> ScimResult<Value> {
        let policy_id = match policy_id.filter(|id| !id.is_empty()) {
            Some(id) => {
                check_policy_id(id)?;
                id.to_string()
            }
            None => self.ids.uuid(),
        };
        self.authorize_policies(actor, owner).await?;
        let oidc = validated_oidc(
            input
                .oidc_policy
                .ok_or_else(|| invalid("oidc_policy is required"))?,
            owner.is_some(),
            self.loopback_http_allowed(),
        )?;
        let description = non_empty("description", input.description, 1_000)?;
        if self
            .store
            .federation_policies(actor.account(), owner)
            .await?
            .len()
            >= MAX_POLICIES_PER_OWNER
        {
            return Err(ScimError::Conflict(format!(
                "at most {MAX_POLICIES_PER_OWNER} federation policies are allowed here"
            )));
        }
        let now = self.clock.now().truncated_to_millis();
        let policy = FederationPolicy {
            account: actor.account().clone(),
            uid: self.ids.uuid(),
            policy_id,
            service_principal: owner.cloned(),
            description,
            oidc,
            created: now,
            updated: now,
        };
        self.commit(
            actor.account(),
            Change::CreateFederationPolicy(policy.clone()),
        )
        .await?;
        Ok(policy_info(&policy))
    }

    /// `GET .../federationPolicies/{policy_id}`.
    pub async fn get_federation_policy(
        &self,
        actor: &Actor,
        owner: PolicyOwner<'_>,
        policy_id: &str,
    ) -> ScimResult<Value> {
        self.authorize_policies(actor, owner).await?;
        Ok(policy_info(
            &self.policy_by_id(actor, owner, policy_id).await?,
        ))
    }

    /// `GET .../federationPolicies[?page_size&page_token]`: `{policies, next_page_token}`, the
    /// token being where the next page starts.
    pub async fn list_federation_policies(
        &self,
        actor: &Actor,
        owner: PolicyOwner<'_>,
        page_size: Option<usize>,
        page_token: Option<&str>,
    ) -> ScimResult<Value> {
        self.authorize_policies(actor, owner).await?;
        let policies = self
            .store
            .federation_policies(actor.account(), owner)
            .await?;
        let start = match page_token.filter(|token| !token.is_empty()) {
            None => 0,
            Some(token) => token
                .parse::<usize>()
                .map_err(|_| invalid("page_token is not one this server gave"))?,
        };
        let size = page_size.filter(|size| *size > 0).unwrap_or(100).min(1_000);
        let page: Vec<Value> = policies
            .iter()
            .skip(start)
            .take(size)
            .map(policy_info)
            .collect();
        let mut answer = json!({ "policies": page });
        if start.saturating_add(size) < policies.len() {
            if let Value::Object(fields) = &mut answer {
                fields.insert("next_page_token".into(), json!((start + size).to_string()));
            }
        }
        Ok(answer)
    }

    /// `PATCH .../federationPolicies/{policy_id}?update_mask=`: the fields the mask names
    /// (`description`, `oidc_policy`, or `oidc_policy.<field>`) are taken from `input`; `*`
    /// takes the description and the whole OIDC policy; without a mask, every field `input`
    /// sets is taken.
    pub async fn update_federation_policy(
        &self,
        actor: &Actor,
        owner: PolicyOwner<'_>,
        policy_id: &str,
        update_mask: Option<&str>,
        input: PolicyInput,
    ) -> ScimResult<Value> {
        self.authorize_policies(actor, owner).await?;
        let mut policy = self.policy_by_id(actor, owner, policy_id).await?;
        let current = &policy.oidc;
        let mut oidc = OidcPolicyInput {
            issuer: Some(current.issuer.clone()),
            audiences: Some(current.audiences.clone()),
            subject: current.subject.clone(),
            subject_claim: current.subject_claim.clone(),
            jwks_json: current.jwks_json.clone(),
            jwks_uri: current.jwks_uri.clone(),
        };
        let given = input.oidc_policy.clone().unwrap_or_default();
        // Without a mask, every field the body sets is taken (as the SDK documents); `*`
        // replaces the description and the whole OIDC policy.
        let set: Vec<&str> = [
            ("description", input.description.is_some()),
            ("oidc_policy.issuer", given.issuer.is_some()),
            ("oidc_policy.audiences", given.audiences.is_some()),
            ("oidc_policy.subject", given.subject.is_some()),
            ("oidc_policy.subject_claim", given.subject_claim.is_some()),
            ("oidc_policy.jwks_json", given.jwks_json.is_some()),
            ("oidc_policy.jwks_uri", given.jwks_uri.is_some()),
        ]
        .into_iter()
        .filter_map(|(path, present)| present.then_some(path))
        .collect();
        let paths: Vec<&str> = match update_mask.map(str::trim).filter(|m| !m.is_empty()) {
            None => set,
            Some("*") => vec!["description", "oidc_policy"],
            Some(mask) => mask.split(',').map(str::trim).collect(),
        };
        for path in paths {
            match path {
                "description" => policy.description = input.description.clone(),
                "oidc_policy" => {
                    if input.oidc_policy.is_none() {
                        return Err(invalid("update_mask names oidc_policy, which is missing"));
                    }
                    oidc = given.clone();
                }
                "oidc_policy.issuer" => oidc.issuer = given.issuer.clone(),
                "oidc_policy.audiences" => oidc.audiences = given.audiences.clone(),
                "oidc_policy.subject" => oidc.subject = given.subject.clone(),
                "oidc_policy.subject_claim" => oidc.subject_claim = given.subject_claim.clone(),
                "oidc_policy.jwks_json" => oidc.jwks_json = given.jwks_json.clone(),
                "oidc_policy.jwks_uri" => oidc.jwks_uri = given.jwks_uri.clone(),
                other => {
                    return Err(invalid(format!(
                        "update_mask names {:?}, which is not a field that can be updated",
                        other.escape_debug().to_string()
                    )))
                }
            }
        }
        policy.oidc = validated_oidc(oidc, owner.is_some(), self.loopback_http_allowed())?;
        policy.description = non_empty("description", policy.description, 1_000)?;
        policy.updated = self.clock.now().truncated_to_millis();
        self.commit(
            actor.account(),
            Change::UpdateFederationPolicy(policy.clone()),
        )
        .await?;
        Ok(policy_info(&policy))
    }

    /// `DELETE .../federationPolicies/{policy_id}`: the policy goes, and the access tokens
    /// exchanged through it stop working on every node before their next request.
    pub async fn delete_federation_policy(
        &self,
        actor: &Actor,
        owner: PolicyOwner<'_>,
        policy_id: &str,
    ) -> ScimResult<()> {
        self.authorize_policies(actor, owner).await?;
        let policy = self.policy_by_id(actor, owner, policy_id).await?;
        self.commit(
            actor.account(),
            Change::DeleteFederationPolicy { uid: policy.uid },
        )
        .await
    }

    // ----- the exchange -------------------------------------------------------------------------

    /// `POST .../v1/token` with the token-exchange grant (RFC 8693): the subject token, a JWT
    /// from an external issuer, is verified against the federation policies that could accept
    /// it (the service principal's that `client_id` names, or else the account's), recorded
    /// so that it is never exchanged again, and answered with an access token for the
    /// principal it maps to. Every refusal changes nothing.
    pub(crate) async fn token_exchange(
        &self,
        audience: &TokenAudience,
        issuer: &str,
        form: &TokenRequestForm,
    ) -> Result<AccessTokenResponse, TokenEndpointError> {
        let request = |why: &str| TokenEndpointError::InvalidRequest(why.to_string());
        if form.client_secret.is_some() {
            return Err(request(
                "the token exchange takes no client secret: the subject token is the credential",
            ));
        }
        if form.actor_token.is_some() {
            return Err(request("actor tokens (delegation) are not supported"));
        }
        let jwt = form
            .subject_token
            .as_deref()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| request("subject_token is required"))?;
        match form.subject_token_type.as_deref() {
            Some(JWT_TOKEN_TYPE) => {}
            None | Some("") => return Err(request("subject_token_type is required")),
            Some(other) => {
                return Err(request(&format!(
                    "subject_token_type {:?} is not supported; use {JWT_TOKEN_TYPE}",
                    other.escape_debug().to_string()
                )))
            }
        }
        if let Some(requested) = form.requested_token_type.as_deref() {
            if requested != ACCESS_TOKEN_TYPE {
                return Err(request(&format!(
                    "requested_token_type must be {ACCESS_TOKEN_TYPE}"
                )));
            }
        }
        let account = &audience.account;
        let unverified = split_jwt(jwt)?;
        let token_issuer = string_claim(&unverified.claims, "iss")
            .ok_or_else(|| invalid_grant("the JWT has no iss"))?
            .to_string();
        let (policies, service_principal) = match form.client_id.as_deref() {
            Some(client_id) if !client_id.is_empty() => {
                let principal = self
                    .store
                    .principal_by_name(account, PrincipalKind::ServicePrincipal, client_id)
                    .await?
                    .ok_or_else(|| {
                        TokenEndpointError::InvalidClient(
                            "no service principal has this application id".into(),
                        )
                    })?;
                let policies = self
                    .store
                    .federation_policies(account, Some(&principal.id))
                    .await?;
                (policies, Some(principal.id))
            }
            _ => (self.store.federation_policies(account, None).await?, None),
        };
        let candidates: Vec<&FederationPolicy> = policies
            .iter()
            .filter(|policy| policy.oidc.issuer == token_issuer)
            .collect();
        if candidates.is_empty() {
            return Err(invalid_grant(match service_principal {
                Some(_) => "no federation policy of this service principal accepts this issuer",
                None => "no federation policy of the account accepts this issuer",
            }));
        }
        let now = self.clock.now();
        let mut refusal = invalid_grant("no federation policy accepts this token");
        for policy in candidates {
            match self
                .verify_subject_token(policy, &unverified, jwt, now)
                .await
            {
                Ok(verified) => {
                    return self
                        .exchange_verified(
                            audience,
                            issuer,
                            form,
                            policy,
                            &token_issuer,
                            verified,
                            now,
                        )
                        .await
                }
                Err(error @ TokenEndpointError::Server(_)) => return Err(error),
                Err(error) => refusal = error,
            }
        }
        Err(refusal)
    }

    /// The second half of an exchange: the principal must be able to act where the token is
    /// for, the JWT is recorded (refused if it was before), and the access token is minted.
    #[allow(clippy::too_many_arguments)]
    async fn exchange_verified(
        &self,
        audience: &TokenAudience,
        issuer: &str,
        form: &TokenRequestForm,
        policy: &FederationPolicy,
        token_issuer: &str,
        verified: Verified,
        now: Timestamp,
    ) -> Result<AccessTokenResponse, TokenEndpointError> {
        let account = &audience.account;
        if !self
            .may_act_in(account, &verified.principal, audience.workspace.as_ref())
            .await?
        {
            return Err(invalid_grant(
                "the principal is deactivated, or not assigned to the workspace",
            ));
        }
        let scope = granted_scope(form.scope.as_deref(), &[])?;
        let now_seconds = now.as_micros().div_euclid(MICROS_PER_SECOND);
        let lifetime =
            (verified.expires - now_seconds).min(crate::oauth::ACCESS_TOKEN_LIFETIME_SECONDS);
        if lifetime <= 0 {
            return Err(invalid_grant("the JWT has expired"));
        }
        let record = ExchangedToken {
            issuer: token_issuer.to_string(),
            token_id: verified.token_id,
            expires: Timestamp::from_micros(verified.expires.saturating_mul(MICROS_PER_SECOND)),
            now,
        };
        // Bookkeeping, as token uses are: no access answer changes, nothing to audit.
        match self
            .store
            .apply(account, Change::RecordExchangedToken(record))
            .await
        {
            Ok(()) => {}
            Err(ScimError::Conflict(_)) => {
                return Err(invalid_grant("this JWT was exchanged before"))
            }
            Err(error) => return Err(error.into()),
        }
        self.mint(
            audience,
            issuer,
            Minted {
                principal: verified.principal,
                client_id: form.client_id.clone().unwrap_or_default(),
                scope,
                lifetime,
                secret_id: None,
                federation_policy: Some(policy.uid.clone()),
            },
            now,
        )
        .await
    }

    /// Checks the JWT against one policy: its signature by a key of the policy's key set, its
    /// times, audience and subject; and finds the principal it becomes.
    async fn verify_subject_token(
        &self,
        policy: &FederationPolicy,
        jwt: &UnverifiedJwt<'_>,
        whole: &str,
        now: Timestamp,
    ) -> Result<Verified, TokenEndpointError> {
        let keys = self.key_set(policy, jwt.kid.as_deref(), now).await?;
        let fitting: Vec<&Jwk> = keys
            .iter()
            .filter(|key| key.fits(jwt.algorithm))
            .filter(|key| jwt.kid.is_none() || key.kid == jwt.kid)
            .collect();
        if fitting.is_empty() {
            return Err(invalid_grant(
                "the issuer's key set holds no key for this JWT (its kid and alg)",
            ));
        }
        if !fitting
            .iter()
            .any(|key| key.verifies(jwt.algorithm, jwt.signed.as_bytes(), &jwt.signature))
        {
            return Err(invalid_grant("the JWT's signature does not verify"));
        }
        // Only now is anything in the claims believed.
        let claims = &jwt.claims;
        let now_seconds = now.as_micros().div_euclid(MICROS_PER_SECOND);
        let expires =
            time_claim(claims, "exp")?.ok_or_else(|| invalid_grant("the JWT has no exp"))?;
        if now_seconds >= expires {
            return Err(invalid_grant("the JWT has expired"));
        }
        if time_claim(claims, "nbf")?.is_some_and(|nbf| nbf > now_seconds + LEEWAY_SECONDS) {
            return Err(invalid_grant("the JWT is not valid yet (nbf)"));
        }
        if time_claim(claims, "iat")?.is_some_and(|iat| iat > now_seconds + LEEWAY_SECONDS) {
            return Err(invalid_grant("the JWT was issued in the future (iat)"));
        }
        let default_audiences = [policy.account.to_string()];
        let accepted: &[String] = if policy.oidc.audiences.is_empty() {
            &default_audiences
        } else {
            &policy.oidc.audiences
        };
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|aud| accepted.iter().any(|accepted| accepted == aud))
        {
            return Err(invalid_grant(
                "the JWT's audience is not one the federation policy accepts",
            ));
        }
        let claim_name = policy.oidc.subject_claim.as_deref().unwrap_or("sub");
        let subject = string_claim(claims, claim_name).ok_or_else(|| {
            invalid_grant(format!(
                "the JWT has no {:?} claim",
                claim_name.escape_debug().to_string()
            ))
        })?;
        let principal = match (&policy.service_principal, &policy.oidc.subject) {
            (Some(principal), Some(expected)) => {
                if subject != expected {
                    return Err(invalid_grant(
                        "the JWT's subject is not the one the federation policy names",
                    ));
                }
                principal.clone()
            }
            (Some(_), None) => return Err(invalid_grant("the federation policy names no subject")),
            (None, _) => {
                // The account's policies: the subject claim holds the user's name (an email).
                self.store
                    .principal_by_name(&policy.account, PrincipalKind::User, subject)
                    .await?
                    .ok_or_else(|| invalid_grant("no user has the JWT's subject as userName"))?
                    .id
            }
        };
        let token_id = match string_claim(claims, "jti").filter(|jti| !jti.is_empty()) {
            Some(jti) => format!("jti:{jti}"),
            None => format!("sha256:{}", token_digest(whole)),
        };
        Ok(Verified {
            principal,
            expires,
            token_id,
        })
    }

    /// The policy's key set: inline, or this node's copy of the fetched one while it is fresh
    /// and holds `kid`; else fetched (at most every [`KEY_SET_REFETCH_SECONDS`] for a missing
    /// `kid`).
    async fn key_set(
        &self,
        policy: &FederationPolicy,
        kid: Option<&str>,
        now: Timestamp,
    ) -> Result<Arc<Vec<Jwk>>, TokenEndpointError> {
        if let Some(inline) = &policy.oidc.jwks_json {
            return parse_key_set(inline.as_bytes())
                .map(Arc::new)
                .map_err(|why| invalid_grant(format!("the policy's key set: {why}")));
        }
        let source = policy
            .oidc
            .jwks_uri
            .clone()
            .unwrap_or_else(|| format!("discovery:{}", policy.oidc.issuer));
        let age = |cached: &CachedKeySet| {
            (now.as_micros() - cached.fetched.as_micros()).div_euclid(MICROS_PER_SECOND)
        };
        let cached = self.federation.key_sets.lock().ok().and_then(|sets| {
            sets.get(&source)
                .map(|cached| (Arc::clone(&cached.keys), age(cached)))
        });
        if let Some((keys, age)) = cached {
            let holds_kid =
                kid.is_none_or(|kid| keys.iter().any(|key| key.kid.as_deref() == Some(kid)));
            let fresh = (0..KEY_SET_TTL_SECONDS).contains(&age);
            let may_refetch = !(0..KEY_SET_REFETCH_SECONDS).contains(&age);
            if fresh && (holds_kid || !may_refetch) {
                return Ok(keys);
            }
        }
        let keys = Arc::new(self.fetch_key_set(policy).await?);
        if let Ok(mut sets) = self.federation.key_sets.lock() {
            if sets.len() >= MAX_CACHED_KEY_SETS && !sets.contains_key(&source) {
                let oldest = sets
                    .iter()
                    .min_by_key(|(_, cached)| cached.fetched)
                    .map(|(source, _)| source.clone());
                if let Some(oldest) = oldest {
                    sets.remove(&oldest);
                }
            }
            sets.insert(
                source,
                CachedKeySet {
                    keys: Arc::clone(&keys),
                    fetched: now,
                },
            );
        }
        Ok(keys)
    }

    /// Fetches the policy's key set: from its `jwks_uri`, or the one the issuer's discovery
    /// document names. Both URLs must pass [`check_issuer_url`].
    async fn fetch_key_set(
        &self,
        policy: &FederationPolicy,
    ) -> Result<Vec<Jwk>, TokenEndpointError> {
        let fetcher = self
            .federation
            .fetcher
            .read()
            .ok()
            .and_then(|fetcher| fetcher.clone())
            .ok_or_else(|| invalid_grant("this server fetches no key sets"))?;
        let allow = self.loopback_http_allowed();
        let unavailable = |what: &str, why: String| {
            tracing::info!(issuer = %policy.oidc.issuer.escape_debug(), reason = %why.escape_debug(), "{what}");
            invalid_grant(what.to_string())
        };
        let jwks_uri = match &policy.oidc.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    policy.oidc.issuer.trim_end_matches('/')
                );
                check_issuer_url(&discovery, allow)
                    .map_err(|why| unavailable("the issuer's discovery URL is not allowed", why))?;
                let document = fetcher.fetch(&discovery, allow).await.map_err(|why| {
                    unavailable("the issuer's discovery document could not be fetched", why)
                })?;
                let document: Value = serde_json::from_slice(&document).map_err(|_| {
                    unavailable("the issuer's discovery document is not JSON", String::new())
                })?;
                document
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        unavailable(
                            "the issuer's discovery document names no jwks_uri",
                            String::new(),
                        )
                    })?
                    .to_string()
            }
        };
        check_issuer_url(&jwks_uri, allow)
            .map_err(|why| unavailable("the issuer's jwks_uri is not allowed", why))?;
        let body = fetcher
            .fetch(&jwks_uri, allow)
            .await
            .map_err(|why| unavailable("the issuer's key set could not be fetched", why))?;
        parse_key_set(&body).map_err(|why| unavailable("the issuer's key set is not valid", why))
    }

    /// Whether the federation policy an access token was exchanged through still exists, from
    /// the node's token cache or else storage (then cached, unless the log moved on during the
    /// read); the principal it names must be the token's.
    pub(crate) async fn live_policy(
        &self,
        account: &AccountId,
        principal: &PrincipalId,
        uid: &str,
    ) -> ScimResult<()> {
        let refused = |why: &str| {
            ScimError::Unauthorized(format!("the OAuth access token is not valid: {why}"))
        };
        let key = format!("federation-policy:{account}:{uid}");
        let owner_matches = |owner: &PrincipalId| owner.as_str().is_empty() || owner == principal;
        if let Some(cached) = self.access.cached_token(&key) {
            return if owner_matches(&cached.token.principal) {
                Ok(())
            } else {
                Err(refused("the policy belongs to another principal"))
            };
        }
        let read_at = self.access.applied();
        let policy = self
            .store
            .federation_policy(account, uid)
            .await?
            .ok_or_else(|| refused("the federation policy it was exchanged through was deleted"))?;
        let owner = policy
            .service_principal
            .clone()
            .unwrap_or_else(|| PrincipalId::new(""));
        if !owner_matches(&owner) {
            return Err(refused("the policy belongs to another principal"));
        }
        // Cached as a token with the policy's uid, so that the log's `TokenChanged { id }` for
        // the policy's deletion, and its principal's deactivation, evict it.
        let entry = scimitar_domain::credentials::Token {
            id: policy.uid.clone(),
            account: account.clone(),
            principal: owner,
            scope: scimitar_domain::credentials::TokenScope::AllApis,
            comment: None,
            created: policy.created,
            expires: None,
            workspace: None,
            created_by: None,
        };
        self.access.remember_token(key, entry, read_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_public_addresses_are_fetched_from_and_loopback_where_allowed() {
        let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
        for public in [
            "8.8.8.8",
            "140.82.112.3",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(may_fetch_from(ip(public), false), "{public}");
        }
        for internal in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
        ] {
            assert!(!may_fetch_from(ip(internal), false), "{internal}");
            assert!(!may_fetch_from(ip(internal), true), "{internal}");
        }
        for loopback in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(!may_fetch_from(ip(loopback), false), "{loopback}");
            assert!(may_fetch_from(ip(loopback), true), "{loopback}");
        }
    }

    #[test]
    fn issuers_are_https_or_allowed_loopback_http() {
        assert!(check_issuer_url("https://token.actions.githubusercontent.com", false).is_ok());
        assert!(check_issuer_url("https://idp.example:8443/realms/x", false).is_ok());
        assert!(check_issuer_url("http://127.0.0.1:3000", false).is_err());
        assert!(check_issuer_url("http://127.0.0.1:3000", true).is_ok());
        assert!(check_issuer_url("http://localhost/x", true).is_ok());
        assert!(check_issuer_url("http://[::1]:80", true).is_ok());
        for refused in [
            "http://idp.example",
            "ftp://idp.example",
            "https://",
            "https://user@idp.example",
            "https://idp.example/?q=1",
            "https://idp.example/#f",
            "idp.example",
            "http://127.0.0.1.evil.example",
        ] {
            assert!(check_issuer_url(refused, true).is_err(), "{refused}");
        }
    }

    #[test]
    fn key_sets_keep_rsa_and_p256_signature_keys_only() {
        let keys = parse_key_set(
            br#"{"keys":[
                {"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},
                {"kty":"EC","crv":"P-256","kid":"e","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
                {"kty":"EC","crv":"P-384","kid":"p384","x":"AA","y":"AA"},
                {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
                {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}
            ]}"#,
        )
        .unwrap();
        let kids: Vec<_> = keys.iter().map(|key| key.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["r", "e"]);
        assert!(keys[0].fits(Algorithm::Rs256) && !keys[0].fits(Algorithm::Es256));
        assert!(keys[1].fits(Algorithm::Es256));
        assert!(parse_key_set(b"[]").is_err());
        assert!(parse_key_set(b"not json").is_err());
    }

    #[test]
    fn only_rs256_and_es256_jwts_are_split() {
        let encode = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let claims = encode(json!({"iss": "https://i"}));
        for alg in ["none", "HS256", "EdDSA", "RS512"] {
            let jwt = format!("{}.{claims}.c2ln", encode(json!({"alg": alg})));
            assert!(
                matches!(split_jwt(&jwt), Err(TokenEndpointError::InvalidGrant(_))),
                "{alg}"
            );
        }
        let jwt = format!(
            "{}.{claims}.c2ln",
            encode(json!({"alg": "RS256", "kid": "k"}))
        );
        let split = split_jwt(&jwt).ok().unwrap();
        assert_eq!(split.algorithm, Algorithm::Rs256);
        assert_eq!(split.kid.as_deref(), Some("k"));
        assert!(split_jwt("a.b").is_err());
    }

    #[test]
    fn a_service_principals_policy_needs_a_subject_and_the_accounts_has_none() {
        let oidc = |subject: Option<&str>| OidcPolicyInput {
            issuer: Some("https://idp.example".into()),
            subject: subject.map(str::to_string),
            ..OidcPolicyInput::default()
        };
        assert!(validated_oidc(oidc(Some("repo:x")), true, false).is_ok());
        assert!(validated_oidc(oidc(None), true, false).is_err());
        assert!(validated_oidc(oidc(None), false, false).is_ok());
        assert!(validated_oidc(oidc(Some("x")), false, false).is_err());
        let no_issuer = OidcPolicyInput::default();
        assert!(validated_oidc(no_issuer, false, false).is_err());
    }
}
