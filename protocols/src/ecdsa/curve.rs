//! The two curves of threshold ECDSA: secp256k1 (`k256`) and NIST P-256 (`p256`).
//!
//! [`EcdsaCurve`] is the public name of a curve (in parameters, encodings and logs). Inside the crate,
//! `EngineCurve` ties each curve's `dkls23` types to our enums, so that the DKG and signing state machines
//! are written once, generically, and dispatched on the curve at their edges.

use dkls23::curve::DklsCurve;
use dkls23::protocols::{Party, PublicKeyPackage};
use k256::elliptic_curve::sec1::ToSec1Point;
use serde::{de::DeserializeOwned, Serialize};

pub use vhsm_core::EcdsaCurve;

/// A value for one of the two curves: the same generic type instantiated on secp256k1 or on P-256.
/// [`on_curve!`] runs one piece of code on whichever it holds.
#[derive(Clone)]
pub(crate) enum OnCurve<A, B> {
    /// secp256k1.
    Secp256k1(A),
    /// P-256.
    P256(B),
}

/// Runs `$body` with `$bind` bound to the value inside an [`OnCurve`], whichever curve it is on; the body is
/// compiled once per curve.
macro_rules! on_curve {
    ($value:expr, $bind:pat => $body:expr) => {
        match $value {
            $crate::ecdsa::curve::OnCurve::Secp256k1($bind) => $body,
            $crate::ecdsa::curve::OnCurve::P256($bind) => $body,
        }
    };
}
pub(crate) use on_curve;

/// The `dkls23` key material of one participant, for either curve.
pub(crate) type PartyOnCurve = OnCurve<Party<k256::Secp256k1>, Party<p256::NistP256>>;

/// The `dkls23` public key package, for either curve.
pub(crate) type PackageOnCurve =
    OnCurve<PublicKeyPackage<k256::Secp256k1>, PublicKeyPackage<p256::NistP256>>;

/// A curve `dkls23` can run on, with the glue between its generic types and our curve enums.
///
/// The associated-type bounds make every `dkls23` message and state type of the curve (de)serializable, which
/// is what the state machines need to put them on the wire.
pub(crate) trait EngineCurve:
    DklsCurve<AffinePoint: Serialize + DeserializeOwned, Scalar: Serialize + DeserializeOwned>
{
    /// Our name of the curve.
    const CURVE: EcdsaCurve;
    /// Whether signatures are normalised to low-S (secp256k1, where `k256` refuses high-S signatures).
    const NORMALIZE_S: bool;

    /// Wraps a party of this curve.
    fn wrap_party(party: Party<Self>) -> PartyOnCurve;
    /// The party, if `party` is of this curve.
    fn party(party: &PartyOnCurve) -> Option<&Party<Self>>;
    /// Wraps a public key package of this curve.
    fn wrap_package(package: PublicKeyPackage<Self>) -> PackageOnCurve;
    /// The package, if `package` is of this curve.
    fn package(package: &PackageOnCurve) -> Option<&PublicKeyPackage<Self>>;

    /// Uncompressed SEC1 encoding (`0x04 ‖ X ‖ Y`, 65 bytes; a single zero byte for the identity) of a
    /// point.
    fn sec1_uncompressed(point: &Self::AffinePoint) -> Vec<u8>;
}

impl EngineCurve for k256::Secp256k1 {
    fn sec1_uncompressed(point: &Self::AffinePoint) -> Vec<u8> {
        point.to_sec1_point(false).as_bytes().to_vec()
    }

    const CURVE: EcdsaCurve = EcdsaCurve::Secp256k1;
    const NORMALIZE_S: bool = true;

    fn wrap_party(party: Party<Self>) -> PartyOnCurve {
        PartyOnCurve::Secp256k1(party)
    }
    fn party(party: &PartyOnCurve) -> Option<&Party<Self>> {
        match party {
            PartyOnCurve::Secp256k1(p) => Some(p),
            PartyOnCurve::P256(_) => None,
        }
    }
    fn wrap_package(package: PublicKeyPackage<Self>) -> PackageOnCurve {
        PackageOnCurve::Secp256k1(package)
    }
    fn package(package: &PackageOnCurve) -> Option<&PublicKeyPackage<Self>> {
        match package {
            PackageOnCurve::Secp256k1(p) => Some(p),
            PackageOnCurve::P256(_) => None,
        }
    }
}

impl EngineCurve for p256::NistP256 {
    fn sec1_uncompressed(point: &Self::AffinePoint) -> Vec<u8> {
        point.to_sec1_point(false).as_bytes().to_vec()
    }

    const CURVE: EcdsaCurve = EcdsaCurve::P256;
    const NORMALIZE_S: bool = false;

    fn wrap_party(party: Party<Self>) -> PartyOnCurve {
        PartyOnCurve::P256(party)
    }
    fn party(party: &PartyOnCurve) -> Option<&Party<Self>> {
        match party {
            PartyOnCurve::P256(p) => Some(p),
            PartyOnCurve::Secp256k1(_) => None,
        }
    }
    fn wrap_package(package: PublicKeyPackage<Self>) -> PackageOnCurve {
        PackageOnCurve::P256(package)
    }
    fn package(package: &PackageOnCurve) -> Option<&PublicKeyPackage<Self>> {
        match package {
            PackageOnCurve::P256(p) => Some(p),
            PackageOnCurve::Secp256k1(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_tags() {
        assert_eq!(EcdsaCurve::Secp256k1.name(), "secp256k1");
        assert_eq!(EcdsaCurve::P256.to_string(), "P-256");
        for c in [EcdsaCurve::Secp256k1, EcdsaCurve::P256] {
            assert_eq!(EcdsaCurve::from_tag(c.tag()).unwrap(), c);
        }
        assert!(EcdsaCurve::from_tag(0).is_none());
        assert!(EcdsaCurve::from_tag(3).is_none());
    }
}
