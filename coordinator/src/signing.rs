//! Threshold signing, orchestrated.
//!
//! For each signature the coordinator picks `t` holders (preferring nodes that did not fail lately, rotating for
//! load) and runs one attempt with them:
//!
//! - **Ed25519 (FROST)**: the coordinator is RFC 9591's coordinator. Round one happens ahead of time: it keeps a
//!   queue of nonce commitments fetched in bulk from each node ([`Precommitments`]; the nodes keep the nonces), so
//!   a signature takes one commitment per signer from the queues, sends the signing package, collects the
//!   signature shares (one round trip) and aggregates, verifying the signature (and each share if it fails).
//! - **ECDSA (DKLs23)**: the signers run the protocol among themselves over the mesh; each answers the signature,
//!   which the coordinator verifies against the public key before returning it.
//!
//! A node whose messages the coordinator finds invalid (a signature share or a signature that does not verify) is
//! named in the log and left out, and the signature is retried with another set of holders; so is a node that does
//! not answer in time. A node's word against others — it says a peer sent invalid messages, failed an OT check
//! (a ban) or cannot be reached — is no evidence the coordinator can check, so it never leaves the accused out
//! alone: accuser and accused are kept **apart** (never in one signing set), which leaves out a liar's accusations
//! with the liar. A ban a node holds lasts until an operator clears it (`vhsm node unban`), and keeps that pair
//! apart in ECDSA signing. When no set of `t` holders remains, the error names the unreachable and misbehaving
//! nodes and the pairs kept apart.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use rand_core::OsRng;
use vhsm_core::{KeyId, KeyInfo};
use vhsm_protocols::{
    ecdsa::{
        digest::{signing_digest, HashAlg},
        verify::verify_prehash,
        EcdsaCurve,
    },
    frost::{aggregate, share::FrostPublicKeys, DecodedCommitments},
    SessionId,
};
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse, NonceId},
    ErrorKind, NodeId, WireError,
};

use crate::error::Error;
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

/// How many nonce commitments one `Precommit` fetches from a node.
pub const PRECOMMIT_BATCH: u16 = 256;
/// Queued commitments older than this are dropped unused (nodes keep handed-out nonces for 10 minutes).
const PRECOMMIT_MAX_AGE: Duration = Duration::from_secs(300);
/// How many times one signature fetches fresh commitments after a node said its nonces were gone.
const STALE_RETRIES: usize = 2;

/// Runs threshold signing.
#[derive(Debug, Default)]
pub struct Signer {
    rotation: AtomicUsize,
    /// Bans from OT-based protocols, (the node that holds the ban, the node it banned), as last reported: each
    /// pair is kept apart in ECDSA signing.
    banned: Mutex<BTreeSet<(NodeId, NodeId)>>,
    /// FROST nonce commitments fetched ahead of time.
    precommitments: Precommitments,
    /// FROST keys' public key packages, decoded once (each point check costs tens of microseconds).
    public_keys: Mutex<HashMap<KeyId, CachedPublicKeys>>,
}

/// A FROST key's public key package as stored (to notice a change), and decoded.
type CachedPublicKeys = Arc<(Vec<u8>, FrostPublicKeys)>;

/// A queued commitment: when it was fetched, the node's handle of the nonces, the commitments (points checked).
type Queued = (Instant, NonceId, DecodedCommitments);

