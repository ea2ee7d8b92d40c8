//! What the engine answers with: decisions, and for every access the grant, ownership, ACL
//! entry or entitlement it comes from and the membership chain that reaches it.
//!
//! Each type has a `Display` that reads as a sentence, for the CLI and for logs.

use std::fmt;

use scimitar_domain::{PrincipalId, PrincipalKind};

use crate::entitlement::Entitlement;
use crate::object::{ObjectRef, PermissionLevel};
use crate::privilege::Privilege;
use crate::securable::SecurableRef;

/// A principal as explanations show it: its id, kind and the name Databricks writes it by
/// (userName, group displayName or service principal applicationId).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrincipalRef {
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    pub name: String,
}

impl fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A principal as explanations show it, borrowed from the model rather than copied: what
/// [`crate::Holders`] hands out, so that listing 100,000 holders copies no names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalView<'a> {
    pub id: &'a PrincipalId,
    pub kind: PrincipalKind,
    pub name: &'a str,
}

impl PrincipalView<'_> {
    /// The same as an owned [`PrincipalRef`].
    pub fn to_ref(&self) -> PrincipalRef {
        PrincipalRef {
            id: self.id.clone(),
            kind: self.kind,
            name: self.name.to_string(),
        }
    }
}

/// The thing that confers an access, held by the last principal of a [`Via`]'s chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Unity Catalog grant: `privilege` as it was granted (possibly `ALL_PRIVILEGES`) on
    /// `on`, which is the securable itself or a catalog or schema above it.
    Grant {
        privilege: Privilege,
        on: SecurableRef,
    },
    /// Ownership of `of`: every privilege on it, and the inheritable ones below it.
    Ownership { of: SecurableRef },
    /// An entry of a workspace object's ACL; `object` is the object itself or a directory
    /// above it whose ACL it inherits.
    ObjectAcl {
        object: ObjectRef,
        level: PermissionLevel,
    },
    /// Membership of the `admins` group; for entitlements, also an `ADMIN` assignment in the
    /// workspace asked about (the chain then ends at the assigned principal or group).
    WorkspaceAdmin,
    /// An entitlement assigned to the holder.
    Entitlement { entitlement: Entitlement },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Grant { privilege, on } => write!(f, "{privilege} granted on {on}"),
            Source::Ownership { of } => write!(f, "owner of {of}"),
            Source::ObjectAcl { object, level } => write!(f, "{level} on {object}"),
            Source::WorkspaceAdmin => f.write_str("workspace admin"),
            Source::Entitlement { entitlement } => write!(f, "entitlement {entitlement}"),
        }
    }
}

/// How a principal comes by an access: the source, and the chain of memberships from the
/// principal (first) to the holder of the source (last), for example `[alice, team-a,
/// analysts]`. A chain of one means the principal holds it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub source: Source,
    pub chain: Vec<PrincipalRef>,
}

impl Via {
    /// The principal that holds the source directly.
    pub fn holder(&self) -> Option<&PrincipalRef> {
        self.chain.last()
    }

    /// Whether the access comes through a group rather than being held directly.
    pub fn through_groups(&self) -> bool {
        self.chain.len() > 1
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.chain.iter().map(|p| p.name.as_str()).collect();
        write!(f, "{}: {}", names.join(" -> "), self.source)
    }
}

/// One privilege needed on one securable for a check to pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub privilege: Privilege,
    pub securable: SecurableRef,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.privilege, self.securable)
    }
}

/// Why part of a check passed: the requirement met and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub requirement: Requirement,
    pub via: Via,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.requirement, self.via)
    }
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No grant or ownership supplies this privilege.
    Privilege(Requirement),
    /// The principal is deactivated, so it holds nothing.
    ActivePrincipal(PrincipalRef),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Privilege(requirement) => write!(f, "missing {requirement}"),
            Missing::ActivePrincipal(principal) => {
                write!(f, "{principal} is deactivated and holds no access")
            }
        }
    }
}

/// The answer to a check: allowed or not, every way each requirement is met, and on a deny
/// everything that is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reasons: Vec<Reason>,
    pub missing: Vec<Missing>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", if self.allowed { "allowed" } else { "denied" })?;
        for reason in &self.reasons {
            writeln!(f, "  because {reason}")?;
        }
        for missing in &self.missing {
            writeln!(f, "  {missing}")?;
        }
        Ok(())
    }
}

/// A user or service principal that holds an access, and one way it does (`who`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub principal: PrincipalRef,
    pub via: Via,
}

/// One privilege a principal holds on a securable, in the shape of Databricks'
/// effective-permissions API: `inherited_from` is `None` when granted on the securable itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePrivilege {
    pub privilege: Privilege,
    pub inherited_from: Option<SecurableRef>,
    pub via: Via,
}

/// A principal's level on a workspace object, with every ACL entry (or admin membership)
/// that gives it a level there, strongest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPermission {
    pub object: ObjectRef,
    pub level: PermissionLevel,
    pub via: Vec<Via>,
}

/// An entry of an object's effective ACL, as `GET /permissions` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclView {
    pub principal: PrincipalRef,
    pub level: PermissionLevel,
    /// The directory the entry comes from, when it is inherited.
    pub inherited_from: Option<ObjectRef>,
}

/// One entitlement a principal holds, and every way it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementAccess {
    pub entitlement: Entitlement,
    pub via: Vec<Via>,
}

/// A group a principal is in, for the SCIM `groups` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    pub group: PrincipalRef,
    /// True for a direct membership, false for one through other groups (`indirect`).
    pub direct: bool,
}
