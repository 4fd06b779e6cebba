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
