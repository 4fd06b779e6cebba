//! Sealing of stored records: AES-256-GCM under the node's storage key.
//!
//! Every record is sealed with associated data that binds the node id, the record kind, the key id and the share
//! epoch, so that a record copied to another key, another node or another kind of record does not open. redb does
//! not detect a flipped byte in place; the AEAD tag does.
//!
//! Sealed record layouts:
//!
//! | version | layout | associated data | written for |
//! |---|---|---|---|
//! | 1 | `1 ‖ epoch (8, BE) ‖ nonce (12) ‖ ciphertext ‖ tag (16)` | `"vhsm/sealed-record/v1" ‖ node (2) ‖ kind (1) ‖ subject length (1) ‖ subject ‖ epoch (8)` | shares, bans, membership, backup bodies, PIN failure counters ([`seal`]) |
//! | 2 | `2 ‖ epoch (8, BE) ‖ revision (8, BE) ‖ nonce (12) ‖ ciphertext ‖ tag (16)` | `"vhsm/sealed-record/v2" ‖ node ‖ kind ‖ subject length ‖ subject ‖ epoch (8) ‖ revision (8)` | key metadata (revision: the metadata's revision), objects (their version), the store's metadata row (its generation) ([`seal_bound`]) |
//!
//! A version-2 record is bound to its revision as well as its epoch: the store checks that the revision the
//! record opens under is the one its plaintext carries, so a record cannot be relabelled with another revision.
//! That alone does not stop an **older copy** of a whole record (its own, consistent revision) from being put
//! back in place of the newer one; what stops it is the store's sealed metadata row, which carries a keyed digest
//! of every record (see `crate::store`). [`open_bound`] reads both versions (a record written before version 2
//! has no revision bound: `None`); [`open`] reads version 1 only, as [`seal`] writes it.
//!
//! # Where the storage key comes from
//!
//! The storage key is 32 random bytes made once by `vhsm init`. It is kept in one of two files:
//!
//! - a **sealed key file** (`vhsm init --seal`, the production mode): the storage key wrapped with AES-256-GCM
//!   under a key-encryption key derived with Argon2id from the node's own unseal secret — random, one per node, kept
//!   on the operator's side — or a passphrase the operator set later ([`SealedKeyFile`]). The node starts sealed and
//!   opens its store only once it is given the secret (`vhsm node unseal`, which sends it encrypted to this node
//!   only: `crate::unseal`; a passphrase file named in `node.toml`; or `VHSM_NODE_PASSPHRASE`). A wrong secret
//!   fails the AEAD check and changes nothing. Because the storage key is random and only wrapped, a change of
//!   secret ([`SealedKeyFile::change_passphrase`], `vhsm node change-passphrase`) rewraps 48 bytes, replaces the
//!   file atomically and reseals no record.
//! - a **development key file** (64 hex digits, mode 0600, beside the data; what `vhsm up` uses): anyone who reads
//!   the node's directory can open its records. The node says so loudly at every start.
//!
//! Sealed key file layout (version 1), 110 bytes: `magic "vHSM-sealed-key\n" (16) ‖ version (1) ‖ Argon2id
//! m_cost KiB (4, BE) ‖ t_cost (4, BE) ‖ p_cost (4, BE) ‖ salt (16) ‖ nonce (12) ‖ AES-256-GCM(KEK, storage key)
//! (32 + 16)`, where KEK = Argon2id(passphrase, salt, params) and everything before the nonce is the associated
//! data (so the parameters cannot be weakened unnoticed). The tag is the key check.

use std::{fmt, path::Path};

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use vhsm_core::{KeyId, ObjectId, PinUser};
use vhsm_wire::NodeId;

const RECORD_VERSION: u8 = 1;
const AAD_TAG: &[u8] = b"vhsm/sealed-record/v1";
const RECORD_VERSION_BOUND: u8 = 2;
const AAD_TAG_BOUND: &[u8] = b"vhsm/sealed-record/v2";

