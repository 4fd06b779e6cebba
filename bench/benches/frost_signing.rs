//! FROST 2-of-3 threshold signing against plain single-key Ed25519 signing, measured in the same run.
//!
//! * `ed25519-dalek single-key sign` — the baseline: one party holding the whole key signs a 32-byte
//!   message.
//! * `FROST 2-of-3 sign (all parties, in-process)` — the CPU cost of one threshold signature summed over
//!   every party, with no network: two signers `commit` (round one), the coordinator builds the
//!   `signing_package`, both signers `sign` (round two), the coordinator `aggregate`s (which verifies the
//!   aggregate signature, and every share only if that fails).
//! * `FROST 2-of-3 sign + ed25519-dalek verify_strict` — the same, plus an independent verification of the
//!   result, as a client would do.
//! * `ed25519-dalek verify_strict` — verification alone, to read the previous line.
//! * `frost-ed25519 2-of-3 sign (crate API, no encoding)` — the same protocol on `frost-ed25519` directly,
//!   with in-memory values (no (de)serialization between parties, no extra verification): the price of our
//!   wrapper is the difference, mostly decoding (each received commitment point gets a prime-order check).
//!
//! The key shares come from a DKG run once through the in-memory simulator. The ratio FROST / baseline is the
//! CPU price of never having the key in one place; network round trips come on top (see DESIGN.md,
//! "Performance model").
#![allow(missing_docs)] // `criterion_group!` generates an undocumented public function.
#![allow(clippy::expect_used)] // Benchmark setup: a failure must stop the run.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signer, SigningKey};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use vhsm_protocols::frost::{
    aggregate, commit, sign, signing_package, DkgParams, FrostDkg, FrostKeyShare, FrostPublicKeys,
};
use vhsm_protocols::simulator::Simulation;
use vhsm_protocols::{ParticipantId, SessionId};

const MESSAGE: [u8; 32] = [0x5a; 32];

/// A 2-of-3 key from an honest DKG.
fn frost_keys(rng: &mut ChaCha20Rng) -> BTreeMap<ParticipantId, FrostKeyShare> {
    let ids = [1, 2, 3];
    let session = SessionId::random(rng);
    let parties = ids.iter().map(|me| {
        FrostDkg::new(DkgParams {
            session,
            me: *me,
            participants: ids.to_vec(),
            threshold: 2,
        })
        .expect("valid DKG parameters")
    });
    let outcome = Simulation::new(parties).run(rng);
    assert!(outcome.errors.is_empty() && outcome.stalled.is_empty());
    outcome.outputs
}

/// One complete threshold signature by `signers`, all parties in this process.
fn frost_sign(
    signers: &[&FrostKeyShare],
    public: &FrostPublicKeys,
    message: &[u8],
    rng: &mut ChaCha20Rng,
) -> [u8; 64] {
    let mut nonces = Vec::with_capacity(signers.len());
    let mut commitments = BTreeMap::new();
    for share in signers {
        let (n, c) = commit(share, rng);
        nonces.push(n);
        commitments.insert(share.participant(), c);
    }
    let package = signing_package(&commitments, message).expect("signing package");
    let shares = signers
        .iter()
        .zip(nonces)
        .map(|(share, n)| {
            (
                share.participant(),
                sign(share, n, &package).expect("signature share"),
            )
        })
        .collect();
    aggregate(public, &package, &shares).expect("aggregate")
}

fn signing(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2025);
    let single = SigningKey::generate(&mut rng);
    let keys = frost_keys(&mut rng);
    let signers: Vec<&FrostKeyShare> = [1, 3].iter().filter_map(|id| keys.get(id)).collect();
    let public = signers.first().expect("signer").public_keys();
    let group_key = ed25519_dalek::VerifyingKey::from_bytes(&public.group_public_key())
        .expect("group key is a valid Ed25519 key");
    let sample =
        ed25519_dalek::Signature::from_bytes(&frost_sign(&signers, &public, &MESSAGE, &mut rng));
    group_key
        .verify_strict(&MESSAGE, &sample)
        .expect("FROST signature verifies");

    let mut group = c.benchmark_group("frost_signing");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    group.bench_function("ed25519-dalek single-key sign", |b| {
        b.iter(|| single.sign(black_box(&MESSAGE)))
    });
    group.bench_function("FROST 2-of-3 sign (all parties, in-process)", |b| {
        b.iter(|| frost_sign(&signers, &public, black_box(&MESSAGE), &mut rng))
    });
    group.bench_function("FROST 2-of-3 sign + ed25519-dalek verify_strict", |b| {
        b.iter(|| {
            let sig = frost_sign(&signers, &public, black_box(&MESSAGE), &mut rng);
            group_key
                .verify_strict(&MESSAGE, &ed25519_dalek::Signature::from_bytes(&sig))
                .expect("verifies")
        })
    });
    group.bench_function("ed25519-dalek verify_strict", |b| {
        b.iter(|| {
            group_key
                .verify_strict(black_box(&MESSAGE), &sample)
                .expect("verifies")
        })
    });
    let (frost_shares, frost_public) = frost_ed25519::keys::generate_with_dealer(
        3,
        2,
        frost_ed25519::keys::IdentifierList::Default,
        &mut rng,
    )
    .expect("dealer keys (benchmark reference only)");
    let frost_keys: Vec<frost_ed25519::keys::KeyPackage> = frost_shares
        .into_values()
        .take(2)
        .map(|s| s.try_into().expect("valid share"))
        .collect();
    group.bench_function("frost-ed25519 2-of-3 sign (crate API, no encoding)", |b| {
        b.iter(|| {
            let mut nonces = Vec::new();
            let mut commitments = BTreeMap::new();
            for kp in &frost_keys {
                let (n, c) = frost_ed25519::round1::commit(kp.signing_share(), &mut rng);
                nonces.push(n);
                commitments.insert(*kp.identifier(), c);
            }
            let package = frost_ed25519::SigningPackage::new(commitments, black_box(&MESSAGE));
            let shares = frost_keys
                .iter()
                .zip(&nonces)
                .map(|(kp, n)| {
                    let share = frost_ed25519::round2::sign(&package, n, kp).expect("share");
                    (*kp.identifier(), share)
                })
                .collect();
            frost_ed25519::aggregate(&package, &shares, &frost_public).expect("aggregate")
        })
    });
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
