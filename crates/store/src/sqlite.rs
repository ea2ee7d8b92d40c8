//! The embedded SQLite backend: one writer connection and a few readers over a WAL database.
//!
//! Durability: `journal_mode=WAL` with `synchronous=FULL`, so a transaction is on disk (the WAL
//! fsynced) before [`Store::apply`] returns, and therefore before any 2xx is sent. Readers never
//! block the writer, and see only committed transactions.
//!
//! Group commit: one thread owns the writer connection. It takes every change waiting for it,
//! applies each inside its own savepoint of one transaction, and commits once, so one fsync
//! covers a whole batch of concurrent writes. A change that fails rolls back to its savepoint
//! and fails alone; the others still commit. Every caller hears back only after the commit.
//!
//! Statements on hot paths write their `LIMIT` and `OFFSET` into the SQL text instead of
//! binding them: the bundled SQLite plans a bound `LIMIT` for the value it holds and marks the
//! statement to be prepared again whenever that parameter is bound anew, so the access-log read
//! that follows every commit was parsed and planned from scratch each time (about 7 % of a
//! POST's CPU). The values are integers, and `prepare_cached` keeps one statement per value.

use crate::change::{Change, FIRST_ACCOUNT_EXISTS};
use crate::governance::{
    same_acl, AccessEvent, AccessSnapshot, AclRow, GovernanceChange, GrantRow, LoggedEvent,
    ObjectRow, PrincipalFacts, SecurableRow, WorkspaceEntry,
};
use crate::listing;
use crate::migrations::SQLITE_MIGRATIONS;
use crate::sql::{
    list_condition, list_order, member_display, workspace_entry_taken, SqlBuilder, SqlValue,
    SqliteDialect, WORKSPACE_ENTRY_COLUMNS,
};
use crate::transfer::{ImportRecord, MembershipRow, TokenRow};
use crate::MAX_GROUP_NESTING_DEPTH;
use crate::{Account, Page, Store, Workspace};
use async_trait::async_trait;
use rusqlite::types::Value as SqliteValue;
use rusqlite::{
    params, params_from_iter, Connection, OptionalExtension, Transaction, TransactionBehavior,
};
use scimitar_access::{AclEntry, ObjectType, PermissionLevel, Privilege, SecurableType};
use scimitar_domain::credentials::{Token, TokenScope};
use scimitar_domain::patch::MembershipStep;
use scimitar_domain::query::ListQuery;
use scimitar_domain::render::{GroupRef, MemberRef};
use scimitar_domain::resource::{fold_case, EmailKey, MemberValue};
use scimitar_domain::{
    AccountId, Principal, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp, WorkspaceId,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const READER_CONNECTIONS: usize = 4;

const PRINCIPAL_COLUMNS: &str =
    "p.id, p.kind, p.attributes, p.password_hash, p.system, p.created, p.last_modified, p.version";

/// A handle on the database; clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: std::sync::mpsc::Sender<WriteJob>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// The most changes one commit covers: enough to amortise the fsync, few enough that a
/// change never waits long behind others.
const MAX_CHANGES_PER_COMMIT: usize = 256;

struct WriteJob {
    account: AccountId,
    /// Taken by the writer when it applies the change.
    change: Option<Change>,
    reply: tokio::sync::oneshot::Sender<ScimResult<()>>,
}

/// The writer thread: waits for a change, gathers whatever else is waiting, applies them all in
/// one transaction with a savepoint each, commits, and answers each caller. Ends when every
/// store handle is gone.
fn run_writer(mut connection: Connection, jobs: std::sync::mpsc::Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_CHANGES_PER_COMMIT {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit_batch(&mut connection, &mut batch);
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
fn commit_batch(connection: &mut Connection, batch: &mut [WriteJob]) -> Vec<ScimResult<()>> {
    match commit_without_savepoints(connection, batch) {
        Some(outcomes) => outcomes,
        None => commit_with_savepoints(connection, batch),
    }
}

/// The batch in one transaction without savepoints: `None` (and nothing written) when a
/// change failed. A batch of one needs no second try: its failure is its outcome.
fn commit_without_savepoints(
    connection: &mut Connection,
    batch: &mut [WriteJob],
) -> Option<Vec<ScimResult<()>>> {
    let transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(transaction) => transaction,
        Err(error) => return Some(cannot_begin(batch, error)),
    };
    for job in batch.iter() {
        let outcome = match &job.change {
            Some(change) => apply_change(&transaction, &job.account, change.clone()),
            None => Err(internal("a change was submitted twice")),
        };
        if let Err(error) = outcome {
            // Dropping the transaction rolls it back.
            drop(transaction);
            if batch.len() == 1 {
                return Some(vec![Err(error)]);
            }
            return None;
        }
    }
    let outcomes = match transaction.commit() {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        Err(error) => {
            let error = write_error(error);
            batch.iter().map(|_| Err(error.clone())).collect()
        }
    };
    Some(outcomes)
}

fn commit_with_savepoints(
    connection: &mut Connection,
    batch: &mut [WriteJob],
) -> Vec<ScimResult<()>> {
    let transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(transaction) => transaction,
        Err(error) => return cannot_begin(batch, error),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch.iter_mut() {
        let outcome = match job.change.take() {
            Some(change) => apply_in_savepoint(&transaction, &job.account, change),
            None => Err(internal("a change was submitted twice")),
        };
        outcomes.push(outcome);
    }
    if let Err(error) = transaction.commit() {
        let error = write_error(error);
        return outcomes
            .into_iter()
            .map(|outcome| outcome.and(Err(error.clone())))
            .collect();
    }
    outcomes
}

fn cannot_begin(batch: &[WriteJob], error: rusqlite::Error) -> Vec<ScimResult<()>> {
    let message = format!("sqlite: cannot begin a write: {error}");
    batch
        .iter()
        .map(|_| Err(ScimError::internal(message.clone())))
        .collect()
}

/// Applies one change so that, if it fails, none of it remains in the transaction.
fn apply_in_savepoint(
    transaction: &Transaction<'_>,
    account: &AccountId,
    change: Change,
) -> ScimResult<()> {
    transaction
        .execute_batch("SAVEPOINT change")
        .map_err(internal)?;
    let outcome = apply_change(transaction, account, change);
    let finish = if outcome.is_ok() {
        "RELEASE change"
    } else {
        "ROLLBACK TO change; RELEASE change"
    };
    transaction.execute_batch(finish).map_err(internal)?;
    outcome
}

fn internal(error: impl std::fmt::Display) -> ScimError {
    ScimError::internal(format!("sqlite: {error}"))
}

/// Maps a failed write to the client-facing error it stands for.
fn write_error(error: rusqlite::Error) -> ScimError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error {
        if failure.code == rusqlite::ErrorCode::ConstraintViolation {
            if message.contains("user_name_lower") {
                return ScimError::uniqueness(
                    "a user with this userName already exists in this account (userName is compared ignoring case)",
                );
            }
            if message.contains("display_name_lower") {
                return ScimError::uniqueness(
                    "a group with this displayName already exists in this account (compared ignoring case)",
                );
            }
            if message.contains("application_id_lower") {
                return ScimError::uniqueness(
                    "a service principal with this applicationId already exists in this account",
                );
            }
            if message.contains("principals.account_id, principals.id") {
                return ScimError::uniqueness(
                    "a principal with this id already exists in this account",
                );
            }
        }
    }
    internal(error)
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint journals (one per change in a group commit) stay in memory instead of a
    // temporary file: they only ever hold a few pages and never need to survive a crash.
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

fn migrate(connection: &mut Connection) -> ScimResult<()> {
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)",
        )
        .map_err(internal)?;
    for (version, statements) in SQLITE_MIGRATIONS {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(internal)?;
        let applied: bool = transaction
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |row| row.get(0),
            )
            .map_err(internal)?;
        if !applied {
            transaction.execute_batch(statements).map_err(internal)?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, applied) VALUES (?1, strftime('%s','now'))",
                    [version],
                )
                .map_err(internal)?;
        }
        transaction.commit().map_err(internal)?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &str) -> ScimResult<Self> {
        let path = path.to_string();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(internal)?
    }

    fn open_blocking(path: &str) -> ScimResult<Self> {
        if let Some(parent) = Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|error| {
                    ScimError::internal(format!("cannot create the directory of {path}: {error}"))
                })?;
            }
        }
        let mut writer = Connection::open(path).map_err(internal)?;
        configure(&writer).map_err(internal)?;
        migrate(&mut writer)?;
        let (jobs, queue) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(writer, queue))
            .map_err(internal)?;
        let mut readers = Vec::with_capacity(READER_CONNECTIONS);
        for _ in 0..READER_CONNECTIONS {
            let reader = Connection::open(path).map_err(internal)?;
            configure(&reader).map_err(internal)?;
            readers.push(Mutex::new(reader));
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: jobs,
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    async fn read<T, F>(&self, work: F) -> ScimResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> ScimResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let index =
                inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len().max(1);
            let slot = inner
                .readers
                .get(index)
                .ok_or_else(|| internal("no reader connection"))?;
            let connection = slot
                .lock()
                .map_err(|_| internal("a reader connection is poisoned"))?;
            work(&connection)
        })
        .await
        .map_err(internal)?
    }

    /// Runs a short read (a point lookup on an index) on the calling thread. Handing such a read
    /// to the blocking pool costs more than the read itself; only reads whose size the client
    /// controls (lists, whole member lists) go through [`SqliteStore::read`].
    fn read_now<T>(&self, work: impl FnOnce(&Connection) -> ScimResult<T>) -> ScimResult<T> {
        for slot in &self.inner.readers {
            if let Ok(connection) = slot.try_lock() {
                return work(&connection);
            }
        }
        let index = self.inner.next_reader.fetch_add(1, Ordering::Relaxed)
            % self.inner.readers.len().max(1);
        let slot = self
            .inner
            .readers
            .get(index)
            .ok_or_else(|| internal("no reader connection"))?;
        let connection = slot
            .lock()
            .map_err(|_| internal("a reader connection is poisoned"))?;
        work(&connection)
    }

    async fn write(&self, account: &AccountId, change: Change) -> ScimResult<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inner
            .writer
            .send(WriteJob {
                account: account.clone(),
                change: Some(change),
                reply,
            })
            .map_err(|_| internal("the writer thread has stopped"))?;
        answer
            .await
            .map_err(|_| internal("the writer thread stopped before answering"))?
    }
}

