//! `/Bulk` (RFC 7644 section 3.7): references between operations, error reporting per
//! operation, `failOnErrors`, and the advertised limits.

use crate::support::*;
use serde_json::{json, Value};

fn bulk(operations: Vec<Value>) -> Value {
    json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations})
}

#[tokio::test]
async fn a_group_can_reference_users_created_in_the_same_request() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/Bulk",
            bulk(vec![
                json!({"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": [USER_SCHEMA], "userName": "bulk1@example.com"}}),
                json!({"method": "POST", "path": "/Users", "bulkId": "u2", "data": {"userName": "bulk2@example.com"}}),
                json!({"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"displayName": "bulk group", "members": [
                    {"value": "bulkId:u1"}, {"value": "bulkId:u2"}
                ]}}),
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    let operations = reply.body["Operations"].as_array().unwrap();
    assert_eq!(operations.len(), 3);
    for operation in operations {
        assert_eq!(operation["status"], "201", "{operation}");
        assert_eq!(operation["version"], "W/\"1\"");
    }
    assert_eq!(operations[2]["bulkId"], "g1");
    let group_location = str_of(&operations[2], "location");
    let group_id = group_location.rsplit('/').next().unwrap();
    assert_eq!(app.member_ids(group_id).await.len(), 2);
    let user_id = str_of(&operations[0], "location")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        app.get(&format!("/Users/{user_id}")).await.body["userName"],
        "bulk1@example.com"
    );
}

