//! Carrying a plan out against a target: creates, adoptions, attribute changes, memberships,
//! deactivations, deletions, in that order. Each item stands alone: one that fails is
//! reported with the target's error and retried by the next run, and the others go on. The
//! job's next state follows only what succeeded.
//!
//! The items of one group are independent of each other, so each group's requests are made
//! concurrently, up to the target's `max_concurrency` ([`crate::pace`]); a group starts only
//! when the one before it is done (memberships name what the creates made; deletions come
//! last), and the answers are taken in the plan's order, so what a run decides and records is
//! what a sequential run would.

use crate::model::{Capabilities, JobState, Kind, Mapping, Ownership};
use crate::pace::each_limited;
use crate::plan::{MemberRef, Plan, Reason};
use crate::scim::{Created, HttpFailure, ScimEndpoint};
use serde::Serialize;

/// One item that failed, with what the target said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What was being done (`create user ada`).
    pub item: String,
    pub error: String,
    /// The target's HTTP status, when it answered (for the audit event's response).
    #[serde(skip)]
    pub status: Option<u16>,
}

/// One thing a run did at the target (or to its state, for an adoption), as the audit trail
/// records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The audit action: `syncCreateUser`, `syncAdopt`, `syncUpdate`, `syncChangeMembers`,
    /// `syncDeactivate`, `syncDeprovision`, `syncDelete`.
    pub name: &'static str,
    pub kind: Kind,
    pub source_id: String,
    pub target_id: String,
    pub label: String,
}

/// What applying a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Write requests that succeeded.
    pub writes: usize,
    pub failures: Vec<Failure>,
    /// Creates answered 409 and adopted: the object existed.
    pub adopted_on_conflict: usize,
    /// What was done, in the plan's order.
    #[serde(skip)]
    pub actions: Vec<Action>,
}

impl Applied {
    fn fail(&mut self, item: String, error: String, status: Option<u16>) {
        tracing::warn!(%item, %error, "sync item failed");
        self.failures.push(Failure {
            item,
            error,
            status,
        });
    }

    fn failed(&mut self, item: String, failure: HttpFailure) {
        let status = failure.status;
        self.fail(item, failure.to_string(), status);
    }

    fn did(
        &mut self,
        name: &'static str,
        kind: Kind,
        source_id: &str,
        target_id: &str,
        label: &str,
    ) {
        self.actions.push(Action {
            name,
            kind,
            source_id: source_id.to_string(),
            target_id: target_id.to_string(),
            label: label.to_string(),
        });
    }
}

/// The audit action of a create of `kind`.
fn create_action(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "syncCreateUser",
        Kind::Group => "syncCreateGroup",
        Kind::ServicePrincipal => "syncCreateServicePrincipal",
    }
}

