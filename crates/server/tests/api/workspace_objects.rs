//! Workspace objects belong to one workspace: each workspace has its own tree (the Workspace
//! API) and its own objects (the Permissions API). The same path in two workspaces of one
//! account is two objects; another workspace's object, by path or by id, is answered exactly
//! as one that does not exist, to account admins as to anyone (access questions about it too);
//! deleting a workspace deletes its tree.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A request as `token` to `path` of workspace `workspace` (`/w/{workspace}{path}`).
async fn in_workspace(
    app: &TestApp,
    token: &str,
    workspace: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}/w/{workspace}{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.unwrap()).await
}

/// The Workspace API's `operation` with `path` as its query (GET) or body (POST).
async fn tree(app: &TestApp, token: &str, workspace: &str, operation: &str, body: Value) -> Reply {
    let path = format!("/api/2.0/workspace/{operation}");
    if matches!(operation, "get-status" | "list") {
        let query = format!("{path}?path={}", body["path"].as_str().unwrap());
        return in_workspace(app, token, workspace, Method::GET, &query, None).await;
    }
    in_workspace(app, token, workspace, Method::POST, &path, Some(body)).await
}

async fn new_workspace(app: &TestApp, name: &str) -> String {
    let reply = read(
        app.request(
            Method::POST,
            &format!("/api/2.0/accounts/{}/workspaces", app.account),
        )
        .json(&json!({"workspace_name": name}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["workspace_id"].as_i64().unwrap().to_string()
}

async fn default_workspace(app: &TestApp) -> String {
    let reply = read(
        app.client
            .get(format!("{}/.well-known/databricks-config", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.body["workspace_id"].as_str().unwrap().to_string()
}

async fn assign(app: &TestApp, workspace: &str, principal: &str, permission: &str) {
    let reply = read(
        app.request(
            Method::PUT,
            &format!(
                "/api/2.0/accounts/{}/workspaces/{workspace}/permissionassignments/principals/{principal}",
                app.account
            ),
        )
        .json(&json!({"permissions": [permission]}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn mkdirs(app: &TestApp, workspace: &str, path: &str) {
    let reply = tree(
        app,
        &app.token,
        workspace,
        "mkdirs",
        json!({ "path": path }),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn import_body(path: &str, overwrite: bool) -> Value {
    json!({"path": path, "format": "SOURCE", "language": "PYTHON",
           "content": "cHJpbnQoMSk=", "overwrite": overwrite})
}

/// The object id `get-status` gives for `path` in `workspace`, as the admin.
async fn object_id(app: &TestApp, workspace: &str, path: &str) -> i64 {
    let reply = tree(
        app,
        &app.token,
        workspace,
        "get-status",
        json!({ "path": path }),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["object_id"].as_i64().unwrap()
}

fn listed_paths(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["objects"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .map(|object| str_of(object, "path").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Two answers are the same to a client: status, headers that could tell them apart, body.
fn same_answer(seen: &Reply, missing: &Reply, what: &str) {
    assert_eq!(seen.status, missing.status, "{what}: {}", seen.body);
    assert_eq!(seen.body, missing.body, "{what}");
    for header in ["content-type", "etag", "location"] {
        assert_eq!(
            seen.header(header),
            missing.header(header),
            "{what}: {header}"
        );
    }
}

#[tokio::test]
async fn one_path_in_two_workspaces_is_two_objects_each_listed_in_its_own_tree() {
    let app = spawn_app().await;
    let (first, second) = (
        default_workspace(&app).await,
        new_workspace(&app, "B").await,
    );
    for workspace in [&first, &second] {
        mkdirs(&app, workspace, "/Shared/team").await;
    }
    let ids = (
        object_id(&app, &first, "/Shared/team").await,
        object_id(&app, &second, "/Shared/team").await,
    );
    assert_ne!(ids.0, ids.1, "two objects");
    let reply = tree(
        &app,
        &app.token,
        &first,
        "import",
        import_body("/Shared/team/nb", false),
    );
    assert_eq!(reply.await.status, 200);

    // An account admin through each workspace sees that workspace's tree only.
    let listed = tree(
        &app,
        &app.token,
        &first,
        "list",
        json!({"path": "/Shared/team"}),
    )
    .await;
    assert_eq!(listed_paths(&listed), ["/Shared/team/nb"]);
    let listed = tree(
        &app,
        &app.token,
        &second,
        "list",
        json!({"path": "/Shared/team"}),
    )
    .await;
    assert_eq!(listed_paths(&listed), Vec::<String>::new());
    let root = tree(&app, &app.token, &second, "list", json!({"path": "/"})).await;
    assert_eq!(listed_paths(&root), ["/Shared"]);
    // The unprefixed routes are the default workspace's.
    let unprefixed = read(
        app.request(Method::GET, "/api/2.0/workspace/list?path=/Shared/team")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed_paths(&unprefixed), ["/Shared/team/nb"]);
    // The notebook's path is free in the other workspace.
    let reply = tree(
        &app,
        &app.token,
        &second,
        "import",
        import_body("/Shared/team/nb", false),
    );
    assert_eq!(reply.await.status, 200);
    assert_ne!(
        object_id(&app, &first, "/Shared/team/nb").await,
        object_id(&app, &second, "/Shared/team/nb").await
    );
}

#[tokio::test]
async fn another_workspaces_objects_are_answered_as_missing_ones_by_path_and_by_id_and_job_ids_are_each_workspaces_own(
) {
    let app = spawn_app().await;
    let first = default_workspace(&app).await;
    // `second` looks at `first`'s objects; `empty` holds nothing, which is what missing is.
    let (second, empty) = (
        new_workspace(&app, "B").await,
        new_workspace(&app, "C").await,
    );
    mkdirs(&app, &first, "/Shared/secret").await;
    let reply = tree(
        &app,
        &app.token,
        &first,
        "import",
        import_body("/Shared/secret/nb", false),
    );
    assert_eq!(reply.await.status, 200);
    let directory = object_id(&app, &first, "/Shared/secret").await;
    let notebook = object_id(&app, &first, "/Shared/secret/nb").await;
    let job_acl =
        json!({"access_control_list": [{"group_name": "users", "permission_level": "CAN_VIEW"}]});
    let reply = in_workspace(
        &app,
        &app.token,
        &first,
        Method::PUT,
        "/api/2.0/permissions/jobs/42",
        Some(job_acl.clone()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A user of both workspaces who manages the directory in the first.
    let both = app.create_user("both@example.com").await;
    let both_id = str_of(&both, "id").to_string();
    for workspace in [&first, &second, &empty] {
        assign(&app, workspace, &both_id, "USER").await;
    }
    let manager = json!({"access_control_list": [{"user_name": "both@example.com", "permission_level": "CAN_MANAGE"}]});
    let reply = in_workspace(
        &app,
        &app.token,
        &first,
        Method::PATCH,
        &format!("/api/2.0/permissions/directories/{directory}"),
        Some(manager.clone()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let both_token = app.token_for(&both_id).await;

    let tree_requests = [
        ("get-status", json!({"path": "/Shared/secret"})),
        ("list", json!({"path": "/Shared/secret"})),
        ("get-status", json!({"path": "/Shared/secret/nb"})),
        (
            "delete",
            json!({"path": "/Shared/secret", "recursive": true}),
        ),
        ("delete", json!({"path": "/Shared/secret/nb"})),
        ("import", import_body("/Shared/secret/nb", true)),
    ];
    let acl_paths = [
        format!("/api/2.0/permissions/directories/{directory}"),
        format!("/api/2.0/permissions/notebooks/{notebook}"),
        "/api/2.0/permissions/jobs/42".to_string(),
    ];
    for token in [&app.token, &both_token] {
        for (operation, body) in &tree_requests {
            let seen = tree(&app, token, &second, operation, body.clone()).await;
            let missing = tree(&app, token, &empty, operation, body.clone()).await;
            assert!(seen.status == 404 || seen.status == 403, "{}", seen.body);
            same_answer(&seen, &missing, operation);
        }
        for path in &acl_paths {
            for (method, body) in [
                (Method::GET, None),
                (Method::PUT, Some(job_acl.clone())),
                (Method::PATCH, Some(manager.clone())),
            ] {
                let what = format!("{method} {path}");
                let seen =
                    in_workspace(&app, token, &second, method.clone(), path, body.clone()).await;
                let missing = in_workspace(&app, token, &empty, method, path, body).await;
                // A job id is its client's: each workspace has its own job 42, which an admin
                // reads and writes there (answered as in a workspace that never saw the id),
                // and the first workspace's is left alone. Tree objects are the first's only.
                let own_object = path.contains("/jobs/");
                assert!(
                    own_object || seen.status == 404 || seen.status == 403,
                    "{what}: {}",
                    seen.body
                );
                same_answer(&seen, &missing, &what);
            }
        }
    }
    // Access questions about those objects answer as about objects without an ACL.
    let questions = [
        format!("/api/2.0/access/who?object_type=directories&object_id={directory}&permission_level=CAN_MANAGE"),
        format!("/api/2.0/access/check?object_type=notebooks&object_id={notebook}&permission_level=CAN_READ"),
        "/api/2.0/access/who?object_type=jobs&object_id=42&permission_level=CAN_VIEW".to_string(),
    ];
    for token in [&app.token, &both_token] {
        for question in &questions {
            let seen = in_workspace(&app, token, &second, Method::GET, question, None).await;
            let missing = in_workspace(&app, token, &empty, Method::GET, question, None).await;
            same_answer(&seen, &missing, question);
        }
    }
    let who = in_workspace(&app, &app.token, &second, Method::GET, &questions[0], None).await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert!(
        !who.body.to_string().contains("both@example.com"),
        "{}",
        who.body
    );
    let who = in_workspace(&app, &app.token, &first, Method::GET, &questions[0], None).await;
    assert!(
        who.body.to_string().contains("both@example.com"),
        "{}",
        who.body
    );

    // An admin is told "does not exist", exactly as for an id nobody holds.
    let seen = in_workspace(&app, &app.token, &second, Method::GET, &acl_paths[0], None).await;
    assert_eq!(seen.status, 404, "{}", seen.body);
    let nobodys = format!("/api/2.0/permissions/directories/{}", directory + 1_000_000);
    let missing = in_workspace(&app, &app.token, &first, Method::GET, &nobodys, None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        seen.body["error_code"], missing.body["error_code"],
        "{}",
        seen.body
    );

    // Nothing of the first workspace changed.
    let listed = tree(
        &app,
        &app.token,
        &first,
        "list",
        json!({"path": "/Shared/secret"}),
    )
    .await;
    assert_eq!(listed_paths(&listed), ["/Shared/secret/nb"]);
    let acl = in_workspace(
        &app,
        &app.token,
        &first,
        Method::GET,
        "/api/2.0/permissions/jobs/42",
        None,
    )
    .await;
    assert_eq!(acl.status, 200);
    let acl_text = acl.body.to_string();
    assert!(
        acl_text.contains("users") && !acl_text.contains("both@example.com"),
        "{acl_text}"
    );
    let acl = in_workspace(&app, &app.token, &first, Method::GET, &acl_paths[0], None).await;
    assert!(
        acl.body.to_string().contains("both@example.com"),
        "{}",
        acl.body
    );
    // And the user still manages the directory where it is.
    let acl = in_workspace(&app, &both_token, &first, Method::GET, &acl_paths[0], None).await;
    assert_eq!(acl.status, 200, "{}", acl.body);
    // The second workspace's job 42 is its own: what its admin sets there shows there, under
    // the id its clients use, and not in the first.
    let runner = json!({"access_control_list": [{"user_name": "both@example.com", "permission_level": "CAN_MANAGE_RUN"}]});
    let job = "/api/2.0/permissions/jobs/42";
    let own = in_workspace(&app, &app.token, &second, Method::PATCH, job, Some(runner)).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["object_id"], "/jobs/42", "{}", own.body);
    assert!(
        own.body.to_string().contains("both@example.com"),
        "{}",
        own.body
    );
    let first_job = in_workspace(&app, &app.token, &first, Method::GET, job, None).await;
    assert!(
        !first_job.body.to_string().contains("both@example.com"),
        "{}",
        first_job.body
    );
    let question =
        "/api/2.0/access/check?object_type=jobs&object_id=42&permission_level=CAN_MANAGE_RUN";
    let check = in_workspace(&app, &both_token, &second, Method::GET, question, None).await;
    assert_eq!(check.body["allowed"], true, "{}", check.body);
    assert_eq!(check.body["target"]["object_id"], "42", "{}", check.body);
    let check = in_workspace(&app, &both_token, &first, Method::GET, question, None).await;
    assert_eq!(check.body["allowed"], false, "{}", check.body);
}

#[tokio::test]
async fn deleting_a_workspace_deletes_its_tree_and_leaves_the_others() {
    let (database, url) = TestDatabase::fresh().await;
    let app = spawn_app_on(database, &url).await;
    let first = default_workspace(&app).await;
    let second = new_workspace(&app, "B").await;
    for workspace in [&first, &second] {
        mkdirs(&app, workspace, "/Shared/team").await;
    }
    let reply = in_workspace(
        &app,
        &app.token,
        &second,
        Method::PUT,
        "/api/2.0/permissions/jobs/7",
        Some(json!({"access_control_list": [{"group_name": "users", "permission_level": "CAN_VIEW"}]})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let kept = object_id(&app, &first, "/Shared/team").await;
    let reply = read(
        app.request(
            Method::DELETE,
            &format!("/api/2.0/accounts/{}/workspaces/{second}", app.account),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let store = scimitar_store::open(&url).await.unwrap();
    let snapshot = store.access_snapshot(&app.account).await.unwrap();
    let ids: Vec<(&str, &str)> = snapshot
        .objects
        .iter()
        .map(|row| (row.object_type.as_str(), row.object_id.as_str()))
        .collect();
    let (shared, team) = (
        object_id(&app, &first, "/Shared").await.to_string(),
        kept.to_string(),
    );
    assert_eq!(
        ids,
        [
            ("directories", shared.as_str()),
            ("directories", team.as_str())
        ],
        "only the first workspace's tree"
    );
    assert!(snapshot
        .objects
        .iter()
        .all(|row| row.workspace.as_str() == first));
    assert!(snapshot.acl.iter().all(|row| row.object_id != "7"));
    // The job's id is free again, for the workspace that writes it now.
    let reply = read(
        app.request(Method::GET, "/api/2.0/permissions/jobs/7")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        !reply.body.to_string().contains("CAN_VIEW"),
        "{}",
        reply.body
    );
}
