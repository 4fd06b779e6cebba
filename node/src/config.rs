//! A node's configuration file (`node.toml`, written by `vhsm init`). Relative paths are relative to the file.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use vhsm_wire::NodeId;

/// Another node of the cluster.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its id.
    pub id: NodeId,
    /// Its address, `host:port`.
    pub address: String,
}

/// Misbehaviour a test can ask of a node. Only in builds with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultInjection {
    /// Send corrupted FROST signature shares.
    #[serde(default)]
    pub corrupt_signature_shares: bool,
    /// Send corrupted threshold-ECDSA signing messages.
    #[serde(default)]
    pub corrupt_ecdsa_messages: bool,
    /// Refuse every threshold-ECDSA signing (not the new key's pairwise test) as a node whose share cannot be used
    /// would: its store rolled back to before a refresh, the record damaged (`handlers/signing.rs`).
    #[serde(default)]
    pub unusable_ecdsa_shares: bool,
    /// Answer split-AES evaluations with a wrong partial (a proof that does not verify).
    #[serde(default)]
    pub wrong_partials: bool,
    /// Answer the first key commit "done" without making the key active (as if the commit had been lost).
    #[serde(default)]
    pub lose_first_commit: bool,
    /// Fail the start-up self-test (an expected answer altered): the node must refuse to start.
    #[serde(default)]
    pub fail_self_test: bool,
    /// Deal wrong sub-shares in a reshare (each one off by one bit).
    #[serde(default)]
    pub corrupt_reshare_subshares: bool,
    /// Exit (as if killed) right after staging a reshared share, before answering the coordinator.
    #[serde(default)]
    pub exit_after_staging: bool,
    /// Exit (as if killed) on receiving a reshare commit, before committing.
    #[serde(default)]
    pub exit_before_commit: bool,
    /// Lie in `ListKeys`: report every key as destroyed at revision `u64::MAX`, and in addition claim the first
    /// key at the next epoch, held by this node alone with threshold 1 — trying to make the coordinator destroy
    /// the keys everywhere, or hand one over to this node (`handlers/keys.rs`).
    #[serde(default)]
    pub lie_in_list_keys: bool,
    /// Blame the honest co-signers: answer every FROST signature-share request with a misbehaviour error naming
    /// the other signers, and every threshold-ECDSA signing request with a ban of them (recorded, so that this
    /// node's status reports them banned), without taking part (`handlers/signing.rs`).
    #[serde(default)]
    pub blame_honest_signers: bool,
    /// Complain, in every reshare, about every other dealer's sub-share whatever it was (false complaints, which
    /// the dispute round must refute: `vhsm_protocols::reshare::Reshare::complain_falsely_about`).
    #[serde(default)]
    pub complain_falsely: bool,
    /// Flood the other nodes' mesh inboxes once, on the first signing or reshare request: thousands of messages
    /// with random session ids to every peer, and thousands into one session (`mesh::Mesh::flood`).
    #[serde(default)]
    pub flood_inboxes: bool,
    /// Answer every PIN check "right PIN" without checking or counting it (trying to let a wrong PIN in;
    /// `handlers/pins.rs`).
    #[serde(default)]
    pub accept_any_pin: bool,
    /// Refuse every PIN check as a wrong PIN without checking or counting it (trying to keep the right PIN out).
    #[serde(default)]
    pub refuse_every_pin: bool,
}

/// The `[token]` section: the token's PINs, which this node checks (`NodeRequest::CheckPin`), each failure
/// counted in its sealed store (see `crate::pins`). Written by `vhsm init` into every node's `node.toml`, the same
/// on every node, and copied by `vhsm node add` from an existing node's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinConfig {
    /// Argon2id hash (PHC string) of the user PIN.
    pub user_pin_hash: String,
    /// Argon2id hash (PHC string) of the security officer's PIN.
    pub so_pin_hash: String,
    /// Wrong PINs in a row at which this node locks a PIN.
    #[serde(default = "default_max_pin_failures")]
    pub max_pin_failures: u32,
}

/// The default of [`PinConfig::max_pin_failures`].
pub const DEFAULT_MAX_PIN_FAILURES: u32 = 5;

fn default_max_pin_failures() -> u32 {
    DEFAULT_MAX_PIN_FAILURES
}

