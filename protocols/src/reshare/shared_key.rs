//! The public description of a Shamir-shared key ([`SharedKey`]) and a dealer's secret input
//! ([`DealerSecret`]), for any [`ReshareGroup`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::group::ReshareGroup;
use super::polynomial::{shares_are_consistent, EvaluationPoints};
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// Version byte of the [`SharedKey`] encoding.
pub const SHARED_KEY_FORMAT_VERSION: u8 = 1;

/// The public part of a key Shamir-shared `threshold`-of-`n` in the group `G`: the group key `g^s`, every
/// holder's public share `g^{s_m}`, and the rule that turns holder ids into x-coordinates. Holds no secret.
///
/// [`SharedKey::new`] checks that the public shares and the group key lie on one polynomial of degree exactly
/// `threshold − 1`, so a value of this type always describes a consistent sharing.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedKey<G: ReshareGroup> {
    threshold: u16,
    points: EvaluationPoints,
    group_key: G,
    shares: BTreeMap<ParticipantId, G>,
}

/// The serde form of a [`SharedKey`] (after the version byte).
#[derive(Serialize, Deserialize)]
struct SharedKeyEncoding {
    group: u8,
    points: u8,
    threshold: u16,
    group_key: Vec<u8>,
    shares: Vec<(ParticipantId, Vec<u8>)>,
}

impl<G: ReshareGroup> SharedKey<G> {
    /// Checks and wraps: ids nonzero, `2 <= threshold <= n`, the group key not the identity, and the public
    /// shares and the group key (at 0) on one polynomial of degree exactly `threshold − 1`.
    pub fn new(
        threshold: u16,
        points: EvaluationPoints,
        group_key: G,
        shares: BTreeMap<ParticipantId, G>,
    ) -> Result<Self, ProtocolError> {
        if shares.contains_key(&0) {
            return Err(ProtocolError::InvalidParameters(
                "participant id 0 is not allowed".into(),
            ));
        }
        if threshold < 2 || usize::from(threshold) > shares.len() {
            return Err(ProtocolError::InvalidParameters(format!(
                "threshold {threshold} does not fit {} participants",
                shares.len()
            )));
        }
        if group_key == G::identity() {
            return Err(ProtocolError::InvalidParameters(
                "group key is the identity".into(),
            ));
        }
        let committee: Vec<ParticipantId> = shares.keys().copied().collect();
        let located = shares
            .iter()
            .map(|(id, point)| {
                points
                    .x(&committee, *id)
                    .map(|x| (x, *point))
                    .ok_or_else(|| ProtocolError::InvalidParameters("no x-coordinate".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !shares_are_consistent(threshold, &group_key, &located)? {
            return Err(ProtocolError::InvalidParameters(
                "public shares do not lie on one polynomial of degree < threshold through the group key"
                    .into(),
            ));
        }
        Ok(SharedKey {
            threshold,
            points,
            group_key,
            shares,
        })
    }

    /// How many holders are needed to use the key.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// How holder ids become x-coordinates.
    pub fn evaluation_points(&self) -> EvaluationPoints {
        self.points
    }

    /// The group key `g^s`.
    pub fn group_key(&self) -> &G {
        &self.group_key
    }

    /// The holders, ascending.
    pub fn participants(&self) -> Vec<ParticipantId> {
        self.shares.keys().copied().collect()
    }

    /// The public share `g^{s_m}` of `participant`, if it holds a share.
    pub fn public_share(&self, participant: ParticipantId) -> Option<&G> {
        self.shares.get(&participant)
    }

    /// Every holder's public share.
    pub fn public_shares(&self) -> &BTreeMap<ParticipantId, G> {
        &self.shares
    }

    /// The x-coordinate of `participant`'s share, if it holds one.
    pub fn x(&self, participant: ParticipantId) -> Option<u64> {
        self.points.x(&self.participants(), participant)
    }

    /// The versioned encoding: `version (1) ‖ postcard(group tag, evaluation-point tag, threshold, group key,
    /// [(id, public share)])`, points in their canonical encodings, ids ascending.
    pub fn to_bytes(&self) -> Vec<u8> {
        let encoding = SharedKeyEncoding {
            group: G::TAG,
            points: self.points.tag(),
            threshold: self.threshold,
            group_key: self.group_key.to_bytes(),
            shares: self
                .shares
                .iter()
                .map(|(id, p)| (*id, p.to_bytes()))
                .collect(),
        };
        // Serializing plain values into a vector does not fail; an empty encoding never decodes.
        postcard::to_extend(&encoding, vec![SHARED_KEY_FORMAT_VERSION]).unwrap_or_default()
    }

    /// Decodes [`SharedKey::to_bytes`]: refuses other versions and groups, malformed or non-canonical
    /// encodings, and inconsistent shares.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        const WHAT: &str = "shared key";
        let (version, body) = bytes
            .split_first()
            .ok_or_else(|| ProtocolError::Encoding(format!("empty {WHAT}")))?;
        if *version != SHARED_KEY_FORMAT_VERSION {
            return Err(ProtocolError::UnsupportedVersion(*version));
        }
        let encoding: SharedKeyEncoding = crate::ecdsa::decode(body)
            .ok_or_else(|| ProtocolError::Encoding(format!("malformed {WHAT}")))?;
        if encoding.group != G::TAG {
            return Err(ProtocolError::Encoding(format!(
                "{WHAT}: group tag {} is not {}",
                encoding.group,
                G::NAME
            )));
        }
        let points = EvaluationPoints::from_tag(encoding.points)
            .ok_or_else(|| ProtocolError::Encoding(format!("{WHAT}: unknown evaluation points")))?;
        let point = |b: &[u8]| {
            G::from_bytes(b)
                .ok_or_else(|| ProtocolError::Encoding(format!("{WHAT}: not a {} point", G::NAME)))
        };
        let group_key = point(&encoding.group_key)?;
        let mut shares = BTreeMap::new();
        for (id, p) in &encoding.shares {
            if shares.insert(*id, point(p)?).is_some() {
                return Err(ProtocolError::Encoding(format!("{WHAT}: duplicate id")));
            }
        }
        let key = Self::new(encoding.threshold, points, group_key, shares)
            .map_err(|e| ProtocolError::Encoding(format!("{WHAT}: {e}")))?;
        if key.to_bytes() != bytes {
            return Err(ProtocolError::Encoding(format!(
                "{WHAT} is not in canonical encoding"
            )));
        }
        Ok(key)
    }
}

impl<G: ReshareGroup> fmt::Debug for SharedKey<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKey")
            .field("group", &G::NAME)
            .field("group_key", &hex::encode(self.group_key.to_bytes()))
            .field("threshold", &self.threshold)
            .field("participants", &self.participants())
            .field("evaluation_points", &self.points)
            .finish()
    }
}

/// A dealer's secret input to a reshare: its share `s_i` of the key (zeroized on drop, `Debug` redacted).
pub struct DealerSecret<G: ReshareGroup>(Zeroizing<G::Scalar>);

impl<G: ReshareGroup> DealerSecret<G> {
    /// Wraps a share.
    pub fn new(share: Zeroizing<G::Scalar>) -> Self {
        DealerSecret(share)
    }

