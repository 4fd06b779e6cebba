//! Coordinator side: the message input α ([`message_input`]), the check of one partial evaluation
//! ([`verify_partial`]) and the combination of `t` verified partials into the per-message AES key
//! ([`combine()`]): Lagrange interpolation in the exponent, then HKDF-SHA256.
//!
//! The coordinator holds no secret of the key. It must take the participant id of a partial from the
//! authenticated transport (the map key), never from the partial itself; a partial that claims another id
//! names its sender.

use std::collections::BTreeMap;
use std::fmt;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::MultiscalarMul;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::dleq::DleqStatement;
use super::partial::{input_point, PartialEvaluation, PARTIAL_EVALUATION_VERSION};
use super::polynomial::lagrange_coefficient;
use super::share::SplitAesPublicKeys;
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// Domain separation tag of α.
pub const ALPHA_DOMAIN: &[u8] = b"vhsm/split-aes/alpha/v1";
/// HKDF salt of the per-message key.
pub const HKDF_SALT: &[u8] = b"vhsm/split-aes/hkdf/v1";

/// A per-message AES-256 key derived from the DPRF output. Zeroized on drop; `Debug` prints `<redacted>`;
/// equality is constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DerivedKey([u8; 32]);

impl DerivedKey {
    /// The key bytes, for the AEAD only.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key of the given bytes, for this crate's unit tests.
    #[cfg(test)]
    pub(crate) fn from_bytes_for_tests(bytes: [u8; 32]) -> DerivedKey {
        DerivedKey(bytes)
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(<redacted>)")
    }
}

impl PartialEq for DerivedKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for DerivedKey {}

fn len_prefix(len: usize) -> [u8; 8] {
    u64::try_from(len).unwrap_or(u64::MAX).to_be_bytes()
}

/// `α = SHA-256("vhsm/split-aes/alpha/v1" ‖ u64 len ‖ key_id ‖ u64 len ‖ aad ‖ u64 len ‖ plaintext ‖ ρ)`.
///
/// α is a hiding commitment to the plaintext (ρ is 32 fresh random bytes per encryption) and the DPRF input:
/// equal plaintexts get different α, hence different message keys. Decryption recomputes it from the opened
/// plaintext and ρ, which binds the blob's α (and so its key) to its content and aad.
pub fn message_input(key_id: &[u8], aad: &[u8], plaintext: &[u8], rho: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update(ALPHA_DOMAIN)
        .chain_update(len_prefix(key_id.len()))
        .chain_update(key_id)
        .chain_update(len_prefix(aad.len()))
        .chain_update(aad)
        .chain_update(len_prefix(plaintext.len()))
        .chain_update(plaintext)
        .chain_update(rho)
        .finalize()
        .into()
}

/// Why a partial is refused, or its point.
fn check_partial(
    public: &SplitAesPublicKeys,
    key_id: &[u8],
    alpha: &[u8; 32],
    input: RistrettoPoint,
    from: ParticipantId,
    partial: &PartialEvaluation,
) -> Result<RistrettoPoint, &'static str> {
    if partial.version != PARTIAL_EVALUATION_VERSION {
        return Err("unsupported partial evaluation version");
    }
    if partial.participant != from {
        return Err("partial evaluation claims another participant id than its sender");
    }
    let public_share = public
        .public_share_point(from)
        .ok_or("sender holds no share of this key")?;
    let output = CompressedRistretto(partial.point)
        .decompress()
        .ok_or("partial evaluation is not a ristretto255 point")?;
    let statement = DleqStatement {
        key_id,
        alpha,
        participant: from,
        public_share: *public_share,
        input,
        output,
    };
    if partial.proof.verify(&statement) {
        Ok(output)
    } else {
        Err("DLEQ proof does not verify")
    }
}

/// Checks one partial evaluation received from the authenticated sender `from`: version, claimed id, that
/// `from` holds a share, the point, and the DLEQ proof. Failure is [`ProtocolError::Misbehaviour`] naming
/// `from`. For a coordinator that checks answers as they arrive and asks another node on failure;
/// [`combine()`] checks them all again.
pub fn verify_partial(
    public: &SplitAesPublicKeys,
    key_id: &[u8],
    alpha: &[u8; 32],
    from: ParticipantId,
    partial: &PartialEvaluation,
) -> Result<(), ProtocolError> {
    check_partial(
        public,
        key_id,
        alpha,
        input_point(key_id, alpha),
        from,
        partial,
    )
    .map(|_| ())
    .map_err(|reason| ProtocolError::misbehaviour([from], reason))
}

/// Combines partial evaluations (keyed by AUTHENTICATED sender) into the message key
/// `HKDF-SHA256(ikm = compress(H^k), salt = "vhsm/split-aes/hkdf/v1", info = key_id ‖ α)`.
///
/// * Fewer than `threshold` partials: [`ProtocolError::InvalidParameters`].
/// * Every partial is checked first (see [`verify_partial`]); if any fails, [`ProtocolError::Misbehaviour`]
///   names ALL that failed, and nothing is combined. The caller drops them and asks other nodes.
/// * With all valid, the first `threshold` partials (ascending participant id) are interpolated at 0 in the
///   exponent: `H^k = Π H^{k_i·λ_i}`. Extra partials are checked but not used; any `t`-subset gives the same
///   key.
pub fn combine(
    public: &SplitAesPublicKeys,
    key_id: &[u8],
    alpha: &[u8; 32],
    partials: &BTreeMap<ParticipantId, PartialEvaluation>,
) -> Result<DerivedKey, ProtocolError> {
    let threshold = usize::from(public.threshold());
    if partials.len() < threshold {
        return Err(ProtocolError::InvalidParameters(format!(
            "{} partial evaluations, the key needs {threshold}",
            partials.len()
        )));
    }
    let input = input_point(key_id, alpha);
    let mut valid = Vec::with_capacity(partials.len());
    let mut failures = Vec::new();
    for (from, partial) in partials {
        match check_partial(public, key_id, alpha, input, *from, partial) {
            Ok(point) => valid.push((*from, point)),
            Err(reason) => failures.push((*from, reason)),
        }
    }
    if !failures.is_empty() {
        let reason = failures
            .iter()
            .map(|(id, reason)| format!("{id}: {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ProtocolError::misbehaviour(
            failures.iter().map(|(id, _)| *id),
            format!("invalid partial evaluation(s): {reason}"),
        ));
    }
    valid.truncate(threshold);
    let set: Vec<ParticipantId> = valid.iter().map(|(id, _)| *id).collect();
    let lambdas = set
        .iter()
        .map(|i| lagrange_coefficient(Scalar::ZERO, &set, *i))
        .collect::<Result<Vec<_>, _>>()?;
    // Constant time: the combined point is the secret PRF output.
    let mut combined =
        RistrettoPoint::multiscalar_mul(&lambdas, valid.iter().map(|(_, point)| point));
    let ikm = Zeroizing::new(combined.compress().to_bytes());
    combined.zeroize();
    let mut okm = DerivedKey([0u8; 32]);
    Hkdf::<Sha256>::new(Some(HKDF_SALT), ikm.as_slice())
        .expand_multi_info(&[key_id, alpha.as_slice()], &mut okm.0)
        .map_err(|_| ProtocolError::State("HKDF refused a 32-byte output".into()))?;
    Ok(okm)
}