/// FROST nonce commitments fetched from each node ahead of time (FROST's preprocessing). Each is taken out of
/// its queue by exactly one signature attempt and never handed out again; the node holding the nonces refuses a
/// second use anyway. A node that lost its nonces (a restart) answers [`ErrorKind::Stale`]: its queue is emptied
/// and refilled.
#[derive(Debug, Default)]
struct Precommitments {
    queues: Mutex<HashMap<NodeId, VecDeque<Queued>>>,
    /// One fetch per node at a time; concurrent signatures wait for it instead of fetching again.
    fetching: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Precommitments {
    fn pop(&self, node: NodeId) -> Option<(NonceId, DecodedCommitments)> {
        let mut queues = self.queues.lock().ok()?;
        let queue = queues.get_mut(&node)?;
        while let Some((fetched, id, c)) = queue.pop_front() {
            if fetched.elapsed() < PRECOMMIT_MAX_AGE {
                return Some((id, c));
            }
        }
        None
    }

    fn forget(&self, node: NodeId) {
        if let Ok(mut queues) = self.queues.lock() {
            queues.remove(&node);
        }
    }

    /// One commitment of `node`, fetching a batch if its queue is empty.
    async fn take(
        &self,
        pool: &NodePool,
        node: NodeId,
    ) -> Result<(NonceId, DecodedCommitments), Attempt> {
        if let Some(p) = self.pop(node) {
            return Ok(p);
        }
        let gate = {
            let mut fetching = self.fetching.lock().map_err(|_| {
                Attempt::Refused(node, WireError::new(ErrorKind::Internal, "lock poisoned"))
            })?;
            fetching.entry(node).or_default().clone()
        };
        let _fetch = gate.lock().await;
        // Another signature may have fetched while this one waited.
        if let Some(p) = self.pop(node) {
            return Ok(p);
        }
        let answer = pool
            .call(
                node,
                &NodeRequest::Precommit {
                    count: PRECOMMIT_BATCH,
                },
                ROUND_TIMEOUT,
            )
            .await;
        let batch = match answer {
            Ok(NodeResponse::Precommitments(batch)) if !batch.is_empty() => batch,
            Ok(NodeResponse::Precommitments(_)) => {
                return Err(Attempt::Misbehaved(
                    vec![node],
                    "handed out no nonce commitments".into(),
                ))
            }
            other => return Err(Attempt::from_failure(node, other)),
        };
        // Every point is checked once, here, off the signature that waits for the batch only this once.
        let now = Instant::now();
        let mut decoded = Vec::with_capacity(batch.len());
        for p in batch {
            let c = p.commitments.decode().map_err(|e| {
                Attempt::Misbehaved(vec![node], format!("handed out invalid commitments: {e}"))
            })?;
            decoded.push((now, p.id, c));
        }
        let mut decoded = VecDeque::from(decoded);
        let Some((_, id, first)) = decoded.pop_front() else {
            return Err(Attempt::Misbehaved(vec![node], "no commitments".into()));
        };
        if let Ok(mut queues) = self.queues.lock() {
            queues.entry(node).or_default().extend(decoded);
        }
        Ok((id, first))
    }
}

/// What to sign, prepared for the key's scheme.
enum Prepared<'a> {
    Frost {
        /// The key's public key package as stored, and decoded.
        public: CachedPublicKeys,
        message: &'a [u8],
    },
    Ecdsa {
        curve: EcdsaCurve,
        digest: [u8; 32],
    },
}

impl Signer {
    /// Replaces the bans, (banning node, banned node), from the nodes' status reports.
    pub fn set_banned(&self, banned: impl IntoIterator<Item = (NodeId, NodeId)>) {
        if let Ok(mut b) = self.banned.lock() {
            *b = banned.into_iter().collect();
        }
    }

    fn add_banned(&self, by: NodeId, nodes: &[NodeId]) {
        if let Ok(mut b) = self.banned.lock() {
            b.extend(nodes.iter().map(|n| (by, *n)));
        }
    }

    /// The bans, (banning node, banned node): each pair is kept apart in ECDSA sessions.
    pub fn banned(&self) -> Vec<(NodeId, NodeId)> {
        self.banned
            .lock()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The public key package of FROST key `key`, decoded once per key and epoch (its bytes are compared, so a
    /// key whose package changed is decoded anew).
    fn public_keys(&self, key: &KeyInfo) -> Result<CachedPublicKeys, Error> {
        if let Some(cached) = self
            .public_keys
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key.id).cloned())
        {
            if cached.0 == key.public_package {
                return Ok(cached);
            }
        }
        let decoded = Arc::new((key.public_package.clone(), public_keys(key)?));
        if let Ok(mut cache) = self.public_keys.lock() {
            if cache.len() >= 100_000 {
                cache.clear();
            }
            cache.insert(key.id, decoded.clone());
        }
        Ok(decoded)
    }

