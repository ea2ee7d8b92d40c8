//! What Microsoft Entra ID sends, taken verbatim from its provisioning tutorial and its SCIM
//! compatibility notes (see the team's reference notes on identity-provider behaviour).

use crate::support::*;
use serde_json::{json, Value};

const TUTORIAL_USER: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
 "externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee","active":true,
 "emails":[{"primary":true,"type":"work","value":"Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"}],
 "meta":{"resourceType":"User"},"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},"roles":[]}"#;

const TUTORIAL_USER_WITH_NULLS: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
 "externalId":"jyoung","userName":"jyoung@testuser.com","active":true,"addresses":null,"displayName":"Joy Young",
 "emails":[{"type":"work","value":"jyoung@Contoso.com","primary":true}],"meta":{"resourceType":"User"},
 "name":{"familyName":"Young","givenName":"Joy"},"phoneNumbers":null,"preferredLanguage":null,"title":null,"department":null,"manager":null}"#;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

async fn tutorial_user(app: &TestApp) -> String {
    let reply = app.post("/Users", parse(TUTORIAL_USER_WITH_NULLS)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    format!("/Users/{}", reply.id())
}

#[tokio::test]
async fn the_tutorial_create_user_body_is_accepted() {
    let app = spawn_app().await;
    let reply = app.post("/Users", parse(TUTORIAL_USER)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.body["userName"],
        "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    );
    assert_eq!(
        reply.body["externalId"],
        "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    );
    assert_eq!(reply.body["emails"][0]["type"], "work");
    assert_eq!(reply.body["name"]["formatted"], "givenName familyName");
    assert!(
        reply.body.get("roles").is_none(),
        "an empty array is unassigned"
    );
    let found = app
        .get_with(
            "/Users",
            &[(
                "filter",
                "userName eq \"Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee\"",
            )],
        )
        .await;
    assert_eq!(found.total(), 1);
}

#[tokio::test]
async fn the_tutorial_body_with_nulls_and_a_typoed_extension_urn_is_accepted() {
    let app = spawn_app().await;
    let reply = app.post("/Users", parse(TUTORIAL_USER_WITH_NULLS)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["displayName"], "Joy Young");
    for unassigned in [
        "addresses",
        "phoneNumbers",
        "preferredLanguage",
        "title",
        "department",
        "manager",
    ] {
        assert!(
            reply.body.get(unassigned).is_none(),
            "{unassigned}: {}",
            reply.body
        );
    }
    assert_eq!(reply.body["schemas"], json!([USER_SCHEMA]));
    let found = app
        .get_with("/Users", &[("filter", "externalId eq \"jyoung\"")])
        .await;
    assert_eq!(found.total(), 1);
}

#[tokio::test]
async fn capitalised_ops_and_string_booleans_deactivate_a_user() {
    let app = spawn_app().await;
    let path = tutorial_user(&app).await;
    let reply = app
        .patch(
            &path,
            parse(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}"#),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["active"], false);
    let reactivated = app
        .patch(
            &path,
            parse(r#"{"Operations":[{"op":"Replace","path":"active","value":"true"}],"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}"#),
        )
        .await;
    assert_eq!(reactivated.body["active"], true, "{}", reactivated.body);
    let wrapped = app
        .patch_ops(
            &path,
            json!([{"op": "Replace", "path": "active", "value": [{"value": "False"}]}]),
        )
        .await;
    assert_eq!(wrapped.status, 200, "{}", wrapped.body);
    assert_eq!(wrapped.body["active"], false);
    let deprovisioned = app
        .patch_ops(
            &path,
            json!([{"op": "Add", "path": "active", "value": "True"}]),
        )
        .await;
    assert_eq!(deprovisioned.body["active"], true);
    let inactive_still_listed = app
        .patch_ops(
            &path,
            json!([{"op": "Replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(inactive_still_listed.status, 200);
    assert_eq!(
        app.get(&path).await.status,
        200,
        "inactive users are still returned"
    );
}

#[tokio::test]
async fn capitalised_add_sets_a_nick_name() {
    let app = spawn_app().await;
    let path = tutorial_user(&app).await;
    let reply = app
        .patch(
            &path,
            parse(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"nickName","value":"Babs"}]}"#),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["nickName"], "Babs");
}

#[tokio::test]
async fn the_default_multi_operation_replace_body_is_applied() {
    let app = spawn_app().await;
    let path = tutorial_user(&app).await;
    let reply = app
        .patch(
            &path,
            parse(
                r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
  {"op":"Replace","path":"displayName","value":"Pvlo"},
  {"op":"Replace","path":"emails[type eq \"work\"].value","value":"TestBcwqnm@test.microsoft.com"},
  {"op":"Replace","path":"name.givenName","value":"Gtfd"},{"op":"Replace","path":"name.familyName","value":"Pkqf"},
  {"op":"Replace","path":"externalId","value":"Eqpj"},
  {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"Eqpj"}]}"#,
            ),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["displayName"], "Pvlo");
    assert_eq!(
        reply.body["emails"],
        json!([{"type": "work", "value": "TestBcwqnm@test.microsoft.com", "primary": true}])
    );
    assert_eq!(
        reply.body["name"],
        json!({"familyName": "Pkqf", "givenName": "Gtfd"})
    );
    assert_eq!(reply.body["externalId"], "Eqpj");
    assert_eq!(reply.body[ENTERPRISE_SCHEMA]["employeeNumber"], "Eqpj");
    assert_eq!(
        reply.body["schemas"],
        json!([USER_SCHEMA, ENTERPRISE_SCHEMA])
    );
}

#[tokio::test]
async fn a_pathless_replace_with_dotted_and_urn_qualified_keys_sets_those_attributes() {
    let app = spawn_app().await;
    let path = tutorial_user(&app).await;
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
            }}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["displayName"], "Bjfe");
    assert_eq!(
        reply.body["name"],
        json!({"familyName": "Unua", "givenName": "Kkom"})
    );
    assert_eq!(reply.body[ENTERPRISE_SCHEMA]["employeeNumber"], "Aklq");
    let text = reply.body.to_string();
    assert!(
        !text.contains("\"name.givenName\""),
        "no literal dotted key: {text}"
    );
    assert!(
        !text.contains(
            "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber\""
        ),
        "no literal URN-qualified key: {text}"
    );
}

#[tokio::test]
async fn replacing_the_work_email_of_a_user_without_one_creates_it() {
    let app = spawn_app().await;
    let created = app.create_user("no.work.email@example.com").await;
    let path = format!("/Users/{}", str_of(&created, "id"));
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com"}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["emails"],
        json!([{"type": "work", "value": "TestMhvaes@test.microsoft.com"}])
    );
    let found = app
        .get_with(
            "/Users",
            &[(
                "filter",
                "emails[type eq \"work\" and value eq \"testmhvaes@test.microsoft.com\"]",
            )],
        )
        .await;
    assert_eq!(found.total(), 1, "{}", found.body);
}

#[tokio::test]
async fn users_are_found_by_the_work_email_matching_attribute() {
    let app = spawn_app().await;
    let created = app
        .post(
            "/Users",
            json!({"userName": "matched@example.com", "emails": [{"type": "work", "value": "matched@contoso.com"}]}),
        )
        .await;
    let found = app
        .get_with(
            "/Users",
            &[(
                "filter",
                "emails[type eq \"work\"].value eq \"matched@contoso.com\"",
            )],
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.total(), 1);
    assert_eq!(found.resources()[0]["id"], json!(created.id()));
}

#[tokio::test]
async fn members_are_added_with_a_null_ref_and_removed_by_value_array() {
    let app = spawn_app().await;
    let user = app.create_user("member@example.com").await;
    let other = app.create_user("other@example.com").await;
    let user_id = str_of(&user, "id");
    let group = app
        .post(
            "/Groups",
            json!({
                "schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "displayName": "Entra Group",
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "meta": {"resourceType": "Group"}
            }),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let path = format!("/Groups/{}", group.id());
    let added = app
        .patch(
            &path,
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
                {"op": "Add", "path": "members", "value": [{"$ref": null, "value": user_id}, {"$ref": null, "value": other["id"]}]}
            ]}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(app.member_ids(&group.id()).await.len(), 2);
    let removed = app
        .patch(
            &path,
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
                {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": user_id}]}
            ]}),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(
        app.member_ids(&group.id()).await,
        vec![str_of(&other, "id").to_string()]
    );
    let removed_by_filter = app
        .patch_ops(
            &path,
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", str_of(&other, "id"))}]),
        )
        .await;
    assert_eq!(removed_by_filter.status, 200);
    assert!(app.member_ids(&group.id()).await.is_empty());
}

#[tokio::test]
async fn a_manager_added_as_an_array_is_stored_as_one_value() {
    let app = spawn_app().await;
    let manager = app.create_user("boss@example.com").await;
    let manager_id = str_of(&manager, "id");
    let path = tutorial_user(&app).await;
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "Add", "path": "manager", "value": [{"$ref": format!("{}/Users/{manager_id}", app.url("")), "value": manager_id}]}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body[ENTERPRISE_SCHEMA]["manager"]["value"],
        json!(manager_id)
    );
    let removed = app
        .patch_ops(&path, json!([{"op": "Remove", "path": "manager"}]))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(
        removed.body.get(ENTERPRISE_SCHEMA).is_none(),
        "{}",
        removed.body
    );
}

