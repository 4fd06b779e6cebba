//! The node's QUIC server: accepts connections from the coordinator and from the other nodes, checks what each
//! peer's certificate allows it to ask, and answers.
//!
//! | peer | may |
//! |---|---|
//! | coordinator | make [`NodeRequest`]s (bidirectional streams) |
//! | another node of this cluster | send protocol messages (unidirectional streams) |
//! | anyone else (a client, a stranger's certificate) | nothing: the connection is closed |

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use rand_core::OsRng;
use vhsm_core::{KeyState, KeyUse};
use vhsm_protocols::{frost::round2, split_aes, SecretBytes};
use vhsm_wire::{
    accept,
    client_api::NodeStatus,
    frame::{self, DEFAULT_FRAME_LIMIT},
    mesh::MeshMessage,
    node_api::{NodeRequest, NodeResponse},
    tls::{self, TlsIdentity},
    ErrorKind, NodeId, Role, WireError,
};

use crate::{
    audit::AuditLog,
    config::NodeConfig,
    membership::MembershipKeeper,
    mesh::{Mesh, MESSAGE_ACK},
    seal::{SealError, SealedKeyFile, StorageKey},
    sessions::{
        ecdsa_signing::{self, EcdsaSignRequest},
        keygen,
        reshare::{self, ReshareRequest},
        signing::NonceStore,
    },
    share::KeyShare,
    store::{LoadedKey, ShareStore, StoreError},
};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[error("node: {0}")]
pub struct NodeError(String);

