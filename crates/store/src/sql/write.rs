//! What each [`Change`] means in SQL, written once for both backends: the rows it writes, the
//! rules it keeps (every user and service principal joins `users`, members exist, no cycles,
//! no groups in `admins`, an account keeps an active admin, versions are checked) and the
//! access-log entries it makes. A backend supplies the session ([`SqlTransaction`]), takes the
//! locks it needs through its hooks, and commits.

use crate::audit::AuditContext;
use crate::change::{Change, FIRST_ACCOUNT_EXISTS};
use crate::governance::{
    entitlement_values, same_acl, AccessEvent, GovernanceChange, PrincipalFacts, WorkspaceEntry,
};
use crate::sql::audit;
use crate::sql::federation;
use crate::sql::oauth;
use crate::sql::read::{self, acl_entry_from_row, descendant_range, to_i64};
use crate::sql::transaction::{params, query_one, query_opt, Lock, LogEntry, SqlTransaction};
use crate::transfer::ImportRecord;
use scimitar_access::{BindingType, IsolationMode, ObjectType, SecurableType, WorkspacePermission};
use scimitar_domain::credentials::Token;
use scimitar_domain::patch::MembershipStep;
use scimitar_domain::resource::{fold_case, EmailKey, MemberValue};
use scimitar_domain::{
    AccountId, Principal, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp, WorkspaceId,
};
use serde_json::Value;

/// What a client is told when a change would leave an account without an active admin.
pub const LAST_ADMIN: &str = "an account must keep at least one active admin: this change would leave the 'admins' group without an active member";

/// The account's `admins` system group, as a condition on `principals g` (the literal kind
/// lets the planner use the partial unique index on group names).
const ADMINS_GROUP: &str =
    "g.kind = 'Group' AND g.system = TRUE AND g.display_name_lower = 'admins'";

/// The access-log entries a change makes, gathered while it is applied and appended at its end.
#[derive(Default)]
struct Log {
    entries: Vec<LogEntry>,
}

impl Log {
    fn push(&mut self, account: &AccountId, event: AccessEvent) {
        self.entries.push((account.clone(), event));
    }
}

/// Applies one change and appends its access-log entries, inside the caller's transaction. On
/// an error the caller rolls back (the whole transaction, or the change's savepoint): nothing
/// of a failed change may remain.
pub async fn apply<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    change: &Change,
    context: &AuditContext,
) -> ScimResult<()> {
    let audited = !crate::AUDIT_TRAIL_COMPILED_OUT;
    let before = match audited {
        true => audit::before(transaction, account, change).await?,
        false => None,
    };
    let mut log = Log::default();
    apply_change(transaction, account, change, &mut log).await?;
    // After the change's own locks and before the access log's: see `sql::audit`.
    let event = match audit::describe(change, before.as_ref()).filter(|_| audited) {
        Some(description) => Some(audit::append(account, context, description)?),
        None => None,
    };
    let statements = event.as_ref().map(audit::PendingEvent::statements);
    let statements = statements
        .as_ref()
        .map_or(&[][..], |statements| &statements[..]);
    if statements.is_empty() && log.entries.is_empty() {
        return Ok(());
    }
    let mut answers = transaction.finish_change(statements, &log.entries).await?;
    match event {
        Some(event) if !answers.is_empty() => {
            event.complete(transaction, answers.swap_remove(0)).await
        }
        _ => Ok(()),
    }
}

