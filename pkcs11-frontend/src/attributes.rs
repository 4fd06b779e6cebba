//! Attribute values and templates: the canonical form the module stores, template parsing and validation, and
//! the length-query protocol of `C_GetAttributeValue`.
//!
//! Canonical form (what [`AttributeSet`] holds and what the cluster stores for certificates and data objects):
//! a `CK_ULONG`-typed attribute is 8 bytes, little-endian; a `CK_BBOOL` is one byte, 0 or 1; a `CK_DATE` is its 8
//! ASCII digits or empty; everything else is the bytes as the C API has them.

use std::collections::BTreeMap;
use std::fmt;

use cryptoki_sys::*;

use crate::CkResult;

/// How an attribute's value is typed in the C API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A `CK_ULONG` (class, key type, mechanism, …).
    Ulong,
    /// A `CK_BBOOL`.
    Bool,
    /// A `CK_DATE` (8 digits) or empty.
    Date,
    /// A byte string (labels, ids, DER, …).
    Bytes,
}

/// The kind of every attribute type the module knows; `None` for any other (including vendor-defined types and
/// array attributes such as `CKA_WRAP_TEMPLATE`, which it does not store).
pub fn kind_of(attribute: CK_ATTRIBUTE_TYPE) -> Option<Kind> {
    Some(match attribute {
        CKA_CLASS
        | CKA_KEY_TYPE
        | CKA_CERTIFICATE_TYPE
        | CKA_CERTIFICATE_CATEGORY
        | CKA_JAVA_MIDP_SECURITY_DOMAIN
        | CKA_NAME_HASH_ALGORITHM
        | CKA_KEY_GEN_MECHANISM
        | CKA_MODULUS_BITS
        | CKA_VALUE_BITS
        | CKA_VALUE_LEN
        | CKA_PRIME_BITS
        | CKA_SUBPRIME_BITS
        | CKA_MECHANISM_TYPE
        | CKA_HW_FEATURE_TYPE
        | CKA_PROFILE_ID => Kind::Ulong,
        CKA_TOKEN
        | CKA_PRIVATE
        | CKA_TRUSTED
        | CKA_SENSITIVE
        | CKA_ENCRYPT
        | CKA_DECRYPT
        | CKA_WRAP
        | CKA_UNWRAP
        | CKA_SIGN
        | CKA_SIGN_RECOVER
        | CKA_VERIFY
        | CKA_VERIFY_RECOVER
        | CKA_DERIVE
        | CKA_EXTRACTABLE
        | CKA_LOCAL
        | CKA_NEVER_EXTRACTABLE
        | CKA_ALWAYS_SENSITIVE
        | CKA_MODIFIABLE
        | CKA_COPYABLE
        | CKA_DESTROYABLE
        | CKA_ALWAYS_AUTHENTICATE
        | CKA_WRAP_WITH_TRUSTED
        | CKA_RESET_ON_INIT
        | CKA_HAS_RESET => Kind::Bool,
        CKA_START_DATE | CKA_END_DATE => Kind::Date,
        CKA_LABEL
        | CKA_APPLICATION
        | CKA_VALUE
        | CKA_OBJECT_ID
        | CKA_ISSUER
        | CKA_SERIAL_NUMBER
        | CKA_AC_ISSUER
        | CKA_OWNER
        | CKA_ATTR_TYPES
        | CKA_CHECK_VALUE
        | CKA_ID
        | CKA_SUBJECT
        | CKA_URL
        | CKA_HASH_OF_SUBJECT_PUBLIC_KEY
        | CKA_HASH_OF_ISSUER_PUBLIC_KEY
        | CKA_PUBLIC_KEY_INFO
        | CKA_EC_PARAMS
        | CKA_EC_POINT
        | CKA_UNIQUE_ID
        | CKA_MODULUS
        | CKA_PUBLIC_EXPONENT => Kind::Bytes,
        _ => return None,
    })
}

/// The canonical encoding of a `CK_ULONG` value.
pub fn ulong(value: CK_ULONG) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

/// The canonical encoding of a `CK_BBOOL` value.
pub fn boolean(value: bool) -> Vec<u8> {
    vec![u8::from(value)]
}

/// Reads a canonical `CK_ULONG`.
pub fn read_ulong(canonical: &[u8]) -> Option<CK_ULONG> {
    let bytes: [u8; 8] = canonical.try_into().ok()?;
    Some(CK_ULONG::from_le_bytes(bytes))
}

