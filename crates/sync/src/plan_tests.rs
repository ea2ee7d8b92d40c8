//! The reconciliation core's cases, named after the shapes they build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::model::{Mapping, Ownership};
use serde_json::json;

const DAY: i64 = 24 * 3600 * 1_000_000;

fn user(id: &str, name: &str) -> Identity {
    Identity::new(Kind::User, id)
        .with("userName", name)
        .with("displayName", name.to_uppercase())
}

fn group(id: &str, name: &str, members: &[&str]) -> Identity {
    Identity::new(Kind::Group, id)
        .with("displayName", name)
        .with_members(members.iter().copied())
}

/// A target copy of a source object as the job would have made it.
fn mirrored(source: &Identity, target_id: &str) -> Identity {
    let mut copy = source.clone();
    copy.id = target_id.to_string();
    copy.attributes
        .entry("externalId".into())
        .or_insert_with(|| json!(source.id));
    copy.members = Vec::new();
    copy
}

fn owned(state: &mut JobState, kind: Kind, source_id: &str, target_id: &str) {
    state.mappings.insert(
        (kind, source_id.to_string()),
        Mapping {
            target_id: target_id.to_string(),
            ownership: Ownership::Created,
            deprovisioned_at: None,
        },
    );
}

fn caps() -> Capabilities {
    Capabilities::default()
}

fn flat() -> Capabilities {
    Capabilities {
        nested_groups: false,
        ..Capabilities::default()
    }
}

fn run(source: &[Identity], target: &[Identity], state: &JobState, policy: &Policy) -> Plan {
    plan(
        &Snapshot::of(source.to_vec()),
        &Snapshot::of(target.to_vec()),
        state,
        policy,
        &caps(),
        0,
    )
}

fn added(plan: &Plan, group_label: &str) -> Vec<String> {
    plan.memberships
        .iter()
        .filter(|change| change.label == group_label)
        .flat_map(|change| change.add.iter().map(|member| member.label.clone()))
        .collect()
}

#[test]
fn an_empty_target_gets_every_source_object_created() {
    let source = [
        user("s1", "ada"),
        user("s2", "bob"),
        group("g1", "eng", &["s1"]),
    ];
    let plan = run(&source, &[], &JobState::default(), &Policy::default());
    let created: Vec<&str> = plan.creates.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(created, ["ada", "bob", "eng"]);
    assert_eq!(plan.creates[0].attributes["externalId"], json!("s1"));
    assert_eq!(added(&plan, "eng"), ["ada"]);
    assert_eq!(plan.memberships[0].group_target_id, None);
    assert!(plan.guard.is_none());
}

#[test]
fn a_source_external_id_is_kept_rather_than_replaced_by_the_source_id() {
    let source = [user("s1", "ada").with("externalId", "hr-7")];
    let plan = run(&source, &[], &JobState::default(), &Policy::default());
    assert_eq!(plan.creates[0].attributes["externalId"], json!("hr-7"));
}

#[test]
fn a_target_that_matches_the_source_gets_an_empty_plan() {
    let ada = user("s1", "ada");
    let eng = group("g1", "eng", &["s1"]);
    let mut target_eng = mirrored(&eng, "tg1");
    target_eng.members = vec!["t1".into()];
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s1", "t1");
    owned(&mut state, Kind::Group, "g1", "tg1");
    let plan = run(
        &[ada.clone(), eng],
        &[mirrored(&ada, "t1"), target_eng],
        &state,
        &Policy::default(),
    );
    assert!(plan.writes_nothing(), "{plan:#?}");
    assert!(!plan.changes_state());
}

#[test]
fn a_changed_attribute_is_one_diff_with_before_and_after() {
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s1", "t1");
    let target = mirrored(&user("s1", "ada"), "t1");
    let source = user("s1", "ada").with("displayName", "Ada Lovelace");
    let plan = run(&[source], &[target], &state, &Policy::default());
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(
        plan.updates[0].diffs,
        [AttributeDiff {
            attribute: "displayName".into(),
            before: json!("ADA"),
            after: json!("Ada Lovelace")
        }]
    );
}

#[test]
fn an_attribute_the_source_does_not_have_is_left_alone_in_the_target() {
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s1", "t1");
    let target = mirrored(&user("s1", "ada"), "t1").with("title", "set by hand");
    let plan = run(&[user("s1", "ada")], &[target], &state, &Policy::default());
    assert!(plan.writes_nothing(), "{plan:#?}");
}

