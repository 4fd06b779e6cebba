//! The vHSM coordinator: presents the cluster to applications and runs each operation across the nodes.
//!
//! - [`nodes`]: one connection per node, with bounded timeouts and a record of which nodes failed lately.
//! - [`registry`]: the coordinator's cached view of the keys, learned from the nodes (the source of truth).
//! - [`keygen`] and [`signing`]: the orchestration of distributed key generation and threshold signing, with
//!   blame: a node that sends an invalid share is named and left out, and the operation retried with others.
//! - [`encryption`]: split-AES encryption and decryption, with blame on invalid partial evaluations.
//! - [`keys`]: changing a key's label and attributes, and destroying a key on every holder.
//! - [`membership`]: the cluster's membership (nodes, threshold of new keys): saved, changed by the security
//!   officer, given to every node.
//! - [`reshare`]: refresh, new committee or repair of a key's shares, staged then committed (crash-safe).
//! - [`node_backup`]: unsealing a sealed node; a node's backup, and its restore checked against the cluster's
//!   epochs.
//! - [`objects`]: certificates and data objects, kept on every node.
//! - [`token`]: the PKCS#11 token's label, and logins whose PINs the nodes check and count (no PIN hash here).
//! - [`server`]: the client API over QUIC with mutual TLS.
//! - [`audit`]: who asked, told to the nodes for their audit logs.
//!
//! The coordinator never holds a share or a whole key: it sees only public keys, commitments and signature shares.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admission;
pub mod audit;
pub mod config;
pub mod encryption;
pub mod error;
pub mod faults;
mod handlers;
pub mod keygen;
pub mod keys;
pub mod membership;
pub mod node_backup;
pub mod nodes;
pub mod objects;
pub mod registry;
pub mod reshare;
pub mod server;
pub mod signing;
pub mod token;

pub use config::CoordinatorConfig;
pub use error::Error;
