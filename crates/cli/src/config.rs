//! Configuration, layered: defaults, then an optional TOML file, then `SCIMITAR_*` environment
//! variables, then command-line flags. Unknown keys in the file are refused, so a typo is an
//! error rather than a silently ignored setting.

use scimitar_domain::WorkspaceId;
use scimitar_server::context::PublicUrl;
use scimitar_server::{ServeLimits, WorkspaceSettings};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE: &str = "sqlite://./scimitar-data/scimitar.db";
/// The most connections a PostgreSQL pool opens; SQLite ignores it.
pub const DEFAULT_MAX_CONNECTIONS: usize = scimitar_store::postgres::DEFAULT_MAX_CONNECTIONS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: String,
    pub database_url: String,
    /// The database connection pool's size (PostgreSQL).
    pub max_connections: usize,
    /// The async runtime's worker threads; `None` is one per core (tokio's default).
    pub worker_threads: Option<usize>,
    /// The SHA-256 digest (lowercase hex) of the token that may read `/metrics`; no metrics
    /// endpoint without it.
    pub metrics_token_sha256: Option<String>,
    /// The URL clients reach the server at; `None` builds URLs from each request's `Host`.
    pub public_url: Option<PublicUrl>,
    /// The HTTP connection cap and timeouts, and the shutdown deadline.
    pub serve_limits: ServeLimits,
    /// The default workspace and the host-name domain of workspaces.
    pub workspaces: WorkspaceSettings,
    /// How long a rotated token keeps working beside its replacement (default 24 hours).
    pub token_rotation_overlap: Duration,
    /// How long an OAuth signing key signs before a new one takes over (default 30 days).
    pub oauth_signing_key_rotation: Duration,
    /// Audit events older than this many days are pruned while serving; `None` keeps all.
    pub audit_retention_days: Option<u32>,
    /// How refused requests are queued and budgeted for the audit trail.
    pub audit_refusals: scimitar_app::audit_refusals::RefusalSettings,
    /// Whether federation policies may name a plain-http issuer on a loopback host (off).
    pub federation_allow_loopback_http: bool,
    /// Audit alerts: the config file's rules (`[[alert_rules]]`, checked when loaded) and how
    /// this node evaluates and delivers them.
    pub alerts: AlertConfig,
    /// Sync job files (`scimitar sync` jobs) this node runs in the background, each as a
    /// `watch` would; with several nodes on one database, the job's lease makes one of them run
    /// it at a time.
    pub sync_jobs: Vec<PathBuf>,
}

/// The file's `[[alert_rules]]` and `alert_*` settings. Kept as written (the rules checked),
/// made into the application's settings by [`AlertConfig::settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    pub rules: Vec<scimitar_app::alerts::AlertRuleSpec>,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
}

