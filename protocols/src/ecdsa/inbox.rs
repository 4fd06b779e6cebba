//! Buffering of received round messages until a round is complete: messages of later rounds may arrive
//! before the current round is over (the network reorders), and every (round, kind, sender) slot is filled at
//! most once.

use std::collections::{BTreeMap, BTreeSet};

use super::EcdsaBody;
use crate::error::ProtocolError;
use crate::party::ParticipantId;

/// Whether a round payload was broadcast or sent privately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// [`EcdsaBody::Broadcast`].
    Broadcast,
    /// [`EcdsaBody::Private`].
    Private,
}

impl Kind {
    /// The kind of `body`.
    pub(crate) fn of(body: &EcdsaBody) -> Self {
        match body {
            EcdsaBody::Broadcast(_) => Kind::Broadcast,
            EcdsaBody::Private(_) => Kind::Private,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Broadcast => "broadcast",
            Kind::Private => "private",
        }
    }
}

/// The received payloads of one party, by round, kind and sender.
pub(crate) struct Inbox {
    /// The (round, kind) pairs this protocol uses.
    expected: &'static [(u8, Kind)],
    /// Payloads not consumed yet.
    slots: BTreeMap<(u8, Kind), BTreeMap<ParticipantId, EcdsaBody>>,
    /// Every (round, kind, sender) ever received, so that a duplicate is caught even after its round was
    /// consumed.
    seen: BTreeSet<(u8, Kind, ParticipantId)>,
}

impl Inbox {
    /// An empty inbox for a protocol that uses `expected`.
    pub(crate) fn new(expected: &'static [(u8, Kind)]) -> Self {
        Inbox {
            expected,
            slots: BTreeMap::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Stores `body` of `round` from `from` (a participant other than the receiver, checked by the caller).
    /// A kind this round does not use, or a second payload of the same kind and round, blames `from`.
    pub(crate) fn insert(
        &mut self,
        from: ParticipantId,
        round: u8,
        body: EcdsaBody,
    ) -> Result<(), ProtocolError> {
        let kind = Kind::of(&body);
        if !self.expected.contains(&(round, kind)) {
            return Err(ProtocolError::misbehaviour(
                [from],
                format!(
                    "sent a {} message for round {round}, which has none",
                    kind.name()
                ),
            ));
        }
        if !self.seen.insert((round, kind, from)) {
            return Err(ProtocolError::misbehaviour(
                [from],
                format!("sent a second {} message for round {round}", kind.name()),
            ));
        }
        self.slots
            .entry((round, kind))
            .or_default()
            .insert(from, body);
        Ok(())
    }

    /// How many payloads of (round, kind) are held.
    pub(crate) fn count(&self, round: u8, kind: Kind) -> usize {
        self.slots.get(&(round, kind)).map_or(0, BTreeMap::len)
    }

    /// The payloads of (round, kind), by sender, without consuming them.
    pub(crate) fn peek(
        &self,
        round: u8,
        kind: Kind,
    ) -> Option<&BTreeMap<ParticipantId, EcdsaBody>> {
        self.slots.get(&(round, kind))
    }

    /// Takes the payloads of (round, kind), by sender.
    pub(crate) fn take(&mut self, round: u8, kind: Kind) -> BTreeMap<ParticipantId, EcdsaBody> {
        self.slots.remove(&(round, kind)).unwrap_or_default()
    }
}

/// The bytes of a payload, whatever its kind.
pub(crate) fn payload(body: &EcdsaBody) -> &[u8] {
    match body {
        EcdsaBody::Broadcast(b) => b,
        EcdsaBody::Private(b) => b.expose(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::SecretBytes;

    const ROUNDS: &[(u8, Kind)] = &[(1, Kind::Private), (2, Kind::Broadcast)];

    #[test]
    fn duplicates_and_unexpected_kinds_blame_the_sender() {
        let mut inbox = Inbox::new(ROUNDS);
        let private = || EcdsaBody::Private(SecretBytes::new(vec![1]));
        inbox.insert(2, 1, private()).unwrap();
        assert_eq!(inbox.count(1, Kind::Private), 1);
        assert_eq!(inbox.insert(2, 1, private()).unwrap_err().culprits(), &[2]);
        assert_eq!(
            inbox
                .insert(3, 1, EcdsaBody::Broadcast(vec![]))
                .unwrap_err()
                .culprits(),
            &[3]
        );
        assert_eq!(inbox.insert(3, 9, private()).unwrap_err().culprits(), &[3]);
        let taken = inbox.take(1, Kind::Private);
        assert_eq!(taken.len(), 1);
        assert_eq!(payload(&taken[&2]), &[1]);
        // Still a duplicate after the round was consumed.
        assert_eq!(inbox.insert(2, 1, private()).unwrap_err().culprits(), &[2]);
    }
}
