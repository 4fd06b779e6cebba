//! The coordinator's logic against a whole cluster in this process (`vhsm_testkit::memory`): real nodes with their
//! stores and sessions, no sockets. Key generation, signing (every algorithm), split-AES, reshare and the registry,
//! each with a node that is down, slow or answering garbage. Every signature is checked with the curve crates, not
//! with our own code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use vhsm_client::approval::ApprovalKey;
use vhsm_coordinator::{
    keygen::create_key,
    membership::{
        change::{destination, run, Change, Changes, Services},
        MembershipAdmin,
    },
    nodes::Requester,
    reshare,
};
use vhsm_core::{Algorithm, KeyInfo, KeyState, Membership};
use vhsm_testkit::memory::{Fault, MemoryCluster};
use vhsm_wire::client_api::ChangeStatus as MembershipChange;
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    ErrorKind,
};

async fn new_key(cluster: &MemoryCluster, algorithm: Algorithm) -> KeyInfo {
    create_key(
        &cluster.pool,
        &cluster.registry,
        algorithm,
        "in-memory",
        Vec::new(),
        KeyState::Active,
        &cluster.signer,
    )
    .await
    .unwrap_or_else(|e| panic!("{algorithm} key generation failed: {e}"))
}

/// Verifies a signature with the curve crates (ECDSA: over the SHA-256 of `message`).
fn verify(key: &KeyInfo, message: &[u8], signature: &[u8]) {
    use sha2::{Digest, Sha256};
    let valid = match key.algorithm {
        Algorithm::Ed25519 => {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(
                &key.public_key.clone().try_into().unwrap(),
            )
            .unwrap();
            let sig = ed25519_dalek::Signature::from_slice(signature).unwrap();
            vk.verify_strict(message, &sig).is_ok()
        }
        Algorithm::EcdsaP256 => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key).unwrap();
            let sig = p256::ecdsa::Signature::from_slice(signature).unwrap();
            vk.verify_prehash(&Sha256::digest(message), &sig).is_ok()
        }
        Algorithm::EcdsaSecp256k1 => {
            use k256::ecdsa::signature::hazmat::PrehashVerifier;
            let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key).unwrap();
            let sig = k256::ecdsa::Signature::from_slice(signature).unwrap();
            vk.verify_prehash(&Sha256::digest(message), &sig).is_ok()
        }
        Algorithm::SplitAes256 => panic!("split-AES keys do not sign"),
    };
    assert!(valid, "{} signature does not verify", key.algorithm);
}

/// Deactivates `key` on every node directly (as the coordinator would, or a compromised one could).
async fn deactivate_on_every_node(cluster: &MemoryCluster, key: &KeyInfo) {
    for node in cluster.ids() {
        let answer = cluster
            .node(node)
            .answer(NodeRequest::SetKeyState {
                key_id: key.id,
                state: KeyState::Deactivated,
            })
            .await;
        assert!(
            !matches!(answer, NodeResponse::Error(_)),
            "node {node}: {answer:?}"
        );
    }
}

