//! Incremental runs into a target that flattens groups: what a changed group changes is the
//! transitive membership of every group above it, so those groups are read too (found at the
//! source by `members.value eq`), and with them every group beneath them, whose members make
//! up what they hold. The partial planner then recomputes their flattened members from a read
//! that holds all of it (`plan::plan_partial`, which leaves a flattened group alone when a
//! nested group is missing from the read).

use crate::model::{Identity, JobState, Kind};
use crate::scim::{HttpFailure, ScimEndpoint};
use std::collections::{BTreeSet, HashSet};

/// Levels of nesting followed up (to ancestors) and down (to their nested groups): deeper
/// than this, the read would approach a full one, and the caller runs in full instead.
const MAX_LEVELS: usize = 16;

/// Member ids per `members.value eq ... or ...` filter: short enough for a URL (and for a
/// service's limit on a filter's size), few enough requests for a wide change.
const IDS_PER_FILTER: usize = 40;

/// Adds to `read` (what changed at the source, and the members it names) the groups that hold
/// a group in it, transitively, and every group nested under those, each with its members,
/// and the users and service principals they hold that no target has mapped (new to the job).
/// `Ok(false)` when the nesting is deeper than [`MAX_LEVELS`]: the caller runs in full.
pub async fn add_ancestors_and_subtrees(
    source: &ScimEndpoint,
    kinds: &[Kind],
    read: &mut Vec<Identity>,
    states: &[&JobState],
) -> Result<bool, HttpFailure> {
    let mut held: HashSet<String> = read.iter().map(|found| found.id.clone()).collect();

    // Up: the groups whose members name a group of the read, then theirs.
    let mut frontier: Vec<String> = read
        .iter()
        .filter(|found| found.kind == Kind::Group)
        .map(|group| group.id.clone())
        .collect();
    let mut levels = 0;
    while !frontier.is_empty() {
        levels += 1;
        if levels > MAX_LEVELS {
            return Ok(false);
        }
        let mut next = Vec::new();
        for ids in frontier.chunks(IDS_PER_FILTER) {
            for group in source.read_matching(Kind::Group, &holding_any(ids)).await? {
                if held.insert(group.id.clone()) {
                    next.push(group.id.clone());
                    read.push(group);
                }
            }
        }
        frontier = next;
    }

    // Down: every group nested under a group of the read. A member id that is no group (a
    // user, a service principal) is found so by the 404 and not asked again.
    let mapped_as_member = |id: &str| {
        states.iter().any(|state| {
            [Kind::User, Kind::ServicePrincipal]
                .into_iter()
                .any(|kind| state.mappings.contains_key(&(kind, id.to_string())))
        })
    };
    let mut not_groups: BTreeSet<String> = BTreeSet::new();
    levels = 0;
    loop {
        let wanted: Vec<String> = read
            .iter()
            .filter(|found| found.kind == Kind::Group)
            .flat_map(|group| group.members.iter())
            .filter(|id| {
                !held.contains(id.as_str())
                    && !not_groups.contains(id.as_str())
                    && !mapped_as_member(id)
            })
            .cloned()
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        if wanted.is_empty() {
            break;
        }
        levels += 1;
        if levels > MAX_LEVELS {
            return Ok(false);
        }
        let found = source.read_ids(Kind::Group, &wanted).await?;
        let found_ids: HashSet<String> = found.iter().map(|group| group.id.clone()).collect();
        not_groups.extend(wanted.into_iter().filter(|id| !found_ids.contains(id)));
        for group in found {
            held.insert(group.id.clone());
            read.push(group);
        }
    }

    // The users and service principals among those that no target has mapped: new to the
    // job, to be created and added.
    let mut left: Vec<String> = not_groups.into_iter().collect();
    for kind in kinds.iter().filter(|kind| **kind != Kind::Group) {
        if left.is_empty() {
            break;
        }
        let found = match source.read_ids(*kind, &left).await {
            Ok(found) => found,
            // A service without `/ServicePrincipals` has none to give.
            Err(failure) if *kind == Kind::ServicePrincipal && failure.status == Some(404) => {
                Vec::new()
            }
            Err(failure) => return Err(failure),
        };
        let found_ids: HashSet<String> = found.iter().map(|each| each.id.clone()).collect();
        left.retain(|id| !found_ids.contains(id));
        read.extend(found);
    }
    Ok(true)
}

/// `members.value eq "a" or members.value eq "b" ...`: the groups that hold any of `ids`.
fn holding_any(ids: &[String]) -> String {
    ids.iter()
        .map(|id| {
            format!(
                "members.value eq \"{}\"",
                id.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_asks_for_the_groups_holding_any_of_the_ids_quoted() {
        assert_eq!(
            holding_any(&["1".into(), "a\"b".into()]),
            "members.value eq \"1\" or members.value eq \"a\\\"b\""
        );
        let parsed = scimitar_scim::parse_filter(&holding_any(&["1".into(), "a\"b".into()]));
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
