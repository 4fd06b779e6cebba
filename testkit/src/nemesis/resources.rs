//! Resident memory and open file descriptors of the cluster's processes over a run, and their trend.
//!
//! Every few seconds each member running then is sampled from `/proc/PID/status` (`VmRSS`) and `/proc/PID/fd`
//! (the entries counted). A member restarted by the nemesis is a new process: its samples carry the new pid, and
//! the trend is judged per process (an instance), on the instance that lived longest — a fresh process's figures
//! say nothing about growth. The first third of that instance's samples is its warm-up and is not judged: a node's
//! resident memory climbs from about 20 MiB to about 200 MiB in its first minute under load (allocator arenas for
//! its threads, the first protocol runs) and then levels off. The trend compares the mean of the middle third with
//! the mean of the last third: memory that keeps growing after the warm-up is flagged, a plateau is not.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde::Serialize;

/// One sample of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Seconds since the run began.
    pub at_s: u64,
    /// The process.
    pub pid: u32,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
}

/// The samples of every member, by name (`node-N`, `coordinator`).
#[derive(Debug, Default)]
pub struct Samples {
    began: Option<Instant>,
    /// Name → samples, in time order.
    pub by_member: BTreeMap<String, Vec<Sample>>,
}

/// A process's resident memory (KiB) and open file descriptors, from `/proc`; `None` if it is gone.
pub fn probe(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

impl Samples {
    /// Samples every `(name, pid)` now.
    pub fn take(&mut self, members: &[(String, u32)]) {
        let began = *self.began.get_or_insert_with(Instant::now);
        let at_s = began.elapsed().as_secs();
        for (name, pid) in members {
            if let Some((rss_kib, fds)) = probe(*pid) {
                self.by_member
                    .entry(name.clone())
                    .or_default()
                    .push(Sample {
                        at_s,
                        pid: *pid,
                        rss_kib,
                        fds,
                    });
            }
        }
    }

    /// The trend of every member.
    pub fn trends(&self, limits: &GrowthLimits) -> Vec<Trend> {
        self.by_member
            .iter()
            .map(|(name, samples)| Trend::of(name, samples, limits))
            .collect()
    }
}

/// How much growth from the middle third of a process's samples to the last third is flagged (see
/// [`Trend::growth`]).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct GrowthLimits {
    /// Resident memory may grow by this factor of the middle third's mean …
    pub rss_factor: f64,
    /// … plus this many KiB (what a busy moment allocates: a DKLs23 key generation, a burst of requests).
    pub rss_slack_kib: u64,
    /// Open file descriptors may grow by this many (a connection or a file open when sampled).
    pub fd_slack: u64,
}

impl Default for GrowthLimits {
    fn default() -> Self {
        GrowthLimits {
            rss_factor: 1.25,
            rss_slack_kib: 32 * 1024,
            fd_slack: 8,
        }
    }
}

/// One member's figures over the run.
#[derive(Clone, Debug, Serialize)]
pub struct Trend {
    /// `node-N` or `coordinator`.
    pub member: String,
    /// How many samples.
    pub samples: usize,
    /// How many processes (1 + restarts seen).
    pub instances: usize,
    /// The first sample of the run and the last (any instance): resident KiB, fds.
    pub first: Option<Sample>,
    /// The last sample of the run.
    pub last: Option<Sample>,
    /// The longest-lived instance: its pid, how long it was sampled (s), and its samples.
    pub longest_pid: u32,
    /// Seconds the longest-lived instance was sampled over.
    pub longest_span_s: u64,
    /// Its middle third's mean resident memory (KiB), after the warm-up.
    pub mid_rss_kib: u64,
    /// Its middle third's mean fds.
    pub mid_fds: f64,
    /// Its last third's mean resident memory (KiB).
    pub late_rss_kib: u64,
    /// Late mean fds.
    pub late_fds: f64,
    /// Its peak resident memory (KiB) and fds.
    pub peak_rss_kib: u64,
    /// Peak fds.
    pub peak_fds: u64,
    /// What grew beyond [`GrowthLimits`], in words (`None`: nothing).
    pub growth: Option<String>,
}

/// A process with fewer samples is not judged (a trend of a few samples is noise).
pub const MIN_SAMPLES: usize = 9;

fn mean(values: impl Iterator<Item = u64>) -> f64 {
    let (sum, n) = values.fold((0u64, 0u64), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum as f64 / n as f64
    }
}

