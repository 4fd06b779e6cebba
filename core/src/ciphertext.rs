//! The split-AES ciphertext blob's format: what a client, the PKCS#11 module and the coordinator read from a blob
//! without any key (its version, key id and length). Sealing and opening it is `vhsm-protocols`'
//! (`split_aes::blob`).
//!
//! Blob (version 1), [`MIN_BLOB_LEN`] = 109 bytes plus the plaintext:
//!
//! ```text
//! version (1 byte = 1) ‖ key_id (16) ‖ α (32) ‖ nonce (12) ‖ AES-256-GCM(plaintext ‖ ρ (32)) ‖ tag (16)
//! ```

/// Version byte of the blob.
pub const BLOB_VERSION: u8 = 1;
/// Length of a key id.
pub const KEY_ID_LEN: usize = 16;
/// Length of the AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of ρ, the randomness sealed with the plaintext.
pub const RHO_LEN: usize = 32;
/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// `version ‖ key_id ‖ α`.
pub const HEADER_LEN: usize = 1 + KEY_ID_LEN + 32;
/// The shortest blob (empty plaintext).
pub const MIN_BLOB_LEN: usize = HEADER_LEN + NONCE_LEN + RHO_LEN + TAG_LEN;

/// Why bytes are not a blob.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// A version this build does not read.
    #[error("split-AES blob of version {0}; this build reads version {BLOB_VERSION}")]
    UnsupportedVersion(u8),
    /// Shorter than [`MIN_BLOB_LEN`].
    #[error("split-AES blob: truncated ({0} bytes, at least {MIN_BLOB_LEN})")]
    Truncated(usize),
}

/// A parsed ciphertext blob (version 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiphertextBlob {
    /// The key's id.
    pub key_id: [u8; KEY_ID_LEN],
    /// The message input α (the DPRF input of this message's key).
    pub alpha: [u8; 32],
    /// The AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// `AES-256-GCM(plaintext ‖ ρ) ‖ tag`.
    pub sealed: Vec<u8>,
}

impl CiphertextBlob {
    /// Parses a blob; refuses other versions and input shorter than [`MIN_BLOB_LEN`].
    pub fn parse(bytes: &[u8]) -> Result<CiphertextBlob, BlobError> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(BlobError::Truncated(0));
        };
        if version != BLOB_VERSION {
            return Err(BlobError::UnsupportedVersion(version));
        }
        if bytes.len() < MIN_BLOB_LEN {
            return Err(BlobError::Truncated(bytes.len()));
        }
        let (key_id, rest) = rest
            .split_first_chunk::<KEY_ID_LEN>()
            .ok_or(BlobError::Truncated(bytes.len()))?;
        let (alpha, rest) = rest
            .split_first_chunk::<32>()
            .ok_or(BlobError::Truncated(bytes.len()))?;
        let (nonce, sealed) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(BlobError::Truncated(bytes.len()))?;
        Ok(CiphertextBlob {
            key_id: *key_id,
            alpha: *alpha,
            nonce: *nonce,
            sealed: sealed.to_vec(),
        })
    }

    /// The blob's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + self.sealed.len());
        out.extend_from_slice(&self.header());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.sealed);
        out
    }

    /// `version ‖ key_id ‖ α`.
    pub fn header(&self) -> [u8; HEADER_LEN] {
        header(&self.key_id, &self.alpha)
    }
}

/// `version ‖ key_id ‖ α` of the blob of `(key_id, α)`.
pub fn header(key_id: &[u8; KEY_ID_LEN], alpha: &[u8; 32]) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    let (version, rest) = out.split_at_mut(1);
    let (id, a) = rest.split_at_mut(KEY_ID_LEN);
    version.copy_from_slice(&[BLOB_VERSION]);
    id.copy_from_slice(key_id);
    a.copy_from_slice(alpha);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parse_round_trip_and_refusals() {
        let blob = CiphertextBlob {
            key_id: [1; KEY_ID_LEN],
            alpha: [2; 32],
            nonce: [3; NONCE_LEN],
            sealed: vec![4; RHO_LEN + TAG_LEN + 5],
        };
        let bytes = blob.to_bytes();
        assert_eq!(bytes.len(), MIN_BLOB_LEN + 5);
        assert_eq!(CiphertextBlob::parse(&bytes).unwrap(), blob);
        for len in 0..MIN_BLOB_LEN {
            assert!(CiphertextBlob::parse(&bytes[..len]).is_err(), "len {len}");
        }
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(
            CiphertextBlob::parse(&v2),
            Err(BlobError::UnsupportedVersion(2))
        );
    }
}
