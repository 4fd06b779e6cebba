//! The module against a real cluster (the test kit's process cluster), loaded as a shared library by the `cryptoki` crate, as an
//! application would: log in (a wrong PIN first), generate P-256, secp256k1 and Ed25519 key pairs, sign with
//! CKM_ECDSA, CKM_ECDSA_SHA256 and CKM_EDDSA, verify every signature with the curve crates and with C_Verify, sign
//! from eight threads at once, and destroy the objects of key pairs one at a time (the module loaded again
//! meanwhile); generate split-AES keys with the vendor mechanisms, encrypt and
//! decrypt (single- and multi-part, with associated data), and see altered blobs, other associated data and
//! another key refused.
//!
//! Needs the `vhsm` binary (built with the workspace); skipped with a message when it is missing, unless
//! `VHSM_REQUIRE_CLIENTS` is set (as `.ci/run` does), where a missing binary fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};
use std::time::Instant;
use vhsm_pkcs11::encoding::{NAME_EDWARDS25519, OID_P256, OID_SECP256K1};

use vhsm_testkit::process::ProcessCluster;

const PIN: &str = "31415926";

fn point_of(session: &Session, public: ObjectHandle) -> Vec<u8> {
    let attributes = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .unwrap();
    let Some(Attribute::EcPoint(der)) = attributes.into_iter().next() else {
        panic!("no CKA_EC_POINT")
    };
    assert_eq!(der[0], 0x04, "an OCTET STRING");
    assert_eq!(der[1] as usize, der.len() - 2);
    der[2..].to_vec()
}

fn check_ecdsa(curve: &[u8], point: &[u8], digest: &[u8], signature: &[u8]) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    assert_eq!(signature.len(), 64);
    if curve == OID_P256 {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(signature).unwrap();
        key.verify_prehash(digest, &sig)
            .expect("a valid P-256 signature");
    } else {
        let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = k256::ecdsa::Signature::from_slice(signature).unwrap();
        key.verify_prehash(digest, &sig.normalize_s())
            .expect("a valid secp256k1 signature");
    }
}

fn check_ed25519(point: &[u8], message: &[u8], signature: &[u8]) {
    let key = ed25519_dalek::VerifyingKey::from_bytes(point.try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(signature).unwrap();
    key.verify_strict(message, &sig)
        .expect("a valid Ed25519 signature");
}

fn eddsa() -> Mechanism<'static> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
}

