//! The access questions (`check`, `who`, `what`) as the HTTP API and the CLI ask them: what is
//! being asked about (a Unity Catalog privilege on a securable, a permission level on a
//! workspace object, or an entitlement), which principal a caller's text names, and one JSON
//! and one text rendering of the engine's answers. `who`'s JSON, which can list 100,000
//! holders, is written straight to bytes from the engine's compact answer.
//!
//! The engine answers; this module translates, and decides who may ask ([`asked_check`],
//! [`asked_who`], [`asked_what`]): admins anything; anyone else only about themselves, and
//! `who`, which lists other principals, is for admins only. The HTTP crate adds the edge, and
//! `scimitar access` (an operator at the database) prints [`CheckAnswer`]'s text form.
//!
//! A caller in a workspace is answered for that workspace, as its other APIs answer it
//! (`docs/design/tenancy.md`): a principal outside its directory does not exist, `who` lists
//! only holders in it, and a securable is held to the catalog workspace bindings
//! ([`AccessModel::workspace_use`]) as Unity Catalog holds it there: missing when its catalog
//! is not usable from the workspace, readable only when bound read-only. The `_in` functions
//! take that workspace; `None` is the account level, which sees the whole account.

use crate::authority::{is_admin, not_an_admin, Actor};
use crate::service::Services;
use crate::workspace_permissions::{exists, objects_workspace, ObjectAddress};
use scimitar_access::{
    client_object_id, AccessModel, BindingType, Entitlement, Explanation, Holder, HolderView,
    Holders, Missing, ObjectRef, ObjectType, PermissionLevel, PrincipalRef, PrincipalView,
    Privilege, SecurableRef, SecurableType, SecurableView, Source, Via, WorkspaceUse,
};
use scimitar_domain::{AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, WorkspaceId};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
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
    /// This target, as a client named it, in the engine's terms in `workspace`: an object's id
    /// as the workspace keeps it (`workspace_permissions::object_id_in`).
    pub fn in_workspace(&self, workspace: &WorkspaceId) -> Target {
        match self {
            Target::Object { object, level } => Target::Object {
                object: ObjectRef {
                    object_type: object.object_type,
                    object_id: crate::workspace_permissions::object_id_in(
                        workspace,
                        object.object_type,
                        &object.object_id,
                    ),
                },
                level: *level,
            },
            other => other.clone(),
        }
    }

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
            let privilege = Privilege::parse(&require("privilege")?).map_err(ScimError::from)?;
            let securable_type =
                SecurableType::parse(&require("securable_type")?).map_err(ScimError::from)?;
            return Ok(Target::Securable {
                privilege,
                securable: SecurableRef::new(securable_type, require("full_name")?),
            });
        }
        if forms[1] {
            let object_type =
                ObjectType::parse(&require("object_type")?).map_err(ScimError::from)?;
            let level =
                PermissionLevel::parse(&require("permission_level")?).map_err(ScimError::from)?;
            return Ok(Target::Object {
                object: ObjectRef {
                    object_type,
                    object_id: require("object_id")?,
                },
                level,
            });
        }
        Ok(Target::Entitlement(
            Entitlement::parse(&require("entitlement")?).map_err(ScimError::from)?,
        ))
    }
}

/// `GET /api/2.0/access/check` asked by `actor`: about `principal` (the actor itself when
/// `None`), as the API's JSON.
pub async fn asked_check(
    services: &Services,
    actor: &Actor,
    principal: Option<&str>,
    target: &Target,
) -> ScimResult<Vec<u8>> {
    let subject = subject(services, actor, principal).await?;
    let workspace = services.questions_workspace(actor).await?;
    let target = &target.in_workspace(&workspace);
    let elsewhere = in_another_workspace(services, actor, target).await?;
    // Rendered while the model is read, from the engine's compact answer.
    services.access.read(actor.account(), |model| {
        if elsewhere {
            let mut answer = check(model, &workspace, &subject, target)?;
            answer
                .reasons
                .retain(|reason| !from_object_acl(&reason.via));
            answer.allowed = !answer.reasons.is_empty();
            if !answer.allowed && answer.missing.is_empty() {
                answer.missing.push(Shortfall::Missing(target.clone()));
            }
            return answer
                .to_json(false)
                .map_err(|error| ScimError::internal(format!("cannot render check: {error}")));
        }
        // A securable the caller may not see is answered as a missing one, so that asking
        // about itself does not tell a caller what exists (`governance::visible_to`).
        if let Target::Securable { securable, .. } = target {
            let exists = model
                .owner(securable.securable_type, &securable.full_name)
                .is_ok();
            let visible = crate::governance::visible_to(
                model,
                actor.principal(),
                securable.securable_type,
                &securable.full_name,
            );
            if securable.securable_type != SecurableType::Metastore && exists && !visible {
                return Err(crate::governance::not_found(
                    securable.securable_type,
                    &securable.full_name,
                ));
            }
        }
        check_json_in(
            model,
            actor.workspace(),
            &workspace,
            &subject,
            target,
            false,
        )
    })?
}

/// `GET /api/2.0/access/who` asked by `actor`: for admins only, since it lists others.
pub async fn asked_who(services: &Services, actor: &Actor, target: &Target) -> ScimResult<Vec<u8>> {
    let workspace = services.questions_workspace(actor).await?;
    let target = &target.in_workspace(&workspace);
    let elsewhere = in_another_workspace(services, actor, target).await?;
    // Rendered while the model is read: the compact answer borrows from it, and writing its
    // JSON directly is several times cheaper than copying every holder's names first.
    services.access.read(actor.account(), |model| {
        if !actor.is_admin_in(model) {
            return Err(not_an_admin(actor, "list who holds an access"));
        }
        if let (true, Target::Object { object, level }) = (elsewhere, target) {
            let mut holders = model
                .who_has_object_level(object.object_type, &object.object_id, *level)
                .map_err(ScimError::from)?;
            holders.retain(|holder| {
                !from_object_acl(&holder.via)
                    && in_directory_of(model, actor.workspace(), &holder.principal.id)
            });
            let answer = WhoAnswer {
                target,
                holders: HolderList::Owned(&holders),
            };
            return answer
                .to_json(false)
                .map_err(|error| ScimError::internal(format!("cannot render who: {error}")));
        }
        who_in(model, actor.workspace(), &workspace, target, |answer| {
            answer.to_json(false)
        })?
        .map_err(|error| ScimError::internal(format!("cannot render who: {error}")))
    })?
}

/// Whether `target` is an object of a workspace other than the actor's. The engine's objects
/// are the account's; such an object is answered as a missing one (no ACL of its own, only
/// what admins hold on every object), by the one check the Permissions API asks.
async fn in_another_workspace(
    services: &Services,
    actor: &Actor,
    target: &Target,
) -> ScimResult<bool> {
    let Target::Object { object, .. } = target else {
        return Ok(false);
    };
    let address = ObjectAddress {
        object_type: object.object_type,
        object_id: object.object_id.clone(),
    };
    let workspace = objects_workspace(actor)?;
    Ok(!exists(services, actor.account(), workspace, &address).await?)
}

fn from_object_acl(via: &Via) -> bool {
    matches!(via.source, Source::ObjectAcl { .. })
}

