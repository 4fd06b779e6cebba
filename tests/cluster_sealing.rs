//! Sealed nodes (storage key under an operator passphrase), and a node's backup and restore: real processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{run_vhsm_env, sign_with_retries, verify_ed25519, ProcessCluster};
use vhsm_client::Client;
use vhsm_core::Algorithm;
use vhsm_node::{seal::SealedKeyFile, store::ShareStore};

const PASSPHRASE: &str = "test passphrase: correct horse battery staple";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![("VHSM_NODE_PASSPHRASE", PASSPHRASE)]
}

/// `vhsm --cluster DIR ARGS` with `env`; (success, stdout, stderr).
fn vhsm(cluster: &ProcessCluster, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut all = vec!["--cluster", cluster.path().to_str().unwrap()];
    all.extend_from_slice(args);
    run_vhsm_env(&all, env, Duration::from_secs(60))
}

/// Waits until the coordinator's status says node `id` is (or is not) sealed.
async fn wait_sealed(cluster: &ProcessCluster, id: u16, sealed: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(client) = Client::connect(&cluster.client_config()).await {
            if let Ok(status) = client.status().await {
                let node = status.nodes.iter().find(|n| n.id == id).unwrap();
                if node.status.as_ref().is_some_and(|s| s.sealed == sealed) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "node {id} not sealed={sealed} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn assert_absent(haystack: &[u8], needle: &[u8], what: &str, file: &Path) {
    assert!(
        !haystack.windows(needle.len()).any(|w| w == needle),
        "{what} in the clear in {}",
        file.display()
    );
    let hex = hex::encode(needle);
    assert!(
        !haystack
            .windows(hex.len())
            .any(|w| w.eq_ignore_ascii_case(hex.as_bytes())),
        "{what} as hex in {}",
        file.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_node_serves_nothing_until_unsealed_and_nothing_is_on_disk_in_the_clear() {
    let mut cluster = ProcessCluster::init_with(3, 2, &["--seal"], &env());
    for id in 1..=3 {
        assert!(cluster.node_dir(id).join("sealed.key").exists());
        assert!(!cluster.node_dir(id).join("storage.key").exists());
        cluster.start_node_with_env(id, &env());
    }
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::Ed25519, "sealed")
        .await
        .unwrap();

    // Node 3 restarted without its passphrase: sealed.
    cluster.kill("node-3");
    cluster.start_node(3);
    wait_sealed(&cluster, 3, true).await;
    assert!(cluster.read_log("node-3").contains("SEALED"));
    let (ok, out, _) = vhsm(&cluster, &["status"], &[]);
    assert!(ok && out.contains("SEALED"), "{out}");
    // A request made to it through the coordinator: "sealed", nothing else.
    let (ok, _, err) = vhsm(
        &cluster,
        &["node", "backup", "3", "--out", "/dev/null"],
        &[],
    );
    assert!(!ok && err.contains("node 3 is sealed"), "{err}");
    // With node 1 down, signing needs node 3: unavailable because sealed, and no node blamed.
    cluster.kill("node-1");
    let err = client
        .sign(key.id, b"m", None)
        .await
        .unwrap_err()
        .to_string();
    // Unavailable, not misbehaving: the coordinator names it among the unreachable holders.
    assert!(err.contains("unreachable: [1, 3]"), "{err}");

    // A wrong passphrase: refused, still sealed, data intact.
    let (ok, _, err) = vhsm(
        &cluster,
        &["node", "unseal", "3"],
        &[("VHSM_NODE_PASSPHRASE", "not the passphrase")],
    );
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    wait_sealed(&cluster, 3, true).await;

    // The right one: it serves, and signs with node 2.
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "3"], &env());
    assert!(ok, "{out}\n{err}");
    wait_sealed(&cluster, 3, false).await;
    let (signature, signers) = sign_with_retries(&client, key.id, b"after unseal")
        .await
        .unwrap();
    assert!(signers.contains(&3), "{signers:?}");
    assert!(verify_ed25519(&key.public_key, b"after unseal", &signature));
    drop(client);

    // Nothing in the clear under any node's directory: no passphrase, no storage key, no share.
    cluster.kill("node-2");
    cluster.kill("node-3");
    for id in 1..=3u16 {
        let dir = cluster.node_dir(id);
        let storage_key =
            SealedKeyFile::load(&dir.join("sealed.key"), PASSPHRASE.as_bytes()).unwrap();
        let raw_key = storage_key.secret_bytes_for_tests();
        let store =
            ShareStore::open(&dir.join("data").join("shares.redb"), storage_key, id).unwrap();
        let share = store
            .active_key(key.id)
            .unwrap()
            .share
            .secret_bytes_for_tests();
        drop(store);
        let mut files = Vec::new();
        files_under(&dir, &mut files);
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes
                    .windows(PASSPHRASE.len())
                    .any(|w| w == PASSPHRASE.as_bytes()),
                "passphrase in {}",
                file.display()
            );
            assert_absent(&bytes, &raw_key, "storage key", &file);
            assert_absent(&bytes, &share, "share", &file);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_signs_and_an_older_epoch_backup_is_refused() {
    let mut cluster = ProcessCluster::init_with(3, 2, &["--seal"], &env());
    for id in 1..=3 {
        cluster.start_node_with_env(id, &env());
    }
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::Ed25519, "backed-up")
        .await
        .unwrap();

    let backup = cluster.path().join("node-3.backup");
    let (ok, out, err) = vhsm(
        &cluster,
        &["node", "backup", "3", "--out", backup.to_str().unwrap()],
        &[],
    );
    assert!(ok && out.contains(&key.id.to_string()), "{out}\n{err}");
    // The backup holds the share only sealed.
    let bytes = std::fs::read(&backup).unwrap();
    assert!(bytes.starts_with(b"vHSM-node-backup"));

    // Node 3 loses its data; it comes back empty and is restored.
    cluster.kill("node-3");
    std::fs::remove_dir_all(cluster.node_dir(3).join("data")).unwrap();
    cluster.start_node_with_env(3, &env());
    wait_sealed(&cluster, 3, false).await;
    let (ok, out, err) = vhsm(
        &cluster,
        &["node", "restore", "3", backup.to_str().unwrap()],
        &[],
    );
    assert!(ok && out.contains("restored"), "{out}\n{err}");

    // With node 1 down, node 3 must sign.
    cluster.kill("node-1");
    let (signature, signers) = sign_with_retries(&client, key.id, b"restored")
        .await
        .unwrap();
    assert!(signers.contains(&3), "{signers:?}");
    assert!(verify_ed25519(&key.public_key, b"restored", &signature));

    // A refresh moves the key to epoch 1: the epoch-0 backup no longer combines and is refused.
    cluster.start_node_with_env(1, &env());
    cluster.wait_all_reachable().await;
    let (ok, out, err) = vhsm(&cluster, &["key", "refresh", &key.id.to_string()], &[]);
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = vhsm(
        &cluster,
        &["node", "restore", "3", backup.to_str().unwrap()],
        &[],
    );
    assert!(!ok, "an older-epoch backup was restored: {out}");
    assert!(
        err.contains("epoch 0 in the backup but at epoch 1 in the cluster")
            && err.contains("no longer combine")
            && err.contains("vhsm node repair 3"),
        "{err}"
    );
    // Nothing changed: the key still signs with node 3.
    cluster.kill("node-2");
    let (_, signers) = sign_with_retries(&client, key.id, b"after refusal")
        .await
        .unwrap();
    assert!(signers.contains(&3), "{signers:?}");

    // A destroyed key does not come back from a backup made before its destruction.
    cluster.start_node_with_env(2, &env());
    cluster.wait_all_reachable().await;
    let doomed = client
        .create_key(Algorithm::Ed25519, "doomed")
        .await
        .unwrap();
    let before = cluster.path().join("node-3-before-destroy.backup");
    let (ok, out, err) = vhsm(
        &cluster,
        &["node", "backup", "3", "--out", before.to_str().unwrap()],
        &[],
    );
    assert!(ok && out.contains(&doomed.id.to_string()), "{out}\n{err}");
    client.destroy_key(doomed.id).await.unwrap();
    let (_, out, err) = vhsm(
        &cluster,
        &["node", "restore", "3", before.to_str().unwrap()],
        &[],
    );
    assert!(
        format!("{out}{err}").contains(&doomed.id.to_string()),
        "the restore says what it left out: {out}\n{err}"
    );
    assert!(client.sign(doomed.id, b"back?", None).await.is_err());
    assert!(client
        .list_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.id != doomed.id));
    let (_, pool) = common::as_coordinator(&cluster);
    let on3 = common::listed(&pool, 3, vhsm_wire::node_api::NodeRequest::ListKeys).await;
    assert_eq!(
        on3.iter().find(|k| k.id == doomed.id).map(|k| k.state),
        Some(vhsm_core::KeyState::Destroyed),
        "node 3 keeps only the tombstone"
    );
}

