//! OAuth machine-to-machine access for service principals (issue #15): their OAuth secrets
//! (the SDK's `service_principal_secrets`), the client-credentials grant of RFC 6749 section
//! 4.4 at the token endpoints, the JWT access tokens it mints, their verification (called
//! from [`Services::authenticate`], the one place credentials are checked), and the signing
//! keys that rotate on a schedule. See `docs/design/oauth.md`.
//!
//! Access tokens are JWTs signed with Ed25519 (`alg: EdDSA`, RFC 8037) by a key of their
//! account, named by `kid`. Keys live in storage, so any node verifies what any other minted;
//! a node meeting a `kid` it does not hold reads its account's keys again, once. A key signs
//! for [`Services::with_signing_key_rotation`]'s period, then the next mint makes a new one;
//! the old key stays in the JWKS and keeps verifying until every token it signed has expired.
//!
//! A token stops working, on every node at its next request, when the secret it was minted
//! from is deleted or the principal deactivated or deleted: each node keeps the secrets it
//! has checked in the token cache (`crate::tokens::TokenCache`, under
//! [`secret_cache_key`]), which forgets them when the access log says so, exactly as it
//! forgets personal access tokens.

use crate::authority::{is_admin, Actor, Credential, PrincipalUpdate};
use crate::service::Services;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey as Ed25519Key, VerifyingKey};
use scimitar_domain::credentials::{token_digest, RequestKind, Token, TokenScope};
use scimitar_domain::ids::lower_hex;
use scimitar_domain::{
    AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp, WorkspaceId,
};
use scimitar_store::{Change, OAuthSecret, SigningKey, StoredOAuthSecret};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// How long an access token lives: an hour, as Databricks' do.
pub const ACCESS_TOKEN_LIFETIME_SECONDS: i64 = 3_600;

/// How many OAuth secrets one service principal may hold (Databricks' limit).
pub const MAX_SECRETS_PER_PRINCIPAL: usize = 5;

/// A secret's lifetime when none is asked for, and the longest allowed: 730 days, as
/// Databricks documents (`63072000s`).
pub const MAX_SECRET_LIFETIME_SECONDS: i64 = 730 * 86_400;

/// How long a signing key signs before the next mint makes a new one, unless configured
/// otherwise (`oauth_signing_key_rotation`).
pub const DEFAULT_SIGNING_KEY_ROTATION: std::time::Duration =
    std::time::Duration::from_secs(30 * 86_400);

/// Databricks' OAuth secrets begin so; it tells a leaked secret apart in a scanner's eyes.
const SECRET_PREFIX: &str = "dose";

/// The only `alg` a token may name: anything else (`none`, `HS256`, `RS256`) is refused before
/// any key is looked at.
const ALGORITHM: &str = "EdDSA";

const MICROS_PER_SECOND: i64 = 1_000_000;

/// The scopes the token endpoint grants: Scimitar's token scopes (`all-apis`, the default, as
/// the SDK asks for it). `offline_access` asks for a refresh token, which the client-credentials
/// grant never issues (RFC 6749 section 4.4.3): it is accepted and not granted.
const OFFLINE_ACCESS: &str = "offline_access";

/// The key under which a secret that verified tokens sits in the node's token cache, apart from
/// personal access tokens' digests: the log's `TokenChanged { id }` for the secret evicts it.
pub(crate) fn secret_cache_key(account: &AccountId, secret_id: &str) -> String {
    format!("oauth-secret:{account}:{secret_id}")
}

// ----- errors of the token endpoint -----------------------------------------------------------

/// Why the token endpoint refuses, in RFC 6749 section 5.2's terms: the HTTP crate writes each
/// as `{"error", "error_description"}` in one place. What made a client `invalid_client` is
/// logged there, never told: an unknown client, a wrong secret, a deactivated principal and
/// one outside the workspace all look alike.
#[derive(Debug)]
pub enum TokenEndpointError {
    InvalidRequest(String),
    /// The grant (for the token exchange, the subject token) is not valid; the reason is told.
    InvalidGrant(String),
    /// The reason is for the log only.
    InvalidClient(String),
    UnsupportedGrantType(String),
    InvalidScope(String),
    /// Storage could not answer: the usual 503 or 500.
    Server(ScimError),
}

impl From<ScimError> for TokenEndpointError {
    fn from(error: ScimError) -> Self {
        TokenEndpointError::Server(error)
    }
}

