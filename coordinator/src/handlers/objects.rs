//! Certificates and data objects on the token.

use vhsm_core::{ObjectId, PinUser};
use vhsm_wire::client_api::ClientResponse;

use crate::{error::Error, nodes::NodePool};
use crate::{
    objects,
    server::{ClientSession, Coordinator},
};

impl Coordinator {
    /// `CreateObject`: a certificate or data object, kept on every node. User.
    pub(crate) async fn create_object(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        let threshold = nodes.membership().threshold;
        session.require_user()?;
        let object = objects::create(nodes, threshold, attributes).await?;
        tracing::info!(%client, object = %object.id, "object created");
        Ok(ClientResponse::Object(object))
    }

    /// `ListObjects`: the objects, the private ones only for a logged-in user.
    pub(crate) async fn list_objects(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
    ) -> Result<ClientResponse, Error> {
        let all = objects::list(nodes).await?;
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

    /// `UpdateObject`: an object's attributes (new version on every node). User.
    pub(crate) async fn update_object(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        id: ObjectId,
        attributes: Vec<(u64, Vec<u8>)>,
    ) -> Result<ClientResponse, Error> {
        let threshold = nodes.membership().threshold;
        session.require_user()?;
        Ok(ClientResponse::Object(
            objects::update(nodes, threshold, id, attributes).await?,
        ))
    }

    /// `DestroyObject`: removes an object from every node. User.
    pub(crate) async fn destroy_object(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        id: ObjectId,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        let threshold = nodes.membership().threshold;
        session.require_user()?;
        objects::destroy(nodes, threshold, id).await?;
        tracing::info!(%client, object = %id, "object destroyed");
        Ok(ClientResponse::Ok)
    }
}
