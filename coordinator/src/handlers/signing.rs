//! Signing, and clearing a node's ban from OT-based protocols.

use vhsm_core::{HashAlg, KeyId, KeyUse, NodeId};
use vhsm_wire::{client_api::ClientResponse, node_api::NodeRequest, ErrorKind, WireError};

use crate::server::{permitted, ClientSession, Coordinator, MAX_MESSAGE, STATUS_TIMEOUT};

impl Coordinator {
    /// `Sign`.
    pub(crate) async fn sign(
        &self,
        session: &ClientSession,
        key_id: KeyId,
        message: Vec<u8>,
        hash: Option<HashAlg>,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        session.require_user()?;
        if message.len() > MAX_MESSAGE {
            return Err(WireError::new(
                ErrorKind::BadRequest,
                format!(
                    "message of {} bytes is larger than the {MAX_MESSAGE}-byte limit",
                    message.len()
                ),
            ));
        }
        let key = self.key(key_id).await?;
        permitted(&key, KeyUse::Sign)?;
        let signed = self
            .signer
            .sign(&self.pool, &key, &message, hash)
            .await
            .inspect_err(|e| {
                tracing::warn!(%client, key = %key_id, error = %e, "signing failed");
            })?;
        tracing::debug!(%client, key = %key_id, signers = ?signed.signers, "signed");
        Ok(ClientResponse::Signature {
            signature: signed.signature,
            signers: signed.signers,
        })
    }

    /// `Unban`.
    pub(crate) async fn unban(
        &self,
        session: &ClientSession,
        node: NodeId,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        if session.logged_in().is_none() {
            return Err(WireError::new(
                ErrorKind::NotLoggedIn,
                "log in first (user or security officer)",
            ));
        }
        if !self.pool.ids().contains(&node) {
            return Err(WireError::new(
                ErrorKind::NotFound,
                format!("no node {node} in this cluster"),
            ));
        }
        tracing::warn!(%client, node, "operator clears the ban on a node");
        let answers = self
            .pool
            .call_each(
                &self.pool.ids(),
                |_| NodeRequest::ClearBan { node },
                STATUS_TIMEOUT,
            )
            .await;
        let failed: Vec<_> = answers
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(n, _)| *n)
            .collect();
        if !failed.is_empty() {
            return Err(WireError {
                kind: ErrorKind::Unavailable,
                message: format!(
                    "could not clear the ban on node(s) {failed:?}; run the command again when they are up"
                ),
                nodes: failed,
            });
        }
        self.signer
            .set_banned(self.signer.banned().into_iter().filter(|b| *b != node));
        Ok(ClientResponse::Ok)
    }
}
