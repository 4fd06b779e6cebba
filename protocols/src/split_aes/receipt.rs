//! Encryption receipts: evidence, carried in a blob, that its α was evaluated **for an encryption** while the key
//! was active — so that once a key leaves the Active state (NIST SP 800-57 Part 1 §5.3: a deactivated or
//! compromised key may still process, i.e. decrypt, but never apply protection) a node contributes to a decryption
//! only of blobs that were really encrypted.
//!
//! # The problem
//!
//! A node cannot tell an encryption from a decryption: both ask it for `H^{k_i}` with `H = H2G(key_id ‖ α)`, and α
//! is opaque to it (DiSE, Agrawal et al., CCS 2018, §6: the servers of a DiSE scheme evaluate the same function for
//! both). A coordinator that picks a fresh α and calls its request a decryption obtains a fresh message key, so an
//! encryption, from a key that may no longer encrypt.
//!
//! # Construction
//!
//! * With every **encryption** evaluation a node also evaluates the DPRF on a second, domain-separated input
//!   `R = H2G_R(key_id ‖ α)` ([`receipt_point`]) and proves it with the same Chaum–Pedersen proof as a partial
//!   ([`super::dleq`]): a [`ReceiptPartial`] `(i, X_i = g^{k_i}, Y_i = R^{k_i}, proof)`. It does so only for an
//!   encryption request on an Active key; a decryption evaluation is only ever of `H`.
//! * The coordinator puts the receipt partials of the `t` nodes that evaluated the encryption into the blob
//!   ([`EncryptionReceipt`], blob version 2, see `vhsm_core::ciphertext`).
//! * A node asked to decrypt with a key that is not Active checks the blob's receipt ([`EncryptionReceipt::verify`])
//!   against the key's group public key `K = g^k` from its own record: every entry's proof verifies for its own
//!   `(X_j, R, Y_j)`, the participants are distinct and nonzero, and the public shares interpolate to `K` in the
//!   exponent: `Π X_j^{λ_j} = K` (Lagrange coefficients at 0 over the receipt's participants).
//!
//! # Why it is sound
//!
//! A receipt that verifies shows `Π Y_j^{λ_j} = R^k`: each `Y_j = R^{x_j}` where `X_j = g^{x_j}` (soundness of the
//! DLEQ proof), and `Σ λ_j x_j = k` (the interpolation check). Whoever makes one for a new α therefore either knows
//! every `x_j` — so `k`, which fewer than `t` shares of one epoch do not give — or uses a proof made by someone who
//! does know an `x_j` it cannot learn: an honest node's receipt partial for that very α (the proof's challenge binds
//! the key id, α, the participant and both points, so a partial for another α or another input does not fit), and
//! honest nodes make those only when asked to encrypt with an Active key. So a coordinator with up to `t − 1`
//! colluding holders can decrypt, once the key is not Active, only blobs whose α was evaluated for encryption while
//! it was. Receipts hoarded while the key was active are no loophole: each binds one α, and α commits to one
//! `(aad, plaintext, ρ)` ([`super::combine::message_input`]): those blobs could have been made then.
//!
//! The public shares travel in the receipt (they are not looked up) so that a receipt stays valid after the key is
//! refreshed or moved to other holders — every epoch's shares interpolate to the same `K` — and after a threshold
//! change (the number of entries is whatever the threshold was at encryption; the argument above does not depend
//! on it).
//!
//! # Cost
//!
//! An encryption costs each evaluating node two evaluations and two proofs instead of one; a blob grows by
//! `2 + 130·t` bytes; a decryption with a key that is not Active costs each node `t` proof checks and one
//! multi-scalar multiplication; a decryption with an Active key checks nothing (that key may encrypt anyway).
//! Blobs written before receipts (version 1) carry none: they decrypt while their key is active and are refused
//! once it is not.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::MultiscalarMul;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use vhsm_core::ciphertext::{MAX_RECEIPT_LEN, RECEIPT_ENTRY_LEN};

use super::dleq::{DleqProof, DleqStatement};
use super::partial::evaluate_at;
use super::polynomial::lagrange_coefficient;
use super::share::SplitAesKeyShare;
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// Domain separation tag of the receipt's hash to the group (distinct from the message input's).
pub const RECEIPT_DOMAIN: &[u8] = b"vhsm/split-aes/receipt/v1";

