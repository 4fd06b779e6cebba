//! Real processes: only certificates from the cluster CA are accepted, each role may do only its own requests,
//! a node that corrupts its signature shares is named and bypassed, and no share is on disk unsealed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{path::Path, time::Duration};

use common::{verify_ed25519, TestCluster};
use vhsm_node::{seal::StorageKey, store::ShareStore};
use vhsm_wire::{
    client::{Client, ClientConfig},
    Algorithm,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_another_ca_and_wrong_roles_are_refused() {
    let cluster = TestCluster::start(3, 2).await;
    let stranger = TestCluster::init(3, 2); // another cluster: another CA

    // A client certificate from another CA cannot use this coordinator.
    let mut foreign = stranger.client_config();
    foreign.coordinator = cluster.client_config().coordinator;
    let refused = match Client::connect(&foreign).await {
        Err(_) => true,
        Ok(client) => client.status().await.is_err(),
    };
    assert!(refused, "a client certificate from another CA was accepted");

    // This cluster's own client is served.
    cluster.client().await.status().await.unwrap();

    // A node certificate (right CA, wrong role) cannot use the client API.
    let node_dir = cluster.node_dir(1);
    let as_node = ClientConfig {
        coordinator: cluster.client_config().coordinator,
        ca_cert: node_dir.join("ca.pem"),
        cert: node_dir.join("node.pem"),
        key: node_dir.join("node.key"),
        request_timeout_secs: 5,
    };
    let refused = match Client::connect(&as_node).await {
        Err(_) => true,
        Ok(client) => client.status().await.is_err(),
    };
    assert!(refused, "a node certificate was served by the client API");

    // A client certificate cannot talk to a node directly, and a stranger's node certificate cannot either.
    let node_address = read_listen(&cluster.node_dir(2).join("node.toml"));
    for (who, config) in [
        ("this cluster's client", cluster.client_config()),
        ("another cluster's node", {
            let d = stranger.node_dir(1);
            ClientConfig {
                coordinator: String::new(),
                ca_cert: d.join("ca.pem"),
                cert: d.join("node.pem"),
                key: d.join("node.key"),
                request_timeout_secs: 5,
            }
        }),
    ] {
        let mut config = config;
        config.coordinator = node_address.clone();
        // Connecting as if the node were a coordinator fails: the node's certificate does not say coordinator,
        // so the TLS name check fails on our side; and the node refuses us on its side. Either way: no service.
        let refused = match Client::connect(&config).await {
            Err(_) => true,
            Ok(client) => client.status().await.is_err(),
        };
        assert!(refused, "{who} was served by a node");
    }
    // And the node's log shows it refused the stranger's handshake or the wrong role (or it never got that far).
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn read_listen(node_toml: &Path) -> String {
    let text = std::fs::read_to_string(node_toml).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    value["listen"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_corrupting_its_signature_shares_is_named_and_bypassed() {
    let mut cluster = TestCluster::init(3, 2);
    cluster.inject_fault(2, "corrupt_signature_shares = true");
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::Ed25519, "blame")
        .await
        .unwrap();

    for i in 0..6 {
        let msg = format!("blame #{i}");
        let (sig, signers) = client.sign(key.id, msg.as_bytes()).await.unwrap();
        assert!(
            verify_ed25519(&key.public_key, msg.as_bytes(), &sig),
            "signature #{i} invalid"
        );
        assert!(
            !signers.contains(&2),
            "a signature was made with the corrupting node: {signers:?}"
        );
    }
    let log = cluster.read_log("coordinator");
    let named = log
        .lines()
        .any(|l| l.contains("invalid protocol messages") && l.contains("nodes=[2]"));
    assert!(named, "the coordinator did not name node 2:\n{log}");
    let wrongly_named = log
        .lines()
        .any(|l| l.contains("invalid protocol messages") && !l.contains("nodes=[2]"));
    assert!(!wrongly_named, "an honest node was named:\n{log}");
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_share_is_on_disk_unsealed() {
    let mut cluster = TestCluster::start(3, 2).await;
    let client = cluster.client().await;
    let mut keys = Vec::new();
    for i in 0..3 {
        keys.push(
            client
                .create_key(Algorithm::Ed25519, &format!("sealed-{i}"))
                .await
                .unwrap(),
        );
    }
    drop(client);
    for id in 1..=3 {
        cluster.kill(&format!("node-{id}"));
    }
    for id in 1..=3u16 {
        let dir = cluster.node_dir(id);
        // Test code opens the store with the node's storage key to learn what its shares are...
        let store = ShareStore::open(
            &dir.join("data").join("shares.redb"),
            StorageKey::load(&dir.join("storage.key")).unwrap(),
            id,
        )
        .unwrap();
        let mut secrets = Vec::new();
        for key in &keys {
            let loaded = store.active_key(key.id).unwrap();
            let share = loaded.share.signing_share_bytes();
            secrets.push(share.to_vec());
        }
        drop(store);
        // ...then searches every file of the node for them, raw and as hex.
        let mut files = Vec::new();
        files_under(&dir, &mut files);
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            for secret in &secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                    "share in the clear in {}",
                    file.display()
                );
                let hex = hex::encode(secret);
                assert!(
                    !bytes
                        .windows(hex.len())
                        .any(|w| w.eq_ignore_ascii_case(hex.as_bytes())),
                    "share as hex in {}",
                    file.display()
                );
            }
        }
    }
}
