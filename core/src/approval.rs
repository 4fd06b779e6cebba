//! The security officer's approval of a change of who holds keys and how: another committee (nodes added,
//! removed or repaired) or another threshold.
//!
//! A reshare that keeps a key's holders and threshold (a refresh) is routine; one that changes them changes what
//! it takes to use or steal the key, so no coordinator may decide it alone (issue 14, item 12): lowering the
//! threshold of a 3-of-5 key to 2, or moving a key onto nodes an attacker holds, would otherwise be one
//! compromised coordinator's word. `vhsm init` makes the security officer an Ed25519 signing key, kept on the
//! security officer's side of the cluster directory, and pins its public key in every node's configuration. The
//! CLI signs one approval per change, for the committee and threshold the change moves keys to, valid for a
//! limited time; the coordinator passes it to every node of every reshare of the change; each node that holds the
//! key, or is to receive a share of it, checks it against its own record and the pinned key before dealing or
//! receiving anything (the node's `sessions::reshare`).
//!
//! The signed message is [`ChangeApproval::message`]: a domain string, the committee (sorted, each id once), the
//! threshold and the expiry, at fixed widths. An approval names no key: it approves moving any key onto that
//! committee at that threshold until it expires — a membership change moves every key. Replaying it later is
//! bounded by the expiry (and gives nothing the security officer did not approve for that period).

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Domain separation of the signed message.
pub const APPROVAL_DOMAIN: &[u8] = b"vhsm/security-officer/approve-committee/v1";

/// An approval signed by the security officer (Ed25519, RFC 8032).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeApproval {
    /// The holders keys may be moved to: sorted, each id once.
    pub committee: Vec<NodeId>,
    /// Their threshold.
    pub threshold: u16,
    /// Unix time (seconds) after which nodes refuse the approval.
    pub not_after: u64,
    /// The security officer's Ed25519 signature of [`ChangeApproval::message`] (64 bytes).
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for ChangeApproval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeApproval")
            .field("committee", &self.committee)
            .field("threshold", &self.threshold)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ChangeApproval {
    /// The bytes the security officer signs for moving keys onto `committee` (any order; sorted here) at
    /// `threshold` until `not_after`.
    pub fn message(committee: &[NodeId], threshold: u16, not_after: u64) -> Vec<u8> {
        let committee = normalized(committee);
        let mut out = Vec::with_capacity(APPROVAL_DOMAIN.len() + 2 + 2 * committee.len() + 2 + 8);
        out.extend_from_slice(APPROVAL_DOMAIN);
        out.extend_from_slice(
            &u16::try_from(committee.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for id in &committee {
            out.extend_from_slice(&id.to_be_bytes());
        }
        out.extend_from_slice(&threshold.to_be_bytes());
        out.extend_from_slice(&not_after.to_be_bytes());
        out
    }

    /// The message this approval's signature must verify on.
    pub fn signed_message(&self) -> Vec<u8> {
        Self::message(&self.committee, self.threshold, self.not_after)
    }

    /// Whether it approves exactly `committee` (any order) at `threshold`.
    pub fn covers(&self, committee: &[NodeId], threshold: u16) -> bool {
        self.threshold == threshold
            && normalized(&self.committee) == self.committee
            && normalized(committee) == self.committee
    }
}

/// Sorted, each id once.
pub fn normalized(committee: &[NodeId]) -> Vec<NodeId> {
    let mut sorted = committee.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_binds_committee_threshold_and_expiry_in_any_order() {
        let m = ChangeApproval::message(&[3, 1, 2], 2, 100);
        assert_eq!(m, ChangeApproval::message(&[1, 2, 3], 2, 100));
        assert_eq!(m, ChangeApproval::message(&[1, 2, 3, 3], 2, 100));
        for other in [
            ChangeApproval::message(&[1, 2], 2, 100),
            ChangeApproval::message(&[1, 2, 4], 2, 100),
            ChangeApproval::message(&[1, 2, 3], 3, 100),
            ChangeApproval::message(&[1, 2, 3], 2, 101),
        ] {
            assert_ne!(m, other);
        }
        assert!(m.starts_with(APPROVAL_DOMAIN));
    }

    #[test]
    fn covers_exactly_its_committee_and_threshold() {
        let approval = ChangeApproval {
            committee: vec![1, 2, 3],
            threshold: 2,
            not_after: 0,
            signature: Vec::new(),
        };
        assert!(approval.covers(&[3, 2, 1], 2));
        assert!(!approval.covers(&[1, 2], 2));
        assert!(!approval.covers(&[1, 2, 3, 4], 2));
        assert!(!approval.covers(&[1, 2, 3], 3));
        let unsorted = ChangeApproval {
            committee: vec![2, 1, 3],
            ..approval
        };
        assert!(!unsorted.covers(&[1, 2, 3], 2));
    }
}
