//! A node's backup file: its keys (metadata and shares), objects and membership, sealed under its storage key.
//!
//! ```text
//! magic "vHSM-node-backup" (16) ‖ format version (1) ‖ header length (4, BE) ‖ header (postcard) ‖ sealed body
//! ```
//!
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
use vhsm_core::{KeyId, KeyState, Membership, StoredObject};
use vhsm_wire::NodeId;
use zeroize::Zeroizing;

/// The file's first bytes.
pub const MAGIC: &[u8; 16] = b"vHSM-node-backup";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The largest header a reader accepts.
const MAX_HEADER: usize = 4 * 1024 * 1024;

/// One key in a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupKey {
    /// The key.
    pub id: KeyId,
    /// Its share epoch in the backup.
    pub epoch: u64,
    /// Its lifecycle state in the backup.
    pub state: KeyState,
}

/// What a backup holds, readable without the storage key (and authenticated by the sealed body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// [`FORMAT_VERSION`].
    pub format: u8,
    /// The node that wrote it: only this node restores it.
    pub node: NodeId,
    /// When, seconds since the Unix epoch.
    pub created_unix: u64,
    /// Every key in it.
    pub keys: Vec<BackupKey>,
}

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

/// Why a backup file cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("not a readable vHSM node backup: {0}")]
pub struct BackupFormatError(pub String);

/// Reads the clear header of a backup file and returns it with the sealed body.
pub fn read_header(file: &[u8]) -> Result<(BackupHeader, &[u8]), BackupFormatError> {
    let bad = |why: &str| BackupFormatError(why.to_string());
    let rest = file
        .strip_prefix(&MAGIC[..])
        .ok_or_else(|| bad("it does not start with the backup magic"))?;
    let (version, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
    if *version != FORMAT_VERSION {
        return Err(bad(&format!(
            "format version {version}, this build reads version {FORMAT_VERSION}"
        )));
    }
    if rest.len() < 4 {
        return Err(bad("truncated"));
    }
    let (len, rest) = rest.split_at(4);
    let mut len_bytes = [0u8; 4];
    len_bytes.copy_from_slice(len);
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).unwrap_or(usize::MAX);
    if len > MAX_HEADER || len > rest.len() {
        return Err(bad("header length out of range"));
    }
    let (header, body) = rest.split_at(len);
    let header: BackupHeader =
        postcard::from_bytes(header).map_err(|e| bad(&format!("header: {e}")))?;
    if header.format != FORMAT_VERSION {
        return Err(bad("header format does not match"));
    }
    Ok((header, body))
}

/// Lays out a backup file from its header and sealed body.
pub fn write_file(header: &BackupHeader, sealed_body: &[u8]) -> Result<Vec<u8>, BackupFormatError> {
    let header = postcard::to_stdvec(header).map_err(|e| BackupFormatError(e.to_string()))?;
    let len =
        u32::try_from(header.len()).map_err(|_| BackupFormatError("header too long".into()))?;
    let mut out = Vec::with_capacity(MAGIC.len() + 5 + header.len() + sealed_body.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(sealed_body);
    Ok(out)
}

/// Encodes a body for sealing.
pub fn encode_body(body: &BackupBody) -> Result<Zeroizing<Vec<u8>>, BackupFormatError> {
    postcard::to_stdvec(body)
        .map(Zeroizing::new)
        .map_err(|e| BackupFormatError(e.to_string()))
}

/// Decodes an opened body.
pub fn decode_body(plain: &[u8]) -> Result<BackupBody, BackupFormatError> {
    postcard::from_bytes(plain).map_err(|e| BackupFormatError(format!("body: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn header_round_trip_and_bad_files() {
        let header = BackupHeader {
            format: FORMAT_VERSION,
            node: 2,
            created_unix: 7,
            keys: vec![BackupKey {
                id: KeyId([1; 16]),
                epoch: 3,
                state: KeyState::Active,
            }],
        };
        let file = write_file(&header, b"sealed").unwrap();
        let (read, body) = read_header(&file).unwrap();
        assert_eq!((read, body), (header, &b"sealed"[..]));
        assert!(read_header(&file[..10]).is_err());
        let mut other = file.clone();
        other[16] = 9;
        assert!(read_header(&other)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
        let mut long = file;
        long[20] = 0xff;
        assert!(read_header(&long).is_err());
    }
}
