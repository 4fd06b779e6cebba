//! DKLs23 2-of-3 threshold ECDSA signing against plain single-key ECDSA signing, per curve, measured in the
//! same run.
//!
//! * `<curve> single-key sign_prehash` — the baseline: one party holding the whole key signs a 32-byte digest
//!   with `k256` / `p256` (`SigningKey::sign_prehash`, RFC 6979 nonces).
//! * `<curve> DKLs23 2-of-3 sign (all signers, in-process)` — the CPU cost of one threshold signature summed
//!   over both signers, with no network: two `EcdsaSigning` state machines driven through all three rounds by
//!   the in-memory simulator (postcard encoding of every `dkls23` payload included, and the final
//!   verification of the signature with the curve crate that every signer does before output).
//!
//! The key shares come from a DKG run once per curve through the simulator, outside the measurement. The bytes
//! on the wire per signature (the sum of the postcard-encoded `EcdsaMessage`s delivered) are printed to
//! stderr, not measured. The ratio threshold / baseline is the CPU price of never having the key in one
//! place; network round trips (three per signature) come on top (see DESIGN.md, "Performance model").
#![allow(missing_docs)] // `criterion_group!` generates an undocumented public function.
#![allow(clippy::expect_used)] // Benchmark setup: a failure must stop the run.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use k256::ecdsa::signature::hazmat::PrehashSigner;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use vhsm_protocols::ecdsa::{
    verify_prehash, DkgParams, Dkls23, EcdsaCurve, EcdsaKeyShare, EcdsaMessage, EcdsaSignature,
    SignParams, ThresholdEcdsa,
};
use vhsm_protocols::simulator::{Delivery, Simulation};
use vhsm_protocols::{ParticipantId, SessionId};

const DIGEST: [u8; 32] = [0x5a; 32];
const SIGNERS: [ParticipantId; 2] = [1, 3];

/// A 2-of-3 key from an honest DKG.
fn dkls_keys(
    curve: EcdsaCurve,
    rng: &mut ChaCha20Rng,
) -> BTreeMap<ParticipantId, Arc<EcdsaKeyShare>> {
    let ids = [1, 2, 3];
    let session = SessionId::random(rng);
    let parties = ids.iter().map(|me| {
        Dkls23::dkg(
            curve,
            DkgParams {
                session,
                me: *me,
                participants: ids.to_vec(),
                threshold: 2,
            },
        )
        .expect("valid DKG parameters")
    });
    let started = Instant::now();
    let outcome = Simulation::new(parties).run(rng);
    eprintln!(
        "DKLs23 2-of-3 {curve} key generation (all parties, in-process): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(outcome.errors.is_empty() && outcome.stalled.is_empty());
    outcome
        .outputs
        .into_iter()
        .map(|(id, share)| (id, Arc::new(share)))
        .collect()
}

/// The signers' state machines for one run.
fn signing_parties(
    keys: &BTreeMap<ParticipantId, Arc<EcdsaKeyShare>>,
    session: SessionId,
) -> Vec<<Dkls23 as ThresholdEcdsa>::Signing> {
    SIGNERS
        .iter()
        .map(|me| {
            let share = keys.get(me).expect("signer holds a share");
            Dkls23::signing(
                Arc::clone(share),
                SignParams {
                    session,
                    me: *me,
                    signers: SIGNERS.to_vec(),
                    digest: black_box(DIGEST),
                },
            )
            .expect("valid signing parameters")
        })
        .collect()
}

/// One complete threshold signature by both signers, all in this process.
fn dkls_sign(
    keys: &BTreeMap<ParticipantId, Arc<EcdsaKeyShare>>,
    rng: &mut ChaCha20Rng,
) -> EcdsaSignature {
    let session = SessionId::random(rng);
    let outcome = Simulation::new(signing_parties(keys, session)).run(rng);
    outcome
        .outputs
        .into_values()
        .next()
        .expect("signers output the signature")
}

/// Bytes on the wire of one signing: the postcard-encoded messages as delivered.
fn wire_bytes(keys: &BTreeMap<ParticipantId, Arc<EcdsaKeyShare>>, rng: &mut ChaCha20Rng) -> usize {
    let mut total = 0;
    let session = SessionId::random(rng);
    let outcome = Simulation::new(signing_parties(keys, session)).run_with_hook(
        rng,
        |_, _, message: &mut EcdsaMessage| {
            total += message.to_bytes().expect("encodes").len();
            Delivery::Deliver
        },
    );
    assert_eq!(outcome.outputs.len(), SIGNERS.len());
    total
}

fn signing(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2025);
    let secret = [0x42u8; 32];
    for curve in [EcdsaCurve::Secp256k1, EcdsaCurve::P256] {
        let keys = dkls_keys(curve, &mut rng);
        let public = keys.get(&1).expect("share").public_key_sec1();
        let sample = dkls_sign(&keys, &mut rng);
        assert!(verify_prehash(curve, &public, &DIGEST, &sample.to_bytes()));
        eprintln!(
            "DKLs23 2-of-3 {curve} signing: {} bytes on the wire per signature",
            wire_bytes(&keys, &mut rng)
        );

        let mut group = c.benchmark_group(format!("ecdsa_signing/{curve}"));
        group
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1))
            .sample_size(10);
        match curve {
            EcdsaCurve::Secp256k1 => {
                let key = k256::ecdsa::SigningKey::from_slice(&secret).expect("valid scalar");
                group.bench_function("single-key sign_prehash (k256)", |b| {
                    b.iter(|| {
                        let sig: k256::ecdsa::Signature =
                            key.sign_prehash(black_box(&DIGEST)).expect("signs");
                        sig
                    })
                });
            }
            EcdsaCurve::P256 => {
                let key = p256::ecdsa::SigningKey::from_slice(&secret).expect("valid scalar");
                group.bench_function("single-key sign_prehash (p256)", |b| {
                    b.iter(|| {
                        let sig: p256::ecdsa::Signature =
                            key.sign_prehash(black_box(&DIGEST)).expect("signs");
                        sig
                    })
                });
            }
        }
        group.bench_function("DKLs23 2-of-3 sign (all signers, in-process)", |b| {
            b.iter(|| dkls_sign(&keys, &mut rng))
        });
        group.finish();
    }
}

criterion_group!(benches, signing);
criterion_main!(benches);
