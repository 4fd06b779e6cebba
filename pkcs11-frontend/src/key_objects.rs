//! How a cluster key appears to PKCS#11, and how its application-set attributes are kept in the key's
//! `attributes` on the cluster.
//!
//! A signing key (Ed25519, ECDSA) is a private-key object and a public-key object; a split-AES key is one secret-key
//! object (key type [`CKK_VHSM_SPLIT_AES`]), which takes the private-key object's place (handle slot and attribute
//! namespace).
//!
//! Stored attribute types (u64 on the wire, canonical values as in [`crate::attributes`]):
//! - below 2³²: shared by both objects — `CKA_ID`, `CKA_EC_PARAMS` (the encoding the application generated the key
//!   with, when it is not the canonical OID), `CKA_TOKEN` (false for a session key);
//! - [`NS_PRIVATE`]` | type`: an attribute of the private-key (or secret-key) object only (e.g. `CKA_SIGN`,
//!   `CKA_DECRYPT`, `CKA_SUBJECT`);
//! - [`NS_PUBLIC`]` | type`: an attribute of the public-key object only (e.g. `CKA_VERIFY`, `CKA_PRIVATE`).
//!
//! `CKA_LABEL` is the key's label. A key without a stored `CKA_ID` (made with the `vhsm` CLI) gets its 16-byte key
//! id as `CKA_ID`. Everything else is derived from the key: class, key type, curve, point, and the fixed policy
//! (private and secret keys are always sensitive and never extractable: their value exists nowhere).
//!
//! One stored attribute is the module's own, never an application's: [`CKA_VHSM_PUBLIC_OBJECT_DESTROYED`]
//! (`CKA_VENDOR_DEFINED | 0x564801` = `0x80564801`, shared namespace, value `CK_TRUE`) says that the key pair's
//! public-key object was destroyed (`C_DestroyObject` on it) while the private key lives on: the key then has no
//! public-key object, for every application. No template or `C_SetAttributeValue` can set or clear it (it is not
//! storable: `CKR_ATTRIBUTE_TYPE_INVALID`), and no object shows it.

use cryptoki_sys::*;
use vhsm_core::{Algorithm, KeyInfo};

use crate::attributes::{boolean, ulong, AttributeSet};
use crate::encoding::{ec_point, subject_public_key_info, Curve};
use crate::mechanisms::{CKK_VHSM_SPLIT_AES, CKM_VHSM_SPLIT_AES_KEY_GEN};

/// Namespace of the private-key (or secret-key) object's own stored attributes.
pub const NS_PRIVATE: u64 = 1 << 32;
/// Namespace of the public-key object's own stored attributes.
pub const NS_PUBLIC: u64 = 2 << 32;
const NS_MASK: u64 = 0xffff_ffff;

/// Stored shared attribute (`CKA_VENDOR_DEFINED | 0x564801`, vHSM's vendor prefix "VH"): the key pair's public-key
/// object was destroyed; the private key lives on. Set by the module only (see [`without_public_object`]).
pub const CKA_VHSM_PUBLIC_OBJECT_DESTROYED: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x0056_4801;

/// Which object of a cluster key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyObjectKind {
    /// The private-key object of a signing key.
    Private,
    /// The public-key object of a signing key.
    Public,
    /// The secret-key object of a split-AES key.
    Secret,
}

impl KeyObjectKind {
    /// The kind of a key object with this `CKA_CLASS`; `None` if it is not a key object.
    pub fn from_class(class: Option<CK_OBJECT_CLASS>) -> Option<Self> {
        match class? {
            CKO_PRIVATE_KEY => Some(KeyObjectKind::Private),
            CKO_PUBLIC_KEY => Some(KeyObjectKind::Public),
            CKO_SECRET_KEY => Some(KeyObjectKind::Secret),
            _ => None,
        }
    }

    /// The namespace tag of the object's own stored attributes.
    pub fn namespace(self) -> u64 {
        match self {
            KeyObjectKind::Private | KeyObjectKind::Secret => NS_PRIVATE,
            KeyObjectKind::Public => NS_PUBLIC,
        }
    }

    /// Whether the object's value is secret (sensitive, never extractable, `CKA_PRIVATE` always true).
    pub fn is_secret(self) -> bool {
        self != KeyObjectKind::Public
    }
}

