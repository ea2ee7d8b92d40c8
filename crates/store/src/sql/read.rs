//! The reads both SQL backends make, written once: each [`crate::Store`] read, and the
//! queries of an access snapshot (which the backend runs inside a read transaction that sees
//! one committed state).

use crate::governance::{
    entitlement_values, AccessEvent, AccessSnapshot, AclRow, BindingRow, GrantRow, LoggedEvent,
    ObjectRow, PrincipalFacts, SecurableRow, WorkspaceEntry,
};
use crate::listing;
use crate::sql::list_anchors::{Known, ListAnchors, ListKey, RowKey};
use crate::sql::transaction::{
    limit_clause, params, query_one, query_opt, Param, SqlRow, SqlTransaction,
};
use crate::sql::{list_condition, list_order, member_display, SqlBuilder, SqlValue};
use crate::transfer::{EntitlementRow, MembershipRow, TokenRow};
use crate::{Account, Page, Workspace, MAX_GROUP_NESTING_DEPTH};
use scimitar_access::{
    AclEntry, BindingType, IsolationMode, ObjectType, PermissionLevel, Privilege, SecurableType,
    WorkspacePermission,
};
use scimitar_domain::credentials::{Token, TokenScope};
use scimitar_domain::query::ListQuery;
use scimitar_domain::render::{GroupRef, MemberRef};
use scimitar_domain::resource::fold_case;
use scimitar_domain::{
    AccountId, Principal, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp, WorkspaceId,
};
use serde_json::{Map, Value};
use std::collections::HashMap;

pub(crate) const PRINCIPAL_COLUMNS: &str =
    "p.id, p.kind, p.attributes, p.password_hash, p.system, p.created, p.last_modified, p.version";

const SECURABLE_COLUMNS: &str =
    "securable_type, full_name, owner_id, comment, created, isolation_mode";

/// The columns a [`WorkspaceEntry`] is read from, in its fields' order.
const WORKSPACE_ENTRY_COLUMNS: &str = "object_type, object_id, path, directory_id, language";

/// A stored value that does not parse: the database holds something this build never writes.
pub(crate) fn corrupt(
    what: &str,
    error: impl std::error::Error + Send + Sync + 'static,
) -> ScimError {
    ScimError::internal_caused_by(format!("a stored {what} cannot be read"), error)
}

/// The i64 a database stores for an unsigned count or version.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn kind_of(text: &str) -> ScimResult<PrincipalKind> {
    PrincipalKind::parse(text)
        .ok_or_else(|| ScimError::internal(format!("a stored principal kind '{text}' is unknown")))
}

fn securable_type_of(text: &str) -> ScimResult<SecurableType> {
    SecurableType::parse(text).map_err(|error| corrupt("securable type", error))
}

pub(crate) fn object_type_of(text: &str) -> ScimResult<ObjectType> {
    ObjectType::parse(text).map_err(|error| corrupt("object type", error))
}

/// A stored workspace permission (`USER`, `ADMIN`).
pub fn permission_of(text: &str) -> ScimResult<WorkspacePermission> {
    WorkspacePermission::parse(text).ok_or_else(|| {
        ScimError::internal(format!(
            "a stored workspace permission '{text}' cannot be read"
        ))
    })
}

fn level_of(text: &str) -> ScimResult<PermissionLevel> {
    PermissionLevel::parse(text).map_err(|error| corrupt("permission level", error))
}

/// A principal from a row of [`PRINCIPAL_COLUMNS`]. Its document's `entitlements`, which
/// documents written before entitlements were per workspace still hold, are not read: a
/// principal's entitlements are its workspaces' ([`principal_in_workspace_from_row`]).
pub(crate) fn principal_from_row(mut row: SqlRow) -> ScimResult<Principal> {
    let mut attributes: Map<String, Value> = serde_json::from_str(&row.text(2)?)
        .map_err(|error| corrupt("principal document", error))?;
    attributes.remove("entitlements");
    Ok(Principal {
        id: PrincipalId::new(row.text(0)?),
        kind: kind_of(&row.text(1)?)?,
        attributes,
        password_hash: row.optional_text(3)?,
        system: row.boolean(4)?,
        created: Timestamp::from_micros(row.integer(5)?),
        last_modified: Timestamp::from_micros(row.integer(6)?),
        version: to_u64(row.integer(7)?),
    })
}

/// The columns of a principal as a workspace sees it, over `principals p` joined with
/// [`workspace_entitlements_join`].
fn principal_in_workspace_columns() -> String {
    format!("{PRINCIPAL_COLUMNS}, e.entitlements")
}

/// `LEFT JOIN` of `principals p` with the row of its entitlements in the workspace whose
/// placeholder is given: at most one row per principal (the primary key), so the join never
/// multiplies rows.
fn workspace_entitlements_join(workspace: &str) -> String {
    format!(
        "LEFT JOIN workspace_entitlements e ON e.account_id = p.account_id \
         AND e.workspace_id = {workspace} AND e.principal_id = p.id"
    )
}

/// A stored `entitlements` array.
pub(crate) fn entitlements_of(text: &str) -> ScimResult<Value> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| corrupt("entitlements", error))?;
    if !value.is_array() {
        return Err(ScimError::internal(
            "stored entitlements are not a JSON array",
        ));
    }
    Ok(value)
}

