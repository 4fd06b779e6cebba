//! Sealed nodes (each node's storage key under its own unseal secret, delivered end to end), changing a node's
//! secret, a compromised coordinator relaying unseals, and a node's backup and restore: real processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{run_vhsm_env, sign_with_retries, verify_ed25519, ProcessCluster};
use vhsm_client::Client;
use vhsm_coordinator::nodes::{NodeCallError, NodePool};
use vhsm_core::Algorithm;
use vhsm_node::{
    seal::{SealError, SealedKeyFile},
    store::ShareStore,
    unseal::UnsealPublicKey,
};
use vhsm_wire::{
    client_api::ClientRequest,
    node_api::{NodeRequest, NodeResponse},
    ErrorKind,
};

/// Node `id`'s unseal secret, as `vhsm init --seal` wrote it on the operator's side.
fn secret(cluster: &ProcessCluster, id: u16) -> String {
    let text = std::fs::read_to_string(secret_file(cluster, id)).unwrap();
    text.strip_suffix('\n').unwrap().to_string()
}

fn secret_file(cluster: &ProcessCluster, id: u16) -> PathBuf {
    cluster
        .path()
        .join("unseal")
        .join(format!("node-{id}.secret"))
}

/// Starts node `id` unsealed at start: its own secret in `VHSM_NODE_PASSPHRASE` (an unattended start on its
/// machine).
fn start_unsealed(cluster: &mut ProcessCluster, id: u16) {
    let secret = secret(cluster, id);
    cluster.start_node_with_env(id, &[("VHSM_NODE_PASSPHRASE", &secret)]);
}

/// `vhsm --cluster DIR ARGS` with `env`; (success, stdout, stderr).
fn vhsm(cluster: &ProcessCluster, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut all = vec!["--cluster", cluster.path().to_str().unwrap()];
    all.extend_from_slice(args);
    run_vhsm_env(&all, env, Duration::from_secs(60))
}

/// `vhsm node unseal 3 --secret-file <node 1's secret>`: refused as the wrong secret.
fn unseal_3_with_node_1s_secret(cluster: &ProcessCluster) {
    let node_1_secret = secret_file(cluster, 1);
    let (ok, _, err) = vhsm(
        cluster,
        &[
            "node",
            "unseal",
            "3",
            "--secret-file",
            node_1_secret.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok && err.contains("wrong unseal secret"), "{err}");
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
    let mut cluster = ProcessCluster::init_with(3, 2, &["--seal"], &[]);
    // Every node its own secret, on the operator's side only (mode 0600), and its unseal key pair.
    let secrets: Vec<String> = (1..=3).map(|id| secret(&cluster, id)).collect();
    assert!(secrets[0] != secrets[1] && secrets[1] != secrets[2] && secrets[0] != secrets[2]);
    for id in 1..=3u16 {
        let dir = cluster.node_dir(id);
        assert!(dir.join("sealed.key").exists());
        assert!(dir.join("unseal.key").exists());
        assert!(!dir.join("storage.key").exists());
        assert!(cluster
            .path()
            .join("unseal")
            .join(format!("node-{id}.pub"))
            .exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&secret_file(&cluster, id)), 0o600);
            assert_eq!(mode(&dir.join("unseal.key")), 0o600);
            assert_eq!(mode(&cluster.path().join("unseal")), 0o700);
        }
        start_unsealed(&mut cluster, id);
    }
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::Ed25519, "sealed")
        .await
        .unwrap();

    // Node 3 restarted without its secret: sealed.
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

    // A wrong secret: refused, still sealed, data intact.
    let (ok, _, err) = vhsm(
        &cluster,
        &["node", "unseal", "3"],
        &[("VHSM_NODE_PASSPHRASE", "not the secret")],
    );
    assert!(
        !ok && err.contains("wrong unseal secret") && err.contains("VHSM_NODE_PASSPHRASE"),
        "{err}"
    );
    wait_sealed(&cluster, 3, true).await;
    // Another node's secret does not open it either.
    unseal_3_with_node_1s_secret(&cluster);
    wait_sealed(&cluster, 3, true).await;

    // Its own secret (from D/unseal/node-3.secret): it serves, and signs with node 2.
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "3"], &[]);
    assert!(ok && out.contains("node 3 unsealed"), "{out}\n{err}");
    wait_sealed(&cluster, 3, false).await;
    let (signature, signers) = sign_with_retries(&client, key.id, b"after unseal")
        .await
        .unwrap();
    assert!(signers.contains(&3), "{signers:?}");
    assert!(verify_ed25519(&key.public_key, b"after unseal", &signature));
    // Unsealing an unsealed node sends nothing.
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "3"], &[]);
    assert!(ok && out.contains("not sealed"), "{out}\n{err}");
    drop(client);

    // Nothing in the clear under any node's or the coordinator's directory: no unseal secret (of any node), no
    // storage key, no share.
    cluster.kill("node-2");
    cluster.kill("node-3");
    let mut elsewhere = Vec::new();
    files_under(&cluster.path().join("coordinator"), &mut elsewhere);
    elsewhere.push(cluster.log("coordinator"));
    elsewhere.extend((1..=3).map(|id| cluster.log(&format!("node-{id}"))));
    for id in 1..=3u16 {
        let dir = cluster.node_dir(id);
        let own = &secrets[usize::from(id - 1)];
        let storage_key = SealedKeyFile::load(&dir.join("sealed.key"), own.as_bytes()).unwrap();
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
        for file in files.iter().chain(&elsewhere) {
            let bytes = std::fs::read(file).unwrap();
            for s in &secrets {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "an unseal secret in {}",
                    file.display()
                );
            }
            assert_absent(&bytes, &raw_key, "storage key", file);
            assert_absent(&bytes, &share, "share", file);
        }
    }
    // Each secret opens its own node's sealed.key only.
    for (id, other) in [(1u16, 2u16), (2, 3), (3, 1)] {
        let theirs = cluster.node_dir(other).join("sealed.key");
        assert!(
            matches!(
                SealedKeyFile::load(&theirs, secrets[usize::from(id - 1)].as_bytes()),
                Err(SealError::WrongPassphrase)
            ),
            "node {id}'s secret opened node {other}'s sealed.key"
        );
    }
}

