//! The access questions (`check`, `who`, `what`) as the HTTP API and the CLI ask them: what is
//! being asked about (a Unity Catalog privilege on a securable, a permission level on a
//! workspace object, or an entitlement), which principal a caller's text names, and one JSON
//! and one text rendering of the engine's answers.
//!
//! The engine answers; this module only translates. `routes/access.rs` adds the HTTP edge and
//! the rule about who may ask, and `scimitar access` prints [`CheckAnswer`]'s text form.

use crate::error::from_access_error;
use crate::service::Services;
use scimitar_access::{
    AccessModel, Entitlement, Holder, Missing, ObjectRef, ObjectType, PermissionLevel,
    PrincipalRef, Privilege, SecurableRef, SecurableType, Source, Via,
};
use scimitar_domain::{AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;

/// What a question is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `privilege` on a Unity Catalog securable.
    Securable {
        privilege: Privilege,
        securable: SecurableRef,
    },
    /// At least `level` on a workspace object.
    Object {
        object: ObjectRef,
        level: PermissionLevel,
    },
    Entitlement(Entitlement),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Securable {
                privilege,
                securable,
            } => write!(f, "{privilege} on {securable}"),
            Target::Object { object, level } => write!(f, "{level} on {object}"),
            Target::Entitlement(entitlement) => write!(f, "the {entitlement} entitlement"),
        }
    }
}

impl Target {
    /// Reads a target from query parameters: `privilege`, `securable_type` and `full_name`;
    /// or `object_type`, `object_id` and `permission_level`; or `entitlement`. Exactly one
    /// form must be given, whole.
    pub fn from_parameters(parameters: &HashMap<String, String>) -> ScimResult<Target> {
        let get = |name: &str| parameters.get(name).map(|value| value.trim().to_string());
        let securable = ["privilege", "securable_type", "full_name"];
        let object = ["object_type", "object_id", "permission_level"];
        let given = |names: &[&str]| names.iter().filter(|name| get(name).is_some()).count();
        let forms = [
            given(&securable) > 0,
            given(&object) > 0,
            get("entitlement").is_some(),
        ];
        if forms.iter().filter(|given| **given).count() != 1 {
            return Err(ScimError::invalid_value(
                "name exactly one thing to ask about: privilege, securable_type and full_name; \
                 or object_type, object_id and permission_level; or entitlement",
            ));
        }
        let require = |name: &str| {
            get(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| ScimError::invalid_value(format!("the parameter {name} is missing")))
        };
        if forms[0] {
            let privilege = Privilege::parse(&require("privilege")?).map_err(from_access_error)?;
            let securable_type =
                SecurableType::parse(&require("securable_type")?).map_err(from_access_error)?;
            return Ok(Target::Securable {
                privilege,
                securable: SecurableRef::new(securable_type, require("full_name")?),
            });
        }
        if forms[1] {
            let object_type =
                ObjectType::parse(&require("object_type")?).map_err(from_access_error)?;
            let level =
                PermissionLevel::parse(&require("permission_level")?).map_err(from_access_error)?;
            return Ok(Target::Object {
                object: ObjectRef {
                    object_type,
                    object_id: require("object_id")?,
                },
                level,
            });
        }
        Ok(Target::Entitlement(
            Entitlement::parse(&require("entitlement")?).map_err(from_access_error)?,
        ))
    }
}

/// Finds the principal a caller names: by id, else by userName, applicationId or group
/// displayName (in that order, ignoring case, as Databricks compares them).
pub async fn resolve_principal(
    services: &Services,
    account: &AccountId,
    text: &str,
) -> ScimResult<PrincipalId> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ScimError::invalid_value("the parameter principal is empty"));
    }
    let by_id = PrincipalId::new(text);
    // The node's engine knows every principal it has applied from the log, so an id it knows
    // needs no storage read (a check over HTTP spent more time in that read than in the
    // engine). One written by another node moments ago is still found in storage below.
    if services
        .access
        .read(account, |model| model.principal_ref(&by_id).is_ok())?
    {
        return Ok(by_id);
    }
    if services.store.principal(account, &by_id).await?.is_some() {
        return Ok(by_id);
    }
    for kind in [
        PrincipalKind::User,
        PrincipalKind::ServicePrincipal,
        PrincipalKind::Group,
    ] {
        if let Some(found) = services
            .store
            .principal_by_name(account, kind, text)
            .await?
        {
            return Ok(found.id);
        }
    }
    Err(ScimError::NotFound(format!(
        "no user, service principal or group is named or has the id '{text}'"
    )))
}

/// One requirement a check met, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetRequirement {
    /// What was needed, for example `USE_SCHEMA on SCHEMA main.sales`.
    pub requirement: Target,
    pub via: Via,
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    /// Nothing supplies this.
    Missing(Target),
    /// The principal is deactivated and holds nothing.
    Deactivated(PrincipalRef),
}

