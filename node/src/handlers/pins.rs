//! The token's PINs: checking a login's PIN against this node's own hash, with this node's own failure counter
//! (see [`crate::pins`] for where things are and the three steps of a check), and the counters as they are.

use vhsm_core::{PinUser, SecretBytes};
use vhsm_wire::node_api::{NodeResponse, PinState};

use crate::{
    config::PinConfig,
    error::ServiceError,
    node::{blocking, Node},
    pins::{self, Outcome},
};

/// The turns of Argon2id PIN checks on this node: as many at once as it has cores.
fn argon2_turns() -> &'static tokio::sync::Semaphore {
    static TURNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    TURNS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from))
    })
}

impl Node {
    /// The `[token]` section, or [`ServiceError::NoPinConfig`].
    fn pin_config(&self) -> Result<&PinConfig, ServiceError> {
        self.pins
            .as_ref()
            .ok_or(ServiceError::NoPinConfig { node: self.id })
    }

    /// `CheckPin`: counts the check, hashes the PIN off the async threads, settles the counter (see
    /// [`crate::pins`]). `Ok` for the right PIN; [`ServiceError::PinIncorrect`] or [`ServiceError::PinLocked`]
    /// otherwise. The PIN is zeroized when it is dropped, and is never logged.
    pub(crate) async fn check_pin(
        &self,
        user: PinUser,
        pin: SecretBytes,
    ) -> Result<NodeResponse, ServiceError> {
        if let Some(answer) = self.lie_about_pin(user) {
            return answer;
        }
        let config = self.pin_config()?;
        let max = config.max_pin_failures;
        let hash = match user {
            PinUser::User => config.user_pin_hash.clone(),
            PinUser::SecurityOfficer => config.so_pin_hash.clone(),
        };
        let locked = |now| ServiceError::PinLocked {
            node: self.id,
            user,
            max,
            now,
        };
        // 1. Counted before it is checked.
        let store = self.store()?.clone();
        let (before, after) =
            blocking(move || store.update_pin_counter(user, |c| pins::reserve(c, max))).await?;
        if after == before {
            tracing::warn!(
                node = self.id,
                ?user,
                "PIN check refused: the PIN is locked on this node"
            );
            return Err(locked(false));
        }
        // 2. Argon2id takes tens of milliseconds and 19 MiB on purpose: one check per core at a time, the others
        //    waiting their turn — a crowd of logins neither takes the node's memory (19 MiB each) nor slows every
        //    check down together until each times out. The failure is counted already (step 1).
        let _turn = argon2_turns().acquire().await.ok();
        let right = tokio::task::spawn_blocking(move || pins::verify(&hash, pin.expose()))
            .await
            .map_err(|source| ServiceError::TaskFailed {
                task: "PIN check",
                source,
            })?;
        // 3. Settled: the right PIN resets the counter, a wrong one stays counted and may lock.
        let store = self.store()?.clone();
        let outcome = blocking(move || {
            let mut outcome = Outcome::Locked;
            store.update_pin_counter(user, |c| {
                let (next, decided) = pins::settle(c, max, right, before.failures);
                outcome = decided;
                next
            })?;
            Ok(outcome)
        })
        .await?;
        match outcome {
            Outcome::Accepted => Ok(NodeResponse::Ok),
            Outcome::Incorrect { failures } => {
                tracing::warn!(node = self.id, ?user, failures, max, "wrong PIN");
                Err(ServiceError::PinIncorrect {
                    node: self.id,
                    user,
                    failures,
                    max,
                })
            }
            Outcome::LockedNow => {
                tracing::error!(
                    node = self.id,
                    ?user,
                    "PIN LOCKED on this node after {max} wrong PINs in a row"
                );
                Err(locked(true))
            }
            Outcome::Locked => Err(locked(false)),
        }
    }

    /// `PinState`: this node's failure counters and its limit.
    pub(crate) async fn pin_state(&self) -> Result<NodeResponse, ServiceError> {
        let max_failures = self.pin_config()?.max_pin_failures;
        let store = self.store()?.clone();
        let (user, security_officer) = blocking(move || {
            Ok((
                store.pin_counter(PinUser::User)?,
                store.pin_counter(PinUser::SecurityOfficer)?,
            ))
        })
        .await?;
        Ok(NodeResponse::PinState(PinState {
            user,
            security_officer,
            max_failures,
        }))
    }

    /// Fault injection: the answer of a node that accepts every PIN, or refuses every PIN, without checking or
    /// counting it.
    #[cfg(feature = "fault-injection")]
    fn lie_about_pin(&self, user: PinUser) -> Option<Result<NodeResponse, ServiceError>> {
        if self.faults.accept_any_pin {
            tracing::warn!("fault injection: accepted a PIN without checking it");
            return Some(Ok(NodeResponse::Ok));
        }
        if self.faults.refuse_every_pin {
            tracing::warn!("fault injection: refused a PIN without checking it");
            return Some(Err(ServiceError::PinIncorrect {
                node: self.id,
                user,
                failures: 1,
                max: self.pins.as_ref().map_or(1, |p| p.max_pin_failures),
            }));
        }
        None
    }

