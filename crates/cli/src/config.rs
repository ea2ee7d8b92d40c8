//! Configuration, layered: defaults, then an optional TOML file, then `SCIMITAR_*` environment
//! variables, then command-line flags. Unknown keys in the file are refused, so a typo is an
//! error rather than a silently ignored setting.

use scimitar_server::context::PublicUrl;
use serde::Deserialize;
use std::path::Path;

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
}

impl Config {
    /// Resolves the layers. `flag_*` are the command-line values (clap already folds the
    /// environment variables into them, flags winning).
    pub fn load(
        file: Option<&Path>,
        flag_listen: Option<String>,
        flag_database: Option<String>,
        flag_max_connections: Option<usize>,
        flag_worker_threads: Option<usize>,
        flag_metrics_token_sha256: Option<String>,
        flag_public_url: Option<String>,
    ) -> Result<Self, String> {
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
        Ok(Config {
            listen: flag_listen
                .or(file_config.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            database_url: flag_database
                .or(file_config.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE.to_string()),
            max_connections: match flag_max_connections
                .or(file_config.database_max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS)
            {
                0 => return Err("database_max_connections must be at least 1".to_string()),
                size => size,
            },
            worker_threads: match flag_worker_threads.or(file_config.worker_threads) {
                Some(0) => return Err("worker_threads must be at least 1".to_string()),
                threads => threads,
            },
            metrics_token_sha256: flag_metrics_token_sha256
                .or(file_config.metrics_token_sha256)
                .map(|digest| scimitar_server::metrics::parse_token_digest(&digest))
                .transpose()?,
            public_url: flag_public_url
                .or(file_config.public_url)
                .map(|url| PublicUrl::parse(&url))
                .transpose()?,
        })
    }
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
        let from_file = Config::load(Some(&path), None, None, None, None, None, None).unwrap();
        assert_eq!(from_file.listen, "0.0.0.0:9000");
        assert_eq!(from_file.max_connections, 7);
        assert_eq!(from_file.worker_threads, Some(2));
        let flagged = Config::load(
            Some(&path),
            Some("127.0.0.1:1".into()),
            None,
            Some(3),
            Some(1),
            None,
            None,
        )
        .unwrap();
        assert_eq!(flagged.listen, "127.0.0.1:1");
        assert_eq!(flagged.database_url, "sqlite:///tmp/x.db");
        assert_eq!(flagged.max_connections, 3);
        assert_eq!(flagged.worker_threads, Some(1));
        let defaults = Config::load(None, None, None, None, None, None, None).unwrap();
        assert_eq!(defaults.listen, DEFAULT_LISTEN);
        assert_eq!(defaults.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(defaults.worker_threads, None);
        assert!(Config::load(None, None, None, Some(0), None, None, None).is_err());
        let digest = "0A".repeat(32);
        let metrics = Config::load(None, None, None, None, None, Some(digest), None).unwrap();
        assert_eq!(metrics.metrics_token_sha256, Some("0a".repeat(32)));
        assert!(
            Config::load(None, None, None, None, None, Some("secret".into()), None)
                .unwrap_err()
                .contains("metrics_token_sha256"),
            "a token where its digest belongs is refused"
        );
        assert!(Config::load(None, None, None, None, Some(0), None, None)
            .unwrap_err()
            .contains("worker_threads"));
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn the_public_url_comes_from_the_flag_or_the_file_and_is_checked_at_startup() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-url-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(&path, "public_url = \"https://idp.example.com/\"\n").unwrap();
        let from_file = Config::load(Some(&path), None, None, None, None, None, None).unwrap();
        assert_eq!(
            from_file.public_url.unwrap().as_str(),
            "https://idp.example.com"
        );
        let flagged = Config::load(
            Some(&path),
            None,
            None,
            None,
            None,
            None,
            Some("http://10.1.2.3:8080".into()),
        )
        .unwrap();
        assert_eq!(flagged.public_url.unwrap().as_str(), "http://10.1.2.3:8080");
        assert_eq!(
            Config::load(None, None, None, None, None, None, None)
                .unwrap()
                .public_url,
            None
        );
        let refused = Config::load(
            None,
            None,
            None,
            None,
            None,
            None,
            Some("idp.example.com?x".into()),
        );
        assert!(refused.unwrap_err().contains("public_url"));
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        assert!(
            Config::load(Some(&path), None, None, None, None, None, None)
                .unwrap_err()
                .contains("unknown field")
        );
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