/// A principal from a row of [`principal_in_workspace_columns`]: its document with the
/// workspace's `entitlements`, when it holds any there.
fn principal_in_workspace_from_row(mut row: SqlRow) -> ScimResult<Principal> {
    let entitlements = row.optional_text(8)?;
    let mut principal = principal_from_row(row)?;
    if let Some(text) = entitlements {
        principal
            .attributes
            .insert("entitlements".into(), entitlements_of(&text)?);
    }
    Ok(principal)
}

fn securable_from_row(mut row: SqlRow) -> ScimResult<SecurableRow> {
    Ok(SecurableRow {
        securable_type: securable_type_of(&row.text(0)?)?,
        full_name: row.text(1)?,
        owner: PrincipalId::new(row.text(2)?),
        comment: row.optional_text(3)?,
        created: Timestamp::from_micros(row.integer(4)?),
        isolation_mode: isolation_mode_of(&row.text(5)?)?,
    })
}

/// A stored isolation mode (`OPEN`, `ISOLATED`).
fn isolation_mode_of(text: &str) -> ScimResult<IsolationMode> {
    IsolationMode::parse(text).ok_or_else(|| {
        ScimError::internal(format!("a stored isolation mode '{text}' cannot be read"))
    })
}

/// A stored binding type (`BINDING_TYPE_READ_WRITE`, `BINDING_TYPE_READ_ONLY`).
fn binding_type_of(text: &str) -> ScimResult<BindingType> {
    BindingType::parse(text).ok_or_else(|| {
        ScimError::internal(format!("a stored binding type '{text}' cannot be read"))
    })
}

fn workspace_entry_from_row(mut row: SqlRow) -> ScimResult<WorkspaceEntry> {
    Ok(WorkspaceEntry {
        object_type: object_type_of(&row.text(0)?)?,
        object_id: row.text(1)?,
        path: row.text(2)?,
        directory: row.optional_text(3)?,
        language: row.optional_text(4)?,
    })
}

fn membership_from_row(mut row: SqlRow) -> ScimResult<MembershipRow> {
    Ok(MembershipRow {
        group: PrincipalId::new(row.text(0)?),
        member: PrincipalId::new(row.text(1)?),
        created: Timestamp::from_micros(row.integer(2)?),
    })
}

/// An ACL entry from `principal_id, level`.
pub(crate) fn acl_entry_from_row(mut row: SqlRow) -> ScimResult<AclEntry> {
    Ok(AclEntry::new(
        PrincipalId::new(row.text(0)?),
        level_of(&row.text(1)?)?,
    ))
}

fn each<T>(rows: Vec<SqlRow>, decode: impl Fn(SqlRow) -> ScimResult<T>) -> ScimResult<Vec<T>> {
    rows.into_iter().map(decode).collect()
}

/// The bounds of the names strictly below `full_name` in the securable tree: `main.` up to
/// (not including) `main/`, since `/` follows `.` in code-point order (PostgreSQL's columns are
/// `COLLATE "C"`, SQLite's compare bytes). A range on an index, where `LIKE 'main.%'` would
/// need escaping and a scan.
pub(crate) fn descendant_range(full_name: &str) -> (String, String) {
    (format!("{full_name}."), format!("{full_name}/"))
}

pub async fn accounts<T: SqlTransaction>(session: &mut T) -> ScimResult<Vec<Account>> {
    let rows = session
        .query(
            "SELECT id, name, created FROM accounts ORDER BY created, id",
            &[],
        )
        .await?;
    each(rows, |mut row| {
        Ok(Account {
            id: AccountId::new(row.text(0)?),
            name: row.text(1)?,
            created: Timestamp::from_micros(row.integer(2)?),
        })
    })
}

/// The columns a [`Workspace`] is read from, in [`workspace_from_row`]'s order.
const WORKSPACE_COLUMNS: &str = "id, account_id, name, created, deployment_name";

fn workspace_from_row(mut row: SqlRow) -> ScimResult<Workspace> {
    Ok(Workspace {
        id: WorkspaceId::new(row.text(0)?),
        account: AccountId::new(row.text(1)?),
        name: row.text(2)?,
        created: Timestamp::from_micros(row.integer(3)?),
        deployment_name: row.optional_text(4)?,
    })
}

pub async fn workspaces<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Vec<Workspace>> {
    let sql = format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE account_id = $1 ORDER BY created, id"
    );
    each(
        session.query(&sql, params![account.as_str()]).await?,
        workspace_from_row,
    )
}

pub async fn workspace<T: SqlTransaction>(
    session: &mut T,
    id: &WorkspaceId,
) -> ScimResult<Option<Workspace>> {
    let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = $1");
    session
        .query(&sql, params![id.as_str()])
        .await?
        .into_iter()
        .next()
        .map(workspace_from_row)
        .transpose()
}

pub async fn workspace_by_deployment_name<T: SqlTransaction>(
    session: &mut T,
    name: &str,
) -> ScimResult<Option<Workspace>> {
    let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE deployment_name = $1");
    session
        .query(&sql, params![&name.to_ascii_lowercase()])
        .await?
        .into_iter()
        .next()
        .map(workspace_from_row)
        .transpose()
}

pub async fn principal<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    id: &PrincipalId,
) -> ScimResult<Option<Principal>> {
    let sql = format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = $1 AND p.id = $2"
    );
    query_opt(session, &sql, params![account.as_str(), id.as_str()])
        .await?
        .map(principal_from_row)
        .transpose()
}

