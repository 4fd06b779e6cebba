//! Resharing threshold-ECDSA (DKLs23) keys on secp256k1 and P-256, in two runs:
//!
//! 1. [`EcdsaReshare`]: the generic reshare ([`Reshare`]) on the key's curve, between the dealers and the new
//!    committee. Its output ([`EcdsaReshareOutput`]) gives each member of the new committee its new Shamir
//!    share; a dealer that leaves learns only the new public key material.
//! 2. [`EcdsaDkg::after_reshare`](crate::ecdsa::EcdsaDkg::after_reshare): the new committee alone (with a
//!    fresh session id) rebuilds the pairwise state DKLs23 signing needs (base-OT multiplication set-up and
//!    zero-sharing seeds for every pair) and outputs the [`EcdsaKeyShare`]s. See
//!    [`crate::ecdsa::dkg`](crate::ecdsa::dkg#after-a-reshare) for why this is sound.
//!
//! `dkls23` numbers the holders of a key `1..=n` in ascending id order and a share is the polynomial's value
//! at that index, so both committees use [`EvaluationPoints::Rank`]: an id that stays may move to another
//! x-coordinate (e.g. id 3 is at x = 3 in {1, 2, 3, 4} and at x = 2 in {1, 3, 4}).

use std::collections::BTreeMap;
use std::fmt;

use dkls23::protocols::{PartyIndex, PublicKeyPackage};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::group::ReshareGroup;
use super::message::ReshareMessage;
use super::output::{ExcludedDealer, RefutedComplaint, ReshareOutput};
use super::polynomial::EvaluationPoints;
use super::redistribution::{Reshare, ReshareParams};
use super::shared_key::{dealer_input, DealerSecret, SharedKey};
use crate::ecdsa::curve::{on_curve, EcdsaCurve, EngineCurve, OnCurve, PackageOnCurve};
use crate::ecdsa::{EcdsaKeyShare, EcdsaPublicKeys};
use crate::error::ProtocolError;
use crate::party::{Outgoing, ParticipantId, Protocol, SessionId};

type ReshareOnCurve =
    OnCurve<Box<Reshare<k256::ProjectivePoint>>, Box<Reshare<p256::ProjectivePoint>>>;

/// One participant of a reshare of a threshold-ECDSA key (step 1 of [the two](self)), on the key's curve.
pub struct EcdsaReshare {
    inner: ReshareOnCurve,
}

impl EcdsaReshare {
    /// One participant of a reshare of an ECDSA key: `old` is the key's public part as it is now, `own` this
    /// participant's share if it is a dealer (`None` for a participant that only receives). The new
    /// committee may have at most 255 members (a `dkls23` limit).
    pub fn new(
        params: ReshareParams,
        old: &EcdsaPublicKeys,
        own: Option<&EcdsaKeyShare>,
    ) -> Result<Self, ProtocolError> {
        if params.new_committee.len() > usize::from(u8::MAX) {
            return Err(ProtocolError::InvalidParameters(format!(
                "DKLs23 supports at most {} participants, not {}",
                u8::MAX,
                params.new_committee.len()
            )));
        }
        let inner = match old.package() {
            PackageOnCurve::Secp256k1(package) => {
                ReshareOnCurve::Secp256k1(Box::new(build::<k256::Secp256k1>(
                    params, old, package, own,
                )?))
            }
            PackageOnCurve::P256(package) => ReshareOnCurve::P256(Box::new(
                build::<p256::NistP256>(params, old, package, own)?,
            )),
        };
        Ok(EcdsaReshare { inner })
    }

    /// The key's curve.
    pub fn curve(&self) -> EcdsaCurve {
        match &self.inner {
            OnCurve::Secp256k1(_) => EcdsaCurve::Secp256k1,
            OnCurve::P256(_) => EcdsaCurve::P256,
        }
    }

    /// The run's session id.
    pub fn session(&self) -> SessionId {
        on_curve!(&self.inner, run => run.session())
    }

    /// True if the run failed; it cannot be resumed.
    pub fn is_aborted(&self) -> bool {
        on_curve!(&self.inner, run => run.is_aborted())
    }

