//! Verification: `C_VerifyInit`, `C_Verify`, `C_VerifyUpdate`, `C_VerifyFinal`. Done in the module with the
//! public key (`ed25519-dalek`'s `verify_strict`, `p256`/`k256`'s `verify_prehash`); no request to the cluster.

use cryptoki_sys::*;
use vhsm_core::digest::{signing_digest, HashAlg};

use crate::encoding::Curve;
use crate::mechanisms::{parse_sign_mechanism, SignMechanism};
use crate::signing::{MessageState, SIGNATURE_LEN};
use crate::state::with_module;
use crate::CkResult;

/// An active verification.
#[derive(Debug)]
pub struct VerifyOp {
    curve: Curve,
    public_key: Vec<u8>,
    mechanism: SignMechanism,
    message: MessageState,
    multipart: bool,
}

/// Checks `signature` over the signature input (`input`: the message for EdDSA, the digest for ECDSA).
/// `CKR_SIGNATURE_LEN_RANGE` for a signature of the wrong length, `CKR_SIGNATURE_INVALID` for a wrong one.
pub fn verify_signature(
    curve: Curve,
    public_key: &[u8],
    input: &[u8],
    signature: &[u8],
) -> CkResult<()> {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    if signature.len() != SIGNATURE_LEN {
        return Err(CKR_SIGNATURE_LEN_RANGE);
    }
    let valid = match curve {
        Curve::Ed25519 => {
            let key: [u8; 32] = public_key.try_into().map_err(|_| CKR_KEY_HANDLE_INVALID)?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
                .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| CKR_SIGNATURE_INVALID)?;
            key.verify_strict(input, &sig).is_ok()
        }
        Curve::P256 | Curve::Secp256k1 => {
            let digest =
                signing_digest(HashAlg::Prehashed, input).map_err(|_| CKR_DATA_LEN_RANGE)?;
            if curve == Curve::P256 {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
                let sig = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| CKR_SIGNATURE_INVALID)?;
                key.verify_prehash(&digest, &sig).is_ok()
            } else {
                let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
                let sig = k256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| CKR_SIGNATURE_INVALID)?;
                // k256 accepts only low-S signatures; ECDSA accepts both (r, s) and (r, n - s).
                key.verify_prehash(&digest, &sig.normalize_s()).is_ok()
            }
        }
    };
    if valid {
        Ok(())
    } else {
        Err(CKR_SIGNATURE_INVALID)
    }
}

/// `C_VerifyInit`: with a public-key object (cluster key, copy, or imported key), or — leniently — the private-key
/// object of a cluster key, whose public key the module knows.
pub fn verify_init(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    param: &[u8],
    key: CK_OBJECT_HANDLE,
) -> CkResult<()> {
    with_module(|m| {
        if m.session(session)?.verify.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let attributes = m
            .objects
            .attributes(key)
            .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
        if attributes.get_bool(CKA_PRIVATE) == Some(true) && !m.user_logged_in() {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        let class = attributes.get_ulong(CKA_CLASS);
        let permitted = match class {
            Some(CKO_PUBLIC_KEY) => attributes.get_bool(CKA_VERIFY) == Some(true),
            Some(CKO_PRIVATE_KEY) => true,
            _ => false,
        };
        if !permitted {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        let mechanism = parse_sign_mechanism(mechanism, param)?;
        let material = m.objects.key_material(key)?;
        if !mechanism.accepts(material.curve) {
            return Err(CKR_KEY_TYPE_INCONSISTENT);
        }
        m.session(session)?.verify = Some(VerifyOp {
            curve: material.curve,
            public_key: material.public_key,
            mechanism,
            message: MessageState::new(mechanism),
            multipart: false,
        });
        Ok(())
    })
}

/// `C_VerifyUpdate`.
pub fn verify_update(session: CK_SESSION_HANDLE, data: &[u8]) -> CkResult<()> {
    with_module(|m| {
        let s = m.session(session)?;
        let op = s.verify.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.multipart = true;
        let result = op.message.update(data);
        if result.is_err() {
            s.verify = None;
        }
        result
    })
}

/// `C_Verify` (`data: Some`) or `C_VerifyFinal` (`None`). Either ends the operation.
pub fn verify(session: CK_SESSION_HANDLE, data: Option<&[u8]>, signature: &[u8]) -> CkResult<()> {
    let mut op = with_module(|m| {
        let s = m.session(session)?;
        let op = s.verify.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if data.is_some() && op.multipart {
            return Err(CKR_OPERATION_ACTIVE);
        }
        Ok(op)
    })?;
    if let Some(data) = data {
        op.message.update(data)?;
    }
    let input = op.message.finish(op.mechanism)?;
    verify_signature(op.curve, &op.public_key, &input, signature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k256::ecdsa::signature::hazmat::PrehashSigner;
    use sha2::{Digest, Sha256};

    #[test]
    fn ed25519() {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let sig = key.sign(b"message").to_bytes();
        let public = key.verifying_key().to_bytes();
        assert_eq!(
            verify_signature(Curve::Ed25519, &public, b"message", &sig),
            Ok(())
        );
        assert_eq!(
            verify_signature(Curve::Ed25519, &public, b"messagf", &sig),
            Err(CKR_SIGNATURE_INVALID)
        );
        assert_eq!(
            verify_signature(Curve::Ed25519, &public, b"message", &sig[..63]),
            Err(CKR_SIGNATURE_LEN_RANGE)
        );
    }

    #[test]
    fn ecdsa_both_curves_and_high_s() {
        let digest = Sha256::digest(b"m");
        let p = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
        let sig: p256::ecdsa::Signature = p.sign_prehash(&digest).unwrap();
        let public = p.verifying_key().to_sec1_point(false);
        assert_eq!(
            verify_signature(Curve::P256, public.as_bytes(), &digest, &sig.to_bytes()),
            Ok(())
        );
        assert_eq!(
            verify_signature(Curve::P256, public.as_bytes(), &[0; 32], &sig.to_bytes()),
            Err(CKR_SIGNATURE_INVALID)
        );

        let k = k256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
        let sig: k256::ecdsa::Signature = k.sign_prehash(&digest).unwrap();
        let public = k.verifying_key().to_sec1_point(false);
        // The high-S twin of a valid signature is valid ECDSA too.
        let (r, s) = sig.split_scalars();
        let high = k256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        for sig in [sig, high] {
            assert_eq!(
                verify_signature(
                    Curve::Secp256k1,
                    public.as_bytes(),
                    &digest,
                    &sig.to_bytes()
                ),
                Ok(())
            );
        }
    }
}
