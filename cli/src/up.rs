//! `vhsm up`: a whole cluster on this machine, in one command.

use std::time::Duration;

use super::{
    daemon::shutdown_signal,
    init::{describe, init, InitOptions},
    layout::Layout,
    local_cluster::LocalCluster,
    progress,
};

pub async fn up(layout: &Layout, options: &InitOptions) -> anyhow::Result<()> {
    // From here on, Ctrl-C or SIGTERM stops whatever has been started, even during start-up.
    let shutdown = shutdown_signal(false);
    tokio::pin!(shutdown);
    if !layout.is_initialised() {
        let cluster = init(layout, options)?;
        print!("{}", describe(layout, &cluster));
    }
    let spinner = progress::spinner("starting nodes and coordinator");
    let started = tokio::select! {
        started = LocalCluster::start(layout) => started,
        // Dropping the half-started cluster kills its processes.
        () = &mut shutdown => {
            spinner.finish_and_clear();
            println!("stopped during start-up.");
            return Ok(());
        }
    };
    spinner.finish_and_clear();
    let mut cluster = started?;
    let root = layout.root().display();
    println!(
        "vHSM cluster up: {} nodes (threshold {}), coordinator at {}\n  logs      {}\n  try       vhsm --cluster {root} key create --algorithm ed25519 --label my-key\n            vhsm --cluster {root} key list\n            vhsm --cluster {root} demo\nA node or the coordinator that exits is started again by itself. Ctrl-C stops the cluster.",
        cluster.cluster.nodes.len(),
        cluster.cluster.threshold,
        cluster.cluster.coordinator,
        layout.logs_dir().display(),
    );
    // Supervise until Ctrl-C: a member that exits is reported and started again (see `LocalCluster::supervise`).
    let supervise = async {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for event in cluster.supervise() {
                eprintln!("{event}");
            }
        }
    };
    tokio::select! {
        () = &mut shutdown => {}
        () = supervise => {}
    }
    println!("stopping the cluster…");
    cluster.stop().await;
    println!("stopped.");
    Ok(())
}
