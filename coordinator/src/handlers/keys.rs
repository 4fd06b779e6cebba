//! Keys: creation by DKG, listing, metadata, the lifecycle, destruction, reshare.

use vhsm_core::{Algorithm, ChangeApproval, KeyId, KeyState, NodeId};
use vhsm_wire::client_api::ClientResponse;

use crate::{error::Error, nodes::NodePool};
use crate::{
    keygen, keys, reshare,
    server::{ClientSession, Coordinator},
};

impl Coordinator {
    /// `CreateKey`: a new key by distributed generation on the membership's nodes, checked by a pairwise test
    /// before it is reported. User.
    pub(crate) async fn create_key(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        algorithm: Algorithm,
        label: String,
        pre_active: bool,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_user()?;
        tracing::info!(%client, %algorithm, %label, pre_active, "key creation requested");
        let state = if pre_active {
            KeyState::PreActive
        } else {
            KeyState::Active
        };
        let key = keygen::create_key(
            nodes,
            &self.registry,
            algorithm,
            &label,
            attributes,
            state,
            &self.signer,
        )
        .await?;
        Ok(ClientResponse::Key(key))
    }

    /// `ListKeys`: every key the nodes hold (learned afresh from them). Any session.
    pub(crate) async fn list_keys(
        &self,
        _session: &ClientSession,
        nodes: &NodePool,
    ) -> Result<ClientResponse, Error> {
        self.registry.refresh(nodes).await;
        Ok(ClientResponse::Keys(self.registry.list()))
    }

    /// `GetKey`: one key's public description. Any session.
    pub(crate) async fn get_key(
        &self,
        _session: &ClientSession,
        nodes: &NodePool,
        key_id: KeyId,
    ) -> Result<ClientResponse, Error> {
        Ok(ClientResponse::Key(self.key(nodes, key_id).await?))
    }

    /// `UpdateKey`: a key's label and public attributes, on every holder (new revision). User.
    pub(crate) async fn update_key(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        key_id: KeyId,
        label: String,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<ClientResponse, Error> {
        session.require_user()?;
        let key = self.key(nodes, key_id).await?;
        Ok(ClientResponse::Key(
            keys::update_key(nodes, &self.registry, &key, &label, attributes).await?,
        ))
    }

    /// `SetKeyState`: a lifecycle transition (SP 800-57), applied by every holder that checks it against its own
    /// record. User.
    pub(crate) async fn set_key_state(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        key_id: KeyId,
        state: KeyState,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_user()?;
        let key = self.key(nodes, key_id).await?;
        tracing::warn!(%client, key = %key_id, from = %key.state, to = %state, "key lifecycle change requested");
        Ok(ClientResponse::Key(
            keys::set_state(nodes, &self.registry, &key, state).await?,
        ))
    }

    /// `DestroyKey`: erases the key's shares on every holder (tombstones remain). User.
    pub(crate) async fn destroy_key(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        key_id: KeyId,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_user()?;
        let key = self.key(nodes, key_id).await?;
        tracing::warn!(%client, key = %key_id, "key destruction requested");
        keys::destroy_key(nodes, &self.registry, &key).await?;
        Ok(ClientResponse::Ok)
    }

    /// `ReshareKey`: a refresh, repair or move of one key to the membership (see [`reshare::reshare_key`]).
    /// Security officer.
    pub(crate) async fn reshare_key(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        key_id: KeyId,
        avoid_dealers: Vec<NodeId>,
        leave_out: Vec<NodeId>,
        approval: Option<ChangeApproval>,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, key = %key_id, ?avoid_dealers, ?leave_out, "key reshare requested");
        let key = reshare::reshare_key(
            nodes,
            &self.registry,
            key_id,
            avoid_dealers,
            &leave_out,
            self.signer.banned(),
            approval,
        )
        .await?;
        Ok(ClientResponse::Key(key))
    }
}
