//! The mesh over QUIC: one connection per peer, made once and reused, one bidirectional stream per message, and
//! the peer's one-byte acknowledgement once the message is in its session's inbox. Connections from other nodes
//! are admitted only while they are peers, and closed when they leave.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use vhsm_wire::{
    frame,
    mesh::MeshMessage,
    tls::{Liveness, STALE_AFTER},
    NodeId, Role,
};

use super::{BoxFuture, Mesh, MeshTransport, SendError};

/// How long to wait for a peer to accept a connection or a message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// The byte a node answers on a message's stream once the message is delivered to its session.
pub const MESSAGE_ACK: u8 = 0x06;
/// The byte a node answers on a message's stream when it refuses the message (the sending peer is over its share
/// of this node's inboxes, see [`super::Refused`]).
pub const MESSAGE_REFUSED: u8 = 0x15;

/// QUIC close code of a connection to or from a node that is no longer a peer.
const NOT_A_PEER: u32 = 2;

/// One peer's address, and the connection to it this node made (on first use).
struct Link {
    address: String,
    connection: tokio::sync::Mutex<Option<quinn::Connection>>,
    /// Whether `connection` still reaches the peer (see [`Liveness`]).
    liveness: Mutex<Option<Liveness>>,
    /// The connection replaced for lack of liveness, kept (not closed) so that what is still in flight on it is
    /// not cut off; it idles out by itself.
    retired: Mutex<Option<quinn::Connection>>,
}

impl Link {
    fn new(address: &str) -> Arc<Self> {
        Arc::new(Link {
            address: address.to_string(),
            connection: tokio::sync::Mutex::new(None),
            liveness: Mutex::new(None),
            retired: Mutex::new(None),
        })
    }

    /// Whether `conn` (the cached connection) still shows signs of life.
    fn is_live(&self, conn: &quinn::Connection) -> bool {
        self.liveness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|l| l.is_live(conn))
    }

    fn note_new(&self, conn: &quinn::Connection) {
        *self.liveness.lock().unwrap_or_else(PoisonError::into_inner) = Some(Liveness::new(conn));
    }
}

/// This node's QUIC links to the other nodes.
pub struct QuicMesh {
    endpoint: quinn::Endpoint,
    links: Mutex<HashMap<NodeId, Arc<Link>>>,
    /// Connections the peers made to this node, so that they can be closed when a peer leaves.
    inbound: Mutex<HashMap<NodeId, Vec<quinn::Connection>>>,
}

impl std::fmt::Debug for QuicMesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicMesh").finish_non_exhaustive()
    }
}

impl QuicMesh {
    /// Links through `endpoint` (which carries this node's certificate).
    pub fn new(endpoint: quinn::Endpoint) -> Arc<Self> {
        Arc::new(QuicMesh {
            endpoint,
            links: Mutex::new(HashMap::new()),
            inbound: Mutex::new(HashMap::new()),
        })
    }

    /// The link to `peer` at `address` (a new one if the address changed).
    fn link(&self, peer: NodeId, address: &str) -> Arc<Link> {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        match links.get(&peer) {
            Some(link) if link.address == address => link.clone(),
            _ => {
                let link = Link::new(address);
                links.insert(peer, link.clone());
                link
            }
        }
    }

    fn is_current(&self, peer: NodeId, link: &Arc<Link>) -> bool {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .is_some_and(|now| Arc::ptr_eq(now, link))
    }

    /// Admits a connection that node `peer` made to this node: `false` (and nothing recorded) if it is not a peer
    /// of `mesh`. An admitted connection is closed if the peer leaves; call [`QuicMesh::inbound_ended`] when it ends.
    pub fn admit_inbound(&self, mesh: &Mesh, peer: NodeId, conn: &quinn::Connection) -> bool {
        let mut inbound = self.inbound.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock that `disconnect` takes to close a leaving peer's connections, which the mesh
        // calls after it changed its peers: no connection from a peer that is leaving slips in between.
        if !mesh.is_peer(peer) {
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

    async fn connection(
        &self,
        peer: NodeId,
        link: &Arc<Link>,
    ) -> Result<quinn::Connection, SendError> {
        let err = |reason: String| SendError { peer, reason };
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
        // The peer may have left (or moved) while this node was connecting.
        if !self.is_current(peer, link) {
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
    async fn send_once(&self, to: NodeId, link: &Arc<Link>, bytes: &[u8]) -> Result<(), SendError> {
        let conn = self.connection(to, link).await?;
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
}

impl MeshTransport for QuicMesh {
    /// Sends one protocol message to a peer. Retries once on a fresh connection if the cached one has failed.
    fn send<'a>(
        &'a self,
        to: NodeId,
        address: &'a str,
        message: &'a MeshMessage,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let bytes = frame::encode(message).map_err(|e| SendError {
                peer: to,
                reason: e.to_string(),
            })?;
            let link = self.link(to, address);
            // Whether the first try goes over a kept connection that looks alive: only then is a second try, on a
            // fresh connection, worth its time (the kept one may go to a process that has just died). A first
            // try that had to connect anew and failed found the peer unreachable now; trying again would only
            // double the wait (a node cut off from its peers cost each session 6 s instead of 3).
            let kept = {
                let slot = link.connection.lock().await;
                slot.as_ref().is_some_and(|c| link.is_live(c))
            };
            let attempt =
                tokio::time::timeout(SEND_TIMEOUT, self.send_once(to, &link, &bytes)).await;
            match attempt {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) if !kept => Err(e),
                Err(_) if !kept => Err(SendError {
                    peer: to,
                    reason: format!("no answer within {SEND_TIMEOUT:?}"),
                }),
                _ => {
                    *link.connection.lock().await = None;
                    tokio::time::timeout(SEND_TIMEOUT, self.send_once(to, &link, &bytes))
                        .await
                        .map_err(|_| SendError {
                            peer: to,
                            reason: format!("no answer within {SEND_TIMEOUT:?}"),
                        })?
                }
            }
        })
    }

    fn disconnect(&self, peer: NodeId, left: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let link = self
                .links
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&peer);
            if let Some(link) = link {
                if let Some(conn) = link.connection.lock().await.take() {
                    conn.close(NOT_A_PEER.into(), b"no longer a peer");
                }
            }
            if left {
                let inbound = self
                    .inbound
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&peer)
                    .unwrap_or_default();
                for conn in inbound {
                    conn.close(NOT_A_PEER.into(), b"no longer a peer");
                }
            }
        })
    }
}
