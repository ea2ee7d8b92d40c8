//! Moving a deployment's data between stores: [`export`] writes every account's identities,
//! memberships, tokens, securables, grants, workspace objects and ACLs as JSON Lines, and
//! [`import`] loads such a file into a store of either backend. This is how a deployment moves
//! from SQLite to PostgreSQL (or back).
//!
//! The format is storage's own, not SCIM's: one JSON object per line with a `type` tag, after a
//! first line `{"type":"scimitar-export","version":1}`. Records come in dependency order per
//! account (account, workspaces, principals, memberships, tokens, securables, grants, objects,
//! ACLs, assignments, entitlements per workspace, rule sets, bindings), so an importer can commit them in batches as it reads them and every foreign key
//! already points at a committed row. Everything stored comes across as it is: ids, versions
//! (so ETags stay valid), timestamps as integer microseconds (so they are exact), password
//! hashes (never a clear password) and token digests (so tokens keep working after the move).
//! The access log is not exported: the importer writes the entries the imported state implies,
//! and sequence numbers (change tokens) start afresh in the target.
//!
//! Memory stays bounded on both sides: export reads principals and memberships in keyset pages,
//! and import holds one batch at a time.

use crate::governance::{AclRow, BindingRow, GrantRow, ObjectRow, SecurableRow};
use crate::{Account, Change, Store, Workspace};
use scimitar_access::{
    object_id_in, AclEntry, BindingType, IsolationMode, ObjectType, PermissionLevel, Privilege,
    SecurableType, WorkspacePermission,
};
use scimitar_domain::credentials::{Token, TokenScope};
use scimitar_domain::{
    AccountId, Principal, PrincipalId, PrincipalKind, ScimError, Timestamp, WorkspaceId,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::io::{BufRead, Write};

/// The `type` of an export's first line.
pub const FORMAT_TAG: &str = "scimitar-export";
/// The format version this build writes and reads. A change that an older importer would
/// misread (a new field it would drop, a changed meaning) takes a new version.
pub const FORMAT_VERSION: u64 = 5;

/// The version before objects whose ids clients choose were kept under their workspace
/// (`scimitar_access::object_id_in`): importing one moves each such object, and its ACL, under
/// the workspace it names (as the database migration does).
const FORMAT_VERSION_BEFORE_OBJECT_NAMESPACES: u64 = 4;

/// The version before entitlements were per workspace: a principal's document carried them,
/// held in every workspace of its account, so importing one gives them to each workspace
/// listed before it (as the database migration does).
const FORMAT_VERSION_BEFORE_WORKSPACE_ENTITLEMENTS: u64 = 3;

/// The version before workspace objects named their workspace: each account had one, which
/// holds them, so importing one puts its objects in the workspace listed before them.
const FORMAT_VERSION_BEFORE_OBJECT_WORKSPACES: u64 = 2;

/// The version before workspace assignments existed: every principal of an account was in
/// its workspaces, so importing one assigns each principal to the workspaces listed before it.
const FORMAT_VERSION_BEFORE_ASSIGNMENTS: u64 = 1;
/// Records per import transaction: large enough that commits do not dominate, small enough
/// that a batch's records and its access-log entries are a few megabytes.
pub const DEFAULT_IMPORT_BATCH: usize = 5_000;
/// Principals or memberships per export read.
pub const DEFAULT_EXPORT_PAGE: usize = 5_000;

/// One direct membership as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRow {
    pub group: PrincipalId,
    pub member: PrincipalId,
    /// When the member was added. Nothing shows it yet; it is kept so a move loses nothing.
    pub created: Timestamp,
}

/// A token as stored, with what [`Token`] leaves out: the digest of its secret, which is what
/// authenticates it, and when it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token: Token,
    pub digest: String,
    pub revoked: Option<Timestamp>,
    /// When it was last used, as the nodes recorded it.
    pub last_used: Option<Timestamp>,
}

