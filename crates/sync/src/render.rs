//! A plan as a person reads it: one line per change, attribute diffs as `- before` / `+ after`.

use crate::plan::{MemberRef, Plan, Reason};
use std::fmt::Write;

fn member(reference: &MemberRef) -> String {
    format!("{} {}", reference.kind.as_str(), reference.label)
}

/// The readable diff `scimitar sync plan` prints.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    for create in &plan.creates {
        let _ = writeln!(out, "+ create {} {}", create.kind.as_str(), create.label);
        for (attribute, value) in &create.attributes {
            let _ = writeln!(out, "    {attribute}: {value}");
        }
        if create.active == Some(false) {
            let _ = writeln!(out, "    active: false");
        }
    }
    for adoption in &plan.adoptions {
        let _ = writeln!(
            out,
            "= adopt {} {} (target id {}, matched by {})",
            adoption.kind.as_str(),
            adoption.label,
            adoption.target_id,
            adoption.matched_by.as_str()
        );
    }
    for update in &plan.updates {
        let _ = writeln!(out, "~ update {} {}", update.kind.as_str(), update.label);
        for diff in &update.diffs {
            let _ = writeln!(out, "    {}:", diff.attribute);
            let _ = writeln!(out, "      - {}", diff.before);
            let _ = writeln!(out, "      + {}", diff.after);
        }
    }
    for change in &plan.memberships {
        let _ = writeln!(out, "~ members of group {}", change.label);
        for added in &change.add {
            let _ = writeln!(out, "    + {}", member(added));
        }
        for removed in &change.remove {
            let _ = writeln!(out, "    - {}", member(removed));
        }
    }
    for item in &plan.deactivations {
        let why = match item.reason {
            Reason::InactiveAtSource => "inactive at the source",
            _ => "gone from the source; deleted after the grace period",
        };
        let verb = if item.kind.can_deactivate() {
            "deactivate"
        } else {
            "retire"
        };
        let _ = writeln!(
            out,
            "! {verb} {} {} ({why})",
            item.kind.as_str(),
            item.label
        );
    }
    for item in &plan.deletions {
        let _ = writeln!(
            out,
            "- delete {} {} (grace period over)",
            item.kind.as_str(),
            item.label
        );
    }
    for ambiguity in &plan.ambiguities {
        let _ = writeln!(
            out,
            "? {} {} matches {} target objects by {} ({}): neither adopted nor created",
            ambiguity.kind.as_str(),
            ambiguity.label,
            ambiguity.candidates.len(),
            ambiguity.matched_by.as_str(),
            ambiguity.candidates.join(", ")
        );
    }
    for drift in &plan.drift {
        let what = if drift.corrected {
            "put back"
        } else {
            "left as it is: policy.correct_drift is off"
        };
        let _ = writeln!(
            out,
            "~ drift in {} {}: {} changed at the target ({what})",
            drift.kind.as_str(),
            drift.label,
            drift.attribute
        );
        if drift.attribute == "members" {
            let _ = writeln!(out, "      added there: {}", drift.found);
            let _ = writeln!(out, "      removed there: {}", drift.expected);
        } else {
            let _ = writeln!(out, "      found: {}", drift.found);
            let _ = writeln!(out, "      expected: {}", drift.expected);
        }
    }
    if let Some(guard) = &plan.guard {
        let _ = writeln!(out, "STOPPED: {guard}");
    }
    if plan.writes_nothing() {
        let _ = writeln!(out, "no changes: the target matches the source");
    }
    out
}
