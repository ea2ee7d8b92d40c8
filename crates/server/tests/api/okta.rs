//! What Okta sends, from its SCIM 2.0 protocol reference and its spec test.

use crate::support::*;
use serde_json::{json, Value};

fn okta_user() -> Value {
    serde_json::from_str(
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local","name":{"givenName":"Test","familyName":"User"},
   "emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],"displayName":"Test User","locale":"en-US",
   "externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":true}"#,
    )
    .unwrap()
}

#[tokio::test]
async fn a_create_with_a_password_and_empty_groups_succeeds_without_returning_the_password() {
    let app = spawn_app().await;
    let reply = read(
        app.scim(reqwest::Method::POST, "/Users")
            .header("content-type", "application/json")
            .header("user-agent", "Okta SCIM Client 1.0.0")
            .body(okta_user().to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["userName"], "test.user@okta.local");
    assert_eq!(reply.body["locale"], "en-US");
    assert_eq!(reply.body["active"], true);
    let text = reply.body.to_string();
    assert!(!text.contains("1mz050nq"), "{text}");
    assert!(!text.contains("password"), "{text}");
    assert!(!text.contains("$argon2"), "{text}");
    let fetched = app.get(&format!("/Users/{}", reply.id())).await;
    assert!(!fetched.body.to_string().contains("password"));
}

#[tokio::test]
async fn a_duplicate_create_is_a_409_with_a_scim_error() {
    let app = spawn_app().await;
    assert_eq!(app.post("/Users", okta_user()).await.status, 201);
    app.post("/Users", okta_user())
        .await
        .assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn the_existence_probe_with_an_uppercased_user_name_finds_the_user() {
    let app = spawn_app().await;
    let created = app.post("/Users", okta_user()).await;
    let reply = read(
        app.client
            .get(format!(
                "{}?filter=userName%20eq%20%22TEST.USER%40OKTA.LOCAL%22&startIndex=1&count=100",
                app.url("/Users")
            ))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["totalResults"], json!(1));
    assert_eq!(reply.body["startIndex"], json!(1));
    assert_eq!(reply.body["itemsPerPage"], json!(1));
    assert_eq!(reply.resources()[0]["id"], json!(created.id()));
    let missing = app
        .get_with(
            "/Users",
            &[
                ("filter", "userName eq \"missing@okta.local\""),
                ("startIndex", "1"),
                ("count", "100"),
            ],
        )
        .await;
    assert_eq!(missing.body["totalResults"], json!(0));
}

#[tokio::test]
async fn the_spec_test_reads_one_user_per_page_and_404s_an_unknown_id() {
    let app = spawn_app().await;
    app.post("/Users", okta_user()).await;
    let page = app
        .get_with("/Users", &[("count", "1"), ("startIndex", "1")])
        .await;
    assert_eq!(page.resources().len(), 1);
    assert_eq!(page.total(), 2);
    let missing = app.get("/Users/010101001010101").await;
    missing.assert_error(404, None);
    assert_eq!(app.get("/Groups").await.status, 200);
}

#[tokio::test]
async fn a_get_then_put_round_trip_with_id_meta_and_groups_updates_the_user() {
    let app = spawn_app().await;
    let created = app.post("/Users", okta_user()).await;
    let path = format!("/Users/{}", created.id());
    let mut document = app.get(&path).await.body;
    document["name"]["familyName"] = json!("Renamed");
    document["displayName"] = json!("Test Renamed");
    let reply = app.put(&path, document.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["name"]["familyName"], "Renamed");
    assert_eq!(reply.body["displayName"], "Test Renamed");
    assert_eq!(reply.body["id"], document["id"]);
    assert_eq!(reply.body["groups"], document["groups"]);
    assert_eq!(reply.body["active"], true);
    assert_eq!(reply.body["meta"]["version"], "W/\"2\"");
    let deactivated = {
        let mut body = reply.body.clone();
        body["active"] = json!(false);
        app.put(&path, body).await
    };
    assert_eq!(
        deactivated.body["active"], false,
        "AIW apps deactivate by PUT"
    );
}

#[tokio::test]
async fn a_pathless_replace_deactivates_the_user() {
    let app = spawn_app().await;
    let created = app.post("/Users", okta_user()).await;
    let reply = app
        .patch(
            &format!("/Users/{}", created.id()),
            serde_json::from_str(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}"#).unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["active"], false);
}

#[tokio::test]
async fn a_password_sync_patch_is_accepted_and_not_echoed() {
    let app = spawn_app().await;
    let created = app.post("/Users", okta_user()).await;
    let reply = app
        .patch_ops(
            &format!("/Users/{}", created.id()),
            json!([{"op": "replace", "value": {"password": "n3wPassw0rd"}}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!reply.body.to_string().contains("n3wPassw0rd"));
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
}

#[tokio::test]
async fn a_group_rename_pathless_replace_including_the_id_is_accepted() {
    let app = spawn_app().await;
    let group = app.create_group("Test SCIM", &[]).await;
    let id = str_of(&group, "id");
    let reply = app
        .patch_ops(
            &format!("/Groups/{id}"),
            json!([{"op": "replace", "value": {"id": id, "displayName": "Test SCIMv2"}}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["displayName"], "Test SCIMv2");
    assert_eq!(reply.body["id"], json!(id));
}

#[tokio::test]
async fn membership_remove_and_add_in_one_patch_swap_the_members() {
    let app = spawn_app().await;
    let leaving = app.create_user("leaving@okta.local").await;
    let joining = app.create_user("test.user@okta.local").await;
    let group = app
        .create_group("Okta Group", &[str_of(&leaving, "id")])
        .await;
    let id = str_of(&group, "id");
    let reply = app
        .patch_ops(
            &format!("/Groups/{id}"),
            json!([
                {"op": "replace", "value": {"id": id, "displayName": "Okta Group"}},
                {"op": "remove", "path": format!("members[value eq \"{}\"]", str_of(&leaving, "id"))},
                {"op": "add", "path": "members", "value": [{"value": joining["id"], "display": "test.user@okta.local"}]}
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        app.member_ids(id).await,
        vec![str_of(&joining, "id").to_string()]
    );
}

#[tokio::test]
async fn a_full_push_replaces_the_member_list() {
    let app = spawn_app().await;
    let a = app.create_user("a@okta.local").await;
    let b = app.create_user("b@okta.local").await;
    let c = app.create_user("c@okta.local").await;
    let group = app.create_group("Pushed", &[str_of(&a, "id")]).await;
    let id = str_of(&group, "id");
    let reply = app
        .patch_ops(
            &format!("/Groups/{id}"),
            json!([{"op": "replace", "path": "members", "value": [
                {"value": b["id"], "display": "b@okta.local"},
                {"value": c["id"], "display": "c@okta.local"}
            ]}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut expected = vec![str_of(&b, "id").to_string(), str_of(&c, "id").to_string()];
    expected.sort();
    assert_eq!(app.member_ids(id).await, expected);
}

#[tokio::test]
async fn a_bad_or_missing_token_is_a_401_with_www_authenticate_and_a_scim_error() {
    let app = spawn_app().await;
    let unauthenticated = [
        app.client
            .get(app.url("/Users"))
            .header("authorization", "non-token"),
        app.client.get(app.url("/Users")).bearer_auth("wrong-token"),
        app.client.get(app.url("/Users")),
        app.client
            .post(app.url("/Users"))
            .json(&json!({"userName": "x@example.com"})),
    ];
    for request in unauthenticated {
        let reply = read(request.send().await.unwrap()).await;
        reply.assert_error(401, None);
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|value| value.starts_with("Bearer")),
            "{:?}",
            reply.headers
        );
    }
    assert_eq!(app.get("/Users").await.total(), 1, "nothing was created");
}
