//! Encryption and decryption with split-AES keys (`CKM_VHSM_SPLIT_AES`); see `crate::cipher`.

use cryptoki_sys::*;

use super::crypto::init_operation;
use super::{entry, input, output_capacity, rv, write, write_output};
use crate::cipher::{self, Direction};
use crate::state::ensure_initialized;

/// `C_EncryptInit` / `C_DecryptInit`.
///
/// # Safety
/// As [`init_operation`].
unsafe fn cipher_init(
    session: CK_SESSION_HANDLE,
    direction: Direction,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let flag = match direction {
        Direction::Encrypt => CKF_ENCRYPT,
        Direction::Decrypt => CKF_DECRYPT,
    };
    // SAFETY: the caller's contract.
    unsafe {
        init_operation(session, mechanism, flag, |m, p| {
            cipher::init(session, direction, m, p, key)
        })
    }
}

/// `C_Encrypt` / `C_Decrypt` (`data` non-NULL or empty) and `C_EncryptFinal` / `C_DecryptFinal` (`single`
/// false), with the length-query convention.
///
/// # Safety
/// `data` holds `data_len` bytes; `out_len` is valid for reads and writes; a non-NULL `out` holds `*out_len` bytes.
unsafe fn cipher_finish(
    session: CK_SESSION_HANDLE,
    direction: Direction,
    single: Option<(*mut CK_BYTE, CK_ULONG)>,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    if let Err(e) = ensure_initialized() {
        return e;
    }
    // SAFETY: the caller's contract for every pointer.
    unsafe {
        let capacity = match output_capacity(out, out_len) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let data = match single {
            Some((data, data_len)) => match input(data, data_len) {
                Ok(d) => Some(d),
                Err(e) => return e,
            },
            None => None,
        };
        match cipher::finish(session, direction, data, capacity) {
            Ok(output) => write_output(output, out, out_len),
            Err(e) => e,
        }
    }
}

/// `C_EncryptUpdate` / `C_DecryptUpdate`: the part is buffered and the output is always empty. A length query
/// (NULL output) only reports 0 and does not consume the part.
///
/// # Safety
/// `part` holds `part_len` bytes; `out_len` is valid for reads and writes.
unsafe fn cipher_update(
    session: CK_SESSION_HANDLE,
    direction: Direction,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    if let Err(e) = ensure_initialized() {
        return e;
    }
    // SAFETY: the caller's contract for every pointer.
    unsafe {
        let capacity = match output_capacity(out, out_len) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let part = match input(part, part_len) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if capacity.is_some() {
            if let Err(e) = cipher::update(session, direction, part) {
                return e;
            }
        }
        rv(write(out_len, 0))
    }
}

/// `C_EncryptInit`: `CKM_VHSM_SPLIT_AES` with a split-AES key; the parameter is the associated data.
///
/// # Safety
/// `mechanism` is NULL or points to a `CK_MECHANISM` whose parameter holds `ulParameterLen` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_EncryptInit", || {
        // SAFETY: the caller's contract.
        unsafe { cipher_init(session, Direction::Encrypt, mechanism, key) }
    })
}

/// `C_Encrypt`: single-part encryption by the cluster, with the length-query convention.
///
/// # Safety
/// `data` holds `data_len` bytes; `out_len` is valid for reads and writes; a non-NULL `out` holds `*out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_Encrypt(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_Encrypt", || {
        // SAFETY: the caller's contract.
        unsafe {
            cipher_finish(
                session,
                Direction::Encrypt,
                Some((data, data_len)),
                out,
                out_len,
            )
        }
    })
}

/// `C_EncryptUpdate`: buffers the part (no output until `C_EncryptFinal`).
///
/// # Safety
/// `part` holds `part_len` bytes; `out_len` is valid for reads and writes.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_EncryptUpdate", || {
        // SAFETY: the caller's contract.
        unsafe { cipher_update(session, Direction::Encrypt, part, part_len, out, out_len) }
    })
}

/// `C_EncryptFinal`: the whole ciphertext, with the length-query convention.
///
/// # Safety
/// `out_len` is valid for reads and writes; a non-NULL `out` holds `*out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptFinal(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_EncryptFinal", || {
        // SAFETY: the caller's contract.
        unsafe { cipher_finish(session, Direction::Encrypt, None, out, out_len) }
    })
}

/// `C_DecryptInit`: `CKM_VHSM_SPLIT_AES` with a split-AES key; the parameter is the associated data.
///
/// # Safety
/// As `C_EncryptInit`.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_DecryptInit", || {
        // SAFETY: the caller's contract.
        unsafe { cipher_init(session, Direction::Decrypt, mechanism, key) }
    })
}

/// `C_Decrypt`: single-part decryption by the cluster, with the length-query convention.
///
/// # Safety
/// As `C_Encrypt`.
#[no_mangle]
pub unsafe extern "C" fn C_Decrypt(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_Decrypt", || {
        // SAFETY: the caller's contract.
        unsafe {
            cipher_finish(
                session,
                Direction::Decrypt,
                Some((data, data_len)),
                out,
                out_len,
            )
        }
    })
}

/// `C_DecryptUpdate`: buffers the part (no output until `C_DecryptFinal`).
///
/// # Safety
/// As `C_EncryptUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_DecryptUpdate", || {
        // SAFETY: the caller's contract.
        unsafe { cipher_update(session, Direction::Decrypt, part, part_len, out, out_len) }
    })
}

/// `C_DecryptFinal`: the whole plaintext, with the length-query convention.
///
/// # Safety
/// As `C_EncryptFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptFinal(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_DecryptFinal", || {
        // SAFETY: the caller's contract.
        unsafe { cipher_finish(session, Direction::Decrypt, None, out, out_len) }
    })
}
