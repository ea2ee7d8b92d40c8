//! The embedded SQLite backend: one writer connection and a few readers over a WAL database.
//! What a change means is the shared SQL of [`crate::sql::write`]; this file is how SQLite
//! runs it.
//!
//! Durability: `journal_mode=WAL` with `synchronous=FULL`, so a transaction is on disk (the WAL
//! fsynced) before [`crate::Store::apply`] returns, and therefore before any 2xx is sent.
//! Readers never block the writer, and see only committed transactions.
//!
//! Group commit: one thread owns the writer connection. It takes every change waiting for it,
//! applies them in one transaction, and commits once, so one fsync covers a whole batch of
//! concurrent writes. A change that fails fails alone: the batch is then applied again with a
//! savepoint around each change, and the others still commit. Every caller hears back only
//! after the commit.
//!
//! The shared SQL is async (PostgreSQL awaits its server); SQLite does each statement at once
//! and returns a ready future, so the writer thread and the readers drive it with
//! [`run_ready`]: one poll, with a waker that is never needed.
//!
//! Statements on hot paths write their `LIMIT` and `OFFSET` into the SQL text instead of
//! binding them: the bundled SQLite plans a bound `LIMIT` for the value it holds and marks the
//! statement to be prepared again whenever that parameter is bound anew, so the access-log read
//! that follows every commit was parsed and planned from scratch each time (about 7 % of a
//! POST's CPU). The values are integers, and `prepare_cached` keeps one statement per value.

use crate::audit::AuditContext;
use crate::change::Change;
use crate::migrations::SQLITE_MIGRATIONS;
use crate::sql::list_anchors::ListAnchors;
use crate::sql::store::{Read, SqlBackend, Work, WriteHealth};
use crate::sql::transaction::{
    unique_violation, Cell, Lock, LogEntry, Param, SqlFuture, SqlRow, SqlStatement, SqlTransaction,
};
use crate::sql::{write, Dialect, SqliteDialect};
use futures_util::future::BoxFuture;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection};
use scimitar_domain::ids::lower_hex;
use scimitar_domain::{AccountId, ScimError, ScimResult};
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};

const READER_CONNECTIONS: usize = 4;

/// How much of the database file each connection maps into memory for reading (address
/// space, not memory: the pages are the OS's page cache).
const MMAP_BYTES: i64 = 1 << 30;

/// Each connection's own page cache, in KiB (SQLite's default is 2,000 KiB), for the pages it
/// changes and the b-trees' upper levels.
const CACHE_KIB: i64 = 16 * 1024;

/// The most changes one commit covers: enough to amortise the fsync, few enough that a
/// change never waits long behind others.
const MAX_CHANGES_PER_COMMIT: usize = 256;

/// A handle on the database; clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: std::sync::mpsc::Sender<WriteJob>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    write_health: WriteHealth,
    list_anchors: Arc<ListAnchors>,
}

struct WriteJob {
    account: AccountId,
    change: Change,
    context: AuditContext,
    reply: tokio::sync::oneshot::Sender<ScimResult<()>>,
}

/// Drives a future of the shared SQL over a SQLite session to its end. Every statement of such
/// a session is done when it is called, so the future completes at its first poll; one that
/// does not would be waiting for something that never wakes it, which is a bug, not a wait.
pub(crate) fn run_ready<T>(future: impl Future<Output = ScimResult<T>>) -> ScimResult<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => Err(ScimError::internal(
            "sqlite: a statement's future was not ready at once",
        )),
    }
}

/// A driver error, kept whole as its cause: unavailability when the file system refuses the
/// database (full disk, I/O error, read-only or vanished file, a lock held past the busy
/// timeout), which passes and deserves a retry; an internal error otherwise.
fn internal(context: &str, error: rusqlite::Error) -> ScimError {
    let context = format!("sqlite: {context}");
    if is_unavailability(&error) {
        ScimError::unavailable_caused_by(context, error)
    } else {
        ScimError::internal_caused_by(context, error)
    }
}

