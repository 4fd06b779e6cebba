//! Which version of a key the nodes vouch for: no single node's word rewrites the coordinator's view of a key.
//!
//! Every holder keeps the key's description beside its share, and reports it when the coordinator lists the keys.
//! A node may lie (issue 14, item 1: one node reporting a key as destroyed at revision `u64::MAX`, or at a new epoch
//! held by itself alone with threshold 1, made every other holder destroy the key or handed the key to that node).
//! So a report counts only from a node the report itself lists among the key's holders, and a version is taken
//! only when enough distinct holders report it identically:
//!
//! - **Identity** — epoch, algorithm, public key and package, threshold, holders, creation time: the version of
//!   the highest epoch that at least `need` of its own holders vouch for, where `need` is the larger of its
//!   threshold, the cluster's threshold (`floor`) and 2. A holder vouches by reporting it as its current share, or
//!   as a share it has staged in a reshare of that epoch (a reshare is decided only when every new holder staged
//!   the same version; a holder that missed the commit still has it staged) or, for a new key, as a share still
//!   pending (it missed the key generation's commit); at least one holder must report it committed. With at most
//!   `need − 1` liars, every taken version has an honest holder behind it, and no liar can lower a threshold below
//!   the cluster's or name itself sole holder. The cost: a key whose threshold is below the cluster's (the
//!   cluster's threshold was raised and the key not yet reshared to it) needs the cluster's number of holders, so a
//!   coordinator started while holders are down shows it only once enough of them answer (a running coordinator
//!   keeps what it knew).
//! - **Metadata** — revision, lifecycle state, label, attributes — within that identity: the highest revision
//!   whose exact content at least `need` of the reporting holders share. Only such a *certified* state is given to
//!   holders that missed it (the registry's reconciliation); when no revision has that support (holders that were
//!   down missed several updates), the view shows the most reported one and nothing is pushed.
//!
//! Keys no version of which is vouched for are left out of the view, and named in the log with their reports.

use std::collections::{BTreeMap, BTreeSet};

use vhsm_core::{Algorithm, KeyInfo, KeyState};
use vhsm_wire::NodeId;

/// A key's identity: what only a protocol run its holders took part in may change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Identity {
    epoch: u64,
    algorithm: String,
    public_key: Vec<u8>,
    public_package: Vec<u8>,
    threshold: u16,
    holders: Vec<NodeId>,
    created_unix: u64,
}

impl Identity {
    fn of(key: &KeyInfo) -> Self {
        let mut holders = key.holders.clone();
        holders.sort_unstable();
        Identity {
            epoch: key.epoch,
            algorithm: algorithm_name(key.algorithm),
            public_key: key.public_key.clone(),
            public_package: key.public_package.clone(),
            threshold: key.threshold,
            holders,
            created_unix: key.created_unix,
        }
    }
}

fn algorithm_name(a: Algorithm) -> String {
    a.to_string()
}

/// A key's metadata at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Metadata {
    revision: u64,
    state: KeyState,
    label: String,
    attributes: Vec<(u64, Vec<u8>)>,
}

impl Metadata {
    fn of(key: &KeyInfo) -> Self {
        Metadata {
            revision: key.revision,
            state: key.state,
            label: key.label.clone(),
            attributes: key.attributes.clone(),
        }
    }
}

/// The version of a key its holders vouch for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vouched {
    /// The key as the view shows it.
    pub key: KeyInfo,
    /// Whether its metadata (state, revision) has the support of enough holders to be given to those that missed
    /// it. Without it, nothing is pushed to any node.
    pub metadata_certified: bool,
    /// Nodes that reported, as current, another version of the same or a later epoch than the one taken: a liar,
    /// or a node whose store was tampered with. (A node behind, at an older epoch, is not one of them.)
    pub dissenters: Vec<NodeId>,
}

/// Why no version of a key was taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unvouched {
    /// Every reported version, with the holders that vouched for it and how many it needed.
    pub versions: Vec<Reported>,
    /// Nodes whose report did not count: they reported a version that does not list them among its holders.
    pub outsiders: Vec<NodeId>,
}

/// One reported version of a key, and its support.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// Its epoch.
    pub epoch: u64,
    /// Its holders.
    pub holders: Vec<NodeId>,
    /// Its threshold.
    pub threshold: u16,
    /// The holders that vouched for it.
    pub vouching: Vec<NodeId>,
    /// How many it needed.
    pub need: usize,
}

impl std::fmt::Display for Unvouched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|r| {
                format!(
                    "epoch {} {}-of-{:?} vouched for by {:?} (needs {})",
                    r.epoch, r.threshold, r.holders, r.vouching, r.need
                )
            })
            .collect();
        write!(f, "{}", versions.join("; "))?;
        if !self.outsiders.is_empty() {
            write!(
                f,
                "; reports from non-holders ignored: {:?}",
                self.outsiders
            )?;
        }
        Ok(())
    }
}

