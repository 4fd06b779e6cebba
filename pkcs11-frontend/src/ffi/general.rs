//! General-purpose, slot and token functions.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{entry, rv, write, write_list};
use crate::state::{self, ensure_initialized, InitOptions};
use crate::token;

/// `C_Initialize`: `CKR_CRYPTOKI_ALREADY_INITIALIZED` if it is; in a forked child, starts afresh.
///
/// # Safety
/// `init_args` is NULL or points to a `CK_C_INITIALIZE_ARGS`.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(init_args: *mut c_void) -> CK_RV {
    entry("C_Initialize", || {
        let mut options = InitOptions::default();
        if !init_args.is_null() {
            // SAFETY: non-NULL; the caller passes a CK_C_INITIALIZE_ARGS (PKCS#11 contract).
            let args = unsafe { (init_args as *const CK_C_INITIALIZE_ARGS).read() };
            if !args.pReserved.is_null() {
                return CKR_ARGUMENTS_BAD;
            }
            let given = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            if !(given.iter().all(|g| *g) || given.iter().all(|g| !*g)) {
                return CKR_ARGUMENTS_BAD;
            }
            // With or without CKF_OS_LOCKING_OK, the module uses the operating system's locks.
            options.no_threads = args.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS != 0;
        }
        rv(state::initialize(options))
    })
}

/// `C_Finalize`.
///
/// # Safety
/// Any pointer is accepted (it must be NULL).
#[no_mangle]
pub unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    entry("C_Finalize", || {
        if !reserved.is_null() {
            return match ensure_initialized() {
                Ok(()) => CKR_ARGUMENTS_BAD,
                Err(e) => e,
            };
        }
        rv(state::finalize())
    })
}

/// `C_GetInfo`.
///
/// # Safety
/// `info` is NULL or valid for writing a `CK_INFO`.
#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    entry("C_GetInfo", || {
        // SAFETY: checked for NULL by `write`; the caller's contract for the rest.
        rv(token::info().and_then(|i| unsafe { write(info, i) }))
    })
}

/// `C_GetSlotList`: slot 0; with `token_present`, only if the configuration could be loaded.
///
/// # Safety
/// `count` is NULL or valid for reads and writes; a non-NULL `list` holds `*count` slot ids.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetSlotList", || {
        match token::slot_list(token_present != CK_FALSE) {
            // SAFETY: `write_list` checks `count` for NULL; the caller's contract for the rest.
            Ok(slots) => unsafe { write_list(&slots, list, count) },
            Err(e) => e,
        }
    })
}

/// `C_GetSlotInfo`.
///
/// # Safety
/// `info` is NULL or valid for writing a `CK_SLOT_INFO`.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    entry("C_GetSlotInfo", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if info.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL, the caller's contract for the rest.
        rv(token::slot_info(slot).and_then(|i| unsafe { write(info, i) }))
    })
}

/// `C_GetTokenInfo` (asks the coordinator).
///
/// # Safety
/// `info` is NULL or valid for writing a `CK_TOKEN_INFO`.
#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    entry("C_GetTokenInfo", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if info.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL, the caller's contract for the rest.
        rv(token::token_info(slot).and_then(|i| unsafe { write(info, i) }))
    })
}

/// `C_GetMechanismList`.
///
/// # Safety
/// `count` is NULL or valid for reads and writes; a non-NULL `list` holds `*count` mechanism types.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetMechanismList", || match token::mechanism_list(slot) {
        // SAFETY: `write_list` checks `count` for NULL; the caller's contract for the rest.
        Ok(mechanisms) => unsafe { write_list(&mechanisms, list, count) },
        Err(e) => e,
    })
}

/// `C_GetMechanismInfo`.
///
/// # Safety
/// `info` is NULL or valid for writing a `CK_MECHANISM_INFO`.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    entry("C_GetMechanismInfo", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if info.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL, the caller's contract for the rest.
        rv(token::mechanism_info(slot, mechanism).and_then(|i| unsafe { write(info, i) }))
    })
}
