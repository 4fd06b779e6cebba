//! The whole cluster in one process, with no sockets: real nodes (`vhsm_node::Node`, each with its store,
//! audit log and sessions on a temporary directory), their mesh a set of in-process deliveries, and the
//! coordinator's [`NodePool`] over an in-process [`NodeTransport`]. The coordinator's services (key generation,
//! signing, encryption, reshare, the registry) run against it unchanged, in seconds.
//!
//! A fault is one line: [`MemoryCluster::set_fault`] makes a node [`Fault::Down`] (unreachable, and its protocol
//! messages lost both ways), [`Fault::Slow`] (every answer late), [`Fault::Garbage`] (answers of the wrong kind), or
//! [`Fault::Lie`] (its real answers rewritten by the test: a node lying about a key, or about a PIN).
//!
//! The nodes check the token's PINs ([`USER_PIN`], [`SO_PIN`]) with their own counters;
//! [`MemoryCluster::another_coordinator`] reaches the same nodes as a second (or restarted) coordinator.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use anyhow::Context;
use vhsm_client::approval::ApprovalKey;
use vhsm_coordinator::{
    nodes::{
        transport::{BoxFuture, NodeChannel, NodeTransport, TransportError},
        NodePool,
    },
    registry::Registry,
    signing::Signer,
};
use vhsm_core::{ChangeApproval, MemberEntry, Membership, NodeId};
use vhsm_node::{
    mesh::{MeshTransport, SendError},
    seal::StorageKey,
    Node, NodeConfig,
};
use vhsm_wire::{
    mesh::MeshMessage,
    node_api::{NodeRequest, NodeResponse},
};

/// Rewrites a node's real answer to a request (the request as the node received it, maybe wrapped `OnBehalf`).
pub type Rewrite = Arc<dyn Fn(&NodeRequest, NodeResponse) -> NodeResponse + Send + Sync>;

/// What is wrong with a node.
#[derive(Clone)]
pub enum Fault {
    /// Unreachable: the coordinator cannot open a channel to it, requests on an open one fail, and its protocol
    /// messages are lost in both directions.
    Down,
    /// Answers, but each answer only after this long.
    Slow(Duration),
    /// Answers every request with something of the wrong kind.
    Garbage,
    /// Answers what `Rewrite` makes of its real answer.
    Lie(Rewrite),
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Down => f.write_str("Down"),
            Fault::Slow(d) => write!(f, "Slow({d:?})"),
            Fault::Garbage => f.write_str("Garbage"),
            Fault::Lie(_) => f.write_str("Lie(..)"),
        }
    }
}

/// The in-process network: every node, and what is wrong with each.
#[derive(Default)]
struct Network {
    nodes: RwLock<BTreeMap<NodeId, Arc<Node>>>,
    faults: Mutex<BTreeMap<NodeId, Fault>>,
}

impl Network {
    fn node(&self, id: NodeId) -> Option<Arc<Node>> {
        self.nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn fault(&self, id: NodeId) -> Option<Fault> {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn is_down(&self, id: NodeId) -> bool {
        matches!(self.fault(id), Some(Fault::Down))
    }
}

/// A node's mesh: delivers straight into the peer's inbox.
struct MemoryMesh {
    me: NodeId,
    network: Arc<Network>,
}

impl MeshTransport for MemoryMesh {
    fn send<'a>(
        &'a self,
        to: NodeId,
        _address: &'a str,
        message: &'a MeshMessage,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let lost = |reason: &str| SendError {
                peer: to,
                reason: reason.to_string(),
            };
            if self.network.is_down(self.me) || self.network.is_down(to) {
                return Err(lost("the in-memory network drops it (a node is down)"));
            }
            let peer = self
                .network
                .node(to)
                .ok_or_else(|| lost("no such node in the in-memory cluster"))?;
            // The peer admits messages only from its peers, as the QUIC server does.
            if !peer.mesh().is_peer(self.me) {
                return Err(lost("the peer does not take messages from this node"));
            }
            // Its size as the QUIC transport would have received it.
            let size = vhsm_wire::frame::encode(message).map_or(0, |bytes| bytes.len());
            peer.mesh()
                .deliver(self.me, message.clone(), size)
                .map_err(|e| SendError {
                    peer: to,
                    reason: format!("the peer refused it: {e}"),
                })
        })
    }

    fn disconnect(&self, _peer: NodeId, _left: bool) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The coordinator's side: a channel is a handle on the node.
