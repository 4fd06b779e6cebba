//! Resharing a key: refresh (same holders, new shares), a new committee (nodes added or removed, another
//! threshold) and the repair of a holder that lost its data are one operation, run by the nodes
//! (the node's `sessions::reshare`) and ordered here.
//!
//! 1. **Deal and stage.** The dealers (every reachable current holder that is not to be avoided, at least the
//!    key's threshold many) and the new committee (all of it must be reachable) run the reshare session. Each new
//!    holder stages its share under the next epoch; its current share stays in force.
//! 2. **Decide.** Every new holder must report the same staged key (public key unchanged, same public package).
//!    Otherwise the staged shares are dropped everywhere and the key stays as it was, under the old committee.
//! 3. **Commit.** Every new holder makes its staged share current, erasing the old one. The decision is durable as
//!    soon as one holder has committed: from then on the key is used at the new epoch, and a holder that missed
//!    the commit commits on first use of that epoch, or when the coordinator next reconciles
//!    ([`crate::registry`]). Old holders that are not in the new committee delete their (now useless) shares.
//!
//! Whatever is killed at whatever step, the key stays usable under the old committee (nothing committed yet) or
//! the new one (something committed, and every new holder has its share staged or committed) — never neither.

use std::{collections::BTreeSet, time::Duration};

use rand_core::OsRng;
use vhsm_core::{ChangeApproval, KeyId, KeyInfo};
use vhsm_protocols::SessionId;
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    ErrorKind, NodeId,
};

use crate::error::Error;
use crate::{
    nodes::{NodeCallError, NodePool},
    registry::Registry,
};

/// How long a node may take to answer whether it is alive before a reshare.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a commit or an abort may take on one node.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the whole reshare session may take (the nodes' own bound, plus a margin).
fn session_timeout(key: &KeyInfo) -> Duration {
    match key.algorithm.ecdsa_curve() {
        Some(_) => Duration::from_secs(620),
        None => Duration::from_secs(40),
    }
}

/// What to reshare to.
#[derive(Clone, Debug)]
pub struct Target {
    /// The holders afterwards.
    pub committee: Vec<NodeId>,
    /// The threshold afterwards.
    pub threshold: u16,
    /// Nodes that must not deal (one being repaired).
    pub avoid_dealers: Vec<NodeId>,
    /// Bans from OT-based protocols, (banning node, banned node): the two of a pair never hold an ECDSA key
    /// together, nor deal one to the other.
    pub banned: Vec<(NodeId, NodeId)>,
    /// The security officer's approval of `committee` and `threshold`, passed to every node: needed when they are
    /// not the key's own (the nodes check it; a refresh needs none).
    pub approval: Option<ChangeApproval>,
}

/// What a reshare did.
#[derive(Clone, Debug)]
pub struct Reshared {
    /// The key at its new epoch.
    pub key: KeyInfo,
    /// The dealers that dealt.
    pub dealers: Vec<NodeId>,
    /// Dealers the participants left out (a bad sub-share or commitments).
    pub excluded: Vec<NodeId>,
    /// Old holders not in the new committee whose shares could not be deleted now (unreachable): the registry's
    /// reconciliation deletes them later.
    pub not_yet_deleted: Vec<NodeId>,
}

fn unavailable(message: String, nodes: Vec<NodeId>) -> Error {
    Error::Unavailable { message, nodes }
}

