//! Signing: `C_SignInit`, `C_Sign`, `C_SignUpdate`, `C_SignFinal`. The signature is made by the cluster.
//!
//! - `CKM_ECDSA`: the input is a digest of any length; more than 64 bytes are cut to their leftmost 32 (the same
//!   value SEC1's truncation to the order gives), then sent as [`HashAlg::Prehashed`]. An empty input is
//!   `CKR_DATA_LEN_RANGE`.
//! - `CKM_ECDSA_SHA256/384/512`: hashed in the module (multi-part friendly), the digest sent as `Prehashed`.
//! - `CKM_EDDSA`: pure Ed25519 over the whole message (multi-part input is buffered).
//!
//! Every signature is 64 bytes (`r‖s`, or Ed25519's `R‖s`), so the length query needs no request to the cluster.

use crate::digest::DigestOp;
use cryptoki_sys::*;
use vhsm_core::digest::{HashAlg, MAX_PREHASHED_LEN};
use vhsm_core::KeyId;

use crate::mechanisms::{parse_sign_mechanism, SignMechanism};
use crate::objects::KeyMaterial;
use crate::state::with_module;
use crate::{CkResult, Output};

/// The length of every signature the module makes.
pub const SIGNATURE_LEN: usize = 64;

/// The most message data one operation takes (the coordinator's limit for a message to sign).
pub const MAX_MESSAGE_LEN: usize = vhsm_core::limits::MAX_SIGN_INPUT;

/// The data of a signature or verification in progress.
#[derive(Clone)]
pub enum MessageState {
    /// Buffered input (`CKM_ECDSA`'s digest, `CKM_EDDSA`'s message).
    Buffer(Vec<u8>),
    /// A running digest (`CKM_ECDSA_SHA*`), as `C_Digest*` computes it.
    Hash(Box<DigestOp>),
}

impl std::fmt::Debug for MessageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageState::Buffer(b) => write!(f, "Buffer(<{} bytes>)", b.len()),
            MessageState::Hash(op) => write!(f, "Hash({op:?})"),
        }
    }
}

impl MessageState {
    /// The initial state for `mechanism`.
    pub fn new(mechanism: SignMechanism) -> Self {
        match mechanism.digest() {
            Some(digest) => MessageState::Hash(Box::new(DigestOp::new(digest))),
            None => MessageState::Buffer(Vec::new()),
        }
    }

