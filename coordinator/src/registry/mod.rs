//! The coordinator's view of the keys: a cache of the metadata the nodes keep beside their shares.
//!
//! The nodes are the source of truth. The coordinator learns every key from them when it starts and again when it
//! is asked for a key it does not know, so a coordinator can be restarted, or several run at once, without any
//! state of their own. No single node's report decides: a version of a key is taken only when enough of its
//! holders vouch for it ([`vouch`]), and only a state enough holders share is given to those that missed it.
//!
//! [`Registry::behind`] compares what each holder lists with the key's epoch as vouched for: a holder whose share
//! is of an older epoch (and that has nothing staged at the key's epoch), or that lists no share of a key it
//! holds, is **behind** — its data was rolled back to before a refresh or reshare, or lost. `vhsm status` shows
//! every such holder (the node cannot tell on its own: a whole data directory rolled back is consistent).

pub mod vouch;

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use vhsm_core::{KeyId, KeyInfo, KeyState};
use vhsm_wire::{
    client_api::ShareBehind,
    node_api::{NodeRequest, NodeResponse},
    NodeId,
};

use crate::{
    error::Error,
    nodes::{NodeCallError, NodePool},
};

/// How long to wait for a node's key list.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// The cached key metadata.
#[derive(Debug, Default)]
pub struct Registry {
    keys: RwLock<HashMap<KeyId, KeyInfo>>,
    /// Keys being reshared by this coordinator now: their staged shares are not reconciled meanwhile.
    resharing: Mutex<HashSet<KeyId>>,
    /// When each key's last reshare by this coordinator ended: a listing begun before that saw the key mid-way
    /// (some holders committed, others not yet), so it is not reconciled from that listing.
    reshared: Mutex<HashMap<KeyId, Instant>>,
    /// The nodes the last listing found reporting a version of a key its holders do not vouch for.
    dissent: Mutex<Vec<(KeyId, NodeId)>>,
}

/// Marks a key as being reshared while it lives (see [`Registry::begin_reshare`]).
#[derive(Debug)]
pub struct ReshareGuard<'a> {
    registry: &'a Registry,
    key_id: KeyId,
}

impl Drop for ReshareGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut ended) = self.registry.reshared.lock() {
            // Only listings that overlapped a reshare need the time; older entries are of no use.
            ended.retain(|_, at| at.elapsed() < RESHARE_MEMORY);
            ended.insert(self.key_id, Instant::now());
        }
        if let Ok(mut set) = self.registry.resharing.lock() {
            set.remove(&self.key_id);
        }
    }
}

/// How long the end of a reshare is remembered: longer than any listing takes.
const RESHARE_MEMORY: Duration = Duration::from_secs(60);

