//! Signing, verification, digests, key-pair generation and random numbers.

use cryptoki_sys::*;

use super::{
    entry, input, output_capacity, output_slice, read_mechanism, read_template, rv, write,
    write_output,
};
use crate::state::ensure_initialized;
use crate::{digest, keygen, random, session, signing, verification};

/// The common shape of `C_SignInit`, `C_VerifyInit`, `C_DigestInit`: a NULL mechanism ends the active operation
/// of that kind (PKCS#11 3.0).
///
/// # Safety
/// As [`read_mechanism`].
pub(super) unsafe fn init_operation(
    session: CK_SESSION_HANDLE,
    mechanism: *const CK_MECHANISM,
    cancel_flag: CK_FLAGS,
    start: impl FnOnce(CK_MECHANISM_TYPE, &[u8]) -> crate::CkResult<()>,
) -> CK_RV {
    if let Err(e) = ensure_initialized() {
        return e;
    }
    // SAFETY: the caller's contract.
    match unsafe { read_mechanism(mechanism) } {
        Ok(Some((mechanism, param))) => rv(start(mechanism, &param)),
        Ok(None) => rv(session::cancel(session, cancel_flag)),
        Err(e) => e,
    }
}

/// `C_SignInit`: `CKM_ECDSA`, `CKM_ECDSA_SHA256/384/512` (P-256, secp256k1), `CKM_EDDSA` (Ed25519).
///
/// # Safety
/// `mechanism` is NULL or points to a `CK_MECHANISM` whose parameter holds `ulParameterLen` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_SignInit", || {
        // SAFETY: the caller's contract.
        unsafe {
            init_operation(session, mechanism, CKF_SIGN, |m, p| {
                signing::sign_init(session, m, p, key)
            })
        }
    })
}

/// `C_Sign`: single-part signature by the cluster (64 bytes), with the length-query convention.
///
/// # Safety
/// `data` holds `data_len` bytes; `signature_len` is valid for reads and writes; a non-NULL `signature` holds
/// `*signature_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_Sign", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract for every pointer.
        unsafe {
            let (data, capacity) = match (
                input(data, data_len),
                output_capacity(signature, signature_len),
            ) {
                (Ok(d), Ok(c)) => (d, c),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            match signing::sign(session, Some(data), capacity) {
                Ok(output) => write_output(output, signature, signature_len),
                Err(e) => e,
            }
        }
    })
}

/// `C_SignUpdate`.
///
/// # Safety
/// `part` holds `part_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    entry("C_SignUpdate", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract.
        rv(unsafe { input(part, part_len) }.and_then(|p| signing::sign_update(session, p)))
    })
}

/// `C_SignFinal`, with the length-query convention.
///
/// # Safety
/// As for `C_Sign`'s output.
#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_SignFinal", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract.
        unsafe {
            match output_capacity(signature, signature_len)
                .and_then(|c| signing::sign(session, None, c))
            {
                Ok(output) => write_output(output, signature, signature_len),
                Err(e) => e,
            }
        }
    })
}

/// `C_VerifyInit` (verification runs in the module with the public key).
///
/// # Safety
/// As `C_SignInit`.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_VerifyInit", || {
        // SAFETY: the caller's contract.
        unsafe {
            init_operation(session, mechanism, CKF_VERIFY, |m, p| {
                verification::verify_init(session, m, p, key)
            })
        }
    })
}

/// `C_Verify`.
///
/// # Safety
/// `data` holds `data_len` bytes, `signature` `signature_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_Verify(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) -> CK_RV {
    entry("C_Verify", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract.
        let (data, signature) =
            match unsafe { (input(data, data_len), input(signature, signature_len)) } {
                (Ok(d), Ok(s)) => (d, s),
                (Err(e), _) | (_, Err(e)) => return e,
            };
        rv(verification::verify(session, Some(data), signature))
    })
}

/// `C_VerifyUpdate`.
///
/// # Safety
/// `part` holds `part_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyUpdate", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract.
        rv(unsafe { input(part, part_len) }.and_then(|p| verification::verify_update(session, p)))
    })
}

/// `C_VerifyFinal`.
///
/// # Safety
/// `signature` holds `signature_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyFinal(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyFinal", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract.
        rv(unsafe { input(signature, signature_len) }
            .and_then(|s| verification::verify(session, None, s)))
    })
}