/// The attributes an application may set on a key object (in a generation template or with
/// `C_SetAttributeValue`) that are kept per object.
pub fn is_storable(kind: KeyObjectKind, attribute: CK_ATTRIBUTE_TYPE) -> bool {
    let common = matches!(
        attribute,
        CKA_START_DATE | CKA_END_DATE | CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE
    );
    let own = match kind {
        KeyObjectKind::Private => matches!(
            attribute,
            CKA_SUBJECT | CKA_DERIVE | CKA_SIGN | CKA_SIGN_RECOVER | CKA_DECRYPT | CKA_UNWRAP
        ),
        KeyObjectKind::Public => matches!(
            attribute,
            CKA_SUBJECT
                | CKA_DERIVE
                | CKA_VERIFY
                | CKA_VERIFY_RECOVER
                | CKA_ENCRYPT
                | CKA_WRAP
                | CKA_PRIVATE
        ),
        KeyObjectKind::Secret => matches!(attribute, CKA_ENCRYPT | CKA_DECRYPT),
    };
    common || own
}

/// Whether the key is a split-AES key (one secret-key object) rather than a key pair.
pub fn is_secret_key(info: &KeyInfo) -> bool {
    info.algorithm == Algorithm::SplitAes256
}

/// Whether the module can present the key: it is complete (a key still being generated has no public key) and of
/// an algorithm the module knows.
pub fn presentable(info: &KeyInfo) -> bool {
    if is_secret_key(info) {
        !info.public_key.is_empty()
    } else {
        usable_curve(info).is_some()
    }
}

/// Whether the key pair's public-key object was destroyed (see [`CKA_VHSM_PUBLIC_OBJECT_DESTROYED`]).
pub fn public_object_destroyed(info: &KeyInfo) -> bool {
    shared(info, CKA_VHSM_PUBLIC_OBJECT_DESTROYED).is_some_and(|v| v.iter().any(|b| *b != 0))
}

/// The key's stored attributes once its public-key object is destroyed: what they were, plus
/// [`CKA_VHSM_PUBLIC_OBJECT_DESTROYED`].
pub fn without_public_object(info: &KeyInfo) -> Vec<(u64, Vec<u8>)> {
    let mut stored = info.attributes.clone();
    stored.retain(|(t, _)| *t != CKA_VHSM_PUBLIC_OBJECT_DESTROYED);
    stored.push((CKA_VHSM_PUBLIC_OBJECT_DESTROYED, boolean(true)));
    stored
}

/// The kind of a key's private-key-slot (`private`) or public-key-slot object; `None` if the key has no such
/// object (a split-AES key has no public-key object, nor has a key pair whose public-key object was destroyed) or
/// cannot be presented.
pub fn object_kind(info: &KeyInfo, private: bool) -> Option<KeyObjectKind> {
    if !presentable(info) || (!private && public_object_destroyed(info)) {
        return None;
    }
    match (is_secret_key(info), private) {
        (true, true) => Some(KeyObjectKind::Secret),
        (true, false) => None,
        (false, true) => Some(KeyObjectKind::Private),
        (false, false) => Some(KeyObjectKind::Public),
    }
}

/// The curve of a key, if the module knows how to present it (a key still being generated has no public key).
pub fn usable_curve(info: &KeyInfo) -> Option<Curve> {
    let curve = Curve::from_algorithm(info.algorithm)?;
    (info.public_key.len() == curve.public_key_len()).then_some(curve)
}

/// A stored shared attribute of the key.
pub fn shared(info: &KeyInfo, attribute: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
    info.attributes
        .iter()
        .find(|(t, _)| *t == attribute)
        .map(|(_, v)| v.as_slice())
}

/// Whether the key is a token key (false: a session key pair generated with `CKA_TOKEN` false, which the module
/// destroys when the session closes and never lists as a token object).
pub fn is_token_key(info: &KeyInfo) -> bool {
    shared(info, CKA_TOKEN) != Some(&[0][..])
}

/// `CKA_ID` of the key's objects.
pub fn key_ckid(info: &KeyInfo) -> Vec<u8> {
    shared(info, CKA_ID)
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| info.id.0.to_vec())
}

