//! The node's access engine: one in-memory [`AccessModel`] per account, built from a storage
//! snapshot and kept current by following the access log.
//!
//! Why a change is visible to the very next check: every write goes through
//! [`Services::commit`](crate::service::Services::commit), which, after the store has
//! committed, replays the log up to at least that commit before the request is answered. A
//! check that starts after the answer therefore sees the change. Writes made elsewhere (another
//! node, or the CLI on the same database) are picked up by the next catch-up, which also runs
//! on a timer (see [`AccessEngine::follow`]).
//!
//! The engine also keeps the node's read cache of principals, because it is invalidated by
//! the same log: an entry is evicted when the log says its principal changed, in the same
//! step that applies the change to the model. Reads therefore see this node's writes at once
//! and other nodes' writes within one follower interval.

use crate::tokens::{CachedToken, TokenCache};
use scimitar_access::{AccessError, AccessModel, Entitlement, EntitlementSet, IsolationMode};
use scimitar_domain::credentials::Token;
use scimitar_domain::{AccountId, Principal, PrincipalId, ScimError, ScimResult, WorkspaceId};
use scimitar_store::{AccessEvent, AccessSnapshot, GovernanceChange, PrincipalFacts, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// How many log entries one catch-up step reads at a time.
const LOG_PAGE: usize = 10_000;

/// How many stale access sets (see `AccessModel::refresh_access_sets`) one step recomputes
/// while holding the engine's write lock: about a millisecond's work, so a group-in-group
/// change above a million users is absorbed over many steps instead of stalling every check
/// for a second. Checks stay correct meanwhile, only slower.
const ACCESS_SET_REFRESH_BUDGET: usize = 2_000;

/// One account's model and the log position its snapshot was taken at: entries up to that
/// position are already in it.
struct AccountModel {
    model: AccessModel,
    snapshot_seq: u64,
    /// How many of this account's log entries the model holds (those in its snapshot, then
    /// each one applied): the account's change token. It counts only the account's own
    /// writes, so no account can learn from its tokens how much another one writes, and every
    /// node following the same log counts the same.
    log_entries: u64,
}

struct EngineState {
    accounts: HashMap<AccountId, AccountModel>,
    /// Every log entry up to here has been applied (or was in a snapshot).
    applied: u64,
    /// Principals as last read from storage, evicted when the log names them. Each as the
    /// account sees it (`None`) or as a workspace does (with its entitlements there), as
    /// read: a principal is read through few workspaces, so a short list.
    /// Shared, so that a read hands out the cached principal without copying its document.
    principals: HashMap<(AccountId, PrincipalId), PrincipalViews>,
    /// Tokens as last read from storage, by secret digest, evicted when the log says a token
    /// changed or its principal was deactivated or deleted (`crate::tokens`).
    tokens: TokenCache,
}

/// One principal as each reader saw it: the account (`None`) or a workspace.
type PrincipalViews = Vec<(Option<WorkspaceId>, Arc<Principal>)>;

/// Enough principals for the working set of a busy directory; beyond it the cache starts
/// over, which costs one storage read per principal read next.
const PRINCIPAL_CACHE_CAPACITY: usize = 200_000;

pub struct AccessEngine {
    state: RwLock<EngineState>,
    /// Only one catch-up runs at a time, so entries are applied once and in order.
    catching_up: tokio::sync::Mutex<()>,
    /// Catch-ups begun and finished, numbered in order (see
    /// [`AccessEngine::catch_up_to_now`]).
    begun: AtomicU64,
    finished: AtomicU64,
    /// When a catch-up last read the log to its end: how fresh this node's view of other
    /// nodes' changes is.
    caught_up_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// The log position applied, sent each time it moves (a catch-up after this node's own
    /// write, or the follower reading other nodes' writes): what a wait for an account's
    /// change token to move wakes on, instead of polling (`crate::change_feed`).
    changes: tokio::sync::watch::Sender<u64>,
}

/// What the engine holds, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineSize {
    pub accounts: usize,
    /// Summed over the accounts' models.
    pub model: scimitar_access::ModelSize,
    /// Principals whose documents are cached for reads.
    pub cached_principals: usize,
}

