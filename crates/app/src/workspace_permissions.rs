//! The workspace object Permissions API (`/api/2.0/permissions/...`) as an application
//! service: which object a path names, who may read or change its ACL, what a PUT or PATCH
//! leaves behind, and the `ObjectPermissions` document the Databricks SDK reads back.
//!
//! Every rule about ACLs is the access engine's: [`AccessModel::can_change_object_acl`] decides
//! who may write, [`AccessModel::planned_object_acl`] computes the resulting direct ACL, and the
//! service commits exactly that list as [`GovernanceChange::SetObjectAcl`], guarded by a
//! [`GovernanceChange::ExpectObjectAcl`] of the ACL it computed from (another node's write in
//! between makes it a conflict, and the write is computed again), through
//! [`Services::commit`], so the engine (and every later check) sees it before the answer goes
//! out.

use crate::authority::{administers_objects, Actor};
use crate::service::Services;
use scimitar_access::{
    client_object_id, AccessModel, AclEntry, AclWrite, ObjectType, PermissionLevel, PrincipalRef,
    TOKENS_OBJECT_ID,
};
use scimitar_domain::{AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, WorkspaceId};
use scimitar_store::{Change, GovernanceChange};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// A workspace object as the Permissions API path names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAddress {
    pub object_type: ObjectType,
    pub object_id: String,
}

/// What a path under `/api/2.0/permissions/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionsPath {
    pub object: ObjectAddress,
    /// True for `.../permissionLevels`.
    pub levels: bool,
}

impl PermissionsPath {
    /// Parses the part after `/api/2.0/permissions/`: `{type}/{id}`, `sql/{type}/{id}` (the
    /// spelling the generic SDK client and Terraform use for SQL objects), or
    /// `authorization/tokens`, each optionally followed by `/permissionLevels`.
    pub fn parse(rest: &str) -> ScimResult<PermissionsPath> {
        let mut segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let levels = segments.last() == Some(&"permissionLevels");
        if levels {
            segments.pop();
        }
        let unknown = || {
            ScimError::NotFound(format!(
                "no permissions endpoint at /api/2.0/permissions/{rest}"
            ))
        };
        let (object_type, object_id) = match segments.as_slice() {
            ["authorization", "tokens"] => (ObjectType::Tokens, TOKENS_OBJECT_ID.to_string()),
            ["sql", kind @ ("warehouses" | "queries" | "alerts"), id] => (
                ObjectType::parse(kind).map_err(|_| unknown())?,
                id.to_string(),
            ),
            [kind, id] if *kind != "authorization" => (
                ObjectType::parse(kind).map_err(|error| {
                    ScimError::NotFound(format!("{error}; the Permissions API has no such objects"))
                })?,
                id.to_string(),
            ),
            _ => return Err(unknown()),
        };
        Ok(PermissionsPath {
            object: ObjectAddress {
                object_type,
                object_id,
            },
            levels,
        })
    }
}

pub use scimitar_access::object_id_in;

/// Whether `object_id`, as the engine knows it, is an object of `workspace` by its form: for
/// every type but the tree's, whose workspace storage keeps ([`exists`]).
fn named_in(workspace: &WorkspaceId, object_type: ObjectType, object_id: &str) -> bool {
    object_id
        .split_once('/')
        .is_some_and(|(owner, _)| owner == workspace.as_str())
        || is_tree_type(object_type)
}

impl ObjectAddress {
    /// This address, as a client gave it, in the engine's and storage's terms in `workspace`
    /// ([`object_id_in`]).
    pub fn in_workspace(&self, workspace: &WorkspaceId) -> ObjectAddress {
        ObjectAddress {
            object_type: self.object_type,
            object_id: object_id_in(workspace, self.object_type, &self.object_id),
        }
    }

    /// The `object_id` of an `ObjectPermissions` document: `/jobs/123`,
    /// `/sql/warehouses/abc`, `/authorization/tokens`.
    pub fn api_object_id(&self) -> String {
        let id = client_object_id(&self.object_id);
        match self.object_type {
            ObjectType::Tokens => "/authorization/tokens".to_string(),
            ObjectType::Warehouses => format!("/sql/warehouses/{id}"),
            other => format!("/{}/{id}", other.as_str()),
        }
    }

