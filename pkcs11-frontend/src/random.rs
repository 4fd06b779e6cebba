//! `C_GenerateRandom`: the operating system's random number generator.

use cryptoki_sys::*;
use rand_core::{OsRng, RngCore};

use crate::state::with_module;
use crate::CkResult;

/// `C_GenerateRandom`: fills `out`.
pub fn generate_random(session: CK_SESSION_HANDLE, out: &mut [u8]) -> CkResult<()> {
    with_module(|m| m.session(session).map(|_| ()))?;
    OsRng.try_fill_bytes(out).map_err(|_| CKR_DEVICE_ERROR)
}