    /// Picks `t` holders not excluded and no two of them a pair kept `apart`: first those that did not fail
    /// lately (nor are known unable to use their share of this key, [`NodePool::unusable`]), starting at a rotating
    /// offset.
    fn pick(
        &self,
        pool: &NodePool,
        key: &KeyInfo,
        excluded: &BTreeSet<NodeId>,
        apart: &BTreeSet<(NodeId, NodeId)>,
    ) -> Option<Vec<NodeId>> {
        let candidates: Vec<NodeId> = key
            .holders
            .iter()
            .copied()
            .filter(|h| !excluded.contains(h))
            .collect();
        let t = usize::from(key.threshold);
        if candidates.len() < t || t == 0 {
            return None;
        }
        let offset = self.rotation.fetch_add(1, Ordering::Relaxed) % candidates.len();
        let rotated = candidates
            .iter()
            .cycle()
            .skip(offset)
            .take(candidates.len())
            .copied();
        let unable = pool.unusable(key.id, key.epoch);
        let (mut healthy, failed): (Vec<NodeId>, Vec<NodeId>) =
            rotated.partition(|n| !pool.recently_failed(*n) && !unable.contains(n));
        // Among the healthy, those fewest peers said lately they could not reach first (stable: the rotation
        // stays among equals).
        healthy.sort_by_key(|n| pool.suspicion(*n));
        let preferred: Vec<NodeId> = healthy.into_iter().chain(failed).collect();
        let mut chosen = choose_apart(&preferred, t, apart)?;
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
    ) -> Result<Signed, Error> {
        let bad = |m: String| Error::BadRequest(m);
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
                    public: self.public_keys(key)?,
                    message,
                }
            }
            Some(curve) => Prepared::Ecdsa {
                curve,
                digest: signing_digest(hash.unwrap_or(HashAlg::Sha256), message)
                    .map_err(|e| Error::InvalidData(format!("cannot sign this input: {e}")))?,
            },
        };
        // Left out on the coordinator's own evidence (or because it could not reach them).
        let mut excluded: BTreeSet<NodeId> = BTreeSet::new();
        // Kept apart on a node's word: never in one signing set.
        let mut apart: BTreeSet<(NodeId, NodeId)> = match prepared {
            Prepared::Ecdsa { .. } => self.banned().into_iter().map(pair).collect(),
            Prepared::Frost { .. } => BTreeSet::new(),
        };
        let banned_at_start = self.banned();
        let mut unreachable = BTreeSet::new();
        let mut culprits = BTreeSet::new();
        let mut accusations: Vec<String> = Vec::new();
        let mut refusals = Vec::new();
        let mut forbidden: Option<(NodeId, vhsm_wire::WireError)> = None;
        let mut stale_retries = 0;
        while let Some(set) = self.pick(pool, key, &excluded, &apart) {
            let attempt = match &prepared {
                Prepared::Frost { public, message } => {
                    self.attempt_frost(pool, key, &public.1, &set, message)
                        .await
                }
                Prepared::Ecdsa { curve, digest } => {
                    self.attempt_ecdsa(pool, key, *curve, &set, digest).await
                }
            };
            match attempt {
                Ok(signature) => {
                    pool.note_reached(&set);
                    return Ok(Signed {
                        signature,
                        signers: set,
                    });
                }
                Err(Attempt::Unreachable(nodes)) => {
                    tracing::warn!(key = %key.id, ?nodes, "signing: node(s) unreachable; retrying with other holders");
                    unreachable.extend(nodes.iter().copied());
                    excluded.extend(nodes);
                }
                Err(Attempt::Accused {
                    accuser,
                    accused,
                    blame,
                    reason,
                }) => {
                    if accused.is_empty() {
                        pool.note_unusable(key.id, key.epoch, [accuser]);
                    }
                    match blame {
                        Blame::Banned => {
                            tracing::error!(
                                key = %key.id, by = accuser, nodes = ?accused, %reason,
                                "signing: node(s) BANNED from OT-based protocols by a node; each is kept apart from it in ECDSA signing until an operator clears the ban (vhsm node unban ID)"
                            );
                            self.add_banned(accuser, &accused);
                        }
                        Blame::Misbehaved => tracing::warn!(
                            key = %key.id, by = accuser, nodes = ?accused, %reason,
                            "signing: a node says these node(s) sent invalid protocol messages; accuser and accused are kept apart, retrying with other holders"
                        ),
                        Blame::Unreachable => {
                            tracing::warn!(
                                key = %key.id, by = accuser, nodes = ?accused, %reason,
                                "signing: a node could not reach these node(s); it and they are kept apart, retrying with other holders"
                            );
                        }
                    }
                    accusations.push(format!("node {accuser} {blame} {accused:?}"));
                    apart.extend(accused.iter().map(|a| pair((accuser, *a))));
                    if accused.is_empty() {
                        excluded.insert(accuser);
                    }
                }
                Err(Attempt::Misbehaved(nodes, reason)) => {
                    tracing::warn!(
                        key = %key.id, ?nodes, %reason,
                        "signing: node(s) sent invalid protocol messages; left out, retrying with other holders"
                    );
                    culprits.extend(nodes.iter().copied());
                    excluded.extend(nodes);
                }
                Err(Attempt::Stale(node, error)) if stale_retries < STALE_RETRIES => {
                    stale_retries += 1;
                    tracing::info!(key = %key.id, node, %error, "signing: node no longer has the pre-made nonces (restarted?); fetching fresh ones");
                    self.precommitments.forget(node);
                }
                Err(Attempt::Stale(node, error)) => {
                    refusals.push(format!("node {node}: {error}"));
                    excluded.insert(node);
                }
                Err(Attempt::Refused(node, error)) => {
                    if error.kind == ErrorKind::NotFound {
                        tracing::warn!(key = %key.id, node, "signing: holder does not have the key");
                    }
                    if !matches!(
                        error.kind,
                        ErrorKind::Forbidden | ErrorKind::BadRequest | ErrorKind::InvalidData
                    ) {
                        pool.note_unusable(key.id, key.epoch, [node]);
                    }
                    if error.kind == ErrorKind::Forbidden && forbidden.is_none() {
                        forbidden = Some((node, error.clone()));
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
        if !accusations.is_empty() {
            message.push_str(&format!(
                "; kept apart on a node's word: {}",
                accusations.join(", ")
            ));
        }
        if !banned_at_start.is_empty() && matches!(prepared, Prepared::Ecdsa { .. }) {
            let bans: Vec<String> = banned_at_start
                .iter()
                .map(|(by, b)| format!("node {by} banned node {b}"))
                .collect();
            message.push_str(&format!(
                "; kept apart in ECDSA signing until an operator clears the bans: {}",
                bans.join(", ")
            ));
        }
        for r in &refusals {
            message.push_str("; ");
            message.push_str(r);
        }
        let accused: BTreeSet<NodeId> = apart.iter().flat_map(|(a, b)| [*a, *b]).collect();
        // The holders refused by their own rules (a key state, a usage flag): that is the answer, in their words.
        if let (Some((node, error)), true) = (
            forbidden,
            unreachable.is_empty() && culprits.is_empty() && accused.is_empty(),
        ) {
            return Err(Error::Refused { node, error });
        }
        let nodes = unreachable
            .union(&culprits)
            .copied()
            .collect::<BTreeSet<_>>()
            .union(&accused)
            .copied()
            .collect();
        Err(
            if unreachable.is_empty() && !(culprits.is_empty() && accused.is_empty()) {
                Error::Misbehaviour {
                    message,
                    culprits: nodes,
                }
            } else {
                Error::Unavailable { message, nodes }
            },
        )
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

        // Round one was done ahead of time: one queued commitment of each signer.
        let taken = futures_util::future::join_all(
            set.iter()
                .map(|&node| async move { (node, self.precommitments.take(pool, node).await) }),
        )
        .await;
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for (node, p) in taken {
            let (id, c) = p?;
            nonces.insert(node, id);
            commitments.insert(node, c);
        }
        let (package, decoded) = aggregate::signing_package_decoded(&commitments, message)
            .map_err(|e| Attempt::Misbehaved(e.culprits().to_vec(), e.to_string()))?;

        let answers = pool
            .call_each(
                set,
                |node| NodeRequest::SignShare {
                    session,
                    nonce: nonces.get(&node).copied().unwrap_or_default(),
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
        match aggregate::aggregate_decoded(public, &decoded, &shares) {
            Ok(signature) => Ok(signature.to_vec()),
            Err(e) if !e.culprits().is_empty() => {
                Err(Attempt::Misbehaved(e.culprits().to_vec(), e.to_string()))
            }
            Err(e) => Err(Attempt::Misbehaved(set.to_vec(), e.to_string())),
        }
    }
}

/// What a node says of others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blame {
    /// They failed an OT-based protocol's check; it banned them.
    Banned,
    /// They sent it invalid protocol messages.
    Misbehaved,
    /// It could not reach them.
    Unreachable,
}

impl std::fmt::Display for Blame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Blame::Banned => "banned",
            Blame::Misbehaved => "blames",
            Blame::Unreachable => "cannot reach",
        })
    }
}

