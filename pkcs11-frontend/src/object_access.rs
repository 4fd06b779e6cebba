//! Finding and reading objects, and changing their attributes: `C_FindObjectsInit`, `C_FindObjects`,
//! `C_FindObjectsFinal`, `C_GetAttributeValue`, `C_SetAttributeValue`, `C_GetObjectSize`.

use std::collections::VecDeque;
use std::sync::Arc;

use cryptoki_sys::*;
use vhsm_core::{KeyId, ObjectId};

use crate::attributes::{
    answer_requests, to_native, AttributeAnswer, AttributeRequest, Lookup, Template,
};
use crate::client::Bridge;
use crate::key_objects::{is_sensitive, updated_key_attributes, KeyObjectKind};
use crate::objects::ObjectRef;
use crate::policy::{check_key_update, check_object_update};
use crate::state::with_module;
use crate::CkResult;

/// Asks the cluster for its keys and objects and refreshes the module's cache.
pub fn refresh(bridge: &Bridge) -> CkResult<()> {
    let keys = bridge.list_keys()?;
    let objects = bridge.list_objects()?;
    with_module(|m| {
        m.objects.sync(keys, objects);
        Ok(())
    })
}

/// `C_FindObjectsInit`: the search runs now (one listing from the cluster, unless the template asks for session
/// objects only); `C_FindObjects` hands out the results.
pub fn find_init(session: CK_SESSION_HANDLE, template: &Template) -> CkResult<()> {
    let bridge = with_module(|m| {
        if m.session(session)?.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        m.bridge()
    })?;
    if template.get_bool(CKA_TOKEN) != Some(false) {
        refresh(&bridge)?;
    }
    with_module(|m| {
        let user = m.user_logged_in();
        let found: VecDeque<CK_OBJECT_HANDLE> = m
            .objects
            .live_handles()
            .into_iter()
            .filter(|h| {
                m.objects.attributes(*h).is_ok_and(|a| {
                    (user || a.get_bool(CKA_PRIVATE) != Some(true))
                        && a.matches(template)
                        && !template.iter().any(|(t, _)| is_sensitive(&a, t))
                })
            })
            .collect();
        let s = m.session(session)?;
        if s.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        tracing::debug!(found = found.len(), "objects found");
        s.find = Some(found);
        Ok(())
    })
}

/// `C_FindObjects`: up to `max` more handles.
pub fn find(session: CK_SESSION_HANDLE, max: usize) -> CkResult<Vec<CK_OBJECT_HANDLE>> {
    with_module(|m| {
        let found = m
            .session(session)?
            .find
            .as_mut()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let n = max.min(found.len());
        Ok(found.drain(..n).collect())
    })
}

/// `C_FindObjectsFinal`.
pub fn find_final(session: CK_SESSION_HANDLE) -> CkResult<()> {
    with_module(|m| {
        m.session(session)?
            .find
            .take()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok(())
    })
}

/// `C_GetAttributeValue`: the answers for each template entry and the return value (see
/// [`crate::attributes::answer_requests`]).
pub fn get_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    requests: &[AttributeRequest],
) -> CkResult<(Vec<AttributeAnswer>, CK_RV)> {
    with_module(|m| {
        m.session(session)?;
        m.visible_object(object)?;
        let attributes = m.objects.attributes(object)?;
        Ok(answer_requests(requests, |t| {
            if is_sensitive(&attributes, t) {
                Lookup::Sensitive
            } else {
                attributes
                    .get(t)
                    .map_or(Lookup::Invalid, |v| Lookup::Value(to_native(t, v)))
            }
        }))
    })
}

/// `C_GetObjectSize`: not meaningful for objects that live on a cluster; `CK_UNAVAILABLE_INFORMATION`.
pub fn object_size(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CkResult<CK_ULONG> {
    with_module(|m| {
        m.session(session)?;
        m.visible_object(object)?;
        Ok(CK_UNAVAILABLE_INFORMATION)
    })
}

enum Change {
    Key(Arc<Bridge>, KeyId, String, Vec<(u64, Vec<u8>)>),
    Object(Arc<Bridge>, ObjectId, Vec<(u64, Vec<u8>)>),
    Done,
}

/// `C_SetAttributeValue`. On a cluster key `CKA_LABEL` and `CKA_ID` change both of its objects.
pub fn set_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    changes: &Template,
) -> CkResult<()> {
    let change = with_module(|m| {
        let user = m.user_logged_in();
        let rw = m.session(session)?.rw;
        m.visible_object(object)?;
        let attributes = m.objects.attributes(object)?;
        if attributes.get_bool(CKA_MODIFIABLE) == Some(false) {
            return Err(CKR_ACTION_PROHIBITED);
        }
        let pairs: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> =
            changes.iter().map(|(t, v)| (t, v.to_vec())).collect();
        match m.objects.get(object)?.clone() {
            ObjectRef::Key { key_id, .. } => {
                if !rw {
                    return Err(CKR_SESSION_READ_ONLY);
                }
                if !user {
                    return Err(CKR_USER_NOT_LOGGED_IN);
                }
                let kind = KeyObjectKind::from_class(attributes.get_ulong(CKA_CLASS))
                    .ok_or(CKR_OBJECT_HANDLE_INVALID)?;
                check_key_update(kind, changes)?;
                let info = m.objects.key(&key_id).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
                let (label, stored) = updated_key_attributes(info, kind, &pairs);
                Ok(Change::Key(m.bridge()?, key_id, label, stored))
            }
            ObjectRef::Stored(id) => {
                if !rw {
                    return Err(CKR_SESSION_READ_ONLY);
                }
                check_object_update(changes)?;
                let stored = m.objects.stored(&id).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
                let mut updated = stored.attributes.clone();
                for (t, v) in pairs {
                    updated.retain(|(existing, _)| *existing != t);
                    updated.push((t, v));
                }
                Ok(Change::Object(m.bridge()?, id, updated))
            }
            ObjectRef::Session(session_object) => {
                match KeyObjectKind::from_class(attributes.get_ulong(CKA_CLASS)) {
                    Some(kind) if session_object.key.is_some() => check_key_update(kind, changes)?,
                    _ => check_object_update(changes)?,
                }
                if let ObjectRef::Session(o) = m.objects.get_mut(object)? {
                    for (t, v) in pairs {
                        o.attributes.set(t, v);
                    }
                }
                Ok(Change::Done)
            }
        }
    })?;
    match change {
        Change::Key(bridge, key_id, label, stored) => {
            let info = bridge.update_key(key_id, label, stored)?;
            with_module(|m| {
                m.objects.put_key(info);
                Ok(())
            })
        }
        Change::Object(bridge, id, attributes) => {
            let stored = bridge.update_object(id, attributes)?;
            with_module(|m| {
                m.objects.put_stored(stored);
                Ok(())
            })
        }
        Change::Done => Ok(()),
    }
}
