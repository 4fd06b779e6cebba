//! `vhsm bench`: runs `vhsm-bench`, the benchmark program (crate `bench/`), with the same arguments. The benchmark,
//! its SoftHSM driver and its plots are a program of their own so that the `vhsm` binary carries none of them.

use std::{ffi::OsString, path::Path, path::PathBuf};

use anyhow::{bail, Context};

/// The benchmark program's name.
const BENCH: &str = "vhsm-bench";

/// `vhsm-bench` beside this program, else on `PATH`.
fn find_bench() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let beside = exe.parent().map(|dir| dir.join(BENCH));
    if let Some(path) = beside.filter(|p| p.is_file()) {
        return Ok(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(BENCH))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path.with_context(|| {
        format!(
            "`vhsm bench` runs the benchmark program `{BENCH}`, which is neither beside {} nor on PATH: build it \
             with `cargo build --release -p vhsm-bench` (it is kept out of the `vhsm` binary)",
            exe.display()
        )
    })
}

/// Runs `vhsm-bench` with `args` (and `--cluster`/`--json` if given to `vhsm`); exits with its status.
pub fn run(cluster: Option<&Path>, json: bool, args: &[OsString]) -> anyhow::Result<()> {
    let bench = find_bench()?;
    let mut command = std::process::Command::new(&bench);
    if let Some(dir) = cluster.filter(|_| !args.iter().any(|a| a == "--cluster")) {
        command.arg("--cluster").arg(dir);
    }
    if json && !args.iter().any(|a| a == "--json") {
        command.arg("--json");
    }
    // The cluster the benchmark starts runs this very `vhsm`.
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    command.args(args).env("VHSM_BIN", exe);
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", bench.display()))?;
    if !status.success() {
        bail!("{BENCH} failed ({status})");
    }
    Ok(())
}
