//! Why a protocol session failed on this node, with the nodes concerned (the culprits of a misbehaviour or a ban,
//! the peers that could not be reached).
//!
//! The handlers turn a [`SessionError`] into the node's [`ServiceError`](crate::error::ServiceError) (`?`), which
//! keeps its [`kind`](SessionError::kind) and its [`nodes`](SessionError::nodes); only the server edge makes a
//! wire error of it.

use std::time::Duration;

use vhsm_core::{KeyId, KeyState};
use vhsm_protocols::{ProtocolError, SessionId};
use vhsm_wire::{ErrorKind, NodeId};

use crate::store::StoreError;

/// Why a protocol session (key generation, signing, reshare) failed on this node.
///
/// `what` fields name the run for operators (`"key generation"`, `"ECDSA signing"`, `"reshare"`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A protocol step failed. Its culprits (if any) are blamed: [`ErrorKind::Banned`] when they must be banned,
    /// [`ErrorKind::Misbehaviour`] when they sent something invalid; without culprits the request was unfit for
    /// the protocol ([`ErrorKind::BadRequest`]).
    #[error("{what}{}: {source}", aborted(.source))]
    Protocol {
        /// The run.
        what: &'static str,
        /// What the protocol said (with its culprits).
        source: ProtocolError,
    },
    /// Messages could not be delivered to these peers ([`ErrorKind::Unavailable`]).
    #[error("{what}: cannot reach node(s) {nodes:?}")]
    Unreachable {
        /// The run.
        what: &'static str,
        /// The peers that could not be reached.
        nodes: Vec<NodeId>,
    },
    /// A peer sent a message of another protocol into the session ([`ErrorKind::Misbehaviour`], the peer blamed).
    #[error("{what}: node {from} sent a message of another protocol")]
    ForeignMessage {
        /// The run.
        what: &'static str,
        /// The sender.
        from: NodeId,
    },
    /// The coordinator aborted the session ([`ErrorKind::Unavailable`]).
    #[error("{what} cancelled: the coordinator aborted the session")]
    Cancelled {
        /// The run.
        what: &'static str,
    },
    /// This node is shutting down: it gave up the session, and told the other members ([`ErrorKind::Unavailable`]).
    #[error("node {node} is shutting down: it gave up the {what} session (it takes part again once restarted)")]
    Stopping {
        /// The run.
        what: &'static str,
        /// This node.
        node: NodeId,
    },
    /// The session did not finish in time ([`ErrorKind::Unavailable`]; nobody blamed).
    #[error("{what} did not finish within {after:?}")]
    TimedOut {
        /// The run.
        what: &'static str,
        /// The time it had.
        after: Duration,
    },
    /// Another member gave up the session and said why ([`ErrorKind::Unavailable`], naming it): nothing was
    /// wrong with this node.
    #[error("node {peer} gave up the {what} session: {reason}")]
    PeerAborted {
        /// The run.
        what: &'static str,
        /// The member that gave up.
        peer: NodeId,
        /// Its reason, in its words.
        reason: String,
    },
    /// The protocol finished without an output ([`ErrorKind::Internal`]).
    #[error("{what} finished without output")]
    NoOutput {
        /// The run.
        what: &'static str,
    },
    /// A session with this id is already running on this node ([`ErrorKind::BadRequest`]).
    #[error("session {0} is already running")]
    AlreadyRunning(SessionId),
    /// This node refuses an OT-based protocol (threshold ECDSA) with peers it has banned ([`ErrorKind::Banned`],
    /// the banned peers named).
    #[error("this node refuses {what} with banned node(s) {nodes:?}")]
    RefusesBanned {
        /// What it refuses (`"to sign"`, `"ECDSA key generation"`, `"ECDSA resharing"`).
        what: &'static str,
        /// The banned peers among the participants.
        nodes: Vec<NodeId>,
    },
    /// A participant the coordinator named is not a peer of this node ([`ErrorKind::BadRequest`]).
    #[error("node {0} is not a peer of this node")]
    NotAPeer(NodeId),
    /// The request does not fit this node or the key ([`ErrorKind::BadRequest`]): not a participant, a share of
    /// another scheme.
    #[error("{0}")]
    BadRequest(&'static str),
    /// The key's lifecycle state does not allow resharing ([`ErrorKind::BadRequest`]).
    #[error("key {key_id} is {state}: it cannot be reshared")]
    CannotReshare {
        /// The key.
        key_id: KeyId,
        /// Its state.
        state: KeyState,
    },
    /// A reshare would move the key to other holders or another threshold without the security officer's valid
    /// approval ([`ErrorKind::Forbidden`]): the coordinator alone may not change who holds a key, or how many it
    /// takes.
    #[error(
        "node {node} refuses to reshare key {key_id} to holders {committee:?} at threshold {threshold}: {reason}"
    )]
    NotApproved {
        /// This node.
        node: NodeId,
        /// The key.
        key_id: KeyId,
        /// The holders asked for.
        committee: Vec<NodeId>,
        /// The threshold asked for.
        threshold: u16,
        /// Why the approval does not do.
        reason: String,
    },
    /// A dealer the coordinator named does not hold the key ([`ErrorKind::BadRequest`]).
    #[error("dealer {dealer} does not hold key {key_id}")]
    DealerNotHolder {
        /// The dealer.
        dealer: NodeId,
        /// The key.
        key_id: KeyId,
    },
    /// This node was asked to deal a key it cannot load ([`ErrorKind::Unavailable`]: ask another holder).
    #[error("node {node} cannot deal key {key_id}: {source}")]
    CannotDeal {
        /// This node.
        node: NodeId,
        /// The key.
        key_id: KeyId,
        /// Why the store refused.
        source: StoreError,
    },
    /// This node holds another epoch of the key than the reshare starts from ([`ErrorKind::Unavailable`]).
    #[error(
        "node {node} holds epoch {held} of key {key_id}, the reshare starts from epoch {asked}"
    )]
    DealerEpoch {
        /// This node.
        node: NodeId,
        /// The key.
        key_id: KeyId,
        /// The epoch this node holds.
        held: u64,
        /// The epoch the reshare starts from.
        asked: u64,
    },
    /// The key's stored public package does not decode ([`ErrorKind::Internal`]; nobody blamed).
    #[error("the key's public package does not decode: {0}")]
    PublicPackage(#[source] ProtocolError),
    /// The reshare ended with shares of another key ([`ErrorKind::Misbehaviour`]; the protocol named no one).
    #[error("the reshare produced shares of another key")]
    OtherKey,
    /// The new share could not be written ([`ErrorKind::Internal`]).
    #[error("cannot {doing}: {source}")]
    Store {
        /// What was being done (`"store the new share"`).
        doing: &'static str,
        /// What the store said.
        source: StoreError,
    },
    /// A blocking task died ([`ErrorKind::Internal`]).
    #[error("{task} task failed: {source}")]
    TaskFailed {
        /// The task (`"store"`).
        task: &'static str,
        /// How it ended.
        source: tokio::task::JoinError,
    },
}

