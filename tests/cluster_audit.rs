//! Real processes: the nodes' audit logs. Key operations are recorded on every node that took part, with who
//! asked; `vhsm audit verify` passes on an intact cluster and names the node and the entry when one byte of one
//! node's log is flipped; a node whose audit log cannot be written refuses to take part, so nothing is signed.
//! Rollback (issue 14, item 8): a node whose log lost its last entries refuses to start, naming the file; a node
//! whose whole data directory was put back to an older copy is named by `vhsm audit verify` (the sessions its
//! peers hold and it lacks) and by `vhsm status` (its shares behind the key's epoch).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{run_vhsm, sign_with_retries, ProcessCluster};
use vhsm_core::{Algorithm, PinUser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_verifies_names_a_flipped_entry_and_fails_closed() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    let dir = cluster.path().to_str().unwrap().to_string();
    let nodes_dir = cluster.node_dir(1).parent().unwrap().to_path_buf();
    let audit_file = move |id: u16| {
        nodes_dir
            .join(format!("node-{id}"))
            .join("data")
            .join("audit.log")
    };

    // A failed login, then key operations of each kind.
    let stranger = cluster.anonymous_client().await;
    assert!(stranger
        .login(PinUser::User, b"not-the-pin-123")
        .await
        .is_err());
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::Ed25519, "audited")
        .await
        .unwrap();
    let aes = client
        .create_key(Algorithm::SplitAes256, "audited-aes")
        .await
        .unwrap();
    client.sign(key.id, b"audited message", None).await.unwrap();
    let blob = client
        .encrypt(aes.id, b"TOP-SECRET-PLAINTEXT", b"")
        .await
        .unwrap();
    client.decrypt(&blob, b"").await.unwrap();

    // Intact: verify passes on every node.
    let (ok, out, err) = run_vhsm(
        &["audit", "verify", "--cluster", &dir],
        Duration::from_secs(30),
    );
    assert!(
        ok,
        "audit verify failed on an intact cluster:\n{out}\n{err}"
    );
    assert_eq!(out.matches("entries, chain intact").count(), 3, "{out}");

    // show --key: the key's generation and signature, by the user, on the nodes that took part.
    let (ok, out, err) = run_vhsm(
        &[
            "audit",
            "show",
            "--key",
            &key.id.to_string(),
            "--since",
            "2020-01-01T00:00:00Z",
            "--json",
            "--cluster",
            &dir,
        ],
        Duration::from_secs(30),
    );
    assert!(ok, "audit show failed:\n{out}\n{err}");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let key_hex = key.id.to_string();
    assert!(entries.iter().all(|e| e["key"] == key_hex.as_str()));
    let with = |op: &str, result: &str| {
        entries
            .iter()
            .filter(|e| e["op"] == op && e["result"] == result)
            .count()
    };
    assert_eq!(with("generate", "attempt"), 3, "{out}");
    assert_eq!(with("generate", "ok"), 3, "{out}");
    // Two signers for the user's signature, two more for the key's pairwise consistency test at generation.
    let signed_for = |purpose: &str| {
        entries
            .iter()
            .filter(|e| e["op"] == "sign" && e["result"] == "ok" && e["purpose"] == purpose)
            .count()
    };
    assert_eq!(signed_for("sign"), 2, "two signers: {out}");
    assert_eq!(
        signed_for("create-key"),
        2,
        "the pairwise consistency test: {out}"
    );
    assert!(entries
        .iter()
        .filter(|e| e["op"] == "sign")
        .all(|e| e["requester"].as_str().unwrap().ends_with("(user)")));
    // Nothing from the future.
    let (ok, out, _) = run_vhsm(
        &[
            "audit",
            "show",
            "--key",
            &key_hex,
            "--since",
            "4000000000",
            "--json",
            "--cluster",
            &dir,
        ],
        Duration::from_secs(30),
    );
    assert!(ok);
    assert_eq!(out.trim(), "[]");

    // Every node recorded the failed login (its own PIN check); the encryption and the decryption were recorded by
    // (at least) two nodes each; no plaintext in any log; the files are private.
    let mut evaluations = 0;
    for id in 1..=3 {
        let text = std::fs::read_to_string(audit_file(id)).unwrap();
        // Every node checked both logins' PINs itself, and recorded the outcome (never the PIN).
        let checks: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("\"op\":\"check-pin\""))
            .collect();
        assert!(
            checks
                .iter()
                .any(|l| l.contains("\"result\":\"error PinIncorrect")
                    && l.contains("(not logged in)")),
            "node {id}: {checks:?}"
        );
        assert!(
            checks.iter().any(|l| l.contains("\"result\":\"ok\"")),
            "node {id}: {checks:?}"
        );
        evaluations += text
            .lines()
            .filter(|l| l.contains("\"op\":\"evaluate\"") && l.contains("\"result\":\"ok\""))
            .count();
        assert!(!text.contains("TOP-SECRET"), "node {id}");
        assert!(!text.contains("not-the-pin"), "node {id}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(audit_file(id))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "node {id}");
        }
    }

    assert!(evaluations >= 4, "{evaluations} evaluations recorded");

    // Flip one byte of entry 3 of node 2 (inside its requester field, so it still parses): named.
    let path = audit_file(2);
    let mut bytes = std::fs::read(&path).unwrap();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let start = line_starts[3];
    let field = b"\"requester\":\"";
    let at = start
        + bytes[start..]
            .windows(field.len())
            .position(|w| w == field)
            .unwrap()
        + field.len();
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let (ok, out, err) = run_vhsm(
        &["audit", "verify", "--cluster", &dir],
        Duration::from_secs(30),
    );
    assert!(!ok, "verify passed a flipped byte:\n{out}");
    assert!(
        out.contains("node 2: CHAIN BROKEN")
            && out.contains("node 2 entry at line 3 (entry seq 3)"),
        "{out}\n{err}"
    );
    assert!(
        out.contains("node 1: ") && out.contains("chain intact"),
        "{out}"
    );
    assert!(
        !out.contains("node 1: CHAIN BROKEN") && !out.contains("node 3: CHAIN BROKEN"),
        "{out}"
    );

    // Fail closed: node 3 down, node 1's audit log replaced by a directory (a write fails even as root). Signing
    // needs node 1 and is refused, naming the audit log; no signature.
    cluster.kill("node-3");
    let path = audit_file(1);
    std::fs::rename(&path, path.with_extension("kept")).unwrap();
    std::fs::create_dir(&path).unwrap();
    let err = client
        .sign(key.id, b"must not be signed", None)
        .await
        .expect_err("signed although a signer's audit log cannot be written");
    let text = err.to_string();
    assert!(
        text.contains("audit log cannot be written") && text.contains("node 1"),
        "{text}"
    );
    assert!(cluster
        .read_log("node-1")
        .contains("AUDIT LOG NOT WRITABLE"));

    // A node restarted on a broken chain refuses to serve, naming the entry.
    cluster.kill("node-2");
    cluster.start_node(2);
    cluster.wait_exit("node-2", Duration::from_secs(20));
    let log = cluster.read_log("node-2");
    assert!(
        log.contains("line 3 (entry seq 3)") && log.contains("refuses to serve"),
        "{log}"
    );
}

