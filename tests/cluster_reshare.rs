//! Resharing through real processes: `vhsm key refresh` of keys of every algorithm (public keys unchanged, every
//! key still signs or decrypts, blobs made before still decrypt), `vhsm node repair` of a node whose data was
//! deleted, and a reshare killed at each of its steps — a node or the coordinator exits as if killed — after which
//! every key still works and the nodes' epochs agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{run_vhsm, sign_with_retries, verify_ed25519, TestCluster};
use vhsm_coordinator::{config::CoordinatorConfig, nodes::NodePool};
use vhsm_protocols::ecdsa::verify_prehash;
use vhsm_wire::{
    client::Client,
    messages::{NodeRequest, NodeResponse},
    tls::{self, TlsIdentity},
    Algorithm, KeyId, KeyInfo, PinUser,
};

/// What every node holds of every key: (active epoch per key, staged epochs per key).
type Holdings = BTreeMap<u16, (BTreeMap<KeyId, u64>, BTreeMap<KeyId, u64>)>;

/// Asks every node directly (as the coordinator would) which epoch of which key it holds, and what it staged.
async fn holdings(cluster: &TestCluster) -> Holdings {
    let config =
        CoordinatorConfig::load(&cluster.path().join("coordinator").join("coordinator.toml"))
            .unwrap();
    let identity = TlsIdentity::load(&config.ca_cert, &config.cert, &config.key).unwrap();
    let endpoint = tls::client_endpoint(&identity, false).unwrap();
    let pool = NodePool::new(
        endpoint,
        config.nodes.iter().map(|n| (n.id, n.address.clone())),
    );
    let mut out = Holdings::new();
    for id in pool.ids() {
        let list = |request: NodeRequest| {
            let pool = &pool;
            async move {
                match pool.call(id, &request, Duration::from_secs(5)).await {
                    Ok(NodeResponse::Keys(keys)) => keys
                        .into_iter()
                        .map(|k| (k.id, k.epoch))
                        .collect::<BTreeMap<_, _>>(),
                    other => panic!("node {id} did not list its keys: {other:?}"),
                }
            }
        };
        let active = list(NodeRequest::ListKeys).await;
        let staged = list(NodeRequest::ListStaged).await;
        out.insert(id, (active, staged));
    }
    out
}

/// Every node holds each key at the epoch given for it, and has nothing staged.
async fn assert_epochs(cluster: &TestCluster, expected: &[(&KeyInfo, u64)]) {
    let view = holdings(cluster).await;
    for (node, (active, staged)) in &view {
        assert!(
            staged.is_empty(),
            "node {node} still has staged shares: {view:?}"
        );
        for (key, epoch) in expected {
            assert_eq!(
                active.get(&key.id),
                Some(epoch),
                "node {node}, key {}: {view:?}",
                key.id
            );
        }
    }
}

async fn assert_consistent(cluster: &TestCluster, keys: &[KeyInfo], epoch: u64) {
    let expected: Vec<(&KeyInfo, u64)> = keys.iter().map(|k| (k, epoch)).collect();
    assert_epochs(cluster, &expected).await;
}

async fn so_client(cluster: &TestCluster) -> Client {
    let client = cluster.anonymous_client().await;
    let pin = std::fs::read_to_string(cluster.path().join("client").join("so.pin")).unwrap();
    client
        .login(PinUser::SecurityOfficer, pin.trim().as_bytes())
        .await
        .unwrap();
    client
}

