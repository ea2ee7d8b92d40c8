//! Identifiers of accounts, workspaces and principals, and the injected source of new ones.

use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// An account: the unit of isolation. Every stored row carries one.
    AccountId
);
string_id!(
    /// A workspace inside an account.
    WorkspaceId
);
string_id!(
    /// A user, group or service principal, unique within its account.
    PrincipalId
);

/// Makes new identifiers. Injected so that tests can make them predictable.
pub trait IdGenerator: Send + Sync {
    /// A principal id made at `now`: decimal digits, as Databricks uses (int64 rendered as a
    /// string). Ids made later sort later, mostly (see [`RandomIds`]); they are not guaranteed
    /// unique across processes, which storage catches as a uniqueness conflict.
    fn principal_id(&self, now: crate::Timestamp) -> PrincipalId;
    /// A random UUID (version 4) in its usual text form, for service principal application ids.
    fn uuid(&self) -> String;
    /// `len` random bytes, for token secrets and salts.
    fn random_bytes(&self, len: usize) -> Vec<u8>;
}

/// The operating-system random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

/// The first id: sixteen digits, like Databricks ids.
const FIRST_PRINCIPAL_ID: u64 = 1_000_000_000_000_000;
/// 2025-01-01T00:00:00Z in seconds since the Unix epoch: ids count seconds from here.
const PRINCIPAL_ID_EPOCH_SECONDS: i64 = 1_735_689_600;
/// Ids made in one second share its `2^20` slots.
const PRINCIPAL_ID_SEQUENCE_BITS: u32 = 20;

impl IdGenerator for RandomIds {
    /// `10^15 + seconds since 2025 × 2^20 + sequence`: sixteen digits, and below 2^53 (until
    /// about 2265) so JavaScript clients keep them exact. Ordered by time so that a new
    /// principal's rows land at the right edge of every index keyed by id, instead of on a
    /// random page of each: with random ids every created user dirtied about four more
    /// random B-tree pages per commit, and creations ran at half the rate. The sequence starts
    /// at a random point in each process and counts up, so ids are unique within a process
    /// (up to 2^20 a second) and rarely collide between processes; storage reports a collision
    /// as a uniqueness conflict and the service draws again.
    fn principal_id(&self, now: crate::Timestamp) -> PrincipalId {
        use rand::Rng;
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQUENCE: AtomicU64 = AtomicU64::new(u64::MAX);
        let mask = (1u64 << PRINCIPAL_ID_SEQUENCE_BITS) - 1;
        let _ = SEQUENCE.compare_exchange(
            u64::MAX,
            rand::rng().random_range(0..=mask),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed) & mask;
        let seconds = now.as_micros() / 1_000_000 - PRINCIPAL_ID_EPOCH_SECONDS;
        let seconds = u64::try_from(seconds).unwrap_or(0);
        let number = FIRST_PRINCIPAL_ID + (seconds << PRINCIPAL_ID_SEQUENCE_BITS) + sequence;
        PrincipalId(number.to_string())
    }

    fn uuid(&self) -> String {
        let mut bytes = self.random_bytes(16);
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex = lower_hex(&bytes);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    fn random_bytes(&self, len: usize) -> Vec<u8> {
        use rand::RngCore;
        let mut bytes = vec![0u8; len];
        rand::rng().fill_bytes(&mut bytes);
        bytes
    }
}

/// `bytes` as lower-case hexadecimal, two digits a byte. Written by hand because it runs on
/// every request (the bearer token's digest): a `format!` per byte was 32 allocations each.
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn principal_ids_are_sixteen_digits_below_two_to_the_53() {
        for now in [
            crate::Timestamp::from_micros(1_735_689_600_000_000),
            crate::Timestamp::from_micros(1_795_000_000_000_000),
            // 2260: still sixteen digits and exact in a JavaScript number.
            crate::Timestamp::from_micros(9_183_000_000_000_000),
        ] {
            let id = RandomIds.principal_id(now);
            assert_eq!(id.as_str().len(), 16, "{id}");
            assert!(id.as_str().chars().all(|c| c.is_ascii_digit()));
            assert!(id.as_str().parse::<u64>().unwrap() < 1 << 53);
        }
    }

    #[test]
    fn later_ids_sort_later_and_one_process_never_repeats_one() {
        let early = crate::Timestamp::from_micros(1_795_000_000_000_000);
        let later = crate::Timestamp::from_micros(1_795_000_001_000_000);
        let first: Vec<PrincipalId> = (0..1000).map(|_| RandomIds.principal_id(early)).collect();
        let second = RandomIds.principal_id(later);
        assert!(first.iter().all(|id| id.as_str() < second.as_str()));
        let unique: std::collections::HashSet<&PrincipalId> = first.iter().collect();
        assert_eq!(unique.len(), 1000);
    }

    #[test]
    fn uuids_have_version_four_shape() {
        let uuid = RandomIds.uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }

    #[test]
    fn lower_hex_writes_two_digits_a_byte() {
        assert_eq!(super::lower_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::lower_hex(&[]), "");
    }
}
