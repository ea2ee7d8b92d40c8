//! Several nodes over one database behave as one server: a second application started on the
//! first one's database (SQLite here, or PostgreSQL with `SCIMITAR_TEST_BACKEND=postgres`)
//! serves the same identities, keeps uniqueness under races, and, given the change token of a
//! write made on the other node, answers as if it had made the write itself.

use crate::support::*;
use reqwest::Method;
use scimitar_app::service::Services;
use scimitar_domain::{RandomIds, SystemClock};
use scimitar_server::Application;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A second node: the same application over an existing database, without bootstrapping.
pub(crate) struct Node {
    pub(crate) address: String,
    _shutdown: oneshot::Sender<()>,
}

pub(crate) async fn node_on(url: &str) -> Node {
    let store = scimitar_store::open(url).await.expect("the store opens");
    let services = Services::new(store, Arc::new(SystemClock), Arc::new(RandomIds));
    let application = Application::bind("127.0.0.1:0", services)
        .await
        .expect("binds a free port");
    let address = format!("http://{}", application.local_addr().expect("an address"));
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    Node {
        address,
        _shutdown: shutdown,
    }
}

impl Node {
    /// The status of `GET /api/2.0/preview/scim/v2/Me` on this node with `token`, carrying
    /// `read_after` as `Scimitar-Read-After` when given: whether the node takes the credential.
    pub(crate) async fn me_status(
        &self,
        app: &TestApp,
        token: &str,
        read_after: Option<&str>,
    ) -> u16 {
        let mut request = app
            .client
            .get(format!("{}/api/2.0/preview/scim/v2/Me", self.address))
            .bearer_auth(token);
        if let Some(change) = read_after {
            request = request.header("scimitar-read-after", change);
        }
        read(request.send().await.unwrap()).await.status
    }
}

pub(crate) async fn two_nodes() -> (TestApp, Node) {
    let (database, url) = TestDatabase::fresh().await;
    let first = spawn_app_on(database, &url).await;
    let second = node_on(&url).await;
    (first, second)
}

/// A request to `node` under `/scim/v2`, with the first node's admin token.
fn on(app: &TestApp, node: &Node, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, format!("{}{SCIM}{path}", node.address))
        .bearer_auth(&app.token)
}

pub(crate) fn change_token(reply: &Reply) -> String {
    reply
        .header("scimitar-change-token")
        .expect("a write answers with a change token")
        .to_string()
}

#[tokio::test]
async fn a_write_on_one_node_is_seen_on_the_other_with_its_change_token() {
    let (app, other) = two_nodes().await;
    let created = app
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "carol@example.com"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let user_id = created.id();
    // Storage reads are current on every node; with the creation's token the other node has
    // also applied it, so from here on it answers her groups from its own engine.
    let first_read = read(
        on(&app, &other, Method::GET, &format!("/Users/{user_id}"))
            .header("scimitar-read-after", change_token(&created))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first_read.status, 200);
    let before = first_read.body["groups"].as_array().unwrap().len();
    let group = app.create_group("night-shift", &[]).await;
    let group_id = group["id"].as_str().unwrap();
    let patched = app
        .patch_ops(
            &format!("/Groups/{group_id}"),
            json!([{"op": "add", "path": "members", "value": [{"value": user_id}]}]),
        )
        .await;
    assert_eq!(patched.status, 200);
    let token = change_token(&patched);
    // With the token, the other node answers only once it has applied that write.
    let seen = read(
        on(&app, &other, Method::GET, &format!("/Users/{user_id}"))
            .header("scimitar-read-after", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen.status, 200);
    let groups: Vec<&str> = seen.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["display"].as_str().unwrap())
        .collect();
    assert_eq!(groups.len(), before + 1);
    assert!(groups.contains(&"night-shift"), "{groups:?}");
}

