//! Encryption and decryption with split-AES keys (`CKM_VHSM_SPLIT_AES`): `C_EncryptInit`, `C_Encrypt`,
//! `C_EncryptUpdate`, `C_EncryptFinal` and the same for decryption. The cluster does the work: the nodes evaluate
//! their shares of the key's distributed PRF, the coordinator derives the message's own AES-256-GCM key and seals
//! or opens the blob; the module only forwards.
//!
//! - The mechanism's parameter, if any, is the associated data: the same bytes must be given to decrypt.
//! - The ciphertext is [`split_aes_overhead`]`(t)` bytes longer than the plaintext (its encryption receipt has one
//!   entry per node that evaluated it, the key's threshold `t`), so both length queries are answered in the module
//!   without asking the cluster: a decryption's exactly (the blob says how long its receipt is), an encryption's as
//!   an upper bound (a receipt of one entry per holder of the key; PKCS#11 allows a length query to exceed the
//!   precise length, and the call returns the real one).
//! - Multi-part operations are accepted for convenience: `C_EncryptUpdate`/`C_DecryptUpdate` buffer their input and
//!   return no output (the ciphertext is one authenticated blob, so nothing can be released before the end);
//!   `C_EncryptFinal`/`C_DecryptFinal` return everything. At most [`MAX_CIPHER_INPUT`] bytes of plaintext per
//!   operation (larger data: the `vhsm encrypt` CLI cuts files into chunks).
//! - A blob that was altered, decrypted with other associated data or with another key is
//!   `CKR_ENCRYPTED_DATA_INVALID`, and no plaintext is returned. Plaintext held by the module is zeroized when
//!   dropped.

use std::sync::Arc;

use cryptoki_sys::*;
use vhsm_core::ciphertext::{
    CiphertextBlob, BLOB_VERSION, BLOB_VERSION_1, HEADER_LEN, MAX_RECEIPT_LEN, MIN_BLOB_LEN,
    NONCE_LEN, RECEIPT_ENTRY_LEN, RHO_LEN, TAG_LEN,
};
use vhsm_core::{limits::MAX_CIPHER_INPUT, KeyId};
use zeroize::Zeroizing;

use crate::client::Bridge;
use crate::mechanisms::{parse_cipher_mechanism, split_aes_overhead, CKK_VHSM_SPLIT_AES};
use crate::session::Session;
use crate::state::with_module;
use crate::{CkResult, Output};

/// Which way an operation goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `C_Encrypt*`.
    Encrypt,
    /// `C_Decrypt*`.
    Decrypt,
}

impl Direction {
    fn slot(self, session: &mut Session) -> &mut Option<CipherOp> {
        match self {
            Direction::Encrypt => &mut session.encrypt,
            Direction::Decrypt => &mut session.decrypt,
        }
    }

    /// The longest input one operation takes.
    fn max_input(self) -> usize {
        match self {
            Direction::Encrypt => MAX_CIPHER_INPUT,
            Direction::Decrypt => MAX_CIPHER_INPUT + MIN_BLOB_LEN + 2 + MAX_RECEIPT_LEN,
        }
    }

    /// The return value for input that is too long (or, decrypting, too short).
    fn length_error(self) -> CK_RV {
        match self {
            Direction::Encrypt => CKR_DATA_LEN_RANGE,
            Direction::Decrypt => CKR_ENCRYPTED_DATA_LEN_RANGE,
        }
    }

    /// The length of the output for `input_len` bytes of input that begin with `head` (at least the blob's header
    /// when decrypting, if the input is that long): exact for a decryption, an upper bound for an encryption with a
    /// key of `holders` holders.
    fn output_len(self, input_len: usize, head: &[u8], holders: usize) -> CkResult<usize> {
        match self {
            Direction::Encrypt => Ok(input_len + split_aes_overhead(holders)),
            Direction::Decrypt => {
                if input_len < MIN_BLOB_LEN {
                    return Err(CKR_ENCRYPTED_DATA_LEN_RANGE);
                }
                let overhead = match head.first() {
                    Some(&BLOB_VERSION_1) => MIN_BLOB_LEN,
                    Some(&BLOB_VERSION) => {
                        let receipt = head
                            .get(HEADER_LEN..HEADER_LEN + 2)
                            .and_then(|b| <[u8; 2]>::try_from(b).ok())
                            .map(u16::from_be_bytes)
                            .ok_or(CKR_ENCRYPTED_DATA_LEN_RANGE)?;
                        HEADER_LEN + 2 + usize::from(receipt) + NONCE_LEN + RHO_LEN + TAG_LEN
                    }
                    _ => return Err(CKR_ENCRYPTED_DATA_INVALID),
                };
                input_len
                    .checked_sub(overhead)
                    .ok_or(CKR_ENCRYPTED_DATA_LEN_RANGE)
            }
        }
    }
}

