//! The pairwise consistency test of a new key: before a key is reported created, the coordinator has it sign (or,
//! for split-AES, encrypt and decrypt) one fixed message and checks the result with the public key. The nodes hold
//! the key as *pending* meanwhile, and a pending key may be used for exactly this input and nothing else — so the
//! test proves the shares work without any real use of a key that is not yet committed.

use sha2::{Digest, Sha256};

use vhsm_core::KeyId;

/// The message a new key signs (and a new split-AES key encrypts) in its pairwise consistency test.
pub fn message(key_id: &KeyId) -> Vec<u8> {
    format!("vHSM pairwise consistency test of key {key_id}").into_bytes()
}

/// The digest an ECDSA key signs in the test (SHA-256 of [`message`]).
pub fn ecdsa_digest(key_id: &KeyId) -> [u8; 32] {
    Sha256::digest(message(key_id)).into()
}

/// The split-AES message input (α) of the test: [`message`] with empty associated data and ρ = 0.
pub fn split_aes_alpha(key_id: &KeyId) -> [u8; 32] {
    crate::split_aes::combine::message_input(&key_id.0, b"", &message(key_id), &[0u8; 32])
}
