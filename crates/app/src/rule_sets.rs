//! Account access-control rule sets, as the Databricks account API has them
//! (`access-control/rule-sets` and `assignable-roles`, the SDK's `get_rule_set`,
//! `update_rule_set` and `get_assignable_roles_for_resource`): who holds which role on the
//! account, on a group, or on a service principal.
//!
//! A rule set is named `accounts/{account}/ruleSets/default` (the account),
//! `accounts/{account}/groups/{group id}/ruleSets/default`, or
//! `accounts/{account}/servicePrincipals/{application id}/ruleSets/default`; its resource is
//! the same name without `/ruleSets/default`. Its principals are named as Databricks names
//! them (`users/{userName}`, `groups/{displayName}`, `servicePrincipals/{applicationId}`), and
//! stored by id, so a rename changes nothing and a deletion takes the grant away.
//!
//! A write replaces the whole set and must carry the etag of the version it was read at; one
//! written in between makes it a conflict (409) that writes nothing. Every read is of the
//! database, so a read is always at least as fresh as any etag a client holds.
//!
//! Who may read and write a set: the account's admins, and for a group's or a service
//! principal's set, whoever manages it (`authority::manages`, the same rule by which a
//! manager may update the group or service principal itself through SCIM).

use crate::authority::{self, Actor};
use crate::Services;
use base64::Engine;
use scimitar_domain::{AccountId, Principal, PrincipalId, PrincipalKind, ScimError, ScimResult};
use scimitar_store::{Change, RuleSetRows};
use serde_json::{json, Value};

/// The role whose holders manage a group: change its name and members, and its rule set.
pub const GROUP_MANAGER: &str = "roles/group.manager";
/// The role whose holders manage a service principal: update it, and its rule set.
pub const SERVICE_PRINCIPAL_MANAGER: &str = "roles/servicePrincipal.manager";
/// The role that lets its holders use a service principal (kept; nothing here acts on it).
pub const SERVICE_PRINCIPAL_USER: &str = "roles/servicePrincipal.user";

/// The roles the account's own rule set takes. Kept and returned; Scimitar has no billing or
/// marketplace to act on them, and account admins are the `admins` group's members.
const ACCOUNT_ROLES: [&str; 2] = ["roles/billing.admin", "roles/marketplace.admin"];
const GROUP_ROLES: [&str; 1] = [GROUP_MANAGER];
const SERVICE_PRINCIPAL_ROLES: [&str; 2] = [SERVICE_PRINCIPAL_MANAGER, SERVICE_PRINCIPAL_USER];

/// The most role grants (a role and one principal) one rule set holds: a rule set names a
/// handful of managers, and every grant is a row written on each update.
pub const MAX_RULE_SET_GRANTS: usize = 1_000;

/// The suffix of every rule set's name: only `default` sets exist.
const DEFAULT_SET: &str = "/ruleSets/default";

/// The role whose holders manage a principal of `kind`, if principals of that kind have one.
pub(crate) fn manager_role(kind: PrincipalKind) -> Option<&'static str> {
    match kind {
        PrincipalKind::Group => Some(GROUP_MANAGER),
        PrincipalKind::ServicePrincipal => Some(SERVICE_PRINCIPAL_MANAGER),
        PrincipalKind::User => None,
    }
}

/// How storage names the rule set of a group or service principal: by id.
pub(crate) fn stored_resource(kind: PrincipalKind, id: &PrincipalId) -> String {
    match kind {
        PrincipalKind::ServicePrincipal => format!("servicePrincipals/{id}"),
        _ => format!("groups/{id}"),
    }
}

/// A resource as a client names it, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResourceName {
    Account,
    /// By the group's SCIM id.
    Group(String),
    /// By the service principal's application id (or, failing that, its SCIM id).
    ServicePrincipal(String),
}

/// Parses a resource name (`accounts/{account}[/groups/{id} | /servicePrincipals/{id}]`) of
/// `account`. A name in another account is answered as one that does not exist.
fn parse_resource(text: &str, account: &AccountId) -> ScimResult<ResourceName> {
    let segments: Vec<&str> = text.split('/').collect();
    let malformed = || {
        ScimError::invalid_value(format!(
            "'{}' is not a resource this server keeps rule sets for: accounts/{{account_id}}, \
             accounts/{{account_id}}/groups/{{group_id}} or \
             accounts/{{account_id}}/servicePrincipals/{{application_id}}",
            text.chars().take(256).collect::<String>()
        ))
    };
    let name = match segments.as_slice() {
        ["accounts", _] => ResourceName::Account,
        ["accounts", _, "groups", id] if !id.is_empty() => ResourceName::Group(id.to_string()),
        ["accounts", _, "servicePrincipals", id] if !id.is_empty() => {
            ResourceName::ServicePrincipal(id.to_string())
        }
        _ => return Err(malformed()),
    };
    if segments[1] != account.as_str() {
        return Err(not_found(text));
    }
    Ok(name)
}

