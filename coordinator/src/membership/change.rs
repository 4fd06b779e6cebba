//! Membership changes as whole workflows, run by the coordinator: adding a node, removing one, setting the
//! threshold — each with the reshare of every key it needs.
//!
//! - **Add node N**: N joins the membership (it must answer now, as node N of this cluster), then every key is
//!   reshared to all the members.
//! - **Set threshold T**: the membership's threshold becomes T, then every key is reshared to it.
//! - **Remove node N** (optionally with a new threshold T, set first): every key is reshared to the other
//!   members, then N leaves the membership — only if no key is left on it (the removal itself refuses while a key
//!   lists N among its holders, see [`super::MembershipAdmin::remove_node`]).
//!
//! The client starts a change and gets its number at once; the coordinator runs it to the end whether or not the
//! client stays, and keeps its progress and outcome ([`Changes`]) for the client to follow (`ChangeStatus`). A
//! client that dies midway leaves nothing half-done behind it, and there is one copy of the membership — the
//! coordinator's. One change at a time. A change whose reshare of a key fails goes on with the other keys and
//! reports which failed; a failed key is unchanged and usable, and running the command again (or `vhsm key
//! refresh --all`) finishes the move: keys already where the membership says are left alone.
//!
//! Every request the change makes to the nodes is made for the security officer who asked (its [`NodePool`]
//! handle is the request's), so the nodes' audit logs name them.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use vhsm_core::{ChangeApproval, KeyInfo, KeyState, Membership, NodeId};
use vhsm_wire::client_api::{ChangeStatus, KeyMoved};

use crate::{
    error::Error, membership::MembershipAdmin, nodes::NodePool, registry::Registry, reshare,
    signing::Signer,
};

/// How many finished changes are kept for clients to read.
const KEPT: usize = 16;

/// A membership change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Add node `id` at `address`, then reshare every key to all the members.
    AddNode {
        /// The node.
        id: NodeId,
        /// Where it answers.
        address: String,
    },
    /// Reshare every key away from node `id` (at `threshold`, if given), then remove it.
    RemoveNode {
        /// The node.
        id: NodeId,
        /// The threshold afterwards, if it changes.
        threshold: Option<u16>,
    },
    /// Set the threshold, then reshare every key to it.
    SetThreshold {
        /// The threshold.
        threshold: u16,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::AddNode { id, address } => write!(f, "add node {id} at {address}"),
            Change::RemoveNode {
                id,
                threshold: None,
            } => write!(f, "remove node {id}"),
            Change::RemoveNode {
                id,
                threshold: Some(t),
            } => write!(f, "remove node {id}, threshold {t}"),
            Change::SetThreshold { threshold } => write!(f, "set the threshold to {threshold}"),
        }
    }
}

/// One change's progress, shared by the task that runs it and the clients that follow it.
#[derive(Debug, Clone)]
pub struct Progress(Arc<Mutex<ChangeStatus>>);

impl Progress {
    fn new(job: u64, change: &Change, requester: String) -> Self {
        Progress(Arc::new(Mutex::new(ChangeStatus {
            job,
            change: change.to_string(),
            requester,
            keys_total: 0,
            keys: Vec::new(),
            current: None,
            outcome: None,
        })))
    }

    fn update(&self, f: impl FnOnce(&mut ChangeStatus)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The change as far as it has got.
    pub fn status(&self) -> ChangeStatus {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the change's outcome: it is finished.
    pub fn finish(&self, outcome: Result<Membership, Error>) {
        self.update(|s| {
            s.current = None;
            s.outcome = Some(outcome.map_err(Into::into));
        });
    }

    fn finished(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .outcome
            .is_some()
    }
}

/// The coordinator's membership changes: the running one and the last few finished ones (16).
#[derive(Debug, Default)]
pub struct Changes {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    last_job: u64,
    jobs: VecDeque<Progress>,
}

impl Changes {
    /// Registers `change` for `requester` and returns its progress, or refuses if another change is running.
    pub fn begin(&self, change: &Change, requester: String) -> Result<Progress, Error> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = table.jobs.iter().find(|p| !p.finished()) {
            let status = running.status();
            return Err(Error::Unavailable {
                message: format!(
                    "another membership change is running: {} ({} asked; job {}, {} of {} keys reshared); \
                     wait for it to finish",
                    status.change,
                    status.requester,
                    status.job,
                    status.keys.len(),
                    status.keys_total
                ),
                nodes: Vec::new(),
            });
        }
        table.last_job += 1;
        let progress = Progress::new(table.last_job, change, requester);
        table.jobs.push_back(progress.clone());
        while table.jobs.len() > KEPT {
            table.jobs.pop_front();
        }
        Ok(progress)
    }

    /// Change `job`'s progress.
    pub fn status(&self, job: u64) -> Result<ChangeStatus, Error> {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table
            .jobs
            .iter()
            .map(Progress::status)
            .find(|s| s.job == job)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no membership change {job} on this coordinator (it keeps the last {KEPT}; a restart forgets \
                     them — see `vhsm cluster members` for the membership now)"
                ))
            })
    }
}