    /// Every participant of the run (dealers and new holders), ascending: where [`crate::Recipient::All`]
    /// goes.
    pub fn participants(&self) -> Vec<ParticipantId> {
        on_curve!(&self.inner, run => run.participants())
    }

    /// **Fault injection, for tests only**: see [`Reshare::deal_wrong_sub_shares_to`].
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn deal_wrong_sub_shares_to(&mut self, victims: impl IntoIterator<Item = ParticipantId>) {
        on_curve!(&mut self.inner, run => run.deal_wrong_sub_shares_to(victims))
    }

    /// **Fault injection, for tests only**: see [`Reshare::complain_falsely_about`].
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn complain_falsely_about(&mut self, dealers: impl IntoIterator<Item = ParticipantId>) {
        on_curve!(&mut self.inner, run => run.complain_falsely_about(dealers))
    }
}

fn build<C: EngineCurve>(
    params: ReshareParams,
    old: &EcdsaPublicKeys,
    package: &PublicKeyPackage<C>,
    own: Option<&EcdsaKeyShare>,
) -> Result<Reshare<C::ProjectivePoint>, ProtocolError>
where
    C::ProjectivePoint: ReshareGroup<Scalar = C::Scalar>,
{
    let secret = dealer_input(params.me, &params.dealers, own, |s| {
        let secret = C::party(s.party())
            .map(|p| DealerSecret::new(Zeroizing::new(p.poly_point)))
            .ok_or_else(|| ProtocolError::InvalidParameters("share on another curve".into()));
        (s.participant(), s.public_keys() == *old, secret)
    })?;
    Reshare::new(params, shared_key(&old.participants(), package)?, secret)
}

/// The key as a [`SharedKey`] on its curve, at rank x-coordinates.
fn shared_key<C: EngineCurve>(
    participants: &[ParticipantId],
    package: &PublicKeyPackage<C>,
) -> Result<SharedKey<C::ProjectivePoint>, ProtocolError>
where
    C::ProjectivePoint: ReshareGroup<Scalar = C::Scalar>,
{
    let mut shares = BTreeMap::new();
    for (position, id) in participants.iter().enumerate() {
        let index = u8::try_from(position + 1)
            .ok()
            .and_then(|i| PartyIndex::new(i).ok())
            .ok_or_else(|| ProtocolError::InvalidParameters("too many participants".into()))?;
        let share = package.verifying_share(index).ok_or_else(|| {
            ProtocolError::InvalidParameters(format!("no verifying share for {id}"))
        })?;
        shares.insert(*id, C::ProjectivePoint::from(*share));
    }
    SharedKey::new(
        u16::from(package.threshold()),
        EvaluationPoints::Rank,
        C::ProjectivePoint::from(*package.verifying_key()),
        shares,
    )
}

impl Protocol for EcdsaReshare {
    type Message = ReshareMessage;
    type Output = EcdsaReshareOutput;

    fn participant(&self) -> ParticipantId {
        on_curve!(&self.inner, run => run.participant())
    }

    fn start<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<ReshareMessage>>, ProtocolError> {
        on_curve!(&mut self.inner, run => run.start(rng))
    }

    fn handle<R: RngCore + CryptoRng>(
        &mut self,
        from: ParticipantId,
        message: ReshareMessage,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<ReshareMessage>>, ProtocolError> {
        on_curve!(&mut self.inner, run => run.handle(from, message, rng))
    }

    fn is_done(&self) -> bool {
        on_curve!(&self.inner, run => run.is_done())
    }

    fn take_output(&mut self) -> Option<EcdsaReshareOutput> {
        let inner = match &mut self.inner {
            OnCurve::Secp256k1(run) => OnCurve::Secp256k1(run.take_output()?),
            OnCurve::P256(run) => OnCurve::P256(run.take_output()?),
        };
        Some(EcdsaReshareOutput { inner })
    }
}

impl fmt::Debug for EcdsaReshare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        on_curve!(&self.inner, run => fmt::Debug::fmt(run, f))
    }
}

