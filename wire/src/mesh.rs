//! Node → node: the protocol messages that travel directly between nodes (never through the coordinator, so that
//! secret protocol messages are seen only by their recipient), one stream per message.

use serde::{Deserialize, Serialize};
use vhsm_protocols::{
    ecdsa::EcdsaMessage, frost::dkg::DkgMessage, reshare::ReshareMessage,
    split_aes::dkg::SplitAesDkgMessage, SessionId,
};

/// Node → node: one protocol message of a session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeshMessage {
    /// The session this message belongs to.
    pub session: SessionId,
    /// Random, chosen by the sender: a message delivered twice (resent because its acknowledgement was lost) is
    /// recognised and dropped by the receiver.
    pub id: u64,
    /// The message.
    pub payload: MeshPayload,
}

/// The protocols that run between nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MeshPayload {
    /// FROST distributed key generation.
    FrostDkg(DkgMessage),
    /// Threshold-ECDSA key generation.
    EcdsaDkg(EcdsaMessage),
    /// Threshold-ECDSA signing.
    EcdsaSign(EcdsaMessage),
    /// Split-AES key generation.
    SplitAesDkg(SplitAesDkgMessage),
    /// Verifiable resharing (every key type).
    Reshare(ReshareMessage),
    /// Threshold ECDSA after a reshare: the pairwise set-up between the new holders.
    EcdsaRefresh(EcdsaMessage),
    /// The sender gives up the session (it cannot take part: its share is unusable, a check failed), with why, so
    /// that the other members stop at once instead of waiting out the session's timeout (issue 15, item 1).
    Abort(String),
}
