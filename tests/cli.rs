//! The `vhsm` command as a person uses it: `demo` on a fresh machine, `up` with the key commands beside it, and
//! helpful errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{run_vhsm, vhsm};

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