    /// The singular `object_type` Databricks answers with (`job`, `cluster-policy`).
    pub fn api_object_type(&self) -> &'static str {
        singular(self.object_type)
    }
}

fn singular(object_type: ObjectType) -> &'static str {
    match object_type {
        ObjectType::Clusters => "cluster",
        ObjectType::ClusterPolicies => "cluster-policy",
        ObjectType::InstancePools => "instance-pool",
        ObjectType::Jobs => "job",
        ObjectType::Pipelines => "pipelines",
        ObjectType::Notebooks => "notebook",
        ObjectType::Directories => "directory",
        ObjectType::Files => "file",
        ObjectType::Repos => "repo",
        ObjectType::Experiments => "mlflowExperiment",
        ObjectType::RegisteredModels => "registered-model",
        ObjectType::ServingEndpoints => "serving-endpoint",
        ObjectType::Warehouses => "warehouses",
        ObjectType::Dashboards => "dashboard",
        ObjectType::Queries => "query",
        ObjectType::Alerts => "alert",
        ObjectType::Apps => "apps",
        ObjectType::Tokens => "tokens",
    }
}

/// One entry of a PUT or PATCH, before its principal is looked up. The HTTP edge makes these
/// from the request body; this layer never reads the wire JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedEntry {
    pub kind: PrincipalKind,
    /// userName, group displayName or service principal applicationId.
    pub name: String,
    pub level: PermissionLevel,
}

/// Stripes of per-object locks, so that two PATCHes of one object on this node cannot both
/// compute their result from the same ACL and lose one of the changes. Process-wide because
/// a process serves one database; writers on other nodes are not covered (see
/// ARCHITECTURE.md). The stripe is picked by a hash seeded once per process and kept with
/// the stripes: object ids are chosen by clients, and with the fixed keys of
/// `DefaultHasher::new()` anyone could compute ids whose writes all wait on one stripe.
fn object_lock(account: &AccountId, object: &ObjectAddress) -> &'static tokio::sync::Mutex<()> {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    static LOCKS: OnceLock<(RandomState, Vec<tokio::sync::Mutex<()>>)> = OnceLock::new();
    let (seed, locks) = LOCKS.get_or_init(|| {
        let stripes = (0..64).map(|_| tokio::sync::Mutex::new(())).collect();
        (RandomState::new(), stripes)
    });
    let hash = seed.hash_one((account, object.object_type, &object.object_id));
    &locks[(hash % locks.len() as u64) as usize]
}

/// Applies a PUT (`AclWrite::Replace`) or PATCH (`AclWrite::Update`) for `caller` and returns
/// the object's permissions afterwards.
pub async fn write(
    services: &Services,
    actor: &Actor,
    object: &ObjectAddress,
    requested: Vec<RequestedEntry>,
    mode: AclWrite,
) -> ScimResult<Value> {
    let (account, caller) = (actor.account(), actor.principal());
    let workspace = objects_workspace(actor)?;
    let object = &object.in_workspace(workspace);
    let mut entries = Vec::with_capacity(requested.len());
    for entry in requested {
        let principal = services
            .store
            .principal_by_name(account, entry.kind, &entry.name)
            .await?
            .ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "{} '{}' does not exist",
                    kind_label(entry.kind),
                    entry.name
                ))
            })?;
        entries.push(AclEntry::new(principal.id, entry.level));
    }
    // Principals made on another node a moment ago exist in storage (just resolved there) but
    // perhaps not yet in this node's engine: read the log before deciding with it.
    let all_known = services.access.read(account, |model| {
        entries
            .iter()
            .all(|entry| model.principal_ref(&entry.principal).is_ok())
    })?;
    if !all_known {
        services.access.catch_up(services.store.as_ref()).await?;
    }
    let exists = exists(services, account, workspace, object).await?;
    let _turn = object_lock(account, object).lock().await;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // The new ACL is computed from this node's view, and committed only if the stored ACL
        // is still the one that view held: another node's write in between makes the commit
        // a conflict, and the write is computed again on a view that includes it.
        let (current, planned) = services.access.read(account, |model| {
            if !exists {
                return Err(as_missing(
                    model,
                    workspace,
                    caller,
                    object,
                    change_refused(object),
                ));
            }
            ensure_may_change(model, workspace, caller, object)?;
            let current: Vec<AclEntry> = model
                .object_acl(object.object_type, &object.object_id)
                .into_iter()
                .filter(|view| view.inherited_from.is_none())
                .map(|view| AclEntry::new(view.principal.id, view.level))
                .collect();
            let planned = model
                .planned_object_acl(object.object_type, &object.object_id, &entries, mode)
                .map_err(ScimError::from)?;
            Ok::<_, ScimError>((current, planned))
        })??;
        let committed = services
            .commit(
                account,
                objects_change(
                    workspace,
                    vec![
                        GovernanceChange::ExpectObjectAcl {
                            object_type: object.object_type,
                            object_id: object.object_id.clone(),
                            entries: current,
                        },
                        GovernanceChange::SetObjectAcl {
                            object_type: object.object_type,
                            object_id: object.object_id.clone(),
                            entries: planned,
                        },
                    ],
                ),
            )
            .await;
        match committed {
            Ok(()) => break,
            Err(ScimError::PreconditionFailed(_)) if attempt < ACL_WRITE_ATTEMPTS => {
                services.access.catch_up(services.store.as_ref()).await?;
            }
            Err(error) => return Err(error),
        }
    }
    services.access.read(account, |model| render(model, object))
}

