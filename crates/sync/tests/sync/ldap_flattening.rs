//! Incremental runs from a real `slapd` into a Databricks-shaped workspace that flattens
//! nested groups (issue 17's first README case): a change deep in the nesting reaches every
//! group above it, a removal and a deleted nested group are flattened away, and all of it
//! through incremental runs (their `ChangesRead` counts what was read whole).

use super::*;

const FRANK: &str = "uid=frank,ou=people,dc=example,dc=test";
const DATA: &str = "cn=data,ou=groups,dc=example,dc=test";
const ALL: &str = "cn=all,ou=groups,dc=example,dc=test";
const OPS: &str = "cn=ops,ou=groups,dc=example,dc=test";

/// `all` holds `eng` and erin; `eng` holds `platform` (ada, bob) and `data` (bob, cleo); `ops`
/// (frank) stands apart, out of the job's scope.
async fn nested_directory() -> Option<Slapd> {
    let slapd = Slapd::start().await?;
    slapd
        .add(&[
            (ADA, person("ada")),
            (BOB, person("bob")),
            (CLEO, person("cleo")),
            (ERIN, person("erin")),
            (FRANK, person("frank")),
            (PLATFORM, group("platform", vec![ADA, BOB])),
            (DATA, group("data", vec![BOB, CLEO])),
            (ENG, group("eng", vec![PLATFORM, DATA])),
            (ALL, group("all", vec![ENG, ERIN])),
            (OPS, group("ops", vec![FRANK])),
        ])
        .await;
    Some(slapd)
}

/// Ends a step of the test with erin, in no changed group, alone in a later second: the
/// run's watermark is then that second, which the next read takes again, so that no group is
/// read again for having changed in the step before.
async fn erin_alone_in_a_later_second(slapd: &Slapd, step: &str) {
    next_second().await;
    slapd.replace(ERIN, "description", &[step]).await;
}

/// The job into `target`'s Databricks workspace mount, nesting flattened, `all` in scope and
/// an entitlement mapped to `eng`.
fn flattening_job(slapd: &Slapd, target: &Scimitar) -> Job {
    let mut job = directory_job(slapd, target);
    job.name = "ldap-flattening".into();
    job.target = target.endpoint(DATABRICKS, Profile::Databricks);
    job.profile = Profile::Databricks;
    job.nested_groups = Some(false);
    job.policy.groups = vec!["all".into()];
    job.policy.entitlements = [("eng".to_string(), vec!["allow-cluster-create".to_string()])]
        .into_iter()
        .collect();
    // The test takes three of nine managed people and groups out of scope at once.
    job.policy.max_deprovision_percent = 50;
    job
}

async fn incremental_runs_flatten_nested_changes_into_every_ancestor(state: StateDatabase) {
    let Some(slapd) = nested_directory().await else {
        return;
    };
    erin_alone_in_a_later_second(&slapd, "seeded").await;
    let target = Scimitar::start().await;
    let job = flattening_job(&slapd, &target);
    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert_eq!(
        target.member_names("all").await,
        ["ada", "bob", "cleo", "erin"]
    );
    assert_eq!(target.member_names("eng").await, ["ada", "bob", "cleo"]);

    // dave, new, joins platform, two levels under all.
    past_the_watermark(&job, &state).await;
    slapd.add(&[(DAVE, person("dave"))]).await;
    slapd.replace(PLATFORM, "member", &[ADA, BOB, DAVE]).await;
    erin_alone_in_a_later_second(&slapd, "dave joined").await;
    let (report, read) = incremental_from_directory(&job, &state)
        .await
        .expect("an incremental run");
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    // Read whole: platform (changed), eng and all (its ancestors), data (nested in them, its
    // members part of what they hold); not ops, nor any group for a user's change.
    assert_eq!(read.changed_groups, 4, "{read:?}");
    assert_eq!(read.present, 11, "{read:?}");
    assert_eq!(read.gone, 0, "{read:?}");
    let created: Vec<&str> = report
        .plan
        .creates
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(created, ["dave"]);
    // The ancestors, read again, are as the target has them: no attribute (entitlements
    // included) changes.
    assert!(report.plan.updates.is_empty(), "{:#?}", report.plan);
    assert_eq!(
        target.member_names("platform").await,
        ["ada", "bob", "dave"]
    );
    assert_eq!(
        target.member_names("eng").await,
        ["ada", "bob", "cleo", "dave"]
    );
    assert_eq!(
        target.member_names("all").await,
        ["ada", "bob", "cleo", "dave", "erin"]
    );

    // ada and bob leave platform: ada leaves eng and all with it; bob stays there, through
    // data.
    past_the_watermark(&job, &state).await;
    slapd.replace(PLATFORM, "member", &[DAVE]).await;
    erin_alone_in_a_later_second(&slapd, "ada and bob left").await;
    let (report, read) = incremental_from_directory(&job, &state)
        .await
        .expect("an incremental run");
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!(read.changed_groups, 4, "{read:?}");
    assert_eq!(target.member_names("platform").await, ["dave"]);
    assert_eq!(target.member_names("eng").await, ["bob", "cleo", "dave"]);
    assert_eq!(
        target.member_names("all").await,
        ["bob", "cleo", "dave", "erin"]
    );

    // data is deleted. This directory keeps no referential integrity: eng still names it,
    // unchanged, by a DN that is no longer in scope. bob and cleo, held through data alone,
    // leave eng and all.
    past_the_watermark(&job, &state).await;
    slapd.delete(DATA).await;
    erin_alone_in_a_later_second(&slapd, "data deleted").await;
    let (report, read) = incremental_from_directory(&job, &state)
        .await
        .expect("an incremental run");
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    // No group changed; eng (naming the gone DN) and all above it, and platform under them.
    assert_eq!(read.changed_groups, 3, "{read:?}");
    assert_eq!(read.gone, 1, "{read:?}");
    let retired: Vec<&str> = report
        .plan
        .deactivations
        .iter()
        .map(|item| item.label.as_str())
        .collect();
    assert_eq!(retired, ["data"]);
    assert_eq!(target.member_names("eng").await, ["dave"]);
    assert_eq!(target.member_names("all").await, ["dave", "erin"]);

    // The full run agrees: no membership to change.
    let full = apply(&job, &state).await;
    assert_eq!(full.exit_code(), 0, "{:#?}", full.failures);
    assert!(full.plan.memberships.is_empty(), "{:#?}", full.plan);

    // ops (out of scope until now, frank unmapped) is nested in platform: ops is read as
    // nested under the changed group, and frank, whom no target has and who did not change,
    // makes the run full rather than leave him out of what all holds.
    past_the_watermark(&job, &state).await;
    slapd.replace(PLATFORM, "member", &[DAVE, OPS]).await;
    erin_alone_in_a_later_second(&slapd, "ops nested").await;
    assert!(incremental_from_directory(&job, &state).await.is_none());
    let full = apply(&job, &state).await;
    assert_eq!(full.exit_code(), 0, "{:#?}", full.failures);
    assert_eq!(target.member_names("all").await, ["dave", "erin", "frank"]);
    let (again, _) = incremental_from_directory(&job, &state)
        .await
        .expect("an incremental run");
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_ldap_runs_flatten_nested_changes_into_every_ancestor_with_state_in_sqlite() {
    incremental_runs_flatten_nested_changes_into_every_ancestor(StateDatabase::sqlite().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_ldap_runs_flatten_nested_changes_into_every_ancestor_with_state_in_postgres() {
    if let Some(state) = StateDatabase::postgres().await {
        incremental_runs_flatten_nested_changes_into_every_ancestor(state).await;
    }
}
