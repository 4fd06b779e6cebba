//! The token the coordinator presents to PKCS#11 applications: its label, and the user and security-officer PINs
//! with their lockout.
//!
//! PINs are kept only as Argon2id hashes in the coordinator's configuration (written by `vhsm init`). A connection
//! logs in once; every request that uses or changes keys or objects needs a logged-in connection. After
//! `max_pin_failures` wrong PINs in a row the PIN locks: every later login is refused, right PIN or not.
//!
//! Known limit: the failure counters live in the coordinator's memory, so restarting the coordinator (or asking
//! another coordinator) resets them.

use std::sync::Mutex;

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use serde::{Deserialize, Serialize};
use vhsm_core::{PinUser, TokenInfo};

use crate::error::Error;

/// The `[token]` section of the coordinator's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The token's label (at most 32 characters, as PKCS#11 shows it).
    pub label: String,
    /// A serial number for this cluster (at most 16 characters).
    pub serial: String,
    /// Argon2id hash (PHC string) of the user PIN.
    pub user_pin_hash: String,
    /// Argon2id hash (PHC string) of the security officer's PIN.
    pub so_pin_hash: String,
    /// Wrong PINs in a row before a PIN locks.
    #[serde(default = "default_max_failures")]
    pub max_pin_failures: u32,
}

fn default_max_failures() -> u32 {
    5
}

/// Shortest PIN accepted.
pub const MIN_PIN_LEN: usize = 4;
/// Longest PIN accepted.
pub const MAX_PIN_LEN: usize = 64;

/// Hashes a PIN for the configuration.
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

#[derive(Debug, Default)]
struct Failures {
    user: u32,
    so: u32,
}

/// The token and its PIN state.
#[derive(Debug)]
pub struct Token {
    config: TokenConfig,
    failures: Mutex<Failures>,
}

impl Token {
    /// The token described by `config`. Checks that the PIN hashes parse.
    pub fn new(config: TokenConfig) -> Result<Self, String> {
        for (what, hash) in [
            ("user_pin_hash", &config.user_pin_hash),
            ("so_pin_hash", &config.so_pin_hash),
        ] {
            PasswordHash::new(hash)
                .map_err(|e| format!("[token] {what} is not an Argon2 PHC string: {e}"))?;
        }
        Ok(Token {
            config,
            failures: Mutex::new(Failures::default()),
        })
    }

    /// The token's description and PIN state.
    pub fn info(&self) -> TokenInfo {
        let (user, so) = self
            .failures
            .lock()
            .map(|f| (f.user, f.so))
            .unwrap_or((u32::MAX, u32::MAX));
        let max = self.config.max_pin_failures;
        TokenInfo {
            label: self.config.label.clone(),
            serial: self.config.serial.clone(),
            user_pin_failures: user,
            user_pin_locked: user >= max,
            so_pin_locked: so >= max,
            max_pin_failures: max,
            min_pin_len: MIN_PIN_LEN as u32,
            max_pin_len: MAX_PIN_LEN as u32,
        }
    }

    /// Checks a PIN, counting failures; a locked PIN is refused without being checked.
    pub fn login(&self, user: PinUser, pin: &[u8]) -> Result<(), Error> {
        let max = self.config.max_pin_failures;
        let hash = match user {
            PinUser::User => &self.config.user_pin_hash,
            PinUser::SecurityOfficer => &self.config.so_pin_hash,
        };
        let count = |f: &mut Failures| -> u32 {
            match user {
                PinUser::User => f.user,
                PinUser::SecurityOfficer => f.so,
            }
        };
        {
            let mut f = self.failures.lock().map_err(|_| internal())?;
            if count(&mut f) >= max {
                return Err(Error::PinLocked(
                    "the PIN is locked after too many wrong PINs".into(),
                ));
            }
        }
        // Verified outside the lock: Argon2 takes tens of milliseconds on purpose.
        let ok = PasswordHash::new(hash)
            .map(|parsed| Argon2::default().verify_password(pin, &parsed).is_ok())
            .unwrap_or(false);
        let mut f = self.failures.lock().map_err(|_| internal())?;
        let slot = match user {
            PinUser::User => &mut f.user,
            PinUser::SecurityOfficer => &mut f.so,
        };
        if ok && *slot < max {
            *slot = 0;
            return Ok(());
        }
        if *slot >= max {
            return Err(Error::PinLocked(
                "the PIN is locked after too many wrong PINs".into(),
            ));
        }
        *slot += 1;
        let left = max - *slot;
        tracing::warn!(user = ?user, failures = *slot, left, "wrong PIN");
        if left == 0 {
            tracing::error!(user = ?user, "PIN LOCKED after {max} wrong PINs in a row");
            return Err(Error::PinLocked("wrong PIN; the PIN is now locked".into()));
        }
        Err(Error::PinIncorrect(format!(
            "wrong PIN ({left} tries left before it locks)"
        )))
    }
}

fn internal() -> Error {
    Error::Internal("PIN state unavailable".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vhsm_wire::ErrorKind;

    fn token() -> Token {
        Token::new(TokenConfig {
            label: "vHSM".into(),
            serial: "0001".into(),
            user_pin_hash: hash_pin(b"123456").unwrap(),
            so_pin_hash: hash_pin(b"so-secret").unwrap(),
            max_pin_failures: 3,
        })
        .unwrap()
    }

    #[test]
    fn right_pin_logs_in_wrong_pins_lock() {
        let t = token();
        t.login(PinUser::User, b"123456").unwrap();
        assert_eq!(
            t.login(PinUser::User, b"000000").unwrap_err().kind(),
            ErrorKind::PinIncorrect
        );
        // A success resets the count.
        t.login(PinUser::User, b"123456").unwrap();
        assert_eq!(
            t.login(PinUser::User, b"1").unwrap_err().kind(),
            ErrorKind::PinIncorrect
        );
        assert_eq!(
            t.login(PinUser::User, b"2").unwrap_err().kind(),
            ErrorKind::PinIncorrect
        );
        assert_eq!(
            t.login(PinUser::User, b"3").unwrap_err().kind(),
            ErrorKind::PinLocked
        );
        assert!(t.info().user_pin_locked);
        // Locked: even the right PIN is refused. The SO PIN is separate.
        assert_eq!(
            t.login(PinUser::User, b"123456").unwrap_err().kind(),
            ErrorKind::PinLocked
        );
        t.login(PinUser::SecurityOfficer, b"so-secret").unwrap();
        assert!(!t.info().so_pin_locked);
    }

    #[test]
    fn pin_length_is_checked_when_hashing() {
        assert!(hash_pin(b"123").is_err());
        assert!(hash_pin(&[b'1'; 65]).is_err());
    }
}
