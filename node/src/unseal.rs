//! End-to-end delivery of a node's unseal secret: the operator's CLI encrypts it to the node with HPKE, so the
//! coordinator that relays it sees only ciphertext.
//!
//! # Keys and secrets
//!
//! `vhsm init --seal` makes, for every node, its own random **unseal secret** ([`generate_secret`]: 160 random
//! bits written as 32 base32 characters in groups of four, so that a person can also type it) and wraps the
//! node's storage key under it (`crate::seal::SealedKeyFile`, Argon2id). The secrets stay on the operator's
//! side (`D/unseal/node-N.secret`): one secret opens one node's `sealed.key`, never another. A passphrase the
//! operator chooses later (`vhsm node change-passphrase N --new-secret-file F`) takes its place the same way.
//!
//! Every node also gets an X25519 **unseal key pair** ([`generate_key_pair`]): the private key in the node's own
//! directory (`unseal.key`, named by `unseal_key_file` in `node.toml`; [`UnsealPrivateKey`]), the public key
//! pinned on the operator's side (`D/unseal/node-N.pub`; [`UnsealPublicKey`]). The coordinator holds neither.
//!
//! # The envelope (HPKE, RFC 9180)
//!
//! The secret travels CLI → coordinator → node sealed with HPKE in base mode (RFC 9180 §5.1.1, single-shot
//! `Seal`/`Open` of §6.1) under the suite DHKEM(X25519, HKDF-SHA256) (KEM 0x0020), HKDF-SHA256 (KDF 0x0001),
//! ChaCha20-Poly1305 (AEAD 0x0003), with the `hpke` crate. Layout ([`UNSEAL_ENVELOPE_VERSION`] 1):
//!
//! ```text
//! version (1) ‖ node (2, BE) ‖ purpose (1) ‖ challenge (32) ‖ enc (32) ‖ ct (plaintext + 16)
//! info = "vhsm/unseal-envelope/v1" ‖ node (2, BE)
//! aad  = version ‖ node ‖ purpose ‖ challenge          (the envelope's header, as sent)
//! plaintext: Unseal: the secret; ChangeSecret: old length (2, BE) ‖ old secret ‖ new secret
//! ```
//!
//! - The **node id** is in `info` (and the KEM binds the recipient's public key, RFC 9180 §4.1 `kem_context`):
//!   an envelope for node 1 does not open on node 2, even with its header rewritten.
//! - The **challenge** is in `aad`: a fresh random value the node hands out on request ([`ChallengeSlot`],
//!   `NodeRequest::UnsealChallenge`) and keeps in memory only. The node takes it out at the first envelope it is
//!   given, whether that one opens or not, so an envelope recorded by a relay and replayed later — after a
//!   restart, or after the operator's own attempt — finds no challenge, or another one, and is refused
//!   ([`EnvelopeError::NoChallenge`], [`EnvelopeError::ChallengeMismatch`]). One challenge is outstanding at a
//!   time (a new request replaces it) and it lapses after [`CHALLENGE_LIFETIME`].
//! - The **purpose** is in `aad`: an unseal envelope is not a change of secret, nor the reverse.
//!
//! HPKE's base mode does not authenticate the sender: anyone may encrypt to a node's public key. That is what it
//! is meant for here — the envelope only carries a secret the sender must already know to get anything done
//! (the node checks it against its `sealed.key`), the node keeps its security-officer check at the coordinator,
//! and the challenge keeps an envelope from being used twice.
//!
//! # Formats on disk
//!
//! `unseal.key`: the private key as 64 hex digits, mode 0600 (refused if others may read it). `node-N.pub`: the
//! public key as 64 hex digits (lines starting with `#` are comments).

