//! Incremental runs from an LDAP directory into a target that flattens groups: a changed
//! group changes what every group above it holds, transitively, so those groups join the read,
//! and with them every group nested under them, whose members make up what they hold. The
//! partial planner then flattens them again from a read that holds all of it
//! ([`crate::plan::plan_partial_settled`], which leaves a flattened group alone when a group
//! nested in it is missing from the read). What a SCIM source finds by filters level by level
//! ([`crate::ancestors`]) a directory gives at once: every group with its members, one paged
//! search ([`scimitar_ldap::read_group_graph`]), read only for a run that needs it.
//!
//! What changes a flattened group's members:
//!
//! - a group whose members changed (it is among the changed entries): its ancestors;
//! - a nested group deleted or moved out of scope: a directory with referential integrity
//!   (OpenLDAP's `refint`, Active Directory) takes it out of the groups that held it, which
//!   then changed; one without leaves its DN there, unchanged, so when a managed group is gone
//!   the groups naming a DN that is no entry in scope are taken as changed too.
//!
//! A user's changed attributes change no membership, so a run where no group changed and none
//! is gone reads nothing more. Users are not read: a member the job maps is named by its
//! mapping, and a member of the added groups that the job has not mapped makes the run full
//! (`ldap_incremental`'s check of every group in the read), as for a changed group's members.

use crate::model::{JobState, Kind};
use crate::{SyncError, SyncResult};
use scimitar_ldap::{
    read_group_graph, DirectoryChanges, DirectoryConfig, DirectoryGroup, EntryIndex,
};
use std::collections::{HashMap, HashSet};

/// Adds to `changes.changed_groups` (what the run reads whole) the groups a target that
/// flattens needs planned again, each as the group graph holds it: the ancestors of every
/// changed group (and, when a managed group is gone, of every group naming a DN no longer in
/// scope) where some target manages them, and every group nested under those or under a
/// changed group. `states` are the job's targets' states before the run. Reads nothing when
/// no group changed and none is gone.
pub async fn add_ancestors_and_subtrees(
    directory: &DirectoryConfig,
    password: Option<&str>,
    changes: &mut DirectoryChanges,
    states: &[&JobState],
    index: &EntryIndex,
) -> SyncResult<()> {
    // Gone groups are known only from a read that listed every entry.
    let present: Option<HashSet<&str>> = changes
        .present
        .as_ref()
        .map(|present| present.groups.iter().map(String::as_str).collect());
    let group_gone = present.is_some_and(|present| {
        states.iter().any(|state| {
            state.mappings.iter().any(|((kind, id), mapping)| {
                *kind == Kind::Group
                    && mapping.deprovisioned_at.is_none()
                    && !present.contains(id.as_str())
            })
        })
    });
    if changes.changed_groups.is_empty() && !group_gone {
        return Ok(());
    }
    let graph = read_group_graph(directory, password, index)
        .await
        .map_err(|error| SyncError::Source(error.to_string()))?;
    let changed: Vec<&str> = changes
        .changed_groups
        .iter()
        .map(|group| group.id.as_str())
        .collect();
    let holding_gone: &[String] = if group_gone {
        &graph.naming_unresolved
    } else {
        &[]
    };
    let managed = |id: &str| {
        states.iter().any(|state| {
            state
                .mappings
                .get(&(Kind::Group, id.to_string()))
                .is_some_and(|mapping| mapping.deprovisioned_at.is_none())
        })
    };
    let wanted: HashSet<String> = groups_to_replan(&graph.groups, &changed, holding_gone, managed)
        .into_iter()
        .map(str::to_string)
        .collect();
    let before = changes.changed_groups.len();
    // The graph's copy replaces a changed group's: one read's groups agree on their members.
    // A changed group the graph lacks (deleted between the two reads) keeps its own; the next
    // poll finds it gone.
    changes
        .changed_groups
        .retain(|group| !wanted.contains(group.id.as_str()));
    changes.changed_groups.extend(
        graph
            .groups
            .into_iter()
            .filter(|group| wanted.contains(group.id.as_str())),
    );
    tracing::info!(
        changed_groups = before,
        group_gone,
        read_for_flattening = changes.changed_groups.len().saturating_sub(before),
        "a target flattens groups: read the changed groups' ancestors and what they hold"
    );
    Ok(())
}

