//! Node-to-node messaging: protocol messages travel directly between nodes (never through the coordinator), one
//! QUIC unidirectional stream per message, over a connection per peer that is made once and reused.
//!
//! Incoming messages are routed to their session's inbox by session id. A message may arrive before this node has
//! started the session (the coordinator's request to another node was faster): its inbox is created on first use
//! and waits to be claimed. Unclaimed inboxes expire.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use vhsm_protocols::SessionId;
use vhsm_wire::{
    frame,
    messages::{MeshMessage, MeshPayload},
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

/// This node's links to the other nodes.
pub struct Mesh {
    me: NodeId,
    endpoint: quinn::Endpoint,
    peers: HashMap<NodeId, (String, tokio::sync::Mutex<Option<quinn::Connection>>)>,
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
            peers: peers
                .into_iter()
                .map(|(id, address)| (id, (address, tokio::sync::Mutex::new(None))))
                .collect(),
            inboxes: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `id` is a configured peer.
    pub fn is_peer(&self, id: NodeId) -> bool {
        self.peers.contains_key(&id)
    }

    async fn connection(&self, peer: NodeId) -> Result<quinn::Connection, SendError> {
        let err = |reason: String| SendError { peer, reason };
        let (address, slot) = self
            .peers
            .get(&peer)
            .ok_or_else(|| err("not a peer of this node".into()))?;
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.close_reason().is_none() {
                return Ok(conn.clone());
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
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn send_once(&self, to: NodeId, bytes: &[u8]) -> Result<(), SendError> {
        let conn = self.connection(to).await?;
        let err = |reason: String| SendError { peer: to, reason };
        let mut stream = conn.open_uni().await.map_err(|e| err(e.to_string()))?;
        stream
            .write_all(bytes)
            .await
            .map_err(|e| err(e.to_string()))?;
        stream.finish().map_err(|e| err(e.to_string()))?;
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
                if let Some((_, slot)) = self.peers.get(&to) {
                    *slot.lock().await = None;
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

    /// Routes a message received from peer `from` to its session's inbox.
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
