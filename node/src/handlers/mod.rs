//! The node's request handlers, one module per area. Each handles the requests of its area as methods of
//! [`crate::node::Node`]; `Node::handle` dispatches to them after the request was audited.
//!
//! Adding a request: its variant in `vhsm_wire::node_api` (with its audit name there), its handler here, its
//! line in `Node::handle`, and the coordinator's call (see CONTRIBUTING.md).

mod audit;
mod backup;
mod cluster;
mod encryption;
mod keys;
mod objects;
mod pins;
mod reshare;
mod signing;
