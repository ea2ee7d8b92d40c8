//! Scimitar's storage: the narrow [`Store`] trait, its SQLite and PostgreSQL backends over one
//! shared SQL write path, and the conformance suite that every backend must pass.
//!
//! # Layout
//! - this file: the trait and the types that cross it.
//! - [`change`]: [`Change`], the one way anything is written. Every mutation of stored state
//!   passes through [`Store::apply_audited`], which writes its audit event in the same
//!   transaction.
//! - [`audit`]: the audit trail's types: the context a caller gives with a change, the event
//!   the store writes in the change's transaction, and the account's Merkle head.
//! - [`governance`]: securables, grants and workspace-object ACLs as stored, and the access
//!   log that the in-memory access engine follows.
//! - [`sql`]: everything the SQL backends share. The meaning of every [`Change`] (its rows, its
//!   rules, its access-log entries) and every read are written there once, against a session
//!   trait, so the two backends cannot drift apart; the translation of resolved SCIM filters
//!   and sorts into SQL lives there too.
//! - [`listing`]: finishing a list in memory when a filter is not fully expressible in SQL.
//! - [`sqlite`]: the embedded SQLite backend (the default): connections, the writer thread
//!   with its group commit, and the session the shared SQL runs on.
//! - [`postgres`]: the PostgreSQL backend, for several nodes sharing one database: the pool,
//!   the advisory locks that keep those nodes correct, and retries of aborted transactions.
//! - [`migrations`]: the numbered, forward-only schema migrations.
//! - [`sync_state`]: `scimitar sync` jobs' mappings, watermarks and run history.
//! - [`transfer`]: export to and import from JSON Lines, how a deployment moves between stores.
//! - `conformance` (with the `testing` feature): the backend-independent test suite, one test
//!   per case and backend, kept out of the library the server links.
//!
//! Invariant: storage never sees wire JSON or HTTP; it receives validated domain values.

pub mod alerts;
pub mod audit;
pub mod change;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod federation;
pub mod governance;
pub mod listing;
pub mod migrations;
pub mod oauth;
pub mod postgres;
pub mod sql;
pub mod sqlite;
pub mod sync_state;
pub mod transfer;

pub use audit::{
    AuditContext, AuditEvent, AuditHead, AuditKeySeed, AuditTarget, Refusal, StoredAuditEvent,
    UserIdentity,
};
pub use change::{Change, FirstAdmin, NewToken, RuleSetRows};
pub use federation::{ExchangedToken, FederationPolicy, OidcPolicy};
pub use governance::{
    AccessEvent, AccessSnapshot, AclRow, BindingRow, GovernanceChange, GrantRow, LoggedEvent,
    ObjectRow, PrincipalFacts, SecurableRow, WorkspaceEntry,
};
pub use oauth::{OAuthSecret, SigningKey, StoredOAuthSecret};
use scimitar_access::{ObjectType, SecurableType};
pub use sql::write::RULE_SET_CHANGED;
pub use sync_state::{
    SyncAudit, SyncAuditEvent, SyncJobState, SyncJobSummary, SyncLease, SyncMappingRow,
    SyncQuarantine, SyncRunRecord, SyncRunSummary, SyncStateChange, SYNC_PLAN_LISTS,
    SYNC_RUN_RESUMED,
};
pub use transfer::{AssignmentRow, EntitlementRow, ImportRecord, MembershipRow, TokenRow};

use async_trait::async_trait;
use scimitar_domain::credentials::Token;
use scimitar_domain::query::ListQuery;
use scimitar_domain::render::{GroupRef, MemberRef};
use scimitar_domain::{
    AccountId, Principal, PrincipalId, PrincipalKind, ScimResult, Timestamp, WorkspaceId,
};
use std::collections::HashMap;
use std::sync::Arc;

/// How deep groups may nest. Walks over the membership graph stop here, so their cost is
/// bounded whatever the data; real directories rarely nest beyond a handful of levels.
pub const MAX_GROUP_NESTING_DEPTH: usize = 32;

