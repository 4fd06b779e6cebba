//! The accepting side of an endpoint, shared by nodes and coordinators: complete each handshake, read the peer's
//! role from its certificate, hand the connection over; on shutdown, close and wait for connections to end.
//!
//! A failed handshake is an event anyone who can send UDP can cause, so its log lines are rate-limited (issue 15,
//! item 3: garbage handshakes wrote 34.7 MB of WARN lines in 30 s): at most [`LOGGED_PER_WINDOW`] lines per
//! [`WINDOW`], then one summary line per window that had more — how many were refused, from how many addresses, and
//! the last reason.

use std::{
    collections::HashSet,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::identity::Role;

/// Accepts connections on `endpoint` until `shutdown` completes. Each connection that completes its TLS handshake
/// (so its certificate is from the cluster CA) is given to `handler` on a task of its own, with the role its
/// certificate grants (`None`: a CA certificate that names no role of ours).
pub async fn serve<H, Fut>(
    endpoint: &quinn::Endpoint,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(quinn::Connection, Option<Role>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(shutdown);
    let refusals = Arc::new(RefusalLog::default());
    let summaries = {
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WINDOW);
            loop {
                tick.tick().await;
                refusals.summarise(Instant::now());
            }
        })
    };
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let handler = handler.clone();
                let refusals = refusals.clone();
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    match incoming.await {
                        Ok(conn) => {
                            let role = Role::of_connection(&conn);
                            handler(conn, role).await;
                        }
                        Err(e) => refusals.refused(remote, &e.to_string(), Instant::now()),
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    summaries.abort();
    refusals.summarise(Instant::now() + WINDOW);
    endpoint.close(0u32.into(), b"shutting down");
    endpoint.wait_idle().await;
}

/// How long a rate-limiting window of refused-handshake lines lasts.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Refused handshakes logged one by one per window; the rest are counted into the window's summary line.
pub const LOGGED_PER_WINDOW: u64 = 5;
/// Distinct addresses counted per window (beyond it, "at least" this many).
const ADDRESSES_COUNTED: usize = 1024;

/// The refused handshakes of the current window.
#[derive(Debug, Default)]
struct RefusalLog {
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    refused: u64,
    addresses: HashSet<IpAddr>,
    last_reason: String,
}

/// What the log says about a window that ends: (refused, distinct addresses, last reason), if more were refused
/// than were logged one by one.
type Summary = (u64, usize, String);

impl RefusalLog {
    /// A handshake from `remote` failed with `reason` at `now`: logged while the window has room, else counted.
    fn refused(&self, remote: SocketAddr, reason: &str, now: Instant) {
        let (log_it, summary) = self.note(remote, reason, now);
        if let Some(summary) = summary {
            log_summary(summary);
        }
        if log_it {
            tracing::warn!(%remote, error = %reason, "refused a connection (TLS handshake failed)");
        }
    }

    fn note(&self, remote: SocketAddr, reason: &str, now: Instant) -> (bool, Option<Summary>) {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let summary = match window.started {
            Some(started) if now.duration_since(started) >= WINDOW => window.close(),
            _ => None,
        };
        if window.started.is_none() {
            window.started = Some(now);
        }
        window.refused += 1;
        if window.addresses.len() < ADDRESSES_COUNTED {
            window.addresses.insert(remote.ip());
        }
        window.last_reason = reason.to_string();
        (window.refused <= LOGGED_PER_WINDOW, summary)
    }

    /// Ends the window if it is over at `now`, logging its summary.
    fn summarise(&self, now: Instant) {
        let summary = {
            let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            match window.started {
                Some(started) if now.duration_since(started) >= WINDOW => window.close(),
                _ => None,
            }
        };
        if let Some(summary) = summary {
            log_summary(summary);
        }
    }
}

impl Window {
    fn close(&mut self) -> Option<Summary> {
        let closed = std::mem::take(self);
        (closed.refused > LOGGED_PER_WINDOW).then_some((
            closed.refused,
            closed.addresses.len(),
            closed.last_reason,
        ))
    }
}

fn log_summary((refused, addresses, last): Summary) {
    let more = if addresses >= ADDRESSES_COUNTED {
        "at least "
    } else {
        ""
    };
    tracing::warn!(
        refused,
        addresses,
        last_error = %last,
        "refused {refused} connections (TLS handshake failed) in {}s from {more}{addresses} address(es); the first \
         {LOGGED_PER_WINDOW} were logged one by one, the rest only counted (a scan, a misconfigured client, or a \
         flood)",
        WINDOW.as_secs()
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refused_handshakes_are_logged_a_few_per_window_then_summarised() {
        let log = RefusalLog::default();
        let start = Instant::now();
        let from = |i: u8| SocketAddr::from(([10, 0, 0, i % 7], 4433));
        let mut logged = 0;
        for i in 0..1000u32 {
            let (log_it, summary) = log.note(from(u8::try_from(i % 250).unwrap()), "bad", start);
            assert!(summary.is_none());
            logged += u64::from(log_it);
        }
        assert_eq!(logged, LOGGED_PER_WINDOW);
        // The first refusal of the next window closes this one with its summary, and is logged itself.
        let (log_it, summary) = log.note(from(1), "worse", start + WINDOW);
        assert!(log_it);
        assert_eq!(summary, Some((1000, 7, "bad".to_string())));
        // A quiet window ends without a summary; a busy one by the timer alone.
        log.summarise(start + 3 * WINDOW);
        for _ in 0..3 {
            assert!(log.note(from(2), "x", start + 4 * WINDOW).0);
        }
        assert!(log.window.lock().unwrap().close().is_none());
    }
}