/// The attributes every key object has, and the application's stored ones of this object.
fn common_key_attributes(info: &KeyInfo, kind: KeyObjectKind, a: &mut AttributeSet) {
    a.set(CKA_TOKEN, boolean(is_token_key(info)));
    a.set(CKA_LABEL, info.label.as_bytes().to_vec());
    a.set(CKA_ID, key_ckid(info));
    a.set(CKA_LOCAL, boolean(true));
    let suffix = match kind {
        KeyObjectKind::Private => "private",
        KeyObjectKind::Public => "public",
        KeyObjectKind::Secret => "secret",
    };
    a.set(CKA_UNIQUE_ID, format!("{}-{suffix}", info.id).into_bytes());
    for attribute in [CKA_START_DATE, CKA_END_DATE] {
        a.set(attribute, Vec::new());
    }
    a.set(CKA_DERIVE, boolean(false));
    for attribute in [CKA_MODIFIABLE, CKA_COPYABLE, CKA_DESTROYABLE] {
        a.set(attribute, boolean(true));
    }
}

/// The application's stored attributes of this object, then the policy, which nothing stored can change.
fn stored_and_policy(info: &KeyInfo, kind: KeyObjectKind, a: &mut AttributeSet) {
    let ns = kind.namespace();
    for (t, v) in &info.attributes {
        if t & !NS_MASK == ns && is_storable(kind, t & NS_MASK) {
            a.set(t & NS_MASK, v.clone());
        }
    }
    if kind.is_secret() {
        for (attribute, value) in [
            (CKA_SENSITIVE, true),
            (CKA_ALWAYS_SENSITIVE, true),
            (CKA_EXTRACTABLE, false),
            (CKA_NEVER_EXTRACTABLE, true),
            (CKA_PRIVATE, true),
        ] {
            a.set(attribute, boolean(value));
        }
    }
}

/// The secret-key object of a split-AES key. There is no `CKA_VALUE` (sensitive) and no `CKA_CHECK_VALUE` (a
/// check value is an encryption under the key, which exists nowhere).
fn secret_key_attributes(info: &KeyInfo) -> AttributeSet {
    let mut a = AttributeSet::new();
    a.set(CKA_CLASS, ulong(CKO_SECRET_KEY));
    a.set(CKA_KEY_TYPE, ulong(CKK_VHSM_SPLIT_AES));
    a.set(CKA_KEY_GEN_MECHANISM, ulong(CKM_VHSM_SPLIT_AES_KEY_GEN));
    common_key_attributes(info, KeyObjectKind::Secret, &mut a);
    a.set(CKA_VALUE_LEN, ulong(32));
    for (attribute, value) in [
        (CKA_ENCRYPT, true),
        (CKA_DECRYPT, true),
        (CKA_SIGN, false),
        (CKA_VERIFY, false),
        (CKA_WRAP, false),
        (CKA_UNWRAP, false),
        (CKA_TRUSTED, false),
        (CKA_WRAP_WITH_TRUSTED, false),
    ] {
        a.set(attribute, boolean(value));
    }
    stored_and_policy(info, KeyObjectKind::Secret, &mut a);
    a
}

/// Every attribute of the private-key-slot (`private`: the private-key or secret-key object) or public-key object
/// of a cluster key, in canonical form. `None` if the key has no such object (see [`object_kind`]).
pub fn key_object_attributes(info: &KeyInfo, private: bool) -> Option<AttributeSet> {
    let kind = object_kind(info, private)?;
    if kind == KeyObjectKind::Secret {
        return Some(secret_key_attributes(info));
    }
    let curve = usable_curve(info)?;
    let mut a = AttributeSet::new();
    a.set(
        CKA_CLASS,
        ulong(if private {
            CKO_PRIVATE_KEY
        } else {
            CKO_PUBLIC_KEY
        }),
    );
    a.set(CKA_KEY_TYPE, ulong(curve.key_type()));
    a.set(CKA_KEY_GEN_MECHANISM, ulong(curve.keygen_mechanism()));
    common_key_attributes(info, kind, &mut a);
    a.set(
        CKA_EC_PARAMS,
        shared(info, CKA_EC_PARAMS)
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| curve.ec_params().to_vec()),
    );
    a.set(
        CKA_PUBLIC_KEY_INFO,
        subject_public_key_info(curve, &info.public_key),
    );
    a.set(CKA_SUBJECT, Vec::new());
    if private {
        a.set(CKA_PRIVATE, boolean(true));
        a.set(CKA_SIGN, boolean(true));
        for attribute in [
            CKA_SIGN_RECOVER,
            CKA_DECRYPT,
            CKA_UNWRAP,
            CKA_ALWAYS_AUTHENTICATE,
            CKA_WRAP_WITH_TRUSTED,
        ] {
            a.set(attribute, boolean(false));
        }
    } else {
        a.set(CKA_PRIVATE, boolean(false));
        a.set(CKA_VERIFY, boolean(true));
        for attribute in [CKA_VERIFY_RECOVER, CKA_ENCRYPT, CKA_WRAP, CKA_TRUSTED] {
            a.set(attribute, boolean(false));
        }
        a.set(CKA_EC_POINT, ec_point(&info.public_key));
    }
    stored_and_policy(info, kind, &mut a);
    Some(a)
}

