//! The nemesis: a mixed load against a cluster of real processes while its members are killed, paused, stopped,
//! cut off and restarted on a seeded random schedule, then every result and every key checked (issue 15, "A
//! nemesis in CI"). `tests/cluster_nemesis.rs` runs it for about two minutes; `vhsm chaos` (the `vhsm-chaos`
//! program, crate `chaos/`) runs it for as long as asked, for soak runs.
//!
//! # What it does
//!
//! [`run`] starts a cluster (3 nodes, threshold 2 by default) in a temporary directory with every node behind the
//! UDP proxy of [`crate::network::proxy`], makes one key of each algorithm (Ed25519, ECDSA P-256, ECDSA secp256k1,
//! split-AES), and then, for the length asked:
//! - **the load**: several clients, each on a connection of its own, run the operations of [`crate::load`] in turn
//!   (sign with each algorithm, encrypt, decrypt a ciphertext made earlier in the run), on every key of the
//!   algorithm in turn — those made during the run too; a client whose connection is gone (the coordinator was
//!   restarted) connects again before its next operation;
//! - **new keys**: another client makes a key every few seconds (the algorithms in turn); key generation needs every
//!   node, so it fails while one is disturbed;
//! - **the nemesis** ([`schedule`]): one disturbance at a time — SIGKILL a node and start it again, SIGSTOP it for a
//!   few seconds and SIGCONT, SIGTERM it and start it again, cut it off from its peers (through the proxy; it still
//!   reaches the coordinator) and heal, restart the coordinator (SIGKILL or SIGTERM) — so that `t` = 2 nodes are
//!   always up and connected, except while the coordinator is down. After each, it waits (bounded) until the
//!   coordinator reaches every node again, lets the cluster settle for a moment (still counted as the
//!   disturbance), and leaves it calm for a few seconds before the next;
//! - **resources** ([`resources`]): every few seconds, the resident memory and open file descriptors of every
//!   member.
//!
//! # What it checks
//!
//! - **No wrong result**: every signature is verified against the key's public key outside vHSM, every decryption
//!   compared with its plaintext, and at the end every ciphertext the load made (up to a cap) is decrypted again;
//! - **no key lost**: every key made before or during the run (acknowledged to its caller) is listed by the
//!   coordinator with its public key, signs or encrypts correctly, and is held by every node at the key's epoch
//!   (asked directly, as the coordinator would: `ListKeys`);
//! - **`vhsm audit verify`** passes on the nodes' audit logs;
//! - **failures only as clear errors**: an operation that ran (even partly) during a disturbance may fail, but only
//!   with `Unavailable` (or `Stale`/`Sealed`) naming nodes, among them the one disturbed — or, while the coordinator
//!   restarts, with the connection's failure. An operation that ran wholly while calm should not fail at all;
//! - **recovery**: after each disturbance the coordinator reaches every node again within a bound; an operation
//!   that has no answer within a bound is a hang;
//! - **resources**: no member's memory or file descriptors grow beyond [`resources::GrowthLimits`].
//!
//! The [`Report`] holds the figures (operations by kind, latency p50/p99/max overall and per kind of disturbance,
//! failures by cause and by the disturbance they ran during, the events, the keys, the trend of every member) and
//! [`Report::problems`] what failed; [`Report::markdown`] renders it.
//!
//! # What it cannot tell
//!
//! - A disturbance that the schedule never drew in a run (a short run sees few); the seed makes a run repeatable
//!   in its plan, not in its timing: where a kill lands in a protocol depends on the machine's speed.
//! - Partitions are made by the proxy, which tells links apart by their source address: it cuts node ↔ node links
//!   (and could cut coordinator ↔ node ones), not a real network's failure modes (asymmetric routes, MTU).
//! - Corrupted or rolled-back storage, misbehaving nodes, clock jumps, full disks: other tests cover those.
//! - Memory growth slower than the run can show: a trend over two minutes says little; the soak run's over thirty
//!   says more, and only for the processes that lived long (a restarted member starts afresh).
//! - It judges an error's clarity by its kind and the nodes it names, not whether the nodes named are *only* the
//!   ones at fault (`tests/cluster_network.rs` checks blame under partitions).

