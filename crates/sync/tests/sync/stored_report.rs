//! A run's record is bounded (`scimitar_sync::stored`): applying more creates than a recorded
//! report samples, and a group of them all, records the exact counts and no more than the
//! samples, read back from the run history and through the status API
//! (`GET /api/2.0/sync/jobs/{name}`) of the Scimitar whose database holds the job's state;
//! the job's state in SQLite and in PostgreSQL.

use super::*;
use scimitar_sync::stored::{SAMPLE_ITEMS, SAMPLE_MEMBERS};

/// More users than a recorded report samples: three times as many, so that the printed
/// report is well over twice the recorded one.
const USERS: usize = 3 * SAMPLE_ITEMS;

/// An export of [`USERS`] users and the group `everyone` of them all.
fn large_export(directory: &std::path::Path) -> std::path::PathBuf {
    let path = directory.join("people.jsonl");
    let mut text = String::new();
    let ids: Vec<String> = (0..USERS).map(|index| format!("e{index}")).collect();
    for id in &ids {
        text.push_str(&format!(
            "{{\"type\":\"user\",\"id\":\"{id}\",\"userName\":\"user-{id}\",\"email\":\"{id}@example.com\"}}\n"
        ));
    }
    text.push_str(&format!(
        "{{\"type\":\"group\",\"id\":\"g1\",\"displayName\":\"everyone\",\"members\":{}}}\n",
        json!(ids)
    ));
    std::fs::write(&path, text).expect("written");
    path
}

/// Applies the large export into `target` with the job's state in `state`; checks the run as
/// the history holds it, and returns the job's name.
async fn a_large_run_is_recorded_with_its_counts_and_bounded_samples(
    state: &StateDatabase,
    target: &Scimitar,
) -> String {
    let directory = tempfile::tempdir().expect("a directory");
    let job = file_job(large_export(directory.path()), target);
    let report = apply(&job, state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!(report.plan.creates.len(), USERS + 1);
    assert_eq!(report.plan.memberships[0].add.len(), USERS);

    let runs = state.store.sync_runs(&job.name, 1).await.expect("runs");
    assert_eq!(runs[0].outcome, "applied");
    let recorded: Value = serde_json::from_str(&runs[0].report).expect("JSON");
    let creates = &recorded["plan"]["creates"];
    assert_eq!(creates["count"], USERS + 1);
    assert_eq!(creates["truncated"], true);
    assert_eq!(creates["sample"].as_array().unwrap().len(), SAMPLE_ITEMS);
    let everyone = &recorded["plan"]["memberships"]["sample"][0];
    assert_eq!(everyone["label"], "everyone");
    assert_eq!(everyone["add"]["count"], USERS);
    assert_eq!(
        everyone["add"]["sample"].as_array().unwrap().len(),
        SAMPLE_MEMBERS
    );
    assert_eq!(recorded["failures"]["count"], 0);
    assert_eq!(recorded["writes"], report.writes);
    // The printed report holds the whole plan; the record, a sample of it.
    let printed = serde_json::to_string(&report).unwrap();
    assert!(
        runs[0].report.len() * 2 < printed.len(),
        "recorded {} bytes, printed {}",
        runs[0].report.len(),
        printed.len()
    );
    assert!(runs[0].report.len() < 64 * 1024, "{}", runs[0].report.len());

    let counts = runs[0].summary().counts();
    assert_eq!(counts["creates"], u64::try_from(USERS + 1).unwrap());
    assert_eq!(counts["memberships"], 1);
    assert_eq!(counts["writes"], u64::try_from(report.writes).unwrap());
    assert_eq!(counts["failures"], 0);
    job.name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_run_is_recorded_bounded_and_its_status_counts_it_whole_with_state_in_sqlite() {
    let target = Scimitar::start().await;
    // The job's state in the target's own database, whose status API then serves it to the
    // account's admin (the state database's only account).
    let state = StateDatabase {
        store: target.store.clone(),
        postgres: None,
        _directory: None,
    };
    let job = a_large_run_is_recorded_with_its_counts_and_bounded_samples(&state, &target).await;
    let response = target
        .client
        .get(format!("{}/api/2.0/sync/jobs/{job}", target.address))
        .bearer_auth(&target.token)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    let status: Value = response.json().await.expect("JSON");
    let counts = &status["targets"][0]["last_run"]["counts"];
    assert_eq!(counts["creates"], USERS + 1, "{status}");
    assert_eq!(counts["memberships"], 1, "{status}");
    assert_eq!(counts["failures"], 0, "{status}");
    assert_eq!(
        status["targets"][0]["recent_runs"][0]["counts"], *counts,
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_run_is_recorded_bounded_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    let target = Scimitar::start().await;
    a_large_run_is_recorded_with_its_counts_and_bounded_samples(&state, &target).await;
    state.close().await;
}
