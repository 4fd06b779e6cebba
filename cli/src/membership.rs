//! `vhsm node add|remove`, `vhsm cluster set-threshold|members`: the cluster's membership, changed through the
//! coordinator.
//!
//! Changes are the security officer's: the SO PIN comes from `VHSM_SO_PIN` or the cluster's `client/so.pin`.
//!
//! The coordinator runs each change as a whole (its `membership::change`): after a node is added or the threshold
//! set, every key is reshared to all members with the new threshold; before a node is removed, every key is
//! reshared to the others. Keys stay usable throughout. This command starts the change and follows it with a
//! progress bar; if it is interrupted, the coordinator finishes the change all the same. The membership is the
//! coordinator's (its `membership.json`); `cluster.toml` gets a copy of it for reading, written after each change
//! and by `vhsm cluster members`.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use super::reshare::{print_table, KeyResult};
use vhsm_client::{approval::ApprovalKey, Client, ClientError, MembershipChange};
use vhsm_coordinator::config::NodeEntry;
use vhsm_core::{ChangeApproval, Membership, PinUser};
use vhsm_wire::{pki::ClusterCa, ErrorKind, NodeId};
use zeroize::Zeroizing;

use super::{
    init::write_node,
    keys::{connect, connect_user},
    layout::Layout,
    progress,
};

/// How long `vhsm node add --start` waits for the node it started to answer.
pub const START_WAIT: Duration = Duration::from_secs(30);
/// How long `vhsm node add` waits for the operator to start the node.
pub const OPERATOR_WAIT: Duration = Duration::from_secs(120);
/// Pause between two attempts to add a node that does not answer yet.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What `vhsm node add` is asked for.
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// Where the node listens, `IP:PORT` (written into its `node.toml` as `listen`, and given to the others).
    pub address: String,
    /// Its id; default: one more than the highest member.
    pub id: Option<NodeId>,
    /// Start it here, detached, with its log in the cluster's `logs/`.
    pub start: bool,
    /// How long to wait for it to answer; default [`START_WAIT`] with `start`, else [`OPERATOR_WAIT`].
    pub wait: Option<Duration>,
}

/// Connects to the coordinator and logs in as the security officer, with the PIN from `VHSM_SO_PIN` or the
/// cluster's `client/so.pin`.
pub async fn connect_security_officer(layout: &Layout) -> anyhow::Result<Client> {
    let client = connect(layout).await?;
    let pin = match std::env::var("VHSM_SO_PIN") {
        Ok(pin) => Zeroizing::new(pin),
        Err(_) => {
            let path = layout.client_dir().join("so.pin");
            Zeroizing::new(std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "this command is the security officer's: set VHSM_SO_PIN, or put the SO PIN in {}",
                    path.display()
                )
            })?)
        }
    };
    client
        .login(PinUser::SecurityOfficer, pin.trim().as_bytes())
        .await
        .context("security officer login")?;
    Ok(client)
}

/// The security officer's approval of moving keys onto `committee` at `threshold`, signed with the cluster's
/// approval key (`client/so-approval.key`, or the file `VHSM_SO_APPROVAL_KEY` names): every node checks it
/// before it deals or receives a share of a key that moves.
pub fn approve(
    layout: &Layout,
    committee: &[NodeId],
    threshold: u16,
) -> anyhow::Result<ChangeApproval> {
    let key = ApprovalKey::of_cluster(&layout.client())
        .context("this change needs the security officer's approval key")?;
    Ok(key.approve(committee, threshold))
}

/// Why a node's certificate cannot be issued: the CA key is not in the cluster directory.
fn ca_key_missing(layout: &Layout) -> anyhow::Error {
    let dir = layout.ca_dir();
    anyhow::anyhow!(
        "issuing the new node's certificate needs the cluster CA's key at {}, and it is not there: put ca.key back \
         in {} (from where it is kept offline), run the command again, then take it offline again",
        dir.join("ca.key").display(),
        dir.display()
    )
}

/// Loads the cluster CA (certificate and key) from the cluster directory, to issue a node's certificate.
fn load_ca(layout: &Layout) -> anyhow::Result<ClusterCa> {
    let dir = layout.ca_dir();
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    if !key_path.exists() {
        return Err(ca_key_missing(layout));
    }
    let cert = std::fs::read_to_string(&cert_path)
        .with_context(|| format!("cannot read the CA certificate {}", cert_path.display()))?;
    let key = Zeroizing::new(
        std::fs::read_to_string(&key_path)
            .with_context(|| format!("cannot read the CA key {}", key_path.display()))?,
    );
    ClusterCa::load(&cert, &key).with_context(|| format!("{} is not a CA key", key_path.display()))
}

