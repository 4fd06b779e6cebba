//! # vhsm-core: the vHSM's domain model
//!
//! The types every other crate speaks, with the rules that belong to them and nothing else: no I/O, no protocol
//! arithmetic, no network. A newcomer reads this crate first.
//!
//! - [`ids`]: node, key and object ids.
//! - [`algorithm`]: the key algorithms and ECDSA curves.
//! - [`key`]: a key's public description ([`KeyInfo`]), its lifecycle states (NIST SP 800-57) and what each allows.
//! - [`object`]: certificates and data objects kept on the token.
//! - [`membership`]: the cluster's nodes and the threshold of new keys.
//! - [`approval`]: the security officer's signed approval of a change of a key's holders or threshold.
//! - [`token`]: the PKCS#11 token's PINs and description.
//! - [`digest`]: how a message becomes the 32-byte value threshold ECDSA signs.
//! - [`backup`]: a node backup file's layout and readable header.
//! - [`ciphertext`]: the split-AES ciphertext blob's format (its sealing is `vhsm-protocols`').
//! - [`secret`]: [`SecretBytes`], bytes that zeroize on drop and never print.
//! - [`limits`]: sizes and time limits every layer agrees on.
//! - [`time`]: times as RFC 3339.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

pub mod algorithm;
pub mod approval;
pub mod backup;
pub mod ciphertext;
pub mod digest;
pub mod ids;
pub mod key;
pub mod limits;
pub mod membership;
pub mod object;
pub mod secret;
pub mod time;
pub mod token;

pub use algorithm::{Algorithm, EcdsaCurve};
pub use approval::ChangeApproval;
pub use digest::HashAlg;
pub use ids::{KeyId, NodeId, ObjectId};
pub use key::{usage, KeyInfo, KeyState, KeyUse};
pub use membership::{MemberEntry, Membership};
pub use object::StoredObject;
pub use secret::SecretBytes;
pub use token::{PinUser, TokenInfo};