/// The public-key object of a token key pair as a stored token object: every attribute it has now (`CKA_UNIQUE_ID`
/// included: it stays the same object), to keep it when the key itself is destroyed (as a soft token keeps a key
/// pair's public-key object when its private-key object is destroyed). `None` if the key has no public-key object
/// (a split-AES key, or one whose public-key object was destroyed) or is a session key (whose objects are session
/// objects).
pub fn public_object_as_stored(info: &KeyInfo) -> Option<Vec<(u64, Vec<u8>)>> {
    if !is_token_key(info) {
        return None;
    }
    key_object_attributes(info, false).map(|a| a.to_pairs())
}

/// Whether an attribute of an object with these attributes must not be revealed: the value of a private or secret
/// key (which, for a cluster key, exists nowhere).
pub fn is_sensitive(attributes: &AttributeSet, attribute: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        attributes.get_ulong(CKA_CLASS),
        Some(CKO_PRIVATE_KEY | CKO_SECRET_KEY)
    ) && attribute == CKA_VALUE
}

/// The key's new label and stored attributes after an application set `changes` (canonical) on one of its
/// objects. `CKA_LABEL` becomes the label, `CKA_ID` is shared by both objects, other storable attributes are the
/// object's own. The caller has checked that every change is allowed.
pub fn updated_key_attributes(
    info: &KeyInfo,
    kind: KeyObjectKind,
    changes: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> (String, Vec<(u64, Vec<u8>)>) {
    let mut label = info.label.clone();
    let mut stored = info.attributes.clone();
    let mut put = |t: u64, v: &Vec<u8>| {
        stored.retain(|(existing, _)| *existing != t);
        stored.push((t, v.clone()));
    };
    for (attribute, value) in changes {
        match *attribute {
            CKA_LABEL => label = String::from_utf8_lossy(value).into_owned(),
            CKA_ID => put(CKA_ID, value),
            t if is_storable(kind, t) => put(kind.namespace() | t, value),
            _ => {}
        }
    }
    (label, stored)
}

#[cfg(test)]
pub(crate) use tests::sample_key;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use vhsm_core::{Algorithm, KeyId, KeyState};

    pub(crate) fn sample_key(algorithm: Algorithm) -> KeyInfo {
        let public_key = match algorithm {
            Algorithm::Ed25519 => ed25519_dalek::SigningKey::from_bytes(&[1; 32])
                .verifying_key()
                .to_bytes()
                .to_vec(),
            Algorithm::EcdsaP256 => {
                let p = p256::SecretKey::from_slice(&[1; 32]).unwrap().public_key();
                p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&p, false)
                    .as_bytes()
                    .to_vec()
            }
            Algorithm::EcdsaSecp256k1 => {
                let p = k256::SecretKey::from_slice(&[1; 32]).unwrap().public_key();
                k256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&p, false)
                    .as_bytes()
                    .to_vec()
            }
            Algorithm::SplitAes256 => vec![7; 32],
        };
        KeyInfo {
            id: KeyId([0xab; 16]),
            label: "k".into(),
            algorithm,
            public_key,
            public_package: Vec::new(),
            threshold: 2,
            holders: Vec::new(),
            state: KeyState::Active,
            created_unix: 0,
            epoch: 0,
            revision: 0,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn private_key_policy() {
        let mut info = sample_key(Algorithm::EcdsaP256);
        // Even a stored attempt to weaken the policy does not show.
        info.attributes
            .push((NS_PRIVATE | CKA_EXTRACTABLE, vec![1]));
        info.attributes.push((NS_PRIVATE | CKA_SIGN, vec![0]));
        let a = key_object_attributes(&info, true).unwrap();
        assert_eq!(a.get_bool(CKA_SENSITIVE), Some(true));
        assert_eq!(a.get_bool(CKA_ALWAYS_SENSITIVE), Some(true));
        assert_eq!(a.get_bool(CKA_EXTRACTABLE), Some(false));
        assert_eq!(a.get_bool(CKA_NEVER_EXTRACTABLE), Some(true));
        assert_eq!(a.get_bool(CKA_SIGN), Some(false));
        assert_eq!(a.get(CKA_VALUE), None);
        assert!(is_sensitive(&a, CKA_VALUE));
        assert_eq!(a.get(CKA_ID), Some(&[0xab; 16][..]));
        assert_eq!(a.get_ulong(CKA_KEY_TYPE), Some(CKK_EC));
        assert_eq!(a.get(CKA_EC_POINT), None);
    }

    #[test]
    fn public_key_and_shared_id() {
        let mut info = sample_key(Algorithm::Ed25519);
        info.attributes.push((CKA_ID, vec![1, 2]));
        info.attributes
            .push((CKA_EC_PARAMS, crate::encoding::NAME_EDWARDS25519.to_vec()));
        let a = key_object_attributes(&info, false).unwrap();
        assert_eq!(a.get(CKA_ID), Some(&[1, 2][..]));
        assert_eq!(a.get_ulong(CKA_KEY_TYPE), Some(CKK_EC_EDWARDS));
        assert_eq!(
            a.get(CKA_EC_PARAMS),
            Some(crate::encoding::NAME_EDWARDS25519)
        );
        assert_eq!(&a.get(CKA_EC_POINT).unwrap()[..2], &[0x04, 0x20]);
        assert!(!is_sensitive(&a, CKA_VALUE));
        let p = key_object_attributes(&info, true).unwrap();
        assert_eq!(p.get(CKA_ID), a.get(CKA_ID));
    }

    #[test]
    fn updates() {
        let info = sample_key(Algorithm::EcdsaSecp256k1);
        let (label, stored) = updated_key_attributes(
            &info,
            KeyObjectKind::Public,
            &[
                (CKA_LABEL, b"new".to_vec()),
                (CKA_ID, vec![9]),
                (CKA_VERIFY, vec![0]),
            ],
        );
        assert_eq!(label, "new");
        assert!(stored.contains(&(CKA_ID, vec![9])));
        assert!(stored.contains(&(NS_PUBLIC | CKA_VERIFY, vec![0])));
        let mut info = info;
        info.attributes = stored;
        assert_eq!(
            key_object_attributes(&info, false)
                .unwrap()
                .get_bool(CKA_VERIFY),
            Some(false)
        );
        assert_eq!(
            key_object_attributes(&info, true).unwrap().get(CKA_ID),
            Some(&[9][..])
        );
    }

    #[test]
    fn a_destroyed_public_object_is_gone_and_the_mark_is_the_modules_own() {
        use crate::attributes::Template;
        use crate::mechanisms::KeyGenMechanism;
        use crate::policy::{check_key_update, key_pair_request};
        assert_eq!(CKA_VHSM_PUBLIC_OBJECT_DESTROYED, 0x8056_4801);
        let mut info = sample_key(Algorithm::EcdsaP256);
        info.attributes.push((CKA_ID, vec![5]));
        assert!(!public_object_destroyed(&info));
        info.attributes = without_public_object(&info);
        assert!(public_object_destroyed(&info));
        assert_eq!(without_public_object(&info), info.attributes, "marked once");
        // The key pair is its private-key object only.
        assert!(presentable(&info));
        assert_eq!(object_kind(&info, false), None);
        assert!(key_object_attributes(&info, false).is_none());
        assert_eq!(public_object_as_stored(&info), None, "nothing left to keep");
        let private = key_object_attributes(&info, true).unwrap();
        assert_eq!(private.get_ulong(CKA_CLASS), Some(CKO_PRIVATE_KEY));
        assert_eq!(private.get(CKA_ID), Some(&[5][..]));
        assert_eq!(
            private.get(CKA_VHSM_PUBLIC_OBJECT_DESTROYED),
            None,
            "never shown"
        );
        // No application sets or clears it: not storable, refused in templates, kept through other changes.
        for kind in [
            KeyObjectKind::Private,
            KeyObjectKind::Public,
            KeyObjectKind::Secret,
        ] {
            assert!(!is_storable(kind, CKA_VHSM_PUBLIC_OBJECT_DESTROYED));
        }
        let clear = [(CKA_VHSM_PUBLIC_OBJECT_DESTROYED, vec![0])];
        let (_, stored) = updated_key_attributes(
            &info,
            KeyObjectKind::Private,
            &[clear[0].clone(), (CKA_LABEL, b"l".to_vec())],
        );
        assert_eq!(
            stored
                .iter()
                .filter(|(t, _)| *t == CKA_VHSM_PUBLIC_OBJECT_DESTROYED)
                .collect::<Vec<_>>(),
            vec![&(CKA_VHSM_PUBLIC_OBJECT_DESTROYED, vec![1])]
        );
        let raw: Vec<(CK_ATTRIBUTE_TYPE, &[u8])> =
            clear.iter().map(|(t, v)| (*t, &v[..])).collect();
        let template = Template::parse(&raw).unwrap();
        assert_eq!(
            check_key_update(KeyObjectKind::Private, &template),
            Err(CKR_ATTRIBUTE_TYPE_INVALID)
        );
        let params = [(CKA_EC_PARAMS, crate::encoding::OID_P256)];
        let public = Template::parse(&params).unwrap();
        let mut marked: Vec<(CK_ATTRIBUTE_TYPE, &[u8])> = params.to_vec();
        marked.push((CKA_VHSM_PUBLIC_OBJECT_DESTROYED, &[1]));
        let marked = Template::parse(&marked).unwrap();
        for (public, private) in [(&marked, &public), (&public, &marked)] {
            assert_eq!(
                key_pair_request(KeyGenMechanism::Ec, public, private),
                Err(CKR_ATTRIBUTE_TYPE_INVALID)
            );
        }
    }

    #[test]
    fn the_public_object_of_a_destroyed_key_is_kept_as_it_was() {
        let mut info = sample_key(Algorithm::Ed25519);
        info.attributes.push((CKA_ID, vec![1, 2]));
        info.attributes.push((NS_PUBLIC | CKA_VERIFY, vec![1]));
        info.attributes
            .push((CKA_EC_PARAMS, crate::encoding::NAME_EDWARDS25519.to_vec()));
        let kept = AttributeSet::from_pairs(public_object_as_stored(&info).unwrap());
        assert_eq!(Some(kept.clone()), key_object_attributes(&info, false));
        assert_eq!(kept.get_ulong(CKA_CLASS), Some(CKO_PUBLIC_KEY));
        assert_eq!(kept.get_bool(CKA_TOKEN), Some(true));
        assert_eq!(kept.get(CKA_ID), Some(&[1, 2][..]));
        assert_eq!(
            kept.get(CKA_EC_POINT),
            Some(&ec_point(&info.public_key)[..])
        );
        // A session key's objects are session objects; a split-AES key has no public-key object.
        let mut session_key = info.clone();
        session_key.attributes.push((CKA_TOKEN, vec![0]));
        assert_eq!(public_object_as_stored(&session_key), None);
        assert_eq!(
            public_object_as_stored(&sample_key(Algorithm::SplitAes256)),
            None
        );
    }

    #[test]
    fn pending_key_has_no_objects() {
        let mut info = sample_key(Algorithm::EcdsaP256);
        info.public_key.clear();
        assert!(key_object_attributes(&info, true).is_none());
        // A split-AES key is one secret-key object, in the private-key slot.
        let mut aes = sample_key(Algorithm::SplitAes256);
        assert!(key_object_attributes(&aes, false).is_none());
        aes.attributes.push((NS_PRIVATE | CKA_EXTRACTABLE, vec![1]));
        aes.attributes.push((NS_PRIVATE | CKA_DECRYPT, vec![0]));
        aes.attributes.push((NS_PRIVATE | CKA_SIGN, vec![1]));
        let a = key_object_attributes(&aes, true).unwrap();
        assert_eq!(a.get_ulong(CKA_CLASS), Some(CKO_SECRET_KEY));
        assert_eq!(a.get_ulong(CKA_KEY_TYPE), Some(CKK_VHSM_SPLIT_AES));
        assert_eq!(a.get_bool(CKA_SENSITIVE), Some(true));
        assert_eq!(a.get_bool(CKA_EXTRACTABLE), Some(false));
        assert_eq!(a.get_bool(CKA_NEVER_EXTRACTABLE), Some(true));
        assert_eq!(a.get_bool(CKA_PRIVATE), Some(true));
        assert_eq!(a.get_bool(CKA_ENCRYPT), Some(true));
        assert_eq!(a.get_bool(CKA_DECRYPT), Some(false), "stored usage flag");
        assert_eq!(
            a.get_bool(CKA_SIGN),
            Some(false),
            "not storable on a secret key"
        );
        assert_eq!(a.get_ulong(CKA_VALUE_LEN), Some(32));
        assert_eq!(a.get(CKA_VALUE), None);
        assert!(is_sensitive(&a, CKA_VALUE));
        aes.public_key.clear();
        assert!(key_object_attributes(&aes, true).is_none(), "still pending");
    }
}