/// Rewrites `cluster.toml` with the membership's nodes and threshold.
fn update_cluster_file(layout: &Layout, membership: &Membership) -> anyhow::Result<()> {
    let mut cluster = layout.load()?;
    cluster.threshold = membership.threshold;
    cluster.nodes = membership
        .nodes
        .iter()
        .map(|n| NodeEntry {
            id: n.id,
            address: n.address.clone(),
        })
        .collect();
    layout.save(&cluster)
}

/// How often a change in progress is asked for.
const FOLLOW_EVERY: Duration = Duration::from_millis(300);

/// Follows the membership change `started` to its end with a progress bar (keys reshared of those to move),
/// prints each key's result (not with `json`) and keeps `cluster.toml` in step. Returns the keys' results and the
/// membership afterwards; fails with the change's error if it stopped.
async fn follow(
    layout: &Layout,
    client: &Client,
    started: MembershipChange,
    json: bool,
) -> anyhow::Result<(Vec<KeyResult>, Membership)> {
    let bar = (!json).then(|| progress::bar(0, &started.change));
    let followed = client
        .follow_change(started.job, FOLLOW_EVERY, |s| {
            if let Some(b) = &bar {
                b.set_length(u64::from(s.keys_total));
                b.set_position(s.keys.len() as u64);
                b.set_message(match s.current {
                    Some(key) => format!("{}: resharing key {key}", s.change),
                    None => s.change.clone(),
                });
            }
        })
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let status = followed.with_context(|| {
        format!(
            "lost track of the change ({}); the coordinator goes on with it: see `vhsm cluster members`",
            started.change
        )
    })?;
    let results: Vec<KeyResult> = status.keys.iter().map(KeyResult::from).collect();
    if !json && !results.is_empty() {
        print_table(&results);
    }
    // Whatever the outcome, the coordinator's membership is the one to copy.
    let membership = client.membership().await?;
    update_cluster_file(layout, &membership)?;
    match status.outcome {
        Some(Ok(after)) => Ok((results, after)),
        Some(Err(e)) => Err(anyhow::Error::new(ClientError::Service(e))
            .context(format!("{} did not finish", status.change))),
        None => bail!("the change ({}) has no outcome yet", status.change),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn describe(membership: &Membership) -> String {
    let mut out = format!(
        "membership version {}: {} nodes, threshold {}\n",
        membership.version,
        membership.nodes.len(),
        membership.threshold
    );
    for n in &membership.nodes {
        out.push_str(&format!("  node {:<3} {}\n", n.id, n.address));
    }
    out
}

/// A node started by this command, detached from it.
struct Started {
    child: std::process::Child,
    log: PathBuf,
}

/// Starts `vhsm node --config …` for node `id`, detached (its own process group, so that it outlives this
/// command and a Ctrl-C in its terminal), with its output in the cluster's `logs/node-N.log`.
fn start_detached(layout: &Layout, id: NodeId) -> anyhow::Result<Started> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let logs = layout.logs_dir();
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let log = logs.join(format!("node-{id}.log"));
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let err = out.try_clone()?;
    let child = std::process::Command::new(exe)
        .arg("node")
        .arg("--config")
        .arg(layout.node_config(id))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start node {id}"))?;
    Ok(Started { child, log })
}

fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(15);
    lines.into_iter().skip(skip).collect::<Vec<_>>().join("\n")
}

/// Prepares node `id`'s directory, or finds it prepared by an earlier run of this command for the same address.
/// Returns whether it was made now.
fn prepare_node_dir(
    layout: &Layout,
    id: NodeId,
    listen: SocketAddr,
    members: &Membership,
) -> anyhow::Result<bool> {
    let config_path = layout.node_config(id);
    if config_path.exists() {
        let config = vhsm_node::NodeConfig::load(&config_path).map_err(anyhow::Error::msg)?;
        if config.node_id == id && config.listen == listen {
            return Ok(false);
        }
        bail!(
            "{} exists already, for node {} at {} (a node that was removed?): choose another id with --id",
            layout.node_dir(id).display(),
            config.node_id,
            config.listen
        );
    }
    let pins = members_pin_config(layout, members)?;
    let ca = load_ca(layout)?;
    let node = NodeEntry {
        id,
        address: listen.to_string(),
    };
    let peers: Vec<NodeEntry> = members
        .nodes
        .iter()
        .map(|n| NodeEntry {
            id: n.id,
            address: n.address.clone(),
        })
        .collect();
    write_node(layout, &ca, &node, &peers, &pins)?;
    Ok(true)
}

