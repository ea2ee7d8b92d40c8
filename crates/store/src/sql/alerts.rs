//! Alerting's SQL, written once for both backends: the rules' rows, the evaluation cursor with
//! its lease (a conditional `UPDATE` of one row per account: whoever's update matched holds
//! it; no `FOR UPDATE SKIP LOCKED`, which SQLite lacks), the outbox with its uniqueness per
//! rule and event, and the reads the evaluator and the delivery worker make.
//!
//! Exactly-once firing does not rest on the lease alone: [`AlertChange::Advance`] moves the
//! cursor only from the position its holder read (a compare-and-set), and an outbox row that
//! already exists for a rule and event is skipped, so a node that lost its lease mid-way
//! writes nothing rather than a second copy.

use crate::alerts::{AlertChange, AlertCursor, AlertDelivery, AlertFiring, StoredAlertRule};
use crate::audit::StoredAuditEvent;
use crate::sql::read::to_i64;
use crate::sql::transaction::{params, query_opt, SqlRow, SqlTransaction};
use scimitar_domain::{AccountId, ScimError, ScimResult, Timestamp};

/// The trail's size, as a subquery on the account `$1`.
const TRAIL_SIZE: &str = "COALESCE((SELECT size FROM audit_heads WHERE account_id = $1), 0)";

fn rule_not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("alert rule {id} not found"))
}

/// Makes the account's cursor at the trail's size, if it has none.
async fn ensure_cursor<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
) -> ScimResult<()> {
    transaction
        .execute(
            &format!(
                "INSERT INTO alert_cursors (account_id, position) VALUES ($1, {TRAIL_SIZE}) \
                 ON CONFLICT (account_id) DO NOTHING"
            ),
            params![account.as_str()],
        )
        .await?;
    Ok(())
}

pub(crate) async fn apply<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    change: &AlertChange,
) -> ScimResult<()> {
    match change {
        AlertChange::CreateRule(rule) => {
            let taken = query_opt(
                transaction,
                "SELECT id FROM alert_rules WHERE account_id = $1 AND (id = $2 OR name = $3)",
                params![account.as_str(), rule.id.as_str(), rule.name.as_str()],
            )
            .await?;
            if taken.is_some() {
                return Err(ScimError::uniqueness(format!(
                    "an alert rule named {:?} already exists in this account",
                    rule.name
                )));
            }
            transaction
                .execute(
                    &format!(
                        "INSERT INTO alert_rules (account_id, id, name, definition, secret, \
                         after_seq, created, updated) \
                         VALUES ($1, $2, $3, $4, $5, {TRAIL_SIZE}, $6, $7)"
                    ),
                    params![
                        account.as_str(),
                        rule.id.as_str(),
                        rule.name.as_str(),
                        rule.definition.as_str(),
                        rule.secret.as_str(),
                        rule.created.as_micros(),
                        rule.updated.as_micros()
                    ],
                )
                .await?;
            ensure_cursor(transaction, account).await
        }
        AlertChange::UpdateRule {
            id,
            name,
            definition,
            secret,
            updated,
        } => {
            let taken = query_opt(
                transaction,
                "SELECT id FROM alert_rules WHERE account_id = $1 AND id <> $2 AND name = $3",
                params![account.as_str(), id.as_str(), name.as_str()],
            )
            .await?;
            if taken.is_some() {
                return Err(ScimError::uniqueness(format!(
                    "an alert rule named {name:?} already exists in this account"
                )));
            }
            let changed = transaction
                .execute(
                    "UPDATE alert_rules SET name = $3, definition = $4, \
                     secret = COALESCE($5, secret), updated = $6 \
                     WHERE account_id = $1 AND id = $2",
                    params![
                        account.as_str(),
                        id.as_str(),
                        name.as_str(),
                        definition.as_str(),
                        secret.as_deref(),
                        updated.as_micros()
                    ],
                )
                .await?;
            if changed == 0 {
                return Err(rule_not_found(id));
            }
            Ok(())
        }
        AlertChange::DeleteRule { id } => {
            let deleted = transaction
                .execute(
                    "DELETE FROM alert_rules WHERE account_id = $1 AND id = $2",
                    params![account.as_str(), id.as_str()],
                )
                .await?;
            if deleted == 0 {
                return Err(rule_not_found(id));
            }
            Ok(())
        }
        AlertChange::TakeLease { owner, now, until } => {
            ensure_cursor(transaction, account).await?;
            transaction
                .execute(
                    "UPDATE alert_cursors SET lease_owner = $2, lease_until = $3 \
                     WHERE account_id = $1 AND (lease_owner IS NULL OR lease_owner = $2 \
                     OR lease_until IS NULL OR lease_until <= $4)",
                    params![
                        account.as_str(),
                        owner.as_str(),
                        until.as_micros(),
                        now.as_micros()
                    ],
                )
                .await?;
            Ok(())
        }
        AlertChange::Advance {
            owner,
            from,
            to,
            firings,
            now,
        } => {
            let moved = transaction
                .execute(
                    "UPDATE alert_cursors SET position = $3 \
                     WHERE account_id = $1 AND position = $2 AND lease_owner = $4",
                    params![account.as_str(), to_i64(*from), to_i64(*to), owner.as_str()],
                )
                .await?;
            if moved == 0 {
                return Err(ScimError::Conflict(
                    "the alert cursor moved or its lease was lost: another node evaluates this \
                     account"
                        .into(),
                ));
            }
            for firing in firings {
                insert_firing(transaction, account, firing, *now).await?;
            }
            Ok(())
        }
        AlertChange::ClaimDelivery {
            id,
            attempts,
            now,
            until,
        } => {
            let claimed = transaction
                .execute(
                    "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt = $5 \
                     WHERE account_id = $1 AND id = $2 AND delivered IS NULL \
                     AND attempts = $3 AND next_attempt <= $4",
                    params![
                        account.as_str(),
                        id.as_str(),
                        i64::from(*attempts),
                        now.as_micros(),
                        until.as_micros()
                    ],
                )
                .await?;
            if claimed == 0 {
                return Err(ScimError::Conflict(format!(
                    "delivery {id} was delivered or claimed by another node"
                )));
            }
            Ok(())
        }
        AlertChange::Delivered { id, at } => {
            transaction
                .execute(
                    "UPDATE alert_outbox SET delivered = $3, last_error = NULL \
                     WHERE account_id = $1 AND id = $2 AND delivered IS NULL",
                    params![account.as_str(), id.as_str(), at.as_micros()],
                )
                .await?;
            Ok(())
        }
        AlertChange::DeliveryFailed {
            id,
            next_attempt,
            error,
        } => {
            transaction
                .execute(
                    "UPDATE alert_outbox SET next_attempt = $3, last_error = $4 \
                     WHERE account_id = $1 AND id = $2 AND delivered IS NULL",
                    params![
                        account.as_str(),
                        id.as_str(),
                        next_attempt.as_micros(),
                        error.as_str()
                    ],
                )
                .await?;
            Ok(())
        }
    }
}

