//! Real processes: signing survives one node of three down, fails clearly and quickly with two down, and works
//! again when the killed nodes restart with their persisted shares.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::{sign_with_retries, verify_ed25519, ProcessCluster};
use vhsm_client::ClientError;
use vhsm_core::Algorithm;
use vhsm_wire::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_down_signs_two_down_fails_clearly_restart_signs_again() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::Ed25519, "failover")
        .await
        .unwrap();
    assert_eq!(key.holders, vec![1, 2, 3]);

    let (sig, _) = client.sign(key.id, b"all up", None).await.unwrap();
    assert!(verify_ed25519(&key.public_key, b"all up", &sig));

    // One of three down: still signs, every time.
    cluster.kill("node-3");
    for i in 0..5 {
        let msg = format!("node 3 down #{i}");
        let (sig, signers) = client.sign(key.id, msg.as_bytes(), None).await.unwrap();
        assert!(verify_ed25519(&key.public_key, msg.as_bytes(), &sig));
        assert_eq!(signers, vec![1, 2]);
    }

    // Two down: a clear error naming the unreachable nodes, within 10 s.
    cluster.kill("node-2");
    let started = Instant::now();
    let err = client.sign(key.id, b"two down", None).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    match &err {
        ClientError::Service(e) => {
            assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
            assert!(e.nodes.contains(&2), "error must name node 2: {e:?}");
            assert!(e.message.contains("unreachable"), "{e}");
        }
        other => panic!("expected a service error, got {other}"),
    }

    // Restart both: they sign again with the shares they persisted.
    cluster.start_node(2);
    cluster.start_node(3);
    cluster.wait_all_reachable().await;
    cluster.kill("node-1");
    // The coordinator may still pass over the restarted nodes for a few seconds.
    let (sig, signers) = sign_with_retries(&client, key.id, b"after restart")
        .await
        .unwrap();
    assert_eq!(signers, vec![2, 3]);
    assert!(verify_ed25519(&key.public_key, b"after restart", &sig));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_missed_the_commit_gets_it_when_the_coordinator_looks_again() {
    let mut cluster = ProcessCluster::start_with_fault(3, 2, 3, "lose_first_commit = true").await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::Ed25519, "reconcile")
        .await
        .unwrap();

    // Node 3 lost the commit: its share is still pending, unusable. Listing the keys makes the coordinator look
    // at every node's keys, see the key active elsewhere and pending on 3, and commit it there.
    client.list_keys().await.unwrap();
    cluster.kill("node-1");
    // The coordinator may still pass over the restarted nodes for a few seconds.
    let (sig, signers) = sign_with_retries(&client, key.id, b"with node 3")
        .await
        .unwrap();
    assert_eq!(signers, vec![2, 3]);
    assert!(verify_ed25519(&key.public_key, b"with node 3", &sig));
    assert!(cluster
        .read_log("coordinator")
        .contains("missed the commit"));
}
