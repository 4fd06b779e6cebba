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

    /// `TokenInfo`: the token's description and its PIN state, as the threshold of nodes report it.
    pub(crate) async fn token_info(
        &self,
        _session: &ClientSession,
        nodes: &NodePool,
    ) -> Result<ClientResponse, Error> {
        Ok(ClientResponse::Token(self.token.info(nodes).await))
    }

    /// `Login`: the nodes check the PIN, each counting its own failures and recording the check in its audit log;
    /// the session logs in if the threshold of nodes accept it (`crate::token::check_pin`).
    pub(crate) async fn login(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        user: PinUser,
        pin: SecretBytes,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        let result = crate::token::check_pin(nodes, user, &pin).await;
        drop(pin);
        match &result {
            Ok(()) => {
                if let Ok(mut login) = session.login.lock() {
                    *login = Some(user);
                }
                tracing::info!(%client, ?user, "logged in");
            }
            Err(e) => tracing::warn!(%client, ?user, error = %e, "login refused"),
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