/// The token's PIN hashes for a new node: the `[token]` section of the members' `node.toml` files in the cluster
/// directory (the nodes check the PINs, so a new node needs the same hashes). Refused if no member's file has one,
/// or if the members' files disagree.
fn members_pin_config(
    layout: &Layout,
    members: &Membership,
) -> anyhow::Result<vhsm_node::config::PinConfig> {
    let mut found: Vec<(NodeId, vhsm_node::config::PinConfig)> = Vec::new();
    for member in &members.nodes {
        let path = layout.node_config(member.id);
        if !path.exists() {
            continue;
        }
        let config = vhsm_node::NodeConfig::load(&path).map_err(anyhow::Error::msg)?;
        if let Some(pins) = config.token {
            found.push((member.id, pins));
        }
    }
    let Some((first, pins)) = found.first().cloned() else {
        bail!(
            "the new node needs the token's PIN hashes (the nodes check the PINs), and no member's node.toml in {}              has a [token] section to copy them from: add the section (user_pin_hash, so_pin_hash,              max_pin_failures) to the members' node.toml files, then run this command again",
            layout.root().display()
        );
    };
    if let Some((other, _)) = found.iter().find(|(_, p)| *p != pins) {
        bail!(
            "the [token] sections of node {first}'s and node {other}'s node.toml differ: the nodes must check the same              PINs; make them equal, then run this command again"
        );
    }
    Ok(pins)
}

