//! Creating, copying and destroying objects: `C_CreateObject`, `C_CopyObject`, `C_DestroyObject`.

use std::sync::Arc;

use cryptoki_sys::*;
use vhsm_core::{KeyId, ObjectId};

use crate::attributes::{AttributeSet, Template};
use crate::client::Bridge;
use crate::key_objects::{public_object_as_stored, without_public_object, KeyObjectKind};
use crate::objects::{KeyBinding, ObjectRef, SessionObject};
use crate::policy::{check_key_update, check_object_update, object_request};
use crate::state::with_module;
use crate::CkResult;

fn store(bridge: &Bridge, attributes: &AttributeSet) -> CkResult<CK_OBJECT_HANDLE> {
    let mut pairs = attributes.clone();
    pairs.remove(CKA_UNIQUE_ID);
    let stored = bridge.create_object(pairs.to_pairs())?;
    with_module(|m| Ok(m.objects.put_stored(stored)))
}

/// `C_CreateObject`: certificates, data objects and EC/Ed25519 public keys; token objects are stored by the
/// cluster, session objects kept in the module.
pub fn create_object(
    session: CK_SESSION_HANDLE,
    template: &Template,
) -> CkResult<CK_OBJECT_HANDLE> {
    let request = object_request(template)?;
    let bridge = with_module(|m| {
        let user = m.user_logged_in();
        let rw = m.session(session)?.rw;
        if request.attributes.get_bool(CKA_PRIVATE) == Some(true) && !user {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        if !request.token {
            let handle = m.objects.add_session_object(SessionObject {
                session,
                attributes: request.attributes.clone(),
                key: None,
            });
            return Ok(Err(handle));
        }
        if !rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        Ok(Ok(m.bridge()?))
    })?;
    match bridge {
        Err(session_handle) => Ok(session_handle),
        Ok(bridge) => store(&bridge, &request.attributes),
    }
}

/// Checks the template of `C_CopyObject`: the usual attribute changes, plus `CKA_TOKEN` and `CKA_PRIVATE` (a
/// private or secret key stays private).
fn check_copy(key: Option<KeyObjectKind>, changes: &Template) -> CkResult<()> {
    if key.is_some_and(KeyObjectKind::is_secret) && changes.get_bool(CKA_PRIVATE) == Some(false) {
        return Err(CKR_TEMPLATE_INCONSISTENT);
    }
    let rest = changes.without(&[CKA_TOKEN, CKA_PRIVATE]);
    match key {
        Some(kind) => check_key_update(kind, &rest),
        None => check_object_update(&rest),
    }
}

/// `C_CopyObject`. A copy of a key object is a session object that refers to the same cluster key (a token copy
/// would need a second cluster key with the same secret, which the cluster cannot make:
/// `CKR_ACTION_PROHIBITED`). A copy of a certificate or data object is a new object.
pub fn copy_object(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    changes: &Template,
) -> CkResult<CK_OBJECT_HANDLE> {
    let to_store = with_module(|m| {
        let user = m.user_logged_in();
        let rw = m.session(session)?.rw;
        m.visible_object(object)?;
        let mut attributes = m.objects.attributes(object)?;
        if attributes.get_bool(CKA_COPYABLE) == Some(false) {
            return Err(CKR_ACTION_PROHIBITED);
        }
        let binding = match m.objects.get(object)? {
            ObjectRef::Key { key_id, private } => Some(KeyBinding {
                key_id: *key_id,
                private: *private,
                ephemeral: false,
            }),
            ObjectRef::Session(SessionObject { key: Some(b), .. }) => Some(KeyBinding {
                key_id: b.key_id,
                private: b.private,
                ephemeral: false,
            }),
            _ => None,
        };
        let kind = KeyObjectKind::from_class(attributes.get_ulong(CKA_CLASS));
        check_copy(binding.as_ref().and(kind), changes)?;
        for (t, v) in changes.iter() {
            attributes.set(t, v.to_vec());
        }
        attributes.remove(CKA_UNIQUE_ID);
        let token = attributes.get_bool(CKA_TOKEN) == Some(true);
        if attributes.get_bool(CKA_PRIVATE) == Some(true) && !user {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        if !token {
            let handle = m.objects.add_session_object(SessionObject {
                session,
                attributes,
                key: binding,
            });
            return Ok(Err(handle));
        }
        if binding.is_some() {
            return Err(CKR_ACTION_PROHIBITED);
        }
        if !rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        Ok(Ok((m.bridge()?, attributes)))
    })?;
    match to_store {
        Err(session_handle) => Ok(session_handle),
        Ok((bridge, attributes)) => store(&bridge, &attributes),
    }
}

enum Destruction {
    /// Destroy the key on the cluster; keep its public-key object as this stored object, if any.
    Key(Arc<Bridge>, KeyId, Option<Vec<(u64, Vec<u8>)>>),
    /// Destroy only the public-key object of a key pair: the key's new attributes (see
    /// [`crate::key_objects::without_public_object`]).
    PublicObject(Arc<Bridge>, KeyId, String, Vec<(u64, Vec<u8>)>),
    Object(Arc<Bridge>, ObjectId),
    Done,
}

/// `C_DestroyObject`: destroys the named object only, as a soft token does.
///
/// - The private-key (or split-AES secret-key) object of a cluster key destroys the key: its shares on every node.
///   The public-key object of a token key pair lives on as a stored public-key object with the same attributes
///   (and, in this application, the same handle); an application can still find it, read it and verify with it.
///   If storing it fails after the key was destroyed (the coordinator became unreachable in between), the key is
///   still destroyed and the public-key object goes with it (logged).
/// - The public-key object of a key pair goes alone: the private key stays and keeps signing. The module marks the
///   key ([`crate::key_objects::CKA_VHSM_PUBLIC_OBJECT_DESTROYED`], through `update_key`), so that the object is
///   gone for every application, also after the module is loaded again.
/// - Either object of a session key pair: the private one destroys the key on the cluster and leaves the public
///   one as a plain session public key; the public one goes alone.
/// - A session copy of a key object only goes itself; a stored object is destroyed on the cluster.
///
/// The same rules as for any change of a key: `CKA_DESTROYABLE` false is `CKR_ACTION_PROHIBITED` (the object's
/// own; `CKA_MODIFIABLE` does not matter: marking the key is not an application's change), the user must be logged
/// in, and a read-only session may destroy only objects of token keys it generated itself (see [`crate::keygen`]),
/// including their public-key objects kept as stored objects (OpenSC's `pkcs11-tool --test-ec` destroys the private
/// key, then the public key, in the read-only session that generated them).
/// Once an object is destroyed, its handle is `CKR_OBJECT_HANDLE_INVALID`.
pub fn destroy_object(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CkResult<()> {
    let destruction = with_module(|m| {
        let user = m.user_logged_in();
        let rw = m.session(session)?.rw;
        let generated_here = m.session(session)?.generated_read_only.clone();
        m.visible_object(object)?;
        if m.objects.attributes(object)?.get_bool(CKA_DESTROYABLE) == Some(false) {
            return Err(CKR_ACTION_PROHIBITED);
        }
        match m.objects.get(object)?.clone() {
            ObjectRef::Key { key_id, private } => {
                // A read-only session may destroy only the token keys it generated itself (see `keygen`).
                if !rw && !generated_here.contains(&key_id) {
                    return Err(CKR_SESSION_READ_ONLY);
                }
                if !user {
                    return Err(CKR_USER_NOT_LOGGED_IN);
                }
                let info = m.objects.key(&key_id).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
                if private {
                    let public = public_object_as_stored(info);
                    Ok(Destruction::Key(m.bridge()?, key_id, public))
                } else {
                    let (label, stored) = (info.label.clone(), without_public_object(info));
                    Ok(Destruction::PublicObject(
                        m.bridge()?,
                        key_id,
                        label,
                        stored,
                    ))
                }
            }
            ObjectRef::Stored(id) => {
                // Nor may it destroy other token objects, but the public-key objects kept from those keys.
                let kept_from_own_key = m
                    .objects
                    .kept_from_key(&id)
                    .is_some_and(|key_id| generated_here.contains(&key_id));
                if !rw && !kept_from_own_key {
                    return Err(CKR_SESSION_READ_ONLY);
                }
                Ok(Destruction::Object(m.bridge()?, id))
            }
            ObjectRef::Session(SessionObject { key: Some(b), .. }) if b.ephemeral && b.private => {
                Ok(Destruction::Key(m.bridge()?, b.key_id, None))
            }
            ObjectRef::Session(_) => {
                m.objects.remove_session_object(object);
                Ok(Destruction::Done)
            }
        }
    })?;
    match destruction {
        Destruction::Key(bridge, key_id, public) => {
            let public = match bridge.destroy_key(key_id) {
                Ok(()) => public,
                // Already gone (destroyed by another application, which kept the public-key object): the objects
                // here go.
                Err(CKR_OBJECT_HANDLE_INVALID) => None,
                Err(rv) => return Err(rv),
            };
            tracing::debug!(%key_id, "key destroyed");
            let kept = public.and_then(|attributes| match bridge.create_object(attributes) {
                Ok(stored) => Some(stored),
                Err(rv) => {
                    tracing::warn!(%key_id, rv, "key destroyed, but its public-key object could not be kept");
                    None
                }
            });
            with_module(|m| {
                m.objects.remove_key(key_id, kept);
                Ok(())
            })
        }
        Destruction::PublicObject(bridge, key_id, label, stored) => {
            let info = bridge.update_key(key_id, label, stored)?;
            tracing::debug!(%key_id, "public-key object destroyed; the private key stays");
            with_module(|m| {
                m.objects.put_key(info);
                Ok(())
            })
        }
        Destruction::Object(bridge, id) => {
            match bridge.destroy_object(id) {
                Ok(()) | Err(CKR_OBJECT_HANDLE_INVALID) => {}
                Err(rv) => return Err(rv),
            }
            with_module(|m| {
                m.objects.remove_stored(id);
                Ok(())
            })
        }
        Destruction::Done => Ok(()),
    }
}