fn is_unavailability(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _) if matches!(
            failure.code,
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::OutOfMemory
        )
    )
}

/// Maps a failed statement to the client-facing error it stands for: a violated unique index
/// named in [`crate::sql::transaction::UNIQUE_INDEXES`], else an internal error.
fn statement_error(sql: &str, error: rusqlite::Error) -> ScimError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error {
        if failure.code == rusqlite::ErrorCode::ConstraintViolation {
            if let Some(uniqueness) = unique_violation(|index| message.ends_with(index.columns)) {
                return uniqueness;
            }
        }
    }
    internal(sql, error)
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Text(text) => ValueRef::Text(text.as_bytes()),
            Param::Integer(number) => ValueRef::Integer(number),
            Param::Bool(flag) => ValueRef::Integer(i64::from(flag)),
            Param::Null => ValueRef::Null,
        }))
    }
}

/// A connection the shared SQL runs on: the writer inside its transaction, or a reader. It
/// holds the connection mutably, which makes it `Send`, as the shared reads need; it is only
/// ever used on the thread that holds the connection.
pub(crate) struct SqliteSession<'c> {
    connection: &'c mut Connection,
}

impl<'c> SqliteSession<'c> {
    fn new(connection: &'c mut Connection) -> Self {
        SqliteSession { connection }
    }

