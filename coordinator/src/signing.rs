//! Threshold signing, orchestrated.
//!
//! For each signature the coordinator picks `t` holders (preferring nodes that did not fail lately, rotating for
//! load) and runs one attempt with them:
//!
//! - **Ed25519 (FROST)**: the coordinator is RFC 9591's coordinator: it asks the signers for nonce commitments
//!   (round 1), sends them the signing package and collects signature shares (round 2), and aggregates, verifying
//!   every share.
//! - **ECDSA (DKLs23)**: the signers run the protocol among themselves over the mesh; each answers the signature,
//!   which the coordinator verifies against the public key before returning it.
//!
//! A node whose messages are invalid is named in the log and left out, and the signature is retried with another
//! set of holders; so is a node that does not answer in time. A node banned by an OT-based protocol is left out of
//! ECDSA signing until an operator clears the ban. When fewer than `t` holders remain, the error names the
//! unreachable and misbehaving nodes.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::Duration,
};

use rand_core::OsRng;
use vhsm_protocols::{
    ecdsa::{
        digest::{signing_digest, HashAlg},
        verify::verify_prehash,
        EcdsaCurve,
    },
    frost::{aggregate, share::FrostPublicKeys},
    SessionId,
};
use vhsm_wire::{
    messages::{NodeRequest, NodeResponse},
    ErrorKind, KeyInfo, NodeId, WireError,
};

use crate::nodes::{NodeCallError, NodePool};

/// How long a node may take for one FROST signing round.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a node may take for a whole ECDSA signing session (its own limit is shorter, so it answers first).
pub const ECDSA_TIMEOUT: Duration = Duration::from_secs(12);

/// A completed signature.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The signature.
    pub signature: Vec<u8>,
    /// The nodes that made it.
    pub signers: Vec<NodeId>,
}

/// Runs threshold signing.
#[derive(Debug, Default)]
pub struct Signer {
    rotation: AtomicUsize,
    /// Nodes banned by some node from OT-based protocols, as last reported; left out of ECDSA signing.
    banned: Mutex<BTreeSet<NodeId>>,
}

/// What to sign, prepared for the key's scheme.
enum Prepared<'a> {
    Frost {
        public: Box<FrostPublicKeys>,
        message: &'a [u8],
    },
    Ecdsa {
        curve: EcdsaCurve,
        digest: [u8; 32],
    },
}

impl Signer {
    /// Replaces the set of banned nodes (from the nodes' status reports).
    pub fn set_banned(&self, banned: impl IntoIterator<Item = NodeId>) {
        if let Ok(mut b) = self.banned.lock() {
            *b = banned.into_iter().collect();
        }
    }

    fn add_banned(&self, nodes: &[NodeId]) {
        if let Ok(mut b) = self.banned.lock() {
            b.extend(nodes.iter().copied());
        }
    }

    /// The nodes currently left out of ECDSA signing.
    pub fn banned(&self) -> Vec<NodeId> {
        self.banned
            .lock()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default()
    }

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

