//! Workspace object types of the Permissions API, their permission levels in order, and the
//! rules about which principals may own what.

use std::fmt;
use std::str::FromStr;

use scimitar_domain::{PrincipalId, WorkspaceId};

use crate::error::AccessError;

/// A kind of workspace object, by its `/api/2.0/permissions/{object_type}` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    Clusters,
    ClusterPolicies,
    InstancePools,
    Jobs,
    Pipelines,
    Notebooks,
    Directories,
    Files,
    Repos,
    Experiments,
    RegisteredModels,
    ServingEndpoints,
    Warehouses,
    Dashboards,
    Queries,
    Alerts,
    Apps,
    /// `authorization/tokens`: one object per workspace, whose id is [`TOKENS_OBJECT_ID`].
    Tokens,
}

/// The id under which the single `authorization/tokens` object is kept.
pub const TOKENS_OBJECT_ID: &str = "tokens";

/// A workspace permission level. Which levels exist, and their order, depend on the object
/// type: see [`ObjectType::levels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PermissionLevel {
    CanAttachTo,
    CanRestart,
    CanUse,
    CanView,
    CanRead,
    CanMonitor,
    CanQuery,
    CanRun,
    CanManageRun,
    CanEdit,
    CanManageStagingVersions,
    CanManageProductionVersions,
    IsOwner,
    CanManage,
}

impl PermissionLevel {
    pub const ALL: [PermissionLevel; 14] = [
        PermissionLevel::CanAttachTo,
        PermissionLevel::CanRestart,
        PermissionLevel::CanUse,
        PermissionLevel::CanView,
        PermissionLevel::CanRead,
        PermissionLevel::CanMonitor,
        PermissionLevel::CanQuery,
        PermissionLevel::CanRun,
        PermissionLevel::CanManageRun,
        PermissionLevel::CanEdit,
        PermissionLevel::CanManageStagingVersions,
        PermissionLevel::CanManageProductionVersions,
        PermissionLevel::IsOwner,
        PermissionLevel::CanManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PermissionLevel::CanAttachTo => "CAN_ATTACH_TO",
            PermissionLevel::CanRestart => "CAN_RESTART",
            PermissionLevel::CanUse => "CAN_USE",
            PermissionLevel::CanView => "CAN_VIEW",
            PermissionLevel::CanRead => "CAN_READ",
            PermissionLevel::CanMonitor => "CAN_MONITOR",
            PermissionLevel::CanQuery => "CAN_QUERY",
            PermissionLevel::CanRun => "CAN_RUN",
            PermissionLevel::CanManageRun => "CAN_MANAGE_RUN",
            PermissionLevel::CanEdit => "CAN_EDIT",
            PermissionLevel::CanManageStagingVersions => "CAN_MANAGE_STAGING_VERSIONS",
            PermissionLevel::CanManageProductionVersions => "CAN_MANAGE_PRODUCTION_VERSIONS",
            PermissionLevel::IsOwner => "IS_OWNER",
            PermissionLevel::CanManage => "CAN_MANAGE",
        }
    }

    pub fn parse(text: &str) -> Result<PermissionLevel, AccessError> {
        PermissionLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| AccessError::UnknownPermissionLevel {
                text: text.to_string(),
            })
    }
}

impl fmt::Display for PermissionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PermissionLevel {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PermissionLevel::parse(text)
    }
}

use PermissionLevel as L;

