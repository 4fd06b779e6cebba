//! The coordinator service's errors: what went wrong, as a caller reacts to it, with the nodes concerned.
//!
//! Every service of the coordinator (signing, key generation, encryption, reshare, the registry, the membership,
//! the token, …) returns [`Error`]. It becomes the wire's [`WireError`] in one place, [`From<Error> for
//! WireError`], used only where the client API answers a request (`crate::server`). The variants carry the culprits
//! and the unreachable nodes as ids, never as text, so that the caller (the CLI, the PKCS#11 module) chooses its
//! reaction — and its `CK_RV` — from the kind, and an operator reads the nodes' ids in every message.
//!
//! A node's own refusal travels as [`Error::Refused`]: its kind, words and named nodes reach the client unchanged,
//! so that an operator sees what the node said.

use vhsm_core::{KeyId, KeyState, KeyUse, NodeId};
use vhsm_wire::{ErrorKind, WireError};

use crate::nodes::NodeCallError;

/// Why a coordinator service could not do what it was asked. Never contains secret material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request is malformed or its parameters are invalid (a label too long, a threshold out of range).
    #[error("{0}")]
    BadRequest(String),
    /// The data of the operation is refused: a message larger than the limit, a digest of the wrong length.
    #[error("{0}")]
    InvalidData(String),
    /// A ciphertext does not open (not a vHSM ciphertext, altered, other associated data).
    #[error("{0}")]
    InvalidCiphertext(String),
    /// No such key.
    #[error("no key {0}")]
    KeyNotFound(KeyId),
    /// The key was destroyed.
    #[error("key {0} was destroyed")]
    KeyDestroyed(KeyId),
    /// No such object or node.
    #[error("{0}")]
    NotFound(String),
    /// The key's lifecycle state does not allow this use (the nodes refuse it too).
    #[error("key {key} is {state}: it may not {use_}{}", state_hint(*.state))]
    KeyState {
        /// The key.
        key: KeyId,
        /// Its state.
        state: KeyState,
        /// The use refused.
        use_: KeyUse,
    },
    /// The request needs a login the session does not have.
    #[error("{0}")]
    NotLoggedIn(&'static str),
    /// The session's role may not make this request.
    #[error("{0}")]
    Forbidden(String),
    /// A wrong PIN.
    #[error("{0}")]
    PinIncorrect(String),
    /// The PIN is locked.
    #[error("{0}")]
    PinLocked(String),
    /// The coordinator is at capacity (see `crate::admission`): nothing was done; ask again later.
    #[error("{0}")]
    Busy(String),
    /// Not enough nodes could be reached.
    #[error("{message}")]
    Unavailable {
        /// What could not be done, and why.
        message: String,
        /// The nodes that could not be reached (or that the reporting nodes could not reach).
        nodes: Vec<NodeId>,
    },
    /// Nodes sent invalid protocol messages or answers.
    #[error("{message}")]
    Misbehaviour {
        /// What they did.
        message: String,
        /// Who did it.
        culprits: Vec<NodeId>,
    },
    /// Nodes failed a check of an OT-based protocol: they are banned from such protocols until an operator clears
    /// them.
    #[error("{message}")]
    Banned {
        /// What was found.
        message: String,
        /// The banned nodes.
        culprits: Vec<NodeId>,
    },
    /// A node refused the request; its answer is passed on as it is.
    #[error("{error}")]
    Refused {
        /// The node.
        node: NodeId,
        /// Its answer.
        error: WireError,
    },
    /// Something failed inside the coordinator.
    #[error("{0}")]
    Internal(String),
    /// A failure told in the words of the operation it stopped; kind and nodes are its cause's.
    #[error("{message}")]
    Context {
        /// What failed, with the cause in words.
        message: String,
        /// The cause.
        cause: Box<Error>,
    },
}

fn state_hint(state: KeyState) -> &'static str {
    match state {
        KeyState::PreActive => " until it is activated (vhsm key activate)",
        KeyState::Deactivated | KeyState::Compromised => {
            " (only decrypt, or verify with its public key)"
        }
        _ => "",
    }
}

