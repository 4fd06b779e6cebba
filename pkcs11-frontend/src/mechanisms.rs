//! The mechanism table (`C_GetMechanismList`/`C_GetMechanismInfo` report exactly this) and the parsing of
//! mechanism parameters.
//!
//! | mechanism | what it does | where |
//! |---|---|---|
//! | `CKM_EC_KEY_PAIR_GEN` | P-256 and secp256k1 key pairs (DKLs23 distributed key generation) | cluster |
//! | `CKM_EC_EDWARDS_KEY_PAIR_GEN` | Ed25519 key pairs (FROST distributed key generation) | cluster |
//! | `CKM_ECDSA` | sign a digest of any length (leftmost 256 bits), verify | sign: cluster; verify: module |
//! | `CKM_ECDSA_SHA1/SHA256/384/512` | hash in the module, then as `CKM_ECDSA` (SHA-1 only for old clients) | sign: cluster; verify: module |
//! | `CKM_EDDSA` | pure Ed25519 (no prehash, no context) | sign: cluster; verify: module |
//! | `CKM_SHA_1`, `CKM_SHA256/384/512` | digests | module |
//! | [`CKM_VHSM_SPLIT_AES_KEY_GEN`] (`0x80564801`) | split-AES keys (distributed key generation on ristretto255) | cluster |
//! | [`CKM_VHSM_SPLIT_AES`] (`0x80564802`) | encrypt/decrypt with a split-AES key; the parameter, if any, is the associated data | cluster |
//!
//! Split-AES keys have the key type [`CKK_VHSM_SPLIT_AES`] (`0x80564801`). The ciphertext is the cluster's blob
//! (`version ‖ key id ‖ α ‖ encryption receipt ‖ nonce ‖ AES-256-GCM(plaintext ‖ ρ)`,
//! [`split_aes_overhead`]`(t)` = 111 + 130·t bytes longer than the plaintext for a key of threshold `t`): every message is encrypted under its own key derived by the nodes' distributed PRF, so the
//! standard `CKM_AES_GCM` (one key, caller's IV) is deliberately not claimed.

use cryptoki_sys::*;

use crate::encoding::Curve;
use crate::CkResult;

/// One row of the mechanism table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MechanismEntry {
    /// The mechanism.
    pub mechanism: CK_MECHANISM_TYPE,
    /// Smallest key size (bits of the curve's field, PKCS#11's convention for EC).
    pub min_key_size: CK_ULONG,
    /// Largest key size.
    pub max_key_size: CK_ULONG,
    /// `CKF_*` flags.
    pub flags: CK_FLAGS,
}

/// The vendor prefix of vHSM's own values: `CK*_VENDOR_DEFINED | 0x0056_48xx` ("VH").
const VHSM_VENDOR: CK_ULONG = 0x8000_0000 | 0x0056_4800;
/// Key type of split-AES keys (`CKK_VENDOR_DEFINED | 0x564801`).
pub const CKK_VHSM_SPLIT_AES: CK_KEY_TYPE = VHSM_VENDOR | 0x01;
/// Generates a split-AES key (`CKM_VENDOR_DEFINED | 0x564801`); no parameter.
pub const CKM_VHSM_SPLIT_AES_KEY_GEN: CK_MECHANISM_TYPE = VHSM_VENDOR | 0x01;
/// Split-AES encryption and decryption (`CKM_VENDOR_DEFINED | 0x564802`); the parameter, if present, is the
/// associated data (raw bytes, at most [`MAX_AAD_LEN`]).
pub const CKM_VHSM_SPLIT_AES: CK_MECHANISM_TYPE = VHSM_VENDOR | 0x02;
/// How much longer a split-AES ciphertext is than its plaintext, with an encryption receipt of `receipt_entries`
/// entries (the key's threshold when it was encrypted; see `vhsm_core::ciphertext`).
pub fn split_aes_overhead(receipt_entries: usize) -> usize {
    vhsm_core::ciphertext::blob_len(0, receipt_entries)
}
/// The longest associated data `CKM_VHSM_SPLIT_AES` takes.
pub const MAX_AAD_LEN: usize = 64 * 1024;

const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS;

