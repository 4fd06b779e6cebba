//! Node-to-node messaging: protocol messages travel directly between nodes (never through the coordinator). How
//! they travel is a [`MeshTransport`]'s business: QUIC between processes ([`quic`]), or in-process channels in
//! tests (`vhsm-testkit`'s in-memory cluster). This module keeps what is the same for every transport: the peers,
//! and the inboxes of the sessions.
//!
//! Incoming messages are routed to their session's inbox by session id. A message may arrive before this node has
//! started the session (the coordinator's request to another node was faster): its inbox is created on first use
//! and waits to be claimed. Unclaimed inboxes expire.
//!
//! A peer is held to its share (issue 14, item 9: one peer filled every inbox slot with random session ids, and
//! honest sessions' early messages were dropped but acknowledged): it may open at most [`MAX_UNCLAIMED_PER_PEER`]
//! sessions this node has not claimed, and send at most [`MAX_MESSAGES_PER_PEER`] messages into one session; and
//! in bytes (encoded sizes, as the transport received them), at most [`MAX_SESSION_BYTES_PER_PEER`] into one
//! session and [`MAX_UNCLAIMED_BYTES_PER_PEER`] into all the sessions this node has not claimed, so that what a
//! peer can make this node hold is bounded whatever the size of its messages. Beyond that its messages are
//! **refused** — not acknowledged, so the sender knows — and the other peers' are not affected. The first refusal
//! of a flood is logged with the peer named.
//!
//! The peers change at run time ([`Mesh::set_peers`], when the cluster's membership changes): the transport is
//! told to drop its links to a node that left (both those this node made and those it accepted), and messages
//! to or from a node that is not a peer are refused.
//!
//! When the node shuts down ([`Mesh::stop`]), it starts no session any more and gives up those running: each
//! session's other members are told ([`MeshPayload::Abort`]), so that they stop at once instead of waiting for its
//! messages until their session's timeout (issue 15, item 6).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError, RwLock,
    },
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use vhsm_protocols::SessionId;
use vhsm_wire::{
    mesh::{MeshMessage, MeshPayload},
    NodeId,
};

pub mod quic;

/// The boxed future [`MeshTransport`] returns (futures-util's).
pub use futures_util::future::BoxFuture;

/// How protocol messages reach the other nodes.
pub trait MeshTransport: Send + Sync + 'static {
    /// Sends `message` to node `to` at `address`; `Ok` once the peer has taken it (into its session's inbox).
    /// Bounded in time by the transport.
    fn send<'a>(
        &'a self,
        to: NodeId,
        address: &'a str,
        message: &'a MeshMessage,
    ) -> BoxFuture<'a, Result<(), SendError>>;

    /// Drops this node's link to `peer` (its address changed, or it left); if it `left`, also the links it made
    /// to this node.
    fn disconnect(&self, peer: NodeId, left: bool) -> BoxFuture<'_, ()>;
}

/// How long an inbox nobody claimed is kept.
const UNCLAIMED_INBOX_TTL: Duration = Duration::from_secs(60);
/// At most this many sessions' inboxes at once; beyond it, messages for new sessions are refused.
const MAX_INBOXES: usize = 4096;
/// At most this many unclaimed inboxes opened by one peer's messages.
pub const MAX_UNCLAIMED_PER_PEER: usize = MAX_INBOXES / 4;
/// At most this many messages from one peer into one session (a protocol sends a handful per round).
pub const MAX_MESSAGES_PER_PEER: usize = 1024;
/// At most this many bytes from one peer into one session. The largest protocol, a DKLs23 key generation or
/// ECDSA reshare, has a peer send a few messages of up to ~150 KiB (base OTs and the OT extension).
pub const MAX_SESSION_BYTES_PER_PEER: usize = 16 * 1024 * 1024;
/// At most this many bytes from one peer waiting in sessions this node has not claimed (an honest peer is at
/// most a round ahead of this node; a flood of large messages into random sessions stops here).
pub const MAX_UNCLAIMED_BYTES_PER_PEER: usize = 64 * 1024 * 1024;