#[test]
fn brownfield_users_are_adopted_by_user_name_ignoring_case_never_duplicated() {
    let target = Identity::new(Kind::User, "t9").with("userName", "ADA");
    let plan = run(
        &[user("s1", "ada")],
        &[target],
        &JobState::default(),
        &Policy::default(),
    );
    assert!(plan.creates.is_empty());
    assert_eq!(plan.adoptions.len(), 1);
    assert_eq!(plan.adoptions[0].target_id, "t9");
    assert_eq!(plan.adoptions[0].matched_by, MatchKey::UserName);
    // Adopted objects are brought to the source's values.
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(plan.updates[0].target_id, "t9");
}

#[test]
fn brownfield_matching_follows_the_configured_order() {
    let by_name = Identity::new(Kind::User, "t-name").with("userName", "ada");
    let by_mail = Identity::new(Kind::User, "t-mail")
        .with("userName", "someone-else")
        .with("emails", "ada@example.com");
    let source = user("s1", "ada").with("emails", "Ada@Example.com");
    let policy = Policy {
        match_order: vec![MatchKey::Email, MatchKey::UserName],
        ..Policy::default()
    };
    let plan = run(
        &[source],
        &[by_name, by_mail],
        &JobState::default(),
        &policy,
    );
    assert_eq!(plan.adoptions[0].target_id, "t-mail");
    assert_eq!(plan.adoptions[0].matched_by, MatchKey::Email);
}

#[test]
fn a_match_key_left_out_of_the_order_does_not_match() {
    let target = Identity::new(Kind::User, "t9").with("userName", "ada");
    let policy = Policy {
        match_order: vec![MatchKey::ExternalId],
        ..Policy::default()
    };
    let plan = run(
        &[user("s1", "ada")],
        &[target],
        &JobState::default(),
        &policy,
    );
    assert!(plan.adoptions.is_empty());
    assert_eq!(plan.creates.len(), 1);
}

#[test]
fn brownfield_groups_are_adopted_by_display_name() {
    let target = Identity::new(Kind::Group, "tg").with("displayName", "Eng");
    let plan = run(
        &[group("g1", "eng", &[])],
        &[target],
        &JobState::default(),
        &Policy::default(),
    );
    assert_eq!(plan.adoptions[0].matched_by, MatchKey::DisplayName);
    assert!(plan.creates.is_empty());
}

#[test]
fn two_candidates_for_one_source_object_are_reported_and_neither_adopted_nor_created() {
    let targets = [
        Identity::new(Kind::Group, "a").with("displayName", "eng"),
        Identity::new(Kind::Group, "b").with("displayName", "ENG"),
    ];
    let plan = run(
        &[group("g1", "eng", &[])],
        &targets,
        &JobState::default(),
        &Policy::default(),
    );
    assert!(plan.creates.is_empty() && plan.adoptions.is_empty());
    assert_eq!(plan.ambiguities.len(), 1);
    assert_eq!(plan.ambiguities[0].candidates.len(), 2);
}

#[test]
fn an_object_managed_for_another_source_object_is_never_adopted_twice() {
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s-old", "t1");
    let target = Identity::new(Kind::User, "t1").with("userName", "ada");
    let source = [user("s-old", "ada"), user("s-new", "ada")];
    let plan = run(&source, &[target], &state, &Policy::default());
    assert!(plan.adoptions.is_empty());
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].source_id, "s-new");
}

#[test]
fn unmanaged_target_objects_are_never_modified_or_deleted() {
    let foreign = Identity::new(Kind::User, "t-foreign").with("userName", "root");
    let foreign_group = Identity::new(Kind::Group, "tg-foreign")
        .with("displayName", "admins")
        .with_members(["t-foreign"]);
    let plan = run(
        &[],
        &[foreign, foreign_group],
        &JobState::default(),
        &Policy::default(),
    );
    assert_eq!(plan, Plan::default());
}

#[test]
fn members_the_job_does_not_manage_stay_in_a_managed_group() {
    let ada = user("s1", "ada");
    let eng = group("g1", "eng", &["s1"]);
    let mut target_eng = mirrored(&eng, "tg1");
    target_eng.members = vec!["t1".into(), "t-foreign".into()];
    let foreign = Identity::new(Kind::User, "t-foreign").with("userName", "root");
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s1", "t1");
    owned(&mut state, Kind::Group, "g1", "tg1");
    let plan = run(
        &[ada.clone(), eng],
        &[mirrored(&ada, "t1"), target_eng, foreign],
        &state,
        &Policy::default(),
    );
    assert!(plan.writes_nothing(), "{plan:#?}");
}