use std::{
    fmt,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use hpke::{
    aead::ChaCha20Poly1305, kdf::HkdfSha256, kem::X25519HkdfSha256, Deserializable, Kem as _,
    OpModeR, OpModeS, Serializable,
};
use rand_core::{CryptoRng, OsRng, RngCore};
use subtle::ConstantTimeEq;
use vhsm_core::SecretBytes;
use vhsm_wire::{ErrorKind, NodeId};
use zeroize::Zeroizing;

type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = ChaCha20Poly1305;

/// The envelope format's version (its first byte).
pub const UNSEAL_ENVELOPE_VERSION: u8 = 1;
/// The HPKE `info` prefix (the node id follows).
const INFO_TAG: &[u8] = b"vhsm/unseal-envelope/v1";
/// Bytes of a challenge.
pub const CHALLENGE_LEN: usize = 32;
/// How long a challenge may wait for its envelope.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);
/// The longest secret (or passphrase) an envelope may carry, in bytes.
pub const MAX_SECRET_LEN: usize = 1024;
/// Bytes of an X25519 key (public or private) and of the encapsulated key.
const KEY_LEN: usize = 32;
/// Bytes of the AEAD tag.
const TAG_LEN: usize = 16;
/// Bytes of the header: version, node, purpose, challenge.
const HEADER_LEN: usize = 1 + 2 + 1 + CHALLENGE_LEN;
/// The longest envelope a node reads (a change of secret: two secrets and a length).
pub const MAX_ENVELOPE_LEN: usize = HEADER_LEN + KEY_LEN + 2 + 2 * MAX_SECRET_LEN + TAG_LEN;
/// Random bytes of a generated unseal secret (160 bits).
const SECRET_BYTES: usize = 20;

/// What an envelope is for; part of its authenticated header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// Unseal the node with the secret.
    Unseal = 1,
    /// Rewrap the node's storage key: the old secret, then the new one.
    ChangeSecret = 2,
}

impl Purpose {
    fn from_byte(byte: u8) -> Option<Purpose> {
        match byte {
            1 => Some(Purpose::Unseal),
            2 => Some(Purpose::ChangeSecret),
            _ => None,
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::Unseal => "an unseal",
            Purpose::ChangeSecret => "a change of the unseal secret",
        })
    }
}

/// Why an envelope was not made or not taken. Never carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not an unseal envelope of a version this build reads.
    #[error("not an unseal envelope: {0}")]
    Malformed(String),
    /// The envelope names another node.
    #[error("the unseal envelope was made for node {made_for}, not for node {node}: refused")]
    OtherNode {
        /// The node its header names.
        made_for: NodeId,
        /// This node.
        node: NodeId,
    },
    /// The envelope is for another request.
    #[error("the envelope is for {found}, not {expected}: refused")]
    WrongPurpose {
        /// What its header says.
        found: String,
        /// What the request is.
        expected: Purpose,
    },
    /// This node has no challenge outstanding: none was asked for, it was used by an earlier envelope (right or
    /// wrong), it lapsed, or the node restarted since.
    #[error("node {node} has no unseal challenge outstanding (it is single-use: taken by an earlier attempt, lapsed after {} s, or lost in a restart): a replayed or stale envelope is refused; ask for a fresh challenge", CHALLENGE_LIFETIME.as_secs())]
    NoChallenge {
        /// This node.
        node: NodeId,
    },
    /// The envelope answers another challenge than the one this node handed out last.
    #[error("the envelope answers another challenge than the one node {node} handed out (a replayed or stale envelope): refused; the node's challenge is used up, ask for a fresh one")]
    ChallengeMismatch {
        /// This node.
        node: NodeId,
    },
    /// The envelope does not open with this node's unseal key: made for another node's key, or altered.
    #[error("the unseal envelope does not open with node {node}'s unseal key (made for another node or another cluster, or altered on the way): refused")]
    DoesNotOpen {
        /// This node.
        node: NodeId,
    },
    /// A secret is empty or longer than [`MAX_SECRET_LEN`].
    #[error("an unseal secret must be 1 to {MAX_SECRET_LEN} bytes long (got {0})")]
    SecretLength(usize),
    /// HPKE failed to seal (a public key that is not a valid X25519 point).
    #[error("cannot encrypt to the node's unseal key: {0}")]
    Seal(String),
    /// A key file cannot be read or written.
    #[error("unseal key: {0}")]
    KeyFile(String),
}

