//! The threshold-ECDSA key material a participant keeps: its key share ([`EcdsaKeyShare`], the `dkls23`
//! `Party`) and the public part shared by everyone ([`EcdsaPublicKeys`], the `dkls23` `PublicKeyPackage`),
//! each with the mapping between our participant ids and `dkls23`'s party indices, and versioned encodings.
//!
//! Encodings:
//!
//! * [`EcdsaPublicKeys`]: `version (1) ‖ curve tag (1 = secp256k1, 2 = P-256) ‖ postcard(participants,
//!   PublicKeyPackage)`;
//! * [`EcdsaKeyShare`]: `version (1) ‖ curve tag ‖ postcard(participants, Party, PublicKeyPackage)`.
//!
//! The participants are listed ascending; the i-th (from 1) is `dkls23` party index i. Decoding refuses any
//! other version with [`ProtocolError::UnsupportedVersion`], refuses trailing bytes and non-canonical
//! encodings, and checks that the pieces belong together (same parameters and group key, the secret share
//! matches its verifying share, the OT setup covers every other participant).
//!
//! A `dkls23` `Party` is more than a Shamir share: it also holds the base-OT setup with every other
//! participant (made during the DKG and reused by every signing run) and the seeds for shares of zero. All of
//! it is secret. The whole encoding must be sealed before it touches a disk.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use dkls23::protocols::{Parameters, Party, PartyIndex, PublicKeyPackage};
use k256::elliptic_curve::ff::PrimeField;
use k256::elliptic_curve::group::{Curve, Group};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::curve::{on_curve, EcdsaCurve, EngineCurve, PackageOnCurve, PartyOnCurve};
use super::IdMap;
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// Version byte of the [`EcdsaPublicKeys`] encoding.
pub const PUBLIC_KEYS_FORMAT_VERSION: u8 = 1;
/// Version byte of the [`EcdsaKeyShare`] encoding.
pub const KEY_SHARE_FORMAT_VERSION: u8 = 1;

/// Length of an uncompressed SEC1 point on a 256-bit curve.
const SEC1_UNCOMPRESSED_LEN: usize = 65;

/// The public part of a threshold-ECDSA key: the group public key, every participant's verifying share, the
/// threshold, and the participant ids.
#[derive(Clone)]
pub struct EcdsaPublicKeys {
    curve: EcdsaCurve,
    package: PackageOnCurve,
    ids: IdMap,
    threshold: u16,
    group_key: Vec<u8>,
    encoded: Vec<u8>,
}

impl EcdsaPublicKeys {
    /// Checks a `dkls23` package against the participant list and builds the canonical form: verifying
    /// shares for exactly the indices `1..=n`.
    fn from_dkls<C: EngineCurve>(
        participants: &[ParticipantId],
        package: &PublicKeyPackage<C>,
    ) -> Result<Self, ProtocolError> {
        let ids = IdMap::new(participants)?;
        if ids.ids() != participants {
            return Err(ProtocolError::InvalidParameters(
                "participants must be listed in ascending order".into(),
            ));
        }
        let n = ids.len();
        let threshold = package.threshold();
        if package.share_count() != n {
            return Err(ProtocolError::InvalidParameters(format!(
                "public key package for {} participants, but {n} are listed",
                package.share_count()
            )));
        }
        let parameters = Parameters::new(threshold, n)
            .map_err(|e| ProtocolError::InvalidParameters(format!("public key package: {e}")))?;
        let mut shares = BTreeMap::new();
        for i in 1..=n {
            let index = party_index(i)?;
            let share = package.verifying_share(index).ok_or_else(|| {
                ProtocolError::InvalidParameters(format!(
                    "public key package has no verifying share for party {i}"
                ))
            })?;
            shares.insert(index, *share);
        }
        let group_key = C::sec1_uncompressed(package.verifying_key());
        if group_key.len() != SEC1_UNCOMPRESSED_LEN {
            return Err(ProtocolError::InvalidParameters(
                "group public key is the point at infinity".into(),
            ));
        }
        let canonical = PublicKeyPackage::<C>::new(*package.verifying_key(), shares, parameters);
        let mut encoded = vec![PUBLIC_KEYS_FORMAT_VERSION, C::CURVE.tag()];
        encoded = postcard::to_extend(&(participants, &canonical), encoded)
            .map_err(|e| ProtocolError::Encoding(format!("public keys: {e}")))?;
        Ok(EcdsaPublicKeys {
            curve: C::CURVE,
            package: C::wrap_package(canonical),
            ids,
            threshold: u16::from(threshold),
            group_key,
            encoded,
        })
    }

    /// The curve.
    pub fn curve(&self) -> EcdsaCurve {
        self.curve
    }

