//! Principals interned to dense indices, the group graph over them, and the walks the engine
//! makes over it: a principal's groups (upwards) and a group's members (downwards).
//!
//! Hot data (status, direct parents, direct members) lives in parallel vectors
//! indexed by the principal's slot, apart from the cold names, so a walk touches as few cache
//! lines as possible.

use std::collections::HashMap;

use scimitar_domain::{PrincipalId, PrincipalKind};

use crate::closure_arena::ClosureArena;
use crate::error::AccessError;
use crate::explain::{PrincipalRef, PrincipalView};
use crate::hash::{FastMap, NameIndex};
use crate::MAX_NESTING_DEPTH;

/// Marks "no node" in the `via` positions of an [`Ancestry`] and in predecessor arrays.
pub(crate) const NONE: u32 = u32::MAX;

/// The display name of the built-in group whose members are workspace admins.
pub(crate) const ADMINS_GROUP_NAME: &str = "admins";

/// A group with more direct members than this gets a member-to-position index, so that
/// removing one member does not scan the list. Below it a scan (at most this many `u32`s,
/// a few hundred nanoseconds) is cheaper than keeping a map.
const INDEXED_GROUP_SIZE: usize = 1024;

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
    index: NameIndex,
    status: Vec<Status>,
    /// Direct groups of each principal. Small for almost everyone, and what checks walk.
    parents: Vec<Vec<u32>>,
    /// Direct members of each group (empty for users and service principals); what `who`
    /// walks.
    members: Vec<Vec<u32>>,
    /// For groups with more than [`INDEXED_GROUP_SIZE`] direct members: where each member
    /// sits in `members`, so a removal is a lookup and a `swap_remove`.
    member_positions: FastMap<u32, FastMap<u32, u32>>,
    /// For each group: itself and every group access flows to it from, through active groups
    /// only, sorted; empty for an inactive or removed group and for users and service
    /// principals. Derived from `parents` and `status`, and rebuilt for a group and the
    /// groups below it in the same `&mut self` step that changes either (see
    /// [`Principals::refresh_closures`]), so `allows` can read a principal's groups from its
    /// direct groups' closures without walking, and no query can see it stale.
    closures: ClosureArena,
    /// For each user and service principal: every group access flows to it from, which is
    /// the union of its direct groups' closures, with the membership chain to each,
    /// precomputed so that `allows` and `explain` read one run instead of a closure per
    /// direct group and a walk. See [`AccessSets`].
    access_sets: AccessSets,
    /// For each group that has groups among its direct members: those groups. What closure
    /// rebuilds walk, so that a change above a group of a million users does not read the
    /// million.
    member_groups: FastMap<u32, Vec<u32>>,
    records: Vec<Record>,
    holdings: Vec<Vec<Holding>>,
    /// The slot of the group named `admins`, if there is one.
    admins: Option<u32>,
}

/// Users' and service principals' access sets, each stamped with the closure epoch it was
/// computed at. Any change to any group's closure bumps the epoch, which makes every set
/// stale at once in O(1): `allows` then takes the union of the direct groups' closures and
/// `explain` walks the groups, so a stale set is never read. A user's own membership change
/// recomputes its set on the spot (a few closures and a walk inside them, a few
/// microseconds); the other stale sets are recomputed a
/// budget at a time by [`Principals::refresh_access_sets`], which the server calls after it
/// applies changes and on its follower's ticks. A group-in-group change is rare next to
/// users joining and leaving, and recomputing every set below a big group at once would
/// hold the engine for as long as it takes (100,000 users: about 0.1 s).
#[derive(Debug, Clone)]
struct AccessSets {
    runs: ClosureArena,
    epoch: u32,
    /// Slots below this one are fresh at the current epoch (or are not users or service
    /// principals).
    refreshed_below: usize,
}

impl Default for AccessSets {
    fn default() -> Self {
        AccessSets {
            runs: ClosureArena::default(),
            // Never 0: a run pushed without a stamp has 0, and must not pass for fresh.
            epoch: 1,
            refreshed_below: 0,
        }
    }
}