pub mod report;
pub mod resources;
pub mod schedule;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, PoisonError, RwLock,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use nix::sys::signal::Signal;
use vhsm_client::{Client, ClientConfig, ClientError};
use vhsm_core::{Algorithm, KeyId, KeyInfo, PinUser};
use vhsm_wire::{node_api::NodeRequest, ErrorKind};

pub use report::Report;
use report::{EventRecord, OpRecord, Outcome};
use resources::{GrowthLimits, Samples};
use schedule::{EventKind, Planned, Schedule};

use crate::{
    load::{describe, error_cause, run_op, verify_signature, Failure, Keys, Made, Op, AAD},
    network::{proxy::UdpProxy, Networked, Partitions},
    process::{try_as_coordinator, try_listed, try_run_vhsm, ProcessCluster, READY_TIMEOUT},
};

/// How a nemesis run goes.
#[derive(Clone, Debug)]
pub struct Config {
    /// The schedule's seed.
    pub seed: u64,
    /// How long the load and the nemesis run (the cluster's start and the final checks come on top).
    pub length: Duration,
    /// Concurrent load clients.
    pub clients: usize,
    /// Nodes.
    pub nodes: u16,
    /// Threshold.
    pub threshold: u16,
    /// The calm between disturbances, at least and at most.
    pub calm: (Duration, Duration),
    /// After a disturbance is undone and the coordinator reaches every node again, how long the cluster is still
    /// counted as disturbed (reconnections, a restarted node's first requests).
    pub settle: Duration,
    /// A new key this often.
    pub key_every: Duration,
    /// Resources sampled this often.
    pub sample_every: Duration,
    /// How long the cluster may take to reach every node again after a disturbance.
    pub recovery_bound: Duration,
    /// An operation without an answer after this long is a hang (longer than the client's own 60 s timeout).
    pub op_bound: Duration,
    /// How long a SIGTERMed member may take to exit before it is SIGKILLed (and that noted).
    pub terminate_bound: Duration,
    /// At most this many of the load's ciphertexts are decrypted again at the end.
    pub recheck_cap: usize,
    /// How much memory and fd growth is flagged.
    pub growth: GrowthLimits,
    /// Copy the members' logs here at the end.
    pub keep_logs: Option<PathBuf>,
}

impl Config {
    /// A run of `length` with the defaults: 3 nodes, threshold 2, 4 clients, 4–8 s of calm between disturbances,
    /// 2 s of settling, a key every 15 s, resources sampled every 2–10 s (about 100 samples).
    pub fn new(seed: u64, length: Duration) -> Self {
        Config {
            seed,
            length,
            clients: 4,
            nodes: 3,
            threshold: 2,
            calm: (Duration::from_secs(4), Duration::from_secs(8)),
            settle: Duration::from_secs(2),
            key_every: Duration::from_secs(15),
            sample_every: resources::interval_for(length),
            recovery_bound: Duration::from_secs(60),
            op_bound: Duration::from_secs(90),
            terminate_bound: Duration::from_secs(15),
            recheck_cap: 5_000,
            growth: GrowthLimits::default(),
            keep_logs: None,
        }
    }
}

/// What a run tells its caller as it goes (a test prints, a program draws a progress bar).
pub trait Observer: Send + Sync {
    /// A line worth showing (a disturbance begins or ends, a phase of the run).
    fn line(&self, _text: &str) {}
    /// About once a second while the load runs: how far, operations so far, failures so far, what is going on.
    fn tick(&self, _elapsed: Duration, _ops: u64, _failed: u64, _now: &str) {}
}

/// An observer that prints lines to standard output (a test with `--nocapture`).
#[derive(Debug, Default)]
pub struct PrintLines;

impl Observer for PrintLines {
    fn line(&self, text: &str) {
        println!("[nemesis] {text}");
    }
}

