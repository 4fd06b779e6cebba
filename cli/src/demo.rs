//! `vhsm demo`: a cluster, a key of each algorithm made by DKG, many threshold signatures, each verified
//! independently, and split-AES encryptions, each decrypted again, with tampering refused.

use std::{
    path::Path,
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Serialize;
use vhsm_client::Client;
use vhsm_core::{Algorithm, KeyInfo};

use super::{
    export,
    init::{init, InitOptions},
    keys::connect_user,
    layout::Layout,
    local_cluster::LocalCluster,
    progress,
    stats::percentile,
};

/// What `vhsm demo` is asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub algorithms: Vec<Algorithm>,
    pub count: usize,
    pub ecdsa_count: usize,
    pub concurrency: usize,
    pub nodes: u16,
    pub threshold: u16,
    pub openssl_samples: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    cluster: String,
    nodes: usize,
    threshold: u16,
    concurrency: usize,
    keys: Vec<KeyReport>,
}

#[derive(Debug, Serialize)]
struct KeyReport {
    algorithm: String,
    key_id: String,
    public_key_hex: String,
    keygen_seconds: f64,
    /// "sign", or "encrypt+decrypt" (split-AES: every message encrypted, then decrypted).
    operation: &'static str,
    /// Signatures, or encryptions plus decryptions.
    operations: usize,
    /// Signatures verified outside vHSM, or round trips that gave the plaintext back.
    verified_independently: usize,
    verified_openssl: Option<usize>,
    seconds: f64,
    ops_per_second: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
}

fn demo_message(i: usize) -> Vec<u8> {
    format!("vHSM demo message #{i}: threshold-signed, never with a whole key").into_bytes()
}

/// A fresh cluster in a temporary directory, running as child processes of this one: what `vhsm demo` and
/// `vhsm bench` use when no `--cluster` is given. Stop `local` before dropping `dir` (which removes the directory).
pub struct TemporaryCluster {
    /// The temporary directory holding the cluster (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The running processes.
    pub local: LocalCluster,
}

impl TemporaryCluster {
    /// `vhsm init`s a `threshold`-of-`nodes` cluster on 127.0.0.1 (ports chosen by the OS, a random user PIN) in
    /// a new temporary directory named `prefix…`, and starts it, saying so on standard output unless `json`.
    pub async fn start(
        prefix: &str,
        nodes: u16,
        threshold: u16,
        json: bool,
    ) -> anyhow::Result<TemporaryCluster> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("cannot make a temporary directory")?;
        let layout = Layout::new(dir.path());
        init(
            &layout,
            &InitOptions {
                nodes,
                threshold,
                host: "127.0.0.1".into(),
                base_port: 0,
                user_pin: None,
                seal: false,
            },
        )?;
        if !json {
            println!(
                "Starting a local cluster: {nodes} node processes and a coordinator, QUIC with mutual TLS on 127.0.0.1 ({})",
                dir.path().display()
            );
        }
        let spinner = (!json).then(|| progress::spinner("starting the cluster"));
        let local = LocalCluster::start(&layout).await;
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        Ok(TemporaryCluster { dir, local: local? })
    }
}

