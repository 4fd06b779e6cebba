//! The coordinator's links to the nodes: one channel per node (a QUIC connection in production, see [`quic`]; an
//! in-process handle in tests, see [`transport`]), made on first use and reused; every call bounded by a timeout; a
//! node that failed lately is remembered so that the next operation prefers others.
//!
//! The nodes are the cluster's current [`Membership`], which changes at run time ([`NodePool::set_membership`]).
//! Every node is given the membership before anything else the coordinator asks it on a connection, and again
//! after each change, so a node that was down when the membership changed learns it as soon as it is reached.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use vhsm_core::{KeyId, Membership};
use vhsm_wire::{
    client_api::NodeStatus,
    node_api::{NodeRequest, NodeResponse},
    ErrorKind, NodeId, WireError,
};

pub mod quic;
pub mod transport;

pub use quic::QuicTransport;
pub use transport::{NodeChannel, NodeTransport, TransportError};

/// How long to wait for a node to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node that failed is passed over when enough other nodes are available (longer while its probe does
/// not hear it back, see [`NodePool::mark_down`]).
pub const DOWN_BACKOFF: Duration = Duration::from_secs(5);
/// How often a node marked down is asked whether it is back.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long a probe waits for the node's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a node taking part in an operation may give no sign of life (no acknowledgement, no keep-alive: they
/// flow every quarter of a second, so this is four of them lost or late in a row) before the operation leaves it
/// out and goes on without it (see [`NodePool::silent_for`]; two round trips more on a slow link).
pub const SILENCE_LIMIT: Duration = Duration::from_millis(1000);
/// How often a call looks at its node's silence.
const SILENCE_CHECK: Duration = Duration::from_millis(100);
/// How long a node that left the membership is given to hear so before its connection is closed.
const LEAVER_NOTICE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call to a node failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeCallError {
    /// The node could not be reached or did not answer in time.
    #[error("node {node} unreachable: {reason}")]
    Unreachable {
        /// The node.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// The node answered with an error.
    #[error("node {node}: {error}")]
    Refused {
        /// The node.
        node: NodeId,
        /// Its answer.
        error: WireError,
    },
}

impl NodeCallError {
    /// The node concerned.
    pub fn node(&self) -> NodeId {
        match self {
            NodeCallError::Unreachable { node, .. } | NodeCallError::Refused { node, .. } => *node,
        }
    }
}

struct Link {
    address: String,
    connection: tokio::sync::Mutex<Option<Arc<dyn NodeChannel>>>,
    /// Short requests of concurrent operations, sent to the node together.
    batcher: Arc<Batcher>,
    failed_at: Mutex<Option<(Instant, String)>>,
    /// Whether a probe task is asking the node, marked failed, whether it is back (see [`NodePool::mark_down`]).
    probing: std::sync::atomic::AtomicBool,
    /// The membership version the node confirmed on the current connection (`None`: not yet).
    delivered: Mutex<Option<u64>>,
}

impl Link {
    fn new(address: String) -> Arc<Self> {
        Arc::new(Link {
            address,
            connection: tokio::sync::Mutex::new(None),
            batcher: Arc::default(),
            failed_at: Mutex::new(None),
            probing: std::sync::atomic::AtomicBool::new(false),
            delivered: Mutex::new(None),
        })
    }

    fn delivered(&self) -> Option<u64> {
        *self
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_delivered(&self, version: Option<u64>) {
        let mut delivered = self
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *delivered = version.map(|v| delivered.map_or(v, |d| d.max(v)));
    }
}

/// The membership and a link to each of its nodes; replaced together.
struct Members {
    membership: Arc<Membership>,
    links: BTreeMap<NodeId, Arc<Link>>,
}

/// A reply slot of a batched request.
type Reply = tokio::sync::oneshot::Sender<Result<NodeResponse, String>>;

/// Batching of the short requests of concurrent operations bound for one node (FROST signature shares, split-AES
/// partial evaluations): a request is queued; if no batch is on its way to the node, a sender task takes the
/// queue and sends it as one [`NodeRequest::Batch`] (a lone request as itself), then takes whatever queued
/// meanwhile, until the queue is empty. One request alone waits for nothing; under load, the requests that
/// arrive during one round trip share the next message — one stream, one frame and one answer for all.
#[derive(Default)]
struct Batcher {
    queue: Mutex<Vec<(NodeRequest, Reply)>>,
    /// Whether a sender task is running.
    sending: std::sync::atomic::AtomicBool,
}

impl Batcher {
    /// Whether `request` is batched: short requests whose answer is all they do.
    fn batches(request: &NodeRequest) -> bool {
        matches!(
            request,
            NodeRequest::SignShare { .. } | NodeRequest::Evaluate { .. }
        )
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<(NodeRequest, Reply)>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn submit(
        self: &Arc<Self>,
        conn: &Arc<dyn NodeChannel>,
        request: NodeRequest,
    ) -> Result<NodeResponse, String> {
        use std::sync::atomic::Ordering;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue().push((request, reply));
        if !self.sending.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().send(conn.clone()));
        }
        answer
            .await
            .map_err(|_| "the batch carrying the request was lost".to_string())?
    }

    /// The sender task: sends what is queued, batch after batch, until the queue is empty.
    async fn send(self: Arc<Self>, conn: Arc<dyn NodeChannel>) {
        use std::sync::atomic::Ordering;
        loop {
            let items: Vec<(NodeRequest, Reply)> = {
                let mut queue = self.queue();
                let n = queue.len().min(vhsm_wire::node_api::MAX_BATCH);
                queue.drain(..n).collect()
            };
            if items.is_empty() {
                self.sending.store(false, Ordering::Release);
                // A request queued after the take and before the flag was cleared: take it on, unless its own
                // submitter already started a sender.
                if self.queue().is_empty() || self.sending.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            let (requests, replies): (Vec<NodeRequest>, Vec<Reply>) = items.into_iter().unzip();
            let answers = if requests.len() == 1 {
                let request = requests.into_iter().next();
                match request {
                    Some(r) => conn.request(&r).await.map(|a| vec![a]),
                    None => Ok(Vec::new()),
                }
            } else {
                let count = requests.len();
                match conn.request(&NodeRequest::Batch(requests)).await {
                    Ok(NodeResponse::Batch(answers)) if answers.len() == count => Ok(answers),
                    Ok(NodeResponse::Error(e)) => Ok(vec![NodeResponse::Error(e); count]),
                    Ok(_) => Ok(vec![
                        NodeResponse::Error(WireError::new(
                            ErrorKind::Misbehaviour,
                            "answered a batch with something else",
                        ));
                        count
                    ]),
                    Err(e) => Err(e),
                }
            };
            match answers {
                Ok(answers) => {
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        let _ = reply.send(Ok(answer));
                    }
                }
                Err(e) => {
                    // Whatever queues next goes over the same connection and fails as fast if it is gone; the
                    // callers' next attempts connect anew.
                    let reason = e.to_string();
                    for reply in replies {
                        let _ = reply.send(Err(reason.clone()));
                    }
                }
            }
        }
    }
}

/// The nodes of the cluster, as one requester reaches them.
///
/// A pool made by [`NodePool::new`] or [`NodePool::with_membership`] makes the coordinator's own requests (learning
/// the keys, giving the membership), recorded by the nodes as asked by `coordinator`. [`NodePool::on_behalf`] gives
/// a handle to the same links that makes a client's requests: each is wrapped in [`NodeRequest::OnBehalf`] with
/// the client and its request's name, for the nodes' audit logs (see [`crate::audit`]). Clones share the links.
#[derive(Clone)]
pub struct NodePool {
    shared: Arc<Shared>,
    /// Whom the requests are made for (`None`: the coordinator itself).
    on_behalf: Option<Arc<Requester>>,
}

struct Shared {
    transport: Arc<dyn NodeTransport>,
    members: RwLock<Members>,
    /// Per key and epoch, the holders known unable to use their share of it: they said so themselves (a share
    /// behind the key's epoch, a damaged record), or the registry found them behind. Picked last, and never as
    /// dealers of a reshare, so that the next operations do not pay for them again (issue 15, item 1). Forgotten
    /// at the key's next epoch (a repair or refresh).
    unusable: Mutex<HashMap<(KeyId, u64), BTreeSet<NodeId>>>,
    /// (accuser, accused) → when a node last said it could not reach another over the mesh (see
    /// [`NodePool::suspicion`]).
    accusations: Mutex<HashMap<(NodeId, NodeId), Instant>>,
}

/// How long a node's word that it could not reach a peer counts against that peer (see [`NodePool::suspicion`]).
pub const SUSPICION_WINDOW: Duration = Duration::from_secs(30);

/// At most this many (key, epoch) entries of unusable shares are remembered (a bound on memory, far above any real
/// cluster's keys with a holder behind).
const MAX_UNUSABLE_ENTRIES: usize = 100_000;

/// Who a request to the nodes is made for, as the nodes record it in their audit logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    /// `NAME (user)`, `NAME (so)` or `NAME (not logged in)` (see [`crate::audit::requester`]).
    pub who: String,
    /// The client request's name (`sign`, `decrypt`, …).
    pub purpose: &'static str,
}

