//! The Unity Catalog tree as the engine stores it: securables in slots with their parent,
//! owner and grants, and a name index per type.

use crate::error::AccessError;
use crate::hash::FastMap;
use crate::privilege::PrivilegeSet;
use crate::securable::{canonical_name, SecurableRef, SecurableType};

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
    pub(crate) fn position(&self, grantee: u32) -> Option<usize> {
        match &self.positions {
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
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SecurableSlot {
    pub(crate) kind: SecurableType,
    pub(crate) name: String,
    /// The catalog or schema above; `None` for catalogs and objects outside the tree.
    pub(crate) parent: Option<u32>,
    pub(crate) children: Vec<u32>,
    pub(crate) owner: u32,
    pub(crate) grants: Grants,
    /// False once dropped. Slots are not reused, so stale indices can never point at a new
    /// object.
    pub(crate) alive: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) slots: Vec<SecurableSlot>,
    by_name: Vec<FastMap<String, u32>>,
    pub(crate) metastore: Option<u32>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            slots: Vec::new(),
            by_name: SecurableType::ALL
                .iter()
                .map(|_| FastMap::default())
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
            return Ok(*slot);
        }
        let unknown = || AccessError::UnknownSecurable {
            securable_type: kind,
            full_name: full_name.to_string(),
        };
        let canonical = canonical_name(kind, full_name).map_err(|_| unknown())?;
        names.get(&canonical).copied().ok_or_else(unknown)
    }

    pub(crate) fn slot(&self, slot: u32) -> &SecurableSlot {
        &self.slots[slot as usize]
    }

    pub(crate) fn slot_mut(&mut self, slot: u32) -> &mut SecurableSlot {
        &mut self.slots[slot as usize]
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
            .any(|kind| self.by_name[type_index(kind)].contains_key(name))
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
                let found = self.by_name[type_index(parent_type)]
                    .get(parent_name)
                    .copied();
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
            alive: true,
        });
        if let Some(parent) = parent {
            self.slot_mut(parent).children.push(slot);
        }
        if kind == SecurableType::Metastore {
            self.metastore = Some(slot);
        }
        self.by_name[type_index(kind)].insert(name, slot);
        Ok(slot)
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
