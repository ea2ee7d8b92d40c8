//! Tokens: checking a bearer secret into a [`Credential`], the token API a principal uses for
//! its own personal access tokens, the token management API of a workspace's admins
//! (on-behalf-of tokens for service principals included), rotation with an overlap, the
//! workspace-conf settings that govern tokens, and when tokens were last used.
//!
//! What keeps revocation immediate: each node remembers the tokens it has seen by digest
//! ([`TokenCache`], held by the access engine), and forgets one in the same step that applies
//! the access-log entry saying it changed: [`AccessEvent::TokenChanged`] for a deletion or a
//! shortened expiry, and a principal's deactivation or deletion for all of its tokens. The
//! node that made the change applies the entry before it answers; other nodes within the
//! follower interval, or at once for a request carrying the change token
//! (`Scimitar-Read-After`), whose credential is checked again after the wait.
//!
//! Deactivating a principal revokes its tokens in storage, in the same transaction
//! (`sql/write.rs`), so reactivating it brings none of them back.
//!
//! [`AccessEvent::TokenChanged`]: scimitar_store::AccessEvent::TokenChanged

use crate::authority::{is_admin_of, not_an_admin, AccountAdmin, Actor, Credential};
use crate::service::Services;
use scimitar_access::{ObjectType, TOKENS_OBJECT_ID};
use scimitar_domain::credentials::{token_digest, RequestKind, Token, TokenScope, TokenSecret};
use scimitar_domain::{
    AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp, WorkspaceId,
};
use scimitar_store::{Change, NewToken, TokenQuery, TokenRecord};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// How long a rotated token keeps working beside its replacement unless configured otherwise
/// (`token_rotation_overlap`): a day, as Databricks keeps an account's rotated SCIM token.
pub const DEFAULT_ROTATION_OVERLAP: std::time::Duration = std::time::Duration::from_secs(86_400);

/// How often a node records when each token was last used: at most once per token per this
/// interval, never a write per request.
pub const TOKEN_USE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest lifetime a token made through the token API may have, and the one it gets when
/// none is asked for, unless the workspace sets a shorter `maxTokenLifetimeDays`: Databricks'
/// 730 days.
pub const MAX_TOKEN_LIFETIME_DAYS: i64 = 730;

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// The workspace-conf keys Scimitar knows. Databricks refuses keys it does not know, and so
/// does Scimitar, naming them.
pub const WORKSPACE_CONF_KEYS: [&str; 2] = [ENABLE_TOKENS, MAX_TOKEN_LIFETIME_DAYS_KEY];
const ENABLE_TOKENS: &str = "enableTokensConfig";
const MAX_TOKEN_LIFETIME_DAYS_KEY: &str = "maxTokenLifetimeDays";

/// What is asked of a new token, as the HTTP edge or the CLI parsed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// Seconds; `None` asks for the default (see [`MAX_TOKEN_LIFETIME_DAYS`]), or, for the
    /// CLI's account-level tokens, no expiry.
    pub lifetime_seconds: Option<i64>,
    pub comment: Option<String>,
    /// At most one scope; none is full access.
    pub scopes: Vec<String>,
}

impl TokenRequest {
    fn scope(&self) -> ScimResult<TokenScope> {
        match self.scopes.as_slice() {
            [] => Ok(TokenScope::AllApis),
            [one] => TokenScope::parse(one),
            _ => Err(ScimError::invalid_value(
                "`scopes` takes one scope: all-apis, read-only or scim",
            )),
        }
    }
}

/// A token just made: its secret, shown once, and what the APIs show of it.
pub struct IssuedToken {
    pub secret: TokenSecret,
    pub token: Token,
}

impl IssuedToken {
    /// `{token_value, token_info}`, the token API's answer to a creation.
    pub fn to_json(&self) -> Value {
        json!({
            "token_value": self.secret.expose(),
            "token_info": public_info(&self.token),
        })
    }
}

// ----- the node's cache of tokens and their use ---------------------------------------------

/// A token a node has looked up, with when this node last noted its use.
pub struct CachedToken {
    pub(crate) token: Token,
    /// Microseconds; `i64::MIN` until the first use is noted.
    noted_use: AtomicI64,
}

impl CachedToken {
    fn new(token: Token) -> CachedToken {
        CachedToken {
            token,
            noted_use: AtomicI64::new(i64::MIN),
        }
    }
}

/// The tokens a node has seen, by secret digest, so that a request costs no database read to
/// authenticate, with the indexes that let a log entry evict one token or all of a
/// principal's. Bounded: when full it starts over, which costs one read per token in use.
#[derive(Default)]
pub(crate) struct TokenCache {
    by_digest: HashMap<String, Arc<CachedToken>>,
    digest_of: HashMap<String, String>,
    of_principal: HashMap<(AccountId, PrincipalId), Vec<String>>,
}

const TOKEN_CACHE_CAPACITY: usize = 100_000;

