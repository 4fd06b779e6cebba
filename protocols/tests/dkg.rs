//! FROST DKG through the simulator: honest runs (in order and reordered), signing with every t-subset,
//! misbehaviour (equivocation, corrupted shares, malformed packages) with the culprit named, and refusal of
//! messages that do not belong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;

use common::*;
use frost_ed25519::keys::dkg as frost_dkg;
use frost_ed25519::keys::SigningShare;
use frost_ed25519::{Ed25519Group, Ed25519ScalarField, Field, Group, Identifier};
use vhsm_protocols::echo::EchoBroadcast;
use vhsm_protocols::frost::dkg::ECHO_DOMAIN;
use vhsm_protocols::frost::{DkgBody, DkgMessage, DkgParams, FrostDkg, FrostKeyShare};
use vhsm_protocols::simulator::{Delivery, DeliveryOrder, Simulation};
use vhsm_protocols::{ParticipantId, Protocol, ProtocolError, SecretBytes};

type Scalar = <Ed25519ScalarField as Field>::Scalar;

/// TEST ONLY: the group secret, by Lagrange interpolation at 0 of the shares of `ids`.
fn reconstruct_secret(
    shares: &BTreeMap<ParticipantId, FrostKeyShare>,
    ids: &[ParticipantId],
) -> Scalar {
    let x = |id: ParticipantId| Scalar::from(u64::from(id));
    let mut secret = <Ed25519ScalarField as Field>::zero();
    for i in ids {
        let bytes: [u8; 32] = shares[i]
            .signing_share_bytes()
            .as_slice()
            .try_into()
            .unwrap();
        let s_i = <Ed25519ScalarField as Field>::deserialize(&bytes).unwrap();
        let mut num = <Ed25519ScalarField as Field>::one();
        let mut den = <Ed25519ScalarField as Field>::one();
        for j in ids.iter().filter(|j| *j != i) {
            num *= x(*j);
            den *= x(*j) - x(*i);
        }
        secret += s_i * num * <Ed25519ScalarField as Field>::invert(&den).unwrap();
    }
    secret
}

fn check_dkg_and_signing(ids: &[ParticipantId], t: u16, seed: u64, order: DeliveryOrder) {
    let shares = run_dkg(ids, t, seed, order);
    let group_key = shares[&ids[0]].group_public_key();
    for (id, share) in &shares {
        assert_eq!(share.participant(), *id);
        assert_eq!(share.threshold(), t);
        assert_eq!(
            share.group_public_key(),
            group_key,
            "all agree on the group key"
        );
        assert_eq!(share.public_keys(), shares[&ids[0]].public_keys());
        assert_eq!(share.public_keys().participants(), ids.to_vec());
    }
    let message = b"vhsm frost dkg test message";
    let mut secrets = Vec::new();
    for (k, subset) in subsets(ids, usize::from(t)).into_iter().enumerate() {
        let signers: Vec<&FrostKeyShare> = subset.iter().map(|id| &shares[id]).collect();
        let signature = sign_with(&signers, message, seed * 1000 + k as u64);
        verify_strict(&group_key, message, &signature);
        secrets.push(reconstruct_secret(&shares, &subset));
    }
    // Every t-subset interpolates the same secret, and it is the secret of the group key.
    assert!(secrets.windows(2).all(|w| w[0] == w[1]));
    let public =
        <Ed25519Group as Group>::serialize(&(<Ed25519Group as Group>::generator() * secrets[0]))
            .unwrap();
    assert_eq!(public, group_key);
    // Fewer than t shares interpolate something else.
    if t > 2 {
        let short = &ids[..usize::from(t) - 1];
        assert_ne!(reconstruct_secret(&shares, short), secrets[0]);
    }
}

#[test]
fn dkg_2_of_3_signs_with_every_pair() {
    check_dkg_and_signing(&[1, 2, 3], 2, 1, DeliveryOrder::Fifo);
}

