//! An LDAP v3 directory as a source of identities for `scimitar sync` (issue #17).
//!
//! [`read_directory`] binds, reads every user and group under the configured bases by paged
//! search (RFC 2696, so a directory's size limit never truncates a read), and returns them as
//! plain values: users with their names, e-mail addresses and whether they are active, groups
//! with their members resolved from DNs to the entries read, split into users and groups, so
//! that nesting is there for the sync engine to mirror or flatten. A member DN that names no
//! entry in scope (another OU, a deleted user, a referral) is left out and counted. An entry is
//! known by a stable id the directory keeps across renames and moves (`entryUUID` on OpenLDAP,
//! `objectGUID` on Active Directory), never by its DN.
//!
//! Which entries are users and groups, and which attributes carry what, follow the
//! directory's conventions ([`Flavor`]), each overridable in the configuration. Disabled
//! accounts are those matching a filter the directory evaluates itself (Active Directory's
//! `userAccountControl` bit 2 by default; none on OpenLDAP unless configured). The read's
//! high-water mark (the largest `modifyTimestamp`, or AD's `uSNChanged`) is returned for
//! incremental reads ([`read_changes`]), which return the entries changed since a mark plus
//! the ids of everything still in scope, so that deletions show as ids that are gone.
//! [`read_group_graph`] reads every group with its members (and which name an entry no longer
//! in scope), for a target that flattens nesting: a changed group's ancestors are found there.
//!
//! The bind password is given separately from the configuration, so that a caller reads it
//! from a file or the environment and it is never part of what is printed or logged.

mod dn;
mod range;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

pub use dn::normalize as normalize_dn;

use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Whose conventions the directory follows: the default filters and attribute names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// OpenLDAP and most RFC 4519 directories: `inetOrgPerson` users, `groupOfNames` and
    /// `groupOfUniqueNames` groups, `entryUUID`, `modifyTimestamp`.
    #[default]
    Openldap,
    /// Active Directory: `user` objects of category `person`, `group` objects, `objectGUID`,
    /// `userPrincipalName`, `uSNChanged`, disabled by `userAccountControl`.
    ActiveDirectory,
}

/// Where and how to read. Every field but `url` and `base_dn` has a default from the
/// [`Flavor`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldaps://host:port` (TLS), `ldap://host:port` (with `starttls`, or plain on loopback or
    /// with `allow_insecure`), or `ldapi://` (a Unix socket).
    pub url: String,
    /// Upgrade an `ldap://` connection to TLS (StartTLS, RFC 4511 section 4.14) before the
    /// bind; a directory that cannot is an error, never a fallback to plain text.
    #[serde(default)]
    pub starttls: bool,
    /// A PEM file of the certificate authorities to trust for the directory's certificate,
    /// and only those (a private CA's); the system's trust store when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A PEM file holding the certificate (and its chain) this client presents to a directory
    /// that asks for one (mutual TLS, `olcTLSVerifyClient: demand`); with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// The PEM file of the private key of `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Accept plain `ldap://` to another host, password and answers in clear text. Off: such
    /// a URL is refused before anything is sent (see `tls.rs` for why).
    #[serde(default)]
    pub allow_insecure: bool,
    /// The DN to bind as; anonymous when absent. Its password is passed to the reads.
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub flavor: Flavor,
    /// Where users and groups are searched (the whole subtree), unless the next two say.
    pub base_dn: String,
    #[serde(default)]
    pub user_base_dn: Option<String>,
    #[serde(default)]
    pub group_base_dn: Option<String>,
    /// Which entries are users; the flavor's when absent.
    #[serde(default)]
    pub user_filter: Option<String>,
    /// Which entries are groups; the flavor's when absent.
    #[serde(default)]
    pub group_filter: Option<String>,
    /// Which users are disabled (synced as `active: false`); the flavor's when absent, and
    /// none when it is the empty string.
    #[serde(default)]
    pub disabled_filter: Option<String>,
    /// The attribute holding a user's SCIM `userName`; `uid` or `userPrincipalName`.
    #[serde(default)]
    pub user_name_attribute: Option<String>,
    /// The attribute of the stable id; `entryUUID` or `objectGUID`.
    #[serde(default)]
    pub id_attribute: Option<String>,
    /// Entries per page of a search.
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// How long connecting, and each operation, may take.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn default_page_size() -> i32 {
    500
}

fn default_timeout_seconds() -> u64 {
    30
}

