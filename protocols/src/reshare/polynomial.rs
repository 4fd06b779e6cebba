//! Shamir polynomials and Feldman commitments over any [`ReshareGroup`]: evaluation of a secret polynomial,
//! evaluation of its commitments "in the exponent", Lagrange coefficients, and the check that public shares
//! lie on one polynomial of a given degree through the group key.
//!
//! Every share lives at an x-coordinate; [`EvaluationPoints`] says how a participant id becomes one. The
//! split-AES key generation ([`crate::split_aes::dkg`]) uses these functions on ristretto255 too.

use serde::{Deserialize, Serialize};

use super::group::ReshareGroup;
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// How a participant id becomes the x-coordinate at which its share is the value of the sharing polynomial.
///
/// A key type fixes this once; the old and the new committee of a reshare use the same rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EvaluationPoints {
    /// `x = id`: FROST (a `frost-ed25519` `Identifier` made from a `u16` is that integer) and split-AES.
    ParticipantId,
    /// `x` = the 1-based rank of the id in the ascending committee: `dkls23` numbers its parties `1..=n`
    /// (see [`crate::ecdsa`]). The same id may have another x-coordinate in another committee.
    Rank,
}

impl EvaluationPoints {
    /// The x-coordinate of `id` in `committee` (strictly ascending), or `None` if `id` is not in it.
    pub fn x(self, committee: &[ParticipantId], id: ParticipantId) -> Option<u64> {
        let position = committee.binary_search(&id).ok()?;
        match self {
            EvaluationPoints::ParticipantId => Some(u64::from(id)),
            EvaluationPoints::Rank => u64::try_from(position).ok()?.checked_add(1),
        }
    }

    /// The tag of this rule in our encodings and transcripts.
    pub(crate) fn tag(self) -> u8 {
        match self {
            EvaluationPoints::ParticipantId => 1,
            EvaluationPoints::Rank => 2,
        }
    }

    /// The rule with tag `tag`.
    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(EvaluationPoints::ParticipantId),
            2 => Some(EvaluationPoints::Rank),
            _ => None,
        }
    }
}

/// `f(x)` for `f = coefficients[0] + coefficients[1]·x + …` (Horner; constant-time scalar arithmetic).
pub(crate) fn evaluate<G: ReshareGroup>(coefficients: &[G::Scalar], x: G::Scalar) -> G::Scalar {
    coefficients
        .iter()
        .rev()
        .fold(G::scalar_zero(), |acc, c| acc * x + *c)
}

/// `g^{f(x)} = Π_k C_k^{x^k}` from the commitments `C_k = g^{a_k}`. Variable-time: commitments and `x` are
/// public.
pub(crate) fn evaluate_in_exponent<G: ReshareGroup>(commitments: &[G], x: G::Scalar) -> G {
    let mut powers = Vec::with_capacity(commitments.len());
    let mut power = G::scalar_one();
    for _ in commitments {
        powers.push(power);
        power *= x;
    }
    G::vartime_multiscalar_mul(&powers, commitments)
}

/// The Lagrange coefficient of `i` for interpolating at `at` over the x-coordinates `set` (strictly
/// ascending, nonzero, containing `i`): `Π_{j ∈ set, j ≠ i} (at − x_j) / (x_i − x_j)`.
pub(crate) fn lagrange_coefficient<G: ReshareGroup>(
    at: G::Scalar,
    set: &[u64],
    i: u64,
) -> Result<G::Scalar, ProtocolError> {
    let ascending = set.iter().zip(set.iter().skip(1)).all(|(a, b)| a < b);
    if !ascending || !set.contains(&i) || set.contains(&0) {
        return Err(ProtocolError::InvalidParameters(
            "Lagrange interpolation over a set that is not strictly ascending nonzero ids with i"
                .into(),
        ));
    }
    let xi = G::scalar_from_u64(i);
    let mut num = G::scalar_one();
    let mut den = G::scalar_one();
    for j in set.iter().copied().filter(|j| *j != i) {
        let xj = G::scalar_from_u64(j);
        num *= at - xj;
        den *= xi - xj;
    }
    let inverse = G::invert(&den).ok_or_else(|| {
        ProtocolError::InvalidParameters(
            "Lagrange interpolation over colliding x-coordinates".into(),
        )
    })?;
    Ok(num * inverse)
}

