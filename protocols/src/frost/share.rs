//! The FROST key material a participant keeps: its secret share ([`FrostKeyShare`]) and the public part shared
//! by everyone ([`FrostPublicKeys`]), with versioned byte encodings for storage.
//!
//! Encodings (all integers big-endian):
//!
//! * [`FrostPublicKeys`]: `version (1) ‖ frost PublicKeyPackage`;
//! * [`FrostKeyShare`]: `version (1) ‖ u32 length ‖ frost KeyPackage ‖ FrostPublicKeys encoding`.
//!
//! The `frost-ed25519` encodings inside carry their own header (format version and ciphersuite id), which
//! `frost-ed25519` checks too. Decoding refuses any other version of ours with
//! [`ProtocolError::UnsupportedVersion`].

use std::fmt;

use frost_ed25519::keys::{KeyPackage, PublicKeyPackage, VerifyingShare};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{map_frost_error, participant_of};
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// Version byte of the [`FrostPublicKeys`] encoding.
pub const PUBLIC_KEYS_FORMAT_VERSION: u8 = 1;
/// Version byte of the [`FrostKeyShare`] encoding.
pub const KEY_SHARE_FORMAT_VERSION: u8 = 1;

/// The public part of a FROST key: the group public key and every participant's verifying share.
#[derive(Clone, PartialEq, Eq)]
pub struct FrostPublicKeys {
    package: PublicKeyPackage,
    /// `PublicKeyPackage` and group key serialization can fail in `frost`'s API; done once, up front.
    encoded: Vec<u8>,
    group_key: [u8; 32],
    participants: Vec<ParticipantId>,
}