/// Whether this build writes no audit event (the `unaudited-for-benchmarks` feature, for
/// issue #16's write benchmark only). `scimitar serve` refuses to start quietly in such a build.
pub const AUDIT_TRAIL_COMPILED_OUT: bool = cfg!(feature = "unaudited-for-benchmarks");

/// An account: the unit of isolation. Every row in storage carries its account's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created: Timestamp,
}

/// A workspace of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub account: AccountId,
    pub name: String,
    pub created: Timestamp,
    /// The name a workspace is reached by as a host (`{deployment_name}.{workspace domain}`),
    /// unique in the deployment. Workspaces made before it existed have none.
    pub deployment_name: Option<String>,
}

/// Which tokens of an account [`Store::tokens_where`] reads; each field given narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenQuery {
    pub id: Option<String>,
    /// Tokens made in this workspace (account-level tokens belong to none).
    pub workspace: Option<WorkspaceId>,
    /// Tokens that authenticate this principal.
    pub owner: Option<PrincipalId>,
    /// Tokens made by this principal: by `created_by`, or, where none is recorded, by
    /// their owner.
    pub created_by: Option<PrincipalId>,
}

/// A live token as the token management API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: Token,
    /// When a node last recorded its use (at most once a minute per token and node).
    pub last_used: Option<Timestamp>,
}

/// One page of a list, with the total number of matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub total_results: u64,
    pub principals: Vec<Principal>,
}

