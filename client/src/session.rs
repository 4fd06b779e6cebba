//! A client session that outlives connections: what an application library (the PKCS#11 module, later an HTTP
//! gateway) needs between it and the coordinator.
//!
//! - One shared connection, made on first use. A request that fails in transport (or times out) drops it, and the
//!   next request reconnects.
//! - A request that is safe to repeat (everything but key generation and object creation) and failed on a
//!   connection that had been in use is sent once more on a fresh connection, so that a coordinator restart is
//!   invisible to the application.
//! - While logged in, the PIN is kept (zeroized on drop, never logged, `Debug` redacted) and presented again on
//!   every new connection. If the coordinator refuses it then (changed, or locked meanwhile), the session is logged
//!   out.
//! - Every step is bounded: connecting by [`CONNECT_TIMEOUT`] (plus a second), logging in again by
//!   [`QUICK_TIMEOUT`], each attempt of a request by the caller's timeout; [`Session::call_bound`] is the most one
//!   call can take, for a caller that waits on it from outside the runtime.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use vhsm_core::PinUser;
use zeroize::Zeroizing;

use crate::{Client, ClientConfig, ClientError, CONNECT_TIMEOUT};

/// Bound on quick requests (token information, login, listings, updates).
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait before asking a busy coordinator again (it did nothing; see `ErrorKind::Busy`).
const BUSY_RETRY: Duration = Duration::from_millis(200);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The PIN of the logged-in user, kept to log in again after a reconnect.
struct Credentials {
    user: PinUser,
    pin: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pin", &"<redacted>")
            .finish()
    }
}

/// The live connection and its generation (so that a failure on an old connection does not drop a new one).
type Connection = Option<(u64, Arc<Client>)>;

/// A session with the coordinator, reconnecting and logging in again as needed.
pub struct Session {
    config: ClientConfig,
    connection: Mutex<Connection>,
    generation: AtomicU64,
    connecting: tokio::sync::Mutex<()>,
    credentials: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("coordinator", &self.config.coordinator)
            .field("logged_in", &self.logged_in())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session with the coordinator of `config`; nothing is connected until the first request.
    pub fn new(config: ClientConfig) -> Self {
        Session {
            config,
            connection: Mutex::new(None),
            generation: AtomicU64::new(0),
            connecting: tokio::sync::Mutex::new(()),
            credentials: Mutex::new(None),
        }
    }

    /// The coordinator's address.
    pub fn coordinator(&self) -> &str {
        &self.config.coordinator
    }

    /// Which user is logged in, if any.
    pub fn logged_in(&self) -> Option<PinUser> {
        lock(&self.credentials).as_ref().map(|c| c.user)
    }

    /// The most one [`Session::call`] with `timeout` can take: a connection, a login again, and two attempts.
    pub fn call_bound(timeout: Duration) -> Duration {
        CONNECT_TIMEOUT + Duration::from_secs(1) + QUICK_TIMEOUT + timeout * 2
    }