async fn apply_change<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    change: &Change,
    log: &mut Log,
) -> ScimResult<()> {
    match change {
        Change::CreateAccount {
            account: new_account,
            workspace,
            system_groups,
            only_if_first,
            first_admin,
        } => {
            if *only_if_first {
                // Two nodes bootstrapping at once would both see no account; the lock (or
                // SQLite's one writer) makes the second wait for the first's commit.
                transaction.lock(Lock::FirstAccount).await?;
                let any = query_one(transaction, "SELECT EXISTS (SELECT 1 FROM accounts)", &[])
                    .await?
                    .boolean(0)?;
                if any {
                    return Err(ScimError::uniqueness(FIRST_ACCOUNT_EXISTS));
                }
            }
            let id = &new_account.id;
            transaction
                .execute(
                    "INSERT INTO accounts (id, name, created) VALUES ($1, $2, $3)",
                    params![
                        id.as_str(),
                        &new_account.name,
                        new_account.created.as_micros()
                    ],
                )
                .await?;
            insert_workspace(transaction, id, workspace).await?;
            for group in system_groups {
                insert_principal(transaction, id, group, log).await?;
                let entitlements = group.attributes.get("entitlements");
                write_entitlements(transaction, id, &workspace.id, &group.id, entitlements, log)
                    .await?;
            }
            if let Some(first) = first_admin {
                let group = first.group_in(system_groups)?;
                insert_principal(transaction, id, &first.user, log).await?;
                join_users_group(transaction, id, &first.user, log).await?;
                let admin = first.as_member();
                add_member(transaction, id, group, &admin, new_account.created, log).await?;
                if let Some(first_token) = &first.token {
                    let (token, digest) = (&first_token.token, &first_token.digest);
                    insert_token(transaction, id, token, digest, None, None).await?;
                }
                // The account's first admin administers its first workspace too, and is
                // listed in its directory.
                let admin = Some(WorkspacePermission::Admin);
                assign(transaction, id, &workspace.id, &first.user.id, admin, log).await?;
            }
        }
        Change::CreatePrincipal {
            principal,
            members,
            assign_to,
        } => {
            insert_principal(transaction, account, principal, log).await?;
            match principal.kind {
                PrincipalKind::Group => {
                    for member in members {
                        let now = principal.created;
                        add_member(transaction, account, principal, member, now, log).await?;
                    }
                }
                _ => join_users_group(transaction, account, principal, log).await?,
            }
            if let Some(workspace) = assign_to {
                let permission = Some(WorkspacePermission::User);
                assign(
                    transaction,
                    account,
                    workspace,
                    &principal.id,
                    permission,
                    log,
                )
                .await?;
                // After the assignment, which answers a missing workspace with a 404.
                let entitlements = principal.attributes.get("entitlements");
                write_entitlements(
                    transaction,
                    account,
                    workspace,
                    &principal.id,
                    entitlements,
                    log,
                )
                .await?;
            }
        }
        Change::CreateWorkspace {
            workspace,
            users_entitlements,
        } => {
            insert_workspace(transaction, account, workspace).await?;
            let users = transaction
                .query(
                    "SELECT id FROM principals WHERE account_id = $1 AND kind = 'Group' \
                     AND system = TRUE AND display_name_lower = 'users'",
                    params![account.as_str()],
                )
                .await?;
            let entitlements = Value::Array(users_entitlements.clone());
            for mut row in users {
                let users = PrincipalId::new(row.text(0)?);
                write_entitlements(
                    transaction,
                    account,
                    &workspace.id,
                    &users,
                    Some(&entitlements),
                    log,
                )
                .await?;
            }
        }
        Change::UpdateWorkspace(workspace) => {
            let updated = transaction
                .execute(
                    "UPDATE workspaces SET name = $3, deployment_name = $4 \
                     WHERE account_id = $1 AND id = $2",
                    params![
                        account.as_str(),
                        workspace.id.as_str(),
                        &workspace.name,
                        workspace.deployment_name.as_deref()
                    ],
                )
                .await?;
            if updated == 0 {
                return Err(workspace_not_found(&workspace.id));
            }
        }
        Change::DeleteWorkspace { id } => {
            for statement in [
                "DELETE FROM workspace_assignments WHERE account_id = $1 AND workspace_id = $2",
                "DELETE FROM workspace_entitlements WHERE account_id = $1 AND workspace_id = $2",
                "DELETE FROM catalog_workspace_bindings \
                 WHERE account_id = $1 AND workspace_id = $2",
                // A workspace's own tokens are valid nowhere else, and its settings go with it.
                "DELETE FROM tokens WHERE account_id = $1 AND workspace_id = $2",
                "DELETE FROM workspace_settings WHERE account_id = $1 AND workspace_id = $2",
            ] {
                transaction
                    .execute(statement, params![account.as_str(), id.as_str()])
                    .await?;
            }
            delete_workspace_objects(transaction, account, id, log).await?;
            let deleted = transaction
                .execute(
                    "DELETE FROM workspaces WHERE account_id = $1 AND id = $2",
                    params![account.as_str(), id.as_str()],
                )
                .await?;
            if deleted == 0 {
                return Err(workspace_not_found(id));
            }
            log.push(
                account,
                AccessEvent::WorkspaceDeleted {
                    workspace: id.clone(),
                },
            );
        }
        Change::AssignToWorkspace {
            workspace,
            principal,
            permission,
        } => {
            if read::principal(transaction, account, principal)
                .await?
                .is_none()
            {
                return Err(ScimError::NotFound(format!(
                    "principal {principal} not found"
                )));
            }
            assign(transaction, account, workspace, principal, *permission, log).await?;
        }
        Change::UpdatePrincipal {
            principal,
            expected_version,
            membership,
            workspace,
        } => {
            let guard = AdminGuard::for_update(transaction, account, principal, membership).await?;
            update_principal(transaction, account, principal, *expected_version, log).await?;
            if let Some(workspace) = workspace {
                let entitlements = principal.attributes.get("entitlements");
                write_entitlements(
                    transaction,
                    account,
                    workspace,
                    &principal.id,
                    entitlements,
                    log,
                )
                .await?;
            }
            apply_membership(transaction, account, principal, membership, log).await?;
            guard.check(transaction, account).await?;
        }
        Change::DeletePrincipal {
            id,
            expected_version,
        } => {
            // Locked first (PostgreSQL: FOR UPDATE), so the version compared stays the current
            // one until the delete commits; a concurrent update waits, then finds it gone.
            transaction.lock(Lock::Principal(account, id)).await?;
            let current = read::principal(transaction, account, id)
                .await?
                .ok_or_else(|| ScimError::NotFound(format!("resource {id} not found")))?;
            if expected_version.is_some_and(|expected| expected != current.version) {
                return Err(ScimError::PreconditionFailed(format!(
                    "resource {id} is at version {}, not the one given in If-Match",
                    current.etag()
                )));
            }
            let guard = AdminGuard::for_delete(transaction, account, &current).await?;
            for sql in [
                // Two statements, not one with OR: each uses its own index.
                "DELETE FROM memberships WHERE account_id = $1 AND group_id = $2",
                "DELETE FROM memberships WHERE account_id = $1 AND member_id = $2",
                "DELETE FROM principal_emails WHERE account_id = $1 AND principal_id = $2",
                "DELETE FROM tokens WHERE account_id = $1 AND principal_id = $2",
                "DELETE FROM workspace_assignments WHERE account_id = $1 AND principal_id = $2",
                "DELETE FROM workspace_entitlements WHERE account_id = $1 AND principal_id = $2",
                "DELETE FROM principals WHERE account_id = $1 AND id = $2",
            ] {
                transaction
                    .execute(sql, params![account.as_str(), id.as_str()])
                    .await?;
            }
            guard.check(transaction, account).await?;
            log.push(account, AccessEvent::PrincipalDeleted { id: id.clone() });
        }
        Change::Governance(change) => {
            apply_governance(transaction, account, None, change, log).await?;
        }
        Change::GovernanceBatch(changes) => {
            for change in changes {
                apply_governance(transaction, account, None, change, log).await?;
            }
        }
        Change::WorkspaceObjects { workspace, changes } => {
            for change in changes {
                apply_governance(transaction, account, Some(workspace), change, log).await?;
            }
        }
        Change::Import(records) => import_records(transaction, account, records, log).await?,
        Change::EnsureAuditKey { seed, created } => {
            audit::ensure_signing_seed(transaction, seed, *created).await?
        }
        Change::RecordRefusals(refusals) => {
            audit::append_refusals(transaction, account, refusals).await?
        }
        Change::PruneAuditTrail { before } => {
            audit::prune(transaction, account, *before).await?;
        }
        Change::CreateToken { token, digest } => {
            insert_token(transaction, &token.account, token, digest, None, None).await?
        }
        Change::DeleteToken { id } => {
            let deleted = transaction
                .execute(
                    "DELETE FROM tokens WHERE account_id = $1 AND id = $2 AND revoked IS NULL",
                    params![account.as_str(), id.as_str()],
                )
                .await?;
            if deleted == 0 {
                return Err(token_not_found(id));
            }
            log.push(account, AccessEvent::TokenChanged { id: id.clone() });
        }
        Change::RotateToken {
            id,
            expires,
            replacement,
        } => {
            // Only ever earlier: rotating a token that expires sooner leaves its expiry.
            let shortened = transaction
                .execute(
                    "UPDATE tokens SET expires = CASE WHEN expires IS NULL OR expires > $3 \
                     THEN $3 ELSE expires END \
                     WHERE account_id = $1 AND id = $2 AND revoked IS NULL",
                    params![account.as_str(), id.as_str(), expires.as_micros()],
                )
                .await?;
            if shortened == 0 {
                return Err(token_not_found(id));
            }
            let (token, digest) = (&replacement.token, &replacement.digest);
            insert_token(transaction, account, token, digest, None, None).await?;
            log.push(account, AccessEvent::TokenChanged { id: id.clone() });
        }
        Change::TokensUsed(uses) => {
            for (id, used) in uses {
                transaction
                    .execute(
                        "UPDATE tokens SET last_used = $3 WHERE account_id = $1 AND id = $2 \
                         AND (last_used IS NULL OR last_used < $3)",
                        params![account.as_str(), id.as_str(), used.as_micros()],
                    )
                    .await?;
            }
        }
        Change::SetWorkspaceSettings { workspace, values } => {
            let exists = query_one(
                transaction,
                "SELECT EXISTS (SELECT 1 FROM workspaces WHERE account_id = $1 AND id = $2)",
                params![account.as_str(), workspace.as_str()],
            )
            .await?
            .boolean(0)?;
            if !exists {
                return Err(workspace_not_found(workspace));
            }
            for (name, value) in values {
                transaction
                    .execute(
                        "DELETE FROM workspace_settings \
                         WHERE account_id = $1 AND workspace_id = $2 AND name = $3",
                        params![account.as_str(), workspace.as_str(), name.as_str()],
                    )
                    .await?;
                if let Some(value) = value {
                    transaction
                        .execute(
                            "INSERT INTO workspace_settings (account_id, workspace_id, name, value) \
                             VALUES ($1, $2, $3, $4)",
                            params![
                                account.as_str(),
                                workspace.as_str(),
                                name.as_str(),
                                value.as_str()
                            ],
                        )
                        .await?;
                }
            }
        }
        Change::CreateOAuthSecret {
            secret,
            digest,
            limit,
        } => oauth::create_secret(transaction, account, secret, digest, *limit).await?,
        Change::DeleteOAuthSecret { principal, id } => {
            oauth::delete_secret(transaction, account, principal, id, &mut log.entries).await?
        }
        Change::AddSigningKey(key) => oauth::add_signing_key(transaction, account, key).await?,
        Change::RecordSyncRun(change) => {
            crate::sql::sync_state::record_run(transaction, change).await?
        }
        Change::SyncLease(lease) => crate::sql::sync_state::lease(transaction, lease).await?,
        Change::CreateFederationPolicy(policy) => {
            federation::create_policy(transaction, account, policy).await?
        }
        Change::UpdateFederationPolicy(policy) => {
            federation::update_policy(transaction, account, policy).await?
        }
        Change::DeleteFederationPolicy { uid } => {
            federation::delete_policy(transaction, account, uid, &mut log.entries).await?
        }
        Change::RecordExchangedToken(token) => {
            federation::record_exchanged_token(transaction, account, token).await?
        }
        Change::Alerts(change) => crate::sql::alerts::apply(transaction, account, change).await?,
        Change::ReplaceRuleSet {
            rule_set,
            expected_version,
        } => replace_rule_set(transaction, account, rule_set, *expected_version).await?,
    }
    Ok(())
}

