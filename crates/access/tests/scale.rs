//! A moderately large account (20k users, 2k groups nested ten deep, 2k securables) to drive
//! every code path over realistic shapes. It asserts agreement between the queries, never
//! timings: speed is measured by the benchmarks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use scimitar_access::{AccessModel, Privilege, SecurableType};
use scimitar_domain::{PrincipalId, PrincipalKind};

const USERS: usize = 20_000;
const GROUPS_PER_LAYER: usize = 200;
const LAYERS: usize = 10;
const CATALOGS: usize = 10;
const SCHEMAS_PER_CATALOG: usize = 10;
const TABLES_PER_SCHEMA: usize = 19;

/// A fixed-seed generator, so the account is the same on every run.
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
    PrincipalId::new(format!("user-{index}"))
}

fn group(layer: usize, index: usize) -> PrincipalId {
    PrincipalId::new(format!("group-{layer}-{index}"))
}

fn table(index: usize) -> String {
    let schema = index / TABLES_PER_SCHEMA;
    format!(
        "cat{}.sch{}.tbl{}",
        schema / SCHEMAS_PER_CATALOG,
        schema % SCHEMAS_PER_CATALOG,
        index % TABLES_PER_SCHEMA
    )
}

fn build(random: &mut Lcg) -> AccessModel {
    let mut model = AccessModel::new();
    for index in 0..USERS {
        let id = user(index);
        model
            .upsert_principal(&id, PrincipalKind::User, id.as_str(), true)
            .unwrap();
    }
    for layer in 0..LAYERS {
        for index in 0..GROUPS_PER_LAYER {
            let id = group(layer, index);
            model
                .upsert_principal(&id, PrincipalKind::Group, id.as_str(), true)
                .unwrap();
        }
    }
    // Each group below the top layer sits in two groups of the layer above: chains of ten.
    for layer in 0..LAYERS - 1 {
        for index in 0..GROUPS_PER_LAYER {
            for _ in 0..2 {
                let outer = group(layer + 1, random.below(GROUPS_PER_LAYER));
                model.add_membership(&outer, &group(layer, index)).unwrap();
            }
        }
    }
    // Each user joins three groups of the bottom layers.
    for index in 0..USERS {
        for _ in 0..3 {
            let layer = random.below(3);
            let target = group(layer, random.below(GROUPS_PER_LAYER));
            model.add_membership(&target, &user(index)).unwrap();
        }
    }
    let owner = user(0);
    for catalog in 0..CATALOGS {
        let catalog_name = format!("cat{catalog}");
        model
            .create_securable(SecurableType::Catalog, &catalog_name, &owner)
            .unwrap();
        for schema in 0..SCHEMAS_PER_CATALOG {
            let schema_name = format!("{catalog_name}.sch{schema}");
            model
                .create_securable(SecurableType::Schema, &schema_name, &owner)
                .unwrap();
            for tbl in 0..TABLES_PER_SCHEMA {
                model
                    .create_securable(
                        SecurableType::Table,
                        &format!("{schema_name}.tbl{tbl}"),
                        &owner,
                    )
                    .unwrap();
            }
        }
    }
    // USE on every catalog for a few upper groups, and a mix of grants on every level.
    for catalog in 0..CATALOGS {
        for _ in 0..5 {
            let grantee = group(LAYERS - 1 - random.below(3), random.below(GROUPS_PER_LAYER));
            model
                .grant(
                    SecurableType::Catalog,
                    &format!("cat{catalog}"),
                    &grantee,
                    &[Privilege::UseCatalog],
                )
                .unwrap();
        }
        for schema in 0..SCHEMAS_PER_CATALOG {
            let grantee = group(random.below(LAYERS), random.below(GROUPS_PER_LAYER));
            model
                .grant(
                    SecurableType::Schema,
                    &format!("cat{catalog}.sch{schema}"),
                    &grantee,
                    &[Privilege::UseSchema, Privilege::Select],
                )
                .unwrap();
        }
    }
    for index in 0..CATALOGS * SCHEMAS_PER_CATALOG * TABLES_PER_SCHEMA {
        let grantee = if random.below(4) == 0 {
            user(random.below(USERS))
        } else {
            group(random.below(LAYERS), random.below(GROUPS_PER_LAYER))
        };
        model
            .grant(
                SecurableType::Table,
                &table(index),
                &grantee,
                &[Privilege::Modify],
            )
            .unwrap();
    }
    model
}

#[test]
fn a_large_account_answers_consistently() {
    let mut random = Lcg(42);
    let mut model = build(&mut random);
    let tables = CATALOGS * SCHEMAS_PER_CATALOG * TABLES_PER_SCHEMA;

    // The fast path and the explained path agree on many random questions.
    let mut allowed = 0;
    for _ in 0..2_000 {
        let who = user(random.below(USERS));
        let name = table(random.below(tables));
        let privilege = if random.below(2) == 0 {
            Privilege::Select
        } else {
            Privilege::Modify
        };
        let decision = model
            .check(&who, privilege, SecurableType::Table, &name)
            .unwrap();
        let fast = model
            .allows(&who, privilege, SecurableType::Table, &name)
            .unwrap();
        assert_eq!(decision.allowed, fast, "{who} {privilege} {name}");
        allowed += usize::from(fast);
    }
    assert!(allowed > 0, "the generated account should allow something");

    // The downward walk agrees with the upward one on a few tables, for a sample of users.
    for _ in 0..5 {
        let name = table(random.below(tables));
        let holders: BTreeSet<String> = model
            .who(Privilege::Select, SecurableType::Table, &name)
            .unwrap()
            .into_iter()
            .map(|holder| holder.principal.id.to_string())
            .collect();
        for index in (0..USERS).step_by(97) {
            let id = user(index);
            let allows = model
                .allows(&id, Privilege::Select, SecurableType::Table, &name)
                .unwrap();
            assert_eq!(holders.contains(id.as_str()), allows, "{id} on {name}");
        }
    }

    // What and the group listing work at this size.
    let someone = user(1234);
    let direct = model
        .groups_of(&someone)
        .unwrap()
        .iter()
        .filter(|g| g.direct)
        .count();
    assert!((1..=3).contains(&direct));
    // Grants are the account's: they are listed whatever the workspace asked about.
    let workspace = scimitar_domain::WorkspaceId::new("ws");
    assert!(!model.what(&workspace, &someone).unwrap().is_empty());

    // A membership change is seen by the very next check: take a user that can read a table
    // out of every direct group and it loses every grant held through them.
    let name = table(0);
    // user-0 owns every securable, so it is left out.
    let reader = (1..USERS)
        .map(user)
        .find(|id| {
            model
                .allows(id, Privilege::Select, SecurableType::Table, &name)
                .unwrap()
        })
        .expect("someone can read the first table");
    for membership in model.groups_of(&reader).unwrap() {
        if membership.direct {
            model
                .remove_membership(&membership.group.id, &reader)
                .unwrap();
        }
    }
    assert!(!model
        .allows(&reader, Privilege::Select, SecurableType::Table, &name)
        .unwrap());

    // Dropping a catalog takes its two hundred-odd securables and their grants.
    model
        .drop_securable(SecurableType::Catalog, "cat0")
        .unwrap();
    assert!(model
        .check(&reader, Privilege::Select, SecurableType::Table, &name)
        .is_err());
}
