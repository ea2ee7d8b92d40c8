//! The application service: what each SCIM operation does, between the edges (which parse
//! input into domain values) and storage. Every write goes through the private
//! [`Services::commit`], reached only from methods that take a capability
//! ([`crate::authority`]).
//!
//! Read-modify-write operations (PUT, PATCH) are optimistic: they write only if the version they
//! read is still current, and retry when another request got in between, unless the client
//! pinned a version with `If-Match`, in which case the conflict is the client's 412.

use crate::access::AccessEngine;
use crate::authority::{not_an_admin, AccountAdmin, Actor, PrincipalManager, PrincipalUpdate};
use scimitar_access::AccessModel;
use scimitar_domain::credentials::{hash_password, Token, TokenScope, TokenSecret};
use scimitar_domain::filter::ResolvedFilter;
use scimitar_domain::patch::{apply_patch, password_in, MembershipStep, PatchOperation};
use scimitar_domain::paths::{AttributeHome, ResolvedAttr};
use scimitar_domain::projection::Projection;
use scimitar_domain::query::ListQuery;
use scimitar_domain::render::{Document, GroupRef, MemberRef};
use scimitar_domain::resource::fold_case;
use scimitar_domain::resource::{ParsedResource, Principal};
use scimitar_domain::{
    AccountId, Clock, IdGenerator, PrincipalId, PrincipalKind, ScimError, ScimResult, WorkspaceId,
};
use scimitar_store::{
    Account, Change, FirstAdmin, NewToken, NotReady, Page, SharedStore, Workspace,
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// How often a creation draws a new id after an id collision with another node.
const ID_ATTEMPTS: usize = 4;

/// How often a read-modify-write is retried when another request changed the resource first.
const OPTIMISTIC_ATTEMPTS: usize = 32;

/// The user created on first start, who owns the bootstrap token.
pub const BOOTSTRAP_ADMIN_USER_NAME: &str = "admin@scimitar.local";

/// The entitlements the built-in `users` group carries in every workspace when the workspace
/// is made (an account's first, and each one made later), as in Databricks, so that a
/// principal of the workspace can use it without being granted them one by one. An admin of
/// a workspace may remove them there later like any group's; databases made before they were
/// a default get them once, by migration, if their `users` group was never written to
/// (`docs/design/system-groups.md`).
pub const USERS_GROUP_ENTITLEMENTS: [&str; 2] = ["workspace-access", "databricks-sql-access"];

/// [`USERS_GROUP_ENTITLEMENTS`] as an `entitlements` attribute's values.
pub(crate) fn users_group_entitlements() -> Vec<Value> {
    USERS_GROUP_ENTITLEMENTS
        .iter()
        .map(|value| json!({"value": value}))
        .collect()
}

/// The attributes of a new account's system group `name` (`admins` or `users`): its name, and
/// for `users` the default entitlements ([`USERS_GROUP_ENTITLEMENTS`]), which the account's
/// first workspace stores as that workspace's (`Change::CreateAccount`). Every path that
/// makes an account makes its system groups from this. (`admins` needs none: admins hold
/// every entitlement by the one admin rule.)
pub fn system_group_attributes(name: &str) -> Map<String, Value> {
    let mut attributes = Map::new();
    attributes.insert("displayName".into(), json!(name));
    if name == "users" {
        attributes.insert(
            "entitlements".into(),
            Value::Array(users_group_entitlements()),
        );
    }
    attributes
}

/// Entitlements are per workspace: Databricks documents them as "assigned at the workspace
/// level", and its account-level users, groups and service principals carry none. A write
/// through the account API, which has no workspace, therefore keeps none of the
/// `entitlements` it names; they are ignored rather than refused, so that a provisioning
/// client that sends the same document to every API keeps working, and the account API never
/// shows them (`docs/design/tenancy.md`).
fn drop_entitlements_outside_a_workspace(
    workspace: Option<&WorkspaceId>,
    attributes: &mut Map<String, Value>,
) {
    if workspace.is_none() {
        attributes.remove("entitlements");
    }
}

/// How long [`Services::settle`] waits before each read that asks whether a write whose
/// commit was lost took effect: quick for a blip, then long enough for a reconnect.
const SETTLE_PAUSES: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(2),
];

#[derive(Clone)]
pub struct Services {
    /// Private to the crate: every write passes [`Services::commit`] from a method that took
    /// a capability, and no edge can reach storage around them.
    pub(crate) store: SharedStore,
    /// The access engine, kept current with every commit (see [`Services::commit`]).
    pub(crate) access: Arc<AccessEngine>,
    /// Token uses this node noted and has not yet recorded (`crate::tokens`).
    pub(crate) token_uses: Arc<crate::tokens::TokenUses>,
    /// How long a rotated token keeps working beside its replacement.
    pub(crate) rotation_overlap: std::time::Duration,
    /// This node's copy of the accounts' OAuth signing keys, and how often they rotate.
    pub(crate) oauth_keys: Arc<crate::oauth::SigningKeys>,
    /// Federation's fetcher, its loopback setting and the key sets fetched.
    pub(crate) federation: Arc<crate::federation::Federation>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGenerator>,
    write_locks: Arc<WriteLocks>,
}

/// Stripes of per-principal write locks; collisions only make unrelated writers wait briefly.
const WRITE_LOCK_STRIPES: usize = 256;

/// The write-lock stripes and the hash that picks one for a principal. The hash is seeded once
/// per process (`RandomState` draws its keys from the operating system), so that nobody can
/// choose principals whose writes all queue on one stripe, as they could with the fixed keys
/// of `DefaultHasher::new()`. Kept together behind one `Arc`, so every clone of `Services`
/// picks the same stripe for the same principal.
struct WriteLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
    seed: std::collections::hash_map::RandomState,
}

/// What the first start created: the account and, once, the admin token's secret.
pub struct Bootstrap {
    pub account: Account,
    pub admin_token: TokenSecret,
}

