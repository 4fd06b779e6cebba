//! # vhsm-testkit: clusters for tests and benchmarks
//!
//! - [`process`]: a cluster of real `vhsm` processes on 127.0.0.1 (ports chosen by the OS), made by `vhsm init`
//!   in a temporary directory: start, kill and restart single members, inject a node's test-only faults, connect
//!   clients. The one launcher of the integration tests, the PKCS#11 module's tests and the benchmarks.
//! - [`memory`]: the whole cluster in one process with no sockets (real nodes on temporary directories, in-process
//!   mesh and coordinator transport) and one-line faults: where the coordinator's logic is tested.
//! - [`load`]: a mixed load of key operations, every result checked outside vHSM, and its tally.
//! - [`nemesis`]: that load while members are killed, paused, restarted and cut off on a seeded schedule, then
//!   every result, key and audit log checked and memory and file descriptors followed (the CI test
//!   `tests/cluster_nemesis.rs` and `vhsm chaos`).
//! - [`network`]: control of a process cluster's links at run time — a UDP proxy that adds latency, loss and
//!   reordering and cuts links, or each node in a network namespace of its own with nftables partitions.
//!
//! A test kit fails loudly: what a test cannot set up is a failed test, so most calls panic with the reason; what
//! a benchmark program calls ([`process::ProcessCluster::launch`]) returns errors instead.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(clippy::expect_used)]

pub mod load;
pub mod memory;
pub mod nemesis;
pub mod network;
pub mod process;