/// Runs the demo against the cluster at `cluster` if given (it must be running), or a fresh one in a temporary
/// directory that is stopped and removed afterwards.
pub async fn run(cluster: Option<&Path>, options: &DemoOptions, json: bool) -> anyhow::Result<()> {
    if options.count == 0 || options.ecdsa_count == 0 || options.concurrency == 0 {
        bail!("--count, --ecdsa-count and --concurrency must be at least 1");
    }
    if options.algorithms.is_empty() {
        bail!("--algorithms names no algorithm");
    }
    let say = |line: &str| {
        if !json {
            println!("{line}");
        }
    };
    let mut started_cluster = None;
    let _tempdir;
    let layout = match cluster {
        Some(dir) => Layout::new(dir),
        None => {
            let temporary =
                TemporaryCluster::start("vhsm-demo-", options.nodes, options.threshold, json)
                    .await?;
            let layout = temporary.local.layout.clone();
            _tempdir = temporary.dir;
            started_cluster = Some(temporary.local);
            layout
        }
    };
    let result = demo(&layout, options, json).await;
    if let Some(mut local) = started_cluster {
        local.stop().await;
        say("Cluster stopped.");
    }
    let report = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

async fn demo(layout: &Layout, options: &DemoOptions, json: bool) -> anyhow::Result<Report> {
    let say = |line: &str| {
        if !json {
            println!("{line}");
        }
    };
    let client = Arc::new(connect_user(layout).await?);
    let status = client.status().await?;
    let down: Vec<_> = status
        .nodes
        .iter()
        .filter(|n| !n.reachable)
        .map(|n| n.id)
        .collect();
    if !down.is_empty() {
        say(&format!("Note: node(s) {down:?} unreachable"));
    }
    let mut reports = Vec::new();
    for &algorithm in &options.algorithms {
        reports.push(demo_algorithm(&client, algorithm, options, json).await?);
    }
    if !json {
        println!(
            "\n{:<16} {:>16} {:>9} {:>11} {:>10} {:>9} {:>9}",
            "algorithm", "operation", "keygen s", "operations", "ops/s", "p50 ms", "p99 ms"
        );
        for r in &reports {
            println!(
                "{:<16} {:>16} {:>9.2} {:>11} {:>10.0} {:>9.2} {:>9.2}",
                r.algorithm,
                r.operation,
                r.keygen_seconds,
                r.operations,
                r.ops_per_second,
                r.latency_p50_ms,
                r.latency_p99_ms
            );
        }
        println!(
            "({}-of-{} on this machine, {} request(s) in flight; every signature verified outside vHSM, every \
             ciphertext decrypted again)",
            status.threshold,
            status.nodes.len(),
            options.concurrency
        );
    }
    Ok(Report {
        cluster: layout.root().display().to_string(),
        nodes: status.nodes.len(),
        threshold: status.threshold,
        concurrency: options.concurrency,
        keys: reports,
    })
}

async fn demo_algorithm(
    client: &Arc<Client>,
    algorithm: Algorithm,
    options: &DemoOptions,
    json: bool,
) -> anyhow::Result<KeyReport> {
    let say = |line: &str| {
        if !json {
            println!("{line}");
        }
    };
    let protocol = match algorithm {
        Algorithm::Ed25519 => "FROST DKG with echo broadcast",
        Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => {
            "DKLs23 DKG: seconds of CPU, mostly pairwise OT set-up"
        }
        Algorithm::SplitAes256 => "DKG on ristretto255 with Feldman commitments",
    };
    let spinner = (!json).then(|| {
        progress::spinner(&format!(
            "{algorithm}: distributed key generation ({protocol})"
        ))
    });
    let started = Instant::now();
    let key = client
        .create_key(algorithm, &format!("demo-{algorithm}"))
        .await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let key = key?;
    let keygen_seconds = started.elapsed().as_secs_f64();
    say(&format!(
        "\n{algorithm}: key {} generated by DKG among nodes {:?} in {:.2} s ({}-of-{}); no process ever held the whole key.\n  public key {}",
        key.id,
        key.holders,
        keygen_seconds,
        key.threshold,
        key.holders.len(),
        hex::encode(&key.public_key)
    ));
    if algorithm == Algorithm::SplitAes256 {
        return demo_split_aes(client, key, keygen_seconds, options, json).await;
    }

    let count = if algorithm == Algorithm::Ed25519 {
        options.count
    } else {
        options.ecdsa_count
    };
    let (signatures, seconds, latencies) =
        sign_many(client, &key, count, options.concurrency, json).await?;
    let mut verified = 0;
    for (i, signature) in signatures.iter().enumerate() {
        verify_independently(&key, &demo_message(i), signature)
            .with_context(|| format!("{algorithm} signature #{i} does NOT verify"))?;
        verified += 1;
    }
    let verifier = match algorithm {
        Algorithm::Ed25519 => "ed25519-dalek verify_strict",
        Algorithm::EcdsaP256 => "the p256 crate (SHA-256)",
        Algorithm::EcdsaSecp256k1 => "the k256 crate (SHA-256, low-S)",
        Algorithm::SplitAes256 => bail!("split-aes-256 keys do not sign"),
    };
    say(&format!(
        "  verified all {verified} signatures with {verifier}"
    ));

    let verified_openssl = openssl_check(&key, &signatures, options.openssl_samples)?;
    match verified_openssl {
        Some(n) => say(&format!(
            "  verified {n} with the OpenSSL command line on the exported PEM key (and a tampered message is rejected)"
        )),
        None => say("  openssl not found: skipped the OpenSSL cross-check"),
    }
    let p = |q: f64| percentile(&latencies, q).as_secs_f64() * 1000.0;
    let report = KeyReport {
        algorithm: algorithm.to_string(),
        key_id: key.id.to_string(),
        public_key_hex: hex::encode(&key.public_key),
        keygen_seconds,
        operation: "sign",
        operations: signatures.len(),
        verified_independently: verified,
        verified_openssl,
        seconds,
        ops_per_second: signatures.len() as f64 / seconds,
        latency_p50_ms: p(0.50),
        latency_p99_ms: p(0.99),
    };
    say(&format!(
        "  {} threshold signatures in {:.2} s with {} in flight: {:.0} signatures/s, latency p50 {:.2} ms, p99 {:.2} ms",
        report.operations, report.seconds, options.concurrency, report.ops_per_second, report.latency_p50_ms, report.latency_p99_ms
    ));
    Ok(report)
}

/// Verifies a signature without vHSM: ed25519-dalek `verify_strict`, or the p256/k256 crates over SHA-256.
fn verify_independently(key: &KeyInfo, message: &[u8], signature: &[u8]) -> anyhow::Result<()> {
    match key.algorithm {
        Algorithm::SplitAes256 => bail!("split-aes-256 keys do not sign"),
        Algorithm::Ed25519 => {
            let bytes: [u8; 32] = key
                .public_key
                .as_slice()
                .try_into()
                .context("public key is not 32 bytes")?;
            let vk = VerifyingKey::from_bytes(&bytes)
                .context("public key is not a valid Ed25519 point")?;
            let sig = Signature::from_slice(signature).context("not a 64-byte signature")?;
            vk.verify_strict(message, &sig)
                .context("ed25519-dalek verify_strict")
        }
        Algorithm::EcdsaP256 => {
            use p256::ecdsa::signature::Verifier as _;
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key)
                .context("bad P-256 public key")?;
            let sig =
                p256::ecdsa::Signature::from_slice(signature).context("not a P-256 signature")?;
            vk.verify(message, &sig).context("p256 verify")
        }
        Algorithm::EcdsaSecp256k1 => {
            use k256::ecdsa::signature::Verifier as _;
            let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key)
                .context("bad secp256k1 public key")?;
            let sig = k256::ecdsa::Signature::from_slice(signature)
                .context("not a secp256k1 signature")?;
            if sig.normalize_s() != sig {
                bail!("secp256k1 signature is not low-S");
            }
            vk.verify(message, &sig).context("k256 verify")
        }
    }
}

