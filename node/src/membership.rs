//! The cluster membership as this node knows it: which nodes are its peers.
//!
//! At start a node takes its peers from the newest membership it has stored, or, if it was never given one, from
//! its configuration file (`node.toml`'s `peers`). The coordinator sends the membership whenever it changes and
//! whenever it (re)connects to the node ([`vhsm_wire::node_api::NodeRequest::SetMembership`]); the node keeps it
//! only if it is newer than what it has, stores it sealed, and from then on talks to exactly those peers (see
//! [`crate::mesh::Mesh::set_peers`]).
//!
//! A membership that does not list this node is not adopted: the node says so loudly, keeps its peers, and keeps
//! serving the coordinator (which will ask it to delete the shares of keys it no longer holds).

use std::sync::Arc;

use vhsm_core::Membership;
use vhsm_wire::NodeId;

use crate::{
    config::PeerConfig,
    error::ServiceError,
    mesh::{Mesh, PeerChange},
    store::{ShareStore, StoreError},
};

/// What [`MembershipKeeper::apply`] did with a membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Stored and in force.
    Adopted(PeerChange),
    /// Not newer than the one this node has (version given): ignored.
    Stale(u64),
}

/// The peers of `me` in `membership` (id, address), by id.
pub fn peers_of(membership: &Membership, me: NodeId) -> Vec<(NodeId, String)> {
    let mut peers: Vec<(NodeId, String)> = membership
        .nodes
        .iter()
        .filter(|n| n.id != me)
        .map(|n| (n.id, n.address.clone()))
        .collect();
    peers.sort_unstable();
    peers
}

/// This node's membership: the newest it was given (`None`: none yet, the peers are `node.toml`'s).
#[derive(Debug)]
pub struct MembershipKeeper {
    me: NodeId,
    current: tokio::sync::Mutex<Option<Membership>>,
}

impl MembershipKeeper {
    /// Reads the stored membership at start. Returns the keeper and the peers to start with: the stored
    /// membership's, or `configured` if there is none.
    pub fn start(
        me: NodeId,
        store: &ShareStore,
        configured: &[PeerConfig],
    ) -> Result<(Self, Vec<(NodeId, String)>), StoreError> {
        let stored = store.membership()?;
        let (current, peers) = match stored {
            Some(m) if m.nodes.iter().any(|n| n.id == me) => {
                let peers = peers_of(&m, me);
                tracing::info!(
                    node = me,
                    version = m.version,
                    threshold = m.threshold,
                    members = ?m.ids(),
                    "peers from the stored cluster membership (node.toml's peers are used only until a membership is given)"
                );
                (Some(m), peers)
            }
            Some(m) => {
                // Never stored by this code (a membership without this node is not adopted); say so and fall back.
                tracing::error!(
                    node = me,
                    version = m.version,
                    members = ?m.ids(),
                    "the stored cluster membership does not list this node; using node.toml's peers"
                );
                (None, configured_peers(configured))
            }
            None => (None, configured_peers(configured)),
        };
        Ok((
            MembershipKeeper {
                me,
                current: tokio::sync::Mutex::new(current),
            },
            peers,
        ))
    }

    /// The membership in force, if this node was given one.
    pub async fn current(&self) -> Option<Membership> {
        self.current.lock().await.clone()
    }

    /// Takes `membership` if it is valid, lists this node and is newer than the one in force: stores it (a version
    /// above 0; version 0 is the configuration's, which every member has in its files) and makes its nodes the
    /// peers. An older or equal version is ignored (`Ok(Applied::Stale)`, logged). A membership without this
    /// node is refused, loudly, and nothing changes.
    pub async fn apply(
        &self,
        store: Arc<ShareStore>,
        mesh: &Mesh,
        membership: Membership,
    ) -> Result<Applied, ServiceError> {
        let me = self.me;
        membership
            .check()
            .map_err(|reason| ServiceError::InvalidMembership {
                version: membership.version,
                reason,
            })?;
        if !membership.nodes.iter().any(|n| n.id == me) {
            tracing::error!(
                node = me,
                version = membership.version,
                members = ?membership.ids(),
                "THIS NODE IS NOT A MEMBER of the cluster membership it was given: not adopted. It keeps its peers \
                 and keeps serving the coordinator; if it was removed on purpose, stop it once its keys are gone"
            );
            return Err(ServiceError::NotInMembership {
                node: me,
                version: membership.version,
                members: membership.ids(),
            });
        }
        // One change at a time: the store and the mesh move together.
        let mut current = self.current.lock().await;
        if let Some(known) = current.as_ref() {
            if membership.version <= known.version {
                if membership.version == known.version && membership != *known {
                    tracing::warn!(
                        node = me,
                        version = membership.version,
                        "given a different membership with the version this node has; ignored (keeping the one \
                         it has)"
                    );
                } else if membership.version < known.version {
                    tracing::info!(
                        node = me,
                        given = membership.version,
                        current = known.version,
                        "membership older than this node's; ignored"
                    );
                } else {
                    tracing::debug!(node = me, version = known.version, "membership unchanged");
                }
                return Ok(Applied::Stale(known.version));
            }
        }
        if membership.version > 0 {
            let record = membership.clone();
            let stored = tokio::task::spawn_blocking(move || store.put_membership(&record))
                .await
                .map_err(|source| ServiceError::TaskFailed {
                    task: "store",
                    source,
                })?
                .map_err(|source| ServiceError::StoreFailed {
                    doing: "store the membership",
                    source,
                })?;
            if !stored {
                // The store has a newer one than memory: only if another process wrote it. Keep what is in force.
                tracing::warn!(
                    node = me,
                    version = membership.version,
                    "the store already holds a newer membership; ignored"
                );
                return Ok(Applied::Stale(membership.version));
            }
        }
        let change = mesh.set_peers(peers_of(&membership, me)).await;
        tracing::info!(
            node = me,
            version = membership.version,
            threshold = membership.threshold,
            members = ?membership.ids(),
            added = ?change.added,
            removed = ?change.removed,
            "cluster membership adopted"
        );
        if !change.removed.is_empty() {
            tracing::warn!(node = me, removed = ?change.removed, "peers left the cluster: their connections are closed and new ones refused");
        }
        *current = Some(membership);
        Ok(Applied::Adopted(change))
    }
}

