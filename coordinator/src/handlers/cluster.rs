//! The security officer's cluster operations: membership, unseal, backup and restore, audit logs.

use vhsm_core::{ChangeApproval, NodeId};
use vhsm_wire::{
    client_api::ClientResponse,
    node_api::{NodeRequest, NodeResponse},
};

use std::sync::Arc;

use crate::membership::change::{self, Change};
use crate::server::{ClientSession, Coordinator, AUDIT_TIMEOUT};
use crate::{error::Error, nodes::NodePool};

impl Coordinator {
    /// `GetMembership`: the cluster's membership (nodes, threshold of new keys, version). Any logged-in user.
    pub(crate) async fn get_membership(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
    ) -> Result<ClientResponse, Error> {
        if session.logged_in().is_none() {
            return Err(Error::NotLoggedIn(
                "log in first (user or security officer)",
            ));
        }
        Ok(ClientResponse::Membership(nodes.membership()))
    }

    /// `AddNode`, `RemoveNode`, `SetThreshold`: checks and starts the change (see [`change`]), answers with its
    /// number, and runs the rest (the reshares, a removal) in the background — the client may follow it or go.
    pub(crate) async fn change_membership(
        self: &Arc<Self>,
        session: &ClientSession,
        nodes: &NodePool,
        change: Change,
        approval: Option<ChangeApproval>,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, %change, "security officer asks for a membership change");
        let requester = nodes
            .requester()
            .map_or_else(|| client.to_string(), |r| r.who.clone());
        let progress = self.changes.begin(&change, requester)?;
        let services = self.change_services();
        if let Err(e) = change::first_step(services, nodes, &change, approval.as_ref()).await {
            tracing::warn!(%client, %change, error = %e, "membership change refused");
            progress.finish(Err(e.clone()));
            return Err(e);
        }
        let status = progress.status();
        let (me, nodes) = (self.clone(), nodes.clone());
        tokio::spawn(async move {
            // The outcome is in `progress` (and logged).
            let _ = change::rest(
                me.change_services(),
                &nodes,
                &change,
                approval.as_ref(),
                &progress,
            )
            .await;
        });
        Ok(ClientResponse::Change(status))
    }

    /// `ChangeStatus`: how far a membership change has got, and its outcome once finished. Security officer.
    pub(crate) async fn change_status(
        &self,
        session: &ClientSession,
        job: u64,
    ) -> Result<ClientResponse, Error> {
        session.require_security_officer()?;
        Ok(ClientResponse::Change(self.changes.status(job)?))
    }

    fn change_services(&self) -> change::Services<'_> {
        change::Services {
            admin: &self.membership,
            registry: &self.registry,
            signer: &self.signer,
        }
    }

    /// `UnsealChallenge`: a fresh challenge from the node, for the operator's next envelope. Security officer (or
    /// anyone while fewer than t nodes can check a PIN, as for `UnsealNode`).
    pub(crate) async fn unseal_challenge(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        node: NodeId,
    ) -> Result<ClientResponse, Error> {
        // As for the unseal itself (below): the security officer's, unless too few nodes can check a PIN.
        may_unseal(session, nodes).await?;
        let (challenge, sealed) = crate::node_backup::unseal_challenge(nodes, node).await?;
        Ok(ClientResponse::UnsealChallenge { challenge, sealed })
    }

    /// `UnsealNode`: relays the operator's envelope to a sealed node. The envelope is the node's secret encrypted
    /// to the node's own key: the coordinator cannot read it. Security officer.
    pub(crate) async fn unseal_node(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        node: NodeId,
        envelope: Vec<u8>,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        match may_unseal(session, nodes).await? {
            None => tracing::warn!(%client, node, "security officer unseals a node"),
            Some((checkers, threshold)) => {
                tracing::warn!(%client, node, checkers, threshold, "a node is unsealed without a security officer login: too few nodes are unsealed to check a PIN; the node checks its unseal secret")
            }
        }
        crate::node_backup::unseal(nodes, node, envelope)
            .await
            .inspect_err(|e| tracing::warn!(%client, node, error = %e, "node not unsealed"))?;
        // Learn the keys the node holds now that it can say.
        self.registry.refresh(nodes).await;
        Ok(ClientResponse::Ok)
    }

    /// `ChangeUnsealSecret`: relays the operator's envelope (old and new secret, encrypted to the node) to the
    /// node. Security officer.
    pub(crate) async fn change_unseal_secret(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        node: NodeId,
        envelope: Vec<u8>,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, node, "security officer changes a node's unseal secret");
        crate::node_backup::change_unseal_secret(nodes, node, envelope)
            .await
            .inspect_err(
                |e| tracing::warn!(%client, node, error = %e, "unseal secret not changed"),
            )?;
        tracing::warn!(%client, node, "node's unseal secret CHANGED");
        Ok(ClientResponse::Ok)
    }

    /// `BackupNode`: one node's sealed backup file (its shares stay sealed to its storage key). Security officer.
    pub(crate) async fn backup_node(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        node: NodeId,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, node, "security officer takes a backup of a node");
        let file = crate::node_backup::backup(nodes, node).await?;
        Ok(ClientResponse::Backup(file))
    }

    /// `RestoreNode`: restores a node from its backup, refused if any key in it is older than the cluster's.
    /// Security officer.
    pub(crate) async fn restore_node(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        node: NodeId,
        backup: Vec<u8>,
    ) -> Result<ClientResponse, Error> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, node, "security officer restores a node from a backup");
        let (restored, skipped) = crate::node_backup::restore(nodes, node, backup)
            .await
            .inspect_err(|e| tracing::warn!(%client, node, error = %e, "restore refused"))?;
        tracing::warn!(%client, node, restored = ?restored, skipped = skipped.len(), "node RESTORED from a backup");
        self.registry.refresh(nodes).await;
        Ok(ClientResponse::Restored { restored, skipped })
    }

    /// `AuditLog`: a page of one node's audit log, as the node wrote it (the client verifies the chain).
    /// Security officer.
    pub(crate) async fn audit_log(
        &self,
        session: &ClientSession,
        nodes: &NodePool,
        node: NodeId,
        from_line: u64,
    ) -> Result<ClientResponse, Error> {
        session.require_security_officer()?;
        let request = NodeRequest::AuditLog {
            from_line,
            max_lines: vhsm_wire::node_api::MAX_PAGE_LINES,
        };
        match nodes.call(node, &request, AUDIT_TIMEOUT).await {
            Ok(NodeResponse::Audit(page)) => Ok(ClientResponse::Audit(page)),
            Ok(_) => Err(Error::Internal(format!(
                "node {node} answered the audit log request with something else"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether `session` may unseal a node: the security officer may (`None`); anyone may while fewer than t nodes can
/// check a PIN (`Some((nodes that can, t))`). Nobody can log in then (a sealed node cannot check PINs: its counters
/// are in its sealed store), and the node's unseal secret, which the node checks, is the only authorisation there
/// can be: without this a cluster whose nodes all start sealed could never be unsealed.
async fn may_unseal(
    session: &ClientSession,
    nodes: &NodePool,
) -> Result<Option<(usize, usize)>, Error> {
    if session.logged_in() == Some(vhsm_core::PinUser::SecurityOfficer) {
        return Ok(None);
    }
    let threshold = usize::from(nodes.membership().threshold);
    let checkers = crate::token::pin_state(nodes).await.reports;
    if checkers >= threshold {
        session.require_security_officer()?;
    }
    Ok(Some((checkers, threshold)))
}
