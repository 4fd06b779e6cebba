//! A key's public description and its lifecycle: the states of NIST SP 800-57 and what each allows.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Algorithm, KeyId, NodeId};

/// Where a key is in its life: generation (`Pending`), then the states of NIST SP 800-57 part 1 §5.3 —
/// pre-active, active, deactivated, compromised, destroyed. The nodes enforce what each state allows
/// ([`KeyState::allows`]) and which transitions are possible ([`KeyState::can_become`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    /// Key generation finished on this node but the coordinator has not yet confirmed that every holder has it.
    /// A pending key is used only for its pairwise consistency test; it is deleted if the generation is aborted.
    Pending,
    /// Generated, not yet authorised for use (`vhsm key activate`).
    PreActive,
    /// In use.
    Active,
    /// Retired: decrypts (and its public key verifies) what it protected, signs and encrypts nothing new.
    Deactivated,
    /// Known or suspected to be compromised: like deactivated, to recover data only.
    Compromised,
    /// Destroyed: every share is deleted; a tombstone remains so that the key cannot come back (from a backup).
    Destroyed,
}

/// What an operation does with a key, for [`KeyState::allows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyUse {
    /// Make a signature.
    Sign,
    /// Encrypt (split-AES).
    Encrypt,
    /// Decrypt (split-AES).
    Decrypt,
    /// Reshare, refresh or repair its shares (maintenance: allowed in every state that has shares).
    Reshare,
}

impl KeyState {
    /// Every state, in life order.
    pub const ALL: [KeyState; 6] = [
        KeyState::Pending,
        KeyState::PreActive,
        KeyState::Active,
        KeyState::Deactivated,
        KeyState::Compromised,
        KeyState::Destroyed,
    ];

    /// Whether a key in this state may be used so.
    pub fn allows(self, use_: KeyUse) -> bool {
        matches!(
            (self, use_),
            (KeyState::Active, _)
                | (
                    KeyState::Deactivated | KeyState::Compromised,
                    KeyUse::Decrypt | KeyUse::Reshare
                )
                | (KeyState::PreActive, KeyUse::Reshare)
        )
    }

    /// Whether a key may go from this state to `next` (NIST SP 800-57: activation once, deactivation once, no way
    /// back; compromise from any live state; destruction from any state).
    pub fn can_become(self, next: KeyState) -> bool {
        use KeyState::*;
        matches!(
            (self, next),
            (PreActive, Active)
                | (Active, Deactivated)
                | (PreActive | Active | Deactivated, Compromised)
                | (PreActive | Active | Deactivated | Compromised, Destroyed)
        )
    }

    /// Whether the key has shares (generated and not destroyed).
    pub fn has_shares(self) -> bool {
        !matches!(self, KeyState::Pending | KeyState::Destroyed)
    }

    fn name(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::PreActive => "pre-active",
            KeyState::Active => "active",
            KeyState::Deactivated => "deactivated",
            KeyState::Compromised => "compromised",
            KeyState::Destroyed => "destroyed",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for KeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyUse::Sign => "sign",
            KeyUse::Encrypt => "encrypt",
            KeyUse::Decrypt => "decrypt",
            KeyUse::Reshare => "reshare",
        })
    }
}

/// A key's public description, kept by every holder beside its share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's id.
    pub id: KeyId,
    /// The operator's label.
    pub label: String,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The public key (Ed25519: the 32-byte RFC 8032 encoding; ECDSA: the 65-byte uncompressed SEC1 point). Empty
    /// until generation has finished.
    pub public_key: Vec<u8>,
    /// The public key package: the public key with every holder's verifying share (`FrostPublicKeys` or
    /// `EcdsaPublicKeys` encoding). The coordinator checks every signature share against it. Empty until generated.
    pub public_package: Vec<u8>,
    /// How many holders must take part in an operation.
    pub threshold: u16,
    /// The nodes holding a share.
    pub holders: Vec<NodeId>,
    /// Lifecycle state.
    pub state: KeyState,
    /// Creation time, seconds since the Unix epoch (set by the coordinator).
    pub created_unix: u64,
    /// Share epoch: 0 at generation, incremented by every later refresh or reshare.
    pub epoch: u64,
    /// Metadata revision: 0 at generation, incremented by every change of label or attributes; when holders
    /// disagree (one missed an update while down), the highest revision is the key's metadata.
    pub revision: u64,
    /// Public attributes an application set on the key (PKCS#11 attribute type → value, e.g. CKA_ID), kept with the
    /// key on every holder. Never secret: the share is not an attribute.
    pub attributes: Vec<(u64, Vec<u8>)>,
}

