//! The PostgreSQL backend: a pool of connections, one transaction per change, and the same
//! behaviour as the SQLite backend (the conformance suite runs on both).
//!
//! Durability: every session runs with `synchronous_commit = on`, set in its startup options so
//! that a role or database default cannot turn it off; a transaction's commit record is flushed
//! before [`Store::apply`] returns, and therefore before any 2xx is sent.
//!
//! Several Scimitar nodes may share one database. What keeps them correct, all inside the
//! database rather than in any one process:
//! - uniqueness of userName, displayName and applicationId: the partial unique indexes. Two
//!   nodes inserting one name at once both reach the index; the second waits for the first to
//!   commit and then fails with a unique violation, which becomes a SCIM `uniqueness` error.
//! - `If-Match` and lost updates: every update is `UPDATE ... WHERE version = expected`. Under
//!   READ COMMITTED a concurrent writer of the same row waits for the row lock and then
//!   re-checks the version against the committed row, so it updates nothing and the change
//!   fails as a precondition failure (which the service retries when the client gave no
//!   `If-Match`). Membership changes are written together with the group's version bump, so
//!   they cannot be lost either.
//! - membership cycles: see [`lock_group_nesting`].
//! - members deleted while being added: the member's row is read `FOR KEY SHARE`, so a
//!   concurrent delete waits for the adding transaction and then removes the new membership by
//!   cascade, instead of the add failing on a foreign key.
//! - schema migrations: run under a transaction-scoped advisory lock, see
//!   [`PostgresStore::migrate`].
//! - the access log's order: see [`write_log`].
//!
//! A transaction that PostgreSQL aborts as a deadlock or serialization failure is retried whole
//! (a [`Change`] is a value, so applying it again is exact).

use crate::change::{Change, FIRST_ACCOUNT_EXISTS};
use crate::governance::{
    same_acl, AccessEvent, AccessSnapshot, AclRow, GovernanceChange, GrantRow, LoggedEvent,
    ObjectRow, PrincipalFacts, SecurableRow, WorkspaceEntry,
};
use crate::listing;
use crate::migrations::{latest, POSTGRES_MIGRATIONS};
use crate::sql::{
    list_condition, list_order, member_display, workspace_entry_taken, PostgresDialect, SqlBuilder,
    SqlValue, WORKSPACE_ENTRY_COLUMNS,
};
use crate::transfer::{ImportRecord, MembershipRow, TokenRow};
use crate::{Account, NotReady, Page, Store, Workspace, MAX_GROUP_NESTING_DEPTH};
use async_trait::async_trait;
use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::tokio_postgres::types::{ToSql, Type};
use deadpool_postgres::tokio_postgres::{self, IsolationLevel, NoTls, Row};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
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
use std::time::Duration;

const PRINCIPAL_COLUMNS: &str =
    "p.id, p.kind, p.attributes, p.password_hash, p.system, p.created, p.last_modified, p.version";

/// The key of the advisory lock that migrations run under ("scimitar" in ASCII). Advisory locks
/// are per database, so nodes sharing a database share this lock and no other.
const MIGRATION_LOCK_KEY: i64 = 0x7363_696d_6974_6172;

/// The key of the advisory lock under which a node creates the first account of an empty
/// database ("scimacct" in ASCII).
const FIRST_ACCOUNT_LOCK_KEY: i64 = 0x7363_696d_6163_6374;

/// The first half of the two-part advisory lock key that serialises group-in-group additions;
/// the second half is a hash of the account id. (Two-part keys never collide with the
/// one-part migration key: PostgreSQL keeps the two forms apart.)
const GROUP_NESTING_LOCK_CLASS: i32 = 0x5343_4e47;

/// The first half of the two-part advisory lock key that serialises writes of one workspace
/// object's ACL across nodes; the second half hashes the account, type and id.
const OBJECT_ACL_LOCK_CLASS: i32 = 0x5341_434c;

/// The key of the advisory lock under which access-log entries are numbered and committed
/// ("scimlog!" in ASCII). See [`write_log`].
const ACCESS_LOG_LOCK_KEY: i64 = 0x7363_696d_6c6f_6721;

/// How many times a change that PostgreSQL aborted as a deadlock or serialization failure is
/// tried in all. Such aborts are rare and say nothing about the change itself.
const APPLY_ATTEMPTS: usize = 4;

/// The default pool size: enough for a node's concurrent requests, small enough that a handful
/// of nodes fit under PostgreSQL's default `max_connections` of 100.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// A handle on the pool; clones share it.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

/// Why a database operation failed: a client-facing error, or a transient conflict that
/// PostgreSQL resolved by aborting this transaction, worth trying again.
enum Failure {
    Scim(ScimError),
    Transient(tokio_postgres::Error),
}

impl From<ScimError> for Failure {
    fn from(error: ScimError) -> Self {
        Failure::Scim(error)
    }
}

impl From<Failure> for ScimError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Scim(error) => error,
            Failure::Transient(error) => internal(error),
        }
    }
}

type Outcome<T> = Result<T, Failure>;

fn internal(error: impl std::fmt::Display) -> ScimError {
    ScimError::internal(format!("postgres: {error}"))
}

/// Classifies a database error: unique violations become the same `uniqueness` errors SQLite
/// gives, text PostgreSQL cannot store becomes a client error, deadlocks and serialization
/// failures are transient, anything else is internal.
fn db(error: tokio_postgres::Error) -> Failure {
    let Some(database_error) = error.as_db_error() else {
        return Failure::Scim(internal(error));
    };
    let code = database_error.code();
    if code == &SqlState::T_R_DEADLOCK_DETECTED || code == &SqlState::T_R_SERIALIZATION_FAILURE {
        return Failure::Transient(error);
    }
    if code == &SqlState::UNIQUE_VIOLATION {
        match database_error.constraint() {
            Some("principals_unique_user_name") => {
                return Failure::Scim(ScimError::uniqueness(
                    "a user with this userName already exists in this account (userName is compared ignoring case)",
                ))
            }
            Some("principals_unique_group_name") => {
                return Failure::Scim(ScimError::uniqueness(
                    "a group with this displayName already exists in this account (compared ignoring case)",
                ))
            }
            Some("principals_unique_application_id") => {
                return Failure::Scim(ScimError::uniqueness(
                    "a service principal with this applicationId already exists in this account",
                ))
            }
            Some("principals_pkey") => {
                return Failure::Scim(ScimError::uniqueness(
                    "a principal with this id already exists in this account",
                ))
            }
            _ => {}
        }
    }
    // PostgreSQL text cannot hold U+0000, which JSON strings may. The stored document escapes
    // it, but an indexed column or a filter operand cannot: that is the client's value, not a
    // fault of the server.
    if code == &SqlState::CHARACTER_NOT_IN_REPERTOIRE || code == &SqlState::UNTRANSLATABLE_CHARACTER
    {
        return Failure::Scim(ScimError::invalid_value(
            "a value contains a character that cannot be stored (U+0000)",
        ));
    }
    Failure::Scim(internal(error))
}

/// The i64 PostgreSQL stores for an unsigned count or version.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A bound parameter of a translated filter, typed as PostgreSQL inferred its placeholder:
/// the shared translation binds booleans as 0/1, which PostgreSQL's `BOOLEAN` columns take as
/// `bool`.
fn bind_value(value: &SqlValue, ty: &Type) -> Box<dyn ToSql + Sync + Send> {
    match value {
        SqlValue::Text(text) => Box::new(text.clone()),
        SqlValue::Integer(number) if *ty == Type::BOOL => Box::new(*number != 0),
        SqlValue::Integer(number) if *ty == Type::INT4 => {
            Box::new(i32::try_from(*number).unwrap_or(if *number < 0 {
                i32::MIN
            } else {
                i32::MAX
            }))
        }
        SqlValue::Integer(number) => Box::new(*number),
    }
}

/// Settings every session gets: commits flushed before they are acknowledged, and no NOTICE
/// chatter (such as "relation already exists, skipping" from migrations) in the server's log.
const SESSION_OPTIONS: &str = "-c synchronous_commit=on -c client_min_messages=warning";

/// The connection settings a URL gives, with what Scimitar insists on added.
fn connection_config(url: &str) -> ScimResult<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|error| ScimError::invalid_value(format!("invalid PostgreSQL URL: {error}")))?;
    // Appended, so that it wins over anything the URL's own `options` set: a 2xx must mean the
    // commit is flushed.
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => {
            format!("{existing} {SESSION_OPTIONS}")
        }
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

