//! The client API's request handlers, one module per area, as methods of [`crate::server::Coordinator`]:
//! `Coordinator::handle` dispatches each request to its handler, which checks who may ask and calls the services
//! (`keygen`, `signing`, `encryption`, `reshare`, `registry`, …).
//!
//! Adding a request: its variant in `vhsm_wire::client_api` (with its audit name there), its handler here, its
//! line in `Coordinator::handle`, and its call in `vhsm-client` (see CONTRIBUTING.md).

mod cluster;
mod encryption;
mod keys;
mod objects;
mod session;
mod signing;
