//! `vhsm node` and `vhsm coordinator`: the daemons, stopped by SIGTERM or Ctrl-C (or, with `--exit-with-parent`,
//! when the process that started them goes away).

use std::path::Path;

use anyhow::Context;
use tokio::io::AsyncReadExt;

/// Completes on SIGTERM, SIGINT, or (if `watch_stdin`) when standard input reaches its end.
pub async fn shutdown_signal(watch_stdin: bool) {
    let stdin_closed = async {
        if watch_stdin {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            tracing::info!("parent process gone (standard input closed): stopping");
        } else {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
        tracing::info!("SIGTERM: stopping");
    };
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupted: stopping");
    };
    tokio::select! {
        () = stdin_closed => {}
        () = terminate => {}
        () = interrupt => {}
    }
}

pub async fn node(config: &Path, exit_with_parent: bool) -> anyhow::Result<()> {
    let config = vhsm_node::NodeConfig::load(config).map_err(anyhow::Error::msg)?;
    vhsm_node::run(config, shutdown_signal(exit_with_parent))
        .await
        .context("node failed")
}

pub async fn coordinator(config: &Path, exit_with_parent: bool) -> anyhow::Result<()> {
    let config = vhsm_coordinator::CoordinatorConfig::load(config).map_err(anyhow::Error::msg)?;
    vhsm_coordinator::server::run(config, shutdown_signal(exit_with_parent))
        .await
        .context("coordinator failed")
}