/// The attribute names and filters a read uses, the configuration's or the flavor's.
#[derive(Debug, Clone)]
struct Conventions {
    user_filter: String,
    group_filter: String,
    disabled_filter: Option<String>,
    id: String,
    user_name: String,
    /// Values that are bytes (AD's GUIDs) rather than strings.
    binary_id: bool,
    stamp: String,
    /// The stamp is a number (AD's update sequence number), not a GeneralizedTime.
    numeric_stamp: bool,
}

impl Conventions {
    fn of(config: &DirectoryConfig) -> Conventions {
        let (user_filter, group_filter, disabled, id, user_name, stamp) = match config.flavor {
            Flavor::Openldap => (
                "(objectClass=inetOrgPerson)",
                "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
                None,
                "entryUUID",
                "uid",
                "modifyTimestamp",
            ),
            Flavor::ActiveDirectory => (
                "(&(objectCategory=person)(objectClass=user))",
                "(objectClass=group)",
                Some("(userAccountControl:1.2.840.113556.1.4.803:=2)"),
                "objectGUID",
                "userPrincipalName",
                "uSNChanged",
            ),
        };
        let id = config
            .id_attribute
            .clone()
            .unwrap_or_else(|| id.to_string());
        Conventions {
            user_filter: config
                .user_filter
                .clone()
                .unwrap_or_else(|| user_filter.to_string()),
            group_filter: config
                .group_filter
                .clone()
                .unwrap_or_else(|| group_filter.to_string()),
            disabled_filter: match &config.disabled_filter {
                Some(filter) if filter.trim().is_empty() => None,
                Some(filter) => Some(filter.clone()),
                None => disabled.map(str::to_string),
            },
            binary_id: id.eq_ignore_ascii_case("objectGUID"),
            id,
            user_name: config
                .user_name_attribute
                .clone()
                .unwrap_or_else(|| user_name.to_string()),
            numeric_stamp: stamp == "uSNChanged",
            stamp: stamp.to_string(),
        }
    }
}

/// A user as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The stable id (`entryUUID`, or `objectGUID` in its usual text form).
    pub id: String,
    pub dn: String,
    pub user_name: String,
    /// `displayName`, else `cn`.
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `mail`, every value, the first being the primary.
    pub emails: Vec<String>,
    pub active: bool,
}

/// A group, its members resolved to the entries read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub id: String,
    pub dn: String,
    /// `cn`, else the DN's first value.
    pub display_name: String,
    /// Ids of the users among its members, in the order the directory lists them.
    pub member_users: Vec<String>,
    /// Ids of the groups among its members (nesting).
    pub member_groups: Vec<String>,
}

/// Everything in scope, at one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    /// The mark to give [`read_changes`] next time: the largest `modifyTimestamp` (or
    /// `uSNChanged`) of the entries read.
    pub high_water: Option<String>,
    /// Member DNs that named no user or group in scope, left out.
    pub unresolved_members: usize,
    /// Entries matching the user filter that lack the user name attribute or the id, left
    /// out.
    pub skipped_users: usize,
}

/// What changed since a mark: the users and groups modified since (whole, their members
/// resolved), and, when the read listed every entry, the ids of every user and group still in
/// scope, so that a consumer sees a deletion as an id it knows that is no longer present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryChanges {
    pub changed_users: Vec<DirectoryUser>,
    pub changed_groups: Vec<DirectoryGroup>,
    /// Every user and group in scope, when this read listed them (`None`: it did not look).
    pub present: Option<PresentIds>,
    pub high_water: Option<String>,
    pub unresolved_members: usize,
}

/// The ids of every user and of every group in scope, as a listing found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresentIds {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot reach the directory at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the directory refused the bind as {bind_dn}: {reason}")]
    BindRefused { bind_dn: String, reason: String },
    #[error("the directory refused the search under {base} with {filter}: {reason}")]
    SearchFailed {
        base: String,
        filter: String,
        reason: String,
    },
    #[error(
        "the directory at {url} presented a certificate this client does not trust \
         ({reason}); name the CA that issued it in ca_file"
    )]
    UntrustedCertificate { url: String, reason: String },
    #[error(
        "the directory at {url} refused the TLS connection after the handshake ({reason}), as \
         a directory does that demands a client certificate and got none, or one from a CA it \
         does not trust: set client_cert_file and client_key_file to a certificate its CA \
         issued"
    )]
    ClientCertificateRefused { url: String, reason: String },
    #[error("TLS with the directory at {url} failed: {reason}")]
    Tls { url: String, reason: String },
    #[error("the configuration is not usable: {0}")]
    Config(String),
}

