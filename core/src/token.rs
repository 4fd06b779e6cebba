//! The PKCS#11 token the cluster presents: its PINs and description.

use serde::{Deserialize, Serialize};

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
    /// Failed user logins since the last success.
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