/// Reshares key `key_id` to the cluster's membership less `leave_out`, at the membership's threshold, without
/// `avoid_dealers` as dealers and keeping the pairs of `banned` apart in ECDSA sessions, with the security
/// officer's `approval` where that moves the key: what `vhsm key refresh`, `vhsm node repair` and every
/// membership change do to each key. Starts from the nodes' own view of the key (a reshare
/// must deal the epoch the holders have); one reshare of a key at a time on this coordinator; the registry
/// learns the key's new epoch.
pub async fn reshare_key(
    pool: &NodePool,
    registry: &Registry,
    key_id: KeyId,
    avoid_dealers: Vec<NodeId>,
    leave_out: &[NodeId],
    banned: Vec<(NodeId, NodeId)>,
    approval: Option<ChangeApproval>,
) -> Result<KeyInfo, Error> {
    registry.refresh(pool).await;
    let key = registry.find(pool, key_id).await?;
    let Some(_guard) = registry.begin_reshare(key_id) else {
        return Err(Error::Unavailable {
            message: format!("key {key_id} is being reshared already"),
            nodes: Vec::new(),
        });
    };
    // Holders known unable to use their share of this epoch (behind it, or damaged) cannot deal it.
    let mut avoid_dealers = avoid_dealers;
    avoid_dealers.extend(pool.unusable(key_id, key.epoch));
    avoid_dealers.sort_unstable();
    avoid_dealers.dedup();
    let membership = pool.membership();
    let target = Target {
        committee: membership
            .ids()
            .into_iter()
            .filter(|n| !leave_out.contains(n))
            .collect(),
        threshold: membership.threshold,
        avoid_dealers,
        banned,
        approval,
    };
    let committee = vhsm_core::approval::normalized(&target.committee);
    let moves = vhsm_core::approval::normalized(&key.holders) != committee
        || key.threshold != target.threshold;
    match &target.approval {
        Some(a) if !a.covers(&committee, target.threshold) => {
            return Err(Error::Forbidden(format!(
                "the security officer's approval covers holders {:?} at threshold {}, but key {key_id} would move to \
                 {committee:?} at threshold {} (did the membership change meanwhile?); run the command again",
                a.committee, a.threshold, target.threshold
            )))
        }
        None if moves => {
            return Err(Error::Forbidden(format!(
                "key {key_id} is held by {:?} at threshold {}; moving it to {committee:?} at threshold {} needs the \
                 security officer's signed approval, which the nodes check",
                key.holders, key.threshold, target.threshold
            )))
        }
        _ => {}
    }
    tracing::info!(key = %key_id, epoch = key.epoch, holders = ?key.holders, committee = ?target.committee, threshold = target.threshold, "resharing a key");
    let done = reshare(pool, &key, &target).await?;
    registry.insert(done.key.clone());
    Ok(done.key)
}

/// Whether two staged versions are the same key: who holds it and how (not its metadata, which each holder keeps
/// its own through a reshare).
fn same_key(a: &KeyInfo, b: &KeyInfo) -> bool {
    a.id == b.id
        && a.epoch == b.epoch
        && a.algorithm == b.algorithm
        && a.public_key == b.public_key
        && a.public_package == b.public_package
        && a.threshold == b.threshold
        && a.holders == b.holders
}