#[tokio::test]
async fn without_a_token_the_other_node_catches_up_on_its_own() {
    let (app, other) = two_nodes().await;
    let user = app.create_user("dan@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_string();
    let path = format!("/Users/{user_id}");
    assert_eq!(
        read(on(&app, &other, Method::GET, &path).send().await.unwrap())
            .await
            .status,
        200
    );
    let reply = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "displayName", "value": "Daniel"}]),
        )
        .await;
    assert_eq!(reply.status, 200);
    // The follower reads the log every 100 ms; allow it many intervals on a busy machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = read(on(&app, &other, Method::GET, &path).send().await.unwrap()).await;
        if seen.body["displayName"] == "Daniel" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other node never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_nodes_creating_one_user_name_at_once_make_exactly_one_user() {
    let (app, other) = two_nodes().await;
    for round in 0..5 {
        let body =
            json!({"schemas": [USER_SCHEMA], "userName": format!("race-{round}@example.com")});
        let first = on(&app, &other, Method::POST, "/Users").json(&body).send();
        let second = app.scim(Method::POST, "/Users").json(&body).send();
        let (first, second) = tokio::join!(first, second);
        let mut statuses = [
            first.unwrap().status().as_u16(),
            second.unwrap().status().as_u16(),
        ];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
}

#[tokio::test]
async fn a_principal_deactivated_on_one_node_is_refused_by_the_other_given_the_token() {
    let (app, other) = two_nodes().await;
    let me = app.get("/Me").await;
    app.add_second_admin().await;
    // The other node has seen the token and the principal.
    assert_eq!(
        read(on(&app, &other, Method::GET, "/Me").send().await.unwrap())
            .await
            .status,
        200
    );
    let reply = app
        .patch_ops(
            &format!("/Users/{}", me.id()),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    let token = change_token(&reply);
    let refused = read(
        on(&app, &other, Method::GET, "/Users")
            .header("scimitar-read-after", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused.assert_error(401, None);
}

#[tokio::test]
async fn an_admin_removed_on_one_node_cannot_write_through_the_other_with_its_next_request() {
    let (app, other) = two_nodes().await;
    let deputy = app.create_user("deputy@example.com").await;
    let deputy_id = deputy["id"].as_str().unwrap().to_string();
    let token = app.token_for(&deputy_id).await;
    let admins = app.system_group_id("admins").await;
    let joined = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "add", "path": "members", "value": [{"value": deputy_id}]}]),
        )
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let create = |name: &str| {
        app.client
            .post(format!("{}{SCIM}/Users", other.address))
            .bearer_auth(&token)
            .json(&json!({"schemas": [USER_SCHEMA], "userName": name}))
    };
    // The other node learns of the promotion from storage (authorizing a write reads the log).
    let first = read(create("first@example.com").send().await.unwrap()).await;
    assert_eq!(first.status, 201, "{}", first.body);

    let removed = app
        .patch_ops(
            &format!("/Groups/{admins}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{deputy_id}\"]")}]),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    // At once, with no change token and well inside the follower's interval.
    let second = read(create("second@example.com").send().await.unwrap()).await;
    assert_eq!(second.status, 403, "{}", second.body);
    second.assert_error(403, None);
}

#[tokio::test]
async fn a_change_token_that_is_not_a_number_or_is_from_the_future_is_a_400() {
    let app = spawn_app().await;
    for bad in ["soon", "18446744073709551615"] {
        let reply = read(
            app.scim(Method::GET, "/Users")
                .header("scimitar-read-after", bad)
                .send()
                .await
                .unwrap(),
        )
        .await;
        reply.assert_error(400, Some("invalidValue"));
    }
}

#[tokio::test]
async fn membership_changes_through_both_nodes_at_once_lose_nothing() {
    let (app, other) = two_nodes().await;
    let group = app.create_group("both-nodes", &[]).await;
    let group_id = group["id"].as_str().unwrap().to_string();
    let mut user_ids = Vec::new();
    for index in 0..20 {
        let user = app
            .create_user(&format!("member-{index}@example.com"))
            .await;
        user_ids.push(user["id"].as_str().unwrap().to_string());
    }
    // Each user is added by its own PATCH, alternating nodes, all at once.
    let adds = user_ids.iter().enumerate().map(|(index, user_id)| {
        let body = json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
        });
        let request = if index % 2 == 0 {
            app.scim(Method::PATCH, &format!("/Groups/{group_id}"))
        } else {
            on(&app, &other, Method::PATCH, &format!("/Groups/{group_id}"))
        };
        tokio::spawn(async move { request.json(&body).send().await.unwrap().status().as_u16() })
    });
    let mut statuses = Vec::new();
    for add in adds.collect::<Vec<_>>() {
        statuses.push(add.await.unwrap());
    }
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    let mut members = app.member_ids(&group_id).await;
    members.sort();
    user_ids.sort();
    assert_eq!(members, user_ids);
}

