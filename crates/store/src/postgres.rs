//! The PostgreSQL backend: a pool of connections, one transaction per change, and the same
//! behaviour as the SQLite backend: what a change means is the shared SQL of
//! [`crate::sql::write`], and the conformance suite runs on both.
//!
//! Durability: every session runs with `synchronous_commit = on`, set in its startup options so
//! that a role or database default cannot turn it off; a transaction's commit record is flushed
//! before [`crate::Store::apply`] returns, and therefore before any 2xx is sent.
//!
//! Several Scimitar nodes may share one database. What keeps them correct, all inside the
//! database rather than in any one process:
//! - uniqueness of userName, displayName and applicationId: the partial unique indexes. Two
//!   nodes inserting one name at once both reach the index; the second waits for the first to
//!   commit and then fails with a unique violation, which becomes a SCIM `uniqueness` error.
//! - `If-Match` and lost updates: every update is `UPDATE ... WHERE version = expected`, which
//!   a concurrent writer of the same row re-checks against the committed row after waiting for
//!   its lock.
//! - members deleted while being added: the member's row is read `FOR KEY SHARE`, so a
//!   concurrent delete waits for the adding transaction and then removes the new membership by
//!   cascade, instead of the add failing on a foreign key.
//! - the checks that several writers could each pass alone (the first account, membership
//!   cycles, an object's ACL, the last admin): transaction-scoped advisory locks, taken through
//!   [`SqlTransaction::lock`]; and the access log's order, see [`PostgresSession::finish_change`].
//! - schema migrations: run under an advisory lock, see [`PostgresStore::migrate`].
//!
//! A transaction that PostgreSQL aborts as a deadlock or serialization failure is retried whole
//! (a [`Change`] is a value, so applying it again is exact).

use crate::audit::AuditContext;
use crate::change::Change;
use crate::migrations::POSTGRES_MIGRATIONS;
use crate::sql::list_anchors::ListAnchors;
use crate::sql::read;
use crate::sql::store::{Read, SqlBackend, Work, WriteHealth};
use crate::sql::transaction::{
    unique_violation, unstorable_text, Cell, Lock, LogEntry, Param, SqlFuture, SqlRow,
    SqlStatement, SqlTransaction,
};
use crate::sql::{write, Dialect, PostgresDialect};
use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::tokio_postgres::types::{ToSql, Type};
use deadpool_postgres::tokio_postgres::{self, IsolationLevel, NoTls, Row, Statement};
use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use scimitar_domain::{AccountId, ScimError, ScimResult};
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "testing")]
pub mod scratch;

/// The key of the advisory lock that migrations run under ("scimitar" in ASCII). Advisory locks
/// are per database, so nodes sharing a database share this lock and no other.
const MIGRATION_LOCK_KEY: i64 = 0x7363_696d_6974_6172;

/// The key of the advisory lock under which a node creates the first account of an empty
/// database ("scimacct" in ASCII).
const FIRST_ACCOUNT_LOCK_KEY: i64 = 0x7363_696d_6163_6374;

/// The key of the advisory lock under which access-log entries are numbered and committed
/// ("scimlog!" in ASCII). See [`PostgresSession::finish_change`].
const ACCESS_LOG_LOCK_KEY: i64 = 0x7363_696d_6c6f_6721;

/// The first halves of the two-part advisory lock keys taken per account or per object; the
/// second half hashes the account (and the object). Two-part keys never collide with the
/// one-part keys above: PostgreSQL keeps the two forms apart.
const GROUP_NESTING_LOCK_CLASS: i32 = 0x5343_4e47;
const OBJECT_ACL_LOCK_CLASS: i32 = 0x5341_434c;
const ADMINS_LOCK_CLASS: i32 = 0x5341_444d;

/// How many times a change that PostgreSQL aborted as a deadlock or serialization failure is
/// tried in all. Such aborts are rare and say nothing about the change itself.
const APPLY_ATTEMPTS: usize = 4;

