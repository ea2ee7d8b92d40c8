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
//!     token: None,
//! };
//! # }
//! ```
//!
//! Who is an admin is decided in one place, [`is_admin`], for every surface: SCIM and Bulk,
//! Unity Catalog and SQL, the Permissions API, the workspace tree and the access questions.

use scimitar_access::AccessModel;
use scimitar_domain::credentials::Token;
use scimitar_domain::{AccountId, PrincipalId, ScimError, ScimResult};

/// A verified credential, not yet tied to the account a request addresses.
#[derive(Debug, Clone)]
pub struct Credential {
    token: Token,
}

impl Credential {
    pub(crate) fn new(token: Token) -> Credential {
        Credential { token }
    }

    /// The account the credential belongs to.
    pub fn account(&self) -> &AccountId {
        &self.token.account
    }

    /// The principal the credential belongs to.
    pub fn principal(&self) -> &PrincipalId {
        &self.token.principal
    }

    /// Acts in `account`: refused when the credential belongs to another account, so a token
    /// never reaches past its own tenant.
    pub fn act_in(self, account: &AccountId) -> ScimResult<Actor> {
        if self.token.account != *account {
            return Err(ScimError::Forbidden(format!(
                "this token belongs to another account than {account}"
            )));
        }
        Ok(Actor {
            account: self.token.account.clone(),
            principal: self.token.principal.clone(),
            token: Some(self.token),
        })
    }
}

/// A principal acting in its account.
#[derive(Debug, Clone)]
pub struct Actor {
    account: AccountId,
    principal: PrincipalId,
    /// The credential it acts with; `None` for an operator acting through the database.
    token: Option<Token>,
}

impl Actor {
    /// An actor without a credential, for an operator who holds the database (the CLI).
    pub(crate) fn operator(account: AccountId, principal: PrincipalId) -> Actor {
        Actor {
            account,
            principal,
            token: None,
        }
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    pub fn principal(&self) -> &PrincipalId {
        &self.principal
    }

    /// The token the actor authenticated with, if it came through one.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// Whether the engine's model counts this actor as an admin of its account.
    pub(crate) fn is_admin_in(&self, model: &AccessModel) -> bool {
        is_admin(model, &self.principal)
    }
}

/// An actor found to be an admin of its account.
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
        &self.actor.account
    }
}

/// The one rule for who is an admin of an account: an active user or service principal that
/// is a direct member of the account's `admins` group. Groups cannot join `admins` (storage
/// refuses it, as Databricks does), so membership through a group never makes an admin; a
/// deactivated or deleted principal is no admin.
pub fn is_admin(model: &AccessModel, principal: &PrincipalId) -> bool {
    model.is_workspace_admin(principal).unwrap_or(false)
}

/// The refusal a non-admin gets for a change only admins may make.
pub(crate) fn not_an_admin(actor: &Actor, what: &str) -> ScimError {
    ScimError::Forbidden(format!(
        "only admins of the account may {what}: principal {} is not a member of the 'admins' group",
        actor.principal
    ))
}