/// How often an ACL write is computed again after another node changed the ACL first.
const ACL_WRITE_ATTEMPTS: usize = 8;

/// The object's permissions, for admins and for anyone holding a level on it.
pub async fn get(services: &Services, actor: &Actor, object: &ObjectAddress) -> ScimResult<Value> {
    let workspace = objects_workspace(actor)?;
    let object = &object.in_workspace(workspace);
    let exists = exists(services, actor.account(), workspace, object).await?;
    services.access.read(actor.account(), |model| {
        readable(model, workspace, actor.principal(), object, exists)
    })?
}

/// The workspace whose tree and objects `actor` acts on: the one it entered. An actor that
/// entered none has no workspace objects to act on.
pub(crate) fn objects_workspace(actor: &Actor) -> ScimResult<&WorkspaceId> {
    actor.workspace().ok_or_else(|| {
        ScimError::Forbidden("workspace objects are reached through a workspace".to_string())
    })
}

/// The change that writes `changes` to objects of `workspace`: objects it registers belong
/// to it, and storage refuses one of another workspace as missing.
pub(crate) fn objects_change(workspace: &WorkspaceId, changes: Vec<GovernanceChange>) -> Change {
    Change::WorkspaceObjects {
        workspace: workspace.clone(),
        changes,
    }
}

/// Whether the object, as the engine knows it (`object`'s id from [`object_id_in`]), exists in
/// `workspace`: the one check every permissions path asks, so that an object of another
/// workspace is answered exactly as a missing one. Scimitar keeps the workspace tree
/// (directories, notebooks and files, made by the Workspace API), so an id the workspace's
/// tree does not hold names nothing, and its permissions are not found, as in Databricks. The
/// other types (jobs, clusters, warehouses, ...) live in systems Scimitar does not model; it
/// keeps their ACLs for whatever ids its clients use, each workspace its own, so every id of
/// those types exists in every workspace, as does the one tokens object: whether another
/// workspace used an id changes nothing here, and cannot be probed.
pub(crate) async fn exists(
    services: &Services,
    account: &AccountId,
    workspace: &WorkspaceId,
    object: &ObjectAddress,
) -> ScimResult<bool> {
    let (object_type, object_id) = (object.object_type, object.object_id.as_str());
    if is_tree_type(object_type) {
        let entry =
            services
                .store
                .workspace_entry_by_id(account, workspace, object_type, object_id);
        return Ok(entry.await?.is_some());
    }
    Ok(named_in(workspace, object_type, object_id))
}

/// The object types the workspace tree holds.
pub fn is_tree_type(object_type: ObjectType) -> bool {
    object_type.in_workspace_tree()
}