/// One stored record, as [`Change::Import`] writes it: exactly as given, ids, versions and
/// timestamps included, without the checks and side effects of the ordinary changes (no
/// automatic `users` membership, no cycle check: the source already kept those rules).
#[derive(Debug, Clone, PartialEq)]
pub enum ImportRecord {
    Account(Account),
    Workspace(Workspace),
    Principal(Principal),
    Membership(MembershipRow),
    Token(TokenRow),
    Securable(SecurableRow),
    Grant(GrantRow),
    Object(ObjectRow),
    Acl(AclRow),
    Assignment(AssignmentRow),
    /// An access-control rule set, whole, with its version (so etags stay valid).
    RuleSet {
        rule_set: crate::RuleSetRows,
        version: u64,
    },
    /// A catalog's workspace binding; after the workspaces and securables it names.
    Binding(BindingRow),
    /// What a principal holds itself in a workspace; after both.
    Entitlements(EntitlementRow),
}

/// What a principal is assigned itself in one workspace: its `entitlements` there, as the
/// workspace's SCIM documents show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementRow {
    pub workspace: WorkspaceId,
    pub principal: PrincipalId,
    pub entitlements: Vec<Value>,
}

/// A principal's direct assignment to a workspace, as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    pub workspace: WorkspaceId,
    pub principal: PrincipalId,
    pub permission: WorkspacePermission,
}

/// How far an export or import has got, for progress reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub account: AccountId,
    /// Records written (export) or committed (import) so far, over every account.
    pub records: u64,
}

/// What an import loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub accounts: Vec<AccountId>,
    pub records: u64,
    pub batches: u64,
}

/// Why an export or import stopped.
#[derive(Debug)]
pub enum TransferError {
    /// Reading the input or writing the output failed.
    Io(std::io::Error),
    /// The source store could not be read.
    Store(ScimError),
    /// A line that is not a record of this format. Lines count from 1.
    Malformed { line: u64, message: String },
    /// The target already holds an account the input brings.
    AccountExists { line: u64, account: AccountId },
    /// The target refused a batch; none of lines `first_line..=last_line` were written.
    Refused {
        first_line: u64,
        last_line: u64,
        error: ScimError,
    },
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferError::Io(error) => write!(formatter, "{error}"),
            TransferError::Store(error) => write!(formatter, "{error}"),
            TransferError::Malformed { line, message } => {
                write!(formatter, "line {line}: {message}")
            }
            TransferError::AccountExists { line, account } => write!(
                formatter,
                "line {line}: account {account} already exists in the target database; \
                 import into a database that does not hold it"
            ),
            TransferError::Refused {
                first_line,
                last_line,
                error,
            } => write!(
                formatter,
                "lines {first_line} to {last_line} were not imported: {error}"
            ),
        }
    }
}

impl std::error::Error for TransferError {}

impl From<std::io::Error> for TransferError {
    fn from(error: std::io::Error) -> Self {
        TransferError::Io(error)
    }
}

impl From<ScimError> for TransferError {
    fn from(error: ScimError) -> Self {
        TransferError::Store(error)
    }
}

/// One line of an export, as written. Field names are the format's, independent of Rust
/// names; ids and enumerations are their stored text.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    #[serde(rename = "scimitar-export")]
    Header { version: u64 },
    Account {
        id: String,
        name: String,
        created: i64,
    },
    Workspace {
        account: String,
        id: String,
        name: String,
        created: i64,
        /// Absent in exports made before workspaces had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment_name: Option<String>,
    },
    Principal {
        account: String,
        id: String,
        kind: String,
        attributes: Map<String, Value>,
        password_hash: Option<String>,
        system: bool,
        created: i64,
        last_modified: i64,
        version: u64,
    },
    Membership {
        account: String,
        group: String,
        member: String,
        created: i64,
    },
    Token {
        account: String,
        id: String,
        principal: String,
        /// SHA-256 of the secret, hex: what the server compares a presented token with.
        digest: String,
        scope: String,
        comment: Option<String>,
        created: i64,
        expires: Option<i64>,
        revoked: Option<i64>,
        /// The workspace a personal access token was made in; absent for account-level tokens
        /// and in exports made before tokens had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_used: Option<i64>,
    },
    Securable {
        account: String,
        securable_type: String,
        full_name: String,
        owner: String,
        comment: Option<String>,
        created: i64,
        /// Written only for an `ISOLATED` catalog, so exports of open ones read as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isolation_mode: Option<String>,
    },
    Grant {
        account: String,
        securable_type: String,
        full_name: String,
        principal: String,
        privilege: String,
    },
    Object {
        account: String,
        object_type: String,
        object_id: String,
        directory: Option<String>,
        /// Only for objects of the workspace tree; absent from exports made before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
        /// Absent in exports made before objects belonged to a workspace.
        #[serde(default)]
        workspace: Option<String>,
    },
    Acl {
        account: String,
        object_type: String,
        object_id: String,
        principal: String,
        level: String,
    },
    Assignment {
        account: String,
        workspace: String,
        principal: String,
        permission: String,
    },
    /// An account access-control rule set, whole: its resource as stored (`account`,
    /// `groups/{id}`, `servicePrincipals/{id}`), the principal it is about, its version, and
    /// its grants by principal id.
    RuleSet {
        account: String,
        resource: String,
        target: Option<String>,
        version: u64,
        grants: Vec<RuleSetGrantLine>,
    },
    Binding {
        account: String,
        catalog: String,
        workspace: String,
        binding_type: String,
    },
    /// A principal's entitlements in one workspace (format version 4 on).
    Entitlements {
        account: String,
        workspace: String,
        principal: String,
        entitlements: Vec<Value>,
    },
}

