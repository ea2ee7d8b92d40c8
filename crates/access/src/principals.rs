//! Principals interned to dense indices, the group graph over them, and the walks the engine
//! makes over it: a principal's groups (upwards) and a group's members (downwards).
//!
//! Hot data (status, direct parents, direct members, entitlements) lives in parallel vectors
//! indexed by the principal's slot, apart from the cold names, so a walk touches as few cache
//! lines as possible.

use std::collections::HashMap;

use scimitar_domain::{PrincipalId, PrincipalKind};

use crate::entitlement::EntitlementSet;
use crate::error::AccessError;
use crate::explain::PrincipalRef;
use crate::MAX_NESTING_DEPTH;

/// Marks "no node" in the `via` positions of an [`Ancestry`] and in predecessor arrays.
pub(crate) const NONE: u32 = u32::MAX;

/// The display name of the built-in group whose members are workspace admins.
pub(crate) const ADMINS_GROUP_NAME: &str = "admins";

/// What a principal holds, recorded on the principal so that `what` and deletion do not scan
/// every securable and object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holding {
    /// A grant entry on this securable.
    Grant(u32),
    /// Ownership of this securable.
    Owns(u32),
    /// An ACL entry on this workspace object.
    Acl(u32),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    pub(crate) kind: PrincipalKind,
    /// False once removed; the slot is never reused, so securables owned by a removed
    /// principal keep naming it (as Databricks shows a deleted owner) and grant nothing.
    pub(crate) alive: bool,
    pub(crate) active: bool,
}

impl Status {
    fn can_hold_access(self) -> bool {
        self.alive && self.active
    }
}

#[derive(Debug, Clone)]
struct Record {
    id: PrincipalId,
    name: String,
}

/// Every principal of one access model and the group graph between them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Principals {
    index: HashMap<PrincipalId, u32>,
    status: Vec<Status>,
    /// Direct groups of each principal. Small for almost everyone, and what checks walk.
    parents: Vec<Vec<u32>>,
    /// Direct members of each group (empty for users and service principals); what `who`
    /// walks.
    members: Vec<Vec<u32>>,
    entitlements: Vec<EntitlementSet>,
    records: Vec<Record>,
    holdings: Vec<Vec<Holding>>,
    /// The slot of the group named `admins`, if there is one.
    admins: Option<u32>,
}

/// A principal and the groups it is in, transitively, found breadth-first so that each group
/// is reached by a shortest membership chain, which is the one explanations show.
#[derive(Debug, Clone)]
pub(crate) struct Ancestry {
    /// The principal first, then its groups; each with the position it was reached from.
    nodes: Vec<(u32, u32)>,
    /// `(slot, position in nodes)` sorted by slot, for lookups in `O(log n)`.
    sorted: Vec<(u32, u32)>,
}

impl Ancestry {
    /// The position of `slot` in the walk, if the principal is `slot` or is inside it.
    pub(crate) fn position(&self, slot: u32) -> Option<u32> {
        self.sorted
            .binary_search_by_key(&slot, |(candidate, _)| *candidate)
            .ok()
            .map(|found| self.sorted[found].1)
    }

    pub(crate) fn contains(&self, slot: u32) -> bool {
        self.position(slot).is_some()
    }

    /// The slots from the principal up to the node at `position`, both included.
    pub(crate) fn chain(&self, position: u32) -> Vec<u32> {
        let mut chain = Vec::new();
        let mut at = position;
        while let Some((slot, via)) = self.nodes.get(at as usize) {
            chain.push(*slot);
            at = *via;
        }
        chain.reverse();
        chain
    }

    /// The walk's nodes in breadth-first order: the principal, then nearer groups first.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .map(|(position, (slot, _))| (*slot, position as u32))
    }

    /// Whether the node at `position` is a direct group of the principal.
    pub(crate) fn is_direct(&self, position: u32) -> bool {
        self.nodes
            .get(position as usize)
            .is_some_and(|(_, via)| *via == 0)
    }
}

impl Principals {
    pub(crate) fn slot(&self, id: &PrincipalId) -> Result<u32, AccessError> {
        self.index
            .get(id)
            .copied()
            .ok_or_else(|| AccessError::UnknownPrincipal {
                principal: id.clone(),
            })
    }

    pub(crate) fn len(&self) -> usize {
        self.status.len()
    }

    pub(crate) fn status(&self, slot: u32) -> Status {
        self.status[slot as usize]
    }

