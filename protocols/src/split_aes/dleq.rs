//! Chaum–Pedersen proof of equality of discrete logarithms (DLEQ), non-interactive by Fiat–Shamir.
//!
//! Statement ([`DleqStatement`]): for the public share `X = g^{k_i}`, the input point `H` and the partial
//! evaluation `Y`, `log_g X == log_H Y`. Proof ([`DleqProof`]): `(c, z)` with `A = g^r`, `B = H^r`,
//! `c = SHA-512("vhsm/split-aes/dleq/v1" ‖ u32 len(key_id) ‖ key_id ‖ α ‖ participant u16 ‖ g ‖ X ‖ H ‖ Y ‖ A ‖ B)`
//! reduced mod ℓ, and `z = r + c·k_i`. The verifier recomputes `A = g^z · X^{−c}`, `B = H^z · Y^{−c}` and
//! checks `c`. The challenge binds the key id, α and the prover's id, so a proof cannot be replayed for
//! another message, key or participant.
//!
//! **Hedged nonce.** The nonce `r` is not the RNG's output alone: it is
//! `r = SHA-512("vhsm/split-aes/dleq-nonce/v1" ‖ 32 fresh random bytes ‖ k_i ‖ statement)` reduced mod ℓ (a
//! 512-bit hash, so `r` is uniform), where the statement is encoded as in the challenge (key id, α,
//! participant, g, X, H, Y). This is RFC 9591's `nonce_generate` (§4.1: `H3(random_bytes ‖ secret)`, which
//! FROST's round one uses, see [`crate::frost::round1`]) with the statement added, i.e. a *hedged* nonce as in
//! deterministic-with-noise signatures (RFC 6979's idea plus fresh randomness): with a good RNG `r` is as random
//! as before; with a broken or repeating RNG `r` is still a secret (it depends on `k_i`) and differs for every
//! statement, so two proofs never share a nonce unless they prove the same statement — and a repeated nonce
//! (`z − z′ = (c − c′)·k_i`) is what would reveal the share. The proof format and the verification are
//! unchanged: a verifier cannot tell, and need not.

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
/// Domain separation tag of the hedged nonce derivation (see the [module documentation](self)).
pub const DLEQ_NONCE_DOMAIN: &[u8] = b"vhsm/split-aes/dleq-nonce/v1";

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
    /// Feeds the statement to `hash`: `u32 len(key_id) ‖ key_id ‖ α ‖ participant u16 ‖ g ‖ X ‖ H ‖ Y`.
    fn absorb(&self, hash: Sha512) -> Sha512 {
        let key_id_len = u32::try_from(self.key_id.len()).unwrap_or(u32::MAX);
        hash.chain_update(key_id_len.to_be_bytes())
            .chain_update(self.key_id)
            .chain_update(self.alpha)
            .chain_update(self.participant.to_be_bytes())
            .chain_update(RISTRETTO_BASEPOINT_POINT.compress().as_bytes())
            .chain_update(self.public_share.compress().as_bytes())
            .chain_update(self.input.compress().as_bytes())
            .chain_update(self.output.compress().as_bytes())
    }

    fn challenge(&self, a: &RistrettoPoint, b: &RistrettoPoint) -> Scalar {
        let hash = self
            .absorb(Sha512::new().chain_update(DLEQ_DOMAIN))
            .chain_update(a.compress().as_bytes())
            .chain_update(b.compress().as_bytes());
        Scalar::from_hash(hash)
    }

    /// The hedged nonce: `SHA-512(DLEQ_NONCE_DOMAIN ‖ random ‖ secret ‖ statement)` reduced mod ℓ (see the
    /// [module documentation](self)).
    fn nonce(&self, secret: &Scalar, random: &[u8; 32]) -> Zeroizing<Scalar> {
        let secret_bytes = Zeroizing::new(secret.to_bytes());
        let mut hash = Sha512::new()
            .chain_update(DLEQ_NONCE_DOMAIN)
            .chain_update(random)
            .chain_update(secret_bytes.as_slice());
        hash = self.absorb(hash);
        // The wide (512-bit) output reduced mod ℓ: uniform, as RFC 9591's H3 (`from_hash` is its reduction).
        Zeroizing::new(Scalar::from_hash(hash))
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
    /// Proves `statement` with the witness `secret` (`k_i`). The nonce `r` is hedged: derived from 32 bytes of
    /// `rng`, the secret and the statement (see the [module documentation](self)), so that a bad RNG alone does
    /// not reveal the secret.
    ///
    /// The caller must make sure `statement` is true (`X = g^secret`, `Y = H^secret`); a proof of a false
    /// statement does not verify.
    pub fn prove<R: RngCore + CryptoRng>(
        statement: &DleqStatement<'_>,
        secret: &Scalar,
        rng: &mut R,
    ) -> DleqProof {
        let mut random = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(random.as_mut_slice());
        let r = statement.nonce(secret, &random);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    /// A broken RNG: every byte it gives is `0x00`.
    struct StuckRng;

    impl RngCore for StuckRng {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            dest.fill(0);
            Ok(())
        }
    }

    // Claims to be cryptographic: that is the failure being modelled.
    impl CryptoRng for StuckRng {}

    const KEY_ID: &[u8] = b"dleq test key";

    fn statement<'a>(secret: &Scalar, alpha: &'a [u8; 32]) -> DleqStatement<'a> {
        let input = RistrettoPoint::mul_base(&Scalar::from_bytes_mod_order(*alpha));
        DleqStatement {
            key_id: KEY_ID,
            alpha,
            participant: 3,
            public_share: RistrettoPoint::mul_base(secret),
            input,
            output: input * secret,
        }
    }

    /// The nonce's commitment `A = g^r`, recomputed from a proof as the verifier does.
    fn commitment(proof: &DleqProof, statement: &DleqStatement<'_>) -> RistrettoPoint {
        let c = Scalar::from_canonical_bytes(proof.challenge).unwrap();
        let z = Scalar::from_canonical_bytes(proof.response).unwrap();
        RistrettoPoint::mul_base(&z) - statement.public_share * c
    }

    #[test]
    fn the_nonce_depends_on_the_rng_output_the_secret_and_the_statement() {
        let secret = Scalar::from(0x1234_5678_u64);
        let (alpha, other_alpha) = ([1u8; 32], [2u8; 32]);
        let s = statement(&secret, &alpha);
        let other = statement(&secret, &other_alpha);
        let random = [7u8; 32];
        let r = s.nonce(&secret, &random);
        // Deterministic in its inputs …
        assert_eq!(*r, *s.nonce(&secret, &random));
        // … and every input counts: the RNG output, the statement, the secret.
        assert_ne!(*r, *s.nonce(&secret, &[8u8; 32]));
        assert_ne!(*r, *other.nonce(&secret, &random));
        assert_ne!(*r, *s.nonce(&(secret + Scalar::ONE), &random));
        let moved = DleqStatement {
            participant: 4,
            ..s
        };
        assert_ne!(*r, *moved.nonce(&secret, &random));
        // It is not the RNG output itself (as `Scalar::random` would make it).
        assert_ne!(*r, Scalar::from_bytes_mod_order(random));

        // Through `prove`: the same RNG stream gives the same proof, another stream another one; both verify.
        let p1 = DleqProof::prove(&s, &secret, &mut ChaCha20Rng::seed_from_u64(1));
        let p1_again = DleqProof::prove(&s, &secret, &mut ChaCha20Rng::seed_from_u64(1));
        let p2 = DleqProof::prove(&s, &secret, &mut ChaCha20Rng::seed_from_u64(2));
        assert_eq!(p1, p1_again);
        assert_ne!(commitment(&p1, &s), commitment(&p2, &s));
        assert!(p1.verify(&s) && p2.verify(&s));
        assert!(!p1.verify(&other));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let random: [u8; 32] = {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b);
            b
        };
        assert_eq!(
            commitment(&p1, &s),
            RistrettoPoint::mul_base(&s.nonce(&secret, &random))
        );
    }

    /// Would fail with the nonce straight from the RNG (`Scalar::random(rng)`): a stuck RNG then gives two
    /// proofs the same nonce, and `(z − z′)/(c − c′)` is the share.
    #[test]
    fn a_stuck_rng_does_not_leak_the_share() {
        let secret = Scalar::from(0xdead_beef_u64);
        let (alpha, other_alpha) = ([1u8; 32], [2u8; 32]);
        let (s, other) = (statement(&secret, &alpha), statement(&secret, &other_alpha));
        let p = DleqProof::prove(&s, &secret, &mut StuckRng);
        let q = DleqProof::prove(&other, &secret, &mut StuckRng);
        assert!(p.verify(&s) && q.verify(&other));
        assert_ne!(commitment(&p, &s), commitment(&q, &other), "nonce reused");
        let scalar = |b: [u8; 32]| Scalar::from_canonical_bytes(b).unwrap();
        let extracted = (scalar(p.response) - scalar(q.response))
            * (scalar(p.challenge) - scalar(q.challenge)).invert();
        assert_ne!(extracted, secret);
        // The same statement twice under the stuck RNG gives the same proof: nothing more is revealed.
        assert_eq!(p, DleqProof::prove(&s, &secret, &mut StuckRng));
    }
}
