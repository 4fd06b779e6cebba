//! What crosses the vHSM network, and how.
//!
//! - [`messages`]: every request and response exchanged between clients, the coordinator and the nodes, defined
//!   once here and framed with a version ([`frame`]).
//! - [`identity`] and [`pki`]: who a peer is. Every certificate is issued by the cluster CA and names its role
//!   (node, coordinator or client) in its subject alternative name; the role decides which requests a peer may make.
//! - [`tls`]: QUIC endpoints with mutual TLS 1.3, pinned to the cluster CA; [`accept`]: the accepting loop.
//! - [`client`]: the client side of the coordinator's API, used by the `vhsm` CLI and (later) the PKCS#11 module,
//!   without any of the coordinator's server code.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod accept;
pub mod client;
pub mod frame;
pub mod identity;
pub mod messages;
pub mod pairwise;
pub mod pki;
pub mod tls;

pub use identity::{NodeId, Role};
pub use messages::{
    Algorithm, ErrorKind, KeyId, KeyInfo, KeyState, KeyUse, ObjectId, PinUser, StoredObject,
    TokenInfo, WireError,
};
