//! The module, its slot and its token: `C_GetInfo`, `C_GetSlotList`, `C_GetSlotInfo`, `C_GetTokenInfo`,
//! `C_GetMechanismList`, `C_GetMechanismInfo`.

use cryptoki_sys::*;

use crate::state::with_module;
use crate::CkResult;

/// The one slot.
pub const SLOT_ID: CK_SLOT_ID = 0;

const MANUFACTURER: &str = "vHSM";

/// The module's version (from the crate's).
pub fn library_version() -> CK_VERSION {
    let part = |s: &str| s.parse::<u8>().unwrap_or(0);
    CK_VERSION {
        major: part(env!("CARGO_PKG_VERSION_MAJOR")),
        minor: part(env!("CARGO_PKG_VERSION_MINOR")),
    }
}

/// A blank-padded, not NUL-terminated PKCS#11 text field. Cuts at a character boundary.
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() > N {
            break;
        }
        end = i + c.len_utf8();
    }
    if let (Some(dst), Some(src)) = (out.get_mut(..end), text.as_bytes().get(..end)) {
        dst.copy_from_slice(src);
    }
    out
}

/// `C_GetInfo`.
pub fn info() -> CkResult<CK_INFO> {
    with_module(|_| {
        Ok(CK_INFO {
            cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
            manufacturerID: padded(MANUFACTURER),
            flags: 0,
            libraryDescription: padded("vHSM threshold-MPC cluster"),
            libraryVersion: library_version(),
        })
    })
}

/// `C_GetSlotList`: the slot, unless `token_present` is asked for and there is no usable configuration.
pub fn slot_list(token_present: bool) -> CkResult<Vec<CK_SLOT_ID>> {
    with_module(|m| {
        Ok(if token_present && !m.token_present() {
            vec![]
        } else {
            vec![SLOT_ID]
        })
    })
}

/// `C_GetSlotInfo`. Without a usable configuration the description says what is wrong.
pub fn slot_info(slot: CK_SLOT_ID) -> CkResult<CK_SLOT_INFO> {
    with_module(|m| {
        if slot != SLOT_ID {
            return Err(CKR_SLOT_ID_INVALID);
        }
        let (description, flags) = match (&m.config_problem, m.bridge()) {
            (_, Ok(bridge)) => (
                format!("vHSM cluster at {}", bridge.coordinator()),
                CKF_TOKEN_PRESENT,
            ),
            (Some(problem), Err(_)) => (format!("vHSM: {problem}"), 0),
            (None, Err(_)) => ("vHSM: no configuration".to_string(), 0),
        };
        Ok(CK_SLOT_INFO {
            slotDescription: padded(&description),
            manufacturerID: padded(MANUFACTURER),
            flags,
            hardwareVersion: library_version(),
            firmwareVersion: library_version(),
        })
    })
}

/// `C_GetTokenInfo`: asks the coordinator for the label, serial number and PIN state.
pub fn token_info(slot: CK_SLOT_ID) -> CkResult<CK_TOKEN_INFO> {
    let (bridge, sessions, rw_sessions) = with_module(|m| {
        if slot != SLOT_ID {
            return Err(CKR_SLOT_ID_INVALID);
        }
        let rw = m.sessions.values().filter(|s| s.rw).count();
        Ok((m.bridge()?, m.sessions.len(), rw))
    })?;
    let t = bridge.token_info()?;
    let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
    if t.user_pin_locked {
        flags |= CKF_USER_PIN_LOCKED;
    } else if t.user_pin_failures > 0 {
        flags |= CKF_USER_PIN_COUNT_LOW;
        if t.max_pin_failures > 0 && t.user_pin_failures + 1 >= t.max_pin_failures {
            flags |= CKF_USER_PIN_FINAL_TRY;
        }
    }
    if t.so_pin_locked {
        flags |= CKF_SO_PIN_LOCKED;
    }
    Ok(CK_TOKEN_INFO {
        label: padded(&t.label),
        manufacturerID: padded(MANUFACTURER),
        model: padded("MPC cluster"),
        serialNumber: padded(&t.serial),
        flags,
        ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
        ulSessionCount: sessions as CK_ULONG,
        ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
        ulRwSessionCount: rw_sessions as CK_ULONG,
        ulMaxPinLen: CK_ULONG::from(t.max_pin_len),
        ulMinPinLen: CK_ULONG::from(t.min_pin_len),
        ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
        hardwareVersion: library_version(),
        firmwareVersion: library_version(),
        utcTime: [b' '; 16],
    })
}

/// `C_GetMechanismList`.
pub fn mechanism_list(slot: CK_SLOT_ID) -> CkResult<Vec<CK_MECHANISM_TYPE>> {
    with_module(|_| {
        if slot != SLOT_ID {
            return Err(CKR_SLOT_ID_INVALID);
        }
        Ok(crate::mechanisms::MECHANISMS
            .iter()
            .map(|e| e.mechanism)
            .collect())
    })
}

/// `C_GetMechanismInfo`.
pub fn mechanism_info(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
) -> CkResult<CK_MECHANISM_INFO> {
    with_module(|_| {
        if slot != SLOT_ID {
            return Err(CKR_SLOT_ID_INVALID);
        }
        let e = crate::mechanisms::entry(mechanism)?;
        Ok(CK_MECHANISM_INFO {
            ulMinKeySize: e.min_key_size,
            ulMaxKeySize: e.max_key_size,
            flags: e.flags,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding() {
        assert_eq!(&padded::<4>("ab"), b"ab  ");
        assert_eq!(&padded::<4>("abcdef"), b"abcd");
        // "é" is two bytes: never cut in the middle of a character.
        assert_eq!(&padded::<4>("abcé"), b"abc ");
    }
}
