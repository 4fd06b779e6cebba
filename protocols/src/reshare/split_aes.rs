//! Resharing split-AES keys: from [`SplitAesPublicKeys`] / [`SplitAesKeyShare`] to a [`Reshare`] on
//! [`RistrettoPoint`], and from its [`ReshareOutput`] back.
//!
//! The DPRF key `k` is unchanged, so every ciphertext blob made before a reshare still decrypts after it (the
//! message key is derived from `H2G(key_id ‖ α)^k`, whoever evaluates it). Shares live at `x = id`
//! ([`EvaluationPoints::ParticipantId`]), as in [`crate::split_aes::dkg`].

use std::collections::BTreeMap;

use curve25519_dalek::RistrettoPoint;
use zeroize::Zeroizing;

use super::output::ReshareOutput;
use super::polynomial::EvaluationPoints;
use super::redistribution::{Reshare, ReshareParams};
use super::shared_key::{dealer_input, DealerSecret, SharedKey};
use crate::error::ProtocolError;
use crate::split_aes::{SplitAesKeyShare, SplitAesPublicKeys};

impl SplitAesPublicKeys {
    /// The key as a [`SharedKey`] on ristretto255, for a reshare.
    pub fn shared_key(&self) -> Result<SharedKey<RistrettoPoint>, ProtocolError> {
        let shares: BTreeMap<_, _> = self
            .participants()
            .into_iter()
            .filter_map(|id| self.public_share_point(id).map(|p| (id, *p)))
            .collect();
        SharedKey::new(
            self.threshold(),
            EvaluationPoints::ParticipantId,
            *self.group_key_point(),
            shares,
        )
    }

    /// The public keys after a reshare, for every participant of the run (also one that left the committee).
    pub fn from_reshare(output: &ReshareOutput<RistrettoPoint>) -> Result<Self, ProtocolError> {
        let key = output.public();
        if key.evaluation_points() != EvaluationPoints::ParticipantId {
            return Err(ProtocolError::InvalidParameters(
                "split-AES shares live at x = participant id".into(),
            ));
        }
        SplitAesPublicKeys::new(
            key.threshold(),
            *key.group_key(),
            key.public_shares().clone(),
        )
    }
}

impl SplitAesKeyShare {
    /// This holder's share, as a dealer's input to a reshare.
    pub fn dealer_secret(&self) -> DealerSecret<RistrettoPoint> {
        DealerSecret::new(Zeroizing::new(*self.secret()))
    }

    /// The new key share of a member of the new committee after a reshare. Fails for a participant that
    /// left the committee (it gets only [`SplitAesPublicKeys::from_reshare`]).
    pub fn from_reshare(output: &ReshareOutput<RistrettoPoint>) -> Result<Self, ProtocolError> {
        let secret = output.secret().ok_or_else(|| {
            ProtocolError::InvalidParameters(format!(
                "participant {} is not in the new committee",
                output.participant()
            ))
        })?;
        SplitAesKeyShare::new(
            output.participant(),
            Zeroizing::new(*secret),
            SplitAesPublicKeys::from_reshare(output)?,
        )
    }
}

impl Reshare<RistrettoPoint> {
    /// One participant of a reshare of a split-AES key: `old` is the key's public part as it is now, `own`
    /// this participant's share if it is a dealer (`None` for a participant that only receives).
    pub fn split_aes(
        params: ReshareParams,
        old: &SplitAesPublicKeys,
        own: Option<&SplitAesKeyShare>,
    ) -> Result<Self, ProtocolError> {
        let secret = dealer_input(params.me, &params.dealers, own, |s| {
            (s.participant(), s.public() == old, Ok(s.dealer_secret()))
        })?;
        Reshare::new(params, old.shared_key()?, secret)
    }
}