    /// Signs `message` with `key` (ECDSA: hashed with `hash`, SHA-256 if `None`).
    pub async fn sign(
        &self,
        pool: &NodePool,
        key: &KeyInfo,
        message: &[u8],
        hash: Option<HashAlg>,
    ) -> Result<Signed, WireError> {
        let bad = |m: String| WireError::new(ErrorKind::BadRequest, m);
        if !key.algorithm.signs() {
            return Err(bad(format!(
                "{} keys encrypt; they do not sign",
                key.algorithm
            )));
        }
        let prepared = match key.algorithm.ecdsa_curve() {
            None => {
                if let Some(h) = hash {
                    return Err(bad(format!(
                        "{} keys sign the whole message (pure EdDSA); a hash ({}) does not apply",
                        key.algorithm,
                        h.name()
                    )));
                }
                Prepared::Frost {
                    public: Box::new(public_keys(key)?),
                    message,
                }
            }
            Some(curve) => Prepared::Ecdsa {
                curve,
                digest: signing_digest(hash.unwrap_or(HashAlg::Sha256), message)
                    .map_err(|e| bad(format!("cannot sign this input: {e}")))?,
            },
        };
        let mut excluded: BTreeSet<NodeId> = match prepared {
            Prepared::Ecdsa { .. } => self.banned().into_iter().collect(),
            Prepared::Frost { .. } => BTreeSet::new(),
        };
        let banned_at_start = excluded.clone();
        let mut unreachable = BTreeSet::new();
        let mut culprits = BTreeSet::new();
        let mut refusals = Vec::new();
        while let Some(set) = self.pick(pool, key, &excluded) {
            let attempt = match &prepared {
                Prepared::Frost { public, message } => {
                    self.attempt_frost(pool, key, public, &set, message).await
                }
                Prepared::Ecdsa { curve, digest } => {
                    self.attempt_ecdsa(pool, key, *curve, &set, digest).await
                }
            };
            match attempt {
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
                Err(Attempt::Banned(nodes, reason)) => {
                    tracing::error!(
                        key = %key.id, ?nodes, %reason,
                        "signing: node(s) BANNED from ECDSA signing until an operator clears them (vhsm node unban ID)"
                    );
                    self.add_banned(&nodes);
                    culprits.extend(nodes.iter().copied());
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
                "; sent invalid messages: {:?}",
                culprits.iter().collect::<Vec<_>>()
            ));
        }
        if !banned_at_start.is_empty() {
            message.push_str(&format!(
                "; banned from ECDSA signing until an operator clears them: {:?}",
                banned_at_start.iter().collect::<Vec<_>>()
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

    async fn attempt_frost(
        &self,
        pool: &NodePool,
        key: &KeyInfo,
        public: &FrostPublicKeys,
        set: &[NodeId],
        message: &[u8],
    ) -> Result<Vec<u8>, Attempt> {
        let session = SessionId::random(&mut OsRng);
        let (key_id, epoch) = (key.id, key.epoch);

        let answers = pool
            .call_each(
                set,
                |_| NodeRequest::SignCommit {
                    session,
                    key_id,
                    epoch,
                },
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
                    epoch,
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
    Banned(Vec<NodeId>, String),
    Refused(NodeId, WireError),
}

impl Attempt {
    fn from_failure(node: NodeId, answer: Result<NodeResponse, NodeCallError>) -> Self {
        match answer {
            Err(NodeCallError::Unreachable { node, .. }) => Attempt::Unreachable(vec![node]),
            // A node that names others (culprits, or peers it could not reach) points at them, not at itself.
            Err(NodeCallError::Refused { node, error }) => match error.kind {
                ErrorKind::Banned if !error.nodes.is_empty() => {
                    Attempt::Banned(error.nodes, error.message)
                }
                ErrorKind::Misbehaviour if !error.nodes.is_empty() => {
                    Attempt::Misbehaved(error.nodes, error.message)
                }
                ErrorKind::Unavailable if !error.nodes.is_empty() => {
                    Attempt::Unreachable(error.nodes)
                }
                _ => Attempt::Refused(node, error),
            },
            Ok(_) => Attempt::Misbehaved(
                vec![node],
                "answered something other than what was asked".into(),
            ),
        }
    }

    /// The most telling failure among several signers' answers: culprits first, then unreachable nodes.
    fn worst(failures: Vec<Attempt>) -> Option<Attempt> {
        let rank = |a: &Attempt| match a {
            Attempt::Banned(..) => 0,
            Attempt::Misbehaved(..) => 1,
            Attempt::Unreachable(..) => 2,
            Attempt::Refused(..) => 3,
        };
        failures.into_iter().min_by_key(rank)
    }
}

impl Signer {
    async fn attempt_ecdsa(
        &self,
        pool: &NodePool,
        key: &KeyInfo,
        curve: EcdsaCurve,
        set: &[NodeId],
        digest: &[u8; 32],
    ) -> Result<Vec<u8>, Attempt> {
        let session = SessionId::random(&mut OsRng);
        let request = |_| NodeRequest::EcdsaSign {
            session,
            key_id: key.id,
            epoch: key.epoch,
            signers: set.to_vec(),
            digest: *digest,
        };
        let answers = pool.call_each(set, request, ECDSA_TIMEOUT).await;
        let mut signature = None;
        let mut failures = Vec::new();
        let mut wrong = Vec::new();
        for (node, answer) in answers {
            match answer {
                Ok(NodeResponse::EcdsaSignature(sig)) => {
                    if verify_prehash(curve, &key.public_key, digest, &sig) {
                        signature.get_or_insert(sig);
                    } else {
                        wrong.push(node);
                    }
                }
                other => failures.push(Attempt::from_failure(node, other)),
            }
        }
        if !wrong.is_empty() {
            tracing::warn!(key = %key.id, nodes = ?wrong, "ECDSA signing: node(s) answered a signature that does not verify");
        }
        if let Some(signature) = signature {
            return Ok(signature);
        }
        if !wrong.is_empty() {
            return Err(Attempt::Misbehaved(
                wrong,
                "answered a signature that does not verify".into(),
            ));
        }
        if let Some(worst) = Attempt::worst(failures) {
            return Err(worst);
        }
        signature.ok_or_else(|| Attempt::Misbehaved(set.to_vec(), "no signature".into()))
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