#[test]
fn a_managed_member_removed_at_the_source_is_removed_from_the_target_group() {
    let ada = user("s1", "ada");
    let bob = user("s2", "bob");
    let eng = group("g1", "eng", &["s1"]);
    let mut target_eng = mirrored(&eng, "tg1");
    target_eng.members = vec!["t1".into(), "t2".into()];
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s1", "t1");
    owned(&mut state, Kind::User, "s2", "t2");
    owned(&mut state, Kind::Group, "g1", "tg1");
    let plan = run(
        &[ada.clone(), bob.clone(), eng],
        &[mirrored(&ada, "t1"), mirrored(&bob, "t2"), target_eng],
        &state,
        &Policy::default(),
    );
    assert_eq!(plan.memberships.len(), 1);
    let removed: Vec<_> = plan.memberships[0]
        .remove
        .iter()
        .map(|m| m.target_id.clone())
        .collect();
    assert_eq!(removed, [Some("t2".to_string())]);
    assert!(plan.memberships[0].add.is_empty());
}

#[test]
fn nested_groups_are_mirrored_where_the_target_nests() {
    let source = [
        user("u1", "ada"),
        group("inner", "inner", &["u1"]),
        group("outer", "outer", &["inner"]),
    ];
    let plan = run(&source, &[], &JobState::default(), &Policy::default());
    assert_eq!(added(&plan, "outer"), ["inner"]);
    assert_eq!(added(&plan, "inner"), ["ada"]);
}

#[test]
fn nested_groups_are_flattened_to_transitive_members_where_the_target_does_not_nest() {
    let source = [
        user("u1", "ada"),
        user("u2", "bob"),
        group("inner", "inner", &["u1"]),
        group("middle", "middle", &["inner", "u2"]),
        group("outer", "outer", &["middle"]),
    ];
    let plan = plan(
        &Snapshot::of(source.to_vec()),
        &Snapshot::default(),
        &JobState::default(),
        &Policy::default(),
        &flat(),
        0,
    );
    let mut outer = added(&plan, "outer");
    outer.sort();
    assert_eq!(outer, ["ada", "bob"]);
    let mut middle = added(&plan, "middle");
    middle.sort();
    assert_eq!(middle, ["ada", "bob"]);
}

#[test]
fn a_membership_cycle_at_the_source_is_flattened_without_looping() {
    let source = [
        user("u1", "ada"),
        group("a", "a", &["b", "u1"]),
        group("b", "b", &["a"]),
    ];
    let plan = plan(
        &Snapshot::of(source.to_vec()),
        &Snapshot::default(),
        &JobState::default(),
        &Policy::default(),
        &flat(),
        0,
    );
    assert_eq!(added(&plan, "a"), ["ada"]);
    assert_eq!(added(&plan, "b"), ["ada"]);
}

#[test]
fn a_nested_group_flattened_away_is_removed_as_a_member_when_the_job_manages_it() {
    let ada = user("u1", "ada");
    let inner = group("inner", "inner", &["u1"]);
    let outer = group("outer", "outer", &["inner"]);
    let mut target_outer = mirrored(&outer, "t-outer");
    target_outer.members = vec!["t-inner".into(), "t1".into()];
    let mut target_inner = mirrored(&inner, "t-inner");
    target_inner.members = vec!["t1".into()];
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "u1", "t1");
    owned(&mut state, Kind::Group, "inner", "t-inner");
    owned(&mut state, Kind::Group, "outer", "t-outer");
    let plan = plan(
        &Snapshot::of(vec![ada.clone(), inner, outer]),
        &Snapshot::of(vec![mirrored(&ada, "t1"), target_inner, target_outer]),
        &state,
        &Policy::default(),
        &flat(),
        0,
    );
    assert_eq!(plan.memberships.len(), 1, "{plan:#?}");
    assert_eq!(plan.memberships[0].label, "outer");
    assert_eq!(plan.memberships[0].remove[0].label, "inner");
}

#[test]
fn scope_by_group_takes_nested_groups_and_transitive_members_only() {
    let source = [
        user("u1", "ada"),
        user("u2", "bob"),
        user("u3", "eve"),
        group("inner", "inner", &["u1"]),
        group("outer", "Outer", &["inner", "u2"]),
        group("other", "other", &["u3"]),
    ];
    let policy = Policy {
        groups: vec!["outer".into()],
        ..Policy::default()
    };
    let plan = run(&source, &[], &JobState::default(), &policy);
    let created: Vec<&str> = plan.creates.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(created, ["ada", "bob", "Outer", "inner"]);
}