/// One role held by one principal, in a [`Line::RuleSet`].
#[derive(Debug, Serialize, Deserialize)]
struct RuleSetGrantLine {
    role: String,
    principal: String,
}

impl Line {
    fn of(account: &AccountId, record: &ImportRecord) -> Line {
        let account = account.to_string();
        match record {
            ImportRecord::Account(value) => Line::Account {
                id: value.id.to_string(),
                name: value.name.clone(),
                created: value.created.as_micros(),
            },
            ImportRecord::Workspace(value) => Line::Workspace {
                account,
                id: value.id.to_string(),
                name: value.name.clone(),
                created: value.created.as_micros(),
                deployment_name: value.deployment_name.clone(),
            },
            ImportRecord::Principal(value) => Line::Principal {
                account,
                id: value.id.to_string(),
                kind: value.kind.as_str().to_string(),
                attributes: value.attributes.clone(),
                password_hash: value.password_hash.clone(),
                system: value.system,
                created: value.created.as_micros(),
                last_modified: value.last_modified.as_micros(),
                version: value.version,
            },
            ImportRecord::Membership(value) => Line::Membership {
                account,
                group: value.group.to_string(),
                member: value.member.to_string(),
                created: value.created.as_micros(),
            },
            ImportRecord::Token(value) => Line::Token {
                account,
                id: value.token.id.clone(),
                principal: value.token.principal.to_string(),
                digest: value.digest.clone(),
                scope: value.token.scope.as_str().to_string(),
                comment: value.token.comment.clone(),
                created: value.token.created.as_micros(),
                expires: value.token.expires.map(Timestamp::as_micros),
                revoked: value.revoked.map(Timestamp::as_micros),
                workspace: value.token.workspace.as_ref().map(ToString::to_string),
                created_by: value.token.created_by.as_ref().map(ToString::to_string),
                last_used: value.last_used.map(Timestamp::as_micros),
            },
            ImportRecord::Securable(value) => Line::Securable {
                account,
                securable_type: value.securable_type.as_str().to_string(),
                full_name: value.full_name.clone(),
                owner: value.owner.to_string(),
                comment: value.comment.clone(),
                created: value.created.as_micros(),
                isolation_mode: (value.isolation_mode != IsolationMode::Open)
                    .then(|| value.isolation_mode.as_str().to_string()),
            },
            ImportRecord::Grant(value) => Line::Grant {
                account,
                securable_type: value.securable_type.as_str().to_string(),
                full_name: value.full_name.clone(),
                principal: value.principal.to_string(),
                privilege: value.privilege.as_str().to_string(),
            },
            ImportRecord::Object(value) => Line::Object {
                account,
                object_type: value.object_type.as_str().to_string(),
                object_id: value.object_id.clone(),
                directory: value.directory.clone(),
                path: value.path.clone(),
                language: value.language.clone(),
                workspace: Some(value.workspace.to_string()),
            },
            ImportRecord::Acl(value) => Line::Acl {
                account,
                object_type: value.object_type.as_str().to_string(),
                object_id: value.object_id.clone(),
                principal: value.entry.principal.to_string(),
                level: value.entry.level.as_str().to_string(),
            },
            ImportRecord::Assignment(value) => Line::Assignment {
                account,
                workspace: value.workspace.to_string(),
                principal: value.principal.to_string(),
                permission: value.permission.as_str().to_string(),
            },
            ImportRecord::RuleSet { rule_set, version } => Line::RuleSet {
                account,
                resource: rule_set.resource.clone(),
                target: rule_set.target.as_ref().map(PrincipalId::to_string),
                version: *version,
                grants: rule_set
                    .grants
                    .iter()
                    .map(|(role, principal)| RuleSetGrantLine {
                        role: role.clone(),
                        principal: principal.to_string(),
                    })
                    .collect(),
            },
            ImportRecord::Binding(value) => Line::Binding {
                account,
                catalog: value.catalog.clone(),
                workspace: value.workspace.to_string(),
                binding_type: value.binding_type.as_str().to_string(),
            },
            ImportRecord::Entitlements(value) => Line::Entitlements {
                account,
                workspace: value.workspace.to_string(),
                principal: value.principal.to_string(),
                entitlements: value.entitlements.clone(),
            },
        }
    }

