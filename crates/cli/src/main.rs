//! The `scimitar` command. It only wires things together: configuration, storage, services and
//! the HTTP application live in their own crates.

mod access;
mod audit;
mod config;
mod logging;
mod sql;
mod sync;
mod transfer;

use clap::{Parser, Subcommand};
use config::Config;
use scimitar_app::service::Services;
use scimitar_domain::credentials::TokenScope;
use scimitar_domain::{PrincipalKind, RandomIds, SystemClock};
use scimitar_server::Application;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "scimitar",
    version,
    about = "Identity provisioning and access governance: a SCIM 2.0 server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the SCIM API (and create the first admin on an empty database).
    Serve {
        #[command(flatten)]
        flags: config::Flags,
        /// Optional TOML configuration file (keys: listen, database_url,
        /// database_max_connections, worker_threads, connection_limit, header_timeout,
        /// body_timeout, idle_timeout, shutdown_deadline, metrics_token_sha256, public_url,
        /// default_workspace, workspace_domain, token_rotation_overlap,
        /// oauth_signing_key_rotation, federation_allow_loopback_http, alert_rules, sync_jobs).
        #[arg(long, env = "SCIMITAR_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Bring the database schema up to date and print its version. Safe while other nodes
    /// run: migrations are serialised in the database.
    Migrate {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Manage the workspaces of an account.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Run one governance SQL statement (GRANT, REVOKE, SHOW GRANTS, CREATE, DROP, ALTER ...
    /// OWNER TO) as a principal, against the database directly.
    Sql(sql::SqlArgs),
    /// The tamper-evident audit trail: checkpoint, verifier-key, verify, query, tail, export,
    /// prune.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Ask who may do what, and why: check, who, what.
    Access {
        #[command(subcommand)]
        command: access::AccessCommand,
    },
    /// Write every account's data (identities, memberships, tokens, securables, grants, ACLs)
    /// as JSON Lines, to move it to another database with `scimitar import`.
    Export(transfer::ExportArgs),
    /// Load what `scimitar export` wrote into a database that does not hold those accounts.
    Import(transfer::ImportArgs),
    /// Provision identities from a source into a SCIM target: plan, then apply.
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret alone on stdout: for the user or service principal
    /// named, else for an admin of the account (the initial admin while it is one). What the
    /// token may do is what its principal may do: a non-admin's token reads, an admin's writes.
    Create {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        /// The user the token is for, by userName.
        #[arg(long, value_name = "USERNAME", conflicts_with = "service_principal")]
        user: Option<String>,
        /// The service principal the token is for, by applicationId.
        #[arg(long, value_name = "APPLICATION_ID")]
        service_principal: Option<String>,
        /// What the token may do besides what its principal may: all-apis (everything its
        /// principal may do), read-only (reads only), or scim (the SCIM API only, for an
        /// identity provider's connector).
        #[arg(long, default_value = "all-apis")]
        scope: String,
        /// How long the token lives: seconds, or with a unit (12h, 90d). Without it, it
        /// never expires.
        #[arg(long, value_parser = config::parse_duration)]
        lifetime: Option<std::time::Duration>,
        /// The account (default: the first one).
        #[arg(long)]
        account: Option<String>,
    },
    /// Give a token a new secret, printed alone on stdout, without downtime: the old secret
    /// keeps working for the overlap, then is refused. The new token has the old one's
    /// principal, scope, comment and workspace, and lives as long as the old one was made to
    /// (or --lifetime).
    Rotate {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        /// The id of the token to rotate (token_id in the token APIs).
        token_id: String,
        /// How long the old secret keeps working (default 24h).
        #[arg(long, env = "SCIMITAR_TOKEN_ROTATION_OVERLAP", value_parser = config::parse_duration)]
        overlap: Option<std::time::Duration>,
        /// How long the new token lives: seconds, or with a unit (12h, 90d).
        #[arg(long, value_parser = config::parse_duration)]
        lifetime: Option<std::time::Duration>,
        /// The account (default: the first one).
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Print one account per line: its id, a tab, its name.
    List {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
    },
    /// Create an account with its first workspace, its admin user and an admin token. Prints
    /// the account id, the workspace id and the token's secret (shown once), one per line.
    Create {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        /// The name of the account's first workspace (default: the account's name).
        #[arg(long)]
        workspace: Option<String>,
        name: String,
    },
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace in an account and print its id.
    Create {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        /// The account (its id, as `scimitar account list` prints it).
        #[arg(long)]
        account: String,
        /// The workspace's host name label, for `{deployment_name}.{workspace_domain}`.
        #[arg(long)]
        deployment_name: Option<String>,
        name: String,
    },
    /// Print one workspace of an account per line: its id, a tab, its name.
    List {
        #[arg(long, env = "SCIMITAR_DATABASE_URL")]
        database: Option<String>,
        #[arg(long)]
        account: String,
    },
}

async fn services(database_url: &str, max_connections: usize) -> Result<Services, String> {
    let options = scimitar_store::StoreOptions { max_connections };
    let store = scimitar_store::open_with(database_url, &options)
        .await
        .map_err(|error| format!("cannot open the database: {error}"))?;
    Ok(Services::new(
        store,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    ))
}

pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn serve(config: Config) -> Result<(), String> {
    if scimitar_store::AUDIT_TRAIL_COMPILED_OUT {
        // A benchmark build (bench/audit_writes.sh): never one to deploy.
        tracing::warn!(
            "this build writes NO audit trail (unaudited-for-benchmarks): benchmarks only"
        );
        eprintln!("WARNING: this build writes NO audit trail; it is for benchmarks only");
    }
    // Read first: a job file that does not parse stops the start before anything listens.
    let sync_jobs = sync::load_served_jobs(&config.sync_jobs)?;
    let options = scimitar_store::StoreOptions {
        max_connections: config.max_connections,
    };
    let store = scimitar_store::open_with(&config.database_url, &options)
        .await
        .map_err(|error| format!("cannot open the database: {error}"))?;
    let services = Services::new(store.clone(), Arc::new(SystemClock), Arc::new(RandomIds))
        .with_rotation_overlap(config.token_rotation_overlap)
        .with_signing_key_rotation(config.oauth_signing_key_rotation);
    services.allow_loopback_http_issuers(config.federation_allow_loopback_http);
    if let Some(bootstrap) = services
        .bootstrap()
        .await
        .map_err(|error| error.to_string())?
    {
        println!(
            "Created account {} with the admin user '{}'.\n\
             Admin token (shown once; store it now):\n\n    {}\n\n\
             Use it as 'Authorization: Bearer <token>', for example:\n    \
             curl -H 'Authorization: Bearer {}' http://{}/scim/v2/Users",
            bootstrap.account.id,
            scimitar_app::service::BOOTSTRAP_ADMIN_USER_NAME,
            bootstrap.admin_token.expose(),
            bootstrap.admin_token.expose(),
            config.listen,
        );
    }
    let shutdown_deadline = config.serve_limits.shutdown_deadline;
    let mut application = Application::bind_with(&config.listen, services, config.serve_limits)
        .await
        .map_err(|error| error.to_string())?
        .with_public_url(config.public_url.clone())
        .with_workspaces(config.workspaces.clone())
        .with_refusal_settings(config.audit_refusals)
        .with_audit_retention(
            config
                .audit_retention_days
                .map(|days| std::time::Duration::from_secs(u64::from(days) * 86_400)),
        )
        .with_alerts(config.alerts.settings()?);
    if let Some(digest) = config.metrics_token_sha256.clone() {
        application = application.offer_metrics_to(digest);
    }
    let address = application
        .local_addr()
        .map_err(|error| error.to_string())?;
    // The URL may carry a password: only its backend is logged.
    let backend = match scimitar_store::Backend::of(&config.database_url) {
        Ok(scimitar_store::Backend::Postgres(_)) => "postgres",
        _ => "sqlite",
    };
    let worker_threads = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(%address, database = backend, worker_threads, "scimitar is serving");
    // For people and scripts reading the text log; a JSON log has the address in the line above.
    if !logging::is_json() {
        eprintln!("scimitar listening on http://{address}");
    }
    // One signal stops the server and the sync jobs alike.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let jobs = sync::ServedJobs::start(sync_jobs, &config.database_url, &store, &stopping).await?;
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let mut stopped = stopping.clone();
    let served = application
        .run_until(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await
        .map_err(|error| error.to_string());
    jobs.stopped(shutdown_deadline).await;
    served
}

/// Whom `scimitar token create` makes a token for.
enum TokenOwner {
    /// An admin of the account (the initial admin while it is one).
    Admin,
    User(String),
    ServicePrincipal(String),
}

/// A lifetime given on the command line, in whole seconds.
fn lifetime_seconds(lifetime: Option<std::time::Duration>) -> Result<Option<i64>, String> {
    lifetime
        .map(|lifetime| {
            i64::try_from(lifetime.as_secs())
                .ok()
                .filter(|seconds| *seconds > 0)
                .ok_or_else(|| "--lifetime must be at least one second".to_string())
        })
        .transpose()
}

/// The admin an operator who holds the database acts as in `account` (default: the first).
async fn operator_admin(
    services: &Services,
    account: Option<&str>,
) -> Result<scimitar_app::AccountAdmin, String> {
    let account = services
        .account_or_first(account)
        .await
        .map_err(|error| error.to_string())?;
    let operator = services
        .act_as_admin(&account)
        .await
        .map_err(|error| format!("cannot act as an admin of account {account}: {error}"))?;
    services
        .authorize_admin(&operator)
        .await
        .map_err(|error| error.to_string())
}

async fn create_token(
    database: &str,
    owner: TokenOwner,
    scope: &str,
    lifetime: Option<std::time::Duration>,
    account: Option<String>,
) -> Result<(), String> {
    let scope = TokenScope::parse(scope).map_err(|error| error.to_string())?;
    let lifetime_seconds = lifetime_seconds(lifetime)?;
    let services = services(database, config::DEFAULT_MAX_CONNECTIONS).await?;
    // On an empty database the first account and admin are made without a token of their
    // own: the one this command prints is the only one stored.
    services
        .bootstrap_without_token()
        .await
        .map_err(|error| error.to_string())?;
    // The operator holds the database, and mints the token as an admin of the account would.
    let admin = operator_admin(&services, account.as_deref()).await?;
    let account = admin.account().clone();
    let principal = match owner {
        TokenOwner::Admin => admin.actor().principal().clone(),
        TokenOwner::User(name) => services
            .principal_named(&account, PrincipalKind::User, &name)
            .await
            .map_err(|error| error.to_string())?,
        TokenOwner::ServicePrincipal(name) => services
            .principal_named(&account, PrincipalKind::ServicePrincipal, &name)
            .await
            .map_err(|error| error.to_string())?,
    };
    let request = scimitar_app::TokenRequest {
        lifetime_seconds,
        comment: Some("created with scimitar token create".into()),
        scopes: vec![scope.as_str().to_string()],
    };
    let issued = services
        .create_account_token(&admin, &principal, &request)
        .await
        .map_err(|error| error.to_string())?;
    println!("{}", issued.secret.expose());
    Ok(())
}

async fn rotate_token(
    database: &str,
    token_id: &str,
    overlap: Option<std::time::Duration>,
    lifetime: Option<std::time::Duration>,
    account: Option<String>,
) -> Result<(), String> {
    let lifetime_seconds = lifetime_seconds(lifetime)?;
    let overlap = overlap.unwrap_or(scimitar_app::tokens::DEFAULT_ROTATION_OVERLAP);
    let services = services(database, config::DEFAULT_MAX_CONNECTIONS)
        .await?
        .with_rotation_overlap(overlap);
    let admin = operator_admin(&services, account.as_deref()).await?;
    let issued = services
        .rotate_account_token(&admin, token_id, lifetime_seconds)
        .await
        .map_err(|error| error.to_string())?;
    println!("{}", issued.secret.expose());
    Ok(())
}

async fn create_account(database: &str, name: &str, workspace: Option<&str>) -> Result<(), String> {
    let services = services(database, config::DEFAULT_MAX_CONNECTIONS).await?;
    let made = services
        .create_account(name, workspace.unwrap_or(name))
        .await
        .map_err(|error| error.to_string())?;
    let workspaces = services
        .workspaces(&made.account.id)
        .await
        .map_err(|error| error.to_string())?;
    println!("{}", made.account.id);
    for workspace in workspaces {
        println!("{}", workspace.id);
    }
    println!("{}", made.admin_token.expose());
    Ok(())
}

/// Acts as an admin of `account` (an operator holds the database) for a workspace command.
async fn account_admin(
    services: &Services,
    account: &str,
) -> Result<scimitar_app::AccountAdmin, String> {
    operator_admin(services, Some(account)).await
}

async fn workspace_command(command: WorkspaceCommand) -> Result<(), String> {
    match command {
        WorkspaceCommand::Create {
            database,
            account,
            deployment_name,
            name,
        } => {
            let database = database.unwrap_or_else(|| config::DEFAULT_DATABASE.to_string());
            let services = services(&database, config::DEFAULT_MAX_CONNECTIONS).await?;
            let admin = account_admin(&services, &account).await?;
            let workspace = services
                .create_workspace(&admin, &name, deployment_name.as_deref())
                .await
                .map_err(|error| error.to_string())?;
            println!("{}", workspace.id);
            Ok(())
        }
        WorkspaceCommand::List { database, account } => {
            let database = database.unwrap_or_else(|| config::DEFAULT_DATABASE.to_string());
            let services = services(&database, config::DEFAULT_MAX_CONNECTIONS).await?;
            let admin = account_admin(&services, &account).await?;
            for workspace in services
                .workspaces(admin.account())
                .await
                .map_err(|error| error.to_string())?
            {
                println!("{}\t{}", workspace.id, workspace.name);
            }
            Ok(())
        }
    }
}

async fn list_accounts(database: &str) -> Result<(), String> {
    let services = services(database, config::DEFAULT_MAX_CONNECTIONS).await?;
    for account in services
        .accounts()
        .await
        .map_err(|error| error.to_string())?
    {
        println!("{}\t{}", account.id, account.name);
    }
    Ok(())
}

fn main() -> ExitCode {
    if let Err(message) = logging::init() {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    // `sync` has exit statuses of its own (2: changes to make).
    let command = match cli.command {
        Command::Sync { command } => {
            return match runtime(None) {
                Ok(runtime) => runtime.block_on(sync::run_command(command)),
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        command => command,
    };
    let result = match command {
        // `serve`'s configuration sizes the runtime, so it is read before the runtime starts.
        Command::Serve { flags, config } => Config::load(config.as_deref(), flags)
            .and_then(|config| runtime(config.worker_threads)?.block_on(serve(config))),
        command => runtime(None).and_then(|runtime| {
            // What the CLI commits is recorded as an operator's, through the CLI: the actor
            // is the principal it acts as (`act_as`), noted when it is made.
            let request = scimitar_app::audit::RequestInfo {
                user_agent: Some(format!("scimitar-cli/{}", env!("CARGO_PKG_VERSION"))),
                ..Default::default()
            };
            runtime.block_on(scimitar_app::audit::within(request, run(command)))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if logging::is_json() {
                tracing::error!(%message, "scimitar stopped");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The multi-threaded runtime, with `worker_threads` threads or one per core.
fn runtime(worker_threads: Option<usize>) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = worker_threads {
        builder.worker_threads(threads);
    }
    builder
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))
}

/// Every command but `serve`.
async fn run(command: Command) -> Result<(), String> {
    match command {
        // Never reached: `main` starts `serve` itself, on a runtime sized by its config.
        Command::Serve { .. } => Err("serve runs on its own runtime".to_string()),
        Command::Migrate { database } => {
            let database = database.unwrap_or_else(|| config::DEFAULT_DATABASE.to_string());
            let options = scimitar_store::StoreOptions { max_connections: 1 };
            let version = scimitar_store::migrate(&database, &options)
                .await
                .map_err(|error| format!("cannot migrate the database: {error}"))?;
            println!("schema version {version}");
            Ok(())
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    database,
                    user,
                    service_principal,
                    scope,
                    lifetime,
                    account,
                },
        } => {
            let database = database.unwrap_or_else(|| config::DEFAULT_DATABASE.to_string());
            let owner = match (user, service_principal) {
                (Some(user), _) => TokenOwner::User(user),
                (None, Some(application_id)) => TokenOwner::ServicePrincipal(application_id),
                (None, None) => TokenOwner::Admin,
            };
            create_token(&database, owner, &scope, lifetime, account).await
        }
        Command::Token {
            command:
                TokenCommand::Rotate {
                    database,
                    token_id,
                    overlap,
                    lifetime,
                    account,
                },
        } => {
            let database = database.unwrap_or_else(|| config::DEFAULT_DATABASE.to_string());
            rotate_token(&database, &token_id, overlap, lifetime, account).await
        }
        Command::Account {
            command: AccountCommand::List { database },
        } => {
            let database = database.unwrap_or_else(|| config::DEFAULT_DATABASE.to_string());
            list_accounts(&database).await
        }
        Command::Account {
            command:
                AccountCommand::Create {
                    database,
                    workspace,
                    name,
                },
        } => {
            let database = database.unwrap_or_else(|| config::DEFAULT_DATABASE.to_string());
            create_account(&database, &name, workspace.as_deref()).await
        }
        Command::Workspace { command } => workspace_command(command).await,
        Command::Sql(args) => {
            let database = args
                .database()
                .unwrap_or_else(|| config::DEFAULT_DATABASE.to_string());
            let services = services(&database, config::DEFAULT_MAX_CONNECTIONS).await?;
            sql::run(args, services).await
        }
        Command::Access { command } => access::run(command).await,
        Command::Audit { command } => audit::run(command).await,
        Command::Export(args) => transfer::export(args).await,
        Command::Import(args) => transfer::import(args).await,
        Command::Sync { .. } => Err("sync runs on its own".to_string()),
    }
}
