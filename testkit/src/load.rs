//! A mixed load of key operations against a cluster, every result checked outside vHSM, and its tally: what the
//! network tests (`tests/cluster_network.rs`) and the nemesis ([`crate::nemesis`]) both run.
//!
//! - [`Op`]: sign with an Ed25519, ECDSA P-256 or secp256k1 key, encrypt or decrypt with a split-AES key;
//! - [`run_op`]: runs one and checks it — every signature is verified against the key's public key with the curve's
//!   own crate (ed25519-dalek `verify_strict`, `p256`, `k256`, over SHA-256 as the client asks by default), every
//!   decryption is compared with the plaintext that was encrypted. A result that does not check is a
//!   [`Failure::Wrong`], never counted as a success;
//! - [`Tally`]: operations by kind, failures by cause (the error's kind and the nodes it names, with one example's
//!   words), wrong results, latencies (p50/p99/max).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use vhsm_client::{Client, ClientError};
use vhsm_core::{Algorithm, KeyInfo};

/// The associated data of every encryption of the load.
pub const AAD: &[u8] = b"vhsm-testkit load";

/// An operation of the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// Sign a message with an Ed25519 key (FROST).
    SignEd25519,
    /// Sign a message with an ECDSA P-256 key (DKLs23; the coordinator hashes it with SHA-256).
    SignP256,
    /// Sign a message with an ECDSA secp256k1 key.
    SignSecp256k1,
    /// Encrypt with a split-AES key (the ciphertext is kept, see [`Made`]).
    Encrypt,
    /// Decrypt a ciphertext made before (one of [`Made`], else [`Keys::sealed`]) and compare.
    Decrypt,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 5] = [
        Op::SignEd25519,
        Op::SignP256,
        Op::SignSecp256k1,
        Op::Encrypt,
        Op::Decrypt,
    ];

    /// The algorithm of the key it uses.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Op::SignEd25519 => Algorithm::Ed25519,
            Op::SignP256 => Algorithm::EcdsaP256,
            Op::SignSecp256k1 => Algorithm::EcdsaSecp256k1,
            Op::Encrypt | Op::Decrypt => Algorithm::SplitAes256,
        }
    }

    /// A short name (for tables).
    pub fn name(self) -> &'static str {
        match self {
            Op::SignEd25519 => "sign ed25519",
            Op::SignP256 => "sign p256",
            Op::SignSecp256k1 => "sign secp256k1",
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Ciphertexts made by the load, with their plaintexts (what `Decrypt` opens, and what a test may decrypt again at
/// the end).
pub type Made = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// The keys a load uses, and one ciphertext with its plaintext (what `Decrypt` opens before anything was made).
#[derive(Clone, Debug)]
pub struct Keys {
    /// Every key, of any algorithm; an operation uses one of its algorithm's in turn.
    pub keys: Vec<KeyInfo>,
    /// A ciphertext made with the first split-AES key, and its plaintext.
    pub sealed: (Vec<u8>, Vec<u8>),
}

impl Keys {
    /// Makes one key of each of `algorithms` (labelled `PREFIX-ALGORITHM`) — a split-AES key is made in any case —
    /// and a first ciphertext.
    pub async fn make(
        client: &Client,
        prefix: &str,
        algorithms: &[Algorithm],
    ) -> Result<Keys, ClientError> {
        let mut keys = Vec::new();
        let mut wanted = algorithms.to_vec();
        if !wanted.contains(&Algorithm::SplitAes256) {
            wanted.push(Algorithm::SplitAes256);
        }
        for algorithm in wanted {
            let label = format!("{prefix}-{algorithm:?}").to_lowercase();
            keys.push(client.create_key(algorithm, &label).await?);
        }
        let aes = keys
            .iter()
            .find(|k| k.algorithm == Algorithm::SplitAes256)
            .map(|k| k.id)
            .ok_or_else(|| ClientError::Unexpected("no split-AES key".into()))?;
        let plaintext = b"the plaintext every Decrypt must give back".to_vec();
        let blob = client.encrypt(aes, &plaintext, AAD).await?;
        Ok(Keys {
            keys,
            sealed: (blob, plaintext),
        })
    }

    /// The key operation `op` uses on its `n`-th run: the keys of its algorithm in turn. Panics if there is none.
    pub fn key(&self, op: Op, n: u64) -> &KeyInfo {
        let of: Vec<&KeyInfo> = self
            .keys
            .iter()
            .filter(|k| k.algorithm == op.algorithm())
            .collect();
        assert!(!of.is_empty(), "no {:?} key for {op}", op.algorithm());
        let i = usize::try_from(n).unwrap_or(0) % of.len();
        of.get(i).copied().unwrap_or_else(|| unreachable!())
    }
}

/// Verifies an Ed25519 signature independently of vHSM (ed25519-dalek, `verify_strict`).
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    vk.verify_strict(message, &sig).is_ok()
}

/// Whether `signature` over `message` verifies against `key`'s public key (outside vHSM: ed25519-dalek
/// `verify_strict`; ECDSA over SHA-256 with `p256` / `k256`). Any other algorithm: `false`.
pub fn verify_signature(key: &KeyInfo, message: &[u8], signature: &[u8]) -> bool {
    match key.algorithm {
        Algorithm::Ed25519 => verify_ed25519(&key.public_key, message, signature),
        Algorithm::EcdsaP256 => {
            use p256::ecdsa::signature::Verifier as _;
            let (Ok(vk), Ok(sig)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key),
                p256::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            vk.verify(message, &sig).is_ok()
        }
        Algorithm::EcdsaSecp256k1 => {
            use k256::ecdsa::signature::Verifier as _;
            let (Ok(vk), Ok(sig)) = (
                k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key),
                k256::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            vk.verify(message, &sig).is_ok()
        }
        _ => false,
    }
}

/// How an operation failed.
#[derive(Debug)]
pub enum Failure {
    /// It gave a result, and the result is wrong.
    Wrong(String),
    /// It failed.
    Error(ClientError),
}

/// Runs `op` (its `n`-th time, which picks the message, the key and the ciphertext to open) and checks its result.
pub async fn run_op(
    client: &Client,
    keys: &Keys,
    op: Op,
    n: u64,
    made: &Made,
) -> Result<(), Failure> {
    let message = format!("vhsm-testkit load: {op} #{n}").into_bytes();
    match op {
        Op::SignEd25519 | Op::SignP256 | Op::SignSecp256k1 => {
            let key = keys.key(op, n);
            let (signature, signers) = client
                .sign(key.id, &message, None)
                .await
                .map_err(Failure::Error)?;
            if verify_signature(key, &message, &signature) {
                Ok(())
            } else {
                Err(Failure::Wrong(format!(
                    "{op}: a signature by nodes {signers:?} with key {} that does not verify",
                    key.id
                )))
            }
        }
        Op::Encrypt => {
            let key = keys.key(op, n);
            let blob = client
                .encrypt(key.id, &message, AAD)
                .await
                .map_err(Failure::Error)?;
            made.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((blob, message));
            Ok(())
        }
        Op::Decrypt => {
            let (blob, plaintext) = {
                let made = made.lock().unwrap_or_else(PoisonError::into_inner);
                // A ciphertext made by the load (spread over all of them), else the first one.
                let spread = usize::try_from(n.wrapping_mul(2_654_435_761)).unwrap_or(0);
                match made.len() {
                    0 => keys.sealed.clone(),
                    len => made.get(spread % len).cloned().unwrap_or_default(),
                }
            };
            let back = client.decrypt(&blob, AAD).await.map_err(Failure::Error)?;
            if back.expose() == plaintext.as_slice() {
                Ok(())
            } else {
                Err(Failure::Wrong(
                    "decrypt: a plaintext other than the one encrypted".into(),
                ))
            }
        }
    }
}

/// The words of an error, with its kind and nodes when the coordinator gave them.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Service(w) => format!("{:?} {:?}: {}", w.kind, w.nodes, w.message),
        other => format!("client: {other}"),
    }
}