#[test]
fn dkg_3_of_5_signs_with_every_triple() {
    check_dkg_and_signing(&[1, 2, 3, 4, 5], 3, 2, DeliveryOrder::Fifo);
}

#[test]
fn dkg_with_reordered_delivery() {
    for seed in 0..4 {
        check_dkg_and_signing(&[1, 2, 3], 2, 10 + seed, DeliveryOrder::Shuffled { seed });
        check_dkg_and_signing(
            &[1, 2, 3, 4, 5],
            3,
            20 + seed,
            DeliveryOrder::Shuffled { seed },
        );
    }
}

#[test]
fn dkg_with_sparse_ids_and_t_equals_n() {
    check_dkg_and_signing(&[7, 300, 65535], 3, 3, DeliveryOrder::Shuffled { seed: 9 });
}

fn expect_all_blame(
    outcome: &vhsm_protocols::simulator::SimulationOutcome<FrostKeyShare>,
    parties: &[ParticipantId],
    culprit: ParticipantId,
) {
    for p in parties {
        let e = outcome
            .errors
            .get(p)
            .unwrap_or_else(|| panic!("party {p} did not abort: {outcome:?}"));
        assert!(matches!(e, ProtocolError::Misbehaviour { .. }), "{e}");
        assert_eq!(e.culprits(), &[culprit], "party {p}: {e}");
    }
}

#[test]
fn round1_equivocation_is_detected_by_everyone() {
    let ids = [1, 2, 3, 4];
    // A second, perfectly valid round-1 package of participant 2, shown only to participant 3.
    let (_, other) = frost_dkg::part1(Identifier::try_from(2).unwrap(), 4, 2, rng(99)).unwrap();
    let other = other.serialize().unwrap();
    let outcome = Simulation::new(dkg_parties(session(5), &ids, 2)).run_with_hook(
        &mut rng(5),
        |from, to, msg: &mut DkgMessage| {
            if let (2, 3, DkgBody::Round1(bytes)) = (from, to, &mut msg.body) {
                *bytes = other.clone();
            }
            Delivery::Deliver
        },
    );
    assert!(outcome.outputs.is_empty(), "no key may be produced");
    expect_all_blame(&outcome, &ids, 2);
}

#[test]
fn malformed_round1_package_is_blamed_by_everyone() {
    let ids = [1, 2, 3];
    let outcome = Simulation::new(dkg_parties(session(6), &ids, 2)).run_with_hook(
        &mut rng(6),
        |from, _to, msg: &mut DkgMessage| {
            if let (2, DkgBody::Round1(bytes)) = (from, &mut msg.body) {
                bytes.truncate(10);
            }
            Delivery::Deliver
        },
    );
    assert!(outcome.outputs.is_empty());
    expect_all_blame(&outcome, &[1, 3], 2);
}

#[test]
fn invalid_proof_of_knowledge_is_blamed_by_everyone() {
    // Participant 2 broadcasts (consistently) a package whose proof of knowledge was made for identifier 5.
    let ids = [1, 2, 3];
    let (_, foreign) = frost_dkg::part1(Identifier::try_from(5).unwrap(), 3, 2, rng(98)).unwrap();
    let foreign = foreign.serialize().unwrap();
    // Party 2's own echo must agree, or the echo round catches it first.
    let foreign_digest = EchoBroadcast::digest(ECHO_DOMAIN, &session(4), 2, &foreign);
    let outcome = Simulation::new(dkg_parties(session(4), &ids, 2)).run_with_hook(
        &mut rng(4),
        |from, _to, msg: &mut DkgMessage| {
            match (from, &mut msg.body) {
                (2, DkgBody::Round1(bytes)) => *bytes = foreign.clone(),
                (2, DkgBody::Echo(map)) => {
                    map.insert(2, foreign_digest);
                }
                _ => {}
            }
            Delivery::Deliver
        },
    );
    assert!(outcome.outputs.is_empty());
    for p in [1, 3] {
        let e = &outcome.errors[&p];
        assert!(e.to_string().contains("proof of knowledge"), "{e}");
        assert_eq!(e.culprits(), &[2]);
    }
}

