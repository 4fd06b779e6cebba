//! The bridge to the coordinator: a tokio runtime owned by the module and a [`vhsm_client::session::Session`]
//! (one shared connection, transparent reconnection, re-login after a reconnect, every step bounded), called
//! synchronously from the PKCS#11 entry points, with each failure turned into its `CKR_` value.
//!
//! A coordinator that is down or does not answer is `CKR_DEVICE_ERROR` — the token stays present (the slot list
//! does not change under the application), the operation failed, and the next call tries again.
//! `CKR_DEVICE_REMOVED`/`CKR_TOKEN_NOT_PRESENT` would make applications such as pkcs11-provider drop the token for
//! good.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cryptoki_sys::*;
use vhsm_client::session::{Session, QUICK_TIMEOUT};
use vhsm_client::ErrorKind;
use vhsm_client::{Client, ClientConfig, ClientError};
use vhsm_core::digest::HashAlg;
use vhsm_core::{Algorithm, KeyId, KeyInfo, ObjectId, PinUser, StoredObject, TokenInfo};
use zeroize::Zeroizing;

use crate::CkResult;

/// Bound on a signature.
pub const SIGN_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on a key generation (threshold ECDSA key generation takes 3–15 s).
pub const KEYGEN_TIMEOUT: Duration = Duration::from_secs(120);

/// The PKCS#11 return value for a failure of the cluster.
pub fn map_error(e: &ClientError) -> CK_RV {
    match e {
        ClientError::Service(w) => match w.kind {
            ErrorKind::NotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            ErrorKind::PinIncorrect => CKR_PIN_INCORRECT,
            ErrorKind::PinLocked => CKR_PIN_LOCKED,
            ErrorKind::NotFound => CKR_OBJECT_HANDLE_INVALID,
            ErrorKind::Forbidden => CKR_ACTION_PROHIBITED,
            ErrorKind::InvalidData => CKR_DATA_INVALID,
            ErrorKind::InvalidCiphertext => CKR_ENCRYPTED_DATA_INVALID,
            // The module sent what the coordinator cannot take: not the application's data, but a request the
            // module should not have made.
            ErrorKind::BadRequest => CKR_FUNCTION_FAILED,
            ErrorKind::Unavailable
            | ErrorKind::Busy
            | ErrorKind::Misbehaviour
            | ErrorKind::Banned
            | ErrorKind::Sealed
            | ErrorKind::Stale
            | ErrorKind::Internal => CKR_DEVICE_ERROR,
        },
        ClientError::Config(_) => CKR_GENERAL_ERROR,
        ClientError::TooLarge { .. } => CKR_DATA_LEN_RANGE,
        _ => CKR_DEVICE_ERROR,
    }
}

/// The module's link to the coordinator.
pub struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
    threaded: bool,
    session: Arc<Session>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("coordinator", &self.session.coordinator())
            .field("threaded", &self.threaded)
            .finish_non_exhaustive()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Drop the connection inside the runtime, then stop the runtime without blocking (this may run on a
        // thread of another runtime, where blocking is forbidden).
        if let Some(runtime) = self.runtime.take() {
            {
                let _context = runtime.enter();
                self.session.reset();
            }
            runtime.shutdown_background();
        }
    }
}

impl Bridge {
    /// A bridge for `config`, with a runtime of two worker threads, or (`threaded` false, for applications that
    /// forbid the library to create threads) a current-thread runtime driven only inside calls.
    pub fn new(config: ClientConfig, threaded: bool) -> std::io::Result<Bridge> {
        let runtime = if threaded {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("vhsm-pkcs11")
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        };
        Ok(Bridge {
            runtime: Some(runtime),
            threaded,
            session: Arc::new(Session::new(config)),
        })
    }

    /// The coordinator's address.
    pub fn coordinator(&self) -> &str {
        self.session.coordinator()
    }

