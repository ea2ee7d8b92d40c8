//! `/Users` and `/Me`: the life cycle of a user, as any SCIM client sees it.

use crate::support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn creating_a_user_answers_201_with_location_etag_and_meta() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "bjensen@example.com", "name": {"givenName": "Barbara", "familyName": "Jensen"}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.id();
    let location = app.url(&format!("/Users/{id}"));
    assert_eq!(reply.header("location"), Some(location.as_str()));
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/scim+json")));
    let meta = &reply.body["meta"];
    assert_eq!(meta["resourceType"], "User");
    assert_eq!(meta["location"], json!(location));
    assert_eq!(meta["version"], "W/\"1\"");
    assert!(meta["created"].as_str().is_some_and(|t| t.contains('T')));
    assert_eq!(meta["created"], meta["lastModified"]);
    assert_eq!(reply.body["schemas"], json!([USER_SCHEMA]));
    assert_eq!(reply.body["userName"], "bjensen@example.com");
    assert_eq!(reply.body["name"]["givenName"], "Barbara");
    assert_eq!(
        reply.body["active"], true,
        "a user is active unless told otherwise"
    );
}

#[tokio::test]
async fn a_user_with_enterprise_attributes_lists_the_extension_schema() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/Users",
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
                "userName": "ent@example.com",
                ENTERPRISE_SCHEMA: {"employeeNumber": "701984", "department": "Tour Operations"}
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.body["schemas"],
        json!([USER_SCHEMA, ENTERPRISE_SCHEMA])
    );
    assert_eq!(reply.body[ENTERPRISE_SCHEMA]["employeeNumber"], "701984");
    let fetched = app.get(&format!("/Users/{}", reply.id())).await;
    assert_eq!(
        fetched.body[ENTERPRISE_SCHEMA]["department"],
        "Tour Operations"
    );
}

#[tokio::test]
async fn getting_a_user_returns_what_was_created_with_its_etag() {
    let app = spawn_app().await;
    let created = app.create_user("get.me@example.com").await;
    let id = str_of(&created, "id");
    let reply = app.get(&format!("/Users/{id}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert_eq!(reply.body["userName"], "get.me@example.com");
    assert_eq!(reply.body["meta"], created["meta"]);
}

#[tokio::test]
async fn listing_users_returns_a_list_response_with_the_admin_and_new_users() {
    let app = spawn_app().await;
    app.create_user("one@example.com").await;
    app.create_user("two@example.com").await;
    let reply = app.get("/Users").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["schemas"], json!([LIST_RESPONSE_SCHEMA]));
    assert_eq!(reply.total(), 3);
    assert_eq!(reply.body["startIndex"], 1);
    assert_eq!(reply.body["itemsPerPage"], 3);
    let mut names = names_of(&reply, "userName");
    names.sort();
    assert_eq!(
        names,
        ["admin@scimitar.local", "one@example.com", "two@example.com"]
    );
}

#[tokio::test]
async fn replacing_a_user_ignores_read_only_attributes_and_keeps_active_when_omitted() {
    let app = spawn_app().await;
    let created = app.create_user("put.me@example.com").await;
    let id = str_of(&created, "id");
    let deactivated = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    let reply = app
        .put(
            &format!("/Users/{id}"),
            json!({
                "schemas": [USER_SCHEMA],
                "id": "someone-else",
                "userName": "put.me@example.com",
                "displayName": "Put Me",
                "meta": {"resourceType": "User", "version": "W/\"99\"", "created": "2001-01-01T00:00:00Z"},
                "groups": [{"value": "not-a-group"}]
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.id(), id, "id is read-only");
    assert_eq!(reply.body["displayName"], "Put Me");
    assert_eq!(reply.body["active"], false, "an omitted active is kept");
    assert_eq!(reply.body["meta"]["created"], created["meta"]["created"]);
    assert_eq!(reply.body["meta"]["version"], "W/\"3\"");
    let groups: Vec<&str> = reply.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["display"].as_str())
        .collect();
    assert_eq!(groups, ["users"], "groups is read-only");
}

#[tokio::test]
async fn replacing_a_user_drops_attributes_the_body_omits() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/Users",
            json!({"userName": "drop@example.com", "nickName": "Babs", "title": "Boss"}),
        )
        .await;
    let id = reply.id();
    let replaced = app
        .put(
            &format!("/Users/{id}"),
            json!({"userName": "drop@example.com", "title": "Engineer"}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert!(replaced.body.get("nickName").is_none(), "{}", replaced.body);
    assert_eq!(replaced.body["title"], "Engineer");
}

#[tokio::test]
async fn patching_a_user_changes_only_what_the_operations_name() {
    let app = spawn_app().await;
    let created = app
        .post(
            "/Users",
            json!({"userName": "patch.me@example.com", "title": "Boss", "nickName": "P"}),
        )
        .await;
    let id = created.id();
    let reply = app
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "title", "value": "Engineer"}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["title"], "Engineer");
    assert_eq!(reply.body["nickName"], "P");
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
}

