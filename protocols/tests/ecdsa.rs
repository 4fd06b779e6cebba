//! Threshold ECDSA (DKLs23) through the simulator, written once and run for secp256k1 and P-256
//! (CONVENTIONS §9): key generation 2-of-3 and 3-of-5, signing with several t-subsets, independent
//! verification with `k256` / `p256`, the digest rules, misbehaviour with the culprit named (§10), refusal of
//! messages that do not belong, and the encodings of shares and public keys.
//!
//! Key generation is expensive (seconds), so each (curve, t-of-n) key set is generated once per test binary
//! (a `OnceLock` fixture) and shared by the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::elliptic_curve::ff::{Field, PrimeField};
use k256::elliptic_curve::group::Group;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::Digest;
use vhsm_protocols::ecdsa::{
    signing_digest, verify_prehash, DkgParams, Dkls23, EcdsaBody, EcdsaCurve, EcdsaDkg,
    EcdsaKeyShare, EcdsaMessage, EcdsaPublicKeys, EcdsaSignature, EcdsaSigning, HashAlg,
    SignParams, ThresholdEcdsa,
};
use vhsm_protocols::simulator::{Delivery, DeliveryOrder, Simulation, SimulationOutcome};
use vhsm_protocols::{ParticipantId, Protocol, ProtocolError, SecretBytes, SessionId};

type Keys = BTreeMap<ParticipantId, Arc<EcdsaKeyShare>>;

const CURVES: [EcdsaCurve; 2] = [EcdsaCurve::Secp256k1, EcdsaCurve::P256];

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn session(seed: u8) -> SessionId {
    SessionId([seed; 32])
}

fn dkg_parties(
    curve: EcdsaCurve,
    session: SessionId,
    ids: &[ParticipantId],
    threshold: u16,
) -> Vec<EcdsaDkg> {
    ids.iter()
        .map(|me| {
            Dkls23::dkg(
                curve,
                DkgParams {
                    session,
                    me: *me,
                    participants: ids.to_vec(),
                    threshold,
                },
            )
            .unwrap()
        })
        .collect()
}

/// Runs an honest DKG; returns every participant's share.
fn run_dkg(curve: EcdsaCurve, ids: &[ParticipantId], threshold: u16, order: DeliveryOrder) -> Keys {
    let started = std::time::Instant::now();
    let outcome = Simulation::new(dkg_parties(curve, session(threshold as u8), ids, threshold))
        .order(order)
        .run(&mut rng(u64::from(threshold)));
    eprintln!(
        "DKLs23 DKG {curve} {threshold}-of-{}: {:.1} s, {} messages",
        ids.len(),
        started.elapsed().as_secs_f64(),
        outcome.delivered
    );
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    assert!(outcome.stalled.is_empty(), "stalled: {:?}", outcome.stalled);
    assert_eq!(outcome.outputs.len(), ids.len());
    outcome
        .outputs
        .into_iter()
        .map(|(id, share)| (id, Arc::new(share)))
        .collect()
}

/// The key sets, generated once per curve and shape. 2-of-3 with reordered delivery, 3-of-5 in order.
fn keys(curve: EcdsaCurve, t: u16) -> &'static Keys {
    static K1_2: OnceLock<Keys> = OnceLock::new();
    static K1_3: OnceLock<Keys> = OnceLock::new();
    static P_2: OnceLock<Keys> = OnceLock::new();
    static P_3: OnceLock<Keys> = OnceLock::new();
    let (cell, ids, order): (_, &[ParticipantId], _) = match (curve, t) {
        (EcdsaCurve::Secp256k1, 2) => (&K1_2, &[1, 2, 3], DeliveryOrder::Shuffled { seed: 7 }),
        (EcdsaCurve::P256, 2) => (&P_2, &[1, 2, 3], DeliveryOrder::Shuffled { seed: 8 }),
        (EcdsaCurve::Secp256k1, 3) => (&K1_3, &[1, 2, 3, 4, 5], DeliveryOrder::Fifo),
        (EcdsaCurve::P256, 3) => (&P_3, &[1, 2, 3, 4, 5], DeliveryOrder::Fifo),
        _ => unreachable!(),
    };
    cell.get_or_init(|| run_dkg(curve, ids, t, order))
}