impl EnvelopeError {
    /// The kind of failure, for the caller to react to: a replayed or stale envelope is `Stale` (ask for a fresh
    /// challenge), one that does not open is `InvalidCiphertext`, a malformed one `BadRequest`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EnvelopeError::NoChallenge { .. } | EnvelopeError::ChallengeMismatch { .. } => {
                ErrorKind::Stale
            }
            EnvelopeError::OtherNode { .. } | EnvelopeError::DoesNotOpen { .. } => {
                ErrorKind::InvalidCiphertext
            }
            EnvelopeError::Malformed(_)
            | EnvelopeError::WrongPurpose { .. }
            | EnvelopeError::SecretLength(_) => ErrorKind::BadRequest,
            EnvelopeError::Seal(_) | EnvelopeError::KeyFile(_) => ErrorKind::Internal,
        }
    }
}

/// A node's unseal private key (X25519). Zeroized on drop (the `hpke` crate keeps it in an `x25519-dalek`
/// `StaticSecret`, which zeroizes itself); never printed.
#[derive(Clone)]
pub struct UnsealPrivateKey(<Kem as hpke::Kem>::PrivateKey);

impl fmt::Debug for UnsealPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnsealPrivateKey(<redacted>)")
    }
}

/// A node's unseal public key, as the operator's CLI pins it.
#[derive(Clone, PartialEq, Eq)]
pub struct UnsealPublicKey(<Kem as hpke::Kem>::PublicKey);

impl fmt::Debug for UnsealPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnsealPublicKey({})", self.to_hex())
    }
}

/// A new unseal key pair, from the OS's random number generator.
pub fn generate_key_pair() -> (UnsealPrivateKey, UnsealPublicKey) {
    let (private, public) = Kem::gen_keypair(&mut OsRng);
    (UnsealPrivateKey(private), UnsealPublicKey(public))
}

/// Reads a key file: its first line that is neither empty nor a `#` comment, as 64 hex digits.
fn read_hex_key(path: &Path, what: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, EnvelopeError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| EnvelopeError::KeyFile(format!("cannot read {}: {e}", path.display())))?,
    );
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_default();
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(line, &mut *bytes).map_err(|_| {
        EnvelopeError::KeyFile(format!(
            "{} does not hold {what} (64 hex digits)",
            path.display()
        ))
    })?;
    Ok(bytes)
}

impl UnsealPrivateKey {
    /// The public half.
    pub fn public_key(&self) -> UnsealPublicKey {
        UnsealPublicKey(Kem::sk_to_pk(&self.0))
    }

