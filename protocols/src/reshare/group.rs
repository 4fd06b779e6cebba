//! [`ReshareGroup`]: the prime-order group operations resharing needs, implemented for every group whose keys
//! the vHSM shares — Ed25519 (FROST keys), ristretto255 (split-AES keys), secp256k1 and P-256 (ECDSA keys).
//!
//! Resharing needs no hash to the group and no pairing: scalars (to add, multiply, invert and draw at
//! random), multiplication of the generator by a secret scalar (constant time), a public linear combination
//! of points (variable time: every input is public), and canonical encodings of both, with every decoded point
//! checked to be a non-identity element of the prime-order group.
//!
//! | group | point encoding | scalar encoding | decoding checks |
//! |---|---|---|---|
//! | [`EdwardsPoint`] (Ed25519) | 32-byte compressed Edwards y (RFC 8032) | 32 bytes little-endian | canonical, on the curve, torsion-free (in the prime-order subgroup), not the identity |
//! | [`RistrettoPoint`] | 32-byte ristretto255 | 32 bytes little-endian | canonical ristretto255 encoding, not the identity |
//! | [`k256::ProjectivePoint`] | 33-byte compressed SEC1 | 32 bytes big-endian | canonical, on the curve (prime order), not the identity |
//! | [`p256::ProjectivePoint`] | 33-byte compressed SEC1 | 32 bytes big-endian | canonical, on the curve (prime order), not the identity |
//!
//! Scalars decode only from their canonical encoding (`< ℓ`).
//!
//! The two `curve25519-dalek` groups have one implementation, generic over [`Curve25519Group`] (which says
//! only what differs between them: name, tag and the check of a decoded point); the two SEC1 curves share
//! one written by a macro.

use std::fmt;
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub};

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::traits::{Identity, IsIdentity, VartimeMultiscalarMul};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// A prime-order group in which a key can be Shamir-shared and reshared with Feldman commitments.
///
/// Implemented for [`EdwardsPoint`] (Ed25519) and [`RistrettoPoint`] (ristretto255), both through
/// [`Curve25519Group`], and for [`k256::ProjectivePoint`] (secp256k1) and [`p256::ProjectivePoint`] (P-256). See the [module documentation](self) for the
/// encodings and the checks made when decoding.
pub trait ReshareGroup:
    Copy + Eq + fmt::Debug + Send + Sync + Sized + 'static + Add<Output = Self>
{
    /// The scalar field (integers modulo the group order).
    type Scalar: Copy
        + Eq
        + ConstantTimeEq
        + Zeroize
        + Send
        + Sync
        + 'static
        + Add<Output = Self::Scalar>
        + Sub<Output = Self::Scalar>
        + Mul<Output = Self::Scalar>
        + Neg<Output = Self::Scalar>
        + AddAssign
        + MulAssign;

    /// The group's name, for logs and errors: `"Ed25519"`, `"ristretto255"`, `"secp256k1"`, `"P-256"`.
    const NAME: &'static str;
    /// The group's tag in our encodings (bound into every reshare transcript and output encoding).
    const TAG: u8;

    /// The integer `v` as a scalar.
    fn scalar_from_u64(v: u64) -> Self::Scalar;
    /// `1 / s`, or `None` for zero.
    fn invert(s: &Self::Scalar) -> Option<Self::Scalar>;
    /// A uniformly random scalar from `rng`.
    fn random_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> Self::Scalar;
    /// The canonical 32-byte encoding of a scalar (see the [module documentation](self) for the byte order).
    fn scalar_to_bytes(s: &Self::Scalar) -> Zeroizing<[u8; 32]>;
    /// Decodes a canonical scalar encoding; `None` if it is not one.
    fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Self::Scalar>;

    /// The identity element.
    fn identity() -> Self;
    /// `s·G` for the group's standard generator `G`, in constant time (`s` may be secret).
    fn mul_base(s: &Self::Scalar) -> Self;
    /// `Σ scalars[i]·points[i]`, in variable time: every input must be public.
    fn vartime_multiscalar_mul(scalars: &[Self::Scalar], points: &[Self]) -> Self;
    /// The canonical encoding of a point (see the [module documentation](self)).
    fn to_bytes(&self) -> Vec<u8>;
    /// Decodes a canonical encoding of a non-identity element of the prime-order group; `None` otherwise.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;

    /// The scalar 0.
    fn scalar_zero() -> Self::Scalar {
        Self::scalar_from_u64(0)
    }

    /// The scalar 1.
    fn scalar_one() -> Self::Scalar {
        Self::scalar_from_u64(1)
    }
}

