//! The cluster's membership as the coordinator keeps it: which nodes hold new keys, and the threshold of new keys
//! and reshares.
//!
//! At first it is the configuration's (`coordinator.toml`'s `nodes` and `threshold`, version 0). Every change —
//! a node added or removed, the threshold set — bumps the version and is saved atomically (temporary file, fsync,
//! rename) to `membership.json` in the coordinator's directory, which from then on overrides the configuration.
//! After each change, and on start, the coordinator gives the membership to every node (see
//! [`crate::nodes::NodePool`]; a node that was down gets it when the coordinator next reaches it).
//!
//! Changes are the security officer's (checked by the server). Here a change is one step: adding a node does not
//! give it shares of the existing keys, and removing one is refused while a key still lists it among its holders.
//! The whole workflows — the step with the reshares of every key it needs — are in [`change`].

pub mod change;

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use vhsm_core::{KeyId, KeyInfo, MemberEntry, Membership};
use vhsm_wire::NodeId;

use crate::error::Error;
use crate::{
    config::CoordinatorConfig,
    nodes::{NodeCallError, NodePool},
    registry::Registry,
};

/// The file's name, in the coordinator's directory.
pub const FILE_NAME: &str = "membership.json";
/// Format version of the file.
const FORMAT: u32 = 1;
/// How long a node being added may take to answer its status.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long each node may take to confirm a new membership (best effort: the others get it later).
const PUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// `membership.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipFile {
    /// [`FORMAT`].
    format: u32,
    membership: Membership,
}

/// The membership `coordinator.toml` describes (version 0).
pub fn from_config(config: &CoordinatorConfig) -> Membership {
    Membership {
        version: 0,
        threshold: config.threshold,
        nodes: config
            .nodes
            .iter()
            .map(|n| MemberEntry {
                id: n.id,
                address: n.address.clone(),
            })
            .collect(),
    }
}

/// Where the coordinator keeps its membership: `membership.json` in its own directory, the one that holds its
/// TLS key (in the layout `vhsm init` writes, beside `coordinator.toml`).
pub fn default_path(config: &CoordinatorConfig) -> PathBuf {
    config
        .key
        .parent()
        .unwrap_or(Path::new("."))
        .join(FILE_NAME)
}

/// Reads a membership file; `None` if there is none.
pub fn load(path: &Path) -> Result<Option<Membership>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: MembershipFile =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if file.format != FORMAT {
        return Err(format!(
            "{}: unknown format {} (this build reads {FORMAT})",
            path.display(),
            file.format
        ));
    }
    file.membership
        .check()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(file.membership))
}

