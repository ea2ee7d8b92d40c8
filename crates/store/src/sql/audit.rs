//! The audit trail's SQL, written once for both backends: what each [`Change`] records (its
//! service and action in Databricks' vocabulary, its parameters without secrets, and what it
//! touched, with a principal's attributes before and after), and the append that numbers the
//! event and writes it, with its Merkle leaf, into its account's trail, inside the change's own
//! transaction. Reads of the trail for proofs, checkpoints and verification.
//!
//! Order: the head row is updated first (`UPDATE ... SET size = size + 1`), which on PostgreSQL
//! locks it until commit, so a second writer of the same account waits and then reads the
//! committed size: sequence numbers follow commit order per account, as the access log's do
//! globally. The head is taken after every other lock a change takes and before the access
//! log's advisory lock, always in that order, so no two writers wait on each other in a cycle.
//! The event's text is serialized before, around the position it will take; the database joins
//! them and hashes the leaf, so nothing inside the head's lock waits for the client. The head's
//! frontier is folded forward every [`FOLD_EVERY`] events rather than on each.

use crate::audit::{
    hash_from_hex, AuditContext, AuditEvent, AuditHead, AuditKeySeed, AuditResponse, AuditTarget,
    ModifiedProperty, StoredAuditEvent, AUDIT_EVENT_VERSION,
};
use crate::change::Change;
use crate::governance::GovernanceChange;
use crate::sql::read::to_i64;
use crate::sql::transaction::{params, query_opt, SqlStatement, SqlTransaction};
use scimitar_audit::{merkle, Frontier, Hash};
use scimitar_domain::ids::lower_hex;
use scimitar_domain::patch::MembershipStep;
use scimitar_domain::{AccountId, Principal, PrincipalKind, ScimError, ScimResult};
use serde_json::{json, Map, Value};

/// Attributes never copied into the trail, whatever a document holds.
const SECRET_ATTRIBUTES: &[&str] = &["password"];

/// What a change records, before the context and position are added.
pub(crate) struct Description {
    pub(crate) service_name: String,
    pub(crate) action_name: String,
    pub(crate) request_params: Map<String, Value>,
    pub(crate) targets: Vec<AuditTarget>,
    /// The answer: 200 for a change (it committed), the refusal's status for a refusal.
    pub(crate) response: AuditResponse,
}

/// The answer every committed change records.
pub(crate) fn committed() -> AuditResponse {
    AuditResponse {
        status_code: 200,
        error_message: None,
    }
}

/// What a refused request records: what the edge saw, as it saw it.
fn refusal_description(refusal: &crate::audit::Refusal) -> Description {
    Description {
        service_name: refusal.service_name.clone(),
        action_name: refusal.action_name.clone(),
        request_params: refusal.request_params.clone(),
        targets: Vec::new(),
        response: AuditResponse {
            status_code: refusal.status_code,
            error_message: refusal.error_message.clone(),
        },
    }
}

/// What the change will overwrite or delete, read in its transaction before it is applied:
/// the principal an update or delete is about (in the workspace an update comes through, so
/// its entitlements there are compared too).
pub(crate) async fn before<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    change: &Change,
) -> ScimResult<Option<Principal>> {
    match change {
        Change::UpdatePrincipal {
            principal,
            workspace: Some(workspace),
            ..
        } => crate::sql::read::principal_in(transaction, account, workspace, &principal.id).await,
        Change::UpdatePrincipal { principal, .. } => {
            crate::sql::read::principal(transaction, account, &principal.id).await
        }
        Change::DeletePrincipal { id, .. } => {
            crate::sql::read::principal(transaction, account, id).await
        }
        _ => Ok(None),
    }
}

fn kind_name(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "User",
        PrincipalKind::Group => "Group",
        PrincipalKind::ServicePrincipal => "ServicePrincipal",
    }
}

/// The name a principal is shown by: `userName`, `displayName`, or `applicationId`.
fn display_name(principal: &Principal) -> Option<String> {
    ["userName", "displayName", "applicationId"]
        .iter()
        .find_map(|name| principal.string_attribute(name))
        .map(str::to_string)
}