/// One participant's output of an [`EcdsaReshare`]: the new share (members of the new committee) and the new
/// public key material, on the key's curve. A member of the new committee passes it to
/// [`EcdsaDkg::after_reshare`](crate::ecdsa::EcdsaDkg::after_reshare); it cannot sign before that.
pub struct EcdsaReshareOutput {
    inner: OnCurve<ReshareOutput<k256::ProjectivePoint>, ReshareOutput<p256::ProjectivePoint>>,
}

impl EcdsaReshareOutput {
    pub(crate) fn inner(
        &self,
    ) -> &OnCurve<ReshareOutput<k256::ProjectivePoint>, ReshareOutput<p256::ProjectivePoint>> {
        &self.inner
    }

    /// The key's curve.
    pub fn curve(&self) -> EcdsaCurve {
        match &self.inner {
            OnCurve::Secp256k1(_) => EcdsaCurve::Secp256k1,
            OnCurve::P256(_) => EcdsaCurve::P256,
        }
    }

    /// The participant it belongs to.
    pub fn participant(&self) -> ParticipantId {
        on_curve!(&self.inner, o => o.participant())
    }

    /// The run that produced it.
    pub fn session(&self) -> SessionId {
        on_curve!(&self.inner, o => o.session())
    }

    /// The new threshold.
    pub fn threshold(&self) -> u16 {
        on_curve!(&self.inner, o => o.threshold())
    }

    /// The new committee, ascending.
    pub fn committee(&self) -> Vec<ParticipantId> {
        on_curve!(&self.inner, o => o.committee())
    }

    /// True if this participant is in the new committee (and must run the pairwise set-up).
    pub fn holds_share(&self) -> bool {
        on_curve!(&self.inner, o => o.holds_share())
    }

    /// The dealers whose sub-shares were combined.
    pub fn dealers(&self) -> &[ParticipantId] {
        on_curve!(&self.inner, o => o.dealers())
    }

    /// The dealers that were left out, and why.
    pub fn excluded(&self) -> &[ExcludedDealer] {
        on_curve!(&self.inner, o => o.excluded())
    }

    /// The complaints the accused dealers refuted (see [`ReshareOutput::refuted_complaints`]).
    pub fn refuted_complaints(&self) -> &[RefutedComplaint] {
        on_curve!(&self.inner, o => o.refuted_complaints())
    }

    /// Everyone the run named, as a [`ProtocolError::Misbehaviour`], for logging (see
    /// [`ReshareOutput::blame`]).
    pub fn blame(&self) -> Option<ProtocolError> {
        on_curve!(&self.inner, o => o.blame())
    }

    /// The group public key (unchanged by the reshare), uncompressed SEC1 (65 bytes).
    pub fn public_key_sec1(&self) -> Vec<u8> {
        match &self.inner {
            OnCurve::Secp256k1(o) => k256::Secp256k1::sec1_uncompressed(&o.group_key().to_affine()),
            OnCurve::P256(o) => p256::NistP256::sec1_uncompressed(&o.group_key().to_affine()),
        }
    }

    /// The encoding ([`ReshareOutput::to_bytes`]; its group tag names the curve). It contains the new
    /// share: seal it.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        on_curve!(&self.inner, o => o.to_bytes())
    }

    /// Decodes [`EcdsaReshareOutput::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let inner = match bytes.get(1) {
            Some(&tag) if tag == <k256::ProjectivePoint as ReshareGroup>::TAG => {
                OnCurve::Secp256k1(ReshareOutput::from_bytes(bytes)?)
            }
            Some(&tag) if tag == <p256::ProjectivePoint as ReshareGroup>::TAG => {
                OnCurve::P256(ReshareOutput::from_bytes(bytes)?)
            }
            _ => {
                return Err(ProtocolError::Encoding(
                    "not an ECDSA reshare output".into(),
                ))
            }
        };
        Ok(EcdsaReshareOutput { inner })
    }
}

impl fmt::Debug for EcdsaReshareOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        on_curve!(&self.inner, o => fmt::Debug::fmt(o, f))
    }
}