fn signing_parties(
    keys: &Keys,
    signers: &[ParticipantId],
    session: SessionId,
    digest: [u8; 32],
) -> Vec<EcdsaSigning> {
    signers
        .iter()
        .map(|me| {
            Dkls23::signing(
                Arc::clone(&keys[me]),
                SignParams {
                    session,
                    me: *me,
                    signers: signers.to_vec(),
                    digest,
                },
            )
            .unwrap()
        })
        .collect()
}

/// Signs `digest` with `signers` through the simulator; every signer must output the same signature.
fn sign(keys: &Keys, signers: &[ParticipantId], digest: [u8; 32], seed: u64) -> EcdsaSignature {
    let outcome = Simulation::new(signing_parties(keys, signers, session(seed as u8), digest))
        .shuffled(seed)
        .run(&mut rng(seed));
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    assert!(outcome.stalled.is_empty(), "stalled: {:?}", outcome.stalled);
    assert_eq!(outcome.outputs.len(), signers.len());
    let first = *outcome.outputs.values().next().unwrap();
    assert!(
        outcome.outputs.values().all(|s| *s == first),
        "every signer outputs the same signature"
    );
    first
}

/// Independent verification with the curve crate directly; secp256k1 signatures must be low-S.
fn verify_independently(curve: EcdsaCurve, public_key: &[u8], digest: &[u8], sig: &EcdsaSignature) {
    let bytes = sig.to_bytes();
    match curve {
        EcdsaCurve::Secp256k1 => {
            let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).unwrap();
            let signature = k256::ecdsa::Signature::from_slice(&bytes).unwrap();
            assert!(
                signature.normalize_s() == signature,
                "secp256k1 signature is low-S"
            );
            key.verify_prehash(digest, &signature).unwrap();
        }
        EcdsaCurve::P256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).unwrap();
            let signature = p256::ecdsa::Signature::from_slice(&bytes).unwrap();
            key.verify_prehash(digest, &signature).unwrap();
        }
    }
}

/// TEST ONLY: the group secret by Lagrange interpolation at 0 of the shares of `ids` (dkls23 index = rank in
/// the ascending participant list), and whether it is the secret of the group key.
fn interpolated_secret_matches(curve: EcdsaCurve, keys: &Keys, ids: &[ParticipantId]) -> bool {
    fn check<C>(
        keys: &Keys,
        ids: &[ParticipantId],
        pk: &[u8],
        sec1: impl Fn(C::ProjectivePoint) -> Vec<u8>,
    ) -> bool
    where
        C: k256::elliptic_curve::CurveArithmetic,
        C::Scalar: PrimeField,
    {
        let all = keys.values().next().unwrap().participants();
        let x = |id: ParticipantId| {
            C::Scalar::from(all.iter().position(|p| *p == id).unwrap() as u64 + 1)
        };
        let mut secret = C::Scalar::from(0u64);
        for i in ids {
            let bytes = keys[i].secret_share_bytes();
            let mut repr = <C::Scalar as PrimeField>::Repr::default();
            AsMut::<[u8]>::as_mut(&mut repr).copy_from_slice(&bytes);
            let s_i = Option::<C::Scalar>::from(C::Scalar::from_repr(repr)).unwrap();
            let mut num = C::Scalar::from(1u64);
            let mut den = C::Scalar::from(1u64);
            for j in ids.iter().filter(|j| *j != i) {
                num *= x(*j);
                den *= x(*j) - x(*i);
            }
            secret += s_i * num * Option::<C::Scalar>::from(den.invert()).unwrap();
        }
        sec1(C::ProjectivePoint::generator() * secret) == pk
    }
    let pk = keys.values().next().unwrap().public_key_sec1();
    match curve {
        EcdsaCurve::Secp256k1 => check::<k256::Secp256k1>(keys, ids, &pk, |p| {
            k256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&p.to_affine(), false)
                .as_bytes()
                .to_vec()
        }),
        EcdsaCurve::P256 => check::<p256::NistP256>(keys, ids, &pk, |p| {
            k256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&p.to_affine(), false)
                .as_bytes()
                .to_vec()
        }),
    }
}