impl AccessEngine {
    /// An engine that knows nothing yet: the first catch-up reads the whole log and builds a
    /// model for each account it names. [`AccessEngine::reload`] is the quicker start.
    pub fn empty() -> AccessEngine {
        AccessEngine {
            state: RwLock::new(EngineState {
                accounts: HashMap::new(),
                applied: 0,
                principals: HashMap::new(),
                tokens: TokenCache::default(),
            }),
            catching_up: tokio::sync::Mutex::new(()),
            begun: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            caught_up_at: std::sync::Mutex::new(None),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Rebuilds every account's model from a consistent snapshot, then catches up.
    pub async fn reload(&self, store: &dyn Store) -> ScimResult<()> {
        let _turn = self.catching_up.lock().await;
        let mut accounts = HashMap::new();
        let mut applied = None::<u64>;
        for account in store.accounts().await? {
            let snapshot = store.access_snapshot(&account.id).await?;
            applied = Some(applied.map_or(snapshot.seq, |seq| seq.min(snapshot.seq)));
            accounts.insert(account.id, build(snapshot));
        }
        {
            let mut state = self
                .state
                .write()
                .map_err(|_| ScimError::internal("the access engine lock is poisoned"))?;
            state.accounts = accounts;
            state.applied = applied.unwrap_or(0);
            state.principals.clear();
            state.tokens.clear();
        }
        // Tokens may have moved with the new snapshot: whoever waits looks again.
        self.changes.send_replace(self.applied());
        self.catch_up_in_turn(store).await.map(drop)
    }

    /// A receiver woken whenever this node applies log entries (of any account): a waiter
    /// subscribes first, then reads the token it waits on, then awaits `changed()`, so no
    /// change between the read and the wait is missed.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The log position this node has applied.
    pub fn applied(&self) -> u64 {
        self.state.read().map(|state| state.applied).unwrap_or(0)
    }

    /// The account's change token: how many of its own access-log entries this node has
    /// applied (see `docs/design/node-state.md`).
    pub fn change_token(&self, account: &AccountId) -> u64 {
        self.state
            .read()
            .ok()
            .and_then(|state| state.accounts.get(account).map(|entry| entry.log_entries))
            .unwrap_or(0)
    }

    /// Answers a question from an account's model.
    pub fn read<T>(
        &self,
        account: &AccountId,
        question: impl FnOnce(&AccessModel) -> T,
    ) -> ScimResult<T> {
        let state = self
            .state
            .read()
            .map_err(|_| ScimError::internal("the access engine lock is poisoned"))?;
        let entry = state
            .accounts
            .get(account)
            .ok_or_else(|| ScimError::internal(format!("no access model for account {account}")))?;
        Ok(question(&entry.model))
    }

    /// Applies every log entry committed so far. Returns the position reached.
    pub async fn catch_up(&self, store: &dyn Store) -> ScimResult<u64> {
        let _turn = self.catching_up.lock().await;
        self.catch_up_in_turn(store).await
    }

    /// [`AccessEngine::catch_up`] for a caller that needs everything committed before this
    /// call (its own change that has just committed, or another node's change that must be
    /// seen before an authorization): returns once a catch-up that began after the call has
    /// finished. Concurrent callers share one such catch-up instead of each reading the log
    /// in turn: whoever gets the turn first reads for everyone who called before it began.
    pub async fn catch_up_to_now(&self, store: &dyn Store) -> ScimResult<u64> {
        // Any catch-up numbered above this one begins after this call.
        let committed_before = self.begun.load(Ordering::SeqCst);
        if self.finished.load(Ordering::SeqCst) > committed_before {
            return Ok(self.applied());
        }
        let _turn = self.catching_up.lock().await;
        if self.finished.load(Ordering::SeqCst) > committed_before {
            return Ok(self.applied());
        }
        self.catch_up_in_turn(store).await
    }

    /// The catch-up itself; the caller holds `catching_up`.
    async fn catch_up_in_turn(&self, store: &dyn Store) -> ScimResult<u64> {
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        let reached = self.read_log(store).await?;
        // Under the turn, so `finished` only grows.
        self.finished.store(number, Ordering::SeqCst);
        if let Ok(mut at) = self.caught_up_at.lock() {
            *at = Some(std::time::Instant::now());
        }
        Ok(reached)
    }

    /// How long ago a catch-up last read the log to its end (`None` before the first): under
    /// the follower's interval while the database answers, growing while it does not.
    pub fn since_caught_up(&self) -> Option<std::time::Duration> {
        let at = *self.caught_up_at.lock().ok()?;
        at.map(|at| at.elapsed())
    }

    /// What the engine holds now. Walks every model: for a metrics scrape, not a request.
    pub fn size(&self) -> EngineSize {
        let Ok(state) = self.state.read() else {
            return EngineSize::default();
        };
        let mut size = EngineSize {
            accounts: state.accounts.len(),
            cached_principals: state.principals.len(),
            ..EngineSize::default()
        };
        for account in state.accounts.values() {
            let model = account.model.size();
            size.model.principals += model.principals;
            size.model.memberships += model.memberships;
            size.model.securables += model.securables;
        }
        size
    }

    async fn read_log(&self, store: &dyn Store) -> ScimResult<u64> {
        loop {
            let after = self.applied();
            let entries = store.access_log_after(after, LOG_PAGE).await?;
            let Some(last) = entries.last().map(|entry| entry.seq) else {
                return Ok(after);
            };
            // A new account appears in the log before this node has a model for it.
            let mut fresh = Vec::new();
            {
                let state = self
                    .state
                    .read()
                    .map_err(|_| ScimError::internal("the access engine lock is poisoned"))?;
                for entry in &entries {
                    if !state.accounts.contains_key(&entry.account)
                        && !fresh.contains(&entry.account)
                    {
                        fresh.push(entry.account.clone());
                    }
                }
            }
            let mut snapshots = Vec::new();
            for account in fresh {
                let snapshot = store.access_snapshot(&account).await?;
                snapshots.push((account, build(snapshot)));
            }
            let mut state = self
                .state
                .write()
                .map_err(|_| ScimError::internal("the access engine lock is poisoned"))?;
            for (account, model) in snapshots {
                state.accounts.entry(account).or_insert(model);
            }
            let mut evicted = Vec::new();
            for entry in entries {
                // Before anything else: a stale token is dropped even when the entry is one
                // the account's snapshot already holds (dropping more costs one read).
                forget_tokens(&mut state.tokens, &entry.account, &entry.event);
                let Some(account) = state.accounts.get_mut(&entry.account) else {
                    continue;
                };
                if entry.seq <= account.snapshot_seq {
                    continue;
                }
                account.log_entries += 1;
                if let AccessEvent::PrincipalSaved(PrincipalFacts { id, .. })
                | AccessEvent::PrincipalDeleted { id }
                | AccessEvent::EntitlementsSet { principal: id, .. } = &entry.event
                {
                    evicted.push((entry.account.clone(), id.clone()));
                }
                if let Err(error) = apply(&mut account.model, &entry.event) {
                    // The store validated the change and committed it; the engine refusing
                    // it means the two disagree, which is a bug worth a loud log line, but not
                    // a reason to stop following the log.
                    tracing::error!(seq = entry.seq, %error, "access log entry not applied");
                }
            }
            for key in evicted {
                state.principals.remove(&key);
            }
            refresh_access_sets(&mut state);
            state.applied = last;
            drop(state);
            // After the lock is released, so a woken waiter reads the new tokens at once.
            self.changes.send_replace(last);
        }
    }

    /// A token from this node's cache, by the digest of its secret.
    pub(crate) fn cached_token(&self, digest: &str) -> Option<Arc<CachedToken>> {
        self.state.read().ok()?.tokens.get(digest)
    }

    /// Caches a token read from storage, unless the log moved on since `read_at` (as
    /// [`AccessEngine::remember_principal`]): the read may predate a revocation whose eviction
    /// already happened. Returns the token either way.
    pub(crate) fn remember_token(
        &self,
        digest: String,
        token: Token,
        read_at: u64,
    ) -> Arc<CachedToken> {
        match self.state.write() {
            Ok(mut state) if state.applied == read_at => state.tokens.insert(digest, token),
            _ => TokenCache::default().insert(digest, token),
        }
    }

    /// A principal from the read cache, as `workspace` sees it (`None`: as the account does).
    pub fn cached_principal(
        &self,
        account: &AccountId,
        workspace: Option<&WorkspaceId>,
        id: &PrincipalId,
    ) -> Option<Arc<Principal>> {
        let state = self.state.read().ok()?;
        state
            .principals
            .get(&(account.clone(), id.clone()))?
            .iter()
            .find(|(seen_from, _)| seen_from.as_ref() == workspace)
            .map(|(_, principal)| Arc::clone(principal))
    }

    /// Caches a principal read from storage, unless the log moved on since `read_at` (the
    /// [`AccessEngine::applied`] position taken before the read): the read may then predate
    /// a change whose eviction already happened, and caching it would keep it stale.
    pub fn remember_principal(
        &self,
        account: &AccountId,
        workspace: Option<&WorkspaceId>,
        principal: &Arc<Principal>,
        read_at: u64,
    ) {
        let Ok(mut state) = self.state.write() else {
            return;
        };
        if state.applied != read_at {
            return;
        }
        if state.principals.len() >= PRINCIPAL_CACHE_CAPACITY {
            state.principals.clear();
        }
        let views = state
            .principals
            .entry((account.clone(), principal.id.clone()))
            .or_default();
        views.retain(|(seen_from, _)| seen_from.as_ref() != workspace);
        views.push((workspace.cloned(), Arc::clone(principal)));
    }

    /// Catches up every `interval` until the process ends, so that writes made by other nodes
    /// or processes reach this node's answers within about one interval.
    pub async fn follow(&self, store: &dyn Store, interval: std::time::Duration) {
        let mut outage = FollowerOutage::default();
        loop {
            tokio::time::sleep(interval).await;
            let outcome = self.catch_up(store).await;
            match outage.observe(std::time::Instant::now(), outcome.as_ref().err()) {
                Some(Report::Failing { error, failures }) => {
                    tracing::warn!(%error, failures, "cannot follow the access log")
                }
                Some(Report::Recovered { failures, lasted }) => tracing::info!(
                    failures,
                    seconds = lasted.as_secs(),
                    "following the access log again"
                ),
                None => {}
            }
            // Also when the log had nothing new: sets left stale by an earlier change. Looked
            // at under the read lock first, so an idle tick never stops the checks.
            let stale = self.state.read().is_ok_and(|state| {
                state
                    .accounts
                    .values()
                    .any(|account| !account.model.access_sets_fresh())
            });
            if stale {
                if let Ok(mut state) = self.state.write() {
                    refresh_access_sets(&mut state);
                }
            }
        }
    }
}

/// The follower's failures in a row, so that a database outage is logged when it starts, then
/// at most every [`FollowerOutage::REPEAT`], and when it ends, rather than at every tick.
#[derive(Debug, Default)]
struct FollowerOutage {
    /// When the outage began, and when it was last reported.
    since: Option<(std::time::Instant, std::time::Instant)>,
    failures: u64,
}

/// What the follower should log after a tick.
#[derive(Debug, PartialEq)]
enum Report<'e> {
    Failing {
        error: &'e ScimError,
        failures: u64,
    },
    Recovered {
        failures: u64,
        lasted: std::time::Duration,
    },
}

impl FollowerOutage {
    const REPEAT: std::time::Duration = std::time::Duration::from_secs(30);

