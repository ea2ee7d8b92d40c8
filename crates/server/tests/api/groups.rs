//! `/Groups`: membership of users, service principals and groups, the built-in groups, and the
//! refusals that keep the membership graph sound (cycles, unknown members).

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_group_may_hold_users_service_principals_and_groups() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let principal = app.create_service_principal("etl").await;
    let child = app.create_group("child", &[]).await;
    let reply = app
        .post(
            "/Groups",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "parent", "members": [
                {"value": user["id"]},
                {"value": principal["id"], "type": "ServicePrincipal"},
                {"value": child["id"], "$ref": format!("{}/Groups/{}", app.url(""), str_of(&child, "id"))}
            ]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["schemas"], json!([GROUP_SCHEMA]));
    assert_eq!(reply.body["meta"]["resourceType"], "Group");
    assert_eq!(
        reply.header("location"),
        Some(app.url(&format!("/Groups/{}", reply.id())).as_str())
    );
    let members = reply.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{}", reply.body);
    for (source, kind, endpoint) in [
        (&user, "User", "Users"),
        (&principal, "ServicePrincipal", "ServicePrincipals"),
        (&child, "Group", "Groups"),
    ] {
        let member = members
            .iter()
            .find(|member| member["value"] == source["id"])
            .unwrap_or_else(|| panic!("{kind} missing from {}", reply.body));
        assert_eq!(member["type"], kind);
        assert_eq!(
            member["$ref"],
            json!(app.url(&format!("/{endpoint}/{}", str_of(source, "id"))))
        );
    }
    let child_groups = app
        .group_ids_of(&format!("/Groups/{}", str_of(&child, "id")))
        .await;
    assert_eq!(child_groups, vec![reply.id()]);
}