fn check_keys_and_signing(curve: EcdsaCurve, t: u16, subsets: &[&[ParticipantId]]) {
    let keys = keys(curve, t);
    let first = keys.values().next().unwrap();
    let pk = first.public_key_sec1();
    assert_eq!(pk.len(), 65);
    assert_eq!(pk[0], 0x04);
    for (id, share) in keys {
        assert_eq!(share.participant(), *id);
        assert_eq!(share.curve(), curve);
        assert_eq!(share.threshold(), t);
        assert_eq!(share.public_key_sec1(), pk, "all agree on the public key");
        assert_eq!(share.public_keys(), first.public_keys());
        assert_eq!(
            share.participants(),
            keys.keys().copied().collect::<Vec<_>>()
        );
    }
    for (k, signers) in subsets.iter().enumerate() {
        let message = format!("vhsm ecdsa test message {k}");
        let digest = signing_digest(HashAlg::Sha256, message.as_bytes()).unwrap();
        let sig = sign(keys, signers, digest, 100 + k as u64);
        assert!(verify_prehash(curve, &pk, &digest, &sig.to_bytes()));
        verify_independently(curve, &pk, &digest, &sig);
        assert!(!verify_prehash(curve, &pk, &[0x11; 32], &sig.to_bytes()));
        assert!(interpolated_secret_matches(curve, keys, signers));
    }
    let short: Vec<ParticipantId> = keys.keys().copied().take(usize::from(t) - 1).collect();
    if short.len() >= 2 {
        assert!(!interpolated_secret_matches(curve, keys, &short));
    }
}

#[test]
fn secp256k1_2_of_3_signs_with_every_pair() {
    check_keys_and_signing(EcdsaCurve::Secp256k1, 2, &[&[1, 2], &[1, 3], &[2, 3]]);
}

#[test]
fn p256_2_of_3_signs_with_every_pair() {
    check_keys_and_signing(EcdsaCurve::P256, 2, &[&[1, 2], &[1, 3], &[2, 3]]);
}

#[test]
fn secp256k1_3_of_5_signs_with_several_triples() {
    check_keys_and_signing(
        EcdsaCurve::Secp256k1,
        3,
        &[&[1, 2, 3], &[1, 3, 5], &[2, 4, 5]],
    );
}

#[test]
fn p256_3_of_5_signs_with_several_triples() {
    check_keys_and_signing(EcdsaCurve::P256, 3, &[&[1, 2, 3], &[1, 3, 5], &[2, 4, 5]]);
}

#[test]
fn signing_digest_follows_sec1_truncation() {
    let m = b"the quick brown fox";
    assert_eq!(
        signing_digest(HashAlg::Sha256, m).unwrap().to_vec(),
        sha2::Sha256::digest(m).to_vec()
    );
    assert_eq!(
        signing_digest(HashAlg::Sha384, m).unwrap().to_vec(),
        sha2::Sha384::digest(m)[..32].to_vec()
    );
    assert_eq!(
        signing_digest(HashAlg::Sha512, m).unwrap().to_vec(),
        sha2::Sha512::digest(m)[..32].to_vec()
    );
    let d20 = [0x5a; 20];
    let mut expected = [0u8; 32];
    expected[12..].copy_from_slice(&d20);
    assert_eq!(signing_digest(HashAlg::Prehashed, &d20).unwrap(), expected);
    let d48: Vec<u8> = (0..48).collect();
    assert_eq!(
        signing_digest(HashAlg::Prehashed, &d48).unwrap().to_vec(),
        d48[..32].to_vec()
    );
    let d64: Vec<u8> = (100..164).collect();
    assert_eq!(
        signing_digest(HashAlg::Prehashed, &d64).unwrap().to_vec(),
        d64[..32].to_vec()
    );
    for bad in [&[][..], &[0u8; 65][..]] {
        assert!(matches!(
            signing_digest(HashAlg::Prehashed, bad),
            Err(vhsm_core::digest::DigestError::PrehashedLength(_))
        ));
    }
}

