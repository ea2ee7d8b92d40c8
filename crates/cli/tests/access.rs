//! `scimitar access` against a real database: the binary is run the way an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Output};
use support::Scratch;

fn scimitar(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scimitar"))
        .args(arguments)
        .env("SCIMITAR_LOG", "error")
        .env_remove("SCIMITAR_DATABASE_URL")
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn access_check_who_and_what_answer_from_a_database() {
    let scratch = Scratch::new("access");
    let database = scratch.sqlite("db.sqlite");
    // `token create` bootstraps an empty database: the admin user, `admins` and `users`.
    let created = scimitar(&["token", "create", "--database", &database]);
    assert!(created.status.success(), "{created:?}");

    let allowed = scimitar(&[
        "access",
        "check",
        "--database",
        &database,
        "--principal",
        "admin@scimitar.local",
        "--object-type",
        "jobs",
        "--object-id",
        "1",
        "--permission-level",
        "CAN_MANAGE",
    ]);
    assert!(allowed.status.success(), "{allowed:?}");
    let out = text(&allowed);
    assert!(
        out.starts_with("ALLOWED: admin@scimitar.local has CAN_MANAGE on jobs/1"),
        "{out}"
    );
    assert!(
        out.contains("via workspace admin through group admins (admin@scimitar.local -> admins)"),
        "{out}"
    );

    let denied = scimitar(&[
        "access",
        "check",
        "--database",
        &database,
        "--principal",
        "users",
        "--entitlement",
        "allow-cluster-create",
        "--json",
    ]);
    assert!(denied.status.success(), "{denied:?}");
    let answer: serde_json::Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(answer["allowed"], serde_json::json!(false));
    assert_eq!(
        answer["missing"][0]["entitlement"],
        serde_json::json!("allow-cluster-create")
    );

    let who = scimitar(&[
        "access",
        "who",
        "--database",
        &database,
        "--entitlement",
        "workspace-access",
    ]);
    assert!(who.status.success(), "{who:?}");
    assert!(
        text(&who).starts_with("1 principals have the workspace-access entitlement"),
        "{}",
        text(&who)
    );
    let who = scimitar(&[
        "access",
        "who",
        "--database",
        &database,
        "--entitlement",
        "workspace-access",
        "--json",
    ]);
    assert!(who.status.success(), "{who:?}");
    let answer: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(
        answer["target"],
        serde_json::json!({"entitlement": "workspace-access"})
    );
    let holder = &answer["principals"][0];
    assert_eq!(
        holder["principal"]["name"],
        serde_json::json!("admin@scimitar.local")
    );
    assert_eq!(
        holder["via"]["source"],
        serde_json::json!({"kind": "workspace_admin"})
    );
    assert_eq!(
        holder["via"]["grantee"]["name"],
        serde_json::json!("admins")
    );
    let chain: Vec<&str> = holder["via"]["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|link| link["name"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["admin@scimitar.local", "admins"]);

    let what = scimitar(&[
        "access",
        "what",
        "--database",
        &database,
        "--principal",
        "admin@scimitar.local",
    ]);
    assert!(what.status.success(), "{what:?}");
    assert!(
        text(&what).contains("workspace admin through group admins"),
        "{}",
        text(&what)
    );

    let unknown = scimitar(&[
        "access",
        "check",
        "--database",
        &database,
        "--principal",
        "nobody",
        "--entitlement",
        "workspace-access",
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));
    let malformed = scimitar(&[
        "access",
        "check",
        "--database",
        &database,
        "--principal",
        "users",
        "--object-type",
        "jobs",
    ]);
    assert!(!malformed.status.success());
}
