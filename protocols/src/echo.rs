//! Echo broadcast: making sure every participant received the *same* broadcast payload from every sender.
//!
//! A plain "send to all" over point-to-point channels lets a sender **equivocate**: tell participant 3 one
//! thing and everyone else another. Protocols such as the FROST DKG assume a broadcast channel, so we add one
//! round of echoes on top:
//!
//! 1. every sender sends its payload to all others ([`EchoBroadcast::record_payload`] on receipt);
//! 2. once a party holds the payloads of all participants (its own included), it sends to all others an
//!    *echo*: a map sender → digest of the payload as *it* received it ([`EchoBroadcast::echo`]);
//! 3. once it holds the echoes of all others, it compares, for every sender, its own digest with the digests
//!    reported by everyone else ([`EchoBroadcast::check_agreement`]). Any difference aborts the protocol and
//!    names the sender whose payload was seen differently.
//!
//! The digest is SHA-256 over `domain tag ‖ session id ‖ sender id (u16, big-endian) ‖ payload`, so an echo
//! can be reused neither in another protocol nor in another session.
//!
//! **What this does and does not give.** Without signed messages, an echo is only the echoer's word: a lying
//! echoer can report a wrong digest and thereby make an honest sender look like an equivocator. Either way the
//! run aborts and no key is produced, so equivocation can never lead honest parties to different outputs;
//! but the blame is only reliable if echoers are honest. Use the culprits of an echo mismatch as a reason to
//! investigate, not as proof.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::error::ProtocolError;
use crate::party::{ParticipantId, SessionId};

/// A digest of one sender's payload, as one participant received it.
pub type EchoDigest = [u8; 32];

/// The state of one echo-broadcast round, for one party.
#[derive(Debug, Clone)]
pub struct EchoBroadcast {
    domain: &'static [u8],
    session: SessionId,
    me: ParticipantId,
    participants: BTreeSet<ParticipantId>,
    /// The payloads as this party received them (its own included).
    payloads: BTreeMap<ParticipantId, Vec<u8>>,
    /// The echoes received from the others.
    echoes: BTreeMap<ParticipantId, BTreeMap<ParticipantId, EchoDigest>>,
}

impl EchoBroadcast {
    /// A new round for party `me` among `participants` (which must include `me`).
    pub fn new(
        domain: &'static [u8],
        session: SessionId,
        me: ParticipantId,
        participants: impl IntoIterator<Item = ParticipantId>,
    ) -> Result<Self, ProtocolError> {
        let participants: BTreeSet<ParticipantId> = participants.into_iter().collect();
        if !participants.contains(&me) {
            return Err(ProtocolError::InvalidParameters(format!(
                "participant {me} is not in the participant set"
            )));
        }
        Ok(EchoBroadcast {
            domain,
            session,
            me,
            participants,
            payloads: BTreeMap::new(),
            echoes: BTreeMap::new(),
        })
    }

    /// The digest of `sender`'s `payload` in `session`, under `domain`.
    pub fn digest(
        domain: &[u8],
        session: &SessionId,
        sender: ParticipantId,
        payload: &[u8],
    ) -> EchoDigest {
        let mut h = Sha256::new();
        h.update(domain);
        h.update(session.0);
        h.update(sender.to_be_bytes());
        h.update(payload);
        h.finalize().into()
    }

    fn check_sender(&self, from: ParticipantId) -> Result<(), ProtocolError> {
        if self.participants.contains(&from) {
            Ok(())
        } else {
            Err(ProtocolError::misbehaviour(
                [from],
                "sender is not a participant of this session",
            ))
        }
    }

    /// Records the broadcast payload received from `from` (or this party's own, with `from == me`).
    /// A second payload from the same sender is misbehaviour.
    pub fn record_payload(
        &mut self,
        from: ParticipantId,
        payload: Vec<u8>,
    ) -> Result<(), ProtocolError> {
        self.check_sender(from)?;
        if self.payloads.contains_key(&from) {
            return Err(ProtocolError::misbehaviour(
                [from],
                "sent a second broadcast payload in the same round",
            ));
        }
        self.payloads.insert(from, payload);
        Ok(())
    }

    /// True once the payloads of all participants (own included) are held.
    pub fn has_all_payloads(&self) -> bool {
        self.payloads.len() == self.participants.len()
    }

    /// The payloads as this party received them, by sender (own included).
    pub fn payloads(&self) -> &BTreeMap<ParticipantId, Vec<u8>> {
        &self.payloads
    }