fn find_private(session: &Session, label: &str) -> Vec<ObjectHandle> {
    session
        .find_objects(&[
            Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap()
}

#[test]
fn keys_signatures_and_threads_through_a_real_cluster() {
    // The `vhsm` binary and the newest build of the module, beside this test (cargo builds both for the
    // workspace's tests).
    let (vhsm, module) = match (
        vhsm_testkit::process::vhsm_binary(),
        vhsm_testkit::process::module_path(),
    ) {
        (Ok(vhsm), Ok(module)) => (vhsm, module),
        (vhsm, module) => {
            let missing = format!("{:?} / {:?}", vhsm.err(), module.err());
            assert!(
                std::env::var("VHSM_REQUIRE_CLIENTS").is_err(),
                "{missing}, and VHSM_REQUIRE_CLIENTS is set"
            );
            eprintln!("SKIPPED: {missing} (build the workspace)");
            return;
        }
    };
    eprintln!("cluster of {}", vhsm.display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime
        .block_on(ProcessCluster::launch_with(3, 2, &["--user-pin", PIN]))
        .unwrap();
    std::env::set_var(
        "VHSM_PKCS11_CONFIG",
        cluster.path().join("client").join("client.toml"),
    );

    let pkcs11 = Pkcs11::new(&module).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = pkcs11.get_slots_with_token().unwrap()[0];
    let info = pkcs11.get_token_info(slot).unwrap();
    assert!(info.login_required());
    let session = pkcs11.open_rw_session(slot).unwrap();

    // A wrong PIN, then the right one.
    let wrong = session.login(UserType::User, Some(&AuthPin::from("00000000".to_string())));
    assert!(
        matches!(wrong, Err(Error::Pkcs11(RvError::PinIncorrect, _))),
        "{wrong:?}"
    );
    session
        .login(UserType::User, Some(&AuthPin::from(PIN.to_string())))
        .unwrap();

    let message = b"vHSM through PKCS#11";
    let digest = Sha256::digest(message);
    for (name, params) in [
        ("p256", OID_P256),
        ("k1", OID_SECP256K1),
        ("ed", NAME_EDWARDS25519),
    ] {
        let label = format!("it-{name}");
        let edwards = params == NAME_EDWARDS25519;
        let mechanism = if edwards {
            Mechanism::EccEdwardsKeyPairGen
        } else {
            Mechanism::EccKeyPairGen
        };
        let public_template = [
            Attribute::Token(true),
            Attribute::EcParams(params.to_vec()),
            Attribute::Verify(true),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Id(name.as_bytes().to_vec()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Id(name.as_bytes().to_vec()),
        ];
        let started = Instant::now();
        let (public, private) = session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .unwrap();
        eprintln!("{name}: key pair in {:?}", started.elapsed());
        let point = point_of(&session, public);
        // The private value is sensitive; the policy attributes say so.
        let sensitive = session
            .get_attributes(
                private,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .unwrap();
        assert_eq!(
            sensitive,
            vec![Attribute::Sensitive(true), Attribute::Extractable(false)]
        );
        assert_eq!(find_private(&session, &label), vec![private]);

        if edwards {
            let signature = session.sign(&eddsa(), private, message).unwrap();
            check_ed25519(&point, message, &signature);
            session
                .verify(&eddsa(), public, message, &signature)
                .unwrap();
        } else {
            let signature = session.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
            check_ecdsa(params, &point, &digest, &signature);
            session
                .verify(&Mechanism::Ecdsa, public, &digest, &signature)
                .unwrap();
            let signature = session
                .sign(&Mechanism::EcdsaSha256, private, message)
                .unwrap();
            check_ecdsa(params, &point, &digest, &signature);
            session
                .verify(&Mechanism::EcdsaSha256, public, message, &signature)
                .unwrap();
            // Multi-part.
            session.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
            session.sign_update(&message[..5]).unwrap();
            session.sign_update(&message[5..]).unwrap();
            let signature = session.sign_final().unwrap();
            check_ecdsa(params, &point, &digest, &signature);
        }
    }

    // Eight threads at once, each with its own session (the login is the application's).
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let pkcs11 = pkcs11.clone();
            std::thread::spawn(move || {
                let session = pkcs11.open_ro_session(slot).unwrap();
                let p256 = find_private(&session, "it-p256")[0];
                let ed = find_private(&session, "it-ed")[0];
                let public_p256 = session
                    .find_objects(&[
                        Attribute::Class(cryptoki::object::ObjectClass::PUBLIC_KEY),
                        Attribute::Label(b"it-p256".to_vec()),
                    ])
                    .unwrap()[0];
                let public_ed = session
                    .find_objects(&[
                        Attribute::Class(cryptoki::object::ObjectClass::PUBLIC_KEY),
                        Attribute::Label(b"it-ed".to_vec()),
                    ])
                    .unwrap()[0];
                let (point_p256, point_ed) = (
                    point_of(&session, public_p256),
                    point_of(&session, public_ed),
                );
                for i in 0..3 {
                    let message = format!("thread {t} message {i}");
                    let signature = session
                        .sign(&Mechanism::EcdsaSha256, p256, message.as_bytes())
                        .unwrap();
                    check_ecdsa(
                        OID_P256,
                        &point_p256,
                        &Sha256::digest(message.as_bytes()),
                        &signature,
                    );
                    let signature = session.sign(&eddsa(), ed, message.as_bytes()).unwrap();
                    check_ed25519(&point_ed, message.as_bytes(), &signature);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a signing thread failed");
    }

    // Destroying an object of a key pair destroys that object only (and the module loads again meanwhile).
    let session = destroying_one_object_of_a_key_pair(&pkcs11, slot, session);
    read_only_session_destroys_the_key_pair_it_generated(&pkcs11, slot);

    split_aes(&session);

    session.logout().unwrap();
    drop(session);
    pkcs11.finalize().unwrap();
    drop(cluster);
}

fn find_labelled(session: &Session, label: &str) -> Vec<ObjectHandle> {
    session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap()
}

fn class_of(session: &Session, object: ObjectHandle) -> ObjectClass {
    match session
        .get_attributes(object, &[AttributeType::Class])
        .unwrap()
        .as_slice()
    {
        [Attribute::Class(class)] => *class,
        other => panic!("no CKA_CLASS: {other:?}"),
    }
}

/// `C_DestroyObject` destroys the named object only, as SoftHSM does (issue 14, item 13). The public-key object
/// of it-k1 goes alone: the private key keeps signing, and the object stays gone for another session and after
/// the module is loaded again; then its private-key object destroys the key. The private-key object of it-ed goes
/// first: the key is destroyed, its public-key object stays (and verifies). A second destroy of any of these
/// handles is `CKR_OBJECT_HANDLE_INVALID`. Returns the session opened after the reload (logged in).
fn destroying_one_object_of_a_key_pair(pkcs11: &Pkcs11, slot: Slot, session: Session) -> Session {
    let message = b"one object at a time";
    let digest = Sha256::digest(message);

    // The public-key object alone.
    let private_k1 = find_private(&session, "it-k1")[0];
    let public_k1 = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(b"it-k1".to_vec()),
        ])
        .unwrap()[0];
    let point_k1 = point_of(&session, public_k1);
    session.destroy_object(public_k1).unwrap();
    assert_eq!(
        rv_of(session.destroy_object(public_k1)),
        RvError::ObjectHandleInvalid,
        "a second destroy"
    );
    assert_eq!(
        rv_of(session.get_attributes(public_k1, &[AttributeType::Label])),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(find_labelled(&session, "it-k1"), vec![private_k1]);
    let signature = session
        .sign(&Mechanism::EcdsaSha256, private_k1, message)
        .unwrap();
    check_ecdsa(OID_SECP256K1, &point_k1, &digest, &signature);
    let other = pkcs11.open_ro_session(slot).unwrap();
    assert_eq!(find_labelled(&other, "it-k1"), vec![private_k1]);
    drop(other);

    // The private-key object: the key goes, its public-key object stays (same handle here).
    let private_ed = find_private(&session, "it-ed")[0];
    let public_ed = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(b"it-ed".to_vec()),
        ])
        .unwrap()[0];
    let point_ed = point_of(&session, public_ed);
    let signature_ed = session.sign(&eddsa(), private_ed, message).unwrap();
    session.destroy_object(private_ed).unwrap();
    assert_eq!(
        rv_of(session.destroy_object(private_ed)),
        RvError::ObjectHandleInvalid,
        "a second destroy"
    );
    assert_eq!(
        rv_of(session.sign(&eddsa(), private_ed, message)),
        RvError::KeyHandleInvalid
    );
    assert_eq!(find_labelled(&session, "it-ed"), vec![public_ed]);
    assert_eq!(point_of(&session, public_ed), point_ed);
    assert_eq!(
        session
            .get_attributes(
                public_ed,
                &[
                    AttributeType::Class,
                    AttributeType::Token,
                    AttributeType::Id,
                    AttributeType::EcParams
                ]
            )
            .unwrap(),
        vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Token(true),
            Attribute::Id(b"ed".to_vec()),
            Attribute::EcParams(NAME_EDWARDS25519.to_vec()),
        ]
    );
    session
        .verify(&eddsa(), public_ed, message, &signature_ed)
        .unwrap();

    // The module loaded again, nothing cached: the cluster remembers both.
    drop(session);
    pkcs11.clone().finalize().unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let session = pkcs11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from(PIN.to_string())))
        .unwrap();
    let k1 = find_labelled(&session, "it-k1");
    assert_eq!(k1.len(), 1, "only the private-key object: {k1:?}");
    let private_k1 = k1[0];
    assert_eq!(class_of(&session, private_k1), ObjectClass::PRIVATE_KEY);
    let signature = session
        .sign(&Mechanism::EcdsaSha256, private_k1, message)
        .unwrap();
    check_ecdsa(OID_SECP256K1, &point_k1, &digest, &signature);
    let ed = find_labelled(&session, "it-ed");
    assert_eq!(ed.len(), 1, "only the public-key object: {ed:?}");
    let public_ed = ed[0];
    assert_eq!(class_of(&session, public_ed), ObjectClass::PUBLIC_KEY);
    assert_eq!(point_of(&session, public_ed), point_ed);
    session
        .verify(&eddsa(), public_ed, message, &signature_ed)
        .unwrap();

    // The private-key object of it-k1 now: the key is gone, nothing of it-k1 is left.
    session.destroy_object(private_k1).unwrap();
    assert_eq!(
        rv_of(session.sign(&Mechanism::EcdsaSha256, private_k1, message)),
        RvError::KeyHandleInvalid
    );
    assert_eq!(
        rv_of(session.destroy_object(private_k1)),
        RvError::ObjectHandleInvalid,
        "a second destroy"
    );
    assert!(find_labelled(&session, "it-k1").is_empty());
    // And the kept public-key object of it-ed goes when it is destroyed.
    session.destroy_object(public_ed).unwrap();
    assert_eq!(
        rv_of(session.destroy_object(public_ed)),
        RvError::ObjectHandleInvalid,
        "a second destroy"
    );
    assert!(find_labelled(&session, "it-ed").is_empty());
    session
}

/// A read-only session may destroy the token key pair it generated, private-key object first, then the public
/// one (kept as a stored object meanwhile), as OpenSC's `pkcs11-tool --test-ec` does.
fn read_only_session_destroys_the_key_pair_it_generated(pkcs11: &Pkcs11, slot: Slot) {
    let session = pkcs11.open_ro_session(slot).unwrap();
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(NAME_EDWARDS25519.to_vec()),
                Attribute::Label(b"it-ro".to_vec()),
            ],
            &[Attribute::Token(true), Attribute::Label(b"it-ro".to_vec())],
        )
        .unwrap();
    session.destroy_object(private).unwrap();
    assert_eq!(find_labelled(&session, "it-ro"), vec![public]);
    session.destroy_object(public).unwrap();
    assert_eq!(
        rv_of(session.destroy_object(public)),
        RvError::ObjectHandleInvalid
    );
    assert!(find_labelled(&session, "it-ro").is_empty());
}

