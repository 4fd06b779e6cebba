//! The cluster's membership: which nodes hold new keys, and the threshold of new keys and reshares.

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// A node and where it listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Its id.
    pub id: NodeId,
    /// Its address, `host:port`.
    pub address: String,
}

/// The cluster's membership: the nodes that hold new keys and the threshold that new keys and reshares use.
/// Versioned: whoever holds it keeps the newest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Incremented by every change.
    pub version: u64,
    /// Threshold of new keys and of reshares.
    pub threshold: u16,
    /// The nodes.
    pub nodes: Vec<MemberEntry>,
}

impl Membership {
    /// The node ids, ascending.
    pub fn ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Checks that it is a possible cluster: distinct ids ≥ 1, 2 ≤ threshold ≤ nodes.
    pub fn check(&self) -> Result<(), String> {
        let n = self.nodes.len();
        if self.threshold < 2 || usize::from(self.threshold) > n {
            return Err(format!(
                "threshold {} is not possible with {n} node(s) (need 2 <= threshold <= nodes)",
                self.threshold
            ));
        }
        let mut ids = self.ids();
        ids.dedup();
        if ids.len() != n || ids.contains(&0) {
            return Err("node ids must be distinct and at least 1".into());
        }
        Ok(())
    }
}
