//! FROST signing, coordinator side: building the signing package from the signers' commitments, and
//! aggregating their signature shares into one Ed25519 signature (RFC 9591 §5.3), naming every signer whose
//! share is invalid.
//!
//! The coordinator holds no secret. It must take the participant ids of commitments and shares from the
//! authenticated transport, never from the messages themselves.

use std::collections::BTreeMap;

use frost_ed25519::round1::SigningCommitments;
use frost_ed25519::round2::SignatureShare;
use frost_ed25519::{CheaterDetection, Signature, SigningPackage};
use serde::{Deserialize, Serialize};

use super::round1::FrostCommitments;
use super::share::FrostPublicKeys;
use super::{identifier, map_frost_error, participant_of};
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// What the coordinator sends to every signer in round two: the message and all signers' commitments (a
/// serialized `frost-ed25519` `SigningPackage`, which carries its own format header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrostSigningPackage(pub Vec<u8>);

impl FrostSigningPackage {
    /// Decodes the package, checking every commitment point (decompression plus a prime-order check, tens of
    /// microseconds per point): decode once and use the [`DecodedSigningPackage`] for everything else.
    ///
    /// Only the canonical encoding decodes (the one [`signing_package`] makes): `frost-ed25519` would also
    /// take the signers' commitments in any order, a signer listed twice (the last entry winning) and trailing
    /// bytes, so the package is encoded again and must give back exactly these bytes.
    pub fn decode(&self) -> Result<DecodedSigningPackage, ProtocolError> {
        let package = SigningPackage::deserialize(&self.0)
            .map_err(|e| ProtocolError::Encoding(format!("signing package: {e}")))?;
        let canonical = package
            .serialize()
            .map_err(|e| ProtocolError::Encoding(format!("signing package: {e}")))?;
        if canonical != self.0 {
            return Err(ProtocolError::Encoding(
                "signing package is not in canonical encoding (signers out of order or repeated, or \
                 trailing bytes)"
                    .into(),
            ));
        }
        Ok(DecodedSigningPackage(package))
    }

    /// The message to be signed (decodes the whole package; see [`FrostSigningPackage::decode`]).
    pub fn message(&self) -> Result<Vec<u8>, ProtocolError> {
        Ok(self.decode()?.message().to_vec())
    }

    /// The signers whose commitments the package holds, ascending (decodes the whole package).
    pub fn signers(&self) -> Result<Vec<ParticipantId>, ProtocolError> {
        self.decode()?.signers()
    }
}

/// A signing package whose every commitment point has been checked.
#[derive(Clone, Debug)]
pub struct DecodedSigningPackage(pub(crate) SigningPackage);

impl DecodedSigningPackage {
    /// The message to be signed, so that a signer can check it before signing.
    pub fn message(&self) -> &[u8] {
        self.0.message()
    }

    /// The signers whose commitments the package holds, ascending.
    pub fn signers(&self) -> Result<Vec<ParticipantId>, ProtocolError> {
        signers_of(&self.0)
    }
}

/// A signer's commitments whose points have been checked (decode them once, e.g. when they arrive ahead of
/// time, and build packages from them without decoding again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedCommitments(SigningCommitments);

impl FrostCommitments {
    /// Decodes the commitments, checking both points.
    pub fn decode(&self) -> Result<DecodedCommitments, ProtocolError> {
        SigningCommitments::deserialize(&self.0)
            .map(DecodedCommitments)
            .map_err(|e| ProtocolError::Encoding(format!("signing commitments: {e}")))
    }
}

/// The participant ids of a decoded signing package's commitments.
fn signers_of(package: &SigningPackage) -> Result<Vec<ParticipantId>, ProtocolError> {
    package
        .signing_commitments()
        .keys()
        .map(|id| {
            participant_of(id).ok_or_else(|| {
                ProtocolError::Encoding("signing package names a non-participant identifier".into())
            })
        })
        .collect()
}

/// A signer's signature share (a serialized `frost-ed25519` `SignatureShare`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrostSignatureShare(pub Vec<u8>);

/// Builds the signing package for `message` from the commitments of the chosen signers (keyed by the
/// authenticated sender). Every commitment that does not decode names its sender.
pub fn signing_package(
    commitments: &BTreeMap<ParticipantId, FrostCommitments>,
    message: &[u8],
) -> Result<FrostSigningPackage, ProtocolError> {
    let mut decoded = BTreeMap::new();
    let mut culprits = Vec::new();
    for (participant, commitment) in commitments {
        match commitment.decode() {
            Ok(c) => {
                decoded.insert(*participant, c);
            }
            Err(_) => culprits.push(*participant),
        }
    }
    if !culprits.is_empty() {
        return Err(ProtocolError::misbehaviour(
            culprits,
            "malformed signing commitment",
        ));
    }
    signing_package_decoded(&decoded, message).map(|(package, _)| package)
}

/// [`signing_package`] from commitments decoded already: the package to send, and the same package decoded,
/// for [`aggregate_decoded`].
pub fn signing_package_decoded(
    commitments: &BTreeMap<ParticipantId, DecodedCommitments>,
    message: &[u8],
) -> Result<(FrostSigningPackage, DecodedSigningPackage), ProtocolError> {
    if commitments.is_empty() {
        return Err(ProtocolError::InvalidParameters(
            "no signing commitments".into(),
        ));
    }
    let mut by_id = BTreeMap::new();
    for (participant, c) in commitments {
        by_id.insert(identifier(*participant)?, c.0);
    }
    let package = SigningPackage::new(by_id, message);
    let bytes = package
        .serialize()
        .map_err(|e| map_frost_error(e, "signing package"))?;
    Ok((FrostSigningPackage(bytes), DecodedSigningPackage(package)))
}

