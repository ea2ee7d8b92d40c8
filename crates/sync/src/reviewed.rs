//! A plan reviewed before it is applied: `scimitar sync plan --out F` saves what a run would
//! change, and `scimitar sync apply --plan F` applies a target's plan only when it is still
//! exactly that; otherwise it stops before writing anything, naming what differs.
//!
//! The changes are written in the source's terms (kinds, source ids, names, attribute values
//! before and after), never in target ids, so that one reviewed plan can be applied to a
//! sandbox that mirrors production first and to production after: each must plan the very
//! changes the reviewer read, or nothing is written to it. Pure: no I/O, no clock.

use crate::plan::{MemberRef, Plan, Reason};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The file format's version; a file of another version is refused.
pub const FORMAT: u32 = 1;

/// A saved plan, as `plan --out` writes it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewedPlan {
    /// [`FORMAT`].
    pub scimitar_sync_plan: u32,
    pub job: String,
    /// The target it was planned against (`None`: the job's one unnamed `[target]`).
    pub target: Option<String>,
    /// When it was planned (RFC 3339), for the reader.
    pub planned_at: String,
    /// One line per change, sorted: what `apply --plan` compares.
    pub changes: Vec<String>,
}

/// Why a target's plan is not the reviewed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Changes the target's plan makes that the reviewed one does not.
    pub unreviewed: Vec<String>,
    /// Reviewed changes the target's plan no longer makes.
    pub missing: Vec<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "the plan differs from the reviewed plan ({} changes not reviewed, {} reviewed \
             changes not planned)",
            self.unreviewed.len(),
            self.missing.len()
        )?;
        if let Some(first) = self.unreviewed.first() {
            write!(formatter, "; not reviewed: {first}")?;
        }
        if let Some(first) = self.missing.first() {
            write!(formatter, "; not planned: {first}")?;
        }
        write!(
            formatter,
            ": nothing was changed; plan again and review the new plan"
        )
    }
}

impl ReviewedPlan {
    pub fn of(job: &str, target: Option<&str>, plan: &Plan, planned_at: String) -> ReviewedPlan {
        ReviewedPlan {
            scimitar_sync_plan: FORMAT,
            job: job.to_string(),
            target: target.map(str::to_string),
            planned_at,
            changes: changes(plan),
        }
    }

    /// Reads a saved plan, refusing what is not one (or one of another format).
    pub fn parse(text: &str) -> Result<ReviewedPlan, String> {
        let reviewed: ReviewedPlan = serde_json::from_str(text)
            .map_err(|error| format!("not a plan saved by `scimitar sync plan --out`: {error}"))?;
        if reviewed.scimitar_sync_plan != FORMAT {
            return Err(format!(
                "a plan of format {} (this version reads format {FORMAT}): plan again",
                reviewed.scimitar_sync_plan
            ));
        }
        Ok(reviewed)
    }

    /// `None` when `plan` makes exactly the reviewed changes.
    pub fn mismatch(&self, plan: &Plan) -> Option<Mismatch> {
        let reviewed: BTreeSet<&String> = self.changes.iter().collect();
        let planned = changes(plan);
        let planned_set: BTreeSet<&String> = planned.iter().collect();
        let unreviewed: Vec<String> = planned_set
            .difference(&reviewed)
            .map(|line| line.to_string())
            .collect();
        let missing: Vec<String> = reviewed
            .difference(&planned_set)
            .map(|line| line.to_string())
            .collect();
        if unreviewed.is_empty() && missing.is_empty() {
            None
        } else {
            Some(Mismatch {
                unreviewed,
                missing,
            })
        }
    }
}

fn member(reference: &MemberRef) -> String {
    format!("{} {}", reference.kind.as_str(), reference.label)
}

fn reason(reason: Reason) -> &'static str {
    match reason {
        Reason::InactiveAtSource => "inactive at the source",
        Reason::GoneFromSource => "gone from the source",
        Reason::GracePeriodOver => "grace period over",
    }
}

