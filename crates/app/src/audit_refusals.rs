//! Refused requests in the audit trail: every 401, 403 and client-caused 4xx the HTTP edge
//! answers is offered to a bounded [`RefusalQueue`] and written by one background
//! [`RefusalWriter`] in batches, one event per refusal, in the Merkle trail of the account the
//! request addressed (`docs/design/audit.md`).
//!
//! Nothing here is on a refusal's path: offering never waits (a full queue drops the refusal
//! and counts it), and the write happens after the answer was sent, so a refusal is answered
//! as fast with the trail as without it. Nothing here lets a client grow the database at will
//! either: the queue is bounded, and each account takes at most a configured number of
//! refusal events per minute; what is over is dropped, counted in the metrics and logged
//! (once per account and minute, so the log cannot be flooded instead).

use crate::audit::{RequestActor, RequestInfo};
use crate::Services;
use scimitar_domain::{AccountId, Timestamp, WorkspaceId};
use scimitar_store::{AuditContext, Change, Refusal};
use serde_json::{json, Map};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How refusals are queued and budgeted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalSettings {
    /// Refusals waiting to be written, at most; more are dropped (and counted).
    pub queue_capacity: usize,
    /// Refusal events one account takes per minute, at most; more are dropped (and counted).
    pub per_account_per_minute: u32,
}

impl Default for RefusalSettings {
    fn default() -> Self {
        RefusalSettings {
            queue_capacity: 1024,
            per_account_per_minute: 600,
        }
    }
}

/// The most refusals written in one transaction.
const BATCH: usize = 256;

/// The longest text kept of what a client chose (a path, a user agent, an error message that
/// quotes its input), so one refusal is a bounded row.
const LONGEST_TEXT: usize = 256;

/// Which account a refused request named, before anything was looked up: resolved by the
/// writer, off the refusal's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressedAccount {
    /// `/api/2.x/accounts/{account_id}/...`.
    Account(String),
    /// `/w/{workspace_id}/...`.
    WorkspaceId(String),
    /// A workspace's host name.
    DeploymentName(String),
    /// No account or workspace in the request: the deployment's default.
    Default,
}

/// A refused request as the HTTP edge saw it: never a header's value besides the user agent
/// and request id (in `info`), never a body.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedRequest {
    pub time: Timestamp,
    /// Who the request authenticated as, when it did (a 403, a 404 ...); `None` for a 401.
    pub actor: Option<RequestActor>,
    pub addressed: AddressedAccount,
    pub info: RequestInfo,
    /// The kind of credential presented (`none`, `personal_access_token`,
    /// `oauth_access_token`, `bearer`, `basic`, `other`), decided from its form, never kept.
    pub credential_kind: &'static str,
    /// Databricks' service name of the API called (`accounts`, `unityCatalog`, ...).
    pub service_name: &'static str,
    pub method: String,
    /// The route template matched (`(no route)` when none did: a path is the client's text).
    pub route: String,
    pub status: u16,
    /// The error's stable code, when known, and the status's reason phrase. Not the message
    /// the client was told: it may echo the client's input (names, ids), and the trail is no
    /// place for text a client chooses.
    pub error_code: Option<&'static str>,
    pub error_message: Option<String>,
}

/// What happened to refusals, for the metrics.
#[derive(Debug, Default)]
pub struct RefusalCounters {
    /// Written to the trail.
    pub recorded: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Dropped because their account had taken its refusals for the minute.
    pub dropped_over_budget: AtomicU64,
    /// Dropped because no account could be found for them.
    pub dropped_unattributed: AtomicU64,
    /// Lost because the database refused the batch.
    pub write_failures: AtomicU64,
}

/// The edge's side: offers refusals, never waits.
#[derive(Clone)]
pub struct RefusalQueue {
    sender: mpsc::Sender<RefusedRequest>,
    counters: Arc<RefusalCounters>,
}

/// The writer's side: drains the queue in batches (see [`RefusalWriter::run`]).
pub struct RefusalWriter {
    receiver: mpsc::Receiver<RefusedRequest>,
    counters: Arc<RefusalCounters>,
    settings: RefusalSettings,
}

impl RefusalQueue {
    pub fn new(settings: RefusalSettings) -> (RefusalQueue, RefusalWriter) {
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let counters = Arc::new(RefusalCounters::default());
        (
            RefusalQueue {
                sender,
                counters: counters.clone(),
            },
            RefusalWriter {
                receiver,
                counters,
                settings,
            },
        )
    }

