//! # vhsm-client: the client side of the coordinator's API
//!
//! What the `vhsm` command and the PKCS#11 module use to reach a cluster: a [`Client`] on one QUIC connection with
//! mutual TLS, configured by a [`ClientConfig`] (`client.toml`, written by `vhsm init`). It speaks
//! `vhsm_wire::client_api`; it links no protocol and no server code.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod approval;
pub mod cluster_dir;
pub mod session;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use vhsm_core::{
    limits::{MAX_CIPHER_INPUT, MAX_SIGN_INPUT},
    Algorithm, ChangeApproval, HashAlg, KeyId, KeyInfo, KeyState, Membership, NodeId, ObjectId,
    PinUser, SecretBytes, StoredObject, TokenInfo,
};

use vhsm_wire::{
    client_api::{AuditPage, ChangeStatus, ClientRequest, ClientResponse, ClusterStatus},
    frame::{self, FrameError, DEFAULT_FRAME_LIMIT},
    identity::Role,
    tls::{self, TlsIdentity},
};

pub use cluster_dir::ClusterDir;
/// A membership change as far as it has got ([`Client::follow_change`]).
pub use vhsm_wire::client_api::{ChangeStatus as MembershipChange, KeyMoved};
/// The failure a coordinator answers with ([`ClientError::Service`]).
pub use vhsm_wire::{ErrorKind, WireError};

/// How long to wait for the coordinator to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client's configuration file (`client.toml`, written by `vhsm init`). Relative paths are relative to the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The coordinator's address, `host:port`.
    pub coordinator: String,
    /// The cluster CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// This client's certificate (PEM).
    pub cert: PathBuf,
    /// This client's private key (PEM).
    pub key: PathBuf,
    /// How long one request may take before the client gives up, in seconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
}

fn default_request_timeout() -> u64 {
    60
}

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration could not be read.
    #[error("client configuration: {0}")]
    Config(String),
    /// The coordinator could not be reached.
    #[error("cannot reach the coordinator at {address}: {reason}")]
    Connect {
        /// Where it was looked for.
        address: String,
        /// Why it failed.
        reason: String,
    },
    /// The coordinator refused this client's certificate in the TLS handshake (another cluster's, expired,
    /// revoked, …); the connection was closed.
    #[error(
        "the coordinator at {address} refused this client's certificate {} ({reason}): a client needs a \
         certificate issued by this cluster's CA, for a client name (NAME.client.vhsm), in date — the one `vhsm \
         init` wrote into the cluster directory (client/client.pem); check the cert and key that client.toml names",
        .cert.display()
    )]
    CertificateRefused {
        /// The coordinator's address.
        address: String,
        /// The certificate file this client presented.
        cert: PathBuf,
        /// Why, from the TLS alert the coordinator sent.
        reason: &'static str,
    },
    /// The input is larger than one request takes: refused here, before anything was sent.
    #[error(
        "the {what} is {}; the limit is {} per request: {advice}",
        vhsm_core::limits::mib(*.size),
        vhsm_core::limits::mib(*.limit)
    )]
    TooLarge {
        /// What is too large (`"message to sign"`).
        what: &'static str,
        /// Its size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
        /// What to do instead.
        advice: &'static str,
    },
    /// The exchange failed midway.
    #[error("talking to the coordinator: {0}")]
    Frame(#[from] FrameError),
    /// The coordinator did not answer in time.
    #[error("the coordinator did not answer within {0:?}")]
    Timeout(Duration),
    /// The coordinator answered with an error.
    #[error("{0}")]
    Service(WireError),
    /// The coordinator answered something unexpected.
    #[error("unexpected answer from the coordinator: {0}")]
    Unexpected(String),
}

impl ClientConfig {
    /// Reads a configuration file and resolves its relative paths.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut config: ClientConfig = toml::from_str(&text)
            .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut config.ca_cert, &mut config.cert, &mut config.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }
}

/// A connection to the coordinator.
#[derive(Debug)]
pub struct Client {
    // Kept so the connection's socket lives as long as the client.
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    timeout: Duration,
    /// The coordinator's address and this client's certificate file, for the words of an error.
    address: String,
    cert: PathBuf,
}