/// A node's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id (1-based; its certificate must say the same).
    pub node_id: NodeId,
    /// Where to listen, `ip:port`.
    pub listen: SocketAddr,
    /// The cluster CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// This node's certificate (PEM).
    pub cert: PathBuf,
    /// This node's TLS private key (PEM).
    pub key: PathBuf,
    /// The DEVELOPMENT storage-key file (64 hex digits, mode 0600) that seals every record, beside the data (`vhsm
    /// up`). Exactly one of this and `sealed_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_key_file: Option<PathBuf>,
    /// The sealed key file (`vhsm init --seal`): the storage key wrapped under the operator's passphrase. The node
    /// starts sealed unless it is given the passphrase (`passphrase_file`, or `VHSM_NODE_PASSPHRASE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_key_file: Option<PathBuf>,
    /// A file holding the passphrase (mode 0600), for unattended starts; without it the node waits for `vhsm node
    /// unseal` (or `VHSM_NODE_PASSPHRASE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// The node's unseal private key (X25519, 64 hex digits, mode 0600; `vhsm init --seal` writes `unseal.key`):
    /// `vhsm node unseal` and `vhsm node change-passphrase` encrypt the node's secret to its public half (HPKE,
    /// see `crate::unseal`), so the coordinator relays only ciphertext. Without it the node can be unsealed only on
    /// its own machine (`passphrase_file`, `VHSM_NODE_PASSPHRASE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseal_key_file: Option<PathBuf>,
    /// Where the share database lives.
    pub data_dir: PathBuf,
    /// The security officer's Ed25519 public key (64 hex digits), pinned by `vhsm init`: the node reshares a key
    /// onto other holders or another threshold only with an approval it signed (`vhsm_core::approval`). Without
    /// one the node refuses every such change (a refresh, same holders and threshold, needs none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_officer_key: Option<String>,
    /// The other nodes.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// The token's PIN hashes and lockout limit (`[token]`). Without it the node refuses every PIN check (a node
    /// set up before PINs were checked by the nodes: copy the section from another node's `node.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<PinConfig>,
    /// How long, in seconds, this node keeps the share of a new key whose generation was never committed (the
    /// coordinator stopped between the generation and its commit), counted from when it stored the share (or from
    /// its own start): then it deletes the share. Default [`crate::node::PENDING_KEY_TTL`] (120 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_key_ttl_secs: Option<u64>,
    /// Test-only misbehaviour.
    #[cfg(feature = "fault-injection")]
    #[serde(default)]
    pub fault_injection: FaultInjection,
}

impl NodeConfig {
    /// The pinned security officer's key, if there is one; an error if `security_officer_key` is not 32 bytes in
    /// hex or not a valid Ed25519 public key.
    pub fn security_officer_public_key(
        &self,
    ) -> Result<Option<ed25519_dalek::VerifyingKey>, String> {
        let Some(text) = &self.security_officer_key else {
            return Ok(None);
        };
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("security_officer_key must be 64 hex digits (an Ed25519 public key)")?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Some)
            .map_err(|_| "security_officer_key is not a valid Ed25519 public key".to_string())
    }

    /// Reads a configuration file and resolves its relative paths.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut config: NodeConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            Some(&mut config.ca_cert),
            Some(&mut config.cert),
            Some(&mut config.key),
            config.storage_key_file.as_mut(),
            config.sealed_key_file.as_mut(),
            config.passphrase_file.as_mut(),
            config.unseal_key_file.as_mut(),
            Some(&mut config.data_dir),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if config.storage_key_file.is_some() == config.sealed_key_file.is_some() {
            return Err(format!(
                "{}: give exactly one of storage_key_file (development) and sealed_key_file",
                path.display()
            ));
        }
        config
            .security_officer_public_key()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if config.node_id == 0 {
            return Err(format!("{}: node_id must be at least 1", path.display()));
        }
        if let Some(token) = &config.token {
            token
                .check()
                .map_err(|e| format!("{}: [token] {e}", path.display()))?;
        }
        if config.peers.iter().any(|p| p.id == config.node_id) {
            return Err(format!(
                "{}: node {} lists itself as a peer",
                path.display(),
                config.node_id
            ));
        }
        Ok(config)
    }
}

impl PinConfig {
    /// Checks that both hashes are Argon2id PHC strings and that the limit is at least 1.
    pub fn check(&self) -> Result<(), String> {
        for (what, hash) in [
            ("user_pin_hash", &self.user_pin_hash),
            ("so_pin_hash", &self.so_pin_hash),
        ] {
            crate::pins::parse_hash(hash).map_err(|e| format!("{what}: {e}"))?;
        }
        if self.max_pin_failures == 0 {
            return Err("max_pin_failures must be at least 1".into());
        }
        Ok(())
    }
}