    /// Reads `unseal.key` (64 hex digits). Refuses a file that others may read.
    pub fn load(path: &Path) -> Result<Self, EnvelopeError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path).map_err(|e| {
                EnvelopeError::KeyFile(format!("cannot read {}: {e}", path.display()))
            })?;
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(EnvelopeError::KeyFile(format!(
                    "{} is readable by other users (mode {:o}); run: chmod 600 {}",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )));
            }
        }
        let bytes = read_hex_key(path, "an unseal private key")?;
        let key = <Kem as hpke::Kem>::PrivateKey::from_bytes(&*bytes)
            .map_err(|e| EnvelopeError::KeyFile(format!("{}: {e}", path.display())))?;
        Ok(UnsealPrivateKey(key))
    }

    /// Writes the key file (mode 0600), refusing to overwrite one.
    pub fn write_new(&self, path: &Path) -> Result<(), EnvelopeError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&self.0.to_bytes());
        let hex = Zeroizing::new(hex::encode(*bytes));
        let text = Zeroizing::new(format!("{}\n", hex.as_str()));
        crate::seal::write_private_file(path, text.as_bytes())
            .map_err(|e| EnvelopeError::KeyFile(format!("cannot write {}: {e}", path.display())))
    }

    /// Opens an envelope sent to node `node` for `purpose`, answering `challenge` (the one this node handed out
    /// and has just taken back: see [`ChallengeSlot::take`]; `None` if it had none). Checks, in order: the
    /// format, the node id, the purpose, the challenge (constant time), then HPKE `Open` — so a replay is told as
    /// such, and anything else that does not open is [`EnvelopeError::DoesNotOpen`].
    pub fn open(
        &self,
        node: NodeId,
        purpose: Purpose,
        challenge: Option<&[u8; CHALLENGE_LEN]>,
        envelope: &[u8],
    ) -> Result<Opened, EnvelopeError> {
        let header = Header::read(envelope)?;
        if header.node != node {
            return Err(EnvelopeError::OtherNode {
                made_for: header.node,
                node,
            });
        }
        match Purpose::from_byte(header.purpose) {
            Some(p) if p == purpose => {}
            found => {
                return Err(EnvelopeError::WrongPurpose {
                    found: found.map_or_else(
                        || format!("an unknown purpose ({})", header.purpose),
                        |p| p.to_string(),
                    ),
                    expected: purpose,
                })
            }
        }
        let Some(expected) = challenge else {
            return Err(EnvelopeError::NoChallenge { node });
        };
        if !bool::from(header.challenge[..].ct_eq(&expected[..])) {
            return Err(EnvelopeError::ChallengeMismatch { node });
        }
        let (aad, rest) = envelope.split_at(HEADER_LEN);
        let (enc, ct) = rest.split_at(KEY_LEN);
        let does_not_open = || EnvelopeError::DoesNotOpen { node };
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| does_not_open())?;
        let plaintext = Zeroizing::new(
            hpke::single_shot_open::<Aead, Kdf, Kem>(
                &OpModeR::Base,
                &self.0,
                &enc,
                &info(node),
                ct,
                aad,
            )
            .map_err(|_| does_not_open())?,
        );
        match purpose {
            Purpose::Unseal => Ok(Opened::Unseal(secret(&plaintext)?)),
            Purpose::ChangeSecret => {
                let (len, rest) = plaintext
                    .split_first_chunk::<2>()
                    .ok_or_else(|| EnvelopeError::Malformed("no old secret".into()))?;
                let len = usize::from(u16::from_be_bytes(*len));
                if len > rest.len() {
                    return Err(EnvelopeError::Malformed(
                        "the old secret's length runs past the end".into(),
                    ));
                }
                let (old, new) = rest.split_at(len);
                Ok(Opened::ChangeSecret {
                    old: secret(old)?,
                    new: secret(new)?,
                })
            }
        }
    }
}

/// A secret as carried: 1 to [`MAX_SECRET_LEN`] bytes.
fn secret(bytes: &[u8]) -> Result<SecretBytes, EnvelopeError> {
    if bytes.is_empty() || bytes.len() > MAX_SECRET_LEN {
        return Err(EnvelopeError::SecretLength(bytes.len()));
    }
    Ok(SecretBytes::new(bytes.to_vec()))
}

/// What an envelope carried.
#[derive(Debug)]
pub enum Opened {
    /// The secret to unseal with.
    Unseal(SecretBytes),
    /// The secret in force and the one to put in its place.
    ChangeSecret {
        /// The secret the node's `sealed.key` opens with now.
        old: SecretBytes,
        /// The new secret.
        new: SecretBytes,
    },
}

