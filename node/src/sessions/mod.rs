//! The protocol sessions a node takes part in.
//!
//! - [`driver`]: runs any sans-IO protocol over the [`crate::mesh`] with the other members of a session.
//! - [`keygen`]: distributed key generation with the other holders (FROST or threshold ECDSA).
//! - [`signing`]: the node's half of FROST signing, with its single-use nonces.
//! - [`ecdsa_signing`]: threshold-ECDSA signing with the other signers.
//! - [`reshare`]: refresh, new committee or repair of a key's shares, staged until the coordinator commits.
//!
//! A session that fails says why with a [`SessionError`], which names the nodes concerned (the culprits of a
//! protocol abort, the peers it could not reach).

pub mod driver;
pub mod ecdsa_signing;
mod error;
pub mod keygen;
pub mod reshare;
pub mod signing;

pub use error::SessionError;
