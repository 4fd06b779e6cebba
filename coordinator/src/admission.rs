//! Admission control: how many key operations (signatures, encryptions, decryptions) the coordinator runs at once,
//! and what happens to the others.
//!
//! A cluster under more load than it can serve used to fail operations: every request went to the nodes at once,
//! the nodes' cores were shared among all of them, and requests timed out naming nodes that were up (issue 15,
//! item 4: 200 parallel signatures, 41 failures). Now at most [`MAX_IN_FLIGHT`] operations run; the others wait
//! their turn in order ([`tokio::sync::Semaphore`] is fair), each at most [`MAX_WAIT`], and at most [`MAX_QUEUED`]
//! wait at once. A request beyond those bounds gets [`Error::Busy`] at once — nothing done, the message says how
//! busy and when to ask again — instead of adding to a queue it could not leave in time. The client library asks
//! again by itself after the hinted delay.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::Error;

/// How many key operations run at once.
pub const MAX_IN_FLIGHT: usize = 32;
/// How many may wait for their turn at once.
pub const MAX_QUEUED: usize = 8192;
/// How long one may wait for its turn.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// The delay a refused caller is told to wait before asking again.
pub const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The coordinator's admission of key operations.
#[derive(Debug)]
pub struct Admission {
    running: Semaphore,
    waiting: AtomicUsize,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            running: Semaphore::new(MAX_IN_FLIGHT),
            waiting: AtomicUsize::new(0),
        }
    }
}

/// Counts a caller among the waiting while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// Waits for the turn of one key operation; the operation runs while the permit lives. [`Error::Busy`] if the
    /// queue is full or the turn does not come within [`MAX_WAIT`].
    pub async fn admit(&self) -> Result<SemaphorePermit<'_>, Error> {
        if let Ok(permit) = self.running.try_acquire() {
            return Ok(permit);
        }
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel) + 1;
        let _waiting = Waiting(&self.waiting);
        if queued > MAX_QUEUED {
            return Err(self.busy(format!("{} requests are waiting already", queued - 1)));
        }
        match tokio::time::timeout(MAX_WAIT, self.running.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Error::Internal("the admission queue is closed".into())),
            Err(_) => Err(self.busy(format!("this request waited {MAX_WAIT:?} for its turn"))),
        }
    }

    fn busy(&self, why: String) -> Error {
        tracing::warn!(
            running = MAX_IN_FLIGHT,
            waiting = self.waiting.load(Ordering::Acquire),
            "refusing a key operation: the coordinator is at capacity"
        );
        Error::Busy(format!(
            "the coordinator is busy: {MAX_IN_FLIGHT} key operations running and {} waiting ({why}); nothing was \
             done — ask again in {} ms",
            self.waiting.load(Ordering::Acquire),
            RETRY_AFTER.as_millis()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Beyond MAX_IN_FLIGHT, callers wait in turn rather than fail; each gets its turn as a permit is released.
    #[tokio::test]
    async fn callers_beyond_the_limit_wait_their_turn() {
        let admission = std::sync::Arc::new(Admission::default());
        let held: Vec<_> = {
            let mut held = Vec::new();
            for _ in 0..MAX_IN_FLIGHT {
                held.push(admission.running.try_acquire().unwrap());
            }
            held
        };
        let waiter = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit().await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "a caller over the limit did not wait"
        );
        assert_eq!(admission.waiting.load(Ordering::Acquire), 1);
        drop(held);
        waiter.await.unwrap().unwrap();
        assert_eq!(admission.waiting.load(Ordering::Acquire), 0);
    }
}
