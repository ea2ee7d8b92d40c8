//! Who is acting, and what they have been found allowed to do: the capabilities every public
//! write of this crate takes.
//!
//! Authorization is by construction. Storage and the commit that writes to it are private to
//! this crate, so an edge (the HTTP crate, the CLI) can change nothing except through a public
//! method, and every public method that writes takes one of these values:
//! - an [`Actor`]: a principal of one account, made only from a verified credential
//!   ([`Services::authenticate`](crate::Services::authenticate) then
//!   [`Credential::act_in`]) or, for an operator who holds the database itself (the CLI), by
//!   [`Services::act_as`](crate::Services::act_as). Methods that take an actor decide what it
//!   may do with the access engine before they commit (Unity Catalog, workspace objects and
//!   their permissions; see those modules).
//! - an [`AccountAdmin`]: an actor found to be an admin of its account by
//!   [`Services::authorize_admin`](crate::Services::authorize_admin), which asks the access
//!   engine after reading the access log up to now, so that a principal removed from `admins`
//!   on another node cannot write with its next request. Changes to users, groups, service
//!   principals and tokens take one.
//!
//! The fields are private and there are no public constructors, so nothing outside this crate
//! can forge either:
//!
//! ```compile_fail
//! # fn forge(actor: scimitar_app::Actor) {
//! let admin = scimitar_app::AccountAdmin { actor };
//! # }
//! ```
//!
//! ```compile_fail
//! # fn forge() {
//! let actor = scimitar_app::Actor {
//!     account: scimitar_domain::AccountId::new("a"),
//!     principal: scimitar_domain::PrincipalId::new("p"),
//!     workspace: None,
//!     token: None,
//! };
//! # }
//! ```
//!
//! Who is an admin is decided in one place, [`is_admin`], for every surface: SCIM and Bulk,
//! Unity Catalog and SQL, the Permissions API, the workspace tree and the access questions.

use scimitar_access::{AccessModel, WorkspacePermission};
use scimitar_domain::credentials::Token;
use scimitar_domain::{AccountId, PrincipalId, ScimError, ScimResult, WorkspaceId};
use std::sync::Arc;

/// A verified credential, not yet tied to the account a request addresses.
#[derive(Debug, Clone)]
pub struct Credential {
    token: Token,
    /// An OAuth access token minted at the account's token endpoint: valid on the account API
    /// only, as Databricks' account-level OAuth tokens are (`crate::oauth`).
    account_api_only: bool,
}

impl Credential {
    pub(crate) fn new(token: Token) -> Credential {
        Credential {
            token,
            account_api_only: false,
        }
    }

    /// The credential of a verified OAuth access token: `token` describes it (its `jti`,
    /// principal, scope, expiry and workspace); one minted for the account has no workspace
    /// and reaches the account API alone.
    pub(crate) fn oauth(token: Token) -> Credential {
        let account_api_only = token.workspace.is_none();
        Credential {
            token,
            account_api_only,
        }
    }

    /// The account the credential belongs to.
    pub fn account(&self) -> &AccountId {
        &self.token.account
    }

    /// The principal the credential belongs to.
    pub fn principal(&self) -> &PrincipalId {
        &self.token.principal
    }

    /// Acts in `account` as a whole (the account API): refused when the credential belongs to
    /// another account, so a token never reaches past its own tenant.
    pub fn act_in(self, account: &AccountId) -> ScimResult<Actor> {
        self.check_account(account)?;
        self.check_workspace(None)?;
        Ok(Actor::noted(ActorParts {
            account: self.token.account.clone(),
            principal: self.token.principal.clone(),
            workspace: None,
            token: Some(self.token),
        }))
    }

    /// Acts in one workspace of its account, which the caller has found the principal may
    /// use ([`Services::enter_workspace`](crate::Services::enter_workspace) asks the engine).
    pub(crate) fn act_in_workspace(
        self,
        account: &AccountId,
        workspace: &WorkspaceId,
    ) -> ScimResult<Actor> {
        self.check_account(account)?;
        self.check_workspace(Some(workspace))?;
        Ok(Actor::noted(ActorParts {
            account: self.token.account.clone(),
            principal: self.token.principal.clone(),
            workspace: Some(workspace.clone()),
            token: Some(self.token),
        }))
    }

