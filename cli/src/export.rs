//! Public keys and signatures in the encodings other tools read: SubjectPublicKeyInfo (PEM, DER), raw; ECDSA
//! signatures as DER for OpenSSL.

use anyhow::{bail, Context};
use vhsm_core::{Algorithm, KeyInfo};

const NO_SPKI: &str =
    "a split-AES key's public key (the DPRF's g^k on ristretto255) has no SubjectPublicKeyInfo \
                       form; use --format raw";

/// The formats `vhsm key show --format` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyFormat {
    /// SubjectPublicKeyInfo, PEM.
    Pem,
    /// SubjectPublicKeyInfo, DER.
    Der,
    /// The bare public key: Ed25519's 32 bytes, the uncompressed SEC1 point (65 bytes), or split-AES's g^k (32).
    Raw,
}

/// The key's SubjectPublicKeyInfo, DER.
pub fn spki_der(key: &KeyInfo) -> anyhow::Result<Vec<u8>> {
    use k256::pkcs8::EncodePublicKey as _;
    let invalid = || {
        format!(
            "the public key of {} is not a valid {} key",
            key.id, key.algorithm
        )
    };
    Ok(match key.algorithm {
        Algorithm::SplitAes256 => bail!(NO_SPKI),
        Algorithm::Ed25519 => {
            use ed25519_dalek::pkcs8::EncodePublicKey as _;
            let bytes: [u8; 32] = key.public_key.as_slice().try_into().with_context(invalid)?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes).with_context(invalid)?;
            vk.to_public_key_der()
                .context("cannot encode the public key")?
                .as_bytes()
                .to_vec()
        }
        Algorithm::EcdsaP256 => p256::PublicKey::from_sec1_bytes(&key.public_key)
            .with_context(invalid)?
            .to_public_key_der()
            .context("cannot encode the public key")?
            .as_bytes()
            .to_vec(),
        Algorithm::EcdsaSecp256k1 => k256::PublicKey::from_sec1_bytes(&key.public_key)
            .with_context(invalid)?
            .to_public_key_der()
            .context("cannot encode the public key")?
            .as_bytes()
            .to_vec(),
    })
}

/// The key's SubjectPublicKeyInfo, PEM.
pub fn spki_pem(key: &KeyInfo) -> anyhow::Result<String> {
    use k256::pkcs8::{EncodePublicKey as _, LineEnding};
    let invalid = || {
        format!(
            "the public key of {} is not a valid {} key",
            key.id, key.algorithm
        )
    };
    match key.algorithm {
        Algorithm::SplitAes256 => bail!(NO_SPKI),
        Algorithm::Ed25519 => {
            use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePublicKey as _};
            let bytes: [u8; 32] = key.public_key.as_slice().try_into().with_context(invalid)?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes).with_context(invalid)?;
            vk.to_public_key_pem(LineEnding::LF)
                .context("cannot encode the public key")
        }
        Algorithm::EcdsaP256 => p256::PublicKey::from_sec1_bytes(&key.public_key)
            .with_context(invalid)?
            .to_public_key_pem(LineEnding::LF)
            .context("cannot encode the public key"),
        Algorithm::EcdsaSecp256k1 => k256::PublicKey::from_sec1_bytes(&key.public_key)
            .with_context(invalid)?
            .to_public_key_pem(LineEnding::LF)
            .context("cannot encode the public key"),
    }
}

/// An ECDSA signature r ‖ s as the DER `ECDSA-Sig-Value` OpenSSL reads.
pub fn ecdsa_signature_der(algorithm: Algorithm, signature: &[u8]) -> anyhow::Result<Vec<u8>> {
    Ok(match algorithm {
        Algorithm::EcdsaP256 => p256::ecdsa::Signature::from_slice(signature)
            .context("not a P-256 signature")?
            .to_der()
            .as_bytes()
            .to_vec(),
        Algorithm::EcdsaSecp256k1 => k256::ecdsa::Signature::from_slice(signature)
            .context("not a secp256k1 signature")?
            .to_der()
            .as_bytes()
            .to_vec(),
        Algorithm::Ed25519 | Algorithm::SplitAes256 => {
            bail!("only ECDSA signatures have a DER form")
        }
    })
}
