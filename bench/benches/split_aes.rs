//! Split-AES 2-of-3 threshold encryption against plain single-key AES-256-GCM, measured in the same run.
//!
//! * `AES-256-GCM local encrypt {32 B, 1 KiB}` — the baseline: one process holding one AES key seals the
//!   message (random nonce, `aes-gcm`).
//! * `split-AES 2-of-3 encrypt {32 B, 1 KiB} (in-process)` — the CPU cost of one threshold encryption summed
//!   over every party, with no network: random ρ and α (SHA-256 over the message), two partial evaluations
//!   (hash to ristretto255, one scalar multiplication, a DLEQ proof each), the coordinator's combination
//!   (both proofs checked, Lagrange interpolation in the exponent, HKDF-SHA256) and AES-256-GCM sealing.
//! * `split-AES 2-of-3 decrypt 1 KiB (in-process)` — the same on the way back, plus the α check.
//!
//! The key shares come from one DKG run through the in-memory simulator. The ratio split-AES / baseline is the
//! CPU price of never having the key in one place; network round trips come on top (see DESIGN.md,
//! "Performance model").
#![allow(missing_docs)] // `criterion_group!` generates an undocumented public function.
#![allow(clippy::expect_used)] // Benchmark setup: a failure must stop the run.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use vhsm_protocols::frost::DkgParams;
use vhsm_protocols::simulator::Simulation;
use vhsm_protocols::split_aes::{
    decrypt_in_process, encrypt_in_process, SplitAesDkg, SplitAesKeyShare,
};
use vhsm_protocols::{ParticipantId, SessionId};

const KEY_ID: [u8; 16] = [0x4b; 16];
const AAD: &[u8] = b"bench";

/// A 2-of-3 split-AES key from an honest DKG.
fn split_keys(rng: &mut ChaCha20Rng) -> BTreeMap<ParticipantId, SplitAesKeyShare> {
    let ids = [1, 2, 3];
    let session = SessionId::random(rng);
    let parties = ids.iter().map(|me| {
        SplitAesDkg::new(DkgParams {
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

fn local_encrypt(cipher: &Aes256Gcm, plaintext: &[u8], rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    cipher
        .encrypt(&Nonce::from(nonce), plaintext)
        .expect("AES-GCM encrypt")
}

fn split_aes(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2025);
    let keys = split_keys(&mut rng);
    let holders: Vec<&SplitAesKeyShare> = [1, 3].iter().filter_map(|id| keys.get(id)).collect();
    let public = holders.first().expect("holder").public_keys();
    let mut aes_key = [0u8; 32];
    rng.fill_bytes(&mut aes_key);
    let cipher = Aes256Gcm::new(&aes_key.into());
    let small = [0x5au8; 32];
    let kib = vec![0xa5u8; 1024];
    let blob_kib = encrypt_in_process(&holders, &public, KEY_ID, AAD, &kib, &mut rng)
        .expect("split-AES encrypt");
    let decrypted =
        decrypt_in_process(&holders, &public, AAD, &blob_kib, &mut rng).expect("decrypt");
    assert_eq!(decrypted.as_slice(), kib.as_slice());

    let mut group = c.benchmark_group("split_aes");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    group.bench_function("AES-256-GCM local encrypt 32 B", |b| {
        b.iter(|| local_encrypt(&cipher, black_box(&small), &mut rng))
    });
    group.bench_function("AES-256-GCM local encrypt 1 KiB", |b| {
        b.iter(|| local_encrypt(&cipher, black_box(&kib), &mut rng))
    });
    group.bench_function("split-AES 2-of-3 encrypt 32 B (in-process)", |b| {
        b.iter(|| {
            encrypt_in_process(&holders, &public, KEY_ID, AAD, black_box(&small), &mut rng)
                .expect("encrypt")
        })
    });
    group.bench_function("split-AES 2-of-3 encrypt 1 KiB (in-process)", |b| {
        b.iter(|| {
            encrypt_in_process(&holders, &public, KEY_ID, AAD, black_box(&kib), &mut rng)
                .expect("encrypt")
        })
    });
    group.bench_function("split-AES 2-of-3 decrypt 1 KiB (in-process)", |b| {
        b.iter(|| {
            decrypt_in_process(&holders, &public, AAD, black_box(&blob_kib), &mut rng)
                .expect("decrypt")
        })
    });
    group.finish();
}

criterion_group!(benches, split_aes);
criterion_main!(benches);
