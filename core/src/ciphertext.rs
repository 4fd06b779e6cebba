//! The split-AES ciphertext blob's format: what a client, the PKCS#11 module and the coordinator read from a blob
//! without any key (its version, key id, encryption receipt and length). Sealing and opening it is
//! `vhsm-protocols`' (`split_aes::blob`); the receipt's meaning is `split_aes::receipt`'s.
//!
//! Blob (version 2, written now), [`blob_len`]`(plaintext, t)` = 111 + 130·t bytes plus the plaintext for a
//! receipt of `t` entries:
//!
//! ```text
//! version (1 byte = 2) ‖ key_id (16) ‖ α (32) ‖ u16 len(receipt) ‖ receipt ‖ nonce (12)
//!     ‖ AES-256-GCM(plaintext ‖ ρ (32)) ‖ tag (16)
//! ```
//!
//! The receipt is a sequence of [`RECEIPT_ENTRY_LEN`]-byte entries (one per node that evaluated the encryption).
//! Version 1 (written before encryption receipts; still read): the same without `u16 len(receipt) ‖ receipt`,
//! [`MIN_BLOB_LEN`] = 109 bytes plus the plaintext.

/// Version byte of the blobs written now (with an encryption receipt).
pub const BLOB_VERSION: u8 = 2;
/// Version byte of the blobs written before encryption receipts (read, never written).
pub const BLOB_VERSION_1: u8 = 1;
/// Length of a key id.
pub const KEY_ID_LEN: usize = 16;
/// Length of the AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of ρ, the randomness sealed with the plaintext.
pub const RHO_LEN: usize = 32;
/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of one receipt entry: participant (u16) ‖ public share (32) ‖ evaluation (32) ‖ DLEQ proof (64).
pub const RECEIPT_ENTRY_LEN: usize = 2 + 32 + 32 + 64;
/// The longest receipt (its length is a u16).
pub const MAX_RECEIPT_LEN: usize = (u16::MAX as usize / RECEIPT_ENTRY_LEN) * RECEIPT_ENTRY_LEN;
/// `version ‖ key_id ‖ α` (version 1's whole header; version 2's starts so).
pub const HEADER_LEN: usize = 1 + KEY_ID_LEN + 32;
/// The shortest blob of any version (a version-1 blob of an empty plaintext).
pub const MIN_BLOB_LEN: usize = HEADER_LEN + NONCE_LEN + RHO_LEN + TAG_LEN;

/// The length of the version-2 blob of a `plaintext_len`-byte plaintext with a receipt of `receipt_entries`
/// entries (the key's threshold at encryption).
pub fn blob_len(plaintext_len: usize, receipt_entries: usize) -> usize {
    MIN_BLOB_LEN + 2 + receipt_entries * RECEIPT_ENTRY_LEN + plaintext_len
}

/// Why bytes are not a blob.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// A version this build does not read.
    #[error("split-AES blob of version {0}; this build reads versions {BLOB_VERSION_1} and {BLOB_VERSION}")]
    UnsupportedVersion(u8),
    /// Too short for its version (or its receipt).
    #[error("split-AES blob: truncated ({0} bytes)")]
    Truncated(usize),
    /// A receipt whose length is not a whole number of entries.
    #[error("split-AES blob: a receipt of {0} bytes is not a whole number of {RECEIPT_ENTRY_LEN}-byte entries")]
    Receipt(usize),
}

/// A parsed ciphertext blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiphertextBlob {
    /// [`BLOB_VERSION`] or [`BLOB_VERSION_1`].
    pub version: u8,
    /// The key's id.
    pub key_id: [u8; KEY_ID_LEN],
    /// The message input α (the DPRF input of this message's key).
    pub alpha: [u8; 32],
    /// The encryption receipt (whole entries; empty in a version-1 blob).
    pub receipt: Vec<u8>,
    /// The AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// `AES-256-GCM(plaintext ‖ ρ) ‖ tag`.
    pub sealed: Vec<u8>,
}