    fn observe<'e>(
        &mut self,
        now: std::time::Instant,
        failure: Option<&'e ScimError>,
    ) -> Option<Report<'e>> {
        match (failure, &mut self.since) {
            (None, None) => None,
            (None, Some((began, _))) => {
                let report = Report::Recovered {
                    failures: self.failures,
                    lasted: now.duration_since(*began),
                };
                *self = FollowerOutage::default();
                Some(report)
            }
            (Some(error), since) => {
                self.failures += 1;
                let due = match since {
                    None => {
                        *since = Some((now, now));
                        true
                    }
                    Some((_, reported)) if now.duration_since(*reported) >= Self::REPEAT => {
                        *reported = now;
                        true
                    }
                    Some(_) => false,
                };
                due.then_some(Report::Failing {
                    error,
                    failures: self.failures,
                })
            }
        }
    }
}

fn entitlements(values: &[String]) -> EntitlementSet {
    // Entitlements the engine does not know confer nothing; they are still stored and shown
    // (storage keeps each workspace's `entitlements` as written).
    values
        .iter()
        .filter_map(|value| Entitlement::parse(value).ok())
        .collect()
}

fn build(snapshot: AccessSnapshot) -> AccountModel {
    let mut model = AccessModel::new();
    let mut problems = Vec::new();
    for facts in &snapshot.principals {
        problems.push(model.upsert_principal(&facts.id, facts.kind, &facts.name, facts.active));
    }
    for (group, member) in &snapshot.memberships {
        problems.push(model.add_membership(group, member).map(drop));
    }
    for securable in &snapshot.securables {
        problems.push(model.create_securable(
            securable.securable_type,
            &securable.full_name,
            &securable.owner,
        ));
        if securable.isolation_mode != IsolationMode::Open {
            problems.push(model.set_isolation_mode(&securable.full_name, securable.isolation_mode));
        }
    }
    for binding in &snapshot.bindings {
        problems.push(model.bind_workspace(
            &binding.catalog,
            &binding.workspace,
            Some(binding.binding_type),
        ));
    }
    for grant in &snapshot.grants {
        problems.push(model.grant(
            grant.securable_type,
            &grant.full_name,
            &grant.principal,
            &[grant.privilege],
        ));
    }
    for object in &snapshot.objects {
        if object.directory.is_some() {
            problems.push(model.set_object_parent(
                object.object_type,
                &object.object_id,
                object.directory.as_deref(),
            ));
        }
    }
    let mut acls: HashMap<_, Vec<_>> = HashMap::new();
    for row in snapshot.acl {
        acls.entry((row.object_type, row.object_id))
            .or_default()
            .push(row.entry);
    }
    for ((object_type, object_id), entries) in acls {
        problems.push(model.set_object_acl(object_type, &object_id, &entries));
    }
    for (workspace, principal, permission) in &snapshot.assignments {
        problems.push(model.assign(workspace, principal, Some(*permission)));
    }
    for (workspace, principal, values) in &snapshot.entitlements {
        problems.push(model.set_entitlements(workspace, principal, entitlements(values)));
    }
    for error in problems.into_iter().filter_map(Result::err) {
        tracing::error!(%error, "stored access state not loaded into the engine");
    }
    model.refresh_access_sets(usize::MAX);
    AccountModel {
        model,
        snapshot_seq: snapshot.seq,
        log_entries: snapshot.log_entries,
    }
}

