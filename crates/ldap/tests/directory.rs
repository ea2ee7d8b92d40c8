//! Reading a real OpenLDAP server (Debian's `slapd`, started per test on loopback): paged
//! reads past the server's size limit, members resolved and nested, disabled users,
//! incremental reads and deletions, the errors of a bad bind or an absent server, and reads
//! over TLS (`ldaps://`, StartTLS) trusting a private CA, refused for a CA not trusted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_ldap::testing::{Entry, PrivateCa, Slapd, GROUPS, PEOPLE, READER_DN, READER_PASSWORD};
use scimitar_ldap::{
    read_changes, read_directory, read_group_graph, Directory, DirectoryConfig, DirectoryError,
    DirectoryGroup, DirectoryUser, EntryIndex,
};
use std::time::Duration;

fn config(slapd: &Slapd) -> DirectoryConfig {
    DirectoryConfig {
        url: slapd.url.clone(),
        starttls: false,
        ca_file: None,
        client_cert_file: None,
        client_key_file: None,
        allow_insecure: false,
        bind_dn: Some(READER_DN.to_string()),
        flavor: Default::default(),
        base_dn: "dc=example,dc=test".to_string(),
        user_base_dn: Some(PEOPLE.to_string()),
        group_base_dn: Some(GROUPS.to_string()),
        user_filter: None,
        group_filter: None,
        disabled_filter: None,
        user_name_attribute: None,
        id_attribute: None,
        page_size: 2,
        timeout_seconds: 10,
    }
}

fn person<'a>(uid: &'a str, dn: &'a str, mails: Vec<&'a str>) -> Entry<'a> {
    let mut attributes = vec![
        ("objectClass", vec!["inetOrgPerson"]),
        ("uid", vec![uid]),
        ("cn", vec![uid]),
        ("sn", vec!["Tester"]),
    ];
    if !mails.is_empty() {
        attributes.push(("mail", mails));
    }
    (dn, attributes)
}

/// Seven people (one without a `uid`), one more outside `ou=people`, and three groups:
/// `eng` holds alice, bob and the group `platform`; `platform` holds carol and the outsider;
/// `ops` is a groupOfUniqueNames holding dave.
async fn seed(slapd: &Slapd) {
    slapd
        .add(&[
            person(
                "alice",
                "uid=alice,ou=people,dc=example,dc=test",
                vec!["alice@example.test", "a@example.test"],
            ),
            person("bob", "uid=bob,ou=people,dc=example,dc=test", vec![]),
            person("carol", "uid=carol,ou=people,dc=example,dc=test", vec![]),
            person("dave", "uid=dave,ou=people,dc=example,dc=test", vec![]),
            person("erin", "uid=erin,ou=people,dc=example,dc=test", vec![]),
            person("frank", "uid=frank,ou=people,dc=example,dc=test", vec![]),
            (
                "cn=no uid,ou=people,dc=example,dc=test",
                vec![
                    ("objectClass", vec!["inetOrgPerson"]),
                    ("cn", vec!["no uid"]),
                    ("sn", vec!["Nobody"]),
                ],
            ),
            person("outsider", "uid=outsider,dc=example,dc=test", vec![]),
            (
                "cn=platform,ou=groups,dc=example,dc=test",
                vec![
                    ("objectClass", vec!["groupOfNames"]),
                    ("cn", vec!["platform"]),
                    (
                        "member",
                        vec![
                            // Written with other spacing and case than the server returns.
                            "UID=Carol, OU=People, DC=example, DC=test",
                            "uid=outsider,dc=example,dc=test",
                        ],
                    ),
                ],
            ),
            (
                "cn=eng,ou=groups,dc=example,dc=test",
                vec![
                    ("objectClass", vec!["groupOfNames"]),
                    ("cn", vec!["eng"]),
                    (
                        "member",
                        vec![
                            "uid=alice,ou=people,dc=example,dc=test",
                            "uid=bob,ou=people,dc=example,dc=test",
                            "cn=platform,ou=groups,dc=example,dc=test",
                        ],
                    ),
                ],
            ),
            (
                "cn=ops,ou=groups,dc=example,dc=test",
                vec![
                    ("objectClass", vec!["groupOfUniqueNames"]),
                    ("cn", vec!["ops"]),
                    (
                        "uniqueMember",
                        vec!["uid=dave,ou=people,dc=example,dc=test#'0101'B"],
                    ),
                ],
            ),
        ])
        .await;
}

fn user<'d>(directory: &'d Directory, name: &str) -> &'d DirectoryUser {
    directory
        .users
        .iter()
        .find(|user| user.user_name == name)
        .unwrap_or_else(|| panic!("{name} was not read: {directory:?}"))
}

