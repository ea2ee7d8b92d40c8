//! Incremental runs from a real `slapd`: what changed since the watermark, and only that,
//! reaches a Scimitar target; deletions are found by the ids the directory still lists; and a
//! `watch` polling the directory carries a membership change at its next poll.

use super::*;
use scimitar_ldap::testing::{Slapd, GROUPS, PEOPLE, READER_DN, READER_PASSWORD};
use scimitar_sync::ldap_incremental::{self, ChangesRead, DirectoryMemory};

const ADA: &str = "uid=ada,ou=people,dc=example,dc=test";
const BOB: &str = "uid=bob,ou=people,dc=example,dc=test";
const CLEO: &str = "uid=cleo,ou=people,dc=example,dc=test";
const DAVE: &str = "uid=dave,ou=people,dc=example,dc=test";
const ERIN: &str = "uid=erin,ou=people,dc=example,dc=test";
const PLATFORM: &str = "cn=platform,ou=groups,dc=example,dc=test";
const ENG: &str = "cn=eng,ou=groups,dc=example,dc=test";

fn person(uid: &'static str) -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("objectClass", vec!["inetOrgPerson"]),
        ("uid", vec![uid]),
        ("cn", vec![uid]),
        ("sn", vec!["Tester"]),
        ("displayName", vec![uid]),
    ]
}

fn group<'a>(cn: &'a str, members: Vec<&'a str>) -> Vec<(&'a str, Vec<&'a str>)> {
    vec![
        ("objectClass", vec!["groupOfNames"]),
        ("cn", vec![cn]),
        ("member", members),
    ]
}

/// A directory with ada, bob, cleo and erin; `platform` holds ada and bob, `eng` holds
/// `platform` and cleo.
async fn seeded_directory() -> Option<Slapd> {
    let slapd = Slapd::start().await?;
    slapd
        .add(&[
            (ADA, person("ada")),
            (BOB, person("bob")),
            (CLEO, person("cleo")),
            (ERIN, person("erin")),
            (PLATFORM, group("platform", vec![ADA, BOB])),
            (ENG, group("eng", vec![PLATFORM, CLEO])),
        ])
        .await;
    Some(slapd)
}

/// A job from the directory into `target`, which nests groups (Scimitar's generic mount).
fn directory_job(slapd: &Slapd, target: &Scimitar) -> Job {
    let directory: scimitar_ldap::DirectoryConfig = toml::from_str(&format!(
        "url = \"{}\"\nbind_dn = \"{READER_DN}\"\nbase_dn = \"dc=example,dc=test\"\n\
         user_base_dn = \"{PEOPLE}\"\ngroup_base_dn = \"{GROUPS}\"\npage_size = 2\n",
        slapd.url
    ))
    .expect("a directory configuration");
    Job {
        name: "ldap-incremental".into(),
        source: Source::Ldap {
            directory,
            password: Some(Secret::new(READER_PASSWORD)),
            // Lists every entry on every read, unless a test says otherwise.
            memory: DirectoryMemory::default(),
        },
        target: target.endpoint(GENERIC, Profile::Generic),
        profile: Profile::Generic,
        nested_groups: None,
        policy: Policy::default(),
        oversight: Oversight::default(),
    }
}

/// An incremental run of the job's one target, with what it read; `None` when it must run in
/// full.
async fn incremental_from_directory(
    job: &Job,
    state: &StateDatabase,
) -> Option<(Report, ChangesRead)> {
    incremental_from_directory_at(job, state, &SystemClock).await
}

/// [`incremental_from_directory`] by `clock`'s time.
async fn incremental_from_directory_at(
    job: &Job,
    state: &StateDatabase,
    clock: &dyn Clock,
) -> Option<(Report, ChangesRead)> {
    let Source::Ldap {
        directory,
        password,
        memory,
    } = &job.source
    else {
        panic!("an LDAP job");
    };
    let fan_out: FanOut = job.clone().into();
    let source = ldap_incremental::DirectorySource {
        directory,
        password: password.as_ref().map(Secret::expose),
        memory,
    };
    let (report, read) =
        ldap_incremental::run(&fan_out, &source, &*state.store, clock, Mode::Apply)
            .await
            .expect("the run completes")?;
    assert_eq!(report.targets.len(), 1);
    Some((ran(&report.targets[0]).clone(), read))
}

