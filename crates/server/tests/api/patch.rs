//! PATCH (RFC 7644 section 3.5.2): paths, value paths, pathless operations, all-or-nothing
//! application, the errors for bad operations, and group membership through `members`.

use crate::support::*;
use serde_json::json;

async fn user_with_emails(app: &TestApp) -> String {
    let reply = app
        .post(
            "/Users",
            json!({
                "userName": "patchee@example.com",
                "displayName": "Patchee",
                "name": {"givenName": "Pat", "familyName": "Chee"},
                "emails": [
                    {"type": "work", "value": "pat@work.com", "primary": true},
                    {"type": "home", "value": "pat@home.org"}
                ]
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    format!("/Users/{}", reply.id())
}

#[tokio::test]
async fn add_replace_and_remove_with_simple_and_sub_attribute_paths() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    let reply = app
        .patch_ops(
            &path,
            json!([
                {"op": "add", "path": "nickName", "value": "Patty"},
                {"op": "replace", "path": "name.givenName", "value": "Patricia"},
                {"op": "remove", "path": "name.familyName"},
                {"op": "add", "path": "emails", "value": [{"type": "other", "value": "pat@other.net"}]},
                {"op": "remove", "path": "displayName"}
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["nickName"], "Patty");
    assert_eq!(reply.body["name"], json!({"givenName": "Patricia"}));
    assert_eq!(reply.body["emails"].as_array().unwrap().len(), 3);
    assert!(reply.body.get("displayName").is_none());
}

#[tokio::test]
async fn value_paths_select_elements_to_replace_or_remove() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    let replaced = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "pat@new-work.com"}]),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let emails = replaced.body["emails"].as_array().unwrap();
    let work = emails.iter().find(|e| e["type"] == "work").unwrap();
    assert_eq!(work["value"], "pat@new-work.com");
    assert_eq!(work["primary"], true, "other sub-attributes are kept");
    let removed = app
        .patch_ops(
            &path,
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(
        removed.body["emails"],
        json!([{"type": "work", "value": "pat@new-work.com", "primary": true}])
    );
}

#[tokio::test]
async fn pathless_add_and_replace_merge_the_value_object() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    let added = app
        .patch_ops(
            &path,
            json!([{"op": "add", "value": {"title": "Engineer", "name": {"middleName": "Q"}}}]),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["title"], "Engineer");
    assert_eq!(added.body["name"]["middleName"], "Q");
    assert_eq!(added.body["name"]["givenName"], "Pat");
    let replaced = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "value": {"title": "Manager", "active": false}}]),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["title"], "Manager");
    assert_eq!(replaced.body["active"], false);
    assert_eq!(replaced.body["displayName"], "Patchee");
}

#[tokio::test]
async fn a_valid_operation_followed_by_an_invalid_one_changes_nothing() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    let before = app.get(&path).await;
    for bad in [
        json!({"op": "replace", "path": "active", "value": "maybe"}),
        json!({"op": "replace", "path": "id", "value": "x"}),
        json!({"op": "replace", "path": "emails[type eq \"work\"].nope", "value": "x"}),
    ] {
        let reply = app
            .patch_ops(
                &path,
                json!([
                    {"op": "replace", "path": "displayName", "value": "Changed"},
                    {"op": "add", "path": "nickName", "value": "Nick"},
                    bad
                ]),
            )
            .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        let after = app.get(&path).await;
        assert_eq!(after.body, before.body, "all or nothing");
        assert_eq!(after.header("etag"), Some("W/\"1\""));
    }
}

#[tokio::test]
async fn remove_without_a_path_is_a_400_no_target() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    app.patch_ops(&path, json!([{"op": "remove"}]))
        .await
        .assert_error(400, Some("noTarget"));
}

#[tokio::test]
async fn a_malformed_or_unknown_path_is_a_400_invalid_path() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    for bad in [
        "emails[type eq",
        "emails[type eq \"work\"]].value",
        "shoeSize",
        "name.shoeSize",
        "userName[value eq \"x\"]",
    ] {
        app.patch_ops(&path, json!([{"op": "replace", "path": bad, "value": "x"}]))
            .await
            .assert_error(400, Some("invalidPath"));
    }
}

