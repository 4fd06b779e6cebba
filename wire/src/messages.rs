//! Every message exchanged in a cluster, defined once.
//!
//! - [`NodeRequest`]/[`NodeResponse`]: coordinator → node, one bidirectional stream per request.
//! - [`MeshMessage`]: node → node protocol messages (key generation), one unidirectional stream per message.
//!   They travel directly between nodes so that secret protocol messages never pass through the coordinator.
//! - [`ClientRequest`]/[`ClientResponse`]: client → coordinator.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use vhsm_protocols::{
    ecdsa::{digest::HashAlg, EcdsaCurve, EcdsaMessage},
    frost::{
        aggregate::{FrostSignatureShare, FrostSigningPackage},
        dkg::DkgMessage,
        round1::FrostCommitments,
    },
    reshare::ReshareMessage,
    split_aes::{dkg::SplitAesDkgMessage, partial::PartialEvaluation},
    SecretBytes, SessionId,
};

use crate::identity::NodeId;

/// A key's id: 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// A fresh random key id.
    pub fn random<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        KeyId(bytes)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| format!("'{s}' is not a key id (32 hex digits)"))?;
        let bytes: [u8; 16] = bytes
            .try_into()
            .map_err(|_| format!("'{s}' is not a key id (32 hex digits)"))?;
        Ok(KeyId(bytes))
    }
}

/// A key's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Threshold EdDSA over Ed25519 (FROST, RFC 9591).
    Ed25519,
    /// Threshold ECDSA over NIST P-256 (DKLs23).
    EcdsaP256,
    /// Threshold ECDSA over secp256k1 (DKLs23).
    EcdsaSecp256k1,
    /// Split-AES: a threshold DPRF on ristretto255 derives a fresh AES-256-GCM key per message (DiSE).
    SplitAes256,
}

impl Algorithm {
    /// Every algorithm this build supports, by CLI name.
    pub const ALL: &'static [Algorithm] = &[
        Algorithm::Ed25519,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaSecp256k1,
        Algorithm::SplitAes256,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaSecp256k1 => "ecdsa-secp256k1",
            Algorithm::SplitAes256 => "split-aes-256",
        }
    }

    /// Whether keys of this algorithm sign (the others encrypt).
    pub fn signs(self) -> bool {
        !matches!(self, Algorithm::SplitAes256)
    }

    /// The curve of an ECDSA algorithm.
    pub fn ecdsa_curve(self) -> Option<EcdsaCurve> {
        match self {
            Algorithm::Ed25519 | Algorithm::SplitAes256 => None,
            Algorithm::EcdsaP256 => Some(EcdsaCurve::P256),
            Algorithm::EcdsaSecp256k1 => Some(EcdsaCurve::Secp256k1),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                format!("unknown algorithm '{s}' (supported: {})", names.join(", "))
            })
    }
}

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

/// An object's id: 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub [u8; 16]);

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// A stored object that is not a key: a certificate or a data object an application put on the token. Kept on
/// every node (there is no share), versioned so that the newest copy wins when nodes disagree after an outage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The object's id.
    pub id: ObjectId,
    /// Incremented by every change; the highest version is the object's state.
    pub version: u64,
    /// Whether the object was destroyed (a tombstone, so that a node that missed the destruction is outvoted).
    pub destroyed: bool,
    /// Its PKCS#11 attributes (type → value), CKA_CLASS included.
    pub attributes: Vec<(u64, Vec<u8>)>,
}

/// Which PIN a login presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PinUser {
    /// The token's user (CKU_USER): may use and manage keys.
    User,
    /// The security officer (CKU_SO).
    SecurityOfficer,
}

/// The token the coordinator presents (PKCS#11 `CK_TOKEN_INFO`, in part).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's label.
    pub label: String,
    /// A serial number identifying this cluster.
    pub serial: String,
    /// Failed user logins since the last success.
    pub user_pin_failures: u32,
    /// Whether the user PIN is locked (too many failures).
    pub user_pin_locked: bool,
    /// Whether the SO PIN is locked.
    pub so_pin_locked: bool,
    /// Failures allowed before a PIN locks.
    pub max_pin_failures: u32,
    /// Shortest PIN accepted.
    pub min_pin_len: u32,
    /// Longest PIN accepted.
    pub max_pin_len: u32,
}

