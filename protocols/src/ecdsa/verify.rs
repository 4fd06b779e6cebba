//! Verification of ECDSA signatures with the RustCrypto curve crates (`k256`, `p256`), independently of
//! `dkls23`: every threshold signature is checked here before it is output, and clients can use the same
//! function.

use k256::ecdsa::signature::hazmat::PrehashVerifier;

use super::curve::EcdsaCurve;

/// True if `signature` (fixed-width `r ‖ s`, 64 bytes) is a valid ECDSA signature of the 32-byte `digest`
/// (from [`super::digest::signing_digest`]) under `public_key_sec1` (SEC1, compressed or uncompressed), with
/// `k256`'s or `p256`'s `VerifyingKey::verify_prehash`.
///
/// For secp256k1, `k256` accepts only low-S signatures (BIP 62/146); the engine normalises accordingly.
pub fn verify_prehash(
    curve: EcdsaCurve,
    public_key_sec1: &[u8],
    digest: &[u8; 32],
    signature: &[u8],
) -> bool {
    match curve {
        EcdsaCurve::Secp256k1 => {
            let (Ok(key), Ok(sig)) = (
                k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key_sec1),
                k256::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            key.verify_prehash(digest, &sig).is_ok()
        }
        EcdsaCurve::P256 => {
            let (Ok(key), Ok(sig)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key_sec1),
                p256::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            key.verify_prehash(digest, &sig).is_ok()
        }
    }
}
