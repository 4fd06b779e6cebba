//! Reading this node's audit log (writing it is `Node::audited`'s).

use vhsm_wire::node_api::NodeResponse;

use crate::{error::ServiceError, node::Node};

impl Node {
    /// `AuditLog`: raw lines of this node's audit log.
    pub(crate) async fn audit_log(
        &self,
        from_line: u64,
        max_lines: u32,
    ) -> Result<NodeResponse, ServiceError> {
        let log = self.audit.clone();
        tokio::task::spawn_blocking(move || log.page(from_line, max_lines))
            .await
            .map_err(|source| ServiceError::TaskFailed {
                task: "audit",
                source,
            })?
            .map(NodeResponse::Audit)
            .map_err(ServiceError::AuditUnreadable)
    }
}
