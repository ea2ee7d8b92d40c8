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
    fn consecutive_slots_spread_over_the_low_bits() {
        let buckets: std::collections::HashSet<u64> =
            (0u32..1024).map(|slot| hash_of(slot) & 1023).collect();
        // A perfect spread would fill all 1,024 buckets; random hashing fills about 647.
        assert!(buckets.len() > 550, "only {} buckets used", buckets.len());
    }
}