/// What a change works with.
#[derive(Clone, Copy, Debug)]
pub struct Services<'a> {
    /// Saves and applies membership changes.
    pub admin: &'a MembershipAdmin,
    /// The keys.
    pub registry: &'a Registry,
    /// Knows the nodes banned from ECDSA sessions.
    pub signer: &'a Signer,
}

/// Runs `change` to its end through `nodes` (the requester's handle), with the security officer's `approval`
/// of where it moves the keys: [`first_step`], then [`rest`].
pub async fn run(
    services: Services<'_>,
    nodes: &NodePool,
    change: &Change,
    approval: Option<&ChangeApproval>,
    progress: &Progress,
) -> Result<Membership, Error> {
    if let Err(e) = first_step(services, nodes, change, approval).await {
        progress.finish(Err(e.clone()));
        return Err(e);
    }
    rest(services, nodes, change, approval, progress).await
}

/// The committee and threshold `change` moves every key to, from the membership `current`.
pub fn destination(current: &Membership, change: &Change) -> (Vec<NodeId>, u16) {
    let mut members = current.ids();
    let threshold = match change {
        Change::AddNode { id, .. } => {
            members.push(*id);
            current.threshold
        }
        Change::SetThreshold { threshold } => *threshold,
        Change::RemoveNode { id, threshold } => {
            members.retain(|m| m != id);
            threshold.unwrap_or(current.threshold)
        }
    };
    (vhsm_core::approval::normalized(&members), threshold)
}

/// Refuses a change the security officer's approval does not cover, before anything is changed: the nodes would
/// refuse every reshare of it. (Whether the signature is the security officer's is the nodes' check: they hold
/// the pinned key, the coordinator is not trusted with that decision.)
fn check_approval(
    current: &Membership,
    change: &Change,
    approval: Option<&ChangeApproval>,
) -> Result<(), Error> {
    let (committee, threshold) = destination(current, change);
    match approval {
        Some(a) if a.covers(&committee, threshold) => Ok(()),
        Some(a) => Err(Error::Forbidden(format!(
            "the security officer's approval covers holders {:?} at threshold {}, but this change ({change}) moves \
             the keys to {committee:?} at threshold {threshold} (did the membership change meanwhile?); run the \
             command again",
            a.committee, a.threshold
        ))),
        None => Err(Error::Forbidden(format!(
            "{change} moves every key to holders {committee:?} at threshold {threshold}: that needs the security \
             officer's signed approval, which the nodes check (the `vhsm` command signs one with the key `vhsm \
             init` made, client/so-approval.key)"
        ))),
    }
}

/// What is checked or done while the client waits for its answer: the checks, and the membership change itself
/// for an addition (the node must answer now) or a new threshold. A refusal here leaves everything as it was.
pub async fn first_step(
    services: Services<'_>,
    nodes: &NodePool,
    change: &Change,
    approval: Option<&ChangeApproval>,
) -> Result<(), Error> {
    let admin = services.admin;
    match change {
        Change::AddNode { id, address } => {
            check_approval(&nodes.membership(), change, approval)?;
            let m = admin.add_node(nodes, *id, address).await?;
            tracing::warn!(node = id, %address, version = m.version, members = ?m.ids(), "node ADDED to the cluster membership; every key is reshared to it next");
        }
        Change::SetThreshold { threshold } => {
            check_approval(&nodes.membership(), change, approval)?;
            let m = admin.set_threshold(nodes, *threshold).await?;
            tracing::warn!(
                threshold,
                version = m.version,
                "THRESHOLD set; every key is reshared to it next"
            );
        }
        Change::RemoveNode { id, threshold } => {
            let current = nodes.membership();
            super::with_node_removed(&current, *id)?;
            let remaining = current.nodes.len() - 1;
            let after = threshold.unwrap_or(current.threshold);
            if after < 2 || usize::from(after) > remaining {
                return Err(Error::BadRequest(format!(
                    "threshold {after} is not possible with the {remaining} node(s) that would remain; choose \
                     one with --threshold (2..={remaining})"
                )));
            }
            check_approval(&current, change, approval)?;
            if let Some(t) = threshold.filter(|t| *t != current.threshold) {
                admin.set_threshold(nodes, t).await?;
                tracing::warn!(threshold = t, "THRESHOLD set before a removal");
            }
        }
    }
    Ok(())
}