impl Trend {
    fn of(member: &str, samples: &[Sample], limits: &GrowthLimits) -> Trend {
        let mut instances: BTreeMap<u32, Vec<Sample>> = BTreeMap::new();
        for s in samples {
            instances.entry(s.pid).or_default().push(*s);
        }
        let longest = instances
            .iter()
            .max_by_key(|(_, s)| {
                (
                    s.last().map_or(0, |l| l.at_s) - s.first().map_or(0, |f| f.at_s),
                    s.len(),
                )
            })
            .map(|(pid, s)| (*pid, s.clone()))
            .unwrap_or_default();
        let (longest_pid, life) = longest;
        let third = (life.len() / 3).max(1);
        let mid = life
            .get(third.min(life.len())..life.len().saturating_sub(third).max(third))
            .unwrap_or_default();
        let late = life
            .get(life.len().saturating_sub(third)..)
            .unwrap_or_default();
        let mid_rss = mean(mid.iter().map(|s| s.rss_kib));
        let late_rss = mean(late.iter().map(|s| s.rss_kib));
        let mid_fds = mean(mid.iter().map(|s| s.fds));
        let late_fds = mean(late.iter().map(|s| s.fds));
        let mut growth = Vec::new();
        // Too few samples to tell a trend from noise: not judged.
        if life.len() >= MIN_SAMPLES {
            let rss_bound = mid_rss * limits.rss_factor + limits.rss_slack_kib as f64;
            if late_rss > rss_bound {
                growth.push(format!(
                    "resident memory {:.0} → {:.0} MiB after the warm-up (bound {:.0} MiB)",
                    mid_rss / 1024.0,
                    late_rss / 1024.0,
                    rss_bound / 1024.0
                ));
            }
            if late_fds > mid_fds + limits.fd_slack as f64 {
                growth.push(format!(
                    "open fds {mid_fds:.1} → {late_fds:.1} after the warm-up (bound +{})",
                    limits.fd_slack
                ));
            }
        }
        Trend {
            member: member.to_string(),
            samples: samples.len(),
            instances: instances.len(),
            first: samples.first().copied(),
            last: samples.last().copied(),
            longest_pid,
            longest_span_s: life.last().map_or(0, |l| l.at_s) - life.first().map_or(0, |f| f.at_s),
            mid_rss_kib: mid_rss as u64,
            mid_fds,
            late_rss_kib: late_rss as u64,
            late_fds,
            peak_rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
            peak_fds: samples.iter().map(|s| s.fds).max().unwrap_or(0),
            growth: (!growth.is_empty()).then(|| growth.join("; ")),
        }
    }
}

/// How often to sample for a run of `length`: every 2 s for short runs, up to every 10 s, about 100 samples.
pub fn interval_for(length: Duration) -> Duration {
    Duration::from_secs((length.as_secs() / 100).clamp(2, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(pid: u32, values: &[(u64, u64)]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &(rss_kib, fds))| Sample {
                at_s: i as u64 * 2,
                pid,
                rss_kib,
                fds,
            })
            .collect()
    }

    #[test]
    fn growth_is_flagged_on_the_longest_instance_only() {
        let limits = GrowthLimits::default();
        let flat = samples(1, &[(50_000, 20); 9]);
        assert!(Trend::of("node-1", &flat, &limits).growth.is_none());

        // A warm-up then a plateau: not growth.
        let warming: Vec<(u64, u64)> = [
            20_000, 120_000, 190_000, 200_000, 205_000, 203_000, 206_000, 204_000, 207_000,
        ]
        .iter()
        .map(|&rss| (rss, 13))
        .collect();
        assert!(Trend::of("node-1", &samples(1, &warming), &limits)
            .growth
            .is_none());

        let leaking: Vec<(u64, u64)> = (0..9).map(|i| (50_000 + i * 30_000, 20 + i * 5)).collect();
        let trend = Trend::of("node-1", &samples(1, &leaking), &limits);
        let growth = trend.growth.expect("growth flagged");
        assert!(
            growth.contains("resident memory") && growth.contains("open fds"),
            "{growth}"
        );

        // A restart: a short young instance after a long flat one is not a trend.
        let mut restarted = flat.clone();
        restarted.extend(samples(2, &[(10_000, 5), (12_000, 6)]));
        let trend = Trend::of("node-1", &restarted, &limits);
        assert_eq!((trend.instances, trend.longest_pid), (2, 1));
        assert!(trend.growth.is_none());
    }

    #[test]
    fn this_process_can_be_probed() {
        let (rss, fds) = probe(std::process::id()).expect("/proc of this process");
        assert!(rss > 0 && fds > 0);
    }
}
