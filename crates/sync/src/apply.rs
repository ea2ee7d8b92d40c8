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

use crate::bulk::CreateRequest;
use crate::model::{Capabilities, JobState, Kind, Mapping, Ownership};
use crate::pace::each_limited;
use crate::plan::{Create, MembershipChange};
use crate::plan::{MemberRef, Plan, Reason};
use crate::scim::{Created, HttpFailure, ScimEndpoint};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

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

    // Users and service principals first, then groups with the members they can already be
    // given (`creates_in_order`); what a group's create could not carry is added below.
    let bulk = if capabilities.bulk {
        crate::bulk::limits_for(target).await
    } else {
        None
    };
    let pending_memberships = memberships_of_new_groups(plan);
    let mut carried: HashMap<&str, HashSet<String>> = HashMap::new();
    for wave in creates_in_order(plan, &pending_memberships) {
        let requests: Vec<CreateRequest> = wave
            .iter()
            .map(|create| CreateRequest {
                kind: create.kind,
                attributes: &create.attributes,
                active: create.active,
                members: pending_memberships
                    .get(create.source_id.as_str())
                    .filter(|_| create.kind == Kind::Group)
                    .map(|change| {
                        change
                            .add
                            .iter()
                            .filter_map(|member| resolve(&next, member))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        let answers = match bulk {
            Some(limits) => crate::bulk::create_all(target, &requests, limits).await,
            None => {
                let created = requests
                    .iter()
                    .map(|request| {
                        target.create(
                            request.kind,
                            request.attributes,
                            request.active,
                            &request.members,
                        )
                    })
                    .collect();
                each_limited(created, limit).await
            }
        };
        for ((create, request), answer) in wave.into_iter().zip(requests).zip(answers) {
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
                    if !request.members.is_empty() {
                        // Its members changed with the create: the trail says so as it
                        // would of a separate change.
                        applied.did(
                            "syncChangeMembers",
                            Kind::Group,
                            &create.source_id,
                            &id,
                            &create.label,
                        );
                        carried.insert(
                            create.source_id.as_str(),
                            request.members.into_iter().collect(),
                        );
                    }
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
                    // An existing group did not take the members sent with the create: they
                    // are added below, as to any adopted group.
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
    // made: resolved now, in order, then written concurrently; a new group's members that
    // went with its create are not sent again.
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
        let sent_with_create = carried
            .get(change.group_source_id.as_str())
            .filter(|_| change.group_target_id.is_none());
        let add: Vec<String> = change
            .add
            .iter()
            .filter_map(|m| resolve(&next, m))
            .filter(|id| sent_with_create.is_none_or(|sent| !sent.contains(id)))
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

/// A member's target id: as planned, or the one a create of this run made (`None` when its
/// create failed: it is left out, its failure reported already, and added by the run that
/// creates it).
fn resolve(next: &JobState, member: &MemberRef) -> Option<String> {
    member.target_id.clone().or_else(|| {
        let source_id = member.source_id.clone()?;
        next.mappings
            .get(&(member.kind, source_id))
            .map(|mapping| mapping.target_id.clone())
    })
}

/// The membership changes of groups this run creates, by the group's source id.
fn memberships_of_new_groups(plan: &Plan) -> HashMap<&str, &MembershipChange> {
    plan.memberships
        .iter()
        .filter(|change| change.group_target_id.is_none())
        .map(|change| (change.group_source_id.as_str(), change))
        .collect()
}

/// The plan's creates in waves, each wave's creates independent of each other and made after
/// the wave before it: first everything but groups, then groups whose member groups exist by
/// then (a nested group after the groups it holds), so that a group is created with its
/// members in one request. Groups caught in a cycle (or holding themselves) are created in one
/// last wave without the members not made yet; the membership changes after the creates add
/// those. Plan order within each wave.
fn creates_in_order<'a>(
    plan: &'a Plan,
    memberships: &HashMap<&str, &MembershipChange>,
) -> Vec<Vec<&'a Create>> {
    let (mut groups, others): (Vec<&Create>, Vec<&Create>) = plan
        .creates
        .iter()
        .partition(|create| create.kind == Kind::Group);
    let mut waves = vec![others];
    while !groups.is_empty() {
        let waiting: HashSet<&str> = groups.iter().map(|g| g.source_id.as_str()).collect();
        let waits_for_another = |group: &&Create| {
            memberships
                .get(group.source_id.as_str())
                .is_some_and(|change| {
                    change.add.iter().any(|member| {
                        member.kind == Kind::Group
                            && member.target_id.is_none()
                            && member
                                .source_id
                                .as_deref()
                                .is_some_and(|id| id != group.source_id && waiting.contains(id))
                    })
                })
        };
        let (later, ready): (Vec<&Create>, Vec<&Create>) =
            groups.into_iter().partition(waits_for_another);
        if ready.is_empty() {
            waves.push(later);
            break;
        }
        waves.push(ready);
        groups = later;
    }
    waves.retain(|wave| !wave.is_empty());
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(kind: Kind, source_id: &str) -> Create {
        Create {
            kind,
            source_id: source_id.into(),
            label: source_id.into(),
            attributes: Default::default(),
            active: None,
        }
    }

    /// A new group `group` holding the new groups `members` (by source id) and one existing
    /// user.
    fn holds(group: &str, members: &[&str]) -> MembershipChange {
        let mut add: Vec<MemberRef> = members
            .iter()
            .map(|member| MemberRef {
                kind: Kind::Group,
                source_id: Some(member.to_string()),
                target_id: None,
                label: member.to_string(),
            })
            .collect();
        add.push(MemberRef {
            kind: Kind::User,
            source_id: Some("u".into()),
            target_id: Some("target-u".into()),
            label: "u".into(),
        });
        MembershipChange {
            group_source_id: group.into(),
            group_target_id: None,
            label: group.into(),
            add,
            remove: Vec::new(),
        }
    }

    fn waves_of(plan: &Plan) -> Vec<Vec<&str>> {
        let memberships = memberships_of_new_groups(plan);
        creates_in_order(plan, &memberships)
            .into_iter()
            .map(|wave| wave.iter().map(|c| c.source_id.as_str()).collect())
            .collect()
    }

    #[test]
    fn users_come_first_then_nested_groups_after_the_groups_they_hold() {
        let plan = Plan {
            creates: vec![
                create(Kind::User, "ada"),
                create(Kind::Group, "all"),
                create(Kind::Group, "eng"),
                create(Kind::Group, "platform"),
                create(Kind::Group, "sales"),
            ],
            memberships: vec![
                holds("all", &["eng", "sales"]),
                holds("eng", &["platform"]),
                holds("platform", &[]),
            ],
            ..Plan::default()
        };
        assert_eq!(
            waves_of(&plan),
            vec![
                vec!["ada"],
                vec!["platform", "sales"],
                vec!["eng"],
                vec!["all"]
            ]
        );
    }

    #[test]
    fn groups_in_a_cycle_or_holding_themselves_are_created_together_last() {
        let plan = Plan {
            creates: vec![
                create(Kind::Group, "a"),
                create(Kind::Group, "b"),
                create(Kind::Group, "c"),
                create(Kind::Group, "self"),
            ],
            memberships: vec![
                holds("a", &["b"]),
                holds("b", &["a"]),
                holds("c", &["a"]),
                holds("self", &["self"]),
            ],
            ..Plan::default()
        };
        // `self` waits for nobody else; `c` waits for `a`, caught in the cycle with `b`.
        assert_eq!(waves_of(&plan), vec![vec!["self"], vec!["a", "b", "c"]]);
    }
}