    /// Adds input.
    pub fn update(&mut self, data: &[u8]) -> CkResult<()> {
        match self {
            MessageState::Buffer(b) => {
                if b.len() + data.len() > MAX_MESSAGE_LEN {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                b.extend_from_slice(data);
            }
            MessageState::Hash(op) => op.update(data),
        }
        Ok(())
    }

    /// The input of the signature: the message (EdDSA) or the digest (ECDSA), ready to send.
    pub fn finish(self, mechanism: SignMechanism) -> CkResult<Vec<u8>> {
        match self {
            MessageState::Buffer(b) if mechanism == SignMechanism::Ecdsa => {
                ecdsa_input(&b).map(<[u8]>::to_vec)
            }
            MessageState::Buffer(b) => Ok(b),
            MessageState::Hash(op) => Ok(op.finish()),
        }
    }
}

/// `CKM_ECDSA`'s input as the cluster takes it: 1 to 64 bytes. A longer digest is cut to its leftmost 32 bytes,
/// which is what the conversion to an integer of the curve's 256-bit order keeps anyway.
pub fn ecdsa_input(digest: &[u8]) -> CkResult<&[u8]> {
    if digest.is_empty() {
        return Err(CKR_DATA_LEN_RANGE);
    }
    if digest.len() > MAX_PREHASHED_LEN {
        return digest.get(..32).ok_or(CKR_DATA_LEN_RANGE);
    }
    Ok(digest)
}

/// An active signature.
#[derive(Debug)]
pub struct SignOp {
    key_id: KeyId,
    mechanism: SignMechanism,
    message: MessageState,
    multipart: bool,
}

/// `C_SignInit`.
pub fn sign_init(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    param: &[u8],
    key: CK_OBJECT_HANDLE,
) -> CkResult<()> {
    with_module(|m| {
        let user = m.user_logged_in();
        if m.session(session)?.sign.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let attributes = m
            .objects
            .attributes(key)
            .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
        if attributes.get_bool(CKA_PRIVATE) == Some(true) && !user {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        if attributes.get_ulong(CKA_CLASS) != Some(CKO_PRIVATE_KEY)
            || attributes.get_bool(CKA_SIGN) != Some(true)
        {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        let mechanism = parse_sign_mechanism(mechanism, param)?;
        let KeyMaterial { key_id, curve, .. } = m.objects.key_material(key)?;
        let key_id = key_id.ok_or(CKR_KEY_HANDLE_INVALID)?;
        if !mechanism.accepts(curve) {
            return Err(CKR_KEY_TYPE_INCONSISTENT);
        }
        m.session(session)?.sign = Some(SignOp {
            key_id,
            mechanism,
            message: MessageState::new(mechanism),
            multipart: false,
        });
        Ok(())
    })
}

/// `C_SignUpdate`.
pub fn sign_update(session: CK_SESSION_HANDLE, data: &[u8]) -> CkResult<()> {
    with_module(|m| {
        let s = m.session(session)?;
        let op = s.sign.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.multipart = true;
        let result = op.message.update(data);
        if result.is_err() {
            s.sign = None;
        }
        result
    })
}

/// What `C_Sign`/`C_SignFinal` does after looking at the session.
enum Step {
    /// Answer at once (length query, short buffer).
    Answer(Output),
    /// Ask the cluster.
    Sign(
        std::sync::Arc<crate::client::Bridge>,
        KeyId,
        Vec<u8>,
        Option<HashAlg>,
    ),
}

/// `C_Sign` (`data: Some`) or `C_SignFinal` (`None`), with the length-query convention: a length query or a short
/// buffer leaves the operation active; anything else ends it.
pub fn sign(
    session: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    capacity: Option<usize>,
) -> CkResult<Output> {
    let step = with_module(|m| {
        let bridge = m.bridge()?;
        let s = m.session(session)?;
        let op = s.sign.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if data.is_some() && op.multipart {
            // C_Sign cannot finish a multi-part operation.
            s.sign = None;
            return Err(CKR_OPERATION_ACTIVE);
        }
        if let Some(answer) = Output::check_capacity(SIGNATURE_LEN, capacity) {
            return Ok(Step::Answer(answer));
        }
        let mut op = s.sign.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if let Some(data) = data {
            op.message.update(data)?;
        }
        let hash = match op.mechanism {
            SignMechanism::Eddsa => None,
            _ => Some(HashAlg::Prehashed),
        };
        let input = op.message.finish(op.mechanism)?;
        Ok(Step::Sign(bridge, op.key_id, input, hash))
    })?;
    match step {
        Step::Answer(answer) => Ok(answer),
        Step::Sign(bridge, key_id, input, hash) => {
            let signature = bridge.sign(key_id, input, hash).map_err(|rv| match rv {
                CKR_OBJECT_HANDLE_INVALID => CKR_KEY_HANDLE_INVALID,
                other => other,
            })?;
            if signature.len() != SIGNATURE_LEN {
                tracing::error!(
                    len = signature.len(),
                    "the cluster returned a signature of the wrong length"
                );
                return Err(CKR_DEVICE_ERROR);
            }
            Ok(Output::Data(signature.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use sha2::{Digest, Sha384};
    use vhsm_core::digest::signing_digest;

    #[test]
    fn ecdsa_digest_truncation() {
        assert_eq!(ecdsa_input(&[]), Err(CKR_DATA_LEN_RANGE));
        assert_eq!(ecdsa_input(&[1; 20]).unwrap(), &[1; 20]);
        assert_eq!(ecdsa_input(&[1; 64]).unwrap(), &[1; 64]);
        let long: Vec<u8> = (0..100).collect();
        let cut = ecdsa_input(&long).unwrap();
        assert_eq!(cut.len(), 32);
        // The cut gives the value SEC1 truncation of the full input would: same as of the leftmost 64 bytes.
        assert_eq!(
            signing_digest(HashAlg::Prehashed, cut).unwrap(),
            signing_digest(HashAlg::Prehashed, &long[..64]).unwrap()
        );
    }

    #[test]
    fn hashing_mechanisms_hash_locally() {
        let mut s = MessageState::new(SignMechanism::EcdsaSha384);
        s.update(b"hello ").unwrap();
        s.update(b"world").unwrap();
        assert_eq!(
            s.finish(SignMechanism::EcdsaSha384).unwrap(),
            Sha384::digest(b"hello world").to_vec()
        );
        let mut e = MessageState::new(SignMechanism::Eddsa);
        e.update(b"a").unwrap();
        e.update(b"b").unwrap();
        assert_eq!(e.finish(SignMechanism::Eddsa).unwrap(), b"ab");
        let empty = MessageState::new(SignMechanism::Ecdsa);
        assert_eq!(empty.finish(SignMechanism::Ecdsa), Err(CKR_DATA_LEN_RANGE));
        let mut big = MessageState::new(SignMechanism::Eddsa);
        assert_eq!(
            big.update(&vec![0; MAX_MESSAGE_LEN + 1]),
            Err(CKR_DATA_LEN_RANGE)
        );
    }
}