/// Checks that the public shares `(x, g^{f(x)})` (x strictly ascending and nonzero) and `group_key` (at 0)
/// lie on one polynomial of degree exactly `threshold − 1`: interpolates from the first `threshold` shares at
/// 0 and at every other x, and checks that the leading coefficient does not vanish (so that the threshold of
/// a stored key cannot be raised unnoticed). Variable-time: everything is public.
pub(crate) fn shares_are_consistent<G: ReshareGroup>(
    threshold: u16,
    group_key: &G,
    shares: &[(u64, G)],
) -> Result<bool, ProtocolError> {
    let t = usize::from(threshold);
    if t == 0 || t > shares.len() {
        return Err(ProtocolError::InvalidParameters(format!(
            "threshold {threshold} does not fit {} shares",
            shares.len()
        )));
    }
    let (base, rest) = shares.split_at(t);
    let xs: Vec<u64> = base.iter().map(|(x, _)| *x).collect();
    let points: Vec<G> = base.iter().map(|(_, p)| *p).collect();
    let interpolate = |at: G::Scalar| -> Result<G, ProtocolError> {
        let lambdas = xs
            .iter()
            .map(|i| lagrange_coefficient::<G>(at, &xs, *i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(G::vartime_multiscalar_mul(&lambdas, &points))
    };
    // The leading coefficient g^{a_{t−1}} = Π_i P_i^{1/Π_{j≠i}(x_i − x_j)}.
    let leading_weights = xs
        .iter()
        .map(|i| {
            let den = xs
                .iter()
                .filter(|j| *j != i)
                .fold(G::scalar_one(), |acc, j| {
                    acc * (G::scalar_from_u64(*i) - G::scalar_from_u64(*j))
                });
            G::invert(&den)
                .ok_or_else(|| ProtocolError::InvalidParameters("colliding x-coordinates".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leading = G::vartime_multiscalar_mul(&leading_weights, &points);
    let mut consistent = leading != G::identity();
    consistent &= interpolate(G::scalar_zero())? == *group_key;
    for (x, point) in rest {
        consistent &= interpolate(G::scalar_from_u64(*x))? == *point;
    }
    Ok(consistent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use curve25519_dalek::ristretto::RistrettoPoint;
    use curve25519_dalek::Scalar;

    type G = RistrettoPoint;

    #[test]
    fn interpolation_recovers_the_constant_term() {
        let coefficients = [Scalar::from(7u64), Scalar::from(3u64), Scalar::from(11u64)];
        let set = [2u64, 5, 9];
        let at_zero: Scalar = set
            .iter()
            .map(|i| {
                lagrange_coefficient::<G>(Scalar::ZERO, &set, *i).unwrap()
                    * evaluate::<G>(&coefficients, Scalar::from(*i))
            })
            .sum();
        assert_eq!(at_zero, Scalar::from(7u64));
        let commitments: Vec<G> = coefficients.iter().map(G::mul_base).collect();
        assert_eq!(
            evaluate_in_exponent(&commitments, Scalar::from(5u64)),
            G::mul_base(&evaluate::<G>(&coefficients, Scalar::from(5u64)))
        );
        assert!(lagrange_coefficient::<G>(Scalar::ZERO, &[2, 2], 2).is_err());
        assert!(lagrange_coefficient::<G>(Scalar::ZERO, &[2, 3], 4).is_err());
        assert!(lagrange_coefficient::<G>(Scalar::ZERO, &[3, 2], 2).is_err());
        assert!(lagrange_coefficient::<G>(Scalar::ZERO, &[0, 2], 2).is_err());
    }

    #[test]
    fn consistency_needs_the_exact_degree() {
        let coefficients = [Scalar::from(7u64), Scalar::from(3u64)];
        let shares: Vec<(u64, G)> = [1u64, 2, 4]
            .iter()
            .map(|x| {
                (
                    *x,
                    G::mul_base(&evaluate::<G>(&coefficients, Scalar::from(*x))),
                )
            })
            .collect();
        let key = G::mul_base(&coefficients[0]);
        assert!(shares_are_consistent(2, &key, &shares).unwrap());
        // Claiming threshold 3 for a degree-1 polynomial: the leading coefficient vanishes.
        assert!(!shares_are_consistent(3, &key, &shares).unwrap());
        assert!(!shares_are_consistent(2, &G::mul_base(&Scalar::ONE), &shares).unwrap());
        assert!(shares_are_consistent(4, &key, &shares).is_err());
    }

    #[test]
    fn evaluation_points() {
        let committee = [1, 3, 4];
        assert_eq!(EvaluationPoints::ParticipantId.x(&committee, 3), Some(3));
        assert_eq!(EvaluationPoints::Rank.x(&committee, 3), Some(2));
        assert_eq!(EvaluationPoints::Rank.x(&committee, 2), None);
        for p in [EvaluationPoints::ParticipantId, EvaluationPoints::Rank] {
            assert_eq!(EvaluationPoints::from_tag(p.tag()), Some(p));
        }
        assert_eq!(EvaluationPoints::from_tag(0), None);
    }
}