/// Why a peer's message was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The peer has opened too many sessions this node has not started.
    #[error("too many sessions opened by this peer and not started here")]
    PeerQuota,
    /// The peer has sent too many messages into this session.
    #[error("too many messages from this peer in one session")]
    SessionFull,
    /// The peer has sent too many bytes into this session.
    #[error("too many bytes from this peer in one session")]
    SessionBytes,
    /// The peer has too many bytes waiting in sessions this node has not started.
    #[error("too many bytes from this peer waiting in sessions not started here")]
    PeerBytes,
    /// This node has too many open sessions.
    #[error("too many open sessions")]
    TooManySessions,
}

/// A message received for a session: the authenticated sender and the payload.
pub type Inbound = (NodeId, MeshPayload);

struct Inbox {
    sender: mpsc::UnboundedSender<Inbound>,
    receiver: Option<mpsc::UnboundedReceiver<Inbound>>,
    created: Instant,
    /// The peer whose message opened it before this node claimed it (`None`: opened by this node).
    opened_by: Option<NodeId>,
    /// (sender, message id) of every message delivered, to drop a resent one; at most
    /// [`MAX_MESSAGES_PER_PEER`] per sender.
    seen: HashSet<(NodeId, u64)>,
    /// Bytes delivered per sender; at most [`MAX_SESSION_BYTES_PER_PEER`] each.
    bytes: HashMap<NodeId, usize>,
    /// The session's members (this node included), once this node claimed it: whom to tell if it gives up.
    members: Vec<NodeId>,
}

impl Inbox {
    fn unclaimed_by(&self, peer: NodeId) -> bool {
        self.receiver.is_some() && self.opened_by == Some(peer)
    }

    fn expired(&self) -> bool {
        self.receiver.is_some() && self.created.elapsed() >= UNCLAIMED_INBOX_TTL
    }

    /// Bytes from `peer` waiting here, if this node has not claimed the session.
    fn unclaimed_bytes_from(&self, peer: NodeId) -> usize {
        if self.receiver.is_some() {
            self.bytes.get(&peer).copied().unwrap_or(0)
        } else {
            0
        }
    }
}

/// Why a message could not be sent to a peer.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach node {peer}: {reason}")]
pub struct SendError {
    /// The peer.
    pub peer: NodeId,
    /// Why.
    pub reason: String,
}

/// What [`Mesh::set_peers`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerChange {
    /// Peers that are new (or whose address changed).
    pub added: Vec<NodeId>,
    /// Peers that are gone (or whose address changed); their connections were closed.
    pub removed: Vec<NodeId>,
}