/// One bounded step of recomputing the access sets that changes to group nesting made
/// stale, in every account.
fn refresh_access_sets(state: &mut EngineState) {
    for account in state.accounts.values_mut() {
        account.model.refresh_access_sets(ACCESS_SET_REFRESH_BUDGET);
    }
}

/// Drops from the token cache what a log entry makes stale: the token it names, or every
/// token of a principal it deactivates or deletes.
fn forget_tokens(tokens: &mut TokenCache, account: &AccountId, event: &AccessEvent) {
    match event {
        AccessEvent::TokenChanged { id } => tokens.forget_token(id),
        AccessEvent::PrincipalSaved(facts) if !facts.active => {
            tokens.forget_principal(account, &facts.id)
        }
        AccessEvent::PrincipalDeleted { id } => tokens.forget_principal(account, id),
        _ => {}
    }
}

/// Applies one log entry to a model.
fn apply(model: &mut AccessModel, event: &AccessEvent) -> Result<(), AccessError> {
    match event {
        // The entry's `entitlements` are ignored. This build writes them empty; entries of
        // earlier builds carry a document's account-wide entitlements, which SQLite migration
        // 12 (PostgreSQL 9) copied into every workspace of the account. No model applies such
        // an entry over that copy: a model starts from a snapshot taken after the migration
        // and applies only later entries, and the copy is what the snapshot reads. Applying
        // them (to which workspace?) could only undo a later per-workspace change.
        AccessEvent::PrincipalSaved(facts) => {
            model.upsert_principal(&facts.id, facts.kind, &facts.name, facts.active)
        }
        AccessEvent::EntitlementsSet {
            workspace,
            principal,
            entitlements: values,
        } => model.set_entitlements(workspace, principal, entitlements(values)),
        AccessEvent::PrincipalDeleted { id } => model.remove_principal(id),
        AccessEvent::MemberAdded { group, member } => model.add_membership(group, member).map(drop),
        AccessEvent::MemberRemoved { group, member } => {
            model.remove_membership(group, member).map(drop)
        }
        AccessEvent::WorkspaceAssigned {
            workspace,
            principal,
            permission,
        } => model.assign(workspace, principal, *permission),
        AccessEvent::WorkspaceDeleted { workspace } => {
            model.forget_workspace(workspace);
            Ok(())
        }
        // Only the node's token cache keeps tokens (`forget_tokens`).
        AccessEvent::TokenChanged { .. } => Ok(()),
        AccessEvent::Governance(change) => match change {
            GovernanceChange::CreateSecurable {
                securable_type,
                full_name,
                owner,
                ..
            } => model.create_securable(*securable_type, full_name, owner),
            GovernanceChange::DropSecurable {
                securable_type,
                full_name,
            } => model.drop_securable(*securable_type, full_name),
            GovernanceChange::SetOwner {
                securable_type,
                full_name,
                owner,
            } => model.set_owner(*securable_type, full_name, owner),
            GovernanceChange::RenameSecurable {
                securable_type,
                full_name,
                new_name,
            } => model.rename_securable(*securable_type, full_name, new_name),
            // Never logged; nothing the engine keeps.
            GovernanceChange::SetComment { .. } => Ok(()),
            GovernanceChange::Grant {
                securable_type,
                full_name,
                principal,
                privileges,
            } => model.grant(*securable_type, full_name, principal, privileges),
            GovernanceChange::Revoke {
                securable_type,
                full_name,
                principal,
                privileges,
            } => model.revoke(*securable_type, full_name, principal, privileges),
            GovernanceChange::SetObjectAcl {
                object_type,
                object_id,
                entries,
            } => model.set_object_acl(*object_type, object_id, entries),
            GovernanceChange::SetObjectParent {
                object_type,
                object_id,
                directory,
            } => model.set_object_parent(*object_type, object_id, directory.as_deref()),
            // Placement is all the engine keeps of the tree (the log records it so).
            GovernanceChange::CreateWorkspaceEntry { entry } => model.set_object_parent(
                entry.object_type,
                &entry.object_id,
                entry.directory.as_deref(),
            ),
            GovernanceChange::ExpectObjectAcl { .. } => Ok(()),
            GovernanceChange::SetIsolationMode {
                catalog,
                isolation_mode,
            } => model.set_isolation_mode(catalog, *isolation_mode),
            GovernanceChange::BindWorkspace {
                catalog,
                workspace,
                binding_type,
            } => model.bind_workspace(catalog, workspace, *binding_type),
            GovernanceChange::RemoveObject {
                object_type,
                object_id,
            } => {
                model.remove_object(*object_type, object_id);
                Ok(())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::time::{Duration, Instant};

    /// A database that is down for a minute, polled every 100 ms, is logged when the outage
    /// begins, every 30 s while it lasts, and once when it ends: not 600 times.
    #[test]
    fn a_follower_outage_is_reported_when_it_starts_every_thirty_seconds_and_when_it_ends() {
        let mut outage = FollowerOutage::default();
        let error = ScimError::internal("connection refused");
        let start = Instant::now();
        let tick = Duration::from_millis(100);
        assert_eq!(outage.observe(start, None), None);
        let mut reports = Vec::new();
        for step in 1..=600u32 {
            if let Some(report) = outage.observe(start + tick * step, Some(&error)) {
                reports.push(report);
            }
        }
        let failures: Vec<u64> = reports
            .iter()
            .map(|report| match report {
                Report::Failing { failures, .. } => *failures,
                Report::Recovered { .. } => panic!("not recovered yet"),
            })
            .collect();
        assert_eq!(failures, [1, 301]);
        let recovered = outage.observe(start + tick * 601, None);
        assert_eq!(
            recovered,
            Some(Report::Recovered {
                failures: 600,
                lasted: tick * 600,
            })
        );
        assert_eq!(outage.observe(start + tick * 602, None), None);
        // The next outage is a new one, reported at once.
        assert!(matches!(
            outage.observe(start + tick * 603, Some(&error)),
            Some(Report::Failing { failures: 1, .. })
        ));
    }
}