/// The receipt input point `R = H2G("vhsm/split-aes/receipt/v1" ‖ u32 len(key_id) ‖ key_id ‖ α)`.
pub fn receipt_point(key_id: &[u8], alpha: &[u8; 32]) -> RistrettoPoint {
    let key_id_len = u32::try_from(key_id.len()).unwrap_or(u32::MAX);
    RistrettoPoint::from_hash(
        Sha512::new()
            .chain_update(RECEIPT_DOMAIN)
            .chain_update(key_id_len.to_be_bytes())
            .chain_update(key_id)
            .chain_update(alpha),
    )
}

/// One node's receipt of an encryption: `(i, g^{k_i}, R^{k_i}, proof)`. Public (it reveals nothing of the message
/// key: `R` is not the message's input point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptPartial {
    /// The node's participant id.
    pub participant: ParticipantId,
    /// Its public share `g^{k_i}` at the time of the encryption, compressed.
    pub public_share: [u8; 32],
    /// `R^{k_i}`, compressed.
    pub point: [u8; 32],
    /// Proof that `log_g public_share == log_R point`.
    pub proof: DleqProof,
}

/// The receipt partial of `share` for an encryption at `(key_id, α)`. The caller (a node) must have checked that
/// the request is an encryption with a key that may encrypt.
pub fn evaluate_receipt<R: RngCore + CryptoRng>(
    share: &SplitAesKeyShare,
    key_id: &[u8],
    alpha: &[u8; 32],
    rng: &mut R,
) -> ReceiptPartial {
    let (public_share, output, proof) =
        evaluate_at(share, key_id, alpha, receipt_point(key_id, alpha), rng);
    ReceiptPartial {
        participant: share.participant(),
        public_share: public_share.compress().to_bytes(),
        point: output.compress().to_bytes(),
        proof,
    }
}

impl ReceiptPartial {
    /// The public share and the output point, if both are points and its proof verifies for `(key_id, α)`.
    fn check(
        &self,
        key_id: &[u8],
        alpha: &[u8; 32],
        input: RistrettoPoint,
    ) -> Result<RistrettoPoint, &'static str> {
        if self.participant == 0 {
            return Err("participant id 0");
        }
        let public_share = CompressedRistretto(self.public_share)
            .decompress()
            .ok_or("public share is not a ristretto255 point")?;
        let output = CompressedRistretto(self.point)
            .decompress()
            .ok_or("evaluation is not a ristretto255 point")?;
        let statement = DleqStatement {
            key_id,
            alpha,
            participant: self.participant,
            public_share,
            input,
            output,
        };
        if self.proof.verify(&statement) {
            Ok(public_share)
        } else {
            Err("proof does not verify")
        }
    }

    /// True if its proof verifies for `(key_id, α)` and it claims `public_share` (the coordinator's check of a
    /// node's answer against the key's current public share).
    pub fn verifies(&self, key_id: &[u8], alpha: &[u8; 32], public_share: &[u8; 32]) -> bool {
        self.public_share == *public_share
            && self
                .check(key_id, alpha, receipt_point(key_id, alpha))
                .is_ok()
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.participant.to_be_bytes());
        out.extend_from_slice(&self.public_share);
        out.extend_from_slice(&self.point);
        out.extend_from_slice(&self.proof.challenge);
        out.extend_from_slice(&self.proof.response);
    }

    fn decode(entry: &[u8; RECEIPT_ENTRY_LEN]) -> ReceiptPartial {
        let field = |from: usize| {
            let mut out = [0u8; 32];
            if let Some(bytes) = entry.get(from..from + 32) {
                out.copy_from_slice(bytes);
            }
            out
        };
        let [high, low, ..] = *entry;
        ReceiptPartial {
            participant: u16::from_be_bytes([high, low]),
            public_share: field(2),
            point: field(34),
            proof: DleqProof {
                challenge: field(66),
                response: field(98),
            },
        }
    }
}

/// The receipt of one encryption: the receipt partials of the nodes that evaluated it, ascending by participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionReceipt {
    entries: Vec<ReceiptPartial>,
}

impl EncryptionReceipt {
    /// A receipt of `entries` (sorted by participant here).
    pub fn new(mut entries: Vec<ReceiptPartial>) -> EncryptionReceipt {
        entries.sort_by_key(|e| e.participant);
        EncryptionReceipt { entries }
    }

    /// The entries, ascending by participant.
    pub fn entries(&self) -> &[ReceiptPartial] {
        &self.entries
    }

