//! The client API: what a client (the `vhsm` command, the PKCS#11 module) asks the coordinator, and its answers.
//! One bidirectional stream per request, framed by [`crate::frame`].

use serde::{Deserialize, Serialize};
use vhsm_core::{
    Algorithm, ChangeApproval, HashAlg, KeyId, KeyInfo, KeyState, Membership, NodeId, ObjectId,
    PinUser, SecretBytes, StoredObject, TokenInfo,
};

use crate::error::WireError;

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
        /// The plaintext (at most [`vhsm_core::limits::MAX_CIPHER_INPUT`] bytes: larger data is cut into chunks by the caller).
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
    /// Security officer: add a node to the membership (it must be reachable now), then reshare every key to all
    /// the members. Answered at once with the change just started ([`ClientResponse::Change`]); the coordinator
    /// runs it to the end whether or not the client stays (follow it with `ChangeStatus`).
    AddNode {
        /// Its id (unused so far).
        id: NodeId,
        /// Its address.
        address: String,
        /// The security officer's approval of the committee and threshold the keys move to (the nodes refuse a
        /// reshare onto another committee without one).
        approval: Option<ChangeApproval>,
    },
    /// Security officer: remove a node: set the threshold first if `threshold` says so, reshare every key to the
    /// other members, then remove the node (not if any key could not be moved away from it). Answered at once
    /// with the change just started ([`ClientResponse::Change`]).
    RemoveNode {
        /// The node.
        id: NodeId,
        /// The threshold afterwards, if it changes.
        threshold: Option<u16>,
        /// The security officer's approval of the committee and threshold the keys move to.
        approval: Option<ChangeApproval>,
    },
    /// Security officer: set the threshold of new keys, then reshare every key to it. Answered at once with the
    /// change just started ([`ClientResponse::Change`]).
    SetThreshold {
        /// The threshold.
        threshold: u16,
        /// The security officer's approval of the committee and threshold the keys move to.
        approval: Option<ChangeApproval>,
    },
    /// Security officer: how far a membership change has got ([`ClientResponse::Change`]).
    ChangeStatus {
        /// The change's number.
        job: u64,
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
        /// The security officer's approval of the committee and threshold, needed when they differ from the key's
        /// (a key not yet on every member, a member left out, a holder being repaired).
        approval: Option<ChangeApproval>,
    },
    /// Security officer: unseal a sealed node. `envelope` is the node's unseal secret encrypted by the operator's
    /// CLI to the node's own unseal key (HPKE), answering the node's challenge ([`ClientRequest::UnsealChallenge`]);
    /// the coordinator passes it on unchanged and never sees the secret.
    UnsealNode {
        /// The node.
        node: NodeId,
        /// The HPKE envelope for the node.
        envelope: Vec<u8>,
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
    /// Security officer: a fresh single-use challenge from node `node`, for the next unseal envelope
    /// ([`ClientResponse::UnsealChallenge`]).
    UnsealChallenge {
        /// The node.
        node: NodeId,
    },
    /// Security officer: change node `node`'s unseal secret. `envelope` carries the secret in force and the new one,
    /// encrypted by the operator's CLI to the node's unseal key (HPKE), answering the node's challenge; the
    /// coordinator passes it on unchanged.
    ChangeUnsealSecret {
        /// The node.
        node: NodeId,
        /// The HPKE envelope for the node.
        envelope: Vec<u8>,
    },
}