/// What a sealed record holds; part of its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// A key share (subject: the key id).
    Share = 1,
    /// A key's metadata (subject: the key id).
    KeyInfo = 2,
    /// A peer this node refuses to run OT-based protocols with (subject: the peer's node id).
    Ban = 3,
    /// A stored object: a certificate or data object (subject: the object id).
    Object = 4,
    /// The cluster membership this node was last given (subject: this node's id; epoch: the membership version).
    Membership = 5,
    /// The sealed body of a backup file (subject: this node's id; epoch: the backup's creation time).
    Backup = 6,
    /// The store's metadata row: generation, audit head, digest of every record (subject: this node's id; epoch
    /// and revision: the generation). See `crate::store`.
    StoreMeta = 7,
    /// A PIN's failure counter (subject: the PIN, [`Subject::Pin`]; epoch 0). See `crate::pins`.
    PinCounter = 8,
}

/// Why a record could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The record's tag does not verify: tampered, copied from elsewhere, or sealed under another key.
    #[error("sealed {kind:?} record for {subject} does not open: it was altered, copied from another key or node, or sealed under another storage key")]
    Tampered {
        /// What the record was read for (hex).
        subject: String,
        /// Its kind.
        kind: RecordKind,
    },
    /// The record is in a format this build does not know.
    #[error("sealed record in unknown format version {0}")]
    Version(u8),
    /// The record is too short to be a sealed record.
    #[error("sealed record is truncated")]
    Truncated,
    /// The storage key file is missing or malformed.
    #[error("storage key: {0}")]
    KeyFile(String),
    /// The passphrase does not unwrap the sealed key file.
    #[error("wrong passphrase: it does not unwrap this node's sealed key file")]
    WrongPassphrase,
}

/// The node's storage key. Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; 32]);

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(<redacted>)")
    }
}

impl StorageKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        StorageKey(key)
    }

    /// A 32-byte secret for `purpose`, derived from this key (HKDF-SHA256): a secret the node has without
    /// storing another one, e.g. the hedge of its FROST nonces.
    pub fn derive(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's output limit: `expand` cannot fail.
        let _ = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"vhsm/storage-key-derive/v1"), &self.0)
            .expand(purpose, out.as_mut_slice());
        out
    }

    /// The key as 64 hex digits, for writing a development key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// Reads a key file (64 hex digits). Refuses a file that others may read.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| SealError::KeyFile(format!("cannot read {}: {e}", path.display())))?;
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(SealError::KeyFile(format!(
                    "{} is readable by other users (mode {:o}); run: chmod 600 {}",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )));
            }
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| SealError::KeyFile(format!("cannot read {}: {e}", path.display())))?,
        );
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), &mut *bytes).map_err(|_| {
            SealError::KeyFile(format!("{} does not hold 64 hex digits", path.display()))
        })?;
        Ok(StorageKey(*bytes))
    }

    /// Writes a key file with mode 0600, refusing to overwrite an existing one.
    pub fn write_new(&self, path: &Path) -> Result<(), SealError> {
        write_private_file(path, self.to_hex().as_bytes())
            .map_err(|e| SealError::KeyFile(format!("cannot write {}: {e}", path.display())))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }

    /// The raw key. Only for tests that check it never reaches the disk in the clear.
    #[doc(hidden)]
    pub fn secret_bytes_for_tests(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.to_vec())
    }
}

/// Argon2id parameters of a sealed key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// What `vhsm init --seal` uses: RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes), about
    /// 0.2–0.5 s on one core. Stronger than the token PINs' `Argon2::default()` (19 MiB, 2 passes), because this
    /// passphrase guards every share of the node and is typed once per start, not once per login.
    pub const RECOMMENDED: KdfParams = KdfParams {
        m_cost: 64 * 1024,
        t_cost: 3,
        p_cost: 4,
    };
    /// The weakest parameters a sealed key file may name (a tampered file must not make the passphrase cheap to
    /// guess): OWASP's floor for Argon2id.
    pub const MINIMUM: KdfParams = KdfParams {
        m_cost: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
    /// The strongest parameters a sealed key file may name (a tampered file must not make a node allocate
    /// gigabytes or spin for hours): 1 GiB, 64 passes, 64 lanes.
    pub const MAXIMUM: KdfParams = KdfParams {
        m_cost: 1024 * 1024,
        t_cost: 64,
        p_cost: 64,
    };
}

