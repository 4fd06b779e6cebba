//! `vhsm node` and `vhsm coordinator`: the daemons, stopped by SIGTERM or Ctrl-C (or, with `--exit-with-parent`,
//! when the process that started them goes away).

use std::path::Path;

use anyhow::Context;
use tokio::io::AsyncReadExt;

/// Registers for SIGTERM and SIGINT now (so that a signal arriving from here on is not lost to the default
/// action), and returns a future that completes on either, or (if `watch_stdin`) when standard input ends.
pub fn shutdown_signal(watch_stdin: bool) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    async move {
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
        let on_terminate = async {
            match terminate.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
            tracing::info!("SIGTERM: stopping");
        };
        let on_interrupt = async {
            match interrupt.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
            tracing::info!("interrupted: stopping");
        };
        tokio::select! {
            () = stdin_closed => {}
            () = on_terminate => {}
            () = on_interrupt => {}
        }
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
