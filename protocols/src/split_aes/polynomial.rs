//! Shamir polynomials over the ristretto255 scalar field: evaluation of a secret polynomial, evaluation of its
//! Feldman commitments "in the exponent", and Lagrange coefficients.
//!
//! A participant id `i` (nonzero `u16`) is the evaluation point `Scalar::from(i)`.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul};

use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// The evaluation point of participant `id`.
pub(crate) fn x_of(id: ParticipantId) -> Scalar {
    Scalar::from(u64::from(id))
}

/// `f(x)` for `f = coefficients[0] + coefficients[1]·x + …` (Horner; constant-time scalar arithmetic).
pub(crate) fn evaluate(coefficients: &[Scalar], x: Scalar) -> Scalar {
    coefficients
        .iter()
        .rev()
        .fold(Scalar::ZERO, |acc, c| acc * x + c)
}

/// `g^{f(x)} = Π_k C_k^{x^k}` from the commitments `C_k = g^{a_k}`. Variable-time: commitments and `x` are
/// public.
pub(crate) fn evaluate_in_exponent(commitments: &[RistrettoPoint], x: Scalar) -> RistrettoPoint {
    if commitments.is_empty() {
        return RistrettoPoint::identity();
    }
    let mut powers = Vec::with_capacity(commitments.len());
    let mut power = Scalar::ONE;
    for _ in commitments {
        powers.push(power);
        power *= x;
    }
    RistrettoPoint::vartime_multiscalar_mul(&powers, commitments)
}

/// The Lagrange coefficient of `i` for interpolating at `at` over the ids `set` (strictly ascending, nonzero,
/// containing `i`): `Π_{j ∈ set, j ≠ i} (at − x_j) / (x_i − x_j)`.
pub(crate) fn lagrange_coefficient(
    at: Scalar,
    set: &[ParticipantId],
    i: ParticipantId,
) -> Result<Scalar, ProtocolError> {
    let xi = x_of(i);
    let mut num = Scalar::ONE;
    let mut den = Scalar::ONE;
    for j in set.iter().copied().filter(|j| *j != i) {
        num *= at - x_of(j);
        den *= xi - x_of(j);
    }
    let ascending = set.iter().zip(set.iter().skip(1)).all(|(a, b)| a < b);
    if !ascending || den == Scalar::ZERO || !set.contains(&i) || set.contains(&0) {
        return Err(ProtocolError::InvalidParameters(
            "Lagrange interpolation over a set that is not strictly ascending nonzero ids with i"
                .into(),
        ));
    }
    Ok(num * den.invert())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn interpolation_recovers_the_constant_term() {
        let coefficients = [Scalar::from(7u64), Scalar::from(3u64), Scalar::from(11u64)];
        let set = [2u16, 5, 9];
        let at_zero: Scalar = set
            .iter()
            .map(|i| {
                lagrange_coefficient(Scalar::ZERO, &set, *i).unwrap()
                    * evaluate(&coefficients, x_of(*i))
            })
            .sum();
        assert_eq!(at_zero, Scalar::from(7u64));
        let commitments: Vec<RistrettoPoint> =
            coefficients.iter().map(RistrettoPoint::mul_base).collect();
        assert_eq!(
            evaluate_in_exponent(&commitments, x_of(5)),
            RistrettoPoint::mul_base(&evaluate(&coefficients, x_of(5)))
        );
        assert!(lagrange_coefficient(Scalar::ZERO, &[2, 2], 2).is_err());
        assert!(lagrange_coefficient(Scalar::ZERO, &[2, 3], 4).is_err());
        assert!(lagrange_coefficient(Scalar::ZERO, &[3, 2], 2).is_err());
        assert!(lagrange_coefficient(Scalar::ZERO, &[0, 2], 2).is_err());
    }
}
