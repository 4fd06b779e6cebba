//! This node's sealed backup, and restoring from it.

use vhsm_core::KeyId;
use vhsm_wire::node_api::NodeResponse;

use crate::{
    error::ServiceError,
    node::{blocking, Node},
};

impl Node {
    /// `Backup`: this node's backup file (keys, shares, objects, membership), sealed under its storage key.
    pub(crate) async fn backup(&self) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let file = blocking(move || store.backup(now)).await?;
        tracing::info!(node = self.id, bytes = file.len(), "backup written");
        Ok(NodeResponse::Backup(file))
    }

    /// `Restore`: restores `keys` from a backup this node wrote.
    pub(crate) async fn restore(
        &self,
        backup: Vec<u8>,
        keys: Vec<KeyId>,
    ) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        let restored = blocking(move || store.restore(&backup, &keys)).await?;
        for info in &restored {
            tracing::warn!(key = %info.id, epoch = info.epoch, state = %info.state, "key RESTORED from a backup");
        }
        Ok(NodeResponse::Ok)
    }
}
