//! The benchmark's results: one row per (operation, concurrency, system), the ratios between systems, the machine,
//! and the report as JSON and as markdown.

use std::fmt::Write as _;

use serde::Serialize;

use super::workload::{Measurement, Operation};
use crate::stats::percentile;

/// What a row measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum System {
    /// The vHSM cluster (through the path in [`Row::path`]).
    #[serde(rename = "vhsm")]
    Vhsm,
    /// SoftHSMv2 through PKCS#11.
    #[serde(rename = "softhsm")]
    SoftHsm,
    /// One whole key in this process.
    #[serde(rename = "single-key")]
    SingleKey,
    /// The cluster's threshold protocol, every party in this process, no network.
    #[serde(rename = "in-process-protocol")]
    InProcessProtocol,
}

/// One measured cell.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub operation: Operation,
    pub system: System,
    /// vHSM rows: "native" (the client API) or "pkcs11" (libvhsm_pkcs11.so through cryptoki). SoftHSM: "pkcs11".
    pub path: Option<&'static str>,
    /// As shown in the table.
    pub label: String,
    /// Client concurrency (requests in flight; PKCS#11: threads, one session each). `None` for the in-process
    /// protocol, which always runs on every core.
    pub concurrency: Option<usize>,
    /// Threads (or tasks) that made the operations.
    pub threads: usize,
    pub seconds: f64,
    /// Operations that succeeded.
    pub operations: u64,
    /// Operations that failed, plus outputs that failed their independent check.
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Outputs checked independently (signatures verified with the curve crates, ciphertexts decrypted again).
    pub verified_samples: usize,
    pub ops_per_second: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_p99_ms: f64,
    /// CPU seconds of the cluster's processes (every node and the coordinator) per operation; vHSM rows only, and
    /// only when this command started the cluster.
    pub cluster_cpu_seconds_per_op: Option<f64>,
    /// CPU seconds of this `vhsm bench` process per operation: the client side of vHSM rows (with the PKCS#11
    /// module's own threads), all of the work of SoftHSM and baseline rows.
    pub bench_process_cpu_seconds_per_op: Option<f64>,
    /// vHSM rows: ops/s divided by SoftHSM's for the same operation and concurrency.
    pub ratio_to_softhsm: Option<f64>,
    /// vHSM rows: ops/s divided by the single-key baseline's at the same concurrency.
    pub ratio_to_single_key: Option<f64>,
    /// vHSM rows: ops/s divided by the in-process protocol's (every core).
    pub ratio_to_in_process_protocol: Option<f64>,
}

impl Row {
    /// A row from a measurement.
    pub fn new(
        operation: Operation,
        system: System,
        path: Option<&'static str>,
        label: String,
        concurrency: Option<usize>,
        threads: usize,
        m: &Measurement,
    ) -> Row {
        let ms = |q| percentile(&m.latencies, q).as_secs_f64() * 1000.0;
        let per_op = |seconds: f64| (m.operations > 0).then(|| seconds / m.operations as f64);
        Row {
            operation,
            system,
            path,
            label,
            concurrency,
            threads,
            seconds: m.seconds,
            operations: m.operations,
            errors: m.errors + m.verify_failures as u64,
            first_error: m.first_error.clone(),
            verified_samples: m.verified,
            ops_per_second: if m.seconds > 0.0 {
                m.operations as f64 / m.seconds
            } else {
                0.0
            },
            latency_p50_ms: ms(0.50),
            latency_p95_ms: ms(0.95),
            latency_p99_ms: ms(0.99),
            cluster_cpu_seconds_per_op: m.cpu.cluster.and_then(per_op),
            bench_process_cpu_seconds_per_op: per_op(m.cpu.process),
            ratio_to_softhsm: None,
            ratio_to_single_key: None,
            ratio_to_in_process_protocol: None,
        }
    }
}

/// The machine the benchmark ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub kernel: String,
}

