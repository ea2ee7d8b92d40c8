//! `who` as the access API and the CLI answer it: the engine's compact answer alone, then
//! that answer rendered to the API's JSON bytes (`access_questions::who_json`), to the CLI's
//! indented JSON and to its text, for a table granted to a group of 100,000 users nested
//! three levels deep. For comparison, the rendering this replaced: owned `Vec<Holder>`, a
//! `serde_json::Value` tree, then bytes (it also checks that both write the same bytes).
//!
//! A `harness = false` binary timed with `Instant`, like the engine's own benchmark
//! (`crates/access/benches/check.rs`): each call is timed alone to get percentiles.
//!
//! ```sh
//! cargo bench -p scimitar-server --bench who
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_access::{AccessModel, Privilege, SecurableRef, SecurableType};
use scimitar_app::access_questions::{self, Target};
use scimitar_domain::{PrincipalId, PrincipalKind, WorkspaceId};
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The allocator of the `scimitar` binary, whose server this measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `org` holds `DIVISIONS` divisions of `TEAMS_PER_DIVISION` teams; the users are spread
/// over the teams.
const DIVISIONS: usize = 10;
const TEAMS_PER_DIVISION: usize = 10;
const ORG_USERS: usize = 100_000;
/// Under `cargo test --benches` (an unoptimized build that only has to run).
const ORG_USERS_QUICK: usize = 1_000;
/// Noise: users outside `org`, in groups of their own, with grants on other tables of the
/// same schema and on the same schema (without `SELECT` on the table).
const OTHER_USERS: usize = 20_000;
const OTHER_GROUPS: usize = 200;
/// `SCIMITAR_BENCH_SIZE=full`: the rest of issue #3's dataset around `org`, so that reading
/// holders' names and chains meets a heap of the real size: 900,000 other users in 100,000
/// groups, every user (those of `org` too) in ten groups in all, 10M memberships.
const FULL_OTHER_USERS: usize = 900_000;
const FULL_OTHER_GROUPS: usize = 100_000;
const FULL_MEMBERSHIPS_PER_USER: usize = 10;

/// The noise around `org`.
#[derive(Clone, Copy)]
struct Others {
    users: usize,
    groups: usize,
    /// Groups each user is in beyond its first (its team, or its own other group).
    extra_memberships: usize,
}
const OTHER_TABLES: usize = 1_000;

fn id(text: String) -> PrincipalId {
    PrincipalId::new(text)
}

/// Ids shaped like the server's (16 digits).
fn org_user(index: usize) -> PrincipalId {
    id((1_000_000_000_000_000 + index as u64 * 7_919).to_string())
}