/// What node `id` holds: its answer to `ListKeys`.
async fn listed(cluster: &MemoryCluster, id: u16) -> Vec<KeyInfo> {
    match cluster.node(id).answer(NodeRequest::ListKeys).await {
        NodeResponse::Keys(keys) => keys,
        other => panic!("node {id} did not list its keys: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_with_every_algorithm_and_routes_around_a_node_that_is_down() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    for algorithm in [
        Algorithm::Ed25519,
        Algorithm::EcdsaSecp256k1,
        Algorithm::EcdsaP256,
    ] {
        let key = new_key(&cluster, algorithm).await;
        let message = format!("a message for {algorithm}");
        let signed = cluster
            .signer
            .sign(&cluster.pool, &key, message.as_bytes(), None)
            .await
            .unwrap();
        verify(&key, message.as_bytes(), &signed.signature);
        assert_eq!(signed.signers.len(), 2);

        for down in [1, 3] {
            cluster.set_fault(down, Fault::Down);
            let signed = cluster
                .signer
                .sign(&cluster.pool, &key, message.as_bytes(), None)
                .await
                .unwrap_or_else(|e| panic!("{algorithm} with node {down} down: {e}"));
            assert!(
                !signed.signers.contains(&down),
                "node {down} is down yet signed: {:?}",
                signed.signers
            );
            verify(&key, message.as_bytes(), &signed.signature);
            cluster.clear_fault(down);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_fails_naming_the_nodes_when_too_few_answer() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let key = new_key(&cluster, Algorithm::Ed25519).await;
    cluster.set_fault(2, Fault::Down);
    cluster.set_fault(3, Fault::Down);
    let error = cluster
        .signer
        .sign(&cluster.pool, &key, b"m", None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(
        error.nodes().contains(&2) && error.nodes().contains(&3),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_answering_garbage_is_left_out_and_a_slow_one_waited_for() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let key = new_key(&cluster, Algorithm::Ed25519).await;
    cluster.set_fault(2, Fault::Garbage);
    for _ in 0..4 {
        let signed = cluster
            .signer
            .sign(&cluster.pool, &key, b"garbage around", None)
            .await
            .unwrap();
        assert_eq!(signed.signers, vec![1, 3]);
        verify(&key, b"garbage around", &signed.signature);
    }
    cluster.clear_fault(2);
    // Slow, but within the round timeout: waited for, not passed over.
    cluster.set_fault(1, Fault::Slow(Duration::from_millis(300)));
    cluster.set_fault(3, Fault::Down);
    let signed = cluster
        .signer
        .sign(&cluster.pool, &key, b"slowly", None)
        .await
        .unwrap();
    assert_eq!(signed.signers, vec![1, 2]);
    verify(&key, b"slowly", &signed.signature);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_generation_with_a_holder_down_or_answering_garbage_leaves_no_key() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    for (culprit, fault) in [(3, Fault::Down), (2, Fault::Garbage)] {
        cluster.set_fault(culprit, fault.clone());
        let error = create_key(
            &cluster.pool,
            &cluster.registry,
            Algorithm::Ed25519,
            "doomed",
            Vec::new(),
            KeyState::Active,
            &cluster.signer,
        )
        .await
        .unwrap_err();
        assert!(
            error.nodes().contains(&culprit),
            "{fault:?}: the error does not name node {culprit}: {error:?}"
        );
        cluster.clear_fault(culprit);
        for id in cluster.ids() {
            let held = listed(&cluster, id).await;
            assert!(
                held.is_empty(),
                "{fault:?}: node {id} kept {held:?} of an aborted generation"
            );
        }
    }
    // And with every holder well again, a key is made, committed on every holder.
    let key = new_key(&cluster, Algorithm::Ed25519).await;
    for id in cluster.ids() {
        let held = listed(&cluster, id).await;
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].id, key.id);
        assert_eq!(held[0].state, KeyState::Active);
        assert_eq!(held[0].public_key, key.public_key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_aes_round_trips_and_routes_around_a_node_that_is_down() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let key = new_key(&cluster, Algorithm::SplitAes256).await;
    let blob = vhsm_coordinator::encryption::encrypt(&cluster.pool, &key, b"secret", b"aad")
        .await
        .unwrap();
    cluster.set_fault(2, Fault::Down);
    let plain = vhsm_coordinator::encryption::decrypt(&cluster.pool, &key, &blob, b"aad")
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), b"secret");
    let error = vhsm_coordinator::encryption::decrypt(&cluster.pool, &key, &blob, b"other aad")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidCiphertext, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshare_refuses_while_a_new_holder_is_down_and_then_moves_every_holder_to_the_next_epoch()
{
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let key = new_key(&cluster, Algorithm::Ed25519).await;
    let target = reshare::Target {
        committee: vec![1, 2, 3],
        threshold: 2,
        avoid_dealers: Vec::new(),
        banned: Vec::new(),
        approval: None,
    };

    cluster.set_fault(3, Fault::Down);
    let error = reshare::reshare(&cluster.pool, &key, &target)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.nodes().contains(&3), "{error:?}");
    // Nothing changed: the key still signs at its epoch.
    let signed = cluster
        .signer
        .sign(&cluster.pool, &key, b"before", None)
        .await
        .unwrap();
    verify(&key, b"before", &signed.signature);
    cluster.clear_fault(3);

    let done = reshare::reshare(&cluster.pool, &key, &target)
        .await
        .unwrap();
    assert_eq!(done.key.epoch, key.epoch + 1);
    assert_eq!(
        done.key.public_key, key.public_key,
        "a refresh keeps the key"
    );
    for id in cluster.ids() {
        let held = listed(&cluster, id).await;
        assert_eq!(held[0].epoch, key.epoch + 1, "node {id}");
    }
    // The new shares sign (every pair of holders), under the same public key.
    for down in [1, 2, 3] {
        cluster.set_fault(down, Fault::Down);
        let signed = cluster
            .signer
            .sign(&cluster.pool, &done.key, b"after", None)
            .await
            .unwrap();
        verify(&done.key, b"after", &signed.signature);
        cluster.clear_fault(down);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_learns_the_keys_and_names_nodes_that_do_not_answer_or_answer_garbage() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let a = new_key(&cluster, Algorithm::Ed25519).await;
    let b = new_key(&cluster, Algorithm::SplitAes256).await;
    // A fresh coordinator's registry learns them from the nodes.
    let registry = vhsm_coordinator::registry::Registry::default();
    assert!(registry.refresh(&cluster.pool).await.is_empty());
    let mut ids: Vec<_> = registry.list().iter().map(|k| k.id).collect();
    ids.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(ids, expected);

    cluster.set_fault(2, Fault::Down);
    cluster.set_fault(3, Fault::Garbage);
    let failures = registry.refresh(&cluster.pool).await;
    let mut named: Vec<u16> = failures.iter().map(|f| f.node()).collect();
    named.sort_unstable();
    assert_eq!(named, vec![2, 3], "{failures:?}");
    assert!(
        failures
            .iter()
            .any(|f| f.to_string().contains("something other than a key list")),
        "{failures:?}"
    );
    // One holder alone does not vouch for a key: the view keeps what it knew.
    assert_eq!(registry.list().len(), 2);
    assert_eq!(registry.get(a.id).unwrap().public_key, a.public_key);
    // A fresh coordinator that hears from one holder only does not take its word.
    let fresh = vhsm_coordinator::registry::Registry::default();
    fresh.refresh(&cluster.pool).await;
    assert!(fresh.list().is_empty(), "{:?}", fresh.list());
}

/// A membership change as the coordinator runs it for `requester`, with its membership saved in `dir`.
async fn change_membership(
    cluster: &MemoryCluster,
    dir: &std::path::Path,
    change: Change,
) -> (
    Result<Membership, vhsm_coordinator::Error>,
    MembershipChange,
) {
    let admin = MembershipAdmin::new(dir.join("membership.json"));
    let changes = Changes::default();
    let progress = changes.begin(&change, "ops (so)".into()).unwrap();
    let nodes = cluster.pool.on_behalf(Requester {
        who: "ops (so)".into(),
        purpose: "remove-node",
    });
    let services = Services {
        admin: &admin,
        registry: &cluster.registry,
        signer: &cluster.signer,
    };
    let (committee, threshold) = destination(&nodes.membership(), &change);
    let approval = cluster.approve(&committee, threshold);
    let outcome = run(services, &nodes, &change, Some(&approval), &progress).await;
    (outcome, progress.status())
}

async fn audit_lines(cluster: &MemoryCluster, node: u16) -> Vec<String> {
    match cluster
        .node(node)
        .answer(NodeRequest::AuditLog {
            from_line: 0,
            max_lines: vhsm_wire::node_api::MAX_PAGE_LINES,
        })
        .await
    {
        NodeResponse::Audit(page) => page.lines,
        other => panic!("node {node}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_node_moves_every_key_off_it_first_and_the_nodes_record_who_asked() {
    let cluster = MemoryCluster::start(4, 2).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ed = new_key(&cluster, Algorithm::Ed25519).await;
    let aes = new_key(&cluster, Algorithm::SplitAes256).await;
    let blob = vhsm_coordinator::encryption::encrypt(&cluster.pool, &aes, b"kept", b"aad")
        .await
        .unwrap();

    let (outcome, status) = change_membership(
        &cluster,
        dir.path(),
        Change::RemoveNode {
            id: 4,
            threshold: Some(3),
        },
    )
    .await;
    let after = outcome.unwrap();
    assert_eq!((after.ids(), after.threshold), (vec![1, 2, 3], 3));
    assert_eq!(cluster.pool.membership(), after);
    // Both keys were reshared to 3-of-{1,2,3}, each reported, and still work under the same public key.
    assert_eq!(status.keys_total, 2);
    assert!(status.keys.iter().all(|k| k.error.is_none()
        && k.holders == vec![1, 2, 3]
        && k.threshold == 3
        && k.to_epoch == Some(k.from_epoch + 1)));
    let ed_now = cluster.registry.get(ed.id).unwrap();
    assert_eq!(ed_now.public_key, ed.public_key);
    let signed = cluster
        .signer
        .sign(&cluster.pool, &ed_now, b"after", None)
        .await
        .unwrap();
    verify(&ed_now, b"after", &signed.signature);
    let aes_now = cluster.registry.get(aes.id).unwrap();
    let plain = vhsm_coordinator::encryption::decrypt(&cluster.pool, &aes_now, &blob, b"aad")
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), b"kept");
    // Node 4 holds nothing any more.
    assert!(listed(&cluster, 4)
        .await
        .iter()
        .all(|k| k.holders != vec![1, 2, 3, 4]));
    // The reshares were made for the security officer who asked, not for "coordinator".
    let log = audit_lines(&cluster, 1).await.join("\n");
    assert!(
        log.contains("ops (so)") && log.contains("remove-node"),
        "node 1's audit log does not name the requester:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_stops_before_removing_the_node_when_a_key_cannot_be_moved() {
    let cluster = MemoryCluster::start(4, 2).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(&cluster, Algorithm::Ed25519).await;
    // Node 2 is down: no reshare can reach every new holder.
    cluster.set_fault(2, Fault::Down);
    let (outcome, status) = change_membership(
        &cluster,
        dir.path(),
        Change::RemoveNode {
            id: 4,
            threshold: None,
        },
    )
    .await;
    let error = outcome.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("node 4 was not removed") && text.contains(&key.id.to_string()),
        "{text}"
    );
    assert_eq!(status.outcome, Some(Err(error.into())));
    assert_eq!(status.keys.len(), 1);
    assert!(status.keys[0].error.is_some());
    // Nothing was lost: node 4 is still a member and the key still signs where it was.
    assert_eq!(cluster.pool.membership().ids(), vec![1, 2, 3, 4]);
    let signed = cluster
        .signer
        .sign(&cluster.pool, &key, b"still", None)
        .await
        .unwrap();
    verify(&key, b"still", &signed.signature);
}

/// A node that rewrites every key in its key list with `lie`.
fn lying_about_keys(lie: fn(&mut KeyInfo)) -> Fault {
    Fault::Lie(std::sync::Arc::new(move |request, answer| {
        match (request, answer) {
            (NodeRequest::ListKeys, NodeResponse::Keys(mut keys)) => {
                keys.iter_mut().for_each(lie);
                NodeResponse::Keys(keys)
            }
            (_, answer) => answer,
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_lying_about_a_key_neither_destroys_it_nor_takes_it_over() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let ed = new_key(&cluster, Algorithm::Ed25519).await;
    let aes = new_key(&cluster, Algorithm::SplitAes256).await;

    // Node 3 says every key was destroyed, at the highest revision there is.
    cluster.set_fault(
        3,
        lying_about_keys(|k| {
            k.state = KeyState::Destroyed;
            k.revision = u64::MAX;
        }),
    );
    let registry = vhsm_coordinator::registry::Registry::default();
    for _ in 0..2 {
        // A second listing would act on what the first believed.
        registry.refresh(&cluster.pool).await;
    }
    for key in [&ed, &aes] {
        let seen = registry.get(key.id).unwrap();
        assert_eq!(
            (seen.state, seen.revision),
            (KeyState::Active, 0),
            "{}",
            key.id
        );
        for node in [1, 2] {
            let held = listed(&cluster, node).await;
            let mine = held.iter().find(|k| k.id == key.id).unwrap();
            assert_eq!(
                mine.state,
                KeyState::Active,
                "node {node} was made to drop {}",
                key.id
            );
        }
    }

    // Node 3 says it alone holds a new epoch of every key, with threshold 1 and a public key of its own.
    cluster.set_fault(
        3,
        lying_about_keys(|k| {
            k.epoch += 1;
            k.holders = vec![3];
            k.threshold = 1;
            k.public_key = vec![0x33; k.public_key.len()];
        }),
    );
    registry.refresh(&cluster.pool).await;
    let seen = registry.get(ed.id).unwrap();
    assert_eq!(
        (seen.epoch, seen.holders.clone(), seen.threshold),
        (ed.epoch, ed.holders.clone(), ed.threshold)
    );
    assert_eq!(
        seen.public_key, ed.public_key,
        "the liar's public key was taken"
    );
    // The liar is named, for both keys.
    let mut named: Vec<u16> = registry.dissent().iter().map(|(_, n)| *n).collect();
    named.dedup();
    assert_eq!(named, vec![3], "{:?}", registry.dissent());
    // The honest holders sign as before, under the real public key.
    cluster.set_fault(3, Fault::Down);
    let signed = cluster
        .signer
        .sign(&cluster.pool, &seen, b"still mine", None)
        .await
        .unwrap();
    verify(&ed, b"still mine", &signed.signature);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_blaming_honest_signers_is_kept_apart_from_them_and_they_sign_without_it() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let ed = new_key(&cluster, Algorithm::Ed25519).await;
    // Node 3 answers every signature share request by blaming the other signer(s) (no evidence, just its word).
    cluster.set_fault(
        3,
        Fault::Lie(std::sync::Arc::new(|request, answer| {
            let inner = match request {
                NodeRequest::OnBehalf { request, .. } => request.as_ref(),
                other => other,
            };
            match inner {
                NodeRequest::SignShare { .. } => NodeResponse::Error(vhsm_wire::WireError {
                    kind: ErrorKind::Misbehaviour,
                    message: "node 3: the others sent invalid commitments".into(),
                    nodes: vec![1, 2],
                }),
                _ => answer,
            }
        })),
    );
    for i in 0..4 {
        let message = format!("signature {i}");
        let signed = cluster
            .signer
            .sign(&cluster.pool, &ed, message.as_bytes(), None)
            .await
            .unwrap_or_else(|e| panic!("signature {i}: {e}"));
        assert_eq!(signed.signers, vec![1, 2], "signature {i}");
        verify(&ed, message.as_bytes(), &signed.signature);
    }

    // Bans are a node's word too: node 3 says it banned nodes 1 and 2 from OT-based protocols. ECDSA keeps each
    // pair apart, so nodes 1 and 2 still sign together.
    cluster.clear_fault(3);
    let k1 = new_key(&cluster, Algorithm::EcdsaSecp256k1).await;
    cluster.signer.set_banned([(3, 1), (3, 2)]);
    for i in 0..3 {
        let message = format!("ecdsa {i}");
        let signed = cluster
            .signer
            .sign(&cluster.pool, &k1, message.as_bytes(), None)
            .await
            .unwrap_or_else(|e| panic!("ECDSA signature {i}: {e}"));
        assert_eq!(signed.signers, vec![1, 2]);
        verify(&k1, message.as_bytes(), &signed.signature);
    }
    // With node 2 down, no pair is left: the error names the pairs kept apart.
    cluster.set_fault(2, Fault::Down);
    let error = cluster
        .signer
        .sign(&cluster.pool, &k1, b"no pair left", None)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("node 3 banned node 1"),
        "{error}"
    );
}

/// Issue 14, item 3, as a compromised coordinator would try it: it speaks the node API directly (here, the nodes'
/// `answer`, which is what a node serves to the coordinator's certificate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_cannot_bring_a_destroyed_key_back_from_backups() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let key = new_key(&cluster, Algorithm::Ed25519).await;
    let mut backups = Vec::new();
    for node in cluster.ids() {
        match cluster.node(node).answer(NodeRequest::Backup).await {
            NodeResponse::Backup(file) => backups.push((node, file)),
            other => panic!("node {node}: {other:?}"),
        }
    }
    // Destroyed (by the user), then destroyed again by the coordinator to clear the tombstones.
    for _ in 0..2 {
        for node in cluster.ids() {
            let answer = cluster
                .node(node)
                .answer(NodeRequest::DestroyKey { key_id: key.id })
                .await;
            assert!(
                matches!(answer, NodeResponse::Ok),
                "node {node}: {answer:?}"
            );
        }
    }
    // The old backups restored on every node: each node refuses, and keeps its tombstone.
    for (node, backup) in backups {
        let answer = cluster
            .node(node)
            .answer(NodeRequest::Restore {
                backup,
                keys: vec![key.id],
            })
            .await;
        match answer {
            NodeResponse::Error(e) => assert!(e.message.contains("destroyed"), "node {node}: {e}"),
            other => panic!("node {node} restored a destroyed key: {other:?}"),
        }
        let held = listed(&cluster, node).await;
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].state, KeyState::Destroyed, "node {node}");
        // Its audit log records the refused restore.
        let log = audit_lines(&cluster, node).await.join("\n");
        assert!(log.contains("\"op\":\"restore\""), "node {node}:\n{log}");
    }
    let error = cluster
        .signer
        .sign(&cluster.pool, &key, b"back from the dead?", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::Unavailable | ErrorKind::Forbidden | ErrorKind::NotFound
        ),
        "{error}"
    );
}

/// Issue 14, item 2, as a compromised coordinator would try it: "refresh" a deactivated key, handing the nodes a
/// description of it that says it is active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reshare_does_not_revive_a_deactivated_key() {
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let key = new_key(&cluster, Algorithm::Ed25519).await;
    deactivate_on_every_node(&cluster, &key).await;
    let mut doctored = key.clone();
    doctored.state = KeyState::Active;
    doctored.revision += 10;
    let target = reshare::Target {
        committee: vec![1, 2, 3],
        threshold: 2,
        avoid_dealers: Vec::new(),
        banned: Vec::new(),
        approval: None,
    };
    let done = reshare::reshare(&cluster.pool, &doctored, &target)
        .await
        .unwrap();
    assert_eq!(done.key.epoch, key.epoch + 1);
    for node in cluster.ids() {
        let held = listed(&cluster, node).await;
        assert_eq!(
            (held[0].epoch, held[0].state),
            (key.epoch + 1, KeyState::Deactivated),
            "node {node} took the coordinator's word for the key's state"
        );
    }
    let error = cluster
        .signer
        .sign(&cluster.pool, &done.key, b"revived?", None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("deactivated"), "{error}");
}

/// Issue 14, item 6: a compromised coordinator (speaking the node API with the coordinator's credentials) cannot
/// get an encryption out of a deactivated split-AES key by calling it a decryption. Every node refuses a
/// "decryption" at an α that no encryption made while the key was active (no receipt, or another blob's receipt),
/// names the reason, and records the refusal in its audit log; real blobs still decrypt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_cannot_encrypt_with_a_deactivated_key_by_calling_it_a_decryption() {
    use vhsm_core::KeyUse;
    use vhsm_protocols::split_aes::CiphertextBlob;
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let mut key = new_key(&cluster, Algorithm::SplitAes256).await;
    let blob = vhsm_coordinator::encryption::encrypt(&cluster.pool, &key, b"kept", b"aad")
        .await
        .unwrap();
    let parsed = CiphertextBlob::parse(&blob).unwrap();
    deactivate_on_every_node(&cluster, &key).await;
    key.state = KeyState::Deactivated;
    let fresh_alpha = [0x5a; 32];
    let evaluate = |alpha: [u8; 32], purpose: KeyUse, receipt: Vec<u8>| NodeRequest::Evaluate {
        key_id: key.id,
        epoch: key.epoch,
        purpose,
        alpha,
        receipt,
    };
    for node in cluster.ids() {
        for (request, expected) in [
            (
                evaluate(fresh_alpha, KeyUse::Decrypt, Vec::new()),
                "encryption receipt is missing",
            ),
            (
                evaluate(fresh_alpha, KeyUse::Decrypt, parsed.receipt.clone()),
                "encryption receipt does not verify",
            ),
            (
                evaluate(fresh_alpha, KeyUse::Encrypt, Vec::new()),
                "refuses to encrypt",
            ),
        ] {
            match cluster.node(node).answer(request).await {
                NodeResponse::Error(e) => {
                    assert_eq!(e.kind, ErrorKind::Forbidden, "node {node}: {e}");
                    assert!(
                        e.message.contains(expected) && e.message.contains(&format!("node {node}")),
                        "node {node}: {e}"
                    );
                }
                other => panic!("node {node} evaluated for the coordinator: {other:?}"),
            }
        }
        // The blob's own α with its receipt: a real decryption, evaluated.
        let answer = cluster
            .node(node)
            .answer(evaluate(
                parsed.alpha,
                KeyUse::Decrypt,
                parsed.receipt.clone(),
            ))
            .await;
        assert!(
            matches!(answer, NodeResponse::Partial(_)),
            "node {node}: {answer:?}"
        );
        let log = audit_lines(&cluster, node).await.join("\n");
        assert!(
            log.contains("encryption receipt is missing") && log.contains("does not verify"),
            "node {node}'s audit log does not record the refusals:\n{log}"
        );
    }
    let plain = vhsm_coordinator::encryption::decrypt(&cluster.pool, &key, &blob, b"aad")
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), b"kept");
}

