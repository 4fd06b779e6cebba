//! What a nemesis run found: its figures, the problems among them, and a Markdown rendering.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use serde::Serialize;

use super::{
    resources::{GrowthLimits, Trend},
    schedule::EventKind,
};
use crate::load::percentile;

/// One disturbance, as it happened.
#[derive(Clone, Debug, Serialize)]
pub struct EventRecord {
    /// Its number in the run (from 1).
    pub id: usize,
    /// What.
    pub kind: EventKind,
    /// The node disturbed (none: the coordinator).
    pub node: Option<u16>,
    /// When it began, seconds into the run.
    pub at_s: f64,
    /// How long the disturbance held (the node down, paused or cut off; the coordinator down).
    pub held_s: f64,
    /// How long after it was undone the coordinator reached every node again (`None`: not within the bound).
    pub recovered_s: Option<f64>,
    /// Anything of note (a SIGTERM the process did not obey in time, how it was restarted).
    pub note: String,
}

impl EventRecord {
    /// `#3 pause node 2`.
    pub fn label(&self) -> String {
        match self.node {
            Some(node) => format!("#{} {} node {node}", self.id, self.kind),
            None => format!("#{} {}", self.id, self.kind),
        }
    }
}

/// What happened to one operation of the load (or one key generation).
#[derive(Clone, Debug)]
pub enum Outcome {
    /// It succeeded and its result checked.
    Ok,
    /// It gave a result that does not check.
    Wrong(String),
    /// It failed: the cause (kind and nodes), the words, and whether that is a clear error for when it ran.
    Failed {
        /// The error's kind and nodes (or the client's failure).
        cause: String,
        /// The error's words.
        text: String,
        /// Whether it is the error a caller should get during the disturbance it ran in.
        clear: bool,
    },
}

/// One operation, as it happened.
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// `sign ed25519`, …, `create key`.
    pub kind: String,
    /// How long it took.
    pub took: Duration,
    /// The disturbance it ran (partly) during, by number (`None`: calm throughout).
    pub event: Option<usize>,
    /// Its outcome.
    pub outcome: Outcome,
}

/// The operations of one kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpFigures {
    /// The operation.
    pub kind: String,
    /// Succeeded.
    pub ok: u64,
    /// Failed.
    pub failed: u64,
    /// Gave a wrong result.
    pub wrong: u64,
}

/// Latency and failures of the operations of one phase (calm, or during one kind of disturbance).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseFigures {
    /// `calm`, an [`EventKind`]'s name, or `all`.
    pub phase: String,
    /// Operations.
    pub ops: u64,
    /// Of which failed.
    pub failed: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// Failures with the same cause, operation and phase.
#[derive(Clone, Debug, Serialize)]
pub struct FailureFigures {
    /// `calm` or the kind of disturbance.
    pub during: String,
    /// The operation.
    pub op: String,
    /// The error's kind and nodes.
    pub cause: String,
    /// How many.
    pub count: u64,
    /// Whether these are clear errors for the disturbance (a calm failure never is).
    pub clear: bool,
    /// One example's words.
    pub example: String,
    /// The disturbance of that example.
    pub example_event: String,
}

/// The keys of the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeyFigures {
    /// Made before the nemesis began.
    pub before: usize,
    /// Made (acknowledged) while it ran.
    pub during: usize,
    /// Key generations that failed while it ran.
    pub creation_failed: usize,
    /// Keys the coordinator lists at the end.
    pub listed: usize,
    /// Listed keys nobody was told were made (a generation that failed for its caller but completed).
    pub extra: usize,
    /// Keys made and acknowledged that are not listed, not usable, or not held by every node at the key's epoch.
    pub lost: Vec<String>,
    /// Staged shares the nodes still hold at the end (a reshare left half-done; none is started here).
    pub staged: usize,
}

/// The ciphertexts the load made, opened again at the end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CiphertextFigures {
    /// Made (acknowledged).
    pub made: usize,
    /// Decrypted again at the end and compared.
    pub checked: usize,
    /// Those that did not open, or opened to another plaintext.
    pub bad: Vec<String>,
}