#[test]
fn a_user_suspended_at_the_source_is_deactivated_not_synced_as_active() {
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s1", "t1");
    let target = mirrored(&user("s1", "ada"), "t1");
    let plan = run(
        &[user("s1", "ada").inactive()],
        &[target],
        &state,
        &Policy {
            allow_deletions: true,
            ..Policy::default()
        },
    );
    assert_eq!(plan.deactivations.len(), 1);
    assert_eq!(plan.deactivations[0].reason, Reason::InactiveAtSource);
    assert!(plan.updates.is_empty());
}

#[test]
fn a_suspended_user_is_created_inactive() {
    let plan = run(
        &[user("s1", "ada").inactive()],
        &[],
        &JobState::default(),
        &Policy::default(),
    );
    assert_eq!(plan.creates[0].active, Some(false));
    assert!(plan.deactivations.is_empty());
}

#[test]
fn a_user_reactivated_at_the_source_is_an_attribute_change() {
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s1", "t1");
    let target = mirrored(&user("s1", "ada"), "t1").inactive();
    let plan = run(&[user("s1", "ada")], &[target], &state, &Policy::default());
    assert_eq!(plan.updates[0].diffs[0].attribute, "active");
}

fn many_managed(count: usize) -> (Vec<Identity>, Vec<Identity>, JobState) {
    let mut source = Vec::new();
    let mut target = Vec::new();
    let mut state = JobState::default();
    for index in 0..count {
        let one = user(&format!("s{index}"), &format!("user{index}"));
        target.push(mirrored(&one, &format!("t{index}")));
        source.push(one);
        owned(
            &mut state,
            Kind::User,
            &format!("s{index}"),
            &format!("t{index}"),
        );
    }
    (source, target, state)
}

#[test]
fn a_user_gone_from_the_source_is_deactivated_first() {
    let (mut source, target, state) = many_managed(10);
    source.remove(0);
    let plan = run(&source, &target, &state, &Policy::default());
    assert_eq!(plan.deactivations.len(), 1);
    assert_eq!(plan.deactivations[0].reason, Reason::GoneFromSource);
    assert!(plan.deletions.is_empty());
    assert!(plan.guard.is_none());
}

#[test]
fn a_deactivated_user_is_deleted_only_after_the_grace_period() {
    let (mut source, target, mut state) = many_managed(10);
    source.remove(0);
    let mapping = state
        .mappings
        .get_mut(&(Kind::User, "s0".into()))
        .expect("mapped");
    mapping.deprovisioned_at = Some(0);
    let policy = Policy {
        delete_after_seconds: 24 * 3600,
        ..Policy::default()
    };
    let during = plan(
        &Snapshot::of(source.clone()),
        &Snapshot::of(target.clone()),
        &state,
        &policy,
        &caps(),
        DAY - 1,
    );
    assert!(during.writes_nothing(), "{during:#?}");
    let after = plan(
        &Snapshot::of(source),
        &Snapshot::of(target),
        &state,
        &policy,
        &caps(),
        DAY,
    );
    assert_eq!(after.deletions.len(), 1);
    assert_eq!(after.deletions[0].target_id, "t0");
}

#[test]
fn a_user_back_in_scope_during_the_grace_period_is_restored_and_reactivated() {
    let (source, mut target, mut state) = many_managed(3);
    let mapping = state
        .mappings
        .get_mut(&(Kind::User, "s0".into()))
        .expect("mapped");
    mapping.deprovisioned_at = Some(0);
    target[0].active = Some(false);
    let plan = run(&source, &target, &state, &Policy::default());
    assert_eq!(plan.restored, [(Kind::User, "s0".to_string())]);
    assert_eq!(plan.updates[0].diffs[0].attribute, "active");
}

#[test]
fn a_managed_object_deleted_out_of_band_is_forgotten_and_created_again() {
    let (source, mut target, state) = many_managed(2);
    target.remove(0);
    let plan = run(&source, &target, &state, &Policy::default());
    assert_eq!(plan.forgotten, [(Kind::User, "s0".to_string())]);
    assert_eq!(plan.creates.len(), 1);
}