#[tokio::test]
async fn a_manager_sent_as_a_plain_id_string_is_accepted() {
    let app = spawn_app().await;
    let manager = app.create_user("boss@example.com").await;
    let manager_id = str_of(&manager, "id");
    let path = tutorial_user(&app).await;
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": manager_id}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body[ENTERPRISE_SCHEMA]["manager"]["value"],
        json!(manager_id)
    );
}

#[tokio::test]
async fn a_manager_replaced_with_an_empty_value_is_removed() {
    let app = spawn_app().await;
    let manager = app.create_user("boss@example.com").await;
    let path = tutorial_user(&app).await;
    let set = app
        .patch_ops(
            &path,
            json!([{"op": "Add", "path": "manager", "value": [{"value": manager["id"]}]}]),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "Replace", "path": "manager", "value": ""}]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.get(ENTERPRISE_SCHEMA).is_none(),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn the_test_connection_query_on_a_random_guid_is_an_empty_200_list() {
    let app = spawn_app().await;
    for filter in [
        "userName eq \"5f1f7b3c-8a3a-4c52-9a51-3d8e1c4b2f10\"",
        "externalId eq \"5f1f7b3c-8a3a-4c52-9a51-3d8e1c4b2f10\"",
        "userName eq \"non-existent user\"",
    ] {
        let reply = app.get_with("/Users", &[("filter", filter)]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["schemas"], json!([LIST_RESPONSE_SCHEMA]));
        assert_eq!(reply.body["totalResults"], 0);
        assert_eq!(reply.body["Resources"], json!([]));
        assert_eq!(reply.body["startIndex"], 1);
    }
}

