//! A cluster of real `vhsm` processes on 127.0.0.1: made by `vhsm init` in a temporary directory (ports chosen by
//! the OS), one process per node and one coordinator, every process killed when the [`ProcessCluster`] is dropped
//! (pass or fail) — and, because each runs with `--exit-with-parent` on a pipe from this process, also when this
//! process dies without dropping it. Everything it waits for has a deadline.
//!
//! The `vhsm` binary is found by [`vhsm_binary`]: `VHSM_BIN` if set, else beside the running program (a
//! benchmark in `target/release/`) or one directory up (a test in `target/debug/deps/`).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use vhsm_client::{Client, ClientConfig};

/// How long a cluster may take to come up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `vhsm` binary: `VHSM_BIN` if set, else `vhsm` beside the running program or one directory up.
pub fn vhsm_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("VHSM_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("vhsm"))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no `vhsm` binary beside {} (build it: cargo build -p vhsm-cli; or name it in VHSM_BIN)",
                exe.display()
            )
        })
}

/// The newest `libvhsm_pkcs11.so` cargo built beside the running program (a test binary in `deps/`, or a
/// program in the target directory).
pub fn module_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("libvhsm_pkcs11.so"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .with_context(|| {
            format!(
                "libvhsm_pkcs11.so not found beside {} (build it: cargo build -p vhsm-pkcs11)",
                exe.display()
            )
        })
}

/// Runs `vhsm` with `args` to completion (bounded by `timeout`); returns (success, stdout, stderr), or an error if
/// it cannot start or does not finish in time.
pub fn try_run_vhsm(args: &[&str], timeout: Duration) -> anyhow::Result<(bool, String, String)> {
    run(&vhsm_binary()?, args, &[], timeout)
}

/// Runs `vhsm` with `args` to completion (bounded by `timeout`); returns (success, stdout, stderr). Panics if it
/// cannot start or does not finish in time.
pub fn run_vhsm(args: &[&str], timeout: Duration) -> (bool, String, String) {
    run_vhsm_env(args, &[], timeout)
}

