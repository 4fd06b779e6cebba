//! Key lifecycle (NIST SP 800-57) through real processes, enforced by the nodes themselves: a pre-active key does
//! nothing until activated; a deactivated or compromised key decrypts but neither signs nor encrypts — refused by
//! every node even when asked directly, bypassing the coordinator; no way back; a holder that missed a change gets
//! it later; a destroyed key leaves no share on any holder, only a tombstone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{as_coordinator, listed, verify_ed25519, ProcessCluster};
use vhsm_client::ClientError;
use vhsm_core::{Algorithm, KeyState, KeyUse};
use vhsm_node::{seal::StorageKey, store::ShareStore};
use vhsm_protocols::SessionId;
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    ErrorKind, WireError,
};

fn refused(result: Result<impl std::fmt::Debug, ClientError>) -> WireError {
    match result {
        Err(ClientError::Service(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Asks node `node` directly (as the coordinator would) for a FROST signature share with `key_id`: takes a
/// pre-made nonce commitment of `node` and one other node, builds the signing package, and asks `node` to sign.
async fn ask_for_signature_share(
    cluster: &ProcessCluster,
    node: u16,
    key_id: vhsm_core::KeyId,
) -> Result<NodeResponse, String> {
    let mut commitments = std::collections::BTreeMap::new();
    let mut nonce = 0;
    let other = if node == 1 { 2 } else { 1 };
    for signer in [node, other] {
        match ask_directly(cluster, signer, NodeRequest::Precommit { count: 1 }).await {
            Ok(NodeResponse::Precommitments(mut p)) => {
                let p = p.remove(0);
                if signer == node {
                    nonce = p.id;
                }
                commitments.insert(signer, p.commitments);
            }
            other => panic!("node {signer} hands out no nonce commitment: {other:?}"),
        }
    }
    let package = vhsm_protocols::frost::signing_package(&commitments, b"directly").unwrap();
    ask_directly(
        cluster,
        node,
        NodeRequest::SignShare {
            session: SessionId([node as u8; 32]),
            nonce,
            key_id,
            epoch: 0,
            package,
        },
    )
    .await
}

/// Asks node `id` directly (as the coordinator would), bypassing the coordinator's checks.
async fn ask_directly(
    cluster: &ProcessCluster,
    id: u16,
    request: NodeRequest,
) -> Result<NodeResponse, String> {
    let (_, pool) = as_coordinator(cluster);
    pool.call(id, &request, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_states_are_enforced_by_the_nodes() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    let client = cluster.client().await;

    // Pre-active: nothing until activated.
    let ed = client
        .create_key_in_state(Algorithm::Ed25519, "lifecycle", Vec::new(), true)
        .await
        .unwrap();
    assert_eq!(ed.state, KeyState::PreActive);
    let e = refused(client.sign(ed.id, b"too early", None).await);
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert!(e.message.contains("pre-active"), "{e}");
    let direct = ask_for_signature_share(&cluster, 1, ed.id).await;
    assert!(
        format!("{direct:?}").contains("pre-active")
            && !matches!(direct, Ok(NodeResponse::SignatureShare(_))),
        "a node signs with a pre-active key: {direct:?}"
    );
    assert_eq!(
        client
            .set_key_state(ed.id, KeyState::Active)
            .await
            .unwrap()
            .state,
        KeyState::Active
    );
    let (sig, _) = client.sign(ed.id, b"now", None).await.unwrap();
    assert!(verify_ed25519(&ed.public_key, b"now", &sig));

    // Deactivated: no signature, through the coordinator or from any node directly; no way back.
    client
        .set_key_state(ed.id, KeyState::Deactivated)
        .await
        .unwrap();
    let e = refused(client.sign(ed.id, b"after", None).await);
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    for node in 1..=3 {
        let answer = ask_for_signature_share(&cluster, node, ed.id).await;
        let text = format!("{answer:?}");
        assert!(
            text.contains("deactivated") && !matches!(answer, Ok(NodeResponse::SignatureShare(_))),
            "node {node}: {text}"
        );
    }
    let e = refused(client.set_key_state(ed.id, KeyState::Active).await);
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");

    // Split-AES: deactivated and compromised keys decrypt what they protected, encrypt nothing new.
    let aes = client
        .create_key(Algorithm::SplitAes256, "data")
        .await
        .unwrap();
    let blob = client.encrypt(aes.id, b"kept", b"aad").await.unwrap();
    client
        .set_key_state(aes.id, KeyState::Deactivated)
        .await
        .unwrap();
    assert_eq!(
        refused(client.encrypt(aes.id, b"new", b"aad").await).kind,
        ErrorKind::Forbidden
    );
    assert_eq!(
        client.decrypt(&blob, b"aad").await.unwrap().expose(),
        b"kept"
    );
    // Asked directly with the coordinator's credentials: no encryption, and no "decryption" at an α that was not
    // encrypted while the key was active (an encryption in disguise); the blob's own α with its receipt is.
    let parsed = vhsm_protocols::split_aes::CiphertextBlob::parse(&blob).unwrap();
    for (purpose, alpha, receipt, allowed) in [
        (KeyUse::Encrypt, [7; 32], Vec::new(), false),
        (KeyUse::Decrypt, [7; 32], Vec::new(), false),
        (KeyUse::Decrypt, [7; 32], parsed.receipt.clone(), false),
        (KeyUse::Decrypt, parsed.alpha, parsed.receipt.clone(), true),
    ] {
        let answer = ask_directly(
            &cluster,
            2,
            NodeRequest::Evaluate {
                key_id: aes.id,
                epoch: 0,
                purpose,
                alpha,
                receipt,
            },
        )
        .await;
        assert_eq!(
            matches!(answer, Ok(NodeResponse::Partial(_))),
            allowed,
            "{purpose}: {answer:?}"
        );
    }
    client
        .set_key_state(aes.id, KeyState::Compromised)
        .await
        .unwrap();
    assert_eq!(
        client.decrypt(&blob, b"aad").await.unwrap().expose(),
        b"kept"
    );

    // A holder that was down when a key was deactivated gets the change when it is back.
    let other = client
        .create_key(Algorithm::Ed25519, "missed")
        .await
        .unwrap();
    cluster.kill("node-3");
    client
        .set_key_state(other.id, KeyState::Deactivated)
        .await
        .unwrap();
    cluster.start_node(3);
    cluster.wait_all_reachable().await;
    client.list_keys().await.unwrap(); // the coordinator reconciles when it lists
    let (_, pool) = as_coordinator(&cluster);
    let on3 = listed(&pool, 3, NodeRequest::ListKeys).await;
    assert_eq!(
        on3.iter().find(|k| k.id == other.id).unwrap().state,
        KeyState::Deactivated
    );

    // Destroyed: gone from the listing, refused, and no holder keeps a share — only a tombstone.
    client.destroy_key(ed.id).await.unwrap();
    client.destroy_key(aes.id).await.unwrap();
    assert!(client
        .list_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.id != ed.id && k.id != aes.id));
    assert_eq!(
        refused(client.decrypt(&blob, b"aad").await).kind,
        ErrorKind::NotFound
    );
    for node in 1..=3u16 {
        let keys = listed(&pool, node, NodeRequest::ListKeys).await;
        for id in [ed.id, aes.id] {
            assert_eq!(
                keys.iter().find(|k| k.id == id).map(|k| k.state),
                Some(KeyState::Destroyed),
                "node {node}"
            );
        }
    }
    // Look inside each node's store (stopped): no share of the destroyed keys, current or staged.
    for node in 1..=3u16 {
        cluster.kill(&format!("node-{node}"));
        let dir = cluster.node_dir(node);
        let store = ShareStore::open(
            &dir.join("data").join("shares.redb"),
            StorageKey::load(&dir.join("storage.key")).unwrap(),
            node,
        )
        .unwrap();
        for id in [ed.id, aes.id] {
            assert!(
                store.active_key(id).is_err(),
                "node {node} still has a share"
            );
        }
        assert!(store.staged().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_fails_its_self_test_refuses_to_start() {
    let mut cluster = ProcessCluster::init(3, 2);
    cluster.inject_fault(1, "fail_self_test = true");
    cluster.start_node(1);
    cluster.wait_exit("node-1", Duration::from_secs(20));
    let log = cluster.read_log("node-1");
    assert!(log.contains("self-test FAILED"), "{log}");
    assert!(log.contains("SHA-256"), "the failed test is named: {log}");
    // The same node without the fault starts and passes them.
    cluster.clear_fault(1, "fail_self_test");
    cluster.start_node(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cluster.read_log("node-1").contains("self-tests passed") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            cluster.read_log("node-1")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
