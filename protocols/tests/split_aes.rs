//! Split-AES (DiSE threshold symmetric encryption): DKG through the simulator (in order and reordered), round
//! trips with different holder subsets, tampering, per-message keys, blame of bad partials and of DKG
//! misbehaviour, encodings (with a small decoding proptest).
//!
//! This file is the only place that reconstructs the DPRF key `k` (by Lagrange interpolation of shares), to
//! check the DKG; no library code does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;

use common::{rng, session, subsets};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use vhsm_protocols::echo::EchoBroadcast;
use vhsm_protocols::frost::DkgParams;
use vhsm_protocols::simulator::{Delivery, DeliveryOrder, Simulation};
use vhsm_protocols::split_aes::blob::blob_len;
use vhsm_protocols::split_aes::dkg::ECHO_DOMAIN;
use vhsm_protocols::split_aes::{
    combine, decrypt_in_process, encrypt_in_process, evaluate, evaluate_receipt, input_point,
    message_input, open, seal, verify_partial, CiphertextBlob, DkgRound1Payload, DleqProof,
    DleqStatement, EncryptionReceipt, PartialEvaluation, SplitAesDkg, SplitAesDkgBody,
    SplitAesDkgMessage, SplitAesKeyShare, SplitAesPublicKeys,
};
use vhsm_protocols::{ParticipantId, Protocol, ProtocolError, SecretBytes, SessionId};

const KEY_ID: [u8; 16] = *b"split-aes-key-01";

type Shares = BTreeMap<ParticipantId, SplitAesKeyShare>;

fn dkg_parties(session: SessionId, ids: &[ParticipantId], threshold: u16) -> Vec<SplitAesDkg> {
    ids.iter()
        .map(|me| {
            SplitAesDkg::new(DkgParams {
                session,
                me: *me,
                participants: ids.to_vec(),
                threshold,
            })
            .unwrap()
        })
        .collect()
}

fn run_dkg(ids: &[ParticipantId], threshold: u16, seed: u64, order: DeliveryOrder) -> Shares {
    let outcome = Simulation::new(dkg_parties(session(seed as u8), ids, threshold))
        .order(order)
        .run(&mut rng(seed));
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    assert!(outcome.stalled.is_empty(), "stalled: {:?}", outcome.stalled);
    assert_eq!(outcome.outputs.len(), ids.len());
    outcome.outputs
}

/// Runs a DKG whose messages pass through `hook`; returns the errors by party.
fn run_dkg_with_hook(
    ids: &[ParticipantId],
    threshold: u16,
    hook: impl FnMut(ParticipantId, ParticipantId, &mut SplitAesDkgMessage) -> Delivery,
) -> BTreeMap<ParticipantId, ProtocolError> {
    Simulation::new(dkg_parties(session(77), ids, threshold))
        .run_with_hook(&mut rng(77), hook)
        .errors
}

fn point(bytes: [u8; 32]) -> RistrettoPoint {
    CompressedRistretto(bytes).decompress().unwrap()
}

fn secret_of(share: &SplitAesKeyShare) -> Scalar {
    let bytes: [u8; 32] = share.secret_share_bytes().as_slice().try_into().unwrap();
    Scalar::from_canonical_bytes(bytes).unwrap()
}

/// TEST ONLY: `g^k` from the shares of `ids` (the DPRF key `k` by Lagrange interpolation at 0).
fn reconstruct_public(shares: &Shares, ids: &[ParticipantId]) -> RistrettoPoint {
    let x = |id: ParticipantId| Scalar::from(u64::from(id));
    let mut k = Scalar::ZERO;
    for i in ids {
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for j in ids.iter().filter(|j| *j != i) {
            num *= x(*j);
            den *= x(*j) - x(*i);
        }
        k += secret_of(&shares[i]) * num * den.invert();
    }
    RistrettoPoint::mul_base(&k)
}

fn holders<'a>(shares: &'a Shares, ids: &[ParticipantId]) -> Vec<&'a SplitAesKeyShare> {
    ids.iter().map(|id| &shares[id]).collect()
}

