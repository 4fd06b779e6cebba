//! What is measured: the operations, their inputs, the independent check of their outputs, and the cell runner
//! (N threads, each making one operation after another for a fixed time, after a warm-up).

use std::{
    sync::{Arc, Barrier, OnceLock},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde::Serialize;
use sha2::{Digest, Sha256};
use vhsm_core::Algorithm;

use super::cpu::{CpuProbe, CpuUsed};

/// One benchmarked operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, Serialize)]
pub enum Operation {
    /// Ed25519 signature of a 64-byte message (FROST 2-of-3 on vHSM; CKM_EDDSA through PKCS#11).
    #[value(name = "ed25519")]
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA P-256 signature of a 32-byte SHA-256 digest (DKLs23 on vHSM; CKM_ECDSA through PKCS#11).
    #[value(name = "ecdsa-p256")]
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA secp256k1 signature of a 32-byte SHA-256 digest (DKLs23 on vHSM; CKM_ECDSA through PKCS#11).
    #[value(name = "ecdsa-secp256k1")]
    #[serde(rename = "ecdsa-secp256k1")]
    EcdsaSecp256k1,
    /// Encryption of 32 bytes (split-AES-256 on vHSM; CKM_AES_GCM on SoftHSM).
    #[value(name = "aes-32")]
    #[serde(rename = "aes-32")]
    Aes32,
    /// Encryption of 1 KiB (split-AES-256 on vHSM; CKM_AES_GCM on SoftHSM).
    #[value(name = "aes-1k")]
    #[serde(rename = "aes-1k")]
    Aes1k,
}

/// The kind of key an operation needs: both AES operations use one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    Ed25519,
    P256,
    Secp256k1,
    Aes,
}

impl KeyKind {
    /// The cluster algorithm of this kind of key.
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyKind::Ed25519 => Algorithm::Ed25519,
            KeyKind::P256 => Algorithm::EcdsaP256,
            KeyKind::Secp256k1 => Algorithm::EcdsaSecp256k1,
            KeyKind::Aes => Algorithm::SplitAes256,
        }
    }

    /// A short name, for labels.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::P256 => "p256",
            KeyKind::Secp256k1 => "secp256k1",
            KeyKind::Aes => "aes",
        }
    }
}

impl Operation {
    /// Every operation, in report order.
    pub const ALL: [Operation; 5] = [
        Operation::Ed25519,
        Operation::EcdsaP256,
        Operation::EcdsaSecp256k1,
        Operation::Aes32,
        Operation::Aes1k,
    ];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Ed25519 => "ed25519",
            Operation::EcdsaP256 => "ecdsa-p256",
            Operation::EcdsaSecp256k1 => "ecdsa-secp256k1",
            Operation::Aes32 => "aes-32",
            Operation::Aes1k => "aes-1k",
        }
    }

    /// What one operation is, for people.
    pub fn title(self) -> &'static str {
        match self {
            Operation::Ed25519 => "Ed25519 sign, 64-byte message (CKM_EDDSA)",
            Operation::EcdsaP256 => "ECDSA P-256 sign, 32-byte SHA-256 digest (CKM_ECDSA)",
            Operation::EcdsaSecp256k1 => {
                "ECDSA secp256k1 sign, 32-byte SHA-256 digest (CKM_ECDSA)"
            }
            Operation::Aes32 => {
                "encrypt 32 B (vHSM: split-AES-256, CKM_VHSM_SPLIT_AES; SoftHSM: CKM_AES_GCM, AES-256)"
            }
            Operation::Aes1k => {
                "encrypt 1 KiB (vHSM: split-AES-256, CKM_VHSM_SPLIT_AES; SoftHSM: CKM_AES_GCM, AES-256)"
            }
        }
    }

    /// The key it needs.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Operation::Ed25519 => KeyKind::Ed25519,
            Operation::EcdsaP256 => KeyKind::P256,
            Operation::EcdsaSecp256k1 => KeyKind::Secp256k1,
            Operation::Aes32 | Operation::Aes1k => KeyKind::Aes,
        }
    }

    /// Whether it encrypts (rather than signs).
    pub fn is_encryption(self) -> bool {
        self.key_kind() == KeyKind::Aes
    }

    /// The input of every operation: the message (Ed25519), the digest (ECDSA) or the plaintext (AES).
    pub fn input(self) -> Vec<u8> {
        match self {
            Operation::Ed25519 => (0u8..64).map(|i| i.wrapping_mul(37) ^ 0x5a).collect(),
            Operation::EcdsaP256 | Operation::EcdsaSecp256k1 => {
                Sha256::digest(b"vhsm bench: the message whose digest is signed").to_vec()
            }
            Operation::Aes32 => vec![0xa5; 32],
            Operation::Aes1k => (0..1024u32).map(|i| (i % 251) as u8).collect(),
        }
    }

    /// The threshold protocol the cluster runs for it (the in-process baseline).
    pub fn protocol(self) -> &'static str {
        match self {
            Operation::Ed25519 => "FROST",
            Operation::EcdsaP256 | Operation::EcdsaSecp256k1 => "DKLs23",
            Operation::Aes32 | Operation::Aes1k => "split-AES (DiSE)",
        }
    }
}