/// Asks the coordinator to add the node until it answers there (or `wait` has passed).
async fn add_when_up(
    client: &Client,
    (id, address): (NodeId, &str),
    approval: &ChangeApproval,
    wait: Duration,
    started: &mut Option<Started>,
    json: bool,
) -> anyhow::Result<MembershipChange> {
    let spinner = (!json).then(|| {
        progress::spinner(&format!(
            "waiting for node {id} to answer at {address} (up to {} s)",
            wait.as_secs()
        ))
    });
    let deadline = Instant::now() + wait;
    let outcome = loop {
        if let Some(s) = started.as_mut() {
            if let Some(status) = s.child.try_wait()? {
                break Err(anyhow::anyhow!(
                    "node {id} exited during start-up ({status}); its log {} ends with:\n{}",
                    s.log.display(),
                    log_tail(&s.log)
                ));
            }
        }
        match client.add_node(id, address, Some(approval.clone())).await {
            Ok(started) => break Ok(started),
            Err(ClientError::Service(e))
                if e.kind == ErrorKind::Unavailable && Instant::now() < deadline =>
            {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => break Err(anyhow::Error::new(e).context(format!("node {id} not added"))),
        }
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    outcome
}

/// `vhsm node add --address IP:PORT [--id N] [--start]`.
pub async fn add(layout: &Layout, options: &AddOptions, json: bool) -> anyhow::Result<()> {
    layout.load()?;
    let listen: SocketAddr = options.address.trim().parse().with_context(|| {
        format!(
            "--address {} is not IP:PORT (the address the node listens on and the others reach it at)",
            options.address
        )
    })?;
    let address = listen.to_string();
    // Without the CA key nothing can be done, unless an earlier run prepared the node's directory already.
    if !layout.ca_dir().join("ca.key").exists()
        && !options.id.is_some_and(|id| layout.node_config(id).exists())
    {
        return Err(ca_key_missing(layout));
    }
    let client = connect_security_officer(layout).await?;
    let current = client.membership().await?;
    let id = match options.id {
        Some(id) => id,
        None => current
            .nodes
            .iter()
            .map(|n| n.id)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .context("no node id left")?,
    };
    if id == 0 {
        bail!("node ids start at 1");
    }
    if current.nodes.iter().any(|n| n.id == id) {
        bail!(
            "node {id} is a member already (members {:?})",
            current.ids()
        );
    }
    if let Some(other) = current.nodes.iter().find(|n| n.address == address) {
        bail!("{address} is node {}'s address", other.id);
    }
    let made = prepare_node_dir(layout, id, listen, &current)?;
    let config = layout.node_config(id);
    if !json {
        if made {
            println!(
                "node {id} prepared in {} (certificate from the cluster CA, storage key, node.toml with peers {:?})",
                layout.node_dir(id).display(),
                current.ids()
            );
        } else {
            println!(
                "node {id} was prepared in {} already",
                layout.node_dir(id).display()
            );
        }
    }
    if made && layout.unseal_dir().exists() {
        // The coordinator relays unseal envelopes to members only, and a node must be unsealed to join: a sealed
        // new node could not be let in. Say so rather than let the operator believe it is sealed.
        eprintln!(
            "warning: this cluster's nodes are sealed, but node {id} gets a DEVELOPMENT storage key (storage.key \
             beside its data): `vhsm node add` does not seal new nodes"
        );
    }
    let mut started = None;
    if options.start {
        let s = start_detached(layout, id)?;
        if !json {
            println!(
                "node {id} started (pid {}, detached; log {})",
                s.child.id(),
                s.log.display()
            );
        }
        started = Some(s);
    } else if !json {
        println!(
            "start it now (on its machine, with this directory copied there):\n  vhsm node --config {}",
            config.display()
        );
    }
    let wait = options.wait.unwrap_or(if options.start {
        START_WAIT
    } else {
        OPERATOR_WAIT
    });
    let mut committee = current.ids();
    committee.push(id);
    let approval = approve(layout, &committee, current.threshold)?;
    let change = add_when_up(&client, (id, &address), &approval, wait, &mut started, json).await?;
    let (reshared, membership) = follow(layout, &client, change, json).await?;
    if json {
        return print_json(&serde_json::json!({
            "reshared": reshared,
            "added": id,
            "address": address,
            "node_dir": layout.node_dir(id).display().to_string(),
            "pid": started.as_ref().map(|s| s.child.id()),
            "membership": membership,
        }));
    }
    print!("node {id} added: {}", describe(&membership));
    println!(
        "Every key is now shared among all {} nodes.",
        membership.nodes.len()
    );
    Ok(())
}

/// `vhsm node remove ID [--threshold T]`.
pub async fn remove(
    layout: &Layout,
    id: NodeId,
    threshold: Option<u16>,
    json: bool,
) -> anyhow::Result<()> {
    layout.load()?;
    let client = connect_security_officer(layout).await?;
    let current = client.membership().await?;
    let committee: Vec<NodeId> = current.ids().into_iter().filter(|n| *n != id).collect();
    let approval = approve(layout, &committee, threshold.unwrap_or(current.threshold))?;
    let change = client
        .remove_node(id, threshold, Some(approval))
        .await
        .with_context(|| format!("node {id} not removed"))?;
    let (reshared, membership) = follow(layout, &client, change, json).await?;
    if json {
        return print_json(
            &serde_json::json!({ "removed": id, "membership": membership, "reshared": reshared }),
        );
    }
    print!("node {id} removed: {}", describe(&membership));
    println!(
        "The other nodes no longer talk to it; stop its process. Its directory {} is kept.",
        layout.node_dir(id).display()
    );
    Ok(())
}

/// `vhsm cluster set-threshold T`.
pub async fn set_threshold(layout: &Layout, threshold: u16, json: bool) -> anyhow::Result<()> {
    layout.load()?;
    let client = connect_security_officer(layout).await?;
    let current = client.membership().await?;
    let approval = approve(layout, &current.ids(), threshold)?;
    let change = client
        .set_threshold(threshold, Some(approval))
        .await
        .with_context(|| format!("threshold not set to {threshold}"))?;
    let (reshared, membership) = follow(layout, &client, change, json).await?;
    if json {
        return print_json(&serde_json::json!({ "membership": membership, "reshared": reshared }));
    }
    print!("threshold set: {}", describe(&membership));
    println!("Every key now has it.");
    Ok(())
}

/// `vhsm cluster members`.
pub async fn members(layout: &Layout, json: bool) -> anyhow::Result<()> {
    let client = connect_user(layout).await?;
    let membership = client.membership().await?;
    // Keep the copy in cluster.toml in step (a change whose command was interrupted finished without it).
    if layout.load().is_ok_and(|c| {
        c.threshold != membership.threshold
            || c.nodes
                .iter()
                .map(|n| (n.id, n.address.as_str()))
                .ne(membership.nodes.iter().map(|n| (n.id, n.address.as_str())))
    }) {
        update_cluster_file(layout, &membership)?;
    }
    if json {
        return print_json(&membership);
    }
    print!("{}", describe(&membership));
    Ok(())
}