/// The default pool size: enough for a node's concurrent requests, small enough that a handful
/// of nodes fit under PostgreSQL's default `max_connections` of 100.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// Settings every session gets: commits flushed before they are acknowledged, and no NOTICE
/// chatter (such as "relation already exists, skipping" from migrations) in the server's log.
const SESSION_OPTIONS: &str = "-c synchronous_commit=on -c client_min_messages=warning";

/// How often a node looks at whether its tables' planner statistics have gone stale.
const STATISTICS_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// A handle on the pool; clones share it.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    write_health: Arc<WriteHealth>,
    list_anchors: Arc<ListAnchors>,
}

/// A driver error, kept whole as its cause: unavailability when the connection to the server
/// is the problem (see [`is_unavailability`]), an internal error otherwise.
fn internal(context: impl Into<String>, error: tokio_postgres::Error) -> ScimError {
    if is_unavailability(&error) {
        ScimError::unavailable_caused_by(context, error)
    } else {
        ScimError::internal_caused_by(context, error)
    }
}

/// Whether the error says PostgreSQL could not be reached or dropped the connection, rather
/// than refusing the statement: a closed connection, an I/O error, a connection exception
/// (class 08), the server shutting down or starting (57P01-57P03), or too many connections.
/// Such a fault passes; the client is told to retry.
fn is_unavailability(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if inner.is::<std::io::Error>() {
            return true;
        }
        cause = inner.source();
    }
    false
}

/// Whether PostgreSQL aborted the transaction to resolve a conflict with another one, so that
/// trying the change again is worthwhile.
fn is_transient(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|database| {
        let code = database.code();
        code == &SqlState::T_R_DEADLOCK_DETECTED || code == &SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Maps a failed statement to the client-facing error it stands for: a violated unique index
/// named in [`crate::sql::transaction::UNIQUE_INDEXES`], text PostgreSQL cannot store, else
/// an internal error with the driver's error as its cause.
fn statement_error(sql: &str, error: tokio_postgres::Error) -> ScimError {
    if let Some(database) = error.as_db_error() {
        let code = database.code();
        if code == &SqlState::UNIQUE_VIOLATION {
            let constraint = database.constraint();
            if let Some(uniqueness) = unique_violation(|index| constraint == Some(index.name)) {
                return uniqueness;
            }
        }
        if code == &SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || code == &SqlState::UNTRANSLATABLE_CHARACTER
        {
            return unstorable_text();
        }
    }
    internal(format!("postgres: {sql}"), error)
}

/// A parameter as the type PostgreSQL inferred for its placeholder: the shared SQL binds
/// booleans of filters as 0/1, which `BOOLEAN` columns take as `bool`, and a `NULL` must still
/// be of the placeholder's type.
fn bind<'a>(value: Param<'a>, ty: &Type) -> Box<dyn ToSql + Sync + Send + 'a> {
    let number = match value {
        Param::Text(text) => return Box::new(text),
        Param::Null if *ty == Type::BOOL => return Box::new(None::<bool>),
        Param::Null if *ty == Type::INT4 => return Box::new(None::<i32>),
        Param::Null if *ty == Type::INT8 => return Box::new(None::<i64>),
        Param::Null => return Box::new(None::<&str>),
        Param::Bool(flag) => i64::from(flag),
        Param::Integer(number) => number,
    };
    if *ty == Type::BOOL {
        Box::new(number != 0)
    } else if *ty == Type::INT4 {
        let clamped = number.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        Box::new(i32::try_from(clamped).unwrap_or_default())
    } else {
        Box::new(number)
    }
}