#[test]
fn lying_echo_aborts_the_run() {
    // Participant 2 lies in its echo about participant 1's package: the run aborts, no key is produced.
    // (Without signed messages the honest sender 1 is the one blamed; see the `echo` module docs.)
    let ids = [1, 2, 3];
    let outcome = Simulation::new(dkg_parties(session(7), &ids, 2)).run_with_hook(
        &mut rng(7),
        |from, _to, msg: &mut DkgMessage| {
            if let (2, DkgBody::Echo(map)) = (from, &mut msg.body) {
                map.insert(1, [0; 32]);
            }
            Delivery::Deliver
        },
    );
    assert!(outcome.outputs.is_empty());
    for p in [1, 3] {
        assert_eq!(outcome.errors[&p].culprits(), &[1]);
    }
}

#[test]
fn corrupted_round2_share_names_its_sender() {
    let ids = [1, 2, 3];
    let outcome = Simulation::new(dkg_parties(session(8), &ids, 2)).run_with_hook(
        &mut rng(8),
        |from, to, msg: &mut DkgMessage| {
            if let (2, 3, DkgBody::Round2(share)) = (from, to, &mut msg.body) {
                // A well-formed but wrong share: frost's part3 reports InvalidSecretShare.
                let mut one = [0u8; 32];
                one[0] = 1;
                let wrong =
                    frost_dkg::round2::Package::new(SigningShare::deserialize(&one).unwrap());
                *share = SecretBytes::new(wrong.serialize().unwrap());
            }
            Delivery::Deliver
        },
    );
    let e = &outcome.errors[&3];
    assert!(e.to_string().contains("secret share"), "{e}");
    assert_eq!(e.culprits(), &[2]);
    // The others could not see it: the caller must only activate a key all holders confirmed.
    assert!(!outcome.outputs.contains_key(&3));
}

#[test]
fn malformed_round2_share_names_its_sender() {
    let outcome = Simulation::new(dkg_parties(session(9), &[1, 2, 3], 2)).run_with_hook(
        &mut rng(9),
        |from, to, msg: &mut DkgMessage| {
            if let (3, 1, DkgBody::Round2(share)) = (from, to, &mut msg.body) {
                *share = SecretBytes::new(vec![0xff; 7]);
            }
            Delivery::Deliver
        },
    );
    assert_eq!(outcome.errors[&1].culprits(), &[3]);
}

#[test]
fn dropped_message_stalls_without_hanging() {
    let outcome = Simulation::new(dkg_parties(session(10), &[1, 2, 3], 2)).run_with_hook(
        &mut rng(10),
        |from, to, msg: &mut DkgMessage| {
            if from == 1 && to == 2 && matches!(msg.body, DkgBody::Round1(_)) {
                Delivery::Drop
            } else {
                Delivery::Deliver
            }
        },
    );
    assert!(outcome.errors.is_empty());
    assert!(outcome.outputs.is_empty());
    assert_eq!(outcome.stalled, vec![1, 2, 3]);
    assert_eq!(outcome.dropped, 1);
}

/// One party of {1, 2, 3}, 2-of-3, driven by hand.
fn party(me: ParticipantId) -> FrostDkg {
    FrostDkg::new(DkgParams {
        session: session(11),
        me,
        participants: vec![1, 2, 3],
        threshold: 2,
    })
    .unwrap()
}

fn round1_of(p: &mut FrostDkg) -> DkgMessage {
    p.start(&mut rng(u64::from(p.participant())))
        .unwrap()
        .remove(0)
        .message
}

#[test]
fn refuses_wrong_session_without_aborting() {
    let mut p1 = party(1);
    round1_of(&mut p1);
    let mut m = round1_of(&mut party(2));
    m.session = session(12);
    assert!(matches!(
        p1.handle(2, m, &mut rng(0)),
        Err(ProtocolError::WrongSession)
    ));
    assert!(!p1.is_aborted());
    // The genuine message still works afterwards.
    p1.handle(2, round1_of(&mut party(2)), &mut rng(0)).unwrap();
}

