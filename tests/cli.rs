//! The `vhsm` command as a person uses it: `demo` on a fresh machine, `up` with the key commands beside it, and
//! helpful errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{run_vhsm, vhsm, ProcessCluster};
use vhsm_client::ClientError;
use vhsm_core::Algorithm;
use vhsm_wire::{
    client_api::{ClientRequest, ClientResponse},
    frame::{self, DEFAULT_FRAME_LIMIT},
    tls::{self, TlsIdentity},
    Role,
};

#[test]
fn demo_covers_every_algorithm_and_verifies_everything() {
    let (ok, out, err) = run_vhsm(
        &["demo", "--count", "200", "--ecdsa-count", "10"],
        Duration::from_secs(240),
    );
    assert!(ok, "demo failed:\n{out}\n{err}");
    assert!(
        out.contains("verified all 200 signatures with ed25519-dalek verify_strict"),
        "{out}"
    );
    assert!(
        out.contains("verified all 10 signatures with the k256 crate"),
        "{out}"
    );
    assert!(
        out.contains("verified all 10 signatures with the p256 crate"),
        "{out}"
    );
    if Command::new("openssl").arg("version").output().is_ok() {
        assert_eq!(
            out.matches("verified 5 with the OpenSSL command line")
                .count(),
            3,
            "{out}"
        );
    }
    assert!(
        out.contains(
            "encrypted 200 records of 1 KiB and decrypted every one back to its plaintext"
        ),
        "{out}"
    );
    assert!(
        out.contains("an altered blob and other associated data are refused"),
        "{out}"
    );
    for algorithm in ["ed25519", "ecdsa-secp256k1", "ecdsa-p256", "split-aes-256"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(algorithm) && l.contains('.')),
            "no figures for {algorithm}:\n{out}"
        );
    }
    assert!(out.contains("Cluster stopped."), "{out}");
}

