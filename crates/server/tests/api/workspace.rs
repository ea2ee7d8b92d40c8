//! The Workspace API's tree: `mkdirs`, `import`, `get-status`, `list` and `delete` build the
//! folders objects sit in; objects placed in a folder inherit its ACL; only holders of
//! `CAN_MANAGE` on a folder (admins at the root) create or delete in it, and creators manage
//! what they create; errors come in Databricks' shape and a refused write leaves nothing.

use crate::permissions::permissions;
use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

const WORKSPACE: &str = "/api/2.0/workspace";

async fn post(app: &TestApp, token: &str, operation: &str, body: Value) -> Reply {
    let request = app
        .client
        .post(format!("{}{WORKSPACE}/{operation}", app.address))
        .bearer_auth(token)
        .json(&body);
    read(request.send().await.expect("sent")).await
}

async fn query(app: &TestApp, token: &str, operation: &str, path: &str) -> Reply {
    let request = app
        .client
        .get(format!("{}{WORKSPACE}/{operation}", app.address))
        .query(&[("path", path)])
        .bearer_auth(token);
    read(request.send().await.expect("sent")).await
}

async fn mkdirs(app: &TestApp, path: &str) {
    let reply = post(app, &app.token, "mkdirs", json!({ "path": path })).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn import_notebook(app: &TestApp, token: &str, path: &str) -> Reply {
    post(
        app,
        token,
        "import",
        json!({"path": path, "format": "SOURCE", "language": "PYTHON", "content": "cHJpbnQoMSk="}),
    )
    .await
}

/// The object's `object_id`, from `get-status` as the admin.
async fn object_id(app: &TestApp, path: &str) -> i64 {
    let reply = query(app, &app.token, "get-status", path).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["object_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a numeric object_id in {}", reply.body))
}

fn listed_paths(reply: &Reply) -> Vec<&str> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("objects in {}", reply.body))
        .iter()
        .map(|object| str_of(object, "path"))
        .collect()
}

fn assert_databricks_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error_code"], code, "{}", reply.body);
}

