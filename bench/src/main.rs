//! `vhsm-bench` (also run as `vhsm bench`): throughput, latency and CPU cost of the cluster's operations at several client concurrencies,
//! through the native client API and through the PKCS#11 module, side by side with SoftHSMv2 (same PKCS#11 driver,
//! same operations) and with baselines measured in the same run: single-key signing/encryption and the cluster's
//! threshold protocols run in-process without a network.
//!
//! * [`workload`] — the operations, their inputs, the checks of their outputs, the cell runner;
//! * [`native`] — the native path (tokio tasks sharing one connection);
//! * [`pkcs11_driver`] — the PKCS#11 path through `cryptoki`, for our module and for SoftHSM;
//! * [`baselines`] — single key and in-process protocol;
//! * [`cpu`] — CPU time of the cluster's processes and of this one;
//! * [`report`] — rows, ratios, JSON and markdown; [`plot`] — the SVG.

mod baselines;
mod cpu;
mod native;
mod pkcs11_driver;
mod plot;
mod progress;
mod report;
mod stats;
mod workload;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use rand::RngCore;

use baselines::ProtocolKeys;
use clap::Parser;
use cpu::CpuProbe;
use native::NativeTarget;
use pkcs11_driver::{Pkcs11Target, SoftHsm};
use report::{
    ClusterInfo, CpuNote, KeygenTime, Machine, Report, Row, Settings, SoftHsmInfo, System,
};
use vhsm_client::ClusterDir;
use vhsm_core::time::format_unix as format_time;
use vhsm_testkit::process::ProcessCluster;
pub use workload::Operation;
use workload::{CellPlan, KeyKind, Measurement};

/// A way for clients to reach vHSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ClientPath {
    /// The cluster's client API (vhsm_client::Client): N requests in flight on one connection.
    Native,
    /// libvhsm_pkcs11.so through the cryptoki PKCS#11 client library: N threads, one session each.
    Pkcs11,
}

impl ClientPath {
    fn name(self) -> &'static str {
        match self {
            ClientPath::Native => "native",
            ClientPath::Pkcs11 => "pkcs11",
        }
    }
}

/// The most client concurrency accepted.
const MAX_CONCURRENCY: usize = 1024;

fn parse_concurrency(text: &str) -> Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a whole number"))?;
    match n {
        0 => Err("the concurrency must be at least 1".into()),
        n if n > MAX_CONCURRENCY => Err(format!("at most {MAX_CONCURRENCY}")),
        n => Ok(n),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    let s: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(s.is_finite() && s > 0.0 && s <= 3600.0) {
        return Err("seconds per cell must be more than 0 and at most 3600".into());
    }
    Ok(s)
}

/// `vhsm bench`'s options.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  vhsm bench --quick                      \
    everything, 1 s per cell (a fresh 3-node 2-of-3 cluster)\n  vhsm bench --cluster vhsm-cluster       \
    against a running cluster (`vhsm up`)\n  vhsm bench --ops ecdsa-p256 --concurrency 1,16 --paths native --seconds 10\n\n\
    Writes DIR/bench.json, DIR/bench.md and DIR/bench.svg (--out), prints the table (or with --json the JSON), and \
    exits non-zero if any operation failed. Rows: vHSM through each path, SoftHSMv2 through the same PKCS#11 driver \
    (when installed), one whole key in this process (\"single key\"), and the cluster's 2-of-3 protocol with every \
    party in this process (\"in-process protocol\"). Build the PKCS#11 module first: cargo build --release -p \
    vhsm-pkcs11.")]