/// This node's links to the other nodes.
pub struct Mesh {
    me: NodeId,
    transport: Arc<dyn MeshTransport>,
    /// The peers and where they listen.
    peers: RwLock<HashMap<NodeId, String>>,
    inboxes: Mutex<HashMap<SessionId, Inbox>>,
    /// Peers whose messages are being refused now (their first refusal is logged).
    flooding: Mutex<HashSet<NodeId>>,
    /// Set by [`Mesh::stop`]: no session may be claimed any more.
    stopping: AtomicBool,
    /// Fault injection: whether this node has flooded its peers already ([`Mesh::flood`]).
    #[cfg(feature = "fault-injection")]
    flooded: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Mesh {
    /// Links to `peers` (id, address) through `transport`.
    pub fn new(
        me: NodeId,
        transport: Arc<dyn MeshTransport>,
        peers: impl IntoIterator<Item = (NodeId, String)>,
    ) -> Self {
        Mesh {
            me,
            transport,
            peers: RwLock::new(peers.into_iter().filter(|(id, _)| *id != me).collect()),
            inboxes: Mutex::new(HashMap::new()),
            flooding: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
            #[cfg(feature = "fault-injection")]
            flooded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Where peer `id` listens, if it is a peer.
    pub fn address(&self, id: NodeId) -> Option<String> {
        self.peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Whether `id` is a peer now.
    pub fn is_peer(&self, id: NodeId) -> bool {
        self.address(id).is_some()
    }

    /// The peers now (id, address), by id.
    pub fn peers(&self) -> Vec<(NodeId, String)> {
        let mut peers: Vec<(NodeId, String)> = self
            .peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, address)| (*id, address.clone()))
            .collect();
        peers.sort_unstable();
        peers
    }

    /// Makes `peers` (id, address; this node's own entry is skipped) the peers from now on. The transport drops
    /// its links to a peer that is gone (those this node made and those it accepted) and to a peer whose address
    /// changed (reconnected on next use). Peers that stay keep their links.
    pub async fn set_peers(&self, peers: impl IntoIterator<Item = (NodeId, String)>) -> PeerChange {
        let mut change = PeerChange::default();
        let dropped: Vec<NodeId> = {
            let mut table = self.peers.write().unwrap_or_else(PoisonError::into_inner);
            let next: HashMap<NodeId, String> =
                peers.into_iter().filter(|(id, _)| *id != self.me).collect();
            for (id, address) in &next {
                if table.get(id) != Some(address) {
                    change.added.push(*id);
                }
            }
            let dropped = table
                .iter()
                .filter(|(id, old)| next.get(*id) != Some(*old))
                .map(|(id, _)| *id)
                .collect();
            *table = next;
            dropped
        };
        // After the table changed: a link the transport admits from now on is checked against the new peers.
        for id in dropped {
            let left = !self.is_peer(id);
            if left {
                change.removed.push(id);
            }
            self.transport.disconnect(id, left).await;
        }
        change.added.sort_unstable();
        change.removed.sort_unstable();
        change
    }

    /// Sends one protocol message to a peer.
    pub async fn send(&self, to: NodeId, message: &MeshMessage) -> Result<(), SendError> {
        let address = self.address(to).ok_or_else(|| SendError {
            peer: to,
            reason: "not a peer of this node".into(),
        })?;
        self.transport.send(to, &address, message).await
    }

    /// Tells the other `members` of `session` that this node gives up the session, and why
    /// ([`MeshPayload::Abort`]): they stop at once instead of waiting for its messages. Best effort, each peer
    /// given at most `ABORT_TIMEOUT`.
    pub async fn abort(&self, session: SessionId, members: &[NodeId], reason: &str) {
        const ABORT_TIMEOUT: Duration = Duration::from_secs(2);
        let message = MeshMessage {
            session,
            id: rand_core::RngCore::next_u64(&mut rand_core::OsRng),
            payload: MeshPayload::Abort(reason.to_string()),
        };
        let sends = members
            .iter()
            .filter(|m| **m != self.me)
            .map(|to| tokio::time::timeout(ABORT_TIMEOUT, self.send(*to, &message)));
        futures_util::future::join_all(sends).await;
    }

    /// Whether this node is shutting down ([`Mesh::stop`]): it starts no session any more.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Shuts this node's sessions down: from now on no session can be claimed, and every session running is given
    /// up — its run here sees the end of its messages, and its other members are told why ([`Mesh::abort`] with
    /// `reason`, all at once, for at most `within`: a peer not told by then learns it from its own timeout).
    /// Returns how many sessions were running.
    pub async fn stop(&self, reason: &str, within: Duration) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        let running: Vec<(SessionId, Vec<NodeId>)> = {
            let mut inboxes = self.inboxes.lock().unwrap_or_else(PoisonError::into_inner);
            let claimed: Vec<SessionId> = inboxes
                .iter()
                .filter(|(_, inbox)| inbox.receiver.is_none())
                .map(|(session, _)| *session)
                .collect();
            claimed
                .into_iter()
                .filter_map(|session| inboxes.remove(&session).map(|i| (session, i.members)))
                .collect()
        };
        let aborts = running
            .iter()
            .map(|(session, members)| self.abort(*session, members, reason));
        let told = tokio::time::timeout(within, futures_util::future::join_all(aborts)).await;
        if told.is_err() {
            tracing::warn!(sessions = running.len(), ?within, "stopping: could not tell every peer of the sessions given up in time; they will time out");
        }
        running.len()
    }

    /// Routes a message received from peer `from`, `size` bytes as it arrived, to its session's inbox (once: a
    /// resent message is dropped, and taken). Refused when the peer is over its share (see the module docs): the
    /// transport then does not acknowledge it.
    pub fn deliver(&self, from: NodeId, message: MeshMessage, size: usize) -> Result<(), Refused> {
        let result = self.route(from, message, size);
        let mut flooding = self.flooding.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Err(why) => {
                if flooding.insert(from) {
                    tracing::warn!(peer = from, reason = %why, "refusing protocol messages from a peer over its share (a flood?); the other peers are not affected");
                }
            }
            Ok(()) => {
                if flooding.remove(&from) {
                    tracing::info!(peer = from, "taking protocol messages from the peer again");
                }
            }
        }
        result
    }