/// What a client is told when a rule set changed since the etag it wrote against.
pub const RULE_SET_CHANGED: &str =
    "the rule set has changed since its etag was read: read it again and apply the change to it";

/// [`Change::ReplaceRuleSet`]: the version moves on only from the one expected, in the
/// statement that checks it (an `UPDATE ... WHERE version =` holds the row until commit, so a
/// concurrent writer then finds the new version; a first write is an insert that a concurrent
/// first write makes conflict), then the grants are replaced. A principal that no longer
/// exists (deleted since the request was read) is a 404, not a foreign-key failure. No
/// access-log entry: rule sets are read from storage when a write is authorized, not from the
/// engine.
async fn replace_rule_set<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    rule_set: &crate::change::RuleSetRows,
    expected_version: u64,
) -> ScimResult<()> {
    let resource = rule_set.resource.as_str();
    let moved_on = if expected_version == 0 {
        let target = rule_set.target.as_ref().map(PrincipalId::as_str);
        transaction
            .query(
                "INSERT INTO rule_sets (account_id, resource, target_id, version) \
                 SELECT $1, $2, CAST($3 AS TEXT), 1 WHERE CAST($3 AS TEXT) IS NULL OR EXISTS \
                 (SELECT 1 FROM principals WHERE account_id = $1 AND id = CAST($3 AS TEXT)) \
                 ON CONFLICT (account_id, resource) DO NOTHING RETURNING version",
                params![account.as_str(), resource, target],
            )
            .await?
    } else {
        transaction
            .query(
                "UPDATE rule_sets SET version = version + 1 \
                 WHERE account_id = $1 AND resource = $2 AND version = $3 RETURNING version",
                params![account.as_str(), resource, to_i64(expected_version)],
            )
            .await?
    };
    if moved_on.is_empty() {
        if let Some(target) = &rule_set.target {
            if read::principal(transaction, account, target)
                .await?
                .is_none()
            {
                return Err(ScimError::NotFound(format!("resource {target} not found")));
            }
        }
        return Err(ScimError::Conflict(RULE_SET_CHANGED.to_string()));
    }
    transaction
        .execute(
            "DELETE FROM rule_set_grants WHERE account_id = $1 AND resource = $2",
            params![account.as_str(), resource],
        )
        .await?;
    for (role, principal) in &rule_set.grants {
        let added = transaction
            .execute(
                "INSERT INTO rule_set_grants (account_id, resource, role, principal_id) \
                 SELECT account_id, $2, $3, id FROM principals WHERE account_id = $1 AND id = $4",
                params![
                    account.as_str(),
                    resource,
                    role.as_str(),
                    principal.as_str()
                ],
            )
            .await?;
        if added == 0 {
            return Err(ScimError::NotFound(format!(
                "resource {principal} not found"
            )));
        }
    }
    Ok(())
}

/// Binds a workspace to a catalog (`None`: unbinds it). Both must be of the account: a
/// workspace of another account is missing here, as a missing one is.
async fn bind_workspace<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    catalog: &str,
    workspace: &WorkspaceId,
    binding_type: Option<BindingType>,
) -> ScimResult<()> {
    let found = query_one(
        transaction,
        "SELECT EXISTS (SELECT 1 FROM workspaces WHERE account_id = $1 AND id = $2), \
         EXISTS (SELECT 1 FROM securables \
                 WHERE account_id = $1 AND securable_type = 'CATALOG' AND full_name = $3)",
        params![account.as_str(), workspace.as_str(), catalog],
    )
    .await?;
    let (workspace_exists, catalog_exists) = (found.boolean(0)?, found.boolean(1)?);
    if !workspace_exists {
        return Err(workspace_not_found(workspace));
    }
    if !catalog_exists {
        return Err(not_found(SecurableType::Catalog, catalog));
    }
    transaction
        .execute(
            "DELETE FROM catalog_workspace_bindings \
             WHERE account_id = $1 AND catalog_name = $2 AND workspace_id = $3",
            params![account.as_str(), catalog, workspace.as_str()],
        )
        .await?;
    if let Some(binding_type) = binding_type {
        transaction
            .execute(
                "INSERT INTO catalog_workspace_bindings \
                 (account_id, catalog_name, workspace_id, binding_type) VALUES ($1, $2, $3, $4)",
                params![
                    account.as_str(),
                    catalog,
                    workspace.as_str(),
                    binding_type.as_str()
                ],
            )
            .await?;
    }
    Ok(())
}

fn token_not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("token {} does not exist", id.escape_debug()))
}

fn workspace_not_found(id: &WorkspaceId) -> ScimError {
    ScimError::NotFound(format!("workspace {id} not found"))
}

/// Sets (or removes) one direct assignment and logs it for the engines.
async fn assign<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
    principal: &PrincipalId,
    permission: Option<WorkspacePermission>,
    log: &mut Log,
) -> ScimResult<()> {
    // One statement whichever way it goes (a principal made through a workspace is assigned in
    // the same transaction, so this is on the path of every SCIM POST). A workspace deleted
    // since the request found it is the client's 404, not a constraint failure: checked in the
    // statement rather than left to the foreign key.
    let written = match permission {
        Some(permission) => {
            transaction
                .execute(
                    "INSERT INTO workspace_assignments \
                     (account_id, workspace_id, principal_id, permission) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS \
                     (SELECT 1 FROM workspaces WHERE account_id = $1 AND id = $2) \
                     ON CONFLICT (account_id, workspace_id, principal_id) \
                     DO UPDATE SET permission = excluded.permission",
                    params![
                        account.as_str(),
                        workspace.as_str(),
                        principal.as_str(),
                        permission.as_str()
                    ],
                )
                .await?
        }
        None => {
            transaction
                .execute(
                    "DELETE FROM workspace_assignments \
                     WHERE account_id = $1 AND workspace_id = $2 AND principal_id = $3",
                    params![account.as_str(), workspace.as_str(), principal.as_str()],
                )
                .await?
        }
    };
    // Nothing written: either the workspace is gone, or (removing) there was no assignment.
    if written == 0 {
        let exists = query_one(
            transaction,
            "SELECT EXISTS (SELECT 1 FROM workspaces WHERE account_id = $1 AND id = $2)",
            params![account.as_str(), workspace.as_str()],
        )
        .await?
        .boolean(0)?;
        if !exists {
            return Err(workspace_not_found(workspace));
        }
        // An assignment taken back that was not there: nothing for the engines to follow.
        return Ok(());
    }
    log.push(
        account,
        AccessEvent::WorkspaceAssigned {
            workspace: workspace.clone(),
            principal: principal.clone(),
            permission,
        },
    );
    Ok(())
}

async fn insert_workspace<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    workspace: &crate::Workspace,
) -> ScimResult<()> {
    transaction
        .execute(
            "INSERT INTO workspaces (id, account_id, name, created, deployment_name) \
             VALUES ($1, $2, $3, $4, $5)",
            params![
                workspace.id.as_str(),
                account.as_str(),
                &workspace.name,
                workspace.created.as_micros(),
                workspace.deployment_name.as_deref()
            ],
        )
        .await?;
    Ok(())
}

