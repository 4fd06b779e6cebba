//! The security officer's approval key, on the security officer's side: made by `vhsm init`
//! (`client/so-approval.key`, or the file `VHSM_SO_APPROVAL_KEY` names), it signs each change of who holds keys
//! or how many it takes (see `vhsm_core::approval`); every node pins its public key and checks the signature.
//!
//! The file holds the Ed25519 secret key as 64 hex digits and a newline, mode 0600. Whoever holds it can approve
//! moving keys onto other nodes or lowering their threshold (the coordinator cannot); keep it where the security
//! officer keeps the SO PIN, or offline, pointing `VHSM_SO_APPROVAL_KEY` at it when needed.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use vhsm_core::{approval::normalized, ChangeApproval, NodeId};
use zeroize::Zeroizing;

use crate::{ClientError, ClusterDir};

/// The environment variable naming the approval key file (instead of `client/so-approval.key`).
pub const KEY_ENV: &str = "VHSM_SO_APPROVAL_KEY";
/// The file's name in `client/`.
pub const KEY_FILE: &str = "so-approval.key";
/// How long an approval stays valid: long enough for a membership change to reshare many keys, short enough
/// that a recorded approval is soon useless.
pub const VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// The security officer's approval key.
pub struct ApprovalKey(SigningKey);

impl std::fmt::Debug for ApprovalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ApprovalKey")
            .field(&hex::encode(self.public_key().as_bytes()))
            .finish()
    }
}

impl ApprovalKey {
    /// A new random key, written to `path` (mode 0600; refuses to overwrite a file).
    pub fn generate_new(path: &Path) -> Result<Self, ClientError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
        let key = SigningKey::from_bytes(&seed);
        let text = Zeroizing::new(format!("{}\n", hex::encode(seed.as_ref())));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let write = |options: &std::fs::OpenOptions| -> std::io::Result<()> {
            let mut file = options.open(path)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        };
        write(&options)
            .map_err(|e| ClientError::Config(format!("cannot write {}: {e}", path.display())))?;
        Ok(ApprovalKey(key))
    }

    /// The key in `path`.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            ClientError::Config(format!(
                "cannot read the security officer's approval key {}: {e} (changes of a key's holders or threshold \
                 need it; {KEY_ENV} can name another file)",
                path.display()
            ))
        })?);
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| {
            ClientError::Config(format!(
                "{} is not a security officer's approval key (64 hex digits)",
                path.display()
            ))
        })?;
        Ok(ApprovalKey(SigningKey::from_bytes(&seed)))
    }

    /// The key of cluster directory `dir`: the file `VHSM_SO_APPROVAL_KEY` names, else `client/so-approval.key`.
    pub fn of_cluster(dir: &ClusterDir) -> Result<Self, ClientError> {
        Self::load(&Self::path(dir))
    }

    /// Where [`ApprovalKey::of_cluster`] looks.
    pub fn path(dir: &ClusterDir) -> PathBuf {
        std::env::var_os(KEY_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| dir.client_dir().join(KEY_FILE), PathBuf::from)
    }

    /// Its public key, which nodes pin.
    pub fn public_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The public key as nodes' configurations hold it (64 hex digits).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key().as_bytes())
    }

    /// Approves moving keys onto `committee` at `threshold`, for [`VALIDITY`] from now.
    pub fn approve(&self, committee: &[NodeId], threshold: u16) -> ChangeApproval {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.approve_until(committee, threshold, now.saturating_add(VALIDITY.as_secs()))
    }

    /// Approves moving keys onto `committee` at `threshold` until unix time `not_after`.
    pub fn approve_until(
        &self,
        committee: &[NodeId],
        threshold: u16,
        not_after: u64,
    ) -> ChangeApproval {
        let committee = normalized(committee);
        let signature = self
            .0
            .sign(&ChangeApproval::message(&committee, threshold, not_after));
        ChangeApproval {
            committee,
            threshold,
            not_after,
            signature: signature.to_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_written_key_loads_signs_and_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let key = ApprovalKey::generate_new(&path).unwrap();
        assert!(ApprovalKey::generate_new(&path).is_err());
        let again = ApprovalKey::load(&path).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let approval = again.approve_until(&[3, 1, 2], 2, 99);
        assert_eq!(approval.committee, vec![1, 2, 3]);
        let signature = ed25519_dalek::Signature::from_slice(&approval.signature).unwrap();
        key.public_key()
            .verify_strict(&approval.signed_message(), &signature)
            .unwrap();
        assert!(!format!("{again:?}").contains(&std::fs::read_to_string(&path).unwrap()[..64]));
        std::fs::write(&path, "not hex").unwrap();
        assert!(ApprovalKey::load(&path).is_err());
    }
}
