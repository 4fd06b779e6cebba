//! Who takes part in a protocol run, which run it is, and the [`Protocol`] trait every party implements.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::ProtocolError;

/// A participant (node) id. Nonzero; it maps to a FROST `Identifier` through `Identifier::try_from(u16)`.
pub type ParticipantId = u16;

/// Identifies one run of a protocol. Every message carries it and every party checks it, so that messages of
/// one run can never be fed into another.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub [u8; 32]);

impl SessionId {
    /// A fresh random session id.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        SessionId(bytes)
    }

    /// The full id as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, ProtocolError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)
            .map_err(|e| ProtocolError::Encoding(format!("session id: {e}")))?;
        Ok(SessionId(bytes))
    }

    /// The first 8 bytes in hex, for logs.
    fn short_hex(&self) -> String {
        hex::encode(self.0.get(..8).unwrap_or_default())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", self.short_hex())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short_hex())
    }
}

/// Where an outgoing message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// Every other participant of the run (not the sender itself).
    All,
    /// One participant, over a confidential and authenticated channel.
    One(ParticipantId),
}

/// A message a party wants sent.
#[derive(Clone, Debug)]
pub struct Outgoing<M> {
    /// Its destination.
    pub to: Recipient,
    /// The message itself.
    pub message: M,
}

/// The checks every protocol makes on an incoming message before looking inside it: it belongs to this session,
/// its (authenticated) sender takes part, and it is not from ourselves. A message of another session is refused
/// with [`ProtocolError::WrongSession`] (the caller does not abort for it); a stranger is named.
pub fn admit(
    session: SessionId,
    expected: SessionId,
    from: ParticipantId,
    me: ParticipantId,
    from_takes_part: bool,
) -> Result<(), ProtocolError> {
    if session != expected {
        return Err(ProtocolError::WrongSession);
    }
    if !from_takes_part {
        return Err(ProtocolError::misbehaviour(
            [from],
            "sender does not take part in this session",
        ));
    }
    if from == me {
        return Err(ProtocolError::State(
            "received a message from myself".into(),
        ));
    }
    Ok(())
}

/// One party of a multi-party protocol, as a state machine without I/O.
///
/// The caller (a node's network loop, or the [`crate::simulator`]) calls [`Protocol::start`] once, sends what it
/// returns, then feeds every message received for this run to [`Protocol::handle`] and sends what that returns,
/// until [`Protocol::is_done`]; then it collects the result with [`Protocol::take_output`].
pub trait Protocol {
    /// The messages this protocol exchanges.
    type Message: Clone + fmt::Debug + Serialize + DeserializeOwned + Send + 'static;
    /// What a successful run produces for this party.
    type Output;

    /// This party's id.
    fn participant(&self) -> ParticipantId;

    /// Starts the run; returns the first messages to send.
    fn start<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<Self::Message>>, ProtocolError>;

    /// Handles one received message and returns the messages to send in response.
    ///
    /// `from` is the AUTHENTICATED sender (taken from the transport, never from the message). Messages of a
    /// later round may arrive before the current round is complete (the network reorders): they are buffered,
    /// not refused. A duplicate message from the same sender for the same round is an error naming that
    /// sender.
    fn handle<R: RngCore + CryptoRng>(
        &mut self,
        from: ParticipantId,
        message: Self::Message,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<Self::Message>>, ProtocolError>;

    /// True once the run has produced its output (also after the output was taken).
    fn is_done(&self) -> bool;

    /// The output, once; `None` before the run is done or after it was taken.
    fn take_output(&mut self) -> Option<Self::Output>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn session_id_hex_round_trip() {
        let id = SessionId([0xab; 32]);
        assert_eq!(SessionId::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(id.to_string(), "abababababababab");
        assert!(format!("{id:?}").starts_with("SessionId(abab"));
        assert!(SessionId::from_hex("abcd").is_err());
        assert!(SessionId::from_hex(&"zz".repeat(32)).is_err());
    }
}
