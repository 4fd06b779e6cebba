//! After `fork()`, the child's `C_Initialize` succeeds and the child can use the module (pkcs11-tool
//! `--test-fork`). Its own test binary: the test forks, so it should be the only test of its process.
#![allow(unsafe_code, clippy::unwrap_used, missing_docs)]

use std::ptr::null_mut;

use cryptoki_sys::*;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use vhsm_pkcs11::ffi::*;

#[test]
fn child_initializes_after_fork() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.toml");
    std::fs::write(
        &path,
        "coordinator = \"127.0.0.1:9\"\nca_cert = \"a\"\ncert = \"b\"\nkey = \"c\"\n",
    )
    .unwrap();
    std::env::set_var("VHSM_PKCS11_CONFIG", &path);
    // SAFETY: NULL arguments; valid output pointers.
    unsafe {
        assert_eq!(C_Initialize(null_mut()), CKR_OK);
        let mut session = 0;
        assert_eq!(
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut session),
            CKR_OK
        );
    }
    // SAFETY: the child only calls into the module (which must cope) and exits with `_exit`-like semantics.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            // SAFETY: as above.
            let code = unsafe {
                let mut session = 0;
                let mut info = std::mem::MaybeUninit::<CK_SESSION_INFO>::uninit();
                // The parent's state is not the child's: not initialised until the child initialises.
                if C_GetSessionInfo(1, info.as_mut_ptr()) != CKR_CRYPTOKI_NOT_INITIALIZED {
                    2
                } else if C_Initialize(null_mut()) != CKR_OK {
                    3
                } else if C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut session)
                    != CKR_OK
                {
                    4
                } else if C_Finalize(null_mut()) != CKR_OK {
                    5
                } else {
                    0
                }
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).unwrap();
            assert_eq!(status, WaitStatus::Exited(child, 0));
            // The parent's module is untouched.
            let mut info = std::mem::MaybeUninit::<CK_SESSION_INFO>::uninit();
            // SAFETY: valid output pointer.
            unsafe {
                assert_eq!(C_GetSessionInfo(1, info.as_mut_ptr()), CKR_OK);
                assert_eq!(C_Finalize(null_mut()), CKR_OK);
            }
        }
    }
}
