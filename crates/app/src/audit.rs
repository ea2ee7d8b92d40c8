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
use scimitar_audit::{merkle, Hash, NoteSigner};
use scimitar_domain::ids::lower_hex;
use scimitar_domain::{AccountId, ScimError, ScimResult, Timestamp};
use scimitar_store::{AuditContext, UserIdentity};
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What the edge knows about a request: never a credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub source_ip_address: Option<String>,
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
    let scope = Arc::new(RequestScope {
        info,
        actor: Mutex::new(None),
    });
    REQUEST.scope(scope, work).await
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
        context.source_ip_address = scope.info.source_ip_address.clone();
        context.user_agent = scope.info.user_agent.clone();
        context.request_id = scope.info.request_id.clone();
        let actor = scope.actor.lock().ok().and_then(|slot| slot.clone());
        if let Some(actor) = actor {
            context.workspace_id = actor.workspace().cloned();
            context.user_identity = Some(UserIdentity {
                principal_id: actor.principal().to_string(),
                credential_kind: match actor.token() {
                    Some(_) => "token".into(),
                    None => "operator".into(),
                },
                credential_id: actor.token().map(|token| token.id.clone()),
            });
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

    /// The leaf hashes of the account's first `size` events, refused when the trail is
    /// shorter (a proof about a tree that does not exist yet proves nothing).
    async fn audit_leaves(&self, account: &AccountId, size: u64) -> ScimResult<Vec<Hash>> {
        let head = self.store.audit_head(account).await?;
        if size > head.size {
            return Err(ScimError::invalid_value(format!(
                "the trail holds {} events, fewer than {size}",
                head.size
            )));
        }
        let leaves = self.store.audit_leaves(account, size).await?;
        if leaves.len() as u64 != size {
            return Err(ScimError::internal(
                "the audit trail has fewer events than its head counts",
            ));
        }
        Ok(leaves)
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
        let leaves = self.audit_leaves(account, size).await?;
        let index =
            usize::try_from(seq - 1).map_err(|_| ScimError::invalid_value("seq is too large"))?;
        let proof = merkle::inclusion_proof(&leaves, index)
            .ok_or_else(|| ScimError::internal("no inclusion proof for an index in range"))?;
        let event = self
            .store
            .audit_events(account, seq - 1, 1)
            .await?
            .pop()
            .ok_or_else(|| ScimError::internal("an event in range is missing"))?;
        Ok(InclusionProof {
            seq,
            leaf_index: seq - 1,
            tree_size: size,
            event: event.text,
            leaf_hash: lower_hex(&leaves[index]),
            root_hash: lower_hex(&merkle::root(&leaves)),
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
        let leaves = self.audit_leaves(actor.account(), second).await?;
        let old =
            usize::try_from(first).map_err(|_| ScimError::invalid_value("from is too large"))?;
        let proof = merkle::consistency_proof(&leaves, old)
            .ok_or_else(|| ScimError::internal("no consistency proof for sizes in range"))?;
        Ok(ConsistencyProof {
            first,
            second,
            first_root_hash: lower_hex(&merkle::root(&leaves[..old])),
            second_root_hash: lower_hex(&merkle::root(&leaves)),
            hashes: hex_all(&proof),
        })
    }
}

/// The filters of `GET /api/2.0/audit/events`, each optional; an event must match them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Events at or after this time.
    pub start_time: Option<Timestamp>,
    /// Events before this time.
    pub end_time: Option<Timestamp>,
    /// The acting principal's id.
    pub actor: Option<String>,
    /// The action name (`add`, `updatePermissions`, ...).
    pub action: Option<String>,
    /// A target's id (a principal, a securable's full name, a workspace, a token id).
    pub target: Option<String>,
    /// `success` or `failure` (refusals are not recorded yet, so `failure` finds none).
    pub result: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPage {
    pub events: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

fn matches(event: &scimitar_store::AuditEvent, query: &EventQuery) -> bool {
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
        && by(&query.result, Some(result))
        && query
            .target
            .as_deref()
            .is_none_or(|target| event.targets.iter().any(|found| found.id == target))
}

impl Services {
    /// A page of the account's events matching `query`, oldest first, for its admins.
    pub async fn audit_events(&self, actor: &Actor, query: &EventQuery) -> ScimResult<EventPage> {
        self.authorize_auditor(actor).await?;
        if query.limit == 0 || query.limit > MAX_EVENTS_PAGE {
            return Err(ScimError::invalid_value(format!(
                "limit must be between 1 and {MAX_EVENTS_PAGE}"
            )));
        }
        let mut events = Vec::new();
        let mut position = query.after;
        let mut scanned = 0;
        loop {
            let batch = self
                .store
                .audit_events(actor.account(), position, MAX_EVENTS_PAGE)
                .await?;
            let exhausted = batch.len() < MAX_EVENTS_PAGE;
            for stored in batch {
                position = stored.seq;
                scanned += 1;
                let event: scimitar_store::AuditEvent = serde_json::from_str(&stored.text)
                    .map_err(|error| {
                        ScimError::internal_caused_by("a stored audit event", error)
                    })?;
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
}