/// The category of a failure, so that a caller can react without parsing text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request is malformed or its parameters are invalid.
    BadRequest,
    /// No such key or object.
    NotFound,
    /// The request needs a logged-in session (`Login`).
    NotLoggedIn,
    /// The PIN is wrong.
    PinIncorrect,
    /// Too many wrong PINs: the PIN is locked.
    PinLocked,
    /// The requester's role may not make this request.
    Forbidden,
    /// Not enough nodes could be reached; `nodes` names the unreachable ones.
    Unavailable,
    /// Nodes sent invalid protocol messages; `nodes` names them.
    Misbehaviour,
    /// Nodes failed a check of an OT-based protocol that means they cheated or are compromised; `nodes` names them.
    /// The reporting node refuses to run such protocols with them until an operator clears the ban.
    Banned,
    /// Something failed inside the service.
    Internal,
    /// The node is sealed: it serves nothing until an operator unseals it (`vhsm node unseal ID`). Not a failure of
    /// the node: the coordinator treats it as unavailable and blames no one.
    Sealed,
    /// The request used single-use state the node no longer has (pre-made nonces lost in a restart, or expired):
    /// ask again with fresh state. Nobody is blamed.
    Stale,
}

/// A failure reported across the wire. Never contains secret material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// For operators: what happened, in words.
    pub message: String,
    /// The nodes concerned (unreachable, or named as culprits).
    pub nodes: Vec<NodeId>,
}

impl WireError {
    /// A failure without nodes.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        WireError {
            kind,
            message: message.into(),
            nodes: Vec::new(),
        }
    }
}

/// A node's answer to `Status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's id.
    pub node_id: NodeId,
    /// The software version.
    pub version: String,
    /// How many active keys it holds a share of.
    pub keys: u32,
    /// The nodes this node refuses to run OT-based protocols (ECDSA) with, until an operator clears them.
    pub banned: Vec<NodeId>,
    /// Whether the node is sealed (waiting for `vhsm node unseal`); a sealed node reports no keys and no bans.
    pub sealed: bool,
}

/// A node's handle for one set of pre-made FROST nonces (random; meaningful only to the node that made it).
pub type NonceId = u64;

/// Most requests in one [`NodeRequest::Batch`].
pub const MAX_BATCH: usize = 256;

/// Most commitments one `Precommit` hands out.
pub const MAX_PRECOMMIT: u16 = 1024;

/// One pre-made nonce commitment: the node keeps the nonces under `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Precommitment {
    /// The node's handle for the nonces.
    pub id: NonceId,
    /// The commitments to them.
    pub commitments: FrostCommitments,
}