const SEALED_KEY_MAGIC: &[u8; 16] = b"vHSM-sealed-key\n";
const SEALED_KEY_VERSION: u8 = 1;
const SEALED_KEY_HEADER: usize = 16 + 1 + 12 + 16;
const SEALED_KEY_LEN: usize = SEALED_KEY_HEADER + 12 + 32 + 16;

/// The storage key wrapped under an operator passphrase (see the module documentation for the layout).
pub struct SealedKeyFile;

fn derive_kek(
    passphrase: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(params.m_cost, params.t_cost, params.p_cost, Some(32))
            .map_err(|e| SealError::KeyFile(format!("Argon2id parameters: {e}")))?,
    );
    let mut kek = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, &mut *kek)
        .map_err(|e| SealError::KeyFile(format!("Argon2id: {e}")))?;
    Ok(kek)
}

impl SealedKeyFile {
    /// Wraps `key` under `passphrase` with `params`; returns the file's bytes.
    pub fn wrap(
        key: &StorageKey,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<Vec<u8>, SealError> {
        if passphrase.is_empty() {
            return Err(SealError::KeyFile("the passphrase is empty".into()));
        }
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(SEALED_KEY_LEN);
        out.extend_from_slice(SEALED_KEY_MAGIC);
        out.push(SEALED_KEY_VERSION);
        out.extend_from_slice(&params.m_cost.to_be_bytes());
        out.extend_from_slice(&params.t_cost.to_be_bytes());
        out.extend_from_slice(&params.p_cost.to_be_bytes());
        out.extend_from_slice(&salt);
        let kek = derive_kek(passphrase, &salt, params)?;
        let wrapped = Aes256Gcm::new((&*kek).into())
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &key.0,
                    aad: &out,
                },
            )
            .map_err(|_| SealError::KeyFile("cannot wrap the storage key".into()))?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&wrapped);
        Ok(out)
    }

    /// Unwraps the storage key from a sealed key file's bytes. A wrong passphrase is [`SealError::WrongPassphrase`].
    pub fn unwrap(file: &[u8], passphrase: &[u8]) -> Result<StorageKey, SealError> {
        let bad = |why: &str| SealError::KeyFile(format!("not a sealed key file: {why}"));
        if file.len() != SEALED_KEY_LEN {
            return Err(bad("wrong length"));
        }
        let (header, rest) = file.split_at(SEALED_KEY_HEADER);
        let (magic, fields) = header.split_at(16);
        if magic != SEALED_KEY_MAGIC {
            return Err(bad("wrong magic"));
        }
        let (version, fields) = fields.split_first().ok_or_else(|| bad("truncated"))?;
        if *version != SEALED_KEY_VERSION {
            return Err(bad(&format!("unknown version {version}")));
        }
        let word = |i: usize| -> u32 {
            let mut b = [0u8; 4];
            b.copy_from_slice(fields.get(i * 4..i * 4 + 4).unwrap_or(&[0; 4]));
            u32::from_be_bytes(b)
        };
        let params = KdfParams {
            m_cost: word(0),
            t_cost: word(1),
            p_cost: word(2),
        };
        let (min, max) = (KdfParams::MINIMUM, KdfParams::MAXIMUM);
        if params.m_cost < min.m_cost || params.t_cost < min.t_cost || params.p_cost < min.p_cost {
            return Err(bad(&format!(
                "Argon2id parameters {params:?} are below the minimum {min:?}"
            )));
        }
        if params.m_cost > max.m_cost || params.t_cost > max.t_cost || params.p_cost > max.p_cost {
            return Err(bad(&format!(
                "Argon2id parameters {params:?} are above the maximum {max:?}"
            )));
        }
        let salt = fields.get(12..).ok_or_else(|| bad("truncated"))?;
        let (nonce, wrapped) = rest.split_at(12);
        let kek = derive_kek(passphrase, salt, params)?;
        let plain = Zeroizing::new(
            Aes256Gcm::new((&*kek).into())
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: wrapped,
                        aad: header,
                    },
                )
                .map_err(|_| SealError::WrongPassphrase)?,
        );
        let mut key = [0u8; 32];
        key.copy_from_slice(&plain);
        Ok(StorageKey(key))
    }

    /// Writes a new sealed key file (mode 0600), refusing to overwrite one.
    pub fn write_new(
        path: &Path,
        key: &StorageKey,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<(), SealError> {
        let bytes = Self::wrap(key, passphrase, params)?;
        write_private_file(path, &bytes)
            .map_err(|e| SealError::KeyFile(format!("cannot write {}: {e}", path.display())))
    }

    /// Reads a sealed key file and unwraps the storage key with `passphrase`.
    pub fn load(path: &Path, passphrase: &[u8]) -> Result<StorageKey, SealError> {
        let bytes = std::fs::read(path)
            .map_err(|e| SealError::KeyFile(format!("cannot read {}: {e}", path.display())))?;
        Self::unwrap(&bytes, passphrase).map_err(|e| match e {
            SealError::KeyFile(why) => SealError::KeyFile(format!("{}: {why}", path.display())),
            other => other,
        })
    }

    /// The Argon2id parameters a sealed key file names (not checked against the bounds: [`Self::unwrap`] does).
    fn params(file: &[u8]) -> Option<KdfParams> {
        let word = |i: usize| -> Option<u32> {
            let bytes = file.get(17 + i * 4..21 + i * 4)?;
            let mut b = [0u8; 4];
            b.copy_from_slice(bytes);
            Some(u32::from_be_bytes(b))
        };
        Some(KdfParams {
            m_cost: word(0)?,
            t_cost: word(1)?,
            p_cost: word(2)?,
        })
    }

    /// The same storage key, wrapped under `new` instead of `old` (fresh salt and nonce, the file's own Argon2id
    /// parameters): a wrong `old` is [`SealError::WrongPassphrase`].
    pub fn rewrap(file: &[u8], old: &[u8], new: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = Self::unwrap(file, old)?;
        let params = Self::params(file)
            .ok_or_else(|| SealError::KeyFile("not a sealed key file: truncated".into()))?;
        Self::wrap(&key, new, params)
    }

    /// Changes the passphrase of the sealed key file at `path` from `old` to `new`: the new file is written beside
    /// it (`NAME.tmp`, mode 0600), synced, renamed over it, and the directory synced — so a crash at any point
    /// leaves either the old file or the new one, each opening with its own passphrase. A wrong `old` is
    /// [`SealError::WrongPassphrase`] and changes nothing.
    pub fn change_passphrase(path: &Path, old: &[u8], new: &[u8]) -> Result<(), SealError> {
        let bytes = std::fs::read(path)
            .map_err(|e| SealError::KeyFile(format!("cannot read {}: {e}", path.display())))?;
        let rewrapped = Self::rewrap(&bytes, old, new).map_err(|e| match e {
            SealError::KeyFile(why) => SealError::KeyFile(format!("{}: {why}", path.display())),
            other => other,
        })?;
        replace_private_file(path, &rewrapped)
            .map_err(|e| SealError::KeyFile(format!("cannot replace {}: {e}", path.display())))
    }
}