/// A principal and the groups it is in, transitively, found breadth-first so that each group
/// is reached by a shortest membership chain, which is the one explanations show.
///
/// Membership tests go through a small open-addressing table of `(slot, position)` sized to a
/// power of two at least twice the number of nodes, so a test is one multiplication and
/// usually one probe in memory the walk has just written. Checks borrow a per-thread spare
/// through [`Principals::with_ancestry`], so the hot path allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct Ancestry {
    /// The principal first, then its groups; each with the position it was reached from.
    nodes: Vec<(u32, u32)>,
    /// `(slot, position in nodes)`, or `(NONE, _)` for an empty entry.
    table: Vec<(u32, u32)>,
}

/// A principal and the groups access flows to it from, as the grant scans ask about them:
/// the walked [`Ancestry`] or a user's precomputed access set ([`SortedAccessSet`]), both
/// with positions that rebuild membership chains.
pub(crate) trait AccessSet {
    /// The principal the set is about, at position 0.
    fn principal(&self) -> u32;
    /// Where `slot` sits in the set, if it is in it.
    fn position(&self, slot: u32) -> Option<u32>;
    /// False only if `slot` is certainly not in the set; cheap, and never reads memory
    /// beyond the set itself.
    fn may_contain(&self, _slot: u32) -> bool {
        true
    }
    /// How many principals the set holds.
    fn len(&self) -> usize;
    /// Every principal of the set with its position.
    fn nodes(&self) -> impl Iterator<Item = (u32, u32)> + '_;
}

impl AccessSet for Ancestry {
    fn principal(&self) -> u32 {
        self.nodes.first().map_or(NONE, |(slot, _)| *slot)
    }

    fn position(&self, slot: u32) -> Option<u32> {
        Ancestry::position(self, slot)
    }

    fn len(&self) -> usize {
        Ancestry::len(self)
    }

    fn nodes(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        Ancestry::nodes(self)
    }
}

/// A user's fresh precomputed access set, read in place: the principal at position 0, then
/// its groups (sorted) at 1, 2, ... Membership is a binary search over a few cache lines,
/// cheaper than copying fifty groups into a hashed table first. A long grant list is
/// scanned with one membership test per entry, and most grantees are not in the set, so
/// such a scan first asks [`AccessSet::may_contain`]: one bit of a 512-bit signature of the
/// groups instead of a binary search whose every step is a branch the CPU cannot predict.
///
/// Each group also carries the position it is reached from on the shortest membership chain
/// (as [`Ancestry`] finds it), so an explanation reads its chains out of the set.
pub(crate) struct SortedAccessSet<'a> {
    principal: u32,
    groups: &'a [u32],
    /// Per group, the position (0 for the principal, `i + 1` for `groups[i]`) of the node it
    /// is reached from.
    vias: &'a [u32],
    /// Made at the first [`AccessSet::may_contain`]: a question that scans no long grant
    /// list does not pay for it.
    signature: std::cell::OnceCell<[u64; 8]>,
}

impl<'a> SortedAccessSet<'a> {
    fn new(principal: u32, groups: &'a [u32], vias: &'a [u32]) -> SortedAccessSet<'a> {
        SortedAccessSet {
            principal,
            groups,
            vias,
            signature: std::cell::OnceCell::new(),
        }
    }

    fn signature(&self) -> &[u64; 8] {
        self.signature.get_or_init(|| {
            let mut signature = [0u64; 8];
            for group in self.groups {
                let bit = Self::signature_bit(*group);
                signature[bit / 64] |= 1u64 << (bit % 64);
            }
            signature
        })
    }

    /// The slots from the principal up to the node at `position`, both included, appended
    /// to `out`: the chain [`Ancestry::extend_chain`] gives for the same node.
    pub(crate) fn extend_chain(&self, position: u32, out: &mut Vec<u32>) {
        let start = out.len();
        let mut at = position;
        // A chain has at most one node per group of the set, so the bound only guards
        // against a corrupt run.
        for _ in 0..=self.groups.len() {
            if at == 0 {
                out.push(self.principal);
                break;
            }
            let index = at as usize - 1;
            let (Some(slot), Some(via)) = (self.groups.get(index), self.vias.get(index)) else {
                break;
            };
            out.push(*slot);
            at = *via;
        }
        out[start..].reverse();
    }

    /// Where a slot falls in the signature: the top nine bits of a multiplicative hash, so
    /// that neighbouring slots (groups created together) spread over the whole signature.
    /// Unseeded: a collision only costs the binary search the signature was to spare.
    #[inline(always)]
    fn signature_bit(slot: u32) -> usize {
        (slot.wrapping_mul(0x9E37_79B9) >> 23) as usize
    }

    #[inline(always)]
    fn signature_has(&self, slot: u32) -> bool {
        let bit = Self::signature_bit(slot);
        self.signature()[bit / 64] & (1u64 << (bit % 64)) != 0
    }
}

