//! `vhsm-chaos` (also run as `vhsm chaos`): the nemesis of `vhsm_testkit::nemesis` — a mixed load of every
//! algorithm from several clients while nodes are killed, paused, SIGTERMed, partitioned and the coordinator
//! restarted, one at a time on a seeded schedule — against a fresh 3-node 2-of-3 cluster it starts in a temporary
//! directory, for as long as asked (a soak run: `vhsm chaos --minutes 30`). At the end it checks every result, every
//! key and the audit logs, and prints the figures: operations by kind, failures by cause and by the disturbance
//! they ran during, p50/p99/max latency overall and per kind of disturbance, the memory and file descriptors of
//! every member over the run and their trend. Exits non-zero if anything was wrong, lost or grew.
//!
//! The cluster runs the `vhsm` binary named by `VHSM_BIN` (`vhsm chaos` sets it to itself), else the one beside
//! this program. The CI test `tests/cluster_nemesis.rs` runs the same for about two minutes.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use vhsm_testkit::nemesis::{self, Config, Observer};

fn parse_minutes(text: &str) -> Result<f64, String> {
    let minutes: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of minutes"))?;
    if !(minutes.is_finite() && (0.5..=24.0 * 60.0).contains(&minutes)) {
        return Err("from 0.5 to 1440 minutes".into());
    }
    Ok(minutes)
}

/// `vhsm chaos`'s options.
#[derive(Debug, Parser)]
#[command(
    name = "vhsm-chaos",
    version,
    about = "Soak and chaos runs: mixed load against a fresh local 2-of-3 cluster while a nemesis kills, pauses, \
             stops, partitions and restarts its members; every result, key and audit log checked at the end.",
    after_help = "Examples:\n  vhsm chaos                     30 minutes, a seed from the clock\n  \
                  vhsm chaos --minutes 3 --seed 7\n  vhsm chaos --minutes 30 --out chaos-results --keep-logs \
                  chaos-logs\n\nBuild first: cargo build --release -p vhsm-cli -p vhsm-chaos. Exits non-zero if a \
                  result was wrong, a key or ciphertext lost, the audit logs do not verify, the cluster did not \
                  recover, an operation failed while no disturbance was active or failed unclearly during one, \
                  or a member's memory or file descriptors grew."
)]
struct Args {
    /// How long the load and the nemesis run, in minutes (0.5 to 1440; the cluster's start and the checks at the
    /// end come on top).
    #[arg(long, default_value_t = 30.0, value_parser = parse_minutes)]
    minutes: f64,
    /// The schedule's seed (default: from the clock). The same seed gives the same sequence of disturbances.
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent load clients.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    clients: u16,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the report to DIR/chaos.md and DIR/chaos.json.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Copy the members' logs to DIR at the end.
    #[arg(long, value_name = "DIR")]
    keep_logs: Option<PathBuf>,
}

/// The progress bar (on standard error): seconds of the run, operations, failures, what the nemesis is doing.
struct Bar(ProgressBar);

impl Observer for Bar {
    fn line(&self, text: &str) {
        // A bar that is not drawn (standard error is not a terminal) prints nothing either.
        if self.0.is_hidden() {
            eprintln!("{text}");
        } else {
            self.0.println(text);
        }
    }

    fn tick(&self, elapsed: Duration, ops: u64, failed: u64, now: &str) {
        self.0
            .set_position(elapsed.as_secs().min(self.0.length().unwrap_or(0)));
        self.0
            .set_message(format!("{ops} ops, {failed} failed, now: {now}"));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let length = Duration::from_secs_f64(args.minutes * 60.0);
    let mut config = Config::new(seed, length);
    config.clients = usize::from(args.clients);
    config.keep_logs = args.keep_logs.clone();

    let bar = ProgressBar::new(length.as_secs());
    let style = ProgressStyle::with_template("[{elapsed_precise}] [{bar:30}] {pos}/{len} s  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(500));
    let observer = Arc::new(Bar(bar.clone()));
    observer.line(&format!(
        "vhsm chaos: seed {seed}, {:.1} minutes of load, {} clients",
        args.minutes, config.clients
    ));
    let report = nemesis::run(&config, observer).await;
    bar.finish_and_clear();
    let report = report?;

    let markdown = report.markdown();
    let json = serde_json::to_string_pretty(&report).context("the report as JSON")?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        std::fs::write(dir.join("chaos.md"), &markdown)
            .with_context(|| format!("cannot write {}", dir.join("chaos.md").display()))?;
        std::fs::write(dir.join("chaos.json"), &json)
            .with_context(|| format!("cannot write {}", dir.join("chaos.json").display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        println!("{markdown}");
    }
    let problems = report.problems();
    if !problems.is_empty() {
        bail!(
            "{} problem(s) (seed {seed}): {}",
            problems.len(),
            problems.join("; ")
        );
    }
    Ok(())
}
