//! Configuration, layered: defaults, then an optional TOML file, then `SCIMITAR_*` environment
//! variables, then command-line flags. Unknown keys in the file are refused, so a typo is an
//! error rather than a silently ignored setting.

use serde::Deserialize;
use std::path::Path;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE: &str = "sqlite://./scimitar-data/scimitar.db";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: String,
    pub database_url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
}

impl Config {
    /// Resolves the layers. `flag_*` are the command-line values (clap already folds the
    /// environment variables into them, flags winning).
    pub fn load(
        file: Option<&Path>,
        flag_listen: Option<String>,
        flag_database: Option<String>,
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
            "listen = \"0.0.0.0:9000\"\ndatabase_url = \"sqlite:///tmp/x.db\"\n",
        )
        .unwrap();
        let from_file = Config::load(Some(&path), None, None).unwrap();
        assert_eq!(from_file.listen, "0.0.0.0:9000");
        let flagged = Config::load(Some(&path), Some("127.0.0.1:1".into()), None).unwrap();
        assert_eq!(flagged.listen, "127.0.0.1:1");
        assert_eq!(flagged.database_url, "sqlite:///tmp/x.db");
        let defaults = Config::load(None, None, None).unwrap();
        assert_eq!(defaults.listen, DEFAULT_LISTEN);
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("scimitar.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        assert!(Config::load(Some(&path), None, None)
            .unwrap_err()
            .contains("unknown field"));
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
