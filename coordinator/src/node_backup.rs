//! Unsealing a node and changing its unseal secret (relaying the operator's envelopes, which only the node opens:
//! the node's `unseal` module), and backing a node up and restoring it (the security officer's `vhsm node
//! unseal|change-passphrase|backup|restore`).
//!
//! A restore is checked against the cluster before the node sees it: every other member is asked for its keys,
//! and for each key in the backup's (readable, authenticated) header:
//!
//! - the cluster holds it at a **newer epoch** (it was refreshed or reshared since the backup): the whole restore
//!   is refused — the backup's shares no longer combine with the other holders', and writing them would only
//!   replace a repairable gap with a share that silently does not work. The operator repairs the node instead;
//! - no other member has it, or one has its destroyed tombstone: it is left out (a destroyed key does not come
//!   back from a backup; one absent from the cluster has nothing to combine with);
//! - the cluster's holders no longer include this node (reshared away): it is left out;
//! - otherwise it is restored. The node checks the file itself (its storage key, its node id, every record) and
//!   writes the keys in one transaction.

use std::{collections::HashMap, time::Duration};

use vhsm_core::backup;
use vhsm_core::{KeyId, KeyInfo, KeyState};
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    NodeId,
};

use crate::error::Error;
use crate::nodes::{NodeCallError, NodePool};

/// How long to wait for a node to unseal or change its unseal secret (Argon2id with strong parameters takes a
/// moment).
const UNSEAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for an unseal challenge.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a backup or a restore.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for the other members' key lists.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

fn call_error(e: NodeCallError) -> Error {
    Error::from(e)
}

/// Whether `state` is a destroyed key's tombstone.
fn destroyed(state: KeyState) -> bool {
    state == KeyState::Destroyed
}

fn member(pool: &NodePool, node: NodeId) -> Result<(), Error> {
    if pool.ids().contains(&node) {
        Ok(())
    } else {
        Err(Error::NotFound(format!("no node {node} in this cluster")))
    }
}

/// Asks `node` for a fresh challenge for its next unseal envelope; returns it with whether the node is sealed.
pub async fn unseal_challenge(pool: &NodePool, node: NodeId) -> Result<([u8; 32], bool), Error> {
    member(pool, node)?;
    match pool
        .call(node, &NodeRequest::UnsealChallenge, CHALLENGE_TIMEOUT)
        .await
        .map_err(call_error)?
    {
        NodeResponse::UnsealChallenge { challenge, sealed } => Ok((challenge, sealed)),
        other => Err(Error::Internal(format!(
            "node {node} answered the unseal challenge request with {other:?}"
        ))),
    }
}

/// Relays an unseal envelope to `node`: the operator's CLI encrypted the node's secret to the node's own key, so
/// this is ciphertext only (the coordinator cannot open it).
pub async fn unseal(pool: &NodePool, node: NodeId, envelope: Vec<u8>) -> Result<(), Error> {
    member(pool, node)?;
    match pool
        .call(node, &NodeRequest::Unseal { envelope }, UNSEAL_TIMEOUT)
        .await
        .map_err(call_error)?
    {
        NodeResponse::Ok => Ok(()),
        other => Err(Error::Internal(format!(
            "node {node} answered the unseal with {other:?}"
        ))),
    }
}

/// Relays an envelope changing `node`'s unseal secret (ciphertext only, like [`unseal`]).
pub async fn change_unseal_secret(
    pool: &NodePool,
    node: NodeId,
    envelope: Vec<u8>,
) -> Result<(), Error> {
    member(pool, node)?;
    match pool
        .call(
            node,
            &NodeRequest::ChangeUnsealSecret { envelope },
            UNSEAL_TIMEOUT,
        )
        .await
        .map_err(call_error)?
    {
        NodeResponse::Ok => Ok(()),
        other => Err(Error::Internal(format!(
            "node {node} answered the change of its unseal secret with {other:?}"
        ))),
    }
}