pub struct BenchArgs {
    /// Operations to measure, comma-separated. ed25519: sign a 64-byte message; ecdsa-p256, ecdsa-secp256k1: sign
    /// a 32-byte SHA-256 digest (CKM_ECDSA); aes-32, aes-1k: encrypt 32 bytes / 1 KiB (split-AES-256 on vHSM,
    /// AES-256-GCM on SoftHSM and in the single-key baseline).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "OPS",
        default_value = "ed25519,ecdsa-p256,ecdsa-secp256k1,aes-32,aes-1k"
    )]
    pub ops: Vec<Operation>,
    /// Client concurrencies to measure, comma-separated, each 1 to 1024: requests in flight (native path) or
    /// threads with a session each (PKCS#11).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "N,...",
        default_value = "1,8,64",
        value_parser = parse_concurrency,
        allow_negative_numbers = true
    )]
    pub concurrency: Vec<usize>,
    /// Client paths to vHSM, comma-separated. native: the cluster's client API, requests as tokio tasks sharing
    /// one connection; pkcs11: libvhsm_pkcs11.so driven through the cryptoki PKCS#11 client library.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "PATHS",
        default_value = "native,pkcs11"
    )]
    pub paths: Vec<ClientPath>,
    /// Seconds of measurement per cell (one operation at one concurrency on one system), after a few warm-up
    /// operations. Default: 5, or 1 with --quick.
    #[arg(long, value_name = "S", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub seconds: Option<f64>,
    /// A quick run: 1 s per cell, fewer warm-up operations, shorter pauses.
    #[arg(long)]
    pub quick: bool,
    /// Where to write bench.json, bench.md and bench.svg; created if missing.
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    pub out: PathBuf,
    /// The vHSM PKCS#11 module. Default: libvhsm_pkcs11.so next to this program (`cargo build --release -p
    /// vhsm-pkcs11` puts it there).
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// SoftHSMv2's PKCS#11 module to compare with. Default: libsofthsm2.so in /usr/lib/softhsm,
    /// /usr/lib/x86_64-linux-gnu/softhsm or /usr/local/lib/softhsm. It gets its own token in a temporary
    /// directory.
    #[arg(long, value_name = "PATH", conflicts_with = "no_softhsm")]
    pub softhsm: Option<PathBuf>,
    /// Leave SoftHSM out, even if it is installed.
    #[arg(long)]
    pub no_softhsm: bool,
    /// Nodes of the cluster this command starts when --cluster is not given.
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Threshold of the cluster this command starts when --cluster is not given.
    #[arg(long, default_value_t = 2)]
    pub threshold: u16,
}

/// The validated plan of a run.
struct Plan {
    ops: Vec<Operation>,
    kinds: Vec<KeyKind>,
    concurrency: Vec<usize>,
    paths: Vec<ClientPath>,
    seconds: f64,
    warmup_ops: usize,
    pause: Duration,
    quick: bool,
}

impl Plan {
    fn new(args: &BenchArgs) -> anyhow::Result<Plan> {
        let wanted: BTreeSet<Operation> = args.ops.iter().copied().collect();
        let ops: Vec<Operation> = Operation::ALL
            .into_iter()
            .filter(|op| wanted.contains(op))
            .collect();
        if ops.is_empty() {
            bail!("--ops names no operation");
        }
        let mut kinds: Vec<KeyKind> = ops.iter().map(|op| op.key_kind()).collect();
        kinds.dedup();
        let concurrency: Vec<usize> = args
            .concurrency
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if concurrency.is_empty() {
            bail!("--concurrency names no concurrency");
        }
        let paths: Vec<ClientPath> = args
            .paths
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if paths.is_empty() {
            bail!("--paths names no path");
        }
        Ok(Plan {
            ops,
            kinds,
            concurrency,
            paths,
            seconds: args.seconds.unwrap_or(if args.quick { 1.0 } else { 5.0 }),
            warmup_ops: if args.quick { 2 } else { 16 },
            pause: Duration::from_millis(if args.quick { 50 } else { 500 }),
            quick: args.quick,
        })
    }

    fn cell(&self, workers: usize) -> CellPlan {
        CellPlan {
            workers,
            duration: Duration::from_secs_f64(self.seconds),
            warmup_ops: self.warmup_ops,
        }
    }
}