impl Client {
    /// Connects to the coordinator named in `config`.
    pub async fn connect(config: &ClientConfig) -> Result<Self, ClientError> {
        let identity = TlsIdentity::load(&config.ca_cert, &config.cert, &config.key)
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let connect_error = |reason: String| ClientError::Connect {
            address: config.coordinator.clone(),
            reason,
        };
        let address = tokio::net::lookup_host(&config.coordinator)
            .await
            .map_err(|e| connect_error(e.to_string()))?
            .next()
            .ok_or_else(|| connect_error("the name has no address".into()))?;
        let endpoint = tls::client_endpoint(&identity, address.is_ipv6())
            .map_err(|e| connect_error(e.to_string()))?;
        let connecting = endpoint
            .connect(address, &Role::Coordinator.dns_name())
            .map_err(|e| connect_error(e.to_string()))?;
        let refused = |reason| ClientError::CertificateRefused {
            address: config.coordinator.clone(),
            cert: config.cert.clone(),
            reason,
        };
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| connect_error(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| match tls::peer_refused_certificate(&e) {
                Some(reason) => refused(reason),
                None => connect_error(e.to_string()),
            })?;
        Ok(Client {
            _endpoint: endpoint,
            connection,
            timeout: Duration::from_secs(config.request_timeout_secs.max(1)),
            address: config.coordinator.clone(),
            cert: config.cert.clone(),
        })
    }

    /// Why an exchange failed in transport: a refused certificate if that is how the connection ended (the
    /// coordinator checks a client's certificate after the client's side of the handshake, so the refusal shows
    /// only at the first request), else the stream's error.
    fn transport_error(&self, e: FrameError) -> ClientError {
        let refusal = self
            .connection
            .close_reason()
            .as_ref()
            .and_then(tls::peer_refused_certificate);
        match refusal {
            Some(reason) => ClientError::CertificateRefused {
                address: self.address.clone(),
                cert: self.cert.clone(),
                reason,
            },
            None => ClientError::Frame(e),
        }
    }

    /// Whether the connection has ended (the coordinator went away, or it idled out): make a new client.
    pub fn is_closed(&self) -> bool {
        self.connection.close_reason().is_some()
    }

    /// Sends one request and returns the answer; a service error becomes [`ClientError::Service`].
    pub async fn call(&self, request: &ClientRequest) -> Result<ClientResponse, ClientError> {
        let response = tokio::time::timeout(
            self.timeout,
            frame::request::<_, ClientResponse>(&self.connection, request, DEFAULT_FRAME_LIMIT),
        )
        .await
        .map_err(|_| ClientError::Timeout(self.timeout))?
        .map_err(|e| self.transport_error(e))?;
        match response {
            ClientResponse::Error(e) => Err(ClientError::Service(e)),
            other => Ok(other),
        }
    }

