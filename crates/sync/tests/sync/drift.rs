//! Drift (`scimitar_sync::drift`): a managed user's attribute and a managed group's members
//! changed at the target by hand are reported by object and attribute, in the report and its
//! JSON; left alone with `policy.correct_drift` off (while a change the source makes still goes
//! through), and put back with it on; the job's state in SQLite and in PostgreSQL.

use super::*;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn patch(target: &Scimitar, path: &str, operations: Value) {
    let body = json!({"schemas": [PATCH_OP], "Operations": operations});
    let (status, answer) = target.call(reqwest::Method::PATCH, path, Some(body)).await;
    assert!(status == 200 || status == 204, "{status} {answer}");
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("an id").to_string()
}

async fn drift_is_reported_left_alone_or_put_back(state: StateDatabase) {
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let correcting = job(
        &source,
        target.endpoint(GENERIC, Profile::Generic),
        &["eng-all"],
    );
    let mut reporting = correcting.clone();
    reporting.policy.correct_drift = false;
    let first = apply(&correcting, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert!(first.plan.drift.is_empty(), "{:#?}", first.plan.drift);
    assert!(apply(&correcting, &state).await.plan.drift.is_empty());

    // By hand at the target: ada renamed, bob taken out of platform.
    let ada = id_of(&target.one("Users", "userName", "ada").await);
    let bob = id_of(&target.one("Users", "userName", "bob").await);
    let platform = id_of(&target.one("Groups", "displayName", "platform").await);
    patch(
        &target,
        &format!("Users/{ada}"),
        json!([{"op": "replace", "path": "displayName", "value": "Ada by hand"}]),
    )
    .await;
    patch(
        &target,
        &format!("Groups/{platform}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
    )
    .await;

    // Reported, and with correction off, left as it is.
    let reported = apply(&reporting, &state).await;
    assert_eq!(reported.exit_code(), 0, "{:#?}", reported.failures);
    let drift: Vec<(&str, &str, bool)> = reported
        .plan
        .drift
        .iter()
        .map(|drift| {
            (
                drift.label.as_str(),
                drift.attribute.as_str(),
                drift.corrected,
            )
        })
        .collect();
    assert_eq!(
        drift,
        [
            ("ada", "displayName", false),
            ("platform", "members", false)
        ],
        "{:#?}",
        reported.plan.drift
    );
    assert_eq!(reported.plan.drift[0].found, json!("Ada by hand"));
    assert_eq!(reported.plan.drift[0].expected, json!("ADA"));
    assert_eq!(reported.plan.drift[1].expected, json!(["user bob"]));
    assert_eq!(reported.writes, 0);
    assert!(reported.plan.writes_nothing(), "{:#?}", reported.plan);
    let json = serde_json::to_value(&reported).unwrap();
    assert_eq!(json["plan"]["drift"][0]["attribute"], "displayName");
    assert_eq!(json["plan"]["drift"][0]["targetId"], ada.as_str());
    let text = scimitar_sync::render::plan_text(&reported.plan);
    assert!(
        text.contains("~ drift in user ada: displayName changed at the target (left as it is"),
        "{text}"
    );
    assert_eq!(
        target.one("Users", "userName", "ada").await["displayName"],
        "Ada by hand"
    );
    // (Members are named by their displayName, which ada has by hand.)
    assert_eq!(target.member_names("platform").await, ["Ada by hand"]);

    // A change the source makes goes through, drift or not; the drift is reported again.
    let carol = id_of(&source.one("Users", "userName", "carol").await);
    patch(
        &source,
        &format!("Users/{carol}"),
        json!([{"op": "replace", "path": "displayName", "value": "Carol R"}]),
    )
    .await;
    let again = apply(&reporting, &state).await;
    assert_eq!(again.exit_code(), 0, "{:#?}", again.failures);
    assert_eq!(
        again
            .plan
            .updates
            .iter()
            .map(|u| u.label.as_str())
            .collect::<Vec<_>>(),
        ["carol"]
    );
    assert_eq!(again.plan.drift.len(), 2, "{:#?}", again.plan.drift);
    assert_eq!(
        target.one("Users", "userName", "carol").await["displayName"],
        "Carol R"
    );

    // With correction on (the default), both are put back, and then there is none.
    let corrected = apply(&correcting, &state).await;
    assert_eq!(corrected.exit_code(), 0, "{:#?}", corrected.failures);
    assert_eq!(corrected.plan.drift.len(), 2);
    assert!(corrected.plan.drift.iter().all(|drift| drift.corrected));
    assert_eq!(
        target.one("Users", "userName", "ada").await["displayName"],
        "ADA"
    );
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    let settled = apply(&correcting, &state).await;
    assert!(settled.plan.drift.is_empty(), "{:#?}", settled.plan.drift);
    assert!(settled.plan.writes_nothing());
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_at_the_target_is_reported_left_alone_or_put_back_with_state_in_sqlite() {
    drift_is_reported_left_alone_or_put_back(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_at_the_target_is_reported_left_alone_or_put_back_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        eprintln!("skipped: TEST_DATABASE_URL is unset");
        return;
    };
    drift_is_reported_left_alone_or_put_back(state).await;
}