/// The groups to plan again, by id: `changed` and those of `holding_gone` (groups naming a
/// member no longer in scope), with their ancestors, where `managed` (a group some target
/// manages: the others are out of scope, and no plan touches them); and every group nested
/// under any of those, managed or not, since a flattened group holds what they hold. Cycles
/// (which a directory allows) end where a group was already reached.
fn groups_to_replan<'g>(
    groups: &'g [DirectoryGroup],
    changed: &[&str],
    holding_gone: &[String],
    managed: impl Fn(&str) -> bool,
) -> HashSet<&'g str> {
    let by_id: HashMap<&str, &DirectoryGroup> = groups
        .iter()
        .map(|group| (group.id.as_str(), group))
        .collect();
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for group in groups {
        for member in &group.member_groups {
            parents
                .entry(member.as_str())
                .or_default()
                .push(group.id.as_str());
        }
    }

    // Up, through every group (an unmanaged one may sit between two managed ones).
    let mut reached: HashSet<&str> = HashSet::new();
    let mut pending: Vec<&str> = changed
        .iter()
        .copied()
        .chain(holding_gone.iter().map(String::as_str))
        .filter_map(|id| by_id.get_key_value(id).map(|(id, _)| *id))
        .collect();
    while let Some(id) = pending.pop() {
        if reached.insert(id) {
            pending.extend(parents.get(id).into_iter().flatten().copied());
        }
    }
    let changed: HashSet<&str> = changed.iter().copied().collect();
    let mut wanted: HashSet<&str> = reached
        .into_iter()
        .filter(|id| changed.contains(id) || managed(id))
        .collect();

    // Down, from each of those.
    let mut pending: Vec<&str> = wanted.iter().copied().collect();
    while let Some(id) = pending.pop() {
        for member in by_id
            .get(id)
            .into_iter()
            .flat_map(|group| group.member_groups.iter())
        {
            if let Some((member, _)) = by_id.get_key_value(member.as_str()) {
                if wanted.insert(member) {
                    pending.push(member);
                }
            }
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn group(id: &str, member_groups: &[&str]) -> DirectoryGroup {
        DirectoryGroup {
            id: id.into(),
            dn: format!("cn={id},ou=groups,dc=x"),
            display_name: id.into(),
            member_users: vec![format!("user-of-{id}")],
            member_groups: member_groups.iter().map(|id| id.to_string()).collect(),
        }
    }

    fn sorted(found: HashSet<&str>) -> Vec<&str> {
        let mut found: Vec<&str> = found.into_iter().collect();
        found.sort_unstable();
        found
    }

    /// `all` holds `eng` and `sales`; `eng` holds `platform` and `data`; `platform` holds
    /// `core`; `ops` stands apart.
    fn tree() -> Vec<DirectoryGroup> {
        vec![
            group("all", &["eng", "sales"]),
            group("eng", &["platform", "data"]),
            group("platform", &["core"]),
            group("data", &[]),
            group("core", &[]),
            group("sales", &[]),
            group("ops", &[]),
        ]
    }

    #[test]
    fn a_changed_nested_group_brings_its_ancestors_and_everything_under_them() {
        let groups = tree();
        let found = groups_to_replan(&groups, &["platform"], &[], |_| true);
        assert_eq!(
            sorted(found),
            ["all", "core", "data", "eng", "platform", "sales"]
        );
    }

    #[test]
    fn a_changed_top_group_brings_only_what_is_under_it() {
        let groups = tree();
        let found = groups_to_replan(&groups, &["eng"], &[], |_| true);
        assert_eq!(
            sorted(found),
            ["all", "core", "data", "eng", "platform", "sales"]
        );
        let found = groups_to_replan(&groups, &["ops"], &[], |_| true);
        assert_eq!(sorted(found), ["ops"]);
        let found = groups_to_replan(&groups, &["core"], &[], |id| id != "all");
        assert_eq!(sorted(found), ["core", "data", "eng", "platform"]);
    }

    #[test]
    fn ancestors_no_target_manages_are_passed_through_but_not_read() {
        let groups = tree();
        // `eng` is unmanaged (a built-in group, say) between `all` and `platform`: `all` is
        // still reached, and `eng` is read as a group nested under it.
        let found = groups_to_replan(&groups, &["platform"], &[], |id| id != "eng");
        assert_eq!(
            sorted(found),
            ["all", "core", "data", "eng", "platform", "sales"]
        );
        // Nothing above `platform` is managed: only it and what it holds.
        let found = groups_to_replan(&groups, &["platform"], &[], |_| false);
        assert_eq!(sorted(found), ["core", "platform"]);
    }

    #[test]
    fn groups_naming_a_gone_member_count_as_changed_where_managed() {
        let groups = tree();
        let found = groups_to_replan(&groups, &[], &["data".to_string()], |_| true);
        assert_eq!(
            sorted(found),
            ["all", "core", "data", "eng", "platform", "sales"]
        );
        let found = groups_to_replan(&groups, &[], &["ops".to_string()], |id| id != "ops");
        assert!(found.is_empty());
    }

    #[test]
    fn a_cycle_ends_where_a_group_was_already_reached() {
        let groups = vec![group("a", &["b"]), group("b", &["a"]), group("c", &[])];
        let found = groups_to_replan(&groups, &["a"], &[], |_| true);
        assert_eq!(sorted(found), ["a", "b"]);
    }

    #[test]
    fn a_changed_group_the_graph_lacks_brings_nothing() {
        let groups = tree();
        assert!(groups_to_replan(&groups, &["deleted-since"], &[], |_| true).is_empty());
    }
}