/// The version of one key that its holders vouch for, from every node's current (`active`) and staged reports of
/// it, with `floor` the cluster's threshold. See the module documentation.
pub fn vouch(
    active: &[(NodeId, KeyInfo)],
    staged: &[(NodeId, KeyInfo)],
    floor: u16,
) -> Result<Vouched, Unvouched> {
    #[derive(Default)]
    struct Support {
        committed: BTreeSet<NodeId>,
        staged: BTreeSet<NodeId>,
        reports: Vec<(NodeId, KeyInfo)>,
    }
    let mut versions: BTreeMap<Identity, Support> = BTreeMap::new();
    let mut outsiders = BTreeSet::new();
    for (node, key) in active {
        if !key.holders.contains(node) {
            outsiders.insert(*node);
            continue;
        }
        let support = versions.entry(Identity::of(key)).or_default();
        if support.committed.insert(*node) {
            support.reports.push((*node, key.clone()));
        }
    }
    for (node, key) in staged {
        if !key.holders.contains(node) {
            outsiders.insert(*node);
            continue;
        }
        versions
            .entry(Identity::of(key))
            .or_default()
            .staged
            .insert(*node);
    }
    let need = |id: &Identity| usize::from(id.threshold.max(floor).max(2));
    let vouching = |s: &Support| s.committed.union(&s.staged).count();
    let reported = |id: &Identity, s: &Support| Reported {
        epoch: id.epoch,
        holders: id.holders.clone(),
        threshold: id.threshold,
        vouching: s.committed.union(&s.staged).copied().collect(),
        need: need(id),
    };
    let best = versions
        .iter()
        .filter(|(id, s)| !s.committed.is_empty() && vouching(s) >= need(id))
        .max_by_key(|(id, _)| id.epoch);
    let Some((identity, support)) = best else {
        return Err(Unvouched {
            versions: versions.iter().map(|(id, s)| reported(id, s)).collect(),
            outsiders: outsiders.into_iter().collect(),
        });
    };
    // Two versions of the same epoch, both vouched for: the holders contradict each other; take neither.
    let rivals = versions
        .iter()
        .filter(|(id, s)| {
            id.epoch == identity.epoch
                && *id != identity
                && !s.committed.is_empty()
                && vouching(s) >= need(id)
        })
        .count();
    if rivals > 0 {
        return Err(Unvouched {
            versions: versions
                .iter()
                .filter(|(id, _)| id.epoch == identity.epoch)
                .map(|(id, s)| reported(id, s))
                .collect(),
            outsiders: outsiders.into_iter().collect(),
        });
    }
    // Metadata: the highest revision whose exact content enough holders share; else the most reported one.
    let mut contents: Vec<(Metadata, BTreeSet<NodeId>, &KeyInfo)> = Vec::new();
    for (node, key) in &support.reports {
        let metadata = Metadata::of(key);
        match contents.iter_mut().find(|(m, _, _)| *m == metadata) {
            Some((_, nodes, _)) => {
                nodes.insert(*node);
            }
            None => contents.push((metadata, BTreeSet::from([*node]), key)),
        }
    }
    let certified = contents
        .iter()
        .filter(|(_, nodes, _)| nodes.len() >= need(identity))
        .max_by_key(|(m, _, _)| m.revision);
    let (chosen, metadata_certified) = match certified {
        Some((_, _, key)) => (*key, true),
        None => {
            let most = contents
                .iter()
                .max_by(|a, b| {
                    a.1.len()
                        .cmp(&b.1.len())
                        .then(b.0.revision.cmp(&a.0.revision))
                })
                .map(|(_, _, key)| *key);
            // Never empty: a vouched-for version has at least one committed report.
            match most {
                Some(key) => (key, false),
                None => return Err(Unvouched::default()),
            }
        }
    };
    let dissenters: BTreeSet<NodeId> = versions
        .iter()
        .filter(|(id, _)| *id != identity && id.epoch >= identity.epoch)
        .flat_map(|(_, s)| s.committed.iter().copied())
        .chain(outsiders.iter().copied().filter(|n| {
            active
                .iter()
                .any(|(m, k)| m == n && k.epoch >= identity.epoch)
        }))
        .collect();
    let mut key = chosen.clone();
    key.holders = identity.holders.clone();
    Ok(Vouched {
        key,
        metadata_certified,
        dissenters: dissenters.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use vhsm_core::KeyId;

    fn key(epoch: u64, holders: &[NodeId], threshold: u16) -> KeyInfo {
        KeyInfo {
            id: KeyId([9; 16]),
            label: "k".into(),
            algorithm: Algorithm::Ed25519,
            public_key: vec![1; 32],
            public_package: vec![2; 40],
            threshold,
            holders: holders.to_vec(),
            state: KeyState::Active,
            created_unix: 100,
            epoch,
            revision: 0,
            attributes: Vec::new(),
        }
    }

    fn reports(nodes: &[NodeId], key: &KeyInfo) -> Vec<(NodeId, KeyInfo)> {
        nodes.iter().map(|&n| (n, key.clone())).collect()
    }

    #[test]
    fn one_node_reporting_the_key_destroyed_at_the_highest_revision_changes_nothing() {
        let honest = key(0, &[1, 2, 3], 2);
        let mut lie = honest.clone();
        lie.state = KeyState::Destroyed;
        lie.revision = u64::MAX;
        let mut active = reports(&[1, 2], &honest);
        active.push((3, lie));
        let v = vouch(&active, &[], 2).unwrap();
        assert_eq!((v.key.state, v.key.revision), (KeyState::Active, 0));
        assert!(v.metadata_certified);
    }

    #[test]
    fn one_node_claiming_a_new_epoch_held_by_itself_alone_is_not_believed() {
        let honest = key(0, &[1, 2, 3], 2);
        let mut lie = key(1, &[3], 1);
        lie.public_key = vec![3; 32];
        let mut active = reports(&[1, 2], &honest);
        active.push((3, lie.clone()));
        let v = vouch(&active, &[], 2).unwrap();
        assert_eq!((v.key.epoch, v.key.holders.clone()), (0, vec![1, 2, 3]));
        assert_eq!(v.dissenters, vec![3]);
        assert_eq!(v.key.public_key, honest.public_key);
        // Not even when it is the only node that answers.
        assert!(vouch(&[(3, lie)], &[], 2).is_err());
    }

    #[test]
    fn a_new_epoch_naming_honest_holders_needs_their_word() {
        let honest = key(0, &[1, 2, 3], 2);
        let lie = key(1, &[2, 3], 2);
        let mut active = reports(&[1, 2], &honest);
        active.push((3, lie));
        assert_eq!(vouch(&active, &[], 2).unwrap().key.epoch, 0);
        // And a threshold below the cluster's is not taken even from two colluders.
        let weak = key(1, &[2, 3], 2);
        let e = vouch(&reports(&[2, 3], &weak), &[], 3).unwrap_err();
        assert!(e.to_string().contains("needs 3"), "{e}");
    }

    #[test]
    fn reports_from_nodes_outside_the_holders_do_not_count() {
        let k = key(0, &[1, 2, 3], 2);
        let e = vouch(&[(1, k.clone()), (4, k.clone()), (5, k)], &[], 2).unwrap_err();
        assert_eq!(e.outsiders, vec![4, 5]);
    }

    #[test]
    fn a_reshare_committed_on_one_holder_and_staged_on_the_others_is_the_key_now() {
        let old = key(0, &[1, 2, 3], 2);
        let new = key(1, &[1, 2, 3], 2);
        // Node 1 committed epoch 1; nodes 2 and 3 still have epoch 0 current and epoch 1 staged.
        let mut active = vec![(1, new.clone())];
        active.extend(reports(&[2, 3], &old));
        let staged = reports(&[2, 3], &new);
        assert_eq!(vouch(&active, &staged, 2).unwrap().key.epoch, 1);
        // Staged everywhere and committed nowhere: still the old epoch.
        assert_eq!(
            vouch(&reports(&[1, 2, 3], &old), &staged, 2)
                .unwrap()
                .key
                .epoch,
            0
        );
    }

    #[test]
    fn a_state_change_is_certified_by_enough_holders_and_a_laggard_does_not_hold_it_back() {
        let before = key(0, &[1, 2, 3], 2);
        let mut after = before.clone();
        after.state = KeyState::Deactivated;
        after.revision = 1;
        let mut active = reports(&[1, 2], &after);
        active.push((3, before.clone()));
        let v = vouch(&active, &[], 2).unwrap();
        assert_eq!(v.key.state, KeyState::Deactivated);
        assert!(v.metadata_certified);
        // Reached one holder only: shown as the most reported state, not certified, so not pushed anywhere.
        let mut active = reports(&[2, 3], &before);
        active.push((1, after));
        let v = vouch(&active, &[], 2).unwrap();
        assert_eq!(v.key.state, KeyState::Active);
        assert!(v.metadata_certified, "two holders share revision 0");
    }

    #[test]
    fn holders_that_all_disagree_certify_no_metadata() {
        let mut a = key(0, &[1, 2, 3], 2);
        let mut b = a.clone();
        let mut c = a.clone();
        a.revision = 3;
        b.revision = 2;
        b.label = "two".into();
        c.revision = 1;
        c.label = "one".into();
        let v = vouch(&[(1, a), (2, b), (3, c)], &[], 2).unwrap();
        assert!(!v.metadata_certified);
    }
}
