//! Power-on self-tests, as FIPS 140-3 asks of a module (§7.10.2): known-answer tests of the primitives the node
//! relies on, run at start before the node serves anything. A node whose self-test fails refuses to start, with
//! the failed test named in the error.
//!
//! - SHA-256: FIPS 180-4's "abc".
//! - AES-256-GCM (the sealing of every record, split-AES blobs): McGrew–Viega GCM test case 14, encrypt and decrypt,
//!   and a tampered tag refused.
//! - Ed25519 verification (FROST group signatures): RFC 9591's FROST(Ed25519, SHA-512) test vector signature, and
//!   the same with one bit flipped refused.
//! - The split-AES DPRF: a partial evaluation with a fixed share, and its DLEQ proof verified (a consistency test;
//!   the construction is ours, so there is no published vector).
//!
//! Threshold ECDSA (DKLs23) has no published known-answer vector; its curve arithmetic is exercised by the
//! pairwise consistency test of every new key (the coordinator signs and verifies once before a key is reported
//! created).

use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit, Nonce};
use sha2::{Digest, Sha256};

/// A failed self-test.
#[derive(Debug, thiserror::Error)]
#[error("self-test FAILED: {0}; this node refuses to serve")]
pub struct SelfTestError(pub String);

fn hex32<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    // The constants below are valid hex of the right length (checked by the unit test).
    if let Ok(bytes) = hex::decode(s) {
        if bytes.len() == N {
            out.copy_from_slice(&bytes);
        }
    }
    out
}

fn check(ok: bool, what: &str) -> Result<(), SelfTestError> {
    if ok {
        Ok(())
    } else {
        Err(SelfTestError(what.to_string()))
    }
}

/// Runs every self-test. `corrupt` (fault-injection builds: a test asks for it) alters one expected answer, to
/// show that a failure stops the node.
pub fn run(corrupt: bool) -> Result<(), SelfTestError> {
    // SHA-256("abc").
    let mut expected: [u8; 32] =
        hex32("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    if corrupt {
        expected[0] ^= 1;
    }
    check(
        Sha256::digest(b"abc")[..] == expected,
        "SHA-256 known answer",
    )?;

    // AES-256-GCM, test case 14: K = 0^256, IV = 0^96, P = 0^128.
    let cipher = Aes256Gcm::new(&[0u8; 32].into());
    let nonce = Nonce::from_slice(&[0u8; 12]);
    let ciphertext: [u8; 32] =
        hex32("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    let sealed = cipher
        .encrypt(nonce, &[0u8; 16][..])
        .map_err(|_| SelfTestError("AES-256-GCM encryption".into()))?;
    check(
        sealed[..] == ciphertext,
        "AES-256-GCM known answer (encrypt)",
    )?;
    let opened = cipher
        .decrypt(nonce, &ciphertext[..])
        .map_err(|_| SelfTestError("AES-256-GCM known answer (decrypt)".into()))?;
    check(opened == [0u8; 16], "AES-256-GCM known answer (decrypt)")?;
    let mut tampered = ciphertext;
    tampered[31] ^= 1;
    check(
        cipher.decrypt(nonce, &tampered[..]).is_err(),
        "AES-256-GCM refuses a wrong tag",
    )?;

    // Ed25519 verification: RFC 9591 FROST(Ed25519, SHA-512), group key, message "test", signature.
    let key: [u8; 32] = hex32("15d21ccd7ee42959562fc8aa63224c8851fb3ec85a3faf66040d380fb9738673");
    let signature: [u8; 64] = hex32(
        "36282629c383bb820a88b71cae937d41f2f2adfcc3d02e55507e2fb9e2dd3cbe\
         bd9d2b0844e49ae0f3fa935161e1419aab7b47d21a37ebeae1f17d4987b3160b",
    );
    check(
        vhsm_protocols::frost::verify_signature(&key, b"test", &signature),
        "Ed25519 known answer (RFC 9591 vector)",
    )?;
    let mut forged = signature;
    forged[40] ^= 1;
    check(
        !vhsm_protocols::frost::verify_signature(&key, b"test", &forged),
        "Ed25519 refuses an altered signature",
    )?;

    // Split-AES DPRF: a partial evaluation and its proof, with a fixed share.
    check(
        vhsm_protocols::split_aes::partial::self_test(&mut rand_core::OsRng),
        "split-AES partial evaluation and DLEQ proof",
    )?;
    tracing::info!("self-tests passed (SHA-256, AES-256-GCM, Ed25519, split-AES DPRF)");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_self_tests_pass_and_a_corrupted_answer_fails() {
        run(false).unwrap_or_else(|e| panic!("{e}"));
        let e = run(true).unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
    }
}