/// A running node's state.
pub struct Node {
    id: NodeId,
    /// The store and the membership, once the node is unsealed (at start with a development key file or a
    /// passphrase; else by [`NodeRequest::Unseal`]). Reach them through [`Node::store`] and [`Node::membership`].
    unsealed: std::sync::OnceLock<Unsealed>,
    /// How to unseal, for a node that starts sealed.
    seal: SealSetup,
    /// One unseal attempt at a time (Argon2id takes a moment; a second attempt waits and sees the first's result).
    unsealing: tokio::sync::Mutex<()>,
    mesh: Mesh,
    nonces: Arc<NonceStore>,
    /// The audit log: every recorded request is written here before it runs (fail closed).
    audit: Arc<AuditLog>,
    /// Key generations in progress: key → session, so that the coordinator can abort one.
    keygens:
        std::sync::Mutex<std::collections::HashMap<vhsm_core::KeyId, vhsm_protocols::SessionId>>,
    endpoint: quinn::Endpoint,
    #[cfg(feature = "fault-injection")]
    faults: crate::config::FaultInjection,
    #[cfg(feature = "fault-injection")]
    commit_lost: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn poisoned() -> WireError {
    WireError::new(
        ErrorKind::Internal,
        "a lock was poisoned by a panic; restart the node",
    )
}

fn store_error(e: StoreError) -> WireError {
    match e {
        StoreError::NotFound(_) => WireError::new(ErrorKind::NotFound, e.to_string()),
        StoreError::Exists(_) => WireError::new(ErrorKind::BadRequest, e.to_string()),
        StoreError::Refused(_) => WireError::new(ErrorKind::BadRequest, e.to_string()),
        StoreError::Transition { .. } => WireError::new(ErrorKind::Forbidden, e.to_string()),
        other => WireError::new(ErrorKind::Internal, other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, WireError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WireError::new(ErrorKind::Internal, format!("store task failed: {e}")))?
        .map_err(store_error)
}

impl Node {
    /// Opens the store, checks the certificate, and binds the QUIC endpoint.
    pub fn bind(config: &NodeConfig) -> Result<Arc<Node>, NodeError> {
        #[cfg(feature = "fault-injection")]
        let corrupt_self_test = config.fault_injection.fail_self_test;
        #[cfg(not(feature = "fault-injection"))]
        let corrupt_self_test = false;
        crate::selftest::run(corrupt_self_test).map_err(|e| NodeError(e.to_string()))?;
        let identity = TlsIdentity::load(&config.ca_cert, &config.cert, &config.key)
            .map_err(|e| NodeError(e.to_string()))?;
        let own_cert = std::fs::read(&config.cert)
            .map_err(|e| NodeError(format!("cannot read {}: {e}", config.cert.display())))?;
        let own_role =
            rustls_pemfile_first_cert(&own_cert).and_then(|der| Role::from_certificate(&der));
        if own_role != Some(Role::Node(config.node_id)) {
            return Err(NodeError(format!(
                "certificate {} is not for node {} (it says {})",
                config.cert.display(),
                config.node_id,
                own_role.map_or("nothing we know".to_string(), |r| r.to_string())
            )));
        }
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| NodeError(format!("cannot create {}: {e}", config.data_dir.display())))?;
        // A log whose chain does not verify: refuse to serve (see `audit`).
        let audit = AuditLog::open(&config.data_dir.join(crate::audit::AUDIT_FILE), config.node_id)
            .map_err(|e| {
                NodeError(format!(
                    "{e}; the node refuses to serve with an audit log it cannot vouch for: keep the file as evidence, move it aside and start again (a new chain begins)"
                ))
            })?;
        let seal = SealSetup {
            sealed_key_file: config.sealed_key_file.clone(),
            data_dir: config.data_dir.clone(),
            peers: config.peers.clone(),
        };
        let key = match (&config.storage_key_file, &config.sealed_key_file) {
            (Some(dev), _) => {
                tracing::warn!(
                    node = config.node_id,
                    file = %dev.display(),
                    "DEVELOPMENT STORAGE KEY: this node's records are sealed under a key file that lies beside them; \
                     anyone who can read this directory can read every share. For development only (vhsm up); \
                     initialise production nodes with `vhsm init --seal`"
                );
                Some(StorageKey::load(dev).map_err(|e| NodeError(e.to_string()))?)
            }
            (None, Some(sealed)) => match start_passphrase(config)? {
                Some(passphrase) => Some(
                    SealedKeyFile::load(sealed, passphrase.expose())
                        .map_err(|e| NodeError(format!("cannot unseal at start: {e}")))?,
                ),
                None => None,
            },
            (None, None) => return Err(NodeError("node.toml names no storage key file".into())),
        };
        let endpoint =
            tls::server_endpoint(&identity, config.listen).map_err(|e| NodeError(e.to_string()))?;
        let unsealed = std::sync::OnceLock::new();
        // A sealed node has no peers (it takes part in no session) until it is unsealed.
        let mut peers = Vec::new();
        match key {
            Some(key) => {
                let opened = open_unsealed(config.node_id, &seal, key).map_err(|e| NodeError(e.message))?;
                peers = opened.1;
                let _ = unsealed.set(opened.0);
            }
            None => tracing::warn!(
                node = config.node_id,
                "node is SEALED: it answers nothing but its status until an operator runs `vhsm node unseal {}`",
                config.node_id
            ),
        }
        let mesh = Mesh::new(config.node_id, endpoint.clone(), peers);
        Ok(Arc::new(Node {
            id: config.node_id,
            unsealed,
            seal,
            unsealing: tokio::sync::Mutex::new(()),
            mesh,
            nonces: Arc::new(NonceStore::default()),
            audit: Arc::new(audit),
            keygens: Default::default(),
            endpoint,
            #[cfg(feature = "fault-injection")]
            faults: config.fault_injection.clone(),
            #[cfg(feature = "fault-injection")]
            commit_lost: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The share store, or [`ErrorKind::Sealed`] while the node is sealed.
    fn store(&self) -> Result<&Arc<ShareStore>, WireError> {
        self.unsealed
            .get()
            .map(|u| &u.store)
            .ok_or_else(|| self.sealed_error())
    }

    /// The membership keeper, or [`ErrorKind::Sealed`] while the node is sealed.
    fn membership(&self) -> Result<&MembershipKeeper, WireError> {
        self.unsealed
            .get()
            .map(|u| &u.membership)
            .ok_or_else(|| self.sealed_error())
    }

    fn sealed_error(&self) -> WireError {
        WireError::new(
            ErrorKind::Sealed,
            format!(
                "node {} is sealed: run vhsm node unseal {}",
                self.id, self.id
            ),
        )
    }

    /// Unseals the node with `passphrase` (a no-op if it is unsealed). A wrong passphrase changes nothing.
    async fn unseal(&self, passphrase: SecretBytes) -> Result<(), WireError> {
        let _one_at_a_time = self.unsealing.lock().await;
        if self.unsealed.get().is_some() {
            return Ok(());
        }
        let Some(path) = self.seal.sealed_key_file.clone() else {
            return Err(WireError::new(
                ErrorKind::BadRequest,
                "this node has a development key file and is never sealed",
            ));
        };
        let key =
            tokio::task::spawn_blocking(move || SealedKeyFile::load(&path, passphrase.expose()))
                .await
                .map_err(|e| {
                    WireError::new(ErrorKind::Internal, format!("unseal task failed: {e}"))
                })?;
        let key = match key {
            Ok(key) => key,
            Err(SealError::WrongPassphrase) => {
                tracing::warn!(node = self.id, "unseal refused: wrong passphrase");
                return Err(WireError::new(
                    ErrorKind::PinIncorrect,
                    format!(
                        "node {}: wrong passphrase (it does not unwrap the sealed key file); the node stays sealed",
                        self.id
                    ),
                ));
            }
            Err(e) => return Err(WireError::new(ErrorKind::Internal, e.to_string())),
        };
        let (unsealed, peers) = open_unsealed(self.id, &self.seal, key)?;
        if self.unsealed.set(unsealed).is_err() {
            return Ok(());
        }
        self.mesh.set_peers(peers).await;
        tracing::info!(node = self.id, "node UNSEALED: store open, serving");
        Ok(())
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, NodeError> {
        self.endpoint
            .local_addr()
            .map_err(|e| NodeError(e.to_string()))
    }

    /// Serves until `shutdown` completes, then closes every connection.
    pub async fn serve(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let refill = tokio::spawn(self.clone().refill_nonces());
        let endpoint = self.endpoint.clone();
        accept::serve(&endpoint, shutdown, move |conn, role| {
            self.clone().connection(conn, role)
        })
        .await;
        refill.abort();
    }

    /// Keeps the stock of pre-made FROST nonces filled (see `sessions::signing`), off the request path.
    async fn refill_nonces(self: Arc<Self>) {
        loop {
            if let Some(hedge) = self.unsealed.get().map(|u| u.nonce_hedge.clone()) {
                let (nonces, id) = (self.nonces.clone(), self.id);
                match tokio::task::spawn_blocking(move || nonces.refill(id, &hedge)).await {
                    Ok(Ok(made)) if made > 0 => continue,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "cannot make FROST nonces ahead of time")
                    }
                    Err(e) => tracing::error!(error = %e, "nonce task failed"),
                }
            }
            self.nonces.wait_low(Duration::from_secs(1)).await;
        }
    }

    async fn connection(self: Arc<Self>, conn: quinn::Connection, role: Option<Role>) {
        match role {
            Some(Role::Coordinator) => {
                while let Ok((send, recv)) = conn.accept_bi().await {
                    let node = self.clone();
                    tokio::spawn(async move { node.request(send, recv).await });
                }
            }
            Some(Role::Node(peer)) if self.mesh.admit_inbound(peer, &conn) => {
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    if !self.mesh.is_peer(peer) {
                        conn.close(2u32.into(), b"no longer a peer");
                        break;
                    }
                    let node = self.clone();
                    tokio::spawn(async move {
                        match frame::receive::<MeshMessage>(&mut recv, DEFAULT_FRAME_LIMIT).await {
                            Ok(message) => {
                                node.mesh.deliver(peer, message);
                                // The sender waits for this to know the message arrived.
                                if send.write_all(&[MESSAGE_ACK]).await.is_ok() {
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

    async fn request(self: Arc<Self>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
        let response = match frame::receive::<NodeRequest>(&mut recv, DEFAULT_FRAME_LIMIT).await {
            Ok(NodeRequest::Batch(requests)) => self.batch(requests).await,
            Ok(request) => match self.audited(request).await {
                Ok(r) => r,
                Err(e) => NodeResponse::Error(e),
            },
            Err(e) => NodeResponse::Error(WireError::new(ErrorKind::BadRequest, e.to_string())),
        };
        if let Err(e) = frame::send(&mut send, &response).await {
            tracing::debug!(error = %e, "could not answer the coordinator");
        }
    }

    /// Answers the requests of a batch concurrently (each on its own task, so they use every core), one answer
    /// per request in order. Each is audited like a request of its own.
    async fn batch(self: Arc<Self>, requests: Vec<NodeRequest>) -> NodeResponse {
        if requests.len() > vhsm_wire::node_api::MAX_BATCH {
            return NodeResponse::Error(WireError::new(
                ErrorKind::BadRequest,
                format!(
                    "a batch of {} requests; at most {}",
                    requests.len(),
                    vhsm_wire::node_api::MAX_BATCH
                ),
            ));
        }
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let node = self.clone();
                tokio::spawn(async move {
                    let nested = match &request {
                        NodeRequest::OnBehalf { request, .. } => {
                            matches!(request.as_ref(), NodeRequest::Batch(_))
                        }
                        other => matches!(other, NodeRequest::Batch(_)),
                    };
                    if nested {
                        return NodeResponse::Error(WireError::new(
                            ErrorKind::BadRequest,
                            "batches are not nested",
                        ));
                    }
                    node.audited(request)
                        .await
                        .unwrap_or_else(NodeResponse::Error)
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await.unwrap_or_else(|e| {
                NodeResponse::Error(WireError::new(
                    ErrorKind::Internal,
                    format!("request task failed: {e}"),
                ))
            }));
        }
        NodeResponse::Batch(answers)
    }

    async fn banned(&self) -> Result<Vec<NodeId>, WireError> {
        let store = self.store()?.clone();
        blocking(move || store.banned()).await
    }

    /// Records the bans a failed OT-based protocol asked for (the error names the peers).
    async fn record_bans(&self, error: &WireError) {
        if error.kind != ErrorKind::Banned {
            return;
        }
        let Ok(store) = self.store() else { return };
        for &peer in &error.nodes {
            let store = store.clone();
            let reason = error.message.clone();
            match blocking(move || store.ban(peer, &reason)).await {
                Ok(()) => tracing::error!(
                    peer,
                    reason = %error.message,
                    "peer BANNED from OT-based protocols until an operator clears it (vhsm node unban {peer})"
                ),
                Err(e) => tracing::error!(peer, error = %e, "could not record a ban"),
            }
        }
    }

    #[cfg(feature = "fault-injection")]
    fn tamper(&self) -> Option<&(dyn Fn(&mut vhsm_wire::mesh::MeshPayload) + Send + Sync)> {
        fn corrupt(payload: &mut vhsm_wire::mesh::MeshPayload) {
            use vhsm_protocols::{ecdsa::EcdsaBody, SecretBytes};
            if let vhsm_wire::mesh::MeshPayload::EcdsaSign(message) = payload {
                let bytes = match &message.body {
                    EcdsaBody::Broadcast(b) => b.clone(),
                    EcdsaBody::Private(p) => p.expose().to_vec(),
                };
                let mut bytes = bytes;
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0x55;
                }
                message.body = match &message.body {
                    EcdsaBody::Broadcast(_) => EcdsaBody::Broadcast(bytes),
                    EcdsaBody::Private(_) => EcdsaBody::Private(SecretBytes::new(bytes)),
                };
                tracing::warn!("fault injection: sent a corrupted ECDSA signing message");
            }
        }
        self.faults.corrupt_ecdsa_messages.then_some(&corrupt)
    }

    #[cfg(not(feature = "fault-injection"))]
    fn tamper(&self) -> Option<&(dyn Fn(&mut vhsm_wire::mesh::MeshPayload) + Send + Sync)> {
        None
    }

    #[cfg(feature = "fault-injection")]
    fn tamper_reshare(&self) -> Option<&(dyn Fn(&mut vhsm_wire::mesh::MeshPayload) + Send + Sync)> {
        fn corrupt(payload: &mut vhsm_wire::mesh::MeshPayload) {
            use vhsm_protocols::{reshare::ReshareBody, SecretBytes};
            if let vhsm_wire::mesh::MeshPayload::Reshare(message) = payload {
                if let ReshareBody::SubShare(sub) = &message.body {
                    let mut bytes = sub.expose().to_vec();
                    if let Some(first) = bytes.first_mut() {
                        *first ^= 1;
                    }
                    message.body = ReshareBody::SubShare(SecretBytes::new(bytes));
                    tracing::warn!("fault injection: dealt a wrong sub-share");
                }
            }
        }
        self.faults.corrupt_reshare_subshares.then_some(&corrupt)
    }

    #[cfg(not(feature = "fault-injection"))]
    fn tamper_reshare(&self) -> Option<&(dyn Fn(&mut vhsm_wire::mesh::MeshPayload) + Send + Sync)> {
        None
    }

    /// The key at share epoch `epoch`, as an operation asks for it. A node that staged that epoch but has not heard
    /// the commit yet commits now: the coordinator uses a new epoch only after it decided to commit it. A node
    /// at another epoch refuses (`Unavailable`, so that the coordinator asks another holder without blame).
    async fn key_at(
        &self,
        key_id: vhsm_core::KeyId,
        epoch: u64,
        use_: KeyUse,
        pairwise_test: bool,
    ) -> Result<Arc<LoadedKey>, WireError> {
        let key = self.key_at_epoch(key_id, epoch).await?;
        // A pending key serves only its pairwise consistency test (see `vhsm_protocols::pairwise`).
        let test_of_pending = key.info.state == KeyState::Pending && pairwise_test;
        if !key.info.state.allows(use_) && !test_of_pending {
            return Err(WireError::new(
                ErrorKind::Forbidden,
                format!(
                    "key {key_id} is {}: node {} refuses to {use_} with it",
                    key.info.state, self.id
                ),
            ));
        }
        Ok(key)
    }

    async fn key_at_epoch(
        &self,
        key_id: vhsm_core::KeyId,
        epoch: u64,
    ) -> Result<Arc<LoadedKey>, WireError> {
        match self.store()?.active_key(key_id) {
            Ok(key) if key.info.epoch == epoch => return Ok(key),
            Ok(key) if key.info.epoch > epoch => {
                return Err(WireError::new(
                    ErrorKind::Unavailable,
                    format!(
                        "node {} holds epoch {} of key {key_id}, not {epoch}",
                        self.id, key.info.epoch
                    ),
                ))
            }
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(store_error(e)),
        }
        let store = self.store()?.clone();
        let staged = blocking(move || store.staged()).await?;
        if !staged.iter().any(|k| k.id == key_id && k.epoch == epoch) {
            return Err(WireError::new(
                ErrorKind::Unavailable,
                format!(
                    "node {} does not hold epoch {epoch} of key {key_id}",
                    self.id
                ),
            ));
        }
        let store = self.store()?.clone();
        blocking(move || store.commit_staged(key_id, epoch)).await?;
        tracing::info!(key = %key_id, epoch, "staged share committed on first use of its epoch");
        self.store()?.active_key(key_id).map_err(store_error)
    }

    /// Appends one audit entry (off the async threads); an error names the log and refuses the request.
    async fn audit(
        &self,
        operation: &crate::audit::Operation,
        requester: &str,
        purpose: &str,
        result: String,
    ) -> Result<(), WireError> {
        let (log, operation, requester, purpose) = (
            self.audit.clone(),
            operation.clone(),
            requester.to_string(),
            purpose.to_string(),
        );
        tokio::task::spawn_blocking(move || log.append(&operation, &requester, &purpose, result))
            .await
            .map_err(|e| WireError::new(ErrorKind::Internal, format!("audit task failed: {e}")))?
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, "AUDIT LOG NOT WRITABLE: request refused (fail closed)");
                WireError::new(
                    ErrorKind::Internal,
                    format!("node {}: refused, the audit log cannot be written (fail closed): {e}", self.id),
                )
            })
    }

    /// Answers one coordinator request, recording it in the audit log: the attempt before the work, the result
    /// before the answer leaves (see [`crate::audit`]).
    pub async fn audited(&self, request: NodeRequest) -> Result<NodeResponse, WireError> {
        let (requester, purpose, request) = match request {
            NodeRequest::OnBehalf {
                requester,
                purpose,
                request,
            } => (requester, purpose, *request),
            other => ("coordinator".to_string(), String::new(), other),
        };
        let Some(operation) = crate::audit::describe(&request) else {
            return self.handle(request).await;
        };
        if operation.attempt_first {
            self.audit(&operation, &requester, &purpose, "attempt".into())
                .await?;
        }
        let result = self.handle(request).await;
        let text = crate::audit::result_text(result.as_ref().map(|_| ()));
        self.audit(&operation, &requester, &purpose, text).await?;
        result
    }

    /// Answers one coordinator request.
    pub async fn handle(&self, request: NodeRequest) -> Result<NodeResponse, WireError> {
        if self.unsealed.get().is_none() {
            // Sealed: nothing but the status and the unseal request.
            let inner = match &request {
                NodeRequest::OnBehalf { request, .. } => request.as_ref(),
                other => other,
            };
            match inner {
                NodeRequest::Status => {
                    return Ok(NodeResponse::Status(NodeStatus {
                        node_id: self.id,
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        keys: 0,
                        banned: Vec::new(),
                        sealed: true,
                    }))
                }
                NodeRequest::Unseal { .. } => {}
                _ => return Err(self.sealed_error()),
            }
        }
        match request {
            NodeRequest::Unseal { passphrase } => {
                self.unseal(passphrase).await?;
                Ok(NodeResponse::Ok)
            }
            NodeRequest::Backup => {
                let store = self.store()?.clone();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let file = blocking(move || store.backup(now)).await?;
                tracing::info!(node = self.id, bytes = file.len(), "backup written");
                Ok(NodeResponse::Backup(file))
            }
            NodeRequest::Restore { backup, keys } => {
                let store = self.store()?.clone();
                let restored = blocking(move || store.restore(&backup, &keys)).await?;
                for info in &restored {
                    tracing::warn!(key = %info.id, epoch = info.epoch, state = %info.state, "key RESTORED from a backup");
                }
                Ok(NodeResponse::Ok)
            }
            NodeRequest::Status => {
                let store = self.store()?.clone();
                let keys = blocking(move || store.keys()).await?;
                let active = keys.iter().filter(|k| k.state.has_shares()).count();
                Ok(NodeResponse::Status(NodeStatus {
                    node_id: self.id,
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    keys: u32::try_from(active).unwrap_or(u32::MAX),
                    banned: self.banned().await?,
                    sealed: false,
                }))
            }
            NodeRequest::GenerateKey { session, key } => {
                let key_id = key.id;
                {
                    let mut running = self.keygens.lock().map_err(|_| poisoned())?;
                    if running.contains_key(&key_id) {
                        return Err(WireError::new(
                            ErrorKind::BadRequest,
                            format!("key {key_id} is already being generated"),
                        ));
                    }
                    running.insert(key_id, session);
                }
                let banned = self.banned().await?;
                let result =
                    keygen::generate(self.id, &self.mesh, self.store()?, &banned, session, key)
                        .await;
                // If the coordinator aborted this generation meanwhile, whatever was stored goes too.
                let aborted = self
                    .keygens
                    .lock()
                    .map_err(|_| poisoned())?
                    .remove(&key_id)
                    .is_none();
                if aborted && result.is_ok() {
                    let store = self.store()?.clone();
                    blocking(move || store.abort_pending(key_id)).await?;
                    return Err(WireError::new(
                        ErrorKind::Unavailable,
                        "key generation aborted by the coordinator",
                    ));
                }
                if let Err(e) = &result {
                    self.record_bans(e).await;
                }
                Ok(NodeResponse::KeyGenerated {
                    public_keys: result?,
                })
            }
            NodeRequest::CommitKey { key_id, state } => {
                #[cfg(feature = "fault-injection")]
                if self.faults.lose_first_commit
                    && !self
                        .commit_lost
                        .swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    tracing::warn!(key = %key_id, "fault injection: lost a key commit");
                    return Ok(NodeResponse::Ok);
                }
                let store = self.store()?.clone();
                let info = blocking(move || store.activate(key_id, state)).await?;
                tracing::info!(key = %info.id, label = %info.label, state = %info.state, "key committed");
                Ok(NodeResponse::Ok)
            }
            NodeRequest::SetKeyState { key_id, state } => {
                let store = self.store()?.clone();
                let info = if state == KeyState::Destroyed {
                    blocking(move || {
                        store.destroy_key(key_id)?;
                        store
                            .keys()
                            .map(|keys| keys.into_iter().find(|k| k.id == key_id))
                    })
                    .await?
                    .ok_or_else(|| {
                        WireError::new(ErrorKind::NotFound, format!("no key {key_id}"))
                    })?
                } else {
                    blocking(move || store.set_state(key_id, state)).await?
                };
                tracing::warn!(key = %key_id, state = %info.state, "key lifecycle state changed");
                Ok(NodeResponse::Key(info))
            }
            NodeRequest::AbortKey { key_id } => {
                // Stop a generation still running (its session ends), then delete what it stored.
                let running = self.keygens.lock().map_err(|_| poisoned())?.remove(&key_id);
                if let Some(session) = running {
                    self.mesh.cancel(session);
                    tracing::info!(key = %key_id, %session, "key generation aborted by the coordinator");
                }
                let store = self.store()?.clone();
                if blocking(move || store.abort_pending(key_id)).await? {
                    tracing::info!(key = %key_id, "pending key deleted (generation aborted)");
                }
                Ok(NodeResponse::Ok)
            }
            NodeRequest::ListKeys => {
                let store = self.store()?.clone();
                Ok(NodeResponse::Keys(blocking(move || store.keys()).await?))
            }
            NodeRequest::Precommit { count } => {
                let hedge = self
                    .unsealed
                    .get()
                    .map(|u| u.nonce_hedge.clone())
                    .ok_or_else(|| self.sealed_error())?;
                let (nonces, id) = (self.nonces.clone(), self.id);
                let handed = tokio::task::spawn_blocking(move || nonces.issue(count, id, &hedge))
                    .await
                    .map_err(|e| {
                        WireError::new(ErrorKind::Internal, format!("nonce task failed: {e}"))
                    })?
                    .map_err(|e| WireError::new(ErrorKind::BadRequest, e.to_string()))?;
                Ok(NodeResponse::Precommitments(handed))
            }
            NodeRequest::SignShare {
                session: _,
                nonce,
                key_id,
                epoch,
                package,
            } => {
                // Take the nonces first: whatever happens next, they are gone.
                let nonces = self
                    .nonces
                    .take(nonce)
                    .map_err(|e| WireError::new(ErrorKind::Stale, e.to_string()))?;
                // Decoded once (every commitment point checked): for the message check and for signing.
                let package = package.decode().map_err(|e| {
                    WireError::new(ErrorKind::BadRequest, format!("cannot sign: {e}"))
                })?;
                let key = self
                    .key_at(
                        key_id,
                        epoch,
                        KeyUse::Sign,
                        package.message() == vhsm_protocols::pairwise::message(&key_id).as_slice(),
                    )
                    .await?;
                let KeyShare::Frost(share) = &key.share else {
                    return Err(WireError::new(
                        ErrorKind::BadRequest,
                        format!("key {key_id} is not a FROST key"),
                    ));
                };
                #[allow(unused_mut)]
                let mut share = round2::sign_decoded(share, nonces, &package).map_err(|e| {
                    WireError::new(ErrorKind::BadRequest, format!("cannot sign: {e}"))
                })?;
                #[cfg(feature = "fault-injection")]
                if self.faults.corrupt_signature_shares {
                    if let Some(b) = share.0.first_mut() {
                        *b ^= 1;
                    }
                    tracing::warn!("fault injection: sent a corrupted signature share");
                }
                Ok(NodeResponse::SignatureShare(share))
            }
            NodeRequest::EcdsaSign {
                session,
                key_id,
                epoch,
                signers,
                digest,
            } => {
                let key = self
                    .key_at(
                        key_id,
                        epoch,
                        KeyUse::Sign,
                        digest == vhsm_protocols::pairwise::ecdsa_digest(&key_id),
                    )
                    .await?;
                let banned = self.banned().await?;
                let request = EcdsaSignRequest {
                    me: self.id,
                    session,
                    signers: &signers,
                    digest,
                    banned: &banned,
                    tamper: self.tamper(),
                };
                let result = ecdsa_signing::sign(&self.mesh, &key.share, request).await;
                if let Err(e) = &result {
                    self.record_bans(e).await;
                    tracing::warn!(key = %key_id, %session, error = %e, "ECDSA signing failed");
                }
                Ok(NodeResponse::EcdsaSignature(result?))
            }
            NodeRequest::UpdateKey { key } => {
                let store = self.store()?.clone();
                let info = blocking(move || store.update_key(&key)).await?;
                tracing::info!(key = %info.id, label = %info.label, revision = info.revision, "key metadata updated");
                Ok(NodeResponse::Ok)
            }
            NodeRequest::DestroyKey { key_id } => {
                let store = self.store()?.clone();
                if blocking(move || store.destroy_key(key_id)).await? {
                    tracing::warn!(key = %key_id, "key DESTROYED: this node's share and metadata are deleted");
                }
                Ok(NodeResponse::Ok)
            }
            NodeRequest::PutObject { object } => {
                let store = self.store()?.clone();
                let (id, version) = (object.id, object.version);
                if blocking(move || store.put_object(&object)).await? {
                    tracing::info!(object = %id, version, "object stored");
                }
                Ok(NodeResponse::Ok)
            }
            NodeRequest::ListObjects => {
                let store = self.store()?.clone();
                Ok(NodeResponse::Objects(
                    blocking(move || store.objects()).await?,
                ))
            }
            NodeRequest::Evaluate {
                key_id,
                epoch,
                purpose,
                alpha,
            } => {
                if !matches!(purpose, KeyUse::Encrypt | KeyUse::Decrypt) {
                    return Err(WireError::new(
                        ErrorKind::BadRequest,
                        "an evaluation encrypts or decrypts",
                    ));
                }
                let key = self
                    .key_at(
                        key_id,
                        epoch,
                        purpose,
                        alpha == vhsm_protocols::pairwise::split_aes_alpha(&key_id),
                    )
                    .await?;
                let KeyShare::SplitAes(share) = &key.share else {
                    return Err(WireError::new(
                        ErrorKind::BadRequest,
                        format!("key {key_id} is not a split-AES key"),
                    ));
                };
                #[allow(unused_mut)]
                let mut partial =
                    split_aes::partial::evaluate(share, &key_id.0, &alpha, &mut OsRng);
                #[cfg(feature = "fault-injection")]
                if self.faults.wrong_partials {
                    // Answer another message's partial: a valid-looking point and proof, for the wrong input.
                    let mut other = alpha;
                    other[0] ^= 1;
                    partial = split_aes::partial::evaluate(share, &key_id.0, &other, &mut OsRng);
                    tracing::warn!("fault injection: sent a wrong partial evaluation");
                }
                Ok(NodeResponse::Partial(partial))
            }
            NodeRequest::Reshare {
                session,
                key,
                dealers,
                committee,
                threshold,
            } => {
                let banned = self.banned().await?;
                let result = reshare::reshare(
                    &self.mesh,
                    self.store()?,
                    ReshareRequest {
                        me: self.id,
                        session,
                        key: &key,
                        dealers: &dealers,
                        committee: &committee,
                        threshold,
                        banned: &banned,
                        tamper: self.tamper_reshare(),
                    },
                )
                .await;
                #[cfg(feature = "fault-injection")]
                if self.faults.exit_after_staging && result.is_ok() {
                    tracing::error!(
                        "fault injection: exiting right after staging a reshared share"
                    );
                    std::process::exit(86);
                }
                match result {
                    Ok(done) => Ok(NodeResponse::Reshared {
                        staged: done.staged,
                        excluded: done.excluded.iter().map(|e| e.dealer).collect(),
                    }),
                    Err(e) => {
                        self.record_bans(&e).await;
                        tracing::warn!(key = %key.id, %session, error = %e, "reshare failed on this node");
                        Err(e)
                    }
                }
            }
            NodeRequest::CommitReshare { key_id, epoch } => {
                #[cfg(feature = "fault-injection")]
                if self.faults.exit_before_commit {
                    tracing::error!("fault injection: exiting before committing a reshare");
                    std::process::exit(86);
                }
                let store = self.store()?.clone();
                let info = blocking(move || store.commit_staged(key_id, epoch)).await?;
                tracing::info!(key = %key_id, epoch, holders = ?info.holders, threshold = info.threshold, "reshare committed: the new share is in force, the old one erased");
                Ok(NodeResponse::Key(info))
            }
            NodeRequest::AbortReshare { key_id, epoch } => {
                let store = self.store()?.clone();
                if blocking(move || store.abort_staged(key_id, epoch)).await? {
                    tracing::warn!(key = %key_id, epoch, "reshare aborted: staged share dropped, the current one stays");
                }
                Ok(NodeResponse::Ok)
            }
            NodeRequest::ListStaged => {
                let store = self.store()?.clone();
                Ok(NodeResponse::Keys(blocking(move || store.staged()).await?))
            }
            NodeRequest::SetMembership { membership } => {
                self.membership()?
                    .apply(self.store()?.clone(), &self.mesh, membership)
                    .await?;
                Ok(NodeResponse::Ok)
            }
            NodeRequest::OnBehalf { .. } => Err(WireError::new(
                ErrorKind::BadRequest,
                "a request on behalf of a client must not be nested",
            )),
            NodeRequest::Batch(_) => Err(WireError::new(
                ErrorKind::BadRequest,
                "a batch is a message of its own: not nested, not on behalf of a client",
            )),
            // Recorded by `audited`: nothing else to do.
            NodeRequest::LoginFailed { .. } => Ok(NodeResponse::Ok),
            NodeRequest::AuditLog {
                from_line,
                max_lines,
            } => {
                let log = self.audit.clone();
                tokio::task::spawn_blocking(move || log.page(from_line, max_lines))
                    .await
                    .map_err(|e| {
                        WireError::new(ErrorKind::Internal, format!("audit task failed: {e}"))
                    })?
                    .map(NodeResponse::Audit)
                    .map_err(|e| WireError::new(ErrorKind::Internal, e.to_string()))
            }
            NodeRequest::ClearBan { node } => {
                let store = self.store()?.clone();
                if blocking(move || store.unban(node)).await? {
                    tracing::warn!(peer = node, "ban cleared by an operator");
                }
                Ok(NodeResponse::Ok)
            }
        }
    }
}

/// The store and membership of an unsealed node.
struct Unsealed {
    store: Arc<ShareStore>,
    membership: MembershipKeeper,
    /// The secret that hedges this node's FROST nonces (derived from the storage key; see `sessions::signing`).
    nonce_hedge: zeroize::Zeroizing<[u8; 32]>,
}

/// Opens the store with `key` and reads the membership; returns them with the peers to take.
fn open_unsealed(
    id: NodeId,
    seal: &SealSetup,
    key: StorageKey,
) -> Result<(Unsealed, Vec<(NodeId, String)>), WireError> {
    let internal = |e: String| WireError::new(ErrorKind::Internal, e);
    let nonce_hedge = key.derive(b"vhsm/frost-nonce-hedge/v1");
    let store = ShareStore::open(&seal.data_dir.join("shares.redb"), key, id)
        .map_err(|e| internal(e.to_string()))?;
    // The peers: the newest membership this node was given, else node.toml's.
    let (membership, peers) = MembershipKeeper::start(id, &store, &seal.peers)
        .map_err(|e| internal(format!("cannot read the stored cluster membership: {e}")))?;
    Ok((
        Unsealed {
            store: Arc::new(store),
            membership,
            nonce_hedge,
        },
        peers,
    ))
}

/// What a sealed node needs to unseal itself.
struct SealSetup {
    /// `None`: a development key file (never sealed).
    sealed_key_file: Option<std::path::PathBuf>,
    data_dir: std::path::PathBuf,
    peers: Vec<crate::config::PeerConfig>,
}

/// The environment variable a node (and `vhsm node unseal`, `vhsm init --seal`) reads a passphrase from, for
/// automation. Prefer a passphrase file or the prompt where the environment may be seen by others.
pub const PASSPHRASE_ENV: &str = "VHSM_NODE_PASSPHRASE";

/// The passphrase to unseal with at start, if one is configured: `passphrase_file`, else `VHSM_NODE_PASSPHRASE`.
fn start_passphrase(config: &NodeConfig) -> Result<Option<SecretBytes>, NodeError> {
    if let Some(path) = &config.passphrase_file {
        let text = zeroize::Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| NodeError(format!("cannot read {}: {e}", path.display())))?,
        );
        return Ok(Some(SecretBytes::new(trim_passphrase(&text).to_vec())));
    }
    Ok(std::env::var_os(PASSPHRASE_ENV)
        .filter(|v| !v.is_empty())
        .map(|v| SecretBytes::new(v.as_encoded_bytes().to_vec())))
}

/// A passphrase as read from a file: without a final newline (`\n` or `\r\n`).
pub fn trim_passphrase(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

fn rustls_pemfile_first_cert(pem: &[u8]) -> Option<rustls::pki_types::CertificateDer<'static>> {
    rustls_pemfile::certs(&mut &pem[..]).next()?.ok()
}

/// Runs a node from its configuration until `shutdown` completes.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let node = Node::bind(&config)?;
    tracing::info!(node = config.node_id, listen = %node.local_addr()?, peers = ?node.mesh.peers().iter().map(|p| p.0).collect::<Vec<_>>(), "node serving");
    node.serve(shutdown).await;
    tracing::info!(node = config.node_id, "node stopped");
    Ok(())
}