// Each list runs from the weakest level to the strongest, as the columns of Databricks'
// permission table for that object run. Jobs put IS_OWNER below CAN_MANAGE while pipelines and
// warehouses put it on top; we keep each table's own order rather than invent a common one.
const CLUSTERS: &[PermissionLevel] = &[L::CanAttachTo, L::CanRestart, L::CanManage];
const CLUSTER_POLICIES: &[PermissionLevel] = &[L::CanUse];
const INSTANCE_POOLS: &[PermissionLevel] = &[L::CanAttachTo, L::CanManage];
const JOBS: &[PermissionLevel] = &[L::CanView, L::CanManageRun, L::IsOwner, L::CanManage];
const PIPELINES: &[PermissionLevel] = &[L::CanView, L::CanRun, L::CanManage, L::IsOwner];
const WORKSPACE_FILES: &[PermissionLevel] = &[L::CanRead, L::CanRun, L::CanEdit, L::CanManage];
const EXPERIMENTS: &[PermissionLevel] = &[L::CanRead, L::CanEdit, L::CanManage];
const REGISTERED_MODELS: &[PermissionLevel] = &[
    L::CanRead,
    L::CanEdit,
    L::CanManageStagingVersions,
    L::CanManageProductionVersions,
    L::CanManage,
];
const SERVING_ENDPOINTS: &[PermissionLevel] = &[L::CanView, L::CanQuery, L::CanManage];
const WAREHOUSES: &[PermissionLevel] = &[
    L::CanView,
    L::CanMonitor,
    L::CanUse,
    L::CanManage,
    L::IsOwner,
];
const LEGACY_SQL: &[PermissionLevel] = &[L::CanView, L::CanRun, L::CanManage];
const USE_OR_MANAGE: &[PermissionLevel] = &[L::CanUse, L::CanManage];

impl ObjectType {
    pub const ALL: [ObjectType; 18] = [
        ObjectType::Clusters,
        ObjectType::ClusterPolicies,
        ObjectType::InstancePools,
        ObjectType::Jobs,
        ObjectType::Pipelines,
        ObjectType::Notebooks,
        ObjectType::Directories,
        ObjectType::Files,
        ObjectType::Repos,
        ObjectType::Experiments,
        ObjectType::RegisteredModels,
        ObjectType::ServingEndpoints,
        ObjectType::Warehouses,
        ObjectType::Dashboards,
        ObjectType::Queries,
        ObjectType::Alerts,
        ObjectType::Apps,
        ObjectType::Tokens,
    ];

    /// The Permissions API path segment (`cluster-policies`, `authorization/tokens`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Clusters => "clusters",
            ObjectType::ClusterPolicies => "cluster-policies",
            ObjectType::InstancePools => "instance-pools",
            ObjectType::Jobs => "jobs",
            ObjectType::Pipelines => "pipelines",
            ObjectType::Notebooks => "notebooks",
            ObjectType::Directories => "directories",
            ObjectType::Files => "files",
            ObjectType::Repos => "repos",
            ObjectType::Experiments => "experiments",
            ObjectType::RegisteredModels => "registered-models",
            ObjectType::ServingEndpoints => "serving-endpoints",
            ObjectType::Warehouses => "warehouses",
            ObjectType::Dashboards => "dashboards",
            ObjectType::Queries => "queries",
            ObjectType::Alerts => "alerts",
            ObjectType::Apps => "apps",
            ObjectType::Tokens => "authorization/tokens",
        }
    }

    pub fn parse(text: &str) -> Result<ObjectType, AccessError> {
        let text = text.trim().trim_matches('/');
        ObjectType::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
            .or_else(|| {
                text.eq_ignore_ascii_case("tokens")
                    .then_some(ObjectType::Tokens)
            })
            .ok_or_else(|| AccessError::UnknownObjectType {
                text: text.to_string(),
            })
    }

    /// The levels this type knows, weakest first; a level implies every level before it.
    pub fn levels(self) -> &'static [PermissionLevel] {
        match self {
            ObjectType::Clusters => CLUSTERS,
            ObjectType::ClusterPolicies => CLUSTER_POLICIES,
            ObjectType::InstancePools => INSTANCE_POOLS,
            ObjectType::Jobs => JOBS,
            ObjectType::Pipelines => PIPELINES,
            ObjectType::Notebooks
            | ObjectType::Directories
            | ObjectType::Files
            | ObjectType::Repos
            | ObjectType::Dashboards => WORKSPACE_FILES,
            ObjectType::Experiments => EXPERIMENTS,
            ObjectType::RegisteredModels => REGISTERED_MODELS,
            ObjectType::ServingEndpoints => SERVING_ENDPOINTS,
            ObjectType::Warehouses => WAREHOUSES,
            ObjectType::Queries | ObjectType::Alerts => LEGACY_SQL,
            ObjectType::Apps | ObjectType::Tokens => USE_OR_MANAGE,
        }
    }

    /// The rank of `level` on this type (0 = weakest), or `None` if the type lacks it.
    pub fn rank(self, level: PermissionLevel) -> Option<usize> {
        self.levels().iter().position(|known| *known == level)
    }

    /// Whether holding `held` on this type gives at least `wanted`.
    pub fn implies(self, held: PermissionLevel, wanted: PermissionLevel) -> bool {
        match (self.rank(held), self.rank(wanted)) {
            (Some(held), Some(wanted)) => held >= wanted,
            _ => false,
        }
    }

    /// Whether objects of this type may sit in a workspace directory and inherit its ACL.
    /// Only types whose levels are exactly the directory's are allowed, so an inherited
    /// level means the same thing on the child as on the folder.
    pub fn lives_in_directories(self) -> bool {
        self.levels() == WORKSPACE_FILES
    }

    /// Whether this type has an `IS_OWNER` level, which a group may never hold.
    pub fn has_owner_level(self) -> bool {
        self.rank(PermissionLevel::IsOwner).is_some()
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObjectType {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ObjectType::parse(text)
    }
}

