//! The function lists: `C_GetFunctionList` (PKCS#11 2.40 `CK_FUNCTION_LIST`), and the 3.0 interfaces
//! (`C_GetInterfaceList`, `C_GetInterface`): "PKCS 11" version 3.0 (`CK_FUNCTION_LIST_3_0`) and "PKCS 11" version
//! 2.40. All three may be called before `C_Initialize`.

use std::ffi::{c_void, CStr};

use cryptoki_sys::*;

use super::*;

macro_rules! function_list {
    ($ty:ident, $major:expr, $minor:expr, [$($extra:ident),*]) => {
        $ty {
            version: CK_VERSION { major: $major, minor: $minor },
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

/// The PKCS#11 2.40 function list.
pub static FUNCTION_LIST: CK_FUNCTION_LIST = function_list!(CK_FUNCTION_LIST, 2, 40, []);

/// The PKCS#11 3.0 function list.
pub static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = function_list!(
    CK_FUNCTION_LIST_3_0,
    3,
    0,
    [
        C_GetInterfaceList,
        C_GetInterface,
        C_LoginUser,
        C_SessionCancel,
        C_MessageEncryptInit,
        C_EncryptMessage,
        C_EncryptMessageBegin,
        C_EncryptMessageNext,
        C_MessageEncryptFinal,
        C_MessageDecryptInit,
        C_DecryptMessage,
        C_DecryptMessageBegin,
        C_DecryptMessageNext,
        C_MessageDecryptFinal,
        C_MessageSignInit,
        C_SignMessage,
        C_SignMessageBegin,
        C_SignMessageNext,
        C_MessageSignFinal,
        C_MessageVerifyInit,
        C_VerifyMessage,
        C_VerifyMessageBegin,
        C_VerifyMessageNext,
        C_MessageVerifyFinal
    ]
);

const INTERFACE_NAME: &CStr = c"PKCS 11";

/// The interfaces, in order of preference.
struct Interfaces([CK_INTERFACE; 2]);

// SAFETY: the table is immutable and its pointers point to immutable statics (the name and the function lists);
// applications only read through them.
unsafe impl Sync for Interfaces {}

static INTERFACES: Interfaces = Interfaces([
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut c_void,
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut c_void,
        flags: 0,
    },
]);

fn interface_version(interface: &CK_INTERFACE) -> CK_VERSION {
    if std::ptr::eq(
        interface.pFunctionList as *const CK_FUNCTION_LIST_3_0,
        &FUNCTION_LIST_3_0,
    ) {
        FUNCTION_LIST_3_0.version
    } else {
        FUNCTION_LIST.version
    }
}

/// `C_GetFunctionList`: the 2.40 function list.
///
/// # Safety
/// `list` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    entry("C_GetFunctionList", || {
        // SAFETY: `write` checks for NULL; the caller's contract for the rest. The list is immutable; the pointer
        // is `*mut` only because the C prototype says so.
        rv(unsafe {
            write(
                list,
                &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST,
            )
        })
    })
}

/// `C_GetInterfaceList`: "PKCS 11" 3.0 and "PKCS 11" 2.40, with the length-query convention.
///
/// # Safety
/// `count` is NULL or valid for reads and writes; a non-NULL `list` holds `*count` interfaces.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    list: *mut CK_INTERFACE,
    count: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: `write_list` checks `count` for NULL; the caller's contract for the rest.
    entry("C_GetInterfaceList", || unsafe {
        write_list(&INTERFACES.0, list, count)
    })
}

/// `C_GetInterface`: by name ("PKCS 11", or NULL for the default, 3.0), version (NULL: any) and flags.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `version` NULL or a `CK_VERSION`; `interface` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    entry("C_GetInterface", || {
        if interface.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        if !name.is_null() {
            // SAFETY: non-NULL, NUL-terminated by the caller's contract.
            let name = unsafe { CStr::from_ptr(name as *const std::ffi::c_char) };
            if name != INTERFACE_NAME {
                return CKR_ARGUMENTS_BAD;
            }
        }
        // SAFETY: non-NULL, valid for reads by the caller's contract.
        let wanted = (!version.is_null()).then(|| unsafe { version.read() });
        let found = INTERFACES.0.iter().find(|i| {
            let v = interface_version(i);
            wanted.is_none_or(|w| w.major == v.major && w.minor == v.minor)
                && i.flags & flags == flags
        });
        match found {
            Some(i) => {
                // SAFETY: non-NULL; the caller's contract. The table is immutable (see `Interfaces`).
                rv(unsafe { write(interface, i as *const CK_INTERFACE as *mut CK_INTERFACE) })
            }
            None => CKR_ARGUMENTS_BAD,
        }
    })
}