/// Reshares `key` (as the registry knows it, at its current epoch) to `target`.
pub async fn reshare(pool: &NodePool, key: &KeyInfo, target: &Target) -> Result<Reshared, Error> {
    let committee: Vec<NodeId> = {
        let set: BTreeSet<NodeId> = target.committee.iter().copied().collect();
        set.into_iter().collect()
    };
    if target.threshold < 2 || usize::from(target.threshold) > committee.len() {
        return Err(Error::BadRequest(format!(
            "threshold {} is not possible with {} holder(s)",
            target.threshold,
            committee.len()
        )));
    }
    let ecdsa = key.algorithm.ecdsa_curve().is_some();
    if ecdsa {
        // A node's ban is its word against another: the two are kept apart, neither is left out alone.
        if let Some((by, b)) = target
            .banned
            .iter()
            .find(|(by, b)| committee.contains(by) && committee.contains(b))
        {
            return Err(Error::Banned {
                message: format!(
                    "node {by} has banned node {b} from OT-based protocols, so they cannot hold an ECDSA key \
                     together: clear the ban (vhsm node unban {b}) or leave one of them out"
                ),
                culprits: vec![*by, *b],
            });
        }
    }

    // Who is there: every new holder must be, and enough current holders to deal.
    let mut probe: Vec<NodeId> = key.holders.iter().chain(&committee).copied().collect();
    probe.sort_unstable();
    probe.dedup();
    let answers = pool
        .call_each(&probe, |_| NodeRequest::Status, PROBE_TIMEOUT)
        .await;
    let alive: BTreeSet<NodeId> = answers
        .into_iter()
        .filter(|(_, a)| matches!(a, Ok(NodeResponse::Status(_))))
        .map(|(n, _)| n)
        .collect();
    let missing: Vec<NodeId> = committee
        .iter()
        .copied()
        .filter(|c| !alive.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(unavailable(
            format!("every new holder must take part; node(s) {missing:?} did not answer"),
            missing,
        ));
    }
    let dealers: Vec<NodeId> = key
        .holders
        .iter()
        .copied()
        .filter(|h| alive.contains(h))
        .filter(|h| !target.avoid_dealers.contains(h))
        .filter(|h| {
            !(ecdsa
                && target.banned.iter().any(|(by, b)| {
                    (by == h && committee.contains(b)) || (b == h && committee.contains(by))
                }))
        })
        .collect();
    if dealers.len() < usize::from(key.threshold) {
        let absent: Vec<NodeId> = key
            .holders
            .iter()
            .copied()
            .filter(|h| !dealers.contains(h))
            .collect();
        return Err(unavailable(
            format!(
                "key {} needs {} dealers among its holders {:?}; only {dealers:?} can deal",
                key.id, key.threshold, key.holders
            ),
            absent,
        ));
    }
    let mut participants: Vec<NodeId> = dealers.iter().chain(&committee).copied().collect();
    participants.sort_unstable();
    participants.dedup();

    let session = SessionId::random(&mut OsRng);
    let next_epoch = key.epoch + 1;
    tracing::info!(key = %key.id, %session, ?dealers, ?committee, threshold = target.threshold, epoch = next_epoch, "reshare: dealing");
    let answers = pool
        .call_each(
            &participants,
            |_| NodeRequest::Reshare {
                session,
                key: key.clone(),
                dealers: dealers.clone(),
                committee: committee.clone(),
                threshold: target.threshold,
                approval: target.approval.clone(),
            },
            session_timeout(key),
        )
        .await;
    let mut staged: Vec<(NodeId, KeyInfo)> = Vec::new();
    let mut excluded = BTreeSet::new();
    let mut failures: Vec<(NodeId, String)> = Vec::new();
    let mut culprits = BTreeSet::new();
    for (node, answer) in answers {
        match answer {
            Ok(NodeResponse::Reshared {
                staged: s,
                excluded: e,
            }) => {
                excluded.extend(e);
                match s {
                    Some(info) if committee.contains(&node) => staged.push((node, info)),
                    None if !committee.contains(&node) => {}
                    _ => failures.push((node, "answered for the wrong role".into())),
                }
            }
            Ok(_) => failures.push((node, "answered something other than a reshare".into())),
            Err(NodeCallError::Refused { node, error }) => {
                if matches!(error.kind, ErrorKind::Misbehaviour | ErrorKind::Banned) {
                    culprits.extend(error.nodes.iter().copied());
                }
                failures.push((node, error.to_string()));
            }
            Err(e) => failures.push((e.node(), e.to_string())),
        }
    }
    let expected = staged.first().map(|(_, info)| info.clone());
    let consistent = expected.as_ref().is_some_and(|first| {
        first.epoch == next_epoch
            && first.public_key == key.public_key
            && first.holders == committee
            && first.threshold == target.threshold
            && staged.iter().all(|(_, info)| same_key(info, first))
    });
    if !failures.is_empty() || staged.len() != committee.len() || !consistent {
        abort(pool, key, &committee, next_epoch).await;
        let misbehaved = !culprits.is_empty();
        let mut named: Vec<NodeId> = culprits.into_iter().collect();
        if named.is_empty() {
            named = failures.iter().map(|(n, _)| *n).collect();
        }
        let detail: Vec<String> = failures
            .iter()
            .map(|(n, why)| format!("node {n}: {why}"))
            .collect();
        let message = if detail.is_empty() {
            "the new holders did not stage the same key".to_string()
        } else {
            detail.join("; ")
        };
        tracing::warn!(key = %key.id, %session, nodes = ?named, %message, "reshare failed; the key stays as it was");
        let message = format!(
            "reshare of key {} failed, the key is unchanged (epoch {}): {message}",
            key.id, key.epoch
        );
        return Err(if misbehaved {
            Error::Misbehaviour {
                message,
                culprits: named,
            }
        } else {
            Error::Unavailable {
                message,
                nodes: named,
            }
        });
    }
    let Some(staged_key) = expected else {
        return Err(Error::Internal("no staged key".into()));
    };
    // The new holders agree on who holds the key and how; its metadata is what the holders keep (each its own:
    // a reshare does not change it), which the registry takes from them.
    let new_key = KeyInfo {
        epoch: staged_key.epoch,
        holders: staged_key.holders.clone(),
        threshold: staged_key.threshold,
        public_package: staged_key.public_package.clone(),
        ..key.clone()
    };

    // Commit: first on one holder — its acknowledgement makes the new epoch the key's —, then on the others.
    tracing::info!(key = %key.id, %session, epoch = next_epoch, "reshare: every new holder staged the same key; committing");
    crate::faults::exit_if("reshare-staged");
    let commit = |_| NodeRequest::CommitReshare {
        key_id: key.id,
        epoch: next_epoch,
    };
    let is_committed = |a: &Result<NodeResponse, NodeCallError>| matches!(a, Ok(NodeResponse::Key(k)) if k.epoch == next_epoch);
    let mut committed: Vec<NodeId> = Vec::new();
    for node in &committee {
        if is_committed(&pool.call(*node, &commit(*node), COMMIT_TIMEOUT).await) {
            committed.push(*node);
            break;
        }
    }
    if !committed.is_empty() {
        crate::faults::exit_if("reshare-first-commit");
        let rest: Vec<NodeId> = committee
            .iter()
            .copied()
            .filter(|c| !committed.contains(c))
            .collect();
        let answers = pool.call_each(&rest, commit, COMMIT_TIMEOUT).await;
        committed.extend(
            answers
                .iter()
                .filter(|(_, a)| is_committed(a))
                .map(|(n, _)| *n),
        );
    }
    if committed.is_empty() {
        // Nobody committed: the decision is not made; a later reconciliation rolls the staged shares back.
        return Err(unavailable(
            format!(
                "no new holder confirmed the commit of key {}; it stays at epoch {} until the nodes answer again",
                key.id, key.epoch
            ),
            committee.clone(),
        ));
    }
    let late: Vec<NodeId> = committee
        .iter()
        .copied()
        .filter(|c| !committed.contains(c))
        .collect();
    if !late.is_empty() {
        tracing::warn!(key = %key.id, nodes = ?late, "these new holders missed the commit; they commit on first use or at the next reconciliation");
    }

    // Old holders that left delete their shares.
    let leaving: Vec<NodeId> = key
        .holders
        .iter()
        .copied()
        .filter(|h| !committee.contains(h))
        .collect();
    let mut not_yet_deleted = Vec::new();
    if !leaving.is_empty() {
        let answers = pool
            .call_each(
                &leaving,
                |_| NodeRequest::ReleaseShare {
                    key_id: key.id,
                    epoch: new_key.epoch,
                },
                COMMIT_TIMEOUT,
            )
            .await;
        for (node, answer) in answers {
            if answer.is_err() {
                not_yet_deleted.push(node);
            }
        }
        if !not_yet_deleted.is_empty() {
            tracing::warn!(key = %key.id, nodes = ?not_yet_deleted, "these former holders could not be told to delete their old shares now; the coordinator retries when they answer");
        }
    }
    let excluded: Vec<NodeId> = excluded.into_iter().collect();
    if !excluded.is_empty() {
        tracing::warn!(key = %key.id, %session, dealers = ?excluded, "reshare: dealer(s) EXCLUDED — their sub-shares or commitments did not check out (the nodes' logs say which and who accused them); the reshare completed without them; investigate these nodes");
    }
    tracing::info!(key = %key.id, %session, epoch = next_epoch, holders = ?new_key.holders, threshold = new_key.threshold, excluded = ?excluded, "key reshared");
    Ok(Reshared {
        key: new_key,
        dealers,
        excluded,
        not_yet_deleted,
    })
}

/// Drops the staged shares of `epoch` on the new committee (best effort; the registry's reconciliation finishes
/// the job for nodes that do not answer now).
async fn abort(pool: &NodePool, key: &KeyInfo, committee: &[NodeId], epoch: u64) {
    pool.call_each(
        committee,
        |_| NodeRequest::AbortReshare {
            key_id: key.id,
            epoch,
        },
        COMMIT_TIMEOUT,
    )
    .await;
}