async fn sign_many(
    client: &Arc<Client>,
    key: &KeyInfo,
    count: usize,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<(Vec<Vec<u8>>, f64, Vec<Duration>)> {
    let (client, key_id) = (client.clone(), key.id);
    run_many(
        count,
        concurrency,
        &format!("signing with {}", key.algorithm),
        json,
        move |i| {
            let client = client.clone();
            async move {
                let (signature, _) = client.sign(key_id, &demo_message(i), None).await?;
                Ok(signature)
            }
        },
    )
    .await
}

/// Runs `operation(0..count)` with `concurrency` in flight and a progress bar: the results in order, the seconds
/// it took, and every operation's latency.
async fn run_many<T, F, Fut>(
    count: usize,
    concurrency: usize,
    label: &str,
    json: bool,
    operation: F,
) -> anyhow::Result<(Vec<T>, f64, Vec<Duration>)>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
{
    let bar = (!json).then(|| progress::bar(count as u64, label));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(count) {
        let next = next.clone();
        let bar = bar.clone();
        let operation = operation.clone();
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                let result = operation(i).await?;
                done.push((i, result, t.elapsed()));
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            anyhow::Ok(done)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for w in workers {
        all.extend(w.await.context("a worker task failed")??);
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    all.sort_by_key(|(i, _, _)| *i);
    let latencies = all.iter().map(|(_, _, d)| *d).collect();
    Ok((
        all.into_iter().map(|(_, r, _)| r).collect(),
        seconds,
        latencies,
    ))
}

/// The plaintext of split-AES demo message `i`: 1 KiB.
fn demo_plaintext(i: usize) -> Vec<u8> {
    let mut p = format!("vHSM split-AES demo record #{i}: ").into_bytes();
    p.resize(1024, b'.');
    p
}

/// The split-AES part of the demo: encrypt `options.count` 1 KiB records, decrypt every one and compare; show that
/// two encryptions of the same record differ and that an altered blob or other associated data is refused.
async fn demo_split_aes(
    client: &Arc<Client>,
    key: KeyInfo,
    keygen_seconds: f64,
    options: &DemoOptions,
    json: bool,
) -> anyhow::Result<KeyReport> {
    let say = |line: &str| {
        if !json {
            println!("{line}");
        }
    };
    const AAD: &[u8] = b"vhsm demo";
    let count = options.count;
    let (c, key_id) = (client.clone(), key.id);
    let (blobs, encrypt_seconds, mut latencies) = run_many(
        count,
        options.concurrency,
        "encrypting 1 KiB records",
        json,
        move |i| {
            let c = c.clone();
            async move { Ok(c.encrypt(key_id, &demo_plaintext(i), AAD).await?) }
        },
    )
    .await?;
    let blobs = Arc::new(blobs);
    let (c, shared) = (client.clone(), blobs.clone());
    let (matches, decrypt_seconds, decrypt_latencies) = run_many(
        count,
        options.concurrency,
        "decrypting them again",
        json,
        move |i| {
            let (c, shared) = (c.clone(), shared.clone());
            async move {
                let blob = shared.get(i).context("no such blob")?;
                let plaintext = c.decrypt(blob, AAD).await?;
                Ok(plaintext.expose() == demo_plaintext(i).as_slice())
            }
        },
    )
    .await?;
    latencies.extend(decrypt_latencies);
    let verified = matches.iter().filter(|m| **m).count();
    if verified != count {
        bail!(
            "{} of {count} split-AES round trips did NOT give the plaintext back",
            count - verified
        );
    }
    say(&format!(
        "  encrypted {count} records of 1 KiB and decrypted every one back to its plaintext"
    ));
    let again = client.encrypt(key.id, &demo_plaintext(0), AAD).await?;
    if blobs.first() == Some(&again) {
        bail!("two encryptions of the same record gave the same ciphertext");
    }
    let mut altered = again.clone();
    if let Some(byte) = altered.get_mut(again.len() / 2) {
        *byte ^= 1;
    }
    if client.decrypt(&altered, AAD).await.is_ok() {
        bail!("an altered ciphertext decrypted");
    }
    if client.decrypt(&again, b"other aad").await.is_ok() {
        bail!("a ciphertext decrypted with other associated data");
    }
    say("  the same record encrypts differently each time (a fresh key per message); an altered blob and other associated data are refused");
    let seconds = encrypt_seconds + decrypt_seconds;
    let p = |q: f64| percentile(&latencies, q).as_secs_f64() * 1000.0;
    let report = KeyReport {
        algorithm: key.algorithm.to_string(),
        key_id: key.id.to_string(),
        public_key_hex: hex::encode(&key.public_key),
        keygen_seconds,
        operation: "encrypt+decrypt",
        operations: 2 * count,
        verified_independently: verified,
        verified_openssl: None,
        seconds,
        ops_per_second: (2 * count) as f64 / seconds,
        latency_p50_ms: p(0.50),
        latency_p99_ms: p(0.99),
    };
    say(&format!(
        "  {} operations in {:.2} s with {} in flight: {:.0} operations/s, latency p50 {:.2} ms, p99 {:.2} ms",
        report.operations, report.seconds, options.concurrency, report.ops_per_second, report.latency_p50_ms, report.latency_p99_ms
    ));
    Ok(report)
}

/// Verifies the first `samples` signatures with the OpenSSL command line (`pkeyutl` for Ed25519, `dgst -sha256`
/// with the DER signature for ECDSA), and checks that a tampered message is rejected. `None` if openssl is absent.
fn openssl_check(
    key: &KeyInfo,
    signatures: &[Vec<u8>],
    samples: usize,
) -> anyhow::Result<Option<usize>> {
    if Command::new("openssl").arg("version").output().is_err() {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let pem = dir.path().join("public.pem");
    std::fs::write(&pem, export::spki_pem(key)?)?;
    let verify = |message: &[u8], signature: &[u8]| -> anyhow::Result<bool> {
        let msg = dir.path().join("message.bin");
        let sig = dir.path().join("signature.bin");
        std::fs::write(&msg, message)?;
        let mut command = Command::new("openssl");
        if key.algorithm == Algorithm::Ed25519 {
            std::fs::write(&sig, signature)?;
            command
                .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
                .arg(&pem)
                .arg("-rawin")
                .arg("-in")
                .arg(&msg);
            command.arg("-sigfile").arg(&sig);
        } else {
            std::fs::write(&sig, export::ecdsa_signature_der(key.algorithm, signature)?)?;
            command
                .args(["dgst", "-sha256", "-verify"])
                .arg(&pem)
                .arg("-signature")
                .arg(&sig)
                .arg(&msg);
        }
        let out = command.output().context("cannot run openssl")?;
        Ok(out.status.success())
    };
    let mut verified = 0;
    for (i, signature) in signatures.iter().enumerate().take(samples) {
        if !verify(&demo_message(i), signature)? {
            bail!(
                "{} signature #{i} does NOT verify with openssl",
                key.algorithm
            );
        }
        verified += 1;
    }
    if let Some(first) = signatures.first() {
        if verify(b"a message that was never signed", first)? {
            bail!("openssl accepted a signature on the wrong message: the OpenSSL check is not working");
        }
    }
    Ok(Some(verified))
}