async fn insert_token<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    token: &Token,
    digest: &str,
    revoked: Option<Timestamp>,
    last_used: Option<Timestamp>,
) -> ScimResult<()> {
    transaction
        .execute(
            "INSERT INTO tokens (id, account_id, principal_id, secret_digest, scope, comment, \
             created, expires, revoked, workspace_id, created_by, last_used) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            params![
                &token.id,
                account.as_str(),
                token.principal.as_str(),
                digest,
                token.scope.as_str(),
                token.comment.as_deref(),
                token.created.as_micros(),
                token.expires.map(Timestamp::as_micros),
                revoked.map(Timestamp::as_micros),
                token.workspace.as_ref().map(WorkspaceId::as_str),
                token.created_by.as_ref().map(PrincipalId::as_str),
                last_used.map(Timestamp::as_micros)
            ],
        )
        .await?;
    Ok(())
}

async fn insert_principal<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    principal: &Principal,
    log: &mut Log,
) -> ScimResult<()> {
    let keys = principal.index_keys();
    let attributes = stored_document(principal)?;
    let (user_name, display_name, application_id) = folded_names(&keys);
    transaction
        .execute(
            "INSERT INTO principals (account_id, id, kind, user_name_lower, display_name, \
             display_name_lower, external_id, application_id_lower, active, system, attributes, \
             password_hash, created, last_modified, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            params![
                account.as_str(),
                principal.id.as_str(),
                principal.kind.as_str(),
                user_name.as_deref(),
                keys.display_name.as_deref(),
                display_name.as_deref(),
                keys.external_id.as_deref(),
                application_id.as_deref(),
                keys.active,
                principal.system,
                attributes.as_str(),
                principal.password_hash.as_deref(),
                principal.created.as_micros(),
                principal.last_modified.as_micros(),
                to_i64(principal.version)
            ],
        )
        .await?;
    // A new row has no email rows yet (deleting a principal deletes them): only the inserts,
    // which keeps a SCIM POST one round trip shorter.
    insert_emails(transaction, account, principal, &keys.emails).await?;
    if keys.active == Some(false) {
        revoke_tokens(transaction, account, principal).await?;
    }
    let facts = PrincipalFacts::from_keys(principal, &keys);
    log.push(account, AccessEvent::PrincipalSaved(facts));
    Ok(())
}

/// A principal's document as stored: without `entitlements`, which are per workspace
/// ([`write_entitlements`]).
fn stored_document(principal: &Principal) -> ScimResult<String> {
    let written = if principal.attributes.contains_key("entitlements") {
        let mut attributes = principal.attributes.clone();
        attributes.remove("entitlements");
        serde_json::to_string(&attributes)
    } else {
        serde_json::to_string(&principal.attributes)
    };
    written.map_err(|error| {
        ScimError::internal_caused_by("cannot write a principal's document", error)
    })
}

/// Sets what `principal` holds itself in `workspace` to `entitlements` (an `entitlements`
/// attribute; absent or empty: none), and logs it for the engines when it differs from what
/// is stored. Compared as JSON, not as text: rows PostgreSQL's migration copied are jsonb's
/// printing of the same array.
async fn write_entitlements<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
    principal: &PrincipalId,
    entitlements: Option<&Value>,
    log: &mut Log,
) -> ScimResult<()> {
    let wanted =
        entitlements.filter(|value| value.as_array().is_some_and(|values| !values.is_empty()));
    let key = params![account.as_str(), workspace.as_str(), principal.as_str()];
    let stored = match query_opt(
        transaction,
        "SELECT entitlements FROM workspace_entitlements \
         WHERE account_id = $1 AND workspace_id = $2 AND principal_id = $3",
        key,
    )
    .await?
    {
        Some(mut row) => Some(read::entitlements_of(&row.text(0)?)?),
        None => None,
    };
    if stored.as_ref() == wanted {
        return Ok(());
    }
    transaction
        .execute(
            "DELETE FROM workspace_entitlements \
             WHERE account_id = $1 AND workspace_id = $2 AND principal_id = $3",
            key,
        )
        .await?;
    if let Some(wanted) = wanted {
        let text = serde_json::to_string(wanted).map_err(|error| {
            ScimError::internal_caused_by("cannot write a principal's entitlements", error)
        })?;
        transaction
            .execute(
                "INSERT INTO workspace_entitlements \
                 (account_id, workspace_id, principal_id, entitlements) VALUES ($1, $2, $3, $4)",
                params![
                    account.as_str(),
                    workspace.as_str(),
                    principal.as_str(),
                    text.as_str()
                ],
            )
            .await?;
    }
    log.push(
        account,
        AccessEvent::EntitlementsSet {
            workspace: workspace.clone(),
            principal: principal.clone(),
            entitlements: wanted.map(entitlement_values).unwrap_or_default(),
        },
    );
    Ok(())
}

/// Revokes the principal's tokens, as deactivating it does, for good: reactivating it later
/// must not bring back credentials that were handed out before (they may have leaked while
/// nobody watched them). The `principal_saved` entry logged with it makes every node drop them
/// from its cache.
async fn revoke_tokens<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    principal: &Principal,
) -> ScimResult<()> {
    transaction
        .execute(
            "UPDATE tokens SET revoked = $3 \
             WHERE account_id = $1 AND principal_id = $2 AND revoked IS NULL",
            params![
                account.as_str(),
                principal.id.as_str(),
                principal.last_modified.as_micros()
            ],
        )
        .await?;
    Ok(())
}

/// userName, displayName and applicationId lower-cased, as their indexed columns hold them.
fn folded_names(
    keys: &scimitar_domain::resource::IndexKeys,
) -> (Option<String>, Option<String>, Option<String>) {
    (
        keys.user_name.as_deref().map(fold_case),
        keys.display_name.as_deref().map(fold_case),
        keys.application_id.as_deref().map(fold_case),
    )
}

async fn write_emails<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    principal: &Principal,
    emails: &[EmailKey],
) -> ScimResult<()> {
    let owner = params![account.as_str(), principal.id.as_str()];
    transaction
        .execute(
            "DELETE FROM principal_emails WHERE account_id = $1 AND principal_id = $2",
            owner,
        )
        .await?;
    insert_emails(transaction, account, principal, emails).await
}

async fn insert_emails<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    principal: &Principal,
    emails: &[EmailKey],
) -> ScimResult<()> {
    for (position, email) in emails.iter().enumerate() {
        let value = fold_case(&email.value);
        transaction
            .execute(
                "INSERT INTO principal_emails (account_id, principal_id, position, value_lower, \
                 type, is_primary) VALUES ($1, $2, $3, $4, $5, $6)",
                params![
                    account.as_str(),
                    principal.id.as_str(),
                    i64::try_from(position).unwrap_or(i64::MAX),
                    value.as_str(),
                    email.kind.as_deref(),
                    email.primary
                ],
            )
            .await?;
    }
    Ok(())
}

/// Writes a principal's new state if its version is still `expected_version`. Under READ
/// COMMITTED a concurrent writer of the same row waits for the row lock and then re-checks the
/// version against the committed row, so it updates nothing and fails as a precondition
/// failure: no update is lost, on either backend.
async fn update_principal<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    principal: &Principal,
    expected_version: u64,
    log: &mut Log,
) -> ScimResult<()> {
    let keys = principal.index_keys();
    let attributes = stored_document(principal)?;
    let (user_name, display_name, application_id) = folded_names(&keys);
    let updated = transaction
        .execute(
            "UPDATE principals SET user_name_lower = $3, display_name = $4, \
             display_name_lower = $5, external_id = $6, application_id_lower = $7, active = $8, \
             attributes = $9, password_hash = $10, last_modified = $11, version = $12 \
             WHERE account_id = $1 AND id = $2 AND version = $13",
            params![
                account.as_str(),
                principal.id.as_str(),
                user_name.as_deref(),
                keys.display_name.as_deref(),
                display_name.as_deref(),
                keys.external_id.as_deref(),
                application_id.as_deref(),
                keys.active,
                attributes.as_str(),
                principal.password_hash.as_deref(),
                principal.last_modified.as_micros(),
                to_i64(principal.version),
                to_i64(expected_version)
            ],
        )
        .await?;
    if updated == 0 {
        return Err(
            match read::principal(transaction, account, &principal.id).await? {
                None => ScimError::NotFound(format!("resource {} not found", principal.id)),
                Some(_) => ScimError::PreconditionFailed(format!(
                    "resource {} was changed by another request",
                    principal.id
                )),
            },
        );
    }
    write_emails(transaction, account, principal, &keys.emails).await?;
    if keys.active == Some(false) {
        revoke_tokens(transaction, account, principal).await?;
        // And its OAuth secrets, for the same reason (`sql/oauth.rs`).
        oauth::delete_secrets_of(transaction, account, &principal.id, &mut log.entries).await?;
    }
    let facts = PrincipalFacts::from_keys(principal, &keys);
    log.push(account, AccessEvent::PrincipalSaved(facts));
    Ok(())
}

