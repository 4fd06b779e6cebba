//! A node's state and how it answers the coordinator: [`Node`] opens the store and the audit log, unseals, audits
//! every request before it runs (fail closed) and hands it to the handler of its area (`crate::handlers`). No
//! network here: [`crate::server`] serves a node over QUIC, and tests drive it in-process ([`Node::answer`]).
//!
//! Handlers fail with a typed [`ServiceError`] (a session with a [`SessionError`](crate::sessions::SessionError),
//! which keeps its culprits); [`Node::answer`] is the edge where a failure becomes the wire's
//! [`NodeResponse::Error`], through the one conversion in [`crate::error`]. [`Node::open`] fails with a
//! [`StartError`].

use std::{sync::Arc, time::Duration};

use vhsm_core::{KeyState, KeyUse};
use vhsm_protocols::SecretBytes;
use vhsm_wire::{
    client_api::NodeStatus,
    node_api::{NodeRequest, NodeResponse},
    NodeId,
};

use crate::{
    audit::AuditLog,
    config::NodeConfig,
    error::{ServiceError, StartError},
    membership::MembershipKeeper,
    mesh::{Mesh, MeshTransport},
    seal::{SealError, SealedKeyFile, StorageKey},
    sessions::signing::NonceStore,
    store::{LoadedKey, ShareStore, StoreError},
};

/// A running node's state.
pub struct Node {
    pub(crate) id: NodeId,
    /// The store and the membership, once the node is unsealed (at start with a development key file or a
    /// passphrase; else by [`NodeRequest::Unseal`]). Reach them through [`Node::store`] and [`Node::membership`].
    pub(crate) unsealed: std::sync::OnceLock<Unsealed>,
    /// How to unseal, for a node that starts sealed.
    pub(crate) seal: SealSetup,
    /// One unseal attempt at a time (Argon2id takes a moment; a second attempt waits and sees the first's result).
    pub(crate) unsealing: tokio::sync::Mutex<()>,
    pub(crate) mesh: Mesh,
    pub(crate) nonces: Arc<NonceStore>,
    /// The audit log: every recorded request is written here before it runs (fail closed).
    pub(crate) audit: Arc<AuditLog>,
    /// Key generations in progress: key → session, so that the coordinator can abort one.
    pub(crate) keygens:
        std::sync::Mutex<std::collections::HashMap<vhsm_core::KeyId, vhsm_protocols::SessionId>>,
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: crate::config::FaultInjection,
    #[cfg(feature = "fault-injection")]
    pub(crate) commit_lost: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Runs a store operation off the async threads; its failure keeps what the store said
/// ([`ServiceError::Store`]).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| ServiceError::TaskFailed {
            task: "store",
            source,
        })?
        .map_err(ServiceError::Store)
}

/// The answer for a request's outcome: the edge where a node's failure becomes the wire's error.
fn respond(result: Result<NodeResponse, ServiceError>) -> NodeResponse {
    result.unwrap_or_else(|e| NodeResponse::Error(e.into()))
}