fn check_dkg(ids: &[ParticipantId], t: u16, seed: u64, order: DeliveryOrder) {
    let shares = run_dkg(ids, t, seed, order);
    let first = &shares[&ids[0]];
    let public = first.public_keys();
    for (id, share) in &shares {
        assert_eq!(share.participant(), *id);
        assert_eq!(share.threshold(), t);
        assert_eq!(share.group_public_key(), first.group_public_key());
        assert_eq!(share.public_keys(), public, "all agree on the public keys");
        assert_eq!(
            public.public_share(*id).unwrap(),
            RistrettoPoint::mul_base(&secret_of(share))
                .compress()
                .to_bytes()
        );
    }
    assert_eq!(public.participants(), ids.to_vec());
    let group_key = point(public.group_public_key());
    for subset in subsets(ids, usize::from(t)) {
        assert_eq!(reconstruct_public(&shares, &subset), group_key);
    }
    for subset in subsets(ids, usize::from(t) - 1) {
        assert_ne!(reconstruct_public(&shares, &subset), group_key);
    }
}

#[test]
fn dkg_2_of_3() {
    check_dkg(&[1, 2, 3], 2, 1, DeliveryOrder::Fifo);
}

#[test]
fn dkg_3_of_5_fifo_and_shuffled() {
    check_dkg(&[1, 2, 3, 4, 5], 3, 2, DeliveryOrder::Fifo);
    for seed in 3..6 {
        check_dkg(
            &[2, 4, 7, 9, 300],
            3,
            seed,
            DeliveryOrder::Shuffled { seed },
        );
    }
}

#[test]
fn dkg_refuses_bad_parameters_and_foreign_messages() {
    let params = |me, participants: Vec<u16>, threshold| DkgParams {
        session: session(1),
        me,
        participants,
        threshold,
    };
    assert!(SplitAesDkg::new(params(1, vec![1, 2, 3], 1)).is_err());
    assert!(SplitAesDkg::new(params(1, vec![1, 2, 3], 4)).is_err());
    assert!(SplitAesDkg::new(params(4, vec![1, 2, 3], 2)).is_err());
    assert!(SplitAesDkg::new(params(1, vec![1, 2, 2], 2)).is_err());
    assert!(SplitAesDkg::new(params(0, vec![0, 1, 2], 2)).is_err());

    let mut party = SplitAesDkg::new(params(1, vec![1, 2, 3], 2)).unwrap();
    let mut r = rng(1);
    let out = party.start(&mut r).unwrap();
    assert_eq!(out.len(), 3, "one broadcast and two private shares");
    let other = SplitAesDkgMessage::new(session(2), SplitAesDkgBody::Round1(vec![]));
    assert!(matches!(
        party.handle(2, other, &mut r),
        Err(ProtocolError::WrongSession)
    ));
    let stranger = SplitAesDkgMessage::new(session(1), SplitAesDkgBody::Round1(vec![]));
    assert_eq!(
        party.handle(9, stranger, &mut r).unwrap_err().culprits(),
        &[9]
    );
    assert!(!party.is_aborted(), "foreign messages do not abort the run");
}