fn id_of(directory: &Directory, name: &str) -> String {
    user(directory, name).id.clone()
}

#[tokio::test]
async fn a_read_pages_past_the_size_limit_and_resolves_members_and_nesting() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    seed(&slapd).await;
    let directory = read_directory(&config(&slapd), Some(READER_PASSWORD))
        .await
        .unwrap();
    // Six people with a uid under ou=people: more than the server's limit of 5 per search.
    let mut names: Vec<&str> = directory
        .users
        .iter()
        .map(|user| user.user_name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob", "carol", "dave", "erin", "frank"]);
    assert_eq!(directory.skipped_users, 1, "the person without a uid");
    let alice = user(&directory, "alice");
    let mut emails = alice.emails.clone();
    emails.sort_unstable();
    assert_eq!(emails, ["a@example.test", "alice@example.test"]);
    assert_eq!(alice.display_name.as_deref(), Some("alice"));
    assert_eq!(alice.family_name.as_deref(), Some("Tester"));
    assert!(alice.active);
    assert_eq!(alice.id.len(), 36, "an entryUUID: {}", alice.id);
    let group = |name: &str| {
        directory
            .groups
            .iter()
            .find(|group| group.display_name == name)
            .unwrap_or_else(|| panic!("group {name} was not read"))
            .clone()
    };
    let (eng, platform, ops) = (group("eng"), group("platform"), group("ops"));
    // (The test's adds send values as a set, so their order is the server's.)
    let mut eng_users = eng.member_users.clone();
    eng_users.sort_unstable();
    let mut expected = vec![id_of(&directory, "alice"), id_of(&directory, "bob")];
    expected.sort_unstable();
    assert_eq!(eng_users, expected);
    assert_eq!(eng.member_groups, std::slice::from_ref(&platform.id));
    assert_eq!(platform.member_users, [id_of(&directory, "carol")]);
    assert!(platform.member_groups.is_empty());
    assert_eq!(ops.member_users, [id_of(&directory, "dave")]);
    assert_eq!(
        directory.unresolved_members, 1,
        "the outsider is out of scope"
    );
    assert!(directory.high_water.is_some());

    // Without paging, the same search stops at the limit: the server really has one.
    let (connection, mut ldap) = ldap3::LdapConnAsync::new(&slapd.url).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.drive().await;
    });
    ldap.simple_bind(READER_DN, READER_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let unpaged = ldap
        .search(
            PEOPLE,
            ldap3::Scope::Subtree,
            "(objectClass=inetOrgPerson)",
            vec!["uid"],
        )
        .await
        .unwrap();
    assert_eq!(unpaged.1.rc, 4, "sizeLimitExceeded: {:?}", unpaged.1);
}

#[tokio::test]
async fn users_matching_the_disabled_filter_are_inactive() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    seed(&slapd).await;
    slapd
        .replace(
            "uid=bob,ou=people,dc=example,dc=test",
            "employeeType",
            &["disabled"],
        )
        .await;
    let mut config = config(&slapd);
    config.disabled_filter = Some("(employeeType=disabled)".to_string());
    let directory = read_directory(&config, Some(READER_PASSWORD))
        .await
        .unwrap();
    assert!(!user(&directory, "bob").active);
    assert!(user(&directory, "alice").active);
}

#[tokio::test]
async fn changes_since_a_mark_are_read_with_every_id_still_in_scope() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    seed(&slapd).await;
    // modifyTimestamp counts seconds: the last entry added a second after the rest, so that
    // the mark read after it is that entry's second alone.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    slapd
        .add(&[person(
            "late",
            "uid=late,ou=people,dc=example,dc=test",
            vec![],
        )])
        .await;
    let first = read_directory(&config(&slapd), Some(READER_PASSWORD))
        .await
        .unwrap();
    let mark = first.high_water.clone().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    slapd
        .replace(
            "uid=bob,ou=people,dc=example,dc=test",
            "mail",
            &["bob@example.test"],
        )
        .await;
    slapd.delete("uid=erin,ou=people,dc=example,dc=test").await;
    let changes = read_changes(
        &config(&slapd),
        Some(READER_PASSWORD),
        &mark,
        &mut EntryIndex::default(),
        true,
    )
    .await
    .unwrap();
    let mut changed: Vec<&str> = changes
        .changed_users
        .iter()
        .map(|user| user.user_name.as_str())
        .collect();
    changed.sort_unstable();
    // The mark's own second is read again (late), and what changed after it (bob).
    assert_eq!(changed, ["bob", "late"]);
    let bob = changes
        .changed_users
        .iter()
        .find(|user| user.user_name == "bob")
        .unwrap();
    assert_eq!(bob.emails, ["bob@example.test"]);
    assert!(changes.changed_groups.is_empty(), "{changes:?}");
    let present_users = &changes.present.as_ref().unwrap().users;
    assert!(!present_users.contains(&id_of(&first, "erin")));
    assert!(present_users.contains(&id_of(&first, "alice")));
    assert_eq!(
        changes.present.as_ref().map(|present| present.groups.len()),
        Some(3)
    );
    assert!(changes.high_water.as_deref() > Some(mark.as_str()));
    // A mark that is not one is refused before anything is sent.
    let refused = read_changes(
        &config(&slapd),
        Some(READER_PASSWORD),
        "*)(uid=*",
        &mut EntryIndex::default(),
        true,
    )
    .await;
    assert!(
        matches!(refused, Err(DirectoryError::Config(_))),
        "{refused:?}"
    );
}