/// Checks a signature made by operation `op` over its input, with the public key `public` (Ed25519: 32 bytes;
/// ECDSA: a SEC1 point), using ed25519-dalek `verify_strict` or the p256/k256 crates.
pub fn verify_signature(op: Operation, public: &[u8], signature: &[u8]) -> anyhow::Result<()> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let input = op.input();
    match op {
        Operation::Ed25519 => {
            let bytes: [u8; 32] = public.try_into().context("public key is not 32 bytes")?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .context("public key is not a valid Ed25519 point")?;
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .context("not a 64-byte signature")?;
            key.verify_strict(&input, &sig)
                .context("ed25519-dalek verify_strict rejects it")
        }
        Operation::EcdsaP256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public)
                .context("not a P-256 public key")?;
            let sig =
                p256::ecdsa::Signature::from_slice(signature).context("not a P-256 signature")?;
            key.verify_prehash(&input, &sig)
                .context("the p256 crate rejects it")
        }
        Operation::EcdsaSecp256k1 => {
            let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(public)
                .context("not a secp256k1 public key")?;
            let sig = k256::ecdsa::Signature::from_slice(signature)
                .context("not a secp256k1 signature")?;
            key.verify_prehash(&input, &sig.normalize_s())
                .context("the k256 crate rejects it")
        }
        Operation::Aes32 | Operation::Aes1k => bail!("{} does not sign", op.name()),
    }
}

/// How one cell runs.
#[derive(Debug, Clone, Copy)]
pub struct CellPlan {
    /// Concurrent workers (threads or tasks).
    pub workers: usize,
    /// How long operations are started for (the last ones in flight are waited for and counted).
    pub duration: Duration,
    /// Operations before the measurement, spread over the workers.
    pub warmup_ops: usize,
}

impl CellPlan {
    /// How many warm-up operations worker `i` makes.
    pub fn warmup_of(&self, i: usize) -> usize {
        let workers = self.workers.max(1);
        self.warmup_ops / workers + usize::from(i < self.warmup_ops % workers)
    }
}

/// What one worker did.
#[derive(Debug)]
pub struct WorkerResult<S> {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latencies: Vec<Duration>,
    /// The first output of the measurement, checked afterwards.
    pub sample: Option<S>,
    pub finished: Option<Instant>,
}

impl<S> Default for WorkerResult<S> {
    fn default() -> Self {
        WorkerResult {
            ok: 0,
            errors: 0,
            first_error: None,
            latencies: Vec::new(),
            sample: None,
            finished: None,
        }
    }
}

impl<S> WorkerResult<S> {
    /// Records a failed operation.
    pub fn fail(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    /// Records the outcome of one measured operation that took `latency`.
    pub fn record(&mut self, outcome: Result<S, String>, latency: Duration) {
        match outcome {
            Ok(output) => {
                self.ok += 1;
                self.latencies.push(latency);
                if self.sample.is_none() {
                    self.sample = Some(output);
                }
            }
            Err(e) => self.fail(e),
        }
    }
}

/// The measurement of one cell.
#[derive(Debug, Default)]
pub struct Measurement {
    /// Operations that succeeded.
    pub operations: u64,
    /// Operations that failed (warm-up included).
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the start of the measurement to the end of the last operation.
    pub seconds: f64,
    pub latencies: Vec<Duration>,
    pub cpu: CpuUsed,
    /// Outputs checked independently, and how many of those checks failed.
    pub verified: usize,
    pub verify_failures: usize,
}

impl Measurement {
    /// Combines the workers' results.
    pub fn from_workers<S>(
        results: Vec<WorkerResult<S>>,
        started: Instant,
        cpu: CpuUsed,
    ) -> (Measurement, Vec<S>) {
        let mut m = Measurement {
            cpu,
            ..Measurement::default()
        };
        let mut finished = started;
        let mut samples = Vec::new();
        for r in results {
            m.operations += r.ok;
            m.errors += r.errors;
            if m.first_error.is_none() {
                m.first_error = r.first_error;
            }
            m.latencies.extend(r.latencies);
            samples.extend(r.sample);
            if let Some(f) = r.finished {
                finished = finished.max(f);
            }
        }
        m.seconds = finished.duration_since(started).as_secs_f64();
        (m, samples)
    }