    /// The cluster's health.
    pub async fn status(&self) -> Result<ClusterStatus, ClientError> {
        match self.call(&ClientRequest::Status).await? {
            ClientResponse::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// The token's description and PIN state.
    pub async fn token_info(&self) -> Result<TokenInfo, ClientError> {
        match self.call(&ClientRequest::TokenInfo).await? {
            ClientResponse::Token(t) => Ok(t),
            other => Err(unexpected(&other)),
        }
    }

    /// Logs this connection in. A wrong PIN is [`ErrorKind::PinIncorrect`], a locked one [`ErrorKind::PinLocked`].
    pub async fn login(&self, user: PinUser, pin: &[u8]) -> Result<(), ClientError> {
        let request = ClientRequest::Login {
            user,
            pin: SecretBytes::new(pin.to_vec()),
        };
        self.expect_ok(&request).await
    }

    /// Logs this connection out.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.expect_ok(&ClientRequest::Logout).await
    }

    /// Generates a key.
    pub async fn create_key(
        &self,
        algorithm: Algorithm,
        label: &str,
    ) -> Result<KeyInfo, ClientError> {
        self.create_key_with(algorithm, label, Vec::new()).await
    }

    /// Generates a key with public attributes (PKCS#11 attribute type → value) kept beside it.
    pub async fn create_key_with(
        &self,
        algorithm: Algorithm,
        label: &str,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<KeyInfo, ClientError> {
        self.create_key_in_state(algorithm, label, attributes, false)
            .await
    }

    /// Generates a key, pre-active (`pre_active`: usable only after [`Client::set_key_state`] active) or active.
    pub async fn create_key_in_state(
        &self,
        algorithm: Algorithm,
        label: &str,
        attributes: Vec<(u64, Vec<u8>)>,
        pre_active: bool,
    ) -> Result<KeyInfo, ClientError> {
        let request = ClientRequest::CreateKey {
            algorithm,
            label: label.to_string(),
            pre_active,
            attributes,
        };
        match self.call(&request).await? {
            ClientResponse::Key(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    /// A lifecycle transition of a key (activate, deactivate, mark compromised); returns the key as it is now.
    pub async fn set_key_state(
        &self,
        key_id: KeyId,
        state: KeyState,
    ) -> Result<KeyInfo, ClientError> {
        match self
            .call(&ClientRequest::SetKeyState { key_id, state })
            .await?
        {
            ClientResponse::Key(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    /// Every key that has not been destroyed, in whatever lifecycle state.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, ClientError> {
        match self.call(&ClientRequest::ListKeys).await? {
            ClientResponse::Keys(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    /// One key.
    pub async fn get_key(&self, key_id: KeyId) -> Result<KeyInfo, ClientError> {
        match self.call(&ClientRequest::GetKey { key_id }).await? {
            ClientResponse::Key(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    /// Replaces a key's label and public attributes.
    pub async fn update_key(
        &self,
        key_id: KeyId,
        label: &str,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<KeyInfo, ClientError> {
        let request = ClientRequest::UpdateKey {
            key_id,
            label: label.to_string(),
            attributes,
        };
        match self.call(&request).await? {
            ClientResponse::Key(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    /// Destroys a key on every holder.
    pub async fn destroy_key(&self, key_id: KeyId) -> Result<(), ClientError> {
        self.expect_ok(&ClientRequest::DestroyKey { key_id }).await
    }

    /// Stores a new object (certificate, data).
    pub async fn create_object(
        &self,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<StoredObject, ClientError> {
        match self
            .call(&ClientRequest::CreateObject { attributes })
            .await?
        {
            ClientResponse::Object(o) => Ok(o),
            other => Err(unexpected(&other)),
        }
    }

    /// Every live object.
    pub async fn list_objects(&self) -> Result<Vec<StoredObject>, ClientError> {
        match self.call(&ClientRequest::ListObjects).await? {
            ClientResponse::Objects(o) => Ok(o),
            other => Err(unexpected(&other)),
        }
    }

    /// Replaces an object's attributes.
    pub async fn update_object(
        &self,
        id: ObjectId,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<StoredObject, ClientError> {
        match self
            .call(&ClientRequest::UpdateObject { id, attributes })
            .await?
        {
            ClientResponse::Object(o) => Ok(o),
            other => Err(unexpected(&other)),
        }
    }

    /// Destroys an object.
    pub async fn destroy_object(&self, id: ObjectId) -> Result<(), ClientError> {
        self.expect_ok(&ClientRequest::DestroyObject { id }).await
    }

    /// Signs `message` (ECDSA: hashed with `hash`, SHA-256 if `None`); returns the signature and the nodes that
    /// made it. At most [`MAX_SIGN_INPUT`] bytes ([`ClientError::TooLarge`]): an ECDSA caller with more hashes it
    /// and sends the digest (`Some(HashAlg::Prehashed)`).
    pub async fn sign(
        &self,
        key_id: KeyId,
        message: &[u8],
        hash: Option<HashAlg>,
    ) -> Result<(Vec<u8>, Vec<NodeId>), ClientError> {
        if message.len() > MAX_SIGN_INPUT {
            return Err(ClientError::TooLarge {
                what: "message to sign",
                size: message.len(),
                limit: MAX_SIGN_INPUT,
                advice: "Ed25519 signs the whole message, which must fit one request; for ECDSA, hash the message \
                         and sign the digest (HashAlg::Prehashed)",
            });
        }
        let request = ClientRequest::Sign {
            key_id,
            message: message.to_vec(),
            hash,
        };
        match self.call(&request).await? {
            ClientResponse::Signature { signature, signers } => Ok((signature, signers)),
            other => Err(unexpected(&other)),
        }
    }

    /// Encrypts `plaintext` (at most [`MAX_CIPHER_INPUT`] bytes, else [`ClientError::TooLarge`]) with a split-AES
    /// key, bound to `aad`.
    pub async fn encrypt(
        &self,
        key_id: KeyId,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        if plaintext.len() > MAX_CIPHER_INPUT {
            return Err(ClientError::TooLarge {
                what: "plaintext to encrypt",
                size: plaintext.len(),
                limit: MAX_CIPHER_INPUT,
                advice:
                    "cut larger data into chunks, each its own ciphertext (`vhsm encrypt` does)",
            });
        }
        let request = ClientRequest::Encrypt {
            key_id,
            plaintext: SecretBytes::new(plaintext.to_vec()),
            aad: aad.to_vec(),
        };
        match self.call(&request).await? {
            ClientResponse::Ciphertext(blob) => Ok(blob),
            other => Err(unexpected(&other)),
        }
    }

    /// Decrypts a blob made by [`Client::encrypt`] with the same `aad`.
    pub async fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<SecretBytes, ClientError> {
        let request = ClientRequest::Decrypt {
            blob: blob.to_vec(),
            aad: aad.to_vec(),
        };
        match self.call(&request).await? {
            ClientResponse::Plaintext(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Security officer: one page of node `node`'s audit log (raw lines from `from_line`).
    pub async fn audit_page(&self, node: NodeId, from_line: u64) -> Result<AuditPage, ClientError> {
        match self
            .call(&ClientRequest::AuditLog { node, from_line })
            .await?
        {
            ClientResponse::Audit(page) => Ok(page),
            other => Err(unexpected(&other)),
        }
    }

    /// Clears a ban on `node` on every node.
    pub async fn unban(&self, node: NodeId) -> Result<(), ClientError> {
        self.expect_ok(&ClientRequest::Unban { node }).await
    }

    async fn expect_ok(&self, request: &ClientRequest) -> Result<(), ClientError> {
        match self.call(request).await? {
            ClientResponse::Ok => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

impl Client {
    /// The cluster's membership.
    pub async fn membership(&self) -> Result<Membership, ClientError> {
        match self.call(&ClientRequest::GetMembership).await? {
            ClientResponse::Membership(m) => Ok(m),
            other => Err(unexpected(&other)),
        }
    }

    /// Security officer: adds a node (by id and address; it must answer there now) and starts resharing every
    /// key to all the members, with the security officer's `approval` of the members and threshold (see
    /// [`approval::ApprovalKey`]). Returns the change as started; follow it with [`Client::follow_change`].
    pub async fn add_node(
        &self,
        id: NodeId,
        address: &str,
        approval: Option<ChangeApproval>,
    ) -> Result<ChangeStatus, ClientError> {
        self.change(&ClientRequest::AddNode {
            id,
            address: address.to_string(),
            approval,
        })
        .await
    }

    /// Security officer: starts removing a node: the threshold set first if `threshold` says so, every key
    /// reshared to the other members, then the node removed. Returns the change as started.
    pub async fn remove_node(
        &self,
        id: NodeId,
        threshold: Option<u16>,
        approval: Option<ChangeApproval>,
    ) -> Result<ChangeStatus, ClientError> {
        self.change(&ClientRequest::RemoveNode {
            id,
            threshold,
            approval,
        })
        .await
    }

    /// Security officer: sets the threshold of new keys and starts resharing every key to it. Returns the change
    /// as started.
    pub async fn set_threshold(
        &self,
        threshold: u16,
        approval: Option<ChangeApproval>,
    ) -> Result<ChangeStatus, ClientError> {
        self.change(&ClientRequest::SetThreshold {
            threshold,
            approval,
        })
        .await
    }

    /// Security officer: how far membership change `job` has got.
    pub async fn change_status(&self, job: u64) -> Result<ChangeStatus, ClientError> {
        self.change(&ClientRequest::ChangeStatus { job }).await
    }

    /// Security officer: follows membership change `job` until it finishes, calling `progress` with every status
    /// read (every `every`). Returns the finished change: its `outcome` is the membership afterwards, or why the
    /// change stopped; its `keys`, each key's result.
    pub async fn follow_change(
        &self,
        job: u64,
        every: Duration,
        mut progress: impl FnMut(&ChangeStatus),
    ) -> Result<ChangeStatus, ClientError> {
        loop {
            let status = self.change_status(job).await?;
            progress(&status);
            if status.outcome.is_some() {
                return Ok(status);
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn change(&self, request: &ClientRequest) -> Result<ChangeStatus, ClientError> {
        match self.call(request).await? {
            ClientResponse::Change(status) => Ok(status),
            other => Err(unexpected(&other)),
        }
    }

    /// Security officer: reshares a key to the current membership (less `leave_out`) and threshold (a refresh
    /// when those are the key's; anything else needs the security officer's `approval` of them). Returns the key
    /// at its new epoch.
    pub async fn reshare_key(
        &self,
        key_id: KeyId,
        avoid_dealers: Vec<NodeId>,
        leave_out: Vec<NodeId>,
        approval: Option<ChangeApproval>,
    ) -> Result<KeyInfo, ClientError> {
        let request = ClientRequest::ReshareKey {
            key_id,
            avoid_dealers,
            leave_out,
            approval,
        };
        match self.call(&request).await? {
            ClientResponse::Key(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    /// Security officer: a fresh single-use challenge from node `node` for its next unseal envelope, and whether
    /// the node says it is sealed (relayed by the coordinator: an envelope answering another challenge is refused by
    /// the node).
    pub async fn unseal_challenge(&self, node: NodeId) -> Result<([u8; 32], bool), ClientError> {
        match self.call(&ClientRequest::UnsealChallenge { node }).await? {
            ClientResponse::UnsealChallenge { challenge, sealed } => Ok((challenge, sealed)),
            other => Err(unexpected(&other)),
        }
    }

    /// Security officer: unseals node `node` with `envelope`: its unseal secret encrypted to the node's unseal key,
    /// answering its challenge (`vhsm_node::unseal`; the coordinator only relays it).
    pub async fn unseal_node(&self, node: NodeId, envelope: Vec<u8>) -> Result<(), ClientError> {
        self.expect_ok(&ClientRequest::UnsealNode { node, envelope })
            .await
    }

    /// Security officer: changes node `node`'s unseal secret with `envelope` (the old and the new secret encrypted
    /// to the node's unseal key, answering its challenge; `vhsm_node::unseal`).
    pub async fn change_unseal_secret(
        &self,
        node: NodeId,
        envelope: Vec<u8>,
    ) -> Result<(), ClientError> {
        self.expect_ok(&ClientRequest::ChangeUnsealSecret { node, envelope })
            .await
    }

    /// Security officer: a backup file of node `node`.
    pub async fn backup_node(&self, node: NodeId) -> Result<Vec<u8>, ClientError> {
        match self.call(&ClientRequest::BackupNode { node }).await? {
            ClientResponse::Backup(b) => Ok(b),
            other => Err(unexpected(&other)),
        }
    }

    /// Security officer: restores node `node` from `backup`; returns the keys restored and those left out (why).
    #[allow(clippy::type_complexity)]
    pub async fn restore_node(
        &self,
        node: NodeId,
        backup: Vec<u8>,
    ) -> Result<(Vec<KeyId>, Vec<(KeyId, String)>), ClientError> {
        match self
            .call(&ClientRequest::RestoreNode { node, backup })
            .await?
        {
            ClientResponse::Restored { restored, skipped } => Ok((restored, skipped)),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(response: &ClientResponse) -> ClientError {
    let kind = match response {
        ClientResponse::Ok => "a bare acknowledgement",
        ClientResponse::Token(_) => "token information",
        ClientResponse::Object(_) => "an object",
        ClientResponse::Objects(_) => "an object list",
        ClientResponse::Ciphertext(_) => "a ciphertext",
        ClientResponse::Plaintext(_) => "a plaintext",
        ClientResponse::Status(_) => "a status",
        ClientResponse::Key(_) => "a key",
        ClientResponse::Keys(_) => "a key list",
        ClientResponse::Signature { .. } => "a signature",
        ClientResponse::Membership(_) => "the membership",
        ClientResponse::Change(_) => "a membership change",
        ClientResponse::Backup(_) => "a backup",
        ClientResponse::Restored { .. } => "a restore report",
        ClientResponse::Audit(_) => "an audit log page",
        ClientResponse::UnsealChallenge { .. } => "an unseal challenge",
        ClientResponse::Error(_) => "an error",
    };
    ClientError::Unexpected(format!("got {kind}"))
}
