//! The exported C API called directly, without a cluster: NULL pointers, short buffers, wrong handles, calls
//! before `C_Initialize`, double initialisation. Every call returns a CKR_ code; none panics.
//!
//! The module's state is global, so the tests take turns (`serial`).
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::{Mutex, MutexGuard};

use cryptoki_sys::*;
use vhsm_pkcs11::ffi::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A configuration whose coordinator does not exist (the token is "present"; every request fails fast).
fn dead_coordinator_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.toml");
    std::fs::write(
        &path,
        "coordinator = \"127.0.0.1:9\"\nca_cert = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client.key\"\n",
    )
    .unwrap();
    dir
}

fn set_config(dir: Option<&tempfile::TempDir>) {
    match dir {
        Some(d) => std::env::set_var("VHSM_PKCS11_CONFIG", d.path().join("client.toml")),
        None => std::env::remove_var("VHSM_PKCS11_CONFIG"),
    }
}

fn init() -> CK_RV {
    // SAFETY: NULL arguments are allowed.
    unsafe { C_Initialize(null_mut()) }
}

fn finalize() -> CK_RV {
    // SAFETY: NULL reserved pointer.
    unsafe { C_Finalize(null_mut()) }
}

fn attr<T>(type_: CK_ATTRIBUTE_TYPE, value: &T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: value as *const T as *mut c_void,
        ulValueLen: std::mem::size_of::<T>() as CK_ULONG,
    }
}

fn attr_mut<T>(type_: CK_ATTRIBUTE_TYPE, value: &mut T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: value as *mut T as *mut c_void,
        ulValueLen: std::mem::size_of::<T>() as CK_ULONG,
    }
}

fn attr_bytes(type_: CK_ATTRIBUTE_TYPE, value: &[u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: value.as_ptr() as *mut c_void,
        ulValueLen: value.len() as CK_ULONG,
    }
}

