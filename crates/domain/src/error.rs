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
    /// The request is well formed but would break a rule about the stored state as a whole,
    /// such as an account keeping an active admin (409); another change can make it possible.
    #[error("{0}")]
    Conflict(String),
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
    /// A fault of the server, not the client (500). Its text and causes are for logs only.
    #[error("internal error: {0}")]
    Internal(#[source] InternalError),
    /// Something the server depends on is down or full (the database unreachable, its disk
    /// full), so nothing was done and the same request can succeed later (503 with
    /// `Retry-After`). Its causes are for logs only.
    #[error("unavailable: {0}")]
    Unavailable(#[source] InternalError),
    /// A write was sent to the database but the connection died before it confirmed the
    /// commit, and reading back could not tell whether it took effect (503). The client must
    /// read before it retries a write that is not idempotent.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(#[source] InternalError),
}

/// A server fault: what was being done, and the error that stopped it, kept whole so that the
/// log line written where the response is made carries the entire cause chain.
#[derive(Debug, Clone)]
pub struct InternalError {
    context: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl InternalError {
    /// What was being done when the fault happened.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The context followed by every cause, outermost first: `a: b: c`.
    pub fn chain(&self) -> String {
        let mut text = self.context.clone();
        let mut next: Option<&(dyn std::error::Error + 'static)> = match &self.source {
            Some(source) => Some(source.as_ref()),
            None => None,
        };
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        text
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.context)
    }
}

impl std::error::Error for InternalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.source {
            Some(source) => Some(source.as_ref()),
            None => None,
        }
    }
}

/// Two faults are the same when they say the same thing; causes are compared by their text.
impl PartialEq for InternalError {
    fn eq(&self, other: &Self) -> bool {
        self.chain() == other.chain()
    }
}

impl Eq for InternalError {}

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
    /// A server fault described by a sentence (a broken invariant, say).
    pub fn internal(cause: impl fmt::Display) -> Self {
        ScimError::Internal(InternalError {
            context: cause.to_string(),
            source: None,
        })
    }

    /// A server fault caused by another error (a database driver's, an I/O error), which is
    /// kept whole with its own causes rather than flattened into text.
    pub fn internal_caused_by(
        context: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ScimError::Internal(InternalError {
            context: context.into(),
            source: Some(std::sync::Arc::new(cause)),
        })
    }

    /// Something the server depends on failed in a way that passes: see [`ScimError::Unavailable`].
    pub fn unavailable_caused_by(
        context: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ScimError::Unavailable(InternalError {
            context: context.into(),
            source: Some(std::sync::Arc::new(cause)),
        })
    }

    /// A commit whose confirmation was lost: see [`ScimError::OutcomeUnknown`].
    pub fn outcome_unknown_caused_by(
        context: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ScimError::OutcomeUnknown(InternalError {
            context: context.into(),
            source: Some(std::sync::Arc::new(cause)),
        })
    }

    /// The fault behind a server-side error (internal, unavailable, outcome unknown), whose
    /// cause chain belongs in the log and never in the response.
    pub fn fault(&self) -> Option<&InternalError> {
        match self {
            ScimError::Internal(fault)
            | ScimError::Unavailable(fault)
            | ScimError::OutcomeUnknown(fault) => Some(fault),
            _ => None,
        }
    }

    /// A stable, greppable code for logs, metrics and the future audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            ScimError::BadRequest { scim_type, .. } => scim_type.as_str(),
            ScimError::NotFound(_) => "notFound",
            ScimError::PreconditionFailed(_) => "preconditionFailed",
            ScimError::Conflict(_) => "conflict",
            ScimError::PayloadTooLarge(_) => "payloadTooLarge",
            ScimError::Unauthorized(_) => "unauthorized",
            ScimError::Forbidden(_) => "forbidden",
            ScimError::MethodNotAllowed(_) => "methodNotAllowed",
            ScimError::NotImplemented(_) => "notImplemented",
            ScimError::Internal(_) => "internal",
            ScimError::Unavailable(_) => "unavailable",
            ScimError::OutcomeUnknown(_) => "outcomeUnknown",
        }
    }
}

pub type ScimResult<T> = Result<T, ScimError>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("the connection broke")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_internal_error_keeps_its_whole_cause_chain() {
        let error = ScimError::internal_caused_by(
            "reading a principal",
            Outer(std::io::Error::other("reset by peer")),
        );
        let ScimError::Internal(internal) = &error else {
            panic!("not internal: {error:?}");
        };
        assert_eq!(internal.context(), "reading a principal");
        assert_eq!(
            internal.chain(),
            "reading a principal: the connection broke: reset by peer"
        );
        // The chain is reachable through the standard `source` walk too.
        let first = std::error::Error::source(&error).expect("the internal error");
        let second = first.source().expect("the driver's error");
        assert_eq!(second.to_string(), "the connection broke");
        assert_eq!(error.code(), "internal");
    }

    #[test]
    fn a_conflict_has_its_own_code_and_says_its_sentence() {
        let error = ScimError::Conflict("an account must keep an admin".into());
        assert_eq!(error.code(), "conflict");
        assert_eq!(error.to_string(), "an account must keep an admin");
    }

    #[test]
    fn an_internal_error_from_a_sentence_has_no_cause() {
        let ScimError::Internal(internal) = ScimError::internal("a broken invariant") else {
            panic!("not internal");
        };
        assert_eq!(internal.chain(), "a broken invariant");
        assert!(std::error::Error::source(&internal).is_none());
    }
}
