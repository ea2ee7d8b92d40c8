//! A job's configuration: the TOML file `scimitar sync` reads (source, target, scope,
//! mappings, thresholds), and the [`Policy`] part of it the pure planner takes.

use crate::mapping::Mappings;
use crate::model::Kind;
use crate::scope::ScopeFilter;
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
    /// Users and service principals in scope must also match this SCIM filter, evaluated
    /// against the source object (`active eq true and emails.value ew "@example.com"`); the
    /// others are out of scope. See `crate::scope`.
    pub filter: Option<ScopeFilter>,
    /// Target attributes made from source attributes or constants through transforms, by
    /// kind (`[policy.mappings.user]`). See `crate::mapping`.
    pub mappings: Mappings,
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
    /// Whether a managed target object changed out of band is put back as the source has it
    /// (`crate::drift`); off, drift is only reported.
    pub correct_drift: bool,
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
            filter: None,
            mappings: Mappings::default(),
            entitlements: BTreeMap::new(),
            delete_after_seconds: 7 * 24 * 3600,
            max_deprovision_percent: 20,
            max_deprovision_count: 500,
            allow_deletions: false,
            correct_drift: true,
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
    /// The one target of a job as first written (`[target]`): unnamed, its state kept under
    /// the job's name. Either this or `targets`.
    pub target: Option<TargetConfig>,
    /// Several targets (`[[targets]]`), each named and with a state of its own
    /// ([`state_key`]); the source is read once per run and planned against each.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub policy: Policy,
    /// How `scimitar sync watch` waits between runs.
    #[serde(default)]
    pub watch: WatchSettings,
    /// The account whose audit trail the job's actions join, in the state database (default:
    /// its only account; none when it holds none). See `crate::trail`.
    pub account: Option<String>,
}

/// `[watch]`: how `scimitar sync watch` decides when to run again. A source that follows
/// changes (`follow_changes` on a Scimitar source) runs again as soon as it changes, and at
/// least every `interval_seconds`; any other source every `interval_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSettings {
    /// Seconds between runs when the source cannot say that it changed (at least
    /// [`MIN_WATCH_INTERVAL_SECONDS`]); for a source that can, the longest time between
    /// runs, which also retries items that failed when nothing changes.
    pub interval_seconds: u64,
    /// The longest wait between attempts while the source or target is down (the wait
    /// doubles from one second up to this).
    pub max_backoff_seconds: u64,
    /// How long a `watch` process's hold on the job lasts without renewal: two processes
    /// watching one job never run it at once, and when the holder dies another takes over
    /// after this.
    pub lease_seconds: u64,
    /// For a source that can say what changed since a mark (an LDAP directory), the seconds
    /// between reads of only what changed; the whole source is still read every
    /// `interval_seconds`, which finds what such reads cannot (see `crate::ldap_incremental`).
    /// None: every run reads the whole source.
    pub poll_seconds: Option<u64>,
    /// With `poll_seconds`: how often a poll also lists every entry in scope (their ids
    /// alone), which is how deletions at the directory are found between full reads; the
    /// polls between resolve changed groups' members from what the last listing found
    /// (`crate::ldap_incremental::DirectoryMemory`). 0: every poll lists.
    pub deletion_check_seconds: u64,
    /// Runs failed wholly in a row (could not complete, or every write failed) that
    /// quarantine the job; 0: never. See `crate::quarantine`.
    pub quarantine_after_failures: u32,
    /// While quarantined, the time between runs (until one succeeds or the job is resumed).
    pub quarantine_interval_seconds: u64,
}

/// The shortest `interval_seconds`: a source is read whole each time.
pub const MIN_WATCH_INTERVAL_SECONDS: u64 = 5;

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            interval_seconds: 300,
            max_backoff_seconds: 300,
            lease_seconds: 60,
            poll_seconds: None,
            deletion_check_seconds: 30,
            quarantine_after_failures: 5,
            quarantine_interval_seconds: 3600,
        }
    }
}

impl WatchSettings {
    pub fn quarantine(&self) -> crate::quarantine::QuarantineSettings {
        crate::quarantine::QuarantineSettings {
            after_failures: self.quarantine_after_failures,
            interval: std::time::Duration::from_secs(self.quarantine_interval_seconds),
        }
    }
}

