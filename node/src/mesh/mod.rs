//! Node-to-node messaging: protocol messages travel directly between nodes (never through the coordinator). How
//! they travel is a [`MeshTransport`]'s business: QUIC between processes ([`quic`]), or in-process channels in
//! tests (`vhsm-testkit`'s in-memory cluster). This module keeps what is the same for every transport: the peers,
//! and the inboxes of the sessions.
//!
//! Incoming messages are routed to their session's inbox by session id. A message may arrive before this node has
//! started the session (the coordinator's request to another node was faster): its inbox is created on first use
//! and waits to be claimed. Unclaimed inboxes expire.
//!
//! The peers change at run time ([`Mesh::set_peers`], when the cluster's membership changes): the transport is
//! told to drop its links to a node that left (both those this node made and those it accepted), and messages
//! to or from a node that is not a peer are refused.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError, RwLock},
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
