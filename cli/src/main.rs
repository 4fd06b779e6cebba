//! `vhsm`: run and use a vHSM cluster.

mod audit;
mod bench;
mod daemon;
mod demo;
mod encrypt;
mod export;
mod init;
mod keys;
mod layout;
mod local_cluster;
mod membership;
mod progress;
mod reshare;
mod sealing;
mod stats;
mod up;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vhsm_core::HashAlg;
use vhsm_core::{Algorithm, KeyId};
use vhsm_wire::NodeId;

use crate::{demo::DemoOptions, export::KeyFormat, init::InitOptions, layout::Layout};

const DEFAULT_CLUSTER: &str = "vhsm-cluster";

/// vHSM: a virtual HSM on multi-party computation. Every key is generated and used by threshold protocols across
/// share-holding nodes; no key ever exists whole anywhere.
#[derive(Debug, Parser)]
#[command(name = "vhsm", version, propagate_version = true)]
#[command(
    after_help = "Start here: `vhsm demo` (a whole cluster, a key, 1,000 verified signatures), or `vhsm up` \
                        to keep a local cluster running and use it from another terminal."
)]
struct Cli {
    /// The cluster directory (written by `vhsm init` / `vhsm up`). Default: ./vhsm-cluster
    #[arg(long, global = true, env = "VHSM_CLUSTER", value_name = "DIR")]
    cluster: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone)]
struct ClusterShape {
    /// How many share-holding nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// How many nodes must take part in each operation.
    #[arg(long, default_value_t = 2)]
    threshold: u16,
    /// The IP address the members listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// First port (coordinator; node N gets base+N). 0: free ports chosen by the OS.
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// The token user's PIN (4 to 64 characters). Default: a random 8-digit PIN, written to client/user.pin.
    #[arg(long, env = "VHSM_INIT_USER_PIN", hide_env_values = true)]
    user_pin: Option<String>,
}

