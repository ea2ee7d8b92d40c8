//! Tamper evidence for Scimitar's audit trail. Pure: no I/O, no clock, no randomness of its own.
//!
//! - [`merkle`]: the RFC 9162 (Certificate Transparency) Merkle tree over a trail's entries,
//!   its root kept incrementally ([`merkle::Frontier`]), and inclusion and consistency proofs
//!   with their verification.
//! - [`checkpoint`]: a tree's size and root, signed with Ed25519 as a C2SP signed note, and
//!   the verifier key an auditor keeps.
//!
//! An auditor who holds one checkpoint detects any later edit, deletion, insertion or
//! reordering of the entries it covers: the trail's tree must extend the checkpoint's by a
//! consistency proof, and a tree that was altered or truncated does not.

pub mod checkpoint;
pub mod merkle;

pub use checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
pub use merkle::{Frontier, Hash};

/// Why a note, a checkpoint or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    #[error("malformed verifier key {0:?}")]
    MalformedVerifierKey(String),
    #[error("{0:?} is not a valid key name (non-empty, without spaces or '+')")]
    InvalidKeyName(String),
    #[error("the signature of key {0:?} does not verify")]
    BadSignature(String),
    #[error("the note carries no signature of key {0:?}")]
    NotSigned(String),
}