impl std::fmt::Debug for NodePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePool")
            .field("nodes", &self.ids())
            .finish_non_exhaustive()
    }
}

impl NodePool {
    /// Links to `nodes` (id, address) through `transport`: a pool of membership version 0 whose threshold is all
    /// of the nodes (see [`NodePool::with_membership`]).
    pub fn new(
        transport: Arc<dyn NodeTransport>,
        nodes: impl IntoIterator<Item = (NodeId, String)>,
    ) -> Self {
        let nodes: Vec<vhsm_core::MemberEntry> = nodes
            .into_iter()
            .map(|(id, address)| vhsm_core::MemberEntry { id, address })
            .collect();
        let membership = Membership {
            version: 0,
            threshold: u16::try_from(nodes.len()).unwrap_or(u16::MAX),
            nodes,
        };
        Self::with_membership(transport, membership)
    }

    /// Links to the nodes of `membership` through `transport`.
    pub fn with_membership(transport: Arc<dyn NodeTransport>, membership: Membership) -> Self {
        let links = membership
            .nodes
            .iter()
            .map(|n| (n.id, Link::new(n.address.clone())))
            .collect();
        NodePool {
            shared: Arc::new(Shared {
                transport,
                members: RwLock::new(Members {
                    membership: Arc::new(membership),
                    links,
                }),
                unusable: Mutex::default(),
                accusations: Mutex::default(),
            }),
            on_behalf: None,
        }
    }

