//! Distributed key generation, orchestrated: every node of the cluster becomes a holder of the new key.
//!
//! The coordinator starts the same session on every holder; the holders run the DKG among themselves over the mesh
//! and each answers the public key package. Only when every holder answered, and all answers are identical, does
//! the coordinator tell them to make the key active. Otherwise it tells every holder to delete the pending share,
//! so a generation interrupted anywhere leaves no half key.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rand_core::OsRng;
use vhsm_core::{Algorithm, KeyId, KeyInfo, KeyState};
use vhsm_protocols::{
    ecdsa::share::EcdsaPublicKeys, frost::share::FrostPublicKeys,
    split_aes::share::SplitAesPublicKeys, SessionId,
};
use vhsm_wire::{
    node_api::{NodeRequest, NodeResponse},
    ErrorKind, NodeId,
};

use crate::error::Error;
use crate::{
    nodes::{NodeCallError, NodePool},
    registry::Registry,
    signing::Signer,
};

/// How long a holder may take to finish the DKG: the node's own limit and a margin, so that the node answers first.
fn generate_timeout(algorithm: Algorithm) -> Duration {
    vhsm_core::limits::keygen_timeout(algorithm) + Duration::from_secs(10)
}
/// How long a holder may take to commit or abort.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks a key label: at most 128 printable characters (empty is allowed: PKCS#11's default label is empty).
pub fn check_label(label: &str) -> Result<(), Error> {
    if label.chars().count() > 128 || label.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "a key label must be at most 128 printable characters".into(),
        ));
    }
    Ok(())
}

/// The nodes a failed key generation could not do without: those the coordinator could not reach, and among those
/// the holders said they could not reach, the ones named by the most holders. A node cut off from its peers says
/// it cannot reach any of them while each of them names only it: it is the one to blame, not every node it named
/// (a tie — two holders each naming only the other — names both).
fn unreachable_of(failures: &[NodeCallError]) -> Vec<NodeId> {
    let mut unreachable: BTreeSet<NodeId> = failures
        .iter()
        .filter_map(|f| match f {
            NodeCallError::Unreachable { node, .. } => Some(*node),
            NodeCallError::Refused { .. } => None,
        })
        .collect();
    // Accused node -> the holders that said they could not reach it.
    let mut accusers: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
    for f in failures {
        if let NodeCallError::Refused { node, error } = f {
            if error.kind == ErrorKind::Unavailable {
                for accused in error.nodes.iter().filter(|n| *n != node) {
                    accusers.entry(*accused).or_default().insert(*node);
                }
            }
        }
    }
    let most = accusers.values().map(|a| a.len()).max().unwrap_or(0);
    unreachable.extend(
        accusers
            .iter()
            .filter(|(_, by)| by.len() == most)
            .map(|(node, _)| *node),
    );
    unreachable.into_iter().collect()
}

fn failure_error(failures: &[NodeCallError]) -> Error {
    let culprits: Vec<NodeId> = failures
        .iter()
        .filter_map(|f| match f {
            NodeCallError::Refused { error, .. }
                if matches!(error.kind, ErrorKind::Misbehaviour | ErrorKind::Banned) =>
            {
                Some(error.nodes.clone())
            }
            _ => None,
        })
        .flatten()
        .collect();
    let unreachable = unreachable_of(failures);
    let details: Vec<String> = failures.iter().map(ToString::to_string).collect();
    if !culprits.is_empty() {
        let mut culprits = culprits;
        culprits.sort_unstable();
        culprits.dedup();
        Error::Misbehaviour {
            message: format!(
                "key generation aborted, node(s) {culprits:?} misbehaved: {}",
                details.join("; ")
            ),
            culprits,
        }
    } else if !unreachable.is_empty() {
        Error::Unavailable {
            message: format!(
                "key generation needs every node of the cluster; unreachable: {unreachable:?} ({})",
                details.join("; ")
            ),
            nodes: unreachable,
        }
    } else {
        Error::Internal(format!("key generation failed: {}", details.join("; ")))
    }
}