/// The long part, run by the coordinator after the client has its answer: the reshares, and for a removal the
/// removal itself. Records the outcome in `progress`.
pub async fn rest(
    services: Services<'_>,
    nodes: &NodePool,
    change: &Change,
    approval: Option<&ChangeApproval>,
    progress: &Progress,
) -> Result<Membership, Error> {
    let outcome = match change {
        Change::AddNode { .. } | Change::SetThreshold { .. } => {
            match reshare_all(services, nodes, &[], approval, progress).await {
                Ok(()) => Ok(nodes.membership()),
                Err(e) => Err(e),
            }
        }
        Change::RemoveNode { id, .. } => match reshare_all(services, nodes, &[*id], approval, progress)
            .await
        {
            Ok(()) => services
                .admin
                .remove_node(nodes, services.registry, *id)
                .await
                .inspect(|m| {
                    tracing::warn!(node = id, version = m.version, members = ?m.ids(), "node REMOVED from the cluster membership");
                }),
            Err(e) => Err(e.context(|m| format!("node {id} was not removed: {m}"))),
        },
    };
    match &outcome {
        Ok(m) => {
            tracing::warn!(%change, version = m.version, members = ?m.ids(), threshold = m.threshold, "membership change DONE")
        }
        Err(e) => tracing::warn!(%change, error = %e, "membership change STOPPED"),
    }
    progress.finish(outcome.clone());
    outcome
}

/// The keys that are not where the membership (less `leave_out`) and its threshold say.
fn to_move(keys: Vec<KeyInfo>, membership: &Membership, leave_out: &[NodeId]) -> Vec<KeyInfo> {
    let target: Vec<NodeId> = membership
        .ids()
        .into_iter()
        .filter(|n| !leave_out.contains(n))
        .collect();
    keys.into_iter()
        .filter(|k| k.state != KeyState::Destroyed)
        .filter(|k| {
            let mut holders = k.holders.clone();
            holders.sort_unstable();
            holders != target || k.threshold != membership.threshold
        })
        .collect()
}

