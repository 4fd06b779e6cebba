//! The node's QUIC server: accepts connections from the coordinator and from the other nodes, checks what each
//! peer's certificate allows it to ask, and hands requests to the [`Node`] and protocol messages to its mesh.
//!
//! | peer | may |
//! |---|---|
//! | coordinator | make [`NodeRequest`]s (bidirectional streams) |
//! | another node of this cluster | send protocol messages (bidirectional streams, acknowledged) |
//! | anyone else (a client, a stranger's certificate) | nothing: the connection is closed |

use std::{future::Future, net::SocketAddr, sync::Arc};

use vhsm_wire::{
    accept,
    frame::{self, DEFAULT_FRAME_LIMIT},
    mesh::MeshMessage,
    node_api::{NodeRequest, NodeResponse},
    tls::{self, TlsIdentity},
    Role,
};

use crate::{
    config::NodeConfig,
    error::{ServiceError, StartError},
    mesh::quic::{QuicMesh, MESSAGE_ACK, MESSAGE_REFUSED},
    node::Node,
};

/// A node served over QUIC: the coordinator's requests on bidirectional streams, the other nodes' protocol
/// messages through the [`QuicMesh`].
pub struct NodeServer {
    node: Arc<Node>,
    endpoint: quinn::Endpoint,
    mesh: Arc<QuicMesh>,
}

impl std::fmt::Debug for NodeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServer")
            .field("node", &self.node.id)
            .finish_non_exhaustive()
    }
}

impl NodeServer {
    /// Runs the self-tests, checks the certificate, binds the QUIC endpoint and opens the node.
    pub fn bind(config: &NodeConfig) -> Result<NodeServer, StartError> {
        #[cfg(feature = "fault-injection")]
        let corrupt_self_test = config.fault_injection.fail_self_test;
        #[cfg(not(feature = "fault-injection"))]
        let corrupt_self_test = false;
        crate::selftest::run(corrupt_self_test).map_err(StartError::SelfTest)?;
        let identity = TlsIdentity::load(&config.ca_cert, &config.cert, &config.key)
            .map_err(StartError::Tls)?;
        let own_cert = std::fs::read(&config.cert).map_err(|error| StartError::ReadFile {
            path: config.cert.clone(),
            error,
        })?;
        let own_role =
            rustls_pemfile_first_cert(&own_cert).and_then(|der| Role::from_certificate(&der));
        if own_role != Some(Role::Node(config.node_id)) {
            return Err(StartError::WrongCertificate {
                path: config.cert.clone(),
                node: config.node_id,
                found: own_role,
            });
        }
        let endpoint = tls::server_endpoint(&identity, config.listen).map_err(StartError::Tls)?;
        let mesh = QuicMesh::new(endpoint.clone());
        let node = Node::open(config, mesh.clone())?;
        Ok(NodeServer {
            node,
            endpoint,
            mesh,
        })
    }

    /// The node served.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, StartError> {
        self.endpoint.local_addr().map_err(StartError::Endpoint)
    }

    /// Serves until `shutdown` completes, then stops the node ([`Node::stop`]: new requests refused, the sessions
    /// in progress given up and their peers told) and closes every connection.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let background = self.node.start_background();
        let endpoint = self.endpoint.clone();
        let node = self.node.clone();
        let shutdown = async move {
            shutdown.await;
            node.stop().await;
        };
        let server = Arc::new(self);
        accept::serve(&endpoint, shutdown, move |conn, role| {
            server.clone().connection(conn, role)
        })
        .await;
        background.abort();
    }

    async fn connection(self: Arc<Self>, conn: quinn::Connection, role: Option<Role>) {
        let node = &self.node;
        match role {
            Some(Role::Coordinator) => {
                while let Ok((send, recv)) = conn.accept_bi().await {
                    let node = node.clone();
                    tokio::spawn(async move { request(node, send, recv).await });
                }
            }
            Some(Role::Node(peer)) if self.mesh.admit_inbound(node.mesh(), peer, &conn) => {
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    if !node.mesh().is_peer(peer) {
                        conn.close(2u32.into(), b"no longer a peer");
                        break;
                    }
                    let node = node.clone();
                    tokio::spawn(async move {
                        let received = recv
                            .read_to_end(DEFAULT_FRAME_LIMIT)
                            .await
                            .map_err(|e| frame::FrameError::Stream(e.to_string()))
                            .and_then(|bytes| {
                                frame::decode::<MeshMessage>(&bytes).map(|m| (m, bytes.len()))
                            });
                        match received {
                            Ok((message, size)) => {
                                // The sender waits for the acknowledgement to know the message arrived; a
                                // refused message (the peer is over its share) is answered otherwise.
                                let answer = match node.mesh.deliver(peer, message, size) {
                                    Ok(()) => MESSAGE_ACK,
                                    Err(_) => MESSAGE_REFUSED,
                                };
                                if send.write_all(&[answer]).await.is_ok() {
                                    let _ = send.finish();
                                }
                            }
                            Err(e) => {
                                tracing::warn!(peer, error = %e, "bad protocol message from a peer")
                            }
                        }
                    });
                }
                self.mesh.inbound_ended(peer, &conn);
            }
            Some(Role::Node(peer)) => {
                tracing::warn!(remote = %conn.remote_address(), peer, "refused a connection from a node that is not a member of the cluster");
                conn.close(2u32.into(), b"not a peer of this node");
            }
            other => {
                let who = other.map_or("an unknown role".to_string(), |r| r.to_string());
                tracing::warn!(remote = %conn.remote_address(), peer = %who, "refused a connection: role may not talk to a node");
                conn.close(1u32.into(), b"this role may not talk to a node");
            }
        }
    }
}

/// Reads one request of the coordinator from its stream, and writes the node's answer.
async fn request(node: Arc<Node>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let response = match frame::receive::<NodeRequest>(&mut recv, DEFAULT_FRAME_LIMIT).await {
        Ok(request) => node.answer(request).await,
        Err(e) => NodeResponse::Error(ServiceError::Malformed(e).into()),
    };
    if let Err(e) = frame::send(&mut send, &response).await {
        tracing::debug!(error = %e, "could not answer the coordinator");
    }
}

fn rustls_pemfile_first_cert(pem: &[u8]) -> Option<rustls::pki_types::CertificateDer<'static>> {
    rustls_pemfile::certs(&mut &pem[..]).next()?.ok()
}

/// Runs a node from its configuration until `shutdown` completes.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let server = NodeServer::bind(&config)?;
    tracing::info!(node = config.node_id, listen = %server.local_addr()?, peers = ?server.node().mesh().peers().iter().map(|p| p.0).collect::<Vec<_>>(), "node serving");
    server.serve(shutdown).await;
    tracing::info!(node = config.node_id, "node stopped");
    Ok(())
}
