//! The audit trail, from the application's side: the context every commit carries into
//! storage (who acted, with which credential, from where, in which request), and what an
//! account's admins read of the trail: its signed checkpoint, the verifier key, and inclusion
//! and consistency proofs an auditor checks offline with `scimitar-audit`.
//!
//! # Where the context comes from
//! The edge that receives a request (the HTTP crate, the CLI) runs its work [`within`] a
//! [`RequestInfo`] (address, user agent, request id), kept in a tokio task-local for that
//! request's task. Every [`Actor`] is made in `authority` from a verified credential or by an
//! operator's `act_as`, and notes itself in that scope when it is made; [`Services::commit`]
//! reads the scope back. A task-local rather than an argument threaded through every write:
//! each request's handler runs as one future on one task (no write is spawned away from it),
//! so the scope is exactly the request's, and no caller can forget to pass it. A commit
//! outside any scope (a background job) is recorded with nobody behind it, never with someone
//! else's identity.

use crate::authority::{is_admin, not_an_admin, Actor};
use crate::Services;
use scimitar_audit::{merkle, Frontier, Hash, NoteSigner};
use scimitar_domain::ids::lower_hex;
use scimitar_domain::{AccountId, ScimError, ScimResult, Timestamp};
use scimitar_store::{AuditContext, UserIdentity};
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What the edge knows about a request: never a credential. The address stays an address
/// until an event needs its text: most requests record nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub source_ip_address: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// A request's scope: its info, and the actor its credential became.
struct RequestScope {
    info: RequestInfo,
    actor: Mutex<Option<Actor>>,
}

tokio::task_local! {
    static REQUEST: Arc<RequestScope>;
}

/// Runs `work` as one request: the commits it makes record `info` and the actor made in it.
pub async fn within<F: Future>(info: RequestInfo, work: F) -> F::Output {
    within_reporting(info, work).await.0
}

/// Who a request acted as, read back once its handler ended: what the trail records of a
/// request that was then refused (`crate::audit_refusals`). Never a credential's secret.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestActor {
    pub account: AccountId,
    pub workspace: Option<scimitar_domain::WorkspaceId>,
    pub identity: UserIdentity,
}

/// [`within`], also giving back the request's info and the actor it acted as (`None` when no
/// credential was verified: a 401, or a request that needs none), for the edge to record a
/// refusal with ([`RequestActor::of`]). Nothing is copied for a request that is not refused.
pub async fn within_reporting<F: Future>(
    info: RequestInfo,
    work: F,
) -> (F::Output, RequestInfo, Option<Actor>) {
    let scope = Arc::new(RequestScope {
        info,
        actor: Mutex::new(None),
    });
    let output = REQUEST.scope(scope.clone(), work).await;
    // The task-local's copy went with the scope above, so this is the last one, unless
    // something the work spawned still holds it; then the info is copied.
    let RequestScope { info, actor } =
        Arc::try_unwrap(scope).unwrap_or_else(|shared| RequestScope {
            info: shared.info.clone(),
            actor: Mutex::new(shared.actor.lock().ok().and_then(|slot| slot.clone())),
        });
    let actor = actor.into_inner().ok().flatten();
    (output, info, actor)
}

impl RequestActor {
    /// The actor as a refusal's event names it.
    pub fn of(actor: &Actor) -> RequestActor {
        RequestActor {
            account: actor.account().clone(),
            workspace: actor.workspace().cloned(),
            identity: identity_of(actor),
        }
    }
}

/// The acting principal and its credential as the trail names them.
fn identity_of(actor: &Actor) -> UserIdentity {
    UserIdentity {
        principal_id: actor.principal().to_string(),
        credential_kind: match actor.token() {
            Some(_) => "token".into(),
            None => "operator".into(),
        },
        credential_id: actor.token().map(|token| token.id.clone()),
    }
}

/// Called by every constructor of an [`Actor`]: the request it is made in acts as it. The
/// last one made wins (a request enters its workspace after its account).
pub(crate) fn note_actor(actor: &Actor) {
    let _ = REQUEST.try_with(|scope| {
        if let Ok(mut slot) = scope.actor.lock() {
            *slot = Some(actor.clone());
        }
    });
}