/// A row as the shared SQL reads it: booleans and integers as integers, text as text.
fn decode(sql: &str, row: &Row) -> ScimResult<SqlRow> {
    let cell = |index: usize, ty: &Type| -> Result<Cell, tokio_postgres::Error> {
        let integer = |value: Option<i64>| value.map_or(Cell::Null, Cell::Integer);
        Ok(if *ty == Type::BOOL {
            integer(row.try_get::<_, Option<bool>>(index)?.map(i64::from))
        } else if *ty == Type::INT2 {
            integer(row.try_get::<_, Option<i16>>(index)?.map(i64::from))
        } else if *ty == Type::INT4 {
            integer(row.try_get::<_, Option<i32>>(index)?.map(i64::from))
        } else if *ty == Type::INT8 {
            integer(row.try_get::<_, Option<i64>>(index)?)
        } else {
            row.try_get::<_, Option<String>>(index)?
                .map_or(Cell::Null, Cell::Text)
        })
    };
    row.columns()
        .iter()
        .enumerate()
        .map(|(index, column)| cell(index, column.type_()))
        .collect::<Result<Vec<_>, _>>()
        .map(SqlRow::new)
        .map_err(|error| internal(format!("postgres: reading a row of {sql}"), error))
}

/// What a session runs its statements on.
#[derive(Clone, Copy)]
enum On<'c> {
    Client(&'c ClientWrapper),
    Transaction(&'c deadpool_postgres::Transaction<'c>),
}

/// A connection or transaction the shared SQL runs on.
pub struct PostgresSession<'c> {
    on: On<'c>,
    /// Set when PostgreSQL aborted the transaction as a deadlock or serialization failure.
    transient: bool,
}

impl<'c> PostgresSession<'c> {
    fn new(on: On<'c>) -> Self {
        PostgresSession {
            on,
            transient: false,
        }
    }

    fn fail(&mut self, sql: &str, error: tokio_postgres::Error) -> ScimError {
        self.transient |= is_transient(&error);
        statement_error(sql, error)
    }

    async fn prepare(&mut self, sql: &str, keep: bool) -> ScimResult<Statement> {
        let prepared = match (self.on, keep) {
            (On::Client(client), true) => client.prepare_cached(sql).await,
            (On::Client(client), false) => client.prepare(sql).await,
            (On::Transaction(transaction), true) => transaction.prepare_cached(sql).await,
            (On::Transaction(transaction), false) => transaction.prepare(sql).await,
        };
        prepared.map_err(|error| self.fail(sql, error))
    }

    /// Runs a prepared statement with its values: its rows when `rows` is set, else the
    /// number of rows it changed.
    async fn send(
        &mut self,
        sql: &str,
        statement: &Statement,
        values: &[&(dyn ToSql + Sync)],
        rows: bool,
    ) -> ScimResult<Answer> {
        send_on(self.on, statement, values, rows)
            .await
            .map_err(|error| self.fail(sql, error))
    }

    /// Prepares (and keeps, with `keep`) a statement, binds the parameters as the types
    /// PostgreSQL inferred for them, and runs it.
    async fn run(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        keep: bool,
        rows: bool,
    ) -> ScimResult<Answer> {
        let statement = self.prepare(sql, keep).await?;
        let values: Vec<_> = params
            .iter()
            .zip(statement.params())
            .map(|(value, ty)| bind(*value, ty))
            .collect();
        let values: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.send(sql, &statement, &values, rows).await
    }

    async fn rows(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        keep: bool,
    ) -> ScimResult<Vec<SqlRow>> {
        match self.run(sql, params, keep, true).await? {
            Answer::Rows(rows) => rows.iter().map(|row| decode(sql, row)).collect(),
            Answer::Changed(_) => Err(ScimError::internal("postgres: a query answered a count")),
        }
    }

