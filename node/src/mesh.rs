//! Node-to-node messaging: protocol messages travel directly between nodes (never through the coordinator), one
//! QUIC unidirectional stream per message, over a connection per peer that is made once and reused.
//!
//! Incoming messages are routed to their session's inbox by session id. A message may arrive before this node has
//! started the session (the coordinator's request to another node was faster): its inbox is created on first use
//! and waits to be claimed. Unclaimed inboxes expire.
//!
//! The peers change at run time ([`Mesh::set_peers`], when the cluster's membership changes): a node that left
//! has its connections closed, both those this node made and those it accepted, and a connection from a node that
//! is not a peer is refused ([`Mesh::admit_inbound`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use vhsm_protocols::SessionId;
use vhsm_wire::{
    frame,
    mesh::{MeshMessage, MeshPayload},
    NodeId, Role,
};

/// How long to wait for a peer to accept a connection or a message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an inbox nobody claimed is kept.
const UNCLAIMED_INBOX_TTL: Duration = Duration::from_secs(60);
/// At most this many sessions' inboxes at once; beyond it, messages for new sessions are dropped.
const MAX_INBOXES: usize = 4096;

/// A message received for a session: the authenticated sender and the payload.
pub type Inbound = (NodeId, MeshPayload);

struct Inbox {
    sender: mpsc::UnboundedSender<Inbound>,
    receiver: Option<mpsc::UnboundedReceiver<Inbound>>,
    created: Instant,
    /// (sender, message id) of every message delivered, to drop a resent one.
    seen: HashSet<(NodeId, u64)>,
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

/// One peer: where it listens, and the connection to it this node made (on first use).
struct Peer {
    address: String,
    connection: tokio::sync::Mutex<Option<quinn::Connection>>,
    /// When a datagram last arrived on `connection` (count of datagrams, and when it changed): a connection on
    /// which nothing arrives despite the keep-alives goes to a peer that is gone (e.g. restarted), and QUIC would
    /// otherwise take the whole idle timeout to notice, silently losing what is sent meanwhile.
    liveness: std::sync::Mutex<(u64, Instant)>,
    /// The connection replaced for lack of liveness, kept (not closed) so that what is still in flight on it is
    /// not cut off; it idles out by itself.
    retired: std::sync::Mutex<Option<quinn::Connection>>,
}

/// The byte a node answers on a message's stream once the message is delivered to its session.
pub const MESSAGE_ACK: u8 = 0x06;

/// A cached connection on which no datagram arrived for this long is not used any more (keep-alives flow every
/// quarter of a second both ways on a live one).
const STALE_AFTER: Duration = Duration::from_millis(1000);

impl Peer {
    fn new(address: String) -> Arc<Self> {
        Arc::new(Peer {
            address,
            connection: tokio::sync::Mutex::new(None),
            liveness: std::sync::Mutex::new((0, Instant::now())),
            retired: std::sync::Mutex::new(None),
        })
    }

    /// Whether `conn` (the cached connection) still shows signs of life.
    fn is_live(&self, conn: &quinn::Connection) -> bool {
        let rx = conn.stats().udp_rx.datagrams;
        let mut seen = self.liveness.lock().unwrap_or_else(PoisonError::into_inner);
        if rx != seen.0 {
            *seen = (rx, Instant::now());
            return true;
        }
        seen.1.elapsed() < STALE_AFTER
    }

    fn note_new(&self, conn: &quinn::Connection) {
        *self.liveness.lock().unwrap_or_else(PoisonError::into_inner) =
            (conn.stats().udp_rx.datagrams, Instant::now());
    }
}

/// What [`Mesh::set_peers`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerChange {
    /// Peers that are new (or whose address changed).
    pub added: Vec<NodeId>,
    /// Peers that are gone (or whose address changed); their connections were closed.
    pub removed: Vec<NodeId>,
}

/// QUIC close code of a connection to or from a node that is no longer a peer.
const NOT_A_PEER: u32 = 2;

/// This node's links to the other nodes.
pub struct Mesh {
    me: NodeId,
    endpoint: quinn::Endpoint,
    peers: RwLock<HashMap<NodeId, Arc<Peer>>>,
    /// Connections the peers made to this node, so that they can be closed when a peer leaves.
    inbound: Mutex<HashMap<NodeId, Vec<quinn::Connection>>>,
    inboxes: Mutex<HashMap<SessionId, Inbox>>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Mesh {
    /// Links to `peers` (id, address) through `endpoint`.
    pub fn new(
        me: NodeId,
        endpoint: quinn::Endpoint,
        peers: impl IntoIterator<Item = (NodeId, String)>,
    ) -> Self {
        Mesh {
            me,
            endpoint,
            peers: RwLock::new(
                peers
                    .into_iter()
                    .filter(|(id, _)| *id != me)
                    .map(|(id, address)| (id, Peer::new(address)))
                    .collect(),
            ),
            inbound: Mutex::new(HashMap::new()),
            inboxes: Mutex::new(HashMap::new()),
        }
    }

    fn peer(&self, id: NodeId) -> Option<Arc<Peer>> {
        self.peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Whether `id` is a peer now.
    pub fn is_peer(&self, id: NodeId) -> bool {
        self.peer(id).is_some()
    }

    /// The peers now (id, address), by id.
    pub fn peers(&self) -> Vec<(NodeId, String)> {
        let mut peers: Vec<(NodeId, String)> = self
            .peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, peer)| (*id, peer.address.clone()))
            .collect();
        peers.sort_unstable();
        peers
    }