pub async fn principal_in<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
    id: &PrincipalId,
) -> ScimResult<Option<Principal>> {
    let sql = format!(
        "SELECT {} FROM principals p {} WHERE p.account_id = $1 AND p.id = $2",
        principal_in_workspace_columns(),
        workspace_entitlements_join("$3")
    );
    query_opt(
        session,
        &sql,
        params![account.as_str(), id.as_str(), workspace.as_str()],
    )
    .await?
    .map(principal_in_workspace_from_row)
    .transpose()
}

/// The kind is a literal, not a parameter, so the planner can use the partial unique index
/// of that kind (see [`crate::sql::list_condition`]).
pub async fn principal_by_name<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    kind: PrincipalKind,
    name: &str,
) -> ScimResult<Option<Principal>> {
    let column = match kind {
        PrincipalKind::User => "user_name_lower",
        PrincipalKind::Group => "display_name_lower",
        PrincipalKind::ServicePrincipal => "application_id_lower",
    };
    let sql = format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals p \
         WHERE p.account_id = $1 AND p.kind = '{}' AND p.{column} = $2",
        kind.as_str()
    );
    // Names are stored in NFC (`scimitar_domain::names`); a name given in another form is
    // the same name.
    let name = fold_case(&scimitar_domain::names::normalise(name));
    query_opt(session, &sql, params![account.as_str(), name.as_str()])
        .await?
        .map(principal_from_row)
        .transpose()
}

/// A condition on `principals p`: the principal belongs to the workspace's directory. It is
/// one of the account's system groups, or assigned there (a point lookup, true for most
/// principals, which were made through the workspace, and which spares the rest), or a member
/// (through nested groups) of an assigned group: a recursive walk down from the assignments.
/// The walk's step names the reached rows first (`reach r CROSS JOIN memberships m`, an order
/// SQLite keeps), so each step is a primary-key lookup: SQLite 3.50 otherwise scanned the
/// account's memberships for every reached row, 0.15 s for a workspace of 1,300 users.
/// Returns the condition and the workspace's placeholder, which the list's entitlements join
/// uses too (every statement of a list takes the same parameters).
fn in_workspace_condition(
    builder: &mut SqlBuilder<'_>,
    account: &str,
    workspace: &str,
) -> (String, String) {
    let account = builder.bind(SqlValue::Text(account.to_string()));
    let workspace = builder.bind(SqlValue::Text(workspace.to_string()));
    let condition = format!(
        "(p.system = TRUE \
         OR EXISTS (SELECT 1 FROM workspace_assignments a WHERE a.account_id = p.account_id \
         AND a.workspace_id = {workspace} AND a.principal_id = p.id) \
         OR p.id IN (WITH RECURSIVE reach(id) AS (\
         SELECT principal_id FROM workspace_assignments \
         WHERE account_id = {account} AND workspace_id = {workspace} \
         UNION SELECT m.member_id FROM reach r CROSS JOIN memberships m \
         WHERE m.account_id = {account} AND m.group_id = r.id) SELECT id FROM reach))"
    );
    (condition, workspace)
}

/// Whether a list's pages can start from remembered keys ([`ListAnchors`]): unfiltered, in
/// the default order. Such a list is read in one snapshot, with the access log's position.
pub fn anchored(query: &ListQuery) -> bool {
    query.filter.is_none() && query.sort_by.is_none()
}