/// A pair of nodes in order, to keep apart.
fn pair((a, b): (NodeId, NodeId)) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

/// The first `t` of `preferred` (in that order of preference) of which no two are a pair in `apart`; `None` if
/// there is no such set. A depth-first search: clusters have a handful of holders.
fn choose_apart(
    preferred: &[NodeId],
    t: usize,
    apart: &BTreeSet<(NodeId, NodeId)>,
) -> Option<Vec<NodeId>> {
    fn extend(
        preferred: &[NodeId],
        from: usize,
        t: usize,
        apart: &BTreeSet<(NodeId, NodeId)>,
        chosen: &mut Vec<NodeId>,
    ) -> bool {
        if chosen.len() == t {
            return true;
        }
        for (i, &candidate) in preferred.iter().enumerate().skip(from) {
            if preferred.len() - i < t - chosen.len() {
                return false;
            }
            if chosen
                .iter()
                .any(|c| apart.contains(&pair((*c, candidate))))
            {
                continue;
            }
            chosen.push(candidate);
            if extend(preferred, i + 1, t, apart, chosen) {
                return true;
            }
            chosen.pop();
        }
        false
    }
    let mut chosen = Vec::with_capacity(t);
    extend(preferred, 0, t, apart, &mut chosen).then_some(chosen)
}

