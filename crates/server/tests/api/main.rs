//! The HTTP integration tests of the server: each test starts the real application on a free
//! loopback port over a fresh database (SQLite; PostgreSQL with `SCIMITAR_TEST_BACKEND=postgres`
//! and `TEST_DATABASE_URL`) and talks to it with a real HTTP client, the way Entra ID, Okta
//! and the Databricks SDK do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod alerts;
mod audit;
mod audit_queries;
mod authorization;
mod bulk;
mod catalog_bindings;
mod connections;
mod credentials;
mod defaults;
mod discovery;
mod entra;
mod errors;
mod etags;
mod faults;
mod federation;
mod groups;
mod health;
mod input;
mod isolation;
mod leaks;
mod limits;
mod metastores;
mod metrics;
mod mounts;
mod multi_node;
mod oauth;
mod okta;
mod patch;
mod permissions;
mod queries;
mod rule_sets;
mod scale;
mod service_principals;
mod statements;
mod support;
mod sync_changes;
mod sync_jobs;
mod tenancy;
mod tokens;
mod unity_catalog;
mod unity_catalog_updates;
mod users;
mod workspace;
mod workspace_objects;