/// Parses a rule set's name: its resource and `/ruleSets/default`.
fn parse_rule_set_name(text: &str, account: &AccountId) -> ScimResult<ResourceName> {
    let Some(resource) = text.strip_suffix(DEFAULT_SET) else {
        return Err(ScimError::invalid_value(format!(
            "'{}' is not a rule set name: only {{resource}}/ruleSets/default exist",
            text.chars().take(256).collect::<String>()
        )));
    };
    parse_resource(resource, account)
}

fn not_found(name: &str) -> ScimError {
    ScimError::NotFound(format!(
        "{} does not exist",
        name.chars().take(256).collect::<String>()
    ))
}

/// A resource found: the account, or the group or service principal it is.
struct Resource {
    /// The group or service principal; `None` for the account.
    target: Option<Principal>,
    /// Its name as clients write it (a service principal by its application id).
    name: String,
    /// Its name as storage keeps it (by id).
    stored: String,
    roles: &'static [&'static str],
}

impl Resource {
    fn manager_role(&self) -> Option<&'static str> {
        self.target
            .as_ref()
            .and_then(|target| manager_role(target.kind))
    }
}

async fn resolve(services: &Services, actor: &Actor, name: &str) -> ScimResult<Resource> {
    let parsed = parse_resource(name, actor.account())?;
    resolve_parsed(services, actor, parsed, name).await
}

/// The resource a name names, for `actor`: from a workspace, a group or service principal
/// outside its directory does not exist, as its SCIM APIs answer it, so that a rule set (or
/// its roles) cannot tell one workspace who is in another.
async fn resolve_parsed(
    services: &Services,
    actor: &Actor,
    parsed: ResourceName,
    asked: &str,
) -> ScimResult<Resource> {
    let account = actor.account();
    let prefix = format!("accounts/{account}");
    let found = match parsed {
        ResourceName::Account => {
            return Ok(Resource {
                target: None,
                name: prefix,
                stored: "account".to_string(),
                roles: &ACCOUNT_ROLES,
            })
        }
        ResourceName::Group(id) => services
            .store
            .principal(account, &PrincipalId::new(id))
            .await?
            .filter(|principal| principal.kind == PrincipalKind::Group),
        ResourceName::ServicePrincipal(application_id) => {
            let kind = PrincipalKind::ServicePrincipal;
            match services
                .store
                .principal_by_name(account, kind, &application_id)
                .await?
            {
                Some(found) => Some(found),
                // The SDK's own example writes `<SP_ID>`; a SCIM id is taken too.
                None => services
                    .store
                    .principal(account, &PrincipalId::new(application_id))
                    .await?
                    .filter(|principal| principal.kind == kind),
            }
        }
    };
    let target = found.ok_or_else(|| not_found(asked))?;
    // The engine may not yet have applied an assignment made through another node: it reads
    // the log before it says no, as a SCIM read does.
    if !services.in_scope(actor, &target)
        && (services.catch_up().await.is_err() || !services.in_scope(actor, &target))
    {
        return Err(not_found(asked));
    }
    let (name, roles): (String, &'static [&'static str]) = match target.kind {
        PrincipalKind::Group => (format!("{prefix}/groups/{}", target.id), &GROUP_ROLES),
        _ => {
            let application_id = target
                .attributes
                .get("applicationId")
                .and_then(Value::as_str)
                .map_or_else(|| target.id.to_string(), str::to_string);
            (
                format!("{prefix}/servicePrincipals/{application_id}"),
                &SERVICE_PRINCIPAL_ROLES,
            )
        }
    };
    Ok(Resource {
        stored: stored_resource(target.kind, &target.id),
        target: Some(target),
        name,
        roles,
    })
}

/// The roles that may be granted on `resource`, for any principal of the account: which
/// roles a group or service principal takes is no secret, and their existence is not either
/// (every principal of the account may list them).
pub async fn assignable_roles(
    services: &Services,
    actor: &Actor,
    resource: &str,
) -> ScimResult<Value> {
    let found = resolve(services, actor, resource).await?;
    let roles: Vec<Value> = found
        .roles
        .iter()
        .map(|role| json!({ "name": role }))
        .collect();
    Ok(json!({ "roles": roles }))
}

