//! The protocol sessions a node takes part in.
//!
//! - [`keygen`]: distributed key generation with the other holders, over the [`crate::mesh`].
//! - [`signing`]: the node's half of FROST signing, with its single-use nonces.

pub mod keygen;
pub mod signing;
