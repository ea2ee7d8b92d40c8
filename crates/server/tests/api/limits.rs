//! Request limits that bound one request's memory and work: body sizes per endpoint, the number
//! of JSON values in a body, attribute lengths, the size of a list page, the changes in one Unity
//! Catalog permissions update, and filters as long as the parser allows on both databases.

use crate::support::*;
use crate::unity_catalog::{databricks_error, uc};
use reqwest::Method;
use serde_json::{json, Value};

const MEBIBYTE: usize = 1024 * 1024;

/// A request to an absolute path with the admin token and a raw JSON body.
async fn send_raw(app: &TestApp, method: Method, path: &str, body: String) -> Reply {
    read(
        app.request(method, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

/// A user document padded past `size` bytes with a long nickName.
fn user_of_size(user_name: &str, size: usize) -> String {
    json!({"userName": user_name, "nickName": "x".repeat(size)}).to_string()
}

#[tokio::test]
async fn a_resource_body_over_one_mebibyte_is_a_413_in_the_scim_shape_on_every_mount() {
    let app = spawn_app().await;
    for prefix in [SCIM, "/api/2.0/preview/scim/v2"] {
        let reply = send_raw(
            &app,
            Method::POST,
            &format!("{prefix}/Users"),
            user_of_size("big@example.com", MEBIBYTE + 1024),
        )
        .await;
        reply.assert_error(413, None);
    }
    let user = app.create_user("small@example.com").await;
    let path = format!("{SCIM}/Users/{}", str_of(&user, "id"));
    send_raw(
        &app,
        Method::PUT,
        &path,
        user_of_size("small@example.com", MEBIBYTE + 1024),
    )
    .await
    .assert_error(413, None);
    let search = json!({"schemas": [SEARCH_REQUEST_SCHEMA], "filter": "x".repeat(MEBIBYTE + 1024)});
    send_raw(
        &app,
        Method::POST,
        &format!("{SCIM}/Users/.search"),
        search.to_string(),
    )
    .await
    .assert_error(413, None);
    assert_eq!(app.get("/Users").await.total(), 2, "nothing was created");
}

#[tokio::test]
async fn a_body_of_many_small_values_is_a_413_before_it_is_parsed() {
    let app = spawn_app().await;
    // 200,000 values in 400 KB: under the byte limit, but thirty times its size once parsed.
    let zeros = vec!["0"; 200_000].join(",");
    let body = format!(r#"{{"userName": "many@example.com", "x": [{zeros}]}}"#);
    assert!(body.len() < MEBIBYTE);
    let reply = send_raw(&app, Method::POST, &format!("{SCIM}/Users"), body).await;
    reply.assert_error(413, None);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("JSON values"),
        "{}",
        reply.body
    );
    // A PATCH adding ten thousand members by value is far from the bound.
    let group = app.create_group("wide", &[]).await;
    let members: Vec<Value> = (0..10_000)
        .map(|n| json!({"value": format!("no-such-member-{n}")}))
        .collect();
    let reply = app
        .patch_ops(
            &format!("/Groups/{}", str_of(&group, "id")),
            json!([{"op": "add", "path": "members", "value": members}]),
        )
        .await;
    assert_ne!(reply.status, 413, "{}", reply.body);
}

#[tokio::test]
async fn rest_bodies_over_their_limit_are_a_413_in_the_databricks_shape() {
    let app = spawn_app().await;
    let padded = |size: usize| json!({"padding": "x".repeat(size)}).to_string();
    let cases = [
        (
            Method::PUT,
            "/api/2.0/permissions/jobs/1",
            padded(MEBIBYTE + 1024),
        ),
        (
            Method::PATCH,
            "/api/2.0/permissions/jobs/1",
            padded(MEBIBYTE + 1024),
        ),
        (
            Method::POST,
            "/api/2.0/workspace/mkdirs",
            padded(64 * 1024 + 16),
        ),
        (
            Method::POST,
            "/api/2.0/workspace/delete",
            padded(64 * 1024 + 16),
        ),
        (
            Method::POST,
            "/api/2.0/workspace/import",
            padded(10 * MEBIBYTE + 1024),
        ),
        (
            Method::PATCH,
            "/api/2.1/unity-catalog/permissions/catalog/main",
            padded(MEBIBYTE + 1024),
        ),
    ];
    for (method, path, body) in cases {
        let reply = send_raw(&app, method.clone(), path, body).await;
        let message = databricks_error(&reply, 413, "INVALID_PARAMETER_VALUE");
        assert!(
            message.contains("larger than"),
            "{method} {path}: {message}"
        );
    }
    // Under its limit, an import is read (and refused for what it says, not for its size).
    let import =
        json!({"path": "/Shared/big", "language": "PYTHON", "content": "x".repeat(2 * MEBIBYTE)});
    let reply = send_raw(
        &app,
        Method::POST,
        "/api/2.0/workspace/import",
        import.to_string(),
    )
    .await;
    assert_ne!(reply.status, 413, "{}", reply.body);
}

/// The change token a write answered with.
fn change_token(reply: &Reply) -> u64 {
    reply
        .header("scimitar-change-token")
        .and_then(|token| token.parse().ok())
        .unwrap_or_else(|| panic!("no change token: {:?}", reply.headers))
}

async fn patch_privileges(app: &TestApp, changes: Value) -> Reply {
    uc(
        app,
        Method::PATCH,
        "/permissions/catalog/main",
        &app.token,
        Some(json!({ "changes": changes })),
    )
    .await
}

#[tokio::test]
async fn ten_thousand_identical_permission_changes_write_one() {
    let app = spawn_app().await;
    let created = uc(
        &app,
        Method::POST,
        "/catalogs",
        &app.token,
        Some(json!({"name": "main"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    for name in ["ann@example.com", "ben@example.com", "cat@example.com"] {
        app.create_user(name).await;
    }
    let grant = |principal: &str| json!({"principal": principal, "add": ["USE_CATALOG"]});
    let first = patch_privileges(&app, json!([grant("ann@example.com")])).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = patch_privileges(&app, json!([grant("ben@example.com")])).await;
    let one_change = change_token(&second) - change_token(&first);
    assert!(one_change >= 1);
    let repeated: Vec<Value> = (0..10_000).map(|_| grant("cat@example.com")).collect();
    let third = patch_privileges(&app, Value::Array(repeated)).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(
        change_token(&third) - change_token(&second),
        one_change,
        "ten thousand identical changes are logged as one"
    );
    assert_eq!(
        third.body["privilege_assignments"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // An identical entry after one that undid it is not a repetition: add, remove, add.
    let undone = patch_privileges(
        &app,
        json!([
            {"principal": "cat@example.com", "remove": ["USE_CATALOG"]},
            {"principal": "cat@example.com", "add": ["USE_CATALOG"]},
            {"principal": "cat@example.com", "remove": ["USE_CATALOG"]},
        ]),
    )
    .await;
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert_eq!(
        undone.body["privilege_assignments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn more_than_a_thousand_distinct_permission_changes_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    uc(
        &app,
        Method::POST,
        "/catalogs",
        &app.token,
        Some(json!({"name": "main"})),
    )
    .await;
    app.create_user("dan@example.com").await;
    // Alternating privileges: no entry repeats the one before it for the principal.
    let changes: Vec<Value> = (0..1_001)
        .map(|n| {
            let privilege = if n % 2 == 0 { "USE_CATALOG" } else { "BROWSE" };
            json!({"principal": "dan@example.com", "add": [privilege]})
        })
        .collect();
    let refused = patch_privileges(&app, Value::Array(changes.clone())).await;
    let message = databricks_error(&refused, 400, "INVALID_PARAMETER_VALUE");
    assert!(message.contains("1000"), "{message}");
    let now = uc(
        &app,
        Method::GET,
        "/permissions/catalog/main",
        &app.token,
        None,
    )
    .await;
    assert_eq!(now.body["privilege_assignments"], json!([]));
    let allowed = patch_privileges(&app, Value::Array(changes[..1_000].to_vec())).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
}

/// Runs an async test on a thread with a large stack. A filter of a thousand comparisons is a
/// tree a thousand deep, which the filter resolver walks recursively: a release build's frames
/// are small, but an unoptimised build's take more than a test thread's 2 MiB stack.
fn on_a_large_stack<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::Builder::new()
        .stack_size(512 * MEBIBYTE)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(test())
        })
        .unwrap()
        .join()
        .unwrap();
}

/// `userName eq "..." or ...` with `comparisons` comparisons, three of which name real users.
fn long_filter(comparisons: usize) -> String {
    (0..comparisons)
        .map(|n| match n {
            0 => "userName eq \"a0@example.com\"".to_string(),
            n if n == comparisons / 2 => "userName eq \"a1@example.com\"".to_string(),
            n if n == comparisons - 1 => "userName eq \"a2@example.com\"".to_string(),
            n => format!("userName eq \"nobody{n}@example.com\""),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

async fn search_users(app: &TestApp, filter: String) -> Reply {
    app.post(
        "/Users/.search",
        json!({"schemas": [SEARCH_REQUEST_SCHEMA], "filter": filter}),
    )
    .await
}

#[test]
fn filters_up_to_the_comparison_limit_answer_and_longer_ones_are_invalid_filter() {
    on_a_large_stack(|| async {
        let app = spawn_app().await;
        for n in 0..3 {
            app.create_user(&format!("a{n}@example.com")).await;
        }
        let limit = scimitar_scim::limits::MAX_COMPARISONS;
        for comparisons in [998, limit] {
            let reply = search_users(&app, long_filter(comparisons)).await;
            assert_eq!(reply.status, 200, "{comparisons}: {}", reply.body);
            assert_eq!(reply.total(), 3, "{comparisons}");
            // The same chain under `and` with an always-true test, and negated.
            let nested = format!("active eq true and ({})", long_filter(comparisons - 1));
            assert_eq!(search_users(&app, nested).await.total(), 3);
            let negated = format!("not ({})", long_filter(comparisons - 1));
            assert_eq!(
                search_users(&app, negated).await.total(),
                1,
                "only the admin"
            );
        }
        for comparisons in [limit + 1, 2_000] {
            search_users(&app, long_filter(comparisons))
                .await
                .assert_error(400, Some("invalidFilter"));
        }
    });
}

#[tokio::test]
async fn attributes_over_their_limits_are_invalid_value_naming_the_attribute_and_limit() {
    let app = spawn_app().await;
    let long = |characters: usize| "é".repeat(characters);
    let cases = [
        (
            "/Users",
            json!({"userName": long(257)}),
            "'userName'",
            "256",
        ),
        (
            "/Users",
            json!({"userName": "a@example.com", "displayName": long(257)}),
            "'displayName'",
            "256",
        ),
        (
            "/Users",
            json!({"userName": "a@example.com", "name": {"givenName": long(257)}}),
            "'name.givenName'",
            "256",
        ),
        (
            "/Users",
            json!({"userName": "a@example.com", "externalId": long(257)}),
            "'externalId'",
            "256",
        ),
        (
            "/Users",
            json!({"userName": "a@example.com", "emails": [{"value": long(257)}]}),
            "'emails.value'",
            "256",
        ),
        (
            "/Users",
            json!({"userName": "a@example.com",
                   "emails": (0..101).map(|n| json!({"value": format!("{n}@example.com")})).collect::<Vec<_>>()}),
            "'emails'",
            "100",
        ),
        (
            "/Groups",
            json!({"displayName": long(257)}),
            "'displayName'",
            "256",
        ),
        (
            "/Groups",
            json!({"displayName": "g", "entitlements": [{"value": long(257)}]}),
            "'entitlements.value'",
            "256",
        ),
        (
            "/ServicePrincipals",
            json!({"displayName": "sp", "applicationId": long(257)}),
            "'applicationId'",
            "256",
        ),
        (
            "/Users",
            json!({"userName": "a@example.com",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": long(257)}}),
            "department'",
            "256",
        ),
    ];
    for (path, body, attribute, limit) in cases {
        let reply = app.post(path, body).await;
        reply.assert_error(400, Some("invalidValue"));
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(attribute) && detail.contains(limit),
            "{path}: {detail}"
        );
    }
    // At the limit is accepted; counted in characters, not bytes.
    let user = app
        .post(
            "/Users",
            json!({"userName": "b@example.com", "displayName": long(256)}),
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.body);
    // A PATCH past a limit changes nothing.
    let path = format!("/Users/{}", user.id());
    let patched = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "displayName", "value": long(257)}]),
        )
        .await;
    patched.assert_error(400, Some("invalidValue"));
    assert_eq!(app.get(&path).await.body["displayName"], json!(long(256)));
    // Many values each within limits still make a resource too large to store.
    let emails: Vec<Value> = (0..100)
        .map(|n| json!({"value": format!("{n}{}@example.com", "x".repeat(200))}))
        .collect();
    let phones: Vec<Value> = (0..100)
        .map(|n| json!({"value": format!("+{n}{}", "1".repeat(200))}))
        .collect();
    let big = app
        .post(
            "/Users",
            json!({"userName": "c@example.com", "emails": emails, "phoneNumbers": phones}),
        )
        .await;
    big.assert_error(400, Some("invalidValue"));
    assert!(big.body["detail"].as_str().unwrap().contains("16384"));
}

#[tokio::test]
async fn the_schemas_document_states_each_writable_attributes_limits() {
    let app = spawn_app().await;
    let user = app
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    let attribute = |name: &str| -> Value {
        user.body["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|attribute| attribute["name"] == name)
            .cloned()
            .unwrap()
    };
    let description = |value: &Value| value["description"].as_str().unwrap().to_string();
    assert!(description(&attribute("userName")).ends_with("At most 256 characters."));
    let emails = attribute("emails");
    assert!(description(&emails).ends_with("At most 100 values."));
    let value = emails["subAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sub| sub["name"] == "value")
        .cloned()
        .unwrap();
    assert!(description(&value).ends_with("At most 256 characters."));
    assert!(
        !description(&attribute("groups")).contains("At most"),
        "read-only"
    );
}

/// Creates `count` users through `/Bulk`, each from `user(n)`, in requests under its limit.
async fn bulk_users(
    app: &TestApp,
    count: usize,
    per_request: usize,
    user: impl Fn(usize) -> Value,
) {
    let indices: Vec<usize> = (0..count).collect();
    for chunk in indices.chunks(per_request) {
        let operations: Vec<Value> = chunk
            .iter()
            .map(|n| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": user(*n)}))
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
        }
    }
}

/// Every page of a list, paging on by `itemsPerPage` as RFC 7644 says; with each page's body
/// length.
async fn all_pages(app: &TestApp, path: &str) -> Vec<(usize, Reply)> {
    let mut pages = Vec::new();
    let mut start = 1u64;
    loop {
        let response = app
            .scim(Method::GET, path)
            .query(&[("count", "1000"), ("startIndex", &start.to_string())])
            .send()
            .await
            .expect("sent");
        let text = response.text().await.unwrap();
        let reply = Reply {
            status: 200,
            headers: Default::default(),
            body: serde_json::from_str(&text).unwrap(),
        };
        let items = reply.body["itemsPerPage"].as_u64().unwrap();
        assert_eq!(items as usize, reply.resources().len());
        assert_eq!(reply.body["startIndex"].as_u64().unwrap(), start);
        assert!(items > 0);
        start += items;
        let done = start > reply.total();
        pages.push((text.len(), reply));
        if done {
            return pages;
        }
    }
}

#[tokio::test]
async fn a_list_page_of_large_users_ends_at_its_byte_budget_and_pages_on() {
    let app = spawn_app().await;
    // 720 users of about 12.5 KB each: 9 MB in all, more than one page may carry.
    let emails = |n: usize| -> Vec<Value> {
        (0..50)
            .map(|e| json!({"value": format!("{n}-{e}-{}@example.com", "x".repeat(220))}))
            .collect()
    };
    bulk_users(
        &app,
        720,
        60,
        |n| json!({"userName": format!("big{n}@example.com"), "emails": emails(n)}),
    )
    .await;
    let pages = all_pages(&app, "/Users").await;
    assert!(pages.len() >= 2, "the budget ends the first page early");
    let budget = 8 * MEBIBYTE;
    for (length, _) in &pages {
        assert!(*length <= budget + 4096, "a page of {length} bytes");
    }
    let mut ids: Vec<String> = pages
        .iter()
        .flat_map(|(_, page)| {
            page.resources()
                .iter()
                .map(|user| str_of(user, "id").to_string())
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 721, "every user once, the admin too");
}

#[tokio::test]
async fn a_list_page_of_large_groups_ends_at_its_member_budget_and_pages_on() {
    let app = spawn_app().await;
    bulk_users(
        &app,
        6_000,
        1_000,
        |n| json!({"userName": format!("m{n}@example.com")}),
    )
    .await;
    let everyone: Vec<Value> = app
        .get_with("/Users", &[("count", "1000"), ("attributes", "id")])
        .await
        .resources()
        .clone();
    assert_eq!(everyone.len(), 1_000);
    let mut ids: Vec<String> = Vec::new();
    for start in (1..=6_001).step_by(1_000) {
        let page = app
            .get_with(
                "/Users",
                &[
                    ("count", "1000"),
                    ("attributes", "id"),
                    ("startIndex", &start.to_string()),
                ],
            )
            .await;
        ids.extend(
            page.resources()
                .iter()
                .map(|user| str_of(user, "id").to_string()),
        );
    }
    assert_eq!(ids.len(), 6_001);
    let members: Vec<Value> = ids[..6_000].iter().map(|id| json!({"value": id})).collect();
    for name in ["big-a", "big-b", "big-c", "big-d"] {
        let group = app.create_group(name, &[]).await;
        let reply = app
            .patch_ops(
                &format!("/Groups/{}", str_of(&group, "id")),
                json!([{"op": "add", "path": "members", "value": members}]),
            )
            .await;
        assert!(reply.status == 200 || reply.status == 204, "{}", reply.body);
    }
    let pages = all_pages(&app, "/Groups").await;
    assert!(pages.len() >= 2, "24,000 members do not fit one page");
    let mut seen = 0;
    for (_, page) in &pages {
        let on_page: usize = page
            .resources()
            .iter()
            .map(|group| group["members"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(
            on_page <= 20_000 || page.resources().len() == 1,
            "{on_page} members on a page"
        );
        for group in page.resources() {
            if str_of(group, "displayName").starts_with("big-") {
                assert_eq!(
                    group["members"].as_array().unwrap().len(),
                    6_000,
                    "listed whole"
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 4);
    // Without members, the same groups fit one page.
    let without = app
        .get_with("/Groups", &[("excludedAttributes", "members")])
        .await;
    assert_eq!(without.resources().len() as u64, without.total());
}

#[tokio::test]
async fn securable_names_and_comments_have_limits_in_the_databricks_shape() {
    let app = spawn_app().await;
    let create = |body: Value| uc(&app, Method::POST, "/catalogs", &app.token, Some(body));
    let long_name = create(json!({"name": "n".repeat(256)})).await;
    databricks_error(&long_name, 400, "INVALID_PARAMETER_VALUE");
    let long_comment = create(json!({"name": "main", "comment": "c".repeat(1025)})).await;
    let message = databricks_error(&long_comment, 400, "INVALID_PARAMETER_VALUE");
    assert!(message.contains("1024"), "{message}");
    let statement = read(
        app.request(Method::POST, "/api/2.0/sql/statements")
            .json(
                &json!({"statement": format!("CREATE SCHEMA main.s COMMENT '{}'", "c".repeat(1025)),
                          "warehouse_id": "w"}),
            )
            .send()
            .await
            .expect("sent"),
    )
    .await;
    // A statement that fails is answered 200 with the failure inside, as Databricks does.
    assert_eq!(
        statement.body["status"]["state"], "FAILED",
        "{}",
        statement.body
    );
    assert!(
        statement.body.to_string().contains("1024"),
        "{}",
        statement.body
    );
    let fits = create(json!({"name": "n".repeat(255), "comment": "c".repeat(1024)})).await;
    assert_eq!(fits.status, 200, "{}", fits.body);
}