/// Replaces `path` atomically with `contents` (mode 0600): a temporary file beside it (`NAME.tmp`, any stale one
/// removed first), synced, renamed over `path`, then the directory synced so that the rename is durable.
pub fn replace_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    write_private_file(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Syncs the directory holding `path` (after a rename or a new file in it), where the OS allows it.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Creates `path` readable and writable by its owner only (mode 0600), writes `contents` and syncs it. Refuses to
/// overwrite an existing file.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// What a record is about: a key (its id), a node (its id), an object (its id) or one of the token's PINs. Part of
/// the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A key.
    Key(KeyId),
    /// A node.
    Node(NodeId),
    /// A stored object.
    Object(ObjectId),
    /// One of the token's PINs (its failure counter).
    Pin(PinUser),
}

impl Subject {
    fn bytes(self) -> Vec<u8> {
        match self {
            Subject::Key(id) => id.0.to_vec(),
            Subject::Node(id) => id.to_be_bytes().to_vec(),
            Subject::Object(id) => id.0.to_vec(),
            Subject::Pin(PinUser::User) => b"pin/user".to_vec(),
            Subject::Pin(PinUser::SecurityOfficer) => b"pin/so".to_vec(),
        }
    }

    fn describe(self) -> String {
        match self {
            Subject::Key(id) => format!("key {id}"),
            Subject::Node(id) => format!("node {id}"),
            Subject::Object(id) => format!("object {id}"),
            Subject::Pin(PinUser::User) => "the user PIN".into(),
            Subject::Pin(PinUser::SecurityOfficer) => "the security officer's PIN".into(),
        }
    }
}