impl AlertConfig {
    pub fn settings(&self) -> Result<scimitar_app::alerts::AlertSettings, String> {
        let rules = self
            .rules
            .iter()
            .map(|spec| {
                scimitar_app::alerts::AlertRule::from_config(spec.clone())
                    .map_err(|error| format!("alert_rules: {error}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(scimitar_app::alerts::AlertSettings {
            rules,
            poll_interval: self.poll_interval,
            timeout: self.timeout,
            retry_base: self.retry_base,
            retry_max: self.retry_max,
            ..scimitar_app::alerts::AlertSettings::default()
        })
    }
}

/// The command-line values of `scimitar serve` (clap already folds the environment variables
/// into them, flags winning); `None` where neither was given.
#[derive(Debug, Default, clap::Args)]
pub struct Flags {
    /// Address to listen on.
    #[arg(long, env = "SCIMITAR_LISTEN")]
    pub listen: Option<String>,
    /// Database URL: sqlite://PATH (or a path), or postgres://USER@HOST:PORT/DATABASE
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    pub database: Option<String>,
    /// The most database connections to hold (PostgreSQL's pool; default 16).
    #[arg(long, env = "SCIMITAR_DATABASE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Threads that answer requests (default: one per core). On a machine shared with
    /// other busy processes, fewer can be faster: they contend less for the cores.
    #[arg(long, env = "SCIMITAR_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Offer Prometheus metrics at /metrics to the bearer of the token with this SHA-256
    /// digest (64 hex digits: printf %s "$TOKEN" | sha256sum). Off without it.
    #[arg(long, env = "SCIMITAR_METRICS_TOKEN_SHA256")]
    pub metrics_token_sha256: Option<String>,
    /// The URL clients reach this server at (https://HOST[:PORT][/PATH]), behind any
    /// proxy: `location`, `meta.location` and `$ref` values use it instead of the
    /// request's Host header.
    #[arg(long, env = "SCIMITAR_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The workspace (by id) that unprefixed workspace paths (/scim/v2, /api/2.0/preview/...)
    /// act on. Without it they act on the deployment's only workspace while there is one;
    /// other workspaces are reached at /w/{workspace_id}/...
    #[arg(long, env = "SCIMITAR_DEFAULT_WORKSPACE")]
    pub default_workspace: Option<String>,
    /// A domain under which each workspace with a deployment name is also reached by host
    /// name: {deployment_name}.{workspace_domain}.
    #[arg(long, env = "SCIMITAR_WORKSPACE_DOMAIN")]
    pub workspace_domain: Option<String>,
    /// The most client connections held at once (default 4096). At the limit, the oldest
    /// connection with no request in flight is closed to admit a new one.
    #[arg(long, env = "SCIMITAR_CONNECTION_LIMIT")]
    pub connection_limit: Option<usize>,
    /// How long a request's headers may take to arrive (default 10s). Durations are
    /// seconds, or carry a unit: 500ms, 10s, 2m.
    #[arg(long, env = "SCIMITAR_HEADER_TIMEOUT", value_parser = parse_duration)]
    pub header_timeout: Option<Duration>,
    /// How long a request's body may take to arrive in full (default 30s); then 408.
    #[arg(long, env = "SCIMITAR_BODY_TIMEOUT", value_parser = parse_duration)]
    pub body_timeout: Option<Duration>,
    /// How long a connection may wait with no request before it is closed (default 60s).
    #[arg(long, env = "SCIMITAR_IDLE_TIMEOUT", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// How long shutdown waits for requests in flight before dropping them (default 10s).
    #[arg(long, env = "SCIMITAR_SHUTDOWN_DEADLINE", value_parser = parse_duration)]
    pub shutdown_deadline: Option<Duration>,
    /// How long a rotated token keeps working beside its replacement (default 24h), so
    /// that clients can switch to the new secret without downtime.
    #[arg(long, env = "SCIMITAR_TOKEN_ROTATION_OVERLAP", value_parser = parse_duration)]
    pub token_rotation_overlap: Option<Duration>,
    /// How long an OAuth signing key signs access tokens before a new key takes over (default
    /// 30d); the old key keeps verifying until the tokens it signed have expired.
    #[arg(long, env = "SCIMITAR_OAUTH_SIGNING_KEY_ROTATION", value_parser = parse_duration)]
    pub oauth_signing_key_rotation: Option<Duration>,
    /// Prune audit events older than this many days (hourly, while serving), keeping the
    /// trail verifiable from the frontier it leaves. Default: keep every event.
    #[arg(long, env = "SCIMITAR_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Refused requests waiting to be written to the audit trail, at most (default 1024);
    /// more are dropped and counted in the metrics.
    #[arg(long, env = "SCIMITAR_AUDIT_REFUSAL_QUEUE")]
    pub audit_refusal_queue: Option<usize>,
    /// Refusal events one account's trail takes per minute, at most (default 600); more are
    /// dropped and counted in the metrics.
    #[arg(long, env = "SCIMITAR_AUDIT_REFUSALS_PER_MINUTE")]
    pub audit_refusals_per_minute: Option<u32>,
    /// Let federation policies name a plain-http OIDC issuer on a loopback host (127.0.0.1,
    /// [::1], localhost), for tests and a local IdP. Off: issuers must be https.
    #[arg(long, env = "SCIMITAR_FEDERATION_ALLOW_LOOPBACK_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub federation_allow_loopback_http: Option<bool>,
    /// A sync job file to run in the background, as `scimitar sync watch --config FILE` would
    /// (repeat for several; the environment variable separates them with commas). Replaces
    /// the file's `sync_jobs`.
    #[arg(
        long = "sync-job",
        value_name = "FILE",
        env = "SCIMITAR_SYNC_JOBS",
        value_delimiter = ','
    )]
    pub sync_jobs: Vec<PathBuf>,
}

/// A duration as written in the file: a number of seconds, or text that [`parse_duration`]
/// reads ("10s", "500ms", "2m").
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileDuration {
    Seconds(f64),
    Text(String),
}