    /// The group public key, uncompressed SEC1 (65 bytes: `0x04 ‖ X ‖ Y`).
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.group_key.clone()
    }

    /// The participants holding a share, ascending.
    pub fn participants(&self) -> Vec<ParticipantId> {
        self.ids.ids().to_vec()
    }

    /// How many participants must sign.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The verifying share (`x_i·G`, uncompressed SEC1) of `participant`, if it holds a share.
    pub fn verifying_share_sec1(&self, participant: ParticipantId) -> Option<Vec<u8>> {
        let index = self.ids.index_of(participant)?;
        match &self.package {
            PackageOnCurve::Secp256k1(p) => p
                .verifying_share(index)
                .map(<k256::Secp256k1 as EngineCurve>::sec1_uncompressed),
            PackageOnCurve::P256(p) => p
                .verifying_share(index)
                .map(<p256::NistP256 as EngineCurve>::sec1_uncompressed),
        }
    }

    /// The `dkls23` public key package.
    pub(crate) fn package(&self) -> &PackageOnCurve {
        &self.package
    }

    /// The versioned encoding (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// Decodes [`EcdsaPublicKeys::to_bytes`]; refuses other versions, unknown curves, trailing bytes and
    /// non-canonical encodings.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let (curve, body) = split_header(bytes, PUBLIC_KEYS_FORMAT_VERSION, "public keys")?;
        let keys = match curve {
            EcdsaCurve::Secp256k1 => Self::decode::<k256::Secp256k1>(body)?,
            EcdsaCurve::P256 => Self::decode::<p256::NistP256>(body)?,
        };
        if keys.encoded != bytes {
            return Err(ProtocolError::Encoding(
                "public keys are not in canonical encoding".into(),
            ));
        }
        Ok(keys)
    }

    fn decode<C: EngineCurve>(body: &[u8]) -> Result<Self, ProtocolError> {
        let (participants, package) =
            super::decode::<(Vec<ParticipantId>, PublicKeyPackage<C>)>(body)
                .ok_or_else(|| ProtocolError::Encoding("malformed public keys".into()))?;
        Self::from_dkls(&participants, &package)
    }
}

impl PartialEq for EcdsaPublicKeys {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for EcdsaPublicKeys {}

impl fmt::Debug for EcdsaPublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaPublicKeys")
            .field("curve", &self.curve)
            .field("public_key", &hex::encode(&self.group_key))
            .field("threshold", &self.threshold)
            .field("participants", &self.ids.ids())
            .finish()
    }
}

/// One participant's threshold-ECDSA key share: the `dkls23` `Party` (secret share, OT setup with every
/// other participant, zero-share seeds) plus the public key material and the id mapping.
///
/// The `Party` zeroizes itself on drop; encodings are returned in [`Zeroizing`] buffers. `Debug` prints no
/// secret. Not `Clone`: share it between concurrent signing runs with an `Arc`.
pub struct EcdsaKeyShare {
    party: PartyOnCurve,
    public: EcdsaPublicKeys,
    participant: ParticipantId,
}

impl EcdsaKeyShare {
    /// Wraps the output of a `dkls23` DKG (or a decoded share), checking that the pieces belong together.
    pub(crate) fn from_dkls<C: EngineCurve>(
        participants: &[ParticipantId],
        party: Party<C>,
        package: &PublicKeyPackage<C>,
    ) -> Result<Self, ProtocolError> {
        let public = EcdsaPublicKeys::from_dkls(participants, package)?;
        let mismatch = |what: &str| {
            Err(ProtocolError::InvalidParameters(format!(
                "key share does not match its public key package: {what}"
            )))
        };
        let Some(package) = C::package(&public.package) else {
            return mismatch("curve");
        };
        let n = public.ids.len();
        if party.parameters.share_count != n
            || u16::from(party.parameters.threshold) != public.threshold
        {
            return mismatch("parameters");
        }
        if party.pk != *package.verifying_key() {
            return mismatch("group public key");
        }
        let me = party.party_index;
        let Some(participant) = public.ids.participant_of(me) else {
            return mismatch("party index");
        };
        let own_point = (C::ProjectivePoint::generator() * party.poly_point).to_affine();
        if package.verifying_share(me) != Some(&own_point) {
            return mismatch("secret share does not match its verifying share");
        }
        let others: BTreeSet<PartyIndex> = (1..=n)
            .filter_map(|i| PartyIndex::new(i).ok())
            .filter(|i| *i != me)
            .collect();
        if !party.mul_senders.keys().eq(others.iter())
            || !party.mul_receivers.keys().eq(others.iter())
        {
            return mismatch("OT setup does not cover exactly the other participants");
        }
        Ok(EcdsaKeyShare {
            party: C::wrap_party(party),
            public,
            participant,
        })
    }

    /// The curve.
    pub fn curve(&self) -> EcdsaCurve {
        self.public.curve
    }

    /// The participant holding this share.
    pub fn participant(&self) -> ParticipantId {
        self.participant
    }

    /// How many participants must sign.
    pub fn threshold(&self) -> u16 {
        self.public.threshold
    }

    /// All participants holding a share of this key, ascending.
    pub fn participants(&self) -> Vec<ParticipantId> {
        self.public.participants()
    }