/// Issue 14, item 11: a key's usage flags (PKCS#11 CKA_SIGN / CKA_ENCRYPT / CKA_DECRYPT = false) are enforced by
/// every node from its own record, not only by the PKCS#11 module: a client that bypasses the module, or the
/// coordinator itself, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_flags_are_enforced_by_every_node() {
    use vhsm_core::{usage, KeyUse};
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let create = |algorithm, attributes| {
        create_key(
            &cluster.pool,
            &cluster.registry,
            algorithm,
            "flags",
            attributes,
            KeyState::Active,
            &cluster.signer,
        )
    };
    let no_sign = create(Algorithm::Ed25519, vec![(usage::SIGN, vec![0])])
        .await
        .unwrap();
    let encrypt_only = create(Algorithm::SplitAes256, vec![(usage::DECRYPT, vec![0])])
        .await
        .unwrap();
    // Through the coordinator's services, which do not look at the flags: refused by the nodes.
    let e = cluster
        .signer
        .sign(&cluster.pool, &no_sign, b"not allowed", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    assert!(e.to_string().contains("usage flag is off"), "{e}");
    let blob = vhsm_coordinator::encryption::encrypt(&cluster.pool, &encrypt_only, b"in", b"")
        .await
        .unwrap();
    let e = vhsm_coordinator::encryption::decrypt(&cluster.pool, &encrypt_only, &blob, b"")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    // Asked directly, every node refuses and names itself.
    let parsed = vhsm_protocols::split_aes::CiphertextBlob::parse(&blob).unwrap();
    for node in cluster.ids() {
        match cluster
            .node(node)
            .answer(NodeRequest::Evaluate {
                key_id: encrypt_only.id,
                epoch: encrypt_only.epoch,
                purpose: KeyUse::Decrypt,
                alpha: parsed.alpha,
                receipt: parsed.receipt.clone(),
            })
            .await
        {
            NodeResponse::Error(e) => assert!(
                e.kind == ErrorKind::Forbidden
                    && e.message.contains(&format!("node {node} refuses")),
                "node {node}: {e}"
            ),
            other => panic!("node {node} decrypted with CKA_DECRYPT off: {other:?}"),
        }
    }
    // The coordinator's own check says the same before asking anyone.
    let e = vhsm_coordinator::error::Error::unless_permitted(&no_sign, KeyUse::Sign).unwrap_err();
    assert!(e.to_string().contains("CKA_SIGN"), "{e}");
}