    /// The record a line holds and the account it belongs to; `None` for the header.
    fn into_record(self) -> Result<Option<(AccountId, ImportRecord)>, String> {
        let text = |error: scimitar_access::AccessError| error.to_string();
        let record = match self {
            Line::Header { .. } => return Ok(None),
            Line::Account { id, name, created } => {
                let id = AccountId::new(id);
                (
                    id.clone(),
                    ImportRecord::Account(Account {
                        id,
                        name,
                        created: Timestamp::from_micros(created),
                    }),
                )
            }
            Line::Workspace {
                account,
                id,
                name,
                created,
                deployment_name,
            } => {
                let account = AccountId::new(account);
                (
                    account.clone(),
                    ImportRecord::Workspace(Workspace {
                        id: WorkspaceId::new(id),
                        account,
                        name,
                        created: Timestamp::from_micros(created),
                        deployment_name,
                    }),
                )
            }
            Line::Principal {
                account,
                id,
                kind,
                attributes,
                password_hash,
                system,
                created,
                last_modified,
                version,
            } => (
                AccountId::new(account),
                ImportRecord::Principal(Principal {
                    id: PrincipalId::new(id),
                    kind: PrincipalKind::parse(&kind)
                        .ok_or_else(|| format!("unknown principal kind '{kind}'"))?,
                    attributes,
                    password_hash,
                    system,
                    created: Timestamp::from_micros(created),
                    last_modified: Timestamp::from_micros(last_modified),
                    version,
                }),
            ),
            Line::Membership {
                account,
                group,
                member,
                created,
            } => (
                AccountId::new(account),
                ImportRecord::Membership(MembershipRow {
                    group: PrincipalId::new(group),
                    member: PrincipalId::new(member),
                    created: Timestamp::from_micros(created),
                }),
            ),
            Line::Token {
                account,
                id,
                principal,
                digest,
                scope,
                comment,
                created,
                expires,
                revoked,
                workspace,
                created_by,
                last_used,
            } => {
                let account = AccountId::new(account);
                (
                    account.clone(),
                    ImportRecord::Token(TokenRow {
                        token: Token {
                            id,
                            account,
                            principal: PrincipalId::new(principal),
                            scope: TokenScope::parse(&scope).map_err(|error| error.to_string())?,
                            comment,
                            created: Timestamp::from_micros(created),
                            expires: expires.map(Timestamp::from_micros),
                            workspace: workspace.map(WorkspaceId::new),
                            created_by: created_by.map(PrincipalId::new),
                        },
                        digest,
                        revoked: revoked.map(Timestamp::from_micros),
                        last_used: last_used.map(Timestamp::from_micros),
                    }),
                )
            }
            Line::Securable {
                account,
                securable_type,
                full_name,
                owner,
                comment,
                created,
                isolation_mode,
            } => (
                AccountId::new(account),
                ImportRecord::Securable(SecurableRow {
                    securable_type: SecurableType::parse(&securable_type).map_err(text)?,
                    full_name,
                    owner: PrincipalId::new(owner),
                    comment,
                    created: Timestamp::from_micros(created),
                    isolation_mode: match isolation_mode {
                        Some(mode) => IsolationMode::parse(&mode)
                            .ok_or_else(|| format!("unknown isolation mode '{mode}'"))?,
                        None => IsolationMode::Open,
                    },
                }),
            ),
            Line::Grant {
                account,
                securable_type,
                full_name,
                principal,
                privilege,
            } => (
                AccountId::new(account),
                ImportRecord::Grant(GrantRow {
                    securable_type: SecurableType::parse(&securable_type).map_err(text)?,
                    full_name,
                    principal: PrincipalId::new(principal),
                    privilege: Privilege::parse(&privilege).map_err(text)?,
                }),
            ),
            Line::Object {
                account,
                object_type,
                object_id,
                directory,
                path,
                language,
                workspace,
            } => (
                AccountId::new(account),
                ImportRecord::Object(ObjectRow {
                    object_type: ObjectType::parse(&object_type).map_err(text)?,
                    workspace: WorkspaceId::new(
                        workspace
                            .ok_or_else(|| format!("object {object_id} names no workspace"))?,
                    ),
                    object_id,
                    directory,
                    path,
                    language,
                }),
            ),
            Line::Acl {
                account,
                object_type,
                object_id,
                principal,
                level,
            } => (
                AccountId::new(account),
                ImportRecord::Acl(AclRow {
                    object_type: ObjectType::parse(&object_type).map_err(text)?,
                    object_id,
                    entry: AclEntry::new(
                        PrincipalId::new(principal),
                        PermissionLevel::parse(&level).map_err(text)?,
                    ),
                }),
            ),
            Line::Assignment {
                account,
                workspace,
                principal,
                permission,
            } => (
                AccountId::new(account),
                ImportRecord::Assignment(AssignmentRow {
                    workspace: WorkspaceId::new(workspace),
                    principal: PrincipalId::new(principal),
                    permission: WorkspacePermission::parse(&permission)
                        .ok_or_else(|| format!("unknown workspace permission '{permission}'"))?,
                }),
            ),
            Line::RuleSet {
                account,
                resource,
                target,
                version,
                grants,
            } => (
                AccountId::new(account),
                ImportRecord::RuleSet {
                    rule_set: crate::RuleSetRows {
                        resource,
                        target: target.map(PrincipalId::new),
                        grants: grants
                            .into_iter()
                            .map(|grant| (grant.role, PrincipalId::new(grant.principal)))
                            .collect(),
                    },
                    version,
                },
            ),
            Line::Binding {
                account,
                catalog,
                workspace,
                binding_type,
            } => (
                AccountId::new(account),
                ImportRecord::Binding(BindingRow {
                    catalog,
                    workspace: WorkspaceId::new(workspace),
                    binding_type: BindingType::parse(&binding_type)
                        .ok_or_else(|| format!("unknown binding type '{binding_type}'"))?,
                }),
            ),
            Line::Entitlements {
                account,
                workspace,
                principal,
                entitlements,
            } => (
                AccountId::new(account),
                ImportRecord::Entitlements(EntitlementRow {
                    workspace: WorkspaceId::new(workspace),
                    principal: PrincipalId::new(principal),
                    entitlements,
                }),
            ),
        };
        Ok(Some(record))
    }
}

