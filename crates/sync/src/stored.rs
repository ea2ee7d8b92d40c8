//! The form a run's report is recorded in (`sync_runs.report`): bounded, whatever the size of
//! the plan. The report a run prints (`--json`, or the readable plan) holds the whole plan,
//! every create with its attributes: 139 MB of JSON for an initial sync of 100,000 users,
//! which the run's transaction would write and every status request read back. What is
//! recorded keeps the run's outcome whole (job, target, mode, capabilities, the guard's stop,
//! `writes`, `adoptedOnConflict`) and cuts each list, the plan's and the failures, to its exact
//! `count`, whether it is `truncated`, and a `sample` of its first [`SAMPLE_ITEMS`] items; the
//! member lists inside a sampled item (a group's members added or removed, or found changed
//! by drift) are cut the same way to [`SAMPLE_MEMBERS`], since one group's can be the whole
//! directory. Items are otherwise as the printed report has them.
//!
//! The history's readers take counts from `count`, never from a sample's length, through
//! `scimitar_store::SyncRunRecord::summary`, which also reads reports recorded whole by
//! earlier builds (each list an array, its length its count).

use crate::apply::Failure;
use crate::drift::Drift;
use crate::model::{Capabilities, Kind};
use crate::plan::{
    Adoption, Ambiguity, Create, Deprovision, GuardStop, MemberRef, MembershipChange, Update,
};
use crate::run::{Mode, Report};
use serde::Serialize;
use serde_json::Value;

/// How many of a list's items a recorded report keeps: enough to see what kind of change a
/// run made and to start looking into its failures; the printed report has them all.
pub const SAMPLE_ITEMS: usize = 100;

/// How many of one sampled group's members added or removed a recorded report keeps: a
/// hundred groups of a whole directory each would otherwise be the plan again.
pub const SAMPLE_MEMBERS: usize = 10;

/// A list as a recorded report keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample<T> {
    /// How many items the list holds: what its readers count.
    pub count: usize,
    /// Whether the list holds more items than its sample.
    pub truncated: bool,
    /// Its first items, no more than the limit it was cut to.
    pub sample: Vec<T>,
}

impl<T> Sample<T> {
    fn of<'a, U>(items: &'a [U], limit: usize, keep: impl FnMut(&'a U) -> T) -> Sample<T> {
        Sample {
            count: items.len(),
            truncated: items.len() > limit,
            sample: items.iter().take(limit).map(keep).collect(),
        }
    }
}

/// A run's report as it is recorded ([`StoredReport::of`]); its field names are the printed
/// report's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredReport<'a> {
    pub job: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    pub mode: Mode,
    pub capabilities: Capabilities,
    pub plan: StoredPlan<'a>,
    pub stopped: Option<&'a str>,
    pub writes: usize,
    pub adopted_on_conflict: usize,
    pub failures: Sample<&'a Failure>,
}

/// The plan's lists, each cut to a [`Sample`], and the guard's stop whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPlan<'a> {
    pub creates: Sample<&'a Create>,
    pub adoptions: Sample<&'a Adoption>,
    pub updates: Sample<&'a Update>,
    pub memberships: Sample<StoredMembershipChange<'a>>,
    pub deactivations: Sample<&'a Deprovision>,
    pub deletions: Sample<&'a Deprovision>,
    pub ambiguities: Sample<&'a Ambiguity>,
    pub forgotten: Sample<&'a (Kind, String)>,
    pub restored: Sample<&'a (Kind, String)>,
    pub guard: Option<&'a GuardStop>,
    pub drift: Sample<StoredDrift<'a>>,
}

/// A [`MembershipChange`] with its members cut to [`SAMPLE_MEMBERS`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMembershipChange<'a> {
    pub group_source_id: &'a str,
    pub group_target_id: Option<&'a str>,
    pub label: &'a str,
    pub add: Sample<&'a MemberRef>,
    pub remove: Sample<&'a MemberRef>,
}

/// A [`Drift`], with the members of a group's `members` drift cut to [`SAMPLE_MEMBERS`]; an
/// attribute's values are kept whole (the target's schema bounds them).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDrift<'a> {
    pub kind: Kind,
    pub source_id: &'a str,
    pub target_id: &'a str,
    pub label: &'a str,
    pub attribute: &'a str,
    pub found: StoredValue<'a>,
    pub expected: StoredValue<'a>,
    pub corrected: bool,
}