/// Entra's `modifiedProperties`: each top-level attribute whose value differs, old and new
/// (`null` for absent). Secrets are left out; the password hash is not an attribute at all.
fn modified_properties(
    before: Option<&Principal>,
    after: Option<&Principal>,
) -> Vec<ModifiedProperty> {
    let empty = Map::new();
    let old = before.map_or(&empty, |principal| &principal.attributes);
    let new = after.map_or(&empty, |principal| &principal.attributes);
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| !SECRET_ATTRIBUTES.contains(&name.as_str()))
        .filter_map(|name| {
            let (old_value, new_value) = (old.get(name), new.get(name));
            (old_value != new_value).then(|| ModifiedProperty {
                display_name: name.clone(),
                old_value: old_value.cloned().unwrap_or(Value::Null),
                new_value: new_value.cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

fn principal_target(
    principal: &Principal,
    before: Option<&Principal>,
    after: Option<&Principal>,
) -> AuditTarget {
    AuditTarget {
        kind: kind_name(principal.kind).to_string(),
        id: principal.id.to_string(),
        display_name: display_name(principal),
        modified_properties: modified_properties(before, after),
    }
}

pub(crate) fn target(kind: &str, id: &str) -> AuditTarget {
    AuditTarget {
        kind: kind.to_string(),
        id: id.to_string(),
        display_name: None,
        modified_properties: Vec::new(),
    }
}

pub(crate) fn params_of(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => Map::from_iter([("value".to_string(), other)]),
    }
}

/// A group's membership steps as `{"op", "members"}` objects: the member and the group of
/// each membership change (the group is the event's target).
fn membership_params(steps: &[MembershipStep]) -> Vec<Value> {
    steps
        .iter()
        .map(|step| match step {
            MembershipStep::Add(members) => json!({
                "op": "add",
                "members": members.iter().map(|member| member.id.as_str()).collect::<Vec<_>>(),
            }),
            MembershipStep::Remove(ids) => json!({
                "op": "remove",
                "members": ids.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
            }),
            MembershipStep::RemoveAll => json!({"op": "remove_all"}),
            MembershipStep::ReplaceAll(members) => json!({
                "op": "replace",
                "members": members.iter().map(|member| member.id.as_str()).collect::<Vec<_>>(),
            }),
            MembershipStep::RemoveMatching(_) => json!({"op": "remove_matching"}),
        })
        .collect()
}

/// The ids of the members a membership change adds or removes by name, each once.
fn moved_members(steps: &[MembershipStep]) -> Vec<&str> {
    let mut moved: Vec<&str> = Vec::new();
    for step in steps {
        let ids: Vec<&str> = match step {
            MembershipStep::Add(members) | MembershipStep::ReplaceAll(members) => {
                members.iter().map(|member| member.id.as_str()).collect()
            }
            MembershipStep::Remove(ids) => ids.iter().map(|id| id.as_str()).collect(),
            MembershipStep::RemoveAll | MembershipStep::RemoveMatching(_) => Vec::new(),
        };
        for id in ids {
            if !moved.contains(&id) {
                moved.push(id);
            }
        }
    }
    moved
}

/// What a change records; `None` for the writes that are bookkeeping rather than state anyone
/// made: when tokens were last used, the deployment's checkpoint key, and an account's OAuth
/// signing keys (made by whichever node signs first after a rotation period), and sync jobs' state
/// (a run appends the events of its own actions instead: [`append_sync_events`]).
pub(crate) fn describe(change: &Change, before: Option<&Principal>) -> Option<Description> {
    let described = |service_name: &str, action_name: &str, request_params, targets| Description {
        service_name: service_name.to_string(),
        action_name: action_name.to_string(),
        request_params,
        targets,
        response: committed(),
    };
    Some(match change {
        // Refusals are appended one event each by `append_refusals`, not described here.
        Change::TokensUsed(_)
        | Change::EnsureAuditKey { .. }
        | Change::AddSigningKey(_)
        | Change::RecordSyncRun(_)
        | Change::SyncLease(_)
        | Change::RecordExchangedToken(_)
        | Change::RecordRefusals(_) => return None,
        Change::PruneAuditTrail { before } => described(
            "audit",
            "pruneAuditEvents",
            params_of(json!({"before": before.to_rfc3339()})),
            Vec::new(),
        ),
        // Which policy and what it accepts; an inline key set is named, not copied.
        Change::CreateFederationPolicy(policy) | Change::UpdateFederationPolicy(policy) => {
            let action = match change {
                Change::CreateFederationPolicy(_) => "createFederationPolicy",
                _ => "updateFederationPolicy",
            };
            let mut targets = vec![target("FederationPolicy", &policy.uid)];
            if let Some(principal) = &policy.service_principal {
                targets.insert(0, target("ServicePrincipal", principal.as_str()));
            }
            described(
                "accounts",
                action,
                params_of(json!({
                    "policyId": policy.policy_id,
                    "uid": policy.uid,
                    "servicePrincipalId": policy.service_principal.as_ref().map(|p| p.as_str()),
                    "issuer": policy.oidc.issuer,
                    "audiences": policy.oidc.audiences,
                    "subject": policy.oidc.subject,
                    "subjectClaim": policy.oidc.subject_claim,
                    "jwksUri": policy.oidc.jwks_uri,
                    "inlineJwks": policy.oidc.jwks_json.is_some(),
                })),
                targets,
            )
        }
        Change::DeleteFederationPolicy { uid } => described(
            "accounts",
            "deleteFederationPolicy",
            params_of(json!({"uid": uid})),
            vec![target("FederationPolicy", uid)],
        ),
        Change::Alerts(change) => return crate::sql::alerts::describe(change),
        // The secret's digest stays out: only which principal, which secret, and its limits.
        Change::CreateOAuthSecret { secret, .. } => described(
            "accounts",
            "createServicePrincipalSecret",
            params_of(json!({
                "servicePrincipalId": secret.principal.as_str(),
                "secretId": secret.id,
                "scopes": secret.scopes,
                "expires": secret.expires.map(|expires| expires.to_rfc3339()),
            })),
            vec![
                target("ServicePrincipal", secret.principal.as_str()),
                target("OAuthSecret", &secret.id),
            ],
        ),
        Change::DeleteOAuthSecret { principal, id } => described(
            "accounts",
            "deleteServicePrincipalSecret",
            params_of(json!({"servicePrincipalId": principal.as_str(), "secretId": id})),
            vec![
                target("ServicePrincipal", principal.as_str()),
                target("OAuthSecret", id),
            ],
        ),
        Change::CreateAccount {
            account,
            workspace,
            system_groups,
            first_admin,
            ..
        } => {
            let mut targets = vec![
                AuditTarget {
                    display_name: Some(account.name.clone()),
                    ..target("Account", account.id.as_str())
                },
                AuditTarget {
                    display_name: Some(workspace.name.clone()),
                    ..target("Workspace", workspace.id.as_str())
                },
            ];
            targets.extend(
                system_groups
                    .iter()
                    .map(|group| principal_target(group, None, Some(group))),
            );
            if let Some(first) = first_admin {
                targets.push(principal_target(&first.user, None, Some(&first.user)));
            }
            let params =
                json!({"account_name": account.name, "workspace_id": workspace.id.as_str()});
            described("accounts", "createAccount", params_of(params), targets)
        }
        Change::CreatePrincipal {
            principal,
            members,
            assign_to,
        } => {
            let action = match principal.kind {
                PrincipalKind::User => "add",
                PrincipalKind::Group => "createGroup",
                PrincipalKind::ServicePrincipal => "addServicePrincipal",
            };
            let mut params = json!({
                "targetUserId": principal.id.as_str(),
                "targetUserName": display_name(principal),
                "endpoint": "scim",
            });
            if !members.is_empty() {
                params["members"] = json!(members
                    .iter()
                    .map(|member| member.id.as_str())
                    .collect::<Vec<_>>());
            }
            if let Some(workspace) = assign_to {
                params["workspace_id"] = json!(workspace.as_str());
            }
            let targets = vec![principal_target(principal, None, Some(principal))];
            described("accounts", action, params_of(params), targets)
        }
        Change::UpdatePrincipal {
            principal,
            membership,
            ..
        } => {
            let target = principal_target(principal, before, Some(principal));
            // A change of membership alone reads as Databricks names it; anything else is an
            // update of the principal, its membership steps among its parameters.
            let action = match (target.modified_properties.is_empty(), membership.as_slice()) {
                (true, [MembershipStep::Add(_)]) => "addPrincipalToGroup",
                (true, [MembershipStep::Remove(_)]) => "removePrincipalFromGroup",
                _ => match principal.kind {
                    PrincipalKind::User => "updateUser",
                    PrincipalKind::Group => "updateGroup",
                    PrincipalKind::ServicePrincipal => "updateServicePrincipal",
                },
            };
            let mut params = json!({"endpoint": "scim"});
            let mut targets = vec![target];
            if membership.is_empty() {
                params["targetUserId"] = json!(principal.id.as_str());
                params["targetUserName"] = json!(display_name(principal));
            } else {
                // As Databricks names a membership change: the group, and the member when
                // there is one; every member moved is a target too, so that the events that
                // changed a principal's groups are found by that principal.
                params["targetGroupId"] = json!(principal.id.as_str());
                params["targetGroupName"] = json!(display_name(principal));
                params["membership"] = Value::Array(membership_params(membership));
                let moved = moved_members(membership);
                if let [only] = moved.as_slice() {
                    params["targetUserId"] = json!(only);
                }
                targets.extend(moved.iter().map(|member| self::target("Principal", member)));
            }
            described("accounts", action, params_of(params), targets)
        }
        Change::DeletePrincipal { id, .. } => {
            let (action, targets) = match before {
                Some(old) => {
                    let action = match old.kind {
                        PrincipalKind::Group => "removeGroup",
                        _ => "delete",
                    };
                    (action, vec![principal_target(old, Some(old), None)])
                }
                None => ("delete", vec![target("Principal", id.as_str())]),
            };
            let params = json!({"targetUserId": id.as_str()});
            described("accounts", action, params_of(params), targets)
        }
        Change::CreateToken { token, .. } => described(
            "accounts",
            "generateDbToken",
            token_params(token),
            vec![target("Token", &token.id)],
        ),
        Change::DeleteToken { id } => described(
            "accounts",
            "revokeDbToken",
            params_of(json!({"tokenId": id})),
            vec![target("Token", id)],
        ),
        Change::RotateToken {
            id,
            expires,
            replacement,
        } => {
            let mut params = token_params(&replacement.token);
            params.insert("rotatedTokenId".into(), json!(id));
            params.insert("rotatedTokenExpires".into(), json!(expires.to_rfc3339()));
            let targets = vec![target("Token", id), target("Token", &replacement.token.id)];
            described("accounts", "rotateDbToken", params, targets)
        }
        Change::SetWorkspaceSettings { workspace, values } => {
            let values: Map<String, Value> = values
                .iter()
                .map(|(key, value)| (key.clone(), json!(value)))
                .collect();
            let params = json!({"workspace_id": workspace.as_str(), "values": values});
            described(
                "workspace",
                "workspaceConfEdit",
                params_of(params),
                vec![target("Workspace", workspace.as_str())],
            )
        }
        Change::Governance(change) => governance(None, std::slice::from_ref(change)),
        Change::GovernanceBatch(changes) => governance(None, changes),
        Change::WorkspaceObjects { workspace, changes } => {
            governance(Some(workspace.as_str()), changes)
        }
        Change::CreateWorkspace { workspace, .. } => {
            let params = json!({"workspace_name": workspace.name, "deployment_name": workspace.deployment_name});
            let targets = vec![AuditTarget {
                display_name: Some(workspace.name.clone()),
                ..target("Workspace", workspace.id.as_str())
            }];
            described("accounts", "createWorkspace", params_of(params), targets)
        }
        Change::UpdateWorkspace(workspace) => {
            let params = json!({"workspace_name": workspace.name, "deployment_name": workspace.deployment_name});
            let targets = vec![AuditTarget {
                display_name: Some(workspace.name.clone()),
                ..target("Workspace", workspace.id.as_str())
            }];
            described("accounts", "updateWorkspace", params_of(params), targets)
        }
        Change::DeleteWorkspace { id } => described(
            "accounts",
            "deleteWorkspace",
            params_of(json!({"workspace_id": id.as_str()})),
            vec![target("Workspace", id.as_str())],
        ),
        Change::AssignToWorkspace {
            workspace,
            principal,
            permission,
        } => {
            let action = match permission {
                Some(_) => "updatePermissionAssignment",
                None => "deletePermissionAssignment",
            };
            let params = json!({
                "workspace_id": workspace.as_str(),
                "principal_id": principal.as_str(),
                "permissions": permission.map(|permission| permission.as_str()),
            });
            let targets = vec![
                target("Workspace", workspace.as_str()),
                target("Principal", principal.as_str()),
            ];
            described("accounts", action, params_of(params), targets)
        }
        Change::Import(records) => described(
            "accounts",
            "import",
            params_of(json!({"records": records.len()})),
            Vec::new(),
        ),
        Change::ReplaceRuleSet {
            rule_set,
            expected_version,
        } => {
            let grants: Vec<Value> = rule_set
                .grants
                .iter()
                .map(|(role, holder)| json!({"role": role, "principal": holder.as_str()}))
                .collect();
            let params = json!({
                "name": rule_set.resource,
                "expected_version": expected_version,
                "grant_rules": grants,
            });
            described(
                "accounts",
                "updateRuleSet",
                params_of(params),
                vec![target("RuleSet", &rule_set.resource)],
            )
        }
    })
}

/// A token's description, without its secret or digest (neither is in `Token`).
fn token_params(token: &scimitar_domain::credentials::Token) -> Map<String, Value> {
    params_of(json!({
        "tokenId": token.id,
        "principal_id": token.principal.as_str(),
        "comment": token.comment,
        "expires": token.expires.map(|expires| expires.to_rfc3339()),
        "workspace_id": token.workspace.as_ref().map(|workspace| workspace.as_str()),
        "created_by": token.created_by.as_ref().map(|principal| principal.as_str()),
    }))
}

/// Unity Catalog and workspace-object changes. A grant or revoke reads as Databricks'
/// `updatePermissions` with its `changes: [{principal, add, remove}]`, the privileges added
/// and removed; an ACL as `changePermissions`. Every change's own serde form (the access
/// log's, which holds no secret) is kept in `request_params.changes`.
fn governance(workspace: Option<&str>, changes: &[GovernanceChange]) -> Description {
    let mut targets = Vec::new();
    let mut serialized = Vec::new();
    let mut actions: Vec<&'static str> = Vec::new();
    for change in changes {
        let (action, kind, id): (&'static str, String, String) = match change {
            GovernanceChange::CreateSecurable {
                securable_type,
                full_name,
                ..
            } => (
                "createSecurable",
                securable_type.to_string(),
                full_name.clone(),
            ),
            GovernanceChange::DropSecurable {
                securable_type,
                full_name,
            } => (
                "deleteSecurable",
                securable_type.to_string(),
                full_name.clone(),
            ),
            GovernanceChange::SetOwner {
                securable_type,
                full_name,
                ..
            } => (
                "changeSecurableOwner",
                securable_type.to_string(),
                full_name.clone(),
            ),
            GovernanceChange::RenameSecurable {
                securable_type,
                full_name,
                ..
            } => (
                "renameSecurable",
                securable_type.to_string(),
                full_name.clone(),
            ),
            GovernanceChange::SetComment {
                securable_type,
                full_name,
                ..
            } => (
                "updateSecurable",
                securable_type.to_string(),
                full_name.clone(),
            ),
            GovernanceChange::Grant {
                securable_type,
                full_name,
                ..
            }
            | GovernanceChange::Revoke {
                securable_type,
                full_name,
                ..
            } => (
                "updatePermissions",
                securable_type.to_string(),
                full_name.clone(),
            ),
            GovernanceChange::SetObjectAcl {
                object_type,
                object_id,
                ..
            } => (
                "changePermissions",
                object_type.to_string(),
                object_id.clone(),
            ),
            GovernanceChange::SetObjectParent {
                object_type,
                object_id,
                ..
            } => ("moveObject", object_type.to_string(), object_id.clone()),
            GovernanceChange::CreateWorkspaceEntry { entry } => (
                "createObject",
                entry.object_type.to_string(),
                entry.object_id.clone(),
            ),
            GovernanceChange::RemoveObject {
                object_type,
                object_id,
            } => ("deleteObject", object_type.to_string(), object_id.clone()),
            GovernanceChange::SetIsolationMode { catalog, .. } => {
                ("updateCatalog", "CATALOG".to_string(), catalog.clone())
            }
            GovernanceChange::BindWorkspace { catalog, .. } => (
                "updateWorkspaceBindings",
                "CATALOG".to_string(),
                catalog.clone(),
            ),
            // A precondition of the batch it is in, which writes nothing of its own.
            GovernanceChange::ExpectObjectAcl { .. } => continue,
        };
        // `SetComment` is not part of the access log's serde form; its comment is described
        // here instead.
        serialized.push(match change {
            GovernanceChange::SetComment {
                securable_type,
                full_name,
                comment,
            } => json!({
                "event": "set_comment",
                "securable_type": securable_type.to_string(),
                "full_name": full_name,
                "comment": comment,
            }),
            GovernanceChange::CreateWorkspaceEntry { entry } => json!({
                "event": "create_workspace_entry",
                "object_type": entry.object_type.to_string(),
                "object_id": entry.object_id,
                "path": entry.path,
                "directory": entry.directory,
                "language": entry.language,
            }),
            GovernanceChange::Grant {
                principal,
                privileges,
                ..
            } => json!({
                "principal": principal.as_str(),
                "add": privileges.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "remove": [],
            }),
            GovernanceChange::Revoke {
                principal,
                privileges,
                ..
            } => json!({
                "principal": principal.as_str(),
                "add": [],
                "remove": privileges.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            other => serde_json::to_value(other).unwrap_or(Value::Null),
        });
        if !actions.contains(&action) {
            actions.push(action);
        }
        if !targets
            .iter()
            .any(|existing: &AuditTarget| existing.kind == kind && existing.id == id)
        {
            targets.push(target(&kind, &id));
        }
    }
    let action_name = match actions.as_slice() {
        [one] => (*one).to_string(),
        _ => "batchUpdate".to_string(),
    };
    let service_name = match workspace {
        Some(_) => "workspace",
        None => "unityCatalog",
    };
    let mut params = json!({"changes": serialized});
    if let Some(workspace) = workspace {
        params["workspace_id"] = json!(workspace);
    }
    Description {
        service_name: service_name.to_string(),
        action_name,
        request_params: params_of(params),
        targets,
        response: committed(),
    }
}

/// How often an append brings the head's stored frontier up to the trail's end: at every
/// multiple of this position. In between, a reader of the head folds the leaves after the
/// stored frontier itself (fewer than this many), and appends leave the frontier alone.
pub(crate) const FOLD_EVERY: u64 = 1024;

/// Takes the account's next position and locks its head until commit (PostgreSQL); no row when
/// the account has no head yet.
const NEXT_POSITION: &str =
    "UPDATE audit_heads SET size = size + 1 WHERE account_id = $1 RETURNING size";

/// Writes the event at the position just taken: its text joined around the position, its leaf
/// hashed by the database from that text (`scimitar_audit_leaf`, see the migrations). Runs
/// after [`NEXT_POSITION`] in the same transaction, which sees the head's new size.
const INSERT_EVENT: &str =
    "INSERT INTO audit_events (account_id, seq, event_time, action_name, event, leaf) \
     SELECT account_id, size, time, action, event, scimitar_audit_leaf(event) FROM \
     (SELECT account_id, size, CAST($2 AS BIGINT) AS time, CAST($3 AS TEXT) AS action, \
     CAST($4 AS TEXT) || CAST(size AS TEXT) || CAST($5 AS TEXT) AS event \
     FROM audit_heads WHERE account_id = $1) AS next";

/// An event described and serialized but for its position, which it takes only when its
/// statements run ([`PendingEvent::statements`]), as the change's last writes.
pub(crate) struct PendingEvent {
    account: String,
    time: Option<i64>,
    action_name: String,
    /// The event's text serialized with position 0, which the statements leave out: the text
    /// before `seq_at` and after the `0` there, bound as they are rather than copied apart.
    text: String,
    seq_at: usize,
}

impl PendingEvent {
    /// Taking the position, then writing the event there. Neither needs the other's answer
    /// on the client, so a backend sends both at once (with the access log's writes): the
    /// head stays locked for one round trip and the commit, where it was locked for two.
    pub(crate) fn statements(&self) -> [SqlStatement<'_>; 2] {
        [
            SqlStatement {
                sql: NEXT_POSITION,
                params: params![self.account.as_str()].to_vec(),
            },
            SqlStatement {
                sql: INSERT_EVENT,
                params: params![
                    self.account.as_str(),
                    self.time,
                    self.action_name.as_str(),
                    &self.text[..self.seq_at],
                    &self.text[self.seq_at + 1..]
                ]
                .to_vec(),
            },
        ]
    }

    /// What follows the statements, given what [`NEXT_POSITION`] answered: for the account's
    /// first event, the head made and the event appended again; at every [`FOLD_EVERY`]th
    /// position, the head's frontier brought up to date.
    pub(crate) async fn complete<T: SqlTransaction>(
        &self,
        transaction: &mut T,
        position: Vec<crate::sql::transaction::SqlRow>,
    ) -> ScimResult<()> {
        let seq = match position.into_iter().next() {
            Some(row) => row.integer(0)?,
            None => {
                let empty_root = lower_hex(&merkle::empty_root());
                transaction
                    .execute(
                        "INSERT INTO audit_heads (account_id, size, folded_size, frontier, root) \
                         VALUES ($1, 0, 0, '', $2) ON CONFLICT (account_id) DO NOTHING",
                        params![self.account.as_str(), empty_root.as_str()],
                    )
                    .await?;
                let [next, insert] = self.statements();
                let row = query_opt(transaction, next.sql, &next.params)
                    .await?
                    .ok_or_else(|| {
                        ScimError::internal(
                            "the account's audit head vanished inside its transaction",
                        )
                    })?;
                transaction.execute(insert.sql, &insert.params).await?;
                row.integer(0)?
            }
        };
        let seq =
            u64::try_from(seq).map_err(|_| ScimError::internal("a negative audit trail size"))?;
        if seq % FOLD_EVERY == 0 {
            fold(transaction, &AccountId::new(self.account.clone())).await?;
        }
        Ok(())
    }
}

/// Describes the event of a change for its account's trail: its text, with every field but
/// its position, which [`PendingEvent::statements`] take when they run.
pub(crate) fn append(
    account: &AccountId,
    context: &AuditContext,
    description: Description,
) -> ScimResult<PendingEvent> {
    // Serialized with position 0, then cut around it: the text is exactly what serializing
    // it with its position would give, so verifiers recompute it from the event alone.
    let event = AuditEvent {
        version: AUDIT_EVENT_VERSION,
        account_id: account.to_string(),
        seq: 0,
        event_id: context.event_id.clone(),
        event_time: context.event_time.map(|time| time.to_rfc3339()),
        workspace_id: context.workspace_id.as_ref().map(ToString::to_string),
        user_identity: context.user_identity.clone(),
        source_ip_address: context.source_ip_address.clone(),
        user_agent: context.user_agent.clone(),
        request_id: context.request_id.clone(),
        service_name: description.service_name,
        action_name: description.action_name,
        request_params: description.request_params,
        response: description.response,
        targets: description.targets,
    };
    // Sized for a typical event (a created user's is about 1.3 KB), so the text is not
    // copied again as it grows.
    let mut bytes = Vec::with_capacity(2048);
    serde_json::to_writer(&mut bytes, &event)
        .map_err(|error| ScimError::internal_caused_by("an audit event as JSON", error))?;
    let text = String::from_utf8(bytes)
        .map_err(|error| ScimError::internal_caused_by("an audit event as JSON", error))?;
    let account_json = serde_json::to_string(account.as_str())
        .map_err(|error| ScimError::internal_caused_by("an account id as JSON", error))?;
    let before =
        format!("{{\"version\":{AUDIT_EVENT_VERSION},\"account_id\":{account_json},\"seq\":");
    let seq_at = before.len();
    let cut_around_position = text
        .strip_prefix(before.as_str())
        .is_some_and(|rest| rest.starts_with("0,"));
    if !cut_around_position {
        return Err(ScimError::internal(
            "an audit event's text does not start with its account and position",
        ));
    }
    Ok(PendingEvent {
        account: account.to_string(),
        time: context.event_time.map(|time| time.as_micros()),
        text,
        seq_at,
        action_name: event.action_name,
    })
}

/// The account's head with its frontier folded up to its size: the stored frontier (of the
/// first `folded_size` events) and the leaves after it, read in one statement so that they
/// agree. `None` when the account has no event yet.
async fn folded<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Option<Frontier>> {
    let mut rows = session
        .query(
            "SELECT h.size, h.folded_size, h.frontier, e.leaf FROM audit_heads h \
             LEFT JOIN audit_events e ON e.account_id = h.account_id AND e.seq > h.folded_size \
             AND e.seq <= h.size WHERE h.account_id = $1 ORDER BY e.seq",
            params![account.as_str()],
        )
        .await?;
    let Some(first) = rows.first_mut() else {
        return Ok(None);
    };
    let size = u64::try_from(first.integer(0)?)
        .map_err(|_| ScimError::internal("a negative audit trail size"))?;
    let folded_size = u64::try_from(first.integer(1)?)
        .map_err(|_| ScimError::internal("a negative folded audit size"))?;
    let mut frontier = frontier_from_text(folded_size, &first.text(2)?)?;
    // Every row repeats the head; its last column is one leaf after the folded frontier
    // (null when there is none).
    for mut row in rows {
        if let Some(text) = row.optional_text(3)? {
            let hash = hash_from_hex(&text)
                .ok_or_else(|| ScimError::internal("a stored audit leaf is not hex"))?;
            frontier.push(hash);
        }
    }
    if frontier.size() != size {
        return Err(ScimError::internal(format!(
            "the audit head counts {size} events, but events after {folded_size} are missing: \
             the trail holds {}",
            frontier.size()
        )));
    }
    Ok(Some(frontier))
}

/// Stores the head's frontier and root folded up to its size (the head locked: an append's
/// transaction, or a prune's).
async fn fold<T: SqlTransaction>(transaction: &mut T, account: &AccountId) -> ScimResult<()> {
    let Some(frontier) = folded(transaction, account).await? else {
        return Ok(());
    };
    let text = frontier_to_text(&frontier);
    let root = lower_hex(&frontier.root());
    transaction
        .execute(
            "UPDATE audit_heads SET folded_size = $2, frontier = $3, root = $4 \
             WHERE account_id = $1",
            params![
                account.as_str(),
                to_i64(frontier.size()),
                text.as_str(),
                root.as_str()
            ],
        )
        .await?;
    Ok(())
}

/// Appends one event per refused request to the account's trail, in order, inside one
/// transaction (the batch writer's).
pub(crate) async fn append_refusals<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    refusals: &[crate::audit::Refusal],
) -> ScimResult<()> {
    for refusal in refusals {
        let event = append(account, &refusal.context, refusal_description(refusal))?;
        let [next, insert] = event.statements();
        let position = transaction.query(next.sql, &next.params).await?;
        transaction.execute(insert.sql, &insert.params).await?;
        event.complete(transaction, position).await?;
    }
    Ok(())
}

/// Appends a sync run's events to the trail of the account its job is attributed to, in order,
/// inside the transaction that records the run, each under the service `sync`: each event's
/// two statements (its position, its row) then its completion, as [`append_refusals`] does.
pub(crate) async fn append_sync_events<T: SqlTransaction>(
    transaction: &mut T,
    audit: &crate::SyncAudit,
) -> ScimResult<()> {
    for event in &audit.events {
        let description = Description {
            service_name: "sync".to_string(),
            action_name: event.action_name.clone(),
            request_params: event.request_params.clone(),
            targets: event.targets.clone(),
            response: AuditResponse {
                status_code: event.status_code,
                error_message: event.error_message.clone(),
            },
        };
        let pending = append(&audit.account, &event.context, description)?;
        let [next, insert] = pending.statements();
        let position = transaction.query(next.sql, &next.params).await?;
        transaction.execute(insert.sql, &insert.params).await?;
        pending.complete(transaction, position).await?;
    }
    Ok(())
}

/// Retention: deletes the account's events before `before` (every event up to the last one
/// whose time is before it), after folding their leaves into the frontier kept in
/// `audit_pruned`, so the events kept still verify: the tree's root at the pruned size, and
/// the frontier the kept leaves extend. Takes the account's head first (as an append does), so
/// no event is appended or pruned by another writer meanwhile. Returns how many were pruned.
pub(crate) async fn prune<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    before: scimitar_domain::Timestamp,
) -> ScimResult<u64> {
    // Locks the head row until commit on PostgreSQL (SQLite has one writer).
    let Some(_) = query_opt(
        transaction,
        "UPDATE audit_heads SET size = size WHERE account_id = $1 RETURNING size",
        params![account.as_str()],
    )
    .await?
    else {
        return Ok(0);
    };
    // The leaves about to go must be in the head's stored frontier first.
    fold(transaction, account).await?;
    let last = query_opt(
        transaction,
        "SELECT MAX(seq) FROM audit_events WHERE account_id = $1 AND event_time < $2",
        params![account.as_str(), before.as_micros()],
    )
    .await?;
    let last = match last {
        Some(row) => row.optional_integer(0)?,
        None => None,
    };
    let Some(last) = last.and_then(|last| u64::try_from(last).ok()) else {
        return Ok(0);
    };
    let base = pruned(transaction, account).await?;
    let mut frontier = match &base {
        Some(base) => crate::audit::base_frontier(base)?,
        None => Frontier::default(),
    };
    let from = frontier.size();
    if last <= from {
        return Ok(0);
    }
    let rows = transaction
        .query(
            "SELECT seq, leaf FROM audit_events WHERE account_id = $1 AND seq > $2 AND seq <= $3 \
             ORDER BY seq",
            params![account.as_str(), to_i64(from), to_i64(last)],
        )
        .await?;
    for mut row in rows {
        let seq = row.integer(0)?;
        if u64::try_from(seq).ok() != Some(frontier.size() + 1) {
            return Err(ScimError::internal(format!(
                "audit event {} is missing: the trail cannot be pruned past a gap",
                frontier.size() + 1
            )));
        }
        let leaf = hash_from_hex(&row.text(1)?)
            .ok_or_else(|| ScimError::internal("a stored audit leaf is not hex"))?;
        frontier.push(leaf);
    }
    if frontier.size() != last {
        return Err(ScimError::internal(
            "the audit trail has fewer events than its positions count",
        ));
    }
    transaction
        .execute(
            "DELETE FROM audit_events WHERE account_id = $1 AND seq <= $2",
            params![account.as_str(), to_i64(last)],
        )
        .await?;
    let frontier_text = frontier_to_text(&frontier);
    let root = lower_hex(&frontier.root());
    transaction
        .execute(
            "INSERT INTO audit_pruned (account_id, size, frontier, root, pruned_before) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO UPDATE SET \
             size = excluded.size, frontier = excluded.frontier, root = excluded.root, \
             pruned_before = excluded.pruned_before",
            params![
                account.as_str(),
                to_i64(last),
                frontier_text.as_str(),
                root.as_str(),
                before.as_micros()
            ],
        )
        .await?;
    Ok(last - from)
}

/// Where a pruned trail's kept events start from: the size, frontier and root of the tree of
/// the events pruned; `None` when nothing was pruned.
pub async fn pruned<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Option<AuditHead>> {
    let row = query_opt(
        session,
        "SELECT size, frontier, root FROM audit_pruned WHERE account_id = $1",
        params![account.as_str()],
    )
    .await?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    let size = u64::try_from(row.integer(0)?)
        .map_err(|_| ScimError::internal("a negative pruned audit size"))?;
    let frontier = row.text(1)?;
    Ok(Some(AuditHead {
        size,
        frontier: frontier
            .as_bytes()
            .chunks(64)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect(),
        root: row.text(2)?,
    }))
}

/// A frontier as stored: its subtree roots in hex, largest first, with no separator.
fn frontier_to_text(frontier: &Frontier) -> String {
    frontier
        .hashes()
        .iter()
        .map(|hash| lower_hex(hash))
        .collect()
}

fn frontier_from_text(size: u64, text: &str) -> ScimResult<Frontier> {
    let hashes = text
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).ok().and_then(hash_from_hex))
        .collect::<Option<Vec<Hash>>>()
        .ok_or_else(|| ScimError::internal("a stored audit frontier is not hex"))?;
    Frontier::from_hashes(size, &hashes)
        .ok_or_else(|| ScimError::internal("a stored audit frontier does not match its size"))
}

/// Events of an account's trail with `seq > after`, in order, at most `limit`.
pub async fn events<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    after: u64,
    limit: usize,
) -> ScimResult<Vec<StoredAuditEvent>> {
    let rows = session
        .query(
            "SELECT seq, event, leaf FROM audit_events WHERE account_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
            params![account.as_str(), to_i64(after), to_i64(limit as u64)],
        )
        .await?;
    rows.into_iter()
        .map(|mut row| {
            Ok(StoredAuditEvent {
                seq: u64::try_from(row.integer(0)?)
                    .map_err(|_| ScimError::internal("a negative audit sequence number"))?,
                text: row.text(1)?,
                leaf: row.text(2)?,
            })
        })
        .collect()
}

