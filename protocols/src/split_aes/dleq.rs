//! Chaum–Pedersen proof of equality of discrete logarithms (DLEQ), non-interactive by Fiat–Shamir.
//!
//! Statement ([`DleqStatement`]): for the public share `X = g^{k_i}`, the input point `H` and the partial
//! evaluation `Y`, `log_g X == log_H Y`. Proof ([`DleqProof`]): `(c, z)` with `A = g^r`, `B = H^r`,
//! `c = SHA-512("vhsm/split-aes/dleq/v1" ‖ u32 len(key_id) ‖ key_id ‖ α ‖ participant u16 ‖ g ‖ X ‖ H ‖ Y ‖ A ‖ B)`
//! reduced mod ℓ, and `z = r + c·k_i`. The verifier recomputes `A = g^z · X^{−c}`, `B = H^z · Y^{−c}` and
//! checks `c`. The challenge binds the key id, α and the prover's id, so a proof cannot be replayed for
//! another message, key or participant.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::MultiscalarMul;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::party::ParticipantId;

/// Domain separation tag of the DLEQ challenge.
pub const DLEQ_DOMAIN: &[u8] = b"vhsm/split-aes/dleq/v1";

/// What a [`DleqProof`] proves: `log_g public_share == log_input output`, in the context of one key id, one
/// α and one participant.
#[derive(Clone, Copy, Debug)]
pub struct DleqStatement<'a> {
    /// The key's id.
    pub key_id: &'a [u8],
    /// The message input α.
    pub alpha: &'a [u8; 32],
    /// The prover.
    pub participant: ParticipantId,
    /// `X = g^{k_i}`, the prover's public share.
    pub public_share: RistrettoPoint,
    /// `H`, the input point.
    pub input: RistrettoPoint,
    /// `Y = H^{k_i}`, the partial evaluation.
    pub output: RistrettoPoint,
}

impl DleqStatement<'_> {
    fn challenge(&self, a: &RistrettoPoint, b: &RistrettoPoint) -> Scalar {
        let key_id_len = u32::try_from(self.key_id.len()).unwrap_or(u32::MAX);
        let hash = Sha512::new()
            .chain_update(DLEQ_DOMAIN)
            .chain_update(key_id_len.to_be_bytes())
            .chain_update(self.key_id)
            .chain_update(self.alpha)
            .chain_update(self.participant.to_be_bytes())
            .chain_update(RISTRETTO_BASEPOINT_POINT.compress().as_bytes())
            .chain_update(self.public_share.compress().as_bytes())
            .chain_update(self.input.compress().as_bytes())
            .chain_update(self.output.compress().as_bytes())
            .chain_update(a.compress().as_bytes())
            .chain_update(b.compress().as_bytes());
        Scalar::from_hash(hash)
    }
}

/// A DLEQ proof `(c, z)`, both 32-byte canonical scalars (little-endian). 64 bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DleqProof {
    /// The Fiat–Shamir challenge `c`.
    pub challenge: [u8; 32],
    /// The response `z = r + c·k_i`.
    pub response: [u8; 32],
}

impl DleqProof {
    /// Proves `statement` with the witness `secret` (`k_i`); the nonce `r` comes from `rng`.
    ///
    /// The caller must make sure `statement` is true (`X = g^secret`, `Y = H^secret`); a proof of a false
    /// statement does not verify.
    pub fn prove<R: RngCore + CryptoRng>(
        statement: &DleqStatement<'_>,
        secret: &Scalar,
        rng: &mut R,
    ) -> DleqProof {
        let r = Zeroizing::new(Scalar::random(rng));
        let a = RistrettoPoint::mul_base(&r);
        let b = statement.input * *r;
        let c = statement.challenge(&a, &b);
        let z = Zeroizing::new(*r + c * secret);
        DleqProof {
            challenge: c.to_bytes(),
            response: z.to_bytes(),
        }
    }

    /// True if the proof verifies for `statement`. Non-canonical scalars do not verify.
    pub fn verify(&self, statement: &DleqStatement<'_>) -> bool {
        let c: Option<Scalar> = Scalar::from_canonical_bytes(self.challenge).into();
        let z: Option<Scalar> = Scalar::from_canonical_bytes(self.response).into();
        let (Some(c), Some(z)) = (c, z) else {
            return false;
        };
        // A = g^z − c·X: public inputs only, variable time is fine.
        let a =
            RistrettoPoint::vartime_double_scalar_mul_basepoint(&-c, &statement.public_share, &z);
        // B = H^z − c·Y: Y is the partial evaluation (t of them give the message key), so constant time.
        let b = RistrettoPoint::multiscalar_mul([z, -c], [statement.input, statement.output]);
        statement.challenge(&a, &b).ct_eq(&c).into()
    }
}
