//! Where things are in a cluster directory written by `vhsm init`.
//!
//! ```text
//! D/cluster.toml                      the cluster at a glance: threshold, coordinator and node addresses
//! D/ca/ca.pem, D/ca/ca.key            the cluster CA (keep ca.key offline once the cluster is set up)
//! D/nodes/node-N/node.toml            each node's own directory: its config, certificate, TLS key,
//!               /node.pem, node.key   development storage key (or, sealed, its sealed storage key and
//!               /storage.key, data/   unseal private key) and share database; copy it to the machine
//!               /sealed.key           that runs that node
//!               /unseal.key
//! D/unseal/node-N.secret              sealed clusters (`vhsm init --seal`): node N's own unseal secret (the
//!                                     operator's side: move it offline or to the node's custodian; it opens
//!                                     only node N)
//! D/unseal/node-N.pub                 node N's unseal public key, pinned: `vhsm node unseal N` encrypts
//!                                     the secret to it (HPKE), so the coordinator relays only ciphertext
//! D/coordinator/coordinator.toml ...  the coordinator's directory
//! D/client/client.toml ...            a client's directory (what `vhsm key`, `vhsm sign` use)
//! D/logs/                             logs of the processes `vhsm up` starts
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vhsm_coordinator::config::NodeEntry;
use vhsm_wire::NodeId;

/// `cluster.toml`: the cluster at a glance.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Threshold of new keys.
    pub threshold: u16,
    /// The coordinator's client API address.
    pub coordinator: String,
    /// The nodes.
    pub nodes: Vec<NodeEntry>,
}

/// A cluster directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn cluster_file(&self) -> PathBuf {
        self.root.join("cluster.toml")
    }
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }
    pub fn node_dir(&self, id: NodeId) -> PathBuf {
        self.root.join("nodes").join(format!("node-{id}"))
    }
    pub fn node_config(&self, id: NodeId) -> PathBuf {
        self.node_dir(id).join("node.toml")
    }
    /// The operator's side of a sealed cluster: each node's unseal secret and pinned unseal public key.
    pub fn unseal_dir(&self) -> PathBuf {
        self.root.join("unseal")
    }
    /// Node `id`'s unseal secret (`vhsm init --seal`, `vhsm node change-passphrase`).
    pub fn unseal_secret(&self, id: NodeId) -> PathBuf {
        self.unseal_dir().join(format!("node-{id}.secret"))
    }
    /// Node `id`'s pinned unseal public key.
    pub fn unseal_public_key(&self, id: NodeId) -> PathBuf {
        self.unseal_dir().join(format!("node-{id}.pub"))
    }
    pub fn coordinator_dir(&self) -> PathBuf {
        self.root.join("coordinator")
    }
    pub fn coordinator_config(&self) -> PathBuf {
        self.coordinator_dir().join("coordinator.toml")
    }
    pub fn client_dir(&self) -> PathBuf {
        self.client().client_dir()
    }
    pub fn client_config(&self) -> PathBuf {
        self.client().client_config_path()
    }
    /// The directory as a client sees it (client configuration, user PIN).
    pub fn client(&self) -> vhsm_client::ClusterDir {
        vhsm_client::ClusterDir::new(&self.root)
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn is_initialised(&self) -> bool {
        self.cluster_file().exists()
    }
    pub fn load(&self) -> anyhow::Result<ClusterFile> {
        let path = self.cluster_file();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "no cluster at {} ({e}); create one with `vhsm init --dir {}` or start one with `vhsm up --dir {}`",
                self.root.display(),
                self.root.display(),
                self.root.display()
            )
        })?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
    /// Rewrites `cluster.toml` atomically (a temporary file, synced, renamed over it).
    pub fn save(&self, cluster: &ClusterFile) -> anyhow::Result<()> {
        use std::io::Write;
        let path = self.cluster_file();
        let body = toml::to_string_pretty(cluster)?;
        let tmp = self.root.join(".cluster.toml.tmp");
        let write = || -> std::io::Result<()> {
            let mut out = std::fs::File::create(&tmp)?;
            out.write_all(
                format!("# Written by `vhsm init` and the membership commands (`vhsm node add|remove`, `vhsm cluster set-threshold`): the cluster at a glance.\n{body}")
                    .as_bytes(),
            )?;
            out.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }
}
