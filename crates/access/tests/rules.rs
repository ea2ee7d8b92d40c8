//! The engine's rules as a table of cases, each named after what it shows. Every case starts
//! from the same small account (below), makes its changes, and states what must follow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_access::{
    AccessError, AccessModel, AclEntry, Entitlement, EntitlementSet, Missing, ObjectType,
    PermissionLevel, Privilege, PrivilegeSet, SecurableType, Source, WorkspacePermission,
};
use scimitar_domain::{PrincipalId, PrincipalKind, WorkspaceId};

use Privilege::*;
use SecurableType::{Catalog, Metastore, Schema, Table, View};

const TABLE: (SecurableType, &str) = (Table, "main.sales.orders");
const SCHEMA: (SecurableType, &str) = (Schema, "main.sales");
const CATALOG: (SecurableType, &str) = (Catalog, "main");

fn id(name: &str) -> PrincipalId {
    PrincipalId::new(name)
}

/// The workspaces entitlement cases use; none is in the starting account, each case assigns
/// what it needs.
fn ws(name: &str) -> WorkspaceId {
    WorkspaceId::new(name)
}

fn entitle(
    model: &mut AccessModel,
    workspace: &str,
    principal: &str,
    entitlements: &[Entitlement],
) -> Result<(), AccessError> {
    let set = entitlements.iter().copied().collect();
    model.set_entitlements(&ws(workspace), &id(principal), set)
}

fn assign(
    model: &mut AccessModel,
    workspace: &str,
    principal: &str,
    permission: WorkspacePermission,
) -> Result<(), AccessError> {
    model.assign(&ws(workspace), &id(principal), Some(permission))
}

/// The account every case starts from:
/// - users alice, bob, carol, dave; service principal `app-1`; metastore admin `meta`;
/// - groups `admins`, `team-a`, `analysts`, `org`, with alice and `app-1` in team-a, team-a
///   in analysts;
/// - metastore `ms` owned by meta; catalog `main`, schema `main.sales` and table
///   `main.sales.orders` owned by carol; catalog `other` owned by bob.
fn account() -> AccessModel {
    let mut model = AccessModel::new();
    for user in ["alice", "bob", "carol", "dave", "meta"] {
        model
            .upsert_principal(&id(user), PrincipalKind::User, user, true)
            .unwrap();
    }
    model
        .upsert_principal(&id("app-1"), PrincipalKind::ServicePrincipal, "app-1", true)
        .unwrap();
    for group in ["admins", "team-a", "analysts", "org"] {
        model
            .upsert_principal(&id(group), PrincipalKind::Group, group, true)
            .unwrap();
    }
    join(&mut model, "team-a", "alice");
    join(&mut model, "team-a", "app-1");
    join(&mut model, "analysts", "team-a");
    model
        .create_securable(Metastore, "ms", &id("meta"))
        .unwrap();
    model
        .create_securable(Catalog, "main", &id("carol"))
        .unwrap();
    model
        .create_securable(Schema, "main.sales", &id("carol"))
        .unwrap();
    model
        .create_securable(Table, "main.sales.orders", &id("carol"))
        .unwrap();
    model
        .create_securable(Catalog, "other", &id("bob"))
        .unwrap();
    model
}

fn join(model: &mut AccessModel, group: &str, member: &str) {
    model.add_membership(&id(group), &id(member)).unwrap();
}

fn grant(
    model: &mut AccessModel,
    on: (SecurableType, &str),
    to: &str,
    privileges: &[Privilege],
) -> Result<(), AccessError> {
    model.grant(on.0, on.1, &id(to), privileges)
}

/// Grants the `USE` privileges needed to reach tables in `main.sales`.
fn grant_use(model: &mut AccessModel, to: &str) {
    grant(model, CATALOG, to, &[UseCatalog]).unwrap();
    grant(model, SCHEMA, to, &[UseSchema]).unwrap();
}

/// What must hold after a case's changes.
enum Then {
    /// The check passes, and some reason for the privilege itself has this chain.
    Allowed {
        who: &'static str,
        privilege: Privilege,
        on: (SecurableType, &'static str),
        chain: &'static [&'static str],
    },
    /// The check fails, missing exactly these privileges.
    Denied {
        who: &'static str,
        privilege: Privilege,
        on: (SecurableType, &'static str),
        missing: &'static [(Privilege, SecurableType, &'static str)],
    },
    /// A change in `given` was refused with a message containing this text.
    Refused(&'static str),
    /// Anything else, stated as code.
    Holds(fn(&AccessModel)),
}

struct Case {
    name: &'static str,
    given: fn(&mut AccessModel) -> Result<(), AccessError>,
    then: Then,
}