/// The answer to a check, whatever it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnswer {
    pub principal: PrincipalRef,
    pub target: Target,
    pub allowed: bool,
    pub reasons: Vec<MetRequirement>,
    pub missing: Vec<Shortfall>,
}

/// Asks the engine whether `principal` has `target`.
pub fn check(
    model: &AccessModel,
    principal: &PrincipalId,
    target: &Target,
) -> ScimResult<CheckAnswer> {
    let subject = model.principal_ref(principal).map_err(from_access_error)?;
    let mut answer = CheckAnswer {
        principal: subject.clone(),
        target: target.clone(),
        allowed: false,
        reasons: Vec::new(),
        missing: Vec::new(),
    };
    if !model.can_act(principal) {
        answer.missing.push(Shortfall::Deactivated(subject));
        // The engine still refuses unknown securables and misapplied privileges, so a
        // deactivated principal cannot be used to probe what exists.
        if let Target::Securable {
            privilege,
            securable,
        } = target
        {
            model
                .check(
                    principal,
                    *privilege,
                    securable.securable_type,
                    &securable.full_name,
                )
                .map_err(from_access_error)?;
        }
        return Ok(answer);
    }
    match target {
        Target::Securable {
            privilege,
            securable,
        } => {
            let decision = model
                .check(
                    principal,
                    *privilege,
                    securable.securable_type,
                    &securable.full_name,
                )
                .map_err(from_access_error)?;
            answer.allowed = decision.allowed;
            answer.reasons = decision
                .reasons
                .into_iter()
                .map(|reason| MetRequirement {
                    requirement: Target::Securable {
                        privilege: reason.requirement.privilege,
                        securable: reason.requirement.securable,
                    },
                    via: reason.via,
                })
                .collect();
            answer.missing = decision
                .missing
                .into_iter()
                .map(|missing| match missing {
                    Missing::Privilege(requirement) => Shortfall::Missing(Target::Securable {
                        privilege: requirement.privilege,
                        securable: requirement.securable,
                    }),
                    Missing::ActivePrincipal(principal) => Shortfall::Deactivated(principal),
                })
                .collect();
        }
        Target::Object { object, level } => {
            if object.object_type.rank(*level).is_none() {
                return Err(from_access_error(
                    scimitar_access::AccessError::LevelNotApplicable {
                        level: *level,
                        object_type: object.object_type,
                    },
                ));
            }
            let permission = model
                .object_permission(principal, object.object_type, &object.object_id)
                .map_err(from_access_error)?;
            for via in permission.into_iter().flat_map(|permission| permission.via) {
                let held = match &via.source {
                    Source::ObjectAcl { level, .. } => *level,
                    _ => PermissionLevel::CanManage,
                };
                if object.object_type.implies(held, *level) {
                    answer.reasons.push(MetRequirement {
                        requirement: target.clone(),
                        via,
                    });
                }
            }
            answer.allowed = !answer.reasons.is_empty();
            if !answer.allowed {
                answer.missing.push(Shortfall::Missing(target.clone()));
            }
        }
        Target::Entitlement(entitlement) => {
            let held = model
                .explain_entitlements(principal)
                .map_err(from_access_error)?;
            answer.reasons = held
                .into_iter()
                .filter(|access| access.entitlement == *entitlement)
                .flat_map(|access| access.via)
                .map(|via| MetRequirement {
                    requirement: target.clone(),
                    via,
                })
                .collect();
            answer.allowed = !answer.reasons.is_empty();
            if !answer.allowed {
                answer.missing.push(Shortfall::Missing(target.clone()));
            }
        }
    }
    Ok(answer)
}

/// Every active user and service principal that has `target`, each with one way it does.
pub fn who(model: &AccessModel, target: &Target) -> ScimResult<Vec<Holder>> {
    match target {
        Target::Securable {
            privilege,
            securable,
        } => model
            .who(*privilege, securable.securable_type, &securable.full_name)
            .map_err(from_access_error),
        Target::Object { object, level } => model
            .who_has_object_level(object.object_type, &object.object_id, *level)
            .map_err(from_access_error),
        Target::Entitlement(entitlement) => Ok(model.who_has_entitlement(*entitlement)),
    }
}

// ----- JSON ------------------------------------------------------------------------------------

/// `user`, `group` or `service_principal`.
pub fn kind_name(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "user",
        PrincipalKind::Group => "group",
        PrincipalKind::ServicePrincipal => "service_principal",
    }
}

pub fn principal_json(principal: &PrincipalRef) -> Value {
    json!({
        "id": principal.id.as_str(),
        "type": kind_name(principal.kind),
        "name": principal.name,
    })
}

pub fn target_json(target: &Target) -> Value {
    match target {
        Target::Securable {
            privilege,
            securable,
        } => json!({
            "privilege": privilege.as_str(),
            "securable_type": securable.securable_type.as_str(),
            "full_name": securable.full_name,
        }),
        Target::Object { object, level } => json!({
            "permission_level": level.as_str(),
            "object_type": object.object_type.as_str(),
            "object_id": object.object_id,
        }),
        Target::Entitlement(entitlement) => json!({"entitlement": entitlement.as_str()}),
    }
}