impl AccessSet for SortedAccessSet<'_> {
    fn principal(&self) -> u32 {
        self.principal
    }

    fn position(&self, slot: u32) -> Option<u32> {
        if slot == self.principal {
            return Some(0);
        }
        self.groups
            .binary_search(&slot)
            .ok()
            .map(|index| index as u32 + 1)
    }

    #[inline(always)]
    fn may_contain(&self, slot: u32) -> bool {
        (slot == self.principal) | self.signature_has(slot)
    }

    fn len(&self) -> usize {
        self.groups.len() + 1
    }

    fn nodes(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        std::iter::once((self.principal, 0)).chain(
            self.groups
                .iter()
                .enumerate()
                .map(|(index, group)| (*group, index as u32 + 1)),
        )
    }
}

/// The table size a fresh or recycled [`Ancestry`] starts with: room for 32 nodes.
const ANCESTRY_TABLE_START: usize = 64;
/// A spare whose table grew past this (a principal in hundreds of groups) is not kept, so
/// that the next ordinary check does not pay for clearing a large table.
const ANCESTRY_TABLE_KEPT: usize = 1024;

thread_local! {
    /// One spare [`Ancestry`] per thread, reused by [`Principals::with_ancestry`]. A nested
    /// call finds it taken and allocates its own.
    static SPARE_ANCESTRY: std::cell::Cell<Option<Ancestry>> = const { std::cell::Cell::new(None) };
}

impl Default for Ancestry {
    fn default() -> Self {
        Ancestry {
            nodes: Vec::with_capacity(ANCESTRY_TABLE_START / 2),
            table: vec![(NONE, 0); ANCESTRY_TABLE_START],
        }
    }
}

