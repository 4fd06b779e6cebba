//! Attribute templates: parsing, the key-pair and object-creation policies, attribute updates, matching and the
//! `C_GetAttributeValue` length protocol, from arbitrary bytes. Nothing may panic, and what parses is canonical.
//!
//! Input: records of `type: u32 LE ‖ len: u8 ‖ value[len]`; a record of type 0xffffffff ends the first template
//! (the public one of a key pair) and starts the second.
#![no_main]

use cryptoki_sys::*;
use libfuzzer_sys::fuzz_target;
use vhsm_pkcs11::attributes::{answer_requests, kind_of, AttributeRequest, AttributeSet, Kind, Lookup, Template};
use vhsm_pkcs11::key_objects::KeyObjectKind;
use vhsm_pkcs11::mechanisms::KeyGenMechanism;
use vhsm_pkcs11::policy;

fn records(mut data: &[u8]) -> (Vec<(CK_ATTRIBUTE_TYPE, &[u8])>, Vec<(CK_ATTRIBUTE_TYPE, &[u8])>) {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let mut in_second = false;
    while let [a, b, c, d, len, rest @ ..] = data {
        let t = u32::from_le_bytes([*a, *b, *c, *d]);
        let len = usize::from(*len).min(rest.len());
        let (value, tail) = rest.split_at(len);
        data = tail;
        if t == u32::MAX {
            in_second = true;
            continue;
        }
        // Small numbers are the standard attribute types; keep vendor-range types reachable too.
        let t = CK_ATTRIBUTE_TYPE::from(t);
        if in_second { second.push((t, value)) } else { first.push((t, value)) }
    }
    (first, second)
}

fn check_canonical(template: &Template) {
    for (t, v) in template.iter() {
        match kind_of(t) {
            Some(Kind::Ulong) => assert_eq!(v.len(), 8),
            Some(Kind::Bool) => assert!(v == [0] || v == [1]),
            Some(Kind::Date) => assert!(v.is_empty() || v.len() == 8),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = records(data);
    let (Ok(public), second) = (Template::parse(&first), Template::parse(&second)) else { return };
    check_canonical(&public);
    let _ = policy::object_request(&public);
    let _ = policy::check_object_update(&public);
    for kind in [KeyObjectKind::Private, KeyObjectKind::Public, KeyObjectKind::Secret] {
        let _ = policy::check_key_update(kind, &public);
    }
    if policy::secret_key_request(&public).is_ok() {
        // Nor a secret key.
        assert!(public.get_bool(CKA_EXTRACTABLE) != Some(true));
        assert!(public.get_bool(CKA_SENSITIVE) != Some(false));
        assert!(public.get_bool(CKA_SIGN) != Some(true));
    }
    if let Ok(private) = second {
        check_canonical(&private);
        for mechanism in [KeyGenMechanism::Ec, KeyGenMechanism::EcEdwards] {
            if let Ok(request) = policy::key_pair_request(mechanism, &public, &private) {
                // The policy never lets a request weaken a private key.
                assert!(private.get_bool(CKA_EXTRACTABLE) != Some(true));
                assert!(private.get_bool(CKA_SENSITIVE) != Some(false));
                // The label is the private template's CKA_LABEL, else the public one's, else empty (PKCS#11's
                // default): never made up.
                let named = private.get(CKA_LABEL).or_else(|| public.get(CKA_LABEL)).unwrap_or_default();
                assert_eq!(request.label.as_bytes(), named);
            }
        }
    }
    // Matching and the length protocol over the parsed values.
    let set = AttributeSet::from_pairs(public.iter().map(|(t, v)| (t, v.to_vec())));
    assert!(set.matches(&public));
    let requests: Vec<AttributeRequest> = public
        .iter()
        .enumerate()
        .map(|(i, (t, v))| AttributeRequest { attribute: t, capacity: (i % 3 != 0).then(|| v.len().saturating_sub(i % 2)) })
        .collect();
    let (answers, _) = answer_requests(&requests, |t| match set.get(t) {
        Some(v) if t == CKA_VALUE => { let _ = v; Lookup::Sensitive }
        Some(v) => Lookup::Value(v.to_vec()),
        None => Lookup::Invalid,
    });
    assert_eq!(answers.len(), requests.len());
});