/// `GET /api/2.0/access/what` asked by `actor`: everything `principal` (the actor itself when
/// `None`) holds, and through what; from a workspace, what it holds there ([`what_in`], and
/// only ACL entries on that workspace's objects).
pub async fn asked_what(
    services: &Services,
    actor: &Actor,
    principal: Option<&str>,
) -> ScimResult<Value> {
    let subject = subject(services, actor, principal).await?;
    let workspace = services.questions_workspace(actor).await?;
    let (reference, mut held) = services.access.read(actor.account(), |model| {
        let reference = model.principal_ref(&subject).map_err(ScimError::from)?;
        Ok::<_, ScimError>((
            reference,
            what_in(model, actor.workspace(), &workspace, &subject)?,
        ))
    })??;
    if let Some(workspace) = actor.workspace() {
        // The engine's objects are the account's: an entry on an object of another workspace
        // is left out, by the one check the Permissions API asks.
        let objects: BTreeSet<(ObjectType, String)> = held
            .iter()
            .filter_map(|via| match &via.source {
                Source::ObjectAcl { object, .. } => {
                    Some((object.object_type, object.object_id.clone()))
                }
                _ => None,
            })
            .collect();
        let mut elsewhere = BTreeSet::new();
        for (object_type, object_id) in objects {
            let address = ObjectAddress {
                object_type,
                object_id,
            };
            if !exists(services, actor.account(), workspace, &address).await? {
                elsewhere.insert((address.object_type, address.object_id));
            }
        }
        held.retain(|via| match &via.source {
            Source::ObjectAcl { object, .. } => {
                !elsewhere.contains(&(object.object_type, object.object_id.clone()))
            }
            _ => true,
        });
    }
    Ok(what_json(&reference, &held))
}

/// The principal a question is about (the actor when none is named), refusing a non-admin
/// who asks about someone else. From a workspace, a principal outside its directory is
/// answered exactly as one that does not exist, so that one workspace cannot learn who is in
/// another.
async fn subject(
    services: &Services,
    actor: &Actor,
    principal: Option<&str>,
) -> ScimResult<PrincipalId> {
    let subject = match principal {
        Some(text) => {
            let found = resolve_principal(services, actor.account(), text).await?;
            if found != *actor.principal() && !in_callers_directory(services, actor, &found).await?
            {
                return Err(no_such_principal(text.trim()));
            }
            found
        }
        None => actor.principal().clone(),
    };
    if subject != *actor.principal()
        && !services
            .access
            .read(actor.account(), |model| is_admin(model, actor.principal()))?
    {
        return Err(not_an_admin(
            actor,
            "ask about another principal (anyone may ask about themselves)",
        ));
    }
    Ok(subject)
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
    Err(no_such_principal(text))
}

/// The answer about a principal that does not exist, or not for the caller.
fn no_such_principal(text: &str) -> ScimError {
    ScimError::NotFound(format!(
        "no user, service principal or group is named or has the id '{text}'"
    ))
}

/// Whether `principal` is in the directory of the workspace `actor` acts in (always, at the
/// account level). The engine may not have applied an assignment made through another node a
/// moment ago, so a "no" is asked again after reading the log, as a SCIM read asks it.
async fn in_callers_directory(
    services: &Services,
    actor: &Actor,
    principal: &PrincipalId,
) -> ScimResult<bool> {
    let ask = || {
        services.access.read(actor.account(), |model| {
            in_directory_of(model, actor.workspace(), principal)
        })
    };
    if ask()? {
        return Ok(true);
    }
    services.catch_up().await?;
    ask()
}

/// Whether `principal` belongs to `workspace`'s directory as its SCIM APIs list it: assigned
/// there, itself or through a group, or one of the built-in groups every workspace has (their
/// names are reserved, so a group of that name is one of them). Everyone of the account
/// belongs to the account level (`None`).
fn in_directory_of(
    model: &AccessModel,
    workspace: Option<&WorkspaceId>,
    principal: &PrincipalId,
) -> bool {
    let Some(workspace) = workspace else {
        return true;
    };
    model.in_workspace(workspace, principal)
        || model.principal_ref(principal).is_ok_and(|found| {
            found.kind == PrincipalKind::Group && matches!(found.name.as_str(), "admins" | "users")
        })
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
    /// The securable's catalog is bound read-only to the workspace asked from, and the
    /// privilege does more than read: no grant gives it there.
    ReadOnlyBinding { catalog: String },
}

