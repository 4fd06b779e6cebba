//! Control of the links of a [`ProcessCluster`]: partitions, latency, loss and reordering, per link and at run
//! time (issue 15, "Partitions and bad links").
//!
//! A cluster has two kinds of links, each made by the side that dials:
//! - the coordinator → node `j` (the coordinator dials every node; nodes never dial the coordinator);
//! - node `i` → node `j` (the mesh: each node dials each peer on a QUIC connection of its own, so between two
//!   nodes there are two links, one each way, and a partition cuts both).
//!
//! Two ways to control them, behind the same [`Partitions`] trait so that a scenario is written once:
//! - [`proxy::UdpProxy`]: every link routed through an in-process UDP proxy on 127.0.0.1 that can add latency,
//!   drop a fraction of datagrams, hold some back (reordering) and cut the link. Needs no privileges.
//! - [`netns::NetnsNetwork`]: each node process in a network namespace of its own (iproute2), joined by veth pairs
//!   to a bridge in the root namespace where the coordinator runs; partitions are `nft` drop rules inside the
//!   nodes' namespaces. Needs root, `ip` and `nft` ([`netns::NetnsNetwork::unavailable`] says why not).
//!
//! Both rewrite the configurations `vhsm init` wrote (`coordinator.toml`'s `nodes`, each `node.toml`'s `listen`
//! and `peers`) before the processes start. Nothing in the product knows: the nodes and the coordinator identify
//! each other by their TLS certificates only, never by the source address of a datagram.
//!
//! Addresses are the same everywhere: the coordinator gives the nodes its membership, whose node addresses then
//! replace `node.toml`'s `peers` (`vhsm_node::membership`), so a node has one address that the coordinator and its
//! peers all dial. The proxy therefore tells the links to a node apart by who sends (see [`proxy`]).

pub mod netns;
pub mod proxy;

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
};

use anyhow::Context;

use crate::process::ProcessCluster;

/// One end of a link: the coordinator or a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The coordinator.
    Coordinator,
    /// Node `id`.
    Node(u16),
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Coordinator => f.write_str("coordinator"),
            Side::Node(id) => write!(f, "node {id}"),
        }
    }
}

/// Cutting and healing links at run time. A cut drops every datagram between the two sides, both ways, until it is
/// healed; cuts are independent of each other (healing one leaves the others).
pub trait Partitions {
    /// What kind of network this is (for messages: `udp-proxy`, `netns`).
    fn kind(&self) -> &'static str;

    /// Cuts every link between `a` and `b`.
    fn cut(&self, a: Side, b: Side) -> anyhow::Result<()>;

    /// Heals the cut between `a` and `b` (nothing if there is none).
    fn heal(&self, a: Side, b: Side) -> anyhow::Result<()>;

    /// Heals every cut.
    fn heal_all(&self) -> anyhow::Result<()>;

    /// Cuts node `node` off from every other of the `nodes` nodes (not from the coordinator).
    fn cut_from_peers(&self, node: u16, nodes: u16) -> anyhow::Result<()> {
        for peer in (1..=nodes).filter(|&p| p != node) {
            self.cut(Side::Node(node), Side::Node(peer))?;
        }
        Ok(())
    }
}

/// Where each node listens, from `coordinator.toml` (id, address).
pub fn node_addresses(cluster: &ProcessCluster) -> anyhow::Result<Vec<(u16, SocketAddr)>> {
    let table = read_toml(&cluster.coordinator_config())?;
    let nodes = table
        .get("nodes")
        .and_then(|n| n.as_array())
        .context("coordinator.toml has no [[nodes]]")?;
    nodes
        .iter()
        .map(|n| {
            let id = n
                .get("id")
                .and_then(|v| v.as_integer())
                .and_then(|v| u16::try_from(v).ok())
                .context("a [[nodes]] entry without an id")?;
            let address = n
                .get("address")
                .and_then(|v| v.as_str())
                .context("a [[nodes]] entry without an address")?
                .parse()
                .context("a node address that is not IP:PORT")?;
            Ok((id, address))
        })
        .collect()
}

/// Rewrites the addresses the cluster's members use: `coordinator.toml`'s node `j` and every `node.toml`'s peer `j`
/// become `dial(j)`, and node `j` listens on `listen(j)`.
pub fn rewrite_addresses(
    cluster: &ProcessCluster,
    listen: impl Fn(u16) -> SocketAddr,
    dial: impl Fn(u16) -> SocketAddr,
) -> anyhow::Result<()> {
    let set_addresses = |entries: Option<&mut toml::Value>, what: &str| -> anyhow::Result<()> {
        let entries = entries
            .and_then(|n| n.as_array_mut())
            .with_context(|| format!("no {what}"))?;
        for entry in entries {
            let id = entry
                .get("id")
                .and_then(|v| v.as_integer())
                .and_then(|v| u16::try_from(v).ok())
                .with_context(|| format!("an entry of {what} without an id"))?;
            let table = entry
                .as_table_mut()
                .with_context(|| format!("{what} is not a table"))?;
            table.insert("address".into(), dial(id).to_string().into());
        }
        Ok(())
    };
    let path = cluster.coordinator_config();
    let mut table = read_toml(&path)?;
    set_addresses(table.get_mut("nodes"), "coordinator.toml [[nodes]]")?;
    write_toml(&path, &table)?;
    for id in 1..=cluster.nodes {
        let path = cluster.node_config(id);
        let mut table = read_toml(&path)?;
        table.insert("listen".into(), listen(id).to_string().into());
        if table.contains_key("peers") {
            set_addresses(table.get_mut("peers"), "node.toml [[peers]]")?;
        }
        write_toml(&path, &table)?;
    }
    Ok(())
}

/// Moves the coordinator to address `ip` (same port): where it listens (`coordinator.toml`'s `listen`) and where
/// clients find it (`client/client.toml`, `cluster.toml`). The coordinator dials the nodes from the socket it
/// listens on, so it reaches only nodes that address can reach (`vhsm_coordinator::server` makes one endpoint of
/// `listen` for both).
pub fn move_coordinator(cluster: &ProcessCluster, ip: IpAddr) -> anyhow::Result<()> {
    let path = cluster.coordinator_config();
    let mut table = read_toml(&path)?;
    let listen: SocketAddr = table
        .get("listen")
        .and_then(|v| v.as_str())
        .context("coordinator.toml has no listen")?
        .parse()
        .context("coordinator.toml's listen is not IP:PORT")?;
    let moved = SocketAddr::new(ip, listen.port()).to_string();
    table.insert("listen".into(), moved.clone().into());
    write_toml(&path, &table)?;
    for path in [
        cluster.path().join("client").join("client.toml"),
        cluster.path().join("cluster.toml"),
    ] {
        if path.exists() {
            let mut table = read_toml(&path)?;
            table.insert("coordinator".into(), moved.clone().into());
            write_toml(&path, &table)?;
        }
    }
    Ok(())
}

fn read_toml(path: &Path) -> anyhow::Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.parse()
        .with_context(|| format!("{} is not TOML", path.display()))
}

fn write_toml(path: &Path, table: &toml::Table) -> anyhow::Result<()> {
    let text = toml::to_string(table).context("cannot write TOML")?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A cluster and the network it runs on, dropped in that order: the processes are gone before the network is
/// taken down (a namespace is removed only once no process is left in it).
#[derive(Debug)]
pub struct Networked<N> {
    /// The processes.
    pub cluster: ProcessCluster,
    /// The network between them.
    pub net: N,
}