    /// The share.
    pub(crate) fn expose(&self) -> &G::Scalar {
        &self.0
    }
}

impl<G: ReshareGroup> fmt::Debug for DealerSecret<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DealerSecret(<redacted>)")
    }
}

/// The dealer input of `me`: its share if it deals (checked to be its own and of this key), none otherwise.
pub(crate) fn dealer_input<S, G: ReshareGroup>(
    me: ParticipantId,
    dealers: &[ParticipantId],
    own: Option<&S>,
    inspect: impl FnOnce(&S) -> (ParticipantId, bool, Result<DealerSecret<G>, ProtocolError>),
) -> Result<Option<DealerSecret<G>>, ProtocolError> {
    if !dealers.contains(&me) {
        return Ok(None);
    }
    let share = own.ok_or_else(|| {
        ProtocolError::InvalidParameters(format!("dealer {me} needs its key share"))
    })?;
    let (holder, same_key, secret) = inspect(share);
    if holder != me || !same_key {
        return Err(ProtocolError::InvalidParameters(format!(
            "the share given to {me} is not its share of this key"
        )));
    }
    secret.map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use curve25519_dalek::ristretto::RistrettoPoint;
    use curve25519_dalek::Scalar;

    #[test]
    fn encoding_round_trips_and_is_checked() {
        // f(x) = 5 + 2x, shares at x = rank in {4, 9, 20}.
        let f = |x: u64| RistrettoPoint::mul_base(&Scalar::from(5 + 2 * x));
        let shares: BTreeMap<ParticipantId, RistrettoPoint> =
            [(4, f(1)), (9, f(2)), (20, f(3))].into();
        let key = SharedKey::new(2, EvaluationPoints::Rank, f(0), shares.clone()).unwrap();
        assert_eq!(key.x(20), Some(3));
        let bytes = key.to_bytes();
        assert_eq!(
            SharedKey::<RistrettoPoint>::from_bytes(&bytes).unwrap(),
            key
        );
        assert!(SharedKey::<curve25519_dalek::EdwardsPoint>::from_bytes(&bytes).is_err());
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert!(matches!(
            SharedKey::<RistrettoPoint>::from_bytes(&other_version),
            Err(ProtocolError::UnsupportedVersion(2))
        ));
        // The same points at x = id do not lie on one line.
        assert!(SharedKey::new(2, EvaluationPoints::ParticipantId, f(0), shares).is_err());
        assert!(format!(
            "{:?}",
            DealerSecret::<RistrettoPoint>::new(Zeroizing::new(Scalar::ONE))
        )
        .contains("redacted"));
    }
}