/// A token request as the HTTP edge read it: the form's fields and the client's credentials
/// from the `Authorization: Basic` header or the form (never both).
#[derive(Default)]
pub struct TokenRequestForm {
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The token exchange's (RFC 8693 section 2.1): the JWT to exchange, and its type.
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub actor_token: Option<String>,
}

/// Without the secret, so that no log line can ever carry it.
impl std::fmt::Debug for TokenRequestForm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenRequestForm")
            .field("grant_type", &self.grant_type)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("subject_token_type", &self.subject_token_type)
            .field("requested_token_type", &self.requested_token_type)
            .finish_non_exhaustive()
    }
}

/// The token endpoint's answer (RFC 6749 section 5.1).
#[derive(Serialize)]
pub struct AccessTokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    /// Given by the token exchange (RFC 8693 section 2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// Without the token, so that no log line can ever carry it.
impl std::fmt::Debug for AccessTokenResponse {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AccessTokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Where a token endpoint is: the account's, or one of its workspaces'.
#[derive(Debug, Clone)]
pub struct TokenAudience {
    pub account: AccountId,
    pub workspace: Option<WorkspaceId>,
}

impl TokenAudience {
    /// The `aud` claim: the workspace's id, or the account's.
    fn claim(&self) -> String {
        match &self.workspace {
            Some(workspace) => workspace.to_string(),
            None => self.account.to_string(),
        }
    }
}

// ----- the JWT --------------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    kid: String,
}

/// An access token's claims: the registered ones, the client and scope (as Databricks'), and
/// Scimitar's own: the account and workspace it is for, and the secret it was minted from.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    client_id: String,
    scope: String,
    iat: i64,
    exp: i64,
    jti: String,
    account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workspace_id: Option<String>,
    /// The OAuth secret it was minted from (the client-credentials grant)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_id: Option<String>,
    /// ...or the uid of the federation policy it was exchanged through (the token exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    federation_policy: Option<String>,
}

/// What an access token is minted for, by either grant.
pub(crate) struct Minted {
    pub principal: PrincipalId,
    pub client_id: String,
    pub scope: TokenScope,
    /// Seconds, at most [`ACCESS_TOKEN_LIFETIME_SECONDS`].
    pub lifetime: i64,
    pub secret_id: Option<String>,
    pub federation_policy: Option<String>,
}

/// Whether a bearer value is a JWT (three base64url parts) rather than a personal access token,
/// whose secrets are `dapi` and hex.
pub(crate) fn looks_like_jwt(bearer: &str) -> bool {
    bearer.starts_with("eyJ") && bearer.split('.').count() == 3
}

fn encode_json<T: Serialize>(value: &T) -> ScimResult<String> {
    let bytes = serde_json::to_vec(value).map_err(ScimError::internal)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn refused(why: &str) -> ScimError {
    ScimError::Unauthorized(format!("the OAuth access token is not valid: {why}"))
}

// ----- signing keys ---------------------------------------------------------------------------

/// One signing key, ready to sign and verify.
struct LoadedKey {
    kid: String,
    signing: Ed25519Key,
    verifying: VerifyingKey,
    created: Timestamp,
    signs_until: Timestamp,
    remove_after: Timestamp,
}

impl LoadedKey {
    fn load(key: &SigningKey) -> ScimResult<LoadedKey> {
        let seed: [u8; 32] = hex_bytes(&key.private_key)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| ScimError::internal("a stored signing key is not a 32-byte seed"))?;
        let signing = Ed25519Key::from_bytes(&seed);
        Ok(LoadedKey {
            kid: key.kid.clone(),
            verifying: signing.verifying_key(),
            signing,
            created: key.created,
            signs_until: key.signs_until,
            remove_after: key.remove_after,
        })
    }

    /// The key as the JWKS shows it (RFC 8037): the public key only.
    fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.verifying.as_bytes()),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        })
    }
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// This node's copy of each account's signing keys (newest first), read from storage when a
/// key is needed that it does not hold, and how long a key signs.
pub struct SigningKeys {
    by_account: RwLock<HashMap<AccountId, Arc<Vec<LoadedKey>>>>,
    rotation: RwLock<std::time::Duration>,
    verified: VerifiedTokens,
}

/// The most verified tokens a node remembers; past it, it forgets them all and starts again
/// (a client presents one token for an hour of requests, so the set refills with the tokens
/// in use at once).
const MAX_VERIFIED_TOKENS: usize = 16_384;