/// Issue 14, item 12, as a compromised coordinator would try it: lower a key's threshold, or move it off a holder,
/// by asking the nodes for a reshare. Every node refuses without the security officer's approval of exactly that
/// committee and threshold, names itself and the reason, and records the refusal in its audit log; with the
/// approval the same change goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_cannot_lower_a_keys_threshold_or_move_it_without_the_officers_approval() {
    let cluster = MemoryCluster::start(4, 3).await.unwrap();
    let key = new_key(&cluster, Algorithm::Ed25519).await;
    assert_eq!((key.holders.clone(), key.threshold), (vec![1, 2, 3, 4], 3));
    let dir = tempfile::tempdir().unwrap();
    let stranger = ApprovalKey::generate_new(&dir.path().join("stranger.key")).unwrap();
    let reshare_to = |committee: &[u16], threshold: u16, approval| NodeRequest::Reshare {
        session: vhsm_protocols::SessionId([0x12; 32]),
        key: key.clone(),
        dealers: vec![1, 2, 3, 4],
        committee: committee.to_vec(),
        threshold,
        approval,
    };
    let attempts = [
        (
            reshare_to(&[1, 2, 3, 4], 2, None),
            "without the security officer's approval",
        ),
        (
            reshare_to(&[1, 2, 3, 4], 2, Some(stranger.approve(&[1, 2, 3, 4], 2))),
            "not signed by the security officer's pinned key",
        ),
        (
            reshare_to(&[1, 2, 3, 4], 2, Some(cluster.approve(&[1, 2, 3, 4], 3))),
            "approved holders [1, 2, 3, 4] at threshold 3, not this",
        ),
        (
            reshare_to(&[1, 2, 3], 3, None),
            "without the security officer's approval",
        ),
    ];
    for (request, expected) in attempts {
        for node in cluster.ids() {
            match cluster.node(node).answer(request.clone()).await {
                NodeResponse::Error(e) => {
                    assert_eq!(e.kind, ErrorKind::Forbidden, "node {node}: {e}");
                    assert!(
                        e.message
                            .contains(&format!("node {node} refuses to reshare key"))
                            && e.message.contains(expected),
                        "node {node}: {e}"
                    );
                }
                other => panic!("node {node} took part for the coordinator: {other:?}"),
            }
        }
    }
    // Nothing changed or was staged, and each node recorded its refusals.
    for node in cluster.ids() {
        let held = listed(&cluster, node).await;
        assert_eq!(
            (held[0].epoch, held[0].threshold, held[0].holders.clone()),
            (key.epoch, 3, vec![1, 2, 3, 4]),
            "node {node}"
        );
        match cluster.node(node).answer(NodeRequest::ListStaged).await {
            NodeResponse::Keys(staged) => assert!(staged.is_empty(), "node {node}: {staged:?}"),
            other => panic!("node {node}: {other:?}"),
        }
        let log = audit_lines(&cluster, node).await.join("\n");
        assert!(
            log.matches("refuses to reshare key").count() >= 4,
            "node {node}'s audit log lacks the refusals:\n{log}"
        );
    }
    // The coordinator's own path refuses before asking any node.
    let nodes = cluster.pool.clone();
    let error = reshare::reshare_key(
        &nodes,
        &cluster.registry,
        key.id,
        Vec::new(),
        &[4],
        Vec::new(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden, "{error}");
    // With the officer's approval the threshold is lowered.
    let target = reshare::Target {
        committee: vec![1, 2, 3, 4],
        threshold: 2,
        avoid_dealers: Vec::new(),
        banned: Vec::new(),
        approval: Some(cluster.approve(&[1, 2, 3, 4], 2)),
    };
    let done = reshare::reshare(&cluster.pool, &key, &target)
        .await
        .unwrap();
    assert_eq!((done.key.epoch, done.key.threshold), (key.epoch + 1, 2));
    let signed = cluster
        .signer
        .sign(&cluster.pool, &done.key, b"after", None)
        .await
        .unwrap();
    verify(&done.key, b"after", &signed.signature);
}

