//! The interface the shared SQL code drives a database through: a session (a transaction, or
//! a connection for reads) that runs statements with backend-neutral parameters and returns
//! backend-neutral rows, and the few hooks where the backends really differ: locks that only
//! matter when several writers run at once, how a change's last writes and the access log are
//! sent, and a little SQL
//! text. The messages a client is given for violated constraints live here too, so both
//! backends give the same ones.

use crate::governance::AccessEvent;
use crate::sql::{Dialect, SqlValue};
use scimitar_access::ObjectType;
use scimitar_domain::{AccountId, PrincipalId, ScimError, ScimResult};
use std::future::Future;

/// A parameter of a statement, borrowed from the caller. Statements name parameters `$1`,
/// `$2`, ... in any order; `$n` is the `n`-th of the slice given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    Text(&'a str),
    Integer(i64),
    /// Stored as a boolean by PostgreSQL and as 0/1 by SQLite.
    Bool(bool),
    Null,
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(text: &'a str) -> Self {
        Param::Text(text)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(text: &'a String) -> Self {
        Param::Text(text)
    }
}

impl From<i64> for Param<'_> {
    fn from(number: i64) -> Self {
        Param::Integer(number)
    }
}

impl From<bool> for Param<'_> {
    fn from(flag: bool) -> Self {
        Param::Bool(flag)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Param::Null, Into::into)
    }
}

impl<'a> From<&'a SqlValue> for Param<'a> {
    fn from(value: &'a SqlValue) -> Self {
        match value {
            SqlValue::Text(text) => Param::Text(text),
            SqlValue::Integer(number) => Param::Integer(*number),
        }
    }
}

/// The parameters of a statement: `params![account.as_str(), version]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::transaction::Param::from($value)),*]
    };
}
pub(crate) use params;

/// One value of a result row. PostgreSQL's booleans and smaller integers arrive as integers,
/// as SQLite stores them, so the shared code reads one shape from both.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Text(String),
}

/// A result row, read by column index; text is taken out rather than copied.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRow {
    cells: Vec<Cell>,
}

impl SqlRow {
    pub fn new(cells: Vec<Cell>) -> SqlRow {
        SqlRow { cells }
    }

    fn cell(&self, index: usize) -> ScimResult<&Cell> {
        self.cells
            .get(index)
            .ok_or_else(|| ScimError::internal(format!("a row has no column {index}")))
    }

    fn unexpected(index: usize, found: &Cell, wanted: &str) -> ScimError {
        let found = match found {
            Cell::Null => "NULL",
            Cell::Integer(_) => "an integer",
            Cell::Text(_) => "text",
        };
        ScimError::internal(format!("column {index} holds {found}, not {wanted}"))
    }

    /// The text in column `index`, taken out of the row.
    pub fn text(&mut self, index: usize) -> ScimResult<String> {
        self.optional_text(index)?
            .ok_or_else(|| SqlRow::unexpected(index, &Cell::Null, "text"))
    }

    pub fn optional_text(&mut self, index: usize) -> ScimResult<Option<String>> {
        let cell = self
            .cells
            .get_mut(index)
            .ok_or_else(|| ScimError::internal(format!("a row has no column {index}")))?;
        match std::mem::replace(cell, Cell::Null) {
            Cell::Text(text) => Ok(Some(text)),
            Cell::Null => Ok(None),
            other => Err(SqlRow::unexpected(index, &other, "text")),
        }
    }

    pub fn integer(&self, index: usize) -> ScimResult<i64> {
        self.optional_integer(index)?
            .ok_or_else(|| SqlRow::unexpected(index, &Cell::Null, "an integer"))
    }

    pub fn optional_integer(&self, index: usize) -> ScimResult<Option<i64>> {
        match self.cell(index)? {
            Cell::Integer(number) => Ok(Some(*number)),
            Cell::Null => Ok(None),
            other => Err(SqlRow::unexpected(index, other, "an integer")),
        }
    }

    pub fn boolean(&self, index: usize) -> ScimResult<bool> {
        Ok(self.integer(index)? != 0)
    }
}

/// A lock held until the transaction ends, for checks that must not run at the same time in
/// two transactions. Only a backend with several concurrent writers needs them (PostgreSQL
/// takes advisory locks); SQLite's one writer already runs every change alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock<'a> {
    /// Around the test "does the database hold an account?" and the account's creation.
    FirstAccount,
    /// Around the cycle check of a group-in-group addition, per account: two opposite
    /// additions would each pass a check that cannot see the other.
    GroupNesting(&'a AccountId),
    /// Around the check of an object's ACL and the write computed from it.
    ObjectAcl {
        account: &'a AccountId,
        object_type: ObjectType,
        object_id: &'a str,
    },
    /// Around the last-admin check, per account: two removals of the two last admins would
    /// each see the other admin still there.
    Admins(&'a AccountId),
    /// A principal's row, as for an update, before a change reads it and decides on it
    /// (PostgreSQL: `FOR UPDATE`).
    Principal(&'a AccountId, &'a PrincipalId),
}

/// An access-log entry a change makes, with its account.
pub type LogEntry = (AccountId, AccessEvent);

/// A statement whose success alone matters, not its rows: one of the writes that end a change
/// ([`SqlTransaction::finish_change`]).
pub struct SqlStatement<'a> {
    pub sql: &'static str,
    pub params: Vec<Param<'a>>,
}

/// The future of a session's operation: its outcome, `Send` so that the shared code's futures
/// are `Send` wherever the session is.
pub trait SqlFuture<T>: Future<Output = ScimResult<T>> + Send {}