struct MemoryTransport {
    network: Arc<Network>,
}

impl NodeTransport for MemoryTransport {
    fn connect<'a>(
        &'a self,
        node: NodeId,
        _address: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn NodeChannel>, TransportError>> {
        Box::pin(async move {
            if self.network.is_down(node) {
                return Err(TransportError(format!("node {node} is down")));
            }
            if self.network.node(node).is_none() {
                return Err(TransportError(format!("no node {node} in the cluster")));
            }
            Ok(Arc::new(MemoryChannel {
                node,
                network: self.network.clone(),
            }) as Arc<dyn NodeChannel>)
        })
    }
}

struct MemoryChannel {
    node: NodeId,
    network: Arc<Network>,
}

impl NodeChannel for MemoryChannel {
    fn request<'a>(
        &'a self,
        request: &'a NodeRequest,
    ) -> BoxFuture<'a, Result<NodeResponse, TransportError>> {
        Box::pin(async move {
            let fault = self.network.fault(self.node);
            if let Some(Fault::Slow(delay)) = &fault {
                tokio::time::sleep(*delay).await;
            }
            if matches!(fault, Some(Fault::Down)) {
                return Err(TransportError(format!("node {} is down", self.node)));
            }
            let node = self
                .network
                .node(self.node)
                .ok_or_else(|| TransportError(format!("no node {}", self.node)))?;
            // Through the wire format, as over QUIC: what the node gets is what a decoder made of the bytes.
            let bytes = vhsm_wire::frame::encode(request)
                .map_err(|e| TransportError(format!("cannot encode: {e}")))?;
            let request: NodeRequest = vhsm_wire::frame::decode(&bytes)
                .map_err(|e| TransportError(format!("cannot decode: {e}")))?;
            let answer = node.answer(request.clone()).await;
            Ok(match fault {
                Some(Fault::Garbage) => garbage(&request),
                Some(Fault::Lie(rewrite)) => rewrite(&request, answer),
                _ => answer,
            })
        })
    }

    fn is_open(&self) -> bool {
        !self.network.is_down(self.node)
    }

    fn close(&self, _reason: &'static str) {}
}

/// An answer of the wrong kind for `request`.
fn garbage(request: &NodeRequest) -> NodeResponse {
    match request {
        NodeRequest::SetMembership { .. } => NodeResponse::Ok,
        NodeRequest::Status => NodeResponse::Keys(Vec::new()),
        _ => NodeResponse::Objects(Vec::new()),
    }
}

/// The token user's PIN of every in-memory cluster (the nodes hold its Argon2id hash in their `[token]`).
pub const USER_PIN: &str = "memory-user-pin";
/// The security officer's PIN of every in-memory cluster.
pub const SO_PIN: &str = "memory-so-pin";
/// Wrong PINs in a row at which an in-memory node locks a PIN.
pub const MAX_PIN_FAILURES: u32 = 5;

/// A threshold-of-n cluster in this process.
pub struct MemoryCluster {
    _dir: tempfile::TempDir,
    network: Arc<Network>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The coordinator's links to the nodes (over the in-process transport), with the cluster's membership.
    pub pool: NodePool,
    /// A coordinator's key registry.
    pub registry: Registry,
    /// A coordinator's signer.
    pub signer: Signer,
    /// The security officer's approval key, pinned on every node.
    officer: ApprovalKey,
}

impl std::fmt::Debug for MemoryCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCluster")
            .field("nodes", &self.ids())
            .finish_non_exhaustive()
    }
}

fn address(id: NodeId) -> String {
    format!("memory-node-{id}:0")
}