/// A backup file of `node`.
pub async fn backup(pool: &NodePool, node: NodeId) -> Result<Vec<u8>, Error> {
    member(pool, node)?;
    match pool
        .call(node, &NodeRequest::Backup, BACKUP_TIMEOUT)
        .await
        .map_err(call_error)?
    {
        NodeResponse::Backup(file) => Ok(file),
        _ => Err(Error::Internal(format!(
            "node {node} answered the backup with something else"
        ))),
    }
}

/// What a restore did: the keys restored, and those left out with the reason.
pub type Restored = (Vec<KeyId>, Vec<(KeyId, String)>);

/// Checks `file` against the cluster (see the module documentation) and has `node` restore what may be restored.
pub async fn restore(pool: &NodePool, node: NodeId, file: Vec<u8>) -> Result<Restored, Error> {
    member(pool, node)?;
    let (header, _) = backup::read_header(&file).map_err(|e| Error::BadRequest(e.to_string()))?;
    if header.node != node {
        return Err(Error::BadRequest(format!(
            "this is a backup of node {}, not of node {node}",
            header.node
        )));
    }
    // The cluster's view of every key: the other members' metadata, the newest epoch of each.
    let others: Vec<NodeId> = pool.ids().into_iter().filter(|n| *n != node).collect();
    let answers = pool
        .call_each(&others, |_| NodeRequest::ListKeys, LIST_TIMEOUT)
        .await;
    let mut cluster: HashMap<KeyId, KeyInfo> = HashMap::new();
    let mut heard = 0usize;
    for (_, answer) in answers {
        let Ok(NodeResponse::Keys(keys)) = answer else {
            continue;
        };
        heard += 1;
        for info in keys {
            let keep = match cluster.get(&info.id) {
                None => true,
                // A tombstone wins; otherwise the newest epoch.
                Some(seen) => {
                    !destroyed(seen.state) && (destroyed(info.state) || info.epoch > seen.epoch)
                }
            };
            if keep {
                cluster.insert(info.id, info);
            }
        }
    }
    if heard == 0 {
        return Err(Error::Unavailable {
            message: format!(
                "no other node answered: cannot check the backup's epochs against the cluster (nodes {others:?})"
            ),
            nodes: others,
        });
    }
    let mut restore = Vec::new();
    let mut skipped = Vec::new();
    let mut stale = Vec::new();
    for key in &header.keys {
        match cluster.get(&key.id) {
            None => skipped.push((
                key.id,
                "no other node has this key any more (destroyed, or never completed): not restored"
                    .to_string(),
            )),
            Some(info) if destroyed(info.state) => skipped.push((
                key.id,
                "destroyed in the cluster: a destroyed key does not come back from a backup"
                    .to_string(),
            )),
            Some(info) if info.epoch > key.epoch => stale.push(format!(
                "key {} is at epoch {} in the backup but at epoch {} in the cluster",
                key.id, key.epoch, info.epoch
            )),
            Some(info) if !info.holders.contains(&node) => skipped.push((
                key.id,
                format!(
                    "node {node} no longer holds this key (its holders are {:?}): not restored",
                    info.holders
                ),
            )),
            Some(_) => restore.push(key.id),
        }
    }
    if !stale.is_empty() {
        return Err(Error::BadRequest(format!(
                "backup of node {node} refused: it is older than the last refresh or reshare. {}. Its shares no \
                 longer combine with the others'; repair the node instead (vhsm node repair {node})",
                stale.join("; ")
            )));
    }
    if !restore.is_empty() {
        let request = NodeRequest::Restore {
            backup: file,
            keys: restore.clone(),
        };
        match pool
            .call(node, &request, BACKUP_TIMEOUT)
            .await
            .map_err(call_error)?
        {
            NodeResponse::Ok => {}
            _ => {
                return Err(Error::Internal(format!(
                    "node {node} answered the restore with something else"
                )))
            }
        }
    }
    Ok((restore, skipped))
}
