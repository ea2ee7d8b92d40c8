//! Scimitar's domain core: what a principal is, what a valid one looks like, and what every SCIM
//! operation means, with no I/O. Storage and HTTP are built on top of it.
//!
//! # Layout
//! - [`error`]: the one error type, [`ScimError`], with its SCIM `scimType`.
//! - [`clock`]: [`Timestamp`] and the injected [`Clock`].
//! - [`ids`]: account, workspace and principal identifiers and the injected [`IdGenerator`].
//! - [`names`]: what a principal's name may be, and its one Unicode form (NFC).
//! - [`schema`]: the served schemas and resource types, as data.
//! - [`paths`]: resolving attribute paths against a resource type.
//! - [`resource`]: the stored [`Principal`] and parsing client documents into canonical form.
//! - [`patch`]: PATCH requests, applied all-or-nothing, with membership changes split out.
//! - [`filter`]: filters resolved against a schema, and their reference evaluation.
//! - [`projection`]: `attributes` / `excludedAttributes`.
//! - [`query`]: list and search parameters.
//! - [`render`]: principals as SCIM wire documents.
//! - [`credentials`]: API tokens and password hashing.

pub mod clock;
pub mod credentials;
pub mod error;
pub mod filter;
pub mod ids;
pub mod names;
pub mod patch;
pub mod paths;
pub mod projection;
pub mod query;
pub mod render;
pub mod resource;
pub mod schema;

pub use clock::{Clock, SystemClock, Timestamp};
pub use error::{InternalError, ScimError, ScimResult, ScimType};
pub use ids::{AccountId, IdGenerator, PrincipalId, RandomIds, WorkspaceId};
pub use resource::Principal;
pub use schema::PrincipalKind;