/// The two groups of `curve25519-dalek` that keys are shared in, [`EdwardsPoint`] (Ed25519) and
/// [`RistrettoPoint`] (ristretto255): one [`ReshareGroup`] implementation serves both, since they share the
/// scalar field, the 32-byte encodings and the arithmetic, and differ only in their name, their tag and how
/// an encoding is checked. Sealed: implemented for these two types only.
pub trait Curve25519Group:
    sealed::Sealed
    + Copy
    + Eq
    + fmt::Debug
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Identity
    + IsIdentity
    + VartimeMultiscalarMul<Point = Self>
{
    /// [`ReshareGroup::NAME`].
    const NAME: &'static str;
    /// [`ReshareGroup::TAG`].
    const TAG: u8;

    /// `s·B` for the group's basepoint, in constant time.
    fn mul_base(s: &curve25519_dalek::Scalar) -> Self;
    /// The 32-byte compressed encoding.
    fn compress_to_bytes(&self) -> [u8; 32];
    /// Decodes the canonical encoding of an element of the prime-order group (the identity included);
    /// `None` for anything else.
    fn decompress_canonical(bytes: [u8; 32]) -> Option<Self>;
}

mod sealed {
    /// Keeps [`super::Curve25519Group`] to the two `curve25519-dalek` groups.
    pub trait Sealed {}
    impl Sealed for curve25519_dalek::EdwardsPoint {}
    impl Sealed for curve25519_dalek::RistrettoPoint {}
}

impl Curve25519Group for EdwardsPoint {
    const NAME: &'static str = "Ed25519";
    const TAG: u8 = 1;

    fn mul_base(s: &curve25519_dalek::Scalar) -> Self {
        EdwardsPoint::mul_base(s)
    }
    fn compress_to_bytes(&self) -> [u8; 32] {
        self.compress().to_bytes()
    }
    fn decompress_canonical(bytes: [u8; 32]) -> Option<Self> {
        let point = CompressedEdwardsY(bytes).decompress()?;
        // Re-encoding refuses the non-canonical encodings (y ≥ p, or a sign bit on x = 0) that decompress.
        let canonical = point.compress().to_bytes() == bytes;
        (canonical && point.is_torsion_free()).then_some(point)
    }
}

impl Curve25519Group for RistrettoPoint {
    const NAME: &'static str = "ristretto255";
    const TAG: u8 = 2;

    fn mul_base(s: &curve25519_dalek::Scalar) -> Self {
        RistrettoPoint::mul_base(s)
    }
    fn compress_to_bytes(&self) -> [u8; 32] {
        self.compress().to_bytes()
    }
    fn decompress_canonical(bytes: [u8; 32]) -> Option<Self> {
        // Ristretto decompression refuses every non-canonical encoding; the group has prime order.
        CompressedRistretto(bytes).decompress()
    }
}

impl<P: Curve25519Group> ReshareGroup for P {
    type Scalar = curve25519_dalek::Scalar;
    const NAME: &'static str = <P as Curve25519Group>::NAME;
    const TAG: u8 = <P as Curve25519Group>::TAG;

    fn scalar_from_u64(v: u64) -> Self::Scalar {
        curve25519_dalek::Scalar::from(v)
    }
    fn invert(s: &Self::Scalar) -> Option<Self::Scalar> {
        (*s != curve25519_dalek::Scalar::ZERO).then(|| s.invert())
    }
    fn random_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> Self::Scalar {
        curve25519_dalek::Scalar::random(rng)
    }
    fn scalar_to_bytes(s: &Self::Scalar) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(s.to_bytes())
    }
    fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Self::Scalar> {
        curve25519_dalek::Scalar::from_canonical_bytes(*bytes).into()
    }
    fn identity() -> Self {
        <P as Identity>::identity()
    }
    fn mul_base(s: &Self::Scalar) -> Self {
        <P as Curve25519Group>::mul_base(s)
    }
    fn vartime_multiscalar_mul(scalars: &[Self::Scalar], points: &[Self]) -> Self {
        <P as VartimeMultiscalarMul>::vartime_multiscalar_mul(scalars, points)
    }
    fn to_bytes(&self) -> Vec<u8> {
        self.compress_to_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        let point = P::decompress_canonical(bytes)?;
        (!point.is_identity()).then_some(point)
    }
}

