//! The questions the Permissions and access APIs ask of the engine about workspace objects
//! and entitlements: who may change an ACL, what a PUT or PATCH would leave, and who holds a
//! level or an entitlement through nested groups.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_access::{
    AccessError, AccessModel, AclEntry, AclWrite, Entitlement, EntitlementSet, ObjectType,
    PermissionLevel, Source, WorkspacePermission,
};
use scimitar_domain::{PrincipalId, PrincipalKind, WorkspaceId};

use PermissionLevel::*;

fn id(name: &str) -> PrincipalId {
    PrincipalId::new(name)
}

/// alice in team in analysts; bob alone; root in admins; a job and a folder with a notebook.
fn account() -> AccessModel {
    let mut model = AccessModel::new();
    for user in ["alice", "bob", "carol", "root"] {
        model
            .upsert_principal(&id(user), PrincipalKind::User, user, true)
            .unwrap();
    }
    for group in ["admins", "team", "analysts"] {
        model
            .upsert_principal(&id(group), PrincipalKind::Group, group, true)
            .unwrap();
    }
    model.add_membership(&id("team"), &id("alice")).unwrap();
    model.add_membership(&id("analysts"), &id("team")).unwrap();
    model.add_membership(&id("admins"), &id("root")).unwrap();
    model
        .set_object_acl(
            ObjectType::Jobs,
            "1",
            &[
                AclEntry::new(id("bob"), IsOwner),
                AclEntry::new(id("analysts"), CanView),
            ],
        )
        .unwrap();
    model
        .set_object_acl(
            ObjectType::Directories,
            "d",
            &[AclEntry::new(id("analysts"), CanManage)],
        )
        .unwrap();
    model
        .set_object_parent(ObjectType::Notebooks, "n", Some("d"))
        .unwrap();
    model
}

#[test]
fn admins_owners_and_managers_may_change_an_acl_and_nobody_else() {
    let model = account();
    let may = |who: &str, kind, object: &str| model.can_change_object_acl(&id(who), kind, object);
    assert!(may("root", ObjectType::Jobs, "1").unwrap());
    assert!(
        may("bob", ObjectType::Jobs, "1").unwrap(),
        "IS_OWNER sits below CAN_MANAGE on jobs"
    );
    assert!(!may("alice", ObjectType::Jobs, "1").unwrap());
    assert!(
        may("alice", ObjectType::Notebooks, "n").unwrap(),
        "CAN_MANAGE from the folder"
    );
    assert!(!may("carol", ObjectType::Clusters, "unknown").unwrap());
    assert!(may("root", ObjectType::Clusters, "unknown").unwrap());
    assert!(matches!(
        may("nobody", ObjectType::Jobs, "1"),
        Err(AccessError::UnknownPrincipal { .. })
    ));
}

#[test]
fn planning_an_acl_changes_nothing_and_matches_what_applying_it_does() {
    let mut model = account();
    let entries = [AclEntry::new(id("carol"), IsOwner)];
    let planned = model
        .planned_object_acl(ObjectType::Jobs, "1", &entries, AclWrite::Update)
        .unwrap();
    assert_eq!(
        planned,
        vec![
            AclEntry::new(id("analysts"), CanView),
            AclEntry::new(id("carol"), IsOwner)
        ],
        "the new owner replaces bob"
    );
    assert!(model
        .can_change_object_acl(&id("bob"), ObjectType::Jobs, "1")
        .unwrap());
    let replaced = model
        .planned_object_acl(ObjectType::Jobs, "1", &entries, AclWrite::Replace)
        .unwrap();
    assert_eq!(replaced, vec![AclEntry::new(id("carol"), IsOwner)]);
    model
        .update_object_acl(ObjectType::Jobs, "1", &entries)
        .unwrap();
    let applied: Vec<_> = model
        .object_acl(ObjectType::Jobs, "1")
        .into_iter()
        .map(|view| AclEntry::new(view.principal.id, view.level))
        .collect();
    assert_eq!(applied, planned);
    let refused = model.planned_object_acl(
        ObjectType::Jobs,
        "1",
        &[AclEntry::new(id("team"), IsOwner)],
        AclWrite::Update,
    );
    assert!(matches!(refused, Err(AccessError::GroupCannotOwn { .. })));
}

#[test]
fn who_has_an_object_level_expands_nested_groups_and_directories() {
    let mut model = account();
    let names = |holders: Vec<scimitar_access::Holder>| -> Vec<String> {
        holders.into_iter().map(|h| h.principal.name).collect()
    };
    let viewers = model
        .who_has_object_level(ObjectType::Jobs, "1", CanView)
        .unwrap();
    let alice = viewers
        .iter()
        .find(|h| h.principal.name == "alice")
        .unwrap();
    let chain: Vec<&str> = alice.via.chain.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(chain, ["alice", "team", "analysts"]);
    assert_eq!(names(viewers), ["alice", "bob", "root"]);
    assert_eq!(
        names(
            model
                .who_has_object_level(ObjectType::Jobs, "1", CanManage)
                .unwrap()
        ),
        ["root"]
    );
    let editors = model
        .who_has_object_level(ObjectType::Notebooks, "n", CanEdit)
        .unwrap();
    assert_eq!(names(editors.clone()), ["alice", "root"]);
    assert!(editors.iter().any(|h| matches!(
        &h.via.source,
        Source::ObjectAcl { object, .. } if object.object_id == "d"
    )));
    assert!(matches!(
        model.who_has_object_level(ObjectType::Jobs, "1", CanAttachTo),
        Err(AccessError::LevelNotApplicable { .. })
    ));
    model
        .upsert_principal(&id("alice"), PrincipalKind::User, "alice", false)
        .unwrap();
    assert_eq!(
        names(
            model
                .who_has_object_level(ObjectType::Jobs, "1", CanView)
                .unwrap()
        ),
        ["bob", "root"]
    );
}

#[test]
fn who_has_an_entitlement_counts_groups_and_admins() {
    let mut model = account();
    let (workspace, other) = (WorkspaceId::new("ws"), WorkspaceId::new("other"));
    let mut set = EntitlementSet::EMPTY;
    set.insert(Entitlement::WorkspaceAccess);
    model
        .set_entitlements(&workspace, &id("analysts"), set)
        .unwrap();
    model
        .assign(&workspace, &id("analysts"), Some(WorkspacePermission::User))
        .unwrap();
    model
        .assign(&other, &id("analysts"), Some(WorkspacePermission::User))
        .unwrap();
    let holders = model.who_has_entitlement(&workspace, Entitlement::WorkspaceAccess);
    let names: Vec<&str> = holders.iter().map(|h| h.principal.name.as_str()).collect();
    assert_eq!(names, ["alice", "root"]);
    assert_eq!(holders[1].via.source, Source::WorkspaceAdmin);
    // The same group in another workspace holds nothing there; admins hold everything.
    let elsewhere: Vec<_> = model
        .who_has_entitlement(&other, Entitlement::WorkspaceAccess)
        .into_iter()
        .map(|h| h.principal.name)
        .collect();
    assert_eq!(elsewhere, ["root"]);
    // A workspace's ADMIN holds every entitlement there.
    model
        .assign(&workspace, &id("bob"), Some(WorkspacePermission::Admin))
        .unwrap();
    let sql: Vec<_> = model
        .who_has_entitlement(&workspace, Entitlement::DatabricksSqlAccess)
        .into_iter()
        .map(|h| h.principal.name)
        .collect();
    assert_eq!(sql, ["bob", "root"]);
}