impl Shortfall {
    fn read_only_message(catalog: &str) -> String {
        format!("CATALOG {catalog} is bound read-only to this workspace, which may only read it")
    }
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

/// [`check`] asked from `workspace` (`None`: the account level; entitlements are asked in
/// `workspace_asked`, the workspace itself or the account's first). A securable whose catalog the
/// workspace may not use is missing, as Unity Catalog answers it there (for admins too); a
/// privilege that a read-only binding does not allow is not held there, whatever supplies it
/// (the reasons still say what does). Whether the principal is in the workspace's directory
/// is for the caller to ask ([`asked_check`]).
pub fn check_in(
    model: &AccessModel,
    workspace: Option<&WorkspaceId>,
    workspace_asked: &WorkspaceId,
    principal: &PrincipalId,
    target: &Target,
) -> ScimResult<CheckAnswer> {
    let binding = binding_shortfall(model, workspace, target)?;
    let mut answer = check(model, workspace_asked, principal, target)?;
    if let Some(shortfall) = binding {
        answer.allowed = false;
        answer.missing.push(shortfall);
    }
    Ok(answer)
}

/// What the catalog bindings of `workspace` take from a question about a securable: a
/// missing securable (`Err`, as `governance::not_found` words it) when the workspace may not
/// use its catalog, the read-only shortfall when the privilege is more than a read there, and
/// nothing otherwise. Only securables are bound.
fn binding_shortfall(
    model: &AccessModel,
    workspace: Option<&WorkspaceId>,
    target: &Target,
) -> ScimResult<Option<Shortfall>> {
    let Target::Securable {
        privilege,
        securable,
    } = target
    else {
        return Ok(None);
    };
    let (securable_type, full_name) = (securable.securable_type, securable.full_name.as_str());
    match model.workspace_use(workspace, securable_type, full_name) {
        WorkspaceUse::None => Err(crate::governance::not_found(securable_type, full_name)),
        usable if usable.allows(*privilege) => Ok(None),
        _ => Ok(Some(Shortfall::ReadOnlyBinding {
            catalog: full_name.split('.').next().unwrap_or(full_name).to_string(),
        })),
    }
}

/// Asks the engine whether `principal` has `target` account-wide (an entitlement: in
/// `workspace`).
pub fn check(
    model: &AccessModel,
    workspace: &WorkspaceId,
    principal: &PrincipalId,
    target: &Target,
) -> ScimResult<CheckAnswer> {
    let subject = model.principal_ref(principal).map_err(ScimError::from)?;
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
                .map_err(ScimError::from)?;
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
                .map_err(ScimError::from)?;
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
                return Err(ScimError::from(
                    scimitar_access::AccessError::LevelNotApplicable {
                        level: *level,
                        object_type: object.object_type,
                    },
                ));
            }
            let permission = model
                .object_permission(principal, object.object_type, &object.object_id)
                .map_err(ScimError::from)?;
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
                .explain_entitlements(workspace, principal)
                .map_err(ScimError::from)?;
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

/// Asks the engine who has `target` account-wide (every active user and service principal,
/// each with one way it does) and hands the answer to `render` while the model is borrowed.
///
/// For a securable the answer is the engine's compact [`Holders`], read in place: rendering
/// 100,000 holders copies no names. Object levels and entitlements come as owned
/// [`Holder`]s; both are rendered by the same code, [`WhoAnswer`]'s JSON and text.
pub fn who<R>(
    model: &AccessModel,
    workspace: &WorkspaceId,
    target: &Target,
    render: impl FnOnce(&WhoAnswer<'_>) -> R,
) -> ScimResult<R> {
    who_in(model, None, workspace, target, render)
}

/// [`who`] asked from `workspace` (`None`: the account level): only holders in its directory,
/// and for a securable, held to the catalog bindings as [`check_in`] holds it: missing when
/// the workspace may not use its catalog, nobody when it may only read it and the privilege
/// is more than a read.
pub fn who_in<R>(
    model: &AccessModel,
    workspace: Option<&WorkspaceId>,
    workspace_asked: &WorkspaceId,
    target: &Target,
    render: impl FnOnce(&WhoAnswer<'_>) -> R,
) -> ScimResult<R> {
    let in_directory = |principal: &PrincipalId| in_directory_of(model, workspace, principal);
    match target {
        Target::Securable {
            privilege,
            securable,
        } => {
            let usable = binding_shortfall(model, workspace, target)?.is_none();
            let mut holders = model
                .holders(*privilege, securable.securable_type, &securable.full_name)
                .map_err(ScimError::from)?;
            // The account level keeps everyone, without a pass over 100,000 holders.
            if workspace.is_some() {
                holders.retain(|principal| usable && in_directory(principal));
            }
            Ok(render(&WhoAnswer {
                target,
                holders: HolderList::Compact(&holders),
            }))
        }
        Target::Object { object, level } => {
            let mut holders = model
                .who_has_object_level(object.object_type, &object.object_id, *level)
                .map_err(ScimError::from)?;
            holders.retain(|holder| in_directory(&holder.principal.id));
            Ok(render(&WhoAnswer {
                target,
                holders: HolderList::Owned(&holders),
            }))
        }
        Target::Entitlement(entitlement) => {
            let mut holders = model.who_has_entitlement(workspace_asked, *entitlement);
            holders.retain(|holder| in_directory(&holder.principal.id));
            Ok(render(&WhoAnswer {
                target,
                holders: HolderList::Owned(&holders),
            }))
        }
    }
}

/// Everything `principal` holds as seen from `workspace` (`None`: the account level, which
/// sees everything): grants and ownerships only on securables the workspace may use, and of
/// a catalog bound read-only only what reads (a grant of `ALL_PRIVILEGES` reads too). ACL
/// entries are kept: which workspace an object belongs to is storage's to say
/// ([`asked_what`] asks it).
pub fn what_in(
    model: &AccessModel,
    workspace: Option<&WorkspaceId>,
    workspace_asked: &WorkspaceId,
    principal: &PrincipalId,
) -> ScimResult<Vec<Via>> {
    let mut held = model
        .what(workspace_asked, principal)
        .map_err(ScimError::from)?;
    if workspace.is_some() {
        let usable =
            |on: &SecurableRef| model.workspace_use(workspace, on.securable_type, &on.full_name);
        held.retain(|via| match &via.source {
            Source::Grant { privilege, on } => {
                let use_here = usable(on);
                use_here.allows(*privilege)
                    || (use_here == WorkspaceUse::ReadOnly
                        && *privilege == Privilege::AllPrivileges)
            }
            Source::Ownership { of } => usable(of) != WorkspaceUse::None,
            _ => true,
        });
    }
    Ok(held)
}

/// [`who`] as the access API's JSON body: `{"target": ..., "principals": [{"principal": ...,
/// "via": ...}, ...]}`, written straight to bytes.
pub fn who_json(
    model: &AccessModel,
    workspace: &WorkspaceId,
    target: &Target,
) -> ScimResult<Vec<u8>> {
    who(model, workspace, target, |answer| answer.to_json(false))?
        .map_err(|error| ScimError::internal(format!("cannot render who: {error}")))
}

/// The answer to [`who`], borrowed from the engine: [`WhoAnswer::to_json`] for the JSON form,
/// `Display` for the text form.
pub struct WhoAnswer<'a> {
    target: &'a Target,
    holders: HolderList<'a>,
}

enum HolderList<'a> {
    /// Object levels and entitlements.
    Owned(&'a [Holder]),
    /// Securables: slots and predecessors, names read from the model as they are written.
    Compact(&'a Holders<'a>),
}

impl<'a> WhoAnswer<'a> {
    pub fn len(&self) -> usize {
        match self.holders {
            HolderList::Owned(holders) => holders.len(),
            HolderList::Compact(holders) => holders.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> impl Iterator<Item = HolderRef<'_>> + '_ {
        let (owned, compact) = match self.holders {
            HolderList::Owned(holders) => (Some(holders.iter().map(HolderRef::Owned)), None),
            HolderList::Compact(holders) => (None, Some(holders.iter().map(HolderRef::Compact))),
        };
        owned
            .into_iter()
            .flatten()
            .chain(compact.into_iter().flatten())
    }
}

/// One holder of a `who` answer, owned or read in place from the compact answer.
#[derive(Clone, Copy)]
enum HolderRef<'a> {
    Owned(&'a Holder),
    Compact(HolderView<'a>),
}

impl<'a> HolderRef<'a> {
    fn principal(self) -> PrincipalView<'a> {
        match self {
            HolderRef::Owned(holder) => view(&holder.principal),
            HolderRef::Compact(holder) => holder.principal(),
        }
    }

    fn via(self) -> ViaRef<'a> {
        match self {
            HolderRef::Owned(holder) => ViaRef::Owned(&holder.via),
            HolderRef::Compact(holder) => ViaRef::Compact(holder),
        }
    }
}

/// A [`Via`], owned or read in place: its source and its chain, principal first.
#[derive(Clone, Copy)]
enum ViaRef<'a> {
    Owned(&'a Via),
    Compact(HolderView<'a>),
}

impl<'a> ViaRef<'a> {
    fn source(self) -> &'a Source {
        match self {
            ViaRef::Owned(via) => &via.source,
            ViaRef::Compact(holder) => holder.source(),
        }
    }

    fn chain(self) -> impl Iterator<Item = PrincipalView<'a>> + 'a {
        let (owned, compact) = match self {
            ViaRef::Owned(via) => (Some(via.chain.iter().map(view)), None),
            ViaRef::Compact(holder) => (None, Some(holder.chain())),
        };
        owned
            .into_iter()
            .flatten()
            .chain(compact.into_iter().flatten())
    }

    /// The principal that holds the source directly: the chain's last.
    fn holder(self) -> Option<PrincipalView<'a>> {
        self.chain().last()
    }
}

fn view(principal: &PrincipalRef) -> PrincipalView<'_> {
    PrincipalView {
        id: &principal.id,
        kind: principal.kind,
        name: &principal.name,
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
            "object_id": client_object_id(&object.object_id),
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
            "object_id": client_object_id(&object.object_id),
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

pub fn what_json(principal: &PrincipalRef, held: &[Via]) -> Value {
    json!({
        "principal": principal_json(principal),
        "access": held.iter().map(via_json).collect::<Vec<_>>(),
    })
}

// ----- JSON written directly -----------------------------------------------------------------
//
// `who` can list 100,000 holders, each with a chain of several principals: building a `Value`
// for that (a map per principal, a `String` per key) took about a second, and serde's own
// serializer over borrowed structs still took 70 to 95 ms, much of it escaping every key and
// string byte by byte. So its answer is written straight to bytes here: keys as the literals
// they are, strings escaped by serde_json only when they need it. The output is byte for byte what serde_json writes for the `Value` functions
// above (`principal_json`, `source_json`, `via_json`, `target_json`, which `check` and `what`
// use); the tests hold the two together.

/// A JSON writer: compact (the HTTP body) or indented as `serde_json::to_string_pretty`
/// indents (the CLI).
struct JsonWriter {
    out: Vec<u8>,
    pretty: bool,
    depth: usize,
    /// Whether the object or array opened last has no member yet (it decides the comma, and
    /// whether a pretty close goes on a line of its own).
    empty: bool,
    /// The first error serde_json reported while escaping. Writing to a `Vec` cannot fail, so
    /// there is none; it is kept rather than unwrapped.
    error: Option<serde_json::Error>,
}

impl JsonWriter {
    fn new(pretty: bool, capacity: usize) -> JsonWriter {
        JsonWriter {
            out: Vec::with_capacity(capacity),
            pretty,
            depth: 0,
            empty: false,
            error: None,
        }
    }

    fn finish(self) -> Result<Vec<u8>, serde_json::Error> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.out),
        }
    }

