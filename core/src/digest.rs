//! What gets signed: hashing a message and converting the digest to the 32-byte value ECDSA signs.
//!
//! ECDSA signs an integer derived from a digest (SEC1 v2 §4.1.3 step 5, FIPS 186-5 §6.4.1 `bits2int`): for a
//! curve of 256-bit order it is the leftmost 256 bits of the digest; a shorter digest is taken as the
//! integer it encodes. [`signing_digest`] returns exactly that value as 32 big-endian bytes (not reduced modulo
//! the order; the signing engine and every verifier reduce it). So a signature over
//! `signing_digest(Sha384, m)` verifies, with any standard verifier, as an ECDSA-with-SHA-384 signature of `m`
//! — the PKCS#11 mechanisms `CKM_ECDSA_SHA256/384/512`; [`HashAlg::Prehashed`] is `CKM_ECDSA`, whose input
//! already is a digest of any length.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The longest digest accepted by [`HashAlg::Prehashed`], in bytes (SHA-512's).
pub const MAX_PREHASHED_LEN: usize = 64;

/// Why a message cannot be signed as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// A prehashed digest ([`HashAlg::Prehashed`]) of this many bytes: it must be 1 to [`MAX_PREHASHED_LEN`].
    #[error("a prehashed digest must be 1 to {MAX_PREHASHED_LEN} bytes, not {0}")]
    PrehashedLength(usize),
}

/// How the message to sign becomes a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashAlg {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384; its digest is truncated to the leftmost 256 bits.
    Sha384,
    /// SHA-512; its digest is truncated to the leftmost 256 bits.
    Sha512,
    /// The input already is a digest (PKCS#11 `CKM_ECDSA`): 1 to 64 bytes.
    Prehashed,
}

impl HashAlg {
    /// The algorithm's name for logs and audit records: `"sha256"`, `"sha384"`, `"sha512"` or `"none"`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
            HashAlg::Prehashed => "none",
        }
    }
}

/// Hashes `message` with `alg` (or takes it as the digest for Prehashed), then converts the digest to the
/// 32-byte value ECDSA signs, as SEC1 §4.1.3 step 5 says for a 256-bit order: the leftmost 256 bits of a
/// longer digest; a shorter digest is left-padded with zeros (its integer value). Prehashed input must be
/// 1..=64 bytes (else [`DigestError::PrehashedLength`]).
pub fn signing_digest(alg: HashAlg, message: &[u8]) -> Result<[u8; 32], DigestError> {
    match alg {
        HashAlg::Sha256 => Ok(truncate(&Sha256::digest(message))),
        HashAlg::Sha384 => Ok(truncate(&Sha384::digest(message))),
        HashAlg::Sha512 => Ok(truncate(&Sha512::digest(message))),
        HashAlg::Prehashed => {
            if message.is_empty() || message.len() > MAX_PREHASHED_LEN {
                return Err(DigestError::PrehashedLength(message.len()));
            }
            Ok(truncate(message))
        }
    }
}

/// `bits2int` for a 256-bit order, as 32 big-endian bytes: the leftmost 32 bytes of `digest`, or `digest`
/// right-aligned (left-padded with zeros) if it is shorter.
fn truncate(digest: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let take = digest.len().min(32);
    let (head, _) = digest.split_at(take);
    let (_, tail) = out.split_at_mut(32 - take);
    tail.copy_from_slice(head);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn names() {
        assert_eq!(HashAlg::Sha256.name(), "sha256");
        assert_eq!(HashAlg::Sha384.name(), "sha384");
        assert_eq!(HashAlg::Sha512.name(), "sha512");
        assert_eq!(HashAlg::Prehashed.name(), "none");
    }

    #[test]
    fn truncation_and_padding() {
        let long: Vec<u8> = (0..64).collect();
        assert_eq!(truncate(&long).to_vec(), long[..32].to_vec());
        let short = [0xab; 20];
        let t = truncate(&short);
        assert_eq!(&t[..12], &[0; 12]);
        assert_eq!(&t[12..], &short);
        assert!(signing_digest(HashAlg::Prehashed, &[]).is_err());
        assert!(signing_digest(HashAlg::Prehashed, &[1; 65]).is_err());
        assert_eq!(
            signing_digest(HashAlg::Prehashed, &[7; 32]).unwrap(),
            [7; 32]
        );
    }
}
