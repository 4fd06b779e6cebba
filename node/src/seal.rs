//! Sealing of stored records: AES-256-GCM under the node's storage key.
//!
//! Every record is sealed with associated data that binds the node id, the record kind, the key id and the share
//! epoch, so that a record copied to another key, another node or another kind of record does not open. redb does
//! not detect a flipped byte in place; the AEAD tag does.
//!
//! Sealed record layout (version 1): `version (1) ‖ epoch (8, big-endian) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.

use std::{fmt, path::Path};

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use vhsm_wire::{KeyId, NodeId, ObjectId};

const RECORD_VERSION: u8 = 1;
const AAD_TAG: &[u8] = b"vhsm/sealed-record/v1";

/// What a sealed record holds; part of its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// A key share (subject: the key id).
    Share = 1,
    /// A key's metadata (subject: the key id).
    KeyInfo = 2,
    /// A peer this node refuses to run OT-based protocols with (subject: the peer's node id).
    Ban = 3,
    /// A stored object: a certificate or data object (subject: the object id).
    Object = 4,
    /// The cluster membership this node was last given (subject: this node's id; epoch: the membership version).
    Membership = 5,
}

/// Why a record could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The record's tag does not verify: tampered, copied from elsewhere, or sealed under another key.
    #[error("sealed {kind:?} record for {subject} does not open: it was altered, copied from another key or node, or sealed under another storage key")]
    Tampered {
        /// What the record was read for (hex).
        subject: String,
        /// Its kind.
        kind: RecordKind,
    },
    /// The record is in a format this build does not know.
    #[error("sealed record in unknown format version {0}")]
    Version(u8),
    /// The record is too short to be a sealed record.
    #[error("sealed record is truncated")]
    Truncated,
    /// The storage key file is missing or malformed.
    #[error("storage key: {0}")]
    KeyFile(String),
}

/// The node's storage key. Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; 32]);

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(<redacted>)")
    }
}

impl StorageKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        StorageKey(key)
    }

    /// The key as 64 hex digits, for writing a development key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// Reads a key file (64 hex digits). Refuses a file that others may read.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| SealError::KeyFile(format!("cannot read {}: {e}", path.display())))?;
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(SealError::KeyFile(format!(
                    "{} is readable by other users (mode {:o}); run: chmod 600 {}",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )));
            }
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| SealError::KeyFile(format!("cannot read {}: {e}", path.display())))?,
        );
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), &mut *bytes).map_err(|_| {
            SealError::KeyFile(format!("{} does not hold 64 hex digits", path.display()))
        })?;
        Ok(StorageKey(*bytes))
    }

    /// Writes a key file with mode 0600, refusing to overwrite an existing one.
    pub fn write_new(&self, path: &Path) -> Result<(), SealError> {
        write_private_file(path, self.to_hex().as_bytes())
            .map_err(|e| SealError::KeyFile(format!("cannot write {}: {e}", path.display())))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }
}

/// Creates `path` readable and writable by its owner only (mode 0600), writes `contents` and syncs it. Refuses to
/// overwrite an existing file.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// What a record is about: a key (its id) or a peer node (its id). Part of the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A key.
    Key(KeyId),
    /// A node.
    Node(NodeId),
    /// A stored object.
    Object(ObjectId),
}

impl Subject {
    fn bytes(self) -> Vec<u8> {
        match self {
            Subject::Key(id) => id.0.to_vec(),
            Subject::Node(id) => id.to_be_bytes().to_vec(),
            Subject::Object(id) => id.0.to_vec(),
        }
    }

    fn describe(self) -> String {
        match self {
            Subject::Key(id) => format!("key {id}"),
            Subject::Node(id) => format!("node {id}"),
            Subject::Object(id) => format!("object {id}"),
        }
    }
}

fn associated_data(node: NodeId, kind: RecordKind, subject: Subject, epoch: u64) -> Vec<u8> {
    let subject = subject.bytes();
    let mut aad = Vec::with_capacity(AAD_TAG.len() + 2 + 1 + 1 + subject.len() + 8);
    aad.extend_from_slice(AAD_TAG);
    aad.extend_from_slice(&node.to_be_bytes());
    aad.push(kind as u8);
    // Length-prefixed, so that subjects of different lengths never collide.
    aad.push(u8::try_from(subject.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(&subject);
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad
}

/// Seals `plaintext` as a record of `kind` about `subject` at `epoch` on node `node`.
pub fn seal(
    key: &StorageKey,
    node: NodeId,
    kind: RecordKind,
    subject: Subject,
    epoch: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let aad = associated_data(node, kind, subject, epoch);
    // Encryption with a valid key and nonce only fails for inputs beyond 64 GiB, which no record is.
    let sealed = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + 8 + 12 + sealed.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens a record sealed by [`seal`]; returns its epoch and plaintext.
pub fn open(
    key: &StorageKey,
    node: NodeId,
    kind: RecordKind,
    subject: Subject,
    record: &[u8],
) -> Result<(u64, Zeroizing<Vec<u8>>), SealError> {
    let (version, rest) = record.split_first().ok_or(SealError::Truncated)?;
    if *version != RECORD_VERSION {
        return Err(SealError::Version(*version));
    }
    if rest.len() < 8 + 12 + 16 {
        return Err(SealError::Truncated);
    }
    let (epoch, rest) = rest.split_at(8);
    let (nonce, sealed) = rest.split_at(12);
    let mut epoch_bytes = [0u8; 8];
    epoch_bytes.copy_from_slice(epoch);
    let epoch = u64::from_be_bytes(epoch_bytes);
    let aad = associated_data(node, kind, subject, epoch);
    let plaintext = key
        .cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Tampered {
            subject: subject.describe(),
            kind,
        })?;
    Ok((epoch, Zeroizing::new(plaintext)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn sealed_records_open_only_where_they_belong() {
        let key = StorageKey::generate();
        let id = Subject::Key(KeyId([7; 16]));
        let record = seal(&key, 1, RecordKind::Share, id, 3, b"secret share");
        let (epoch, plain) = open(&key, 1, RecordKind::Share, id, &record).unwrap();
        assert_eq!((epoch, plain.as_slice()), (3, &b"secret share"[..]));
        assert!(!record.windows(12).any(|w| w == b"secret share"));

        // Another node, kind, key id, or storage key: refused.
        assert!(open(&key, 2, RecordKind::Share, id, &record).is_err());
        assert!(open(&key, 1, RecordKind::KeyInfo, id, &record).is_err());
        assert!(open(
            &key,
            1,
            RecordKind::Share,
            Subject::Key(KeyId([8; 16])),
            &record
        )
        .is_err());
        assert!(open(&key, 1, RecordKind::Share, Subject::Node(7), &record).is_err());
        assert!(open(&StorageKey::generate(), 1, RecordKind::Share, id, &record).is_err());

        // Any flipped byte, including the epoch in the header: refused.
        for i in 0..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 1;
            assert!(
                open(&key, 1, RecordKind::Share, id, &bad).is_err(),
                "byte {i}"
            );
        }
        assert!(matches!(
            open(&key, 1, RecordKind::Share, id, &record[..20]),
            Err(SealError::Truncated)
        ));
    }

    #[test]
    fn key_file_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.key");
        let key = StorageKey::generate();
        key.write_new(&path).unwrap();
        let loaded = StorageKey::load(&path).unwrap();
        assert_eq!(key.0, loaded.0);
        assert!(key.write_new(&path).is_err(), "must not overwrite");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = StorageKey::load(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
