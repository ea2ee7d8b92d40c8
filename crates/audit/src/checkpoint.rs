//! Checkpoints: a tree's origin, size and root, signed with Ed25519 in the C2SP signed-note
//! format (`c2sp.org/signed-note`, `c2sp.org/tlog-checkpoint`), so that any tool of that
//! ecosystem, or the few lines in `docs/design/audit.md`, can check them offline.
//!
//! A note is its text (ending in a newline), an empty line, and one line per signature:
//! `— <key name> <base64(key id || signature)>`. The key id is the first four bytes of
//! `SHA-256(key name || "\n" || 0x01 || public key)`; the signature covers the text.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;
use crate::AuditError;

/// The signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// What starts a signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A tree's state as a log publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log, e.g. `scimitar.example.com/audit/<account>`; equal to the signing
    /// key's name.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size (decimal) and base64 root, one per line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads a note text written by [`Checkpoint::body`]; extension lines after the root are
    /// allowed by the format and ignored.
    pub fn parse_body(text: &str) -> Result<Checkpoint, AuditError> {
        let malformed = |why: &str| AuditError::MalformedCheckpoint(why.to_string());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("the text does not end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|origin| !origin.is_empty());
        let origin = origin.ok_or_else(|| malformed("no origin line"))?;
        let size = lines.next().ok_or_else(|| malformed("no size line"))?;
        let canonical = size == "0" || !size.starts_with('0');
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| canonical && size.bytes().all(|byte| byte.is_ascii_digit()))
            .ok_or_else(|| malformed("the size is not a decimal number"))?;
        let root = lines.next().ok_or_else(|| malformed("no root line"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| malformed("the root is not a base64 SHA-256 hash"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// The four-byte id of an Ed25519 key named `name`.
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key name as signed notes allow: non-empty, printable, without spaces or `+`.
fn check_name(name: &str) -> Result<(), AuditError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '+');
    if valid {
        Ok(())
    } else {
        Err(AuditError::InvalidKeyName(name.to_string()))
    }
}

/// Signs notes with one named Ed25519 key.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: [u8; 4],
}

impl NoteSigner {
    /// The key of a 32-byte seed (drawn by the caller from its source of randomness, and kept
    /// by the deployment).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<NoteSigner, AuditError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, &key.verifying_key());
        Ok(NoteSigner {
            name: name.to_string(),
            key,
            id,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public half, to publish.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// The signed note of `text`, which must end in a newline and hold no empty line.
    pub fn sign(&self, text: &str) -> Result<String, AuditError> {
        let malformed = |why: &str| AuditError::MalformedNote(why.to_string());
        if !text.ends_with('\n') || text.contains("\n\n") || text.starts_with('\n') {
            return Err(malformed(
                "the text must end in a newline and hold no empty line",
            ));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(malformed("the text holds a control character"));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut signed = Vec::with_capacity(68);
        signed.extend_from_slice(&self.id);
        signed.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(signed)
        ))
    }

    /// The signed note of a checkpoint, which names this key as its origin.
    pub fn sign_checkpoint(&self, size: u64, root: &Hash) -> Result<String, AuditError> {
        let checkpoint = Checkpoint {
            origin: self.name.clone(),
            size,
            root: *root,
        };
        self.sign(&checkpoint.body())
    }
}

/// Checks notes signed by one named Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    id: [u8; 4],
}

impl NoteVerifier {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key in the signed-note verifier key form an auditor keeps:
    /// `<name>+<key id, 8 hex digits>+<base64(0x01 || public key)>`.
    pub fn to_verifier_key(&self) -> String {
        let mut typed = Vec::with_capacity(33);
        typed.push(ED25519);
        typed.extend_from_slice(self.key.as_bytes());
        let id: String = self.id.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("{}+{id}+{}", self.name, STANDARD.encode(typed))
    }

    /// Reads a verifier key written by [`NoteVerifier::to_verifier_key`], checking that its
    /// id matches its name and key.
    pub fn from_verifier_key(text: &str) -> Result<NoteVerifier, AuditError> {
        let malformed = || AuditError::MalformedVerifierKey(text.to_string());
        // Names hold no '+', but base64 does: the key is everything after the second '+'.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        check_name(name)?;
        let typed = STANDARD.decode(key).map_err(|_| malformed())?;
        let (&kind, key) = typed.split_first().ok_or_else(malformed)?;
        let key: [u8; 32] = key.try_into().map_err(|_| malformed())?;
        if kind != ED25519 {
            return Err(malformed());
        }
        let key = VerifyingKey::from_bytes(&key).map_err(|_| malformed())?;
        let expected: String = key_id(name, &key)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        if id != expected {
            return Err(malformed());
        }
        Ok(NoteVerifier {
            name: name.to_string(),
            id: key_id(name, &key),
            key,
        })
    }

    /// The text of `note` when this key signed it. Signatures of other keys are ignored, as
    /// the format asks; a signature of this key's name and id that does not verify, or none at
    /// all, refuses the note.
    pub fn verify<'a>(&self, note: &'a str) -> Result<&'a str, AuditError> {
        let malformed = |why: &str| AuditError::MalformedNote(why.to_string());
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no empty line before the signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        if !signatures.ends_with('\n') {
            return Err(malformed("the signatures do not end in a newline"));
        }
        let mut verified = false;
        for line in signatures.lines() {
            let line = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed("a signature line does not start with an em dash"))?;
            let (name, signature) = line
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line has no signature"))?;
            let signature = STANDARD
                .decode(signature)
                .map_err(|_| malformed("a signature is not base64"))?;
            if name != self.name || signature.len() < 4 || signature[..4] != self.id {
                continue;
            }
            let signature = Signature::from_slice(&signature[4..])
                .map_err(|_| AuditError::BadSignature(self.name.clone()))?;
            self.key
                .verify(text.as_bytes(), &signature)
                .map_err(|_| AuditError::BadSignature(self.name.clone()))?;
            verified = true;
        }
        if verified {
            Ok(text)
        } else {
            Err(AuditError::NotSigned(self.name.clone()))
        }
    }

    /// The checkpoint of a note this key signed, whose origin must be this key's name.
    pub fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint, AuditError> {
        let checkpoint = Checkpoint::parse_body(self.verify(note)?)?;
        if checkpoint.origin != self.name {
            return Err(AuditError::MalformedCheckpoint(format!(
                "its origin {:?} is not the key's name {:?}",
                checkpoint.origin, self.name
            )));
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::merkle::{leaf_hash, root};

    fn signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::from_seed(name, &[seed; 32]).unwrap()
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_reads_back() {
        let log = signer("scimitar.test/audit/1", 7);
        let tree_root = root(&[leaf_hash(b"a"), leaf_hash(b"b")]);
        let note = log.sign_checkpoint(2, &tree_root).unwrap();
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(lines[0], "scimitar.test/audit/1");
        assert_eq!(lines[1], "2");
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} scimitar.test/audit/1 "));
        let checkpoint = log.verifier().verify_checkpoint(&note).unwrap();
        assert_eq!(
            checkpoint,
            Checkpoint {
                origin: "scimitar.test/audit/1".into(),
                size: 2,
                root: tree_root
            }
        );
    }

    #[test]
    fn an_altered_note_or_another_key_is_refused() {
        let log = signer("scimitar.test/audit/1", 7);
        let note = log.sign_checkpoint(2, &[9; 32]).unwrap();
        let verifier = log.verifier();
        // A changed size: the signature no longer verifies.
        let altered = note.replacen("\n2\n", "\n3\n", 1);
        assert!(matches!(
            verifier.verify(&altered),
            Err(AuditError::BadSignature(_))
        ));
        // The same name with another key: its signature is not this key's (other id).
        let impostor = signer("scimitar.test/audit/1", 8);
        let forged = impostor.sign_checkpoint(2, &[9; 32]).unwrap();
        assert!(matches!(
            verifier.verify(&forged),
            Err(AuditError::NotSigned(_))
        ));
        // A second, unknown signature is ignored; this key's still counts.
        let witness = signer("witness.test", 3);
        let cosigned = format!(
            "{note}{}",
            witness
                .sign(log.verifier().verify(&note).unwrap())
                .unwrap()
                .split("\n\n")
                .nth(1)
                .unwrap()
        );
        assert!(verifier.verify(&cosigned).is_ok());
        // Bytes flipped inside this key's signature.
        let mut broken = note.clone().into_bytes();
        let at = broken.len() - 6;
        broken[at] = if broken[at] == b'A' { b'B' } else { b'A' };
        let broken = String::from_utf8(broken).unwrap();
        assert!(verifier.verify(&broken).is_err());
    }

    #[test]
    fn verifier_keys_round_trip_and_a_wrong_id_is_refused() {
        let verifier = signer("scimitar.test/audit/1", 7).verifier();
        let text = verifier.to_verifier_key();
        assert_eq!(NoteVerifier::from_verifier_key(&text).unwrap(), verifier);
        let (name, rest) = text.split_once('+').unwrap();
        let wrong_id = format!("{name}+00000000+{}", rest.split_once('+').unwrap().1);
        assert!(NoteVerifier::from_verifier_key(&wrong_id).is_err());
        assert!(NoteVerifier::from_verifier_key("no-plus-signs").is_err());
    }

    #[test]
    fn a_verifier_key_whose_base64_holds_a_plus_reads_back() {
        let keys: Vec<String> = (0..=255u8)
            .map(|seed| {
                signer("scimitar.test/audit/1", seed)
                    .verifier()
                    .to_verifier_key()
            })
            .filter(|text| text.matches('+').count() > 2)
            .collect();
        assert!(!keys.is_empty(), "some key's base64 holds a '+'");
        for text in keys {
            let verifier = NoteVerifier::from_verifier_key(&text).unwrap();
            assert_eq!(verifier.to_verifier_key(), text);
        }
    }

    #[test]
    fn malformed_texts_and_names_are_refused() {
        assert!(NoteSigner::from_seed("has space", &[1; 32]).is_err());
        assert!(NoteSigner::from_seed("has+plus", &[1; 32]).is_err());
        assert!(NoteSigner::from_seed("", &[1; 32]).is_err());
        let log = signer("log", 1);
        assert!(log.sign("no newline").is_err());
        assert!(log.sign("empty\n\nline\n").is_err());
        for body in [
            "log\n01\nAAAA\n",
            "log\n-1\n",
            "log\n1\nnot base64!\n",
            "log\n1\n",
            "\n1\nAAAA\n",
        ] {
            assert!(Checkpoint::parse_body(body).is_err(), "{body:?}");
        }
        // A note whose origin is not the key's name is not this log's checkpoint.
        let other_origin = log.sign("elsewhere\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
        let error = log
            .verifier()
            .verify_checkpoint(&other_origin.unwrap())
            .unwrap_err();
        assert!(matches!(error, AuditError::MalformedCheckpoint(_)));
    }
}
