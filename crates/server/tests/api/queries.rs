//! Queries: filters, sorting, paging and projections (RFC 7644 sections 3.4 and 3.9).

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Three users besides the admin, with the attributes the filters below pick apart.
async fn people() -> TestApp {
    let app = spawn_app().await;
    for body in [
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "userName": "alice@x.com", "externalId": "EXT-Alice", "title": "Engineer",
            "name": {"givenName": "Alice", "familyName": "Archer"},
            "emails": [{"type": "work", "value": "alice@x.com", "primary": true}, {"type": "home", "value": "alice@home.org"}],
            ENTERPRISE_SCHEMA: {"employeeNumber": "100"}
        }),
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "userName": "bob@y.com", "externalId": "ext-bob", "title": "Manager", "active": false,
            "name": {"givenName": "Bob", "familyName": "Baker"},
            "emails": [{"type": "work", "value": "bob@y.com"}],
            ENTERPRISE_SCHEMA: {"employeeNumber": "200"}
        }),
        json!({
            "userName": "carol@x.com",
            "name": {"givenName": "Carol", "familyName": "Cooper"},
            "emails": [{"type": "home", "value": "carol@x.com"}]
        }),
    ] {
        let reply = app.post("/Users", body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    app
}

async fn user_names(app: &TestApp, filter: &str) -> BTreeSet<String> {
    let reply = app.get_with("/Users", &[("filter", filter)]).await;
    assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
    let names: BTreeSet<String> = names_of(&reply, "userName").into_iter().collect();
    assert_eq!(reply.total(), names.len() as u64, "{filter}");
    names
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

const ADMIN: &str = "admin@scimitar.local";

#[tokio::test]
async fn each_comparison_operator_selects_the_expected_users() {
    let app = people().await;
    let cases: &[(&str, &[&str])] = &[
        ("userName eq \"alice@x.com\"", &["alice@x.com"]),
        (
            "userName ne \"alice@x.com\"",
            &[ADMIN, "bob@y.com", "carol@x.com"],
        ),
        ("userName co \"@x.com\"", &["alice@x.com", "carol@x.com"]),
        ("userName sw \"b\"", &["bob@y.com"]),
        ("userName ew \"y.com\"", &["bob@y.com"]),
        ("title pr", &["alice@x.com", "bob@y.com"]),
        ("externalId pr", &["alice@x.com", "bob@y.com"]),
        ("userName gt \"bob@y.com\"", &["carol@x.com"]),
        ("userName ge \"bob@y.com\"", &["bob@y.com", "carol@x.com"]),
        ("userName lt \"b\"", &[ADMIN, "alice@x.com"]),
        ("userName le \"alice@x.com\"", &[ADMIN, "alice@x.com"]),
        ("active eq false", &["bob@y.com"]),
    ];
    for (filter, expected) in cases {
        assert_eq!(user_names(&app, filter).await, set(expected), "{filter}");
    }
}

#[tokio::test]
async fn logical_operators_and_parentheses_combine_filters() {
    let app = people().await;
    let cases: &[(&str, &[&str])] = &[
        (
            "userName sw \"a\" and active eq true",
            &[ADMIN, "alice@x.com"],
        ),
        (
            "userName eq \"bob@y.com\" or userName eq \"carol@x.com\"",
            &["bob@y.com", "carol@x.com"],
        ),
        ("not (userName co \"@x.com\")", &[ADMIN, "bob@y.com"]),
        (
            "(userName sw \"a\" or userName sw \"b\") and active eq false",
            &["bob@y.com"],
        ),
        (
            "userName sw \"c\" or (title eq \"Engineer\" and not (active eq false))",
            &["alice@x.com", "carol@x.com"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(user_names(&app, filter).await, set(expected), "{filter}");
    }
}

#[tokio::test]
async fn value_paths_sub_attributes_and_urn_qualified_names_filter() {
    let app = people().await;
    let cases: &[(&str, &[&str])] = &[
        (
            "emails[type eq \"work\" and value co \"@x.com\"]",
            &["alice@x.com"],
        ),
        ("emails[type eq \"home\"]", &["alice@x.com", "carol@x.com"]),
        ("emails.value eq \"carol@x.com\"", &["carol@x.com"]),
        ("name.givenName eq \"Bob\"", &["bob@y.com"]),
        ("name.familyName sw \"ar\"", &["alice@x.com"]),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"alice@x.com\"",
            &["alice@x.com"],
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"200\"",
            &["bob@y.com"],
        ),
        ("USERNAME eq \"carol@x.com\"", &["carol@x.com"]),
        ("Name.GivenName eq \"alice\"", &["alice@x.com"]),
    ];
    for (filter, expected) in cases {
        assert_eq!(user_names(&app, filter).await, set(expected), "{filter}");
    }
}

#[tokio::test]
async fn external_id_compares_case_exactly_and_user_name_does_not() {
    let app = people().await;
    assert!(user_names(&app, "externalId eq \"ext-alice\"")
        .await
        .is_empty());
    assert_eq!(
        user_names(&app, "externalId eq \"EXT-Alice\"").await,
        set(&["alice@x.com"])
    );
    assert_eq!(
        user_names(&app, "userName eq \"ALICE@X.COM\"").await,
        set(&["alice@x.com"])
    );
}

#[tokio::test]
async fn meta_last_modified_filters_by_time() {
    let app = people().await;
    assert_eq!(
        user_names(&app, "meta.lastModified gt \"2000-01-01T00:00:00Z\"")
            .await
            .len(),
        4
    );
    assert!(
        user_names(&app, "meta.lastModified gt \"2999-01-01T00:00:00Z\"")
            .await
            .is_empty()
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let bob = app
        .get_with("/Users", &[("filter", "userName eq \"bob@y.com\"")])
        .await;
    let bob_id = str_of(&bob.resources()[0], "id").to_string();
    let patched = app
        .patch_ops(
            &format!("/Users/{bob_id}"),
            json!([{"op": "replace", "path": "title", "value": "Director"}]),
        )
        .await;
    let stamp = str_of(&patched.body["meta"], "lastModified").to_string();
    assert_eq!(
        user_names(&app, &format!("meta.lastModified ge \"{stamp}\"")).await,
        set(&["bob@y.com"])
    );
    assert_eq!(
        user_names(&app, &format!("meta.lastModified lt \"{stamp}\""))
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn a_resource_does_not_match_last_modified_gt_its_own_last_modified() {
    let app = people().await;
    let carol = app
        .get_with("/Users", &[("filter", "userName eq \"carol@x.com\"")])
        .await;
    let stamp = str_of(&carol.resources()[0]["meta"], "lastModified").to_string();
    let names = user_names(&app, &format!("meta.lastModified gt \"{stamp}\"")).await;
    assert!(!names.contains("carol@x.com"), "{stamp}: {names:?}");
}

#[tokio::test]
async fn an_invalid_filter_is_a_400_invalid_filter() {
    let app = people().await;
    for filter in [
        "userName eq",
        "userName zz \"x\"",
        "(userName eq \"x\"",
        "shoeSize eq \"44\"",
        "emails[type eq \"work\"",
        "userName eq \"unterminated",
    ] {
        app.get_with("/Users", &[("filter", filter)])
            .await
            .assert_error(400, Some("invalidFilter"));
    }
}

#[tokio::test]
async fn groups_can_be_found_by_display_name_without_members() {
    let app = spawn_app().await;
    let user = app.create_user("m@example.com").await;
    let group = app.create_group("Sales", &[str_of(&user, "id")]).await;
    let reply = app
        .get_with(
            "/Groups",
            &[
                ("filter", "displayName eq \"sales\""),
                ("excludedAttributes", "members"),
            ],
        )
        .await;
    assert_eq!(reply.total(), 1, "{}", reply.body);
    let found = &reply.resources()[0];
    assert_eq!(found["id"], group["id"]);
    assert!(found.get("members").is_none(), "{found}");
    let with_members = app
        .get_with("/Groups", &[("filter", "displayName eq \"Sales\"")])
        .await;
    assert_eq!(
        member_ids_of(&with_members.resources()[0]),
        vec![str_of(&user, "id").to_string()]
    );
}

#[tokio::test]
async fn groups_can_be_found_by_member() {
    let app = spawn_app().await;
    let user = app.create_user("m@example.com").await;
    let other = app.create_user("o@example.com").await;
    let user_id = str_of(&user, "id");
    app.create_group("with", &[user_id]).await;
    app.create_group("without", &[str_of(&other, "id")]).await;
    let reply = app
        .get_with(
            "/Groups",
            &[("filter", &format!("members[value eq \"{user_id}\"]"))],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut names = names_of(&reply, "displayName");
    names.sort();
    assert_eq!(names, ["users", "with"]);
}

#[tokio::test]
async fn results_sort_by_any_attribute_in_either_order() {
    let app = people().await;
    let ascending = app.get_with("/Users", &[("sortBy", "userName")]).await;
    assert_eq!(
        names_of(&ascending, "userName"),
        [ADMIN, "alice@x.com", "bob@y.com", "carol@x.com"]
    );
    let descending = app
        .get_with(
            "/Users",
            &[("sortBy", "userName"), ("sortOrder", "descending")],
        )
        .await;
    assert_eq!(
        names_of(&descending, "userName"),
        ["carol@x.com", "bob@y.com", "alice@x.com", ADMIN]
    );
    let by_given_name = app
        .get_with(
            "/Users",
            &[
                ("sortBy", "name.givenName"),
                ("sortOrder", "descending"),
                ("filter", "name.givenName pr"),
            ],
        )
        .await;
    assert_eq!(
        names_of(&by_given_name, "userName"),
        ["carol@x.com", "bob@y.com", "alice@x.com"]
    );
}

#[tokio::test]
async fn paging_returns_the_requested_window_and_the_true_total() {
    let app = people().await;
    let page = app
        .get_with(
            "/Users",
            &[("sortBy", "userName"), ("startIndex", "2"), ("count", "2")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.total(), 4);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 2);
    assert_eq!(names_of(&page, "userName"), ["alice@x.com", "bob@y.com"]);
    let last = app
        .get_with(
            "/Users",
            &[("sortBy", "userName"), ("startIndex", "4"), ("count", "2")],
        )
        .await;
    assert_eq!(names_of(&last, "userName"), ["carol@x.com"]);
    let beyond = app
        .get_with("/Users", &[("startIndex", "10"), ("count", "2")])
        .await;
    assert_eq!(beyond.total(), 4);
    assert!(beyond.resources().is_empty());
}

#[tokio::test]
async fn count_zero_returns_only_the_total() {
    let app = people().await;
    let reply = app.get_with("/Users", &[("count", "0")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.total(), 4);
    assert_eq!(reply.body["itemsPerPage"], 0);
    assert!(reply.body["Resources"]
        .as_array()
        .is_none_or(|resources| resources.is_empty()));
}

#[tokio::test]
async fn a_non_numeric_count_is_a_400_invalid_value() {
    let app = spawn_app().await;
    app.get_with("/Users", &[("count", "ten")])
        .await
        .assert_error(400, Some("invalidValue"));
}

fn keys(document: &Value) -> BTreeSet<String> {
    document.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn attributes_and_excluded_attributes_shape_get_and_list() {
    let app = people().await;
    let listed = app
        .get_with("/Users", &[("filter", "userName eq \"alice@x.com\"")])
        .await;
    let id = str_of(&listed.resources()[0], "id").to_string();
    let path = format!("/Users/{id}");
    let only = app.get_with(&path, &[("attributes", "userName")]).await;
    assert_eq!(keys(&only.body), set(&["id", "schemas", "userName"]));
    let sub = app
        .get_with(&path, &[("attributes", "name.givenName,emails.value")])
        .await;
    assert_eq!(sub.body["name"], json!({"givenName": "Alice"}));
    assert_eq!(
        sub.body["emails"],
        json!([{"value": "alice@x.com"}, {"value": "alice@home.org"}])
    );
    let extension = app
        .get_with(
            &path,
            &[("attributes", &format!("{ENTERPRISE_SCHEMA}:employeeNumber"))],
        )
        .await;
    assert_eq!(
        extension.body[ENTERPRISE_SCHEMA],
        json!({"employeeNumber": "100"})
    );
    let excluded = app
        .get_with(&path, &[("excludedAttributes", "emails,name,groups")])
        .await;
    for gone in ["emails", "name", "groups"] {
        assert!(excluded.body.get(gone).is_none(), "{}", excluded.body);
    }
    assert_eq!(excluded.body["userName"], "alice@x.com");
    assert_eq!(excluded.body["id"], json!(id), "id is always returned");
    let list = app
        .get_with("/Users", &[("attributes", "userName,active")])
        .await;
    for resource in list.resources() {
        assert!(keys(resource).is_subset(&set(&["id", "schemas", "userName", "active"])));
    }
    let list_excluded = app
        .get_with("/Users", &[("excludedAttributes", "meta")])
        .await;
    assert!(list_excluded
        .resources()
        .iter()
        .all(|resource| resource.get("meta").is_none()));
}

#[tokio::test]
async fn search_by_post_takes_the_same_parameters_per_type() {
    let app = people().await;
    let reply = app
        .post(
            "/Users/.search",
            json!({
                "schemas": [SEARCH_REQUEST_SCHEMA],
                "filter": "userName co \"@x.com\"",
                "attributes": ["userName"],
                "sortBy": "userName",
                "sortOrder": "descending",
                "startIndex": 1,
                "count": 10
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["schemas"], json!([LIST_RESPONSE_SCHEMA]));
    assert_eq!(names_of(&reply, "userName"), ["carol@x.com", "alice@x.com"]);
    for resource in reply.resources() {
        assert_eq!(keys(resource), set(&["id", "schemas", "userName"]));
    }
    let excluded = app
        .post(
            "/Groups/.search",
            json!({"excludedAttributes": "members", "filter": "displayName eq \"users\""}),
        )
        .await;
    assert_eq!(excluded.total(), 1);
    assert!(excluded.resources()[0].get("members").is_none());
    app.post("/Users/.search", json!({"filter": "userName eq"}))
        .await
        .assert_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn search_at_the_root_spans_every_resource_type() {
    let app = people().await;
    app.create_service_principal("robot").await;
    let everything = app.post("/.search", json!({})).await;
    assert_eq!(everything.status, 200, "{}", everything.body);
    // Four users, the two built-in groups and one service principal.
    assert_eq!(everything.total(), 7);
    assert_eq!(everything.resources().len(), 7);
    let kinds: BTreeSet<String> = everything
        .resources()
        .iter()
        .map(|resource| str_of(&resource["meta"], "resourceType").to_string())
        .collect();
    assert_eq!(kinds, set(&["Group", "ServicePrincipal", "User"]));
    let named = app
        .post(
            "/.search",
            json!({"filter": "displayName eq \"robot\"", "attributes": ["displayName"]}),
        )
        .await;
    assert_eq!(named.total(), 1, "{}", named.body);
    assert_eq!(
        keys(&named.resources()[0]),
        set(&["id", "schemas", "displayName"])
    );
    let paged = app
        .post("/.search", json!({"startIndex": 3, "count": 3}))
        .await;
    assert_eq!(paged.total(), 7);
    assert_eq!(paged.resources().len(), 3);
    assert_eq!(paged.body["startIndex"], 3);
}

#[tokio::test]
async fn writes_honour_attributes_and_excluded_attributes_in_their_response() {
    let app = spawn_app().await;
    let created = app
        .post_with(
            "/Users",
            &[("attributes", "userName")],
            json!({"userName": "shaped@example.com", "title": "T", "name": {"givenName": "S"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(keys(&created.body), set(&["id", "schemas", "userName"]));
    let path = format!("/Users/{}", created.id());
    let replaced = read(
        app.scim(reqwest::Method::PUT, &path)
            .query(&[("excludedAttributes", "name,groups")])
            .json(&json!({"userName": "shaped@example.com", "title": "U", "name": {"givenName": "S"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert!(replaced.body.get("name").is_none());
    assert!(replaced.body.get("groups").is_none());
    assert_eq!(replaced.body["title"], "U");
    let patched = app
        .patch_with(
            &path,
            &[("attributes", "title")],
            patch_op(json!([{"op": "replace", "path": "title", "value": "V"}])),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(keys(&patched.body), set(&["id", "schemas", "title"]));
    assert_eq!(patched.body["title"], "V");
}