#[tokio::test]
async fn patch_put_and_delete_run_in_the_same_request() {
    let app = spawn_app().await;
    let victim = app.create_user("victim@example.com").await;
    let reply = app
        .post(
            "/Bulk",
            bulk(vec![
                json!({"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "fresh@example.com"}}),
                json!({"method": "PATCH", "path": "/Users/bulkId:u", "data": {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": "Patched"}]}}),
                json!({"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "bulk team"}}),
                json!({"method": "PATCH", "path": "/Groups/bulkId:g", "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:u"}]}]}}),
                json!({"method": "PUT", "path": format!("/Users/{}", str_of(&victim, "id")), "data": {"userName": "victim@example.com", "title": "Put"}}),
                json!({"method": "DELETE", "path": format!("/Users/{}", str_of(&victim, "id"))}),
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let statuses: Vec<&str> = reply.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|operation| operation["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201", "200", "201", "200", "200", "204"]);
    let fresh = app
        .get_with("/Users", &[("filter", "userName eq \"fresh@example.com\"")])
        .await;
    assert_eq!(fresh.resources()[0]["title"], "Patched");
    let team = app
        .get_with("/Groups", &[("filter", "displayName eq \"bulk team\"")])
        .await;
    assert_eq!(
        member_ids_of(&team.resources()[0]),
        vec![str_of(&fresh.resources()[0], "id").to_string()]
    );
    app.get(&format!("/Users/{}", str_of(&victim, "id")))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn each_failed_operation_carries_its_status_and_a_scim_error() {
    let app = spawn_app().await;
    app.create_user("taken@example.com").await;
    let reply = app
        .post(
            "/Bulk",
            bulk(vec![
                json!({"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "TAKEN@example.com"}}),
                json!({"method": "DELETE", "path": "/Users/does-not-exist"}),
                json!({"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"displayName": "no userName"}}),
                json!({"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "ok@example.com"}}),
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let operations = reply.body["Operations"].as_array().unwrap();
    let expected = [
        ("409", Some("uniqueness")),
        ("404", None),
        ("400", Some("invalidValue")),
    ];
    for (operation, (status, scim_type)) in operations.iter().zip(expected) {
        assert_eq!(operation["status"], status, "{operation}");
        let response = &operation["response"];
        assert_eq!(response["schemas"], json!([ERROR_SCHEMA]), "{operation}");
        assert_eq!(response["status"], status);
        assert!(response["detail"].is_string());
        if let Some(scim_type) = scim_type {
            assert_eq!(response["scimType"], scim_type);
        }
    }
    assert_eq!(operations[3]["status"], "201");
    assert!(operations[3].get("response").is_none());
}

#[tokio::test]
async fn fail_on_errors_stops_after_that_many_errors() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/Bulk",
            json!({"schemas": [BULK_REQUEST_SCHEMA], "failOnErrors": 2, "Operations": [
                {"method": "DELETE", "path": "/Users/missing-1"},
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "a@example.com"}},
                {"method": "DELETE", "path": "/Users/missing-2"},
                {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "b@example.com"}},
                {"method": "DELETE", "path": "/Users/missing-3"}
            ]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let operations = reply.body["Operations"].as_array().unwrap();
    assert_eq!(operations.len(), 3, "{}", reply.body);
    let users = app.get("/Users").await;
    let mut names = names_of(&users, "userName");
    names.sort();
    assert_eq!(names, ["a@example.com", "admin@scimitar.local"]);
}

#[tokio::test]
async fn more_than_a_thousand_operations_is_a_413() {
    let app = spawn_app().await;
    let operations: Vec<Value> = (0..1001)
        .map(|n| json!({"method": "DELETE", "path": format!("/Users/{n}")}))
        .collect();
    app.post("/Bulk", bulk(operations))
        .await
        .assert_error(413, None);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_a_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(1024 * 1024);
    let reply = app
        .post(
            "/Bulk",
            bulk(vec![json!({"method": "POST", "path": "/Users", "bulkId": "big", "data": {"userName": "big@example.com", "nickName": padding}})]),
        )
        .await;
    reply.assert_error(413, None);
    assert_eq!(app.get("/Users").await.total(), 1);
}

#[tokio::test]
async fn an_unresolvable_bulk_id_fails_only_its_operation() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/Bulk",
            bulk(vec![
                json!({"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "g", "members": [{"value": "bulkId:nobody"}]}}),
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["Operations"][0]["status"], "400");
}

/// Creates that name no other operation and no other create's unique name are run together,
/// so that they share the store's commits; each still answers as it would one after the other:
/// a name taken before the request is a 409, a second create of a name made earlier in the
/// request (in another case) is a 409 while the first is a 201, a create without a `userName`
/// is a 400, and a later operation's `bulkId` references to them resolve.
#[tokio::test]
async fn creates_run_together_answer_each_operation_as_one_after_another_would() {
    let app = spawn_app().await;
    app.create_user("taken@example.com").await;
    let create = |bulk_id: &str, data: Value| json!({"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": data});
    let mut operations = Vec::new();
    let mut expected = Vec::new();
    for n in 0..40 {
        let data = json!({"userName": format!("user{n}@example.com")});
        operations.push(create(&format!("u{n}"), data));
        expected.push("201");
        match n {
            10 => {
                operations.push(create("taken", json!({"userName": "TAKEN@example.com"})));
                expected.push("409");
            }
            20 => {
                operations.push(create("again", json!({"userName": "USER3@example.com"})));
                expected.push("409");
            }
            30 => {
                operations.push(create("bad", json!({"displayName": "no userName"})));
                expected.push("400");
            }
            _ => {}
        }
    }
    operations.push(
        json!({"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
        "displayName": "first and last",
        "members": [{"value": "bulkId:u0"}, {"value": "bulkId:u39"}]}}),
    );
    expected.push("201");
    let reply = app.post("/Bulk", bulk(operations)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answered = reply.body["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = answered
        .iter()
        .map(|operation| operation["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, expected);
    assert_eq!(answered[11]["bulkId"], "taken");
    assert_eq!(answered[11]["response"]["scimType"], "uniqueness");
    let locations: std::collections::HashSet<&str> = answered
        .iter()
        .filter_map(|operation| operation["location"].as_str())
        .collect();
    assert_eq!(locations.len(), 41, "every create has its own resource");
    // Forty created, the taken one and the admin.
    assert_eq!(app.get("/Users").await.total(), 42);
    let group_id = str_of(answered.last().unwrap(), "location")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let first = str_of(&answered[0], "location")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let mut members = app.member_ids(&group_id).await;
    members.sort();
    assert_eq!(members.len(), 2);
    assert!(members.contains(&first), "{members:?}");
}
