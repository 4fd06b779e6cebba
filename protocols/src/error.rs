//! The error type shared by every protocol of this crate.

use crate::party::ParticipantId;

/// Why a protocol step failed.
///
/// [`ProtocolError::Misbehaviour`] is an *identifiable abort*: it names the participants whose messages were
/// invalid, so that the caller can exclude them; [`ProtocolError::MustBan`] names participants that must be
/// excluded from every later session. Other variants describe a message that does not belong here
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
    /// The named participants failed a check whose failure means they cheated or are compromised (e.g. DKLs23's
    /// OT consistency check): they must be excluded from every later session until an operator clears them.
    ///
    /// Stronger than [`ProtocolError::Misbehaviour`]: DKLs23 reuses the oblivious-transfer setup of its key
    /// generation in every signing run, and a counterparty that failed its consistency check may have learnt
    /// something about that reused state. Signing again with it would let it extract the key over several
    /// runs.
    #[error("participant(s) {culprits:?} must be banned: {reason}")]
    MustBan {
        /// The participants to exclude, sorted and without duplicates.
        culprits: Vec<ParticipantId>,
        /// The check they failed.
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
    /// The participants blamed by this error; empty unless it is [`ProtocolError::Misbehaviour`] or
    /// [`ProtocolError::MustBan`].
    pub fn culprits(&self) -> &[ParticipantId] {
        match self {
            ProtocolError::Misbehaviour { culprits, .. }
            | ProtocolError::MustBan { culprits, .. } => culprits,
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

    /// A [`ProtocolError::MustBan`] naming `culprits` (sorted and deduplicated here).
    pub fn must_ban(
        culprits: impl IntoIterator<Item = ParticipantId>,
        reason: impl Into<String>,
    ) -> Self {
        let mut culprits: Vec<ParticipantId> = culprits.into_iter().collect();
        culprits.sort_unstable();
        culprits.dedup();
        ProtocolError::MustBan {
            culprits,
            reason: reason.into(),
        }
    }

    /// True if the culprits must be excluded from later sessions until an operator clears them
    /// ([`ProtocolError::MustBan`]).
    pub fn requires_ban(&self) -> bool {
        matches!(self, ProtocolError::MustBan { .. })
    }
}

impl From<vhsm_core::ciphertext::BlobError> for ProtocolError {
    fn from(e: vhsm_core::ciphertext::BlobError) -> Self {
        match e {
            vhsm_core::ciphertext::BlobError::UnsupportedVersion(v) => {
                ProtocolError::UnsupportedVersion(v)
            }
            other => ProtocolError::Encoding(other.to_string()),
        }
    }
}

impl From<vhsm_core::digest::DigestError> for ProtocolError {
    fn from(e: vhsm_core::digest::DigestError) -> Self {
        ProtocolError::InvalidParameters(e.to_string())
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
        let ban = ProtocolError::must_ban([2, 2], "OT consistency");
        assert_eq!(ban.culprits(), &[2]);
        assert!(ban.requires_ban() && !e.requires_ban());
        assert_eq!(
            ban.to_string(),
            "participant(s) [2] must be banned: OT consistency"
        );
    }
}
