//! The `vhsm` command line.

pub mod audit;
pub mod bench;
pub mod daemon;
pub mod demo;
pub mod encrypt;
pub mod export;
pub mod init;
pub mod keys;
pub mod layout;
pub mod local_cluster;
pub mod membership;
pub mod progress;
pub mod reshare;
pub mod sealing;
pub mod stats;
pub mod up;