type Result<T> = std::result::Result<T, DirectoryError>;

/// Reads every user and group in scope.
pub async fn read_directory(config: &DirectoryConfig, password: Option<&str>) -> Result<Directory> {
    let conventions = Conventions::of(config);
    let mut ldap = connect(config, password).await?;
    let read = read_all(&mut ldap, config, &conventions, Reading::Everything).await;
    let _ = ldap.unbind().await;
    let read = read?;
    Ok(Directory {
        users: read.users,
        groups: read.groups,
        high_water: read.high_water,
        unresolved_members: read.unresolved_members,
        skipped_users: read.skipped_users,
    })
}

/// Reads what changed since `mark` (a [`Directory::high_water`] or
/// [`DirectoryChanges::high_water`]): entries whose stamp is at or after it (the mark's own
/// second is read again, so a change in the same second as the last read is never missed;
/// a consumer applying what it already has changes nothing), their member DNs resolved with
/// `index`, which the read keeps up to date. It lists every entry in scope (their ids, by
/// which a consumer sees a deletion as an id it knows that is no longer present) when `list`
/// asks, when `index` was never filled by a listing, or when a changed group names a DN the
/// index does not know; [`DirectoryChanges::present`] then holds them.
pub async fn read_changes(
    config: &DirectoryConfig,
    password: Option<&str>,
    mark: &str,
    index: &mut EntryIndex,
    list: bool,
) -> Result<DirectoryChanges> {
    let conventions = Conventions::of(config);
    if !mark
        .chars()
        .all(|char| char.is_ascii_alphanumeric() || matches!(char, '.' | ',' | '+' | '-'))
    {
        return Err(DirectoryError::Config(format!(
            "{mark:?} is not a high-water mark a read returned"
        )));
    }
    let mut ldap = connect(config, password).await?;
    let reading = Reading::Since { mark, index, list };
    let read = read_all(&mut ldap, config, &conventions, reading).await;
    let _ = ldap.unbind().await;
    let read = read?;
    Ok(DirectoryChanges {
        changed_users: read.users,
        changed_groups: read.groups,
        present: read.present,
        high_water: read.high_water,
        unresolved_members: read.unresolved_members,
    })
}

/// Every group in scope with its members, and which of them name a member that is not: what
/// an incremental run into a target that flattens groups needs beyond [`read_changes`], since
/// a changed group changes what every group above it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupGraph {
    /// Every group, its members resolved to ids as a full read resolves them.
    pub groups: Vec<DirectoryGroup>,
    /// Ids of the groups naming a member DN that is no user or group in scope. A directory
    /// without referential integrity leaves a deleted (or moved) entry's DN in its groups
    /// without their stamp moving, so these are where a gone group may have been nested.
    pub naming_unresolved: Vec<String>,
}

/// Reads every group in scope whole (id, name, members), to resolve the members with the
/// users of `index` (a listed [`EntryIndex`], as [`read_changes`] just left it; else every
/// user's id is read too): the group graph, from which a caller finds a changed group's
/// ancestors and what is nested under them. At 10,000 groups of 100 members this costs about
/// a full read of the groups (BENCHMARKS.md, "sync from LDAP at scale").
pub async fn read_group_graph(
    config: &DirectoryConfig,
    password: Option<&str>,
    index: &EntryIndex,
) -> Result<GroupGraph> {
    let conventions = Conventions::of(config);
    let mut ldap = connect(config, password).await?;
    let read = group_graph(&mut ldap, config, &conventions, index).await;
    let _ = ldap.unbind().await;
    read
}