#[test]
fn a_group_gone_from_the_source_loses_its_managed_members_now_and_is_deleted_later() {
    let ada = user("u1", "ada");
    let eng = group("g1", "eng", &["u1"]);
    let mut target_eng = mirrored(&eng, "tg1");
    target_eng.members = vec!["t1".into(), "t-foreign".into()];
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "u1", "t1");
    owned(&mut state, Kind::Group, "g1", "tg1");
    let policy = Policy {
        allow_deletions: true,
        ..Policy::default()
    };
    let plan = run(
        std::slice::from_ref(&ada),
        &[mirrored(&ada, "t1"), target_eng],
        &state,
        &policy,
    );
    assert_eq!(plan.deactivations.len(), 1);
    assert_eq!(plan.deactivations[0].kind, Kind::Group);
    assert_eq!(plan.memberships.len(), 1);
    let removed: Vec<_> = plan.memberships[0]
        .remove
        .iter()
        .map(|m| m.label.as_str())
        .collect();
    assert_eq!(removed, ["ada"]);
}

#[test]
fn the_deletion_guard_stops_a_plan_deprovisioning_more_than_the_share() {
    let (source, target, state) = many_managed(10);
    // 3 of 10 is more than 20 %.
    let plan = run(&source[3..], &target, &state, &Policy::default());
    let guard = plan.guard.clone().expect("the guard stops the plan");
    assert_eq!((guard.deprovisions, guard.managed), (3, 10));
    assert!(guard.to_string().contains("--allow-deletions"));
    // 2 of 10 is not.
    let plan = run(&source[2..], &target, &state, &Policy::default());
    assert!(plan.guard.is_none());
}

#[test]
fn the_deletion_guard_stops_a_plan_deprovisioning_more_than_the_count() {
    let (source, target, state) = many_managed(20);
    let policy = Policy {
        max_deprovision_count: 1,
        ..Policy::default()
    };
    let plan = run(&source[2..], &target, &state, &policy);
    assert!(plan.guard.is_some());
}

#[test]
fn allowing_deletions_lets_the_plan_through_the_guard() {
    let (source, target, state) = many_managed(10);
    let policy = Policy {
        allow_deletions: true,
        ..Policy::default()
    };
    let plan = run(&source[5..], &target, &state, &policy);
    assert!(plan.guard.is_none());
    assert_eq!(plan.deactivations.len(), 5);
}

#[test]
fn the_deletion_guard_counts_source_suspensions_too() {
    let (mut source, target, state) = many_managed(10);
    for one in source.iter_mut().take(3) {
        one.active = Some(false);
    }
    let plan = run(&source, &target, &state, &Policy::default());
    assert!(plan.guard.is_some());
}

#[test]
fn entitlements_are_mapped_onto_groups_for_targets_that_have_them() {
    let capabilities = Capabilities {
        entitlements: true,
        ..Capabilities::default()
    };
    let policy = Policy {
        entitlements: [(
            "Eng".to_string(),
            vec![
                "workspace-access".to_string(),
                "allow-cluster-create".to_string(),
            ],
        )]
        .into_iter()
        .collect(),
        ..Policy::default()
    };
    let source = [group("g1", "eng", &[]), group("g2", "sales", &[])];
    let plan = plan(
        &Snapshot::of(source.to_vec()),
        &Snapshot::default(),
        &JobState::default(),
        &policy,
        &capabilities,
        0,
    );
    let eng = plan.creates.iter().find(|c| c.label == "eng").expect("eng");
    assert_eq!(
        eng.attributes["entitlements"],
        json!(["allow-cluster-create", "workspace-access"])
    );
    let sales = plan
        .creates
        .iter()
        .find(|c| c.label == "sales")
        .expect("sales");
    assert!(!sales.attributes.contains_key("entitlements"));
    // Without the capability, none.
    let generic = super::plan(
        &Snapshot::of(source.to_vec()),
        &Snapshot::default(),
        &JobState::default(),
        &policy,
        &caps(),
        0,
    );
    assert!(generic
        .creates
        .iter()
        .all(|c| !c.attributes.contains_key("entitlements")));
}

#[test]
fn service_principals_are_skipped_for_targets_without_them_and_matched_by_application_id_otherwise()
{
    let sp = Identity::new(Kind::ServicePrincipal, "sp1")
        .with("applicationId", "app-1")
        .with("displayName", "robot");
    let plan_generic = run(
        std::slice::from_ref(&sp),
        &[],
        &JobState::default(),
        &Policy::default(),
    );
    assert_eq!(plan_generic, Plan::default());
    let capabilities = Capabilities {
        service_principals: true,
        ..Capabilities::default()
    };
    let existing = Identity::new(Kind::ServicePrincipal, "t-sp")
        .with("applicationId", "app-1")
        .with("displayName", "other name");
    let policy = Policy {
        match_order: vec![MatchKey::ApplicationId],
        ..Policy::default()
    };
    let plan = plan(
        &Snapshot::of(vec![sp]),
        &Snapshot::of(vec![existing]),
        &JobState::default(),
        &policy,
        &capabilities,
        0,
    );
    assert_eq!(plan.adoptions[0].matched_by, MatchKey::ApplicationId);
}

