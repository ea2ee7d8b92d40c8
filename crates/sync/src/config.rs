//! A job's configuration: the TOML file `scimitar sync` reads (source, target, scope,
//! mappings, thresholds), and the [`Policy`] part of it the pure planner takes.

use crate::model::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How a source object is matched to an existing target object that no job created
/// (brownfield), tried in the configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MatchKey {
    /// Users: `userName`, case-insensitively (SCIM's `caseExact: false`).
    UserName,
    /// Any kind: `externalId`, exactly.
    ExternalId,
    /// Users: the primary email, case-insensitively.
    Email,
    /// Groups and service principals: `displayName`, case-insensitively.
    DisplayName,
    /// Service principals: `applicationId`, exactly.
    ApplicationId,
}

impl MatchKey {
    /// Whether this key can match objects of `kind`.
    pub fn applies_to(self, kind: Kind) -> bool {
        match self {
            MatchKey::UserName | MatchKey::Email => kind == Kind::User,
            MatchKey::ExternalId => true,
            MatchKey::DisplayName => kind != Kind::User,
            MatchKey::ApplicationId => kind == Kind::ServicePrincipal,
        }
    }

    /// The attribute path compared, and whether the comparison ignores case.
    pub fn attribute(self) -> (&'static str, bool) {
        match self {
            MatchKey::UserName => ("userName", true),
            MatchKey::ExternalId => ("externalId", false),
            MatchKey::Email => ("emails", true),
            MatchKey::DisplayName => ("displayName", true),
            MatchKey::ApplicationId => ("applicationId", false),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MatchKey::UserName => "userName",
            MatchKey::ExternalId => "externalId",
            MatchKey::Email => "email",
            MatchKey::DisplayName => "displayName",
            MatchKey::ApplicationId => "applicationId",
        }
    }
}

/// What the planner decides by: which source objects are in scope, how to match, what to
/// map, and when to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Groups (by source displayName) whose members, transitively, and nested groups are in
    /// scope; empty: everything the source holds.
    pub groups: Vec<String>,
    /// Brownfield matching, in order; the first key that matches exactly one unmanaged target
    /// object adopts it.
    pub match_order: Vec<MatchKey>,
    /// Entitlements a target group holds, by the group's source displayName (targets with
    /// entitlements only, such as a Databricks workspace).
    pub entitlements: BTreeMap<String, Vec<String>>,
    /// How long a deactivated user (or a group gone from the source) stays before it is
    /// deleted, in seconds.
    pub delete_after_seconds: i64,
    /// The deletion guard: a plan that deactivates or deletes more than this share of the
    /// objects the job manages (percent) ...
    pub max_deprovision_percent: u32,
    /// ... or more than this many, whichever is smaller, stops before acting.
    pub max_deprovision_count: usize,
    /// Whether this run may exceed the guard (`--allow-deletions`).
    pub allow_deletions: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            groups: Vec::new(),
            match_order: vec![
                MatchKey::UserName,
                MatchKey::ExternalId,
                MatchKey::Email,
                MatchKey::DisplayName,
                MatchKey::ApplicationId,
            ],
            entitlements: BTreeMap::new(),
            delete_after_seconds: 7 * 24 * 3600,
            max_deprovision_percent: 20,
            max_deprovision_count: 500,
            allow_deletions: false,
        }
    }
}

/// The configuration file of `scimitar sync plan|apply --config F`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// The job's name: its state (mappings, ownership, watermark, runs) is kept under it.
    pub job: String,
    /// Where the state lives: a Scimitar database URL (`sqlite://...`, `postgres://...`).
    pub state_database: String,
    pub source: SourceConfig,
    pub target: TargetConfig,
    #[serde(default)]
    pub policy: Policy,
}

/// Where identities come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A SCIM 2.0 endpoint (its base URL, such as `http://host/scim/v2`).
    Scim {
        url: String,
        /// A file holding the bearer token (or use `token_env`).
        token_file: Option<PathBuf>,
        /// An environment variable holding the bearer token.
        token_env: Option<String>,
    },
    /// A CSV or JSON Lines export (by extension: `.csv`, `.jsonl`), see docs/design/sync.md.
    File { path: PathBuf },
    /// An LDAP directory: where and what to read in `[source.directory]` (`url`, `bind_dn`,
    /// `base_dn`, `flavor` and the filters of `scimitar_ldap::DirectoryConfig`), the bind
    /// password in a file or an environment variable (default `SCIMITAR_SYNC_LDAP_PASSWORD`).
    Ldap {
        directory: Box<scimitar_ldap::DirectoryConfig>,
        password_file: Option<PathBuf>,
        password_env: Option<String>,
    },
}

/// Where identities go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub url: String,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    #[serde(default)]
    pub profile: Profile,
    /// Overrides whether the target nests groups (otherwise from the profile: yes).
    pub nested_groups: Option<bool>,
}

/// What kind of SCIM service a target is, beyond what its `/ServiceProviderConfig` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// RFC 7644 as the target advertises it.
    #[default]
    Generic,
    /// A Databricks workspace (`/api/2.0/preview/scim/v2`): entitlements on groups, service
    /// principals by applicationId, no `/ServiceProviderConfig` to rely on.
    Databricks,
}

impl JobConfig {
    pub fn parse(text: &str) -> Result<JobConfig, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The example in README's "Sync" section, which must stay a valid job.
    #[test]
    fn the_readme_example_is_a_valid_job() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\njob = ").expect("the example") + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("its end");
        let job = JobConfig::parse(&readme[start..end]).expect("parses");
        assert_eq!(job.target.profile, Profile::Databricks);
        assert_eq!(job.target.nested_groups, Some(false));
        assert_eq!(job.policy.entitlements["engineering"].len(), 2);
        assert_eq!(job.policy.match_order[0], MatchKey::UserName);
        assert!(matches!(job.source, SourceConfig::Scim { .. }));
    }

    #[test]
    fn an_ldap_source_names_its_directory_and_where_its_password_is() {
        let job = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n\
             [source]\ntype = \"ldap\"\npassword_env = \"LDAP_PW\"\n\
             [source.directory]\nurl = \"ldap://dc1:389\"\nbind_dn = \"cn=r\"\n\
             base_dn = \"dc=x\"\nflavor = \"active_directory\"\n\
             [target]\nurl = \"http://t\"\n",
        )
        .expect("parses");
        let SourceConfig::Ldap {
            directory,
            password_env,
            password_file,
        } = job.source
        else {
            panic!("an LDAP source: {:?}", job.source);
        };
        assert_eq!(directory.flavor, scimitar_ldap::Flavor::ActiveDirectory);
        assert_eq!(directory.page_size, 500);
        assert_eq!(password_env.as_deref(), Some("LDAP_PW"));
        assert_eq!(password_file, None);
        // A misspelt directory setting is refused, not ignored.
        let error = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n[source]\ntype = \"ldap\"\n\
             [source.directory]\nurl = \"ldap://dc1\"\nbase_dn = \"dc=x\"\nbase = \"y\"\n\
             [target]\nurl = \"http://t\"\n",
        )
        .expect_err("refused");
        assert!(error.contains("base"), "{error}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\ncolour = 1\n\
             [source]\ntype = \"file\"\npath = \"x.csv\"\n[target]\nurl = \"http://t\"\n",
        )
        .expect_err("refused");
        assert!(error.contains("colour"), "{error}");
    }
}
