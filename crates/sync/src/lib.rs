//! Scimitar's provisioning engine (`scimitar sync`, issue #17): reconcile one source of
//! identities into a SCIM target, planning every change before making any.
//!
//! # Layout
//! - [`model`]: identities as both sides hold them, the job's state (id mappings, ownership,
//!   watermark) and what a target can do.
//! - [`config`]: the job's TOML configuration and the [`config::Policy`] the planner follows
//!   (scope, brownfield matching, entitlement mappings, grace period, deletion guard).
//! - [`scope`]: the scope filter, a SCIM filter on the source's users and service principals.
//! - [`mapping`]: attribute mappings, target attributes made from source attributes or
//!   constants through simple transforms.
//! - [`plan`]: the reconciliation core, pure (no I/O, no clock): snapshots, state, policy and
//!   capabilities in, a [`plan::Plan`] out.
//! - [`drift`]: a managed target object changed out of band, told apart from the source's
//!   changes by a digest of what the source wanted of it at the last run; reported, and
//!   corrected unless `policy.correct_drift` is off.
//! - [`render`]: a plan as a readable diff.
//! - [`reviewed`]: a plan saved for review, and whether a target's plan is still that one.
//! - [`progress`]: a run's progress on a terminal (stderr), and nothing when it is not one.
//! - [`scim`]: SCIM 2.0 over HTTP: reading a source or target (paged), writing a target, the
//!   generic and Databricks profiles, retries on 429 and 503.
//! - [`file`]: a CSV or JSON Lines export as a source.
//! - [`ldap`]: an LDAP directory (OpenLDAP, Active Directory) as a source, read by
//!   `scimitar-ldap`.
//! - [`apply`]: carries a plan out against a target, item by item (independent items
//!   concurrently, up to the target's limit), one failure never stopping the others, and
//!   returns the run's report, what it did, and the job's next state.
//! - [`bulk`]: creates in SCIM Bulk requests, where a target advertises Bulk and the job
//!   allows it.
//! - [`pace`]: a target's limits: writes in flight at once, and requests per second.
//! - [`state`]: the job's state and run history in Scimitar's database, through `Store`.
//! - [`stored`]: a run's report as its record keeps it: each list an exact count and a
//!   sample of its first items, so that the record does not grow with the plan.
//! - [`run`]: one `plan` or `apply` run, end to end.
//! - [`incremental`]: a run from what changed at a SCIM source since the job's watermark,
//!   planned as a partial run.
//! - [`ancestors`]: for an incremental run into a target that flattens groups, the changed
//!   groups' ancestors and what is nested under them, read from the source.
//! - [`ldap_incremental`]: a run from what changed in an LDAP directory since the job's
//!   watermark, with what it deleted found by the ids it still lists.
//! - [`ldap_ancestors`]: for such a run into a target that flattens groups, the changed
//!   groups' ancestors and what is nested under them, from the directory's group graph.
//! - [`feed`]: a Scimitar source's change feed, long-polled between runs.
//! - [`watch`]: `watch`, runs again and again on the source's changes or an interval, one
//!   process at a time per job (a lease in the state database).
//! - [`quarantine`]: a job whose runs keep failing wholly is run only now and then, until a
//!   run succeeds or an operator resumes it; read from the run history.
//! - [`trail`]: a run's actions, guard stops, failures and quarantine as audit events of the
//!   job's account, written with the run's record.
//!
//! Invariant: the planner decides everything; what follows it only carries the decision out.
//! Nothing here knows Scimitar's HTTP server: Scimitar is one more SCIM endpoint to it.

pub mod ancestors;
pub mod apply;
pub mod bulk;
pub mod config;
pub mod drift;
pub mod feed;
pub mod file;
pub mod incremental;
pub mod ldap;
pub mod ldap_ancestors;
pub mod ldap_incremental;
pub mod mapping;
pub mod model;
pub mod pace;
pub mod plan;
pub mod progress;
pub mod quarantine;
pub mod render;
pub mod reviewed;
pub mod run;
pub mod scim;
pub mod scope;
pub mod state;
pub mod stored;
pub mod trail;
pub mod watch;

/// What can go wrong in a run as a whole (one item failing is not one of them: it is
/// reported and the run goes on).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("source: {0}")]
    Source(String),
    #[error("target: {0}")]
    Target(String),
    #[error("state: {0}")]
    State(#[from] scimitar_domain::ScimError),
    /// Another process holds the job's lease (a `watch`, another `apply`).
    #[error("{0}")]
    Busy(String),
}

pub type SyncResult<T> = Result<T, SyncError>;
