//! Real processes: the token's PIN (login required, wrong PIN, lockout), key metadata updates, key destruction on
//! every holder, and certificate/data objects kept on the nodes — what the PKCS#11 module builds on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::ProcessCluster;
use vhsm_client::ClientError;
use vhsm_core::{Algorithm, PinUser};
use vhsm_wire::ErrorKind;

fn kind(e: &ClientError) -> Option<ErrorKind> {
    match e {
        ClientError::Service(w) => Some(w.kind),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_is_required_checked_and_locks_after_the_limit() {
    let cluster = ProcessCluster::start(3, 2).await;
    let anonymous = cluster.anonymous_client().await;
    let info = anonymous.token_info().await.unwrap();
    assert_eq!(info.label, "vHSM");
    assert!(!info.user_pin_locked);

    // Without login: public reads work, key use and changes do not.
    anonymous.list_keys().await.unwrap();
    let err = anonymous
        .create_key(Algorithm::Ed25519, "nope")
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotLoggedIn), "{err}");

    let user = cluster.client().await;
    let key = user.create_key(Algorithm::Ed25519, "pin").await.unwrap();
    let err = anonymous.sign(key.id, b"x", None).await.unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotLoggedIn), "{err}");

    // Wrong PINs: incorrect four times, locked at the fifth; then even the right PIN is refused.
    let pin = cluster.user_pin();
    for _ in 0..4 {
        let err = anonymous
            .login(PinUser::User, b"00000000")
            .await
            .unwrap_err();
        assert_eq!(kind(&err), Some(ErrorKind::PinIncorrect), "{err}");
    }
    let err = anonymous
        .login(PinUser::User, b"00000000")
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::PinLocked), "{err}");
    let err = anonymous
        .login(PinUser::User, pin.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::PinLocked), "{err}");
    assert!(anonymous.token_info().await.unwrap().user_pin_locked);
    // The connection logged in before the lock keeps working.
    user.sign(key.id, b"still logged in", None).await.unwrap();
}

/// Issue 14, item 11: the failure counters are the nodes', kept in their sealed stores. A restarted coordinator (or
/// another one) and restarted nodes see the same count, and the PIN locks at the limit whichever coordinator
/// counted the failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_failures_are_counted_by_the_nodes_and_survive_coordinator_and_node_restarts() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    let wrong = |client: vhsm_client::Client| async move {
        let err = client.login(PinUser::User, b"00000000").await.unwrap_err();
        (client, err)
    };
    let mut client = cluster.anonymous_client().await;
    for _ in 0..2 {
        let (c, err) = wrong(client).await;
        client = c;
        assert_eq!(kind(&err), Some(ErrorKind::PinIncorrect), "{err}");
    }
    assert_eq!(client.token_info().await.unwrap().user_pin_failures, 2);

    // A new coordinator process: it counts nothing itself, the nodes still say 2.
    cluster.kill("coordinator");
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let client = cluster.anonymous_client().await;
    let info = client.token_info().await.unwrap();
    assert_eq!(
        (info.user_pin_failures, info.user_pin_locked),
        (2, false),
        "{info:?}"
    );

    // Every node restarts: each kept its counter on disk.
    for id in 1..=3 {
        cluster.kill(&format!("node-{id}"));
    }
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.wait_all_reachable().await;
    assert_eq!(client.token_info().await.unwrap().user_pin_failures, 2);

    // Two more wrong PINs through this coordinator, the fifth through yet another one: locked.
    let mut client = client;
    for _ in 0..2 {
        let (c, err) = wrong(client).await;
        client = c;
        assert_eq!(kind(&err), Some(ErrorKind::PinIncorrect), "{err}");
    }
    cluster.kill("coordinator");
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let (client, err) = wrong(cluster.anonymous_client().await).await;
    assert_eq!(kind(&err), Some(ErrorKind::PinLocked), "{err}");
    let err = client
        .login(PinUser::User, cluster.user_pin().trim().as_bytes())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::PinLocked), "{err}");
    let info = client.token_info().await.unwrap();
    assert!(info.user_pin_locked && !info.so_pin_locked, "{info:?}");
}

