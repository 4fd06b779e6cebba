//! The node's half of FROST signing, with nonces made ahead of time.
//!
//! FROST's round one does not depend on the message or the key, so the node makes nonces in the background
//! (the **stock**, [`STOCK_TARGET`] of them, refilled by [`NonceStore::refill`] when it falls below half) and
//! hands out their commitments in bulk (`Precommit`): the coordinator keeps a queue of each node's commitments and
//! signing is then one round trip (`SignShare`). Handed-out nonces wait in memory under a random [`NonceId`] until
//! a signature share consumes them: [`NonceStore::take`] removes them under one lock before the share is computed,
//! so each nonce pair signs at most once; a second `SignShare` with the same id finds nothing and is refused.
//! Nonces never touch the disk, are zeroized when dropped, and are lost in a restart (the coordinator is told
//! [`ErrorKind::Stale`](vhsm_wire::ErrorKind::Stale) and fetches fresh ones); unused ones expire after
//! [`NONCE_TTL`].
//!
//! Each nonce pair is derived as RFC 9591's `nonce_generate` from fresh randomness and a secret of the node (the
//! *hedge*, derived from its storage key), so a weak RNG alone does not make nonces predictable.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use rand_core::{OsRng, RngCore};
use vhsm_protocols::frost::{precommit, round1::FrostNonces};
use vhsm_wire::node_api::{NonceId, Precommitment, MAX_PRECOMMIT};
use zeroize::Zeroizing;

/// How long handed-out nonces wait for their signature share.
pub const NONCE_TTL: Duration = Duration::from_secs(600);
/// At most this many handed-out nonces waiting.
const MAX_ISSUED: usize = 100_000;
/// How many nonces the background keeps made and not handed out.
pub const STOCK_TARGET: usize = 1024;
/// The background makes nonces in chunks of this many (one blocking task each).
const REFILL_CHUNK: usize = 128;

struct Issued {
    nonces: FrostNonces,
    issued: Instant,
}

/// Why nonces could not be handed out or taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NonceError {
    /// No nonces under this id: never handed out, already used, lost in a restart, or expired.
    #[error("no nonces {0:#x} on this node: never handed out, already used, lost in a restart, or expired")]
    Missing(NonceId),
    /// Too many handed-out nonces are waiting.
    #[error("too many pre-made nonces handed out and not used ({MAX_ISSUED})")]
    Full,
    /// A `Precommit` asked for too many.
    #[error("at most {MAX_PRECOMMIT} commitments at a time, not {0}")]
    TooMany(u16),
    /// The nonces could not be made.
    #[error("cannot make nonces: {0}")]
    Make(String),
}

#[derive(Default)]
struct Inner {
    /// Made, commitments not handed out yet.
    stock: Vec<FrostNonces>,
    /// Commitments handed out; waiting for their signature share.
    issued: HashMap<NonceId, Issued>,
}

/// This node's pre-made FROST nonces.
#[derive(Default)]
pub struct NonceStore {
    inner: Mutex<Inner>,
    /// Woken when the stock fell below half.
    low: tokio::sync::Notify,
}

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceStore").finish_non_exhaustive()
    }
}

fn make(
    participant: vhsm_protocols::ParticipantId,
    hedge: &[u8; 32],
    count: usize,
) -> Result<Vec<FrostNonces>, NonceError> {
    (0..count)
        .map(|_| {
            precommit(participant, hedge, &mut OsRng)
                .map(|(nonces, _)| nonces)
                .map_err(|e| NonceError::Make(e.to_string()))
        })
        .collect()
}

