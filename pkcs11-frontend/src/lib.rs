//! `libvhsm_pkcs11.so`: the vHSM cluster as a PKCS#11 3.0 token.
//!
//! Applications load this module like any PKCS#11 module (OpenSC's `pkcs11-tool --module`, OpenSSL's
//! pkcs11-provider, python-pkcs11, Java SunPKCS11). Every private-key operation runs as a threshold protocol on the
//! cluster's nodes; the module is a thin client of the coordinator.
//!
//! # Configuration
//! `VHSM_PKCS11_CONFIG` names the client configuration file written by `vhsm init` / `vhsm up` (a
//! [`vhsm_client::ClientConfig`]: coordinator address, cluster CA, client certificate and key). Without it
//! (or with a file that cannot be read) `C_Initialize` still succeeds, so that a module registered system-wide does
//! not break unrelated applications, but the slot reports no token: `C_GetSlotList(CK_TRUE)` lists nothing, the
//! slot description says what is wrong, and `C_OpenSession`/`C_GetTokenInfo` return `CKR_TOKEN_NOT_PRESENT`.
//! `VHSM_PKCS11_LOG` (a `tracing` filter such as `debug`, or `1`) turns on logging to standard error; nothing is
//! logged otherwise, and never a PIN.
//!
//! # Slot, token, sessions
//! One slot (id 0) holding one token, the cluster. The user PIN is checked by the coordinator (which also counts
//! failures and locks the PIN); login state is per application, shared by all its sessions, as PKCS#11 says. While
//! logged in, the module keeps the PIN (zeroized when dropped) so that it can log in again transparently after a
//! reconnect.
//!
//! # Errors from the cluster
//! Every request to the coordinator is bounded in time (see [`client`]). A coordinator that cannot be reached, or
//! a cluster without enough live nodes, gives `CKR_DEVICE_ERROR` within a few seconds; the token stays present and
//! the next call reconnects. PIN errors give `CKR_PIN_INCORRECT`/`CKR_PIN_LOCKED`.
//!
//! # Threads and fork
//! All entry points are thread-safe: the module always uses the operating system's locks (whatever the
//! `CK_C_INITIALIZE_ARGS` say; this is valid for `CKF_OS_LOCKING_OK` and harmless otherwise). The module's global
//! state is locked only briefly, never across a request to the cluster, so eight threads signing at once run their
//! requests concurrently over one connection. Requests run on a tokio runtime owned by the module: two worker
//! threads, or, when the application passes `CKF_LIBRARY_CANT_CREATE_OS_THREADS`, a current-thread runtime that is
//! driven only inside calls (the connection then idles out between calls and is re-established as needed).
//! After `fork()` the child's `C_Initialize` succeeds: the module notices that its pid changed and abandons (leaks,
//! never drops: their threads do not exist in the child) the inherited runtime, connection and sessions, zeroizing
//! the inherited PIN.
//!
//! # What is implemented
//! See `FUNCTIONS.md` in this crate for every PKCS#11 function and its status, and [`mechanisms`] for the
//! mechanism table.
//!
//! # Layout
//! - [`ffi`]: the exported `C_*` functions and the function lists (the only unsafe code).
//! - `state`: the module's global state; `session`, `login`, `token`: slots, tokens, sessions, login.
//! - [`objects`], [`key_objects`], `object_access`, `object_lifecycle`: the object model and its functions.
//! - [`attributes`], [`policy`], [`encoding`], [`mechanisms`]: pure parsing and validation (also fuzzed).
//! - `signing`, `verification`, `cipher`, `digest`, `keygen`, `random`: the cryptographic functions.
//! - [`client`], [`config`]: the bridge to the coordinator.

#![deny(missing_docs)]

pub mod attributes;
mod cipher;
pub mod client;
pub mod config;
mod digest;
pub mod encoding;
pub mod ffi;
pub mod key_objects;
mod keygen;
mod login;
pub mod mechanisms;
mod object_access;
mod object_lifecycle;
pub mod objects;
pub mod policy;
mod random;
mod session;
mod signing;
mod state;
mod token;
mod verification;

use cryptoki_sys::CK_RV;

/// The result of an operation inside the module: the error is the PKCS#11 return value.
pub type CkResult<T> = Result<T, CK_RV>;

// The module stores CK_ULONG values as u64 on the wire and in memory; the platforms cryptoki-sys supports on Linux
// are 64-bit, and this assertion keeps it that way.
const _: () = assert!(std::mem::size_of::<cryptoki_sys::CK_ULONG>() == 8);

/// What a function with an output buffer produces, following the PKCS#11 length-query convention.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The caller passed no buffer: report the length needed (`CKR_OK`).
    Length(usize),
    /// The caller's buffer is too short: report the length needed (`CKR_BUFFER_TOO_SMALL`).
    TooSmall(usize),
    /// The result, to copy into the caller's buffer (zeroized when dropped: it may be a plaintext).
    Data(zeroize::Zeroizing<Vec<u8>>),
}

impl Output {
    /// The length-query outcome for a result of `needed` bytes and a caller buffer of `capacity` bytes (`None`:
    /// no buffer); `None` means the buffer is large enough and the operation should produce its result.
    pub fn check_capacity(needed: usize, capacity: Option<usize>) -> Option<Output> {
        match capacity {
            None => Some(Output::Length(needed)),
            Some(c) if c < needed => Some(Output::TooSmall(needed)),
            Some(_) => None,
        }
    }
}