/// Issue 14, item 11: the nodes check the PINs, and a sealed node cannot (its counters are in its sealed store), so
/// nobody can log in while fewer than t nodes are unsealed. Until then the operator unseals with the passphrase
/// alone (which each node checks); from t unsealed nodes on, unsealing is the security officer's again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_starts_sealed_is_unsealed_with_the_passphrase_until_t_nodes_check_pins() {
    use vhsm_client::ClientError;
    use vhsm_core::{PinUser, SecretBytes};
    use vhsm_wire::ErrorKind;
    let kind = |e: &ClientError| match e {
        ClientError::Service(w) => Some(w.kind),
        _ => None,
    };
    let mut cluster = ProcessCluster::init_with(3, 2, &["--seal"], &env());
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    for id in 1..=3 {
        wait_sealed(&cluster, id, true).await;
    }
    let anonymous = cluster.anonymous_client().await;
    let e = anonymous
        .login(PinUser::User, cluster.user_pin().trim().as_bytes())
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::Unavailable), "{e}");

    // Node 1 by the CLI, node 2 by a client that is not logged in: the passphrase is checked by each node.
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "1"], &env());
    assert!(ok, "{out}\n{err}");
    assert!(err.contains("the passphrase alone"), "{err}");
    let e = anonymous
        .unseal_node(2, SecretBytes::new(b"not the passphrase".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::PinIncorrect), "{e}");
    anonymous
        .unseal_node(2, SecretBytes::new(PASSPHRASE.as_bytes().to_vec()))
        .await
        .unwrap();
    wait_sealed(&cluster, 2, false).await;

    // Two nodes check PINs now: logins work, and unsealing is the security officer's again.
    let e = anonymous
        .unseal_node(3, SecretBytes::new(PASSPHRASE.as_bytes().to_vec()))
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NotLoggedIn), "{e}");
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "3"], &env());
    assert!(ok, "{out}\n{err}");
    assert!(!err.contains("the passphrase alone"), "{err}");
    wait_sealed(&cluster, 3, false).await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::Ed25519, "unsealed")
        .await
        .unwrap();
    let (signature, _) = sign_with_retries(&client, key.id, b"all unsealed")
        .await
        .unwrap();
    assert!(verify_ed25519(&key.public_key, b"all unsealed", &signature));
}
