//! Property tests for the threshold-ECDSA decoders of untrusted bytes: they never panic, refuse other
//! versions, and valid encodings round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use vhsm_protocols::ecdsa::{
    EcdsaBody, EcdsaKeyShare, EcdsaMessage, EcdsaPublicKeys, EcdsaSignature,
};
use vhsm_protocols::{ProtocolError, SecretBytes, SessionId};

fn body() -> impl Strategy<Value = EcdsaBody> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(EcdsaBody::Broadcast),
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|v| EcdsaBody::Private(SecretBytes::new(v))),
    ]
}

proptest! {
    #[test]
    fn ecdsa_message_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
        match EcdsaMessage::from_bytes(&bytes) {
            Ok(m) => prop_assert_eq!(m.to_bytes().unwrap(), bytes),
            Err(ProtocolError::UnsupportedVersion(v)) => prop_assert_ne!(v, 1),
            Err(_) => {}
        }
    }

    #[test]
    fn ecdsa_message_round_trips(session in any::<[u8; 32]>(), round in any::<u8>(), body in body()) {
        let m = EcdsaMessage::new(SessionId(session), round, body);
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(bytes[0], 1);
        let back = EcdsaMessage::from_bytes(&bytes).unwrap();
        prop_assert_eq!(back.session, m.session);
        prop_assert_eq!(back.round, round);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        let debug = format!("{:?}", back);
        prop_assert!(!debug.contains("Private(["));
    }

    #[test]
    fn key_material_decoding_never_panics(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        version in 0u8..3,
        curve in 0u8..4,
    ) {
        if let Some(first) = bytes.get_mut(0) { *first = version; }
        if let Some(second) = bytes.get_mut(1) { *second = curve; }
        if let Ok(share) = EcdsaKeyShare::from_bytes(&bytes) {
            prop_assert_eq!(share.to_bytes().to_vec(), bytes.clone());
        }
        if let Ok(keys) = EcdsaPublicKeys::from_bytes(&bytes) {
            prop_assert_eq!(keys.to_bytes(), bytes.clone());
        }
        let _ = EcdsaSignature::from_bytes(&bytes);
    }
}