impl Node {
    /// Opens the node's state from its configuration (audit log, then the store if a storage key is at hand),
    /// with its messages to the other nodes going through `mesh`. No network:
    /// [`NodeServer::bind`](crate::server::NodeServer::bind) serves it over QUIC; tests drive it in-process
    /// ([`Node::answer`]). Why it could not open: a [`StartError`].
    pub fn open(
        config: &NodeConfig,
        mesh: Arc<dyn MeshTransport>,
    ) -> Result<Arc<Node>, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| StartError::CreateDir {
            path: config.data_dir.clone(),
            error,
        })?;
        // A log whose chain does not verify: refuse to serve (see `audit`).
        let audit = AuditLog::open(
            &config.data_dir.join(crate::audit::AUDIT_FILE),
            config.node_id,
        )
        .map_err(StartError::AuditLog)?;
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
                Some(StorageKey::load(dev).map_err(StartError::StorageKey)?)
            }
            (None, Some(sealed)) => match start_passphrase(config)? {
                Some(passphrase) => Some(
                    SealedKeyFile::load(sealed, passphrase.expose()).map_err(StartError::Unseal)?,
                ),
                None => None,
            },
            (None, None) => return Err(StartError::NoStorageKey),
        };
        let unsealed = std::sync::OnceLock::new();
        // A sealed node has no peers (it takes part in no session) until it is unsealed.
        let mut peers = Vec::new();
        match key {
            Some(key) => {
                let opened = open_unsealed(config.node_id, &seal, key).map_err(StartError::Open)?;
                peers = opened.1;
                let _ = unsealed.set(opened.0);
            }
            None => tracing::warn!(
                node = config.node_id,
                "node is SEALED: it answers nothing but its status until an operator runs `vhsm node unseal {}`",
                config.node_id
            ),
        }
        let mesh = Mesh::new(config.node_id, mesh, peers);
        Ok(Arc::new(Node {
            id: config.node_id,
            unsealed,
            seal,
            unsealing: tokio::sync::Mutex::new(()),
            mesh,
            nonces: Arc::new(NonceStore::default()),
            audit: Arc::new(audit),
            keygens: Default::default(),
            #[cfg(feature = "fault-injection")]
            faults: config.fault_injection.clone(),
            #[cfg(feature = "fault-injection")]
            commit_lost: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's links to the other nodes (where their protocol messages are delivered).
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// Runs the node's background work (keeping the stock of pre-made FROST nonces filled) until the returned task
    /// is aborted.
    pub fn start_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().refill_nonces())
    }

    /// Answers one request of the coordinator, as it arrived (a batch, or one request, possibly on behalf of a
    /// client): every request audited before it runs, every failure an error answer (a [`ServiceError`] made the
    /// wire's error here, with its kind, its words and the nodes it names).
    pub async fn answer(self: &Arc<Self>, request: NodeRequest) -> NodeResponse {
        match request {
            NodeRequest::Batch(requests) => self.clone().batch(requests).await,
            request => respond(self.audited(request).await),
        }
    }

    /// The share store, or [`ServiceError::Sealed`] while the node is sealed.
    pub(crate) fn store(&self) -> Result<&Arc<ShareStore>, ServiceError> {
        self.unsealed
            .get()
            .map(|u| &u.store)
            .ok_or_else(|| self.sealed_error())
    }

    /// The membership keeper, or [`ServiceError::Sealed`] while the node is sealed.
    pub(crate) fn membership(&self) -> Result<&MembershipKeeper, ServiceError> {
        self.unsealed
            .get()
            .map(|u| &u.membership)
            .ok_or_else(|| self.sealed_error())
    }

    pub(crate) fn sealed_error(&self) -> ServiceError {
        ServiceError::Sealed { node: self.id }
    }

    /// Unseals the node with `passphrase` (a no-op if it is unsealed). A wrong passphrase changes nothing.
    pub(crate) async fn unseal(&self, passphrase: SecretBytes) -> Result<(), ServiceError> {
        let _one_at_a_time = self.unsealing.lock().await;
        if self.unsealed.get().is_some() {
            return Ok(());
        }
        let Some(path) = self.seal.sealed_key_file.clone() else {
            return Err(ServiceError::NeverSealed);
        };
        let key =
            tokio::task::spawn_blocking(move || SealedKeyFile::load(&path, passphrase.expose()))
                .await
                .map_err(|source| ServiceError::TaskFailed {
                    task: "unseal",
                    source,
                })?;
        let key = match key {
            Ok(key) => key,
            Err(SealError::WrongPassphrase) => {
                tracing::warn!(node = self.id, "unseal refused: wrong passphrase");
                return Err(ServiceError::WrongPassphrase { node: self.id });
            }
            Err(e) => return Err(ServiceError::Unseal(e)),
        };
        let (unsealed, peers) = open_unsealed(self.id, &self.seal, key)?;
        if self.unsealed.set(unsealed).is_err() {
            return Ok(());
        }
        self.mesh.set_peers(peers).await;
        tracing::info!(node = self.id, "node UNSEALED: store open, serving");
        Ok(())
    }

    /// Keeps the stock of pre-made FROST nonces filled (see `sessions::signing`), off the request path.
    pub(crate) async fn refill_nonces(self: Arc<Self>) {
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

    /// Answers the requests of a batch concurrently (each on its own task, so they use every core), one answer
    /// per request in order. Each is audited like a request of its own.
    pub(crate) async fn batch(self: Arc<Self>, requests: Vec<NodeRequest>) -> NodeResponse {
        if requests.len() > vhsm_wire::node_api::MAX_BATCH {
            return respond(Err(ServiceError::BatchTooLarge {
                len: requests.len(),
                max: vhsm_wire::node_api::MAX_BATCH,
            }));
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
                        return respond(Err(ServiceError::BadRequest(
                            "batches are not nested".into(),
                        )));
                    }
                    respond(node.audited(request).await)
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await.unwrap_or_else(|source| {
                respond(Err(ServiceError::TaskFailed {
                    task: "request",
                    source,
                }))
            }));
        }
        NodeResponse::Batch(answers)
    }

    pub(crate) async fn banned(&self) -> Result<Vec<NodeId>, ServiceError> {
        let store = self.store()?.clone();
        blocking(move || store.banned()).await
    }

    /// Records the bans a failed OT-based protocol asked for (the error names the peers:
    /// [`ServiceError::banned`]).
    pub(crate) async fn record_bans(&self, error: &ServiceError) {
        let peers = error.banned();
        if peers.is_empty() {
            return;
        }
        let Ok(store) = self.store() else { return };
        let reason = error.to_string();
        for &peer in peers {
            let (store, why) = (store.clone(), reason.clone());
            match blocking(move || store.ban(peer, &why)).await {
                Ok(()) => tracing::error!(
                    peer,
                    reason = %reason,
                    "peer BANNED from OT-based protocols until an operator clears it (vhsm node unban {peer})"
                ),
                Err(e) => tracing::error!(peer, error = %e, "could not record a ban"),
            }
        }
    }

    #[cfg(feature = "fault-injection")]
    pub(crate) fn tamper(
        &self,
    ) -> Option<&(dyn Fn(&mut vhsm_wire::mesh::MeshPayload) + Send + Sync)> {
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
    pub(crate) fn tamper(
        &self,
    ) -> Option<&(dyn Fn(&mut vhsm_wire::mesh::MeshPayload) + Send + Sync)> {
        None
    }

    /// Fault injection: whether this node deals wrong sub-shares in reshares (and stands by them).
    pub(crate) fn deals_wrong_sub_shares(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.faults.corrupt_reshare_subshares
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }

    /// The key at share epoch `epoch`, as an operation asks for it. A node that staged that epoch but has not heard
    /// the commit yet commits now: the coordinator uses a new epoch only after it decided to commit it. A node
    /// at another epoch refuses ([`ServiceError::EpochPassed`], [`ServiceError::EpochNotHeld`]: `Unavailable`, so
    /// that the coordinator asks another holder without blame); a key whose lifecycle state forbids the use refuses
    /// ([`ServiceError::KeyStateForbids`]).
    pub(crate) async fn key_at(
        &self,
        key_id: vhsm_core::KeyId,
        epoch: u64,
        use_: KeyUse,
        pairwise_test: bool,
    ) -> Result<Arc<LoadedKey>, ServiceError> {
        let key = self.key_at_epoch(key_id, epoch).await?;
        // A pending key serves only its pairwise consistency test (see `vhsm_protocols::pairwise`).
        let test_of_pending = key.info.state == KeyState::Pending && pairwise_test;
        if !key.info.state.allows(use_) && !test_of_pending {
            return Err(ServiceError::KeyStateForbids {
                key_id,
                state: key.info.state,
                key_use: use_,
                node: self.id,
            });
        }
        // The application's usage flags (CKA_SIGN, CKA_ENCRYPT, CKA_DECRYPT), from this node's own record.
        if !key.info.usage_allows(use_) && !test_of_pending {
            return Err(ServiceError::UsageForbids {
                key_id,
                key_use: use_,
                node: self.id,
            });
        }
        Ok(key)
    }

    pub(crate) async fn key_at_epoch(
        &self,
        key_id: vhsm_core::KeyId,
        epoch: u64,
    ) -> Result<Arc<LoadedKey>, ServiceError> {
        match self.store()?.active_key(key_id) {
            Ok(key) if key.info.epoch == epoch => return Ok(key),
            Ok(key) if key.info.epoch > epoch => {
                return Err(ServiceError::EpochPassed {
                    node: self.id,
                    key_id,
                    held: key.info.epoch,
                    asked: epoch,
                })
            }
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(ServiceError::Store(e)),
        }
        let store = self.store()?.clone();
        let staged = blocking(move || store.staged()).await?;
        if !staged.iter().any(|k| k.id == key_id && k.epoch == epoch) {
            return Err(ServiceError::EpochNotHeld {
                node: self.id,
                key_id,
                epoch,
            });
        }
        let store = self.store()?.clone();
        blocking(move || store.commit_staged(key_id, epoch)).await?;
        tracing::info!(key = %key_id, epoch, "staged share committed on first use of its epoch");
        Ok(self.store()?.active_key(key_id)?)
    }

    /// Appends one audit entry (off the async threads); an error names the log and refuses the request.
    pub(crate) async fn audit(
        &self,
        operation: &crate::audit::Operation,
        requester: &str,
        purpose: &str,
        result: String,
    ) -> Result<(), ServiceError> {
        let (log, operation, requester, purpose) = (
            self.audit.clone(),
            operation.clone(),
            requester.to_string(),
            purpose.to_string(),
        );
        tokio::task::spawn_blocking(move || log.append(&operation, &requester, &purpose, result))
            .await
            .map_err(|source| ServiceError::TaskFailed {
                task: "audit",
                source,
            })?
            .map(|_| ())
            .map_err(|source| {
                tracing::error!(error = %source, "AUDIT LOG NOT WRITABLE: request refused (fail closed)");
                ServiceError::AuditUnwritable {
                    node: self.id,
                    source,
                }
            })
    }

    /// Answers one coordinator request, recording it in the audit log: the attempt before the work, the result
    /// before the answer leaves (see [`crate::audit`]).
    pub async fn audited(&self, request: NodeRequest) -> Result<NodeResponse, ServiceError> {
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

    /// Answers one coordinator request: the handler of its area (`crate::handlers`).
    pub async fn handle(&self, request: NodeRequest) -> Result<NodeResponse, ServiceError> {
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
            NodeRequest::Unseal { passphrase } => self.unseal_request(passphrase).await,
            NodeRequest::Status => self.status().await,
            NodeRequest::SetMembership { membership } => self.set_membership(membership).await,
            NodeRequest::GenerateKey { session, key } => self.generate_key(session, key).await,
            NodeRequest::CommitKey { key_id, state } => self.commit_key(key_id, state).await,
            NodeRequest::SetKeyState { key_id, state } => self.set_key_state(key_id, state).await,
            NodeRequest::AbortKey { key_id } => self.abort_key(key_id).await,
            NodeRequest::ListKeys => self.list_keys().await,
            NodeRequest::UpdateKey { key } => self.update_key(key).await,
            NodeRequest::DestroyKey { key_id } => self.destroy_key(key_id).await,
            NodeRequest::ReleaseShare { key_id, epoch } => self.release_share(key_id, epoch).await,
            NodeRequest::Precommit { count } => self.precommit(count).await,
            NodeRequest::SignShare {
                session: _,
                nonce,
                key_id,
                epoch,
                package,
            } => self.sign_share(nonce, key_id, epoch, package).await,
            NodeRequest::EcdsaSign {
                session,
                key_id,
                epoch,
                signers,
                digest,
            } => {
                self.ecdsa_sign(session, key_id, epoch, signers, digest)
                    .await
            }
            NodeRequest::ClearBan { node } => self.clear_ban(node).await,
            NodeRequest::Evaluate {
                key_id,
                epoch,
                purpose,
                alpha,
                receipt,
            } => self.evaluate(key_id, epoch, purpose, alpha, receipt).await,
            NodeRequest::Reshare {
                session,
                key,
                dealers,
                committee,
                threshold,
            } => {
                self.reshare(session, key, dealers, committee, threshold)
                    .await
            }
            NodeRequest::CommitReshare { key_id, epoch } => {
                self.commit_reshare(key_id, epoch).await
            }
            NodeRequest::AbortReshare { key_id, epoch } => self.abort_reshare(key_id, epoch).await,
            NodeRequest::ListStaged => self.list_staged().await,
            NodeRequest::PutObject { object } => self.put_object(object).await,
            NodeRequest::ListObjects => self.list_objects().await,
            NodeRequest::Backup => self.backup().await,
            NodeRequest::Restore { backup, keys } => self.restore(backup, keys).await,
            NodeRequest::AuditLog {
                from_line,
                max_lines,
            } => self.audit_log(from_line, max_lines).await,
            // Recorded by `audited`: nothing else to do.
            NodeRequest::LoginFailed { .. } => Ok(NodeResponse::Ok),
            NodeRequest::OnBehalf { .. } => Err(ServiceError::BadRequest(
                "a request on behalf of a client must not be nested".into(),
            )),
            NodeRequest::Batch(_) => Err(ServiceError::BadRequest(
                "a batch is a message of its own: not nested, not on behalf of a client".into(),
            )),
        }
    }
}