/// A threshold signature over `signing_digest(alg, m)` verifies with the curve crate's `verify_prehash` on
/// the FULL digest (which applies bits2int itself): our truncation is the standard one. A 20-byte prehashed
/// digest checks the zero-padding rule the same way.
#[test]
fn truncated_digests_verify_as_the_standard_says() {
    for curve in CURVES {
        let keys = keys(curve, 2);
        let pk = keys[&1].public_key_sec1();
        let m = b"sign me with a long hash";
        let cases: [(HashAlg, Vec<u8>); 3] = [
            (HashAlg::Sha384, sha2::Sha384::digest(m).to_vec()),
            (HashAlg::Sha512, sha2::Sha512::digest(m).to_vec()),
            (HashAlg::Prehashed, vec![0xc3; 20]),
        ];
        for (k, (alg, full)) in cases.iter().enumerate() {
            let input: &[u8] = if *alg == HashAlg::Prehashed { full } else { m };
            let digest = signing_digest(*alg, input).unwrap();
            let sig = sign(keys, &[1, 3], digest, 200 + k as u64);
            verify_independently(curve, &pk, full, &sig);
        }
    }
}

/// Runs signing with `hook`; returns the outcome.
fn sign_with_hook(
    keys: &Keys,
    signers: &[ParticipantId],
    seed: u64,
    hook: impl FnMut(ParticipantId, ParticipantId, &mut EcdsaMessage) -> Delivery,
) -> SimulationOutcome<EcdsaSignature> {
    let digest = signing_digest(HashAlg::Sha256, b"tampered").unwrap();
    Simulation::new(signing_parties(keys, signers, session(seed as u8), digest))
        .run_with_hook(&mut rng(seed), hook)
}

fn expect_blame<O: std::fmt::Debug>(
    outcome: &SimulationOutcome<O>,
    honest: &[ParticipantId],
    culprit: ParticipantId,
) {
    assert!(
        outcome.outputs.is_empty(),
        "no output may be produced: {outcome:?}"
    );
    for p in honest {
        let e = outcome
            .errors
            .get(p)
            .unwrap_or_else(|| panic!("party {p} did not abort: {outcome:?}"));
        assert!(
            matches!(
                e,
                ProtocolError::Misbehaviour { .. } | ProtocolError::MustBan { .. }
            ),
            "party {p}: {e}"
        );
        assert_eq!(e.culprits(), &[culprit], "party {p}: {e}");
        eprintln!("party {p} aborted as expected: {e}");
    }
}

fn flip(body: &mut EcdsaBody, at: impl Fn(usize) -> usize) {
    match body {
        EcdsaBody::Private(secret) => {
            let mut bytes = secret.expose().to_vec();
            let i = at(bytes.len());
            bytes[i] ^= 0x01;
            *secret = SecretBytes::new(bytes);
        }
        EcdsaBody::Broadcast(bytes) => {
            let i = at(bytes.len());
            bytes[i] ^= 0x01;
        }
    }
}

/// A flipped bit anywhere in participant 2's private signing messages (rounds 1 and 2) makes every honest
/// signer abort naming 2 — as misbehaviour, or as a ban when the OT-based multiplication's checks fail.
#[test]
fn corrupted_signing_messages_name_the_sender() {
    for curve in CURVES {
        for (t, signers, honest) in [
            (2u16, &[1u16, 2][..], &[1u16][..]),
            (3, &[1, 2, 5][..], &[1, 5][..]),
        ] {
            let keys = keys(curve, t);
            for round in [1u8, 2] {
                for (k, position) in [0.1f64, 0.5, 0.9].into_iter().enumerate() {
                    let outcome =
                        sign_with_hook(keys, signers, 300 + k as u64, |from, _to, msg| {
                            if from == 2 && msg.round == round {
                                flip(&mut msg.body, |len| ((len as f64) * position) as usize);
                            }
                            Delivery::Deliver
                        });
                    expect_blame(&outcome, honest, 2);
                }
            }
        }
    }
}

/// Replaying participant 2's valid round-1 message of another signing session into this one: `dkls23`'s
/// session binding names 2.
#[test]
fn replayed_signing_message_from_another_session_names_the_sender() {
    for curve in CURVES {
        let keys = keys(curve, 2);
        let mut captured = None;
        let _ = sign_with_hook(keys, &[1, 2], 400, |from, to, msg| {
            if (from, to, msg.round) == (2, 1, 1) {
                captured = Some(msg.body.clone());
            }
            Delivery::Deliver
        });
        let replay = captured.unwrap();
        let outcome = sign_with_hook(keys, &[1, 2], 401, |from, to, msg| {
            if (from, to, msg.round) == (2, 1, 1) {
                msg.body = replay.clone();
            }
            Delivery::Deliver
        });
        expect_blame(&outcome, &[1], 2);
        let e = &outcome.errors[&1];
        assert!(e.to_string().contains("different signing session"), "{e}");
    }
}