/// Reshares every key that is not where the membership (less `leave_out`) says, one by one; fails, naming them,
/// if any could not be.
async fn reshare_all(
    services: Services<'_>,
    nodes: &NodePool,
    leave_out: &[NodeId],
    approval: Option<&ChangeApproval>,
    progress: &Progress,
) -> Result<(), Error> {
    let silent = services.registry.refresh(nodes).await;
    if let Some(e) = silent.first() {
        // Keys only that node knows of would be missed: do not go on blind.
        if silent.len() >= nodes.ids().len() {
            return Err(Error::from(e.clone()));
        }
    }
    let keys = to_move(services.registry.list(), &nodes.membership(), leave_out);
    progress.update(|s| s.keys_total = u32::try_from(keys.len()).unwrap_or(u32::MAX));
    let mut failed = Vec::new();
    for key in keys {
        progress.update(|s| s.current = Some(key.id));
        let started = Instant::now();
        let outcome = reshare::reshare_key(
            nodes,
            services.registry,
            key.id,
            Vec::new(),
            leave_out,
            services.signer.banned(),
            approval.cloned(),
        )
        .await;
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let moved = match outcome {
            Ok(new) => KeyMoved {
                key_id: key.id,
                label: key.label.clone(),
                algorithm: key.algorithm,
                from_epoch: key.epoch,
                to_epoch: Some(new.epoch),
                holders: new.holders,
                threshold: new.threshold,
                millis,
                error: None,
            },
            Err(e) => {
                tracing::warn!(key = %key.id, error = %e, "key not reshared; it stays as it was");
                failed.push(key.id);
                KeyMoved {
                    key_id: key.id,
                    label: key.label.clone(),
                    algorithm: key.algorithm,
                    from_epoch: key.epoch,
                    to_epoch: None,
                    holders: key.holders.clone(),
                    threshold: key.threshold,
                    millis,
                    error: Some(e.to_string()),
                }
            }
        };
        progress.update(|s| s.keys.push(moved));
    }
    if failed.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = failed.iter().map(ToString::to_string).collect();
    Err(Error::Unavailable {
        message: format!(
            "{} of {} key(s) were not reshared ({}); they are unchanged and usable — run the command again when \
             their holders answer",
            failed.len(),
            progress.status().keys_total,
            list.join(", ")
        ),
        nodes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vhsm_core::{Algorithm, KeyId, MemberEntry};

    fn membership(ids: &[NodeId], threshold: u16) -> Membership {
        Membership {
            version: 1,
            threshold,
            nodes: ids
                .iter()
                .map(|&id| MemberEntry {
                    id,
                    address: format!("127.0.0.1:{}", 7000 + id),
                })
                .collect(),
        }
    }

    fn key(n: u8, holders: &[NodeId], threshold: u16, state: KeyState) -> KeyInfo {
        KeyInfo {
            id: KeyId([n; 16]),
            label: String::new(),
            algorithm: Algorithm::Ed25519,
            public_key: Vec::new(),
            public_package: Vec::new(),
            threshold,
            holders: holders.to_vec(),
            state,
            created_unix: u64::from(n),
            epoch: 0,
            revision: 0,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn a_change_needs_an_approval_of_exactly_where_it_moves_the_keys() {
        let m = membership(&[1, 2, 3], 2);
        let approval = |committee: &[NodeId], threshold| ChangeApproval {
            committee: committee.to_vec(),
            threshold,
            not_after: u64::MAX,
            signature: vec![0; 64],
        };
        let add = Change::AddNode {
            id: 4,
            address: "127.0.0.1:7004".into(),
        };
        let remove = Change::RemoveNode {
            id: 2,
            threshold: Some(2),
        };
        let set = Change::SetThreshold { threshold: 3 };
        assert_eq!(destination(&m, &add), (vec![1, 2, 3, 4], 2));
        assert_eq!(destination(&m, &remove), (vec![1, 3], 2));
        assert_eq!(destination(&m, &set), (vec![1, 2, 3], 3));
        check_approval(&m, &add, Some(&approval(&[1, 2, 3, 4], 2))).unwrap();
        check_approval(&m, &remove, Some(&approval(&[1, 3], 2))).unwrap();
        check_approval(&m, &set, Some(&approval(&[1, 2, 3], 3))).unwrap();
        for (change, wrong) in [
            (&add, approval(&[1, 2, 3], 2)),
            (&remove, approval(&[1, 3], 3)),
            (&set, approval(&[1, 2, 3], 2)),
        ] {
            let e = check_approval(&m, change, Some(&wrong)).unwrap_err();
            assert!(matches!(e, Error::Forbidden(_)), "{e}");
            let e = check_approval(&m, change, None).unwrap_err();
            assert!(
                e.to_string()
                    .contains("needs the security officer's signed approval"),
                "{e}"
            );
        }
    }

    #[test]
    fn only_keys_not_where_the_membership_says_move() {
        let m = membership(&[1, 2, 3, 4], 2);
        let keys = vec![
            key(1, &[1, 2, 3, 4], 2, KeyState::Active),
            key(2, &[4, 3, 2, 1], 2, KeyState::Active),
            key(3, &[1, 2, 3], 2, KeyState::Active),
            key(4, &[1, 2, 3, 4], 3, KeyState::Deactivated),
            key(5, &[1, 2, 3], 2, KeyState::Destroyed),
        ];
        let ids = |v: Vec<KeyInfo>| v.into_iter().map(|k| k.id.0[0]).collect::<Vec<_>>();
        assert_eq!(ids(to_move(keys.clone(), &m, &[])), vec![3, 4]);
        // Before node 4 leaves: every key that lists it moves, and those already on 1..3 stay.
        assert_eq!(ids(to_move(keys, &m, &[4])), vec![1, 2, 4]);
    }

    #[test]
    fn one_change_at_a_time_and_finished_ones_are_kept() {
        let changes = Changes::default();
        let remove = Change::RemoveNode {
            id: 4,
            threshold: None,
        };
        let first = changes.begin(&remove, "ops (so)".into()).unwrap();
        let refused = changes
            .begin(&Change::SetThreshold { threshold: 3 }, "other (so)".into())
            .unwrap_err();
        assert!(
            refused.to_string().contains("remove node 4")
                && refused.to_string().contains("ops (so)"),
            "{refused}"
        );
        first.update(|s| s.outcome = Some(Ok(membership(&[1, 2, 3], 2))));
        let second = changes
            .begin(&Change::SetThreshold { threshold: 3 }, "ops (so)".into())
            .unwrap();
        assert_eq!(second.status().job, 2);
        assert_eq!(
            changes.status(1).unwrap().outcome,
            Some(Ok(membership(&[1, 2, 3], 2)))
        );
        assert!(changes.status(9).is_err());
    }
}
