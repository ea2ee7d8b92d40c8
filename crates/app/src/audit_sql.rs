//! `SELECT ... FROM system.access.audit` answered from the audit trail, through the Statement
//! Execution API and `scimitar sql` (the query is parsed by
//! `scimitar_access::statement::audit_query`). Each stored event is read as its Databricks
//! row (`scimitar_store::audit::databricks_row`), with `user_identity.email` looked up from the
//! directory (the acting principal's `userName`, or a service principal's `applicationId`;
//! null once it is deleted), then filtered, ordered and projected here.
//!
//! Answered only to admins: an account admin sees every row of the account; an admin of the
//! workspace the statement runs in who is no account admin sees that workspace's rows only
//! (`Services::audit_sql_scope`).

use crate::governance::{like, Outcome};
use crate::Services;
use scimitar_access::statement::audit_query::{AuditLiteral, AuditQuery, AuditTest, Comparison};
use scimitar_domain::{AccountId, PrincipalId, ScimError, ScimResult, Timestamp, WorkspaceId};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashMap;

/// The most rows one answer holds: a larger answer asks for a `LIMIT` or a narrower `WHERE`.
pub const MAX_AUDIT_SQL_ROWS: usize = 10_000;
/// The most matching events one query holds in memory while it orders them.
const MAX_AUDIT_SQL_MATCHES: usize = 100_000;
/// Events read from storage at a time.
const PAGE: usize = 10_000;

/// Columns compared as times (`TIMESTAMP '...'`, `DATE '...'` or plain text literals).
fn is_time_column(column: &str) -> bool {
    matches!(column, "event_time" | "event_date")
}

/// A time as a query may write it: RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]` (UTC), or a date
/// (its midnight, UTC).
fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Some(time) = Timestamp::parse_rfc3339(text) {
        return Some(time);
    }
    if text.len() == 10 {
        return Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"));
    }
    let with_t = text.replacen(' ', "T", 1);
    Timestamp::parse_rfc3339(&with_t).or_else(|| Timestamp::parse_rfc3339(&format!("{with_t}Z")))
}

fn literal_text(literal: &AuditLiteral) -> &str {
    match literal {
        AuditLiteral::Text(text) | AuditLiteral::Number(text) => text,
    }
}

/// The value at a dotted column of a row; `None` for absent or null.
fn lookup<'a>(row: &'a Value, column: &str) -> Option<&'a Value> {
    column
        .split('.')
        .try_fold(row, |value, part| value.get(part))
        .filter(|value| !value.is_null())
}