/// How often a node looks at whether its tables' planner statistics have gone stale.
const STATISTICS_CHECK_INTERVAL: Duration = Duration::from_secs(10);

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
            .map_err(internal)?;
        let store = PostgresStore { pool };
        store.migrate().await?;
        tokio::spawn(keep_statistics(store.pool.weak()));
        Ok(store)
    }

    async fn client(&self) -> ScimResult<deadpool_postgres::Client> {
        self.pool
            .get()
            .await
            .map_err(|error| internal(format!("cannot get a connection: {error}")))
    }

    /// Applies every migration not yet applied and returns the schema version.
    ///
    /// All of them run in one transaction that first takes an advisory lock, so nodes starting
    /// together against a new database queue up: the first migrates, the others then find
    /// nothing left to do. PostgreSQL's DDL is transactional, so a failed migration leaves the
    /// schema as it was.
    pub async fn migrate(&self) -> ScimResult<i64> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(internal)?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(internal)?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
            )
            .await
            .map_err(internal)?;
        let applied: Vec<i64> = transaction
            .query("SELECT version FROM schema_migrations", &[])
            .await
            .map_err(internal)?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        for (version, statements) in POSTGRES_MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            transaction
                .batch_execute(statements)
                .await
                .map_err(|error| internal(format!("migration {version}: {error}")))?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, applied) \
                     VALUES ($1, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))",
                    &[version],
                )
                .await
                .map_err(internal)?;
            tracing::info!(version, "applied PostgreSQL migration");
        }
        transaction.commit().await.map_err(internal)?;
        // Back to the pool first: a pool of one has no other connection to read the version.
        std::mem::drop(client);
        self.schema_version().await
    }

    /// The highest migration applied to the database (0 on an empty one).
    pub async fn schema_version(&self) -> ScimResult<i64> {
        let client = self.client().await?;
        let present: bool = client
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(internal)?;
        if !present {
            return Ok(0);
        }
        client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(internal)
    }

    async fn apply_once(&self, account: &AccountId, change: &Change) -> Outcome<()> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        let mut log = Vec::new();
        let outcome = match apply_change(&transaction, account, change, &mut log).await {
            Ok(()) => write_log(&transaction, &log).await,
            Err(failure) => Err(failure),
        };
        match outcome {
            Ok(()) => transaction.commit().await.map_err(db),
            Err(failure) => {
                // Explicit, so the connection goes back to the pool clean rather than relying on
                // the rollback that dropping a transaction queues.
                let _ = transaction.rollback().await;
                Err(failure)
            }
        }
    }
}

fn principal_from_row(row: &Row) -> ScimResult<Principal> {
    let kind_text: String = row.try_get(1).map_err(internal)?;
    let attributes_text: String = row.try_get(2).map_err(internal)?;
    let attributes: Map<String, Value> =
        serde_json::from_str(&attributes_text).map_err(internal)?;
    let kind = PrincipalKind::parse(&kind_text)
        .ok_or_else(|| internal(format!("unknown principal kind {kind_text}")))?;
    let version: i64 = row.try_get(7).map_err(internal)?;
    Ok(Principal {
        id: PrincipalId::new(row.try_get::<_, String>(0).map_err(internal)?),
        kind,
        attributes,
        password_hash: row.try_get(3).map_err(internal)?,
        system: row.try_get(4).map_err(internal)?,
        created: Timestamp::from_micros(row.try_get(5).map_err(internal)?),
        last_modified: Timestamp::from_micros(row.try_get(6).map_err(internal)?),
        version: u64::try_from(version).unwrap_or(0),
    })
}

async fn load_principal<C: GenericClient>(
    client: &C,
    account: &AccountId,
    id: &PrincipalId,
) -> Outcome<Option<Principal>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = $1 AND p.id = $2"
        ))
        .await
        .map_err(db)?;
    let row = client
        .query_opt(&statement, &[&account.as_str(), &id.as_str()])
        .await
        .map_err(db)?;
    Ok(row.as_ref().map(principal_from_row).transpose()?)
}

async fn load_members<C: GenericClient>(
    client: &C,
    account: &AccountId,
    group: &PrincipalId,
) -> Outcome<Vec<MemberRef>> {
    load_members_limited(client, account, group, i64::MAX).await
}

async fn load_members_limited<C: GenericClient>(
    client: &C,
    account: &AccountId,
    group: &PrincipalId,
    limit: i64,
) -> Outcome<Vec<MemberRef>> {
    let statement = client
        .prepare_cached(
            "SELECT m.member_id, m.member_kind, p.display_name, p.attributes FROM memberships m \
             JOIN principals p ON p.account_id = m.account_id AND p.id = m.member_id \
             WHERE m.account_id = $1 AND m.group_id = $2 ORDER BY m.member_id LIMIT $3",
        )
        .await
        .map_err(db)?;
    let rows = client
        .query(&statement, &[&account.as_str(), &group.as_str(), &limit])
        .await
        .map_err(db)?;
    let mut members = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0).map_err(internal)?;
        let kind: String = row.try_get(1).map_err(internal)?;
        let display: Option<String> = row.try_get(2).map_err(internal)?;
        let kind = PrincipalKind::parse(&kind).ok_or_else(|| internal("unknown member kind"))?;
        let display = match display {
            Some(display) => Some(display),
            None => member_display(None, &row.try_get::<_, String>(3).map_err(internal)?),
        };
        members.push(MemberRef {
            id: PrincipalId::new(id),
            kind,
            display,
        });
    }
    Ok(members)
}

async fn load_groups_of<C: GenericClient>(
    client: &C,
    account: &AccountId,
    member: &PrincipalId,
) -> Outcome<Vec<GroupRef>> {
    // The transitive closure upwards, as in the SQLite backend: UNION (not UNION ALL) and the
    // depth bound keep the walk finite whatever the data. Grouping happens before the join so
    // each group's row is read once. NULLS FIRST keeps SQLite's order for the (impossible in
    // practice) group without a displayName.
    let statement = client
        .prepare_cached(
            "WITH RECURSIVE ancestors(group_id, direct, depth) AS ( \
               SELECT group_id, 1, 1 FROM memberships WHERE account_id = $1 AND member_id = $2 \
               UNION \
               SELECT m.group_id, 0, a.depth + 1 FROM ancestors a \
               JOIN memberships m ON m.account_id = $1 AND m.member_id = a.group_id \
               WHERE a.depth < $3) \
             SELECT g.id, g.display_name, d.direct FROM \
               (SELECT group_id, MAX(direct) AS direct FROM ancestors GROUP BY group_id) d \
             JOIN principals g ON g.account_id = $1 AND g.id = d.group_id \
             ORDER BY g.display_name_lower NULLS FIRST, g.id",
        )
        .await
        .map_err(db)?;
    let depth = i32::try_from(MAX_GROUP_NESTING_DEPTH).unwrap_or(i32::MAX);
    let rows = client
        .query(&statement, &[&account.as_str(), &member.as_str(), &depth])
        .await
        .map_err(db)?;
    rows.iter()
        .map(|row| {
            Ok(GroupRef {
                id: PrincipalId::new(row.try_get::<_, String>(0).map_err(internal)?),
                display: row.try_get(1).map_err(internal)?,
                direct: row.try_get::<_, i32>(2).map_err(internal)? == 1,
            })
        })
        .collect()
}

async fn list<C: GenericClient>(
    client: &C,
    account: &AccountId,
    kind: PrincipalKind,
    query: &ListQuery,
) -> Outcome<Page> {
    // The builder borrows the dialect as a trait object, which is not `Sync`: it is used and
    // dropped before the first await, leaving plain SQL and parameters.
    let (condition, exact, params) = {
        let mut builder = SqlBuilder::new(&PostgresDialect);
        let (condition, exact) =
            list_condition(&mut builder, account.as_str(), kind, query.filter.as_ref());
        (condition, exact, builder.params)
    };
    let order = list_order(query);
    // Unfiltered lists have a handful of shapes and are prepared once per connection. Filtered
    // ones have as many shapes as clients invent, so they are prepared per query and not kept:
    // the statement cache would otherwise grow without bound.
    let prepare = |sql: String| async move {
        if query.filter.is_none() {
            client.prepare_cached(&sql).await
        } else {
            client.prepare(&sql).await
        }
    };
    let bind = |statement: &tokio_postgres::Statement| -> Vec<Box<dyn ToSql + Sync + Send>> {
        params
            .iter()
            .zip(statement.params())
            .map(|(value, ty)| bind_value(value, ty))
            .collect()
    };
    if let (true, Some(order)) = (exact, order) {
        let count = prepare(format!(
            "SELECT COUNT(*) FROM principals p WHERE {condition}"
        ))
        .await
        .map_err(db)?;
        let values = bind(&count);
        let parameters: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let total: i64 = client
            .query_one(&count, &parameters)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(internal)?;
        let limit_placeholder = params.len() + 1;
        let page = prepare(format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE {condition} ORDER BY {order} \
             LIMIT ${limit_placeholder} OFFSET ${}",
            limit_placeholder + 1
        ))
        .await
        .map_err(db)?;
        let values = bind(&page);
        let limit = to_i64(query.count);
        let offset = to_i64(query.offset());
        let mut parameters: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        parameters.push(&limit);
        parameters.push(&offset);
        let principals = client
            .query(&page, &parameters)
            .await
            .map_err(db)?
            .iter()
            .map(principal_from_row)
            .collect::<ScimResult<Vec<_>>>()?;
        return Ok(Page {
            total_results: u64::try_from(total).unwrap_or(0),
            principals,
        });
    }
    let statement = prepare(format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE {condition}"
    ))
    .await
    .map_err(db)?;
    let values = bind(&statement);
    let parameters: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let candidates = client
        .query(&statement, &parameters)
        .await
        .map_err(db)?
        .iter()
        .map(principal_from_row)
        .collect::<ScimResult<Vec<_>>>()?;
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
                load_members(client, account, &candidate.id).await?,
            );
        }
        if mentions("groups") {
            groups.insert(
                candidate.id.clone(),
                load_groups_of(client, account, &candidate.id).await?,
            );
        }
    }
    Ok(listing::finish(candidates, query, &members, &groups))
}

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// The access-log entries a change makes, gathered while it is applied and written at its end.
type Log = Vec<(AccountId, AccessEvent)>;