/// Found by review (issue 14): a node that committed a new key while the other holders missed the commit could
/// report the key in a state of its choosing (active, for a key created pre-active), and the coordinator used to
/// commit the others in that state. Its word alone is not enough: they are committed pre-active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_choose_the_state_a_new_key_is_committed_in_on_the_others() {
    use std::sync::{Arc, Mutex};
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let key = create_key(
        &cluster.pool,
        &cluster.registry,
        Algorithm::Ed25519,
        "made pre-active",
        Vec::new(),
        KeyState::PreActive,
        &cluster.signer,
    )
    .await
    .unwrap();
    // Node 1 says the key is active; nodes 2 and 3 seem to have missed its commit (they list it pending) and note
    // the state the coordinator commits them in.
    let id = key.id;
    cluster.set_fault(
        1,
        Fault::Lie(Arc::new(move |request, answer| match (request, answer) {
            (NodeRequest::ListKeys, NodeResponse::Keys(mut keys)) => {
                keys.iter_mut()
                    .filter(|k| k.id == id)
                    .for_each(|k| k.state = KeyState::Active);
                NodeResponse::Keys(keys)
            }
            (_, answer) => answer,
        })),
    );
    let commits: Arc<Mutex<Vec<(u16, KeyState)>>> = Arc::default();
    for node in [2, 3] {
        let commits = commits.clone();
        cluster.set_fault(
            node,
            Fault::Lie(Arc::new(move |request, answer| match (request, answer) {
                (NodeRequest::ListKeys, NodeResponse::Keys(mut keys)) => {
                    keys.iter_mut()
                        .filter(|k| k.id == id)
                        .for_each(|k| k.state = KeyState::Pending);
                    NodeResponse::Keys(keys)
                }
                (NodeRequest::CommitKey { key_id, state }, answer) if *key_id == id => {
                    commits.lock().unwrap().push((node, *state));
                    answer
                }
                (_, answer) => answer,
            })),
        );
    }
    let registry = vhsm_coordinator::registry::Registry::default();
    registry.refresh(&cluster.pool).await;
    let sent = commits.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.iter().all(|(_, state)| *state == KeyState::PreActive),
        "the holders that missed the commit were committed in the liar's state: {sent:?}"
    );
    // The honest nodes hold the key pre-active, as it was made, and refuse to sign with it.
    for node in [2, 3] {
        let held = listed(&cluster, node).await;
        assert_eq!(held[0].state, KeyState::PreActive, "node {node}");
    }
}