/// What changed since `mark`, with `index` kept between reads.
async fn read_since(
    slapd: &Slapd,
    mark: &str,
    index: &mut EntryIndex,
    list: bool,
) -> scimitar_ldap::DirectoryChanges {
    read_changes(&config(slapd), Some(READER_PASSWORD), mark, index, list)
        .await
        .unwrap()
}

/// An index kept between incremental reads resolves a changed group's members without a
/// listing of every entry: members known from the listing, and a new user read as changed in
/// the same read. A changed group naming a DN the index does not know makes the read list
/// again (once: the DN is then known to be outside), and asking to list always lists.
#[tokio::test]
async fn an_index_kept_between_reads_lists_every_entry_only_when_it_must() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    seed(&slapd).await;
    let first = read_directory(&config(&slapd), Some(READER_PASSWORD))
        .await
        .unwrap();
    let mut index = EntryIndex::default();
    let mark = first.high_water.clone().unwrap();
    // Never listed: the first read lists whatever it is asked.
    let changes = read_since(&slapd, &mark, &mut index, false).await;
    assert!(changes.present.is_some());
    assert!(index.is_listed());
    let listed = index.len();

    // frank joins eng, and a new user joins ops in the same second: no listing.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    slapd
        .add(&[person(
            "newbie",
            "uid=newbie,ou=people,dc=example,dc=test",
            vec![],
        )])
        .await;
    slapd
        .replace(
            "cn=eng,ou=groups,dc=example,dc=test",
            "member",
            &[
                "uid=alice,ou=people,dc=example,dc=test",
                "uid=bob,ou=people,dc=example,dc=test",
                "uid=frank,ou=people,dc=example,dc=test",
                "cn=platform,ou=groups,dc=example,dc=test",
            ],
        )
        .await;
    slapd
        .replace(
            "cn=ops,ou=groups,dc=example,dc=test",
            "uniqueMember",
            &[
                "uid=dave,ou=people,dc=example,dc=test",
                "UID=Newbie, ou=people,dc=example,dc=test",
            ],
        )
        .await;
    let changes = read_since(&slapd, &mark, &mut index, false).await;
    assert_eq!(changes.present, None, "no listing: {changes:?}");
    // Read again from the first mark, platform names the outsider, which the listing found
    // outside: left out, and no reason to list.
    assert_eq!(changes.unresolved_members, 1, "{changes:?}");
    let group = |name: &str| {
        changes
            .changed_groups
            .iter()
            .find(|group| group.display_name == name)
            .unwrap()
            .clone()
    };
    let newbie = changes
        .changed_users
        .iter()
        .find(|user| user.user_name == "newbie")
        .unwrap()
        .id
        .clone();
    let mut eng = group("eng").member_users;
    eng.sort_unstable();
    let mut expected = vec![
        id_of(&first, "alice"),
        id_of(&first, "bob"),
        id_of(&first, "frank"),
    ];
    expected.sort_unstable();
    assert_eq!(eng, expected);
    assert_eq!(group("eng").member_groups.len(), 1);
    let mut ops = group("ops").member_users;
    ops.sort_unstable();
    let mut expected = vec![id_of(&first, "dave"), newbie];
    expected.sort_unstable();
    assert_eq!(ops, expected);
    assert_eq!(index.len(), listed + 1);

    // A DN the index does not know: the read lists, and the DN is then known to be outside.
    let mark = changes.high_water.clone().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    slapd
        .replace(
            "cn=ops,ou=groups,dc=example,dc=test",
            "uniqueMember",
            &[
                "uid=dave,ou=people,dc=example,dc=test",
                "uid=ghost,ou=elsewhere,dc=example,dc=test",
            ],
        )
        .await;
    let changes = read_since(&slapd, &mark, &mut index, false).await;
    assert!(changes.present.is_some(), "listed: {changes:?}");
    assert_eq!(changes.unresolved_members, 1);
    let again = read_since(&slapd, &mark, &mut index, false).await;
    assert_eq!(again.present, None, "known outside: {again:?}");
    assert_eq!(again.unresolved_members, 1);
    // Asked to list, it lists.
    let listed = read_since(&slapd, &mark, &mut index, true).await;
    assert!(listed.present.is_some());
}

