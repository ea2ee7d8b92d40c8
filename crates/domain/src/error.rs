//! The one error type of Scimitar's core, with the SCIM `scimType` each client mistake maps to.
//!
//! Every layer returns [`ScimError`]; the HTTP crate turns it into a status code and an RFC 7644
//! error body in exactly one place. Variants carry a human sentence meant for the client, except
//! [`ScimError::Internal`], whose text is logged and never sent.

use std::fmt;

/// The `scimType` keywords of RFC 7644 section 3.12, plus the statuses that carry none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVersion,
    Sensitive,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVersion => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// Everything that can go wrong while serving a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    /// The request is wrong in a way RFC 7644 names with a `scimType` (status 400, or 409 for
    /// uniqueness).
    #[error("{detail}")]
    BadRequest { scim_type: ScimType, detail: String },
    /// The addressed resource does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The `If-Match` version does not match the current one (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is larger than the server accepts (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No credential, or one that is unknown, expired or revoked (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid credential that may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The endpoint exists but not with this HTTP method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A feature the server does not offer (501).
    #[error("{0}")]
    NotImplemented(String),
    /// A fault of the server, not the client (500). The text is for logs only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScimError {
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError::BadRequest {
            scim_type,
            detail: detail.into(),
        }
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidSyntax, detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidPath, detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidFilter, detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::Mutability, detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::Uniqueness, detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::NoTarget, detail)
    }
    pub fn internal(cause: impl fmt::Display) -> Self {
        ScimError::Internal(cause.to_string())
    }

    /// A stable, greppable code for logs, metrics and the future audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            ScimError::BadRequest { scim_type, .. } => scim_type.as_str(),
            ScimError::NotFound(_) => "notFound",
            ScimError::PreconditionFailed(_) => "preconditionFailed",
            ScimError::PayloadTooLarge(_) => "payloadTooLarge",
            ScimError::Unauthorized(_) => "unauthorized",
            ScimError::Forbidden(_) => "forbidden",
            ScimError::MethodNotAllowed(_) => "methodNotAllowed",
            ScimError::NotImplemented(_) => "notImplemented",
            ScimError::Internal(_) => "internal",
        }
    }
}

pub type ScimResult<T> = Result<T, ScimError>;
