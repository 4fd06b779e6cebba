//! The object model and its handles.
//!
//! - Token objects live on the cluster: each key is a private-key and a public-key object (see
//!   [`crate::key_objects`]; a key pair whose public-key object was destroyed is its private-key object only);
//!   certificates, data objects, imported public keys and the public-key objects of destroyed key pairs are stored
//!   objects. The module caches what the last listing said, so that attributes are read without a round trip.
//! - Session objects live in the module only and vanish with their session: objects created with `CKA_TOKEN`
//!   false, copies made by `C_CopyObject` (a copy of a key object refers to the same cluster key), and the objects
//!   of a session key pair (a cluster key that the module destroys when the session closes).
//!
//! Handles are allocated from 1 upwards and never reused while the module is initialised; a token object keeps
//! its handle across listings.

use std::collections::HashMap;

use cryptoki_sys::*;
use vhsm_core::{KeyId, KeyInfo, ObjectId, StoredObject};

use crate::attributes::AttributeSet;
use crate::encoding::{parse_ec_params, parse_ec_point, Curve};
use crate::key_objects::{
    is_token_key, key_object_attributes, object_kind, presentable, public_object_destroyed,
    usable_curve,
};
use crate::policy::fill_object_defaults;
use crate::CkResult;

/// A session object's link to a cluster key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBinding {
    /// The key.
    pub key_id: KeyId,
    /// Whether the object is the private-key object.
    pub private: bool,
    /// Whether the key is a session key (destroyed on the cluster with the session).
    pub ephemeral: bool,
}

/// An object that lives in the module only.
#[derive(Clone, Debug)]
pub struct SessionObject {
    /// The session that owns it.
    pub session: CK_SESSION_HANDLE,
    /// Its attributes (a snapshot, for a copy of a key object).
    pub attributes: AttributeSet,
    /// The cluster key it stands for, if it is a key object.
    pub key: Option<KeyBinding>,
}

/// What a handle refers to.
#[derive(Clone, Debug)]
pub enum ObjectRef {
    /// A cluster key's private-key (`private`) or public-key object.
    Key {
        /// The key.
        key_id: KeyId,
        /// Which of the two objects.
        private: bool,
    },
    /// A certificate, data object or public key stored on the cluster.
    Stored(ObjectId),
    /// A session object.
    Session(SessionObject),
}

/// The key material an operation needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMaterial {
    /// The cluster key, if the object stands for one.
    pub key_id: Option<KeyId>,
    /// The curve.
    pub curve: Curve,
    /// The public key (uncompressed SEC1, or the Ed25519 encoding).
    pub public_key: Vec<u8>,
}

/// Every object handle of the module, and the cache of the cluster's keys and objects.
#[derive(Debug, Default)]
pub struct ObjectTable {
    last_handle: CK_OBJECT_HANDLE,
    by_handle: HashMap<CK_OBJECT_HANDLE, ObjectRef>,
    key_handles: HashMap<(KeyId, bool), CK_OBJECT_HANDLE>,
    stored_handles: HashMap<ObjectId, CK_OBJECT_HANDLE>,
    /// Stored objects that keep the public-key object of a key this application destroyed: the key.
    kept_public: HashMap<ObjectId, KeyId>,
    keys: HashMap<KeyId, KeyInfo>,
    stored: HashMap<ObjectId, StoredObject>,
    listed_keys: Vec<KeyId>,
    listed_stored: Vec<ObjectId>,
}