/// Writes a change's access-log entries, last thing before its commit.
///
/// Followers read the log by sequence number (`seq > n`), so a number must never become
/// visible after a higher one: the follower would have moved past it. A sequence alone does
/// not promise that: two transactions take 10 and 11, and the one with 11 commits first. So
/// numbers are taken under an advisory lock held until commit: whoever takes the next number
/// has waited for every earlier holder to commit. Gathering the entries and writing them last
/// keeps that lock to the insert and the commit itself; the rest of the change runs in
/// parallel with other writers.
async fn write_log(transaction: &Transaction<'_>, log: &Log) -> Outcome<()> {
    if log.is_empty() {
        return Ok(());
    }
    let accounts: Vec<&str> = log.iter().map(|(account, _)| account.as_str()).collect();
    let events: Vec<String> = log.iter().map(|(_, event)| event.to_json()).collect();
    let lock = transaction
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await
        .map_err(db)?;
    transaction
        .execute(&lock, &[&ACCESS_LOG_LOCK_KEY])
        .await
        .map_err(db)?;
    // WITH ORDINALITY keeps the entries in the order the change made them.
    let insert = transaction
        .prepare_cached(
            "INSERT INTO access_log (account_id, event) \
             SELECT account_id, event FROM unnest($1::text[], $2::text[]) WITH ORDINALITY \
             AS entry(account_id, event, position) ORDER BY position",
        )
        .await
        .map_err(db)?;
    transaction
        .execute(&insert, &[&accounts, &events])
        .await
        .map_err(db)?;
    Ok(())
}