/// Aggregates the signature shares (keyed by the authenticated sender) into an Ed25519 signature
/// (`R ‖ s`, RFC 8032) under the group key of `public`.
///
/// There must be exactly one share per signer of `package`. Every share that does not decode or does not
/// verify is named in [`ProtocolError::Misbehaviour`] (cheater detection checks all shares, not just the
/// first bad one). The aggregate signature is verified against the group key before it is returned.
pub fn aggregate(
    public: &FrostPublicKeys,
    package: &FrostSigningPackage,
    shares: &BTreeMap<ParticipantId, FrostSignatureShare>,
) -> Result<[u8; 64], ProtocolError> {
    aggregate_decoded(public, &package.decode()?, shares)
}

/// [`aggregate`] with the package decoded already (by [`signing_package_decoded`]).
pub fn aggregate_decoded(
    public: &FrostPublicKeys,
    package: &DecodedSigningPackage,
    shares: &BTreeMap<ParticipantId, FrostSignatureShare>,
) -> Result<[u8; 64], ProtocolError> {
    let signing_package = &package.0;
    let signers = signers_of(signing_package)?;
    if !signers.iter().eq(shares.keys()) {
        return Err(ProtocolError::InvalidParameters(format!(
            "signature shares from {:?} do not match the signers {signers:?} of the signing package",
            shares.keys().collect::<Vec<_>>()
        )));
    }
    let mut decoded = BTreeMap::new();
    let mut culprits = Vec::new();
    for (participant, share) in shares {
        match SignatureShare::deserialize(&share.0) {
            Ok(s) => {
                decoded.insert(identifier(*participant)?, s);
            }
            Err(_) => culprits.push(*participant),
        }
    }
    if !culprits.is_empty() {
        return Err(ProtocolError::misbehaviour(
            culprits,
            "malformed signature share",
        ));
    }
    let signature: Signature = frost_ed25519::aggregate_custom(
        signing_package,
        &decoded,
        public.frost_package(),
        CheaterDetection::AllCheaters,
    )
    .map_err(|e| map_frost_error(e, "aggregation"))?;
    // `aggregate_custom` verifies already; checking again keeps the guarantee independent of its internals.
    public
        .frost_package()
        .verifying_key()
        .verify(signing_package.message(), &signature)
        .map_err(|e| ProtocolError::State(format!("aggregate signature does not verify: {e}")))?;
    signature
        .serialize()
        .map_err(|e| map_frost_error(e, "signature"))?
        .try_into()
        .map_err(|_| ProtocolError::Encoding("signature is not 64 bytes".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    /// The commitments of signers 1 and 2 of a 2-of-3 key made by frost's trusted dealer (test only).
    fn commitments() -> BTreeMap<ParticipantId, DecodedCommitments> {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let (shares, _) = frost_ed25519::keys::generate_with_dealer(
            3,
            2,
            frost_ed25519::keys::IdentifierList::Default,
            &mut rng,
        )
        .unwrap();
        [1u16, 2]
            .into_iter()
            .map(|p| {
                let share = shares[&identifier(p).unwrap()].signing_share();
                let (_nonces, c) = frost_ed25519::round1::commit(share, &mut rng);
                (p, DecodedCommitments(c))
            })
            .collect()
    }

    #[test]
    fn only_the_canonical_signing_package_decodes() {
        let all = commitments();
        let one: BTreeMap<_, _> = all.iter().take(1).map(|(p, c)| (*p, c.clone())).collect();
        let message = b"m";
        let (two, _) = signing_package_decoded(&all, message).unwrap();
        let (single, _) = signing_package_decoded(&one, message).unwrap();
        assert_eq!(two.decode().unwrap().signers().unwrap(), vec![1, 2]);
        // `header ‖ count ‖ entry 1 ‖ entry 2 ‖ message` against `header ‖ count ‖ entry 1 ‖ message`.
        let entry = two.0.len() - single.0.len();
        let tail = 1 + message.len();
        let header = single.0.len() - tail - entry - 1;
        assert_eq!(two.0[header], 2);
        let (head, rest) = two.0.split_at(header + 1);
        let (first, rest) = rest.split_at(entry);
        let (second, tail) = rest.split_at(entry);
        let reordered = [head, second, first, tail].concat();
        let repeated = [head, first, first, tail].concat();
        // frost-ed25519 alone takes both (and the reordered one re-encodes otherwise).
        let lenient = SigningPackage::deserialize(&reordered).unwrap();
        assert_eq!(lenient.serialize().unwrap(), two.0);
        assert_eq!(
            SigningPackage::deserialize(&repeated)
                .unwrap()
                .signing_commitments()
                .len(),
            1
        );
        for bad in [reordered, repeated, [two.0.as_slice(), &[0]].concat()] {
            assert!(matches!(
                FrostSigningPackage(bad).decode(),
                Err(ProtocolError::Encoding(_))
            ));
        }
        // The canonical package still decodes, and re-encodes to its bytes.
        assert_eq!(two.decode().unwrap().0.serialize().unwrap(), two.0);
    }
}
