//! The Statement Execution API (`POST /api/2.0/sql/statements`) for governance SQL: `CREATE`
//! and `DROP` of Unity Catalog objects, `ALTER ... OWNER TO`, `GRANT`, `REVOKE` and
//! `SHOW GRANTS`, run as the token's principal through the governance service; and
//! `SELECT ... FROM system.access.audit` for admins (`scimitar_app::audit_sql`).
//!
//! Statements run synchronously, so every answer is terminal (`SUCCEEDED` or `FAILED`) and
//! the SDK never needs to poll. As in Databricks, a statement that was accepted but failed is
//! a 200 whose `status.state` is `FAILED` with the error inside; a request that is itself
//! wrong (no statement, bad JSON, no token) is a 4xx with Databricks' error body. Warehouse
//! ids are accepted and ignored: there is no compute.
//!
//! One warehouse is listed (`GET /api/2.0/sql/warehouses` and `.../{id}`), always `RUNNING`:
//! tools that look a warehouse up before running SQL (`databricks-labs-lsql` takes the first
//! running one) find [`WAREHOUSE_ID`] and pass it back; statements run the same whatever id
//! they name.
//!
//! Answers are kept for a while (`scimitar_app::recent_statements`) so that
//! `GET /api/2.0/sql/statements/{id}` can return them, as a client that polls expects, from
//! the workspace the statement ran in.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use scimitar_domain::ScimError;
use serde_json::{json, Value};

use crate::context::DatabricksContext;
use crate::error::{statement_error, DatabricksResult};
use crate::routes::json_request;
use crate::routes::wire::{ExecuteStatementBody, StatementRequest};
use crate::AppState;
use scimitar_app::governance::Outcome;

/// Room for the longest statement the parser accepts and the request's other fields.
const MAX_BODY_BYTES: usize = scimitar_access::statement::MAX_STATEMENT_BYTES + 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/2.0/sql/statements", post(execute))
        .route("/api/2.0/sql/statements/", post(execute))
        .route("/api/2.0/sql/statements/{statement_id}", get(get_statement))
        .route("/api/2.0/sql/warehouses", get(list_warehouses))
        .route("/api/2.0/sql/warehouses/{warehouse_id}", get(get_warehouse))
}

/// The id of the one warehouse every account lists: 16 hexadecimal digits like a Databricks
/// warehouse id, the same on every node and across restarts, so a tool that remembered it
/// still finds it.
pub const WAREHOUSE_ID: &str = "5c1a17a000000001";

/// The warehouse as the SDK's `EndpointInfo` reads it. There is no compute behind it: it is
/// the name statements run under, always `RUNNING` and `HEALTHY`, with one cluster.
fn warehouse() -> Value {
    json!({
        "id": WAREHOUSE_ID,
        "name": "Scimitar governance SQL",
        "state": "RUNNING",
        "health": {"status": "HEALTHY"},
        "warehouse_type": "PRO",
        "cluster_size": "2X-Small",
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "num_clusters": 1,
        "num_active_sessions": 0,
        "auto_stop_mins": 0,
        "enable_serverless_compute": true,
        "enable_photon": false,
        "spot_instance_policy": "COST_OPTIMIZED",
        "channel": {"name": "CHANNEL_NAME_CURRENT"},
        "tags": {"custom_tags": []},
    })
}

/// `GET /api/2.0/sql/warehouses`: any principal of the account may list it; the
/// authentication is what is checked.
async fn list_warehouses(_context: DatabricksContext) -> DatabricksResult {
    Ok(Json(json!({"warehouses": [warehouse()]})).into_response())
}

/// `GET /api/2.0/sql/warehouses/{id}`: the one warehouse, or `RESOURCE_DOES_NOT_EXIST`.
async fn get_warehouse(
    _context: DatabricksContext,
    id: Result<Path<String>, PathRejection>,
) -> DatabricksResult {
    let Path(id) = id.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    if id != WAREHOUSE_ID {
        return Err(ScimError::NotFound(format!(
            "warehouse {} does not exist; this server has one, {WAREHOUSE_ID}",
            id.chars().take(64).collect::<String>()
        ))
        .into());
    }
    Ok(Json(warehouse()).into_response())
}

async fn execute(
    context: DatabricksContext,
    State(state): State<AppState>,
    body: Body,
) -> DatabricksResult {
    let body: ExecuteStatementBody = json_request(body, MAX_BODY_BYTES).await?;
    let request = StatementRequest::try_from(body)?;
    let caller = state.governance.caller(&context.actor);
    let outcome = caller
        .run_sql(
            &request.statement,
            request.catalog.as_deref(),
            request.schema.as_deref(),
        )
        .await;
    let id = state.services.ids().uuid();
    let answer = match outcome {
        Ok(outcome) => succeeded(&id, outcome),
        // A statement that could not run because the database is down is not a failed
        // statement but a request to try again (503, which the SDKs retry).
        Err(error @ (ScimError::Unavailable(_) | ScimError::OutcomeUnknown(_))) => {
            return Err(error.into())
        }
        Err(error) => {
            tracing::info!(code = error.code(), %error, "statement failed");
            json!({
                "statement_id": id,
                "status": {"state": "FAILED", "error": statement_error(&error)},
            })
        }
    };
    state.recent_statements.keep(&context.actor, &id, &answer);
    Ok(Json(answer).into_response())
}

/// A `SUCCEEDED` answer with its whole result inline, in one chunk, as `JSON_ARRAY` of
/// strings (every column here is a `STRING`).
fn succeeded(id: &str, outcome: Outcome) -> Value {
    let (columns, rows): (Vec<&str>, Vec<Value>) = match outcome {
        Outcome::Done => (Vec::new(), Vec::new()),
        Outcome::Rows { columns, rows } => {
            (columns, rows.into_iter().map(|row| json!(row)).collect())
        }
        Outcome::Table { columns, rows } => {
            (columns, rows.into_iter().map(|row| json!(row)).collect())
        }
    };
    let columns: Vec<Value> = columns
        .iter()
        .enumerate()
        .map(|(position, name)| {
            json!({
                "name": name,
                "position": position,
                "type_name": "STRING",
                "type_text": "STRING",
            })
        })
        .collect();
    let count = rows.len();
    json!({
        "statement_id": id,
        "status": {"state": "SUCCEEDED"},
        "manifest": {
            "format": "JSON_ARRAY",
            "schema": {"column_count": columns.len(), "columns": columns},
            "total_row_count": count,
            "total_chunk_count": 1,
            "truncated": false,
            "chunks": [{"chunk_index": 0, "row_offset": 0, "row_count": count}],
        },
        "result": {
            "chunk_index": 0,
            "row_offset": 0,
            "row_count": count,
            "data_array": rows,
        },
    })
}

async fn get_statement(
    context: DatabricksContext,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> DatabricksResult {
    let Path(id) = id.map_err(|rejection| ScimError::invalid_value(rejection.body_text()))?;
    let answer = state
        .recent_statements
        .find(&state.services, &context.actor, &id)
        .await?;
    Ok(Json(answer).into_response())
}