    fn route(&self, from: NodeId, message: MeshMessage, size: usize) -> Result<(), Refused> {
        let mut inboxes = self.inboxes.lock().unwrap_or_else(PoisonError::into_inner);
        let claimed = inboxes
            .get(&message.session)
            .is_some_and(|i| i.receiver.is_none());
        if !claimed {
            let waiting: usize = inboxes.values().map(|i| i.unclaimed_bytes_from(from)).sum();
            if waiting.saturating_add(size) > MAX_UNCLAIMED_BYTES_PER_PEER {
                return Err(Refused::PeerBytes);
            }
        }
        if !inboxes.contains_key(&message.session) {
            inboxes.retain(|_, inbox| !inbox.expired());
            let opened = inboxes.values().filter(|i| i.unclaimed_by(from)).count();
            if opened >= MAX_UNCLAIMED_PER_PEER {
                return Err(Refused::PeerQuota);
            }
            if inboxes.len() >= MAX_INBOXES {
                return Err(Refused::TooManySessions);
            }
        }
        let inbox = inboxes.entry(message.session).or_insert_with(|| {
            let mut inbox = new_inbox();
            inbox.opened_by = Some(from);
            inbox
        });
        if inbox.seen.contains(&(from, message.id)) {
            tracing::debug!(from, session = %message.session, "message delivered twice (resent); dropped");
            return Ok(());
        }
        if inbox.seen.iter().filter(|(n, _)| *n == from).count() >= MAX_MESSAGES_PER_PEER {
            return Err(Refused::SessionFull);
        }
        let bytes = inbox.bytes.get(&from).copied().unwrap_or(0);
        if bytes.saturating_add(size) > MAX_SESSION_BYTES_PER_PEER {
            return Err(Refused::SessionBytes);
        }
        inbox.seen.insert((from, message.id));
        inbox.bytes.insert(from, bytes.saturating_add(size));
        // A send fails only if the session has ended; the message is then of no use.
        let _ = inbox.sender.send((from, message.payload));
        Ok(())
    }

    /// Ends a session's routing: its claimed inbox sees the end of its messages, and later messages are dropped
    /// (until the unclaimed-inbox expiry). Used when the coordinator aborts a session.
    pub fn cancel(&self, session: SessionId) {
        if let Ok(mut inboxes) = self.inboxes.lock() {
            inboxes.remove(&session);
        }
    }

    /// Claims the inbox of `session` among `members` (this node included), creating it if no message has arrived
    /// yet. A session can be claimed once, and none once the mesh is stopping ([`Mesh::is_stopping`]).
    pub fn claim(&self, session: SessionId, members: &[NodeId]) -> Option<SessionInbox<'_>> {
        if self.is_stopping() {
            return None;
        }
        let mut inboxes = self.inboxes.lock().ok()?;
        let inbox = inboxes.entry(session).or_insert_with(new_inbox);
        let receiver = inbox.receiver.take()?;
        inbox.members = members.to_vec();
        Some(SessionInbox {
            mesh: self,
            session,
            receiver,
        })
    }
}

/// Fault injection: how many messages with random session ids a flooding node sends each peer ([`Mesh::flood`]).
#[cfg(feature = "fault-injection")]
pub const FLOOD_SESSIONS: usize = 2000;
/// Fault injection: how many messages a flooding node sends each peer into one session ([`Mesh::flood`]).
#[cfg(feature = "fault-injection")]
pub const FLOOD_ONE_SESSION: usize = 2000;

/// Fault injection: what one peer took of a flood (acknowledged) and refused (or could not be reached for).
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloodReport {
    /// Messages into one session the peer took.
    pub one_session_taken: usize,
    /// Messages into one session the peer refused.
    pub one_session_refused: usize,
    /// Messages for random sessions the peer took.
    pub sessions_taken: usize,
    /// Messages for random sessions the peer refused.
    pub sessions_refused: usize,
}