    /// The statement, kept prepared, with `params` bound. Each placeholder (`$n` or `?n`) is
    /// bound by its number, in whatever order the text names them.
    fn prepare(&self, sql: &str, params: &[Param<'_>]) -> ScimResult<CachedStatement<'_>> {
        let mut statement = self
            .connection
            .prepare_cached(sql)
            .map_err(|error| statement_error(sql, error))?;
        let count = statement.parameter_count();
        if count != params.len() {
            return Err(ScimError::internal(format!(
                "sqlite: {sql}: {count} parameters, {} given",
                params.len()
            )));
        }
        for index in 1..=count {
            let value = statement
                .parameter_name(index)
                .and_then(|name| name.get(1..))
                .and_then(|number| number.parse::<usize>().ok())
                .and_then(|number| params.get(number.checked_sub(1)?))
                .ok_or_else(|| {
                    ScimError::internal(format!("sqlite: {sql}: parameter {index} is not $n"))
                })?;
            statement
                .raw_bind_parameter(index, value)
                .map_err(|error| statement_error(sql, error))?;
        }
        Ok(statement)
    }

    fn run_execute(&self, sql: &str, params: &[Param<'_>]) -> ScimResult<u64> {
        let mut statement = self.prepare(sql, params)?;
        let changed = statement
            .raw_execute()
            .map_err(|error| statement_error(sql, error))?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    fn run_query(&self, sql: &str, params: &[Param<'_>]) -> ScimResult<Vec<SqlRow>> {
        let mut statement = self.prepare(sql, params)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut decoded = Vec::new();
        while let Some(row) = rows.next().map_err(|error| statement_error(sql, error))? {
            let mut cells = Vec::with_capacity(columns);
            for index in 0..columns {
                let value = row.get_ref(index).map_err(|error| internal(sql, error))?;
                cells.push(match value {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(number) => Cell::Integer(number),
                    ValueRef::Text(text) => Cell::Text(
                        std::str::from_utf8(text)
                            .map_err(|error| {
                                ScimError::internal_caused_by(format!("sqlite: {sql}"), error)
                            })?
                            .to_string(),
                    ),
                    ValueRef::Real(_) | ValueRef::Blob(_) => {
                        return Err(ScimError::internal(format!(
                            "sqlite: {sql}: column {index} is neither text nor an integer"
                        )))
                    }
                });
            }
            decoded.push(SqlRow::new(cells));
        }
        Ok(decoded)
    }
}

impl SqlTransaction for SqliteSession<'_> {
    const DIALECT: &'static dyn Dialect = &SqliteDialect;

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<u64> {
        std::future::ready(self.run_execute(sql, params))
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<Vec<SqlRow>> {
        std::future::ready(self.run_query(sql, params))
    }

    /// Kept prepared all the same: rusqlite's statement cache is bounded (least recently used
    /// first out), so client-made shapes cannot grow it.
    fn query_once(&mut self, sql: &str, params: &[Param<'_>]) -> impl SqlFuture<Vec<SqlRow>> {
        std::future::ready(self.run_query(sql, params))
    }

    /// The writer holds SQLite's write lock (`BEGIN IMMEDIATE`), which another process on the
    /// same file waits for: every check and the write it guards are already one step.
    fn lock(&mut self, _lock: Lock<'_>) -> impl SqlFuture<()> {
        std::future::ready(Ok(()))
    }

    /// The one writer commits in order, so the rowid (one more than the largest) follows
    /// commit order.
    /// In process, a statement costs no round trip: they run one after the other.
    fn finish_change(
        &mut self,
        statements: &[SqlStatement<'_>],
        entries: &[LogEntry],
    ) -> impl SqlFuture<Vec<Vec<SqlRow>>> {
        let append = || {
            let mut answers = Vec::with_capacity(statements.len());
            for statement in statements {
                answers.push(self.run_query(statement.sql, &statement.params)?);
            }
            for (account, event) in entries {
                let event = event.to_json()?;
                let params = [Param::Text(account.as_str()), Param::Text(&event)];
                self.run_execute(
                    "INSERT INTO access_log (account_id, event) VALUES ($1, $2)",
                    &params,
                )?;
            }
            Ok(answers)
        };
        std::future::ready(append())
    }

    fn before_bulk_load(&mut self) -> impl SqlFuture<()> {
        std::future::ready(Ok(()))
    }
}

/// The writer thread: waits for a change, gathers whatever else is waiting, applies them all in
/// one transaction, commits, and answers each caller. Ends when every store handle is gone.
fn run_writer(mut connection: Connection, jobs: std::sync::mpsc::Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_CHANGES_PER_COMMIT {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit_batch(&mut connection, &batch);
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            // A caller that stopped waiting (its request was cancelled) needs no answer; its
            // change is committed all the same, as it would be had it waited.
            let _ = job.reply.send(outcome);
        }
    }
}

/// Commits a batch of changes in one transaction, each succeeding or failing alone.
///
/// Nearly every change succeeds, so the batch is first applied as it is; only when one of
/// its changes fails is the transaction rolled back and the batch applied again with a
/// savepoint around each change, so that the failure leaves nothing and the others still
/// commit. Savepoints journal every page a change touches: on the writer's hot path they
/// cost about a tenth of its time.
fn commit_batch(connection: &mut Connection, batch: &[WriteJob]) -> Vec<ScimResult<()>> {
    match commit_without_savepoints(connection, batch) {
        Some(outcomes) => outcomes,
        None => commit_with_savepoints(connection, batch),
    }
}

fn apply(connection: &mut Connection, job: &WriteJob) -> ScimResult<()> {
    let mut session = SqliteSession::new(connection);
    run_ready(write::apply(
        &mut session,
        &job.account,
        &job.change,
        &job.context,
    ))
}

/// Runs `BEGIN IMMEDIATE`: the write lock is taken now, not at the first write.
fn begin(connection: &Connection, batch: &[WriteJob]) -> Result<(), Vec<ScimResult<()>>> {
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|error| {
            let error = internal("cannot begin a write", error);
            batch.iter().map(|_| Err(error.clone())).collect()
        })
}

fn rollback(connection: &Connection) {
    if let Err(error) = connection.execute_batch("ROLLBACK") {
        tracing::warn!(%error, "sqlite: cannot roll back a write");
    }
}

/// The batch in one transaction without savepoints: `None` (and nothing written) when a
/// change failed. A batch of one needs no second try: its failure is its outcome.
fn commit_without_savepoints(
    connection: &mut Connection,
    batch: &[WriteJob],
) -> Option<Vec<ScimResult<()>>> {
    if let Err(failed) = begin(connection, batch) {
        return Some(failed);
    }
    for job in batch {
        if let Err(error) = apply(connection, job) {
            rollback(connection);
            return (batch.len() == 1).then(|| vec![Err(error)]);
        }
    }
    Some(commit(connection, batch.iter().map(|_| Ok(())).collect()))
}

fn commit_with_savepoints(connection: &mut Connection, batch: &[WriteJob]) -> Vec<ScimResult<()>> {
    if let Err(failed) = begin(connection, batch) {
        return failed;
    }
    let outcomes = batch
        .iter()
        .map(|job| apply_in_savepoint(connection, job))
        .collect();
    commit(connection, outcomes)
}

/// Commits, or when the commit fails, rolls back and fails every change.
fn commit(connection: &Connection, outcomes: Vec<ScimResult<()>>) -> Vec<ScimResult<()>> {
    match connection.execute_batch("COMMIT") {
        Ok(()) => outcomes,
        Err(error) => {
            rollback(connection);
            let error = internal("cannot commit", error);
            outcomes
                .into_iter()
                .map(|outcome| outcome.and(Err(error.clone())))
                .collect()
        }
    }
}

/// Applies one change so that, if it fails, none of it remains in the transaction.
fn apply_in_savepoint(connection: &mut Connection, job: &WriteJob) -> ScimResult<()> {
    let savepoint = Bracket {
        begin: "SAVEPOINT change",
        kept: "RELEASE change",
        undone: "ROLLBACK TO change; RELEASE change",
    };
    savepoint.around(connection, |connection| apply(connection, job))
}

/// Statements around some work: one before it, and after it one when it succeeded, another
/// when it failed.
struct Bracket {
    begin: &'static str,
    kept: &'static str,
    undone: &'static str,
}

impl Bracket {
    fn around<T>(
        &self,
        connection: &mut Connection,
        work: impl FnOnce(&mut Connection) -> ScimResult<T>,
    ) -> ScimResult<T> {
        connection
            .execute_batch(self.begin)
            .map_err(|error| internal(self.begin, error))?;
        let outcome = work(connection);
        let end = if outcome.is_ok() {
            self.kept
        } else {
            self.undone
        };
        connection
            .execute_batch(end)
            .map_err(|error| internal(end, error))?;
        outcome
    }
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint journals (one per change in a group commit) stay in memory instead of a
    // temporary file: they only ever hold a few pages and never need to survive a crash.
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    // Reads from memory-mapped pages: a page is used where the OS caches it instead of being
    // copied into SQLite's own cache, which is about 2 MB by default, a small part of a
    // directory of 100,000 users, so that a page of a list read went to the kernel for most of
    // its b-tree pages (a profile of a sync re-run at that size: a third of the time reading
    // pages). The map follows the file up to `MMAP_BYTES`; writes still go through the WAL.
    connection.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    connection.pragma_update(None, "cache_size", -CACHE_KIB)?;
    // An audit event's leaf, hashed where its text is put together (see `sql::audit`);
    // PostgreSQL has the same function from its migrations.
    connection.create_scalar_function(
        "scimitar_audit_leaf",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |context| {
            let event = context
                .get_raw(0)
                .as_str()
                .map_err(|error| rusqlite::Error::UserFunctionError(Box::new(error)))?;
            Ok(lower_hex(&scimitar_audit::merkle::leaf_hash(
                event.as_bytes(),
            )))
        },
    )?;
    Ok(())
}

/// Applies every migration not yet applied, each in a transaction of its own that first takes
/// the write lock, so two processes opening one new file do not both apply one.
fn migrate(connection: &mut Connection) -> ScimResult<()> {
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)",
        )
        .map_err(|error| internal("cannot create schema_migrations", error))?;
    for (version, statements) in SQLITE_MIGRATIONS {
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|error| internal("cannot begin a migration", error))?;
        let applied: bool = transaction
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |row| row.get(0),
            )
            .map_err(|error| internal("cannot read schema_migrations", error))?;
        if !applied {
            transaction
                .execute_batch(statements)
                .map_err(|error| internal(&format!("migration {version}"), error))?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, applied) VALUES (?1, strftime('%s','now'))",
                    [version],
                )
                .map_err(|error| internal("cannot record a migration", error))?;
        }
        transaction
            .commit()
            .map_err(|error| internal(&format!("cannot commit migration {version}"), error))?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &str) -> ScimResult<Self> {
        let path = path.to_string();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|error| {
                ScimError::internal_caused_by("sqlite: the opening task failed", error)
            })?
    }

    fn open_blocking(path: &str) -> ScimResult<Self> {
        if let Some(parent) = Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|error| {
                    ScimError::internal_caused_by(
                        format!("cannot create the directory of {path}"),
                        error,
                    )
                })?;
            }
        }
        let open = |role: &str| {
            let connection = Connection::open(path)
                .map_err(|error| internal(&format!("cannot open {path}"), error))?;
            configure(&connection)
                .map_err(|error| internal(&format!("cannot configure the {role}"), error))?;
            Ok::<_, ScimError>(connection)
        };
        let mut writer = open("writer")?;
        migrate(&mut writer)?;
        let (jobs, queue) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(writer, queue))
            .map_err(|error| {
                ScimError::internal_caused_by("cannot start the sqlite writer", error)
            })?;
        let readers = (0..READER_CONNECTIONS)
            .map(|_| open("reader").map(Mutex::new))
            .collect::<ScimResult<Vec<_>>>()?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: jobs,
                readers,
                next_reader: AtomicUsize::new(0),
                write_health: WriteHealth::default(),
                list_anchors: Arc::default(),
            }),
        })
    }
}