/// A wrong round-3 broadcast is caught (the signature would not verify) but DKLs23 cannot say whose it was.
#[test]
fn corrupted_last_round_broadcast_aborts_without_blame() {
    let keys = keys(EcdsaCurve::Secp256k1, 2);
    let outcome = sign_with_hook(keys, &[1, 2], 500, |from, _to, msg| {
        if from == 2 && msg.round == 3 {
            if let EcdsaBody::Broadcast(bytes) = &mut msg.body {
                // Re-encode another valid scalar pair: swap u and w.
                let (a, b) = bytes.split_at(bytes.len() / 2);
                *bytes = [b, a].concat();
            }
        }
        Delivery::Deliver
    });
    assert!(!outcome.outputs.contains_key(&1));
    let e = &outcome.errors[&1];
    assert!(
        matches!(
            e,
            ProtocolError::State(_) | ProtocolError::Misbehaviour { .. }
        ),
        "{e}"
    );
    // Participant 2 itself received an honest broadcast and finishes.
    assert!(outcome.outputs.contains_key(&2) || outcome.errors.contains_key(&2));
}

/// A dropped message stalls the run (no hang, no output, no error): 1 never completes round 2, so it never
/// broadcasts round 3, and 3 waits for it.
#[test]
fn dropped_signing_message_stalls() {
    for curve in CURVES {
        let keys = keys(curve, 2);
        let outcome = sign_with_hook(keys, &[1, 3], 600, |from, _to, msg| {
            if from == 3 && msg.round == 2 {
                Delivery::Drop
            } else {
                Delivery::Deliver
            }
        });
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.stalled, vec![1, 3]);
        assert!(outcome.outputs.is_empty());
    }
}

/// Messages that do not belong are refused: another session or version, a stranger, a duplicate, a
/// message from a non-signer, and a message of a round/kind the protocol does not have.
#[test]
fn signing_refuses_messages_that_do_not_belong() {
    for curve in CURVES {
        let keys = keys(curve, 2);
        let digest = [9u8; 32];
        let mut parties = signing_parties(keys, &[1, 2], session(70), digest);
        let mut r = rng(70);
        let out1 = parties[0].start(&mut r).unwrap();
        let out2 = parties[1].start(&mut r).unwrap();
        assert_eq!(out1.len(), 1);
        let msg = out2[0].message.clone();
        let p1 = &mut parties[0];

        let mut other_session = msg.clone();
        other_session.session = session(71);
        assert!(matches!(
            p1.handle(2, other_session, &mut r),
            Err(ProtocolError::WrongSession)
        ));
        let e = p1.handle(3, msg.clone(), &mut r).unwrap_err();
        assert_eq!(
            e.culprits(),
            &[3],
            "participant 3 is not a signer of this run"
        );
        let e = p1.handle(9, msg.clone(), &mut r).unwrap_err();
        assert_eq!(e.culprits(), &[9]);
        assert!(
            !p1.is_aborted(),
            "messages that do not belong leave the run intact"
        );

        // The round-1 message of 2 completes round 1; a second copy names 2 and aborts the run.
        p1.handle(2, msg.clone(), &mut r).unwrap();
        let e = p1.handle(2, msg.clone(), &mut r).unwrap_err();
        assert_eq!(e.culprits(), &[2], "duplicate names its sender");
        assert!(p1.is_aborted());

        let mut fresh = signing_parties(keys, &[1, 2], session(72), digest);
        fresh[0].start(&mut r).unwrap();
        let mut v2 = msg.clone();
        v2.session = session(72);
        v2.version = 2;
        assert!(matches!(
            fresh[0].handle(2, v2.clone(), &mut r),
            Err(ProtocolError::UnsupportedVersion(2))
        ));
        let mut wrong_kind = msg.clone();
        wrong_kind.session = session(72);
        wrong_kind.body = EcdsaBody::Broadcast(vec![1, 2, 3]);
        let mut fresh = signing_parties(keys, &[1, 2], session(72), digest);
        assert_eq!(
            fresh[0]
                .handle(2, wrong_kind, &mut r)
                .unwrap_err()
                .culprits(),
            &[2]
        );
    }
}