// ---- Issue 14, item 11: PINs checked and counted by the nodes ----

fn secret(pin: &str) -> vhsm_core::SecretBytes {
    vhsm_core::SecretBytes::new(pin.as_bytes().to_vec())
}

async fn login(
    pool: &vhsm_coordinator::nodes::NodePool,
    user: vhsm_core::PinUser,
    pin: &str,
) -> Result<(), vhsm_coordinator::Error> {
    vhsm_coordinator::token::check_pin(pool, user, &secret(pin)).await
}

/// The kind a login failed with (panics if it succeeded).
async fn refused(pool: &vhsm_coordinator::nodes::NodePool, pin: &str) -> ErrorKind {
    match login(pool, vhsm_core::PinUser::User, pin).await {
        Ok(()) => panic!("PIN {pin:?} was accepted"),
        Err(e) => e.kind(),
    }
}

/// A node whose answers to PIN checks are `lie` (its real answer thrown away: it checked and counted the PIN, as an
/// honest node, but says otherwise), and that reports `counters` as its PIN state if given.
fn lying_about_pins(
    lie: fn() -> NodeResponse,
    counters: Option<vhsm_wire::node_api::PinState>,
) -> Fault {
    Fault::Lie(std::sync::Arc::new(move |request, answer| {
        let inner = match request {
            NodeRequest::OnBehalf { request, .. } => request.as_ref(),
            other => other,
        };
        match (inner, counters) {
            (NodeRequest::CheckPin { .. }, _) => lie(),
            (NodeRequest::PinState, Some(counters)) => NodeResponse::PinState(counters),
            _ => answer,
        }
    }))
}