#[test]
fn dkg_blames_a_corrupted_share() {
    let errors = run_dkg_with_hook(&[1, 2, 3], 2, |from, to, m| {
        if let (2, 1, SplitAesDkgBody::Share(s)) = (from, to, &mut m.body) {
            *s = SecretBytes::new(Scalar::from(5u64).to_bytes().to_vec());
        }
        Delivery::Deliver
    });
    assert_eq!(errors.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(errors[&1].culprits(), &[2]);
}

#[test]
fn dkg_blames_an_equivocating_sender() {
    let errors = run_dkg_with_hook(&[1, 2, 3], 2, |from, to, m| {
        if let (2, 3, SplitAesDkgBody::Round1(payload)) = (from, to, &mut m.body) {
            let mut p = DkgRound1Payload::from_bytes(payload).unwrap();
            p.commitments[1] = RistrettoPoint::mul_base(&Scalar::from(9u64))
                .compress()
                .to_bytes();
            *payload = p.to_bytes();
        }
        Delivery::Deliver
    });
    assert_eq!(errors.len(), 3, "every party aborts");
    for e in errors.values() {
        assert_eq!(e.culprits(), &[2], "{e}");
    }
}

/// A hook that replaces `sender`'s round-1 payload by `tamper(payload)` for everyone AND rewrites the
/// sender's own echo to match, so that the echo round agrees and the payload checks run on the tampered one.
fn consistent_round1_tamper(
    sender: ParticipantId,
    tamper: impl Fn(&[u8]) -> Vec<u8>,
) -> impl FnMut(ParticipantId, ParticipantId, &mut SplitAesDkgMessage) -> Delivery {
    let mut tampered: Option<Vec<u8>> = None;
    move |from, _, m| {
        if from == sender {
            match &mut m.body {
                SplitAesDkgBody::Round1(payload) => {
                    *payload = tamper(payload);
                    tampered = Some(payload.clone());
                }
                SplitAesDkgBody::Echo(echo) => {
                    let payload = tampered
                        .as_ref()
                        .expect("round 1 delivered before the echo");
                    echo.insert(
                        sender,
                        EchoBroadcast::digest(ECHO_DOMAIN, &m.session, sender, payload),
                    );
                }
                SplitAesDkgBody::Share(_) => {}
            }
        }
        Delivery::Deliver
    }
}

#[test]
fn dkg_blames_a_bad_proof_of_knowledge_and_a_malformed_payload() {
    let errors = run_dkg_with_hook(
        &[1, 2, 3],
        2,
        consistent_round1_tamper(2, |payload| {
            let mut p = DkgRound1Payload::from_bytes(payload).unwrap();
            let z = Scalar::from_canonical_bytes(p.proof.response).unwrap() + Scalar::ONE;
            p.proof.response = z.to_bytes();
            p.to_bytes()
        }),
    );
    assert_eq!(errors.len(), 3, "every party aborts");
    for (id, e) in &errors {
        assert_eq!(e.culprits(), &[2], "{e}");
        if *id != 2 {
            assert!(e.to_string().contains("proof of knowledge"), "{e}");
        }
    }
    // A truncated payload, identical for all.
    let errors = run_dkg_with_hook(
        &[1, 2, 3],
        2,
        consistent_round1_tamper(3, |payload| payload[..payload.len() - 10].to_vec()),
    );
    assert_eq!(errors.len(), 3);
    for (id, e) in &errors {
        assert_eq!(e.culprits(), &[3], "{e}");
        if *id != 3 {
            assert!(e.to_string().contains("truncated"), "{e}");
        }
    }
}

#[test]
fn dkg_blames_a_replayed_round1_payload() {
    // 3 replays 1's payload (commitments and proof of knowledge) as its own, a rogue-key style copy: the
    // proof binds the sender id, so it fails for 3.
    let ones = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = ones.clone();
    let mut replay = consistent_round1_tamper(3, move |_| seen.borrow().clone());
    let errors = run_dkg_with_hook(&[1, 2, 3], 2, move |from, to, m| {
        if let (1, SplitAesDkgBody::Round1(payload)) = (from, &m.body) {
            *ones.borrow_mut() = payload.clone();
        }
        replay(from, to, m)
    });
    assert_eq!(errors.len(), 3);
    for (id, e) in &errors {
        assert_eq!(e.culprits(), &[3], "{e}");
        if *id != 3 {
            assert!(e.to_string().contains("proof of knowledge"), "{e}");
        }
    }
}

#[test]
fn round_trips_with_other_subsets() {
    let shares = run_dkg(&[1, 2, 3], 2, 10, DeliveryOrder::Fifo);
    let public = shares[&1].public_keys();
    let mut r = rng(11);
    let pairs = subsets(&[1u16, 2, 3], 2);
    for len in [0usize, 1, 1024, 1 << 20] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        for enc in &pairs {
            let blob = encrypt_in_process(
                &holders(&shares, enc),
                &public,
                KEY_ID,
                b"aad",
                &plaintext,
                &mut r,
            )
            .unwrap();
            assert_eq!(blob.len(), blob_len(len, 2));
            assert_eq!(blob[0], 2);
            assert_eq!(&blob[1..17], &KEY_ID);
            for dec in pairs.iter().filter(|d| *d != enc) {
                let opened =
                    decrypt_in_process(&holders(&shares, dec), &public, b"aad", &blob, &mut r)
                        .unwrap();
                assert_eq!(opened.as_slice(), plaintext.as_slice(), "len {len}");
            }
        }
    }
    // All three holders work too; one holder is refused.
    let blob = encrypt_in_process(
        &holders(&shares, &[1, 2, 3]),
        &public,
        KEY_ID,
        b"",
        b"x",
        &mut r,
    )
    .unwrap();
    assert!(matches!(
        decrypt_in_process(&holders(&shares, &[2]), &public, b"", &blob, &mut r),
        Err(ProtocolError::InvalidParameters(_))
    ));
    assert_eq!(
        decrypt_in_process(&holders(&shares, &[3, 1]), &public, b"", &blob, &mut r)
            .unwrap()
            .as_slice(),
        b"x"
    );
}

