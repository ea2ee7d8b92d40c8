//! What storage keeps for workload identity federation (issue #15): the account's and its
//! service principals' federation policies (which external OIDC issuer's JWTs may be exchanged
//! for an access token, RFC 8693), and the record of JWTs already exchanged, so that none is
//! exchanged twice on any node. See `docs/design/oauth.md`.

use scimitar_domain::{AccountId, PrincipalId, Timestamp};

/// A federation policy: of the account (`service_principal` `None`), whose tokens map their
/// subject to a user by name, or of one service principal, whose tokens become it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationPolicy {
    pub account: AccountId,
    /// The policy's own id, unique in the account: access tokens exchanged through the policy
    /// name it, and its deletion (logged under it) stops them.
    pub uid: String,
    /// The name the API addresses it by, unique among its owner's policies.
    pub policy_id: String,
    pub service_principal: Option<PrincipalId>,
    pub description: Option<String>,
    pub oidc: OidcPolicy,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// Which JWTs a policy accepts, as the edge validated them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OidcPolicy {
    /// The `iss` the JWT must carry: an `https` URL (or, where allowed, loopback `http`).
    pub issuer: String,
    /// Any one of these must be in the JWT's `aud`; empty: the account's id.
    pub audiences: Vec<String>,
    /// The value the subject claim must hold (service principal policies only).
    pub subject: Option<String>,
    /// The claim compared with `subject` (or, for the account's policies, holding the user's
    /// name); `None`: `sub`.
    pub subject_claim: Option<String>,
    /// The issuer's key set, given inline (JSON text); `None`: fetched.
    pub jwks_json: Option<String>,
    /// Where the issuer's key set is; `None`: from its discovery document.
    pub jwks_uri: Option<String>,
}

/// An exchanged JWT, remembered until it expires: `token_id` is its `jti`, or a digest of the
/// whole JWT when it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangedToken {
    pub issuer: String,
    pub token_id: String,
    pub expires: Timestamp,
    /// When it is exchanged: records that expired by then are deleted in the same write.
    pub now: Timestamp,
}
