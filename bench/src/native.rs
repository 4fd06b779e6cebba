//! The native path: the cluster's own client API (`vhsm_client::Client`), N requests in flight as tokio tasks
//! sharing one connection, as `vhsm demo` does.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use vhsm_client::Client;
use vhsm_core::KeyInfo;
use vhsm_protocols::ecdsa::digest::HashAlg;

use super::{
    cpu::CpuProbe,
    workload::{verify_signature, CellPlan, KeyKind, Measurement, Operation, WorkerResult},
};

/// The cluster through its client API, with the benchmark's keys.
pub struct NativeTarget {
    pub client: Arc<Client>,
    pub keys: BTreeMap<KeyKind, KeyInfo>,
}

/// One operation through the client API: the signature, or the ciphertext blob.
async fn call(
    client: &Client,
    key: &KeyInfo,
    op: Operation,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    let result = if op.is_encryption() {
        client.encrypt(key.id, input, b"").await
    } else {
        let hash = (key.algorithm != vhsm_core::Algorithm::Ed25519).then_some(HashAlg::Prehashed);
        client
            .sign(key.id, input, hash)
            .await
            .map(|(signature, _)| signature)
    };
    result.map_err(|e| e.to_string())
}

impl NativeTarget {
    /// Runs one cell of `op` with `plan.workers` requests in flight.
    pub async fn run_cell(&self, op: Operation, plan: &CellPlan, cpu: &CpuProbe) -> Measurement {
        let Some(key) = self.keys.get(&op.key_kind()).cloned() else {
            return Measurement::failed(format!("no {} key on the cluster", op.key_kind().name()));
        };
        let key = Arc::new(key);
        let input: Arc<[u8]> = op.input().into();

        // Warm-up, not measured.
        let mut warmups = Vec::new();
        for i in 0..plan.workers {
            let n = plan.warmup_of(i);
            if n == 0 {
                continue;
            }
            let (client, key, input) = (self.client.clone(), key.clone(), input.clone());
            warmups.push(tokio::spawn(async move {
                let mut result = WorkerResult::<()>::default();
                for _ in 0..n {
                    if let Err(e) = call(&client, &key, op, &input).await {
                        result.fail(e);
                    }
                }
                result
            }));
        }
        let mut warmup_errors = WorkerResult::<Vec<u8>>::default();
        for w in warmups {
            match w.await {
                Ok(r) => {
                    warmup_errors.errors += r.errors;
                    if let Some(e) = r.first_error {
                        warmup_errors.first_error.get_or_insert(e);
                    }
                }
                Err(e) => warmup_errors.fail(format!("a warm-up task failed: {e}")),
            }
        }

        let before = cpu.sample();
        let started = Instant::now();
        let deadline = started + plan.duration;
        let mut tasks = Vec::with_capacity(plan.workers);
        for _ in 0..plan.workers {
            let (client, key, input) = (self.client.clone(), key.clone(), input.clone());
            tasks.push(tokio::spawn(async move {
                let mut result = WorkerResult::default();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let outcome = call(&client, &key, op, &input).await;
                    if outcome.is_err() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    result.record(outcome, t.elapsed());
                }
                result.finished = Some(Instant::now());
                result
            }));
        }
        let mut results = vec![warmup_errors];
        for t in tasks {
            match t.await {
                Ok(r) => results.push(r),
                Err(e) => {
                    let mut r = WorkerResult::default();
                    r.fail(format!("a benchmark task failed: {e}"));
                    results.push(r);
                }
            }
        }
        let used = cpu.sample().since(&before);
        let (mut m, samples) = Measurement::from_workers(results, started, used);
        self.check(op, &key, &input, &samples, &mut m).await;
        m
    }

    /// Checks the sampled outputs: signatures with the curve crates against the key's public key, ciphertexts
    /// by decrypting them again through the cluster.
    async fn check(
        &self,
        op: Operation,
        key: &KeyInfo,
        input: &[u8],
        samples: &[Vec<u8>],
        m: &mut Measurement,
    ) {
        if op.is_encryption() {
            let mut outcomes = Vec::with_capacity(samples.len());
            for blob in samples {
                let outcome = match self.client.decrypt(blob, b"").await {
                    Ok(plain) if plain.expose() == input => Ok(()),
                    Ok(_) => Err(anyhow::anyhow!("decrypts to something else")),
                    Err(e) => Err(anyhow::Error::new(e).context("does not decrypt")),
                };
                outcomes.push(outcome);
            }
            let mut outcomes = outcomes.into_iter();
            m.check_samples(samples, |_| outcomes.next().unwrap_or(Ok(())));
        } else {
            m.check_samples(samples, |signature| {
                verify_signature(op, &key.public_key, signature)
            });
        }
    }
}

/// The cluster's keys for the benchmark: those the PKCS#11 driver generated (found by their labels), or new ones
/// made through the client API.
pub async fn keys_for(
    client: &Client,
    kinds: &[KeyKind],
    labels: &BTreeMap<KeyKind, String>,
    label_prefix: &str,
) -> anyhow::Result<BTreeMap<KeyKind, KeyInfo>> {
    let listed = if labels.is_empty() {
        Vec::new()
    } else {
        client
            .list_keys()
            .await
            .context("cannot list the cluster's keys")?
    };
    let mut keys = BTreeMap::new();
    for kind in kinds {
        let key = match labels.get(kind) {
            Some(label) => listed
                .iter()
                .find(|k| &k.label == label && k.algorithm == kind.algorithm())
                .cloned()
                .with_context(|| format!("the key generated through PKCS#11 ({label}) is not in the cluster's key list"))?,
            None => client
                .create_key(kind.algorithm(), &format!("{label_prefix}-{}", kind.name()))
                .await
                .with_context(|| format!("cannot create a {} key", kind.algorithm()))?,
        };
        keys.insert(*kind, key);
    }
    Ok(keys)
}