fn build(org_users: usize, others_size: Others) -> AccessModel {
    let mut model = AccessModel::new();
    let admin = id("admin".to_string());
    model
        .upsert_principal(&admin, PrincipalKind::User, "admin@example.com", true)
        .unwrap();
    let org = id("org".to_string());
    model
        .upsert_principal(&org, PrincipalKind::Group, "org", true)
        .unwrap();
    let mut teams = Vec::new();
    for division in 0..DIVISIONS {
        let division_id = id(format!("division{division}"));
        model
            .upsert_principal(
                &division_id,
                PrincipalKind::Group,
                &format!("division {division}"),
                true,
            )
            .unwrap();
        model.add_membership(&org, &division_id).unwrap();
        for team in 0..TEAMS_PER_DIVISION {
            let team_id = id(format!("team{division}-{team}"));
            model
                .upsert_principal(
                    &team_id,
                    PrincipalKind::Group,
                    &format!("team {division}-{team}"),
                    true,
                )
                .unwrap();
            model.add_membership(&division_id, &team_id).unwrap();
            teams.push(team_id);
        }
    }
    // Names like real userNames.
    for index in 0..org_users {
        let user = org_user(index);
        model
            .upsert_principal(
                &user,
                PrincipalKind::User,
                &format!("user{index}@example.com"),
                true,
            )
            .unwrap();
        model
            .add_membership(&teams[index % teams.len()], &user)
            .unwrap();
    }
    let mut others = Vec::new();
    for index in 0..others_size.groups {
        let group = id(format!("other-group{index}"));
        model
            .upsert_principal(
                &group,
                PrincipalKind::Group,
                &format!("other group {index}"),
                true,
            )
            .unwrap();
        others.push(group);
    }
    for index in 0..others_size.users {
        let user = id(format!("other{index}"));
        model
            .upsert_principal(
                &user,
                PrincipalKind::User,
                &format!("other{index}@example.com"),
                true,
            )
            .unwrap();
        model
            .add_membership(&others[index % others.len()], &user)
            .unwrap();
    }
    if others_size.extra_memberships > 0 {
        let every_user = (0..org_users)
            .map(org_user)
            .chain((0..others_size.users).map(|index| id(format!("other{index}"))));
        for (index, user) in every_user.enumerate() {
            for extra in 0..others_size.extra_memberships {
                let mixed = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ (extra as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                let group = &others[(mixed % others.len() as u64) as usize];
                model.add_membership(group, &user).unwrap();
            }
        }
    }
    model
        .create_securable(SecurableType::Catalog, "main", &admin)
        .unwrap();
    model
        .create_securable(SecurableType::Schema, "main.sales", &admin)
        .unwrap();
    model
        .create_securable(SecurableType::Table, "main.sales.orders", &admin)
        .unwrap();
    for index in 0..OTHER_TABLES {
        let table = format!("main.sales.t{index}");
        model
            .create_securable(SecurableType::Table, &table, &admin)
            .unwrap();
        model
            .grant(
                SecurableType::Table,
                &table,
                &others[index % others.len()],
                &[Privilege::Select],
            )
            .unwrap();
    }
    // Every group, `org` included, may use the catalog and the schema.
    for group in others.iter().chain([&org]) {
        model
            .grant(
                SecurableType::Catalog,
                "main",
                group,
                &[Privilege::UseCatalog],
            )
            .unwrap();
        model
            .grant(
                SecurableType::Schema,
                "main.sales",
                group,
                &[Privilege::UseSchema],
            )
            .unwrap();
    }
    model
        .grant(
            SecurableType::Table,
            "main.sales.orders",
            &org,
            &[Privilege::Select],
        )
        .unwrap();
    model
}

/// Times `operation` once per iteration and prints a row: p50, p99, max.
fn measure(name: &str, iterations: usize, mut operation: impl FnMut() -> usize) -> usize {
    let mut samples: Vec<Duration> = Vec::with_capacity(iterations);
    let mut produced = 0;
    for _ in 0..iterations {
        let started = Instant::now();
        produced = black_box(operation());
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    let at = |fraction: f64| {
        samples[((samples.len() as f64 * fraction) as usize).min(samples.len() - 1)]
    };
    println!(
        "| {name} | {iterations} | {:.1?} | {:.1?} | {:.1?} | {produced} |",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
    produced
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --benches` one small pass is enough.
    let (iterations, org_users) = if std::env::args().any(|argument| argument == "--bench") {
        (20, ORG_USERS)
    } else {
        (1, ORG_USERS_QUICK)
    };
    let started = Instant::now();
    let others = if std::env::var("SCIMITAR_BENCH_SIZE").as_deref() == Ok("full") {
        Others {
            users: FULL_OTHER_USERS,
            groups: FULL_OTHER_GROUPS,
            extra_memberships: FULL_MEMBERSHIPS_PER_USER - 1,
        }
    } else {
        Others {
            users: OTHER_USERS,
            groups: OTHER_GROUPS,
            extra_memberships: 0,
        }
    };
    let model = build(org_users, others);
    println!(
        "built org > {DIVISIONS} divisions > {} teams > {org_users} users, plus {} users in {} \
         other groups (each user in {} more), and {OTHER_TABLES} other tables, in {:.1?}",
        DIVISIONS * TEAMS_PER_DIVISION,
        others.users,
        others.groups,
        others.extra_memberships,
        started.elapsed()
    );
    let target = Target::Securable {
        privilege: Privilege::Select,
        securable: SecurableRef::new(SecurableType::Table, "main.sales.orders"),
    };
    let ask = || {
        model
            .holders(Privilege::Select, SecurableType::Table, "main.sales.orders")
            .unwrap()
    };
    let holders = ask().len();
    assert_eq!(
        holders,
        org_users + 1,
        "org's users and the admin, who owns"
    );

    // The rendering this replaced, rebuilt from the public pieces for comparison.
    let before = || {
        let holders = model
            .who(Privilege::Select, SecurableType::Table, "main.sales.orders")
            .unwrap();
        let value = json!({
            "target": access_questions::target_json(&target),
            "principals": holders.iter().map(|holder| json!({
                "principal": access_questions::principal_json(&holder.principal),
                "via": access_questions::via_json(&holder.via),
            })).collect::<Vec<_>>(),
        });
        serde_json::to_vec(&value).unwrap()
    };
    // Securables are the account's: the workspace matters only for entitlements.
    let workspace = WorkspaceId::new("ws");
    let now = access_questions::who_json(&model, &workspace, &target).unwrap();
    assert!(
        now == before(),
        "who_json writes the same bytes as the Value rendering"
    );

    println!();
    println!("`who` SELECT on a table granted to `org`, {holders} holders:");
    println!();
    println!("| operation | iterations | p50 | p99 | max | bytes |");
    println!("|---|---|---|---|---|---|");
    measure("holders (compact answer, nothing read)", iterations, || {
        ask().len()
    });
    measure(
        "who_json: compact answer written as JSON bytes (HTTP body)",
        iterations,
        || {
            access_questions::who_json(&model, &workspace, &target)
                .unwrap()
                .len()
        },
    );
    measure("who --json: the same, indented (CLI)", iterations, || {
        access_questions::who(&model, &workspace, &target, |answer| {
            answer.to_json(true).unwrap()
        })
        .unwrap()
        .len()
    });
    measure(
        "who as text: compact answer rendered to the CLI's lines",
        iterations,
        || {
            access_questions::who(&model, &workspace, &target, |answer| answer.to_string())
                .unwrap()
                .len()
        },
    );
    measure(
        "before: who Vec<Holder>, then a Value tree, then bytes",
        iterations,
        || before().len(),
    );
}