#[test]
fn members_of_a_group_created_in_the_same_run_are_named_by_source_id() {
    let plan = run(
        &[user("u1", "ada"), group("g1", "eng", &["u1"])],
        &[],
        &JobState::default(),
        &Policy::default(),
    );
    let member = &plan.memberships[0].add[0];
    assert_eq!(member.source_id.as_deref(), Some("u1"));
    assert_eq!(member.target_id, None);
}

#[test]
fn the_plan_is_the_same_whatever_order_the_snapshots_come_in() {
    let mut source = vec![
        user("u1", "ada"),
        user("u2", "bob"),
        group("g1", "eng", &["u2", "u1"]),
    ];
    let first = run(&source, &[], &JobState::default(), &Policy::default());
    source.reverse();
    let second = run(&source, &[], &JobState::default(), &Policy::default());
    assert_eq!(first, second);
}

#[test]
fn built_in_groups_are_synced_only_when_named() {
    let ada = user("s1", "ada");
    let admins = group("g-admins", "admins", &["s1"]);
    let users = group("g-users", "Users", &["s1"]);
    let eng = group("g-eng", "eng", &["s1"]);
    let source = [ada, admins, users, eng];
    let created = |plan: &Plan| {
        let mut ids: Vec<&str> = plan.creates.iter().map(|c| c.source_id.as_str()).collect();
        ids.sort_unstable();
        ids.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let everything = run(&source, &[], &JobState::default(), &Policy::default());
    assert_eq!(created(&everything), ["g-eng", "s1"]);
    let named = Policy {
        groups: vec!["ADMINS".into(), "eng".into()],
        ..Policy::default()
    };
    let plan = run(&source, &[], &JobState::default(), &named);
    assert_eq!(created(&plan), ["g-admins", "g-eng", "s1"]);
}

fn partial(
    source: &[Identity],
    target: &[Identity],
    state: &JobState,
    policy: &Policy,
    capabilities: &Capabilities,
) -> Plan {
    plan_partial(
        &Snapshot::of(source.to_vec()),
        &Snapshot::of(target.to_vec()),
        state,
        policy,
        capabilities,
        0,
    )
}

/// A job that manages ada (t1), bob (t2) and eng (tg) holding ada.
fn managed_ada_bob_eng() -> JobState {
    let mut state = JobState::default();
    owned(&mut state, Kind::User, "s1", "t1");
    owned(&mut state, Kind::User, "s2", "t2");
    owned(&mut state, Kind::Group, "g1", "tg");
    state
}

#[test]
fn a_partial_run_never_deprovisions_or_forgets_what_it_did_not_read() {
    let state = managed_ada_bob_eng();
    // Only eng changed (carol joined it); ada and bob were not read, at either side.
    let eng = group("g1", "eng", &["s1", "s3"]);
    let carol = user("s3", "carol");
    let mut eng_target = mirrored(&eng, "tg");
    eng_target.members = vec!["t1".into()];
    let plan = partial(
        &[eng, carol],
        &[eng_target],
        &state,
        &Policy::default(),
        &caps(),
    );
    assert!(plan.deactivations.is_empty(), "{plan:#?}");
    assert!(plan.deletions.is_empty());
    assert!(plan.forgotten.is_empty());
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].label, "carol");
    assert_eq!(added(&plan, "eng"), ["carol"]);
    assert!(plan.memberships[0].remove.is_empty());
}

#[test]
fn a_full_run_from_the_same_read_would_deprovision_what_it_did_not_read() {
    // The rule above is the partial run's: the full planner takes absence as gone.
    let state = managed_ada_bob_eng();
    let eng = group("g1", "eng", &["s1"]);
    let eng_target = mirrored(&eng, "tg");
    let plan = plan(
        &Snapshot::of(vec![eng]),
        &Snapshot::of(vec![eng_target]),
        &state,
        &Policy {
            allow_deletions: true,
            ..Policy::default()
        },
        &caps(),
        0,
    );
    assert_eq!(plan.forgotten.len(), 2, "{plan:#?}");
}