impl ClientRequest {
    /// The request's name, as the nodes' audit logs record it (`purpose`: `sign`, `create-key`, …).
    pub fn name(&self) -> &'static str {
        match self {
            ClientRequest::Status => "status",
            ClientRequest::TokenInfo => "token-info",
            ClientRequest::Login { .. } => "login",
            ClientRequest::Logout => "logout",
            ClientRequest::CreateKey { .. } => "create-key",
            ClientRequest::UpdateKey { .. } => "update-key",
            ClientRequest::DestroyKey { .. } => "destroy-key",
            ClientRequest::CreateObject { .. } => "create-object",
            ClientRequest::ListObjects => "list-objects",
            ClientRequest::UpdateObject { .. } => "update-object",
            ClientRequest::DestroyObject { .. } => "destroy-object",
            ClientRequest::ListKeys => "list-keys",
            ClientRequest::GetKey { .. } => "get-key",
            ClientRequest::Sign { .. } => "sign",
            ClientRequest::Encrypt { .. } => "encrypt",
            ClientRequest::Decrypt { .. } => "decrypt",
            ClientRequest::Unban { .. } => "unban",
            ClientRequest::GetMembership => "get-membership",
            ClientRequest::AddNode { .. } => "add-node",
            ClientRequest::RemoveNode { .. } => "remove-node",
            ClientRequest::SetThreshold { .. } => "set-threshold",
            ClientRequest::ChangeStatus { .. } => "change-status",
            ClientRequest::ReshareKey { .. } => "reshare-key",
            ClientRequest::AuditLog { .. } => "audit-log",
            ClientRequest::SetKeyState { .. } => "set-key-state",
            ClientRequest::UnsealNode { .. } => "unseal-node",
            ClientRequest::BackupNode { .. } => "backup-node",
            ClientRequest::RestoreNode { .. } => "restore-node",
            ClientRequest::UnsealChallenge { .. } => "unseal-challenge",
            ClientRequest::ChangeUnsealSecret { .. } => "change-unseal-secret",
        }
    }
}

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
    /// Answer to `GetMembership`.
    Membership(Membership),
    /// Answer to `AddNode`, `RemoveNode`, `SetThreshold` and `ChangeStatus`: a membership change, as far as it has
    /// got.
    Change(ChangeStatus),
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
    /// Answer to `UnsealChallenge`: the node's challenge, as the node gave it.
    UnsealChallenge {
        /// The challenge (random; single use).
        challenge: [u8; 32],
        /// Whether the node says it is sealed.
        sealed: bool,
    },
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
    /// Holders whose share of a key is behind the key's epoch in the cluster, or missing (a node whose data was
    /// rolled back to before a refresh or reshare, or lost). Empty when every answering holder is up to date.
    #[serde(default)]
    pub behind: Vec<ShareBehind>,
}

/// A holder whose share of a key is behind the key's epoch (or missing), as the coordinator found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareBehind {
    /// The holder.
    pub node: NodeId,
    /// The key.
    pub key_id: KeyId,
    /// The epoch of the share it holds (`None`: it holds no share of the key).
    pub held: Option<u64>,
    /// The key's epoch in the cluster (what enough of its holders vouch for).
    pub epoch: u64,
}

/// A membership change the coordinator runs (`vhsm node add|remove`, `vhsm cluster set-threshold`), as far as it has
/// got: the keys reshared so far, the one being reshared, and, once finished, the outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeStatus {
    /// The change's number (ask for it again with `ChangeStatus`).
    pub job: u64,
    /// What is being done, in words (`remove node 4`, …).
    pub change: String,
    /// Who asked.
    pub requester: String,
    /// How many keys are to be reshared (known once the membership has changed, or before a removal).
    pub keys_total: u32,
    /// The keys reshared so far, each with its result.
    pub keys: Vec<KeyMoved>,
    /// The key being reshared now.
    pub current: Option<KeyId>,
    /// Once finished: the membership afterwards, or why the change stopped (keys already reshared stay so).
    pub outcome: Option<Result<Membership, WireError>>,
}

/// One key's reshare within a membership change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMoved {
    /// The key.
    pub key_id: KeyId,
    /// Its label.
    pub label: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Its epoch before.
    pub from_epoch: u64,
    /// Its epoch after (`None`: not reshared, still at `from_epoch` and usable).
    pub to_epoch: Option<u64>,
    /// Its holders afterwards.
    pub holders: Vec<NodeId>,
    /// Its threshold afterwards.
    pub threshold: u16,
    /// How long the reshare took.
    pub millis: u64,
    /// Why it was not reshared.
    pub error: Option<String>,
}
