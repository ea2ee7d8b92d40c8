//! An LDAP directory as a source: what `scimitar-ldap` reads, as the planner's identities.
//! Users keep the directory's stable id (`entryUUID`, `objectGUID`) as their source id, so a
//! rename or a move in the directory is an attribute change at the target, never a delete and
//! a create; groups list their member users and member groups, so nesting reaches the planner
//! whole and is mirrored or flattened there like any source's.

use crate::model::{Identity, Kind, Snapshot};
use crate::{SyncError, SyncResult};
use scimitar_ldap::{read_directory, Directory, DirectoryConfig};

/// Reads the directory and turns it into a snapshot, with the directory's high-water mark
/// (the job's watermark, from which `crate::ldap_incremental` reads what changed next).
pub async fn read(
    config: &DirectoryConfig,
    password: Option<&str>,
) -> SyncResult<(Snapshot, Option<String>)> {
    let directory = read_directory(config, password)
        .await
        .map_err(|error| SyncError::Source(error.to_string()))?;
    if directory.unresolved_members > 0 || directory.skipped_users > 0 {
        tracing::info!(
            unresolved_members = directory.unresolved_members,
            skipped_users = directory.skipped_users,
            "the directory named members outside the scope, or users without a user name; \
             they are left out"
        );
    }
    Ok((snapshot_of(&directory), directory.high_water))
}

/// The identities of a directory read: users with `userName`, `displayName`, `name` and
/// their first e-mail address as the primary one, inactive when the directory's disabled
/// filter matched them; groups with their `displayName` and direct members.
pub fn snapshot_of(directory: &Directory) -> Snapshot {
    let mut identities = Vec::with_capacity(directory.users.len() + directory.groups.len());
    for user in &directory.users {
        let mut identity =
            Identity::new(Kind::User, &user.id).with("userName", user.user_name.as_str());
        for (path, value) in [
            ("displayName", &user.display_name),
            ("name.givenName", &user.given_name),
            ("name.familyName", &user.family_name),
        ] {
            if let Some(value) = value {
                identity = identity.with(path, value.as_str());
            }
        }
        if let Some(email) = user.emails.first() {
            identity = identity.with("emails", email.as_str());
        }
        if !user.active {
            identity = identity.inactive();
        }
        identities.push(identity);
    }
    for group in &directory.groups {
        identities.push(
            Identity::new(Kind::Group, &group.id)
                .with("displayName", group.display_name.as_str())
                .with_members(
                    group
                        .member_users
                        .iter()
                        .chain(&group.member_groups)
                        .cloned(),
                ),
        );
    }
    Snapshot::of(identities)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use scimitar_ldap::{DirectoryGroup, DirectoryUser};

    #[test]
    fn users_and_nested_groups_become_identities() {
        let user = |id: &str, name: &str, active: bool| DirectoryUser {
            id: id.into(),
            dn: format!("uid={name},ou=people,dc=x"),
            user_name: name.into(),
            display_name: Some(name.to_uppercase()),
            given_name: None,
            family_name: Some("Tester".into()),
            emails: vec![format!("{name}@x.test"), format!("{name}.alias@x.test")],
            active,
        };
        let directory = Directory {
            users: vec![user("u1", "ada", true), user("u2", "bob", false)],
            groups: vec![
                DirectoryGroup {
                    id: "g1".into(),
                    dn: "cn=platform,dc=x".into(),
                    display_name: "platform".into(),
                    member_users: vec!["u1".into()],
                    member_groups: vec![],
                },
                DirectoryGroup {
                    id: "g2".into(),
                    dn: "cn=eng,dc=x".into(),
                    display_name: "eng".into(),
                    member_users: vec!["u2".into()],
                    member_groups: vec!["g1".into()],
                },
            ],
            ..Directory::default()
        };
        let snapshot = snapshot_of(&directory);
        let found = snapshot.by_key();
        let ada = found[&(Kind::User, "u1")];
        assert_eq!(ada.text("userName"), Some("ada"));
        assert_eq!(ada.text("displayName"), Some("ADA"));
        assert_eq!(ada.text("name.familyName"), Some("Tester"));
        assert_eq!(ada.text("name.givenName"), None);
        assert_eq!(ada.text("emails"), Some("ada@x.test"));
        assert_eq!(ada.active, Some(true));
        assert_eq!(found[&(Kind::User, "u2")].active, Some(false));
        let eng = found[&(Kind::Group, "g2")];
        assert_eq!(eng.text("displayName"), Some("eng"));
        assert_eq!(eng.members, ["u2", "g1"]);
    }
}
