//! The client's session: cluster status, token information, login and logout.

use vhsm_core::{PinUser, SecretBytes};
use vhsm_wire::{client_api::ClientResponse, WireError};

use crate::server::{ClientSession, Coordinator};

impl Coordinator {
    /// `Status`.
    pub(crate) async fn status(
        &self,
        _session: &ClientSession,
    ) -> Result<ClientResponse, WireError> {
        Ok(ClientResponse::Status(self.cluster_status().await))
    }

    /// `TokenInfo`.
    pub(crate) async fn token_info(
        &self,
        _session: &ClientSession,
    ) -> Result<ClientResponse, WireError> {
        Ok(ClientResponse::Token(self.token.info()))
    }

    /// `Login`.
    pub(crate) async fn login(
        &self,
        session: &ClientSession,
        user: PinUser,
        pin: SecretBytes,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        let result = self.token.login(user, pin.expose());
        match &result {
            Ok(()) => {
                if let Ok(mut login) = session.login.lock() {
                    *login = Some(user);
                }
                tracing::info!(%client, ?user, "logged in");
            }
            Err(e) => {
                tracing::warn!(%client, ?user, error = %e, "login refused");
                crate::audit::record_login_failure(&self.pool, user, e).await;
            }
        }
        result.map(|()| ClientResponse::Ok)
    }

    /// `Logout`.
    pub(crate) async fn logout(
        &self,
        session: &ClientSession,
    ) -> Result<ClientResponse, WireError> {
        if let Ok(mut login) = session.login.lock() {
            *login = None;
        }
        Ok(ClientResponse::Ok)
    }
}
