//! The coordinator's client API: QUIC with mutual TLS; only certificates of the client role are served.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use vhsm_core::PinUser;
use vhsm_wire::{
    accept,
    client_api::{ClientRequest, ClientResponse, ClusterStatus, NodeHealth},
    frame::{self, DEFAULT_FRAME_LIMIT},
    node_api::{NodeRequest, NodeResponse},
    tls::{self, TlsIdentity},
    ErrorKind, Role, WireError,
};

use crate::error::Error;
use crate::{
    config::CoordinatorConfig,
    membership::{
        self,
        change::{Change, Changes},
        MembershipAdmin,
    },
    nodes::{NodeCallError, NodePool, Requester},
    registry::Registry,
    signing::Signer,
    token::Token,
};

/// The largest message a client may ask to sign.
pub const MAX_MESSAGE: usize = vhsm_core::limits::MAX_SIGN_INPUT;
/// The largest client request read: a message to sign or a plaintext to encrypt and the rest of the request. A
/// larger one is answered with an error saying the limits, and not read further.
pub const MAX_REQUEST: usize = MAX_MESSAGE + DEFAULT_FRAME_LIMIT;
/// How long a node may take to answer a page of its audit log.
pub(crate) const AUDIT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to answer a status request.
pub(crate) const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// Its certificate, key or the cluster CA could not be loaded, or the endpoint not made with them.
    #[error("coordinator: {0}")]
    Tls(#[from] vhsm_wire::tls::TlsError),
    /// The saved membership (`membership.json`) could not be read (the words name the file).
    #[error("coordinator: {0}")]
    Membership(String),
    /// The token's configuration is not usable (it still holds the PIN settings of an earlier release).
    #[error("coordinator: token: {0}")]
    Token(String),
    /// The endpoint's address could not be read.
    #[error("coordinator: {0}")]
    Endpoint(#[from] std::io::Error),
}

/// A running coordinator.
pub struct Coordinator {
    pub(crate) endpoint: quinn::Endpoint,
    pub(crate) pool: NodePool,
    /// Changes to the cluster's membership (the membership itself is the pool's).
    pub(crate) membership: MembershipAdmin,
    /// Membership changes: the running one and the last finished ones.
    pub(crate) changes: Changes,
    pub(crate) registry: Registry,
    pub(crate) signer: Signer,
    pub(crate) token: Arc<Token>,
    /// How many key operations run at once; the others wait their turn (see [`crate::admission`]).
    pub(crate) admission: crate::admission::Admission,
}

/// One client connection: who it is (from its certificate) and whether it has logged in.
#[derive(Debug)]
pub struct ClientSession {
    /// The client's name, from its certificate.
    pub client: String,
    pub(crate) login: std::sync::Mutex<Option<PinUser>>,
}

impl ClientSession {
    /// A connection of `client`, not logged in.
    pub fn new(client: &str) -> Self {
        ClientSession {
            client: client.to_string(),
            login: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn logged_in(&self) -> Option<PinUser> {
        self.login.lock().ok().and_then(|l| *l)
    }

    pub(crate) fn require_user(&self) -> Result<(), Error> {
        match self.logged_in() {
            Some(PinUser::User) => Ok(()),
            Some(PinUser::SecurityOfficer) => Err(Error::NotLoggedIn(
                "the security officer may not use or change keys; log in as the user",
            )),
            None => Err(Error::NotLoggedIn("log in first (the token's user PIN)")),
        }
    }

    pub(crate) fn require_security_officer(&self) -> Result<(), Error> {
        match self.logged_in() {
            Some(PinUser::SecurityOfficer) => Ok(()),
            Some(PinUser::User) => Err(Error::Forbidden(
                "only the security officer may change the cluster: log in with the SO PIN".into(),
            )),
            None => Err(Error::NotLoggedIn(
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
        let identity = TlsIdentity::load(&config.ca_cert, &config.cert, &config.key)?;
        let endpoint = tls::server_endpoint(&identity, config.listen)?;
        // The membership: the saved one if there is one (it overrides coordinator.toml's nodes and threshold).
        let membership_path = membership::default_path(&config);
        let initial =
            membership::initial(&config, &membership_path).map_err(CoordinatorError::Membership)?;
        tracing::info!(version = initial.version, members = ?initial.ids(), threshold = initial.threshold, "cluster membership");
        let transport = Arc::new(crate::nodes::QuicTransport::new(endpoint.clone()));
        let pool = NodePool::with_membership(transport, initial);
        let token = Token::new(config.token.clone()).map_err(CoordinatorError::Token)?;
        Ok(Arc::new(Coordinator {
            endpoint,
            pool,
            membership: MembershipAdmin::new(membership_path),
            changes: Changes::default(),
            registry: Registry::default(),
            signer: Signer::default(),
            admission: crate::admission::Admission::default(),
            token: Arc::new(token),
        }))
    }

    /// The cluster's membership now: the nodes that hold new keys, the threshold of new keys, the version. (Give
    /// it to the nodes now with [`membership::push`]; every node also gets it before the next request made to it.)
    pub fn membership(&self) -> vhsm_core::Membership {
        self.pool.membership()
    }

    /// The client API's address.
    pub fn local_addr(&self) -> Result<SocketAddr, CoordinatorError> {
        Ok(self.endpoint.local_addr()?)
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
                let received = frame::receive::<ClientRequest>(&mut recv, MAX_REQUEST).await;
                let too_large = matches!(received, Err(frame::FrameError::TooLarge { .. }));
                let response = match received {
                    Ok(request) => me
                        .handle(&session, request)
                        .await
                        .unwrap_or_else(|e| ClientResponse::Error(e.into())),
                    Err(frame::FrameError::TooLarge { limit }) => {
                        tracing::warn!(%client, limit, "refused a request larger than the limit");
                        ClientResponse::Error(WireError::new(
                            ErrorKind::BadRequest,
                            too_large_words(limit),
                        ))
                    }
                    Err(e) => {
                        ClientResponse::Error(WireError::new(ErrorKind::BadRequest, e.to_string()))
                    }
                };
                if let Err(e) = frame::send(&mut send, &response).await {
                    tracing::debug!(%client, error = %e, "could not answer a client");
                }
                if too_large {
                    // The client may still be sending: stop it, saying why (it reads the answer above).
                    let _ = recv.stop(frame::STOP_TOO_LARGE.into());
                }
            });
        }
    }

    /// The key `key_id` as the registry knows it, asking the nodes (for `nodes`' requester) if it does not.
    pub(crate) async fn key(
        &self,
        nodes: &NodePool,
        key_id: vhsm_core::KeyId,
    ) -> Result<vhsm_core::KeyInfo, Error> {
        self.registry.find(nodes, key_id).await
    }

    /// Answers one client request of `session`.
    pub async fn handle(
        self: &Arc<Self>,
        session: &ClientSession,
        request: ClientRequest,
    ) -> Result<ClientResponse, Error> {
        // Every node request made for this one is recorded by the nodes as asked by this client.
        let nodes = &self.pool.on_behalf(Requester {
            who: crate::audit::requester(&session.client, session.logged_in()),
            purpose: request.name(),
        });
        match request {
            ClientRequest::Status => self.status(session, nodes).await,
            ClientRequest::TokenInfo => self.token_info(session, nodes).await,
            ClientRequest::Login { user, pin } => self.login(session, nodes, user, pin).await,
            ClientRequest::Logout => self.logout(session).await,
            ClientRequest::CreateKey {
                algorithm,
                label,
                pre_active,
                attributes,
            } => {
                self.create_key(session, nodes, algorithm, label, pre_active, attributes)
                    .await
            }
            ClientRequest::ListKeys => self.list_keys(session, nodes).await,
            ClientRequest::GetKey { key_id } => self.get_key(session, nodes, key_id).await,
            ClientRequest::UpdateKey {
                key_id,
                label,
                attributes,
            } => {
                self.update_key(session, nodes, key_id, label, attributes)
                    .await
            }
            ClientRequest::SetKeyState { key_id, state } => {
                self.set_key_state(session, nodes, key_id, state).await
            }
            ClientRequest::DestroyKey { key_id } => self.destroy_key(session, nodes, key_id).await,
            ClientRequest::ReshareKey {
                key_id,
                avoid_dealers,
                leave_out,
                approval,
            } => {
                self.reshare_key(session, nodes, key_id, avoid_dealers, leave_out, approval)
                    .await
            }
            ClientRequest::Sign {
                key_id,
                message,
                hash,
            } => {
                let _turn = self.admission.admit().await?;
                self.sign(session, nodes, key_id, message, hash).await
            }
            ClientRequest::Unban { node } => self.unban(session, nodes, node).await,
            ClientRequest::Encrypt {
                key_id,
                plaintext,
                aad,
            } => {
                let _turn = self.admission.admit().await?;
                self.encrypt(session, nodes, key_id, plaintext, aad).await
            }
            ClientRequest::Decrypt { blob, aad } => {
                let _turn = self.admission.admit().await?;
                self.decrypt(session, nodes, blob, aad).await
            }
            ClientRequest::CreateObject { attributes } => {
                self.create_object(session, nodes, attributes).await
            }
            ClientRequest::ListObjects => self.list_objects(session, nodes).await,
            ClientRequest::UpdateObject { id, attributes } => {
                self.update_object(session, nodes, id, attributes).await
            }
            ClientRequest::DestroyObject { id } => self.destroy_object(session, nodes, id).await,
            ClientRequest::GetMembership => self.get_membership(session, nodes).await,
            ClientRequest::AddNode {
                id,
                address,
                approval,
            } => {
                self.change_membership(session, nodes, Change::AddNode { id, address }, approval)
                    .await
            }
            ClientRequest::RemoveNode {
                id,
                threshold,
                approval,
            } => {
                let change = Change::RemoveNode { id, threshold };
                self.change_membership(session, nodes, change, approval)
                    .await
            }
            ClientRequest::SetThreshold {
                threshold,
                approval,
            } => {
                let change = Change::SetThreshold { threshold };
                self.change_membership(session, nodes, change, approval)
                    .await
            }
            ClientRequest::ChangeStatus { job } => self.change_status(session, job).await,
            ClientRequest::UnsealNode { node, envelope } => {
                self.unseal_node(session, nodes, node, envelope).await
            }
            ClientRequest::UnsealChallenge { node } => {
                self.unseal_challenge(session, nodes, node).await
            }
            ClientRequest::ChangeUnsealSecret { node, envelope } => {
                self.change_unseal_secret(session, nodes, node, envelope)
                    .await
            }
            ClientRequest::BackupNode { node } => self.backup_node(session, nodes, node).await,
            ClientRequest::RestoreNode { node, backup } => {
                self.restore_node(session, nodes, node, backup).await
            }
            ClientRequest::AuditLog { node, from_line } => {
                self.audit_log(session, nodes, node, from_line).await
            }
        }
    }

    pub(crate) async fn cluster_status(&self, nodes: &NodePool) -> ClusterStatus {
        let ids = nodes.ids();
        // What every node lists, to flag holders whose shares are behind the keys' epochs (`Registry::behind`).
        let (answers, listed, staged) = tokio::join!(
            nodes.call_each(&ids, |_| NodeRequest::Status, STATUS_TIMEOUT),
            nodes.call_each(&ids, |_| NodeRequest::ListKeys, STATUS_TIMEOUT),
            nodes.call_each(&ids, |_| NodeRequest::ListStaged, STATUS_TIMEOUT),
        );
        let keys_of = |answers: Vec<(vhsm_wire::NodeId, Result<NodeResponse, NodeCallError>)>| {
            answers
                .into_iter()
                .filter_map(|(node, answer)| match answer {
                    Ok(NodeResponse::Keys(keys)) => Some((node, keys)),
                    _ => None,
                })
                .collect::<std::collections::HashMap<_, _>>()
        };
        let behind = self.registry.behind(&keys_of(listed), &keys_of(staged));
        for b in &behind {
            tracing::warn!(node = b.node, key = %b.key_id, held = ?b.held, epoch = b.epoch, "a holder's share is behind the key's epoch (its data was rolled back or lost): it is left out of this key's operations until repaired (vhsm node repair {})", b.node);
            nodes.note_unusable(b.key_id, b.epoch, [b.node]);
        }
        let health = answers
            .into_iter()
            .map(|(id, answer)| {
                let address = nodes.address(id).unwrap_or_default().to_string();
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
            health
                .iter()
                .filter_map(|n| n.status.as_ref())
                .flat_map(|s| s.banned.iter().map(|b| (s.node_id, *b))),
        );
        ClusterStatus {
            threshold: nodes.membership().threshold,
            nodes: health,
            behind,
        }
    }
}

/// The answer to a request larger than `limit` bytes: the limits, and what to do instead.
fn too_large_words(limit: usize) -> String {
    use vhsm_core::limits::{mib, MAX_CIPHER_INPUT};
    format!(
        "request refused: it is larger than the coordinator takes ({} per request; a message to sign at most {}, a \
         plaintext to encrypt at most {}): for ECDSA, hash the input and sign the digest (`vhsm sign` does); cut \
         data to encrypt into chunks (`vhsm encrypt` does); Ed25519 signs only messages that fit one request",
        mib(limit),
        mib(MAX_MESSAGE),
        mib(MAX_CIPHER_INPUT)
    )
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
