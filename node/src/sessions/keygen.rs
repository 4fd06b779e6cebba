//! Distributed key generation on this node, with the other holders of the new key, over the mesh.
//!
//! The coordinator asks every holder to start the same session; each node runs the FROST DKG state machine,
//! exchanging its messages directly with the other holders (secret round-2 shares never pass through the
//! coordinator), stores its share sealed as *pending*, and answers the public key package. The coordinator makes
//! the key active only when every holder answered the same public keys.

use std::time::Duration;

use rand_core::OsRng;
use vhsm_protocols::{
    frost::dkg::{DkgParams, FrostDkg},
    Outgoing, Protocol, ProtocolError, Recipient, SessionId,
};
use vhsm_wire::{
    messages::{MeshMessage, MeshPayload},
    Algorithm, ErrorKind, KeyInfo, KeyState, NodeId, WireError,
};

use crate::{mesh::Mesh, store::ShareStore};

/// How long a key generation may take on this node before it gives up.
pub const KEYGEN_TIMEOUT: Duration = Duration::from_secs(30);

fn protocol_error(e: ProtocolError) -> WireError {
    match e.culprits() {
        [] => WireError::new(ErrorKind::BadRequest, format!("key generation: {e}")),
        culprits => WireError {
            kind: ErrorKind::Misbehaviour,
            message: format!("key generation aborted: {e}"),
            nodes: culprits.to_vec(),
        },
    }
}

async fn send_all(
    mesh: &Mesh,
    me: NodeId,
    holders: &[NodeId],
    session: SessionId,
    outgoing: Vec<Outgoing<vhsm_protocols::frost::dkg::DkgMessage>>,
) -> Result<(), WireError> {
    for out in outgoing {
        let targets: Vec<NodeId> = match out.to {
            Recipient::All => holders.iter().copied().filter(|h| *h != me).collect(),
            Recipient::One(id) => vec![id],
        };
        let message = MeshMessage {
            session,
            payload: MeshPayload::FrostDkg(out.message),
        };
        let sends = targets.iter().map(|to| mesh.send(*to, &message));
        let results = futures_util::future::join_all(sends).await;
        let failed: Vec<NodeId> = results
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.peer))
            .collect();
        if !failed.is_empty() {
            return Err(WireError {
                kind: ErrorKind::Unavailable,
                message: format!("key generation: cannot reach node(s) {failed:?}"),
                nodes: failed,
            });
        }
    }
    Ok(())
}

/// Takes part in generating `key` in `session`; stores the share as pending and returns the public key package.
pub async fn generate(
    me: NodeId,
    mesh: &Mesh,
    store: &std::sync::Arc<ShareStore>,
    session: SessionId,
    mut key: KeyInfo,
) -> Result<Vec<u8>, WireError> {
    if key.algorithm != Algorithm::Ed25519 {
        return Err(WireError::new(
            ErrorKind::BadRequest,
            format!("this node cannot generate {} keys", key.algorithm),
        ));
    }
    if !key.holders.contains(&me) {
        return Err(WireError::new(
            ErrorKind::BadRequest,
            "this node is not among the key's holders",
        ));
    }
    if let Some(stranger) = key.holders.iter().find(|h| **h != me && !mesh.is_peer(**h)) {
        return Err(WireError::new(
            ErrorKind::BadRequest,
            format!("node {stranger} is not a peer of this node"),
        ));
    }
    let mut inbox = mesh.claim(session).ok_or_else(|| {
        WireError::new(
            ErrorKind::BadRequest,
            format!("session {session} is already running"),
        )
    })?;
    let mut dkg = FrostDkg::new(DkgParams {
        session,
        me,
        participants: key.holders.clone(),
        threshold: key.threshold,
    })
    .map_err(protocol_error)?;

    let run = async {
        let first = dkg.start(&mut OsRng).map_err(protocol_error)?;
        send_all(mesh, me, &key.holders, session, first).await?;
        while !dkg.is_done() {
            let Some((from, payload)) = inbox.recv().await else {
                return Err(WireError::new(ErrorKind::Internal, "session inbox closed"));
            };
            // Key generation is the only mesh protocol so far; a second one makes this match refutable.
            let MeshPayload::FrostDkg(message) = payload;
            let out = dkg
                .handle(from, message, &mut OsRng)
                .map_err(protocol_error)?;
            send_all(mesh, me, &key.holders, session, out).await?;
        }
        dkg.take_output().ok_or_else(|| {
            WireError::new(
                ErrorKind::Internal,
                "key generation finished without a share",
            )
        })
    };
    let share = tokio::time::timeout(KEYGEN_TIMEOUT, run)
        .await
        .map_err(|_| WireError {
            kind: ErrorKind::Unavailable,
            message: format!("key generation did not finish within {KEYGEN_TIMEOUT:?}"),
            nodes: Vec::new(),
        })??;

    key.public_key = share.group_public_key().to_vec();
    key.state = KeyState::Pending;
    let public_keys = share.public_keys().to_bytes();
    key.public_package = public_keys.clone();
    let store = store.clone();
    let info = key.clone();
    tokio::task::spawn_blocking(move || store.insert_pending(&info, &share))
        .await
        .map_err(|e| WireError::new(ErrorKind::Internal, format!("store task failed: {e}")))?
        .map_err(|e| {
            WireError::new(
                ErrorKind::Internal,
                format!("cannot store the new share: {e}"),
            )
        })?;
    tracing::info!(key = %key.id, label = %key.label, "key share generated and stored (pending)");
    Ok(public_keys)
}
