//! The engine's hashed indices: principal ids, securable names and slots, all hashed with a
//! seed.
//!
//! Some of these keys are chosen by clients: securable names come from `CREATE` statements
//! and the Unity Catalog API, and principal ids are whatever storage holds, which an import
//! writes as its file has them. With a hash that anyone can compute in advance, a client
//! could choose thousands of names that start in one place, so that every insert and lookup
//! among them walks all the others (hash flooding: quadratic work for linear input, while
//! checks wait). Every index here therefore draws its own seed from foldhash's
//! `fast::RandomState`: a process-wide seed (from where the address-space layout put the
//! program, the clock and a heap address) mixed with one per map, which nobody outside the
//! process can know. On these keys foldhash is as fast as the unseeded hasher it replaced
//! (BENCHMARKS.md, "Seeded hashing"): one 64 × 64 → 128-bit multiplication for a slot or a
//! packed name. It is not a cryptographic hash and does not claim to be; what matters here
//! is that collisions cannot be computed without the seed.

use std::collections::HashMap;
use std::hash::BuildHasher;

/// The seeded state each map and table hashes with; see the module documentation. A clone
/// keeps the seed, as it must: the entries of a cloned table sit where that seed put them.
pub(crate) type SeededState = foldhash::fast::RandomState;

/// A `HashMap` hashed with a seed of its own ([`SeededState`]). Also used for the maps keyed
/// by slots, which clients do not choose: there foldhash looks a slot up no slower than the
/// unseeded hasher it replaced (about 5 ns either way in a map of 1,500 slots), so a second
/// hasher would buy nothing. Its low bits spread consecutive slots less evenly than a random
/// function would, more or less so depending on the seed; hashbrown, which probes sixteen
/// buckets at a time, absorbs that (the 5 ns held for consecutive slots too).
pub(crate) type FastMap<K, V> = HashMap<K, V, SeededState>;

/// A map from names (principal ids, securable names) to slots that keeps short names inside
/// the table. A lookup in a `HashMap<String, u32>` costs a cache miss for the bucket and
/// another for the key's heap bytes; at a million principals both are misses, and together
/// they were a fifth of an `allows`. Names of at most 16 bytes with no NUL byte (Scimitar's
/// 16-digit ids, most securable names) are packed into a `u128` and compared in place; the
/// rest go to an ordinary map. The packed keys live in [`PackedTable`], whose entries hold
/// key and slot together, so that a lookup usually reads one cache line.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameIndex {
    short: PackedTable,
    long: FastMap<Box<str>, u32>,
}

/// An open-addressing table from packed names to slots, probed linearly. hashbrown keeps its
/// control bytes apart from its entries, so a lookup there costs two cache misses in a table
/// of a million entries; here the first entry probed is usually the one. At most three
/// quarters full; removal shifts later entries of the same run back, so no tombstones.
#[derive(Debug, Clone, Default)]
struct PackedTable {
    /// `(key, slot)`, the key as two words (keeping the entry at 24 bytes rather than the 32
    /// a `u128` would align it to); `slot == EMPTY` marks a free entry.
    entries: Vec<(u64, u64, u32)>,
    len: usize,
    /// Where each key's run starts depends on this table's seed, so a client cannot choose
    /// names that pile into one run; linear probing suffers from such a pile-up even more
    /// than hashbrown would, since neighbouring runs merge into it.
    seed: SeededState,
}

const EMPTY: u32 = u32::MAX;

impl PackedTable {
    /// Where the key's run starts: the high bits of its seeded hash, as many as the table
    /// needs. Only called on a table with entries.
    fn home(&self, key: (u64, u64)) -> usize {
        let bits = self.entries.len().trailing_zeros();
        (self.seed.hash_one(key) >> (64 - bits)) as usize
    }

    fn find(&self, key: (u64, u64)) -> Result<usize, usize> {
        if self.entries.is_empty() {
            return Err(0);
        }
        let mask = self.entries.len() - 1;
        let mut at = self.home(key);
        loop {
            let (low, high, slot) = self.entries[at];
            if slot == EMPTY {
                return Err(at);
            }
            if (low, high) == key {
                return Ok(at);
            }
            at = (at + 1) & mask;
        }
    }

    fn get(&self, key: (u64, u64)) -> Option<u32> {
        self.find(key).ok().map(|at| self.entries[at].2)
    }

    fn insert(&mut self, key: (u64, u64), slot: u32) {
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        match self.find(key) {
            Ok(at) => self.entries[at].2 = slot,
            Err(at) => {
                self.entries[at] = (key.0, key.1, slot);
                self.len += 1;
            }
        }
    }

    fn grow(&mut self) {
        let capacity = (self.entries.len() * 2).max(16);
        let old = std::mem::replace(&mut self.entries, vec![(0, 0, EMPTY); capacity]);
        for (low, high, slot) in old {
            if slot != EMPTY {
                if let Err(at) = self.find((low, high)) {
                    self.entries[at] = (low, high, slot);
                }
            }
        }
    }