impl ObjectTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn allocate(&mut self, object: ObjectRef) -> CK_OBJECT_HANDLE {
        self.last_handle += 1;
        self.by_handle.insert(self.last_handle, object);
        self.last_handle
    }

    /// The handle of a key's private-key or public-key object (allocated on first use).
    pub fn key_handle(&mut self, key_id: KeyId, private: bool) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.key_handles.get(&(key_id, private)) {
            return *h;
        }
        let h = self.allocate(ObjectRef::Key { key_id, private });
        self.key_handles.insert((key_id, private), h);
        h
    }

    fn stored_handle(&mut self, id: ObjectId) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.stored_handles.get(&id) {
            return *h;
        }
        let h = self.allocate(ObjectRef::Stored(id));
        self.stored_handles.insert(id, h);
        h
    }

    /// Adds a session object.
    pub fn add_session_object(&mut self, object: SessionObject) -> CK_OBJECT_HANDLE {
        self.allocate(ObjectRef::Session(object))
    }

    /// Records a key (new, or changed), listing it as a token object if it is one. If its public-key object was
    /// destroyed (by this application or another), that object's handle is forgotten: `CKR_OBJECT_HANDLE_INVALID`
    /// from now on.
    pub fn put_key(&mut self, info: KeyInfo) {
        if public_object_destroyed(&info) {
            if let Some(h) = self.key_handles.remove(&(info.id, false)) {
                self.by_handle.remove(&h);
            }
        }
        if is_token_key(&info) && !self.listed_keys.contains(&info.id) {
            self.listed_keys.push(info.id);
        }
        self.keys.insert(info.id, info);
    }

    /// Records a stored object (new, or changed).
    pub fn put_stored(&mut self, object: StoredObject) -> CK_OBJECT_HANDLE {
        let id = object.id;
        if !self.listed_stored.contains(&id) {
            self.listed_stored.push(id);
        }
        self.stored.insert(id, object);
        self.stored_handle(id)
    }

    /// Replaces the cached listing with what the cluster said now. Handles of objects that disappeared stay
    /// valid (an operation on them will fail at the cluster) but are no longer found; the handle of a public-key
    /// object destroyed meanwhile is forgotten (see [`ObjectTable::put_key`]).
    pub fn sync(&mut self, keys: Vec<KeyInfo>, objects: Vec<StoredObject>) {
        self.listed_keys.clear();
        for info in keys {
            if presentable(&info) {
                self.put_key(info);
            }
        }
        self.listed_stored.clear();
        for object in objects.into_iter().filter(|o| !o.destroyed) {
            self.put_stored(object);
        }
    }

    /// A cached key.
    pub fn key(&self, key_id: &KeyId) -> Option<&KeyInfo> {
        self.keys.get(key_id)
    }

    /// A cached stored object.
    pub fn stored(&self, id: &ObjectId) -> Option<&StoredObject> {
        self.stored.get(id)
    }

    /// What a handle refers to.
    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> CkResult<&ObjectRef> {
        self.by_handle.get(&handle).ok_or(CKR_OBJECT_HANDLE_INVALID)
    }

    /// What a handle refers to, to change a session object.
    pub fn get_mut(&mut self, handle: CK_OBJECT_HANDLE) -> CkResult<&mut ObjectRef> {
        self.by_handle
            .get_mut(&handle)
            .ok_or(CKR_OBJECT_HANDLE_INVALID)
    }

    /// Every attribute of an object, canonical.
    pub fn attributes(&self, handle: CK_OBJECT_HANDLE) -> CkResult<AttributeSet> {
        match self.get(handle)? {
            ObjectRef::Key { key_id, private } => self
                .keys
                .get(key_id)
                .and_then(|info| key_object_attributes(info, *private))
                .ok_or(CKR_OBJECT_HANDLE_INVALID),
            ObjectRef::Stored(id) => {
                let object = self.stored.get(id).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
                let mut attributes = AttributeSet::from_pairs(object.attributes.iter().cloned());
                fill_object_defaults(&mut attributes);
                // Whatever was stored, it lives on the token.
                attributes.set(CKA_TOKEN, crate::attributes::boolean(true));
                Ok(attributes)
            }
            ObjectRef::Session(object) => Ok(object.attributes.clone()),
        }
    }

    /// Whether an object is private (visible only to a logged-in user).
    pub fn is_private(&self, handle: CK_OBJECT_HANDLE) -> CkResult<bool> {
        Ok(self.attributes(handle)?.get_bool(CKA_PRIVATE) == Some(true))
    }

    /// The cluster key behind a key object (a token key object, or a session object standing for one).
    pub fn cluster_key(&self, handle: CK_OBJECT_HANDLE) -> CkResult<KeyId> {
        match self.get(handle)? {
            ObjectRef::Key { key_id, .. } => Ok(*key_id),
            ObjectRef::Session(SessionObject {
                key: Some(binding), ..
            }) => Ok(binding.key_id),
            _ => Err(CKR_KEY_HANDLE_INVALID),
        }
    }

    /// The key behind a key object: a cluster key, or (for an imported public key) the key in its attributes.
    pub fn key_material(&self, handle: CK_OBJECT_HANDLE) -> CkResult<KeyMaterial> {
        let cluster_key = match self.get(handle)? {
            ObjectRef::Key { key_id, .. } => Some(*key_id),
            ObjectRef::Session(SessionObject {
                key: Some(binding), ..
            }) => Some(binding.key_id),
            _ => None,
        };
        if let Some(key_id) = cluster_key {
            let info = self.keys.get(&key_id).ok_or(CKR_KEY_HANDLE_INVALID)?;
            let curve = usable_curve(info).ok_or(CKR_KEY_HANDLE_INVALID)?;
            return Ok(KeyMaterial {
                key_id: Some(key_id),
                curve,
                public_key: info.public_key.clone(),
            });
        }
        let attributes = self.attributes(handle)?;
        if attributes.get_ulong(CKA_CLASS) != Some(CKO_PUBLIC_KEY) {
            return Err(CKR_KEY_TYPE_INCONSISTENT);
        }
        let params = attributes
            .get(CKA_EC_PARAMS)
            .ok_or(CKR_KEY_TYPE_INCONSISTENT)?;
        let curve = parse_ec_params(params).map_err(|_| CKR_KEY_TYPE_INCONSISTENT)?;
        let point = attributes
            .get(CKA_EC_POINT)
            .ok_or(CKR_KEY_TYPE_INCONSISTENT)?;
        let public_key = parse_ec_point(curve, point).map_err(|_| CKR_KEY_TYPE_INCONSISTENT)?;
        Ok(KeyMaterial {
            key_id: None,
            curve,
            public_key,
        })
    }

    /// The handles of every object that currently exists: listed token objects and all session objects.
    pub fn live_handles(&mut self) -> Vec<CK_OBJECT_HANDLE> {
        let mut handles = Vec::new();
        for key_id in self.listed_keys.clone() {
            for private in [true, false] {
                let exists = self
                    .keys
                    .get(&key_id)
                    .is_some_and(|info| object_kind(info, private).is_some());
                if exists {
                    handles.push(self.key_handle(key_id, private));
                }
            }
        }
        for id in self.listed_stored.clone() {
            handles.push(self.stored_handle(id));
        }
        let mut session: Vec<CK_OBJECT_HANDLE> = self
            .by_handle
            .iter()
            .filter(|(_, o)| matches!(o, ObjectRef::Session(_)))
            .map(|(h, _)| *h)
            .collect();
        session.sort_unstable();
        handles.extend(session);
        handles
    }

    /// Forgets a destroyed key: its private-key (or secret-key) object and every session object standing for it.
    /// Its public-key object lives on as `public`, if given (the stored object that keeps it, see
    /// [`crate::key_objects::public_object_as_stored`]), under the same handle. Session objects standing for the
    /// public key (the public half of a session key pair, copies of a public-key object) keep their attributes,
    /// no longer bound to the key: public keys like imported ones. Every handle that went is
    /// `CKR_OBJECT_HANDLE_INVALID` from now on.
    pub fn remove_key(&mut self, key_id: KeyId, public: Option<StoredObject>) {
        self.keys.remove(&key_id);
        self.listed_keys.retain(|k| *k != key_id);
        if let Some(h) = self.key_handles.remove(&(key_id, true)) {
            self.by_handle.remove(&h);
        }
        let public_handle = self.key_handles.remove(&(key_id, false));
        if let Some(h) = public_handle {
            self.by_handle.remove(&h);
        }
        if let Some(object) = public {
            self.kept_public.insert(object.id, key_id);
            if let Some(h) = public_handle.filter(|_| !self.stored_handles.contains_key(&object.id))
            {
                self.by_handle.insert(h, ObjectRef::Stored(object.id));
                self.stored_handles.insert(object.id, h);
            }
            self.put_stored(object);
        }
        self.by_handle.retain(|_, o| {
            let ObjectRef::Session(s) = o else {
                return true;
            };
            match s
                .key
                .as_ref()
                .filter(|b| b.key_id == key_id)
                .map(|b| b.private)
            {
                Some(true) => false,
                Some(false) => {
                    s.key = None;
                    true
                }
                None => true,
            }
        });
    }

    /// The key whose public-key object the stored object keeps, if the key was destroyed by this application.
    pub fn kept_from_key(&self, id: &ObjectId) -> Option<KeyId> {
        self.kept_public.get(id).copied()
    }

    /// Forgets a stored object.
    pub fn remove_stored(&mut self, id: ObjectId) {
        self.kept_public.remove(&id);
        self.stored.remove(&id);
        self.listed_stored.retain(|o| *o != id);
        if let Some(h) = self.stored_handles.remove(&id) {
            self.by_handle.remove(&h);
        }
    }

    /// Removes one session object.
    pub fn remove_session_object(&mut self, handle: CK_OBJECT_HANDLE) {
        if matches!(self.by_handle.get(&handle), Some(ObjectRef::Session(_))) {
            self.by_handle.remove(&handle);
        }
    }

    /// Removes the session objects of `session`, or of every session; returns the session keys to destroy on the
    /// cluster.
    pub fn remove_session_objects(&mut self, session: Option<CK_SESSION_HANDLE>) -> Vec<KeyId> {
        let mut ephemeral = Vec::new();
        self.by_handle.retain(|_, o| match o {
            ObjectRef::Session(s) if session.is_none_or(|h| h == s.session) => {
                if let Some(b) = s.key.as_ref().filter(|b| b.ephemeral) {
                    if !ephemeral.contains(&b.key_id) {
                        ephemeral.push(b.key_id);
                    }
                }
                false
            }
            _ => true,
        });
        for key_id in &ephemeral {
            self.keys.remove(key_id);
        }
        ephemeral
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::attributes::{boolean, ulong};
    use crate::key_objects::{public_object_as_stored, sample_key, without_public_object};
    use vhsm_core::Algorithm;

    #[test]
    fn handles_are_stable_and_never_reused() {
        let mut t = ObjectTable::new();
        let key = sample_key(Algorithm::EcdsaP256);
        t.sync(vec![key.clone()], vec![]);
        let live = t.live_handles();
        assert_eq!(live.len(), 2);
        let private = t.key_handle(key.id, true);
        assert_eq!(
            t.key_handle(key.id, true),
            private,
            "same handle on every listing"
        );
        t.sync(vec![key.clone()], vec![]);
        assert_eq!(t.live_handles(), live);
        let s = t.add_session_object(SessionObject {
            session: 7,
            attributes: AttributeSet::from_pairs([(CKA_CLASS, ulong(CKO_DATA))]),
            key: None,
        });
        assert!(s > live.iter().copied().max().unwrap());
        assert_eq!(t.remove_session_objects(Some(7)), Vec::<KeyId>::new());
        assert_eq!(t.get(s).err(), Some(CKR_OBJECT_HANDLE_INVALID));
        let s2 = t.add_session_object(SessionObject {
            session: 7,
            attributes: AttributeSet::new(),
            key: None,
        });
        assert!(s2 > s, "handles are never reused");
        // A key that disappears from the listing keeps its handle but is not live.
        t.sync(vec![], vec![]);
        assert_eq!(t.live_handles(), vec![s2]);
        assert!(t.get(private).is_ok());
        t.remove_key(key.id, None);
        assert_eq!(t.get(private).err(), Some(CKR_OBJECT_HANDLE_INVALID));
    }

    #[test]
    fn a_destroyed_public_object_goes_alone_for_good() {
        let mut t = ObjectTable::new();
        let key = sample_key(Algorithm::EcdsaP256);
        t.sync(vec![key.clone()], vec![]);
        let private = t.key_handle(key.id, true);
        let public = t.key_handle(key.id, false);
        // The key as `update_key` returns it after the public-key object was destroyed.
        let mut marked = key.clone();
        marked.attributes = without_public_object(&key);
        marked.revision += 1;
        t.put_key(marked.clone());
        assert_eq!(t.get(public).err(), Some(CKR_OBJECT_HANDLE_INVALID));
        assert_eq!(t.attributes(public).err(), Some(CKR_OBJECT_HANDLE_INVALID));
        assert_eq!(
            t.key_material(public).err(),
            Some(CKR_OBJECT_HANDLE_INVALID)
        );
        assert_eq!(t.live_handles(), vec![private]);
        assert_eq!(t.key_material(private).unwrap().key_id, Some(key.id));
        // Every later listing, here or in a module loaded afresh (another application), says the same.
        t.sync(vec![marked.clone()], vec![]);
        assert_eq!(t.live_handles(), vec![private]);
        let mut fresh = ObjectTable::new();
        fresh.sync(vec![marked], vec![]);
        let live = fresh.live_handles();
        assert_eq!(live.len(), 1);
        assert_eq!(
            fresh.attributes(live[0]).unwrap().get_ulong(CKA_CLASS),
            Some(CKO_PRIVATE_KEY)
        );
    }

    #[test]
    fn a_destroyed_key_leaves_its_public_object() {
        let mut t = ObjectTable::new();
        let key = sample_key(Algorithm::Ed25519);
        t.sync(vec![key.clone()], vec![]);
        let private = t.key_handle(key.id, true);
        let public = t.key_handle(key.id, false);
        let before = t.attributes(public).unwrap();
        let copy = |t: &mut ObjectTable, handle, private, ephemeral| {
            let attributes = t.attributes(handle).unwrap();
            t.add_session_object(SessionObject {
                session: 4,
                attributes,
                key: Some(KeyBinding {
                    key_id: key.id,
                    private,
                    ephemeral,
                }),
            })
        };
        let private_copy = copy(&mut t, private, true, false);
        let public_copy = copy(&mut t, public, false, true);
        let id = ObjectId([9; 16]);
        let kept = StoredObject {
            id,
            version: 1,
            destroyed: false,
            attributes: public_object_as_stored(&key).unwrap(),
        };
        t.remove_key(key.id, Some(kept));
        // The private-key object and its copies are gone.
        assert_eq!(t.get(private).err(), Some(CKR_OBJECT_HANDLE_INVALID));
        assert_eq!(t.get(private_copy).err(), Some(CKR_OBJECT_HANDLE_INVALID));
        // The public-key object lives on, same handle, same attributes, usable to verify.
        assert!(matches!(t.get(public), Ok(ObjectRef::Stored(s)) if *s == id));
        assert_eq!(t.attributes(public).unwrap(), before);
        let m = t.key_material(public).unwrap();
        assert_eq!(
            (m.key_id, m.curve, &m.public_key),
            (None, Curve::Ed25519, &key.public_key)
        );
        assert_eq!(t.kept_from_key(&id), Some(key.id));
        // So does a session object standing for the public key, no longer bound to the key.
        assert_eq!(t.key_material(public_copy).unwrap().key_id, None);
        assert_eq!(t.cluster_key(public_copy), Err(CKR_KEY_HANDLE_INVALID));
        assert_eq!(t.live_handles(), vec![public, public_copy]);
        assert_eq!(
            t.remove_session_objects(Some(4)),
            Vec::<KeyId>::new(),
            "the key is not destroyed twice"
        );
        t.remove_stored(id);
        assert_eq!(t.get(public).err(), Some(CKR_OBJECT_HANDLE_INVALID));
        assert_eq!(t.kept_from_key(&id), None);
        // A key destroyed without a kept public-key object (none, or it could not be stored): both handles go.
        let key = sample_key(Algorithm::EcdsaSecp256k1);
        t.sync(vec![key.clone()], vec![]);
        let handles = [t.key_handle(key.id, true), t.key_handle(key.id, false)];
        t.remove_key(key.id, None);
        for h in handles {
            assert_eq!(t.get(h).err(), Some(CKR_OBJECT_HANDLE_INVALID));
        }
        assert!(t.live_handles().is_empty());
    }

    #[test]
    fn a_split_aes_key_is_one_secret_key_object() {
        let mut t = ObjectTable::new();
        let key = sample_key(Algorithm::SplitAes256);
        t.sync(vec![key.clone()], vec![]);
        let live = t.live_handles();
        assert_eq!(live, vec![t.key_handle(key.id, true)]);
        let a = t.attributes(live[0]).unwrap();
        assert_eq!(a.get_ulong(CKA_CLASS), Some(CKO_SECRET_KEY));
        assert_eq!(t.cluster_key(live[0]), Ok(key.id));
        assert_eq!(t.key_material(live[0]), Err(CKR_KEY_HANDLE_INVALID));
    }

    #[test]
    fn key_material_and_privacy() {
        let mut t = ObjectTable::new();
        let key = sample_key(Algorithm::Ed25519);
        t.sync(vec![key.clone()], vec![]);
        let private = t.key_handle(key.id, true);
        let public = t.key_handle(key.id, false);
        assert!(t.is_private(private).unwrap());
        assert!(!t.is_private(public).unwrap());
        let m = t.key_material(public).unwrap();
        assert_eq!((m.key_id, m.curve), (Some(key.id), Curve::Ed25519));
        // A session copy refers to the same key; an ephemeral one is reported for destruction.
        let copy = t.add_session_object(SessionObject {
            session: 3,
            attributes: t.attributes(private).unwrap(),
            key: Some(KeyBinding {
                key_id: key.id,
                private: true,
                ephemeral: true,
            }),
        });
        assert_eq!(t.key_material(copy).unwrap().key_id, Some(key.id));
        assert_eq!(t.remove_session_objects(None), vec![key.id]);
        // Stored objects are token objects with defaults.
        let stored = StoredObject {
            id: ObjectId([1; 16]),
            version: 1,
            destroyed: false,
            attributes: vec![(CKA_CLASS, ulong(CKO_DATA))],
        };
        let h = t.put_stored(stored);
        let a = t.attributes(h).unwrap();
        assert_eq!(a.get(CKA_TOKEN), Some(&boolean(true)[..]));
        assert_eq!(a.get(CKA_APPLICATION), Some(&[][..]));
        assert_eq!(t.key_material(h), Err(CKR_KEY_TYPE_INCONSISTENT));
    }
}
