//! Behaviours that only show with many principals: page caps and large groups. The principals
//! are created through `/Bulk` to keep the tests quick.

use crate::support::*;
use serde_json::{json, Value};

/// Creates `count` users named `<prefix><n>@example.com` and returns their ids.
async fn many_users(app: &TestApp, prefix: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    let indices: Vec<usize> = (0..count).collect();
    for chunk in indices.chunks(1000) {
        let operations: Vec<Value> = chunk
            .iter()
            .map(|n| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"),
                       "data": {"userName": format!("{prefix}{n}@example.com")}})
            })
            .collect();
        let reply = app
            .post(
                "/Bulk",
                json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        for operation in reply.body["Operations"].as_array().unwrap() {
            assert_eq!(operation["status"], "201", "{operation}");
            let location = str_of(operation, "location");
            ids.push(location.rsplit('/').next().unwrap().to_string());
        }
    }
    ids
}

#[tokio::test]
async fn a_count_above_the_cap_returns_a_thousand_with_the_true_total() {
    let app = spawn_app().await;
    many_users(&app, "paged", 1_100).await;
    let reply = app.get_with("/Users", &[("count", "10000")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.total(), 1_101);
    assert_eq!(reply.resources().len(), 1_000);
    assert_eq!(reply.body["itemsPerPage"], 1_000);
    let rest = app
        .get_with("/Users", &[("count", "10000"), ("startIndex", "1001")])
        .await;
    assert_eq!(rest.resources().len(), 101);
    let mut seen: Vec<String> = reply
        .resources()
        .iter()
        .chain(rest.resources())
        .map(|resource| str_of(resource, "id").to_string())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 1_101, "pages are stable and disjoint");
    let unpaged = app.get("/Users").await;
    assert_eq!(unpaged.resources().len(), 1_000);
}

#[tokio::test]
async fn a_large_group_is_read_without_members_and_patched_without_echoing_them() {
    let app = spawn_app().await;
    let ids = many_users(&app, "member", 2_001).await;
    let group = app.create_group("large", &[]).await;
    let path = format!("/Groups/{}", str_of(&group, "id"));
    for batch in ids[..2_000].chunks(500) {
        let members: Vec<Value> = batch.iter().map(|id| json!({"value": id})).collect();
        let reply = app
            .patch_ops(
                &path,
                json!([{"op": "add", "path": "members", "value": members}]),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let without = app
        .get_with(&path, &[("excludedAttributes", "members")])
        .await;
    assert_eq!(without.status, 200);
    assert!(without.body.get("members").is_none());
    assert_eq!(without.body["displayName"], "large");
    let full = app.get(&path).await;
    assert_eq!(full.body["members"].as_array().unwrap().len(), 2_000);
    let patched = app
        .patch_ops(
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": ids[2_000]}]}]),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert!(
        patched.body.get("members").is_none(),
        "a PATCH on a group over the cap does not echo its members"
    );
    assert_eq!(patched.body["displayName"], "large");
    assert_eq!(app.member_ids(str_of(&group, "id")).await.len(), 2_001);
    let filtered = app
        .get_with(
            "/Groups",
            &[
                ("filter", "displayName eq \"large\""),
                ("excludedAttributes", "members"),
            ],
        )
        .await;
    assert!(filtered.resources()[0].get("members").is_none());
}