    /// A token made in a workspace is valid there alone: anywhere else (another workspace,
    /// the account API) it is answered as a token that does not exist (401), which tells
    /// nobody where it would work. Account-level tokens (`workspace` `None`) work anywhere
    /// their principal may go.
    fn check_workspace(&self, addressed: Option<&WorkspaceId>) -> ScimResult<()> {
        if self.account_api_only && addressed.is_some() {
            return Err(ScimError::Unauthorized(
                "an OAuth token minted for the account is valid on the account API only".into(),
            ));
        }
        match &self.token.workspace {
            Some(own) if Some(own) != addressed => Err(ScimError::Unauthorized(
                "the bearer token was made in another workspace and is valid only there".into(),
            )),
            _ => Ok(()),
        }
    }

    fn check_account(&self, account: &AccountId) -> ScimResult<()> {
        // The addressed account is not named: a caller addressing a workspace by id must
        // not learn which account holds it.
        if self.token.account != *account {
            return Err(ScimError::Forbidden(
                "this token belongs to another account".into(),
            ));
        }
        Ok(())
    }
}

/// A principal acting in its account, through the account API or one of its workspaces.
/// Shared, not copied: a request hands its actor to the audit scope and to every
/// capability it proves, and most requests clone it more than once.
#[derive(Debug, Clone)]
pub struct Actor(Arc<ActorParts>);

#[derive(Debug)]
struct ActorParts {
    account: AccountId,
    principal: PrincipalId,
    /// The workspace it acts in; `None` for the account API (and an operator).
    workspace: Option<WorkspaceId>,
    /// The credential it acts with; `None` for an operator acting through the database.
    token: Option<Token>,
}

impl Actor {
    /// An actor without a credential, for an operator who holds the database (the CLI).
    pub(crate) fn operator(account: AccountId, principal: PrincipalId) -> Actor {
        Actor::noted(ActorParts {
            account,
            principal,
            workspace: None,
            token: None,
        })
    }

    /// Every actor is made through here: the request it is made in records it as the one
    /// acting, for the audit trail (`crate::audit`).
    fn noted(parts: ActorParts) -> Actor {
        let actor = Actor(Arc::new(parts));
        crate::audit::note_actor(&actor);
        actor
    }

    /// The workspace the actor acts in, when it came through a workspace's API: what it reads
    /// of the directory and whom it may change are that workspace's.
    pub fn workspace(&self) -> Option<&WorkspaceId> {
        self.0.workspace.as_ref()
    }

    pub fn account(&self) -> &AccountId {
        &self.0.account
    }

    pub fn principal(&self) -> &PrincipalId {
        &self.0.principal
    }

    /// The token the actor authenticated with, if it came through one.
    pub fn token(&self) -> Option<&Token> {
        self.0.token.as_ref()
    }

    /// Whether the engine's model counts this actor as an admin where it acts: of its
    /// account, or of the workspace it acts in ([`is_admin_of`]).
    pub(crate) fn is_admin_in(&self, model: &AccessModel) -> bool {
        is_admin_of(model, &self.0.principal, self.0.workspace.as_ref())
    }
}

/// An actor found to be an admin where it acts: of its account, or, for an actor in a
/// workspace, of that workspace (whose writes are then kept to the workspace's directory).
#[derive(Debug)]
pub struct AccountAdmin {
    actor: Actor,
}

