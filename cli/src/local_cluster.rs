//! A whole cluster as child processes of this one, on loopback: what `vhsm up` and `vhsm demo` start.
//!
//! Each node and the coordinator run as `vhsm node` / `vhsm coordinator` processes with their output in the
//! cluster's `logs/` directory. Children are told to stop with SIGTERM, and killed if they do not within a few
//! seconds. They also watch their standard input, a pipe from this process: if this process dies without
//! stopping them (even by SIGKILL), the pipe closes and they exit, so no process is left behind.
//!
//! The cluster is **supervised** ([`LocalCluster::supervise`]): a node or the coordinator that exits is reported and
//! started again, after a pause that doubles with each exit in a row (1 s up to 30 s; a member that stayed up a
//! minute starts again at 1 s), while the others go on serving — the failover the product promises, where a
//! newcomer tries it first. At start-up, a node that exits (its start-up checks failed) is reported and retried
//! the same way; the cluster is up once the coordinator reaches every node, or, after the start-up timeout, enough
//! nodes for the threshold.

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
    role: &'static str,
    config: PathBuf,
    log: PathBuf,
    /// `None` while it waits to be started again.
    child: Option<Child>,
    started: Instant,
    /// Exits in a row (reset once it stays up for [`STABLE_AFTER`]).
    exits: u32,
    /// When to start it again, after an exit.
    restart_at: Option<Instant>,
}

/// What happened to a member, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// It exited; it is started again after the pause.
    Exited {
        /// The member (`node-2`, `coordinator`).
        name: String,
        /// Its exit status.
        status: String,
        /// When it is started again.
        restart_in: Duration,
        /// The end of its log.
        log_tail: String,
    },
    /// It was started again.
    Restarted {
        /// The member.
        name: String,
    },
    /// It could not be started again; retried after the pause.
    RestartFailed {
        /// The member.
        name: String,
        /// Why.
        error: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Exited {
                name,
                status,
                restart_in,
                log_tail,
            } => write!(
                f,
                "{name} exited ({status}); starting it again in {} s. Its log ends with:\n{log_tail}",
                restart_in.as_secs()
            ),
            Event::Restarted { name } => write!(f, "{name} started again"),
            Event::RestartFailed { name, error } => {
                write!(f, "{name} could not be started again ({error}); retrying")
            }
        }
    }
}

/// The first pause before a member is started again.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A member up this long is well again: its next exit waits [`FIRST_BACKOFF`].
const STABLE_AFTER: Duration = Duration::from_secs(60);

fn backoff(exits: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << exits.saturating_sub(1).min(5))
        .min(MAX_BACKOFF)
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

    fn spawn(&mut self, name: &str, role: &'static str, config: PathBuf) -> anyhow::Result<()> {
        let log = self.layout.logs_dir().join(format!("{name}.log"));
        let child =
            start_process(role, &config, &log).with_context(|| format!("cannot start {name}"))?;
        self.members.push(Member {
            name: name.to_string(),
            role,
            config,
            log,
            child: Some(child),
            started: Instant::now(),
            exits: 0,
            restart_at: None,
        });
        Ok(())
    }

    /// Looks after the members: reports those that exited and starts them again when their pause is over.
    /// Call it every few hundred milliseconds; returns what happened since the last call.
    pub fn supervise(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let now = Instant::now();
        for m in &mut self.members {
            if let Some(child) = m.child.as_mut() {
                let Ok(Some(status)) = child.try_wait() else {
                    continue;
                };
                if m.started.elapsed() >= STABLE_AFTER {
                    m.exits = 0;
                }
                m.exits += 1;
                let pause = backoff(m.exits);
                m.child = None;
                m.restart_at = Some(now + pause);
                events.push(Event::Exited {
                    name: m.name.clone(),
                    status: status.to_string(),
                    restart_in: pause,
                    log_tail: log_tail(&m.log),
                });
            } else if m.restart_at.is_some_and(|at| at <= now) {
                match start_process(m.role, &m.config, &m.log) {
                    Ok(child) => {
                        m.child = Some(child);
                        m.started = Instant::now();
                        m.restart_at = None;
                        events.push(Event::Restarted {
                            name: m.name.clone(),
                        });
                    }
                    Err(e) => {
                        m.exits += 1;
                        m.restart_at = Some(now + backoff(m.exits));
                        events.push(Event::RestartFailed {
                            name: m.name.clone(),
                            error: format!("{e:#}"),
                        });
                    }
                }
            }
        }
        events
    }

    /// The client configuration of this cluster.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        Ok(ClientConfig::load(&self.layout.client_config())?)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let config = self.client_config()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("not started");
        let mut enough = false;
        while Instant::now() < deadline {
            for event in self.supervise() {
                // The coordinator is the one member the cluster cannot be used without.
                if let Event::Exited { name, .. } = &event {
                    if name == "coordinator" {
                        bail!("{event}");
                    }
                }
                eprintln!("{event}");
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
                        enough = status.nodes.len() - down.len() >= usize::from(status.threshold);
                        last = format!("nodes {down:?} not reachable yet");
                    }
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if enough {
            eprintln!(
                "the cluster is up without every node ({last}); the others are started again as they exit \
                 (logs in {})",
                self.layout.logs_dir().display()
            );
            return Ok(());
        }
        bail!(
            "the cluster did not come up within {READY_TIMEOUT:?}: {last} (logs in {})",
            self.layout.logs_dir().display()
        )
    }

    /// Stops every member: SIGTERM, then SIGKILL after a grace period.
    pub async fn stop(&mut self) {
        for m in self.members.iter().rev() {
            if let Some(pid) = m.child.as_ref().and_then(Child::id) {
                if let Ok(pid) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
            }
        }
        for m in &mut self.members {
            let Some(child) = m.child.as_mut() else {
                continue;
            };
            match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("{} did not stop within {STOP_GRACE:?}; killing it", m.name);
                    let _ = child.kill().await;
                }
            }
        }
        self.members.clear();
    }
}

/// Starts `vhsm ROLE --config CONFIG --exit-with-parent`, its output appended to `log`.
fn start_process(
    role: &str,
    config: &std::path::Path,
    log: &std::path::Path,
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let err = out.try_clone()?;
    Ok(Command::new(exe)
        .arg(role)
        .arg("--config")
        .arg(config)
        .arg("--exit-with-parent")
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_thirty_seconds() {
        let pauses: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(pauses, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
