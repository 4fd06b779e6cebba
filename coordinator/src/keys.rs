//! Changing a key's label and public attributes, its lifecycle state, and destroying a key. (Creating one is
//! [`crate::keygen`].)
//!
//! A lifecycle transition goes to every holder, which enforces it on its own share. A transition that restricts
//! the key (deactivated, compromised) is in force once no `threshold` holders are left without it, so it needs
//! `holders − threshold + 1` confirmations; activation needs `threshold`. Holders that missed it get it when the
//! coordinator next lists the keys (the newest revision wins).
//!
//! An update goes to every holder with the next metadata revision; holders keep the highest revision, so a holder
//! that missed an update while it was down is outvoted when the coordinator learns the keys again. A destruction
//! goes to every holder; it is complete only when every holder has deleted its share, and running it again
//! finishes what an earlier attempt could not.

use std::time::Duration;

use vhsm_core::{KeyInfo, KeyState};
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    NodeId,
};

use crate::error::Error;
use crate::{keygen::check_label, nodes::NodePool, registry::Registry};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Replaces `key`'s label and attributes on its holders; needs at least `threshold` of them to confirm.
pub async fn update_key(
    pool: &NodePool,
    registry: &Registry,
    key: &KeyInfo,
    label: &str,
    attributes: Vec<(u64, Vec<u8>)>,
) -> Result<KeyInfo, Error> {
    check_label(label)?;
    let mut updated = key.clone();
    updated.label = label.to_string();
    updated.attributes = attributes;
    updated.revision = key.revision + 1;
    let answers = pool
        .call_each(
            &key.holders,
            |_| NodeRequest::UpdateKey {
                key: updated.clone(),
            },
            TIMEOUT,
        )
        .await;
    let confirmed = answers
        .iter()
        .filter(|(_, a)| matches!(a, Ok(NodeResponse::Ok)))
        .count();
    let failed: Vec<NodeId> = answers
        .iter()
        .filter(|(_, a)| a.is_err())
        .map(|(n, _)| *n)
        .collect();
    if confirmed < usize::from(key.threshold) {
        return Err(Error::Unavailable {
            message: format!(
                "key {} not updated: only {confirmed} of its holders confirmed, {} needed; failed: {failed:?}",
                key.id, key.threshold
            ),
            nodes: failed,
        });
    }
    if !failed.is_empty() {
        tracing::warn!(key = %key.id, ?failed, "key metadata updated, but these holders missed it (outvoted later)");
    }
    registry.insert(updated.clone());
    Ok(updated)
}

/// Moves `key` to `state` (not `Destroyed`: [`destroy_key`]) on its holders; returns the key as it is now.
pub async fn set_state(
    pool: &NodePool,
    registry: &Registry,
    key: &KeyInfo,
    state: KeyState,
) -> Result<KeyInfo, Error> {
    if state == KeyState::Destroyed {
        return Err(Error::BadRequest(
            "destroying a key is its own request (vhsm key destroy)".into(),
        ));
    }
    if key.state != state && !key.state.can_become(state) {
        return Err(Error::Forbidden(format!(
                "key {} is {}: it cannot become {state} (NIST SP 800-57: activation and deactivation happen once, \
                 compromise from any live state)",
                key.id, key.state
            )));
    }
    let answers = pool
        .call_each(
            &key.holders,
            |_| NodeRequest::SetKeyState {
                key_id: key.id,
                state,
            },
            TIMEOUT,
        )
        .await;
    let mut now = None;
    let mut failed = Vec::new();
    for (node, answer) in answers {
        match answer {
            Ok(NodeResponse::Key(info)) if info.state == state => now = Some(info),
            _ => failed.push(node),
        }
    }
    let confirmed = key.holders.len() - failed.len();
    let needed = if state == KeyState::Active {
        usize::from(key.threshold)
    } else {
        key.holders.len() - usize::from(key.threshold) + 1
    };
    let Some(now) = now.filter(|_| confirmed >= needed) else {
        return Err(Error::Unavailable {
            message: format!(
                "key {} is not {state} yet: {confirmed} of its holders confirmed, {needed} needed; node(s) {failed:?} \
                 did not — run the command again when they are reachable",
                key.id
            ),
            nodes: failed,
        });
    };
    if !failed.is_empty() {
        tracing::warn!(key = %key.id, ?failed, %state, "these holders missed the lifecycle change; they get it at the next reconciliation");
    }
    registry.insert(now.clone());
    tracing::warn!(key = %key.id, %state, "key lifecycle state changed");
    Ok(now)
}

/// Destroys `key`: every holder deletes its share and metadata.
pub async fn destroy_key(pool: &NodePool, registry: &Registry, key: &KeyInfo) -> Result<(), Error> {
    tracing::warn!(key = %key.id, label = %key.label, "destroying key on every holder");
    let answers = pool
        .call_each(
            &key.holders,
            |_| NodeRequest::DestroyKey { key_id: key.id },
            TIMEOUT,
        )
        .await;
    let failed: Vec<NodeId> = answers
        .iter()
        .filter(|(_, a)| a.is_err())
        .map(|(n, _)| *n)
        .collect();
    let destroyed = key.holders.len() - failed.len();
    if destroyed > key.holders.len() - usize::from(key.threshold) {
        // Fewer than `threshold` shares remain anywhere: the key can no longer be used.
        registry.remove(key.id);
    }
    if !failed.is_empty() {
        return Err(Error::Unavailable {
            message: format!(
                "key {} destroyed on {destroyed} of its {} holders; node(s) {failed:?} still hold a share: destroy it \
                 again when they are reachable",
                key.id,
                key.holders.len()
            ),
            nodes: failed,
        });
    }
    tracing::warn!(key = %key.id, "key destroyed on every holder");
    Ok(())
}