const CKK_VHSM_SPLIT_AES: u64 = 0x8056_4801;
const CKM_VHSM_SPLIT_AES_KEY_GEN: u64 = 0x8056_4801;
const CKM_VHSM_SPLIT_AES: u64 = 0x8056_4802;
/// A blob's overhead for a key of threshold 2 (a receipt of two entries).
const OVERHEAD: usize = 111 + 2 * 130;

fn aes_mechanism<T>(aad: Option<&T>) -> Mechanism<'_> {
    Mechanism::VendorDefined(VendorDefinedMechanism::new(
        MechanismType::new_vendor_defined(CKM_VHSM_SPLIT_AES).unwrap(),
        aad,
    ))
}

fn generate_aes(session: &Session, label: &str) -> ObjectHandle {
    let keygen = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(CKM_VHSM_SPLIT_AES_KEY_GEN).unwrap(),
        None,
    ));
    session
        .generate_key(
            &keygen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::new_vendor_defined(CKK_VHSM_SPLIT_AES).unwrap()),
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::ValueLen(32.into()),
            ],
        )
        .unwrap()
}

fn rv_of<T: std::fmt::Debug>(result: Result<T, Error>) -> RvError {
    match result {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// Split-AES through the vendor mechanisms.
fn split_aes(session: &Session) {
    let key = generate_aes(session, "it-aes");
    let attributes = session
        .get_attributes(
            key,
            &[
                AttributeType::Class,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Value,
            ],
        )
        .unwrap();
    assert_eq!(
        attributes,
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::NeverExtractable(true),
        ],
        "the value is sensitive: never returned"
    );
    assert_eq!(
        rv_of(session.update_attributes(key, &[Attribute::Extractable(true)])),
        RvError::AttributeReadOnly
    );
    let found = session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .unwrap();
    assert_eq!(found, vec![key]);

    let aad = *b"invoice 42";
    for len in [0usize, 1, 1024, 64 * 1024] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let blob = session
            .encrypt(&aes_mechanism(Some(&aad)), key, &plaintext)
            .unwrap();
        assert_eq!(blob.len(), len + OVERHEAD);
        let again = session
            .encrypt(&aes_mechanism(Some(&aad)), key, &plaintext)
            .unwrap();
        assert_ne!(blob, again, "every encryption is fresh");
        let back = session
            .decrypt(&aes_mechanism(Some(&aad)), key, &blob)
            .unwrap();
        assert_eq!(back, plaintext, "round trip of {len} bytes");
    }

    // Multi-part, without associated data.
    session
        .encrypt_init(&aes_mechanism::<()>(None), key)
        .unwrap();
    assert!(session.encrypt_update(b"split ").unwrap().is_empty());
    assert!(session.encrypt_update(b"AES").unwrap().is_empty());
    let blob = session.encrypt_final().unwrap();
    session
        .decrypt_init(&aes_mechanism::<()>(None), key)
        .unwrap();
    assert!(session.decrypt_update(&blob[..50]).unwrap().is_empty());
    assert!(session.decrypt_update(&blob[50..]).unwrap().is_empty());
    assert_eq!(session.decrypt_final().unwrap(), b"split AES");

    // Altered blobs, other associated data, another key: refused, no plaintext.
    let blob = session
        .encrypt(&aes_mechanism(Some(&aad)), key, b"secret")
        .unwrap();
    for at in [0, 5, 20, 60, blob.len() - 1] {
        let mut altered = blob.clone();
        altered[at] ^= 1;
        assert_eq!(
            rv_of(session.decrypt(&aes_mechanism(Some(&aad)), key, &altered)),
            RvError::EncryptedDataInvalid,
            "byte {at} altered"
        );
    }
    assert_eq!(
        rv_of(session.decrypt(&aes_mechanism(Some(b"invoice 43")), key, &blob)),
        RvError::EncryptedDataInvalid
    );
    assert_eq!(
        rv_of(session.decrypt(&aes_mechanism::<()>(None), key, &blob)),
        RvError::EncryptedDataInvalid
    );
    assert_eq!(
        rv_of(session.decrypt(&aes_mechanism(Some(&aad)), key, &blob[..OVERHEAD - 1])),
        RvError::EncryptedDataLenRange
    );
    let other = generate_aes(session, "it-aes-2");
    assert_eq!(
        rv_of(session.decrypt(&aes_mechanism(Some(&aad)), other, &blob)),
        RvError::EncryptedDataInvalid
    );
    // Signing keys do not encrypt, split-AES keys do not sign.
    let p256 = find_private(session, "it-p256")[0];
    assert_eq!(
        rv_of(session.encrypt(&aes_mechanism(Some(&aad)), p256, b"x")),
        RvError::KeyTypeInconsistent
    );
    assert_eq!(
        rv_of(session.sign(&Mechanism::Ecdsa, key, &[1; 32])),
        RvError::KeyFunctionNotPermitted
    );

    // Destroyed: gone, and its blobs no longer decrypt.
    session.destroy_object(key).unwrap();
    assert_eq!(
        rv_of(session.decrypt(&aes_mechanism(Some(&aad)), key, &blob)),
        RvError::KeyHandleInvalid
    );
    session.destroy_object(other).unwrap();
    assert!(session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .unwrap()
        .is_empty());
}