/// How long the compromised coordinator waits for a node's answer.
const EVIL_TIMEOUT: Duration = Duration::from_secs(30);

/// A challenge from node `id`, asked by the compromised coordinator.
async fn challenge_of(pool: &NodePool, id: u16) -> [u8; 32] {
    match pool
        .call(id, &NodeRequest::UnsealChallenge, EVIL_TIMEOUT)
        .await
    {
        Ok(NodeResponse::UnsealChallenge { challenge, .. }) => challenge,
        other => panic!("node {id} gave no challenge: {other:?}"),
    }
}

/// Whether node `id` says it is sealed (waiting for it to answer, after a restart).
async fn sealed(pool: &NodePool, id: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match pool.call(id, &NodeRequest::Status, EVIL_TIMEOUT).await {
            Ok(NodeResponse::Status(status)) => return status.sealed,
            other => assert!(
                Instant::now() < deadline,
                "node {id} did not answer: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The node's refusal of `request`: its kind and words.
async fn refusal(pool: &NodePool, id: u16, request: &NodeRequest) -> (ErrorKind, String) {
    match pool.call(id, request, EVIL_TIMEOUT).await {
        Err(NodeCallError::Refused { error, .. }) => (error.kind, error.message),
        other => panic!("node {id} did not refuse: {other:?}"),
    }
}

/// What the operator's CLI sends for node `id` (`vhsm node unseal`): its secret sealed to its pinned key,
/// answering `challenge`.
fn operator_envelope(cluster: &ProcessCluster, id: u16, challenge: &[u8; 32]) -> Vec<u8> {
    let public =
        UnsealPublicKey::load(&cluster.path().join("unseal").join(format!("node-{id}.pub")))
            .unwrap();
    let secret = vhsm_core::SecretBytes::new(secret(cluster, id).into_bytes());
    public.seal_unseal(id, challenge, &secret).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Issue 14, item 7: a compromised coordinator (a client of the node API with the coordinator's certificate)
/// relays unseals but learns no secret, cannot replay what it relayed — after the node restarts, or answering a
/// fresh challenge — and cannot turn one node's unseal into another's; each attempt is refused with its kind,
/// leaves the node sealed, and is in the node's audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compromised_coordinator_relays_only_ciphertext_and_can_neither_replay_nor_redirect_it() {
    let mut cluster = ProcessCluster::init_with(3, 2, &["--seal"], &[]);
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let (_, evil) = common::as_coordinator(&cluster);
    for id in 1..=3 {
        assert!(sealed(&evil, id).await, "node {id} starts sealed");
    }
    let secrets: Vec<String> = (1..=3).map(|id| secret(&cluster, id)).collect();

    // (a) It relays node 1's unseal: what passes through it holds no secret, and the request types have no
    // field for one (these patterns name every field).
    let c1 = challenge_of(&evil, 1).await;
    let recorded = operator_envelope(&cluster, 1, &c1);
    let request = NodeRequest::Unseal {
        envelope: recorded.clone(),
    };
    let NodeRequest::Unseal { envelope: relayed } = &request else {
        unreachable!()
    };
    let ClientRequest::UnsealNode {
        node: _,
        envelope: _,
    } = (ClientRequest::UnsealNode {
        node: 1,
        envelope: relayed.clone(),
    })
    else {
        unreachable!()
    };
    let wire = postcard::to_allocvec(&request).unwrap();
    for s in &secrets {
        let ungrouped: String = s.chars().filter(|c| *c != '-').collect();
        for bytes in [&wire, relayed] {
            assert!(
                !contains(bytes, s.as_bytes()),
                "a secret in what is relayed"
            );
            assert!(!contains(bytes, ungrouped.as_bytes()));
            assert!(!contains(bytes, hex::encode(s).as_bytes()));
        }
    }
    assert!(matches!(
        evil.call(1, &request, EVIL_TIMEOUT).await,
        Ok(NodeResponse::Ok)
    ));
    assert!(
        !sealed(&evil, 1).await,
        "node 1 unsealed by the operator's envelope"
    );

    // (c) Node 1's envelope sent to node 3: refused, naming node 1.
    let _ = challenge_of(&evil, 3).await;
    let (kind, why) = refusal(&evil, 3, &request).await;
    assert_eq!(kind, ErrorKind::InvalidCiphertext, "{why}");
    assert!(why.contains("made for node 1, not for node 3"), "{why}");
    // Rewritten to name node 3 and answer node 3's fresh challenge: it does not open with node 3's key.
    let c3 = challenge_of(&evil, 3).await;
    let mut redirected = recorded.clone();
    redirected[1..3].copy_from_slice(&3u16.to_be_bytes());
    redirected[4..36].copy_from_slice(&c3);
    let (kind, why) = refusal(
        &evil,
        3,
        &NodeRequest::Unseal {
            envelope: redirected,
        },
    )
    .await;
    assert_eq!(kind, ErrorKind::InvalidCiphertext, "{why}");
    assert!(
        why.contains("does not open with node 3's unseal key"),
        "{why}"
    );
    assert!(sealed(&evil, 3).await);
    // Node 1's secret, sent properly to node 3 by the operator's CLI: the wrong secret for node 3.
    unseal_3_with_node_1s_secret(&cluster);
    assert!(sealed(&evil, 3).await);
    assert!(matches!(
        SealedKeyFile::load(
            &cluster.node_dir(2).join("sealed.key"),
            secrets[0].as_bytes()
        ),
        Err(SealError::WrongPassphrase)
    ));

    // The operator unseals nodes 2 and 3 through the real coordinator, which sees no secret: none in its
    // directory or its log.
    for id in ["2", "3"] {
        let (ok, out, err) = vhsm(&cluster, &["node", "unseal", id], &[]);
        assert!(ok, "{out}\n{err}");
    }
    assert!(!sealed(&evil, 2).await && !sealed(&evil, 3).await);
    let mut files = Vec::new();
    files_under(&cluster.path().join("coordinator"), &mut files);
    files.push(cluster.log("coordinator"));
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for s in &secrets {
            assert!(
                !contains(&bytes, s.as_bytes()),
                "a secret in {}",
                file.display()
            );
        }
    }

    // (b) Node 1 restarts (sealed); the recorded envelope is replayed: refused, as it is...
    cluster.kill("node-1");
    cluster.start_node(1);
    assert!(sealed(&evil, 1).await);
    let (kind, why) = refusal(&evil, 1, &request).await;
    assert_eq!(kind, ErrorKind::Stale, "{why}");
    assert!(why.contains("no unseal challenge outstanding"), "{why}");
    // ...after asking for a fresh challenge...
    let _ = challenge_of(&evil, 1).await;
    let (kind, why) = refusal(&evil, 1, &request).await;
    assert_eq!(kind, ErrorKind::Stale, "{why}");
    // ...and with the fresh challenge written into it: the challenge is bound, so it does not open.
    let fresh = challenge_of(&evil, 1).await;
    let mut rewritten = recorded.clone();
    rewritten[4..36].copy_from_slice(&fresh);
    let (kind, why) = refusal(
        &evil,
        1,
        &NodeRequest::Unseal {
            envelope: rewritten,
        },
    )
    .await;
    assert_eq!(kind, ErrorKind::InvalidCiphertext, "{why}");
    assert!(sealed(&evil, 1).await, "node 1 stays sealed");

    // Every attempt on node 1 and node 3 is in its audit log with its outcome.
    let outcomes = |id: u16| -> Vec<String> {
        std::fs::read_to_string(cluster.node_dir(id).join("data").join("audit.log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["op"] == "unseal" && e["result"] != "attempt")
            .map(|e| {
                e["result"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        outcomes(1),
        [
            "ok",
            "error Stale",
            "error Stale",
            "error InvalidCiphertext"
        ]
    );
    assert_eq!(
        outcomes(3),
        [
            "error InvalidCiphertext",
            "error InvalidCiphertext",
            "error PinIncorrect",
            "ok"
        ]
    );

    // The operator's own unseal still works.
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "1"], &[]);
    assert!(ok, "{out}\n{err}");
    assert!(!sealed(&evil, 1).await);
}

/// Issue 14, item 7: `vhsm node change-passphrase` — refused for a sealed node and with a wrong old secret
/// (nothing changes, no file left behind), refused while an earlier change is unfinished; once done, the old secret
/// is refused and the new one unseals, also after a restart; a passphrase of one's own works for an unattended
/// start; the keys are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_node_s_secret_keeps_the_keys_and_only_the_new_secret_opens_it() {
    let mut cluster = ProcessCluster::init_with(2, 2, &["--seal"], &[]);
    start_unsealed(&mut cluster, 1);
    cluster.start_node(2);
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let file2 = secret_file(&cluster, 2);
    let pending2 = cluster.path().join("unseal").join("node-2.secret.new");
    let old2 = secret(&cluster, 2);

    // Sealed: refused before anything is written.
    let (ok, _, err) = vhsm(&cluster, &["node", "change-passphrase", "2"], &[]);
    assert!(
        !ok && err.contains("node 2 is sealed: unseal it first"),
        "{err}"
    );
    assert!(!pending2.exists());
    assert_eq!(secret(&cluster, 2), old2);
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "2"], &[]);
    assert!(ok, "{out}\n{err}");
    wait_sealed(&cluster, 2, false).await;
    let client = cluster.client().await;
    let key = client.create_key(Algorithm::Ed25519, "kept").await.unwrap();

    // A wrong old secret: refused by the node; the new secret it would have set is removed again.
    let wrong = cluster.path().join("wrong.secret");
    std::fs::write(&wrong, "not node 2's secret\n").unwrap();
    let (ok, _, err) = vhsm(
        &cluster,
        &[
            "node",
            "change-passphrase",
            "2",
            "--secret-file",
            wrong.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok && err.contains("wrong unseal secret"), "{err}");
    assert!(!cluster.path().join("wrong.secret.new").exists());
    assert_eq!(
        std::fs::read_to_string(&wrong).unwrap(),
        "not node 2's secret\n"
    );
    // An unfinished earlier change: refused, saying what to do; nothing sent.
    std::fs::write(&pending2, "LEFT-OVER\n").unwrap();
    let (ok, _, err) = vhsm(&cluster, &["node", "change-passphrase", "2"], &[]);
    assert!(!ok && err.contains("did not finish"), "{err}");
    std::fs::remove_file(&pending2).unwrap();

    // Changed: a new random secret in D/unseal/node-2.secret, no .new file left.
    let (ok, out, err) = vhsm(&cluster, &["node", "change-passphrase", "2"], &[]);
    assert!(ok && out.contains("unseal secret changed"), "{out}\n{err}");
    let new2 = secret(&cluster, 2);
    assert_ne!(new2, old2);
    assert_eq!(new2.len(), 39, "grouped base32: {new2}");
    assert!(!pending2.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file2).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(matches!(
        SealedKeyFile::load(&cluster.node_dir(2).join("sealed.key"), old2.as_bytes()),
        Err(SealError::WrongPassphrase)
    ));
    // Node 1 gets a passphrase of the operator's choosing.
    let chosen = cluster.path().join("chosen");
    std::fs::write(&chosen, "node one: a passphrase of my own\n").unwrap();
    let (ok, out, err) = vhsm(
        &cluster,
        &[
            "node",
            "change-passphrase",
            "1",
            "--new-secret-file",
            chosen.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{out}\n{err}");
    assert_eq!(secret(&cluster, 1), "node one: a passphrase of my own");

    // Node 2 restarted: sealed; the old secret is refused, the new one (from its file) unseals.
    cluster.kill("node-2");
    cluster.start_node(2);
    wait_sealed(&cluster, 2, true).await;
    let (ok, _, err) = vhsm(
        &cluster,
        &["node", "unseal", "2"],
        &[("VHSM_NODE_PASSPHRASE", &old2)],
    );
    assert!(!ok && err.contains("wrong unseal secret"), "{err}");
    wait_sealed(&cluster, 2, true).await;
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "2"], &[]);
    assert!(ok, "{out}\n{err}");
    wait_sealed(&cluster, 2, false).await;
    // Node 1 restarted unattended with its new passphrase: unsealed at start.
    cluster.kill("node-1");
    cluster.start_node_with_env(
        1,
        &[("VHSM_NODE_PASSPHRASE", "node one: a passphrase of my own")],
    );
    wait_sealed(&cluster, 1, false).await;

    // The keys are what they were: 2-of-2, both nodes sign.
    let (signature, signers) = sign_with_retries(&client, key.id, b"after the change")
        .await
        .unwrap();
    assert_eq!(signers.len(), 2, "{signers:?}");
    assert!(verify_ed25519(
        &key.public_key,
        b"after the change",
        &signature
    ));
    // The change is in node 2's audit log (attempts and outcomes), the secrets nowhere.
    let log = std::fs::read_to_string(cluster.node_dir(2).join("data").join("audit.log")).unwrap();
    let changes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"op\":\"change-unseal-secret\""))
        .collect();
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert!(changes[1].contains("error PinIncorrect") && changes[3].contains("\"ok\""));
    assert!(!log.contains(&old2) && !log.contains(&new2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_signs_and_an_older_epoch_backup_is_refused() {
    let mut cluster = ProcessCluster::init_with(3, 2, &["--seal"], &[]);
    for id in 1..=3 {
        start_unsealed(&mut cluster, id);
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
    start_unsealed(&mut cluster, 3);
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
    start_unsealed(&mut cluster, 1);
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
    start_unsealed(&mut cluster, 2);
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
/// nobody can log in while fewer than t nodes are unsealed. Until then the operator unseals with each node's own
/// unseal secret alone (which the node checks); from t unsealed nodes on, unsealing is the security officer's again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_starts_sealed_is_unsealed_with_the_secrets_until_t_nodes_check_pins() {
    use vhsm_client::ClientError;
    use vhsm_core::PinUser;
    use vhsm_wire::ErrorKind;
    let kind = |e: &ClientError| match e {
        ClientError::Service(w) => Some(w.kind),
        _ => None,
    };
    let mut cluster = ProcessCluster::init_with(3, 2, &["--seal"], &[]);
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

    // Node 1 by the CLI, node 2 by a client that is not logged in: each node checks its own secret.
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "1"], &[]);
    assert!(ok, "{out}\n{err}");
    assert!(err.contains("unseal secret alone"), "{err}");
    let (challenge, sealed) = anonymous.unseal_challenge(2).await.unwrap();
    assert!(sealed);
    // Node 3's secret, properly sealed to node 2's key: refused by node 2.
    let public2 = UnsealPublicKey::load(&cluster.path().join("unseal").join("node-2.pub")).unwrap();
    let wrong = public2
        .seal_unseal(
            2,
            &challenge,
            &vhsm_core::SecretBytes::new(secret(&cluster, 3).into_bytes()),
        )
        .unwrap();
    let e = anonymous.unseal_node(2, wrong).await.unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::PinIncorrect), "{e}");
    let (challenge, _) = anonymous.unseal_challenge(2).await.unwrap();
    anonymous
        .unseal_node(2, operator_envelope(&cluster, 2, &challenge))
        .await
        .unwrap();
    wait_sealed(&cluster, 2, false).await;

    // Two nodes check PINs now: logins work, and unsealing is the security officer's again.
    let e = anonymous.unseal_challenge(3).await.unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NotLoggedIn), "{e}");
    let (ok, out, err) = vhsm(&cluster, &["node", "unseal", "3"], &[]);
    assert!(ok, "{out}\n{err}");
    assert!(!err.contains("unseal secret alone"), "{err}");
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
