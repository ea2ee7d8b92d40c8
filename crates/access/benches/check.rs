//! The access engine at scale: builds a large synthetic account in memory and times `allows`,
//! `check`, `who` over a 100,000-member nested group (compact, and as owned `Holder`s), a
//! user's membership change followed by a check, and a group-in-group change (which rebuilds
//! closures) followed by a check, printing p50/p99/max and the process's resident memory.
//!
//! A plain `harness = false` binary timed with `Instant` rather than criterion: each operation
//! is measured one call at a time to get percentiles, which is all this needs, and criterion
//! would add dozens of crates to the build of a dependency-free engine.
//!
//! ```sh
//! cargo bench -p scimitar-access --bench check                      # default size
//! SCIMITAR_BENCH_SIZE=full cargo bench -p scimitar-access --bench check   # the issue's size
//! ```
//!
//! `SCIMITAR_BENCH_PROFILE_ALLOWS=N` (or `_EXPLAIN=N`) asks the uniform questions (or, with
//! `SCIMITAR_BENCH_PROFILE_WORKING_SET=1`, the working set's) N more times with `allows` (or
//! `explain`, every name read) after the first rows and exits, for `perf record`.
//!
//! Sizes: `small` (CI smoke), `default` (100k users, 10k groups, 1M memberships, 10k
//! securables, 100k grants) and `full` (1M users, 100k groups, 10M memberships, 100k
//! securables, 1M grants). Each count can be overridden: `SCIMITAR_BENCH_USERS`, `_GROUPS`,
//! `_MEMBERSHIPS`, `_SECURABLES`, `_GRANTS`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_access::{AccessModel, Privilege, SecurableType, Source};
use scimitar_domain::{PrincipalId, PrincipalKind};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The allocator of the `scimitar` binary, which serves these questions: measured with the
/// system allocator instead, an explanation spent a seventh of its time in glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How deep ordinary groups nest: a group at level L > 0 is inside one group at level L - 1.
const NESTING_LEVELS: usize = 10;
/// The nested group `who` is asked about: `org` holds `DIVISIONS` divisions, each holding
/// `TEAMS_PER_DIVISION` teams, and every one of the first `BIG_GROUP_MEMBERS` users is in a team.
const DIVISIONS: usize = 10;
const TEAMS_PER_DIVISION: usize = 10;
const BIG_GROUP_MEMBERS: usize = 100_000;
const CATALOGS: usize = 10;
const SCHEMAS_PER_CATALOG: usize = 10;

struct Size {
    users: usize,
    groups: usize,
    memberships: usize,
    securables: usize,
    grants: usize,
}

impl Size {
    fn from_env() -> Size {
        let base = match std::env::var("SCIMITAR_BENCH_SIZE").as_deref() {
            Ok("full") => Size {
                users: 1_000_000,
                groups: 100_000,
                memberships: 10_000_000,
                securables: 100_000,
                grants: 1_000_000,
            },
            Ok("small") => Size {
                users: 10_000,
                groups: 1_000,
                memberships: 100_000,
                securables: 1_000,
                grants: 10_000,
            },
            _ => Size {
                users: 100_000,
                groups: 10_000,
                memberships: 1_000_000,
                securables: 10_000,
                grants: 100_000,
            },
        };
        let read = |name: &str, default: usize| {
            std::env::var(format!("SCIMITAR_BENCH_{name}"))
                .ok()
                .and_then(|value| value.replace('_', "").parse().ok())
                .unwrap_or(default)
        };
        Size {
            users: read("USERS", base.users),
            groups: read("GROUPS", base.groups).max(NESTING_LEVELS),
            memberships: read("MEMBERSHIPS", base.memberships),
            securables: read("SECURABLES", base.securables)
                .max(CATALOGS * (SCHEMAS_PER_CATALOG + 1) + 1),
            grants: read("GRANTS", base.grants),
        }
    }
}

/// splitmix64: a deterministic generator, so every run builds the same account.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

fn user(index: usize) -> PrincipalId {
    PrincipalId::new(format!("u{index}"))
}

fn group(index: usize) -> PrincipalId {
    PrincipalId::new(format!("g{index}"))
}

struct Account {
    model: AccessModel,
    tables: Vec<String>,
    /// The table granted (with its USE privileges) to `org`.
    org_table: String,
    membership_count: usize,
}

