//! Real processes: share nodes join and leave a running cluster through `vhsm node add|remove` and `vhsm cluster
//! set-threshold`; new keys use the membership; the membership survives restarts of the coordinator and of a node;
//! only the security officer changes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use common::{free_port, run_vhsm, run_vhsm_env, verify_ed25519, KillOnDrop, ProcessCluster};
use vhsm_client::ClientError;
use vhsm_core::Algorithm;
use vhsm_wire::ErrorKind;

const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// `vhsm --cluster DIR ARGS…`.
fn vhsm_in(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--cluster", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    run_vhsm(&all, CLI_TIMEOUT)
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn member_ids(membership: &serde_json::Value) -> Vec<u64> {
    membership["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect()
}

fn service_error(result: Result<impl std::fmt::Debug, ClientError>) -> vhsm_wire::WireError {
    match result {
        Err(ClientError::Service(e)) => e,
        other => panic!("expected a service error, got {other:?}"),
    }
}

async fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_leave_a_running_cluster_and_the_membership_survives_restarts() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    let dir = cluster.path().to_path_buf();

    // Only the security officer changes the membership; any logged-in user reads it.
    let user = cluster.client().await;
    let m = user.membership().await.unwrap();
    assert_eq!((m.version, m.ids(), m.threshold), (0, vec![1, 2, 3], 2));
    for e in [
        service_error(user.add_node(4, "127.0.0.1:9", None).await),
        service_error(user.remove_node(3, None, None).await),
        service_error(user.set_threshold(3, None).await),
        // Clearing a node's ban (a finding of cheating) is the security officer's too.
        service_error(user.unban(3).await),
    ] {
        assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
        assert!(e.message.contains("security officer"), "{e}");
    }
    let anonymous = cluster.anonymous_client().await;
    assert_eq!(
        service_error(anonymous.set_threshold(3, None).await).kind,
        ErrorKind::NotLoggedIn
    );
    assert_eq!(
        service_error(anonymous.membership().await).kind,
        ErrorKind::NotLoggedIn
    );

    // `vhsm node add`: the command prepares node 4 and waits; the operator (this test) starts it.
    let address4 = format!("127.0.0.1:{}", free_port());
    let add = {
        let (dir, address) = (dir.clone(), address4.clone());
        std::thread::spawn(move || {
            vhsm_in(
                &dir,
                &["node", "add", "--address", &address, "--wait", "40"],
            )
        })
    };
    let config4 = cluster.node_dir(4).join("node.toml");
    wait_for("node 4's node.toml", Duration::from_secs(20), || {
        config4.exists()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !cluster.node_dir(4).join("ca.key").exists(),
        "the CA key never goes into a node's directory"
    );
    cluster.start_node(4);
    let (ok, out, err) = add.join().unwrap();
    assert!(ok, "node add failed:\n{out}\n{err}");
    assert!(out.contains("node 4 added"), "{out}");
    let cluster_toml = std::fs::read_to_string(dir.join("cluster.toml")).unwrap();
    assert!(cluster_toml.contains(&address4), "{cluster_toml}");
    // The nodes check the PINs: node 4 got the members' PIN hashes (issue 14, item 11).
    let token = |id: u16| {
        vhsm_node::NodeConfig::load(&cluster.node_config(id))
            .unwrap()
            .token
            .expect("a [token] section")
    };
    assert_eq!(token(4), token(1));

    // The coordinator reaches all four, and new keys are shared among them.
    let (ok, out, err) = vhsm_in(&dir, &["--json", "status"]);
    assert!(ok, "{err}");
    let status = json(&out);
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{out}");
    assert!(nodes.iter().all(|n| n["reachable"] == true), "{out}");
    let key = user.create_key(Algorithm::Ed25519, "four").await.unwrap();
    assert_eq!((key.holders.clone(), key.threshold), (vec![1, 2, 3, 4], 2));
    let (sig, _) = user.sign(key.id, b"with four nodes", None).await.unwrap();
    assert!(verify_ed25519(&key.public_key, b"with four nodes", &sig));

    // The threshold: 1 and n+1 are refused, 3 is taken.
    for bad in ["1", "5"] {
        let (ok, out, err) = vhsm_in(&dir, &["cluster", "set-threshold", bad]);
        assert!(!ok, "set-threshold {bad} succeeded:\n{out}");
        assert!(err.contains(&format!("threshold {bad}")), "{err}");
    }
    let (ok, out, err) = vhsm_in(&dir, &["cluster", "set-threshold", "3"]);
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = vhsm_in(&dir, &["--json", "cluster", "members"]);
    assert!(ok, "{err}");
    let members = json(&out);
    assert_eq!(
        (members["version"].as_u64(), members["threshold"].as_u64()),
        (Some(2), Some(3)),
        "{out}"
    );
    assert_eq!(member_ids(&members), vec![1, 2, 3, 4]);

    // set-threshold reshared the key to 3-of-4 (same public key, still signs).
    let reshared = user.get_key(key.id).await.unwrap();
    assert_eq!((reshared.threshold, reshared.epoch), (3, 1));
    assert_eq!(reshared.public_key, key.public_key);
    let (sig, _) = user.sign(key.id, b"3-of-4", None).await.unwrap();
    assert!(verify_ed25519(&key.public_key, b"3-of-4", &sig));

    // A removal the cluster cannot afford is refused at once, before any key moves: threshold 4 with the three
    // nodes that would remain.
    let so = cluster.anonymous_client().await;
    let so_pin = std::fs::read_to_string(dir.join("client").join("so.pin")).unwrap();
    so.login(
        vhsm_core::PinUser::SecurityOfficer,
        so_pin.trim().as_bytes(),
    )
    .await
    .unwrap();
    let refused = service_error(so.remove_node(4, Some(4), None).await);
    assert_eq!(refused.kind, ErrorKind::BadRequest, "{refused}");
    assert!(refused.message.contains("threshold 4"), "{refused}");
    assert_eq!(so.get_key(key.id).await.unwrap().epoch, 1, "no key moved");

    // Issue 15, item 6: repairing a node that is not a member is refused, not a silent success.
    let (ok, out, err) = vhsm_in(&dir, &["node", "repair", "9"]);
    assert!(
        !ok && err.contains("node 9 is not a member"),
        "{out}\n{err}"
    );

    // An approval signed by any key but the one `vhsm init` pinned in every node.toml: the coordinator starts the
    // removal, every node refuses to move the key, and node 4 stays (issue 14, item 12).
    let stranger = dir.join("stranger-approval.key");
    vhsm_client::approval::ApprovalKey::generate_new(&stranger).unwrap();
    let (ok, out, err) = run_vhsm_env(
        &["--cluster", dir.to_str().unwrap(), "node", "remove", "4"],
        &[("VHSM_SO_APPROVAL_KEY", stranger.to_str().unwrap())],
        CLI_TIMEOUT,
    );
    assert!(
        !ok,
        "a removal with a stranger's approval succeeded:\n{out}"
    );
    let all = format!("{out}\n{err}");
    assert!(
        all.contains("not signed by the security officer's pinned key")
            && all.contains("node 4 was not removed"),
        "{all}"
    );
    let kept = so.get_key(key.id).await.unwrap();
    assert_eq!(
        (kept.epoch, kept.holders.clone()),
        (1, vec![1, 2, 3, 4]),
        "no key moved"
    );
    assert_eq!(so.membership().await.unwrap().ids(), vec![1, 2, 3, 4]);

    // A node that holds nothing: added with --start, then removed.
    let address5 = format!("127.0.0.1:{}", free_port());
    let (ok, out, err) = vhsm_in(
        &dir,
        &["--json", "node", "add", "--address", &address5, "--start"],
    );
    assert!(ok, "node add --start failed:\n{out}\n{err}");
    let added = json(&out);
    let _node5 = KillOnDrop(i32::try_from(added["pid"].as_u64().unwrap()).unwrap());
    assert_eq!(added["added"].as_u64(), Some(5), "{out}");
    assert_eq!(member_ids(&added["membership"]), vec![1, 2, 3, 4, 5]);
    let (ok, out, err) = vhsm_in(&dir, &["--json", "node", "remove", "5"]);
    assert!(ok, "node remove 5 failed:\n{out}\n{err}");
    let removed = json(&out);
    assert_eq!(member_ids(&removed["membership"]), vec![1, 2, 3, 4]);
    assert_eq!(removed["membership"]["version"].as_u64(), Some(4));
    let cluster_toml = std::fs::read_to_string(dir.join("cluster.toml")).unwrap();
    assert!(!cluster_toml.contains(&address5), "{cluster_toml}");
    // The node that left is told so (and does not adopt a membership without itself).
    let log5 = dir.join("logs").join("node-5.log");
    wait_for("node 5 told it left", Duration::from_secs(5), || {
        std::fs::read_to_string(&log5)
            .unwrap_or_default()
            .contains("NOT A MEMBER")
    })
    .await;

    // A node is added only if its certificate says it is that node: node 5 still answers at its address.
    let (ok, out, err) = vhsm_in(
        &dir,
        &[
            "node",
            "add",
            "--address",
            &address5,
            "--id",
            "6",
            "--wait",
            "20",
        ],
    );
    assert!(!ok, "node 5 added as node 6:\n{out}");
    assert!(err.contains("is not node 6"), "{err}");

    // The coordinator restarts with the membership it saved, not coordinator.toml's three nodes.
    cluster.kill("coordinator");
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let user = cluster.client().await;
    let m = user.membership().await.unwrap();
    assert_eq!((m.version, m.ids(), m.threshold), (4, vec![1, 2, 3, 4], 3));
    assert_eq!(user.status().await.unwrap().nodes.len(), 4);

    // Node 1 restarts with its old node.toml (peers 2 and 3): it takes its peers from the membership it stored,
    // and runs a DKG with node 4.
    cluster.kill("node-1");
    // The other nodes drop their connections to the killed process after the idle timeout; until then their
    // messages to node 1 would go to a connection nobody reads.
    tokio::time::sleep(vhsm_wire::tls::IDLE_TIMEOUT + Duration::from_millis(500)).await;
    cluster.start_node(1);
    cluster.wait_all_reachable().await;
    assert!(
        cluster
            .read_log("node-1")
            .contains("peers from the stored cluster membership"),
        "{}",
        cluster.read_log("node-1")
    );
    let key = user.create_key(Algorithm::Ed25519, "after").await.unwrap();
    assert_eq!((key.holders.clone(), key.threshold), (vec![1, 2, 3, 4], 3));
    let (sig, signers) = user.sign(key.id, b"after restarts", None).await.unwrap();
    assert_eq!(signers.len(), 3);
    assert!(verify_ed25519(&key.public_key, b"after restarts", &sig));
}
