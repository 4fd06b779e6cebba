//! Template policy: what a key-pair generation, object creation or attribute change may ask for.
//!
//! - Private keys are always `CKA_SENSITIVE`, `CKA_ALWAYS_SENSITIVE`, never extractable, and private
//!   (`CKA_PRIVATE`): a template asking otherwise is `CKR_TEMPLATE_INCONSISTENT`.
//! - A template asking for `CKA_WRAP` with `CKA_DECRYPT`, or `CKA_UNWRAP` with `CKA_ENCRYPT`, is
//!   `CKR_TEMPLATE_INCONSISTENT` (a key that both wraps and decrypts lets anyone unwrap a key as data).
//! - Attributes the token computes (`CKA_LOCAL`, `CKA_EC_POINT`, `CKA_KEY_GEN_MECHANISM`, …) are
//!   `CKR_ATTRIBUTE_READ_ONLY`; attributes that a key does not have are `CKR_ATTRIBUTE_TYPE_INVALID`.
//! - Private and secret keys cannot be imported: the cluster only holds keys it generated itself.

use cryptoki_sys::*;

use crate::attributes::{boolean, kind_of, ulong, AttributeSet, Template};
use crate::encoding::{ec_point, parse_ec_params, parse_ec_point, Curve};
use crate::key_objects::{is_storable, KeyObjectKind};
use crate::mechanisms::{KeyGenMechanism, CKK_VHSM_SPLIT_AES};
use crate::CkResult;

/// A key's label as the cluster accepts it: at most 128 printable UTF-8 characters (empty, PKCS#11's default, is
/// fine), else `CKR_ATTRIBUTE_VALUE_INVALID`.
pub fn key_label(value: &[u8]) -> CkResult<String> {
    let label = std::str::from_utf8(value).map_err(|_| CKR_ATTRIBUTE_VALUE_INVALID)?;
    let count = label.chars().count();
    if count > 128 || label.chars().any(char::is_control) {
        return Err(CKR_ATTRIBUTE_VALUE_INVALID);
    }
    Ok(label.to_string())
}

/// A validated `C_GenerateKeyPair` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPairRequest {
    /// The curve.
    pub curve: Curve,
    /// The key's label (`CKA_LABEL` of the private template, else of the public one, else empty).
    pub label: String,
    /// Whether the pair is made of token objects (false: session objects).
    pub token: bool,
    /// The attributes to store with the key (see [`crate::key_objects`]).
    pub stored: Vec<(u64, Vec<u8>)>,
}

fn refuse_conflicts(template: &Template) -> CkResult<()> {
    let on = |t| template.get_bool(t) == Some(true);
    if (on(CKA_WRAP) && on(CKA_DECRYPT)) || (on(CKA_UNWRAP) && on(CKA_ENCRYPT)) {
        return Err(CKR_TEMPLATE_INCONSISTENT);
    }
    Ok(())
}

/// Attributes the token computes: an application may not set them.
fn is_computed(attribute: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        attribute,
        CKA_LOCAL
            | CKA_KEY_GEN_MECHANISM
            | CKA_ALWAYS_SENSITIVE
            | CKA_NEVER_EXTRACTABLE
            | CKA_EC_POINT
            | CKA_VALUE
            | CKA_PUBLIC_KEY_INFO
            | CKA_UNIQUE_ID
    )
}

