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
    /// A principal id: decimal digits, as Databricks uses (int64 rendered as a string).
    fn principal_id(&self) -> PrincipalId;
    /// A random UUID (version 4) in its usual text form, for service principal application ids.
    fn uuid(&self) -> String;
    /// `len` random bytes, for token secrets and salts.
    fn random_bytes(&self, len: usize) -> Vec<u8>;
}

/// The operating-system random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn principal_id(&self) -> PrincipalId {
        use rand::Rng;
        // Sixteen digits, like Databricks ids, and below 2^53 so JavaScript clients keep them exact.
        let number: u64 = rand::rng().random_range(1_000_000_000_000_000..9_007_199_254_740_991);
        PrincipalId(number.to_string())
    }

    fn uuid(&self) -> String {
        let mut bytes = self.random_bytes(16);
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_ids_are_sixteen_digits() {
        let id = RandomIds.principal_id();
        assert_eq!(id.as_str().len(), 16);
        assert!(id.as_str().chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn uuids_have_version_four_shape() {
        let uuid = RandomIds.uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }
}