fn mechanism(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

#[test]
fn before_initialize_everything_says_not_initialized() {
    let _g = serial();
    let mut count: CK_ULONG = 0;
    let mut handle: CK_SESSION_HANDLE = 0;
    let mut info = unsafe_zeroed_info();
    // SAFETY: every pointer is valid or NULL; the module must not touch them before C_Initialize.
    unsafe {
        assert_eq!(C_GetInfo(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_GetInfo(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            C_GetSlotList(CK_TRUE, null_mut(), &mut count),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(C_GetSlotInfo(0, null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_GetTokenInfo(0, null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            C_GetMechanismList(0, null_mut(), &mut count),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut handle),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(C_CloseSession(1), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_CloseAllSessions(0), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            C_Login(1, CKU_USER, null_mut(), 0),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(C_Logout(1), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            C_FindObjectsInit(1, null_mut(), 0),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(C_SignInit(1, null_mut(), 1), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            C_Sign(1, null_mut(), 0, null_mut(), null_mut()),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(
            C_GenerateRandom(1, null_mut(), 0),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(C_Finalize(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            C_InitToken(0, null_mut(), 0, null_mut()),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(
            C_EncryptInit(1, null_mut(), 1),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(
            C_MessageSignInit(1, null_mut(), 1),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        // These work before C_Initialize.
        let mut list: *mut CK_FUNCTION_LIST = null_mut();
        assert_eq!(C_GetFunctionList(&mut list), CKR_OK);
        assert!(!list.is_null());
        assert_eq!((*list).version.major, 2);
        assert_eq!((*list).version.minor, 40);
        assert_eq!(C_GetFunctionList(null_mut()), CKR_ARGUMENTS_BAD);
    }
}

fn unsafe_zeroed_info() -> CK_INFO {
    CK_INFO {
        cryptokiVersion: CK_VERSION { major: 0, minor: 0 },
        manufacturerID: [0; 32],
        flags: 0,
        libraryDescription: [0; 32],
        libraryVersion: CK_VERSION { major: 0, minor: 0 },
    }
}

#[test]
fn initialize_and_finalize_rules() {
    let _g = serial();
    set_config(None);
    assert_eq!(init(), CKR_OK);
    assert_eq!(init(), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    // SAFETY: a non-NULL reserved pointer must be refused without being dereferenced.
    let rv = unsafe { C_Finalize(std::ptr::dangling_mut::<c_void>()) };
    assert_eq!(rv, CKR_ARGUMENTS_BAD);
    assert_eq!(finalize(), CKR_OK);
    assert_eq!(finalize(), CKR_CRYPTOKI_NOT_INITIALIZED);

    unsafe extern "C" fn create(_m: *mut *mut c_void) -> CK_RV {
        CKR_OK
    }
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: null_mut(),
    };
    // SAFETY: `args` is a valid CK_C_INITIALIZE_ARGS for every call.
    unsafe {
        let a = &mut args as *mut CK_C_INITIALIZE_ARGS;
        let p = a as *mut c_void;
        assert_eq!(C_Initialize(p), CKR_OK);
        assert_eq!(finalize(), CKR_OK);
        // Some mutex functions but not all: bad.
        (*a).CreateMutex = Some(create);
        assert_eq!(C_Initialize(p), CKR_ARGUMENTS_BAD);
        (*a).CreateMutex = None;
        // pReserved must be NULL.
        (*a).pReserved = std::ptr::dangling_mut::<c_void>();
        assert_eq!(C_Initialize(p), CKR_ARGUMENTS_BAD);
        (*a).pReserved = null_mut();
        // No threads: a current-thread runtime.
        (*a).flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
        let dir = dead_coordinator_config();
        set_config(Some(&dir));
        assert_eq!(C_Initialize(p), CKR_OK);
        let mut info = std::mem::MaybeUninit::<CK_TOKEN_INFO>::uninit();
        let start = std::time::Instant::now();
        let rv = C_GetTokenInfo(0, info.as_mut_ptr());
        assert_ne!(rv, CKR_OK);
        assert!(
            start.elapsed().as_secs() < 8,
            "a dead coordinator must fail fast"
        );
        assert_eq!(finalize(), CKR_OK);
        set_config(None);
    }
}

#[test]
fn without_configuration_the_slot_has_no_token() {
    let _g = serial();
    set_config(None);
    assert_eq!(init(), CKR_OK);
    // SAFETY: every pointer is valid or deliberately NULL.
    unsafe {
        let mut count: CK_ULONG = 99;
        assert_eq!(C_GetSlotList(CK_TRUE, null_mut(), &mut count), CKR_OK);
        assert_eq!(count, 0);
        assert_eq!(C_GetSlotList(CK_FALSE, null_mut(), &mut count), CKR_OK);
        assert_eq!(count, 1);
        let mut slots = [77 as CK_SLOT_ID; 2];
        count = 0;
        assert_eq!(
            C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut count),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(count, 1);
        count = 2;
        assert_eq!(
            C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut count),
            CKR_OK
        );
        assert_eq!((count, slots[0]), (1, 0));
        assert_eq!(
            C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), null_mut()),
            CKR_ARGUMENTS_BAD
        );

        let mut slot_info = std::mem::MaybeUninit::<CK_SLOT_INFO>::uninit();
        assert_eq!(C_GetSlotInfo(0, slot_info.as_mut_ptr()), CKR_OK);
        let slot_info = slot_info.assume_init();
        assert_eq!(slot_info.flags & CKF_TOKEN_PRESENT, 0);
        let description = String::from_utf8_lossy(&slot_info.slotDescription).to_string();
        assert!(description.contains("VHSM_PKCS11_CONFIG"), "{description}");
        assert_eq!(C_GetSlotInfo(0, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_GetSlotInfo(5, slot_info_ptr()), CKR_SLOT_ID_INVALID);

        let mut token_info = std::mem::MaybeUninit::<CK_TOKEN_INFO>::uninit();
        assert_eq!(
            C_GetTokenInfo(0, token_info.as_mut_ptr()),
            CKR_TOKEN_NOT_PRESENT
        );
        let mut session: CK_SESSION_HANDLE = 0;
        assert_eq!(
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut session),
            CKR_TOKEN_NOT_PRESENT
        );

        let mut info = unsafe_zeroed_info();
        assert_eq!(C_GetInfo(&mut info), CKR_OK);
        assert_eq!(info.cryptokiVersion.major, 3);
        assert_eq!(&info.manufacturerID[..4], b"vHSM");
    }
    assert_eq!(finalize(), CKR_OK);
}

fn slot_info_ptr() -> *mut CK_SLOT_INFO {
    Box::into_raw(Box::new(CK_SLOT_INFO {
        slotDescription: [0; 64],
        manufacturerID: [0; 32],
        flags: 0,
        hardwareVersion: CK_VERSION { major: 0, minor: 0 },
        firmwareVersion: CK_VERSION { major: 0, minor: 0 },
    }))
}

#[test]
fn mechanisms_are_listed_truthfully() {
    let _g = serial();
    set_config(None);
    assert_eq!(init(), CKR_OK);
    // SAFETY: valid or deliberately NULL pointers.
    unsafe {
        let mut count: CK_ULONG = 0;
        assert_eq!(C_GetMechanismList(0, null_mut(), &mut count), CKR_OK);
        assert_eq!(count as usize, vhsm_pkcs11::mechanisms::MECHANISMS.len());
        let mut list = vec![0 as CK_MECHANISM_TYPE; count as usize];
        let mut short = count - 1;
        assert_eq!(
            C_GetMechanismList(0, list.as_mut_ptr(), &mut short),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(short, count);
        assert_eq!(C_GetMechanismList(0, list.as_mut_ptr(), &mut count), CKR_OK);
        for m in [
            CKM_EC_KEY_PAIR_GEN,
            CKM_ECDSA,
            CKM_ECDSA_SHA256,
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            CKM_EDDSA,
            CKM_SHA256,
        ] {
            assert!(list.contains(&m), "{m:#x}");
        }
        assert_eq!(
            C_GetMechanismList(1, list.as_mut_ptr(), &mut count),
            CKR_SLOT_ID_INVALID
        );
        let mut info = CK_MECHANISM_INFO {
            ulMinKeySize: 0,
            ulMaxKeySize: 0,
            flags: 0,
        };
        assert_eq!(C_GetMechanismInfo(0, CKM_ECDSA, &mut info), CKR_OK);
        assert_eq!(info.flags & (CKF_SIGN | CKF_VERIFY), CKF_SIGN | CKF_VERIFY);
        assert_eq!(info.ulMinKeySize, 256);
        assert_eq!(
            C_GetMechanismInfo(0, CKM_RSA_PKCS, &mut info),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(
            C_GetMechanismInfo(0, CKM_ECDSA, null_mut()),
            CKR_ARGUMENTS_BAD
        );
    }
    assert_eq!(finalize(), CKR_OK);
}

#[test]
fn interfaces() {
    let _g = serial();
    // SAFETY: valid or deliberately NULL pointers.
    unsafe {
        let mut count: CK_ULONG = 0;
        assert_eq!(C_GetInterfaceList(null_mut(), &mut count), CKR_OK);
        assert_eq!(count, 2);
        let mut list = [CK_INTERFACE {
            pInterfaceName: null_mut(),
            pFunctionList: null_mut(),
            flags: 0,
        }; 2];
        let mut one: CK_ULONG = 1;
        assert_eq!(
            C_GetInterfaceList(list.as_mut_ptr(), &mut one),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(one, 2);
        assert_eq!(C_GetInterfaceList(list.as_mut_ptr(), &mut count), CKR_OK);
        assert_eq!(
            std::ffi::CStr::from_ptr(list[0].pInterfaceName as *const _)
                .to_str()
                .unwrap(),
            "PKCS 11"
        );
        assert_eq!(
            C_GetInterfaceList(list.as_mut_ptr(), null_mut()),
            CKR_ARGUMENTS_BAD
        );

        let mut found: *mut CK_INTERFACE = null_mut();
        assert_eq!(
            C_GetInterface(null_mut(), null_mut(), &mut found, 0),
            CKR_OK
        );
        let list30 = (*found).pFunctionList as *const CK_FUNCTION_LIST_3_0;
        assert_eq!(((*list30).version.major, (*list30).version.minor), (3, 0));
        assert!((*list30).C_LoginUser.is_some() && (*list30).C_SignMessage.is_some());
        let mut name = *b"PKCS 11\0";
        let mut v240 = CK_VERSION {
            major: 2,
            minor: 40,
        };
        assert_eq!(
            C_GetInterface(name.as_mut_ptr(), &mut v240, &mut found, 0),
            CKR_OK
        );
        let list240 = (*found).pFunctionList as *const CK_FUNCTION_LIST;
        assert_eq!((*list240).version.minor, 40);
        let mut v9 = CK_VERSION { major: 9, minor: 0 };
        assert_eq!(
            C_GetInterface(name.as_mut_ptr(), &mut v9, &mut found, 0),
            CKR_ARGUMENTS_BAD
        );
        let mut other = *b"Vendor\0";
        assert_eq!(
            C_GetInterface(other.as_mut_ptr(), null_mut(), &mut found, 0),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetInterface(null_mut(), null_mut(), &mut found, CKF_INTERFACE_FORK_SAFE),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetInterface(null_mut(), null_mut(), null_mut(), 0),
            CKR_ARGUMENTS_BAD
        );
        // The function list points at the exported functions.
        let f = (*list30).C_GetInfo.unwrap();
        assert_eq!(f(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
    }
}

/// Opens a read/write session on a module configured with a dead coordinator (no request to it is made).
fn open_session(rw: bool) -> CK_SESSION_HANDLE {
    let mut session: CK_SESSION_HANDLE = 0;
    let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
    // SAFETY: valid pointer.
    let rv = unsafe { C_OpenSession(0, flags, null_mut(), None, &mut session) };
    assert_eq!(rv, CKR_OK);
    session
}

#[test]
fn sessions_login_and_bad_handles() {
    let _g = serial();
    let dir = dead_coordinator_config();
    set_config(Some(&dir));
    assert_eq!(init(), CKR_OK);
    // SAFETY: valid or deliberately NULL pointers.
    unsafe {
        let mut session: CK_SESSION_HANDLE = 0;
        assert_eq!(
            C_OpenSession(0, 0, null_mut(), None, &mut session),
            CKR_SESSION_PARALLEL_NOT_SUPPORTED
        );
        assert_eq!(
            C_OpenSession(3, CKF_SERIAL_SESSION, null_mut(), None, &mut session),
            CKR_SLOT_ID_INVALID
        );
        assert_eq!(
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        let ro = open_session(false);
        let rw = open_session(true);
        assert_ne!(ro, rw);
        let mut info = CK_SESSION_INFO {
            slotID: 9,
            state: 9,
            flags: 0,
            ulDeviceError: 0,
        };
        assert_eq!(C_GetSessionInfo(ro, &mut info), CKR_OK);
        assert_eq!((info.slotID, info.state), (0, CKS_RO_PUBLIC_SESSION));
        assert_eq!(C_GetSessionInfo(rw, &mut info), CKR_OK);
        assert_eq!(
            (info.state, info.flags),
            (CKS_RW_PUBLIC_SESSION, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        );
        assert_eq!(C_GetSessionInfo(rw, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_GetSessionInfo(12345, &mut info),
            CKR_SESSION_HANDLE_INVALID
        );

        assert_eq!(C_Login(rw, CKU_USER, null_mut(), 4), CKR_ARGUMENTS_BAD);
        let mut pin = *b"1234";
        assert_eq!(C_Login(rw, 77, pin.as_mut_ptr(), 4), CKR_USER_TYPE_INVALID);
        assert_eq!(
            C_Login(rw, CKU_CONTEXT_SPECIFIC, pin.as_mut_ptr(), 4),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            C_Login(12345, CKU_USER, pin.as_mut_ptr(), 4),
            CKR_SESSION_HANDLE_INVALID
        );
        // SO login with a read-only session open.
        assert_eq!(
            C_Login(rw, CKU_SO, pin.as_mut_ptr(), 4),
            CKR_SESSION_READ_ONLY_EXISTS
        );
        // The coordinator is unreachable: an error, quickly.
        let start = std::time::Instant::now();
        assert_ne!(C_Login(rw, CKU_USER, pin.as_mut_ptr(), 4), CKR_OK);
        assert!(start.elapsed().as_secs() < 8);
        assert_eq!(C_Logout(rw), CKR_USER_NOT_LOGGED_IN);
        let mut user = *b"alice";
        assert_eq!(
            C_LoginUser(rw, CKU_USER, pin.as_mut_ptr(), 4, user.as_mut_ptr(), 5),
            CKR_ARGUMENTS_BAD
        );

        // Operations that need no cluster, on wrong handles and without init.
        let mut len: CK_ULONG = 64;
        let mut buf = [0u8; 64];
        assert_eq!(
            C_Sign(rw, buf.as_mut_ptr(), 4, buf.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            C_SignFinal(rw, buf.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            C_Verify(rw, buf.as_mut_ptr(), 4, buf.as_mut_ptr(), 64),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            C_DigestUpdate(rw, buf.as_mut_ptr(), 4),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            C_FindObjects(rw, buf.as_mut_ptr() as *mut CK_OBJECT_HANDLE, 1, &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(C_FindObjectsFinal(rw), CKR_OPERATION_NOT_INITIALIZED);
        let mut ecdsa = mechanism(CKM_ECDSA);
        assert_eq!(C_SignInit(rw, &mut ecdsa, 999), CKR_KEY_HANDLE_INVALID);
        assert_eq!(
            C_SignInit(4242, &mut ecdsa, 999),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(C_VerifyInit(rw, &mut ecdsa, 999), CKR_KEY_HANDLE_INVALID);
        assert_eq!(C_DestroyObject(rw, 999), CKR_OBJECT_HANDLE_INVALID);
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: 0,
        }];
        assert_eq!(
            C_GetAttributeValue(rw, 999, template.as_mut_ptr(), 1),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(
            C_GetAttributeValue(rw, 999, null_mut(), 1),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetObjectSize(rw, 999, &mut len),
            CKR_OBJECT_HANDLE_INVALID
        );

        // Key generation without login.
        let params = vhsm_pkcs11::encoding::OID_P256;
        let mut gen = mechanism(CKM_EC_KEY_PAIR_GEN);
        let mut public = [attr_bytes(CKA_EC_PARAMS, params), attr(CKA_TOKEN, &CK_TRUE)];
        let (mut hpub, mut hpriv) = (0, 0);
        assert_eq!(
            C_GenerateKeyPair(
                rw,
                &mut gen,
                public.as_mut_ptr(),
                2,
                null_mut(),
                0,
                &mut hpub,
                &mut hpriv
            ),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_eq!(
            C_GenerateKeyPair(
                ro,
                &mut gen,
                public.as_mut_ptr(),
                2,
                null_mut(),
                0,
                &mut hpub,
                &mut hpriv
            ),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_eq!(
            C_GenerateKeyPair(
                rw,
                &mut gen,
                public.as_mut_ptr(),
                2,
                null_mut(),
                0,
                null_mut(),
                &mut hpriv
            ),
            CKR_ARGUMENTS_BAD
        );
        let mut rsa = mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN);
        assert_eq!(
            C_GenerateKeyPair(
                rw,
                &mut rsa,
                public.as_mut_ptr(),
                2,
                null_mut(),
                0,
                &mut hpub,
                &mut hpriv
            ),
            CKR_MECHANISM_INVALID
        );
        let mut bad_param = CK_MECHANISM {
            mechanism: CKM_EC_KEY_PAIR_GEN,
            pParameter: null_mut(),
            ulParameterLen: 8,
        };
        assert_eq!(
            C_GenerateKeyPair(
                rw,
                &mut bad_param,
                public.as_mut_ptr(),
                2,
                null_mut(),
                0,
                &mut hpub,
                &mut hpriv
            ),
            CKR_MECHANISM_PARAM_INVALID
        );
        let mut extractable = [attr(CKA_EXTRACTABLE, &CK_TRUE)];
        assert_eq!(
            C_GenerateKeyPair(
                rw,
                &mut gen,
                public.as_mut_ptr(),
                2,
                extractable.as_mut_ptr(),
                1,
                &mut hpub,
                &mut hpriv
            ),
            CKR_TEMPLATE_INCONSISTENT
        );
        let mut short_bool = [CK_ATTRIBUTE {
            type_: CKA_TOKEN,
            pValue: buf.as_mut_ptr() as *mut c_void,
            ulValueLen: 4,
        }];
        assert_eq!(
            C_GenerateKeyPair(
                rw,
                &mut gen,
                short_bool.as_mut_ptr(),
                1,
                null_mut(),
                0,
                &mut hpub,
                &mut hpriv
            ),
            CKR_ATTRIBUTE_VALUE_INVALID
        );

        // Unsupported functions.
        assert_eq!(
            C_InitPIN(rw, pin.as_mut_ptr(), 4),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(C_DigestKey(rw, 1), CKR_FUNCTION_NOT_SUPPORTED);
        assert_eq!(
            C_WrapKey(rw, &mut ecdsa, 1, 2, null_mut(), null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(C_GetFunctionStatus(rw), CKR_FUNCTION_NOT_PARALLEL);
        assert_eq!(
            C_SeedRandom(rw, pin.as_mut_ptr(), 4),
            CKR_RANDOM_SEED_NOT_SUPPORTED
        );
        assert_eq!(
            C_SignMessage(rw, null_mut(), 0, null_mut(), 0, null_mut(), null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );

        // Random numbers.
        let mut random = [0u8; 32];
        assert_eq!(C_GenerateRandom(rw, random.as_mut_ptr(), 32), CKR_OK);
        assert_ne!(random, [0u8; 32]);
        assert_eq!(C_GenerateRandom(rw, null_mut(), 32), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_GenerateRandom(4242, random.as_mut_ptr(), 32),
            CKR_SESSION_HANDLE_INVALID
        );

        assert_eq!(C_CloseSession(ro), CKR_OK);
        assert_eq!(C_CloseSession(ro), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(C_CloseAllSessions(7), CKR_SLOT_ID_INVALID);
        assert_eq!(C_CloseAllSessions(0), CKR_OK);
        assert_eq!(C_GetSessionInfo(rw, &mut info), CKR_SESSION_HANDLE_INVALID);
    }
    assert_eq!(finalize(), CKR_OK);
    set_config(None);
}

#[test]
fn digests_follow_the_length_protocol() {
    use sha2::Digest;
    let _g = serial();
    let dir = dead_coordinator_config();
    set_config(Some(&dir));
    assert_eq!(init(), CKR_OK);
    let s = open_session(false);
    // SAFETY: valid or deliberately NULL pointers.
    unsafe {
        let mut m = mechanism(CKM_SHA384);
        assert_eq!(C_DigestInit(s, &mut m), CKR_OK);
        assert_eq!(C_DigestInit(s, &mut m), CKR_OPERATION_ACTIVE);
        let mut data = *b"hello world";
        let mut len: CK_ULONG = 0;
        assert_eq!(
            C_Digest(s, data.as_mut_ptr(), 11, null_mut(), &mut len),
            CKR_OK
        );
        assert_eq!(len, 48);
        let mut out = [0u8; 64];
        len = 10;
        assert_eq!(
            C_Digest(s, data.as_mut_ptr(), 11, out.as_mut_ptr(), &mut len),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 48);
        assert_eq!(
            C_Digest(s, data.as_mut_ptr(), 11, out.as_mut_ptr(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        len = 64;
        assert_eq!(
            C_Digest(s, data.as_mut_ptr(), 11, out.as_mut_ptr(), &mut len),
            CKR_OK
        );
        assert_eq!(
            &out[..len as usize],
            sha2::Sha384::digest(b"hello world").as_slice()
        );
        // The operation is over.
        assert_eq!(
            C_Digest(s, data.as_mut_ptr(), 11, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Multi-part.
        let mut m = mechanism(CKM_SHA256);
        assert_eq!(C_DigestInit(s, &mut m), CKR_OK);
        assert_eq!(C_DigestUpdate(s, data.as_mut_ptr(), 5), CKR_OK);
        assert_eq!(C_DigestUpdate(s, data.as_mut_ptr().add(5), 6), CKR_OK);
        len = 64;
        assert_eq!(C_DigestFinal(s, out.as_mut_ptr(), &mut len), CKR_OK);
        assert_eq!(&out[..32], sha2::Sha256::digest(b"hello world").as_slice());
        // A NULL mechanism cancels.
        assert_eq!(C_DigestInit(s, &mut m), CKR_OK);
        assert_eq!(C_DigestInit(s, null_mut()), CKR_OK);
        assert_eq!(
            C_DigestFinal(s, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        let mut bad = mechanism(CKM_MD5);
        assert_eq!(C_DigestInit(s, &mut bad), CKR_MECHANISM_INVALID);
    }
    assert_eq!(finalize(), CKR_OK);
    set_config(None);
}

#[test]
fn session_objects_attributes_and_local_verification() {
    use ed25519_dalek::Signer;
    let _g = serial();
    let dir = dead_coordinator_config();
    set_config(Some(&dir));
    assert_eq!(init(), CKR_OK);
    let s = open_session(false);
    // SAFETY: valid or deliberately NULL pointers.
    unsafe {
        // A session data object.
        let class = CKO_DATA;
        let label = b"note";
        let value = b"some data";
        let mut template = [
            attr(CKA_CLASS, &class),
            attr(CKA_TOKEN, &CK_FALSE),
            attr_bytes(CKA_LABEL, label),
            attr_bytes(CKA_VALUE, value),
        ];
        let mut data: CK_OBJECT_HANDLE = 0;
        assert_eq!(
            C_CreateObject(s, template.as_mut_ptr(), 4, &mut data),
            CKR_OK
        );
        assert_eq!(
            C_CreateObject(s, template.as_mut_ptr(), 4, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        // A token object needs a read/write session.
        let mut token_template = [attr(CKA_CLASS, &class), attr(CKA_TOKEN, &CK_TRUE)];
        let mut h = 0;
        assert_eq!(
            C_CreateObject(s, token_template.as_mut_ptr(), 2, &mut h),
            CKR_SESSION_READ_ONLY
        );
        let secret = CKO_SECRET_KEY;
        let mut secret_template = [attr(CKA_CLASS, &secret), attr(CKA_TOKEN, &CK_FALSE)];
        assert_eq!(
            C_CreateObject(s, secret_template.as_mut_ptr(), 2, &mut h),
            CKR_ATTRIBUTE_VALUE_INVALID
        );

        // C_GetAttributeValue: length query, exact, too small, invalid type.
        let mut buf = [0u8; 32];
        let mut query = [
            CK_ATTRIBUTE {
                type_: CKA_LABEL,
                pValue: null_mut(),
                ulValueLen: 0,
            },
            CK_ATTRIBUTE {
                type_: CKA_VALUE,
                pValue: null_mut(),
                ulValueLen: 0,
            },
        ];
        assert_eq!(C_GetAttributeValue(s, data, query.as_mut_ptr(), 2), CKR_OK);
        assert_eq!((query[0].ulValueLen, query[1].ulValueLen), (4, 9));
        let mut short = [CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: buf.as_mut_ptr() as *mut c_void,
            ulValueLen: 3,
        }];
        assert_eq!(
            C_GetAttributeValue(s, data, short.as_mut_ptr(), 1),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(short[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        let mut mixed = [
            CK_ATTRIBUTE {
                type_: CKA_MODULUS,
                pValue: null_mut(),
                ulValueLen: 0,
            },
            CK_ATTRIBUTE {
                type_: CKA_VALUE,
                pValue: buf.as_mut_ptr() as *mut c_void,
                ulValueLen: 32,
            },
        ];
        assert_eq!(
            C_GetAttributeValue(s, data, mixed.as_mut_ptr(), 2),
            CKR_ATTRIBUTE_TYPE_INVALID
        );
        assert_eq!(mixed[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(
            mixed[1].ulValueLen, 9,
            "the rest of the template is still processed"
        );
        assert_eq!(&buf[..9], value);
        let mut class_out: CK_ULONG = 0;
        let mut class_query = [attr_mut(CKA_CLASS, &mut class_out)];
        assert_eq!(
            C_GetAttributeValue(s, data, class_query.as_mut_ptr(), 1),
            CKR_OK
        );
        assert_eq!(class_out, CKO_DATA);

        // Set, copy, find, destroy.
        let new_label = b"renamed";
        let mut set = [attr_bytes(CKA_LABEL, new_label)];
        assert_eq!(C_SetAttributeValue(s, data, set.as_mut_ptr(), 1), CKR_OK);
        let mut set_class = [attr(CKA_CLASS, &secret)];
        assert_eq!(
            C_SetAttributeValue(s, data, set_class.as_mut_ptr(), 1),
            CKR_ATTRIBUTE_READ_ONLY
        );
        let mut copy: CK_OBJECT_HANDLE = 0;
        assert_eq!(C_CopyObject(s, data, null_mut(), 0, &mut copy), CKR_OK);
        assert_ne!(copy, data);
        let mut find = [attr(CKA_TOKEN, &CK_FALSE), attr_bytes(CKA_LABEL, new_label)];
        assert_eq!(C_FindObjectsInit(s, find.as_mut_ptr(), 2), CKR_OK);
        assert_eq!(
            C_FindObjectsInit(s, find.as_mut_ptr(), 2),
            CKR_OPERATION_ACTIVE
        );
        let mut found = [0 as CK_OBJECT_HANDLE; 4];
        let mut n: CK_ULONG = 0;
        assert_eq!(C_FindObjects(s, found.as_mut_ptr(), 1, &mut n), CKR_OK);
        assert_eq!(n, 1);
        assert_eq!(
            C_FindObjects(s, found.as_mut_ptr().add(1), 3, &mut n),
            CKR_OK
        );
        assert_eq!(n, 1);
        let mut got = vec![found[0], found[1]];
        got.sort_unstable();
        assert_eq!(got, vec![data, copy]);
        assert_eq!(C_FindObjects(s, found.as_mut_ptr(), 4, &mut n), CKR_OK);
        assert_eq!(n, 0);
        assert_eq!(C_FindObjects(s, null_mut(), 4, &mut n), CKR_ARGUMENTS_BAD);
        assert_eq!(C_FindObjectsFinal(s), CKR_OK);
        assert_eq!(C_DestroyObject(s, copy), CKR_OK);
        assert_eq!(C_DestroyObject(s, copy), CKR_OBJECT_HANDLE_INVALID);

        // Import an Ed25519 public key as a session object and verify locally.
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let point = vhsm_pkcs11::encoding::ec_point(key.verifying_key().as_bytes());
        let (pk_class, key_type) = (CKO_PUBLIC_KEY, CKK_EC_EDWARDS);
        let mut pk_template = [
            attr(CKA_CLASS, &pk_class),
            attr(CKA_KEY_TYPE, &key_type),
            attr_bytes(CKA_EC_PARAMS, vhsm_pkcs11::encoding::NAME_EDWARDS25519),
            attr_bytes(CKA_EC_POINT, &point),
        ];
        let mut pk: CK_OBJECT_HANDLE = 0;
        assert_eq!(
            C_CreateObject(s, pk_template.as_mut_ptr(), 4, &mut pk),
            CKR_OK
        );
        let mut message = *b"to be signed";
        let mut signature = key.sign(&message).to_bytes();
        let mut eddsa = mechanism(CKM_EDDSA);
        assert_eq!(C_VerifyInit(s, &mut eddsa, pk), CKR_OK);
        assert_eq!(
            C_Verify(s, message.as_mut_ptr(), 12, signature.as_mut_ptr(), 64),
            CKR_OK
        );
        assert_eq!(C_VerifyInit(s, &mut eddsa, pk), CKR_OK);
        assert_eq!(C_VerifyUpdate(s, message.as_mut_ptr(), 5), CKR_OK);
        assert_eq!(C_VerifyUpdate(s, message.as_mut_ptr().add(5), 7), CKR_OK);
        assert_eq!(C_VerifyFinal(s, signature.as_mut_ptr(), 64), CKR_OK);
        signature[0] ^= 1;
        assert_eq!(C_VerifyInit(s, &mut eddsa, pk), CKR_OK);
        assert_eq!(
            C_Verify(s, message.as_mut_ptr(), 12, signature.as_mut_ptr(), 64),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(C_VerifyInit(s, &mut eddsa, pk), CKR_OK);
        assert_eq!(
            C_Verify(s, message.as_mut_ptr(), 12, signature.as_mut_ptr(), 63),
            CKR_SIGNATURE_LEN_RANGE
        );
        // Wrong mechanism for the key, wrong key for signing, EdDSA parameters.
        let mut ecdsa = mechanism(CKM_ECDSA);
        assert_eq!(C_VerifyInit(s, &mut ecdsa, pk), CKR_KEY_TYPE_INCONSISTENT);
        assert_eq!(
            C_SignInit(s, &mut eddsa, pk),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
        let mut ph_value = CK_EDDSA_PARAMS {
            phFlag: CK_TRUE,
            ulContextDataLen: 0,
            pContextData: null_mut(),
        };
        let ph = &mut ph_value as *mut CK_EDDSA_PARAMS;
        let mut eddsa_ph = CK_MECHANISM {
            mechanism: CKM_EDDSA,
            pParameter: ph as *mut c_void,
            ulParameterLen: std::mem::size_of::<CK_EDDSA_PARAMS>() as CK_ULONG,
        };
        assert_eq!(
            C_VerifyInit(s, &mut eddsa_ph, pk),
            CKR_MECHANISM_PARAM_INVALID
        );
        (*ph).phFlag = CK_FALSE;
        assert_eq!(C_VerifyInit(s, &mut eddsa_ph, pk), CKR_OK);
        assert_eq!(
            C_VerifyInit(s, null_mut(), pk),
            CKR_OK,
            "NULL mechanism cancels"
        );
        assert_eq!(
            C_VerifyFinal(s, signature.as_mut_ptr(), 64),
            CKR_OPERATION_NOT_INITIALIZED
        );

        // Closing the session removes its objects.
        assert_eq!(C_CloseSession(s), CKR_OK);
        let s2 = open_session(false);
        assert_eq!(
            C_GetAttributeValue(s2, data, query.as_mut_ptr(), 1),
            CKR_OBJECT_HANDLE_INVALID
        );
    }
    assert_eq!(finalize(), CKR_OK);
    set_config(None);
}

#[test]
fn ffi_survives_hostile_lengths() {
    let _g = serial();
    let dir = dead_coordinator_config();
    set_config(Some(&dir));
    assert_eq!(init(), CKR_OK);
    let s = open_session(true);
    // SAFETY: the pointers are NULL where the lengths are hostile; the module must refuse before reading.
    unsafe {
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: 5,
        }];
        assert_eq!(
            C_FindObjectsInit(s, template.as_mut_ptr(), 1),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(C_FindObjectsInit(s, null_mut(), 3), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_FindObjectsInit(s, template.as_mut_ptr(), CK_ULONG::MAX),
            CKR_ARGUMENTS_BAD
        );
        let mut m = CK_MECHANISM {
            mechanism: CKM_SHA256,
            pParameter: null_mut(),
            ulParameterLen: CK_ULONG::MAX,
        };
        assert_eq!(C_DigestInit(s, &mut m), CKR_MECHANISM_PARAM_INVALID);
        let mut len: CK_ULONG = 0;
        assert_eq!(
            C_Sign(s, null_mut(), 5, null_mut(), &mut len),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_Digest(s, null_mut(), CK_ULONG::MAX, null_mut(), &mut len),
            CKR_ARGUMENTS_BAD
        );
        let p: *const u8 = null();
        assert!(p.is_null());
    }
    assert_eq!(finalize(), CKR_OK);
    set_config(None);
}