fn build(size: &Size, random: &mut Random) -> Account {
    let mut model = AccessModel::new();
    let admin = PrincipalId::new("admin");
    model
        .upsert_principal(&admin, PrincipalKind::User, "admin", true)
        .unwrap();
    for index in 0..size.users {
        model
            .upsert_principal(
                &user(index),
                PrincipalKind::User,
                &format!("user{index}@example.com"),
                true,
            )
            .unwrap();
    }
    for index in 0..size.groups {
        model
            .upsert_principal(
                &group(index),
                PrincipalKind::Group,
                &format!("group{index}"),
                true,
            )
            .unwrap();
    }
    let mut memberships = 0;
    // Group nesting: levels of equal width, each group inside one random group a level up.
    let per_level = size.groups / NESTING_LEVELS;
    for index in per_level..per_level * NESTING_LEVELS {
        let level = index / per_level;
        let parent = (level - 1) * per_level + random.below(per_level);
        if model.add_membership(&group(parent), &group(index)).unwrap() {
            memberships += 1;
        }
    }
    // The big nested group for `who`.
    let org = PrincipalId::new("org");
    model
        .upsert_principal(&org, PrincipalKind::Group, "org", true)
        .unwrap();
    let mut teams = Vec::new();
    for division in 0..DIVISIONS {
        let division_id = PrincipalId::new(format!("division{division}"));
        model
            .upsert_principal(
                &division_id,
                PrincipalKind::Group,
                &format!("division{division}"),
                true,
            )
            .unwrap();
        model.add_membership(&org, &division_id).unwrap();
        for team in 0..TEAMS_PER_DIVISION {
            let team_id = PrincipalId::new(format!("team{division}-{team}"));
            model
                .upsert_principal(
                    &team_id,
                    PrincipalKind::Group,
                    &format!("team{division}-{team}"),
                    true,
                )
                .unwrap();
            model.add_membership(&division_id, &team_id).unwrap();
            teams.push(team_id);
        }
    }
    for index in 0..size.users.min(BIG_GROUP_MEMBERS) {
        model
            .add_membership(&teams[index % teams.len()], &user(index))
            .unwrap();
        memberships += 1;
    }
    // The rest of the memberships: users into random groups.
    while memberships < size.memberships {
        let member = user(random.below(size.users));
        let into = group(random.below(size.groups));
        if model.add_membership(&into, &member).unwrap() {
            memberships += 1;
        }
    }
    // Securables: catalogs, schemas, and tables for the rest.
    let mut schemas = Vec::new();
    for catalog in 0..CATALOGS {
        let catalog_name = format!("c{catalog}");
        model
            .create_securable(SecurableType::Catalog, &catalog_name, &admin)
            .unwrap();
        for schema in 0..SCHEMAS_PER_CATALOG {
            let name = format!("{catalog_name}.s{schema}");
            model
                .create_securable(SecurableType::Schema, &name, &admin)
                .unwrap();
            schemas.push(name);
        }
    }
    let table_count = size.securables - CATALOGS - schemas.len();
    let mut tables = Vec::with_capacity(table_count);
    for index in 0..table_count {
        let name = format!("{}.t{index}", schemas[index % schemas.len()]);
        model
            .create_securable(SecurableType::Table, &name, &admin)
            .unwrap();
        tables.push(name);
    }
    // Grants, mostly to groups (as real directories do), some to users: USE on catalogs and
    // schemas, SELECT or MODIFY on schemas and tables.
    for _ in 0..size.grants {
        let grantee = if random.below(10) < 8 {
            group(random.below(size.groups))
        } else {
            user(random.below(size.users))
        };
        let roll = random.below(100);
        if roll < 5 {
            let catalog = format!("c{}", random.below(CATALOGS));
            model
                .grant(
                    SecurableType::Catalog,
                    &catalog,
                    &grantee,
                    &[Privilege::UseCatalog],
                )
                .unwrap();
        } else if roll < 20 {
            let schema = &schemas[random.below(schemas.len())];
            let privilege = if roll < 15 {
                Privilege::UseSchema
            } else {
                Privilege::Select
            };
            model
                .grant(SecurableType::Schema, schema, &grantee, &[privilege])
                .unwrap();
        } else {
            let table = &tables[random.below(tables.len())];
            let privilege = if roll < 90 {
                Privilege::Select
            } else {
                Privilege::Modify
            };
            model
                .grant(SecurableType::Table, table, &grantee, &[privilege])
                .unwrap();
        }
    }
    let org_table = tables[0].clone();
    let (catalog, schema) = {
        let mut parts = org_table.split('.');
        let catalog = parts.next().unwrap().to_string();
        let schema = format!("{catalog}.{}", parts.next().unwrap());
        (catalog, schema)
    };
    model
        .grant(
            SecurableType::Catalog,
            &catalog,
            &org,
            &[Privilege::UseCatalog],
        )
        .unwrap();
    model
        .grant(
            SecurableType::Schema,
            &schema,
            &org,
            &[Privilege::UseSchema],
        )
        .unwrap();
    model
        .grant(SecurableType::Table, &org_table, &org, &[Privilege::Select])
        .unwrap();
    // As the server does once it has loaded a model: every user's access set computed.
    model.refresh_access_sets(usize::MAX);
    Account {
        model,
        tables,
        org_table,
        membership_count: memberships,
    }
}

