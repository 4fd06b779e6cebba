//! The coordinator's client API: QUIC with mutual TLS; only certificates of the client role are served.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use vhsm_core::{limits::MAX_CIPHER_INPUT, KeyInfo, KeyState, KeyUse, PinUser};
use vhsm_protocols::SecretBytes;
use vhsm_wire::{
    accept,
    client_api::{ClientRequest, ClientResponse, ClusterStatus, NodeHealth},
    frame::{self, DEFAULT_FRAME_LIMIT},
    node_api::{NodeRequest, NodeResponse},
    tls::{self, TlsIdentity},
    ErrorKind, Role, WireError,
};

use crate::{
    config::CoordinatorConfig,
    encryption, keygen, keys,
    membership::{self, MembershipAdmin},
    nodes::{NodeCallError, NodePool},
    objects,
    registry::Registry,
    reshare,
    signing::Signer,
    token::Token,
};

/// Refuses early, with the reason, what the key's lifecycle state does not allow (the nodes refuse it too).
fn permitted(key: &KeyInfo, use_: KeyUse) -> Result<(), WireError> {
    if key.state.allows(use_) {
        return Ok(());
    }
    Err(WireError::new(
        ErrorKind::Forbidden,
        format!(
            "key {} is {}: it may not {use_}{}",
            key.id,
            key.state,
            match key.state {
                KeyState::PreActive => " until it is activated (vhsm key activate)",
                KeyState::Deactivated | KeyState::Compromised =>
                    " (only decrypt, or verify with its public key)",
                _ => "",
            }
        ),
    ))
}

/// The largest message a client may ask to sign.
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// How long a node may take to answer a page of its audit log.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to answer a status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
#[error("coordinator: {0}")]
pub struct CoordinatorError(String);

/// A running coordinator.
pub struct Coordinator {
    endpoint: quinn::Endpoint,
    pool: NodePool,
    /// Changes to the cluster's membership (the membership itself is the pool's).
    membership: MembershipAdmin,
    registry: Registry,
    signer: Signer,
    token: Token,
}

/// One client connection: who it is (from its certificate) and whether it has logged in.
#[derive(Debug)]
pub struct ClientSession {
    /// The client's name, from its certificate.
    pub client: String,
    login: std::sync::Mutex<Option<PinUser>>,
}

impl ClientSession {
    /// A connection of `client`, not logged in.
    pub fn new(client: &str) -> Self {
        ClientSession {
            client: client.to_string(),
            login: std::sync::Mutex::new(None),
        }
    }

    fn logged_in(&self) -> Option<PinUser> {
        self.login.lock().ok().and_then(|l| *l)
    }

    fn require_user(&self) -> Result<(), WireError> {
        match self.logged_in() {
            Some(PinUser::User) => Ok(()),
            Some(PinUser::SecurityOfficer) => Err(WireError::new(
                ErrorKind::NotLoggedIn,
                "the security officer may not use or change keys; log in as the user",
            )),
            None => Err(WireError::new(
                ErrorKind::NotLoggedIn,
                "log in first (the token's user PIN)",
            )),
        }
    }

    fn require_security_officer(&self) -> Result<(), WireError> {
        match self.logged_in() {
            Some(PinUser::SecurityOfficer) => Ok(()),
            Some(PinUser::User) => Err(WireError::new(
                ErrorKind::Forbidden,
                "only the security officer may change the cluster: log in with the SO PIN",
            )),
            None => Err(WireError::new(
                ErrorKind::NotLoggedIn,
                "log in first (the security officer's PIN)",
            )),
        }
    }
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").finish_non_exhaustive()
    }
}

impl Coordinator {
    /// Binds the client API endpoint (which also connects to the nodes).
    pub fn bind(config: CoordinatorConfig) -> Result<Arc<Self>, CoordinatorError> {
        let identity = TlsIdentity::load(&config.ca_cert, &config.cert, &config.key)
            .map_err(|e| CoordinatorError(e.to_string()))?;
        let endpoint = tls::server_endpoint(&identity, config.listen)
            .map_err(|e| CoordinatorError(e.to_string()))?;
        // The membership: the saved one if there is one (it overrides coordinator.toml's nodes and threshold).
        let membership_path = membership::default_path(&config);
        let initial = membership::initial(&config, &membership_path).map_err(CoordinatorError)?;
        tracing::info!(version = initial.version, members = ?initial.ids(), threshold = initial.threshold, "cluster membership");
        let pool = NodePool::with_membership(endpoint.clone(), initial);
        let token = Token::new(config.token.clone()).map_err(CoordinatorError)?;
        Ok(Arc::new(Coordinator {
            endpoint,
            pool,
            membership: MembershipAdmin::new(membership_path),
            registry: Registry::default(),
            signer: Signer::default(),
            token,
        }))
    }

