//! Accounts' workspaces and who may use them: entering a workspace with a credential, the
//! workspaces of an account (the Account API's `a.workspaces`), and workspace assignment
//! (`a.workspace_assignment`). See `docs/design/tenancy.md`.

use scimitar_access::{PrincipalRef, WorkspacePermission};
use scimitar_domain::{AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, WorkspaceId};
use scimitar_store::{Change, Workspace};

use crate::authority::{is_admin, AccountAdmin, Actor, Credential};
use crate::Services;

/// The longest account or workspace name.
const MAX_NAME: usize = 256;

/// A name as given, trimmed, refused when empty, too long or holding control characters.
pub(crate) fn checked_name(what: &str, name: &str) -> ScimResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ScimError::invalid_value(format!(
            "a {what} must be 1 to {MAX_NAME} characters without control characters"
        )));
    }
    Ok(name.to_string())
}

/// A deployment name is the first label of the workspace's host name: lowercase letters,
/// digits and inner hyphens, at most 63 characters (RFC 1123).
pub fn checked_deployment_name(name: &str) -> ScimResult<String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        return Err(ScimError::invalid_value(format!(
            "deployment_name {:?} must be a host name label: 1 to 63 lowercase letters, digits \
             and inner hyphens",
            name.escape_debug().to_string()
        )));
    }
    Ok(name.to_string())
}

/// What a workspace write may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceUpdate {
    pub name: Option<String>,
    pub deployment_name: Option<String>,
}

/// One direct assignment, as the assignment API lists it.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub principal: PrincipalRef,
    pub permission: WorkspacePermission,
}

fn workspace_not_found(id: &WorkspaceId) -> ScimError {
    ScimError::NotFound(format!("workspace {id} not found"))
}

/// The refusal a workspace admin gets for what only account admins may do.
fn account_admins_only(actor: &Actor, what: &str) -> ScimError {
    ScimError::Forbidden(format!(
        "only admins of the account may {what}: principal {} is not one",
        actor.principal()
    ))
}

impl Services {
    /// The workspace the access questions answer about entitlements for (entitlements are
    /// per workspace): the actor's, or, for an actor without one (an operator at the
    /// database, `scimitar access`), its account's first workspace, the one every account is
    /// made with and the one the default paths of a single-workspace deployment serve.
    pub async fn questions_workspace(&self, actor: &Actor) -> ScimResult<WorkspaceId> {
        match actor.workspace() {
            Some(workspace) => Ok(workspace.clone()),
            None => self.first_workspace(actor.account()).await,
        }
    }

