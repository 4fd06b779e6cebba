//! The token's PINs on a node: each node checks a login's PIN itself and keeps its own failure counters, so that
//! no coordinator holds the PIN hashes or the counters (issue 14, item 11).
//!
//! # Where things are
//!
//! - The **hashes** (Argon2id PHC strings, [`hash_pin`]) and the lockout limit are configuration: the `[token]`
//!   section of `node.toml` ([`crate::config::PinConfig`]), written by `vhsm init` the same into every node's file
//!   and copied by `vhsm node add` from an existing node's. Configuration rather than a sealed record, because it
//!   must be in place before the node ever ran (a new node, a repaired node whose data directory was replaced),
//!   and the operator's cluster directory is where it comes from; a stolen node disk therefore gives the hashes to
//!   offline guessing, as a stolen `coordinator.toml` did before (see `THREAT-MODEL.md`).
//! - The **failure counters** are state: one sealed record per PIN in the share store (table `pin_counters`,
//!   record kind `PinCounter`, [`crate::records::PinCounterRecordV1`]), each change one store transaction, so the
//!   store's generation, audit head and records digest cover it (a counter put back from an older copy of the
//!   file is refused at unseal, like any record). A sealed node has no store open and refuses every check.
//!
//! # One check ([`crate::node::Node`]'s `check_pin`, `handlers/pins.rs`)
//!
//! 1. **Count first** ([`reserve`], one transaction): a PIN locked on this node is refused (`PinLocked`) without
//!    being checked; a counter already at the limit (checks still running count) is refused the same way;
//!    otherwise the failure counter goes up by one *before* the PIN is hashed. So a check is a failure until it is
//!    found right: concurrent guesses cannot run more than `max_pin_failures` hashes between two right PINs, and a
//!    node stopped (or killed) in the middle of a check has counted it.
//! 2. **Hash**: Argon2id verification, off the async threads (it takes tens of milliseconds on purpose). A PIN
//!    shorter than [`vhsm_core::token::MIN_PIN_LEN`] or longer than [`vhsm_core::token::MAX_PIN_LEN`] is wrong
//!    without being hashed.
//! 3. **Settle** ([`settle`], one transaction): the right PIN resets the counter (unless the PIN was locked
//!    meanwhile, when it is refused) — to zero, or, if other checks started while it was being hashed, to their
//!    count: a right PIN forgives the failures before it, not guesses made beside it; a wrong one stays counted,
//!    and the one that brings the counter to the limit locks the PIN on this node for good — there is no unlock:
//!    a locked PIN stays locked whatever the configuration says later.
//!
//! The node's audit log records every check (`check-pin`: the attempt before step 1, the outcome after step 3,
//! with who asked), never the PIN: the entry's input is a digest of the PIN user alone.
//!
//! The coordinator logs a client in only if the cluster's threshold t of nodes accept the PIN (see the
//! coordinator's `token` module); each node's refusal counts on that node.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use vhsm_core::{
    token::{MAX_PIN_LEN, MIN_PIN_LEN},
    PinUser,
};
use vhsm_wire::node_api::PinCounter;

/// Hashes a PIN for the configuration (Argon2id with the crate's default parameters: 19 MiB, 2 passes, 1 lane;
/// a fresh random salt). Refuses a PIN of the wrong length.
pub fn hash_pin(pin: &[u8]) -> Result<String, String> {
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.len()) {
        return Err(format!(
            "a PIN must have {MIN_PIN_LEN} to {MAX_PIN_LEN} characters"
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pin, &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the PIN: {e}"))
}

/// Parses a PIN hash: an Argon2id PHC string.
pub fn parse_hash(hash: &str) -> Result<PasswordHash<'_>, String> {
    let parsed = PasswordHash::new(hash).map_err(|e| format!("not an Argon2 PHC string: {e}"))?;
    if parsed.algorithm != argon2::Algorithm::Argon2id.ident() {
        return Err(format!(
            "an {} hash; PIN hashes are Argon2id",
            parsed.algorithm
        ));
    }
    Ok(parsed)
}

/// Whether `pin` matches `hash` (constant time in the PIN, as Argon2 is). Slow on purpose: call it off the async
/// threads. A PIN of a length no PIN has, or a hash that does not parse, never matches.
pub fn verify(hash: &str, pin: &[u8]) -> bool {
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.len()) {
        return false;
    }
    parse_hash(hash).is_ok_and(|parsed| Argon2::default().verify_password(pin, &parsed).is_ok())
}