impl SourceConfig {
    /// How a SCIM source's TLS is checked, and the client certificate it is shown (nothing
    /// for the other sources: a directory's TLS is in its own settings).
    pub fn tls(&self) -> crate::scim::TlsFiles {
        match self {
            SourceConfig::Scim {
                ca_file,
                client_cert_file,
                client_key_file,
                ..
            } => crate::scim::TlsFiles {
                ca_file: ca_file.clone(),
                client_cert_file: client_cert_file.clone(),
                client_key_file: client_key_file.clone(),
            },
            _ => crate::scim::TlsFiles::default(),
        }
    }
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
        /// The source is a Scimitar deployment: between runs, `watch` long-polls its change
        /// feed (`GET /api/2.0/sync/changes`) and runs again as soon as it changes.
        #[serde(default)]
        follow_changes: bool,
        /// The change feed's URL, when it is not at the root of the server `url` names
        /// (derived from `url`: what precedes `/scim/v2`, `/api/2.0/preview/scim/v2` or
        /// `/api/2.x/accounts/{id}/scim/v2`, then `/api/2.0/sync/changes`).
        changes_url: Option<String>,
        /// A PEM file of the certificate authorities to trust for the source's HTTPS
        /// certificate (and its change feed's), and only those: for a service whose
        /// certificate a private CA issued. The public web's CAs when absent.
        ca_file: Option<PathBuf>,
        /// A PEM certificate (and chain) to present to the source and its change feed when
        /// they ask for one (mutual TLS), with `client_key_file`.
        client_cert_file: Option<PathBuf>,
        /// The PEM private key of `client_cert_file`.
        client_key_file: Option<PathBuf>,
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
    /// Names one of a job's `[[targets]]` (`[a-z0-9_-]`, unique in the job): its state is
    /// kept under `job/name`. A lone `[target]` has none.
    pub name: Option<String>,
    pub url: String,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    /// The target's profile as written; [`TargetConfig::profile`] is what it comes to.
    #[serde(rename = "profile", default)]
    pub profile_written: Option<Profile>,
    /// What kind of service the target is: as written, else derived from its URL
    /// ([`Profile::for_url`]). Set by [`JobConfig::parse`].
    #[serde(skip)]
    pub profile: Profile,
    /// Overrides whether the target nests groups (otherwise from the profile: yes).
    pub nested_groups: Option<bool>,
    /// A PEM file of the certificate authorities to trust for the target's HTTPS certificate,
    /// and only those (a private CA's); the public web's CAs when absent.
    pub ca_file: Option<PathBuf>,
    /// A PEM certificate (and chain) to present to the target when it asks for one (mutual
    /// TLS), with `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
    /// Write requests in flight at once, and reads in flight at once (default 4; 1: one after
    /// another). See `crate::pace`.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Requests started per second, reads and retries included (default: no limit).
    pub max_requests_per_second: Option<f64>,
    /// `auto` (the default): creates go in SCIM Bulk requests when the target advertises Bulk;
    /// `off`: one request per create. See `crate::bulk::BulkSetting` for why.
    #[serde(default)]
    pub bulk: crate::bulk::BulkSetting,
}

fn default_max_concurrency() -> usize {
    crate::pace::DEFAULT_MAX_CONCURRENCY
}

impl TargetConfig {
    /// How the target's TLS is checked, and the client certificate it is shown.
    pub fn tls(&self) -> crate::scim::TlsFiles {
        crate::scim::TlsFiles {
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
        }
    }

    pub fn limits(&self) -> Result<crate::pace::Limits, String> {
        crate::pace::Limits::new(self.max_concurrency, self.max_requests_per_second).map_err(
            |error| match &self.name {
                None => format!("target.{error}"),
                Some(name) => format!("target {name}: {error}"),
            },
        )
    }
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
    /// A Databricks account (`/api/2.x/accounts/{id}/scim/v2`): account users, account groups
    /// (nested) and service principals by applicationId; no entitlements, which are set per
    /// workspace; group lists that may leave out `members`, so groups are read whole by id.
    #[serde(rename = "databricks-account")]
    DatabricksAccount,
}

