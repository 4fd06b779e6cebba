//! The messages of a reshare run ([`ReshareMessage`]). They are the same for every group: points and scalars
//! travel as their canonical encodings, and the group is bound into the run's context digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::party::{ParticipantId, SessionId};
use crate::secret::SecretBytes;

/// Version byte of [`ReshareMessage`].
pub const RESHARE_MESSAGE_VERSION: u8 = 1;

/// A reshare message. The sender is not in it: it comes from the authenticated transport.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReshareMessage {
    /// [`RESHARE_MESSAGE_VERSION`].
    pub version: u8,
    /// The run it belongs to.
    pub session: SessionId,
    /// The round and its content.
    pub body: ReshareBody,
}

impl ReshareMessage {
    /// A current-version message.
    pub fn new(session: SessionId, body: ReshareBody) -> Self {
        ReshareMessage {
            version: RESHARE_MESSAGE_VERSION,
            session,
            body,
        }
    }

    /// Encodes with postcard; the first byte is the version.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        postcard::to_allocvec(self)
            .map_err(|e| ProtocolError::Encoding(format!("reshare message: {e}")))
    }

    /// Decodes [`ReshareMessage::to_bytes`]; checks the version byte first and refuses trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        match bytes.first() {
            None => return Err(ProtocolError::Encoding("empty reshare message".into())),
            Some(&RESHARE_MESSAGE_VERSION) => {}
            Some(&v) => return Err(ProtocolError::UnsupportedVersion(v)),
        }
        let (message, rest) = postcard::take_from_bytes::<ReshareMessage>(bytes)
            .map_err(|e| ProtocolError::Encoding(format!("reshare message: {e}")))?;
        if !rest.is_empty() {
            return Err(ProtocolError::Encoding(
                "trailing bytes after reshare message".into(),
            ));
        }
        Ok(message)
    }
}

/// The rounds of a reshare (see [`super`] for the flow).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ReshareBody {
    /// Round 1, from every participant to all ([`crate::Recipient::All`]): a [`DealPayload`], encoded.
    Deal(Vec<u8>),
    /// Round 1, from a dealer to one new holder ([`crate::Recipient::One`], confidential channel only): the
    /// dealer's polynomial at the recipient's x-coordinate, a 32-byte scalar. Secret.
    SubShare(SecretBytes),
    /// Round 2, from every participant to all: the digest of every round-1 payload as the sender received it
    /// (an echo, see [`crate::echo`]), and the dealers whose sub-share to the sender did not match their
    /// commitments (ascending; empty for a participant that receives no share).
    Verdict {
        /// Digest of every participant's [`ReshareBody::Deal`] payload, by participant. Decodes only with its
        /// keys strictly increasing: a repeated or out-of-order key is a decode error.
        #[serde(deserialize_with = "crate::canonical::map")]
        echo: BTreeMap<ParticipantId, [u8; 32]>,
        /// The dealers the sender accuses, ascending.
        complaints: Vec<ParticipantId>,
    },
    /// Round 3, from every participant to all: the digest of every participant's complaint list as the
    /// sender received it (the echo of round 2). Decodes only with its keys strictly increasing.
    Echo(#[serde(deserialize_with = "crate::canonical::map")] BTreeMap<ParticipantId, [u8; 32]>),
}

/// What a participant broadcasts in round 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealPayload {
    /// The digest of the run's public parameters as the sender sees them (see [`super`]): every participant
    /// must have been given the same ones.
    pub context: [u8; 32],
    /// A dealer's Feldman commitments `g^{a_0}, …, g^{a_{t′−1}}` (canonical point encodings; `a_0` is the
    /// dealer's share); `None` from a participant that does not deal.
    pub commitments: Option<Vec<Vec<u8>>>,
}

impl DealPayload {
    /// Postcard encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        postcard::to_allocvec(self)
            .map_err(|e| ProtocolError::Encoding(format!("reshare deal payload: {e}")))
    }

    /// Decodes [`DealPayload::to_bytes`], refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        crate::ecdsa::decode(bytes)
    }
}

/// The canonical bytes of a complaint list, as covered by the round-3 echo: every id as `u16` big-endian.
pub(crate) fn complaints_payload(complaints: &[ParticipantId]) -> Vec<u8> {
    complaints.iter().flat_map(|id| id.to_be_bytes()).collect()
}

/// Parses [`complaints_payload`].
pub(crate) fn parse_complaints(payload: &[u8]) -> Vec<ParticipantId> {
    payload
        .chunks_exact(2)
        .map(|c| {
            u16::from_be_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::canonical::tests::{check_message_map, map_bytes};

    #[test]
    fn round_trips_refuses_other_versions_and_redacts() {
        let m = ReshareMessage::new(
            SessionId([3; 32]),
            ReshareBody::SubShare(SecretBytes::new(vec![0x42; 32])),
        );
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes[0], RESHARE_MESSAGE_VERSION);
        assert_eq!(
            ReshareMessage::from_bytes(&bytes)
                .unwrap()
                .to_bytes()
                .unwrap(),
            bytes
        );
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(matches!(
            ReshareMessage::from_bytes(&other),
            Err(ProtocolError::UnsupportedVersion(9))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(ReshareMessage::from_bytes(&trailing).is_err());
        assert!(format!("{m:?}").contains("redacted"));
        assert_eq!(
            parse_complaints(&complaints_payload(&[1, 300])),
            vec![1, 300]
        );
    }

    #[test]
    fn verdicts_and_echoes_decode_only_with_their_keys_strictly_increasing() {
        let session = SessionId([5; 32]);
        let echo = ReshareMessage::new(session, ReshareBody::Echo(BTreeMap::new()))
            .to_bytes()
            .unwrap();
        // The empty map is the last byte.
        let prefix = &echo[..echo.len() - 1];
        check_message_map(
            ReshareMessage::from_bytes,
            ReshareMessage::to_bytes,
            |entries| [prefix, &map_bytes(entries)].concat(),
        );
        let verdict = ReshareMessage::new(
            session,
            ReshareBody::Verdict {
                echo: BTreeMap::new(),
                complaints: vec![4],
            },
        )
        .to_bytes()
        .unwrap();
        // `… ‖ empty map (0) ‖ complaints (1, 4)`.
        let (prefix, complaints) = verdict.split_at(verdict.len() - 3);
        assert_eq!(complaints, [0, 1, 4]);
        check_message_map(
            ReshareMessage::from_bytes,
            ReshareMessage::to_bytes,
            |entries| [prefix, &map_bytes(entries), &complaints[1..]].concat(),
        );
    }
}