    /// The group public key, uncompressed SEC1 (65 bytes: `0x04 ‖ X ‖ Y`).
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.public.public_key_sec1()
    }

    /// A copy of the public part.
    pub fn public_keys(&self) -> EcdsaPublicKeys {
        self.public.clone()
    }

    /// The `dkls23` party (secret).
    pub(crate) fn party(&self) -> &PartyOnCurve {
        &self.party
    }

    /// The id mapping.
    pub(crate) fn id_map(&self) -> &IdMap {
        &self.public.ids
    }

    /// The versioned encoding (see the module documentation). It contains the secret share and OT setup:
    /// seal it before it touches a disk.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let result = match (&self.party, &self.public.package) {
            (PartyOnCurve::Secp256k1(party), PackageOnCurve::Secp256k1(package)) => {
                encode_share(self.public.ids.ids(), party, package)
            }
            (PartyOnCurve::P256(party), PackageOnCurve::P256(package)) => {
                encode_share(self.public.ids.ids(), party, package)
            }
            // `from_dkls` makes both from the same curve; an empty encoding never decodes.
            _ => Ok(Zeroizing::new(Vec::new())),
        };
        // Serializing plain values into a sized buffer does not fail; an empty encoding never decodes.
        result.unwrap_or_else(|_| Zeroizing::new(Vec::new()))
    }

    /// Decodes [`EcdsaKeyShare::to_bytes`]; refuses other versions, unknown curves, trailing bytes,
    /// non-canonical encodings and inconsistent pieces.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let (curve, body) = split_header(bytes, KEY_SHARE_FORMAT_VERSION, "key share")?;
        let share = match curve {
            EcdsaCurve::Secp256k1 => Self::decode::<k256::Secp256k1>(body)?,
            EcdsaCurve::P256 => Self::decode::<p256::NistP256>(body)?,
        };
        if !bool::from(share.to_bytes().as_slice().ct_eq(bytes)) {
            return Err(ProtocolError::Encoding(
                "key share is not in canonical encoding".into(),
            ));
        }
        Ok(share)
    }

    fn decode<C: EngineCurve>(body: &[u8]) -> Result<Self, ProtocolError> {
        let (participants, party, package) =
            super::decode::<(Vec<ParticipantId>, Party<C>, PublicKeyPackage<C>)>(body)
                .ok_or_else(|| ProtocolError::Encoding("malformed key share".into()))?;
        Self::from_dkls(&participants, party, &package)
    }

    /// The 32-byte secret share scalar (`poly_point`, big-endian). Used ONLY by a test that scans storage
    /// for it; never send or store it.
    pub fn secret_share_bytes(&self) -> Zeroizing<Vec<u8>> {
        on_curve!(&self.party, p => Zeroizing::new(p.poly_point.to_repr().to_vec()))
    }
}

impl fmt::Debug for EcdsaKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaKeyShare")
            .field("curve", &self.public.curve)
            .field("participant", &self.participant)
            .field("threshold", &self.public.threshold)
            .field("participants", &self.public.ids.ids())
            .field("public_key", &hex::encode(&self.public.group_key))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `version ‖ curve tag ‖ postcard(participants, party, package)`, in a buffer sized up front so that no
/// partial copy of the secret is left behind by a growing vector.
fn encode_share<C: EngineCurve>(
    participants: &[ParticipantId],
    party: &Party<C>,
    package: &PublicKeyPackage<C>,
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    let value = (participants, party, package);
    let size = postcard::serialize_with_flavor::<_, postcard::ser_flavors::Size, usize>(
        &value,
        postcard::ser_flavors::Size::default(),
    )
    .map_err(|e| ProtocolError::Encoding(format!("key share: {e}")))?;
    let mut buffer = Zeroizing::new(Vec::with_capacity(size.saturating_add(2)));
    buffer.push(KEY_SHARE_FORMAT_VERSION);
    buffer.push(C::CURVE.tag());
    let taken = std::mem::take(&mut *buffer);
    let filled = postcard::to_extend(&value, taken)
        .map_err(|e| ProtocolError::Encoding(format!("key share: {e}")))?;
    Ok(Zeroizing::new(filled))
}

/// Checks the version byte and reads the curve tag of an encoding.
fn split_header<'a>(
    bytes: &'a [u8],
    version: u8,
    what: &str,
) -> Result<(EcdsaCurve, &'a [u8]), ProtocolError> {
    let (v, rest) = bytes
        .split_first()
        .ok_or_else(|| ProtocolError::Encoding(format!("empty {what} encoding")))?;
    if *v != version {
        return Err(ProtocolError::UnsupportedVersion(*v));
    }
    let (tag, body) = rest
        .split_first()
        .ok_or_else(|| ProtocolError::Encoding(format!("{what} encoding truncated")))?;
    let curve = EcdsaCurve::from_tag(*tag)
        .ok_or_else(|| ProtocolError::Encoding(format!("unknown curve tag {tag}")))?;
    Ok((curve, body))
}

fn party_index(i: u8) -> Result<PartyIndex, ProtocolError> {
    PartyIndex::new(i).map_err(|e| ProtocolError::InvalidParameters(e.to_string()))
}
