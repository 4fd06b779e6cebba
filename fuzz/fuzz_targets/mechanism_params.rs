//! Mechanism parameters and EC encodings from arbitrary bytes: `CK_EDDSA_PARAMS` images, parameters where none
//! belong, `CKA_EC_PARAMS` and `CKA_EC_POINT`. Nothing may panic.
//!
//! Input: `selector: u8 ‖ parameter bytes`.
#![no_main]

use cryptoki_sys::*;
use libfuzzer_sys::fuzz_target;
use vhsm_pkcs11::encoding::{parse_ec_params, parse_ec_point, Curve};
use vhsm_pkcs11::mechanisms::{
    parse_cipher_mechanism, parse_digest_mechanism, parse_eddsa_params, parse_keygen_mechanism,
    parse_secret_keygen_mechanism, parse_sign_mechanism, SignMechanism, CKM_VHSM_SPLIT_AES,
    CKM_VHSM_SPLIT_AES_KEY_GEN, MAX_AAD_LEN,
};

const MECHANISMS: &[CK_MECHANISM_TYPE] = &[
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_EDDSA,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_EC_KEY_PAIR_GEN,
    CKM_EC_EDWARDS_KEY_PAIR_GEN,
    CKM_RSA_PKCS,
    CKM_VHSM_SPLIT_AES,
    CKM_VHSM_SPLIT_AES_KEY_GEN,
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, param)) = data.split_first() else { return };
    let mechanism = MECHANISMS[usize::from(*selector) % MECHANISMS.len()];
    let signing = parse_sign_mechanism(mechanism, param);
    if let Ok(m) = signing {
        // Only pure EdDSA and parameterless ECDSA are ever accepted.
        assert!(m == SignMechanism::Eddsa || param.is_empty());
    }
    let _ = parse_digest_mechanism(mechanism, param);
    let _ = parse_keygen_mechanism(mechanism, param);
    if parse_secret_keygen_mechanism(mechanism, param).is_ok() {
        assert!(param.is_empty());
    }
    if let Ok(aad) = parse_cipher_mechanism(mechanism, param) {
        assert_eq!(aad, param);
        assert!(aad.len() <= MAX_AAD_LEN);
    }
    if parse_eddsa_params(param).is_ok() {
        assert!(param.is_empty() || param.len() == std::mem::size_of::<CK_EDDSA_PARAMS>());
    }
    if let Ok(curve) = parse_ec_params(param) {
        let _ = curve.ec_params();
    }
    for curve in [Curve::P256, Curve::Secp256k1, Curve::Ed25519] {
        if let Ok(point) = parse_ec_point(curve, param) {
            assert_eq!(point.len(), curve.public_key_len());
        }
    }
});