    /// Runs `future` on the module's runtime and waits at most `timeout` for it.
    fn exec<T: Send + 'static>(
        &self,
        timeout: Duration,
        future: impl Future<Output = Result<T, ClientError>> + Send + 'static,
    ) -> Result<T, ClientError> {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(ClientError::Unexpected(
                "the module is shutting down".into(),
            ));
        };
        let bounded = async move {
            tokio::time::timeout(timeout, future)
                .await
                .unwrap_or(Err(ClientError::Timeout(timeout)))
        };
        if self.threaded {
            // Spawn and wait on a channel: works from any thread, including one of the application's own tokio
            // runtime (where `block_on` would panic).
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            runtime.spawn(async move {
                let _ = tx.send(bounded.await);
            });
            rx.recv_timeout(timeout + Duration::from_secs(2))
                .unwrap_or(Err(ClientError::Timeout(timeout)))
        } else {
            runtime.block_on(bounded)
        }
    }

    /// Runs one request through the session (see [`Session::call`]).
    fn call<T, F, Fut>(&self, timeout: Duration, repeatable: bool, request: F) -> CkResult<T>
    where
        T: Send + 'static,
        F: Fn(Arc<Client>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
    {
        let session = self.session.clone();
        self.exec(Session::call_bound(timeout), async move {
            session.call(timeout, repeatable, request).await
        })
        .map_err(|e| map_error(&e))
    }

    /// Which user is logged in, if any.
    pub fn logged_in(&self) -> Option<PinUser> {
        self.session.logged_in()
    }

    /// Logs in; on success the PIN is kept for reconnects.
    pub fn login(&self, user: PinUser, pin: &[u8]) -> CkResult<()> {
        let (session, pin) = (self.session.clone(), Zeroizing::new(pin.to_vec()));
        self.exec(Session::call_bound(QUICK_TIMEOUT), async move {
            session.login(user, &pin).await
        })
        .map_err(|e| map_error(&e))
    }

    /// Logs out: forgets the PIN, and tells the coordinator (if it cannot be told, the connection is dropped,
    /// which logs it out too).
    pub fn logout(&self) {
        let session = self.session.clone();
        let _ = self.exec(QUICK_TIMEOUT + Duration::from_secs(1), async move {
            session.logout().await;
            Ok(())
        });
    }

    /// The last session closed: log out by dropping the connection (no waiting on the coordinator).
    pub fn reset(&self) {
        match self.runtime.as_ref() {
            Some(runtime) => {
                let _context = runtime.enter();
                self.session.reset();
            }
            None => self.session.reset(),
        }
    }

    /// Zeroizes the kept PIN in a child process after `fork()`, without touching anything else.
    pub fn zeroize_after_fork(&self) {
        self.session.forget_credentials_after_fork();
    }

    /// The token's description and PIN state.
    pub fn token_info(&self) -> CkResult<TokenInfo> {
        self.call(QUICK_TIMEOUT, true, |c| async move { c.token_info().await })
    }

    /// Every key (an empty list when nobody is logged in and the coordinator requires a login to list).
    pub fn list_keys(&self) -> CkResult<Vec<KeyInfo>> {
        match self.call(QUICK_TIMEOUT, true, |c| async move { c.list_keys().await }) {
            Err(CKR_USER_NOT_LOGGED_IN) if self.logged_in().is_none() => Ok(Vec::new()),
            other => other,
        }
    }

    /// Every stored object (empty as for [`Bridge::list_keys`]).
    pub fn list_objects(&self) -> CkResult<Vec<StoredObject>> {
        match self.call(
            QUICK_TIMEOUT,
            true,
            |c| async move { c.list_objects().await },
        ) {
            Err(CKR_USER_NOT_LOGGED_IN) if self.logged_in().is_none() => Ok(Vec::new()),
            other => other,
        }
    }

    /// Generates a key.
    pub fn create_key(
        &self,
        algorithm: Algorithm,
        label: String,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> CkResult<KeyInfo> {
        self.call(KEYGEN_TIMEOUT, false, move |c| {
            let (label, attributes) = (label.clone(), attributes.clone());
            async move { c.create_key_with(algorithm, &label, attributes).await }
        })
    }

    /// Replaces a key's label and attributes.
    pub fn update_key(
        &self,
        key_id: KeyId,
        label: String,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> CkResult<KeyInfo> {
        self.call(QUICK_TIMEOUT, true, move |c| {
            let (label, attributes) = (label.clone(), attributes.clone());
            async move { c.update_key(key_id, &label, attributes).await }
        })
    }

    /// Destroys a key on every holder.
    pub fn destroy_key(&self, key_id: KeyId) -> CkResult<()> {
        self.call(QUICK_TIMEOUT, true, move |c| async move {
            c.destroy_key(key_id).await
        })
    }

    /// Stores a new object.
    pub fn create_object(&self, attributes: Vec<(u64, Vec<u8>)>) -> CkResult<StoredObject> {
        self.call(QUICK_TIMEOUT, false, move |c| {
            let attributes = attributes.clone();
            async move { c.create_object(attributes).await }
        })
    }

    /// Replaces an object's attributes.
    pub fn update_object(
        &self,
        id: ObjectId,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> CkResult<StoredObject> {
        self.call(QUICK_TIMEOUT, true, move |c| {
            let attributes = attributes.clone();
            async move { c.update_object(id, attributes).await }
        })
    }

    /// Destroys an object.
    pub fn destroy_object(&self, id: ObjectId) -> CkResult<()> {
        self.call(QUICK_TIMEOUT, true, move |c| async move {
            c.destroy_object(id).await
        })
    }

    /// Signs `message` with the key (see [`vhsm_client::Client::sign`]).
    pub fn sign(
        &self,
        key_id: KeyId,
        message: Vec<u8>,
        hash: Option<HashAlg>,
    ) -> CkResult<Vec<u8>> {
        let message = Arc::new(message);
        self.call(SIGN_TIMEOUT, true, move |c| {
            let message = message.clone();
            async move {
                c.sign(key_id, &message, hash)
                    .await
                    .map(|(signature, _)| signature)
            }
        })
    }
}

impl Bridge {
    /// Encrypts `plaintext` with a split-AES key (see [`vhsm_client::Client::encrypt`]): the ciphertext blob.
    pub fn encrypt(
        &self,
        key_id: KeyId,
        plaintext: Zeroizing<Vec<u8>>,
        aad: Vec<u8>,
    ) -> CkResult<Vec<u8>> {
        let (plaintext, aad) = (Arc::new(plaintext), Arc::new(aad));
        self.call(SIGN_TIMEOUT, true, move |c| {
            let (plaintext, aad) = (plaintext.clone(), aad.clone());
            async move { c.encrypt(key_id, &plaintext, &aad).await }
        })
    }

    /// Decrypts a ciphertext blob (see [`vhsm_client::Client::decrypt`]).
    pub fn decrypt(&self, blob: Vec<u8>, aad: Vec<u8>) -> CkResult<Zeroizing<Vec<u8>>> {
        let (blob, aad) = (Arc::new(blob), Arc::new(aad));
        self.call(SIGN_TIMEOUT, true, move |c| {
            let (blob, aad) = (blob.clone(), aad.clone());
            async move {
                c.decrypt(&blob, &aad)
                    .await
                    .map(|p| Zeroizing::new(p.expose().to_vec()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vhsm_client::WireError;

    #[test]
    fn error_mapping() {
        let service = |kind| ClientError::Service(WireError::new(kind, "x"));
        assert_eq!(
            map_error(&service(ErrorKind::PinIncorrect)),
            CKR_PIN_INCORRECT
        );
        assert_eq!(map_error(&service(ErrorKind::PinLocked)), CKR_PIN_LOCKED);
        assert_eq!(
            map_error(&service(ErrorKind::NotLoggedIn)),
            CKR_USER_NOT_LOGGED_IN
        );
        assert_eq!(
            map_error(&service(ErrorKind::Unavailable)),
            CKR_DEVICE_ERROR
        );
        assert_eq!(
            map_error(&ClientError::Timeout(QUICK_TIMEOUT)),
            CKR_DEVICE_ERROR
        );
        // The application's data, refused by kind (never by the words).
        assert_eq!(
            map_error(&service(ErrorKind::InvalidData)),
            CKR_DATA_INVALID
        );
        assert_eq!(
            map_error(&service(ErrorKind::InvalidCiphertext)),
            CKR_ENCRYPTED_DATA_INVALID
        );
        assert_eq!(
            map_error(&service(ErrorKind::BadRequest)),
            CKR_FUNCTION_FAILED
        );
        assert_eq!(
            map_error(&ClientError::TooLarge {
                what: "message to sign",
                size: 2 << 20,
                limit: 1 << 20,
                advice: "",
            }),
            CKR_DATA_LEN_RANGE
        );
    }

    #[test]
    fn unreachable_coordinator_fails_fast() {
        // Nothing listens on this port (and the certificate files do not exist): the error comes at once,
        // well within the bounds.
        let config = ClientConfig {
            coordinator: "127.0.0.1:9".into(),
            ca_cert: "/nonexistent/ca.pem".into(),
            cert: "/nonexistent/c.pem".into(),
            key: "/nonexistent/k.pem".into(),
            request_timeout_secs: 60,
        };
        for threaded in [true, false] {
            let bridge = Bridge::new(config.clone(), threaded).unwrap();
            let start = std::time::Instant::now();
            assert!(bridge.token_info().is_err());
            assert!(start.elapsed() < vhsm_client::CONNECT_TIMEOUT + Duration::from_secs(2));
        }
    }
}