fn wire_refusal(kind: ErrorKind) -> NodeResponse {
    NodeResponse::Error(vhsm_wire::WireError::new(kind, "node 3 says no"))
}

/// (a) The counters are the nodes': a second coordinator (or this one restarted: it keeps nothing) sees the
/// failures counted through the first, and the PIN locks at the limit whichever coordinator asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_failures_are_kept_by_the_nodes_and_a_second_coordinator_enforces_them() {
    use vhsm_coordinator::token::pin_state;
    use vhsm_core::PinUser;
    use vhsm_testkit::memory::{MAX_PIN_FAILURES, SO_PIN, USER_PIN};
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let first = &cluster.pool;
    login(first, PinUser::User, USER_PIN).await.unwrap();
    for _ in 0..3 {
        assert_eq!(refused(first, "wrong-pin").await, ErrorKind::PinIncorrect);
    }
    let second = cluster.another_coordinator();
    let state = pin_state(&second).await;
    assert_eq!(
        (
            state.user_failures,
            state.user_locked,
            state.max_failures,
            state.reports
        ),
        (3, false, MAX_PIN_FAILURES, 3)
    );
    assert_eq!(
        refused(&second, "wrong-again").await,
        ErrorKind::PinIncorrect
    );
    // The fifth wrong PIN in a row, through the second coordinator: locked on every node.
    assert_eq!(refused(&second, "and-again").await, ErrorKind::PinLocked);
    // Even the right PIN, through either coordinator.
    for pool in [first, &second] {
        assert_eq!(refused(pool, USER_PIN).await, ErrorKind::PinLocked);
        let state = pin_state(pool).await;
        assert!(state.user_locked && !state.so_locked, "{state:?}");
    }
    // Locked on (at least) t nodes, each by its own counter. (A login returns once t nodes accepted, so the first
    // login's check on the third node may run beside the next check there: that node is not asserted.)
    let mut locked = 0;
    for node in cluster.ids() {
        match cluster.node(node).answer(NodeRequest::PinState).await {
            NodeResponse::PinState(s) => locked += usize::from(s.user.locked),
            other => panic!("node {node}: {other:?}"),
        }
    }
    assert!(locked >= 2, "locked on {locked} nodes");
    // The security officer's PIN is counted apart, and still logs in.
    login(&second, PinUser::SecurityOfficer, SO_PIN)
        .await
        .unwrap();
}

