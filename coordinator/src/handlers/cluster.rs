//! The security officer's cluster operations: membership, unseal, backup and restore, audit logs.

use vhsm_core::{NodeId, SecretBytes};
use vhsm_wire::{
    client_api::ClientResponse,
    node_api::{NodeRequest, NodeResponse},
    ErrorKind, WireError,
};

use crate::{
    nodes::NodeCallError,
    server::{ClientSession, Coordinator, AUDIT_TIMEOUT},
};

impl Coordinator {
    /// `GetMembership`.
    pub(crate) async fn get_membership(
        &self,
        session: &ClientSession,
    ) -> Result<ClientResponse, WireError> {
        if session.logged_in().is_none() {
            return Err(WireError::new(
                ErrorKind::NotLoggedIn,
                "log in first (user or security officer)",
            ));
        }
        Ok(ClientResponse::Membership(self.pool.membership()))
    }

    /// `AddNode`.
    pub(crate) async fn add_node(
        &self,
        session: &ClientSession,
        id: NodeId,
        address: String,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        let _threshold = self.pool.membership().threshold;
        session.require_security_officer()?;
        tracing::warn!(%client, node = id, %address, "security officer asks to add a node to the cluster");
        let m = self
            .membership
            .add_node(&self.pool, id, &address)
            .await
            .inspect_err(|e| tracing::warn!(%client, node = id, error = %e, "node not added"))?;
        tracing::warn!(%client, node = id, %address, version = m.version, members = ?m.ids(), threshold = m.threshold, "node ADDED to the cluster membership (existing keys keep their holders until reshared)");
        Ok(ClientResponse::Membership(m))
    }

    /// `RemoveNode`.
    pub(crate) async fn remove_node(
        &self,
        session: &ClientSession,
        id: NodeId,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        let _threshold = self.pool.membership().threshold;
        session.require_security_officer()?;
        tracing::warn!(%client, node = id, "security officer asks to remove a node from the cluster");
        let m = self
            .membership
            .remove_node(&self.pool, &self.registry, id)
            .await
            .inspect_err(|e| tracing::warn!(%client, node = id, error = %e, "node not removed"))?;
        tracing::warn!(%client, node = id, version = m.version, members = ?m.ids(), threshold = m.threshold, "node REMOVED from the cluster membership");
        Ok(ClientResponse::Membership(m))
    }

    /// `SetThreshold`.
    pub(crate) async fn set_threshold(
        &self,
        session: &ClientSession,
        threshold: u16,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, threshold, "security officer asks to set the threshold of new keys");
        let m = self
            .membership
            .set_threshold(&self.pool, threshold)
            .await
            .inspect_err(|e| tracing::warn!(%client, threshold, error = %e, "threshold not set"))?;
        tracing::warn!(%client, threshold, version = m.version, members = ?m.ids(), "THRESHOLD of new keys and reshares set (existing keys keep theirs until reshared)");
        Ok(ClientResponse::Membership(m))
    }

    /// `UnsealNode`.
    pub(crate) async fn unseal_node(
        &self,
        session: &ClientSession,
        node: NodeId,
        passphrase: SecretBytes,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, node, "security officer unseals a node");
        crate::node_backup::unseal(&self.pool, node, passphrase)
            .await
            .inspect_err(|e| tracing::warn!(%client, node, error = %e, "node not unsealed"))?;
        // Learn the keys the node holds now that it can say.
        self.registry.refresh(&self.pool).await;
        Ok(ClientResponse::Ok)
    }

    /// `BackupNode`.
    pub(crate) async fn backup_node(
        &self,
        session: &ClientSession,
        node: NodeId,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, node, "security officer takes a backup of a node");
        let file = crate::node_backup::backup(&self.pool, node).await?;
        Ok(ClientResponse::Backup(file))
    }

    /// `RestoreNode`.
    pub(crate) async fn restore_node(
        &self,
        session: &ClientSession,
        node: NodeId,
        backup: Vec<u8>,
    ) -> Result<ClientResponse, WireError> {
        let client = session.client.as_str();
        session.require_security_officer()?;
        tracing::warn!(%client, node, "security officer restores a node from a backup");
        let (restored, skipped) = crate::node_backup::restore(&self.pool, node, backup)
            .await
            .inspect_err(|e| tracing::warn!(%client, node, error = %e, "restore refused"))?;
        tracing::warn!(%client, node, restored = ?restored, skipped = skipped.len(), "node RESTORED from a backup");
        self.registry.refresh(&self.pool).await;
        Ok(ClientResponse::Restored { restored, skipped })
    }

    /// `AuditLog`.
    pub(crate) async fn audit_log(
        &self,
        session: &ClientSession,
        node: NodeId,
        from_line: u64,
    ) -> Result<ClientResponse, WireError> {
        session.require_security_officer()?;
        let request = NodeRequest::AuditLog {
            from_line,
            max_lines: vhsm_wire::node_api::MAX_PAGE_LINES,
        };
        match self.pool.call(node, &request, AUDIT_TIMEOUT).await {
            Ok(NodeResponse::Audit(page)) => Ok(ClientResponse::Audit(page)),
            Ok(_) => Err(WireError::new(
                ErrorKind::Internal,
                format!("node {node} answered the audit log request with something else"),
            )),
            Err(NodeCallError::Refused { error, .. }) => Err(error),
            Err(e) => Err(WireError {
                kind: ErrorKind::Unavailable,
                message: e.to_string(),
                nodes: vec![node],
            }),
        }
    }
}
