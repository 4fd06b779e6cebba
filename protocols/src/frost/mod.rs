//! FROST(Ed25519, SHA-512), RFC 9591, on the audited `frost-ed25519` crate (Zcash Foundation).
//!
//! One module per protocol step:
//!
//! * [`dkg`] — distributed key generation without a dealer ([`FrostDkg`], a [`crate::Protocol`]), over an
//!   [echo broadcast](crate::echo) so that no participant can equivocate on its round-1 package;
//! * [`share`] — the key share every participant keeps ([`FrostKeyShare`]) and the public part
//!   ([`FrostPublicKeys`]), with versioned encodings;
//! * [`round1`] — signer, round one: fresh nonces and their commitments ([`commit`]);
//! * [`mod@aggregate`] — coordinator: the signing package ([`signing_package`]) and the aggregation of signature
//!   shares into an Ed25519 signature ([`aggregate()`]), naming every signer whose share is invalid;
//! * [`round2`] — signer, round two: the signature share ([`sign`]).
//!
//! Signing is driven by a coordinator rather than a [`crate::Protocol`] state machine: round one
//! ([`commit`]) needs no input from other signers, and round two ([`sign`]) consumes the nonces of round one
//! by value, so a nonce can be used only once.
//!
//! Signatures produced here are plain RFC 8032 Ed25519 signatures under the group public key
//! ([`FrostKeyShare::group_public_key`]) and verify with any Ed25519 implementation.

use frost_ed25519 as frost;

use crate::error::ProtocolError;
use crate::party::ParticipantId;

pub mod aggregate;
pub mod dkg;
pub mod round1;
pub mod round2;
pub mod share;

pub use aggregate::{
    aggregate, aggregate_decoded, signing_package, signing_package_decoded, DecodedCommitments,
    DecodedSigningPackage, FrostSignatureShare, FrostSigningPackage,
};
pub use dkg::{DkgBody, DkgMessage, DkgParams, FrostDkg};
pub use round1::{commit, precommit, FrostCommitments, FrostNonces};
pub use round2::{sign, sign_decoded};
pub use share::{FrostKeyShare, FrostPublicKeys};

/// The FROST identifier of a participant. Fails for 0.
pub(crate) fn identifier(id: ParticipantId) -> Result<frost::Identifier, ProtocolError> {
    frost::Identifier::try_from(id).map_err(|_| {
        ProtocolError::InvalidParameters(format!(
            "participant id {id} is not a valid FROST identifier"
        ))
    })
}

/// The participant id behind a FROST identifier made by [`identifier`]; `None` for identifiers that are not
/// small integers (e.g. derived from strings), which this crate never creates.
pub(crate) fn participant_of(id: &frost::Identifier) -> Option<ParticipantId> {
    // Ed25519 scalars serialize little-endian; an id from `u16` has all bytes past the second zero.
    let bytes = id.serialize();
    let (low, high) = (bytes.get(..2)?, bytes.get(2..)?);
    if high.iter().any(|b| *b != 0) {
        return None;
    }
    let low: [u8; 2] = low.try_into().ok()?;
    Some(u16::from_le_bytes(low))
}

/// Converts a `frost-ed25519` error. Errors that name culprits become [`ProtocolError::Misbehaviour`] with
/// our participant ids; `context` says what was being done.
pub(crate) fn map_frost_error(e: frost::Error, context: &str) -> ProtocolError {
    let culprits = e.culprits();
    if !culprits.is_empty() {
        let ids: Vec<ParticipantId> = culprits.iter().filter_map(participant_of).collect();
        if ids.len() == culprits.len() {
            return ProtocolError::misbehaviour(ids, format!("{context}: {e}"));
        }
    }
    use frost::Error as E;
    match e {
        E::MalformedIdentifier
        | E::MalformedSigningKey
        | E::MalformedVerifyingKey
        | E::MalformedSignature
        | E::SerializationError
        | E::DeserializationError
        | E::InvalidCoefficient
        | E::FieldError(_)
        | E::GroupError(_) => ProtocolError::Encoding(format!("{context}: {e}")),
        E::InvalidMinSigners
        | E::InvalidMaxSigners
        | E::DuplicatedIdentifier
        | E::UnknownIdentifier
        | E::IncorrectNumberOfIdentifiers
        | E::IncorrectNumberOfShares
        | E::IncorrectNumberOfCommitments
        | E::MissingCommitment
        | E::IncorrectCommitment
        | E::DuplicatedShares => ProtocolError::InvalidParameters(format!("{context}: {e}")),
        _ => ProtocolError::State(format!("{context}: {e}")),
    }
}

/// Verifies an Ed25519 signature (RFC 8032 encodings: 32-byte public key, 64-byte `R ‖ s`) as FROST(Ed25519)
/// verifies its group signatures: what a node's start-up self-test and independent checks use.
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = frost::VerifyingKey::deserialize(public_key) else {
        return false;
    };
    let Ok(signature) = frost::Signature::deserialize(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn identifiers_round_trip() {
        for id in [1u16, 2, 255, 256, 65535] {
            assert_eq!(participant_of(&identifier(id).unwrap()), Some(id));
        }
        assert!(identifier(0).is_err());
        let derived = frost::Identifier::derive(b"not a small integer").unwrap();
        assert_eq!(participant_of(&derived), None);
    }
}
