//! Properties over random accounts: the upward walk (`check`, `allows`) and the downward walk
//! (`who`) agree, explanations are true membership chains, and the group closure matches a
//! naive fixpoint over the memberships that were accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use scimitar_access::{AccessModel, Missing, Privilege, SecurableType};
use scimitar_domain::{PrincipalId, PrincipalKind};

const USERS: usize = 6;
const GROUPS: usize = 6;

const SECURABLES: [(SecurableType, &str); 5] = [
    (SecurableType::Catalog, "c"),
    (SecurableType::Schema, "c.s"),
    (SecurableType::Schema, "c.t"),
    (SecurableType::Table, "c.s.x"),
    (SecurableType::Table, "c.t.y"),
];
const PRIVILEGES: [Privilege; 6] = [
    Privilege::AllPrivileges,
    Privilege::Select,
    Privilege::Modify,
    Privilege::UseCatalog,
    Privilege::UseSchema,
    Privilege::Manage,
];

fn principal(index: usize) -> PrincipalId {
    if index < USERS {
        PrincipalId::new(format!("u{index}"))
    } else {
        PrincipalId::new(format!("g{}", index - USERS))
    }
}

#[derive(Debug, Clone)]
enum Op {
    Join {
        group: usize,
        member: usize,
    },
    Leave {
        group: usize,
        member: usize,
    },
    Deactivate {
        who: usize,
    },
    Grant {
        on: usize,
        to: usize,
        privilege: usize,
    },
    Revoke {
        on: usize,
        to: usize,
        privilege: usize,
    },
    Own {
        on: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let any_principal = 0..USERS + GROUPS;
    prop_oneof![
        4 => (0..GROUPS, any_principal.clone())
            .prop_map(|(group, member)| Op::Join { group, member }),
        1 => (0..GROUPS, any_principal.clone())
            .prop_map(|(group, member)| Op::Leave { group, member }),
        1 => any_principal.clone().prop_map(|who| Op::Deactivate { who }),
        4 => (0..SECURABLES.len(), any_principal.clone(), 0..PRIVILEGES.len())
            .prop_map(|(on, to, privilege)| Op::Grant { on, to, privilege }),
        1 => (0..SECURABLES.len(), any_principal.clone(), 0..PRIVILEGES.len())
            .prop_map(|(on, to, privilege)| Op::Revoke { on, to, privilege }),
        1 => (0..SECURABLES.len(), any_principal).prop_map(|(on, to)| Op::Own { on, to }),
    ]
}

/// Builds the model, and alongside it the membership edges the model accepted.
fn build(ops: &[Op]) -> (AccessModel, BTreeSet<(usize, usize)>) {
    let mut model = AccessModel::new();
    for index in 0..USERS + GROUPS {
        let kind = if index < USERS {
            PrincipalKind::User
        } else {
            PrincipalKind::Group
        };
        let id = principal(index);
        model
            .upsert_principal(&id, kind, id.as_str(), true)
            .unwrap();
    }
    let owner = principal(0);
    for (kind, name) in SECURABLES {
        model.create_securable(kind, name, &owner).unwrap();
    }
    let mut edges = BTreeSet::new();
    for op in ops {
        match *op {
            Op::Join { group, member } => {
                let group_index = USERS + group;
                if model
                    .add_membership(&principal(group_index), &principal(member))
                    .is_ok()
                {
                    edges.insert((group_index, member));
                }
            }
            Op::Leave { group, member } => {
                let group_index = USERS + group;
                model
                    .remove_membership(&principal(group_index), &principal(member))
                    .unwrap();
                edges.remove(&(group_index, member));
            }
            Op::Deactivate { who } => {
                let id = principal(who);
                let kind = if who < USERS {
                    PrincipalKind::User
                } else {
                    PrincipalKind::Group
                };
                model
                    .upsert_principal(&id, kind, id.as_str(), false)
                    .unwrap();
            }
            Op::Grant { on, to, privilege } => {
                let (kind, name) = SECURABLES[on];
                // Privileges that do not apply are refused; that is tested elsewhere.
                let _ = model.grant(kind, name, &principal(to), &[PRIVILEGES[privilege]]);
            }
            Op::Revoke { on, to, privilege } => {
                let (kind, name) = SECURABLES[on];
                let _ = model.revoke(kind, name, &principal(to), &[PRIVILEGES[privilege]]);
            }
            Op::Own { on, to } => {
                let (kind, name) = SECURABLES[on];
                model.set_owner(kind, name, &principal(to)).unwrap();
            }
        }
    }
    (model, edges)
}

/// Every group `member` is in, by fixpoint over the edges, ignoring active flags.
fn naive_groups(edges: &BTreeSet<(usize, usize)>, member: usize) -> BTreeSet<usize> {
    let mut found: BTreeSet<usize> = BTreeSet::new();
    loop {
        let before = found.len();
        for (group, inner) in edges {
            if *inner == member || found.contains(inner) {
                found.insert(*group);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn check_allows_and_who_agree(ops in proptest::collection::vec(op(), 0..60)) {
        let (model, edges) = build(&ops);
        for (kind, name) in SECURABLES {
            for privilege in PRIVILEGES {
                if !kind.applicable().contains(privilege) {
                    continue;
                }
                let who: BTreeSet<String> = model
                    .who(privilege, kind, name)
                    .unwrap()
                    .into_iter()
                    .map(|holder| holder.principal.id.to_string())
                    .collect();
                for user in 0..USERS {
                    let id = principal(user);
                    let decision = model.check(&id, privilege, kind, name).unwrap();
                    let allows = model.allows(&id, privilege, kind, name).unwrap();
                    prop_assert_eq!(decision.allowed, allows);
                    prop_assert_eq!(who.contains(id.as_str()), allows, "{} {} {}", id, privilege, name);
                    prop_assert_eq!(decision.missing.is_empty(), allows);
                    for reason in &decision.reasons {
                        // Each chain starts at the principal and climbs accepted edges.
                        prop_assert_eq!(&reason.via.chain[0].id, &id);
                        for pair in reason.via.chain.windows(2) {
                            let inner = index_of(&pair[0].id);
                            let outer = index_of(&pair[1].id);
                            prop_assert!(edges.contains(&(outer, inner)));
                        }
                    }
                    for missing in &decision.missing {
                        if let Missing::Privilege(requirement) = missing {
                            prop_assert!(!decision
                                .reasons
                                .iter()
                                .any(|reason| reason.requirement == *requirement));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn group_closure_matches_a_naive_fixpoint(ops in proptest::collection::vec(op(), 0..60)) {
        let (model, edges) = build(&ops);
        for member in 0..USERS + GROUPS {
            let got: BTreeSet<usize> = model
                .groups_of(&principal(member))
                .unwrap()
                .into_iter()
                .map(|membership| index_of(&membership.group.id))
                .collect();
            prop_assert_eq!(got, naive_groups(&edges, member));
        }
    }
}

fn index_of(id: &PrincipalId) -> usize {
    let text = id.as_str();
    let number: usize = text[1..].parse().unwrap();
    if text.starts_with('u') {
        number
    } else {
        USERS + number
    }
}
