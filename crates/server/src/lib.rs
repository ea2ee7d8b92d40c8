//! Scimitar's HTTP layer: SCIM 2.0 (RFC 7644) on the generic and Databricks-shaped mount points,
//! and the Databricks REST APIs, over the application crate (`scimitar-app`). Only this crate
//! knows HTTP, and it holds nothing else: routes, request context and the error mapping.
//!
//! # Layout
//! - this file: [`Application`] (bind, then serve until shut down) and the shared [`AppState`].
//! - [`listener`]: the accept loop, with its connection cap, timeouts and shutdown deadline.
//! - [`error`]: the one mapping from domain errors to SCIM and Databricks error responses.
//! - [`context`]: mount points, authentication into an actor, and base URLs.
//! - [`alert_delivery`]: the alert worker's HTTP client for webhook deliveries.
//! - [`routes`]: the handlers, thin: parse (request bodies through `routes::wire`), call the
//!   application, render.

pub mod alert_delivery;
pub mod context;
pub mod error;
pub mod listener;
pub mod metrics;
pub mod routes;

pub use listener::ServeLimits;

use scimitar_app::governance;
use scimitar_app::Services;
use scimitar_app::Workspace;
use scimitar_domain::{AccountId, ScimError, ScimResult, WorkspaceId};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::OnceCell;

/// State shared by every request: a handle on [`SharedState`]. Axum clones the state for every
/// extractor of every request, so the handle is one `Arc`; cloning the parts one by one
/// showed up as a tenth of a GET's CPU.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub struct SharedState {
    pub services: Services,
    /// The governance service over the same services (Unity Catalog APIs and SQL).
    pub governance: governance::Governance,
    /// Recent Statement Execution API answers, for `GET /api/2.0/sql/statements/{id}`.
    pub recent_statements: scimitar_app::recent_statements::RecentStatements,
    /// This node's Prometheus metrics (`/metrics`).
    pub metrics: metrics::Metrics,
    /// Where refused requests go for the audit trail (`routes::record_refusal`).
    pub refusals: scimitar_app::audit_refusals::RefusalQueue,
    /// The writer of [`SharedState::refusals`], until the server starts it.
    refusal_writer: std::sync::Mutex<Option<scimitar_app::audit_refusals::RefusalWriter>>,
    /// The public base URL, when configured: base URLs are made from it, not from `Host`.
    pub public_url: Option<context::PublicUrl>,
    /// How workspaces are addressed: the configured default and host-name domain.
    pub workspaces: WorkspaceSettings,
    /// The workspace unprefixed workspace-level paths act on, once found (see
    /// [`AppState::default_workspace`]).
    default_workspace: Arc<OnceCell<Arc<Workspace>>>,
    /// How this node evaluates and delivers audit alerts, with the config file's rules.
    pub alerts: Arc<scimitar_app::alerts::AlertSettings>,
    /// Set when the server begins to shut down, so that requests that wait (the change
    /// feed's long polls, `routes::sync_changes`) answer at once instead of holding shutdown
    /// to its deadline.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// How requests name workspaces (see `routes::addressing`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceSettings {
    /// The workspace that `/scim/v2`, `/api/2.0/preview/scim/v2` and the other unprefixed
    /// workspace-level paths act on. Without it they act on the deployment's only workspace
    /// while it has only one, and answer 404 (naming `/w/{workspace_id}`) once it has more.
    pub default_workspace: Option<WorkspaceId>,
    /// The domain under which a workspace is reached as `{deployment_name}.{domain}`.
    pub workspace_domain: Option<String>,
}

impl AppState {
    pub fn new(
        services: Services,
        public_url: Option<context::PublicUrl>,
        workspaces: WorkspaceSettings,
    ) -> Self {
        Self::with_refusals(services, public_url, workspaces, Default::default())
    }