impl NonceStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing in the map is left half-updated by a panic: each change is one insert or remove.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands out `count` commitments (from the stock, made on the spot if it runs short); the nonces stay here.
    pub fn issue(
        &self,
        count: u16,
        participant: vhsm_protocols::ParticipantId,
        hedge: &[u8; 32],
    ) -> Result<Vec<Precommitment>, NonceError> {
        if count > MAX_PRECOMMIT {
            return Err(NonceError::TooMany(count));
        }
        let count = usize::from(count);
        let mut taken = {
            let mut inner = self.lock();
            if inner.issued.len() + count > MAX_ISSUED / 2 {
                inner.issued.retain(|_, i| i.issued.elapsed() < NONCE_TTL);
            }
            if inner.issued.len() + count > MAX_ISSUED {
                return Err(NonceError::Full);
            }
            let keep = inner.stock.len().saturating_sub(count);
            inner.stock.split_off(keep)
        };
        if taken.len() < count {
            taken.extend(make(participant, hedge, count - taken.len())?);
        }
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.stock.len() < STOCK_TARGET / 2 {
            self.low.notify_one();
        }
        let mut out = Vec::with_capacity(taken.len());
        for nonces in taken {
            let id = loop {
                let id = OsRng.next_u64();
                if !inner.issued.contains_key(&id) {
                    break id;
                }
            };
            out.push(Precommitment {
                id,
                commitments: nonces.commitments().clone(),
            });
            inner.issued.insert(
                id,
                Issued {
                    nonces,
                    issued: now,
                },
            );
        }
        Ok(out)
    }

    /// Takes the nonces `id` out of the store; they can never be taken again.
    pub fn take(&self, id: NonceId) -> Result<FrostNonces, NonceError> {
        let entry = self
            .lock()
            .issued
            .remove(&id)
            .ok_or(NonceError::Missing(id))?;
        if entry.issued.elapsed() >= NONCE_TTL {
            return Err(NonceError::Missing(id));
        }
        Ok(entry.nonces)
    }

    /// How many nonces are in stock (made, not handed out).
    pub fn stock(&self) -> usize {
        self.lock().stock.len()
    }

    /// Waits until the stock falls below half (or `max_wait` passes).
    pub async fn wait_low(&self, max_wait: Duration) {
        let _ = tokio::time::timeout(max_wait, self.low.notified()).await;
    }

    /// Makes one chunk of nonces into the stock if it is below [`STOCK_TARGET`] (blocking: CPU work); returns how
    /// many it made.
    pub fn refill(
        &self,
        participant: vhsm_protocols::ParticipantId,
        hedge: &Zeroizing<[u8; 32]>,
    ) -> Result<usize, NonceError> {
        let missing = STOCK_TARGET.saturating_sub(self.stock());
        let count = missing.min(REFILL_CHUNK);
        if count == 0 {
            return Ok(0);
        }
        let made = make(participant, hedge, count)?;
        let mut inner = self.lock();
        let room = STOCK_TARGET.saturating_sub(inner.stock.len());
        let n = made.len().min(room);
        inner.stock.extend(made.into_iter().take(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn each_nonce_is_taken_once_and_ids_are_distinct() {
        let store = NonceStore::default();
        let hedge = Zeroizing::new([5u8; 32]);
        assert_eq!(store.refill(2, &hedge).unwrap(), REFILL_CHUNK);
        assert_eq!(store.stock(), REFILL_CHUNK);
        // More than the stock: the rest is made on the spot.
        let handed = store.issue(200, 2, &hedge).unwrap();
        assert_eq!(handed.len(), 200);
        assert_eq!(store.stock(), 0);
        let ids: std::collections::HashSet<_> = handed.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), 200);
        let commitments: std::collections::HashSet<_> =
            handed.iter().map(|p| p.commitments.0.clone()).collect();
        assert_eq!(commitments.len(), 200, "every nonce pair is fresh");
        let first = store.take(handed[0].id).unwrap();
        assert_eq!(first.commitments(), &handed[0].commitments);
        assert_eq!(first.participant(), 2);
        assert_eq!(
            store.take(handed[0].id).unwrap_err(),
            NonceError::Missing(handed[0].id)
        );
        assert!(store.take(12345).is_err());
        assert_eq!(
            store.issue(MAX_PRECOMMIT + 1, 2, &hedge).unwrap_err(),
            NonceError::TooMany(MAX_PRECOMMIT + 1)
        );
    }

    #[test]
    fn refill_stops_at_the_target() {
        let store = NonceStore::default();
        let hedge = Zeroizing::new([1u8; 32]);
        let mut total = 0;
        loop {
            let n = store.refill(1, &hedge).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, STOCK_TARGET);
        assert_eq!(store.stock(), STOCK_TARGET);
    }
}
