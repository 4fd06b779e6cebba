//! The coordinator's QUIC transport: one connection per node with mutual TLS (the node's certificate must name
//! it), one bidirectional stream per request, framed by `vhsm_wire::frame`.

use std::sync::Arc;

use vhsm_wire::{
    frame::{self, DEFAULT_FRAME_LIMIT},
    node_api::{NodeRequest, NodeResponse},
    tls::Liveness,
    NodeId, Role,
};

use super::transport::{BoxFuture, NodeChannel, NodeTransport, TransportError};

/// Reaches nodes over QUIC through an endpoint that carries the coordinator's identity.
#[derive(Debug, Clone)]
pub struct QuicTransport {
    endpoint: quinn::Endpoint,
}

impl QuicTransport {
    /// A transport over `endpoint` (a client endpoint with the coordinator's certificate).
    pub fn new(endpoint: quinn::Endpoint) -> Self {
        QuicTransport { endpoint }
    }
}

impl NodeTransport for QuicTransport {
    fn connect<'a>(
        &'a self,
        node: NodeId,
        address: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn NodeChannel>, TransportError>> {
        Box::pin(async move {
            let addr = tokio::net::lookup_host(address)
                .await
                .map_err(|e| TransportError(format!("cannot resolve {address}: {e}")))?
                .next()
                .ok_or_else(|| TransportError(format!("{address} has no address")))?;
            let connection = self
                .endpoint
                .connect(addr, &Role::Node(node).dns_name())
                .map_err(|e| TransportError(e.to_string()))?
                .await
                .map_err(|e| TransportError(format!("{address}: {e}")))?;
            let liveness = Liveness::new(&connection);
            Ok(Arc::new(QuicChannel(connection, liveness)) as Arc<dyn NodeChannel>)
        })
    }
}

/// A QUIC connection to one node, and whether it still reaches the node: a node that restarted is reconnected to at
/// once instead of when a request on the dead connection times out (see [`Liveness`]).
struct QuicChannel(quinn::Connection, Liveness);

impl NodeChannel for QuicChannel {
    fn request<'a>(
        &'a self,
        request: &'a NodeRequest,
    ) -> BoxFuture<'a, Result<NodeResponse, TransportError>> {
        Box::pin(async move {
            frame::request::<_, NodeResponse>(&self.0, request, DEFAULT_FRAME_LIMIT)
                .await
                .map_err(|e| TransportError(e.to_string()))
        })
    }

    fn is_open(&self) -> bool {
        self.1.is_live(&self.0)
    }

    fn silent_for(&self) -> std::time::Duration {
        self.1.silent_for(&self.0)
    }

    fn rtt(&self) -> std::time::Duration {
        self.0.rtt()
    }

    fn close(&self, reason: &'static str) {
        self.0.close(0u32.into(), reason.as_bytes());
    }
}