impl Machine {
    /// This machine: cores, CPU model (/proc/cpuinfo), kernel release.
    pub fn this() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| format!("Linux {}", k.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        Machine {
            cores: cores(),
            cpu_model,
            kernel,
        }
    }
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The cluster measured.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInfo {
    /// Whether this command started it (a fresh cluster in a temporary directory).
    pub started_by_bench: bool,
    pub directory: String,
    pub nodes: usize,
    pub threshold: u16,
}

/// How the cells ran.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub seconds_per_cell: f64,
    pub warmup_ops: usize,
    pub quick: bool,
    pub operations: Vec<Operation>,
    pub concurrency: Vec<usize>,
    pub paths: Vec<&'static str>,
    pub pkcs11_module: Option<String>,
}

/// Whether SoftHSM was compared, and if not, why.
#[derive(Debug, Clone, Serialize)]
pub struct SoftHsmInfo {
    /// Whether SoftHSMv2's module was found.
    pub installed: bool,
    /// Whether it ran in this benchmark.
    pub used: bool,
    pub module: Option<String>,
    pub library: Option<String>,
    /// In a sentence.
    pub note: String,
}

/// Whether the cluster's CPU time was measured, and if not, why.
#[derive(Debug, Clone, Serialize)]
pub struct CpuNote {
    pub cluster_measured: bool,
    pub note: String,
}

/// How long a key generation took.
#[derive(Debug, Clone, Serialize)]
pub struct KeygenTime {
    pub system: String,
    pub key: String,
    pub seconds: f64,
}

/// A performance target of the issue, checked against this run.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub operation: Operation,
    pub target: String,
    /// The best vHSM row's throughput divided by the in-process protocol's.
    pub best_ratio: Option<f64>,
    pub met: Option<bool>,
}

/// The whole report (bench.json).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub vhsm_version: &'static str,
    pub date: String,
    pub machine: Machine,
    pub cluster: ClusterInfo,
    pub settings: Settings,
    pub softhsm: SoftHsmInfo,
    pub cluster_cpu: CpuNote,
    pub keygen: Vec<KeygenTime>,
    pub rows: Vec<Row>,
    pub targets: Vec<TargetCheck>,
    /// Failed operations over every row (the command exits non-zero if this is not 0).
    pub failed_operations: u64,
    /// Seconds from the start to the first measurement: cluster start, key generation on every system.
    pub setup_seconds: f64,
    /// Seconds from the start to the end of the last measurement (and the clean-up).
    pub run_seconds: f64,
}

/// The ECDSA target of the issue: cluster throughput at least this share of the protocol alone in-process.
pub const ECDSA_TARGET: f64 = 0.90;

impl Report {
    /// Fills in the ratios of every vHSM row, the target checks and the failure count.
    pub fn finish(&mut self) {
        let rows = self.rows.clone();
        let find = |op: Operation, system: System, concurrency: Option<usize>| {
            rows.iter()
                .find(|r| r.operation == op && r.system == system && r.concurrency == concurrency)
                .filter(|r| r.ops_per_second > 0.0)
                .map(|r| r.ops_per_second)
        };
        for row in self.rows.iter_mut().filter(|r| r.system == System::Vhsm) {
            let ratio = |base: Option<f64>| base.map(|b| row.ops_per_second / b);
            row.ratio_to_softhsm = ratio(find(row.operation, System::SoftHsm, row.concurrency));
            row.ratio_to_single_key =
                ratio(find(row.operation, System::SingleKey, row.concurrency));
            row.ratio_to_in_process_protocol =
                ratio(find(row.operation, System::InProcessProtocol, None));
        }
        self.targets = [Operation::EcdsaP256, Operation::EcdsaSecp256k1]
            .into_iter()
            .filter(|op| self.settings.operations.contains(op))
            .map(|op| {
                let best_ratio = self
                    .rows
                    .iter()
                    .filter(|r| r.operation == op && r.system == System::Vhsm)
                    .filter_map(|r| r.ratio_to_in_process_protocol)
                    .reduce(f64::max);
                TargetCheck {
                    operation: op,
                    target: format!(
                        "cluster throughput >= {:.0}% of DKLs23 2-of-3 in-process on the same cores",
                        ECDSA_TARGET * 100.0
                    ),
                    best_ratio,
                    met: best_ratio.map(|r| r >= ECDSA_TARGET),
                }
            })
            .collect();
        self.failed_operations = self.rows.iter().map(|r| r.errors).sum();
    }