fn pid_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn child_pids(parent: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 4 (after the parenthesised command) is the parent pid.
        if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn up_serves_the_key_commands_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let cluster_arg = cluster.to_str().unwrap();
    let mut up = Command::new(vhsm())
        .args(["up", "--dir", cluster_arg])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stop = |up: &mut std::process::Child| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(up.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    };
    // Wait until `up` reports the cluster ready (its stdout says so), at most 60 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = false;
    while Instant::now() < deadline {
        let (ok, _, _) = run_vhsm(
            &["--cluster", cluster_arg, "status"],
            Duration::from_secs(20),
        );
        if ok {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    if !ready {
        stop(&mut up);
        panic!("vhsm up did not come up within 60 s");
    }
    let children = child_pids(up.id());
    assert_eq!(
        children.len(),
        4,
        "expected 3 nodes and a coordinator, got {children:?}"
    );

    let (ok, out, err) = run_vhsm(
        &[
            "--cluster",
            cluster_arg,
            "--json",
            "key",
            "create",
            "--algorithm",
            "ed25519",
            "--label",
            "cli",
        ],
        Duration::from_secs(60),
    );
    assert!(ok, "{out}{err}");
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = key["id"].as_str().unwrap().to_string();
    assert!(key["public_key_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));

    let msg = dir.path().join("msg.txt");
    let sig = dir.path().join("msg.sig");
    std::fs::write(&msg, b"signed from the command line").unwrap();
    let (ok, out, err) = run_vhsm(
        &[
            "--cluster",
            cluster_arg,
            "sign",
            "--key",
            &id,
            "--in",
            msg.to_str().unwrap(),
            "--out",
            sig.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(ok, "{out}{err}");
    let signature = std::fs::read(&sig).unwrap();
    let public = hex::decode(key["public_key_hex"].as_str().unwrap()).unwrap();
    assert!(common::verify_ed25519(
        &public,
        b"signed from the command line",
        &signature
    ));

    let (ok, out, _) = run_vhsm(
        &["--cluster", cluster_arg, "key", "list"],
        Duration::from_secs(30),
    );
    assert!(ok && out.contains(&id) && out.contains("cli"), "{out}");
    let (ok, out, _) = run_vhsm(
        &["--cluster", cluster_arg, "key", "show", &id],
        Duration::from_secs(30),
    );
    assert!(ok && out.contains("BEGIN PUBLIC KEY"), "{out}");

    // Failover: node 2 is killed. The cluster goes on signing with the other two, and `up` starts node 2 again
    // by itself; it then signs again.
    let node2 = children
        .iter()
        .copied()
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains("node-2")
        })
        .expect("node 2's process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(node2),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let sign = |i: usize| -> Vec<u64> {
        std::fs::write(&msg, format!("failover {i}")).unwrap();
        let (ok, out, err) = run_vhsm(
            &[
                "--cluster",
                cluster_arg,
                "--json",
                "sign",
                "--key",
                &id,
                "--in",
                msg.to_str().unwrap(),
                "--out",
                sig.to_str().unwrap(),
            ],
            Duration::from_secs(30),
        );
        assert!(ok, "signature {i}: {out}{err}");
        let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
        answer["signers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    };
    for i in 0..3 {
        assert!(!sign(i).contains(&2), "signed with a killed node");
    }
    let log2 = cluster.join("logs").join("node-2.log");
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let starts = std::fs::read_to_string(&log2)
            .unwrap_or_default()
            .matches("node serving")
            .count();
        if starts >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "vhsm up did not start node 2 again:\n{}",
            std::fs::read_to_string(&log2).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut signed_by_2 = false;
    for i in 3..30 {
        if sign(i).contains(&2) {
            signed_by_2 = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(signed_by_2, "node 2 did not sign again after its restart");
    let children = child_pids(up.id());
    assert_eq!(children.len(), 4, "{children:?}");

    // Stop: every child goes, `up` exits 0.
    stop(&mut up);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = up.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = up.kill();
            panic!("vhsm up did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "vhsm up exited with {status}");
    for pid in children {
        assert!(!pid_alive(pid), "process {pid} outlived vhsm up");
    }
}

#[test]
fn helpful_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let (ok, _, err) = run_vhsm(
        &["--cluster", missing.to_str().unwrap(), "key", "list"],
        Duration::from_secs(20),
    );
    assert!(!ok);
    assert!(err.contains("vhsm init"), "{err}");

    let (ok, _, err) = run_vhsm(&["key", "show", "not-a-key-id"], Duration::from_secs(20));
    assert!(!ok);
    assert!(err.contains("32 hex digits"), "{err}");

    let (ok, _, err) = run_vhsm(
        &[
            "init",
            "--dir",
            dir.path().join("x").to_str().unwrap(),
            "--nodes",
            "3",
            "--threshold",
            "4",
        ],
        Duration::from_secs(20),
    );
    assert!(!ok);
    assert!(err.contains("--threshold"), "{err}");

    let (ok, _, err) = run_vhsm(
        &["key", "create", "--algorithm", "rsa", "--label", "x"],
        Duration::from_secs(20),
    );
    assert!(!ok);
    assert!(err.contains("ed25519"), "{err}");
}

/// Issue 15, item 6: signing a file of ~8 MiB said "sending stopped by peer: error 0". Ed25519 (PureEdDSA) needs
/// the whole message in one request: `vhsm sign` says the limit before sending anything, the client library
/// refuses before sending, and the coordinator answers a request over its limit with the limits (the client reads
/// that answer) instead of only stopping the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_more_than_a_request_takes_says_the_limit() {
    let cluster = ProcessCluster::start(3, 2).await;
    let client = cluster.client().await;
    let key = client.create_key(Algorithm::Ed25519, "big").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 8 * 1024 * 1024 + 1]).unwrap();
    let id = key.id.to_string();
    let (ok, out, err) = run_vhsm(
        &[
            "--cluster",
            cluster.path().to_str().unwrap(),
            "sign",
            "--key",
            &id,
            "--in",
            big.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains("is 8.0 MiB; the limit for ed25519 signing is 1.0 MiB"),
        "{err}"
    );

    // The library refuses before sending.
    let message = vec![7u8; 8 * 1024 * 1024];
    let refused = client.sign(key.id, &message, None).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::TooLarge { .. }),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains("is 8.0 MiB; the limit is 1.0 MiB per request"),
        "{refused}"
    );

    // A client that sends it all the same is answered with the limits, and its connection still serves.
    let config = cluster.client_config();
    let identity = TlsIdentity::load(&config.ca_cert, &config.cert, &config.key).unwrap();
    let endpoint = tls::client_endpoint(&identity, false).unwrap();
    let conn = endpoint
        .connect(
            config.coordinator.parse().unwrap(),
            &Role::Coordinator.dns_name(),
        )
        .unwrap()
        .await
        .unwrap();
    let request = ClientRequest::Sign {
        key_id: key.id,
        message,
        hash: None,
    };
    let answer: ClientResponse = tokio::time::timeout(
        Duration::from_secs(30),
        frame::request(&conn, &request, DEFAULT_FRAME_LIMIT),
    )
    .await
    .unwrap()
    .unwrap();
    match answer {
        ClientResponse::Error(e) => assert!(
            e.message.contains("larger than the coordinator takes")
                && e.message.contains("a message to sign at most 1.0 MiB"),
            "{}",
            e.message
        ),
        other => panic!("{other:?}"),
    }
    // Between the two limits: read, and refused by the signing handler (for a user) with the sizes.
    let login = ClientRequest::Login {
        user: vhsm_core::PinUser::User,
        pin: vhsm_core::SecretBytes::new(cluster.user_pin().trim().as_bytes().to_vec()),
    };
    let answer: ClientResponse = frame::request(&conn, &login, DEFAULT_FRAME_LIMIT)
        .await
        .unwrap();
    assert!(matches!(answer, ClientResponse::Ok), "{answer:?}");
    let request = ClientRequest::Sign {
        key_id: key.id,
        message: vec![7u8; 3 * 1024 * 1024],
        hash: None,
    };
    let answer: ClientResponse = frame::request(&conn, &request, DEFAULT_FRAME_LIMIT)
        .await
        .unwrap();
    match answer {
        ClientResponse::Error(e) => assert!(
            e.message
                .contains("the message to sign is 3.0 MiB; the limit is 1.0 MiB per request"),
            "{}",
            e.message
        ),
        other => panic!("{other:?}"),
    }
}

/// Verifies a raw P-256 signature (r ‖ s, what `vhsm sign` writes) of `file` with `openssl dgst -<hash> -verify`.
fn openssl_verifies(pem: &Path, hash: &str, file: &Path, raw_signature: &[u8]) -> bool {
    let der = p256::ecdsa::Signature::from_slice(raw_signature)
        .unwrap()
        .to_der();
    let sig = file.with_extension(format!("{hash}.der"));
    std::fs::write(&sig, der.as_bytes()).unwrap();
    Command::new("openssl")
        .args(["dgst", &format!("-{hash}"), "-verify"])
        .arg(pem)
        .arg("-signature")
        .arg(&sig)
        .arg(file)
        .output()
        .expect("openssl is installed for the tests (.ci/run installs it)")
        .status
        .success()
}

/// Issue 15, item 6: ECDSA refused files over 1 MiB although it signs only their hash. `vhsm sign` hashes the file
/// itself, reading it piece by piece: a 20 MiB file signs, and OpenSSL verifies the signature as one of the whole
/// file (and not of a file that differs in its last byte).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_signs_a_large_file_hashed_by_the_cli_and_openssl_verifies_it() {
    let cluster = ProcessCluster::start(3, 2).await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::EcdsaP256, "big files")
        .await
        .unwrap();
    let (id, cluster_dir) = (key.id.to_string(), cluster.path().to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let content: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    std::fs::write(&big, &content).unwrap();
    let mut changed = content;
    *changed.last_mut().unwrap() ^= 1;
    let other = dir.path().join("other.bin");
    std::fs::write(&other, &changed).unwrap();
    let pem = dir.path().join("key.pem");
    let (ok, out, err) = run_vhsm(
        &[
            "--cluster",
            cluster_dir,
            "key",
            "show",
            &id,
            "--format",
            "pem",
            "--out",
            pem.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(ok, "{out}{err}");

    for (hash, extra) in [("sha256", &[][..]), ("sha384", &["--hash", "sha384"][..])] {
        let sig = dir.path().join(format!("{hash}.sig"));
        let mut args = vec![
            "--cluster",
            cluster_dir,
            "sign",
            "--key",
            &id,
            "--in",
            big.to_str().unwrap(),
            "--out",
            sig.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (ok, out, err) = run_vhsm(&args, Duration::from_secs(60));
        assert!(ok, "{hash}: {out}{err}");
        let raw = std::fs::read(&sig).unwrap();
        assert!(
            openssl_verifies(&pem, hash, &big, &raw),
            "{hash}: OpenSSL does not verify the signature of the whole file"
        );
        assert!(
            !openssl_verifies(&pem, hash, &other, &raw),
            "{hash}: OpenSSL accepts the signature for another file"
        );
    }
}