    /// [`AppState::new`] with how refused requests are queued for the audit trail.
    pub fn with_refusals(
        services: Services,
        public_url: Option<context::PublicUrl>,
        workspaces: WorkspaceSettings,
        refusals: scimitar_app::audit_refusals::RefusalSettings,
    ) -> Self {
        let (refusals, refusal_writer) = scimitar_app::audit_refusals::RefusalQueue::new(refusals);
        AppState(Arc::new(SharedState {
            refusals,
            refusal_writer: std::sync::Mutex::new(Some(refusal_writer)),
            public_url,
            governance: governance::Governance::new(services.clone()),
            recent_statements: Default::default(),
            metrics: Default::default(),
            services,
            workspaces,
            default_workspace: Arc::new(OnceCell::new()),
            alerts: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// The state with these alert settings (the config file's rules among them).
    pub fn with_alerts(self, alerts: scimitar_app::alerts::AlertSettings) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut shared) => {
                shared.alerts = Arc::new(alerts);
                AppState(Arc::new(shared))
            }
            Err(shared) => AppState(shared),
        }
    }

    /// The workspace unprefixed workspace-level paths act on: the configured one, else the
    /// deployment's only workspace (looked for when the server starts, and until one is
    /// found). Never "the first": an account imported later with an older creation time must
    /// not take over paths another tenant's clients use. Kept once found (a workspace's id and
    /// account never change).
    pub async fn default_workspace(&self) -> ScimResult<Arc<Workspace>> {
        self.default_workspace
            .get_or_try_init(|| async {
                if let Some(id) = &self.workspaces.default_workspace {
                    return self.services.workspace(id).await.map(Arc::new);
                }
                let mut all = Vec::new();
                for account in self.services.accounts().await? {
                    all.extend(self.services.workspaces(&account.id).await?);
                    if all.len() > 1 {
                        break;
                    }
                }
                match all.len() {
                    1 => Ok(Arc::new(all.remove(0))),
                    0 => Err(ScimError::NotFound(
                        "the deployment has no workspace".into(),
                    )),
                    _ => Err(ScimError::NotFound(
                        "this deployment has several workspaces and no default_workspace is \
                         configured: address one as /w/{workspace_id}/..."
                            .into(),
                    )),
                }
            })
            .await
            .cloned()
    }

    pub async fn account(&self, id: &str) -> ScimResult<AccountId> {
        self.services
            .accounts()
            .await?
            .into_iter()
            .find(|account| account.id.as_str() == id)
            .map(|account| account.id)
            .ok_or_else(|| ScimError::NotFound(format!("account {id} not found")))
    }
}

/// A bound, not yet serving, server. Tests and `main` build it the same way.
pub struct Application {
    listener: TcpListener,
    services: Services,
    limits: ServeLimits,
    public_url: Option<context::PublicUrl>,
    metrics_token_digest: Option<String>,
    workspaces: WorkspaceSettings,
    /// How refused requests are queued for the audit trail.
    refusals: scimitar_app::audit_refusals::RefusalSettings,
    /// Prune audit events older than this, when set (`audit_retention_days`).
    audit_retention: Option<std::time::Duration>,
    alerts: scimitar_app::alerts::AlertSettings,
}

impl Application {
    /// Binds `address` (port 0 picks a free port), with the default [`ServeLimits`].
    pub async fn bind(address: &str, services: Services) -> ScimResult<Self> {
        Self::bind_with(address, services, ServeLimits::default()).await
    }

    /// [`Application::bind`] with the connection limits and timeouts of `limits`.
    pub async fn bind_with(
        address: &str,
        services: Services,
        limits: ServeLimits,
    ) -> ScimResult<Self> {
        services.load_access_state().await?;
        // Federation fetches issuers' key sets over HTTP, which only this crate speaks.
        services.use_document_fetcher(std::sync::Arc::new(
            routes::federation::HttpDocumentFetcher::new(),
        ));
        let listener = listener::bind(address)
            .await
            .map_err(|error| ScimError::internal(format!("cannot listen on {address}: {error}")))?;
        Ok(Application {
            listener,
            services,
            limits,
            public_url: None,
            metrics_token_digest: None,
            workspaces: WorkspaceSettings::default(),
            refusals: Default::default(),
            audit_retention: None,
            alerts: scimitar_app::alerts::AlertSettings::default(),
        })
    }

    /// How refused requests are queued and budgeted for the audit trail.
    pub fn with_refusal_settings(
        self,
        refusals: scimitar_app::audit_refusals::RefusalSettings,
    ) -> Self {
        Application { refusals, ..self }
    }

    /// Prunes audit events older than `retention` while serving (hourly), keeping the trail
    /// verifiable (`Services::prune_audit_trails`).
    pub fn with_audit_retention(self, retention: Option<std::time::Duration>) -> Self {
        Application {
            audit_retention: retention,
            ..self
        }
    }

    /// Offers `/metrics` to the holder of the token whose SHA-256 digest (lowercase hex, see
    /// [`metrics::parse_token_digest`]) is given; without one the endpoint does not exist.
    pub fn offer_metrics_to(self, token_digest: String) -> Self {
        Application {
            metrics_token_digest: Some(token_digest),
            ..self
        }
    }

    /// Builds `location`, `meta.location` and `$ref` values from `public_url` rather than
    /// from each request's `Host` header.
    pub fn with_public_url(self, public_url: Option<context::PublicUrl>) -> Self {
        Application { public_url, ..self }
    }