/// Coordinator → node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum NodeRequest {
    /// Liveness and summary.
    Status,
    /// Take part in the distributed generation of `key` (state `Pending`, empty public key) with the other holders.
    /// The node stores its share as pending and answers [`NodeResponse::KeyGenerated`].
    GenerateKey {
        /// The protocol session.
        session: SessionId,
        /// The key to generate.
        key: KeyInfo,
    },
    /// Every holder reported the same public key and the key passed its pairwise consistency test: make the pending
    /// key `state` (active, or pre-active).
    CommitKey {
        /// The key.
        key_id: KeyId,
        /// Its first lifecycle state.
        state: KeyState,
    },
    /// A lifecycle transition (see [`KeyState::can_become`]); `Destroyed` deletes the share and keeps a tombstone.
    SetKeyState {
        /// The key.
        key_id: KeyId,
        /// The new state.
        state: KeyState,
    },
    /// Generation failed somewhere: delete the pending key.
    AbortKey {
        /// The key.
        key_id: KeyId,
    },
    /// The keys this node holds a share of.
    ListKeys,
    /// FROST round 1, ahead of time: hand out `count` nonce commitments from the node's pool (the node keeps the
    /// nonces, each for one signature share at most; see the node's `sessions::signing`).
    Precommit {
        /// How many (at most [`MAX_PRECOMMIT`]).
        count: u16,
    },
    /// FROST round 2: consume the nonces `nonce` (handed out by `Precommit`) and answer a signature share.
    SignShare {
        /// The signing session (the same on every signer of this signature; it names the audit entries).
        session: SessionId,
        /// The pre-made nonces this share uses (their commitment is this node's in `package`).
        nonce: NonceId,
        /// The key.
        key_id: KeyId,
        /// The share epoch the coordinator signs with (see [`KeyInfo::epoch`]).
        epoch: u64,
        /// Message and commitments of all signers.
        package: FrostSigningPackage,
    },
    /// Threshold ECDSA: run the signing protocol with the other `signers` over the mesh and answer the signature.
    EcdsaSign {
        /// The signing session (fresh for every attempt).
        session: SessionId,
        /// The key.
        key_id: KeyId,
        /// The share epoch every signer must hold.
        epoch: u64,
        /// Every signer of this attempt, this node included.
        signers: Vec<NodeId>,
        /// The 32-byte value to sign (the digest, already truncated to the curve order).
        digest: [u8; 32],
    },
    /// An operator cleared a ban: run OT-based protocols with `node` again.
    ClearBan {
        /// The banned node.
        node: NodeId,
    },
    /// Replace an active key's label and attributes (everything else must match what the node holds).
    UpdateKey {
        /// The key's new metadata.
        key: KeyInfo,
    },
    /// Destroy this node's share of a key and its metadata.
    DestroyKey {
        /// The key.
        key_id: KeyId,
    },
    /// Store an object (kept if its version is newer than the node's copy).
    PutObject {
        /// The object.
        object: StoredObject,
    },
    /// Every stored object, tombstones included.
    ListObjects,
    /// Take part in a reshare of `key` (as the coordinator knows it now, at its current epoch): as a dealer if this
    /// node is in `dealers` (it must hold the key at that epoch), as a new holder if it is in `committee`. A new
    /// holder stages its share of epoch `key.epoch + 1` (the current one stays in force) and answers
    /// [`NodeResponse::Reshared`] with the staged metadata.
    Reshare {
        /// The protocol session.
        session: SessionId,
        /// The key's current metadata (holders, threshold, public package, epoch).
        key: KeyInfo,
        /// Who deals (at least `key.threshold` current holders).
        dealers: Vec<NodeId>,
        /// The holders afterwards.
        committee: Vec<NodeId>,
        /// The threshold afterwards.
        threshold: u16,
    },
    /// Every new holder staged the same new shares: make the staged share of `epoch` the key's share (erasing the
    /// old one). Idempotent.
    CommitReshare {
        /// The key.
        key_id: KeyId,
        /// The new epoch.
        epoch: u64,
    },
    /// The reshare did not complete: drop the staged share of `epoch`, keep the current one.
    AbortReshare {
        /// The key.
        key_id: KeyId,
        /// The epoch that was being staged.
        epoch: u64,
    },
    /// The staged (not yet committed) shares' metadata.
    ListStaged,
    /// The cluster's membership changed (or a node restarted): keep it if it is newer than what this node has, and
    /// talk to exactly these peers.
    SetMembership {
        /// The membership.
        membership: Membership,
    },
    /// Split-AES: this node's partial evaluation of the key's DPRF at `alpha`, with its proof.
    Evaluate {
        /// The key.
        key_id: KeyId,
        /// Whether the evaluation encrypts or decrypts (the key's lifecycle state decides which is allowed).
        purpose: KeyUse,
        /// The share epoch.
        epoch: u64,
        /// The message input.
        alpha: [u8; 32],
    },
    /// Unseal a sealed node: its storage key is unwrapped with a key derived from `passphrase` (Argon2id). A wrong
    /// passphrase is refused (`PinIncorrect`) and changes nothing. Unsealing an unsealed node is a no-op.
    Unseal {
        /// The operator's passphrase.
        passphrase: SecretBytes,
    },
    /// Write a backup of this node's keys, shares, objects and membership: [`NodeResponse::Backup`].
    Backup,
    /// Restore `keys` from a backup this node wrote (the coordinator has checked their epochs against the cluster).
    Restore {
        /// The backup file, as [`NodeResponse::Backup`] gave it.
        backup: Vec<u8>,
        /// The keys to restore (those of the backup the cluster still has at the backup's epoch).
        keys: Vec<KeyId>,
    },
    /// Several independent requests in one message (at most [`MAX_BATCH`]; not nested): the node answers
    /// [`NodeResponse::Batch`] with one answer per request, in order. The coordinator batches the short requests
    /// of concurrent operations (signature shares, partial evaluations) bound for the same node.
    Batch(Vec<NodeRequest>),
    /// `request`, made for `requester` (the client's certificate name and PIN user, as the coordinator saw them):
    /// the node writes the requester into its audit log. Not nested.
    OnBehalf {
        /// Who asked the coordinator, e.g. `alice (user)`.
        requester: String,
        /// The client request it serves (`sign`, `decrypt`, …).
        purpose: String,
        /// The request.
        request: Box<NodeRequest>,
    },
    /// A client failed to log in at the coordinator: the node records it in its audit log.
    LoginFailed {
        /// Which PIN was presented.
        user: PinUser,
        /// Why it was refused (wrong PIN, locked); never the PIN.
        error: String,
    },
    /// Raw lines of this node's audit log, from line `from_line` (0-based), at most `max_lines`.
    AuditLog {
        /// The first line wanted.
        from_line: u64,
        /// At most this many lines.
        max_lines: u32,
    },
}

