//! The node's errors: [`ServiceError`], why a request failed, and [`StartError`], why the node could not start.
//!
//! Handlers, sessions and helpers return typed errors whose fields are the domain values (a [`KeyId`], a
//! [`KeyState`], the culprit [`NodeId`]s); their `Display` is the operator's words. A [`ServiceError`] becomes a
//! [`WireError`] (kind, words, nodes) in exactly one place, `impl From<ServiceError> for WireError`, used at the
//! edge where a request's result becomes a [`NodeResponse`](vhsm_wire::node_api::NodeResponse)
//! (`Node::answer`, and the server for a request that does not decode). Nothing here carries secret material.

use std::path::PathBuf;

use vhsm_core::{KeyId, KeyState, KeyUse, PinUser};
use vhsm_protocols::ProtocolError;
use vhsm_wire::{frame::FrameError, tls::TlsError, ErrorKind, NodeId, Role, WireError};

use crate::{
    audit::AuditError, seal::SealError, selftest::SelfTestError, sessions::signing::NonceError,
    sessions::SessionError, store::StoreError, unseal::EnvelopeError,
};

/// Why this node refused or failed a request.
///
/// [`ServiceError::kind`] says what the caller can do about it, [`ServiceError::nodes`] names the nodes concerned
/// (culprits, unreachable peers); `Display` is the operator's words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No such key ([`ErrorKind::NotFound`]).
    #[error("no key {0}")]
    KeyNotFound(KeyId),
    /// The key's lifecycle state does not allow this use ([`ErrorKind::Forbidden`]).
    #[error("key {key_id} is {state}: node {node} refuses to {key_use} with it")]
    KeyStateForbids {
        /// The key.
        key_id: KeyId,
        /// Its state on this node.
        state: KeyState,
        /// The use asked for.
        key_use: KeyUse,
        /// This node.
        node: NodeId,
    },
    /// The key's usage flags (PKCS#11 `CKA_SIGN`, `CKA_ENCRYPT`, `CKA_DECRYPT` = false) do not allow this use
    /// ([`ErrorKind::Forbidden`]).
    #[error("key {key_id} may not {key_use} (its usage flag is off): node {node} refuses")]
    UsageForbids {
        /// The key.
        key_id: KeyId,
        /// The use asked for.
        key_use: KeyUse,
        /// This node.
        node: NodeId,
    },
    /// A decryption with a key that may no longer encrypt, of a blob whose encryption receipt is missing or does not
    /// verify: it may be an encryption called a decryption ([`ErrorKind::Forbidden`]; see
    /// `vhsm_protocols::split_aes::receipt`).
    #[error("key {key_id} is {state}: node {node} decrypts with it only blobs encrypted while it was active, and this one's encryption receipt {problem}")]
    NoEncryptionReceipt {
        /// The key.
        key_id: KeyId,
        /// Its state on this node.
        state: KeyState,
        /// What is wrong with the receipt.
        problem: String,
        /// This node.
        node: NodeId,
    },
    /// The key is not of the scheme the request needs ([`ErrorKind::BadRequest`]).
    #[error("key {key_id} is not a {scheme} key")]
    WrongScheme {
        /// The key.
        key_id: KeyId,
        /// The scheme the request needs (`"FROST"`, `"split-AES"`).
        scheme: &'static str,
    },
    /// A generation of this key is already running on this node ([`ErrorKind::BadRequest`]).
    #[error("key {0} is already being generated")]
    KeygenRunning(KeyId),
    /// The coordinator aborted the key generation while it ran ([`ErrorKind::Unavailable`]).
    #[error("key generation aborted by the coordinator")]
    KeygenAborted,
    /// This node holds a newer epoch of the key than the one asked for ([`ErrorKind::Unavailable`]: the
    /// coordinator asks another holder, without blame).
    #[error("node {node} holds epoch {held} of key {key_id}, not {asked}")]
    EpochPassed {
        /// This node.
        node: NodeId,
        /// The key.
        key_id: KeyId,
        /// The epoch this node holds.
        held: u64,
        /// The epoch asked for.
        asked: u64,
    },
    /// This node holds the epoch asked for neither in force nor staged ([`ErrorKind::Unavailable`]).
    #[error("node {node} does not hold epoch {epoch} of key {key_id}")]
    EpochNotHeld {
        /// This node.
        node: NodeId,
        /// The key.
        key_id: KeyId,
        /// The epoch asked for.
        epoch: u64,
    },
    /// The request is malformed or its parameters are invalid ([`ErrorKind::BadRequest`]).
    #[error("{0}")]
    BadRequest(String),
    /// A request that does not decode ([`ErrorKind::BadRequest`]).
    #[error(transparent)]
    Malformed(FrameError),
    /// A batch longer than allowed ([`ErrorKind::BadRequest`]).
    #[error("a batch of {len} requests; at most {max}")]
    BatchTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The data given to an operation is refused though the request is well formed ([`ErrorKind::InvalidData`]).
    #[error("{0}")]
    InvalidData(String),
    /// FROST round two refused the signing package ([`ErrorKind::BadRequest`]).
    #[error("cannot sign: {0}")]
    CannotSign(#[source] ProtocolError),
    /// Pre-made FROST nonces: [`NonceError::Missing`] is single-use state this node no longer has
    /// ([`ErrorKind::Stale`]: ask again with fresh nonces); the others refuse the request
    /// ([`ErrorKind::BadRequest`]).
    #[error(transparent)]
    Nonce(#[from] NonceError),
    /// The node is sealed ([`ErrorKind::Sealed`]): it serves nothing until an operator unseals it.
    #[error("node {node} is sealed: run vhsm node unseal {node}")]
    Sealed {
        /// This node.
        node: NodeId,
    },
    /// The node is shutting down ([`ErrorKind::Unavailable`]): it takes no new request; it serves again once
    /// restarted.
    #[error(
        "node {node} is shutting down: it takes no new requests (it serves again once restarted)"
    )]
    ShuttingDown {
        /// This node.
        node: NodeId,
    },
    /// The unseal secret (or passphrase) is wrong ([`ErrorKind::PinIncorrect`]): it does not unwrap this node's
    /// sealed key file. Nothing changed (a sealed node stays sealed; a secret is not changed).
    #[error("node {node}: wrong unseal secret (wrong passphrase: it does not unwrap this node's sealed key file); nothing changed")]
    WrongPassphrase {
        /// This node.
        node: NodeId,
    },
    /// A wrong PIN, counted on this node ([`ErrorKind::PinIncorrect`]; see `crate::pins`).
    #[error("node {node}: wrong {} ({failures} of {max} wrong PINs in a row before it locks here)", crate::pins::pin_name(*.user))]
    PinIncorrect {
        /// This node.
        node: NodeId,
        /// Which PIN.
        user: PinUser,
        /// Wrong PINs in a row on this node now.
        failures: u32,
        /// The limit.
        max: u32,
    },
    /// The PIN is locked on this node: refused without being checked, or the wrong PIN that reached the limit
    /// ([`ErrorKind::PinLocked`]).
    #[error("node {node}: {}", locked_words(*.user, *.max, *.now))]
    PinLocked {
        /// This node.
        node: NodeId,
        /// Which PIN.
        user: PinUser,
        /// The limit.
        max: u32,
        /// Whether this check locked it.
        now: bool,
    },
    /// This node's `node.toml` has no `[token]` section: it checks no PIN ([`ErrorKind::Internal`]).
    #[error(
        "node {node} cannot check PINs: its node.toml has no [token] section (copy the section from another node's \
         node.toml and restart it)"
    )]
    NoPinConfig {
        /// This node.
        node: NodeId,
    },
    /// An unseal request to a node that has a development key file ([`ErrorKind::BadRequest`]).
    #[error("this node has a development key file and is never sealed")]
    NeverSealed,
    /// An unseal envelope refused before its secret was tried: malformed, for another node, replayed or stale
    /// (its challenge is not the one outstanding), or not opening with this node's unseal key. The kind is the
    /// envelope error's ([`EnvelopeError::kind`]: `BadRequest`, `InvalidCiphertext`, `Stale`).
    #[error(transparent)]
    UnsealEnvelope(EnvelopeError),
    /// The node has no unseal key (`unseal_key_file` in `node.toml`), so no envelope can reach it
    /// ([`ErrorKind::BadRequest`]).
    #[error("node {node} has no unseal key (unseal_key_file in its node.toml): it can be unsealed only on its own machine (passphrase_file in node.toml, or VHSM_NODE_PASSPHRASE)")]
    NoUnsealKey {
        /// This node.
        node: NodeId,
    },
    /// The sealed key file cannot be used ([`ErrorKind::Internal`]).
    #[error(transparent)]
    Unseal(SealError),
    /// The store refused or failed a request; the kind follows what it said (no such key: `NotFound`; the key
    /// exists or the store refuses: `BadRequest`; a lifecycle transition that is not allowed: `Forbidden`; else
    /// `Internal`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The share store does not open ([`ErrorKind::Internal`]).
    #[error(transparent)]
    StoreOpen(StoreError),
    /// A store step that only this node can have failed ([`ErrorKind::Internal`]).
    #[error("cannot {doing}: {source}")]
    StoreFailed {
        /// What was being done (`"store the membership"`).
        doing: &'static str,
        /// What the store said.
        source: StoreError,
    },
    /// A membership that is not a possible cluster ([`ErrorKind::BadRequest`]).
    #[error("membership version {version} is not a possible cluster: {reason}")]
    InvalidMembership {
        /// Its version.
        version: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A membership that does not list this node ([`ErrorKind::BadRequest`]); not adopted.
    #[error(
        "node {node} is not in membership version {version} (members {members:?}); not adopted"
    )]
    NotInMembership {
        /// This node.
        node: NodeId,
        /// The membership's version.
        version: u64,
        /// Its members.
        members: Vec<NodeId>,
    },
    /// The audit log cannot be written: the request is refused, fail closed ([`ErrorKind::Internal`]).
    #[error("node {node}: refused, the audit log cannot be written (fail closed): {source}")]
    AuditUnwritable {
        /// This node.
        node: NodeId,
        /// What the log said.
        source: AuditError,
    },
    /// The audit log cannot be read ([`ErrorKind::Internal`]).
    #[error(transparent)]
    AuditUnreadable(AuditError),
    /// A protocol session failed; its kind and nodes (culprits, unreachable peers) are the session's.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A lock was poisoned by a panic ([`ErrorKind::Internal`]).
    #[error("a lock was poisoned by a panic; restart the node")]
    Poisoned,
    /// A task of this node died ([`ErrorKind::Internal`]).
    #[error("{task} task failed: {source}")]
    TaskFailed {
        /// The task (`"store"`, `"audit"`, `"request"`).
        task: &'static str,
        /// How it ended.
        source: tokio::task::JoinError,
    },
}

