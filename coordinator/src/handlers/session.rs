//! The client's session: cluster status, token information, login and logout.

use vhsm_core::{PinUser, SecretBytes};
use vhsm_wire::client_api::ClientResponse;

use crate::server::{ClientSession, Coordinator};
use crate::{error::Error, nodes::NodePool};

impl Coordinator {
    /// `Status`: every node's health as the coordinator reaches it now (also learns the nodes' ECDSA bans).
    pub(crate) async fn status(
        &self,
        _session: &ClientSession,
        nodes: &NodePool,
    ) -> Result<ClientResponse, Error> {
        Ok(ClientResponse::Status(self.cluster_status(nodes).await))
    }

    /// `TokenInfo`: the token's PIN state (lockout counters), for the PKCS#11 token flags.
    pub(crate) async fn token_info(
        &self,
        _session: &ClientSession,
    ) -> Result<ClientResponse, Error> {
        Ok(ClientResponse::Token(self.token.info()))
    }

    /// `Login`: checks a PIN against the token (with lockout); a refusal is reported to every node's audit log.
    pub(crate) async fn login(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        user: PinUser,
        pin: SecretBytes,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        // Argon2 takes tens of milliseconds on purpose: off the async threads.
        let token = self.token.clone();
        let result = tokio::task::spawn_blocking(move || token.login(user, pin.expose()))
            .await
            .unwrap_or_else(|e| Err(Error::Internal(format!("PIN check failed: {e}"))));
        match &result {
            Ok(()) => {
                if let Ok(mut login) = session.login.lock() {
                    *login = Some(user);
                }
                tracing::info!(%client, ?user, "logged in");
            }
            Err(e) => {
                tracing::warn!(%client, ?user, error = %e, "login refused");
                crate::audit::record_login_failure(nodes, user, e).await;
            }
        }
        result.map(|()| ClientResponse::Ok)
    }

    /// `Logout`: the session is no longer logged in.
    pub(crate) async fn logout(&self, session: &ClientSession) -> Result<ClientResponse, Error> {
        if let Ok(mut login) = session.login.lock() {
            *login = None;
        }
        Ok(ClientResponse::Ok)
    }
}