/// The context of a commit made now, from the request scope it runs in (if any).
pub(crate) fn context(event_id: String, now: Timestamp) -> AuditContext {
    let mut context = AuditContext {
        event_id,
        event_time: Some(now),
        ..AuditContext::default()
    };
    let _ = REQUEST.try_with(|scope| {
        context.source_ip_address = scope.info.source_ip_address.map(|ip| ip.to_string());
        context.user_agent = scope.info.user_agent.clone();
        context.request_id = scope.info.request_id.clone();
        let actor = scope.actor.lock().ok().and_then(|slot| slot.clone());
        if let Some(actor) = actor {
            context.workspace_id = actor.workspace().cloned();
            context.user_identity = Some(identity_of(&actor));
        }
    });
    context
}

/// An inclusion proof as served: the leaf at `seq` (from 1) is in the tree of `size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    pub seq: u64,
    /// `seq - 1`: RFC 9162's leaf index.
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The event's exact stored text; its leaf hash is `SHA-256(0x00 || text)`.
    pub event: String,
    pub leaf_hash: String,
    pub root_hash: String,
    /// From the leaf's sibling up, hex.
    pub hashes: Vec<String>,
}

/// A consistency proof as served: the tree of `first` is a prefix of the tree of `second`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root_hash: String,
    pub second_root_hash: String,
    pub hashes: Vec<String>,
}

pub use scimitar_store::audit::checkpoint_origin as origin;

fn hex_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|hash| lower_hex(hash)).collect()
}