#[tokio::test]
async fn getting_listing_and_deleting_a_group_works_and_leaves_its_members() {
    let app = spawn_app().await;
    let user = app.create_user("kept@example.com").await;
    let group = app.create_group("temporary", &[str_of(&user, "id")]).await;
    let id = str_of(&group, "id");
    let fetched = app.get(&format!("/Groups/{id}")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.header("etag"), Some("W/\"1\""));
    assert_eq!(fetched.body["displayName"], "temporary");
    let listed = app.get("/Groups").await;
    let mut names = names_of(&listed, "displayName");
    names.sort();
    assert_eq!(names, ["admins", "temporary", "users"]);
    assert_eq!(app.delete(&format!("/Groups/{id}")).await.status, 204);
    app.get(&format!("/Groups/{id}"))
        .await
        .assert_error(404, None);
    assert_eq!(
        app.get(&format!("/Users/{}", str_of(&user, "id")))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn replacing_a_group_replaces_its_members_and_an_omitted_list_empties_it() {
    let app = spawn_app().await;
    let first = app.create_user("first@example.com").await;
    let second = app.create_user("second@example.com").await;
    let group = app.create_group("swap", &[str_of(&first, "id")]).await;
    let path = format!("/Groups/{}", str_of(&group, "id"));
    let replaced = app
        .put(
            &path,
            json!({"displayName": "swap", "members": [{"value": second["id"]}]}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        member_ids_of(&replaced.body),
        vec![str_of(&second, "id").to_string()]
    );
    let emptied = app.put(&path, json!({"displayName": "swapped"})).await;
    assert_eq!(emptied.status, 200, "{}", emptied.body);
    assert_eq!(emptied.body["displayName"], "swapped");
    assert!(app.member_ids(str_of(&group, "id")).await.is_empty());
}

#[tokio::test]
async fn a_duplicate_group_display_name_is_a_409_uniqueness() {
    let app = spawn_app().await;
    app.create_group("Data Engineers", &[]).await;
    app.post("/Groups", json!({"displayName": "data engineers"}))
        .await
        .assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn the_built_in_admins_and_users_groups_exist_and_admins_holds_the_admin() {
    let app = spawn_app().await;
    let admins = app.system_group_id("admins").await;
    app.system_group_id("users").await;
    let me = app.get("/Me").await;
    assert_eq!(app.member_ids(&admins).await, vec![me.id()]);
}

#[tokio::test]
async fn the_built_in_groups_cannot_be_deleted() {
    let app = spawn_app().await;
    for name in ["admins", "users"] {
        let id = app.system_group_id(name).await;
        app.delete(&format!("/Groups/{id}"))
            .await
            .assert_error(400, Some("mutability"));
        assert_eq!(app.get(&format!("/Groups/{id}")).await.status, 200);
    }
}

#[tokio::test]
async fn the_built_in_groups_cannot_be_renamed_by_patch_or_put() {
    let app = spawn_app().await;
    for name in ["admins", "users"] {
        let id = app.system_group_id(name).await;
        let path = format!("/Groups/{id}");
        app.patch_ops(
            &path,
            json!([{"op": "replace", "path": "displayName", "value": "renamed"}]),
        )
        .await
        .assert_error(400, Some("mutability"));
        app.patch_ops(
            &path,
            json!([{"op": "replace", "value": {"displayName": "renamed"}}]),
        )
        .await
        .assert_error(400, Some("mutability"));
        let members: Vec<_> = app
            .member_ids(&id)
            .await
            .into_iter()
            .map(|id| json!({"value": id}))
            .collect();
        app.put(&path, json!({"displayName": "renamed", "members": members}))
            .await
            .assert_error(400, Some("mutability"));
        assert_eq!(app.get(&path).await.body["displayName"], name);
    }
}

#[tokio::test]
async fn the_users_group_membership_is_managed_by_the_server() {
    let app = spawn_app().await;
    let users = app.system_group_id("users").await;
    let member = app.create_user("m@example.com").await;
    app.patch_ops(
        &format!("/Groups/{users}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", str_of(&member, "id"))}]),
    )
    .await
    .assert_error(400, Some("mutability"));
}

#[tokio::test]
async fn a_group_in_itself_is_a_400_invalid_value() {
    let app = spawn_app().await;
    let group = app.create_group("selfish", &[]).await;
    let id = str_of(&group, "id");
    app.patch_ops(
        &format!("/Groups/{id}"),
        json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert!(app.member_ids(id).await.is_empty());
}

#[tokio::test]
async fn a_membership_cycle_is_a_400_invalid_value() {
    let app = spawn_app().await;
    let a = app.create_group("a", &[]).await;
    let b = app.create_group("b", &[str_of(&a, "id")]).await;
    app.patch_ops(
        &format!("/Groups/{}", str_of(&a, "id")),
        json!([{"op": "add", "path": "members", "value": [{"value": b["id"]}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert!(app.member_ids(str_of(&a, "id")).await.is_empty());
}

#[tokio::test]
async fn a_longer_membership_cycle_is_a_400_invalid_value() {
    let app = spawn_app().await;
    let a = app.create_group("a", &[]).await;
    let b = app.create_group("b", &[str_of(&a, "id")]).await;
    let c = app.create_group("c", &[str_of(&b, "id")]).await;
    app.patch_ops(
        &format!("/Groups/{}", str_of(&a, "id")),
        json!([{"op": "add", "path": "members", "value": [{"value": c["id"]}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn a_nonexistent_member_is_a_400_and_leaves_the_group_unchanged() {
    let app = spawn_app().await;
    let existing = app.create_user("existing@example.com").await;
    let newcomer = app.create_user("newcomer@example.com").await;
    let group = app
        .create_group("guarded", &[str_of(&existing, "id")])
        .await;
    let path = format!("/Groups/{}", str_of(&group, "id"));
    app.patch_ops(
        &path,
        json!([{"op": "add", "path": "members", "value": [
            {"value": newcomer["id"]},
            {"value": "does-not-exist"}
        ]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let after = app.get(&path).await;
    assert_eq!(
        member_ids_of(&after.body),
        vec![str_of(&existing, "id").to_string()],
        "no half-applied write"
    );
    assert_eq!(after.body["meta"]["version"], "W/\"1\"");
}

#[tokio::test]
async fn creating_a_group_with_a_nonexistent_member_creates_nothing() {
    let app = spawn_app().await;
    app.post(
        "/Groups",
        json!({"displayName": "ghosts", "members": [{"value": "nobody"}]}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let listed = app
        .get_with("/Groups", &[("filter", "displayName eq \"ghosts\"")])
        .await;
    assert_eq!(listed.total(), 0);
}

#[tokio::test]
async fn a_member_type_that_contradicts_the_member_is_a_400() {
    let app = spawn_app().await;
    let user = app.create_user("typed@example.com").await;
    app.post(
        "/Groups",
        json!({"displayName": "mistyped", "members": [{"value": user["id"], "type": "Group"}]}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn a_member_of_a_nested_group_lists_the_outer_group_as_indirect() {
    let app = spawn_app().await;
    let user = app.create_user("nested@example.com").await;
    let inner = app.create_group("inner", &[str_of(&user, "id")]).await;
    let outer = app.create_group("outer", &[str_of(&inner, "id")]).await;
    let reply = app.get(&format!("/Users/{}", str_of(&user, "id"))).await;
    let groups = reply.body["groups"].as_array().unwrap();
    let kind_of = |group: &serde_json::Value| {
        groups
            .iter()
            .find(|entry| entry["value"] == group["id"])
            .map(|entry| entry["type"].clone())
    };
    assert_eq!(kind_of(&inner), Some(json!("direct")), "{}", reply.body);
    assert_eq!(kind_of(&outer), Some(json!("indirect")), "{}", reply.body);
    assert_eq!(
        app.member_ids(str_of(&outer, "id")).await,
        vec![str_of(&inner, "id").to_string()],
        "members lists direct members only"
    );
}

#[tokio::test]
async fn the_admins_group_cannot_contain_groups() {
    let app = spawn_app().await;
    let admins = app.system_group_id("admins").await;
    let group = app.create_group("would-be-admins", &[]).await;
    app.patch_ops(
        &format!("/Groups/{admins}"),
        json!([{"op": "add", "path": "members", "value": [{"value": group["id"]}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn a_user_added_to_admins_shows_it_in_groups() {
    let app = spawn_app().await;
    let admins = app.system_group_id("admins").await;
    let user = app.create_user("new.admin@example.com").await;
    let reply = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "add", "path": "members", "value": [{"value": user["id"]}]}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(app
        .group_ids_of(&format!("/Users/{}", str_of(&user, "id")))
        .await
        .contains(&admins));
}

#[tokio::test]
async fn deleting_a_group_removes_it_from_its_parent_groups() {
    let app = spawn_app().await;
    let child = app.create_group("child", &[]).await;
    let parent = app.create_group("parent", &[str_of(&child, "id")]).await;
    assert_eq!(
        app.delete(&format!("/Groups/{}", str_of(&child, "id")))
            .await
            .status,
        204
    );
    assert!(app.member_ids(str_of(&parent, "id")).await.is_empty());
}

#[tokio::test]
async fn a_get_then_put_round_trip_of_a_group_keeps_its_members() {
    let app = spawn_app().await;
    let user = app.create_user("kept@example.com").await;
    let principal = app.create_service_principal("kept-sp").await;
    let group = app
        .create_group(
            "round trip",
            &[str_of(&user, "id"), str_of(&principal, "id")],
        )
        .await;
    let path = format!("/Groups/{}", str_of(&group, "id"));
    let document = app
        .get_with(
            &path,
            &[("attributes", "displayName,members,members.display")],
        )
        .await
        .body;
    let reply = app.put(&path, document).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(member_ids_of(&reply.body), member_ids_of(&group));
}

/// Adds `writers` new users to one group with that many PATCH requests in flight at once.
async fn add_members_concurrently(writers: usize) {
    let app = spawn_app().await;
    let group = app.create_group("busy", &[]).await;
    let path = format!("/Groups/{}", str_of(&group, "id"));
    let mut ids = Vec::new();
    for n in 0..writers {
        ids.push(str_of(&app.create_user(&format!("c{n}@example.com")).await, "id").to_string());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for id in &ids {
        let request = app.scim(reqwest::Method::PATCH, &path).json(&patch_op(
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        ));
        tasks.spawn(async move { read(request.send().await.unwrap()).await });
    }
    let mut failures = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        if reply.status != 200 {
            failures.push(reply.body);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {writers} failed: {failures:?}",
        failures.len()
    );
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(app.member_ids(str_of(&group, "id")).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_concurrent_member_additions_to_one_group_all_succeed() {
    add_members_concurrently(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_member_additions_to_one_group_all_succeed() {
    add_members_concurrently(32).await;
}

/// An account keeps an active admin: removing the last one from `admins`, deactivating it or
/// deleting it is a 409 that changes nothing; with a second admin, each goes through.
#[tokio::test]
async fn the_last_active_admin_cannot_be_removed_deactivated_or_deleted() {
    let app = spawn_app().await;
    let admins = app.system_group_id("admins").await;
    let me = app.get("/Me").await.id();
    let last_admin = "an account must keep at least one active admin: this change would leave the 'admins' group without an active member";
    let attempts = [
        app.patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{me}\"]")}]),
        )
        .await,
        app.patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "replace", "path": "members", "value": []}]),
        )
        .await,
        app.patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "remove", "path": "members"}]),
        )
        .await,
        app.patch_ops(
            &format!("/Users/{me}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await,
        app.delete(&format!("/Users/{me}")).await,
    ];
    for refused in attempts {
        refused.assert_error(409, None);
        assert_eq!(refused.body["detail"], json!(last_admin));
    }
    assert_eq!(app.member_ids(&admins).await, vec![me.clone()]);
    assert_eq!(app.get("/Me").await.body["active"], json!(true));
    let second = app.add_second_admin().await;
    let reply = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", str_of(&second, "id"))}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
