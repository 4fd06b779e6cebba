//! A node's share of one key, whatever the key's algorithm, and its versioned encoding inside a sealed record.
//!
//! Encoding (version 1): `version (1) ‖ scheme (1: FROST Ed25519, 2: threshold ECDSA, 3: split-AES) ‖ the scheme's own
//! versioned encoding`.

use std::sync::Arc;

use vhsm_core::Algorithm;
use vhsm_protocols::{
    ecdsa::share::EcdsaKeyShare, frost::share::FrostKeyShare, split_aes::share::SplitAesKeyShare,
    ParticipantId, ProtocolError,
};
use zeroize::Zeroizing;

const FORMAT_VERSION: u8 = 1;
const SCHEME_FROST: u8 = 1;
const SCHEME_ECDSA: u8 = 2;
const SCHEME_SPLIT_AES: u8 = 3;

/// One key share. Secret: zeroized on drop by the schemes' own types; `Debug` prints no secret.
pub enum KeyShare {
    /// A FROST(Ed25519) share.
    Frost(Box<FrostKeyShare>),
    /// A threshold-ECDSA share (shared with running signing sessions).
    Ecdsa(Arc<EcdsaKeyShare>),
    /// A split-AES (DPRF) share.
    SplitAes(Box<SplitAesKeyShare>),
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyShare::Frost(_) => f.write_str("KeyShare::Frost(<redacted>)"),
            KeyShare::Ecdsa(_) => f.write_str("KeyShare::Ecdsa(<redacted>)"),
            KeyShare::SplitAes(_) => f.write_str("KeyShare::SplitAes(<redacted>)"),
        }
    }
}

impl KeyShare {
    /// The participant id this share belongs to.
    pub fn participant(&self) -> ParticipantId {
        match self {
            KeyShare::Frost(s) => s.participant(),
            KeyShare::Ecdsa(s) => s.participant(),
            KeyShare::SplitAes(s) => s.participant(),
        }
    }

    /// The key's public key, as [`vhsm_core::KeyInfo::public_key`] holds it.
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            KeyShare::Frost(s) => s.group_public_key().to_vec(),
            KeyShare::Ecdsa(s) => s.public_key_sec1(),
            KeyShare::SplitAes(s) => s.group_public_key().to_vec(),
        }
    }

    /// The public key package, as [`vhsm_core::KeyInfo::public_package`] holds it.
    pub fn public_package(&self) -> Vec<u8> {
        match self {
            KeyShare::Frost(s) => s.public_keys().to_bytes(),
            KeyShare::Ecdsa(s) => s.public_keys().to_bytes(),
            KeyShare::SplitAes(s) => s.public_keys().to_bytes(),
        }
    }

    /// Whether this share is of a key of `algorithm`.
    pub fn is_for(&self, algorithm: Algorithm) -> bool {
        match (self, algorithm.ecdsa_curve()) {
            (KeyShare::Frost(_), None) => algorithm == Algorithm::Ed25519,
            (KeyShare::SplitAes(_), None) => algorithm == Algorithm::SplitAes256,
            (KeyShare::Ecdsa(s), Some(curve)) => s.curve() == curve,
            _ => false,
        }
    }

    /// The versioned encoding.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let (scheme, inner) = match self {
            KeyShare::Frost(s) => (SCHEME_FROST, s.to_bytes()),
            KeyShare::Ecdsa(s) => (SCHEME_ECDSA, s.to_bytes()),
            KeyShare::SplitAes(s) => (SCHEME_SPLIT_AES, s.to_bytes()),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(2 + inner.len()));
        out.push(FORMAT_VERSION);
        out.push(scheme);
        out.extend_from_slice(&inner);
        out
    }

    /// Decodes [`KeyShare::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        match bytes {
            [FORMAT_VERSION, SCHEME_FROST, inner @ ..] => {
                Ok(KeyShare::Frost(Box::new(FrostKeyShare::from_bytes(inner)?)))
            }
            [FORMAT_VERSION, SCHEME_ECDSA, inner @ ..] => {
                Ok(KeyShare::Ecdsa(Arc::new(EcdsaKeyShare::from_bytes(inner)?)))
            }
            [FORMAT_VERSION, SCHEME_SPLIT_AES, inner @ ..] => Ok(KeyShare::SplitAes(Box::new(
                SplitAesKeyShare::from_bytes(inner)?,
            ))),
            [FORMAT_VERSION, scheme, ..] => Err(ProtocolError::Encoding(format!(
                "unknown share scheme {scheme}"
            ))),
            [version, ..] => Err(ProtocolError::UnsupportedVersion(*version)),
            [] => Err(ProtocolError::Encoding("empty share".into())),
        }
    }

    /// The secret share scalar. Only for tests that check it never reaches the disk in the clear.
    pub fn secret_bytes_for_tests(&self) -> Zeroizing<Vec<u8>> {
        match self {
            KeyShare::Frost(s) => s.signing_share_bytes(),
            KeyShare::Ecdsa(s) => s.secret_share_bytes(),
            KeyShare::SplitAes(s) => s.secret_share_bytes(),
        }
    }
}
