//! Credentials: API tokens (random secrets stored only as SHA-256 digests) and password hashing
//! (Argon2id). Every token belongs to a principal, so whatever a token does is done by someone.

use crate::clock::Timestamp;
use crate::error::{ScimError, ScimResult};
use crate::ids::{AccountId, IdGenerator, PrincipalId, WorkspaceId};
use sha2::{Digest, Sha256};
use std::fmt;

/// Prefix of token secrets. Databricks personal access tokens start with `dapi`; using the same
/// shape lets tools written for Databricks accept Scimitar tokens unchanged.
pub const TOKEN_PREFIX: &str = "dapi";

/// What a token may do, on top of what its principal may do (a scope never widens that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    /// Whatever the principal may do (`all-apis`, Databricks' name for unrestricted access;
    /// tokens made before scopes existed were stored as `admin`, read as this).
    AllApis,
    /// Reads only: `GET` and `HEAD` anywhere, and SCIM searches (`POST .../.search`), which
    /// read; any other request is refused with 403.
    ReadOnly,
    /// The SCIM API and nothing else, as an identity provider's connector needs (Databricks'
    /// account SCIM token): every other API is refused with 403.
    Scim,
}

/// The scope names, as the token API and the CLI take them.
pub const TOKEN_SCOPE_NAMES: [&str; 3] = ["all-apis", "read-only", "scim"];

/// What a request does, as far as a token's scope cares: whether it only reads, and whether
/// it is a SCIM request. The HTTP edge describes each request so; the scope decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestKind {
    pub reads_only: bool,
    pub scim: bool,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::AllApis => "all-apis",
            TokenScope::ReadOnly => "read-only",
            TokenScope::Scim => "scim",
        }
    }

    pub fn parse(text: &str) -> ScimResult<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "all-apis" | "admin" => Ok(TokenScope::AllApis),
            "read-only" => Ok(TokenScope::ReadOnly),
            "scim" => Ok(TokenScope::Scim),
            other => Err(ScimError::invalid_value(format!(
                "unknown token scope '{}'; the scopes are: {}",
                other.escape_debug(),
                TOKEN_SCOPE_NAMES.join(", ")
            ))),
        }
    }

    /// Whether a token of this scope may make `request`; the refusal says why.
    pub fn permits(self, request: RequestKind) -> ScimResult<()> {
        match self {
            TokenScope::AllApis => Ok(()),
            TokenScope::ReadOnly if request.reads_only => Ok(()),
            TokenScope::ReadOnly => Err(ScimError::Forbidden(
                "this token is read-only: it may read (GET, HEAD, SCIM searches) but not change anything"
                    .into(),
            )),
            TokenScope::Scim if request.scim => Ok(()),
            TokenScope::Scim => Err(ScimError::Forbidden(
                "this token is for SCIM provisioning only: it may call the SCIM API and nothing else"
                    .into(),
            )),
        }
    }
}

/// A token secret in clear. It exists only between creation and being shown once.
pub struct TokenSecret(String);

impl TokenSecret {
    pub fn generate(ids: &dyn IdGenerator) -> Self {
        let hex = crate::ids::lower_hex(&ids.random_bytes(32));
        TokenSecret(format!("{TOKEN_PREFIX}{hex}"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> String {
        token_digest(&self.0)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// The stored form of a token secret. A fast hash is right here (unlike passwords): the secret
/// has 256 bits of entropy, so there is nothing to brute-force.
pub fn token_digest(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    crate::ids::lower_hex(&digest)
}

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub account: AccountId,
    /// Whom it authenticates: a user or service principal of `account`.
    pub principal: PrincipalId,
    pub scope: TokenScope,
    pub comment: Option<String>,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
    /// The workspace it was made in, where alone it is valid (the token API's personal
    /// access tokens). `None`: an account-level token (the CLI's, the bootstrap admin's),
    /// valid in every workspace the principal may use and on the account API.
    pub workspace: Option<WorkspaceId>,
    /// Who made it, when not its principal itself (an admin's on-behalf-of token, the CLI's
    /// operator); `None` for tokens made before this was recorded.
    pub created_by: Option<PrincipalId>,
}

impl Token {
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }
}

/// Hashes a password with Argon2id into a PHC string.
pub fn hash_password(password: &str, ids: &dyn IdGenerator) -> ScimResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&ids.random_bytes(16)).map_err(ScimError::internal)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(ScimError::internal)
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|hash| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::ids::RandomIds;

    #[test]
    fn token_secrets_are_prefixed_and_hashed_not_kept() {
        let secret = TokenSecret::generate(&RandomIds);
        assert!(secret.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(secret.expose().len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(secret.digest(), token_digest(secret.expose()));
        assert_ne!(secret.digest(), secret.expose());
        assert_eq!(format!("{secret:?}"), "TokenSecret(<redacted>)");
    }

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("correct horse", &RandomIds).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
    }

    #[test]
    fn scopes_parse_by_name_and_the_old_admin_name_is_full_access() {
        assert_eq!(TokenScope::parse("admin").unwrap(), TokenScope::AllApis);
        for name in TOKEN_SCOPE_NAMES {
            assert_eq!(TokenScope::parse(name).unwrap().as_str(), name);
        }
        assert!(TokenScope::parse("root").is_err());
    }

    #[test]
    fn a_read_only_scope_refuses_writes_and_a_scim_scope_everything_but_scim() {
        let request = |reads_only, scim| RequestKind { reads_only, scim };
        for (reads_only, scim) in [(true, true), (true, false), (false, true), (false, false)] {
            assert!(TokenScope::AllApis
                .permits(request(reads_only, scim))
                .is_ok());
            assert_eq!(
                TokenScope::ReadOnly
                    .permits(request(reads_only, scim))
                    .is_ok(),
                reads_only
            );
            assert_eq!(
                TokenScope::Scim.permits(request(reads_only, scim)).is_ok(),
                scim
            );
        }
    }

    #[test]
    fn expired_tokens_are_invalid() {
        let token = Token {
            id: "t".into(),
            account: AccountId::new("a"),
            principal: PrincipalId::new("p"),
            scope: TokenScope::AllApis,
            comment: None,
            created: Timestamp::from_micros(0),
            expires: Some(Timestamp::from_micros(10)),
            workspace: None,
            created_by: None,
        };
        assert!(token.is_valid_at(Timestamp::from_micros(9)));
        assert!(!token.is_valid_at(Timestamp::from_micros(10)));
    }
}