/// The cause of an error, for counting (without the operation): its kind and nodes, or the client's own failure.
pub fn error_cause(e: &ClientError) -> String {
    match e {
        ClientError::Service(w) => format!("{:?} naming {:?}", w.kind, w.nodes),
        ClientError::Timeout(_) => "client timeout".into(),
        ClientError::Connect { .. } => "cannot connect".into(),
        ClientError::Frame(_) => "connection failed".into(),
        _ => "other client error".into(),
    }
}

/// The cause of `op`'s error, for counting.
pub fn cause(op: Op, e: &ClientError) -> String {
    format!("{op:?}: {}", error_cause(e))
}

/// The `q` quantile (0.0 – 1.0) of `latencies` (nearest rank); zero if there are none.
pub fn percentile(latencies: &[Duration], q: f64) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// An operation slower than this is listed by [`Tally::print`].
pub const SLOW: Duration = Duration::from_secs(2);

/// What a run of operations gave.
#[derive(Debug, Default)]
pub struct Tally {
    /// Successes by operation.
    pub ok: BTreeMap<Op, u64>,
    /// Cause → (count, one example's words).
    pub failed: BTreeMap<String, (u64, String)>,
    /// Results that did not check.
    pub wrong: Vec<String>,
    /// How long every operation took.
    pub latencies: Vec<Duration>,
    /// Errors the caller did not find clear (see [`Tally::record`]), with their context.
    pub unclear: Vec<String>,
    /// Operations that took more than [`SLOW`].
    pub slow: Vec<String>,
}

