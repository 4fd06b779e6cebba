//! A node's state and how it answers the coordinator: [`Node`] opens the store and the audit log, unseals, audits
//! every request before it runs (fail closed) and hands it to the handler of its area (`crate::handlers`). No
//! network here: [`crate::server`] serves a node over QUIC, and tests drive it in-process ([`Node::answer`]).
//!
//! Handlers fail with a typed [`ServiceError`] (a session with a [`SessionError`](crate::sessions::SessionError),
//! which keeps its culprits); [`Node::answer`] is the edge where a failure becomes the wire's
//! [`NodeResponse::Error`], through the one conversion in [`crate::error`]. [`Node::open`] fails with a
//! [`StartError`].
//!
//! # Unsealing: the store and the audit log checked against each other
//!
//! The audit log is opened (and its hash chain verified) first, before the storage key is known: a sealed node
//! records its unseal attempts. Once the key is known — at start with a key file or a passphrase, or later by
//! [`NodeRequest::Unseal`], whose secret arrives encrypted to this node (`crate::unseal`) — the node opens the
//! store (whose records must match the digest sealed in its metadata row: `crate::store`), then checks the log
//! against the store and the audit key derived from the storage key
//! (`AuditLog::check_sealed`: every MAC, the store's audit head present in the log, no entry recording a newer
//! store generation than the store's, no key-holding store with a log that was missing or empty), and refuses to
//! serve if any check fails: at start the node exits with the error (naming the file, what is missing and what to
//! do); a sealed node stays sealed and the unseal request fails with it. Only then does the log MAC its entries
//! and the store record its head; afterwards the head is anchored in the store within about a second of every
//! append ([`Node::start_background`]).

use std::{collections::HashMap, sync::Arc, time::Duration};

use vhsm_core::{KeyId, KeyState, KeyUse};
use vhsm_protocols::SecretBytes;
use vhsm_wire::{
    client_api::NodeStatus,
    node_api::{NodeRequest, NodeResponse},
    NodeId,
};

use crate::{
    audit::{AuditKey, AuditLog},
    config::NodeConfig,
    error::{ServiceError, StartError},
    membership::MembershipKeeper,
    mesh::{Mesh, MeshTransport},
    seal::{SealError, SealedKeyFile, StorageKey},
    sessions::signing::NonceStore,
    store::{LoadedKey, ShareStore, StoreError},
    unseal::UnsealPrivateKey,
};

/// A running node's state.
pub struct Node {
    pub(crate) id: NodeId,
    /// The store and the membership, once the node is unsealed (at start with a development key file or a
    /// passphrase; else by [`NodeRequest::Unseal`]). Reach them through [`Node::store`] and [`Node::membership`].
    pub(crate) unsealed: std::sync::OnceLock<Unsealed>,
    /// How to unseal, for a node that starts sealed.
    pub(crate) seal: SealSetup,
    /// One unseal attempt (or change of the unseal secret) at a time (Argon2id takes a moment; a second attempt
    /// waits and sees the first's result).
    pub(crate) unsealing: tokio::sync::Mutex<()>,
    /// The unseal challenge this node handed out last (single use, in memory only; see `crate::unseal`).
    pub(crate) challenges: crate::unseal::ChallengeSlot,
    pub(crate) mesh: Mesh,
    pub(crate) nonces: Arc<NonceStore>,
    /// The security officer's pinned key: approvals of reshares onto other holders or thresholds verify with it.
    pub(crate) security_officer: Option<ed25519_dalek::VerifyingKey>,
    /// The audit log: every recorded request is written here before it runs (fail closed).
    pub(crate) audit: Arc<AuditLog>,
    /// The token's PIN hashes and lockout limit (`[token]` of `node.toml`; `None`: this node checks no PIN). See
    /// [`crate::pins`].
    pub(crate) pins: Option<crate::config::PinConfig>,
    /// How long an uncommitted new key's share is kept (see [`Node::expire_pending`]).
    pending_ttl: Duration,
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
        if let Some(token) = &config.token {
            token.check().map_err(StartError::PinConfig)?;
        } else {
            tracing::warn!(
                node = config.node_id,
                "node.toml has no [token] section: this node checks no PIN (logins need the cluster's threshold \
                 of nodes that do); copy the section from another node's node.toml"
            );
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|error| StartError::CreateDir {
            path: config.data_dir.clone(),
            error,
        })?;
        // A log whose chain does not verify: refuse to serve (see `audit`).
        let audit = Arc::new(
            AuditLog::open(
                &config.data_dir.join(crate::audit::AUDIT_FILE),
                config.node_id,
            )
            .map_err(StartError::AuditLog)?,
        );
        let unseal_key = config
            .unseal_key_file
            .as_deref()
            .map(UnsealPrivateKey::load)
            .transpose()
            .map_err(StartError::UnsealKey)?;
        let seal = SealSetup {
            sealed_key_file: config.sealed_key_file.clone(),
            unseal_key,
            passphrase_file: config.passphrase_file.clone(),
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
                let opened =
                    open_unsealed(config.node_id, &seal, key, &audit).map_err(StartError::Open)?;
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
            challenges: Default::default(),
            mesh,
            nonces: Arc::new(NonceStore::default()),
            security_officer: config
                .security_officer_public_key()
                .map_err(StartError::Config)?,
            audit,
            pins: config.token.clone(),
            keygens: Default::default(),
            pending_ttl: config
                .pending_key_ttl_secs
                .map_or(PENDING_KEY_TTL, Duration::from_secs),
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

    /// Stops serving, on SIGTERM or SIGINT (before the endpoint closes): from now on every request is refused
    /// ([`ServiceError::ShuttingDown`]) and no protocol session starts; every session running is given up and its
    /// other members are told (their sessions end at once, naming this node, instead of waiting for it). Nothing
    /// needs flushing: the store commits each write whole, and the audit log syncs each entry before its request
    /// goes on.
    pub async fn stop(&self) {
        let aborted = self
            .mesh
            .stop(
                &format!("node {} is shutting down", self.id),
                STOP_ABORT_TIMEOUT,
            )
            .await;
        tracing::info!(
            node = self.id,
            aborted,
            "stopping: refusing new requests; aborted the sessions in progress (their peers were told)"
        );
    }

    /// Runs the node's background work until the returned task is aborted: keeping the stock of pre-made FROST
    /// nonces filled, and anchoring the audit log's durable head in the store (every [`ANCHOR_INTERVAL`] in
    /// which the log grew; see `crate::store`).
    pub fn start_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let (nonces, anchor, pending) = (self.clone(), self.clone(), self.clone());
        tokio::spawn(async move {
            tokio::join!(
                nonces.refill_nonces(),
                anchor.anchor_audit_head(),
                pending.expire_pending()
            );
        })
    }

