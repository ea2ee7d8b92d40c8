//! What storage keeps for OAuth machine-to-machine access (issue #15): a service principal's
//! client secrets, by digest, and each account's Ed25519 signing keys. See
//! `docs/design/oauth.md`.

use scimitar_domain::{AccountId, PrincipalId, Timestamp};

/// A service principal's OAuth client secret, without the secret (only its SHA-256 digest is
/// stored, in [`StoredOAuthSecret`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSecret {
    pub id: String,
    pub account: AccountId,
    pub principal: PrincipalId,
    /// What tokens minted from it may be asked for; empty: anything.
    pub scopes: Vec<String>,
    pub created: Timestamp,
    /// `None`: never expires.
    pub expires: Option<Timestamp>,
}

impl OAuthSecret {
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }
}

/// A secret as stored: what it is, and the digest a client's secret is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOAuthSecret {
    pub secret: OAuthSecret,
    pub digest: String,
}

/// One of an account's access-token signing keys. The private key is the server's, not a
/// user's secret: every node signs and verifies with the keys in storage. Its `Debug` form
/// leaves the key out, so that it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub account: AccountId,
    /// The key id tokens name in their header (`kid`).
    pub kid: String,
    /// The Ed25519 seed (32 bytes), hex.
    pub private_key: String,
    pub created: Timestamp,
    /// After this, the key signs nothing new (a newer key does).
    pub signs_until: Timestamp,
    /// After this, every token it signed has expired: it leaves the JWKS and storage.
    pub remove_after: Timestamp,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SigningKey")
            .field("account", &self.account)
            .field("kid", &self.kid)
            .field("created", &self.created)
            .field("signs_until", &self.signs_until)
            .field("remove_after", &self.remove_after)
            .finish_non_exhaustive()
    }
}