/// The kind of a would-be member, `None` when it does not exist, read with the backend's
/// [`crate::sql::Dialect::key_share`] lock.
async fn member_kind<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    id: &PrincipalId,
) -> ScimResult<Option<PrincipalKind>> {
    let sql = format!(
        "SELECT kind FROM principals WHERE account_id = $1 AND id = $2{}",
        T::DIALECT.key_share()
    );
    let rows = transaction
        .query(&sql, params![account.as_str(), id.as_str()])
        .await?;
    match rows.into_iter().next() {
        Some(mut row) => Ok(PrincipalKind::parse(&row.text(0)?)),
        None => Ok(None),
    }
}

/// Whether `candidate` already contains `group`, directly or through nested groups, so that
/// adding `candidate` to `group` would close a cycle.
async fn contains_transitively<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    candidate: &PrincipalId,
    group: &PrincipalId,
) -> ScimResult<bool> {
    let sql = format!(
        "WITH RECURSIVE ancestors(id) AS ( \
           SELECT group_id FROM memberships WHERE account_id = $1 AND member_id = $2 \
           UNION \
           SELECT m.group_id FROM ancestors a \
           {} memberships m ON m.account_id = $1 AND m.member_id = a.id) \
         SELECT EXISTS (SELECT 1 FROM ancestors WHERE id = $3)",
        T::DIALECT.ordered_join()
    );
    let found = params![account.as_str(), group.as_str(), candidate.as_str()];
    query_one(transaction, &sql, found).await?.boolean(0)
}

fn is_admins_group(group: &Principal) -> bool {
    group.kind == PrincipalKind::Group && group.system && group.display_name() == Some("admins")
}

async fn add_member<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    group: &Principal,
    member: &MemberValue,
    now: Timestamp,
    log: &mut Log,
) -> ScimResult<()> {
    let kind = member_kind(transaction, account, &member.id)
        .await?
        .ok_or_else(|| {
            ScimError::invalid_value(format!(
                "member '{}' does not exist in this account",
                member.id
            ))
        })?;
    if let Some(hint) = member.kind_hint.filter(|hint| *hint != kind) {
        return Err(ScimError::invalid_value(format!(
            "member '{}' is a {}, not a {}",
            member.id,
            kind.as_str(),
            hint.as_str()
        )));
    }
    if kind == PrincipalKind::Group {
        if member.id == group.id {
            return Err(ScimError::invalid_value(format!(
                "group '{}' cannot be a member of itself",
                group.id
            )));
        }
        if is_admins_group(group) {
            return Err(ScimError::invalid_value(
                "the 'admins' group cannot contain groups",
            ));
        }
        // Held from before the check to the commit: under READ COMMITTED two opposite
        // additions on different nodes would each pass a check that cannot see the other's
        // edge, and row locks do not help, as they touch different rows. Only group-in-group
        // additions take it, so ordinary provisioning never waits on it.
        transaction.lock(Lock::GroupNesting(account)).await?;
        if contains_transitively(transaction, account, &member.id, &group.id).await? {
            return Err(ScimError::invalid_value(format!(
                "adding group '{}' to group '{}' would make a membership cycle",
                member.id, group.id
            )));
        }
    }
    let inserted = transaction
        .execute(
            "INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            params![
                account.as_str(),
                group.id.as_str(),
                member.id.as_str(),
                kind.as_str(),
                now.as_micros()
            ],
        )
        .await?;
    if inserted > 0 {
        let (group, member) = (group.id.clone(), member.id.clone());
        log.push(account, AccessEvent::MemberAdded { group, member });
    }
    Ok(())
}

async fn remove_member<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    group: &PrincipalId,
    member: &PrincipalId,
    log: &mut Log,
) -> ScimResult<()> {
    let removed = transaction
        .execute(
            "DELETE FROM memberships WHERE account_id = $1 AND group_id = $2 AND member_id = $3",
            params![account.as_str(), group.as_str(), member.as_str()],
        )
        .await?;
    if removed > 0 {
        let (group, member) = (group.clone(), member.clone());
        log.push(account, AccessEvent::MemberRemoved { group, member });
    }
    Ok(())
}

async fn remove_all_members<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    group: &PrincipalId,
    log: &mut Log,
) -> ScimResult<()> {
    let removed = transaction
        .query(
            "DELETE FROM memberships WHERE account_id = $1 AND group_id = $2 RETURNING member_id",
            params![account.as_str(), group.as_str()],
        )
        .await?;
    for mut row in removed {
        let member = PrincipalId::new(row.text(0)?);
        log.push(
            account,
            AccessEvent::MemberRemoved {
                group: group.clone(),
                member,
            },
        );
    }
    Ok(())
}

async fn apply_membership<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    group: &Principal,
    steps: &[MembershipStep],
    log: &mut Log,
) -> ScimResult<()> {
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
                for member in read::members(transaction, account, &group.id, None).await? {
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

/// A new user or service principal joins the account's `users` system group.
async fn join_users_group<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    principal: &Principal,
    log: &mut Log,
) -> ScimResult<()> {
    let joined = transaction
        .query(
            "INSERT INTO memberships (account_id, group_id, member_id, member_kind, created) \
             SELECT account_id, id, $2, $3, $4 FROM principals \
             WHERE account_id = $1 AND kind = 'Group' AND system = TRUE \
             AND display_name_lower = 'users' ON CONFLICT DO NOTHING RETURNING group_id",
            params![
                account.as_str(),
                principal.id.as_str(),
                principal.kind.as_str(),
                principal.created.as_micros()
            ],
        )
        .await?;
    for mut row in joined {
        let group = PrincipalId::new(row.text(0)?);
        let member = principal.id.clone();
        log.push(account, AccessEvent::MemberAdded { group, member });
    }
    Ok(())
}

/// The last-admin rule: a change that would leave the account's `admins` group without an
/// active direct member (a user or service principal whose `active` is not false) is refused,
/// when the account had one before it. Only changes that can do that are checked: removals
/// from `admins`, and the deactivation or deletion of one of its members. The check holds
/// [`Lock::Admins`] from before its first read to the commit, so two such changes in two
/// transactions (the removals of the two last admins) take turns and the second sees the
/// first; the members it counts were locked by the change itself or by their own writers
/// before it reads them (see [`AdminGuard::for_update`]).
struct AdminGuard {
    /// Whether the account had an active admin before the change; `None`: not checked.
    had_active_admin: Option<bool>,
}

impl AdminGuard {
    const UNCHECKED: AdminGuard = AdminGuard {
        had_active_admin: None,
    };

    async fn start<T: SqlTransaction>(
        transaction: &mut T,
        account: &AccountId,
    ) -> ScimResult<AdminGuard> {
        transaction.lock(Lock::Admins(account)).await?;
        Ok(AdminGuard {
            had_active_admin: Some(has_active_admin(transaction, account).await?),
        })
    }

    /// For an update: of the `admins` group with steps that can remove members, or the
    /// deactivation of one of its members. The member is locked first (PostgreSQL:
    /// `FOR UPDATE`), so a concurrent addition of it to `admins`, which reads it
    /// `FOR KEY SHARE`, either committed before the membership is read here or waits for this
    /// change.
    async fn for_update<T: SqlTransaction>(
        transaction: &mut T,
        account: &AccountId,
        principal: &Principal,
        steps: &[MembershipStep],
    ) -> ScimResult<AdminGuard> {
        if principal.kind == PrincipalKind::Group {
            let removes = steps
                .iter()
                .any(|step| !matches!(step, MembershipStep::Add(_)));
            if removes && is_admins_group(principal) {
                return AdminGuard::start(transaction, account).await;
            }
            return Ok(AdminGuard::UNCHECKED);
        }
        if principal.is_active() {
            return Ok(AdminGuard::UNCHECKED);
        }
        transaction
            .lock(Lock::Principal(account, &principal.id))
            .await?;
        if is_admin(transaction, account, &principal.id).await? {
            return AdminGuard::start(transaction, account).await;
        }
        Ok(AdminGuard::UNCHECKED)
    }

    /// For a delete: of a member of `admins` (already locked by the delete), or of the group.
    async fn for_delete<T: SqlTransaction>(
        transaction: &mut T,
        account: &AccountId,
        principal: &Principal,
    ) -> ScimResult<AdminGuard> {
        if is_admins_group(principal) || is_admin(transaction, account, &principal.id).await? {
            return AdminGuard::start(transaction, account).await;
        }
        Ok(AdminGuard::UNCHECKED)
    }

    /// Refuses the change if it took the account's last active admin.
    async fn check<T: SqlTransaction>(
        self,
        transaction: &mut T,
        account: &AccountId,
    ) -> ScimResult<()> {
        if self.had_active_admin == Some(true) && !has_active_admin(transaction, account).await? {
            return Err(ScimError::Conflict(LAST_ADMIN.to_string()));
        }
        Ok(())
    }
}

/// Whether the principal is a direct member of the account's `admins` group.
async fn is_admin<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    id: &PrincipalId,
) -> ScimResult<bool> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM principals g JOIN memberships m \
         ON m.account_id = g.account_id AND m.group_id = g.id \
         WHERE g.account_id = $1 AND {ADMINS_GROUP} AND m.member_id = $2)"
    );
    query_one(transaction, &sql, params![account.as_str(), id.as_str()])
        .await?
        .boolean(0)
}