impl CiphertextBlob {
    /// Parses a blob of version 1 or 2; refuses other versions, input too short for its version and receipt, and
    /// a receipt that is not whole entries.
    pub fn parse(bytes: &[u8]) -> Result<CiphertextBlob, BlobError> {
        let truncated = || BlobError::Truncated(bytes.len());
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(BlobError::Truncated(0));
        };
        if version != BLOB_VERSION && version != BLOB_VERSION_1 {
            return Err(BlobError::UnsupportedVersion(version));
        }
        let (key_id, rest) = rest
            .split_first_chunk::<KEY_ID_LEN>()
            .ok_or_else(truncated)?;
        let (alpha, rest) = rest.split_first_chunk::<32>().ok_or_else(truncated)?;
        let (receipt, rest) = if version == BLOB_VERSION {
            let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(truncated)?;
            let len = usize::from(u16::from_be_bytes(*len));
            if !len.is_multiple_of(RECEIPT_ENTRY_LEN) {
                return Err(BlobError::Receipt(len));
            }
            if rest.len() < len {
                return Err(truncated());
            }
            rest.split_at(len)
        } else {
            (&[][..], rest)
        };
        let (nonce, sealed) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(truncated)?;
        if sealed.len() < RHO_LEN + TAG_LEN {
            return Err(truncated());
        }
        Ok(CiphertextBlob {
            version,
            key_id: *key_id,
            alpha: *alpha,
            receipt: receipt.to_vec(),
            nonce: *nonce,
            sealed: sealed.to_vec(),
        })
    }

    /// The blob's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = self.header();
        let mut out = Vec::with_capacity(header.len() + NONCE_LEN + self.sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.sealed);
        out
    }

    /// Everything before the nonce: `version ‖ key_id ‖ α` (and, in version 2, `‖ u16 len ‖ receipt`).
    pub fn header(&self) -> Vec<u8> {
        if self.version == BLOB_VERSION_1 {
            let mut out = Vec::with_capacity(HEADER_LEN);
            out.push(BLOB_VERSION_1);
            out.extend_from_slice(&self.key_id);
            out.extend_from_slice(&self.alpha);
            out
        } else {
            header(&self.key_id, &self.alpha, &self.receipt)
        }
    }
}

/// The version-2 header `version ‖ key_id ‖ α ‖ u16 len(receipt) ‖ receipt` of `(key_id, α, receipt)`. A receipt
/// longer than [`MAX_RECEIPT_LEN`] is cut there (such a receipt is never made: it would be 504 nodes).
pub fn header(key_id: &[u8; KEY_ID_LEN], alpha: &[u8; 32], receipt: &[u8]) -> Vec<u8> {
    let receipt = receipt.get(..MAX_RECEIPT_LEN).unwrap_or(receipt);
    let mut out = Vec::with_capacity(HEADER_LEN + 2 + receipt.len());
    out.push(BLOB_VERSION);
    out.extend_from_slice(key_id);
    out.extend_from_slice(alpha);
    out.extend_from_slice(&u16::try_from(receipt.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(receipt);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn blob(version: u8, receipt_entries: usize, plaintext: usize) -> CiphertextBlob {
        CiphertextBlob {
            version,
            key_id: [1; KEY_ID_LEN],
            alpha: [2; 32],
            receipt: vec![9; receipt_entries * RECEIPT_ENTRY_LEN],
            nonce: [3; NONCE_LEN],
            sealed: vec![4; RHO_LEN + TAG_LEN + plaintext],
        }
    }

    #[test]
    fn parse_round_trip_and_refusals() {
        for (version, entries) in [(BLOB_VERSION_1, 0), (BLOB_VERSION, 0), (BLOB_VERSION, 3)] {
            let blob = blob(version, entries, 5);
            let bytes = blob.to_bytes();
            let expected = if version == BLOB_VERSION {
                blob_len(5, entries)
            } else {
                MIN_BLOB_LEN + 5
            };
            assert_eq!(bytes.len(), expected);
            assert_eq!(CiphertextBlob::parse(&bytes).unwrap(), blob);
            for len in 0..bytes.len() - 5 {
                assert!(CiphertextBlob::parse(&bytes[..len]).is_err(), "len {len}");
            }
        }
        let mut v3 = blob(BLOB_VERSION, 1, 0).to_bytes();
        v3[0] = 3;
        assert_eq!(
            CiphertextBlob::parse(&v3),
            Err(BlobError::UnsupportedVersion(3))
        );
        // A receipt length that is not whole entries.
        let mut bad = blob(BLOB_VERSION, 1, 0).to_bytes();
        bad[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&129u16.to_be_bytes());
        assert_eq!(CiphertextBlob::parse(&bad), Err(BlobError::Receipt(129)));
    }
}