#[tokio::test]
async fn mkdirs_and_import_build_a_tree_that_get_status_and_list_read() {
    let app = spawn_app().await;
    mkdirs(&app, "/Shared/team/reports").await;
    // Again, and with a trailing slash: nothing to do.
    mkdirs(&app, "/Shared/team/reports/").await;
    let reply = import_notebook(&app, &app.token, "/Shared/team/reports/daily").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = post(
        &app,
        &app.token,
        "import",
        json!({"path": "/Shared/team/data.csv", "format": "RAW", "content": "YSxi"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let status = query(&app, &app.token, "get-status", "/Shared/team/reports/daily").await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["object_type"], "NOTEBOOK");
    assert_eq!(status.body["language"], "PYTHON");
    assert_eq!(status.body["path"], "/Shared/team/reports/daily");
    let status = query(&app, &app.token, "get-status", "/Shared/team").await;
    assert_eq!(status.body["object_type"], "DIRECTORY", "{}", status.body);
    assert!(status.body.get("language").is_none(), "{}", status.body);
    let ids = [
        object_id(&app, "/Shared").await,
        object_id(&app, "/Shared/team").await,
        object_id(&app, "/Shared/team/reports").await,
        object_id(&app, "/Shared/team/reports/daily").await,
    ];
    let mut distinct = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{ids:?}");

    let root = query(&app, &app.token, "list", "/").await;
    assert_eq!(listed_paths(&root), ["/Shared"]);
    let team = query(&app, &app.token, "list", "/Shared/team").await;
    assert_eq!(
        listed_paths(&team),
        ["/Shared/team/data.csv", "/Shared/team/reports"]
    );
    assert_eq!(team.body["objects"][0]["object_type"], "FILE");
    // Listing a notebook lists the notebook.
    let one = query(&app, &app.token, "list", "/Shared/team/reports/daily").await;
    assert_eq!(listed_paths(&one), ["/Shared/team/reports/daily"]);
    let root_status = query(&app, &app.token, "get-status", "/").await;
    assert_eq!(root_status.body["object_type"], "DIRECTORY");
}

#[tokio::test]
async fn objects_imported_into_a_folder_inherit_its_acl() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com").await;
    app.create_group("analysts", &[str_of(&alice, "id")]).await;
    mkdirs(&app, "/Shared/d1").await;
    let folder = object_id(&app, "/Shared/d1").await;
    let body = json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_EDIT"}]});
    let put = permissions(
        &app,
        Method::PUT,
        &format!("directories/{folder}"),
        &app.token,
        Some(body),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let reply = import_notebook(&app, &app.token, "/Shared/d1/n1").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let notebook = object_id(&app, "/Shared/d1/n1").await;

    // Alice's own entry on the notebook is only CAN_READ.
    let body = json!({"access_control_list": [
        {"user_name": "alice@example.com", "permission_level": "CAN_READ"}
    ]});
    let acl = permissions(
        &app,
        Method::PUT,
        &format!("notebooks/{notebook}"),
        &app.token,
        Some(body),
    )
    .await;
    assert_eq!(acl.status, 200, "{}", acl.body);
    let analysts: Vec<&Value> = acl.body["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["group_name"] == "analysts")
        .collect();
    assert_eq!(
        analysts[0]["all_permissions"],
        json!([{"permission_level": "CAN_EDIT", "inherited": true,
                "inherited_from_object": [format!("/directories/{folder}")]}]),
        "{}",
        acl.body
    );
    // Through the group, alice may still edit the notebook; the check names the folder's
    // grant.
    let reply = read(
        app.request(Method::GET, "/api/2.0/access/check")
            .query(&[
                ("principal", "alice@example.com"),
                ("object_type", "notebooks"),
                ("object_id", notebook.to_string().as_str()),
                ("permission_level", "CAN_EDIT"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["allowed"], json!(true), "{}", reply.body);
    assert_eq!(
        reply.body["reasons"][0]["source"]["object_id"],
        json!(folder.to_string()),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn only_managers_of_a_folder_create_and_delete_in_it_and_creators_manage_theirs() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let alice_token = app.token_for(str_of(&alice, "id")).await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;

    // Only admins write at the root.
    let refused = post(&app, &alice_token, "mkdirs", json!({"path": "/mine"})).await;
    assert_databricks_error(&refused, 403, "PERMISSION_DENIED");
    mkdirs(&app, "/Shared/open").await;
    let open = object_id(&app, "/Shared/open").await;
    let refused = import_notebook(&app, &alice_token, "/Shared/open/nb").await;
    assert_databricks_error(&refused, 403, "PERMISSION_DENIED");
    assert_databricks_error(
        &query(&app, &app.token, "get-status", "/Shared/open/nb").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );

    let body = json!({"access_control_list": [{"user_name": "alice@example.com", "permission_level": "CAN_MANAGE"}]});
    let put = permissions(
        &app,
        Method::PUT,
        &format!("directories/{open}"),
        &app.token,
        Some(body),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let made = post(
        &app,
        &alice_token,
        "mkdirs",
        json!({"path": "/Shared/open/alice/drafts"}),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let drafts = object_id(&app, "/Shared/open/alice/drafts").await;
    // The creator holds CAN_MANAGE on what it made, directly.
    let acl = permissions(
        &app,
        Method::GET,
        &format!("directories/{drafts}"),
        &app.token,
        None,
    )
    .await;
    let alice_entry = acl.body["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["user_name"] == "alice@example.com")
        .cloned()
        .unwrap_or_else(|| panic!("alice in {}", acl.body));
    assert!(
        alice_entry["all_permissions"]
            .as_array()
            .unwrap()
            .contains(&json!({"permission_level": "CAN_MANAGE", "inherited": false})),
        "{}",
        acl.body
    );

    // Bob holds nothing there: he may neither read nor delete.
    assert_databricks_error(
        &query(&app, &bob_token, "get-status", "/Shared/open/alice").await,
        403,
        "PERMISSION_DENIED",
    );
    assert_databricks_error(
        &query(&app, &bob_token, "list", "/Shared/open").await,
        403,
        "PERMISSION_DENIED",
    );
    let refused = post(
        &app,
        &bob_token,
        "delete",
        json!({"path": "/Shared/open/alice", "recursive": true}),
    )
    .await;
    assert_databricks_error(&refused, 403, "PERMISSION_DENIED");

    let listed = query(&app, &alice_token, "list", "/Shared/open").await;
    assert_eq!(listed_paths(&listed), ["/Shared/open/alice"]);
    let deleted = post(
        &app,
        &alice_token,
        "delete",
        json!({"path": "/Shared/open/alice", "recursive": true}),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    for gone in ["/Shared/open/alice", "/Shared/open/alice/drafts"] {
        assert_databricks_error(
            &query(&app, &app.token, "get-status", gone).await,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        );
    }
    // The path can be used again.
    let again = post(
        &app,
        &alice_token,
        "mkdirs",
        json!({"path": "/Shared/open/alice"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
}

#[tokio::test]
async fn bad_workspace_requests_are_refused_in_databricks_shape_and_change_nothing() {
    let app = spawn_app().await;
    mkdirs(&app, "/Shared/team").await;
    let reply = import_notebook(&app, &app.token, "/Shared/team/nb").await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let cases = [
        (
            "mkdirs",
            json!({"path": "relative/path"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "mkdirs",
            json!({"path": "/a//b"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("mkdirs", json!({}), 400, "INVALID_PARAMETER_VALUE"),
        ("mkdirs", json!({"path": 7}), 400, "INVALID_PARAMETER_VALUE"),
        // Something on the way is a notebook.
        (
            "mkdirs",
            json!({"path": "/Shared/team/nb/sub"}),
            409,
            "RESOURCE_ALREADY_EXISTS",
        ),
        (
            "import",
            json!({"path": "/Shared/team/nb", "language": "PYTHON"}),
            409,
            "RESOURCE_ALREADY_EXISTS",
        ),
        (
            "import",
            json!({"path": "/Shared/team", "language": "PYTHON", "overwrite": true}),
            409,
            "RESOURCE_ALREADY_EXISTS",
        ),
        (
            "import",
            json!({"path": "/Shared/nowhere/nb", "language": "PYTHON"}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "import",
            json!({"path": "/Shared/team/x", "format": "SOURCE"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "import",
            json!({"path": "/Shared/team/x", "language": "COBOL"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "import",
            json!({"path": "/Shared/team/x", "format": "PDF"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "import",
            json!({"path": "/Shared/team/x", "language": "SQL", "overwrite": "yes"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "import",
            json!({"path": "/", "language": "SQL"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "delete",
            json!({"path": "/Shared/team"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "delete",
            json!({"path": "/"}),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "delete",
            json!({"path": "/Shared/none"}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
    ];
    for (operation, body, status, code) in cases {
        let reply = post(&app, &app.token, operation, body.clone()).await;
        assert_eq!(reply.status, status, "{operation} {body}: {}", reply.body);
        assert_eq!(
            reply.body["error_code"], code,
            "{operation} {body}: {}",
            reply.body
        );
        assert!(
            reply.body["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{}",
            reply.body
        );
    }
    // An import over an existing notebook with overwrite keeps it, id and all.
    let before = object_id(&app, "/Shared/team/nb").await;
    let reply = post(
        &app,
        &app.token,
        "import",
        json!({"path": "/Shared/team/nb", "language": "PYTHON", "overwrite": true}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(object_id(&app, "/Shared/team/nb").await, before);

    // Nothing above changed the tree.
    let team = query(&app, &app.token, "list", "/Shared/team").await;
    assert_eq!(listed_paths(&team), ["/Shared/team/nb"]);
    let root = query(&app, &app.token, "list", "/").await;
    assert_eq!(listed_paths(&root), ["/Shared"]);
    assert_databricks_error(
        &query(&app, &app.token, "get-status", "/Shared/missing").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    );
    let wrong_method = read(
        app.request(Method::GET, "/api/2.0/workspace/mkdirs")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.body);
}

#[tokio::test]
async fn everyone_makes_their_own_home_folder_and_no_one_elses() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let alice_token = app.token_for(str_of(&alice, "id")).await;
    let bob_token = app.token_for(str_of(&bob, "id")).await;

    let made = post(
        &app,
        &alice_token,
        "mkdirs",
        json!({"path": "/Users/alice@example.com/work"}),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let reply = import_notebook(&app, &alice_token, "/Users/alice@example.com/work/nb").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let made = post(
        &app,
        &bob_token,
        "mkdirs",
        json!({"path": "/Users/bob@example.com"}),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);

    // `/Users` is nobody's: neither may write beside or inside the other's home.
    for (token, path) in [
        (&bob_token, "/Users/alice@example.com/x"),
        (&alice_token, "/Users/bob@example.com/x"),
        (&alice_token, "/Users/carol@example.com"),
        (&alice_token, "/Users/alice@example.com2"),
    ] {
        let refused = post(&app, token, "mkdirs", json!({ "path": path })).await;
        assert_databricks_error(&refused, 403, "PERMISSION_DENIED");
    }
    assert_databricks_error(
        &query(
            &app,
            &bob_token,
            "get-status",
            "/Users/alice@example.com/work/nb",
        )
        .await,
        403,
        "PERMISSION_DENIED",
    );
    let users = object_id(&app, "/Users").await;
    let acl = permissions(
        &app,
        Method::GET,
        &format!("directories/{users}"),
        &app.token,
        None,
    )
    .await;
    assert_eq!(acl.status, 200, "{}", acl.body);
    assert!(
        !acl.body.to_string().contains("alice@example.com"),
        "no creator entry on /Users: {}",
        acl.body
    );
    let listed = query(&app, &alice_token, "list", "/Users/alice@example.com").await;
    assert_eq!(listed_paths(&listed), ["/Users/alice@example.com/work"]);
    // Overwriting needs CAN_EDIT on the object: its creator has it, bob does not.
    let overwrite = json!({"path": "/Users/alice@example.com/work/nb", "language": "PYTHON", "overwrite": true});
    let refused = post(&app, &bob_token, "import", overwrite.clone()).await;
    assert_databricks_error(&refused, 403, "PERMISSION_DENIED");
    let kept = post(&app, &alice_token, "import", overwrite).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
}

#[tokio::test]
async fn wrongly_typed_or_missing_fields_are_refused_by_their_path_and_write_nothing() {
    let app = spawn_app().await;
    mkdirs(&app, "/Shared/team").await;
    let reply = import_notebook(&app, &app.token, "/Shared/team/nb").await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Every body names a path that would be made or deleted were the request taken.
    let cases = [
        (
            "mkdirs",
            json!({"path": ["/Shared/team/new"]}),
            "path: invalid type: sequence, expected a string",
        ),
        (
            "mkdirs",
            json!("/Shared/team/new"),
            "the request body must be a JSON object",
        ),
        (
            "import",
            json!({"path": "/Shared/team/new", "language": "PYTHON", "overwrite": "yes"}),
            "overwrite: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "import",
            json!({"path": "/Shared/team/new", "language": "PYTHON", "content": {"data": "eA=="}}),
            "content: invalid type: map, expected a string",
        ),
        (
            "import",
            json!({"path": "/Shared/team/new", "language": 3}),
            "language: invalid type: integer `3`, expected a string",
        ),
        (
            "import",
            json!({"path": "/Shared/team/new", "format": false, "language": "SQL"}),
            "format: invalid type: boolean `false`, expected a string",
        ),
        (
            "import",
            json!({"language": "PYTHON"}),
            "`path` is required",
        ),
        (
            "delete",
            json!({"path": "/Shared/team", "recursive": "true"}),
            "recursive: invalid type: string \"true\", expected a boolean",
        ),
        ("delete", json!({"recursive": true}), "`path` is required"),
    ];
    for (operation, body, message) in cases {
        let reply = post(&app, &app.token, operation, body.clone()).await;
        assert_databricks_error(&reply, 400, "INVALID_PARAMETER_VALUE");
        assert_eq!(reply.body["message"], message, "{operation} {body}");
    }
    let team = query(&app, &app.token, "list", "/Shared/team").await;
    assert_eq!(listed_paths(&team), ["/Shared/team/nb"]);
}