#[tokio::test]
async fn a_read_only_target_is_a_400_mutability() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    for target in ["id", "meta.created", "groups"] {
        app.patch_ops(
            &path,
            json!([{"op": "replace", "path": target, "value": "x"}]),
        )
        .await
        .assert_error(400, Some("mutability"));
    }
}

#[tokio::test]
async fn an_unknown_op_is_a_400_invalid_syntax() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    app.patch_ops(
        &path,
        json!([{"op": "move", "path": "title", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    app.patch(&path, json!({"schemas": [PATCH_OP_SCHEMA]}))
        .await
        .assert_error(400, Some("invalidSyntax"));
    app.patch_ops(&path, json!([]))
        .await
        .assert_error(400, Some("invalidSyntax"));
}

#[tokio::test]
async fn removing_the_required_user_name_is_refused() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    let reply = app
        .patch_ops(&path, json!([{"op": "remove", "path": "userName"}]))
        .await;
    reply.assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn a_member_is_added_and_then_removed_by_value_filter() {
    let app = spawn_app().await;
    let user = app.create_user("joiner@example.com").await;
    let user_id = str_of(&user, "id");
    let group = app.create_group("team", &[]).await;
    let path = format!("/Groups/{}", str_of(&group, "id"));
    let added = app
        .patch_ops(
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": user_id}]}]),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(member_ids_of(&added.body), vec![user_id.to_string()]);
    assert_eq!(added.header("etag"), Some("W/\"2\""));
    assert_eq!(
        app.group_ids_of(&format!("/Users/{user_id}")).await.len(),
        2
    );
    let removed = app
        .patch_ops(
            &path,
            json!([{"op": "remove", "path": format!("members[value eq \"{user_id}\"]")}]),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(member_ids_of(&removed.body).is_empty());
    assert!(app.member_ids(str_of(&group, "id")).await.is_empty());
}

#[tokio::test]
async fn adding_a_member_twice_keeps_one_membership() {
    let app = spawn_app().await;
    let user = app.create_user("twice@example.com").await;
    let user_id = str_of(&user, "id");
    let group = app.create_group("once", &[user_id]).await;
    let path = format!("/Groups/{}", str_of(&group, "id"));
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": user_id}]}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(member_ids_of(&reply.body), vec![user_id.to_string()]);
}

#[tokio::test]
async fn removing_a_member_that_is_not_there_is_a_no_op_200() {
    let app = spawn_app().await;
    let user = app.create_user("stays@example.com").await;
    let stranger = app.create_user("stranger@example.com").await;
    let group = app.create_group("steady", &[str_of(&user, "id")]).await;
    let path = format!("/Groups/{}", str_of(&group, "id"));
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", str_of(&stranger, "id"))}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        member_ids_of(&reply.body),
        vec![str_of(&user, "id").to_string()]
    );
}

#[tokio::test]
async fn a_patch_on_a_small_group_returns_its_members() {
    let app = spawn_app().await;
    let first = app.create_user("first@example.com").await;
    let second = app.create_user("second@example.com").await;
    let group = app.create_group("small", &[str_of(&first, "id")]).await;
    let reply = app
        .patch_ops(
            &format!("/Groups/{}", str_of(&group, "id")),
            json!([{"op": "add", "path": "members", "value": [{"value": second["id"]}]}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut expected = vec![
        str_of(&first, "id").to_string(),
        str_of(&second, "id").to_string(),
    ];
    expected.sort();
    assert_eq!(member_ids_of(&reply.body), expected);
    let member = &reply.body["members"][0];
    assert_eq!(member["type"], "User");
    assert!(member.get("display").is_none(), "display only on request");
}

#[tokio::test]
async fn member_display_names_are_returned_when_asked_for() {
    let app = spawn_app().await;
    let user = app.create_user("shown@example.com").await;
    let group = app.create_group("shown", &[str_of(&user, "id")]).await;
    let reply = app
        .get_with(
            &format!("/Groups/{}", str_of(&group, "id")),
            &[("attributes", "members.display,members.value")],
        )
        .await;
    assert_eq!(
        reply.body["members"],
        json!([{"value": user["id"], "display": "shown@example.com"}])
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version() {
    let app = spawn_app().await;
    let path = user_with_emails(&app).await;
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "displayName", "value": "Patchee"}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
}