    /// Deletes the share of a new key whose generation was never committed, `pending_ttl` after this node stored
    /// it (or first saw it pending, after a restart) — unless its generation is still running here. A coordinator
    /// stopped between a generation and its commit used to leave such shares, invisible, for 15 minutes on every
    /// node (issue 15, item 5). A commit arriving later is refused (the key is gone): the coordinator then
    /// reports the generation failed and drops the key everywhere.
    pub(crate) async fn expire_pending(self: Arc<Self>) {
        let mut first_seen: HashMap<KeyId, std::time::Instant> = HashMap::new();
        loop {
            tokio::time::sleep(PENDING_CHECK_INTERVAL).await;
            let Some(store) = self.unsealed.get().map(|u| u.store.clone()) else {
                continue;
            };
            let listed = store.clone();
            let pending: Vec<KeyId> = match tokio::task::spawn_blocking(move || listed.keys()).await
            {
                Ok(Ok(keys)) => keys
                    .into_iter()
                    .filter(|k| k.state == KeyState::Pending)
                    .map(|k| k.id)
                    .collect(),
                _ => continue,
            };
            let running: Vec<KeyId> = self
                .keygens
                .lock()
                .map(|k| k.keys().copied().collect())
                .unwrap_or_default();
            first_seen.retain(|id, _| pending.contains(id));
            for key_id in pending {
                let seen = *first_seen
                    .entry(key_id)
                    .or_insert_with(std::time::Instant::now);
                if running.contains(&key_id) || seen.elapsed() < self.pending_ttl {
                    continue;
                }
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.abort_pending(key_id)).await {
                    Ok(Ok(true)) => {
                        first_seen.remove(&key_id);
                        tracing::warn!(key = %key_id, ttl = ?self.pending_ttl, "the generation of this key was never committed (the coordinator stopped before its commit?): its pending share is deleted");
                    }
                    Ok(Ok(false)) => {
                        first_seen.remove(&key_id);
                    }
                    Ok(Err(e)) => {
                        tracing::error!(key = %key_id, error = %e, "cannot delete an uncommitted key's pending share")
                    }
                    Err(e) => tracing::error!(error = %e, "pending-key task failed"),
                }
            }
        }
    }

    /// Records the audit log's durable head in the sealed store whenever it moved (at most once per
    /// [`ANCHOR_INTERVAL`]), so that a log cut after the last store write is detected at the next unseal.
    pub(crate) async fn anchor_audit_head(self: Arc<Self>) {
        loop {
            tokio::time::sleep(ANCHOR_INTERVAL).await;
            let Some(store) = self.unsealed.get().map(|u| u.store.clone()) else {
                continue;
            };
            match tokio::task::spawn_blocking(move || store.anchor()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot record the audit log's head in the store")
                }
                Err(e) => tracing::error!(error = %e, "audit anchor task failed"),
            }
        }
    }

    /// Answers one request of the coordinator, as it arrived (a batch, or one request, possibly on behalf of a
    /// client): every request audited before it runs, every failure an error answer (a [`ServiceError`] made the
    /// wire's error here, with its kind, its words and the nodes it names).
    pub async fn answer(self: &Arc<Self>, request: NodeRequest) -> NodeResponse {
        if self.mesh.is_stopping() {
            return respond(Err(ServiceError::ShuttingDown { node: self.id }));
        }
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

    /// Unseals the node with `passphrase` — its unseal secret, out of an envelope (`crate::unseal`) — (a no-op if
    /// it is unsealed). A wrong passphrase changes nothing.
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
                tracing::warn!(node = self.id, "unseal refused: wrong unseal secret");
                return Err(ServiceError::WrongPassphrase { node: self.id });
            }
            Err(e) => return Err(ServiceError::Unseal(e)),
        };
        let (unsealed, peers) = open_unsealed(self.id, &self.seal, key, &self.audit)
            .inspect_err(|e| tracing::error!(node = self.id, error = %e, "unseal refused"))?;
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
                // The change of the unseal secret refuses itself while sealed, using up its challenge.
                NodeRequest::Unseal { .. }
                | NodeRequest::UnsealChallenge
                | NodeRequest::ChangeUnsealSecret { .. } => {}
                _ => return Err(self.sealed_error()),
            }
        }
        match request {
            NodeRequest::Unseal { envelope } => self.unseal_request(envelope).await,
            NodeRequest::UnsealChallenge => self.unseal_challenge(),
            NodeRequest::ChangeUnsealSecret { envelope } => {
                self.change_unseal_secret(envelope).await
            }
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
                approval,
            } => {
                self.reshare(session, key, dealers, committee, threshold, approval)
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
            NodeRequest::CheckPin { user, pin } => self.check_pin(user, pin).await,
            NodeRequest::PinState => self.pin_state().await,
            NodeRequest::LoginFailed { .. } => Err(ServiceError::BadRequest(
                "LoginFailed is retired: PINs are checked by the nodes (CheckPin); this coordinator is older than \
                 this node"
                    .into(),
            )),
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

/// How often the audit log's head is anchored in the store (when it moved).
pub const ANCHOR_INTERVAL: Duration = Duration::from_millis(500);

/// How long a node keeps the share of a new key whose generation was never committed (default of `node.toml`'s
/// `pending_key_ttl_secs`): far longer than a generation's last steps (its pairwise test, the commit) take.
pub const PENDING_KEY_TTL: Duration = Duration::from_secs(120);
/// How often a node looks for uncommitted keys to delete.
const PENDING_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// How long a node shutting down spends telling the peers of its sessions that it gives them up ([`Node::stop`]):
/// a node asked to stop exits within about two seconds.
pub const STOP_ABORT_TIMEOUT: Duration = Duration::from_secs(1);

/// The share database's file name inside the node's data directory.
pub const STORE_FILE: &str = "shares.redb";

/// Opens the store with `key`, checks the audit log against it (see the module docs), anchors the log's head,
/// and reads the membership; returns them with the peers to take.
fn open_unsealed(
    id: NodeId,
    seal: &SealSetup,
    key: StorageKey,
    audit: &Arc<AuditLog>,
) -> Result<(Unsealed, Vec<(NodeId, String)>), ServiceError> {
    let nonce_hedge = key.derive(b"vhsm/frost-nonce-hedge/v1");
    let audit_key = AuditKey::derive(&key);
    let store = ShareStore::open_with_audit(
        &seal.data_dir.join(STORE_FILE),
        key,
        id,
        Some(audit.clone()),
    )
    .map_err(ServiceError::StoreOpen)?;
    let view = store.view().map_err(ServiceError::StoreOpen)?;
    let check = audit
        .check_sealed(audit_key, &view)
        .map_err(ServiceError::AuditUnreadable)?;
    tracing::info!(
        node = id,
        entries = check.entries,
        maced = check.maced,
        written_while_sealed = check.unmaced,
        version_1 = check.version_1,
        store_generation = view.generation,
        store_audit_head = view.head.entries,
        "audit log checked against the store: every MAC verifies, no entry the store recorded is missing, the \
         store is not older than the log"
    );
    if check.version_1 > 0 {
        tracing::warn!(
            node = id,
            entries = check.version_1,
            "the audit log begins with entries of format version 1, written before entries were MACed: they are \
             hash-chained but not MACed"
        );
    }
    store.anchor().map_err(|source| ServiceError::StoreFailed {
        doing: "record the audit log's head in the store",
        source,
    })?;
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
    pub(crate) sealed_key_file: Option<std::path::PathBuf>,
    /// The private key unseal envelopes are encrypted to (`unseal_key_file`), if the node has one.
    pub(crate) unseal_key: Option<UnsealPrivateKey>,
    /// The passphrase file of unattended starts, if `node.toml` names one (a change of secret leaves it stale).
    pub(crate) passphrase_file: Option<std::path::PathBuf>,
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

#[cfg(test)]
pub(crate) mod tests {
    //! Issue 14, item 8: the node refuses to start on an audit log that lost entries its store recorded, beside a
    //! share database older than its log, or on a log whose MACs do not verify; it still starts on a log written
    //! before MACs (format version 1) and on a log with a torn last line.
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::path::{Path, PathBuf};

    use rand_core::OsRng;
    use vhsm_core::{Algorithm, KeyId, KeyInfo};
    use vhsm_protocols::{
        frost::dkg::{DkgParams, FrostDkg},
        simulator::Simulation,
        SessionId,
    };
    use vhsm_wire::ErrorKind;

    use super::*;
    use crate::{
        audit::{Entry, Operation, AUDIT_FILE},
        share::KeyShare,
    };

    use crate::mesh::Nowhere;

    /// Node 1's configuration on `dir`: a development storage key, no peers, no `[token]`.
    pub(crate) fn config(dir: &Path) -> NodeConfig {
        let key = dir.join("storage.key");
        if !key.exists() {
            StorageKey::generate().write_new(&key).unwrap();
        }
        NodeConfig {
            node_id: 1,
            listen: "127.0.0.1:0".parse().unwrap(),
            ca_cert: dir.join("ca.pem"),
            cert: dir.join("node.pem"),
            key: dir.join("node.key"),
            storage_key_file: Some(key),
            sealed_key_file: None,
            passphrase_file: None,
            unseal_key_file: None,
            data_dir: dir.join("data"),
            security_officer_key: None,
            peers: Vec::new(),
            token: None,
            pending_key_ttl_secs: None,
            #[cfg(feature = "fault-injection")]
            fault_injection: Default::default(),
        }
    }

    pub(crate) fn open(config: &NodeConfig) -> Result<Arc<Node>, StartError> {
        Node::open(config, Arc::new(Nowhere))
    }

    pub(crate) fn audit_path(dir: &Path) -> PathBuf {
        dir.join("data").join(AUDIT_FILE)
    }

    fn store_path(dir: &Path) -> PathBuf {
        dir.join("data").join(STORE_FILE)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }

    /// Node 1's share of a fresh 2-of-3 FROST key, and the key's metadata.
    fn key() -> (KeyInfo, KeyShare) {
        let session = SessionId::random(&mut OsRng);
        let parties: Vec<FrostDkg> = (1..=3u16)
            .map(|me| {
                FrostDkg::new(DkgParams {
                    session,
                    me,
                    participants: vec![1, 2, 3],
                    threshold: 2,
                })
                .unwrap()
            })
            .collect();
        let share = Simulation::new(parties)
            .run(&mut OsRng)
            .outputs
            .remove(&1)
            .unwrap();
        let share = KeyShare::Frost(Box::new(share));
        let info = KeyInfo {
            id: KeyId([1; 16]),
            label: "test".into(),
            algorithm: Algorithm::Ed25519,
            public_key: share.public_key(),
            public_package: share.public_package(),
            threshold: 2,
            holders: vec![1, 2, 3],
            state: KeyState::Pending,
            created_unix: 0,
            epoch: 0,
            revision: 0,
            attributes: Vec::new(),
        };
        (info, share)
    }

    fn operation(op: &'static str, key: KeyId, n: u8) -> Operation {
        Operation {
            op,
            key: Some(key),
            session: Some(SessionId([n; 32])),
            parties: vec![1, 2, 3],
            input: [n; 32],
            attempt_first: true,
        }
    }

    /// Records `op` as the node does: the attempt, the store change, the result.
    fn recorded(node: &Node, op: Operation, change: impl FnOnce(&ShareStore)) {
        node.audit
            .append(&op, "coordinator", "", "attempt".into())
            .unwrap();
        change(node.store().unwrap());
        node.audit
            .append(&op, "coordinator", "", "ok".into())
            .unwrap();
    }

    /// A node whose store holds a key (generated and committed, with its audit entries), then three signatures
    /// (entries only); the head anchored. The node is closed when this returns.
    fn node_with_a_key(dir: &Path) -> NodeConfig {
        let config = config(dir);
        let node = open(&config).unwrap();
        let (info, share) = key();
        recorded(&node, operation("generate", info.id, 1), |s| {
            s.insert_pending(&info, &share).unwrap()
        });
        recorded(&node, operation("commit-key", info.id, 2), |s| {
            s.activate(info.id, KeyState::Active).unwrap();
        });
        for n in 3..6 {
            node.audit
                .append(
                    &operation("sign", info.id, n),
                    "alice (user)",
                    "sign",
                    "ok".into(),
                )
                .unwrap();
        }
        assert!(node.store().unwrap().anchor().unwrap(), "the head moved");
        let meta = node.store().unwrap().meta().unwrap().unwrap();
        assert_eq!(meta.generation, 2);
        assert_eq!(meta.audit, node.audit.durable_head());
        assert_eq!(meta.audit.entries, 7);
        drop(node);
        config
    }

    fn refused(config: &NodeConfig) -> String {
        match open(config) {
            Ok(_) => panic!("the node started"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_intact_node_restarts_and_keeps_anchoring() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_with_a_key(dir.path());
        let node = open(&config).unwrap();
        // The node MACs its entries again, with the store's generation.
        let entry = node
            .audit
            .append(
                &operation("sign", KeyId([1; 16]), 9),
                "a",
                "sign",
                "ok".into(),
            )
            .unwrap();
        assert!(entry.mac.is_some());
        assert_eq!(entry.gen, Some(2));
        assert!(node.store().unwrap().anchor().unwrap());
        assert!(!node.store().unwrap().anchor().unwrap(), "nothing new");
    }

    #[test]
    fn a_log_cut_by_three_lines_beside_a_store_with_keys_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_with_a_key(dir.path());
        let path = audit_path(dir.path());
        let all = lines(&path);
        write_lines(&path, &all[..all.len() - 3]);
        let err = refused(&config);
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("holds 4 entries")
                && err.contains("7 had been written")
                && err.contains("truncated")
                && err.contains("vhsm node repair 1"),
            "{err}"
        );
    }

    #[test]
    fn a_removed_log_beside_a_store_with_keys_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_with_a_key(dir.path());
        let path = audit_path(dir.path());
        std::fs::remove_file(&path).unwrap();
        let err = refused(&config);
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("holds 0 entries")
                && err.contains("did not exist when the node started"),
            "{err}"
        );
        // The next start (the empty file it created is still there) says so too.
        let err = refused(&config);
        assert!(err.contains("it was empty when the node started"), "{err}");
    }

    #[test]
    fn an_emptied_log_beside_a_store_with_keys_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_with_a_key(dir.path());
        std::fs::write(audit_path(dir.path()), b"").unwrap();
        let err = refused(&config);
        assert!(
            err.contains("holds 0 entries") && err.contains("it was empty when the node started"),
            "{err}"
        );
    }

    #[test]
    fn an_older_share_database_beside_a_newer_log_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_with_a_key(dir.path());
        let older = dir.path().join("shares.redb.older");
        std::fs::copy(store_path(dir.path()), &older).unwrap();
        // The key is deactivated since: the log records store generation 3.
        let node = open(&config).unwrap();
        recorded(&node, operation("set-key-state", KeyId([1; 16]), 7), |s| {
            s.set_state(KeyId([1; 16]), KeyState::Deactivated).unwrap();
        });
        drop(node);
        std::fs::copy(&older, store_path(dir.path())).unwrap();
        let err = refused(&config);
        assert!(
            err.contains(&store_path(dir.path()).display().to_string())
                && err.contains("store generation 2")
                && err.contains("records generation 3")
                && err.contains("replaced by an older copy"),
            "{err}"
        );
    }

    #[test]
    fn a_log_entry_with_a_wrong_mac_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_with_a_key(dir.path());
        let path = audit_path(dir.path());
        let mut all = lines(&path);
        let mut entry: Entry = serde_json::from_str(&all[4]).unwrap();
        let mut mac = hex::decode(entry.mac.as_deref().unwrap()).unwrap();
        mac[0] ^= 1;
        entry.mac = Some(hex::encode(mac));
        all[4] = serde_json::to_string(&entry).unwrap();
        write_lines(&path, &all);
        let err = refused(&config);
        assert!(
            err.contains("entry seq 4 is not authentic") && err.contains("MAC does not verify"),
            "{err}"
        );
    }

    #[test]
    fn a_version_1_log_beside_a_store_with_keys_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        std::fs::create_dir_all(&config.data_dir).unwrap();
        // A store and a log as the previous release left them: keys, version-1 entries, no head recorded.
        {
            let (info, share) = key();
            let store = ShareStore::open(
                &store_path(dir.path()),
                StorageKey::load(config.storage_key_file.as_ref().unwrap()).unwrap(),
                1,
            )
            .unwrap();
            store.insert_pending(&info, &share).unwrap();
            store.activate(info.id, KeyState::Active).unwrap();
        }
        // Its log missing: refused (the store holds keys; no head was recorded before the upgrade).
        let err = refused(&config);
        assert!(
            err.contains("was missing when the node started")
                && err.contains("holds 1 key record(s)"),
            "{err}"
        );
        let mut prev = hex::encode([0u8; 32]);
        let mut v1 = Vec::new();
        for seq in 0..4u64 {
            let mut e = Entry {
                v: 1,
                node: 1,
                seq,
                time: 1_700_000_000,
                prev: prev.clone(),
                op: if seq < 2 { "generate" } else { "commit-key" }.into(),
                requester: "coordinator".into(),
                purpose: String::new(),
                key: Some(KeyId([1; 16]).to_string()),
                session: None,
                parties: Vec::new(),
                input: hex::encode([2u8; 32]),
                result: if seq % 2 == 0 { "attempt" } else { "ok" }.into(),
                gen: None,
                hash: String::new(),
                mac: None,
            };
            e.hash = hex::encode(e.compute_hash());
            prev = e.hash.clone();
            let mut json = serde_json::to_value(&e).unwrap();
            for field in ["parties", "gen", "mac"] {
                json.as_object_mut().unwrap().remove(field);
            }
            v1.push(serde_json::to_string(&json).unwrap());
        }
        write_lines(&audit_path(dir.path()), &v1);
        let node = open(&config).unwrap();
        let e = node
            .audit
            .append(
                &operation("sign", KeyId([1; 16]), 3),
                "a",
                "sign",
                "ok".into(),
            )
            .unwrap();
        assert_eq!((e.v, e.seq), (2, 4));
        assert!(node.store().unwrap().anchor().unwrap());
        drop(node);
        open(&config).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_node_starts() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_with_a_key(dir.path());
        let path = audit_path(dir.path());
        let before = lines(&path);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"v":2,"node":1,"seq":7,"time":1,"prev":""#);
        std::fs::write(&path, &bytes).unwrap();
        let node = open(&config).unwrap();
        assert_eq!(lines(&path), before);
        node.audit
            .append(
                &operation("sign", KeyId([1; 16]), 9),
                "a",
                "sign",
                "ok".into(),
            )
            .unwrap();
    }

    /// A sealed node records its unseal attempts without a MAC; if its log lost entries, the unseal is refused with
    /// the problem named and the node stays sealed.
    #[tokio::test]
    async fn a_sealed_node_with_a_cut_log_refuses_to_unseal_and_stays_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let passphrase = b"correct horse battery staple";
        let sealed = dir.path().join("sealed.key");
        let storage = StorageKey::generate();
        SealedKeyFile::write_new(
            &sealed,
            &storage,
            passphrase,
            crate::seal::KdfParams::MINIMUM,
        )
        .unwrap();
        std::fs::write(dir.path().join("passphrase"), passphrase).unwrap();
        let (unseal_key, public) = crate::unseal::generate_key_pair();
        unseal_key
            .write_new(&dir.path().join("unseal.key"))
            .unwrap();
        let mut config = config(dir.path());
        config.storage_key_file = None;
        config.sealed_key_file = Some(sealed);
        config.passphrase_file = Some(dir.path().join("passphrase"));
        config.unseal_key_file = Some(dir.path().join("unseal.key"));
        {
            let node = open(&config).unwrap();
            assert!(node.unsealed.get().is_some());
            let (info, share) = key();
            recorded(&node, operation("generate", info.id, 1), |s| {
                s.insert_pending(&info, &share).unwrap()
            });
            node.store().unwrap().anchor().unwrap();
        }
        let path = audit_path(dir.path());
        let all = lines(&path);
        write_lines(&path, &all[..1]);
        // Started without the passphrase: sealed; the unseal attempt is refused, naming the log.
        config.passphrase_file = None;
        let node = open(&config).unwrap();
        assert!(node.unsealed.get().is_none());
        let (challenge, sealed) = challenge(&node).await;
        assert!(sealed);
        let envelope = public
            .seal_unseal(1, &challenge, &SecretBytes::new(passphrase.to_vec()))
            .unwrap();
        let err = node
            .audited(NodeRequest::Unseal { envelope })
            .await
            .unwrap_err()
            .to_string();
        // The cut log got the unseal attempt at seq 1, where the store recorded another entry.
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("has another entry at seq 1")
                && err.contains("truncated and written to since"),
            "{err}"
        );
        assert!(node.unsealed.get().is_none(), "still sealed");
        // Its attempt and refusal are recorded, without a MAC (the node has no audit key).
        let recorded: Vec<Entry> = lines(&path)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let tail = &recorded[1..];
        assert_eq!(tail.len(), 2);
        assert!(tail.iter().all(|e| e.op == "unseal" && e.mac.is_none()));
        assert!(tail[1].result.starts_with("error"), "{:?}", tail[1]);
    }

    /// A sealed node (`sealed.key` under `secret`, minimum Argon2id parameters) with an unseal key pair: its
    /// configuration and the public key the operator pins.
    fn sealed_node(dir: &Path, secret: &[u8]) -> (NodeConfig, crate::unseal::UnsealPublicKey) {
        let sealed = dir.join("sealed.key");
        SealedKeyFile::write_new(
            &sealed,
            &StorageKey::generate(),
            secret,
            crate::seal::KdfParams::MINIMUM,
        )
        .unwrap();
        let (private, public) = crate::unseal::generate_key_pair();
        private.write_new(&dir.join("unseal.key")).unwrap();
        let mut config = config(dir);
        config.storage_key_file = None;
        config.sealed_key_file = Some(sealed);
        config.unseal_key_file = Some(dir.join("unseal.key"));
        (config, public)
    }

    /// A fresh unseal challenge of `node`, and whether it says it is sealed.
    async fn challenge(node: &Node) -> ([u8; 32], bool) {
        match node.audited(NodeRequest::UnsealChallenge).await.unwrap() {
            NodeResponse::UnsealChallenge { challenge, sealed } => (challenge, sealed),
            other => panic!("{other:?}"),
        }
    }

    /// The kind of a refusal.
    async fn refusal(node: &Node, request: NodeRequest) -> (ErrorKind, String) {
        let e = node.audited(request).await.unwrap_err();
        (e.kind(), e.to_string())
    }

    /// The results of the audit entries of `op`, in order.
    fn results(dir: &Path, op: &str) -> Vec<String> {
        lines(&audit_path(dir))
            .iter()
            .map(|l| serde_json::from_str::<Entry>(l).unwrap())
            .filter(|e| e.op == op)
            .map(|e| e.result)
            .collect()
    }

    /// Issue 14, item 7: an unseal envelope opens only on its node, with the challenge that node handed out last,
    /// once; a wrong secret, a replay (also after a restart), an envelope for another node or another key are
    /// refused with their own kinds, change nothing, and are audited with their outcome — never the secret.
    #[tokio::test]
    async fn unseal_envelopes_are_single_use_bound_to_the_node_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretBytes::new(b"node one's unseal secret".to_vec());
        let (config, public) = sealed_node(dir.path(), secret.expose());
        let node = open(&config).unwrap();
        assert!(node.unsealed.get().is_none());
        let unseal = |envelope: &Vec<u8>| NodeRequest::Unseal {
            envelope: envelope.clone(),
        };

        // Nothing asked for yet: no challenge outstanding.
        let early = public.seal_unseal(1, &[0; 32], &secret).unwrap();
        let (kind, why) = refusal(&node, unseal(&early)).await;
        assert_eq!(kind, ErrorKind::Stale, "{why}");
        assert!(why.contains("no unseal challenge outstanding"), "{why}");

        // A wrong secret: PinIncorrect; still sealed; its challenge is used up.
        let (c, sealed) = challenge(&node).await;
        assert!(sealed);
        let wrong = public
            .seal_unseal(1, &c, &SecretBytes::new(b"not the secret".to_vec()))
            .unwrap();
        let (kind, why) = refusal(&node, unseal(&wrong)).await;
        assert_eq!(kind, ErrorKind::PinIncorrect, "{why}");
        assert!(why.contains("wrong unseal secret"), "{why}");
        assert!(node.unsealed.get().is_none());
        let right_but_used = public.seal_unseal(1, &c, &secret).unwrap();
        let (kind, _) = refusal(&node, unseal(&right_but_used)).await;
        assert_eq!(kind, ErrorKind::Stale);

        // Made for node 2 (its key and id): refused, named.
        let (c, _) = challenge(&node).await;
        let (_, node2_public) = crate::unseal::generate_key_pair();
        let for_node_2 = node2_public.seal_unseal(2, &c, &secret).unwrap();
        let (kind, why) = refusal(&node, unseal(&for_node_2)).await;
        assert_eq!(kind, ErrorKind::InvalidCiphertext, "{why}");
        assert!(why.contains("made for node 2, not for node 1"), "{why}");
        // For node 1's id but another key (not the pinned one): does not open.
        let (c, _) = challenge(&node).await;
        let other_key = node2_public.seal_unseal(1, &c, &secret).unwrap();
        let (kind, why) = refusal(&node, unseal(&other_key)).await;
        assert_eq!(kind, ErrorKind::InvalidCiphertext, "{why}");
        assert!(
            why.contains("does not open with node 1's unseal key"),
            "{why}"
        );
        assert!(node.unsealed.get().is_none());

        // The right secret, answering a fresh challenge: unsealed.
        let (c, _) = challenge(&node).await;
        let good = public.seal_unseal(1, &c, &secret).unwrap();
        node.audited(unseal(&good)).await.unwrap();
        assert!(node.unsealed.get().is_some());
        let (_, sealed) = challenge(&node).await;
        assert!(!sealed);
        // Replayed: refused (the node's challenge is another one now).
        let (kind, why) = refusal(&node, unseal(&good)).await;
        assert_eq!(kind, ErrorKind::Stale, "{why}");
        assert!(why.contains("another challenge"), "{why}");

        // Restarted: the recorded envelope finds no challenge; the node stays sealed.
        drop(node);
        let node = open(&config).unwrap();
        let (kind, _) = refusal(&node, unseal(&good)).await;
        assert_eq!(kind, ErrorKind::Stale);
        assert!(node.unsealed.get().is_none(), "still sealed");

        // Every attempt and its outcome is in the audit log; the secret nowhere.
        let results = results(dir.path(), "unseal");
        let expected = [
            "error Stale",
            "error PinIncorrect",
            "error Stale",
            "error InvalidCiphertext",
            "error InvalidCiphertext",
            "ok",
            "error Stale",
            "error Stale",
        ];
        assert_eq!(results.len(), 2 * expected.len(), "{results:?}");
        for (pair, outcome) in results.chunks(2).zip(expected) {
            assert_eq!(pair[0], "attempt", "{results:?}");
            assert!(pair[1].starts_with(outcome), "{results:?}");
        }
        let log = std::fs::read(audit_path(dir.path())).unwrap();
        assert!(!log.windows(secret.len()).any(|w| w == secret.expose()));
    }

    /// Issue 14, item 7: the unseal secret changes only with the old one, from an unsealed node, atomically; the
    /// old one is refused afterwards and the new one unseals, also after a restart.
    #[tokio::test]
    async fn a_change_of_the_unseal_secret_needs_the_old_one_and_holds_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let old = SecretBytes::new(b"the old secret".to_vec());
        let new = SecretBytes::new(b"the new secret".to_vec());
        let (config, public) = sealed_node(dir.path(), old.expose());
        let sealed_key = config.sealed_key_file.clone().unwrap();
        let node = open(&config).unwrap();
        let change = |envelope: Vec<u8>| NodeRequest::ChangeUnsealSecret { envelope };
        let unseal = |envelope: Vec<u8>| NodeRequest::Unseal { envelope };

        // Sealed: refused, and the challenge is used up all the same.
        let (c, _) = challenge(&node).await;
        let (kind, _) = refusal(
            &node,
            change(public.seal_change(1, &c, &old, &new).unwrap()),
        )
        .await;
        assert_eq!(kind, ErrorKind::Sealed);
        let (kind, _) = refusal(&node, unseal(public.seal_unseal(1, &c, &old).unwrap())).await;
        assert_eq!(kind, ErrorKind::Stale);
        let (c, _) = challenge(&node).await;
        node.audited(unseal(public.seal_unseal(1, &c, &old).unwrap()))
            .await
            .unwrap();

        // A wrong old secret: refused, the file untouched.
        let before = std::fs::read(&sealed_key).unwrap();
        let (c, _) = challenge(&node).await;
        let wrong = SecretBytes::new(b"a wrong secret".to_vec());
        let (kind, _) = refusal(
            &node,
            change(public.seal_change(1, &c, &wrong, &new).unwrap()),
        )
        .await;
        assert_eq!(kind, ErrorKind::PinIncorrect);
        assert_eq!(std::fs::read(&sealed_key).unwrap(), before);
        // An unseal envelope is not a change.
        let (c, _) = challenge(&node).await;
        let (kind, _) = refusal(&node, change(public.seal_unseal(1, &c, &new).unwrap())).await;
        assert_eq!(kind, ErrorKind::BadRequest);
        assert_eq!(std::fs::read(&sealed_key).unwrap(), before);

        // The old secret: changed; a replay of the change is refused.
        let (c, _) = challenge(&node).await;
        let envelope = public.seal_change(1, &c, &old, &new).unwrap();
        node.audited(change(envelope.clone())).await.unwrap();
        let (kind, _) = refusal(&node, change(envelope)).await;
        assert_eq!(kind, ErrorKind::Stale);
        assert!(matches!(
            SealedKeyFile::load(&sealed_key, old.expose()),
            Err(SealError::WrongPassphrase)
        ));
        assert!(SealedKeyFile::load(&sealed_key, new.expose()).is_ok());
        assert!(node.unsealed.get().is_some(), "still unsealed");

        // Restarted: sealed; the old secret is refused, the new one unseals.
        drop(node);
        let node = open(&config).unwrap();
        assert!(node.unsealed.get().is_none());
        let (c, _) = challenge(&node).await;
        let (kind, _) = refusal(&node, unseal(public.seal_unseal(1, &c, &old).unwrap())).await;
        assert_eq!(kind, ErrorKind::PinIncorrect);
        let (c, _) = challenge(&node).await;
        node.audited(unseal(public.seal_unseal(1, &c, &new).unwrap()))
            .await
            .unwrap();
        assert!(node.unsealed.get().is_some());

        // Audited: the sealed refusal, the wrong one, the mistaken envelope, the change, its replay.
        let results = results(dir.path(), "change-unseal-secret");
        let outcomes: Vec<&String> = results.iter().skip(1).step_by(2).collect();
        assert_eq!(results.len(), 10, "{results:?}");
        for (got, expected) in outcomes.iter().zip([
            "error Sealed",
            "error PinIncorrect",
            "error BadRequest",
            "ok",
            "error Stale",
        ]) {
            assert!(got.starts_with(expected), "{results:?}");
        }
        let log = std::fs::read(audit_path(dir.path())).unwrap();
        for secret in [&old, &new] {
            assert!(!log.windows(secret.len()).any(|w| w == secret.expose()));
        }
    }

    #[tokio::test]
    async fn the_background_task_anchors_the_head_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let config = node_with_a_key(dir.path());
        let node = open(&config).unwrap();
        let background = node.start_background();
        for n in 10..13 {
            node.audit
                .append(
                    &operation("sign", KeyId([1; 16]), n),
                    "a",
                    "sign",
                    "ok".into(),
                )
                .unwrap();
        }
        let head = node.audit.durable_head();
        assert_eq!(head.entries, 10);
        let deadline = std::time::Instant::now() + 4 * ANCHOR_INTERVAL;
        while node.store().unwrap().meta().unwrap().unwrap().audit != head {
            assert!(std::time::Instant::now() < deadline, "not anchored");
            tokio::time::sleep(ANCHOR_INTERVAL / 5).await;
        }
        background.abort();
        let _ = background.await;
        drop(node);
        // Now even a cut of the signatures alone (no store write since) is detected.
        let path = audit_path(dir.path());
        let all = lines(&path);
        write_lines(&path, &all[..all.len() - 1]);
        let err = refused(&config);
        assert!(err.contains("holds 9 entries"), "{err}");
    }
}