impl Services {
    pub fn new(store: SharedStore, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Services {
            store,
            access: Arc::new(AccessEngine::empty()),
            token_uses: Arc::default(),
            rotation_overlap: crate::tokens::DEFAULT_ROTATION_OVERLAP,
            oauth_keys: Arc::default(),
            federation: Arc::default(),
            clock,
            ids,
            write_locks: Arc::new(WriteLocks {
                stripes: (0..WRITE_LOCK_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                seed: std::collections::hash_map::RandomState::new(),
            }),
        }
    }

    /// Opens the store a database URL names (bringing its schema up to date) and the services
    /// over it, with an empty access engine ([`Services::load_access_state`] fills it).
    pub async fn open(
        database_url: &str,
        options: &scimitar_store::StoreOptions,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> ScimResult<Services> {
        let store = scimitar_store::open_with(database_url, options).await?;
        Ok(Services::new(store, clock, ids))
    }

    /// The access engine, for questions answered from its model.
    pub fn access(&self) -> &AccessEngine {
        &self.access
    }

    /// The clock every timestamp is read from.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Builds every account's access model from storage: what a node does before it serves.
    pub async fn load_access_state(&self) -> ScimResult<()> {
        self.access.reload(self.store.as_ref()).await
    }

    /// Follows the access log every `interval` until the process ends, so that writes made by
    /// other nodes or processes reach this node's answers within about one interval.
    pub async fn follow_access_log(&self, interval: std::time::Duration) {
        self.access.follow(self.store.as_ref(), interval).await
    }

    /// Applies every access-log entry committed so far to this node's engine.
    pub async fn catch_up(&self) -> ScimResult<u64> {
        self.access.catch_up(self.store.as_ref()).await
    }

    /// The change token a write in `account` answers with (`Scimitar-Change-Token`): how many
    /// of the account's own changes this node has applied, which includes the write.
    pub fn change_token(&self, account: &AccountId) -> u64 {
        self.access.change_token(account)
    }

    /// Waits until this node has applied the account's changes up to `token`, a change token
    /// some node answered a write in this account with (`Scimitar-Read-After`): one catch-up
    /// reads what other nodes committed. A token beyond every committed change is refused.
    pub async fn read_after(&self, account: &AccountId, token: u64) -> ScimResult<()> {
        if self.access.change_token(account) >= token {
            return Ok(());
        }
        self.access.catch_up(self.store.as_ref()).await?;
        if self.access.change_token(account) >= token {
            return Ok(());
        }
        Err(ScimError::invalid_value(format!(
            "change token {token} is ahead of every committed change of this account"
        )))
    }

    /// Every account, oldest first.
    pub async fn accounts(&self) -> ScimResult<Vec<Account>> {
        self.store.accounts().await
    }

    /// The account with this id, or the first one when `id` is `None` (the CLI's default).
    pub async fn account_or_first(&self, id: Option<&str>) -> ScimResult<AccountId> {
        let accounts = self.store.accounts().await?;
        match id {
            Some(id) => accounts
                .into_iter()
                .find(|account| account.id.as_str() == id)
                .map(|account| account.id)
                .ok_or_else(|| ScimError::NotFound(format!("account {id} not found"))),
            None => accounts
                .into_iter()
                .next()
                .map(|account| account.id)
                .ok_or_else(|| {
                    ScimError::NotFound(
                        "the database holds no account; run `scimitar serve` once to create one"
                            .into(),
                    )
                }),
        }
    }

    pub async fn workspaces(&self, account: &AccountId) -> ScimResult<Vec<Workspace>> {
        self.store.workspaces(account).await
    }

    /// Whether storage can serve requests now (backs `/readyz`).
    /// The database connection pool now (PostgreSQL), for metrics.
    pub fn pool_status(&self) -> Option<scimitar_store::PoolStatus> {
        self.store.pool_status()
    }

    pub async fn ready(&self) -> Result<(), NotReady> {
        self.store.ready().await
    }

    // ----- who is acting ----------------------------------------------------------------------

    /// Acts as `principal` in `account`, for an operator who holds the database (the CLI). The
    /// principal must exist and be active; what it may do is then decided as for any request.
    /// Edges that serve requests authenticate instead ([`Services::authenticate`]).
    pub async fn act_as(&self, account: &AccountId, principal: &PrincipalId) -> ScimResult<Actor> {
        let can_act = |services: &Services| {
            services
                .access
                .read(account, |model| model.can_act(principal))
                .unwrap_or(false)
        };
        // A principal made through another node (or process) may be newer than this engine.
        let known = can_act(self) || (self.catch_up().await.is_ok() && can_act(self));
        if !known {
            return Err(ScimError::NotFound(format!(
                "principal {principal} does not exist or is deactivated"
            )));
        }
        Ok(Actor::operator(account.clone(), principal.clone()))
    }

    /// Acts as an admin of `account`, for an operator who holds the database: the bootstrap
    /// admin while it is one, else the first active direct member of `admins`.
    pub async fn act_as_admin(&self, account: &AccountId) -> ScimResult<Actor> {
        self.load_access_state_if_empty(account).await?;
        let admin = self.initial_admin(account).await?;
        let actor = self.act_as(account, &admin.id).await?;
        self.authorize_admin(&actor).await?;
        Ok(actor)
    }

    /// Confirms, from this node's engine as it stands, that an admin found so earlier in the
    /// same request still is one: between the operations of one Bulk request, where an earlier
    /// operation may have removed the caller from `admins`. (Each operation's commit brings the
    /// engine up to it, so no log read is needed.)
    pub fn confirm_admin(&self, admin: &AccountAdmin) -> ScimResult<()> {
        let actor = admin.actor();
        if self
            .access
            .read(actor.account(), |model| actor.is_admin_in(model))?
        {
            return Ok(());
        }
        Err(not_an_admin(
            actor,
            "change users, groups, service principals and tokens",
        ))
    }

    /// The generator of ids and secrets.
    pub fn ids(&self) -> &dyn IdGenerator {
        self.ids.as_ref()
    }

    /// Builds the engine when this process has no model of `account` yet (a CLI command).
    async fn load_access_state_if_empty(&self, account: &AccountId) -> ScimResult<()> {
        if self.access.read(account, |_| ()).is_err() {
            self.load_access_state().await?;
        }
        Ok(())
    }

    /// Finds the actor to be an admin of its account, or refuses with 403. The engine reads the
    /// access log up to now first, so a principal removed from `admins` through another node
    /// (or the CLI) is refused with its very next request, not a follower interval later.
    pub async fn authorize_admin(&self, actor: &Actor) -> ScimResult<AccountAdmin> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let admin = self
            .access
            .read(actor.account(), |model| actor.is_admin_in(model))?;
        if !admin {
            return Err(not_an_admin(
                actor,
                "change users, groups, service principals and tokens",
            ));
        }
        Ok(AccountAdmin::new(actor.clone()))
    }

    /// Finds who may update the principal `id` of `kind`: an admin of the account, or, for a
    /// group or service principal, a principal that manages it (`authority::manages`, from
    /// the manager role in the principal's rule set); anyone else is refused with 403 exactly
    /// as a non-admin always was, whether the principal exists or not. Like
    /// [`Services::authorize_admin`], the engine first reads the access log up to now.
    pub async fn authorize_update(
        &self,
        actor: &Actor,
        kind: PrincipalKind,
        id: &PrincipalId,
    ) -> ScimResult<PrincipalUpdate> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let account = actor.account();
        if self
            .access
            .read(account, |model| actor.is_admin_in(model))?
        {
            return Ok(PrincipalUpdate::Admin(AccountAdmin::new(actor.clone())));
        }
        let refused = || not_an_admin(actor, "change users, groups, service principals and tokens");
        let Some(manager_role) = crate::rule_sets::manager_role(kind) else {
            return Err(refused());
        };
        let target = match self.store.principal(account, id).await? {
            Some(target) if target.kind == kind => target,
            _ => return Err(refused()),
        };
        let resource = crate::rule_sets::stored_resource(kind, id);
        let (_, grants) = self.store.rule_set(account, &resource).await?;
        let holders: Vec<PrincipalId> = grants
            .into_iter()
            .filter(|(role, _)| role == manager_role)
            .map(|(_, holder)| holder)
            .collect();
        let manages = self.access.read(account, |model| {
            crate::authority::manages(model, actor.principal(), target.system, &holders)
        })?;
        if !manages {
            return Err(refused());
        }
        Ok(PrincipalUpdate::Manager(PrincipalManager::new(
            actor.clone(),
            id.clone(),
        )))
    }

