//! The node itself: its status, unsealing (and changing its unseal secret: end to end, see `crate::unseal`), and
//! the cluster's membership.

use vhsm_core::Membership;
use vhsm_wire::{client_api::NodeStatus, node_api::NodeResponse};

use crate::{
    error::ServiceError,
    node::{blocking, Node},
    seal::{SealError, SealedKeyFile},
    unseal::{self, Opened, Purpose, UnsealPrivateKey, CHALLENGE_LEN},
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

    /// The node's unseal key, after taking its outstanding challenge out (single use: whatever follows, the
    /// challenge is gone). A node with a development key file is never sealed; one without an unseal key takes no
    /// envelope.
    fn unseal_key_taking_challenge(
        &self,
    ) -> Result<(&UnsealPrivateKey, Option<[u8; CHALLENGE_LEN]>), ServiceError> {
        let challenge = self.challenges.take();
        if self.seal.sealed_key_file.is_none() {
            return Err(ServiceError::NeverSealed);
        }
        let key = self
            .seal
            .unseal_key
            .as_ref()
            .ok_or(ServiceError::NoUnsealKey { node: self.id })?;
        Ok((key, challenge))
    }

    /// Opens an envelope for `purpose` with this node's unseal key, answering the challenge just taken; a refusal
    /// is logged (never with the envelope's contents).
    fn open_envelope(&self, purpose: Purpose, envelope: &[u8]) -> Result<Opened, ServiceError> {
        let (key, challenge) = self.unseal_key_taking_challenge()?;
        key.open(self.id, purpose, challenge.as_ref(), envelope)
            .map_err(|e| {
                tracing::warn!(
                    node = self.id,
                    made_for = ?unseal::envelope_node(envelope),
                    error = %e,
                    "unseal envelope refused"
                );
                ServiceError::UnsealEnvelope(e)
            })
    }

    /// `UnsealChallenge`: a fresh single-use challenge for the next unseal envelope (replacing any outstanding
    /// one), and whether this node is sealed.
    pub(crate) fn unseal_challenge(&self) -> Result<NodeResponse, ServiceError> {
        if self.seal.sealed_key_file.is_none() {
            return Err(ServiceError::NeverSealed);
        }
        if self.seal.unseal_key.is_none() {
            return Err(ServiceError::NoUnsealKey { node: self.id });
        }
        Ok(NodeResponse::UnsealChallenge {
            challenge: self.challenges.issue(),
            sealed: self.unsealed.get().is_none(),
        })
    }

    /// `Unseal`: opens the envelope (the challenge it answers is used up whatever happens), then unwraps the
    /// storage key with the secret it carries. A no-op for an unsealed node (once the envelope opened).
    pub(crate) async fn unseal_request(
        &self,
        envelope: Vec<u8>,
    ) -> Result<NodeResponse, ServiceError> {
        let Opened::Unseal(secret) = self.open_envelope(Purpose::Unseal, &envelope)? else {
            return Err(ServiceError::BadRequest("not an unseal envelope".into()));
        };
        self.unseal(secret).await?;
        Ok(NodeResponse::Ok)
    }

    /// `ChangeUnsealSecret`: opens the envelope (using up its challenge), checks the old secret against this node's
    /// sealed key file, and replaces the file atomically with the same storage key wrapped under the new secret. A
    /// wrong old secret changes nothing. Refused while the node is sealed (its audit log could record the change
    /// only without a MAC, which the log accepts for attempts and refusals alone): unseal it first.
    pub(crate) async fn change_unseal_secret(
        &self,
        envelope: Vec<u8>,
    ) -> Result<NodeResponse, ServiceError> {
        if self.unsealed.get().is_none() {
            // Single use all the same: the challenge is gone.
            let _ = self.challenges.take();
            return Err(self.sealed_error());
        }
        let Opened::ChangeSecret { old, new } =
            self.open_envelope(Purpose::ChangeSecret, &envelope)?
        else {
            return Err(ServiceError::BadRequest(
                "not an envelope changing the unseal secret".into(),
            ));
        };
        let Some(path) = self.seal.sealed_key_file.clone() else {
            return Err(ServiceError::NeverSealed);
        };
        let _one_at_a_time = self.unsealing.lock().await;
        let changed = tokio::task::spawn_blocking(move || {
            SealedKeyFile::change_passphrase(&path, old.expose(), new.expose())
        })
        .await
        .map_err(|source| ServiceError::TaskFailed {
            task: "change the unseal secret",
            source,
        })?;
        match changed {
            Ok(()) => {}
            Err(SealError::WrongPassphrase) => {
                tracing::warn!(
                    node = self.id,
                    "change of the unseal secret refused: wrong unseal secret"
                );
                return Err(ServiceError::WrongPassphrase { node: self.id });
            }
            Err(e) => return Err(ServiceError::Unseal(e)),
        }
        tracing::warn!(
            node = self.id,
            "unseal secret CHANGED: sealed.key now opens with the new secret only"
        );
        if let Some(file) = &self.seal.passphrase_file {
            tracing::warn!(
                node = self.id,
                file = %file.display(),
                "node.toml names a passphrase_file for unattended starts: it holds the OLD secret; put the new one \
                 there before this node restarts"
            );
        }
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