    /// Makes `peers` (id, address; this node's own entry is skipped) the peers from now on. A peer that is gone has
    /// its connections closed, the one this node made and those it accepted; a peer whose address changed is
    /// reconnected on next use. Peers that stay keep their connections.
    pub async fn set_peers(&self, peers: impl IntoIterator<Item = (NodeId, String)>) -> PeerChange {
        let mut change = PeerChange::default();
        let dropped: Vec<(NodeId, Arc<Peer>)> = {
            let mut table = self.peers.write().unwrap_or_else(PoisonError::into_inner);
            let mut next = HashMap::new();
            for (id, address) in peers {
                if id == self.me {
                    continue;
                }
                let peer = match table.get(&id) {
                    Some(old) if old.address == address => old.clone(),
                    _ => {
                        change.added.push(id);
                        Peer::new(address)
                    }
                };
                next.insert(id, peer);
            }
            let dropped = table
                .iter()
                .filter(|(id, old)| !next.get(*id).is_some_and(|new| Arc::ptr_eq(old, new)))
                .map(|(id, old)| (*id, old.clone()))
                .collect();
            *table = next;
            dropped
        };
        for (id, peer) in dropped {
            if let Some(conn) = peer.connection.lock().await.take() {
                conn.close(NOT_A_PEER.into(), b"no longer a peer");
            }
            // A peer whose address changed stays a peer (it is in `added`); one that is gone is removed.
            if !self.is_peer(id) {
                change.removed.push(id);
                let inbound = self
                    .inbound
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id)
                    .unwrap_or_default();
                for conn in inbound {
                    conn.close(NOT_A_PEER.into(), b"no longer a peer");
                }
            }
        }
        change.added.sort_unstable();
        change.removed.sort_unstable();
        change
    }

    /// Admits a connection that node `peer` made to this node: `false` (and nothing recorded) if it is not a peer.
    /// An admitted connection is closed if the peer leaves; call [`Mesh::inbound_ended`] when it ends.
    pub fn admit_inbound(&self, peer: NodeId, conn: &quinn::Connection) -> bool {
        let mut inbound = self.inbound.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock that `set_peers` takes to close a leaving peer's connections: no connection from
        // a peer that is leaving slips in between.
        if !self.is_peer(peer) {
            return false;
        }
        inbound.entry(peer).or_default().push(conn.clone());
        true
    }

    /// Forgets an admitted connection that has ended.
    pub fn inbound_ended(&self, peer: NodeId, conn: &quinn::Connection) {
        let mut inbound = self.inbound.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conns) = inbound.get_mut(&peer) {
            conns.retain(|c| c.stable_id() != conn.stable_id());
            if conns.is_empty() {
                inbound.remove(&peer);
            }
        }
    }

    async fn connection(&self, peer: NodeId) -> Result<quinn::Connection, SendError> {
        let err = |reason: String| SendError { peer, reason };
        let link = self
            .peer(peer)
            .ok_or_else(|| err("not a peer of this node".into()))?;
        let address = &link.address;
        let mut slot = link.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.close_reason().is_none() {
                if link.is_live(conn) {
                    return Ok(conn.clone());
                }
                tracing::info!(peer, "nothing heard from this peer on its connection for {STALE_AFTER:?}; reconnecting");
                *link.retired.lock().unwrap_or_else(PoisonError::into_inner) = slot.take();
            }
        }
        let addr = tokio::net::lookup_host(address.as_str())
            .await
            .map_err(|e| err(format!("cannot resolve {address}: {e}")))?
            .next()
            .ok_or_else(|| err(format!("{address} has no address")))?;
        let connecting = self
            .endpoint
            .connect(addr, &Role::Node(peer).dns_name())
            .map_err(|e| err(e.to_string()))?;
        let conn = tokio::time::timeout(SEND_TIMEOUT, connecting)
            .await
            .map_err(|_| err(format!("no answer from {address} within {SEND_TIMEOUT:?}")))?
            .map_err(|e| err(format!("{address}: {e}")))?;
        // The peer may have left while this node was connecting.
        if !self.peer(peer).is_some_and(|now| Arc::ptr_eq(&now, &link)) {
            conn.close(NOT_A_PEER.into(), b"no longer a peer");
            return Err(err("no longer a peer of this node".into()));
        }
        link.note_new(&conn);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Sends one message on its own stream and waits for the peer's acknowledgement (one byte, written once the
    /// message is in the session's inbox): a message sent into a connection whose peer is gone — a peer restarted
    /// before QUIC noticed — is then known to be lost, and is sent again on a fresh connection.
    async fn send_once(&self, to: NodeId, bytes: &[u8]) -> Result<(), SendError> {
        let conn = self.connection(to).await?;
        let err = |reason: String| SendError { peer: to, reason };
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| err(e.to_string()))?;
        send.write_all(bytes)
            .await
            .map_err(|e| err(e.to_string()))?;
        send.finish().map_err(|e| err(e.to_string()))?;
        let mut ack = [0u8; 1];
        recv.read_exact(&mut ack)
            .await
            .map_err(|e| err(format!("no acknowledgement: {e}")))?;
        if ack != [MESSAGE_ACK] {
            return Err(err("the peer did not take the message".into()));
        }
        Ok(())
    }

    /// Sends one protocol message to a peer. Retries once on a fresh connection if the cached one has failed.
    pub async fn send(&self, to: NodeId, message: &MeshMessage) -> Result<(), SendError> {
        let bytes = frame::encode(message).map_err(|e| SendError {
            peer: to,
            reason: e.to_string(),
        })?;
        let attempt = tokio::time::timeout(SEND_TIMEOUT, self.send_once(to, &bytes)).await;
        match attempt {
            Ok(Ok(())) => Ok(()),
            _ => {
                if let Some(peer) = self.peer(to) {
                    *peer.connection.lock().await = None;
                }
                tokio::time::timeout(SEND_TIMEOUT, self.send_once(to, &bytes))
                    .await
                    .map_err(|_| SendError {
                        peer: to,
                        reason: format!("no answer within {SEND_TIMEOUT:?}"),
                    })?
            }
        }
    }

    /// Routes a message received from peer `from` to its session's inbox (once: a resent message is dropped).
    pub fn deliver(&self, from: NodeId, message: MeshMessage) {
        let Ok(mut inboxes) = self.inboxes.lock() else {
            return;
        };
        if !inboxes.contains_key(&message.session) && inboxes.len() >= MAX_INBOXES {
            inboxes.retain(|_, inbox| {
                inbox.receiver.is_none() || inbox.created.elapsed() < UNCLAIMED_INBOX_TTL
            });
            if inboxes.len() >= MAX_INBOXES {
                tracing::warn!(from, session = %message.session, "too many open sessions; message dropped");
                return;
            }
        }
        let inbox = inboxes.entry(message.session).or_insert_with(new_inbox);
        if !inbox.seen.insert((from, message.id)) {
            tracing::debug!(from, session = %message.session, "message delivered twice (resent); dropped");
            return;
        }
        // A send fails only if the session has ended; the message is then of no use.
        let _ = inbox.sender.send((from, message.payload));
    }

    /// Ends a session's routing: its claimed inbox sees the end of its messages, and later messages are dropped
    /// (until the unclaimed-inbox expiry). Used when the coordinator aborts a session.
    pub fn cancel(&self, session: SessionId) {
        if let Ok(mut inboxes) = self.inboxes.lock() {
            inboxes.remove(&session);
        }
    }

    /// Claims the inbox of `session` (creating it if no message has arrived yet). A session can be claimed once.
    pub fn claim(&self, session: SessionId) -> Option<SessionInbox<'_>> {
        let mut inboxes = self.inboxes.lock().ok()?;
        let receiver = inboxes
            .entry(session)
            .or_insert_with(new_inbox)
            .receiver
            .take()?;
        Some(SessionInbox {
            mesh: self,
            session,
            receiver,
        })
    }
}

fn new_inbox() -> Inbox {
    let (sender, receiver) = mpsc::unbounded_channel();
    Inbox {
        sender,
        receiver: Some(receiver),
        created: Instant::now(),
        seen: HashSet::new(),
    }
}

/// A claimed session inbox; the session's routing entry is removed when it is dropped.
pub struct SessionInbox<'a> {
    mesh: &'a Mesh,
    session: SessionId,
    receiver: mpsc::UnboundedReceiver<Inbound>,
}

impl SessionInbox<'_> {
    /// The next message of the session.
    pub async fn recv(&mut self) -> Option<Inbound> {
        self.receiver.recv().await
    }
}

impl Drop for SessionInbox<'_> {
    fn drop(&mut self) {
        if let Ok(mut inboxes) = self.mesh.inboxes.lock() {
            inboxes.remove(&self.session);
        }
    }
}