impl FileDuration {
    fn resolve(&self, key: &str) -> Result<Duration, String> {
        match self {
            FileDuration::Seconds(seconds) => Duration::try_from_secs_f64(*seconds)
                .map_err(|_| format!("{key}: {seconds} is not a number of seconds")),
            FileDuration::Text(text) => {
                parse_duration(text).map_err(|error| format!("{key}: {error}"))
            }
        }
    }
}

/// Reads a duration: a number of seconds (`10`, `0.5`), or one with a unit: `ms`, `s`, `m`,
/// `h`, `d` (`500ms`, `10s`, `2m`, `12h`, `90d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let not_a_duration = || format!("{text:?} is not a duration such as 10, 10s or 500ms");
    if number.is_empty() {
        return Err(not_a_duration());
    }
    let seconds_per_unit = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3_600.0,
        "d" => 86_400.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use seconds, or ms, s, m, h or d"
            ))
        }
    };
    let number: f64 = number.parse().map_err(|_| not_a_duration())?;
    Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| not_a_duration())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    database_max_connections: Option<usize>,
    worker_threads: Option<usize>,
    metrics_token_sha256: Option<String>,
    public_url: Option<String>,
    default_workspace: Option<String>,
    workspace_domain: Option<String>,
    connection_limit: Option<usize>,
    header_timeout: Option<FileDuration>,
    body_timeout: Option<FileDuration>,
    idle_timeout: Option<FileDuration>,
    shutdown_deadline: Option<FileDuration>,
    token_rotation_overlap: Option<FileDuration>,
    oauth_signing_key_rotation: Option<FileDuration>,
    audit_retention_days: Option<u32>,
    audit_refusal_queue: Option<usize>,
    audit_refusals_per_minute: Option<u32>,
    federation_allow_loopback_http: Option<bool>,
    #[serde(default)]
    alert_rules: Vec<scimitar_app::alerts::AlertRuleSpec>,
    alert_poll_interval: Option<FileDuration>,
    alert_delivery_timeout: Option<FileDuration>,
    alert_retry_base: Option<FileDuration>,
    alert_retry_max: Option<FileDuration>,
    /// Sync job files; a relative path is read from the config file's directory.
    #[serde(default)]
    sync_jobs: Vec<PathBuf>,
}

