//! Certificates and data objects kept on every node.

use vhsm_core::StoredObject;
use vhsm_wire::node_api::NodeResponse;

use crate::{
    error::ServiceError,
    node::{blocking, Node},
};

impl Node {
    /// `PutObject`: keeps the object if it is newer than this node's copy.
    pub(crate) async fn put_object(
        &self,
        object: StoredObject,
    ) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        let (id, version) = (object.id, object.version);
        if blocking(move || store.put_object(&object)).await? {
            tracing::info!(object = %id, version, "object stored");
        }
        Ok(NodeResponse::Ok)
    }

    /// `ListObjects`: every stored object, tombstones included.
    pub(crate) async fn list_objects(&self) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        Ok(NodeResponse::Objects(
            blocking(move || store.objects()).await?,
        ))
    }
}