async fn insert_principal(
    transaction: &Transaction<'_>,
    account: &AccountId,
    principal: &Principal,
    log: &mut Log,
) -> Outcome<()> {
    let keys = principal.index_keys();
    let attributes = serde_json::to_string(&principal.attributes).map_err(internal)?;
    let statement = transaction
        .prepare_cached(
            "INSERT INTO principals (account_id, id, kind, user_name_lower, display_name, display_name_lower, \
             external_id, application_id_lower, active, system, attributes, password_hash, created, last_modified, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await
        .map_err(db)?;
    transaction
        .execute(
            &statement,
            &[
                &account.as_str(),
                &principal.id.as_str(),
                &principal.kind.as_str(),
                &keys.user_name.as_deref().map(fold_case),
                &keys.display_name,
                &keys.display_name.as_deref().map(fold_case),
                &keys.external_id,
                &keys.application_id.as_deref().map(fold_case),
                &keys.active,
                &principal.system,
                &attributes,
                &principal.password_hash,
                &principal.created.as_micros(),
                &principal.last_modified.as_micros(),
                &to_i64(principal.version),
            ],
        )
        .await
        .map_err(db)?;
    write_emails(transaction, account, principal, &keys.emails).await?;
    log.push((
        account.clone(),
        AccessEvent::PrincipalSaved(PrincipalFacts::from_keys(principal, &keys)),
    ));
    Ok(())
}

async fn write_emails(
    transaction: &Transaction<'_>,
    account: &AccountId,
    principal: &Principal,
    emails: &[EmailKey],
) -> Outcome<()> {
    let delete = transaction
        .prepare_cached("DELETE FROM principal_emails WHERE account_id = $1 AND principal_id = $2")
        .await
        .map_err(db)?;
    transaction
        .execute(&delete, &[&account.as_str(), &principal.id.as_str()])
        .await
        .map_err(db)?;
    let insert = transaction
        .prepare_cached(
            "INSERT INTO principal_emails (account_id, principal_id, position, value_lower, type, is_primary) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(db)?;
    for (position, email) in emails.iter().enumerate() {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        transaction
            .execute(
                &insert,
                &[
                    &account.as_str(),
                    &principal.id.as_str(),
                    &position,
                    &fold_case(&email.value),
                    &email.kind,
                    &email.primary,
                ],
            )
            .await
            .map_err(db)?;
    }
    Ok(())
}

async fn update_principal(
    transaction: &Transaction<'_>,
    account: &AccountId,
    principal: &Principal,
    expected_version: u64,
    log: &mut Log,
) -> Outcome<()> {
    let keys = principal.index_keys();
    let attributes = serde_json::to_string(&principal.attributes).map_err(internal)?;
    let statement = transaction
        .prepare_cached(
            "UPDATE principals SET user_name_lower = $3, display_name = $4, display_name_lower = $5, \
             external_id = $6, application_id_lower = $7, active = $8, attributes = $9, password_hash = $10, \
             last_modified = $11, version = $12 WHERE account_id = $1 AND id = $2 AND version = $13",
        )
        .await
        .map_err(db)?;
    let updated = transaction
        .execute(
            &statement,
            &[
                &account.as_str(),
                &principal.id.as_str(),
                &keys.user_name.as_deref().map(fold_case),
                &keys.display_name,
                &keys.display_name.as_deref().map(fold_case),
                &keys.external_id,
                &keys.application_id.as_deref().map(fold_case),
                &keys.active,
                &attributes,
                &principal.password_hash,
                &principal.last_modified.as_micros(),
                &to_i64(principal.version),
                &to_i64(expected_version),
            ],
        )
        .await
        .map_err(db)?;
    if updated == 0 {
        return Err(
            match load_principal(transaction, account, &principal.id).await? {
                None => ScimError::NotFound(format!("resource {} not found", principal.id)),
                Some(_) => ScimError::PreconditionFailed(format!(
                    "resource {} was changed by another request",
                    principal.id
                )),
            }
            .into(),
        );
    }
    write_emails(transaction, account, principal, &keys.emails).await?;
    log.push((
        account.clone(),
        AccessEvent::PrincipalSaved(PrincipalFacts::from_keys(principal, &keys)),
    ));
    Ok(())
}

/// The kind of a would-be member, read `FOR KEY SHARE`: a concurrent delete of that principal
/// then waits for this transaction, and its cascade removes the membership written here,
/// rather than this insert failing on the foreign key after the check said the member exists.
async fn member_kind(
    transaction: &Transaction<'_>,
    account: &AccountId,
    id: &PrincipalId,
) -> Outcome<Option<PrincipalKind>> {
    let statement = transaction
        .prepare_cached(
            "SELECT kind FROM principals WHERE account_id = $1 AND id = $2 FOR KEY SHARE",
        )
        .await
        .map_err(db)?;
    let row = transaction
        .query_opt(&statement, &[&account.as_str(), &id.as_str()])
        .await
        .map_err(db)?;
    let kind: Option<String> = row
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(internal)?;
    Ok(kind.as_deref().and_then(PrincipalKind::parse))
}

/// Serialises, per account, every transaction that puts a group inside a group, until it ends.
///
/// The cycle check reads committed memberships. Under READ COMMITTED (PostgreSQL's default, and
/// ours) two transactions on different nodes adding A to B and B to A would each see the graph
/// without the other's edge, both pass, and together make a cycle; row locks do not help, as
/// they touch different rows. Holding this lock from before the check to the commit means the
/// second check starts after the first commit and, READ COMMITTED taking a fresh snapshot per
/// statement, sees its edge. Only group-in-group additions take it (adding users does not), so
/// ordinary provisioning never waits on it. SERIALIZABLE would also catch the race, but by
/// aborting unrelated transactions on predicate-lock false positives across the whole schema.
async fn lock_group_nesting(transaction: &Transaction<'_>, account: &AccountId) -> Outcome<()> {
    let statement = transaction
        .prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .await
        .map_err(db)?;
    transaction
        .execute(&statement, &[&GROUP_NESTING_LOCK_CLASS, &account.as_str()])
        .await
        .map_err(db)?;
    Ok(())
}

/// Whether `candidate` already contains `group`, directly or through nested groups, so that
/// adding `candidate` to `group` would close a cycle.
async fn contains_transitively(
    transaction: &Transaction<'_>,
    account: &AccountId,
    candidate: &PrincipalId,
    group: &PrincipalId,
) -> Outcome<bool> {
    let statement = transaction
        .prepare_cached(
            "WITH RECURSIVE ancestors(id) AS ( \
               SELECT group_id FROM memberships WHERE account_id = $1 AND member_id = $2 \
               UNION \
               SELECT m.group_id FROM ancestors a \
               JOIN memberships m ON m.account_id = $1 AND m.member_id = a.id) \
             SELECT EXISTS (SELECT 1 FROM ancestors WHERE id = $3)",
        )
        .await
        .map_err(db)?;
    transaction
        .query_one(
            &statement,
            &[&account.as_str(), &group.as_str(), &candidate.as_str()],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(|error| Failure::Scim(internal(error)))
}

async fn add_member(
    transaction: &Transaction<'_>,
    account: &AccountId,
    group: &Principal,
    member: &MemberValue,
    now: Timestamp,
    log: &mut Log,
) -> Outcome<()> {
    let kind = member_kind(transaction, account, &member.id)
        .await?
        .ok_or_else(|| {
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
            ))
            .into());
        }
    }
    if kind == PrincipalKind::Group {
        if member.id == group.id {
            return Err(ScimError::invalid_value(format!(
                "group '{}' cannot be a member of itself",
                group.id
            ))
            .into());
        }
        if group.system && group.display_name() == Some("admins") {
            return Err(
                ScimError::invalid_value("the 'admins' group cannot contain groups").into(),
            );
        }
        lock_group_nesting(transaction, account).await?;
        if contains_transitively(transaction, account, &member.id, &group.id).await? {
            return Err(ScimError::invalid_value(format!(
                "adding group '{}' to group '{}' would make a membership cycle",
                member.id, group.id
            ))
            .into());
        }
    }
    let statement = transaction
        .prepare_cached(
            "INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db)?;
    let inserted = transaction
        .execute(
            &statement,
            &[
                &account.as_str(),
                &group.id.as_str(),
                &member.id.as_str(),
                &kind.as_str(),
                &now.as_micros(),
            ],
        )
        .await
        .map_err(db)?;
    if inserted > 0 {
        log.push((
            account.clone(),
            AccessEvent::MemberAdded {
                group: group.id.clone(),
                member: member.id.clone(),
            },
        ));
    }
    Ok(())
}

async fn remove_member(
    transaction: &Transaction<'_>,
    account: &AccountId,
    group: &PrincipalId,
    member: &PrincipalId,
    log: &mut Log,
) -> Outcome<()> {
    let statement = transaction
        .prepare_cached(
            "DELETE FROM memberships WHERE account_id = $1 AND group_id = $2 AND member_id = $3",
        )
        .await
        .map_err(db)?;
    let removed = transaction
        .execute(
            &statement,
            &[&account.as_str(), &group.as_str(), &member.as_str()],
        )
        .await
        .map_err(db)?;
    if removed > 0 {
        log.push((
            account.clone(),
            AccessEvent::MemberRemoved {
                group: group.clone(),
                member: member.clone(),
            },
        ));
    }
    Ok(())
}

async fn remove_all_members(
    transaction: &Transaction<'_>,
    account: &AccountId,
    group: &PrincipalId,
    log: &mut Log,
) -> Outcome<()> {
    let statement = transaction
        .prepare_cached(
            "DELETE FROM memberships WHERE account_id = $1 AND group_id = $2 RETURNING member_id",
        )
        .await
        .map_err(db)?;
    for row in transaction
        .query(&statement, &[&account.as_str(), &group.as_str()])
        .await
        .map_err(db)?
    {
        let member: String = row.try_get(0).map_err(internal)?;
        log.push((
            account.clone(),
            AccessEvent::MemberRemoved {
                group: group.clone(),
                member: PrincipalId::new(member),
            },
        ));
    }
    Ok(())
}

async fn apply_membership(
    transaction: &Transaction<'_>,
    account: &AccountId,
    group: &Principal,
    steps: &[MembershipStep],
    log: &mut Log,
) -> Outcome<()> {
    let now = group.last_modified;
    for step in steps {
        match step {
            MembershipStep::Add(members) => {
                for member in members {
                    add_member(transaction, account, group, member, now, log).await?;
                }
            }
            MembershipStep::Remove(ids) => {
                for id in ids {
                    remove_member(transaction, account, &group.id, id, log).await?;
                }
            }
            MembershipStep::RemoveAll => {
                remove_all_members(transaction, account, &group.id, log).await?
            }
            MembershipStep::ReplaceAll(members) => {
                remove_all_members(transaction, account, &group.id, log).await?;
                for member in members {
                    add_member(transaction, account, group, member, now, log).await?;
                }
            }
            MembershipStep::RemoveMatching(filter) => {
                for member in load_members(transaction, account, &group.id).await? {
                    let element = serde_json::json!({
                        "value": member.id.as_str(),
                        "display": member.display,
                        "type": member.kind.as_str(),
                    });
                    if filter.matches_element(&element) {
                        remove_member(transaction, account, &group.id, &member.id, log).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

async fn join_users_group(
    transaction: &Transaction<'_>,
    account: &AccountId,
    principal: &Principal,
    log: &mut Log,
) -> Outcome<()> {
    let statement = transaction
        .prepare_cached(
            "INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) \
             SELECT account_id, id, $2, $3, $4 FROM principals \
             WHERE account_id = $1 AND kind = 'Group' AND system AND display_name_lower = 'users' \
             ON CONFLICT DO NOTHING RETURNING group_id",
        )
        .await
        .map_err(db)?;
    let joined = transaction
        .query(
            &statement,
            &[
                &account.as_str(),
                &principal.id.as_str(),
                &principal.kind.as_str(),
                &principal.created.as_micros(),
            ],
        )
        .await
        .map_err(db)?;
    for row in joined {
        let group: String = row.try_get(0).map_err(internal)?;
        log.push((
            account.clone(),
            AccessEvent::MemberAdded {
                group: PrincipalId::new(group),
                member: principal.id.clone(),
            },
        ));
    }
    Ok(())
}

async fn apply_change(
    transaction: &Transaction<'_>,
    account: &AccountId,
    change: &Change,
    log: &mut Log,
) -> Outcome<()> {
    match change {
        Change::CreateAccount {
            account: new_account,
            workspace,
            system_groups,
            only_if_first,
            first_admin,
        } => {
            if *only_if_first {
                // Two nodes bootstrapping at once would both see no account under READ
                // COMMITTED; the lock makes the second wait for the first's commit, and then
                // see its account.
                transaction
                    .execute(
                        "SELECT pg_advisory_xact_lock($1)",
                        &[&FIRST_ACCOUNT_LOCK_KEY],
                    )
                    .await
                    .map_err(db)?;
                let any: bool = transaction
                    .query_one("SELECT EXISTS (SELECT 1 FROM accounts)", &[])
                    .await
                    .map_err(db)?
                    .get(0);
                if any {
                    return Err(ScimError::uniqueness(FIRST_ACCOUNT_EXISTS).into());
                }
            }
            transaction
                .execute(
                    "INSERT INTO accounts (id, name, created) VALUES ($1, $2, $3)",
                    &[
                        &new_account.id.as_str(),
                        &new_account.name,
                        &new_account.created.as_micros(),
                    ],
                )
                .await
                .map_err(db)?;
            transaction
                .execute(
                    "INSERT INTO workspaces (id, account_id, name, created) VALUES ($1, $2, $3, $4)",
                    &[
                        &workspace.id.as_str(),
                        &new_account.id.as_str(),
                        &workspace.name,
                        &workspace.created.as_micros(),
                    ],
                )
                .await
                .map_err(db)?;
            for group in system_groups {
                insert_principal(transaction, &new_account.id, group, log).await?;
            }
            if let Some(first) = first_admin {
                let group = first.group_in(system_groups)?;
                insert_principal(transaction, &new_account.id, &first.user, log).await?;
                join_users_group(transaction, &new_account.id, &first.user, log).await?;
                add_member(
                    transaction,
                    &new_account.id,
                    group,
                    &first.as_member(),
                    new_account.created,
                    log,
                )
                .await?;
                insert_token(transaction, &first.token, &first.digest).await?;
            }
        }
        Change::CreatePrincipal { principal, members } => {
            insert_principal(transaction, account, principal, log).await?;
            match principal.kind {
                PrincipalKind::Group => {
                    for member in members {
                        add_member(
                            transaction,
                            account,
                            principal,
                            member,
                            principal.created,
                            log,
                        )
                        .await?;
                    }
                }
                _ => join_users_group(transaction, account, principal, log).await?,
            }
        }
        Change::UpdatePrincipal {
            principal,
            expected_version,
            membership,
        } => {
            update_principal(transaction, account, principal, *expected_version, log).await?;
            if !membership.is_empty() {
                apply_membership(transaction, account, principal, membership, log).await?;
            }
        }
        Change::DeletePrincipal {
            id,
            expected_version,
        } => {
            // FOR UPDATE: the version compared here stays the current one until the delete
            // commits; a concurrent update waits, then finds the row gone.
            let statement = transaction
                .prepare_cached(&format!(
                    "SELECT {PRINCIPAL_COLUMNS} FROM principals p \
                     WHERE p.account_id = $1 AND p.id = $2 FOR UPDATE"
                ))
                .await
                .map_err(db)?;
            let current = transaction
                .query_opt(&statement, &[&account.as_str(), &id.as_str()])
                .await
                .map_err(db)?
                .as_ref()
                .map(principal_from_row)
                .transpose()?
                .ok_or_else(|| ScimError::NotFound(format!("resource {id} not found")))?;
            if expected_version.is_some_and(|expected| expected != current.version) {
                return Err(ScimError::PreconditionFailed(format!(
                    "resource {id} is at version {}, not the one given in If-Match",
                    current.etag()
                ))
                .into());
            }
            for sql in [
                // Two statements, not one with OR: each uses its own index.
                "DELETE FROM memberships WHERE account_id = $1 AND group_id = $2",
                "DELETE FROM memberships WHERE account_id = $1 AND member_id = $2",
                "DELETE FROM principal_emails WHERE account_id = $1 AND principal_id = $2",
                "DELETE FROM tokens WHERE account_id = $1 AND principal_id = $2",
                "DELETE FROM principals WHERE account_id = $1 AND id = $2",
            ] {
                let statement = transaction.prepare_cached(sql).await.map_err(db)?;
                transaction
                    .execute(&statement, &[&account.as_str(), &id.as_str()])
                    .await
                    .map_err(db)?;
            }
            log.push((
                account.clone(),
                AccessEvent::PrincipalDeleted { id: id.clone() },
            ));
        }
        Change::Governance(change) => {
            apply_governance(transaction, account, change).await?;
            if !change.is_precondition() {
                log.push((account.clone(), AccessEvent::Governance(change.clone())));
            }
        }
        Change::GovernanceBatch(changes) => {
            for change in changes {
                apply_governance(transaction, account, change).await?;
                if !change.is_precondition() {
                    log.push((account.clone(), AccessEvent::Governance(change.clone())));
                }
            }
        }
        Change::Import(records) => import_records(transaction, account, records, log).await?,
        Change::CreateToken { token, digest } => insert_token(transaction, token, digest).await?,
    }
    Ok(())
}

async fn insert_token(transaction: &Transaction<'_>, token: &Token, digest: &str) -> Outcome<()> {
    transaction
        .execute(
            "INSERT INTO tokens (id, account_id, principal_id, secret_digest, scope, comment, created, expires) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &token.id,
                &token.account.as_str(),
                &token.principal.as_str(),
                &digest,
                &token.scope.as_str(),
                &token.comment,
                &token.created.as_micros(),
                &token.expires.map(Timestamp::as_micros),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// Writes exported records as they are, with the access-log entries their state implies (see
/// [`Change::Import`]), as the SQLite backend does.
async fn import_records(
    transaction: &Transaction<'_>,
    account: &AccountId,
    records: &[ImportRecord],
    log: &mut Log,
) -> Outcome<()> {
    // Plan every statement for the table as it is now. An import fills empty tables, and a
    // plan cached while a table was empty (ours, or the foreign-key checks PostgreSQL runs for
    // each row) scans it whole; kept while the table grows to a million rows, that makes the
    // import quadratic. Statistics do not save it where autovacuum is off or behind.
    execute(
        transaction,
        "SET LOCAL plan_cache_mode = force_custom_plan",
        &[],
    )
    .await?;
    // Objects whose ACL rows this batch wrote. An object's entries may span two batches, and
    // the log entry replaces an ACL whole, so each is logged once, at the end, as it then is.
    let mut acl_objects: Vec<(ObjectType, &str)> = Vec::new();
    for record in records {
        match record {
            ImportRecord::Account(new_account) => {
                if new_account.id != *account {
                    return Err(internal("an imported account must be applied as itself").into());
                }
                // The primary key refuses a duplicate too; this gives the error a clear text.
                let exists: bool = transaction
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)",
                        &[&account.as_str()],
                    )
                    .await
                    .map_err(db)?
                    .try_get(0)
                    .map_err(internal)?;
                if exists {
                    return Err(
                        ScimError::uniqueness(format!("account {account} already exists")).into(),
                    );
                }
                execute(
                    transaction,
                    "INSERT INTO accounts (id, name, created) VALUES ($1, $2, $3)",
                    &[
                        &account.as_str(),
                        &new_account.name,
                        &new_account.created.as_micros(),
                    ],
                )
                .await?;
            }
            ImportRecord::Workspace(workspace) => {
                execute(
                    transaction,
                    "INSERT INTO workspaces (id, account_id, name, created) VALUES ($1, $2, $3, $4)",
                    &[
                        &workspace.id.as_str(),
                        &account.as_str(),
                        &workspace.name,
                        &workspace.created.as_micros(),
                    ],
                )
                .await?;
            }
            ImportRecord::Principal(principal) => {
                insert_principal(transaction, account, principal, log).await?;
            }
            ImportRecord::Membership(membership) => {
                // The member's kind comes from its row, which must already be there.
                let inserted = execute(
                    transaction,
                    "INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) \
                     SELECT account_id, $2, id, kind, $4 FROM principals WHERE account_id = $1 AND id = $3",
                    &[
                        &account.as_str(),
                        &membership.group.as_str(),
                        &membership.member.as_str(),
                        &membership.created.as_micros(),
                    ],
                )
                .await?;
                if inserted == 0 {
                    return Err(ScimError::invalid_value(format!(
                        "member '{}' of group '{}' does not exist in this account",
                        membership.member, membership.group
                    ))
                    .into());
                }
                log.push((
                    account.clone(),
                    AccessEvent::MemberAdded {
                        group: membership.group.clone(),
                        member: membership.member.clone(),
                    },
                ));
            }
            ImportRecord::Token(row) => {
                execute(
                    transaction,
                    "INSERT INTO tokens (id, account_id, principal_id, secret_digest, scope, comment, created, expires, revoked) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                )
                .await?;
            }
            ImportRecord::Securable(row) => {
                let change = GovernanceChange::CreateSecurable {
                    securable_type: row.securable_type,
                    full_name: row.full_name.clone(),
                    owner: row.owner.clone(),
                    comment: row.comment.clone(),
                    created: row.created,
                };
                apply_governance(transaction, account, &change).await?;
                log.push((account.clone(), AccessEvent::Governance(change)));
            }
            ImportRecord::Grant(row) => {
                let change = GovernanceChange::Grant {
                    securable_type: row.securable_type,
                    full_name: row.full_name.clone(),
                    principal: row.principal.clone(),
                    privileges: vec![row.privilege],
                };
                apply_governance(transaction, account, &change).await?;
                log.push((account.clone(), AccessEvent::Governance(change)));
            }
            ImportRecord::Object(row) => {
                execute(
                    transaction,
                    "INSERT INTO workspace_objects \
                     (account_id, object_type, object_id, directory_id, path, language) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &account.as_str(),
                        &row.object_type.as_str(),
                        &row.object_id,
                        &row.directory,
                        &row.path,
                        &row.language,
                    ],
                )
                .await?;
                // The engine keeps only placed objects (its snapshot loads the same).
                if row.directory.is_some() {
                    log.push((
                        account.clone(),
                        AccessEvent::Governance(GovernanceChange::SetObjectParent {
                            object_type: row.object_type,
                            object_id: row.object_id.clone(),
                            directory: row.directory.clone(),
                        }),
                    ));
                }
            }
            ImportRecord::Acl(row) => {
                execute(
                    transaction,
                    "INSERT INTO object_acl (account_id, object_type, object_id, principal_id, level) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &account.as_str(),
                        &row.object_type.as_str(),
                        &row.object_id,
                        &row.entry.principal.as_str(),
                        &row.entry.level.as_str(),
                    ],
                )
                .await?;
                let key = (row.object_type, row.object_id.as_str());
                if !acl_objects.contains(&key) {
                    acl_objects.push(key);
                }
            }
        }
    }
    for (object_type, object_id) in acl_objects {
        let statement = transaction
            .prepare_cached(
                "SELECT principal_id, level FROM object_acl \
                 WHERE account_id = $1 AND object_type = $2 AND object_id = $3 ORDER BY principal_id",
            )
            .await
            .map_err(db)?;
        let entries = transaction
            .query(
                &statement,
                &[&account.as_str(), &object_type.as_str(), &object_id],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|row| {
                Ok(AclEntry::new(
                    PrincipalId::new(row.try_get::<_, String>(0).map_err(internal)?),
                    PermissionLevel::parse(&row.try_get::<_, String>(1).map_err(internal)?)
                        .map_err(internal)?,
                ))
            })
            .collect::<ScimResult<Vec<_>>>()?;
        log.push((
            account.clone(),
            AccessEvent::Governance(GovernanceChange::SetObjectAcl {
                object_type,
                object_id: object_id.to_string(),
                entries,
            }),
        ));
    }
    Ok(())
}

fn membership_from_row(row: &Row) -> ScimResult<MembershipRow> {
    Ok(MembershipRow {
        group: PrincipalId::new(row.try_get::<_, String>(0).map_err(internal)?),
        member: PrincipalId::new(row.try_get::<_, String>(1).map_err(internal)?),
        created: Timestamp::from_micros(row.try_get(2).map_err(internal)?),
    })
}

/// The bounds of the names strictly below `full_name` in the securable tree: `main.` up to
/// (not including) `main/`, since `/` follows `.` in code-point order (the columns are
/// `COLLATE "C"`). A range on an index, where `LIKE 'main.%'` would need escaping.
fn descendant_range(full_name: &str) -> (String, String) {
    (format!("{full_name}."), format!("{full_name}/"))
}

async fn execute(
    transaction: &Transaction<'_>,
    sql: &str,
    values: &[&(dyn ToSql + Sync)],
) -> Outcome<u64> {
    let statement = transaction.prepare_cached(sql).await.map_err(db)?;
    transaction.execute(&statement, values).await.map_err(db)
}

async fn apply_governance(
    transaction: &Transaction<'_>,
    account: &AccountId,
    change: &GovernanceChange,
) -> Outcome<()> {
    match change {
        GovernanceChange::CreateSecurable {
            securable_type,
            full_name,
            owner,
            comment,
            created,
        } => {
            let inserted = execute(
                transaction,
                "INSERT INTO securables (account_id, securable_type, full_name, owner_id, comment, created) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &account.as_str(),
                    &securable_type.as_str(),
                    full_name,
                    &owner.as_str(),
                    comment,
                    &created.as_micros(),
                ],
            )
            .await?;
            if inserted == 0 {
                return Err(ScimError::uniqueness(format!(
                    "{} '{full_name}' already exists",
                    securable_type.as_str()
                ))
                .into());
            }
        }
        GovernanceChange::DropSecurable {
            securable_type,
            full_name,
        } => {
            let dropped = execute(
                transaction,
                "DELETE FROM securables WHERE account_id = $1 AND securable_type = $2 AND full_name = $3",
                &[&account.as_str(), &securable_type.as_str(), full_name],
            )
            .await?;
            if dropped == 0 {
                return Err(ScimError::NotFound(format!(
                    "{} '{full_name}' does not exist",
                    securable_type.as_str()
                ))
                .into());
            }
            if matches!(
                securable_type,
                SecurableType::Catalog | SecurableType::Schema
            ) {
                let (low, high) = descendant_range(full_name);
                execute(
                    transaction,
                    "DELETE FROM securables WHERE account_id = $1 AND full_name >= $2 AND full_name < $3",
                    &[&account.as_str(), &low, &high],
                )
                .await?;
            }
        }
        GovernanceChange::SetOwner {
            securable_type,
            full_name,
            owner,
        } => {
            let updated = execute(
                transaction,
                "UPDATE securables SET owner_id = $4 WHERE account_id = $1 AND securable_type = $2 AND full_name = $3",
                &[
                    &account.as_str(),
                    &securable_type.as_str(),
                    full_name,
                    &owner.as_str(),
                ],
            )
            .await?;
            if updated == 0 {
                return Err(ScimError::NotFound(format!(
                    "{} '{full_name}' does not exist",
                    securable_type.as_str()
                ))
                .into());
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
                    transaction,
                    "INSERT INTO grants (account_id, securable_type, full_name, principal_id, privilege) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[
                        &account.as_str(),
                        &securable_type.as_str(),
                        full_name,
                        &principal.as_str(),
                        &privilege.as_str(),
                    ],
                )
                .await?;
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
                    transaction,
                    "DELETE FROM grants WHERE account_id = $1 AND securable_type = $2 AND full_name = $3 \
                     AND principal_id = $4 AND privilege = $5",
                    &[
                        &account.as_str(),
                        &securable_type.as_str(),
                        full_name,
                        &principal.as_str(),
                        &privilege.as_str(),
                    ],
                )
                .await?;
            }
        }
        GovernanceChange::SetObjectAcl {
            object_type,
            object_id,
            entries,
        } => {
            register_object(transaction, account, *object_type, object_id).await?;
            execute(
                transaction,
                "DELETE FROM object_acl WHERE account_id = $1 AND object_type = $2 AND object_id = $3",
                &[&account.as_str(), &object_type.as_str(), object_id],
            )
            .await?;
            for entry in entries {
                execute(
                    transaction,
                    "INSERT INTO object_acl (account_id, object_type, object_id, principal_id, level) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (account_id, object_type, object_id, principal_id) DO UPDATE SET level = excluded.level",
                    &[
                        &account.as_str(),
                        &object_type.as_str(),
                        object_id,
                        &entry.principal.as_str(),
                        &entry.level.as_str(),
                    ],
                )
                .await?;
            }
        }
        GovernanceChange::ExpectObjectAcl {
            object_type,
            object_id,
            entries,
        } => {
            // Held to the commit, so two nodes writing one object's ACL take turns: the second
            // check runs after the first write committed (READ COMMITTED reads it) and fails,
            // where without the lock both would see the old ACL and one write would be lost.
            let key = format!("{account}/{}/{object_id}", object_type.as_str());
            let statement = transaction
                .prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .await
                .map_err(db)?;
            transaction
                .execute(&statement, &[&OBJECT_ACL_LOCK_CLASS, &key])
                .await
                .map_err(db)?;
            let statement = transaction
                .prepare_cached(
                    "SELECT principal_id, level FROM object_acl \
                     WHERE account_id = $1 AND object_type = $2 AND object_id = $3",
                )
                .await
                .map_err(db)?;
            let rows = transaction
                .query(
                    &statement,
                    &[&account.as_str(), &object_type.as_str(), object_id],
                )
                .await
                .map_err(db)?;
            let mut current = Vec::with_capacity(rows.len());
            for row in rows {
                let principal: String = row.try_get(0).map_err(internal)?;
                let level: String = row.try_get(1).map_err(internal)?;
                let level = PermissionLevel::parse(&level).map_err(internal)?;
                current.push(AclEntry::new(PrincipalId::new(principal), level));
            }
            if !same_acl(&current, entries) {
                return Err(crate::sqlite::acl_conflict(*object_type, object_id).into());
            }
        }
        GovernanceChange::SetObjectParent {
            object_type,
            object_id,
            directory,
        } => {
            register_object(transaction, account, *object_type, object_id).await?;
            if let Some(directory) = directory {
                register_object(transaction, account, ObjectType::Directories, directory).await?;
            }
            execute(
                transaction,
                "UPDATE workspace_objects SET directory_id = $4 \
                 WHERE account_id = $1 AND object_type = $2 AND object_id = $3",
                &[
                    &account.as_str(),
                    &object_type.as_str(),
                    object_id,
                    directory,
                ],
            )
            .await?;
        }
        GovernanceChange::CreateWorkspaceEntry { entry } => {
            let inserted = execute(
                transaction,
                "INSERT INTO workspace_objects \
                 (account_id, object_type, object_id, directory_id, path, language) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &account.as_str(),
                    &entry.object_type.as_str(),
                    &entry.object_id,
                    &entry.directory,
                    &entry.path,
                    &entry.language,
                ],
            )
            .await?;
            if inserted == 0 {
                return Err(workspace_entry_taken(entry).into());
            }
        }
        GovernanceChange::RemoveObject {
            object_type,
            object_id,
        } => {
            execute(
                transaction,
                "DELETE FROM workspace_objects WHERE account_id = $1 AND object_type = $2 AND object_id = $3",
                &[&account.as_str(), &object_type.as_str(), object_id],
            )
            .await?;
            if *object_type == ObjectType::Directories {
                execute(
                    transaction,
                    "UPDATE workspace_objects SET directory_id = NULL WHERE account_id = $1 AND directory_id = $2",
                    &[&account.as_str(), object_id],
                )
                .await?;
            }
        }
    }
    Ok(())
}

async fn register_object(
    transaction: &Transaction<'_>,
    account: &AccountId,
    object_type: ObjectType,
    object_id: &str,
) -> Outcome<()> {
    execute(
        transaction,
        "INSERT INTO workspace_objects (account_id, object_type, object_id) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
        &[&account.as_str(), &object_type.as_str(), &object_id],
    )
    .await?;
    Ok(())
}

const SECURABLE_COLUMNS: &str = "securable_type, full_name, owner_id, comment, created";

fn securable_from_row(row: &Row) -> ScimResult<SecurableRow> {
    Ok(SecurableRow {
        securable_type: SecurableType::parse(&row.try_get::<_, String>(0).map_err(internal)?)
            .map_err(internal)?,
        full_name: row.try_get(1).map_err(internal)?,
        owner: PrincipalId::new(row.try_get::<_, String>(2).map_err(internal)?),
        comment: row.try_get(3).map_err(internal)?,
        created: Timestamp::from_micros(row.try_get(4).map_err(internal)?),
    })
}

fn workspace_entry_from_row(row: &Row) -> ScimResult<WorkspaceEntry> {
    Ok(WorkspaceEntry {
        object_type: ObjectType::parse(&row.try_get::<_, String>(0).map_err(internal)?)
            .map_err(internal)?,
        object_id: row.try_get(1).map_err(internal)?,
        path: row.try_get(2).map_err(internal)?,
        directory: row.try_get(3).map_err(internal)?,
        language: row.try_get(4).map_err(internal)?,
    })
}

/// An account's access state, read in one REPEATABLE READ transaction: every query sees the
/// same committed state, the one the log position read first describes (log numbers follow
/// commit order, see [`write_log`]), so replaying from `seq + 1` on top of it is exact.
async fn load_snapshot(
    client: &mut deadpool_postgres::Client,
    account: &AccountId,
) -> ScimResult<AccessSnapshot> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(internal)?;
    let account_id = account.as_str();
    let seq: i64 = transaction
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM access_log", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(internal)?;
    let principals = transaction
        .query(
            &format!("SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = $1 ORDER BY p.id"),
            &[&account_id],
        )
        .await
        .map_err(internal)?
        .iter()
        .map(|row| principal_from_row(row).map(|principal| PrincipalFacts::of(&principal)))
        .collect::<ScimResult<Vec<_>>>()?;
    let memberships = transaction
        .query(
            "SELECT group_id, member_id FROM memberships WHERE account_id = $1 ORDER BY group_id, member_id",
            &[&account_id],
        )
        .await
        .map_err(internal)?
        .iter()
        .map(|row| {
            Ok((
                PrincipalId::new(row.try_get::<_, String>(0).map_err(internal)?),
                PrincipalId::new(row.try_get::<_, String>(1).map_err(internal)?),
            ))
        })
        .collect::<ScimResult<Vec<_>>>()?;
    // Parents before children: a name's depth is its number of dots.
    let securables = transaction
        .query(
            &format!(
                "SELECT {SECURABLE_COLUMNS} FROM securables WHERE account_id = $1 \
                 ORDER BY length(full_name) - length(replace(full_name, '.', '')), full_name"
            ),
            &[&account_id],
        )
        .await
        .map_err(internal)?
        .iter()
        .map(securable_from_row)
        .collect::<ScimResult<Vec<_>>>()?;
    let grants = transaction
        .query(
            "SELECT securable_type, full_name, principal_id, privilege FROM grants WHERE account_id = $1 \
             ORDER BY securable_type, full_name, principal_id, privilege",
            &[&account_id],
        )
        .await
        .map_err(internal)?
        .iter()
        .map(|row| {
            Ok(GrantRow {
                securable_type: SecurableType::parse(
                    &row.try_get::<_, String>(0).map_err(internal)?,
                )
                .map_err(internal)?,
                full_name: row.try_get(1).map_err(internal)?,
                principal: PrincipalId::new(row.try_get::<_, String>(2).map_err(internal)?),
                privilege: Privilege::parse(&row.try_get::<_, String>(3).map_err(internal)?)
                    .map_err(internal)?,
            })
        })
        .collect::<ScimResult<Vec<_>>>()?;
    let objects = transaction
        .query(
            "SELECT object_type, object_id, directory_id, path, language FROM workspace_objects \
             WHERE account_id = $1 ORDER BY object_type, object_id",
            &[&account_id],
        )
        .await
        .map_err(internal)?
        .iter()
        .map(|row| {
            Ok(ObjectRow {
                object_type: ObjectType::parse(&row.try_get::<_, String>(0).map_err(internal)?)
                    .map_err(internal)?,
                object_id: row.try_get(1).map_err(internal)?,
                directory: row.try_get(2).map_err(internal)?,
                path: row.try_get(3).map_err(internal)?,
                language: row.try_get(4).map_err(internal)?,
            })
        })
        .collect::<ScimResult<Vec<_>>>()?;
    let acl = transaction
        .query(
            "SELECT object_type, object_id, principal_id, level FROM object_acl WHERE account_id = $1 \
             ORDER BY object_type, object_id, principal_id",
            &[&account_id],
        )
        .await
        .map_err(internal)?
        .iter()
        .map(|row| {
            Ok(AclRow {
                object_type: ObjectType::parse(&row.try_get::<_, String>(0).map_err(internal)?)
                    .map_err(internal)?,
                object_id: row.try_get(1).map_err(internal)?,
                entry: AclEntry::new(
                    PrincipalId::new(row.try_get::<_, String>(2).map_err(internal)?),
                    PermissionLevel::parse(&row.try_get::<_, String>(3).map_err(internal)?)
                        .map_err(internal)?,
                ),
            })
        })
        .collect::<ScimResult<Vec<_>>>()?;
    transaction.commit().await.map_err(internal)?;
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

#[async_trait]
impl Store for PostgresStore {
    async fn accounts(&self) -> ScimResult<Vec<Account>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT id, name, created FROM accounts ORDER BY created, id")
            .await
            .map_err(internal)?;
        client
            .query(&statement, &[])
            .await
            .map_err(internal)?
            .iter()
            .map(|row| {
                Ok(Account {
                    id: AccountId::new(row.try_get::<_, String>(0).map_err(internal)?),
                    name: row.try_get(1).map_err(internal)?,
                    created: Timestamp::from_micros(row.try_get(2).map_err(internal)?),
                })
            })
            .collect()
    }

    async fn workspaces(&self, account: &AccountId) -> ScimResult<Vec<Workspace>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, name, created FROM workspaces WHERE account_id = $1 ORDER BY created, id",
            )
            .await
            .map_err(internal)?;
        client
            .query(&statement, &[&account.as_str()])
            .await
            .map_err(internal)?
            .iter()
            .map(|row| {
                Ok(Workspace {
                    id: WorkspaceId::new(row.try_get::<_, String>(0).map_err(internal)?),
                    account: account.clone(),
                    name: row.try_get(1).map_err(internal)?,
                    created: Timestamp::from_micros(row.try_get(2).map_err(internal)?),
                })
            })
            .collect()
    }

    async fn principal(
        &self,
        account: &AccountId,
        id: &PrincipalId,
    ) -> ScimResult<Option<Principal>> {
        let client = self.client().await?;
        Ok(load_principal(&client, account, id).await?)
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
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = $1 AND p.kind = '{}' AND p.{column} = $2",
                kind.as_str()
            ))
            .await
            .map_err(db)?;
        let row = client
            .query_opt(&statement, &[&account.as_str(), &name])
            .await
            .map_err(db)?;
        row.as_ref().map(principal_from_row).transpose()
    }

    async fn list_principals(
        &self,
        account: &AccountId,
        kind: PrincipalKind,
        query: &ListQuery,
    ) -> ScimResult<Page> {
        let client = self.client().await?;
        Ok(list(&client, account, kind, query).await?)
    }

    async fn members(
        &self,
        account: &AccountId,
        groups: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<MemberRef>>> {
        let client = self.client().await?;
        let mut members = HashMap::with_capacity(groups.len());
        for group in groups {
            members.insert(group.clone(), load_members(&client, account, group).await?);
        }
        Ok(members)
    }

    async fn members_up_to(
        &self,
        account: &AccountId,
        group: &PrincipalId,
        cap: usize,
    ) -> ScimResult<Option<Vec<MemberRef>>> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // Counting past the cap on the primary key alone is cheap; loading and rendering the
        // members is not, so that only happens for a small group.
        let statement = client
            .prepare_cached(
                // ORDER BY the key's last column ties the count to the primary key: with
                // statistics saying a group is half the table, the planner would otherwise
                // scan the table from its start, past every other group's rows.
                "SELECT EXISTS (SELECT 1 FROM memberships WHERE account_id = $1 AND group_id = $2 \
                 ORDER BY member_id LIMIT 1 OFFSET $3)",
            )
            .await
            .map_err(internal)?;
        let more_than_cap: bool = client
            .query_one(&statement, &[&account.as_str(), &group.as_str(), &cap])
            .await
            .map_err(internal)?
            .try_get(0)
            .map_err(internal)?;
        if more_than_cap {
            return Ok(None);
        }
        Ok(Some(
            load_members_limited(&client, account, group, cap).await?,
        ))
    }

    async fn groups_of(
        &self,
        account: &AccountId,
        principals: &[PrincipalId],
    ) -> ScimResult<HashMap<PrincipalId, Vec<GroupRef>>> {
        let client = self.client().await?;
        let mut groups = HashMap::with_capacity(principals.len());
        for principal in principals {
            groups.insert(
                principal.clone(),
                load_groups_of(&client, account, principal).await?,
            );
        }
        Ok(groups)
    }

    async fn token_by_digest(&self, digest: &str) -> ScimResult<Option<Token>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, account_id, principal_id, scope, comment, created, expires FROM tokens \
                 WHERE secret_digest = $1 AND revoked IS NULL",
            )
            .await
            .map_err(internal)?;
        let Some(row) = client
            .query_opt(&statement, &[&digest])
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        let scope: String = row.try_get(3).map_err(internal)?;
        Ok(Some(Token {
            id: row.try_get(0).map_err(internal)?,
            account: AccountId::new(row.try_get::<_, String>(1).map_err(internal)?),
            principal: PrincipalId::new(row.try_get::<_, String>(2).map_err(internal)?),
            scope: TokenScope::parse(&scope).map_err(internal)?,
            comment: row.try_get(4).map_err(internal)?,
            created: Timestamp::from_micros(row.try_get(5).map_err(internal)?),
            expires: row
                .try_get::<_, Option<i64>>(6)
                .map_err(internal)?
                .map(Timestamp::from_micros),
        }))
    }

    async fn access_snapshot(&self, account: &AccountId) -> ScimResult<AccessSnapshot> {
        let mut client = self.client().await?;
        load_snapshot(&mut client, account).await
    }

    async fn access_log_after(&self, seq: u64, limit: usize) -> ScimResult<Vec<LoggedEvent>> {
        let after = to_i64(seq);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT seq, account_id, event FROM access_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .await
            .map_err(internal)?;
        client
            .query(&statement, &[&after, &limit])
            .await
            .map_err(internal)?
            .iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(internal)?;
                let event: String = row.try_get(2).map_err(internal)?;
                Ok(LoggedEvent {
                    seq: u64::try_from(seq).unwrap_or(0),
                    account: AccountId::new(row.try_get::<_, String>(1).map_err(internal)?),
                    event: AccessEvent::from_json(&event)?,
                })
            })
            .collect()
    }

    async fn securable(
        &self,
        account: &AccountId,
        securable_type: SecurableType,
        full_name: &str,
    ) -> ScimResult<Option<SecurableRow>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {SECURABLE_COLUMNS} FROM securables \
                 WHERE account_id = $1 AND securable_type = $2 AND full_name = $3"
            ))
            .await
            .map_err(internal)?;
        client
            .query_opt(
                &statement,
                &[&account.as_str(), &securable_type.as_str(), &full_name],
            )
            .await
            .map_err(db)?
            .as_ref()
            .map(securable_from_row)
            .transpose()
    }

    async fn securables(
        &self,
        account: &AccountId,
        securable_type: SecurableType,
        parent: Option<&str>,
    ) -> ScimResult<Vec<SecurableRow>> {
        let (low, high) = parent.map(descendant_range).unwrap_or_default();
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {SECURABLE_COLUMNS} FROM securables \
                 WHERE account_id = $1 AND securable_type = $2 \
                 AND ($3 = '' OR (full_name >= $3 AND full_name < $4)) ORDER BY full_name"
            ))
            .await
            .map_err(internal)?;
        client
            .query(
                &statement,
                &[&account.as_str(), &securable_type.as_str(), &low, &high],
            )
            .await
            .map_err(db)?
            .iter()
            .map(securable_from_row)
            .collect()
    }

    async fn workspace_entry(
        &self,
        account: &AccountId,
        path: &str,
    ) -> ScimResult<Option<WorkspaceEntry>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {WORKSPACE_ENTRY_COLUMNS} FROM workspace_objects \
                 WHERE account_id = $1 AND path = $2"
            ))
            .await
            .map_err(internal)?;
        client
            .query_opt(&statement, &[&account.as_str(), &path])
            .await
            .map_err(db)?
            .as_ref()
            .map(workspace_entry_from_row)
            .transpose()
    }

    async fn workspace_entries_in(
        &self,
        account: &AccountId,
        directory: Option<&str>,
    ) -> ScimResult<Vec<WorkspaceEntry>> {
        let client = self.client().await?;
        // Two statements rather than `IS NOT DISTINCT FROM`, which no index serves.
        let in_directory = if directory.is_some() {
            "directory_id = $2"
        } else {
            "directory_id IS NULL AND $2::TEXT IS NULL"
        };
        let statement = client
            .prepare_cached(&format!(
                "SELECT {WORKSPACE_ENTRY_COLUMNS} FROM workspace_objects \
                 WHERE account_id = $1 AND {in_directory} AND path IS NOT NULL ORDER BY path"
            ))
            .await
            .map_err(internal)?;
        client
            .query(&statement, &[&account.as_str(), &directory])
            .await
            .map_err(db)?
            .iter()
            .map(workspace_entry_from_row)
            .collect()
    }

    async fn principals_page(
        &self,
        account: &AccountId,
        after: Option<&PrincipalId>,
        limit: usize,
    ) -> ScimResult<Vec<Principal>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // Two statements rather than `($2 IS NULL OR id > $2)`, which a generic plan cannot
        // turn into a range on the primary key.
        let rows = match after {
            None => {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = $1 \
                         ORDER BY p.id LIMIT $2"
                    ))
                    .await
                    .map_err(internal)?;
                client
                    .query(&statement, &[&account.as_str(), &limit])
                    .await
                    .map_err(internal)?
            }
            Some(after) => {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = $1 \
                         AND p.id > $2 ORDER BY p.id LIMIT $3"
                    ))
                    .await
                    .map_err(internal)?;
                client
                    .query(&statement, &[&account.as_str(), &after.as_str(), &limit])
                    .await
                    .map_err(internal)?
            }
        };
        rows.iter().map(principal_from_row).collect()
    }

    async fn memberships_page(
        &self,
        account: &AccountId,
        after: Option<&MembershipRow>,
        limit: usize,
    ) -> ScimResult<Vec<MembershipRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = match after {
            None => {
                let statement = client
                    .prepare_cached(
                        "SELECT group_id, member_id, created FROM memberships WHERE account_id = $1 \
                         ORDER BY group_id, member_id LIMIT $2",
                    )
                    .await
                    .map_err(internal)?;
                client
                    .query(&statement, &[&account.as_str(), &limit])
                    .await
                    .map_err(internal)?
            }
            // A row-value comparison is a range on the primary key.
            Some(after) => {
                let statement = client
                    .prepare_cached(
                        "SELECT group_id, member_id, created FROM memberships WHERE account_id = $1 \
                         AND (group_id, member_id) > ($2, $3) ORDER BY group_id, member_id LIMIT $4",
                    )
                    .await
                    .map_err(internal)?;
                client
                    .query(
                        &statement,
                        &[
                            &account.as_str(),
                            &after.group.as_str(),
                            &after.member.as_str(),
                            &limit,
                        ],
                    )
                    .await
                    .map_err(internal)?
            }
        };
        rows.iter().map(membership_from_row).collect()
    }

    async fn tokens(&self, account: &AccountId) -> ScimResult<Vec<TokenRow>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, principal_id, secret_digest, scope, comment, created, expires, revoked \
                 FROM tokens WHERE account_id = $1 ORDER BY id",
            )
            .await
            .map_err(internal)?;
        client
            .query(&statement, &[&account.as_str()])
            .await
            .map_err(internal)?
            .iter()
            .map(|row| {
                let scope: String = row.try_get(3).map_err(internal)?;
                Ok(TokenRow {
                    token: Token {
                        id: row.try_get(0).map_err(internal)?,
                        account: account.clone(),
                        principal: PrincipalId::new(row.try_get::<_, String>(1).map_err(internal)?),
                        scope: TokenScope::parse(&scope).map_err(internal)?,
                        comment: row.try_get(4).map_err(internal)?,
                        created: Timestamp::from_micros(row.try_get(5).map_err(internal)?),
                        expires: row
                            .try_get::<_, Option<i64>>(6)
                            .map_err(internal)?
                            .map(Timestamp::from_micros),
                    },
                    digest: row.try_get(2).map_err(internal)?,
                    revoked: row
                        .try_get::<_, Option<i64>>(7)
                        .map_err(internal)?
                        .map(Timestamp::from_micros),
                })
            })
            .collect()
    }

    async fn apply(&self, account: &AccountId, change: Change) -> ScimResult<()> {
        let mut attempt = 1;
        loop {
            match self.apply_once(account, &change).await {
                Ok(()) => return Ok(()),
                Err(Failure::Transient(error)) if attempt < APPLY_ATTEMPTS => {
                    tracing::debug!(%error, attempt, "retrying a change PostgreSQL aborted");
                    attempt += 1;
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    async fn ready(&self) -> Result<(), NotReady> {
        let client = self
            .client()
            .await
            .map_err(|error| NotReady::Unreachable(error.to_string()))?;
        let row = client
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .await
            .map_err(|error| NotReady::Unreachable(error.to_string()))?;
        let has_table: bool = row
            .try_get(0)
            .map_err(|error| NotReady::Unreachable(error.to_string()))?;
        let applied: i64 = if has_table {
            client
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|error| NotReady::Unreachable(error.to_string()))?
        } else {
            0
        };
        let expected = latest(POSTGRES_MIGRATIONS);
        if applied < expected {
            return Err(NotReady::MigrationsBehind { applied, expected });
        }
        Ok(())
    }
}

/// Scratch databases for tests: each test gets an empty database of its own on the server a
/// `TEST_DATABASE_URL` names, and drops it when done.
pub mod scratch {
    use super::internal;
    use deadpool_postgres::tokio_postgres::{self, NoTls};
    use scimitar_domain::{ScimError, ScimResult};

    /// `url` with its database name replaced by `database`.
    pub fn with_database(url: &str, database: &str) -> ScimResult<String> {
        let authority_start = url
            .find("://")
            .map(|index| index + 3)
            .ok_or_else(|| ScimError::invalid_value(format!("not a PostgreSQL URL: {url}")))?;
        let rest = &url[authority_start..];
        let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(path_start);
        let query = after.find('?').map_or("", |index| &after[index..]);
        Ok(format!(
            "{}{authority}/{database}{query}",
            &url[..authority_start]
        ))
    }

    async fn run(url: &str, sql: &str) -> ScimResult<()> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|error| internal(format!("cannot connect to {url}: {error}")))?;
        let driver = tokio::spawn(connection);
        let outcome = client.batch_execute(sql).await.map_err(internal);
        std::mem::drop(client);
        let _ = driver.await;
        outcome
    }

    fn check_name(name: &str) -> ScimResult<()> {
        let valid = !name.is_empty()
            && name.len() < 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(())
        } else {
            Err(ScimError::invalid_value(format!(
                "'{name}' is not a scratch database name (lower-case letters, digits, _)"
            )))
        }
    }

    /// Creates the empty database `name` on the server `url` names (dropping any leftover of
    /// that name first) and returns a URL for it.
    pub async fn create(url: &str, name: &str) -> ScimResult<String> {
        check_name(name)?;
        run(url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
        run(url, &format!("CREATE DATABASE {name}")).await?;
        with_database(url, name)
    }

    /// Drops the database `name`, closing any connection still open to it.
    pub async fn drop(url: &str, name: &str) -> ScimResult<()> {
        check_name(name)?;
        run(url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used)]
        use super::with_database;

        #[test]
        fn the_database_name_is_replaced_and_the_rest_kept() {
            assert_eq!(
                with_database("postgres://u@h:5432/test", "x").unwrap(),
                "postgres://u@h:5432/x"
            );
            assert_eq!(
                with_database("postgresql://u@h/test?sslmode=disable", "x").unwrap(),
                "postgresql://u@h/x?sslmode=disable"
            );
            assert_eq!(
                with_database("postgres://u@h", "x").unwrap(),
                "postgres://u@h/x"
            );
        }
    }
}