/// The group graph holds every group as a full read resolves it, and names the groups whose
/// members include a DN that is no entry in scope: the outsider (another OU) from the start,
/// and a deleted user's, which this directory (no referential integrity) leaves in its group.
#[tokio::test]
async fn the_group_graph_holds_every_group_and_those_naming_what_is_not_in_scope() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    seed(&slapd).await;
    let by_id = |mut groups: Vec<DirectoryGroup>| {
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        groups
    };
    let directory = read_directory(&config(&slapd), Some(READER_PASSWORD))
        .await
        .unwrap();
    let unlisted = EntryIndex::default();
    let graph = read_group_graph(&config(&slapd), Some(READER_PASSWORD), &unlisted)
        .await
        .unwrap();
    assert_eq!(by_id(graph.groups), by_id(directory.groups.clone()));
    let group_id = |name: &str| {
        directory
            .groups
            .iter()
            .find(|group| group.display_name == name)
            .unwrap()
            .id
            .clone()
    };
    assert_eq!(graph.naming_unresolved, [group_id("platform")]);

    slapd.delete("uid=bob,ou=people,dc=example,dc=test").await;
    let graph = read_group_graph(&config(&slapd), Some(READER_PASSWORD), &unlisted)
        .await
        .unwrap();
    // The users of an index a listing just filled are the directory's own.
    let mut listed = EntryIndex::default();
    let mark = directory.high_water.clone().unwrap();
    read_changes(
        &config(&slapd),
        Some(READER_PASSWORD),
        &mark,
        &mut listed,
        true,
    )
    .await
    .unwrap();
    assert!(listed.is_listed());
    let from_index = read_group_graph(&config(&slapd), Some(READER_PASSWORD), &listed)
        .await
        .unwrap();
    assert_eq!(by_id(from_index.groups), by_id(graph.groups.clone()));
    assert_eq!(from_index.naming_unresolved.len(), 2);
    let mut naming_unresolved = graph.naming_unresolved.clone();
    naming_unresolved.sort_unstable();
    let mut expected = vec![group_id("platform"), group_id("eng")];
    expected.sort_unstable();
    assert_eq!(naming_unresolved, expected);
    let eng = graph
        .groups
        .iter()
        .find(|group| group.display_name == "eng")
        .unwrap();
    assert_eq!(eng.member_users, [id_of(&directory, "alice")]);
    assert_eq!(eng.member_groups, [group_id("platform")]);
}

#[tokio::test]
async fn a_wrong_password_and_an_absent_server_are_told_apart() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let refused = read_directory(&config(&slapd), Some("wrong")).await;
    match refused {
        Err(DirectoryError::BindRefused { bind_dn, reason }) => {
            assert_eq!(bind_dn, READER_DN);
            assert!(!reason.contains("wrong"), "the password is never repeated");
        }
        other => panic!("{other:?}"),
    }
    let mut absent = config(&slapd);
    absent.url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ldap://{}", listener.local_addr().unwrap())
    };
    let unreachable = read_directory(&absent, Some(READER_PASSWORD)).await;
    assert!(
        matches!(unreachable, Err(DirectoryError::Unreachable { .. })),
        "{unreachable:?}"
    );
}