/// Why one attempt with one set of holders failed.
enum Attempt {
    /// The coordinator could not reach these nodes.
    Unreachable(Vec<NodeId>),
    /// The coordinator's own checks show these nodes sent something invalid.
    Misbehaved(Vec<NodeId>, String),
    /// A node's word against others, which the coordinator cannot check.
    Accused {
        accuser: NodeId,
        accused: Vec<NodeId>,
        blame: Blame,
        reason: String,
    },
    /// The node no longer has the pre-made nonces it was asked to use: fetch fresh ones and try again.
    Stale(NodeId, WireError),
    Refused(NodeId, WireError),
}

impl Attempt {
    fn from_failure(node: NodeId, answer: Result<NodeResponse, NodeCallError>) -> Self {
        match answer {
            Err(NodeCallError::Unreachable { node, .. }) => Attempt::Unreachable(vec![node]),
            // A node that names others (culprits, or peers it could not reach) points at them, not at itself.
            Err(NodeCallError::Refused { node, error }) => match error.kind {
                ErrorKind::Banned | ErrorKind::Misbehaviour | ErrorKind::Unavailable
                    if !error.nodes.is_empty() =>
                {
                    let blame = match error.kind {
                        ErrorKind::Banned => Blame::Banned,
                        ErrorKind::Misbehaviour => Blame::Misbehaved,
                        _ => Blame::Unreachable,
                    };
                    Attempt::Accused {
                        accuser: node,
                        // A node naming itself is not an accusation.
                        accused: error.nodes.into_iter().filter(|n| *n != node).collect(),
                        blame,
                        reason: error.message,
                    }
                }
                ErrorKind::Stale => Attempt::Stale(node, error),
                _ => Attempt::Refused(node, error),
            },
            Ok(_) => Attempt::Misbehaved(
                vec![node],
                "answered something other than what was asked".into(),
            ),
        }
    }

    /// Whether the failure is the answering node's own (it could not be reached, or it refused), naming no other
    /// node: its co-signers can only fail waiting for it.
    fn is_own(&self) -> bool {
        match self {
            Attempt::Unreachable(_) | Attempt::Stale(..) | Attempt::Refused(..) => true,
            Attempt::Accused { accused, .. } => accused.is_empty(),
            Attempt::Misbehaved(..) => false,
        }
    }