impl FrostPublicKeys {
    /// Wraps a `frost-ed25519` public key package. It must name its threshold (`min_signers`) and use only
    /// identifiers made from [`ParticipantId`]s.
    pub fn from_frost(package: PublicKeyPackage) -> Result<Self, ProtocolError> {
        let threshold = package.min_signers().ok_or_else(|| {
            ProtocolError::InvalidParameters("public key package without threshold".into())
        })?;
        let participants = package
            .verifying_shares()
            .keys()
            .map(|id| {
                participant_of(id).ok_or_else(|| {
                    ProtocolError::InvalidParameters(
                        "public key package with an identifier that is not a participant id".into(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if usize::from(threshold) < 2 || usize::from(threshold) > participants.len() {
            return Err(ProtocolError::InvalidParameters(format!(
                "threshold {threshold} does not fit {} participants",
                participants.len()
            )));
        }
        let group_key: [u8; 32] = package
            .verifying_key()
            .serialize()
            .map_err(|e| map_frost_error(e, "group public key"))?
            .try_into()
            .map_err(|_| ProtocolError::Encoding("group public key is not 32 bytes".into()))?;
        let frost_bytes = package
            .serialize()
            .map_err(|e| map_frost_error(e, "public key package"))?;
        let mut encoded = Vec::with_capacity(1 + frost_bytes.len());
        encoded.push(PUBLIC_KEYS_FORMAT_VERSION);
        encoded.extend_from_slice(&frost_bytes);
        Ok(FrostPublicKeys {
            package,
            encoded,
            group_key,
            participants,
        })
    }

    /// The group's Ed25519 public key (RFC 8032 encoding).
    pub fn group_public_key(&self) -> [u8; 32] {
        self.group_key
    }

    /// The participants holding a share, ascending.
    pub fn participants(&self) -> Vec<ParticipantId> {
        self.participants.clone()
    }

    /// How many participants must sign.
    pub fn threshold(&self) -> u16 {
        // Checked present in `from_frost`.
        self.package.min_signers().unwrap_or(u16::MAX)
    }

    /// The `frost-ed25519` package.
    pub fn frost_package(&self) -> &PublicKeyPackage {
        &self.package
    }

    /// The versioned encoding (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// Decodes [`FrostPublicKeys::to_bytes`]; refuses other versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let (version, rest) = bytes
            .split_first()
            .ok_or_else(|| ProtocolError::Encoding("empty public keys encoding".into()))?;
        if *version != PUBLIC_KEYS_FORMAT_VERSION {
            return Err(ProtocolError::UnsupportedVersion(*version));
        }
        let package = PublicKeyPackage::deserialize(rest)
            .map_err(|e| ProtocolError::Encoding(format!("public key package: {e}")))?;
        let keys = Self::from_frost(package)?;
        if keys.encoded != bytes {
            return Err(ProtocolError::Encoding(
                "public key package is not in canonical encoding".into(),
            ));
        }
        Ok(keys)
    }
}

impl fmt::Debug for FrostPublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrostPublicKeys")
            .field("group_public_key", &hex::encode(self.group_key))
            .field("threshold", &self.threshold())
            .field("participants", &self.participants)
            .finish()
    }
}

/// One participant's FROST key share: its secret signing share plus the public key material.
///
/// The secret lives in `frost-ed25519`'s `KeyPackage`, which zeroizes on drop; the cached encoding is
/// zeroized on drop too. `Debug` does not print the secret. Equality is constant-time.
pub struct FrostKeyShare {
    key_package: KeyPackage,
    public: FrostPublicKeys,
    participant: ParticipantId,
    encoded: Zeroizing<Vec<u8>>,
}

impl FrostKeyShare {
    /// Wraps `frost-ed25519` packages, checking that they belong together: same group key, the key package's
    /// verifying share is the one listed for it in the public package and matches its signing share, same
    /// threshold.
    pub fn from_frost(
        key_package: KeyPackage,
        public_package: PublicKeyPackage,
    ) -> Result<Self, ProtocolError> {
        let public = FrostPublicKeys::from_frost(public_package)?;
        Self::from_parts(key_package, public)
    }

    fn from_parts(key_package: KeyPackage, public: FrostPublicKeys) -> Result<Self, ProtocolError> {
        let participant = participant_of(key_package.identifier()).ok_or_else(|| {
            ProtocolError::InvalidParameters(
                "key package identifier is not a participant id".into(),
            )
        })?;
        let mismatch = |what: &str| {
            Err(ProtocolError::InvalidParameters(format!(
                "key package does not match the public key package: {what}"
            )))
        };
        if key_package.verifying_key() != public.package.verifying_key() {
            return mismatch("group public key");
        }
        if public
            .package
            .verifying_shares()
            .get(key_package.identifier())
            != Some(key_package.verifying_share())
        {
            return mismatch("verifying share");
        }
        if VerifyingShare::from(*key_package.signing_share()) != *key_package.verifying_share() {
            return mismatch("signing share does not match its verifying share");
        }
        if Some(*key_package.min_signers()) != public.package.min_signers() {
            return mismatch("threshold");
        }
        let key_bytes = Zeroizing::new(
            key_package
                .serialize()
                .map_err(|e| map_frost_error(e, "key package"))?,
        );
        let key_len = u32::try_from(key_bytes.len())
            .map_err(|_| ProtocolError::Encoding("key package too long".into()))?;
        let mut encoded = Zeroizing::new(Vec::with_capacity(
            1 + 4 + key_bytes.len() + public.encoded.len(),
        ));
        encoded.push(KEY_SHARE_FORMAT_VERSION);
        encoded.extend_from_slice(&key_len.to_be_bytes());
        encoded.extend_from_slice(&key_bytes);
        encoded.extend_from_slice(&public.encoded);
        Ok(FrostKeyShare {
            key_package,
            public,
            participant,
            encoded,
        })
    }

    /// The participant holding this share.
    pub fn participant(&self) -> ParticipantId {
        self.participant
    }

    /// How many participants must sign.
    pub fn threshold(&self) -> u16 {
        *self.key_package.min_signers()
    }

    /// The group's Ed25519 public key (RFC 8032 encoding).
    pub fn group_public_key(&self) -> [u8; 32] {
        self.public.group_key
    }

    /// A copy of the public part.
    pub fn public_keys(&self) -> FrostPublicKeys {
        self.public.clone()
    }

    /// The `frost-ed25519` key package (contains the secret share).
    pub(crate) fn key_package(&self) -> &KeyPackage {
        &self.key_package
    }

    /// The versioned encoding (see the module documentation). It contains the secret share: seal it before
    /// it touches a disk.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.encoded.to_vec())
    }

    /// Decodes [`FrostKeyShare::to_bytes`]; refuses other versions and inconsistent packages.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let (version, rest) = bytes
            .split_first()
            .ok_or_else(|| ProtocolError::Encoding("empty key share encoding".into()))?;
        if *version != KEY_SHARE_FORMAT_VERSION {
            return Err(ProtocolError::UnsupportedVersion(*version));
        }
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| ProtocolError::Encoding("key share encoding truncated".into()))?;
        let len = usize::try_from(u32::from_be_bytes(*len))
            .map_err(|_| ProtocolError::Encoding("key package length".into()))?;
        if rest.len() < len {
            return Err(ProtocolError::Encoding(
                "key share encoding truncated".into(),
            ));
        }
        let (key_bytes, public_bytes) = rest.split_at(len);
        let key_package = KeyPackage::deserialize(key_bytes)
            .map_err(|e| ProtocolError::Encoding(format!("key package: {e}")))?;
        let public = FrostPublicKeys::from_bytes(public_bytes)?;
        let share = Self::from_parts(key_package, public)?;
        if !bool::from(share.encoded.as_slice().ct_eq(bytes)) {
            return Err(ProtocolError::Encoding(
                "key share is not in canonical encoding".into(),
            ));
        }
        Ok(share)
    }

    /// The 32-byte secret share scalar. Used ONLY by a test that scans storage for it; never send or store it.
    pub fn signing_share_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key_package.signing_share().serialize())
    }
}

impl PartialEq for FrostKeyShare {
    fn eq(&self, other: &Self) -> bool {
        self.encoded
            .as_slice()
            .ct_eq(other.encoded.as_slice())
            .into()
    }
}

impl Eq for FrostKeyShare {}

impl fmt::Debug for FrostKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrostKeyShare")
            .field("participant", &self.participant)
            .field("threshold", &self.threshold())
            .field("group_public_key", &hex::encode(self.public.group_key))
            .field("signing_share", &"<redacted>")
            .finish()
    }
}
