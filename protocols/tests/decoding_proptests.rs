//! Property tests: decoders of untrusted bytes never panic, and valid encodings round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use rand_core::SeedableRng;
use vhsm_protocols::frost::{
    aggregate, signing_package, DkgBody, DkgMessage, FrostCommitments, FrostKeyShare,
    FrostPublicKeys, FrostSignatureShare, FrostSigningPackage,
};
use vhsm_protocols::{ProtocolError, SecretBytes, SessionId};

fn body() -> impl Strategy<Value = DkgBody> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(DkgBody::Round1),
        proptest::collection::btree_map(any::<u16>(), any::<[u8; 32]>(), 0..6)
            .prop_map(DkgBody::Echo),
        proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(|v| DkgBody::Round2(SecretBytes::new(v))),
    ]
}

proptest! {
    #[test]
    fn dkg_message_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        match DkgMessage::from_bytes(&bytes) {
            Ok(m) => prop_assert_eq!(m.to_bytes().unwrap(), bytes),
            Err(ProtocolError::UnsupportedVersion(v)) => prop_assert_ne!(v, 1),
            Err(_) => {}
        }
    }

    #[test]
    fn dkg_message_round_trips(session in any::<[u8; 32]>(), body in body()) {
        let m = DkgMessage::new(SessionId(session), body);
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(bytes[0], 1);
        let back = DkgMessage::from_bytes(&bytes).unwrap();
        prop_assert_eq!(back.session, m.session);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn key_material_decoding_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..400), v in 0u8..3) {
        if let Some(first) = bytes.first_mut() { *first = v; }
        let _ = FrostKeyShare::from_bytes(&bytes);
        let _ = FrostPublicKeys::from_bytes(&bytes);
    }

    #[test]
    fn coordinator_decoding_never_panics(
        c in proptest::collection::vec(any::<u8>(), 0..120),
        p in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let commitments = BTreeMap::from([(1u16, FrostCommitments(c))]);
        if let Err(e) = signing_package(&commitments, b"m") {
            prop_assert_eq!(e.culprits(), &[1]);
        }
        let package = FrostSigningPackage(p);
        let _ = package.message();
        let _ = package.signers();
    }
}

#[test]
fn aggregate_rejects_garbage_package() {
    // Public keys from frost's trusted dealer (test only): the garbage package is refused before they matter.
    let shares = BTreeMap::from([(1u16, FrostSignatureShare(vec![0; 32]))]);
    let keys = {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let (kp_map, pkp) = frost_ed25519::keys::generate_with_dealer(
            3,
            2,
            frost_ed25519::keys::IdentifierList::Default,
            &mut rng,
        )
        .unwrap();
        drop(kp_map);
        FrostPublicKeys::from_frost(pkp).unwrap()
    };
    assert!(matches!(
        aggregate(&keys, &FrostSigningPackage(vec![1, 2, 3]), &shares),
        Err(ProtocolError::Encoding(_))
    ));
}