fn principal_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Principal> {
    let kind_text: String = row.get(1)?;
    let attributes_text: String = row.get(2)?;
    let attributes: Map<String, Value> =
        serde_json::from_str(&attributes_text).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                Box::new(error),
            )
        })?;
    let kind = PrincipalKind::parse(&kind_text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown principal kind {kind_text}").into(),
        )
    })?;
    let version: i64 = row.get(7)?;
    Ok(Principal {
        id: PrincipalId::new(row.get::<_, String>(0)?),
        kind,
        attributes,
        password_hash: row.get(3)?,
        system: row.get(4)?,
        created: Timestamp::from_micros(row.get(5)?),
        last_modified: Timestamp::from_micros(row.get(6)?),
        version: u64::try_from(version).unwrap_or(0),
    })
}

fn to_sqlite(values: &[SqlValue]) -> Vec<SqliteValue> {
    values
        .iter()
        .map(|value| match value {
            SqlValue::Text(text) => SqliteValue::Text(text.clone()),
            SqlValue::Integer(number) => SqliteValue::Integer(*number),
        })
        .collect()
}

fn load_principal(
    connection: &Connection,
    account: &AccountId,
    id: &PrincipalId,
) -> ScimResult<Option<Principal>> {
    connection
        .prepare_cached(&format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = ?1 AND p.id = ?2"
        ))
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], principal_from_row)
                .optional()
        })
        .map_err(internal)
}

fn load_members(
    connection: &Connection,
    account: &AccountId,
    group: &PrincipalId,
) -> ScimResult<Vec<MemberRef>> {
    load_members_limited(connection, account, group, i64::MAX)
}

fn load_members_limited(
    connection: &Connection,
    account: &AccountId,
    group: &PrincipalId,
    limit: i64,
) -> ScimResult<Vec<MemberRef>> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT m.member_id, m.member_kind, p.display_name, p.attributes FROM memberships m \
             CROSS JOIN principals p ON p.account_id = m.account_id AND p.id = m.member_id \
             WHERE m.account_id = ?1 AND m.group_id = ?2 ORDER BY m.member_id LIMIT {limit}",
        ))
        .map_err(internal)?;
    let rows = statement
        .query_map(params![account.as_str(), group.as_str()], |row| {
            let kind: String = row.get(1)?;
            let display: Option<String> = row.get(2)?;
            let attributes: String = row.get(3)?;
            Ok((
                PrincipalId::new(row.get::<_, String>(0)?),
                kind,
                display,
                attributes,
            ))
        })
        .map_err(internal)?;
    let mut members = Vec::new();
    for row in rows {
        let (id, kind, display, attributes) = row.map_err(internal)?;
        let kind = PrincipalKind::parse(&kind).ok_or_else(|| internal("unknown member kind"))?;
        let display = member_display(display, &attributes);
        members.push(MemberRef { id, kind, display });
    }
    Ok(members)
}

fn load_groups_of(
    connection: &Connection,
    account: &AccountId,
    member: &PrincipalId,
) -> ScimResult<Vec<GroupRef>> {
    // Direct groups, then the groups those are in, and so on: the transitive closure, with
    // `direct` set where the principal is a member itself. UNION (not UNION ALL) and the depth
    // bound keep the walk finite even over data that predates the cycle check. The CROSS JOINs
    // pin the join order: each step looks up the few rows it needs on `memberships_by_member`
    // and the primary key, where the planner left alone would scan the account's memberships.
    let mut statement = connection
        .prepare_cached(
            "WITH RECURSIVE ancestors(group_id, direct, depth) AS ( \
               SELECT group_id, 1, 1 FROM memberships WHERE account_id = ?1 AND member_id = ?2 \
               UNION \
               SELECT m.group_id, 0, a.depth + 1 FROM ancestors a \
               CROSS JOIN memberships m ON m.account_id = ?1 AND m.member_id = a.group_id \
               WHERE a.depth < ?3) \
             SELECT g.id, g.display_name, MAX(a.direct) FROM ancestors a \
             CROSS JOIN principals g ON g.account_id = ?1 AND g.id = a.group_id \
             GROUP BY g.id ORDER BY g.display_name_lower, g.id",
        )
        .map_err(internal)?;
    let depth = i64::try_from(MAX_GROUP_NESTING_DEPTH).unwrap_or(i64::MAX);
    let rows = statement
        .query_map(params![account.as_str(), member.as_str(), depth], |row| {
            Ok(GroupRef {
                id: PrincipalId::new(row.get::<_, String>(0)?),
                display: row.get(1)?,
                direct: row.get::<_, i64>(2)? == 1,
            })
        })
        .map_err(internal)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
}