/// A page of principals. For an [`anchored`] list, `session` must be one snapshot (a
/// consistent read): the access log's position is read with the page, and what the page
/// teaches `anchors` is true of that position.
pub async fn list<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    within: Option<&WorkspaceId>,
    kind: PrincipalKind,
    query: &ListQuery,
    anchors: &ListAnchors,
) -> ScimResult<Page> {
    // The builder borrows the dialect as a trait object, which is not `Sync`: it is used and
    // dropped before the first await, leaving plain SQL and parameters.
    // In a workspace, each principal comes with its entitlements there: joined, so a page
    // costs no query per principal, and a filter on them (finished in memory) reads them.
    let (condition, exact, bound, columns, join) = {
        let mut builder = SqlBuilder::new(T::DIALECT);
        let (mut condition, exact) =
            list_condition(&mut builder, account.as_str(), kind, query.filter.as_ref());
        let (mut columns, mut join) = (PRINCIPAL_COLUMNS.to_string(), String::new());
        if let Some(workspace) = within {
            let (within, placeholder) =
                in_workspace_condition(&mut builder, account.as_str(), workspace.as_str());
            condition = format!("{condition} AND {within}");
            columns = principal_in_workspace_columns();
            join = workspace_entitlements_join(&placeholder);
        }
        (condition, exact, builder.params, columns, join)
    };
    let decode = if within.is_some() {
        principal_in_workspace_from_row
    } else {
        principal_from_row
    };
    let mut params: Vec<Param<'_>> = bound.iter().map(Param::from).collect();
    // Unfiltered lists have a handful of shapes, kept prepared; filtered ones have as many as
    // clients invent.
    let filtered = query.filter.is_some();
    if let (true, Some(order)) = (exact, list_order(query)) {
        let anchored = anchored(query).then(|| ListKey {
            account: account.clone(),
            workspace: within.cloned(),
            kind,
        });
        let (position, known) = match &anchored {
            Some(list) => {
                let position = access_log_position(session).await?;
                (position, anchors.known(list, position, query.offset()))
            }
            None => (0, Known::default()),
        };
        let total = match known.total {
            Some(total) => total,
            None => {
                let count = format!("SELECT COUNT(*) FROM principals p WHERE {condition}");
                let total = if filtered {
                    session.query_once(&count, &params).await?
                } else {
                    session.query(&count, &params).await?
                };
                let total = total.first().map(|row| row.integer(0)).transpose()?;
                to_u64(total.unwrap_or(0))
            }
        };
        // From the nearest remembered key, the condition is the default order's range (the
        // index's) and the rows to skip are few; else the whole offset is walked.
        let (after, skip) = match &known.start {
            Some(start) => {
                params.push(Param::Integer(start.after.created));
                params.push(Param::Text(&start.after.id));
                let after = format!(
                    " AND (p.created, p.id) > (${}, ${})",
                    params.len() - 1,
                    params.len()
                );
                (after, start.skip)
            }
            None => (String::new(), query.offset()),
        };
        let page = limit_clause::<T>(to_i64(query.count), Some(to_i64(skip)), &mut params);
        let sql = format!(
            "SELECT {columns} FROM principals p {join} WHERE {condition}{after} \
             ORDER BY {order} {page}"
        );
        let rows = if filtered {
            session.query_once(&sql, &params).await?
        } else {
            session.query(&sql, &params).await?
        };
        let principals = each(rows, decode)?;
        if let Some(list) = anchored {
            let keys: Vec<RowKey> = principals
                .iter()
                .map(|principal| RowKey {
                    created: principal.created.as_micros(),
                    id: principal.id.as_str().to_string(),
                })
                .collect();
            anchors.learn(list, position, total, query.offset(), &keys);
        }
        return Ok(Page {
            total_results: total,
            principals,
        });
    }
    let sql = format!("SELECT {columns} FROM principals p {join} WHERE {condition}");
    let candidates = each(session.query_once(&sql, &params).await?, decode)?;
    let mentions = |name: &str| {
        query
            .filter
            .as_ref()
            .is_some_and(|filter| filter.mentions(name))
            || query
                .sort_by
                .is_some_and(|attribute| attribute.attribute.name == name)
    };
    let (with_members, with_groups) = (
        kind == PrincipalKind::Group && mentions("members"),
        mentions("groups"),
    );
    let mut members = HashMap::new();
    let mut groups = HashMap::new();
    for candidate in &candidates {
        if with_members {
            let loaded = self::members(session, account, &candidate.id, None).await?;
            members.insert(candidate.id.clone(), loaded);
        }
        if with_groups {
            let loaded = groups_of(session, account, &candidate.id).await?;
            groups.insert(candidate.id.clone(), loaded);
        }
    }
    Ok(listing::finish(candidates, query, &members, &groups))
}

/// A group's direct members in id order, at most `limit` of them.
pub async fn members<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    group: &PrincipalId,
    limit: Option<i64>,
) -> ScimResult<Vec<MemberRef>> {
    let mut params = vec![Param::from(account.as_str()), Param::from(group.as_str())];
    let limit = limit_clause::<T>(limit.unwrap_or(i64::MAX), None, &mut params);
    let sql = format!(
        "SELECT m.member_id, m.member_kind, p.display_name, p.attributes FROM memberships m \
         {} principals p ON p.account_id = m.account_id AND p.id = m.member_id \
         WHERE m.account_id = $1 AND m.group_id = $2 ORDER BY m.member_id {limit}",
        T::DIALECT.ordered_join()
    );
    let rows = session.query(&sql, &params).await?;
    each(rows, |mut row| {
        let display = match row.optional_text(2)? {
            Some(display) => Some(display),
            None => member_display(None, &row.text(3)?),
        };
        Ok(MemberRef {
            id: PrincipalId::new(row.text(0)?),
            kind: kind_of(&row.text(1)?)?,
            display,
        })
    })
}

/// A group's direct members in id order, without display names: a range of the memberships'
/// primary key, no join.
pub async fn member_ids<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    group: &PrincipalId,
) -> ScimResult<Vec<MemberRef>> {
    let rows = session
        .query(
            "SELECT member_id, member_kind FROM memberships \
             WHERE account_id = $1 AND group_id = $2 ORDER BY member_id",
            params![account.as_str(), group.as_str()],
        )
        .await?;
    each(rows, |mut row| {
        Ok(MemberRef {
            id: PrincipalId::new(row.text(0)?),
            kind: kind_of(&row.text(1)?)?,
            display: None,
        })
    })
}

/// The direct members of each group, with their display names, or without them
/// (`with_display` false: the membership rows alone, [`member_ids`]).
pub async fn members_of_each<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    groups: &[PrincipalId],
    with_display: bool,
) -> ScimResult<HashMap<PrincipalId, Vec<MemberRef>>> {
    let mut found = HashMap::with_capacity(groups.len());
    for group in groups {
        let loaded = if with_display {
            members(session, account, group, None).await?
        } else {
            member_ids(session, account, group).await?
        };
        found.insert(group.clone(), loaded);
    }
    Ok(found)
}

/// A group's direct members when it has at most `cap`. Counting past the cap on the primary
/// key alone is cheap; loading and rendering the members is not, so that only happens for a
/// small group.
pub async fn members_up_to<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    group: &PrincipalId,
    cap: usize,
) -> ScimResult<Option<Vec<MemberRef>>> {
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let mut params = vec![Param::from(account.as_str()), Param::from(group.as_str())];
    let past_cap = limit_clause::<T>(1, Some(cap), &mut params);
    // ORDER BY the key's last column ties the count to the primary key: with statistics
    // saying a group is half the table, PostgreSQL's planner would otherwise scan the table
    // from its start, past every other group's rows.
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE account_id = $1 AND group_id = $2 \
         ORDER BY member_id {past_cap})"
    );
    if query_one(session, &sql, &params).await?.boolean(0)? {
        return Ok(None);
    }
    members(session, account, group, Some(cap)).await.map(Some)
}