impl Services {
    /// The trail's documents are the account's business alone, and only its admins':
    /// checked from the engine as of now. A workspace admin who is not an account admin is
    /// refused: the trail spans every workspace.
    async fn authorize_auditor(&self, actor: &Actor) -> ScimResult<()> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let admin = self
            .access
            .read(actor.account(), |model| is_admin(model, actor.principal()))?;
        if !admin {
            return Err(not_an_admin(actor, "read the account's audit trail"));
        }
        Ok(())
    }

    /// The signer of `account`'s checkpoints. The deployment holds one Ed25519 seed, made at
    /// the first use and stored in the database (whichever node stores one first, every node
    /// then uses that one); each account's key is named by its own origin. The seed is never
    /// logged: it lives in the database row and in this signer only.
    async fn audit_signer(&self, account: &AccountId) -> ScimResult<NoteSigner> {
        let random = self.ids.random_bytes(32);
        let fresh = || {
            let mut seed = [0u8; 32];
            for (byte, random) in seed.iter_mut().zip(random) {
                *byte = random;
            }
            seed
        };
        let seed = scimitar_store::audit::signing_seed_or_new(
            self.store.as_ref(),
            account,
            fresh,
            self.clock.now(),
        )
        .await?;
        NoteSigner::from_seed(&origin(account), &seed.0)
            .map_err(|error| ScimError::internal_caused_by("the audit signing key", error))
    }

    /// The account's checkpoint now, as a C2SP signed note.
    pub async fn audit_checkpoint(&self, actor: &Actor) -> ScimResult<String> {
        self.authorize_auditor(actor).await?;
        let account = actor.account();
        let signer = self.audit_signer(account).await?;
        let head = self.store.audit_head(account).await?;
        let root = scimitar_store::audit::hash_from_hex(&head.root)
            .ok_or_else(|| ScimError::internal("the stored audit root is not hex"))?;
        signer
            .sign_checkpoint(head.size, &root)
            .map_err(|error| ScimError::internal_caused_by("signing a checkpoint", error))
    }

    /// The verifier key of the account's checkpoints (`<name>+<key id>+<base64 key>`).
    pub async fn audit_verifier_key(&self, actor: &Actor) -> ScimResult<String> {
        self.authorize_auditor(actor).await?;
        let signer = self.audit_signer(actor.account()).await?;
        Ok(signer.verifier().to_verifier_key())
    }

    /// The account's tree of `size` events as proofs need it: the frontier of the events
    /// retention pruned (empty if none were) and the leaf hashes of the events kept up to
    /// `size`. Refused when the trail is shorter (a proof about a tree that does not exist yet
    /// proves nothing) or when `size` itself was pruned.
    async fn audit_tree(
        &self,
        account: &AccountId,
        size: u64,
    ) -> ScimResult<(Frontier, Vec<Hash>)> {
        let head = self.store.audit_head(account).await?;
        if size > head.size {
            return Err(ScimError::invalid_value(format!(
                "the trail holds {} events, fewer than {size}",
                head.size
            )));
        }
        let base = match self.store.audit_pruned(account).await? {
            Some(base) => scimitar_store::audit::base_frontier(&base)?,
            None => Frontier::default(),
        };
        if size < base.size() {
            return Err(pruned_error(base.size()));
        }
        let kept = self.store.audit_leaves(account, size).await?;
        if kept.len() as u64 != size - base.size() {
            return Err(ScimError::internal(
                "the audit trail changed while a proof was computed (pruned meanwhile)",
            ));
        }
        Ok((base, kept))
    }

    /// Proves that event `seq` is in the tree of `size` events.
    pub async fn audit_inclusion_proof(
        &self,
        actor: &Actor,
        seq: u64,
        size: u64,
    ) -> ScimResult<InclusionProof> {
        self.authorize_auditor(actor).await?;
        if seq == 0 || seq > size {
            return Err(ScimError::invalid_value(format!(
                "seq must be between 1 and size ({size}), not {seq}"
            )));
        }
        let account = actor.account();
        let (base, kept) = self.audit_tree(account, size).await?;
        if seq <= base.size() {
            return Err(pruned_error(base.size()));
        }
        let index =
            usize::try_from(seq - 1).map_err(|_| ScimError::invalid_value("seq is too large"))?;
        let proof = merkle::inclusion_proof_after_prune(&base, &kept, index)
            .ok_or_else(|| ScimError::internal("no inclusion proof for an index in range"))?;
        let event = self
            .store
            .audit_events(account, seq - 1, 1)
            .await?
            .pop()
            .filter(|event| event.seq == seq)
            .ok_or_else(|| ScimError::internal("an event in range is missing"))?;
        let leaf = kept
            .get(index - base.size() as usize)
            .ok_or_else(|| ScimError::internal("a leaf in range is missing"))?;
        Ok(InclusionProof {
            seq,
            leaf_index: seq - 1,
            tree_size: size,
            event: event.text,
            leaf_hash: lower_hex(leaf),
            root_hash: lower_hex(&merkle::root_after_prune(&base, &kept)),
            hashes: hex_all(&proof),
        })
    }

    /// Proves that the tree of `first` events is a prefix of the tree of `second`.
    pub async fn audit_consistency_proof(
        &self,
        actor: &Actor,
        first: u64,
        second: u64,
    ) -> ScimResult<ConsistencyProof> {
        self.authorize_auditor(actor).await?;
        if first > second {
            return Err(ScimError::invalid_value(format!(
                "from ({first}) must not be above to ({second})"
            )));
        }
        let (base, kept) = self.audit_tree(actor.account(), second).await?;
        if first < base.size() {
            return Err(pruned_error(base.size()));
        }
        let old =
            usize::try_from(first).map_err(|_| ScimError::invalid_value("from is too large"))?;
        let proof = merkle::consistency_proof_after_prune(&base, &kept, old)
            .ok_or_else(|| ScimError::internal("no consistency proof for sizes in range"))?;
        let old_kept = kept
            .get(..old - base.size() as usize)
            .ok_or_else(|| ScimError::internal("leaves in range are missing"))?;
        Ok(ConsistencyProof {
            first,
            second,
            first_root_hash: lower_hex(&merkle::root_after_prune(&base, old_kept)),
            second_root_hash: lower_hex(&merkle::root_after_prune(&base, &kept)),
            hashes: hex_all(&proof),
        })
    }
}

/// What a proof about pruned events answers.
fn pruned_error(pruned: u64) -> ScimError {
    ScimError::NotFound(format!(
        "events 1 to {pruned} of this trail were pruned (audit retention): no proof involves \
         them any more; proofs start from tree size {pruned}"
    ))
}