impl UnsealPublicKey {
    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Reads 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(bytes)
            .map(UnsealPublicKey)
            .map_err(|e| EnvelopeError::KeyFile(format!("not an X25519 public key: {e}")))
    }

    /// Reads a pinned public key file (`D/unseal/node-N.pub`).
    pub fn load(path: &Path) -> Result<Self, EnvelopeError> {
        let bytes = read_hex_key(path, "an unseal public key")?;
        Self::from_bytes(&*bytes)
            .map_err(|e| EnvelopeError::KeyFile(format!("{}: {e}", path.display())))
    }

    /// Writes the public key file for node `node` (mode 0644), refusing to overwrite one.
    pub fn write_new(&self, path: &Path, node: NodeId) -> Result<(), EnvelopeError> {
        use std::io::Write;
        let text = format!(
            "# The unseal public key of node {node} (X25519, RFC 9180 HPKE), pinned by `vhsm init --seal`: \
             `vhsm node unseal {node}` encrypts the node's secret to it.\n{}\n",
            self.to_hex()
        );
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        };
        write().map_err(|e| EnvelopeError::KeyFile(format!("cannot write {}: {e}", path.display())))
    }

    /// The envelope that unseals node `node` with `secret`, answering `challenge`.
    pub fn seal_unseal(
        &self,
        node: NodeId,
        challenge: &[u8; CHALLENGE_LEN],
        secret: &SecretBytes,
    ) -> Result<Vec<u8>, EnvelopeError> {
        check_len(secret)?;
        self.seal(
            node,
            Purpose::Unseal,
            challenge,
            secret.expose(),
            &mut OsRng,
        )
    }

    /// The envelope that changes node `node`'s secret from `old` to `new`, answering `challenge`.
    pub fn seal_change(
        &self,
        node: NodeId,
        challenge: &[u8; CHALLENGE_LEN],
        old: &SecretBytes,
        new: &SecretBytes,
    ) -> Result<Vec<u8>, EnvelopeError> {
        check_len(old)?;
        check_len(new)?;
        let old_len =
            u16::try_from(old.len()).map_err(|_| EnvelopeError::SecretLength(old.len()))?;
        let mut plaintext = Zeroizing::new(Vec::with_capacity(2 + old.len() + new.len()));
        plaintext.extend_from_slice(&old_len.to_be_bytes());
        plaintext.extend_from_slice(old.expose());
        plaintext.extend_from_slice(new.expose());
        self.seal(
            node,
            Purpose::ChangeSecret,
            challenge,
            &plaintext,
            &mut OsRng,
        )
    }

    fn seal<R: RngCore + CryptoRng>(
        &self,
        node: NodeId,
        purpose: Purpose,
        challenge: &[u8; CHALLENGE_LEN],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::with_capacity(HEADER_LEN + KEY_LEN + plaintext.len() + TAG_LEN);
        out.push(UNSEAL_ENVELOPE_VERSION);
        out.extend_from_slice(&node.to_be_bytes());
        out.push(purpose as u8);
        out.extend_from_slice(challenge);
        let (enc, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, R>(
            &OpModeS::Base,
            &self.0,
            &info(node),
            plaintext,
            &out,
            rng,
        )
        .map_err(|e| EnvelopeError::Seal(e.to_string()))?;
        out.extend_from_slice(&enc.to_bytes());
        out.extend_from_slice(&ct);
        Ok(out)
    }
}

fn check_len(secret: &SecretBytes) -> Result<(), EnvelopeError> {
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(EnvelopeError::SecretLength(secret.len()));
    }
    Ok(())
}

/// HPKE `info`: the domain and the node.
fn info(node: NodeId) -> Vec<u8> {
    let mut info = INFO_TAG.to_vec();
    info.extend_from_slice(&node.to_be_bytes());
    info
}

/// An envelope's header (all of it authenticated as HPKE `aad`).
struct Header {
    node: NodeId,
    purpose: u8,
    challenge: [u8; CHALLENGE_LEN],
}

impl Header {
    fn read(envelope: &[u8]) -> Result<Header, EnvelopeError> {
        if envelope.len() > MAX_ENVELOPE_LEN {
            return Err(EnvelopeError::Malformed(format!(
                "{} bytes, more than the {MAX_ENVELOPE_LEN} an envelope may have",
                envelope.len()
            )));
        }
        if envelope.len() < HEADER_LEN + KEY_LEN + TAG_LEN {
            return Err(EnvelopeError::Malformed(format!(
                "{} bytes are too few",
                envelope.len()
            )));
        }
        let (version, rest) = envelope
            .split_first()
            .ok_or_else(|| EnvelopeError::Malformed("empty".into()))?;
        if *version != UNSEAL_ENVELOPE_VERSION {
            return Err(EnvelopeError::Malformed(format!(
                "unknown version {version}"
            )));
        }
        let (node, rest) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| EnvelopeError::Malformed("truncated".into()))?;
        let (purpose, rest) = rest
            .split_first()
            .ok_or_else(|| EnvelopeError::Malformed("truncated".into()))?;
        let (challenge, _) = rest
            .split_first_chunk::<CHALLENGE_LEN>()
            .ok_or_else(|| EnvelopeError::Malformed("truncated".into()))?;
        Ok(Header {
            node: NodeId::from_be_bytes(*node),
            purpose: *purpose,
            challenge: *challenge,
        })
    }
}