#[tokio::test]
async fn deleting_a_user_answers_204_and_then_404() {
    let app = spawn_app().await;
    let id = app.create_user("gone@example.com").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = app.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    app.get(&format!("/Users/{id}"))
        .await
        .assert_error(404, None);
    app.delete(&format!("/Users/{id}"))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn me_returns_the_bootstrap_admin() {
    let app = spawn_app().await;
    let reply = app.get("/Me").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["userName"], "admin@scimitar.local");
    assert_eq!(reply.body["meta"]["resourceType"], "User");
    let admins = app.system_group_id("admins").await;
    assert!(reply.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|group| group["value"] == json!(admins)));
}

#[tokio::test]
async fn every_new_user_belongs_to_the_users_group_directly() {
    let app = spawn_app().await;
    let users = app.system_group_id("users").await;
    let created = app.create_user("member@example.com").await;
    let groups = created["groups"].as_array().expect("groups on creation");
    assert_eq!(groups.len(), 1, "{created}");
    assert_eq!(groups[0]["value"], json!(users));
    assert_eq!(groups[0]["display"], "users");
    assert_eq!(groups[0]["type"], "direct");
    assert!(groups[0]["$ref"]
        .as_str()
        .is_some_and(|r| r.ends_with(&format!("/Groups/{users}"))));
    assert!(app
        .member_ids(&users)
        .await
        .contains(&str_of(&created, "id").to_string()));
}

#[tokio::test]
async fn a_users_groups_lists_each_group_it_is_in_as_direct() {
    let app = spawn_app().await;
    let user = app.create_user("grouped@example.com").await;
    let user_id = str_of(&user, "id");
    let engineers = app.create_group("engineers", &[user_id]).await;
    let reply = app.get(&format!("/Users/{user_id}")).await;
    let groups = reply.body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{}", reply.body);
    let entry = groups
        .iter()
        .find(|group| group["value"] == engineers["id"])
        .expect("the engineers group is listed");
    assert_eq!(entry["type"], "direct");
    assert_eq!(entry["display"], "engineers");
}

#[tokio::test]
async fn deleting_a_user_removes_it_from_every_group() {
    let app = spawn_app().await;
    let user = app.create_user("leaver@example.com").await;
    let stayer = app.create_user("stayer@example.com").await;
    let user_id = str_of(&user, "id");
    let stayer_id = str_of(&stayer, "id");
    let first = app.create_group("first", &[user_id, stayer_id]).await;
    let second = app.create_group("second", &[user_id]).await;
    let users = app.system_group_id("users").await;
    assert_eq!(app.delete(&format!("/Users/{user_id}")).await.status, 204);
    assert_eq!(
        app.member_ids(str_of(&first, "id")).await,
        vec![stayer_id.to_string()]
    );
    assert!(app.member_ids(str_of(&second, "id")).await.is_empty());
    assert!(!app.member_ids(&users).await.contains(&user_id.to_string()));
}

#[tokio::test]
async fn a_duplicate_user_name_differing_only_in_case_is_a_409_uniqueness() {
    let app = spawn_app().await;
    app.create_user("Case.Test@Example.com").await;
    let reply = app
        .post("/Users", json!({"userName": "case.test@example.COM"}))
        .await;
    reply.assert_error(409, Some("uniqueness"));
    assert_eq!(app.get("/Users").await.total(), 2, "nothing was created");
}

#[tokio::test]
async fn renaming_a_user_onto_another_users_name_is_a_409() {
    let app = spawn_app().await;
    app.create_user("taken@example.com").await;
    let other = app.create_user("other@example.com").await;
    let reply = app
        .patch_ops(
            &format!("/Users/{}", str_of(&other, "id")),
            json!([{"op": "replace", "path": "userName", "value": "TAKEN@example.com"}]),
        )
        .await;
    reply.assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn a_group_id_is_not_found_at_the_users_endpoint() {
    let app = spawn_app().await;
    let users = app.system_group_id("users").await;
    app.get(&format!("/Users/{users}"))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn a_password_is_never_returned_by_any_endpoint() {
    let app = spawn_app().await;
    let secret = "s3cret-Passw0rd";
    let created = app
        .post(
            "/Users",
            json!({"userName": "pw@example.com", "password": secret}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    let path = format!("/Users/{id}");
    let mut replies = vec![created];
    replies.push(app.get(&path).await);
    replies.push(app.get_with(&path, &[("attributes", "password")]).await);
    replies.push(
        app.get_with(&path, &[("attributes", "userName,password")])
            .await,
    );
    replies.push(app.get("/Users").await);
    replies.push(app.get_with("/Users", &[("attributes", "password")]).await);
    replies.push(
        app.post("/Users/.search", json!({"attributes": ["password"]}))
            .await,
    );
    replies.push(app.post("/.search", json!({})).await);
    replies.push(
        app.put(
            &path,
            json!({"userName": "pw@example.com", "password": "n3w-secret"}),
        )
        .await,
    );
    replies.push(
        app.patch_ops(
            &path,
            json!([{"op": "replace", "path": "password", "value": "th1rd-secret"}]),
        )
        .await,
    );
    replies.push(
        app.patch_with(
            &path,
            &[("attributes", "password")],
            patch_op(json!([{"op": "replace", "value": {"password": "f0urth"}}])),
        )
        .await,
    );
    for reply in replies {
        assert!(reply.status < 300, "{}", reply.body);
        let text = reply.body.to_string();
        assert!(!text.contains("\"password\""), "password leaked: {text}");
        assert!(!text.contains("secret"), "password leaked: {text}");
        assert!(!text.contains("argon2"), "hash leaked: {text}");
    }
}