/// Copies a directory tree (a node's data directory, taken while the node is stopped).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Longer than the node takes to anchor its audit head in the store after an append.
const ANCHORED: Duration = Duration::from_millis(2000);

/// Issue 14, item 8: with the cluster stopped, the last three lines of one node's audit log removed: the node
/// refuses to start, naming the file, how many entries it holds and how many its store recorded, and what to do.
/// The lines put back, it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_audit_log_was_cut_refuses_to_start() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    let client = cluster.client().await;
    let key = client.create_key(Algorithm::Ed25519, "cut").await.unwrap();
    for i in 0..3u8 {
        sign_with_retries(&client, key.id, &[i]).await.unwrap();
    }
    drop(client);
    tokio::time::sleep(ANCHORED).await;
    for id in 1..=3 {
        cluster.kill(&format!("node-{id}"));
    }
    let path = cluster.node_dir(1).join("data").join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines.len() - 3;
    let mut cut = lines[..kept].join("\n");
    cut.push('\n');
    std::fs::write(&path, cut).unwrap();

    cluster.start_node(1);
    cluster.wait_exit("node-1", Duration::from_secs(20));
    let log = cluster.read_log("node-1");
    assert!(
        log.contains(&format!(
            "audit log {} holds {kept} entries",
            path.display()
        )) && log.contains(&format!("{} had been written", lines.len()))
            && log.contains("refuses to serve")
            && log.contains("vhsm node repair 1"),
        "{log}"
    );

    // The file as it was: the node starts and serves.
    std::fs::write(&path, &text).unwrap();
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.wait_all_reachable().await;
}

