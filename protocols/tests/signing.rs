//! FROST signing through the public API: success with honest signers, blame for bad signature shares and
//! commitments, refusal of mismatched nonces and packages; key-share encodings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;

use common::*;
use vhsm_protocols::frost::{
    aggregate, commit, precommit, sign, signing_package, FrostCommitments, FrostKeyShare,
    FrostPublicKeys, FrostSignatureShare,
};
use vhsm_protocols::simulator::DeliveryOrder;
use vhsm_protocols::{ParticipantId, ProtocolError};

fn keys_2_of_3() -> BTreeMap<ParticipantId, FrostKeyShare> {
    run_dkg(&[1, 2, 3], 2, 42, DeliveryOrder::Fifo)
}

/// Honest round one and two for `signers`; returns the package and the shares.
fn honest_round(
    shares: &BTreeMap<ParticipantId, FrostKeyShare>,
    signers: &[ParticipantId],
    message: &[u8],
    seed: u64,
) -> (
    vhsm_protocols::frost::FrostSigningPackage,
    BTreeMap<ParticipantId, FrostSignatureShare>,
) {
    let mut rng = rng(seed);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for id in signers {
        let (n, c) = commit(&shares[id], &mut rng);
        assert_eq!(n.commitments(), &c);
        assert!(format!("{n:?}").contains("<redacted>"));
        nonces.insert(*id, n);
        commitments.insert(*id, c);
    }
    let package = signing_package(&commitments, message).unwrap();
    assert_eq!(package.message().unwrap(), message);
    assert_eq!(package.signers().unwrap(), signers.to_vec());
    let sig_shares = signers
        .iter()
        .map(|id| {
            (
                *id,
                sign(&shares[id], nonces.remove(id).unwrap(), &package).unwrap(),
            )
        })
        .collect();
    (package, sig_shares)
}

#[test]
fn precommitted_nonces_sign_for_any_key_of_their_participant_once() {
    let first = keys_2_of_3();
    let second = run_dkg(&[1, 2, 3], 2, 43, DeliveryOrder::Fifo);
    let mut rng = rng(7);
    for (n, shares) in [&first, &second].into_iter().enumerate() {
        let message = format!("message {n}").into_bytes();
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for id in [1u16, 3] {
            // Made before the key (or the message) is known; hedged with a secret of the participant.
            let (pre, c) = precommit(id, &[id as u8; 32], &mut rng).unwrap();
            assert_eq!(pre.participant(), id);
            nonces.insert(id, pre);
            commitments.insert(id, c);
        }
        let package = signing_package(&commitments, &message).unwrap();
        let sig_shares = [1u16, 3]
            .iter()
            .map(|id| {
                (
                    *id,
                    sign(&shares[id], nonces.remove(id).unwrap(), &package).unwrap(),
                )
            })
            .collect();
        let public = shares[&1].public_keys();
        let sig = aggregate(&public, &package, &sig_shares).unwrap();
        verify_strict(&public.group_public_key(), &message, &sig);
    }
    // Nonces of participant 1 do not sign with participant 2's share.
    let (pre, c) = precommit(1, &[9; 32], &mut rng).unwrap();
    let (_, c3) = commit(&first[&3], &mut rng);
    let package = signing_package(&BTreeMap::from([(1, c), (3, c3)]), b"m").unwrap();
    assert!(sign(&first[&2], pre, &package).is_err());
}

#[test]
fn corrupted_signature_share_is_named_and_honest_set_succeeds() {
    let shares = keys_2_of_3();
    let public = shares[&1].public_keys();
    let message = b"pay 10 to alice";
    let (package, mut sig_shares) = honest_round(&shares, &[1, 2], message, 1);
    let good = aggregate(&public, &package, &sig_shares).unwrap();
    verify_strict(&public.group_public_key(), message, &good);

    // Participant 2's share replaced by a well-formed but wrong scalar.
    let mut wrong = sig_shares[&2].0.clone();
    wrong[0] ^= 1;
    sig_shares.insert(2, FrostSignatureShare(wrong));
    let e = aggregate(&public, &package, &sig_shares).unwrap_err();
    assert!(matches!(e, ProtocolError::Misbehaviour { .. }), "{e}");
    assert_eq!(e.culprits(), &[2]);

    // A fresh round with the honest set {1, 3} succeeds.
    let (package, sig_shares) = honest_round(&shares, &[1, 3], message, 2);
    let sig = aggregate(&public, &package, &sig_shares).unwrap();
    verify_strict(&public.group_public_key(), message, &sig);
}

#[test]
fn every_bad_share_is_named() {
    let shares = run_dkg(&[1, 2, 3, 4, 5], 3, 43, DeliveryOrder::Fifo);
    let public = shares[&1].public_keys();
    let (package, mut sig_shares) = honest_round(&shares, &[2, 3, 5], b"m", 3);
    // Different deltas (±1, ±2), so that the errors cannot cancel out in the sum: frost checks the shares
    // one by one only when the aggregate signature fails to verify.
    for (id, flip) in [(2, 1u8), (5, 2u8)] {
        let mut wrong = sig_shares[&id].0.clone();
        wrong[0] ^= flip;
        sig_shares.insert(id, FrostSignatureShare(wrong));
    }
    assert_eq!(
        aggregate(&public, &package, &sig_shares)
            .unwrap_err()
            .culprits(),
        &[2, 5]
    );
}