/// The groups a principal is in, directly or through nested groups: the transitive closure
/// upwards, with `direct` set where the principal is a member itself. UNION (not UNION ALL)
/// and the depth bound keep the walk finite even over data that predates the cycle check.
/// Grouping happens before the join, so each group's row is read once; NULLS FIRST gives both
/// backends one order for the (impossible in practice) group without a displayName.
pub async fn groups_of<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    member: &PrincipalId,
) -> ScimResult<Vec<GroupRef>> {
    let join = T::DIALECT.ordered_join();
    let sql = format!(
        "WITH RECURSIVE ancestors(group_id, direct, depth) AS ( \
           SELECT group_id, 1, 1 FROM memberships WHERE account_id = $1 AND member_id = $2 \
           UNION \
           SELECT m.group_id, 0, a.depth + 1 FROM ancestors a \
           {join} memberships m ON m.account_id = $1 AND m.member_id = a.group_id \
           WHERE a.depth < $3) \
         SELECT g.id, g.display_name, d.direct FROM \
           (SELECT group_id, MAX(direct) AS direct FROM ancestors GROUP BY group_id) d \
         {join} principals g ON g.account_id = $1 AND g.id = d.group_id \
         ORDER BY g.display_name_lower NULLS FIRST, g.id"
    );
    let depth = i64::try_from(MAX_GROUP_NESTING_DEPTH).unwrap_or(i64::MAX);
    let rows = session
        .query(&sql, params![account.as_str(), member.as_str(), depth])
        .await?;
    each(rows, |mut row| {
        Ok(GroupRef {
            id: PrincipalId::new(row.text(0)?),
            display: row.optional_text(1)?,
            direct: row.integer(2)? == 1,
        })
    })
}

/// The columns every token read takes, in the order [`token_from_row`] reads them.
const TOKEN_COLUMNS: &str = "id, account_id, principal_id, scope, comment, created, expires, \
                             workspace_id, created_by, last_used, secret_digest, revoked";

/// A token from a row of [`TOKEN_COLUMNS`], with its last use.
fn token_from_row(row: &mut SqlRow) -> ScimResult<(Token, Option<Timestamp>)> {
    let token = Token {
        id: row.text(0)?,
        account: AccountId::new(row.text(1)?),
        principal: PrincipalId::new(row.text(2)?),
        scope: TokenScope::parse(&row.text(3)?).map_err(|error| corrupt("token scope", error))?,
        comment: row.optional_text(4)?,
        created: Timestamp::from_micros(row.integer(5)?),
        expires: row.optional_integer(6)?.map(Timestamp::from_micros),
        workspace: row.optional_text(7)?.map(WorkspaceId::new),
        created_by: row.optional_text(8)?.map(PrincipalId::new),
    };
    Ok((token, row.optional_integer(9)?.map(Timestamp::from_micros)))
}

pub async fn token_by_digest<T: SqlTransaction>(
    session: &mut T,
    digest: &str,
) -> ScimResult<Option<Token>> {
    let sql =
        format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_digest = $1 AND revoked IS NULL");
    let Some(mut row) = query_opt(session, &sql, params![digest]).await? else {
        return Ok(None);
    };
    Ok(Some(token_from_row(&mut row)?.0))
}

/// The live tokens of an account that `query` selects (see [`crate::TokenQuery`]). At most
/// sixteen statement shapes, one per combination of the fields given.
pub async fn tokens_where<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    query: &crate::TokenQuery,
) -> ScimResult<Vec<crate::TokenRecord>> {
    let mut sql =
        format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND revoked IS NULL");
    let conditions = [
        ("id", query.id.as_deref()),
        (
            "workspace_id",
            query.workspace.as_ref().map(WorkspaceId::as_str),
        ),
        (
            "principal_id",
            query.owner.as_ref().map(PrincipalId::as_str),
        ),
        (
            "COALESCE(created_by, principal_id)",
            query.created_by.as_ref().map(PrincipalId::as_str),
        ),
    ];
    let mut values: Vec<&str> = vec![account.as_str()];
    for (column, value) in conditions {
        if let Some(value) = value {
            values.push(value);
            sql.push_str(&format!(" AND {column} = ${}", values.len()));
        }
    }
    sql.push_str(" ORDER BY created, id");
    let params: Vec<Param<'_>> = values.iter().map(|value| Param::Text(value)).collect();
    let rows = session.query(&sql, &params).await?;
    each(rows, |mut row| {
        let (token, last_used) = token_from_row(&mut row)?;
        Ok(crate::TokenRecord { token, last_used })
    })
}

/// A workspace's stored settings, by name.
pub async fn workspace_settings<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
) -> ScimResult<Vec<(String, String)>> {
    let rows = session
        .query(
            "SELECT name, value FROM workspace_settings \
             WHERE account_id = $1 AND workspace_id = $2 ORDER BY name",
            params![account.as_str(), workspace.as_str()],
        )
        .await?;
    each(rows, |mut row| Ok((row.text(0)?, row.text(1)?)))
}