async fn group_graph(
    ldap: &mut Ldap,
    config: &DirectoryConfig,
    conventions: &Conventions,
    index: &EntryIndex,
) -> Result<GroupGraph> {
    let user_base = config.user_base_dn.as_deref().unwrap_or(&config.base_dn);
    let group_base = config.group_base_dn.as_deref().unwrap_or(&config.base_dn);
    let id = conventions.id.as_str();
    // Groups are read here whole, so only the users come from the index: a group deleted
    // since its listing is then no longer resolved, as the graph's callers need.
    let mut kinds: HashMap<String, (bool, String)> = if index.is_listed() {
        index
            .by_dn
            .iter()
            .filter(|(_, (is_user, _))| *is_user)
            .map(|(dn, known)| (dn.clone(), known.clone()))
            .collect()
    } else {
        let users = search(ldap, config, user_base, &conventions.user_filter, &[id]).await?;
        users
            .iter()
            .filter_map(|entry| {
                let entry_id = entry_id(entry, conventions)?;
                Some((dn::normalize(&entry.dn), (true, entry_id)))
            })
            .collect()
    };
    let mut groups = search(
        ldap,
        config,
        group_base,
        &conventions.group_filter,
        &[id, "cn", MEMBER_ATTRIBUTES[0], MEMBER_ATTRIBUTES[1]],
    )
    .await?;
    for entry in &mut groups {
        range::complete(entry, &mut OneEntry(ldap)).await?;
    }
    for entry in &groups {
        if let Some(entry_id) = entry_id(entry, conventions) {
            kinds.insert(dn::normalize(&entry.dn), (false, entry_id));
        }
    }
    let mut graph = GroupGraph::default();
    for entry in &groups {
        let Some((group, unresolved)) = resolved_group(entry, conventions, &kinds) else {
            continue;
        };
        if !unresolved.is_empty() {
            graph.naming_unresolved.push(group.id.clone());
        }
        graph.groups.push(group);
    }
    Ok(graph)
}

/// A group entry as a [`DirectoryGroup`], its member DNs resolved with `known` (normalized
/// DN to whether a user, and id), and the normalized member DNs `known` does not hold; `None`
/// for an entry without an id.
fn resolved_group(
    entry: &SearchEntry,
    conventions: &Conventions,
    known: &HashMap<String, (bool, String)>,
) -> Option<(DirectoryGroup, Vec<String>)> {
    let mut group = DirectoryGroup {
        display_name: first(entry, "cn")
            .map(str::to_string)
            .unwrap_or_else(|| first_rdn_value(&entry.dn)),
        id: entry_id(entry, conventions)?,
        dn: entry.dn.clone(),
        member_users: Vec::new(),
        member_groups: Vec::new(),
    };
    let mut unresolved = Vec::new();
    for attribute in MEMBER_ATTRIBUTES {
        for member in values(entry, attribute) {
            let member_dn = dn::normalize(member_dn(attribute, member));
            match known.get(&member_dn) {
                Some((true, member_id)) => group.member_users.push(member_id.clone()),
                Some((false, member_id)) => group.member_groups.push(member_id.clone()),
                None => unresolved.push(member_dn),
            }
        }
    }
    Some((group, unresolved))
}

/// A member value's DN: `uniqueMember` may carry `#'...'B` (an optional unique id) after it.
fn member_dn<'v>(attribute: &str, value: &'v str) -> &'v str {
    match (attribute, value.rfind("#'")) {
        ("uniqueMember", Some(at)) if value.ends_with("'B") => &value[..at],
        _ => value,
    }
}

async fn connect(config: &DirectoryConfig, password: Option<&str>) -> Result<Ldap> {
    if config.page_size < 1 {
        return Err(DirectoryError::Config(format!(
            "page_size must be at least 1, not {}",
            config.page_size
        )));
    }
    let transport = tls::Transport::of(config)?;
    let over_tls = transport.starttls || config.url.to_ascii_lowercase().starts_with("ldaps://");
    let timeout = Duration::from_secs(config.timeout_seconds.max(1));
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(transport.starttls);
    if let Some(client_config) = transport.client_config {
        settings = settings.set_config(client_config);
    }
    let (connection, mut ldap) = LdapConnAsync::with_settings(settings, &config.url)
        .await
        .map_err(|error| tls::connect_error(&config.url, error))?;
    // The connection's errors reach the operations waiting on it only as a closed channel;
    // the error itself is handed back here, so that a TLS refusal can be told as such.
    let (ended, connection_error) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Err(error) = connection.drive().await {
            let _ = ended.send(error);
        }
    });
    ldap.with_timeout(timeout);
    if let Some(bind_dn) = &config.bind_dn {
        let refused = |reason: String| DirectoryError::BindRefused {
            bind_dn: bind_dn.clone(),
            reason,
        };
        let bound = ldap
            .simple_bind(bind_dn, password.unwrap_or_default())
            .await;
        let answer = match bound {
            Ok(answer) => answer,
            Err(error) => {
                // Under TLS 1.3 a directory refuses a client's certificate after the client
                // has finished its handshake: the first operation finds the connection gone.
                let dropped = tokio::time::timeout(timeout, connection_error).await;
                let refusal = match &dropped {
                    Ok(Ok(dropped)) => {
                        tls::client_certificate_refusal(&config.url, dropped, over_tls)
                    }
                    _ => None,
                };
                return Err(refusal
                    .or_else(|| tls::client_certificate_refusal(&config.url, &error, over_tls))
                    .unwrap_or_else(|| refused(error.to_string())));
            }
        };
        answer
            .success()
            .map_err(|error| refused(error.to_string()))?;
    }
    Ok(ldap)
}

