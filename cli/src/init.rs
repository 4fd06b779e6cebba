//! `vhsm init`: a new cluster's CA, certificates and configuration files.

use std::{
    net::{SocketAddr, UdpSocket},
    path::Path,
};

use anyhow::{bail, Context};
use rand_core::{OsRng, RngCore};
use vhsm_client::{
    approval::{self, ApprovalKey},
    ClientConfig,
};
use vhsm_coordinator::config::{CoordinatorConfig, NodeEntry};
use vhsm_coordinator::token::TokenConfig;
use vhsm_node::{
    config::{NodeConfig, PeerConfig, PinConfig, DEFAULT_MAX_PIN_FAILURES},
    pins::hash_pin,
    seal::{write_private_file, KdfParams, SealedKeyFile, StorageKey},
    unseal::{generate_key_pair, generate_secret},
};
use vhsm_wire::{pki::ClusterCa, Role};
use zeroize::Zeroizing;

use super::layout::{ClusterFile, Layout};

/// What `vhsm init` is asked for.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub nodes: u16,
    pub threshold: u16,
    pub host: String,
    pub base_port: u16,
    /// The token user's PIN; a random 8-digit PIN if `None`.
    pub user_pin: Option<String>,
    /// Seal every node's storage key under its own random unseal secret, with an unseal key pair for end-to-end
    /// unsealing (`vhsm init --seal`); `false`: development key files (what `vhsm up` uses).
    pub seal: bool,
}

/// A random PIN of `digits` decimal digits.
fn random_pin(digits: usize) -> Zeroizing<String> {
    let mut pin = Zeroizing::new(String::with_capacity(digits));
    while pin.len() < digits {
        let mut byte = [0u8; 1];
        OsRng.fill_bytes(&mut byte);
        // Rejection sampling keeps the digits uniform.
        if byte[0] < 250 {
            pin.push(char::from(b'0' + byte[0] % 10));
        }
    }
    pin
}

/// Writes a file readable only by its owner, refusing to overwrite one.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_private_file(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