fn configured_peers(configured: &[PeerConfig]) -> Vec<(NodeId, String)> {
    configured
        .iter()
        .map(|p| (p.id, p.address.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::seal::StorageKey;
    use vhsm_core::MemberEntry;
    use vhsm_wire::{pki::ClusterCa, tls, Role};

    fn membership(version: u64, ids: &[NodeId]) -> Membership {
        Membership {
            version,
            threshold: 2,
            nodes: ids
                .iter()
                .map(|&id| MemberEntry {
                    id,
                    address: format!("127.0.0.1:{}", 7000 + id),
                })
                .collect(),
        }
    }

    fn mesh(me: NodeId, peers: &[NodeId]) -> Mesh {
        let ca = ClusterCa::generate().unwrap();
        let issued = ca.issue(&Role::Node(me)).unwrap();
        let identity = tls::TlsIdentity::from_pem(
            ca.cert_pem().as_bytes(),
            issued.cert_pem.as_bytes(),
            issued.key_pem.as_bytes(),
        )
        .unwrap();
        let endpoint = tls::server_endpoint(&identity, "127.0.0.1:0".parse().unwrap()).unwrap();
        Mesh::new(
            me,
            crate::mesh::quic::QuicMesh::new(endpoint),
            peers
                .iter()
                .map(|&id| (id, format!("127.0.0.1:{}", 7000 + id))),
        )
    }

    #[tokio::test]
    async fn newer_memberships_change_the_peers_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let key_path = dir.path().join("k");
        StorageKey::generate().write_new(&key_path).unwrap();
        let configured: Vec<PeerConfig> = [2, 3]
            .iter()
            .map(|&id| PeerConfig {
                id,
                address: format!("127.0.0.1:{}", 7000 + id),
            })
            .collect();
        {
            let store =
                Arc::new(ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap());
            let (keeper, peers) = MembershipKeeper::start(1, &store, &configured).unwrap();
            assert_eq!(peers.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2, 3]);
            let mesh = mesh(1, &[2, 3]);

            // Node 4 joins: it becomes a peer.
            let applied = keeper
                .apply(store.clone(), &mesh, membership(1, &[1, 2, 3, 4]))
                .await
                .unwrap();
            assert_eq!(
                applied,
                Applied::Adopted(PeerChange {
                    added: vec![4],
                    removed: vec![]
                })
            );
            assert!(mesh.is_peer(4) && mesh.is_peer(2) && !mesh.is_peer(1));

            // An older or equal version changes nothing.
            assert_eq!(
                keeper
                    .apply(store.clone(), &mesh, membership(1, &[1, 2]))
                    .await
                    .unwrap(),
                Applied::Stale(1)
            );
            assert!(mesh.is_peer(4) && mesh.is_peer(3));

            // Node 3 leaves.
            let applied = keeper
                .apply(store.clone(), &mesh, membership(2, &[1, 2, 4]))
                .await
                .unwrap();
            assert_eq!(
                applied,
                Applied::Adopted(PeerChange {
                    added: vec![],
                    removed: vec![3]
                })
            );
            assert!(!mesh.is_peer(3));

            // Not a member, or not a possible cluster: refused, nothing changes.
            let err = keeper
                .apply(store.clone(), &mesh, membership(3, &[2, 4]))
                .await
                .unwrap_err();
            let ServiceError::NotInMembership {
                node,
                version,
                members,
            } = &err
            else {
                panic!("not the refusal of a membership without this node: {err}")
            };
            assert_eq!((*node, *version, members.as_slice()), (1, 3, &[2, 4][..]));
            assert!(err.to_string().contains("not in membership"), "{err}");
            let mut bad = membership(3, &[1, 2]);
            bad.threshold = 3;
            let err = keeper.apply(store.clone(), &mesh, bad).await.unwrap_err();
            assert!(
                matches!(err, ServiceError::InvalidMembership { version: 3, .. }),
                "{err}"
            );
            assert_eq!(keeper.current().await.unwrap().version, 2);
            assert_eq!(
                mesh.peers().iter().map(|p| p.0).collect::<Vec<_>>(),
                vec![2, 4]
            );
        }
        // After a restart the stored membership wins over node.toml's peers.
        let store = ShareStore::open(&path, StorageKey::load(&key_path).unwrap(), 1).unwrap();
        let (keeper, peers) = MembershipKeeper::start(1, &store, &configured).unwrap();
        assert_eq!(peers.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(keeper.current().await.unwrap().version, 2);
    }

    #[tokio::test]
    async fn version_zero_is_adopted_but_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            ShareStore::open(&dir.path().join("s.redb"), StorageKey::generate(), 2).unwrap(),
        );
        let (keeper, _) = MembershipKeeper::start(2, &store, &[]).unwrap();
        let mesh = mesh(2, &[]);
        keeper
            .apply(store.clone(), &mesh, membership(0, &[1, 2, 3]))
            .await
            .unwrap();
        assert!(mesh.is_peer(1) && mesh.is_peer(3));
        assert_eq!(store.membership().unwrap(), None);
    }
}