async fn insert_firing<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    firing: &AlertFiring,
    now: Timestamp,
) -> ScimResult<()> {
    transaction
        .execute(
            "INSERT INTO alert_outbox (account_id, id, rule_id, event_seq, url, format, secret, \
             body, attempts, next_attempt, delivered, last_error, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, NULL, NULL, $9) \
             ON CONFLICT (account_id, rule_id, event_seq) DO NOTHING",
            params![
                account.as_str(),
                firing.id.as_str(),
                firing.rule_id.as_str(),
                to_i64(firing.event_seq),
                firing.url.as_str(),
                firing.format.as_str(),
                firing.secret.as_str(),
                firing.body.as_str(),
                now.as_micros()
            ],
        )
        .await?;
    Ok(())
}

fn unsigned(value: i64, what: &str) -> ScimResult<u64> {
    u64::try_from(value).map_err(|_| ScimError::internal(format!("a negative {what}")))
}

/// An account's rules, by creation then id.
pub async fn rules<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Vec<StoredAlertRule>> {
    let rows = session
        .query(
            "SELECT id, name, definition, secret, after_seq, created, updated FROM alert_rules \
             WHERE account_id = $1 ORDER BY created, id",
            params![account.as_str()],
        )
        .await?;
    rows.into_iter()
        .map(|mut row| {
            Ok(StoredAlertRule {
                id: row.text(0)?,
                name: row.text(1)?,
                definition: row.text(2)?,
                secret: row.text(3)?,
                after_seq: unsigned(row.integer(4)?, "alert rule position")?,
                created: Timestamp::from_micros(row.integer(5)?),
                updated: Timestamp::from_micros(row.integer(6)?),
            })
        })
        .collect()
}

/// The account's cursor, if evaluation ever started there.
pub async fn cursor<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Option<AlertCursor>> {
    let Some(mut row) = query_opt(
        session,
        "SELECT position, lease_owner, lease_until FROM alert_cursors WHERE account_id = $1",
        params![account.as_str()],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(AlertCursor {
        position: unsigned(row.integer(0)?, "alert cursor")?,
        lease_owner: row.optional_text(1)?,
        lease_until: row.optional_integer(2)?.map(Timestamp::from_micros),
    }))
}