    /// The cluster's membership now: the nodes that hold new keys, the threshold of new keys, the version. (Give
    /// it to the nodes now with [`membership::push`]; every node also gets it before the next request made to it.)
    pub fn membership(&self) -> vhsm_core::Membership {
        self.pool.membership()
    }

    /// The client API's address.
    pub fn local_addr(&self) -> Result<SocketAddr, CoordinatorError> {
        self.endpoint
            .local_addr()
            .map_err(|e| CoordinatorError(e.to_string()))
    }

    /// Learns the keys from the nodes and serves clients until `shutdown` completes.
    pub async fn serve(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        // Learn the keys from the nodes in the background: clients are served meanwhile, and a key not yet known
        // is looked up on the nodes when asked for.
        let me = self.clone();
        tokio::spawn(async move {
            // Every node learns the membership first (a node that is down gets it when it is next reached).
            membership::push(&me.pool).await;
            for f in me.registry.refresh(&me.pool).await {
                tracing::warn!(error = %f, "could not learn keys from a node at start; will ask again when needed");
            }
            tracing::info!(
                keys = me.registry.list().len(),
                "key registry loaded from the nodes"
            );
        });
        let endpoint = self.endpoint.clone();
        accept::serve(&endpoint, shutdown, move |conn, role| {
            self.clone().connection(conn, role)
        })
        .await;
    }