/// `vhsm audit verify` at the end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditFigures {
    /// It passed.
    pub ok: bool,
    /// What it printed (last lines).
    pub output: String,
}

/// Everything a nemesis run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The schedule's seed.
    pub seed: u64,
    /// How long the nemesis was to run, s.
    pub planned_s: f64,
    /// How long the load ran, s.
    pub ran_s: f64,
    /// Nodes, threshold, load clients.
    pub nodes: u16,
    /// Threshold.
    pub threshold: u16,
    /// Concurrent load clients.
    pub clients: usize,
    /// The disturbances, in order.
    pub events: Vec<EventRecord>,
    /// Operations by kind.
    pub ops: Vec<OpFigures>,
    /// Latency and failures by phase.
    pub phases: Vec<PhaseFigures>,
    /// Failures by phase, operation and cause.
    pub failures: Vec<FailureFigures>,
    /// Wrong results (must be none).
    pub wrong: Vec<String>,
    /// Failures while no disturbance was active (examples, at most 20) and how many.
    pub calm_failures: Vec<String>,
    /// How many operations failed while calm.
    pub calm_failed: u64,
    /// How many operations ran wholly while calm.
    pub calm_ops: u64,
    /// Failures during a disturbance that are not a clear error (examples, at most 20) and how many.
    pub unclear: Vec<String>,
    /// How many were not clear.
    pub unclear_count: u64,
    /// Keys.
    pub keys: KeyFigures,
    /// Ciphertexts.
    pub ciphertexts: CiphertextFigures,
    /// The audit logs.
    pub audit: AuditFigures,
    /// Memory and file descriptors of every member.
    pub resources: Vec<Trend>,
    /// How often they were sampled, s.
    pub sample_every_s: u64,
    /// The limits growth was judged by.
    pub growth_limits: Option<GrowthLimits>,
    /// Events after which the cluster did not recover within the bound (the run stopped there).
    pub unrecovered: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// At most this many examples of a kind are kept.
const EXAMPLES: usize = 20;

impl Report {
    /// Fills the figures from the operations' records (and `events`, already in the report).
    pub fn tally(&mut self, records: &[OpRecord]) {
        let kind_of = |event: Option<usize>| -> String {
            event
                .and_then(|id| self.events.iter().find(|e| e.id == id))
                .map_or_else(|| "calm".to_string(), |e| e.kind.name().to_string())
        };
        let label_of = |event: Option<usize>| -> String {
            event
                .and_then(|id| self.events.iter().find(|e| e.id == id))
                .map_or_else(|| "calm".to_string(), EventRecord::label)
        };
        let mut ops: BTreeMap<String, OpFigures> = BTreeMap::new();
        let mut phases: BTreeMap<String, (Vec<Duration>, u64)> = BTreeMap::new();
        let mut failures: BTreeMap<(String, String, String, bool), FailureFigures> =
            BTreeMap::new();
        let (mut wrong, mut calm_failures, mut unclear) = (Vec::new(), Vec::new(), Vec::new());
        let (mut calm_failed, mut calm_ops, mut unclear_count) = (0, 0, 0);
        for r in records {
            let phase = kind_of(r.event);
            let figures = ops.entry(r.kind.clone()).or_insert_with(|| OpFigures {
                kind: r.kind.clone(),
                ..OpFigures::default()
            });
            let failed = !matches!(r.outcome, Outcome::Ok);
            for p in [phase.clone(), "all".to_string()] {
                let entry = phases.entry(p).or_default();
                entry.0.push(r.took);
                entry.1 += u64::from(failed);
            }
            if r.event.is_none() {
                calm_ops += 1;
            }
            match &r.outcome {
                Outcome::Ok => figures.ok += 1,
                Outcome::Wrong(what) => {
                    figures.wrong += 1;
                    wrong.push(format!("{} ({}): {what}", r.kind, label_of(r.event)));
                }
                Outcome::Failed { cause, text, clear } => {
                    figures.failed += 1;
                    let clear = *clear && r.event.is_some();
                    let line = format!(
                        "{} after {:?} ({}): {text}",
                        r.kind,
                        r.took,
                        label_of(r.event)
                    );
                    if r.event.is_none() {
                        calm_failed += 1;
                        if calm_failures.len() < EXAMPLES {
                            calm_failures.push(line);
                        }
                    } else if !clear {
                        unclear_count += 1;
                        if unclear.len() < EXAMPLES {
                            unclear.push(line);
                        }
                    }
                    failures
                        .entry((phase.clone(), r.kind.clone(), cause.clone(), clear))
                        .or_insert_with(|| FailureFigures {
                            during: phase.clone(),
                            op: r.kind.clone(),
                            cause: cause.clone(),
                            count: 0,
                            clear,
                            example: text.clone(),
                            example_event: label_of(r.event),
                        })
                        .count += 1;
                }
            }
        }
        self.ops = ops.into_values().collect();
        let mut phases: Vec<PhaseFigures> = phases
            .into_iter()
            .map(|(phase, (latencies, failed))| PhaseFigures {
                phase,
                ops: latencies.len() as u64,
                failed,
                p50_ms: ms(percentile(&latencies, 0.50)),
                p99_ms: ms(percentile(&latencies, 0.99)),
                max_ms: ms(latencies.iter().max().copied().unwrap_or_default()),
            })
            .collect();
        // calm first, all last.
        phases.sort_by_key(|p| (p.phase != "calm", p.phase == "all", p.phase.clone()));
        self.phases = phases;
        self.failures = failures.into_values().collect();
        self.failures.sort_by_key(|f| std::cmp::Reverse(f.count));
        self.wrong = wrong;
        self.calm_failures = calm_failures;
        self.calm_failed = calm_failed;
        self.calm_ops = calm_ops;
        self.unclear = unclear;
        self.unclear_count = unclear_count;
    }

