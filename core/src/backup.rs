//! A node's backup file, the part anyone may read: its layout and its clear header. The sealed body is the
//! node's own (`vhsm-node`'s `backup` module); the coordinator and the `vhsm` command read only the header.
//!
//! ```text
//! magic "vHSM-node-backup" (16) ‖ format version (1) ‖ header length (4, BE) ‖ header (postcard) ‖ sealed body
//! ```
//!
//! The **header** ([`BackupHeader`]: format, node id, creation time, and every key's id, epoch and state) is readable
//! without the storage key, so that the coordinator can check the epochs against the cluster before a restore.

use serde::{Deserialize, Serialize};

use crate::{KeyId, KeyState, NodeId};

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
    let (header_bytes, body) = rest.split_at(len);
    let header: BackupHeader =
        postcard::from_bytes(header_bytes).map_err(|e| bad(&format!("header: {e}")))?;
    // One encoding per header: no bytes after it, no over-long numbers (the restore compares it with the sealed
    // copy by value, so a second encoding would let bytes be changed unnoticed).
    if postcard::to_stdvec(&header).ok().as_deref() != Some(header_bytes) {
        return Err(bad("the header is not in its one canonical encoding"));
    }
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
        // A byte added inside the header (its length adjusted), found by fuzzing: refused.
        let mut inner = header_bytes_of(&file).to_vec();
        inner.push(0);
        let mut padded = MAGIC.to_vec();
        padded.push(FORMAT_VERSION);
        padded.extend_from_slice(&u32::try_from(inner.len()).unwrap().to_be_bytes());
        padded.extend_from_slice(&inner);
        padded.extend_from_slice(b"sealed");
        assert!(read_header(&padded)
            .unwrap_err()
            .to_string()
            .contains("canonical"));
        let mut long = file;
        long[20] = 0xff;
        assert!(read_header(&long).is_err());
    }

    fn header_bytes_of(file: &[u8]) -> &[u8] {
        let len = u32::from_be_bytes(file[17..21].try_into().unwrap()) as usize;
        &file[21..21 + len]
    }
}