    #[cfg(not(feature = "fault-injection"))]
    fn lie_about_pin(&self, _user: PinUser) -> Option<Result<NodeResponse, ServiceError>> {
        None
    }
}

#[cfg(test)]
mod tests {
    //! Issue 14, item 11: a node checks PINs with its own counter, kept in its sealed store across restarts, and
    //! records every check (never the PIN); a sealed node or one without `[token]` refuses, typed.
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::sync::Arc;

    use vhsm_wire::{
        node_api::{NodeRequest, PinCounter},
        ErrorKind, WireError,
    };

    use super::*;
    use crate::{
        config::NodeConfig,
        node::tests::{audit_path, config, open},
    };

    const USER_PIN: &[u8] = b"246810";
    const SO_PIN: &[u8] = b"so-pin-13579";

    fn with_token(dir: &std::path::Path, max: u32) -> NodeConfig {
        let mut config = config(dir);
        config.token = Some(PinConfig {
            user_pin_hash: pins::hash_pin(USER_PIN).unwrap(),
            so_pin_hash: pins::hash_pin(SO_PIN).unwrap(),
            max_pin_failures: max,
        });
        config
    }

    async fn check(node: &Arc<Node>, user: PinUser, pin: &[u8]) -> Result<(), WireError> {
        match node
            .answer(NodeRequest::CheckPin {
                user,
                pin: SecretBytes::new(pin.to_vec()),
            })
            .await
        {
            NodeResponse::Ok => Ok(()),
            NodeResponse::Error(e) => Err(e),
            other => panic!("unexpected answer {other:?}"),
        }
    }

