//! Each node in a network namespace of its own; partitions made with nftables.
//!
//! [`NetnsNetwork::install`] (before the members start, as root) makes, for a cluster of `n` nodes:
//! - a bridge `vb<pid>-<k>` in the root namespace with the first address of a /28 of 10.64.0.0/10 (chosen from this
//!   process's id and a counter, so that concurrent tests and processes do not collide), where the coordinator
//!   runs (it reaches the nodes through the bridge, from that address);
//! - per node `i`, a namespace `vhsmt-<pid>-<k>-n<i>` with loopback up and one end of a veth pair (`eth0`, the
//!   /28's address `i + 1` past the bridge's), whose other end `vh<pid>-<k>-<i>` is on the bridge;
//! - in each node's namespace an nftables table `inet vhsm_test` with a set `blocked` of IPv4 addresses and two
//!   rules: drop what comes from (input) and goes to (output) an address in the set.
//!
//! It rewrites the configurations so that node `i` listens on its namespace's address and is dialled there by the
//! coordinator and its peers, and has the cluster start node `i` with `ip netns exec vhsmt-…-n<i>` (which execs
//! `vhsm`, so the process the cluster holds is the node).
//!
//! A cut between nodes `i` and `j` adds `j`'s address to `i`'s blocked set and `i`'s to `j`'s; a cut between the
//! coordinator and node `j` adds the bridge's address to `j`'s set. Healing deletes those elements.
//!
//! Dropping the network deletes the namespaces and the bridge (the veth pairs go with their namespaces) — also when
//! a test panics (drop runs while unwinding). Drop it after the processes: [`super::Networked`] does. What a killed
//! test process left behind (names carrying the id of a process that is gone) is deleted by the next install.

use std::{
    collections::BTreeSet,
    io::Write,
    net::{Ipv4Addr, SocketAddr},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex, PoisonError,
    },
};

use anyhow::{bail, Context};

use super::{move_coordinator, node_addresses, rewrite_addresses, Partitions, Side};
use crate::process::ProcessCluster;

/// Node namespaces and a bridge; see the module docs.
#[derive(Debug)]
pub struct NetnsNetwork {
    bridge: String,
    bridge_ip: Ipv4Addr,
    /// Per node (index `id - 1`): its namespace and address.
    nodes: Vec<(String, Ipv4Addr)>,
    /// The (namespace, address) elements added to blocked sets.
    blocked: Mutex<BTreeSet<(String, Ipv4Addr)>>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

const TABLE: &str = "vhsm_test";

/// Runs `program args…` (with `stdin` if given); an error with its output if it fails.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> anyhow::Result<String> {
    run("ip", args, None)
}

/// The /28 for this process's `k`-th network: its first address (the bridge's).
fn subnet(pid: u32, k: u32) -> Ipv4Addr {
    // 10.64.0.0/10 holds 2^18 blocks of 16 addresses.
    let block = (pid.wrapping_mul(64).wrapping_add(k)) % (1 << 18);
    let base = (10u32 << 24) | (64 << 16) | (block << 4);
    Ipv4Addr::from(base + 1)
}