/// The account's events with `seq <= through` and a time after `since` (events without a
/// time are never in a window), in order, at most `limit`: what a window rule re-reads.
pub async fn window<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    since: Timestamp,
    through: u64,
    limit: usize,
) -> ScimResult<Vec<StoredAuditEvent>> {
    let rows = session
        .query(
            "SELECT seq, event, leaf FROM audit_events WHERE account_id = $1 AND seq <= $2 \
             AND event_time > $3 ORDER BY seq LIMIT $4",
            params![
                account.as_str(),
                to_i64(through),
                since.as_micros(),
                to_i64(limit as u64)
            ],
        )
        .await?;
    rows.into_iter()
        .map(|mut row| {
            Ok(StoredAuditEvent {
                seq: unsigned(row.integer(0)?, "audit sequence number")?,
                text: row.text(1)?,
                leaf: row.text(2)?,
            })
        })
        .collect()
}

const DELIVERY_COLUMNS: &str = "account_id, id, rule_id, event_seq, url, format, secret, body, \
     attempts, next_attempt, delivered, last_error, created";

fn delivery(mut row: SqlRow) -> ScimResult<AlertDelivery> {
    Ok(AlertDelivery {
        account: AccountId::new(row.text(0)?),
        firing: AlertFiring {
            id: row.text(1)?,
            rule_id: row.text(2)?,
            event_seq: unsigned(row.integer(3)?, "alert event position")?,
            url: row.text(4)?,
            format: row.text(5)?,
            secret: row.text(6)?,
            body: row.text(7)?,
        },
        attempts: u32::try_from(row.integer(8)?).unwrap_or(u32::MAX),
        next_attempt: Timestamp::from_micros(row.integer(9)?),
        delivered: row.optional_integer(10)?.map(Timestamp::from_micros),
        last_error: row.optional_text(11)?,
        created: Timestamp::from_micros(row.integer(12)?),
    })
}

/// Undelivered outbox rows of every account due at `now`, oldest due first, at most `limit`.
pub async fn deliveries_due<T: SqlTransaction>(
    session: &mut T,
    now: Timestamp,
    limit: usize,
) -> ScimResult<Vec<AlertDelivery>> {
    let rows = session
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_outbox \
                 WHERE delivered IS NULL AND next_attempt <= $1 \
                 ORDER BY next_attempt, created, event_seq, rule_id LIMIT $2"
            ),
            params![now.as_micros(), to_i64(limit as u64)],
        )
        .await?;
    rows.into_iter().map(delivery).collect()
}

/// An account's outbox, delivered or not, by creation then event.
pub async fn deliveries<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Vec<AlertDelivery>> {
    let rows = session
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_outbox WHERE account_id = $1 \
                 ORDER BY created, event_seq, rule_id"
            ),
            params![account.as_str()],
        )
        .await?;
    rows.into_iter().map(delivery).collect()
}

/// What an alerting change records: a rule's creation, update and deletion (its definition,
/// never its secret); `None` for the evaluator's and the delivery worker's bookkeeping.
pub(crate) fn describe(change: &AlertChange) -> Option<crate::sql::audit::Description> {
    use crate::sql::audit::{committed, params_of, target, Description};
    use serde_json::{json, Value};
    let definition = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let (action, params, id) = match change {
        AlertChange::CreateRule(rule) => (
            "createAlertRule",
            json!({"id": rule.id, "name": rule.name, "definition": definition(&rule.definition)}),
            rule.id.as_str(),
        ),
        AlertChange::UpdateRule {
            id,
            name,
            definition: text,
            secret,
            ..
        } => (
            "updateAlertRule",
            json!({
                "id": id,
                "name": name,
                "definition": definition(text),
                "secret_changed": secret.is_some(),
            }),
            id.as_str(),
        ),
        AlertChange::DeleteRule { id } => ("deleteAlertRule", json!({"id": id}), id.as_str()),
        AlertChange::TakeLease { .. }
        | AlertChange::Advance { .. }
        | AlertChange::ClaimDelivery { .. }
        | AlertChange::Delivered { .. }
        | AlertChange::DeliveryFailed { .. } => return None,
    };
    Some(Description {
        service_name: "accounts".to_string(),
        action_name: action.to_string(),
        request_params: params_of(params),
        targets: vec![target("AlertRule", id)],
        response: committed(),
    })
}
