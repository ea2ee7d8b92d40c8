//! A run's actions as audit events: every create, adoption, update, membership change,
//! deactivation, deprovisioning and deletion, the deletion guard's stop, a failed run and a
//! quarantine, each an event of the service `sync` attributed to the job (`sync-job:<name>`),
//! written to the trail of the account the job answers to in the transaction that records the
//! run (`Change::RecordSyncRun`), so the trail and the run history never disagree. Alert rules
//! match them as they match any event (an `event_filter` on `service_name eq "sync"`, or on
//! one action), which is how a failing job raises its alerts.
//!
//! The account is the job's `account`, else the state database's only one; a state database
//! that holds no account has no trail, and the job writes none. An event names the job, the
//! target (its base URL, and its name when it is one of the job's `[[targets]]`) and the item
//! (kind, source and target ids, label), never a token. Each target's run is recorded under
//! its own state key, with its own events: one target's failure or quarantine is its own.

use crate::apply::Action;
use crate::config::state_key;
use crate::model::Kind;
use crate::quarantine::{self, QuarantineSettings};
use crate::run::{Job, Report};
use crate::{SyncError, SyncResult};
use scimitar_domain::{AccountId, Clock, IdGenerator, RandomIds};
use scimitar_store::audit::{AuditContext, AuditTarget, UserIdentity};
use scimitar_store::{Store, SyncAudit, SyncAuditEvent, SyncRunRecord};
use serde_json::{json, Map, Value};

/// How many of a failed run's failures its event lists (the report keeps them all).
const LISTED_FAILURES: usize = 100;

/// An event before it is given its time, id and actor.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub action: &'static str,
    pub params: Map<String, Value>,
    pub targets: Vec<AuditTarget>,
    pub status_code: u16,
    pub error_message: Option<String>,
}

/// Which of a job's targets an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetRef<'a> {
    /// Its name among the job's `[[targets]]`; `None` for a lone `[target]`.
    pub name: Option<&'a str>,
    /// Its base URL (which holds no secret).
    pub url: &'a str,
}

/// The parameters every event of a job carries: which job, and which target (`target`, its
/// URL, and `targetName` for one of `[[targets]]`).
fn params(job: &str, target: TargetRef<'_>, more: Value) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("job".into(), json!(job));
    params.insert("target".into(), json!(target.url));
    if let Some(name) = target.name {
        params.insert("targetName".into(), json!(name));
    }
    if let Value::Object(more) = more {
        params.extend(more);
    }
    params
}

fn target_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "User",
        Kind::Group => "Group",
        Kind::ServicePrincipal => "ServicePrincipal",
    }
}

/// The events of a completed run: its actions in order, then its guard stop or its failure.
pub fn of_run(job: &str, target: TargetRef<'_>, report: &Report, actions: &[Action]) -> Vec<Event> {
    let mut events: Vec<Event> = actions
        .iter()
        .map(|action| Event {
            action: action.name,
            params: params(
                job,
                target,
                json!({
                    "kind": action.kind.as_str(),
                    "sourceId": action.source_id,
                    "targetId": action.target_id,
                    "label": action.label,
                }),
            ),
            targets: vec![AuditTarget {
                kind: target_kind(action.kind).to_string(),
                id: action.target_id.clone(),
                display_name: Some(action.label.clone()),
                modified_properties: Vec::new(),
            }],
            status_code: 200,
            error_message: None,
        })
        .collect();
    if let (Some(reason), Some(guard)) = (&report.stopped, &report.plan.guard) {
        events.push(Event {
            action: "syncGuardStop",
            params: params(
                job,
                target,
                json!({
                    "deprovisions": guard.deprovisions,
                    "managed": guard.managed,
                    "maxPercent": guard.max_percent,
                    "maxCount": guard.max_count,
                }),
            ),
            targets: Vec::new(),
            // Refused by the job's own policy until an operator allows it.
            status_code: 409,
            error_message: Some(reason.clone()),
        });
    } else if let Some(reason) = &report.stopped {
        // Stopped because the plan is not the one an operator reviewed (`apply --plan`).
        events.push(Event {
            action: "syncReviewedPlanMismatch",
            params: params(job, target, json!({})),
            targets: Vec::new(),
            status_code: 409,
            error_message: Some(reason.clone()),
        });
    }
    if let Some(first) = report.failures.first() {
        let listed: Vec<Value> = report
            .failures
            .iter()
            .take(LISTED_FAILURES)
            .map(|failure| json!({"item": failure.item, "error": failure.error}))
            .collect();
        events.push(Event {
            action: "syncRunFailed",
            params: params(
                job,
                target,
                json!({
                    "failed": report.failures.len(),
                    "writes": report.writes,
                    "failures": listed,
                }),
            ),
            targets: Vec::new(),
            status_code: first.status.filter(|status| *status >= 400).unwrap_or(502),
            error_message: Some(format!("{}: {}", first.item, first.error)),
        });
    }
    events
}

