//! The Unity Catalog tree as the engine stores it: securables in slots with their parent,
//! owner and grants, and a name index per type.

use crate::error::AccessError;
use crate::hash::{FastMap, NameIndex};
use crate::privilege::PrivilegeSet;
use crate::securable::{canonical_name, SecurableRef, SecurableType, SecurableView};

/// One grantee's privileges on one securable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GrantEntry {
    pub(crate) grantee: u32,
    pub(crate) privileges: PrivilegeSet,
}

/// A securable with more grant entries than this indexes them by grantee. Most securables
/// have a few entries, scanned linearly; a catalog or schema that thousands of groups may
/// use has thousands, and a check then probes them once per group of the principal instead.
pub(crate) const INDEXED_GRANT_COUNT: usize = 32;

/// The grant entries on one securable, in the order they were first made (the order
/// explanations and `SHOW GRANTS` list them in), at most one per grantee.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grants {
    entries: Vec<GrantEntry>,
    /// Grantee to position in `entries`, kept once there are more than
    /// [`INDEXED_GRANT_COUNT`] entries.
    positions: Option<FastMap<u32, u32>>,
    /// With `positions`: a Bloom filter over the grantees, about 16 bits per entry,
    /// tested before the map. A check of a principal in fifty groups against a schema
    /// granted to 1,500 makes fifty lookups, nearly all misses; a bit test in a few
    /// kilobytes answers most of them without reaching the map's control bytes and entries
    /// (two cache misses each at the full benchmark size). Never a false "absent".
    grantee_filter: Box<[u64]>,
    /// Every privilege some entry holds, so that a check can pass over a securable whose
    /// entries cannot supply what it asks (a catalog's thousands of `USE_CATALOG` grants when
    /// the question is `SELECT`) without reading them.
    union: PrivilegeSet,
}