/// `" aborted"` when the protocol blames someone (the run stopped because of them), else nothing.
fn aborted(e: &ProtocolError) -> &'static str {
    if e.requires_ban() || !e.culprits().is_empty() {
        " aborted"
    } else {
        ""
    }
}

impl SessionError {
    /// The kind of failure, for the caller to react to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::Protocol { source, .. } if source.requires_ban() => ErrorKind::Banned,
            SessionError::Protocol { source, .. } if !source.culprits().is_empty() => {
                ErrorKind::Misbehaviour
            }
            SessionError::Protocol { .. } => ErrorKind::BadRequest,
            SessionError::Unreachable { .. }
            | SessionError::Cancelled { .. }
            | SessionError::Stopping { .. }
            | SessionError::TimedOut { .. }
            | SessionError::PeerAborted { .. }
            | SessionError::CannotDeal { .. }
            | SessionError::DealerEpoch { .. } => ErrorKind::Unavailable,
            SessionError::ForeignMessage { .. } | SessionError::OtherKey => ErrorKind::Misbehaviour,
            SessionError::NotApproved { .. } => ErrorKind::Forbidden,
            SessionError::RefusesBanned { .. } => ErrorKind::Banned,
            SessionError::AlreadyRunning(_)
            | SessionError::NotAPeer(_)
            | SessionError::BadRequest(_)
            | SessionError::CannotReshare { .. }
            | SessionError::DealerNotHolder { .. } => ErrorKind::BadRequest,
            SessionError::NoOutput { .. }
            | SessionError::PublicPackage(_)
            | SessionError::Store { .. }
            | SessionError::TaskFailed { .. } => ErrorKind::Internal,
        }
    }

    /// The nodes concerned: the culprits of a misbehaviour or a ban, the peers that could not be reached, the
    /// banned peers this node refuses to work with. Empty otherwise.
    pub fn nodes(&self) -> &[NodeId] {
        match self {
            SessionError::Protocol { source, .. } => source.culprits(),
            SessionError::Unreachable { nodes, .. } | SessionError::RefusesBanned { nodes, .. } => {
                nodes
            }
            SessionError::ForeignMessage { from, .. } => std::slice::from_ref(from),
            SessionError::PeerAborted { peer, .. } => std::slice::from_ref(peer),
            SessionError::Cancelled { .. }
            | SessionError::Stopping { .. }
            | SessionError::TimedOut { .. }
            | SessionError::NoOutput { .. }
            | SessionError::AlreadyRunning(_)
            | SessionError::NotAPeer(_)
            | SessionError::BadRequest(_)
            | SessionError::CannotReshare { .. }
            | SessionError::NotApproved { .. }
            | SessionError::DealerNotHolder { .. }
            | SessionError::CannotDeal { .. }
            | SessionError::DealerEpoch { .. }
            | SessionError::PublicPackage(_)
            | SessionError::OtherKey
            | SessionError::Store { .. }
            | SessionError::TaskFailed { .. } => &[],
        }
    }
}
