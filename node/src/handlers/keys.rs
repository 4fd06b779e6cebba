//! Keys: distributed generation, commit and abort, the lifecycle, metadata, destruction.

use vhsm_core::{KeyId, KeyInfo, KeyState};
use vhsm_protocols::SessionId;
use vhsm_wire::node_api::NodeResponse;

use crate::{
    error::ServiceError,
    node::{blocking, Node},
    sessions::keygen,
};

impl Node {
    /// `GenerateKey`: takes part in the distributed generation of `key`; stores the share as pending.
    pub(crate) async fn generate_key(
        &self,
        session: SessionId,
        key: KeyInfo,
    ) -> Result<NodeResponse, ServiceError> {
        let key_id = key.id;
        {
            let mut running = self.keygens.lock().map_err(|_| ServiceError::Poisoned)?;
            if running.contains_key(&key_id) {
                return Err(ServiceError::KeygenRunning(key_id));
            }
            running.insert(key_id, session);
        }
        let banned = self.banned().await?;
        let result = keygen::generate(self.id, &self.mesh, self.store()?, &banned, session, key)
            .await
            .map_err(ServiceError::Session);
        // If the coordinator aborted this generation meanwhile, whatever was stored goes too.
        let aborted = self
            .keygens
            .lock()
            .map_err(|_| ServiceError::Poisoned)?
            .remove(&key_id)
            .is_none();
        if aborted && result.is_ok() {
            let store = self.store()?.clone();
            blocking(move || store.abort_pending(key_id)).await?;
            return Err(ServiceError::KeygenAborted);
        }
        if let Err(e) = &result {
            self.record_bans(e).await;
        }
        Ok(NodeResponse::KeyGenerated {
            public_keys: result?,
        })
    }

    /// `CommitKey`: makes a pending key `state` (every holder has it and it passed its pairwise test).
    pub(crate) async fn commit_key(
        &self,
        key_id: KeyId,
        state: KeyState,
    ) -> Result<NodeResponse, ServiceError> {
        #[cfg(feature = "fault-injection")]
        if self.faults.lose_first_commit
            && !self
                .commit_lost
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            tracing::warn!(key = %key_id, "fault injection: lost a key commit");
            return Ok(NodeResponse::Ok);
        }
        let store = self.store()?.clone();
        let info = blocking(move || store.activate(key_id, state)).await?;
        tracing::info!(key = %info.id, label = %info.label, state = %info.state, "key committed");
        Ok(NodeResponse::Ok)
    }

    /// `SetKeyState`: a lifecycle transition (NIST SP 800-57); `Destroyed` deletes the share.
    pub(crate) async fn set_key_state(
        &self,
        key_id: KeyId,
        state: KeyState,
    ) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        let info = if state == KeyState::Destroyed {
            blocking(move || {
                store.destroy_key(key_id)?;
                store
                    .keys()
                    .map(|keys| keys.into_iter().find(|k| k.id == key_id))
            })
            .await?
            .ok_or(ServiceError::KeyNotFound(key_id))?
        } else {
            blocking(move || store.set_state(key_id, state)).await?
        };
        tracing::warn!(key = %key_id, state = %info.state, "key lifecycle state changed");
        Ok(NodeResponse::Key(info))
    }

    /// `AbortKey`: stops a generation still running and deletes the pending key.
    pub(crate) async fn abort_key(&self, key_id: KeyId) -> Result<NodeResponse, ServiceError> {
        // Stop a generation still running (its session ends), then delete what it stored.
        let running = self
            .keygens
            .lock()
            .map_err(|_| ServiceError::Poisoned)?
            .remove(&key_id);
        if let Some(session) = running {
            self.mesh.cancel(session);
            tracing::info!(key = %key_id, %session, "key generation aborted by the coordinator");
        }
        let store = self.store()?.clone();
        if blocking(move || store.abort_pending(key_id)).await? {
            tracing::info!(key = %key_id, "pending key deleted (generation aborted)");
        }
        Ok(NodeResponse::Ok)
    }

    /// `ListKeys`: the keys this node holds a share of (tombstones and pending ones included).
    pub(crate) async fn list_keys(&self) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        #[allow(unused_mut)]
        let mut keys = blocking(move || store.keys()).await?;
        #[cfg(feature = "fault-injection")]
        if self.faults.lie_in_list_keys {
            keys = self.lying_key_list(keys);
        }
        Ok(NodeResponse::Keys(keys))
    }

    /// Fault injection (`lie_in_list_keys`): every key reported destroyed at the highest revision there is (so that
    /// a coordinator trusting the newest revision destroys it everywhere), and the first active key claimed in
    /// addition at the next epoch, held by this node alone with threshold 1, with the public key and package of
    /// the share it holds (so that a coordinator trusting the highest epoch hands the key over to this node).
    #[cfg(feature = "fault-injection")]
    fn lying_key_list(&self, keys: Vec<KeyInfo>) -> Vec<KeyInfo> {
        let claimed = keys.iter().find(|k| k.state == KeyState::Active).map(|k| {
            let mut claim = k.clone();
            claim.epoch = k.epoch.saturating_add(1);
            claim.holders = vec![self.id];
            claim.threshold = 1;
            // The public key and package stay those of the share this node holds: a plausible new epoch.
            claim
        });
        let mut lies: Vec<KeyInfo> = keys
            .into_iter()
            .map(|mut k| {
                k.state = KeyState::Destroyed;
                k.revision = u64::MAX;
                k
            })
            .collect();
        lies.extend(claimed);
        tracing::warn!(
            keys = lies.len(),
            "fault injection: lying in ListKeys (every key destroyed at revision u64::MAX, one claimed at the next \
             epoch by this node alone)"
        );
        lies
    }

    /// `UpdateKey`: replaces an active key's label and attributes.
    pub(crate) async fn update_key(&self, key: KeyInfo) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        let info = blocking(move || store.update_key(&key)).await?;
        tracing::info!(key = %info.id, label = %info.label, revision = info.revision, "key metadata updated");
        Ok(NodeResponse::Ok)
    }

    /// `DestroyKey`: deletes this node's share of the key, keeping a tombstone.
    pub(crate) async fn destroy_key(&self, key_id: KeyId) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        if blocking(move || store.destroy_key(key_id)).await? {
            tracing::warn!(key = %key_id, "key DESTROYED: this node's share is deleted, a tombstone kept");
        }
        Ok(NodeResponse::Ok)
    }

    /// `ReleaseShare`: deletes this node's share of a key that moved on to `epoch` without it.
    pub(crate) async fn release_share(
        &self,
        key_id: KeyId,
        epoch: u64,
    ) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        if blocking(move || store.release_share(key_id, epoch)).await? {
            tracing::info!(key = %key_id, epoch, "share released: the key moved on to a committee without this node");
        }
        Ok(NodeResponse::Ok)
    }
}