/// Applies `plan`, returning what happened and the state to record. `now` is when
/// deprovisioning is recorded, in microseconds.
pub async fn apply(
    plan: &Plan,
    target: &ScimEndpoint,
    capabilities: &Capabilities,
    state: &JobState,
    now: i64,
) -> (Applied, JobState) {
    let mut applied = Applied::default();
    let mut next = state.clone();
    let limit = target.limits().max_concurrency;
    crate::progress::note(crate::progress::Step::WritesPlanned(
        plan.creates.len()
            + plan.updates.len()
            + plan.memberships.len()
            + plan.deactivations.len()
            + plan.deletions.len(),
    ));

    for (kind, source_id) in &plan.forgotten {
        next.mappings.remove(&(*kind, source_id.clone()));
    }
    for key in &plan.restored {
        if let Some(mapping) = next.mappings.get_mut(key) {
            mapping.deprovisioned_at = None;
        }
    }
    for ambiguity in &plan.ambiguities {
        applied.fail(
            format!("match {} {}", ambiguity.kind.as_str(), ambiguity.label),
            format!(
                "{} target objects have the same {}: resolve by hand",
                ambiguity.candidates.len(),
                ambiguity.matched_by.as_str()
            ),
            None,
        );
    }

    let created = plan
        .creates
        .iter()
        .map(|create| target.create(create.kind, &create.attributes, create.active))
        .collect();
    let created = each_limited(created, limit).await;
    for (create, answer) in plan.creates.iter().zip(created) {
        let item = format!("create {} {}", create.kind.as_str(), create.label);
        match answer {
            Ok(Created::New(id)) => {
                applied.writes += 1;
                applied.did(
                    create_action(create.kind),
                    create.kind,
                    &create.source_id,
                    &id,
                    &create.label,
                );
                next.mappings.insert(
                    (create.kind, create.source_id.clone()),
                    Mapping {
                        target_id: id,
                        ownership: Ownership::Created,
                        deprovisioned_at: None,
                    },
                );
            }
            Ok(Created::Existing(id)) => {
                if let Some(owner) = next.owner_of(create.kind, &id) {
                    applied.fail(
                        item,
                        format!("the target object {id} it conflicts with is managed for source object {owner}"),
                        Some(409),
                    );
                    continue;
                }
                applied.adopted_on_conflict += 1;
                applied.did(
                    "syncAdopt",
                    create.kind,
                    &create.source_id,
                    &id,
                    &create.label,
                );
                next.mappings.insert(
                    (create.kind, create.source_id.clone()),
                    Mapping {
                        target_id: id,
                        ownership: Ownership::Adopted,
                        deprovisioned_at: None,
                    },
                );
            }
            Err(failure) => applied.failed(item, failure),
        }
    }
    for adoption in &plan.adoptions {
        applied.did(
            "syncAdopt",
            adoption.kind,
            &adoption.source_id,
            &adoption.target_id,
            &adoption.label,
        );
        next.mappings.insert(
            (adoption.kind, adoption.source_id.clone()),
            Mapping {
                target_id: adoption.target_id.clone(),
                ownership: Ownership::Adopted,
                deprovisioned_at: None,
            },
        );
    }
    let updated = plan
        .updates
        .iter()
        .map(|update| target.update(update.kind, &update.target_id, &update.diffs, capabilities))
        .collect();
    let updated = each_limited(updated, limit).await;
    for (update, answer) in plan.updates.iter().zip(updated) {
        match answer {
            Ok(()) => {
                applied.writes += 1;
                applied.did(
                    "syncUpdate",
                    update.kind,
                    &update.source_id,
                    &update.target_id,
                    &update.label,
                );
            }
            Err(failure) => applied.failed(
                format!("update {} {}", update.kind.as_str(), update.label),
                failure,
            ),
        }
    }

    // Memberships name their members by target id, which the creates above may just have
    // made: resolved now, in order, then written concurrently.
    let resolve = |next: &JobState, member: &MemberRef| -> Option<String> {
        member.target_id.clone().or_else(|| {
            let source_id = member.source_id.clone()?;
            next.mappings
                .get(&(member.kind, source_id))
                .map(|mapping| mapping.target_id.clone())
        })
    };
    let mut writes = Vec::new();
    for change in &plan.memberships {
        let item = format!("change members of group {}", change.label);
        let group_id = change.group_target_id.clone().or_else(|| {
            next.mappings
                .get(&(Kind::Group, change.group_source_id.clone()))
                .map(|mapping| mapping.target_id.clone())
        });
        let Some(group_id) = group_id else {
            applied.fail(item, "the group was not created".into(), None);
            continue;
        };
        // A member whose create failed is left out (its failure is reported already) and
        // added by the run that creates it.
        let add: Vec<String> = change
            .add
            .iter()
            .filter_map(|m| resolve(&next, m))
            .collect();
        let remove: Vec<String> = change
            .remove
            .iter()
            .filter_map(|m| resolve(&next, m))
            .collect();
        if add.is_empty() && remove.is_empty() {
            continue;
        }
        writes.push((change, item, group_id, add, remove));
    }
    let changed = writes
        .iter()
        .map(|(_, _, group_id, add, remove)| {
            target.change_members(group_id, add, remove, capabilities)
        })
        .collect();
    let changed = each_limited(changed, limit).await;
    for ((change, item, group_id, _, _), answer) in writes.into_iter().zip(changed) {
        match answer {
            Ok(()) => {
                applied.writes += 1;
                applied.did(
                    "syncChangeMembers",
                    Kind::Group,
                    &change.group_source_id,
                    &group_id,
                    &change.label,
                );
            }
            Err(failure) => applied.failed(item, failure),
        }
    }

    // Groups are retired, not deactivated: only their members change (above).
    let deactivated = plan
        .deactivations
        .iter()
        .filter(|item| item.kind.can_deactivate())
        .map(|item| target.deactivate(item.kind, &item.target_id, capabilities))
        .collect();
    let mut deactivated = each_limited(deactivated, limit).await.into_iter();
    for item in &plan.deactivations {
        let answer = if item.kind.can_deactivate() {
            deactivated.next()
        } else {
            None
        };
        if let Some(answer) = answer {
            let name = format!("deactivate {} {}", item.kind.as_str(), item.label);
            match answer {
                Ok(()) => applied.writes += 1,
                Err(failure) => {
                    applied.failed(name, failure);
                    continue;
                }
            }
        }
        // A suspension at the source is a deactivation; anything gone from it is a
        // deprovisioning, which starts the grace period.
        let action = match item.reason {
            Reason::GoneFromSource => "syncDeprovision",
            _ => "syncDeactivate",
        };
        applied.did(
            action,
            item.kind,
            &item.source_id,
            &item.target_id,
            &item.label,
        );
        if item.reason == Reason::GoneFromSource {
            if let Some(mapping) = next.mappings.get_mut(&(item.kind, item.source_id.clone())) {
                mapping.deprovisioned_at = Some(now);
            }
        }
    }
    let deleted = plan
        .deletions
        .iter()
        .map(|item| target.delete(item.kind, &item.target_id))
        .collect();
    let deleted = each_limited(deleted, limit).await;
    for (item, answer) in plan.deletions.iter().zip(deleted) {
        match answer {
            Ok(()) => {
                applied.writes += 1;
                applied.did(
                    "syncDelete",
                    item.kind,
                    &item.source_id,
                    &item.target_id,
                    &item.label,
                );
                next.mappings.remove(&(item.kind, item.source_id.clone()));
            }
            Err(failure) => applied.failed(
                format!("delete {} {}", item.kind.as_str(), item.label),
                failure,
            ),
        }
    }
    (applied, next)
}
