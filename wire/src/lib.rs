//! What crosses the vHSM network, and how. Not the disk format: a node's records are its own (`vhsm-node`).
//!
//! - [`client_api`]: what clients ask the coordinator; [`node_api`]: what the coordinator asks a node; [`mesh`]:
//!   the protocol messages nodes send each other. Each framed with a version ([`frame`]); [`error`]: the failure
//!   that crosses the wire. The domain types the messages carry (keys, membership, …) are `vhsm-core`'s.
//! - [`identity`] and [`pki`]: who a peer is. Every certificate is issued by the cluster CA and names its role
//!   (node, coordinator or client) in its subject alternative name; the role decides which requests a peer may make.
//! - [`tls`]: QUIC endpoints with mutual TLS 1.3, pinned to the cluster CA; [`accept`]: the accepting loop.
//!
//! The node API and the mesh carry protocol messages, so they need `vhsm-protocols`; they are behind the
//! `cluster` feature, which only the node and the coordinator enable. A client (the PKCS#11 module) links no
//! protocol code.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod accept;
pub mod client_api;
pub mod error;
pub mod frame;
pub mod identity;
#[cfg(feature = "cluster")]
pub mod mesh;
#[cfg(feature = "cluster")]
pub mod node_api;
pub mod pki;
pub mod tls;

pub use error::{ErrorKind, WireError};
pub use identity::Role;
pub use vhsm_core::NodeId;
