//! Bearer tokens are only as good as the principal behind them: deactivating or deleting it
//! disables its tokens at once, even on a node that has seen the token before.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_deactivated_principals_token_stops_working_at_once() {
    let app = spawn_app().await;
    let me = app.get("/Me").await;
    assert_eq!(me.status, 200);
    let admin_id = me.id();
    app.add_second_admin().await;
    // The token has been used (and so remembered); now its principal is deactivated.
    let reply = app
        .patch_ops(
            &format!("/Users/{admin_id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(reply.status, 200);
    let refused = app.get("/Users").await;
    refused.assert_error(401, None);
    // The holder of the token is not told it was once valid (`leaks.rs`).
    assert!(!refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("deactivated"));
}

#[tokio::test]
async fn a_deleted_principals_token_stops_working_at_once() {
    let app = spawn_app().await;
    let admin_id = app.get("/Me").await.id();
    app.add_second_admin().await;
    // Deleting yourself is allowed (as in Databricks) while another admin remains; the answer
    // is the last thing the token does.
    let reply = app.delete(&format!("/Users/{admin_id}")).await;
    assert_eq!(reply.status, 204);
    app.get("/Users").await.assert_error(401, None);
}
