//! How the coordinator reaches a node: a [`NodeTransport`] opens a [`NodeChannel`] to a node, and a channel carries
//! requests and their answers. The [`NodePool`](super::NodePool) holds everything else (the membership, failure
//! marks, timeouts, batching, who asked), so the same coordinator logic runs over QUIC ([`super::quic`]) in
//! production and over in-process channels in tests (`vhsm-testkit`'s in-memory cluster).

use std::{sync::Arc, time::Duration};

use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    NodeId,
};

/// The boxed future the transport traits return (futures-util's).
pub use futures_util::future::BoxFuture;

/// Why a channel could not be opened or a request not be carried: the node is unreachable (no blame).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Opens channels to nodes.
pub trait NodeTransport: Send + Sync + 'static {
    /// A new channel to node `node`, which the membership says is at `address`. The transport makes sure the peer
    /// is that node (QUIC: its certificate names it); it does not bound the time itself (the pool does).
    fn connect<'a>(
        &'a self,
        node: NodeId,
        address: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn NodeChannel>, TransportError>>;
}

/// One open channel to one node (a QUIC connection, or an in-process handle).
pub trait NodeChannel: Send + Sync + 'static {
    /// Sends `request` and waits for the answer (unbounded: the pool bounds it).
    fn request<'a>(
        &'a self,
        request: &'a NodeRequest,
    ) -> BoxFuture<'a, Result<NodeResponse, TransportError>>;

    /// Whether the channel is still open (a closed one is replaced by a new one before the next request).
    fn is_open(&self) -> bool;

    /// Closes the channel, telling the node why.
    fn close(&self, reason: &'static str);

    /// How long the node has given no sign of life on this channel (zero where the transport cannot tell).
    fn silent_for(&self) -> Duration {
        Duration::ZERO
    }

    /// The round-trip time to the node, as the transport estimates it (zero where it cannot tell).
    fn rtt(&self) -> Duration {
        Duration::ZERO
    }
}