impl Profile {
    /// The name a configuration and `--to-profile` give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::Databricks => "databricks",
            Profile::DatabricksAccount => "databricks-account",
        }
    }

    pub fn parse(name: &str) -> Option<Profile> {
        [
            Profile::Generic,
            Profile::Databricks,
            Profile::DatabricksAccount,
        ]
        .into_iter()
        .find(|profile| profile.as_str() == name)
    }

    /// A service's profile: the one written, else `databricks-account` for a Databricks
    /// account SCIM URL, else `generic`. For a source, only how it is read depends on it
    /// (an account's group lists leave out members). (A workspace URL is not enough to say Databricks:
    /// Scimitar serves the same path with a `/ServiceProviderConfig` of its own.)
    pub fn for_url(url: &str, written: Option<Profile>) -> Profile {
        written.unwrap_or(if is_account_scim_url(url) {
            Profile::DatabricksAccount
        } else {
            Profile::Generic
        })
    }
}

/// Whether a URL is a Databricks account SCIM base: `/api/2.0/accounts/{id}/scim/v2` or
/// `/api/2.1/...`, with or without a trailing slash.
pub fn is_account_scim_url(url: &str) -> bool {
    let Some(root) = url.trim_end_matches('/').strip_suffix("/scim/v2") else {
        return false;
    };
    let Some((before, account)) = root.rsplit_once("/accounts/") else {
        return false;
    };
    !account.is_empty()
        && !account.contains('/')
        && (before.ends_with("/api/2.0") || before.ends_with("/api/2.1"))
}

/// The longest target name: it becomes part of a state key and of log lines.
pub const MAX_TARGET_NAME: usize = 63;

/// Where a target's state (mappings, ownership, watermark, run history) is kept: under the
/// job's name for the unnamed target of a `[target]` job (where jobs written before
/// `[[targets]]` existed keep theirs), else under `job/target`. The job's lease stays under the
/// job's name alone: one process runs all of a job's targets.
pub fn state_key(job: &str, target: Option<&str>) -> String {
    match target {
        None => job.to_string(),
        Some(target) => format!("{job}/{target}"),
    }
}

/// Checks a job's name: the start of every state key of the job ([`state_key`]), so it may not
/// hold the `/` that separates a target's name from it; else a job `a/b` with a lone
/// `[target]` would share its state with target `b` of job `a`.
pub fn check_job_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the job's name is empty".into());
    }
    if name.contains('/') {
        return Err(format!(
            "job name {name:?}: a job's name may not hold `/` (it separates a target's name \
             from the job's in the job's state)"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "job name {name:?}: a job's name may not hold control characters"
        ));
    }
    Ok(())
}

/// The name of a job given by flags, `FROM -> TO` with every `/` of the two URLs written
/// `%2F` (and `%` as `%25`, so that two pairs of URLs never make one name): what its state is
/// kept under, safe by [`check_job_name`], and still readable. State kept under the raw
/// `FROM -> TO` before job names were checked is renamed so by a migration.
pub fn job_name_from_flags(from: &str, to: &str) -> String {
    let escape = |url: &str| url.replace('%', "%25").replace('/', "%2F");
    format!("{} -> {}", escape(from), escape(to))
}

/// A job's name as an operator gives it (`--job`): a job from flags may be named by its two
/// URLs as typed (`FROM -> TO`, holding `/`), which means the name [`job_name_from_flags`]
/// makes of them; any other name must pass [`check_job_name`].
pub fn job_name_given(name: &str) -> Result<String, String> {
    if let Some((from, to)) = name.split_once(" -> ").filter(|_| name.contains('/')) {
        return Ok(job_name_from_flags(from, to));
    }
    check_job_name(name)?;
    Ok(name.to_string())
}

/// The target URL of a job from flags, read back from its name ([`job_name_from_flags`]);
/// `None` for a name not made so.
pub fn target_url_of_flags_name(name: &str) -> Option<String> {
    let (_, to) = name.split_once(" -> ")?;
    let mut url = String::with_capacity(to.len());
    let mut rest = to;
    while let Some(at) = rest.find('%') {
        url.push_str(&rest[..at]);
        let escaped = &rest[at..];
        if let Some(after) = escaped.strip_prefix("%2F") {
            url.push('/');
            rest = after;
        } else if let Some(after) = escaped.strip_prefix("%25") {
            url.push('%');
            rest = after;
        } else {
            url.push('%');
            rest = &escaped[1..];
        }
    }
    url.push_str(rest);
    Some(url)
}

