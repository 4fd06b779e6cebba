//! Resharing: dealing and staging the next epoch's shares, committing or dropping them.

use vhsm_core::{ChangeApproval, KeyId, KeyInfo};
use vhsm_protocols::SessionId;
use vhsm_wire::{node_api::NodeResponse, NodeId};

use crate::{
    error::ServiceError,
    node::{blocking, Node},
    sessions::reshare::{self, ReshareRequest},
};

impl Node {
    /// `Reshare`: deals (an old holder) and/or stages a share of the next epoch (a new holder) — onto other holders
    /// or another threshold only with the security officer's approval.
    pub(crate) async fn reshare(
        &self,
        session: SessionId,
        key: KeyInfo,
        dealers: Vec<NodeId>,
        committee: Vec<NodeId>,
        threshold: u16,
        approval: Option<ChangeApproval>,
    ) -> Result<NodeResponse, ServiceError> {
        #[cfg(feature = "fault-injection")]
        self.flood_once();
        let banned = self.banned().await?;
        let result = reshare::reshare(
            &self.mesh,
            self.store()?,
            ReshareRequest {
                me: self.id,
                session,
                key: &key,
                dealers: &dealers,
                committee: &committee,
                threshold,
                approval: approval.as_ref(),
                security_officer: self.security_officer.as_ref(),
                banned: &banned,
                wrong_sub_shares: self.deals_wrong_sub_shares(),
                false_complaints: self.complains_falsely(),
            },
        )
        .await
        .map_err(ServiceError::Session);
        #[cfg(feature = "fault-injection")]
        if self.faults.exit_after_staging && result.is_ok() {
            tracing::error!("fault injection: exiting right after staging a reshared share");
            std::process::exit(86);
        }
        match result {
            Ok(done) => Ok(NodeResponse::Reshared {
                staged: done.staged,
                excluded: done.excluded.iter().map(|e| e.dealer).collect(),
            }),
            Err(e) => {
                self.record_bans(&e).await;
                tracing::warn!(key = %key.id, %session, error = %e, "reshare failed on this node");
                Err(e)
            }
        }
    }

    /// Fault injection: whether this node complains falsely about every other dealer in reshares.
    fn complains_falsely(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.faults.complain_falsely
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }

    /// `CommitReshare`: the staged share of `epoch` replaces the current one (which is erased). Idempotent.
    pub(crate) async fn commit_reshare(
        &self,
        key_id: KeyId,
        epoch: u64,
    ) -> Result<NodeResponse, ServiceError> {
        #[cfg(feature = "fault-injection")]
        if self.faults.exit_before_commit {
            tracing::error!("fault injection: exiting before committing a reshare");
            std::process::exit(86);
        }
        let store = self.store()?.clone();
        let info = blocking(move || store.commit_staged(key_id, epoch)).await?;
        tracing::info!(key = %key_id, epoch, holders = ?info.holders, threshold = info.threshold, "reshare committed: the new share is in force, the old one erased");
        Ok(NodeResponse::Key(info))
    }

    /// `AbortReshare`: drops the staged share of `epoch`; the current one stays.
    pub(crate) async fn abort_reshare(
        &self,
        key_id: KeyId,
        epoch: u64,
    ) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        if blocking(move || store.abort_staged(key_id, epoch)).await? {
            tracing::warn!(key = %key_id, epoch, "reshare aborted: staged share dropped, the current one stays");
        }
        Ok(NodeResponse::Ok)
    }

    /// `ListStaged`: the staged (not yet committed) shares' metadata.
    pub(crate) async fn list_staged(&self) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        Ok(NodeResponse::Keys(blocking(move || store.staged()).await?))
    }
}
