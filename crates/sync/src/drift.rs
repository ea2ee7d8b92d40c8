//! Drift: a managed target object changed out of band (by hand, or by another tool), told
//! apart from a change the source asks for. The planner alone cannot tell them apart: both are
//! a target that differs from what the source wants. What tells them apart is whether the
//! source changed since the job last brought the object in line, so each run remembers, for
//! every object it manages, a digest of what the source wanted of it then ([`digest`]: the
//! desired attributes, `active`, and for a group the members it should have), kept with the
//! object's mapping. A later plan that changes an object whose digest is unchanged changes it
//! because the target moved: that is drift ([`separate`]), reported by object and attribute in
//! the plan's `drift` list and, unless `policy.correct_drift` is off, corrected as before. Off,
//! the drifted changes are left out of the plan (and out of the deletion guard's count), and
//! reported again by every run until the target is put back or the source changes the object.
//!
//! Digests are remembered only from a run that applied everything ([`remember`]): an object
//! whose write failed is retried as the source's change it is, not reported as drift. An
//! object with no digest yet (the job's first run, or a run from before digests were kept)
//! has no drift; its changes are the source's.

use crate::model::{JobState, Kind};
use crate::plan::{Plan, Reason};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One attribute of a managed target object found changed out of band.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub kind: Kind,
    pub source_id: String,
    pub target_id: String,
    pub label: String,
    /// The attribute, `active`, or `members`.
    pub attribute: String,
    /// What the target holds now. For `members`: the managed members added there out of band.
    pub found: Value,
    /// What the job last gave it, which the source still asks for. For `members`: the members
    /// removed there out of band.
    pub expected: Value,
    /// Whether this run puts it back (`policy.correct_drift`).
    pub corrected: bool,
}