/// Checks a target's name: what a state key and a `--target` flag can carry unambiguously.
pub fn check_target_name(name: &str) -> Result<(), String> {
    let allowed = |character: char| {
        character.is_ascii_lowercase() || character.is_ascii_digit() || "_-".contains(character)
    };
    if name.is_empty() || name.len() > MAX_TARGET_NAME || !name.chars().all(allowed) {
        return Err(format!(
            "target name {name:?}: 1 to {MAX_TARGET_NAME} of a-z, 0-9, _ and -"
        ));
    }
    Ok(())
}

impl JobConfig {
    pub fn parse(text: &str) -> Result<JobConfig, String> {
        let mut job: JobConfig = toml::from_str(text).map_err(|error| error.to_string())?;
        check_job_name(&job.job)?;
        for target in job.target.iter_mut().chain(job.targets.iter_mut()) {
            target.profile = Profile::for_url(&target.url, target.profile_written);
        }
        match (&job.target, job.targets.is_empty()) {
            (None, true) => return Err("no target: give [target] or [[targets]]".into()),
            (Some(_), false) => {
                return Err("both [target] and [[targets]]: give one or the other".into())
            }
            (Some(target), true) if target.name.is_some() => {
                return Err(
                    "[target] has no name (its state is the job's); name targets in [[targets]]"
                        .into(),
                )
            }
            _ => {}
        }
        let mut seen = std::collections::BTreeSet::new();
        for target in &job.targets {
            let Some(name) = &target.name else {
                return Err(format!(
                    "every [[targets]] entry needs a name; the one for {} has none",
                    target.url
                ));
            };
            check_target_name(name)?;
            if !seen.insert(name.as_str()) {
                return Err(format!("two targets are named {name}"));
            }
        }
        if job.watch.interval_seconds < MIN_WATCH_INTERVAL_SECONDS {
            return Err(format!(
                "watch.interval_seconds is at least {MIN_WATCH_INTERVAL_SECONDS}, not {}",
                job.watch.interval_seconds
            ));
        }
        for target in job.all_targets() {
            target.limits()?;
        }
        if job.watch.quarantine_interval_seconds == 0 {
            return Err("watch.quarantine_interval_seconds is at least 1, not 0".into());
        }
        match (job.watch.poll_seconds, &job.source) {
            (None, _) => {}
            (Some(0), _) => return Err("watch.poll_seconds is at least 1, not 0".into()),
            (Some(_), SourceConfig::Ldap { .. }) => {}
            (Some(_), _) => {
                return Err(
                    "watch.poll_seconds is for an LDAP source (a Scimitar source is followed \
                     through follow_changes; others are read every interval_seconds)"
                        .into(),
                )
            }
        }
        if job.watch.lease_seconds < 5 {
            return Err(format!(
                "watch.lease_seconds is at least 5, not {}",
                job.watch.lease_seconds
            ));
        }
        Ok(job)
    }

    /// The job's targets: its `[target]`, or its `[[targets]]` in the order written.
    pub fn all_targets(&self) -> Vec<&TargetConfig> {
        match &self.target {
            Some(target) => vec![target],
            None => self.targets.iter().collect(),
        }
    }
}

