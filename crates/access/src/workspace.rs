//! Workspace objects as the engine stores them: one slot per object with its ACL and its
//! optional parent directory, and an id index per type.

use std::collections::HashMap;

use crate::error::AccessError;
use std::borrow::Cow;

use crate::object::{ObjectRef, ObjectType, PermissionLevel, TOKENS_OBJECT_ID};

#[derive(Debug, Clone)]
pub(crate) struct ObjectSlot {
    pub(crate) kind: ObjectType,
    pub(crate) id: String,
    /// The directory whose ACL this object inherits.
    pub(crate) parent: Option<u32>,
    /// At most one entry per principal: the API reports only the highest level anyway.
    pub(crate) acl: Vec<(u32, PermissionLevel)>,
    pub(crate) alive: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Objects {
    pub(crate) slots: Vec<ObjectSlot>,
    by_id: Vec<HashMap<String, u32>>,
}

impl Default for Objects {
    fn default() -> Self {
        Objects {
            slots: Vec::new(),
            by_id: ObjectType::ALL.iter().map(|_| HashMap::new()).collect(),
        }
    }
}

/// The tokens object has no id in the API; every spelling maps to the one object of its
/// workspace (`object_id_in` keeps it as `{workspace}/tokens`).
fn canonical_id(kind: ObjectType, id: &str) -> Cow<'_, str> {
    if kind != ObjectType::Tokens {
        return Cow::Borrowed(id);
    }
    match id.split_once('/') {
        Some((workspace, rest)) if rest != TOKENS_OBJECT_ID => {
            Cow::Owned(format!("{workspace}/{TOKENS_OBJECT_ID}"))
        }
        Some(_) => Cow::Borrowed(id),
        None => Cow::Borrowed(TOKENS_OBJECT_ID),
    }
}

impl Objects {
    pub(crate) fn find(&self, kind: ObjectType, id: &str) -> Option<u32> {
        self.by_id[kind as usize]
            .get(canonical_id(kind, id).as_ref())
            .copied()
    }

    /// Finds the object, registering it (with an empty ACL) if it is new: setting an ACL or a
    /// parent on an id is what makes an object known.
    pub(crate) fn find_or_register(
        &mut self,
        kind: ObjectType,
        id: &str,
    ) -> Result<u32, AccessError> {
        if let Some(slot) = self.find(kind, id) {
            return Ok(slot);
        }
        let slot = u32::try_from(self.slots.len()).map_err(|_| AccessError::CapacityExceeded {
            what: "workspace objects",
        })?;
        let id = canonical_id(kind, id).into_owned();
        self.slots.push(ObjectSlot {
            kind,
            id: id.clone(),
            parent: None,
            acl: Vec::new(),
            alive: true,
        });
        self.by_id[kind as usize].insert(id, slot);
        Ok(slot)
    }

    pub(crate) fn slot(&self, slot: u32) -> &ObjectSlot {
        &self.slots[slot as usize]
    }

    pub(crate) fn slot_mut(&mut self, slot: u32) -> &mut ObjectSlot {
        &mut self.slots[slot as usize]
    }

    pub(crate) fn reference(&self, slot: u32) -> ObjectRef {
        let entry = self.slot(slot);
        ObjectRef {
            object_type: entry.kind,
            object_id: entry.id.clone(),
        }
    }

    /// The object, then each directory above it, nearest first.
    pub(crate) fn lineage(&self, slot: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(Some(slot), move |current| self.slot(*current).parent)
    }

    /// Forgets the object; objects inside it keep no parent.
    pub(crate) fn remove(&mut self, slot: u32) {
        let (kind, id) = {
            let entry = self.slot(slot);
            (entry.kind, entry.id.clone())
        };
        self.by_id[kind as usize].remove(&id);
        for entry in &mut self.slots {
            if entry.parent == Some(slot) {
                entry.parent = None;
            }
        }
        let entry = self.slot_mut(slot);
        entry.alive = false;
        entry.acl = Vec::new();
        entry.parent = None;
    }
}
