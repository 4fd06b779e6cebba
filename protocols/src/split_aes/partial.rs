//! Node side: a participant's partial evaluation of the DPRF, `H^{k_i}` for the input point
//! `H = H2G(key_id ‖ α)`, with a DLEQ proof against its public share `g^{k_i}`.
//!
//! The node must check, before calling [`evaluate`], that the requester may use `key_id`: an evaluation on
//! `(key_id, α)` is exactly what lets `t` of them derive the key of the blob carrying α. The node needs nothing
//! else from the request: α is opaque to it.

use std::fmt;

use curve25519_dalek::ristretto::RistrettoPoint;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use super::dleq::{DleqProof, DleqStatement};
use super::share::SplitAesKeyShare;
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// Domain separation tag of the hash to the group.
pub const H2G_DOMAIN: &[u8] = b"vhsm/split-aes/h2g/v1";

/// Version byte of [`PartialEvaluation`].
pub const PARTIAL_EVALUATION_VERSION: u8 = 1;

/// The DPRF input point `H = H2G("vhsm/split-aes/h2g/v1" ‖ u32 len(key_id) ‖ key_id ‖ α)` (ristretto255
/// hash-to-group with SHA-512).
pub fn input_point(key_id: &[u8], alpha: &[u8; 32]) -> RistrettoPoint {
    let key_id_len = u32::try_from(key_id.len()).unwrap_or(u32::MAX);
    RistrettoPoint::from_hash(
        Sha512::new()
            .chain_update(H2G_DOMAIN)
            .chain_update(key_id_len.to_be_bytes())
            .chain_update(key_id)
            .chain_update(alpha),
    )
}

/// One node's answer to an evaluation request: `H^{k_i}` (compressed) with its DLEQ proof. Sent to the
/// coordinator only, over a confidential channel: any `t` of them give the message key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialEvaluation {
    /// [`PARTIAL_EVALUATION_VERSION`].
    pub version: u8,
    /// The participant that claims to have produced it (checked against the authenticated sender).
    pub participant: ParticipantId,
    /// `H^{k_i}`, compressed ristretto255.
    pub point: [u8; 32],
    /// Proof that `log_g g^{k_i} == log_H point`.
    pub proof: DleqProof,
}

impl PartialEvaluation {
    /// Encodes with postcard; the first byte is the version.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        postcard::to_allocvec(self)
            .map_err(|e| ProtocolError::Encoding(format!("partial evaluation: {e}")))
    }

    /// Decodes [`PartialEvaluation::to_bytes`]; checks the version byte first and refuses trailing bytes.
    /// (The point and proof are checked by [`super::combine()`].)
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        match bytes.first() {
            None => return Err(ProtocolError::Encoding("empty partial evaluation".into())),
            Some(&PARTIAL_EVALUATION_VERSION) => {}
            Some(&v) => return Err(ProtocolError::UnsupportedVersion(v)),
        }
        let (partial, rest) = postcard::take_from_bytes::<PartialEvaluation>(bytes)
            .map_err(|e| ProtocolError::Encoding(format!("partial evaluation: {e}")))?;
        if !rest.is_empty() {
            return Err(ProtocolError::Encoding(
                "trailing bytes after partial evaluation".into(),
            ));
        }
        Ok(partial)
    }
}

impl fmt::Debug for PartialEvaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The point is left out: t partials of one α give that message's key.
        f.debug_struct("PartialEvaluation")
            .field("version", &self.version)
            .field("participant", &self.participant)
            .finish_non_exhaustive()
    }
}

/// The partial evaluation of `share` on `(key_id, α)`: `H^{k_i}` and a DLEQ proof (fresh nonce from `rng`).
pub fn evaluate<R: RngCore + CryptoRng>(
    share: &SplitAesKeyShare,
    key_id: &[u8],
    alpha: &[u8; 32],
    rng: &mut R,
) -> PartialEvaluation {
    let (_, output, proof) = evaluate_at(share, key_id, alpha, input_point(key_id, alpha), rng);
    PartialEvaluation {
        version: PARTIAL_EVALUATION_VERSION,
        participant: share.participant(),
        point: output.compress().to_bytes(),
        proof,
    }
}

/// `input^{k_i}` with its DLEQ proof for `(key_id, α)`, and the public share `g^{k_i}` it is proved against: the
/// evaluation behind a partial ([`evaluate`]) and behind an encryption receipt (`super::receipt`), which differ
/// only in the input point.
pub(crate) fn evaluate_at<R: RngCore + CryptoRng>(
    share: &SplitAesKeyShare,
    key_id: &[u8],
    alpha: &[u8; 32],
    input: RistrettoPoint,
    rng: &mut R,
) -> (RistrettoPoint, RistrettoPoint, DleqProof) {
    let output = input * share.secret();
    // Present by construction of the share (checked against g^{k_i} then).
    let public_share = share
        .public()
        .public_share_point(share.participant())
        .copied()
        .unwrap_or_else(|| RistrettoPoint::mul_base(share.secret()));
    let statement = DleqStatement {
        key_id,
        alpha,
        participant: share.participant(),
        public_share,
        input,
        output,
    };
    let proof = DleqProof::prove(&statement, share.secret(), rng);
    (public_share, output, proof)
}

/// A self-test of the partial evaluation (for a node's start-up self-tests): with a fixed share, the DLEQ proof of
/// an evaluation verifies, and the proof of a wrong output does not.
pub fn self_test<R: RngCore + CryptoRng>(rng: &mut R) -> bool {
    let secret = curve25519_dalek::Scalar::from(0x5648_5348_u64);
    let (key_id, alpha) = (b"vhsm self-test", [0x5a; 32]);
    let input = input_point(key_id, &alpha);
    let statement = DleqStatement {
        key_id,
        alpha: &alpha,
        participant: 1,
        public_share: RistrettoPoint::mul_base(&secret),
        input,
        output: input * secret,
    };
    let proof = DleqProof::prove(&statement, &secret, rng);
    let wrong = DleqStatement {
        output: input * (secret + curve25519_dalek::Scalar::ONE),
        ..statement
    };
    proof.verify(&statement) && !proof.verify(&wrong)
}
