//! Cluster-level benchmark on loopback: a real 3-node 2-of-3 cluster (the test kit's, node and coordinator processes
//! talking QUIC with mutual TLS on 127.0.0.1) signing and encrypting through the native client API, each beside
//! the same operation with a whole key in this process, measured in the same run.
//!
//! It needs the release `vhsm` binary next to this bench's executable (`target/release/vhsm`):
//! `cargo build --release -p vhsm-cli && cargo bench -p vhsm-bench --bench cluster`. Without it the
//! bench says so and measures nothing. For the full picture (concurrency 1/8/64, PKCS#11, SoftHSMv2, CPU per
//! operation) use `vhsm bench`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ed25519_dalek::Signer as _;
use vhsm_core::{Algorithm, KeyId};
use vhsm_testkit::process::{vhsm_binary, ProcessCluster};

/// Requests in flight in the throughput benchmarks.
const IN_FLIGHT: usize = 8;

/// Runs `iters` operations with `IN_FLIGHT` of them in flight; returns the wall time.
fn in_flight<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let (op, next) = (op.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= iters {
                            break;
                        }
                        op(i).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    start.elapsed()
}

fn cluster(c: &mut Criterion) {
    if let Err(e) = vhsm_binary() {
        eprintln!("cluster bench skipped: {e:#}");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = rt.block_on(ProcessCluster::launch(3, 2)).unwrap();
    let client = Arc::new(rt.block_on(cluster.client()));
    let key = |algorithm| -> KeyId {
        rt.block_on(client.create_key(algorithm, "cluster-bench"))
            .unwrap()
            .id
    };
    let (ed, k1, aes) = (
        key(Algorithm::Ed25519),
        key(Algorithm::EcdsaSecp256k1),
        key(Algorithm::SplitAes256),
    );
    let message = [7u8; 64];

    let mut group = c.benchmark_group("cluster_ed25519");
    group.sample_size(10).throughput(Throughput::Elements(1));
    group.bench_function("single_key_ed25519_dalek", |b| {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        b.iter(|| key.sign(&message))
    });
    group.bench_function("cluster_2_of_3_one_at_a_time", |b| {
        b.iter(|| rt.block_on(client.sign(ed, &message, None)).unwrap())
    });
    let c2 = client.clone();
    group.bench_function("cluster_2_of_3_8_in_flight", |b| {
        b.iter_custom(|iters| {
            let c2 = c2.clone();
            in_flight(&rt, iters, move |_| {
                let c2 = c2.clone();
                async move {
                    c2.sign(ed, &message, None).await.unwrap();
                }
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("cluster_ecdsa_secp256k1");
    group.sample_size(10).throughput(Throughput::Elements(1));
    group.bench_function("single_key_k256", |b| {
        let key = k256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
        b.iter(|| {
            let s: k256::ecdsa::Signature = k256::ecdsa::signature::Signer::sign(&key, &message);
            s
        })
    });
    group.bench_function("cluster_2_of_3_one_at_a_time", |b| {
        b.iter(|| rt.block_on(client.sign(k1, &message, None)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("cluster_encrypt_1kib");
    group.sample_size(10).throughput(Throughput::Bytes(1024));
    let record = vec![9u8; 1024];
    group.bench_function("single_key_aes_256_gcm", |b| {
        let cipher = Aes256Gcm::new(&[1u8; 32].into());
        b.iter(|| {
            cipher
                .encrypt(&[0u8; 12].into(), record.as_slice())
                .unwrap()
        })
    });
    group.bench_function("cluster_split_aes_one_at_a_time", |b| {
        b.iter(|| rt.block_on(client.encrypt(aes, &record, b"")).unwrap())
    });
    let c2 = client.clone();
    group.bench_function("cluster_split_aes_8_in_flight", |b| {
        b.iter_custom(|iters| {
            let (c2, record) = (c2.clone(), record.clone());
            in_flight(&rt, iters, move |_| {
                let (c2, record) = (c2.clone(), record.clone());
                async move {
                    c2.encrypt(aes, &record, b"").await.unwrap();
                }
            })
        })
    });
    group.finish();
    drop(client);
    drop(cluster);
}

criterion_group!(benches, cluster);
criterion_main!(benches);
