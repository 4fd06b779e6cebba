//! The ciphertext blob (its format is `vhsm_core::ciphertext`) and its AES-256-GCM sealing under a per-message [`DerivedKey`], plus the reference
//! flow ([`encrypt_in_process`], [`decrypt_in_process`]) that the coordinator performs across the network.
//!
//! Blob (version 2), `111 + 130·t` bytes plus the plaintext, `t` the entries of its [`EncryptionReceipt`]:
//!
//! ```text
//! version (1 byte = 2) ‖ key_id (16) ‖ α (32) ‖ u16 len ‖ receipt ‖ nonce (12) ‖ AES-256-GCM(plaintext ‖ ρ (32)) ‖ tag (16)
//! ```
//!
//! The AEAD's associated data is everything before the nonce (the header) `‖ u64 len(aad) ‖ aad`, with `aad` the
//! caller's: the receipt cannot be swapped for another one without failing the tag. Version-1 blobs (header
//! `version ‖ key_id ‖ α`, no receipt) still open.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::combine::{combine, message_input, DerivedKey};
use super::partial::evaluate;
use super::receipt::{evaluate_receipt, EncryptionReceipt};
use super::share::{SplitAesKeyShare, SplitAesPublicKeys};
use crate::error::ProtocolError;

pub use vhsm_core::ciphertext::{
    blob_len, header, BlobError, CiphertextBlob, BLOB_VERSION, BLOB_VERSION_1, HEADER_LEN,
    KEY_ID_LEN, MIN_BLOB_LEN, NONCE_LEN, RECEIPT_ENTRY_LEN, RHO_LEN, TAG_LEN,
};

/// The error of every blob that does not open: one message, so that a tampered blob, a wrong aad and a wrong
/// key look the same to the caller (and to an attacker).
const OPEN_FAILED: &str =
    "split-AES blob does not authenticate (tampered blob, wrong aad, or another key)";

/// The AEAD associated data: `header ‖ u64 len(aad) ‖ aad`.
fn associated_data(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 8 + aad.len());
    out.extend_from_slice(header);
    out.extend_from_slice(&u64::try_from(aad.len()).unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(aad);
    out
}

/// Seals `plaintext ‖ ρ` under `key` (the key derived for `(key_id, α)`) with a random nonce, the encryption's
/// `receipt` in the header; returns the blob's bytes (version 2). `α` must be
/// [`message_input`]`(key_id, aad, plaintext, ρ)`, or the blob will not open. Fails only for plaintexts beyond
/// AES-GCM's limit (64 GiB).
#[allow(clippy::too_many_arguments)]
pub fn seal<R: RngCore + CryptoRng>(
    key: &DerivedKey,
    key_id: [u8; KEY_ID_LEN],
    alpha: [u8; 32],
    receipt: &EncryptionReceipt,
    aad: &[u8],
    plaintext: &[u8],
    rho: &[u8; RHO_LEN],
    rng: &mut R,
) -> Result<Vec<u8>, ProtocolError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let header = header(&key_id, &alpha, &receipt.to_bytes());
    let mut out =
        Vec::with_capacity(header.len() + NONCE_LEN + RHO_LEN + TAG_LEN + plaintext.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    out.extend_from_slice(rho);
    let cipher = Aes256Gcm::new(key.expose().into());
    let sealed_part = out.get_mut(body_start..).unwrap_or_default();
    let tag = cipher
        .encrypt_in_place_detached(
            &Nonce::from(nonce),
            &associated_data(&header, aad),
            sealed_part,
        )
        .map_err(|_| {
            // Nothing was encrypted: wipe the plaintext copy before returning.
            zeroize::Zeroize::zeroize(&mut out);
            ProtocolError::InvalidParameters("plaintext too long for AES-GCM".into())
        })?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens `blob` under `key` with the caller's `aad`: AES-256-GCM, then recomputes
/// α = [`message_input`]`(key_id, aad, plaintext, ρ)` and compares it (constant time) with the blob's.
/// Any failure is the same [`ProtocolError::Encoding`] ("does not authenticate") and returns no plaintext.
pub fn open(
    key: &DerivedKey,
    blob: &CiphertextBlob,
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    let fail = || ProtocolError::Encoding(OPEN_FAILED.into());
    let body_len = blob
        .sealed
        .len()
        .checked_sub(TAG_LEN)
        .filter(|len| *len >= RHO_LEN)
        .ok_or_else(fail)?;
    let (body, tag) = blob.sealed.split_at(body_len);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| fail())?;
    let mut buffer = Zeroizing::new(body.to_vec());
    let cipher = Aes256Gcm::new(key.expose().into());
    cipher
        .decrypt_in_place_detached(
            &Nonce::from(blob.nonce),
            &associated_data(&blob.header(), aad),
            buffer.as_mut_slice(),
            &Tag::from(tag),
        )
        .map_err(|_| fail())?;
    let plaintext_len = buffer.len() - RHO_LEN;
    let (plaintext, rho) = buffer.split_at(plaintext_len);
    let rho: &[u8; RHO_LEN] = rho.try_into().map_err(|_| fail())?;
    let alpha = message_input(&blob.key_id, aad, plaintext, rho);
    if !bool::from(alpha.ct_eq(&blob.alpha)) {
        return Err(fail());
    }
    buffer.truncate(plaintext_len);
    Ok(buffer)
}