/// Whether the account's `admins` group has an active direct member. A user without an
/// `active` attribute is active, as in SCIM. The joins keep their written order: from the
/// group, to its few members, to their rows; SQLite's planner, left alone, starts from the
/// account's every membership.
async fn has_active_admin<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
) -> ScimResult<bool> {
    let join = T::DIALECT.ordered_join();
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM principals g {join} memberships m \
         ON m.account_id = g.account_id AND m.group_id = g.id \
         {join} principals p ON p.account_id = m.account_id AND p.id = m.member_id \
         WHERE g.account_id = $1 AND {ADMINS_GROUP} AND p.kind <> 'Group' \
         AND (p.active IS NULL OR p.active = TRUE))"
    );
    query_one(transaction, &sql, params![account.as_str()])
        .await?
        .boolean(0)
}

/// Writes exported records as they are, with the access-log entries the state they make
/// implies (see [`Change::Import`]).
async fn import_records<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    records: &[ImportRecord],
    log: &mut Log,
) -> ScimResult<()> {
    transaction.before_bulk_load().await?;
    // Objects whose ACL rows this batch wrote. An object's entries may span two batches, and
    // the log entry replaces an ACL whole, so each is logged once, at the end, as it then is.
    let mut acl_objects: Vec<(ObjectType, &str)> = Vec::new();
    for record in records {
        match record {
            ImportRecord::Account(new_account) => {
                if new_account.id != *account {
                    return Err(ScimError::internal(
                        "an imported account must be applied as itself",
                    ));
                }
                // The primary key refuses a duplicate too; this gives the error a clear text.
                let exists = query_one(
                    transaction,
                    "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)",
                    params![account.as_str()],
                )
                .await?
                .boolean(0)?;
                if exists {
                    return Err(ScimError::uniqueness(format!(
                        "account {account} already exists"
                    )));
                }
                transaction
                    .execute(
                        "INSERT INTO accounts (id, name, created) VALUES ($1, $2, $3)",
                        params![
                            account.as_str(),
                            &new_account.name,
                            new_account.created.as_micros()
                        ],
                    )
                    .await?;
            }
            ImportRecord::Workspace(workspace) => {
                insert_workspace(transaction, account, workspace).await?
            }
            ImportRecord::Assignment(row) => {
                let permission = Some(row.permission);
                assign(
                    transaction,
                    account,
                    &row.workspace,
                    &row.principal,
                    permission,
                    log,
                )
                .await?
            }
            ImportRecord::Principal(principal) => {
                insert_principal(transaction, account, principal, log).await?
            }
            ImportRecord::Membership(membership) => {
                // The member's kind comes from its row, which must already be there.
                let inserted = transaction
                    .execute(
                        "INSERT INTO memberships (account_id, group_id, member_id, member_kind, \
                         created) SELECT account_id, $2, id, kind, $4 FROM principals \
                         WHERE account_id = $1 AND id = $3",
                        params![
                            account.as_str(),
                            membership.group.as_str(),
                            membership.member.as_str(),
                            membership.created.as_micros()
                        ],
                    )
                    .await?;
                if inserted == 0 {
                    return Err(ScimError::invalid_value(format!(
                        "member '{}' of group '{}' does not exist in this account",
                        membership.member, membership.group
                    )));
                }
                let (group, member) = (membership.group.clone(), membership.member.clone());
                log.push(account, AccessEvent::MemberAdded { group, member });
            }
            ImportRecord::Token(row) => {
                let (token, digest) = (&row.token, &row.digest);
                insert_token(
                    transaction,
                    account,
                    token,
                    digest,
                    row.revoked,
                    row.last_used,
                )
                .await?
            }
            ImportRecord::Securable(row) => {
                let change = GovernanceChange::CreateSecurable {
                    securable_type: row.securable_type,
                    full_name: row.full_name.clone(),
                    owner: row.owner.clone(),
                    comment: row.comment.clone(),
                    created: row.created,
                };
                apply_governance(transaction, account, None, &change, log).await?;
                if row.isolation_mode != IsolationMode::Open {
                    let change = GovernanceChange::SetIsolationMode {
                        catalog: row.full_name.clone(),
                        isolation_mode: row.isolation_mode,
                    };
                    apply_governance(transaction, account, None, &change, log).await?;
                }
            }
            ImportRecord::Entitlements(row) => {
                let entitlements = Value::Array(row.entitlements.clone());
                write_entitlements(
                    transaction,
                    account,
                    &row.workspace,
                    &row.principal,
                    Some(&entitlements),
                    log,
                )
                .await?
            }
            ImportRecord::Binding(row) => {
                let change = GovernanceChange::BindWorkspace {
                    catalog: row.catalog.clone(),
                    workspace: row.workspace.clone(),
                    binding_type: Some(row.binding_type),
                };
                apply_governance(transaction, account, None, &change, log).await?;
            }
            ImportRecord::Grant(row) => {
                let change = GovernanceChange::Grant {
                    securable_type: row.securable_type,
                    full_name: row.full_name.clone(),
                    principal: row.principal.clone(),
                    privileges: vec![row.privilege],
                };
                apply_governance(transaction, account, None, &change, log).await?;
            }
            ImportRecord::Object(row) => {
                transaction
                    .execute(
                        "INSERT INTO workspace_objects (account_id, object_type, object_id, \
                         directory_id, path, language, workspace_id) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        params![
                            account.as_str(),
                            row.object_type.as_str(),
                            &row.object_id,
                            row.directory.as_deref(),
                            row.path.as_deref(),
                            row.language.as_deref(),
                            row.workspace.as_str()
                        ],
                    )
                    .await?;
                // The engine keeps only placed objects (its snapshot loads the same).
                if row.directory.is_some() {
                    let placed = GovernanceChange::SetObjectParent {
                        object_type: row.object_type,
                        object_id: row.object_id.clone(),
                        directory: row.directory.clone(),
                    };
                    log.push(account, AccessEvent::Governance(placed));
                }
            }
            ImportRecord::Acl(row) => {
                transaction
                    .execute(
                        "INSERT INTO object_acl (account_id, object_type, object_id, \
                         principal_id, level) VALUES ($1, $2, $3, $4, $5)",
                        params![
                            account.as_str(),
                            row.object_type.as_str(),
                            &row.object_id,
                            row.entry.principal.as_str(),
                            row.entry.level.as_str()
                        ],
                    )
                    .await?;
                let key = (row.object_type, row.object_id.as_str());
                if !acl_objects.contains(&key) {
                    acl_objects.push(key);
                }
            }
            ImportRecord::RuleSet { rule_set, version } => {
                let target = rule_set.target.as_ref().map(PrincipalId::as_str);
                transaction
                    .execute(
                        "INSERT INTO rule_sets (account_id, resource, target_id, version) \
                         VALUES ($1, $2, $3, $4)",
                        params![
                            account.as_str(),
                            &rule_set.resource,
                            target,
                            to_i64(*version)
                        ],
                    )
                    .await?;
                for (role, principal) in &rule_set.grants {
                    transaction
                        .execute(
                            "INSERT INTO rule_set_grants (account_id, resource, role, \
                             principal_id) VALUES ($1, $2, $3, $4)",
                            params![
                                account.as_str(),
                                &rule_set.resource,
                                role.as_str(),
                                principal.as_str()
                            ],
                        )
                        .await?;
                }
            }
        }
    }
    for (object_type, object_id) in acl_objects {
        let entries = object_acl(transaction, account, object_type, object_id).await?;
        let whole = GovernanceChange::SetObjectAcl {
            object_type,
            object_id: object_id.to_string(),
            entries,
        };
        log.push(account, AccessEvent::Governance(whole));
    }
    Ok(())
}