impl<T, F: Future<Output = ScimResult<T>> + Send> SqlFuture<T> for F {}

/// A database session the shared code runs statements on: a write transaction, or a
/// connection (or read transaction) for reads.
///
/// Every method returns a `Send` future. SQLite's do their work at once and return a ready
/// future (its writer thread and readers drive the shared code with a poll loop that never
/// waits); PostgreSQL's await the server. The shared code is generic over this trait, so each
/// backend gets its own compiled copy and PostgreSQL's futures stay `Send`.
pub trait SqlTransaction {
    /// How this backend's SQL differs: placeholders, text functions, joins, row locks.
    const DIALECT: &'static dyn Dialect;

    /// Runs a statement and returns how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<u64>;

    /// Runs a query of a fixed shape (kept prepared).
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<Vec<SqlRow>>;

    /// Runs a query whose text follows client input (a filter): as many shapes as clients
    /// invent, which a backend with an unbounded statement cache must not keep.
    fn query_once(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<Vec<SqlRow>>;

    /// Takes a lock held until the transaction ends (a no-op where one writer runs alone).
    fn lock(&mut self, lock: Lock<'_>) -> impl SqlFuture<()>;

    /// Ends a change: runs `statements` (its audit event's writes), then appends its
    /// access-log entries, in order, as the last thing before its commit, and returns the rows
    /// each of `statements` answered. They run on every write while the account's audit head
    /// is locked (see `sql::audit`), so a backend that can sends them all before it waits for
    /// any answer: PostgreSQL pipelines them on the connection, one round trip for all.
    fn finish_change(
        &mut self,
        statements: &[SqlStatement<'_>],
        entries: &[LogEntry],
    ) -> impl SqlFuture<Vec<Vec<SqlRow>>>;

    /// Called before an import writes its records, which fill tables from empty.
    fn before_bulk_load(&mut self) -> impl SqlFuture<()>;
}

/// The first row of a query, if any.
pub async fn query_opt<T: SqlTransaction>(
    transaction: &mut T,
    sql: &str,
    params: &[Param<'_>],
) -> ScimResult<Option<SqlRow>> {
    Ok(transaction.query(sql, params).await?.into_iter().next())
}

/// The first row of a query that always returns one (an aggregate, `EXISTS`).
pub async fn query_one<T: SqlTransaction>(
    transaction: &mut T,
    sql: &str,
    params: &[Param<'_>],
) -> ScimResult<SqlRow> {
    query_opt(transaction, sql, params)
        .await?
        .ok_or_else(|| ScimError::internal(format!("no row from: {sql}")))
}

/// `LIMIT n OFFSET m` for a statement whose other parameters are `params`: written into the
/// text or bound after them, as the backend prefers.
pub fn limit_clause<T: SqlTransaction>(
    limit: i64,
    offset: Option<i64>,
    params: &mut Vec<Param<'_>>,
) -> String {
    let in_text = T::DIALECT.limits_in_text();
    let mut place = |value: i64| {
        if in_text {
            value.to_string()
        } else {
            params.push(Param::Integer(value));
            format!("${}", params.len())
        }
    };
    let limit = format!("LIMIT {}", place(limit));
    match offset {
        Some(offset) => format!("{limit} OFFSET {}", place(offset)),
        None => limit,
    }
}

/// A unique index whose violation is the client's doing, and what the client is told.
/// SQLite names the indexed columns in its error, PostgreSQL the index.
pub struct UniqueIndex {
    pub name: &'static str,
    pub columns: &'static str,
    pub message: &'static str,
}

/// Every such index: the one place these messages are written.
pub const UNIQUE_INDEXES: &[UniqueIndex] = &[
    UniqueIndex {
        name: "principals_unique_user_name",
        columns: "principals.account_id, principals.user_name_lower",
        message: "a user with this userName already exists in this account (userName is compared ignoring case)",
    },
    UniqueIndex {
        name: "principals_unique_group_name",
        columns: "principals.account_id, principals.display_name_lower",
        message: "a group with this displayName already exists in this account (compared ignoring case)",
    },
    UniqueIndex {
        name: "principals_unique_application_id",
        columns: "principals.account_id, principals.application_id_lower",
        message: "a service principal with this applicationId already exists in this account",
    },
    UniqueIndex {
        name: "workspaces_unique_deployment_name",
        columns: "workspaces.deployment_name",
        message: "a workspace with this deployment name already exists",
    },
    UniqueIndex {
        name: "workspaces_pkey",
        columns: "workspaces.id",
        message: "a workspace with this id already exists",
    },
    UniqueIndex {
        name: "principals_pkey",
        columns: "principals.account_id, principals.id",
        message: "a principal with this id already exists in this account",
    },
    UniqueIndex {
        name: "federation_policies_by_owner",
        columns: "federation_policies.account_id, federation_policies.owner, federation_policies.policy_id",
        message: "a federation policy with this policy_id already exists",
    },
];

/// The uniqueness error for the first index `violated` says was violated, if any.
pub fn unique_violation(violated: impl Fn(&UniqueIndex) -> bool) -> Option<ScimError> {
    UNIQUE_INDEXES
        .iter()
        .find(|index| violated(index))
        .map(|index| ScimError::uniqueness(index.message))
}

/// Text a backend cannot store (PostgreSQL's text cannot hold U+0000, which JSON strings may;
/// the stored document escapes it, but an indexed column or a filter operand cannot): the
/// client's value, not a fault of the server.
pub fn unstorable_text() -> ScimError {
    ScimError::invalid_value("a value contains a character that cannot be stored (U+0000)")
}