    /// How workspaces are addressed: the default workspace and the host-name domain.
    pub fn with_workspaces(self, workspaces: WorkspaceSettings) -> Self {
        Application { workspaces, ..self }
    }

    /// How this node evaluates and delivers audit alerts (`scimitar_app::alerts`).
    pub fn with_alerts(self, alerts: scimitar_app::alerts::AlertSettings) -> Self {
        Application { alerts, ..self }
    }

    pub fn local_addr(&self) -> ScimResult<SocketAddr> {
        self.listener.local_addr().map_err(ScimError::internal)
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight, dropping those
    /// still running after the shutdown deadline (see [`listener::serve`]).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> ScimResult<()> {
        let state = AppState::with_refusals(
            self.services,
            self.public_url,
            self.workspaces,
            self.refusals,
        )
        .with_alerts(self.alerts.clone());
        if let Some(digest) = self.metrics_token_digest {
            state.metrics.allow_scrapes_by(digest);
        }
        // Pinned now, when no default is configured and the deployment has one workspace, so
        // that an account made or imported later cannot make unprefixed paths ambiguous.
        let default_account = match state.default_workspace().await {
            Ok(workspace) => Some(workspace.account.clone()),
            Err(error) => {
                tracing::info!(%error, "no default workspace: address workspaces as /w/{{id}}");
                None
            }
        };
        // Refused requests are written to the trail off their path, in batches.
        let refusal_writer = state
            .refusal_writer
            .lock()
            .ok()
            .and_then(|mut writer| writer.take())
            .map(|writer| {
                let services = state.services.clone();
                tokio::spawn(writer.run(services, default_account))
            });
        let retention = self.audit_retention.map(|retention| {
            let services = state.services.clone();
            tokio::spawn(async move { services.prune_audit_trails_every(retention).await })
        });
        let services = state.services.clone();
        let follower =
            tokio::spawn(async move { services.follow_access_log(ACCESS_LOG_POLL_INTERVAL).await });
        let services = state.services.clone();
        let token_uses = tokio::spawn(async move {
            let interval = scimitar_app::tokens::TOKEN_USE_INTERVAL;
            services.record_token_uses_every(interval).await
        });
        let alerts = tokio::spawn(alert_delivery::run(
            state.services.clone(),
            self.alerts.clone(),
        ));
        let services = state.services.clone();
        // Pending long polls are told as soon as shutdown begins, before the listener drains.
        let stopping = state.clone();
        let shutdown = async move {
            shutdown.await;
            stopping.stopping.send_replace(true);
        };
        let router = routes::router(state);
        listener::serve(self.listener, router, self.limits, shutdown).await;
        follower.abort();
        alerts.abort();
        token_uses.abort();
        if let Some(retention) = retention {
            retention.abort();
        }
        // The router and its queue are gone: the writer writes what is queued and ends.
        if let Some(writer) = refusal_writer {
            let _ = tokio::time::timeout(REFUSAL_DRAIN_DEADLINE, writer).await;
        }
        // What was noted since the last record is not lost with the process.
        services.record_token_uses().await;
        Ok(())
    }
}

/// How long a stopping server waits for the refusals still queued to be written.
const REFUSAL_DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// How often a node reads the access log for changes it did not make itself (other nodes,
/// the CLI). Its own writes are applied before they are answered, whatever this is.
const ACCESS_LOG_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    /// Every source file of this crate, with its text.
    fn sources() -> Vec<(std::path::PathBuf, String)> {
        let mut pending = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut files = Vec::new();
        while let Some(directory) = pending.pop() {
            for entry in std::fs::read_dir(&directory).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|extension| extension == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    files.push((path, text));
                }
            }
        }
        assert!(files.len() > 5, "the sources were found");
        files
    }

    /// The HTTP crate acts only as principals that authenticated: operators' `act_as` (and
    /// `act_as_admin`) is for edges that hold the database, such as the CLI. Together with the
    /// capabilities the compiler seals (see `scimitar_app::authority`), this keeps every write
    /// that arrives over HTTP authorized as the caller.
    #[test]
    fn the_http_crate_never_acts_as_anyone_but_the_authenticated_caller() {
        for (path, text) in sources() {
            if path.ends_with("lib.rs") {
                continue; // this test names what it forbids
            }
            assert!(
                !text.contains("act_as"),
                "{} acts as a principal without its credential",
                path.display()
            );
            assert!(
                !text.contains("scimitar_store"),
                "{} reaches storage around the application layer",
                path.display()
            );
        }
    }
}