/// Access tokens this node has verified, by signature, each with the exact text it signed and
/// what was read from it. An Ed25519 verification costs more than the rest of a GET by id, and
/// decoding the claims a good part of what remains, while a client presents the same token for
/// every request of its hour. What cannot change for one signed text (the signature, the
/// algorithm, the claims and whether they are well formed, the audience against the account
/// and workspace the claims name, the scope's spelling) is decided once; expiry, the key, the
/// secret or policy, the principal, and the scope against the request are checked on every
/// request. A remembered token counts only for the same signed text, so it cannot vouch for
/// altered claims.
#[derive(Default)]
struct VerifiedTokens {
    by_signature: Mutex<HashMap<[u8; 64], Arc<VerifiedToken>>>,
}

/// What a verified access token says.
struct VerifiedToken {
    /// The header and claims exactly as signed.
    signed: Box<str>,
    kid: String,
    account: AccountId,
    principal: PrincipalId,
    workspace: Option<WorkspaceId>,
    jti: String,
    scope: TokenScope,
    issued: Timestamp,
    /// `exp`, in seconds since the epoch.
    expires_seconds: i64,
    origin: TokenOrigin,
}

/// What an access token was minted from, which must still exist for it to be valid.
enum TokenOrigin {
    /// An OAuth secret (the client-credentials grant), with its key in the token cache.
    Secret { id: String, cache_key: String },
    /// A federation policy's uid (the token exchange).
    Policy { uid: String },
}

impl VerifiedTokens {
    fn get(&self, signature: &[u8; 64], signed: &str) -> Option<Arc<VerifiedToken>> {
        let verified = self.by_signature.lock().ok()?;
        verified
            .get(signature)
            .filter(|token| *token.signed == *signed)
            .cloned()
    }

    fn remember(&self, signature: [u8; 64], token: Arc<VerifiedToken>) {
        if let Ok(mut verified) = self.by_signature.lock() {
            if verified.len() >= MAX_VERIFIED_TOKENS {
                verified.clear();
            }
            verified.insert(signature, token);
        }
    }
}

impl Default for SigningKeys {
    fn default() -> Self {
        SigningKeys {
            by_account: RwLock::default(),
            rotation: RwLock::new(DEFAULT_SIGNING_KEY_ROTATION),
            verified: VerifiedTokens::default(),
        }
    }
}

impl SigningKeys {
    fn cached(&self, account: &AccountId) -> Option<Arc<Vec<LoadedKey>>> {
        self.by_account.read().ok()?.get(account).cloned()
    }