#[test]
fn malformed_signature_share_names_its_sender() {
    let shares = keys_2_of_3();
    let (package, mut sig_shares) = honest_round(&shares, &[1, 3], b"m", 4);
    sig_shares.insert(3, FrostSignatureShare(vec![0xff; 32])); // not a canonical scalar
    let e = aggregate(&shares[&1].public_keys(), &package, &sig_shares).unwrap_err();
    assert_eq!(e.culprits(), &[3]);
}

#[test]
fn missing_or_extra_shares_are_refused() {
    let shares = keys_2_of_3();
    let public = shares[&1].public_keys();
    let (package, mut sig_shares) = honest_round(&shares, &[1, 2], b"m", 5);
    let two = sig_shares.remove(&2).unwrap();
    assert!(matches!(
        aggregate(&public, &package, &sig_shares),
        Err(ProtocolError::InvalidParameters(_))
    ));
    sig_shares.insert(2, two.clone());
    sig_shares.insert(3, two);
    assert!(matches!(
        aggregate(&public, &package, &sig_shares),
        Err(ProtocolError::InvalidParameters(_))
    ));
}

#[test]
fn malformed_commitment_names_its_sender() {
    let shares = keys_2_of_3();
    let mut rng = rng(6);
    let (_, c1) = commit(&shares[&1], &mut rng);
    let commitments = BTreeMap::from([(1, c1), (2, FrostCommitments(vec![1, 2, 3]))]);
    assert_eq!(
        signing_package(&commitments, b"m").unwrap_err().culprits(),
        &[2]
    );
    assert!(matches!(
        signing_package(&BTreeMap::new(), b"m"),
        Err(ProtocolError::InvalidParameters(_))
    ));
}

#[test]
fn sign_refuses_packages_without_its_commitment() {
    let shares = keys_2_of_3();
    let mut rng = rng(7);
    let (n1, c1) = commit(&shares[&1], &mut rng);
    let (_n1_other, c1_other) = commit(&shares[&1], &mut rng);
    let (_, c2) = commit(&shares[&2], &mut rng);
    let (_, c3) = commit(&shares[&3], &mut rng);
    // Participant 1 is not in the package.
    let without_me = signing_package(&BTreeMap::from([(2, c2.clone()), (3, c3)]), b"m").unwrap();
    assert!(matches!(
        sign(&shares[&1], n1, &without_me),
        Err(ProtocolError::InvalidParameters(_))
    ));
    // Participant 1 is in it, but with a commitment to other nonces.
    let (n1, _) = commit(&shares[&1], &mut rng);
    let other = signing_package(&BTreeMap::from([(1, c1_other), (2, c2.clone())]), b"m").unwrap();
    assert!(matches!(
        sign(&shares[&1], n1, &other),
        Err(ProtocolError::InvalidParameters(_))
    ));
    // Nonces of participant 1 with the share of participant 2.
    let (n1, c1b) = commit(&shares[&1], &mut rng);
    let package = signing_package(&BTreeMap::from([(1, c1b), (2, c2)]), b"m").unwrap();
    assert!(matches!(
        sign(&shares[&2], n1, &package),
        Err(ProtocolError::InvalidParameters(_))
    ));
    drop(c1);
}

#[test]
fn key_share_encoding_round_trips_and_is_versioned() {
    let shares = keys_2_of_3();
    for share in shares.values() {
        let bytes = share.to_bytes();
        assert_eq!(bytes[0], 1);
        let back = FrostKeyShare::from_bytes(&bytes).unwrap();
        assert_eq!(&back, share);
        assert_eq!(
            back.signing_share_bytes().as_slice(),
            share.signing_share_bytes().as_slice()
        );
        assert_eq!(back.participant(), share.participant());
        assert_eq!(back.group_public_key(), share.group_public_key());

        let mut other_version = bytes.to_vec();
        other_version[0] = 2;
        assert!(matches!(
            FrostKeyShare::from_bytes(&other_version),
            Err(ProtocolError::UnsupportedVersion(2))
        ));
        assert!(FrostKeyShare::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(FrostKeyShare::from_bytes(&[]).is_err());
        let debug = format!("{share:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains(&hex::encode(share.signing_share_bytes().as_slice())));
    }
    // A key package glued to the public package of another key is refused.
    let other_key = run_dkg(&[1, 2, 3], 2, 44, DeliveryOrder::Fifo);
    let mine = shares[&1].to_bytes();
    let theirs = other_key[&1].to_bytes();
    let len = usize::try_from(u32::from_be_bytes(mine[1..5].try_into().unwrap())).unwrap();
    let mut glued = mine[..5 + len].to_vec();
    let their_len = usize::try_from(u32::from_be_bytes(theirs[1..5].try_into().unwrap())).unwrap();
    glued.extend_from_slice(&theirs[5 + their_len..]);
    assert!(matches!(
        FrostKeyShare::from_bytes(&glued),
        Err(ProtocolError::InvalidParameters(_))
    ));
}

#[test]
fn public_keys_encoding_round_trips_and_is_versioned() {
    let shares = keys_2_of_3();
    let public = shares[&2].public_keys();
    let bytes = public.to_bytes();
    assert_eq!(bytes[0], 1);
    let back = FrostPublicKeys::from_bytes(&bytes).unwrap();
    assert_eq!(back, public);
    assert_eq!(back.participants(), vec![1, 2, 3]);
    assert_eq!(back.threshold(), 2);
    let mut v0 = bytes.clone();
    v0[0] = 0;
    assert!(matches!(
        FrostPublicKeys::from_bytes(&v0),
        Err(ProtocolError::UnsupportedVersion(0))
    ));
    let mut trailing = bytes;
    trailing.push(0);
    assert!(FrostPublicKeys::from_bytes(&trailing).is_err());
}