const CASES: &[Case] = &[
    // ----- inheritance down the catalog tree ---------------------------------------------------
    Case {
        name: "a grant on a catalog reaches the tables in its schemas",
        given: |m| grant(m, CATALOG, "analysts", &[UseCatalog, UseSchema, Select]),
        then: Then::Allowed {
            who: "alice",
            privilege: Select,
            on: TABLE,
            chain: &["alice", "team-a", "analysts"],
        },
    },
    Case {
        name: "a grant on a schema reaches a table created after it",
        given: |m| {
            grant(m, CATALOG, "analysts", &[UseCatalog])?;
            grant(m, SCHEMA, "analysts", &[UseSchema, Select])?;
            m.create_securable(Table, "main.sales.later", &id("carol"))
        },
        then: Then::Allowed {
            who: "alice",
            privilege: Select,
            on: (Table, "main.sales.later"),
            chain: &["alice", "team-a", "analysts"],
        },
    },
    Case {
        name: "metastore ownership is not inherited by catalogs or tables",
        given: |_| Ok(()),
        then: Then::Denied {
            who: "meta",
            privilege: Select,
            on: TABLE,
            missing: &[
                (Select, Table, "main.sales.orders"),
                (UseSchema, Schema, "main.sales"),
                (UseCatalog, Catalog, "main"),
            ],
        },
    },
    Case {
        name: "metastore grants are not inherited by catalogs",
        given: |m| grant(m, (Metastore, "ms"), "alice", &[CreateCatalog]),
        then: Then::Denied {
            who: "alice",
            privilege: UseCatalog,
            on: CATALOG,
            missing: &[(UseCatalog, Catalog, "main")],
        },
    },
    // ----- ownership --------------------------------------------------------------------------
    Case {
        name: "the owner holds every privilege including manage",
        given: |_| Ok(()),
        then: Then::Holds(|m| {
            for privilege in [Select, Modify, Manage, ApplyTag] {
                let decision = m.check(&id("carol"), privilege, TABLE.0, TABLE.1).unwrap();
                assert!(decision.allowed, "{privilege}: {decision}");
            }
            let decision = m.check(&id("carol"), Select, TABLE.0, TABLE.1).unwrap();
            assert!(decision.reasons.iter().any(|reason| matches!(
                &reason.via.source,
                Source::Ownership { of } if of.full_name == "main.sales.orders"
            )));
        }),
    },
    Case {
        name: "a table owner still needs use on its parents",
        given: |m| m.set_owner(TABLE.0, TABLE.1, &id("bob")),
        then: Then::Denied {
            who: "bob",
            privilege: Select,
            on: TABLE,
            missing: &[
                (UseSchema, Schema, "main.sales"),
                (UseCatalog, Catalog, "main"),
            ],
        },
    },
    Case {
        name: "the owner of a parent catalog may grant on its children",
        given: |m| m.set_owner(TABLE.0, TABLE.1, &id("bob")),
        then: Then::Holds(|m| {
            let carol = m.can_manage(&id("carol"), TABLE.0, TABLE.1).unwrap();
            assert!(carol.allowed);
            assert!(carol.reasons.iter().any(|reason| matches!(
                &reason.via.source,
                Source::Ownership { of } if of.full_name == "main"
            )));
            assert!(m.can_manage(&id("bob"), TABLE.0, TABLE.1).unwrap().allowed);
            assert!(m.can_manage(&id("meta"), TABLE.0, TABLE.1).unwrap().allowed);
            let alice = m.can_manage(&id("alice"), TABLE.0, TABLE.1).unwrap();
            assert!(!alice.allowed);
        }),
    },
    Case {
        name: "manage lets a non owner grant once it has the use privileges",
        given: |m| {
            grant(m, TABLE, "analysts", &[Manage])?;
            grant_use(m, "analysts");
            Ok(())
        },
        then: Then::Holds(|m| {
            assert!(
                m.can_manage(&id("alice"), TABLE.0, TABLE.1)
                    .unwrap()
                    .allowed
            );
            assert!(!m.can_manage(&id("dave"), TABLE.0, TABLE.1).unwrap().allowed);
        }),
    },
    // ----- the USE requirements ----------------------------------------------------------------
    Case {
        name: "reading a table without use schema is denied naming use schema",
        given: |m| {
            grant(m, TABLE, "analysts", &[Select])?;
            grant(m, CATALOG, "analysts", &[UseCatalog])
        },
        then: Then::Denied {
            who: "alice",
            privilege: Select,
            on: TABLE,
            missing: &[(UseSchema, Schema, "main.sales")],
        },
    },
    Case {
        name: "modify needs the use privileges as well",
        given: |m| grant(m, TABLE, "alice", &[Modify]),
        then: Then::Denied {
            who: "alice",
            privilege: Modify,
            on: TABLE,
            missing: &[
                (UseSchema, Schema, "main.sales"),
                (UseCatalog, Catalog, "main"),
            ],
        },
    },
    Case {
        name: "browse needs no use privilege",
        given: |m| grant(m, CATALOG, "alice", &[Browse]),
        then: Then::Allowed {
            who: "alice",
            privilege: Browse,
            on: CATALOG,
            chain: &["alice"],
        },
    },
    // ----- ALL PRIVILEGES ------------------------------------------------------------------------
    Case {
        name: "all privileges on a catalog stands for use and select below it",
        given: |m| grant(m, CATALOG, "analysts", &[AllPrivileges]),
        then: Then::Allowed {
            who: "alice",
            privilege: Select,
            on: TABLE,
            chain: &["alice", "team-a", "analysts"],
        },
    },
    Case {
        name: "all privileges does not include manage",
        given: |m| {
            grant(m, TABLE, "alice", &[AllPrivileges])?;
            grant_use(m, "alice");
            Ok(())
        },
        then: Then::Denied {
            who: "alice",
            privilege: Manage,
            on: TABLE,
            missing: &[(Manage, Table, "main.sales.orders")],
        },
    },
    Case {
        name: "revoking all privileges removes the privileges it implied",
        given: |m| {
            grant(m, TABLE, "alice", &[Select, AllPrivileges, Manage])?;
            m.revoke(TABLE.0, TABLE.1, &id("alice"), &[AllPrivileges])
        },
        then: Then::Holds(|m| {
            let grants = m.grants_on(TABLE.0, TABLE.1).unwrap();
            let alice = grants
                .iter()
                .find(|(principal, _)| principal.name == "alice")
                .unwrap();
            assert_eq!(alice.1, PrivilegeSet::of(&[Manage]));
        }),
    },
    Case {
        name: "revoking what was never granted succeeds",
        given: |m| m.revoke(TABLE.0, TABLE.1, &id("dave"), &[Select]),
        then: Then::Holds(|m| assert!(m.grants_on(TABLE.0, TABLE.1).unwrap().is_empty())),
    },
    Case {
        name: "a privilege that does not apply to the type is refused",
        given: |m| grant(m, TABLE, "alice", &[UseCatalog]),
        then: Then::Refused("privilege USE_CATALOG does not apply to a TABLE"),
    },
    Case {
        name: "all privileges cannot be granted on the metastore",
        given: |m| grant(m, (Metastore, "ms"), "alice", &[AllPrivileges]),
        then: Then::Refused("ALL_PRIVILEGES does not apply to a METASTORE"),
    },
    // ----- nested groups -------------------------------------------------------------------------
    Case {
        name: "nested groups three levels deep pass a grant down",
        given: |m| {
            m.add_membership(&id("org"), &id("analysts"))?;
            grant(m, CATALOG, "org", &[AllPrivileges])
        },
        then: Then::Allowed {
            who: "alice",
            privilege: Select,
            on: TABLE,
            chain: &["alice", "team-a", "analysts", "org"],
        },
    },
    Case {
        name: "a membership cycle is refused",
        given: |m| m.add_membership(&id("team-a"), &id("analysts")).map(|_| ()),
        then: Then::Refused("would make a cycle"),
    },
    Case {
        name: "a group cannot contain itself",
        given: |m| m.add_membership(&id("org"), &id("org")).map(|_| ()),
        then: Then::Refused("would make a cycle"),
    },
    Case {
        name: "nesting beyond the depth bound is refused",
        given: |m| {
            // g1 in g2 in ... in g32: a chain of exactly 32 groups is allowed.
            for level in 1..=33 {
                let name = format!("g{level}");
                m.upsert_principal(&id(&name), PrincipalKind::Group, &name, true)?;
            }
            for level in 1..32 {
                m.add_membership(&id(&format!("g{}", level + 1)), &id(&format!("g{level}")))?;
            }
            m.add_membership(&id("g1"), &id("alice"))?;
            m.add_membership(&id("g33"), &id("g32")).map(|_| ())
        },
        then: Then::Refused("would nest groups 33 deep; at most 32"),
    },
    Case {
        name: "removing a membership is seen by the next check",
        given: |m| {
            grant(m, CATALOG, "analysts", &[AllPrivileges])?;
            m.remove_membership(&id("analysts"), &id("team-a"))
                .map(|_| ())
        },
        then: Then::Denied {
            who: "alice",
            privilege: Select,
            on: TABLE,
            missing: &[
                (Select, Table, "main.sales.orders"),
                (UseSchema, Schema, "main.sales"),
                (UseCatalog, Catalog, "main"),
            ],
        },
    },
    Case {
        name: "groups of lists direct and indirect memberships",
        given: |m| m.add_membership(&id("org"), &id("analysts")).map(|_| ()),
        then: Then::Holds(|m| {
            let groups: Vec<(String, bool)> = m
                .groups_of(&id("alice"))
                .unwrap()
                .into_iter()
                .map(|membership| (membership.group.name, membership.direct))
                .collect();
            assert_eq!(
                groups,
                [
                    ("team-a".to_string(), true),
                    ("analysts".to_string(), false),
                    ("org".to_string(), false)
                ]
            );
        }),
    },
    // ----- deactivation and deletion ----------------------------------------------------------
    Case {
        name: "deactivation removes access at the next check",
        given: |m| {
            grant(m, CATALOG, "analysts", &[AllPrivileges])?;
            m.upsert_principal(&id("alice"), PrincipalKind::User, "alice", false)
        },
        then: Then::Holds(|m| {
            let decision = m.check(&id("alice"), Select, TABLE.0, TABLE.1).unwrap();
            assert!(!decision.allowed);
            assert!(
                matches!(&decision.missing[..], [Missing::ActivePrincipal(p)] if p.name == "alice")
            );
            assert!(!m.allows(&id("alice"), Select, TABLE.0, TABLE.1).unwrap());
            assert!(m.what(&ws("ws"), &id("alice")).unwrap().is_empty());
            // Reactivation restores it: deactivation removes nothing but the access.
            let mut m = m.clone();
            m.upsert_principal(&id("alice"), PrincipalKind::User, "alice", true)
                .unwrap();
            assert!(m.allows(&id("alice"), Select, TABLE.0, TABLE.1).unwrap());
        }),
    },
    Case {
        name: "a deactivated group passes nothing to its members",
        given: |m| {
            grant(m, CATALOG, "analysts", &[AllPrivileges])?;
            m.upsert_principal(&id("team-a"), PrincipalKind::Group, "team-a", false)
        },
        then: Then::Holds(|m| {
            assert!(!m.allows(&id("alice"), Select, TABLE.0, TABLE.1).unwrap());
            // Only carol, who owns the catalog, is left.
            let names: Vec<String> = m
                .who(Select, TABLE.0, TABLE.1)
                .unwrap()
                .into_iter()
                .map(|holder| holder.principal.name)
                .collect();
            assert_eq!(names, ["carol"]);
        }),
    },
    Case {
        name: "deletion removes access and grants",
        given: |m| {
            grant(m, CATALOG, "alice", &[AllPrivileges])?;
            m.remove_principal(&id("alice"))
        },
        then: Then::Holds(|m| {
            assert!(matches!(
                m.check(&id("alice"), Select, TABLE.0, TABLE.1),
                Err(AccessError::UnknownPrincipal { .. })
            ));
            assert!(m.grants_on(CATALOG.0, CATALOG.1).unwrap().is_empty());
            assert!(m.groups_of(&id("app-1")).unwrap().len() == 2);
            // The same id coming back is a new principal with nothing.
            let mut m = m.clone();
            m.upsert_principal(&id("alice"), PrincipalKind::User, "alice", true)
                .unwrap();
            assert!(!m.allows(&id("alice"), Select, TABLE.0, TABLE.1).unwrap());
            assert!(m.groups_of(&id("alice")).unwrap().is_empty());
        }),
    },
    Case {
        name: "a deleted owner keeps ownership of record but holds nothing",
        given: |m| {
            m.set_owner(CATALOG.0, CATALOG.1, &id("dave"))?;
            m.remove_principal(&id("dave"))
        },
        then: Then::Holds(|m| {
            assert_eq!(m.owner(CATALOG.0, CATALOG.1).unwrap().name, "dave");
            assert!(m.who(UseCatalog, CATALOG.0, CATALOG.1).unwrap().is_empty());
        }),
    },
    // ----- securables ----------------------------------------------------------------------------
    Case {
        name: "a table needs its schema to exist",
        given: |m| m.create_securable(Table, "main.nowhere.t", &id("carol")),
        then: Then::Refused("its SCHEMA `main.nowhere` does not exist"),
    },
    Case {
        name: "a view cannot take a table's name",
        given: |m| m.create_securable(View, "main.sales.orders", &id("carol")),
        then: Then::Refused("already exists"),
    },
    Case {
        name: "dropping a catalog drops its children and their grants",
        given: |m| {
            grant(m, TABLE, "alice", &[Select])?;
            m.drop_securable(Catalog, "MAIN")?;
            m.create_securable(Catalog, "main", &id("carol"))?;
            m.create_securable(Schema, "main.sales", &id("carol"))?;
            m.create_securable(Table, "main.sales.orders", &id("carol"))
        },
        then: Then::Holds(|m| {
            assert!(m.grants_on(TABLE.0, TABLE.1).unwrap().is_empty());
            assert!(!m
                .what(&ws("ws"), &id("alice"))
                .unwrap()
                .iter()
                .any(|via| matches!(via.source, Source::Grant { .. })));
        }),
    },
    Case {
        name: "a renamed catalog keeps its children, owners and grants under the new name",
        given: |m| {
            grant(m, CATALOG, "alice", &[UseCatalog])?;
            grant(m, SCHEMA, "alice", &[UseSchema])?;
            grant(m, TABLE, "alice", &[Select])?;
            m.rename_securable(Catalog, "main", "prod")
        },
        then: Then::Holds(|m| {
            assert!(m.owner(Catalog, "main").is_err());
            assert_eq!(m.owner(Table, "prod.sales.orders").unwrap().name, "carol");
            assert!(m
                .allows(&id("alice"), Select, Table, "prod.sales.orders")
                .unwrap());
            assert!(m
                .allows(&id("alice"), Select, Table, "main.sales.orders")
                .is_err());
        }),
    },
    Case {
        name: "a rename onto a taken name is refused",
        given: |m| m.rename_securable(Catalog, "main", "other"),
        then: Then::Refused("already exists"),
    },
    Case {
        name: "a rename keeps a schema in its catalog",
        given: |m| m.rename_securable(Schema, "main.sales", "other.sales"),
        then: Then::Refused("keeps the object in its catalog"),
    },
    Case {
        name: "a view addressed as a table is found as the view",
        given: |m| m.create_securable(View, "main.sales.recent", &id("carol")),
        then: Then::Holds(|m| {
            assert_eq!(m.addressed_type(Table, "main.sales.recent"), View);
            assert_eq!(m.addressed_type(Table, "main.sales.orders"), Table);
            assert_eq!(
                m.addressed_type(View, "main.sales.orders"),
                View,
                "only tables address views"
            );
            assert_eq!(m.addressed_type(Table, "main.sales.nothing"), Table);
        }),
    },
    Case {
        name: "names are case insensitive",
        given: |m| grant(m, (Table, "Main.Sales.Orders"), "alice", &[Select]),
        then: Then::Holds(|m| {
            assert_eq!(m.grants_on(Table, "MAIN.sales.ORDERS").unwrap().len(), 1);
        }),
    },
    // ----- who, what, effective privileges -----------------------------------------------------
    Case {
        name: "who expands nested groups to active users and service principals",
        given: |m| {
            m.add_membership(&id("org"), &id("analysts"))?;
            m.add_membership(&id("analysts"), &id("bob"))?;
            m.add_membership(&id("team-a"), &id("dave"))?;
            m.upsert_principal(&id("dave"), PrincipalKind::User, "dave", false)?;
            grant(m, CATALOG, "org", &[AllPrivileges])
        },
        then: Then::Holds(|m| {
            let who: Vec<(String, Vec<String>)> = m
                .who(Select, TABLE.0, TABLE.1)
                .unwrap()
                .into_iter()
                .map(|holder| {
                    let chain = holder.via.chain.iter().map(|p| p.name.clone()).collect();
                    (holder.principal.name, chain)
                })
                .collect();
            let expect = |name: &str, chain: &[&str]| {
                (
                    name.to_string(),
                    chain.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                )
            };
            // carol owns the catalog; meta owns only the metastore and is not listed.
            assert_eq!(
                who,
                [
                    expect("alice", &["alice", "team-a", "analysts", "org"]),
                    expect("bob", &["bob", "analysts", "org"]),
                    expect("carol", &["carol"]),
                    expect("app-1", &["app-1", "team-a", "analysts", "org"]),
                ]
            );
        }),
    },
    Case {
        name: "who applies the use requirements",
        given: |m| {
            grant(m, TABLE, "analysts", &[Select])?;
            m.add_membership(&id("analysts"), &id("bob"))?;
            grant_use(m, "team-a");
            m.set_owner(CATALOG.0, CATALOG.1, &id("meta"))?;
            m.set_owner(SCHEMA.0, SCHEMA.1, &id("meta"))?;
            m.set_owner(TABLE.0, TABLE.1, &id("meta"))
        },
        then: Then::Holds(|m| {
            let names: Vec<String> = m
                .who(Select, TABLE.0, TABLE.1)
                .unwrap()
                .into_iter()
                .map(|holder| holder.principal.name)
                .collect();
            assert_eq!(names, ["alice", "meta", "app-1"]);
        }),
    },
    Case {
        name: "what lists every holding with its chain",
        given: |m| {
            grant(m, SCHEMA, "analysts", &[Select])?;
            assign(m, "ws", "alice", WorkspacePermission::User)?;
            entitle(m, "ws", "team-a", &[Entitlement::WorkspaceAccess])?;
            // Another workspace's entitlement is not held in this one.
            entitle(m, "other", "alice", &[Entitlement::AllowClusterCreate])?;
            m.set_object_acl(
                ObjectType::Jobs,
                "42",
                &[AclEntry::new(id("alice"), PermissionLevel::CanView)],
            )
        },
        then: Then::Holds(|m| {
            let what: Vec<String> = m
                .what(&ws("ws"), &id("alice"))
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(
                what,
                [
                    "alice: CAN_VIEW on jobs/42",
                    "alice -> team-a: entitlement workspace-access",
                    "alice -> team-a -> analysts: SELECT granted on SCHEMA main.sales",
                ]
            );
        }),
    },
    Case {
        name: "effective privileges say where each is inherited from",
        given: |m| {
            grant(m, SCHEMA, "analysts", &[Select])?;
            grant(m, TABLE, "alice", &[Modify])
        },
        then: Then::Holds(|m| {
            let effective: Vec<(Privilege, Option<String>, String)> = m
                .effective_privileges(&id("alice"), TABLE.0, TABLE.1)
                .unwrap()
                .into_iter()
                .map(|e| {
                    let holder = e.via.holder().unwrap().name.clone();
                    (e.privilege, e.inherited_from.map(|s| s.to_string()), holder)
                })
                .collect();
            assert_eq!(
                effective,
                [
                    (Modify, None, "alice".to_string()),
                    (
                        Select,
                        Some("SCHEMA main.sales".to_string()),
                        "analysts".to_string()
                    ),
                ]
            );
        }),
    },
    // ----- entitlements and admins ---------------------------------------------------------------
    Case {
        name: "entitlements are the union of the principal's and its groups'",
        given: |m| {
            assign(m, "ws", "alice", WorkspacePermission::User)?;
            assign(m, "ws", "bob", WorkspacePermission::User)?;
            entitle(m, "ws", "alice", &[Entitlement::WorkspaceConsume])?;
            entitle(m, "ws", "team-a", &[Entitlement::WorkspaceAccess])?;
            entitle(m, "ws", "analysts", &[Entitlement::DatabricksSqlAccess])
        },
        then: Then::Holds(|m| {
            let expected: EntitlementSet = [
                Entitlement::WorkspaceConsume,
                Entitlement::WorkspaceAccess,
                Entitlement::DatabricksSqlAccess,
            ]
            .into_iter()
            .collect();
            assert_eq!(
                m.effective_entitlements(&ws("ws"), &id("alice")).unwrap(),
                expected
            );
            let explained = m.explain_entitlements(&ws("ws"), &id("alice")).unwrap();
            let sql = explained
                .iter()
                .find(|e| e.entitlement == Entitlement::DatabricksSqlAccess)
                .unwrap();
            assert_eq!(
                sql.via[0].to_string(),
                "alice -> team-a -> analysts: entitlement databricks-sql-access"
            );
            assert!(m
                .effective_entitlements(&ws("ws"), &id("bob"))
                .unwrap()
                .is_empty());
        }),
    },
    Case {
        name: "entitlements are held only in the workspace they were given in",
        given: |m| {
            assign(m, "a", "alice", WorkspacePermission::User)?;
            assign(m, "b", "alice", WorkspacePermission::User)?;
            entitle(m, "a", "team-a", &[Entitlement::AllowClusterCreate])?;
            entitle(m, "b", "alice", &[Entitlement::WorkspaceAccess])
        },
        then: Then::Holds(|m| {
            let in_a = m.effective_entitlements(&ws("a"), &id("alice")).unwrap();
            let in_b = m.effective_entitlements(&ws("b"), &id("alice")).unwrap();
            assert_eq!(
                in_a,
                [Entitlement::AllowClusterCreate].into_iter().collect()
            );
            assert_eq!(in_b, [Entitlement::WorkspaceAccess].into_iter().collect());
            let who_in_b: Vec<String> = m
                .who_has_entitlement(&ws("b"), Entitlement::AllowClusterCreate)
                .into_iter()
                .map(|holder| holder.principal.name)
                .collect();
            assert!(who_in_b.is_empty(), "{who_in_b:?}");
        }),
    },
    Case {
        name: "a group's entitlement in a workspace reaches only the members the workspace reaches",
        given: |m| {
            join(m, "org", "carol");
            join(m, "org", "dave");
            assign(m, "ws", "carol", WorkspacePermission::User)?;
            entitle(m, "ws", "org", &[Entitlement::WorkspaceAccess])
        },
        then: Then::Holds(|m| {
            let carol = m.effective_entitlements(&ws("ws"), &id("carol")).unwrap();
            assert!(carol.contains(Entitlement::WorkspaceAccess));
            assert!(m
                .effective_entitlements(&ws("ws"), &id("dave"))
                .unwrap()
                .is_empty());
            assert!(m
                .explain_entitlements(&ws("ws"), &id("dave"))
                .unwrap()
                .is_empty());
            let holders: Vec<String> = m
                .who_has_entitlement(&ws("ws"), Entitlement::WorkspaceAccess)
                .into_iter()
                .map(|holder| holder.principal.name)
                .collect();
            assert_eq!(holders, ["carol"]);
        }),
    },
    Case {
        name:
            "a principal assigned ADMIN in a workspace holds every entitlement there, not elsewhere",
        given: |m| {
            assign(m, "a", "team-a", WorkspacePermission::Admin)?;
            assign(m, "b", "alice", WorkspacePermission::User)
        },
        then: Then::Holds(|m| {
            assert_eq!(
                m.effective_entitlements(&ws("a"), &id("alice")).unwrap(),
                EntitlementSet::all()
            );
            assert!(m
                .effective_entitlements(&ws("b"), &id("alice"))
                .unwrap()
                .is_empty());
            let explained = m.explain_entitlements(&ws("a"), &id("alice")).unwrap();
            assert_eq!(explained.len(), Entitlement::ALL.len());
            assert_eq!(explained[0].via[0].source, Source::WorkspaceAdmin);
            assert_eq!(
                explained[0].via[0].to_string(),
                "alice -> team-a: workspace admin"
            );
            let holders: Vec<String> = m
                .who_has_entitlement(&ws("a"), Entitlement::AllowInstancePoolCreate)
                .into_iter()
                .map(|holder| holder.principal.name)
                .collect();
            assert_eq!(holders, ["alice", "app-1"]);
            let what: Vec<String> = m
                .what(&ws("a"), &id("alice"))
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(what, ["alice -> team-a: workspace admin"]);
        }),
    },
    Case {
        name: "a deleted workspace takes its entitlements along, and only its own",
        given: |m| {
            assign(m, "a", "alice", WorkspacePermission::User)?;
            assign(m, "b", "alice", WorkspacePermission::User)?;
            entitle(m, "a", "alice", &[Entitlement::WorkspaceAccess])?;
            entitle(m, "b", "alice", &[Entitlement::WorkspaceConsume])?;
            m.forget_workspace(&ws("a"));
            // A workspace made again with the same id starts with nothing.
            assign(m, "a", "alice", WorkspacePermission::User)
        },
        then: Then::Holds(|m| {
            assert!(m
                .effective_entitlements(&ws("a"), &id("alice"))
                .unwrap()
                .is_empty());
            assert_eq!(
                m.effective_entitlements(&ws("b"), &id("alice")).unwrap(),
                [Entitlement::WorkspaceConsume].into_iter().collect()
            );
        }),
    },
    Case {
        name: "members of admins are workspace admins with every entitlement",
        given: |m| m.add_membership(&id("admins"), &id("bob")).map(|_| ()),
        then: Then::Holds(|m| {
            assert!(m.is_workspace_admin(&id("bob")).unwrap());
            assert!(!m.is_workspace_admin(&id("alice")).unwrap());
            // In any workspace, assigned there or not.
            assert_eq!(
                m.effective_entitlements(&ws("ws"), &id("bob")).unwrap(),
                EntitlementSet::all()
            );
            let level = m
                .object_permission(&id("bob"), ObjectType::Clusters, "never-seen")
                .unwrap()
                .unwrap();
            assert_eq!(level.level, PermissionLevel::CanManage);
            assert_eq!(level.via[0].source, Source::WorkspaceAdmin);
        }),
    },
    Case {
        name: "a group cannot join admins",
        given: |m| m.add_membership(&id("admins"), &id("team-a")).map(|_| ()),
        then: Then::Refused("cannot be added to `admins`"),
    },
    // ----- workspace objects -----------------------------------------------------------------------
    Case {
        name: "a directory acl reaches the notebooks inside it",
        given: |m| {
            m.set_object_acl(
                ObjectType::Directories,
                "100",
                &[AclEntry::new(id("analysts"), PermissionLevel::CanRun)],
            )?;
            m.set_object_parent(ObjectType::Directories, "101", Some("100"))?;
            m.set_object_parent(ObjectType::Notebooks, "7", Some("101"))
        },
        then: Then::Holds(|m| {
            let level = m
                .object_permission(&id("alice"), ObjectType::Notebooks, "7")
                .unwrap()
                .unwrap();
            assert_eq!(level.level, PermissionLevel::CanRun);
            assert_eq!(
                level.via[0].to_string(),
                "alice -> team-a -> analysts: CAN_RUN on directories/100"
            );
            let acl = m.object_acl(ObjectType::Notebooks, "7");
            assert_eq!(acl.len(), 1);
            assert_eq!(acl[0].inherited_from.as_ref().unwrap().object_id, "100");
            assert!(m
                .object_permission(&id("bob"), ObjectType::Notebooks, "7")
                .unwrap()
                .is_none());
        }),
    },
    Case {
        name: "a directory cannot be put inside itself",
        given: |m| {
            m.set_object_parent(ObjectType::Directories, "2", Some("1"))?;
            m.set_object_parent(ObjectType::Directories, "1", Some("2"))
        },
        then: Then::Refused("is inside 1"),
    },
    Case {
        name: "the highest level wins and implies the lower ones",
        given: |m| {
            m.set_object_acl(
                ObjectType::Notebooks,
                "7",
                &[
                    AclEntry::new(id("alice"), PermissionLevel::CanRead),
                    AclEntry::new(id("team-a"), PermissionLevel::CanEdit),
                ],
            )
        },
        then: Then::Holds(|m| {
            let level = m
                .object_permission(&id("alice"), ObjectType::Notebooks, "7")
                .unwrap()
                .unwrap();
            assert_eq!(level.level, PermissionLevel::CanEdit);
            let notebooks = ObjectType::Notebooks;
            assert!(notebooks.implies(PermissionLevel::CanEdit, PermissionLevel::CanRun));
            assert!(!notebooks.implies(PermissionLevel::CanRun, PermissionLevel::CanEdit));
            let jobs = ObjectType::Jobs;
            assert!(jobs.implies(PermissionLevel::CanManage, PermissionLevel::IsOwner));
            assert!(jobs.implies(PermissionLevel::IsOwner, PermissionLevel::CanManageRun));
            assert!(ObjectType::Warehouses
                .implies(PermissionLevel::IsOwner, PermissionLevel::CanManage));
        }),
    },
    Case {
        name: "a group cannot own a job",
        given: |m| {
            m.set_object_acl(
                ObjectType::Jobs,
                "42",
                &[AclEntry::new(id("team-a"), PermissionLevel::IsOwner)],
            )
        },
        then: Then::Refused("group team-a cannot be IS_OWNER of jobs/42"),
    },
    Case {
        name: "a job has one owner and a new owner replaces the old",
        given: |m| {
            m.set_object_acl(
                ObjectType::Jobs,
                "42",
                &[AclEntry::new(id("alice"), PermissionLevel::IsOwner)],
            )?;
            m.update_object_acl(
                ObjectType::Jobs,
                "42",
                &[AclEntry::new(id("bob"), PermissionLevel::IsOwner)],
            )
        },
        then: Then::Holds(|m| {
            let acl = m.object_acl(ObjectType::Jobs, "42");
            assert_eq!(acl.len(), 1);
            assert_eq!(acl[0].principal.name, "bob");
            let mut m = m.clone();
            let two = m.set_object_acl(
                ObjectType::Jobs,
                "42",
                &[
                    AclEntry::new(id("alice"), PermissionLevel::IsOwner),
                    AclEntry::new(id("bob"), PermissionLevel::IsOwner),
                ],
            );
            assert!(matches!(two, Err(AccessError::SeveralOwners { .. })));
        }),
    },
    Case {
        name: "a level the object type lacks is refused",
        given: |m| {
            m.set_object_acl(
                ObjectType::Clusters,
                "c1",
                &[AclEntry::new(id("alice"), PermissionLevel::CanRun)],
            )
        },
        then: Then::Refused("CAN_RUN does not apply to clusters"),
    },
    Case {
        name: "the admins group keeps can manage",
        given: |m| {
            m.set_object_acl(
                ObjectType::Clusters,
                "c1",
                &[AclEntry::new(id("admins"), PermissionLevel::CanAttachTo)],
            )
        },
        then: Then::Refused("always has CAN_MANAGE"),
    },
];

