//! The one [`Store`] implementation of the SQL backends: every read and write is the shared
//! SQL of [`crate::sql::read`] and [`crate::sql::write`], run on a session the backend hands
//! out ([`SqlBackend`]). What a backend implements is only how it runs work: on which
//! connection, on which thread, in which kind of transaction.

use crate::audit::{AuditContext, AuditHead, AuditKeySeed, StoredAuditEvent};
use crate::change::Change;
use crate::governance::{AccessSnapshot, LoggedEvent, SecurableRow, WorkspaceEntry};
use crate::migrations;
use crate::sql::list_anchors::ListAnchors;
use crate::sql::read;
use crate::sql::transaction::{SqlFuture, SqlTransaction};
use crate::transfer::{EntitlementRow, MembershipRow, TokenRow};
use crate::{Account, NotReady, Page, PoolStatus, Store, Workspace};
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use scimitar_access::{ObjectType, SecurableType};
use scimitar_domain::credentials::Token;
use scimitar_domain::query::ListQuery;
use scimitar_domain::render::{GroupRef, MemberRef};
use scimitar_domain::{
    AccountId, Principal, PrincipalId, PrincipalKind, ScimError, ScimResult, WorkspaceId,
};
use std::collections::HashMap;
use std::sync::Arc;

/// How a read may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A few index entries whatever the data (a lookup by key): cheap enough to run where it
    /// is asked for when a connection is free at once.
    Point,
    /// As large as the client makes it (a list, a whole member list, an export page).
    Bulk,
    /// Several queries that must see one committed state (an access snapshot).
    Consistent,
}

/// Work for a backend's session: a shared read, boxed so that it can borrow the session it is
/// given, owning everything else (it may move to another thread).
pub(crate) trait Work<B: SqlBackend + ?Sized, T>:
    for<'s> FnOnce(&'s mut B::Session<'s>) -> BoxFuture<'s, ScimResult<T>> + Send + 'static
{
}

impl<B, T, W> Work<B, T> for W
where
    B: SqlBackend + ?Sized,
    W: for<'s> FnOnce(&'s mut B::Session<'s>) -> BoxFuture<'s, ScimResult<T>> + Send + 'static,
{
}

/// What a SQL backend provides to the shared [`Store`] implementation.
pub(crate) trait SqlBackend: Send + Sync + 'static {
    type Session<'s>: SqlTransaction + Send;
    /// This backend's migrations, which a ready schema has all applied.
    const MIGRATIONS: &'static [(i64, &'static str)];

    /// Runs `work` on a session for reads.
    fn read<T: Send + 'static>(&self, kind: Read, work: impl Work<Self, T>) -> impl SqlFuture<T>;

    /// Applies one change in a transaction of its own (or of a group commit), durably, and
    /// returns once it is committed.
    fn write(
        &self,
        account: &AccountId,
        change: Change,
        context: AuditContext,
    ) -> impl SqlFuture<()>;

    /// How this backend's recent writes went, for readiness.
    fn write_health(&self) -> &WriteHealth;

    /// Where this store's large lists' pages begin ([`ListAnchors`]).
    fn list_anchors(&self) -> &Arc<ListAnchors>;

    /// See [`Store::pool_status`].
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
}

/// Whether writes have been failing because the database cannot take them (a full disk, an
/// unreachable server), which a node must report as not ready although reads may still work.
/// A write that succeeds clears it; without one it clears after [`WriteHealth::MEMORY`], so a
/// node that load balancers stopped sending writes to is tried again.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    last_failure: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

impl WriteHealth {
    /// How long a failed write keeps the node not ready when no write succeeds after it.
    pub const MEMORY: std::time::Duration = std::time::Duration::from_secs(30);

    fn record<T>(&self, outcome: &ScimResult<T>) {
        let failure = match outcome {
            Ok(_) => None,
            Err(error @ (ScimError::Unavailable(_) | ScimError::OutcomeUnknown(_))) => {
                Some((std::time::Instant::now(), cause_of(error)))
            }
            Err(_) => return, // the client's mistake, or a bug: the database took writes
        };
        if let Ok(mut last) = self.last_failure.lock() {
            *last = failure;
        }
    }