#[test]
fn signing_parameters_are_checked() {
    let keys = keys(EcdsaCurve::Secp256k1, 2);
    let params = |me, signers: &[ParticipantId]| SignParams {
        session: session(80),
        me,
        signers: signers.to_vec(),
        digest: [1; 32],
    };
    let share = || Arc::clone(&keys[&1]);
    assert!(EcdsaSigning::new(share(), params(1, &[1, 2])).is_ok());
    for bad in [
        params(2, &[1, 2]),    // not my share
        params(1, &[2, 3]),    // me not a signer
        params(1, &[1, 2, 3]), // more than t
        params(1, &[1]),       // fewer than t
        params(1, &[1, 1]),    // duplicate
        params(1, &[1, 7]),    // no share
    ] {
        assert!(
            matches!(
                EcdsaSigning::new(share(), bad),
                Err(ProtocolError::InvalidParameters(_))
            ),
            "accepted bad parameters"
        );
    }
}

#[test]
fn dkg_refuses_messages_that_do_not_belong() {
    let mut parties = dkg_parties(EcdsaCurve::Secp256k1, session(90), &[1, 2, 3], 2);
    let mut r = rng(90);
    let out = parties[1].start(&mut r).unwrap();
    assert_eq!(
        out.len(),
        2,
        "one private fragment to each other participant"
    );
    assert!(out
        .iter()
        .all(|o| matches!(o.message.body, EcdsaBody::Private(_))));
    let to_1 = out
        .iter()
        .find(|o| o.to == vhsm_protocols::Recipient::One(1))
        .unwrap()
        .message
        .clone();
    let p1 = &mut parties[0];
    let mut other = to_1.clone();
    other.session = session(91);
    assert!(matches!(
        p1.handle(2, other, &mut r),
        Err(ProtocolError::WrongSession)
    ));
    assert_eq!(
        p1.handle(4, to_1.clone(), &mut r).unwrap_err().culprits(),
        &[4]
    );
    assert!(!p1.is_aborted());
    // Buffered before start, then a duplicate names the sender.
    p1.handle(2, to_1.clone(), &mut r).unwrap();
    assert_eq!(
        p1.handle(2, to_1.clone(), &mut r).unwrap_err().culprits(),
        &[2]
    );
    assert!(p1.is_aborted());
    let mut fresh = dkg_parties(EcdsaCurve::Secp256k1, session(90), &[1, 2, 3], 2);
    let mut v9 = to_1;
    v9.version = 9;
    assert!(matches!(
        fresh[0].handle(2, v9, &mut r),
        Err(ProtocolError::UnsupportedVersion(9))
    ));
}

/// Participant 2's round-1 fragment to 1 is malformed: 1 names 2 at once.
#[test]
fn malformed_dkg_fragment_names_the_sender() {
    let outcome = Simulation::new(dkg_parties(
        EcdsaCurve::Secp256k1,
        session(91),
        &[1, 2, 3],
        2,
    ))
    .run_with_hook(&mut rng(91), |from, to, msg: &mut EcdsaMessage| {
        if (from, to, msg.round) == (2, 1, 1) {
            msg.body = EcdsaBody::Private(SecretBytes::new(vec![1, 2, 3]));
        }
        Delivery::Deliver
    });
    assert!(outcome.outputs.is_empty());
    let e = &outcome.errors[&1];
    assert!(matches!(e, ProtocolError::Misbehaviour { .. }), "{e}");
    assert_eq!(e.culprits(), &[2]);
}