    fn rotation_micros(&self) -> i64 {
        self.rotation
            .read()
            .map(|rotation| i64::try_from(rotation.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

fn signing_key_at(keys: &[LoadedKey], now: Timestamp) -> Option<&LoadedKey> {
    keys.iter()
        .find(|key| key.created <= now && now < key.signs_until)
}

impl Services {
    /// How long an OAuth signing key signs before a new one takes over.
    pub fn with_signing_key_rotation(self, rotation: std::time::Duration) -> Services {
        if let Ok(mut current) = self.oauth_keys.rotation.write() {
            *current = rotation;
        }
        self
    }

    /// Reads an account's keys from storage into this node's copy.
    async fn reload_keys(&self, account: &AccountId) -> ScimResult<Arc<Vec<LoadedKey>>> {
        let stored = self.store.signing_keys(account).await?;
        let keys: Vec<LoadedKey> = stored
            .iter()
            .map(LoadedKey::load)
            .collect::<ScimResult<_>>()?;
        let keys = Arc::new(keys);
        if let Ok(mut by_account) = self.oauth_keys.by_account.write() {
            by_account.insert(account.clone(), Arc::clone(&keys));
        }
        Ok(keys)
    }

    /// The account's keys that verify at `now`: every one whose tokens may still be alive.
    async fn verifying_keys(
        &self,
        account: &AccountId,
        kid: Option<&str>,
    ) -> ScimResult<Arc<Vec<LoadedKey>>> {
        if let Some(keys) = self.oauth_keys.cached(account) {
            let known = kid.is_none_or(|kid| keys.iter().any(|key| key.kid == kid));
            if known {
                return Ok(keys);
            }
        }
        // Another node made a key since: read them again, once.
        self.reload_keys(account).await
    }

    /// The key that signs now: the newest key still in its signing period, read again from
    /// storage when this node holds none, else made now. Two nodes making one at the same
    /// moment make two, both valid; the newest signs from then on.
    async fn current_signing_key(
        &self,
        account: &AccountId,
        now: Timestamp,
    ) -> ScimResult<(String, Ed25519Key)> {
        let pick = |keys: &[LoadedKey]| {
            signing_key_at(keys, now).map(|key| (key.kid.clone(), key.signing.clone()))
        };
        if let Some(found) = self.oauth_keys.cached(account).and_then(|keys| pick(&keys)) {
            return Ok(found);
        }
        if let Some(found) = pick(&self.reload_keys(account).await?) {
            return Ok(found);
        }
        let signs_until = now
            .as_micros()
            .saturating_add(self.oauth_keys.rotation_micros());
        let key = SigningKey {
            account: account.clone(),
            kid: lower_hex(&self.ids.random_bytes(12)),
            private_key: lower_hex(&self.ids.random_bytes(32)),
            created: now,
            signs_until: Timestamp::from_micros(signs_until),
            remove_after: Timestamp::from_micros(
                signs_until.saturating_add(ACCESS_TOKEN_LIFETIME_SECONDS * MICROS_PER_SECOND),
            ),
        };
        // The node's own bookkeeping, which changes no access answer: applied directly, as
        // token uses are, not through a capability.
        self.store
            .apply(account, Change::AddSigningKey(key))
            .await?;
        pick(&self.reload_keys(account).await?)
            .ok_or_else(|| ScimError::internal("a new signing key was not read back"))
    }

    /// `GET .../oidc/v1/keys`: the account's public keys that may still verify a token.
    pub async fn jwks(&self, account: &AccountId) -> ScimResult<Value> {
        let now = self.clock.now();
        let keys = self.reload_keys(account).await?;
        let keys: Vec<Value> = keys
            .iter()
            .filter(|key| now < key.remove_after)
            .map(LoadedKey::jwk)
            .collect();
        Ok(json!({ "keys": keys }))
    }

    // ----- the token endpoint -----------------------------------------------------------------

    /// `POST .../v1/token` with the client-credentials grant: authenticates the service
    /// principal by its application id and one of its secrets, and mints an access token for
    /// `audience` (the account, or a workspace the principal may use), signed now.
    pub async fn client_credentials(
        &self,
        audience: &TokenAudience,
        issuer: &str,
        form: &TokenRequestForm,
    ) -> Result<AccessTokenResponse, TokenEndpointError> {
        match form.grant_type.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(TokenEndpointError::InvalidRequest(
                    "grant_type is required".into(),
                ))
            }
            Some("client_credentials") => {}
            Some(crate::federation::TOKEN_EXCHANGE_GRANT) => {
                return self.token_exchange(audience, issuer, form).await
            }
            Some(other) => {
                return Err(TokenEndpointError::UnsupportedGrantType(format!(
                    "grant_type {:?} is not supported here; use client_credentials or \
                     urn:ietf:params:oauth:grant-type:token-exchange",
                    other.escape_debug().to_string()
                )))
            }
        }
        let (Some(client_id), Some(client_secret)) = (&form.client_id, &form.client_secret) else {
            return Err(TokenEndpointError::InvalidClient(
                "no client credentials".into(),
            ));
        };
        let account = &audience.account;
        let invalid = |why: &str| TokenEndpointError::InvalidClient(why.to_string());
        let principal = self
            .store
            .principal_by_name(account, PrincipalKind::ServicePrincipal, client_id)
            .await?
            .ok_or_else(|| invalid("no service principal has this application id"))?;
        let now = self.clock.now();
        let digest = token_digest(client_secret);
        let secret = self
            .store
            .oauth_secrets(account, &principal.id)
            .await?
            .into_iter()
            .find(|stored| stored.digest == digest)
            .map(|stored| stored.secret)
            .ok_or_else(|| invalid("the client secret is wrong"))?;
        if !secret.is_valid_at(now) {
            return Err(invalid("the client secret has expired"));
        }
        if !self
            .may_act_in(account, &principal.id, audience.workspace.as_ref())
            .await?
        {
            return Err(invalid(
                "the service principal is deactivated, or not assigned to the workspace",
            ));
        }
        let scope = granted_scope(form.scope.as_deref(), &secret.scopes)?;
        let minted = Minted {
            principal: principal.id,
            client_id: client_id.clone(),
            scope,
            lifetime: ACCESS_TOKEN_LIFETIME_SECONDS,
            secret_id: Some(secret.id),
            federation_policy: None,
        };
        self.mint(audience, issuer, minted, now).await
    }

    /// Signs an access token for `audience` with the account's current key.
    pub(crate) async fn mint(
        &self,
        audience: &TokenAudience,
        issuer: &str,
        minted: Minted,
        now: Timestamp,
    ) -> Result<AccessTokenResponse, TokenEndpointError> {
        let account = &audience.account;
        let (kid, key) = self.current_signing_key(account, now).await?;
        let iat = now.as_micros().div_euclid(MICROS_PER_SECOND);
        let header = Header {
            alg: ALGORITHM.into(),
            typ: Some("JWT".into()),
            kid,
        };
        let exchanged = minted.federation_policy.is_some();
        let claims = Claims {
            iss: issuer.to_string(),
            sub: minted.principal.to_string(),
            aud: audience.claim(),
            client_id: minted.client_id,
            scope: minted.scope.as_str().to_string(),
            iat,
            exp: iat + minted.lifetime,
            jti: self.ids.uuid(),
            account_id: account.to_string(),
            workspace_id: audience.workspace.as_ref().map(ToString::to_string),
            secret_id: minted.secret_id,
            federation_policy: minted.federation_policy,
        };
        let signed = format!("{}.{}", encode_json(&header)?, encode_json(&claims)?);
        let signature = key.sign(signed.as_bytes());
        Ok(AccessTokenResponse {
            access_token: format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes())),
            token_type: "Bearer",
            expires_in: minted.lifetime,
            scope: claims.scope,
            issued_token_type: exchanged.then_some("urn:ietf:params:oauth:token-type:access_token"),
        })
    }

