//! Digests: `C_DigestInit`, `C_Digest`, `C_DigestUpdate`, `C_DigestFinal` (SHA-256, SHA-384, SHA-512), computed in
//! the module.

use cryptoki_sys::*;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::mechanisms::{parse_digest_mechanism, DigestMechanism};
use crate::state::with_module;
use crate::{CkResult, Output};

/// An active digest.
#[derive(Clone)]
pub struct DigestOp {
    mechanism: DigestMechanism,
    state: Hasher,
    multipart: bool,
}

#[derive(Clone)]
enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl std::fmt::Debug for DigestOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestOp")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl DigestOp {
    /// A fresh digest.
    pub fn new(mechanism: DigestMechanism) -> Self {
        let state = match mechanism {
            DigestMechanism::Sha1 => Hasher::Sha1(Sha1::new()),
            DigestMechanism::Sha256 => Hasher::Sha256(Sha256::new()),
            DigestMechanism::Sha384 => Hasher::Sha384(Sha384::new()),
            DigestMechanism::Sha512 => Hasher::Sha512(Sha512::new()),
        };
        DigestOp {
            mechanism,
            state,
            multipart: false,
        }
    }

    /// Adds input.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finish(self) -> Vec<u8> {
        match self.state {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// `C_DigestInit`.
pub fn digest_init(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    param: &[u8],
) -> CkResult<()> {
    with_module(|m| {
        let s = m.session(session)?;
        if s.digest.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        s.digest = Some(DigestOp::new(parse_digest_mechanism(mechanism, param)?));
        Ok(())
    })
}

/// `C_DigestUpdate`.
pub fn digest_update(session: CK_SESSION_HANDLE, data: &[u8]) -> CkResult<()> {
    with_module(|m| {
        let op = m
            .session(session)?
            .digest
            .as_mut()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.multipart = true;
        op.update(data);
        Ok(())
    })
}

/// `C_Digest` (`data: Some`) or `C_DigestFinal` (`None`), with the length-query convention.
pub fn digest(
    session: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    capacity: Option<usize>,
) -> CkResult<Output> {
    with_module(|m| {
        let s = m.session(session)?;
        let op = s.digest.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if data.is_some() && op.multipart {
            s.digest = None;
            return Err(CKR_OPERATION_ACTIVE);
        }
        if let Some(answer) = Output::check_capacity(op.mechanism.output_len(), capacity) {
            return Ok(answer);
        }
        let mut op = s.digest.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if let Some(data) = data {
            op.update(data);
        }
        Ok(Output::Data(op.finish().into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let mut op = DigestOp::new(DigestMechanism::Sha512);
        op.update(b"a");
        op.update(b"bc");
        assert_eq!(op.finish(), Sha512::digest(b"abc").to_vec());
        for m in [
            DigestMechanism::Sha256,
            DigestMechanism::Sha384,
            DigestMechanism::Sha512,
        ] {
            assert_eq!(DigestOp::new(m).finish().len(), m.output_len());
        }
    }
}