/// Writes one line; serialising these plain values cannot fail short of an I/O error.
fn write_line(output: &mut dyn Write, line: &Line) -> Result<(), TransferError> {
    serde_json::to_writer(&mut *output, line).map_err(|error| match error.io_error_kind() {
        Some(kind) => TransferError::Io(std::io::Error::new(kind, error)),
        None => TransferError::Io(std::io::Error::other(error)),
    })?;
    output.write_all(b"\n")?;
    Ok(())
}

/// Writes every account of `store` to `output`, reading principals and memberships
/// `page_size` at a time, and reports progress after each page.
///
/// The export is consistent only if nothing writes to the store meanwhile: stop the servers
/// (or keep clients away) while it runs.
pub async fn export(
    store: &dyn Store,
    output: &mut dyn Write,
    page_size: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<u64, TransferError> {
    let page_size = page_size.max(1);
    write_line(
        output,
        &Line::Header {
            version: FORMAT_VERSION,
        },
    )?;
    let mut records: u64 = 0;
    let mut emit = |output: &mut dyn Write, account: &AccountId, record: ImportRecord| {
        records += 1;
        write_line(output, &Line::of(account, &record)).map(|()| records)
    };
    for account in store.accounts().await? {
        let id = account.id.clone();
        let mut written = emit(output, &id, ImportRecord::Account(account))?;
        for workspace in store.workspaces(&id).await? {
            written = emit(output, &id, ImportRecord::Workspace(workspace))?;
        }
        let mut after: Option<PrincipalId> = None;
        loop {
            let page = store
                .principals_page(&id, after.as_ref(), page_size)
                .await?;
            let full = page.len() >= page_size;
            after = page.last().map(|principal| principal.id.clone());
            for principal in page {
                written = emit(output, &id, ImportRecord::Principal(principal))?;
            }
            progress(&Progress {
                account: id.clone(),
                records: written,
            });
            if !full {
                break;
            }
        }
        let mut after: Option<MembershipRow> = None;
        loop {
            let page = store
                .memberships_page(&id, after.as_ref(), page_size)
                .await?;
            let full = page.len() >= page_size;
            after = page.last().cloned();
            for membership in page {
                written = emit(output, &id, ImportRecord::Membership(membership))?;
            }
            progress(&Progress {
                account: id.clone(),
                records: written,
            });
            if !full {
                break;
            }
        }
        for token in store.tokens(&id).await? {
            written = emit(output, &id, ImportRecord::Token(token))?;
        }
        // Governance state is small next to the directory: one consistent snapshot holds it.
        // Its securables come parents first, which is the order their import needs.
        let snapshot = store.access_snapshot(&id).await?;
        for securable in snapshot.securables {
            written = emit(output, &id, ImportRecord::Securable(securable))?;
        }
        for grant in snapshot.grants {
            written = emit(output, &id, ImportRecord::Grant(grant))?;
        }
        for object in snapshot.objects {
            written = emit(output, &id, ImportRecord::Object(object))?;
        }
        for acl in snapshot.acl {
            written = emit(output, &id, ImportRecord::Acl(acl))?;
        }
        for (workspace, principal, permission) in snapshot.assignments {
            let row = AssignmentRow {
                workspace,
                principal,
                permission,
            };
            written = emit(output, &id, ImportRecord::Assignment(row))?;
        }
        for row in store.entitlements(&id).await? {
            written = emit(output, &id, ImportRecord::Entitlements(row))?;
        }
        for (rule_set, version) in store.rule_sets(&id).await? {
            written = emit(output, &id, ImportRecord::RuleSet { rule_set, version })?;
        }
        for binding in snapshot.bindings {
            written = emit(output, &id, ImportRecord::Binding(binding))?;
        }
        progress(&Progress {
            account: id.clone(),
            records: written,
        });
    }
    output.flush()?;
    Ok(records)
}

/// A batch being gathered: one account's records from consecutive lines.
struct Batch {
    account: AccountId,
    first_line: u64,
    last_line: u64,
    records: Vec<ImportRecord>,
}

/// Loads an export into `store`, committing `batch_size` records per transaction, and reports
/// progress after each commit.
///
/// An account that the target already holds is refused before anything of it is written. A
/// malformed line stops the import before the batch it would have joined is written; batches
/// committed before it stay, and the error says from which line nothing was written.
pub async fn import(
    store: &dyn Store,
    input: &mut dyn BufRead,
    batch_size: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportSummary, TransferError> {
    let batch_size = batch_size.max(1);
    let mut known: HashSet<AccountId> = store
        .accounts()
        .await?
        .into_iter()
        .map(|account| account.id)
        .collect();
    let mut summary = ImportSummary::default();
    let mut header_seen = false;
    let mut before_assignments = false;
    let mut before_object_workspaces = false;
    let mut before_workspace_entitlements = false;
    let mut before_object_namespaces = false;
    // For exports made before object namespaces: the workspace of each object of the current
    // account whose id a client chose, by its id then, so that its ACL moves with it.
    let mut object_workspaces: std::collections::HashMap<(ObjectType, String), WorkspaceId> =
        std::collections::HashMap::new();
    // The current account's workspaces, for exports made before assignments.
    let mut workspaces: Vec<WorkspaceId> = Vec::new();
    let mut batch: Option<Batch> = None;
    let mut number: u64 = 0;
    let mut text = String::new();
    loop {
        text.clear();
        if input.read_line(&mut text)? == 0 {
            break;
        }
        number += 1;
        if text.trim().is_empty() {
            continue;
        }
        let mut line: Line =
            serde_json::from_str(text.trim_end()).map_err(|error| TransferError::Malformed {
                line: number,
                message: format!("not a record of a scimitar export: {error}"),
            })?;
        if let Line::Object { workspace, .. } = &mut line {
            if before_object_workspaces {
                *workspace = workspaces.first().map(ToString::to_string);
            }
        }
        if !header_seen {
            match line {
                Line::Header { version }
                    if version == FORMAT_VERSION
                        || version == FORMAT_VERSION_BEFORE_OBJECT_NAMESPACES
                        || version == FORMAT_VERSION_BEFORE_WORKSPACE_ENTITLEMENTS
                        || version == FORMAT_VERSION_BEFORE_OBJECT_WORKSPACES
                        || version == FORMAT_VERSION_BEFORE_ASSIGNMENTS =>
                {
                    header_seen = true;
                    before_assignments = version == FORMAT_VERSION_BEFORE_ASSIGNMENTS;
                    before_object_workspaces =
                        version < FORMAT_VERSION_BEFORE_WORKSPACE_ENTITLEMENTS;
                    before_workspace_entitlements =
                        version < FORMAT_VERSION_BEFORE_OBJECT_NAMESPACES;
                    before_object_namespaces = version < FORMAT_VERSION;
                    continue;
                }
                Line::Header { version } => {
                    return Err(TransferError::Malformed {
                        line: number,
                        message: format!(
                            "export format version {version}; this build reads version {FORMAT_VERSION}"
                        ),
                    })
                }
                _ => {
                    return Err(TransferError::Malformed {
                        line: number,
                        message: format!(
                            "the first line must be {{\"type\":\"{FORMAT_TAG}\",\"version\":{FORMAT_VERSION}}}"
                        ),
                    })
                }
            }
        }
        let malformed = |message: String| TransferError::Malformed {
            line: number,
            message,
        };
        let Some((account, mut record)) = line.into_record().map_err(malformed)? else {
            return Err(malformed("a second header line".into()));
        };
        if before_object_namespaces {
            match &mut record {
                ImportRecord::Account(_) => object_workspaces.clear(),
                ImportRecord::Object(object)
                    if !object.object_type.in_workspace_tree()
                        && !object.object_id.contains('/') =>
                {
                    object_workspaces.insert(
                        (object.object_type, object.object_id.clone()),
                        object.workspace.clone(),
                    );
                    object.object_id =
                        object_id_in(&object.workspace, object.object_type, &object.object_id);
                }
                ImportRecord::Acl(acl) => {
                    let key = (acl.object_type, acl.object_id.clone());
                    if let Some(workspace) = object_workspaces.get(&key) {
                        acl.object_id = object_id_in(workspace, acl.object_type, &acl.object_id);
                    }
                }
                _ => {}
            }
        }
        let starts_account = matches!(record, ImportRecord::Account(_));
        if starts_account {
            if known.contains(&account) {
                return Err(TransferError::AccountExists {
                    line: number,
                    account,
                });
            }
            if let Some(done) = batch.take() {
                commit(store, done, &mut summary, progress).await?;
            }
            known.insert(account.clone());
            summary.accounts.push(account.clone());
            workspaces.clear();
            batch = Some(Batch {
                account,
                first_line: number,
                last_line: number,
                records: vec![record],
            });
            continue;
        }
        let Some(current) = batch.as_mut().filter(|batch| batch.account == account) else {
            return Err(malformed(format!(
                "a record of account {account} outside that account's section \
                 (its account record must come first, and an account's records together)"
            )));
        };
        if current.records.is_empty() {
            current.first_line = number;
        }
        current.last_line = number;
        let implied: Vec<ImportRecord> = match &record {
            ImportRecord::Workspace(workspace) => {
                workspaces.push(workspace.id.clone());
                Vec::new()
            }
            ImportRecord::Principal(principal) => {
                let mut implied = Vec::new();
                if before_assignments && !principal.system {
                    implied.extend(workspaces.iter().map(|workspace| {
                        ImportRecord::Assignment(AssignmentRow {
                            workspace: workspace.clone(),
                            principal: principal.id.clone(),
                            permission: WorkspacePermission::User,
                        })
                    }));
                }
                let document_entitlements = principal
                    .attributes
                    .get("entitlements")
                    .and_then(Value::as_array)
                    .filter(|values| !values.is_empty());
                if let (true, Some(values)) = (before_workspace_entitlements, document_entitlements)
                {
                    implied.extend(workspaces.iter().map(|workspace| {
                        ImportRecord::Entitlements(EntitlementRow {
                            workspace: workspace.clone(),
                            principal: principal.id.clone(),
                            entitlements: values.clone(),
                        })
                    }));
                }
                implied
            }
            _ => Vec::new(),
        };
        current.records.push(record);
        current.records.extend(implied);
        if current.records.len() >= batch_size {
            let next = Batch {
                account: current.account.clone(),
                first_line: number + 1,
                last_line: number,
                records: Vec::with_capacity(batch_size.min(DEFAULT_IMPORT_BATCH)),
            };
            if let Some(full) = batch.replace(next) {
                commit(store, full, &mut summary, progress).await?;
            }
        }
    }
    if !header_seen {
        return Err(TransferError::Malformed {
            line: number.max(1),
            message: "no records: the input is empty, not a scimitar export".into(),
        });
    }
    if let Some(last) = batch.take() {
        commit(store, last, &mut summary, progress).await?;
    }
    Ok(summary)
}

async fn commit(
    store: &dyn Store,
    batch: Batch,
    summary: &mut ImportSummary,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(), TransferError> {
    if batch.records.is_empty() {
        return Ok(());
    }
    let count = u64::try_from(batch.records.len()).unwrap_or(u64::MAX);
    store
        .apply(&batch.account, Change::Import(batch.records))
        .await
        .map_err(|error| TransferError::Refused {
            first_line: batch.first_line,
            last_line: batch.last_line,
            error,
        })?;
    summary.records += count;
    summary.batches += 1;
    progress(&Progress {
        account: batch.account,
        records: summary.records,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_record_survives_its_line() {
        let account = AccountId::new("a");
        let records = vec![
            ImportRecord::Account(Account {
                id: account.clone(),
                name: "first".into(),
                created: Timestamp::from_micros(1_234_567),
            }),
            ImportRecord::Token(TokenRow {
                token: Token {
                    id: "t".into(),
                    account: account.clone(),
                    principal: PrincipalId::new("u"),
                    scope: TokenScope::AllApis,
                    comment: Some("ci".into()),
                    created: Timestamp::from_micros(-5),
                    expires: Some(Timestamp::from_micros(9)),
                    workspace: None,
                    created_by: None,
                },
                digest: "00ff".into(),
                revoked: None,
                last_used: None,
            }),
            ImportRecord::Object(ObjectRow {
                object_type: ObjectType::Tokens,
                object_id: "tokens".into(),
                directory: None,
                path: None,
                language: None,
                workspace: WorkspaceId::new("7"),
            }),
            ImportRecord::Object(ObjectRow {
                object_type: ObjectType::Notebooks,
                object_id: "1000000000000042".into(),
                directory: Some("1000000000000041".into()),
                path: Some("/Shared/reports/daily".into()),
                language: Some("PYTHON".into()),
                workspace: WorkspaceId::new("7"),
            }),
            ImportRecord::Assignment(AssignmentRow {
                workspace: WorkspaceId::new("7"),
                principal: PrincipalId::new("u"),
                permission: WorkspacePermission::Admin,
            }),
            ImportRecord::RuleSet {
                rule_set: crate::RuleSetRows {
                    resource: "groups/g".into(),
                    target: Some(PrincipalId::new("g")),
                    grants: vec![("roles/group.manager".into(), PrincipalId::new("u"))],
                },
                version: 3,
            },
            ImportRecord::RuleSet {
                rule_set: crate::RuleSetRows {
                    resource: "account".into(),
                    target: None,
                    grants: vec![],
                },
                version: 1,
            },
            ImportRecord::Entitlements(EntitlementRow {
                workspace: WorkspaceId::new("7"),
                principal: PrincipalId::new("u"),
                entitlements: vec![serde_json::json!({"value": "allow-cluster-create"})],
            }),
        ];
        for record in records {
            let text = serde_json::to_string(&Line::of(&account, &record)).unwrap();
            let line: Line = serde_json::from_str(&text).unwrap();
            assert_eq!(line.into_record().unwrap(), Some((account.clone(), record)));
        }
    }

    #[test]
    fn the_header_is_the_documented_line() {
        let text = serde_json::to_string(&Line::Header {
            version: FORMAT_VERSION,
        })
        .unwrap();
        assert_eq!(text, r#"{"type":"scimitar-export","version":5}"#);
    }
}