    /// Operations in all.
    pub fn total_ops(&self) -> u64 {
        self.ops.iter().map(|o| o.ok + o.failed + o.wrong).sum()
    }

    /// Operations failed in all.
    pub fn total_failed(&self) -> u64 {
        self.ops.iter().map(|o| o.failed).sum()
    }

    /// The members whose memory or file descriptors grew beyond the limits.
    pub fn growth(&self) -> Vec<String> {
        self.resources
            .iter()
            .filter_map(|t| t.growth.as_ref().map(|g| format!("{}: {g}", t.member)))
            .collect()
    }

    /// Everything that is wrong, in words: wrong results, lost keys or ciphertexts, an audit log that does not
    /// verify, a cluster that did not recover, calm failures, unclear failures, growth. Empty: the run passed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.wrong.is_empty() {
            problems.push(format!(
                "{} wrong results: {:?}",
                self.wrong.len(),
                self.wrong
            ));
        }
        if !self.keys.lost.is_empty() {
            problems.push(format!("keys lost: {:?}", self.keys.lost));
        }
        if !self.ciphertexts.bad.is_empty() {
            problems.push(format!(
                "ciphertexts that do not open to their plaintext: {:?}",
                self.ciphertexts.bad
            ));
        }
        if !self.audit.ok {
            problems.push(format!("vhsm audit verify failed:\n{}", self.audit.output));
        }
        if !self.unrecovered.is_empty() {
            problems.push(format!(
                "the cluster did not recover: {:?}",
                self.unrecovered
            ));
        }
        if self.calm_failed > 0 {
            problems.push(format!(
                "{} of {} operations failed while no disturbance was active: {:?}",
                self.calm_failed, self.calm_ops, self.calm_failures
            ));
        }
        if self.unclear_count > 0 {
            problems.push(format!(
                "{} failures during disturbances were not a clear error: {:?}",
                self.unclear_count, self.unclear
            ));
        }
        for growth in self.growth() {
            problems.push(format!("growth: {growth}"));
        }
        problems
    }

    /// The report as Markdown-like text: tables of operations, phases, failures, events and resources, then the
    /// checks and problems.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Nemesis run: seed {}, {:.0} s of load ({:.0} s planned), {} nodes, threshold {}, {} clients\n",
            self.seed, self.ran_s, self.planned_s, self.nodes, self.threshold, self.clients
        );
        let _ = writeln!(
            out,
            "{} operations, {} failed, {} wrong; {} disturbances.\n",
            self.total_ops(),
            self.total_failed(),
            self.wrong.len(),
            self.events.len()
        );
        let _ = writeln!(
            out,
            "| operation | ok | failed | wrong |\n|---|---:|---:|---:|"
        );
        for o in &self.ops {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                o.kind, o.ok, o.failed, o.wrong
            );
        }
        let _ = writeln!(
            out,
            "\n| phase | ops | failed | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|"
        );
        for p in &self.phases {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                p.phase, p.ops, p.failed, p.p50_ms, p.p99_ms, p.max_ms
            );
        }
        if !self.failures.is_empty() {
            let _ = writeln!(
                out,
                "\nFailures by cause:\n\n| during | operation | cause | count | clear | example |\n|---|---|---|---:|---|---|"
            );
            for f in &self.failures {
                let example: String = f.example.chars().take(160).collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} ({}) |",
                    f.during,
                    f.op,
                    f.cause,
                    f.count,
                    if f.clear { "yes" } else { "NO" },
                    example.replace('|', "/").replace('\n', " "),
                    f.example_event
                );
            }
        }
        let _ = writeln!(
            out,
            "\nDisturbances:\n\n| event | at s | held s | recovered after s | note |\n|---|---:|---:|---:|---|"
        );
        for e in &self.events {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | {} | {} |",
                e.label(),
                e.at_s,
                e.held_s,
                e.recovered_s
                    .map_or_else(|| "NOT RECOVERED".into(), |s| format!("{s:.1}")),
                e.note
            );
        }
        let _ = writeln!(
            out,
            "\nMemory and file descriptors (sampled every {} s; trend on each member's longest-lived process, its middle \
             third against its last third, the first third being its warm-up):\n\n| member | processes | samples \
             | RSS first→last MiB | RSS mid→late MiB | peak MiB | fds first→last | fds mid→late | peak fds | growth \
             |\n\
             |---|---:|---:|---|---|---:|---|---|---:|---|",
            self.sample_every_s
        );
        let mib = |kib: u64| kib as f64 / 1024.0;
        for t in &self.resources {
            let (first, last) = (t.first.unwrap_or_default(), t.last.unwrap_or_default());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} → {:.1} | {:.1} → {:.1} | {:.1} | {} → {} | {:.1} → {:.1} | {} | {} |",
                t.member,
                t.instances,
                t.samples,
                mib(first.rss_kib),
                mib(last.rss_kib),
                mib(t.mid_rss_kib),
                mib(t.late_rss_kib),
                mib(t.peak_rss_kib),
                first.fds,
                last.fds,
                t.mid_fds,
                t.late_fds,
                t.peak_fds,
                t.growth.as_deref().unwrap_or("none")
            );
        }
        let _ = writeln!(
            out,
            "\nKeys: {} made before, {} made during ({} generations failed), {} listed at the end ({} not \
             acknowledged to their caller), {} lost, {} staged shares left.",
            self.keys.before,
            self.keys.during,
            self.keys.creation_failed,
            self.keys.listed,
            self.keys.extra,
            self.keys.lost.len(),
            self.keys.staged
        );
        let _ = writeln!(
            out,
            "Ciphertexts: {} made, {} decrypted again at the end, {} bad.",
            self.ciphertexts.made,
            self.ciphertexts.checked,
            self.ciphertexts.bad.len()
        );
        let _ = writeln!(
            out,
            "Audit logs: vhsm audit verify {}.",
            if self.audit.ok { "passed" } else { "FAILED" }
        );
        let _ = writeln!(
            out,
            "Calm: {} operations, {} failed. During disturbances: {} failures not clear.",
            self.calm_ops, self.calm_failed, self.unclear_count
        );
        let problems = self.problems();
        if problems.is_empty() {
            let _ = writeln!(out, "\nNo problems: 0 wrong, 0 lost.");
        } else {
            let _ = writeln!(out, "\nPROBLEMS:");
            for p in problems {
                let _ = writeln!(out, "- {p}");
            }
        }
        out
    }
}