impl ClusterShape {
    fn options(&self) -> InitOptions {
        InitOptions {
            nodes: self.nodes,
            threshold: self.threshold,
            host: self.host.clone(),
            base_port: self.base_port,
            user_pin: self.user_pin.clone(),
            seal: false,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a cluster directory: CA, certificates and configurations of nodes, coordinator and a client.
    Init {
        /// Where (default: --cluster, or ./vhsm-cluster).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        shape: ClusterShape,
        /// Seal each node's storage key under its own random unseal secret (Argon2id) instead of writing
        /// development key files: nodes start sealed until `vhsm node unseal ID`. The secrets are written to
        /// D/unseal/node-N.secret (one per node: each opens only its own node; move them offline or hand each to
        /// its node's custodian), never into a node's or the coordinator's directory. Each node also gets an
        /// unseal key pair (D/nodes/node-N/unseal.key; public half pinned in D/unseal/node-N.pub): `vhsm node
        /// unseal` encrypts the secret to the node (HPKE), so the coordinator relays only ciphertext. Choose
        /// your own passphrases afterwards with `vhsm node change-passphrase ID --new-secret-file F`.
        #[arg(long)]
        seal: bool,
        /// No longer taken: `--seal` makes a random secret per node (set your own later with `vhsm node
        /// change-passphrase ID --new-secret-file F`).
        #[arg(long, value_name = "FILE", hide = true)]
        passphrase_file: Option<PathBuf>,
    },
    /// Run a whole cluster on this machine (initialising it first if needed) until Ctrl-C.
    Up {
        /// The cluster directory (default: --cluster, or ./vhsm-cluster).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        shape: ClusterShape,
    },
    /// Run a share-holding node (`--config F`), or manage the nodes.
    Node(NodeArgs),
    /// Run a coordinator.
    Coordinator(DaemonArgs),
    /// The cluster's health, as the coordinator sees it.
    Status,
    /// The cluster's membership: its nodes and the threshold of new keys.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Create, list and show keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The nodes' audit logs: verify their chains and agreement, or show entries. Security officer (VHSM_SO_PIN or
    /// client/so.pin).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Sign a file with a key. ECDSA: the file is hashed here, so it may be of any size, and the signature is the
    /// file's (`openssl dgst -sha256 -verify` checks it, once made DER). Ed25519 signs the whole file, at most 1 MiB.
    Sign {
        /// The key's id.
        #[arg(long, value_name = "ID")]
        key: KeyId,
        /// ECDSA: how to hash the file (default sha256), here, reading it piece by piece; `none`: the file already
        /// is the digest to sign, 1 to 64 bytes (what PKCS#11 CKM_ECDSA does). Ed25519 signs the whole file (at most
        /// 1 MiB: PureEdDSA needs the whole message in one request) and takes no hash.
        #[arg(long, value_name = "HASH", value_parser = keys::parse_hash)]
        hash: Option<HashAlg>,
        /// The file to sign.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Where to write the signature (raw bytes); printed as hex if absent.
        #[arg(long = "out", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Encrypt a file with a split-aes-256 key (any size: cut into 1 MiB chunks, each its own blob).
    Encrypt {
        /// The key's id.
        #[arg(long, value_name = "ID")]
        key: KeyId,
        /// The file to encrypt.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Where to write the ciphertext.
        #[arg(long = "out", value_name = "FILE")]
        output: PathBuf,
        /// Associated data the ciphertext is bound to (needed again to decrypt).
        #[arg(long, default_value = "")]
        aad: String,
    },
    /// Decrypt a file made by `vhsm encrypt` (the key is named inside it).
    Decrypt {
        /// The ciphertext file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Where to write the plaintext.
        #[arg(long = "out", value_name = "FILE")]
        output: PathBuf,
        /// The associated data given to `vhsm encrypt`.
        #[arg(long, default_value = "")]
        aad: String,
    },
    /// Start a local cluster (unless --cluster names a running one), make a key of each algorithm, sign and verify
    /// many messages, encrypt and decrypt many records.
    Demo {
        /// The algorithms to show, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "ed25519,ecdsa-secp256k1,ecdsa-p256,split-aes-256"
        )]
        algorithms: Vec<Algorithm>,
        /// How many Ed25519 signatures, and how many split-AES records to encrypt and decrypt.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// How many signatures with each ECDSA key (about 15–25 ms of CPU each on a 2-core machine).
        #[arg(long, default_value_t = 100)]
        ecdsa_count: usize,
        /// How many signing requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Nodes of the temporary cluster.
        #[arg(long, default_value_t = 3)]
        nodes: u16,
        /// Threshold of the temporary cluster.
        #[arg(long, default_value_t = 2)]
        threshold: u16,
        /// How many signatures to check with the OpenSSL command line too.
        #[arg(long, default_value_t = 5)]
        openssl_samples: usize,
    },
    /// Measure throughput (ops/s), latency (p50/p95/p99) and CPU per operation of each algorithm at several
    /// client concurrencies, through the native client API and the PKCS#11 module, beside SoftHSMv2 (when
    /// installed) and baselines measured in the same run: single-key signing and the threshold protocols
    /// in-process. Against the running cluster named by --cluster, or a fresh 3-node 2-of-3 cluster it starts.
    /// Runs the benchmark program `vhsm-bench` (`cargo build --release -p vhsm-bench`) with these arguments;
    /// `vhsm bench --help` shows its options.
    #[command(disable_help_flag = true)]
    Bench {
        /// The benchmark's arguments (see `vhsm bench --help`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<std::ffi::OsString>,
    },
    /// Soak and chaos runs: a mixed load of every algorithm against a fresh local 3-node 2-of-3 cluster while a
    /// nemesis kills, pauses, stops, partitions and restarts its members one at a time; every result, key and audit
    /// log checked at the end, the figures printed (operations, failures by cause, latency, memory and file
    /// descriptors over the run). Runs the program `vhsm-chaos` (`cargo build --release -p vhsm-chaos`) with these
    /// arguments; `vhsm chaos --help` shows its options (`--minutes 30`, `--seed`, `--json`).
    #[command(disable_help_flag = true)]
    Chaos {
        /// The run's arguments (see `vhsm chaos --help`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Args)]
struct DaemonArgs {
    /// The configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Exit when standard input closes (used by `vhsm up` so that no process outlives it).
    #[arg(long, hide = true)]
    exit_with_parent: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct NodeArgs {
    /// The node's configuration file: runs the node.
    #[arg(long, value_name = "FILE", required = true)]
    config: Option<PathBuf>,
    /// Exit when standard input closes (used by `vhsm up` so that no process outlives it).
    #[arg(long, hide = true)]
    exit_with_parent: bool,
    #[command(subcommand)]
    action: Option<NodeAction>,
}

#[derive(Debug, Subcommand)]
enum NodeAction {
    /// Add a share-holding node to the cluster: issue its certificate from the cluster CA (needs D/ca/ca.key),
    /// write its directory D/nodes/node-N/, wait until it answers (start it yourself, or pass --start), then make it
    /// a member; every key is then reshared to all members. Security officer (VHSM_SO_PIN or client/so.pin), with
    /// the officer's approval key (client/so-approval.key or VHSM_SO_APPROVAL_KEY), whose approval every node
    /// checks.
    Add {
        /// Where the node listens, IP:PORT: written into its node.toml and given to the coordinator and the
        /// other nodes.
        #[arg(long, value_name = "IP:PORT")]
        address: String,
        /// Its id (default: one more than the highest member's).
        #[arg(long, value_name = "N")]
        id: Option<NodeId>,
        /// Start it on this machine, detached, with its log in D/logs/node-N.log.
        #[arg(long)]
        start: bool,
        /// How long to wait for it to answer (default: 30 s with --start, else 120 s).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Remove a node from the cluster: every key it holds is reshared to the other nodes first (its shares are
    /// deleted as that happens, if it can be reached), then it leaves the membership. Refused if fewer nodes than
    /// the threshold would remain (lower it with --threshold). Security officer (VHSM_SO_PIN or client/so.pin),
    /// with the officer's approval key (client/so-approval.key or VHSM_SO_APPROVAL_KEY).
    Remove {
        /// The node's id.
        id: NodeId,
        /// The threshold afterwards, set in the same reshare (e.g. 3-of-4 → 2-of-3).
        #[arg(long)]
        threshold: Option<u16>,
    },
    /// Let a node banned by an OT-based protocol (ECDSA) sign again, on every node. Do this only once you know why
    /// it was banned: a ban means its messages failed a check that an honest node passes. Security officer (PIN in
    /// VHSM_SO_PIN or client/so.pin).
    Unban {
        /// The banned node's id.
        id: NodeId,
    },
    /// Give a node that lost its data (disk replaced, `data/` deleted) a share of every key it holds again, dealt
    /// by the other holders. Start the node (empty) first. Every holder gets a new share; the keys stay the same.
    /// Security officer (VHSM_SO_PIN or client/so.pin), with the officer's approval key (client/so-approval.key or
    /// VHSM_SO_APPROVAL_KEY): the node takes shares of keys it has no record of only with that approval.
    Repair {
        /// The node's id.
        id: NodeId,
    },
    /// Unseal a sealed node (one made by `vhsm init --seal`): it opens its store and serves. The node's own
    /// unseal secret comes from --secret-file, else VHSM_NODE_PASSPHRASE, else D/unseal/node-ID.secret, else a
    /// prompt. It is encrypted end to end to the node's unseal key pinned in D/unseal/node-ID.pub (HPKE, RFC
    /// 9180), answering a single-use challenge the node hands out: the coordinator relays only ciphertext, and a
    /// recorded request cannot be replayed. A wrong secret is refused and changes nothing. Security officer
    /// (VHSM_SO_PIN or client/so.pin).
    Unseal {
        /// The node's id.
        id: NodeId,
        /// A file whose first line is the node's unseal secret (or the passphrase set with change-passphrase).
        #[arg(long, value_name = "FILE", alias = "passphrase-file")]
        secret_file: Option<PathBuf>,
    },
    /// Change a node's unseal secret (or passphrase). Makes a new random secret (or takes yours from
    /// --new-secret-file), writes it to FILE.new beside the secret file, sends the old and the new secret to the
    /// node encrypted end to end (HPKE, a fresh single-use challenge; the coordinator relays only ciphertext); the
    /// node checks the old one against its sealed.key and rewrites that file atomically. Only once the node
    /// confirmed is FILE.new renamed over the secret file, so an interruption never loses the secret in force.
    /// The node must be unsealed. The old secret comes from --secret-file, else VHSM_NODE_PASSPHRASE, else
    /// D/unseal/node-ID.secret, else a prompt; the new one ends up in --secret-file (default
    /// D/unseal/node-ID.secret). A node that starts unattended (passphrase_file, VHSM_NODE_PASSPHRASE) needs the
    /// new secret there before it restarts. Security officer (VHSM_SO_PIN or client/so.pin).
    #[command(alias = "change-secret")]
    ChangePassphrase {
        /// The node's id.
        id: NodeId,
        /// The file holding the node's secret in force; it holds the new one afterwards (default
        /// D/unseal/node-ID.secret).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
        /// A file whose first line is the new secret (a passphrase of your choosing, 1 to 1024 bytes). Default: a
        /// new random secret (160 bits, grouped base32).
        #[arg(long, value_name = "FILE")]
        new_secret_file: Option<PathBuf>,
    },
    /// Write a backup of one node: its keys' shares and metadata, objects and membership, sealed under the node's
    /// own storage key (it restores only on that node) with a readable header of key ids and epochs. Security
    /// officer (VHSM_SO_PIN or client/so.pin).
    Backup {
        /// The node's id.
        id: NodeId,
        /// Where to write it (a new file, mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore a node (started empty, unsealed) from its backup. Refused if a key was refreshed or reshared since
    /// the backup (an older epoch: its shares no longer combine; use `vhsm node repair`); keys the cluster no
    /// longer has are left out. Security officer (VHSM_SO_PIN or client/so.pin).
    Restore {
        /// The node's id.
        id: NodeId,
        /// The backup file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// The members (nodes and addresses), the threshold of new keys and the membership's version. Any logged-in
    /// user (VHSM_PIN or client/user.pin).
    Members,
    /// Set the threshold: 2 <= T <= the number of nodes; every key is then reshared to it. Security officer
    /// (VHSM_SO_PIN or client/so.pin), with the officer's approval key (client/so-approval.key or
    /// VHSM_SO_APPROVAL_KEY), whose approval every node checks.
    SetThreshold {
        /// The threshold.
        threshold: u16,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every node's hash chain (naming the node and entry of any break) and that the nodes agree on the
    /// operations they took part in. Exits non-zero on any problem.
    Verify,
    /// List audit entries of every node, oldest first.
    Show {
        /// Only entries of this key.
        #[arg(long, value_name = "ID")]
        key: Option<KeyId>,
        /// Only entries at or after this time: RFC 3339 (2024-05-01T12:00:00Z) or seconds since 1970.
        #[arg(long, value_name = "T", value_parser = audit::parse_time)]
        since: Option<u64>,
        /// Only this node's entries.
        #[arg(long, value_name = "ID")]
        node: Option<NodeId>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate a key by distributed key generation on the nodes.
    Create {
        /// The algorithm.
        #[arg(long, default_value = "ed25519")]
        algorithm: Algorithm,
        /// A label for people.
        #[arg(long)]
        label: String,
        /// Create it pre-active: it can be used only after `vhsm key activate`.
        #[arg(long)]
        pre_active: bool,
    },
    /// Activate a pre-active key (it may then sign, encrypt and decrypt).
    Activate {
        /// The key's id.
        id: KeyId,
    },
    /// Deactivate a key: from now on it only decrypts (and its public key verifies) what it protected. There is no
    /// way back.
    Deactivate {
        /// The key's id.
        id: KeyId,
    },
    /// Mark a key compromised: like deactivated, to recover data only; say so to whoever relies on it.
    MarkCompromised {
        /// The key's id.
        id: KeyId,
    },
    /// List the keys.
    List,
    /// Give every holder of a key a new share of the same key (proactive refresh): shares from before — stolen, or
    /// kept by a node that left — stop combining with the new ones. The public key does not change.
    /// Security officer (VHSM_SO_PIN or client/so.pin).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Refresh {
        /// The key's id.
        id: Option<KeyId>,
        /// Every key.
        #[arg(long)]
        all: bool,
    },
    /// Destroy a key: every holder deletes its share. There is no way back.
    Destroy {
        /// The key's id.
        id: KeyId,
    },
    /// Show a key and its public key (hex and PEM), or write the public key alone in one format.
    Show {
        /// The key's id.
        id: KeyId,
        /// Write only the public key: SubjectPublicKeyInfo as pem or der, or raw (Ed25519: 32 bytes; ECDSA: the
        /// uncompressed SEC1 point). Binary formats are printed as hex unless --out is given.
        #[arg(long, value_enum)]
        format: Option<KeyFormat>,
        /// Where to write it.
        #[arg(long, value_name = "FILE", requires = "format")]
        out: Option<PathBuf>,
    },
}

fn init_logging(daemon: bool) {
    let default = if daemon { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(
        cli.command,
        Command::Node(NodeArgs { action: None, .. }) | Command::Coordinator(_)
    ));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Work still running on the runtime's threads is given a moment, not waited for: a node stopped in the middle of
    // a key generation step (seconds of CPU) exits now, its peers told, instead of when the step ends (issue 15,
    // item 6). A write in flight (a store commit, an audit entry: milliseconds) finishes within it.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How long work still running on the runtime may take once the command is done (see `main`).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cluster_dir = || {
        cli.cluster
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CLUSTER))
    };
    let layout = Layout::new(&cluster_dir());
    match &cli.command {
        Command::Init {
            dir,
            shape,
            seal,
            passphrase_file,
        } => {
            let layout = Layout::new(&dir.clone().unwrap_or_else(cluster_dir));
            if passphrase_file.is_some() {
                anyhow::bail!(
                    "--passphrase-file is no longer taken by `vhsm init`: `--seal` makes a random unseal secret for \
                     each node (one passphrase for every node would let one guessed or leaked secret open them all); \
                     set a passphrase of your choosing afterwards with `vhsm node change-passphrase ID \
                     --new-secret-file F`"
                );
            }
            let mut options = shape.options();
            options.seal = *seal;
            let cluster = init::init(&layout, &options)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&cluster)?);
            } else {
                print!("{}", init::describe(&layout, &cluster));
                println!(
                    "Run it here with `vhsm up --dir {}`.",
                    layout.root().display()
                );
            }
            Ok(())
        }
        Command::Up { dir, shape } => {
            up::up(
                &Layout::new(&dir.clone().unwrap_or_else(cluster_dir)),
                &shape.options(),
            )
            .await
        }
        Command::Node(NodeArgs {
            action: Some(NodeAction::Unban { id }),
            ..
        }) => keys::unban(&layout, *id, cli.json).await,
        Command::Node(NodeArgs {
            action: Some(NodeAction::Repair { id }),
            ..
        }) => reshare::repair(&layout, *id, cli.json).await,
        Command::Node(NodeArgs {
            action: Some(NodeAction::Unseal { id, secret_file }),
            ..
        }) => sealing::unseal(&layout, *id, secret_file.as_deref(), cli.json).await,
        Command::Node(NodeArgs {
            action:
                Some(NodeAction::ChangePassphrase {
                    id,
                    secret_file,
                    new_secret_file,
                }),
            ..
        }) => {
            sealing::change_passphrase(
                &layout,
                *id,
                secret_file.as_deref(),
                new_secret_file.as_deref(),
                cli.json,
            )
            .await
        }
        Command::Node(NodeArgs {
            action: Some(NodeAction::Backup { id, out }),
            ..
        }) => sealing::backup(&layout, *id, out, cli.json).await,
        Command::Node(NodeArgs {
            action: Some(NodeAction::Restore { id, file }),
            ..
        }) => sealing::restore(&layout, *id, file, cli.json).await,
        Command::Node(NodeArgs {
            config: Some(config),
            exit_with_parent,
            action: None,
        }) => daemon::node(config, *exit_with_parent).await,
        Command::Node(NodeArgs {
            config: None,
            action: None,
            ..
        }) => {
            anyhow::bail!("`vhsm node` needs --config FILE (to run a node) or a subcommand (see vhsm node --help)")
        }
        Command::Coordinator(args) => {
            daemon::coordinator(&args.config, args.exit_with_parent).await
        }
        Command::Status => keys::status(&layout, cli.json).await,
        Command::Audit(AuditCommand::Verify) => audit::verify(&layout, cli.json).await,
        Command::Audit(AuditCommand::Show { key, since, node }) => {
            let options = audit::ShowOptions {
                key: *key,
                since: *since,
                node: *node,
            };
            audit::show(&layout, &options, cli.json).await
        }
        Command::Cluster(ClusterCommand::Members) => membership::members(&layout, cli.json).await,
        Command::Cluster(ClusterCommand::SetThreshold { threshold }) => {
            membership::set_threshold(&layout, *threshold, cli.json).await
        }
        Command::Node(NodeArgs {
            action:
                Some(NodeAction::Add {
                    address,
                    id,
                    start,
                    wait,
                }),
            ..
        }) => {
            let options = membership::AddOptions {
                address: address.clone(),
                id: *id,
                start: *start,
                wait: wait.map(std::time::Duration::from_secs),
            };
            membership::add(&layout, &options, cli.json).await
        }
        Command::Node(NodeArgs {
            action: Some(NodeAction::Remove { id, threshold }),
            ..
        }) => membership::remove(&layout, *id, *threshold, cli.json).await,
        Command::Key(KeyCommand::Activate { id }) => {
            keys::set_state(&layout, *id, vhsm_core::KeyState::Active, cli.json).await
        }
        Command::Key(KeyCommand::Deactivate { id }) => {
            keys::set_state(&layout, *id, vhsm_core::KeyState::Deactivated, cli.json).await
        }
        Command::Key(KeyCommand::MarkCompromised { id }) => {
            keys::set_state(&layout, *id, vhsm_core::KeyState::Compromised, cli.json).await
        }
        Command::Key(KeyCommand::Create {
            algorithm,
            label,
            pre_active,
        }) => keys::create(&layout, *algorithm, label, *pre_active, cli.json).await,
        Command::Key(KeyCommand::List) => keys::list(&layout, cli.json).await,
        Command::Key(KeyCommand::Refresh { id, all: _ }) => {
            reshare::refresh(&layout, *id, cli.json).await
        }
        Command::Key(KeyCommand::Destroy { id }) => keys::destroy(&layout, *id, cli.json).await,
        Command::Key(KeyCommand::Show { id, format, out }) => {
            keys::show(&layout, *id, *format, out.as_deref(), cli.json).await
        }
        Command::Sign {
            key,
            hash,
            input,
            output,
        } => keys::sign(&layout, *key, input, output.as_deref(), *hash, cli.json).await,
        Command::Encrypt {
            key,
            input,
            output,
            aad,
        } => encrypt::encrypt(&layout, *key, input, output, aad.as_bytes(), cli.json).await,
        Command::Decrypt { input, output, aad } => {
            encrypt::decrypt(&layout, input, output, aad.as_bytes(), cli.json).await
        }
        Command::Demo {
            algorithms,
            count,
            ecdsa_count,
            concurrency,
            nodes,
            threshold,
            openssl_samples,
        } => {
            let options = DemoOptions {
                algorithms: algorithms.clone(),
                count: *count,
                ecdsa_count: *ecdsa_count,
                concurrency: *concurrency,
                nodes: *nodes,
                threshold: *threshold,
                openssl_samples: *openssl_samples,
            };
            demo::run(cli.cluster.as_deref(), &options, cli.json).await
        }
        Command::Bench { args } => bench::run(cli.cluster.as_deref(), cli.json, args),
        Command::Chaos { args } => bench::chaos(cli.json, args),
    }
}