    /// Whether a principal is active, and, for a workspace, an admin of the account or assigned
    /// there (as [`Services::enter_workspace`] asks), reading the log once before refusing.
    pub(crate) async fn may_act_in(
        &self,
        account: &AccountId,
        principal: &PrincipalId,
        workspace: Option<&WorkspaceId>,
    ) -> ScimResult<bool> {
        let ask = |services: &Services| {
            services
                .access
                .read(account, |model| {
                    model.can_act(principal)
                        && workspace.is_none_or(|workspace| {
                            is_admin(model, principal)
                                || model.workspace_permission(workspace, principal).is_some()
                        })
                })
                .unwrap_or(false)
        };
        Ok(ask(self) || (self.access.catch_up(self.store.as_ref()).await.is_ok() && ask(self)))
    }

    // ----- verification -----------------------------------------------------------------------

    /// Checks an OAuth access token into its credential, for a request of `kind`: the signature
    /// by a key of the account the token names (`alg` exactly `EdDSA`), its expiry, the secret
    /// it was minted from still there, its principal still active, and its scope. Every
    /// refusal is [`ScimError::Unauthorized`], which the HTTP edge answers alike.
    pub(crate) async fn verify_access_token(
        &self,
        jwt: &str,
        kind: RequestKind,
    ) -> ScimResult<Credential> {
        let mut parts = jwt.split('.');
        let (Some(header_part), Some(claims_part), Some(signature_part), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused("not a JWT"));
        };
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature_part)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| refused("bad signature"))?;
        let signed = &jwt[..header_part.len() + 1 + claims_part.len()];
        let token = match self.oauth_keys.verified.get(&signature, signed) {
            Some(token) => {
                // The key must still be one of the account's: a key taken out of service
                // ends the tokens it signed, remembered or not.
                let keys = self
                    .verifying_keys(&token.account, Some(&token.kid))
                    .await?;
                if !keys.iter().any(|key| key.kid == token.kid) {
                    return Err(refused("unknown key"));
                }
                token
            }
            None => {
                let token = Arc::new(
                    self.verify_signed_token(header_part, claims_part, signed, &signature)
                        .await?,
                );
                self.oauth_keys
                    .verified
                    .remember(signature, Arc::clone(&token));
                token
            }
        };
        let now = self.clock.now();
        if now.as_micros().div_euclid(MICROS_PER_SECOND) >= token.expires_seconds {
            return Err(refused("expired"));
        }
        match &token.origin {
            TokenOrigin::Secret { id, cache_key } => {
                let expires = self
                    .live_secret(&token.account, &token.principal, id, cache_key)
                    .await?;
                if expires.is_some_and(|expires| now >= expires) {
                    return Err(refused("the secret it was minted from has expired"));
                }
            }
            TokenOrigin::Policy { uid } => {
                self.live_policy(&token.account, &token.principal, uid)
                    .await?;
            }
        }
        if !self
            .may_act_in(&token.account, &token.principal, None)
            .await?
        {
            return Err(refused("the principal is deactivated or deleted"));
        }
        token.scope.permits(kind)?;
        Ok(Credential::oauth(Token {
            id: token.jti.clone(),
            account: token.account.clone(),
            principal: token.principal.clone(),
            scope: token.scope,
            comment: None,
            created: token.issued,
            expires: Some(Timestamp::from_micros(
                token.expires_seconds.saturating_mul(MICROS_PER_SECOND),
            )),
            workspace: token.workspace.clone(),
            created_by: None,
        }))
    }

    /// The first sight of an access token: its header and claims decoded, its signature
    /// verified by the key it names (`alg` exactly `EdDSA`), and what the claims say checked
    /// against each other. Only after the signature is anything in the claims believed.
    async fn verify_signed_token(
        &self,
        header_part: &str,
        claims_part: &str,
        signed: &str,
        signature: &[u8; 64],
    ) -> ScimResult<VerifiedToken> {
        let header: Header = decode_json(header_part).ok_or_else(|| refused("bad header"))?;
        if header.alg != ALGORITHM {
            return Err(refused("the algorithm is not EdDSA"));
        }
        let claims: Claims = decode_json(claims_part).ok_or_else(|| refused("bad claims"))?;
        let account = AccountId::new(&claims.account_id);
        let keys = self.verifying_keys(&account, Some(&header.kid)).await?;
        let key = keys
            .iter()
            .find(|key| key.kid == header.kid)
            .ok_or_else(|| refused("unknown key"))?;
        key.verifying
            .verify_strict(
                signed.as_bytes(),
                &ed25519_dalek::Signature::from_bytes(signature),
            )
            .map_err(|_| refused("the signature does not verify"))?;
        let audience = TokenAudience {
            account: account.clone(),
            workspace: claims.workspace_id.as_deref().map(WorkspaceId::new),
        };
        if claims.aud != audience.claim() {
            return Err(refused("the audience does not match"));
        }
        let origin = match (claims.secret_id, claims.federation_policy) {
            (Some(id), None) => TokenOrigin::Secret {
                cache_key: secret_cache_key(&account, &id),
                id,
            },
            (None, Some(uid)) => TokenOrigin::Policy { uid },
            _ => return Err(refused("it names neither a secret nor a federation policy")),
        };
        let scope = TokenScope::parse(&claims.scope).map_err(|_| refused("unknown scope"))?;
        Ok(VerifiedToken {
            signed: signed.into(),
            kid: header.kid,
            account,
            principal: PrincipalId::new(&claims.sub),
            workspace: audience.workspace,
            jti: claims.jti,
            scope,
            issued: Timestamp::from_micros(claims.iat.saturating_mul(MICROS_PER_SECOND)),
            expires_seconds: claims.exp,
            origin,
        })
    }

    /// The expiry of the secret a token was minted from (`cache_key` is its key in the node's
    /// token cache, [`secret_cache_key`]), from that cache or else storage (then cached,
    /// unless the log moved on during the read): refused once deleted.
    async fn live_secret(
        &self,
        account: &AccountId,
        principal: &PrincipalId,
        secret_id: &str,
        cache_key: &str,
    ) -> ScimResult<Option<Timestamp>> {
        if let Some(cached) = self.access.cached_token(cache_key) {
            if cached.token.principal == *principal {
                return Ok(cached.token.expires);
            }
            return Err(refused("the secret belongs to another principal"));
        }
        let read_at = self.access.applied();
        let secret = self
            .store
            .oauth_secrets(account, principal)
            .await?
            .into_iter()
            .map(|stored| stored.secret)
            .find(|secret| secret.id == secret_id)
            .ok_or_else(|| refused("the secret it was minted from was deleted"))?;
        // Cached as a token of the principal with the secret's id, so that the log's
        // `TokenChanged { id }` and the principal's deactivation evict it as they evict tokens.
        let entry = Token {
            id: secret.id.clone(),
            account: account.clone(),
            principal: principal.clone(),
            scope: TokenScope::AllApis,
            comment: None,
            created: secret.created,
            expires: secret.expires,
            workspace: None,
            created_by: None,
        };
        self.access
            .remember_token(cache_key.to_string(), entry, read_at);
        Ok(secret.expires)
    }

    // ----- the secrets API --------------------------------------------------------------------

    /// Who may manage a service principal's OAuth secrets: admins of where the actor acts (the
    /// account, or a workspace whose directory holds the principal) and the principal's
    /// managers (`roles/servicePrincipal.manager`, [`crate::authority::manages`]); only an
    /// account admin for a principal that is itself one, so no secret lifts anyone to admin.
    /// A principal the actor cannot see is not found.
    async fn authorize_secrets(
        &self,
        actor: &Actor,
        principal: &PrincipalId,
    ) -> ScimResult<PrincipalUpdate> {
        let account = actor.account();
        let missing = || ScimError::NotFound(format!("service principal {principal} not found"));
        match self.store.principal(account, principal).await? {
            Some(found) if found.kind == PrincipalKind::ServicePrincipal => {}
            _ => return Err(missing()),
        }
        // Outside the actor's workspace, a principal is answered as one that does not exist,
        // before anything else is asked: whoever asks, nothing about it can be probed.
        let visible = |services: &Services| {
            services.access.read(account, |model| {
                actor.workspace().is_none_or(|workspace| {
                    is_admin(model, principal)
                        || model.workspace_permission(workspace, principal).is_some()
                        || model.in_workspace(workspace, principal)
                })
            })
        };
        if !visible(self)? {
            return Err(missing());
        }
        let authority = self
            .authorize_update(actor, PrincipalKind::ServicePrincipal, principal)
            .await?;
        let (target_is_admin, caller_is_admin) = self.access.read(account, |model| {
            (
                is_admin(model, principal),
                is_admin(model, actor.principal()),
            )
        })?;
        if target_is_admin && !caller_is_admin {
            return Err(crate::authority::not_an_admin(
                actor,
                "manage the OAuth secrets of a service principal that is an admin of the account",
            ));
        }
        Ok(authority)
    }

    /// `POST .../servicePrincipals/{id}/credentials/secrets`: a new secret, shown once.
    pub async fn create_oauth_secret(
        &self,
        actor: &Actor,
        principal: &PrincipalId,
        request: &SecretRequest,
    ) -> ScimResult<Value> {
        let lifetime = request
            .lifetime_seconds
            .unwrap_or(MAX_SECRET_LIFETIME_SECONDS);
        if !(1..=MAX_SECRET_LIFETIME_SECONDS).contains(&lifetime) {
            return Err(ScimError::invalid_value(format!(
                "lifetime must be from 1s to {MAX_SECRET_LIFETIME_SECONDS}s (730 days), not {lifetime}s"
            )));
        }
        let scopes = request
            .scopes
            .iter()
            .map(|scope| TokenScope::parse(scope).map(|scope| scope.as_str().to_string()))
            .collect::<ScimResult<Vec<_>>>()?;
        self.authorize_secrets(actor, principal).await?;
        let now = self.clock.now().truncated_to_millis();
        let secret = OAuthSecret {
            id: self.ids.uuid(),
            account: actor.account().clone(),
            principal: principal.clone(),
            scopes,
            created: now,
            expires: Some(Timestamp::from_micros(
                now.as_micros() + lifetime * MICROS_PER_SECOND,
            )),
        };
        let value = format!("{SECRET_PREFIX}{}", lower_hex(&self.ids.random_bytes(32)));
        let digest = token_digest(&value);
        let change = Change::CreateOAuthSecret {
            secret: secret.clone(),
            digest: digest.clone(),
            limit: MAX_SECRETS_PER_PRINCIPAL,
        };
        self.commit(actor.account(), change).await?;
        let mut info = secret_info(&StoredOAuthSecret { secret, digest });
        if let Value::Object(fields) = &mut info {
            fields.insert("secret".into(), json!(value));
        }
        Ok(info)
    }

    /// `GET .../credentials/secrets`: the principal's secrets, without their values.
    pub async fn list_oauth_secrets(
        &self,
        actor: &Actor,
        principal: &PrincipalId,
    ) -> ScimResult<Value> {
        self.authorize_secrets(actor, principal).await?;
        let secrets: Vec<Value> = self
            .store
            .oauth_secrets(actor.account(), principal)
            .await?
            .iter()
            .map(secret_info)
            .collect();
        Ok(json!({ "secrets": secrets }))
    }

    /// `DELETE .../credentials/secrets/{secret_id}`: the secret stops working, and so do the
    /// access tokens minted from it, on every node before its next request.
    pub async fn delete_oauth_secret(
        &self,
        actor: &Actor,
        principal: &PrincipalId,
        secret_id: &str,
    ) -> ScimResult<()> {
        self.authorize_secrets(actor, principal).await?;
        let change = Change::DeleteOAuthSecret {
            principal: principal.clone(),
            id: secret_id.to_string(),
        };
        self.commit(actor.account(), change).await
    }
}

