//! CPU time: of the cluster's processes (when this command started them and knows their pids) from
//! `/proc/PID/stat`, and of this process from `getrusage(RUSAGE_SELF)`.
//!
//! The two are kept apart on purpose: "cluster CPU" is what the nodes and the coordinator spent, "this process" is
//! what the benchmark process spent (the client side of the vHSM rows, which includes the PKCS#11 module's own
//! runtime; all of the work of the SoftHSM and baseline rows).

use nix::sys::resource::{getrusage, UsageWho};
use nix::unistd::{sysconf, SysconfVar};

/// Where CPU time is read from.
#[derive(Debug, Clone)]
pub struct CpuProbe {
    /// The cluster's processes, if known.
    cluster_pids: Option<Vec<u32>>,
    /// Clock ticks per second (the unit of `/proc/PID/stat` times).
    ticks_per_second: f64,
}

/// CPU seconds consumed so far.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    cluster: Option<f64>,
    process: f64,
}

/// CPU seconds consumed between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUsed {
    /// Summed over the cluster's processes; `None` when not measured.
    pub cluster: Option<f64>,
    /// This process (every thread).
    pub process: f64,
}

impl CpuProbe {
    /// A probe of this process and, if given, of the cluster processes `cluster_pids`.
    pub fn new(cluster_pids: Option<Vec<u32>>) -> Self {
        let ticks = match sysconf(SysconfVar::CLK_TCK) {
            Ok(Some(t)) if t > 0 => t as f64,
            _ => 100.0,
        };
        CpuProbe {
            cluster_pids,
            ticks_per_second: ticks,
        }
    }

    /// Reads the CPU time used so far.
    pub fn sample(&self) -> CpuSample {
        let cluster = self.cluster_pids.as_ref().and_then(|pids| {
            pids.iter()
                .map(|pid| process_ticks(*pid).map(|t| t as f64 / self.ticks_per_second))
                .sum::<Option<f64>>()
        });
        CpuSample {
            cluster,
            process: own_cpu_seconds(),
        }
    }
}

impl CpuSample {
    /// What was used from `earlier` to this sample.
    pub fn since(&self, earlier: &CpuSample) -> CpuUsed {
        CpuUsed {
            cluster: match (self.cluster, earlier.cluster) {
                (Some(now), Some(then)) => Some((now - then).max(0.0)),
                _ => None,
            },
            process: (self.process - earlier.process).max(0.0),
        }
    }
}

/// utime + stime of process `pid`, in clock ticks; `None` if it cannot be read (the process is gone).
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat)
}

/// utime + stime from the text of `/proc/PID/stat`: fields 14 and 15, counted after the command name (field 2,
/// in parentheses, which may itself contain spaces and parentheses).
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after_name.split_whitespace().skip(11); // the first is field 3 (state)
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// User + system CPU seconds of this process, all threads.
fn own_cpu_seconds() -> f64 {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            seconds(usage.user_time()) + seconds(usage.system_time())
        }
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let stat = "4242 (vhsm (node) x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 40 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(290));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn own_cpu_moves() {
        let probe = CpuProbe::new(Some(vec![std::process::id()]));
        let before = probe.sample();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let used = probe.sample().since(&before);
        assert!(used.process > 0.0);
        assert!(used.cluster.is_some());
    }
}
