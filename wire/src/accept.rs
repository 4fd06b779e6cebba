//! The accepting side of an endpoint, shared by nodes and coordinators: complete each handshake, read the peer's
//! role from its certificate, hand the connection over; on shutdown, close and wait for connections to end.

use std::future::Future;

use crate::identity::Role;

/// Accepts connections on `endpoint` until `shutdown` completes. Each connection that completes its TLS handshake
/// (so its certificate is from the cluster CA) is given to `handler` on a task of its own, with the role its
/// certificate grants (`None`: a CA certificate that names no role of ours).
pub async fn serve<H, Fut>(
    endpoint: &quinn::Endpoint,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(quinn::Connection, Option<Role>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    match incoming.await {
                        Ok(conn) => {
                            let role = Role::of_connection(&conn);
                            handler(conn, role).await;
                        }
                        Err(e) => tracing::warn!(%remote, error = %e, "refused a connection (TLS handshake failed)"),
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    endpoint.close(0u32.into(), b"shutting down");
    endpoint.wait_idle().await;
}