/// The storage interface. Reads are plain methods; every write is a [`Change`] given to
/// [`Store::apply`], applied atomically or not at all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Every account, oldest first.
    async fn accounts(&self) -> ScimResult<Vec<Account>>;
    async fn workspaces(&self, account: &AccountId) -> ScimResult<Vec<Workspace>>;

    /// A principal as the account sees it: its document without `entitlements`, which
    /// belong to workspaces ([`Store::principal_in`]).
    async fn principal(
        &self,
        account: &AccountId,
        id: &PrincipalId,
    ) -> ScimResult<Option<Principal>>;
    /// A principal as `workspace` sees it: its document with the `entitlements` it holds
    /// itself there (none: no such attribute), read in the same query.
    async fn principal_in(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        id: &PrincipalId,
    ) -> ScimResult<Option<Principal>>;
    /// The principal with this exact userName (users), displayName (groups) or applicationId
    /// (service principals), compared ignoring case.
    async fn principal_by_name(
        &self,
        account: &AccountId,
        kind: PrincipalKind,
        name: &str,
    ) -> ScimResult<Option<Principal>>;
    /// Lists principals of a kind: filtered, sorted and paged as the query says.
    async fn list_principals(
        &self,
        account: &AccountId,
        kind: PrincipalKind,
        query: &ListQuery,
    ) -> ScimResult<Page>;
    /// [`Store::list_principals`] within one workspace's directory: the principals assigned
    /// to it, the members of assigned groups (through nested groups), and the system groups,
    /// each with its `entitlements` there (as [`Store::principal_in`]), which a filter on
    /// them reads.
    async fn list_workspace_principals(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        kind: PrincipalKind,
        query: &ListQuery,
    ) -> ScimResult<Page>;
    /// A workspace by its id, in whichever account holds it (requests address workspaces by
    /// id alone; the caller then acts only in that account).
    async fn workspace(&self, id: &WorkspaceId) -> ScimResult<Option<Workspace>>;
    /// A workspace by its deployment name, compared ignoring ASCII case (host names are).
    async fn workspace_by_deployment_name(&self, name: &str) -> ScimResult<Option<Workspace>>;
    /// The direct members of each group given.
    async fn members(
        &self,
        account: &AccountId,
        groups: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<MemberRef>>>;
    /// The direct members of each group given, without their display names: the membership
    /// rows alone, no read of each member's own row (a million of them for a full read of a
    /// large directory's groups, where a list shows no `display` unless asked).
    async fn member_ids(
        &self,
        account: &AccountId,
        groups: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<MemberRef>>>;
    /// A group's direct members when it has at most `cap` of them, `None` when it has more,
    /// for responses that show a member list only when it is small. Deciding costs at most
    /// `cap + 1` index entries, whatever the size of the group.
    async fn members_up_to(
        &self,
        account: &AccountId,
        group: &PrincipalId,
        cap: usize,
    ) -> ScimResult<Option<Vec<MemberRef>>>;
    /// The groups each principal given belongs to, directly or through nested groups (at most
    /// [`MAX_GROUP_NESTING_DEPTH`] levels up).
    async fn groups_of(
        &self,
        account: &AccountId,
        principals: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<GroupRef>>>;

    /// The token whose secret has this digest, if it exists and is not revoked.
    async fn token_by_digest(&self, digest: &str) -> ScimResult<Option<Token>>;
    /// The live (not revoked) tokens of an account that `query` selects, by creation then id,
    /// with when each was last used.
    async fn tokens_where(
        &self,
        account: &AccountId,
        query: &TokenQuery,
    ) -> ScimResult<Vec<TokenRecord>>;
    /// A service principal's OAuth secrets (with their digests), oldest first.
    async fn oauth_secrets(
        &self,
        account: &AccountId,
        principal: &PrincipalId,
    ) -> ScimResult<Vec<StoredOAuthSecret>>;
    /// An account's access-token signing keys, newest first.
    async fn signing_keys(&self, account: &AccountId) -> ScimResult<Vec<SigningKey>>;
    /// Federation policies of the account (`service_principal` `None`) or of one service
    /// principal, oldest first.
    async fn federation_policies(
        &self,
        account: &AccountId,
        service_principal: Option<&PrincipalId>,
    ) -> ScimResult<Vec<FederationPolicy>>;
    /// A federation policy by its uid, whoever owns it.
    async fn federation_policy(
        &self,
        account: &AccountId,
        uid: &str,
    ) -> ScimResult<Option<FederationPolicy>>;
    /// The settings stored for a workspace (the workspace-conf API), by name.
    async fn workspace_settings(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
    ) -> ScimResult<Vec<(String, String)>>;

    /// An account's whole access state, consistent as of one access-log position.
    async fn access_snapshot(&self, account: &AccountId) -> ScimResult<AccessSnapshot>;
    /// Access-log entries after `seq`, of every account, oldest first, at most `limit`.
    async fn access_log_after(&self, seq: u64, limit: usize) -> ScimResult<Vec<LoggedEvent>>;
    async fn securable(
        &self,
        account: &AccountId,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<Option<SecurableRow>>;
    /// Securables of a type, by name; with `parent`, only those below it (`main` or
    /// `main.sales`).
    async fn securables(
        &self,
        account: &AccountId,
        securable_type: SecurableType,
        parent: Option<&str>,
    ) -> ScimResult<Vec<SecurableRow>>;

    /// The object at this path of `workspace`'s tree, if any.
    async fn workspace_entry(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        path: &str,
    ) -> ScimResult<Option<WorkspaceEntry>>;
    /// The object of `workspace`'s tree with this type and id, if that tree holds it (objects
    /// known only from their ACL, such as jobs, are in no tree).
    async fn workspace_entry_by_id(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        object_type: ObjectType,
        object_id: &str,
    ) -> ScimResult<Option<WorkspaceEntry>>;
    /// The workspace a registered object (in a tree or known from its ACL) belongs to.
    async fn object_workspace(
        &self,
        account: &AccountId,
        object_type: ObjectType,
        object_id: &str,
    ) -> ScimResult<Option<WorkspaceId>>;
    /// The objects with a path directly in `directory` (`None`: the root) of `workspace`'s
    /// tree, by path.
    async fn workspace_entries_in(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        directory: Option<&str>,
    ) -> ScimResult<Vec<WorkspaceEntry>>;

    /// An access-control rule set (by its stored resource name, see [`RuleSetRows`]): its
    /// version (0 when never written) and its `(role, principal)` grants, by role then
    /// principal.
    async fn rule_set(
        &self,
        account: &AccountId,
        resource: &str,
    ) -> ScimResult<(u64, Vec<(String, PrincipalId)>)>;

    /// Every rule set of an account that was ever written, by resource, with its version:
    /// for export.
    async fn rule_sets(&self, account: &AccountId) -> ScimResult<Vec<(RuleSetRows, u64)>>;

    /// Up to `limit` of an account's principals, by id, starting after `after`: keyset pages
    /// for export, each a range of the primary key however far in.
    async fn principals_page(
        &self,
        account: &AccountId,
        after: Option<&PrincipalId>,
        limit: usize,
    ) -> ScimResult<Vec<Principal>>;
    /// Up to `limit` of an account's direct memberships, by group then member, starting after
    /// the one given (the last of the previous page).
    async fn memberships_page(
        &self,
        account: &AccountId,
        after: Option<&MembershipRow>,
        limit: usize,
    ) -> ScimResult<Vec<MembershipRow>>;
    /// Every token of an account, revoked ones included, with its secret's digest.
    async fn tokens(&self, account: &AccountId) -> ScimResult<Vec<TokenRow>>;
    /// What each principal of an account holds itself in each workspace, by workspace then
    /// principal: for export.
    async fn entitlements(&self, account: &AccountId) -> ScimResult<Vec<EntitlementRow>>;

    /// Applies one change atomically, together with its access-log entries and its audit
    /// event, which records `context` (who, from where, when): the change commits if and only
    /// if its event does.
    async fn apply_audited(
        &self,
        account: &AccountId,
        change: Change,
        context: AuditContext,
    ) -> ScimResult<()>;

    /// [`Store::apply_audited`] for a change nobody is known to have made (the store's own
    /// tests, tools at the database): its event is written all the same, unattributed.
    async fn apply(&self, account: &AccountId, change: Change) -> ScimResult<()> {
        self.apply_audited(account, change, AuditContext::unattributed())
            .await
    }

    /// Up to `limit` events of an account's audit trail after position `after`, in order, as
    /// stored (the exact text that was hashed).
    async fn audit_events(
        &self,
        account: &AccountId,
        after: u64,
        limit: usize,
    ) -> ScimResult<Vec<StoredAuditEvent>>;
    /// The stored leaf hashes of an account's first `size` events, in order: what inclusion
    /// and consistency proofs are computed from.
    async fn audit_leaves(&self, account: &AccountId, size: u64) -> ScimResult<Vec<[u8; 32]>>;
    /// Where an account's trail stands: its size, frontier and root.
    async fn audit_head(&self, account: &AccountId) -> ScimResult<AuditHead>;
    /// Where a pruned trail's kept events start: the size, frontier and root of the tree of
    /// the events retention removed ([`Change::PruneAuditTrail`]); `None` if none were.
    async fn audit_pruned(&self, account: &AccountId) -> ScimResult<Option<AuditHead>>;
    /// The deployment's checkpoint signing seed, once one was made
    /// ([`Change::EnsureAuditKey`]).
    async fn audit_signing_seed(&self) -> ScimResult<Option<AuditKeySeed>>;

    /// A `scimitar sync` job's mappings and watermark (empty for a job never run).
    async fn sync_state(&self, job: &str) -> ScimResult<SyncJobState>;
    /// Who holds a sync job's lease, and until when (`None`: nobody ever took it, or it was
    /// given up): [`Store::sync_state`]'s lease alone, read on every turn of a `watch` without
    /// the job's mappings.
    async fn sync_lease(&self, job: &str) -> ScimResult<Option<(String, Timestamp)>>;
    /// A sync job's latest `limit` runs, newest first.
    async fn sync_runs(&self, job: &str, limit: usize) -> ScimResult<Vec<SyncRunRecord>>;
    /// Every sync state key whose job answers to `account`, by key, each with its latest run.
    async fn sync_jobs(&self, account: &AccountId) -> ScimResult<Vec<SyncJobSummary>>;
    /// An account's alert rules, by creation then id (with their secrets: for the evaluator).
    async fn alert_rules(&self, account: &AccountId) -> ScimResult<Vec<alerts::StoredAlertRule>>;
    /// An account's alert evaluation cursor and lease, once evaluation started there.
    async fn alert_cursor(&self, account: &AccountId) -> ScimResult<Option<alerts::AlertCursor>>;
    /// An account's events with `seq <= through` and a time after `since`, in order, at most
    /// `limit`: the window a window rule re-reads.
    async fn alert_window(
        &self,
        account: &AccountId,
        since: Timestamp,
        through: u64,
        limit: usize,
    ) -> ScimResult<Vec<StoredAuditEvent>>;
    /// Undelivered alert deliveries of every account due at `now`, at most `limit`.
    async fn alert_deliveries_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> ScimResult<Vec<alerts::AlertDelivery>>;
    /// An account's alert outbox, delivered or not.
    async fn alert_deliveries(&self, account: &AccountId)
        -> ScimResult<Vec<alerts::AlertDelivery>>;

    /// Whether the store can serve requests now: the database answers and its schema has every
    /// migration this build knows. Backs `/readyz`.
    async fn ready(&self) -> Result<(), NotReady>;

    /// The connection pool's state now, for metrics; `None` for a backend without a pool of
    /// network connections (SQLite).
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
}

/// A connection pool's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// The most connections the pool opens.
    pub max_size: usize,
    /// Connections open now, in use or idle.
    pub open: usize,
    /// Open connections idle now.
    pub idle: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

/// Why a store cannot serve requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The database did not answer; the text is the cause, for logs.
    Unreachable(String),
    /// The schema lacks migrations this build needs (another node may be migrating it, or
    /// `scimitar migrate` has not run).
    MigrationsBehind { applied: i64, expected: i64 },
    /// The database answers reads but recent writes failed because it cannot take them (a
    /// full disk, say); the text is the cause, for logs.
    WritesFailing(String),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Unreachable(cause) => {
                write!(formatter, "the database is unreachable: {cause}")
            }
            NotReady::MigrationsBehind { applied, expected } => write!(
                formatter,
                "the database schema is at version {applied}; this build needs version {expected}"
            ),
            NotReady::WritesFailing(cause) => {
                write!(formatter, "writes to the database are failing: {cause}")
            }
        }
    }
}