/// The filters of `GET /api/2.0/audit/events` and `scimitar audit query`, each optional; an
/// event must match them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Events at or after this time.
    pub start_time: Option<Timestamp>,
    /// Events before this time.
    pub end_time: Option<Timestamp>,
    /// The acting principal's id.
    pub actor: Option<String>,
    /// The action name (`add`, `updatePermissions`, `tokenLogin`, ...).
    pub action: Option<String>,
    /// The service name (`accounts`, `unityCatalog`, `workspace`, ...).
    pub service: Option<String>,
    /// A target's id (a principal, a securable's full name, a workspace, a token id).
    pub target: Option<String>,
    /// `success` (a change that committed) or `failure` (a refused request).
    pub result: Option<String>,
    /// The response's status code (`401`, `403`, ...; `200` for every change).
    pub status_code: Option<u16>,
    /// Continue after this position (the previous page's `next_page_token`).
    pub after: u64,
    /// At most this many events (1 to [`MAX_EVENTS_PAGE`]).
    pub limit: usize,
}

/// The most events one page returns.
pub const MAX_EVENTS_PAGE: usize = 1_000;
/// The most events one request reads while filtering: a filter that matches rarely ends a
/// page early with a token to continue from, rather than reading the whole trail.
const MAX_EVENTS_SCANNED: usize = 20_000;

/// A page of events as Databricks `system.access.audit` rows, and where the next one starts.
/// The token is the position of the last event read: positions only grow, in commit order,
/// and a later append never lands before a position already visible, so a page continued
/// from a token sees every event after it exactly once however many are appended meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPage {
    pub events: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Whether `event` passes every filter of `query`.
pub fn matches(event: &scimitar_store::AuditEvent, query: &EventQuery) -> bool {
    let time = event
        .event_time
        .as_deref()
        .and_then(Timestamp::parse_rfc3339);
    let in_time = match (query.start_time, query.end_time, time) {
        (None, None, _) => true,
        (_, _, None) => false,
        (start, end, Some(time)) => {
            start.is_none_or(|start| time >= start) && end.is_none_or(|end| time < end)
        }
    };
    let by = |wanted: &Option<String>, found: Option<&str>| {
        wanted.as_deref().is_none_or(|wanted| found == Some(wanted))
    };
    let result = if event.response.status_code < 400 {
        "success"
    } else {
        "failure"
    };
    in_time
        && by(
            &query.actor,
            event
                .user_identity
                .as_ref()
                .map(|identity| identity.principal_id.as_str()),
        )
        && by(&query.action, Some(&event.action_name))
        && by(&query.service, Some(&event.service_name))
        && by(&query.result, Some(result))
        && query
            .status_code
            .is_none_or(|status| status == event.response.status_code)
        && query
            .target
            .as_deref()
            .is_none_or(|target| event.targets.iter().any(|found| found.id == target))
}

/// A page of `account`'s events matching `query`, oldest first, read from `store` directly:
/// what the events API serves its admins and `scimitar audit query` prints.
pub async fn query_events(
    store: &dyn scimitar_store::Store,
    account: &AccountId,
    query: &EventQuery,
) -> ScimResult<EventPage> {
    if query.limit == 0 || query.limit > MAX_EVENTS_PAGE {
        return Err(ScimError::invalid_value(format!(
            "limit must be between 1 and {MAX_EVENTS_PAGE}"
        )));
    }
    let mut events = Vec::new();
    let mut position = query.after;
    let mut scanned = 0;
    loop {
        let batch = store
            .audit_events(account, position, MAX_EVENTS_PAGE)
            .await?;
        let exhausted = batch.len() < MAX_EVENTS_PAGE;
        for stored in batch {
            position = stored.seq;
            scanned += 1;
            let event: scimitar_store::AuditEvent = serde_json::from_str(&stored.text)
                .map_err(|error| ScimError::internal_caused_by("a stored audit event", error))?;
            if matches(&event, query) {
                events.push(scimitar_store::audit::databricks_row(&event));
                if events.len() == query.limit {
                    return Ok(EventPage {
                        events,
                        next_page_token: Some(position.to_string()),
                    });
                }
            }
            if scanned == MAX_EVENTS_SCANNED {
                return Ok(EventPage {
                    events,
                    next_page_token: Some(position.to_string()),
                });
            }
        }
        if exhausted {
            return Ok(EventPage {
                events,
                next_page_token: None,
            });
        }
    }
}

