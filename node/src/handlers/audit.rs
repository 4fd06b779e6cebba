//! Reading this node's audit log (writing it is `Node::audited`'s).

use vhsm_wire::{node_api::NodeResponse, ErrorKind, WireError};

use crate::node::Node;

impl Node {
    /// `AuditLog`: raw lines of this node's audit log.
    pub(crate) async fn audit_log(
        &self,
        from_line: u64,
        max_lines: u32,
    ) -> Result<NodeResponse, WireError> {
        let log = self.audit.clone();
        tokio::task::spawn_blocking(move || log.page(from_line, max_lines))
            .await
            .map_err(|e| WireError::new(ErrorKind::Internal, format!("audit task failed: {e}")))?
            .map(NodeResponse::Audit)
            .map_err(|e| WireError::new(ErrorKind::Internal, e.to_string()))
    }
}
