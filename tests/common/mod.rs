//! A cluster of real `vhsm` processes on 127.0.0.1 for integration tests: ports chosen by the OS, every process
//! killed when the test's `TestCluster` is dropped (pass or fail), and a hard deadline on everything it waits for.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use vhsm_client::{Client, ClientConfig};

/// The `vhsm` binary cargo built for these tests.
pub fn vhsm() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vhsm"))
}

/// Runs `vhsm` with `args` to completion (bounded by `timeout`); returns (success, stdout, stderr).
pub fn run_vhsm(args: &[&str], timeout: Duration) -> (bool, String, String) {
    run_vhsm_env(args, &[], timeout)
}

/// Like [`run_vhsm`], with extra environment variables.
pub fn run_vhsm_env(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> (bool, String, String) {
    let mut child = Command::new(vhsm())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vhsm");
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "vhsm {args:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A cluster directory made by `vhsm init`, and the processes started from it.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub nodes: u16,
    children: Vec<(String, Child)>,
}

impl TestCluster {
    /// `vhsm init` a cluster of `nodes` nodes with `threshold` in a temporary directory (nothing started yet).
    pub fn init(nodes: u16, threshold: u16) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vhsm-test-")
            .tempdir()
            .unwrap();
        let (ok, out, err) = run_vhsm(
            &[
                "init",
                "--dir",
                dir.path().to_str().unwrap(),
                "--nodes",
                &nodes.to_string(),
                "--threshold",
                &threshold.to_string(),
            ],
            Duration::from_secs(30),
        );
        assert!(ok, "vhsm init failed:\n{out}\n{err}");
        TestCluster {
            dir,
            nodes,
            children: Vec::new(),
        }
    }

    /// `vhsm init` with extra arguments (e.g. `--seal`) and environment variables.
    pub fn init_with(nodes: u16, threshold: u16, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vhsm-test-")
            .tempdir()
            .unwrap();
        let (nodes_s, threshold_s) = (nodes.to_string(), threshold.to_string());
        let mut all = vec![
            "init",
            "--dir",
            dir.path().to_str().unwrap(),
            "--nodes",
            &nodes_s,
            "--threshold",
            &threshold_s,
        ];
        all.extend_from_slice(args);
        let (ok, out, err) = run_vhsm_env(&all, env, Duration::from_secs(60));
        assert!(ok, "vhsm init failed:\n{out}\n{err}");
        TestCluster {
            dir,
            nodes,
            children: Vec::new(),
        }
    }

    /// Starts node `id` with extra environment variables (e.g. its passphrase).
    pub fn start_node_with_env(&mut self, id: u16, env: &[(&str, &str)]) {
        let name = format!("node-{id}");
        let config = self.node_dir(id).join("node.toml");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(&name))
            .unwrap();
        let child = Command::new(vhsm())
            .args(["node", "--config", config.to_str().unwrap()])
            .env(
                "RUST_LOG",
                std::env::var("VHSM_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((name, child));
    }

    /// `init` and start every node and the coordinator; waits until the coordinator reaches every node.
    pub async fn start(nodes: u16, threshold: u16) -> Self {
        Self::init(nodes, threshold).start_all().await
    }

    /// Like [`TestCluster::start`], with node `faulty` told to misbehave (`fault`: a `[fault_injection]` line such
    /// as `corrupt_signature_shares = true`).
    pub async fn start_with_fault(nodes: u16, threshold: u16, faulty: u16, fault: &str) -> Self {
        let cluster = Self::init(nodes, threshold);
        cluster.inject_fault(faulty, fault);
        cluster.start_all().await
    }

    async fn start_all(mut self) -> Self {
        for id in 1..=self.nodes {
            self.start_node(id);
        }
        self.start_coordinator();
        self.wait_all_reachable().await;
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn node_dir(&self, id: u16) -> PathBuf {
        self.path().join("nodes").join(format!("node-{id}"))
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.log"))
    }

    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log(name)).unwrap_or_default()
    }

    fn spawn(&mut self, name: &str, role: &str, config: PathBuf) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(name))
            .unwrap();
        let child = Command::new(vhsm())
            .args([role, "--config", config.to_str().unwrap()])
            .env(
                "RUST_LOG",
                std::env::var("VHSM_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((name.to_string(), child));
    }

    pub fn start_node(&mut self, id: u16) {
        let config = self.node_dir(id).join("node.toml");
        self.spawn(&format!("node-{id}"), "node", config);
    }

    /// Starts the coordinator with extra environment variables (e.g. a test-only crash point).
    pub fn start_coordinator_with_env(&mut self, env: &[(&str, &str)]) {
        let config = self.path().join("coordinator").join("coordinator.toml");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log("coordinator"))
            .unwrap();
        let mut command = Command::new(vhsm());
        command
            .args(["coordinator", "--config", config.to_str().unwrap()])
            .env(
                "RUST_LOG",
                std::env::var("VHSM_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            command.env(k, v);
        }
        self.children
            .push(("coordinator".to_string(), command.spawn().unwrap()));
    }

    /// Waits (at most `within`) for the process called `name` to exit by itself (a crash point); panics if it is
    /// still running. Forgets it.
    pub fn wait_exit(&mut self, name: &str, within: Duration) {
        let pos = self
            .children
            .iter()
            .position(|(n, _)| n == name)
            .expect("no such process");
        let deadline = Instant::now() + within;
        loop {
            if self.children[pos].1.try_wait().unwrap().is_some() {
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

    /// Turns a node's fault injection off again (before it restarts).
    pub fn clear_fault(&self, id: u16, name: &str) {
        let path = self.node_dir(id).join("node.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let on = format!("{name} = true");
        assert!(text.contains(&on), "no '{on}' in {}", path.display());
        std::fs::write(path, text.replace(&on, &format!("{name} = false"))).unwrap();
    }

    pub fn start_coordinator(&mut self) {
        let config = self.path().join("coordinator").join("coordinator.toml");
        self.spawn("coordinator", "coordinator", config);
    }

    /// SIGKILLs the process called `name` and waits for it to be gone.
    pub fn kill(&mut self, name: &str) {
        let pos = self
            .children
            .iter()
            .position(|(n, _)| n == name)
            .expect("no such process");
        let (_, mut child) = self.children.remove(pos);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::load(&self.path().join("client").join("client.toml")).unwrap()
    }

    /// The token user's PIN that `vhsm init` wrote.
    pub fn user_pin(&self) -> String {
        std::fs::read_to_string(self.path().join("client").join("user.pin")).unwrap()
    }

    /// A client connection, not logged in.
    pub async fn anonymous_client(&self) -> Client {
        Client::connect(&self.client_config()).await.unwrap()
    }

    /// A client connection logged in as the token's user.
    pub async fn client(&self) -> Client {
        let client = self.anonymous_client().await;
        client
            .login(vhsm_core::PinUser::User, self.user_pin().as_bytes())
            .await
            .unwrap();
        client
    }

    /// Waits (at most 30 s) until the coordinator answers and reaches every node.
    pub async fn wait_all_reachable(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            match Client::connect(&self.client_config()).await {
                Ok(client) => match client.status().await {
                    Ok(s) if s.nodes.iter().all(|n| n.reachable) => return,
                    Ok(s) => last = format!("{:?}", s.nodes),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "cluster not ready within 30 s: {last}\ncoordinator log:\n{}",
            self.read_log("coordinator")
        );
    }

    /// Sets a node's test-only fault injection (before it starts).
    pub fn inject_fault(&self, id: u16, toml_line: &str) {
        let path = self.node_dir(id).join("node.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // `vhsm init` of a fault-injection build writes the section with every fault off.
        let (name, _) = toml_line.split_once('=').unwrap();
        let off = format!("{} = false", name.trim());
        assert!(text.contains(&off), "no '{off}' in {}", path.display());
        std::fs::write(path, text.replace(&off, toml_line)).unwrap();
    }
}

impl Drop for TestCluster {
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
                let tail = &lines[lines.len().saturating_sub(40)..];
                eprintln!("---- last lines of {name}.log\n{}", tail.join("\n"));
            }
        }
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Signs, retrying for up to 5 s while the coordinator still avoids nodes that failed a moment ago (it passes
/// over a failed node for a few seconds, and retries it when it must). The last error if none succeeded.
pub async fn sign_with_retries(
    client: &Client,
    key_id: vhsm_core::KeyId,
    message: &[u8],
) -> Result<(Vec<u8>, Vec<u16>), String> {
    let mut last = Err("not tried".to_string());
    for _ in 0..20 {
        match client.sign(key_id, message, None).await {
            Ok(signed) => return Ok(signed),
            Err(e) => last = Err(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

/// Verifies an Ed25519 signature independently of vHSM.
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    vk.verify_strict(message, &sig).is_ok()
}

/// A free UDP port on loopback, chosen by the OS.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills a process this test did not start itself (a node `vhsm node add --start` detached) when dropped.
pub struct KillOnDrop(pub i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The nodes of `coordinator.toml` (id, address), and a pool that talks to nodes with the coordinator's identity.
pub fn as_coordinator(
    cluster: &TestCluster,
) -> (Vec<(u16, String)>, vhsm_coordinator::nodes::NodePool) {
    let config = vhsm_coordinator::config::CoordinatorConfig::load(
        &cluster.path().join("coordinator").join("coordinator.toml"),
    )
    .unwrap();
    let identity =
        vhsm_wire::tls::TlsIdentity::load(&config.ca_cert, &config.cert, &config.key).unwrap();
    let nodes: Vec<(u16, String)> = config
        .nodes
        .iter()
        .map(|n| (n.id, n.address.clone()))
        .collect();
    let pool = vhsm_coordinator::nodes::NodePool::new(
        vhsm_wire::tls::client_endpoint(&identity, false).unwrap(),
        nodes.clone(),
    );
    (nodes, pool)
}

/// A node's answer to `ListKeys` or `ListStaged`.
pub async fn listed(
    pool: &vhsm_coordinator::nodes::NodePool,
    id: u16,
    request: vhsm_wire::node_api::NodeRequest,
) -> Vec<vhsm_core::KeyInfo> {
    match pool.call(id, &request, Duration::from_secs(5)).await {
        Ok(vhsm_wire::node_api::NodeResponse::Keys(keys)) => keys,
        other => panic!("node {id} did not list its keys: {other:?}"),
    }
}

/// The newest libvhsm_pkcs11.so cargo built for this test (the package's dev-dependency on vhsm-pkcs11): in the
/// target directory, or in its deps/.
pub fn module_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps.parent().unwrap(), deps]
        .iter()
        .map(|dir| dir.join("libvhsm_pkcs11.so"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("libvhsm_pkcs11.so not found next to {}", exe.display()))
}