impl Grants {
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, GrantEntry> {
        self.entries.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every privilege held by some entry.
    pub(crate) fn union(&self) -> PrivilegeSet {
        self.union
    }

    /// Whether lookups by grantee are indexed (rather than a scan).
    pub(crate) fn is_indexed(&self) -> bool {
        self.positions.is_some()
    }

    /// The position of the grantee's entry, if it has one.
    #[inline]
    pub(crate) fn position(&self, grantee: u32) -> Option<usize> {
        match &self.positions {
            Some(_) if !self.may_hold(grantee) => None,
            Some(positions) => positions.get(&grantee).map(|position| *position as usize),
            None => self
                .entries
                .iter()
                .position(|entry| entry.grantee == grantee),
        }
    }

    pub(crate) fn get(&self, position: usize) -> Option<&GrantEntry> {
        self.entries.get(position)
    }

    /// Adds privileges to the grantee's entry, making one if it has none.
    pub(crate) fn add(&mut self, grantee: u32, privileges: PrivilegeSet) {
        self.union = self.union.union(privileges);
        if let Some(position) = self.position(grantee) {
            let entry = &mut self.entries[position];
            entry.privileges = entry.privileges.union(privileges);
            return;
        }
        self.entries.push(GrantEntry {
            grantee,
            privileges,
        });
        match &mut self.positions {
            Some(positions) => {
                positions.insert(grantee, (self.entries.len() - 1) as u32);
                if self.entries.len() * FILTER_BITS_PER_ENTRY > self.grantee_filter.len() * 64 * 2 {
                    // Past twice the planned load: rebuild at the new size.
                    self.reindex();
                } else {
                    self.mark(grantee);
                }
            }
            None if self.entries.len() > INDEXED_GRANT_COUNT => self.reindex(),
            None => {}
        }
    }

    /// Takes privileges away from the grantee's entry, dropping the entry when none are
    /// left. Returns true if the entry was dropped.
    pub(crate) fn remove_privileges(&mut self, grantee: u32, removed: PrivilegeSet) -> bool {
        let Some(position) = self.position(grantee) else {
            return false;
        };
        let remaining = self.entries[position].privileges.difference(removed);
        if !remaining.is_empty() {
            self.entries[position].privileges = remaining;
            self.reindex();
            return false;
        }
        // `remove`, not `swap_remove`: the order is the order grants were made in.
        self.entries.remove(position);
        self.reindex();
        true
    }

    /// Drops the grantee's entry, if any.
    pub(crate) fn remove_grantee(&mut self, grantee: u32) {
        if let Some(position) = self.position(grantee) {
            self.entries.remove(position);
            self.reindex();
        }
    }

    /// Rebuilds the grantee index and the union after entries were removed or narrowed.
    fn reindex(&mut self) {
        self.union = self
            .entries
            .iter()
            .fold(PrivilegeSet::EMPTY, |union, entry| {
                union.union(entry.privileges)
            });
        self.positions = (self.entries.len() > INDEXED_GRANT_COUNT).then(|| {
            self.entries
                .iter()
                .enumerate()
                .map(|(position, entry)| (entry.grantee, position as u32))
                .collect()
        });
        self.grantee_filter = if self.positions.is_some() {
            let bits = (self.entries.len() * FILTER_BITS_PER_ENTRY).next_power_of_two();
            vec![0u64; bits.div_ceil(64)].into_boxed_slice()
        } else {
            Box::default()
        };
        for position in 0..self.entries.len() {
            let grantee = self.entries[position].grantee;
            self.mark(grantee);
        }
    }

    /// The filter's word for `grantee` and the two bits set in it: one multiplicative hash,
    /// its high bits choosing the word (as many as the filter has words) and two runs of six
    /// low bits choosing the bits. Two bits in one word cost one load, and make a false
    /// "may hold" about three times rarer than one bit would (1 to 3 % between rebuilds,
    /// against 4 to 9 %), which matters because each one costs a lookup in the map.
    /// Unseeded, unlike the map behind it: grantees are slots, which no client chooses, and
    /// a collision only costs that lookup, in a map hashed with a seed.
    #[inline(always)]
    fn filter_mask(&self, grantee: u32) -> Option<(usize, u64)> {
        let words = self.grantee_filter.len();
        if words == 0 {
            return None;
        }
        let hash = u64::from(grantee).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // `words` is a power of two; for a single word the shift would be 64.
        let word = hash.checked_shr(64 - words.trailing_zeros()).unwrap_or(0) as usize;
        // The bits come from a second mix: taken from the same product they would follow
        // the word's choice too closely for consecutive slots.
        let bits = (hash ^ (hash >> 31)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let mask = (1u64 << (bits >> 58)) | (1u64 << ((bits >> 52) & 63));
        Some((word, mask))
    }

    fn mark(&mut self, grantee: u32) {
        if let Some((word, mask)) = self.filter_mask(grantee) {
            self.grantee_filter[word] |= mask;
        }
    }

    /// False only if the grantee certainly has no entry.
    #[inline(always)]
    fn may_hold(&self, grantee: u32) -> bool {
        match self.filter_mask(grantee) {
            Some((word, mask)) => self.grantee_filter[word] & mask == mask,
            None => true,
        }
    }
}

/// Bits of [`Grants::grantee_filter`] per entry when it is built (it is rebuilt when they
/// fall to 8): 1 to 3 % false positives with two bits per entry in one word.
const FILTER_BITS_PER_ENTRY: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct SecurableSlot {
    pub(crate) kind: SecurableType,
    pub(crate) name: String,
    /// The catalog or schema above; `None` for catalogs and objects outside the tree.
    pub(crate) parent: Option<u32>,
    pub(crate) children: Vec<u32>,
    pub(crate) owner: u32,
    pub(crate) grants: Grants,
    /// A catalog's isolation mode and workspace bindings (`crate::binding`); unused below.
    pub(crate) bindings: crate::binding::CatalogBindings,
    /// False once dropped. Slots are not reused, so stale indices can never point at a new
    /// object.
    pub(crate) alive: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) slots: Vec<SecurableSlot>,
    by_name: Vec<NameIndex>,
    pub(crate) metastore: Option<u32>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            slots: Vec::new(),
            by_name: SecurableType::ALL
                .iter()
                .map(|_| NameIndex::default())
                .collect(),
            metastore: None,
        }
    }
}

/// The name index of a type: `SecurableType::ALL` is in declaration order.
fn type_index(kind: SecurableType) -> usize {
    kind as usize
}

impl Catalog {
    /// Finds a live securable. The exact name is tried first so that the usual caller, which
    /// already has the canonical name, pays no allocation.
    pub(crate) fn find(&self, kind: SecurableType, full_name: &str) -> Result<u32, AccessError> {
        let names = &self.by_name[type_index(kind)];
        if let Some(slot) = names.get(full_name) {
            return Ok(slot);
        }
        let unknown = || AccessError::UnknownSecurable {
            securable_type: kind,
            full_name: full_name.to_string(),
        };
        let canonical = canonical_name(kind, full_name).map_err(|_| unknown())?;
        names.get(&canonical).ok_or_else(unknown)
    }