    /// Queues a refusal for the writer, or drops and counts it when the queue is full (logged
    /// at the first drop and at every power of two after, so a flood cannot flood the log).
    pub fn offer(&self, refused: RefusedRequest) {
        if self.sender.try_send(refused).is_err() {
            let dropped = self
                .counters
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "the audit refusal queue is full: refused requests are being dropped from \
                     the trail"
                );
            }
        }
    }

    pub fn counters(&self) -> &RefusalCounters {
        &self.counters
    }
}

/// Cuts client-chosen text to [`LONGEST_TEXT`] characters.
pub fn cut(text: &str) -> String {
    match text.char_indices().nth(LONGEST_TEXT) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// The kind of credential an `Authorization` header holds, from its form alone: a Databricks
/// personal access token starts `dapi`, an OAuth access token is a JWT (three dot-separated
/// parts). The value itself is never kept.
pub fn credential_kind(authorization: Option<&str>) -> &'static str {
    let Some(value) = authorization else {
        return "none";
    };
    let value = value.trim();
    let Some((scheme, secret)) = value.split_once(' ') else {
        return "other";
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return "basic";
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return "other";
    }
    let secret = secret.trim();
    if secret.starts_with("dapi") {
        "personal_access_token"
    } else if secret.split('.').count() == 3 {
        "oauth_access_token"
    } else {
        "bearer"
    }
}

/// A refusal's event: `tokenLogin` for a failed authentication (Databricks' action for a
/// token's use), else the method and route refused; what was asked in `request_params`.
fn refusal_event(
    refused: RefusedRequest,
    event_id: String,
    workspace: Option<WorkspaceId>,
) -> Refusal {
    let action_name = if refused.status == 401 {
        "tokenLogin".to_string()
    } else {
        format!("{} {}", refused.method, refused.route)
    };
    let mut params = Map::new();
    params.insert("method".into(), json!(refused.method));
    params.insert("path".into(), json!(refused.route));
    params.insert("credential_kind".into(), json!(refused.credential_kind));
    if let Some(code) = refused.error_code {
        params.insert("error_code".into(), json!(code));
    }
    Refusal {
        context: AuditContext {
            event_id,
            event_time: Some(refused.time),
            workspace_id: workspace,
            user_identity: refused.actor.map(|actor| actor.identity),
            source_ip_address: refused.info.source_ip_address.map(|ip| ip.to_string()),
            user_agent: refused.info.user_agent.as_deref().map(cut),
            request_id: refused.info.request_id,
        },
        service_name: refused.service_name.to_string(),
        action_name,
        request_params: params,
        status_code: refused.status,
        error_message: refused.error_message.as_deref().map(cut),
    }
}

/// How many refusal events an account took in the current minute.
struct Budget {
    minute: i64,
    taken: u32,
}

