//! A whole cluster as child processes of this one, on loopback: what `vhsm up` and `vhsm demo` start.
//!
//! Each node and the coordinator run as `vhsm node` / `vhsm coordinator` processes with their output in the
//! cluster's `logs/` directory. Children are told to stop with SIGTERM, and killed if they do not within a few
//! seconds. They also watch their standard input, a pipe from this process: if this process dies without
//! stopping them (even by SIGKILL), the pipe closes and they exit, so no process is left behind.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};
use vhsm_client::{Client, ClientConfig};

use super::layout::{ClusterFile, Layout};

/// The membership the cluster's coordinator saved, if it saved one (after its first membership change).
fn saved_membership(layout: &Layout) -> anyhow::Result<Option<vhsm_core::Membership>> {
    let config = vhsm_coordinator::CoordinatorConfig::load(&layout.coordinator_config())
        .map_err(anyhow::Error::msg)?;
    let path = vhsm_coordinator::membership::default_path(&config);
    vhsm_coordinator::membership::load(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// How long the cluster may take to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a child may take to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

struct Member {
    name: String,
    log: PathBuf,
    child: Child,
}

/// A running local cluster.
pub struct LocalCluster {
    pub layout: Layout,
    pub cluster: ClusterFile,
    members: Vec<Member>,
}

impl LocalCluster {
    /// Starts every node and the coordinator of the (initialised) cluster at `layout`, and waits until the
    /// coordinator reaches every node.
    pub async fn start(layout: &Layout) -> anyhow::Result<Self> {
        let mut cluster = layout.load()?;
        // The membership is the coordinator's: start the nodes it saved (a change whose command was interrupted
        // did not update cluster.toml's copy).
        if let Some(saved) = saved_membership(layout)? {
            cluster.threshold = saved.threshold;
            cluster.nodes = saved
                .nodes
                .iter()
                .map(|n| vhsm_coordinator::config::NodeEntry {
                    id: n.id,
                    address: n.address.clone(),
                })
                .collect();
        }
        let logs = layout.logs_dir();
        std::fs::create_dir_all(&logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        let mut this = LocalCluster {
            layout: layout.clone(),
            cluster: cluster.clone(),
            members: Vec::new(),
        };
        for node in &cluster.nodes {
            this.spawn(
                &format!("node-{}", node.id),
                "node",
                layout.node_config(node.id),
            )?;
        }
        this.spawn("coordinator", "coordinator", layout.coordinator_config())?;
        if let Err(e) = this.wait_ready().await {
            this.stop().await;
            return Err(e);
        }
        Ok(this)
    }

    fn spawn(&mut self, name: &str, role: &str, config: PathBuf) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let log = self.layout.logs_dir().join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(exe)
            .arg(role)
            .arg("--config")
            .arg(&config)
            .arg("--exit-with-parent")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.members.push(Member {
            name: name.to_string(),
            log,
            child,
        });
        Ok(())
    }

    /// The client configuration of this cluster.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        Ok(ClientConfig::load(&self.layout.client_config())?)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let config = self.client_config()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("not started");
        while Instant::now() < deadline {
            for m in &mut self.members {
                if let Some(status) = m.child.try_wait()? {
                    bail!(
                        "{} exited during start-up ({status}); its log {} ends with:\n{}",
                        m.name,
                        m.log.display(),
                        log_tail(&m.log)
                    );
                }
            }
            match Client::connect(&config).await {
                Ok(client) => match client.status().await {
                    Ok(status) if status.nodes.iter().all(|n| n.reachable) => return Ok(()),
                    Ok(status) => {
                        let down: Vec<_> = status
                            .nodes
                            .iter()
                            .filter(|n| !n.reachable)
                            .map(|n| n.id)
                            .collect();
                        last = format!("nodes {down:?} not reachable yet");
                    }
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "the cluster did not come up within {READY_TIMEOUT:?}: {last} (logs in {})",
            self.layout.logs_dir().display()
        )
    }

    /// Returns the first member that has exited, with its status.
    pub fn exited(&mut self) -> Option<(String, String)> {
        for m in &mut self.members {
            if let Ok(Some(status)) = m.child.try_wait() {
                return Some((m.name.clone(), status.to_string()));
            }
        }
        None
    }

    /// Stops every member: SIGTERM, then SIGKILL after a grace period.
    pub async fn stop(&mut self) {
        for m in self.members.iter().rev() {
            if let Some(pid) = m.child.id() {
                if let Ok(pid) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
            }
        }
        for m in &mut self.members {
            match tokio::time::timeout(STOP_GRACE, m.child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("{} did not stop within {STOP_GRACE:?}; killing it", m.name);
                    let _ = m.child.kill().await;
                }
            }
        }
        self.members.clear();
    }
}

fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(15);
    lines
        .iter()
        .skip(skip)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}