impl Error {
    /// The kind a caller reacts to (the wire's kind).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::BadRequest(_) => ErrorKind::BadRequest,
            Error::InvalidData(_) => ErrorKind::InvalidData,
            Error::InvalidCiphertext(_) => ErrorKind::InvalidCiphertext,
            Error::KeyNotFound(_) | Error::KeyDestroyed(_) | Error::NotFound(_) => {
                ErrorKind::NotFound
            }
            Error::KeyState { .. } | Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::NotLoggedIn(_) => ErrorKind::NotLoggedIn,
            Error::PinIncorrect(_) => ErrorKind::PinIncorrect,
            Error::PinLocked(_) => ErrorKind::PinLocked,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Busy(_) => ErrorKind::Busy,
            Error::Misbehaviour { .. } => ErrorKind::Misbehaviour,
            Error::Banned { .. } => ErrorKind::Banned,
            Error::Refused { error, .. } => error.kind,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Context { cause, .. } => cause.kind(),
        }
    }

    /// The nodes concerned: culprits, unreachable nodes, or those a refusing node named.
    pub fn nodes(&self) -> &[NodeId] {
        match self {
            Error::Unavailable { nodes, .. } => nodes,
            Error::Misbehaviour { culprits, .. } | Error::Banned { culprits, .. } => culprits,
            Error::Refused { error, .. } => &error.nodes,
            Error::Context { cause, .. } => cause.nodes(),
            _ => &[],
        }
    }

    /// This failure told by the operation it stopped: `say` gets the cause's words and returns the whole
    /// message. Kind and nodes stay the cause's.
    pub fn context(self, say: impl FnOnce(&str) -> String) -> Error {
        Error::Context {
            message: say(&self.to_string()),
            cause: Box::new(self),
        }
    }

    /// Refuses early, with the reason, what `key`'s lifecycle state or usage flags do not allow (the nodes refuse
    /// it too, from their own records).
    pub fn unless_permitted(key: &vhsm_core::KeyInfo, use_: KeyUse) -> Result<(), Error> {
        if !key.state.allows(use_) {
            return Err(Error::KeyState {
                key: key.id,
                state: key.state,
                use_,
            });
        }
        if !key.usage_allows(use_) {
            return Err(Error::Forbidden(format!(
                "key {} may not {use_}: its usage flag (PKCS#11 CKA_{}) is off",
                key.id,
                use_.to_string().to_uppercase()
            )));
        }
        Ok(())
    }
}

impl From<NodeCallError> for Error {
    fn from(e: NodeCallError) -> Self {
        match e {
            NodeCallError::Unreachable { node, .. } => Error::Unavailable {
                message: e.to_string(),
                nodes: vec![node],
            },
            NodeCallError::Refused { node, error } => Error::Refused { node, error },
        }
    }
}

impl From<Error> for WireError {
    fn from(e: Error) -> Self {
        WireError {
            kind: e.kind(),
            nodes: e.nodes().to_vec(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_nodes_reach_the_wire() {
        let key = KeyId([7; 16]);
        let cases = [
            (Error::BadRequest("x".into()), ErrorKind::BadRequest, vec![]),
            (
                Error::InvalidData("x".into()),
                ErrorKind::InvalidData,
                vec![],
            ),
            (
                Error::InvalidCiphertext("x".into()),
                ErrorKind::InvalidCiphertext,
                vec![],
            ),
            (Error::KeyNotFound(key), ErrorKind::NotFound, vec![]),
            (Error::KeyDestroyed(key), ErrorKind::NotFound, vec![]),
            (Error::NotLoggedIn("log in"), ErrorKind::NotLoggedIn, vec![]),
            (
                Error::Unavailable {
                    message: "down".into(),
                    nodes: vec![2, 3],
                },
                ErrorKind::Unavailable,
                vec![2, 3],
            ),
            (
                Error::Misbehaviour {
                    message: "bad share".into(),
                    culprits: vec![3],
                },
                ErrorKind::Misbehaviour,
                vec![3],
            ),
            (
                Error::Banned {
                    message: "OT check".into(),
                    culprits: vec![1],
                },
                ErrorKind::Banned,
                vec![1],
            ),
            (Error::Internal("x".into()), ErrorKind::Internal, vec![]),
        ];
        for (error, kind, nodes) in cases {
            let wire = WireError::from(error.clone());
            assert_eq!(wire.kind, kind, "{error:?}");
            assert_eq!(wire.nodes, nodes, "{error:?}");
            assert_eq!(wire.message, error.to_string());
        }
    }

    #[test]
    fn a_nodes_refusal_is_passed_on_unchanged() {
        let answer = WireError {
            kind: ErrorKind::Misbehaviour,
            message: "node 3 sent an invalid share".into(),
            nodes: vec![3],
        };
        let error = Error::from(NodeCallError::Refused {
            node: 1,
            error: answer.clone(),
        });
        assert_eq!(WireError::from(error), answer);
        let unreachable = Error::from(NodeCallError::Unreachable {
            node: 2,
            reason: "no answer within 3s".into(),
        });
        assert_eq!(unreachable.kind(), ErrorKind::Unavailable);
        assert_eq!(unreachable.nodes(), &[2]);
        assert!(unreachable.to_string().contains("node 2"), "{unreachable}");
    }

    #[test]
    fn context_keeps_the_kind_and_the_culprits() {
        let e = Error::Misbehaviour {
            message: "node 2 sent an invalid share".into(),
            culprits: vec![2],
        }
        .context(|m| format!("key generation failed ({m}); nothing was kept"));
        assert_eq!(e.kind(), ErrorKind::Misbehaviour);
        assert_eq!(e.nodes(), &[2]);
        assert_eq!(
            e.to_string(),
            "key generation failed (node 2 sent an invalid share); nothing was kept"
        );
    }

    #[test]
    fn a_refused_use_names_the_state_and_the_way_out() {
        let e = Error::KeyState {
            key: KeyId([1; 16]),
            state: KeyState::PreActive,
            use_: KeyUse::Sign,
        };
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        let text = e.to_string();
        assert!(
            text.contains("pre-active") && text.contains("vhsm key activate"),
            "{text}"
        );
    }
}