    /// The current connection, connecting (and logging in again) if there is none; the flag says whether it is new.
    async fn connection(&self) -> Result<(u64, Arc<Client>, bool), ClientError> {
        if let Some((generation, client)) = lock(&self.connection).clone() {
            return Ok((generation, client, false));
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some((generation, client)) = lock(&self.connection).clone() {
            return Ok((generation, client, false));
        }
        let bound = CONNECT_TIMEOUT + Duration::from_secs(1);
        let client = tokio::time::timeout(bound, Client::connect(&self.config))
            .await
            .unwrap_or(Err(ClientError::Timeout(bound)))
            .inspect_err(|e| tracing::warn!(error = %e, "cannot connect to the coordinator"))?;
        let client = Arc::new(client);
        let again = lock(&self.credentials)
            .as_ref()
            .map(|c| (c.user, c.pin.clone()));
        if let Some((user, pin)) = again {
            match tokio::time::timeout(QUICK_TIMEOUT, client.login(user, &pin))
                .await
                .unwrap_or(Err(ClientError::Timeout(QUICK_TIMEOUT)))
            {
                Ok(()) => tracing::debug!("logged in again after reconnecting"),
                Err(e @ ClientError::Service(_)) => {
                    // The PIN no longer works (changed, or locked meanwhile): the application is logged out.
                    tracing::warn!(error = %e, "logging in again after reconnecting failed");
                    lock(&self.credentials).take();
                }
                Err(e) => return Err(e),
            }
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *lock(&self.connection) = Some((generation, client.clone()));
        tracing::debug!(coordinator = %self.config.coordinator, generation, "connected");
        Ok((generation, client, true))
    }

    /// Forgets connection `generation` (if it is still the current one). Call inside the runtime.
    fn invalidate(&self, generation: u64) {
        let mut current = lock(&self.connection);
        if matches!(&*current, Some((g, _)) if *g == generation) {
            current.take();
        }
    }

    /// Runs one request, each attempt bounded by `timeout`. `repeatable`: whether it may be sent again after a
    /// transport failure (never a request that creates something: it might have been done).
    pub async fn call<T, F, Fut>(
        &self,
        timeout: Duration,
        repeatable: bool,
        request: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let request = &request;
        let attempt = move |client: Arc<Client>| async move {
            tokio::time::timeout(timeout, request(client))
                .await
                .unwrap_or(Err(ClientError::Timeout(timeout)))
        };
        // A busy coordinator did nothing: ask again after its hint, within the request's time.
        let started = std::time::Instant::now();
        loop {
            match self.call_once(&attempt, repeatable).await {
                Err(ClientError::Service(e))
                    if e.kind == vhsm_wire::ErrorKind::Busy && started.elapsed() < timeout =>
                {
                    tracing::debug!(error = %e, "the coordinator is busy; asking again");
                    tokio::time::sleep(BUSY_RETRY).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once<T, A, AFut>(&self, attempt: &A, repeatable: bool) -> Result<T, ClientError>
    where
        A: Fn(Arc<Client>) -> AFut,
        AFut: Future<Output = Result<T, ClientError>>,
    {
        let (generation, client, fresh) = self.connection().await?;
        match attempt(client).await {
            Ok(v) => Ok(v),
            // Answered, or refused before sending: the connection is fine, and the same request fails again.
            Err(e @ (ClientError::Service(_) | ClientError::TooLarge { .. })) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "request to the coordinator failed");
                self.invalidate(generation);
                if !repeatable || fresh {
                    return Err(e);
                }
                let (generation, client, _) = self.connection().await?;
                attempt(client).await.inspect_err(|e| {
                    if !matches!(e, ClientError::Service(_) | ClientError::TooLarge { .. }) {
                        self.invalidate(generation);
                    }
                })
            }
        }
    }

    /// Logs in; on success the PIN is kept for reconnects.
    pub async fn login(&self, user: PinUser, pin: &[u8]) -> Result<(), ClientError> {
        let pin = Zeroizing::new(pin.to_vec());
        self.call(QUICK_TIMEOUT, true, |c| {
            let pin = pin.clone();
            async move { c.login(user, &pin).await }
        })
        .await?;
        *lock(&self.credentials) = Some(Credentials { user, pin });
        Ok(())
    }

    /// Logs out: forgets the PIN, and tells the coordinator (if it cannot be told, the connection is dropped,
    /// which logs it out too).
    pub async fn logout(&self) {
        lock(&self.credentials).take();
        let Some((generation, client)) = lock(&self.connection).clone() else {
            return;
        };
        let told = tokio::time::timeout(QUICK_TIMEOUT, client.logout()).await;
        if !matches!(told, Ok(Ok(()))) {
            self.invalidate(generation);
        }
    }

    /// Logs out by dropping the connection, without waiting on the coordinator. Call inside the runtime.
    pub fn reset(&self) {
        lock(&self.credentials).take();
        lock(&self.connection).take();
    }

    /// Zeroizes the kept PIN in a child process after `fork()`, touching nothing else (another thread of the
    /// parent may have held the lock: then there is nothing safe to do).
    pub fn forget_credentials_after_fork(&self) {
        if let Ok(mut credentials) = self.credentials.try_lock() {
            credentials.take();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials {
            user: PinUser::User,
            pin: Zeroizing::new(b"123456".to_vec()),
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("123456") && !shown.contains("49, 50"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_coordinator_fails_fast_and_nothing_is_kept() {
        let session = Session::new(ClientConfig {
            coordinator: "127.0.0.1:9".into(),
            ca_cert: "/nonexistent/ca.pem".into(),
            cert: "/nonexistent/c.pem".into(),
            key: "/nonexistent/k.pem".into(),
            request_timeout_secs: 60,
        });
        let start = std::time::Instant::now();
        assert!(session.login(PinUser::User, b"1234").await.is_err());
        assert!(start.elapsed() < Session::call_bound(QUICK_TIMEOUT));
        assert_eq!(session.logged_in(), None, "a refused login keeps no PIN");
    }
}