/// What one pass over the directory found.
#[derive(Default)]
struct Read {
    users: Vec<DirectoryUser>,
    groups: Vec<DirectoryGroup>,
    /// Every user and group in scope, when this read listed them.
    present: Option<PresentIds>,
    high_water: Option<String>,
    unresolved_members: usize,
    skipped_users: usize,
}

/// Member attributes of the group classes: `member` (groupOfNames, AD) and `uniqueMember`
/// (groupOfUniqueNames, whose values may end in `#'0101'B`, an optional unique id).
const MEMBER_ATTRIBUTES: [&str; 2] = ["member", "uniqueMember"];

async fn read_all(
    ldap: &mut Ldap,
    config: &DirectoryConfig,
    conventions: &Conventions,
    reading: Reading<'_>,
) -> Result<Read> {
    let since = match &reading {
        Reading::Everything => None,
        Reading::Since { mark, .. } => Some(*mark),
    };
    let user_base = config.user_base_dn.as_deref().unwrap_or(&config.base_dn);
    let group_base = config.group_base_dn.as_deref().unwrap_or(&config.base_dn);
    let id = conventions.id.as_str();
    let stamp = conventions.stamp.as_str();
    let user_attributes = [
        id,
        stamp,
        conventions.user_name.as_str(),
        "displayName",
        "cn",
        "givenName",
        "sn",
        "mail",
    ];
    let group_attributes = [id, stamp, "cn", MEMBER_ATTRIBUTES[0], MEMBER_ATTRIBUTES[1]];

    // Active Directory's mark is the rootDSE's highestCommittedUSN, read before the search:
    // a change committed while the search runs is above it and read next time, whereas the
    // largest uSNChanged in scope can lag the directory's own counter by changes elsewhere.
    let committed = if conventions.numeric_stamp {
        highest_committed_usn(ldap).await
    } else {
        None
    };
    let changed = |filter: &str| match since {
        None => filter.to_string(),
        Some(mark) => format!("(&{filter}({stamp}>={mark}))"),
    };
    let user_entries = search(
        ldap,
        config,
        user_base,
        &changed(&conventions.user_filter),
        &user_attributes,
    )
    .await?;
    let mut group_entries = search(
        ldap,
        config,
        group_base,
        &changed(&conventions.group_filter),
        &group_attributes,
    )
    .await?;
    // Active Directory hands out large groups' members range by range.
    for entry in &mut group_entries {
        range::complete(entry, &mut OneEntry(ldap)).await?;
    }
    // Every entry in scope, by DN, to resolve members against and to know what is still
    // there. A full read: the entries just read. Reading only what changed: the index an
    // earlier read left, with the changed entries learnt into it, or, when asked to list (or
    // when a changed group names a DN the index does not know), a new pass over every entry
    // that asks for nothing but its id and stamp.
    let mut read = Read::default();
    let mut own_index = EntryIndex::default();
    let index = match reading {
        Reading::Everything => {
            for (is_user, entries) in [(true, &user_entries), (false, &group_entries)] {
                for entry in entries {
                    if let Some(entry_id) = entry_id(entry, conventions) {
                        own_index.learn(&entry.dn, is_user, entry_id);
                    }
                    raise(&mut read.high_water, first(entry, stamp), conventions);
                }
            }
            &mut own_index
        }
        Reading::Since { index, list, .. } => {
            for (is_user, entries) in [(true, &user_entries), (false, &group_entries)] {
                for entry in entries {
                    if let Some(entry_id) = entry_id(entry, conventions) {
                        index.learn(&entry.dn, is_user, entry_id);
                    }
                    raise(&mut read.high_water, first(entry, stamp), conventions);
                }
            }
            let unknown_member = || {
                group_entries.iter().any(|entry| {
                    MEMBER_ATTRIBUTES.iter().any(|attribute| {
                        values(entry, attribute)
                            .iter()
                            .any(|value| !index.knows(&dn::normalize(member_dn(attribute, value))))
                    })
                })
            };
            if list || !index.listed || unknown_member() {
                let users = search(
                    ldap,
                    config,
                    user_base,
                    &conventions.user_filter,
                    &[id, stamp],
                )
                .await?;
                let groups = search(
                    ldap,
                    config,
                    group_base,
                    &conventions.group_filter,
                    &[id, stamp],
                )
                .await?;
                let mut listed = EntryIndex {
                    listed: true,
                    ..EntryIndex::default()
                };
                let mut present = PresentIds::default();
                for (is_user, entries) in [(true, &users), (false, &groups)] {
                    for entry in entries {
                        if let Some(entry_id) = entry_id(entry, conventions) {
                            if is_user {
                                present.users.push(entry_id.clone());
                            } else {
                                present.groups.push(entry_id.clone());
                            }
                            listed.learn(&entry.dn, is_user, entry_id);
                        }
                        raise(&mut read.high_water, first(entry, stamp), conventions);
                    }
                }
                *index = listed;
                read.present = Some(present);
            }
            index
        }
    };
    if let Some(committed) = committed {
        raise(&mut read.high_water, Some(&committed), conventions);
    }
    let disabled: std::collections::HashSet<String> = match &conventions.disabled_filter {
        None => Default::default(),
        Some(disabled) => search(
            ldap,
            config,
            user_base,
            // Only the users read whole are judged: reading what changed, those changed.
            &changed(&format!("(&{}{disabled})", conventions.user_filter)),
            &[id],
        )
        .await?
        .iter()
        .filter_map(|entry| entry_id(entry, conventions))
        .collect(),
    };
    for entry in user_entries {
        let (Some(user_id), Some(user_name)) = (
            entry_id(&entry, conventions),
            first(&entry, &conventions.user_name),
        ) else {
            read.skipped_users += 1;
            continue;
        };
        read.users.push(DirectoryUser {
            active: !disabled.contains(&user_id),
            id: user_id,
            user_name: user_name.to_string(),
            display_name: first(&entry, "displayName")
                .or_else(|| first(&entry, "cn"))
                .map(str::to_string),
            given_name: first(&entry, "givenName").map(str::to_string),
            family_name: first(&entry, "sn").map(str::to_string),
            emails: values(&entry, "mail").to_vec(),
            dn: entry.dn,
        });
    }
    for entry in &group_entries {
        let Some((group, unresolved)) = resolved_group(entry, conventions, &index.by_dn) else {
            continue;
        };
        read.unresolved_members += unresolved.len();
        index.outside.extend(unresolved);
        read.groups.push(group);
    }
    Ok(read)
}