#[cfg(feature = "fault-injection")]
impl Mesh {
    /// **Fault injection, for tests only**: floods every peer's inboxes, once in this node's life (later calls
    /// do nothing): first [`FLOOD_ONE_SESSION`] messages into one session none of them runs, then
    /// [`FLOOD_SESSIONS`] messages each for a session of its own (random ids), through the transport like any
    /// protocol message, in the background. What each peer took and refused is logged (`fault injection: flooded
    /// a peer's inboxes`, with the counts): an honest peer takes at most [`MAX_MESSAGES_PER_PEER`] into one session
    /// and opens at most [`MAX_UNCLAIMED_PER_PEER`] sessions for this node. Needs a tokio runtime.
    pub fn flood(&self) {
        if self.flooded.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let transport = self.transport.clone();
        let peers = self.peers();
        tracing::warn!(peers = ?peers.iter().map(|p| p.0).collect::<Vec<_>>(), one_session = FLOOD_ONE_SESSION, sessions = FLOOD_SESSIONS, "fault injection: flooding every peer's mesh inboxes");
        tokio::spawn(async move {
            let floods = peers.iter().map(|(peer, address)| {
                let transport = transport.clone();
                async move {
                    let report = flood_peer(transport.as_ref(), *peer, address).await;
                    tracing::warn!(
                        peer,
                        one_session_taken = report.one_session_taken,
                        one_session_refused = report.one_session_refused,
                        sessions_taken = report.sessions_taken,
                        sessions_refused = report.sessions_refused,
                        "fault injection: flooded a peer's inboxes"
                    );
                }
            });
            futures_util::future::join_all(floods).await;
        });
    }
}

/// Sends one peer the flood of [`Mesh::flood`] (a few messages in flight at once) and counts what it took.
#[cfg(feature = "fault-injection")]
async fn flood_peer(transport: &dyn MeshTransport, peer: NodeId, address: &str) -> FloodReport {
    use futures_util::StreamExt;
    use rand_core::{OsRng, RngCore};
    use vhsm_protocols::ecdsa::{EcdsaBody, EcdsaMessage, ECDSA_MESSAGE_VERSION};

    /// How many messages of a flood are in flight at once.
    const IN_FLIGHT: usize = 16;
    let message = |session: SessionId| MeshMessage {
        session,
        id: OsRng.next_u64(),
        payload: MeshPayload::EcdsaSign(EcdsaMessage {
            version: ECDSA_MESSAGE_VERSION,
            session,
            round: 1,
            body: EcdsaBody::Broadcast(vec![0xf1; 32]),
        }),
    };
    let taken = |messages: Vec<MeshMessage>| async move {
        futures_util::stream::iter(messages)
            .map(|m| async move { transport.send(peer, address, &m).await.is_ok() })
            .buffer_unordered(IN_FLIGHT)
            .fold(0usize, |n, ok| async move { n + usize::from(ok) })
            .await
    };
    let one = SessionId::random(&mut OsRng);
    let one_session_taken = taken((0..FLOOD_ONE_SESSION).map(|_| message(one)).collect()).await;
    let sessions_taken = taken(
        (0..FLOOD_SESSIONS)
            .map(|_| message(SessionId::random(&mut OsRng)))
            .collect(),
    )
    .await;
    FloodReport {
        one_session_taken,
        one_session_refused: FLOOD_ONE_SESSION - one_session_taken,
        sessions_taken,
        sessions_refused: FLOOD_SESSIONS - sessions_taken,
    }
}

fn new_inbox() -> Inbox {
    let (sender, receiver) = mpsc::unbounded_channel();
    Inbox {
        sender,
        receiver: Some(receiver),
        created: Instant::now(),
        opened_by: None,
        seen: HashSet::new(),
        bytes: HashMap::new(),
        members: Vec::new(),
    }
}

/// A claimed session inbox; the session's routing entry is removed when it is dropped.
pub struct SessionInbox<'a> {
    mesh: &'a Mesh,
    session: SessionId,
    receiver: mpsc::UnboundedReceiver<Inbound>,
}

