//! The node itself: its status, unsealing, and the cluster's membership.

use vhsm_core::Membership;
use vhsm_protocols::SecretBytes;
use vhsm_wire::{client_api::NodeStatus, node_api::NodeResponse};

use crate::{
    error::ServiceError,
    node::{blocking, Node},
};

impl Node {
    /// `Status`: this node's id, version, how many keys it holds shares of, whom it bans.
    pub(crate) async fn status(&self) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        let keys = blocking(move || store.keys()).await?;
        let active = keys.iter().filter(|k| k.state.has_shares()).count();
        Ok(NodeResponse::Status(NodeStatus {
            node_id: self.id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            keys: u32::try_from(active).unwrap_or(u32::MAX),
            banned: self.banned().await?,
            sealed: false,
        }))
    }

    /// `Unseal`: unwraps the storage key with the operator's passphrase.
    pub(crate) async fn unseal_request(
        &self,
        passphrase: SecretBytes,
    ) -> Result<NodeResponse, ServiceError> {
        self.unseal(passphrase).await?;
        Ok(NodeResponse::Ok)
    }

    /// `SetMembership`: keeps a newer membership and talks to exactly its nodes.
    pub(crate) async fn set_membership(
        &self,
        membership: Membership,
    ) -> Result<NodeResponse, ServiceError> {
        self.membership()?
            .apply(self.store()?.clone(), &self.mesh, membership)
            .await?;
        Ok(NodeResponse::Ok)
    }
}