/// Participant 2's round-3 broadcast (its proof of knowledge) is corrupted on the way to everyone: every
/// participant names 2 (through the echo round: 2's own view of its broadcast differs from everyone else's).
#[test]
fn corrupted_dkg_proof_is_blamed_by_everyone() {
    let outcome = Simulation::new(dkg_parties(
        EcdsaCurve::Secp256k1,
        session(92),
        &[1, 2, 3],
        2,
    ))
    .run_with_hook(&mut rng(92), |from, _to, msg: &mut EcdsaMessage| {
        if from == 2 && msg.round == 3 {
            if let EcdsaBody::Broadcast(bytes) = &mut msg.body {
                let i = bytes.len() / 3;
                bytes[i] ^= 0x40;
            }
        }
        Delivery::Deliver
    });
    expect_blame(&outcome, &[1, 3], 2);
}

/// Participant 2's round-3 private message to 1 (its OT setup) is corrupted: `dkls23`'s phase 4 at 1 names 2.
/// The others finish: private messages are not echoed, so the caller must activate a key only when every
/// participant reported the same public key.
#[test]
fn corrupted_dkg_ot_setup_is_named_by_its_recipient() {
    let outcome = Simulation::new(dkg_parties(
        EcdsaCurve::Secp256k1,
        session(96),
        &[1, 2, 3],
        2,
    ))
    .run_with_hook(&mut rng(96), |from, to, msg: &mut EcdsaMessage| {
        if (from, to, msg.round) == (2, 1, 3) && matches!(msg.body, EcdsaBody::Private(_)) {
            flip(&mut msg.body, |len| len / 2);
        }
        Delivery::Deliver
    });
    let e = &outcome.errors[&1];
    assert!(matches!(e, ProtocolError::Misbehaviour { .. }), "{e}");
    assert_eq!(e.culprits(), &[2], "{e}");
    assert!(e.to_string().contains("DKG phase 4"), "{e}");
    assert!(!outcome.outputs.contains_key(&1));
}

/// Participant 2 shows participant 3 a different round-2 broadcast (equivocation): the echo round makes every
/// participant abort naming 2, before any key exists.
#[test]
fn dkg_broadcast_equivocation_is_detected_by_everyone() {
    let outcome = Simulation::new(dkg_parties(
        EcdsaCurve::Secp256k1,
        session(93),
        &[1, 2, 3],
        3,
    ))
    .run_with_hook(&mut rng(93), |from, to, msg: &mut EcdsaMessage| {
        if (from, to, msg.round) == (2, 3, 2) {
            if let EcdsaBody::Broadcast(bytes) = &mut msg.body {
                bytes[5] ^= 0x01;
            }
        }
        Delivery::Deliver
    });
    assert!(outcome.outputs.is_empty());
    for p in [1, 2, 3] {
        let e = &outcome.errors[&p];
        assert_eq!(e.culprits(), &[2], "party {p}: {e}");
        assert!(e.to_string().contains("equivocation"), "{e}");
    }
}

#[test]
fn dropped_dkg_message_stalls() {
    let outcome = Simulation::new(dkg_parties(
        EcdsaCurve::Secp256k1,
        session(94),
        &[1, 2, 3],
        2,
    ))
    .run_with_hook(&mut rng(94), |from, to, msg: &mut EcdsaMessage| {
        if (from, to, msg.round) == (3, 1, 1) {
            Delivery::Drop
        } else {
            Delivery::Deliver
        }
    });
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(outcome.outputs.is_empty());
    assert_eq!(outcome.stalled, vec![1, 2, 3]);
}