/// The node id an envelope's header names, if it is an envelope (for the node's log of a refusal).
pub fn envelope_node(envelope: &[u8]) -> Option<NodeId> {
    Header::read(envelope).ok().map(|h| h.node)
}

/// The one challenge a node has outstanding (in memory only: a restart forgets it).
#[derive(Default)]
pub struct ChallengeSlot {
    current: Mutex<Option<(Zeroizing<[u8; CHALLENGE_LEN]>, Instant)>>,
}

impl fmt::Debug for ChallengeSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChallengeSlot").finish_non_exhaustive()
    }
}

impl ChallengeSlot {
    /// A fresh random challenge, replacing any outstanding one.
    pub fn issue(&self) -> [u8; CHALLENGE_LEN] {
        let mut challenge = [0u8; CHALLENGE_LEN];
        OsRng.fill_bytes(&mut challenge);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        *current = Some((Zeroizing::new(challenge), Instant::now()));
        challenge
    }

    /// Takes the outstanding challenge out (it is single-use), if there is one that has not lapsed.
    pub fn take(&self) -> Option<[u8; CHALLENGE_LEN]> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let (challenge, issued) = current.take()?;
        (issued.elapsed() <= CHALLENGE_LIFETIME).then_some(*challenge)
    }
}

/// RFC 4648 §6 base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new random unseal secret: 160 bits from the OS, as 32 base32 characters (RFC 4648 §6) in eight groups of four
/// joined by `-` (`ABCD-EFGH-…`). The text itself (as written, without a newline) is the secret the sealed key
/// file is wrapped under.
pub fn generate_secret() -> SecretBytes {
    let mut random = Zeroizing::new([0u8; SECRET_BYTES]);
    OsRng.fill_bytes(&mut *random);
    encode_secret(&random)
}