    async fn state(node: &Arc<Node>) -> PinState {
        match node.answer(NodeRequest::PinState).await {
            NodeResponse::PinState(state) => state,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    fn kind(result: Result<(), WireError>) -> ErrorKind {
        result.unwrap_err().kind
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_counts_resets_and_locks_and_keeps_its_counters_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = with_token(dir.path(), 3);
        {
            let node = open(&config).unwrap();
            check(&node, PinUser::User, USER_PIN).await.unwrap();
            let e = check(&node, PinUser::User, b"nope-000").await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::PinIncorrect);
            assert!(
                e.message.contains("node 1") && e.message.contains("1 of 3"),
                "{e}"
            );
            // The right PIN resets the count; the SO PIN has a counter of its own.
            check(&node, PinUser::User, USER_PIN).await.unwrap();
            assert_eq!(state(&node).await.user, PinCounter::default());
            assert_eq!(
                kind(check(&node, PinUser::User, b"nope-111").await),
                ErrorKind::PinIncorrect
            );
            assert_eq!(
                kind(check(&node, PinUser::SecurityOfficer, USER_PIN).await),
                ErrorKind::PinIncorrect
            );
            let s = state(&node).await;
            assert_eq!(
                (s.user.failures, s.security_officer.failures, s.max_failures),
                (1, 1, 3)
            );
            // A PIN of a length no PIN has is a wrong PIN, counted.
            assert_eq!(
                kind(check(&node, PinUser::User, &[b'1'; 65]).await),
                ErrorKind::PinIncorrect
            );
        }
        // Restarted: the counter is what it was.
        let node = open(&config).unwrap();
        assert_eq!(
            state(&node).await.user,
            PinCounter {
                failures: 2,
                locked: false
            }
        );
        // The third wrong PIN in a row locks; then even the right PIN is refused, unchecked, before and after a
        // restart, whatever the configured limit says then.
        let e = check(&node, PinUser::User, b"nope-222").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::PinLocked);
        assert!(e.message.contains("now locked"), "{e}");
        assert_eq!(
            kind(check(&node, PinUser::User, USER_PIN).await),
            ErrorKind::PinLocked
        );
        drop(node);
        let mut raised = config.clone();
        raised.token.as_mut().unwrap().max_pin_failures = 10;
        let node = open(&raised).unwrap();
        let s = state(&node).await;
        assert_eq!(
            (s.user, s.max_failures),
            (
                PinCounter {
                    failures: 3,
                    locked: true
                },
                10
            )
        );
        assert_eq!(
            kind(check(&node, PinUser::User, USER_PIN).await),
            ErrorKind::PinLocked
        );
        // The SO PIN is not locked with it.
        check(&node, PinUser::SecurityOfficer, SO_PIN)
            .await
            .unwrap();

        // Every check is in the audit log, with its outcome; no PIN (nor a digest of one) is.
        let log = std::fs::read_to_string(audit_path(dir.path())).unwrap();
        let checks: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["op"] == "check-pin")
            .collect();
        let results: Vec<&str> = checks
            .iter()
            .filter(|e| e["result"] != "attempt")
            .map(|e| e["result"].as_str().unwrap())
            .collect();
        assert_eq!(results.len(), 10, "{results:?}");
        assert_eq!(checks.len(), 20, "an attempt entry before every check");
        assert_eq!(results.iter().filter(|r| **r == "ok").count(), 3);
        assert_eq!(
            results
                .iter()
                .filter(|r| r.starts_with("error PinIncorrect"))
                .count(),
            4
        );
        assert_eq!(
            results
                .iter()
                .filter(|r| r.starts_with("error PinLocked"))
                .count(),
            3
        );
        use sha2::{Digest, Sha256};
        for pin in [USER_PIN, SO_PIN, b"nope-000", b"nope-111", b"nope-222"] {
            let text = String::from_utf8_lossy(pin);
            assert!(!log.contains(&*text), "{text} in the log");
            let wrapped = postcard::to_allocvec(&NodeRequest::CheckPin {
                user: PinUser::User,
                pin: SecretBytes::new(pin.to_vec()),
            })
            .unwrap();
            assert!(!log.contains(&hex::encode(Sha256::digest(&wrapped))));
        }
    }

    /// Concurrent guesses cannot run more hashes than the limit: each check is counted before it is hashed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_guesses_are_counted_before_they_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(&with_token(dir.path(), 3)).unwrap();
        let guesses: Vec<_> = (0..12)
            .map(|i| {
                let node = node.clone();
                tokio::spawn(async move {
                    check(
                        &node,
                        PinUser::User,
                        format!("{:06}", 900_000 + i).as_bytes(),
                    )
                    .await
                })
            })
            .collect();
        let mut incorrect = 0;
        for guess in guesses {
            match guess.await.unwrap().unwrap_err().kind {
                ErrorKind::PinIncorrect => incorrect += 1,
                ErrorKind::PinLocked => {}
                other => panic!("{other:?}"),
            }
        }
        // At most two refused as wrong before the third locked: no more than three were hashed.
        assert!(incorrect <= 2, "{incorrect} refused as wrong");
        assert_eq!(
            state(&node).await.user,
            PinCounter {
                failures: 3,
                locked: true
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_without_token_or_sealed_refuses_typed() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(&config(dir.path())).unwrap();
        let e = check(&node, PinUser::User, USER_PIN).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("no [token] section"), "{e}");

        // Sealed: refused, nothing counted.
        let dir = tempfile::tempdir().unwrap();
        let passphrase = b"correct horse battery staple";
        let sealed = dir.path().join("sealed.key");
        crate::seal::SealedKeyFile::write_new(
            &sealed,
            &crate::seal::StorageKey::generate(),
            passphrase,
            crate::seal::KdfParams::MINIMUM,
        )
        .unwrap();
        let (private, public) = crate::unseal::generate_key_pair();
        private.write_new(&dir.path().join("unseal.key")).unwrap();
        let mut config = with_token(dir.path(), 3);
        config.storage_key_file = None;
        config.sealed_key_file = Some(sealed);
        config.unseal_key_file = Some(dir.path().join("unseal.key"));
        let node = open(&config).unwrap();
        assert_eq!(
            kind(check(&node, PinUser::User, b"nope-000").await),
            ErrorKind::Sealed
        );
        assert!(matches!(
            node.answer(NodeRequest::PinState).await,
            NodeResponse::Error(WireError {
                kind: ErrorKind::Sealed,
                ..
            })
        ));
        let challenge = match node.answer(NodeRequest::UnsealChallenge).await {
            NodeResponse::UnsealChallenge { challenge, .. } => challenge,
            other => panic!("{other:?}"),
        };
        let envelope = public
            .seal_unseal(1, &challenge, &SecretBytes::new(passphrase.to_vec()))
            .unwrap();
        assert!(matches!(
            node.answer(NodeRequest::Unseal { envelope }).await,
            NodeResponse::Ok
        ));
        assert_eq!(state(&node).await.user, PinCounter::default());
        check(&node, PinUser::User, USER_PIN).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_retired_login_failed_note_is_refused_and_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(&with_token(dir.path(), 3)).unwrap();
        let answer = node
            .answer(NodeRequest::LoginFailed {
                user: PinUser::User,
                error: "wrong PIN".into(),
            })
            .await;
        assert!(
            matches!(&answer, NodeResponse::Error(e) if e.kind == ErrorKind::BadRequest),
            "{answer:?}"
        );
        let log = std::fs::read_to_string(audit_path(dir.path())).unwrap_or_default();
        assert!(!log.contains("login-failed"), "{log}");
    }

    #[cfg(feature = "fault-injection")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_injection_accepts_or_refuses_every_pin_unchecked() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = with_token(dir.path(), 3);
        config.fault_injection.accept_any_pin = true;
        let node = open(&config).unwrap();
        check(&node, PinUser::User, b"nope-000").await.unwrap();
        assert_eq!(state(&node).await.user, PinCounter::default());
        drop(node);
        config.fault_injection.accept_any_pin = false;
        config.fault_injection.refuse_every_pin = true;
        let node = open(&config).unwrap();
        assert_eq!(
            kind(check(&node, PinUser::User, USER_PIN).await),
            ErrorKind::PinIncorrect
        );
        assert_eq!(state(&node).await.user, PinCounter::default());
    }
}