/// Reads a canonical `CK_BBOOL`.
pub fn read_bool(canonical: &[u8]) -> Option<bool> {
    match canonical {
        [b] => Some(*b != 0),
        _ => None,
    }
}

/// Converts a value as the C API has it to the canonical form. A value of the wrong size for its type is
/// `CKR_ATTRIBUTE_VALUE_INVALID`; an unknown type is kept as bytes (callers decide whether they accept it).
pub fn canonicalize(attribute: CK_ATTRIBUTE_TYPE, native: &[u8]) -> CkResult<Vec<u8>> {
    match kind_of(attribute) {
        Some(Kind::Ulong) => {
            let bytes: [u8; 8] = native.try_into().map_err(|_| CKR_ATTRIBUTE_VALUE_INVALID)?;
            Ok(ulong(CK_ULONG::from_ne_bytes(bytes)))
        }
        Some(Kind::Bool) => match native {
            [b] => Ok(boolean(*b != 0)),
            _ => Err(CKR_ATTRIBUTE_VALUE_INVALID),
        },
        Some(Kind::Date) => {
            if native.is_empty() || (native.len() == 8 && native.iter().all(u8::is_ascii_digit)) {
                Ok(native.to_vec())
            } else {
                Err(CKR_ATTRIBUTE_VALUE_INVALID)
            }
        }
        Some(Kind::Bytes) | None => Ok(native.to_vec()),
    }
}

/// Converts a canonical value to the bytes the C API expects.
pub fn to_native(attribute: CK_ATTRIBUTE_TYPE, canonical: &[u8]) -> Vec<u8> {
    match (kind_of(attribute), read_ulong(canonical)) {
        (Some(Kind::Ulong), Some(v)) => v.to_ne_bytes().to_vec(),
        _ => canonical.to_vec(),
    }
}

/// A set of attributes in canonical form, one value per type.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AttributeSet(BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>);

impl fmt::Debug for AttributeSet {
    // Values may be secret (a data object's CKA_VALUE): show the types and lengths only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(t, v)| (format!("{t:#x}"), format!("<{} bytes>", v.len()))),
            )
            .finish()
    }
}

impl AttributeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set from canonical pairs (a later duplicate wins).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (CK_ATTRIBUTE_TYPE, Vec<u8>)>) -> Self {
        AttributeSet(pairs.into_iter().collect())
    }

    /// The canonical value of `attribute`.
    pub fn get(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0.get(&attribute).map(Vec::as_slice)
    }

    /// The value of a `CK_BBOOL` attribute.
    pub fn get_bool(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<bool> {
        self.get(attribute).and_then(read_bool)
    }

    /// The value of a `CK_ULONG` attribute.
    pub fn get_ulong(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.get(attribute).and_then(read_ulong)
    }

    /// Sets a canonical value.
    pub fn set(&mut self, attribute: CK_ATTRIBUTE_TYPE, canonical: Vec<u8>) {
        self.0.insert(attribute, canonical);
    }

    /// Sets a value unless one is present.
    pub fn set_default(&mut self, attribute: CK_ATTRIBUTE_TYPE, canonical: Vec<u8>) {
        self.0.entry(attribute).or_insert(canonical);
    }

    /// Removes a value.
    pub fn remove(&mut self, attribute: CK_ATTRIBUTE_TYPE) {
        self.0.remove(&attribute);
    }

    /// Every (type, canonical value).
    pub fn iter(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &[u8])> {
        self.0.iter().map(|(t, v)| (*t, v.as_slice()))
    }

    /// The pairs, as the cluster stores them.
    pub fn to_pairs(&self) -> Vec<(u64, Vec<u8>)> {
        self.0.iter().map(|(t, v)| (*t, v.clone())).collect()
    }

    /// Whether every attribute of `template` is present here with the same value (`C_FindObjects` matching).
    pub fn matches(&self, template: &Template) -> bool {
        template.iter().all(|(t, v)| self.get(t) == Some(v))
    }
}

/// An application's template, validated and in canonical form: each type at most once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Template(Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>);

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|(t, v)| format!("{t:#x}: <{} bytes>", v.len())),
            )
            .finish()
    }
}