fn locked_words(user: PinUser, max: u32, now: bool) -> String {
    let pin = crate::pins::pin_name(user);
    if now {
        format!("wrong {pin}; it is now locked here after {max} wrong PINs in a row")
    } else {
        format!("the {pin} is locked here (too many wrong PINs); refused unchecked")
    }
}

impl ServiceError {
    /// The kind of failure, for the caller to react to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::KeyNotFound(_) => ErrorKind::NotFound,
            ServiceError::KeyStateForbids { .. }
            | ServiceError::UsageForbids { .. }
            | ServiceError::NoEncryptionReceipt { .. } => ErrorKind::Forbidden,
            ServiceError::WrongScheme { .. }
            | ServiceError::KeygenRunning(_)
            | ServiceError::BadRequest(_)
            | ServiceError::Malformed(_)
            | ServiceError::BatchTooLarge { .. }
            | ServiceError::CannotSign(_)
            | ServiceError::NeverSealed
            | ServiceError::NoUnsealKey { .. }
            | ServiceError::InvalidMembership { .. }
            | ServiceError::NotInMembership { .. } => ErrorKind::BadRequest,
            ServiceError::UnsealEnvelope(e) => e.kind(),
            ServiceError::KeygenAborted
            | ServiceError::ShuttingDown { .. }
            | ServiceError::EpochPassed { .. }
            | ServiceError::EpochNotHeld { .. } => ErrorKind::Unavailable,
            ServiceError::InvalidData(_) => ErrorKind::InvalidData,
            ServiceError::Nonce(NonceError::Missing(_)) => ErrorKind::Stale,
            ServiceError::Nonce(_) => ErrorKind::BadRequest,
            ServiceError::Sealed { .. } => ErrorKind::Sealed,
            ServiceError::WrongPassphrase { .. } | ServiceError::PinIncorrect { .. } => {
                ErrorKind::PinIncorrect
            }
            ServiceError::PinLocked { .. } => ErrorKind::PinLocked,
            ServiceError::Store(e) => match e {
                StoreError::NotFound(_) => ErrorKind::NotFound,
                StoreError::Exists(_) | StoreError::Refused(_) => ErrorKind::BadRequest,
                StoreError::Transition { .. } => ErrorKind::Forbidden,
                StoreError::Database(_) | StoreError::Seal(_) | StoreError::Corrupt { .. } => {
                    ErrorKind::Internal
                }
            },
            ServiceError::Session(e) => e.kind(),
            ServiceError::Unseal(_)
            | ServiceError::NoPinConfig { .. }
            | ServiceError::StoreOpen(_)
            | ServiceError::StoreFailed { .. }
            | ServiceError::AuditUnwritable { .. }
            | ServiceError::AuditUnreadable(_)
            | ServiceError::Poisoned
            | ServiceError::TaskFailed { .. } => ErrorKind::Internal,
        }
    }

    /// The nodes concerned: the culprits of a misbehaviour or a ban, the peers that could not be reached (see
    /// [`SessionError::nodes`]). Empty for a failure of this node or of the request alone.
    pub fn nodes(&self) -> &[NodeId] {
        match self {
            ServiceError::Session(e) => e.nodes(),
            ServiceError::KeyNotFound(_)
            | ServiceError::KeyStateForbids { .. }
            | ServiceError::NoEncryptionReceipt { .. }
            | ServiceError::UsageForbids { .. }
            | ServiceError::WrongScheme { .. }
            | ServiceError::KeygenRunning(_)
            | ServiceError::KeygenAborted
            | ServiceError::EpochPassed { .. }
            | ServiceError::EpochNotHeld { .. }
            | ServiceError::BadRequest(_)
            | ServiceError::Malformed(_)
            | ServiceError::BatchTooLarge { .. }
            | ServiceError::InvalidData(_)
            | ServiceError::CannotSign(_)
            | ServiceError::Nonce(_)
            | ServiceError::Sealed { .. }
            | ServiceError::ShuttingDown { .. }
            | ServiceError::WrongPassphrase { .. }
            | ServiceError::PinIncorrect { .. }
            | ServiceError::PinLocked { .. }
            | ServiceError::NoPinConfig { .. }
            | ServiceError::NeverSealed
            | ServiceError::UnsealEnvelope(_)
            | ServiceError::NoUnsealKey { .. }
            | ServiceError::Unseal(_)
            | ServiceError::Store(_)
            | ServiceError::StoreOpen(_)
            | ServiceError::StoreFailed { .. }
            | ServiceError::InvalidMembership { .. }
            | ServiceError::NotInMembership { .. }
            | ServiceError::AuditUnwritable { .. }
            | ServiceError::AuditUnreadable(_)
            | ServiceError::Poisoned
            | ServiceError::TaskFailed { .. } => &[],
        }
    }

    /// The peers to ban: the nodes of an [`ErrorKind::Banned`] failure (OT-based protocols refuse to run with
    /// them until an operator clears the ban). Empty for any other failure.
    pub fn banned(&self) -> &[NodeId] {
        if self.kind() == ErrorKind::Banned {
            self.nodes()
        } else {
            &[]
        }
    }
}