/// Every change of `plan`, one line each, sorted; members by kind and name, since a member
/// that exists at the target is known there by a target id.
pub fn changes(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    for create in &plan.creates {
        let attributes = serde_json::to_string(&create.attributes).unwrap_or_default();
        let inactive = if create.active == Some(false) {
            " inactive"
        } else {
            ""
        };
        lines.push(format!(
            "create {} {} ({}) {attributes}{inactive}",
            create.kind.as_str(),
            create.label,
            create.source_id
        ));
    }
    for adoption in &plan.adoptions {
        lines.push(format!(
            "adopt {} {} ({}) matched by {}",
            adoption.kind.as_str(),
            adoption.label,
            adoption.source_id,
            adoption.matched_by.as_str()
        ));
    }
    for update in &plan.updates {
        for diff in &update.diffs {
            lines.push(format!(
                "update {} {} ({}) {}: {} -> {}",
                update.kind.as_str(),
                update.label,
                update.source_id,
                diff.attribute,
                diff.before,
                diff.after
            ));
        }
    }
    for change in &plan.memberships {
        for added in &change.add {
            lines.push(format!(
                "add to group {} ({}): {}",
                change.label,
                change.group_source_id,
                member(added)
            ));
        }
        for removed in &change.remove {
            lines.push(format!(
                "remove from group {} ({}): {}",
                change.label,
                change.group_source_id,
                member(removed)
            ));
        }
    }
    for (verb, items) in [
        ("deactivate", &plan.deactivations),
        ("delete", &plan.deletions),
    ] {
        for item in items {
            lines.push(format!(
                "{verb} {} {} ({}): {}",
                item.kind.as_str(),
                item.label,
                item.source_id,
                reason(item.reason)
            ));
        }
    }
    for ambiguity in &plan.ambiguities {
        lines.push(format!(
            "ambiguous {} {} ({}) by {}",
            ambiguity.kind.as_str(),
            ambiguity.label,
            ambiguity.source_id,
            ambiguity.matched_by.as_str()
        ));
    }
    lines.sort();
    lines.dedup();
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::config::MatchKey;
    use crate::model::Kind;
    use crate::plan::{Adoption, AttributeDiff, Create, Deprovision, MembershipChange, Update};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn plan_for(target_ids: &str) -> Plan {
        let mut attributes = BTreeMap::new();
        attributes.insert("userName".to_string(), json!("ada"));
        Plan {
            creates: vec![Create {
                kind: Kind::User,
                source_id: "s-ada".into(),
                label: "ada".into(),
                attributes,
                active: Some(true),
            }],
            adoptions: vec![Adoption {
                kind: Kind::Group,
                source_id: "s-eng".into(),
                target_id: format!("{target_ids}-eng"),
                label: "eng".into(),
                matched_by: MatchKey::DisplayName,
            }],
            updates: vec![Update {
                kind: Kind::User,
                source_id: "s-bob".into(),
                target_id: format!("{target_ids}-bob"),
                label: "bob".into(),
                diffs: vec![AttributeDiff {
                    attribute: "name.familyName".into(),
                    before: json!("Smith"),
                    after: json!("Jones"),
                }],
            }],
            memberships: vec![MembershipChange {
                group_source_id: "s-eng".into(),
                group_target_id: Some(format!("{target_ids}-eng")),
                label: "eng".into(),
                add: vec![MemberRef {
                    kind: Kind::User,
                    source_id: None,
                    target_id: Some(format!("{target_ids}-bob")),
                    label: "bob".into(),
                }],
                remove: Vec::new(),
            }],
            deactivations: vec![Deprovision {
                kind: Kind::User,
                source_id: "s-cy".into(),
                target_id: format!("{target_ids}-cy"),
                label: "cy".into(),
                reason: Reason::GoneFromSource,
            }],
            ..Plan::default()
        }
    }

    #[test]
    fn the_same_changes_at_a_target_with_other_ids_match() {
        let reviewed = ReviewedPlan::of("j", Some("prod"), &plan_for("prod"), "t".into());
        assert_eq!(reviewed.changes.len(), 5);
        assert_eq!(reviewed.mismatch(&plan_for("sandbox")), None);
    }

    #[test]
    fn a_change_more_or_less_or_another_value_is_a_mismatch() {
        let reviewed = ReviewedPlan::of("j", None, &plan_for("p"), "t".into());
        let mut more = plan_for("p");
        more.deletions.push(Deprovision {
            kind: Kind::Group,
            source_id: "s-old".into(),
            target_id: "p-old".into(),
            label: "old".into(),
            reason: Reason::GracePeriodOver,
        });
        let mismatch = reviewed.mismatch(&more).expect("a deletion more");
        assert_eq!(
            mismatch.unreviewed,
            vec!["delete group old (s-old): grace period over"]
        );
        assert!(mismatch.missing.is_empty());
        assert!(mismatch.to_string().contains("nothing was changed"));

        let mut less = plan_for("p");
        less.creates.clear();
        let mismatch = reviewed.mismatch(&less).expect("a create less");
        assert!(mismatch.unreviewed.is_empty());
        assert_eq!(mismatch.missing.len(), 1);

        let mut other = plan_for("p");
        other.updates[0].diffs[0].after = json!("Brown");
        let mismatch = reviewed.mismatch(&other).expect("another value");
        assert_eq!(mismatch.unreviewed.len(), 1);
        assert_eq!(mismatch.missing.len(), 1);
        assert!(mismatch.unreviewed[0].ends_with("\"Smith\" -> \"Brown\""));
    }

    #[test]
    fn a_saved_plan_reads_back_and_other_files_are_refused() {
        let reviewed = ReviewedPlan::of("j", Some("prod"), &plan_for("p"), "t".into());
        let text = serde_json::to_string_pretty(&reviewed).unwrap();
        assert_eq!(ReviewedPlan::parse(&text), Ok(reviewed.clone()));
        let mut other = reviewed;
        other.scimitar_sync_plan = FORMAT + 1;
        let text = serde_json::to_string(&other).unwrap();
        assert!(ReviewedPlan::parse(&text).unwrap_err().contains("format 2"));
        assert!(ReviewedPlan::parse("{\"job\": \"j\"}")
            .unwrap_err()
            .contains("not a plan saved by"));
        assert!(ReviewedPlan::parse("not json").is_err());
    }
}