/// Whether `actor` may read and write the rule set of `resource`: an admin, or (for a group
/// or service principal) one who manages it, decided by `authority::manages`. The engine
/// reads the log up to now first, so a manager removed on another node is refused at once.
async fn authorize(
    services: &Services,
    actor: &Actor,
    resource: &Resource,
    grants: &[(String, PrincipalId)],
) -> ScimResult<()> {
    services
        .access
        .catch_up_to_now(services.store.as_ref())
        .await?;
    let holders: Vec<PrincipalId> = match resource.manager_role() {
        Some(manager) => grants
            .iter()
            .filter(|(role, _)| role == manager)
            .map(|(_, holder)| holder.clone())
            .collect(),
        None => Vec::new(),
    };
    let system = resource.target.as_ref().is_some_and(|target| target.system);
    let allowed = services.access.read(actor.account(), |model| {
        authority::manages(model, actor.principal(), system, &holders)
    })?;
    if allowed {
        return Ok(());
    }
    Err(ScimError::Forbidden(format!(
        "principal {} may not read or change the rule set of {}: only admins of the account, \
         and for a group or service principal whoever holds its manager role, may",
        actor.principal(),
        resource.name
    )))
}

/// The etag of a rule set's version: opaque base64, as Databricks' are.
fn etag_of(version: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(version.to_be_bytes())
}