/// Implements [`ReshareGroup`] for the projective point of an `elliptic-curve` 0.14 prime-order curve crate.
macro_rules! impl_sec1_group {
    ($point:ty, $scalar:ty, $name:literal, $tag:literal) => {
        impl ReshareGroup for $point {
            type Scalar = $scalar;
            const NAME: &'static str = $name;
            const TAG: u8 = $tag;

            fn scalar_from_u64(v: u64) -> Self::Scalar {
                <$scalar>::from(v)
            }
            fn invert(s: &Self::Scalar) -> Option<Self::Scalar> {
                use k256::elliptic_curve::ff::Field;
                Option::from(Field::invert(s))
            }
            fn random_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> Self::Scalar {
                // Rejection sampling of a canonical 32-byte big-endian value: uniform, and a retry is needed
                // with probability < 2^-32 (P-256) or < 2^-127 (secp256k1).
                loop {
                    let mut bytes = Zeroizing::new([0u8; 32]);
                    rng.fill_bytes(bytes.as_mut());
                    if let Some(s) = Self::scalar_from_bytes(&bytes) {
                        return s;
                    }
                }
            }
            fn scalar_to_bytes(s: &Self::Scalar) -> Zeroizing<[u8; 32]> {
                use k256::elliptic_curve::ff::PrimeField;
                let mut repr = s.to_repr();
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(repr.as_slice());
                repr.as_mut_slice().zeroize();
                out
            }
            fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Self::Scalar> {
                use k256::elliptic_curve::ff::PrimeField;
                let mut repr = <$scalar as PrimeField>::Repr::default();
                repr.as_mut_slice().copy_from_slice(bytes);
                let scalar = Option::from(<$scalar>::from_repr(repr.clone()));
                repr.as_mut_slice().zeroize();
                scalar
            }
            fn identity() -> Self {
                use k256::elliptic_curve::group::Group;
                <$point as Group>::identity()
            }
            fn mul_base(s: &Self::Scalar) -> Self {
                use k256::elliptic_curve::group::Group;
                <$point as Group>::mul_by_generator(s)
            }
            fn vartime_multiscalar_mul(scalars: &[Self::Scalar], points: &[Self]) -> Self {
                scalars
                    .iter()
                    .zip(points)
                    .fold(Self::identity(), |acc, (s, p)| acc + *p * *s)
            }
            fn to_bytes(&self) -> Vec<u8> {
                use k256::elliptic_curve::group::GroupEncoding;
                GroupEncoding::to_bytes(self).as_slice().to_vec()
            }
            fn from_bytes(bytes: &[u8]) -> Option<Self> {
                use k256::elliptic_curve::group::{Group, GroupEncoding};
                let mut repr = <$point as GroupEncoding>::Repr::default();
                if repr.as_slice().len() != bytes.len() {
                    return None;
                }
                repr.as_mut_slice().copy_from_slice(bytes);
                let point: $point = Option::from(<$point as GroupEncoding>::from_bytes(&repr))?;
                // Re-encoding refuses any encoding but the canonical compressed one.
                let canonical = GroupEncoding::to_bytes(&point).as_slice() == bytes;
                (canonical && !bool::from(point.is_identity())).then_some(point)
            }
        }
    };
}