    async fn changed(&mut self, sql: &str, params: &[Param<'_>]) -> ScimResult<u64> {
        match self.run(sql, params, true, false).await? {
            Answer::Changed(count) => Ok(count),
            Answer::Rows(_) => Err(ScimError::internal("postgres: a statement answered rows")),
        }
    }
}

/// Runs a prepared statement for its rows (`rows`) or the number of rows it changed, without
/// borrowing the session: several may be in flight on one connection at once.
async fn send_on(
    on: On<'_>,
    statement: &Statement,
    values: &[&(dyn ToSql + Sync)],
    rows: bool,
) -> Result<Answer, tokio_postgres::Error> {
    match (on, rows) {
        (On::Client(client), true) => client.query(statement, values).await.map(Answer::Rows),
        (On::Client(client), false) => client.execute(statement, values).await.map(Answer::Changed),
        (On::Transaction(transaction), true) => {
            transaction.query(statement, values).await.map(Answer::Rows)
        }
        (On::Transaction(transaction), false) => transaction
            .execute(statement, values)
            .await
            .map(Answer::Changed),
    }
}

/// What PostgreSQL answers a statement with.
enum Answer {
    Rows(Vec<Row>),
    Changed(u64),
}

impl SqlTransaction for PostgresSession<'_> {
    const DIALECT: &'static dyn Dialect = &PostgresDialect;

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<u64> {
        self.changed(sql, params)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<Vec<SqlRow>> {
        self.rows(sql, params, true)
    }

    /// Prepared for this query alone: the per-connection statement cache has no bound.
    fn query_once(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<Vec<SqlRow>> {
        self.rows(sql, params, false)
    }

    /// Transaction-scoped advisory locks: released at commit or rollback, never leaked by a
    /// crashed node. A principal is locked as its row, `FOR UPDATE`.
    fn lock(&mut self, lock: Lock<'_>) -> impl SqlFuture<()> {
        async move {
            let per_account = "SELECT pg_advisory_xact_lock($1, hashtext($2))";
            let object;
            let (sql, params): (&str, Vec<Param<'_>>) = match lock {
                Lock::FirstAccount => (
                    "SELECT pg_advisory_xact_lock($1)",
                    vec![Param::Integer(FIRST_ACCOUNT_LOCK_KEY)],
                ),
                Lock::GroupNesting(account) => (
                    per_account,
                    vec![
                        Param::Integer(GROUP_NESTING_LOCK_CLASS.into()),
                        Param::Text(account.as_str()),
                    ],
                ),
                Lock::Admins(account) => (
                    per_account,
                    vec![
                        Param::Integer(ADMINS_LOCK_CLASS.into()),
                        Param::Text(account.as_str()),
                    ],
                ),
                Lock::ObjectAcl {
                    account,
                    object_type,
                    object_id,
                } => {
                    object = format!("{account}/{}/{object_id}", object_type.as_str());
                    (
                        per_account,
                        vec![
                            Param::Integer(OBJECT_ACL_LOCK_CLASS.into()),
                            Param::Text(&object),
                        ],
                    )
                }
                Lock::Principal(account, id) => (
                    "SELECT 1 FROM principals WHERE account_id = $1 AND id = $2 FOR UPDATE",
                    vec![Param::Text(account.as_str()), Param::Text(id.as_str())],
                ),
            };
            self.changed(sql, &params).await.map(|_| ())
        }
    }

    /// Followers read the log by sequence number (`seq > n`), so a number must never become
    /// visible after a higher one: the follower would have moved past it. A sequence alone does
    /// not promise that: two transactions take 10 and 11, and the one with 11 commits first.
    /// So numbers are taken under an advisory lock held until commit: whoever takes the next
    /// number has waited for every earlier holder to commit. Writing the entries last keeps
    /// that lock to the insert and the commit itself; the rest of the change runs in parallel
    /// with other writers.
    ///
    /// Everything here is sent before any answer is read (tokio-postgres pipelines the
    /// requests of futures polled together), so the change's last writes, the log's lock and
    /// its insert cost one round trip; PostgreSQL still runs them in order, and one that fails
    /// fails the ones after it, and the transaction.
    fn finish_change(
        &mut self,
        statements: &[SqlStatement<'_>],
        entries: &[LogEntry],
    ) -> impl SqlFuture<Vec<Vec<SqlRow>>> {
        let accounts: Vec<&str> = entries
            .iter()
            .map(|(account, _)| account.as_str())
            .collect();
        let events: ScimResult<Vec<String>> =
            entries.iter().map(|(_, event)| event.to_json()).collect();
        async move {
            let events = events?;
            // WITH ORDINALITY keeps the entries in the order the change made them.
            const INSERT_LOG: &str = "INSERT INTO access_log (account_id, event) \
                SELECT account_id, event FROM unnest($1::text[], $2::text[]) WITH ORDINALITY \
                AS entry(account_id, event, position) ORDER BY position";
            const LOCK_LOG: &str = "SELECT pg_advisory_xact_lock($1)";
            let lock = SqlStatement {
                sql: LOCK_LOG,
                params: vec![Param::Integer(ACCESS_LOG_LOCK_KEY)],
            };
            let plain: Vec<&SqlStatement<'_>> = statements
                .iter()
                .chain((!entries.is_empty()).then_some(&lock))
                .collect();
            let mut prepared = Vec::with_capacity(plain.len() + 1);
            for statement in &plain {
                prepared.push(self.prepare(statement.sql, true).await?);
            }
            let insert = if entries.is_empty() {
                None
            } else {
                Some(self.prepare(INSERT_LOG, true).await?)
            };
            let bound: Vec<Vec<Box<dyn ToSql + Sync + Send + '_>>> = plain
                .iter()
                .zip(&prepared)
                .map(|(statement, prepared)| {
                    statement
                        .params
                        .iter()
                        .zip(prepared.params())
                        .map(|(value, ty)| bind(*value, ty))
                        .collect()
                })
                .collect();
            let mut sent: Vec<(&str, &Statement, Vec<&(dyn ToSql + Sync)>)> = plain
                .iter()
                .zip(&prepared)
                .zip(&bound)
                .map(|((statement, prepared), values)| {
                    let values = values
                        .iter()
                        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
                        .collect();
                    (statement.sql, prepared, values)
                })
                .collect();
            if let Some(insert) = &insert {
                sent.push((INSERT_LOG, insert, vec![&accounts, &events]));
            }
            let on = self.on;
            // The change's own statements answer rows; the log's lock and insert, counts.
            let answers = futures_util::future::join_all(sent.iter().enumerate().map(
                |(index, (_, statement, values))| {
                    send_on(on, statement, values, index < statements.len())
                },
            ))
            .await;
            let mut rows = Vec::with_capacity(statements.len());
            for ((sql, _, _), answer) in sent.iter().zip(answers) {
                match answer.map_err(|error| self.fail(sql, error))? {
                    Answer::Rows(answered) => rows.push(
                        answered
                            .iter()
                            .map(|row| decode(sql, row))
                            .collect::<ScimResult<Vec<_>>>()?,
                    ),
                    Answer::Changed(_) => {}
                }
            }
            Ok(rows)
        }
    }

    /// Plans every statement of the import for the table as it is now. An import fills empty
    /// tables, and a plan cached while a table was empty (ours, or the foreign-key checks
    /// PostgreSQL runs for each row) scans it whole; kept while the table grows to a million
    /// rows, that makes the import quadratic. Statistics do not save it where autovacuum is
    /// off or behind.
    fn before_bulk_load(&mut self) -> impl SqlFuture<()> {
        async move {
            self.changed("SET LOCAL plan_cache_mode = force_custom_plan", &[])
                .await
                .map(|_| ())
        }
    }
}

/// The connection settings a URL gives, with what Scimitar insists on added.
fn connection_config(url: &str) -> ScimResult<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|error| ScimError::invalid_value(format!("invalid PostgreSQL URL: {error}")))?;
    // Appended, so that it wins over anything the URL's own `options` set: a 2xx must mean the
    // commit is flushed.
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {SESSION_OPTIONS}"),
        _ => SESSION_OPTIONS.to_string(),
    };
    config.options(&options);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("scimitar");
    }
    Ok(config)
}