/// The store and membership of an unsealed node.
pub(crate) struct Unsealed {
    pub(crate) store: Arc<ShareStore>,
    pub(crate) membership: MembershipKeeper,
    /// The secret that hedges this node's FROST nonces (derived from the storage key; see `sessions::signing`).
    pub(crate) nonce_hedge: zeroize::Zeroizing<[u8; 32]>,
}

/// Opens the store with `key` and reads the membership; returns them with the peers to take.
fn open_unsealed(
    id: NodeId,
    seal: &SealSetup,
    key: StorageKey,
) -> Result<(Unsealed, Vec<(NodeId, String)>), ServiceError> {
    let nonce_hedge = key.derive(b"vhsm/frost-nonce-hedge/v1");
    let store = ShareStore::open(&seal.data_dir.join("shares.redb"), key, id)
        .map_err(ServiceError::StoreOpen)?;
    // The peers: the newest membership this node was given, else node.toml's.
    let (membership, peers) =
        MembershipKeeper::start(id, &store, &seal.peers).map_err(|source| {
            ServiceError::StoreFailed {
                doing: "read the stored cluster membership",
                source,
            }
        })?;
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
pub(crate) struct SealSetup {
    /// `None`: a development key file (never sealed).
    sealed_key_file: Option<std::path::PathBuf>,
    data_dir: std::path::PathBuf,
    peers: Vec<crate::config::PeerConfig>,
}

/// The environment variable a node (and `vhsm node unseal`, `vhsm init --seal`) reads a passphrase from, for
/// automation. Prefer a passphrase file or the prompt where the environment may be seen by others.
pub const PASSPHRASE_ENV: &str = "VHSM_NODE_PASSPHRASE";

/// The passphrase to unseal with at start, if one is configured: `passphrase_file`, else `VHSM_NODE_PASSPHRASE`.
fn start_passphrase(config: &NodeConfig) -> Result<Option<SecretBytes>, StartError> {
    if let Some(path) = &config.passphrase_file {
        let text =
            zeroize::Zeroizing::new(std::fs::read(path).map_err(|error| StartError::ReadFile {
                path: path.clone(),
                error,
            })?);
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