/// One page of a node's audit log: its raw lines, as stored (the reader verifies them itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The node whose log this is.
    pub node: NodeId,
    /// The line number (0-based) of `lines[0]`.
    pub first_line: u64,
    /// The lines, without their newline; a line that is not UTF-8 is given lossily (and will not verify).
    pub lines: Vec<String>,
    /// Whether the log has no more lines after these.
    pub end: bool,
}

/// Node → coordinator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum NodeResponse {
    /// Answer to `Status`.
    Status(NodeStatus),
    /// Answer to `GenerateKey`: the public key package (group key and every holder's verifying share).
    KeyGenerated {
        /// `FrostPublicKeys` bytes.
        public_keys: Vec<u8>,
    },
    /// Done.
    Ok,
    /// Answer to `ListKeys`.
    Keys(Vec<KeyInfo>),
    /// Answer to `Precommit`.
    Precommitments(Vec<Precommitment>),
    /// Answer to `SignShare`.
    SignatureShare(FrostSignatureShare),
    /// Answer to `EcdsaSign`: the signature, r ‖ s.
    EcdsaSignature(Vec<u8>),
    /// Answer to `ListObjects`.
    Objects(Vec<StoredObject>),
    /// Answer to `Evaluate`.
    Partial(PartialEvaluation),
    /// Answer to `Reshare`.
    Reshared {
        /// A new holder: the staged key metadata at the new epoch (holders, threshold, public package).
        staged: Option<KeyInfo>,
        /// Dealers the run excluded (a bad sub-share or commitments), to report.
        excluded: Vec<NodeId>,
    },
    /// Answer to `CommitReshare`: the key as it is now.
    Key(KeyInfo),
    /// Answer to `Backup`: the backup file (see the node's `backup` module for its format).
    Backup(Vec<u8>),
    /// Answer to `AuditLog`.
    Audit(AuditPage),
    /// Answer to `Batch`: one answer per request, in order (an `Error` for each that failed).
    Batch(Vec<NodeResponse>),
    /// The request failed.
    Error(WireError),
}

/// Node → node: one protocol message of a session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeshMessage {
    /// The session this message belongs to.
    pub session: SessionId,
    /// Random, chosen by the sender: a message delivered twice (resent because its acknowledgement was lost) is
    /// recognised and dropped by the receiver.
    pub id: u64,
    /// The message.
    pub payload: MeshPayload,
}

/// The protocols that run between nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MeshPayload {
    /// FROST distributed key generation.
    FrostDkg(DkgMessage),
    /// Threshold-ECDSA key generation.
    EcdsaDkg(EcdsaMessage),
    /// Threshold-ECDSA signing.
    EcdsaSign(EcdsaMessage),
    /// Split-AES key generation.
    SplitAesDkg(SplitAesDkgMessage),
    /// Verifiable resharing (every key type).
    Reshare(ReshareMessage),
    /// Threshold ECDSA after a reshare: the pairwise set-up between the new holders.
    EcdsaRefresh(EcdsaMessage),
}

/// One node's health as the coordinator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHealth {
    /// The node's id.
    pub id: NodeId,
    /// Its address.
    pub address: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Its status, when it answered.
    pub status: Option<NodeStatus>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// The cluster as the coordinator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The threshold new keys get.
    pub threshold: u16,
    /// Every configured node.
    pub nodes: Vec<NodeHealth>,
}

/// A node and where it listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Its id.
    pub id: NodeId,
    /// Its address, `host:port`.
    pub address: String,
}

