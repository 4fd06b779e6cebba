//! The error type shared by every protocol of this crate.

use crate::party::ParticipantId;

/// Why a protocol step failed.
///
/// [`ProtocolError::Misbehaviour`] is an *identifiable abort*: it names the participants whose messages were
/// invalid, so that the caller can exclude them. Other variants describe a message that does not belong here
/// or a local misuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Identifiable abort: these participants sent something invalid.
    #[error("participant(s) {culprits:?} misbehaved: {reason}")]
    Misbehaviour {
        /// The participants blamed, sorted and without duplicates.
        culprits: Vec<ParticipantId>,
        /// What they did wrong.
        reason: String,
    },
    /// The message belongs to another session.
    #[error("message for another session")]
    WrongSession,
    /// The message or persisted format carries a version this build does not understand.
    #[error("unsupported message or format version {0}")]
    UnsupportedVersion(u8),
    /// The caller supplied invalid parameters (threshold, participant set, signing set, ...).
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// Bytes that do not decode.
    #[error("malformed encoding: {0}")]
    Encoding(String),
    /// The protocol is not in a state where this call makes sense (aborted, finished, internal error).
    #[error("protocol state: {0}")]
    State(String),
}

impl ProtocolError {
    /// The participants blamed by this error; empty unless it is [`ProtocolError::Misbehaviour`].
    pub fn culprits(&self) -> &[ParticipantId] {
        match self {
            ProtocolError::Misbehaviour { culprits, .. } => culprits,
            ProtocolError::WrongSession
            | ProtocolError::UnsupportedVersion(_)
            | ProtocolError::InvalidParameters(_)
            | ProtocolError::Encoding(_)
            | ProtocolError::State(_) => &[],
        }
    }

    /// A [`ProtocolError::Misbehaviour`] naming `culprits` (sorted and deduplicated here).
    pub fn misbehaviour(
        culprits: impl IntoIterator<Item = ParticipantId>,
        reason: impl Into<String>,
    ) -> Self {
        let mut culprits: Vec<ParticipantId> = culprits.into_iter().collect();
        culprits.sort_unstable();
        culprits.dedup();
        ProtocolError::Misbehaviour {
            culprits,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn culprits_are_sorted_and_deduplicated() {
        let e = ProtocolError::misbehaviour([3, 1, 3], "x");
        assert_eq!(e.culprits(), &[1, 3]);
        assert!(ProtocolError::WrongSession.culprits().is_empty());
        assert_eq!(e.to_string(), "participant(s) [1, 3] misbehaved: x");
    }
}