#[test]
fn refuses_unknown_sender_without_aborting() {
    let mut p1 = party(1);
    round1_of(&mut p1);
    let e = p1
        .handle(9, round1_of(&mut party(2)), &mut rng(0))
        .unwrap_err();
    assert_eq!(e.culprits(), &[9]);
    assert!(!p1.is_aborted());
}

#[test]
fn refuses_unknown_version_and_aborts() {
    let mut p1 = party(1);
    round1_of(&mut p1);
    let mut m = round1_of(&mut party(2));
    m.version = 2;
    assert!(matches!(
        p1.handle(2, m, &mut rng(0)),
        Err(ProtocolError::UnsupportedVersion(2))
    ));
    assert!(p1.is_aborted());
    assert!(matches!(
        p1.handle(3, round1_of(&mut party(3)), &mut rng(0)),
        Err(ProtocolError::State(_))
    ));
}

#[test]
fn duplicate_messages_name_the_sender() {
    let mut p1 = party(1);
    round1_of(&mut p1);
    let m = round1_of(&mut party(2));
    p1.handle(2, m.clone(), &mut rng(0)).unwrap();
    let e = p1.handle(2, m, &mut rng(0)).unwrap_err();
    assert_eq!(e.culprits(), &[2]);
    assert!(p1.is_aborted());
}

#[test]
fn early_messages_are_buffered() {
    // Party 1 receives everything before it even starts.
    let mut others: Vec<FrostDkg> = vec![party(2), party(3)];
    let mut p1 = party(1);
    let r1: Vec<(ParticipantId, DkgMessage)> = others
        .iter_mut()
        .map(|p| (p.participant(), round1_of(p)))
        .collect();
    for (from, m) in &r1 {
        assert!(p1.handle(*from, m.clone(), &mut rng(0)).unwrap().is_empty());
    }
    let out = p1.start(&mut rng(1)).unwrap();
    // Round 1 and, since all round-1 packages are in, the echo too.
    assert_eq!(out.len(), 2);
    assert!(matches!(out[1].message.body, DkgBody::Echo(_)));
}

#[test]
fn message_encoding_round_trips_and_checks_version() {
    let m = round1_of(&mut party(2));
    let bytes = m.to_bytes().unwrap();
    assert_eq!(bytes[0], 1);
    let back = DkgMessage::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes().unwrap(), bytes);
    let mut v2 = bytes.clone();
    v2[0] = 2;
    assert!(matches!(
        DkgMessage::from_bytes(&v2),
        Err(ProtocolError::UnsupportedVersion(2))
    ));
    let mut trailing = bytes;
    trailing.push(0);
    assert!(matches!(
        DkgMessage::from_bytes(&trailing),
        Err(ProtocolError::Encoding(_))
    ));
    // Secret round-2 shares never show in Debug.
    let secret = DkgMessage::new(
        session(1),
        DkgBody::Round2(SecretBytes::new(vec![0x42; 32])),
    );
    assert!(format!("{secret:?}").contains("<redacted>"));
}

#[test]
fn invalid_parameters_are_refused() {
    let p = |me, participants: Vec<ParticipantId>, threshold| {
        FrostDkg::new(DkgParams {
            session: session(1),
            me,
            participants,
            threshold,
        })
    };
    for (me, ids, t) in [
        (1, vec![1, 2, 3], 1),
        (1, vec![1, 2, 3], 4),
        (4, vec![1, 2, 3], 2),
        (1, vec![1, 2, 2], 2),
        (0, vec![0, 1, 2], 2),
        (1, vec![1], 1),
    ] {
        assert!(
            matches!(
                p(me, ids.clone(), t),
                Err(ProtocolError::InvalidParameters(_))
            ),
            "{me} {ids:?} {t}"
        );
    }
}