/// Whether the process `pid` is running.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// This process's effective user id, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Deletes the namespaces and bridges that earlier test processes, now gone, left behind (killed before their drop
/// ran).
fn sweep_stale() {
    let pid_of = |name: &str, prefix: &str| -> Option<u32> {
        name.strip_prefix(prefix)?.split('-').next()?.parse().ok()
    };
    if let Ok(list) = ip(&["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if pid_of(name, "vhsmt-").is_some_and(|pid| !alive(pid)) {
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    if let Ok(list) = ip(&["-o", "link", "show", "type", "bridge"]) {
        for line in list.lines() {
            let Some(name) = line.split(':').nth(1).map(str::trim) else {
                continue;
            };
            if pid_of(name, "vb").is_some_and(|pid| !alive(pid)) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

impl NetnsNetwork {
    /// Why namespaces cannot be used here (`None`: they can): not root, `ip` or `nft` missing, or a namespace
    /// cannot be made.
    pub fn unavailable() -> Option<String> {
        if effective_uid() != Some(0) {
            return Some("network namespaces need root (run as root, as .ci/run does)".into());
        }
        if run("ip", &["-V"], None).is_err() {
            return Some("`ip` (iproute2) is not installed (.ci/run installs it)".into());
        }
        if run("nft", &["--version"], None).is_err() {
            return Some("`nft` (nftables) is not installed (.ci/run installs it)".into());
        }
        let probe = format!("vhsmt-{}-probe", std::process::id());
        if let Err(e) = ip(&["netns", "add", &probe]) {
            return Some(format!("cannot make a network namespace: {e:#}"));
        }
        let nft = run(
            "ip",
            &[
                "netns", "exec", &probe, "nft", "add", "table", "inet", TABLE,
            ],
            None,
        );
        let _ = ip(&["netns", "del", &probe]);
        if let Err(e) = nft {
            return Some(format!("nftables does not work in a namespace: {e:#}"));
        }
        None
    }

    /// Puts each node of `cluster` (not started yet) in a namespace of its own; see the module docs.
    pub fn install(cluster: &mut ProcessCluster) -> anyhow::Result<Self> {
        sweep_stale();
        let pid = std::process::id();
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let bridge_ip = subnet(pid, k);
        let bridge = format!("vb{pid}-{k}");
        let n = cluster.nodes;
        if n > 13 {
            bail!("a /28 holds at most 13 nodes, not {n}");
        }
        let mut net = NetnsNetwork {
            bridge: bridge.clone(),
            bridge_ip,
            nodes: Vec::new(),
            blocked: Mutex::new(BTreeSet::new()),
        };
        // From here on, whatever was made is removed by `net`'s drop if a step fails.
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{bridge_ip}/28"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for id in 1..=n {
            let ns = format!("vhsmt-{pid}-{k}-n{id}");
            let addr = Ipv4Addr::from(u32::from(bridge_ip) + u32::from(id));
            let veth = format!("vh{pid}-{k}-{id}");
            ip(&["netns", "add", &ns])?;
            net.nodes.push((ns.clone(), addr));
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/28"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            let rules = format!(
                "table inet {TABLE} {{\n\
                 \tset blocked {{ type ipv4_addr; }}\n\
                 \tchain input {{ type filter hook input priority 0; policy accept; ip saddr @blocked drop; }}\n\
                 \tchain output {{ type filter hook output priority 0; policy accept; ip daddr @blocked drop; }}\n\
                 }}\n"
            );
            run(
                "ip",
                &["netns", "exec", &ns, "nft", "-f", "-"],
                Some(&rules),
            )?;
            cluster.set_launcher(
                &format!("node-{id}"),
                ["ip", "netns", "exec", ns.as_str()]
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            );
        }
        let ports = node_addresses(cluster)?;
        let at = |id: u16| {
            let port = ports
                .iter()
                .find(|(n, _)| *n == id)
                .map_or(0, |(_, a)| a.port());
            SocketAddr::new(net.address(id).unwrap_or(bridge_ip).into(), port)
        };
        rewrite_addresses(cluster, at, at)?;
        // The coordinator dials the nodes from the address it listens on: the bridge's, not loopback.
        move_coordinator(cluster, bridge_ip.into())?;
        Ok(net)
    }

    /// Node `id`'s address.
    pub fn address(&self, id: u16) -> Option<Ipv4Addr> {
        self.nodes
            .get(usize::from(id).checked_sub(1)?)
            .map(|(_, a)| *a)
    }

    /// The coordinator's address, as the nodes see it (the bridge's).
    pub fn coordinator_address(&self) -> Ipv4Addr {
        self.bridge_ip
    }

    fn namespace(&self, id: u16) -> anyhow::Result<&str> {
        usize::from(id)
            .checked_sub(1)
            .and_then(|i| self.nodes.get(i))
            .map(|(ns, _)| ns.as_str())
            .with_context(|| format!("no node {id}"))
    }

    fn side_address(&self, side: Side) -> anyhow::Result<Ipv4Addr> {
        match side {
            Side::Coordinator => Ok(self.bridge_ip),
            Side::Node(id) => self.address(id).with_context(|| format!("no node {id}")),
        }
    }

    /// The (namespace, blocked address) elements a cut between `a` and `b` adds.
    fn elements(&self, a: Side, b: Side) -> anyhow::Result<Vec<(String, Ipv4Addr)>> {
        let mut elements = Vec::new();
        for (here, there) in [(a, b), (b, a)] {
            if let Side::Node(id) = here {
                elements.push((self.namespace(id)?.to_string(), self.side_address(there)?));
            }
        }
        Ok(elements)
    }

    fn element(ns: &str, op: &str, addr: Ipv4Addr) -> anyhow::Result<()> {
        run(
            "ip",
            &[
                "netns",
                "exec",
                ns,
                "nft",
                op,
                "element",
                "inet",
                TABLE,
                "blocked",
                &format!("{{ {addr} }}"),
            ],
            None,
        )
        .map(|_| ())
    }
}

impl Partitions for NetnsNetwork {
    fn kind(&self) -> &'static str {
        "netns"
    }

    fn cut(&self, a: Side, b: Side) -> anyhow::Result<()> {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        for (ns, addr) in self.elements(a, b)? {
            if !blocked.contains(&(ns.clone(), addr)) {
                Self::element(&ns, "add", addr)?;
                blocked.insert((ns, addr));
            }
        }
        Ok(())
    }

    fn heal(&self, a: Side, b: Side) -> anyhow::Result<()> {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        for (ns, addr) in self.elements(a, b)? {
            if blocked.remove(&(ns.clone(), addr)) {
                Self::element(&ns, "delete", addr)?;
            }
        }
        Ok(())
    }

    fn heal_all(&self) -> anyhow::Result<()> {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        for (ns, addr) in std::mem::take(&mut *blocked) {
            Self::element(&ns, "delete", addr)?;
        }
        Ok(())
    }
}

impl Drop for NetnsNetwork {
    fn drop(&mut self) {
        for (ns, _) in &self.nodes {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
