//! Signing, and clearing a node's ban from OT-based protocols.

use vhsm_core::{HashAlg, KeyId, KeyUse, NodeId};
use vhsm_wire::{client_api::ClientResponse, node_api::NodeRequest};

use crate::server::{ClientSession, Coordinator, MAX_MESSAGE, STATUS_TIMEOUT};
use crate::{error::Error, nodes::NodePool};

impl Coordinator {
    /// `Sign`: a threshold signature with a key whose state allows signing (EdDSA: the message; ECDSA: its hash
    /// with `hash`, or a prehashed digest), routed around unreachable and misbehaving holders. User.
    pub(crate) async fn sign(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        key_id: KeyId,
        message: Vec<u8>,
        hash: Option<HashAlg>,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_user()?;
        if message.len() > MAX_MESSAGE {
            use vhsm_core::limits::mib;
            return Err(Error::InvalidData(format!(
                "the message to sign is {}; the limit is {} per request: Ed25519 signs the whole message, which \
                 must fit one request; for ECDSA, hash the message and sign the digest (`vhsm sign` does this for \
                 input of any size)",
                mib(message.len()),
                mib(MAX_MESSAGE)
            )));
        }
        let key = self.key(nodes, key_id).await?;
        Error::unless_permitted(&key, KeyUse::Sign)?;
        let signed = self
            .signer
            .sign(nodes, &key, &message, hash)
            .await
            .inspect_err(|e| {
                tracing::warn!(%client, key = %key_id, error = %e, "signing failed");
            })?;
        tracing::debug!(%client, key = %key_id, signers = ?signed.signers, "signed");
        Ok(ClientResponse::Signature {
            signature: signed.signature,
            signers: signed.signers,
        })
    }

    /// `Unban`: clears every node's ban of `node` from OT-based protocols (after an operator has looked into it).
    /// Security officer: a ban is a node's finding of cheating, not the application's to clear.
    pub(crate) async fn unban(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        node: NodeId,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        if !nodes.ids().contains(&node) {
            return Err(Error::NotFound(format!("no node {node} in this cluster")));
        }
        tracing::warn!(%client, node, "operator clears the ban on a node");
        let answers = nodes
            .call_each(
                &nodes.ids(),
                |_| NodeRequest::ClearBan { node },
                STATUS_TIMEOUT,
            )
            .await;
        let failed: Vec<_> = answers
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(n, _)| *n)
            .collect();
        if !failed.is_empty() {
            return Err(Error::Unavailable {
                message: format!(
                    "could not clear the ban on node(s) {failed:?}; run the command again when they are up"
                ),
                nodes: failed,
            });
        }
        self.signer
            .set_banned(self.signer.banned().into_iter().filter(|(_, b)| *b != node));
        Ok(ClientResponse::Ok)
    }
}
