//! `allows` reads a user's groups from its precomputed access set when that is fresh, and
//! otherwise from closures kept per group, while `check` walks the graph; after every single
//! change (joins and leaves of users and groups, deactivation and reactivation, deletion and
//! re-creation of groups and users) and a refresh of a random few access sets, the two must
//! agree for every principal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_access::{AccessModel, Privilege, SecurableType};
use scimitar_domain::{PrincipalId, PrincipalKind};

const USERS: usize = 8;
const GROUPS: usize = 10;
const STEPS: usize = 3_000;
const CATALOG: (SecurableType, &str) = (SecurableType::Catalog, "c");

/// A fixed-seed generator, so every run makes the same changes.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound
    }
}

fn user(index: usize) -> PrincipalId {
    PrincipalId::new(format!("u{index}"))
}

fn group(index: usize) -> PrincipalId {
    PrincipalId::new(format!("g{index}"))
}

fn create_user(model: &mut AccessModel, index: usize) -> PrincipalId {
    let id = user(index);
    model
        .upsert_principal(&id, PrincipalKind::User, id.as_str(), true)
        .unwrap();
    id
}

fn create_group(model: &mut AccessModel, index: usize) {
    let id = group(index);
    model
        .upsert_principal(&id, PrincipalKind::Group, id.as_str(), true)
        .unwrap();
    // A few groups hold USE_CATALOG, so access depends on which groups are reached.
    if index.is_multiple_of(4) {
        model
            .grant(CATALOG.0, CATALOG.1, &id, &[Privilege::UseCatalog])
            .unwrap();
    }
}

#[test]
fn allows_from_closures_agrees_with_the_walk_after_every_change() {
    let mut model = AccessModel::new();
    model
        .upsert_principal(
            &PrincipalId::new("owner"),
            PrincipalKind::User,
            "owner",
            true,
        )
        .unwrap();
    model
        .create_securable(CATALOG.0, CATALOG.1, &PrincipalId::new("owner"))
        .unwrap();
    for index in 0..USERS {
        create_user(&mut model, index);
    }
    for index in 0..GROUPS {
        create_group(&mut model, index);
    }
    let mut random = Lcg(7);
    let mut allowed_seen = 0;
    for step in 0..STEPS {
        let target = group(random.below(GROUPS));
        let member = if random.below(3) == 0 {
            user(random.below(USERS))
        } else {
            group(random.below(GROUPS))
        };
        match random.below(40) {
            // Cycles, over-deep chains and unknown principals are refused; that is fine.
            0..=15 => {
                let _ = model.add_membership(&target, &member);
            }
            16..=29 => {
                let _ = model.remove_membership(&target, &member);
            }
            30..=35 => {
                let active = random.below(3) != 0;
                let _ =
                    model.upsert_principal(&target, PrincipalKind::Group, target.as_str(), active);
            }
            36 => {
                let _ = model.remove_principal(&target);
            }
            37 => {
                let index = random.below(USERS);
                if model.remove_principal(&user(index)).is_err() {
                    create_user(&mut model, index);
                }
            }
            _ => {
                if model.principal_ref(&target).is_err() {
                    let index: usize = target.as_str()[1..].parse().unwrap();
                    create_group(&mut model, index);
                }
            }
        }
        // Sometimes none, sometimes every stale set: both ways of answering get exercised.
        let _ = model.refresh_access_sets(random.below(4));
        let everyone = (0..USERS).map(user).chain((0..GROUPS).map(group));
        for principal in everyone {
            let Ok(decision) = model.check(&principal, Privilege::UseCatalog, CATALOG.0, CATALOG.1)
            else {
                continue;
            };
            let allows = model
                .allows(&principal, Privilege::UseCatalog, CATALOG.0, CATALOG.1)
                .unwrap();
            assert_eq!(
                allows, decision.allowed,
                "step {step}: allows and check disagree for {principal}"
            );
            allowed_seen += usize::from(allows);
        }
    }
    // The sequence must exercise both answers, or it proves little.
    assert!(allowed_seen > STEPS, "only {allowed_seen} allowed answers");
}

/// A group-in-group change leaves access sets to refresh, and a refresh with room for all of
/// them leaves none; a bounded one works through them a budget at a time.
#[test]
fn a_nesting_change_leaves_access_sets_to_refresh_until_refreshed() {
    let mut model = AccessModel::new();
    let owner = PrincipalId::new("owner");
    model
        .upsert_principal(&owner, PrincipalKind::User, "owner", true)
        .unwrap();
    model
        .create_securable(CATALOG.0, CATALOG.1, &owner)
        .unwrap();
    for index in 0..4 {
        create_group(&mut model, index);
    }
    for index in 0..10 {
        let id = create_user(&mut model, index);
        model.add_membership(&group(index % 2), &id).unwrap();
    }
    assert!(model.refresh_access_sets(usize::MAX));
    assert!(model.access_sets_fresh());
    model.add_membership(&group(2), &group(0)).unwrap();
    assert!(!model.access_sets_fresh());
    assert!(!model.refresh_access_sets(3));
    assert!(!model.access_sets_fresh());
    assert!(model.refresh_access_sets(usize::MAX));
    assert!(model.access_sets_fresh());
}