impl Template {
    /// Parses a template given as (type, value as the C API has it) pairs. A value of the wrong size for its type
    /// is `CKR_ATTRIBUTE_VALUE_INVALID`; the same type twice with different values is `CKR_TEMPLATE_INCONSISTENT`.
    /// Unknown types are kept: searching treats them as matching nothing, creating refuses them.
    pub fn parse(raw: &[(CK_ATTRIBUTE_TYPE, &[u8])]) -> CkResult<Template> {
        let mut out: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> = Vec::with_capacity(raw.len());
        for (attribute, native) in raw {
            let value = canonicalize(*attribute, native)?;
            match out.iter().find(|(t, _)| t == attribute) {
                Some((_, existing)) if *existing == value => {}
                Some(_) => return Err(CKR_TEMPLATE_INCONSISTENT),
                None => out.push((*attribute, value)),
            }
        }
        Ok(Template(out))
    }

    /// The canonical value of `attribute`.
    pub fn get(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(t, _)| *t == attribute)
            .map(|(_, v)| v.as_slice())
    }

    /// The value of a `CK_BBOOL` attribute, if present.
    pub fn get_bool(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<bool> {
        self.get(attribute).and_then(read_bool)
    }

    /// The value of a `CK_ULONG` attribute, if present.
    pub fn get_ulong(&self, attribute: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.get(attribute).and_then(read_ulong)
    }

    /// Every (type, canonical value), in template order.
    pub fn iter(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &[u8])> {
        self.0.iter().map(|(t, v)| (*t, v.as_slice()))
    }

    /// The template without the attributes of `types`.
    pub fn without(&self, types: &[CK_ATTRIBUTE_TYPE]) -> Template {
        Template(
            self.0
                .iter()
                .filter(|(t, _)| !types.contains(t))
                .cloned()
                .collect(),
        )
    }

    /// Whether the template is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What an object says about one attribute, for `C_GetAttributeValue`.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The value, as the C API has it.
    Value(Vec<u8>),
    /// The attribute exists but may not be revealed (`CKR_ATTRIBUTE_SENSITIVE`).
    Sensitive,
    /// The object has no such attribute (`CKR_ATTRIBUTE_TYPE_INVALID`).
    Invalid,
}

/// One entry of a `C_GetAttributeValue` template: the type, and the capacity of the caller's buffer (`None`:
/// `pValue` is NULL, a length query).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributeRequest {
    /// The attribute type.
    pub attribute: CK_ATTRIBUTE_TYPE,
    /// The caller's buffer length, or `None` for a NULL `pValue`.
    pub capacity: Option<usize>,
}

/// What to write back into one template entry.
#[derive(Debug, PartialEq, Eq)]
pub enum AttributeAnswer {
    /// Set `ulValueLen` to the length (length query).
    Length(usize),
    /// Copy these bytes into `pValue` and set `ulValueLen` to their length.
    Copy(Vec<u8>),
    /// Set `ulValueLen` to `CK_UNAVAILABLE_INFORMATION`.
    Unavailable,
}