fn write_public(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

fn write_toml<T: serde::Serialize>(path: &Path, header: &str, value: &T) -> anyhow::Result<()> {
    let body = toml::to_string_pretty(value).context("cannot encode configuration")?;
    write_public(path, &format!("{header}\n{body}"))
}

/// Picks `count` distinct free UDP ports on `host`, chosen by the OS.
fn free_ports(host: &str, count: usize) -> anyhow::Result<Vec<u16>> {
    // Hold every socket until all are chosen, so that the OS does not hand out the same port twice.
    let sockets = (0..count)
        .map(|_| {
            UdpSocket::bind((host, 0))
                .with_context(|| format!("cannot bind a UDP socket on {host}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    sockets.iter().map(|s| Ok(s.local_addr()?.port())).collect()
}

/// Creates a cluster directory. Refuses a directory that already holds a cluster.
pub fn init(layout: &Layout, options: &InitOptions) -> anyhow::Result<ClusterFile> {
    let n = options.nodes;
    if !(2..=64).contains(&n) {
        bail!("--nodes must be between 2 and 64 (got {n})");
    }
    if options.threshold < 2 || options.threshold > n {
        bail!(
            "--threshold must be between 2 and the number of nodes ({n}) (got {})",
            options.threshold
        );
    }
    if layout.is_initialised() {
        bail!(
            "{} already holds a cluster (remove the directory to start over: its keys will be lost)",
            layout.root().display()
        );
    }
    let host = options.host.as_str();
    let ports: Vec<u16> = if options.base_port == 0 {
        free_ports(host, usize::from(n) + 1)?
    } else {
        (0..=n)
            .map(|i| {
                options
                    .base_port
                    .checked_add(i)
                    .context("--base-port too high for that many nodes")
            })
            .collect::<anyhow::Result<_>>()?
    };
    let address = |i: usize| -> anyhow::Result<String> {
        let port = ports.get(i).context("port list too short")?;
        Ok(SocketAddr::new(
            host.parse()
                .with_context(|| format!("--host {host} is not an IP address"))?,
            *port,
        )
        .to_string())
    };
    let coordinator_address = address(0)?;
    let nodes: Vec<NodeEntry> = (1..=n)
        .map(|id| {
            Ok(NodeEntry {
                id,
                address: address(usize::from(id))?,
            })
        })
        .collect::<anyhow::Result<_>>()?;

    std::fs::create_dir_all(layout.root())
        .with_context(|| format!("cannot create {}", layout.root().display()))?;
    let ca = ClusterCa::generate()?;
    let ca_dir = layout.ca_dir();
    std::fs::create_dir_all(&ca_dir)?;
    write_public(&ca_dir.join("ca.pem"), ca.cert_pem())?;
    write_private(&ca_dir.join("ca.key"), ca.key_pem().as_bytes())?;

    // The security officer's approval key first: every node pins its public key.
    let client_dir = layout.client_dir();
    std::fs::create_dir_all(&client_dir)?;
    let officer = ApprovalKey::generate_new(&client_dir.join(approval::KEY_FILE))?.public_key_hex();

    let header = "# Written by `vhsm init`. Relative paths are relative to this file.";
    // The PINs are checked by the nodes: every node gets their hashes (the same), the coordinator none.
    let user_pin = match &options.user_pin {
        Some(pin) => Zeroizing::new(pin.clone()),
        None => random_pin(8),
    };
    let so_pin = random_pin(16);
    let pins = PinConfig {
        user_pin_hash: hash_pin(user_pin.as_bytes()).map_err(anyhow::Error::msg)?,
        so_pin_hash: hash_pin(so_pin.as_bytes()).map_err(anyhow::Error::msg)?,
        max_pin_failures: DEFAULT_MAX_PIN_FAILURES,
    };
    for node in &nodes {
        write_node_storage(layout, &ca, node, &nodes, &officer, &pins, options.seal)?;
    }

    let dir = layout.coordinator_dir();
    std::fs::create_dir_all(&dir)?;
    write_member_identity(&dir, &ca, &Role::Coordinator, "coordinator")?;
    let mut serial = [0u8; 8];
    OsRng.fill_bytes(&mut serial);
    let config = CoordinatorConfig {
        listen: coordinator_address.parse()?,
        ca_cert: "ca.pem".into(),
        cert: "coordinator.pem".into(),
        key: "coordinator.key".into(),
        threshold: options.threshold,
        nodes: nodes.clone(),
        token: TokenConfig::new("vHSM", hex::encode(serial)),
    };
    config.check().map_err(anyhow::Error::msg)?;
    write_toml(&layout.coordinator_config(), header, &config)?;

    let dir = layout.client_dir();
    std::fs::create_dir_all(&dir)?;
    write_private(&dir.join("user.pin"), user_pin.as_bytes())?;
    write_private(&dir.join("so.pin"), so_pin.as_bytes())?;
    write_member_identity(&dir, &ca, &Role::Client("admin".into()), "client")?;
    let config = ClientConfig {
        coordinator: coordinator_address.clone(),
        ca_cert: "ca.pem".into(),
        cert: "client.pem".into(),
        key: "client.key".into(),
        request_timeout_secs: 60,
    };
    write_toml(&layout.client_config(), header, &config)?;

    let cluster = ClusterFile {
        threshold: options.threshold,
        coordinator: coordinator_address,
        nodes,
    };
    write_toml(
        &layout.cluster_file(),
        "# Written by `vhsm init`: the cluster at a glance.",
        &cluster,
    )?;
    Ok(cluster)
}

/// Writes node `node`'s directory: its certificate and TLS key issued by `ca` (the CA's own key stays where it
/// is), a new development storage key, an empty data directory, and `node.toml` with `members` (every node of
/// the cluster, `node` included or not) as its peers, the security officer's approval key (the cluster's, see
/// [`ApprovalKey::of_cluster`]) pinned, and `pins` (the token's PIN hashes) as its `[token]`. Refuses to overwrite
/// a node's key files.
pub fn write_node(
    layout: &Layout,
    ca: &ClusterCa,
    node: &NodeEntry,
    members: &[NodeEntry],
    pins: &PinConfig,
) -> anyhow::Result<()> {
    let officer = ApprovalKey::of_cluster(&layout.client())
        .context("a new node pins the security officer's approval key")?
        .public_key_hex();
    write_node_storage(layout, ca, node, members, &officer, pins, false)
}

/// Creates the operator's side of a sealed cluster, `D/unseal/` (mode 0700).
fn create_unseal_dir(layout: &Layout) -> anyhow::Result<()> {
    let dir = layout.unseal_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    Ok(())
}

/// Writes an unseal secret file: the secret and a newline (mode 0600, never overwriting one). The file is also a
/// valid `passphrase_file` for the node's unattended start.
pub fn write_secret_file(path: &Path, secret: &vhsm_core::SecretBytes) -> anyhow::Result<()> {
    let mut text = Zeroizing::new(secret.expose().to_vec());
    text.push(b'\n');
    write_private(path, &text)?;
    vhsm_node::seal::sync_parent(path).with_context(|| format!("cannot sync {}", path.display()))
}

/// Like [`write_node`], pinning `security_officer_key` (hex) and `pins`; with `seal`, the node gets its own random
/// unseal secret (written on the operator's side, `D/unseal/node-N.secret`, never into the node's or the
/// coordinator's directory), its storage key wrapped under it (`sealed.key`, Argon2id with
/// [`KdfParams::RECOMMENDED`]) instead of a development key file, and an unseal key pair: the private key in its
/// directory (`unseal.key`), the public key pinned at `D/unseal/node-N.pub`. The node starts sealed.
pub fn write_node_storage(
    layout: &Layout,
    ca: &ClusterCa,
    node: &NodeEntry,
    members: &[NodeEntry],
    security_officer_key: &str,
    pins: &PinConfig,
    seal: bool,
) -> anyhow::Result<()> {
    let header =
        "# Written by `vhsm init` or `vhsm node add`. Relative paths are relative to this file.";
    let dir = layout.node_dir(node.id);
    std::fs::create_dir_all(dir.join("data"))?;
    write_member_identity(&dir, ca, &Role::Node(node.id), "node")?;
    let storage_key = StorageKey::generate();
    let (storage_key_file, sealed_key_file, unseal_key_file, note) = if seal {
        create_unseal_dir(layout)?;
        let secret = generate_secret();
        write_secret_file(&layout.unseal_secret(node.id), &secret)?;
        SealedKeyFile::write_new(
            &dir.join("sealed.key"),
            &storage_key,
            secret.expose(),
            KdfParams::RECOMMENDED,
        )?;
        let (private, public) = generate_key_pair();
        private.write_new(&dir.join("unseal.key"))?;
        public.write_new(&layout.unseal_public_key(node.id), node.id)?;
        (
            None,
            Some("sealed.key".into()),
            Some("unseal.key".into()),
            format!(
                "# sealed.key holds the storage key wrapped under this node's own unseal secret (Argon2id), which \
                 is not here:\n# it is on the operator's side (unseal/node-{id}.secret of the cluster directory). \
                 The node starts sealed until\n# `vhsm node unseal {id}`, which encrypts the secret to this node's \
                 unseal.key (HPKE, RFC 9180): the\n# coordinator relays only ciphertext.\n",
                id = node.id
            ),
        )
    } else {
        storage_key.write_new(&dir.join("storage.key"))?;
        (
            Some("storage.key".into()),
            None,
            None,
            "# storage.key is a DEVELOPMENT storage key: it seals this node's shares but lies beside them.\n"
                .to_string(),
        )
    };
    let config = NodeConfig {
        node_id: node.id,
        listen: node.address.parse().with_context(|| {
            format!("node {}'s address {} is not IP:PORT", node.id, node.address)
        })?,
        ca_cert: "ca.pem".into(),
        cert: "node.pem".into(),
        key: "node.key".into(),
        storage_key_file,
        sealed_key_file,
        passphrase_file: None,
        unseal_key_file,
        data_dir: "data".into(),
        security_officer_key: Some(security_officer_key.to_string()),
        peers: members
            .iter()
            .filter(|p| p.id != node.id)
            .map(|p| PeerConfig {
                id: p.id,
                address: p.address.clone(),
            })
            .collect(),
        token: Some(pins.clone()),
        pending_key_ttl_secs: None,
        #[cfg(feature = "fault-injection")]
        fault_injection: Default::default(),
    };
    write_toml(
        &layout.node_config(node.id),
        &format!(
            "{header}\n{note}# [token]: Argon2id hashes of the token's PINs, the same on every node. This node checks \
             every login's PIN against them and counts the failures in its sealed store.\n"
        ),
        &config,
    )
}

fn write_member_identity(
    dir: &Path,
    ca: &ClusterCa,
    role: &Role,
    stem: &str,
) -> anyhow::Result<()> {
    let issued = ca.issue(role)?;
    write_public(&dir.join("ca.pem"), ca.cert_pem())?;
    write_public(&dir.join(format!("{stem}.pem")), &issued.cert_pem)?;
    write_private(&dir.join(format!("{stem}.key")), issued.key_pem.as_bytes())
}

/// Summarises a new cluster for the operator.
pub fn describe(layout: &Layout, cluster: &ClusterFile) -> String {
    let mut out = format!(
        "Cluster written to {}: {} nodes, threshold {}\n  coordinator  {}\n",
        layout.root().display(),
        cluster.nodes.len(),
        cluster.threshold,
        cluster.coordinator
    );
    for node in &cluster.nodes {
        out.push_str(&format!(
            "  node {:<3}     {}  ({})\n",
            node.id,
            node.address,
            layout.node_dir(node.id).display()
        ));
    }
    out.push_str(&format!(
        "  CA key       {} (keep it offline once the cluster is set up)\n",
        layout.ca_dir().join("ca.key").display()
    ));
    out.push_str(&format!(
        "  token PINs   {} (user), {} (security officer): the CLI logs in with the user PIN from there; the \
         nodes check them (their Argon2id hashes are in each node.toml)\n",
        layout.client_dir().join("user.pin").display(),
        layout.client_dir().join("so.pin").display()
    ));
    if layout.unseal_dir().exists() {
        out.push_str(&format!(
            "  sealed       every node starts SEALED; node N's own unseal secret is {} (mode 0600): each opens \
             only its own node.\n               Move them offline or hand each to its node's custodian (keep \
             node-N.pub here);\n               unseal with `vhsm node unseal N [--secret-file F]`, change with \
             `vhsm node change-passphrase N`.\n",
            layout.unseal_dir().join("node-N.secret").display()
        ));
    }
    out.push_str(&format!(
        "  SO approvals {} (signs changes of a key's holders or threshold; every node pins its public key)\n",
        layout.client_dir().join(approval::KEY_FILE).display()
    ));
    out.push_str(&format!(
        "  PKCS#11      export VHSM_PKCS11_CONFIG={}\n",
        std::path::absolute(layout.client_config())
            .unwrap_or_else(|_| layout.client_config())
            .display()
    ));
    out
}
