//! Sizes every layer agrees on (the client, the coordinator, the PKCS#11 module).

/// The largest plaintext one encryption request takes (larger data is cut into chunks by the caller).
pub const MAX_CIPHER_INPUT: usize = 1024 * 1024;

/// The largest message one signing request takes. Ed25519 (PureEdDSA) signs the whole message, so this is the
/// largest message an Ed25519 key signs. ECDSA signs a digest: a caller with more to sign hashes it itself and
/// sends the digest (`HashAlg::Prehashed`), as `vhsm sign` does for input of any size.
pub const MAX_SIGN_INPUT: usize = 1024 * 1024;

/// `bytes` in mebibytes, for an operator's message: `"8.0 MiB"`.
pub fn mib(bytes: usize) -> String {
    // A size in memory is far below 2^52: exact as a float.
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// How long a node spends on one key generation before it gives up (the coordinator waits a little longer).
pub fn keygen_timeout(algorithm: crate::Algorithm) -> std::time::Duration {
    use crate::Algorithm;
    match algorithm {
        Algorithm::Ed25519 | Algorithm::SplitAes256 => std::time::Duration::from_secs(30),
        // DKLs23 key generation costs seconds of CPU per pair of holders (P-256 most).
        Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => std::time::Duration::from_secs(600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_mebibytes() {
        assert_eq!(mib(MAX_SIGN_INPUT), "1.0 MiB");
        assert_eq!(mib(8 * 1024 * 1024 + 1), "8.0 MiB");
        assert_eq!(mib(1536 * 1024), "1.5 MiB");
    }
}
