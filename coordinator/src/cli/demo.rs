//! `vhsm demo`: a cluster, a key made by DKG, many threshold signatures, each verified independently.

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
use vhsm_wire::{client::Client, Algorithm, KeyInfo};

use super::{
    export,
    init::{init, InitOptions},
    keys::connect_user,
    layout::Layout,
    local_cluster::LocalCluster,
    progress,
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
    signatures: usize,
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
            let dir = tempfile::Builder::new()
                .prefix("vhsm-demo-")
                .tempdir()
                .context("cannot make a temporary directory")?;
            let layout = Layout::new(dir.path());
            init(
                &layout,
                &InitOptions {
                    nodes: options.nodes,
                    threshold: options.threshold,
                    host: "127.0.0.1".into(),
                    base_port: 0,
                    user_pin: None,
                },
            )?;
            say(&format!(
                "Starting a local cluster: {} node processes and a coordinator, QUIC with mutual TLS on 127.0.0.1 ({})",
                options.nodes,
                dir.path().display()
            ));
            let spinner = (!json).then(|| progress::spinner("starting the cluster"));
            let local = LocalCluster::start(&layout).await;
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            started_cluster = Some(local?);
            _tempdir = dir;
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
            "\n{:<16} {:>9} {:>11} {:>10} {:>9} {:>9}",
            "algorithm", "keygen s", "signatures", "sigs/s", "p50 ms", "p99 ms"
        );
        for r in &reports {
            println!(
                "{:<16} {:>9.2} {:>11} {:>10.0} {:>9.2} {:>9.2}",
                r.algorithm,
                r.keygen_seconds,
                r.signatures,
                r.ops_per_second,
                r.latency_p50_ms,
                r.latency_p99_ms
            );
        }
        println!(
            "({}-of-{} on this machine, {} request(s) in flight; every signature verified outside vHSM)",
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
        Algorithm::SplitAes256 => {
            bail!("the demo signs; split-aes-256 keys encrypt (vhsm encrypt / vhsm decrypt)")
        }
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
        signatures: signatures.len(),
        verified_independently: verified,
        verified_openssl,
        seconds,
        ops_per_second: signatures.len() as f64 / seconds,
        latency_p50_ms: p(0.50),
        latency_p99_ms: p(0.99),
    };
    say(&format!(
        "  {} threshold signatures in {:.2} s with {} in flight: {:.0} signatures/s, latency p50 {:.2} ms, p99 {:.2} ms",
        report.signatures, report.seconds, options.concurrency, report.ops_per_second, report.latency_p50_ms, report.latency_p99_ms
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
    let bar =
        (!json).then(|| progress::bar(count as u64, &format!("signing with {}", key.algorithm)));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(count) {
        let client = client.clone();
        let next = next.clone();
        let bar = bar.clone();
        let key_id = key.id;
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                let (signature, _) = client.sign(key_id, &demo_message(i), None).await?;
                done.push((i, signature, t.elapsed()));
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            anyhow::Ok(done)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for w in workers {
        all.extend(w.await.context("a signing task failed")??);
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    all.sort_by_key(|(i, _, _)| *i);
    let latencies = all.iter().map(|(_, _, d)| *d).collect();
    Ok((
        all.into_iter().map(|(_, s, _)| s).collect(),
        seconds,
        latencies,
    ))
}

/// Latency at quantile `q` (nearest rank).
pub fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or_default()
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