impl RefusalWriter {
    /// Writes queued refusals until every [`RefusalQueue`] is dropped, then what is left.
    /// `default_account` takes the refusals that name no account the deployment has (an
    /// unknown account id, no account in the path): the default workspace's account, or the
    /// only account; without one they are dropped and counted.
    pub async fn run(mut self, services: Services, default_account: Option<AccountId>) {
        let mut budgets: HashMap<AccountId, Budget> = HashMap::new();
        while let Some(first) = self.receiver.recv().await {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match self.receiver.try_recv() {
                    Ok(refused) => batch.push(refused),
                    Err(_) => break,
                }
            }
            self.write(&services, batch, default_account.as_ref(), &mut budgets)
                .await;
        }
    }

    async fn write(
        &self,
        services: &Services,
        batch: Vec<RefusedRequest>,
        default_account: Option<&AccountId>,
        budgets: &mut HashMap<AccountId, Budget>,
    ) {
        let accounts: Vec<AccountId> = match services.store.accounts().await {
            Ok(accounts) => accounts.into_iter().map(|account| account.id).collect(),
            Err(error) => {
                tracing::warn!(%error, "refusals could not be recorded: the accounts are unreadable");
                self.counters
                    .write_failures
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
        };
        let fallback = default_account
            .cloned()
            .or_else(|| (accounts.len() == 1).then(|| accounts[0].clone()));
        let mut by_account: Vec<(AccountId, Vec<Refusal>)> = Vec::new();
        for refused in batch {
            // The account the request addressed, when the deployment has it; else the one the
            // credential belongs to; else the default.
            let addressed = match &refused.addressed {
                AddressedAccount::Account(id) => accounts
                    .iter()
                    .find(|account| account.as_str() == id)
                    .map(|account| (account.clone(), None)),
                AddressedAccount::WorkspaceId(id) => services
                    .workspace(&WorkspaceId::new(id.clone()))
                    .await
                    .ok()
                    .map(|workspace| (workspace.account, Some(workspace.id))),
                AddressedAccount::DeploymentName(name) => services
                    .workspace_by_deployment_name(name)
                    .await
                    .ok()
                    .map(|workspace| (workspace.account, Some(workspace.id))),
                AddressedAccount::Default => None,
            };
            let (account, workspace) = match (addressed, &refused.actor) {
                (Some((account, workspace)), _) => (Some(account), workspace),
                (None, Some(actor)) => (Some(actor.account.clone()), actor.workspace.clone()),
                (None, None) => (fallback.clone(), None),
            };
            let Some(account) = account else {
                let dropped = self
                    .counters
                    .dropped_unattributed
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped,
                        "a refused request names no account and the deployment has no default: \
                         not recorded"
                    );
                }
                continue;
            };
            let minute = refused.time.as_micros().div_euclid(60_000_000);
            let budget = budgets
                .entry(account.clone())
                .or_insert(Budget { minute, taken: 0 });
            if budget.minute != minute {
                *budget = Budget { minute, taken: 0 };
            }
            if budget.taken >= self.settings.per_account_per_minute {
                self.counters
                    .dropped_over_budget
                    .fetch_add(1, Ordering::Relaxed);
                if budget.taken == self.settings.per_account_per_minute {
                    tracing::warn!(
                        %account,
                        per_minute = self.settings.per_account_per_minute,
                        "the account took its refusal events for this minute: further refusals \
                         are counted, not recorded"
                    );
                    // Counted past the budget once, so the line is written once a minute.
                    budget.taken += 1;
                }
                continue;
            }
            budget.taken += 1;
            let event = refusal_event(refused, services.ids.uuid(), workspace);
            match by_account.iter_mut().find(|(found, _)| *found == account) {
                Some((_, events)) => events.push(event),
                None => by_account.push((account, vec![event])),
            }
        }
        // Forget the budgets of minutes gone, so the map holds the accounts of this minute.
        if budgets.len() > 1024 {
            let now = services.clock.now().as_micros().div_euclid(60_000_000);
            budgets.retain(|_, budget| budget.minute >= now);
        }
        for (account, events) in by_account {
            let count = events.len() as u64;
            let change = Change::RecordRefusals(events);
            match services
                .store
                .apply_audited(&account, change, AuditContext::unattributed())
                .await
            {
                Ok(()) => {
                    self.counters.recorded.fetch_add(count, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::warn!(%account, %error, count, "refusals could not be recorded");
                    self.counters
                        .write_failures
                        .fetch_add(count, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_credential_is_told_by_its_form_and_never_kept() {
        assert_eq!(credential_kind(None), "none");
        assert_eq!(
            credential_kind(Some("Bearer dapi0123")),
            "personal_access_token"
        );
        assert_eq!(credential_kind(Some("Bearer a.b.c")), "oauth_access_token");
        assert_eq!(credential_kind(Some("bearer xyz")), "bearer");
        assert_eq!(credential_kind(Some("Basic dXNlcjpwYXNz")), "basic");
        assert_eq!(credential_kind(Some("Negotiate")), "other");
    }

    #[test]
    fn client_text_is_cut_short() {
        assert_eq!(cut("short"), "short");
        let long = "x".repeat(1000);
        assert_eq!(cut(&long).chars().count(), LONGEST_TEXT + 3);
    }

    #[test]
    fn an_authentication_failure_is_a_token_login_and_others_name_their_route() {
        let refused = RefusedRequest {
            time: Timestamp::from_micros(0),
            actor: None,
            addressed: AddressedAccount::Default,
            info: RequestInfo::default(),
            credential_kind: "bearer",
            service_name: "accounts",
            method: "GET".into(),
            route: "/scim/v2/Users".into(),
            status: 401,
            error_code: Some("unauthorized"),
            error_message: None,
        };
        let event = refusal_event(refused.clone(), "id".into(), None);
        assert_eq!(event.action_name, "tokenLogin");
        assert_eq!(
            event.request_params["credential_kind"],
            Value::from("bearer")
        );
        let forbidden = RefusedRequest {
            status: 403,
            ..refused
        };
        let event = refusal_event(forbidden, "id".into(), None);
        assert_eq!(event.action_name, "GET /scim/v2/Users");
        assert_eq!(event.status_code, 403);
    }
}