/// Where a Scimitar deployment's change feed is, given one of its SCIM base URLs: the
/// server's root (what precedes the mount point, a `/w/{id}` prefix kept) and the feed's path.
/// `None` when the URL names no SCIM mount Scimitar serves.
pub fn changes_url_of(scim_url: &str) -> Option<String> {
    let base = scim_url.trim_end_matches('/');
    let root = base.strip_suffix("/scim/v2")?;
    let root = if let Some(root) = root.strip_suffix("/api/2.0/preview") {
        root
    } else if let Some((before, account)) = root.rsplit_once("/accounts/") {
        // `/api/2.0/accounts/{id}` or `/api/2.1/accounts/{id}`
        if account.contains('/') {
            return None;
        }
        before
            .strip_suffix("/api/2.0")
            .or_else(|| before.strip_suffix("/api/2.1"))?
    } else {
        root
    };
    Some(format!("{root}/api/2.0/sync/changes"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The example in README's "Sync" section, which must stay a valid job.
    #[test]
    fn the_readme_example_is_a_valid_job() {
        let readme = include_str!("../../../README.md");
        let job = readme_job(readme, "hr-to-workspace");
        let target = job.target.as_ref().expect("one [target]");
        assert_eq!(target.profile, Profile::Databricks);
        assert_eq!(target.nested_groups, Some(false));
        assert_eq!(job.policy.entitlements["engineering"].len(), 2);
        assert_eq!(job.policy.match_order[0], MatchKey::UserName);
        assert!(job.policy.filter.is_some());
        assert!(!job.policy.mappings.is_empty());
        assert!(matches!(job.source, SourceConfig::Scim { .. }));
    }

    /// The job of README's example named `name` (a TOML block starting `job = "name"`).
    fn readme_job(readme: &str, name: &str) -> JobConfig {
        let opening = format!("```toml\njob = \"{name}\"");
        let start = readme.find(&opening).expect("the example") + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("its end");
        JobConfig::parse(&readme[start..end]).expect("parses")
    }

    /// README's first common case: an Active Directory into a Databricks workspace, nesting
    /// flattened, entitlements mapped.
    #[test]
    fn the_readme_directory_example_is_a_valid_job() {
        let job = readme_job(include_str!("../../../README.md"), "ad-to-workspace");
        let target = job.target.as_ref().expect("one [target]");
        assert_eq!(target.profile, Profile::Databricks);
        assert_eq!(target.nested_groups, Some(false));
        assert_eq!(job.policy.entitlements["data-engineers"].len(), 2);
        assert!(matches!(job.source, SourceConfig::Ldap { .. }));
    }

    /// The `watch` example in README's "Sync" section (one source fanned out to two targets),
    /// which must stay a valid job.
    #[test]
    fn the_readme_watch_example_is_a_valid_job() {
        let job = readme_job(include_str!("../../../README.md"), "idp-fan-out");
        let names: Vec<_> = job.targets.iter().map(|t| t.name.as_deref()).collect();
        assert_eq!(names, [Some("prod"), Some("sandbox")]);
        assert!(matches!(
            job.source,
            SourceConfig::Scim {
                follow_changes: true,
                ..
            }
        ));
        assert_eq!(job.watch, WatchSettings::default());
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
    fn a_scimitar_source_follows_its_change_feed_found_from_its_scim_url() {
        let job = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n\
             [source]\ntype = \"scim\"\nurl = \"http://idp:8080/scim/v2\"\n\
             follow_changes = true\n[target]\nurl = \"http://t\"\n\
             [watch]\ninterval_seconds = 600\n",
        )
        .expect("parses");
        assert!(matches!(
            job.source,
            SourceConfig::Scim {
                follow_changes: true,
                ..
            }
        ));
        assert_eq!(job.watch.interval_seconds, 600);
        assert_eq!(job.watch.lease_seconds, 60);
        for (scim, feed) in [
            ("http://h/scim/v2", "http://h/api/2.0/sync/changes"),
            (
                "http://h/w/42/scim/v2/",
                "http://h/w/42/api/2.0/sync/changes",
            ),
            (
                "https://h/api/2.0/preview/scim/v2",
                "https://h/api/2.0/sync/changes",
            ),
            (
                "https://h/api/2.1/accounts/abc/scim/v2",
                "https://h/api/2.0/sync/changes",
            ),
        ] {
            assert_eq!(changes_url_of(scim).as_deref(), Some(feed), "{scim}");
        }
        assert_eq!(changes_url_of("http://h/other"), None);
        let error = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n\
             [source]\ntype = \"file\"\npath = \"x.csv\"\n[target]\nurl = \"http://t\"\n\
             [watch]\ninterval_seconds = 0\n",
        )
        .expect_err("refused");
        assert!(error.contains("interval_seconds"), "{error}");
    }

    #[test]
    fn several_targets_are_named_and_each_keeps_its_state_under_job_slash_name() {
        let head = "job = \"j\"\nstate_database = \"sqlite://x\"\n\
                    [source]\ntype = \"file\"\npath = \"x.csv\"\n";
        let job = JobConfig::parse(&format!(
            "{head}[[targets]]\nname = \"sandbox\"\nurl = \"http://s\"\n\
             [[targets]]\nname = \"prod-1\"\nurl = \"http://p\"\nprofile = \"databricks\"\n"
        ))
        .expect("parses");
        let names: Vec<_> = job.all_targets().iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, [Some("sandbox".into()), Some("prod-1".into())]);
        assert_eq!(state_key("j", Some("prod-1")), "j/prod-1");
        // A lone [target] keeps its state where jobs made before [[targets]] have it.
        assert_eq!(state_key("j", None), "j");
        for (targets, refusal) in [
            ("", "no target"),
            (
                "[target]\nurl = \"http://a\"\n[[targets]]\nname = \"b\"\nurl = \"http://b\"\n",
                "both",
            ),
            ("[target]\nname = \"a\"\nurl = \"http://a\"\n", "[target] has no name"),
            ("[[targets]]\nurl = \"http://a\"\n", "needs a name"),
            ("[[targets]]\nname = \"Prod\"\nurl = \"http://a\"\n", "a-z"),
            ("[[targets]]\nname = \"a/b\"\nurl = \"http://a\"\n", "a-z"),
            (
                "[[targets]]\nname = \"a\"\nurl = \"http://a\"\n[[targets]]\nname = \"a\"\nurl = \"http://b\"\n",
                "two targets are named a",
            ),
        ] {
            let error = JobConfig::parse(&format!("{head}{targets}")).expect_err(targets);
            assert!(error.contains(refusal), "{targets}: {error}");
        }
    }

    #[test]
    fn a_job_name_with_a_slash_is_refused_so_no_two_jobs_share_a_state_key() {
        let job = |name: &str| {
            format!(
                "job = {name:?}\nstate_database = \"sqlite://x\"\n\
                 [source]\ntype = \"file\"\npath = \"x.csv\"\n[target]\nurl = \"http://t\"\n"
            )
        };
        // `a/b` with a lone [target] would be kept under the key of target `b` of job `a`.
        let error = JobConfig::parse(&job("a/b")).expect_err("a slash is refused");
        assert!(error.contains("may not hold `/`"), "{error}");
        for refused in ["", " ", "a\u{7}b"] {
            assert!(JobConfig::parse(&job(refused)).is_err(), "{refused:?}");
        }
        assert!(JobConfig::parse(&job("hr -> databricks")).is_ok());

        let name = job_name_from_flags("http://a/scim/v2", "https://b/x%2Fy");
        assert_eq!(name, "http:%2F%2Fa%2Fscim%2Fv2 -> https:%2F%2Fb%2Fx%252Fy");
        assert_eq!(check_job_name(&name), Ok(()));
        // Two pairs of URLs never make one name, even where one holds what `/` is written as.
        assert_ne!(
            job_name_from_flags("http://a/b", "http://c"),
            job_name_from_flags("http://a%2Fb", "http://c")
        );
        // An operator may name it by the URLs as typed, and its target is read back.
        assert_eq!(
            job_name_given("http://a/scim/v2 -> https://b/x%2Fy").unwrap(),
            name
        );
        assert_eq!(job_name_given(&name).unwrap(), name);
        assert!(job_name_given("a/b").is_err());
        assert_eq!(
            target_url_of_flags_name(&name).as_deref(),
            Some("https://b/x%2Fy")
        );
    }

    #[test]
    fn a_target_writes_in_bulk_where_it_can_unless_told_off() {
        let with = |line: &str| {
            JobConfig::parse(&format!(
                "job = \"j\"\nstate_database = \"sqlite://x\"\n\
                 [source]\ntype = \"file\"\npath = \"x.csv\"\n[target]\nurl = \"http://t\"\n{line}\n"
            ))
        };
        let bulk = |line: &str| with(line).expect("parses").all_targets()[0].bulk;
        assert_eq!(bulk(""), crate::bulk::BulkSetting::Auto);
        assert_eq!(bulk("bulk = \"auto\""), crate::bulk::BulkSetting::Auto);
        assert_eq!(bulk("bulk = \"off\""), crate::bulk::BulkSetting::Off);
        let error = with("bulk = \"sometimes\"").expect_err("refused");
        assert!(error.contains("sometimes"), "{error}");
    }

    #[test]
    fn a_target_has_limits_and_a_job_an_account_and_a_quarantine() {
        let job = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\naccount = \"acme\"\n\
             [source]\ntype = \"file\"\npath = \"x.csv\"\n\
             [target]\nurl = \"http://t\"\nmax_concurrency = 2\nmax_requests_per_second = 7.5\n\
             [watch]\nquarantine_after_failures = 3\nquarantine_interval_seconds = 600\n",
        )
        .expect("parses");
        assert_eq!(job.account.as_deref(), Some("acme"));
        assert_eq!(
            job.all_targets()[0].limits(),
            Ok(crate::pace::Limits {
                max_concurrency: 2,
                max_requests_per_second: Some(7.5)
            })
        );
        assert_eq!(job.watch.quarantine().after_failures, 3);
        assert_eq!(job.watch.quarantine().interval.as_secs(), 600);
        let defaults = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n\
             [source]\ntype = \"file\"\npath = \"x.csv\"\n[target]\nurl = \"http://t\"\n",
        )
        .expect("parses");
        assert_eq!(
            defaults.all_targets()[0].limits(),
            Ok(crate::pace::Limits::default())
        );
        assert_eq!(
            defaults.watch.quarantine(),
            crate::quarantine::QuarantineSettings::default()
        );
        for bad in ["max_concurrency = 0", "max_requests_per_second = -1.0"] {
            let error = JobConfig::parse(&format!(
                "job = \"j\"\nstate_database = \"sqlite://x\"\n\
                 [source]\ntype = \"file\"\npath = \"x.csv\"\n[target]\nurl = \"http://t\"\n{bad}\n"
            ))
            .expect_err("refused");
            assert!(
                error.contains(bad.split(' ').next().expect("a key")),
                "{error}"
            );
        }
        // Each of several targets has limits of its own, and a refusal names the target.
        let error = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n\
             [source]\ntype = \"file\"\npath = \"x.csv\"\n\
             [[targets]]\nname = \"a\"\nurl = \"http://a\"\nmax_concurrency = 1\n\
             [[targets]]\nname = \"b\"\nurl = \"http://b\"\nmax_concurrency = 0\n",
        )
        .expect_err("refused");
        assert!(
            error.contains("target b") && error.contains("max_concurrency"),
            "{error}"
        );
    }

    #[test]
    fn an_account_scim_url_implies_the_databricks_account_profile_unless_one_is_written() {
        let job_with = |target: &str| {
            JobConfig::parse(&format!(
                "job = \"j\"\nstate_database = \"sqlite://x\"\n\
                 [source]\ntype = \"file\"\npath = \"x.csv\"\n[target]\n{target}\n"
            ))
            .map(|job| job.all_targets()[0].profile)
        };
        for (target, profile) in [
            (
                "url = \"https://accounts.cloud.databricks.com/api/2.0/accounts/abc/scim/v2\"",
                Profile::DatabricksAccount,
            ),
            (
                "url = \"https://accounts.azuredatabricks.net/api/2.1/accounts/abc/scim/v2/\"",
                Profile::DatabricksAccount,
            ),
            (
                "url = \"https://h/api/2.0/accounts/abc/scim/v2\"\nprofile = \"generic\"",
                Profile::Generic,
            ),
            (
                "url = \"https://h/api/2.0/preview/scim/v2\"",
                Profile::Generic,
            ),
            (
                "url = \"https://h/x\"\nprofile = \"databricks-account\"",
                Profile::DatabricksAccount,
            ),
            (
                "url = \"https://h/api/2.0/accounts//scim/v2\"",
                Profile::Generic,
            ),
        ] {
            assert_eq!(job_with(target), Ok(profile), "{target}");
        }
        let error = job_with("url = \"https://h/x\"\nprofile = \"account\"").expect_err("refused");
        assert!(error.contains("account"), "{error}");
    }

    #[test]
    fn a_scope_filter_that_does_not_parse_stops_the_job_at_load_with_the_parsers_message() {
        let job = |filter: &str| {
            JobConfig::parse(&format!(
                "job = \"j\"\nstate_database = \"sqlite://x\"\n\
                 [source]\ntype = \"file\"\npath = \"x.csv\"\n[target]\nurl = \"http://t\"\n\
                 [policy]\nfilter = '{filter}'\n\
                 [policy.mappings.user]\nuserName = {{ from = \"email\", transforms = [\"lower\"] }}\n"
            ))
        };
        let parsed = job("active eq true").expect("parses");
        assert_eq!(
            parsed.policy.filter.as_ref().map(|filter| filter.as_str()),
            Some("active eq true")
        );
        assert!(!parsed.policy.mappings.is_empty());
        let error = job("active eq true and").expect_err("refused");
        let parser = scimitar_scim::parse_filter("active eq true and").expect_err("refused");
        assert!(error.contains(&parser.message), "{error}");
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

    #[test]
    fn a_private_ca_is_named_by_ca_file_on_a_scim_source_a_target_and_a_directory() {
        let job = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n\
             [source]\ntype = \"scim\"\nurl = \"https://idp/scim/v2\"\nca_file = \"idp-ca.pem\"\n\
             [target]\nurl = \"https://t/scim/v2\"\nca_file = \"t-ca.pem\"\n",
        )
        .expect("parses");
        assert!(matches!(
            job.source,
            SourceConfig::Scim { ca_file: Some(ref path), .. } if path.ends_with("idp-ca.pem")
        ));
        assert_eq!(
            job.all_targets()[0].ca_file,
            Some(PathBuf::from("t-ca.pem"))
        );
        let job = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n[source]\ntype = \"ldap\"\n\
             [source.directory]\nurl = \"ldap://dc1\"\nbase_dn = \"dc=x\"\nstarttls = true\n\
             ca_file = \"corp-ca.pem\"\n[target]\nurl = \"http://t\"\n",
        )
        .expect("parses");
        let SourceConfig::Ldap { directory, .. } = job.source else {
            panic!("an LDAP source");
        };
        assert!(directory.starttls && !directory.allow_insecure);
        assert_eq!(directory.ca_file, Some(PathBuf::from("corp-ca.pem")));
    }

    #[test]
    fn client_certificates_are_named_beside_ca_file_and_poll_seconds_is_for_a_directory() {
        let job = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n\
             [source]\ntype = \"scim\"\nurl = \"https://idp/scim/v2\"\n\
             client_cert_file = \"idp.pem\"\nclient_key_file = \"idp.key\"\n\
             [target]\nurl = \"https://t/scim/v2\"\nclient_cert_file = \"t.pem\"\n\
             client_key_file = \"t.key\"\n",
        )
        .expect("parses");
        assert_eq!(
            job.source.tls().client_key_file,
            Some(PathBuf::from("idp.key"))
        );
        assert_eq!(
            job.all_targets()[0].tls().client_cert_file,
            Some(PathBuf::from("t.pem"))
        );
        let directory = "job = \"j\"\nstate_database = \"sqlite://x\"\n[source]\n\
                         type = \"ldap\"\n[source.directory]\nurl = \"ldaps://dc1\"\n\
                         base_dn = \"dc=x\"\nclient_cert_file = \"c.pem\"\n\
                         client_key_file = \"c.key\"\n[target]\nurl = \"http://t\"\n";
        let job =
            JobConfig::parse(&format!("{directory}[watch]\npoll_seconds = 2\n")).expect("parses");
        assert_eq!(job.watch.poll_seconds, Some(2));
        let error = JobConfig::parse(&format!("{directory}[watch]\npoll_seconds = 0\n"))
            .expect_err("refused");
        assert!(error.contains("poll_seconds"), "{error}");
        let error = JobConfig::parse(
            "job = \"j\"\nstate_database = \"sqlite://x\"\n[source]\ntype = \"scim\"\n\
             url = \"https://idp/scim/v2\"\n[target]\nurl = \"http://t\"\n\
             [watch]\npoll_seconds = 2\n",
        )
        .expect_err("refused");
        assert!(error.contains("LDAP"), "{error}");
    }
}