/// Waits until the wall clock (the directory's, on this machine) is past the second of the
/// job's watermark: `modifyTimestamp` has whole seconds, and the read takes the watermark's
/// own second again, so changes made in it would be read with what the full run read.
async fn past_the_watermark(job: &Job, state: &StateDatabase) {
    let watermark = job_state(&*state.store, &job.name)
        .await
        .expect("the state")
        .watermark
        .expect("a watermark after a full run");
    assert!(
        watermark.len() == 15 && watermark.ends_with('Z'),
        "a GeneralizedTime: {watermark}"
    );
    loop {
        let now = std::process::Command::new("date")
            .args(["-u", "+%Y%m%d%H%M%SZ"])
            .output()
            .expect("date runs");
        if String::from_utf8_lossy(&now.stdout).trim() > watermark.as_str() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the wall clock's second has changed.
async fn next_second() {
    let second = || {
        std::process::Command::new("date")
            .args(["-u", "+%Y%m%d%H%M%S"])
            .output()
            .expect("date runs")
            .stdout
    };
    let start = second();
    while second() == start {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A modified user, a new user, a membership change and a deletion in the directory reach
/// the target through one incremental run that reads whole only the entries they touched
/// (counted), and finds the deletion among the ids the directory still lists; another
/// incremental run then finds nothing to do, and a full run only what a directory without
/// referential integrity hides from a partial read (the deleted user still named by a group).
async fn an_incremental_ldap_run_reads_only_what_changed_and_finds_deletions(state: StateDatabase) {
    let Some(slapd) = seeded_directory().await else {
        return;
    };
    // The watermark is the latest stamp the full run reads, and an incremental read takes
    // the watermark's own second again: erin, changed alone in a later second than the seed,
    // is the one entry stamped in it.
    next_second().await;
    slapd
        .replace(ERIN, "description", &["the watermark's entry"])
        .await;
    let target = Scimitar::start().await;
    let job = directory_job(&slapd, &target);
    // Without a watermark (no full run yet) there is nothing to read from.
    assert!(incremental_from_directory(&job, &state).await.is_none());
    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert_eq!(first.plan.creates.len(), 6);

    past_the_watermark(&job, &state).await;
    slapd.replace(ADA, "displayName", &["Ada L"]).await;
    slapd.add(&[(DAVE, person("dave"))]).await;
    slapd.replace(PLATFORM, "member", &[ADA, DAVE]).await;
    slapd.delete(CLEO).await;

    let (report, read) = incremental_from_directory(&job, &state)
        .await
        .expect("an incremental run");
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    // Read whole: ada (renamed), dave (new), platform (its members), and erin again (the
    // watermark's second). Not bob, whom platform no longer lists (the group carries that),
    // nor eng, nor cleo (gone), whom the pass over every id finds missing.
    assert_eq!(
        read,
        ChangesRead {
            changed_users: 3,
            changed_groups: 1,
            present: 6,
            gone: 1,
        }
    );
    let created: Vec<&str> = report
        .plan
        .creates
        .iter()
        .map(|create| create.label.as_str())
        .collect();
    assert_eq!(created, ["dave"]);
    let deactivated: Vec<&str> = report
        .plan
        .deactivations
        .iter()
        .map(|item| item.label.as_str())
        .collect();
    assert_eq!(deactivated, ["cleo"]);
    assert_eq!(
        target.one("Users", "userName", "ada").await["displayName"],
        json!("Ada L")
    );
    assert_eq!(target.member_names("platform").await, ["Ada L", "dave"]);
    assert_eq!(
        target.one("Users", "userName", "cleo").await["active"],
        json!(false)
    );
    // eng still holds platform (and cleo, deactivated, whom the directory still names).
    assert!(target
        .member_names("eng")
        .await
        .contains(&"platform".to_string()));

    // Another incremental run finds nothing new to do.
    let (again, _) = incremental_from_directory(&job, &state)
        .await
        .expect("an incremental run");
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    // The full run takes cleo out of eng: this directory keeps no referential integrity, so eng
    // still names the deleted DN without having changed, and only a read of every group finds
    // that it no longer resolves. Then the job has converged.
    let full = apply(&job, &state).await;
    let removed: Vec<(&str, Vec<&str>)> = full
        .plan
        .memberships
        .iter()
        .map(|change| {
            let removed = change.remove.iter().map(|member| member.label.as_str());
            (change.label.as_str(), removed.collect())
        })
        .collect();
    assert_eq!(removed, [("eng", vec!["cleo"])], "{:#?}", full.plan);
    assert_eq!(full.writes, 1, "{:#?}", full.plan);
    assert_eq!(apply(&job, &state).await.writes, 0);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_ldap_run_reads_only_what_changed_and_finds_deletions_with_state_in_sqlite()
{
    an_incremental_ldap_run_reads_only_what_changed_and_finds_deletions(
        StateDatabase::sqlite().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_ldap_run_reads_only_what_changed_and_finds_deletions_with_state_in_postgres(
) {
    if let Some(state) = StateDatabase::postgres().await {
        an_incremental_ldap_run_reads_only_what_changed_and_finds_deletions(state).await;
    }
}

/// Between listings of every entry, a poll reads only what changed and resolves a changed
/// group's members from what the last listing found (nothing listed, so nothing found gone);
/// the first poll once `list_every` has passed lists again and finds the deletion made
/// meanwhile.
async fn polls_between_listings_resolve_members_from_memory_and_listings_find_deletions(
    state: StateDatabase,
) {
    let Some(slapd) = seeded_directory().await else {
        return;
    };
    let target = Scimitar::start().await;
    let mut job = directory_job(&slapd, &target);
    let Source::Ldap { memory, .. } = &mut job.source else {
        unreachable!()
    };
    *memory = DirectoryMemory::listing_every(Duration::from_secs(60));
    let clock = ManualClock::new(SystemClock.now());
    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);

    // The first poll lists every entry: nothing was listed yet.
    past_the_watermark(&job, &state).await;
    let (_, read) = incremental_from_directory_at(&job, &state, &clock)
        .await
        .expect("an incremental run");
    assert_eq!(read.present, 6, "{read:?}");

    // A second later: erin joins platform and cleo is deleted; the poll lists nothing, reads
    // platform, resolves erin's DN from memory, and finds nothing gone.
    next_second().await;
    slapd.replace(PLATFORM, "member", &[ADA, BOB, ERIN]).await;
    slapd.delete(CLEO).await;
    clock.advance_micros(1_000_000);
    let (report, read) = incremental_from_directory_at(&job, &state, &clock)
        .await
        .expect("an incremental run");
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!((read.present, read.gone), (0, 0), "{read:?}");
    assert_eq!(
        target.member_names("platform").await,
        ["ada", "bob", "erin"]
    );
    assert_eq!(
        target.one("Users", "userName", "cleo").await["active"],
        json!(true)
    );

    // Once the listing is due, the next poll lists and finds cleo gone.
    clock.advance_micros(60_000_000);
    let (report, read) = incremental_from_directory_at(&job, &state, &clock)
        .await
        .expect("an incremental run");
    assert_eq!((read.present, read.gone), (5, 1), "{read:?}");
    let deactivated: Vec<&str> = report
        .plan
        .deactivations
        .iter()
        .map(|item| item.label.as_str())
        .collect();
    assert_eq!(deactivated, ["cleo"]);
    assert_eq!(
        target.one("Users", "userName", "cleo").await["active"],
        json!(false)
    );
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_between_listings_resolve_members_from_memory_with_state_in_sqlite() {
    polls_between_listings_resolve_members_from_memory_and_listings_find_deletions(
        StateDatabase::sqlite().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_between_listings_resolve_members_from_memory_with_state_in_postgres() {
    if let Some(state) = StateDatabase::postgres().await {
        polls_between_listings_resolve_members_from_memory_and_listings_find_deletions(state).await;
    }
}

/// A `watch` polling the directory every second, with an hour between full reads, carries a
/// membership change to the target at the next poll, not at the interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_polls_a_directory_and_carries_a_membership_change_incrementally() {
    let Some(slapd) = seeded_directory().await else {
        return;
    };
    let target = Scimitar::start().await;
    let state = StateDatabase::sqlite().await;
    let job = directory_job(&slapd, &target);
    let trigger = Trigger::Poll {
        every: Duration::from_secs(1),
        interval: Duration::from_secs(3600),
    };
    let watch = Watching::start(
        watching(job.clone(), trigger, "poller"),
        state.store.clone(),
    );
    eventually("the first, full run", || async {
        target.members_if_any("platform").await.len() == 2
    })
    .await;
    slapd.replace(PLATFORM, "member", &[ADA, BOB, ERIN]).await;
    eventually("erin in platform", || async {
        target.members_if_any("platform").await == ["ada", "bob", "erin"]
    })
    .await;
    let turns = watch.stop().await;
    assert!(turns.iter().all(|turn| turn == "ran applied"), "{turns:?}");
    state.close().await;
}

/// Incremental runs into a target that flattens groups, in a file of their own.
#[path = "ldap_flattening.rs"]
mod flattening;