    /// This party's echo (digest of every payload it holds), once it holds all of them.
    pub fn echo(&self) -> Option<BTreeMap<ParticipantId, EchoDigest>> {
        if !self.has_all_payloads() {
            return None;
        }
        Some(
            self.payloads
                .iter()
                .map(|(sender, payload)| {
                    (
                        *sender,
                        Self::digest(self.domain, &self.session, *sender, payload),
                    )
                })
                .collect(),
        )
    }

    /// Records the echo received from `from`. An echo that does not cover exactly the participant set, a
    /// second echo, or an echo from this party itself is refused.
    pub fn record_echo(
        &mut self,
        from: ParticipantId,
        echo: BTreeMap<ParticipantId, EchoDigest>,
    ) -> Result<(), ProtocolError> {
        self.check_sender(from)?;
        if from == self.me {
            return Err(ProtocolError::State("received an echo from myself".into()));
        }
        if self.echoes.contains_key(&from) {
            return Err(ProtocolError::misbehaviour([from], "sent a second echo"));
        }
        if !echo.keys().eq(self.participants.iter()) {
            return Err(ProtocolError::misbehaviour(
                [from],
                "echo does not cover exactly the participant set",
            ));
        }
        self.echoes.insert(from, echo);
        Ok(())
    }

    /// True once the echoes of all other participants are held.
    pub fn has_all_echoes(&self) -> bool {
        self.echoes.len() + 1 == self.participants.len()
    }

    /// Compares this party's view of every payload with the views echoed by all others. On a difference,
    /// fails with [`ProtocolError::Misbehaviour`] naming every sender whose payload was seen differently.
    /// See the module documentation for what this blame is worth.
    pub fn check_agreement(&self) -> Result<(), ProtocolError> {
        let Some(mine) = self.echo() else {
            return Err(ProtocolError::State(
                "not all broadcast payloads received yet".into(),
            ));
        };
        if !self.has_all_echoes() {
            return Err(ProtocolError::State("not all echoes received yet".into()));
        }
        let culprits: BTreeSet<ParticipantId> = mine
            .iter()
            .filter(|(sender, digest)| {
                self.echoes
                    .values()
                    .any(|echo| echo.get(sender) != Some(digest))
            })
            .map(|(sender, _)| *sender)
            .collect();
        if culprits.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::misbehaviour(
                culprits,
                "equivocation: broadcast payload was not the same for every participant (echo mismatch)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const DOMAIN: &[u8] = b"test/echo";

    fn party(me: ParticipantId) -> EchoBroadcast {
        EchoBroadcast::new(DOMAIN, SessionId([7; 32]), me, [1, 2, 3]).unwrap()
    }

    #[test]
    fn agreement_and_equivocation() {
        // 2 sends "b" to 1 and "B" to 3.
        let views: [(ParticipantId, [&[u8]; 3]); 3] = [
            (1, [b"a", b"b", b"c"]),
            (2, [b"a", b"b", b"c"]),
            (3, [b"a", b"B", b"c"]),
        ];
        let mut parties: Vec<EchoBroadcast> = views
            .iter()
            .map(|(me, view)| {
                let mut p = party(*me);
                for (sender, payload) in [1, 2, 3].into_iter().zip(view.iter()) {
                    p.record_payload(sender, payload.to_vec()).unwrap();
                }
                p
            })
            .collect();
        let echoes: Vec<_> = parties.iter().map(|p| (p.me, p.echo().unwrap())).collect();
        for p in &mut parties {
            for (from, echo) in &echoes {
                if *from != p.me {
                    p.record_echo(*from, echo.clone()).unwrap();
                }
            }
            assert_eq!(p.check_agreement().unwrap_err().culprits(), &[2]);
        }
    }

    #[test]
    fn refuses_duplicates_strangers_and_partial_echoes() {
        let mut p = party(1);
        p.record_payload(2, vec![1]).unwrap();
        assert_eq!(p.record_payload(2, vec![1]).unwrap_err().culprits(), &[2]);
        assert_eq!(p.record_payload(9, vec![1]).unwrap_err().culprits(), &[9]);
        let partial: BTreeMap<_, _> = [(1, [0; 32]), (2, [0; 32])].into();
        assert_eq!(p.record_echo(3, partial).unwrap_err().culprits(), &[3]);
        assert!(p.check_agreement().is_err());
    }
}