    pub(crate) fn id(&self, slot: u32) -> &PrincipalId {
        &self.records[slot as usize].id
    }

    pub(crate) fn reference(&self, slot: u32) -> PrincipalRef {
        let record = &self.records[slot as usize];
        PrincipalRef {
            id: record.id.clone(),
            kind: self.status[slot as usize].kind,
            name: record.name.clone(),
        }
    }

    pub(crate) fn references(&self, slots: &[u32]) -> Vec<PrincipalRef> {
        slots.iter().map(|slot| self.reference(*slot)).collect()
    }

    pub(crate) fn admins(&self) -> Option<u32> {
        self.admins
    }

    pub(crate) fn members(&self, slot: u32) -> &[u32] {
        &self.members[slot as usize]
    }

    pub(crate) fn entitlements(&self, slot: u32) -> EntitlementSet {
        self.entitlements[slot as usize]
    }

    pub(crate) fn set_entitlements(&mut self, slot: u32, set: EntitlementSet) {
        self.entitlements[slot as usize] = set;
    }

    pub(crate) fn holdings(&self, slot: u32) -> &[Holding] {
        &self.holdings[slot as usize]
    }

    pub(crate) fn add_holding(&mut self, slot: u32, holding: Holding) {
        let list = &mut self.holdings[slot as usize];
        if !list.contains(&holding) {
            list.push(holding);
        }
    }

    pub(crate) fn remove_holding(&mut self, slot: u32, holding: Holding) {
        let list = &mut self.holdings[slot as usize];
        if let Some(position) = list.iter().position(|held| *held == holding) {
            list.swap_remove(position);
        }
    }

    pub(crate) fn take_holdings(&mut self, slot: u32) -> Vec<Holding> {
        std::mem::take(&mut self.holdings[slot as usize])
    }

    /// Creates the principal or updates its name and active flag. A principal's kind never
    /// changes, as SCIM ids are per resource type.
    pub(crate) fn upsert(
        &mut self,
        id: &PrincipalId,
        kind: PrincipalKind,
        name: &str,
        active: bool,
    ) -> Result<u32, AccessError> {
        let slot = match self.index.get(id) {
            Some(slot) => {
                let status = &mut self.status[*slot as usize];
                if status.kind != kind {
                    return Err(AccessError::PrincipalKindChanged {
                        principal: id.clone(),
                        was: status.kind,
                        now: kind,
                    });
                }
                status.active = active;
                self.records[*slot as usize].name = name.to_string();
                *slot
            }
            None => {
                let slot = u32::try_from(self.status.len())
                    .ok()
                    .filter(|slot| *slot != NONE)
                    .ok_or(AccessError::CapacityExceeded { what: "principals" })?;
                self.index.insert(id.clone(), slot);
                self.status.push(Status {
                    kind,
                    alive: true,
                    active,
                });
                self.parents.push(Vec::new());
                self.members.push(Vec::new());
                self.entitlements.push(EntitlementSet::EMPTY);
                self.records.push(Record {
                    id: id.clone(),
                    name: name.to_string(),
                });
                self.holdings.push(Vec::new());
                slot
            }
        };
        if kind == PrincipalKind::Group {
            if name == ADMINS_GROUP_NAME {
                self.admins = Some(slot);
            } else if self.admins == Some(slot) {
                self.admins = None;
            }
        }
        Ok(slot)
    }

    /// Removes the principal from the graph; the caller has already dropped its grants.
    pub(crate) fn remove(&mut self, slot: u32) {
        let index = slot as usize;
        for parent in std::mem::take(&mut self.parents[index]) {
            remove_value(&mut self.members[parent as usize], slot);
        }
        for member in std::mem::take(&mut self.members[index]) {
            remove_value(&mut self.parents[member as usize], slot);
        }
        self.entitlements[index] = EntitlementSet::EMPTY;
        self.status[index].alive = false;
        self.status[index].active = false;
        let id = self.records[index].id.clone();
        self.index.remove(&id);
        if self.admins == Some(slot) {
            self.admins = None;
        }
    }