/// Every mechanism the module offers.
pub const MECHANISMS: &[MechanismEntry] = &[
    MechanismEntry {
        mechanism: CKM_EC_KEY_PAIR_GEN,
        min_key_size: 256,
        max_key_size: 256,
        flags: CKF_HW | CKF_GENERATE_KEY_PAIR | EC_FLAGS,
    },
    MechanismEntry {
        mechanism: CKM_ECDSA,
        min_key_size: 256,
        max_key_size: 256,
        flags: CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS,
    },
    MechanismEntry {
        mechanism: CKM_ECDSA_SHA1,
        min_key_size: 256,
        max_key_size: 256,
        flags: CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS,
    },
    MechanismEntry {
        mechanism: CKM_ECDSA_SHA256,
        min_key_size: 256,
        max_key_size: 256,
        flags: CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS,
    },
    MechanismEntry {
        mechanism: CKM_ECDSA_SHA384,
        min_key_size: 256,
        max_key_size: 256,
        flags: CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS,
    },
    MechanismEntry {
        mechanism: CKM_ECDSA_SHA512,
        min_key_size: 256,
        max_key_size: 256,
        flags: CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS,
    },
    MechanismEntry {
        mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN,
        min_key_size: 255,
        max_key_size: 255,
        flags: CKF_HW | CKF_GENERATE_KEY_PAIR | CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME,
    },
    MechanismEntry {
        mechanism: CKM_EDDSA,
        min_key_size: 255,
        max_key_size: 255,
        flags: CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME,
    },
    MechanismEntry {
        mechanism: CKM_VHSM_SPLIT_AES_KEY_GEN,
        min_key_size: 32,
        max_key_size: 32,
        flags: CKF_HW | CKF_GENERATE,
    },
    MechanismEntry {
        mechanism: CKM_VHSM_SPLIT_AES,
        min_key_size: 32,
        max_key_size: 32,
        flags: CKF_HW | CKF_ENCRYPT | CKF_DECRYPT,
    },
    MechanismEntry {
        mechanism: CKM_SHA_1,
        min_key_size: 0,
        max_key_size: 0,
        flags: CKF_DIGEST,
    },
    MechanismEntry {
        mechanism: CKM_SHA256,
        min_key_size: 0,
        max_key_size: 0,
        flags: CKF_DIGEST,
    },
    MechanismEntry {
        mechanism: CKM_SHA384,
        min_key_size: 0,
        max_key_size: 0,
        flags: CKF_DIGEST,
    },
    MechanismEntry {
        mechanism: CKM_SHA512,
        min_key_size: 0,
        max_key_size: 0,
        flags: CKF_DIGEST,
    },
];

/// The table's row for `mechanism`, or `CKR_MECHANISM_INVALID`.
pub fn entry(mechanism: CK_MECHANISM_TYPE) -> CkResult<&'static MechanismEntry> {
    MECHANISMS
        .iter()
        .find(|e| e.mechanism == mechanism)
        .ok_or(CKR_MECHANISM_INVALID)
}

/// A signing/verification mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignMechanism {
    /// `CKM_ECDSA`: the input is a digest.
    Ecdsa,
    /// `CKM_ECDSA_SHA1` (for clients that still ask for it).
    EcdsaSha1,
    /// `CKM_ECDSA_SHA256`.
    EcdsaSha256,
    /// `CKM_ECDSA_SHA384`.
    EcdsaSha384,
    /// `CKM_ECDSA_SHA512`.
    EcdsaSha512,
    /// `CKM_EDDSA`, pure Ed25519.
    Eddsa,
}

impl SignMechanism {
    /// Whether keys on `curve` can be used with this mechanism.
    pub fn accepts(self, curve: Curve) -> bool {
        match self {
            SignMechanism::Eddsa => curve == Curve::Ed25519,
            _ => curve != Curve::Ed25519,
        }
    }

    /// The digest the module computes over the input first, if any.
    pub fn digest(self) -> Option<DigestMechanism> {
        match self {
            SignMechanism::Ecdsa | SignMechanism::Eddsa => None,
            SignMechanism::EcdsaSha1 => Some(DigestMechanism::Sha1),
            SignMechanism::EcdsaSha256 => Some(DigestMechanism::Sha256),
            SignMechanism::EcdsaSha384 => Some(DigestMechanism::Sha384),
            SignMechanism::EcdsaSha512 => Some(DigestMechanism::Sha512),
        }
    }
}

/// A digest mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestMechanism {
    /// `CKM_SHA_1`.
    Sha1,
    /// `CKM_SHA256`.
    Sha256,
    /// `CKM_SHA384`.
    Sha384,
    /// `CKM_SHA512`.
    Sha512,
}

impl DigestMechanism {
    /// The digest's length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            DigestMechanism::Sha1 => 20,
            DigestMechanism::Sha256 => 32,
            DigestMechanism::Sha384 => 48,
            DigestMechanism::Sha512 => 64,
        }
    }
}

/// A key-pair generation mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyGenMechanism {
    /// `CKM_EC_KEY_PAIR_GEN` (P-256, secp256k1).
    Ec,
    /// `CKM_EC_EDWARDS_KEY_PAIR_GEN` (Ed25519).
    EcEdwards,
}

fn no_parameter(param: &[u8]) -> CkResult<()> {
    if param.is_empty() {
        Ok(())
    } else {
        Err(CKR_MECHANISM_PARAM_INVALID)
    }
}

