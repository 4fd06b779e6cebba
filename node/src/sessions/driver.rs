//! Runs one sans-IO protocol state machine over the mesh: sends what it emits to the other members, feeds it what
//! they send, until it has an output, fails, or runs out of time.
//!
//! Steps run with `block_in_place`: a step of threshold-ECDSA key generation takes seconds of CPU, and must not
//! stall the runtime's other tasks (signing with other keys goes on meanwhile).

use std::time::Duration;

use rand_core::OsRng;
use vhsm_protocols::{Outgoing, Protocol, ProtocolError, Recipient, SessionId};
use vhsm_wire::{
    messages::{MeshMessage, MeshPayload},
    ErrorKind, NodeId, WireError,
};

use crate::mesh::Mesh;

/// How a protocol's messages travel in a [`MeshPayload`].
pub trait MeshCodec<M> {
    /// Wraps an outgoing message.
    fn wrap(&self, message: M) -> MeshPayload;
    /// Unwraps an incoming payload; `None` if it belongs to another protocol.
    fn unwrap(&self, payload: MeshPayload) -> Option<M>;
}

impl<M, W: Fn(M) -> MeshPayload, U: Fn(MeshPayload) -> Option<M>> MeshCodec<M> for (W, U) {
    fn wrap(&self, message: M) -> MeshPayload {
        (self.0)(message)
    }
    fn unwrap(&self, payload: MeshPayload) -> Option<M> {
        (self.1)(payload)
    }
}

/// Turns a protocol failure into the answer for the coordinator: culprits become `Misbehaviour` (or `Banned`).
pub fn protocol_error(what: &str, e: ProtocolError) -> WireError {
    match &e {
        ProtocolError::MustBan { culprits, .. } => WireError {
            kind: ErrorKind::Banned,
            message: format!("{what} aborted: {e}"),
            nodes: culprits.clone(),
        },
        _ if !e.culprits().is_empty() => WireError {
            kind: ErrorKind::Misbehaviour,
            message: format!("{what} aborted: {e}"),
            nodes: e.culprits().to_vec(),
        },
        _ => WireError::new(ErrorKind::BadRequest, format!("{what}: {e}")),
    }
}

/// One protocol session among `members` (this node included).
pub struct Session<'a, C> {
    /// The mesh.
    pub mesh: &'a Mesh,
    /// This node.
    pub me: NodeId,
    /// Every member, this node included.
    pub members: &'a [NodeId],
    /// The session id.
    pub session: SessionId,
    /// How messages are wrapped.
    pub codec: C,
    /// What is running, for messages (`"key generation"`, `"signing"`).
    pub what: &'static str,
    /// Test-only: alters outgoing messages.
    pub tamper: Option<&'a (dyn Fn(&mut MeshPayload) + Send + Sync)>,
}

impl<C> Session<'_, C> {
    async fn send_all<M>(&self, outgoing: Vec<Outgoing<M>>) -> Result<(), WireError>
    where
        C: MeshCodec<M>,
    {
        for out in outgoing {
            let targets: Vec<NodeId> = match out.to {
                Recipient::All => self
                    .members
                    .iter()
                    .copied()
                    .filter(|m| *m != self.me)
                    .collect(),
                Recipient::One(id) => vec![id],
            };
            let mut payload = self.codec.wrap(out.message);
            if let Some(tamper) = self.tamper {
                tamper(&mut payload);
            }
            let message = MeshMessage {
                session: self.session,
                id: rand_core::RngCore::next_u64(&mut OsRng),
                payload,
            };
            let sends = targets.iter().map(|to| self.mesh.send(*to, &message));
            let failed: Vec<NodeId> = futures_util::future::join_all(sends)
                .await
                .into_iter()
                .filter_map(|r| r.err().map(|e| e.peer))
                .collect();
            if !failed.is_empty() {
                return Err(WireError {
                    kind: ErrorKind::Unavailable,
                    message: format!("{}: cannot reach node(s) {failed:?}", self.what),
                    nodes: failed,
                });
            }
        }
        Ok(())
    }

    /// Runs `protocol` to its output, within `timeout`.
    pub async fn run<P>(&self, mut protocol: P, timeout: Duration) -> Result<P::Output, WireError>
    where
        P: Protocol,
        C: MeshCodec<P::Message>,
    {
        let what = self.what;
        let mut inbox = self.mesh.claim(self.session).ok_or_else(|| {
            WireError::new(
                ErrorKind::BadRequest,
                format!("session {} is already running", self.session),
            )
        })?;
        let run = async {
            let first = tokio::task::block_in_place(|| protocol.start(&mut OsRng))
                .map_err(|e| protocol_error(what, e))?;
            self.send_all(first).await?;
            while !protocol.is_done() {
                let Some((from, payload)) = inbox.recv().await else {
                    return Err(WireError::new(
                        ErrorKind::Unavailable,
                        format!("{what} cancelled: the coordinator aborted the session"),
                    ));
                };
                tracing::debug!(session = %self.session, from, what, "session message received");
                let Some(message) = self.codec.unwrap(payload) else {
                    return Err(WireError {
                        kind: ErrorKind::Misbehaviour,
                        message: format!("{what}: node {from} sent a message of another protocol"),
                        nodes: vec![from],
                    });
                };
                let out =
                    tokio::task::block_in_place(|| protocol.handle(from, message, &mut OsRng))
                        .map_err(|e| protocol_error(what, e))?;
                self.send_all(out).await?;
            }
            protocol.take_output().ok_or_else(|| {
                WireError::new(
                    ErrorKind::Internal,
                    format!("{what} finished without output"),
                )
            })
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| WireError {
                kind: ErrorKind::Unavailable,
                message: format!("{what} did not finish within {timeout:?}"),
                nodes: Vec::new(),
            })?
    }
}
