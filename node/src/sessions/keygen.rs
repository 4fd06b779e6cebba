//! Distributed key generation on this node, with the other holders of the new key, over the mesh.
//!
//! The coordinator asks every holder to start the same session; each node runs the key generation state machine
//! (FROST for Ed25519, the threshold-ECDSA engine for ECDSA), exchanging its messages directly with the other
//! holders (secret messages never pass through the coordinator), stores its share sealed as *pending*, and answers
//! the public key package. The coordinator makes the key active only when every holder answered the same public
//! keys; otherwise it has every holder delete its pending share, so an interrupted generation leaves no half key.

use std::sync::Arc;

use vhsm_core::{Algorithm, KeyInfo, KeyState};
use vhsm_protocols::{
    ecdsa::{Dkls23, ThresholdEcdsa},
    frost::dkg::{DkgParams, FrostDkg},
    split_aes::dkg::SplitAesDkg,
    SessionId,
};
use vhsm_wire::{mesh::MeshPayload, NodeId};

use crate::{
    mesh::Mesh,
    sessions::{
        driver::{Pace, Session},
        SessionError,
    },
    share::KeyShare,
    store::ShareStore,
};

/// The mesh session of a key generation among `holders`, whatever the scheme (`codec` says how its messages travel).
fn keygen_session<'a, C>(
    mesh: &'a Mesh,
    me: NodeId,
    holders: &'a [NodeId],
    session: SessionId,
    codec: C,
) -> Session<'a, C> {
    Session {
        mesh,
        me,
        members: holders,
        session,
        codec,
        what: "key generation",
        tamper: None,
        pace: Pace::Free,
    }
}

/// Takes part in generating `key` in `session`; stores the share as pending and returns the public key package.
pub async fn generate(
    me: NodeId,
    mesh: &Mesh,
    store: &Arc<ShareStore>,
    banned: &[NodeId],
    session: SessionId,
    mut key: KeyInfo,
) -> Result<Vec<u8>, SessionError> {
    if !key.holders.contains(&me) {
        return Err(SessionError::BadRequest(
            "this node is not among the key's holders",
        ));
    }
    if let Some(stranger) = key.holders.iter().find(|h| **h != me && !mesh.is_peer(**h)) {
        return Err(SessionError::NotAPeer(*stranger));
    }
    let params = DkgParams {
        session,
        me,
        participants: key.holders.clone(),
        threshold: key.threshold,
    };
    let timeout = vhsm_core::limits::keygen_timeout(key.algorithm);
    let failed = |source| SessionError::Protocol {
        what: "key generation",
        source,
    };
    let share = match key.algorithm.ecdsa_curve() {
        None if key.algorithm == Algorithm::SplitAes256 => {
            let dkg = SplitAesDkg::new(params).map_err(failed)?;
            let codec = (MeshPayload::SplitAesDkg, |p| match p {
                MeshPayload::SplitAesDkg(m) => Some(m),
                _ => None,
            });
            KeyShare::SplitAes(Box::new(
                keygen_session(mesh, me, &key.holders, session, codec)
                    .run(dkg, timeout)
                    .await?,
            ))
        }
        None => {
            let dkg = FrostDkg::new(params).map_err(failed)?;
            let codec = (MeshPayload::FrostDkg, |p| match p {
                MeshPayload::FrostDkg(m) => Some(m),
                _ => None,
            });
            KeyShare::Frost(Box::new(
                keygen_session(mesh, me, &key.holders, session, codec)
                    .run(dkg, timeout)
                    .await?,
            ))
        }
        Some(curve) => {
            let refused: Vec<NodeId> = key
                .holders
                .iter()
                .copied()
                .filter(|h| banned.contains(h))
                .collect();
            if !refused.is_empty() {
                return Err(SessionError::RefusesBanned {
                    what: "ECDSA key generation",
                    nodes: refused,
                });
            }
            let dkg = Dkls23::dkg(curve, params).map_err(failed)?;
            let codec = (MeshPayload::EcdsaDkg, |p| match p {
                MeshPayload::EcdsaDkg(m) => Some(m),
                _ => None,
            });
            KeyShare::Ecdsa(Arc::new(
                keygen_session(mesh, me, &key.holders, session, codec)
                    .run(dkg, timeout)
                    .await?,
            ))
        }
    };

    key.public_key = share.public_key();
    key.public_package = share.public_package();
    key.state = KeyState::Pending;
    let public_package = key.public_package.clone();
    let store = store.clone();
    let info = key.clone();
    tokio::task::spawn_blocking(move || store.insert_pending(&info, &share))
        .await
        .map_err(|source| SessionError::TaskFailed {
            task: "store",
            source,
        })?
        .map_err(|source| SessionError::Store {
            doing: "store the new share",
            source,
        })?;
    tracing::info!(key = %key.id, label = %key.label, algorithm = %key.algorithm, "key share generated and stored (pending)");
    Ok(public_package)
}
