//! FROST signing, round two (signer side): the signature share (RFC 9591 §5.2).

use frost_ed25519::SigningPackage;

use super::aggregate::{DecodedSigningPackage, FrostSignatureShare, FrostSigningPackage};
use super::round1::FrostNonces;
use super::share::FrostKeyShare;
use super::{identifier, map_frost_error};
use crate::error::ProtocolError;

/// Round two: signs `package` with `share`, consuming the round-one `nonces` (they are zeroized when this
/// returns, whatever the result, so they can never be used twice).
///
/// Refuses ([`ProtocolError::InvalidParameters`]) nonces made for another participant, and a package that
/// does not include this participant's commitment equal to the nonces' commitment. Checking that the message
/// inside the package is one this participant agrees to sign is the caller's job
/// ([`FrostSigningPackage::message`]).
pub fn sign(
    share: &FrostKeyShare,
    nonces: FrostNonces,
    package: &FrostSigningPackage,
) -> Result<FrostSignatureShare, ProtocolError> {
    sign_decoded(share, nonces, &package.decode()?)
}

/// [`sign`] with the package decoded already ([`FrostSigningPackage::decode`], e.g. to check its message first).
pub fn sign_decoded(
    share: &FrostKeyShare,
    nonces: FrostNonces,
    package: &DecodedSigningPackage,
) -> Result<FrostSignatureShare, ProtocolError> {
    if nonces.participant() != share.participant() {
        return Err(ProtocolError::InvalidParameters(format!(
            "nonces of participant {} used with the share of participant {}",
            nonces.participant(),
            share.participant()
        )));
    }
    let package: &SigningPackage = &package.0;
    let me = identifier(share.participant())?;
    match package.signing_commitment(&me) {
        None => {
            return Err(ProtocolError::InvalidParameters(format!(
                "signing package has no commitment of participant {}",
                share.participant()
            )))
        }
        Some(c) if c != *nonces.frost_nonces().commitments() => {
            return Err(ProtocolError::InvalidParameters(format!(
                "signing package carries another commitment for participant {} than its nonces",
                share.participant()
            )))
        }
        Some(_) => {}
    }
    let signature_share =
        frost_ed25519::round2::sign(package, nonces.frost_nonces(), share.key_package())
            .map_err(|e| map_frost_error(e, "signing"))?;
    drop(nonces);
    Ok(FrostSignatureShare(signature_share.serialize()))
}