fn list(
    connection: &Connection,
    account: &AccountId,
    kind: PrincipalKind,
    query: &ListQuery,
) -> ScimResult<Page> {
    let dialect = SqliteDialect;
    let mut builder = SqlBuilder::new(&dialect);
    let (condition, exact) =
        list_condition(&mut builder, account.as_str(), kind, query.filter.as_ref());
    let order = list_order(query);
    let params = to_sqlite(&builder.params);
    if let (true, Some(order)) = (exact, order) {
        let total: i64 = connection
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM principals p WHERE {condition}"
            ))
            .and_then(|mut statement| {
                statement.query_row(params_from_iter(params.iter()), |row| row.get(0))
            })
            .map_err(internal)?;
        let limit = i64::try_from(query.count).unwrap_or(i64::MAX);
        let offset = i64::try_from(query.offset()).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE {condition} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        );
        let mut statement = connection.prepare_cached(&sql).map_err(internal)?;
        let principals = statement
            .query_map(params_from_iter(params.iter()), principal_from_row)
            .map_err(internal)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(internal)?;
        return Ok(Page {
            total_results: u64::try_from(total).unwrap_or(0),
            principals,
        });
    }
    let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE {condition}");
    let mut statement = connection.prepare(&sql).map_err(internal)?;
    let candidates = statement
        .query_map(params_from_iter(params.iter()), principal_from_row)
        .map_err(internal)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(internal)?;
    let mentions = |name: &str| {
        query
            .filter
            .as_ref()
            .is_some_and(|filter| filter.mentions(name))
            || query
                .sort_by
                .is_some_and(|attribute| attribute.attribute.name == name)
    };
    let mut members = HashMap::new();
    let mut groups = HashMap::new();
    for candidate in &candidates {
        if kind == PrincipalKind::Group && mentions("members") {
            members.insert(
                candidate.id.clone(),
                load_members(connection, account, &candidate.id)?,
            );
        }
        if mentions("groups") {
            groups.insert(
                candidate.id.clone(),
                load_groups_of(connection, account, &candidate.id)?,
            );
        }
    }
    Ok(listing::finish(candidates, query, &members, &groups))
}

fn insert_principal(
    transaction: &Transaction<'_>,
    account: &AccountId,
    principal: &Principal,
) -> ScimResult<()> {
    let keys = principal.index_keys();
    let attributes = serde_json::to_string(&principal.attributes).map_err(internal)?;
    transaction
        .prepare_cached(
            "INSERT INTO principals (account_id, id, kind, user_name_lower, display_name, display_name_lower, \
             external_id, application_id_lower, active, system, attributes, password_hash, created, last_modified, version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                principal.id.as_str(),
                principal.kind.as_str(),
                keys.user_name.as_deref().map(fold_case),
                keys.display_name,
                keys.display_name.as_deref().map(fold_case),
                keys.external_id,
                keys.application_id.as_deref().map(fold_case),
                keys.active,
                principal.system,
                attributes,
                principal.password_hash,
                principal.created.as_micros(),
                principal.last_modified.as_micros(),
                i64::try_from(principal.version).unwrap_or(i64::MAX),
            ])
        })
        .map_err(write_error)?;
    write_emails(transaction, account, principal, &keys.emails)?;
    log_event(
        transaction,
        account,
        &AccessEvent::PrincipalSaved(PrincipalFacts::from_keys(principal, &keys)),
    )
}

/// Appends an entry to the access log, inside the transaction of the change it records.
fn log_event(
    transaction: &Transaction<'_>,
    account: &AccountId,
    event: &AccessEvent,
) -> ScimResult<()> {
    transaction
        .prepare_cached("INSERT INTO access_log (account_id, event) VALUES (?1, ?2)")
        .and_then(|mut statement| statement.execute(params![account.as_str(), event.to_json()]))
        .map_err(internal)?;
    Ok(())
}

fn write_emails(
    transaction: &Transaction<'_>,
    account: &AccountId,
    principal: &Principal,
    emails: &[EmailKey],
) -> ScimResult<()> {
    transaction
        .prepare_cached("DELETE FROM principal_emails WHERE account_id = ?1 AND principal_id = ?2")
        .and_then(|mut statement| {
            statement.execute(params![account.as_str(), principal.id.as_str()])
        })
        .map_err(internal)?;
    let mut statement = transaction
        .prepare_cached(
            "INSERT INTO principal_emails (account_id, principal_id, position, value_lower, type, is_primary) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(internal)?;
    for (position, email) in emails.iter().enumerate() {
        statement
            .execute(params![
                account.as_str(),
                principal.id.as_str(),
                i64::try_from(position).unwrap_or(i64::MAX),
                fold_case(&email.value),
                email.kind,
                email.primary,
            ])
            .map_err(internal)?;
    }
    Ok(())
}

fn update_principal(
    transaction: &Transaction<'_>,
    account: &AccountId,
    principal: &Principal,
    expected_version: u64,
) -> ScimResult<()> {
    let keys = principal.index_keys();
    let attributes = serde_json::to_string(&principal.attributes).map_err(internal)?;
    let updated = transaction
        .prepare_cached(
            "UPDATE principals SET user_name_lower = ?3, display_name = ?4, display_name_lower = ?5, \
             external_id = ?6, application_id_lower = ?7, active = ?8, attributes = ?9, password_hash = ?10, \
             last_modified = ?11, version = ?12 WHERE account_id = ?1 AND id = ?2 AND version = ?13",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                principal.id.as_str(),
                keys.user_name.as_deref().map(fold_case),
                keys.display_name,
                keys.display_name.as_deref().map(fold_case),
                keys.external_id,
                keys.application_id.as_deref().map(fold_case),
                keys.active,
                attributes,
                principal.password_hash,
                principal.last_modified.as_micros(),
                i64::try_from(principal.version).unwrap_or(i64::MAX),
                i64::try_from(expected_version).unwrap_or(i64::MAX),
            ])
        })
        .map_err(write_error)?;
    if updated == 0 {
        return Err(match load_principal(transaction, account, &principal.id)? {
            None => ScimError::NotFound(format!("resource {} not found", principal.id)),
            Some(_) => ScimError::PreconditionFailed(format!(
                "resource {} was changed by another request",
                principal.id
            )),
        });
    }
    write_emails(transaction, account, principal, &keys.emails)?;
    log_event(
        transaction,
        account,
        &AccessEvent::PrincipalSaved(PrincipalFacts::from_keys(principal, &keys)),
    )
}

fn principal_kind(
    transaction: &Transaction<'_>,
    account: &AccountId,
    id: &PrincipalId,
) -> ScimResult<Option<PrincipalKind>> {
    let kind: Option<String> = transaction
        .prepare_cached("SELECT kind FROM principals WHERE account_id = ?1 AND id = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(internal)?;
    Ok(kind.as_deref().and_then(PrincipalKind::parse))
}

/// Whether `candidate` already contains `group`, directly or through nested groups, so that
/// adding `candidate` to `group` would close a cycle.
fn contains_transitively(
    transaction: &Transaction<'_>,
    account: &AccountId,
    candidate: &PrincipalId,
    group: &PrincipalId,
) -> ScimResult<bool> {
    transaction
        .prepare_cached(
            "WITH RECURSIVE ancestors(id) AS ( \
               SELECT group_id FROM memberships WHERE account_id = ?1 AND member_id = ?2 \
               UNION \
               SELECT m.group_id FROM ancestors a \
               CROSS JOIN memberships m ON m.account_id = ?1 AND m.member_id = a.id) \
             SELECT EXISTS (SELECT 1 FROM ancestors WHERE id = ?3)",
        )
        .and_then(|mut statement| {
            statement.query_row(
                params![account.as_str(), group.as_str(), candidate.as_str()],
                |row| row.get(0),
            )
        })
        .map_err(internal)
}

fn add_member(
    transaction: &Transaction<'_>,
    account: &AccountId,
    group: &Principal,
    member: &MemberValue,
    now: Timestamp,
) -> ScimResult<()> {
    let kind = principal_kind(transaction, account, &member.id)?.ok_or_else(|| {
        ScimError::invalid_value(format!(
            "member '{}' does not exist in this account",
            member.id
        ))
    })?;
    if let Some(hint) = member.kind_hint {
        if hint != kind {
            return Err(ScimError::invalid_value(format!(
                "member '{}' is a {}, not a {}",
                member.id,
                kind.as_str(),
                hint.as_str()
            )));
        }
    }
    if kind == PrincipalKind::Group {
        if member.id == group.id {
            return Err(ScimError::invalid_value(format!(
                "group '{}' cannot be a member of itself",
                group.id
            )));
        }
        if group.system && group.display_name() == Some("admins") {
            return Err(ScimError::invalid_value(
                "the 'admins' group cannot contain groups",
            ));
        }
        if contains_transitively(transaction, account, &member.id, &group.id)? {
            return Err(ScimError::invalid_value(format!(
                "adding group '{}' to group '{}' would make a membership cycle",
                member.id, group.id
            )));
        }
    }
    let inserted = transaction
        .prepare_cached(
            "INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                group.id.as_str(),
                member.id.as_str(),
                kind.as_str(),
                now.as_micros()
            ])
        })
        .map_err(internal)?;
    if inserted > 0 {
        log_event(
            transaction,
            account,
            &AccessEvent::MemberAdded {
                group: group.id.clone(),
                member: member.id.clone(),
            },
        )?;
    }
    Ok(())
}

