//! The PKCS#11 token the cluster presents: its PINs and description.
//!
//! The PINs are checked by the nodes, each against the Argon2id hashes in its own configuration and with its own
//! failure counter (see the node's `pins` module); the coordinator presents what enough of them agree on.

use serde::{Deserialize, Serialize};

/// Shortest PIN accepted.
pub const MIN_PIN_LEN: usize = 4;
/// Longest PIN accepted (a longer one is a wrong PIN, refused without being hashed).
pub const MAX_PIN_LEN: usize = 64;

/// Which PIN a login presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PinUser {
    /// The token's user (CKU_USER): may use and manage keys.
    User,
    /// The security officer (CKU_SO).
    SecurityOfficer,
}

/// The token the coordinator presents (PKCS#11 `CK_TOKEN_INFO`, in part).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's label.
    pub label: String,
    /// A serial number identifying this cluster.
    pub serial: String,
    /// Failed user logins since the last success (as enough nodes count them: see the coordinator's `token`).
    pub user_pin_failures: u32,
    /// Whether the user PIN is locked (too many failures).
    pub user_pin_locked: bool,
    /// Whether the SO PIN is locked.
    pub so_pin_locked: bool,
    /// Failures allowed before a PIN locks.
    pub max_pin_failures: u32,
    /// Shortest PIN accepted.
    pub min_pin_len: u32,
    /// Longest PIN accepted.
    pub max_pin_len: u32,
}