impl MemoryCluster {
    /// `nodes` nodes with development storage keys on a temporary directory, all peers of each other, and a
    /// coordinator pool whose membership says `threshold`. Must run inside a tokio runtime (multi-threaded: the
    /// nodes run protocol steps with `block_in_place`).
    pub async fn start(nodes: u16, threshold: u16) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vhsm-memory-")
            .tempdir()
            .context("cannot make a temporary directory")?;
        let network = Arc::new(Network::default());
        let ids: Vec<NodeId> = (1..=nodes).collect();
        let officer = ApprovalKey::generate_new(&dir.path().join(vhsm_client::approval::KEY_FILE))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut background = Vec::new();
        let token = format!(
            "\n[token]\nuser_pin_hash = \"{}\"\nso_pin_hash = \"{}\"\nmax_pin_failures = {MAX_PIN_FAILURES}\n",
            vhsm_node::pins::hash_pin(USER_PIN.as_bytes()).map_err(anyhow::Error::msg)?,
            vhsm_node::pins::hash_pin(SO_PIN.as_bytes()).map_err(anyhow::Error::msg)?,
        );
        for &id in &ids {
            let config = node_config(dir.path(), id, &ids, &officer.public_key_hex(), &token)?;
            let mesh = Arc::new(MemoryMesh {
                me: id,
                network: network.clone(),
            });
            let node = Node::open(&config, mesh).map_err(|e| anyhow::anyhow!("{e}"))?;
            background.push(node.start_background());
            network
                .nodes
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, node);
        }
        let membership = Membership {
            version: 1,
            threshold,
            nodes: ids
                .iter()
                .map(|&id| MemberEntry {
                    id,
                    address: address(id),
                })
                .collect(),
        };
        membership.check().map_err(anyhow::Error::msg)?;
        let transport = Arc::new(MemoryTransport {
            network: network.clone(),
        });
        Ok(MemoryCluster {
            _dir: dir,
            network,
            background,
            pool: NodePool::with_membership(transport, membership),
            registry: Registry::default(),
            signer: Signer::default(),
            officer,
        })
    }

    /// The security officer's approval of moving keys onto `committee` at `threshold` (valid for a day).
    pub fn approve(&self, committee: &[NodeId], threshold: u16) -> ChangeApproval {
        self.officer.approve(committee, threshold)
    }

    /// Another coordinator's links to the same nodes, with the same membership: it shares nothing with
    /// [`MemoryCluster::pool`] but the nodes — as a restarted coordinator process, or a second one beside it.
    pub fn another_coordinator(&self) -> NodePool {
        let transport = Arc::new(MemoryTransport {
            network: self.network.clone(),
        });
        NodePool::with_membership(transport, self.pool.membership())
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.network
            .nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// Node `id`, to look at its state or answer it directly.
    pub fn node(&self, id: NodeId) -> Arc<Node> {
        self.network
            .node(id)
            .unwrap_or_else(|| panic!("no node {id} in the cluster"))
    }

    /// Makes node `id` misbehave as `fault` says, from its next request or message on.
    pub fn set_fault(&self, id: NodeId, fault: Fault) {
        self.network
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, fault);
    }

    /// Node `id` behaves again.
    pub fn clear_fault(&self, id: NodeId) {
        self.network
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

impl Drop for MemoryCluster {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

/// A node's configuration on `root`: a development storage key, every other node a peer, the security officer's
/// approval key `officer` pinned, `token` (the `[token]` section: the PIN hashes). (Its TLS files are named but
/// never read: nothing here listens.)
fn node_config(
    root: &Path,
    id: NodeId,
    ids: &[NodeId],
    officer: &str,
    token: &str,
) -> anyhow::Result<NodeConfig> {
    let dir = root.join(format!("node-{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key_file = dir.join("storage.key");
    StorageKey::generate()
        .write_new(&key_file)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut text = format!(
        "node_id = {id}\nlisten = \"127.0.0.1:0\"\nca_cert = \"unused-ca.pem\"\ncert = \"unused.pem\"\n\
         key = \"unused.key\"\nstorage_key_file = \"storage.key\"\ndata_dir = \"data\"\n\
         security_officer_key = \"{officer}\"\n"
    );
    for peer in ids.iter().filter(|p| **p != id) {
        text.push_str(&format!(
            "\n[[peers]]\nid = {peer}\naddress = \"{}\"\n",
            address(*peer)
        ));
    }
    text.push_str(token);
    let path = dir.join("node.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    NodeConfig::load(&path).map_err(anyhow::Error::msg)
}