/// A cell as the Statement Execution API's `JSON_ARRAY` carries it: text, or null.
fn cell(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// How a value compares with a literal: as times on time columns, as numbers when both are
/// numbers, else as text.
fn compare(column: &str, value: &Value, literal: &AuditLiteral) -> Option<Ordering> {
    let text = cell(Some(value))?;
    let wanted = literal_text(literal);
    if is_time_column(column) {
        return Some(parse_time(&text)?.cmp(&parse_time(wanted)?));
    }
    if let (Ok(found), Ok(wanted)) = (text.parse::<f64>(), wanted.parse::<f64>()) {
        return found.partial_cmp(&wanted);
    }
    Some(text.as_str().cmp(wanted))
}

fn holds(row: &Value, column: &str, test: &AuditTest) -> bool {
    let value = lookup(row, column);
    match test {
        AuditTest::IsNull { negated } => value.is_none() != *negated,
        AuditTest::Compare(comparison, literal) => {
            let Some(ordering) = value.and_then(|value| compare(column, value, literal)) else {
                return false;
            };
            match comparison {
                Comparison::Equal => ordering == Ordering::Equal,
                Comparison::NotEqual => ordering != Ordering::Equal,
                Comparison::Less => ordering == Ordering::Less,
                Comparison::LessOrEqual => ordering != Ordering::Greater,
                Comparison::Greater => ordering == Ordering::Greater,
                Comparison::GreaterOrEqual => ordering != Ordering::Less,
            }
        }
        AuditTest::In { negated, values } => {
            let Some(value) = value else {
                return false;
            };
            let found = values
                .iter()
                .any(|literal| compare(column, value, literal) == Some(Ordering::Equal));
            found != *negated
        }
        AuditTest::Like { negated, pattern } => match cell(value) {
            Some(text) => like(pattern, &text) != *negated,
            None => false,
        },
    }
}

/// Refuses literals a time column could never match, rather than answering nothing.
fn check_literals(query: &AuditQuery) -> ScimResult<()> {
    for condition in &query.conditions {
        if !is_time_column(condition.column) {
            continue;
        }
        let literals: Vec<&AuditLiteral> = match &condition.test {
            AuditTest::Compare(_, literal) => vec![literal],
            AuditTest::In { values, .. } => values.iter().collect(),
            _ => Vec::new(),
        };
        for literal in literals {
            if parse_time(literal_text(literal)).is_none() {
                return Err(ScimError::invalid_value(format!(
                    "{}: {:?} is not a time (write TIMESTAMP '2026-01-31T12:00:00Z' or DATE \
                     '2026-01-31')",
                    condition.column,
                    literal_text(literal)
                )));
            }
        }
    }
    Ok(())
}

/// Answers `query` over `account`'s trail for `principal` acting in `workspace`.
pub(crate) async fn run(
    services: &Services,
    account: &AccountId,
    principal: &PrincipalId,
    workspace: Option<&WorkspaceId>,
    query: AuditQuery,
) -> ScimResult<Outcome> {
    let only_workspace = services
        .audit_sql_scope(account, principal, workspace)
        .await?;
    check_literals(&query)?;
    let mut emails: HashMap<String, Option<String>> = HashMap::new();
    let mut matches: Vec<(Option<Timestamp>, Value)> = Vec::new();
    let mut after = 0;
    // Without ORDER BY, rows come in the trail's order and a LIMIT ends the scan early.
    let enough = match (query.descending, query.limit) {
        (None, Some(limit)) => usize::try_from(limit).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    'scan: loop {
        let page = services.store.audit_events(account, after, PAGE).await?;
        let last_page = page.len() < PAGE;
        for stored in page {
            after = stored.seq;
            let event: scimitar_store::AuditEvent = serde_json::from_str(&stored.text)
                .map_err(|error| ScimError::internal_caused_by("a stored audit event", error))?;
            if let Some(only) = &only_workspace {
                if event.workspace_id.as_deref() != Some(only.as_str()) {
                    continue;
                }
            }
            let mut row = scimitar_store::audit::databricks_row(&event);
            if let Some(identity) = &event.user_identity {
                let email = match emails.get(&identity.principal_id) {
                    Some(email) => email.clone(),
                    None => {
                        let id = PrincipalId::new(identity.principal_id.clone());
                        let email = services.store.principal(account, &id).await?.and_then(|p| {
                            p.string_attribute("userName")
                                .or_else(|| p.string_attribute("applicationId"))
                                .map(str::to_string)
                        });
                        emails.insert(identity.principal_id.clone(), email.clone());
                        email
                    }
                };
                if let Some(Value::Object(user)) = row.get_mut("user_identity") {
                    user.insert("email".into(), email.map_or(Value::Null, Value::String));
                }
            }
            let all = query
                .conditions
                .iter()
                .all(|condition| holds(&row, condition.column, &condition.test));
            if !all {
                continue;
            }
            if matches.len() == MAX_AUDIT_SQL_MATCHES {
                return Err(ScimError::invalid_value(format!(
                    "more than {MAX_AUDIT_SQL_MATCHES} events match: narrow the WHERE clause \
                     (event_time, action_name, ...) or use LIMIT without ORDER BY"
                )));
            }
            let time = event
                .event_time
                .as_deref()
                .and_then(Timestamp::parse_rfc3339);
            matches.push((time, row));
            if matches.len() >= enough {
                break 'scan;
            }
        }
        if last_page {
            break;
        }
    }
    // Stable: events of the same time keep the trail's order.
    match query.descending {
        Some(false) => matches.sort_by_key(|(time, _)| *time),
        Some(true) => {
            matches.reverse();
            matches.sort_by(|(left, _), (right, _)| right.cmp(left));
        }
        None => {}
    }
    if let Some(limit) = query.limit {
        matches.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    if matches.len() > MAX_AUDIT_SQL_ROWS {
        return Err(ScimError::invalid_value(format!(
            "{} rows match, more than the {MAX_AUDIT_SQL_ROWS} one answer holds: add a LIMIT or \
             narrow the WHERE clause",
            matches.len()
        )));
    }
    let rows = matches
        .iter()
        .map(|(_, row)| {
            query
                .columns
                .iter()
                .map(|column| cell(lookup(row, column)))
                .collect()
        })
        .collect();
    Ok(Outcome::Table {
        columns: query.columns,
        rows,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn times_compare_as_times_numbers_as_numbers_and_nulls_match_nothing() {
        let row = json!({
            "event_time": "2026-12-05T10:00:00.000Z",
            "event_date": "2026-12-05",
            "response": {"status_code": 403, "error_message": null},
            "action_name": "tokenLogin",
        });
        let text = |t: &str| AuditLiteral::Text(t.into());
        let number = |t: &str| AuditLiteral::Number(t.into());
        assert!(holds(
            &row,
            "event_time",
            &AuditTest::Compare(Comparison::Greater, text("2026-12-05 09:59:59"))
        ));
        assert!(holds(
            &row,
            "event_date",
            &AuditTest::Compare(Comparison::Equal, text("2026-12-05"))
        ));
        assert!(holds(
            &row,
            "response.status_code",
            &AuditTest::Compare(Comparison::GreaterOrEqual, number("400"))
        ));
        assert!(!holds(
            &row,
            "response.status_code",
            &AuditTest::Compare(Comparison::Less, number("99"))
        ));
        assert!(holds(
            &row,
            "response.error_message",
            &AuditTest::IsNull { negated: false }
        ));
        assert!(!holds(
            &row,
            "response.error_message",
            &AuditTest::Compare(Comparison::NotEqual, text("x"))
        ));
        assert!(holds(
            &row,
            "action_name",
            &AuditTest::Like {
                negated: false,
                pattern: "token%".into()
            }
        ));
        assert!(holds(
            &row,
            "action_name",
            &AuditTest::In {
                negated: true,
                values: vec![text("add")]
            }
        ));
    }
}
