//! The node's half of FROST signing.
//!
//! Round 1 makes fresh nonces, keeps them in memory under the signing session's id, and answers their commitments.
//! Round 2 takes the nonces out of the map (atomically, under one lock) before computing the signature share, so
//! that a nonce is used at most once: a second round 2 for the same session finds nothing and is refused. Nonces
//! never touch the disk and are zeroized when dropped; unused ones expire.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use vhsm_protocols::{frost::round1::FrostNonces, SessionId};
use vhsm_wire::KeyId;

/// How long round-1 nonces wait for their round 2.
pub const NONCE_TTL: Duration = Duration::from_secs(60);
/// At most this many signing sessions waiting for their round 2.
const MAX_PENDING: usize = 100_000;

struct Pending {
    key_id: KeyId,
    nonces: FrostNonces,
    created: Instant,
}

/// Why nonces could not be kept or taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NonceError {
    /// The session already has nonces.
    #[error("signing session {0} already has nonces")]
    Duplicate(SessionId),
    /// No nonces for the session: never made, already used, or expired.
    #[error("no nonces for signing session {0}: never committed, already used, or expired")]
    Missing(SessionId),
    /// The nonces were made for another key.
    #[error("signing session {0} was committed for another key")]
    WrongKey(SessionId),
    /// Too many sessions are waiting.
    #[error("too many signing sessions in progress")]
    Full,
}

/// The single-use nonces of the signing sessions in progress on this node.
#[derive(Default)]
pub struct NonceStore {
    pending: Mutex<HashMap<SessionId, Pending>>,
}

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceStore").finish_non_exhaustive()
    }
}

impl NonceStore {
    /// Keeps `nonces` for `session`.
    pub fn keep(
        &self,
        session: SessionId,
        key_id: KeyId,
        nonces: FrostNonces,
    ) -> Result<(), NonceError> {
        let mut pending = self.pending.lock().map_err(|_| NonceError::Full)?;
        if pending.len() >= MAX_PENDING / 2 {
            pending.retain(|_, p| p.created.elapsed() < NONCE_TTL);
        }
        if pending.len() >= MAX_PENDING {
            return Err(NonceError::Full);
        }
        if pending.contains_key(&session) {
            return Err(NonceError::Duplicate(session));
        }
        pending.insert(
            session,
            Pending {
                key_id,
                nonces,
                created: Instant::now(),
            },
        );
        Ok(())
    }

    /// Takes the nonces of `session` out of the store; they can never be taken again.
    pub fn take(&self, session: SessionId, key_id: KeyId) -> Result<FrostNonces, NonceError> {
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| NonceError::Missing(session))?;
        let entry = pending
            .remove(&session)
            .ok_or(NonceError::Missing(session))?;
        if entry.created.elapsed() >= NONCE_TTL {
            return Err(NonceError::Missing(session));
        }
        if entry.key_id != key_id {
            // The nonces are dropped (and zeroized) either way: a confused session is not resumed.
            return Err(NonceError::WrongKey(session));
        }
        Ok(entry.nonces)
    }
}