    /// The most telling failure among several signers' answers: culprits first, then unreachable nodes.
    fn worst(failures: Vec<Attempt>) -> Option<Attempt> {
        let rank = |a: &Attempt| match a {
            Attempt::Accused {
                blame: Blame::Banned,
                ..
            } => 0,
            Attempt::Misbehaved(..) | Attempt::Accused { .. } => 1,
            Attempt::Unreachable(..) => 2,
            Attempt::Stale(..) | Attempt::Refused(..) => 3,
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
        // Answers as they come: a signer that fails on its own account (unreachable, or refusing: its share is
        // behind, its record forbids it) ends the attempt at once. Its co-signers would only wait for it — until it
        // tells them it gave up, or their session times out if it cannot — and are not waited for: the next set is
        // tried meanwhile.
        let mut calls: futures_util::stream::FuturesUnordered<_> = set
            .iter()
            .map(|&node| {
                let request = request(node);
                async move { (node, pool.call(node, &request, ECDSA_TIMEOUT).await) }
            })
            .collect();
        let mut signatures = Vec::new();
        let mut failures = Vec::new();
        while let Some((node, answer)) = futures_util::StreamExt::next(&mut calls).await {
            match answer {
                Ok(NodeResponse::EcdsaSignature(sig)) => signatures.push((node, sig)),
                other => {
                    let failure = Attempt::from_failure(node, other);
                    if failure.is_own() {
                        return Err(failure);
                    }
                    failures.push(failure);
                }
            }
        }
        let (signature, wrong) = first_valid(signatures, |sig| {
            verify_prehash(curve, &key.public_key, digest, sig)
        });
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
        // Every signer's word that it could not reach another counts (not only the failure reported): a node cut
        // off from its peers is named by each of them, and picked last by the next signatures.
        for failure in &failures {
            if let Attempt::Accused {
                accuser,
                accused,
                blame: Blame::Unreachable,
                ..
            } = failure
            {
                for a in accused {
                    pool.note_unreachable_by_peer(*accuser, *a);
                }
            }
        }
        if let Some(worst) = Attempt::worst(without_waiters(failures)) {
            return Err(worst);
        }
        signature.ok_or_else(|| Attempt::Misbehaved(set.to_vec(), "no signature".into()))
    }
}

/// Drops the reports of signers that only waited for a co-signer which itself said it could not take part (it
/// gave up the session, or never started it): the blame is the refusing node's, never its peers' (issue 15, item
/// 1: a healthy peer's "node 3 gave up" used to rank with node 3's own refusal, and the healthy one was left out).
fn without_waiters(failures: Vec<Attempt>) -> Vec<Attempt> {
    let gave_up: BTreeSet<NodeId> = failures
        .iter()
        .filter_map(|f| match f {
            Attempt::Refused(node, _) | Attempt::Stale(node, _) => Some(*node),
            Attempt::Accused {
                accuser, accused, ..
            } if accused.is_empty() => Some(*accuser),
            _ => None,
        })
        .collect();
    failures
        .into_iter()
        .filter(|f| {
            !matches!(f, Attempt::Accused { blame: Blame::Unreachable, accused, .. }
                if !accused.is_empty() && accused.iter().all(|a| gave_up.contains(a)))
        })
        .collect()
}

/// The first signature that verifies among the signers' answers, and the nodes whose answer did not verify.
/// Every signer outputs the same (r, s): an answer equal to one already verified is not verified again (each
/// verification is ~0.4 ms of P-256 arithmetic, most of the coordinator's work per signature).
fn first_valid(
    answers: Vec<(NodeId, Vec<u8>)>,
    mut verify: impl FnMut(&[u8]) -> bool,
) -> (Option<Vec<u8>>, Vec<NodeId>) {
    let mut valid: Option<Vec<u8>> = None;
    let mut wrong = Vec::new();
    for (node, sig) in answers {
        if valid.as_ref() == Some(&sig) {
            continue;
        }
        if verify(&sig) {
            valid.get_or_insert(sig);
        } else {
            wrong.push(node);
        }
    }
    (valid, wrong)
}

/// The key's public key package, as every holder reported it at generation.
fn public_keys(key: &KeyInfo) -> Result<FrostPublicKeys, Error> {
    FrostPublicKeys::from_bytes(&key.public_package)
        .map_err(|e| Error::Internal(format!("key {} has no usable public keys: {e}", key.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equal_signature_is_verified_once_and_a_wrong_one_names_its_node() {
        let good = vec![1u8; 64];
        let other_good = vec![2u8; 64];
        let bad = vec![9u8; 64];
        let mut checked = Vec::new();
        let (sig, wrong) = first_valid(
            vec![
                (1, bad.clone()),
                (2, good.clone()),
                (3, good.clone()),
                (4, other_good.clone()),
            ],
            |s| {
                checked.push(s.to_vec());
                s != bad.as_slice()
            },
        );
        assert_eq!(sig, Some(good.clone()));
        assert_eq!(wrong, vec![1]);
        // node 3's copy of the verified signature is not checked again; a different one is.
        assert_eq!(checked, vec![bad, good, other_good]);
        let (none, wrong) = first_valid(vec![(5, vec![0u8; 64])], |_| false);
        assert_eq!((none, wrong), (None, vec![5]));
    }
}