/// Signs (or, for split-AES, encrypts and decrypts) with `key` and checks the result outside vHSM.
async fn check_key(client: &Client, key: &KeyInfo, note: &str) {
    let message = format!("reshare test: {note}");
    match key.algorithm {
        Algorithm::SplitAes256 => {
            let blob = client
                .encrypt(key.id, message.as_bytes(), b"aad")
                .await
                .unwrap_or_else(|e| panic!("{note}: encrypt: {e}"));
            let back = client
                .decrypt(&blob, b"aad")
                .await
                .unwrap_or_else(|e| panic!("{note}: decrypt: {e}"));
            assert_eq!(back.expose(), message.as_bytes(), "{note}");
        }
        Algorithm::Ed25519 => {
            let (signature, _) = sign_with_retries(client, key.id, message.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("{note}: sign: {e}"));
            assert!(
                verify_ed25519(&key.public_key, message.as_bytes(), &signature),
                "{note}"
            );
        }
        Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => {
            let (signature, _) = sign_with_retries(client, key.id, message.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("{note}: sign: {e}"));
            let curve = key.algorithm.ecdsa_curve().unwrap();
            let digest = vhsm_protocols::ecdsa::signing_digest(
                vhsm_protocols::ecdsa::HashAlg::Sha256,
                message.as_bytes(),
            )
            .unwrap();
            assert!(
                verify_prehash(curve, &key.public_key, &digest, &signature),
                "{note}: {curve:?} signature does not verify"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_and_repair_keep_every_key() {
    let mut cluster = TestCluster::start(3, 2).await;
    let client = cluster.client().await;
    let mut keys = Vec::new();
    for algorithm in [
        Algorithm::Ed25519,
        Algorithm::SplitAes256,
        Algorithm::EcdsaSecp256k1,
        Algorithm::EcdsaP256,
    ] {
        keys.push(
            client
                .create_key(algorithm, &format!("reshare-{algorithm}"))
                .await
                .unwrap(),
        );
    }
    let aes = keys[1].clone();
    let old_blob = client.encrypt(aes.id, b"made before", b"v1").await.unwrap();

    // vhsm key refresh --all: every key at epoch 1, same public keys, all still work.
    let cluster_dir = cluster.path().to_str().unwrap().to_string();
    let (ok, out, err) = run_vhsm(
        &["--cluster", &cluster_dir, "key", "refresh", "--all"],
        Duration::from_secs(300),
    );
    assert!(ok, "refresh failed:\n{out}\n{err}");
    eprintln!("{out}");
    let listed = client.list_keys().await.unwrap();
    for key in &keys {
        let now = listed.iter().find(|k| k.id == key.id).unwrap();
        assert_eq!(now.epoch, 1, "{}", key.algorithm);
        assert_eq!(now.public_key, key.public_key, "{}", key.algorithm);
        assert_ne!(
            now.public_package, key.public_package,
            "new shares, new public shares"
        );
        check_key(&client, now, &format!("{} after refresh", key.algorithm)).await;
    }
    assert_eq!(
        client.decrypt(&old_blob, b"v1").await.unwrap().expose(),
        b"made before"
    );
    assert_consistent(&cluster, &keys, 1).await;

    // Node 3 loses its data; `vhsm node repair 3` gives it its shares back; then it signs with node 2 alone.
    cluster.kill("node-3");
    std::fs::remove_dir_all(cluster.node_dir(3).join("data")).unwrap();
    cluster.start_node(3);
    cluster.wait_all_reachable().await;
    let (ok, out, err) = run_vhsm(
        &["--cluster", &cluster_dir, "node", "repair", "3"],
        Duration::from_secs(300),
    );
    assert!(ok, "repair failed:\n{out}\n{err}");
    assert_consistent(&cluster, &keys, 2).await;
    cluster.kill("node-1");
    let listed = client.list_keys().await.unwrap();
    for key in &keys {
        let now = listed.iter().find(|k| k.id == key.id).unwrap();
        check_key(
            &client,
            now,
            &format!("{} by nodes 2 and 3 after repair", key.algorithm),
        )
        .await;
    }
    assert_eq!(
        client.decrypt(&old_blob, b"v1").await.unwrap().expose(),
        b"made before"
    );
}

/// The keys of the kill-point test: fast ones (the crash points are the same for every algorithm).
async fn make_keys(client: &Client) -> Vec<KeyInfo> {
    let mut keys = Vec::new();
    for algorithm in [Algorithm::Ed25519, Algorithm::SplitAes256] {
        keys.push(client.create_key(algorithm, "killed").await.unwrap());
    }
    keys
}

/// Every pair of nodes can use every key (each node is stopped in turn), at the epoch the coordinator reports.
async fn check_every_pair(cluster: &mut TestCluster, keys: &[KeyInfo], note: &str) {
    for down in 1..=3u16 {
        cluster.kill(&format!("node-{down}"));
        let client = cluster.client().await;
        let listed = client.list_keys().await.unwrap();
        for key in keys {
            let now = listed.iter().find(|k| k.id == key.id).unwrap();
            check_key(&client, now, &format!("{note}, node {down} down")).await;
        }
        cluster.start_node(down);
        cluster.wait_all_reachable().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reshare_killed_at_any_step_leaves_every_key_usable() {
    let mut cluster = TestCluster::start(3, 2).await;
    let client = cluster.client().await;
    let keys = make_keys(&client).await;

    // 1. A new holder dies right after staging: the reshare fails, the key stays at epoch 0; once the node is back
    //    its staged share is rolled back and the next reshare succeeds.
    cluster.kill("node-3");
    cluster.inject_fault(3, "exit_after_staging = true");
    cluster.start_node(3);
    cluster.wait_all_reachable().await;
    let so = so_client(&cluster).await;
    let failed = so.reshare_key(keys[0].id, vec![]).await;
    assert!(failed.is_err(), "{failed:?}");
    eprintln!("reshare with node 3 dying after staging: {failed:?}");
    cluster.wait_exit("node-3", Duration::from_secs(10));
    cluster.clear_fault(3, "exit_after_staging");
    cluster.start_node(3);
    cluster.wait_all_reachable().await;
    client.list_keys().await.unwrap(); // the coordinator reconciles when it lists
    assert_consistent(&cluster, &keys, 0).await;
    check_every_pair(&mut cluster, &keys, "after a node died having staged").await;

    // 2. A new holder dies on the commit: the others committed; back, it commits (at the coordinator's next
    //    reconciliation, or on first use of the new epoch).
    let (k0, k1) = (&keys[0], &keys[1]);
    cluster.kill("node-2");
    cluster.inject_fault(2, "exit_before_commit = true");
    cluster.start_node(2);
    cluster.wait_all_reachable().await;
    let so = so_client(&cluster).await;
    assert_eq!(so.reshare_key(k0.id, vec![]).await.unwrap().epoch, 1);
    cluster.wait_exit("node-2", Duration::from_secs(10));
    cluster.clear_fault(2, "exit_before_commit");
    cluster.start_node(2);
    cluster.wait_all_reachable().await;
    client.list_keys().await.unwrap();
    assert_epochs(&cluster, &[(k0, 1), (k1, 0)]).await;
    check_every_pair(&mut cluster, &keys, "after a node died on the commit").await;
    let so = so_client(&cluster).await;
    assert_eq!(so.reshare_key(k1.id, vec![]).await.unwrap().epoch, 1);

    // 3. The coordinator dies when every holder staged, before any commit: rolled back when it is back.
    cluster.kill("coordinator");
    cluster.start_coordinator_with_env(&[("VHSM_FAULT_EXIT_AT", "reshare-staged")]);
    cluster.wait_all_reachable().await;
    let so = so_client(&cluster).await;
    assert!(so.reshare_key(k1.id, vec![]).await.is_err());
    cluster.wait_exit("coordinator", Duration::from_secs(10));
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let client = cluster.client().await;
    client.list_keys().await.unwrap();
    assert_epochs(&cluster, &[(k0, 1), (k1, 1)]).await;
    check_every_pair(
        &mut cluster,
        &keys,
        "after the coordinator died before the commit",
    )
    .await;

    // 4. The coordinator dies after the first holder committed: rolled forward when it is back.
    cluster.kill("coordinator");
    cluster.start_coordinator_with_env(&[("VHSM_FAULT_EXIT_AT", "reshare-first-commit")]);
    cluster.wait_all_reachable().await;
    let so = so_client(&cluster).await;
    assert!(so.reshare_key(k1.id, vec![]).await.is_err());
    cluster.wait_exit("coordinator", Duration::from_secs(10));
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let client = cluster.client().await;
    let listed = client.list_keys().await.unwrap();
    assert_eq!(listed.iter().find(|k| k.id == k1.id).unwrap().epoch, 2);
    assert_epochs(&cluster, &[(k0, 1), (k1, 2)]).await;
    check_every_pair(
        &mut cluster,
        &keys,
        "after the coordinator died after the first commit",
    )
    .await;
}