    /// Opens an object (`b'{'`) or an array (`b'['`).
    #[inline(always)]
    fn open(&mut self, bracket: u8) {
        self.out.push(bracket);
        self.depth += 1;
        self.empty = true;
    }

    #[inline(always)]
    fn close(&mut self, bracket: u8) {
        self.depth -= 1;
        if self.pretty && !self.empty {
            self.new_line();
        }
        self.out.push(bracket);
        self.empty = false;
    }

    fn new_line(&mut self) {
        self.out.push(b'\n');
        for _ in 0..self.depth {
            self.out.extend_from_slice(b"  ");
        }
    }

    /// Starts the next member of the object or array open: a comma unless it is the first.
    #[inline(always)]
    fn next(&mut self) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        if self.pretty {
            self.new_line();
        }
    }

    /// Starts a member of the object open; `key` is a literal that needs no escaping.
    #[inline(always)]
    fn key(&mut self, key: &'static str) {
        self.next();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out
            .extend_from_slice(if self.pretty { b"\": " } else { b"\":" });
    }

    #[inline(always)]
    fn string(&mut self, text: &str) {
        // Names and ids almost never hold a character to escape, and testing for one is far
        // cheaper than escaping byte by byte.
        if needs_no_escaping(text) {
            self.word(text);
        } else {
            self.escaped(text);
        }
    }

    /// A string that needs no escaping: a name from the engine's vocabulary (`user`,
    /// `SELECT`, `TABLE`), or one [`JsonWriter::string`] found plain.
    #[inline(always)]
    fn word(&mut self, text: &str) {
        debug_assert!(needs_no_escaping(text), "{text:?} needs escaping");
        self.out.push(b'"');
        self.out.extend_from_slice(text.as_bytes());
        self.out.push(b'"');
    }

    #[cold]
    fn escaped(&mut self, text: &str) {
        if let Err(error) = serde_json::to_writer(&mut self.out, text) {
            self.error.get_or_insert(error);
        }
    }

    #[inline(always)]
    fn field(&mut self, key: &'static str, value: &str) {
        self.key(key);
        self.string(value);
    }

    #[inline(always)]
    fn word_field(&mut self, key: &'static str, value: &'static str) {
        self.key(key);
        self.word(value);
    }
}

/// Whether serde_json would write the string as it is: no control character, `"` or `\`.
/// Folded over every byte rather than stopping at the first, so that it runs 16 bytes a step.
#[inline(always)]
fn needs_no_escaping(text: &str) -> bool {
    text.as_bytes().iter().fold(true, |plain, byte| {
        plain & (*byte >= 0x20) & (*byte != b'"') & (*byte != b'\\')
    })
}

/// What [`principal_json`] writes.
fn write_principal(json: &mut JsonWriter, principal: PrincipalView<'_>) {
    json.open(b'{');
    json.field("id", principal.id.as_str());
    json.word_field("type", kind_name(principal.kind));
    json.field("name", principal.name);
    json.close(b'}');
}

/// What [`target_json`] writes.
fn write_target(json: &mut JsonWriter, target: &Target) {
    json.open(b'{');
    write_target_members(json, target);
    json.close(b'}');
}

/// The members of [`write_target`]'s object, for objects that add their own after them.
fn write_target_members(json: &mut JsonWriter, target: &Target) {
    match target {
        Target::Securable {
            privilege,
            securable,
        } => write_securable_target_members(json, *privilege, securable.as_view()),
        Target::Object { object, level } => {
            json.word_field("permission_level", level.as_str());
            json.word_field("object_type", object.object_type.as_str());
            json.field("object_id", client_object_id(&object.object_id));
        }
        Target::Entitlement(entitlement) => json.word_field("entitlement", entitlement.as_str()),
    }
}

/// The members of a target that is a privilege on a securable.
fn write_securable_target_members(
    json: &mut JsonWriter,
    privilege: Privilege,
    securable: SecurableView<'_>,
) {
    json.word_field("privilege", privilege.as_str());
    json.word_field("securable_type", securable.securable_type.as_str());
    json.field("full_name", securable.full_name);
}

/// What [`write_source`] writes for a grant (`granted` is the privilege as granted) or, when
/// `granted` is `None`, an ownership, of `on`.
fn write_securable_source(
    json: &mut JsonWriter,
    granted: Option<Privilege>,
    on: SecurableView<'_>,
) {
    json.open(b'{');
    match granted {
        Some(privilege) => {
            json.word_field("kind", "grant");
            json.word_field("privilege", privilege.as_str());
        }
        None => json.word_field("kind", "ownership"),
    }
    json.word_field("securable_type", on.securable_type.as_str());
    json.field("full_name", on.full_name);
    json.close(b'}');
}

/// What [`source_json`] writes.
fn write_source(json: &mut JsonWriter, source: &Source) {
    match source {
        Source::Grant { privilege, on } => {
            write_securable_source(json, Some(*privilege), on.as_view())
        }
        Source::Ownership { of } => write_securable_source(json, None, of.as_view()),
        Source::ObjectAcl { object, level } => {
            json.open(b'{');
            json.word_field("kind", "object_acl");
            json.word_field("permission_level", level.as_str());
            json.word_field("object_type", object.object_type.as_str());
            json.field("object_id", client_object_id(&object.object_id));
            json.close(b'}');
        }
        Source::WorkspaceAdmin => {
            json.open(b'{');
            json.word_field("kind", "workspace_admin");
            json.close(b'}');
        }
        Source::Entitlement { entitlement } => {
            json.open(b'{');
            json.word_field("kind", "entitlement");
            json.word_field("entitlement", entitlement.as_str());
            json.close(b'}');
        }
    }
}

/// What [`via_json`] writes.
fn write_via(json: &mut JsonWriter, via: ViaRef<'_>) {
    // Told apart once, so that each kind of chain is walked by its own iterator: through
    // `ViaRef::chain`, which tells them apart at every step, 100,000 holders took 1.5 times
    // as long to write.
    match via {
        ViaRef::Owned(via) => write_via_parts(json, &via.source, || via.chain.iter().map(view)),
        ViaRef::Compact(holder) => write_via_parts(json, holder.source(), || holder.chain()),
    }
}

fn write_via_parts<'a, Chain: Iterator<Item = PrincipalView<'a>>>(
    json: &mut JsonWriter,
    source: &Source,
    chain: impl Fn() -> Chain,
) {
    json.open(b'{');
    write_via_members(json, |json| write_source(json, source), chain);
    json.close(b'}');
}

/// The members of [`write_via_parts`]'s object, for objects that add their own after them;
/// `write_source` writes the source's object.
fn write_via_members<'a, Chain: Iterator<Item = PrincipalView<'a>>>(
    json: &mut JsonWriter,
    write_source: impl FnOnce(&mut JsonWriter),
    chain: impl Fn() -> Chain,
) {
    json.key("source");
    write_source(json);
    json.key("grantee");
    match chain().last() {
        Some(holder) => write_principal(json, holder),
        None => json.out.extend_from_slice(b"null"),
    }
    json.key("chain");
    json.open(b'[');
    for link in chain() {
        json.next();
        write_principal(json, link);
    }
    json.close(b']');
}