#[test]
fn every_rule_in_the_table_holds() {
    let mut failures = Vec::new();
    for case in CASES {
        let outcome = std::panic::catch_unwind(|| run(case));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

fn run(case: &Case) {
    let mut model = account();
    let given = (case.given)(&mut model);
    match &case.then {
        Then::Refused(text) => {
            let error = given.expect_err("the change should have been refused");
            assert!(
                error.to_string().contains(text),
                "error `{error}` does not contain `{text}`"
            );
        }
        then => {
            given.expect("the changes should succeed");
            check_then(&model, then);
        }
    }
}

fn check_then(model: &AccessModel, then: &Then) {
    match then {
        Then::Allowed {
            who,
            privilege,
            on,
            chain,
        } => {
            let decision = model.check(&id(who), *privilege, on.0, on.1).unwrap();
            assert!(decision.allowed, "expected allowed, got {decision}");
            assert!(model.allows(&id(who), *privilege, on.0, on.1).unwrap());
            let found = decision.reasons.iter().any(|reason| {
                reason.requirement.privilege == *privilege
                    && reason
                        .via
                        .chain
                        .iter()
                        .map(|p| p.name.as_str())
                        .eq(chain.iter().copied())
            });
            assert!(found, "no reason with chain {chain:?} in {decision}");
        }
        Then::Denied {
            who,
            privilege,
            on,
            missing,
        } => {
            let decision = model.check(&id(who), *privilege, on.0, on.1).unwrap();
            assert!(!decision.allowed, "expected denied, got {decision}");
            assert!(!model.allows(&id(who), *privilege, on.0, on.1).unwrap());
            let got: Vec<(Privilege, SecurableType, String)> = decision
                .missing
                .iter()
                .map(|missing| match missing {
                    Missing::Privilege(requirement) => (
                        requirement.privilege,
                        requirement.securable.securable_type,
                        requirement.securable.full_name.clone(),
                    ),
                    Missing::ActivePrincipal(p) => panic!("unexpected inactive {p}"),
                })
                .collect();
            let want: Vec<(Privilege, SecurableType, String)> = missing
                .iter()
                .map(|(p, t, n)| (*p, *t, n.to_string()))
                .collect();
            assert_eq!(got, want);
        }
        Then::Holds(assertion) => assertion(model),
        Then::Refused(_) => unreachable!("handled by run"),
    }
}

#[test]
fn checking_a_privilege_that_does_not_apply_is_an_error() {
    let model = account();
    let error = model
        .check(&id("alice"), UseCatalog, TABLE.0, TABLE.1)
        .unwrap_err();
    assert!(matches!(error, AccessError::PrivilegeNotApplicable { .. }));
}

#[test]
fn case_names_are_unique() {
    let mut names: Vec<&str> = CASES.iter().map(|case| case.name).collect();
    names.sort_unstable();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count);
}