impl_sec1_group!(k256::ProjectivePoint, k256::Scalar, "secp256k1", 3);
impl_sec1_group!(p256::ProjectivePoint, p256::Scalar, "P-256", 4);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use rand_core::OsRng;

    fn exercise<G: ReshareGroup>(point_len: usize) {
        let mut rng = OsRng;
        let a = G::random_scalar(&mut rng);
        let b = G::random_scalar(&mut rng);
        assert!(a != b);
        // Scalars round-trip; the group order is not canonical.
        assert!(G::scalar_from_bytes(&G::scalar_to_bytes(&a)).unwrap() == a);
        let minus_one = G::scalar_to_bytes(&-G::scalar_one());
        assert!(G::scalar_from_bytes(&minus_one).is_some());
        assert!(G::scalar_from_bytes(&[0xff; 32]).is_none());
        assert!(G::invert(&a).unwrap() * a == G::scalar_one());
        assert!(G::invert(&G::scalar_zero()).is_none());
        // Points round-trip; the identity and wrong lengths do not decode.
        let p = G::mul_base(&a);
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), point_len);
        assert_eq!(G::from_bytes(&bytes).unwrap(), p);
        assert!(G::from_bytes(&G::identity().to_bytes()).is_none());
        assert!(G::from_bytes(&bytes[1..]).is_none());
        // Linear combinations agree with scalar arithmetic.
        let q = G::mul_base(&b);
        assert_eq!(
            G::vartime_multiscalar_mul(&[a, b], &[p, q]),
            G::mul_base(&(a * a + b * b))
        );
        assert_eq!(p + q, G::mul_base(&(a + b)));
    }

    #[test]
    fn every_group_behaves() {
        exercise::<EdwardsPoint>(32);
        exercise::<RistrettoPoint>(32);
        exercise::<k256::ProjectivePoint>(33);
        exercise::<p256::ProjectivePoint>(33);
    }

    #[test]
    fn curve25519_names_tags_and_encodings_are_unchanged() {
        use curve25519_dalek::constants::{
            ED25519_BASEPOINT_COMPRESSED, ED25519_BASEPOINT_POINT, RISTRETTO_BASEPOINT_COMPRESSED,
            RISTRETTO_BASEPOINT_POINT,
        };
        assert_eq!(
            (
                <EdwardsPoint as ReshareGroup>::NAME,
                <EdwardsPoint as ReshareGroup>::TAG
            ),
            ("Ed25519", 1)
        );
        assert_eq!(
            (
                <RistrettoPoint as ReshareGroup>::NAME,
                <RistrettoPoint as ReshareGroup>::TAG
            ),
            ("ristretto255", 2)
        );
        let one = curve25519_dalek::Scalar::ONE;
        assert_eq!(
            <EdwardsPoint as ReshareGroup>::mul_base(&one),
            ED25519_BASEPOINT_POINT
        );
        assert_eq!(
            ReshareGroup::to_bytes(&ED25519_BASEPOINT_POINT),
            ED25519_BASEPOINT_COMPRESSED.to_bytes()
        );
        assert_eq!(
            <RistrettoPoint as ReshareGroup>::mul_base(&one),
            RISTRETTO_BASEPOINT_POINT
        );
        assert_eq!(
            ReshareGroup::to_bytes(&RISTRETTO_BASEPOINT_POINT),
            RISTRETTO_BASEPOINT_COMPRESSED.to_bytes()
        );
        // Scalars: 32 bytes little-endian.
        let mut two = [0u8; 32];
        two[0] = 2;
        assert_eq!(
            *EdwardsPoint::scalar_to_bytes(&EdwardsPoint::scalar_from_u64(2)),
            two
        );
        assert_eq!(
            *RistrettoPoint::scalar_to_bytes(&RistrettoPoint::scalar_from_u64(2)),
            two
        );
        // Ristretto refuses a non-canonical field element (the high bit set) and the identity.
        let mut high = RISTRETTO_BASEPOINT_COMPRESSED.to_bytes();
        high[31] |= 0x80;
        assert!(RistrettoPoint::from_bytes(&high).is_none());
        assert!(RistrettoPoint::from_bytes(&[0; 32]).is_none());
        assert!(RistrettoPoint::from_bytes(&[0; 31]).is_none());
    }

    #[test]
    fn edwards_refuses_torsion_and_non_canonical_points() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let p = EdwardsPoint::mul_base(&curve25519_dalek::Scalar::from(5u64));
        // A point with a small-order component decodes as a curve point but is refused.
        let mixed = p + EIGHT_TORSION[1];
        assert!(EdwardsPoint::from_bytes(&mixed.compress().to_bytes()).is_none());
        for t in EIGHT_TORSION.iter() {
            assert!(EdwardsPoint::from_bytes(&t.compress().to_bytes()).is_none());
        }
        // y = p + 1 ≡ 1 (mod p): a non-canonical encoding of a small-order point.
        let mut y = [0xffu8; 32];
        y[0] = 0xee;
        y[31] = 0x7f;
        assert!(EdwardsPoint::from_bytes(&y).is_none());
        // The sign bit set on a point with x = 0 (the identity).
        let mut neg_zero = <EdwardsPoint as Identity>::identity().compress().to_bytes();
        neg_zero[31] |= 0x80;
        assert!(EdwardsPoint::from_bytes(&neg_zero).is_none());
    }

    #[test]
    fn sec1_refuses_uncompressed_and_off_curve() {
        use k256::elliptic_curve::sec1::ToSec1Point;
        let p = <k256::ProjectivePoint as ReshareGroup>::mul_base(&k256::Scalar::from(7u64));
        let uncompressed = p.to_affine().to_sec1_point(false);
        assert!(k256::ProjectivePoint::from_bytes(uncompressed.as_bytes()).is_none());
        let mut bad = ReshareGroup::to_bytes(&p);
        bad[0] = 0x05;
        assert!(k256::ProjectivePoint::from_bytes(&bad).is_none());
        // x = 2^256 − 1 is not a canonical field element.
        let mut off = vec![0x02];
        off.extend_from_slice(&[0xff; 32]);
        assert!(p256::ProjectivePoint::from_bytes(&off).is_none());
    }
}