#[test]
fn a_partial_run_adds_a_managed_member_it_did_not_read_by_its_mapping() {
    let state = managed_ada_bob_eng();
    // bob joined eng; bob himself did not change, so he is not in the read.
    let eng = group("g1", "eng", &["s1", "s2"]);
    let mut eng_target = mirrored(&eng, "tg");
    eng_target.members = vec!["t1".into()];
    let plan = partial(&[eng], &[eng_target], &state, &Policy::default(), &caps());
    assert_eq!(plan.memberships.len(), 1, "{plan:#?}");
    let change = &plan.memberships[0];
    assert_eq!(change.group_target_id.as_deref(), Some("tg"));
    assert_eq!(change.add.len(), 1);
    assert_eq!(change.add[0].target_id.as_deref(), Some("t2"));
    assert!(change.remove.is_empty());
    assert!(plan.creates.is_empty());
}

#[test]
fn a_partial_run_removes_a_managed_member_taken_out_of_a_changed_group() {
    let state = managed_ada_bob_eng();
    // bob left eng: the group changed, bob did not (and is not deactivated).
    let eng = group("g1", "eng", &["s1"]);
    let mut eng_target = mirrored(&eng, "tg");
    eng_target.members = vec!["t1".into(), "t2".into()];
    let plan = partial(&[eng], &[eng_target], &state, &Policy::default(), &caps());
    assert_eq!(plan.memberships.len(), 1, "{plan:#?}");
    let remove: Vec<_> = plan.memberships[0]
        .remove
        .iter()
        .map(|member| member.target_id.clone())
        .collect();
    assert_eq!(remove, [Some("t2".to_string())]);
    assert!(plan.memberships[0].add.is_empty());
    assert!(plan.deactivations.is_empty());
}

#[test]
fn a_partial_run_leaves_a_flattened_group_alone_when_a_nested_group_was_not_read() {
    let mut state = managed_ada_bob_eng();
    owned(&mut state, Kind::Group, "g2", "tp");
    // eng holds platform (not read); the target, flattened, holds ada under eng.
    let eng = group("g1", "eng", &["g2", "s2"]);
    let mut eng_target = mirrored(&eng, "tg");
    eng_target.members = vec!["t1".into()];
    let plan = partial(&[eng], &[eng_target], &state, &Policy::default(), &flat());
    assert!(plan.memberships.is_empty(), "{plan:#?}");
}

#[test]
fn a_partial_run_flattens_a_changed_nested_group_into_its_ancestor_read_with_it() {
    let mut state = managed_ada_bob_eng();
    owned(&mut state, Kind::Group, "g2", "tp");
    // platform (inside eng) gained bob; eng and platform were read, ada and bob were not.
    let platform = group("g2", "platform", &["s1", "s2"]);
    let eng = group("g1", "eng", &["g2"]);
    let mut eng_target = mirrored(&eng, "tg");
    eng_target.members = vec!["t1".into()];
    let mut platform_target = mirrored(&platform, "tp");
    platform_target.members = vec!["t1".into()];
    let plan = partial(
        &[eng, platform],
        &[eng_target, platform_target],
        &state,
        &Policy::default(),
        &flat(),
    );
    for label in ["eng", "platform"] {
        let change = plan
            .memberships
            .iter()
            .find(|change| change.label == label)
            .unwrap_or_else(|| panic!("{label} changes: {plan:#?}"));
        let added: Vec<_> = change.add.iter().map(|m| m.target_id.clone()).collect();
        assert_eq!(added, [Some("t2".to_string())], "{label}");
        assert!(change.remove.is_empty(), "{label}");
    }
}

#[test]
fn a_partial_run_scoped_by_group_takes_new_members_of_managed_groups_only() {
    let mut state = JobState::default();
    owned(&mut state, Kind::Group, "g1", "tg");
    let policy = Policy {
        groups: vec!["eng".into()],
        ..Policy::default()
    };
    // eng (managed) gained dave; an unrelated group and its member changed too.
    let eng = group("g1", "eng", &["s4"]);
    let dave = user("s4", "dave");
    let other = group("g9", "sales", &["s5"]);
    let erin = user("s5", "erin");
    let eng_target = mirrored(&eng, "tg");
    let plan = partial(
        &[eng, dave, other, erin],
        &[eng_target],
        &state,
        &policy,
        &caps(),
    );
    let created: Vec<_> = plan.creates.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(created, ["dave"], "{plan:#?}");
    assert_eq!(added(&plan, "eng"), ["dave"]);
}