/// A workspace object as callers name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub object_type: ObjectType,
    pub object_id: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.object_type,
            client_object_id(&self.object_id)
        )
    }
}

impl ObjectType {
    /// Whether objects of the type are the workspace tree's (folders, notebooks, files): their
    /// ids are drawn by Scimitar, unique in the account, and storage records their workspace.
    pub fn in_workspace_tree(self) -> bool {
        matches!(
            self,
            ObjectType::Directories | ObjectType::Notebooks | ObjectType::Files
        )
    }
}

/// The id an object is kept by in `workspace`. A tree object keeps its own. Every other type
/// is named by an id its client chose (a job id, a cluster id, the one tokens object), and each
/// workspace has its own objects of them, as in Databricks: such an id is kept under its
/// workspace, `{workspace}/{id}`, so that job 42 of one workspace and job 42 of another are two
/// objects with two ACLs, neither visible from the other. The engine treats ids as opaque;
/// this and [`client_object_id`] are the one place that knows the form. A client's id is one
/// path segment and never holds a `/`, so the form cannot be forged.
pub fn object_id_in(workspace: &WorkspaceId, object_type: ObjectType, client_id: &str) -> String {
    if object_type.in_workspace_tree() {
        client_id.to_string()
    } else {
        format!("{workspace}/{client_id}")
    }
}

/// The id a client knows an object by, from the id [`object_id_in`] keeps it by.
pub fn client_object_id(object_id: &str) -> &str {
    object_id.split_once('/').map_or(object_id, |(_, id)| id)
}

/// One entry of an access control list as given to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub principal: PrincipalId,
    pub level: PermissionLevel,
}

impl AclEntry {
    pub fn new(principal: PrincipalId, level: PermissionLevel) -> AclEntry {
        AclEntry { principal, level }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_type_and_level_round_trips() {
        for kind in ObjectType::ALL {
            assert_eq!(ObjectType::parse(kind.as_str()).unwrap(), kind);
            assert!(!kind.levels().is_empty());
        }
        for level in PermissionLevel::ALL {
            assert_eq!(PermissionLevel::parse(level.as_str()).unwrap(), level);
        }
    }

    #[test]
    fn levels_are_distinct_within_each_type() {
        for kind in ObjectType::ALL {
            let levels = kind.levels();
            for (index, level) in levels.iter().enumerate() {
                assert_eq!(kind.rank(*level), Some(index));
            }
        }
    }
}