/// Keeps the planner's statistics current when the server's autovacuum is off.
///
/// Without statistics PostgreSQL plans a `userName eq` filter as a scan of the account's users
/// on an index that only matches `(account_id, kind)` instead of the unique index on the name:
/// measured at 0.06 ms with statistics and 3.3 ms at 6,000 users without, growing with the
/// directory. Autovacuum normally analyzes tables as they grow; where an operator has turned it
/// off, each node does what autoanalyze would (analyze a table once a tenth of it has
/// changed). Ends when the store is dropped.
async fn keep_statistics(pool: deadpool_postgres::WeakPool) {
    loop {
        tokio::time::sleep(STATISTICS_CHECK_INTERVAL).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let Ok(client) = pool.get().await else {
            continue;
        };
        let stale = client
            .query(
                "SELECT relname FROM pg_stat_user_tables \
                 WHERE current_setting('autovacuum') = 'off' \
                 AND relname IN ('principals', 'principal_emails', 'memberships', 'tokens', \
                                 'securables', 'grants', 'workspace_objects', 'object_acl', 'access_log') \
                 AND n_mod_since_analyze > 50 + n_live_tup / 10",
                &[],
            )
            .await;
        let Ok(rows) = stale else {
            continue;
        };
        for row in rows {
            let Ok(table) = row.try_get::<_, String>(0) else {
                continue;
            };
            // The name comes from the fixed list above, never from input.
            if let Err(error) = client.batch_execute(&format!("ANALYZE {table}")).await {
                tracing::warn!(%error, table, "postgres: cannot analyze");
            }
        }
    }
}