pub async fn tokens<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Vec<TokenRow>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 ORDER BY id");
    let rows = session.query(&sql, params![account.as_str()]).await?;
    each(rows, |mut row| {
        let (token, last_used) = token_from_row(&mut row)?;
        Ok(TokenRow {
            token,
            digest: row.text(10)?,
            revoked: row.optional_integer(11)?.map(Timestamp::from_micros),
            last_used,
        })
    })
}

pub async fn access_log_after<T: SqlTransaction>(
    session: &mut T,
    seq: u64,
    limit: usize,
) -> ScimResult<Vec<LoggedEvent>> {
    let after = to_i64(seq);
    let mut params = vec![Param::Integer(after)];
    let limit = limit_clause::<T>(i64::try_from(limit).unwrap_or(i64::MAX), None, &mut params);
    let sql = format!(
        "SELECT seq, account_id, event FROM access_log WHERE seq > $1 ORDER BY seq {limit}"
    );
    let rows = session.query(&sql, &params).await?;
    each(rows, |mut row| {
        Ok(LoggedEvent {
            seq: to_u64(row.integer(0)?),
            account: AccountId::new(row.text(1)?),
            event: AccessEvent::from_json(&row.text(2)?)?,
        })
    })
}

pub async fn securable<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    securable_type: SecurableType,
    full_name: &str,
) -> ScimResult<Option<SecurableRow>> {
    let sql = format!(
        "SELECT {SECURABLE_COLUMNS} FROM securables \
         WHERE account_id = $1 AND securable_type = $2 AND full_name = $3"
    );
    let found = params![account.as_str(), securable_type.as_str(), full_name];
    query_opt(session, &sql, found)
        .await?
        .map(securable_from_row)
        .transpose()
}

pub async fn securables<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    securable_type: SecurableType,
    parent: Option<&str>,
) -> ScimResult<Vec<SecurableRow>> {
    let (low, high) = parent.map(descendant_range).unwrap_or_default();
    let sql = format!(
        "SELECT {SECURABLE_COLUMNS} FROM securables \
         WHERE account_id = $1 AND securable_type = $2 \
         AND ($3 = '' OR (full_name >= $3 AND full_name < $4)) ORDER BY full_name"
    );
    let rows = session
        .query(
            &sql,
            params![
                account.as_str(),
                securable_type.as_str(),
                low.as_str(),
                high.as_str()
            ],
        )
        .await?;
    each(rows, securable_from_row)
}

/// A securable and every securable named below it, of any type, parents before children.
pub(crate) async fn securable_tree<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    securable_type: SecurableType,
    full_name: &str,
) -> ScimResult<Vec<SecurableRow>> {
    let Some(root) = securable(session, account, securable_type, full_name).await? else {
        return Ok(Vec::new());
    };
    let mut tree = vec![root];
    if matches!(
        securable_type,
        SecurableType::Catalog | SecurableType::Schema
    ) {
        let (low, high) = descendant_range(full_name);
        let sql = format!(
            "SELECT {SECURABLE_COLUMNS} FROM securables \
             WHERE account_id = $1 AND full_name >= $2 AND full_name < $3 ORDER BY full_name"
        );
        let rows = session
            .query(&sql, params![account.as_str(), low.as_str(), high.as_str()])
            .await?;
        tree.extend(each(rows, securable_from_row)?);
    }
    Ok(tree)
}

pub async fn workspace_entry<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
    path: &str,
) -> ScimResult<Option<WorkspaceEntry>> {
    let sql = format!(
        "SELECT {WORKSPACE_ENTRY_COLUMNS} FROM workspace_objects \
         WHERE account_id = $1 AND workspace_id = $2 AND path = $3"
    );
    query_opt(
        session,
        &sql,
        params![account.as_str(), workspace.as_str(), path],
    )
    .await?
    .map(workspace_entry_from_row)
    .transpose()
}

pub async fn workspace_entry_by_id<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
    object_type: ObjectType,
    object_id: &str,
) -> ScimResult<Option<WorkspaceEntry>> {
    // Rows without a path are objects known only from an ACL, not members of the tree.
    let sql = format!(
        "SELECT {WORKSPACE_ENTRY_COLUMNS} FROM workspace_objects \
         WHERE account_id = $1 AND object_type = $2 AND object_id = $3 AND workspace_id = $4 \
         AND path IS NOT NULL"
    );
    query_opt(
        session,
        &sql,
        params![
            account.as_str(),
            object_type.as_str(),
            object_id,
            workspace.as_str()
        ],
    )
    .await?
    .map(workspace_entry_from_row)
    .transpose()
}

/// The workspace a registered object belongs to (`None`: no object of this type and id).
pub async fn object_workspace<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    object_type: ObjectType,
    object_id: &str,
) -> ScimResult<Option<WorkspaceId>> {
    let row = query_opt(
        session,
        "SELECT workspace_id FROM workspace_objects \
         WHERE account_id = $1 AND object_type = $2 AND object_id = $3",
        params![account.as_str(), object_type.as_str(), object_id],
    )
    .await?;
    row.map(|mut row| row.text(0).map(WorkspaceId::new))
        .transpose()
}