impl AccountAdmin {
    pub(crate) fn new(actor: Actor) -> AccountAdmin {
        AccountAdmin { actor }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn account(&self) -> &AccountId {
        &self.actor.0.account
    }
}

/// The one rule for who is an admin of an account: an active user or service principal that
/// is a direct member of the account's `admins` group. Groups cannot join `admins` (storage
/// refuses it, as Databricks does), so membership through a group never makes an admin; a
/// deactivated or deleted principal is no admin.
pub fn is_admin(model: &AccessModel, principal: &PrincipalId) -> bool {
    model.is_workspace_admin(principal).unwrap_or(false)
}

/// Who administers a scope: account admins ([`is_admin`]) administer every workspace of their
/// account; a principal assigned `ADMIN` in a workspace (directly or through an active group)
/// administers that workspace's directory, and nothing account-wide (Unity Catalog, other
/// workspaces, the account API ask [`is_admin`] alone).
pub fn is_admin_of(
    model: &AccessModel,
    principal: &PrincipalId,
    workspace: Option<&WorkspaceId>,
) -> bool {
    is_admin(model, principal)
        || workspace.is_some_and(|workspace| {
            model.workspace_permission(workspace, principal) == Some(WorkspacePermission::Admin)
        })
}

/// Who administers a workspace's objects (its tree, and the ACLs of its jobs, clusters and the
/// rest): its admins ([`is_admin_of`]), who hold `CAN_MANAGE` on every object there, as workspace
/// admins do in Databricks. The engine knows account admins' hold; this adds the workspace's.
pub fn administers_objects(
    model: &AccessModel,
    principal: &PrincipalId,
    workspace: &WorkspaceId,
) -> bool {
    is_admin_of(model, principal, Some(workspace))
}

/// The one rule for who manages a group or service principal besides the admins of its
/// account: an admin, or an active principal that holds the resource's manager role
/// (`roles/group.manager`, `roles/servicePrincipal.manager`) in its rule set, itself or
/// through a group it is in, directly or not (`holders` are the principals the rule set
/// grants the role to). The built-in groups are the admins' alone: managing `admins` would
/// make admins. SCIM writes and the rule-set API both decide through this.
pub fn manages(
    model: &AccessModel,
    principal: &PrincipalId,
    target_is_system: bool,
    holders: &[PrincipalId],
) -> bool {
    if is_admin(model, principal) {
        return true;
    }
    if target_is_system || holders.is_empty() || !model.can_act(principal) {
        return false;
    }
    holders.contains(principal)
        || model.groups_of(principal).is_ok_and(|groups| {
            groups
                .iter()
                .any(|membership| holders.contains(&membership.group.id))
        })
}

/// What a manager who is not an admin may change of what it manages: a group's name and
/// members, a service principal's name and active flag. Entitlements, roles, external ids and
/// everything else stay with the admins (an entitlement would widen what the principal, or
/// every member, may do).
pub const MANAGER_MAY_CHANGE: [&str; 3] = ["displayName", "members", "active"];

/// An actor found to manage one group or service principal without being an admin
/// ([`manages`]): it may update that principal, within [`MANAGER_MAY_CHANGE`], and nothing
/// else. Made only by [`Services::authorize_update`](crate::Services::authorize_update).
///
/// ```compile_fail
/// # fn forge(actor: scimitar_app::Actor) {
/// let manager = scimitar_app::authority::PrincipalManager {
///     actor,
///     target: scimitar_domain::PrincipalId::new("g"),
/// };
/// # }
/// ```
#[derive(Debug)]
pub struct PrincipalManager {
    actor: Actor,
    target: PrincipalId,
}

impl PrincipalManager {
    pub(crate) fn new(actor: Actor, target: PrincipalId) -> PrincipalManager {
        PrincipalManager { actor, target }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The one principal it may update.
    pub fn target(&self) -> &PrincipalId {
        &self.target
    }
}

/// Who may update one principal: an admin, or one who manages it.
#[derive(Debug)]
pub enum PrincipalUpdate {
    Admin(AccountAdmin),
    Manager(PrincipalManager),
}

/// The refusal a non-admin gets for a change only admins may make.
pub(crate) fn not_an_admin(actor: &Actor, what: &str) -> ScimError {
    ScimError::Forbidden(format!(
        "only admins of the account may {what}: principal {} is not a member of the 'admins' group",
        actor.0.principal
    ))
}
