//! The exported PKCS#11 C API: every `C_*` function, the 2.40 function list (`C_GetFunctionList`) and the 3.0
//! interface "PKCS 11" (`C_GetInterfaceList`, `C_GetInterface`).
//!
//! This is the only module with unsafe code. Every entry point checks its pointers and lengths, turns them into
//! safe Rust values, calls the safe implementation, and writes results back; it runs inside `catch_unwind`, so a
//! panic becomes `CKR_GENERAL_ERROR` and never crosses the boundary. Pointers are trusted to be valid for the
//! lengths the caller gives, as the PKCS#11 contract says; NULL pointers are checked (`CKR_ARGUMENTS_BAD`).
//!
//! The functions are also callable from Rust (this crate is an rlib too), which the FFI tests do.
#![allow(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::*;

use crate::attributes::Template;
use crate::{CkResult, Output};

mod cipher;
mod crypto;
pub mod function_lists;
mod general;
mod objects;
mod sessions;
mod unsupported;

pub use cipher::*;
pub use crypto::*;
pub use function_lists::*;
pub use general::*;
pub use objects::*;
pub use sessions::*;
pub use unsupported::*;

/// The longest mechanism parameter read (the longest is `CKM_VHSM_SPLIT_AES`'s associated data).
const MAX_MECHANISM_PARAMETER: CK_ULONG = crate::mechanisms::MAX_AAD_LEN as CK_ULONG;
/// The most attributes one template may have.
const MAX_TEMPLATE_LEN: CK_ULONG = 1 << 16;

/// Runs one entry point: a panic becomes `CKR_GENERAL_ERROR`.
fn entry(function: &'static str, body: impl FnOnce() -> CK_RV) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(rv) => {
            if rv != CKR_OK {
                tracing::debug!(function, rv = format_args!("{rv:#x}"), "returned an error");
            }
            rv
        }
        Err(_) => {
            tracing::error!(function, "panic caught at the FFI boundary");
            CKR_GENERAL_ERROR
        }
    }
}

/// `CKR_OK` or the error.
fn rv(result: CkResult<()>) -> CK_RV {
    match result {
        Ok(()) => CKR_OK,
        Err(e) => e,
    }
}

fn to_usize(len: CK_ULONG) -> CkResult<usize> {
    usize::try_from(len)
        .ok()
        .filter(|l| *l <= isize::MAX as usize)
        .ok_or(CKR_ARGUMENTS_BAD)
}