/// Checks one template of a key generation and returns the attributes to keep for its object (canonical,
/// without namespace).
fn check_key_template(
    template: &Template,
    kind: KeyObjectKind,
    key_type: CK_KEY_TYPE,
) -> CkResult<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    refuse_conflicts(template)?;
    let private = kind.is_secret();
    let mut own = Vec::new();
    for (attribute, value) in template.iter() {
        let flag = crate::attributes::read_bool(value);
        match attribute {
            CKA_CLASS => {
                let class = match kind {
                    KeyObjectKind::Private => CKO_PRIVATE_KEY,
                    KeyObjectKind::Public => CKO_PUBLIC_KEY,
                    KeyObjectKind::Secret => CKO_SECRET_KEY,
                };
                if template.get_ulong(CKA_CLASS) != Some(class) {
                    return Err(CKR_TEMPLATE_INCONSISTENT);
                }
            }
            CKA_KEY_TYPE => {
                if template.get_ulong(CKA_KEY_TYPE) != Some(key_type) {
                    return Err(CKR_TEMPLATE_INCONSISTENT);
                }
            }
            CKA_TOKEN | CKA_LABEL | CKA_ID => {} // handled by the caller
            CKA_EC_PARAMS if kind != KeyObjectKind::Secret => {} // handled by the caller
            CKA_VALUE_LEN if kind == KeyObjectKind::Secret => {
                if template.get_ulong(CKA_VALUE_LEN) != Some(32) {
                    return Err(CKR_ATTRIBUTE_VALUE_INVALID);
                }
            }
            // A split-AES key encrypts and decrypts, nothing else: asking for more cannot be honoured.
            CKA_SIGN | CKA_VERIFY | CKA_WRAP | CKA_UNWRAP | CKA_DERIVE
                if kind == KeyObjectKind::Secret =>
            {
                if flag != Some(false) {
                    return Err(CKR_TEMPLATE_INCONSISTENT);
                }
            }
            CKA_SENSITIVE | CKA_PRIVATE if private => {
                if flag != Some(true) {
                    return Err(CKR_TEMPLATE_INCONSISTENT);
                }
            }
            CKA_EXTRACTABLE | CKA_ALWAYS_AUTHENTICATE | CKA_WRAP_WITH_TRUSTED if private => {
                if flag != Some(false) {
                    return Err(CKR_TEMPLATE_INCONSISTENT);
                }
            }
            CKA_TRUSTED if kind != KeyObjectKind::Private => {
                // Only the security officer may mark a key trusted.
                if flag != Some(false) {
                    return Err(CKR_ATTRIBUTE_READ_ONLY);
                }
            }
            t if is_computed(t) => return Err(CKR_ATTRIBUTE_READ_ONLY),
            t if is_storable(kind, t) => own.push((t, value.to_vec())),
            _ => return Err(CKR_ATTRIBUTE_TYPE_INVALID),
        }
    }
    Ok(own)
}

/// The key's label from a template (empty if it names none).
fn template_label(template: Option<&[u8]>) -> CkResult<String> {
    match template {
        Some(l) => key_label(l),
        None => Ok(String::new()),
    }
}

/// Validates the templates of `C_GenerateKeyPair` for `mechanism` and says what to ask the cluster for.
/// `CKA_EC_PARAMS` must be in the public template (or, leniently, the private one); an unsupported curve is
/// `CKR_CURVE_NOT_SUPPORTED`, a curve that does not belong to the mechanism `CKR_TEMPLATE_INCONSISTENT`.
pub fn key_pair_request(
    mechanism: KeyGenMechanism,
    public: &Template,
    private: &Template,
) -> CkResult<KeyPairRequest> {
    let params = match (public.get(CKA_EC_PARAMS), private.get(CKA_EC_PARAMS)) {
        (Some(p), Some(q)) if p != q => return Err(CKR_TEMPLATE_INCONSISTENT),
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => return Err(CKR_TEMPLATE_INCOMPLETE),
    };
    let curve = parse_ec_params(params)?;
    let fits = match mechanism {
        KeyGenMechanism::Ec => curve != Curve::Ed25519,
        KeyGenMechanism::EcEdwards => curve == Curve::Ed25519,
    };
    if !fits {
        return Err(CKR_TEMPLATE_INCONSISTENT);
    }
    let private_own = check_key_template(private, KeyObjectKind::Private, curve.key_type())?;
    let public_own = check_key_template(public, KeyObjectKind::Public, curve.key_type())?;

    // Both objects are token objects, or both session objects.
    let token = match (public.get_bool(CKA_TOKEN), private.get_bool(CKA_TOKEN)) {
        (Some(p), Some(q)) if p != q => return Err(CKR_TEMPLATE_INCONSISTENT),
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => false,
    };
    let label = template_label(private.get(CKA_LABEL).or_else(|| public.get(CKA_LABEL)))?;

    let mut stored: Vec<(u64, Vec<u8>)> = Vec::new();
    if let Some(id) = private.get(CKA_ID).or_else(|| public.get(CKA_ID)) {
        stored.push((CKA_ID, id.to_vec()));
    }
    if params != curve.ec_params() {
        stored.push((CKA_EC_PARAMS, params.to_vec()));
    }
    if !token {
        stored.push((CKA_TOKEN, boolean(false)));
    }
    stored.extend(
        private_own
            .into_iter()
            .map(|(t, v)| (KeyObjectKind::Private.namespace() | t, v)),
    );
    stored.extend(
        public_own
            .into_iter()
            .map(|(t, v)| (KeyObjectKind::Public.namespace() | t, v)),
    );
    Ok(KeyPairRequest {
        curve,
        label,
        token,
        stored,
    })
}