/// Parses a signing or verification mechanism and its parameter (`param`: the `ulParameterLen` bytes at
/// `pParameter`, empty for NULL). Unknown or non-signing mechanisms are `CKR_MECHANISM_INVALID`; a parameter that
/// asks for something not offered (Ed25519ph, a context) is `CKR_MECHANISM_PARAM_INVALID`.
pub fn parse_sign_mechanism(mechanism: CK_MECHANISM_TYPE, param: &[u8]) -> CkResult<SignMechanism> {
    let parsed = match mechanism {
        CKM_ECDSA => SignMechanism::Ecdsa,
        CKM_ECDSA_SHA1 => SignMechanism::EcdsaSha1,
        CKM_ECDSA_SHA256 => SignMechanism::EcdsaSha256,
        CKM_ECDSA_SHA384 => SignMechanism::EcdsaSha384,
        CKM_ECDSA_SHA512 => SignMechanism::EcdsaSha512,
        CKM_EDDSA => {
            parse_eddsa_params(param)?;
            return Ok(SignMechanism::Eddsa);
        }
        _ => return Err(CKR_MECHANISM_INVALID),
    };
    no_parameter(param)?;
    Ok(parsed)
}

/// Checks an optional `CK_EDDSA_PARAMS` given as the bytes of the C structure: absent (NULL), or `phFlag` false
/// with an empty context, means pure Ed25519, the only variant offered. Anything else — Ed25519ph, Ed25519ctx, a
/// structure of the wrong size — is `CKR_MECHANISM_PARAM_INVALID`. The context pointer is never dereferenced.
pub fn parse_eddsa_params(param: &[u8]) -> CkResult<()> {
    if param.is_empty() {
        return Ok(());
    }
    if param.len() != std::mem::size_of::<CK_EDDSA_PARAMS>() {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    let ph_at = std::mem::offset_of!(CK_EDDSA_PARAMS, phFlag);
    let len_at = std::mem::offset_of!(CK_EDDSA_PARAMS, ulContextDataLen);
    let ph_flag = param
        .get(ph_at)
        .copied()
        .ok_or(CKR_MECHANISM_PARAM_INVALID)?;
    let context_len: [u8; 8] = param
        .get(len_at..len_at + 8)
        .and_then(|b| b.try_into().ok())
        .ok_or(CKR_MECHANISM_PARAM_INVALID)?;
    if ph_flag != CK_FALSE || CK_ULONG::from_ne_bytes(context_len) != 0 {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    Ok(())
}

/// Parses a digest mechanism (no parameter).
pub fn parse_digest_mechanism(
    mechanism: CK_MECHANISM_TYPE,
    param: &[u8],
) -> CkResult<DigestMechanism> {
    let parsed = match mechanism {
        CKM_SHA_1 => DigestMechanism::Sha1,
        CKM_SHA256 => DigestMechanism::Sha256,
        CKM_SHA384 => DigestMechanism::Sha384,
        CKM_SHA512 => DigestMechanism::Sha512,
        _ => return Err(CKR_MECHANISM_INVALID),
    };
    no_parameter(param)?;
    Ok(parsed)
}

/// Parses a key-pair generation mechanism (no parameter).
pub fn parse_keygen_mechanism(
    mechanism: CK_MECHANISM_TYPE,
    param: &[u8],
) -> CkResult<KeyGenMechanism> {
    let parsed = match mechanism {
        CKM_EC_KEY_PAIR_GEN => KeyGenMechanism::Ec,
        CKM_EC_EDWARDS_KEY_PAIR_GEN => KeyGenMechanism::EcEdwards,
        _ => return Err(CKR_MECHANISM_INVALID),
    };
    no_parameter(param)?;
    Ok(parsed)
}

/// Parses a secret-key generation mechanism: only [`CKM_VHSM_SPLIT_AES_KEY_GEN`], without a parameter.
pub fn parse_secret_keygen_mechanism(mechanism: CK_MECHANISM_TYPE, param: &[u8]) -> CkResult<()> {
    if mechanism != CKM_VHSM_SPLIT_AES_KEY_GEN {
        return Err(CKR_MECHANISM_INVALID);
    }
    no_parameter(param)
}

/// Parses an encryption/decryption mechanism: only [`CKM_VHSM_SPLIT_AES`]; returns its associated data (the
/// parameter's bytes; none for a NULL parameter). More than [`MAX_AAD_LEN`] bytes is
/// `CKR_MECHANISM_PARAM_INVALID`.
pub fn parse_cipher_mechanism(mechanism: CK_MECHANISM_TYPE, param: &[u8]) -> CkResult<Vec<u8>> {
    if mechanism != CKM_VHSM_SPLIT_AES {
        return Err(CKR_MECHANISM_INVALID);
    }
    if param.len() > MAX_AAD_LEN {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    Ok(param.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn eddsa_params(ph: u8, len: CK_ULONG) -> Vec<u8> {
        let mut raw = vec![0u8; std::mem::size_of::<CK_EDDSA_PARAMS>()];
        raw[std::mem::offset_of!(CK_EDDSA_PARAMS, phFlag)] = ph;
        let at = std::mem::offset_of!(CK_EDDSA_PARAMS, ulContextDataLen);
        raw[at..at + 8].copy_from_slice(&len.to_ne_bytes());
        raw
    }

    #[test]
    fn table_is_consistent() {
        for e in MECHANISMS {
            assert_eq!(entry(e.mechanism).unwrap(), e);
            assert!(e.min_key_size <= e.max_key_size);
            let signs = e.flags & CKF_SIGN != 0;
            assert_eq!(
                signs,
                parse_sign_mechanism(e.mechanism, &[]).is_ok(),
                "{:#x}",
                e.mechanism
            );
            let digests = e.flags & CKF_DIGEST != 0;
            assert_eq!(digests, parse_digest_mechanism(e.mechanism, &[]).is_ok());
            let generates = e.flags & CKF_GENERATE_KEY_PAIR != 0;
            assert_eq!(generates, parse_keygen_mechanism(e.mechanism, &[]).is_ok());
            let generates_secret = e.flags & CKF_GENERATE != 0;
            assert_eq!(
                generates_secret,
                parse_secret_keygen_mechanism(e.mechanism, &[]).is_ok()
            );
            let ciphers = e.flags & (CKF_ENCRYPT | CKF_DECRYPT) != 0;
            assert_eq!(ciphers, parse_cipher_mechanism(e.mechanism, &[]).is_ok());
        }
        assert_eq!(entry(CKM_RSA_PKCS), Err(CKR_MECHANISM_INVALID));
        assert_eq!(entry(CKM_MD5), Err(CKR_MECHANISM_INVALID));
    }

    #[test]
    fn eddsa_parameters() {
        assert_eq!(
            parse_sign_mechanism(CKM_EDDSA, &[]),
            Ok(SignMechanism::Eddsa)
        );
        assert_eq!(
            parse_sign_mechanism(CKM_EDDSA, &eddsa_params(0, 0)),
            Ok(SignMechanism::Eddsa)
        );
        assert_eq!(
            parse_sign_mechanism(CKM_EDDSA, &eddsa_params(1, 0)),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            parse_sign_mechanism(CKM_EDDSA, &eddsa_params(0, 5)),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            parse_sign_mechanism(CKM_EDDSA, &[0; 3]),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
    }

    #[test]
    fn parameters_where_none_belong() {
        assert_eq!(
            parse_sign_mechanism(CKM_ECDSA, &[1]),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            parse_digest_mechanism(CKM_SHA256, &[1]),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            parse_sign_mechanism(CKM_SHA256, &[]),
            Err(CKR_MECHANISM_INVALID)
        );
    }

    #[test]
    fn vendor_values() {
        // The values the README documents: they never change.
        assert_eq!(CKK_VHSM_SPLIT_AES, 0x8056_4801);
        assert_eq!(CKM_VHSM_SPLIT_AES_KEY_GEN, 0x8056_4801);
        assert_eq!(CKM_VHSM_SPLIT_AES, 0x8056_4802);
        const { assert!(CKK_VHSM_SPLIT_AES & CKK_VENDOR_DEFINED != 0) };
        const { assert!(CKM_VHSM_SPLIT_AES & CKM_VENDOR_DEFINED != 0) };
        assert_eq!(split_aes_overhead(2), 371);
        assert_eq!(
            parse_cipher_mechanism(CKM_VHSM_SPLIT_AES, b"aad"),
            Ok(b"aad".to_vec())
        );
        assert_eq!(
            parse_cipher_mechanism(CKM_VHSM_SPLIT_AES, &vec![0; MAX_AAD_LEN + 1]),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            parse_cipher_mechanism(CKM_AES_GCM, &[]),
            Err(CKR_MECHANISM_INVALID)
        );
        assert_eq!(
            parse_secret_keygen_mechanism(CKM_VHSM_SPLIT_AES_KEY_GEN, &[1]),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            parse_secret_keygen_mechanism(CKM_AES_KEY_GEN, &[]),
            Err(CKR_MECHANISM_INVALID)
        );
    }

    #[test]
    fn key_compatibility() {
        assert!(SignMechanism::Eddsa.accepts(Curve::Ed25519));
        assert!(!SignMechanism::Eddsa.accepts(Curve::P256));
        assert!(SignMechanism::Ecdsa.accepts(Curve::Secp256k1));
        assert!(!SignMechanism::EcdsaSha256.accepts(Curve::Ed25519));
    }
}