/// What the source wants of one object, as a digest (hex, 128 bits): its desired attributes
/// in order, its `active`, and for a group its desired members (by kind and source id, in
/// order). Equal digests mean the source asks for nothing new.
pub fn digest(
    attributes: &BTreeMap<String, Value>,
    active: Option<bool>,
    members: Option<&[(Kind, &str)]>,
) -> String {
    let mut hasher = Sha256::new();
    // A BTreeMap serialises in key order, so equal attributes give equal text.
    hasher.update(serde_json::to_vec(attributes).unwrap_or_default());
    hasher.update([
        0,
        u8::from(active == Some(true)),
        u8::from(active.is_some()),
    ]);
    for (kind, id) in members.unwrap_or_default() {
        hasher.update(kind.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(id.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Finds the drift in a plan: the changes to objects whose digest now is the one remembered.
/// With `correct` off they are taken out of the plan; either way they are listed in
/// `plan.drift`. Called by the planner before the deletion guard counts.
pub fn separate(plan: &mut Plan, state: &JobState, correct: bool) {
    let unchanged = |kind: Kind, source_id: &str| {
        let key = (kind, source_id.to_string());
        matches!(
            (state.digests.get(&key), plan.digests.get(&key)),
            (Some(before), Some(now)) if before == now
        )
    };
    let mut drift = Vec::new();
    let mut updates = Vec::new();
    for update in std::mem::take(&mut plan.updates) {
        if !unchanged(update.kind, &update.source_id) {
            updates.push(update);
            continue;
        }
        for diff in &update.diffs {
            drift.push(Drift {
                kind: update.kind,
                source_id: update.source_id.clone(),
                target_id: update.target_id.clone(),
                label: update.label.clone(),
                attribute: diff.attribute.clone(),
                found: diff.before.clone(),
                expected: diff.after.clone(),
                corrected: correct,
            });
        }
        if correct {
            updates.push(update);
        }
    }
    plan.updates = updates;

    let mut deactivations = Vec::new();
    for item in std::mem::take(&mut plan.deactivations) {
        // Reactivated at the target while the source still says inactive.
        if item.reason == Reason::InactiveAtSource && unchanged(item.kind, &item.source_id) {
            drift.push(Drift {
                kind: item.kind,
                source_id: item.source_id.clone(),
                target_id: item.target_id.clone(),
                label: item.label.clone(),
                attribute: "active".into(),
                found: Value::Bool(true),
                expected: Value::Bool(false),
                corrected: correct,
            });
            if !correct {
                continue;
            }
        }
        deactivations.push(item);
    }
    plan.deactivations = deactivations;

    for change in &mut plan.memberships {
        let Some(target_id) = change.group_target_id.clone() else {
            continue;
        };
        if !unchanged(Kind::Group, &change.group_source_id) {
            continue;
        }
        // Members the job placed before this run, missing from the group: removed by hand.
        // A member created or adopted by this run is the source's change, not drift.
        let placed_before =
            |member: &crate::plan::MemberRef| match (&member.source_id, &member.target_id) {
                (Some(source_id), Some(target_id)) => state
                    .mappings
                    .get(&(member.kind, source_id.clone()))
                    .is_some_and(|mapping| &mapping.target_id == target_id),
                _ => false,
            };
        let (readd, add): (Vec<_>, Vec<_>) = std::mem::take(&mut change.add)
            .into_iter()
            .partition(placed_before);
        let removed = std::mem::take(&mut change.remove);
        if !readd.is_empty() || !removed.is_empty() {
            let labels = |members: &[crate::plan::MemberRef]| {
                Value::from(
                    members
                        .iter()
                        .map(|member| format!("{} {}", member.kind.as_str(), member.label))
                        .collect::<Vec<_>>(),
                )
            };
            drift.push(Drift {
                kind: Kind::Group,
                source_id: change.group_source_id.clone(),
                target_id,
                label: change.label.clone(),
                attribute: "members".into(),
                found: labels(&removed),
                expected: labels(&readd),
                corrected: correct,
            });
        }
        change.add = add;
        if correct {
            change.add.extend(readd);
            change.add.sort();
            change.remove = removed;
        }
    }
    plan.memberships
        .retain(|change| !change.add.is_empty() || !change.remove.is_empty());
    drift.sort_by(|a, b| {
        (a.kind, &a.label, &a.source_id, &a.attribute).cmp(&(
            b.kind,
            &b.label,
            &b.source_id,
            &b.attribute,
        ))
    });
    plan.drift = drift;
}

/// After a run: the digests its plan computed become the ones remembered for the objects it
/// still manages, when it applied everything (`complete`); else those remembered stay, so that
/// what failed is not taken for drift next time. Objects the plan did not judge (a partial
/// run's unread ones) keep theirs; an object no longer managed loses its digest.
pub fn remember(plan: &Plan, complete: bool, after: &mut JobState) {
    if complete {
        for (key, digest) in &plan.digests {
            after.digests.insert(key.clone(), digest.clone());
        }
    }
    let JobState {
        mappings, digests, ..
    } = after;
    digests.retain(|key, _| mappings.contains_key(key));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Policy;
    use crate::model::{Capabilities, Identity, Mapping, Ownership, Snapshot};
    use crate::plan::plan;

    fn user(id: &str, user_name: &str, display_name: &str) -> Identity {
        let mut user = Identity::new(Kind::User, id);
        user.attributes
            .insert("userName".into(), Value::from(user_name));
        user.attributes
            .insert("displayName".into(), Value::from(display_name));
        user
    }

    fn group(id: &str, name: &str, members: &[&str]) -> Identity {
        let mut group = Identity::new(Kind::Group, id);
        group
            .attributes
            .insert("displayName".into(), Value::from(name));
        group.members = members.iter().map(|member| member.to_string()).collect();
        group
    }

    /// A target as the job left it for the source `s1` ada, `s2` bob, `g1` eng of both,
    /// mapped to `t1`, `t2`, `tg`, with `target_changes` made to it by hand.
    fn target_with(target_changes: impl FnOnce(&mut Vec<Identity>)) -> Snapshot {
        let mut ada = user("t1", "ada", "Ada");
        ada.attributes
            .insert("externalId".into(), Value::from("s1"));
        let mut bob = user("t2", "bob", "Bob");
        bob.attributes
            .insert("externalId".into(), Value::from("s2"));
        let mut eng = group("tg", "eng", &["t1", "t2"]);
        eng.attributes
            .insert("externalId".into(), Value::from("g1"));
        let mut identities = vec![ada, bob, eng];
        target_changes(&mut identities);
        Snapshot::of(identities)
    }

    /// The state after a run that brought the target in line with `source`.
    fn settled(source: &Snapshot) -> JobState {
        let mut state = JobState::default();
        for (kind, source_id, target_id) in [
            (Kind::User, "s1", "t1"),
            (Kind::User, "s2", "t2"),
            (Kind::Group, "g1", "tg"),
        ] {
            state.mappings.insert(
                (kind, source_id.to_string()),
                Mapping {
                    target_id: target_id.to_string(),
                    ownership: Ownership::Created,
                    deprovisioned_at: None,
                },
            );
        }
        let first = plan(
            source,
            &target_with(|_| {}),
            &state,
            &Policy::default(),
            &Capabilities::default(),
            0,
        );
        assert!(first.writes_nothing(), "{first:#?}");
        assert!(first.drift.is_empty(), "no digests yet, no drift");
        remember(&first, true, &mut state);
        assert_eq!(state.digests.len(), 3);
        state
    }

    #[test]
    fn an_attribute_and_a_member_changed_by_hand_are_drift_and_put_back_only_when_asked() {
        let source = Snapshot::of(vec![
            user("s1", "ada", "Ada"),
            user("s2", "bob", "Bob"),
            group("g1", "eng", &["s1", "s2"]),
        ]);
        let state = settled(&source);
        let target = target_with(|identities| {
            identities[0]
                .attributes
                .insert("displayName".into(), Value::from("Ada by hand"));
            identities[2].members = vec!["t1".into()];
        });
        let correcting = plan(
            &source,
            &target,
            &state,
            &Policy::default(),
            &Capabilities::default(),
            0,
        );
        let found: Vec<(&str, &str, bool)> = correcting
            .drift
            .iter()
            .map(|drift| {
                (
                    drift.label.as_str(),
                    drift.attribute.as_str(),
                    drift.corrected,
                )
            })
            .collect();
        assert_eq!(
            found,
            [("ada", "displayName", true), ("eng", "members", true)]
        );
        assert_eq!(correcting.drift[0].found, Value::from("Ada by hand"));
        assert_eq!(
            correcting.drift[1].expected,
            serde_json::json!(["user bob"])
        );
        assert_eq!(correcting.updates.len(), 1);
        assert_eq!(correcting.memberships[0].add.len(), 1);

        let policy = Policy {
            correct_drift: false,
            ..Policy::default()
        };
        let reporting = plan(
            &source,
            &target,
            &state,
            &policy,
            &Capabilities::default(),
            0,
        );
        assert_eq!(reporting.drift.len(), 2);
        assert!(reporting.drift.iter().all(|drift| !drift.corrected));
        assert!(reporting.writes_nothing(), "{reporting:#?}");
    }

    #[test]
    fn a_change_at_the_source_is_no_drift_even_where_the_target_moved_too() {
        let source = Snapshot::of(vec![
            user("s1", "ada", "Ada"),
            user("s2", "bob", "Bob"),
            group("g1", "eng", &["s1", "s2"]),
        ]);
        let state = settled(&source);
        let renamed = Snapshot::of(vec![
            user("s1", "ada", "Ada Lovelace"),
            user("s2", "bob", "Bob"),
            group("g1", "eng", &["s1"]),
        ]);
        let target = target_with(|identities| {
            identities[0]
                .attributes
                .insert("displayName".into(), Value::from("Ada by hand"));
        });
        let policy = Policy {
            correct_drift: false,
            ..Policy::default()
        };
        let planned = plan(
            &renamed,
            &target,
            &state,
            &policy,
            &Capabilities::default(),
            0,
        );
        assert!(planned.drift.is_empty(), "{:#?}", planned.drift);
        assert_eq!(
            planned.updates[0].diffs[0].after,
            Value::from("Ada Lovelace")
        );
        assert_eq!(planned.memberships[0].remove.len(), 1);
        // A run that failed keeps the digests it started from.
        let mut after = state.clone();
        remember(&planned, false, &mut after);
        assert_eq!(after.digests, state.digests);
        remember(&planned, true, &mut after);
        assert_ne!(after.digests, state.digests);
    }

    #[test]
    fn a_digest_changes_with_any_attribute_active_or_member_and_not_otherwise() {
        let attributes: BTreeMap<String, Value> =
            [("displayName".to_string(), Value::from("Ada"))].into();
        let base = digest(&attributes, Some(true), None);
        assert_eq!(base, digest(&attributes, Some(true), None));
        assert_eq!(base.len(), 32);
        let mut renamed = attributes.clone();
        renamed.insert("displayName".into(), Value::from("Ada L"));
        assert_ne!(base, digest(&renamed, Some(true), None));
        assert_ne!(base, digest(&attributes, Some(false), None));
        assert_ne!(base, digest(&attributes, None, None));
        let members = [(Kind::User, "u1")];
        let with = digest(&attributes, None, Some(&members));
        assert_ne!(with, digest(&attributes, None, None));
        assert_ne!(with, digest(&attributes, None, Some(&[(Kind::User, "u2")])));
    }
}