/// The `C_GetAttributeValue` algorithm (PKCS#11 3.0 §5.7): every entry is processed; the return value is `CKR_OK`
/// or the first of `CKR_ATTRIBUTE_SENSITIVE`, `CKR_ATTRIBUTE_TYPE_INVALID`, `CKR_BUFFER_TOO_SMALL` met.
pub fn answer_requests(
    requests: &[AttributeRequest],
    lookup: impl Fn(CK_ATTRIBUTE_TYPE) -> Lookup,
) -> (Vec<AttributeAnswer>, CK_RV) {
    let mut rv = CKR_OK;
    let mut note = |code: CK_RV| {
        if rv == CKR_OK {
            rv = code;
        }
    };
    let answers = requests
        .iter()
        .map(|request| match lookup(request.attribute) {
            Lookup::Sensitive => {
                note(CKR_ATTRIBUTE_SENSITIVE);
                AttributeAnswer::Unavailable
            }
            Lookup::Invalid => {
                note(CKR_ATTRIBUTE_TYPE_INVALID);
                AttributeAnswer::Unavailable
            }
            Lookup::Value(value) => match request.capacity {
                None => AttributeAnswer::Length(value.len()),
                Some(capacity) if capacity >= value.len() => AttributeAnswer::Copy(value),
                Some(_) => {
                    note(CKR_BUFFER_TOO_SMALL);
                    AttributeAnswer::Unavailable
                }
            },
        })
        .collect();
    (answers, rv)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn t(pairs: &[(CK_ATTRIBUTE_TYPE, &[u8])]) -> CkResult<Template> {
        Template::parse(pairs)
    }

    #[test]
    fn ulong_and_bool_sizes_are_checked() {
        let class = CKO_PRIVATE_KEY.to_ne_bytes();
        let parsed = t(&[(CKA_CLASS, &class), (CKA_TOKEN, &[1])]).unwrap();
        assert_eq!(parsed.get_ulong(CKA_CLASS), Some(CKO_PRIVATE_KEY));
        assert_eq!(parsed.get_bool(CKA_TOKEN), Some(true));
        assert_eq!(
            t(&[(CKA_CLASS, &[1, 2, 3, 4])]),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(t(&[(CKA_TOKEN, &[])]), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        assert_eq!(t(&[(CKA_TOKEN, &[1, 0])]), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        // Any non-zero CK_BBOOL is true, stored as 1.
        assert_eq!(
            t(&[(CKA_SIGN, &[7])]).unwrap().get(CKA_SIGN),
            Some(&[1u8][..])
        );
        assert_eq!(
            t(&[(CKA_START_DATE, b"2024")]),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert!(t(&[(CKA_START_DATE, b"20240131")]).is_ok());
    }

    #[test]
    fn duplicates() {
        assert!(t(&[(CKA_LABEL, b"a"), (CKA_LABEL, b"a")]).is_ok());
        assert_eq!(
            t(&[(CKA_LABEL, b"a"), (CKA_LABEL, b"b")]),
            Err(CKR_TEMPLATE_INCONSISTENT)
        );
    }

    #[test]
    fn native_round_trip() {
        let v = CKK_EC_EDWARDS.to_ne_bytes();
        let c = canonicalize(CKA_KEY_TYPE, &v).unwrap();
        assert_eq!(c, CKK_EC_EDWARDS.to_le_bytes());
        assert_eq!(to_native(CKA_KEY_TYPE, &c), v);
        assert_eq!(to_native(CKA_LABEL, b"x"), b"x");
    }

    fn lookup(attribute: CK_ATTRIBUTE_TYPE) -> Lookup {
        match attribute {
            CKA_LABEL => Lookup::Value(b"hello".to_vec()),
            CKA_VALUE => Lookup::Sensitive,
            _ => Lookup::Invalid,
        }
    }

    #[test]
    fn get_attribute_value_protocol() {
        let req = |attribute, capacity| AttributeRequest {
            attribute,
            capacity,
        };
        // Length query.
        let (a, rv) = answer_requests(&[req(CKA_LABEL, None)], lookup);
        assert_eq!((a, rv), (vec![AttributeAnswer::Length(5)], CKR_OK));
        // Exact and larger buffers.
        let (a, rv) = answer_requests(&[req(CKA_LABEL, Some(5)), req(CKA_LABEL, Some(50))], lookup);
        assert_eq!(rv, CKR_OK);
        assert_eq!(a[0], AttributeAnswer::Copy(b"hello".to_vec()));
        assert_eq!(a[1], AttributeAnswer::Copy(b"hello".to_vec()));
        // Too short.
        let (a, rv) = answer_requests(&[req(CKA_LABEL, Some(4))], lookup);
        assert_eq!(
            (a, rv),
            (vec![AttributeAnswer::Unavailable], CKR_BUFFER_TOO_SMALL)
        );
        // Sensitive, even as a length query.
        let (a, rv) = answer_requests(&[req(CKA_VALUE, None)], lookup);
        assert_eq!(
            (a, rv),
            (vec![AttributeAnswer::Unavailable], CKR_ATTRIBUTE_SENSITIVE)
        );
        // Invalid type; the rest of the template is still processed, the first error is returned.
        let (a, rv) = answer_requests(
            &[
                req(CKA_MODULUS, None),
                req(CKA_LABEL, None),
                req(CKA_VALUE, Some(100)),
            ],
            lookup,
        );
        assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);
        assert_eq!(
            a,
            vec![
                AttributeAnswer::Unavailable,
                AttributeAnswer::Length(5),
                AttributeAnswer::Unavailable
            ]
        );
    }

    #[test]
    fn matching() {
        let set =
            AttributeSet::from_pairs([(CKA_LABEL, b"k".to_vec()), (CKA_TOKEN, boolean(true))]);
        assert!(set.matches(&t(&[(CKA_LABEL, b"k")]).unwrap()));
        assert!(set.matches(&t(&[]).unwrap()));
        assert!(!set.matches(&t(&[(CKA_LABEL, b"x")]).unwrap()));
        assert!(!set.matches(&t(&[(0x8000_1234, b"x")]).unwrap()));
        assert!(format!("{set:?}").contains("bytes"));
    }
}