/// A validated `C_GenerateKey` request (a split-AES key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyRequest {
    /// The key's label.
    pub label: String,
    /// Whether the key is a token object (false: a session object).
    pub token: bool,
    /// The attributes to store with the key (see [`crate::key_objects`]).
    pub stored: Vec<(u64, Vec<u8>)>,
}

/// Validates the template of `C_GenerateKey` with `CKM_VHSM_SPLIT_AES_KEY_GEN`: `CKA_CLASS` (if given) is
/// `CKO_SECRET_KEY`, `CKA_KEY_TYPE` (if given) `CKK_VHSM_SPLIT_AES`, `CKA_VALUE_LEN` (if given) 32; the key is
/// sensitive, private and never extractable; it may encrypt and decrypt (either can be turned off), nothing else.
pub fn secret_key_request(template: &Template) -> CkResult<SecretKeyRequest> {
    let own = check_key_template(template, KeyObjectKind::Secret, CKK_VHSM_SPLIT_AES)?;
    let token = template.get_bool(CKA_TOKEN).unwrap_or(false);
    let label = template_label(template.get(CKA_LABEL))?;
    let mut stored: Vec<(u64, Vec<u8>)> = Vec::new();
    if let Some(id) = template.get(CKA_ID) {
        stored.push((CKA_ID, id.to_vec()));
    }
    if !token {
        stored.push((CKA_TOKEN, boolean(false)));
    }
    stored.extend(
        own.into_iter()
            .map(|(t, v)| (KeyObjectKind::Secret.namespace() | t, v)),
    );
    Ok(SecretKeyRequest {
        label,
        token,
        stored,
    })
}

/// Which attributes `C_SetAttributeValue` may change on a cluster key's object; `CKR_ATTRIBUTE_READ_ONLY` for the
/// others (and for a change that would weaken the private-key policy), `CKR_ATTRIBUTE_TYPE_INVALID` for types the
/// object does not have.
pub fn check_key_update(kind: KeyObjectKind, changes: &Template) -> CkResult<()> {
    let private = kind.is_secret();
    refuse_conflicts(changes)?;
    for (attribute, value) in changes.iter() {
        let flag = crate::attributes::read_bool(value);
        match attribute {
            CKA_LABEL => {
                key_label(value)?;
            }
            CKA_ID => {}
            // Allowed one-way changes that are already in force.
            CKA_SENSITIVE if private && flag == Some(true) => {}
            CKA_EXTRACTABLE if private && flag == Some(false) => {}
            t if is_storable(kind, t) && t != CKA_PRIVATE => {}
            t if kind_of(t).is_some() => return Err(CKR_ATTRIBUTE_READ_ONLY),
            _ => return Err(CKR_ATTRIBUTE_TYPE_INVALID),
        }
    }
    Ok(())
}

/// A validated `C_CreateObject` request: the object's attributes with every default filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRequest {
    /// Whether it is a token object (kept by the cluster) or a session object.
    pub token: bool,
    /// Its attributes, canonical.
    pub attributes: AttributeSet,
}

