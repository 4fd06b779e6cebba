//! Helpers shared by the integration tests: run a DKG through the simulator, sign with a subset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code,
    missing_docs
)]

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vhsm_protocols::frost::{
    aggregate, commit, sign, signing_package, DkgParams, FrostDkg, FrostKeyShare,
};
use vhsm_protocols::simulator::{DeliveryOrder, Simulation};
use vhsm_protocols::{ParticipantId, SessionId};

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn session(seed: u8) -> SessionId {
    SessionId([seed; 32])
}

pub fn dkg_parties(session: SessionId, ids: &[ParticipantId], threshold: u16) -> Vec<FrostDkg> {
    ids.iter()
        .map(|me| {
            FrostDkg::new(DkgParams {
                session,
                me: *me,
                participants: ids.to_vec(),
                threshold,
            })
            .unwrap()
        })
        .collect()
}

/// Runs an honest DKG; returns every participant's share.
pub fn run_dkg(
    ids: &[ParticipantId],
    threshold: u16,
    seed: u64,
    order: DeliveryOrder,
) -> BTreeMap<ParticipantId, FrostKeyShare> {
    let outcome = Simulation::new(dkg_parties(session(seed as u8), ids, threshold))
        .order(order)
        .run(&mut rng(seed));
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    assert!(outcome.stalled.is_empty(), "stalled: {:?}", outcome.stalled);
    assert_eq!(outcome.outputs.len(), ids.len());
    outcome.outputs
}

/// Signs `message` with the given shares (all of them sign) through the public API, in process.
pub fn sign_with(shares: &[&FrostKeyShare], message: &[u8], seed: u64) -> [u8; 64] {
    let mut rng = rng(seed);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for share in shares {
        let (n, c) = commit(share, &mut rng);
        nonces.insert(share.participant(), n);
        commitments.insert(share.participant(), c);
    }
    let package = signing_package(&commitments, message).unwrap();
    let sig_shares = shares
        .iter()
        .map(|share| {
            let n = nonces.remove(&share.participant()).unwrap();
            (share.participant(), sign(share, n, &package).unwrap())
        })
        .collect();
    aggregate(&shares[0].public_keys(), &package, &sig_shares).unwrap()
}

/// Independent verification with ed25519-dalek's strict verifier.
pub fn verify_strict(group_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(group_key).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    vk.verify_strict(message, &sig)
        .expect("FROST signature must verify as plain Ed25519");
}

/// All subsets of `items` of size `k`.
pub fn subsets<T: Copy>(items: &[T], k: usize) -> Vec<Vec<T>> {
    if k == 0 {
        return vec![vec![]];
    }
    if items.len() < k {
        return vec![];
    }
    let (first, rest) = items.split_first().unwrap();
    let mut with: Vec<Vec<T>> = subsets(rest, k - 1)
        .into_iter()
        .map(|mut s| {
            s.insert(0, *first);
            s
        })
        .collect();
    with.extend(subsets(rest, k));
    with
}