/// Times `operation` once per iteration and reports p50, p99 and max.
fn measure(name: &str, iterations: usize, mut operation: impl FnMut(usize)) {
    let mut samples: Vec<Duration> = Vec::with_capacity(iterations);
    for iteration in 0..iterations {
        let started = Instant::now();
        operation(iteration);
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    let at = |fraction: f64| {
        samples[((samples.len() as f64 * fraction) as usize).min(samples.len() - 1)]
    };
    println!(
        "| {name} | {iterations} | {:.2?} | {:.2?} | {:.2?} |",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
}

/// For `perf record`: asks `questions` `rounds` times with `allows` or `explain` (every name
/// read) and prints the time.
fn profile(
    model: &AccessModel,
    questions: &[(&PrincipalId, &String)],
    rounds: usize,
    explained: bool,
) {
    let rounds = rounds.max(1);
    let started = Instant::now();
    let mut total = 0usize;
    let mut round_times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let round_started = Instant::now();
        for (principal, table) in questions {
            total += if explained {
                explain_and_read(model, principal, table)
            } else {
                usize::from(
                    model
                        .allows(principal, Privilege::Select, SecurableType::Table, table)
                        .unwrap(),
                )
            };
        }
        round_times.push(round_started.elapsed());
    }
    // Per question, the fastest and the median round: on a shared machine the fastest is
    // the steadiest figure to compare two builds by.
    round_times.sort();
    let per_question = |round: Duration| round / questions.len().max(1) as u32;
    println!(
        "profiled {} questions ({total}) in {:.2?}; per question: fastest round {:.2?}, median round {:.2?}",
        rounds * questions.len(),
        started.elapsed(),
        per_question(round_times[0]),
        per_question(round_times[round_times.len() / 2]),
    );
}

/// What a caller that renders a check does (the check API): the compact explanation, then
/// every name in it read once (here: their lengths summed, so nothing is skipped).
fn explain_and_read(model: &AccessModel, principal: &PrincipalId, table: &str) -> usize {
    let explanation = model
        .explain(principal, Privilege::Select, SecurableType::Table, table)
        .unwrap();
    let mut read = usize::from(explanation.allowed()) + explanation.principal().name.len();
    for reason in explanation.reasons() {
        read += reason.requirement().securable.full_name.len();
        read += reason.on().full_name.len();
        read += reason.chain().map(|link| link.name.len()).sum::<usize>();
    }
    for missing in explanation.missing() {
        read += missing.securable.full_name.len();
    }
    read
}

/// Resident memory of this process, from /proc/self/status (Linux only).
fn resident_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .map(|line| line.trim_start_matches("VmRSS:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing else of use. Either
    // way a full run is wanted, except that `cargo test` should stay quick.
    let quick = !std::env::args().any(|argument| argument == "--bench");
    let size = if quick {
        Size {
            users: 2_000,
            groups: 200,
            memberships: 20_000,
            securables: 500,
            grants: 2_000,
        }
    } else {
        Size::from_env()
    };
    let mut random = Random(0x5C1A_17A5);
    let started = Instant::now();
    let account = build(&size, &mut random);
    let built = started.elapsed();
    println!(
        "built {} users, {} groups (+{} org groups), {} memberships, {} securables, {} grants in {:.1?}; VmRSS {}",
        size.users,
        size.groups,
        1 + DIVISIONS * (1 + TEAMS_PER_DIVISION),
        account.membership_count,
        size.securables,
        size.grants,
        built,
        resident_memory()
    );
    let iterations = if quick { 1_000 } else { 100_000 };
    let model = &account.model;
    let pick = |random: &mut Random| {
        (
            user(random.below(size.users)),
            &account.tables[random.below(account.tables.len())],
        )
    };
    println!();
    println!("| operation | iterations | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    let mut random = Random(1);
    let questions: Vec<_> = (0..iterations).map(|_| pick(&mut random)).collect();
    measure("allows SELECT on a random table", iterations, |index| {
        let (principal, table) = &questions[index];
        black_box(model.allows(principal, Privilege::Select, SecurableType::Table, table)).unwrap();
    });
    let check_iterations = iterations / 5;
    measure(
        "check SELECT on a random table (compact explanation, every name read)",
        iterations,
        |index| {
            let (principal, table) = &questions[index];
            black_box(explain_and_read(model, principal, table));
        },
    );
    measure(
        "check SELECT on a random table (owned Decision, names copied)",
        check_iterations,
        |index| {
            let (principal, table) = &questions[index];
            black_box(model.check(principal, Privilege::Select, SecurableType::Table, table))
                .unwrap();
        },
    );
    // The same questions over a working set: 1,000 users and 100 tables, the kind of set a
    // busy service asks about again and again, after one uncounted pass over it. Their data
    // is then in the CPU's caches, so this shows the engine's own cost; the uniform rows above
    // show the cost of a question about data not touched for a while (memory latency).
    let mut random = Random(2);
    let hot_users: Vec<PrincipalId> = (0..1_000).map(|_| user(random.below(size.users))).collect();
    let hot_tables: Vec<&String> = (0..100)
        .map(|_| &account.tables[random.below(account.tables.len())])
        .collect();
    let hot_questions: Vec<(&PrincipalId, &String)> = (0..iterations)
        .map(|_| {
            (
                &hot_users[random.below(hot_users.len())],
                hot_tables[random.below(hot_tables.len())],
            )
        })
        .collect();
    for (principal, table) in &hot_questions {
        black_box(model.allows(principal, Privilege::Select, SecurableType::Table, table)).unwrap();
    }
    // For `perf record`: nothing but `allows` or `explain` from here on, then exit.
    for (variable, explained) in [
        ("SCIMITAR_BENCH_PROFILE_ALLOWS", false),
        ("SCIMITAR_BENCH_PROFILE_EXPLAIN", true),
    ] {
        if let Some(rounds) = std::env::var(variable)
            .ok()
            .and_then(|rounds| rounds.parse::<usize>().ok())
        {
            let uniform: Vec<(&PrincipalId, &String)> = questions
                .iter()
                .map(|(principal, table)| (principal, *table))
                .collect();
            let working_set = std::env::var_os("SCIMITAR_BENCH_PROFILE_WORKING_SET").is_some();
            let asked = if working_set {
                &hot_questions
            } else {
                &uniform
            };
            profile(model, asked, rounds, explained);
            return;
        }
    }
    measure(
        "allows SELECT, working set of 1,000 users x 100 tables",
        iterations,
        |index| {
            let (principal, table) = hot_questions[index];
            black_box(model.allows(principal, Privilege::Select, SecurableType::Table, table))
                .unwrap();
        },
    );
    // An explanation reads more than `allows` does (every grant entry held, not just the
    // first, and each chain): one uncounted pass of it too, so that its rows are as warm as
    // the `allows` row.
    for (principal, table) in &hot_questions {
        black_box(explain_and_read(model, principal, table));
    }
    measure(
        "check SELECT, same working set (compact explanation, every name read)",
        iterations,
        |index| {
            let (principal, table) = hot_questions[index];
            black_box(explain_and_read(model, principal, table));
        },
    );
    measure(
        "check SELECT, same working set (owned Decision, names copied)",
        check_iterations,
        |index| {
            let (principal, table) = hot_questions[index];
            black_box(model.check(principal, Privilege::Select, SecurableType::Table, table))
                .unwrap();
        },
    );
    let who_iterations = if quick { 3 } else { 30 };
    let big_group = size.users.min(BIG_GROUP_MEMBERS);
    let mut reached = 0;
    // What a caller that renders the answer does: the compact answer, then every holder's
    // name, source and chain read once (here: their lengths summed, so nothing is skipped).
    measure(
        &format!("who SELECT on a table granted to a nested group of {big_group} users (compact, every chain read)"),
        who_iterations,
        |_| {
            let holders = model
                .holders(Privilege::Select, SecurableType::Table, &account.org_table)
                .unwrap();
            let mut read = 0usize;
            for holder in holders.iter() {
                read += holder.principal().name.len();
                read += matches!(holder.source(), Source::Grant { .. }) as usize;
                read += holder.chain().map(|link| link.name.len()).sum::<usize>();
            }
            black_box(read);
            reached = holders.len();
        },
    );
    measure(
        "who SELECT on the same table (owned Vec<Holder>, names copied)",
        who_iterations,
        |_| {
            black_box(
                model
                    .who(Privilege::Select, SecurableType::Table, &account.org_table)
                    .unwrap()
                    .len(),
            );
        },
    );
    // A change, then the check that must see it: add a user to a team of `org`, ask, remove.
    let mut model = account.model.clone();
    let team = PrincipalId::new("team0-0");
    let outsider = PrincipalId::new("outsider");
    model
        .upsert_principal(&outsider, PrincipalKind::User, "outsider", true)
        .unwrap();
    let change_iterations = iterations / 10;
    // The clone's buffers are exactly full, so the first change may have to make room:
    // timed apart, and shown under the table. When the access sets were one buffer (hundreds
    // of MB at the full size) this copied it whole, about a second, as a running server did
    // whenever that buffer outgrew its allocation; they are now stored in chunks that an
    // append never moves.
    let started = Instant::now();
    model.add_membership(&team, &outsider).unwrap();
    model.remove_membership(&team, &outsider).unwrap();
    let first_change = started.elapsed();
    measure(
        "add membership, then allows (sees it)",
        change_iterations,
        |_| {
            model.add_membership(&team, &outsider).unwrap();
            let allowed = model
                .allows(
                    &outsider,
                    Privilege::Select,
                    SecurableType::Table,
                    &account.org_table,
                )
                .unwrap();
            assert!(allowed);
            model.remove_membership(&team, &outsider).unwrap();
        },
    );
    // A group-in-group change, which rebuilds closures: put `division0` (ten teams, a
    // thousand users each at the full size) into `umbrella`, the only holder of SELECT on a
    // fresh table, ask for one of its users, take it out again.
    let umbrella = PrincipalId::new("umbrella");
    model
        .upsert_principal(&umbrella, PrincipalKind::Group, "umbrella", true)
        .unwrap();
    let fresh = "c0.s0.fresh";
    model
        .create_securable(SecurableType::Table, fresh, &PrincipalId::new("admin"))
        .unwrap();
    for (securable_type, name, privilege) in [
        (SecurableType::Catalog, "c0", Privilege::UseCatalog),
        (SecurableType::Schema, "c0.s0", Privilege::UseSchema),
        (SecurableType::Table, fresh, Privilege::Select),
    ] {
        model
            .grant(securable_type, name, &umbrella, &[privilege])
            .unwrap();
    }
    let division = PrincipalId::new("division0");
    let in_division = user(0);
    measure(
        "add a group above 10 teams, then allows (sees it)",
        change_iterations,
        |_| {
            model.add_membership(&umbrella, &division).unwrap();
            let allowed = model
                .allows(&in_division, Privilege::Select, SecurableType::Table, fresh)
                .unwrap();
            assert!(allowed);
            model.remove_membership(&umbrella, &division).unwrap();
        },
    );
    assert!(!model
        .allows(&in_division, Privilege::Select, SecurableType::Table, fresh)
        .unwrap());
    println!();
    println!("the first change after cloning the model took {first_change:.2?}");
    println!(
        "who reached {reached} principals; VmRSS after the runs {}",
        resident_memory()
    );
}