    fn remove(&mut self, key: (u64, u64)) -> Option<u32> {
        let mut hole = self.find(key).ok()?;
        let removed = self.entries[hole].2;
        self.entries[hole].2 = EMPTY;
        self.len -= 1;
        // Backward shift: move each later entry of the run into the hole if its home is not
        // between the hole and where it sits (cyclically), so every run stays unbroken.
        let mask = self.entries.len() - 1;
        let mut at = (hole + 1) & mask;
        loop {
            let (low, high, slot) = self.entries[at];
            if slot == EMPTY {
                break;
            }
            let home = self.home((low, high));
            let stays = if hole <= at {
                hole < home && home <= at
            } else {
                hole < home || home <= at
            };
            if !stays {
                self.entries[hole] = (low, high, slot);
                self.entries[at].2 = EMPTY;
                hole = at;
            }
            at = (at + 1) & mask;
        }
        Some(removed)
    }
}

/// `name` packed into two words (little-endian, zero-padded), when that is unambiguous.
fn packed(name: &str) -> Option<(u64, u64)> {
    let bytes = name.as_bytes();
    if bytes.len() > 16 || bytes.contains(&0) {
        return None;
    }
    let mut buffer = [0u8; 16];
    buffer[..bytes.len()].copy_from_slice(bytes);
    let mut low = [0u8; 8];
    let mut high = [0u8; 8];
    low.copy_from_slice(&buffer[..8]);
    high.copy_from_slice(&buffer[8..]);
    Some((u64::from_le_bytes(low), u64::from_le_bytes(high)))
}

impl NameIndex {
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        match packed(name) {
            Some(key) => self.short.get(key),
            None => self.long.get(name).copied(),
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub(crate) fn insert(&mut self, name: &str, slot: u32) {
        match packed(name) {
            Some(key) => self.short.insert(key, slot),
            None => {
                self.long.insert(name.into(), slot);
            }
        }
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<u32> {
        match packed(name) {
            Some(key) => self.short.remove(key),
            None => self.long.remove(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equally_and_near_keys_differ() {
        let state = SeededState::default();
        assert_eq!(
            state.hash_one("u123456"),
            state.hash_one("u123456".to_string())
        );
        assert_ne!(state.hash_one("u123456"), state.hash_one("u123457"));
        assert_ne!(state.hash_one("a"), state.hash_one("a\0"));
        assert_ne!(state.hash_one(1u32), state.hash_one(2u32));
    }

    /// The regression this guards against is an unseeded hash: with one, every map of every
    /// process would put a key in the same place, and names colliding in one would collide in
    /// all. Two maps made one after the other in one thread must disagree (a chance of 2^-64
    /// that they agree by luck), and so must two name tables on where the same names sit.
    #[test]
    fn each_map_and_name_table_hashes_with_a_seed_of_its_own() {
        let first: FastMap<Box<str>, u32> = FastMap::default();
        let second: FastMap<Box<str>, u32> = FastMap::default();
        assert_ne!(
            first.hasher().hash_one("alice"),
            second.hasher().hash_one("alice")
        );
        assert_ne!(
            first.hasher().hash_one(7u32),
            second.hasher().hash_one(7u32)
        );

        let names: Vec<String> = (0..200).map(|number| format!("user{number}")).collect();
        let layout = |index: &NameIndex| -> Vec<u32> {
            index.short.entries.iter().map(|entry| entry.2).collect()
        };
        let mut one = NameIndex::default();
        let mut other = NameIndex::default();
        for (slot, name) in names.iter().enumerate() {
            one.insert(name, slot as u32);
            other.insert(name, slot as u32);
        }
        assert_eq!(one.short.entries.len(), other.short.entries.len());
        assert_ne!(layout(&one), layout(&other));
        // A clone keeps its seed, so it finds every name where the original put it.
        let clone = one.clone();
        assert_eq!(layout(&clone), layout(&one));
        for (slot, name) in names.iter().enumerate() {
            assert_eq!(clone.get(name), Some(slot as u32));
            assert_eq!(other.get(name), Some(slot as u32));
        }
    }

    #[test]
    fn names_short_and_long_with_and_without_nul_are_kept_apart() {
        let mut index = NameIndex::default();
        let names = [
            "",
            "a",
            "a\0",
            "1000000000000001",
            "10000000000000012",
            "u1",
            "u1\0\0",
            "main.default.customers",
        ];
        for (slot, name) in names.iter().enumerate() {
            index.insert(name, slot as u32);
        }
        for (slot, name) in names.iter().enumerate() {
            assert_eq!(index.get(name), Some(slot as u32), "{name:?}");
        }
        assert_eq!(index.get("1000000000000002"), None);
        assert_eq!(index.remove("a"), Some(1));
        assert_eq!(index.get("a"), None);
        assert_eq!(index.get("a\0"), Some(2));
        assert_eq!(index.remove("main.default.customers"), Some(7));
        assert!(!index.contains("main.default.customers"));
    }

    /// Random inserts, overwrites and removals (which shift entries back) agree with a
    /// `HashMap` at every step, through several growths.
    #[test]
    fn the_packed_table_agrees_with_a_hash_map() {
        let mut table = PackedTable::default();
        let mut reference = std::collections::HashMap::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for step in 0..40_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Few distinct keys, so that runs form and removals hit them.
            let key = (seed % 3_000, (seed >> 20) % 3);
            match (seed >> 40) % 5 {
                0 | 1 => {
                    table.insert(key, step);
                    reference.insert(key, step);
                }
                2 => assert_eq!(table.remove(key), reference.remove(&key), "step {step}"),
                _ => assert_eq!(table.get(key), reference.get(&key).copied(), "step {step}"),
            }
            assert_eq!(table.len, reference.len());
        }
        for (key, slot) in &reference {
            assert_eq!(table.get(*key), Some(*slot));
        }
    }
}