/// Checks that `shares` are at least `threshold` distinct holders of the key `public`.
fn check_holders(
    shares: &[&SplitAesKeyShare],
    public: &SplitAesPublicKeys,
) -> Result<(), ProtocolError> {
    let mut ids: Vec<_> = shares.iter().map(|s| s.participant()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != shares.len() || ids.len() < usize::from(public.threshold()) {
        return Err(ProtocolError::InvalidParameters(format!(
            "need at least {} distinct holders, got {} shares",
            public.threshold(),
            shares.len()
        )));
    }
    Ok(())
}

/// Encrypt, the whole flow in one process: random ρ, α = [`message_input`], one partial evaluation per share
/// ([`evaluate`], each with its DLEQ proof), [`combine()`] (checks every proof), the receipt partials of the first
/// `t` shares ([`evaluate_receipt`]), [`seal`].
///
/// This is the reference for the coordinator, which does the same with the partials coming from `t` nodes over
/// the network (the nodes run [`evaluate`]; the coordinator everything else). For tests and benchmarks.
pub fn encrypt_in_process<R: RngCore + CryptoRng>(
    shares: &[&SplitAesKeyShare],
    public: &SplitAesPublicKeys,
    key_id: [u8; KEY_ID_LEN],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, ProtocolError> {
    check_holders(shares, public)?;
    let mut rho = Zeroizing::new([0u8; RHO_LEN]);
    rng.fill_bytes(rho.as_mut_slice());
    let alpha = message_input(&key_id, aad, plaintext, &rho);
    let partials = shares
        .iter()
        .map(|share| (share.participant(), evaluate(share, &key_id, &alpha, rng)))
        .collect();
    let key = combine(public, &key_id, &alpha, &partials)?;
    let receipt = EncryptionReceipt::new(
        shares
            .iter()
            .take(usize::from(public.threshold()))
            .map(|share| evaluate_receipt(share, &key_id, &alpha, rng))
            .collect(),
    );
    seal(&key, key_id, alpha, &receipt, aad, plaintext, &rho, rng)
}

/// Decrypt, the whole flow in one process: [`CiphertextBlob::parse`], one partial evaluation per share on the
/// blob's `(key_id, α)`, [`combine()`], [`open`]. See [`encrypt_in_process`].
pub fn decrypt_in_process<R: RngCore + CryptoRng>(
    shares: &[&SplitAesKeyShare],
    public: &SplitAesPublicKeys,
    aad: &[u8],
    blob: &[u8],
    rng: &mut R,
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    check_holders(shares, public)?;
    let blob = CiphertextBlob::parse(blob)?;
    let partials = shares
        .iter()
        .map(|share| {
            (
                share.participant(),
                evaluate(share, &blob.key_id, &blob.alpha, rng),
            )
        })
        .collect();
    let key = combine(public, &blob.key_id, &blob.alpha, &partials)?;
    open(&key, &blob, aad)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A version-1 blob (written before encryption receipts: header `1 ‖ key_id ‖ α`, no receipt) still opens,
    /// and only with its own header as associated data.
    #[test]
    fn a_version_1_blob_still_opens() {
        let key = DerivedKey::from_bytes_for_tests([0x42; 32]);
        let (key_id, aad, plaintext, rho) = (
            [1u8; KEY_ID_LEN],
            b"aad",
            b"written long ago",
            [3u8; RHO_LEN],
        );
        let alpha = message_input(&key_id, aad, plaintext, &rho);
        let nonce = [4u8; NONCE_LEN];
        let mut header = vec![BLOB_VERSION_1];
        header.extend_from_slice(&key_id);
        header.extend_from_slice(&alpha);
        let mut body = plaintext.to_vec();
        body.extend_from_slice(&rho);
        let tag = Aes256Gcm::new(key.expose().into())
            .encrypt_in_place_detached(
                &Nonce::from(nonce),
                &associated_data(&header, aad),
                &mut body,
            )
            .unwrap();
        let mut bytes = header.clone();
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&tag);
        let parsed = CiphertextBlob::parse(&bytes).unwrap();
        assert_eq!((parsed.version, parsed.receipt.len()), (BLOB_VERSION_1, 0));
        assert_eq!(open(&key, &parsed, aad).unwrap().as_slice(), plaintext);
        // Read as a version-2 blob (its version byte changed), it does not open.
        let mut as_v2 = bytes.clone();
        as_v2[0] = BLOB_VERSION;
        if let Ok(v2) = CiphertextBlob::parse(&as_v2) {
            assert!(open(&key, &v2, aad).is_err());
        }
    }
}
