//! Object management functions.

use cryptoki_sys::*;

use super::{entry, read_template, rv, to_usize, write};
use crate::attributes::{AttributeAnswer, AttributeRequest};
use crate::state::ensure_initialized;
use crate::{object_access, object_lifecycle};

/// `C_CreateObject`: certificates, data objects, EC/Ed25519 public keys.
///
/// # Safety
/// `template` holds `count` attributes (or is NULL with `count` 0); `object` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_CreateObject(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_CreateObject", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if object.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: the caller's contract for the template; `object` is non-NULL.
        rv(unsafe { read_template(template, count) }
            .and_then(|t| object_lifecycle::create_object(session, &t))
            .and_then(|h| unsafe { write(object, h) }))
    })
}

/// `C_CopyObject`: a copy of a key object is a session object using the same cluster key.
///
/// # Safety
/// `template` holds `count` attributes (or is NULL with `count` 0); `new_object` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_CopyObject(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    new_object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_CopyObject", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if new_object.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: the caller's contract for the template; `new_object` is non-NULL.
        rv(unsafe { read_template(template, count) }
            .and_then(|t| object_lifecycle::copy_object(session, object, &t))
            .and_then(|h| unsafe { write(new_object, h) }))
    })
}

/// `C_DestroyObject`: destroys the named object only. A private-key (or secret-key) object destroys the key on
/// every node, and the key pair's public-key object lives on as a stored public key; a public-key object goes
/// alone, for every application, and the private key keeps signing. A destroyed object's handle is
/// `CKR_OBJECT_HANDLE_INVALID` (see `object_lifecycle::destroy_object`).
///
/// # Safety
/// No pointers.
#[no_mangle]
pub unsafe extern "C" fn C_DestroyObject(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_DestroyObject", || {
        rv(object_lifecycle::destroy_object(session, object))
    })
}

/// `C_GetObjectSize`: `CK_UNAVAILABLE_INFORMATION`.
///
/// # Safety
/// `size` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetObjectSize", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if size.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL; the caller's contract.
        rv(object_access::object_size(session, object).and_then(|s| unsafe { write(size, s) }))
    })
}

/// `C_GetAttributeValue`, with the standard length-query protocol: a NULL `pValue` gets the length; a short
/// buffer `CK_UNAVAILABLE_INFORMATION` and `CKR_BUFFER_TOO_SMALL`; a private key's `CKA_VALUE`
/// `CKR_ATTRIBUTE_SENSITIVE`; an attribute the object lacks `CKR_ATTRIBUTE_TYPE_INVALID`.
///
/// # Safety
/// `template` holds `count` attributes whose non-NULL `pValue` holds `ulValueLen` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    entry("C_GetAttributeValue", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        let attributes: &mut [CK_ATTRIBUTE] = if count == 0 {
            &mut []
        } else if template.is_null() || count > super::MAX_TEMPLATE_LEN {
            return CKR_ARGUMENTS_BAD;
        } else {
            match to_usize(count) {
                // SAFETY: non-NULL, `count` elements (caller's contract).
                Ok(n) => unsafe { std::slice::from_raw_parts_mut(template, n) },
                Err(e) => return e,
            }
        };
        let requests: Vec<AttributeRequest> = attributes
            .iter()
            .map(|a| AttributeRequest {
                attribute: a.type_,
                capacity: (!a.pValue.is_null())
                    .then(|| usize::try_from(a.ulValueLen).unwrap_or(usize::MAX)),
            })
            .collect();
        let (answers, code) = match object_access::get_attribute_value(session, object, &requests) {
            Ok(result) => result,
            Err(e) => return e,
        };
        for (a, answer) in attributes.iter_mut().zip(answers) {
            a.ulValueLen = match answer {
                AttributeAnswer::Length(n) => n as CK_ULONG,
                AttributeAnswer::Unavailable => CK_UNAVAILABLE_INFORMATION,
                AttributeAnswer::Copy(value) => {
                    // SAFETY: `pValue` is non-NULL (a Copy answer needs a capacity) and holds `ulValueLen >=
                    // value.len()` bytes; our vector does not overlap it.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            value.as_ptr(),
                            a.pValue as *mut u8,
                            value.len(),
                        )
                    };
                    value.len() as CK_ULONG
                }
            };
        }
        code
    })
}

/// `C_SetAttributeValue`.
///
/// # Safety
/// `template` holds `count` attributes (or is NULL with `count` 0).
#[no_mangle]
pub unsafe extern "C" fn C_SetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    entry("C_SetAttributeValue", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract for the template.
        rv(unsafe { read_template(template, count) }
            .and_then(|t| object_access::set_attribute_value(session, object, &t)))
    })
}

/// `C_FindObjectsInit`: lists the cluster's keys and objects once and keeps the matches.
///
/// # Safety
/// `template` holds `count` attributes (or is NULL with `count` 0).
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    entry("C_FindObjectsInit", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        // SAFETY: the caller's contract for the template.
        rv(unsafe { read_template(template, count) }
            .and_then(|t| object_access::find_init(session, &t)))
    })
}

/// `C_FindObjects`.
///
/// # Safety
/// `objects` holds `max` handles; `found` is valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    found: *mut CK_ULONG,
) -> CK_RV {
    entry("C_FindObjects", || {
        if let Err(e) = ensure_initialized() {
            return e;
        }
        if found.is_null() || (objects.is_null() && max > 0) {
            return CKR_ARGUMENTS_BAD;
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        match object_access::find(session, max) {
            Ok(handles) => {
                if !handles.is_empty() {
                    // SAFETY: `objects` is non-NULL (max > 0) and holds `max >= handles.len()` handles.
                    unsafe {
                        std::ptr::copy_nonoverlapping(handles.as_ptr(), objects, handles.len())
                    };
                }
                // SAFETY: non-NULL; the caller's contract.
                rv(unsafe { write(found, handles.len() as CK_ULONG) })
            }
            Err(e) => e,
        }
    })
}

/// `C_FindObjectsFinal`.
///
/// # Safety
/// No pointers.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_FindObjectsFinal", || {
        rv(object_access::find_final(session))
    })
}