/// Which disturbance is active, and the history of changes, so that an operation is judged by every disturbance
/// it lived through: generation `g`'s disturbance is `history[g]` (`None`: calm).
#[derive(Debug)]
struct Board {
    history: Vec<Option<usize>>,
    /// Every event so far (event `id` at `id - 1`): its kind and the node it disturbs.
    events: Vec<(EventKind, Option<u16>)>,
    /// Bumped when the coordinator restarts: clients connected before must connect again.
    coordinator_generation: u64,
    /// What is going on, for the progress display.
    now: String,
}

impl Board {
    fn generation(&self) -> usize {
        self.history.len().saturating_sub(1)
    }

    fn begin(&mut self, kind: EventKind, node: Option<u16>, label: String) -> usize {
        self.events.push((kind, node));
        let id = self.events.len();
        self.history.push(Some(id));
        self.now = label;
        id
    }

    fn end(&mut self) {
        self.history.push(None);
        self.now = "calm".into();
    }
}

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the load's tasks share.
struct Load {
    config: ClientConfig,
    pin: String,
    keys: RwLock<Arc<Keys>>,
    /// Every key made and acknowledged (before and during the run).
    created: Mutex<Vec<KeyInfo>>,
    made: Made,
    board: Shared<Board>,
    records: Shared<Vec<OpRecord>>,
    stop: AtomicBool,
    ops: AtomicU64,
    failed: AtomicU64,
    op_bound: Duration,
}

/// Whether `e` is a clear error for an operation that ran during a disturbance of kind `kind` of node `node`:
/// `Unavailable` (or `Stale`, `Sealed`) naming nodes, the disturbed one among them; while the coordinator restarts,
/// also the connection's failure. A timeout is never clear (a caller waited for nothing).
fn is_clear(e: &ClientError, kind: EventKind, node: Option<u16>) -> bool {
    match e {
        ClientError::Service(w) => {
            matches!(
                w.kind,
                ErrorKind::Unavailable | ErrorKind::Stale | ErrorKind::Sealed
            ) && !w.nodes.is_empty()
                && node.is_none_or(|n| w.nodes.contains(&n))
        }
        ClientError::Frame(_) | ClientError::Connect { .. } => {
            kind == EventKind::RestartCoordinator
        }
        _ => false,
    }
}

impl Load {
    fn generations(&self) -> (usize, u64) {
        let board = lock(&self.board);
        (board.generation(), board.coordinator_generation)
    }

    /// The first disturbance active between generations `from` and `to` (inclusive): its id, kind and node.
    fn disturbance(&self, from: usize, to: usize) -> Option<(usize, EventKind, Option<u16>)> {
        let board = lock(&self.board);
        let id = board
            .history
            .get(from..=to)
            .unwrap_or_default()
            .iter()
            .flatten()
            .next()
            .copied()?;
        let (kind, node) = board.events.get(id - 1).copied()?;
        Some((id, kind, node))
    }

