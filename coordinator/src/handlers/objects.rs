//! Certificates and data objects on the token.

use vhsm_core::{ObjectId, PinUser};
use vhsm_wire::{client_api::ClientResponse, WireError};

use crate::{
    objects,
    server::{ClientSession, Coordinator},
};

impl Coordinator {
    /// `CreateObject`.
    pub(crate) async fn create_object(
        &self,
        session: &ClientSession,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        let threshold = self.pool.membership().threshold;
        session.require_user()?;
        let object = objects::create(&self.pool, threshold, attributes).await?;
        tracing::info!(%client, object = %object.id, "object created");
        Ok(ClientResponse::Object(object))
    }

    /// `ListObjects`.
    pub(crate) async fn list_objects(
        &self,
        session: &ClientSession,
    ) -> Result<ClientResponse, WireError> {
        let all = objects::list(&self.pool).await?;
        // Private objects only for a logged-in user.
        let visible = match session.logged_in() {
            Some(PinUser::User) => all,
            _ => all
                .into_iter()
                .filter(|o| !objects::is_private(o))
                .collect(),
        };
        Ok(ClientResponse::Objects(visible))
    }

    /// `UpdateObject`.
    pub(crate) async fn update_object(
        &self,
        session: &ClientSession,
        id: ObjectId,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<ClientResponse, WireError> {
        let threshold = self.pool.membership().threshold;
        session.require_user()?;
        Ok(ClientResponse::Object(
            objects::update(&self.pool, threshold, id, attributes).await?,
        ))
    }

    /// `DestroyObject`.
    pub(crate) async fn destroy_object(
        &self,
        session: &ClientSession,
        id: ObjectId,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        let threshold = self.pool.membership().threshold;
        session.require_user()?;
        objects::destroy(&self.pool, threshold, id).await?;
        tracing::info!(%client, object = %id, "object destroyed");
        Ok(ClientResponse::Ok)
    }
}