fn remove_member(
    transaction: &Transaction<'_>,
    account: &AccountId,
    group: &PrincipalId,
    member: &PrincipalId,
) -> ScimResult<()> {
    let removed = transaction
        .prepare_cached(
            "DELETE FROM memberships WHERE account_id = ?1 AND group_id = ?2 AND member_id = ?3",
        )
        .and_then(|mut statement| {
            statement.execute(params![account.as_str(), group.as_str(), member.as_str()])
        })
        .map_err(internal)?;
    if removed > 0 {
        log_event(
            transaction,
            account,
            &AccessEvent::MemberRemoved {
                group: group.clone(),
                member: member.clone(),
            },
        )?;
    }
    Ok(())
}

fn remove_all_members(
    transaction: &Transaction<'_>,
    account: &AccountId,
    group: &PrincipalId,
) -> ScimResult<()> {
    let removed: Vec<String> = transaction
        .prepare_cached(
            "DELETE FROM memberships WHERE account_id = ?1 AND group_id = ?2 RETURNING member_id",
        )
        .and_then(|mut statement| {
            statement
                .query_map(params![account.as_str(), group.as_str()], |row| row.get(0))?
                .collect()
        })
        .map_err(internal)?;
    for member in removed {
        log_event(
            transaction,
            account,
            &AccessEvent::MemberRemoved {
                group: group.clone(),
                member: PrincipalId::new(member),
            },
        )?;
    }
    Ok(())
}