impl Inner {
    /// A reader that is free now, if any.
    fn free_reader(&self) -> ScimResult<Option<MutexGuard<'_, Connection>>> {
        for slot in &self.readers {
            match slot.try_lock() {
                Ok(connection) => return Ok(Some(connection)),
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
            }
        }
        Ok(None)
    }

    /// A reader, waiting for one if all are busy: only ever called off the async runtime's
    /// worker threads.
    fn wait_for_reader(&self) -> ScimResult<MutexGuard<'_, Connection>> {
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len().max(1);
        self.readers
            .get(index)
            .ok_or_else(|| ScimError::internal("sqlite: no reader connection"))?
            .lock()
            .map_err(|_| poisoned())
    }
}

fn poisoned() -> ScimError {
    ScimError::internal("sqlite: a reader connection is poisoned")
}

/// Runs `work` on a reader connection, in a read transaction when `consistent`: in WAL mode
/// every read in it sees the same committed state.
fn run_on<T, W>(connection: &mut Connection, consistent: bool, work: W) -> ScimResult<T>
where
    W: for<'s> FnOnce(&'s mut SqliteSession<'s>) -> BoxFuture<'s, ScimResult<T>>,
{
    if !consistent {
        return run_ready(work(&mut SqliteSession::new(connection)));
    }
    let read = Bracket {
        begin: "BEGIN",
        kept: "COMMIT",
        undone: "ROLLBACK",
    };
    read.around(connection, |connection| {
        run_ready(work(&mut SqliteSession::new(connection)))
    })
}