/// What is asked of a new secret, as the HTTP edge parsed it.
#[derive(Debug, Default)]
pub struct SecretRequest {
    /// Seconds; `None`: [`MAX_SECRET_LIFETIME_SECONDS`].
    pub lifetime_seconds: Option<i64>,
    /// Scopes tokens minted from it may have; empty: any.
    pub scopes: Vec<String>,
}

/// `SecretInfo` as the SDK reads it. `secret_hash` is the start of the stored digest: enough to
/// tell secrets apart, and of no use for finding one.
fn secret_info(stored: &StoredOAuthSecret) -> Value {
    let secret = &stored.secret;
    let mut info = json!({
        "id": secret.id,
        "secret_hash": stored.digest.get(..16).unwrap_or_default(),
        "status": "ACTIVE",
        "create_time": secret.created.to_rfc3339(),
        "update_time": secret.created.to_rfc3339(),
    });
    if let Value::Object(fields) = &mut info {
        if let Some(expires) = secret.expires {
            fields.insert("expire_time".into(), json!(expires.to_rfc3339()));
        }
        if !secret.scopes.is_empty() {
            fields.insert("scopes".into(), json!(secret.scopes));
        }
    }
    info
}

/// The scope a token is granted: the one asked for (space-separated, RFC 6749 section 3.3;
/// `all-apis` when none is), among those `allowed` (a secret's scopes; empty: any).
pub(crate) fn granted_scope(
    asked: Option<&str>,
    allowed: &[String],
) -> Result<TokenScope, TokenEndpointError> {
    let names: Vec<&str> = asked
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter(|name| *name != OFFLINE_ACCESS)
        .collect();
    let scope = match names.as_slice() {
        [] => TokenScope::AllApis,
        [one] => TokenScope::parse(one).map_err(|_| {
            TokenEndpointError::InvalidScope(format!(
                "unknown scope {:?}; the scopes are all-apis, read-only and scim",
                one.escape_debug().to_string()
            ))
        })?,
        _ => {
            return Err(TokenEndpointError::InvalidScope(
                "ask for one scope: all-apis, read-only or scim".into(),
            ))
        }
    };
    if !allowed.is_empty() && !allowed.iter().any(|name| name == scope.as_str()) {
        return Err(TokenEndpointError::InvalidScope(format!(
            "this client may ask only for {}",
            allowed.join(" ")
        )));
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn secret(scopes: &[&str]) -> OAuthSecret {
        OAuthSecret {
            id: "s".into(),
            account: AccountId::new("a"),
            principal: PrincipalId::new("p"),
            scopes: scopes.iter().map(ToString::to_string).collect(),
            created: Timestamp::from_micros(0),
            expires: None,
        }
    }

    #[test]
    fn the_granted_scope_is_the_one_asked_within_the_secrets_scopes() {
        let any = secret(&[]);
        assert_eq!(
            granted_scope(None, &any.scopes).unwrap(),
            TokenScope::AllApis
        );
        assert_eq!(
            granted_scope(Some("all-apis offline_access"), &any.scopes).unwrap(),
            TokenScope::AllApis
        );
        assert_eq!(
            granted_scope(Some("read-only"), &any.scopes).unwrap(),
            TokenScope::ReadOnly
        );
        for refused in ["sql", "all-apis scim", "admin-ish"] {
            assert!(matches!(
                granted_scope(Some(refused), &any.scopes),
                Err(TokenEndpointError::InvalidScope(_))
            ));
        }
        let scim_only = secret(&["scim"]);
        assert!(granted_scope(Some("all-apis"), &scim_only.scopes).is_err());
        assert_eq!(
            granted_scope(Some("scim"), &scim_only.scopes).unwrap(),
            TokenScope::Scim
        );
    }

    #[test]
    fn the_debug_forms_of_a_token_request_and_answer_hold_no_secret() {
        let form = TokenRequestForm {
            client_secret: Some("dose-secret".into()),
            subject_token: Some("eyJ-subject".into()),
            actor_token: Some("eyJ-actor".into()),
            ..TokenRequestForm::default()
        };
        let debug = format!("{form:?}");
        assert!(
            !debug.contains("dose-secret") && !debug.contains("eyJ-"),
            "{debug}"
        );
        let answer = AccessTokenResponse {
            access_token: "eyJ-token".into(),
            token_type: "Bearer",
            expires_in: 3600,
            scope: "all-apis".into(),
            issued_token_type: None,
        };
        assert!(!format!("{answer:?}").contains("eyJ-token"));
    }

    #[test]
    fn only_three_part_tokens_starting_as_json_look_like_jwts() {
        assert!(looks_like_jwt("eyJa.eyJb.c"));
        assert!(!looks_like_jwt("dapi0123"));
        assert!(!looks_like_jwt("eyJa.eyJb"));
    }

    #[test]
    fn hex_seeds_decode_and_odd_or_bad_ones_do_not() {
        assert_eq!(hex_bytes("00ff").unwrap(), vec![0, 255]);
        assert!(hex_bytes("0").is_none());
        assert!(hex_bytes("zz").is_none());
    }
}