impl WhoAnswer<'_> {
    /// The access API's answer: `{"target": ..., "principals": [{"principal": ..., "via":
    /// ...}, ...]}`, compact, or indented for a person to read.
    pub fn to_json(&self, pretty: bool) -> Result<Vec<u8>, serde_json::Error> {
        // A holder reached through three groups takes about 500 bytes compact; reserving for
        // that spares the copies of growing a buffer of tens of megabytes step by step.
        let mut json = JsonWriter::new(pretty, 64 + self.len() * 512);
        json.open(b'{');
        json.key("target");
        write_target(&mut json, self.target);
        json.key("principals");
        json.open(b'[');
        for holder in self.iter() {
            json.next();
            json.open(b'{');
            json.key("principal");
            write_principal(&mut json, holder.principal());
            json.key("via");
            write_via(&mut json, holder.via());
            json.close(b'}');
        }
        json.close(b']');
        json.close(b'}');
        json.finish()
    }
}

impl CheckAnswer {
    /// The access API's answer to a check (`{"principal", "target", "allowed", "reasons",
    /// "missing"}`, each reason a via with its `requirement`), written straight to
    /// bytes: an HTTP check answers tens of thousands of times a second, and building the
    /// `Value` tree first (a map and a `String` per key) was a fifth of its CPU.
    pub fn to_json(&self, pretty: bool) -> Result<Vec<u8>, serde_json::Error> {
        let mut json = JsonWriter::new(pretty, 1024);
        json.open(b'{');
        json.key("principal");
        write_principal(&mut json, view(&self.principal));
        json.key("target");
        write_target(&mut json, &self.target);
        json.key("allowed");
        json.out
            .extend_from_slice(if self.allowed { b"true" } else { b"false" });
        json.key("reasons");
        json.open(b'[');
        for reason in &self.reasons {
            json.next();
            json.open(b'{');
            write_via_members(
                &mut json,
                |json| write_source(json, &reason.via.source),
                || reason.via.chain.iter().map(view),
            );
            json.key("requirement");
            write_target(&mut json, &reason.requirement);
            json.close(b'}');
        }
        json.close(b']');
        json.key("missing");
        json.open(b'[');
        for shortfall in &self.missing {
            json.next();
            json.open(b'{');
            match shortfall {
                Shortfall::Missing(target) => {
                    write_target_members(&mut json, target);
                    json.field("message", &format!("missing {target}"));
                }
                Shortfall::Deactivated(principal) => {
                    json.key("deactivated");
                    write_principal(&mut json, view(principal));
                    json.field(
                        "message",
                        &format!("{principal} is deactivated and holds no access"),
                    );
                }
                Shortfall::ReadOnlyBinding { catalog } => {
                    json.field("catalog", catalog);
                    json.word_field("binding_type", BindingType::ReadOnly.as_str());
                    json.field("message", &Shortfall::read_only_message(catalog));
                }
            }
            json.close(b'}');
        }
        json.close(b']');
        json.close(b'}');
        json.finish()
    }
}

/// [`check_in`]'s answer as the access API's JSON body: [`check_json`]'s, unless a read-only
/// binding adds its shortfall.
pub fn check_json_in(
    model: &AccessModel,
    workspace: Option<&WorkspaceId>,
    workspace_asked: &WorkspaceId,
    principal: &PrincipalId,
    target: &Target,
    pretty: bool,
) -> ScimResult<Vec<u8>> {
    if binding_shortfall(model, workspace, target)?.is_none() {
        return check_json(model, workspace_asked, principal, target, pretty);
    }
    check_in(model, workspace, workspace_asked, principal, target)?
        .to_json(pretty)
        .map_err(|error| ScimError::internal(format!("cannot render the check: {error}")))
}

/// [`check`]'s answer as the access API's JSON body. A question about a securable, asked
/// about an active principal, is written straight from the engine's compact
/// [`Explanation`], which copies no names; every other answer is [`CheckAnswer::to_json`].
/// Both write the same bytes for the same answer (the tests hold them together).
pub fn check_json(
    model: &AccessModel,
    workspace: &WorkspaceId,
    principal: &PrincipalId,
    target: &Target,
    pretty: bool,
) -> ScimResult<Vec<u8>> {
    let rendered = match target {
        Target::Securable {
            privilege,
            securable,
        } => {
            let explanation = model
                .explain(
                    principal,
                    *privilege,
                    securable.securable_type,
                    &securable.full_name,
                )
                .map_err(ScimError::from)?;
            if explanation.active() {
                write_explanation(&explanation, target, pretty)
            } else {
                check(model, workspace, principal, target)?.to_json(pretty)
            }
        }
        _ => check(model, workspace, principal, target)?.to_json(pretty),
    };
    rendered.map_err(|error| ScimError::internal(format!("cannot render the check: {error}")))
}

/// What [`CheckAnswer::to_json`] writes, from the engine's compact answer about `target`.
fn write_explanation(
    explanation: &Explanation<'_>,
    target: &Target,
    pretty: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut json = JsonWriter::new(pretty, 1024);
    json.open(b'{');
    json.key("principal");
    write_principal(&mut json, explanation.principal());
    json.key("target");
    write_target(&mut json, target);
    json.key("allowed");
    json.out.extend_from_slice(if explanation.allowed() {
        b"true"
    } else {
        b"false"
    });
    json.key("reasons");
    json.open(b'[');
    for reason in explanation.reasons() {
        json.next();
        json.open(b'{');
        write_via_members(
            &mut json,
            |json| write_securable_source(json, reason.granted(), reason.on()),
            || reason.chain(),
        );
        json.key("requirement");
        let requirement = reason.requirement();
        json.open(b'{');
        write_securable_target_members(&mut json, requirement.privilege, requirement.securable);
        json.close(b'}');
        json.close(b'}');
    }
    json.close(b']');
    json.key("missing");
    json.open(b'[');
    for requirement in explanation.missing() {
        json.next();
        json.open(b'{');
        write_securable_target_members(&mut json, requirement.privilege, requirement.securable);
        json.field(
            "message",
            &format!(
                "missing {} on {}",
                requirement.privilege, requirement.securable
            ),
        );
        json.close(b'}');
    }
    json.close(b']');
    json.close(b'}');
    json.finish()
}

// ----- text --------------------------------------------------------------------------------------

/// How a person reads a source: `grant SELECT on SCHEMA main.sales`.
fn write_source_text(f: &mut fmt::Formatter<'_>, source: &Source) -> fmt::Result {
    match source {
        Source::Grant { privilege, on } => write!(f, "grant {privilege} on {on}"),
        Source::Ownership { of } => write!(f, "ownership of {of}"),
        Source::ObjectAcl { object, level } => write!(f, "{level} on {object}"),
        Source::WorkspaceAdmin => f.write_str("workspace admin"),
        Source::Entitlement { entitlement } => write!(f, "entitlement {entitlement}"),
    }
}