/// Runs the benchmark against the cluster at `cluster` (running), or a fresh one it starts and stops.
async fn run(cluster: Option<&Path>, args: &BenchArgs, json: bool) -> anyhow::Result<()> {
    let began = Instant::now();
    let plan = Plan::new(args)?;
    if cluster.is_none() && (args.threshold < 2 || args.threshold > args.nodes) {
        bail!("--threshold must be at least 2 and at most --nodes");
    }
    let module = if plan.paths.contains(&ClientPath::Pkcs11) {
        Some(pkcs11_driver::find_module(args.module.as_deref())?)
    } else {
        None
    };
    let softhsm = pkcs11_driver::find_softhsm(args.softhsm.as_deref(), args.no_softhsm)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {}", args.out.display()))?;

    // The in-process protocols' keys are made while the cluster starts and makes its own.
    let protocol_keys = baselines::generate_protocol_keys(plan.kinds.clone());

    let mut temporary = None;
    let layout = match cluster {
        Some(dir) => ClusterDir::new(dir),
        None => {
            let (nodes, threshold) = (args.nodes, args.threshold);
            if !json {
                println!(
                    "Starting a local cluster: {nodes} node processes and a coordinator, QUIC with mutual TLS on 127.0.0.1"
                );
            }
            let spinner = (!json).then(|| progress::spinner("starting the cluster"));
            let started = ProcessCluster::launch(nodes, threshold).await;
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            let started = started.context("cannot start a local cluster")?;
            let layout = ClusterDir::new(started.path());
            temporary = Some(started);
            layout
        }
    };
    let pids = temporary.as_ref().map(|t| t.pids());
    let result = bench(&plan, &layout, pids, module, softhsm, protocol_keys, began).await;
    // The cluster's processes stop with it.
    drop(temporary);
    let mut report = result?;
    report.settings.quick = plan.quick;

    let json_path = args.out.join("bench.json");
    let md_path = args.out.join("bench.md");
    let svg_path = args.out.join("bench.svg");
    let body = serde_json::to_string_pretty(&report)?;
    std::fs::write(&json_path, format!("{body}\n"))
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    let markdown = report.markdown();
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    plot::write_svg(&svg_path, &report)?;
    if json {
        println!("{body}");
    } else {
        println!("\n{markdown}");
        println!(
            "Wrote {}, {} and {}.",
            json_path.display(),
            md_path.display(),
            svg_path.display()
        );
    }
    if report.failed_operations > 0 {
        bail!(
            "{} operation(s) failed or gave outputs that did not check out (see the errors column and the notes in {})",
            report.failed_operations,
            md_path.display()
        );
    }
    Ok(())
}

/// A random tag for this run's key labels.
fn run_tag() -> String {
    let mut tag = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut tag);
    format!("vhsm-bench-{}", hex::encode(tag))
}

/// Runs `f` (which blocks) on a thread of its own, off the async runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a benchmark thread failed")
}