pub async fn workspace_entries_in<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
    directory: Option<&str>,
) -> ScimResult<Vec<WorkspaceEntry>> {
    // Two statements rather than `IS NOT DISTINCT FROM`, which no index serves.
    let mut params = vec![
        Param::from(account.as_str()),
        Param::from(workspace.as_str()),
    ];
    let in_directory = match directory {
        Some(directory) => {
            params.push(Param::from(directory));
            "directory_id = $3"
        }
        None => "directory_id IS NULL",
    };
    let sql = format!(
        "SELECT {WORKSPACE_ENTRY_COLUMNS} FROM workspace_objects \
         WHERE account_id = $1 AND workspace_id = $2 AND {in_directory} AND path IS NOT NULL \
         ORDER BY path"
    );
    each(
        session.query(&sql, &params).await?,
        workspace_entry_from_row,
    )
}

/// An access-control rule set: its version (0 when never written) and its grants, by role
/// then principal. Read in one snapshot (`Read::Consistent`), so the
/// version and the grants belong together.
pub async fn rule_set<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    resource: &str,
) -> ScimResult<(u64, Vec<(String, PrincipalId)>)> {
    let version = query_opt(
        session,
        "SELECT version FROM rule_sets WHERE account_id = $1 AND resource = $2",
        params![account.as_str(), resource],
    )
    .await?
    .map(|row| row.integer(0))
    .transpose()?
    .map_or(0, to_u64);
    let rows = session
        .query(
            "SELECT role, principal_id FROM rule_set_grants \
             WHERE account_id = $1 AND resource = $2 ORDER BY role, principal_id",
            params![account.as_str(), resource],
        )
        .await?;
    let grants = each(rows, |mut row| {
        Ok((row.text(0)?, PrincipalId::new(row.text(1)?)))
    })?;
    Ok((version, grants))
}

/// Every rule set of an account with its version, by resource, grants by role then principal.
pub async fn rule_sets<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Vec<(crate::RuleSetRows, u64)>> {
    let rows = session
        .query(
            "SELECT resource, target_id, version FROM rule_sets WHERE account_id = $1 \
             ORDER BY resource",
            params![account.as_str()],
        )
        .await?;
    let mut sets = each(rows, |mut row| {
        Ok((
            crate::RuleSetRows {
                resource: row.text(0)?,
                target: row.optional_text(1)?.map(PrincipalId::new),
                grants: Vec::new(),
            },
            to_u64(row.integer(2)?),
        ))
    })?;
    let rows = session
        .query(
            "SELECT resource, role, principal_id FROM rule_set_grants WHERE account_id = $1 \
             ORDER BY resource, role, principal_id",
            params![account.as_str()],
        )
        .await?;
    let grants = each(rows, |mut row| {
        Ok((row.text(0)?, row.text(1)?, PrincipalId::new(row.text(2)?)))
    })?;
    for (resource, role, principal) in grants {
        if let Some((set, _)) = sets.iter_mut().find(|(set, _)| set.resource == resource) {
            set.grants.push((role, principal));
        }
    }
    Ok(sets)
}

pub async fn entitlements<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Vec<EntitlementRow>> {
    let rows = session
        .query(
            "SELECT workspace_id, principal_id, entitlements FROM workspace_entitlements \
             WHERE account_id = $1 ORDER BY workspace_id, principal_id",
            params![account.as_str()],
        )
        .await?;
    each(rows, |mut row| {
        let entitlements = match entitlements_of(&row.text(2)?)? {
            Value::Array(values) => values,
            _ => Vec::new(),
        };
        Ok(EntitlementRow {
            workspace: WorkspaceId::new(row.text(0)?),
            principal: PrincipalId::new(row.text(1)?),
            entitlements,
        })
    })
}

pub async fn principals_page<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    after: Option<&PrincipalId>,
    limit: usize,
) -> ScimResult<Vec<Principal>> {
    // Two statements rather than `($2 IS NULL OR id > $2)`, which neither planner turns into
    // a range on the primary key.
    let (after_condition, mut params) = match after {
        Some(after) => (
            " AND p.id > $2",
            vec![Param::from(account.as_str()), Param::from(after.as_str())],
        ),
        None => ("", vec![Param::from(account.as_str())]),
    };
    let limit = limit_clause::<T>(i64::try_from(limit).unwrap_or(i64::MAX), None, &mut params);
    let sql = format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = $1{after_condition} \
         ORDER BY p.id {limit}"
    );
    each(session.query(&sql, &params).await?, principal_from_row)
}

pub async fn memberships_page<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    after: Option<&MembershipRow>,
    limit: usize,
) -> ScimResult<Vec<MembershipRow>> {
    // A row-value comparison is a range on the primary key.
    let (after_condition, mut params) = match after {
        Some(after) => (
            " AND (group_id, member_id) > ($2, $3)",
            vec![
                Param::from(account.as_str()),
                Param::from(after.group.as_str()),
                Param::from(after.member.as_str()),
            ],
        ),
        None => ("", vec![Param::from(account.as_str())]),
    };
    let limit = limit_clause::<T>(i64::try_from(limit).unwrap_or(i64::MAX), None, &mut params);
    let sql = format!(
        "SELECT group_id, member_id, created FROM memberships WHERE account_id = $1{after_condition} \
         ORDER BY group_id, member_id {limit}"
    );
    each(session.query(&sql, &params).await?, membership_from_row)
}

/// The highest migration applied (0 when the schema has none yet).
pub async fn schema_version<T: SqlTransaction>(session: &mut T) -> ScimResult<i64> {
    let exists = T::DIALECT.migrations_table_exists();
    if !query_one(session, exists, &[]).await?.boolean(0)? {
        return Ok(0);
    }
    query_one(
        session,
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        &[],
    )
    .await?
    .integer(0)
}

