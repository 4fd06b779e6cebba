//! `vhsm bench` (the `vhsm` command running `vhsm-bench`) end to end, kept small: one operation (Ed25519), one concurrency, `--quick`, against the fresh
//! cluster the command starts. Checks the exit status, the three files, that both vHSM paths made verified
//! operations, and the SoftHSM comparison (or, when SoftHSM is not installed, that the report says so — a failure
//! when `VHSM_REQUIRE_CLIENTS` is set, as `.ci/run` does). Bad arguments are refused with a message that says why.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use vhsm_testkit::process::vhsm_binary;

/// The whole benchmark must finish within this (it takes about 15 s in a debug build).
const TIMEOUT: Duration = Duration::from_secs(40);

const SOFTHSM_PATHS: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// `vhsm` (cargo builds it for the workspace's tests; `vhsm bench` runs `vhsm-bench`, built beside it for these).
fn vhsm() -> PathBuf {
    vhsm_binary().unwrap()
}

fn module_path() -> PathBuf {
    vhsm_testkit::process::module_path().unwrap()
}

/// A child process killed (and reaped) when dropped, whatever happens to the test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `vhsm ARGS` with its output in files under `dir`, killed after `timeout`: (success, stdout, stderr).
fn run(args: &[&str], dir: &Path, timeout: Duration) -> (bool, String, String) {
    let (out, err) = (dir.join("stdout.txt"), dir.join("stderr.txt"));
    let child = Command::new(vhsm())
        .args(args)
        .env_remove("VHSM_CLUSTER")
        .env_remove("VHSM_PIN")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start vhsm");
    let mut guard = Guard(child);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(guard);
    let (stdout, stderr) = (
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    );
    let Some(status) = status else {
        panic!(
            "vhsm {args:?} did not finish within {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    };
    (status.success(), stdout, stderr)
}

fn number(row: &Value, field: &str) -> f64 {
    row[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {row}"))
}

#[test]
fn quick_bench_of_ed25519_through_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let module = module_path();
    let started = Instant::now();
    let (ok, stdout, stderr) = run(
        &[
            "bench",
            "--quick",
            "--ops",
            "ed25519",
            "--concurrency",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--module",
            module.to_str().unwrap(),
        ],
        dir.path(),
        TIMEOUT,
    );
    assert!(
        ok,
        "vhsm bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    eprintln!(
        "vhsm bench --quick (ed25519, concurrency 1) took {:?}",
        started.elapsed()
    );

    for file in ["bench.json", "bench.md", "bench.svg"] {
        let path = out.join(file);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "{} is missing or empty",
            path.display()
        );
    }
    let svg = std::fs::read_to_string(out.join("bench.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("ed25519"),
        "not the plot: {svg:.200}"
    );
    let markdown = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(
        stdout.contains("| concurrency | system |"),
        "no table on stdout:\n{stdout}"
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap())
            .expect("bench.json is JSON");
    assert_eq!(report["failed_operations"], 0, "{report:#}");
    assert!(report["cluster"]["started_by_bench"].as_bool().unwrap());
    let rows = report["rows"].as_array().expect("rows");
    let row = |system: &str, path: Option<&str>| -> &Value {
        rows.iter()
            .find(|r| {
                r["operation"] == "ed25519"
                    && r["system"] == system
                    && path.is_none_or(|p| r["path"] == p)
            })
            .unwrap_or_else(|| panic!("no {system} {path:?} row in {report:#}"))
    };
    let vhsm_rows = [row("vhsm", Some("native")), row("vhsm", Some("pkcs11"))];
    for r in vhsm_rows {
        assert!(number(r, "ops_per_second") > 0.0, "{r}");
        assert_eq!(r["concurrency"], 1, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert!(
            r["verified_samples"].as_u64().unwrap() >= 1,
            "nothing verified: {r}"
        );
        // The bench started the cluster: its processes' CPU is measured.
        assert!(number(r, "cluster_cpu_seconds_per_op") > 0.0, "{r}");
        assert!(number(r, "ratio_to_in_process_protocol") > 0.0, "{r}");
        assert!(number(r, "ratio_to_single_key") > 0.0, "{r}");
    }
    for (system, path) in [("single-key", None), ("in-process-protocol", None)] {
        assert!(number(row(system, path), "ops_per_second") > 0.0);
    }

    let softhsm_installed = SOFTHSM_PATHS.iter().any(|p| Path::new(p).is_file());
    if softhsm_installed {
        assert_eq!(report["softhsm"]["used"], true, "{report:#}");
        assert!(number(row("softhsm", Some("pkcs11")), "ops_per_second") > 0.0);
        for r in vhsm_rows {
            assert!(number(r, "ratio_to_softhsm") > 0.0, "no SoftHSM ratio: {r}");
        }
    } else {
        assert!(
            std::env::var("VHSM_REQUIRE_CLIENTS").is_err(),
            "SoftHSMv2 is not installed, and VHSM_REQUIRE_CLIENTS is set (.ci/run installs softhsm2)"
        );
        eprintln!("SoftHSMv2 is not installed: checking that the report says so");
        assert_eq!(report["softhsm"]["used"], false);
        assert!(report["softhsm"]["note"]
            .as_str()
            .unwrap()
            .contains("not installed"));
        assert!(markdown.contains("No SoftHSM comparison") && markdown.contains("not installed"));
        for r in vhsm_rows {
            assert!(r["ratio_to_softhsm"].is_null(), "{r}");
        }
    }
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let quick = Duration::from_secs(20);
    let (ok, _, stderr) = run(&["bench", "--concurrency", "0"], dir.path(), quick);
    assert!(!ok && stderr.contains("at least 1"), "{stderr}");
    let (ok, _, stderr) = run(&["bench", "--ops", "rsa-2048"], dir.path(), quick);
    assert!(
        !ok && stderr.contains("rsa-2048") && stderr.contains("ecdsa-p256"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(&["bench", "--seconds", "0"], dir.path(), quick);
    assert!(!ok && stderr.contains("more than 0"), "{stderr}");
    let (ok, _, stderr) = run(
        &[
            "bench",
            "--module",
            "/nonexistent/libvhsm_pkcs11.so",
            "--out",
            dir.path().join("r").to_str().unwrap(),
        ],
        dir.path(),
        quick,
    );
    assert!(
        !ok && stderr.contains("/nonexistent/libvhsm_pkcs11.so"),
        "{stderr}"
    );
}
