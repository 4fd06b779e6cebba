//! Sizes every layer agrees on (the client, the coordinator, the PKCS#11 module).

/// The largest plaintext one encryption request takes (larger data is cut into chunks by the caller).
pub const MAX_CIPHER_INPUT: usize = 1024 * 1024;

/// How long a node spends on one key generation before it gives up (the coordinator waits a little longer).
pub fn keygen_timeout(algorithm: crate::Algorithm) -> std::time::Duration {
    use crate::Algorithm;
    match algorithm {
        Algorithm::Ed25519 | Algorithm::SplitAes256 => std::time::Duration::from_secs(30),
        // DKLs23 key generation costs seconds of CPU per pair of holders (P-256 most).
        Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => std::time::Duration::from_secs(600),
    }
}