impl Config {
    /// Resolves the layers: `flags` over the file over the defaults.
    pub fn load(file: Option<&Path>, flags: Flags) -> Result<Self, String> {
        let file_config = match file {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    format!("cannot read config file {}: {error}", path.display())
                })?;
                toml::from_str(&text)
                    .map_err(|error| format!("invalid config file {}: {error}", path.display()))?
            }
        };
        let defaults = ServeLimits::default();
        // A duration from the flags, else the file, else the default; zero refused unless
        // `zero_allowed`.
        let duration = |key: &str,
                        flag: Option<Duration>,
                        file: &Option<FileDuration>,
                        default: Duration,
                        zero_allowed: bool| {
            let value = match (flag, file) {
                (Some(value), _) => value,
                (None, Some(written)) => written.resolve(key)?,
                (None, None) => default,
            };
            if value.is_zero() && !zero_allowed {
                return Err(format!("{key} must be longer than zero"));
            }
            Ok::<_, String>(value)
        };
        let serve_limits = ServeLimits {
            max_connections: match flags
                .connection_limit
                .or(file_config.connection_limit)
                .unwrap_or(defaults.max_connections)
            {
                0 => return Err("connection_limit must be at least 1".to_string()),
                limit => limit,
            },
            header_timeout: duration(
                "header_timeout",
                flags.header_timeout,
                &file_config.header_timeout,
                defaults.header_timeout,
                false,
            )?,
            body_timeout: duration(
                "body_timeout",
                flags.body_timeout,
                &file_config.body_timeout,
                defaults.body_timeout,
                false,
            )?,
            idle_timeout: duration(
                "idle_timeout",
                flags.idle_timeout,
                &file_config.idle_timeout,
                defaults.idle_timeout,
                false,
            )?,
            shutdown_deadline: duration(
                "shutdown_deadline",
                flags.shutdown_deadline,
                &file_config.shutdown_deadline,
                defaults.shutdown_deadline,
                true,
            )?,
            ..defaults
        };
        let alert_defaults = scimitar_app::alerts::AlertSettings::default();
        let alerts = AlertConfig {
            rules: file_config.alert_rules.clone(),
            poll_interval: duration(
                "alert_poll_interval",
                None,
                &file_config.alert_poll_interval,
                alert_defaults.poll_interval,
                false,
            )?,
            timeout: duration(
                "alert_delivery_timeout",
                None,
                &file_config.alert_delivery_timeout,
                alert_defaults.timeout,
                false,
            )?,
            retry_base: duration(
                "alert_retry_base",
                None,
                &file_config.alert_retry_base,
                alert_defaults.retry_base,
                false,
            )?,
            retry_max: duration(
                "alert_retry_max",
                None,
                &file_config.alert_retry_max,
                alert_defaults.retry_max,
                false,
            )?,
        };
        if alerts.retry_max < alerts.retry_base {
            return Err("alert_retry_max must not be shorter than alert_retry_base".to_string());
        }
        // Checked now, so a bad rule stops the start rather than the first evaluation.
        alerts.settings()?;
        let sync_jobs = if flags.sync_jobs.is_empty() {
            let directory = file.and_then(Path::parent).unwrap_or(Path::new(""));
            file_config
                .sync_jobs
                .iter()
                .map(|job| directory.join(job))
                .collect()
        } else {
            flags.sync_jobs
        };
        Ok(Config {
            alerts,
            sync_jobs,
            listen: flags
                .listen
                .or(file_config.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            database_url: flags
                .database
                .or(file_config.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE.to_string()),
            max_connections: match flags
                .max_connections
                .or(file_config.database_max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS)
            {
                0 => return Err("database_max_connections must be at least 1".to_string()),
                size => size,
            },
            worker_threads: match flags.worker_threads.or(file_config.worker_threads) {
                Some(0) => return Err("worker_threads must be at least 1".to_string()),
                threads => threads,
            },
            metrics_token_sha256: flags
                .metrics_token_sha256
                .or(file_config.metrics_token_sha256)
                .map(|digest| scimitar_server::metrics::parse_token_digest(&digest))
                .transpose()?,
            public_url: flags
                .public_url
                .or(file_config.public_url)
                .map(|url| PublicUrl::parse(&url))
                .transpose()?,
            serve_limits,
            token_rotation_overlap: duration(
                "token_rotation_overlap",
                flags.token_rotation_overlap,
                &file_config.token_rotation_overlap,
                scimitar_app::tokens::DEFAULT_ROTATION_OVERLAP,
                true,
            )?,
            oauth_signing_key_rotation: duration(
                "oauth_signing_key_rotation",
                flags.oauth_signing_key_rotation,
                &file_config.oauth_signing_key_rotation,
                scimitar_app::oauth::DEFAULT_SIGNING_KEY_ROTATION,
                false,
            )?,
            audit_retention_days: match flags
                .audit_retention_days
                .or(file_config.audit_retention_days)
            {
                Some(0) => return Err("audit_retention_days must be at least 1".to_string()),
                days => days,
            },
            audit_refusals: {
                let defaults = scimitar_app::audit_refusals::RefusalSettings::default();
                scimitar_app::audit_refusals::RefusalSettings {
                    queue_capacity: match flags
                        .audit_refusal_queue
                        .or(file_config.audit_refusal_queue)
                        .unwrap_or(defaults.queue_capacity)
                    {
                        0 => return Err("audit_refusal_queue must be at least 1".to_string()),
                        size => size,
                    },
                    per_account_per_minute: flags
                        .audit_refusals_per_minute
                        .or(file_config.audit_refusals_per_minute)
                        .unwrap_or(defaults.per_account_per_minute),
                }
            },
            federation_allow_loopback_http: flags
                .federation_allow_loopback_http
                .or(file_config.federation_allow_loopback_http)
                .unwrap_or(false),
            workspaces: WorkspaceSettings {
                default_workspace: match flags.default_workspace.or(file_config.default_workspace) {
                    Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                        Some(WorkspaceId::new(id))
                    }
                    Some(id) => {
                        return Err(format!("default_workspace {id:?} is not a workspace id"))
                    }
                    None => None,
                },
                workspace_domain: match flags.workspace_domain.or(file_config.workspace_domain) {
                    Some(domain) => Some(checked_domain(&domain)?),
                    None => None,
                },
            },
        })
    }
}

