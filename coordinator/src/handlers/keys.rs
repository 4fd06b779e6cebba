//! Keys: creation by DKG, listing, metadata, the lifecycle, destruction, reshare.

use vhsm_core::{Algorithm, KeyId, KeyState, NodeId};
use vhsm_wire::{client_api::ClientResponse, ErrorKind, WireError};

use crate::{
    keygen, keys, reshare,
    server::{ClientSession, Coordinator},
};

impl Coordinator {
    /// `CreateKey`.
    pub(crate) async fn create_key(
        &self,
        session: &ClientSession,
        algorithm: Algorithm,
        label: String,
        pre_active: bool,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        session.require_user()?;
        tracing::info!(%client, %algorithm, %label, pre_active, "key creation requested");
        let state = if pre_active {
            KeyState::PreActive
        } else {
            KeyState::Active
        };
        let key = keygen::create_key(
            &self.pool,
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

    /// `ListKeys`.
    pub(crate) async fn list_keys(
        &self,
        _session: &ClientSession,
    ) -> Result<ClientResponse, WireError> {
        self.registry.refresh(&self.pool).await;
        Ok(ClientResponse::Keys(self.registry.list()))
    }

    /// `GetKey`.
    pub(crate) async fn get_key(
        &self,
        _session: &ClientSession,
        key_id: KeyId,
    ) -> Result<ClientResponse, WireError> {
        Ok(ClientResponse::Key(self.key(key_id).await?))
    }

    /// `UpdateKey`.
    pub(crate) async fn update_key(
        &self,
        session: &ClientSession,
        key_id: KeyId,
        label: String,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<ClientResponse, WireError> {
        session.require_user()?;
        let key = self.key(key_id).await?;
        Ok(ClientResponse::Key(
            keys::update_key(&self.pool, &self.registry, &key, &label, attributes).await?,
        ))
    }

    /// `SetKeyState`.
    pub(crate) async fn set_key_state(
        &self,
        session: &ClientSession,
        key_id: KeyId,
        state: KeyState,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        session.require_user()?;
        let key = self.key(key_id).await?;
        tracing::warn!(%client, key = %key_id, from = %key.state, to = %state, "key lifecycle change requested");
        Ok(ClientResponse::Key(
            keys::set_state(&self.pool, &self.registry, &key, state).await?,
        ))
    }

    /// `DestroyKey`.
    pub(crate) async fn destroy_key(
        &self,
        session: &ClientSession,
        key_id: KeyId,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        session.require_user()?;
        let key = self.key(key_id).await?;
        tracing::warn!(%client, key = %key_id, "key destruction requested");
        keys::destroy_key(&self.pool, &self.registry, &key).await?;
        Ok(ClientResponse::Ok)
    }

    /// `ReshareKey`.
    pub(crate) async fn reshare_key(
        &self,
        session: &ClientSession,
        key_id: KeyId,
        avoid_dealers: Vec<NodeId>,
        leave_out: Vec<NodeId>,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        let threshold = self.pool.membership().threshold;
        session.require_security_officer()?;
        // Start from the nodes' own view: a reshare must deal the epoch the holders have.
        self.registry.refresh(&self.pool).await;
        let key = self.key(key_id).await?;
        let Some(_guard) = self.registry.begin_reshare(key_id) else {
            return Err(WireError::new(
                ErrorKind::Unavailable,
                format!("key {key_id} is being reshared already"),
            ));
        };
        let target = reshare::Target {
            committee: self
                .pool
                .ids()
                .into_iter()
                .filter(|n| !leave_out.contains(n))
                .collect(),
            threshold,
            avoid_dealers,
            banned: self.signer.banned(),
        };
        tracing::warn!(%client, key = %key_id, epoch = key.epoch, holders = ?key.holders, committee = ?target.committee, threshold, "key reshare requested");
        let done = reshare::reshare(&self.pool, &key, &target).await?;
        self.registry.insert(done.key.clone());
        Ok(ClientResponse::Key(done.key))
    }
}