impl Ancestry {
    fn bucket(&self, slot: u32) -> usize {
        // Fibonacci hashing: the high bits of the product, as many as the table needs. A
        // fixed multiplier, unlike the seeded indices of `hash.rs`, because the keys are
        // slots, which the engine hands out in order and no client chooses. A client can
        // only choose which of the groups it made a user joins: to pile k of them into one
        // place of this table (at least 2k entries) it would have to make about 2k² groups
        // to pick them from, and the walk that suffers is that one user's.
        let bits = self.table.len().trailing_zeros();
        (u64::from(slot).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Empties the set, keeping the table it grew to: a user's access set has about fifty
    /// groups, so shrinking back to the starting size would make every check grow it again,
    /// two allocations each time.
    fn reset(&mut self) {
        self.nodes.clear();
        self.table.fill((NONE, 0));
    }

    /// Adds `slot`, reached from the node at `via`, unless it is already there.
    fn insert(&mut self, slot: u32, via: u32) {
        if (self.nodes.len() + 1) * 2 > self.table.len() {
            self.grow();
        }
        let mask = self.table.len() - 1;
        let mut at = self.bucket(slot);
        loop {
            let (held, _) = self.table[at];
            if held == slot {
                return;
            }
            if held == NONE {
                self.table[at] = (slot, self.nodes.len() as u32);
                self.nodes.push((slot, via));
                return;
            }
            at = (at + 1) & mask;
        }
    }

    fn grow(&mut self) {
        self.table = vec![(NONE, 0); self.table.len() * 2];
        let mask = self.table.len() - 1;
        for (position, (slot, _)) in self.nodes.iter().enumerate() {
            let mut at = self.bucket(*slot);
            while self.table[at].0 != NONE {
                at = (at + 1) & mask;
            }
            self.table[at] = (*slot, position as u32);
        }
    }

    /// The position of `slot` in the walk, if the principal is `slot` or is inside it.
    pub(crate) fn position(&self, slot: u32) -> Option<u32> {
        let mask = self.table.len() - 1;
        let mut at = self.bucket(slot);
        loop {
            let (held, position) = self.table[at];
            if held == slot {
                return Some(position);
            }
            if held == NONE {
                return None;
            }
            at = (at + 1) & mask;
        }
    }

    pub(crate) fn contains(&self, slot: u32) -> bool {
        self.position(slot).is_some()
    }

    /// How many principals the walk holds: the principal and its groups.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The slots from the principal up to the node at `position`, both included.
    pub(crate) fn chain(&self, position: u32) -> Vec<u32> {
        let mut chain = Vec::new();
        self.extend_chain(position, &mut chain);
        chain
    }

    /// [`Ancestry::chain`] appended to `out`.
    pub(crate) fn extend_chain(&self, position: u32, out: &mut Vec<u32>) {
        let start = out.len();
        let mut at = position;
        while let Some((slot, via)) = self.nodes.get(at as usize) {
            out.push(*slot);
            at = *via;
        }
        out[start..].reverse();
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
    /// Slots handed out so far, removed principals' included.
    pub(crate) fn slot_count(&self) -> usize {
        self.status.len()
    }

    /// Direct memberships, counted.
    pub(crate) fn membership_count(&self) -> usize {
        self.parents.iter().map(Vec::len).sum()
    }

    pub(crate) fn slot(&self, id: &PrincipalId) -> Result<u32, AccessError> {
        self.index
            .get(id.as_str())
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

    /// The principal as explanations name it, borrowed.
    pub(crate) fn view(&self, slot: u32) -> PrincipalView<'_> {
        let record = &self.records[slot as usize];
        PrincipalView {
            id: &record.id,
            kind: self.status[slot as usize].kind,
            name: &record.name,
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

    /// The principal's direct groups.
    pub(crate) fn parents(&self, slot: u32) -> &[u32] {
        &self.parents[slot as usize]
    }

    /// The group's closure (itself and every group above it through active groups); empty
    /// for an inactive or removed group and for users and service principals.
    pub(crate) fn closure(&self, slot: u32) -> &[u32] {
        self.closures.get(slot)
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
        let slot = match self.index.get(id.as_str()) {
            Some(slot) => {
                let status = &mut self.status[slot as usize];
                if status.kind != kind {
                    return Err(AccessError::PrincipalKindChanged {
                        principal: id.clone(),
                        was: status.kind,
                        now: kind,
                    });
                }
                let was_active = status.active;
                status.active = active;
                self.records[slot as usize].name = name.to_string();
                if kind == PrincipalKind::Group && was_active != active {
                    self.refresh_closures(slot);
                }
                slot
            }
            None => {
                let slot = u32::try_from(self.status.len())
                    .ok()
                    .filter(|slot| *slot != NONE)
                    .ok_or(AccessError::CapacityExceeded { what: "principals" })?;
                self.index.insert(id.as_str(), slot);
                self.status.push(Status {
                    kind,
                    alive: true,
                    active,
                });
                self.parents.push(Vec::new());
                self.members.push(Vec::new());
                self.records.push(Record {
                    id: id.clone(),
                    name: name.to_string(),
                });
                self.holdings.push(Vec::new());
                if kind == PrincipalKind::Group && active {
                    self.closures.push(&[slot]);
                } else {
                    self.closures.push(&[]);
                }
                // A newcomer is in no group, so its (empty) set is fresh; groups have none.
                let stamp = if kind == PrincipalKind::Group {
                    0
                } else {
                    self.access_sets.epoch
                };
                self.access_sets.runs.push_stamped(&[], stamp);
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
            self.remove_member(parent, slot);
        }
        let members = std::mem::take(&mut self.members[index]);
        for member in &members {
            remove_value(&mut self.parents[*member as usize], slot);
        }
        self.member_positions.remove(&slot);
        self.member_groups.remove(&slot);
        self.status[index].alive = false;
        self.status[index].active = false;
        if !self.closures.get(slot).is_empty() {
            self.closures.set(slot, &[]);
            self.closures_changed();
        }
        self.recompute_access_set(slot);
        for member in members {
            self.refresh_closures(member);
        }
        let id = self.records[index].id.clone();
        self.index.remove(id.as_str());
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
        self.push_member(group, member);
        self.refresh_closures(member);
        self.recompute_access_set_if_fresh(member);
        Ok(true)
    }

    /// Removes `member` from `group`. Returns false if it was not a direct member.
    pub(crate) fn remove_membership(&mut self, group: u32, member: u32) -> bool {
        let removed = remove_value(&mut self.parents[member as usize], group);
        if removed {
            self.remove_member(group, member);
            self.refresh_closures(member);
            self.recompute_access_set_if_fresh(member);
        }
        removed
    }

    /// Rebuilds the closure of `from` (a group whose parents or active flag changed) and of
    /// every group below it, parents before children, so each closure is built from
    /// up-to-date ones. Does nothing for users and service principals, which have none: a
    /// user joining or leaving a group costs no closure work. The cost is the number of
    /// groups below `from` times their closure sizes, bounded by the nesting limit.
    fn refresh_closures(&mut self, from: u32) {
        if self.status(from).kind != PrincipalKind::Group {
            return;
        }
        // The groups below `from` (structurally: a closure below an inactive group may
        // still change when the inactive group is reactivated), with how many of each one's
        // parents are among them, for a topological order, and whether one of those parents'
        // closures changed (only then must it be rebuilt).
        let mut affected = vec![from];
        let mut pending: FastMap<u32, (u32, bool)> = FastMap::default();
        pending.insert(from, (0, true));
        let mut next = 0;
        while let Some(group) = affected.get(next).copied() {
            next += 1;
            for member in self.member_groups.get(&group).into_iter().flatten() {
                let (parents_waiting, _) = pending.entry(*member).or_insert((0, false));
                if *parents_waiting == 0 && *member != from {
                    affected.push(*member);
                }
                *parents_waiting += 1;
            }
        }
        // `from` is the only group of the set with no parent in it (there are no cycles).
        pending.insert(from, (0, true));
        let mut ready = vec![from];
        let mut closure = Vec::new();
        let mut any_changed = false;
        while let Some(group) = ready.pop() {
            let stale = pending.get(&group).is_some_and(|(_, stale)| *stale);
            let mut changed = false;
            if stale {
                closure.clear();
                if self.status[group as usize].can_hold_access() {
                    closure.push(group);
                    for parent in &self.parents[group as usize] {
                        closure.extend_from_slice(self.closures.get(*parent));
                    }
                    // A stable sort finds the sorted runs the parents' closures already are.
                    closure.sort();
                    closure.dedup();
                }
                if self.closures.get(group) != closure.as_slice() {
                    self.closures.set(group, &closure);
                    changed = true;
                    any_changed = true;
                }
            }
            for member in self.member_groups.get(&group).into_iter().flatten() {
                if let Some((parents_waiting, stale)) = pending.get_mut(member) {
                    *stale |= changed;
                    *parents_waiting = parents_waiting.saturating_sub(1);
                    if *parents_waiting == 0 {
                        ready.push(*member);
                    }
                }
            }
        }
        if any_changed {
            self.closures_changed();
        }
    }

    /// The user's or service principal's precomputed access set, if it is fresh.
    pub(crate) fn fresh_access_set(&self, slot: u32) -> Option<SortedAccessSet<'_>> {
        let (run, stamp) = self.access_sets.runs.get_stamped(slot);
        if stamp != self.access_sets.epoch {
            return None;
        }
        // The run is the sorted groups, then each one's via (see `recompute_access_set`).
        let (groups, vias) = run.split_at(run.len() / 2);
        Some(SortedAccessSet::new(slot, groups, vias))
    }

    /// Every closure may have changed: every access set is stale from now on.
    fn closures_changed(&mut self) {
        let sets = &mut self.access_sets;
        sets.epoch = sets.epoch.wrapping_add(1);
        if sets.epoch == 0 {
            // After four billion changes: start the stamps over rather than let an old one
            // come round again.
            sets.runs.restamp_all(0);
            sets.epoch = 1;
        }
        sets.refreshed_below = 0;
    }

    /// Recomputes the access set of a user or service principal whose set is fresh (its
    /// direct groups just changed); a stale one stays stale until its refresh.
    fn recompute_access_set_if_fresh(&mut self, slot: u32) {
        if self.access_sets.runs.get_stamped(slot).1 == self.access_sets.epoch {
            self.recompute_access_set(slot);
        }
    }

    /// Computes the access set of a user or service principal from its direct groups'
    /// closures and stamps it fresh. Groups have none.
    ///
    /// The run stored is the sorted groups followed by each group's via: the position (0
    /// for the principal, `i + 1` for the `i`th group) of the node it is first reached from
    /// by a breadth-first walk that takes each node's parents in order, which is the walk
    /// [`Ancestry`] makes, so the chains read from the set are the ones it would give. The
    /// walk stays inside the set, which holds exactly the groups reachable through active
    /// groups, as the ancestry walk does.
    fn recompute_access_set(&mut self, slot: u32) {
        if self.status[slot as usize].kind == PrincipalKind::Group {
            return;
        }
        let mut run: Vec<u32> = Vec::new();
        for parent in &self.parents[slot as usize] {
            run.extend_from_slice(self.closures.get(*parent));
        }
        run.sort_unstable();
        run.dedup();
        let groups = run.len();
        run.resize(groups * 2, NONE);
        // Positions in walk order; position 0 is the principal.
        let mut walk: Vec<u32> = Vec::with_capacity(groups + 1);
        walk.push(0);
        let mut next = 0;
        while let Some(position) = walk.get(next).copied() {
            next += 1;
            let node = match position {
                0 => slot,
                _ => run[position as usize - 1],
            };
            for parent in &self.parents[node as usize] {
                let Ok(index) = run[..groups].binary_search(parent) else {
                    // An inactive group: not in the set, and not walked through.
                    continue;
                };
                if run[groups + index] == NONE {
                    run[groups + index] = position;
                    walk.push(index as u32 + 1);
                }
            }
        }
        let epoch = self.access_sets.epoch;
        self.access_sets.runs.set_stamped(slot, &run, epoch);
    }

    /// Whether every access set is fresh, so that a refresh would find nothing to do.
    pub(crate) fn access_sets_fresh(&self) -> bool {
        self.access_sets.refreshed_below >= self.access_sets.runs.len()
    }

    /// Recomputes up to `budget` stale access sets, in slot order. Returns true once none is
    /// left stale. Answers are the same before and after; only `allows` gets faster.
    pub(crate) fn refresh_access_sets(&mut self, budget: usize) -> bool {
        let mut left = budget;
        let mut slot = self.access_sets.refreshed_below;
        while slot < self.access_sets.runs.len() {
            let index = slot as u32;
            if self.access_sets.runs.get_stamped(index).1 != self.access_sets.epoch
                && self.status[slot].kind != PrincipalKind::Group
            {
                if left == 0 {
                    break;
                }
                self.recompute_access_set(index);
                left -= 1;
            }
            slot += 1;
        }
        self.access_sets.refreshed_below = slot;
        slot >= self.access_sets.runs.len()
    }

    /// Appends to the group's member list, indexing it once it is large.
    fn push_member(&mut self, group: u32, member: u32) {
        if self.status[member as usize].kind == PrincipalKind::Group {
            self.member_groups.entry(group).or_default().push(member);
        }
        let list = &mut self.members[group as usize];
        list.push(member);
        let position = (list.len() - 1) as u32;
        if let Some(positions) = self.member_positions.get_mut(&group) {
            positions.insert(member, position);
        } else if list.len() > INDEXED_GROUP_SIZE {
            let positions = list
                .iter()
                .enumerate()
                .map(|(position, member)| (*member, position as u32))
                .collect();
            self.member_positions.insert(group, positions);
        }
    }

    /// Takes `member` out of the group's member list: a lookup and a `swap_remove` for a
    /// large group, a scan of at most [`INDEXED_GROUP_SIZE`] entries otherwise.
    fn remove_member(&mut self, group: u32, member: u32) {
        if let Some(groups) = self.member_groups.get_mut(&group) {
            remove_value(groups, member);
            if groups.is_empty() {
                self.member_groups.remove(&group);
            }
        }
        let list = &mut self.members[group as usize];
        let Some(positions) = self.member_positions.get_mut(&group) else {
            remove_value(list, member);
            return;
        };
        let Some(position) = positions.remove(&member) else {
            return;
        };
        list.swap_remove(position as usize);
        if let Some(moved) = list.get(position as usize) {
            positions.insert(*moved, position);
        }
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

    /// [`Principals::ancestry`] lent to `answer` without allocating: the walk is written into
    /// this thread's spare, which is kept for the next call.
    pub(crate) fn with_ancestry<R>(&self, slot: u32, answer: impl FnOnce(&Ancestry) -> R) -> R {
        let mut ancestry = SPARE_ANCESTRY
            .with(|spare| spare.take())
            .unwrap_or_default();
        self.fill_walk_up(&mut ancestry, slot, false);
        let result = answer(&ancestry);
        if ancestry.table.len() <= ANCESTRY_TABLE_KEPT {
            SPARE_ANCESTRY.with(|spare| spare.set(Some(ancestry)));
        }
        result
    }

    /// The principal and every group access flows to it from, as a set lent to `answer`,
    /// read from the closures of its direct groups rather than walked: the same members as
    /// [`Principals::with_ancestry`], but positions that make no chains. For `allows` when
    /// the principal is a group or its precomputed access set is stale.
    pub(crate) fn with_access_set<R>(&self, slot: u32, answer: impl FnOnce(&Ancestry) -> R) -> R {
        let mut set = SPARE_ANCESTRY
            .with(|spare| spare.take())
            .unwrap_or_default();
        set.reset();
        set.insert(slot, NONE);
        if self.status[slot as usize].kind == PrincipalKind::Group {
            for group in self.closures.get(slot) {
                set.insert(*group, 0);
            }
        } else {
            for parent in &self.parents[slot as usize] {
                for group in self.closures.get(*parent) {
                    set.insert(*group, 0);
                }
            }
        }
        let result = answer(&set);
        if set.table.len() <= ANCESTRY_TABLE_KEPT {
            SPARE_ANCESTRY.with(|spare| spare.set(Some(set)));
        }
        result
    }

    /// The walk behind [`Principals::ancestry`]; `structural` also goes through inactive groups,
    /// for cycle checks and the SCIM `groups` attribute.
    pub(crate) fn walk_up(&self, slot: u32, structural: bool) -> Ancestry {
        let mut ancestry = Ancestry::default();
        self.fill_walk_up(&mut ancestry, slot, structural);
        ancestry
    }

    fn fill_walk_up(&self, ancestry: &mut Ancestry, slot: u32, structural: bool) {
        ancestry.reset();
        ancestry.insert(slot, NONE);
        let mut next = 0usize;
        while let Some((node, _)) = ancestry.nodes.get(next).copied() {
            for parent in &self.parents[node as usize] {
                if !structural && !self.status[*parent as usize].can_hold_access() {
                    continue;
                }
                ancestry.insert(*parent, next as u32);
            }
            next += 1;
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Over random nestings with diamonds (several shortest chains), inactive groups and
    /// removals, a fresh access set holds exactly the walk's groups, and the chain it gives
    /// for each is the walk's: the same nodes, in the same order.
    #[test]
    fn access_set_chains_are_the_walks_chains() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut below = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let mut compared = 0usize;
        let mut longest = 0usize;
        for round in 0..40 {
            let mut principals = Principals::default();
            let groups = 4 + round % 12;
            let users = 6;
            for index in 0..groups {
                let id = PrincipalId::new(format!("g{index}"));
                principals
                    .upsert(&id, PrincipalKind::Group, id.as_str(), true)
                    .unwrap();
            }
            for index in 0..users {
                let id = PrincipalId::new(format!("u{index}"));
                principals
                    .upsert(&id, PrincipalKind::User, id.as_str(), true)
                    .unwrap();
            }
            let group_slot = |index: usize| index as u32;
            let user_slot = |index: usize| (groups + index) as u32;
            for _ in 0..groups * 3 {
                let _ =
                    principals.add_membership(group_slot(below(groups)), group_slot(below(groups)));
            }
            for _ in 0..users * 4 {
                let _ =
                    principals.add_membership(group_slot(below(groups)), user_slot(below(users)));
            }
            for _ in 0..below(3) {
                let slot = group_slot(below(groups));
                let id = principals.id(slot).clone();
                principals
                    .upsert(&id, PrincipalKind::Group, id.as_str(), false)
                    .unwrap();
            }
            principals.refresh_access_sets(usize::MAX);
            for index in 0..users {
                let slot = user_slot(index);
                let set = principals.fresh_access_set(slot).expect("refreshed");
                let ancestry = principals.ancestry(slot);
                assert_eq!(set.len(), ancestry.len(), "round {round}, user {index}");
                for (node, position) in ancestry.nodes() {
                    let in_set = set.position(node).expect("the walk's group is in the set");
                    let mut from_set = Vec::new();
                    set.extend_chain(in_set, &mut from_set);
                    assert_eq!(
                        from_set,
                        ancestry.chain(position),
                        "round {round}, user {index}, group {node}"
                    );
                    compared += 1;
                    longest = longest.max(from_set.len());
                }
            }
        }
        // The rounds must reach chains through several groups, or they prove little.
        assert!(
            compared > 500 && longest >= 4,
            "{compared} chains, longest {longest}"
        );
    }
}