impl Services {
    /// A page of the account's events matching `query`, oldest first, for its admins.
    pub async fn audit_events(&self, actor: &Actor, query: &EventQuery) -> ScimResult<EventPage> {
        self.authorize_auditor(actor).await?;
        query_events(self.store.as_ref(), actor.account(), query).await
    }

    /// Which rows of the trail `actor` may query with SQL (`system.access.audit`): every row
    /// for an admin of the account (`None`); only its workspace's for an admin of the
    /// workspace it acts in who is no account admin (`Some`); nothing for anyone else.
    pub(crate) async fn audit_sql_scope(
        &self,
        account: &AccountId,
        principal: &scimitar_domain::PrincipalId,
        workspace: Option<&scimitar_domain::WorkspaceId>,
    ) -> ScimResult<Option<scimitar_domain::WorkspaceId>> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let (account_admin, workspace_admin) = self.access.read(account, |model| {
            (
                is_admin(model, principal),
                crate::authority::is_admin_of(model, principal, workspace),
            )
        })?;
        if account_admin {
            return Ok(None);
        }
        match workspace {
            Some(workspace) if workspace_admin => Ok(Some(workspace.clone())),
            _ => Err(ScimError::Forbidden(format!(
                "only admins may query system.access.audit: principal {principal} is no admin \
                 of the account or of the workspace it calls"
            ))),
        }
    }
}

/// Retention: what a prune of the trails found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub account: AccountId,
    /// Events removed by this prune.
    pub events: u64,
    /// Events removed from the trail's start so far, this prune's included.
    pub pruned_through: u64,
}

impl Services {
    /// Prunes every account's audit events older than `before`, keeping the frontier they
    /// leave so the rest still verifies (`Change::PruneAuditTrail`, which records its own
    /// event). An account with nothing that old is left untouched: no event is written for a
    /// prune that removes nothing. Run by `serve` every [`PRUNE_INTERVAL`] when
    /// `audit_retention_days` is set, and by `scimitar audit prune`.
    pub async fn prune_audit_trails(&self, before: Timestamp) -> ScimResult<Vec<Pruned>> {
        let mut pruned = Vec::new();
        for account in self.store.accounts().await? {
            let account = account.id;
            let start = self
                .store
                .audit_pruned(&account)
                .await?
                .map_or(0, |base| base.size);
            let first = self.store.audit_events(&account, start, 1).await?;
            let old_enough = first.first().is_some_and(|stored| {
                serde_json::from_str::<scimitar_store::AuditEvent>(&stored.text)
                    .ok()
                    .and_then(|event| event.event_time)
                    .and_then(|time| Timestamp::parse_rfc3339(&time))
                    .is_some_and(|time| time < before)
            });
            if !old_enough {
                continue;
            }
            let context = context(self.ids.uuid(), self.clock.now());
            self.store
                .apply_audited(
                    &account,
                    scimitar_store::Change::PruneAuditTrail { before },
                    context,
                )
                .await?;
            let through = self
                .store
                .audit_pruned(&account)
                .await?
                .map_or(0, |base| base.size);
            pruned.push(Pruned {
                account,
                events: through.saturating_sub(start),
                pruned_through: through,
            });
        }
        Ok(pruned)
    }

    /// Prunes events older than `retention` now and then, for as long as the server runs. A
    /// failed prune is logged and tried again at the next turn.
    pub async fn prune_audit_trails_every(&self, retention: std::time::Duration) {
        let mut ticks = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            ticks.tick().await;
            let micros = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
            let before =
                Timestamp::from_micros(self.clock.now().as_micros().saturating_sub(micros));
            match self.prune_audit_trails(before).await {
                Ok(pruned) => {
                    for pruned in pruned {
                        tracing::info!(
                            account = %pruned.account,
                            events = pruned.events,
                            pruned_through = pruned.pruned_through,
                            "audit events pruned (retention)"
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "pruning the audit trails failed"),
            }
        }
    }
}

/// How often `serve` prunes audit events past the retention horizon.
pub const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