fn associated_data(node: NodeId, kind: RecordKind, subject: Subject, epoch: u64) -> Vec<u8> {
    let subject = subject.bytes();
    let mut aad = Vec::with_capacity(AAD_TAG.len() + 2 + 1 + 1 + subject.len() + 8);
    aad.extend_from_slice(AAD_TAG);
    aad.extend_from_slice(&node.to_be_bytes());
    aad.push(kind as u8);
    // Length-prefixed, so that subjects of different lengths never collide.
    aad.push(u8::try_from(subject.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(&subject);
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad
}

/// Seals `plaintext` as a record of `kind` about `subject` at `epoch` on node `node`.
pub fn seal(
    key: &StorageKey,
    node: NodeId,
    kind: RecordKind,
    subject: Subject,
    epoch: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    let aad = associated_data(node, kind, subject, epoch);
    encrypt_record(
        key,
        &[RECORD_VERSION],
        &epoch.to_be_bytes(),
        &aad,
        plaintext,
    )
}

/// `version ‖ bound ‖ nonce ‖ AES-256-GCM(plaintext; aad)` with a fresh nonce: the one encryption of both record
/// versions. Encryption with a valid key and nonce only fails for inputs beyond 64 GiB, which no record is.
fn encrypt_record(
    key: &StorageKey,
    version: &[u8],
    bound: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let sealed = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(version.len() + bound.len() + 12 + sealed.len());
    out.extend_from_slice(version);
    out.extend_from_slice(bound);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens a record sealed by [`seal`]; returns its epoch and plaintext.
pub fn open(
    key: &StorageKey,
    node: NodeId,
    kind: RecordKind,
    subject: Subject,
    record: &[u8],
) -> Result<(u64, Zeroizing<Vec<u8>>), SealError> {
    let (version, rest) = record.split_first().ok_or(SealError::Truncated)?;
    if *version != RECORD_VERSION {
        return Err(SealError::Version(*version));
    }
    if rest.len() < 8 + 12 + 16 {
        return Err(SealError::Truncated);
    }
    let (epoch, rest) = rest.split_at(8);
    let epoch = be_u64(epoch);
    let aad = associated_data(node, kind, subject, epoch);
    Ok((epoch, decrypt_record(key, rest, &aad, kind, subject)?))
}

/// Opens `nonce ‖ AES-256-GCM(plaintext; aad)`, the part after the header both record versions share (see
/// [`encrypt_record`]). The caller has checked it holds at least a nonce and a tag.
fn decrypt_record(
    key: &StorageKey,
    nonce_and_sealed: &[u8],
    aad: &[u8],
    kind: RecordKind,
    subject: Subject,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let (nonce, sealed) = nonce_and_sealed.split_at(12);
    key.cipher()
        .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
        .map(Zeroizing::new)
        .map_err(|_| SealError::Tampered {
            subject: subject.describe(),
            kind,
        })
}

/// A big-endian u64 from exactly 8 bytes (0 if not 8: never, by the callers' length checks).
fn be_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}

/// What a version-2 record is bound to besides node, kind and subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The epoch (a key's share epoch; 0 where there is none).
    pub epoch: u64,
    /// The revision (a key's metadata revision, an object's version, the store's generation). `None` when read
    /// from a version-1 record, which binds none.
    pub revision: Option<u64>,
}

fn associated_data_bound(
    node: NodeId,
    kind: RecordKind,
    subject: Subject,
    epoch: u64,
    revision: u64,
) -> Vec<u8> {
    let subject = subject.bytes();
    let mut aad = Vec::with_capacity(AAD_TAG_BOUND.len() + 2 + 1 + 1 + subject.len() + 16);
    aad.extend_from_slice(AAD_TAG_BOUND);
    aad.extend_from_slice(&node.to_be_bytes());
    aad.push(kind as u8);
    aad.push(u8::try_from(subject.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(&subject);
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad.extend_from_slice(&revision.to_be_bytes());
    aad
}

/// Seals `plaintext` as a version-2 record of `kind` about `subject` on node `node`, bound to `epoch` and
/// `revision`.
pub fn seal_bound(
    key: &StorageKey,
    node: NodeId,
    kind: RecordKind,
    subject: Subject,
    epoch: u64,
    revision: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    let aad = associated_data_bound(node, kind, subject, epoch, revision);
    let mut bound = [0u8; 16];
    bound[..8].copy_from_slice(&epoch.to_be_bytes());
    bound[8..].copy_from_slice(&revision.to_be_bytes());
    encrypt_record(key, &[RECORD_VERSION_BOUND], &bound, &aad, plaintext)
}

/// Opens a record of either version ([`seal`]'s version 1 or [`seal_bound`]'s version 2); returns what it is
/// bound to and its plaintext.
pub fn open_bound(
    key: &StorageKey,
    node: NodeId,
    kind: RecordKind,
    subject: Subject,
    record: &[u8],
) -> Result<(Binding, Zeroizing<Vec<u8>>), SealError> {
    match record.first() {
        Some(&RECORD_VERSION) => open(key, node, kind, subject, record).map(|(epoch, plain)| {
            (
                Binding {
                    epoch,
                    revision: None,
                },
                plain,
            )
        }),
        Some(&RECORD_VERSION_BOUND) => {
            let rest = record.get(1..).unwrap_or_default();
            if rest.len() < 16 + 12 + 16 {
                return Err(SealError::Truncated);
            }
            let (header, rest) = rest.split_at(16);
            let (epoch, revision) = header.split_at(8);
            let (epoch, revision) = (be_u64(epoch), be_u64(revision));
            let aad = associated_data_bound(node, kind, subject, epoch, revision);
            let plaintext = decrypt_record(key, rest, &aad, kind, subject)?;
            Ok((
                Binding {
                    epoch,
                    revision: Some(revision),
                },
                plaintext,
            ))
        }
        Some(&other) => Err(SealError::Version(other)),
        None => Err(SealError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn sealed_records_open_only_where_they_belong() {
        let key = StorageKey::generate();
        let id = Subject::Key(KeyId([7; 16]));
        let record = seal(&key, 1, RecordKind::Share, id, 3, b"secret share");
        let (epoch, plain) = open(&key, 1, RecordKind::Share, id, &record).unwrap();
        assert_eq!((epoch, plain.as_slice()), (3, &b"secret share"[..]));
        assert!(!record.windows(12).any(|w| w == b"secret share"));

        // Another node, kind, key id, or storage key: refused.
        assert!(open(&key, 2, RecordKind::Share, id, &record).is_err());
        assert!(open(&key, 1, RecordKind::KeyInfo, id, &record).is_err());
        assert!(open(
            &key,
            1,
            RecordKind::Share,
            Subject::Key(KeyId([8; 16])),
            &record
        )
        .is_err());
        assert!(open(&key, 1, RecordKind::Share, Subject::Node(7), &record).is_err());
        assert!(open(&StorageKey::generate(), 1, RecordKind::Share, id, &record).is_err());

        // Any flipped byte, including the epoch in the header: refused.
        for i in 0..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 1;
            assert!(
                open(&key, 1, RecordKind::Share, id, &bad).is_err(),
                "byte {i}"
            );
        }
        assert!(matches!(
            open(&key, 1, RecordKind::Share, id, &record[..20]),
            Err(SealError::Truncated)
        ));
    }

    #[test]
    fn bound_records_open_only_under_their_epoch_and_revision() {
        let key = StorageKey::generate();
        let id = Subject::Key(KeyId([7; 16]));
        let record = seal_bound(&key, 1, RecordKind::KeyInfo, id, 3, 9, b"metadata");
        let (binding, plain) = open_bound(&key, 1, RecordKind::KeyInfo, id, &record).unwrap();
        assert_eq!(
            binding,
            Binding {
                epoch: 3,
                revision: Some(9)
            }
        );
        assert_eq!(plain.as_slice(), b"metadata");
        // Another node, kind, subject or key: refused; any flipped byte (the revision in the header included).
        assert!(open_bound(&key, 2, RecordKind::KeyInfo, id, &record).is_err());
        assert!(open_bound(&key, 1, RecordKind::Share, id, &record).is_err());
        assert!(open_bound(&key, 1, RecordKind::KeyInfo, Subject::Node(7), &record).is_err());
        assert!(open_bound(&StorageKey::generate(), 1, RecordKind::KeyInfo, id, &record).is_err());
        for i in 0..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 1;
            assert!(
                open_bound(&key, 1, RecordKind::KeyInfo, id, &bad).is_err(),
                "byte {i}"
            );
        }
        assert!(matches!(
            open_bound(&key, 1, RecordKind::KeyInfo, id, &record[..30]),
            Err(SealError::Truncated)
        ));
        // Version 1 still opens, with no revision bound; `open` keeps reading version 1 only.
        let old = seal(&key, 1, RecordKind::KeyInfo, id, 3, b"metadata");
        let (binding, _) = open_bound(&key, 1, RecordKind::KeyInfo, id, &old).unwrap();
        assert_eq!(binding.revision, None);
        assert!(matches!(
            open(&key, 1, RecordKind::KeyInfo, id, &record),
            Err(SealError::Version(2))
        ));
    }

    #[test]
    fn sealed_key_file_opens_with_the_passphrase_only() {
        let key = StorageKey::generate();
        let file = SealedKeyFile::wrap(&key, b"correct horse", KdfParams::MINIMUM).unwrap();
        assert_eq!(file.len(), SEALED_KEY_LEN);
        assert!(!file.windows(32).any(|w| w == key.0));
        let opened = SealedKeyFile::unwrap(&file, b"correct horse").unwrap();
        assert_eq!(opened.0, key.0);
        assert!(matches!(
            SealedKeyFile::unwrap(&file, b"correct horsf"),
            Err(SealError::WrongPassphrase)
        ));
        // Any flipped byte: refused (parameters out of bounds, or the tag fails).
        for i in [
            0,
            16,
            17,
            20,
            21,
            24,
            25,
            28,
            29,
            45,
            60,
            SEALED_KEY_LEN - 1,
        ] {
            let mut bad = file.clone();
            bad[i] ^= 1;
            assert!(
                SealedKeyFile::unwrap(&bad, b"correct horse").is_err(),
                "byte {i}"
            );
        }
        // Weakened parameters are refused before any derivation.
        let mut weak = file.clone();
        weak[17..21].copy_from_slice(&8u32.to_be_bytes());
        let err = SealedKeyFile::unwrap(&weak, b"correct horse").unwrap_err();
        assert!(err.to_string().contains("minimum"), "{err}");
        assert!(SealedKeyFile::wrap(&key, b"", KdfParams::MINIMUM).is_err());
    }

    #[test]
    fn a_passphrase_change_rewraps_the_same_key_and_a_wrong_old_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealed.key");
        let key = StorageKey::generate();
        SealedKeyFile::write_new(&path, &key, b"old secret", KdfParams::MINIMUM).unwrap();
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            SealedKeyFile::change_passphrase(&path, b"not it", b"new secret"),
            Err(SealError::WrongPassphrase)
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing changed");
        SealedKeyFile::change_passphrase(&path, b"old secret", b"new secret").unwrap();
        assert!(matches!(
            SealedKeyFile::load(&path, b"old secret"),
            Err(SealError::WrongPassphrase)
        ));
        assert_eq!(SealedKeyFile::load(&path, b"new secret").unwrap().0, key.0);
        let after = std::fs::read(&path).unwrap();
        assert_eq!(SealedKeyFile::params(&after), Some(KdfParams::MINIMUM));
        assert!(!dir.path().join("sealed.key.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn key_file_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.key");
        let key = StorageKey::generate();
        key.write_new(&path).unwrap();
        let loaded = StorageKey::load(&path).unwrap();
        assert_eq!(key.0, loaded.0);
        assert!(key.write_new(&path).is_err(), "must not overwrite");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = StorageKey::load(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
