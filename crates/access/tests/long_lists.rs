//! Securables with more grant entries, and groups with more members, than the sizes at which
//! the engine switches from scanning a list to indexing it. The answers must be the ones the
//! short lists give: same decisions, reasons in the order the grants were made, and member
//! removals that leave exactly the remaining members.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_access::{AccessModel, Privilege, SecurableType, Source};
use scimitar_domain::{PrincipalId, PrincipalKind};

const CATALOG: (SecurableType, &str) = (SecurableType::Catalog, "main");
/// More grantees than the engine's threshold for indexing a securable's grants (32).
const GRANTEE_GROUPS: usize = 200;
/// More members than the engine's threshold for indexing a group's members (1,024).
const BIG_GROUP_MEMBERS: usize = 3_000;

fn id(name: &str) -> PrincipalId {
    PrincipalId::new(name)
}

fn group_name(index: usize) -> String {
    format!("g{index}")
}

/// `alice` in `team`, which is in g150 and g20; every g<i> holds `USE_CATALOG` on `main`,
/// granted in index order.
fn model_with_many_grantees() -> AccessModel {
    let mut model = AccessModel::new();
    model
        .upsert_principal(&id("owner"), PrincipalKind::User, "owner", true)
        .unwrap();
    model
        .upsert_principal(&id("alice"), PrincipalKind::User, "alice", true)
        .unwrap();
    model
        .upsert_principal(&id("team"), PrincipalKind::Group, "team", true)
        .unwrap();
    model
        .create_securable(CATALOG.0, CATALOG.1, &id("owner"))
        .unwrap();
    for index in 0..GRANTEE_GROUPS {
        let name = group_name(index);
        model
            .upsert_principal(&id(&name), PrincipalKind::Group, &name, true)
            .unwrap();
        model
            .grant(CATALOG.0, CATALOG.1, &id(&name), &[Privilege::UseCatalog])
            .unwrap();
    }
    model.add_membership(&id("team"), &id("alice")).unwrap();
    model.add_membership(&id("g150"), &id("team")).unwrap();
    model.add_membership(&id("g20"), &id("team")).unwrap();
    model
}

fn holders_named(decision: &scimitar_access::Decision) -> Vec<String> {
    decision
        .reasons
        .iter()
        .map(|reason| match reason.via.holder() {
            Some(holder) => holder.name.clone(),
            None => String::new(),
        })
        .collect()
}

#[test]
fn a_long_grant_list_explains_in_grant_order_whatever_the_walk_order() {
    let model = model_with_many_grantees();
    let decision = model
        .check(&id("alice"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap();
    assert!(decision.allowed);
    // g150 was joined first, but g20 was granted first.
    assert_eq!(holders_named(&decision), ["g20", "g150"]);
    let chain: Vec<&str> = decision.reasons[0]
        .via
        .chain
        .iter()
        .map(|principal| principal.name.as_str())
        .collect();
    assert_eq!(chain, ["alice", "team", "g20"]);
    assert!(matches!(
        decision.reasons[0].via.source,
        Source::Grant {
            privilege: Privilege::UseCatalog,
            ..
        }
    ));
    assert!(model
        .allows(&id("alice"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap());
}

#[test]
fn revoking_from_a_long_grant_list_keeps_the_others_in_order_and_their_index_right() {
    let mut model = model_with_many_grantees();
    model
        .revoke(CATALOG.0, CATALOG.1, &id("g20"), &[Privilege::UseCatalog])
        .unwrap();
    let decision = model
        .check(&id("alice"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap();
    assert_eq!(holders_named(&decision), ["g150"]);
    model
        .revoke(CATALOG.0, CATALOG.1, &id("g150"), &[Privilege::UseCatalog])
        .unwrap();
    assert!(!model
        .allows(&id("alice"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap());
    let grants = model.grants_on(CATALOG.0, CATALOG.1).unwrap();
    assert_eq!(grants.len(), GRANTEE_GROUPS - 2);
    let names: Vec<String> = grants.iter().map(|(who, _)| who.name.clone()).collect();
    let mut expected: Vec<String> = (0..GRANTEE_GROUPS)
        .filter(|index| *index != 20 && *index != 150)
        .map(group_name)
        .collect();
    assert_eq!(names, expected);
    // Granting again appends, and the index finds the new entry.
    model
        .grant(CATALOG.0, CATALOG.1, &id("g20"), &[Privilege::UseCatalog])
        .unwrap();
    expected.push(group_name(20));
    let names: Vec<String> = model
        .grants_on(CATALOG.0, CATALOG.1)
        .unwrap()
        .iter()
        .map(|(who, _)| who.name.clone())
        .collect();
    assert_eq!(names, expected);
    assert!(model
        .allows(&id("alice"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap());
}

#[test]
fn removing_a_grantee_principal_drops_it_from_a_long_grant_list() {
    let mut model = model_with_many_grantees();
    model.remove_principal(&id("g20")).unwrap();
    let decision = model
        .check(&id("alice"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap();
    assert_eq!(holders_named(&decision), ["g150"]);
    model.remove_principal(&id("g150")).unwrap();
    assert!(!model
        .allows(&id("alice"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap());
}

#[test]
fn members_removed_from_a_big_group_in_any_order_leave_exactly_the_rest() {
    let mut model = AccessModel::new();
    model
        .upsert_principal(&id("owner"), PrincipalKind::User, "owner", true)
        .unwrap();
    model
        .upsert_principal(&id("big"), PrincipalKind::Group, "big", true)
        .unwrap();
    model
        .create_securable(CATALOG.0, CATALOG.1, &id("owner"))
        .unwrap();
    model
        .grant(CATALOG.0, CATALOG.1, &id("big"), &[Privilege::UseCatalog])
        .unwrap();
    for index in 0..BIG_GROUP_MEMBERS {
        let name = format!("u{index}");
        model
            .upsert_principal(&id(&name), PrincipalKind::User, &name, true)
            .unwrap();
        model.add_membership(&id("big"), &id(&name)).unwrap();
    }
    // Remove every third member, in a scrambled order, and one that is not a member.
    let mut removed: Vec<usize> = (0..BIG_GROUP_MEMBERS).step_by(3).collect();
    removed.reverse();
    let half = removed.len() / 2;
    removed.rotate_left(half);
    for index in &removed {
        assert!(model
            .remove_membership(&id("big"), &id(&format!("u{index}")))
            .unwrap());
    }
    assert!(!model.remove_membership(&id("big"), &id("u0")).unwrap());
    let mut holders: Vec<String> = model
        .who(Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap()
        .into_iter()
        .map(|holder| holder.principal.name)
        .filter(|name| name != "owner")
        .collect();
    holders.sort();
    let mut expected: Vec<String> = (0..BIG_GROUP_MEMBERS)
        .filter(|index| index % 3 != 0)
        .map(|index| format!("u{index}"))
        .collect();
    expected.sort();
    assert_eq!(holders, expected);
    // A removed member can be added back, and removed again.
    model.add_membership(&id("big"), &id("u0")).unwrap();
    assert!(model
        .allows(&id("u0"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap());
    assert!(model.remove_membership(&id("big"), &id("u0")).unwrap());
    assert!(!model
        .allows(&id("u0"), Privilege::UseCatalog, CATALOG.0, CATALOG.1)
        .unwrap());
}