    /// The same nodes, reached for `requester`: every request is recorded by the nodes as asked by it.
    pub fn on_behalf(&self, requester: Requester) -> NodePool {
        NodePool {
            shared: self.shared.clone(),
            on_behalf: Some(Arc::new(requester)),
        }
    }

    /// Whom this handle's requests are made for (`None`: the coordinator itself).
    pub fn requester(&self) -> Option<&Requester> {
        self.on_behalf.as_deref()
    }

    fn members(&self) -> std::sync::RwLockReadGuard<'_, Members> {
        self.shared
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn link(&self, node: NodeId) -> Option<Arc<Link>> {
        self.members().links.get(&node).cloned()
    }

    /// The cluster's membership now: the nodes, the threshold of new keys, the version.
    pub fn membership(&self) -> Membership {
        (*self.members().membership).clone()
    }

    /// Every node id of the membership now, ascending.
    pub fn ids(&self) -> Vec<NodeId> {
        self.members().links.keys().copied().collect()
    }

    /// A node's address.
    pub fn address(&self, node: NodeId) -> Option<String> {
        self.link(node).map(|l| l.address.clone())
    }

    /// Makes `membership` the pool's: links to new nodes are made on first use, nodes that left are told so (best
    /// effort, in the background) and their connections closed, a node whose address changed is reconnected.
    /// Every node is given the new membership before the next request to it (see [`NodePool::push_membership`]
    /// to give it now). Returns the nodes that left. The caller checks the membership ([`Membership::check`]).
    pub fn set_membership(&self, membership: Membership) -> Vec<NodeId> {
        let membership = Arc::new(membership);
        let leavers: Vec<(NodeId, Arc<Link>)> = {
            let mut members = self
                .shared
                .members
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let mut links = BTreeMap::new();
            for n in &membership.nodes {
                let link = match members.links.get(&n.id) {
                    Some(old) if old.address == n.address => old.clone(),
                    _ => Link::new(n.address.clone()),
                };
                links.insert(n.id, link);
            }
            let dropped = members
                .links
                .iter()
                .filter(|(id, old)| !links.get(*id).is_some_and(|new| Arc::ptr_eq(old, new)))
                .map(|(id, old)| (*id, old.clone()))
                .collect();
            *members = Members {
                membership: membership.clone(),
                links,
            };
            dropped
        };
        let mut removed = Vec::new();
        for (node, link) in leavers {
            let still_member = membership.nodes.iter().any(|n| n.id == node);
            if !still_member {
                removed.push(node);
            }
            let notice = NodeRequest::SetMembership {
                membership: (*membership).clone(),
            };
            tokio::spawn(async move {
                let Some(conn) = link.connection.lock().await.take() else {
                    return;
                };
                if !still_member {
                    // Tell the node it left (it logs that loudly and does not adopt the membership).
                    let _ =
                        tokio::time::timeout(LEAVER_NOTICE_TIMEOUT, conn.request(&notice)).await;
                }
                conn.close("no longer a member at this address");
            });
        }
        removed
    }