impl Tally {
    /// Counts one operation that took `took`; an error is judged by `clear` (whether it is the error a caller
    /// should get in the circumstances, `context` — e.g. which nodes were cut off) and, if not, listed in
    /// [`Tally::unclear`].
    pub fn record(
        &mut self,
        op: Op,
        took: Duration,
        result: Result<(), Failure>,
        clear: impl FnOnce(&ClientError) -> bool,
        context: &str,
    ) {
        self.latencies.push(took);
        if took > SLOW {
            self.slow.push(format!(
                "{op:?} took {took:?} ({})",
                if result.is_ok() {
                    "succeeded"
                } else {
                    "failed"
                }
            ));
        }
        match result {
            Ok(()) => *self.ok.entry(op).or_default() += 1,
            Err(Failure::Wrong(what)) => self.wrong.push(what),
            Err(Failure::Error(e)) => {
                let entry = self
                    .failed
                    .entry(cause(op, &e))
                    .or_insert_with(|| (0, describe(&e)));
                entry.0 += 1;
                if !clear(&e) {
                    self.unclear.push(format!(
                        "{op:?} after {took:?} ({context}): {}",
                        describe(&e)
                    ));
                }
            }
        }
    }

    /// How many succeeded.
    pub fn succeeded(&self) -> u64 {
        self.ok.values().sum()
    }

    /// How many failed (wrong results not counted).
    pub fn failures(&self) -> u64 {
        self.failed.values().map(|(n, _)| n).sum()
    }

    /// The `q` quantile of the latencies.
    pub fn percentile(&self, q: f64) -> Duration {
        percentile(&self.latencies, q)
    }

    /// Prints the figures, each line prefixed by `[title]`.
    pub fn print(&self, title: &str) {
        println!(
            "[{title}] {} operations: {} succeeded {:?}, {} failed, {} wrong; p50 {:?}, p99 {:?}, max {:?}",
            self.latencies.len(),
            self.succeeded(),
            self.ok,
            self.failures(),
            self.wrong.len(),
            self.percentile(0.50),
            self.percentile(0.99),
            self.latencies.iter().max().copied().unwrap_or_default()
        );
        for (cause, (n, example)) in &self.failed {
            println!("[{title}]   {n} × {cause} — e.g. \"{example}\"");
        }
        for wrong in &self.wrong {
            println!("[{title}]   WRONG: {wrong}");
        }
        if !self.slow.is_empty() {
            println!("[{title}]   slow: {}", self.slow.join("; "));
        }
    }

    /// Adds `other`'s figures to these.
    pub fn merge(&mut self, other: Tally) {
        for (op, n) in other.ok {
            *self.ok.entry(op).or_default() += n;
        }
        for (cause, (n, example)) in other.failed {
            self.failed.entry(cause).or_insert((0, example)).0 += n;
        }
        self.wrong.extend(other.wrong);
        self.latencies.extend(other.latencies);
        self.unclear.extend(other.unclear);
        self.slow.extend(other.slow);
    }
}
