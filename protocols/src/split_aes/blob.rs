//! The ciphertext blob (its format is `vhsm_core::ciphertext`) and its AES-256-GCM sealing under a per-message [`DerivedKey`], plus the reference
//! flow ([`encrypt_in_process`], [`decrypt_in_process`]) that the coordinator performs across the network.
//!
//! Blob (version 1), 109 bytes plus the plaintext:
//!
//! ```text
//! version (1 byte = 1) ‖ key_id (16) ‖ α (32) ‖ nonce (12) ‖ AES-256-GCM(plaintext ‖ ρ (32)) ‖ tag (16)
//! ```
//!
//! The AEAD's associated data is `version ‖ key_id ‖ α ‖ u64 len(aad) ‖ aad`, with `aad` the caller's.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::combine::{combine, message_input, DerivedKey};
use super::partial::evaluate;
use super::share::{SplitAesKeyShare, SplitAesPublicKeys};
use crate::error::ProtocolError;

pub use vhsm_core::ciphertext::{
    header, BlobError, CiphertextBlob, BLOB_VERSION, HEADER_LEN, KEY_ID_LEN, MIN_BLOB_LEN,
    NONCE_LEN, RHO_LEN, TAG_LEN,
};

/// The error of every blob that does not open: one message, so that a tampered blob, a wrong aad and a wrong
/// key look the same to the caller (and to an attacker).
const OPEN_FAILED: &str =
    "split-AES blob does not authenticate (tampered blob, wrong aad, or another key)";

/// The AEAD associated data: `header ‖ u64 len(aad) ‖ aad`.
fn associated_data(header: &[u8; HEADER_LEN], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 8 + aad.len());
    out.extend_from_slice(header);
    out.extend_from_slice(&u64::try_from(aad.len()).unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(aad);
    out
}

/// Seals `plaintext ‖ ρ` under `key` (the key derived for `(key_id, α)`) with a random nonce; returns the
/// blob's bytes. `α` must be [`message_input`]`(key_id, aad, plaintext, ρ)`, or the blob will not open.
/// Fails only for plaintexts beyond AES-GCM's limit (64 GiB).
pub fn seal<R: RngCore + CryptoRng>(
    key: &DerivedKey,
    key_id: [u8; KEY_ID_LEN],
    alpha: [u8; 32],
    aad: &[u8],
    plaintext: &[u8],
    rho: &[u8; RHO_LEN],
    rng: &mut R,
) -> Result<Vec<u8>, ProtocolError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let header = header(&key_id, &alpha);
    let mut out = Vec::with_capacity(MIN_BLOB_LEN + plaintext.len());
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
/// ([`evaluate`], each with its DLEQ proof), [`combine()`] (checks every proof), [`seal`].
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
    seal(&key, key_id, alpha, aad, plaintext, &rho, rng)
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