/// The cluster's membership: the nodes that hold new keys and the threshold that new keys and reshares use.
/// Versioned: whoever holds it keeps the newest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Incremented by every change.
    pub version: u64,
    /// Threshold of new keys and of reshares.
    pub threshold: u16,
    /// The nodes.
    pub nodes: Vec<MemberEntry>,
}

impl Membership {
    /// The node ids, ascending.
    pub fn ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Checks that it is a possible cluster: distinct ids ≥ 1, 2 ≤ threshold ≤ nodes.
    pub fn check(&self) -> Result<(), String> {
        let n = self.nodes.len();
        if self.threshold < 2 || usize::from(self.threshold) > n {
            return Err(format!(
                "threshold {} is not possible with {n} node(s) (need 2 <= threshold <= nodes)",
                self.threshold
            ));
        }
        let mut ids = self.ids();
        ids.dedup();
        if ids.len() != n || ids.contains(&0) {
            return Err("node ids must be distinct and at least 1".into());
        }
        Ok(())
    }
}

/// Client → coordinator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientRequest {
    /// The cluster's health.
    Status,
    /// The token's description and PIN state.
    TokenInfo,
    /// Log this connection in; needed for every request that uses or changes keys or objects.
    Login {
        /// Which PIN.
        user: PinUser,
        /// The PIN.
        pin: SecretBytes,
    },
    /// Log this connection out.
    Logout,
    /// Generate a key by distributed key generation on the nodes.
    CreateKey {
        /// Algorithm.
        algorithm: Algorithm,
        /// Label.
        label: String,
        /// Start pre-active (usable after `SetKeyState` active) instead of active.
        pre_active: bool,
        /// Public attributes to keep with the key (e.g. CKA_ID).
        attributes: Vec<(u64, Vec<u8>)>,
    },
    /// Change a key's label and public attributes (the attribute list is replaced).
    UpdateKey {
        /// The key.
        key_id: KeyId,
        /// The new label.
        label: String,
        /// The new attributes.
        attributes: Vec<(u64, Vec<u8>)>,
    },
    /// Destroy a key: every holder deletes its share. There is no way back.
    DestroyKey {
        /// The key.
        key_id: KeyId,
    },
    /// A lifecycle transition: activate a pre-active key, deactivate an active one, mark a key compromised.
    SetKeyState {
        /// The key.
        key_id: KeyId,
        /// The new state (not `Destroyed`: that is `DestroyKey`).
        state: KeyState,
    },
    /// Store a new object (certificate, data) on the token.
    CreateObject {
        /// Its attributes, CKA_CLASS included.
        attributes: Vec<(u64, Vec<u8>)>,
    },
    /// Every object on the token.
    ListObjects,
    /// Replace an object's attributes.
    UpdateObject {
        /// The object.
        id: ObjectId,
        /// The new attributes.
        attributes: Vec<(u64, Vec<u8>)>,
    },
    /// Destroy an object.
    DestroyObject {
        /// The object.
        id: ObjectId,
    },
    /// Every active key.
    ListKeys,
    /// One key.
    GetKey {
        /// The key.
        key_id: KeyId,
    },
    /// Sign `message`.
    Sign {
        /// The key.
        key_id: KeyId,
        /// The message (or, with `hash: Some(HashAlg::Prehashed)`, its digest).
        message: Vec<u8>,
        /// ECDSA: how to hash the message (`None`: SHA-256). Ed25519 signs the whole message (pure EdDSA) and takes
        /// no hash.
        hash: Option<HashAlg>,
    },
    /// Encrypt with a split-AES key: one ciphertext blob, which only the cluster can decrypt.
    Encrypt {
        /// The key.
        key_id: KeyId,
        /// The plaintext (at most [`MAX_CIPHER_INPUT`] bytes: larger data is cut into chunks by the caller).
        plaintext: SecretBytes,
        /// Associated data the blob is bound to (not encrypted, needed again to decrypt).
        aad: Vec<u8>,
    },
    /// Decrypt a blob made by `Encrypt` (the key is named in the blob).
    Decrypt {
        /// The blob.
        blob: Vec<u8>,
        /// The associated data it was made with.
        aad: Vec<u8>,
    },
    /// An operator cleared a ban on `node` (on every node).
    Unban {
        /// The banned node.
        node: NodeId,
    },
    /// The cluster's membership (any logged-in user may read it).
    GetMembership,
    /// Security officer: add a node to the membership (it must be reachable). Keys are not moved: reshare them.
    AddNode {
        /// Its id (unused so far).
        id: NodeId,
        /// Its address.
        address: String,
    },
    /// Security officer: remove a node from the membership. Reshare every key it holds first (the coordinator
    /// refuses while it still holds a share of a key).
    RemoveNode {
        /// The node.
        id: NodeId,
    },
    /// Security officer: the threshold of new keys and reshares. Existing keys keep theirs until reshared.
    SetThreshold {
        /// The threshold.
        threshold: u16,
    },
    /// Security officer: reshare a key to the current membership (less `leave_out`) and threshold (this is also a
    /// refresh: every holder gets a new share, the public key stays). `avoid_dealers`: nodes not to use as dealers
    /// (one being repaired after losing its data); `leave_out`: members that get no share (one about to be
    /// removed).
    ReshareKey {
        /// The key.
        key_id: KeyId,
        /// Nodes that must not deal.
        avoid_dealers: Vec<NodeId>,
        /// Members left out of the new holders.
        leave_out: Vec<NodeId>,
    },
    /// Security officer: unseal a sealed node with the operator's passphrase (passed on to the node, never kept).
    UnsealNode {
        /// The node.
        node: NodeId,
        /// The passphrase.
        passphrase: SecretBytes,
    },
    /// Security officer: a backup of one node ([`ClientResponse::Backup`]).
    BackupNode {
        /// The node.
        node: NodeId,
    },
    /// Security officer: restore a node from its backup. Refused if any key in it is at an older epoch than the
    /// cluster's (its shares no longer combine); keys the cluster no longer has are left out.
    RestoreNode {
        /// The node.
        node: NodeId,
        /// The backup file.
        backup: Vec<u8>,
    },
    /// Security officer: a page of node `node`'s audit log (raw lines from `from_line`).
    AuditLog {
        /// The node.
        node: NodeId,
        /// The first line wanted (0-based).
        from_line: u64,
    },
}

