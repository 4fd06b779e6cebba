//! `vhsm bench` and `vhsm chaos`: run the programs `vhsm-bench` (crate `bench/`: the benchmark, its SoftHSM driver
//! and its plots) and `vhsm-chaos` (crate `chaos/`: soak and chaos runs, the nemesis of the test kit) with the same
//! arguments. Each is a program of its own so that the `vhsm` binary carries none of that code; both start clusters
//! that run this very `vhsm` (`VHSM_BIN`).

use std::{ffi::OsString, path::Path, path::PathBuf};

use anyhow::{bail, Context};

/// A program kept out of the `vhsm` binary, found beside it or on `PATH`.
struct Companion {
    /// Its file name (`vhsm-bench`).
    program: &'static str,
    /// The `vhsm` command that runs it (`bench`).
    command: &'static str,
    /// The package that builds it (`vhsm-bench`).
    package: &'static str,
}

/// The benchmark program.
const BENCH: Companion = Companion {
    program: "vhsm-bench",
    command: "bench",
    package: "vhsm-bench",
};

/// The soak and chaos program.
const CHAOS: Companion = Companion {
    program: "vhsm-chaos",
    command: "chaos",
    package: "vhsm-chaos",
};

impl Companion {
    /// The program beside this one, else on `PATH`.
    fn find(&self) -> anyhow::Result<PathBuf> {
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let beside = exe.parent().map(|dir| dir.join(self.program));
        if let Some(path) = beside.filter(|p| p.is_file()) {
            return Ok(path);
        }
        let on_path = std::env::var_os("PATH")
            .map(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(self.program))
                    .find(|p| p.is_file())
            })
            .unwrap_or_default();
        on_path.with_context(|| {
            format!(
                "`vhsm {}` runs the program `{}`, which is neither beside {} nor on PATH: build it with `cargo \
                 build --release -p {}` (it is kept out of the `vhsm` binary)",
                self.command,
                self.program,
                exe.display(),
                self.package
            )
        })
    }

    /// Runs the program with `leading` then `args`, and `VHSM_BIN` naming this `vhsm`; exits with its status.
    fn run(&self, leading: &[OsString], args: &[OsString]) -> anyhow::Result<()> {
        let program = self.find()?;
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let status = std::process::Command::new(&program)
            .args(leading)
            .args(args)
            .env("VHSM_BIN", exe)
            .status()
            .with_context(|| format!("cannot run {}", program.display()))?;
        if !status.success() {
            bail!("{} failed ({status})", self.program);
        }
        Ok(())
    }
}

/// `--json` for the program unless `args` has it already.
fn json_flag(json: bool, args: &[OsString]) -> Vec<OsString> {
    if json && !args.iter().any(|a| a == "--json") {
        vec!["--json".into()]
    } else {
        Vec::new()
    }
}

/// Runs `vhsm-bench` with `args` (and `--cluster`/`--json` if given to `vhsm`); exits with its status.
pub fn run(cluster: Option<&Path>, json: bool, args: &[OsString]) -> anyhow::Result<()> {
    let mut leading = Vec::new();
    if let Some(dir) = cluster.filter(|_| !args.iter().any(|a| a == "--cluster")) {
        leading.push("--cluster".into());
        leading.push(dir.as_os_str().to_owned());
    }
    leading.extend(json_flag(json, args));
    BENCH.run(&leading, args)
}

/// Runs `vhsm-chaos` with `args` (and `--json` if given to `vhsm`; it always starts a cluster of its own); exits
/// with its status.
pub fn chaos(json: bool, args: &[OsString]) -> anyhow::Result<()> {
    CHAOS.run(&json_flag(json, args), args)
}