/// The stored attribute types of a key's usage flags: the PKCS#11 module keeps an application's `CKA_SIGN`,
/// `CKA_ENCRYPT` and `CKA_DECRYPT` of the private (or secret) key object under `1 << 32 | CKA_…` (its
/// private-object namespace), value one byte, 0 = false. The nodes enforce them ([`KeyInfo::usage_allows`]), so a
/// client that bypasses the module (the CLI, its own code) is refused too.
pub mod usage {
    /// `CKA_SIGN` (0x108) of the private-key object.
    pub const SIGN: u64 = (1 << 32) | 0x108;
    /// `CKA_ENCRYPT` (0x104) of the secret-key object.
    pub const ENCRYPT: u64 = (1 << 32) | 0x104;
    /// `CKA_DECRYPT` (0x105) of the secret-key object.
    pub const DECRYPT: u64 = (1 << 32) | 0x105;
}

impl KeyInfo {
    /// Whether the key's usage flags allow `use_`: false only if the flag of that use is stored as false (a key
    /// without flags, e.g. made with the CLI, may be used for what its algorithm does). Maintenance (reshare) has
    /// no flag.
    pub fn usage_allows(&self, use_: KeyUse) -> bool {
        let flag = match use_ {
            KeyUse::Sign => usage::SIGN,
            KeyUse::Encrypt => usage::ENCRYPT,
            KeyUse::Decrypt => usage::DECRYPT,
            KeyUse::Reshare => return true,
        };
        !self
            .attributes
            .iter()
            .any(|(t, value)| *t == flag && value.as_slice() == [0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_flags() {
        let mut key = KeyInfo {
            id: KeyId([1; 16]),
            label: String::new(),
            algorithm: Algorithm::SplitAes256,
            public_key: Vec::new(),
            public_package: Vec::new(),
            threshold: 2,
            holders: vec![1, 2, 3],
            state: KeyState::Active,
            created_unix: 0,
            epoch: 0,
            revision: 0,
            attributes: Vec::new(),
        };
        assert!([KeyUse::Sign, KeyUse::Encrypt, KeyUse::Decrypt]
            .iter()
            .all(|u| key.usage_allows(*u)));
        key.attributes = vec![(usage::DECRYPT, vec![0]), (usage::ENCRYPT, vec![1])];
        assert!(!key.usage_allows(KeyUse::Decrypt));
        assert!(key.usage_allows(KeyUse::Encrypt) && key.usage_allows(KeyUse::Reshare));
        // The public-key object's flag (another namespace) is not the private key's.
        key.attributes = vec![((2 << 32) | 0x108, vec![0])];
        assert!(key.usage_allows(KeyUse::Sign));
    }

    #[test]
    fn lifecycle_rules() {
        use KeyState::*;
        assert!(Active.allows(KeyUse::Sign) && Active.allows(KeyUse::Encrypt));
        for s in [Deactivated, Compromised] {
            assert!(
                s.allows(KeyUse::Decrypt) && !s.allows(KeyUse::Sign) && !s.allows(KeyUse::Encrypt)
            );
        }
        assert!(!PreActive.allows(KeyUse::Sign) && !PreActive.allows(KeyUse::Decrypt));
        assert!(KeyState::ALL
            .iter()
            .all(|s| !Destroyed.allows(KeyUse::Decrypt) || *s == Active));
        assert!(PreActive.can_become(Active) && Active.can_become(Deactivated));
        assert!(!Deactivated.can_become(Active), "no reactivation");
        assert!(!Active.can_become(PreActive));
        assert!(!Destroyed.can_become(Active) && !Destroyed.can_become(Destroyed));
        assert!(Compromised.can_become(Destroyed) && !Compromised.can_become(Active));
        assert!(
            !Pending.can_become(Active),
            "activation of a generated key is the commit's"
        );
    }
}