impl SessionInbox<'_> {
    /// The next message of the session; `None` once the session's routing has ended ([`Mesh::cancel`],
    /// [`Mesh::stop`]) and every message that arrived before was taken.
    pub async fn recv(&mut self) -> Option<Inbound> {
        self.receiver.recv().await
    }

    /// The next message if one has arrived, without waiting: `Some(None)` if none has yet, `None` once the
    /// session's routing has ended and every message that arrived before was taken.
    pub fn try_recv(&mut self) -> Option<Option<Inbound>> {
        match self.receiver.try_recv() {
            Ok(message) => Some(Some(message)),
            Err(mpsc::error::TryRecvError::Empty) => Some(None),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        }
    }
}

impl Drop for SessionInbox<'_> {
    fn drop(&mut self) {
        if let Ok(mut inboxes) = self.mesh.inboxes.lock() {
            inboxes.remove(&self.session);
        }
    }
}

/// A transport that reaches nobody, for tests of one node alone.
#[cfg(test)]
pub(crate) struct Nowhere;

#[cfg(test)]
impl MeshTransport for Nowhere {
    fn send<'a>(
        &'a self,
        to: NodeId,
        _address: &'a str,
        _message: &'a MeshMessage,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            Err(SendError {
                peer: to,
                reason: "no mesh in this test".into(),
            })
        })
    }

    fn disconnect(&self, _peer: NodeId, _left: bool) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_core::OsRng;
    use vhsm_protocols::ecdsa::{EcdsaBody, EcdsaMessage, ECDSA_MESSAGE_VERSION};

    fn message(session: SessionId, id: u64) -> MeshMessage {
        MeshMessage {
            session,
            id,
            payload: MeshPayload::EcdsaSign(EcdsaMessage {
                version: ECDSA_MESSAGE_VERSION,
                session,
                round: 1,
                body: EcdsaBody::Broadcast(vec![1, 2, 3]),
            }),
        }
    }

    fn mesh() -> Mesh {
        Mesh::new(
            1,
            Arc::new(Nowhere),
            [(2, "n2".to_string()), (3, "n3".to_string())],
        )
    }

    /// Issue 14, item 9: a peer flooding random sessions used to fill every inbox slot, and honest sessions'
    /// early messages were dropped (and acknowledged).
    #[tokio::test]
    async fn a_peer_flooding_sessions_is_refused_and_the_others_are_not_affected() {
        let mesh = mesh();
        let mut refused = 0;
        for i in 0..MAX_INBOXES {
            if mesh
                .deliver(3, message(SessionId::random(&mut OsRng), i as u64), 100)
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(refused, MAX_INBOXES - MAX_UNCLAIMED_PER_PEER);
        assert_eq!(
            mesh.deliver(3, message(SessionId::random(&mut OsRng), 0), 100),
            Err(Refused::PeerQuota)
        );
        // An honest peer's early message for a new session is still taken, and its session finds it.
        let honest = SessionId::random(&mut OsRng);
        mesh.deliver(2, message(honest, 7), 100).unwrap();
        let mut inbox = mesh.claim(honest, &[1, 2, 3]).unwrap();
        let (from, _) = inbox.recv().await.unwrap();
        assert_eq!(from, 2);
    }

    #[tokio::test]
    async fn a_peer_flooding_one_session_is_refused_there_and_the_others_still_reach_it() {
        let mesh = mesh();
        let session = SessionId::random(&mut OsRng);
        let mut inbox = mesh.claim(session, &[1, 2, 3]).unwrap();
        for i in 0..MAX_MESSAGES_PER_PEER {
            mesh.deliver(3, message(session, i as u64), 100).unwrap();
        }
        assert_eq!(
            mesh.deliver(3, message(session, u64::MAX), 100),
            Err(Refused::SessionFull)
        );
        // A resent message is still recognised (and taken, not refused).
        mesh.deliver(3, message(session, 0), 100).unwrap();
        mesh.deliver(2, message(session, 1), 100).unwrap();
        let mut from_2 = false;
        for _ in 0..=MAX_MESSAGES_PER_PEER {
            if inbox.recv().await.unwrap().0 == 2 {
                from_2 = true;
            }
        }
        assert!(from_2, "node 2's message was lost in node 3's flood");
    }

    /// Issue 14, item 9 (the rest): the quotas counted messages only, so a peer could make this node hold up to
    /// a thousand sessions × a thousand messages of up to 4 MiB each. Bytes are bounded too.
    #[tokio::test]
    async fn a_peer_sending_large_messages_is_held_to_its_bytes() {
        const BIG: usize = 4 * 1024 * 1024;
        let mesh = mesh();
        // Into sessions this node has not started: at most MAX_UNCLAIMED_BYTES_PER_PEER waiting.
        let mut taken = 0;
        let refusal = loop {
            match mesh.deliver(3, message(SessionId::random(&mut OsRng), 0), BIG) {
                Ok(()) => taken += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(
            (refusal, taken),
            (Refused::PeerBytes, MAX_UNCLAIMED_BYTES_PER_PEER / BIG)
        );
        // Another peer is not affected, nor is a session this node has claimed.
        mesh.deliver(2, message(SessionId::random(&mut OsRng), 0), BIG)
            .unwrap();
        let session = SessionId::random(&mut OsRng);
        let mut inbox = mesh.claim(session, &[1, 2, 3]).unwrap();
        mesh.deliver(3, message(session, 0), BIG).unwrap();
        assert!(inbox.recv().await.is_some());
        // Into one claimed session: at most MAX_SESSION_BYTES_PER_PEER, however few the messages.
        let mut id = 1;
        let refusal = loop {
            match mesh.deliver(3, message(session, id), BIG) {
                Ok(()) => id += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(refusal, Refused::SessionBytes);
        assert_eq!(
            usize::try_from(id).unwrap(),
            MAX_SESSION_BYTES_PER_PEER / BIG
        );
        mesh.deliver(2, message(session, 0), 100).unwrap();
    }

    /// Records what it is asked to send, and takes it.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(NodeId, MeshMessage)>>);

    impl MeshTransport for Recorder {
        fn send<'a>(
            &'a self,
            to: NodeId,
            _address: &'a str,
            message: &'a MeshMessage,
        ) -> BoxFuture<'a, Result<(), SendError>> {
            self.0.lock().unwrap().push((to, message.clone()));
            Box::pin(async { Ok(()) })
        }

        fn disconnect(&self, _peer: NodeId, _left: bool) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    /// Issue 15, item 6: a node shutting down in the middle of a key generation kept its peers waiting.
    #[tokio::test]
    async fn stopping_tells_each_running_session_s_members_and_starts_no_new_one() {
        let sent = Arc::new(Recorder::default());
        let mesh = Mesh::new(
            1,
            sent.clone(),
            [(2, "n2".to_string()), (3, "n3".to_string())],
        );
        let (all, two) = (SessionId::random(&mut OsRng), SessionId::random(&mut OsRng));
        let mut in_all = mesh.claim(all, &[1, 2, 3]).unwrap();
        let mut in_two = mesh.claim(two, &[1, 3]).unwrap();
        // A session node 2 started and this node has not: nobody here to give it up.
        mesh.deliver(2, message(SessionId::random(&mut OsRng), 9), 100)
            .unwrap();

        assert_eq!(
            mesh.stop("node 1 is shutting down", Duration::from_secs(1))
                .await,
            2
        );
        let mut told: Vec<(NodeId, SessionId, String)> = sent
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(to, m)| match &m.payload {
                MeshPayload::Abort(reason) => (*to, m.session, reason.clone()),
                other => panic!("sent {other:?}"),
            })
            .collect();
        told.sort_by_key(|(to, session, _)| (*to, *session == two));
        let reason = "node 1 is shutting down".to_string();
        assert_eq!(
            told,
            vec![
                (2, all, reason.clone()),
                (3, all, reason.clone()),
                (3, two, reason)
            ]
        );
        // The runs here see the end of their messages; no session starts any more.
        assert!(in_all.recv().await.is_none());
        assert!(in_two.recv().await.is_none());
        assert!(mesh.is_stopping());
        assert!(mesh.claim(SessionId::random(&mut OsRng), &[1, 2]).is_none());
    }
}