/// Generates a key on every node of the cluster's membership now, with its threshold; returns it once active.
pub async fn create_key(
    pool: &NodePool,
    registry: &Registry,
    algorithm: Algorithm,
    label: &str,
    attributes: Vec<(u64, Vec<u8>)>,
    state: KeyState,
    signer: &Signer,
) -> Result<KeyInfo, Error> {
    check_label(label)?;
    if !matches!(state, KeyState::Active | KeyState::PreActive) {
        return Err(Error::BadRequest(format!(
            "a new key starts active or pre-active, not {state}"
        )));
    }
    // Holders and threshold from one look at the membership.
    let membership = pool.membership();
    let holders = membership.ids();
    let threshold = membership.threshold;
    let key = KeyInfo {
        id: KeyId::random(&mut OsRng),
        label: label.to_string(),
        algorithm,
        public_key: Vec::new(),
        public_package: Vec::new(),
        threshold,
        holders: holders.clone(),
        state: KeyState::Pending,
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        epoch: 0,
        revision: 0,
        attributes,
    };
    let session = SessionId::random(&mut OsRng);
    tracing::info!(key = %key.id, %label, %algorithm, threshold, ?holders, %session, "generating key");

    // Collect every holder's answer; at the first failure, abort the generation on every holder at once, so that
    // the others stop waiting for the failed one and delete whatever they stored.
    let timeout = generate_timeout(algorithm);
    let mut calls: futures_util::stream::FuturesUnordered<_> = holders
        .iter()
        .map(|&node| {
            let request = NodeRequest::GenerateKey {
                session,
                key: key.clone(),
            };
            async move { (node, pool.call(node, &request, timeout).await) }
        })
        .collect();
    let mut packages = Vec::new();
    let mut failures = Vec::new();
    let mut aborted = false;
    while let Some((node, answer)) = futures_util::StreamExt::next(&mut calls).await {
        match answer {
            Ok(NodeResponse::KeyGenerated { public_keys }) => packages.push((node, public_keys)),
            Ok(_) => failures.push(NodeCallError::Unreachable {
                node,
                reason: "unexpected answer".into(),
            }),
            Err(e) => failures.push(e),
        }
        if !failures.is_empty() && !aborted {
            aborted = true;
            tracing::warn!(key = %key.id, failure = %failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                "key generation failed on a holder; aborting it on every holder");
            abort_everywhere(pool, &holders, key.id).await;
        }
    }
    let agreed = if failures.is_empty() {
        agree(algorithm, &packages)
    } else {
        Err(failure_error(&failures))
    };
    let public = match agreed {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(key = %key.id, error = %e, "key generation failed; deleting pending shares");
            abort_everywhere(pool, &holders, key.id).await;
            return Err(e);
        }
    };

    crate::faults::exit_if("keygen-stored");
    let mut key = key;
    key.public_key = public.public_key;
    key.public_package = public.package;
    // The pairwise consistency test, on the still pending key: it is reported created only if it works.
    if let Err(e) = pairwise_test(pool, signer, &key).await {
        tracing::error!(key = %key.id, error = %e, "the new key FAILED its pairwise consistency test; deleting it");
        abort_everywhere(pool, &holders, key.id).await;
        return Err(e.context(|m| {
            format!("key generation failed its pairwise consistency test ({m}); nothing was kept")
        }));
    }
    let commits = pool
        .call_each(
            &holders,
            |_| NodeRequest::CommitKey {
                key_id: key.id,
                state,
            },
            FINISH_TIMEOUT,
        )
        .await;
    let failed: Vec<NodeId> = commits
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| *n)
        .collect();
    if failed.len() > holders.len() - usize::from(threshold) {
        // Too few holders have it active to ever sign: retire it everywhere rather than leave a key that half works.
        abort_everywhere(pool, &holders, key.id).await;
        return Err(Error::Unavailable {
            message: format!(
                "key generation could not be committed: node(s) {failed:?} did not confirm"
            ),
            nodes: failed,
        });
    }
    if !failed.is_empty() {
        tracing::warn!(key = %key.id, ?failed, "key active, but these holders did not confirm; they keep it pending");
    }
    key.state = state;
    registry.insert(key.clone());
    tracing::info!(key = %key.id, public_key = %hex::encode(&key.public_key), %state, "key generated");
    Ok(key)
}

/// Has every holder drop its pending share of `key_id` (the generation failed).
async fn abort_everywhere(pool: &NodePool, holders: &[NodeId], key_id: KeyId) {
    pool.call_each(
        holders,
        |_| NodeRequest::AbortKey { key_id },
        FINISH_TIMEOUT,
    )
    .await;
}

