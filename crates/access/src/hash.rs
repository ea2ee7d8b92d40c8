//! A small, fast hasher for the engine's own indices (principal ids, securable names, slots).
//!
//! The standard library's SipHash resists hash flooding, which these maps do not need: their
//! keys are principal ids and securable names that storage has already accepted, and every
//! lookup is on the hot path of a check. This hasher folds the input eight bytes at a time
//! with a rotate, an xor and one multiplication, and mixes the high bits down at the end so
//! that the low bits hashbrown uses to pick a bucket depend on the whole key.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// An odd constant with well-spread bits (2^64 divided by the golden ratio).
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hasher itself; see the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher {
    state: u64,
}

impl FastHasher {
    fn fold(&mut self, word: u64) {
        self.state = (self.state.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buffer = [0u8; 8];
            buffer.copy_from_slice(word);
            self.fold(u64::from_le_bytes(buffer));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buffer = [0u8; 8];
            buffer[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.fold(u64::from_le_bytes(buffer) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.fold(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.fold(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.fold(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.fold(value as u64);
    }

    fn finish(&self) -> u64 {
        let mixed = self.state ^ (self.state >> 32);
        mixed.wrapping_mul(MULTIPLIER) ^ (mixed >> 29)
    }
}

/// A `HashMap` keyed with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

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
}

const EMPTY: u32 = u32::MAX;

impl PackedTable {
    fn home(&self, key: (u64, u64)) -> usize {
        // Fibonacci hashing of both halves: the high bits, as many as the table needs.
        let mixed = (key.0 ^ key.1.rotate_left(29)).wrapping_mul(MULTIPLIER);
        let bits = self.entries.len().trailing_zeros();
        ((mixed ^ (mixed >> 31)).wrapping_mul(MULTIPLIER) >> (64 - bits)) as usize
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
    use std::hash::{BuildHasher, Hash};

    fn hash_of(value: impl Hash) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(value)
    }

    #[test]
    fn equal_keys_hash_equally_and_near_keys_differ() {
        assert_eq!(hash_of("u123456"), hash_of("u123456".to_string()));
        assert_ne!(hash_of("u123456"), hash_of("u123457"));
        assert_ne!(hash_of("a"), hash_of("a\0"));
        assert_ne!(hash_of(1u32), hash_of(2u32));
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

    #[test]
    fn consecutive_slots_spread_over_the_low_bits() {
        let buckets: std::collections::HashSet<u64> =
            (0u32..1024).map(|slot| hash_of(slot) & 1023).collect();
        // A perfect spread would fill all 1,024 buckets; random hashing fills about 647.
        assert!(buckets.len() > 550, "only {} buckets used", buckets.len());
    }
}