/// Issue 14, item 8: node 3's whole data directory (store and log, consistent with each other) put back to a
/// copy taken before a refresh of one key and the creation of another. The node cannot tell; the cluster can:
/// `vhsm audit verify` fails, naming node 3, the sessions its peers hold and it lacks, and the peers; `vhsm status`
/// flags node 3 as behind for both keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rolled_back_with_its_data_directory_is_named_by_audit_verify_and_status() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    let dir = cluster.path().to_str().unwrap().to_string();
    let client = cluster.client().await;
    let refreshed = client
        .create_key(Algorithm::Ed25519, "refreshed")
        .await
        .unwrap();
    tokio::time::sleep(ANCHORED).await;

    // A copy of node 3's data directory, taken while it is stopped.
    let data = cluster.node_dir(3).join("data");
    let copy = cluster.path().join("node-3-data.copy");
    cluster.kill("node-3");
    copy_dir(&data, &copy);
    cluster.start_node(3);
    cluster.wait_all_reachable().await;

    // Since the copy: a refresh (epoch 1) and a new key, both with node 3.
    let (ok, out, err) = run_vhsm(
        &[
            "key",
            "refresh",
            &refreshed.id.to_string(),
            "--cluster",
            &dir,
        ],
        Duration::from_secs(60),
    );
    assert!(ok, "{out}\n{err}");
    let created = client
        .create_key(Algorithm::Ed25519, "later")
        .await
        .unwrap();
    let (ok, out, _) = run_vhsm(
        &["audit", "verify", "--cluster", &dir],
        Duration::from_secs(30),
    );
    assert!(ok, "verify fails before the rollback:\n{out}");

    // Node 3's data directory put back to the copy: the node starts on it (it is consistent).
    cluster.kill("node-3");
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&copy, &data);
    cluster.start_node(3);
    cluster.wait_all_reachable().await;

    let (ok, out, err) = run_vhsm(
        &["audit", "verify", "--cluster", &dir],
        Duration::from_secs(30),
    );
    assert!(!ok, "audit verify passed a rolled-back node:\n{out}");
    let missing: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("MISSING on node 3: session"))
        .collect();
    // The refresh (a reshare) and the generation of the new key, each held by nodes 1 and 2.
    assert!(
        missing
            .iter()
            .any(|l| l.contains("(reshare, key") && l.contains(&refreshed.id.to_string()))
            && missing
                .iter()
                .any(|l| l.contains("(generate, key") && l.contains(&created.id.to_string())),
        "{out}\n{err}"
    );
    assert!(
        missing
            .iter()
            .all(|l| l.contains("node 1 seq") && l.contains("node 2 seq")),
        "{out}"
    );
    assert!(
        !out.contains("MISSING on node 1") && !out.contains("MISSING on node 2"),
        "{out}"
    );
    assert!(err.contains("audit verification FAILED"), "{err}");

    // vhsm status: node 3 is behind for the refreshed key (epoch 0 of 1) and holds no share of the new one.
    let (ok, out, err) = run_vhsm(&["status", "--cluster", &dir], Duration::from_secs(30));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("node 3") && out.contains("BEHIND"), "{out}");
    assert!(
        out.contains(&format!(
            "key {}: share of epoch 0, the cluster is at epoch 1",
            refreshed.id
        )) && out.contains(&format!("key {}: no share", created.id)),
        "{out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.contains("node 1 ") && l.contains("BEHIND")),
        "{out}"
    );
    let (ok, out, err) = run_vhsm(
        &["--json", "status", "--cluster", &dir],
        Duration::from_secs(30),
    );
    assert!(ok, "{out}\n{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["nodes_behind"], serde_json::json!([3]), "{out}");
    let node3 = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == 3)
        .unwrap();
    assert_eq!(node3["behind"].as_array().unwrap().len(), 2, "{out}");
}