/// Signs the test message with the new key (or encrypts and decrypts it) and checks the result with the public key.
async fn pairwise_test(pool: &NodePool, signer: &Signer, key: &KeyInfo) -> Result<(), Error> {
    let started = std::time::Instant::now();
    if key.algorithm == Algorithm::SplitAes256 {
        crate::encryption::pairwise_test(pool, key).await?;
    } else {
        let message = vhsm_protocols::pairwise::message(&key.id);
        let signed = signer.sign(pool, key, &message, None).await?;
        let valid = match key.algorithm.ecdsa_curve() {
            Some(curve) => vhsm_protocols::ecdsa::verify_prehash(
                curve,
                &key.public_key,
                &vhsm_protocols::pairwise::ecdsa_digest(&key.id),
                &signed.signature,
            ),
            None => match (
                <[u8; 32]>::try_from(key.public_key.as_slice()),
                <[u8; 64]>::try_from(signed.signature.as_slice()),
            ) {
                (Ok(pk), Ok(sig)) => vhsm_protocols::frost::verify_signature(&pk, &message, &sig),
                _ => false,
            },
        };
        if !valid {
            return Err(Error::Misbehaviour {
                message: "the test signature does not verify with the new public key".into(),
                // One of the holders, but which cannot be told from the result.
                culprits: Vec::new(),
            });
        }
    }
    tracing::info!(key = %key.id, ms = started.elapsed().as_millis(), "pairwise consistency test passed");
    Ok(())
}

/// A key's public key and public key package, as the holders agreed on them.
struct AgreedPublic {
    public_key: Vec<u8>,
    package: Vec<u8>,
}

/// Checks that every holder reported the same public key package, and that it is well formed.
fn agree(algorithm: Algorithm, packages: &[(NodeId, Vec<u8>)]) -> Result<AgreedPublic, Error> {
    let Some((first_node, first)) = packages.first() else {
        return Err(Error::Internal("no holder answered".into()));
    };
    let disagreeing: Vec<NodeId> = packages
        .iter()
        .filter(|(_, p)| p != first)
        .map(|(n, _)| *n)
        .collect();
    if !disagreeing.is_empty() {
        return Err(Error::Misbehaviour {
            message: format!(
                "holders disagree on the new key's public keys: {disagreeing:?} differ from node {first_node}"
            ),
            culprits: disagreeing,
        });
    }
    let public_key = match algorithm.ecdsa_curve() {
        None if algorithm == Algorithm::SplitAes256 => {
            SplitAesPublicKeys::from_bytes(first).map(|p| p.group_public_key().to_vec())
        }
        None => FrostPublicKeys::from_bytes(first).map(|p| p.group_public_key().to_vec()),
        Some(curve) => EcdsaPublicKeys::from_bytes(first).and_then(|p| {
            if p.curve() == curve {
                Ok(p.public_key_sec1())
            } else {
                Err(vhsm_protocols::ProtocolError::InvalidParameters(format!(
                    "a key on {}",
                    p.curve().name()
                )))
            }
        }),
    }
    .map_err(|e| Error::Misbehaviour {
        message: format!("node {first_node} sent malformed public keys: {e}"),
        culprits: vec![*first_node],
    })?;
    Ok(AgreedPublic {
        public_key,
        package: first.clone(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use vhsm_wire::WireError;

    use super::*;

    fn cannot_reach(node: NodeId, others: Vec<NodeId>) -> NodeCallError {
        let mut error = WireError::new(ErrorKind::Unavailable, "cannot reach peers");
        error.nodes = others;
        NodeCallError::Refused { node, error }
    }

    /// Issue 15 (found by the partition tests): node 3 cut off from its peers names nodes 1 and 2, each of which
    /// names node 3 alone; node 3 is blamed, not the two that reach each other.
    #[test]
    fn the_node_most_holders_cannot_reach_is_blamed_not_those_it_names() {
        let failures = vec![
            cannot_reach(1, vec![3]),
            cannot_reach(3, vec![1, 2]),
            cannot_reach(2, vec![3]),
        ];
        assert_eq!(unreachable_of(&failures), vec![3]);
        // A tie (two holders naming only each other) names both; a node the coordinator could not reach is always
        // named.
        let tie = vec![cannot_reach(1, vec![2]), cannot_reach(2, vec![1])];
        assert_eq!(unreachable_of(&tie), vec![1, 2]);
        let mut more = failures;
        more.push(NodeCallError::Unreachable {
            node: 4,
            reason: "timeout".into(),
        });
        assert_eq!(unreachable_of(&more), vec![3, 4]);
        assert!(matches!(
            failure_error(&more),
            Error::Unavailable { nodes, .. } if nodes == vec![3, 4]
        ));
    }
}
