//! `C_Login` and `C_Logout`. The PIN is checked by the coordinator, which also counts failures and locks the PIN;
//! the login is per application (every session), as PKCS#11 says.

use cryptoki_sys::*;
use vhsm_core::PinUser;

use crate::state::with_module;
use crate::CkResult;

/// `C_Login`.
pub fn login(session: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8]) -> CkResult<()> {
    let (bridge, user) = with_module(|m| {
        m.session(session)?;
        let user = match user_type {
            CKU_USER => PinUser::User,
            CKU_SO => PinUser::SecurityOfficer,
            // No key needs re-authentication (CKA_ALWAYS_AUTHENTICATE is always false).
            CKU_CONTEXT_SPECIFIC => return Err(CKR_OPERATION_NOT_INITIALIZED),
            _ => return Err(CKR_USER_TYPE_INVALID),
        };
        match m.logged_in() {
            Some(u) if u == user => return Err(CKR_USER_ALREADY_LOGGED_IN),
            Some(_) => return Err(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
            None => {}
        }
        if user == PinUser::SecurityOfficer && m.sessions.values().any(|s| !s.rw) {
            return Err(CKR_SESSION_READ_ONLY_EXISTS);
        }
        Ok((m.bridge()?, user))
    })?;
    bridge.login(user, pin)?;
    tracing::debug!(?user, "logged in");
    Ok(())
}

/// `C_Logout`.
pub fn logout(session: CK_SESSION_HANDLE) -> CkResult<()> {
    let bridge = with_module(|m| {
        m.session(session)?;
        if m.logged_in().is_none() {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        // Operations with private keys end with the login.
        for s in m.sessions.values_mut() {
            s.sign = None;
            s.find = None;
        }
        m.bridge()
    })?;
    bridge.logout();
    tracing::debug!("logged out");
    Ok(())
}
