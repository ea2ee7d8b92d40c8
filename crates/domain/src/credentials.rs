//! Credentials: API tokens (random secrets stored only as SHA-256 digests) and password hashing
//! (Argon2id). Every token belongs to a principal, so whatever a token does is done by someone.

use crate::clock::Timestamp;
use crate::error::{ScimError, ScimResult};
use crate::ids::{AccountId, IdGenerator, PrincipalId};
use sha2::{Digest, Sha256};
use std::fmt;

/// Prefix of token secrets. Databricks personal access tokens start with `dapi`; using the same
/// shape lets tools written for Databricks accept Scimitar tokens unchanged.
pub const TOKEN_PREFIX: &str = "dapi";

/// What a token may do. Only `admin` exists so far; narrower scopes come with token rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    Admin,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> ScimResult<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(TokenScope::Admin),
            other => Err(ScimError::invalid_value(format!(
                "unknown token scope '{other}'; the scopes are: admin"
            ))),
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
    pub principal: PrincipalId,
    pub scope: TokenScope,
    pub comment: Option<String>,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
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
    fn expired_tokens_are_invalid() {
        let token = Token {
            id: "t".into(),
            account: AccountId::new("a"),
            principal: PrincipalId::new("p"),
            scope: TokenScope::Admin,
            comment: None,
            created: Timestamp::from_micros(0),
            expires: Some(Timestamp::from_micros(10)),
        };
        assert!(token.is_valid_at(Timestamp::from_micros(9)));
        assert!(!token.is_valid_at(Timestamp::from_micros(10)));
    }
}
