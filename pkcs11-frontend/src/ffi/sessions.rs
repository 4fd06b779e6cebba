//! Session and login functions.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{entry, input, rv, write};
use crate::state::ensure_initialized;
use crate::{login, session};

/// `C_OpenSession` (notification callbacks are accepted and never called).
///
/// # Safety
/// `session` is NULL or valid for writing a `CK_SESSION_HANDLE`.
#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    entry("C_OpenSession", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if session.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL; the caller's contract for the rest.
        rv(session::open(slot, flags).and_then(|h| unsafe { write(session, h) }))
    })
}

/// `C_CloseSession` (closing the last session logs the application out).
///
/// # Safety
/// No pointers.
#[no_mangle]
pub unsafe extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_CloseSession", || rv(session::close(session)))
}

/// `C_CloseAllSessions`.
///
/// # Safety
/// No pointers.
#[no_mangle]
pub unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    entry("C_CloseAllSessions", || rv(session::close_all(slot)))
}

/// `C_GetSessionInfo`.
///
/// # Safety
/// `info` is NULL or valid for writing a `CK_SESSION_INFO`.
#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    session: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    entry("C_GetSessionInfo", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if info.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        rv(session::info(session).and_then(|(slot_id, state, flags)| {
            // SAFETY: non-NULL; the caller's contract for the rest.
            unsafe {
                write(
                    info,
                    CK_SESSION_INFO {
                        slotID: slot_id,
                        state,
                        flags,
                        ulDeviceError: 0,
                    },
                )
            }
        }))
    })
}

/// `C_Login`: the coordinator checks the PIN (`CKR_PIN_INCORRECT`, `CKR_PIN_LOCKED`). There is no protected
/// authentication path: a NULL PIN is `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// A non-NULL `pin` holds `pin_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    entry("C_Login", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if pin.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL; `pin_len` bytes by the caller's contract.
        match unsafe { input(pin, pin_len) } {
            Ok(pin) => rv(login::login(session, user_type, pin)),
            Err(e) => e,
        }
    })
}

/// `C_LoginUser` (3.0): as `C_Login`; the token has no user names, so a non-empty one is `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// A non-NULL `pin` holds `pin_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_LoginUser(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    _username: *mut CK_UTF8CHAR,
    username_len: CK_ULONG,
) -> CK_RV {
    if username_len != 0 {
        return entry("C_LoginUser", || match ensure_initialized() {
            Ok(()) => CKR_ARGUMENTS_BAD,
            Err(e) => e,
        });
    }
    // SAFETY: same contract as C_Login.
    unsafe { C_Login(session, user_type, pin, pin_len) }
}

/// `C_Logout`.
///
/// # Safety
/// No pointers.
#[no_mangle]
pub unsafe extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_Logout", || rv(login::logout(session)))
}

/// `C_SessionCancel` (3.0): ends the session's active operations named by `flags`.
///
/// # Safety
/// No pointers.
#[no_mangle]
pub unsafe extern "C" fn C_SessionCancel(session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    entry("C_SessionCancel", || rv(session::cancel(session, flags)))
}