/// An active encryption or decryption.
pub struct CipherOp {
    key_id: KeyId,
    /// The key's holders (for the length of an encryption's receipt, at most one entry each).
    holders: usize,
    aad: Vec<u8>,
    input: Zeroizing<Vec<u8>>,
    multipart: bool,
}

impl std::fmt::Debug for CipherOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CipherOp")
            .field("key_id", &self.key_id)
            .field("aad_len", &self.aad.len())
            .field("input", &format_args!("<{} bytes>", self.input.len()))
            .field("multipart", &self.multipart)
            .finish()
    }
}

impl CipherOp {
    fn add(&mut self, direction: Direction, data: &[u8]) -> CkResult<()> {
        if self.input.len() + data.len() > direction.max_input() {
            return Err(direction.length_error());
        }
        self.input.extend_from_slice(data);
        Ok(())
    }
}

/// `C_EncryptInit` / `C_DecryptInit`.
pub fn init(
    session: CK_SESSION_HANDLE,
    direction: Direction,
    mechanism: CK_MECHANISM_TYPE,
    param: &[u8],
    key: CK_OBJECT_HANDLE,
) -> CkResult<()> {
    with_module(|m| {
        let user = m.user_logged_in();
        if direction.slot(m.session(session)?).is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let attributes = m
            .objects
            .attributes(key)
            .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
        if attributes.get_bool(CKA_PRIVATE) == Some(true) && !user {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        let aad = parse_cipher_mechanism(mechanism, param)?;
        if attributes.get_ulong(CKA_CLASS) != Some(CKO_SECRET_KEY)
            || attributes.get_ulong(CKA_KEY_TYPE) != Some(CKK_VHSM_SPLIT_AES)
        {
            return Err(CKR_KEY_TYPE_INCONSISTENT);
        }
        let usage = match direction {
            Direction::Encrypt => CKA_ENCRYPT,
            Direction::Decrypt => CKA_DECRYPT,
        };
        if attributes.get_bool(usage) != Some(true) {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        let key_id = m.objects.cluster_key(key)?;
        let holders = m
            .objects
            .key(&key_id)
            .map_or(MAX_RECEIPT_LEN / RECEIPT_ENTRY_LEN, |info| {
                info.holders.len()
            });
        *direction.slot(m.session(session)?) = Some(CipherOp {
            key_id,
            holders,
            aad,
            input: Zeroizing::new(Vec::new()),
            multipart: false,
        });
        Ok(())
    })
}

/// `C_EncryptUpdate` / `C_DecryptUpdate`: buffers the part; the output of this call is always empty. An error ends
/// the operation.
pub fn update(session: CK_SESSION_HANDLE, direction: Direction, data: &[u8]) -> CkResult<()> {
    with_module(|m| {
        let slot = direction.slot(m.session(session)?);
        let op = slot.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.multipart = true;
        let result = op.add(direction, data);
        if result.is_err() {
            *slot = None;
        }
        result
    })
}

/// What `finish` does after looking at the session.
enum Step {
    Answer(Output),
    Run(Arc<Bridge>, CipherOp, usize),
}

/// `C_Encrypt`/`C_Decrypt` (`data: Some`) or `C_EncryptFinal`/`C_DecryptFinal` (`None`), with the length-query
/// convention: a length query or a short buffer leaves the operation active; anything else ends it.
pub fn finish(
    session: CK_SESSION_HANDLE,
    direction: Direction,
    data: Option<&[u8]>,
    capacity: Option<usize>,
) -> CkResult<Output> {
    let step = with_module(|m| {
        let bridge = m.bridge()?;
        let slot = direction.slot(m.session(session)?);
        let op = slot.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if data.is_some() && op.multipart {
            // C_Encrypt/C_Decrypt cannot finish a multi-part operation.
            *slot = None;
            return Err(CKR_OPERATION_ACTIVE);
        }
        let input_len = op.input.len() + data.map_or(0, <[u8]>::len);
        let head: Vec<u8> = op
            .input
            .iter()
            .chain(data.unwrap_or_default())
            .take(HEADER_LEN + 2)
            .copied()
            .collect();
        if input_len > direction.max_input() {
            *slot = None;
            return Err(direction.length_error());
        }
        let needed = match direction.output_len(input_len, &head, op.holders) {
            Ok(n) => n,
            Err(rv) => {
                *slot = None;
                return Err(rv);
            }
        };
        if let Some(answer) = Output::check_capacity(needed, capacity) {
            return Ok(Step::Answer(answer));
        }
        let mut op = slot.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if let Some(data) = data {
            op.add(direction, data)?;
        }
        Ok(Step::Run(bridge, op, needed))
    })?;
    let (bridge, op, needed) = match step {
        Step::Answer(answer) => return Ok(answer),
        Step::Run(bridge, op, needed) => (bridge, op, needed),
    };
    let output = match direction {
        Direction::Encrypt => encrypt(&bridge, op)?,
        Direction::Decrypt => decrypt(&bridge, op)?,
    };
    // An encryption's length was an upper bound (see the module documentation); a decryption's is exact.
    let wrong = match direction {
        Direction::Encrypt => output.len() > needed,
        Direction::Decrypt => output.len() != needed,
    };
    if wrong {
        tracing::error!(
            len = output.len(),
            needed,
            "the cluster returned output of the wrong length"
        );
        return Err(CKR_DEVICE_ERROR);
    }
    Ok(Output::Data(output))
}

fn encrypt(bridge: &Bridge, op: CipherOp) -> CkResult<Zeroizing<Vec<u8>>> {
    let blob = bridge
        .encrypt(op.key_id, op.input, op.aad)
        .map_err(|rv| match rv {
            CKR_OBJECT_HANDLE_INVALID => CKR_KEY_HANDLE_INVALID,
            other => other,
        })?;
    Ok(Zeroizing::new(blob))
}

fn decrypt(bridge: &Bridge, op: CipherOp) -> CkResult<Zeroizing<Vec<u8>>> {
    // The blob names its key: a blob of another key is refused here, whatever the cluster would do with it.
    let parsed = CiphertextBlob::parse(&op.input).map_err(|_| CKR_ENCRYPTED_DATA_INVALID)?;
    if parsed.key_id != op.key_id.0 {
        tracing::debug!(
            "the ciphertext names another key than the one the operation was started with"
        );
        return Err(CKR_ENCRYPTED_DATA_INVALID);
    }
    bridge
        .decrypt(op.input.to_vec(), op.aad)
        .map_err(|rv| match rv {
            CKR_OBJECT_HANDLE_INVALID => CKR_KEY_HANDLE_INVALID,
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        use vhsm_core::ciphertext::blob_len;
        let e = Direction::Encrypt;
        assert_eq!(e.output_len(0, &[], 3), Ok(split_aes_overhead(3)));
        assert_eq!(e.output_len(5, &[], 3), Ok(5 + split_aes_overhead(3)));
        let d = Direction::Decrypt;
        // A version-2 blob of a 2-entry receipt: the exact plaintext length.
        let mut head = vec![BLOB_VERSION];
        head.extend_from_slice(&[0; HEADER_LEN - 1]);
        head.extend_from_slice(&260u16.to_be_bytes());
        assert_eq!(d.output_len(blob_len(3, 2), &head, 0), Ok(3));
        assert_eq!(
            d.output_len(blob_len(0, 2) - 1, &head, 0),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
        );
        // Version 1 (no receipt).
        head.splice(..1, [BLOB_VERSION_1]);
        assert_eq!(d.output_len(MIN_BLOB_LEN + 3, &head, 0), Ok(3));
        assert_eq!(
            d.output_len(MIN_BLOB_LEN - 1, &head, 0),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE)
        );
        head.splice(..1, [9]);
        assert_eq!(
            d.output_len(MIN_BLOB_LEN + 3, &head, 0),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
        let mut op = CipherOp {
            key_id: KeyId([1; 16]),
            holders: 3,
            aad: Vec::new(),
            input: Zeroizing::new(Vec::new()),
            multipart: false,
        };
        assert_eq!(
            op.add(Direction::Encrypt, &vec![0; MAX_CIPHER_INPUT + 1]),
            Err(CKR_DATA_LEN_RANGE)
        );
        assert!(op.add(Direction::Encrypt, &[0; 10]).is_ok());
        assert!(!format!("{op:?}").contains("[0"), "no input in Debug");
    }
}