/// A drift's value: whole, or a list of members cut to a [`Sample`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StoredValue<'a> {
    Whole(&'a Value),
    Members(Sample<&'a Value>),
}

impl<'a> StoredReport<'a> {
    /// What of `report` is recorded.
    pub fn of(report: &'a Report) -> StoredReport<'a> {
        let plan = &report.plan;
        StoredReport {
            job: &report.job,
            target: report.target.as_deref(),
            mode: report.mode,
            capabilities: report.capabilities,
            plan: StoredPlan {
                creates: Sample::of(&plan.creates, SAMPLE_ITEMS, |item| item),
                adoptions: Sample::of(&plan.adoptions, SAMPLE_ITEMS, |item| item),
                updates: Sample::of(&plan.updates, SAMPLE_ITEMS, |item| item),
                memberships: Sample::of(&plan.memberships, SAMPLE_ITEMS, membership_change),
                deactivations: Sample::of(&plan.deactivations, SAMPLE_ITEMS, |item| item),
                deletions: Sample::of(&plan.deletions, SAMPLE_ITEMS, |item| item),
                ambiguities: Sample::of(&plan.ambiguities, SAMPLE_ITEMS, |item| item),
                forgotten: Sample::of(&plan.forgotten, SAMPLE_ITEMS, |item| item),
                restored: Sample::of(&plan.restored, SAMPLE_ITEMS, |item| item),
                guard: plan.guard.as_ref(),
                drift: Sample::of(&plan.drift, SAMPLE_ITEMS, drift),
            },
            stopped: report.stopped.as_deref(),
            writes: report.writes,
            adopted_on_conflict: report.adopted_on_conflict,
            failures: Sample::of(&report.failures, SAMPLE_ITEMS, |item| item),
        }
    }

    /// The JSON `sync_runs.report` holds.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }
}

fn membership_change(change: &MembershipChange) -> StoredMembershipChange<'_> {
    StoredMembershipChange {
        group_source_id: &change.group_source_id,
        group_target_id: change.group_target_id.as_deref(),
        label: &change.label,
        add: Sample::of(&change.add, SAMPLE_MEMBERS, |member| member),
        remove: Sample::of(&change.remove, SAMPLE_MEMBERS, |member| member),
    }
}

fn drift(drift: &Drift) -> StoredDrift<'_> {
    fn value(value: &Value, members: bool) -> StoredValue<'_> {
        match value {
            Value::Array(list) if members => {
                StoredValue::Members(Sample::of(list, SAMPLE_MEMBERS, |member| member))
            }
            whole => StoredValue::Whole(whole),
        }
    }
    let members = drift.attribute == "members";
    StoredDrift {
        kind: drift.kind,
        source_id: &drift.source_id,
        target_id: &drift.target_id,
        label: &drift.label,
        attribute: &drift.attribute,
        found: value(&drift.found, members),
        expected: value(&drift.expected, members),
        corrected: drift.corrected,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::plan::Plan;
    use scimitar_domain::Timestamp;
    use scimitar_store::SyncRunRecord;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn user(index: usize) -> MemberRef {
        MemberRef {
            kind: Kind::User,
            source_id: Some(format!("s{index}")),
            target_id: None,
            label: format!("user{index}@example.com"),
        }
    }

    /// An initial sync's report: `users` creates with their attributes, one group of them
    /// all, and as many failures.
    fn initial_sync(users: usize) -> Report {
        let creates = (0..users)
            .map(|index| Create {
                kind: Kind::User,
                source_id: format!("s{index}"),
                label: format!("user{index}@example.com"),
                attributes: BTreeMap::from([
                    (
                        "userName".to_string(),
                        json!(format!("user{index}@example.com")),
                    ),
                    ("displayName".to_string(), json!(format!("User {index}"))),
                ]),
                active: Some(true),
            })
            .collect();
        let everyone: Vec<MemberRef> = (0..users).map(user).collect();
        let members_drift = Drift {
            kind: Kind::Group,
            source_id: "g-all".into(),
            target_id: "t-all".into(),
            label: "all".into(),
            attribute: "members".into(),
            found: json!(everyone.iter().map(|m| &m.label).collect::<Vec<_>>()),
            expected: json!([]),
            corrected: true,
        };
        let name_drift = Drift {
            attribute: "displayName".into(),
            found: json!("Everyone"),
            expected: json!("all"),
            ..members_drift.clone()
        };
        Report {
            job: "hr".into(),
            target: Some("prod".into()),
            mode: Mode::Apply,
            capabilities: Capabilities::default(),
            plan: Plan {
                creates,
                memberships: vec![MembershipChange {
                    group_source_id: "g-all".into(),
                    group_target_id: None,
                    label: "all".into(),
                    add: everyone,
                    remove: vec![],
                }],
                drift: vec![members_drift, name_drift],
                ..Plan::default()
            },
            stopped: None,
            writes: users,
            adopted_on_conflict: 0,
            failures: (0..users)
                .map(|index| Failure {
                    item: format!("create user user{index}@example.com"),
                    error: "HTTP 503: busy".into(),
                    status: Some(503),
                })
                .collect(),
        }
    }

    fn stored(report: &Report) -> Value {
        serde_json::from_str(&StoredReport::of(report).to_json().unwrap()).unwrap()
    }

    #[test]
    fn a_list_longer_than_the_sample_keeps_its_exact_count_and_its_first_items() {
        let report = initial_sync(SAMPLE_ITEMS + 7);
        let stored = stored(&report);
        let creates = &stored["plan"]["creates"];
        assert_eq!(creates["count"], SAMPLE_ITEMS + 7);
        assert_eq!(creates["truncated"], true);
        let sample = creates["sample"].as_array().unwrap();
        assert_eq!(sample.len(), SAMPLE_ITEMS);
        assert_eq!(
            sample[0],
            serde_json::to_value(&report.plan.creates[0]).unwrap()
        );
        assert_eq!(
            sample[SAMPLE_ITEMS - 1]["sourceId"],
            format!("s{}", SAMPLE_ITEMS - 1)
        );
        let failures = &stored["failures"];
        assert_eq!(failures["count"], SAMPLE_ITEMS + 7);
        assert_eq!(failures["truncated"], true);
        assert_eq!(failures["sample"].as_array().unwrap().len(), SAMPLE_ITEMS);
        assert_eq!(
            failures["sample"][0],
            json!({"item": "create user user0@example.com", "error": "HTTP 503: busy"})
        );
        // The group's members, and its members' drift, are cut inside the sampled item.
        let all = &stored["plan"]["memberships"]["sample"][0];
        assert_eq!(all["add"]["count"], SAMPLE_ITEMS + 7);
        assert_eq!(
            all["add"]["sample"].as_array().unwrap().len(),
            SAMPLE_MEMBERS
        );
        assert_eq!(
            all["remove"],
            json!({"count": 0, "truncated": false, "sample": []})
        );
        let drift = &stored["plan"]["drift"];
        assert_eq!(drift["count"], 2);
        assert_eq!(drift["sample"][0]["found"]["count"], SAMPLE_ITEMS + 7);
        assert_eq!(
            drift["sample"][0]["found"]["sample"]
                .as_array()
                .unwrap()
                .len(),
            SAMPLE_MEMBERS
        );
        assert_eq!(drift["sample"][1]["found"], "Everyone");
        // What is not a list is kept whole.
        assert_eq!(
            (&stored["job"], &stored["target"], &stored["mode"]),
            (&json!("hr"), &json!("prod"), &json!("apply"))
        );
        assert_eq!(stored["writes"], SAMPLE_ITEMS + 7);
        assert_eq!(stored["adoptedOnConflict"], 0);
        assert_eq!(stored["plan"]["guard"], Value::Null);
    }

    #[test]
    fn a_list_within_the_sample_is_kept_whole_and_not_truncated() {
        let report = initial_sync(3);
        let stored = stored(&report);
        assert_eq!(
            stored["plan"]["creates"],
            json!({
                "count": 3,
                "truncated": false,
                "sample": serde_json::to_value(&report.plan.creates).unwrap(),
            })
        );
        assert_eq!(
            stored["plan"]["deletions"],
            json!({"count": 0, "truncated": false, "sample": []})
        );
    }

    /// The recorded report does not grow with the plan, while the printed one does; and the
    /// history's reader takes the exact counts from it.
    #[test]
    fn the_recorded_report_of_a_large_run_is_bounded_and_read_by_its_counts() {
        let large = initial_sync(20_000);
        let printed = serde_json::to_string(&large).unwrap();
        let recorded = StoredReport::of(&large).to_json().unwrap();
        assert!(printed.len() > 5_000_000, "{}", printed.len());
        assert!(recorded.len() < 64 * 1024, "{}", recorded.len());
        let larger = StoredReport::of(&initial_sync(40_000)).to_json().unwrap();
        // Only the counts' digits differ.
        assert!(larger.len() <= recorded.len() + 16, "{}", larger.len());

        let run = SyncRunRecord {
            seq: 1,
            started: Timestamp::from_micros(1),
            ended: Timestamp::from_micros(2),
            outcome: "failed".into(),
            report: recorded,
        };
        let summary = run.summary();
        assert_eq!(summary.plan_counts["creates"], 20_000);
        assert_eq!(summary.plan_counts["memberships"], 1);
        assert_eq!(summary.plan_counts["drift"], 2);
        assert_eq!(summary.plan_counts["deletions"], 0);
        assert_eq!(summary.writes, Some(20_000));
        assert_eq!(summary.failures, Some(20_000));
        assert_eq!(
            summary.first_failure.as_deref(),
            Some("create user user0@example.com: HTTP 503: busy")
        );
        // Every list the status counts is recorded under the name it reads.
        let counted: Vec<&str> = summary.plan_counts.keys().copied().collect();
        let mut expected = scimitar_store::SYNC_PLAN_LISTS.to_vec();
        expected.sort_unstable();
        assert_eq!(counted, expected);
    }
}