    /// The cause of the last failed write, if no write succeeded since and it is recent.
    fn failing(&self) -> Option<String> {
        let last = self.last_failure.lock().ok()?;
        match &*last {
            Some((when, cause)) if when.elapsed() < Self::MEMORY => Some(cause.clone()),
            _ => None,
        }
    }
}

/// Runs one shared read on a backend: `read!(self, Point, |session| read::principal(session,
/// &account, &id))`, the closure's captures owned (the work may move to another thread).
/// A list that pages from remembered keys reads the access log's position with its page, in
/// one snapshot; any other list is as large as the client makes it.
fn list_read(query: &ListQuery) -> Read {
    if read::anchored(query) {
        Read::Consistent
    } else {
        Read::Bulk
    }
}

macro_rules! run {
    ($backend:expr, $kind:ident, |$session:ident| $body:expr) => {
        $backend.read(Read::$kind, move |$session| {
            Box::pin(async move { $body.await })
        })
    };
}

#[async_trait]
impl<B: SqlBackend> Store for B {
    async fn accounts(&self) -> ScimResult<Vec<Account>> {
        run!(self, Bulk, |session| read::accounts(session)).await
    }

    async fn workspaces(&self, account: &AccountId) -> ScimResult<Vec<Workspace>> {
        let account = account.clone();
        run!(self, Bulk, |session| read::workspaces(session, &account)).await
    }

    async fn principal(
        &self,
        account: &AccountId,
        id: &PrincipalId,
    ) -> ScimResult<Option<Principal>> {
        let (account, id) = (account.clone(), id.clone());
        run!(self, Point, |session| read::principal(
            session, &account, &id
        ))
        .await
    }

    async fn principal_in(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        id: &PrincipalId,
    ) -> ScimResult<Option<Principal>> {
        let (account, workspace, id) = (account.clone(), workspace.clone(), id.clone());
        run!(self, Point, |session| read::principal_in(
            session, &account, &workspace, &id
        ))
        .await
    }

    async fn principal_by_name(
        &self,
        account: &AccountId,
        kind: PrincipalKind,
        name: &str,
    ) -> ScimResult<Option<Principal>> {
        let (account, name) = (account.clone(), name.to_string());
        run!(self, Point, |session| read::principal_by_name(
            session, &account, kind, &name
        ))
        .await
    }

    async fn list_principals(
        &self,
        account: &AccountId,
        kind: PrincipalKind,
        query: &ListQuery,
    ) -> ScimResult<Page> {
        let (account, query) = (account.clone(), query.clone());
        let anchors = Arc::clone(self.list_anchors());
        let read = list_read(&query);
        self.read(read, move |session| {
            Box::pin(
                async move { read::list(session, &account, None, kind, &query, &anchors).await },
            )
        })
        .await
    }

    async fn list_workspace_principals(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        kind: PrincipalKind,
        query: &ListQuery,
    ) -> ScimResult<Page> {
        let (account, workspace, query) = (account.clone(), workspace.clone(), query.clone());
        let anchors = Arc::clone(self.list_anchors());
        let read = list_read(&query);
        self.read(read, move |session| {
            Box::pin(async move {
                read::list(session, &account, Some(&workspace), kind, &query, &anchors).await
            })
        })
        .await
    }

    async fn workspace(&self, id: &WorkspaceId) -> ScimResult<Option<Workspace>> {
        let id = id.clone();
        run!(self, Point, |session| read::workspace(session, &id)).await
    }

    async fn workspace_by_deployment_name(&self, name: &str) -> ScimResult<Option<Workspace>> {
        let name = name.to_string();
        run!(self, Point, |session| read::workspace_by_deployment_name(
            session, &name
        ))
        .await
    }