async fn bench(
    plan: &Plan,
    layout: &ClusterDir,
    pids: Option<Vec<u32>>,
    module: Option<PathBuf>,
    softhsm: SoftHsm,
    protocol_keys: std::thread::JoinHandle<anyhow::Result<ProtocolKeys>>,
    began: Instant,
) -> anyhow::Result<Report> {
    let status = layout
        .connect()
        .await?
        .status()
        .await
        .context("cannot ask the coordinator for the cluster's status")?;
    let started_by_bench = pids.is_some();
    let cpu = CpuProbe::new(pids);
    let tag = run_tag();
    let mut keygen = Vec::new();

    // vHSM through PKCS#11: log in, generate the keys (the native path uses the same ones).
    let mut vhsm_token = None;
    let module_name = module.as_ref().map(|m| m.display().to_string());
    if let Some(module) = module {
        let spinner = progress::spinner(
            "vHSM: generating the keys through PKCS#11 (DKLs23 key generation takes seconds)",
        );
        let (layout_c, kinds, tag_c) = (layout.clone(), plan.kinds.clone(), tag.clone());
        let token = blocking(move || -> anyhow::Result<Pkcs11Target> {
            let mut token = Pkcs11Target::open_vhsm(&module, &layout_c)?;
            token.generate_all(&kinds, &tag_c)?;
            Ok(token)
        })
        .await;
        spinner.finish_and_clear();
        let token = token??;
        for (kind, key) in &token.keys {
            keygen.push(KeygenTime {
                system: "vHSM (PKCS#11)".into(),
                key: kind.name().into(),
                seconds: key.keygen_seconds,
            });
        }
        vhsm_token = Some(Arc::new(token));
    }

    // vHSM through the client API.
    let mut native = None;
    if plan.paths.contains(&ClientPath::Native) {
        let client = Arc::new(layout.connect_user().await?);
        let labels = vhsm_token.as_ref().map(|t| t.labels()).unwrap_or_default();
        let spinner = (labels.is_empty()).then(|| {
            progress::spinner("vHSM: generating the keys (DKLs23 key generation takes seconds)")
        });
        let started = Instant::now();
        let keys = native::keys_for(&client, &plan.kinds, &labels, &tag).await;
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        let keys = keys?;
        if labels.is_empty() {
            keygen.push(KeygenTime {
                system: "vHSM (native, all keys)".into(),
                key: plan
                    .kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join("+"),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        native = Some(NativeTarget { client, keys });
    }

    // SoftHSM: its own token, the same keys made through PKCS#11.
    let (softhsm_token, softhsm_info) = match &softhsm {
        SoftHsm::Use(path) => {
            let spinner =
                progress::spinner("SoftHSM: initialising a token and generating the keys");
            let (path_c, kinds, tag_c) = (path.clone(), plan.kinds.clone(), tag.clone());
            let token = blocking(move || -> anyhow::Result<Pkcs11Target> {
                let mut token = Pkcs11Target::open_softhsm(&path_c)?;
                token.generate_all(&kinds, &tag_c)?;
                Ok(token)
            })
            .await;
            spinner.finish_and_clear();
            let token = token?.with_context(|| {
                format!(
                    "SoftHSM ({}) could not be used; pass --no-softhsm to run without it",
                    path.display()
                )
            })?;
            for (kind, key) in &token.keys {
                keygen.push(KeygenTime {
                    system: "SoftHSM".into(),
                    key: kind.name().into(),
                    seconds: key.keygen_seconds,
                });
            }
            let info = SoftHsmInfo {
                installed: true,
                used: true,
                module: Some(path.display().to_string()),
                library: Some(token.library.clone()),
                note: format!("SoftHSM compared: {} ({})", token.library, path.display()),
            };
            (Some(Arc::new(token)), info)
        }
        SoftHsm::Skipped(why) => (
            None,
            SoftHsmInfo {
                installed: pkcs11_driver::SOFTHSM_PATHS
                    .iter()
                    .any(|p| Path::new(p).is_file()),
                used: false,
                module: None,
                library: None,
                note: why.clone(),
            },
        ),
    };

    // The in-process protocols' keys.
    let spinner = progress::spinner("baselines: finishing the in-process key generations");
    let protocol_keys = blocking(move || protocol_keys.join()).await;
    spinner.finish_and_clear();
    let protocol_keys = protocol_keys?
        .map_err(|_| anyhow::anyhow!("an in-process key generation thread panicked"))??;
    for (kind, seconds) in &protocol_keys.keygen_seconds {
        keygen.push(KeygenTime {
            system: "in-process protocol".into(),
            key: kind.name().into(),
            seconds: *seconds,
        });
    }
    let protocol_keys = Arc::new(protocol_keys);
    let setup_seconds = began.elapsed().as_secs_f64();

    let rows = measure(
        plan,
        &cpu,
        native.as_ref(),
        vhsm_token.as_ref(),
        softhsm_token.as_ref(),
        &protocol_keys,
    )
    .await;

    // Keys made on a cluster that outlives the run are destroyed again.
    if !started_by_bench {
        if let Some(token) = vhsm_token.take().and_then(|t| Arc::try_unwrap(t).ok()) {
            let failures = blocking(move || {
                let mut token = token;
                let failures = token.destroy_keys();
                token.close();
                failures
            })
            .await?;
            for f in failures {
                eprintln!("warning: could not destroy the benchmark key {f}");
            }
        } else if let Some(n) = &native {
            for key in n.keys.values() {
                if let Err(e) = n.client.destroy_key(key.id).await {
                    eprintln!(
                        "warning: could not destroy the benchmark key {}: {e}",
                        key.label
                    );
                }
            }
        }
    }
    for token in [vhsm_token, softhsm_token].into_iter().flatten() {
        if let Ok(token) = Arc::try_unwrap(token) {
            blocking(move || token.close()).await?;
        }
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cluster_cpu = if started_by_bench {
        CpuNote {
            cluster_measured: true,
            note:
                "user + system CPU of every node process and the coordinator, from /proc/PID/stat"
                    .into(),
        }
    } else {
        CpuNote {
            cluster_measured: false,
            note: format!(
                "the cluster at {} was not started by this command, so its processes' CPU time is not visible here \
                 (they may not even run on this machine); run without --cluster to measure it",
                layout.root().display()
            ),
        }
    };
    let mut report = Report {
        vhsm_version: env!("CARGO_PKG_VERSION"),
        date: format_time(now),
        machine: Machine::this(),
        cluster: ClusterInfo {
            started_by_bench,
            directory: layout.root().display().to_string(),
            nodes: status.nodes.len(),
            threshold: status.threshold,
        },
        settings: Settings {
            seconds_per_cell: plan.seconds,
            warmup_ops: plan.warmup_ops,
            quick: plan.quick,
            operations: plan.ops.clone(),
            concurrency: plan.concurrency.clone(),
            paths: plan.paths.iter().map(|p| p.name()).collect(),
            pkcs11_module: module_name,
        },
        softhsm: softhsm_info,
        cluster_cpu,
        keygen,
        rows,
        targets: Vec::new(),
        failed_operations: 0,
        setup_seconds,
        run_seconds: began.elapsed().as_secs_f64(),
    };
    report.finish();
    Ok(report)
}

/// Measures every cell, with a progress bar.
async fn measure(
    plan: &Plan,
    cpu: &CpuProbe,
    native: Option<&NativeTarget>,
    vhsm_token: Option<&Arc<Pkcs11Target>>,
    softhsm_token: Option<&Arc<Pkcs11Target>>,
    protocol_keys: &Arc<ProtocolKeys>,
) -> Vec<Row> {
    let cores = report::cores();
    let single_key_threads: BTreeSet<usize> =
        plan.concurrency.iter().map(|c| (*c).min(cores)).collect();
    let per_op = plan.concurrency.len()
        * (usize::from(native.is_some())
            + usize::from(vhsm_token.is_some())
            + usize::from(softhsm_token.is_some()))
        + single_key_threads.len()
        + 1;
    let bar = progress::bar((per_op * plan.ops.len()) as u64, "measuring");
    let mut rows = Vec::new();
    for &op in &plan.ops {
        let mut single_key: BTreeMap<usize, Row> = BTreeMap::new();
        for &c in &plan.concurrency {
            let cell = plan.cell(c);
            if let Some(native) = native {
                bar.set_message(format!("{} ×{c} vHSM native", op.name()));
                let m = native.run_cell(op, &cell, cpu).await;
                rows.push(Row::new(
                    op,
                    System::Vhsm,
                    Some("native"),
                    "vHSM native".into(),
                    Some(c),
                    c,
                    &m,
                ));
                bar.inc(1);
                tokio::time::sleep(plan.pause).await;
            }
            for token in [vhsm_token, softhsm_token].into_iter().flatten() {
                bar.set_message(format!("{} ×{c} {}", op.name(), token.name()));
                let (t, cpu_c) = (token.clone(), cpu.clone());
                let m = blocking(move || t.run_cell(op, &cell, &cpu_c))
                    .await
                    .unwrap_or_else(|e| Measurement::failed(format!("{e:#}")));
                let system = match token.kind {
                    pkcs11_driver::TokenKind::Vhsm => System::Vhsm,
                    pkcs11_driver::TokenKind::SoftHsm => System::SoftHsm,
                };
                rows.push(Row::new(
                    op,
                    system,
                    Some("pkcs11"),
                    token.name().into(),
                    Some(c),
                    c,
                    &m,
                ));
                bar.inc(1);
                tokio::time::sleep(plan.pause).await;
            }
            let threads = c.min(cores);
            let mut row = match single_key.get(&threads) {
                Some(row) => row.clone(),
                None => {
                    bar.set_message(format!("{} single key, {threads} thread(s)", op.name()));
                    let (cell, cpu_c) = (plan.cell(threads), cpu.clone());
                    let m = blocking(move || baselines::run_single_key_cell(op, &cell, &cpu_c))
                        .await
                        .unwrap_or_else(|e| Measurement::failed(format!("{e:#}")));
                    let label = format!(
                        "single key, {threads} thread{}",
                        if threads == 1 { "" } else { "s" }
                    );
                    let row = Row::new(op, System::SingleKey, None, label, Some(c), threads, &m);
                    single_key.insert(threads, row.clone());
                    bar.inc(1);
                    tokio::time::sleep(plan.pause).await;
                    row
                }
            };
            row.concurrency = Some(c);
            rows.push(row);
        }
        bar.set_message(format!("{} {} in-process", op.name(), op.protocol()));
        let (keys, cell, cpu_c) = (protocol_keys.clone(), plan.cell(cores), cpu.clone());
        let m = blocking(move || keys.run_cell(op, &cell, &cpu_c))
            .await
            .unwrap_or_else(|e| Measurement::failed(format!("{e:#}")));
        let label = format!(
            "{} 2-of-3 in-process, {cores} thread{}",
            op.protocol(),
            if cores == 1 { "" } else { "s" }
        );
        rows.push(Row::new(
            op,
            System::InProcessProtocol,
            None,
            label,
            None,
            cores,
            &m,
        ));
        bar.inc(1);
        tokio::time::sleep(plan.pause).await;
    }
    bar.finish_and_clear();
    rows
}

/// `vhsm-bench`'s command line.
#[derive(Debug, Parser)]
#[command(name = "vhsm-bench", version)]
struct Cli {
    /// A running cluster's directory (`vhsm up`); without it, a fresh cluster is started and stopped.
    #[arg(long, env = "VHSM_CLUSTER", value_name = "DIR")]
    cluster: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(run(cli.cluster.as_deref(), &cli.args, cli.json)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
