//! Signing: FROST's pre-made nonces and signature shares, threshold ECDSA sessions, bans.

use vhsm_core::{KeyId, KeyUse};
use vhsm_protocols::{
    frost::{aggregate::FrostSigningPackage, round2},
    SessionId,
};
use vhsm_wire::{
    node_api::{NodeResponse, NonceId},
    NodeId,
};

#[cfg(feature = "fault-injection")]
use vhsm_protocols::ProtocolError;

use crate::sessions::SessionError;
use crate::{
    error::ServiceError,
    node::{blocking, Node},
    sessions::ecdsa_signing::{self, EcdsaSignRequest},
    share::KeyShare,
};

impl Node {
    /// `Precommit`: hands out `count` FROST nonce commitments from the pool made ahead of time.
    pub(crate) async fn precommit(&self, count: u16) -> Result<NodeResponse, ServiceError> {
        let hedge = self
            .unsealed
            .get()
            .map(|u| u.nonce_hedge.clone())
            .ok_or_else(|| self.sealed_error())?;
        let (nonces, id) = (self.nonces.clone(), self.id);
        let handed = tokio::task::spawn_blocking(move || nonces.issue(count, id, &hedge))
            .await
            .map_err(|source| ServiceError::TaskFailed {
                task: "nonce",
                source,
            })??;
        Ok(NodeResponse::Precommitments(handed))
    }

    /// `SignShare`: FROST round two with the pre-made nonces `nonce` (consumed first, whatever happens).
    pub(crate) async fn sign_share(
        &self,
        nonce: NonceId,
        key_id: KeyId,
        epoch: u64,
        package: FrostSigningPackage,
    ) -> Result<NodeResponse, ServiceError> {
        // Take the nonces first: whatever happens next, they are gone.
        let nonces = self.nonces.take(nonce)?;
        // Decoded once (every commitment point checked): for the message check and for signing.
        let package = package.decode().map_err(ServiceError::CannotSign)?;
        #[cfg(feature = "fault-injection")]
        self.flood_once();
        #[cfg(feature = "fault-injection")]
        if self.faults.blame_honest_signers {
            let others: Vec<NodeId> = package
                .signers()
                .map_err(ServiceError::CannotSign)?
                .into_iter()
                .filter(|s| *s != self.id)
                .collect();
            tracing::warn!(key = %key_id, blamed = ?others, "fault injection: blaming the honest co-signers (FROST)");
            return Err(ServiceError::Session(SessionError::Protocol {
                what: "signing",
                source: ProtocolError::misbehaviour(
                    others,
                    "sent signing commitments that do not match their nonces",
                ),
            }));
        }
        let key = self
            .key_at(
                key_id,
                epoch,
                KeyUse::Sign,
                package.message() == vhsm_protocols::pairwise::message(&key_id).as_slice(),
            )
            .await?;
        let KeyShare::Frost(share) = &key.share else {
            return Err(ServiceError::WrongScheme {
                key_id,
                scheme: "FROST",
            });
        };
        #[allow(unused_mut)]
        let mut share =
            round2::sign_decoded(share, nonces, &package).map_err(ServiceError::CannotSign)?;
        #[cfg(feature = "fault-injection")]
        if self.faults.corrupt_signature_shares {
            if let Some(b) = share.0.first_mut() {
                *b ^= 1;
            }
            tracing::warn!("fault injection: sent a corrupted signature share");
        }
        Ok(NodeResponse::SignatureShare(share))
    }

    /// `EcdsaSign`: runs DKLs23 signing with the other `signers` over the mesh.
    pub(crate) async fn ecdsa_sign(
        &self,
        session: SessionId,
        key_id: KeyId,
        epoch: u64,
        signers: Vec<NodeId>,
        digest: [u8; 32],
    ) -> Result<NodeResponse, ServiceError> {
        let result = self
            .ecdsa_sign_session(session, key_id, epoch, &signers, digest)
            .await;
        // A node that cannot take part says so to its co-signers at once, so that they do not wait out the
        // session's timeout for its messages (issue 15, item 1) — unless it stopped because one of them gave up.
        if let Err(e) = &result {
            if !matches!(
                e,
                ServiceError::Session(
                    SessionError::PeerAborted { .. } | SessionError::AlreadyRunning(_)
                )
            ) {
                self.mesh
                    .abort(session, &signers, &format!("node {}: {e}", self.id))
                    .await;
            }
        }
        result
    }

    async fn ecdsa_sign_session(
        &self,
        session: SessionId,
        key_id: KeyId,
        epoch: u64,
        signers: &[NodeId],
        digest: [u8; 32],
    ) -> Result<NodeResponse, ServiceError> {
        #[cfg(feature = "fault-injection")]
        if self.faults.unusable_ecdsa_shares
            && digest != vhsm_protocols::pairwise::ecdsa_digest(&key_id)
        {
            tracing::warn!(key = %key_id, %session, "fault injection: this node's ECDSA share is unusable");
            return Err(ServiceError::EpochNotHeld {
                node: self.id,
                key_id,
                epoch,
            });
        }
        let key = self
            .key_at(
                key_id,
                epoch,
                KeyUse::Sign,
                digest == vhsm_protocols::pairwise::ecdsa_digest(&key_id),
            )
            .await?;
        #[cfg(feature = "fault-injection")]
        self.flood_once();
        #[cfg(feature = "fault-injection")]
        if self.faults.blame_honest_signers {
            let others: Vec<NodeId> = signers.iter().copied().filter(|s| *s != self.id).collect();
            tracing::warn!(key = %key_id, %session, blamed = ?others, "fault injection: banning the honest co-signers (ECDSA)");
            let error = ServiceError::Session(SessionError::Protocol {
                what: "ECDSA signing",
                source: ProtocolError::must_ban(others, "failed the OT consistency check"),
            });
            self.record_bans(&error).await;
            return Err(error);
        }
        let banned = self.banned().await?;
        let request = EcdsaSignRequest {
            me: self.id,
            session,
            signers,
            digest,
            banned: &banned,
            tamper: self.tamper(),
        };
        let result = ecdsa_signing::sign(&self.mesh, &key.share, request)
            .await
            .map_err(ServiceError::Session);
        if let Err(e) = &result {
            self.record_bans(e).await;
            tracing::warn!(key = %key_id, %session, error = %e, "ECDSA signing failed");
        }
        Ok(NodeResponse::EcdsaSignature(result?))
    }

    /// Fault injection (`flood_inboxes`): floods every peer's mesh inboxes, the first time it is called
    /// ([`crate::mesh::Mesh::flood`]).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn flood_once(&self) {
        if self.faults.flood_inboxes {
            self.mesh.flood();
        }
    }

    /// `ClearBan`: an operator cleared the ban on `node`: run OT-based protocols with it again.
    pub(crate) async fn clear_ban(&self, node: NodeId) -> Result<NodeResponse, ServiceError> {
        let store = self.store()?.clone();
        if blocking(move || store.unban(node)).await? {
            tracing::warn!(peer = node, "ban cleared by an operator");
        }
        Ok(NodeResponse::Ok)
    }
}