/// A DNS domain: dot-separated labels of letters, digits and inner hyphens; kept lowercase
/// and without a leading or trailing dot.
fn checked_domain(domain: &str) -> Result<String, String> {
    let domain = domain.trim().trim_matches('.').to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if domain.is_empty() || !domain.split('.').all(label_ok) {
        return Err(format!("workspace_domain {domain:?} is not a DNS domain"));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\ndatabase_url = \"sqlite:///tmp/x.db\"\ndatabase_max_connections = 7\nworker_threads = 2\n",
        )
        .unwrap();
        let from_file = Config::load(Some(&path), Flags::default()).unwrap();
        assert_eq!(from_file.listen, "0.0.0.0:9000");
        assert_eq!(from_file.max_connections, 7);
        assert_eq!(from_file.worker_threads, Some(2));
        let flagged = Config::load(
            Some(&path),
            Flags {
                listen: Some("127.0.0.1:1".into()),
                max_connections: Some(3),
                worker_threads: Some(1),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(flagged.listen, "127.0.0.1:1");
        assert_eq!(flagged.database_url, "sqlite:///tmp/x.db");
        assert_eq!(flagged.max_connections, 3);
        assert_eq!(flagged.worker_threads, Some(1));
        let defaults = Config::load(None, Flags::default()).unwrap();
        assert_eq!(defaults.listen, DEFAULT_LISTEN);
        assert_eq!(defaults.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(defaults.worker_threads, None);
        assert!(Config::load(
            None,
            Flags {
                max_connections: Some(0),
                ..Flags::default()
            }
        )
        .is_err());
        assert!(Config::load(
            None,
            Flags {
                worker_threads: Some(0),
                ..Flags::default()
            }
        )
        .unwrap_err()
        .contains("worker_threads"));
        let digest = "0A".repeat(32);
        let metrics = Config::load(
            None,
            Flags {
                metrics_token_sha256: Some(digest),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(metrics.metrics_token_sha256, Some("0a".repeat(32)));
        assert!(
            Config::load(
                None,
                Flags {
                    metrics_token_sha256: Some("secret".into()),
                    ..Flags::default()
                }
            )
            .unwrap_err()
            .contains("metrics_token_sha256"),
            "a token where its digest belongs is refused"
        );
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn sync_jobs_are_read_from_the_config_files_directory_unless_flags_name_others() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-jobs-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(&path, "sync_jobs = [\"a.toml\", \"/etc/jobs/b.toml\"]\n").unwrap();
        let config = Config::load(Some(&path), Flags::default()).unwrap();
        assert_eq!(
            config.sync_jobs,
            [directory.join("a.toml"), PathBuf::from("/etc/jobs/b.toml")]
        );
        let flagged = Flags {
            sync_jobs: vec![PathBuf::from("c.toml")],
            ..Flags::default()
        };
        let config = Config::load(Some(&path), flagged).unwrap();
        assert_eq!(config.sync_jobs, [PathBuf::from("c.toml")]);
        assert!(Config::load(None, Flags::default())
            .unwrap()
            .sync_jobs
            .is_empty());
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn alert_rules_and_their_delivery_settings_come_from_the_file_and_are_checked() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-alerts-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(
            &path,
            r#"
alert_retry_max = "1m"
alert_delivery_timeout = 5

[[alert_rules]]
name = "mass deprovisioning"
kind = "mass_deprovisioning"
threshold = 20
window_seconds = 600
webhook = { url = "https://hooks.example.com/x", format = "slack", secret = "0123456789abcdef" }
"#,
        )
        .unwrap();
        let config = Config::load(Some(&path), Flags::default()).unwrap();
        assert_eq!(config.alerts.rules.len(), 1);
        assert_eq!(config.alerts.retry_max, Duration::from_secs(60));
        assert_eq!(config.alerts.timeout, Duration::from_secs(5));
        let settings = config.alerts.settings().unwrap();
        assert_eq!(settings.rules[0].id, "config:mass deprovisioning");
        assert!(
            !format!("{config:?}").contains("0123456789abcdef"),
            "the secret is not printed"
        );
        // A rule without a secret, of an unknown kind, or with a misspelt field is refused.
        let secret = r#"secret = "0123456789abcdef""#;
        for bad in [
            "[[alert_rules]]\nname = \"a\"\nkind = \"token_expiry\"\nwebhook = { url = \"http://h/x\" }\n".to_string(),
            format!("[[alert_rules]]\nname = \"a\"\nkind = \"nope\"\nwebhook = {{ url = \"http://h/x\", {secret} }}\n"),
            format!("[[alert_rules]]\nname = \"a\"\nkind = \"token_expiry\"\nthreshhold = 1\nwebhook = {{ url = \"http://h/x\", {secret} }}\n"),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(Config::load(Some(&path), Flags::default()).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn the_public_url_comes_from_the_flag_or_the_file_and_is_checked_at_startup() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-url-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(&path, "public_url = \"https://idp.example.com/\"\n").unwrap();
        let from_file = Config::load(Some(&path), Flags::default()).unwrap();
        assert_eq!(
            from_file.public_url.unwrap().as_str(),
            "https://idp.example.com"
        );
        let flagged = Config::load(
            Some(&path),
            Flags {
                public_url: Some("http://10.1.2.3:8080".into()),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(flagged.public_url.unwrap().as_str(), "http://10.1.2.3:8080");
        assert_eq!(
            Config::load(None, Flags::default()).unwrap().public_url,
            None
        );
        let refused = Config::load(
            None,
            Flags {
                public_url: Some("idp.example.com?x".into()),
                ..Flags::default()
            },
        );
        assert!(refused.unwrap_err().contains("public_url"));
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn audit_retention_and_refusal_limits_come_from_flags_then_the_file_then_defaults() {
        let defaults = Config::load(None, Flags::default()).unwrap();
        assert_eq!(defaults.audit_retention_days, None);
        assert_eq!(
            defaults.audit_refusals,
            scimitar_app::audit_refusals::RefusalSettings::default()
        );
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-audit-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(
            &path,
            "audit_retention_days = 90\naudit_refusal_queue = 64\naudit_refusals_per_minute = 5\n",
        )
        .unwrap();
        let from_file = Config::load(Some(&path), Flags::default()).unwrap();
        assert_eq!(from_file.audit_retention_days, Some(90));
        assert_eq!(from_file.audit_refusals.queue_capacity, 64);
        assert_eq!(from_file.audit_refusals.per_account_per_minute, 5);
        let flagged = Config::load(
            Some(&path),
            Flags {
                audit_retention_days: Some(30),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(flagged.audit_retention_days, Some(30));
        for refused in ["audit_retention_days = 0\n", "audit_refusal_queue = 0\n"] {
            std::fs::write(&path, refused).unwrap();
            assert!(Config::load(Some(&path), Flags::default())
                .unwrap_err()
                .contains("at least 1"));
        }
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        assert!(Config::load(Some(&path), Flags::default())
            .unwrap_err()
            .contains("unknown field"));
        std::fs::remove_dir_all(&directory).unwrap();
    }
}

#[cfg(test)]
mod serve_limit_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_are_seconds_or_carry_a_unit() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(7_776_000)
        );
        assert!(parse_duration("10w").unwrap_err().contains("unit"));
        assert!(parse_duration("ten")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn connection_limits_come_from_flags_then_the_file_then_defaults() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-limits-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(
            &path,
            "connection_limit = 100\nheader_timeout = 5\nbody_timeout = \"1m\"\nidle_timeout = 2.5\nshutdown_deadline = \"0s\"\n",
        )
        .unwrap();
        let from_file = Config::load(Some(&path), Flags::default())
            .unwrap()
            .serve_limits;
        assert_eq!(from_file.max_connections, 100);
        assert_eq!(from_file.header_timeout, Duration::from_secs(5));
        assert_eq!(from_file.body_timeout, Duration::from_secs(60));
        assert_eq!(from_file.idle_timeout, Duration::from_millis(2500));
        assert_eq!(from_file.shutdown_deadline, Duration::ZERO);
        let flagged = Config::load(
            Some(&path),
            Flags {
                connection_limit: Some(7),
                idle_timeout: Some(Duration::from_secs(9)),
                ..Flags::default()
            },
        )
        .unwrap()
        .serve_limits;
        assert_eq!(flagged.max_connections, 7);
        assert_eq!(flagged.idle_timeout, Duration::from_secs(9));
        assert_eq!(flagged.header_timeout, Duration::from_secs(5));
        let defaults = Config::load(None, Flags::default()).unwrap().serve_limits;
        assert_eq!(defaults, ServeLimits::default());
        let zero = |flags| Config::load(None, flags).unwrap_err();
        assert!(zero(Flags {
            connection_limit: Some(0),
            ..Flags::default()
        })
        .contains("connection_limit"));
        assert!(zero(Flags {
            header_timeout: Some(Duration::ZERO),
            ..Flags::default()
        })
        .contains("header_timeout"));
        std::fs::write(&path, "body_timeout = \"soon\"\n").unwrap();
        assert!(Config::load(Some(&path), Flags::default())
            .unwrap_err()
            .contains("body_timeout"));
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