    /// Gives every node the current membership now, concurrently (each within `timeout`). A node that does not
    /// answer gets it before the next request the coordinator makes to it.
    pub async fn push_membership(
        &self,
        timeout: Duration,
    ) -> Vec<(NodeId, Result<(), NodeCallError>)> {
        let request = NodeRequest::SetMembership {
            membership: self.membership(),
        };
        let calls = self.ids().into_iter().map(|node| {
            let request = &request;
            async move { (node, self.call(node, request, timeout).await.map(|_| ())) }
        });
        futures_util::future::join_all(calls).await
    }

    /// Asks the node that `address` should be, if it is node `node` (its certificate must say so), for its
    /// status, on a connection of its own. For a node that is not a member yet.
    pub async fn probe(
        &self,
        node: NodeId,
        address: &str,
        timeout: Duration,
    ) -> Result<NodeStatus, NodeCallError> {
        let attempt = async {
            let conn = self
                .shared
                .transport
                .connect(node, address)
                .await
                .map_err(|e| e.0)?;
            let answer = conn.request(&NodeRequest::Status).await.map_err(|e| e.0);
            conn.close("probe done");
            answer
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(NodeResponse::Status(status))) => Ok(status),
            Ok(Ok(NodeResponse::Error(error))) => Err(NodeCallError::Refused { node, error }),
            Ok(Ok(_)) => Err(NodeCallError::Unreachable {
                node,
                reason: format!("{address} answered something other than a status"),
            }),
            Ok(Err(reason)) => Err(NodeCallError::Unreachable { node, reason }),
            Err(_) => Err(NodeCallError::Unreachable {
                node,
                reason: format!("no answer from {address} within {timeout:?}"),
            }),
        }
    }

    /// Records that `nodes` cannot use their share of key `key_id` at `epoch` (see [`NodePool::unusable`]); what
    /// was recorded for the key's other epochs is forgotten.
    pub fn note_unusable(
        &self,
        key_id: KeyId,
        epoch: u64,
        nodes: impl IntoIterator<Item = NodeId>,
    ) {
        let mut unusable = self
            .shared
            .unusable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if unusable.len() >= MAX_UNUSABLE_ENTRIES {
            unusable.clear();
        }
        unusable.retain(|(id, e), _| *id != key_id || *e == epoch);
        unusable.entry((key_id, epoch)).or_default().extend(nodes);
    }

    /// The holders known unable to use their share of key `key_id` at `epoch`: each said so when asked, or the
    /// registry's last listing found its share behind that epoch.
    pub fn unusable(&self, key_id: KeyId, epoch: u64) -> BTreeSet<NodeId> {
        self.shared
            .unusable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(key_id, epoch))
            .cloned()
            .unwrap_or_default()
    }

    /// Records that node `accuser` could not reach `accused` over the mesh (a protocol session between them failed
    /// for that): it counts against `accused` for [`SUSPICION_WINDOW`], unless the two take part in a session that
    /// succeeds meanwhile ([`NodePool::note_reached`]).
    pub fn note_unreachable_by_peer(&self, accuser: NodeId, accused: NodeId) {
        if accuser == accused {
            return;
        }
        let mut accusations = self
            .shared
            .accusations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        accusations.retain(|_, at| at.elapsed() < SUSPICION_WINDOW);
        accusations.insert((accuser, accused), Instant::now());
    }

    /// Records that `nodes` took part in a session together that succeeded: they reach each other; what they said
    /// of each other before is forgotten.
    pub fn note_reached(&self, nodes: &[NodeId]) {
        let mut accusations = self
            .shared
            .accusations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if accusations.is_empty() {
            return;
        }
        accusations.retain(|(by, of), at| {
            at.elapsed() < SUSPICION_WINDOW && !(nodes.contains(by) && nodes.contains(of))
        });
    }

    /// With how many other nodes `node` was lately (within [`SUSPICION_WINDOW`]) in a pair where one said it could
    /// not reach the other — as accuser or accused: the coordinator cannot tell which of the two is at fault, so
    /// a node's word never makes it look better than those it names (a liar naming every peer is then the most
    /// suspect itself). A node cut off from its peers is in a pair with each of them, each of them only with it.
    /// Operations pick the least suspect first.
    pub fn suspicion(&self, node: NodeId) -> usize {
        let others: BTreeSet<NodeId> = self
            .shared
            .accusations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, at)| at.elapsed() < SUSPICION_WINDOW)
            .filter_map(|((by, of), _)| match (*by == node, *of == node) {
                (true, _) => Some(*of),
                (_, true) => Some(*by),
                _ => None,
            })
            .collect();
        others.len()
    }

    /// Whether the node failed and has not answered since: within the last [`DOWN_BACKOFF`], or later while its
    /// probe ([`NodePool::mark_down`]) has not heard it back. Operations pick such a node last, so that no
    /// operation pays for a node that is paused, overloaded or gone while others can serve (issue 15, item 4).
    pub fn recently_failed(&self, node: NodeId) -> bool {
        self.link(node)
            .and_then(|l| {
                let probing = l.probing.load(std::sync::atomic::Ordering::Acquire);
                l.failed_at.lock().ok().and_then(|f| {
                    f.as_ref()
                        .map(|(at, _)| probing || at.elapsed() < DOWN_BACKOFF)
                })
            })
            .unwrap_or(false)
    }

    /// How long node `node` has given no sign of life on its connection, if longer than it may: [`SILENCE_LIMIT`]
    /// plus two round trips (a lossy or distant link loses or delays a keep-alive now and then). `None` if it has
    /// no connection, or the transport cannot tell; not waiting for a connection being made.
    pub fn silent_for(&self, node: NodeId) -> Option<Duration> {
        let link = self.link(node)?;
        let slot = link.connection.try_lock().ok()?;
        let conn = slot.as_ref()?;
        let silent = conn.silent_for();
        (silent > SILENCE_LIMIT.saturating_add(conn.rtt().saturating_mul(2))).then_some(silent)
    }

    /// Marks `node` failed for `reason` and asks it, every [`PROBE_INTERVAL`] in the background, whether it is back:
    /// until it answers, operations pick it last ([`NodePool::recently_failed`]) — instead of trying it again with a
    /// real operation every few seconds, which then waits for it.
    pub fn mark_down(&self, node: NodeId, reason: &str) {
        let Some(link) = self.link(node) else {
            return;
        };
        Self::mark(&link, Some(reason.to_string()));
        self.probe_until_back(node, &link);
    }

    fn probe_until_back(&self, node: NodeId, link: &Arc<Link>) {
        use std::sync::atomic::Ordering;
        if link.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            link.probing.store(false, Ordering::Release);
            return;
        };
        let shared = Arc::downgrade(&self.shared);
        let link = Arc::downgrade(link);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let (Some(shared), Some(link)) = (shared.upgrade(), link.upgrade()) else {
                    return;
                };
                let pool = NodePool {
                    shared,
                    on_behalf: None,
                };
                // A node no longer a member (or at another address) is not probed any more.
                let current = pool.link(node).is_some_and(|l| Arc::ptr_eq(&l, &link));
                let failed = link.failed_at.lock().map(|f| f.is_some()).unwrap_or(false);
                if !current || !failed {
                    link.probing.store(false, Ordering::Release);
                    return;
                }
                if pool
                    .call(node, &NodeRequest::Status, PROBE_TIMEOUT)
                    .await
                    .is_ok()
                {
                    tracing::info!(node, "node answers again");
                    link.probing.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }

    fn mark(link: &Link, failure: Option<String>) {
        if let Ok(mut f) = link.failed_at.lock() {
            *f = failure.map(|reason| (Instant::now(), reason));
        }
    }

    async fn connection(&self, node: NodeId, link: &Link) -> Result<Arc<dyn NodeChannel>, String> {
        let mut slot = link.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.is_open() {
                return Ok(conn.clone());
            }
        }
        let connecting = self.shared.transport.connect(node, &link.address);
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| format!("no answer from {} within {CONNECT_TIMEOUT:?}", link.address))?
            .map_err(|e| e.0)?;
        // A new connection may be to a node that restarted: give it the membership again.
        link.set_delivered(None);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Gives the node the current membership on `conn` unless it has confirmed it (or a newer one) already. A
    /// node that refuses it is logged (and asked again next time); one that cannot be reached fails the call.
    async fn deliver_membership(
        &self,
        node: NodeId,
        link: &Link,
        conn: &Arc<dyn NodeChannel>,
    ) -> Result<(), String> {
        let membership = self.members().membership.clone();
        if link.delivered().is_some_and(|v| v >= membership.version) {
            return Ok(());
        }
        let request = NodeRequest::SetMembership {
            membership: (*membership).clone(),
        };
        match conn.request(&request).await {
            Ok(NodeResponse::Ok) => {
                link.set_delivered(Some(membership.version));
                tracing::debug!(
                    node,
                    version = membership.version,
                    "node has the membership"
                );
            }
            // Sealed: it takes the membership once unsealed (asked again then); the request itself is answered
            // "sealed", which the caller sees as unavailable.
            Ok(NodeResponse::Error(error)) if error.kind == ErrorKind::Sealed => {
                tracing::debug!(node, %error, "node is sealed");
            }
            Ok(NodeResponse::Error(error)) => {
                tracing::warn!(node, version = membership.version, %error, "node refused the cluster membership");
            }
            Ok(_) => {
                tracing::warn!(
                    node,
                    "node answered the membership with something other than Ok"
                );
            }
            Err(e) => return Err(e.to_string()),
        }
        Ok(())
    }

    /// Sends `request` to `node` and waits at most `timeout` for the answer.
    pub async fn call(
        &self,
        node: NodeId,
        request: &NodeRequest,
        timeout: Duration,
    ) -> Result<NodeResponse, NodeCallError> {
        let Some(link) = self.link(node) else {
            return Err(NodeCallError::Unreachable {
                node,
                reason: "not a node of this cluster".into(),
            });
        };
        let result = match tokio::time::timeout(
            timeout,
            self.unless_silent(node, self.attempt(node, &link, request)),
        )
        .await
        {
            Ok(Err(failed)) if failed.reused && repeatable(request) => {
                // A connection kept from before may be to a process that has since restarted (QUIC notices a
                // dead peer only at its next packet): forget it and ask once more on a fresh one. Only a request
                // that may be repeated: one that starts a protocol session may have reached the old process,
                // which may have sent its first messages before it died; the new one would run it again, and its
                // peers would take the second first message for cheating (found by the nemesis).
                tracing::debug!(node, reason = %failed.reason, "request failed on a kept connection; retrying on a new one");
                Self::forget(&link, failed.used.as_ref(), "stale").await;
                match tokio::time::timeout(timeout, self.attempt(node, &link, request)).await {
                    Ok(r) => r,
                    Err(_) => Err(Failed::timed_out(timeout)),
                }
            }
            Ok(r) => r,
            Err(_) => Err(Failed::timed_out(timeout)),
        };
        self.settle(node, &link, request, result).await
    }

    /// Runs `attempt` (a call to `node`) unless the node gives no sign of life on its connection for
    /// [`SILENCE_LIMIT`] meanwhile — no acknowledgement of the request, no keep-alive: a node paused, overloaded past
    /// answering or cut off, which would hold the call until its timeout of seconds. A node that is only slow (a
    /// long key generation, a busy core) still acknowledges and pings, and is waited for (issue 15, item 4: slow is
    /// not dead).
    async fn unless_silent(
        &self,
        node: NodeId,
        attempt: impl std::future::Future<Output = Result<NodeResponse, Failed>>,
    ) -> Result<NodeResponse, Failed> {
        tokio::pin!(attempt);
        let mut tick = tokio::time::interval(SILENCE_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                done = &mut attempt => return done,
                _ = tick.tick() => {
                    if let Some(silent) = self.silent_for(node) {
                        return Err(Failed {
                            reason: format!(
                                "no sign of life for {} ms (paused, overloaded past answering, or cut off)",
                                silent.as_millis()
                            ),
                            reused: false,
                            used: None,
                        });
                    }
                }
            }
        }
    }

    /// Closes and forgets `used`, the connection a failed call went over — only if it is still the node's current
    /// one: calls run concurrently, and another may have made a fresh connection meanwhile, which stays.
    async fn forget(link: &Link, used: Option<&Arc<dyn NodeChannel>>, why: &'static str) {
        let mut slot = link.connection.lock().await;
        let current = slot
            .as_ref()
            .is_some_and(|c| used.is_none_or(|u| Arc::ptr_eq(c, u)));
        if current {
            if let Some(conn) = slot.take() {
                conn.close(why);
            }
        }
    }

    /// One try of `request` on node `node`'s connection.
    async fn attempt(
        &self,
        node: NodeId,
        link: &Link,
        request: &NodeRequest,
    ) -> Result<NodeResponse, Failed> {
        let reused = link
            .connection
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| c.is_open());
        let mut used = None;
        let attempt = async {
            let conn = self.connection(node, link).await?;
            used = Some(conn.clone());
            if !matches!(request, NodeRequest::SetMembership { .. }) {
                self.deliver_membership(node, link, &conn).await?;
            }
            // For the nodes' audit logs: who asked (see `crate::audit`).
            let wrapped = self
                .on_behalf
                .as_deref()
                .and_then(|requester| crate::audit::wrap(requester, request));
            if Batcher::batches(request) {
                return link
                    .batcher
                    .submit(&conn, wrapped.unwrap_or_else(|| request.clone()))
                    .await;
            }
            conn.request(wrapped.as_ref().unwrap_or(request))
                .await
                .map_err(|e| e.0)
        };
        let outcome = attempt.await;
        outcome.map_err(|reason| Failed {
            reason,
            reused,
            used,
        })
    }

    /// Turns a call's outcome into its answer, marking the node's health.
    async fn settle(
        &self,
        node: NodeId,
        link: &Link,
        request: &NodeRequest,
        result: Result<NodeResponse, Failed>,
    ) -> Result<NodeResponse, NodeCallError> {
        match result {
            // A sealed node is not at fault: it is unavailable until an operator unseals it.
            Ok(NodeResponse::Error(error)) if error.kind == ErrorKind::Sealed => {
                Self::mark(link, Some(error.message.clone()));
                Err(NodeCallError::Unreachable {
                    node,
                    reason: error.message,
                })
            }
            Ok(NodeResponse::Error(error)) => {
                Self::mark(link, None);
                Err(NodeCallError::Refused { node, error })
            }
            Ok(response) => {
                Self::mark(link, None);
                if let (NodeRequest::SetMembership { membership }, NodeResponse::Ok) =
                    (request, &response)
                {
                    link.set_delivered(Some(membership.version));
                }
                Ok(response)
            }
            Err(Failed { reason, used, .. }) => {
                // Forget the connection (if no other call replaced it meanwhile): the next call makes a new one.
                Self::forget(link, used.as_ref(), "unresponsive").await;
                Self::mark(link, Some(reason.clone()));
                if let Some(current) = self.link(node) {
                    self.probe_until_back(node, &current);
                }
                Err(NodeCallError::Unreachable { node, reason })
            }
        }
    }

    /// Sends `request` to each of `nodes` concurrently.
    pub async fn call_each(
        &self,
        nodes: &[NodeId],
        request: impl Fn(NodeId) -> NodeRequest,
        timeout: Duration,
    ) -> Vec<(NodeId, Result<NodeResponse, NodeCallError>)> {
        let calls = nodes.iter().map(|&node| {
            let request = request(node);
            async move { (node, self.call(node, &request, timeout).await) }
        });
        futures_util::future::join_all(calls).await
    }
}