impl SqlBackend for SqliteStore {
    type Session<'s> = SqliteSession<'s>;
    const MIGRATIONS: &'static [(i64, &'static str)] = SQLITE_MIGRATIONS;

    fn write_health(&self) -> &WriteHealth {
        &self.inner.write_health
    }

    fn list_anchors(&self) -> &Arc<ListAnchors> {
        &self.inner.list_anchors
    }

    /// A point read runs on the calling thread when a reader is free at once: handing it to
    /// the blocking pool would cost more than the read itself. Anything else, and a point
    /// read that finds every reader busy, goes to the blocking pool, so that no read ever
    /// blocks an async worker thread on a lock.
    fn read<T: Send + 'static>(&self, kind: Read, work: impl Work<Self, T>) -> impl SqlFuture<T> {
        let inner = Arc::clone(&self.inner);
        async move {
            if kind == Read::Point {
                if let Some(mut connection) = inner.free_reader()? {
                    return run_on(&mut connection, false, work);
                }
            }
            tokio::task::spawn_blocking(move || {
                let mut connection = inner.wait_for_reader()?;
                run_on(&mut connection, kind == Read::Consistent, work)
            })
            .await
            .map_err(|error| ScimError::internal_caused_by("sqlite: a read task failed", error))?
        }
    }

    fn write(
        &self,
        account: &AccountId,
        change: Change,
        context: AuditContext,
    ) -> impl SqlFuture<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.inner.writer.send(WriteJob {
            account: account.clone(),
            change,
            context,
            reply,
        });
        async move {
            sent.map_err(|_| ScimError::internal("sqlite: the writer thread has stopped"))?;
            answer.await.map_err(|_| {
                ScimError::internal("sqlite: the writer thread stopped before answering")
            })?
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::Store;
    use std::time::Duration;

    /// A point read that finds every reader busy is handed to the blocking pool rather than
    /// waiting for a reader on the async worker thread: its first poll comes back at once,
    /// pending, and the read completes once a reader is free. (Before, it blocked the worker
    /// thread on a reader's lock; here that thread would never have answered while the test
    /// held every reader, which the generous bound on the wait below turns into a failure
    /// rather than a hang.)
    #[test]
    fn a_point_read_with_every_reader_busy_never_blocks_the_runtime_thread() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-busy-readers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        let path = directory.join("db.sqlite");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store = runtime
            .block_on(SqliteStore::open(&path.to_string_lossy()))
            .unwrap();
        let busy: Vec<_> = store
            .inner
            .readers
            .iter()
            .map(|reader| reader.lock().unwrap())
            .collect();
        let (first_poll, polled) = std::sync::mpsc::channel();
        let reader = store.clone();
        let read = runtime.spawn(async move {
            let mut read = pin!(reader.token_by_digest("no such digest"));
            let pending = std::future::poll_fn(|context| {
                Poll::Ready(read.as_mut().poll(context).is_pending())
            })
            .await;
            first_poll.send(pending).unwrap();
            read.await
        });
        let pending = polled
            .recv_timeout(Duration::from_secs(60))
            .expect("the first poll of the read came back while every reader was busy");
        assert!(
            pending,
            "with every reader busy, the read waits off the worker thread"
        );
        drop(busy);
        assert_eq!(runtime.block_on(read).unwrap().unwrap(), None);
        drop(store);
        let _ = std::fs::remove_dir_all(&directory);
    }

    /// Every reader maps the file and keeps a cache of its own beyond SQLite's default: a list
    /// read of a large directory must not go to the kernel for each page.
    #[test]
    fn readers_read_through_a_memory_map_and_a_page_cache_of_their_own() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-reader-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        let path = directory.join("db.sqlite");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = runtime
            .block_on(SqliteStore::open(&path.to_string_lossy()))
            .unwrap();
        for reader in &store.inner.readers {
            let reader = reader.lock().unwrap();
            let mmap: i64 = reader
                .pragma_query_value(None, "mmap_size", |row| row.get(0))
                .unwrap();
            let cache: i64 = reader
                .pragma_query_value(None, "cache_size", |row| row.get(0))
                .unwrap();
            assert_eq!((mmap, cache), (MMAP_BYTES, -CACHE_KIB));
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&directory);
    }
}
