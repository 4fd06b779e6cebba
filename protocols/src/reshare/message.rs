//! The messages of a reshare run ([`ReshareMessage`]). They are the same for every group: points and scalars
//! travel as their canonical encodings, and the group is bound into the run's context digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ProtocolError;
use crate::party::{ParticipantId, SessionId};
use crate::secret::SecretBytes;

/// Version byte of [`ReshareMessage`]. Version 2 added the dispute round ([`ReshareBody::Answer`]); a
/// version-1 message (of the three-round protocol without it) is refused.
pub const RESHARE_MESSAGE_VERSION: u8 = 2;

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
    /// sender received it (the echo of round 2), and — from a dealer that was accused — its **answers**: for
    /// every new holder that complained about it, the sub-share it dealt that holder, revealed to everyone so
    /// that everyone can check it against its commitments (the dispute round, see [`super`]).
    Answer {
        /// Digest of every participant's complaint list, by participant. Decodes only with its keys strictly
        /// increasing.
        #[serde(deserialize_with = "crate::canonical::map")]
        echo: BTreeMap<ParticipantId, [u8; 32]>,
        /// The sender's answers, by accuser: the sub-share (32-byte scalar) it dealt that accuser. Empty from a
        /// participant nobody accused. Decodes only with its keys strictly increasing. Disclosed to every
        /// participant (and only to them: the channel is confidential), and wiped with the run's secrets.
        #[serde(deserialize_with = "crate::canonical::map")]
        answers: BTreeMap<ParticipantId, SecretBytes>,
    },
    /// Round 4, from every participant to all: the digest of every participant's answers as the sender
    /// received them (the echo of round 3, over [`answers_digest`]). Decodes only with its keys strictly
    /// increasing.
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

/// Domain separation tag of [`answers_digest`].
pub const ANSWERS_DIGEST_DOMAIN: &[u8] = b"vhsm/reshare/answers/v1";

/// The digest of a participant's answers, as covered by the round-4 echo: `SHA-256(domain ‖ u32 #answers ‖
/// (u16 accuser ‖ u32 len ‖ revealed bytes)*)`, integers big-endian, accusers ascending. The echo covers this
/// digest rather than the revealed sub-shares themselves, so that they are held only in the run's secrets
/// (wiped when it ends), not in the echo's buffers.
pub fn answers_digest(answers: &BTreeMap<ParticipantId, SecretBytes>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ANSWERS_DIGEST_DOMAIN);
    h.update(
        u32::try_from(answers.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for (accuser, revealed) in answers {
        h.update(accuser.to_be_bytes());
        h.update(
            u32::try_from(revealed.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        h.update(revealed.expose());
    }
    h.finalize().into()
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

    #[test]
    fn answers_decode_only_with_both_maps_strictly_increasing_and_are_redacted() {
        let session = SessionId([6; 32]);
        let answer = |answers: BTreeMap<ParticipantId, SecretBytes>| {
            ReshareMessage::new(
                session,
                ReshareBody::Answer {
                    echo: BTreeMap::new(),
                    answers,
                },
            )
        };
        // The echo map: `… ‖ echo ‖ empty answers (0)`.
        let bytes = answer(BTreeMap::new()).to_bytes().unwrap();
        let prefix = &bytes[..bytes.len() - 2];
        check_message_map(
            ReshareMessage::from_bytes,
            ReshareMessage::to_bytes,
            |entries| [prefix, &map_bytes(entries), &[0u8][..]].concat(),
        );
        // The answers map: `… ‖ empty echo (0) ‖ answers`; an answer is a byte string, encoded as a
        // 32-byte array would be once prefixed with its length.
        let prefix = &bytes[..bytes.len() - 1];
        let with = |entries: &[(ParticipantId, [u8; 32])]| {
            let mut out = prefix.to_vec();
            out.extend(postcard::to_allocvec(&(entries.len() as u32)).unwrap());
            for (k, v) in entries {
                out.extend(postcard::to_allocvec(k).unwrap());
                out.extend(postcard::to_allocvec(&v.to_vec()).unwrap());
            }
            out
        };
        let canonical = with(&[(1, [1; 32]), (300, [3; 32])]);
        let decoded = ReshareMessage::from_bytes(&canonical).unwrap();
        assert_eq!(decoded.to_bytes().unwrap(), canonical);
        assert!(format!("{decoded:?}").contains("<redacted>"));
        assert!(!format!("{decoded:?}").contains("[3, 3, 3"));
        for bad in [
            with(&[(300, [3; 32]), (1, [1; 32])]),
            with(&[(1, [1; 32]), (1, [9; 32])]),
        ] {
            assert!(matches!(
                ReshareMessage::from_bytes(&bad),
                Err(ProtocolError::Encoding(_))
            ));
        }
        // The digest covers every accuser and every byte of every answer.
        let one: BTreeMap<_, _> = [(1, SecretBytes::new(vec![1; 32]))].into();
        let other_value: BTreeMap<_, _> = [(1, SecretBytes::new(vec![2; 32]))].into();
        let other_accuser: BTreeMap<_, _> = [(2, SecretBytes::new(vec![1; 32]))].into();
        let digests = [
            answers_digest(&BTreeMap::new()),
            answers_digest(&one),
            answers_digest(&other_value),
            answers_digest(&other_accuser),
        ];
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn version_1_messages_are_refused() {
        let mut bytes = ReshareMessage::new(SessionId([1; 32]), ReshareBody::Echo(BTreeMap::new()))
            .to_bytes()
            .unwrap();
        bytes[0] = 1;
        assert!(matches!(
            ReshareMessage::from_bytes(&bytes),
            Err(ProtocolError::UnsupportedVersion(1))
        ));
    }
}