#[test]
fn tampering_wrong_aad_and_another_key_fail() {
    let shares = run_dkg(&[1, 2, 3], 2, 20, DeliveryOrder::Fifo);
    let public = shares[&1].public_keys();
    let other = run_dkg(&[1, 2, 3], 2, 21, DeliveryOrder::Fifo);
    let mut r = rng(22);
    let enc = holders(&shares, &[1, 2]);
    let dec = holders(&shares, &[2, 3]);
    let blob =
        encrypt_in_process(&enc, &public, KEY_ID, b"context", b"attack at dawn", &mut r).unwrap();
    assert_eq!(
        decrypt_in_process(&dec, &public, b"context", &blob, &mut r)
            .unwrap()
            .as_slice(),
        b"attack at dawn"
    );
    for position in 0..blob.len() {
        for flip in [0x01u8, 0x80] {
            let mut tampered = blob.clone();
            tampered[position] ^= flip;
            let e = decrypt_in_process(&dec, &public, b"context", &tampered, &mut r).unwrap_err();
            match position {
                0 => assert!(matches!(e, ProtocolError::UnsupportedVersion(_)), "{e}"),
                _ => assert!(matches!(e, ProtocolError::Encoding(_)), "{e}"),
            }
        }
    }
    for aad in [&b""[..], b"Context", b"context\0"] {
        let e = decrypt_in_process(&dec, &public, aad, &blob, &mut r).unwrap_err();
        assert!(e.to_string().contains("does not authenticate"), "{e}");
    }
    let other_public = other[&1].public_keys();
    let e = decrypt_in_process(
        &holders(&other, &[1, 3]),
        &other_public,
        b"context",
        &blob,
        &mut r,
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not authenticate"), "{e}");
    // Shares of one key with the public keys of another: every partial is refused.
    let e = decrypt_in_process(&dec, &other_public, b"context", &blob, &mut r).unwrap_err();
    assert_eq!(e.culprits(), &[2, 3]);

    for len in 0..blob_len(0, 2) {
        assert!(CiphertextBlob::parse(&blob[..len]).is_err(), "len {len}");
    }
    let short = &blob[..blob.len() - 1];
    assert!(decrypt_in_process(&dec, &public, b"context", short, &mut r).is_err());
    let mut v3 = blob.clone();
    v3[0] = 3;
    assert!(matches!(
        CiphertextBlob::parse(&v3),
        Err(vhsm_core::ciphertext::BlobError::UnsupportedVersion(3))
    ));
    let parsed = CiphertextBlob::parse(&blob).unwrap();
    assert_eq!(parsed.to_bytes(), blob);
    assert_eq!(parsed.key_id, KEY_ID);
}

#[test]
fn per_message_keys_differ_for_equal_plaintexts() {
    let shares = run_dkg(&[1, 2, 3], 2, 30, DeliveryOrder::Fifo);
    let public = shares[&1].public_keys();
    let mut r = rng(31);
    let plaintext = b"same plaintext";
    let enc = holders(&shares, &[1, 3]);
    let blob1 = encrypt_in_process(&enc, &public, KEY_ID, b"", plaintext, &mut r).unwrap();
    let blob2 = encrypt_in_process(&enc, &public, KEY_ID, b"", plaintext, &mut r).unwrap();
    assert_ne!(blob1, blob2);
    let (b1, b2) = (
        CiphertextBlob::parse(&blob1).unwrap(),
        CiphertextBlob::parse(&blob2).unwrap(),
    );
    assert_ne!(b1.alpha, b2.alpha, "α differs");
    let key_for = |alpha: &[u8; 32], ids: &[ParticipantId], r: &mut _| {
        let partials = ids
            .iter()
            .map(|id| (*id, evaluate(&shares[id], &KEY_ID, alpha, r)))
            .collect();
        combine(&public, &KEY_ID, alpha, &partials).unwrap()
    };
    let k1 = key_for(&b1.alpha, &[1, 2], &mut r);
    let k2 = key_for(&b2.alpha, &[1, 2], &mut r);
    assert_ne!(k1, k2, "derived keys differ");
    assert_eq!(k1, key_for(&b1.alpha, &[2, 3], &mut r), "any t-subset");
    assert_eq!(k1, key_for(&b1.alpha, &[1, 2, 3], &mut r), "more than t");
    assert_eq!(
        open(&k1, &b1, b"").unwrap().as_slice(),
        plaintext.as_slice()
    );
    assert!(open(&k2, &b1, b"").is_err(), "another message's key");
    assert_eq!(format!("{k1:?}"), "DerivedKey(<redacted>)");

    // seal/open directly, with α from message_input.
    let rho = [7u8; 32];
    let alpha = message_input(&KEY_ID, b"a", b"hello", &rho);
    assert_ne!(alpha, message_input(&KEY_ID, b"a", b"hello", &[8u8; 32]));
    assert_ne!(alpha, message_input(&KEY_ID, b"", b"ahello", &rho));
    let key = key_for(&alpha, &[3, 1], &mut r);
    let receipt_of = |alpha: &[u8; 32], ids: &[ParticipantId], r: &mut _| {
        EncryptionReceipt::new(
            ids.iter()
                .map(|id| evaluate_receipt(&shares[id], &KEY_ID, alpha, r))
                .collect(),
        )
    };
    let receipt = receipt_of(&alpha, &[3, 1], &mut r);
    let blob = seal(&key, KEY_ID, alpha, &receipt, b"a", b"hello", &rho, &mut r).unwrap();
    let parsed = CiphertextBlob::parse(&blob).unwrap();
    assert_eq!(open(&key, &parsed, b"a").unwrap().as_slice(), b"hello");
    // The blob carries the receipt, and it verifies against the group key.
    let carried = EncryptionReceipt::from_bytes(&parsed.receipt).unwrap();
    assert_eq!(carried, receipt);
    carried
        .verify(&public.group_public_key(), &KEY_ID, &alpha)
        .unwrap();
    // A blob sealed under the right key but with an α that is not the plaintext's is refused on opening.
    let wrong_alpha = message_input(&KEY_ID, b"a", b"other", &rho);
    let key_w = key_for(&wrong_alpha, &[1, 2], &mut r);
    let receipt_w = receipt_of(&wrong_alpha, &[1, 2], &mut r);
    let blob = seal(
        &key_w,
        KEY_ID,
        wrong_alpha,
        &receipt_w,
        b"a",
        b"hello",
        &rho,
        &mut r,
    )
    .unwrap();
    let e = open(&key_w, &CiphertextBlob::parse(&blob).unwrap(), b"a").unwrap_err();
    assert!(e.to_string().contains("does not authenticate"), "{e}");
}

#[test]
fn combine_names_every_bad_partial_and_the_honest_ones_still_work() {
    let ids = [1u16, 2, 3, 4, 5];
    let shares = run_dkg(&ids, 2, 40, DeliveryOrder::Fifo);
    let public = shares[&1].public_keys();
    let mut r = rng(41);
    let alpha = [0x33u8; 32];
    let honest: BTreeMap<ParticipantId, PartialEvaluation> = ids
        .iter()
        .map(|id| (*id, evaluate(&shares[id], &KEY_ID, &alpha, &mut r)))
        .collect();
    for (id, p) in &honest {
        verify_partial(&public, &KEY_ID, &alpha, *id, p).unwrap();
    }
    let reference = combine(&public, &KEY_ID, &alpha, &honest).unwrap();

    // 1: H^{k_1 + 1} with a proof made for it (with witness k_1 + 1): valid-looking, wrong.
    let h = input_point(&KEY_ID, &alpha);
    let k1 = secret_of(&shares[&1]) + Scalar::ONE;
    let wrong_point = h * k1;
    let statement = DleqStatement {
        key_id: &KEY_ID,
        alpha: &alpha,
        participant: 1,
        public_share: point(public.public_share(1).unwrap()),
        input: h,
        output: wrong_point,
    };
    let mut bad1 = honest[&1].clone();
    bad1.point = wrong_point.compress().to_bytes();
    bad1.proof = DleqProof::prove(&statement, &k1, &mut r);
    // 2: garbage proof.
    let mut bad2 = honest[&2].clone();
    bad2.proof = DleqProof {
        challenge: [0x42; 32],
        response: [0x07; 32],
    };
    // 3 sends 4's (valid) partial: claims another participant id.
    let bad3 = honest[&4].clone();
    // 4: not a point.
    let mut bad4 = honest[&4].clone();
    bad4.point = [0xff; 32];
    // 9: not a holder of this key.
    let mut bad9 = honest[&5].clone();
    bad9.participant = 9;

    let mut partials = BTreeMap::from([
        (1, bad1.clone()),
        (2, bad2.clone()),
        (3, bad3.clone()),
        (5, honest[&5].clone()),
        (9, bad9.clone()),
    ]);
    let e = combine(&public, &KEY_ID, &alpha, &partials).unwrap_err();
    assert_eq!(e.culprits(), &[1, 2, 3, 9], "{e}");
    partials.insert(4, bad4.clone());
    let e = combine(&public, &KEY_ID, &alpha, &partials).unwrap_err();
    assert_eq!(e.culprits(), &[1, 2, 3, 4, 9], "{e}");
    for (id, p) in [(1, &bad1), (2, &bad2), (3, &bad3), (4, &bad4), (9, &bad9)] {
        assert_eq!(
            verify_partial(&public, &KEY_ID, &alpha, id, p)
                .unwrap_err()
                .culprits(),
            &[id]
        );
    }
    // An honest partial for another α or key id does not verify (the proof is bound to them).
    assert!(verify_partial(&public, &KEY_ID, &[0x34; 32], 5, &honest[&5]).is_err());
    assert!(verify_partial(&public, b"another key id..", &alpha, 5, &honest[&5]).is_err());

    // Ask other nodes: the honest t still combine, to the same key.
    let retry = BTreeMap::from([(4, honest[&4].clone()), (5, honest[&5].clone())]);
    assert_eq!(
        combine(&public, &KEY_ID, &alpha, &retry).unwrap(),
        reference
    );
    // Fewer than t is refused.
    let one = BTreeMap::from([(4, honest[&4].clone())]);
    assert!(matches!(
        combine(&public, &KEY_ID, &alpha, &one),
        Err(ProtocolError::InvalidParameters(_))
    ));
    assert!(format!("{:?}", honest[&4]).contains("participant: 4"));
}

#[test]
fn encodings_round_trip_and_refuse_other_versions() {
    let shares = run_dkg(&[1, 2, 3], 2, 50, DeliveryOrder::Fifo);
    let share = &shares[&2];
    let public = share.public_keys();

    let bytes = share.to_bytes();
    let decoded = SplitAesKeyShare::from_bytes(&bytes).unwrap();
    assert_eq!(&decoded, share);
    assert_ne!(&decoded, &shares[&1]);
    let public_bytes = public.to_bytes();
    assert_eq!(
        SplitAesPublicKeys::from_bytes(&public_bytes).unwrap(),
        public
    );
    assert_eq!(public_bytes.len(), 1 + 2 + 2 + 32 + 3 * 34);

    let mut v2 = bytes.to_vec();
    v2[0] = 2;
    assert!(matches!(
        SplitAesKeyShare::from_bytes(&v2),
        Err(ProtocolError::UnsupportedVersion(2))
    ));
    let mut v2 = public_bytes.clone();
    v2[0] = 2;
    assert!(matches!(
        SplitAesPublicKeys::from_bytes(&v2),
        Err(ProtocolError::UnsupportedVersion(2))
    ));
    // Another share's secret under this participant: does not match the public share.
    let mut swapped = bytes.to_vec();
    swapped[3..35].copy_from_slice(&shares[&1].secret_share_bytes());
    assert!(SplitAesKeyShare::from_bytes(&swapped).is_err());
    // A public share replaced by another valid point: inconsistent with the group key.
    let mut inconsistent = public_bytes.clone();
    let g = RistrettoPoint::mul_base(&Scalar::ONE).compress().to_bytes();
    let last = inconsistent.len() - 32;
    inconsistent[last..].copy_from_slice(&g);
    assert!(SplitAesPublicKeys::from_bytes(&inconsistent).is_err());
    // Trailing bytes.
    let mut trailing = public_bytes.clone();
    trailing.push(0);
    assert!(SplitAesPublicKeys::from_bytes(&trailing).is_err());

    // Secrets are not printed.
    let debug = format!("{share:?}");
    assert!(debug.contains("<redacted>"));
    assert!(!debug.contains(&hex::encode(share.secret_share_bytes().as_slice())));

    let mut r = rng(51);
    let partial = evaluate(share, &KEY_ID, &[1; 32], &mut r);
    let pbytes = partial.to_bytes().unwrap();
    assert_eq!(PartialEvaluation::from_bytes(&pbytes).unwrap(), partial);
    let mut pv2 = pbytes.clone();
    pv2[0] = 2;
    assert!(matches!(
        PartialEvaluation::from_bytes(&pv2),
        Err(ProtocolError::UnsupportedVersion(2))
    ));

    let message = SplitAesDkgMessage::new(
        session(5),
        SplitAesDkgBody::Echo(BTreeMap::from([(1, [3; 32])])),
    );
    let mbytes = message.to_bytes().unwrap();
    assert_eq!(
        SplitAesDkgMessage::from_bytes(&mbytes)
            .unwrap()
            .to_bytes()
            .unwrap(),
        mbytes
    );
    let mut mv2 = mbytes.clone();
    mv2[0] = 2;
    assert!(matches!(
        SplitAesDkgMessage::from_bytes(&mv2),
        Err(ProtocolError::UnsupportedVersion(2))
    ));
}

/// Valid encodings to mutate in the proptest (one DKG, once).
fn samples() -> &'static [Vec<u8>; 4] {
    static SAMPLES: std::sync::OnceLock<[Vec<u8>; 4]> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(|| {
        let shares = run_dkg(&[1, 2, 3], 2, 60, DeliveryOrder::Fifo);
        let public = shares[&1].public_keys();
        let mut r = rng(61);
        let blob = encrypt_in_process(
            &holders(&shares, &[1, 2]),
            &public,
            KEY_ID,
            b"",
            b"hi",
            &mut r,
        )
        .unwrap();
        let partial = evaluate(&shares[&1], &KEY_ID, &[2; 32], &mut r)
            .to_bytes()
            .unwrap();
        [
            shares[&1].to_bytes().to_vec(),
            public.to_bytes(),
            blob,
            partial,
        ]
    })
}

fn decode_all(bytes: &[u8]) {
    let _ = SplitAesKeyShare::from_bytes(bytes);
    let _ = SplitAesPublicKeys::from_bytes(bytes);
    let _ = CiphertextBlob::parse(bytes);
    let _ = PartialEvaluation::from_bytes(bytes);
    let _ = SplitAesDkgMessage::from_bytes(bytes);
    let _ = DkgRound1Payload::from_bytes(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_all(&bytes);
        if let Ok(keys) = SplitAesPublicKeys::from_bytes(&bytes) {
            prop_assert_eq!(keys.to_bytes(), bytes);
        }
    }

    #[test]
    fn decoding_mutated_encodings_never_panics(which in 0usize..4, position in any::<prop::sample::Index>(), value in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let original = &samples()[which];
        let mut bytes = original.clone();
        let i = position.index(bytes.len());
        bytes[i] = value;
        decode_all(&bytes);
        decode_all(&bytes[..cut.index(bytes.len() + 1)]);
        if bytes != *original {
            match which {
                0 => prop_assert!(SplitAesKeyShare::from_bytes(&bytes).is_err()),
                1 => prop_assert!(SplitAesPublicKeys::from_bytes(&bytes).is_err()),
                _ => {}
            }
        }
    }
}
