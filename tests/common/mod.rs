//! What the integration tests share: the process cluster of `vhsm-testkit`, and checks that need the crates under
//! test (signatures verified independently, a pool with the coordinator's identity).
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::{path::PathBuf, time::Duration};

use vhsm_client::Client;
pub use vhsm_testkit::process::{
    as_coordinator, free_port, listed, run_vhsm, run_vhsm_env, KillOnDrop, ProcessCluster,
};

/// The `vhsm` binary cargo built for these tests.
pub fn vhsm() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vhsm"))
}

/// The newest libvhsm_pkcs11.so cargo built for this test (the package's dev-dependency on vhsm-pkcs11).
pub fn module_path() -> PathBuf {
    vhsm_testkit::process::module_path().unwrap()
}

/// Signs, retrying for up to 5 s while the coordinator still avoids nodes that failed a moment ago (it passes
/// over a failed node for a few seconds, and retries it when it must). The last error if none succeeded.
pub async fn sign_with_retries(
    client: &Client,
    key_id: vhsm_core::KeyId,
    message: &[u8],
) -> Result<(Vec<u8>, Vec<u16>), String> {
    let mut last = Err("not tried".to_string());
    for _ in 0..20 {
        match client.sign(key_id, message, None).await {
            Ok(signed) => return Ok(signed),
            Err(e) => last = Err(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

/// Verifies an Ed25519 signature independently of vHSM.
pub use vhsm_testkit::load::verify_ed25519;

/// A client of `cluster` logged in as the security officer (reshares, membership changes).
pub async fn so_client(cluster: &ProcessCluster) -> Client {
    let client = cluster.anonymous_client().await;
    let pin = std::fs::read_to_string(cluster.path().join("client").join("so.pin")).unwrap();
    client
        .login(vhsm_core::PinUser::SecurityOfficer, pin.trim().as_bytes())
        .await
        .unwrap();
    client
}

/// Copies directory `from` (recursively) to `to`, which it creates.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of node `id`'s whole data directory (store and audit log, consistent with each other), taken while the
/// node is stopped, after waiting long enough for it to anchor its audit head in its store; the node is started
/// again and the cluster reachable when this returns.
pub async fn copy_node_data(cluster: &mut ProcessCluster, id: u16) -> PathBuf {
    tokio::time::sleep(2 * vhsm_node::node::ANCHOR_INTERVAL).await;
    let data = cluster.node_dir(id).join("data");
    let copy = cluster.path().join(format!("node-{id}-data.copy"));
    cluster.kill(&format!("node-{id}"));
    copy_dir(&data, &copy);
    cluster.start_node(id);
    cluster.wait_all_reachable().await;
    copy
}

/// Stops node `id`, puts its data directory back to `copy` (see [`copy_node_data`]) and starts it (not waiting for
/// it: it may refuse to start).
pub fn put_back_node_data(cluster: &mut ProcessCluster, id: u16, copy: &std::path::Path) {
    let data = cluster.node_dir(id).join("data");
    cluster.kill(&format!("node-{id}"));
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(copy, &data);
    cluster.start_node(id);
}