#[tokio::test]
async fn groups_are_queried_by_display_name_without_members() {
    let app = spawn_app().await;
    let user = app.create_user("m@example.com").await;
    let group = app
        .create_group("displayName", &[str_of(&user, "id")])
        .await;
    let reply = read(
        app.client
            .get(format!(
                "{}?excludedAttributes=members&filter=displayName%20eq%20%22displayName%22",
                app.url("/Groups")
            ))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.total(), 1, "{}", reply.body);
    assert!(reply.resources()[0].get("members").is_none());
    let by_id = app
        .get_with(
            &format!("/Groups/{}", str_of(&group, "id")),
            &[("excludedAttributes", "members")],
        )
        .await;
    assert_eq!(by_id.status, 200);
    assert!(by_id.body.get("members").is_none());
    assert_eq!(by_id.body["displayName"], "displayName");
}

#[tokio::test]
async fn a_null_update_with_empty_strings_and_then_nulls_reads_back_empty() {
    let app = spawn_app().await;
    let path = tutorial_user(&app).await;
    let attributes = [
        "displayName",
        "nickName",
        "title",
        "name.givenName",
        "externalId",
    ];
    let empty: Vec<_> = attributes
        .iter()
        .map(|attribute| json!({"op": "Replace", "path": attribute, "value": ""}))
        .collect();
    let reply = app.patch_ops(&path, Value::Array(empty)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let nulls: Vec<_> = attributes
        .iter()
        .map(|attribute| json!({"op": "Replace", "path": attribute, "value": null}))
        .collect();
    let reply = app.patch_ops(&path, Value::Array(nulls)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let read_back = app.get(&path).await.body;
    for attribute in ["displayName", "nickName", "title", "externalId"] {
        assert!(
            read_back
                .get(attribute)
                .is_none_or(|value| value == "" || value.is_null()),
            "{attribute}: {read_back}"
        );
    }
    assert!(read_back["name"]
        .get("givenName")
        .is_none_or(|value| value == ""));
}
