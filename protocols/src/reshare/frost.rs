//! Resharing FROST(Ed25519) keys: from [`FrostPublicKeys`] / [`FrostKeyShare`] to a [`Reshare`] on
//! [`EdwardsPoint`], and from its [`ReshareOutput`] back to a [`FrostKeyShare`] / [`FrostPublicKeys`].
//!
//! A `frost-ed25519` share of participant `i` is the value of the sharing polynomial at the identifier
//! `Identifier::try_from(i)`, i.e. at `x = i` ([`EvaluationPoints::ParticipantId`]); verifying shares and the
//! group key are Ed25519 points in the prime-order subgroup, which [`ReshareGroup`] checks on every decode.

use std::collections::BTreeMap;

use curve25519_dalek::EdwardsPoint;
use frost_ed25519::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use frost_ed25519::VerifyingKey;
use zeroize::Zeroizing;

use super::group::ReshareGroup;
use super::output::ReshareOutput;
use super::polynomial::EvaluationPoints;
use super::redistribution::{Reshare, ReshareParams};
use super::shared_key::{dealer_input, DealerSecret, SharedKey};
use crate::error::ProtocolError;
use crate::frost::{identifier, map_frost_error, participant_of, FrostKeyShare, FrostPublicKeys};

fn point(bytes: &[u8], what: &str) -> Result<EdwardsPoint, ProtocolError> {
    EdwardsPoint::from_bytes(bytes).ok_or_else(|| {
        ProtocolError::InvalidParameters(format!("{what} is not a valid Ed25519 point"))
    })
}

impl FrostPublicKeys {
    /// The key as a [`SharedKey`] on Ed25519, for a reshare.
    pub fn shared_key(&self) -> Result<SharedKey<EdwardsPoint>, ProtocolError> {
        let package = self.frost_package();
        let mut shares = BTreeMap::new();
        for (id, share) in package.verifying_shares() {
            let participant = participant_of(id).ok_or_else(|| {
                ProtocolError::InvalidParameters("identifier is not a participant id".into())
            })?;
            let bytes = share
                .serialize()
                .map_err(|e| map_frost_error(e, "verifying share"))?;
            shares.insert(participant, point(&bytes, "verifying share")?);
        }
        SharedKey::new(
            self.threshold(),
            EvaluationPoints::ParticipantId,
            point(&self.group_public_key(), "group public key")?,
            shares,
        )
    }

    /// The public keys after a reshare, for every participant of the run (also one that left the committee).
    pub fn from_reshare(output: &ReshareOutput<EdwardsPoint>) -> Result<Self, ProtocolError> {
        FrostPublicKeys::from_frost(public_key_package(output.public())?)
    }
}

impl FrostKeyShare {
    /// This holder's share, as a dealer's input to a reshare.
    pub fn dealer_secret(&self) -> Result<DealerSecret<EdwardsPoint>, ProtocolError> {
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
            self.signing_share_bytes()
                .as_slice()
                .try_into()
                .map_err(|_| ProtocolError::State("signing share is not 32 bytes".into()))?,
        );
        let scalar = EdwardsPoint::scalar_from_bytes(&bytes).ok_or_else(|| {
            ProtocolError::State("signing share is not a canonical scalar".into())
        })?;
        Ok(DealerSecret::new(Zeroizing::new(scalar)))
    }

    /// The new key share of a member of the new committee after a reshare. Fails for a participant that
    /// left the committee (it gets only [`FrostPublicKeys::from_reshare`]).
    pub fn from_reshare(output: &ReshareOutput<EdwardsPoint>) -> Result<Self, ProtocolError> {
        let secret = output.secret().ok_or_else(|| {
            ProtocolError::InvalidParameters(format!(
                "participant {} is not in the new committee",
                output.participant()
            ))
        })?;
        let public = output.public();
        let package = public_key_package(public)?;
        let signing_share =
            SigningShare::deserialize(EdwardsPoint::scalar_to_bytes(secret).as_slice())
                .map_err(|e| map_frost_error(e, "signing share"))?;
        let me = output.participant();
        let verifying_share = *package
            .verifying_shares()
            .get(&identifier(me)?)
            .ok_or_else(|| ProtocolError::State(format!("no verifying share for {me}")))?;
        let key_package = KeyPackage::new(
            identifier(me)?,
            signing_share,
            verifying_share,
            *package.verifying_key(),
            public.threshold(),
        );
        FrostKeyShare::from_frost(key_package, package)
    }
}

/// The `frost-ed25519` public key package of a [`SharedKey`] on Ed25519.
fn public_key_package(key: &SharedKey<EdwardsPoint>) -> Result<PublicKeyPackage, ProtocolError> {
    if key.evaluation_points() != EvaluationPoints::ParticipantId {
        return Err(ProtocolError::InvalidParameters(
            "FROST shares live at x = participant id".into(),
        ));
    }
    let verifying_key = VerifyingKey::deserialize(&key.group_key().to_bytes())
        .map_err(|e| map_frost_error(e, "group public key"))?;
    let verifying_shares = key
        .public_shares()
        .iter()
        .map(|(id, p)| {
            let share = VerifyingShare::deserialize(&p.to_bytes())
                .map_err(|e| map_frost_error(e, "verifying share"))?;
            Ok((identifier(*id)?, share))
        })
        .collect::<Result<BTreeMap<_, _>, ProtocolError>>()?;
    Ok(PublicKeyPackage::new(
        verifying_shares,
        verifying_key,
        Some(key.threshold()),
    ))
}

impl Reshare<EdwardsPoint> {
    /// One participant of a reshare of a FROST key: `old` is the key's public part as it is now, `own` this
    /// participant's share if it is a dealer (`None` for a participant that only receives).
    pub fn frost(
        params: ReshareParams,
        old: &FrostPublicKeys,
        own: Option<&FrostKeyShare>,
    ) -> Result<Self, ProtocolError> {
        let secret = dealer_input(params.me, &params.dealers, own, |s| {
            (s.participant(), s.public_keys() == *old, s.dealer_secret())
        })?;
        Reshare::new(params, old.shared_key()?, secret)
    }
}