/// The caller's input bytes. NULL with a zero length is empty; NULL with a length is `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that stay unchanged during the call.
unsafe fn input<'a>(ptr: *const u8, len: CK_ULONG) -> CkResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let len = to_usize(len)?;
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes (PKCS#11 contract).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The caller's output buffer, to fill.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` writable bytes.
unsafe fn output_slice<'a>(ptr: *mut u8, len: CK_ULONG) -> CkResult<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let len = to_usize(len)?;
    // SAFETY: non-NULL, and the caller guarantees `len` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Writes one value through a caller's pointer; NULL is `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// A non-NULL `ptr` must be valid for writing a `T`.
unsafe fn write<T>(ptr: *mut T, value: T) -> CkResult<()> {
    if ptr.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL and valid for writes (caller's contract).
    unsafe { ptr.write(value) };
    Ok(())
}

/// The capacity of an output buffer for the length-query convention: `None` for a NULL buffer. A NULL length
/// pointer is `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// A non-NULL `len` must be valid for reading a `CK_ULONG`.
unsafe fn output_capacity(buffer: *mut u8, len: *mut CK_ULONG) -> CkResult<Option<usize>> {
    if len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    if buffer.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and valid for reads (caller's contract).
    let capacity = unsafe { len.read() };
    Ok(Some(usize::try_from(capacity).unwrap_or(usize::MAX)))
}

/// Writes an [`Output`] back: the length, `CKR_BUFFER_TOO_SMALL` with the length, or the data.
///
/// # Safety
/// `len` must be valid for writes; for [`Output::Data`], `buffer` must be valid for writing its length (which
/// [`output_capacity`] checked against the caller's capacity).
unsafe fn write_output(output: Output, buffer: *mut u8, len: *mut CK_ULONG) -> CK_RV {
    let (n, code) = match output {
        Output::Length(n) => (n, CKR_OK),
        Output::TooSmall(n) => (n, CKR_BUFFER_TOO_SMALL),
        Output::Data(data) => {
            if buffer.is_null() {
                return CKR_ARGUMENTS_BAD;
            }
            // SAFETY: `buffer` is non-NULL and holds at least `data.len()` bytes (checked against the capacity the
            // caller gave); the regions cannot overlap (`data` is our own allocation).
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len()) };
            (data.len(), CKR_OK)
        }
    };
    // SAFETY: the callers checked `len` for NULL (output_capacity) before computing the output.
    match unsafe { write(len, n as CK_ULONG) } {
        Ok(()) => code,
        Err(e) => e,
    }
}

/// Writes a list with the length-query convention (`C_GetSlotList`, `C_GetMechanismList`, …).
///
/// # Safety
/// `count` must be valid for reads and writes; a non-NULL `list` must hold `*count` elements.
unsafe fn write_list<T: Copy>(items: &[T], list: *mut T, count: *mut CK_ULONG) -> CK_RV {
    if count.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let needed = items.len() as CK_ULONG;
    if !list.is_null() {
        // SAFETY: non-NULL, valid for reads (caller's contract).
        let capacity = unsafe { count.read() };
        if capacity < needed {
            // SAFETY: as above, valid for writes.
            unsafe { count.write(needed) };
            return CKR_BUFFER_TOO_SMALL;
        }
        // SAFETY: `list` holds at least `capacity >= items.len()` elements; no overlap with our slice.
        unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), list, items.len()) };
    }
    // SAFETY: non-NULL, valid for writes.
    unsafe { count.write(needed) };
    CKR_OK
}

/// Reads and validates a template.
///
/// # Safety
/// A non-NULL `template` must point to `count` `CK_ATTRIBUTE`s whose non-NULL values hold `ulValueLen` bytes.
unsafe fn read_template(template: *const CK_ATTRIBUTE, count: CK_ULONG) -> CkResult<Template> {
    if count == 0 {
        return Template::parse(&[]);
    }
    if template.is_null() || count > MAX_TEMPLATE_LEN {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL, `count` elements (caller's contract).
    let attributes = unsafe { std::slice::from_raw_parts(template, to_usize(count)?) };
    let mut raw = Vec::with_capacity(attributes.len());
    for a in attributes {
        let value = if a.pValue.is_null() {
            if a.ulValueLen != 0 {
                return Err(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            &[][..]
        } else {
            // SAFETY: the caller guarantees `ulValueLen` readable bytes at `pValue`.
            unsafe { input(a.pValue as *const u8, a.ulValueLen)? }
        };
        raw.push((a.type_, value));
    }
    Template::parse(&raw)
}

/// Reads a mechanism: its type and parameter bytes. A NULL mechanism is `Ok(None)` (PKCS#11 3.0: cancels the
/// operation in the `*Init` functions).
///
/// # Safety
/// A non-NULL `mechanism` must point to a `CK_MECHANISM` whose non-NULL parameter holds `ulParameterLen` bytes.
unsafe fn read_mechanism(
    mechanism: *const CK_MECHANISM,
) -> CkResult<Option<(CK_MECHANISM_TYPE, Vec<u8>)>> {
    if mechanism.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, valid for reads.
    let m = unsafe { mechanism.read() };
    if m.ulParameterLen > MAX_MECHANISM_PARAMETER
        || (m.pParameter.is_null() && m.ulParameterLen != 0)
    {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    // SAFETY: the caller guarantees `ulParameterLen` readable bytes at a non-NULL `pParameter`.
    let param = unsafe { input(m.pParameter as *const u8, m.ulParameterLen)? };
    Ok(Some((m.mechanism, param.to_vec())))
}