/// How a read finds every entry in scope, to resolve member DNs against and to tell what is
/// still there.
enum Reading<'i> {
    /// A full read: its own entries are every entry.
    Everything,
    /// What changed since `mark`, with the index an earlier read left: a new listing of every
    /// entry (the id pass) when `list`, or when the index cannot resolve a changed group's
    /// members.
    Since {
        mark: &'i str,
        index: &'i mut EntryIndex,
        list: bool,
    },
}

/// Every user and group in scope by DN, with its id, as the last listing of every entry found
/// them and the changed entries read since taught: what an incremental read resolves a changed
/// group's member DNs with, so that it need not list every entry each time
/// ([`read_changes`]). A caller keeps one per directory between reads.
///
/// What it can hold that is no longer true, until the next listing: an entry deleted,
/// renamed or moved since, under its old DN (a group that still names that DN resolves it, as
/// the directory's own group does until referential integrity, if any, removes it). A new
/// entry at that DN is read as changed and replaces it.
#[derive(Debug, Clone, Default)]
pub struct EntryIndex {
    /// Normalized DN to (whether a user, id).
    by_dn: HashMap<String, (bool, String)>,
    /// Member DNs found naming no entry in scope (another subtree, a referral, a deleted
    /// entry): known not to need another listing.
    outside: std::collections::HashSet<String>,
    /// Whether a listing of every entry filled it (else it holds only changed entries).
    listed: bool,
}

impl EntryIndex {
    /// Whether a listing of every entry filled it.
    pub fn is_listed(&self) -> bool {
        self.listed
    }

    /// The entries it knows.
    pub fn len(&self) -> usize {
        self.by_dn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_dn.is_empty()
    }

    fn learn(&mut self, dn: &str, is_user: bool, id: String) {
        let dn = dn::normalize(dn);
        self.outside.remove(&dn);
        self.by_dn.insert(dn, (is_user, id));
    }