fn apply_membership(
    transaction: &Transaction<'_>,
    account: &AccountId,
    group: &Principal,
    steps: &[MembershipStep],
) -> ScimResult<()> {
    let now = group.last_modified;
    for step in steps {
        match step {
            MembershipStep::Add(members) => {
                for member in members {
                    add_member(transaction, account, group, member, now)?;
                }
            }
            MembershipStep::Remove(ids) => {
                for id in ids {
                    remove_member(transaction, account, &group.id, id)?;
                }
            }
            MembershipStep::RemoveAll => remove_all_members(transaction, account, &group.id)?,
            MembershipStep::ReplaceAll(members) => {
                remove_all_members(transaction, account, &group.id)?;
                for member in members {
                    add_member(transaction, account, group, member, now)?;
                }
            }
            MembershipStep::RemoveMatching(filter) => {
                for member in load_members(transaction, account, &group.id)? {
                    let element = serde_json::json!({
                        "value": member.id.as_str(),
                        "display": member.display,
                        "type": member.kind.as_str(),
                    });
                    if filter.matches_element(&element) {
                        remove_member(transaction, account, &group.id, &member.id)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn join_users_group(
    transaction: &Transaction<'_>,
    account: &AccountId,
    principal: &Principal,
) -> ScimResult<()> {
    let joined: Vec<String> = transaction
        .prepare_cached(
            "INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) \
             SELECT account_id, id, ?2, ?3, ?4 FROM principals \
             WHERE account_id = ?1 AND kind = 'Group' AND system = 1 AND display_name_lower = 'users' \
             ON CONFLICT DO NOTHING RETURNING group_id",
        )
        .and_then(|mut statement| {
            statement
                .query_map(
                    params![
                        account.as_str(),
                        principal.id.as_str(),
                        principal.kind.as_str(),
                        principal.created.as_micros()
                    ],
                    |row| row.get(0),
                )?
                .collect()
        })
        .map_err(internal)?;
    for group in joined {
        log_event(
            transaction,
            account,
            &AccessEvent::MemberAdded {
                group: PrincipalId::new(group),
                member: principal.id.clone(),
            },
        )?;
    }
    Ok(())
}

fn apply_change(
    transaction: &Transaction<'_>,
    account: &AccountId,
    change: Change,
) -> ScimResult<()> {
    match change {
        Change::CreateAccount {
            account: new_account,
            workspace,
            system_groups,
            only_if_first,
            first_admin,
        } => {
            // The writer holds SQLite's write lock (BEGIN IMMEDIATE), which another process on
            // the same file waits for: the test and the insert are one step.
            if only_if_first {
                let any: bool = transaction
                    .query_row("SELECT EXISTS (SELECT 1 FROM accounts)", [], |row| {
                        row.get(0)
                    })
                    .map_err(internal)?;
                if any {
                    return Err(ScimError::uniqueness(FIRST_ACCOUNT_EXISTS));
                }
            }
            transaction
                .execute(
                    "INSERT INTO accounts (id, name, created) VALUES (?1, ?2, ?3)",
                    params![
                        new_account.id.as_str(),
                        new_account.name,
                        new_account.created.as_micros()
                    ],
                )
                .map_err(write_error)?;
            transaction
                .execute(
                    "INSERT INTO workspaces (id, account_id, name, created) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        workspace.id.as_str(),
                        new_account.id.as_str(),
                        workspace.name,
                        workspace.created.as_micros()
                    ],
                )
                .map_err(write_error)?;
            for group in &system_groups {
                insert_principal(transaction, &new_account.id, group)?;
            }
            if let Some(first) = first_admin {
                let group = first.group_in(&system_groups)?;
                insert_principal(transaction, &new_account.id, &first.user)?;
                join_users_group(transaction, &new_account.id, &first.user)?;
                add_member(
                    transaction,
                    &new_account.id,
                    group,
                    &first.as_member(),
                    new_account.created,
                )?;
                insert_token(transaction, &first.token, &first.digest)?;
            }
        }
        Change::CreatePrincipal { principal, members } => {
            insert_principal(transaction, account, &principal)?;
            match principal.kind {
                PrincipalKind::Group => {
                    for member in &members {
                        add_member(transaction, account, &principal, member, principal.created)?;
                    }
                }
                _ => join_users_group(transaction, account, &principal)?,
            }
        }
        Change::UpdatePrincipal {
            principal,
            expected_version,
            membership,
        } => {
            update_principal(transaction, account, &principal, expected_version)?;
            if !membership.is_empty() {
                apply_membership(transaction, account, &principal, &membership)?;
            }
        }
        Change::DeletePrincipal {
            id,
            expected_version,
        } => {
            let current = load_principal(transaction, account, &id)?
                .ok_or_else(|| ScimError::NotFound(format!("resource {id} not found")))?;
            if expected_version.is_some_and(|expected| expected != current.version) {
                return Err(ScimError::PreconditionFailed(format!(
                    "resource {id} is at version {}, not the one given in If-Match",
                    current.etag()
                )));
            }
            for statement in [
                // Two statements, not one with OR: each uses its own index.
                "DELETE FROM memberships WHERE account_id = ?1 AND group_id = ?2",
                "DELETE FROM memberships WHERE account_id = ?1 AND member_id = ?2",
                "DELETE FROM principal_emails WHERE account_id = ?1 AND principal_id = ?2",
                "DELETE FROM tokens WHERE account_id = ?1 AND principal_id = ?2",
                "DELETE FROM principals WHERE account_id = ?1 AND id = ?2",
            ] {
                transaction
                    .prepare_cached(statement)
                    .and_then(|mut prepared| {
                        prepared.execute(params![account.as_str(), id.as_str()])
                    })
                    .map_err(internal)?;
            }
            log_event(transaction, account, &AccessEvent::PrincipalDeleted { id })?;
        }
        Change::Governance(change) => {
            apply_governance(transaction, account, &change)?;
            if !change.is_precondition() {
                log_event(transaction, account, &AccessEvent::Governance(change))?;
            }
        }
        Change::GovernanceBatch(changes) => {
            for change in changes {
                apply_governance(transaction, account, &change)?;
                if !change.is_precondition() {
                    log_event(transaction, account, &AccessEvent::Governance(change))?;
                }
            }
        }
        Change::Import(records) => import_records(transaction, account, records)?,
        Change::CreateToken { token, digest } => insert_token(transaction, &token, &digest)?,
    }
    Ok(())
}

fn insert_token(transaction: &Transaction<'_>, token: &Token, digest: &str) -> ScimResult<()> {
    transaction
        .execute(
            "INSERT INTO tokens (id, account_id, principal_id, secret_digest, scope, comment, created, expires) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                &token.id,
                token.account.as_str(),
                token.principal.as_str(),
                digest,
                token.scope.as_str(),
                token.comment,
                token.created.as_micros(),
                token.expires.map(Timestamp::as_micros),
            ],
        )
        .map_err(write_error)?;
    Ok(())
}

/// Writes exported records as they are, with the access-log entries their state implies (see
/// [`Change::Import`]).
fn import_records(
    transaction: &Transaction<'_>,
    account: &AccountId,
    records: Vec<ImportRecord>,
) -> ScimResult<()> {
    let execute = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> ScimResult<usize> {
        transaction
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values))
            .map_err(write_error)
    };
    // Objects whose ACL rows this batch wrote. An object's entries may span two batches, and
    // the log entry replaces an ACL whole, so each is logged once, at the end, as it then is.
    let mut acl_objects: Vec<(ObjectType, String)> = Vec::new();
    for record in records {
        match record {
            ImportRecord::Account(new_account) => {
                if new_account.id != *account {
                    return Err(internal("an imported account must be applied as itself"));
                }
                let exists: bool = transaction
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)",
                        [account.as_str()],
                        |row| row.get(0),
                    )
                    .map_err(internal)?;
                if exists {
                    return Err(ScimError::uniqueness(format!(
                        "account {account} already exists"
                    )));
                }
                execute(
                    "INSERT INTO accounts (id, name, created) VALUES (?1, ?2, ?3)",
                    &[
                        &account.as_str(),
                        &new_account.name,
                        &new_account.created.as_micros(),
                    ],
                )?;
            }
            ImportRecord::Workspace(workspace) => {
                execute(
                    "INSERT INTO workspaces (id, account_id, name, created) VALUES (?1, ?2, ?3, ?4)",
                    &[
                        &workspace.id.as_str(),
                        &account.as_str(),
                        &workspace.name,
                        &workspace.created.as_micros(),
                    ],
                )?;
            }
            ImportRecord::Principal(principal) => {
                insert_principal(transaction, account, &principal)?
            }
            ImportRecord::Membership(membership) => {
                // The member's kind comes from its row, which must already be there.
                let inserted = execute(
                    "INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) \
                     SELECT account_id, ?2, id, kind, ?4 FROM principals WHERE account_id = ?1 AND id = ?3",
                    &[
                        &account.as_str(),
                        &membership.group.as_str(),
                        &membership.member.as_str(),
                        &membership.created.as_micros(),
                    ],
                )?;
                if inserted == 0 {
                    return Err(ScimError::invalid_value(format!(
                        "member '{}' of group '{}' does not exist in this account",
                        membership.member, membership.group
                    )));
                }
                log_event(
                    transaction,
                    account,
                    &AccessEvent::MemberAdded {
                        group: membership.group,
                        member: membership.member,
                    },
                )?;
            }
            ImportRecord::Token(row) => {
                execute(
                    "INSERT INTO tokens (id, account_id, principal_id, secret_digest, scope, comment, created, expires, revoked) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    &[
                        &row.token.id,
                        &account.as_str(),
                        &row.token.principal.as_str(),
                        &row.digest,
                        &row.token.scope.as_str(),
                        &row.token.comment,
                        &row.token.created.as_micros(),
                        &row.token.expires.map(Timestamp::as_micros),
                        &row.revoked.map(Timestamp::as_micros),
                    ],
                )?;
            }
            ImportRecord::Securable(row) => {
                let change = GovernanceChange::CreateSecurable {
                    securable_type: row.securable_type,
                    full_name: row.full_name,
                    owner: row.owner,
                    comment: row.comment,
                    created: row.created,
                };
                apply_governance(transaction, account, &change)?;
                log_event(transaction, account, &AccessEvent::Governance(change))?;
            }
            ImportRecord::Grant(row) => {
                let change = GovernanceChange::Grant {
                    securable_type: row.securable_type,
                    full_name: row.full_name,
                    principal: row.principal,
                    privileges: vec![row.privilege],
                };
                apply_governance(transaction, account, &change)?;
                log_event(transaction, account, &AccessEvent::Governance(change))?;
            }
            ImportRecord::Object(row) => {
                execute(
                    "INSERT INTO workspace_objects \
                     (account_id, object_type, object_id, directory_id, path, language) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &[
                        &account.as_str(),
                        &row.object_type.as_str(),
                        &row.object_id,
                        &row.directory,
                        &row.path,
                        &row.language,
                    ],
                )?;
                // The engine keeps only placed objects (its snapshot loads the same).
                if row.directory.is_some() {
                    log_event(
                        transaction,
                        account,
                        &AccessEvent::Governance(GovernanceChange::SetObjectParent {
                            object_type: row.object_type,
                            object_id: row.object_id,
                            directory: row.directory,
                        }),
                    )?;
                }
            }
            ImportRecord::Acl(row) => {
                execute(
                    "INSERT INTO object_acl (account_id, object_type, object_id, principal_id, level) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    &[
                        &account.as_str(),
                        &row.object_type.as_str(),
                        &row.object_id,
                        &row.entry.principal.as_str(),
                        &row.entry.level.as_str(),
                    ],
                )?;
                let key = (row.object_type, row.object_id);
                if !acl_objects.contains(&key) {
                    acl_objects.push(key);
                }
            }
        }
    }
    for (object_type, object_id) in acl_objects {
        let entries = transaction
            .prepare_cached(
                "SELECT principal_id, level FROM object_acl \
                 WHERE account_id = ?1 AND object_type = ?2 AND object_id = ?3 ORDER BY principal_id",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(
                        params![account.as_str(), object_type.as_str(), object_id],
                        |row| {
                            Ok(AclEntry::new(
                                PrincipalId::new(row.get::<_, String>(0)?),
                                stored(PermissionLevel::parse(&row.get::<_, String>(1)?))?,
                            ))
                        },
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(internal)?;
        log_event(
            transaction,
            account,
            &AccessEvent::Governance(GovernanceChange::SetObjectAcl {
                object_type,
                object_id,
                entries,
            }),
        )?;
    }
    Ok(())
}

fn membership_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MembershipRow> {
    Ok(MembershipRow {
        group: PrincipalId::new(row.get::<_, String>(0)?),
        member: PrincipalId::new(row.get::<_, String>(1)?),
        created: Timestamp::from_micros(row.get(2)?),
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn accounts(&self) -> ScimResult<Vec<Account>> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT id, name, created FROM accounts ORDER BY created, id")
                .map_err(internal)?;
            let rows = statement
                .query_map([], |row| {
                    Ok(Account {
                        id: AccountId::new(row.get::<_, String>(0)?),
                        name: row.get(1)?,
                        created: Timestamp::from_micros(row.get(2)?),
                    })
                })
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn workspaces(&self, account: &AccountId) -> ScimResult<Vec<Workspace>> {
        let account = account.clone();
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT id, name, created FROM workspaces WHERE account_id = ?1 ORDER BY created, id")
                .map_err(internal)?;
            let rows = statement
                .query_map([account.as_str()], |row| {
                    Ok(Workspace {
                        id: WorkspaceId::new(row.get::<_, String>(0)?),
                        account: account.clone(),
                        name: row.get(1)?,
                        created: Timestamp::from_micros(row.get(2)?),
                    })
                })
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn principal(
        &self,
        account: &AccountId,
        id: &PrincipalId,
    ) -> ScimResult<Option<Principal>> {
        self.read_now(|connection| load_principal(connection, account, id))
    }

    async fn principal_by_name(
        &self,
        account: &AccountId,
        kind: PrincipalKind,
        name: &str,
    ) -> ScimResult<Option<Principal>> {
        let column = match kind {
            PrincipalKind::User => "user_name_lower",
            PrincipalKind::Group => "display_name_lower",
            PrincipalKind::ServicePrincipal => "application_id_lower",
        };
        let name = fold_case(name);
        self.read_now(|connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = ?1 AND p.kind = '{}' AND p.{column} = ?2",
                    kind.as_str()
                ))
                .and_then(|mut statement| {
                    statement
                        .query_row(params![account.as_str(), name], principal_from_row)
                        .optional()
                })
                .map_err(internal)
        })
    }

    async fn list_principals(
        &self,
        account: &AccountId,
        kind: PrincipalKind,
        query: &ListQuery,
    ) -> ScimResult<Page> {
        let (account, query) = (account.clone(), query.clone());
        self.read(move |connection| list(connection, &account, kind, &query))
            .await
    }

    async fn members(
        &self,
        account: &AccountId,
        groups: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<MemberRef>>> {
        let (account, groups) = (account.clone(), groups.to_vec());
        self.read(move |connection| {
            groups
                .into_iter()
                .map(|group| {
                    load_members(connection, &account, &group).map(|members| (group, members))
                })
                .collect()
        })
        .await
    }

    async fn members_up_to(
        &self,
        account: &AccountId,
        group: &PrincipalId,
        cap: usize,
    ) -> ScimResult<Option<Vec<MemberRef>>> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        self.read_now(|connection| {
            // Counting past the cap on the primary key alone is cheap; loading and rendering
            // the members is not, so that only happens for a small group.
            let more_than_cap: bool = connection
                .prepare_cached(&format!(
                    "SELECT EXISTS (SELECT 1 FROM memberships WHERE account_id = ?1 AND group_id = ?2 \
                     ORDER BY member_id LIMIT 1 OFFSET {cap})",
                ))
                .and_then(|mut statement| {
                    statement.query_row(params![account.as_str(), group.as_str()], |row| row.get(0))
                })
                .map_err(internal)?;
            if more_than_cap {
                return Ok(None);
            }
            load_members_limited(connection, account, group, cap).map(Some)
        })
    }

    async fn groups_of(
        &self,
        account: &AccountId,
        principals: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<GroupRef>>> {
        let load = |connection: &Connection, account: &AccountId, principals: &[PrincipalId]| {
            principals
                .iter()
                .map(|principal| {
                    load_groups_of(connection, account, principal)
                        .map(|groups| (principal.clone(), groups))
                })
                .collect()
        };
        // One principal's groups is a short indexed read; a page of them is not.
        if principals.len() <= 4 {
            return self.read_now(|connection| load(connection, account, principals));
        }
        let (account, principals) = (account.clone(), principals.to_vec());
        self.read(move |connection| load(connection, &account, &principals))
            .await
    }

    async fn token_by_digest(&self, digest: &str) -> ScimResult<Option<Token>> {
        self.read_now(|connection| {
            let row = connection
                .prepare_cached(
                    "SELECT id, account_id, principal_id, scope, comment, created, expires FROM tokens \
                     WHERE secret_digest = ?1 AND revoked IS NULL",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([digest], |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, String>(3)?,
                                row.get::<_, Option<String>>(4)?,
                                row.get::<_, i64>(5)?,
                                row.get::<_, Option<i64>>(6)?,
                            ))
                        })
                        .optional()
                })
                .map_err(internal)?;
            let Some((id, account, principal, scope, comment, created, expires)) = row else {
                return Ok(None);
            };
            Ok(Some(Token {
                id,
                account: AccountId::new(account),
                principal: PrincipalId::new(principal),
                scope: TokenScope::parse(&scope).map_err(internal)?,
                comment,
                created: Timestamp::from_micros(created),
                expires: expires.map(Timestamp::from_micros),
            }))
        })
    }

    async fn access_snapshot(&self, account: &AccountId) -> ScimResult<AccessSnapshot> {
        let account = account.clone();
        self.read(move |connection| load_snapshot(connection, &account))
            .await
    }

    async fn access_log_after(&self, seq: u64, limit: usize) -> ScimResult<Vec<LoggedEvent>> {
        let after = i64::try_from(seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_now(|connection| {
            let rows = connection
                .prepare_cached(&format!(
                    "SELECT seq, account_id, event FROM access_log WHERE seq > ?1 ORDER BY seq LIMIT {limit}",
                ))
                .and_then(|mut statement| {
                    statement
                        .query_map(params![after], |row| {
                            Ok((
                                row.get::<_, i64>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                            ))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(internal)?;
            rows.into_iter()
                .map(|(seq, account, event)| {
                    Ok(LoggedEvent {
                        seq: u64::try_from(seq).unwrap_or(0),
                        account: AccountId::new(account),
                        event: AccessEvent::from_json(&event)?,
                    })
                })
                .collect()
        })
    }

    async fn securable(
        &self,
        account: &AccountId,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<Option<SecurableRow>> {
        self.read_now(|connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {SECURABLE_COLUMNS} FROM securables \
                     WHERE account_id = ?1 AND securable_type = ?2 AND full_name = ?3"
                ))
                .and_then(|mut statement| {
                    statement
                        .query_row(
                            params![account.as_str(), securable_type.as_str(), full_name],
                            securable_from_row,
                        )
                        .optional()
                })
                .map_err(internal)
        })
    }

    async fn securables(
        &self,
        account: &AccountId,
        securable_type: SecurableType,
        parent: Option<&str>,
    ) -> ScimResult<Vec<SecurableRow>> {
        let account = account.clone();
        let range = parent.map(descendant_range);
        self.read(move |connection| {
            let (low, high) = range.unwrap_or_default();
            connection
                .prepare_cached(&format!(
                    "SELECT {SECURABLE_COLUMNS} FROM securables \
                     WHERE account_id = ?1 AND securable_type = ?2 \
                     AND (?3 = '' OR (full_name >= ?3 AND full_name < ?4)) ORDER BY full_name"
                ))
                .and_then(|mut statement| {
                    statement
                        .query_map(
                            params![account.as_str(), securable_type.as_str(), low, high],
                            securable_from_row,
                        )?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(internal)
        })
        .await
    }

    async fn workspace_entry(
        &self,
        account: &AccountId,
        path: &str,
    ) -> ScimResult<Option<WorkspaceEntry>> {
        let (account, path) = (account.clone(), path.to_string());
        self.read(move |connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {WORKSPACE_ENTRY_COLUMNS} FROM workspace_objects \
                     WHERE account_id = ?1 AND path = ?2"
                ))
                .and_then(|mut statement| {
                    statement
                        .query_row(params![account.as_str(), path], workspace_entry_from_row)
                        .optional()
                })
                .map_err(internal)
        })
        .await
    }

    async fn workspace_entries_in(
        &self,
        account: &AccountId,
        directory: Option<&str>,
    ) -> ScimResult<Vec<WorkspaceEntry>> {
        let (account, directory) = (account.clone(), directory.map(str::to_string));
        self.read(move |connection| {
            // `IS` rather than `=`: it also matches NULL, the root.
            connection
                .prepare_cached(&format!(
                    "SELECT {WORKSPACE_ENTRY_COLUMNS} FROM workspace_objects \
                     WHERE account_id = ?1 AND directory_id IS ?2 AND path IS NOT NULL \
                     ORDER BY path"
                ))
                .and_then(|mut statement| {
                    statement
                        .query_map(
                            params![account.as_str(), directory],
                            workspace_entry_from_row,
                        )?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(internal)
        })
        .await
    }

    async fn principals_page(
        &self,
        account: &AccountId,
        after: Option<&PrincipalId>,
        limit: usize,
    ) -> ScimResult<Vec<Principal>> {
        let (account, after) = (account.clone(), after.cloned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |connection| {
            // Two statements rather than `(?2 IS NULL OR id > ?2)`, which SQLite cannot turn
            // into a range on the primary key.
            let rows = match &after {
                None => connection
                    .prepare_cached(&format!(
                        "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = ?1 \
                         ORDER BY p.id LIMIT ?2"
                    ))
                    .and_then(|mut statement| {
                        statement
                            .query_map(params![account.as_str(), limit], principal_from_row)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    }),
                Some(after) => connection
                    .prepare_cached(&format!(
                        "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = ?1 \
                         AND p.id > ?2 ORDER BY p.id LIMIT ?3"
                    ))
                    .and_then(|mut statement| {
                        statement
                            .query_map(
                                params![account.as_str(), after.as_str(), limit],
                                principal_from_row,
                            )?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    }),
            };
            rows.map_err(internal)
        })
        .await
    }

    async fn memberships_page(
        &self,
        account: &AccountId,
        after: Option<&MembershipRow>,
        limit: usize,
    ) -> ScimResult<Vec<MembershipRow>> {
        let account = account.clone();
        let after = after.map(|row| (row.group.to_string(), row.member.to_string()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |connection| {
            let rows = match &after {
                None => connection
                    .prepare_cached(
                        "SELECT group_id, member_id, created FROM memberships WHERE account_id = ?1 \
                         ORDER BY group_id, member_id LIMIT ?2",
                    )
                    .and_then(|mut statement| {
                        statement
                            .query_map(params![account.as_str(), limit], membership_from_row)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    }),
                // A row-value comparison is a range on the primary key.
                Some((group, member)) => connection
                    .prepare_cached(
                        "SELECT group_id, member_id, created FROM memberships WHERE account_id = ?1 \
                         AND (group_id, member_id) > (?2, ?3) ORDER BY group_id, member_id LIMIT ?4",
                    )
                    .and_then(|mut statement| {
                        statement
                            .query_map(
                                params![account.as_str(), group, member, limit],
                                membership_from_row,
                            )?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    }),
            };
            rows.map_err(internal)
        })
        .await
    }

    async fn tokens(&self, account: &AccountId) -> ScimResult<Vec<TokenRow>> {
        let account = account.clone();
        self.read(move |connection| {
            let rows = connection
                .prepare_cached(
                    "SELECT id, principal_id, secret_digest, scope, comment, created, expires, revoked \
                     FROM tokens WHERE account_id = ?1 ORDER BY id",
                )
                .and_then(|mut statement| {
                    statement
                        .query_map([account.as_str()], |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, String>(3)?,
                                row.get::<_, Option<String>>(4)?,
                                row.get::<_, i64>(5)?,
                                row.get::<_, Option<i64>>(6)?,
                                row.get::<_, Option<i64>>(7)?,
                            ))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(internal)?;
            rows.into_iter()
                .map(
                    |(id, principal, digest, scope, comment, created, expires, revoked)| {
                        Ok(TokenRow {
                            token: Token {
                                id,
                                account: account.clone(),
                                principal: PrincipalId::new(principal),
                                scope: TokenScope::parse(&scope).map_err(internal)?,
                                comment,
                                created: Timestamp::from_micros(created),
                                expires: expires.map(Timestamp::from_micros),
                            },
                            digest,
                            revoked: revoked.map(Timestamp::from_micros),
                        })
                    },
                )
                .collect()
        })
        .await
    }

    async fn apply(&self, account: &AccountId, change: Change) -> ScimResult<()> {
        self.write(account, change).await
    }

    async fn ready(&self) -> Result<(), crate::NotReady> {
        let applied = self
            .read_now(|connection| {
                connection
                    .query_row(
                        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                        [],
                        |row| row.get::<_, i64>(0),
                    )
                    .map_err(internal)
            })
            .map_err(|error| crate::NotReady::Unreachable(error.to_string()))?;
        let expected = crate::migrations::latest(SQLITE_MIGRATIONS);
        if applied < expected {
            return Err(crate::NotReady::MigrationsBehind { applied, expected });
        }
        Ok(())
    }
}

/// The lower and upper bounds of the names strictly below `full_name` in the securable tree:
/// `main.` up to (not including) `main/`, since `/` follows `.` in every collation SQLite uses
/// here. A range on the primary key, where `LIKE 'main.%'` would need escaping and a scan.
fn descendant_range(full_name: &str) -> (String, String) {
    (format!("{full_name}."), format!("{full_name}/"))
}

fn apply_governance(
    transaction: &Transaction<'_>,
    account: &AccountId,
    change: &GovernanceChange,
) -> ScimResult<()> {
    let execute = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> ScimResult<usize> {
        transaction
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values))
            .map_err(write_error)
    };
    match change {
        GovernanceChange::CreateSecurable {
            securable_type,
            full_name,
            owner,
            comment,
            created,
        } => {
            let inserted = execute(
                "INSERT INTO securables (account_id, securable_type, full_name, owner_id, comment, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                &[
                    &account.as_str(),
                    &securable_type.as_str(),
                    full_name,
                    &owner.as_str(),
                    comment,
                    &created.as_micros(),
                ],
            )?;
            if inserted == 0 {
                return Err(ScimError::uniqueness(format!(
                    "{} '{full_name}' already exists",
                    securable_type.as_str()
                )));
            }
        }
        GovernanceChange::DropSecurable {
            securable_type,
            full_name,
        } => {
            let dropped = execute(
                "DELETE FROM securables WHERE account_id = ?1 AND securable_type = ?2 AND full_name = ?3",
                &[&account.as_str(), &securable_type.as_str(), full_name],
            )?;
            if dropped == 0 {
                return Err(ScimError::NotFound(format!(
                    "{} '{full_name}' does not exist",
                    securable_type.as_str()
                )));
            }
            if matches!(
                securable_type,
                SecurableType::Catalog | SecurableType::Schema
            ) {
                let (low, high) = descendant_range(full_name);
                execute(
                    "DELETE FROM securables WHERE account_id = ?1 AND full_name >= ?2 AND full_name < ?3",
                    &[&account.as_str(), &low, &high],
                )?;
            }
        }
        GovernanceChange::SetOwner {
            securable_type,
            full_name,
            owner,
        } => {
            let updated = execute(
                "UPDATE securables SET owner_id = ?4 WHERE account_id = ?1 AND securable_type = ?2 AND full_name = ?3",
                &[
                    &account.as_str(),
                    &securable_type.as_str(),
                    full_name,
                    &owner.as_str(),
                ],
            )?;
            if updated == 0 {
                return Err(ScimError::NotFound(format!(
                    "{} '{full_name}' does not exist",
                    securable_type.as_str()
                )));
            }
        }
        GovernanceChange::Grant {
            securable_type,
            full_name,
            principal,
            privileges,
        } => {
            for privilege in privileges {
                execute(
                    "INSERT INTO grants (account_id, securable_type, full_name, principal_id, privilege) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    &[
                        &account.as_str(),
                        &securable_type.as_str(),
                        full_name,
                        &principal.as_str(),
                        &privilege.as_str(),
                    ],
                )?;
            }
        }
        GovernanceChange::Revoke {
            securable_type,
            full_name,
            principal,
            privileges,
        } => {
            for privilege in privileges {
                execute(
                    "DELETE FROM grants WHERE account_id = ?1 AND securable_type = ?2 AND full_name = ?3 \
                     AND principal_id = ?4 AND privilege = ?5",
                    &[
                        &account.as_str(),
                        &securable_type.as_str(),
                        full_name,
                        &principal.as_str(),
                        &privilege.as_str(),
                    ],
                )?;
            }
        }
        GovernanceChange::SetObjectAcl {
            object_type,
            object_id,
            entries,
        } => {
            register_object(transaction, account, *object_type, object_id)?;
            execute(
                "DELETE FROM object_acl WHERE account_id = ?1 AND object_type = ?2 AND object_id = ?3",
                &[&account.as_str(), &object_type.as_str(), object_id],
            )?;
            for entry in entries {
                execute(
                    "INSERT INTO object_acl (account_id, object_type, object_id, principal_id, level) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (account_id, object_type, object_id, principal_id) DO UPDATE SET level = excluded.level",
                    &[
                        &account.as_str(),
                        &object_type.as_str(),
                        object_id,
                        &entry.principal.as_str(),
                        &entry.level.as_str(),
                    ],
                )?;
            }
        }
        GovernanceChange::ExpectObjectAcl {
            object_type,
            object_id,
            entries,
        } => {
            // The one writer makes this check and the write it guards atomic.
            let current = transaction
                .prepare_cached(
                    "SELECT principal_id, level FROM object_acl \
                     WHERE account_id = ?1 AND object_type = ?2 AND object_id = ?3",
                )
                .and_then(|mut statement| {
                    statement
                        .query_map(
                            params![account.as_str(), object_type.as_str(), object_id],
                            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
                        )?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(internal)?;
            let current = current
                .into_iter()
                .map(|(principal, level)| {
                    PermissionLevel::parse(&level)
                        .map(|level| AclEntry::new(PrincipalId::new(principal), level))
                        .map_err(internal)
                })
                .collect::<ScimResult<Vec<_>>>()?;
            if !same_acl(&current, entries) {
                return Err(acl_conflict(*object_type, object_id));
            }
        }
        GovernanceChange::SetObjectParent {
            object_type,
            object_id,
            directory,
        } => {
            register_object(transaction, account, *object_type, object_id)?;
            if let Some(directory) = directory {
                register_object(transaction, account, ObjectType::Directories, directory)?;
            }
            execute(
                "UPDATE workspace_objects SET directory_id = ?4 \
                 WHERE account_id = ?1 AND object_type = ?2 AND object_id = ?3",
                &[
                    &account.as_str(),
                    &object_type.as_str(),
                    object_id,
                    directory,
                ],
            )?;
        }
        GovernanceChange::CreateWorkspaceEntry { entry } => {
            let inserted = execute(
                "INSERT INTO workspace_objects \
                 (account_id, object_type, object_id, directory_id, path, language) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                &[
                    &account.as_str(),
                    &entry.object_type.as_str(),
                    &entry.object_id,
                    &entry.directory,
                    &entry.path,
                    &entry.language,
                ],
            )?;
            if inserted == 0 {
                return Err(workspace_entry_taken(entry));
            }
        }
        GovernanceChange::RemoveObject {
            object_type,
            object_id,
        } => {
            execute(
                "DELETE FROM workspace_objects WHERE account_id = ?1 AND object_type = ?2 AND object_id = ?3",
                &[&account.as_str(), &object_type.as_str(), object_id],
            )?;
            if *object_type == ObjectType::Directories {
                execute(
                    "UPDATE workspace_objects SET directory_id = NULL WHERE account_id = ?1 AND directory_id = ?2",
                    &[&account.as_str(), object_id],
                )?;
            }
        }
    }
    Ok(())
}

/// The answer to an ACL write computed from a view that another write has since changed.
pub(crate) fn acl_conflict(object_type: ObjectType, object_id: &str) -> ScimError {
    ScimError::PreconditionFailed(format!(
        "the permissions of {} {object_id} were changed by another request",
        object_type.as_str()
    ))
}

fn register_object(
    transaction: &Transaction<'_>,
    account: &AccountId,
    object_type: ObjectType,
    object_id: &str,
) -> ScimResult<()> {
    transaction
        .prepare_cached(
            "INSERT INTO workspace_objects (account_id, object_type, object_id) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![account.as_str(), object_type.as_str(), object_id])
        })
        .map_err(internal)?;
    Ok(())
}

fn stored<T>(parsed: Result<T, scimitar_access::AccessError>) -> rusqlite::Result<T> {
    parsed.map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(error))
    })
}