/// (c) With n = 3 and t = 2, one lying node can neither let a wrong PIN in nor keep the right one out, and its
/// reported counters do not change the token's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lying_node_neither_lets_a_wrong_pin_in_nor_keeps_the_right_pin_out() {
    use vhsm_coordinator::token::pin_state;
    use vhsm_core::PinUser;
    use vhsm_testkit::memory::USER_PIN;
    use vhsm_wire::node_api::{PinCounter, PinState};
    let cluster = MemoryCluster::start(3, 2).await.unwrap();

    // Node 3 accepts every PIN, and reports nothing counted.
    let clean = PinState {
        user: PinCounter::default(),
        security_officer: PinCounter::default(),
        max_failures: 1000,
    };
    cluster.set_fault(3, lying_about_pins(|| NodeResponse::Ok, Some(clean)));
    for _ in 0..3 {
        assert_eq!(
            refused(&cluster.pool, "wrong-pin").await,
            ErrorKind::PinIncorrect
        );
    }
    let state = pin_state(&cluster.pool).await;
    assert_eq!(
        (state.user_failures, state.max_failures),
        (3, 5),
        "{state:?}"
    );
    login(&cluster.pool, PinUser::User, USER_PIN).await.unwrap();

    // Node 3 refuses every PIN (as wrong, or as locked), and claims the PINs are locked: the right PIN still logs
    // in, and the token does not show them locked.
    let locked = PinState {
        user: PinCounter {
            failures: 99,
            locked: true,
        },
        security_officer: PinCounter {
            failures: 99,
            locked: true,
        },
        max_failures: 1,
    };
    for lie in [
        (|| wire_refusal(ErrorKind::PinIncorrect)) as fn() -> NodeResponse,
        || wire_refusal(ErrorKind::PinLocked),
    ] {
        cluster.set_fault(3, lying_about_pins(lie, Some(locked)));
        login(&cluster.pool, PinUser::User, USER_PIN).await.unwrap();
        let state = pin_state(&cluster.pool).await;
        assert!(
            !state.user_locked && !state.so_locked && state.user_failures == 0,
            "{state:?}"
        );
    }

    // The promise needs t honest nodes up: with node 2 down and node 3 refusing, node 1 alone accepts, and the
    // login is refused (two nodes answered, neither t of them "locked": `PinIncorrect`).
    cluster.set_fault(2, Fault::Down);
    let e = login(&cluster.pool, PinUser::User, USER_PIN)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PinIncorrect, "{e}");
    assert!(e.to_string().contains("accepted by nodes [1]"), "{e}");
    cluster.clear_fault(2);
    cluster.clear_fault(3);
    login(&cluster.pool, PinUser::User, USER_PIN).await.unwrap();
}

/// Too few nodes answering: `Unavailable`, naming them; with t up, logins work and wrong PINs are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_check_needs_the_threshold_of_nodes_to_answer() {
    use vhsm_core::PinUser;
    use vhsm_testkit::memory::USER_PIN;
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    cluster.set_fault(1, Fault::Down);
    login(&cluster.pool, PinUser::User, USER_PIN).await.unwrap();
    cluster.set_fault(2, Fault::Garbage);
    let e = login(&cluster.pool, PinUser::User, USER_PIN)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(e.nodes(), &[1, 2], "{e}");
    assert!(e.to_string().contains("too few nodes answered"), "{e}");
    // The token's state is unknown then (shown as nothing counted), not made up.
    let state = vhsm_coordinator::token::pin_state(&cluster.pool).await;
    assert_eq!((state.reports, state.user_failures), (1, 0));
    cluster.clear_fault(2);
    assert_eq!(
        refused(&cluster.pool, "wrong-pin").await,
        ErrorKind::PinIncorrect
    );
    cluster.clear_fault(1);
    // Node 1 missed the wrong PIN: its count is 0, the others' 1; t = 2 nodes support 1.
    assert_eq!(
        vhsm_coordinator::token::pin_state(&cluster.pool)
            .await
            .user_failures,
        1
    );
}

/// (d) A compromised coordinator holds no PIN hash: it can only ask the nodes, and each counts the guesses and
/// locks after the limit — after which the right PIN is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_guessing_pins_is_counted_and_locked_out_by_every_node() {
    use vhsm_core::PinUser;
    use vhsm_testkit::memory::{MAX_PIN_FAILURES, USER_PIN};
    let cluster = MemoryCluster::start(3, 2).await.unwrap();
    let mut answered_wrong = 0;
    for node in cluster.ids() {
        // Different guesses at each node: every node counts its own.
        for guess in 0..MAX_PIN_FAILURES + 3 {
            let answer = cluster
                .pool
                .call(
                    node,
                    &NodeRequest::CheckPin {
                        user: PinUser::User,
                        pin: secret(&format!("guess-{node}-{guess}")),
                    },
                    Duration::from_secs(10),
                )
                .await;
            match answer {
                Err(vhsm_coordinator::nodes::NodeCallError::Refused { error, .. }) => {
                    match error.kind {
                        ErrorKind::PinIncorrect => answered_wrong += 1,
                        ErrorKind::PinLocked => {}
                        other => panic!("node {node}: {other:?} {error}"),
                    }
                }
                other => panic!("node {node} took a guess: {other:?}"),
            }
        }
    }
    // Each node hashed at most MAX_PIN_FAILURES guesses (the last one locking), then refused unchecked.
    assert_eq!(answered_wrong, 3 * (MAX_PIN_FAILURES - 1));
    assert_eq!(refused(&cluster.pool, USER_PIN).await, ErrorKind::PinLocked);
}