impl Registry {
    /// Asks every node for its keys and rebuilds the view from the active ones (a key destroyed on the nodes
    /// disappears). Returns the nodes that could not answer; if none answered, the view is kept as it was.
    pub async fn refresh(&self, pool: &NodePool) -> Vec<NodeCallError> {
        let started = Instant::now();
        let ids = pool.ids();
        let (answers, staged_answers) = tokio::join!(
            pool.call_each(&ids, |_| NodeRequest::ListKeys, LIST_TIMEOUT),
            pool.call_each(&ids, |_| NodeRequest::ListStaged, LIST_TIMEOUT)
        );
        let mut failures = Vec::new();
        let mut reports: HashMap<KeyId, Vec<(NodeId, KeyInfo)>> = HashMap::new();
        let mut pending: HashMap<KeyId, (KeyInfo, Vec<NodeId>)> = HashMap::new();
        // A holder whose key is still pending (it missed the commit of a key generation) vouches for it as it
        // would for a staged reshare.
        let mut pending_reports: HashMap<KeyId, Vec<(NodeId, KeyInfo)>> = HashMap::new();
        let mut epochs = Epochs::default();
        let mut answered = false;
        // What each node listed, and staged, as `behind` takes them.
        let mut listed: HashMap<NodeId, Vec<KeyInfo>> = HashMap::new();
        let mut staged_by_node: HashMap<NodeId, Vec<KeyInfo>> = HashMap::new();
        for (node, answer) in answers {
            match answer {
                Ok(NodeResponse::Keys(keys)) => {
                    answered = true;
                    epochs.listed.insert(node);
                    listed.insert(node, keys.clone());
                    for key in keys {
                        if key.state != KeyState::Pending {
                            // A tombstone holds no share to reconcile.
                            if key.state.has_shares() {
                                epochs
                                    .active
                                    .entry(key.id)
                                    .or_default()
                                    .push((node, key.epoch));
                            }
                            epochs.states.entry(key.id).or_default().push((
                                node,
                                key.state,
                                key.revision,
                            ));
                            reports.entry(key.id).or_default().push((node, key));
                        } else {
                            pending_reports
                                .entry(key.id)
                                .or_default()
                                .push((node, key.clone()));
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
        for (node, answer) in staged_answers {
            if let Ok(NodeResponse::Keys(keys)) = answer {
                staged_by_node.insert(node, keys.clone());
                for key in keys {
                    epochs.staged.entry(key.id).or_default().push((node, key));
                }
            }
        }
        let floor = pool.membership().threshold;
        let mut fresh = HashMap::new();
        let mut certified = HashSet::new();
        let mut dissent = Vec::new();
        for (key_id, active) in &reports {
            let staged: Vec<(NodeId, KeyInfo)> = epochs
                .staged
                .get(key_id)
                .into_iter()
                .chain(pending_reports.get(key_id))
                .flatten()
                .cloned()
                .collect();
            match vouch::vouch(active, &staged, floor) {
                Ok(v) => {
                    for node in &v.dissenters {
                        tracing::error!(key = %key_id, node, epoch = v.key.epoch, "node reports a version of this key that its holders do not vouch for (a lying node, or a tampered store); its report is ignored");
                        dissent.push((*key_id, *node));
                    }
                    if v.metadata_certified {
                        certified.insert(*key_id);
                    } else {
                        tracing::warn!(key = %key_id, "the holders disagree on this key's metadata (some missed updates); showing the most reported, giving none of them to the others");
                    }
                    fresh.insert(*key_id, v.key);
                }
                Err(why) => {
                    tracing::error!(key = %key_id, reports = %why, "not enough of this key's holders vouch for any version of it; it is left out of the key list");
                }
            }
        }
        if answered {
            *self
                .dissent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = dissent;
        }
        reconcile_pending(pool, &fresh, &certified, pending).await;
        // Keys being reshared, or whose reshare ended since this listing began: the listing may have caught them
        // mid-way (one holder committed, another not yet), so nothing is reconciled or judged from it.
        let mut busy = self.resharing.lock().map(|s| s.clone()).unwrap_or_default();
        if let Ok(ended) = self.reshared.lock() {
            busy.extend(
                ended
                    .iter()
                    .filter(|(_, at)| **at >= started)
                    .map(|(k, _)| *k),
            );
        }
        reconcile_epochs(pool, &fresh, &epochs, &busy).await;
        // Holders behind a key's epoch are left out of its operations (signer sets, dealers) until repaired.
        for b in behind_of(fresh.values(), &listed, &staged_by_node) {
            if busy.contains(&b.key_id) {
                continue;
            }
            tracing::warn!(node = b.node, key = %b.key_id, held = ?b.held, epoch = b.epoch, "a holder's share is behind the key's epoch (its data was rolled back or lost): it is left out of this key's operations until repaired (vhsm node repair {})", b.node);
            pool.note_unusable(b.key_id, b.epoch, [b.node]);
        }
        reconcile_states(pool, &fresh, &certified, &epochs).await;
        if answered {
            if let Ok(mut keys) = self.keys.write() {
                // A key reported but not vouched for now (too few of its holders answered) keeps the version
                // this coordinator knew: no answer, and no lie, makes it forget or change it.
                for key_id in reports.keys() {
                    if !fresh.contains_key(key_id) {
                        if let Some(known) = keys.get(key_id) {
                            fresh.insert(*key_id, known.clone());
                        }
                    }
                }
                *keys = fresh;
            }
        }
        failures
    }

    /// Marks `key_id` as being reshared by this coordinator until the guard is dropped; `None` if it already is.
    pub fn begin_reshare(&self, key_id: KeyId) -> Option<ReshareGuard<'_>> {
        let mut set = self.resharing.lock().ok()?;
        set.insert(key_id).then_some(ReshareGuard {
            registry: self,
            key_id,
        })
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

    /// The nodes the last listing found reporting, as current, a version of a key that its holders do not vouch
    /// for (see [`vouch`]), with the key.
    pub fn dissent(&self) -> Vec<(KeyId, NodeId)> {
        self.dissent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// One key, if known.
    pub fn get(&self, id: KeyId) -> Option<KeyInfo> {
        self.keys.read().ok()?.get(&id).cloned()
    }

    /// Key `id`, asking the nodes (through `pool`) if it is not known here: perhaps it was made through another
    /// coordinator. Refused if no node has it, or if it was destroyed.
    pub async fn find(&self, pool: &NodePool, id: KeyId) -> Result<KeyInfo, Error> {
        let key = match self.get(id) {
            Some(key) => key,
            None => {
                self.refresh(pool).await;
                self.get(id).ok_or(Error::KeyNotFound(id))?
            }
        };
        if key.state == KeyState::Destroyed {
            return Err(Error::KeyDestroyed(id));
        }
        Ok(key)
    }

    /// The holders whose share of a known key is behind the key's epoch or missing, given what each node that
    /// answered lists (`listed`: its keys; `staged`: its staged shares). A node that did not answer is not
    /// judged; a share of the key's epoch staged but not yet committed is not behind (the node commits it on first
    /// use); a destroyed key's tombstone is not judged (the reconciliation destroys the key on the holders that
    /// missed it).
    pub fn behind(
        &self,
        listed: &HashMap<NodeId, Vec<KeyInfo>>,
        staged: &HashMap<NodeId, Vec<KeyInfo>>,
    ) -> Vec<ShareBehind> {
        behind_of(self.list().iter(), listed, staged)
    }

    /// Every known key that was not destroyed, oldest first.
    pub fn list(&self) -> Vec<KeyInfo> {
        let mut keys: Vec<KeyInfo> = self
            .keys
            .read()
            .map(|k| {
                k.values()
                    .filter(|k| k.state != KeyState::Destroyed)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        keys.sort_by_key(|k| (k.created_unix, k.id));
        keys
    }
}

/// The holders of `keys` whose share is behind the key's epoch or missing (see [`Registry::behind`]).
fn behind_of<'a>(
    keys: impl Iterator<Item = &'a KeyInfo>,
    listed: &HashMap<NodeId, Vec<KeyInfo>>,
    staged: &HashMap<NodeId, Vec<KeyInfo>>,
) -> Vec<ShareBehind> {
    let mut out = Vec::new();
    for key in keys.filter(|k| k.state != KeyState::Destroyed) {
        for &node in &key.holders {
            let Some(keys) = listed.get(&node) else {
                continue;
            };
            let held = keys.iter().find(|k| k.id == key.id);
            if held.is_some_and(|k| k.state == KeyState::Destroyed || k.epoch >= key.epoch) {
                continue;
            }
            let staged_now = staged
                .get(&node)
                .is_some_and(|s| s.iter().any(|k| k.id == key.id && k.epoch == key.epoch));
            if staged_now {
                continue;
            }
            out.push(ShareBehind {
                node,
                key_id: key.id,
                held: held.map(|k| k.epoch),
                epoch: key.epoch,
            });
        }
    }
    out.sort_by_key(|b| (b.node, b.key_id));
    out
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
    certified: &HashSet<KeyId>,
    pending: HashMap<KeyId, (KeyInfo, Vec<NodeId>)>,
) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (key_id, (key, nodes)) in pending {
        if active.contains_key(&key_id) {
            let state = commit_state(active.get(&key_id), certified.contains(&key_id));
            tracing::warn!(key = %key_id, ?nodes, %state, "holders missed the commit of this key; committing it there");
            pool.call_each(
                &nodes,
                |_| NodeRequest::CommitKey { key_id, state },
                LIST_TIMEOUT,
            )
            .await;
        } else if now.saturating_sub(key.created_unix) > PENDING_GIVE_UP.as_secs() {
            tracing::warn!(key = %key_id, ?nodes, "key generation never committed; deleting its pending shares");
            pool.call_each(&nodes, |_| NodeRequest::AbortKey { key_id }, LIST_TIMEOUT)
                .await;
        }
    }
}

/// The state to commit a key in on holders that missed its commit, from the view `seen` of it and whether enough
/// holders vouch for that view's metadata. Only a certified active state is passed on: when the committed
/// holders are too few to certify it (one of them may be lying about the state the key was created in, issue 14),
/// or the key has moved on to a state a commit cannot give (deactivated, compromised, destroyed: the
/// reconciliation of states passes that on next), the holders are committed pre-active, which uses nothing; an
/// operator activates the key if it was meant to be active.
fn commit_state(seen: Option<&KeyInfo>, certified: bool) -> KeyState {
    match seen {
        Some(key) if certified && key.state == KeyState::Active => KeyState::Active,
        Some(key) if !certified && key.state == KeyState::Active => {
            tracing::warn!(key = %key.id, "too few holders vouch for this key's state to give it to the holders that missed its commit: committing them PRE-ACTIVE; `vhsm key activate` if it was meant to be active");
            KeyState::PreActive
        }
        _ => KeyState::PreActive,
    }
}

/// Who holds which share epoch of every key, as one listing found it.
#[derive(Debug, Default)]
struct Epochs {
    /// The nodes that answered the key listing.
    listed: HashSet<NodeId>,
    /// Per key: (node, epoch) of every active share.
    active: HashMap<KeyId, Vec<(NodeId, u64)>>,
    /// Per key: (node, staged metadata) of every staged share.
    staged: HashMap<KeyId, Vec<(NodeId, KeyInfo)>>,
    /// Per key: (node, lifecycle state, metadata revision) as each node has it.
    states: HashMap<KeyId, Vec<(NodeId, KeyState, u64)>>,
}

/// Gives holders that missed a lifecycle change (they were down) the key's newest certified state: a destroyed key is
/// destroyed on every holder that still has it; a deactivation or compromise reaches the holders that missed it.
async fn reconcile_states(
    pool: &NodePool,
    best: &HashMap<KeyId, KeyInfo>,
    certified: &HashSet<KeyId>,
    epochs: &Epochs,
) {
    for (key_id, states) in &epochs.states {
        // Only a state enough holders vouch for is given to the others (see `vouch`).
        let Some(key) = best.get(key_id).filter(|_| certified.contains(key_id)) else {
            continue;
        };
        for (node, state, revision) in states {
            if *state == key.state || *revision >= key.revision {
                continue;
            }
            let request = if key.state == KeyState::Destroyed {
                NodeRequest::DestroyKey { key_id: *key_id }
            } else if state.can_become(key.state) {
                NodeRequest::SetKeyState {
                    key_id: *key_id,
                    state: key.state,
                }
            } else {
                tracing::error!(key = %key_id, node, has = %state, newest = %key.state, "a holder's lifecycle state cannot be brought to the key's");
                continue;
            };
            tracing::warn!(key = %key_id, node, has = %state, newest = %key.state, "a holder missed a lifecycle change; giving it now");
            pool.call(*node, &request, LIST_TIMEOUT).await.ok();
        }
    }
}

/// Finishes what an interrupted reshare left (see [`crate::reshare`]):
/// - a staged share of the epoch the key is at now (some holder committed it) is committed: roll forward;
/// - a staged share of an epoch nobody committed is dropped — but only when every node of that staged committee
///   answered (one that did not might be the one that committed) and this coordinator is not resharing the key:
///   roll back;
/// - a share of an older epoch on a node that is not among the key's holders any more (a node removed from the
///   key) is deleted: it can no longer combine with anything.
async fn reconcile_epochs(
    pool: &NodePool,
    best: &HashMap<KeyId, KeyInfo>,
    epochs: &Epochs,
    busy: &HashSet<KeyId>,
) {
    for (key_id, staged) in &epochs.staged {
        if busy.contains(key_id) {
            continue;
        }
        let current = best.get(key_id).map(|k| k.epoch);
        for (node, info) in staged {
            let (node, epoch) = (*node, info.epoch);
            if current == Some(epoch) {
                tracing::warn!(key = %key_id, node, epoch, "a holder missed the commit of this reshare; committing it there");
                pool.call(
                    node,
                    &NodeRequest::CommitReshare {
                        key_id: *key_id,
                        epoch,
                    },
                    LIST_TIMEOUT,
                )
                .await
                .ok();
            } else if current.is_some_and(|c| c > epoch)
                || info.holders.iter().all(|h| epochs.listed.contains(h))
            {
                tracing::warn!(key = %key_id, node, epoch, "a reshare was never committed; dropping its staged share (the key stays at its epoch)");
                pool.call(
                    node,
                    &NodeRequest::AbortReshare {
                        key_id: *key_id,
                        epoch,
                    },
                    LIST_TIMEOUT,
                )
                .await
                .ok();
            }
        }
    }
    for (key_id, holders) in &epochs.active {
        let Some(key) = best.get(key_id) else {
            continue;
        };
        if busy.contains(key_id) {
            continue;
        }
        for (node, epoch) in holders {
            if *epoch < key.epoch && !key.holders.contains(node) {
                tracing::warn!(key = %key_id, node, epoch, current = key.epoch, "a former holder still keeps an old share; deleting it");
                pool.call(
                    *node,
                    &NodeRequest::ReleaseShare {
                        key_id: *key_id,
                        epoch: key.epoch,
                    },
                    LIST_TIMEOUT,
                )
                .await
                .ok();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vhsm_core::Algorithm;

    fn key(id: u8, epoch: u64, state: KeyState) -> KeyInfo {
        KeyInfo {
            id: KeyId([id; 16]),
            label: String::new(),
            algorithm: Algorithm::Ed25519,
            public_key: vec![1],
            public_package: vec![2],
            threshold: 2,
            holders: vec![1, 2, 3],
            state,
            created_unix: u64::from(id),
            epoch,
            revision: 0,
            attributes: Vec::new(),
        }
    }

    /// Issue 14, item 8: a holder whose data was rolled back to before a refresh (an older epoch), or that lost a
    /// key, is reported behind; one with the epoch staged, one that did not answer, and a tombstone are not.
    #[test]
    fn holders_behind_the_keys_epoch_are_reported() {
        let registry = Registry::default();
        registry.insert(key(1, 1, KeyState::Active));
        registry.insert(key(2, 0, KeyState::Active));
        let listed: HashMap<NodeId, Vec<KeyInfo>> = [
            (
                1,
                vec![key(1, 1, KeyState::Active), key(2, 0, KeyState::Active)],
            ),
            (
                2,
                vec![key(1, 1, KeyState::Active), key(2, 0, KeyState::Active)],
            ),
            // Rolled back: key 1 at epoch 0, key 2 unknown.
            (3, vec![key(1, 0, KeyState::Active)]),
        ]
        .into_iter()
        .collect();
        let behind = registry.behind(&listed, &HashMap::new());
        assert_eq!(
            behind,
            vec![
                ShareBehind {
                    node: 3,
                    key_id: KeyId([1; 16]),
                    held: Some(0),
                    epoch: 1
                },
                ShareBehind {
                    node: 3,
                    key_id: KeyId([2; 16]),
                    held: None,
                    epoch: 0
                },
            ]
        );
        // The new epoch staged (a commit not yet heard): not behind. Node 3 not answering: not judged.
        let staged: HashMap<NodeId, Vec<KeyInfo>> = [(3, vec![key(1, 1, KeyState::Active)])]
            .into_iter()
            .collect();
        assert_eq!(registry.behind(&listed, &staged).len(), 1);
        let mut silent = listed.clone();
        silent.remove(&3);
        assert!(registry.behind(&silent, &HashMap::new()).is_empty());
        // A tombstone on the node is not judged.
        let mut destroyed = listed;
        destroyed.insert(
            3,
            vec![
                key(1, 0, KeyState::Destroyed),
                key(2, 0, KeyState::Destroyed),
            ],
        );
        assert!(registry.behind(&destroyed, &HashMap::new()).is_empty());
    }
}
