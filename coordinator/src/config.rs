//! The coordinator's configuration file (`coordinator.toml`, written by `vhsm init`). Relative paths are relative
//! to the file.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use vhsm_wire::NodeId;

/// A node as the coordinator knows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Its id.
    pub id: NodeId,
    /// Its address, `host:port`.
    pub address: String,
}

/// The coordinator's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Where the client API listens, `ip:port`.
    pub listen: SocketAddr,
    /// The cluster CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// The coordinator's certificate (PEM).
    pub cert: PathBuf,
    /// The coordinator's TLS private key (PEM).
    pub key: PathBuf,
    /// How many holders must take part in an operation with a new key.
    pub threshold: u16,
    /// The nodes; every new key gets a share on each.
    pub nodes: Vec<NodeEntry>,
    /// The token presented to PKCS#11 applications (label, serial; its PINs are checked by the nodes).
    pub token: crate::token::TokenConfig,
}

impl CoordinatorConfig {
    /// Reads a configuration file, resolves its relative paths, and checks it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut config: CoordinatorConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut config.ca_cert, &mut config.cert, &mut config.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// Checks the threshold against the nodes, and that `[token]` holds no PIN settings of an earlier release.
    pub fn check(&self) -> Result<(), String> {
        self.token.check()?;
        let n = self.nodes.len();
        if self.threshold < 2 || usize::from(self.threshold) > n {
            return Err(format!(
                "threshold {} is not possible with {n} nodes (need 2 <= threshold <= nodes)",
                self.threshold
            ));
        }
        let mut ids: Vec<_> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != n || ids.contains(&0) {
            return Err("node ids must be distinct and at least 1".into());
        }
        Ok(())
    }
}