/// Fills in the defaults of a certificate, data or public-key object (applied at creation, and again when reading
/// objects another client stored).
pub fn fill_object_defaults(attributes: &mut AttributeSet) {
    let class = attributes.get_ulong(CKA_CLASS);
    for (t, v) in [
        (CKA_TOKEN, boolean(false)),
        (CKA_PRIVATE, boolean(false)),
        (CKA_MODIFIABLE, boolean(true)),
        (CKA_COPYABLE, boolean(true)),
        (CKA_DESTROYABLE, boolean(true)),
        (CKA_LABEL, Vec::new()),
    ] {
        attributes.set_default(t, v);
    }
    match class {
        Some(CKO_DATA) => {
            for t in [CKA_APPLICATION, CKA_OBJECT_ID, CKA_VALUE] {
                attributes.set_default(t, Vec::new());
            }
        }
        Some(CKO_CERTIFICATE) => {
            attributes.set_default(CKA_TRUSTED, boolean(false));
            attributes.set_default(CKA_CERTIFICATE_CATEGORY, ulong(0));
            for t in [
                CKA_START_DATE,
                CKA_END_DATE,
                CKA_SUBJECT,
                CKA_ID,
                CKA_ISSUER,
                CKA_SERIAL_NUMBER,
                CKA_URL,
                CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
                CKA_HASH_OF_ISSUER_PUBLIC_KEY,
            ] {
                attributes.set_default(t, Vec::new());
            }
        }
        Some(CKO_PUBLIC_KEY) => {
            for (t, v) in [
                (CKA_ID, Vec::new()),
                (CKA_SUBJECT, Vec::new()),
                (CKA_START_DATE, Vec::new()),
                (CKA_END_DATE, Vec::new()),
                (CKA_VERIFY, boolean(true)),
                (CKA_VERIFY_RECOVER, boolean(false)),
                (CKA_ENCRYPT, boolean(false)),
                (CKA_WRAP, boolean(false)),
                (CKA_DERIVE, boolean(false)),
                (CKA_TRUSTED, boolean(false)),
                (CKA_LOCAL, boolean(false)),
                (CKA_KEY_GEN_MECHANISM, ulong(CK_UNAVAILABLE_INFORMATION)),
            ] {
                attributes.set_default(t, v);
            }
        }
        _ => {}
    }
}

/// Validates a `C_CreateObject` template: certificates (X.509), data objects, and EC/Ed25519 public keys.
pub fn object_request(template: &Template) -> CkResult<ObjectRequest> {
    refuse_conflicts(template)?;
    let class = template
        .get_ulong(CKA_CLASS)
        .ok_or(CKR_TEMPLATE_INCOMPLETE)?;
    let mut attributes = AttributeSet::new();
    for (attribute, value) in template.iter() {
        if kind_of(attribute).is_none() {
            return Err(CKR_ATTRIBUTE_TYPE_INVALID);
        }
        if attribute == CKA_UNIQUE_ID {
            return Err(CKR_ATTRIBUTE_READ_ONLY);
        }
        attributes.set(attribute, value.to_vec());
    }
    match class {
        CKO_DATA => {}
        CKO_CERTIFICATE => {
            match template.get_ulong(CKA_CERTIFICATE_TYPE) {
                None => return Err(CKR_TEMPLATE_INCOMPLETE),
                Some(CKC_X_509) => {}
                Some(_) => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
            }
            if template.get(CKA_VALUE).is_none_or(<[u8]>::is_empty) {
                return Err(CKR_TEMPLATE_INCOMPLETE);
            }
            if template.get_bool(CKA_TRUSTED) == Some(true) {
                return Err(CKR_ATTRIBUTE_READ_ONLY);
            }
        }
        CKO_PUBLIC_KEY => {
            let key_type = template
                .get_ulong(CKA_KEY_TYPE)
                .ok_or(CKR_TEMPLATE_INCOMPLETE)?;
            let params = template.get(CKA_EC_PARAMS).ok_or(CKR_TEMPLATE_INCOMPLETE)?;
            let point = template.get(CKA_EC_POINT).ok_or(CKR_TEMPLATE_INCOMPLETE)?;
            let curve = parse_ec_params(params)?;
            if curve.key_type() != key_type {
                return Err(CKR_TEMPLATE_INCONSISTENT);
            }
            // Keep the point in the standard DER form whatever form it came in.
            let point = parse_ec_point(curve, point)?;
            attributes.set(CKA_EC_POINT, ec_point(&point));
            if template.get_bool(CKA_TRUSTED) == Some(true) {
                return Err(CKR_ATTRIBUTE_READ_ONLY);
            }
        }
        CKO_PRIVATE_KEY | CKO_SECRET_KEY => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
        _ => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
    }
    fill_object_defaults(&mut attributes);
    let token = attributes.get_bool(CKA_TOKEN) == Some(true);
    Ok(ObjectRequest { token, attributes })
}

