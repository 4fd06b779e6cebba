//! The coordinator's links to the nodes: one QUIC connection per node, made on first use and reused; every call
//! bounded by a timeout; a node that failed lately is remembered so that the next operation prefers others.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use vhsm_wire::{
    frame::{self, DEFAULT_FRAME_LIMIT},
    messages::{NodeRequest, NodeResponse},
    NodeId, Role, WireError,
};

/// How long to wait for a node to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node that failed is passed over when enough other nodes are available.
pub const DOWN_BACKOFF: Duration = Duration::from_secs(5);

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
    connection: tokio::sync::Mutex<Option<quinn::Connection>>,
    failed_at: Mutex<Option<(Instant, String)>>,
}

/// The nodes of the cluster.
pub struct NodePool {
    endpoint: quinn::Endpoint,
    links: BTreeMap<NodeId, Link>,
}

impl std::fmt::Debug for NodePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePool")
            .field("nodes", &self.links.keys())
            .finish_non_exhaustive()
    }
}

impl NodePool {
    /// Links to `nodes` (id, address) through `endpoint`, which must carry the coordinator's client identity.
    pub fn new(
        endpoint: quinn::Endpoint,
        nodes: impl IntoIterator<Item = (NodeId, String)>,
    ) -> Self {
        NodePool {
            endpoint,
            links: nodes
                .into_iter()
                .map(|(id, address)| {
                    (
                        id,
                        Link {
                            address,
                            connection: tokio::sync::Mutex::new(None),
                            failed_at: Mutex::new(None),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<NodeId> {
        self.links.keys().copied().collect()
    }

    /// A node's address.
    pub fn address(&self, node: NodeId) -> Option<&str> {
        self.links.get(&node).map(|l| l.address.as_str())
    }

    /// Whether the node failed within the last [`DOWN_BACKOFF`].
    pub fn recently_failed(&self, node: NodeId) -> bool {
        self.links
            .get(&node)
            .and_then(|l| {
                l.failed_at
                    .lock()
                    .ok()
                    .and_then(|f| f.as_ref().map(|(at, _)| at.elapsed() < DOWN_BACKOFF))
            })
            .unwrap_or(false)
    }

    fn mark(&self, node: NodeId, failure: Option<String>) {
        if let Some(link) = self.links.get(&node) {
            if let Ok(mut f) = link.failed_at.lock() {
                *f = failure.map(|reason| (Instant::now(), reason));
            }
        }
    }

    async fn connection(&self, node: NodeId) -> Result<quinn::Connection, String> {
        let link = self
            .links
            .get(&node)
            .ok_or_else(|| "not a node of this cluster".to_string())?;
        let mut slot = link.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.close_reason().is_none() {
                return Ok(conn.clone());
            }
        }
        let addr = tokio::net::lookup_host(link.address.as_str())
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", link.address))?
            .next()
            .ok_or_else(|| format!("{} has no address", link.address))?;
        let connecting = self
            .endpoint
            .connect(addr, &Role::Node(node).dns_name())
            .map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| format!("no answer from {} within {CONNECT_TIMEOUT:?}", link.address))?
            .map_err(|e| format!("{}: {e}", link.address))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Sends `request` to `node` and waits at most `timeout` for the answer.
    pub async fn call(
        &self,
        node: NodeId,
        request: &NodeRequest,
        timeout: Duration,
    ) -> Result<NodeResponse, NodeCallError> {
        let attempt = async {
            let conn = self.connection(node).await?;
            frame::request::<_, NodeResponse>(&conn, request, DEFAULT_FRAME_LIMIT)
                .await
                .map_err(|e| e.to_string())
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        };
        match result {
            Ok(NodeResponse::Error(error)) => {
                self.mark(node, None);
                Err(NodeCallError::Refused { node, error })
            }
            Ok(response) => {
                self.mark(node, None);
                Ok(response)
            }
            Err(reason) => {
                // Forget the connection: the next call makes a new one.
                if let Some(link) = self.links.get(&node) {
                    if let Some(conn) = link.connection.lock().await.take() {
                        conn.close(0u32.into(), b"unresponsive");
                    }
                }
                self.mark(node, Some(reason.clone()));
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
