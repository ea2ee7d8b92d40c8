//! The one query Scimitar answers over data: `SELECT` from the audit trail as Databricks'
//! `system.access.audit` table, with the common filters and projections.
//!
//! ```text
//! SELECT <* | column, ...> FROM system.access.audit
//!   [WHERE <condition> [AND <condition>]...]
//!   [ORDER BY event_time [ASC | DESC]]
//!   [LIMIT <n>]
//! condition: <column> (= | <> | != | < | <= | > | >=) <literal>
//!          | <column> [NOT] IN (<literal>, ...)
//!          | <column> [NOT] LIKE '<pattern>'
//!          | <column> IS [NOT] NULL
//! literal:   '<text>' | <number> | TIMESTAMP '<time>' | DATE '<date>'
//! ```
//!
//! Columns are those of [`AUDIT_COLUMNS`], nested ones written with dots
//! (`user_identity.email`, `response.status_code`). Anything else (`OR`, joins, functions,
//! grouping, another table) is refused with a message naming what was found and where, so
//! nobody mistakes an unsupported query for an empty answer. Pure: the application evaluates
//! the parsed query over the stored events.

use super::lexer::{tokenize, Token, TokenKind};
use super::{quote_source, StatementError, MAX_STATEMENT_BYTES};

/// The columns of `system.access.audit` that can be selected and filtered, in the order
/// `SELECT *` returns the top-level ones. Nested fields are selectable by their dotted name.
pub const AUDIT_COLUMNS: &[&str] = &[
    "version",
    "event_time",
    "event_date",
    "workspace_id",
    "source_ip_address",
    "user_agent",
    "user_identity",
    "service_name",
    "action_name",
    "request_id",
    "request_params",
    "response",
    "audit_level",
    "account_id",
    "event_id",
    "audit_seq",
    "user_identity.email",
    "user_identity.subject_name",
    "user_identity.credential_kind",
    "user_identity.credential_id",
    "response.status_code",
    "response.error_message",
    "response.result",
];

/// How many of [`AUDIT_COLUMNS`] `SELECT *` returns (the top-level ones).
pub const AUDIT_STAR_COLUMNS: usize = 16;