/// A missing object: Databricks' `RESOURCE_DOES_NOT_EXIST`. Only a caller who would be allowed
/// to see the object is told this; anyone else gets the same refusal as for an object that
/// exists, so missing and forbidden cannot be told apart.
fn missing(object: &ObjectAddress) -> ScimError {
    ScimError::NotFound(format!("{} does not exist", object.api_object_id()))
}

fn readable(
    model: &AccessModel,
    workspace: &WorkspaceId,
    caller: &PrincipalId,
    object: &ObjectAddress,
    exists: bool,
) -> ScimResult<Value> {
    let refused = || {
        ScimError::Forbidden(format!(
            "reading the permissions of {} needs a permission on it or workspace admin",
            object.api_object_id()
        ))
    };
    if !exists {
        return Err(as_missing(model, workspace, caller, object, refused()));
    }
    let may_read = administers_objects(model, caller, workspace)
        || model
            .object_permission(caller, object.object_type, &object.object_id)
            .map_err(ScimError::from)?
            .is_some();
    if !may_read {
        return Err(refused());
    }
    Ok(render(model, object))
}

/// The answer about an object the caller's workspace does not hold: not found for an admin,
/// and for anyone else the refusal they would get for an object that exists. A level held on
/// an object of another workspace (the engine's ACLs are the account's) counts for nothing
/// here, so the answer is the same whether the id is another workspace's or nobody's.
fn as_missing(
    model: &AccessModel,
    workspace: &WorkspaceId,
    caller: &PrincipalId,
    object: &ObjectAddress,
    refusal: ScimError,
) -> ScimError {
    if administers_objects(model, caller, workspace) {
        missing(object)
    } else {
        refusal
    }
}

/// The levels the object's type knows, weakest first.
pub fn permission_levels(object: &ObjectAddress) -> Value {
    let levels: Vec<Value> = object
        .object_type
        .levels()
        .iter()
        .map(|level| {
            json!({
                "permission_level": level.as_str(),
                "description": describe(*level),
            })
        })
        .collect();
    json!({ "permission_levels": levels })
}

fn ensure_may_change(
    model: &AccessModel,
    workspace: &WorkspaceId,
    caller: &PrincipalId,
    object: &ObjectAddress,
) -> ScimResult<()> {
    if administers_objects(model, caller, workspace)
        || model
            .can_change_object_acl(caller, object.object_type, &object.object_id)
            .map_err(ScimError::from)?
    {
        return Ok(());
    }
    Err(change_refused(object))
}

fn change_refused(object: &ObjectAddress) -> ScimError {
    ScimError::Forbidden(format!(
        "changing the permissions of {} needs CAN_MANAGE or IS_OWNER on it, or workspace admin",
        object.api_object_id()
    ))
}

/// The `ObjectPermissions` document: one element per principal, listing its direct level and
/// every inherited one (from directories above, and `admins`' CAN_MANAGE, which Databricks
/// shows as inherited from the type's root object `/{type}/`).
pub fn render(model: &AccessModel, object: &ObjectAddress) -> Value {
    let mut order: Vec<PrincipalRef> = Vec::new();
    let mut permissions: Vec<Vec<Value>> = Vec::new();
    let mut add = |principal: PrincipalRef, permission: Value| match order
        .iter()
        .position(|known| known.id == principal.id)
    {
        Some(index) => permissions[index].push(permission),
        None => {
            order.push(principal);
            permissions.push(vec![permission]);
        }
    };
    for entry in model.object_acl(object.object_type, &object.object_id) {
        let permission = match &entry.inherited_from {
            None => json!({"permission_level": entry.level.as_str(), "inherited": false}),
            Some(directory) => json!({
                "permission_level": entry.level.as_str(),
                "inherited": true,
                "inherited_from_object": [ObjectAddress {
                    object_type: directory.object_type,
                    object_id: directory.object_id.clone(),
                }.api_object_id()],
            }),
        };
        add(entry.principal, permission);
    }
    if object
        .object_type
        .rank(PermissionLevel::CanManage)
        .is_some()
    {
        if let Some(admins) = model.admins_group() {
            let root = match object.object_type {
                ObjectType::Tokens => "/authorization/tokens".to_string(),
                ObjectType::Warehouses => "/sql/warehouses/".to_string(),
                other => format!("/{}/", other.as_str()),
            };
            add(
                admins,
                json!({
                    "permission_level": PermissionLevel::CanManage.as_str(),
                    "inherited": true,
                    "inherited_from_object": [root],
                }),
            );
        }
    }
    let acl: Vec<Value> = order
        .iter()
        .zip(permissions)
        .map(|(principal, all_permissions)| {
            let mut entry = Map::new();
            let field = match principal.kind {
                PrincipalKind::User => "user_name",
                PrincipalKind::Group => "group_name",
                PrincipalKind::ServicePrincipal => "service_principal_name",
            };
            entry.insert(field.into(), json!(principal.name));
            entry.insert("all_permissions".into(), Value::Array(all_permissions));
            Value::Object(entry)
        })
        .collect();
    json!({
        "object_id": object.api_object_id(),
        "object_type": object.api_object_type(),
        "access_control_list": acl,
    })
}