/// `grant SELECT on SCHEMA main.sales to group analysts (alice -> data-team -> analysts)`.
impl fmt::Display for ViaRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.source();
        write_source_text(f, source)?;
        if let Some(holder) = self.holder() {
            // Admin status is held by being in `admins`, not granted to it.
            let preposition = match source {
                Source::WorkspaceAdmin => "through",
                _ => "to",
            };
            let kind = match holder.kind {
                PrincipalKind::User => "user",
                PrincipalKind::Group => "group",
                PrincipalKind::ServicePrincipal => "service principal",
            };
            write!(f, " {preposition} {kind} {}", holder.name)?;
        }
        if self.chain().nth(1).is_some() {
            f.write_str(" (")?;
            for (index, link) in self.chain().enumerate() {
                if index > 0 {
                    f.write_str(" -> ")?;
                }
                f.write_str(link.name)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// [`ViaRef`]'s text for an owned [`Via`].
pub fn via_text(via: &Via) -> String {
    ViaRef::Owned(via).to_string()
}

/// `N principals have T`, then one line per holder: `  alice: via grant SELECT on ...`.
impl fmt::Display for WhoAnswer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} principals have {}", self.len(), self.target)?;
        for holder in self.iter() {
            writeln!(f, "  {}: via {}", holder.principal().name, holder.via())?;
        }
        Ok(())
    }
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
                Shortfall::ReadOnlyBinding { catalog } => {
                    writeln!(f, "  {}", Shortfall::read_only_message(catalog))?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use scimitar_access::AclEntry;

    /// The workspace the questions are asked in (entitlements are per workspace).
    fn workspace() -> WorkspaceId {
        WorkspaceId::new("ws")
    }

    fn add(model: &mut AccessModel, id: &str, kind: PrincipalKind, active: bool) -> PrincipalId {
        let id = PrincipalId::new(id);
        model
            .upsert_principal(&id, kind, &format!("{id}-name"), active)
            .unwrap();
        id
    }

    /// admin owns main, main.sales and main.sales.orders; alice is in team, team in analysts;
    /// carol (a service principal) is in analysts; analysts may read the table and view job
    /// 42; bob holds his grants himself; dave is in team but deactivated; eve holds nothing.
    fn model() -> AccessModel {
        let mut model = AccessModel::new();
        let admin = add(&mut model, "admin", PrincipalKind::User, true);
        let alice = add(&mut model, "alice", PrincipalKind::User, true);
        let bob = add(&mut model, "bob", PrincipalKind::User, true);
        let carol = add(&mut model, "carol", PrincipalKind::ServicePrincipal, true);
        let dave = add(&mut model, "dave", PrincipalKind::User, false);
        add(&mut model, "eve", PrincipalKind::User, true);
        let team = add(&mut model, "team", PrincipalKind::Group, true);
        let analysts = add(&mut model, "analysts", PrincipalKind::Group, true);
        model.add_membership(&team, &alice).unwrap();
        model.add_membership(&team, &dave).unwrap();
        model.add_membership(&analysts, &team).unwrap();
        model.add_membership(&analysts, &carol).unwrap();
        for (kind, name) in [
            (SecurableType::Catalog, "main"),
            (SecurableType::Schema, "main.sales"),
            (SecurableType::Table, "main.sales.orders"),
        ] {
            model.create_securable(kind, name, &admin).unwrap();
        }
        for grantee in [&analysts, &bob] {
            model
                .grant(
                    SecurableType::Catalog,
                    "main",
                    grantee,
                    &[Privilege::UseCatalog],
                )
                .unwrap();
            model
                .grant(
                    SecurableType::Schema,
                    "main.sales",
                    grantee,
                    &[Privilege::UseSchema],
                )
                .unwrap();
        }
        model
            .grant(
                SecurableType::Table,
                "main.sales.orders",
                &analysts,
                &[Privilege::Select],
            )
            .unwrap();
        model
            .grant(
                SecurableType::Schema,
                "main.sales",
                &bob,
                &[Privilege::Select],
            )
            .unwrap();
        model
            .set_object_acl(
                ObjectType::parse("jobs").unwrap(),
                "42",
                &[AclEntry::new(analysts, PermissionLevel::CanView)],
            )
            .unwrap();
        model
    }

    fn principal(id: &str, kind: &str) -> Value {
        json!({"id": id, "type": kind, "name": format!("{id}-name")})
    }

    fn select_on_orders() -> Target {
        Target::Securable {
            privilege: Privilege::Select,
            securable: SecurableRef::new(SecurableType::Table, "main.sales.orders"),
        }
    }

    fn view_job_42() -> Target {
        Target::Object {
            object: ObjectRef {
                object_type: ObjectType::parse("jobs").unwrap(),
                object_id: "42".to_string(),
            },
            level: PermissionLevel::CanView,
        }
    }

    /// The exact bytes, key order included, so that a change of shape cannot pass unnoticed.
    fn assert_json(bytes: Vec<u8>, expected: Value) {
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[test]
    fn who_on_a_securable_writes_every_holder_with_its_source_grantee_and_chain() {
        let model = model();
        let orders_grant = json!({"kind": "grant", "privilege": "SELECT",
            "securable_type": "TABLE", "full_name": "main.sales.orders"});
        let analysts = principal("analysts", "group");
        assert_json(
            who_json(&model, &workspace(), &select_on_orders()).unwrap(),
            json!({
                "target": {"privilege": "SELECT", "securable_type": "TABLE",
                           "full_name": "main.sales.orders"},
                "principals": [
                    {
                        "principal": principal("admin", "user"),
                        "via": {
                            "source": {"kind": "ownership", "securable_type": "TABLE",
                                       "full_name": "main.sales.orders"},
                            "grantee": principal("admin", "user"),
                            "chain": [principal("admin", "user")],
                        },
                    },
                    {
                        "principal": principal("alice", "user"),
                        "via": {
                            "source": orders_grant,
                            "grantee": analysts,
                            "chain": [principal("alice", "user"), principal("team", "group"),
                                      analysts],
                        },
                    },
                    {
                        "principal": principal("bob", "user"),
                        "via": {
                            "source": {"kind": "grant", "privilege": "SELECT",
                                       "securable_type": "SCHEMA", "full_name": "main.sales"},
                            "grantee": principal("bob", "user"),
                            "chain": [principal("bob", "user")],
                        },
                    },
                    {
                        "principal": principal("carol", "service_principal"),
                        "via": {
                            "source": orders_grant,
                            "grantee": analysts,
                            "chain": [principal("carol", "service_principal"), analysts],
                        },
                    },
                ],
            }),
        );
    }

    #[test]
    fn who_on_an_object_writes_owned_holders_in_the_same_shape() {
        let model = model();
        let acl = json!({"kind": "object_acl", "permission_level": "CAN_VIEW",
            "object_type": "jobs", "object_id": "42"});
        let analysts = principal("analysts", "group");
        assert_json(
            who_json(&model, &workspace(), &view_job_42()).unwrap(),
            json!({
                "target": {"permission_level": "CAN_VIEW", "object_type": "jobs",
                           "object_id": "42"},
                "principals": [
                    {
                        "principal": principal("alice", "user"),
                        "via": {
                            "source": acl,
                            "grantee": analysts,
                            "chain": [principal("alice", "user"), principal("team", "group"),
                                      analysts],
                        },
                    },
                    {
                        "principal": principal("carol", "service_principal"),
                        "via": {
                            "source": acl,
                            "grantee": analysts,
                            "chain": [principal("carol", "service_principal"), analysts],
                        },
                    },
                ],
            }),
        );
    }

    /// `check` and `what` write principals, sources, targets and vias through the `Value`
    /// functions, `who` through the writer: every variant, compact and indented, strings that
    /// need escaping included, must come out byte for byte the same.
    #[test]
    fn the_writer_writes_what_serde_json_writes_for_the_value_functions() {
        let principals = [
            PrincipalRef {
                id: PrincipalId::new("u\"1"),
                kind: PrincipalKind::User,
                name: "tab\there \\ \u{1} é".to_string(),
            },
            PrincipalRef {
                id: PrincipalId::new("g1"),
                kind: PrincipalKind::Group,
                name: "team".to_string(),
            },
            PrincipalRef {
                id: PrincipalId::new("s1"),
                kind: PrincipalKind::ServicePrincipal,
                name: "9f0c-app".to_string(),
            },
        ];
        let table = SecurableRef::new(SecurableType::Table, "main.\"sales\".orders");
        let sources = [
            Source::Grant {
                privilege: Privilege::Select,
                on: table.clone(),
            },
            Source::Ownership { of: table },
            Source::ObjectAcl {
                object: ObjectRef {
                    object_type: ObjectType::parse("directories").unwrap(),
                    object_id: "/Users/a\nb".to_string(),
                },
                level: PermissionLevel::CanRun,
            },
            Source::WorkspaceAdmin,
            Source::Entitlement {
                entitlement: Entitlement::parse("workspace-access").unwrap(),
            },
        ];
        let targets = [
            select_on_orders(),
            view_job_42(),
            Target::Entitlement(Entitlement::parse("databricks-sql-access").unwrap()),
        ];
        for pretty in [false, true] {
            let serde = |value: Value| {
                if pretty {
                    serde_json::to_vec_pretty(&value).unwrap()
                } else {
                    serde_json::to_vec(&value).unwrap()
                }
            };
            let written = |write: &dyn Fn(&mut JsonWriter)| {
                let mut json = JsonWriter::new(pretty, 0);
                write(&mut json);
                String::from_utf8(json.finish().unwrap()).unwrap()
            };
            let serde = |value: Value| String::from_utf8(serde(value)).unwrap();
            for principal in &principals {
                assert_eq!(
                    written(&|json| write_principal(json, view(principal))),
                    serde(principal_json(principal))
                );
            }
            for target in &targets {
                assert_eq!(
                    written(&|json| write_target(json, target)),
                    serde(target_json(target))
                );
            }
            for source in &sources {
                assert_eq!(
                    written(&|json| write_source(json, source)),
                    serde(source_json(source))
                );
                for chain in [principals.to_vec(), Vec::new()] {
                    let via = Via {
                        source: source.clone(),
                        chain,
                    };
                    assert_eq!(
                        written(&|json| write_via(json, ViaRef::Owned(&via))),
                        serde(via_json(&via))
                    );
                }
            }
        }
    }

    /// The check answer as a `Value` tree, built the obvious way: the reference the
    /// directly written bytes are held to.
    fn check_value(answer: &CheckAnswer) -> Value {
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
                Shortfall::ReadOnlyBinding { catalog } => json!({
                    "catalog": catalog,
                    "binding_type": "BINDING_TYPE_READ_ONLY",
                    "message": Shortfall::read_only_message(catalog),
                }),
            }).collect::<Vec<_>>(),
        })
    }

    /// Allowed with reasons through groups, denied with what is missing, deactivated, and an
    /// object and an entitlement: the written bytes are serde_json's for `check_value`.
    #[test]
    fn a_check_answer_is_written_as_check_json_has_it() {
        let model = model();
        let mut answers = Vec::new();
        for principal in ["alice", "bob", "carol", "dave", "eve", "admin"] {
            for target in [
                select_on_orders(),
                view_job_42(),
                Target::Entitlement(Entitlement::parse("workspace-access").unwrap()),
            ] {
                let principal = PrincipalId::new(principal);
                answers.push(check(&model, &workspace(), &principal, &target).unwrap());
            }
        }
        assert!(answers
            .iter()
            .any(|answer| answer.allowed && !answer.reasons.is_empty()));
        assert!(answers.iter().any(|answer| answer
            .missing
            .iter()
            .any(|shortfall| matches!(shortfall, Shortfall::Missing(_)))));
        assert!(answers.iter().any(|answer| answer
            .missing
            .iter()
            .any(|shortfall| matches!(shortfall, Shortfall::Deactivated(_)))));
        for answer in &answers {
            for pretty in [false, true] {
                let expected = if pretty {
                    serde_json::to_string_pretty(&check_value(answer)).unwrap()
                } else {
                    serde_json::to_string(&check_value(answer)).unwrap()
                };
                assert_eq!(
                    String::from_utf8(answer.to_json(pretty).unwrap()).unwrap(),
                    expected
                );
            }
        }
    }

    /// The check API's body, written from the engine's compact answer for securables, is
    /// byte for byte `CheckAnswer::to_json`, with users' access sets stale (their groups
    /// walked) and fresh (read from the sets), for every principal and a denial with
    /// several requirements missing.
    #[test]
    fn the_check_body_from_the_compact_answer_is_the_answers_json() {
        let mut model = model();
        let targets = [
            select_on_orders(),
            Target::Securable {
                privilege: Privilege::Modify,
                securable: SecurableRef::new(SecurableType::Table, "main.sales.orders"),
            },
            Target::Securable {
                privilege: Privilege::UseSchema,
                securable: SecurableRef::new(SecurableType::Schema, "main.sales"),
            },
            view_job_42(),
            Target::Entitlement(Entitlement::parse("workspace-access").unwrap()),
        ];
        let mut compared = 0;
        for refreshed in [false, true] {
            if refreshed {
                assert!(model.refresh_access_sets(usize::MAX));
            }
            for principal in ["alice", "bob", "carol", "dave", "eve", "admin", "team"] {
                let principal = PrincipalId::new(principal);
                for target in &targets {
                    let answer = check(&model, &workspace(), &principal, target).unwrap();
                    for pretty in [false, true] {
                        assert_eq!(
                            String::from_utf8(
                                check_json(&model, &workspace(), &principal, target, pretty)
                                    .unwrap()
                            )
                            .unwrap(),
                            String::from_utf8(answer.to_json(pretty).unwrap()).unwrap(),
                            "{principal} {target} pretty={pretty} refreshed={refreshed}"
                        );
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 2 * 7 * 5 * 2);
        let eve = check(
            &model,
            &workspace(),
            &PrincipalId::new("eve"),
            &select_on_orders(),
        )
        .unwrap();
        assert_eq!(
            eve.missing.len(),
            3,
            "eve lacks SELECT and both USE privileges"
        );
        // Unknown principals and securables are refused as `check` refuses them.
        assert!(check_json(
            &model,
            &workspace(),
            &PrincipalId::new("nobody"),
            &select_on_orders(),
            false
        )
        .is_err());
        let unknown_table = Target::Securable {
            privilege: Privilege::Select,
            securable: SecurableRef::new(SecurableType::Table, "main.sales.nothing"),
        };
        let alice = PrincipalId::new("alice");
        assert!(check_json(&model, &workspace(), &alice, &unknown_table, false).is_err());
    }

    #[test]
    fn who_as_text_counts_the_holders_then_gives_one_line_each() {
        let model = model();
        let text = who(&model, &workspace(), &select_on_orders(), |answer| {
            answer.to_string()
        })
        .unwrap();
        assert_eq!(
            text,
            "4 principals have SELECT on TABLE main.sales.orders\n\
             \x20 admin-name: via ownership of TABLE main.sales.orders to user admin-name\n\
             \x20 alice-name: via grant SELECT on TABLE main.sales.orders to group \
             analysts-name (alice-name -> team-name -> analysts-name)\n\
             \x20 bob-name: via grant SELECT on SCHEMA main.sales to user bob-name\n\
             \x20 carol-name: via grant SELECT on TABLE main.sales.orders to group \
             analysts-name (carol-name -> analysts-name)\n"
        );
        let text = who(&model, &workspace(), &view_job_42(), |answer| {
            answer.to_string()
        })
        .unwrap();
        assert_eq!(
            text,
            "2 principals have CAN_VIEW on jobs/42\n\
             \x20 alice-name: via CAN_VIEW on jobs/42 to group analysts-name \
             (alice-name -> team-name -> analysts-name)\n\
             \x20 carol-name: via CAN_VIEW on jobs/42 to group analysts-name \
             (carol-name -> analysts-name)\n"
        );
    }

    /// [`model`] with `main` isolated: bound read-write to workspace 1, where alice and team
    /// are assigned, read-only to workspace 2, where bob is, and not to workspace 3, where
    /// carol is. bob may also MODIFY in main.sales.
    fn bound_model() -> (AccessModel, [WorkspaceId; 3]) {
        use scimitar_access::{IsolationMode, WorkspacePermission};
        let mut model = model();
        let workspaces = [
            WorkspaceId::new("1"),
            WorkspaceId::new("2"),
            WorkspaceId::new("3"),
        ];
        for (workspace, principal) in [
            (&workspaces[0], "alice"),
            (&workspaces[0], "team"),
            (&workspaces[1], "bob"),
            (&workspaces[2], "carol"),
        ] {
            model
                .assign(
                    workspace,
                    &PrincipalId::new(principal),
                    Some(WorkspacePermission::User),
                )
                .unwrap();
        }
        model
            .grant(
                SecurableType::Schema,
                "main.sales",
                &PrincipalId::new("bob"),
                &[Privilege::Modify],
            )
            .unwrap();
        model
            .set_isolation_mode("main", IsolationMode::Isolated)
            .unwrap();
        model
            .bind_workspace("main", &workspaces[0], Some(BindingType::ReadWrite))
            .unwrap();
        model
            .bind_workspace("main", &workspaces[1], Some(BindingType::ReadOnly))
            .unwrap();
        (model, workspaces)
    }

    fn modify_on_orders() -> Target {
        Target::Securable {
            privilege: Privilege::Modify,
            securable: SecurableRef::new(SecurableType::Table, "main.sales.orders"),
        }
    }

    fn who_names(
        model: &AccessModel,
        workspace: Option<&WorkspaceId>,
        target: &Target,
    ) -> Vec<String> {
        who_in(model, workspace, &self::workspace(), target, |answer| {
            answer
                .iter()
                .map(|holder| holder.principal().name.to_string())
                .collect()
        })
        .unwrap()
    }

    #[test]
    fn from_a_workspace_its_catalog_bindings_decide_what_a_check_can_find_and_allow() {
        let (model, [bound, read_only, unbound]) = bound_model();
        let bob = PrincipalId::new("bob");
        // Not bound: missing, as Unity Catalog answers it there, whoever asks about whom.
        for target in [select_on_orders(), modify_on_orders()] {
            let refused =
                check_in(&model, Some(&unbound), &workspace(), &bob, &target).unwrap_err();
            assert!(matches!(refused, ScimError::NotFound(_)), "{refused:?}");
            assert!(
                check_json_in(&model, Some(&unbound), &workspace(), &bob, &target, false).is_err()
            );
        }
        // Read-only: reading is answered as anywhere; modifying is not allowed, and says why
        // while still naming what supplies it.
        let select = check_in(
            &model,
            Some(&read_only),
            &workspace(),
            &bob,
            &select_on_orders(),
        )
        .unwrap();
        assert_eq!(
            select,
            check(&model, &workspace(), &bob, &select_on_orders()).unwrap()
        );
        assert!(select.allowed);
        let everywhere = check(&model, &workspace(), &bob, &modify_on_orders()).unwrap();
        assert!(everywhere.allowed, "{everywhere:?}");
        let modify = check_in(
            &model,
            Some(&read_only),
            &workspace(),
            &bob,
            &modify_on_orders(),
        )
        .unwrap();
        assert!(!modify.allowed);
        assert_eq!(modify.reasons, everywhere.reasons);
        assert_eq!(
            modify.missing,
            [Shortfall::ReadOnlyBinding {
                catalog: "main".to_string()
            }]
        );
        assert_json(
            check_json_in(
                &model,
                Some(&read_only),
                &workspace(),
                &bob,
                &modify_on_orders(),
                false,
            )
            .unwrap(),
            check_value(&modify),
        );
        assert!(modify
            .to_string()
            .contains("CATALOG main is bound read-only to this workspace, which may only read it"));
        // Bound read-write, and the account level: as before.
        for workspace in [Some(&bound), None] {
            assert_eq!(
                check_in(
                    &model,
                    workspace,
                    &self::workspace(),
                    &bob,
                    &modify_on_orders()
                )
                .unwrap(),
                everywhere
            );
        }
    }

    #[test]
    fn from_a_workspace_who_lists_only_its_directory_and_what_its_bindings_allow() {
        let (model, [bound, read_only, unbound]) = bound_model();
        assert_eq!(
            who_names(&model, None, &select_on_orders()),
            ["admin-name", "alice-name", "bob-name", "carol-name"]
        );
        assert_eq!(
            who_names(&model, Some(&bound), &select_on_orders()),
            ["alice-name"]
        );
        assert_eq!(
            who_names(&model, Some(&read_only), &select_on_orders()),
            ["bob-name"]
        );
        assert!(who_names(&model, Some(&read_only), &modify_on_orders()).is_empty());
        assert_eq!(
            who_names(&model, None, &modify_on_orders()),
            ["admin-name", "bob-name"]
        );
        let refused = who_in(
            &model,
            Some(&unbound),
            &workspace(),
            &select_on_orders(),
            |_| (),
        )
        .unwrap_err();
        assert!(matches!(refused, ScimError::NotFound(_)), "{refused:?}");
        // Object levels, not bound to catalogs, are listed for the directory only.
        assert_eq!(
            who_names(&model, Some(&bound), &view_job_42()),
            ["alice-name"]
        );
        assert_eq!(
            who_names(&model, Some(&unbound), &view_job_42()),
            ["carol-name"]
        );
        assert!(who_names(&model, Some(&read_only), &view_job_42()).is_empty());
    }

    #[test]
    fn from_a_workspace_what_leaves_out_securables_it_may_not_use_and_writes_it_may_not_make() {
        let (model, [bound, read_only, unbound]) = bound_model();
        let bob = PrincipalId::new("bob");
        let privileges = |workspace: Option<&WorkspaceId>| -> Vec<String> {
            what_in(&model, workspace, &self::workspace(), &bob)
                .unwrap()
                .iter()
                .filter_map(|via| match &via.source {
                    Source::Grant { privilege, on } => Some(format!("{privilege} {on}")),
                    _ => None,
                })
                .collect()
        };
        let everything = privileges(None);
        assert!(
            everything.contains(&"MODIFY SCHEMA main.sales".to_string()),
            "{everything:?}"
        );
        assert_eq!(privileges(Some(&bound)), everything);
        let readable = privileges(Some(&read_only));
        assert!(
            !readable.iter().any(|held| held.starts_with("MODIFY")),
            "{readable:?}"
        );
        assert!(
            readable.contains(&"SELECT SCHEMA main.sales".to_string()),
            "{readable:?}"
        );
        assert_eq!(readable.len(), everything.len() - 1);
        assert!(privileges(Some(&unbound)).is_empty());
        // The admin's ownership of what main holds is gone where main is not usable.
        let owned = what_in(
            &model,
            Some(&unbound),
            &workspace(),
            &PrincipalId::new("admin"),
        )
        .unwrap();
        assert!(
            !owned
                .iter()
                .any(|via| matches!(via.source, Source::Ownership { .. })),
            "{owned:?}"
        );
    }
}