    /// Runs `work`, bounded by `op_bound`, and records it as `kind`, judged by the disturbances it lived through.
    async fn timed<F>(&self, kind: &str, work: F) -> bool
    where
        F: std::future::Future<Output = Result<(), Failure>>,
    {
        let (before, _) = self.generations();
        let started = Instant::now();
        let result = match tokio::time::timeout(self.op_bound, work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Error(ClientError::Timeout(self.op_bound))),
        };
        let took = started.elapsed();
        let (after, _) = self.generations();
        let event = self.disturbance(before, after);
        let ok = result.is_ok();
        let outcome = match result {
            Ok(()) => Outcome::Ok,
            Err(Failure::Wrong(what)) => Outcome::Wrong(what),
            Err(Failure::Error(e)) => Outcome::Failed {
                cause: error_cause(&e),
                text: describe(&e),
                clear: event.is_some_and(|(_, kind, node)| is_clear(&e, kind, node)),
            },
        };
        self.ops.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.records).push(OpRecord {
            kind: kind.to_string(),
            took,
            event: event.map(|(id, _, _)| id),
            outcome,
        });
        ok
    }

    /// A new connection, logged in as the user.
    async fn connect(&self) -> Result<Client, ClientError> {
        let client = Client::connect(&self.config).await?;
        client
            .login(PinUser::User, self.pin.trim().as_bytes())
            .await?;
        Ok(client)
    }

    /// A connection that is open and newer than the last coordinator restart: `current` if it is, else a new one
    /// (the attempt recorded as a `connect` operation). `None` if it cannot connect now.
    async fn connection(&self, current: &mut Option<(Client, u64)>) -> bool {
        let (_, coordinator) = self.generations();
        if current
            .as_ref()
            .is_some_and(|(c, g)| !c.is_closed() && *g >= coordinator)
        {
            return true;
        }
        *current = None;
        let made: Shared<Option<Client>> = Arc::default();
        let ok = self
            .timed("connect", async {
                let client = self.connect().await.map_err(Failure::Error)?;
                *lock(&made) = Some(client);
                Ok(())
            })
            .await;
        *current = lock(&made).take().map(|c| (c, coordinator));
        if !ok {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        current.is_some()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `d`, or less if the load stops.
    async fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() && Instant::now() < until {
            tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(200))).await;
        }
    }
}

/// One load client: the operations in turn until the load stops.
async fn worker(load: Arc<Load>, w: usize) {
    let mut connection = None;
    let mut n = 0u64;
    while !load.stopped() {
        if !load.connection(&mut connection).await {
            continue;
        }
        let Some((client, _)) = &connection else {
            continue;
        };
        let i = (usize::try_from(n).unwrap_or(0) + w) % Op::ALL.len();
        let op = Op::ALL.get(i).copied().unwrap_or(Op::SignEd25519);
        let keys = load
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let seq = n * 64 + w as u64;
        load.timed(op.name(), run_op(client, &keys, op, seq, &load.made))
            .await;
        n += 1;
    }
}

/// Makes a key every `every` (the algorithms in turn) until the load stops; the load uses them from then on.
async fn key_maker(load: Arc<Load>, every: Duration) {
    const ALGORITHMS: [Algorithm; 4] = [
        Algorithm::Ed25519,
        Algorithm::SplitAes256,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaSecp256k1,
    ];
    let mut connection = None;
    let mut i = 0usize;
    loop {
        load.sleep(every).await;
        if load.stopped() {
            return;
        }
        if !load.connection(&mut connection).await {
            continue;
        }
        let Some((client, _)) = &connection else {
            continue;
        };
        let algorithm = ALGORITHMS
            .get(i % ALGORITHMS.len())
            .copied()
            .unwrap_or(Algorithm::Ed25519);
        i += 1;
        let made: Shared<Option<KeyInfo>> = Arc::default();
        load.timed("create key", async {
            let key = client
                .create_key(algorithm, &format!("nemesis-{i}"))
                .await
                .map_err(Failure::Error)?;
            *lock(&made) = Some(key);
            Ok(())
        })
        .await;
        let Some(key) = lock(&made).take() else {
            continue;
        };
        lock(&load.created).push(key.clone());
        let mut keys = load.keys.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = Keys::clone(&keys);
        next.keys.push(key);
        *keys = Arc::new(next);
    }
}

/// The members' names (`node-1` …, `coordinator`) and pids, for sampling.
fn members(cluster: &ProcessCluster) -> Vec<(String, u32)> {
    (1..=cluster.nodes)
        .map(|id| format!("node-{id}"))
        .chain(std::iter::once("coordinator".to_string()))
        .filter_map(|name| cluster.pid(&name).map(|pid| (name, pid)))
        .collect()
}

/// Starts a cluster of `config.nodes` behind the UDP proxy, and waits until it is ready.
async fn start(config: &Config) -> anyhow::Result<Networked<UdpProxy>> {
    let mut cluster = ProcessCluster::try_init(config.nodes, config.threshold, &[], &[])?;
    let net = UdpProxy::install(&cluster).context("put the nodes behind the UDP proxy")?;
    for id in 1..=config.nodes {
        cluster.start_node(id);
    }
    cluster.start_coordinator();
    cluster.wait_ready(READY_TIMEOUT).await?;
    Ok(Networked { cluster, net })
}