impl TokenCache {
    pub(crate) fn get(&self, digest: &str) -> Option<Arc<CachedToken>> {
        self.by_digest.get(digest).cloned()
    }

    pub(crate) fn insert(&mut self, digest: String, token: Token) -> Arc<CachedToken> {
        if self.by_digest.len() >= TOKEN_CACHE_CAPACITY {
            self.clear();
        }
        let key = (token.account.clone(), token.principal.clone());
        self.digest_of.insert(token.id.clone(), digest.clone());
        self.of_principal
            .entry(key)
            .or_default()
            .push(digest.clone());
        let cached = Arc::new(CachedToken::new(token));
        self.by_digest.insert(digest, Arc::clone(&cached));
        cached
    }

    /// Drops the token with this id (deleted, or its expiry shortened).
    pub(crate) fn forget_token(&mut self, id: &str) {
        if let Some(digest) = self.digest_of.remove(id) {
            self.by_digest.remove(&digest);
        }
    }

    /// Drops every token of a principal (deactivated or deleted).
    pub(crate) fn forget_principal(&mut self, account: &AccountId, principal: &PrincipalId) {
        let key = (account.clone(), principal.clone());
        for digest in self.of_principal.remove(&key).unwrap_or_default() {
            if let Some(cached) = self.by_digest.remove(&digest) {
                self.digest_of.remove(&cached.token.id);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_digest.clear();
        self.digest_of.clear();
        self.of_principal.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_digest.len()
    }
}

/// Uses of tokens noted since they were last recorded: `(account, token id) -> when`.
#[derive(Default)]
pub(crate) struct TokenUses {
    pending: Mutex<HashMap<AccountId, HashMap<String, Timestamp>>>,
}

impl TokenUses {
    /// Notes a use, unless this node noted one of the same token within [`TOKEN_USE_INTERVAL`]:
    /// one atomic read per request, a lock at most once a minute per token.
    fn note(&self, cached: &CachedToken, now: Timestamp) {
        let interval = i64::try_from(TOKEN_USE_INTERVAL.as_micros()).unwrap_or(i64::MAX);
        let last = cached.noted_use.load(Ordering::Relaxed);
        if last != i64::MIN && now.as_micros().saturating_sub(last) < interval {
            return;
        }
        let swapped = cached.noted_use.compare_exchange(
            last,
            now.as_micros(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if swapped.is_err() {
            return; // another request noted it at the same moment
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending
                .entry(cached.token.account.clone())
                .or_default()
                .insert(cached.token.id.clone(), now);
        }
    }

    fn take(&self) -> HashMap<AccountId, HashMap<String, Timestamp>> {
        self.pending
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default()
    }
}

// ----- what a workspace allows ---------------------------------------------------------------

/// A workspace's token settings (`workspace-conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    /// `enableTokensConfig`: whether the token API makes tokens at all.
    pub enabled: bool,
    /// `maxTokenLifetimeDays`, when set.
    pub max_lifetime_days: Option<i64>,
}

impl TokenPolicy {
    fn from_settings(settings: &[(String, String)]) -> TokenPolicy {
        let value = |name: &str| {
            settings
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        TokenPolicy {
            enabled: value(ENABLE_TOKENS) != Some("false"),
            max_lifetime_days: value(MAX_TOKEN_LIFETIME_DAYS_KEY)
                .and_then(|days| days.parse().ok()),
        }
    }

    fn max_lifetime_seconds(self) -> i64 {
        self.max_lifetime_days.unwrap_or(MAX_TOKEN_LIFETIME_DAYS) * SECONDS_PER_DAY
    }

    /// When a token made now with `lifetime_seconds` (`None`: the longest allowed) expires.
    fn expiry(self, now: Timestamp, lifetime_seconds: Option<i64>) -> ScimResult<Timestamp> {
        let max = self.max_lifetime_seconds();
        let seconds = match lifetime_seconds {
            None => max,
            Some(seconds) if seconds <= 0 => {
                return Err(ScimError::invalid_value(format!(
                    "lifetime_seconds must be a positive number of seconds, not {seconds}"
                )))
            }
            Some(seconds) if seconds > max => {
                return Err(ScimError::invalid_value(format!(
                    "lifetime_seconds {seconds} is longer than this workspace allows: at most \
                     {max} seconds ({} days, maxTokenLifetimeDays)",
                    max / SECONDS_PER_DAY
                )))
            }
            Some(seconds) => seconds,
        };
        Ok(Timestamp::from_micros(
            now.as_micros() + seconds * MICROS_PER_SECOND,
        ))
    }
}

/// A lifetime given to the CLI for an account-level token: positive, and small enough to
/// compute an expiry from.
fn checked_expiry(now: Timestamp, lifetime_seconds: i64) -> ScimResult<Timestamp> {
    let micros = lifetime_seconds
        .checked_mul(MICROS_PER_SECOND)
        .and_then(|micros| now.as_micros().checked_add(micros))
        .filter(|_| lifetime_seconds > 0);
    micros.map(Timestamp::from_micros).ok_or_else(|| {
        ScimError::invalid_value(format!(
            "a token's lifetime must be a positive number of seconds, not {lifetime_seconds}"
        ))
    })
}

// ----- rendering ------------------------------------------------------------------------------

/// An id as Databricks writes ids: a number when it is one (the SDK reads `created_by_id`,
/// `owner_id` and `workspace_id` as integers), else the text.
fn id_value(id: &str) -> Value {
    id.parse::<u64>()
        .map_or_else(|_| json!(id), |number| json!(number))
}

fn millis(timestamp: Timestamp) -> i64 {
    timestamp.as_micros().div_euclid(1_000)
}

/// `PublicTokenInfo`: what the token API shows of a principal's own token.
pub fn public_info(token: &Token) -> Value {
    let mut info = Map::new();
    info.insert("token_id".into(), json!(token.id));
    info.insert("creation_time".into(), json!(millis(token.created)));
    info.insert(
        "expiry_time".into(),
        json!(token.expires.map_or(-1, millis)),
    );
    info.insert(
        "comment".into(),
        json!(token.comment.as_deref().unwrap_or("")),
    );
    info.insert("scopes".into(), json!([token.scope.as_str()]));
    Value::Object(info)
}

/// `TokenInfo`: what the token management API shows, with who made the token, whose it is,
/// its workspace and the day it was last used (epoch milliseconds of that UTC day).
fn management_info(
    record: &TokenRecord,
    name_of: impl Fn(&PrincipalId) -> Option<String>,
) -> Value {
    let token = &record.token;
    let mut info = match public_info(token) {
        Value::Object(info) => info,
        _ => Map::new(),
    };
    let creator = token.created_by.as_ref().unwrap_or(&token.principal);
    info.insert("created_by_id".into(), id_value(creator.as_str()));
    if let Some(name) = name_of(creator) {
        info.insert("created_by_username".into(), json!(name));
    }
    info.insert("owner_id".into(), id_value(token.principal.as_str()));
    if let Some(workspace) = &token.workspace {
        info.insert("workspace_id".into(), id_value(workspace.as_str()));
    }
    if let Some(used) = record.last_used {
        let day = SECONDS_PER_DAY * 1_000;
        info.insert(
            "last_used_day".into(),
            json!(millis(used).div_euclid(day) * day),
        );
    }
    Value::Object(info)
}

// ----- the services ---------------------------------------------------------------------------

/// The workspace an actor made its request through: tokens are made and managed per workspace.
fn workspace_of(actor: &Actor) -> ScimResult<&WorkspaceId> {
    actor.workspace().ok_or_else(|| {
        ScimError::Forbidden(
            "personal access tokens are made and managed through a workspace's token API".into(),
        )
    })
}

impl Services {
    /// Checks a bearer secret (a personal access token, or an OAuth access token) and returns
    /// its credential, for a request of `kind`. The token
    /// must exist, be unexpired, belong to a principal that exists and is active now, and its
    /// scope must allow the request (403 otherwise): the one place scopes are enforced.
    pub async fn authenticate(&self, secret: &str, kind: RequestKind) -> ScimResult<Credential> {
        // A service principal's OAuth access token (`crate::oauth`) carries what it is for.
        if crate::oauth::looks_like_jwt(secret) {
            return self.verify_access_token(secret, kind).await;
        }
        let digest = token_digest(secret);
        let cached = match self.access.cached_token(&digest) {
            Some(cached) => cached,
            None => {
                // Taken before the read: if the log moves on meanwhile (a revocation applied),
                // what was read is not cached.
                let read_at = self.access.applied();
                let token = self.store.token_by_digest(&digest).await?.ok_or_else(|| {
                    ScimError::Unauthorized("the bearer token is not valid".into())
                })?;
                self.access.remember_token(digest, token, read_at)
            }
        };
        let token = &cached.token;
        let now = self.clock.now();
        if !token.is_valid_at(now) {
            return Err(ScimError::Unauthorized(
                "the bearer token has expired".into(),
            ));
        }
        let can_act = |services: &Services| {
            services
                .access
                .read(&token.account, |model| model.can_act(&token.principal))
                .unwrap_or(false)
        };
        let mut allowed = can_act(self);
        if !allowed {
            // A principal made on another node (or by the CLI) may be newer than this node's
            // engine: read the log once before refusing.
            allowed = self.access.catch_up(self.store.as_ref()).await.is_ok() && can_act(self);
        }
        if !allowed {
            return Err(ScimError::Unauthorized(
                "the principal this token belongs to is deactivated or deleted".into(),
            ));
        }
        token.scope.permits(kind)?;
        self.token_uses.note(&cached, now);
        Ok(Credential::new(token.clone()))
    }

    /// Writes the token uses this node noted since the last call, one change per account.
    /// Bookkeeping for the token management API's `last_used_day`, not an access fact, so it
    /// is applied directly rather than through the commit that brings the engine up to date.
    /// A failure is logged and the uses dropped: the next use is noted again.
    pub async fn record_token_uses(&self) {
        for (account, uses) in self.token_uses.take() {
            let uses: Vec<(String, Timestamp)> = uses.into_iter().collect();
            if let Err(error) = self.store.apply(&account, Change::TokensUsed(uses)).await {
                tracing::warn!(%error, "could not record when tokens were last used");
            }
        }
    }

    /// Records token uses every [`TOKEN_USE_INTERVAL`] until the process ends.
    pub async fn record_token_uses_every(&self, interval: std::time::Duration) {
        loop {
            tokio::time::sleep(interval).await;
            self.record_token_uses().await;
        }
    }

    /// How long a rotated token keeps working beside its replacement.
    pub fn with_rotation_overlap(mut self, overlap: std::time::Duration) -> Services {
        self.rotation_overlap = overlap;
        self
    }

    /// Creates a token for a principal of the admin's account and returns its secret, which
    /// is never stored: an account-level token that never expires (the CLI's).
    pub async fn create_token(
        &self,
        admin: &AccountAdmin,
        principal: &PrincipalId,
        scope: TokenScope,
        comment: Option<String>,
    ) -> ScimResult<TokenSecret> {
        let request = TokenRequest {
            lifetime_seconds: None,
            comment,
            scopes: vec![scope.as_str().to_string()],
        };
        Ok(self
            .create_account_token(admin, principal, &request)
            .await?
            .secret)
    }

    /// Creates an account-level token (valid in every workspace its principal may use, and on
    /// the account API) for a user or service principal of the admin's account, for an
    /// operator (`scimitar token create`). Without a lifetime it never expires.
    pub async fn create_account_token(
        &self,
        admin: &AccountAdmin,
        principal: &PrincipalId,
        request: &TokenRequest,
    ) -> ScimResult<IssuedToken> {
        let account = admin.account();
        match self.store.principal(account, principal).await? {
            Some(found) if found.kind != PrincipalKind::Group => {}
            Some(_) => {
                return Err(ScimError::invalid_value(
                    "a token belongs to a user or a service principal, not a group",
                ))
            }
            None => {
                return Err(ScimError::NotFound(format!(
                    "principal {principal} not found"
                )))
            }
        }
        let now = self.clock.now().truncated_to_millis();
        let expires = match request.lifetime_seconds {
            Some(seconds) => Some(checked_expiry(now, seconds)?),
            None => None,
        };
        let creator = admin.actor().principal();
        let token = Token {
            id: self.ids.uuid(),
            account: account.clone(),
            principal: principal.clone(),
            scope: request.scope()?,
            comment: request.comment.clone(),
            created: now,
            expires,
            workspace: None,
            created_by: (creator != principal).then(|| creator.clone()),
        };
        self.issue(token).await
    }

    async fn issue(&self, token: Token) -> ScimResult<IssuedToken> {
        let secret = TokenSecret::generate(self.ids.as_ref());
        let digest = secret.digest();
        let account = token.account.clone();
        self.commit(
            &account,
            Change::CreateToken {
                token: token.clone(),
                digest,
            },
        )
        .await?;
        Ok(IssuedToken { secret, token })
    }

    /// The token settings of a workspace.
    pub async fn token_policy(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
    ) -> ScimResult<TokenPolicy> {
        let settings = self.store.workspace_settings(account, workspace).await?;
        Ok(TokenPolicy::from_settings(&settings))
    }

    /// Whether `actor` may make tokens in `workspace`: an admin of it, or a holder of a level
    /// (`CAN_USE`, `CAN_MANAGE`) on its `authorization/tokens` object, itself or through a
    /// group, asked of the engine after it has read the log up to now.
    async fn ensure_may_use_tokens(
        &self,
        actor: &Actor,
        workspace: &WorkspaceId,
    ) -> ScimResult<()> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        // Each workspace has its own tokens object (`workspace_permissions::object_id_in`).
        let tokens_object = crate::workspace_permissions::object_id_in(
            workspace,
            ObjectType::Tokens,
            TOKENS_OBJECT_ID,
        );
        let allowed = self.access.read(actor.account(), |model| {
            is_admin_of(model, actor.principal(), Some(workspace))
                || model
                    .object_permission(actor.principal(), ObjectType::Tokens, &tokens_object)
                    .is_ok_and(|level| level.is_some())
        })?;
        if allowed {
            return Ok(());
        }
        Err(ScimError::Forbidden(format!(
            "principal {} may not create tokens in this workspace: it needs CAN_USE on \
             /authorization/tokens, or workspace admin",
            actor.principal()
        )))
    }

    /// `POST /api/2.0/token/create`: a personal access token for the caller, valid in the
    /// workspace it is made in alone.
    pub async fn create_personal_token(
        &self,
        actor: &Actor,
        request: &TokenRequest,
    ) -> ScimResult<IssuedToken> {
        let workspace = workspace_of(actor)?;
        let scope = request.scope()?;
        let policy = self.token_policy(actor.account(), workspace).await?;
        let now = self.clock.now().truncated_to_millis();
        let expires = policy.expiry(now, request.lifetime_seconds)?;
        if !policy.enabled {
            return Err(tokens_disabled());
        }
        self.ensure_may_use_tokens(actor, workspace).await?;
        let token = Token {
            id: self.ids.uuid(),
            account: actor.account().clone(),
            principal: actor.principal().clone(),
            scope,
            comment: request.comment.clone(),
            created: now,
            expires: Some(expires),
            workspace: Some(workspace.clone()),
            created_by: None,
        };
        self.issue(token).await
    }

    /// `GET /api/2.0/token/list`: the caller's own live tokens in this workspace.
    pub async fn list_personal_tokens(&self, actor: &Actor) -> ScimResult<Value> {
        let workspace = workspace_of(actor)?;
        let query = TokenQuery {
            workspace: Some(workspace.clone()),
            owner: Some(actor.principal().clone()),
            ..TokenQuery::default()
        };
        let now = self.clock.now();
        let infos: Vec<Value> = self
            .store
            .tokens_where(actor.account(), &query)
            .await?
            .iter()
            .filter(|record| record.token.is_valid_at(now))
            .map(|record| public_info(&record.token))
            .collect();
        Ok(json!({ "token_infos": infos }))
    }

    /// One of the caller's own tokens in this workspace, or the token API's not-found.
    async fn own_token(&self, actor: &Actor, id: &str) -> ScimResult<TokenRecord> {
        let workspace = workspace_of(actor)?;
        let query = TokenQuery {
            id: Some(id.to_string()),
            workspace: Some(workspace.clone()),
            owner: Some(actor.principal().clone()),
            ..TokenQuery::default()
        };
        let found = self.store.tokens_where(actor.account(), &query).await?;
        found.into_iter().next().ok_or_else(|| token_not_found(id))
    }

    /// `POST /api/2.0/token/delete`: revokes one of the caller's own tokens.
    pub async fn delete_personal_token(&self, actor: &Actor, id: &str) -> ScimResult<()> {
        let record = self.own_token(actor, id).await?;
        self.revoke(&record.token).await
    }

    /// `POST /api/2.0/token/rotate` (Scimitar's): a new secret for one of the caller's own
    /// tokens; the old one keeps working for the rotation overlap.
    pub async fn rotate_personal_token(
        &self,
        actor: &Actor,
        id: &str,
        lifetime_seconds: Option<i64>,
    ) -> ScimResult<IssuedToken> {
        let record = self.own_token(actor, id).await?;
        self.rotate(actor.principal(), record.token, lifetime_seconds)
            .await
    }

    /// The admin of the workspace an actor acts in, for the token management API.
    pub async fn authorize_token_admin(&self, actor: &Actor) -> ScimResult<AccountAdmin> {
        workspace_of(actor)?;
        self.authorize_admin(actor)
            .await
            .map_err(|_| not_an_admin(actor, "manage the tokens of this workspace"))
    }

    /// `GET /api/2.0/token-management/tokens`: the workspace's live tokens, of anyone,
    /// optionally only those made by one principal (by id or userName).
    pub async fn manage_list_tokens(
        &self,
        admin: &AccountAdmin,
        created_by_id: Option<&str>,
        created_by_username: Option<&str>,
    ) -> ScimResult<Value> {
        let actor = admin.actor();
        let workspace = workspace_of(actor)?;
        let mut creators = Vec::new();
        if let Some(id) = created_by_id {
            creators.push(PrincipalId::new(id));
        }
        if let Some(name) = created_by_username {
            match self
                .store
                .principal_by_name(actor.account(), PrincipalKind::User, name)
                .await?
            {
                Some(user) => creators.push(user.id),
                // Nobody by that name made anything.
                None => return Ok(json!({ "token_infos": [] })),
            }
        }
        creators.dedup();
        if creators.len() > 1 {
            // An id and a name naming two principals: nothing was made by both.
            return Ok(json!({ "token_infos": [] }));
        }
        let query = TokenQuery {
            workspace: Some(workspace.clone()),
            created_by: creators.pop(),
            ..TokenQuery::default()
        };
        let now = self.clock.now();
        let records: Vec<TokenRecord> = self
            .store
            .tokens_where(actor.account(), &query)
            .await?
            .into_iter()
            .filter(|record| record.token.is_valid_at(now))
            .collect();
        let infos = self.render_token_infos(actor.account(), &records)?;
        Ok(json!({ "token_infos": infos }))
    }

    fn render_token_infos(
        &self,
        account: &AccountId,
        records: &[TokenRecord],
    ) -> ScimResult<Vec<Value>> {
        self.access.read(account, |model| {
            let name_of = |id: &PrincipalId| model.principal_ref(id).ok().map(|found| found.name);
            records
                .iter()
                .map(|record| management_info(record, name_of))
                .collect()
        })
    }

    /// A token of the admin's workspace, by id.
    async fn workspace_token(&self, admin: &AccountAdmin, id: &str) -> ScimResult<TokenRecord> {
        let actor = admin.actor();
        let query = TokenQuery {
            id: Some(id.to_string()),
            workspace: Some(workspace_of(actor)?.clone()),
            ..TokenQuery::default()
        };
        let found = self.store.tokens_where(actor.account(), &query).await?;
        found.into_iter().next().ok_or_else(|| token_not_found(id))
    }

    /// `GET /api/2.0/token-management/tokens/{id}`: `{token_info}`.
    pub async fn manage_get_token(&self, admin: &AccountAdmin, id: &str) -> ScimResult<Value> {
        let record = self.workspace_token(admin, id).await?;
        let mut infos = self.render_token_infos(admin.account(), std::slice::from_ref(&record))?;
        Ok(json!({ "token_info": infos.pop().unwrap_or(Value::Null) }))
    }

    /// `DELETE /api/2.0/token-management/tokens/{id}`: revokes any token of the workspace.
    pub async fn manage_delete_token(&self, admin: &AccountAdmin, id: &str) -> ScimResult<()> {
        let record = self.workspace_token(admin, id).await?;
        self.revoke(&record.token).await
    }

    /// `POST /api/2.0/token-management/tokens/{id}/rotate` (Scimitar's): rotates a token of a
    /// service principal of the workspace (see `ensure_may_mint_for`).
    pub async fn manage_rotate_token(
        &self,
        admin: &AccountAdmin,
        id: &str,
        lifetime_seconds: Option<i64>,
    ) -> ScimResult<IssuedToken> {
        let record = self.workspace_token(admin, id).await?;
        self.ensure_may_mint_for(admin, &record.token.principal)?;
        self.rotate(admin.actor().principal(), record.token, lifetime_seconds)
            .await
    }

    /// Whether an admin may be handed a secret that acts as `principal` (an on-behalf-of
    /// token, a rotation's new secret): only for a service principal, as Databricks' on-behalf-of
    /// tokens are (a user rotates its own tokens), and never for an admin of the account unless
    /// the caller is one, so that a workspace's admin cannot become an account admin.
    fn ensure_may_mint_for(&self, admin: &AccountAdmin, principal: &PrincipalId) -> ScimResult<()> {
        let actor = admin.actor();
        let (kind, target_is_admin, caller_is_admin) =
            self.access.read(actor.account(), |model| {
                (
                    model.principal_ref(principal).ok().map(|found| found.kind),
                    crate::authority::is_admin(model, principal),
                    crate::authority::is_admin(model, actor.principal()),
                )
            })?;
        if kind != Some(PrincipalKind::ServicePrincipal) {
            return Err(ScimError::Forbidden(
                "admins make and rotate tokens for service principals only; a user rotates its \
                 own tokens through the token API"
                    .into(),
            ));
        }
        if target_is_admin && !caller_is_admin {
            return Err(not_an_admin(
                actor,
                "make or rotate a token of a service principal that is an admin of the account",
            ));
        }
        Ok(())
    }

    /// Rotates any token of the admin's account, by id (`scimitar token rotate`).
    pub async fn rotate_account_token(
        &self,
        admin: &AccountAdmin,
        id: &str,
        lifetime_seconds: Option<i64>,
    ) -> ScimResult<IssuedToken> {
        let query = TokenQuery {
            id: Some(id.to_string()),
            ..TokenQuery::default()
        };
        let found = self.store.tokens_where(admin.account(), &query).await?;
        let record = found
            .into_iter()
            .next()
            .ok_or_else(|| token_not_found(id))?;
        self.rotate(admin.actor().principal(), record.token, lifetime_seconds)
            .await
    }

    /// `{token_value, token_info}` with the token management API's `TokenInfo` (who made the
    /// token, whose it is, its workspace), as the on-behalf-of creation answers.
    pub fn issued_with_management_info(&self, issued: &IssuedToken) -> ScimResult<Value> {
        let record = TokenRecord {
            token: issued.token.clone(),
            last_used: None,
        };
        let mut infos = self.render_token_infos(&issued.token.account, &[record])?;
        Ok(json!({
            "token_value": issued.secret.expose(),
            "token_info": infos.pop().unwrap_or(Value::Null),
        }))
    }

    /// `POST /api/2.0/token-management/on-behalf-of/tokens`: a token of this workspace for a
    /// service principal, by its application id, made by an admin.
    pub async fn create_on_behalf_of(
        &self,
        admin: &AccountAdmin,
        application_id: &str,
        request: &TokenRequest,
    ) -> ScimResult<IssuedToken> {
        let actor = admin.actor();
        let workspace = workspace_of(actor)?;
        let scope = request.scope()?;
        let policy = self.token_policy(actor.account(), workspace).await?;
        let now = self.clock.now().truncated_to_millis();
        let expires = policy.expiry(now, request.lifetime_seconds)?;
        if !policy.enabled {
            return Err(tokens_disabled());
        }
        let missing = || {
            ScimError::NotFound(format!(
                "no service principal of this workspace has application id '{}'",
                application_id.escape_debug()
            ))
        };
        let principal = self
            .store
            .principal_by_name(
                actor.account(),
                PrincipalKind::ServicePrincipal,
                application_id,
            )
            .await?
            .ok_or_else(missing)?;
        let (reaches, active) = self.access.read(actor.account(), |model| {
            let reaches = crate::authority::is_admin(model, &principal.id)
                || model
                    .workspace_permission(workspace, &principal.id)
                    .is_some()
                || model.in_workspace(workspace, &principal.id);
            (reaches, model.can_act(&principal.id))
        })?;
        if !reaches {
            return Err(missing());
        }
        self.ensure_may_mint_for(admin, &principal.id)?;
        if !active {
            return Err(ScimError::invalid_value(format!(
                "service principal '{}' is deactivated",
                application_id.escape_debug()
            )));
        }
        let token = Token {
            id: self.ids.uuid(),
            account: actor.account().clone(),
            principal: principal.id,
            scope,
            comment: request.comment.clone(),
            created: now,
            expires: Some(expires),
            workspace: Some(workspace.clone()),
            created_by: Some(actor.principal().clone()),
        };
        self.issue(token).await
    }

    async fn revoke(&self, token: &Token) -> ScimResult<()> {
        let change = Change::DeleteToken {
            id: token.id.clone(),
        };
        self.commit(&token.account, change).await
    }

    /// Issues a replacement for `old` (same principal, scope, comment and workspace) and cuts
    /// `old`'s life to the rotation overlap, in one change. The replacement lives
    /// `lifetime_seconds` when given, else as long as `old` was made to live; a workspace's
    /// token keeps to the workspace's policy.
    async fn rotate(
        &self,
        rotator: &PrincipalId,
        old: Token,
        lifetime_seconds: Option<i64>,
    ) -> ScimResult<IssuedToken> {
        let now = self.clock.now().truncated_to_millis();
        let lifetime = lifetime_seconds.or_else(|| {
            old.expires
                .map(|expires| (expires.as_micros() - old.created.as_micros()) / MICROS_PER_SECOND)
                .map(|seconds| seconds.max(1))
        });
        let expires = match &old.workspace {
            Some(workspace) => {
                let policy = self.token_policy(&old.account, workspace).await?;
                if !policy.enabled {
                    return Err(tokens_disabled());
                }
                Some(policy.expiry(now, lifetime)?)
            }
            None => match lifetime {
                Some(seconds) => Some(checked_expiry(now, seconds)?),
                None => None,
            },
        };
        let overlap = i64::try_from(self.rotation_overlap.as_micros()).unwrap_or(i64::MAX);
        let old_expires = Timestamp::from_micros(now.as_micros().saturating_add(overlap));
        let replacement = Token {
            id: self.ids.uuid(),
            created: now,
            expires,
            created_by: (rotator != &old.principal).then(|| rotator.clone()),
            ..old.clone()
        };
        let secret = TokenSecret::generate(self.ids.as_ref());
        let change = Change::RotateToken {
            id: old.id.clone(),
            expires: old_expires,
            replacement: Box::new(NewToken {
                token: replacement.clone(),
                digest: secret.digest(),
            }),
        };
        self.commit(&old.account, change).await?;
        Ok(IssuedToken {
            secret,
            token: replacement,
        })
    }

    // ----- workspace-conf ---------------------------------------------------------------------

    /// `GET /api/2.0/workspace-conf?keys=...`: the named settings (every known one when none
    /// is named), as strings; a setting never written is `null`, except `enableTokensConfig`,
    /// which is on until switched off. An unknown key is refused, naming it.
    pub async fn workspace_conf(&self, actor: &Actor, keys: &[String]) -> ScimResult<Value> {
        let workspace = workspace_of_conf(actor)?;
        let keys: Vec<&str> = if keys.is_empty() {
            WORKSPACE_CONF_KEYS.to_vec()
        } else {
            keys.iter().map(String::as_str).collect()
        };
        check_known(keys.iter().copied())?;
        let stored = self
            .store
            .workspace_settings(actor.account(), workspace)
            .await?;
        let mut answer = Map::new();
        for key in keys {
            let value = stored
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| json!(value))
                .unwrap_or_else(|| match key {
                    ENABLE_TOKENS => json!("true"),
                    _ => Value::Null,
                });
            answer.insert(key.to_string(), value);
        }
        Ok(Value::Object(answer))
    }

    /// `PATCH /api/2.0/workspace-conf`: sets the given settings of the workspace, for its
    /// admins. Every key must be known and every value valid, or nothing is written. An
    /// empty `maxTokenLifetimeDays` clears it.
    pub async fn set_workspace_conf(
        &self,
        actor: &Actor,
        values: Vec<(String, String)>,
    ) -> ScimResult<()> {
        let workspace = workspace_of_conf(actor)?.clone();
        check_known(values.iter().map(|(key, _)| key.as_str()))?;
        let mut changes = Vec::with_capacity(values.len());
        for (key, value) in values {
            let value = match key.as_str() {
                ENABLE_TOKENS => match value.trim().to_ascii_lowercase().as_str() {
                    flag @ ("true" | "false") => Some(flag.to_string()),
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "{ENABLE_TOKENS} must be \"true\" or \"false\", not {value:?}"
                        )))
                    }
                },
                _ if value.trim().is_empty() => None,
                _ => match value.trim().parse::<i64>() {
                    Ok(days @ 1..=MAX_TOKEN_LIFETIME_DAYS) => Some(days.to_string()),
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "{MAX_TOKEN_LIFETIME_DAYS_KEY} must be a whole number of days from 1 \
                             to {MAX_TOKEN_LIFETIME_DAYS}, not {value:?}"
                        )))
                    }
                },
            };
            changes.push((key, value));
        }
        let admin = self
            .authorize_admin(actor)
            .await
            .map_err(|_| not_an_admin(actor, "change the settings of this workspace"))?;
        let change = Change::SetWorkspaceSettings {
            workspace,
            values: changes,
        };
        self.commit(admin.account(), change).await
    }
}