fn securable_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SecurableRow> {
    Ok(SecurableRow {
        securable_type: stored(SecurableType::parse(&row.get::<_, String>(0)?))?,
        full_name: row.get(1)?,
        owner: PrincipalId::new(row.get::<_, String>(2)?),
        comment: row.get(3)?,
        created: Timestamp::from_micros(row.get(4)?),
    })
}

const SECURABLE_COLUMNS: &str = "securable_type, full_name, owner_id, comment, created";

fn workspace_entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WorkspaceEntry> {
    Ok(WorkspaceEntry {
        object_type: stored(ObjectType::parse(&row.get::<_, String>(0)?))?,
        object_id: row.get(1)?,
        path: row.get(2)?,
        directory: row.get(3)?,
        language: row.get(4)?,
    })
}

fn load_snapshot(connection: &Connection, account: &AccountId) -> ScimResult<AccessSnapshot> {
    let account_id = account.as_str();
    // One read transaction: in WAL mode every read in it sees the same committed state, the
    // one the log position read first describes, so replaying from `seq + 1` is exact.
    let snapshot = connection.unchecked_transaction().map_err(internal)?;
    let connection: &Connection = &snapshot;
    let seq: i64 = connection
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM access_log", [], |row| {
            row.get(0)
        })
        .map_err(internal)?;
    let principals = connection
        .prepare(&format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = ?1"
        ))
        .and_then(|mut statement| {
            statement
                .query_map([account_id], principal_from_row)?
                .map(|principal| principal.map(|principal| PrincipalFacts::of(&principal)))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(internal)?;
    let memberships = connection
        .prepare("SELECT group_id, member_id FROM memberships WHERE account_id = ?1")
        .and_then(|mut statement| {
            statement
                .query_map([account_id], |row| {
                    Ok((
                        PrincipalId::new(row.get::<_, String>(0)?),
                        PrincipalId::new(row.get::<_, String>(1)?),
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(internal)?;
    // Parents before children: a name's depth is its number of dots.
    let securables = connection
        .prepare(&format!(
            "SELECT {SECURABLE_COLUMNS} FROM securables WHERE account_id = ?1 \
             ORDER BY length(full_name) - length(replace(full_name, '.', '')), full_name"
        ))
        .and_then(|mut statement| {
            statement
                .query_map([account_id], securable_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(internal)?;
    // Grants, objects and ACL entries in primary-key order, as PostgreSQL gives them: the
    // index is read in that order anyway, and an export made from either backend comes out
    // the same.
    let grants = connection
        .prepare(
            "SELECT securable_type, full_name, principal_id, privilege FROM grants WHERE account_id = ?1 \
             ORDER BY securable_type, full_name, principal_id, privilege",
        )
        .and_then(|mut statement| {
            statement
                .query_map([account_id], |row| {
                    Ok(GrantRow {
                        securable_type: stored(SecurableType::parse(&row.get::<_, String>(0)?))?,
                        full_name: row.get(1)?,
                        principal: PrincipalId::new(row.get::<_, String>(2)?),
                        privilege: stored(Privilege::parse(&row.get::<_, String>(3)?))?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(internal)?;
    let objects = connection
        .prepare(
            "SELECT object_type, object_id, directory_id, path, language FROM workspace_objects \
             WHERE account_id = ?1 ORDER BY object_type, object_id",
        )
        .and_then(|mut statement| {
            statement
                .query_map([account_id], |row| {
                    Ok(ObjectRow {
                        object_type: stored(ObjectType::parse(&row.get::<_, String>(0)?))?,
                        object_id: row.get(1)?,
                        directory: row.get(2)?,
                        path: row.get(3)?,
                        language: row.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(internal)?;
    let acl = connection
        .prepare(
            "SELECT object_type, object_id, principal_id, level FROM object_acl WHERE account_id = ?1 \
             ORDER BY object_type, object_id, principal_id",
        )
        .and_then(|mut statement| {
            statement
                .query_map([account_id], |row| {
                    Ok(AclRow {
                        object_type: stored(ObjectType::parse(&row.get::<_, String>(0)?))?,
                        object_id: row.get(1)?,
                        entry: AclEntry::new(
                            PrincipalId::new(row.get::<_, String>(2)?),
                            stored(PermissionLevel::parse(&row.get::<_, String>(3)?))?,
                        ),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(internal)?;
    snapshot.finish().map_err(internal)?;
    Ok(AccessSnapshot {
        seq: u64::try_from(seq).unwrap_or(0),
        principals,
        memberships,
        securables,
        grants,
        objects,
        acl,
    })
}