/// `C_DigestInit`: `CKM_SHA256`, `CKM_SHA384`, `CKM_SHA512`.
///
/// # Safety
/// As `C_SignInit`.
#[no_mangle]
pub unsafe extern "C" fn C_DigestInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
) -> CK_RV {
    entry("C_DigestInit", || {
        // SAFETY: the caller's contract.
        unsafe {
            init_operation(session, mechanism, CKF_DIGEST, |m, p| {
                digest::digest_init(session, m, p)
            })
        }
    })
}

/// `C_Digest`, with the length-query convention.
///
/// # Safety
/// As `C_Sign`.
#[no_mangle]
pub unsafe extern "C" fn C_Digest(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    digest_out: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_Digest", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract for every pointer.
        unsafe {
            let (data, capacity) = match (
                input(data, data_len),
                output_capacity(digest_out, digest_len),
            ) {
                (Ok(d), Ok(c)) => (d, c),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            match digest::digest(session, Some(data), capacity) {
                Ok(output) => write_output(output, digest_out, digest_len),
                Err(e) => e,
            }
        }
    })
}

/// `C_DigestUpdate`.
///
/// # Safety
/// `part` holds `part_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_DigestUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    entry("C_DigestUpdate", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract.
        rv(unsafe { input(part, part_len) }.and_then(|p| digest::digest_update(session, p)))
    })
}

/// `C_DigestFinal`, with the length-query convention.
///
/// # Safety
/// As `C_Sign`'s output.
#[no_mangle]
pub unsafe extern "C" fn C_DigestFinal(
    session: CK_SESSION_HANDLE,
    digest_out: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_DigestFinal", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract.
        unsafe {
            match output_capacity(digest_out, digest_len)
                .and_then(|c| digest::digest(session, None, c))
            {
                Ok(output) => write_output(output, digest_out, digest_len),
                Err(e) => e,
            }
        }
    })
}

/// `C_GenerateKeyPair`: `CKM_EC_KEY_PAIR_GEN` (P-256, secp256k1) and `CKM_EC_EDWARDS_KEY_PAIR_GEN` (Ed25519), by
/// distributed key generation on the cluster.
///
/// # Safety
/// Templates hold their counts of attributes; the handle pointers are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKeyPair(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public_template: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private_template: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public_key: *mut CK_OBJECT_HANDLE,
    private_key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_GenerateKeyPair", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if public_key.is_null() || private_key.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: the caller's contract for every pointer; the handle pointers are non-NULL.
        unsafe {
            let (mechanism, param) = match read_mechanism(mechanism) {
                Ok(Some(m)) => m,
                Ok(None) => return CKR_ARGUMENTS_BAD,
                Err(e) => return e,
            };
            let templates = (
                read_template(public_template, public_count),
                read_template(private_template, private_count),
            );
            let (public, private) = match templates {
                (Ok(p), Ok(q)) => (p, q),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            match keygen::generate_key_pair(session, mechanism, &param, &public, &private) {
                Ok((public_handle, private_handle)) => rv(write(public_key, public_handle)
                    .and_then(|()| write(private_key, private_handle))),
                Err(e) => e,
            }
        }
    })
}

/// `C_GenerateRandom`: from the operating system's RNG.
///
/// # Safety
/// `out` holds `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    entry("C_GenerateRandom", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract.
        rv(unsafe { output_slice(out, len) }.and_then(|o| random::generate_random(session, o)))
    })
}

/// `C_GenerateKey`: `CKM_VHSM_SPLIT_AES_KEY_GEN`, a split-AES key by distributed key generation on the cluster.
///
/// # Safety
/// The template holds `count` attributes; `key` is valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_GenerateKey", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if key.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: the caller's contract for every pointer; `key` is non-NULL.
        unsafe {
            let (mechanism, param) = match read_mechanism(mechanism) {
                Ok(Some(m)) => m,
                Ok(None) => return CKR_ARGUMENTS_BAD,
                Err(e) => return e,
            };
            let template = match read_template(template, count) {
                Ok(t) => t,
                Err(e) => return e,
            };
            match keygen::generate_key(session, mechanism, &param, &template) {
                Ok(handle) => rv(write(key, handle)),
                Err(e) => e,
            }
        }
    })
}