#[test]
fn share_and_public_keys_encodings_round_trip() {
    for curve in CURVES {
        let keys = keys(curve, 2);
        for share in keys.values() {
            let bytes = share.to_bytes();
            assert_eq!(bytes[0], 1, "format version");
            assert_eq!(bytes[1], if curve == EcdsaCurve::Secp256k1 { 1 } else { 2 });
            let back = EcdsaKeyShare::from_bytes(&bytes).unwrap();
            assert_eq!(*back.to_bytes(), *bytes);
            assert_eq!(back.participant(), share.participant());
            assert_eq!(back.public_keys(), share.public_keys());
            assert_eq!(*back.secret_share_bytes(), *share.secret_share_bytes());
            assert_eq!(share.secret_share_bytes().len(), 32);

            let mut other_version = bytes.to_vec();
            for v in [0u8, 2, 255] {
                other_version[0] = v;
                assert!(matches!(
                    EcdsaKeyShare::from_bytes(&other_version),
                    Err(ProtocolError::UnsupportedVersion(x)) if x == v
                ));
            }
            let mut other_curve = bytes.to_vec();
            other_curve[1] = if other_curve[1] == 1 { 2 } else { 1 };
            assert!(EcdsaKeyShare::from_bytes(&other_curve).is_err());
            let mut trailing = bytes.to_vec();
            trailing.push(0);
            assert!(EcdsaKeyShare::from_bytes(&trailing).is_err());
            assert!(EcdsaKeyShare::from_bytes(&bytes[..bytes.len() - 1]).is_err());

            let debug = format!("{share:?}");
            let secret_hex = hex::encode(&*share.secret_share_bytes());
            assert!(
                !debug.contains(&secret_hex),
                "Debug leaks the secret: {debug}"
            );
            assert!(debug.contains("<redacted>"));
        }
        let public = keys[&1].public_keys();
        let bytes = public.to_bytes();
        assert_eq!(bytes[0], 1);
        let back = EcdsaPublicKeys::from_bytes(&bytes).unwrap();
        assert_eq!(back, public);
        assert_eq!(back.curve(), curve);
        assert_eq!(back.public_key_sec1(), keys[&1].public_key_sec1());
        assert_eq!(back.participants(), vec![1, 2, 3]);
        assert_eq!(back.threshold(), 2);
        for id in [1, 2, 3] {
            assert_eq!(back.verifying_share_sec1(id).unwrap().len(), 65);
        }
        assert!(back.verifying_share_sec1(4).is_none());
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(matches!(
            EcdsaPublicKeys::from_bytes(&v2),
            Err(ProtocolError::UnsupportedVersion(2))
        ));
        // Under the other curve's tag the same bytes are refused, or (when every x-coordinate happens to be
        // on the other curve too) read as a different key on that curve: the tag decides.
        let mut other_curve = bytes.clone();
        other_curve[1] = if other_curve[1] == 1 { 2 } else { 1 };
        if let Ok(other) = EcdsaPublicKeys::from_bytes(&other_curve) {
            assert_ne!(other.curve(), curve);
        }
    }
}

/// Random mutations of real encodings never panic the decoders, and a decoded mutation is canonical.
#[test]
fn mutated_encodings_never_panic() {
    let mut r = rng(1234);
    for curve in CURVES {
        let keys = keys(curve, 2);
        let share = keys[&2].to_bytes().to_vec();
        let public = keys[&2].public_keys().to_bytes();
        for _ in 0..300 {
            for original in [&share, &public] {
                let mut bytes = original.clone();
                let flips = 1 + (r.next_u32() % 3) as usize;
                for _ in 0..flips {
                    let i = (r.next_u32() as usize) % bytes.len();
                    bytes[i] = r.next_u32() as u8;
                }
                if r.next_u32().is_multiple_of(4) {
                    bytes.truncate((r.next_u32() as usize) % bytes.len());
                }
                if let Ok(s) = EcdsaKeyShare::from_bytes(&bytes) {
                    assert_eq!(*s.to_bytes(), bytes);
                }
                if let Ok(p) = EcdsaPublicKeys::from_bytes(&bytes) {
                    assert_eq!(p.to_bytes(), bytes);
                }
            }
        }
    }
}

/// The bytes on the wire of one 2-of-3 signing (postcard-encoded messages, as delivered).
#[test]
fn signing_messages_round_trip_and_are_counted() {
    for curve in CURVES {
        let keys = keys(curve, 2);
        let digest = [3u8; 32];
        let mut total = 0usize;
        let mut rounds = BTreeMap::new();
        let outcome = Simulation::new(signing_parties(keys, &[2, 3], session(95), digest))
            .run_with_hook(&mut rng(95), |_, _, msg: &mut EcdsaMessage| {
                let bytes = msg.to_bytes().unwrap();
                let back = EcdsaMessage::from_bytes(&bytes).unwrap();
                assert_eq!(back.to_bytes().unwrap(), bytes);
                total += bytes.len();
                *rounds.entry(msg.round).or_insert(0usize) += 1;
                Delivery::Deliver
            });
        assert_eq!(outcome.outputs.len(), 2);
        assert_eq!(rounds, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
        eprintln!("DKLs23 2-of-3 {curve} signing: {total} bytes on the wire");
        assert!(total > 0);
    }
}
