//! The curves and their PKCS#11 encodings: `CKA_EC_PARAMS` (a DER OID, or the PrintableString curve name that
//! older OpenSC sends for Ed25519), `CKA_EC_POINT` (a DER OCTET STRING holding the point), and the
//! SubjectPublicKeyInfo of `CKA_PUBLIC_KEY_INFO`.

use cryptoki_sys::*;
use vhsm_core::Algorithm;

use crate::CkResult;

/// DER of the OID 1.2.840.10045.3.1.7 (prime256v1, P-256).
pub const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the OID 1.3.132.0.10 (secp256k1).
pub const OID_SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// DER of the OID 1.3.101.112 (Ed25519, RFC 8410).
pub const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519" (PKCS#11 3.0 §2.3.7; what OpenSC's pkcs11-tool sends).
pub const NAME_EDWARDS25519: &[u8] = b"\x13\x0cedwards25519";
/// DER of the OID 1.3.6.1.4.1.11591.15.1 (GnuPG's name for Ed25519, used by some OpenPGP cards and tools).
pub const OID_ED25519_GNUPG: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01,
];

/// A curve the cluster supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (ECDSA).
    P256,
    /// secp256k1 (ECDSA).
    Secp256k1,
    /// Ed25519 (EdDSA).
    Ed25519,
}

impl Curve {
    /// The curve of a cluster key's algorithm; `None` for keys that are not key pairs (split-AES, which this
    /// module does not present yet).
    pub fn from_algorithm(algorithm: Algorithm) -> Option<Curve> {
        match algorithm {
            Algorithm::Ed25519 => Some(Curve::Ed25519),
            Algorithm::EcdsaP256 => Some(Curve::P256),
            Algorithm::EcdsaSecp256k1 => Some(Curve::Secp256k1),
            Algorithm::SplitAes256 => None,
        }
    }

    /// The cluster algorithm of keys on this curve.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Curve::Ed25519 => Algorithm::Ed25519,
            Curve::P256 => Algorithm::EcdsaP256,
            Curve::Secp256k1 => Algorithm::EcdsaSecp256k1,
        }
    }

    /// `CKA_KEY_TYPE` of keys on this curve.
    pub fn key_type(self) -> CK_KEY_TYPE {
        match self {
            Curve::Ed25519 => CKK_EC_EDWARDS,
            Curve::P256 | Curve::Secp256k1 => CKK_EC,
        }
    }

    /// The mechanism that generates keys on this curve (`CKA_KEY_GEN_MECHANISM`).
    pub fn keygen_mechanism(self) -> CK_MECHANISM_TYPE {
        match self {
            Curve::Ed25519 => CKM_EC_EDWARDS_KEY_PAIR_GEN,
            Curve::P256 | Curve::Secp256k1 => CKM_EC_KEY_PAIR_GEN,
        }
    }

    /// The canonical `CKA_EC_PARAMS`: the curve's DER OID.
    pub fn ec_params(self) -> &'static [u8] {
        match self {
            Curve::P256 => OID_P256,
            Curve::Secp256k1 => OID_SECP256K1,
            Curve::Ed25519 => OID_ED25519,
        }
    }

    /// The length of a public key as the cluster gives it (uncompressed SEC1 point, or RFC 8032 encoding).
    pub fn public_key_len(self) -> usize {
        match self {
            Curve::Ed25519 => 32,
            Curve::P256 | Curve::Secp256k1 => 65,
        }
    }
}

/// Parses `CKA_EC_PARAMS`. A well-formed OID or curve name of a curve the cluster does not support is
/// `CKR_CURVE_NOT_SUPPORTED`; anything that is not a DER OID or PrintableString is `CKR_ATTRIBUTE_VALUE_INVALID`.
pub fn parse_ec_params(der: &[u8]) -> CkResult<Curve> {
    if der == OID_P256 {
        return Ok(Curve::P256);
    }
    if der == OID_SECP256K1 {
        return Ok(Curve::Secp256k1);
    }
    if der == OID_ED25519 || der == NAME_EDWARDS25519 || der == OID_ED25519_GNUPG {
        return Ok(Curve::Ed25519);
    }
    match der {
        // OID or PrintableString with a short-form length that covers the rest: a curve we do not have.
        [0x06 | 0x13, len, rest @ ..]
            if usize::from(*len) == rest.len() && *len < 0x80 && !rest.is_empty() =>
        {
            match rest {
                b"ed25519" | b"Ed25519" => Ok(Curve::Ed25519),
                b"prime256v1" | b"secp256r1" | b"P-256" => Ok(Curve::P256),
                b"secp256k1" => Ok(Curve::Secp256k1),
                _ => Err(CKR_CURVE_NOT_SUPPORTED),
            }
        }
        // Explicit parameters (a SEQUENCE) or implicitlyCA (NULL): well-formed, not supported.
        [0x30, ..] | [0x05, 0x00] => Err(CKR_CURVE_NOT_SUPPORTED),
        _ => Err(CKR_ATTRIBUTE_VALUE_INVALID),
    }
}

/// `CKA_EC_POINT`: the public key as a DER OCTET STRING (P-256/secp256k1: `04 41 04‖X‖Y`; Ed25519: `04 20‖A`).
pub fn ec_point(public_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(public_key.len() + 3);
    out.push(0x04);
    push_der_len(&mut out, public_key.len());
    out.extend_from_slice(public_key);
    out
}