/// An object's direct ACL as stored, by principal.
async fn object_acl<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    object_type: ObjectType,
    object_id: &str,
) -> ScimResult<Vec<scimitar_access::AclEntry>> {
    let rows = transaction
        .query(
            "SELECT principal_id, level FROM object_acl \
             WHERE account_id = $1 AND object_type = $2 AND object_id = $3 ORDER BY principal_id",
            params![account.as_str(), object_type.as_str(), object_id],
        )
        .await?;
    rows.into_iter().map(acl_entry_from_row).collect()
}

/// The answer to an ACL write computed from a view that another write has since changed.
fn acl_conflict(object_type: ObjectType, object_id: &str) -> ScimError {
    ScimError::PreconditionFailed(format!(
        "the permissions of {} {object_id} were changed by another request",
        object_type.as_str()
    ))
}

fn not_found(securable_type: SecurableType, full_name: &str) -> ScimError {
    ScimError::NotFound(format!(
        "{} '{full_name}' does not exist",
        securable_type.as_str()
    ))
}

/// Applies a governance change and logs it, unless it is a precondition (which writes nothing
/// and is not logged).
/// `workspace` is the one the change's objects belong to (a Unity Catalog change has none).
async fn apply_governance<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    workspace: Option<&WorkspaceId>,
    change: &GovernanceChange,
    log: &mut Log,
) -> ScimResult<()> {
    match change {
        GovernanceChange::CreateSecurable {
            securable_type,
            full_name,
            owner,
            comment,
            created,
        } => {
            let inserted = transaction
                .execute(
                    "INSERT INTO securables (account_id, securable_type, full_name, owner_id, \
                     comment, created) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    params![
                        account.as_str(),
                        securable_type.as_str(),
                        full_name,
                        owner.as_str(),
                        comment.as_deref(),
                        created.as_micros()
                    ],
                )
                .await?;
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
            let dropped = transaction
                .execute(
                    "DELETE FROM securables \
                     WHERE account_id = $1 AND securable_type = $2 AND full_name = $3",
                    params![account.as_str(), securable_type.as_str(), full_name],
                )
                .await?;
            if dropped == 0 {
                return Err(not_found(*securable_type, full_name));
            }
            if *securable_type == SecurableType::Catalog {
                transaction
                    .execute(
                        "DELETE FROM catalog_workspace_bindings \
                         WHERE account_id = $1 AND catalog_name = $2",
                        params![account.as_str(), full_name],
                    )
                    .await?;
            }
            if matches!(
                securable_type,
                SecurableType::Catalog | SecurableType::Schema
            ) {
                let (low, high) = descendant_range(full_name);
                transaction
                    .execute(
                        "DELETE FROM securables \
                         WHERE account_id = $1 AND full_name >= $2 AND full_name < $3",
                        params![account.as_str(), low.as_str(), high.as_str()],
                    )
                    .await?;
            }
        }
        GovernanceChange::SetOwner {
            securable_type,
            full_name,
            owner,
        } => {
            let updated = transaction
                .execute(
                    "UPDATE securables SET owner_id = $4 \
                     WHERE account_id = $1 AND securable_type = $2 AND full_name = $3",
                    params![
                        account.as_str(),
                        securable_type.as_str(),
                        full_name,
                        owner.as_str()
                    ],
                )
                .await?;
            if updated == 0 {
                return Err(not_found(*securable_type, full_name));
            }
        }
        GovernanceChange::RenameSecurable {
            securable_type,
            full_name,
            new_name,
        } => rename_securable(transaction, account, *securable_type, full_name, new_name).await?,
        GovernanceChange::SetComment {
            securable_type,
            full_name,
            comment,
        } => {
            let updated = transaction
                .execute(
                    "UPDATE securables SET comment = $4 \
                     WHERE account_id = $1 AND securable_type = $2 AND full_name = $3",
                    params![
                        account.as_str(),
                        securable_type.as_str(),
                        full_name,
                        comment.as_deref()
                    ],
                )
                .await?;
            if updated == 0 {
                return Err(not_found(*securable_type, full_name));
            }
            // A comment alters no access answer: written, not logged.
            return Ok(());
        }
        GovernanceChange::Grant {
            securable_type,
            full_name,
            principal,
            privileges,
        } => {
            for privilege in privileges {
                transaction
                    .execute(
                        "INSERT INTO grants (account_id, securable_type, full_name, principal_id, \
                         privilege) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        params![
                            account.as_str(),
                            securable_type.as_str(),
                            full_name,
                            principal.as_str(),
                            privilege.as_str()
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
                transaction
                    .execute(
                        "DELETE FROM grants WHERE account_id = $1 AND securable_type = $2 \
                         AND full_name = $3 AND principal_id = $4 AND privilege = $5",
                        params![
                            account.as_str(),
                            securable_type.as_str(),
                            full_name,
                            principal.as_str(),
                            privilege.as_str()
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
            register_object(transaction, account, workspace, *object_type, object_id).await?;
            let object = params![account.as_str(), object_type.as_str(), object_id];
            transaction
                .execute(
                    "DELETE FROM object_acl \
                     WHERE account_id = $1 AND object_type = $2 AND object_id = $3",
                    object,
                )
                .await?;
            for entry in entries {
                transaction
                    .execute(
                        "INSERT INTO object_acl (account_id, object_type, object_id, \
                         principal_id, level) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (account_id, object_type, object_id, principal_id) \
                         DO UPDATE SET level = excluded.level",
                        params![
                            account.as_str(),
                            object_type.as_str(),
                            object_id,
                            entry.principal.as_str(),
                            entry.level.as_str()
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
            // check runs after the first write committed and fails, where without the lock
            // both would see the old ACL and one write would be lost.
            let (object_type, object_id) = (*object_type, object_id.as_str());
            let lock = Lock::ObjectAcl {
                account,
                object_type,
                object_id,
            };
            transaction.lock(lock).await?;
            let current = object_acl(transaction, account, object_type, object_id).await?;
            if !same_acl(&current, entries) {
                return Err(acl_conflict(object_type, object_id));
            }
            return Ok(());
        }
        GovernanceChange::SetObjectParent {
            object_type,
            object_id,
            directory,
        } => {
            register_object(transaction, account, workspace, *object_type, object_id).await?;
            if let Some(directory) = directory {
                let directories = ObjectType::Directories;
                register_object(transaction, account, workspace, directories, directory).await?;
            }
            transaction
                .execute(
                    "UPDATE workspace_objects SET directory_id = $4 \
                     WHERE account_id = $1 AND object_type = $2 AND object_id = $3",
                    params![
                        account.as_str(),
                        object_type.as_str(),
                        object_id,
                        directory.as_deref()
                    ],
                )
                .await?;
        }
        GovernanceChange::CreateWorkspaceEntry { entry } => {
            let workspace = workspace.ok_or_else(no_workspace)?;
            create_workspace_entry(transaction, account, workspace, entry).await?
        }
        GovernanceChange::SetIsolationMode {
            catalog,
            isolation_mode,
        } => {
            let updated = transaction
                .execute(
                    "UPDATE securables SET isolation_mode = $3 \
                     WHERE account_id = $1 AND securable_type = 'CATALOG' AND full_name = $2",
                    params![account.as_str(), catalog, isolation_mode.as_str()],
                )
                .await?;
            if updated == 0 {
                return Err(not_found(SecurableType::Catalog, catalog));
            }
        }
        GovernanceChange::BindWorkspace {
            catalog,
            workspace,
            binding_type,
        } => bind_workspace(transaction, account, catalog, workspace, *binding_type).await?,
        GovernanceChange::RemoveObject {
            object_type,
            object_id,
        } => {
            transaction
                .execute(
                    "DELETE FROM workspace_objects \
                     WHERE account_id = $1 AND object_type = $2 AND object_id = $3",
                    params![account.as_str(), object_type.as_str(), object_id],
                )
                .await?;
            if *object_type == ObjectType::Directories {
                transaction
                    .execute(
                        "UPDATE workspace_objects SET directory_id = NULL \
                         WHERE account_id = $1 AND directory_id = $2",
                        params![account.as_str(), object_id],
                    )
                    .await?;
            }
        }
    }
    log.push(account, AccessEvent::Governance(change.clone()));
    Ok(())
}

/// Renames a securable and everything below it. Each row is written again under its new name
/// and its grants moved to it before the old row is deleted, because the grants' foreign key
/// names the securable (an update of the key in place would be refused while grants point at
/// it). The old rows must all still be there when deleted: a rename that raced another one,
/// or a drop, is refused and rolled back rather than leaving two trees.
async fn rename_securable<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    securable_type: SecurableType,
    full_name: &str,
    new_name: &str,
) -> ScimResult<()> {
    let tree = read::securable_tree(transaction, account, securable_type, full_name).await?;
    if tree.is_empty() {
        return Err(not_found(securable_type, full_name));
    }
    // A catalog's workspace bindings go with it.
    if securable_type == SecurableType::Catalog {
        transaction
            .execute(
                "UPDATE catalog_workspace_bindings SET catalog_name = $3 \
                 WHERE account_id = $1 AND catalog_name = $2",
                params![account.as_str(), full_name, new_name],
            )
            .await?;
    }
    for row in &tree {
        let renamed = match row.full_name.strip_prefix(full_name) {
            Some(rest) => format!("{new_name}{rest}"),
            None => continue,
        };
        let inserted = transaction
            .execute(
                "INSERT INTO securables (account_id, securable_type, full_name, owner_id, \
                 comment, created, isolation_mode) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT DO NOTHING",
                params![
                    account.as_str(),
                    row.securable_type.as_str(),
                    renamed.as_str(),
                    row.owner.as_str(),
                    row.comment.as_deref(),
                    row.created.as_micros(),
                    row.isolation_mode.as_str()
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(ScimError::uniqueness(format!(
                "{} '{renamed}' already exists",
                row.securable_type.as_str()
            )));
        }
        transaction
            .execute(
                "UPDATE grants SET full_name = $4 \
                 WHERE account_id = $1 AND securable_type = $2 AND full_name = $3",
                params![
                    account.as_str(),
                    row.securable_type.as_str(),
                    row.full_name.as_str(),
                    renamed.as_str()
                ],
            )
            .await?;
        let deleted = transaction
            .execute(
                "DELETE FROM securables \
                 WHERE account_id = $1 AND securable_type = $2 AND full_name = $3",
                params![
                    account.as_str(),
                    row.securable_type.as_str(),
                    row.full_name.as_str()
                ],
            )
            .await?;
        if deleted == 0 {
            return Err(not_found(row.securable_type, &row.full_name));
        }
    }
    Ok(())
}

async fn create_workspace_entry<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
    entry: &WorkspaceEntry,
) -> ScimResult<()> {
    let inserted = transaction
        .execute(
            "INSERT INTO workspace_objects (account_id, object_type, object_id, directory_id, \
             path, language, workspace_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT DO NOTHING",
            params![
                account.as_str(),
                entry.object_type.as_str(),
                &entry.object_id,
                entry.directory.as_deref(),
                &entry.path,
                entry.language.as_deref(),
                workspace.as_str()
            ],
        )
        .await?;
    if inserted == 0 {
        // The path is taken (or, rarely, the freshly drawn id), which callers plan around as
        // a uniqueness conflict.
        return Err(ScimError::uniqueness(format!(
            "Path ({}) already exists.",
            entry.path
        )));
    }
    Ok(())
}

/// Registers an object in `workspace` if it is new. An object of another workspace is
/// answered as a missing one: the app checks this before writing, and this is the same check
/// inside the write, for an object that another request registered in between.
async fn register_object<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    workspace: Option<&WorkspaceId>,
    object_type: ObjectType,
    object_id: &str,
) -> ScimResult<()> {
    let workspace = workspace.ok_or_else(no_workspace)?;
    transaction
        .execute(
            "INSERT INTO workspace_objects (account_id, object_type, object_id, workspace_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            params![
                account.as_str(),
                object_type.as_str(),
                object_id,
                workspace.as_str()
            ],
        )
        .await?;
    if read::object_workspace(transaction, account, object_type, object_id).await?
        != Some(workspace.clone())
    {
        return Err(ScimError::NotFound(format!(
            "{} {object_id} does not exist",
            object_type.as_str()
        )));
    }
    Ok(())
}

/// A workspace object change committed without the workspace its objects belong to: a bug
/// of the caller, never the client's.
fn no_workspace() -> ScimError {
    ScimError::internal("a workspace object change must name its workspace")
}

/// Deletes a workspace's objects (their ACLs go with them) and logs each removal, so the
/// access engine forgets them too.
async fn delete_workspace_objects<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    workspace: &WorkspaceId,
    log: &mut Log,
) -> ScimResult<()> {
    let rows = transaction
        .query(
            "SELECT object_type, object_id FROM workspace_objects \
             WHERE account_id = $1 AND workspace_id = $2 ORDER BY object_type, object_id",
            params![account.as_str(), workspace.as_str()],
        )
        .await?;
    let mut removed = Vec::with_capacity(rows.len());
    for mut row in rows {
        removed.push(GovernanceChange::RemoveObject {
            object_type: read::object_type_of(&row.text(0)?)?,
            object_id: row.text(1)?,
        });
    }
    transaction
        .execute(
            "DELETE FROM workspace_objects WHERE account_id = $1 AND workspace_id = $2",
            params![account.as_str(), workspace.as_str()],
        )
        .await?;
    for change in removed {
        log.push(account, AccessEvent::Governance(change));
    }
    Ok(())
}
