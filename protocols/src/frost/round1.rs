//! FROST signing, round one (signer side): fresh nonces and the commitments to them (RFC 9591 §5.1).
//!
//! The signer keeps the [`FrostNonces`] and sends the [`FrostCommitments`] to the coordinator. The nonces
//! MUST NOT be sent to other participants and are single-use: [`crate::frost::sign`] consumes them by value,
//! and they cannot be cloned or serialized. Using the same nonces for two different signing packages would
//! reveal the signer's secret share.

use std::fmt;

use frost_ed25519::round1::SigningNonces;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::share::FrostKeyShare;
use crate::party::ParticipantId;

/// A signer's secret nonces for one signing operation.
///
/// MUST NOT be sent to other participants; single use (consumed by [`crate::frost::sign`]). Not `Clone`, not
/// `Serialize`; `Debug` is redacted; zeroized on drop.
pub struct FrostNonces {
    nonces: SigningNonces,
    commitments: FrostCommitments,
    participant: ParticipantId,
}

impl FrostNonces {
    /// The public commitments to these nonces (what [`commit`] returned alongside).
    pub fn commitments(&self) -> &FrostCommitments {
        &self.commitments
    }

    /// The participant whose share these nonces were made with.
    pub fn participant(&self) -> ParticipantId {
        self.participant
    }

    pub(crate) fn frost_nonces(&self) -> &SigningNonces {
        &self.nonces
    }
}

impl fmt::Debug for FrostNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrostNonces")
            .field("participant", &self.participant)
            .field("nonces", &"<redacted>")
            .finish()
    }
}

/// A signer's public commitments to its nonces: a serialized `frost-ed25519` `SigningCommitments` (which
/// carries its own format header). Sent to the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrostCommitments(pub Vec<u8>);

/// Round one made ahead of time (FROST's preprocessing stage): fresh nonces for `participant`, not yet tied to
/// any key, hedged with `hedge` (a secret of the holder's that is not its RNG's output) instead of a key share.
///
/// FROST allows commitments to be published before the message and the signer set are known: the binding factor
/// of each signer (RFC 9591 §4.4) is computed over the message and every commitment of the signing package, so a
/// commitment handed out early cannot be steered into a forgery (the ROS-style attack FROST was designed
/// against). What stays essential is that each pair is used for one signature share at most: the holder keeps
/// the [`FrostNonces`] and [`crate::frost::sign`] consumes them. A nonce is a secret of the participant, not of
/// a key, so one pool serves every key whose share that participant holds.
pub fn precommit<R: RngCore + CryptoRng>(
    participant: ParticipantId,
    hedge: &[u8; 32],
    rng: &mut R,
) -> Result<(FrostNonces, FrostCommitments), crate::ProtocolError> {
    use curve25519_dalek::Scalar;
    // A canonical scalar encoding, so that it parses as a signing share (the value only seeds RFC 9591's
    // nonce_generate).
    let hedge = zeroize::Zeroizing::new(Scalar::from_bytes_mod_order(*hedge).to_bytes());
    let mut secret = frost_ed25519::keys::SigningShare::deserialize(hedge.as_slice())
        .map_err(|e| crate::ProtocolError::InvalidParameters(format!("nonce hedge: {e}")))?;
    let made = commit_with(&secret, participant, rng);
    // `SigningShare` is `Copy` and does not wipe itself; this one is derived from the holder's secret.
    zeroize::Zeroize::zeroize(&mut secret);
    Ok(made)
}

/// Round one: draws fresh nonces for `share`'s holder and commits to them.
///
/// Nonces are derived as in RFC 9591 (`nonce_generate`): from 32 fresh random bytes and the secret share, so
/// that a weak RNG alone does not expose the share.
pub fn commit<R: RngCore + CryptoRng>(
    share: &FrostKeyShare,
    rng: &mut R,
) -> (FrostNonces, FrostCommitments) {
    commit_with(
        share.key_package().signing_share(),
        share.participant(),
        rng,
    )
}

/// `frost_ed25519::round1::commit` with `secret` (the share, or a pre-commitment's hedge), redrawing until the
/// commitments serialize.
fn commit_with<R: RngCore + CryptoRng>(
    secret: &frost_ed25519::keys::SigningShare,
    participant: ParticipantId,
    rng: &mut R,
) -> (FrostNonces, FrostCommitments) {
    loop {
        let (nonces, commitments) = frost_ed25519::round1::commit(secret, rng);
        // Serialization fails only for an identity commitment, i.e. a zero nonce (probability ~2^-252);
        // such nonces must not be used, so draw again.
        if let Ok(bytes) = commitments.serialize() {
            let commitments = FrostCommitments(bytes);
            return (
                FrostNonces {
                    nonces,
                    commitments: commitments.clone(),
                    participant,
                },
                commitments,
            );
        }
    }
}
