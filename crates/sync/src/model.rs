//! The values the reconciliation core works on: identities as both sides hold them, the
//! job's recorded state (id mappings and ownership), and what a target can do.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The kinds of identity a job reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    User,
    Group,
    ServicePrincipal,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::User, Kind::Group, Kind::ServicePrincipal];

    /// The name the state and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::ServicePrincipal => "servicePrincipal",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The SCIM resource endpoint of this kind, from a mount's base URL.
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
            Kind::ServicePrincipal => "ServicePrincipals",
        }
    }

    /// Only users and service principals have an `active` flag to deactivate.
    pub fn can_deactivate(self) -> bool {
        !matches!(self, Kind::Group)
    }
}

/// One identity, as a source or a target holds it, reduced to what a job compares.
///
/// Attributes are a flat map from a SCIM attribute path (`userName`, `name.givenName`,
/// `emails` for the primary address, `entitlements` as a sorted array of values) to its
/// value, so that the diff is one loop over the paths a job manages, whatever the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub kind: Kind,
    /// The id on its own side (the source's id in a source snapshot, the target's in a
    /// target snapshot).
    pub id: String,
    pub attributes: BTreeMap<String, Value>,
    /// `None` for groups.
    pub active: Option<bool>,
    /// Direct members (groups only), by id on the same side.
    pub members: Vec<String>,
}

impl Identity {
    pub fn new(kind: Kind, id: impl Into<String>) -> Identity {
        Identity {
            kind,
            id: id.into(),
            attributes: BTreeMap::new(),
            active: if kind.can_deactivate() {
                Some(true)
            } else {
                None
            },
            members: Vec::new(),
        }
    }

    /// Sets an attribute (builder style, for snapshots made in code and tests).
    pub fn with(mut self, path: &str, value: impl Into<Value>) -> Identity {
        self.attributes.insert(path.to_string(), value.into());
        self
    }

    pub fn with_members<I, S>(mut self, members: I) -> Identity
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.members = members.into_iter().map(Into::into).collect();
        self
    }

    pub fn inactive(mut self) -> Identity {
        if self.kind.can_deactivate() {
            self.active = Some(false);
        }
        self
    }

    /// A string attribute, if present and a string.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.attributes.get(path).and_then(Value::as_str)
    }

    /// What a person reads in a report: the userName, displayName or applicationId.
    pub fn label(&self) -> String {
        let name = match self.kind {
            Kind::User => self.text("userName"),
            Kind::Group => self.text("displayName"),
            Kind::ServicePrincipal => self
                .text("applicationId")
                .or_else(|| self.text("displayName")),
        };
        name.unwrap_or(&self.id).to_string()
    }
}

/// Everything one side holds, as read at the start of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub identities: Vec<Identity>,
}

impl Snapshot {
    pub fn of(identities: Vec<Identity>) -> Snapshot {
        Snapshot { identities }
    }

    pub fn by_key(&self) -> BTreeMap<(Kind, &str), &Identity> {
        self.identities
            .iter()
            .map(|identity| ((identity.kind, identity.id.as_str()), identity))
            .collect()
    }
}

/// How a job came to manage a target object: only these are ever modified or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Ownership {
    /// The job created it.
    Created,
    /// It existed in the target and was matched to a source object (brownfield).
    Adopted,
}

impl Ownership {
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::Created => "created",
            Ownership::Adopted => "adopted",
        }
    }

    pub fn parse(text: &str) -> Option<Ownership> {
        match text {
            "created" => Some(Ownership::Created),
            "adopted" => Some(Ownership::Adopted),
            _ => None,
        }
    }
}

/// What the job knows of one source object it manages in the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub target_id: String,
    pub ownership: Ownership,
    /// When the job first deprovisioned it (deactivated a user; for a group, found it gone
    /// from the source): the grace period before deletion counts from here. `None` while the
    /// source holds it in scope.
    pub deprovisioned_at: Option<i64>,
}

/// The job's recorded state: its mappings by `(kind, source id)`, and the source's watermark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    pub mappings: BTreeMap<(Kind, String), Mapping>,
    /// The latest `meta.lastModified` the source showed (RFC 3339), for incremental reads.
    pub watermark: Option<String>,
    /// What the source wanted of each managed object when the job last brought it in line
    /// (`crate::drift::digest`), kept with its mapping: how drift is told apart.
    #[serde(default)]
    pub digests: BTreeMap<(Kind, String), String>,
}

impl JobState {
    /// The source object a target object is managed for, if any.
    pub fn owner_of(&self, kind: Kind, target_id: &str) -> Option<&str> {
        self.mappings
            .iter()
            .find(|((mapped_kind, _), mapping)| {
                *mapped_kind == kind && mapping.target_id == target_id
            })
            .map(|((_, source_id), _)| source_id.as_str())
    }
}

/// What a target can do, from its `/ServiceProviderConfig` and its profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub patch: bool,
    pub bulk: bool,
    pub filter: bool,
    /// Whether a group may have groups as members; without it nesting is flattened into
    /// transitive membership.
    pub nested_groups: bool,
    /// Whether groups carry Databricks `entitlements`.
    pub entitlements: bool,
    /// Whether the target has `/ServicePrincipals`.
    pub service_principals: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            patch: true,
            bulk: false,
            filter: true,
            nested_groups: true,
            entitlements: false,
            service_principals: false,
        }
    }
}