pub type SharedStore = Arc<dyn Store>;

/// How to open a store, beyond its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The most database connections the store holds (PostgreSQL's pool; SQLite keeps its
    /// one writer and few readers).
    pub max_connections: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: postgres::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Which backend a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend<'a> {
    /// `sqlite://PATH`, `sqlite:PATH`, or a plain file path.
    Sqlite(&'a str),
    /// `postgres://...` or `postgresql://...`, passed to the driver whole.
    Postgres(&'a str),
}

impl<'a> Backend<'a> {
    pub fn of(url: &'a str) -> ScimResult<Backend<'a>> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(Backend::Sqlite(path));
        }
        // Anything else with a scheme is a database we do not support; without one, a path.
        if url.is_empty() || url.contains("://") {
            return Err(scimitar_domain::ScimError::invalid_value(format!(
                "unsupported database URL '{url}': use sqlite://PATH or postgres://USER@HOST/DATABASE"
            )));
        }
        Ok(Backend::Sqlite(url))
    }
}

/// Opens the store a database URL names (see [`Backend::of`]) with default options, bringing
/// its schema up to date.
pub async fn open(url: &str) -> ScimResult<SharedStore> {
    open_with(url, &StoreOptions::default()).await
}

/// Opens the store a database URL names, bringing its schema up to date.
pub async fn open_with(url: &str, options: &StoreOptions) -> ScimResult<SharedStore> {
    Ok(match Backend::of(url)? {
        Backend::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path).await?),
        Backend::Postgres(url) => {
            Arc::new(postgres::PostgresStore::connect(url, options.max_connections).await?)
        }
    })
}

/// Brings the schema of the database a URL names up to date and returns its version. Safe to
/// run while other nodes start or serve: each backend serialises its migrations.
pub async fn migrate(url: &str, options: &StoreOptions) -> ScimResult<i64> {
    match Backend::of(url)? {
        Backend::Sqlite(path) => {
            sqlite::SqliteStore::open(path).await?;
            Ok(migrations::latest(migrations::SQLITE_MIGRATIONS))
        }
        Backend::Postgres(url) => {
            // Migrating needs one connection, whatever the pool size configured for serving.
            let store =
                postgres::PostgresStore::connect(url, options.max_connections.min(2)).await?;
            store.migrate().await
        }
    }
}
