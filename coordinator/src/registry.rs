//! The coordinator's view of the keys: a cache of the metadata the nodes keep beside their shares.
//!
//! The nodes are the source of truth. The coordinator learns every key from them when it starts and again when it
//! is asked for a key it does not know, so a coordinator can be restarted, or several run at once, without any
//! state of their own.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use vhsm_wire::{
    messages::{NodeRequest, NodeResponse},
    KeyId, KeyInfo, KeyState, NodeId,
};

use crate::nodes::{NodeCallError, NodePool};

/// How long to wait for a node's key list.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// The cached key metadata.
#[derive(Debug, Default)]
pub struct Registry {
    keys: RwLock<HashMap<KeyId, KeyInfo>>,
}

impl Registry {
    /// Asks every node for its keys and rebuilds the view from the active ones (a key destroyed on the nodes
    /// disappears). Returns the nodes that could not answer; if none answered, the view is kept as it was.
    pub async fn refresh(&self, pool: &NodePool) -> Vec<NodeCallError> {
        let answers = pool
            .call_each(&pool.ids(), |_| NodeRequest::ListKeys, LIST_TIMEOUT)
            .await;
        let mut failures = Vec::new();
        let mut fresh = HashMap::new();
        let mut pending: HashMap<KeyId, (KeyInfo, Vec<NodeId>)> = HashMap::new();
        let mut answered = false;
        for (node, answer) in answers {
            match answer {
                Ok(NodeResponse::Keys(keys)) => {
                    answered = true;
                    for key in keys {
                        if key.state == KeyState::Active {
                            merge(&mut fresh, node, key);
                        } else {
                            pending
                                .entry(key.id)
                                .or_insert_with(|| (key, Vec::new()))
                                .1
                                .push(node);
                        }
                    }
                }
                Ok(_) => failures.push(NodeCallError::Unreachable {
                    node,
                    reason: "answered something other than a key list".into(),
                }),
                Err(e) => failures.push(e),
            }
        }
        reconcile_pending(pool, &fresh, pending).await;
        if answered {
            if let Ok(mut keys) = self.keys.write() {
                *keys = fresh;
            }
        }
        failures
    }

    /// Forgets a destroyed key.
    pub fn remove(&self, id: KeyId) {
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(&id);
        }
    }

    /// Records a key that has just been made active.
    pub fn insert(&self, key: KeyInfo) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(key.id, key);
        }
    }

    /// One key, if known.
    pub fn get(&self, id: KeyId) -> Option<KeyInfo> {
        self.keys.read().ok()?.get(&id).cloned()
    }

    /// Every known key, oldest first.
    pub fn list(&self) -> Vec<KeyInfo> {
        let mut keys: Vec<KeyInfo> = self
            .keys
            .read()
            .map(|k| k.values().cloned().collect())
            .unwrap_or_default();
        keys.sort_by_key(|k| (k.created_unix, k.id));
        keys
    }
}

/// Adds one node's view of a key: the cryptographic fields must agree with the other holders'; of the metadata,
/// the highest revision wins.
fn merge(keys: &mut HashMap<KeyId, KeyInfo>, node: vhsm_wire::NodeId, key: KeyInfo) {
    match keys.get(&key.id) {
        None => {
            keys.insert(key.id, key);
        }
        Some(known)
            if known.public_key != key.public_key
                || known.public_package != key.public_package
                || known.holders != key.holders
                || known.algorithm != key.algorithm =>
        {
            tracing::error!(
                key = %key.id,
                node,
                "node's metadata for this key disagrees with the other holders; keeping the first seen"
            );
        }
        Some(known) if known.revision < key.revision => {
            keys.insert(key.id, key);
        }
        Some(_) => {}
    }
}

/// A key generation is given up as interrupted when its key is still pending everywhere after this long (longer
/// than any key generation may take).
const PENDING_GIVE_UP: Duration = Duration::from_secs(15 * 60);

/// Finishes what an interrupted key generation left: a key active on some holder was committed by the
/// coordinator, so its holders that missed the commit are told again; a key pending on every holder long after
/// its generation began was never committed, so its pending shares are deleted.
async fn reconcile_pending(
    pool: &NodePool,
    active: &HashMap<KeyId, KeyInfo>,
    pending: HashMap<KeyId, (KeyInfo, Vec<NodeId>)>,
) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (key_id, (key, nodes)) in pending {
        if active.contains_key(&key_id) {
            tracing::warn!(key = %key_id, ?nodes, "holders missed the commit of this key; committing it there");
            pool.call_each(&nodes, |_| NodeRequest::CommitKey { key_id }, LIST_TIMEOUT)
                .await;
        } else if now.saturating_sub(key.created_unix) > PENDING_GIVE_UP.as_secs() {
            tracing::warn!(key = %key_id, ?nodes, "key generation never committed; deleting its pending shares");
            pool.call_each(&nodes, |_| NodeRequest::AbortKey { key_id }, LIST_TIMEOUT)
                .await;
        }
    }
}