/// Runs `f` on the cluster on this thread, telling the runtime it blocks (a SIGTERM waits for the process).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Does `planned` to the cluster and undoes it; returns a note (how it went).
async fn disturb(
    n: &mut Networked<UdpProxy>,
    planned: &Planned,
    config: &Config,
    pids: &Shared<Vec<(String, u32)>>,
) -> anyhow::Result<String> {
    let name = planned
        .node
        .map_or_else(|| "coordinator".to_string(), |id| format!("node-{id}"));
    let refresh = |n: &Networked<UdpProxy>| *lock(pids) = members(&n.cluster);
    let mut note = String::new();
    match planned.kind {
        EventKind::Kill => {
            blocking(|| n.cluster.kill(&name));
            refresh(n);
            tokio::time::sleep(planned.hold).await;
            n.cluster.start_node(planned.node.unwrap_or(1));
        }
        EventKind::Terminate | EventKind::RestartCoordinator => {
            let hard = planned.kind == EventKind::RestartCoordinator && planned.hard;
            if hard {
                blocking(|| n.cluster.kill(&name));
                note = "SIGKILL".into();
            } else {
                match blocking(|| n.cluster.try_terminate(&name, config.terminate_bound)) {
                    Ok(took) => note = format!("SIGTERM: exited in {:.1} s", took.as_secs_f64()),
                    Err(e) => note = format!("SIGTERM: {e:#}"),
                }
            }
            refresh(n);
            tokio::time::sleep(planned.hold).await;
            match planned.node {
                Some(id) => n.cluster.start_node(id),
                None => n.cluster.start_coordinator(),
            }
        }
        EventKind::Pause => {
            n.cluster.signal(&name, Signal::SIGSTOP)?;
            tokio::time::sleep(planned.hold).await;
            n.cluster.signal(&name, Signal::SIGCONT)?;
        }
        EventKind::Partition => {
            let node = planned.node.unwrap_or(1);
            n.net.cut_from_peers(node, config.nodes)?;
            tokio::time::sleep(planned.hold).await;
            n.net.heal_all()?;
        }
    }
    refresh(n);
    Ok(note)
}

