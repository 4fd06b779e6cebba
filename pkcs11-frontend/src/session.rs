//! Sessions: `C_OpenSession`, `C_CloseSession`, `C_CloseAllSessions`, `C_GetSessionInfo`, `C_SessionCancel`.

use std::collections::VecDeque;

use cryptoki_sys::*;
use vhsm_core::PinUser;

use crate::cipher::CipherOp;
use crate::digest::DigestOp;
use crate::signing::SignOp;
use crate::state::{destroy_session_keys, with_module};
use crate::token::SLOT_ID;
use crate::verification::VerifyOp;
use crate::CkResult;

/// One session and its active operations (one of each kind at a time).
#[derive(Debug)]
pub struct Session {
    /// Whether it is a read/write session.
    pub rw: bool,
    /// The remaining results of an active `C_FindObjects` search.
    pub find: Option<VecDeque<CK_OBJECT_HANDLE>>,
    /// An active signature.
    pub sign: Option<SignOp>,
    /// An active verification.
    pub verify: Option<VerifyOp>,
    /// An active digest.
    pub digest: Option<DigestOp>,
    /// An active encryption.
    pub encrypt: Option<CipherOp>,
    /// An active decryption.
    pub decrypt: Option<CipherOp>,
    /// Token keys this session generated while read-only: it may destroy them again (see `keygen`).
    pub generated_read_only: Vec<vhsm_core::KeyId>,
}

/// `C_OpenSession`.
pub fn open(slot: CK_SLOT_ID, flags: CK_FLAGS) -> CkResult<CK_SESSION_HANDLE> {
    with_module(|m| {
        if slot != SLOT_ID {
            return Err(CKR_SLOT_ID_INVALID);
        }
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        if !m.token_present() {
            return Err(CKR_TOKEN_NOT_PRESENT);
        }
        let rw = flags & CKF_RW_SESSION != 0;
        if !rw && m.logged_in() == Some(PinUser::SecurityOfficer) {
            return Err(CKR_SESSION_READ_WRITE_SO_EXISTS);
        }
        let handle = m.next_session_handle();
        m.sessions.insert(
            handle,
            Session {
                rw,
                find: None,
                sign: None,
                verify: None,
                digest: None,
                encrypt: None,
                decrypt: None,
                generated_read_only: Vec::new(),
            },
        );
        tracing::debug!(handle, rw, "session opened");
        Ok(handle)
    })
}

/// After the last session closed, the application is logged out (PKCS#11 §5.6).
fn close_where(which: Option<CK_SESSION_HANDLE>) -> CkResult<()> {
    let (bridge, ephemeral, last) = with_module(|m| {
        match which {
            Some(h) => {
                m.sessions.remove(&h).ok_or(CKR_SESSION_HANDLE_INVALID)?;
            }
            None => m.sessions.clear(),
        }
        let ephemeral = m.objects.remove_session_objects(which);
        Ok((m.bridge().ok(), ephemeral, m.sessions.is_empty()))
    })?;
    if let Some(bridge) = bridge {
        destroy_session_keys(&bridge, ephemeral);
        if last {
            bridge.reset();
        }
    }
    Ok(())
}

/// `C_CloseSession`.
pub fn close(handle: CK_SESSION_HANDLE) -> CkResult<()> {
    close_where(Some(handle))
}

/// `C_CloseAllSessions`.
pub fn close_all(slot: CK_SLOT_ID) -> CkResult<()> {
    if slot != SLOT_ID {
        crate::state::ensure_initialized()?;
        return Err(CKR_SLOT_ID_INVALID);
    }
    close_where(None)
}

/// `C_GetSessionInfo`: (slot, state, flags).
pub fn info(handle: CK_SESSION_HANDLE) -> CkResult<(CK_SLOT_ID, CK_STATE, CK_FLAGS)> {
    with_module(|m| {
        let user = m.logged_in();
        let session = m.session(handle)?;
        let state = match (user, session.rw) {
            (None, false) => CKS_RO_PUBLIC_SESSION,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (Some(PinUser::User), false) => CKS_RO_USER_FUNCTIONS,
            (Some(PinUser::User), true) => CKS_RW_USER_FUNCTIONS,
            (Some(PinUser::SecurityOfficer), _) => CKS_RW_SO_FUNCTIONS,
        };
        let flags = CKF_SERIAL_SESSION | if session.rw { CKF_RW_SESSION } else { 0 };
        Ok((SLOT_ID, state, flags))
    })
}

/// `C_SessionCancel`: ends the active operations named by `flags`.
pub fn cancel(handle: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CkResult<()> {
    with_module(|m| {
        let session = m.session(handle)?;
        if flags & CKF_SIGN != 0 {
            session.sign = None;
        }
        if flags & CKF_VERIFY != 0 {
            session.verify = None;
        }
        if flags & CKF_DIGEST != 0 {
            session.digest = None;
        }
        if flags & CKF_ENCRYPT != 0 {
            session.encrypt = None;
        }
        if flags & CKF_DECRYPT != 0 {
            session.decrypt = None;
        }
        if flags & CKF_FIND_OBJECTS != 0 {
            session.find = None;
        }
        Ok(())
    })
}