fn encode_secret(random: &[u8; SECRET_BYTES]) -> SecretBytes {
    let mut text = Zeroizing::new(Vec::with_capacity(39));
    // 20 bytes = 4 blocks of 5 bytes = 4 blocks of 8 characters: no padding.
    for block in random.chunks_exact(5) {
        let mut word = 0u64;
        for byte in block {
            word = (word << 8) | u64::from(*byte);
        }
        for i in (0..8).rev() {
            let index = usize::try_from((word >> (i * 5)) & 0x1f).unwrap_or_default();
            if text.len() % 5 == 4 {
                text.push(b'-');
            }
            text.push(BASE32.get(index).copied().unwrap_or(b'A'));
        }
    }
    SecretBytes::new(text.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn key_pair() -> (UnsealPrivateKey, UnsealPublicKey) {
        generate_key_pair()
    }

    fn secret(text: &str) -> SecretBytes {
        SecretBytes::new(text.as_bytes().to_vec())
    }

    /// The suite is RFC 9180's DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305: its test vector
    /// (Appendix A.2.1, base mode, first encryption) opens.
    #[test]
    fn the_suite_is_rfc_9180_a_2() {
        let sk = hex::decode("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb")
            .unwrap();
        let pk = hex::decode("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")
            .unwrap();
        let enc = hex::decode("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a")
            .unwrap();
        let info = hex::decode("4f6465206f6e2061204772656369616e2055726e").unwrap();
        let aad = hex::decode("436f756e742d30").unwrap();
        let ct = hex::decode("1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28").unwrap();
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&sk).unwrap();
        assert_eq!(Kem::sk_to_pk(&sk).to_bytes().as_slice(), pk.as_slice());
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).unwrap();
        let pt =
            hpke::single_shot_open::<Aead, Kdf, Kem>(&OpModeR::Base, &sk, &enc, &info, &ct, &aad)
                .unwrap();
        assert_eq!(pt, b"Beauty is truth, truth beauty");
    }

    #[test]
    fn an_envelope_opens_on_its_node_with_its_challenge_only() {
        let (sk, pk) = key_pair();
        let slot = ChallengeSlot::default();
        let challenge = slot.issue();
        let envelope = pk.seal_unseal(3, &challenge, &secret("ABCD-EFGH")).unwrap();
        // The secret is nowhere in the envelope.
        assert!(!envelope.windows(9).any(|w| w == b"ABCD-EFGH"));
        let taken = slot.take();
        assert_eq!(taken, Some(challenge));
        match sk
            .open(3, Purpose::Unseal, taken.as_ref(), &envelope)
            .unwrap()
        {
            Opened::Unseal(s) => assert_eq!(s.expose(), b"ABCD-EFGH"),
            other => panic!("{other:?}"),
        }
        // Single use: the slot is empty now, and the same envelope is refused as a replay.
        let replay = sk
            .open(3, Purpose::Unseal, slot.take().as_ref(), &envelope)
            .unwrap_err();
        assert!(
            matches!(replay, EnvelopeError::NoChallenge { node: 3 }),
            "{replay}"
        );
        assert_eq!(replay.kind(), ErrorKind::Stale);
        // A fresh challenge does not make the old envelope good.
        let fresh = slot.issue();
        let replay = sk
            .open(3, Purpose::Unseal, Some(&fresh), &envelope)
            .unwrap_err();
        assert!(
            matches!(replay, EnvelopeError::ChallengeMismatch { node: 3 }),
            "{replay}"
        );
        assert_eq!(replay.kind(), ErrorKind::Stale);
        // Nor does writing the fresh challenge into it: the challenge is authenticated.
        let mut rewritten = envelope.clone();
        rewritten[4..36].copy_from_slice(&fresh);
        let err = sk
            .open(3, Purpose::Unseal, Some(&fresh), &rewritten)
            .unwrap_err();
        assert!(
            matches!(err, EnvelopeError::DoesNotOpen { node: 3 }),
            "{err}"
        );
    }

    #[test]
    fn an_envelope_for_another_node_or_altered_does_not_open() {
        let (sk1, pk1) = key_pair();
        let (sk2, _) = key_pair();
        let challenge = [7u8; CHALLENGE_LEN];
        let envelope = pk1.seal_unseal(1, &challenge, &secret("s1")).unwrap();
        // Sent to node 2 as it is: named as node 1's.
        let err = sk2
            .open(2, Purpose::Unseal, Some(&challenge), &envelope)
            .unwrap_err();
        assert!(
            matches!(
                err,
                EnvelopeError::OtherNode {
                    made_for: 1,
                    node: 2
                }
            ),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidCiphertext);
        // Its header rewritten to name node 2 (and node 2's own challenge): does not open with node 2's key...
        let mut rewritten = envelope.clone();
        rewritten[1..3].copy_from_slice(&2u16.to_be_bytes());
        let err = sk2
            .open(2, Purpose::Unseal, Some(&challenge), &rewritten)
            .unwrap_err();
        assert!(
            matches!(err, EnvelopeError::DoesNotOpen { node: 2 }),
            "{err}"
        );
        // ...nor with node 1's own key (the node id is bound in `info`).
        let err = sk1
            .open(2, Purpose::Unseal, Some(&challenge), &rewritten)
            .unwrap_err();
        assert!(
            matches!(err, EnvelopeError::DoesNotOpen { node: 2 }),
            "{err}"
        );
        // Any flipped byte, in the header or after it: refused.
        for i in 0..envelope.len() {
            let mut bad = envelope.clone();
            bad[i] ^= 1;
            assert!(
                sk1.open(1, Purpose::Unseal, Some(&challenge), &bad)
                    .is_err(),
                "byte {i}"
            );
        }
        // The purpose is bound: an unseal envelope is not a change of secret.
        let err = sk1
            .open(1, Purpose::ChangeSecret, Some(&challenge), &envelope)
            .unwrap_err();
        assert!(matches!(err, EnvelopeError::WrongPurpose { .. }), "{err}");
        let mut relabelled = envelope.clone();
        relabelled[3] = Purpose::ChangeSecret as u8;
        let err = sk1
            .open(1, Purpose::ChangeSecret, Some(&challenge), &relabelled)
            .unwrap_err();
        assert!(
            matches!(err, EnvelopeError::DoesNotOpen { node: 1 }),
            "{err}"
        );
        // Truncated, empty, oversized: malformed.
        for bad in [
            &envelope[..40],
            &[][..],
            &vec![1u8; MAX_ENVELOPE_LEN + 1][..],
        ] {
            let err = sk1
                .open(1, Purpose::Unseal, Some(&challenge), bad)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
        }
    }

    #[test]
    fn a_change_carries_both_secrets() {
        let (sk, pk) = key_pair();
        let challenge = [9u8; CHALLENGE_LEN];
        let envelope = pk
            .seal_change(5, &challenge, &secret("old one"), &secret("the new one"))
            .unwrap();
        match sk
            .open(5, Purpose::ChangeSecret, Some(&challenge), &envelope)
            .unwrap()
        {
            Opened::ChangeSecret { old, new } => {
                assert_eq!(old.expose(), b"old one");
                assert_eq!(new.expose(), b"the new one");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sk.open(5, Purpose::Unseal, Some(&challenge), &envelope),
            Err(EnvelopeError::WrongPurpose { .. })
        ));
        // Empty or oversized secrets are refused before anything is sent.
        assert!(pk.seal_unseal(5, &challenge, &secret("")).is_err());
        let long = SecretBytes::new(vec![b'x'; MAX_SECRET_LEN + 1]);
        assert!(pk.seal_change(5, &challenge, &secret("a"), &long).is_err());
        // The longest change fits the envelope limit.
        let max = SecretBytes::new(vec![b'x'; MAX_SECRET_LEN]);
        let envelope = pk.seal_change(5, &challenge, &max, &max).unwrap();
        assert_eq!(envelope.len(), MAX_ENVELOPE_LEN);
        assert!(sk
            .open(5, Purpose::ChangeSecret, Some(&challenge), &envelope)
            .is_ok());
    }

    #[test]
    fn a_challenge_lapses_and_a_new_one_replaces_the_old() {
        let slot = ChallengeSlot::default();
        assert_eq!(slot.take(), None);
        let first = slot.issue();
        let second = slot.issue();
        assert_ne!(first, second);
        assert_eq!(slot.take(), Some(second));
        assert_eq!(slot.take(), None);
        slot.issue();
        {
            let mut current = slot.current.lock().unwrap();
            let (_, issued) = current.as_mut().unwrap();
            *issued = Instant::now()
                .checked_sub(CHALLENGE_LIFETIME + Duration::from_secs(1))
                .unwrap();
        }
        assert_eq!(slot.take(), None, "a lapsed challenge is not given out");
        assert_eq!(slot.take(), None, "and it is gone");
    }

    #[test]
    fn generated_secrets_are_grouped_base32_and_differ() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        let text = std::str::from_utf8(a.expose()).unwrap();
        assert_eq!(text.len(), 39);
        let groups: Vec<&str> = text.split('-').collect();
        assert_eq!(groups.len(), 8);
        assert!(groups
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(|c| BASE32.contains(&c))));
        // RFC 4648 §10: BASE32("fooba") = "MZXW6YTB"; four such blocks.
        let known = encode_secret(b"foobafoobafoobafooba");
        assert_eq!(known.expose(), b"MZXW-6YTB-MZXW-6YTB-MZXW-6YTB-MZXW-6YTB");
        assert_eq!(format!("{a:?}"), "<redacted>");
    }

    #[test]
    fn key_files_round_trip_and_the_private_one_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = key_pair();
        let sk_path = dir.path().join("unseal.key");
        let pk_path = dir.path().join("node-1.pub");
        sk.write_new(&sk_path).unwrap();
        pk.write_new(&pk_path, 1).unwrap();
        assert!(sk.write_new(&sk_path).is_err(), "must not overwrite");
        assert!(pk.write_new(&pk_path, 1).is_err(), "must not overwrite");
        let loaded = UnsealPrivateKey::load(&sk_path).unwrap();
        assert_eq!(loaded.public_key(), pk);
        assert_eq!(UnsealPublicKey::load(&pk_path).unwrap(), pk);
        assert_eq!(format!("{sk:?}"), "UnsealPrivateKey(<redacted>)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&sk_path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = UnsealPrivateKey::load(&sk_path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