/// Writes a membership file atomically: a temporary file beside it, synced, renamed over it, the directory synced.
pub fn save(path: &Path, membership: &Membership) -> std::io::Result<()> {
    let file = MembershipFile {
        format: FORMAT,
        membership: membership.clone(),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
    text.push('\n');
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
    {
        let mut out = std::fs::File::create(&tmp)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The membership to start with: the saved one if there is one (it overrides the configuration's nodes and
/// threshold), else the configuration's.
pub fn initial(config: &CoordinatorConfig, path: &Path) -> Result<Membership, String> {
    let configured = from_config(config);
    match load(path)? {
        Some(saved) => {
            if saved.nodes != configured.nodes || saved.threshold != configured.threshold {
                tracing::info!(
                    file = %path.display(),
                    version = saved.version,
                    members = ?saved.ids(),
                    threshold = saved.threshold,
                    "the saved cluster membership overrides coordinator.toml's nodes and threshold"
                );
            }
            Ok(saved)
        }
        None => Ok(configured),
    }
}

fn bad(message: String) -> Error {
    Error::BadRequest(message)
}

/// `current` with node `id` at `address` added (next version).
pub fn with_node_added(
    current: &Membership,
    id: NodeId,
    address: &str,
) -> Result<Membership, Error> {
    if id == 0 {
        return Err(bad("node ids start at 1".into()));
    }
    if current.nodes.iter().any(|n| n.id == id) {
        return Err(bad(format!(
            "node {id} is a member already (members {:?})",
            current.ids()
        )));
    }
    let address = address.trim();
    if address.is_empty() || address.chars().any(char::is_whitespace) {
        return Err(bad(format!("{address:?} is not an address (HOST:PORT)")));
    }
    if let Some(other) = current.nodes.iter().find(|n| n.address == address) {
        return Err(bad(format!("{address} is node {}'s address", other.id)));
    }
    let mut next = current.clone();
    next.version += 1;
    next.nodes.push(MemberEntry {
        id,
        address: address.to_string(),
    });
    next.nodes.sort_unstable_by_key(|n| n.id);
    next.check().map_err(bad)?;
    Ok(next)
}

/// `current` without node `id` (next version). Refused if fewer nodes than the threshold would remain.
pub fn with_node_removed(current: &Membership, id: NodeId) -> Result<Membership, Error> {
    if !current.nodes.iter().any(|n| n.id == id) {
        return Err(Error::NotFound(format!(
            "node {id} is not a member (members {:?})",
            current.ids()
        )));
    }
    let remaining = current.nodes.len() - 1;
    if remaining < usize::from(current.threshold) {
        return Err(bad(format!(
            "removing node {id} would leave {remaining} node(s), fewer than the threshold {}: lower the threshold \
             first (vhsm cluster set-threshold) or add a node",
            current.threshold
        )));
    }
    let mut next = current.clone();
    next.version += 1;
    next.nodes.retain(|n| n.id != id);
    next.check().map_err(bad)?;
    Ok(next)
}

/// `current` with threshold `threshold` (next version): 2 ≤ threshold ≤ nodes.
pub fn with_threshold(current: &Membership, threshold: u16) -> Result<Membership, Error> {
    let n = current.nodes.len();
    if threshold < 2 || usize::from(threshold) > n {
        return Err(bad(format!(
            "threshold {threshold} is not possible with {n} nodes (need 2 <= threshold <= {n})"
        )));
    }
    let mut next = current.clone();
    next.version += 1;
    next.threshold = threshold;
    Ok(next)
}

/// The keys among `keys` that list `node` among their holders.
pub fn keys_held_by(keys: &[KeyInfo], node: NodeId) -> Vec<KeyId> {
    let mut held: Vec<KeyId> = keys
        .iter()
        .filter(|k| k.holders.contains(&node))
        .map(|k| k.id)
        .collect();
    held.sort_unstable_by_key(|k| k.0);
    held
}

/// Changes the membership: one change at a time, each saved before it takes effect, then given to the nodes.
#[derive(Debug)]
pub struct MembershipAdmin {
    path: PathBuf,
    changing: tokio::sync::Mutex<()>,
}

impl MembershipAdmin {
    /// Changes saved to `path`.
    pub fn new(path: PathBuf) -> Self {
        MembershipAdmin {
            path,
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Where the membership is saved.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds node `id` at `address`: it must answer there, with a certificate of node `id` from this cluster's CA.
    pub async fn add_node(
        &self,
        pool: &NodePool,
        id: NodeId,
        address: &str,
    ) -> Result<Membership, Error> {
        let _one = self.changing.lock().await;
        let address = address.trim();
        // Refuse what is wrong before reaching out.
        with_node_added(&pool.membership(), id, address)?;
        match pool.probe(id, address, PROBE_TIMEOUT).await {
            Ok(status) if status.node_id == id => {}
            Ok(status) => {
                return Err(bad(format!(
                    "the node at {address} says it is node {}, not node {id}",
                    status.node_id
                )))
            }
            Err(NodeCallError::Unreachable { reason, .. })
                if reason.contains("invalid peer certificate") =>
            {
                return Err(bad(format!(
                    "the node at {address} is not node {id} of this cluster ({reason})"
                )))
            }
            Err(NodeCallError::Unreachable { reason, .. }) => {
                return Err(Error::Unavailable {
                    message: format!(
                        "node {id} does not answer at {address} ({reason}): start it first (vhsm node --config \
                         node.toml); its certificate must be node {id}'s, from this cluster's CA"
                    ),
                    nodes: vec![id],
                })
            }
            Err(NodeCallError::Refused { error, .. }) => {
                return Err(bad(format!(
                    "node {id} at {address} refused the status request: {error}"
                )))
            }
        }
        let next = with_node_added(&pool.membership(), id, address)?;
        self.commit(pool, next).await
    }

    /// Removes node `id`. Refused while any key lists it among its holders (reshare those keys first), or while
    /// that cannot be checked because another node does not answer.
    pub async fn remove_node(
        &self,
        pool: &NodePool,
        registry: &Registry,
        id: NodeId,
    ) -> Result<Membership, Error> {
        let _one = self.changing.lock().await;
        with_node_removed(&pool.membership(), id)?;
        let silent: Vec<NodeId> = registry
            .refresh(pool)
            .await
            .iter()
            .map(NodeCallError::node)
            .filter(|n| *n != id)
            .collect();
        if !silent.is_empty() {
            return Err(Error::Unavailable {
                message: format!(
                    "cannot check that no key lists node {id} among its holders: node(s) {silent:?} did not answer"
                ),
                nodes: silent,
            });
        }
        let held = keys_held_by(&registry.list(), id);
        if !held.is_empty() {
            let list: Vec<String> = held.iter().map(ToString::to_string).collect();
            return Err(bad(format!(
                "node {id} still holds a share of {} key(s): {}; reshare them to the other nodes first",
                held.len(),
                list.join(", ")
            )));
        }
        let next = with_node_removed(&pool.membership(), id)?;
        self.commit(pool, next).await
    }

    /// Sets the threshold of new keys and reshares (existing keys keep theirs until reshared).
    pub async fn set_threshold(
        &self,
        pool: &NodePool,
        threshold: u16,
    ) -> Result<Membership, Error> {
        let _one = self.changing.lock().await;
        let next = with_threshold(&pool.membership(), threshold)?;
        self.commit(pool, next).await
    }

    /// Saves `next`, makes it the pool's, and gives it to every node (best effort).
    async fn commit(&self, pool: &NodePool, next: Membership) -> Result<Membership, Error> {
        next.check().map_err(bad)?;
        let path = self.path.clone();
        let record = next.clone();
        tokio::task::spawn_blocking(move || save(&path, &record))
            .await
            .map_err(|e| Error::Internal(format!("save task failed: {e}")))?
            .map_err(|e| {
                Error::Internal(format!(
                    "cannot save the membership to {}: {e}; nothing changed",
                    self.path.display()
                ))
            })?;
        let left = pool.set_membership(next.clone());
        if !left.is_empty() {
            tracing::info!(nodes = ?left, "links to the nodes that left are closed");
        }
        push(pool).await;
        Ok(next)
    }
}

/// Gives every node the current membership now; logs those that did not take it (they get it later).
pub async fn push(pool: &NodePool) {
    let version = pool.membership().version;
    for (node, result) in pool.push_membership(PUSH_TIMEOUT).await {
        match result {
            Ok(()) => {}
            Err(e @ NodeCallError::Unreachable { .. }) => tracing::info!(
                node,
                version,
                error = %e,
                "node did not get the membership now; it gets it when it is next reached"
            ),
            Err(e) => tracing::warn!(node, version, error = %e, "node refused the membership"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use vhsm_wire::ErrorKind;

    fn three() -> Membership {
        Membership {
            version: 0,
            threshold: 2,
            nodes: (1..=3)
                .map(|id| MemberEntry {
                    id,
                    address: format!("127.0.0.1:{}", 7000 + id),
                })
                .collect(),
        }
    }

    #[test]
    fn changes_bump_the_version_and_keep_a_possible_cluster() {
        let added = with_node_added(&three(), 4, " 127.0.0.1:7004 ").unwrap();
        assert_eq!((added.version, added.ids()), (1, vec![1, 2, 3, 4]));
        assert_eq!(added.nodes[3].address, "127.0.0.1:7004");
        for (id, address) in [
            (0, "127.0.0.1:9"),
            (2, "127.0.0.1:9"),
            (4, "127.0.0.1:7001"),
            (4, ""),
        ] {
            assert_eq!(
                with_node_added(&three(), id, address).unwrap_err().kind(),
                ErrorKind::BadRequest,
                "{id} {address}"
            );
        }

        let removed = with_node_removed(&added, 4).unwrap();
        assert_eq!((removed.version, removed.ids()), (2, vec![1, 2, 3]));
        assert_eq!(
            with_node_removed(&three(), 9).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let mut tight = three();
        tight.threshold = 3;
        let err = with_node_removed(&tight, 1).unwrap_err();
        assert!(
            err.to_string().contains("fewer than the threshold"),
            "{err}"
        );

        assert_eq!(with_threshold(&three(), 3).unwrap().threshold, 3);
        assert_eq!(with_threshold(&three(), 3).unwrap().version, 1);
        assert!(with_threshold(&three(), 1).is_err());
        assert!(with_threshold(&three(), 4).is_err());
    }

    #[test]
    fn saved_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(load(&path).unwrap(), None);
        let m = with_node_added(&three(), 4, "127.0.0.1:7004").unwrap();
        save(&path, &m).unwrap();
        assert_eq!(load(&path).unwrap(), Some(m.clone()));
        let next = with_threshold(&m, 3).unwrap();
        save(&path, &next).unwrap();
        assert_eq!(load(&path).unwrap(), Some(next));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
        std::fs::write(&path, "{\"format\": 9, \"membership\": {}}").unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn keys_held_by_names_the_keys_of_a_node() {
        let key = |byte: u8, holders: Vec<NodeId>| KeyInfo {
            id: KeyId([byte; 16]),
            label: String::new(),
            algorithm: vhsm_core::Algorithm::Ed25519,
            public_key: vec![],
            public_package: vec![],
            threshold: 2,
            holders,
            state: vhsm_core::KeyState::Active,
            created_unix: 0,
            epoch: 0,
            revision: 0,
            attributes: vec![],
        };
        let keys = vec![key(2, vec![1, 2, 3, 4]), key(1, vec![1, 2, 3])];
        assert_eq!(keys_held_by(&keys, 4), vec![KeyId([2; 16])]);
        assert_eq!(keys_held_by(&keys, 1).len(), 2);
        assert!(keys_held_by(&keys, 5).is_empty());
    }
}
