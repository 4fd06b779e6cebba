//! A node's backup file: its keys (metadata and shares), objects and membership, sealed under its storage key.
//!
//! ```text
//! magic "vHSM-node-backup" (16) ‖ format version (1) ‖ header length (4, BE) ‖ header (postcard) ‖ sealed body
//! ```
//!
//! The file's layout and clear header are `vhsm_core::backup` (the coordinator reads the header too).
//! The **header** ([`BackupHeader`]: format, node id, creation time, and every key's id, epoch and state) is readable
//! without the storage key, so that the coordinator can check the epochs against the cluster before a restore.
//! The **body** is a record sealed like every other ([`crate::seal`], kind `Backup`, subject this node, epoch the
//! creation time) under the node's storage key; it holds the header again (a restore refuses a file whose clear
//! header differs from the sealed one), the keys' sealed metadata and share records exactly as they are in the
//! store (so the shares are encrypted twice under the node's key), the objects and the membership. Only the node
//! that wrote it, with its storage key (so: unsealed), can read or restore it; a flipped byte anywhere is refused.
//!
//! Only keys that have shares are backed up (not pending ones, not destroyed tombstones), and only their current
//! epoch (a staged reshare is not). A share is worth restoring only while the cluster is at the same epoch: after
//! a refresh or reshare the old shares no longer combine with the others', and the coordinator refuses the
//! restore (see `vhsm node restore`).

use serde::{Deserialize, Serialize};
use vhsm_core::{KeyId, Membership, StoredObject};
use zeroize::Zeroizing;

pub use vhsm_core::backup::{
    read_header, write_file, BackupFormatError, BackupHeader, BackupKey, FORMAT_VERSION, MAGIC,
};

/// A key's records as the store holds them (each sealed under the node's storage key).
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyRecords {
    /// The key.
    pub id: KeyId,
    /// Its sealed metadata record.
    pub info: Vec<u8>,
    /// Its sealed share record.
    pub share: Vec<u8>,
}

/// The sealed part of a backup.
#[derive(Serialize, Deserialize)]
pub struct BackupBody {
    /// The header again, authenticated.
    pub header: BackupHeader,
    /// The keys' records.
    pub keys: Vec<KeyRecords>,
    /// Every stored object.
    pub objects: Vec<StoredObject>,
    /// The membership the node had.
    pub membership: Option<Membership>,
}

/// Encodes a body for sealing.
pub fn encode_body(body: &BackupBody) -> Result<Zeroizing<Vec<u8>>, BackupFormatError> {
    postcard::to_stdvec(body)
        .map(Zeroizing::new)
        .map_err(|e| BackupFormatError(e.to_string()))
}

/// Decodes an opened body.
pub fn decode_body(plain: &[u8]) -> Result<BackupBody, BackupFormatError> {
    match postcard::take_from_bytes(plain) {
        Ok((body, [])) => Ok(body),
        Ok(_) => Err(BackupFormatError("body: bytes after its end".into())),
        Err(e) => Err(BackupFormatError(format!("body: {e}"))),
    }
}