    /// Adds `member` to `group`. Returns false if it was already a direct member.
    pub(crate) fn add_membership(&mut self, group: u32, member: u32) -> Result<bool, AccessError> {
        if self.status(group).kind != PrincipalKind::Group {
            return Err(AccessError::NotAGroup {
                principal: self.id(group).clone(),
            });
        }
        if self.parents[member as usize].contains(&group) {
            return Ok(false);
        }
        if self.status(member).kind == PrincipalKind::Group {
            if self.admins == Some(group) {
                return Err(AccessError::GroupInAdmins {
                    group: self.id(member).clone(),
                });
            }
            // `member` would be inside `group`; if `group` is already inside `member` (or is
            // it), the new edge closes a cycle.
            if group == member || self.is_structurally_inside(group, member) {
                return Err(AccessError::MembershipCycle {
                    group: self.id(group).clone(),
                    member: self.id(member).clone(),
                });
            }
            let depth = self.groups_above(group) + 1 + self.group_height(member);
            if depth > MAX_NESTING_DEPTH {
                return Err(AccessError::NestingTooDeep {
                    group: self.id(group).clone(),
                    member: self.id(member).clone(),
                    depth,
                    max: MAX_NESTING_DEPTH,
                });
            }
        }
        self.parents[member as usize].push(group);
        self.members[group as usize].push(member);
        Ok(true)
    }

    /// Removes `member` from `group`. Returns false if it was not a direct member.
    pub(crate) fn remove_membership(&mut self, group: u32, member: u32) -> bool {
        let removed = remove_value(&mut self.parents[member as usize], group);
        if removed {
            remove_value(&mut self.members[group as usize], member);
        }
        removed
    }

    /// Whether `inner` is `outer`'s member through any chain, whatever the active flags.
    fn is_structurally_inside(&self, inner: u32, outer: u32) -> bool {
        self.walk_up(inner, true).contains(outer)
    }

    /// The longest chain of groups strictly above `group`.
    fn groups_above(&self, group: u32) -> usize {
        let mut memo = HashMap::new();
        self.groups_above_memo(group, &mut memo)
    }

    fn groups_above_memo(&self, group: u32, memo: &mut HashMap<u32, usize>) -> usize {
        if let Some(known) = memo.get(&group) {
            return *known;
        }
        // Recursion depth is at most MAX_NESTING_DEPTH: every edge was admitted under the bound.
        let above = self.parents[group as usize]
            .iter()
            .map(|parent| 1 + self.groups_above_memo(*parent, memo))
            .max()
            .unwrap_or(0);
        memo.insert(group, above);
        above
    }

    /// The number of groups on the longest chain from `group` (counted) down through its
    /// member groups.
    fn group_height(&self, group: u32) -> usize {
        let mut memo = HashMap::new();
        self.group_height_memo(group, &mut memo)
    }

    fn group_height_memo(&self, group: u32, memo: &mut HashMap<u32, usize>) -> usize {
        if let Some(known) = memo.get(&group) {
            return *known;
        }
        let below = self.members[group as usize]
            .iter()
            .filter(|member| self.status[**member as usize].kind == PrincipalKind::Group)
            .map(|member| self.group_height_memo(*member, memo))
            .max()
            .unwrap_or(0);
        memo.insert(group, below + 1);
        below + 1
    }

    /// The principal's groups, transitively, as access sees them: an inactive group passes
    /// nothing to its members, so the walk does not go through it.
    pub(crate) fn ancestry(&self, slot: u32) -> Ancestry {
        self.walk_up(slot, false)
    }

    /// The walk behind [`Principals::ancestry`]; `structural` also goes through inactive groups,
    /// for cycle checks and the SCIM `groups` attribute.
    pub(crate) fn walk_up(&self, slot: u32, structural: bool) -> Ancestry {
        let mut nodes = vec![(slot, NONE)];
        let mut sorted = vec![(slot, 0u32)];
        let mut next = 0usize;
        while let Some((node, _)) = nodes.get(next).copied() {
            for parent in &self.parents[node as usize] {
                let status = self.status[*parent as usize];
                if !structural && !status.can_hold_access() {
                    continue;
                }
                if let Err(insert_at) =
                    sorted.binary_search_by_key(parent, |(candidate, _)| *candidate)
                {
                    let position = nodes.len() as u32;
                    sorted.insert(insert_at, (*parent, position));
                    nodes.push((*parent, next as u32));
                }
            }
            next += 1;
        }
        Ancestry { nodes, sorted }
    }

    /// Whether the principal exists, is active and may therefore hold access at all.
    pub(crate) fn can_hold_access(&self, slot: u32) -> bool {
        self.status(slot).can_hold_access()
    }
}

fn remove_value(list: &mut Vec<u32>, value: u32) -> bool {
    match list.iter().position(|candidate| *candidate == value) {
        Some(position) => {
            list.swap_remove(position);
            true
        }
        None => false,
    }
}