/// Like [`run_vhsm`], with extra environment variables.
pub fn run_vhsm_env(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> (bool, String, String) {
    let vhsm = vhsm_binary().expect("the vhsm binary");
    match run(&vhsm, args, env, timeout) {
        Ok(done) => done,
        Err(e) => panic!("{e:#}"),
    }
}

fn run(
    vhsm: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<(bool, String, String)> {
    let mut child = Command::new(vhsm)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", vhsm.display()))?;
    let deadline = Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "vhsm {args:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A cluster directory made by `vhsm init`, and the processes started from it.
pub struct ProcessCluster {
    dir: tempfile::TempDir,
    vhsm: PathBuf,
    /// How many nodes `vhsm init` made.
    pub nodes: u16,
    children: Vec<(String, Child)>,
    /// Commands that start a member in place of running `vhsm` directly (by process name, e.g. `ip netns exec
    /// NS` for a node in a network namespace, see [`crate::network::netns`]).
    launchers: std::collections::HashMap<String, Vec<std::ffi::OsString>>,
}

impl std::fmt::Debug for ProcessCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessCluster")
            .field("dir", &self.dir.path())
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl ProcessCluster {
    /// `vhsm init` of a `threshold`-of-`nodes` cluster in a new temporary directory, with extra `vhsm init`
    /// arguments (e.g. `--seal`) and environment variables; nothing started yet.
    pub fn try_init(
        nodes: u16,
        threshold: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let vhsm = vhsm_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("vhsm-cluster-")
            .tempdir()
            .context("cannot make a temporary directory")?;
        let path = dir.path().to_str().context("temporary path is not UTF-8")?;
        let (nodes_s, threshold_s) = (nodes.to_string(), threshold.to_string());
        let mut all = vec![
            "init",
            "--dir",
            path,
            "--nodes",
            &nodes_s,
            "--threshold",
            &threshold_s,
        ];
        all.extend_from_slice(args);
        let (ok, out, err) = run(&vhsm, &all, env, Duration::from_secs(60))?;
        if !ok {
            bail!("vhsm init failed:\n{out}\n{err}");
        }
        Ok(ProcessCluster {
            dir,
            vhsm,
            nodes,
            children: Vec::new(),
            launchers: std::collections::HashMap::new(),
        })
    }

    /// `vhsm init` a cluster of `nodes` nodes with `threshold` in a temporary directory (nothing started yet).
    pub fn init(nodes: u16, threshold: u16) -> Self {
        Self::init_with(nodes, threshold, &[], &[])
    }

    /// `vhsm init` with extra arguments (e.g. `--seal`) and environment variables.
    pub fn init_with(nodes: u16, threshold: u16, args: &[&str], env: &[(&str, &str)]) -> Self {
        match Self::try_init(nodes, threshold, args, env) {
            Ok(cluster) => cluster,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// A fresh cluster with every member started, ready (the coordinator reaches every node); errors rather than
    /// panics. For programs (benchmarks) that run a cluster of their own.
    pub async fn launch(nodes: u16, threshold: u16) -> anyhow::Result<Self> {
        Self::launch_with(nodes, threshold, &[]).await
    }

    /// Like [`ProcessCluster::launch`], with extra `vhsm init` arguments (e.g. `--user-pin 1234`).
    pub async fn launch_with(
        nodes: u16,
        threshold: u16,
        init_args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut cluster = Self::try_init(nodes, threshold, init_args, &[])?;
        for id in 1..=nodes {
            cluster.try_spawn(&format!("node-{id}"), "node", cluster.node_config(id), &[])?;
        }
        let config = cluster.coordinator_config();
        cluster.try_spawn("coordinator", "coordinator", config, &[])?;
        cluster.wait_ready(READY_TIMEOUT).await?;
        Ok(cluster)
    }

    /// `init` and start every node and the coordinator; waits until the coordinator reaches every node.
    pub async fn start(nodes: u16, threshold: u16) -> Self {
        Self::init(nodes, threshold).start_all().await
    }

    /// Like [`ProcessCluster::start`], with node `faulty` told to misbehave (`fault`: a `[fault_injection]` line
    /// such as `corrupt_signature_shares = true`; the binary must be built with the `fault-injection` feature).
    pub async fn start_with_fault(nodes: u16, threshold: u16, faulty: u16, fault: &str) -> Self {
        let cluster = Self::init(nodes, threshold);
        cluster.inject_fault(faulty, fault);
        cluster.start_all().await
    }

    /// Starts every node and the coordinator; waits until the coordinator reaches every node.
    pub async fn start_all(mut self) -> Self {
        for id in 1..=self.nodes {
            self.start_node(id);
        }
        self.start_coordinator();
        self.wait_all_reachable().await;
        self
    }

    /// The cluster directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Node `id`'s directory.
    pub fn node_dir(&self, id: u16) -> PathBuf {
        self.path().join("nodes").join(format!("node-{id}"))
    }

    /// Node `id`'s configuration file.
    pub fn node_config(&self, id: u16) -> PathBuf {
        self.node_dir(id).join("node.toml")
    }

    /// The coordinator's configuration file.
    pub fn coordinator_config(&self) -> PathBuf {
        self.path().join("coordinator").join("coordinator.toml")
    }

    /// The log file of the process called `name` (`node-N`, `coordinator`).
    pub fn log(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.log"))
    }

    /// What the process called `name` logged so far.
    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log(name)).unwrap_or_default()
    }

    /// Starts the process called `name` (`node-N`, `coordinator`) from now on through `prefix` (a program and its
    /// arguments, e.g. `ip netns exec NS`), which must end by exec'ing the `vhsm` command line it is given (so that
    /// killing the child kills the member).
    pub fn set_launcher(&mut self, name: &str, prefix: Vec<std::ffi::OsString>) {
        self.launchers.insert(name.to_string(), prefix);
    }

    /// Copies every member's log (`*.log`) into the directory `to` (made if missing), e.g. to read them after a test
    /// that passed (a failed test's are kept by `VHSM_TEST_KEEP_LOGS`).
    pub fn copy_logs(&self, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(self.path())?.flatten() {
            if entry.path().extension().is_some_and(|e| e == "log") {
                std::fs::copy(entry.path(), to.join(entry.file_name()))?;
            }
        }
        Ok(())
    }

    /// The process ids of the members running now.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(_, c)| c.id()).collect()
    }

    /// The process id of the member called `name` (`node-N`, `coordinator`), if it runs.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
    }

    /// Sends `signal` to the member called `name` (e.g. SIGSTOP and SIGCONT to pause it and let it go on); it
    /// stays a member (unlike [`ProcessCluster::kill`]).
    pub fn signal(&self, name: &str, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let pid = self
            .pid(name)
            .with_context(|| format!("no process called {name}"))?;
        let pid = i32::try_from(pid).context("a process id that does not fit an i32")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .with_context(|| format!("cannot send {signal} to {name}"))
    }

    fn try_spawn(
        &mut self,
        name: &str,
        role: &str,
        config: PathBuf,
        env: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let log_path = self.log(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut command = match self.launchers.get(name).and_then(|p| p.split_first()) {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&self.vhsm);
                command
            }
            None => Command::new(&self.vhsm),
        };
        let child = command
            .arg(role)
            .arg("--config")
            .arg(&config)
            .arg("--exit-with-parent")
            .env(
                "RUST_LOG",
                std::env::var("VHSM_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            // A pipe nobody writes to: the member exits when it closes, i.e. when this process is gone.
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.vhsm.display()))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    fn spawn(&mut self, name: &str, role: &str, config: PathBuf, env: &[(&str, &str)]) {
        if let Err(e) = self.try_spawn(name, role, config, env) {
            panic!("{e:#}");
        }
    }

    /// Starts node `id`.
    pub fn start_node(&mut self, id: u16) {
        self.start_node_with_env(id, &[]);
    }

    /// Starts node `id` with extra environment variables (e.g. its passphrase).
    pub fn start_node_with_env(&mut self, id: u16, env: &[(&str, &str)]) {
        let config = self.node_config(id);
        self.spawn(&format!("node-{id}"), "node", config, env);
    }

    /// Starts the coordinator.
    pub fn start_coordinator(&mut self) {
        self.start_coordinator_with_env(&[]);
    }

    /// Starts the coordinator with extra environment variables (e.g. a test-only crash point).
    pub fn start_coordinator_with_env(&mut self, env: &[(&str, &str)]) {
        let config = self.coordinator_config();
        self.spawn("coordinator", "coordinator", config, env);
    }

    fn position(&self, name: &str) -> usize {
        self.children
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process called {name}"))
    }

    /// Waits (at most `within`) for the process called `name` to exit by itself (a crash point); panics if it is
    /// still running. Forgets it.
    pub fn wait_exit(&mut self, name: &str, within: Duration) {
        let pos = self.position(name);
        let deadline = Instant::now() + within;
        loop {
            let exited = self
                .children
                .get_mut(pos)
                .is_some_and(|(_, child)| matches!(child.try_wait(), Ok(Some(_))));
            if exited {
                self.children.remove(pos);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs the process called `name` and waits for it to be gone.
    pub fn kill(&mut self, name: &str) {
        let pos = self.position(name);
        let (_, mut child) = self.children.remove(pos);
        child.kill().expect("kill a member");
        child.wait().expect("reap a member");
    }

    /// SIGTERMs the process called `name` (the way an operator or a service manager stops it) and waits for it
    /// to exit, at most `within`; returns how long it took. Panics (after SIGKILLing it) if it is still running
    /// then. Forgets it.
    pub fn terminate(&mut self, name: &str, within: Duration) -> Duration {
        match self.try_terminate(name, within) {
            Ok(took) => took,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// Like [`ProcessCluster::terminate`], but a member still running after `within` is SIGKILLed and reported
    /// as an error (it is forgotten either way).
    pub fn try_terminate(&mut self, name: &str, within: Duration) -> anyhow::Result<Duration> {
        let pos = self
            .children
            .iter()
            .position(|(n, _)| n == name)
            .with_context(|| format!("no process called {name}"))?;
        let (_, mut child) = self.children.remove(pos);
        let pid = i32::try_from(child.id()).context("a process id that does not fit an i32")?;
        let started = Instant::now();
        if let Err(e) = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        ) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("cannot SIGTERM {name}: {e}");
        }
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > within {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{name} did not exit within {within:?} of SIGTERM (SIGKILLed)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sets a node's test-only fault injection (before it starts).
    pub fn inject_fault(&self, id: u16, toml_line: &str) {
        let path = self.node_config(id);
        let text = std::fs::read_to_string(&path).expect("read node.toml");
        // `vhsm init` of a fault-injection build writes the section with every fault off.
        let (name, _) = toml_line.split_once('=').expect("a `name = value` line");
        let off = format!("{} = false", name.trim());
        assert!(text.contains(&off), "no '{off}' in {}", path.display());
        std::fs::write(path, text.replace(&off, toml_line)).expect("write node.toml");
    }

    /// Turns a node's fault injection off again (before it restarts).
    pub fn clear_fault(&self, id: u16, name: &str) {
        let path = self.node_config(id);
        let text = std::fs::read_to_string(&path).expect("read node.toml");
        let on = format!("{name} = true");
        assert!(text.contains(&on), "no '{on}' in {}", path.display());
        std::fs::write(path, text.replace(&on, &format!("{name} = false")))
            .expect("write node.toml");
    }

    /// The client configuration `vhsm init` wrote.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::load(&self.path().join("client").join("client.toml"))
            .expect("client/client.toml")
    }

    /// The token user's PIN that `vhsm init` wrote.
    pub fn user_pin(&self) -> String {
        std::fs::read_to_string(self.path().join("client").join("user.pin"))
            .expect("client/user.pin")
    }

    /// A client connection, not logged in.
    pub async fn anonymous_client(&self) -> Client {
        Client::connect(&self.client_config())
            .await
            .expect("connect to the coordinator")
    }

    /// A client connection logged in as the token's user.
    pub async fn client(&self) -> Client {
        let client = self.anonymous_client().await;
        client
            .login(vhsm_core::PinUser::User, self.user_pin().trim().as_bytes())
            .await
            .expect("log in as the user");
        client
    }

    /// Waits (at most `within`) until the coordinator answers and reaches every node.
    pub async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let config = ClientConfig::load(&self.path().join("client").join("client.toml"))
            .context("client/client.toml")?;
        let mut last = String::new();
        while Instant::now() < deadline {
            match Client::connect(&config).await {
                Ok(client) => match client.status().await {
                    Ok(s) if s.nodes.iter().all(|n| n.reachable) => return Ok(()),
                    Ok(s) => last = format!("{:?}", s.nodes),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "cluster not ready within {within:?}: {last}\ncoordinator log:\n{}",
            self.read_log("coordinator")
        )
    }

    /// Waits (at most 30 s) until the coordinator answers and reaches every node; panics if it does not.
    pub async fn wait_all_reachable(&self) {
        if let Err(e) = self.wait_ready(READY_TIMEOUT).await {
            panic!("{e:#}");
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failed test: keep the logs where VHSM_TEST_KEEP_LOGS says, and show what the processes said last
            // (their logs go with the temporary directory).
            if let Ok(keep) = std::env::var("VHSM_TEST_KEEP_LOGS") {
                let _ = std::fs::create_dir_all(&keep);
                for entry in std::fs::read_dir(self.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if entry.path().extension().is_some_and(|e| e == "log") {
                        let _ =
                            std::fs::copy(entry.path(), Path::new(&keep).join(entry.file_name()));
                    }
                }
            }
            let mut names: Vec<String> = (1..=self.nodes).map(|i| format!("node-{i}")).collect();
            names.push("coordinator".into());
            for name in names {
                let log = self.read_log(&name);
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines.get(lines.len().saturating_sub(40)..).unwrap_or(&[]);
                eprintln!("---- last lines of {name}.log\n{}", tail.join("\n"));
            }
        }
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free UDP port on loopback, chosen by the OS.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port on 127.0.0.1")
}

/// Kills a process this test did not start itself (a node `vhsm node add --start` detached) when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The nodes of `cluster`'s `coordinator.toml` (id, address), and a pool that talks to them with the coordinator's
/// identity: to ask every node directly what it holds (`NodeRequest::ListKeys`, `ListStaged`, see [`listed`]).
pub fn as_coordinator(
    cluster: &ProcessCluster,
) -> (Vec<(u16, String)>, vhsm_coordinator::nodes::NodePool) {
    match try_as_coordinator(cluster) {
        Ok(found) => found,
        Err(e) => panic!("{e:#}"),
    }
}

/// Like [`as_coordinator`], returning errors.
pub fn try_as_coordinator(
    cluster: &ProcessCluster,
) -> anyhow::Result<(Vec<(u16, String)>, vhsm_coordinator::nodes::NodePool)> {
    let path = cluster.coordinator_config();
    let config = vhsm_coordinator::config::CoordinatorConfig::load(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let identity = vhsm_wire::tls::TlsIdentity::load(&config.ca_cert, &config.cert, &config.key)
        .map_err(|e| anyhow::anyhow!("the coordinator's identity: {e}"))?;
    let nodes: Vec<(u16, String)> = config
        .nodes
        .iter()
        .map(|n| (n.id, n.address.clone()))
        .collect();
    let endpoint = vhsm_wire::tls::client_endpoint(&identity, false)
        .map_err(|e| anyhow::anyhow!("a client endpoint: {e}"))?;
    let transport = vhsm_coordinator::nodes::QuicTransport::new(endpoint);
    let pool =
        vhsm_coordinator::nodes::NodePool::new(std::sync::Arc::new(transport), nodes.clone());
    Ok((nodes, pool))
}

/// A node's answer to `ListKeys` or `ListStaged` (panics if it gives none within 5 s).
pub async fn listed(
    pool: &vhsm_coordinator::nodes::NodePool,
    id: u16,
    request: vhsm_wire::node_api::NodeRequest,
) -> Vec<vhsm_core::KeyInfo> {
    match try_listed(pool, id, request).await {
        Ok(keys) => keys,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`listed`], returning errors.
pub async fn try_listed(
    pool: &vhsm_coordinator::nodes::NodePool,
    id: u16,
    request: vhsm_wire::node_api::NodeRequest,
) -> Result<Vec<vhsm_core::KeyInfo>, String> {
    match pool.call(id, &request, Duration::from_secs(5)).await {
        Ok(vhsm_wire::node_api::NodeResponse::Keys(keys)) => Ok(keys),
        other => Err(format!("node {id} did not list its keys: {other:?}")),
    }
}
