//! Verifiable resharing through the simulator, for every key type (CONVENTIONS §9): FROST/Ed25519, DKLs23
//! ECDSA on secp256k1 and P-256, split-AES on ristretto255, and the bare group code on all four groups.
//!
//! * the committee walk DKG 2-of-3 → 2-of-4 (add 4) → 3-of-4 → 2-of-3 without 2 keeps the public key and the
//!   shares work at every step (FROST signs, ECDSA signs, split-AES decrypts blobs made before);
//! * a refresh changes every share and keeps the key;
//! * old shares are useless: a removed holder's share does not combine with current ones;
//! * repair gives a holder that lost its share a working one;
//! * a complaint is settled in the dispute round: a false one cannot drop an honest dealer (the dealer
//!   reveals the sub-share, stays, and the accuser is named), while a dealer that stands by a wrong sub-share
//!   is named and dropped, and the run completes with the honest dealers (or fails naming it when too few
//!   remain); other misbehaviour aborts naming the culprit (§10).
//!
//! This file is the only place that reconstructs secrets (by Lagrange interpolation of shares), to show
//! that shares do or do not open the key; no library code does.
//!
//! DKLs23's pairwise set-up (base OT for every pair) costs seconds, so each ECDSA test runs its parties on
//! threads ([`run_threaded`]) and reuses its keys from step to step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{rng, sign_with, subsets, verify_strict};
use curve25519_dalek::{EdwardsPoint, RistrettoPoint, Scalar};
use k256::elliptic_curve::ff::PrimeField;
use k256::elliptic_curve::sec1::ToSec1Point;
use vhsm_protocols::ecdsa::{
    signing_digest, verify_prehash, DkgParams, Dkls23, EcdsaCurve, EcdsaDkg, EcdsaKeyShare,
    EcdsaPublicKeys, EcdsaSignature, EcdsaSigning, HashAlg, SignParams, ThresholdEcdsa,
};
use vhsm_protocols::frost::{FrostDkg, FrostKeyShare, FrostPublicKeys};
use vhsm_protocols::reshare::{
    DealPayload, DealerSecret, EcdsaReshare, EcdsaReshareOutput, EvaluationPoints,
    RefutedComplaint, Reshare, ReshareBody, ReshareGroup, ReshareMessage, ReshareOutput,
    ReshareParams, SharedKey,
};
use vhsm_protocols::simulator::{Delivery, Simulation};
use vhsm_protocols::split_aes::{
    decrypt_in_process, encrypt_in_process, CiphertextBlob, EncryptionReceipt, SplitAesDkg,
    SplitAesKeyShare, SplitAesPublicKeys,
};
use vhsm_protocols::{ParticipantId, Protocol, ProtocolError, SecretBytes, SessionId};
use zeroize::Zeroizing;

// ------------------------------------------------------------------------------------------------------------
// Drivers
// ------------------------------------------------------------------------------------------------------------

fn session(seed: u64) -> SessionId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&seed.to_be_bytes());
    id[8] = 0x5e;
    SessionId(id)
}

/// Runs an honest run through the simulator (shuffled delivery); every party must finish.
fn run<P: Protocol>(parties: Vec<P>, seed: u64) -> BTreeMap<ParticipantId, P::Output> {
    let n = parties.len();
    let outcome = Simulation::new(parties).shuffled(seed).run(&mut rng(seed));
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    assert!(outcome.stalled.is_empty(), "stalled: {:?}", outcome.stalled);
    assert_eq!(outcome.outputs.len(), n);
    outcome.outputs
}