/// The state a complete run leaves: every planned object mapped where the target holds it,
/// and the digests its plan computed remembered.
fn after_complete_run(
    source: &[Identity],
    target: &[Identity],
    capabilities: &Capabilities,
) -> JobState {
    let mut state = JobState::default();
    for (source_object, target_object) in source.iter().zip(target) {
        owned(
            &mut state,
            source_object.kind,
            &source_object.id,
            &target_object.id,
        );
    }
    let full = plan(
        &Snapshot::of(source.to_vec()),
        &Snapshot::of(target.to_vec()),
        &state,
        &Policy::default(),
        capabilities,
        0,
    );
    crate::drift::remember(&full, true, &mut state);
    state
}

#[test]
fn objects_read_again_unchanged_are_settled_and_planned_without_their_target_objects() {
    for capabilities in [caps(), flat()] {
        let ada = user("s1", "ada");
        let bob = user("s2", "bob");
        let inner = group("g2", "inner", &["s2"]);
        let eng = group("g1", "eng", &["s1", "g2"]);
        let source = [ada.clone(), bob.clone(), inner.clone(), eng.clone()];
        let mut target: Vec<Identity> = source
            .iter()
            .map(|object| mirrored(object, &format!("t-{}", object.id)))
            .collect();
        target[2].members = vec!["t-s2".into()];
        target[3].members = if capabilities.nested_groups {
            vec!["t-s1".into(), "t-g2".into()]
        } else {
            vec!["t-s1".into(), "t-s2".into()]
        };
        let state = after_complete_run(&source, &target, &capabilities);
        assert_eq!(state.digests.len(), 4, "{state:#?}");

        // The same objects read again: every one is settled, and a plan that reads none of
        // them at the target neither creates nor forgets them (a partial plan without the
        // settled set would create each again).
        let read = Snapshot::of(source.to_vec());
        let settled_now = settled(&read, &state, &Policy::default(), &capabilities);
        assert_eq!(settled_now.len(), 4, "{settled_now:?}");
        let nothing_gone = BTreeSet::new();
        let quiet = plan_partial_settled(
            &read,
            &Snapshot::default(),
            &state,
            &Policy::default(),
            &capabilities,
            &nothing_gone,
            &settled_now,
            0,
        );
        assert!(quiet.writes_nothing(), "{quiet:#?}");
        assert!(quiet.forgotten.is_empty(), "{quiet:#?}");
        let unsettled = plan_partial(
            &read,
            &Snapshot::default(),
            &state,
            &Policy::default(),
            &capabilities,
            0,
        );
        assert!(!unsettled.creates.is_empty());

        // A renamed user and the inner group carol joined are not settled; nor is eng where
        // groups are flattened (its transitive members grew).
        let renamed = user("s1", "ada").with("displayName", "Ada L.");
        let carol = user("s3", "carol");
        let inner_grown = group("g2", "inner", &["s2", "s3"]);
        let read = Snapshot::of(vec![renamed, bob.clone(), inner_grown, eng.clone(), carol]);
        let settled_now = settled(&read, &state, &Policy::default(), &capabilities);
        let mut expected: Vec<(Kind, String)> = vec![(Kind::User, "s2".into())];
        if capabilities.nested_groups {
            // eng holds inner itself, which did not change.
            expected.push((Kind::Group, "g1".into()));
        }
        let mut found: Vec<(Kind, String)> = settled_now.into_iter().collect();
        found.sort();
        expected.sort();
        assert_eq!(
            found, expected,
            "nested groups: {}",
            capabilities.nested_groups
        );
    }
}

#[test]
fn a_deprovisioned_or_unremembered_object_is_never_settled() {
    let ada = user("s1", "ada");
    let target = [mirrored(&ada, "t1")];
    let mut state = after_complete_run(std::slice::from_ref(&ada), &target, &caps());
    let read = Snapshot::of(vec![ada.clone()]);
    assert_eq!(settled(&read, &state, &Policy::default(), &caps()).len(), 1);
    // Deprovisioned: a run must restore it.
    state
        .mappings
        .get_mut(&(Kind::User, "s1".to_string()))
        .unwrap()
        .deprovisioned_at = Some(0);
    assert!(settled(&read, &state, &Policy::default(), &caps()).is_empty());
    // No digest remembered (a run from before digests, or one that failed).
    let mut state = after_complete_run(std::slice::from_ref(&ada), &target, &caps());
    state.digests.clear();
    assert!(settled(&read, &state, &Policy::default(), &caps()).is_empty());
}