impl PostgresStore {
    /// Connects to the database `url` names (`postgres://user@host:port/dbname?...`) with at most
    /// `max_connections` connections, and brings its schema up to date.
    pub async fn connect(url: &str, max_connections: usize) -> ScimResult<Self> {
        let config = connection_config(url)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A broken connection is noticed by the query that uses it; checking each one
                // with a round trip before every use would double the latency of point reads.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(10)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|error| {
                ScimError::internal_caused_by("postgres: cannot make the pool", error)
            })?;
        let store = PostgresStore {
            pool,
            write_health: Arc::default(),
            list_anchors: Arc::default(),
        };
        store.migrate().await?;
        tokio::spawn(keep_statistics(store.pool.weak()));
        Ok(store)
    }

    async fn client(&self) -> ScimResult<deadpool_postgres::Client> {
        // Every way of not getting a connection (none free in time, none can be opened, the
        // server refuses) means the database cannot serve this request now.
        self.pool.get().await.map_err(|error| {
            ScimError::unavailable_caused_by("postgres: cannot get a connection", error)
        })
    }

    /// Applies every migration not yet applied and returns the schema version.
    ///
    /// All of them run in one transaction that first takes an advisory lock, so nodes starting
    /// together against a new database queue up: the first migrates, the others then find
    /// nothing left to do. PostgreSQL's DDL is transactional, so a failed migration leaves the
    /// schema as it was.
    pub async fn migrate(&self) -> ScimResult<i64> {
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(|error| internal("postgres: cannot begin the migrations", error))?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(|error| internal("postgres: cannot lock the migrations", error))?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
            )
            .await
            .map_err(|error| internal("postgres: cannot create schema_migrations", error))?;
        let applied: Vec<i64> = transaction
            .query("SELECT version FROM schema_migrations", &[])
            .await
            .and_then(|rows| rows.iter().map(|row| row.try_get(0)).collect())
            .map_err(|error| internal("postgres: cannot read schema_migrations", error))?;
        for (version, statements) in POSTGRES_MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            transaction
                .batch_execute(statements)
                .await
                .map_err(|error| internal(format!("postgres: migration {version}"), error))?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, applied) \
                     VALUES ($1, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))",
                    &[version],
                )
                .await
                .map_err(|error| internal("postgres: cannot record a migration", error))?;
            tracing::info!(version, "applied PostgreSQL migration");
        }
        transaction
            .commit()
            .await
            .map_err(|error| internal("postgres: cannot commit the migrations", error))?;
        // Back to the pool first: a pool of one has no other connection to read the version.
        std::mem::drop(client);
        self.schema_version().await
    }

    /// The highest migration applied to the database (0 on an empty one).
    pub async fn schema_version(&self) -> ScimResult<i64> {
        self.read(Read::Point, |session| {
            Box::pin(read::schema_version(session))
        })
        .await
    }

    /// One attempt at a change: its transaction, committed, or rolled back with whether
    /// PostgreSQL aborted it as a conflict worth trying again.
    async fn apply_once(
        &self,
        account: &AccountId,
        change: &Change,
        context: &AuditContext,
    ) -> Result<(), (ScimError, bool)> {
        let aborted = |context: &str, error: tokio_postgres::Error| {
            let transient = is_transient(&error);
            (internal(format!("postgres: {context}"), error), transient)
        };
        let mut client = self.client().await.map_err(|error| (error, false))?;
        let transaction = client
            .transaction()
            .await
            .map_err(|error| aborted("cannot begin a change", error))?;
        let mut session = PostgresSession::new(On::Transaction(&transaction));
        let outcome = write::apply(&mut session, account, change, context).await;
        let transient = session.transient;
        match outcome {
            Ok(()) => transaction.commit().await.map_err(|error| {
                if is_unavailability(&error) {
                    // COMMIT was sent and no answer came back: PostgreSQL may have committed.
                    let unknown = ScimError::outcome_unknown_caused_by(
                        "postgres: the connection was lost during COMMIT",
                        error,
                    );
                    (unknown, false)
                } else {
                    aborted("cannot commit a change", error)
                }
            }),
            Err(error) => {
                // Explicit, so the connection goes back to the pool clean rather than relying
                // on the rollback that dropping a transaction queues.
                let _ = transaction.rollback().await;
                Err((error, transient))
            }
        }
    }
}