/// Parses a `CKA_EC_POINT` given by an application (importing a public key): the DER OCTET STRING, or — as some
/// applications send — the raw point. Checks that the point is on the curve.
pub fn parse_ec_point(curve: Curve, der: &[u8]) -> CkResult<Vec<u8>> {
    let n = curve.public_key_len();
    let point = match der {
        [0x04, len, rest @ ..] if usize::from(*len) == n && rest.len() == n => rest,
        _ if der.len() == n => der,
        _ => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
    };
    if !point_is_valid(curve, point) {
        return Err(CKR_ATTRIBUTE_VALUE_INVALID);
    }
    Ok(point.to_vec())
}

/// Whether `public_key` is a valid public key on `curve` (uncompressed SEC1, or the 32-byte Ed25519 encoding).
pub fn point_is_valid(curve: Curve, public_key: &[u8]) -> bool {
    match curve {
        Curve::P256 => {
            public_key.first() == Some(&0x04)
                && p256::PublicKey::from_sec1_bytes(public_key).is_ok()
        }
        Curve::Secp256k1 => {
            public_key.first() == Some(&0x04)
                && k256::PublicKey::from_sec1_bytes(public_key).is_ok()
        }
        Curve::Ed25519 => <[u8; 32]>::try_from(public_key)
            .ok()
            .is_some_and(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_ok()),
    }
}

/// The DER SubjectPublicKeyInfo of a public key (`CKA_PUBLIC_KEY_INFO`; RFC 5480, RFC 8410).
pub fn subject_public_key_info(curve: Curve, public_key: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier bodies: id-ecPublicKey + named curve, or id-Ed25519 without parameters.
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let mut algorithm = Vec::new();
    match curve {
        Curve::P256 | Curve::Secp256k1 => {
            algorithm.extend_from_slice(EC_PUBLIC_KEY);
            algorithm.extend_from_slice(curve.ec_params());
        }
        Curve::Ed25519 => algorithm.extend_from_slice(OID_ED25519),
    }
    let mut body = der_tlv(0x30, &algorithm);
    let mut bits = vec![0x00];
    bits.extend_from_slice(public_key);
    body.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_der_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ec_params_encodings() {
        assert_eq!(
            parse_ec_params(&unhex("06082a8648ce3d030107")),
            Ok(Curve::P256)
        );
        assert_eq!(
            parse_ec_params(&unhex("06052b8104000a")),
            Ok(Curve::Secp256k1)
        );
        assert_eq!(parse_ec_params(&unhex("06032b6570")), Ok(Curve::Ed25519));
        assert_eq!(
            parse_ec_params(&unhex("130c656477617264733235353139")),
            Ok(Curve::Ed25519)
        );
        assert_eq!(
            parse_ec_params(&unhex("06092b06010401da470f01")),
            Ok(Curve::Ed25519)
        );
        for c in [Curve::P256, Curve::Secp256k1, Curve::Ed25519] {
            assert_eq!(parse_ec_params(c.ec_params()), Ok(c));
        }
        // P-384, Ed448, X25519: well-formed, not supported.
        assert_eq!(
            parse_ec_params(&unhex("06052b81040022")),
            Err(CKR_CURVE_NOT_SUPPORTED)
        );
        assert_eq!(
            parse_ec_params(&unhex("06032b6571")),
            Err(CKR_CURVE_NOT_SUPPORTED)
        );
        assert_eq!(
            parse_ec_params(b"\x13\x0acurve25519"),
            Err(CKR_CURVE_NOT_SUPPORTED)
        );
        // Malformed.
        assert_eq!(parse_ec_params(&[]), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        assert_eq!(
            parse_ec_params(&unhex("0608")),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            parse_ec_params(&unhex("06092b")),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
    }

    #[test]
    fn ec_points() {
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let point =
            p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&secret.public_key(), false);
        let sec1 = point.as_bytes().to_vec();
        let der = ec_point(&sec1);
        assert_eq!(&der[..3], &[0x04, 0x41, 0x04]);
        assert_eq!(der.len(), 67);
        assert_eq!(parse_ec_point(Curve::P256, &der).unwrap(), sec1);
        assert_eq!(parse_ec_point(Curve::P256, &sec1).unwrap(), sec1);
        assert!(
            parse_ec_point(Curve::Secp256k1, &der).is_err(),
            "not on secp256k1"
        );
        let mut bad = sec1.clone();
        bad[64] ^= 1;
        assert!(parse_ec_point(Curve::P256, &bad).is_err());

        let ed = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
            .verifying_key()
            .to_bytes();
        let der = ec_point(&ed);
        assert_eq!(&der[..2], &[0x04, 0x20]);
        assert_eq!(parse_ec_point(Curve::Ed25519, &der).unwrap(), ed.to_vec());
    }

    #[test]
    fn spki_matches_the_curve_crates() {
        use p256::pkcs8::EncodePublicKey;
        let p = p256::SecretKey::from_slice(&[5u8; 32])
            .unwrap()
            .public_key();
        let sec1 = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&p, false);
        assert_eq!(
            subject_public_key_info(Curve::P256, sec1.as_bytes()),
            p.to_public_key_der().unwrap().as_bytes()
        );
        let k = k256::SecretKey::from_slice(&[5u8; 32])
            .unwrap()
            .public_key();
        let sec1 = k256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&k, false);
        assert_eq!(
            subject_public_key_info(Curve::Secp256k1, sec1.as_bytes()),
            k256::pkcs8::EncodePublicKey::to_public_key_der(&k)
                .unwrap()
                .as_bytes()
        );
        let e = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]).verifying_key();
        assert_eq!(
            subject_public_key_info(Curve::Ed25519, e.as_bytes()),
            ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_der(&e)
                .unwrap()
                .as_bytes()
        );
    }

    #[test]
    fn long_der_lengths() {
        let mut out = Vec::new();
        push_der_len(&mut out, 300);
        assert_eq!(out, vec![0x82, 0x01, 0x2c]);
    }
}
