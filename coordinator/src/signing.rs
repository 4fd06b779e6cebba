//! Threshold signing, orchestrated: FROST with the coordinator as the RFC 9591 "coordinator" role.
//!
//! For each signature the coordinator picks `t` holders (preferring nodes that did not fail lately, rotating for
//! load), asks them for nonce commitments (round 1), sends them the signing package and collects signature shares
//! (round 2), and aggregates. Every share is verified: a node whose share is invalid is named in the log and left
//! out, and the signature is retried with another set of holders; so is a node that does not answer in time.
//! When fewer than `t` holders remain, the error names the unreachable and misbehaving nodes.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use rand_core::OsRng;
use vhsm_protocols::{
    frost::{aggregate, share::FrostPublicKeys},
    SessionId,
};
use vhsm_wire::{
    messages::{NodeRequest, NodeResponse},
    ErrorKind, KeyInfo, NodeId, WireError,
};

use crate::nodes::{NodeCallError, NodePool};

/// How long a node may take for one signing round.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(3);

/// A completed signature.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The signature.
    pub signature: Vec<u8>,
    /// The nodes that made it.
    pub signers: Vec<NodeId>,
}

/// Runs threshold signing for one message.
#[derive(Debug, Default)]
pub struct Signer {
    rotation: AtomicUsize,
}

impl Signer {
    /// Picks `t` holders not excluded: first those that did not fail lately, starting at a rotating offset.
    fn pick(
        &self,
        pool: &NodePool,
        key: &KeyInfo,
        excluded: &BTreeSet<NodeId>,
    ) -> Option<Vec<NodeId>> {
        let candidates: Vec<NodeId> = key
            .holders
            .iter()
            .copied()
            .filter(|h| !excluded.contains(h))
            .collect();
        let t = usize::from(key.threshold);
        if candidates.len() < t {
            return None;
        }
        let offset = self.rotation.fetch_add(1, Ordering::Relaxed) % candidates.len();
        let rotated = candidates
            .iter()
            .cycle()
            .skip(offset)
            .take(candidates.len())
            .copied();
        let (healthy, failed): (Vec<NodeId>, Vec<NodeId>) =
            rotated.partition(|n| !pool.recently_failed(*n));
        let mut chosen: Vec<NodeId> = healthy.into_iter().chain(failed).take(t).collect();
        chosen.sort_unstable();
        Some(chosen)
    }

    /// Signs `message` with `key`.
    pub async fn sign(
        &self,
        pool: &NodePool,
        key: &KeyInfo,
        message: &[u8],
    ) -> Result<Signed, WireError> {
        let public = public_keys(key)?;
        let mut excluded = BTreeSet::new();
        let mut unreachable = BTreeSet::new();
        let mut culprits = BTreeSet::new();
        let mut refusals = Vec::new();
        while let Some(set) = self.pick(pool, key, &excluded) {
            match self.attempt(pool, key, &public, &set, message).await {
                Ok(signature) => {
                    return Ok(Signed {
                        signature,
                        signers: set,
                    })
                }
                Err(Attempt::Unreachable(nodes)) => {
                    tracing::warn!(key = %key.id, ?nodes, "signing: node(s) unreachable; retrying with other holders");
                    unreachable.extend(nodes.iter().copied());
                    excluded.extend(nodes);
                }
                Err(Attempt::Misbehaved(nodes, reason)) => {
                    tracing::warn!(
                        key = %key.id, ?nodes, %reason,
                        "signing: node(s) sent invalid protocol messages; left out, retrying with other holders"
                    );
                    culprits.extend(nodes.iter().copied());
                    excluded.extend(nodes);
                }
                Err(Attempt::Refused(node, error)) => {
                    if error.kind == ErrorKind::NotFound {
                        tracing::warn!(key = %key.id, node, "signing: holder does not have the key");
                    }
                    refusals.push(format!("node {node}: {error}"));
                    excluded.insert(node);
                }
            }
        }
        let mut message = format!(
            "cannot sign with key {}: it needs {} of its {} holders",
            key.id,
            key.threshold,
            key.holders.len()
        );
        if !unreachable.is_empty() {
            message.push_str(&format!(
                "; unreachable: {:?}",
                unreachable.iter().collect::<Vec<_>>()
            ));
        }
        if !culprits.is_empty() {
            message.push_str(&format!(
                "; sent invalid shares: {:?}",
                culprits.iter().collect::<Vec<_>>()
            ));
        }
        for r in &refusals {
            message.push_str("; ");
            message.push_str(r);
        }
        let kind = if unreachable.is_empty() && !culprits.is_empty() {
            ErrorKind::Misbehaviour
        } else {
            ErrorKind::Unavailable
        };
        Err(WireError {
            kind,
            message,
            nodes: unreachable.union(&culprits).copied().collect(),
        })
    }

    async fn attempt(
        &self,
        pool: &NodePool,
        key: &KeyInfo,
        public: &FrostPublicKeys,
        set: &[NodeId],
        message: &[u8],
    ) -> Result<Vec<u8>, Attempt> {
        let session = SessionId::random(&mut OsRng);
        let key_id = key.id;

        let answers = pool
            .call_each(
                set,
                |_| NodeRequest::SignCommit { session, key_id },
                ROUND_TIMEOUT,
            )
            .await;
        let mut commitments = BTreeMap::new();
        for (node, answer) in answers {
            match answer {
                Ok(NodeResponse::Commitments(c)) => {
                    commitments.insert(node, c);
                }
                other => return Err(Attempt::from_failure(node, other)),
            }
        }
        let package = aggregate::signing_package(&commitments, message)
            .map_err(|e| Attempt::Misbehaved(e.culprits().to_vec(), e.to_string()))?;

        let answers = pool
            .call_each(
                set,
                |_| NodeRequest::SignShare {
                    session,
                    key_id,
                    package: package.clone(),
                },
                ROUND_TIMEOUT,
            )
            .await;
        let mut shares = BTreeMap::new();
        for (node, answer) in answers {
            match answer {
                Ok(NodeResponse::SignatureShare(s)) => {
                    shares.insert(node, s);
                }
                other => return Err(Attempt::from_failure(node, other)),
            }
        }
        match aggregate::aggregate(public, &package, &shares) {
            Ok(signature) => Ok(signature.to_vec()),
            Err(e) if !e.culprits().is_empty() => {
                Err(Attempt::Misbehaved(e.culprits().to_vec(), e.to_string()))
            }
            Err(e) => Err(Attempt::Misbehaved(set.to_vec(), e.to_string())),
        }
    }
}

/// Why one attempt with one set of holders failed.
enum Attempt {
    Unreachable(Vec<NodeId>),
    Misbehaved(Vec<NodeId>, String),
    Refused(NodeId, WireError),
}

impl Attempt {
    fn from_failure(node: NodeId, answer: Result<NodeResponse, NodeCallError>) -> Self {
        match answer {
            Err(NodeCallError::Unreachable { node, .. }) => Attempt::Unreachable(vec![node]),
            Err(NodeCallError::Refused { node, error }) => Attempt::Refused(node, error),
            Ok(_) => Attempt::Misbehaved(
                vec![node],
                "answered something other than what was asked".into(),
            ),
        }
    }
}

/// The key's public key package, as every holder reported it at generation.
fn public_keys(key: &KeyInfo) -> Result<FrostPublicKeys, WireError> {
    FrostPublicKeys::from_bytes(&key.public_package).map_err(|e| {
        WireError::new(
            ErrorKind::Internal,
            format!("key {} has no usable public keys: {e}", key.id),
        )
    })
}