/// Whether `request` may be sent again after it failed on a connection that turned out to be dead: it reads, or
/// its repetition does no harm (a new unseal challenge replaces one the caller never received).
fn repeatable(request: &NodeRequest) -> bool {
    matches!(
        request,
        NodeRequest::Status
            | NodeRequest::ListKeys
            | NodeRequest::ListStaged
            | NodeRequest::ListObjects
            | NodeRequest::AuditLog { .. }
            | NodeRequest::UnsealChallenge
    )
}

/// Why one try of a call failed.
struct Failed {
    reason: String,
    /// The connection was kept from before (not made for this try).
    reused: bool,
    /// The connection the try went over, if it got one.
    used: Option<Arc<dyn NodeChannel>>,
}

impl Failed {
    fn timed_out(timeout: Duration) -> Self {
        Failed {
            reason: format!("no answer within {timeout:?}"),
            reused: false,
            used: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reaches nobody: the suspicion bookkeeping needs no connection.
    struct Nowhere;

    impl NodeTransport for Nowhere {
        fn connect<'a>(
            &'a self,
            _node: NodeId,
            _address: &'a str,
        ) -> transport::BoxFuture<'a, Result<Arc<dyn NodeChannel>, TransportError>> {
            Box::pin(async { Err(TransportError("nowhere".into())) })
        }
    }

    fn pool() -> NodePool {
        NodePool::new(
            Arc::new(Nowhere),
            (1..=3).map(|id| (id, format!("node-{id}"))),
        )
    }

    /// One node's word never makes it look better than those it names: a liar naming both its peers is the most
    /// suspect itself; a node cut off from its peers (named by each, naming each) too; signing together clears a
    /// pair.
    #[test]
    fn an_accuser_is_as_suspect_as_those_it_names() {
        let liar = pool();
        liar.note_unreachable_by_peer(3, 1);
        liar.note_unreachable_by_peer(3, 2);
        assert_eq!(
            (liar.suspicion(1), liar.suspicion(2), liar.suspicion(3)),
            (1, 1, 2)
        );
        let cut = pool();
        for (by, of) in [(1, 3), (2, 3), (3, 1), (3, 2)] {
            cut.note_unreachable_by_peer(by, of);
        }
        assert_eq!(
            (cut.suspicion(1), cut.suspicion(2), cut.suspicion(3)),
            (1, 1, 2)
        );
        cut.note_reached(&[1, 3]);
        assert_eq!((cut.suspicion(1), cut.suspicion(3)), (0, 1));
    }
}
