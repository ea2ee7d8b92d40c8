//! Carrying a plan out against a target: creates, adoptions, attribute changes, memberships,
//! deactivations, deletions, in that order. Each item stands alone: one that fails is
//! reported with the target's error and retried by the next run, and the others go on. The
//! job's next state follows only what succeeded.

use crate::model::{Capabilities, JobState, Kind, Mapping, Ownership};
use crate::plan::{MemberRef, Plan, Reason};
use crate::scim::{Created, ScimEndpoint};
use serde::Serialize;

/// One item that failed, with what the target said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What was being done (`create user ada`).
    pub item: String,
    pub error: String,
}

/// What applying a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Write requests that succeeded.
    pub writes: usize,
    pub failures: Vec<Failure>,
    /// Creates answered 409 and adopted: the object existed.
    pub adopted_on_conflict: usize,
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
    let fail = |applied: &mut Applied, item: String, error: String| {
        tracing::warn!(%item, %error, "sync item failed");
        applied.failures.push(Failure { item, error });
    };

    for (kind, source_id) in &plan.forgotten {
        next.mappings.remove(&(*kind, source_id.clone()));
    }
    for key in &plan.restored {
        if let Some(mapping) = next.mappings.get_mut(key) {
            mapping.deprovisioned_at = None;
        }
    }
    for ambiguity in &plan.ambiguities {
        fail(
            &mut applied,
            format!("match {} {}", ambiguity.kind.as_str(), ambiguity.label),
            format!(
                "{} target objects have the same {}: resolve by hand",
                ambiguity.candidates.len(),
                ambiguity.matched_by.as_str()
            ),
        );
    }

    for create in &plan.creates {
        let item = format!("create {} {}", create.kind.as_str(), create.label);
        match target
            .create(create.kind, &create.attributes, create.active)
            .await
        {
            Ok(Created::New(id)) => {
                applied.writes += 1;
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
                    fail(
                        &mut applied,
                        item,
                        format!("the target object {id} it conflicts with is managed for source object {owner}"),
                    );
                    continue;
                }
                applied.adopted_on_conflict += 1;
                next.mappings.insert(
                    (create.kind, create.source_id.clone()),
                    Mapping {
                        target_id: id,
                        ownership: Ownership::Adopted,
                        deprovisioned_at: None,
                    },
                );
            }
            Err(failure) => fail(&mut applied, item, failure.to_string()),
        }
    }
    for adoption in &plan.adoptions {
        next.mappings.insert(
            (adoption.kind, adoption.source_id.clone()),
            Mapping {
                target_id: adoption.target_id.clone(),
                ownership: Ownership::Adopted,
                deprovisioned_at: None,
            },
        );
    }
    for update in &plan.updates {
        match target
            .update(update.kind, &update.target_id, &update.diffs, capabilities)
            .await
        {
            Ok(()) => applied.writes += 1,
            Err(failure) => fail(
                &mut applied,
                format!("update {} {}", update.kind.as_str(), update.label),
                failure.to_string(),
            ),
        }
    }
    let resolve = |next: &JobState, member: &MemberRef| -> Option<String> {
        member.target_id.clone().or_else(|| {
            let source_id = member.source_id.clone()?;
            next.mappings
                .get(&(member.kind, source_id))
                .map(|mapping| mapping.target_id.clone())
        })
    };
    for change in &plan.memberships {
        let item = format!("change members of group {}", change.label);
        let group_id = change.group_target_id.clone().or_else(|| {
            next.mappings
                .get(&(Kind::Group, change.group_source_id.clone()))
                .map(|mapping| mapping.target_id.clone())
        });
        let Some(group_id) = group_id else {
            fail(&mut applied, item, "the group was not created".into());
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
        match target
            .change_members(&group_id, &add, &remove, capabilities)
            .await
        {
            Ok(()) => applied.writes += 1,
            Err(failure) => fail(&mut applied, item, failure.to_string()),
        }
    }
    for item in &plan.deactivations {
        if item.kind.can_deactivate() {
            let name = format!("deactivate {} {}", item.kind.as_str(), item.label);
            match target
                .deactivate(item.kind, &item.target_id, capabilities)
                .await
            {
                Ok(()) => applied.writes += 1,
                Err(failure) => {
                    fail(&mut applied, name, failure.to_string());
                    continue;
                }
            }
        }
        if item.reason == Reason::GoneFromSource {
            if let Some(mapping) = next.mappings.get_mut(&(item.kind, item.source_id.clone())) {
                mapping.deprovisioned_at = Some(now);
            }
        }
    }
    for item in &plan.deletions {
        match target.delete(item.kind, &item.target_id).await {
            Ok(()) => {
                applied.writes += 1;
                next.mappings.remove(&(item.kind, item.source_id.clone()));
            }
            Err(failure) => fail(
                &mut applied,
                format!("delete {} {}", item.kind.as_str(), item.label),
                failure.to_string(),
            ),
        }
    }
    (applied, next)
}