/// The node's answer to a failed request: its kind, its words, the nodes it names. The only place a node makes a
/// wire error of its own failures.
impl From<ServiceError> for WireError {
    fn from(e: ServiceError) -> Self {
        WireError {
            kind: e.kind(),
            nodes: e.nodes().to_vec(),
            message: e.to_string(),
        }
    }
}

/// Why a node could not start. `Display` tells the whole story (what failed and why), so no variant also
/// reports the underlying error as its `source()`: an error chain printed by the `vhsm` binary says it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A directory cannot be created.
    #[error("node: cannot create {}: {error}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// A file cannot be read.
    #[error("node: cannot read {}: {error}", .path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The audit log does not open or its chain does not verify: the node refuses to serve with it.
    #[error(
        "node: {0}; the node refuses to serve with an audit log it cannot vouch for: keep the file as evidence, \
         then restore the log from a copy, or move the whole data directory aside and rebuild this node from its \
         peers (vhsm node repair); a node whose store holds keys does not start on a new, empty log"
    )]
    AuditLog(AuditError),
    /// The development storage key file cannot be loaded.
    #[error("node: {0}")]
    StorageKey(SealError),
    /// The sealed key file does not unseal with the configured passphrase.
    #[error("node: cannot unseal at start: {0}")]
    Unseal(SealError),
    /// The configuration has a value the node cannot use.
    #[error("node: node.toml: {0}")]
    Config(String),
    /// The unseal key file (`unseal_key_file`) cannot be loaded.
    #[error("node: {0}")]
    UnsealKey(EnvelopeError),
    /// The `[token]` section of the configuration is not usable (a hash that is not an Argon2id PHC string).
    #[error("node: node.toml [token]: {0}")]
    PinConfig(String),
    /// The configuration names neither a storage key file nor a sealed one.
    #[error("node: node.toml names no storage key file")]
    NoStorageKey,
    /// The store or the stored membership cannot be opened.
    #[error("node: {0}")]
    Open(ServiceError),
    /// A self-test failed: the node refuses to serve.
    #[error("node: {0}")]
    SelfTest(SelfTestError),
    /// The TLS identity or the QUIC endpoint cannot be set up.
    #[error("node: {0}")]
    Tls(TlsError),
    /// The node's certificate is not for this node.
    #[error(
        "node: certificate {} is not for node {node} (it says {})",
        .path.display(),
        .found.as_ref().map_or("nothing we know".to_string(), ToString::to_string)
    )]
    WrongCertificate {
        /// The certificate file.
        path: PathBuf,
        /// This node (from the configuration).
        node: NodeId,
        /// The role the certificate grants, if it grants one we know.
        found: Option<Role>,
    },
    /// The endpoint's address cannot be read.
    #[error("node: {0}")]
    Endpoint(std::io::Error),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::time::Duration;

    use vhsm_protocols::SessionId;

    use super::*;
    use crate::audit::ChainBreak;

    fn key() -> KeyId {
        KeyId([7; 16])
    }

    fn wire(e: impl Into<ServiceError>) -> WireError {
        WireError::from(e.into())
    }

    /// A `JoinError`, as a cancelled task gives it.
    async fn join_error() -> tokio::task::JoinError {
        let task = tokio::spawn(std::future::pending::<()>());
        task.abort();
        task.await.unwrap_err()
    }

    fn session(e: SessionError) -> ServiceError {
        ServiceError::Session(e)
    }

    #[tokio::test]
    async fn every_service_error_has_its_kind_and_no_nodes() {
        let audit_error = || AuditError::Io {
            path: "audit.log".into(),
            reason: "disk full".into(),
        };
        let cases: Vec<(ServiceError, ErrorKind)> = vec![
            (ServiceError::KeyNotFound(key()), ErrorKind::NotFound),
            (
                ServiceError::KeyStateForbids {
                    key_id: key(),
                    state: KeyState::PreActive,
                    key_use: KeyUse::Sign,
                    node: 2,
                },
                ErrorKind::Forbidden,
            ),
            (
                ServiceError::WrongScheme {
                    key_id: key(),
                    scheme: "FROST",
                },
                ErrorKind::BadRequest,
            ),
            (ServiceError::KeygenRunning(key()), ErrorKind::BadRequest),
            (ServiceError::KeygenAborted, ErrorKind::Unavailable),
            (
                ServiceError::ShuttingDown { node: 1 },
                ErrorKind::Unavailable,
            ),
            (
                ServiceError::EpochPassed {
                    node: 1,
                    key_id: key(),
                    held: 3,
                    asked: 2,
                },
                ErrorKind::Unavailable,
            ),
            (
                ServiceError::EpochNotHeld {
                    node: 1,
                    key_id: key(),
                    epoch: 4,
                },
                ErrorKind::Unavailable,
            ),
            (ServiceError::BadRequest("no".into()), ErrorKind::BadRequest),
            (
                ServiceError::Malformed(FrameError::Decode("junk".into())),
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::BatchTooLarge { len: 9, max: 8 },
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::InvalidData("too long".into()),
                ErrorKind::InvalidData,
            ),
            (
                ServiceError::CannotSign(ProtocolError::Encoding("x".into())),
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::Nonce(NonceError::Missing(0x2a)),
                ErrorKind::Stale,
            ),
            (ServiceError::Nonce(NonceError::Full), ErrorKind::BadRequest),
            (
                ServiceError::Nonce(NonceError::TooMany(9999)),
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::Nonce(NonceError::Make("rng".into())),
                ErrorKind::BadRequest,
            ),
            (ServiceError::Sealed { node: 3 }, ErrorKind::Sealed),
            (
                ServiceError::WrongPassphrase { node: 3 },
                ErrorKind::PinIncorrect,
            ),
            (
                ServiceError::PinIncorrect {
                    node: 3,
                    user: PinUser::User,
                    failures: 2,
                    max: 5,
                },
                ErrorKind::PinIncorrect,
            ),
            (
                ServiceError::PinLocked {
                    node: 3,
                    user: PinUser::SecurityOfficer,
                    max: 5,
                    now: true,
                },
                ErrorKind::PinLocked,
            ),
            (ServiceError::NoPinConfig { node: 3 }, ErrorKind::Internal),
            (ServiceError::NeverSealed, ErrorKind::BadRequest),
            (ServiceError::NoUnsealKey { node: 3 }, ErrorKind::BadRequest),
            (
                ServiceError::UnsealEnvelope(EnvelopeError::NoChallenge { node: 3 }),
                ErrorKind::Stale,
            ),
            (
                ServiceError::UnsealEnvelope(EnvelopeError::ChallengeMismatch { node: 3 }),
                ErrorKind::Stale,
            ),
            (
                ServiceError::UnsealEnvelope(EnvelopeError::DoesNotOpen { node: 3 }),
                ErrorKind::InvalidCiphertext,
            ),
            (
                ServiceError::UnsealEnvelope(EnvelopeError::OtherNode {
                    made_for: 1,
                    node: 3,
                }),
                ErrorKind::InvalidCiphertext,
            ),
            (
                ServiceError::UnsealEnvelope(EnvelopeError::Malformed("short".into())),
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::Unseal(SealError::KeyFile("truncated".into())),
                ErrorKind::Internal,
            ),
            (
                ServiceError::Store(StoreError::NotFound(key())),
                ErrorKind::NotFound,
            ),
            (
                ServiceError::Store(StoreError::Exists(key())),
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::Store(StoreError::Refused("another node's backup".into())),
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::Store(StoreError::Transition {
                    key_id: key(),
                    from: KeyState::Destroyed,
                    to: KeyState::Active,
                }),
                ErrorKind::Forbidden,
            ),
            (
                ServiceError::Store(StoreError::Database("disk".into())),
                ErrorKind::Internal,
            ),
            (
                ServiceError::Store(StoreError::Seal(SealError::Truncated)),
                ErrorKind::Internal,
            ),
            (
                ServiceError::Store(StoreError::Corrupt {
                    key_id: key(),
                    reason: "bad".into(),
                }),
                ErrorKind::Internal,
            ),
            (
                ServiceError::StoreOpen(StoreError::NotFound(key())),
                ErrorKind::Internal,
            ),
            (
                ServiceError::StoreFailed {
                    doing: "store the membership",
                    source: StoreError::Exists(key()),
                },
                ErrorKind::Internal,
            ),
            (
                ServiceError::InvalidMembership {
                    version: 2,
                    reason: "threshold 1".into(),
                },
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::NotInMembership {
                    node: 4,
                    version: 2,
                    members: vec![1, 2, 3],
                },
                ErrorKind::BadRequest,
            ),
            (
                ServiceError::AuditUnwritable {
                    node: 1,
                    source: audit_error(),
                },
                ErrorKind::Internal,
            ),
            (
                ServiceError::AuditUnreadable(AuditError::Broken {
                    path: "audit.log".into(),
                    problem: ChainBreak {
                        line: 3,
                        seq: Some(3),
                        reason: "hash".into(),
                    },
                }),
                ErrorKind::Internal,
            ),
            (ServiceError::Poisoned, ErrorKind::Internal),
            (
                ServiceError::TaskFailed {
                    task: "store",
                    source: join_error().await,
                },
                ErrorKind::Internal,
            ),
        ];
        for (error, kind) in cases {
            let text = error.to_string();
            let w = WireError::from(error);
            assert_eq!(w.kind, kind, "{text}");
            assert_eq!(w.message, text);
            assert!(w.nodes.is_empty(), "{text} names no node");
        }
    }

    #[tokio::test]
    async fn every_session_error_has_its_kind_and_keeps_its_nodes() {
        let cases: Vec<(SessionError, ErrorKind, Vec<NodeId>)> = vec![
            (
                SessionError::Protocol {
                    what: "signing",
                    source: ProtocolError::misbehaviour([3, 1], "bad share"),
                },
                ErrorKind::Misbehaviour,
                vec![1, 3],
            ),
            (
                SessionError::Protocol {
                    what: "ECDSA signing",
                    source: ProtocolError::must_ban([2], "OT consistency"),
                },
                ErrorKind::Banned,
                vec![2],
            ),
            (
                SessionError::Protocol {
                    what: "key generation",
                    source: ProtocolError::InvalidParameters("threshold 0".into()),
                },
                ErrorKind::BadRequest,
                vec![],
            ),
            (
                SessionError::Unreachable {
                    what: "reshare",
                    nodes: vec![4, 5],
                },
                ErrorKind::Unavailable,
                vec![4, 5],
            ),
            (
                SessionError::ForeignMessage {
                    what: "signing",
                    from: 6,
                },
                ErrorKind::Misbehaviour,
                vec![6],
            ),
            (
                SessionError::Cancelled { what: "reshare" },
                ErrorKind::Unavailable,
                vec![],
            ),
            (
                SessionError::Stopping {
                    what: "key generation",
                    node: 3,
                },
                ErrorKind::Unavailable,
                vec![],
            ),
            (
                SessionError::TimedOut {
                    what: "reshare",
                    after: Duration::from_secs(30),
                },
                ErrorKind::Unavailable,
                vec![],
            ),
            (
                SessionError::NoOutput { what: "reshare" },
                ErrorKind::Internal,
                vec![],
            ),
            (
                SessionError::AlreadyRunning(SessionId([1; 32])),
                ErrorKind::BadRequest,
                vec![],
            ),
            (
                SessionError::RefusesBanned {
                    what: "to sign",
                    nodes: vec![2],
                },
                ErrorKind::Banned,
                vec![2],
            ),
            (SessionError::NotAPeer(9), ErrorKind::BadRequest, vec![]),
            (
                SessionError::BadRequest("not an ECDSA key"),
                ErrorKind::BadRequest,
                vec![],
            ),
            (
                SessionError::CannotReshare {
                    key_id: key(),
                    state: KeyState::Destroyed,
                },
                ErrorKind::BadRequest,
                vec![],
            ),
            (
                SessionError::DealerNotHolder {
                    dealer: 5,
                    key_id: key(),
                },
                ErrorKind::BadRequest,
                vec![],
            ),
            (
                SessionError::CannotDeal {
                    node: 1,
                    key_id: key(),
                    source: StoreError::NotFound(key()),
                },
                ErrorKind::Unavailable,
                vec![],
            ),
            (
                SessionError::DealerEpoch {
                    node: 1,
                    key_id: key(),
                    held: 2,
                    asked: 1,
                },
                ErrorKind::Unavailable,
                vec![],
            ),
            (
                SessionError::PublicPackage(ProtocolError::misbehaviour([1], "stored")),
                ErrorKind::Internal,
                vec![],
            ),
            (SessionError::OtherKey, ErrorKind::Misbehaviour, vec![]),
            (
                SessionError::Store {
                    doing: "stage the new share",
                    source: StoreError::Database("disk".into()),
                },
                ErrorKind::Internal,
                vec![],
            ),
            (
                SessionError::TaskFailed {
                    task: "store",
                    source: join_error().await,
                },
                ErrorKind::Internal,
                vec![],
            ),
        ];
        for (error, kind, nodes) in cases {
            let text = error.to_string();
            let w = wire(error);
            assert_eq!(w.kind, kind, "{text}");
            assert_eq!(w.nodes, nodes, "{text}");
            assert_eq!(w.message, text);
        }
    }

    #[test]
    fn a_protocol_error_keeps_its_blame_and_words() {
        let w = wire(SessionError::Protocol {
            what: "ECDSA signing",
            source: ProtocolError::must_ban([4, 2, 4], "OT consistency"),
        });
        assert_eq!(w.kind, ErrorKind::Banned);
        assert_eq!(w.nodes, vec![2, 4]);
        assert_eq!(
            w.message,
            "ECDSA signing aborted: participant(s) [2, 4] must be banned: OT consistency"
        );
        let blamed = session(SessionError::Protocol {
            what: "reshare",
            source: ProtocolError::misbehaviour([3], "wrong sub-share"),
        });
        assert!(blamed.banned().is_empty(), "a misbehaviour bans no one");
        let w = WireError::from(blamed);
        assert_eq!((w.kind, w.nodes), (ErrorKind::Misbehaviour, vec![3]));
        assert_eq!(
            w.message,
            "reshare aborted: participant(s) [3] misbehaved: wrong sub-share"
        );
        // Nobody to blame: the request did not fit the protocol.
        let w = wire(SessionError::Protocol {
            what: "key generation",
            source: ProtocolError::WrongSession,
        });
        assert_eq!(w.kind, ErrorKind::BadRequest);
        assert_eq!(w.message, "key generation: message for another session");
    }

    #[test]
    fn bans_come_only_from_banned_failures() {
        let must_ban = session(SessionError::Protocol {
            what: "signing",
            source: ProtocolError::must_ban([5], "OT"),
        });
        assert_eq!(must_ban.banned(), &[5]);
        let refused = session(SessionError::RefusesBanned {
            what: "to sign",
            nodes: vec![1, 2],
        });
        assert_eq!(refused.banned(), &[1, 2]);
        assert_eq!(
            refused.to_string(),
            "this node refuses to sign with banned node(s) [1, 2]"
        );
        let unreachable = session(SessionError::Unreachable {
            what: "signing",
            nodes: vec![3],
        });
        assert!(unreachable.banned().is_empty());
    }

    #[test]
    fn a_refused_key_state_names_the_state_and_the_use() {
        for state in [
            KeyState::Pending,
            KeyState::PreActive,
            KeyState::Deactivated,
            KeyState::Compromised,
        ] {
            let e = ServiceError::KeyStateForbids {
                key_id: key(),
                state,
                key_use: KeyUse::Sign,
                node: 2,
            };
            assert_eq!(
                e.to_string(),
                format!("key {} is {state}: node 2 refuses to sign with it", key())
            );
        }
        let w = wire(ServiceError::KeyStateForbids {
            key_id: key(),
            state: KeyState::PreActive,
            key_use: KeyUse::Encrypt,
            node: 1,
        });
        assert_eq!(w.kind, ErrorKind::Forbidden);
        assert!(w.message.contains("pre-active"), "{}", w.message);
        assert!(w.message.contains("refuses to encrypt"), "{}", w.message);
        let w = wire(ServiceError::KeyStateForbids {
            key_id: key(),
            state: KeyState::Deactivated,
            key_use: KeyUse::Sign,
            node: 1,
        });
        assert!(w.message.contains("deactivated"), "{}", w.message);
    }

    #[test]
    fn operator_words_stay_as_they_were() {
        assert_eq!(
            ServiceError::Sealed { node: 3 }.to_string(),
            "node 3 is sealed: run vhsm node unseal 3"
        );
        assert_eq!(
            ServiceError::Store(StoreError::NotFound(key())).to_string(),
            format!("no key {} on this node", key())
        );
        assert_eq!(
            ServiceError::EpochPassed {
                node: 1,
                key_id: key(),
                held: 3,
                asked: 2
            }
            .to_string(),
            format!("node 1 holds epoch 3 of key {}, not 2", key())
        );
        assert_eq!(
            wire(SessionError::TimedOut {
                what: "reshare",
                after: Duration::from_secs(30)
            })
            .message,
            "reshare did not finish within 30s"
        );
        assert_eq!(
            ServiceError::Nonce(NonceError::Missing(0x2a)).to_string(),
            NonceError::Missing(0x2a).to_string()
        );
    }

    #[test]
    fn start_errors_say_what_failed() {
        let e = StartError::WrongCertificate {
            path: "node-1.pem".into(),
            node: 1,
            found: Some(Role::Node(2)),
        };
        assert!(e
            .to_string()
            .starts_with("node: certificate node-1.pem is not for node 1"));
        let e = StartError::WrongCertificate {
            path: "x.pem".into(),
            node: 1,
            found: None,
        };
        assert!(e.to_string().ends_with("(it says nothing we know)"), "{e}");
        let e = StartError::ReadFile {
            path: "/nowhere/passphrase".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(
            e.to_string()
                .starts_with("node: cannot read /nowhere/passphrase: "),
            "{e}"
        );
        assert_eq!(
            StartError::NoStorageKey.to_string(),
            "node: node.toml names no storage key file"
        );
        let e = StartError::Open(ServiceError::StoreFailed {
            doing: "read the stored cluster membership",
            source: StoreError::Database("disk".into()),
        });
        assert_eq!(
            e.to_string(),
            "node: cannot read the stored cluster membership: share database: disk"
        );
        assert!(
            std::error::Error::source(&e).is_none(),
            "said once, in the words"
        );
    }
}