    /// The report as markdown: a table per operation, then what the columns mean and what was not measured.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# vHSM benchmark\n");
        let _ = writeln!(
            md,
            "vHSM {} · {} · {} cores, {} · {}  ",
            self.vhsm_version,
            self.date,
            self.machine.cores,
            self.machine.cpu_model,
            self.machine.kernel
        );
        let cluster = if self.cluster.started_by_bench {
            format!(
                "a fresh {}-of-{} cluster started by this run on 127.0.0.1 (node and coordinator processes on this \
                 machine)",
                self.cluster.threshold, self.cluster.nodes
            )
        } else {
            format!(
                "the running {}-of-{} cluster at {}",
                self.cluster.threshold, self.cluster.nodes, self.cluster.directory
            )
        };
        let _ = writeln!(md, "Cluster: {cluster}.  ");
        let _ = writeln!(
            md,
            "Run: {:.0} s, of which {:.0} s of set-up (cluster start, key generation on every system).  ",
            self.run_seconds, self.setup_seconds
        );
        let _ = writeln!(
            md,
            "Each cell: {} warm-up operations, then operations started for {} s (the last ones in flight are waited \
             for and counted). Native: requests in flight as tokio tasks on one connection. PKCS#11: one OS thread \
             and session each, C_Sign / C_Encrypt in a loop.\n",
            self.settings.warmup_ops, self.settings.seconds_per_cell
        );
        for op in &self.settings.operations {
            let _ = writeln!(md, "## {} — {}\n", op.name(), op.title());
            let _ = writeln!(
                md,
                "| concurrency | system | ops/s | p50 ms | p95 ms | p99 ms | cluster CPU ms/op | bench-process CPU \
                 ms/op | errors | vHSM ÷ SoftHSM | vHSM ÷ single key | vHSM ÷ in-process protocol |"
            );
            let _ = writeln!(
                md,
                "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for r in self.rows.iter().filter(|r| r.operation == *op) {
                let concurrency = r
                    .concurrency
                    .map_or_else(|| "all cores".to_string(), |c| c.to_string());
                let cluster_cpu = match (r.system, r.cluster_cpu_seconds_per_op) {
                    (System::Vhsm, Some(s)) => ms(s * 1000.0),
                    (System::Vhsm, None) => "not measured".into(),
                    _ => "–".into(),
                };
                let ratio = |x: Option<f64>| match (r.system, x) {
                    (System::Vhsm, Some(x)) => format!("{}×", sig(x)),
                    (System::Vhsm, None) => "n/a".into(),
                    _ => "–".into(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    concurrency,
                    r.label,
                    sig(r.ops_per_second),
                    ms(r.latency_p50_ms),
                    ms(r.latency_p95_ms),
                    ms(r.latency_p99_ms),
                    cluster_cpu,
                    r.bench_process_cpu_seconds_per_op
                        .map_or_else(|| "–".into(), |s| ms(s * 1000.0)),
                    if r.errors == 0 {
                        "0".to_string()
                    } else {
                        format!("**{}**", r.errors)
                    },
                    ratio(r.ratio_to_softhsm),
                    ratio(r.ratio_to_single_key),
                    ratio(r.ratio_to_in_process_protocol),
                );
            }
            let _ = writeln!(md);
        }
        md.push_str(&self.footer());
        md
    }

