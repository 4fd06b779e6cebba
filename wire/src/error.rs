//! The error that crosses the wire: a kind to react to, words for the operator, and the nodes concerned.
//!
//! Services keep their own typed errors and turn them into a [`WireError`] only at their server edge.

use serde::{Deserialize, Serialize};
use vhsm_core::NodeId;

/// The category of a failure, so that a caller can react without parsing text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request is malformed or its parameters are invalid.
    BadRequest,
    /// No such key or object.
    NotFound,
    /// The request needs a logged-in session (`Login`).
    NotLoggedIn,
    /// The PIN is wrong.
    PinIncorrect,
    /// Too many wrong PINs: the PIN is locked.
    PinLocked,
    /// The requester's role may not make this request.
    Forbidden,
    /// Not enough nodes could be reached; `nodes` names the unreachable ones.
    Unavailable,
    /// Nodes sent invalid protocol messages; `nodes` names them.
    Misbehaviour,
    /// Nodes failed a check of an OT-based protocol that means they cheated or are compromised; `nodes` names them.
    /// The reporting node refuses to run such protocols with them until an operator clears the ban.
    Banned,
    /// Something failed inside the service.
    Internal,
    /// The node is sealed: it serves nothing until an operator unseals it (`vhsm node unseal ID`). Not a failure of
    /// the node: the coordinator treats it as unavailable and blames no one.
    Sealed,
    /// The request used single-use state the node no longer has (pre-made nonces lost in a restart, or expired):
    /// ask again with fresh state. Nobody is blamed.
    Stale,
    /// The data given to an operation is refused: a message or plaintext larger than the limit, a digest of the
    /// wrong length for its hash. The request itself was well formed (PKCS#11: `CKR_DATA_INVALID`).
    InvalidData,
    /// A ciphertext does not open: not a vHSM ciphertext, altered, or given with other associated data
    /// (PKCS#11: `CKR_ENCRYPTED_DATA_INVALID`).
    InvalidCiphertext,
    /// The coordinator is at capacity: as many operations as it runs at once are running and its queue is full, or
    /// the request waited in the queue as long as it may. Nothing was done; ask again a little later (the message
    /// says how busy and when). Nobody is blamed.
    Busy,
}

/// A failure reported across the wire. Never contains secret material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// For operators: what happened, in words.
    pub message: String,
    /// The nodes concerned (unreachable, or named as culprits).
    pub nodes: Vec<NodeId>,
}

impl WireError {
    /// A failure without nodes.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        WireError {
            kind,
            message: message.into(),
            nodes: Vec::new(),
        }
    }
}