pub fn source_json(source: &Source) -> Value {
    match source {
        Source::Grant { privilege, on } => json!({
            "kind": "grant",
            "privilege": privilege.as_str(),
            "securable_type": on.securable_type.as_str(),
            "full_name": on.full_name,
        }),
        Source::Ownership { of } => json!({
            "kind": "ownership",
            "securable_type": of.securable_type.as_str(),
            "full_name": of.full_name,
        }),
        Source::ObjectAcl { object, level } => json!({
            "kind": "object_acl",
            "permission_level": level.as_str(),
            "object_type": object.object_type.as_str(),
            "object_id": object.object_id,
        }),
        Source::WorkspaceAdmin => json!({"kind": "workspace_admin"}),
        Source::Entitlement { entitlement } => json!({
            "kind": "entitlement",
            "entitlement": entitlement.as_str(),
        }),
    }
}

/// A source, the principal holding it (`grantee`), and the membership chain from the
/// principal asked about to that holder.
pub fn via_json(via: &Via) -> Value {
    json!({
        "source": source_json(&via.source),
        "grantee": via.holder().map(principal_json),
        "chain": via.chain.iter().map(principal_json).collect::<Vec<_>>(),
    })
}

pub fn check_json(answer: &CheckAnswer) -> Value {
    json!({
        "principal": principal_json(&answer.principal),
        "target": target_json(&answer.target),
        "allowed": answer.allowed,
        "reasons": answer.reasons.iter().map(|reason| {
            let mut value = via_json(&reason.via);
            value["requirement"] = target_json(&reason.requirement);
            value
        }).collect::<Vec<_>>(),
        "missing": answer.missing.iter().map(|shortfall| match shortfall {
            Shortfall::Missing(target) => {
                let mut value = target_json(target);
                value["message"] = json!(format!("missing {target}"));
                value
            }
            Shortfall::Deactivated(principal) => json!({
                "deactivated": principal_json(principal),
                "message": format!("{principal} is deactivated and holds no access"),
            }),
        }).collect::<Vec<_>>(),
    })
}

pub fn holders_json(target: &Target, holders: &[Holder]) -> Value {
    json!({
        "target": target_json(target),
        "principals": holders.iter().map(|holder| json!({
            "principal": principal_json(&holder.principal),
            "via": via_json(&holder.via),
        })).collect::<Vec<_>>(),
    })
}

pub fn what_json(principal: &PrincipalRef, held: &[Via]) -> Value {
    json!({
        "principal": principal_json(principal),
        "access": held.iter().map(via_json).collect::<Vec<_>>(),
    })
}

// ----- text --------------------------------------------------------------------------------------

/// How a person reads a source: `grant SELECT on SCHEMA main.sales`.
fn source_text(source: &Source) -> String {
    match source {
        Source::Grant { privilege, on } => format!("grant {privilege} on {on}"),
        Source::Ownership { of } => format!("ownership of {of}"),
        Source::ObjectAcl { object, level } => format!("{level} on {object}"),
        Source::WorkspaceAdmin => "workspace admin".to_string(),
        Source::Entitlement { entitlement } => format!("entitlement {entitlement}"),
    }
}

/// `grant SELECT on SCHEMA main.sales to group analysts (alice -> data-team -> analysts)`.
pub fn via_text(via: &Via) -> String {
    // Admin status is held by being in `admins`, not granted to it.
    let preposition = match via.source {
        Source::WorkspaceAdmin => "through",
        _ => "to",
    };
    let holder = via
        .holder()
        .map(|holder| {
            format!(
                " {preposition} {} {}",
                kind_name(holder.kind).replace('_', " "),
                holder
            )
        })
        .unwrap_or_default();
    let chain: Vec<&str> = via.chain.iter().map(|p| p.name.as_str()).collect();
    let chain = if chain.len() > 1 {
        format!(" ({})", chain.join(" -> "))
    } else {
        String::new()
    };
    format!("{}{holder}{chain}", source_text(&via.source))
}

impl fmt::Display for CheckAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed { "ALLOWED" } else { "DENIED" };
        let verb = if self.allowed { "has" } else { "does not have" };
        writeln!(f, "{verdict}: {} {verb} {}", self.principal, self.target)?;
        for reason in &self.reasons {
            if reason.requirement == self.target {
                writeln!(f, "  via {}", via_text(&reason.via))?;
            } else {
                writeln!(f, "  {}: via {}", reason.requirement, via_text(&reason.via))?;
            }
        }
        for shortfall in &self.missing {
            match shortfall {
                Shortfall::Missing(target) => writeln!(f, "  missing {target}")?,
                Shortfall::Deactivated(principal) => {
                    writeln!(f, "  {principal} is deactivated and holds no access")?
                }
            }
        }
        Ok(())
    }
}