    /// Whether a member DN (normalized) is an entry it knows, or one found outside.
    fn knows(&self, dn: &str) -> bool {
        self.by_dn.contains_key(dn) || self.outside.contains(dn)
    }
}

async fn search(
    ldap: &mut Ldap,
    config: &DirectoryConfig,
    base: &str,
    filter: &str,
    attributes: &[&str],
) -> Result<Vec<SearchEntry>> {
    let failed = |reason: String| DirectoryError::SearchFailed {
        base: base.to_string(),
        filter: filter.to_string(),
        reason,
    };
    let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(config.page_size)),
    ];
    let mut stream = ldap
        .streaming_search_with(adapters, base, Scope::Subtree, filter, attributes.to_vec())
        .await
        .map_err(|error| failed(error.to_string()))?;
    let mut entries = Vec::new();
    while let Some(entry) = stream
        .next()
        .await
        .map_err(|error| failed(error.to_string()))?
    {
        entries.push(SearchEntry::construct(entry));
    }
    stream
        .finish()
        .await
        .success()
        .map_err(|error| failed(error.to_string()))?;
    Ok(entries)
}

/// Active Directory's `highestCommittedUSN` from the rootDSE; `None` when the directory does
/// not publish it (then the largest `uSNChanged` read is the mark).
async fn highest_committed_usn(ldap: &mut Ldap) -> Option<String> {
    let (entries, _) = ldap
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["highestCommittedUSN"],
        )
        .await
        .ok()?
        .success()
        .ok()?;
    let root = SearchEntry::construct(entries.into_iter().next()?);
    first(&root, "highestCommittedUSN")
        .filter(|usn| usn.parse::<u64>().is_ok())
        .map(str::to_string)
}

/// How two high-water marks of this directory's flavor compare: update sequence numbers as
/// numbers, GeneralizedTimes as text (one directory writes them all in one form); `None`
/// when either is not a mark of this flavor (a watermark a SCIM source left, say).
pub fn compare_marks(config: &DirectoryConfig, a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let conventions = Conventions::of(config);
    if conventions.numeric_stamp {
        return Some(a.parse::<u64>().ok()?.cmp(&b.parse::<u64>().ok()?));
    }
    let time = |mark: &str| {
        mark.len() >= 15
            && mark.ends_with('Z')
            && mark.as_bytes()[..14].iter().all(u8::is_ascii_digit)
    };
    (time(a) && time(b)).then(|| a.cmp(b))
}

/// Reads attributes of one entry by a base search: how [`range::complete`] asks for the rest
/// of a ranged attribute.
struct OneEntry<'l>(&'l mut Ldap);

impl range::AttributeReader for OneEntry<'_> {
    async fn read_attribute(&mut self, dn: &str, attribute: &str) -> Result<SearchEntry> {
        let failed = |reason: String| DirectoryError::SearchFailed {
            base: dn.to_string(),
            filter: format!("(objectClass=*) for {attribute}"),
            reason,
        };
        let (entries, _) = self
            .0
            .search(dn, Scope::Base, "(objectClass=*)", vec![attribute])
            .await
            .map_err(|error| failed(error.to_string()))?
            .success()
            .map_err(|error| failed(error.to_string()))?;
        entries
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .ok_or_else(|| failed("the entry is gone".into()))
    }
}

fn values<'e>(entry: &'e SearchEntry, attribute: &str) -> &'e [String] {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map(|(_, values)| values.as_slice())
        .unwrap_or_default()
}

fn first<'e>(entry: &'e SearchEntry, attribute: &str) -> Option<&'e str> {
    values(entry, attribute).first().map(String::as_str)
}

/// The entry's stable id as text: AD's `objectGUID` arrives as 16 bytes and is written as
/// Windows writes a GUID (the first three fields little-endian).
fn entry_id(entry: &SearchEntry, conventions: &Conventions) -> Option<String> {
    if conventions.binary_id {
        let bytes = entry
            .bin_attrs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&conventions.id))
            .and_then(|(_, values)| values.first())?;
        return guid_text(bytes);
    }
    first(entry, &conventions.id).map(str::to_string)
}