/// Which attributes `C_SetAttributeValue` may change on a certificate, data or imported public-key object.
pub fn check_object_update(changes: &Template) -> CkResult<()> {
    refuse_conflicts(changes)?;
    for (attribute, value) in changes.iter() {
        match attribute {
            CKA_CLASS
            | CKA_TOKEN
            | CKA_PRIVATE
            | CKA_CERTIFICATE_TYPE
            | CKA_KEY_TYPE
            | CKA_UNIQUE_ID
            | CKA_EC_PARAMS
            | CKA_EC_POINT
            | CKA_LOCAL
            | CKA_KEY_GEN_MECHANISM => return Err(CKR_ATTRIBUTE_READ_ONLY),
            CKA_TRUSTED if crate::attributes::read_bool(value) == Some(true) => {
                return Err(CKR_ATTRIBUTE_READ_ONLY)
            }
            t if kind_of(t).is_none() => return Err(CKR_ATTRIBUTE_TYPE_INVALID),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::encoding::{NAME_EDWARDS25519, OID_ED25519, OID_P256, OID_SECP256K1};
    use crate::key_objects::{NS_PRIVATE, NS_PUBLIC};

    fn tpl(pairs: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Template {
        let raw: Vec<(CK_ATTRIBUTE_TYPE, &[u8])> =
            pairs.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        Template::parse(&raw).unwrap()
    }
    fn b(v: bool) -> Vec<u8> {
        vec![u8::from(v)]
    }
    fn u(v: CK_ULONG) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }

    #[test]
    fn secret_key_templates() {
        let r = secret_key_request(&tpl(&[
            (CKA_CLASS, u(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, u(CKK_VHSM_SPLIT_AES)),
            (CKA_TOKEN, b(true)),
            (CKA_LABEL, b"aes".to_vec()),
            (CKA_ID, vec![7]),
            (CKA_VALUE_LEN, u(32)),
            (CKA_SENSITIVE, b(true)),
            (CKA_EXTRACTABLE, b(false)),
            (CKA_ENCRYPT, b(true)),
            (CKA_DECRYPT, b(false)),
            (CKA_SIGN, b(false)),
        ]))
        .unwrap();
        assert_eq!(r.label, "aes");
        assert!(r.token);
        assert!(r.stored.contains(&(CKA_ID, vec![7])));
        assert!(r.stored.contains(&(NS_PRIVATE | CKA_DECRYPT, vec![0])));
        let empty = secret_key_request(&tpl(&[])).unwrap();
        assert!(!empty.token, "PKCS#11's default: a session object");
        assert!(empty.stored.contains(&(CKA_TOKEN, b(false))));
        for (attribute, value, rv) in [
            (CKA_SENSITIVE, b(false), CKR_TEMPLATE_INCONSISTENT),
            (CKA_EXTRACTABLE, b(true), CKR_TEMPLATE_INCONSISTENT),
            (CKA_PRIVATE, b(false), CKR_TEMPLATE_INCONSISTENT),
            (CKA_SIGN, b(true), CKR_TEMPLATE_INCONSISTENT),
            (CKA_WRAP, b(true), CKR_TEMPLATE_INCONSISTENT),
            (CKA_VALUE_LEN, u(16), CKR_ATTRIBUTE_VALUE_INVALID),
            (CKA_CLASS, u(CKO_PRIVATE_KEY), CKR_TEMPLATE_INCONSISTENT),
            (CKA_KEY_TYPE, u(CKK_AES), CKR_TEMPLATE_INCONSISTENT),
            (CKA_VALUE, vec![0; 32], CKR_ATTRIBUTE_READ_ONLY),
            (CKA_EC_PARAMS, OID_P256.to_vec(), CKR_ATTRIBUTE_TYPE_INVALID),
        ] {
            assert_eq!(
                secret_key_request(&tpl(&[(attribute, value)])),
                Err(rv),
                "{attribute:#x}"
            );
        }
        assert!(check_key_update(KeyObjectKind::Secret, &tpl(&[(CKA_DECRYPT, b(false))])).is_ok());
        assert_eq!(
            check_key_update(KeyObjectKind::Secret, &tpl(&[(CKA_SIGN, b(true))])),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            check_key_update(KeyObjectKind::Secret, &tpl(&[(CKA_SENSITIVE, b(false))])),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
    }

    #[test]
    fn pkcs11_tool_style_ec_keypair() {
        let public = tpl(&[
            (CKA_TOKEN, b(true)),
            (CKA_EC_PARAMS, OID_P256.to_vec()),
            (CKA_VERIFY, b(true)),
            (CKA_LABEL, b"k1".to_vec()),
            (CKA_ID, vec![1, 2, 3]),
        ]);
        let private = tpl(&[
            (CKA_TOKEN, b(true)),
            (CKA_PRIVATE, b(true)),
            (CKA_SENSITIVE, b(true)),
            (CKA_SIGN, b(true)),
            (CKA_LABEL, b"k1".to_vec()),
            (CKA_ID, vec![1, 2, 3]),
        ]);
        let r = key_pair_request(KeyGenMechanism::Ec, &public, &private).unwrap();
        assert_eq!(r.curve, Curve::P256);
        assert_eq!(r.label, "k1");
        assert!(r.token);
        assert!(r.stored.contains(&(CKA_ID, vec![1, 2, 3])));
        assert!(r.stored.contains(&(NS_PRIVATE | CKA_SIGN, vec![1])));
        assert!(r.stored.contains(&(NS_PUBLIC | CKA_VERIFY, vec![1])));
        assert!(
            !r.stored.iter().any(|(t, _)| *t == CKA_EC_PARAMS),
            "canonical params are not stored"
        );
    }

    #[test]
    fn curves_and_mechanisms() {
        let e = tpl(&[]);
        let with = |p: &[u8]| tpl(&[(CKA_EC_PARAMS, p.to_vec()), (CKA_TOKEN, b(true))]);
        let k1 = key_pair_request(KeyGenMechanism::Ec, &with(OID_SECP256K1), &e).unwrap();
        assert_eq!(k1.curve, Curve::Secp256k1);
        let ed =
            key_pair_request(KeyGenMechanism::EcEdwards, &with(NAME_EDWARDS25519), &e).unwrap();
        assert_eq!(ed.curve, Curve::Ed25519);
        assert!(ed
            .stored
            .contains(&(CKA_EC_PARAMS, NAME_EDWARDS25519.to_vec())));
        assert_eq!(
            key_pair_request(KeyGenMechanism::Ec, &with(OID_ED25519), &e),
            Err(CKR_TEMPLATE_INCONSISTENT)
        );
        assert_eq!(
            key_pair_request(KeyGenMechanism::EcEdwards, &with(OID_P256), &e),
            Err(CKR_TEMPLATE_INCONSISTENT)
        );
        let p384 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        assert_eq!(
            key_pair_request(KeyGenMechanism::Ec, &with(&p384), &e),
            Err(CKR_CURVE_NOT_SUPPORTED)
        );
        assert_eq!(
            key_pair_request(KeyGenMechanism::Ec, &e, &e),
            Err(CKR_TEMPLATE_INCOMPLETE)
        );
        // Session key pair.
        let s = key_pair_request(
            KeyGenMechanism::Ec,
            &tpl(&[(CKA_EC_PARAMS, OID_P256.to_vec())]),
            &e,
        )
        .unwrap();
        assert!(!s.token);
        assert_eq!(s.label, "");
        assert!(s.stored.contains(&(CKA_TOKEN, vec![0])));
    }

    #[test]
    fn inconsistent_templates_are_refused() {
        let public = tpl(&[(CKA_EC_PARAMS, OID_P256.to_vec())]);
        for bad in [
            vec![(CKA_EXTRACTABLE, b(true))],
            vec![(CKA_SENSITIVE, b(false))],
            vec![(CKA_PRIVATE, b(false))],
            vec![(CKA_UNWRAP, b(true)), (CKA_ENCRYPT, b(true))],
            vec![(CKA_CLASS, u(CKO_PUBLIC_KEY))],
            vec![(CKA_KEY_TYPE, u(CKK_EC_EDWARDS))],
            vec![(CKA_TOKEN, b(false)), (CKA_SIGN, b(true))],
        ] {
            let mut private = bad.clone();
            if !private.iter().any(|(t, _)| *t == CKA_TOKEN) {
                private.push((CKA_TOKEN, b(true)));
            }
            let public = tpl(&[(CKA_EC_PARAMS, OID_P256.to_vec()), (CKA_TOKEN, b(true))]);
            assert_eq!(
                key_pair_request(KeyGenMechanism::Ec, &public, &tpl(&private)),
                Err(CKR_TEMPLATE_INCONSISTENT),
                "{bad:?}"
            );
        }
        let wrap_decrypt = tpl(&[
            (CKA_EC_PARAMS, OID_P256.to_vec()),
            (CKA_WRAP, b(true)),
            (CKA_DECRYPT, b(true)),
        ]);
        assert_eq!(
            key_pair_request(KeyGenMechanism::Ec, &wrap_decrypt, &tpl(&[])),
            Err(CKR_TEMPLATE_INCONSISTENT)
        );
        let read_only = tpl(&[(CKA_LOCAL, b(true))]);
        assert_eq!(
            key_pair_request(KeyGenMechanism::Ec, &public, &read_only),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        let invalid = tpl(&[(CKA_MODULUS_BITS, u(2048))]);
        assert_eq!(
            key_pair_request(KeyGenMechanism::Ec, &public, &invalid),
            Err(CKR_ATTRIBUTE_TYPE_INVALID)
        );
        // Policy-conforming values are accepted.
        let fine = tpl(&[
            (CKA_EXTRACTABLE, b(false)),
            (CKA_SENSITIVE, b(true)),
            (CKA_DERIVE, b(true)),
        ]);
        assert!(key_pair_request(KeyGenMechanism::Ec, &public, &fine).is_ok());
    }

    #[test]
    fn key_updates() {
        assert!(check_key_update(
            KeyObjectKind::Private,
            &tpl(&[(CKA_LABEL, b"x".to_vec()), (CKA_ID, vec![1])])
        )
        .is_ok());
        assert!(
            check_key_update(KeyObjectKind::Private, &tpl(&[(CKA_SENSITIVE, b(true))])).is_ok()
        );
        assert_eq!(
            check_key_update(KeyObjectKind::Private, &tpl(&[(CKA_SENSITIVE, b(false))])),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            check_key_update(KeyObjectKind::Private, &tpl(&[(CKA_EXTRACTABLE, b(true))])),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            check_key_update(KeyObjectKind::Public, &tpl(&[(CKA_EC_POINT, vec![1])])),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            check_key_update(KeyObjectKind::Public, &tpl(&[(0x8000_0001, vec![1])])),
            Err(CKR_ATTRIBUTE_TYPE_INVALID)
        );
        assert_eq!(
            check_key_update(KeyObjectKind::Public, &tpl(&[(CKA_LABEL, vec![])])),
            Ok(())
        );
        assert_eq!(
            check_key_update(KeyObjectKind::Public, &tpl(&[(CKA_LABEL, vec![0xff])])),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            check_key_update(KeyObjectKind::Public, &tpl(&[(CKA_LABEL, vec![0xff])])),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(key_label(b"a\nb"), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        assert_eq!(key_label(&[b'x'; 129]), Err(CKR_ATTRIBUTE_VALUE_INVALID));
    }

    #[test]
    fn objects() {
        let cert = tpl(&[
            (CKA_CLASS, u(CKO_CERTIFICATE)),
            (CKA_CERTIFICATE_TYPE, u(CKC_X_509)),
            (CKA_VALUE, vec![0x30, 0x00]),
            (CKA_ID, vec![1]),
            (CKA_TOKEN, b(true)),
        ]);
        let r = object_request(&cert).unwrap();
        assert!(r.token);
        assert_eq!(r.attributes.get_bool(CKA_PRIVATE), Some(false));
        assert_eq!(r.attributes.get(CKA_SUBJECT), Some(&[][..]));
        let data = tpl(&[(CKA_CLASS, u(CKO_DATA)), (CKA_VALUE, b"x".to_vec())]);
        assert!(!object_request(&data).unwrap().token);
        assert_eq!(object_request(&tpl(&[])), Err(CKR_TEMPLATE_INCOMPLETE));
        let secret = tpl(&[(CKA_CLASS, u(CKO_SECRET_KEY))]);
        assert_eq!(object_request(&secret), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        let vendor = tpl(&[(CKA_CLASS, u(CKO_DATA)), (0x8000_0001, vec![])]);
        assert_eq!(object_request(&vendor), Err(CKR_ATTRIBUTE_TYPE_INVALID));
        let ed = ed25519_dalek::SigningKey::from_bytes(&[2; 32])
            .verifying_key()
            .to_bytes();
        let public = tpl(&[
            (CKA_CLASS, u(CKO_PUBLIC_KEY)),
            (CKA_KEY_TYPE, u(CKK_EC_EDWARDS)),
            (CKA_EC_PARAMS, OID_ED25519.to_vec()),
            (CKA_EC_POINT, ed.to_vec()),
        ]);
        let r = object_request(&public).unwrap();
        assert_eq!(r.attributes.get(CKA_EC_POINT).unwrap()[..2], [0x04, 0x20]);
        assert_eq!(
            check_object_update(&tpl(&[(CKA_CLASS, u(CKO_DATA))])),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert!(check_object_update(&tpl(&[(CKA_LABEL, b"l".to_vec())])).is_ok());
    }
}
