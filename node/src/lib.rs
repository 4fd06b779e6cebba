//! A vHSM share-holding node.
//!
//! A node keeps one share of every key in a sealed store ([`store`]), answers the coordinator's requests
//! ([`node`], with one handler module per area), is served over QUIC ([`server`]), and runs multi-party protocols
//! directly with the other nodes ([`mesh`], [`sessions`]). What it writes to disk is defined in [`records`],
//! versioned on its own. It checks the token's PINs itself and counts their failures in its sealed store
//! ([`pins`]). It never holds a whole key, and it never sends a share anywhere.
//!
//! Errors are typed ([`error`]): a request fails with a [`ServiceError`] (a session with a
//! [`sessions::SessionError`]) naming its domain values and culprits; it becomes the wire's error only where the
//! answer is made. A node that cannot start says why with a [`StartError`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod backup;
pub mod config;
pub mod error;
mod handlers;
pub mod membership;
pub mod mesh;
pub mod node;
pub mod pins;
pub mod records;
pub mod seal;
pub mod selftest;
pub mod server;
pub mod sessions;
pub mod share;
pub mod store;
pub mod unseal;

pub use config::NodeConfig;
pub use error::{ServiceError, StartError};
pub use node::Node;
pub use server::run;