fn guid_text(bytes: &[u8]) -> Option<String> {
    let bytes: &[u8; 16] = bytes.try_into().ok()?;
    let hex = |range: &[u8]| -> String { range.iter().map(|byte| format!("{byte:02x}")).collect() };
    let mut first = bytes[0..4].to_vec();
    first.reverse();
    let mut second = bytes[4..6].to_vec();
    second.reverse();
    let mut third = bytes[6..8].to_vec();
    third.reverse();
    Some(format!(
        "{}-{}-{}-{}-{}",
        hex(&first),
        hex(&second),
        hex(&third),
        hex(&bytes[8..10]),
        hex(&bytes[10..16])
    ))
}

/// Keeps the larger of two stamps: numbers as numbers, GeneralizedTimes (all of one form,
/// `YYYYMMDDHHMMSSZ`) as text.
fn raise(high_water: &mut Option<String>, stamp: Option<&str>, conventions: &Conventions) {
    let Some(stamp) = stamp else { return };
    let larger = match high_water.as_deref() {
        None => true,
        Some(current) if conventions.numeric_stamp => {
            stamp.parse::<u64>().ok() > current.parse::<u64>().ok()
        }
        Some(current) => stamp > current,
    };
    if larger {
        *high_water = Some(stamp.to_string());
    }
}

fn first_rdn_value(dn: &str) -> String {
    dn.split(',')
        .next()
        .and_then(|rdn| rdn.split_once('='))
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_else(|| dn.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration with every optional setting at its default.
    pub(crate) fn config_of(url: &str, flavor: Flavor) -> DirectoryConfig {
        DirectoryConfig {
            url: url.into(),
            starttls: false,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            allow_insecure: false,
            bind_dn: None,
            flavor,
            base_dn: "dc=x".into(),
            user_base_dn: None,
            group_base_dn: None,
            user_filter: None,
            group_filter: None,
            disabled_filter: None,
            user_name_attribute: None,
            id_attribute: None,
            page_size: 10,
            timeout_seconds: 1,
        }
    }

    #[test]
    fn an_object_guid_is_written_as_windows_writes_it() {
        let bytes = [
            0x35, 0x91, 0x8b, 0x2d, 0x6a, 0x4e, 0x1b, 0x4c, 0x9e, 0x5b, 0x1e, 0x2f, 0x3a, 0x4d,
            0x5c, 0x6b,
        ];
        assert_eq!(
            guid_text(&bytes).as_deref(),
            Some("2d8b9135-4e6a-4c1b-9e5b-1e2f3a4d5c6b")
        );
        assert_eq!(guid_text(&bytes[..15]), None);
    }

    #[test]
    fn the_high_water_mark_is_the_largest_stamp() {
        let config = |flavor| config_of("ldap://127.0.0.1", flavor);
        let numeric = Conventions::of(&config(Flavor::ActiveDirectory));
        let mut mark = None;
        for stamp in ["99", "100", "12"] {
            raise(&mut mark, Some(stamp), &numeric);
        }
        assert_eq!(mark.as_deref(), Some("100"));
        let times = Conventions::of(&config(Flavor::Openldap));
        let mut mark = None;
        for stamp in ["20261205061835Z", "20261205071835Z", "20251231235959Z"] {
            raise(&mut mark, Some(stamp), &times);
        }
        assert_eq!(mark.as_deref(), Some("20261205071835Z"));
    }

    #[test]
    fn marks_compare_as_their_flavor_writes_them_and_others_are_not_marks() {
        use std::cmp::Ordering::*;
        let ad = config_of("ldap://127.0.0.1", Flavor::ActiveDirectory);
        assert_eq!(compare_marks(&ad, "99", "100"), Some(Less));
        assert_eq!(compare_marks(&ad, "100", "100"), Some(Equal));
        assert_eq!(compare_marks(&ad, "20261205061835Z", "100"), None);
        let openldap = config_of("ldap://127.0.0.1", Flavor::Openldap);
        assert_eq!(
            compare_marks(&openldap, "20261205071835Z", "20261205061835Z"),
            Some(Greater)
        );
        // An RFC 3339 time (a SCIM source's watermark) is not a directory's mark.
        assert_eq!(
            compare_marks(&openldap, "2026-12-05T06:18:35Z", "20261205061835Z"),
            None
        );
        assert_eq!(compare_marks(&openldap, "100", "100"), None);
    }

    #[test]
    fn an_empty_disabled_filter_turns_the_flavors_off() {
        let mut config = config_of("ldap://127.0.0.1", Flavor::ActiveDirectory);
        assert!(Conventions::of(&config).disabled_filter.is_some());
        config.disabled_filter = Some(String::new());
        assert!(Conventions::of(&config).disabled_filter.is_none());
    }
}
