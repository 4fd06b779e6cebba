//! The functions the module does not offer: each returns `CKR_CRYPTOKI_NOT_INITIALIZED` before `C_Initialize`,
//! then its documented code (almost always `CKR_FUNCTION_NOT_SUPPORTED`). They never dereference their arguments,
//! so they are safe functions.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::entry;
use crate::state::ensure_initialized;

macro_rules! unsupported {
    ($( $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) => $rv:expr, $why:literal; )*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`: returns `", stringify!($rv), "` — ", $why)]
            #[no_mangle]
            pub extern "C" fn $name($($arg: $ty),*) -> CK_RV {
                entry(stringify!($name), || match ensure_initialized() {
                    Ok(()) => $rv,
                    Err(e) => e,
                })
            }
        )*
    };
}

unsupported! {
    C_InitToken(_slot: CK_SLOT_ID, _pin: *mut CK_UTF8CHAR, _len: CK_ULONG, _label: *mut CK_UTF8CHAR)
        => CKR_FUNCTION_NOT_SUPPORTED, "the cluster is initialised by `vhsm init`, not through PKCS#11.";
    C_InitPIN(_s: CK_SESSION_HANDLE, _pin: *mut CK_UTF8CHAR, _len: CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "the coordinator's client API has no PIN management yet.";
    C_SetPIN(_s: CK_SESSION_HANDLE, _old: *mut CK_UTF8CHAR, _old_len: CK_ULONG, _new: *mut CK_UTF8CHAR, _new_len: CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "the coordinator's client API has no PIN management yet.";
    C_GetOperationState(_s: CK_SESSION_HANDLE, _state: *mut CK_BYTE, _len: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "operation state is not exportable.";
    C_SetOperationState(_s: CK_SESSION_HANDLE, _state: *mut CK_BYTE, _len: CK_ULONG, _e: CK_OBJECT_HANDLE, _a: CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "operation state is not exportable.";
    C_DigestKey(_s: CK_SESSION_HANDLE, _k: CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "a key's value exists nowhere, so it cannot be digested.";
    C_SignRecoverInit(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "no mechanism with message recovery (RSA only).";
    C_SignRecover(_s: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "no mechanism with message recovery.";
    C_VerifyRecoverInit(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "no mechanism with message recovery.";
    C_VerifyRecover(_s: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "no mechanism with message recovery.";
    C_DigestEncryptUpdate(_s: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "dual-function operations are not offered.";
    C_DecryptDigestUpdate(_s: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "dual-function operations are not offered.";
    C_SignEncryptUpdate(_s: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "dual-function operations are not offered.";
    C_DecryptVerifyUpdate(_s: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "dual-function operations are not offered.";
    C_WrapKey(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _w: CK_OBJECT_HANDLE, _k: CK_OBJECT_HANDLE, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "keys never leave the cluster, not even wrapped.";
    C_UnwrapKey(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _u: CK_OBJECT_HANDLE, _w: *mut CK_BYTE, _wl: CK_ULONG, _t: *mut CK_ATTRIBUTE, _c: CK_ULONG, _k: *mut CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "the cluster only holds keys it generated.";
    C_DeriveKey(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _b: CK_OBJECT_HANDLE, _t: *mut CK_ATTRIBUTE, _c: CK_ULONG, _k: *mut CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "no threshold ECDH yet.";
    C_SeedRandom(_s: CK_SESSION_HANDLE, _seed: *mut CK_BYTE, _len: CK_ULONG)
        => CKR_RANDOM_SEED_NOT_SUPPORTED, "the operating system's RNG cannot be seeded.";
    C_GetFunctionStatus(_s: CK_SESSION_HANDLE)
        => CKR_FUNCTION_NOT_PARALLEL, "legacy function (PKCS#11 says so for every module).";
    C_CancelFunction(_s: CK_SESSION_HANDLE)
        => CKR_FUNCTION_NOT_PARALLEL, "legacy function (PKCS#11 says so for every module).";
    C_WaitForSlotEvent(_flags: CK_FLAGS, _slot: *mut CK_SLOT_ID, _reserved: *mut c_void)
        => CKR_FUNCTION_NOT_SUPPORTED, "the one slot's token never changes.";
    C_MessageEncryptInit(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based encryption.";
    C_EncryptMessage(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _a: *mut CK_BYTE, _al: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based encryption.";
    C_EncryptMessageBegin(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _a: *mut CK_BYTE, _al: CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based encryption.";
    C_EncryptMessageNext(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG, _f: CK_FLAGS)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based encryption.";
    C_MessageEncryptFinal(_s: CK_SESSION_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based encryption.";
    C_MessageDecryptInit(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based decryption.";
    C_DecryptMessage(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _a: *mut CK_BYTE, _al: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based decryption.";
    C_DecryptMessageBegin(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _a: *mut CK_BYTE, _al: CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based decryption.";
    C_DecryptMessageNext(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG, _f: CK_FLAGS)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based decryption.";
    C_MessageDecryptFinal(_s: CK_SESSION_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "no message-based decryption.";
    C_MessageSignInit(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based signing is not offered (use C_Sign).";
    C_SignMessage(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based signing is not offered.";
    C_SignMessageBegin(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based signing is not offered.";
    C_SignMessageNext(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based signing is not offered.";
    C_MessageSignFinal(_s: CK_SESSION_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based signing is not offered.";
    C_MessageVerifyInit(_s: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based verification is not offered (use C_Verify).";
    C_VerifyMessage(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _sig: *mut CK_BYTE, _sl: CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based verification is not offered.";
    C_VerifyMessageBegin(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based verification is not offered.";
    C_VerifyMessageNext(_s: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _sig: *mut CK_BYTE, _sl: CK_ULONG)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based verification is not offered.";
    C_MessageVerifyFinal(_s: CK_SESSION_HANDLE)
        => CKR_FUNCTION_NOT_SUPPORTED, "message-based verification is not offered.";
}