/// The leaf hashes of an account's first `size` events, in order (for proofs).
pub async fn leaves<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    size: u64,
) -> ScimResult<Vec<Hash>> {
    let rows = session
        .query(
            "SELECT leaf FROM audit_events WHERE account_id = $1 AND seq <= $2 ORDER BY seq",
            params![account.as_str(), to_i64(size)],
        )
        .await?;
    rows.into_iter()
        .map(|mut row| {
            hash_from_hex(&row.text(0)?)
                .ok_or_else(|| ScimError::internal("a stored audit leaf is not hex"))
        })
        .collect()
}

/// The account's head; an account with no event yet has the empty tree's.
pub async fn head<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<AuditHead> {
    let frontier = folded(session, account).await?.unwrap_or_default();
    Ok(AuditHead {
        size: frontier.size(),
        frontier: frontier
            .hashes()
            .iter()
            .map(|hash| lower_hex(hash))
            .collect(),
        root: lower_hex(&frontier.root()),
    })
}

/// The deployment's checkpoint signing seed, if one was made.
pub async fn signing_seed<T: SqlTransaction>(session: &mut T) -> ScimResult<Option<AuditKeySeed>> {
    let Some(mut row) = query_opt(
        session,
        "SELECT seed FROM audit_signing_key WHERE id = 1",
        &[],
    )
    .await?
    else {
        return Ok(None);
    };
    hash_from_hex(&row.text(0)?)
        .map(|seed| Some(AuditKeySeed(seed)))
        .ok_or_else(|| ScimError::internal("the stored audit signing seed is not 32 bytes of hex"))
}

/// Stores the signing seed unless one is stored already: the first key made stays, so nodes
/// making one at once agree on the one that won.
pub(crate) async fn ensure_signing_seed<T: SqlTransaction>(
    transaction: &mut T,
    seed: &AuditKeySeed,
    created: scimitar_domain::Timestamp,
) -> ScimResult<()> {
    let hex = lower_hex(&seed.0);
    transaction
        .execute(
            "INSERT INTO audit_signing_key (id, seed, created) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
            params![hex.as_str(), created.as_micros()],
        )
        .await?;
    Ok(())
}