/// Runs an honest run with every party on its own thread (for the expensive DKLs23 set-ups, so that both
/// cores work); every party must finish.
fn run_threaded<P>(parties: Vec<P>, seed: u64) -> BTreeMap<ParticipantId, P::Output>
where
    P: Protocol + Send,
    P::Output: Send,
{
    type Inbox<M> = mpsc::Receiver<(ParticipantId, M)>;
    let mut senders = BTreeMap::new();
    let mut inboxes: BTreeMap<ParticipantId, Inbox<P::Message>> = BTreeMap::new();
    for p in &parties {
        let (tx, rx) = mpsc::channel();
        senders.insert(p.participant(), tx);
        inboxes.insert(p.participant(), rx);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = parties
            .into_iter()
            .map(|mut party| {
                let me = party.participant();
                let inbox = inboxes.remove(&me).unwrap();
                let senders = senders.clone();
                scope.spawn(move || {
                    let mut rng = rng(seed ^ u64::from(me));
                    let route = |out: Vec<vhsm_protocols::Outgoing<P::Message>>| {
                        for o in out {
                            let targets: Vec<ParticipantId> = match o.to {
                                vhsm_protocols::Recipient::All => {
                                    senders.keys().copied().filter(|id| *id != me).collect()
                                }
                                vhsm_protocols::Recipient::One(id) => vec![id],
                            };
                            for to in targets {
                                // A party that finished has dropped its inbox; it needs nothing more.
                                let _ = senders[&to].send((me, o.message.clone()));
                            }
                        }
                    };
                    route(party.start(&mut rng).unwrap());
                    while !party.is_done() {
                        let (from, message) = inbox
                            .recv_timeout(Duration::from_secs(120))
                            .expect("a party stalled");
                        route(party.handle(from, message, &mut rng).unwrap());
                    }
                    (me, party.take_output().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn params(
    seed: u64,
    me: ParticipantId,
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    new_threshold: u16,
) -> ReshareParams {
    ReshareParams {
        session: session(seed),
        me,
        dealers: dealers.to_vec(),
        new_committee: new_committee.to_vec(),
        new_threshold,
    }
}

/// Dealers and new holders, ascending.
fn everyone(dealers: &[ParticipantId], new_committee: &[ParticipantId]) -> Vec<ParticipantId> {
    let all: BTreeSet<ParticipantId> = dealers.iter().chain(new_committee).copied().collect();
    all.into_iter().collect()
}

/// What every honest run must report: the agreed dealers, no exclusion, the new committee and threshold.
fn check_outputs<G: ReshareGroup>(
    outputs: &BTreeMap<ParticipantId, ReshareOutput<G>>,
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    t: u16,
) {
    let first = outputs.values().next().unwrap();
    for (id, o) in outputs {
        assert_eq!(o.participant(), *id);
        assert_eq!(o.dealers(), dealers);
        assert!(o.excluded().is_empty() && o.blame().is_none());
        assert_eq!(o.committee(), new_committee);
        assert_eq!(o.threshold(), t);
        assert_eq!(o.holds_share(), new_committee.contains(id));
        assert_eq!(
            o.public(),
            first.public(),
            "all agree on the new public keys"
        );
        // The encoding round-trips (with the share, for a holder).
        let bytes = o.to_bytes();
        let back = ReshareOutput::<G>::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
    }
}

/// TEST ONLY: Lagrange interpolation at 0 of `(x, share)` pairs, in any prime field.
fn interpolate<F: PrimeField>(points: &[(u64, F)]) -> F {
    let mut sum = F::ZERO;
    for (xi, yi) in points {
        let mut num = F::ONE;
        let mut den = F::ONE;
        for (xj, _) in points.iter().filter(|(xj, _)| xj != xi) {
            num *= F::from(*xj);
            den *= F::from(*xj) - F::from(*xi);
        }
        sum += *yi * num * den.invert().unwrap();
    }
    sum
}

/// TEST ONLY: the same over curve25519-dalek's scalars (which do not implement `ff`).
fn interpolate_25519(points: &[(u64, Scalar)]) -> Scalar {
    let mut sum = Scalar::ZERO;
    for (xi, yi) in points {
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (xj, _) in points.iter().filter(|(xj, _)| xj != xi) {
            num *= Scalar::from(*xj);
            den *= Scalar::from(*xj) - Scalar::from(*xi);
        }
        sum += yi * num * den.invert();
    }
    sum
}

fn scalar_25519(bytes: &[u8]) -> Scalar {
    Scalar::from_canonical_bytes(bytes.try_into().unwrap()).unwrap()
}

// ------------------------------------------------------------------------------------------------------------
// FROST (Ed25519)
// ------------------------------------------------------------------------------------------------------------

type FrostShares = BTreeMap<ParticipantId, FrostKeyShare>;

fn frost_dkg(ids: &[ParticipantId], t: u16, seed: u64) -> FrostShares {
    let parties = ids
        .iter()
        .map(|me| {
            FrostDkg::new(DkgParams {
                session: session(seed),
                me: *me,
                participants: ids.to_vec(),
                threshold: t,
            })
            .unwrap()
        })
        .collect();
    run(parties, seed)
}

fn frost_parties(
    shares: &FrostShares,
    public: &FrostPublicKeys,
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    t: u16,
    seed: u64,
) -> Vec<Reshare<EdwardsPoint>> {
    everyone(dealers, new_committee)
        .into_iter()
        .map(|me| {
            Reshare::frost(
                params(seed, me, dealers, new_committee, t),
                public,
                shares.get(&me),
            )
            .unwrap()
        })
        .collect()
}

/// Reshares `shares` (which may lack a lost share) and returns the new shares and public keys.
fn frost_reshare(
    shares: &FrostShares,
    public: &FrostPublicKeys,
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    t: u16,
    seed: u64,
) -> (FrostShares, FrostPublicKeys) {
    let outputs = run(
        frost_parties(shares, public, dealers, new_committee, t, seed),
        seed,
    );
    check_outputs(&outputs, dealers, new_committee, t);
    let new_public = FrostPublicKeys::from_reshare(outputs.values().next().unwrap()).unwrap();
    assert_eq!(new_public.group_public_key(), public.group_public_key());
    assert_eq!(new_public.participants(), new_committee);
    assert_eq!(new_public.threshold(), t);
    for o in outputs.values() {
        assert_eq!(FrostPublicKeys::from_reshare(o).unwrap(), new_public);
    }
    let new_shares: FrostShares = outputs
        .iter()
        .filter(|(_, o)| o.holds_share())
        .map(|(id, o)| (*id, FrostKeyShare::from_reshare(o).unwrap()))
        .collect();
    for (id, o) in &outputs {
        if !o.holds_share() {
            assert!(FrostKeyShare::from_reshare(o).is_err(), "{id} left");
        }
    }
    assert_eq!(
        new_shares.keys().copied().collect::<Vec<_>>(),
        new_committee
    );
    (new_shares, new_public)
}

/// Every `t`-subset signs, and the signature verifies as plain Ed25519 under the unchanged key.
fn frost_signs(shares: &FrostShares, group_key: &[u8; 32], seed: u64) {
    let t = usize::from(shares.values().next().unwrap().threshold());
    let ids: Vec<ParticipantId> = shares.keys().copied().collect();
    for (k, signers) in subsets(&ids, t).into_iter().enumerate() {
        let message = format!("reshared FROST key, signers {signers:?}");
        let holders: Vec<&FrostKeyShare> = signers.iter().map(|id| &shares[id]).collect();
        let signature = sign_with(&holders, message.as_bytes(), seed + k as u64);
        verify_strict(group_key, message.as_bytes(), &signature);
    }
}

/// TEST ONLY: whether these shares (at x = id) interpolate to the secret of `group_key`.
fn frost_opens(shares: &[(ParticipantId, &FrostKeyShare)], group_key: &[u8; 32]) -> bool {
    let points: Vec<(u64, Scalar)> = shares
        .iter()
        .map(|(id, s)| (u64::from(*id), scalar_25519(&s.signing_share_bytes())))
        .collect();
    EdwardsPoint::mul_base(&interpolate_25519(&points))
        .compress()
        .to_bytes()
        == *group_key
}

#[test]
fn frost_add_raise_threshold_remove_keep_the_key() {
    let s0 = frost_dkg(&[1, 2, 3], 2, 1);
    let p0 = s0[&1].public_keys();
    let key = p0.group_public_key();
    frost_signs(&s0, &key, 10);

    // Add 4: all three deal.
    let (s1, p1) = frost_reshare(&s0, &p0, &[1, 2, 3], &[1, 2, 3, 4], 2, 2);
    frost_signs(&s1, &key, 20);
    // Raise the threshold: two of them deal.
    let (s2, p2) = frost_reshare(&s1, &p1, &[2, 4], &[1, 2, 3, 4], 3, 3);
    frost_signs(&s2, &key, 30);
    // Remove 2 (who deals one last time) and lower the threshold.
    let (s3, _) = frost_reshare(&s2, &p2, &[1, 2, 4], &[1, 3, 4], 2, 4);
    frost_signs(&s3, &key, 40);

    // Old shares are useless: the share 2 kept, with any single current share (t′ = 2), does not open the
    // key, nor do shares of different epochs, while two current shares do.
    for id in [1, 3, 4] {
        assert!(!frost_opens(&[(2, &s2[&2]), (id, &s3[&id])], &key));
        assert!(!frost_opens(&[(2, &s1[&2]), (id, &s3[&id])], &key));
    }
    assert!(!frost_opens(
        &[(1, &s2[&1]), (3, &s3[&3]), (4, &s3[&4])][..2],
        &key
    ));
    assert!(frost_opens(&[(1, &s3[&1]), (4, &s3[&4])], &key));
    assert!(frost_opens(
        &[(1, &s2[&1]), (2, &s2[&2]), (3, &s2[&3])],
        &key
    ));
}

#[test]
fn frost_refresh_changes_every_share_and_keeps_the_key() {
    let s0 = frost_dkg(&[1, 2, 3], 2, 5);
    let p0 = s0[&1].public_keys();
    let key = p0.group_public_key();
    let (s1, p1) = frost_reshare(&s0, &p0, &[1, 2, 3], &[1, 2, 3], 2, 6);
    for id in [1, 2, 3] {
        assert_ne!(s1[&id].signing_share_bytes(), s0[&id].signing_share_bytes());
        assert_ne!(
            p1.frost_package().verifying_shares(),
            p0.frost_package().verifying_shares()
        );
    }
    frost_signs(&s1, &key, 60);
    // Old and new shares do not mix.
    assert!(!frost_opens(&[(1, &s0[&1]), (2, &s1[&2])], &key));
    assert!(frost_opens(&[(1, &s1[&1]), (2, &s1[&2])], &key));
    assert!(frost_opens(&[(1, &s0[&1]), (2, &s0[&2])], &key));
}

#[test]
fn frost_repair_gives_a_lost_holder_a_working_share() {
    let mut s0 = frost_dkg(&[1, 2, 3], 2, 7);
    let p0 = s0[&1].public_keys();
    let key = p0.group_public_key();
    // 2 lost its share; it knows the public keys (every holder stores them) and receives only.
    s0.remove(&2);
    let (s1, _) = frost_reshare(&s0, &p0, &[1, 3], &[1, 2, 3], 2, 8);
    frost_signs(&s1, &key, 80);
    assert!(frost_opens(&[(2, &s1[&2]), (3, &s1[&3])], &key));
}

// ------------------------------------------------------------------------------------------------------------
// Misbehaviour (on FROST keys; the agreement code is the same for every group)
// ------------------------------------------------------------------------------------------------------------

/// A reshare of a fresh 2-of-3 FROST key with `hook` on the wire; returns the outcome.
fn frost_reshare_with_hook(
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    new_threshold: u16,
    seed: u64,
    hook: impl FnMut(ParticipantId, ParticipantId, &mut ReshareMessage) -> Delivery,
) -> (
    FrostShares,
    vhsm_protocols::simulator::SimulationOutcome<ReshareOutput<EdwardsPoint>>,
) {
    let s0 = frost_dkg(&[1, 2, 3], 2, seed);
    let p0 = s0[&1].public_keys();
    let parties = frost_parties(&s0, &p0, dealers, new_committee, new_threshold, seed + 1);
    let outcome = Simulation::new(parties)
        .shuffled(seed)
        .run_with_hook(&mut rng(seed), hook);
    (s0, outcome)
}

/// Replaces what `victim` receives as `dealer`'s sub-share with a wrong value, before `victim` checks it. The
/// dealer's own state is right, so in the dispute round it reveals the right sub-share: this is how a **false
/// complaint** by `victim` looks (a corrupt `victim` pretending it got a bad sub-share) — and equally a
/// dealer that sends a wrong sub-share privately but stands by the right one publicly.
fn corrupt_sub_share(
    dealer: ParticipantId,
    victim: ParticipantId,
) -> impl FnMut(ParticipantId, ParticipantId, &mut ReshareMessage) -> Delivery {
    move |from, to, message| {
        if from == dealer && to == victim {
            if let ReshareBody::SubShare(share) = &mut message.body {
                *share = SecretBytes::new(Scalar::ONE.to_bytes().to_vec());
            }
        }
        Delivery::Deliver
    }
}

/// (a) A member's false complaint about an honest dealer: the dealer answers with the sub-share, everyone
/// checks it against its commitments, the dealer is used, and the accuser — and only the accuser — is named.
/// The accuser's new share is made with the revealed sub-share and works. (On the protocol before the dispute
/// round, 3 was excluded on 1's word and blamed: this test failed.)
#[test]
fn a_false_complaint_keeps_the_honest_dealer_and_names_the_accuser() {
    let (s0, outcome) =
        frost_reshare_with_hook(&[1, 2, 3], &[1, 2, 3], 2, 11, corrupt_sub_share(3, 1));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.outputs.len(), 3);
    let key = s0[&1].group_public_key();
    for o in outcome.outputs.values() {
        assert_eq!(o.dealers(), &[1, 2, 3], "the accused dealer is used");
        assert!(o.excluded().is_empty());
        assert_eq!(
            o.refuted_complaints(),
            &[RefutedComplaint {
                accuser: 1,
                dealer: 3
            }]
        );
        let blame = o.blame().unwrap();
        assert!(matches!(blame, ProtocolError::Misbehaviour { .. }));
        assert_eq!(
            blame.culprits(),
            &[1],
            "the accuser is named, not the dealer"
        );
    }
    let shares: FrostShares = outcome
        .outputs
        .iter()
        .map(|(id, o)| (*id, FrostKeyShare::from_reshare(o).unwrap()))
        .collect();
    frost_signs(&shares, &key, 110);
    assert!(frost_opens(&[(1, &shares[&1]), (3, &shares[&3])], &key));
}

/// (c) With exactly `t` dealers, one false complaint used to fail the whole run, naming the honest dealer:
/// this very scenario was the old `too_few_honest_dealers_fails_naming_the_bad_one`, which asserted that
/// every participant failed with culprits `[3]`. Now the run completes with both dealers and names the
/// accuser.
#[test]
fn a_false_complaint_cannot_stop_a_run_with_exactly_t_dealers() {
    let (s0, outcome) =
        frost_reshare_with_hook(&[1, 3], &[1, 2, 3], 2, 12, corrupt_sub_share(3, 2));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(outcome.stalled.is_empty(), "{:?}", outcome.stalled);
    assert_eq!(outcome.outputs.len(), 3);
    for o in outcome.outputs.values() {
        assert_eq!(o.dealers(), &[1, 3]);
        assert!(o.excluded().is_empty());
        assert_eq!(o.blame().unwrap().culprits(), &[2]);
    }
    let key = s0[&1].group_public_key();
    let shares: FrostShares = outcome
        .outputs
        .iter()
        .map(|(id, o)| (*id, FrostKeyShare::from_reshare(o).unwrap()))
        .collect();
    frost_signs(&shares, &key, 120);
}

/// A dealer that answers a complaint differently to different participants (the right sub-share to some, a
/// wrong one to 2) is caught by the echo of the answers: the run aborts everywhere, naming it.
#[test]
fn a_dealer_that_equivocates_in_the_dispute_round_aborts_the_run_and_is_named() {
    let mut false_complaint = corrupt_sub_share(3, 1);
    let hook = move |from, to, message: &mut ReshareMessage| {
        if from == 3 && to == 2 {
            if let ReshareBody::Answer { answers, .. } = &mut message.body {
                assert!(answers.contains_key(&1), "3 answers 1's complaint");
                answers.insert(1, SecretBytes::new(Scalar::ONE.to_bytes().to_vec()));
            }
        }
        false_complaint(from, to, message)
    };
    let (_, outcome) = frost_reshare_with_hook(&[1, 2, 3], &[1, 2, 3], 2, 15, hook);
    assert!(outcome.outputs.is_empty());
    assert_eq!(outcome.errors.len(), 3);
    for e in outcome.errors.values() {
        assert!(matches!(e, ProtocolError::Misbehaviour { .. }), "{e}");
        assert_eq!(e.culprits(), &[3], "{e}");
    }
}

/// (b) A dealer that really dealt a wrong sub-share and stands by it (fault injection: it reveals the same
/// wrong value) is excluded and named; the others complete and sign.
#[cfg(feature = "fault-injection")]
#[test]
fn a_dealer_that_stands_by_a_bad_sub_share_is_named_and_the_others_complete() {
    use vhsm_protocols::reshare::{ExcludedDealer, ExclusionReason};
    let s0 = frost_dkg(&[1, 2, 3], 2, 13);
    let p0 = s0[&1].public_keys();
    let mut parties = frost_parties(&s0, &p0, &[1, 2, 3], &[1, 2, 3], 2, 14);
    parties[2].deal_wrong_sub_shares_to([1]);
    let outputs = Simulation::new(parties)
        .shuffled(13)
        .run(&mut rng(13))
        .outputs;
    assert_eq!(outputs.len(), 3);
    for o in outputs.values() {
        assert_eq!(o.dealers(), &[1, 2]);
        assert_eq!(
            o.excluded(),
            &[ExcludedDealer {
                dealer: 3,
                reason: ExclusionReason::ComplaintUpheld { by: vec![1] },
            }]
        );
        assert!(o.refuted_complaints().is_empty());
        assert_eq!(o.blame().unwrap().culprits(), &[3]);
    }
    let key = s0[&1].group_public_key();
    let shares: FrostShares = outputs
        .iter()
        .map(|(id, o)| (*id, FrostKeyShare::from_reshare(o).unwrap()))
        .collect();
    frost_signs(&shares, &key, 130);
}

/// Rewrites `from`'s deal payload (for the recipients `to` selects) with `edit`.
fn edit_deal(
    from_id: ParticipantId,
    to_filter: impl Fn(ParticipantId) -> bool,
    edit: impl Fn(&mut DealPayload),
) -> impl FnMut(ParticipantId, ParticipantId, &mut ReshareMessage) -> Delivery {
    move |from, to, message| {
        if from == from_id && to_filter(to) {
            if let ReshareBody::Deal(bytes) = &mut message.body {
                let mut payload = DealPayload::from_bytes(bytes).unwrap();
                edit(&mut payload);
                *bytes = payload.to_bytes().unwrap();
            }
        }
        Delivery::Deliver
    }
}

#[test]
fn an_equivocating_dealer_aborts_the_run_and_is_named() {
    let other = EdwardsPoint::mul_base(&Scalar::from(99u64)).to_bytes();
    let hook = edit_deal(
        3,
        |to| to == 1,
        move |p| p.commitments.as_mut().unwrap()[1] = other.clone(),
    );
    let (_, outcome) = frost_reshare_with_hook(&[1, 2, 3], &[1, 2, 3], 2, 14, hook);
    assert!(outcome.outputs.is_empty());
    assert_eq!(outcome.errors.len(), 3);
    for e in outcome.errors.values() {
        assert_eq!(e.culprits(), &[3], "{e}");
    }
}

#[test]
fn a_participant_given_other_parameters_is_named() {
    let s0 = frost_dkg(&[1, 2, 3], 2, 15);
    let p0 = s0[&1].public_keys();
    let mut parties = frost_parties(&s0, &p0, &[1, 2, 3], &[1, 2, 3], 2, 16);
    // 2 was told the new threshold is 3.
    parties[1] = Reshare::frost(params(16, 2, &[1, 2, 3], &[1, 2, 3], 3), &p0, s0.get(&2)).unwrap();
    let outcome = Simulation::new(parties).run(&mut rng(15));
    assert!(outcome.outputs.is_empty());
    assert_eq!(outcome.errors[&1].culprits(), &[2]);
    assert_eq!(outcome.errors[&3].culprits(), &[2]);
    assert_eq!(outcome.errors[&2].culprits(), &[1, 3]);
}

#[test]
fn messages_that_do_not_belong_are_refused() {
    let s0 = frost_dkg(&[1, 2, 3], 2, 17);
    let p0 = s0[&1].public_keys();
    let mut party = frost_parties(&s0, &p0, &[1, 2], &[1, 2, 3], 2, 18).remove(0);
    party.start(&mut rng(1)).unwrap();
    let foreign = ReshareMessage::new(session(999), ReshareBody::Echo(BTreeMap::new()));
    assert!(matches!(
        party.handle(2, foreign, &mut rng(1)),
        Err(ProtocolError::WrongSession)
    ));
    let stranger = ReshareMessage::new(session(18), ReshareBody::Echo(BTreeMap::new()));
    assert_eq!(
        party
            .handle(9, stranger, &mut rng(1))
            .unwrap_err()
            .culprits(),
        &[9]
    );
    // 3 does not deal: a sub-share from it is misbehaviour (and aborts the run).
    let bogus = ReshareMessage::new(
        session(18),
        ReshareBody::SubShare(SecretBytes::new(vec![0; 32])),
    );
    assert_eq!(
        party.handle(3, bogus, &mut rng(1)).unwrap_err().culprits(),
        &[3]
    );
    assert!(party.is_aborted());
}

#[test]
fn parameters_are_checked() {
    let s0 = frost_dkg(&[1, 2, 3], 2, 19);
    let p0 = s0[&1].public_keys();
    let ok =
        |me, dealers: &[ParticipantId], new: &[ParticipantId], t, own: Option<&FrostKeyShare>| {
            Reshare::frost(params(1, me, dealers, new, t), &p0, own)
        };
    assert!(ok(1, &[1, 2], &[1, 2, 3], 2, s0.get(&1)).is_ok());
    // A new holder needs no share; a dealer does, and it must be its own.
    assert!(ok(4, &[1, 2], &[1, 2, 3, 4], 2, None).is_ok());
    for bad in [
        ok(1, &[1, 2], &[1, 2, 3], 2, None),
        ok(1, &[1, 2], &[1, 2, 3], 2, s0.get(&2)),
        ok(1, &[1], &[1, 2, 3], 2, s0.get(&1)),
        ok(1, &[1, 1, 2], &[1, 2, 3], 2, s0.get(&1)),
        ok(1, &[1, 5], &[1, 2, 3], 2, s0.get(&1)),
        ok(1, &[1, 2], &[1, 2, 3], 4, s0.get(&1)),
        ok(1, &[1, 2], &[1, 2, 3], 1, s0.get(&1)),
        ok(1, &[1, 2], &[0, 2, 3], 2, s0.get(&1)),
        ok(7, &[1, 2], &[1, 2, 3], 2, None),
    ] {
        assert!(
            matches!(bad, Err(ProtocolError::InvalidParameters(_))),
            "{bad:?}"
        );
    }
    // A share of another key.
    let other = frost_dkg(&[1, 2, 3], 2, 20);
    assert!(ok(1, &[1, 2], &[1, 2, 3], 2, other.get(&1)).is_err());
}

// ------------------------------------------------------------------------------------------------------------
// Split-AES (ristretto255)
// ------------------------------------------------------------------------------------------------------------

type AesShares = BTreeMap<ParticipantId, SplitAesKeyShare>;
const KEY_ID: [u8; 16] = *b"reshare-aes-key1";

fn aes_dkg(ids: &[ParticipantId], t: u16, seed: u64) -> AesShares {
    let parties = ids
        .iter()
        .map(|me| {
            SplitAesDkg::new(DkgParams {
                session: session(seed),
                me: *me,
                participants: ids.to_vec(),
                threshold: t,
            })
            .unwrap()
        })
        .collect();
    run(parties, seed)
}

fn aes_reshare(
    shares: &AesShares,
    public: &SplitAesPublicKeys,
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    t: u16,
    seed: u64,
) -> (AesShares, SplitAesPublicKeys) {
    let parties = everyone(dealers, new_committee)
        .into_iter()
        .map(|me| {
            Reshare::split_aes(
                params(seed, me, dealers, new_committee, t),
                public,
                shares.get(&me),
            )
            .unwrap()
        })
        .collect();
    let outputs = run(parties, seed);
    check_outputs(&outputs, dealers, new_committee, t);
    let new_public = SplitAesPublicKeys::from_reshare(outputs.values().next().unwrap()).unwrap();
    assert_eq!(new_public.group_public_key(), public.group_public_key());
    let new_shares: AesShares = outputs
        .iter()
        .filter(|(_, o)| o.holds_share())
        .map(|(id, o)| (*id, SplitAesKeyShare::from_reshare(o).unwrap()))
        .collect();
    assert_eq!(
        new_shares.keys().copied().collect::<Vec<_>>(),
        new_committee
    );
    (new_shares, new_public)
}

/// Every `t`-subset encrypts and decrypts, and decrypts every blob made before.
fn aes_works(
    shares: &AesShares,
    public: &SplitAesPublicKeys,
    old_blobs: &[(Vec<u8>, Vec<u8>)],
    seed: u64,
) {
    let ids: Vec<ParticipantId> = shares.keys().copied().collect();
    let mut rng = rng(seed);
    for holders in subsets(&ids, usize::from(public.threshold())) {
        let holders: Vec<&SplitAesKeyShare> = holders.iter().map(|id| &shares[id]).collect();
        let plaintext = format!("after the reshare, holders {:?}", holders.len());
        let blob = encrypt_in_process(
            &holders,
            public,
            KEY_ID,
            b"aad",
            plaintext.as_bytes(),
            &mut rng,
        )
        .unwrap();
        let opened = decrypt_in_process(&holders, public, b"aad", &blob, &mut rng).unwrap();
        assert_eq!(opened.as_slice(), plaintext.as_bytes());
        for (plaintext, blob) in old_blobs {
            let opened = decrypt_in_process(&holders, public, b"aad", blob, &mut rng).unwrap();
            assert_eq!(opened.as_slice(), plaintext.as_slice());
            // The encryption receipt made by the old holders (old shares, maybe another threshold) still
            // verifies against the key: a key that is no longer active still decrypts blobs made before a
            // reshare.
            let parsed = CiphertextBlob::parse(blob).unwrap();
            EncryptionReceipt::from_bytes(&parsed.receipt)
                .unwrap()
                .verify(&public.group_public_key(), &KEY_ID, &parsed.alpha)
                .unwrap();
        }
    }
}

/// TEST ONLY: whether these shares (at x = id) interpolate to the DPRF key `k` behind `public`.
fn aes_opens(shares: &[(ParticipantId, &SplitAesKeyShare)], public: &SplitAesPublicKeys) -> bool {
    let points: Vec<(u64, Scalar)> = shares
        .iter()
        .map(|(id, s)| (u64::from(*id), scalar_25519(&s.secret_share_bytes())))
        .collect();
    RistrettoPoint::mul_base(&interpolate_25519(&points))
        .compress()
        .to_bytes()
        == public.group_public_key()
}

#[test]
fn split_aes_add_raise_threshold_remove_keep_the_key_and_old_blobs() {
    let s0 = aes_dkg(&[1, 2, 3], 2, 31);
    let p0 = s0[&1].public_keys();
    let mut rng = rng(31);
    let blobs: Vec<(Vec<u8>, Vec<u8>)> = (0..2)
        .map(|k| {
            let plaintext = format!("made before any reshare, #{k}").into_bytes();
            let blob = encrypt_in_process(
                &[&s0[&1], &s0[&3]],
                &p0,
                KEY_ID,
                b"aad",
                &plaintext,
                &mut rng,
            )
            .unwrap();
            (plaintext, blob)
        })
        .collect();
    aes_works(&s0, &p0, &blobs, 310);

    let (s1, p1) = aes_reshare(&s0, &p0, &[1, 2, 3], &[1, 2, 3, 4], 2, 32);
    aes_works(&s1, &p1, &blobs, 320);
    let (s2, p2) = aes_reshare(&s1, &p1, &[1, 3], &[1, 2, 3, 4], 3, 33);
    aes_works(&s2, &p2, &blobs, 330);
    let (s3, p3) = aes_reshare(&s2, &p2, &[2, 3, 4], &[1, 3, 4], 2, 34);
    aes_works(&s3, &p3, &blobs, 340);

    // Old shares are useless: 2's kept shares do not combine with any current one.
    for id in [1, 3, 4] {
        assert!(!aes_opens(&[(2, &s2[&2]), (id, &s3[&id])], &p3));
        assert!(!aes_opens(&[(2, &s1[&2]), (id, &s3[&id])], &p3));
    }
    assert!(aes_opens(&[(3, &s3[&3]), (4, &s3[&4])], &p3));
    // Nor does a removed holder's partial evaluation pass against the current public keys.
    assert!(decrypt_in_process(&[&s2[&2], &s3[&1]], &p3, b"aad", &blobs[0].1, &mut rng).is_err());
}

#[test]
fn split_aes_refresh_and_repair() {
    let s0 = aes_dkg(&[1, 2, 3], 2, 41);
    let p0 = s0[&1].public_keys();
    let mut rng = rng(41);
    let blob =
        encrypt_in_process(&[&s0[&1], &s0[&2]], &p0, KEY_ID, b"aad", b"old", &mut rng).unwrap();
    let blobs = vec![(b"old".to_vec(), blob)];

    // Refresh: every share changes, the key does not.
    let (s1, p1) = aes_reshare(&s0, &p0, &[1, 2, 3], &[1, 2, 3], 2, 42);
    for id in [1, 2, 3] {
        assert_ne!(s1[&id].secret_share_bytes(), s0[&id].secret_share_bytes());
        assert_ne!(p1.public_share(id), p0.public_share(id));
    }
    aes_works(&s1, &p1, &blobs, 420);
    assert!(!aes_opens(&[(1, &s0[&1]), (2, &s1[&2])], &p1));

    // Repair: 3 lost its share; 1 and 2 deal to the same committee.
    let mut lost = s1;
    lost.remove(&3);
    let (s2, p2) = aes_reshare(&lost, &p1, &[1, 2], &[1, 2, 3], 2, 43);
    aes_works(&s2, &p2, &blobs, 430);
    assert!(aes_opens(&[(1, &s2[&1]), (3, &s2[&3])], &p2));
}

// ------------------------------------------------------------------------------------------------------------
// ECDSA (DKLs23 on secp256k1 and P-256)
// ------------------------------------------------------------------------------------------------------------

type Keys = BTreeMap<ParticipantId, Arc<EcdsaKeyShare>>;

fn ecdsa_dkg(curve: EcdsaCurve, ids: &[ParticipantId], t: u16, seed: u64) -> Keys {
    let parties = ids
        .iter()
        .map(|me| {
            Dkls23::dkg(
                curve,
                DkgParams {
                    session: session(seed),
                    me: *me,
                    participants: ids.to_vec(),
                    threshold: t,
                },
            )
            .unwrap()
        })
        .collect();
    run_threaded(parties, seed)
        .into_iter()
        .map(|(id, share)| (id, Arc::new(share)))
        .collect()
}

/// Reshares, then runs the pairwise set-up of the new committee; returns the new key shares.
fn ecdsa_reshare(
    keys: &Keys,
    public: &EcdsaPublicKeys,
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    t: u16,
    seed: u64,
) -> Keys {
    let started = Instant::now();
    let parties = everyone(dealers, new_committee)
        .into_iter()
        .map(|me| {
            EcdsaReshare::new(
                params(seed, me, dealers, new_committee, t),
                public,
                keys.get(&me).map(Arc::as_ref),
            )
            .unwrap()
        })
        .collect();
    let outputs: BTreeMap<ParticipantId, EcdsaReshareOutput> = run(parties, seed);
    let reshared = started.elapsed();
    let pk = public.public_key_sec1();
    for (id, o) in &outputs {
        assert_eq!(o.curve(), public.curve());
        assert_eq!(o.public_key_sec1(), pk);
        assert_eq!(o.dealers(), dealers);
        assert!(o.excluded().is_empty());
        assert_eq!(o.committee(), new_committee);
        assert_eq!(o.threshold(), t);
        assert_eq!(o.holds_share(), new_committee.contains(id));
        let back = EcdsaReshareOutput::from_bytes(&o.to_bytes()).unwrap();
        assert_eq!(back.to_bytes(), o.to_bytes());
        if !o.holds_share() {
            assert!(EcdsaDkg::after_reshare(session(seed + 1000), o).is_err());
        }
    }
    let setups: Vec<EcdsaDkg> = outputs
        .values()
        .filter(|o| o.holds_share())
        .map(|o| EcdsaDkg::after_reshare(session(seed + 1000), o).unwrap())
        .collect();
    let new_keys: Keys = run_threaded(setups, seed)
        .into_iter()
        .map(|(id, share)| (id, Arc::new(share)))
        .collect();
    eprintln!(
        "ECDSA {} reshare {dealers:?} -> {t}-of-{new_committee:?}: reshare {:.2} s, pairwise set-up {:.1} s",
        public.curve(),
        reshared.as_secs_f64(),
        (started.elapsed() - reshared).as_secs_f64()
    );
    let first = new_keys.values().next().unwrap();
    for (id, share) in &new_keys {
        assert_eq!(share.participant(), *id);
        assert_eq!(share.public_key_sec1(), pk, "the public key is unchanged");
        assert_eq!(share.threshold(), t);
        assert_eq!(share.participants(), new_committee);
        assert_eq!(share.public_keys(), first.public_keys());
    }
    new_keys
}

fn ecdsa_sign(
    keys: &Keys,
    signers: &[ParticipantId],
    digest: [u8; 32],
    seed: u64,
) -> EcdsaSignature {
    let parties: Vec<EcdsaSigning> = signers
        .iter()
        .map(|me| {
            Dkls23::signing(
                Arc::clone(&keys[me]),
                SignParams {
                    session: session(seed),
                    me: *me,
                    signers: signers.to_vec(),
                    digest,
                },
            )
            .unwrap()
        })
        .collect();
    let outputs = run(parties, seed);
    let first = *outputs.values().next().unwrap();
    assert!(outputs.values().all(|s| *s == first));
    first
}

/// Every `t`-subset signs; each signature verifies with our verifier and with the curve crate.
fn ecdsa_signs(keys: &Keys, seed: u64) {
    let first = keys.values().next().unwrap();
    let (curve, pk) = (first.curve(), first.public_key_sec1());
    let ids: Vec<ParticipantId> = keys.keys().copied().collect();
    for (k, signers) in subsets(&ids, usize::from(first.threshold()))
        .into_iter()
        .enumerate()
    {
        let message = format!("reshared ECDSA key, signers {signers:?}");
        let digest = signing_digest(HashAlg::Sha256, message.as_bytes()).unwrap();
        let sig = ecdsa_sign(keys, &signers, digest, seed + k as u64);
        assert!(verify_prehash(curve, &pk, &digest, &sig.to_bytes()));
        let bytes = sig.to_bytes();
        let ok = match curve {
            EcdsaCurve::Secp256k1 => {
                use k256::ecdsa::signature::hazmat::PrehashVerifier;
                let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&pk).unwrap();
                let signature = k256::ecdsa::Signature::from_slice(&bytes).unwrap();
                key.verify_prehash(&digest, &signature).is_ok()
            }
            EcdsaCurve::P256 => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier;
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&pk).unwrap();
                let signature = p256::ecdsa::Signature::from_slice(&bytes).unwrap();
                key.verify_prehash(&digest, &signature).is_ok()
            }
        };
        assert!(ok, "signers {signers:?}");
    }
}

/// TEST ONLY: whether `(x, share)` pairs (x = rank in the share's committee) interpolate to the secret key.
fn ecdsa_opens(curve: EcdsaCurve, pk: &[u8], points: &[(u64, &EcdsaKeyShare)]) -> bool {
    fn secret<C>(points: &[(u64, &EcdsaKeyShare)]) -> C::Scalar
    where
        C: k256::elliptic_curve::CurveArithmetic,
        C::Scalar: PrimeField,
    {
        let values: Vec<(u64, C::Scalar)> = points
            .iter()
            .map(|(x, share)| {
                let mut repr = <C::Scalar as PrimeField>::Repr::default();
                AsMut::<[u8]>::as_mut(&mut repr).copy_from_slice(&share.secret_share_bytes());
                (*x, Option::from(C::Scalar::from_repr(repr)).unwrap())
            })
            .collect();
        interpolate(&values)
    }
    let public = match curve {
        EcdsaCurve::Secp256k1 => {
            let s = secret::<k256::Secp256k1>(points);
            (k256::ProjectivePoint::GENERATOR * s)
                .to_affine()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec()
        }
        EcdsaCurve::P256 => {
            let s = secret::<p256::NistP256>(points);
            (p256::ProjectivePoint::GENERATOR * s)
                .to_affine()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec()
        }
    };
    public == pk
}

/// The rank of `id` in its share's committee (the dkls23 index: the share's x-coordinate).
fn rank(share: &EcdsaKeyShare) -> u64 {
    EvaluationPoints::Rank
        .x(&share.participants(), share.participant())
        .unwrap()
}

/// DKG 2-of-3 → 2-of-4 (add 4) → 3-of-4 → 2-of-3 without 2, and a repair of 2 in the DKG's key; signatures
/// with every t-subset at every step, removed and lost shares useless.
fn ecdsa_committee_walk(curve: EcdsaCurve, seed: u64) {
    let started = Instant::now();
    let k0 = ecdsa_dkg(curve, &[1, 2, 3], 2, seed);
    eprintln!(
        "ECDSA {curve} DKG 2-of-3: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let pk = k0[&1].public_key_sec1();
    ecdsa_signs(&k0, seed + 10);

    let k1 = ecdsa_reshare(
        &k0,
        &k0[&1].public_keys(),
        &[1, 2, 3],
        &[1, 2, 3, 4],
        2,
        seed + 1,
    );
    ecdsa_signs(&k1, seed + 20);
    let k2 = ecdsa_reshare(
        &k1,
        &k1[&1].public_keys(),
        &[2, 4],
        &[1, 2, 3, 4],
        3,
        seed + 2,
    );
    ecdsa_signs(&k2, seed + 30);
    let k3 = ecdsa_reshare(
        &k2,
        &k2[&1].public_keys(),
        &[1, 2, 4],
        &[1, 3, 4],
        2,
        seed + 3,
    );
    ecdsa_signs(&k3, seed + 40);

    // 3 and 4 moved to other x-coordinates: 3 was at 3 in {1,2,3,4}, is at 2 in {1,3,4}.
    assert_eq!((rank(&k2[&3]), rank(&k3[&3])), (3, 2));
    // Old shares are useless: 2's kept shares, with any single current one, do not open the key.
    for id in [1, 3, 4] {
        let current = (rank(&k3[&id]), k3[&id].as_ref());
        assert!(!ecdsa_opens(
            curve,
            &pk,
            &[(rank(&k2[&2]), &k2[&2]), current]
        ));
        assert!(!ecdsa_opens(
            curve,
            &pk,
            &[(rank(&k1[&2]), &k1[&2]), current]
        ));
    }
    assert!(ecdsa_opens(
        curve,
        &pk,
        &[(rank(&k3[&1]), &k3[&1]), (rank(&k3[&4]), &k3[&4])]
    ));

    // Repair, from the DKG's 2-of-3 key: 2 lost its share; 1 and 3 deal to the same committee {1, 2, 3};
    // every pair signs, 1 and 3 got new shares too, and 2's lost share is useless with them.
    let mut lost = k0.clone();
    lost.remove(&2);
    let k4 = ecdsa_reshare(
        &lost,
        &k0[&1].public_keys(),
        &[1, 3],
        &[1, 2, 3],
        2,
        seed + 4,
    );
    ecdsa_signs(&k4, seed + 50);
    for id in [1, 3] {
        assert_ne!(k4[&id].secret_share_bytes(), k0[&id].secret_share_bytes());
        assert!(!ecdsa_opens(
            curve,
            &pk,
            &[(2, &k0[&2]), (rank(&k4[&id]), &k4[&id])]
        ));
    }
    assert!(ecdsa_opens(curve, &pk, &[(2, &k4[&2]), (3, &k4[&3])]));
    eprintln!(
        "ECDSA {curve} committee walk: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn secp256k1_committee_walk_and_repair() {
    ecdsa_committee_walk(EcdsaCurve::Secp256k1, 500);
}

#[test]
fn p256_committee_walk_and_repair() {
    ecdsa_committee_walk(EcdsaCurve::P256, 600);
}

// ------------------------------------------------------------------------------------------------------------
// The group code alone, on all four groups (a test-made sharing stands in for a DKG)
// ------------------------------------------------------------------------------------------------------------

/// TEST ONLY: a `t`-of-`ids` sharing of a random key made by a trusted dealer (this test), at `points`.
fn dealt<G: ReshareGroup>(
    ids: &[ParticipantId],
    t: u16,
    points: EvaluationPoints,
    seed: u64,
) -> (SharedKey<G>, BTreeMap<ParticipantId, G::Scalar>) {
    let mut rng = rng(seed);
    let coefficients: Vec<G::Scalar> = (0..t).map(|_| G::random_scalar(&mut rng)).collect();
    let mut secrets = BTreeMap::new();
    let mut publics = BTreeMap::new();
    for id in ids {
        let x = G::scalar_from_u64(points.x(ids, *id).unwrap());
        let value = coefficients
            .iter()
            .rev()
            .fold(G::scalar_zero(), |acc, c| acc * x + *c);
        secrets.insert(*id, value);
        publics.insert(*id, G::mul_base(&value));
    }
    let key = SharedKey::new(t, points, G::mul_base(&coefficients[0]), publics).unwrap();
    (key, secrets)
}

fn generic_reshare<G: ReshareGroup>(
    old: &SharedKey<G>,
    secrets: &BTreeMap<ParticipantId, G::Scalar>,
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    t: u16,
    seed: u64,
) -> BTreeMap<ParticipantId, ReshareOutput<G>> {
    let parties = everyone(dealers, new_committee)
        .into_iter()
        .map(|me| {
            let secret = dealers
                .contains(&me)
                .then(|| DealerSecret::new(Zeroizing::new(secrets[&me])));
            Reshare::new(
                params(seed, me, dealers, new_committee, t),
                old.clone(),
                secret,
            )
            .unwrap()
        })
        .collect();
    let outputs = run(parties, seed);
    check_outputs(&outputs, dealers, new_committee, t);
    outputs
}

fn every_group<G: ReshareGroup>(points: EvaluationPoints, seed: u64) {
    let (old, secrets) = dealt::<G>(&[2, 5, 7], 2, points, seed);
    // 2 deals and leaves, 5 stays without dealing, 1 and 9 join.
    let outputs = generic_reshare(&old, &secrets, &[2, 7], &[1, 5, 7, 9], 3, seed + 1);
    let new = outputs[&1].public();
    // SharedKey::new checked that the new public shares lie on a degree-2 polynomial through the group key,
    // and ReshareOutput::new that every holder's share matches its public share.
    assert_eq!(new.group_key(), old.group_key());
    assert_eq!(new.threshold(), 3);
    assert_eq!(new.evaluation_points(), points);
    assert_ne!(new.public_share(5), old.public_share(5));
    assert!(!outputs[&2].holds_share());
    let bytes = new.to_bytes();
    assert_eq!(&SharedKey::<G>::from_bytes(&bytes).unwrap(), new);
    let bytes = outputs[&9].to_bytes();
    assert!(matches!(
        ReshareOutput::<G>::from_bytes(&[&[9u8][..], &bytes[1..]].concat()),
        Err(ProtocolError::UnsupportedVersion(9))
    ));
    assert!(ReshareOutput::<G>::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(format!("{:?}", outputs[&9]).contains("<redacted>"));
}

#[test]
fn every_group_reshares_at_both_kinds_of_evaluation_points() {
    for points in [EvaluationPoints::ParticipantId, EvaluationPoints::Rank] {
        every_group::<EdwardsPoint>(points, 70);
        every_group::<RistrettoPoint>(points, 71);
        every_group::<k256::ProjectivePoint>(points, 72);
        every_group::<p256::ProjectivePoint>(points, 73);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Decoders never panic (CONVENTIONS §11)
// ------------------------------------------------------------------------------------------------------------

/// Valid encodings to mutate: a message of every round, an output with a share, a shared key.
fn samples() -> &'static Vec<Vec<u8>> {
    static SAMPLES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(|| {
        let (key, secrets) =
            dealt::<RistrettoPoint>(&[1, 2, 3], 2, EvaluationPoints::ParticipantId, 90);
        let outputs = generic_reshare(&key, &secrets, &[1, 2], &[1, 2, 3], 2, 91);
        let payload = DealPayload {
            context: [7; 32],
            commitments: Some(vec![key.group_key().to_bytes(); 2]),
        }
        .to_bytes()
        .unwrap();
        let bodies = [
            ReshareBody::Deal(payload),
            ReshareBody::SubShare(SecretBytes::new(vec![1; 32])),
            ReshareBody::Verdict {
                echo: [(1, [2; 32]), (2, [3; 32])].into(),
                complaints: vec![2],
            },
            ReshareBody::Answer {
                echo: [(1, [5; 32]), (2, [6; 32])].into(),
                answers: [(3, SecretBytes::new(vec![7; 32]))].into(),
            },
            ReshareBody::Echo([(1, [4; 32])].into()),
        ];
        let mut samples: Vec<Vec<u8>> = bodies
            .into_iter()
            .map(|b| ReshareMessage::new(session(92), b).to_bytes().unwrap())
            .collect();
        samples.push(outputs[&3].to_bytes().to_vec());
        samples.push(key.to_bytes());
        samples
    })
}

fn decode_everything(bytes: &[u8]) {
    let _ = ReshareMessage::from_bytes(bytes);
    let _ = DealPayload::from_bytes(bytes);
    let _ = ReshareOutput::<RistrettoPoint>::from_bytes(bytes);
    let _ = ReshareOutput::<k256::ProjectivePoint>::from_bytes(bytes);
    let _ = EcdsaReshareOutput::from_bytes(bytes);
    let _ = SharedKey::<EdwardsPoint>::from_bytes(bytes);
    let _ = SharedKey::<RistrettoPoint>::from_bytes(bytes);
    let _ = SharedKey::<p256::ProjectivePoint>::from_bytes(bytes);
}

proptest::proptest! {
    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoding_mutated_encodings_never_panics(
        which in 0usize..7,
        position in proptest::prelude::any::<proptest::sample::Index>(),
        value in proptest::prelude::any::<u8>(),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
    ) {
        let mut bytes = samples()[which].clone();
        let i = position.index(bytes.len());
        bytes[i] = value;
        decode_everything(&bytes);
        bytes.truncate(cut.index(bytes.len() + 1));
        decode_everything(&bytes);
    }
}

#[test]
fn samples_decode() {
    let s = samples();
    for m in &s[..5] {
        assert_eq!(
            &ReshareMessage::from_bytes(m).unwrap().to_bytes().unwrap(),
            m
        );
    }
    assert!(ReshareOutput::<RistrettoPoint>::from_bytes(&s[5]).is_ok());
    assert!(SharedKey::<RistrettoPoint>::from_bytes(&s[6]).is_ok());
}