/// The words for a PIN: `user PIN`, `security officer's PIN`.
pub fn pin_name(user: PinUser) -> &'static str {
    match user {
        PinUser::User => "user PIN",
        PinUser::SecurityOfficer => "security officer's PIN",
    }
}

/// What step 1 of a check decided (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// Counted: hash the PIN now.
    Counted,
    /// Refused without hashing: the PIN is locked on this node, or its counter is at the limit already (checks
    /// still running count).
    Locked,
}

/// Step 1: the counter after counting a check that starts now, or `None` to refuse it (unchanged).
pub fn reserve(counter: PinCounter, max_failures: u32) -> Option<PinCounter> {
    if counter.locked || counter.failures >= max_failures {
        return None;
    }
    Some(PinCounter {
        failures: counter.failures.saturating_add(1),
        locked: false,
    })
}

/// What a check decided in the end (step 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The right PIN: the failures before it are forgiven.
    Accepted,
    /// A wrong PIN, counted: `failures` of the limit now.
    Incorrect {
        /// Wrong PINs in a row now.
        failures: u32,
    },
    /// A wrong PIN that brought the counter to the limit: the PIN is locked on this node now.
    LockedNow,
    /// The right PIN, but the PIN was locked on this node while it was being checked.
    Locked,
}

/// Step 3: the counter after a check found the PIN `right` (`None`: unchanged), and what the check decided.
/// `counted_before` is the failure count its step 1 found (before it counted itself).
///
/// The right PIN forgives the failures counted before it started and its own count, not those of checks that
/// started while it was being hashed (they are still running, or were found wrong meanwhile): the counter goes
/// down by `counted_before + 1`, so it is zero unless checks ran concurrently.
pub fn settle(
    counter: PinCounter,
    max_failures: u32,
    right: bool,
    counted_before: u32,
) -> (Option<PinCounter>, Outcome) {
    match (right, counter.locked) {
        (_, true) => (None, Outcome::Locked),
        (true, false) => (
            Some(PinCounter {
                failures: counter
                    .failures
                    .saturating_sub(counted_before.saturating_add(1)),
                locked: false,
            }),
            Outcome::Accepted,
        ),
        (false, false) if counter.failures >= max_failures => (
            Some(PinCounter {
                failures: counter.failures,
                locked: true,
            }),
            Outcome::LockedNow,
        ),
        (false, false) => (
            None,
            Outcome::Incorrect {
                failures: counter.failures,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_verify_and_lengths_are_checked() {
        let hash = hash_pin(b"123456").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify(&hash, b"123456"));
        assert!(!verify(&hash, b"123457"));
        assert!(!verify("not a hash", b"123456"));
        assert!(hash_pin(b"123").is_err());
        assert!(hash_pin(&[b'1'; 65]).is_err());
        // An Argon2i hash is not taken.
        let argon2i = argon2::Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::default(),
        )
        .hash_password(b"123456", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(parse_hash(&argon2i).unwrap_err().contains("Argon2id"));
    }

    fn counter(failures: u32, locked: bool) -> PinCounter {
        PinCounter { failures, locked }
    }

    #[test]
    fn a_check_counts_before_hashing_and_settles_after() {
        let max = 3;
        // Counted first; the right PIN resets, a wrong one stays counted.
        assert_eq!(reserve(counter(0, false), max), Some(counter(1, false)));
        assert_eq!(
            settle(counter(1, false), max, true, 0),
            (Some(counter(0, false)), Outcome::Accepted)
        );
        assert_eq!(
            settle(counter(2, false), max, false, 1),
            (None, Outcome::Incorrect { failures: 2 })
        );
        // A right PIN found at 3 (1 before it) while a guess started beside it: the guess stays counted.
        assert_eq!(
            settle(counter(3, false), max, true, 1),
            (Some(counter(1, false)), Outcome::Accepted)
        );
        // The wrong PIN that reaches the limit locks; then nothing is checked.
        assert_eq!(
            settle(counter(3, false), max, false, 2),
            (Some(counter(3, true)), Outcome::LockedNow)
        );
        assert_eq!(reserve(counter(3, true), max), None);
        // Checks in flight up to the limit: the next is refused unhashed.
        assert_eq!(reserve(counter(3, false), max), None);
        // Locked while a right PIN was being checked: refused, and still locked.
        assert_eq!(
            settle(counter(3, true), max, true, 2),
            (None, Outcome::Locked)
        );
    }
}