/// Runs the nemesis (see the module docs) and returns what it found; an error only if the cluster cannot be set
/// up. Needs a multi-threaded tokio runtime (it blocks a thread while a member exits).
pub async fn run(config: &Config, observer: Arc<dyn Observer>) -> anyhow::Result<Report> {
    let mut n = start(config).await?;
    observer.line(&format!(
        "cluster up ({} nodes, threshold {}, every node behind the UDP proxy) in {}",
        config.nodes,
        config.threshold,
        n.cluster.path().display()
    ));
    let client_config = ClientConfig::load(&n.cluster.path().join("client").join("client.toml"))
        .context("client/client.toml")?;
    let pin = std::fs::read_to_string(n.cluster.path().join("client").join("user.pin"))
        .context("client/user.pin")?;
    let setup = Client::connect(&client_config).await?;
    setup.login(PinUser::User, pin.trim().as_bytes()).await?;
    let made_at = Instant::now();
    let keys = Keys::make(
        &setup,
        "nemesis",
        &[
            Algorithm::Ed25519,
            Algorithm::EcdsaP256,
            Algorithm::EcdsaSecp256k1,
        ],
    )
    .await
    .map_err(|e| anyhow::anyhow!("the first keys: {}", describe(&e)))?;
    observer.line(&format!(
        "{} keys made in {:.1} s",
        keys.keys.len(),
        made_at.elapsed().as_secs_f64()
    ));
    let before = keys.keys.len();
    let load = Arc::new(Load {
        config: client_config,
        pin,
        created: Mutex::new(keys.keys.clone()),
        keys: RwLock::new(Arc::new(keys)),
        made: Made::default(),
        board: Arc::new(Mutex::new(Board {
            history: vec![None],
            events: Vec::new(),
            coordinator_generation: 0,
            now: "calm".into(),
        })),
        records: Arc::default(),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        op_bound: config.op_bound,
    });
    let pids: Shared<Vec<(String, u32)>> = Arc::new(Mutex::new(members(&n.cluster)));
    let samples: Shared<Samples> = Arc::default();
    let began = Instant::now();

    let mut tasks = Vec::new();
    for w in 0..config.clients.max(1) {
        tasks.push(tokio::spawn(worker(load.clone(), w)));
    }
    tasks.push(tokio::spawn(key_maker(load.clone(), config.key_every)));
    let sampler = {
        let (load, pids, samples, every) = (
            load.clone(),
            pids.clone(),
            samples.clone(),
            config.sample_every,
        );
        tokio::spawn(async move {
            while !load.stopped() {
                let now = lock(&pids).clone();
                lock(&samples).take(&now);
                load.sleep(every).await;
            }
        })
    };
    let ticker = {
        let (load, observer) = (load.clone(), observer.clone());
        tokio::spawn(async move {
            while !load.stopped() {
                let now = lock(&load.board).now.clone();
                observer.tick(
                    began.elapsed(),
                    load.ops.load(Ordering::Relaxed),
                    load.failed.load(Ordering::Relaxed),
                    &now,
                );
                load.sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // The nemesis.
    let mut events: Vec<EventRecord> = Vec::new();
    let mut unrecovered = Vec::new();
    let schedule = Schedule::new(config.seed, config.nodes, config.calm);
    tokio::time::sleep(config.calm.0.min(config.length)).await;
    for planned in schedule {
        let left = config.length.saturating_sub(began.elapsed());
        if left < planned.hold + config.settle + Duration::from_secs(2) {
            break;
        }
        let at = began.elapsed();
        let mut record = EventRecord {
            id: 0,
            kind: planned.kind,
            node: planned.node,
            at_s: at.as_secs_f64(),
            held_s: planned.hold.as_secs_f64(),
            recovered_s: None,
            note: String::new(),
        };
        let label = match planned.node {
            Some(node) => format!("{} node {node}", planned.kind),
            None => planned.kind.to_string(),
        };
        record.id = lock(&load.board).begin(planned.kind, planned.node, label);
        observer.line(&format!(
            "{:>6.1} s: {} for {:.1} s",
            at.as_secs_f64(),
            record.label(),
            planned.hold.as_secs_f64()
        ));
        match disturb(&mut n, &planned, config, &pids).await {
            Ok(note) => record.note = note,
            Err(e) => record.note = format!("could not disturb: {e:#}"),
        }
        if planned.kind == EventKind::RestartCoordinator {
            lock(&load.board).coordinator_generation += 1;
        }
        let undone = Instant::now();
        match n.cluster.wait_ready(config.recovery_bound).await {
            Ok(()) => record.recovered_s = Some(undone.elapsed().as_secs_f64()),
            Err(e) => {
                let first_line = format!("{e:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                unrecovered.push(format!("{}: {first_line}", record.label()));
            }
        }
        tokio::time::sleep(config.settle).await;
        lock(&load.board).end();
        observer.line(&format!(
            "{:>6.1} s: {} undone; every node reachable again after {}{}",
            began.elapsed().as_secs_f64(),
            record.label(),
            record
                .recovered_s
                .map_or_else(|| "NEVER".into(), |s| format!("{s:.1} s")),
            if record.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", record.note)
            }
        ));
        let failed = record.recovered_s.is_none();
        events.push(record);
        if failed {
            observer.line("the cluster did not recover: the run stops here");
            break;
        }
        let left = config.length.saturating_sub(began.elapsed());
        tokio::time::sleep(planned.calm_after.min(left)).await;
    }
    let left = config.length.saturating_sub(began.elapsed());
    if unrecovered.is_empty() {
        tokio::time::sleep(left).await;
    }
    load.stop.store(true, Ordering::SeqCst);
    let ran = began.elapsed();
    observer.line(&format!(
        "load stopped after {:.1} s; waiting for operations in flight",
        ran.as_secs_f64()
    ));
    for task in tasks {
        let _ = task.await;
    }
    let _ = sampler.await;
    let _ = ticker.await;

    let mut report = Report {
        seed: config.seed,
        planned_s: config.length.as_secs_f64(),
        ran_s: ran.as_secs_f64(),
        nodes: config.nodes,
        threshold: config.threshold,
        clients: config.clients,
        events,
        unrecovered,
        sample_every_s: config.sample_every.as_secs(),
        growth_limits: Some(config.growth),
        ..Report::default()
    };
    report.tally(&lock(&load.records));
    let created = lock(&load.created).clone();
    report.keys.before = before;
    report.keys.during = created.len() - before;
    report.keys.creation_failed = report
        .ops
        .iter()
        .find(|o| o.kind == "create key")
        .map_or(0, |o| o.failed as usize);

    // The checks at the end, on a calm cluster.
    observer.line("checking every key, the ciphertexts and the audit logs");
    if let Err(e) = n.cluster.wait_ready(config.recovery_bound).await {
        report.unrecovered.push(format!("at the end: {e:#}"));
    }
    let client = load
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("a client for the final checks: {}", describe(&e)))?;
    check_keys(&n.cluster, &client, &created, &mut report).await;
    let made = lock(&load.made).clone();
    check_ciphertexts(&client, &made, config.recheck_cap, &mut report).await;
    let dir = n.cluster.path().display().to_string();
    let audit = blocking(|| {
        try_run_vhsm(
            &["audit", "verify", "--cluster", &dir],
            Duration::from_secs(300),
        )
    });
    report.audit = match audit {
        Ok((ok, out, err)) => {
            let text = format!("{out}{err}");
            let lines: Vec<&str> = text.lines().collect();
            report::AuditFigures {
                ok,
                output: lines
                    .get(lines.len().saturating_sub(12)..)
                    .unwrap_or_default()
                    .join("\n"),
            }
        }
        Err(e) => report::AuditFigures {
            ok: false,
            output: format!("{e:#}"),
        },
    };
    report.resources = lock(&samples).trends(&config.growth);
    if let Some(dir) = &config.keep_logs {
        match n.cluster.copy_logs(dir) {
            Ok(()) => observer.line(&format!("logs kept in {}", dir.display())),
            Err(e) => observer.line(&format!("could not keep the logs: {e}")),
        }
    }
    Ok(report)
}

/// Tries `check` up to three times, a second apart (the coordinator may still pass over a node that failed a
/// moment ago); the last error if none succeeded.
async fn with_retries<F, Fut>(mut check: F) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let mut last = Ok(());
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        last = check().await;
        match &last {
            Ok(()) | Err(Failure::Wrong(_)) => return last,
            Err(Failure::Error(_)) => {}
        }
    }
    last
}

/// Every key in `created` is listed by the coordinator with its public key, works, and is held by every node at
/// the key's epoch; fills `report.keys`.
async fn check_keys(
    cluster: &ProcessCluster,
    client: &Client,
    created: &[KeyInfo],
    report: &mut Report,
) {
    let listed = match client.list_keys().await {
        Ok(listed) => listed,
        Err(e) => {
            report.keys.lost.push(format!(
                "the coordinator does not list keys: {}",
                describe(&e)
            ));
            return;
        }
    };
    report.keys.listed = listed.len();
    report.keys.extra = listed
        .iter()
        .filter(|k| created.iter().all(|c| c.id != k.id))
        .count();
    let mut epochs: Vec<(KeyId, u64)> = Vec::new();
    for key in created {
        let Some(now) = listed.iter().find(|k| k.id == key.id) else {
            report
                .keys
                .lost
                .push(format!("{} ({:?}) is not listed", key.id, key.algorithm));
            continue;
        };
        if now.public_key != key.public_key {
            report.keys.lost.push(format!(
                "{} ({:?}) is listed with another public key",
                key.id, key.algorithm
            ));
            continue;
        }
        epochs.push((key.id, now.epoch));
        let message = format!("nemesis final check of {}", key.id).into_bytes();
        let used = with_retries(|| async {
            if key.algorithm == Algorithm::SplitAes256 {
                let blob = client
                    .encrypt(key.id, &message, AAD)
                    .await
                    .map_err(Failure::Error)?;
                let back = client.decrypt(&blob, AAD).await.map_err(Failure::Error)?;
                if back.expose() != message.as_slice() {
                    return Err(Failure::Wrong(format!(
                        "{}: decrypts to another plaintext",
                        key.id
                    )));
                }
            } else {
                let (signature, signers) = client
                    .sign(key.id, &message, None)
                    .await
                    .map_err(Failure::Error)?;
                if !verify_signature(now, &message, &signature) {
                    return Err(Failure::Wrong(format!(
                        "{} ({:?}): a signature by {signers:?} that does not verify",
                        key.id, key.algorithm
                    )));
                }
            }
            Ok(())
        })
        .await;
        match used {
            Ok(()) => {}
            Err(Failure::Wrong(what)) => report.wrong.push(format!("final check: {what}")),
            Err(Failure::Error(e)) => report.keys.lost.push(format!(
                "{} ({:?}) is not usable: {}",
                key.id,
                key.algorithm,
                describe(&e)
            )),
        }
    }
    let pool = match try_as_coordinator(cluster) {
        Ok((_, pool)) => pool,
        Err(e) => {
            report
                .keys
                .lost
                .push(format!("cannot ask the nodes what they hold: {e:#}"));
            return;
        }
    };
    for id in pool.ids() {
        match try_listed(&pool, id, NodeRequest::ListKeys).await {
            Ok(held) => {
                for (key, epoch) in &epochs {
                    match held.iter().find(|k| k.id == *key) {
                        Some(k) if k.epoch == *epoch => {}
                        Some(k) => report.keys.lost.push(format!(
                            "node {id} holds {key} at epoch {}, the key is at {epoch}",
                            k.epoch
                        )),
                        None => report
                            .keys
                            .lost
                            .push(format!("node {id} does not hold {key}")),
                    }
                }
            }
            Err(e) => report.keys.lost.push(e),
        }
        if let Ok(staged) = try_listed(&pool, id, NodeRequest::ListStaged).await {
            report.keys.staged += staged.len();
        }
    }
}

/// Decrypts the load's ciphertexts again (the newest `cap` of them) and compares; fills `report.ciphertexts`.
async fn check_ciphertexts(
    client: &Client,
    made: &[(Vec<u8>, Vec<u8>)],
    cap: usize,
    report: &mut Report,
) {
    report.ciphertexts.made = made.len();
    let newest = made
        .get(made.len().saturating_sub(cap)..)
        .unwrap_or_default();
    for chunk in newest.chunks(16) {
        let opened =
            futures_util::future::join_all(chunk.iter().map(|(blob, plaintext)| async move {
                let result = with_retries(|| async {
                    let back = client.decrypt(blob, AAD).await.map_err(Failure::Error)?;
                    if back.expose() == plaintext.as_slice() {
                        Ok(())
                    } else {
                        Err(Failure::Wrong(
                            "a ciphertext opens to another plaintext".into(),
                        ))
                    }
                })
                .await;
                (plaintext, result)
            }))
            .await;
        for (plaintext, result) in opened {
            report.ciphertexts.checked += 1;
            match result {
                Ok(()) => {}
                Err(Failure::Wrong(what)) => report.wrong.push(format!(
                    "final check of \"{}\": {what}",
                    String::from_utf8_lossy(plaintext)
                )),
                Err(Failure::Error(e)) => report.ciphertexts.bad.push(format!(
                    "\"{}\" does not open: {}",
                    String::from_utf8_lossy(plaintext),
                    describe(&e)
                )),
            }
        }
    }
}