/// The version an etag this server issued stands for.
fn version_of(etag: &str) -> ScimResult<u64> {
    let refuse = || {
        ScimError::invalid_value(format!(
            "'{}' is not an etag of a rule set of this server: read the rule set and send the \
             etag it carries",
            etag.chars().take(64).collect::<String>()
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(etag.trim())
        .map_err(|_| refuse())?;
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| refuse())?;
    Ok(u64::from_be_bytes(bytes))
}

/// The rule set as the API returns it: `{name, etag, grant_rules: [{role, principals}]}`,
/// principals named as Databricks names them, roles in order, a role once.
fn view(
    services: &Services,
    account: &AccountId,
    resource: &Resource,
    version: u64,
    grants: &[(String, PrincipalId)],
) -> ScimResult<Value> {
    let named = services.access.read(account, |model| {
        grants
            .iter()
            .filter_map(|(role, holder)| {
                let principal = model.principal_ref(holder).ok()?;
                let kind = match principal.kind {
                    PrincipalKind::User => "users",
                    PrincipalKind::Group => "groups",
                    PrincipalKind::ServicePrincipal => "servicePrincipals",
                };
                Some((role.clone(), format!("{kind}/{}", principal.name)))
            })
            .collect::<Vec<(String, String)>>()
    })?;
    let mut rules: Vec<(String, Vec<String>)> = Vec::new();
    for (role, principal) in named {
        match rules.last_mut() {
            Some((last, principals)) if *last == role => principals.push(principal),
            _ => rules.push((role, vec![principal])),
        }
    }
    let grant_rules: Vec<Value> = rules
        .into_iter()
        .map(|(role, mut principals)| {
            principals.sort();
            json!({ "role": role, "principals": principals })
        })
        .collect();
    Ok(json!({
        "name": format!("{}{DEFAULT_SET}", resource.name),
        "etag": etag_of(version),
        "grant_rules": grant_rules,
    }))
}

/// `GET .../access-control/rule-sets?name=N&etag=E`. Every read is of the database, so it is
/// at least as fresh as any etag; a given etag must still be one this server issued.
pub async fn get(
    services: &Services,
    actor: &Actor,
    name: &str,
    etag: Option<&str>,
) -> ScimResult<Value> {
    if let Some(etag) = etag.filter(|etag| !etag.is_empty()) {
        version_of(etag)?;
    }
    let account = actor.account();
    let parsed = parse_rule_set_name(name, account)?;
    let resource = resolve_parsed(services, actor, parsed, name).await?;
    let (version, grants) = services.store.rule_set(account, &resource.stored).await?;
    authorize(services, actor, &resource, &grants).await?;
    view(services, account, &resource, version, &grants)
}

/// A rule set to write, as the request gives it: roles and principals still as names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetUpdate {
    pub name: String,
    pub etag: String,
    /// Each rule's role and principals, with the rule's position for messages.
    pub grant_rules: Vec<(String, Vec<String>)>,
}

/// `PUT .../access-control/rule-sets`: replaces the whole set, if `update.etag` is the
/// current one (else 409, nothing written). Roles must be assignable to the resource and
/// principals must exist (400 naming the rule and principal otherwise).
pub async fn replace(
    services: &Services,
    actor: &Actor,
    update: &RuleSetUpdate,
) -> ScimResult<Value> {
    let account = actor.account();
    let expected_version = version_of(&update.etag)?;
    let parsed = parse_rule_set_name(&update.name, account)?;
    let resource = resolve_parsed(services, actor, parsed, &update.name).await?;
    let (current_version, current) = services.store.rule_set(account, &resource.stored).await?;
    authorize(services, actor, &resource, &current).await?;
    // Authorized against the version it replaces: storage checks it again as it writes.
    if current_version != expected_version {
        return Err(ScimError::Conflict(
            scimitar_store::RULE_SET_CHANGED.to_string(),
        ));
    }
    let mut grants: Vec<(String, PrincipalId)> = Vec::new();
    for (position, (role, principals)) in update.grant_rules.iter().enumerate() {
        let Some(role) = resource.roles.iter().find(|known| **known == role.as_str()) else {
            return Err(ScimError::invalid_value(format!(
                "grant_rules[{position}].role: '{}' cannot be granted on {}; it takes {}",
                role.chars().take(128).collect::<String>(),
                resource.name,
                resource.roles.join(", ")
            )));
        };
        for (index, principal) in principals.iter().enumerate() {
            let field = format!("grant_rules[{position}].principals[{index}]");
            let holder = principal_named(services, account, principal, &field).await?;
            let grant = (role.to_string(), holder);
            if !grants.contains(&grant) {
                grants.push(grant);
            }
            if grants.len() > MAX_RULE_SET_GRANTS {
                return Err(ScimError::invalid_value(format!(
                    "a rule set holds at most {MAX_RULE_SET_GRANTS} grants of a role to a principal"
                )));
            }
        }
    }
    let rows = RuleSetRows {
        resource: resource.stored.clone(),
        target: resource.target.as_ref().map(|target| target.id.clone()),
        grants,
    };
    services
        .commit(
            account,
            Change::ReplaceRuleSet {
                rule_set: rows,
                expected_version,
            },
        )
        .await?;
    let (version, grants) = services.store.rule_set(account, &resource.stored).await?;
    view(services, account, &resource, version, &grants)
}

/// The principal a rule names: `users/{userName}`, `groups/{displayName}` or
/// `servicePrincipals/{applicationId}`, in the account.
async fn principal_named(
    services: &Services,
    account: &AccountId,
    text: &str,
    field: &str,
) -> ScimResult<PrincipalId> {
    let shown: String = text.chars().take(256).collect();
    let (kind, name) = match text.split_once('/') {
        Some(("users", name)) => (PrincipalKind::User, name),
        Some(("groups", name)) => (PrincipalKind::Group, name),
        Some(("servicePrincipals", name)) => (PrincipalKind::ServicePrincipal, name),
        _ => {
            return Err(ScimError::invalid_value(format!(
                "{field}: '{shown}' is not users/{{userName}}, groups/{{displayName}} or \
                 servicePrincipals/{{applicationId}}"
            )))
        }
    };
    services
        .store
        .principal_by_name(account, kind, name)
        .await?
        .map(|principal| principal.id)
        .ok_or_else(|| ScimError::invalid_value(format!("{field}: there is no {shown}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_of_this_account_parse_and_others_are_not_found() {
        let account = AccountId::new("a1");
        assert_eq!(
            parse_rule_set_name("accounts/a1/ruleSets/default", &account).unwrap(),
            ResourceName::Account
        );
        assert_eq!(
            parse_rule_set_name("accounts/a1/groups/42/ruleSets/default", &account).unwrap(),
            ResourceName::Group("42".into())
        );
        assert_eq!(
            parse_resource("accounts/a1/servicePrincipals/app-1", &account).unwrap(),
            ResourceName::ServicePrincipal("app-1".into())
        );
        assert!(matches!(
            parse_rule_set_name("accounts/b2/groups/42/ruleSets/default", &account),
            Err(ScimError::NotFound(_))
        ));
        for bad in [
            "accounts/a1/groups/42",
            "accounts/a1/groups/42/ruleSets/other",
            "accounts/a1/budgetPolicies/7/ruleSets/default",
            "accounts/a1/groups//ruleSets/default",
            "groups/42/ruleSets/default",
            "",
        ] {
            assert!(
                matches!(
                    parse_rule_set_name(bad, &account),
                    Err(ScimError::BadRequest { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_etag_is_base64_of_its_version_and_nothing_else_is_one() {
        for version in [0, 1, 2, 1 << 40] {
            assert_eq!(version_of(&etag_of(version)).unwrap(), version);
        }
        assert_eq!(etag_of(1), "AAAAAAAAAAE=");
        for bad in ["", "not base64!", "AAAA", "AAAAAAAAAAAAAAAA"] {
            assert!(version_of(bad).is_err(), "{bad}");
        }
    }
}