/// The largest plaintext one `Encrypt` request takes.
pub const MAX_CIPHER_INPUT: usize = 1024 * 1024;

/// Coordinator → client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientResponse {
    /// Answer to `Status`.
    Status(ClusterStatus),
    /// Answer to `CreateKey` and `GetKey`.
    Key(KeyInfo),
    /// Answer to `ListKeys`.
    Keys(Vec<KeyInfo>),
    /// Done.
    Ok,
    /// Answer to `TokenInfo`.
    Token(TokenInfo),
    /// Answer to `CreateObject` and `UpdateObject`.
    Object(StoredObject),
    /// Answer to `ListObjects` (live objects only).
    Objects(Vec<StoredObject>),
    /// Answer to `Encrypt`: the blob.
    Ciphertext(Vec<u8>),
    /// Answer to `Decrypt`.
    Plaintext(SecretBytes),
    /// Answer to `GetMembership`, `AddNode`, `RemoveNode`, `SetThreshold`.
    Membership(Membership),
    /// Answer to `BackupNode`: the backup file.
    Backup(Vec<u8>),
    /// Answer to `RestoreNode`: what was restored and what was left out, for the operator.
    Restored {
        /// The keys restored.
        restored: Vec<KeyId>,
        /// Keys of the backup that were not restored, each with the reason.
        skipped: Vec<(KeyId, String)>,
    },
    /// Answer to `Sign`.
    Signature {
        /// The signature (Ed25519: 64 bytes R ‖ s).
        signature: Vec<u8>,
        /// The nodes that took part.
        signers: Vec<NodeId>,
    },
    /// Answer to `AuditLog`.
    Audit(AuditPage),
    /// The request failed.
    Error(WireError),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_id_text_round_trip() {
        let id = KeyId([0xab; 16]);
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        assert!("abc".parse::<KeyId>().is_err());
        assert!("zz".repeat(16).parse::<KeyId>().is_err());
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

    #[test]
    fn algorithm_names() {
        assert_eq!("ed25519".parse::<Algorithm>().unwrap(), Algorithm::Ed25519);
        let err = "rsa".parse::<Algorithm>().unwrap_err();
        assert!(err.contains("ed25519"), "{err}");
    }
}
