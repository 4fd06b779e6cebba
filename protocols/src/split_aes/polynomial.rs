//! Shamir polynomials over the ristretto255 scalar field, at `x = participant id`: the generic
//! [`crate::reshare::polynomial`] functions (shared with resharing, for every group) instantiated on
//! ristretto255.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;

use crate::error::ProtocolError;
use crate::party::ParticipantId;
use crate::reshare::polynomial as generic;

/// The evaluation point of participant `id`.
pub(crate) fn x_of(id: ParticipantId) -> Scalar {
    Scalar::from(u64::from(id))
}

/// `f(x)` for `f = coefficients[0] + coefficients[1]·x + …` (Horner; constant-time scalar arithmetic).
pub(crate) fn evaluate(coefficients: &[Scalar], x: Scalar) -> Scalar {
    generic::evaluate::<RistrettoPoint>(coefficients, x)
}

/// `g^{f(x)} = Π_k C_k^{x^k}` from the commitments `C_k = g^{a_k}`. Variable-time: commitments and `x` are
/// public.
pub(crate) fn evaluate_in_exponent(commitments: &[RistrettoPoint], x: Scalar) -> RistrettoPoint {
    generic::evaluate_in_exponent(commitments, x)
}

/// The Lagrange coefficient of `i` for interpolating at `at` over the ids `set` (strictly ascending, nonzero,
/// containing `i`): `Π_{j ∈ set, j ≠ i} (at − x_j) / (x_i − x_j)`.
pub(crate) fn lagrange_coefficient(
    at: Scalar,
    set: &[ParticipantId],
    i: ParticipantId,
) -> Result<Scalar, ProtocolError> {
    let xs: Vec<u64> = set.iter().map(|j| u64::from(*j)).collect();
    generic::lagrange_coefficient::<RistrettoPoint>(at, &xs, u64::from(i))
}
