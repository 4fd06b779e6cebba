//! Runs one sans-IO protocol state machine over the mesh: sends what it emits to the other members, feeds it what
//! they send, until it has an output, fails, or runs out of time. A failure is a [`SessionError`] naming whom it
//! concerns: the culprits a protocol blamed ([`SessionError::Protocol`]), the peers that could not be reached, a
//! peer that sent another protocol's message.
//!
//! Steps run with `block_in_place`: a step of threshold-ECDSA key generation takes seconds of CPU, and must not
//! stall the runtime's other tasks (signing with other keys goes on meanwhile). Signing steps ([`Pace::PerCore`])
//! run at most one per core at once: a threshold-ECDSA signing step is milliseconds of arithmetic over ~100 KB of
//! state, and letting every session in flight compute at once only makes them evict each other from the caches.
//! Key generation and reshare steps ([`Pace::Free`]) take seconds each and are left to the OS scheduler, so that
//! they never hold signing back for a whole step.

use std::{collections::VecDeque, sync::OnceLock, time::Duration};

use rand_core::OsRng;
use vhsm_protocols::{Outgoing, Protocol, Recipient, SessionId};
use vhsm_wire::{
    mesh::{MeshMessage, MeshPayload},
    NodeId,
};

use crate::{
    mesh::{Inbound, Mesh, SessionInbox},
    sessions::SessionError,
};

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

/// How a session's protocol steps share the cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Short, latency-bound steps (signing): at most one per core runs at once, the others wait their turn.
    PerCore,
    /// Long steps (key generation, reshare: seconds each): run as soon as they are ready.
    Free,
}

/// Runs one CPU-heavy protocol step on this thread (`block_in_place`); with [`Pace::PerCore`], once one of the
/// per-core permits is free.
async fn cpu_step<T>(pace: Pace, step: impl FnOnce() -> T) -> T {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let _permit = match pace {
        Pace::Free => None,
        Pace::PerCore => {
            let permits = PERMITS.get_or_init(|| {
                tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, usize::from),
                )
            });
            // The semaphore is never closed, so acquiring only waits; if it ever failed, the step runs unlimited.
            permits.acquire().await.ok()
        }
    };
    tokio::task::block_in_place(step)
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
    /// How its steps share the cores.
    pub pace: Pace,
}

impl<C> Session<'_, C> {
    async fn send_all<M>(&self, outgoing: Vec<Outgoing<M>>) -> Result<(), SessionError>
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
                return Err(SessionError::Unreachable {
                    what: self.what,
                    nodes: failed,
                });
            }
        }
        Ok(())
    }

    /// Sends `outgoing` while watching the session's inbox: a peer that gives up the session
    /// ([`MeshPayload::Abort`]) ends it at once, even while a send to another (or to it, on a connection that has
    /// not yet failed) is still waiting for its acknowledgement; other messages are kept in `arrived`, in
    /// order. A closed inbox ends it too.
    async fn send_watching<M>(
        &self,
        outgoing: Vec<Outgoing<M>>,
        inbox: &mut SessionInbox<'_>,
        arrived: &mut VecDeque<Inbound>,
    ) -> Result<(), SessionError>
    where
        C: MeshCodec<M>,
    {
        let send = self.send_all(outgoing);
        tokio::pin!(send);
        loop {
            tokio::select! {
                sent = &mut send => return sent,
                received = inbox.recv() => match received {
                    Some((from, MeshPayload::Abort(reason))) => {
                        return Err(SessionError::PeerAborted {
                            what: self.what,
                            peer: from,
                            reason,
                        })
                    }
                    Some(message) => arrived.push_back(message),
                    None => return Err(self.closed()),
                },
            }
        }
    }

    /// Why the session's inbox was closed: this node is shutting down, or the coordinator aborted the session.
    fn closed(&self) -> SessionError {
        if self.mesh.is_stopping() {
            SessionError::Stopping {
                what: self.what,
                node: self.me,
            }
        } else {
            SessionError::Cancelled { what: self.what }
        }
    }

    /// Takes, without waiting, what arrived during a protocol step (seconds of CPU in a key generation): a member
    /// that gave up meanwhile ends the session ([`SessionError::PeerAborted`]), as does a closed inbox, so that what
    /// the step made is not sent to a member that is gone (issue 15, item 6: the peers of a node shutting down
    /// tried to reach it for seconds, its abort unread in their inboxes). Other messages are kept in `arrived`, in
    /// order.
    fn ended_meanwhile(
        &self,
        inbox: &mut SessionInbox<'_>,
        arrived: &mut VecDeque<Inbound>,
    ) -> Result<(), SessionError> {
        loop {
            match inbox.try_recv() {
                Some(Some((from, MeshPayload::Abort(reason)))) => {
                    return Err(SessionError::PeerAborted {
                        what: self.what,
                        peer: from,
                        reason,
                    })
                }
                Some(Some(message)) => arrived.push_back(message),
                Some(None) => return Ok(()),
                None => return Err(self.closed()),
            }
        }
    }

    /// Runs `protocol` to its output, within `timeout`.
    pub async fn run<P>(
        &self,
        mut protocol: P,
        timeout: Duration,
    ) -> Result<P::Output, SessionError>
    where
        P: Protocol,
        C: MeshCodec<P::Message>,
    {
        let what = self.what;
        if self.mesh.is_stopping() {
            return Err(self.closed());
        }
        let mut inbox = self
            .mesh
            .claim(self.session, self.members)
            .ok_or(SessionError::AlreadyRunning(self.session))?;
        let failed = |source| SessionError::Protocol { what, source };
        let run = async {
            // Messages taken from the inbox while looking for an abort (during a step, or while sending), not
            // handled yet.
            let mut arrived = VecDeque::new();
            let first = cpu_step(self.pace, || protocol.start(&mut OsRng))
                .await
                .map_err(failed)?;
            self.ended_meanwhile(&mut inbox, &mut arrived)?;
            self.send_watching(first, &mut inbox, &mut arrived).await?;
            while !protocol.is_done() {
                let next = match arrived.pop_front() {
                    Some(message) => Some(message),
                    None => inbox.recv().await,
                };
                let Some((from, payload)) = next else {
                    return Err(self.closed());
                };
                tracing::debug!(session = %self.session, from, what, "session message received");
                if let MeshPayload::Abort(reason) = payload {
                    return Err(SessionError::PeerAborted {
                        what,
                        peer: from,
                        reason,
                    });
                }
                let Some(message) = self.codec.unwrap(payload) else {
                    return Err(SessionError::ForeignMessage { what, from });
                };
                let out = cpu_step(self.pace, || protocol.handle(from, message, &mut OsRng))
                    .await
                    .map_err(failed)?;
                self.ended_meanwhile(&mut inbox, &mut arrived)?;
                self.send_watching(out, &mut inbox, &mut arrived).await?;
            }
            protocol
                .take_output()
                .ok_or(SessionError::NoOutput { what })
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| SessionError::TimedOut {
                what,
                after: timeout,
            })?
    }
}