    /// The blob's encoding: the entries, [`RECEIPT_ENTRY_LEN`] bytes each (participant u16 BE ‖ public share ‖
    /// point ‖ challenge ‖ response).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * RECEIPT_ENTRY_LEN);
        for entry in &self.entries {
            entry.encode_into(&mut out);
        }
        out
    }

    /// Decodes [`EncryptionReceipt::to_bytes`]: refuses an empty receipt, a length that is not whole entries, and
    /// one longer than a blob can carry. (The entries are checked by [`EncryptionReceipt::verify`].)
    pub fn from_bytes(bytes: &[u8]) -> Result<EncryptionReceipt, ProtocolError> {
        if bytes.is_empty() {
            return Err(ProtocolError::Encoding(
                "the blob carries no encryption receipt".into(),
            ));
        }
        if !bytes.len().is_multiple_of(RECEIPT_ENTRY_LEN) || bytes.len() > MAX_RECEIPT_LEN {
            return Err(ProtocolError::Encoding(format!(
                "an encryption receipt of {} bytes is not a whole number of entries",
                bytes.len()
            )));
        }
        let entries = bytes
            .chunks_exact(RECEIPT_ENTRY_LEN)
            .filter_map(|chunk| <&[u8; RECEIPT_ENTRY_LEN]>::try_from(chunk).ok())
            .map(ReceiptPartial::decode)
            .collect();
        Ok(EncryptionReceipt { entries })
    }

    /// Checks the receipt for `(key_id, α)` against the key's group public key `K` (compressed): at least one
    /// entry, participants strictly ascending and nonzero, every proof valid, and `Π X_j^{λ_j} = K`. See the
    /// [module documentation](self) for why that shows an encryption evaluated while the key was active.
    pub fn verify(
        &self,
        group_public_key: &[u8; 32],
        key_id: &[u8],
        alpha: &[u8; 32],
    ) -> Result<(), ProtocolError> {
        let refuse = |why: String| ProtocolError::Encoding(format!("encryption receipt: {why}"));
        if self.entries.is_empty() {
            return Err(refuse("no entries".into()));
        }
        let ids: Vec<ParticipantId> = self.entries.iter().map(|e| e.participant).collect();
        if ids.windows(2).any(|w| w.first() >= w.get(1)) {
            return Err(refuse("participants repeated or out of order".into()));
        }
        let group_key = CompressedRistretto(*group_public_key)
            .decompress()
            .ok_or_else(|| refuse("the key's group public key is not a point".into()))?;
        let input = receipt_point(key_id, alpha);
        let mut shares = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            let share = entry.check(key_id, alpha, input).map_err(|why| {
                refuse(format!("entry of participant {}: {why}", entry.participant))
            })?;
            shares.push(share);
        }
        let lambdas = ids
            .iter()
            .map(|i| lagrange_coefficient(Scalar::ZERO, &ids, *i))
            .collect::<Result<Vec<_>, _>>()?;
        if RistrettoPoint::multiscalar_mul(&lambdas, &shares) != group_key {
            return Err(refuse(
                "its public shares are not shares of this key".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::split_aes::partial::evaluate;
    use crate::split_aes::polynomial::x_of;
    use crate::split_aes::share::SplitAesPublicKeys;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::BTreeMap;

    const KEY_ID: &[u8] = b"receipt-test-key";

    /// Shares of `k` on a random degree-1 polynomial for participants 1..=3 (a 2-of-3 key).
    fn shares(rng: &mut StdRng) -> (Vec<SplitAesKeyShare>, SplitAesPublicKeys) {
        let k = Scalar::random(rng);
        let a1 = Scalar::random(rng);
        let group = RistrettoPoint::mul_base(&k);
        let secrets: BTreeMap<ParticipantId, Scalar> =
            (1..=3u16).map(|i| (i, k + a1 * x_of(i))).collect();
        let public = SplitAesPublicKeys::new(
            2,
            group,
            secrets
                .iter()
                .map(|(i, s)| (*i, RistrettoPoint::mul_base(s)))
                .collect(),
        )
        .unwrap();
        let shares = secrets
            .iter()
            .map(|(i, s)| {
                SplitAesKeyShare::new(*i, zeroize::Zeroizing::new(*s), public.clone()).unwrap()
            })
            .collect();
        (shares, public)
    }

    #[test]
    fn a_receipt_of_t_holders_verifies_and_round_trips() {
        let mut rng = StdRng::seed_from_u64(1);
        let (shares, public) = shares(&mut rng);
        let alpha = [7u8; 32];
        let receipt = EncryptionReceipt::new(vec![
            evaluate_receipt(&shares[2], KEY_ID, &alpha, &mut rng),
            evaluate_receipt(&shares[0], KEY_ID, &alpha, &mut rng),
        ]);
        let bytes = receipt.to_bytes();
        assert_eq!(bytes.len(), 2 * RECEIPT_ENTRY_LEN);
        let decoded = EncryptionReceipt::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, receipt);
        decoded
            .verify(&public.group_public_key(), KEY_ID, &alpha)
            .unwrap();
        // Another α, another key id: refused.
        assert!(decoded
            .verify(&public.group_public_key(), KEY_ID, &[8u8; 32])
            .is_err());
        assert!(decoded
            .verify(&public.group_public_key(), b"another-key-id!!", &alpha)
            .is_err());
        for entry in receipt.entries() {
            let share = public.public_share(entry.participant).unwrap();
            assert!(entry.verifies(KEY_ID, &alpha, &share));
        }
    }

    /// The attack of issue 14, item 6, by a coordinator with one colluding holder (t − 1 = 1) of a 2-of-3 key: it
    /// cannot make a receipt for a fresh α. Neither from decrypt evaluations (the message input point, not `R`),
    /// nor with a public share of its own choosing (the shares must interpolate to `K`), nor from an honest node's
    /// receipt of another α.
    #[test]
    fn a_coordinator_with_t_minus_1_holders_cannot_forge_a_receipt() {
        let mut rng = StdRng::seed_from_u64(2);
        let (shares, public) = shares(&mut rng);
        let group = public.group_public_key();
        let fresh = [9u8; 32];
        let colluder = evaluate_receipt(&shares[0], KEY_ID, &fresh, &mut rng);
        assert!(EncryptionReceipt::new(vec![colluder])
            .verify(&group, KEY_ID, &fresh)
            .is_err());

        // An honest node's decrypt evaluation of the fresh α, presented as a receipt entry.
        let honest = evaluate(&shares[1], KEY_ID, &fresh, &mut rng);
        let disguised = ReceiptPartial {
            participant: 2,
            public_share: public.public_share(2).unwrap(),
            point: honest.point,
            proof: honest.proof,
        };
        let e = EncryptionReceipt::new(vec![colluder, disguised])
            .verify(&group, KEY_ID, &fresh)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("participant 2: proof does not verify"),
            "{e}"
        );

        // An honest receipt of an older α, presented for the fresh one.
        let old = evaluate_receipt(&shares[1], KEY_ID, &[1u8; 32], &mut rng);
        assert!(EncryptionReceipt::new(vec![colluder, old])
            .verify(&group, KEY_ID, &fresh)
            .is_err());

        // A second "participant" whose share the colluders made up (so they know it): its proof verifies, but
        // the public shares do not interpolate to K.
        let made_up = Scalar::random(&mut rng);
        let input = receipt_point(KEY_ID, &fresh);
        let statement = DleqStatement {
            key_id: KEY_ID,
            alpha: &fresh,
            participant: 2,
            public_share: RistrettoPoint::mul_base(&made_up),
            input,
            output: input * made_up,
        };
        let forged = ReceiptPartial {
            participant: 2,
            public_share: statement.public_share.compress().to_bytes(),
            point: statement.output.compress().to_bytes(),
            proof: DleqProof::prove(&statement, &made_up, &mut rng),
        };
        let e = EncryptionReceipt::new(vec![colluder, forged])
            .verify(&group, KEY_ID, &fresh)
            .unwrap_err();
        assert!(e.to_string().contains("not shares of this key"), "{e}");
    }

    #[test]
    fn malformed_receipts_are_refused() {
        let mut rng = StdRng::seed_from_u64(3);
        let (shares, public) = shares(&mut rng);
        let alpha = [7u8; 32];
        let one = evaluate_receipt(&shares[0], KEY_ID, &alpha, &mut rng);
        assert!(EncryptionReceipt::from_bytes(&[]).is_err());
        assert!(EncryptionReceipt::from_bytes(&[0u8; RECEIPT_ENTRY_LEN - 1]).is_err());
        // The same participant twice.
        let twice = EncryptionReceipt {
            entries: vec![one, one],
        };
        assert!(twice
            .verify(&public.group_public_key(), KEY_ID, &alpha)
            .unwrap_err()
            .to_string()
            .contains("repeated"));
        // A flipped byte in any entry.
        let receipt = EncryptionReceipt::new(vec![
            one,
            evaluate_receipt(&shares[1], KEY_ID, &alpha, &mut rng),
        ]);
        let bytes = receipt.to_bytes();
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            if let Ok(r) = EncryptionReceipt::from_bytes(&flipped) {
                assert!(
                    r.verify(&public.group_public_key(), KEY_ID, &alpha)
                        .is_err(),
                    "byte {i}"
                );
            }
        }
    }
}