    async fn connection(self: Arc<Self>, conn: quinn::Connection, role: Option<Role>) {
        let remote = conn.remote_address();
        let client = match role {
            Some(Role::Client(name)) => name,
            other => {
                let who = other.map_or("an unknown role".to_string(), |r| r.to_string());
                tracing::warn!(%remote, peer = %who, "refused a connection: only clients use the client API");
                conn.close(1u32.into(), b"only clients use the client API");
                return;
            }
        };
        tracing::debug!(%remote, %client, "client connected");
        let session = Arc::new(ClientSession::new(&client));
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let me = self.clone();
            let client = client.clone();
            let session = session.clone();
            tokio::spawn(async move {
                let response = match frame::receive::<ClientRequest>(
                    &mut recv,
                    MAX_MESSAGE + DEFAULT_FRAME_LIMIT,
                )
                .await
                {
                    Ok(request) => {
                        let requester = crate::audit::requester(&client, session.logged_in());
                        let purpose = crate::audit::purpose(&request);
                        crate::audit::on_behalf(requester, purpose, me.handle(&session, request))
                            .await
                            .unwrap_or_else(ClientResponse::Error)
                    }
                    Err(e) => {
                        ClientResponse::Error(WireError::new(ErrorKind::BadRequest, e.to_string()))
                    }
                };
                if let Err(e) = frame::send(&mut send, &response).await {
                    tracing::debug!(%client, error = %e, "could not answer a client");
                }
            });
        }
    }

    async fn key(&self, key_id: vhsm_core::KeyId) -> Result<vhsm_core::KeyInfo, WireError> {
        let key = match self.registry.get(key_id) {
            Some(key) => key,
            None => {
                // Perhaps made through another coordinator: ask the nodes.
                self.registry.refresh(&self.pool).await;
                self.registry.get(key_id).ok_or_else(|| {
                    WireError::new(ErrorKind::NotFound, format!("no key {key_id}"))
                })?
            }
        };
        if key.state == KeyState::Destroyed {
            return Err(WireError::new(
                ErrorKind::NotFound,
                format!("key {key_id} was destroyed"),
            ));
        }
        Ok(key)
    }

    /// Answers one client request of `session`.
    pub async fn handle(
        &self,
        session: &ClientSession,
        request: ClientRequest,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        let threshold = self.pool.membership().threshold;
        match request {
            ClientRequest::Status => Ok(ClientResponse::Status(self.status().await)),
            ClientRequest::TokenInfo => Ok(ClientResponse::Token(self.token.info())),
            ClientRequest::Login { user, pin } => {
                let result = self.token.login(user, pin.expose());
                match &result {
                    Ok(()) => {
                        if let Ok(mut login) = session.login.lock() {
                            *login = Some(user);
                        }
                        tracing::info!(%client, ?user, "logged in");
                    }
                    Err(e) => {
                        tracing::warn!(%client, ?user, error = %e, "login refused");
                        crate::audit::record_login_failure(&self.pool, user, e).await;
                    }
                }
                result.map(|()| ClientResponse::Ok)
            }
            ClientRequest::Logout => {
                if let Ok(mut login) = session.login.lock() {
                    *login = None;
                }
                Ok(ClientResponse::Ok)
            }
            ClientRequest::CreateKey {
                algorithm,
                label,
                pre_active,
                attributes,
            } => {
                session.require_user()?;
                tracing::info!(%client, %algorithm, %label, pre_active, "key creation requested");
                let state = if pre_active {
                    KeyState::PreActive
                } else {
                    KeyState::Active
                };
                let key = keygen::create_key(
                    &self.pool,
                    &self.registry,
                    algorithm,
                    &label,
                    attributes,
                    state,
                    &self.signer,
                )
                .await?;
                Ok(ClientResponse::Key(key))
            }
            ClientRequest::ListKeys => {
                self.registry.refresh(&self.pool).await;
                Ok(ClientResponse::Keys(self.registry.list()))
            }
            ClientRequest::GetKey { key_id } => Ok(ClientResponse::Key(self.key(key_id).await?)),
            ClientRequest::UpdateKey {
                key_id,
                label,
                attributes,
            } => {
                session.require_user()?;
                let key = self.key(key_id).await?;
                Ok(ClientResponse::Key(
                    keys::update_key(&self.pool, &self.registry, &key, &label, attributes).await?,
                ))
            }
            ClientRequest::SetKeyState { key_id, state } => {
                session.require_user()?;
                let key = self.key(key_id).await?;
                tracing::warn!(%client, key = %key_id, from = %key.state, to = %state, "key lifecycle change requested");
                Ok(ClientResponse::Key(
                    keys::set_state(&self.pool, &self.registry, &key, state).await?,
                ))
            }
            ClientRequest::DestroyKey { key_id } => {
                session.require_user()?;
                let key = self.key(key_id).await?;
                tracing::warn!(%client, key = %key_id, "key destruction requested");
                keys::destroy_key(&self.pool, &self.registry, &key).await?;
                Ok(ClientResponse::Ok)
            }
            ClientRequest::Sign {
                key_id,
                message,
                hash,
            } => {
                session.require_user()?;
                if message.len() > MAX_MESSAGE {
                    return Err(WireError::new(
                        ErrorKind::BadRequest,
                        format!(
                            "message of {} bytes is larger than the {MAX_MESSAGE}-byte limit",
                            message.len()
                        ),
                    ));
                }
                let key = self.key(key_id).await?;
                permitted(&key, KeyUse::Sign)?;
                let signed = self
                    .signer
                    .sign(&self.pool, &key, &message, hash)
                    .await
                    .inspect_err(|e| {
                        tracing::warn!(%client, key = %key_id, error = %e, "signing failed");
                    })?;
                tracing::debug!(%client, key = %key_id, signers = ?signed.signers, "signed");
                Ok(ClientResponse::Signature {
                    signature: signed.signature,
                    signers: signed.signers,
                })
            }
            ClientRequest::CreateObject { attributes } => {
                session.require_user()?;
                let object = objects::create(&self.pool, threshold, attributes).await?;
                tracing::info!(%client, object = %object.id, "object created");
                Ok(ClientResponse::Object(object))
            }
            ClientRequest::ListObjects => {
                let all = objects::list(&self.pool).await?;
                // Private objects only for a logged-in user.
                let visible = match session.logged_in() {
                    Some(PinUser::User) => all,
                    _ => all
                        .into_iter()
                        .filter(|o| !objects::is_private(o))
                        .collect(),
                };
                Ok(ClientResponse::Objects(visible))
            }
            ClientRequest::UpdateObject { id, attributes } => {
                session.require_user()?;
                Ok(ClientResponse::Object(
                    objects::update(&self.pool, threshold, id, attributes).await?,
                ))
            }
            ClientRequest::DestroyObject { id } => {
                session.require_user()?;
                objects::destroy(&self.pool, threshold, id).await?;
                tracing::info!(%client, object = %id, "object destroyed");
                Ok(ClientResponse::Ok)
            }
            ClientRequest::Encrypt {
                key_id,
                plaintext,
                aad,
            } => {
                session.require_user()?;
                if plaintext.len() > MAX_CIPHER_INPUT || aad.len() > MAX_CIPHER_INPUT {
                    return Err(WireError::new(
                        ErrorKind::BadRequest,
                        format!("at most {MAX_CIPHER_INPUT} bytes per request: cut larger data into chunks"),
                    ));
                }
                let key = self.key(key_id).await?;
                permitted(&key, KeyUse::Encrypt)?;
                let blob = encryption::encrypt(&self.pool, &key, plaintext.expose(), &aad).await?;
                Ok(ClientResponse::Ciphertext(blob))
            }
            ClientRequest::Decrypt { blob, aad } => {
                session.require_user()?;
                let key = self.key(encryption::blob_key_id(&blob)?).await?;
                permitted(&key, KeyUse::Decrypt)?;
                let plaintext = encryption::decrypt(&self.pool, &key, &blob, &aad).await?;
                Ok(ClientResponse::Plaintext(SecretBytes::new(
                    plaintext.to_vec(),
                )))
            }
            ClientRequest::Unban { node } => {
                if session.logged_in().is_none() {
                    return Err(WireError::new(
                        ErrorKind::NotLoggedIn,
                        "log in first (user or security officer)",
                    ));
                }
                if !self.pool.ids().contains(&node) {
                    return Err(WireError::new(
                        ErrorKind::NotFound,
                        format!("no node {node} in this cluster"),
                    ));
                }
                tracing::warn!(%client, node, "operator clears the ban on a node");
                let answers = self
                    .pool
                    .call_each(
                        &self.pool.ids(),
                        |_| NodeRequest::ClearBan { node },
                        STATUS_TIMEOUT,
                    )
                    .await;
                let failed: Vec<_> = answers
                    .iter()
                    .filter(|(_, r)| r.is_err())
                    .map(|(n, _)| *n)
                    .collect();
                if !failed.is_empty() {
                    return Err(WireError {
                        kind: ErrorKind::Unavailable,
                        message: format!(
                            "could not clear the ban on node(s) {failed:?}; run the command again when they are up"
                        ),
                        nodes: failed,
                    });
                }
                self.signer
                    .set_banned(self.signer.banned().into_iter().filter(|b| *b != node));
                Ok(ClientResponse::Ok)
            }
            ClientRequest::GetMembership => {
                if session.logged_in().is_none() {
                    return Err(WireError::new(
                        ErrorKind::NotLoggedIn,
                        "log in first (user or security officer)",
                    ));
                }
                Ok(ClientResponse::Membership(self.pool.membership()))
            }
            ClientRequest::AddNode { id, address } => {
                session.require_security_officer()?;
                tracing::warn!(%client, node = id, %address, "security officer asks to add a node to the cluster");
                let m = self
                    .membership
                    .add_node(&self.pool, id, &address)
                    .await
                    .inspect_err(
                        |e| tracing::warn!(%client, node = id, error = %e, "node not added"),
                    )?;
                tracing::warn!(%client, node = id, %address, version = m.version, members = ?m.ids(), threshold = m.threshold, "node ADDED to the cluster membership (existing keys keep their holders until reshared)");
                Ok(ClientResponse::Membership(m))
            }
            ClientRequest::RemoveNode { id } => {
                session.require_security_officer()?;
                tracing::warn!(%client, node = id, "security officer asks to remove a node from the cluster");
                let m = self
                    .membership
                    .remove_node(&self.pool, &self.registry, id)
                    .await
                    .inspect_err(
                        |e| tracing::warn!(%client, node = id, error = %e, "node not removed"),
                    )?;
                tracing::warn!(%client, node = id, version = m.version, members = ?m.ids(), threshold = m.threshold, "node REMOVED from the cluster membership");
                Ok(ClientResponse::Membership(m))
            }
            ClientRequest::SetThreshold { threshold } => {
                session.require_security_officer()?;
                tracing::warn!(%client, threshold, "security officer asks to set the threshold of new keys");
                let m = self
                    .membership
                    .set_threshold(&self.pool, threshold)
                    .await
                    .inspect_err(
                        |e| tracing::warn!(%client, threshold, error = %e, "threshold not set"),
                    )?;
                tracing::warn!(%client, threshold, version = m.version, members = ?m.ids(), "THRESHOLD of new keys and reshares set (existing keys keep theirs until reshared)");
                Ok(ClientResponse::Membership(m))
            }
            ClientRequest::AuditLog { node, from_line } => {
                session.require_security_officer()?;
                let request = NodeRequest::AuditLog {
                    from_line,
                    max_lines: vhsm_node::audit::MAX_PAGE_LINES,
                };
                match self.pool.call(node, &request, AUDIT_TIMEOUT).await {
                    Ok(NodeResponse::Audit(page)) => Ok(ClientResponse::Audit(page)),
                    Ok(_) => Err(WireError::new(
                        ErrorKind::Internal,
                        format!("node {node} answered the audit log request with something else"),
                    )),
                    Err(NodeCallError::Refused { error, .. }) => Err(error),
                    Err(e) => Err(WireError {
                        kind: ErrorKind::Unavailable,
                        message: e.to_string(),
                        nodes: vec![node],
                    }),
                }
            }
            ClientRequest::ReshareKey {
                key_id,
                avoid_dealers,
                leave_out,
            } => {
                session.require_security_officer()?;
                // Start from the nodes' own view: a reshare must deal the epoch the holders have.
                self.registry.refresh(&self.pool).await;
                let key = self.key(key_id).await?;
                let Some(_guard) = self.registry.begin_reshare(key_id) else {
                    return Err(WireError::new(
                        ErrorKind::Unavailable,
                        format!("key {key_id} is being reshared already"),
                    ));
                };
                let target = reshare::Target {
                    committee: self
                        .pool
                        .ids()
                        .into_iter()
                        .filter(|n| !leave_out.contains(n))
                        .collect(),
                    threshold,
                    avoid_dealers,
                    banned: self.signer.banned(),
                };
                tracing::warn!(%client, key = %key_id, epoch = key.epoch, holders = ?key.holders, committee = ?target.committee, threshold, "key reshare requested");
                let done = reshare::reshare(&self.pool, &key, &target).await?;
                self.registry.insert(done.key.clone());
                Ok(ClientResponse::Key(done.key))
            }
            ClientRequest::UnsealNode { node, passphrase } => {
                session.require_security_officer()?;
                tracing::warn!(%client, node, "security officer unseals a node");
                crate::node_backup::unseal(&self.pool, node, passphrase)
                    .await
                    .inspect_err(
                        |e| tracing::warn!(%client, node, error = %e, "node not unsealed"),
                    )?;
                // Learn the keys the node holds now that it can say.
                self.registry.refresh(&self.pool).await;
                Ok(ClientResponse::Ok)
            }
            ClientRequest::BackupNode { node } => {
                session.require_security_officer()?;
                tracing::warn!(%client, node, "security officer takes a backup of a node");
                let file = crate::node_backup::backup(&self.pool, node).await?;
                Ok(ClientResponse::Backup(file))
            }
            ClientRequest::RestoreNode { node, backup } => {
                session.require_security_officer()?;
                tracing::warn!(%client, node, "security officer restores a node from a backup");
                let (restored, skipped) = crate::node_backup::restore(&self.pool, node, backup)
                    .await
                    .inspect_err(
                        |e| tracing::warn!(%client, node, error = %e, "restore refused"),
                    )?;
                tracing::warn!(%client, node, restored = ?restored, skipped = skipped.len(), "node RESTORED from a backup");
                self.registry.refresh(&self.pool).await;
                Ok(ClientResponse::Restored { restored, skipped })
            }
        }
    }

    async fn status(&self) -> ClusterStatus {
        let answers = self
            .pool
            .call_each(&self.pool.ids(), |_| NodeRequest::Status, STATUS_TIMEOUT)
            .await;
        let nodes = answers
            .into_iter()
            .map(|(id, answer)| {
                let address = self.pool.address(id).unwrap_or_default().to_string();
                match answer {
                    Ok(NodeResponse::Status(status)) => NodeHealth {
                        id,
                        address,
                        reachable: true,
                        status: Some(status),
                        error: None,
                    },
                    Ok(_) => NodeHealth {
                        id,
                        address,
                        reachable: true,
                        status: None,
                        error: Some("unexpected answer".into()),
                    },
                    Err(NodeCallError::Refused { error, .. }) => NodeHealth {
                        id,
                        address,
                        reachable: true,
                        status: None,
                        error: Some(error.to_string()),
                    },
                    Err(e) => NodeHealth {
                        id,
                        address,
                        reachable: false,
                        status: None,
                        error: Some(e.to_string()),
                    },
                }
            })
            .collect::<Vec<NodeHealth>>();
        // Learn the bans the nodes hold, so that ECDSA signing leaves the banned nodes out.
        self.signer.set_banned(
            nodes
                .iter()
                .filter_map(|n| n.status.as_ref())
                .flat_map(|s| s.banned.iter().copied()),
        );
        ClusterStatus {
            threshold: self.pool.membership().threshold,
            nodes,
        }
    }
}

/// Runs a coordinator from its configuration until `shutdown` completes.
pub async fn run(
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), CoordinatorError> {
    let coordinator = Coordinator::bind(config)?;
    tracing::info!(listen = %coordinator.local_addr()?, "coordinator serving clients");
    coordinator.serve(shutdown).await;
    tracing::info!("coordinator stopped");
    Ok(())
}