#[tokio::test]
async fn an_if_match_made_stale_by_the_other_node_is_a_412() {
    let (app, other) = two_nodes().await;
    let user = app.create_user("erin@example.com").await;
    let path = format!("/Users/{}", user["id"].as_str().unwrap());
    let etag = app.get(&path).await.header("etag").unwrap().to_string();
    let changed = read(
        on(&app, &other, Method::PATCH, &path)
            .json(&patch_op(
                json!([{"op": "replace", "path": "displayName", "value": "Erin B"}]),
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(changed.status, 200);
    let stale = read(
        app.scim(Method::PATCH, &path)
            .header("if-match", &etag)
            .json(&patch_op(
                json!([{"op": "replace", "path": "displayName", "value": "Erin C"}]),
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    stale.assert_error(412, None);
    // The refused write changed nothing (read with the token: node A's cache may otherwise
    // still hold the version it served before node B's change, for up to one interval).
    let after = read(
        app.scim(Method::GET, &path)
            .header("scimitar-read-after", change_token(&changed))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(after.body["displayName"], "Erin B");
}

#[tokio::test]
async fn acl_changes_through_both_nodes_at_once_lose_nothing() {
    let (app, other) = two_nodes().await;
    let mut names = Vec::new();
    for index in 0..12 {
        let name = format!("viewer-{index}@example.com");
        app.create_user(&name).await;
        names.push(name);
    }
    // Each PATCH adds one user's level to the same job's ACL, alternating nodes, all at once:
    // each node computes the new ACL from its own view, which the other node's writes make
    // stale.
    let patches = names.iter().enumerate().map(|(index, name)| {
        let address = if index % 2 == 0 {
            &app.address
        } else {
            &other.address
        };
        let request = app
            .client
            .patch(format!("{address}/api/2.0/permissions/jobs/42"))
            .bearer_auth(&app.token)
            .json(&json!({"access_control_list": [
                {"user_name": name, "permission_level": "CAN_VIEW"}
            ]}));
        tokio::spawn(async move {
            let reply = request.send().await.unwrap();
            let token: u64 = reply
                .headers()
                .get("scimitar-change-token")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            (reply.status().as_u16(), token)
        })
    });
    let mut statuses = Vec::new();
    let mut newest = 0;
    for patch in patches.collect::<Vec<_>>() {
        let (status, token) = patch.await.unwrap();
        statuses.push(status);
        newest = newest.max(token);
    }
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    // Read after every one of those writes, whichever node made it.
    let acl = read(
        app.request(Method::GET, "/api/2.0/permissions/jobs/42")
            .header("scimitar-read-after", newest.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(acl.status, 200, "{:?}", acl.body);
    let holders: Vec<&str> = acl.body["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["user_name"].as_str())
        .collect();
    for name in &names {
        assert!(holders.contains(&name.as_str()), "{name} lost: {holders:?}");
    }
}

/// Draws the ids it is told to first, then ordinary ones: a node whose next id another node
/// has already used.
struct CollidingIds {
    taken: std::sync::Mutex<Vec<String>>,
}

impl scimitar_domain::IdGenerator for CollidingIds {
    fn principal_id(&self, now: scimitar_domain::Timestamp) -> scimitar_domain::PrincipalId {
        match self.taken.lock().unwrap().pop() {
            Some(id) => scimitar_domain::PrincipalId::new(id),
            None => RandomIds.principal_id(now),
        }
    }
    fn uuid(&self) -> String {
        RandomIds.uuid()
    }
    fn random_bytes(&self, len: usize) -> Vec<u8> {
        RandomIds.random_bytes(len)
    }
}

#[tokio::test]
async fn an_id_another_node_already_used_is_drawn_again() {
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on(database, &url).await;
    let first = app.create_user("first@example.com").await;
    let taken = first["id"].as_str().unwrap().to_string();
    let store = scimitar_store::open(&url).await.unwrap();
    let ids = CollidingIds {
        taken: std::sync::Mutex::new(vec![taken.clone()]),
    };
    let services = Services::new(store, Arc::new(SystemClock), Arc::new(ids));
    let application = Application::bind("127.0.0.1:0", services).await.unwrap();
    let other = Node {
        address: format!("http://{}", application.local_addr().unwrap()),
        _shutdown: {
            let (shutdown, stopped) = oneshot::channel::<()>();
            tokio::spawn(application.run_until(async move {
                let _ = stopped.await;
            }));
            shutdown
        },
    };
    let created = read(
        on(&app, &other, Method::POST, "/Users")
            .json(&json!({"schemas": [USER_SCHEMA], "userName": "second@example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_ne!(created.id(), taken);
    assert_eq!(
        app.get(&format!("/Users/{taken}")).await.body["userName"],
        "first@example.com"
    );
}

/// Nodes started together on an empty database: one of them makes the account and prints the
/// admin token, the others find it made and bootstrap nothing; the token works on every node.
#[tokio::test]
async fn nodes_bootstrapping_an_empty_database_at_once_make_one_account() {
    let (database, url) = TestDatabase::fresh().await;
    let mut nodes = Vec::new();
    for _ in 0..4 {
        let store = scimitar_store::open(&url).await.expect("the store opens");
        nodes.push(Services::new(
            store,
            Arc::new(SystemClock),
            Arc::new(RandomIds),
        ));
    }
    let outcomes = tokio::join!(
        nodes[0].bootstrap(),
        nodes[1].bootstrap(),
        nodes[2].bootstrap(),
        nodes[3].bootstrap()
    );
    let bootstraps: Vec<_> = [outcomes.0, outcomes.1, outcomes.2, outcomes.3]
        .into_iter()
        .filter_map(|outcome| outcome.expect("bootstrap succeeds or finds it done"))
        .collect();
    assert_eq!(bootstraps.len(), 1, "exactly one node bootstraps");
    let accounts = nodes[0].accounts().await.expect("accounts are listed");
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0].id, bootstraps[0].account.id);
    drop(database);
}

/// A Workspace API request to `node` with `token`.
async fn workspace_call(
    app: &TestApp,
    node: &str,
    token: &str,
    method: Method,
    operation: &str,
    body: serde_json::Value,
) -> Reply {
    let request = app
        .client
        .request(
            method.clone(),
            format!("{node}/api/2.0/workspace/{operation}"),
        )
        .bearer_auth(token);
    let request = if method == Method::GET {
        request.query(&[("path", body["path"].as_str().unwrap_or_default())])
    } else {
        request.json(&body)
    };
    read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_folder_and_its_acl_made_on_one_node_are_used_at_once_on_the_other() {
    let (app, other) = two_nodes().await;
    let alice = app.create_user("alice@example.com").await;
    let alice_token = app.token_for(str_of(&alice, "id")).await;
    let made = workspace_call(
        &app,
        &app.address,
        &app.token,
        Method::POST,
        "mkdirs",
        json!({"path": "/Shared/team"}),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let folder = workspace_call(
        &app,
        &app.address,
        &app.token,
        Method::GET,
        "get-status",
        json!({"path": "/Shared/team"}),
    )
    .await;
    let folder_id = folder.body["object_id"].as_i64().unwrap();
    // The other node has met alice (and her token) before the grant, so what follows tests
    // that it reads the log when its engine says no, not that it learns a new principal.
    let listed = workspace_call(
        &app,
        &other.address,
        &alice_token,
        Method::GET,
        "list",
        json!({"path": "/"}),
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let granted = read(
        app.request(
            Method::PATCH,
            &format!("/api/2.0/permissions/directories/{folder_id}"),
        )
        .json(&json!({"access_control_list": [
            {"user_name": "alice@example.com", "permission_level": "CAN_MANAGE"}
        ]}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);

    // At once, without a change token: the other node finds the folder in storage, and its
    // engine, asked again after reading the log, sees alice's CAN_MANAGE.
    let imported = workspace_call(
        &app,
        &other.address,
        &alice_token,
        Method::POST,
        "import",
        json!({"path": "/Shared/team/nb", "language": "SQL"}),
    )
    .await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    let seen = workspace_call(
        &app,
        &app.address,
        &app.token,
        Method::GET,
        "get-status",
        json!({"path": "/Shared/team/nb"}),
    )
    .await;
    assert_eq!(seen.body["language"], "SQL", "{}", seen.body);

    // Both nodes making one deep path at once: both succeed, and each folder exists once.
    let (left, right) = tokio::join!(
        workspace_call(
            &app,
            &app.address,
            &app.token,
            Method::POST,
            "mkdirs",
            json!({"path": "/Shared/race/a/b"}),
        ),
        workspace_call(
            &app,
            &other.address,
            &app.token,
            Method::POST,
            "mkdirs",
            json!({"path": "/Shared/race/a/b"}),
        ),
    );
    assert_eq!(left.status, 200, "{}", left.body);
    assert_eq!(right.status, 200, "{}", right.body);
    for (path, child) in [
        ("/Shared/race", "/Shared/race/a"),
        ("/Shared/race/a", "/Shared/race/a/b"),
    ] {
        let listed = workspace_call(
            &app,
            &other.address,
            &app.token,
            Method::GET,
            "list",
            json!({ "path": path }),
        )
        .await;
        assert_eq!(
            listed.body["objects"].as_array().map(Vec::len),
            Some(1),
            "{}",
            listed.body
        );
        assert_eq!(listed.body["objects"][0]["path"], child, "{}", listed.body);
    }
}