    /// Applies the independent checks of the samples: `check` is run on each.
    pub fn check_samples<S>(
        &mut self,
        samples: &[S],
        mut check: impl FnMut(&S) -> anyhow::Result<()>,
    ) {
        for s in samples {
            match check(s) {
                Ok(()) => self.verified += 1,
                Err(e) => {
                    self.verify_failures += 1;
                    self.first_error
                        .get_or_insert(format!("an output failed its check: {e:#}"));
                }
            }
        }
    }

    /// A measurement of nothing that failed with `error` (a cell that could not run).
    pub fn failed(error: String) -> Measurement {
        Measurement {
            errors: 1,
            first_error: Some(error),
            ..Measurement::default()
        }
    }
}

/// Runs one cell on `plan.workers` OS threads. `make(i)` runs on thread `i` and returns its operation (e.g. after
/// opening its own PKCS#11 session); each thread makes its warm-up operations, then all start together and make
/// operations until `plan.duration` has passed. The CPU time is read around the measurement.
pub fn run_threads<S, W, Make>(plan: &CellPlan, cpu: &CpuProbe, make: Make) -> (Measurement, Vec<S>)
where
    S: Send,
    W: FnMut() -> Result<S, String>,
    Make: Fn(usize) -> anyhow::Result<W> + Sync,
{
    let workers = plan.workers.max(1);
    let ready = Barrier::new(workers + 1);
    let go = Barrier::new(workers + 1);
    let start: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let (ready, go, start, make) = (&ready, &go, start.clone(), &make);
                scope.spawn(move || {
                    let mut result = WorkerResult::default();
                    let mut operation = match make(i) {
                        Ok(op) => Some(op),
                        Err(e) => {
                            result.fail(format!("{e:#}"));
                            None
                        }
                    };
                    if let Some(op) = operation.as_mut() {
                        for _ in 0..plan.warmup_of(i) {
                            if let Err(e) = op() {
                                result.fail(e);
                            }
                        }
                    }
                    ready.wait();
                    go.wait();
                    let began = start.get().copied().unwrap_or_else(Instant::now);
                    let deadline = began + plan.duration;
                    if let Some(op) = operation.as_mut() {
                        while Instant::now() < deadline {
                            let t = Instant::now();
                            let outcome = op();
                            if outcome.is_err() {
                                // Do not spin on a failure that returns at once.
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            result.record(outcome, t.elapsed());
                        }
                    }
                    result.finished = Some(Instant::now());
                    drop(operation);
                    result
                })
            })
            .collect();
        ready.wait();
        let before = cpu.sample();
        let started = Instant::now();
        let _ = start.set(started);
        go.wait();
        let mut results = Vec::with_capacity(workers);
        for h in handles {
            match h.join() {
                Ok(r) => results.push(r),
                Err(_) => {
                    let mut r = WorkerResult::default();
                    r.fail("a benchmark thread panicked".into());
                    results.push(r);
                }
            }
        }
        let used = cpu.sample().since(&before);
        Measurement::from_workers(results, started, used)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_spread() {
        let plan = CellPlan {
            workers: 3,
            duration: Duration::ZERO,
            warmup_ops: 4,
        };
        let spread: Vec<_> = (0..3).map(|i| plan.warmup_of(i)).collect();
        assert_eq!(spread, vec![2, 1, 1]);
    }

    #[test]
    fn threads_count_operations_and_errors() {
        let plan = CellPlan {
            workers: 3,
            duration: Duration::from_millis(100),
            warmup_ops: 2,
        };
        let (m, samples) = run_threads(&plan, &CpuProbe::new(None), |i| {
            let mut n = 0u32;
            anyhow::Ok(move || {
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
                if i == 2 && n.is_multiple_of(2) {
                    Err("even".to_string())
                } else {
                    Ok(n)
                }
            })
        });
        assert!(m.operations > 10, "{m:?}");
        assert!(m.errors > 0);
        assert_eq!(samples.len(), 3);
        assert!(m.seconds >= 0.1);
        assert!(m.cpu.cluster.is_none());
    }

    #[test]
    fn signatures_are_checked() {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let sig = key.sign(&Operation::Ed25519.input()).to_bytes();
        let public = key.verifying_key().to_bytes();
        assert!(verify_signature(Operation::Ed25519, &public, &sig).is_ok());
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(verify_signature(Operation::Ed25519, &public, &bad).is_err());
    }
}