    fn footer(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## Notes\n");
        if self.softhsm.used {
            let _ = writeln!(
                md,
                "- SoftHSM: {} ({}), its own token in a temporary directory, driven by the same PKCS#11 driver with \
                 the same operations; keys generated through PKCS#11 on each token. AES on SoftHSM is CKM_AES_GCM \
                 with a 256-bit key, 12-byte IV and 128-bit tag.",
                self.softhsm.library.as_deref().unwrap_or("SoftHSMv2"),
                self.softhsm.module.as_deref().unwrap_or("?")
            );
        } else {
            let _ = writeln!(
                md,
                "- **No SoftHSM comparison in this run:** {}",
                self.softhsm.note
            );
        }
        if self.cluster_cpu.cluster_measured {
            let _ = writeln!(
                md,
                "- cluster CPU ms/op: user + system CPU time of every node process and the coordinator (from \
                 /proc/PID/stat) during the cell, divided by the operations. bench-process CPU ms/op: this `vhsm \
                 bench` process (getrusage) — for vHSM rows the client side only (PKCS#11: including the module's \
                 threads), for SoftHSM and the baselines all of the work."
            );
        } else {
            let _ = writeln!(
                md,
                "- cluster CPU ms/op: **not measured**: {}",
                self.cluster_cpu.note
            );
            let _ = writeln!(
                md,
                "- bench-process CPU ms/op: this `vhsm bench` process (getrusage) — for vHSM rows the client side \
                 only, for SoftHSM and the baselines all of the work."
            );
        }
        let _ = writeln!(
            md,
            "- single key: the whole key in this process (ed25519-dalek, p256/k256 `sign_prehash`, aes-gcm) on \
             min(concurrency, {}) threads. in-process protocol: the cluster's 2-of-3 protocol with every party in \
             this process and no network, on all {} cores. Ratios divide vHSM's ops/s by the other system's.",
            self.machine.cores, self.machine.cores
        );
        for t in &self.targets {
            let verdict = match (t.best_ratio, t.met) {
                (Some(r), Some(true)) => format!("{:.0}% — met", r * 100.0),
                (Some(r), _) => format!("{:.0}% — **not met**", r * 100.0),
                (None, _) => "not measured".into(),
            };
            let _ = writeln!(
                md,
                "- target, {}: {}: best {verdict}.",
                t.operation.name(),
                t.target
            );
        }
        if !self.keygen.is_empty() {
            let list: Vec<String> = self
                .keygen
                .iter()
                .map(|k| format!("{} {} {:.2} s", k.system, k.key, k.seconds))
                .collect();
            let _ = writeln!(
                md,
                "- key generation (once per system, reused by every cell): {}.",
                list.join("; ")
            );
        }
        if self.failed_operations == 0 {
            let _ = writeln!(md, "- errors: none; every sampled output checked out.");
        } else {
            let _ = writeln!(md, "- **{} operations failed**:", self.failed_operations);
            for r in self.rows.iter().filter(|r| r.errors > 0) {
                let _ = writeln!(
                    md,
                    "  - {} {} ×{}: {} failed; first: {}",
                    r.operation.name(),
                    r.label,
                    r.concurrency
                        .map_or_else(|| "all cores".into(), |c| c.to_string()),
                    r.errors,
                    r.first_error.as_deref().unwrap_or("?")
                );
            }
        }
        md
    }
}

/// A number with about three significant digits, in plain decimal notation.
pub fn sig(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 9) as usize;
    format!("{x:.decimals$}")
}

/// Milliseconds.
fn ms(x: f64) -> String {
    sig(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(sig(1234.4), "1234");
        assert_eq!(sig(12.34), "12.3");
        assert_eq!(sig(1.234), "1.23");
        assert_eq!(sig(0.1234), "0.123");
        assert_eq!(sig(0.0), "0");
        assert_eq!(sig(0.000_123), "0.000123");
        assert_eq!(sig(25018.0), "25018");
    }
}