fn kind_label(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "user",
        PrincipalKind::Group => "group",
        PrincipalKind::ServicePrincipal => "service principal",
    }
}

fn describe(level: PermissionLevel) -> &'static str {
    match level {
        PermissionLevel::CanAttachTo => "Can attach notebooks and jobs to the compute",
        PermissionLevel::CanRestart => "Can start, restart and stop the compute",
        PermissionLevel::CanUse => "Can use the object",
        PermissionLevel::CanView => "Can view the object",
        PermissionLevel::CanRead => "Can read the object",
        PermissionLevel::CanMonitor => "Can monitor the object",
        PermissionLevel::CanQuery => "Can query the endpoint",
        PermissionLevel::CanRun => "Can run the object",
        PermissionLevel::CanManageRun => "Can run, cancel and view runs",
        PermissionLevel::CanEdit => "Can edit the object",
        PermissionLevel::CanManageStagingVersions => "Can manage staging versions",
        PermissionLevel::CanManageProductionVersions => "Can manage production versions",
        PermissionLevel::IsOwner => "Owns the object",
        PermissionLevel::CanManage => "Can manage the object and its permissions",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The stripe's hash is seeded once per process, not per call: one object must always
    /// get the same lock, or two writers of it would not exclude each other.
    #[test]
    fn one_object_always_gets_the_same_lock() {
        let account = AccountId::new("a1");
        let object = ObjectAddress {
            object_type: ObjectType::Jobs,
            object_id: "123".to_string(),
        };
        assert!(std::ptr::eq(
            object_lock(&account, &object),
            object_lock(&account, &object)
        ));
    }

    #[test]
    fn paths_name_objects_the_way_the_sdk_spells_them() {
        let cases = [
            ("jobs/123", ObjectType::Jobs, "123", false),
            ("jobs/123/permissionLevels", ObjectType::Jobs, "123", true),
            ("sql/warehouses/abc", ObjectType::Warehouses, "abc", false),
            ("warehouses/abc", ObjectType::Warehouses, "abc", false),
            (
                "authorization/tokens",
                ObjectType::Tokens,
                TOKENS_OBJECT_ID,
                false,
            ),
            (
                "authorization/tokens/permissionLevels",
                ObjectType::Tokens,
                TOKENS_OBJECT_ID,
                true,
            ),
            (
                "cluster-policies/p1",
                ObjectType::ClusterPolicies,
                "p1",
                false,
            ),
            ("apps/my-app", ObjectType::Apps, "my-app", false),
        ];
        for (path, object_type, object_id, levels) in cases {
            let parsed = PermissionsPath::parse(path).unwrap();
            assert_eq!(parsed.object.object_type, object_type, "{path}");
            assert_eq!(parsed.object.object_id, object_id, "{path}");
            assert_eq!(parsed.levels, levels, "{path}");
        }
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "widgets/1",
            "jobs",
            "jobs/1/2",
            "authorization/passwords",
            "",
        ] {
            assert!(
                matches!(PermissionsPath::parse(path), Err(ScimError::NotFound(_))),
                "{path}"
            );
        }
    }
}