    /// The one way this node writes: applies `change` in storage, then brings the access
    /// engine up to at least that commit, so the request that made the change, and every
    /// request after it, sees it in access answers. Private to the crate: it is called only
    /// by methods that took a capability and checked it (see [`crate::authority`]).
    pub(crate) async fn commit(&self, account: &AccountId, change: Change) -> ScimResult<()> {
        // The change's audit event is written in its transaction, with who made it and from
        // where (`crate::audit`): the change commits if and only if its event does.
        let context = crate::audit::context(self.ids.uuid(), self.clock.now());
        self.store.apply_audited(account, change, context).await?;
        if let Err(error) = self.access.catch_up_to_now(self.store.as_ref()).await {
            // The change is committed; the client must hear so. The engine catches up on its
            // next step (the next write, or the follower's timer).
            tracing::error!(%error, "the access engine could not catch up after a commit");
        }
        Ok(())
    }

    /// The answer to a write of principal `id` whose commit ended in `outcome`. When the
    /// database lost the connection during COMMIT ([`ScimError::OutcomeUnknown`]), whether the
    /// write took effect can still be known: ids are chosen before writing and versions are
    /// exact, so reading the principal back says it (`took_effect` judges what is stored). The
    /// read is tried a few times while the database comes back. A write that took effect is a
    /// success; one that did not is [`ScimError::Unavailable`] (nothing changed, retry); if no
    /// read succeeds the outcome stays unknown, and the client is told so.
    async fn settle(
        &self,
        account: &AccountId,
        id: &PrincipalId,
        outcome: ScimResult<()>,
        took_effect: impl Fn(Option<&Principal>) -> bool,
    ) -> ScimResult<()> {
        let Err(ScimError::OutcomeUnknown(fault)) = outcome else {
            return outcome;
        };
        for pause in SETTLE_PAUSES {
            tokio::time::sleep(pause).await;
            let Ok(stored) = self.store.principal(account, id).await else {
                continue;
            };
            if !took_effect(stored.as_ref()) {
                tracing::warn!(cause = %fault.chain(), "a write whose commit was lost did not take effect");
                return Err(ScimError::Unavailable(fault));
            }
            tracing::warn!(cause = %fault.chain(), "a write whose commit was lost took effect");
            if let Err(error) = self.access.catch_up_to_now(self.store.as_ref()).await {
                tracing::error!(%error, "the access engine could not catch up after a commit");
            }
            return Ok(());
        }
        Err(ScimError::OutcomeUnknown(fault))
    }

    /// Now, at the precision timestamps are rendered with.
    fn now(&self) -> scimitar_domain::Timestamp {
        self.clock.now().truncated_to_millis()
    }

    /// The lock that serialises read-modify-writes of one principal on this node, so that
    /// concurrent PATCHes of one group queue up instead of failing each other's version checks.
    fn write_lock(&self, account: &AccountId, id: &PrincipalId) -> &tokio::sync::Mutex<()> {
        use std::hash::BuildHasher;
        let locks = &self.write_locks;
        let hash = locks.seed.hash_one((account, id));
        &locks.stripes[(hash % locks.stripes.len() as u64) as usize]
    }