fn workspace_of_conf(actor: &Actor) -> ScimResult<&WorkspaceId> {
    actor.workspace().ok_or_else(|| {
        ScimError::Forbidden("workspace settings are reached through a workspace".into())
    })
}

fn check_known<'k>(keys: impl Iterator<Item = &'k str>) -> ScimResult<()> {
    let unknown: Vec<&str> = keys
        .filter(|key| !WORKSPACE_CONF_KEYS.contains(key))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ScimError::invalid_value(format!(
        "Invalid keys: {unknown:?}; the keys this server knows are {}",
        WORKSPACE_CONF_KEYS.join(", ")
    )))
}

fn token_not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("token {} does not exist", id.escape_debug()))
}

fn tokens_disabled() -> ScimError {
    ScimError::Forbidden(format!(
        "personal access tokens are disabled in this workspace ({ENABLE_TOKENS} is false)"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn token(id: &str, principal: &str) -> Token {
        Token {
            id: id.into(),
            account: AccountId::new("a"),
            principal: PrincipalId::new(principal),
            scope: TokenScope::AllApis,
            comment: None,
            created: Timestamp::from_micros(0),
            expires: None,
            workspace: None,
            created_by: None,
        }
    }

    #[test]
    fn the_cache_forgets_one_token_by_id_and_all_of_a_principal() {
        let mut cache = TokenCache::default();
        cache.insert("d1".into(), token("t1", "p"));
        cache.insert("d2".into(), token("t2", "p"));
        cache.insert("d3".into(), token("t3", "q"));
        cache.forget_token("t1");
        assert!(cache.get("d1").is_none());
        assert!(cache.get("d2").is_some());
        cache.forget_principal(&AccountId::new("a"), &PrincipalId::new("p"));
        assert!(cache.get("d2").is_none());
        assert!(cache.get("d3").is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_use_is_noted_at_most_once_a_minute_per_token() {
        let uses = TokenUses::default();
        let cached = CachedToken::new(token("t1", "p"));
        let minute = 60 * MICROS_PER_SECOND;
        uses.note(&cached, Timestamp::from_micros(minute));
        uses.note(&cached, Timestamp::from_micros(minute + 5));
        assert_eq!(uses.take()[&AccountId::new("a")]["t1"].as_micros(), minute);
        uses.note(&cached, Timestamp::from_micros(minute + 10));
        assert!(uses.take().is_empty());
        uses.note(&cached, Timestamp::from_micros(2 * minute));
        assert_eq!(
            uses.take()[&AccountId::new("a")]["t1"].as_micros(),
            2 * minute
        );
    }

    #[test]
    fn lifetimes_are_positive_and_within_the_workspace_maximum() {
        let policy = TokenPolicy {
            enabled: true,
            max_lifetime_days: Some(1),
        };
        let now = Timestamp::from_micros(0);
        assert!(policy.expiry(now, Some(-1)).is_err());
        assert!(policy.expiry(now, Some(0)).is_err());
        assert!(policy.expiry(now, Some(86_401)).is_err());
        assert_eq!(
            policy.expiry(now, Some(60)).unwrap().as_micros(),
            60 * MICROS_PER_SECOND
        );
        assert_eq!(
            policy.expiry(now, None).unwrap().as_micros(),
            86_400 * MICROS_PER_SECOND
        );
        let default = TokenPolicy::from_settings(&[]);
        assert!(default.enabled);
        assert!(default.expiry(now, Some(731 * 86_400)).is_err());
        assert!(checked_expiry(now, i64::MAX).is_err());
    }
}