    async fn members(
        &self,
        account: &AccountId,
        groups: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<MemberRef>>> {
        let (account, groups) = (account.clone(), groups.to_vec());
        run!(self, Bulk, |session| read::members_of_each(
            session, &account, &groups, true
        ))
        .await
    }

    async fn member_ids(
        &self,
        account: &AccountId,
        groups: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<MemberRef>>> {
        let (account, groups) = (account.clone(), groups.to_vec());
        run!(self, Bulk, |session| read::members_of_each(
            session, &account, &groups, false
        ))
        .await
    }

    async fn members_up_to(
        &self,
        account: &AccountId,
        group: &PrincipalId,
        cap: usize,
    ) -> ScimResult<Option<Vec<MemberRef>>> {
        let (account, group) = (account.clone(), group.clone());
        run!(self, Point, |session| read::members_up_to(
            session, &account, &group, cap
        ))
        .await
    }

    async fn groups_of(
        &self,
        account: &AccountId,
        principals: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<GroupRef>>> {
        // One principal's groups is a short indexed read; a page of them is not.
        let kind = if principals.len() <= 4 {
            Read::Point
        } else {
            Read::Bulk
        };
        let (account, principals) = (account.clone(), principals.to_vec());
        self.read(kind, move |session| {
            Box::pin(async move {
                let mut groups = HashMap::with_capacity(principals.len());
                for principal in principals {
                    let loaded = read::groups_of(session, &account, &principal).await?;
                    groups.insert(principal, loaded);
                }
                Ok(groups)
            })
        })
        .await
    }

    async fn token_by_digest(&self, digest: &str) -> ScimResult<Option<Token>> {
        let digest = digest.to_string();
        run!(self, Point, |session| read::token_by_digest(
            session, &digest
        ))
        .await
    }

    async fn tokens_where(
        &self,
        account: &AccountId,
        query: &crate::TokenQuery,
    ) -> ScimResult<Vec<crate::TokenRecord>> {
        let (account, query) = (account.clone(), query.clone());
        run!(self, Point, |session| read::tokens_where(
            session, &account, &query
        ))
        .await
    }

    async fn oauth_secrets(
        &self,
        account: &AccountId,
        principal: &PrincipalId,
    ) -> ScimResult<Vec<crate::StoredOAuthSecret>> {
        let (account, principal) = (account.clone(), principal.clone());
        run!(self, Point, |session| crate::sql::oauth::secrets_of(
            session, &account, &principal
        ))
        .await
    }

    async fn signing_keys(&self, account: &AccountId) -> ScimResult<Vec<crate::SigningKey>> {
        let account = account.clone();
        run!(self, Point, |session| crate::sql::oauth::signing_keys(
            session, &account
        ))
        .await
    }

    async fn federation_policies(
        &self,
        account: &AccountId,
        service_principal: Option<&PrincipalId>,
    ) -> ScimResult<Vec<crate::FederationPolicy>> {
        let (account, service_principal) = (account.clone(), service_principal.cloned());
        run!(self, Point, |session| crate::sql::federation::policies_of(
            session,
            &account,
            service_principal.as_ref()
        ))
        .await
    }

    async fn federation_policy(
        &self,
        account: &AccountId,
        uid: &str,
    ) -> ScimResult<Option<crate::FederationPolicy>> {
        let (account, uid) = (account.clone(), uid.to_string());
        run!(self, Point, |session| crate::sql::federation::policy(
            session, &account, &uid
        ))
        .await
    }

    async fn workspace_settings(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
    ) -> ScimResult<Vec<(String, String)>> {
        let (account, workspace) = (account.clone(), workspace.clone());
        run!(self, Point, |session| read::workspace_settings(
            session, &account, &workspace
        ))
        .await
    }

    async fn access_snapshot(&self, account: &AccountId) -> ScimResult<AccessSnapshot> {
        let account = account.clone();
        run!(self, Consistent, |session| read::access_snapshot(
            session, &account
        ))
        .await
    }

    async fn access_log_after(&self, seq: u64, limit: usize) -> ScimResult<Vec<LoggedEvent>> {
        run!(self, Point, |session| read::access_log_after(
            session, seq, limit
        ))
        .await
    }

    async fn securable(
        &self,
        account: &AccountId,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<Option<SecurableRow>> {
        let (account, full_name) = (account.clone(), full_name.to_string());
        run!(self, Point, |session| read::securable(
            session,
            &account,
            securable_type,
            &full_name
        ))
        .await
    }

    async fn securables(
        &self,
        account: &AccountId,
        securable_type: SecurableType,
        parent: Option<&str>,
    ) -> ScimResult<Vec<SecurableRow>> {
        let (account, parent) = (account.clone(), parent.map(str::to_string));
        run!(self, Bulk, |session| read::securables(
            session,
            &account,
            securable_type,
            parent.as_deref()
        ))
        .await
    }

    async fn workspace_entry(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        path: &str,
    ) -> ScimResult<Option<WorkspaceEntry>> {
        let (account, workspace, path) = (account.clone(), workspace.clone(), path.to_string());
        run!(self, Point, |session| read::workspace_entry(
            session, &account, &workspace, &path
        ))
        .await
    }

    async fn workspace_entry_by_id(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        object_type: ObjectType,
        object_id: &str,
    ) -> ScimResult<Option<WorkspaceEntry>> {
        let (account, workspace) = (account.clone(), workspace.clone());
        let object_id = object_id.to_string();
        run!(self, Point, |session| read::workspace_entry_by_id(
            session,
            &account,
            &workspace,
            object_type,
            &object_id
        ))
        .await
    }

    async fn object_workspace(
        &self,
        account: &AccountId,
        object_type: ObjectType,
        object_id: &str,
    ) -> ScimResult<Option<WorkspaceId>> {
        let (account, object_id) = (account.clone(), object_id.to_string());
        run!(self, Point, |session| read::object_workspace(
            session,
            &account,
            object_type,
            &object_id
        ))
        .await
    }

    async fn workspace_entries_in(
        &self,
        account: &AccountId,
        workspace: &WorkspaceId,
        directory: Option<&str>,
    ) -> ScimResult<Vec<WorkspaceEntry>> {
        let (account, workspace) = (account.clone(), workspace.clone());
        let directory = directory.map(str::to_string);
        run!(self, Bulk, |session| read::workspace_entries_in(
            session,
            &account,
            &workspace,
            directory.as_deref()
        ))
        .await
    }

    async fn rule_set(
        &self,
        account: &AccountId,
        resource: &str,
    ) -> ScimResult<(u64, Vec<(String, PrincipalId)>)> {
        let (account, resource) = (account.clone(), resource.to_string());
        run!(self, Consistent, |session| read::rule_set(
            session, &account, &resource
        ))
        .await
    }

    async fn rule_sets(&self, account: &AccountId) -> ScimResult<Vec<(crate::RuleSetRows, u64)>> {
        let account = account.clone();
        run!(self, Consistent, |session| read::rule_sets(
            session, &account
        ))
        .await
    }

    async fn principals_page(
        &self,
        account: &AccountId,
        after: Option<&PrincipalId>,
        limit: usize,
    ) -> ScimResult<Vec<Principal>> {
        let (account, after) = (account.clone(), after.cloned());
        run!(self, Bulk, |session| read::principals_page(
            session,
            &account,
            after.as_ref(),
            limit
        ))
        .await
    }

    async fn memberships_page(
        &self,
        account: &AccountId,
        after: Option<&MembershipRow>,
        limit: usize,
    ) -> ScimResult<Vec<MembershipRow>> {
        let (account, after) = (account.clone(), after.cloned());
        run!(self, Bulk, |session| read::memberships_page(
            session,
            &account,
            after.as_ref(),
            limit
        ))
        .await
    }

    async fn tokens(&self, account: &AccountId) -> ScimResult<Vec<TokenRow>> {
        let account = account.clone();
        run!(self, Bulk, |session| read::tokens(session, &account)).await
    }

    async fn entitlements(&self, account: &AccountId) -> ScimResult<Vec<EntitlementRow>> {
        let account = account.clone();
        run!(self, Bulk, |session| read::entitlements(session, &account)).await
    }

    async fn apply_audited(
        &self,
        account: &AccountId,
        change: Change,
        context: AuditContext,
    ) -> ScimResult<()> {
        let outcome = self.write(account, change, context).await;
        self.write_health().record(&outcome);
        outcome
    }

    async fn audit_events(
        &self,
        account: &AccountId,
        after: u64,
        limit: usize,
    ) -> ScimResult<Vec<StoredAuditEvent>> {
        let account = account.clone();
        run!(self, Bulk, |session| crate::sql::audit::events(
            session, &account, after, limit
        ))
        .await
    }

    async fn audit_leaves(&self, account: &AccountId, size: u64) -> ScimResult<Vec<[u8; 32]>> {
        let account = account.clone();
        run!(self, Bulk, |session| crate::sql::audit::leaves(
            session, &account, size
        ))
        .await
    }

    async fn audit_head(&self, account: &AccountId) -> ScimResult<AuditHead> {
        let account = account.clone();
        run!(self, Point, |session| crate::sql::audit::head(
            session, &account
        ))
        .await
    }

    async fn audit_pruned(&self, account: &AccountId) -> ScimResult<Option<AuditHead>> {
        let account = account.clone();
        run!(self, Point, |session| crate::sql::audit::pruned(
            session, &account
        ))
        .await
    }

    async fn audit_signing_seed(&self) -> ScimResult<Option<AuditKeySeed>> {
        run!(self, Point, |session| crate::sql::audit::signing_seed(
            session
        ))
        .await
    }

    async fn sync_state(&self, job: &str) -> ScimResult<crate::SyncJobState> {
        let job = job.to_string();
        run!(self, Point, |session| crate::sql::sync_state::job_state(
            session, &job
        ))
        .await
    }

    async fn alert_rules(
        &self,
        account: &AccountId,
    ) -> ScimResult<Vec<crate::alerts::StoredAlertRule>> {
        let account = account.clone();
        run!(self, Bulk, |session| crate::sql::alerts::rules(
            session, &account
        ))
        .await
    }

    async fn sync_lease(
        &self,
        job: &str,
    ) -> ScimResult<Option<(String, scimitar_domain::Timestamp)>> {
        let job = job.to_string();
        run!(self, Point, |session| crate::sql::sync_state::lease_of(
            session, &job
        ))
        .await
    }

    async fn sync_runs(&self, job: &str, limit: usize) -> ScimResult<Vec<crate::SyncRunRecord>> {
        let job = job.to_string();
        run!(self, Point, |session| crate::sql::sync_state::runs(
            session, &job, limit
        ))
        .await
    }

    async fn sync_jobs(&self, account: &AccountId) -> ScimResult<Vec<crate::SyncJobSummary>> {
        let account = account.clone();
        run!(self, Bulk, |session| crate::sql::sync_state::jobs_of(
            session, &account
        ))
        .await
    }

    async fn alert_cursor(
        &self,
        account: &AccountId,
    ) -> ScimResult<Option<crate::alerts::AlertCursor>> {
        let account = account.clone();
        run!(self, Point, |session| crate::sql::alerts::cursor(
            session, &account
        ))
        .await
    }

    async fn alert_window(
        &self,
        account: &AccountId,
        since: scimitar_domain::Timestamp,
        through: u64,
        limit: usize,
    ) -> ScimResult<Vec<StoredAuditEvent>> {
        let account = account.clone();
        run!(self, Bulk, |session| crate::sql::alerts::window(
            session, &account, since, through, limit
        ))
        .await
    }

    async fn alert_deliveries_due(
        &self,
        now: scimitar_domain::Timestamp,
        limit: usize,
    ) -> ScimResult<Vec<crate::alerts::AlertDelivery>> {
        run!(self, Bulk, |session| crate::sql::alerts::deliveries_due(
            session, now, limit
        ))
        .await
    }

    async fn alert_deliveries(
        &self,
        account: &AccountId,
    ) -> ScimResult<Vec<crate::alerts::AlertDelivery>> {
        let account = account.clone();
        run!(self, Bulk, |session| crate::sql::alerts::deliveries(
            session, &account
        ))
        .await
    }

    async fn ready(&self) -> Result<(), NotReady> {
        let applied = run!(self, Point, |session| read::schema_version(session))
            .await
            .map_err(|error| NotReady::Unreachable(cause_of(&error)))?;
        let expected = migrations::latest(B::MIGRATIONS);
        if applied < expected {
            return Err(NotReady::MigrationsBehind { applied, expected });
        }
        match self.write_health().failing() {
            Some(cause) => Err(NotReady::WritesFailing(cause)),
            None => Ok(()),
        }
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        SqlBackend::pool_status(self)
    }
}

/// An error's whole text, for a log line: an internal error with every cause.
fn cause_of(error: &ScimError) -> String {
    match error.fault() {
        Some(fault) => fault.chain(),
        None => error.to_string(),
    }
}