    /// On an empty database: creates the first account and workspace, the `admins` and `users`
    /// groups, the initial admin user (in `admins`) and an admin token for them. Returns `None`
    /// when the database already holds an account.
    pub async fn bootstrap(&self) -> ScimResult<Option<Bootstrap>> {
        if !self.store.accounts().await?.is_empty() {
            return Ok(None);
        }
        match self.new_account("default", "default", true, true).await {
            Ok((account, Some(admin_token))) => Ok(Some(Bootstrap {
                account,
                admin_token,
            })),
            Ok((_, None)) => Err(ScimError::internal("bootstrap made no admin token")),
            // Another node (or process) made the first account since the test above: it
            // prints the admin token, this one has nothing to bootstrap.
            Err(_) if !self.store.accounts().await?.is_empty() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// A new account, as bootstrap makes the first: its first workspace, its `admins` and
    /// `users` groups, and its first admin with a token, whose secret is returned once.
    /// For an operator who holds the database (`scimitar account create`): like bootstrap, it
    /// only adds a tenant and can read or change nothing of another.
    pub async fn create_account(&self, name: &str, workspace_name: &str) -> ScimResult<Bootstrap> {
        let name = crate::tenancy::checked_name("account name", name)?;
        let workspace_name = crate::tenancy::checked_name("workspace name", workspace_name)?;
        match self
            .new_account(&name, &workspace_name, false, true)
            .await?
        {
            (account, Some(admin_token)) => Ok(Bootstrap {
                account,
                admin_token,
            }),
            (_, None) => Err(ScimError::internal("a new account got no admin token")),
        }
    }

    /// [`Services::bootstrap`] for an operator about to make a token of its own choosing
    /// (`scimitar token create` on an empty database): the first account and admin, but no
    /// token, so that no secret is stored that nobody was shown. Says whether it made the
    /// account.
    pub async fn bootstrap_without_token(&self) -> ScimResult<bool> {
        if !self.store.accounts().await?.is_empty() {
            return Ok(false);
        }
        match self.new_account("default", "default", true, false).await {
            Ok(_) => Ok(true),
            Err(_) if !self.store.accounts().await?.is_empty() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// A new account with its first workspace, system groups and admin, and, with
    /// `with_token`, the admin's first token, whose secret is returned.
    async fn new_account(
        &self,
        name: &str,
        workspace_name: &str,
        only_if_first: bool,
        with_token: bool,
    ) -> ScimResult<(Account, Option<TokenSecret>)> {
        let now = self.now();
        let account = Account {
            id: AccountId::new(self.ids.uuid()),
            name: name.to_string(),
            created: now,
        };
        let workspace = Workspace {
            id: WorkspaceId::new(self.ids.principal_id(now).to_string()),
            account: account.id.clone(),
            name: workspace_name.to_string(),
            created: now,
            deployment_name: None,
        };
        let system_group = |name: &str| Principal {
            id: self.ids.principal_id(now),
            kind: PrincipalKind::Group,
            attributes: system_group_attributes(name),
            password_hash: None,
            system: true,
            created: now,
            last_modified: now,
            version: 1,
        };
        let admins = system_group("admins");
        let users = system_group("users");
        let admin = Principal {
            id: self.ids.principal_id(now),
            kind: PrincipalKind::User,
            attributes: json!({
                "userName": BOOTSTRAP_ADMIN_USER_NAME,
                "displayName": "Scimitar admin",
                "active": true,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            password_hash: None,
            system: false,
            created: now,
            last_modified: now,
            version: 1,
        };
        let admin_token = with_token.then(|| TokenSecret::generate(self.ids.as_ref()));
        let token = admin_token.as_ref().map(|secret| NewToken {
            digest: secret.digest(),
            token: Token {
                id: self.ids.uuid(),
                account: account.id.clone(),
                principal: admin.id.clone(),
                scope: TokenScope::AllApis,
                comment: Some("bootstrap".to_string()),
                created: now,
                expires: None,
                workspace: None,
                created_by: None,
            },
        });
        // One change: the account, its groups, its admin in `admins` and the admin's token
        // exist together or not at all (and, for the first, only if the database held none).
        self.commit(
            &account.id,
            Change::CreateAccount {
                account: account.clone(),
                workspace,
                first_admin: Some(Box::new(FirstAdmin {
                    group: admins.id.clone(),
                    user: admin,
                    token,
                })),
                system_groups: vec![admins, users],
                only_if_first,
            },
        )
        .await?;
        Ok((account, admin_token))
    }

    /// The id of the principal of a kind with this name (userName, group displayName,
    /// applicationId), compared ignoring case.
    pub async fn principal_named(
        &self,
        account: &AccountId,
        kind: PrincipalKind,
        name: &str,
    ) -> ScimResult<PrincipalId> {
        self.store
            .principal_by_name(account, kind, name)
            .await?
            .map(|principal| principal.id)
            .ok_or_else(|| ScimError::NotFound(format!("no {} is named '{name}'", kind.as_str())))
    }

    /// The initial admin of an account: the bootstrap user, else the first member of `admins`.
    pub async fn initial_admin(&self, account: &AccountId) -> ScimResult<Principal> {
        if let Some(admin) = self
            .store
            .principal_by_name(account, PrincipalKind::User, BOOTSTRAP_ADMIN_USER_NAME)
            .await?
        {
            return Ok(admin);
        }
        let admins = self
            .store
            .principal_by_name(account, PrincipalKind::Group, "admins")
            .await?
            .ok_or_else(|| ScimError::NotFound("the account has no 'admins' group".into()))?;
        let members = self
            .store
            .members(account, std::slice::from_ref(&admins.id))
            .await?;
        let first = members
            .get(&admins.id)
            .and_then(|members| members.first())
            .ok_or_else(|| ScimError::NotFound("the 'admins' group has no members".into()))?;
        self.get_any(account, &first.id).await
    }

    pub(crate) async fn get_any(
        &self,
        account: &AccountId,
        id: &PrincipalId,
    ) -> ScimResult<Principal> {
        self.store
            .principal(account, id)
            .await?
            .ok_or_else(|| ScimError::NotFound(format!("resource {id} not found")))
    }

    /// [`Services::get`] for a plain read (GET): served from the node's read cache when it
    /// can be. Writes never use it: they need the stored version to check against.
    pub async fn get_for_read(
        &self,
        reader: &DirectoryReader,
        kind: PrincipalKind,
        id: &PrincipalId,
    ) -> ScimResult<Arc<Principal>> {
        let account = reader.actor.account();
        // In a workspace, as that workspace sees it: with its entitlements there, read in the
        // same query and cached per workspace.
        let workspace = reader.actor.workspace();
        let principal = match self.access.cached_principal(account, workspace, id) {
            Some(principal) => principal,
            None => {
                let read_at = self.access.applied();
                let Some(principal) = self.read_principal(account, workspace, id).await? else {
                    return Err(not_found(kind, id));
                };
                let principal = Arc::new(principal);
                self.access
                    .remember_principal(account, workspace, &principal, read_at);
                principal
            }
        };
        if principal.kind != kind {
            return Err(not_found(kind, id));
        }
        // Out of the workspace as far as this engine knows; it may not yet have applied the
        // assignment that brings the principal in (made through another node), so it reads
        // the log before it says so.
        if !self.in_scope(&reader.actor, &principal)
            && (self.catch_up().await.is_err() || !self.in_scope(&reader.actor, &principal))
        {
            return Err(not_found(kind, id));
        }
        Ok(principal)
    }

    /// Reads a principal of a kind as `workspace` sees it (with its entitlements there), or
    /// as the account does (`None`); one of another kind is "not found" at this endpoint.
    pub(crate) async fn get(
        &self,
        account: &AccountId,
        workspace: Option<&WorkspaceId>,
        kind: PrincipalKind,
        id: &PrincipalId,
    ) -> ScimResult<Principal> {
        of_kind(self.read_principal(account, workspace, id).await?, kind, id)
    }

    /// A principal as `workspace` sees it, or as the account does (`None`).
    async fn read_principal(
        &self,
        account: &AccountId,
        workspace: Option<&WorkspaceId>,
        id: &PrincipalId,
    ) -> ScimResult<Option<Principal>> {
        match workspace {
            Some(workspace) => self.store.principal_in(account, workspace, id).await,
            None => self.store.principal(account, id).await,
        }
    }

    pub async fn create(
        &self,
        admin: &AccountAdmin,
        kind: PrincipalKind,
        parsed: ParsedResource,
    ) -> ScimResult<Principal> {
        let account = admin.account();
        let now = self.now();
        let mut attributes = parsed.attributes;
        drop_entitlements_outside_a_workspace(admin.actor().workspace(), &mut attributes);
        if kind != PrincipalKind::Group {
            attributes.entry("active").or_insert(Value::Bool(true));
        }
        if kind == PrincipalKind::ServicePrincipal {
            attributes
                .entry("applicationId")
                .or_insert_with(|| Value::String(self.ids.uuid()));
        }
        let password_hash = match &parsed.password {
            Some(password) => Some(hash_password(password, self.ids.as_ref())?),
            None => None,
        };
        let mut principal = Principal {
            id: self.ids.principal_id(now),
            kind,
            attributes,
            password_hash,
            system: false,
            created: now,
            last_modified: now,
            version: 1,
        };
        let members = parsed.members.unwrap_or_default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let created = self
                .commit(
                    account,
                    Change::CreatePrincipal {
                        principal: principal.clone(),
                        members: members.clone(),
                        assign_to: admin.actor().workspace().cloned(),
                    },
                )
                .await;
            let created = self
                .settle(account, &principal.id, created, |stored| stored.is_some())
                .await;
            match created {
                Ok(()) => return Ok(principal),
                // Ids are drawn without coordination between nodes (see `IdGenerator`): a
                // uniqueness conflict on a new principal whose id is taken is such a collision,
                // not the client's; draw another.
                Err(ScimError::BadRequest {
                    scim_type: scimitar_domain::ScimType::Uniqueness,
                    ..
                }) if attempt < ID_ATTEMPTS
                    && self
                        .store
                        .principal(account, &principal.id)
                        .await?
                        .is_some() =>
                {
                    principal.id = self.ids.principal_id(now);
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub async fn replace(
        &self,
        admin: &AccountAdmin,
        kind: PrincipalKind,
        id: &PrincipalId,
        parsed: ParsedResource,
        if_match: Option<u64>,
    ) -> ScimResult<Principal> {
        let writer = Writer::Admin(admin);
        self.replace_as(admin.account(), writer, kind, id, parsed, if_match)
            .await
    }

    /// [`Services::replace`] by a manager of the principal who is not an admin: the new
    /// state may differ from the current one only in what managers may change
    /// ([`authority::MANAGER_MAY_CHANGE`]).
    pub async fn replace_managed(
        &self,
        manager: &PrincipalManager,
        kind: PrincipalKind,
        parsed: ParsedResource,
        if_match: Option<u64>,
    ) -> ScimResult<Principal> {
        let account = manager.actor().account();
        let writer = Writer::Manager(manager);
        self.replace_as(account, writer, kind, manager.target(), parsed, if_match)
            .await
    }

    async fn replace_as(
        &self,
        account: &AccountId,
        writer: Writer<'_>,
        kind: PrincipalKind,
        id: &PrincipalId,
        parsed: ParsedResource,
        if_match: Option<u64>,
    ) -> ScimResult<Principal> {
        let password_hash = match &parsed.password {
            Some(password) => Some(hash_password(password, self.ids.as_ref())?),
            None => None,
        };
        let workspace = writer.workspace();
        self.read_modify_write(account, workspace, kind, id, if_match, |current| {
            self.check_writer_scope(writer, kind, current)?;
            let mut attributes = parsed.attributes.clone();
            drop_entitlements_outside_a_workspace(workspace, &mut attributes);
            keep_on_replace(current, &mut attributes)?;
            check_system_group_rename(current, &attributes)?;
            let membership = match (&parsed.members, current.kind) {
                (Some(members), PrincipalKind::Group) => {
                    vec![MembershipStep::ReplaceAll(members.clone())]
                }
                (None, PrincipalKind::Group) => vec![MembershipStep::RemoveAll],
                _ => Vec::new(),
            };
            check_system_group_membership(current, &membership)?;
            if let Writer::Manager(manager) = writer {
                check_manager_change(manager, current, &attributes, password_hash.is_some())?;
            }
            Ok(Some((attributes, password_hash.clone(), membership)))
        })
        .await
    }

    pub async fn patch(
        &self,
        admin: &AccountAdmin,
        kind: PrincipalKind,
        id: &PrincipalId,
        operations: &[PatchOperation],
        if_match: Option<u64>,
    ) -> ScimResult<Principal> {
        let writer = Writer::Admin(admin);
        self.patch_as(admin.account(), writer, kind, id, operations, if_match)
            .await
    }

    /// [`Services::patch`] by a manager of the principal who is not an admin: the operations
    /// may change only what managers may change ([`authority::MANAGER_MAY_CHANGE`]).
    pub async fn patch_managed(
        &self,
        manager: &PrincipalManager,
        kind: PrincipalKind,
        operations: &[PatchOperation],
        if_match: Option<u64>,
    ) -> ScimResult<Principal> {
        let account = manager.actor().account();
        let target = manager.target();
        let writer = Writer::Manager(manager);
        self.patch_as(account, writer, kind, target, operations, if_match)
            .await
    }

    async fn patch_as(
        &self,
        account: &AccountId,
        writer: Writer<'_>,
        kind: PrincipalKind,
        id: &PrincipalId,
        operations: &[PatchOperation],
        if_match: Option<u64>,
    ) -> ScimResult<Principal> {
        let resource_type = kind.resource_type();
        // Hash once, outside the retry loop: Argon2 is deliberately slow.
        let password_hash = match password_in(operations) {
            Some(password) => Some(hash_password(&password, self.ids.as_ref())?),
            None => None,
        };
        let workspace = writer.workspace();
        self.read_modify_write(account, workspace, kind, id, if_match, |current| {
            self.check_writer_scope(writer, kind, current)?;
            let mut plan = apply_patch(resource_type, &current.attributes, operations)?;
            drop_entitlements_outside_a_workspace(workspace, &mut plan.attributes);
            check_system_group_rename(current, &plan.attributes)?;
            check_system_group_membership(current, &plan.membership)?;
            let unchanged = plan.attributes == current.attributes
                && plan.membership.is_empty()
                && plan.password.is_none();
            if unchanged {
                return Ok(None);
            }
            if let Writer::Manager(manager) = writer {
                let password = plan.password.is_some();
                check_manager_change(manager, current, &plan.attributes, password)?;
            }
            Ok(Some((
                plan.attributes,
                password_hash.clone(),
                plan.membership,
            )))
        })
        .await
    }

    /// Reads the principal (as `workspace` sees it, with its entitlements there), computes its
    /// new state with `change`, and writes it if nobody else wrote in between, its
    /// entitlements to that workspace alone. `change` returns `None` when nothing changes.
    async fn read_modify_write<F>(
        &self,
        account: &AccountId,
        workspace: Option<&WorkspaceId>,
        kind: PrincipalKind,
        id: &PrincipalId,
        if_match: Option<u64>,
        change: F,
    ) -> ScimResult<Principal>
    where
        F: Fn(
            &Principal,
        )
            -> ScimResult<Option<(Map<String, Value>, Option<String>, Vec<MembershipStep>)>>,
    {
        // Writers on this node take turns; writers on other nodes (sharing a database) can still
        // interleave, which the version check catches and the loop retries with a short backoff.
        let _turn = self.write_lock(account, id).lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                let jitter = u64::from(self.ids.random_bytes(1).first().copied().unwrap_or(0));
                tokio::time::sleep(std::time::Duration::from_micros(
                    attempt as u64 * 500 + jitter * 8,
                ))
                .await;
            }
            let current = self.get(account, workspace, kind, id).await?;
            if let Some(expected) = if_match {
                if expected != current.version {
                    return Err(ScimError::PreconditionFailed(format!(
                        "If-Match does not match: the resource is at version {}",
                        current.etag()
                    )));
                }
            }
            let Some((attributes, new_password_hash, membership)) = change(&current)? else {
                return Ok(current);
            };
            let mut updated = current.clone();
            updated.attributes = attributes;
            if new_password_hash.is_some() {
                updated.password_hash = new_password_hash;
            }
            updated.version = current.version + 1;
            updated.last_modified = self.now().max(current.last_modified);
            let result = self
                .commit(
                    account,
                    Change::UpdatePrincipal {
                        principal: updated.clone(),
                        expected_version: current.version,
                        membership,
                        workspace: workspace.cloned(),
                    },
                )
                .await;
            let result = self
                .settle(account, id, result, |stored| {
                    stored.is_some_and(|stored| stored.version == updated.version)
                })
                .await;
            match result {
                Ok(()) => return Ok(updated),
                Err(ScimError::PreconditionFailed(_))
                    if if_match.is_none() && attempt < OPTIMISTIC_ATTEMPTS =>
                {
                    continue
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub async fn delete(
        &self,
        admin: &AccountAdmin,
        kind: PrincipalKind,
        id: &PrincipalId,
        if_match: Option<u64>,
    ) -> ScimResult<()> {
        let account = admin.account();
        let current = self.get(account, None, kind, id).await?;
        self.check_write_scope(admin, kind, &current)?;
        if admin.actor().workspace().is_some()
            && !self.access.read(account, |model| {
                crate::authority::is_admin(model, admin.actor().principal())
            })?
        {
            // A principal may belong to other workspaces too: deleting it is the account's
            // business. A workspace admin unassigns instead (the account's admins do).
            return Err(ScimError::Forbidden(format!(
                "only admins of the account may delete principals: principal {} is not one",
                admin.actor().principal()
            )));
        }
        if current.system {
            return Err(ScimError::mutability(format!(
                "the built-in group '{}' cannot be deleted",
                current.display_name().unwrap_or_default()
            )));
        }
        let deleted = self
            .commit(
                account,
                Change::DeletePrincipal {
                    id: id.clone(),
                    expected_version: if_match,
                },
            )
            .await;
        self.settle(account, id, deleted, |stored| stored.is_none())
            .await
    }

    /// A page of principals of a kind. A reader with the limited view may filter and sort
    /// only by what that view shows.
    pub async fn list(
        &self,
        reader: &DirectoryReader,
        kind: PrincipalKind,
        query: &ListQuery,
    ) -> ScimResult<Page> {
        if !reader.full_view {
            ensure_limited_query(query)?;
        }
        let account = reader.actor.account();
        match reader.actor.workspace() {
            Some(workspace) => {
                self.store
                    .list_workspace_principals(account, workspace, kind, query)
                    .await
            }
            None => self.store.list_principals(account, kind, query).await,
        }
    }

    /// The principal behind the actor, rendered whole (`GET /Me`) with the projection made
    /// for its kind.
    pub async fn me(
        &self,
        actor: &Actor,
        base_url: &str,
        projection_for: impl FnOnce(PrincipalKind) -> ScimResult<Projection>,
    ) -> ScimResult<(Principal, DocumentJson)> {
        let principal = self
            .read_principal(actor.account(), actor.workspace(), actor.principal())
            .await?
            .ok_or_else(|| {
                ScimError::NotFound(format!("resource {} not found", actor.principal()))
            })?;
        let projection = projection_for(principal.kind)?;
        let reader = DirectoryReader {
            actor: actor.clone(),
            full_view: true,
        };
        let document = self
            .render_one(&reader, &principal, base_url, &projection)
            .await?;
        Ok((principal, document))
    }

    /// What `actor` may read of its account's directory through `surface`: admins everything;
    /// other principals, on a workspace's API, the limited view Databricks gives them (ids and
    /// names, their own document whole); on the account API, nothing but `/Me`.
    pub async fn directory_reader(
        &self,
        actor: &Actor,
        surface: Surface,
    ) -> ScimResult<DirectoryReader> {
        let admin = self
            .access
            .read(actor.account(), |model| actor.is_admin_in(model))?;
        if !admin && surface == Surface::Account {
            return Err(not_an_admin(actor, "read the account's directory"));
        }
        Ok(DirectoryReader {
            actor: actor.clone(),
            full_view: admin,
        })
    }

    /// Renders principals for a response, loading `members` and `groups` only when the
    /// projection keeps them.
    pub async fn render_all(
        &self,
        reader: &DirectoryReader,
        principals: &[Principal],
        base_url: &str,
        projection: &Projection,
    ) -> ScimResult<Vec<DocumentJson>> {
        if !reader.full_view {
            let mut documents = Vec::with_capacity(principals.len());
            for principal in principals {
                if principal.id == *reader.actor.principal() {
                    let own = std::slice::from_ref(principal);
                    documents.extend(
                        self.render_full(&reader.actor, own, base_url, projection)
                            .await?,
                    );
                    continue;
                }
                let document = Document {
                    principal,
                    base_url,
                    members: None,
                    groups: None,
                };
                documents.push(DocumentJson::write(
                    document,
                    &limited_projection(principal.kind),
                )?);
            }
            return Ok(documents);
        }
        self.render_full(&reader.actor, principals, base_url, projection)
            .await
    }

    /// Renders principals whole (as the projection asks), loading `members` and `groups` only
    /// when the projection keeps them.
    async fn render_full(
        &self,
        actor: &Actor,
        principals: &[Principal],
        base_url: &str,
        projection: &Projection,
    ) -> ScimResult<Vec<DocumentJson>> {
        let account = actor.account();
        let group_ids: Vec<PrincipalId> = principals
            .iter()
            .filter(|principal| principal.kind == PrincipalKind::Group)
            .map(|principal| principal.id.clone())
            .collect();
        // A member's `display` is returned only when asked for, and costs a read of the
        // member's own row: without it, only the membership rows are read.
        let with_display = projection.requests("members", "display");
        let members = if group_ids.is_empty() || !projection.includes("members") {
            Default::default()
        } else if with_display {
            self.store.members(account, &group_ids).await?
        } else {
            self.store.member_ids(account, &group_ids).await?
        };
        let groups = if projection.includes("groups") {
            let ids: Vec<PrincipalId> = principals
                .iter()
                .map(|principal| principal.id.clone())
                .collect();
            self.groups_of(account, &ids).await?
        } else {
            Default::default()
        };
        let (members, groups) = self.within_workspace_of(actor, members, groups, with_display);
        principals
            .iter()
            .map(|principal| {
                let members = match principal.kind {
                    PrincipalKind::Group if projection.includes("members") => {
                        Some(members.get(&principal.id).map(Vec::as_slice).unwrap_or(&[]))
                    }
                    _ => None,
                };
                let groups = projection
                    .includes("groups")
                    .then(|| groups.get(&principal.id).map(Vec::as_slice).unwrap_or(&[]));
                let document = Document {
                    principal,
                    base_url,
                    members,
                    groups,
                };
                DocumentJson::write(document, projection)
            })
            .collect()
    }

    /// How many of `principals`, a list page in order, fit within `member_budget` group members
    /// when the projection returns `members`, and how many members those hold. Counted by the
    /// node's engine, before anything is loaded; a group the engine cannot count counts as
    /// empty. The first principal always fits.
    pub fn within_member_budget(
        &self,
        account: &AccountId,
        principals: &[Principal],
        projection: &Projection,
        member_budget: usize,
    ) -> (usize, usize) {
        if !projection.includes("members") {
            return (principals.len(), 0);
        }
        let counts: Vec<usize> = self
            .access
            .read(account, |model| {
                principals
                    .iter()
                    .map(|principal| match principal.kind {
                        PrincipalKind::Group => {
                            model.direct_member_count(&principal.id).unwrap_or(0)
                        }
                        _ => 0,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut used = 0usize;
        for (index, count) in counts.iter().enumerate() {
            if index > 0 && used + count > member_budget {
                return (index, used);
            }
            used += count;
        }
        (principals.len(), used)
    }

    /// Renders a group after a write, with its members only when there are at most
    /// `member_cap` of them: the response of a PATCH on a huge group never carries (or loads)
    /// the whole member list.
    pub async fn render_with_small_member_list(
        &self,
        admin: &AccountAdmin,
        principal: &Principal,
        base_url: &str,
        projection: &Projection,
        member_cap: usize,
    ) -> ScimResult<DocumentJson> {
        let (account, reader) = (admin.account(), admin.reader());
        self.render_capped(
            account, &reader, principal, base_url, projection, member_cap,
        )
        .await
    }

    /// [`Services::render_with_small_member_list`] for a manager's write: the principal it
    /// manages, read whole (a group manager sees the members it manages).
    pub async fn render_managed(
        &self,
        manager: &PrincipalManager,
        principal: &Principal,
        base_url: &str,
        projection: &Projection,
        member_cap: usize,
    ) -> ScimResult<DocumentJson> {
        let reader = DirectoryReader {
            actor: manager.actor().clone(),
            full_view: true,
        };
        let account = manager.actor().account();
        self.render_capped(
            account, &reader, principal, base_url, projection, member_cap,
        )
        .await
    }

    async fn render_capped(
        &self,
        account: &AccountId,
        reader: &DirectoryReader,
        principal: &Principal,
        base_url: &str,
        projection: &Projection,
        member_cap: usize,
    ) -> ScimResult<DocumentJson> {
        if principal.kind != PrincipalKind::Group || !projection.includes("members") {
            return self
                .render_one(reader, principal, base_url, projection)
                .await;
        }
        // The engine already holds this node's own commits: when it counts more than the cap,
        // the member list is left out without reading (and counting) a cap's worth of rows.
        // Its count may lag another node's changes; the cases it cannot settle are counted
        // in storage as before.
        let known_too_many = self
            .access
            .read(account, |model| model.direct_member_count(&principal.id))
            .is_ok_and(|count| count.is_ok_and(|count| count > member_cap));
        let members = if known_too_many {
            None
        } else {
            self.store
                .members_up_to(account, &principal.id, member_cap)
                .await?
        };
        let members = match members {
            Some(members) if !projection.requests("members", "display") => Some(
                members
                    .into_iter()
                    .map(|member| MemberRef {
                        display: None,
                        ..member
                    })
                    .collect(),
            ),
            other => other,
        };
        let groups = if projection.includes("groups") {
            self.groups_of(account, std::slice::from_ref(&principal.id))
                .await?
                .remove(&principal.id)
        } else {
            None
        };
        let (mut members, mut groups) = self.within_workspace_of(
            &reader.actor,
            members
                .map(|members| HashMap::from([(principal.id.clone(), members)]))
                .unwrap_or_default(),
            groups
                .map(|groups| HashMap::from([(principal.id.clone(), groups)]))
                .unwrap_or_default(),
            projection.requests("members", "display"),
        );
        let (members, groups) = (members.remove(&principal.id), groups.remove(&principal.id));
        let document = Document {
            principal,
            base_url,
            members: members.as_deref(),
            groups: groups.as_deref(),
        };
        DocumentJson::write(document, projection)
    }

    /// What a document rendered for an actor in a workspace may name: only members and groups
    /// of that workspace's directory (and the built-in groups), so that a group's member list
    /// or a user's groups never show principals of the account that the workspace does not
    /// hold. Outside a workspace everything is kept.
    fn within_workspace_of(
        &self,
        actor: &Actor,
        mut members: HashMap<PrincipalId, Vec<MemberRef>>,
        mut groups: HashMap<PrincipalId, Vec<GroupRef>>,
        with_display: bool,
    ) -> (
        HashMap<PrincipalId, Vec<MemberRef>>,
        HashMap<PrincipalId, Vec<GroupRef>>,
    ) {
        let Some(workspace) = actor.workspace() else {
            return (members, groups);
        };
        let filtered = self.access.read(actor.account(), |model| {
            for list in members.values_mut() {
                list.retain(|member| model.in_workspace(workspace, &member.id));
            }
            for list in groups.values_mut() {
                // The built-in groups belong to every workspace; their names are reserved.
                list.retain(|group| {
                    matches!(group.display.as_deref(), Some("admins" | "users"))
                        || model.in_workspace(workspace, &group.id)
                });
            }
            with_workspace_admins(model, workspace, &mut members, &mut groups, with_display);
        });
        if filtered.is_err() {
            // No model of the account: show nothing rather than everything.
            members.values_mut().for_each(Vec::clear);
            groups.values_mut().for_each(Vec::clear);
        }
        (members, groups)
    }

    /// The `groups` attribute of each principal: its direct and inherited groups, read from
    /// the access engine's group graph (current with this node's commits) rather than walked
    /// in the database. A principal the engine does not know yet (made elsewhere a moment
    /// ago) is read from storage.
    async fn groups_of(
        &self,
        account: &AccountId,
        principals: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<GroupRef>>> {
        let mut found = HashMap::with_capacity(principals.len());
        let mut unknown = Vec::new();
        let known = self.access.read(account, |model| {
            for principal in principals {
                match model.groups_of(principal) {
                    Ok(memberships) => {
                        let mut groups: Vec<GroupRef> = memberships
                            .into_iter()
                            .map(|membership| GroupRef {
                                id: membership.group.id,
                                display: Some(membership.group.name),
                                direct: membership.direct,
                            })
                            .collect();
                        // The order storage gives: by name ignoring case, then id.
                        groups.sort_by_cached_key(|group| {
                            (group.display.as_deref().map(fold_case), group.id.clone())
                        });
                        found.insert(principal.clone(), groups);
                    }
                    Err(_) => unknown.push(principal.clone()),
                }
            }
        });
        if known.is_err() {
            // An account this node has no model for yet: storage answers for all of them.
            found.clear();
            unknown = principals.to_vec();
        }
        if !unknown.is_empty() {
            found.extend(self.store.groups_of(account, &unknown).await?);
        }
        Ok(found)
    }

    pub async fn render_one(
        &self,
        reader: &DirectoryReader,
        principal: &Principal,
        base_url: &str,
        projection: &Projection,
    ) -> ScimResult<DocumentJson> {
        let mut rendered = self
            .render_all(
                reader,
                std::slice::from_ref(principal),
                base_url,
                projection,
            )
            .await?;
        rendered
            .pop()
            .ok_or_else(|| ScimError::internal("rendering returned nothing"))
    }
}

/// Which API a directory read comes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// A workspace's SCIM API (and the generic `/scim/v2`): every principal of the account may
    /// look others up by name, as Databricks lets workspace users do.
    Workspace,
    /// Databricks' account API, which is for account admins.
    Account,
}

/// What an actor may read of its account's directory, decided once per request by
/// [`Services::directory_reader`] (or given by an [`AccountAdmin`]).
#[derive(Debug, Clone)]
pub struct DirectoryReader {
    actor: Actor,
    /// Admins see documents whole; anyone else sees the limited view (see
    /// [`limited_projection`]) of everyone but themselves.
    full_view: bool,
}

impl AccountAdmin {
    /// An admin reads the whole directory.
    pub fn reader(&self) -> DirectoryReader {
        DirectoryReader {
            actor: self.actor().clone(),
            full_view: true,
        }
    }
}

/// The attributes a non-admin sees of other principals, as Databricks shows workspace users:
/// the id and the names people and tools look each other up by. Nothing else (emails,
/// `active`, members, groups, entitlements, external ids) is shown.
pub const LIMITED_VIEW_ATTRIBUTES: [&str; 4] = ["id", "userName", "displayName", "applicationId"];

fn limited_projection(kind: PrincipalKind) -> Projection {
    // Names a resource type lacks (applicationId for a user) are skipped by the parser.
    Projection::parse(
        kind.resource_type(),
        Some(&LIMITED_VIEW_ATTRIBUTES.join(",")),
        None,
    )
    .unwrap_or_else(|_| Projection::everything())
}

/// A reader with the limited view may filter and sort only by what it can see, so that it
/// cannot learn a hidden attribute by searching on it (`emails.value eq "..."`).
fn ensure_limited_query(query: &ListQuery) -> ScimResult<()> {
    let visible = |attribute: &ResolvedAttr| {
        attribute.sub_attribute.is_none()
            && !matches!(attribute.home, AttributeHome::Extension(_))
            && LIMITED_VIEW_ATTRIBUTES.contains(&attribute.attribute.name)
    };
    let mut named = Vec::new();
    if let Some(filter) = &query.filter {
        filter_attributes(filter, &mut named);
    }
    named.extend(query.sort_by.iter());
    match named.into_iter().find(|attribute| !visible(attribute)) {
        None => Ok(()),
        Some(hidden) => Err(ScimError::Forbidden(format!(
            "only admins may filter or sort by '{}': other principals may search by {}",
            hidden.leaf().name,
            LIMITED_VIEW_ATTRIBUTES.join(", ")
        ))),
    }
}

/// Every attribute a filter names, in the order written.
fn filter_attributes<'f>(filter: &'f ResolvedFilter, into: &mut Vec<&'f ResolvedAttr>) {
    match filter {
        ResolvedFilter::Present(attribute) | ResolvedFilter::Compare(attribute, _, _) => {
            into.push(attribute)
        }
        // `emails[type eq "work"]` names `emails` (and its sub-attributes): hidden as a whole.
        ResolvedFilter::ValuePath(attribute, inner) => {
            into.push(attribute);
            filter_attributes(inner, into);
        }
        ResolvedFilter::And(left, right) | ResolvedFilter::Or(left, right) => {
            filter_attributes(left, into);
            filter_attributes(right, into);
        }
        ResolvedFilter::Not(inner) => filter_attributes(inner, into),
    }
}

/// A principal of the kind an endpoint serves; one of another kind is "not found" there.
fn of_kind(
    principal: Option<Principal>,
    kind: PrincipalKind,
    id: &PrincipalId,
) -> ScimResult<Principal> {
    match principal {
        Some(principal) if principal.kind == kind => Ok(principal),
        _ => Err(not_found(kind, id)),
    }
}

/// The error for a principal missing at an endpoint of `kind`: absent, or of another kind.
pub(crate) fn not_found(kind: PrincipalKind, id: &PrincipalId) -> ScimError {
    ScimError::NotFound(format!("{} {id} not found", kind.as_str()))
}

/// A resource's SCIM document as JSON text, ready to send.
#[derive(Debug, Clone)]
pub struct DocumentJson(String);

impl DocumentJson {
    /// Writes `document` with `projection` applied: straight from the principal when the
    /// projection keeps everything (every plain GET, POST and PUT), which copies nothing;
    /// otherwise as a map the projection edits.
    fn write(document: Document<'_>, projection: &Projection) -> ScimResult<Self> {
        let text = if projection.keeps_everything() {
            serde_json::to_string(&document)
        } else {
            let mut map = document.to_map();
            projection.apply(&mut map);
            serde_json::to_string(&map)
        };
        // Cannot fail (the document is a map of strings and JSON values); an error here is a
        // bug, reported as one rather than sent as a broken body.
        text.map(DocumentJson)
            .map_err(|error| ScimError::internal(format!("rendering a document: {error}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// PUT replaces the document, except what a client cannot send back: immutable attributes keep
/// their value (and may not change), and `active` keeps its value when omitted, so that a PUT
/// built without it (as some Okta apps do) does not silently deactivate someone.
fn keep_on_replace(current: &Principal, attributes: &mut Map<String, Value>) -> ScimResult<()> {
    for definition in current.kind.resource_type().schema.attributes {
        if definition.mutability != scimitar_domain::schema::Mutability::Immutable {
            continue;
        }
        match (
            current.attributes.get(definition.name),
            attributes.get(definition.name),
        ) {
            (Some(old), Some(new)) if old != new => {
                return Err(ScimError::mutability(format!(
                    "'{}' is immutable",
                    definition.name
                )))
            }
            (Some(old), None) => {
                attributes.insert(definition.name.to_string(), old.clone());
            }
            _ => {}
        }
    }
    if current.kind != PrincipalKind::Group && !attributes.contains_key("active") {
        if let Some(active) = current.attributes.get("active") {
            attributes.insert("active".to_string(), active.clone());
        }
    }
    Ok(())
}

fn check_system_group_rename(
    current: &Principal,
    attributes: &Map<String, Value>,
) -> ScimResult<()> {
    if current.system && attributes.get("displayName") != current.attributes.get("displayName") {
        return Err(ScimError::mutability(format!(
            "the built-in group '{}' cannot be renamed",
            current.display_name().unwrap_or_default()
        )));
    }
    Ok(())
}

/// Who a replace or patch is written by, with the capability that allowed it.
#[derive(Clone, Copy)]
enum Writer<'a> {
    Admin(&'a AccountAdmin),
    Manager(&'a PrincipalManager),
}

impl<'a> Writer<'a> {
    /// The workspace the write is made through, whose entitlements it reads and writes.
    fn workspace(self) -> Option<&'a WorkspaceId> {
        match self {
            Writer::Admin(admin) => admin.actor().workspace(),
            Writer::Manager(manager) => manager.actor().workspace(),
        }
    }
}

impl Services {
    /// What a writer may reach: an admin's scope (`check_write_scope`); for a manager acting
    /// in a workspace, the principals that workspace holds (others are not found, as for its
    /// admins), and never an account admin unless the manager is one (managing a service
    /// principal that is an account admin would let a non-admin rename or deactivate it).
    fn check_writer_scope(
        &self,
        writer: Writer<'_>,
        kind: PrincipalKind,
        target: &Principal,
    ) -> ScimResult<()> {
        let manager = match writer {
            Writer::Admin(admin) => return self.check_write_scope(admin, kind, target),
            Writer::Manager(manager) => manager,
        };
        let actor = manager.actor();
        if !self.in_scope(actor, target) {
            return Err(not_found(kind, &target.id));
        }
        let target_is_account_admin = self.access.read(actor.account(), |model| {
            crate::authority::is_admin(model, &target.id)
        })?;
        if target_is_account_admin {
            return Err(not_an_admin(actor, "change an admin of the account"));
        }
        Ok(())
    }
}

/// A manager who is not an admin changes only what [`authority::MANAGER_MAY_CHANGE`] names
/// (members are not attributes, and only groups have them); anything else is refused whole
/// with 403, naming the first attribute it may not change.
fn check_manager_change(
    manager: &PrincipalManager,
    current: &Principal,
    attributes: &Map<String, Value>,
    changes_password: bool,
) -> ScimResult<()> {
    let refuse = |what: &str| {
        Err(ScimError::Forbidden(format!(
            "principal {} manages {} but is not an admin: it may change its {} only, not {what}",
            manager.actor().principal(),
            current.id,
            crate::authority::MANAGER_MAY_CHANGE.join(", "),
        )))
    };
    if changes_password {
        return refuse("password");
    }
    let keys = current.attributes.keys().chain(attributes.keys());
    for key in keys {
        let changed = current.attributes.get(key) != attributes.get(key);
        let allowed = crate::authority::MANAGER_MAY_CHANGE.contains(&key.as_str())
            && !(key == "active" && current.kind == PrincipalKind::Group);
        if changed && !allowed {
            return refuse(key);
        }
    }
    Ok(())
}

/// Everyone is in `users`; its membership follows principals' lifecycles, not client edits.
fn check_system_group_membership(
    current: &Principal,
    membership: &[MembershipStep],
) -> ScimResult<()> {
    if current.system && current.display_name() == Some("users") && !membership.is_empty() {
        return Err(ScimError::mutability(
            "the membership of the built-in 'users' group is managed by the server: every user and service principal belongs to it",
        ));
    }
    Ok(())
}

/// The workspace's `admins` group follows `ADMIN` assignment, as in Databricks: rendered in a
/// workspace, `admins` lists, besides those of its stored members the workspace holds (the
/// account admins, who administer every workspace), the principals assigned `ADMIN` there
/// themselves; and a principal an `ADMIN` assignment reaches lists `admins` among its groups,
/// directly when it is assigned itself. Stored membership of `admins` stays the account
/// admins' alone: assignment, not membership, makes a workspace admin.
fn with_workspace_admins(
    model: &AccessModel,
    workspace: &WorkspaceId,
    members: &mut HashMap<PrincipalId, Vec<MemberRef>>,
    groups: &mut HashMap<PrincipalId, Vec<GroupRef>>,
    with_display: bool,
) {
    let Some(admins) = model.admins_group() else {
        return;
    };
    if let Some(listed) = members.get_mut(&admins.id) {
        for assignee in model.admin_assignees(workspace) {
            if !listed.iter().any(|member| member.id == assignee.id) {
                listed.push(MemberRef {
                    id: assignee.id,
                    kind: assignee.kind,
                    display: with_display.then_some(assignee.name),
                });
            }
        }
    }
    for (principal, list) in groups.iter_mut() {
        let Some(direct) = model.admin_assignment(workspace, principal) else {
            continue;
        };
        match list.iter_mut().find(|group| group.id == admins.id) {
            Some(listed) => listed.direct |= direct,
            None => {
                let at = list
                    .iter()
                    .position(|group| {
                        group.display.as_deref().map(fold_case) > Some(fold_case(&admins.name))
                    })
                    .unwrap_or(list.len());
                list.insert(
                    at,
                    GroupRef {
                        id: admins.id.clone(),
                        display: Some(admins.name.clone()),
                        direct,
                    },
                );
            }
        }
    }
}