/// Issue 14, item 11: `vhsm init` gives the PIN hashes to the nodes, which check the PINs, and none to the
/// coordinator (whose credentials alone then allow no offline guessing).
#[test]
fn vhsm_init_writes_the_pin_hashes_into_every_node_toml_and_none_into_the_coordinators() {
    let cluster = ProcessCluster::init(3, 2);
    let coordinator = std::fs::read_to_string(cluster.coordinator_config()).unwrap();
    assert!(
        !coordinator.contains("argon2") && !coordinator.contains("pin_hash"),
        "{coordinator}"
    );
    assert!(coordinator.contains("[token]") && coordinator.contains("label"));
    let sections: Vec<String> = (1..=3)
        .map(|id| {
            let text = std::fs::read_to_string(cluster.node_config(id)).unwrap();
            let start = text
                .find("\n[token]\n")
                .expect("a [token] section in node.toml")
                + 1;
            let section = &text[start..];
            let end = section[1..].find("\n[").map_or(section.len(), |e| e + 1);
            section[..end].to_string()
        })
        .collect();
    for section in &sections {
        assert!(
            section.contains("user_pin_hash = \"$argon2id$")
                && section.contains("so_pin_hash = \"$argon2id$")
                && section.contains("max_pin_failures = 5"),
            "{section}"
        );
    }
    assert!(sections.iter().all(|s| s == &sections[0]), "{sections:?}");
    // And they are the hashes of the PINs `vhsm init` wrote for the client.
    let token = vhsm_node::NodeConfig::load(&cluster.node_config(2))
        .unwrap()
        .token
        .unwrap();
    let pin =
        |name: &str| std::fs::read_to_string(cluster.path().join("client").join(name)).unwrap();
    assert!(vhsm_node::pins::verify(
        &token.user_pin_hash,
        pin("user.pin").trim().as_bytes()
    ));
    assert!(vhsm_node::pins::verify(
        &token.so_pin_hash,
        pin("so.pin").trim().as_bytes()
    ));
    assert!(!vhsm_node::pins::verify(
        &token.user_pin_hash,
        pin("so.pin").trim().as_bytes()
    ));
    // An old coordinator.toml that still holds the hashes is refused, saying where they go now.
    let old = coordinator.replace(
        "[token]\n",
        &format!("[token]\nuser_pin_hash = \"{}\"\n", token.user_pin_hash),
    );
    let path = cluster.coordinator_config();
    std::fs::write(&path, old).unwrap();
    let e = vhsm_coordinator::CoordinatorConfig::load(&path).unwrap_err();
    assert!(
        e.contains("user_pin_hash")
            && e.contains("node.toml")
            && e.contains("checked by the nodes"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_updated_and_destroyed_on_every_holder_objects_are_kept() {
    let cluster = ProcessCluster::start(3, 2).await;
    let client = cluster.client().await;

    // Attributes kept with a key, and changed.
    let key = client
        .create_key_with(
            Algorithm::Ed25519,
            "with-id",
            vec![(0x102, vec![0xab, 0xcd])],
        )
        .await
        .unwrap();
    assert_eq!(
        client.get_key(key.id).await.unwrap().attributes,
        vec![(0x102, vec![0xab, 0xcd])]
    );
    let updated = client
        .update_key(key.id, "renamed", vec![(0x102, vec![1])])
        .await
        .unwrap();
    assert_eq!((updated.label.as_str(), updated.revision), ("renamed", 1));
    let listed = client.list_keys().await.unwrap();
    assert_eq!(
        listed.iter().find(|k| k.id == key.id).unwrap().label,
        "renamed"
    );

    // Destroyed: gone from every holder; signing refused.
    client.destroy_key(key.id).await.unwrap();
    assert!(client
        .list_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.id != key.id));
    let err = client
        .sign(key.id, b"after destroy", None)
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotFound), "{err}");

    // Objects: create, list, update, destroy; private ones hidden from anonymous connections.
    let cert = client
        .create_object(vec![(0, vec![1]), (0x11, b"DER".to_vec())])
        .await
        .unwrap();
    let secret = client
        .create_object(vec![
            (0, vec![0]),
            (0x2, vec![1]),
            (0x11, b"private data".to_vec()),
        ])
        .await
        .unwrap();
    let all = client.list_objects().await.unwrap();
    assert_eq!(all.len(), 2);
    let anonymous = cluster.anonymous_client().await;
    let public: Vec<_> = anonymous
        .list_objects()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(public, vec![cert.id]);
    let err = anonymous.destroy_object(cert.id).await.unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotLoggedIn), "{err}");

    let changed = client
        .update_object(cert.id, vec![(0, vec![1]), (0x11, b"NEW".to_vec())])
        .await
        .unwrap();
    assert_eq!(changed.version, 2);
    client.destroy_object(secret.id).await.unwrap();
    let all = client.list_objects().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].attributes,
        vec![(0, vec![1]), (0x11, b"NEW".to_vec())]
    );
    let err = client.destroy_object(secret.id).await.unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotFound), "{err}");
}