impl SqlBackend for PostgresStore {
    type Session<'s> = PostgresSession<'s>;
    const MIGRATIONS: &'static [(i64, &'static str)] = POSTGRES_MIGRATIONS;

    fn write_health(&self) -> &WriteHealth {
        &self.write_health
    }

    fn list_anchors(&self) -> &Arc<ListAnchors> {
        &self.list_anchors
    }

    fn pool_status(&self) -> Option<crate::PoolStatus> {
        let status = self.pool.status();
        Some(crate::PoolStatus {
            max_size: status.max_size,
            open: status.size,
            idle: status.available,
            waiting: status.waiting,
        })
    }

    /// A pooled connection; a consistent read is one REPEATABLE READ transaction, in which
    /// every query sees the state the first one saw (log numbers follow commit order, see
    /// [`PostgresSession::finish_change`], so that state is exactly the log's up to its position).
    fn read<T: Send + 'static>(&self, kind: Read, work: impl Work<Self, T>) -> impl SqlFuture<T> {
        async move {
            let mut client = self.client().await?;
            if kind != Read::Consistent {
                return work(&mut PostgresSession::new(On::Client(&client))).await;
            }
            let transaction = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(|error| internal("postgres: cannot begin a read", error))?;
            let outcome = work(&mut PostgresSession::new(On::Transaction(&transaction))).await?;
            transaction
                .commit()
                .await
                .map_err(|error| internal("postgres: cannot end a read", error))?;
            Ok(outcome)
        }
    }

    fn write(
        &self,
        account: &AccountId,
        change: Change,
        context: AuditContext,
    ) -> impl SqlFuture<()> {
        async move {
            let mut attempt = 1;
            loop {
                match self.apply_once(account, &change, &context).await {
                    Ok(()) => return Ok(()),
                    Err((error, true)) if attempt < APPLY_ATTEMPTS => {
                        tracing::debug!(%error, attempt, "retrying a change PostgreSQL aborted");
                        attempt += 1;
                    }
                    Err((error, _)) => return Err(error),
                }
            }
        }
    }
}
