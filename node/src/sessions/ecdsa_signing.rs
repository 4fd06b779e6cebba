//! Threshold-ECDSA signing on this node, with the other signers chosen by the coordinator, over the mesh.
//!
//! Everything the engine keeps between its phases lives only inside the running state machine, in memory, and is
//! zeroized when the session ends, whether it succeeded or not; an aborted session is never resumed: the
//! coordinator starts a fresh attempt with a fresh session id. A node never signs with a peer it has banned.

use std::{sync::Arc, time::Duration};

use vhsm_protocols::{
    ecdsa::{Dkls23, SignParams, ThresholdEcdsa},
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
};

/// How long one signature may take on this node.
pub const SIGN_TIMEOUT: Duration = Duration::from_secs(10);

/// What one ECDSA signing session needs.
pub struct EcdsaSignRequest<'a> {
    /// This node.
    pub me: NodeId,
    /// The session (fresh for every attempt).
    pub session: SessionId,
    /// Every signer, this node included.
    pub signers: &'a [NodeId],
    /// The value to sign.
    pub digest: [u8; 32],
    /// The peers this node refuses to sign with.
    pub banned: &'a [NodeId],
    /// Test-only: alters this node's outgoing messages.
    pub tamper: Option<&'a (dyn Fn(&mut MeshPayload) + Send + Sync)>,
}

/// Runs the signing protocol and returns the signature (r ‖ s).
pub async fn sign(
    mesh: &Mesh,
    share: &KeyShare,
    request: EcdsaSignRequest<'_>,
) -> Result<Vec<u8>, SessionError> {
    let KeyShare::Ecdsa(share) = share else {
        return Err(SessionError::BadRequest("not an ECDSA key"));
    };
    if !request.signers.contains(&request.me) {
        return Err(SessionError::BadRequest(
            "this node is not among the signers",
        ));
    }
    if let Some(stranger) = request
        .signers
        .iter()
        .find(|s| **s != request.me && !mesh.is_peer(**s))
    {
        return Err(SessionError::NotAPeer(*stranger));
    }
    let refused: Vec<NodeId> = request
        .signers
        .iter()
        .copied()
        .filter(|s| request.banned.contains(s))
        .collect();
    if !refused.is_empty() {
        return Err(SessionError::RefusesBanned {
            what: "to sign",
            nodes: refused,
        });
    }
    let signing = Dkls23::signing(
        Arc::clone(share),
        SignParams {
            session: request.session,
            me: request.me,
            signers: request.signers.to_vec(),
            digest: request.digest,
        },
    )
    .map_err(|source| SessionError::Protocol {
        what: "signing",
        source,
    })?;
    let codec = (MeshPayload::EcdsaSign, |p| match p {
        MeshPayload::EcdsaSign(m) => Some(m),
        _ => None,
    });
    let session = Session {
        mesh,
        me: request.me,
        members: request.signers,
        session: request.session,
        codec,
        what: "ECDSA signing",
        tamper: request.tamper,
        pace: Pace::PerCore,
    };
    let signature = session.run(signing, SIGN_TIMEOUT).await?;
    Ok(signature.to_bytes().to_vec())
}