    /// The account's first (oldest) workspace; an account without any is a 400, since a
    /// question about entitlements then has no workspace to be asked in.
    pub async fn first_workspace(&self, account: &AccountId) -> ScimResult<WorkspaceId> {
        self.store
            .workspaces(account)
            .await?
            .into_iter()
            .next()
            .map(|workspace| workspace.id)
            .ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "account {account} has no workspace to answer about entitlements in"
                ))
            })
    }

    /// A workspace by id, in whichever account holds it (addressing comes before
    /// authentication; the credential is then held to that account).
    pub async fn workspace(&self, id: &WorkspaceId) -> ScimResult<Workspace> {
        self.store
            .workspace(id)
            .await?
            .ok_or_else(|| workspace_not_found(id))
    }

    /// A workspace by the deployment name its host name starts with.
    pub async fn workspace_by_deployment_name(&self, name: &str) -> ScimResult<Workspace> {
        self.store
            .workspace_by_deployment_name(name)
            .await?
            .ok_or_else(|| ScimError::NotFound(format!("no workspace is deployed as {name:?}")))
    }

    /// Acts in `workspace` with a verified credential: the credential's account must hold the
    /// workspace, and its principal must be an account admin or assigned there (directly or
    /// through a group), else 403. Another account's workspace is answered as a missing one,
    /// so that a credential cannot learn which workspace ids exist elsewhere.
    pub async fn enter_workspace(
        &self,
        credential: Credential,
        workspace: &Workspace,
    ) -> ScimResult<Actor> {
        if *credential.account() != workspace.account {
            // Not even its id: an unprefixed path names the default workspace implicitly.
            return Err(ScimError::NotFound(
                "the addressed workspace does not exist".into(),
            ));
        }
        let actor = credential.act_in_workspace(&workspace.account, &workspace.id)?;
        let allowed = |services: &Services| {
            services.access.read(actor.account(), |model| {
                is_admin(model, actor.principal())
                    || model
                        .workspace_permission(&workspace.id, actor.principal())
                        .is_some()
            })
        };
        // An assignment made through another node may be newer than this engine.
        if allowed(self)? || (self.catch_up().await.is_ok() && allowed(self)?) {
            return Ok(actor);
        }
        Err(ScimError::Forbidden(format!(
            "principal {} is not assigned to workspace {}",
            actor.principal(),
            workspace.id
        )))
    }

    /// The account-level admin behind `admin`: workspace admins administer their workspace's
    /// directory, never the account's workspaces or assignments.
    fn account_admin<'a>(&self, admin: &'a AccountAdmin, what: &str) -> ScimResult<&'a Actor> {
        let actor = admin.actor();
        let account_admin = actor.workspace().is_none()
            || self
                .access
                .read(actor.account(), |model| is_admin(model, actor.principal()))?;
        if !account_admin {
            return Err(account_admins_only(actor, what));
        }
        Ok(actor)
    }

    /// The workspace `id` of the admin's account; another account's is "not found".
    pub async fn account_workspace(
        &self,
        admin: &AccountAdmin,
        id: &WorkspaceId,
    ) -> ScimResult<Workspace> {
        match self.store.workspace(id).await? {
            Some(workspace) if workspace.account == *admin.account() => Ok(workspace),
            _ => Err(workspace_not_found(id)),
        }
    }

    /// A new workspace of the admin's account, where the built-in `users` group holds the
    /// default entitlements ([`crate::service::USERS_GROUP_ENTITLEMENTS`]), as in every
    /// workspace.
    pub async fn create_workspace(
        &self,
        admin: &AccountAdmin,
        name: &str,
        deployment_name: Option<&str>,
    ) -> ScimResult<Workspace> {
        self.account_admin(admin, "create workspaces")?;
        let now = self.clock.now();
        let workspace = Workspace {
            id: WorkspaceId::new(self.ids.principal_id(now).to_string()),
            account: admin.account().clone(),
            name: checked_name("workspace name", name)?,
            created: now,
            deployment_name: deployment_name.map(checked_deployment_name).transpose()?,
        };
        let change = Change::CreateWorkspace {
            workspace: workspace.clone(),
            users_entitlements: crate::service::users_group_entitlements(),
        };
        self.commit(admin.account(), change).await?;
        Ok(workspace)
    }

    /// Renames a workspace or changes its deployment name.
    pub async fn update_workspace(
        &self,
        admin: &AccountAdmin,
        id: &WorkspaceId,
        update: WorkspaceUpdate,
    ) -> ScimResult<Workspace> {
        self.account_admin(admin, "change workspaces")?;
        let mut workspace = self.account_workspace(admin, id).await?;
        if let Some(name) = update.name {
            workspace.name = checked_name("workspace name", &name)?;
        }
        if let Some(deployment_name) = update.deployment_name {
            workspace.deployment_name = Some(checked_deployment_name(&deployment_name)?);
        }
        self.commit(admin.account(), Change::UpdateWorkspace(workspace.clone()))
            .await?;
        Ok(workspace)
    }

    /// Deletes a workspace and its assignments. Its principals stay in the account.
    pub async fn delete_workspace(
        &self,
        admin: &AccountAdmin,
        id: &WorkspaceId,
    ) -> ScimResult<Workspace> {
        self.account_admin(admin, "delete workspaces")?;
        let workspace = self.account_workspace(admin, id).await?;
        self.commit(admin.account(), Change::DeleteWorkspace { id: id.clone() })
            .await?;
        Ok(workspace)
    }

    /// A workspace's direct assignments, by principal id.
    pub async fn workspace_assignments(
        &self,
        admin: &AccountAdmin,
        id: &WorkspaceId,
    ) -> ScimResult<Vec<Assignment>> {
        self.account_admin(admin, "read workspace assignments")?;
        let workspace = self.account_workspace(admin, id).await?;
        self.access.read(admin.account(), |model| {
            model
                .workspace_assignments(&workspace.id)
                .into_iter()
                .map(|(principal, permission)| Assignment {
                    principal,
                    permission,
                })
                .collect()
        })
    }

    /// Assigns a user, service principal or group of the account to a workspace (`Some`), or
    /// removes its direct assignment (`None`). Returns what it is now directly assigned.
    pub async fn assign(
        &self,
        admin: &AccountAdmin,
        workspace: &WorkspaceId,
        principal: &PrincipalId,
        permission: Option<WorkspacePermission>,
    ) -> ScimResult<Option<Assignment>> {
        self.account_admin(admin, "assign principals to workspaces")?;
        let workspace = self.account_workspace(admin, workspace).await?;
        let account = admin.account();
        let target = self
            .store
            .principal(account, principal)
            .await?
            .ok_or_else(|| ScimError::NotFound(format!("principal {principal} not found")))?;
        if target.system {
            // The built-in groups are every workspace's own; assigning them means nothing.
            return Err(ScimError::invalid_value(format!(
                "the built-in group '{}' cannot be assigned to a workspace",
                target.display_name().unwrap_or_default()
            )));
        }
        self.commit(
            account,
            Change::AssignToWorkspace {
                workspace: workspace.id.clone(),
                principal: principal.clone(),
                permission,
            },
        )
        .await?;
        let reference = self.access.read(account, |model| {
            model.principal_ref(principal).map_err(ScimError::from)
        })??;
        Ok(permission.map(|permission| Assignment {
            principal: reference,
            permission,
        }))
    }

    /// Whether `actor`, acting in a workspace, may see `principal` there: it belongs to the
    /// workspace's directory (assigned, directly or through a group) or is a built-in group.
    /// Outside a workspace (the account API), every principal of the account is in scope.
    pub(crate) fn in_scope(&self, actor: &Actor, principal: &scimitar_domain::Principal) -> bool {
        let Some(workspace) = actor.workspace() else {
            return true;
        };
        principal.system
            || self
                .access
                .read(actor.account(), |model| {
                    model.in_workspace(workspace, &principal.id)
                })
                .unwrap_or(false)
    }

    /// What a write through a workspace may touch: principals of that workspace's directory
    /// ("not found" otherwise, as a read would say); and, for a workspace admin who is not an
    /// account admin, neither an account admin nor the `admins` group, so that administering
    /// one workspace never reaches the account's administrators.
    pub(crate) fn check_write_scope(
        &self,
        admin: &AccountAdmin,
        kind: PrincipalKind,
        target: &scimitar_domain::Principal,
    ) -> ScimResult<()> {
        let actor = admin.actor();
        if actor.workspace().is_none() {
            return Ok(());
        }
        if !self.in_scope(actor, target) {
            return Err(crate::service::not_found(kind, &target.id));
        }
        let (caller_is_account_admin, target_is_account_admin) =
            self.access.read(actor.account(), |model| {
                (
                    is_admin(model, actor.principal()),
                    is_admin(model, &target.id),
                )
            })?;
        let admins_group = target.system
            && target
                .display_name()
                .is_some_and(|name| name.eq_ignore_ascii_case("admins"));
        if !caller_is_account_admin && (target_is_account_admin || admins_group) {
            return Err(account_admins_only(
                actor,
                "change account admins or the 'admins' group",
            ));
        }
        Ok(())
    }
}