/// The event of a run that could not complete (the source, the target or the state down).
pub fn of_error(job: &str, target: TargetRef<'_>, error: &str) -> Event {
    Event {
        action: "syncRunFailed",
        params: params(job, target, json!({"failed": "run"})),
        targets: Vec::new(),
        status_code: 502,
        error_message: Some(error.to_string()),
    }
}

/// The event of the run that quarantined the job.
pub fn quarantined(
    job: &str,
    target: TargetRef<'_>,
    settings: &QuarantineSettings,
    error: &str,
) -> Event {
    Event {
        action: "syncQuarantined",
        params: params(
            job,
            target,
            json!({
                "failuresInARow": settings.after_failures,
                "intervalSeconds": settings.interval.as_secs(),
            }),
        ),
        targets: Vec::new(),
        status_code: 503,
        error_message: Some(error.to_string()),
    }
}

/// The event of an operator lifting the quarantine.
pub fn resumed(job: &str, target: TargetRef<'_>) -> Event {
    Event {
        action: "syncResumed",
        params: params(job, target, json!({})),
        targets: Vec::new(),
        status_code: 200,
        error_message: None,
    }
}

/// Who a job is in the trail: `sync-job:<name>`, acting with the database's own authority
/// (it holds the state database, as an operator at the CLI does).
pub fn actor(job: &str) -> UserIdentity {
    UserIdentity {
        principal_id: format!("sync-job:{job}"),
        credential_kind: "operator".to_string(),
        credential_id: None,
    }
}

/// The account whose trail a job's events join: `configured` (which must exist), else the
/// state database's only account; `None` when it holds none. Several accounts and none
/// configured is refused rather than guessed.
pub async fn account_of(
    store: &dyn Store,
    configured: Option<&str>,
) -> SyncResult<Option<AccountId>> {
    let accounts = store.accounts().await?;
    if let Some(configured) = configured {
        return match accounts
            .into_iter()
            .find(|account| account.id.as_str() == configured)
        {
            Some(account) => Ok(Some(account.id)),
            None => Err(SyncError::Config(format!(
                "account {configured}: the state database holds no such account"
            ))),
        };
    }
    let mut accounts = accounts;
    match accounts.len() {
        0 => Ok(None),
        1 => Ok(Some(accounts.remove(0).id)),
        _ => Err(SyncError::Config(
            "the state database holds several accounts: name the one whose audit trail the \
             job's events join with `account`"
                .into(),
        )),
    }
}

/// The events of a target's run about to be recorded as `record`: its own ([`of_run`], or
/// [`of_error`] for a run that could not complete), and [`quarantined`] when this run is the
/// one that quarantines the target (read from the runs before it under the target's state
/// key, `target` being its name among the job's `[[targets]]`).
pub async fn for_run(
    store: &dyn Store,
    job: &Job,
    target: Option<&str>,
    record: &SyncRunRecord,
    mut events: Vec<Event>,
) -> SyncResult<Vec<Event>> {
    let settings = &job.oversight.quarantine;
    let key = state_key(&job.name, target);
    let earlier = quarantine::latest_runs(store, &key, settings).await?;
    if quarantine::enters(&earlier, quarantine::failed_wholly(record), settings) {
        let error = quarantine::error_of(record);
        events.push(quarantined(
            &job.name,
            job.target_ref(target),
            settings,
            &error,
        ));
    }
    Ok(events)
}

/// The events ready for the run's record: each with its time, a fresh id and the job as actor,
/// for the job's account (`None`: no trail to write to, [`account_of`]).
pub fn audit(
    clock: &dyn Clock,
    job: &str,
    account: Option<AccountId>,
    events: Vec<Event>,
) -> Option<SyncAudit> {
    let account = account?;
    if events.is_empty() {
        return None;
    }
    let now = clock.now();
    // Event ids only name events; nothing compares them, so they need no injected generator.
    let events = events
        .into_iter()
        .map(|event| SyncAuditEvent {
            context: AuditContext {
                event_id: RandomIds.uuid(),
                event_time: Some(now),
                user_identity: Some(actor(job)),
                ..AuditContext::default()
            },
            action_name: event.action.to_string(),
            request_params: event.params,
            targets: event.targets,
            status_code: event.status_code,
            error_message: event.error_message,
        })
        .collect();
    Some(SyncAudit { account, events })
}