/// The access log's last position: every change to principals, memberships and assignments
/// moves it, in its own transaction.
async fn access_log_position<T: SqlTransaction>(session: &mut T) -> ScimResult<u64> {
    let seq = query_one(session, "SELECT COALESCE(MAX(seq), 0) FROM access_log", &[])
        .await?
        .integer(0)?;
    Ok(to_u64(seq))
}

/// An account's access state, read inside one transaction that sees one committed state (the
/// backend opens it): the log position read first describes exactly what the other queries
/// read, so replaying from `seq + 1` on top of it is exact.
pub async fn access_snapshot<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<AccessSnapshot> {
    let seq = to_i64(access_log_position(session).await?);
    // The account's own entries up to that position: the count its change tokens start
    // from (`scimitar-app`'s engine counts on from here), never another account's.
    let log_entries = query_one(
        session,
        "SELECT COUNT(*) FROM access_log WHERE account_id = $1 AND seq <= $2",
        &[Param::Text(account.as_str()), Param::Integer(seq)],
    )
    .await?
    .integer(0)?;
    let account_id = account.clone();
    let account = params![account.as_str()];
    let sql = format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals p WHERE p.account_id = $1 ORDER BY p.id"
    );
    let principals = each(session.query(&sql, account).await?, |row| {
        principal_from_row(row).map(|principal| PrincipalFacts::of(&principal))
    })?;
    let rows = session
        .query(
            "SELECT group_id, member_id FROM memberships WHERE account_id = $1 \
             ORDER BY group_id, member_id",
            account,
        )
        .await?;
    let memberships = each(rows, |mut row| {
        Ok((
            PrincipalId::new(row.text(0)?),
            PrincipalId::new(row.text(1)?),
        ))
    })?;
    // Parents before children: a name's depth is its number of dots.
    let sql = format!(
        "SELECT {SECURABLE_COLUMNS} FROM securables WHERE account_id = $1 \
         ORDER BY length(full_name) - length(replace(full_name, '.', '')), full_name"
    );
    let securables = each(session.query(&sql, account).await?, securable_from_row)?;
    // Grants, objects and ACL entries in primary-key order: the index is read in that order
    // anyway, and an export made from either backend comes out the same.
    let rows = session
        .query(
            "SELECT securable_type, full_name, principal_id, privilege FROM grants \
             WHERE account_id = $1 ORDER BY securable_type, full_name, principal_id, privilege",
            account,
        )
        .await?;
    let grants = each(rows, |mut row| {
        Ok(GrantRow {
            securable_type: securable_type_of(&row.text(0)?)?,
            full_name: row.text(1)?,
            principal: PrincipalId::new(row.text(2)?),
            privilege: Privilege::parse(&row.text(3)?)
                .map_err(|error| corrupt("privilege", error))?,
        })
    })?;
    let rows = session
        .query(
            "SELECT object_type, object_id, directory_id, path, language, workspace_id \
             FROM workspace_objects WHERE account_id = $1 ORDER BY object_type, object_id",
            account,
        )
        .await?;
    let objects = each(rows, |mut row| {
        Ok(ObjectRow {
            object_type: object_type_of(&row.text(0)?)?,
            object_id: row.text(1)?,
            directory: row.optional_text(2)?,
            path: row.optional_text(3)?,
            language: row.optional_text(4)?,
            workspace: WorkspaceId::new(row.text(5)?),
        })
    })?;
    let rows = session
        .query(
            "SELECT object_type, object_id, principal_id, level FROM object_acl \
             WHERE account_id = $1 ORDER BY object_type, object_id, principal_id",
            account,
        )
        .await?;
    let acl = each(rows, |mut row| {
        Ok(AclRow {
            object_type: object_type_of(&row.text(0)?)?,
            object_id: row.text(1)?,
            entry: AclEntry::new(PrincipalId::new(row.text(2)?), level_of(&row.text(3)?)?),
        })
    })?;
    let rows = session
        .query(
            "SELECT workspace_id, principal_id, permission FROM workspace_assignments \
             WHERE account_id = $1 ORDER BY workspace_id, principal_id",
            account,
        )
        .await?;
    let assignments = each(rows, |mut row| {
        Ok((
            WorkspaceId::new(row.text(0)?),
            PrincipalId::new(row.text(1)?),
            permission_of(&row.text(2)?)?,
        ))
    })?;
    let rows = session
        .query(
            "SELECT catalog_name, workspace_id, binding_type FROM catalog_workspace_bindings \
             WHERE account_id = $1 ORDER BY catalog_name, workspace_id",
            account,
        )
        .await?;
    let bindings = each(rows, |mut row| {
        Ok(BindingRow {
            catalog: row.text(0)?,
            workspace: WorkspaceId::new(row.text(1)?),
            binding_type: binding_type_of(&row.text(2)?)?,
        })
    })?;
    let entitlements = entitlements(session, &account_id)
        .await?
        .into_iter()
        .map(|row| {
            let values = entitlement_values(&Value::Array(row.entitlements));
            (row.workspace, row.principal, values)
        })
        .collect();
    Ok(AccessSnapshot {
        entitlements,
        log_entries: to_u64(log_entries),
        seq: to_u64(seq),
        principals,
        memberships,
        securables,
        grants,
        objects,
        acl,
        assignments,
        bindings,
    })
}