/// A directory whose certificate a private CA issued, read over `ldaps://` and over StartTLS
/// trusting that CA alone: the same users and groups as in clear text.
#[tokio::test]
async fn a_directory_is_read_over_ldaps_and_starttls_trusting_a_private_ca() {
    let Some(ca) = PrivateCa::new() else {
        return;
    };
    let Some(slapd) = Slapd::start_with_tls(&ca).await else {
        return;
    };
    seed(&slapd).await;
    let names = |directory: &Directory| {
        let mut names: Vec<String> = directory
            .users
            .iter()
            .map(|user| user.user_name.clone())
            .collect();
        names.sort_unstable();
        names
    };
    let plain = read_directory(&config(&slapd), Some(READER_PASSWORD))
        .await
        .unwrap();
    let mut ldaps = config(&slapd);
    ldaps.url = slapd.ldaps_url.clone().unwrap();
    ldaps.ca_file = Some(ca.ca_file.clone());
    let over_ldaps = read_directory(&ldaps, Some(READER_PASSWORD)).await.unwrap();
    assert_eq!(names(&over_ldaps), names(&plain));
    assert_eq!(over_ldaps.groups.len(), 3);
    let mut starttls = config(&slapd);
    starttls.starttls = true;
    starttls.ca_file = Some(ca.ca_file.clone());
    let over_starttls = read_directory(&starttls, Some(READER_PASSWORD))
        .await
        .unwrap();
    assert_eq!(names(&over_starttls), names(&plain));
}

/// A certificate from a CA the client was not told to trust is refused, by name, both when
/// another private CA is given and with the system's trust store; and nothing is read.
#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_with_a_clear_error() {
    let (Some(ca), Some(other_ca)) = (PrivateCa::new(), PrivateCa::new()) else {
        return;
    };
    let Some(slapd) = Slapd::start_with_tls(&ca).await else {
        return;
    };
    let mut ldaps = config(&slapd);
    ldaps.url = slapd.ldaps_url.clone().unwrap();
    let mut starttls = config(&slapd);
    starttls.starttls = true;
    for (what, mut config) in [("ldaps", ldaps), ("starttls", starttls)] {
        for trusted in [Some(other_ca.ca_file.clone()), None] {
            config.ca_file = trusted.clone();
            let refused = read_directory(&config, Some(READER_PASSWORD)).await;
            match refused {
                Err(error @ DirectoryError::UntrustedCertificate { .. }) => {
                    let message = error.to_string();
                    assert!(message.contains("does not trust"), "{message}");
                    assert!(message.contains("ca_file"), "{message}");
                    assert!(message.contains("UnknownIssuer"), "{message}");
                }
                other => panic!("{what} trusting {trusted:?}: {other:?}"),
            }
        }
    }
}

/// A directory that demands a client certificate (`TLSVerifyClient demand`): read over
/// `ldaps://` and StartTLS presenting one its CA issued; refused, saying so, without one and
/// with one another CA issued; and a key file that cannot be read stops the read before
/// anything is sent.
#[tokio::test]
async fn a_directory_demanding_client_certificates_is_read_with_the_right_one_only() {
    let (Some(ca), Some(other_ca)) = (PrivateCa::new(), PrivateCa::new()) else {
        return;
    };
    let Some(slapd) = Slapd::start_demanding_client_certificates(&ca).await else {
        return;
    };
    seed(&slapd).await;
    let (certificate, key) = ca.client_certificate("sync-job");
    let (other_certificate, other_key) = other_ca.client_certificate("stranger");
    let mut ldaps = config(&slapd);
    ldaps.url = slapd.ldaps_url.clone().unwrap();
    ldaps.ca_file = Some(ca.ca_file.clone());
    let mut starttls = config(&slapd);
    starttls.starttls = true;
    starttls.ca_file = Some(ca.ca_file.clone());
    for (what, config) in [("ldaps", ldaps), ("starttls", starttls)] {
        let mut presenting = config.clone();
        presenting.client_cert_file = Some(certificate.clone());
        presenting.client_key_file = Some(key.clone());
        let read = read_directory(&presenting, Some(READER_PASSWORD))
            .await
            .unwrap_or_else(|error| panic!("{what} with the right certificate: {error}"));
        assert_eq!(read.groups.len(), 3, "{what}");

        let mut strangers = config.clone();
        strangers.client_cert_file = Some(other_certificate.clone());
        strangers.client_key_file = Some(other_key.clone());
        for (which, config) in [("none", config.clone()), ("another CA's", strangers)] {
            match read_directory(&config, Some(READER_PASSWORD)).await {
                Err(error @ DirectoryError::ClientCertificateRefused { .. }) => {
                    let message = error.to_string();
                    assert!(message.contains("client_cert_file"), "{message}");
                }
                other => panic!("{what} with {which} certificate: {other:?}"),
            }
        }

        let mut unreadable = presenting.clone();
        unreadable.client_key_file = Some(key.with_file_name("absent.key"));
        match read_directory(&unreadable, Some(READER_PASSWORD)).await {
            Err(DirectoryError::Config(reason)) => {
                assert!(
                    reason.contains("client_key_file") && reason.contains("absent.key"),
                    "{reason}"
                );
            }
            other => panic!("{what} with an unreadable key: {other:?}"),
        }
    }
}