#[test]
fn a_groups_direct_member_count_follows_joins_and_leaves() {
    let mut model = AccessModel::new();
    for index in 0..3 {
        model
            .upsert_principal(&user(index), PrincipalKind::User, "u", true)
            .unwrap();
    }
    for index in 0..2 {
        model
            .upsert_principal(&group(index), PrincipalKind::Group, "g", true)
            .unwrap();
    }
    assert_eq!(model.direct_member_count(&group(0)).unwrap(), 0);
    model.add_membership(&group(0), &user(0)).unwrap();
    model.add_membership(&group(0), &user(1)).unwrap();
    model.add_membership(&group(0), &group(1)).unwrap();
    model.add_membership(&group(1), &user(2)).unwrap();
    // Direct members only: user 2 is in group 0 through group 1.
    assert_eq!(model.direct_member_count(&group(0)).unwrap(), 3);
    model.remove_membership(&group(0), &user(1)).unwrap();
    assert_eq!(model.direct_member_count(&group(0)).unwrap(), 2);
    assert_eq!(model.direct_member_count(&user(0)).unwrap(), 0);
    assert!(model.direct_member_count(&group(9)).is_err());
}

/// `check` answers a user from its precomputed access set when that is fresh and walks its
/// groups otherwise; the two must give the same decision, reasons, order and chains. Grants
/// are many (long lists that are indexed, prefiltered and probed) and nesting has diamonds,
/// so that several shortest chains compete.
#[test]
fn explanations_from_access_sets_match_the_walk() {
    const USERS: usize = 30;
    const GROUPS: usize = 200;
    let mut model = AccessModel::new();
    let owner = PrincipalId::new("owner");
    model
        .upsert_principal(&owner, PrincipalKind::User, "owner", true)
        .unwrap();
    let table = (SecurableType::Table, "c.s.t");
    model
        .create_securable(CATALOG.0, CATALOG.1, &owner)
        .unwrap();
    model
        .create_securable(SecurableType::Schema, "c.s", &owner)
        .unwrap();
    model.create_securable(table.0, table.1, &owner).unwrap();
    let mut random = Lcg(11);
    for index in 0..GROUPS {
        let id = group(index);
        model
            .upsert_principal(&id, PrincipalKind::Group, id.as_str(), index % 13 != 5)
            .unwrap();
    }
    for index in 0..USERS {
        let id = create_user(&mut model, index);
        for _ in 0..4 {
            model
                .add_membership(&group(random.below(GROUPS)), &id)
                .unwrap();
        }
    }
    // Trees of 20 groups, each group inside one to three groups of lower index in its tree:
    // diamonds, no cycles, and users who reach some trees and not others.
    for index in 0..GROUPS {
        let first_in_tree = index - index % 20;
        if index == first_in_tree {
            continue;
        }
        for _ in 0..1 + random.below(3) {
            let parent = first_in_tree + random.below(index - first_in_tree);
            let _ = model.add_membership(&group(parent), &group(index));
        }
    }
    let grants = [
        (CATALOG.0, CATALOG.1, Privilege::UseCatalog),
        (SecurableType::Schema, "c.s", Privilege::UseSchema),
        (SecurableType::Schema, "c.s", Privilege::Select),
        (table.0, table.1, Privilege::Select),
        (table.0, table.1, Privilege::AllPrivileges),
    ];
    for index in 0..GROUPS * 2 {
        let (kind, name, privilege) = grants[random.below(grants.len())];
        if random.below(6) == 0 {
            model
                .grant(kind, name, &group(index % GROUPS), &[privilege])
                .unwrap();
        }
        if random.below(3) == 0 {
            let (kind, name, privilege) = grants[random.below(grants.len())];
            model
                .grant(kind, name, &user(random.below(USERS)), &[privilege])
                .unwrap();
        }
    }
    // Long enough to be indexed (more than 32 entries), prefiltered and probed.
    let schema_entries = model.grants_on(SecurableType::Schema, "c.s").unwrap().len();
    assert!(
        schema_entries > 32,
        "{schema_entries} grant entries on the schema"
    );
    let questions = [
        (Privilege::Select, table.0, table.1),
        (Privilege::Modify, table.0, table.1),
        (Privilege::UseSchema, SecurableType::Schema, "c.s"),
        (Privilege::UseCatalog, CATALOG.0, CATALOG.1),
    ];
    let ask = |model: &AccessModel| {
        let mut decisions = Vec::new();
        for index in 0..USERS {
            for (privilege, kind, name) in questions {
                decisions.push(model.check(&user(index), privilege, kind, name).unwrap());
            }
        }
        decisions
    };
    assert!(model.refresh_access_sets(usize::MAX));
    let from_sets = ask(&model);
    // A new group put into another makes every access set stale without changing anyone's
    // access; every answer is then walked.
    for index in [GROUPS, GROUPS + 1] {
        let id = group(index);
        model
            .upsert_principal(&id, PrincipalKind::Group, id.as_str(), true)
            .unwrap();
    }
    model
        .add_membership(&group(GROUPS), &group(GROUPS + 1))
        .unwrap();
    assert!(!model.access_sets_fresh());
    let walked = ask(&model);
    assert_eq!(from_sets, walked);
    let reasons: usize = walked.iter().map(|decision| decision.reasons.len()).sum();
    let longest = walked
        .iter()
        .flat_map(|decision| &decision.reasons)
        .map(|reason| reason.via.chain.len())
        .max()
        .unwrap_or(0);
    let allowed = walked.iter().filter(|decision| decision.allowed).count();
    // The data must give long explanations and both answers, or this proves little.
    assert!(
        reasons > 200 && longest >= 4 && allowed > 10 && allowed < walked.len(),
        "{reasons} reasons, longest chain {longest}, {allowed} allowed"
    );
}