    pub(crate) fn slot(&self, slot: u32) -> &SecurableSlot {
        &self.slots[slot as usize]
    }

    pub(crate) fn slot_mut(&mut self, slot: u32) -> &mut SecurableSlot {
        &mut self.slots[slot as usize]
    }

    /// The securable as explanations name it, borrowed.
    pub(crate) fn view(&self, slot: u32) -> SecurableView<'_> {
        let slot = self.slot(slot);
        SecurableView {
            securable_type: slot.kind,
            full_name: &slot.name,
        }
    }

    pub(crate) fn reference(&self, slot: u32) -> SecurableRef {
        let slot = self.slot(slot);
        SecurableRef {
            securable_type: slot.kind,
            full_name: slot.name.clone(),
        }
    }

    /// Whether `kind` objects share their names with another type: tables and views live in
    /// one namespace in Unity Catalog.
    fn name_taken(&self, kind: SecurableType, name: &str) -> bool {
        let shared = match kind {
            SecurableType::Table => Some(SecurableType::View),
            SecurableType::View => Some(SecurableType::Table),
            _ => None,
        };
        std::iter::once(kind)
            .chain(shared)
            .any(|kind| self.by_name[type_index(kind)].contains(name))
    }

    pub(crate) fn insert(
        &mut self,
        kind: SecurableType,
        full_name: &str,
        owner: u32,
    ) -> Result<u32, AccessError> {
        let name = canonical_name(kind, full_name)?;
        if self.name_taken(kind, &name) {
            return Err(AccessError::SecurableExists {
                securable_type: kind,
                full_name: name,
            });
        }
        if kind == SecurableType::Metastore {
            if let Some(existing) = self.metastore {
                return Err(AccessError::SecondMetastore {
                    existing: self.slot(existing).name.clone(),
                });
            }
        }
        let parent = match kind.parent_type() {
            Some(parent_type) => {
                let parent_name = crate::securable::parent_name(&name).unwrap_or_default();
                let found = self.by_name[type_index(parent_type)].get(parent_name);
                Some(found.ok_or_else(|| AccessError::MissingParent {
                    securable_type: kind,
                    full_name: name.clone(),
                    parent_type,
                    parent_name: parent_name.to_string(),
                })?)
            }
            None => None,
        };
        let slot = u32::try_from(self.slots.len())
            .map_err(|_| AccessError::CapacityExceeded { what: "securables" })?;
        self.slots.push(SecurableSlot {
            kind,
            name: name.clone(),
            parent,
            children: Vec::new(),
            owner,
            grants: Grants::default(),
            bindings: crate::binding::CatalogBindings::default(),
            alive: true,
        });
        if let Some(parent) = parent {
            self.slot_mut(parent).children.push(slot);
        }
        if kind == SecurableType::Metastore {
            self.metastore = Some(slot);
        }
        self.by_name[type_index(kind)].insert(&name, slot);
        Ok(slot)
    }

    /// The type of the live securable an address finds: `kind` itself, else the type it
    /// also addresses ([`SecurableType::also_addresses`]: a view addressed as a table).
    pub(crate) fn addressed(&self, kind: SecurableType, full_name: &str) -> Option<SecurableType> {
        std::iter::once(kind)
            .chain(kind.also_addresses())
            .find(|candidate| self.find(*candidate, full_name).is_ok())
    }

    /// Renames a securable and everything below it to `new_name` (canonical, with the same
    /// parent). Each slot keeps its owner, grants and place in the tree, so the grants on a
    /// renamed catalog, and on everything in it, follow it.
    pub(crate) fn rename(&mut self, root: u32, new_name: &str) -> Result<(), AccessError> {
        let (kind, old_name) = {
            let entry = self.slot(root);
            (entry.kind, entry.name.clone())
        };
        let new_name = canonical_name(kind, new_name)?;
        if crate::securable::parent_name(&old_name) != crate::securable::parent_name(&new_name) {
            return Err(AccessError::InvalidSecurableName {
                securable_type: kind,
                full_name: new_name,
                why: "a rename keeps the object in its catalog and schema".into(),
            });
        }
        if self.name_taken(kind, &new_name) {
            return Err(AccessError::SecurableExists {
                securable_type: kind,
                full_name: new_name,
            });
        }
        for slot in self.subtree(root) {
            let (kind, name) = {
                let entry = self.slot(slot);
                (entry.kind, entry.name.clone())
            };
            // Every name below the root starts with the root's name and a dot.
            let renamed = match name.strip_prefix(old_name.as_str()) {
                Some(rest) => format!("{new_name}{rest}"),
                None => continue,
            };
            let names = &mut self.by_name[type_index(kind)];
            names.remove(&name);
            names.insert(&renamed, slot);
            self.slot_mut(slot).name = renamed;
        }
        Ok(())
    }

    /// The securable and everything below it, parents before children.
    pub(crate) fn subtree(&self, root: u32) -> Vec<u32> {
        let mut order = vec![root];
        let mut next = 0;
        while let Some(slot) = order.get(next).copied() {
            order.extend(self.slot(slot).children.iter().copied());
            next += 1;
        }
        order
    }

    /// Forgets one securable (its grants go with it); the caller fixes the reverse indices.
    pub(crate) fn remove(&mut self, slot: u32) {
        let (kind, name, parent) = {
            let entry = self.slot(slot);
            (entry.kind, entry.name.clone(), entry.parent)
        };
        self.by_name[type_index(kind)].remove(&name);
        if let Some(parent) = parent {
            let siblings = &mut self.slot_mut(parent).children;
            if let Some(position) = siblings.iter().position(|child| *child == slot) {
                siblings.swap_remove(position);
            }
        }
        if self.metastore == Some(slot) {
            self.metastore = None;
        }
        let entry = self.slot_mut(slot);
        entry.alive = false;
        entry.grants = Grants::default();
        entry.bindings = crate::binding::CatalogBindings::default();
        entry.children = Vec::new();
    }

    /// The enclosing catalog and schema of a tree securable (itself when it is one).
    pub(crate) fn enclosing(&self, slot: u32) -> (Option<u32>, Option<u32>) {
        let mut catalog = None;
        let mut schema = None;
        let mut at = Some(slot);
        while let Some(current) = at {
            let entry = self.slot(current);
            match entry.kind {
                SecurableType::Catalog => catalog = Some(current),
                SecurableType::Schema => schema = Some(current),
                _ => {}
            }
            at = entry.parent;
        }
        (catalog, schema)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::privilege::Privilege;

    fn set(privilege: Privilege) -> PrivilegeSet {
        PrivilegeSet::of(&[privilege])
    }

    /// Through growth past the index threshold, filter rebuilds, narrowing and removals, every
    /// grantee with an entry is found at its position and every other one is not.
    #[test]
    fn the_grantee_filter_never_hides_an_entry() {
        let mut grants = Grants::default();
        // Grantees spread like principal slots (a multiple of a prime, so they are distinct).
        let grantee = |index: u32| index.wrapping_mul(7_919) % 1_000_003;
        for index in 0..5_000u32 {
            grants.add(
                grantee(index),
                PrivilegeSet::of(&[Privilege::UseCatalog, Privilege::Select]),
            );
        }
        for index in (0..5_000u32).step_by(3) {
            grants.remove_grantee(grantee(index));
        }
        for index in (1..5_000u32).step_by(30) {
            grants.remove_privileges(grantee(index), set(Privilege::Select));
        }
        assert!(grants.is_indexed());
        let mut kept = 0;
        for index in 0..5_000u32 {
            let found = grants.position(grantee(index));
            if index % 3 == 0 {
                assert_eq!(found, None, "removed grantee {index}");
            } else {
                let position = found.unwrap_or_else(|| panic!("grantee {index} hidden"));
                assert_eq!(
                    grants.get(position).map(|entry| entry.grantee),
                    Some(grantee(index))
                );
                kept += 1;
            }
        }
        assert_eq!(kept, grants.len());
        for index in 5_000..20_000u32 {
            assert_eq!(grants.position(grantee(index)), None);
        }
    }

    /// The filter lets few grantees without an entry through to the map, for consecutive
    /// slots (principals created together) as for spread ones.
    #[test]
    fn the_grantee_filter_passes_few_absent_grantees() {
        for spread in [1u32, 7_919] {
            let mut grants = Grants::default();
            for index in 0..1_500u32 {
                grants.add(index * spread, set(Privilege::Select));
            }
            let absent = 100_000u32;
            let passed = (0..absent)
                .map(|index| (1_500 + index) * spread)
                .filter(|grantee| grants.may_hold(*grantee))
                .count();
            // Two bits per entry, at 11 bits per entry here: about 3 %; one bit would pass 9 %.
            assert!(
                passed * 100 < absent as usize * 4,
                "{passed} of {absent} absent grantees passed (spread {spread})"
            );
        }
    }
}