/// A parsed `SELECT ... FROM system.access.audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The columns selected, each one of [`AUDIT_COLUMNS`].
    pub columns: Vec<&'static str>,
    /// Conditions that must all hold.
    pub conditions: Vec<AuditCondition>,
    /// `ORDER BY event_time`: `Some(true)` descending, `Some(false)` ascending; without it,
    /// the trail's order.
    pub descending: Option<bool>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCondition {
    pub column: &'static str,
    pub test: AuditTest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTest {
    Compare(Comparison, AuditLiteral),
    In {
        negated: bool,
        values: Vec<AuditLiteral>,
    },
    Like {
        negated: bool,
        pattern: String,
    },
    IsNull {
        negated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// A literal as written: text (from quotes, or after `TIMESTAMP`/`DATE`) or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditLiteral {
    Text(String),
    Number(String),
}

/// The table's name, lower case, parts joined with dots.
const TABLE: &str = "system.access.audit";

/// Parses `text` as a query of the audit table. `Ok(None)` when it is not a `SELECT` at all
/// (so it is another kind of statement); an error for a `SELECT` that is not understood.
pub fn parse_audit_query(text: &str) -> Result<Option<AuditQuery>, StatementError> {
    if text.len() > MAX_STATEMENT_BYTES {
        return Err(StatementError {
            position: 0,
            found: "the statement".into(),
            message: format!("the statement is longer than {MAX_STATEMENT_BYTES} bytes"),
        });
    }
    let tokens = tokenize(text)?;
    if !tokens
        .first()
        .is_some_and(|token| token.is_keyword("SELECT"))
    {
        return Ok(None);
    }
    let mut parser = Parser {
        text,
        tokens,
        at: 1,
    };
    parser.query().map(Some)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn error(&self, expected: &str) -> StatementError {
        match self.peek() {
            Some(token) => {
                let found = quote_source(&self.text[token.start..token.end]);
                StatementError {
                    position: token.start,
                    message: format!(
                        "expected {expected}, found {found} at offset {}; Scimitar understands \
                         SELECT <columns> FROM system.access.audit [WHERE <conditions joined by \
                         AND>] [ORDER BY event_time [DESC]] [LIMIT n]",
                        token.start
                    ),
                    found,
                }
            }
            None => StatementError {
                position: self.text.len(),
                found: "end of input".into(),
                message: format!("expected {expected}, found end of input"),
            },
        }
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|token| token.is_keyword(keyword)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn symbol(&mut self, symbol: char) -> bool {
        if self.peek().is_some_and(|token| token.is_symbol(symbol)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A name part: a word or a backticked name.
    fn name_part(&mut self) -> Option<String> {
        let part = match &self.peek()?.kind {
            TokenKind::Word(word) => word.clone(),
            TokenKind::Quoted(name) => name.clone(),
            _ => return None,
        };
        self.at += 1;
        Some(part)
    }

    /// A dotted name, lower case.
    fn dotted_name(&mut self) -> Option<String> {
        let mut name = self.name_part()?.to_ascii_lowercase();
        while self.peek().is_some_and(|token| token.is_symbol('.')) {
            self.at += 1;
            name.push('.');
            name.push_str(&self.name_part()?.to_ascii_lowercase());
        }
        Some(name)
    }

    fn column(&mut self) -> Result<&'static str, StatementError> {
        let start = self.at;
        let Some(name) = self.dotted_name() else {
            return Err(self.error("a column of system.access.audit"));
        };
        AUDIT_COLUMNS
            .iter()
            .find(|column| **column == name)
            .copied()
            .ok_or_else(|| {
                self.at = start;
                let mut error = self.error("a column of system.access.audit");
                error.message = format!(
                    "system.access.audit has no column {} (offset {}); its columns are {}",
                    quote_source(&name),
                    error.position,
                    AUDIT_COLUMNS.join(", ")
                );
                error
            })
    }

    fn query(&mut self) -> Result<AuditQuery, StatementError> {
        let mut columns = Vec::new();
        if self.symbol('*') {
            columns.extend(AUDIT_COLUMNS.iter().take(AUDIT_STAR_COLUMNS).copied());
        } else {
            loop {
                columns.push(self.column()?);
                if !self.symbol(',') {
                    break;
                }
            }
        }
        if !self.keyword("FROM") {
            return Err(self.error("FROM"));
        }
        let table_at = self.peek().map_or(self.text.len(), |token| token.start);
        match self.dotted_name() {
            Some(table) if table == TABLE => {}
            _ => {
                return Err(StatementError {
                    position: table_at,
                    found: quote_source(self.text.get(table_at..).unwrap_or_default()),
                    message: format!(
                        "only {TABLE} can be queried (offset {table_at}): Scimitar keeps no \
                         other table's data"
                    ),
                })
            }
        }
        let mut conditions = Vec::new();
        if self.keyword("WHERE") {
            loop {
                conditions.push(self.condition()?);
                if !self.keyword("AND") {
                    break;
                }
            }
        }
        let mut descending = None;
        if self.keyword("ORDER") {
            if !self.keyword("BY") {
                return Err(self.error("BY"));
            }
            if !self
                .peek()
                .is_some_and(|token| token.is_keyword("event_time"))
            {
                return Err(self.error("event_time (the only order understood)"));
            }
            self.at += 1;
            descending = Some(if self.keyword("DESC") {
                true
            } else {
                self.keyword("ASC");
                false
            });
        }
        let mut limit = None;
        if self.keyword("LIMIT") {
            let number = match self.peek().map(|token| &token.kind) {
                Some(TokenKind::Word(word)) => word.parse::<u64>().ok(),
                _ => None,
            };
            let Some(number) = number else {
                return Err(self.error("a number of rows after LIMIT"));
            };
            self.at += 1;
            limit = Some(number);
        }
        self.symbol(';');
        if self.peek().is_some() {
            return Err(self.error("the end of the statement"));
        }
        Ok(AuditQuery {
            columns,
            conditions,
            descending,
            limit,
        })
    }

    fn condition(&mut self) -> Result<AuditCondition, StatementError> {
        let column = self.column()?;
        if self.keyword("IS") {
            let negated = self.keyword("NOT");
            if !self.keyword("NULL") {
                return Err(self.error("NULL"));
            }
            return Ok(AuditCondition {
                column,
                test: AuditTest::IsNull { negated },
            });
        }
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if !self.symbol('(') {
                return Err(self.error("( after IN"));
            }
            let mut values = vec![self.literal()?];
            while self.symbol(',') {
                values.push(self.literal()?);
            }
            if !self.symbol(')') {
                return Err(self.error(", or ) in the IN list"));
            }
            return Ok(AuditCondition {
                column,
                test: AuditTest::In { negated, values },
            });
        }
        if self.keyword("LIKE") {
            let AuditLiteral::Text(pattern) = self.literal()? else {
                self.at -= 1;
                return Err(self.error("a quoted pattern after LIKE"));
            };
            return Ok(AuditCondition {
                column,
                test: AuditTest::Like { negated, pattern },
            });
        }
        if negated {
            return Err(self.error("IN or LIKE after NOT"));
        }
        let comparison = self.comparison()?;
        Ok(AuditCondition {
            column,
            test: AuditTest::Compare(comparison, self.literal()?),
        })
    }

    fn comparison(&mut self) -> Result<Comparison, StatementError> {
        let comparison = if self.symbol('=') {
            Comparison::Equal
        } else if self.symbol('<') {
            if self.symbol('=') {
                Comparison::LessOrEqual
            } else if self.symbol('>') {
                Comparison::NotEqual
            } else {
                Comparison::Less
            }
        } else if self.symbol('>') {
            if self.symbol('=') {
                Comparison::GreaterOrEqual
            } else {
                Comparison::Greater
            }
        } else if self.symbol('!') {
            if !self.symbol('=') {
                return Err(self.error("= after !"));
            }
            Comparison::NotEqual
        } else {
            return Err(self.error("a comparison (=, <>, <, <=, >, >=), IN, LIKE or IS"));
        };
        Ok(comparison)
    }

    fn literal(&mut self) -> Result<AuditLiteral, StatementError> {
        // `TIMESTAMP '...'` and `DATE '...'` are the text they hold: the column decides.
        if self.keyword("TIMESTAMP") || self.keyword("DATE") {
            return match self.peek().map(|token| &token.kind) {
                Some(TokenKind::Text(text)) => {
                    let text = text.clone();
                    self.at += 1;
                    Ok(AuditLiteral::Text(text))
                }
                _ => Err(self.error("a quoted time")),
            };
        }
        let negative = self.symbol('-');
        let literal = match self.peek().map(|token| &token.kind) {
            Some(TokenKind::Text(text)) if !negative => AuditLiteral::Text(text.clone()),
            Some(TokenKind::Word(word)) if word.bytes().all(|byte| byte.is_ascii_digit()) => {
                let mut number = word.clone();
                // A decimal point and fraction are separate tokens.
                if self
                    .tokens
                    .get(self.at + 1)
                    .is_some_and(|token| token.is_symbol('.'))
                {
                    if let Some(TokenKind::Word(fraction)) =
                        self.tokens.get(self.at + 2).map(|token| &token.kind)
                    {
                        if fraction.bytes().all(|byte| byte.is_ascii_digit()) {
                            number = format!("{number}.{fraction}");
                            self.at += 2;
                        }
                    }
                }
                if negative {
                    number.insert(0, '-');
                }
                AuditLiteral::Number(number)
            }
            _ => return Err(self.error("a literal: 'text', a number, or TIMESTAMP '...'")),
        };
        self.at += 1;
        Ok(literal)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_select_of_the_audit_table_with_filters_order_and_limit_parses() {
        let query = parse_audit_query(
            "SELECT event_time, user_identity.email, `action_name` FROM system.access.audit \
             WHERE service_name = 'accounts' AND response.status_code >= 400 \
             AND action_name IN ('add', 'delete') AND request_id LIKE 'req%' \
             AND workspace_id IS NOT NULL AND event_time > TIMESTAMP '2026-01-01' \
             ORDER BY event_time DESC LIMIT 10;",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            query.columns,
            vec!["event_time", "user_identity.email", "action_name"]
        );
        assert_eq!(query.conditions.len(), 6);
        assert_eq!(
            query.conditions[1].test,
            AuditTest::Compare(
                Comparison::GreaterOrEqual,
                AuditLiteral::Number("400".into())
            )
        );
        assert_eq!(query.descending, Some(true));
        assert_eq!(query.limit, Some(10));
    }

    #[test]
    fn star_selects_the_top_level_columns() {
        let query = parse_audit_query("select * from System.Access.Audit")
            .unwrap()
            .unwrap();
        assert_eq!(query.columns.len(), AUDIT_STAR_COLUMNS);
        assert!(query.conditions.is_empty());
    }

    #[test]
    fn other_statements_are_not_audit_queries() {
        assert_eq!(
            parse_audit_query("GRANT SELECT ON TABLE a.b.c TO x").unwrap(),
            None
        );
    }

    #[test]
    fn what_is_not_understood_is_refused_with_where_it_stopped() {
        for (text, needle) in [
            (
                "SELECT * FROM main.sales.orders",
                "only system.access.audit",
            ),
            ("SELECT nope FROM system.access.audit", "no column 'nope'"),
            (
                "SELECT * FROM system.access.audit WHERE action_name = 'a' OR action_name = 'b'",
                "found 'OR'",
            ),
            (
                "SELECT count(*) FROM system.access.audit",
                "no column 'count'",
            ),
            (
                "SELECT * FROM system.access.audit ORDER BY action_name",
                "event_time",
            ),
            (
                "SELECT * FROM system.access.audit GROUP BY action_name",
                "found 'GROUP'",
            ),
            ("SELECT * FROM system.access.audit LIMIT x", "LIMIT"),
        ] {
            let error = parse_audit_query(text).unwrap_err();
            assert!(error.message.contains(needle), "{text}: {}", error.message);
        }
    }
}
