//! The node API: what the coordinator asks a node, and its answers. One bidirectional stream per request.

use serde::{Deserialize, Serialize};
use vhsm_core::{
    ChangeApproval, KeyId, KeyInfo, KeyState, KeyUse, Membership, NodeId, PinUser, SecretBytes,
    StoredObject,
};
use vhsm_protocols::{
    frost::{
        aggregate::{FrostSignatureShare, FrostSigningPackage},
        round1::FrostCommitments,
    },
    split_aes::{partial::PartialEvaluation, receipt::ReceiptPartial},
    SessionId,
};

use crate::{
    client_api::{AuditPage, NodeStatus},
    error::WireError,
};

/// A node's handle for one set of pre-made FROST nonces (random; meaningful only to the node that made it).
pub type NonceId = u64;

/// Most requests in one [`NodeRequest::Batch`].
pub const MAX_BATCH: usize = 256;

/// Lines of one audit page ([`NodeRequest::AuditLog`]) at most.
pub const MAX_PAGE_LINES: u32 = 2000;

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

/// How deep the envelopes of the node API (`Batch`, `OnBehalf`) may nest when decoded. The coordinator sends at most
/// `OnBehalf(Batch([OnBehalf(…)]))`-like nests of three; a frame nesting deeper is refused while it is decoded.
pub const MAX_NESTING: u32 = 4;

/// A depth guard for decoding the recursive types (postcard has no recursion limit: a frame of a few KiB of nested
/// `Batch` headers overflowed the decoder's stack — a fuzz finding, `fuzz/seeds/node_request/nested_batches`).
/// The depth is counted per thread: decoding is synchronous, so one decode runs on one thread from start to end.
mod nesting {
    use std::cell::Cell;

    use serde::{de::Error, Deserialize, Deserializer};

    thread_local! {
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    /// Holds one level of nesting while the inner value is decoded.
    struct Level;

    impl Level {
        fn enter<E: Error>() -> Result<Level, E> {
            let depth = DEPTH.with(|d| {
                let depth = d.get().saturating_add(1);
                d.set(depth);
                depth
            });
            // The level is counted before the check, so that dropping it always undoes exactly one increment.
            let level = Level;
            if depth > super::MAX_NESTING {
                return Err(E::custom(format!(
                    "envelopes nested deeper than {}",
                    super::MAX_NESTING
                )));
            }
            Ok(level)
        }
    }

    impl Drop for Level {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }

    pub(super) fn vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        let _level = Level::enter::<D::Error>()?;
        Vec::<T>::deserialize(deserializer)
    }

    pub(super) fn boxed<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Box<T>, D::Error> {
        let _level = Level::enter::<D::Error>()?;
        Box::<T>::deserialize(deserializer)
    }
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
    /// Destroy a key: delete this node's share, keeping a tombstone that nothing removes.
    DestroyKey {
        /// The key.
        key_id: KeyId,
    },
    /// The key moved on to `epoch` without this node (a reshare to a committee it is not in): delete its older
    /// share and metadata. Refused for the epoch the node holds or later, and for a tombstone.
    ReleaseShare {
        /// The key.
        key_id: KeyId,
        /// The epoch the key is at now.
        epoch: u64,
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
        /// The security officer's approval, needed when `committee` or `threshold` differ from the key's (every
        /// node checks it against its own record and the security officer's pinned key).
        approval: Option<ChangeApproval>,
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
        /// A decryption: the blob's encryption receipt (`vhsm_protocols::split_aes::receipt`), which the node
        /// checks when the key is not Active (it may then decrypt only what was encrypted while it was); empty
        /// for a blob without one (version 1) and for an encryption.
        receipt: Vec<u8>,
    },
    /// Unseal a sealed node. `envelope` is the node's unseal secret encrypted to the node's own unseal key by the
    /// operator's CLI (HPKE, RFC 9180; the node's `unseal` module has the format), answering the challenge the node
    /// handed out last ([`NodeRequest::UnsealChallenge`]): the coordinator relays it and never sees the secret.
    /// The node takes its challenge out at the first envelope, right or wrong: a replayed or stale envelope is
    /// refused (`Stale`), one made for another node or altered does not open (`InvalidCiphertext`), a wrong
    /// secret is refused (`PinIncorrect`); each changes nothing. Unsealing an unsealed node is a no-op.
    Unseal {
        /// The HPKE envelope (header ‖ encapsulated key ‖ ciphertext).
        envelope: Vec<u8>,
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
    Batch(#[serde(deserialize_with = "nesting::vec")] Vec<NodeRequest>),
    /// `request`, made for `requester` (the client's certificate name and PIN user, as the coordinator saw them):
    /// the node writes the requester into its audit log. Not nested.
    OnBehalf {
        /// Who asked the coordinator, e.g. `alice (user)`.
        requester: String,
        /// The client request it serves (`sign`, `decrypt`, …).
        purpose: String,
        /// The request.
        #[serde(deserialize_with = "nesting::boxed")]
        request: Box<NodeRequest>,
    },
    /// Retired: a coordinator that checked PINs itself (before the nodes did, [`NodeRequest::CheckPin`]) reported a
    /// failed login with it, for the audit log. Kept so that the variants after it keep their encoding; a node
    /// refuses it (`BadRequest`) and records nothing.
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
    /// A fresh single-use challenge for the next unseal envelope ([`NodeResponse::UnsealChallenge`]); it replaces
    /// any challenge the node handed out before and lives in its memory only. Answered sealed or not. Not recorded
    /// in the audit log (it changes nothing on disk; the envelope that answers it is recorded).
    UnsealChallenge,
    /// Change a node's unseal secret: `envelope` (as for [`NodeRequest::Unseal`], answering a fresh challenge)
    /// carries the secret in force and the new one. The node checks the old one against its sealed key file and
    /// replaces the file atomically with the storage key wrapped under the new one; a wrong old secret is refused
    /// (`PinIncorrect`) and changes nothing. Refused while the node is sealed (`Sealed`: a sealed node cannot
    /// MAC the entry recording the change; unseal it first) — after using up the challenge all the same.
    ChangeUnsealSecret {
        /// The HPKE envelope (header ‖ encapsulated key ‖ ciphertext).
        envelope: Vec<u8>,
    },
    /// Check a login's PIN against this node's own hash of it, counting failures in this node's sealed store: the
    /// right PIN is answered `Ok` and resets the counter; a wrong one is refused (`PinIncorrect`) and counted; at
    /// the node's `max_pin_failures` the PIN locks on this node, and every later check is refused (`PinLocked`),
    /// right PIN or not. A sealed node refuses (`Sealed`). The coordinator logs a client in only if the cluster's
    /// threshold of nodes answered `Ok`.
    CheckPin {
        /// Which PIN.
        user: PinUser,
        /// The PIN presented (never recorded: the audit entry's input is a digest of the PIN user alone).
        pin: SecretBytes,
    },
    /// This node's PIN failure counters: [`NodeResponse::PinState`].
    PinState,
}

impl NodeRequest {
    /// The request's name in the nodes' audit logs (`generate`, `sign`, …); `None` for the requests a node answers
    /// without recording them (reads, the envelopes `OnBehalf` and `Batch`, whose contents are recorded, and the
    /// retired `LoginFailed`, which is refused). Logs written by earlier releases also hold `login-failed`.
    pub fn audit_name(&self) -> Option<&'static str> {
        Some(match self {
            NodeRequest::Status
            | NodeRequest::ListKeys
            | NodeRequest::ListObjects
            | NodeRequest::ListStaged
            | NodeRequest::AuditLog { .. }
            | NodeRequest::UnsealChallenge
            | NodeRequest::PinState
            | NodeRequest::LoginFailed { .. }
            | NodeRequest::OnBehalf { .. }
            | NodeRequest::Batch(_) => return None,
            NodeRequest::GenerateKey { .. } => "generate",
            NodeRequest::CommitKey { .. } => "commit-key",
            NodeRequest::AbortKey { .. } => "abort-key",
            NodeRequest::Precommit { .. } => "precommit",
            NodeRequest::SignShare { .. } | NodeRequest::EcdsaSign { .. } => "sign",
            NodeRequest::Evaluate { .. } => "evaluate",
            NodeRequest::UpdateKey { .. } => "update-key",
            NodeRequest::DestroyKey { .. } => "destroy",
            NodeRequest::ReleaseShare { .. } => "release-share",
            NodeRequest::PutObject { .. } => "put-object",
            NodeRequest::Reshare { .. } => "reshare",
            NodeRequest::CommitReshare { .. } => "commit-reshare",
            NodeRequest::AbortReshare { .. } => "abort-reshare",
            NodeRequest::SetMembership { .. } => "set-membership",
            NodeRequest::ClearBan { .. } => "clear-ban",
            NodeRequest::CheckPin { .. } => "check-pin",
            NodeRequest::SetKeyState { .. } => "set-key-state",
            NodeRequest::Unseal { .. } => "unseal",
            NodeRequest::ChangeUnsealSecret { .. } => "change-unseal-secret",
            NodeRequest::Backup => "backup",
            NodeRequest::Restore { .. } => "restore",
        })
    }

    /// The key the request concerns, if one.
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            NodeRequest::GenerateKey { key, .. }
            | NodeRequest::UpdateKey { key }
            | NodeRequest::Reshare { key, .. } => Some(key.id),
            NodeRequest::CommitKey { key_id, .. }
            | NodeRequest::SetKeyState { key_id, .. }
            | NodeRequest::AbortKey { key_id }
            | NodeRequest::SignShare { key_id, .. }
            | NodeRequest::EcdsaSign { key_id, .. }
            | NodeRequest::DestroyKey { key_id }
            | NodeRequest::ReleaseShare { key_id, .. }
            | NodeRequest::Evaluate { key_id, .. }
            | NodeRequest::CommitReshare { key_id, .. }
            | NodeRequest::AbortReshare { key_id, .. } => Some(*key_id),
            _ => None,
        }
    }

    /// The protocol session the request belongs to, if one.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            NodeRequest::GenerateKey { session, .. }
            | NodeRequest::SignShare { session, .. }
            | NodeRequest::EcdsaSign { session, .. }
            | NodeRequest::Reshare { session, .. } => Some(*session),
            _ => None,
        }
    }
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
    /// Answer to a decrypting `Evaluate`.
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
    Batch(#[serde(deserialize_with = "nesting::vec")] Vec<NodeResponse>),
    /// The request failed.
    Error(WireError),
    /// Answer to an encrypting `Evaluate`: the partial evaluation and this node's receipt of the encryption.
    EncryptionPartial {
        /// The partial evaluation at the message input.
        partial: PartialEvaluation,
        /// The receipt partial, for the blob.
        receipt: ReceiptPartial,
    },
    /// Answer to `UnsealChallenge`.
    UnsealChallenge {
        /// The challenge the next envelope must answer (random; single use).
        challenge: [u8; 32],
        /// Whether the node is sealed now.
        sealed: bool,
    },
    /// Answer to `PinState`.
    PinState(PinState),
}

/// One PIN's failure counter on one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinCounter {
    /// Wrong PINs since the last right one (a check counts as a failure from its start until it is found right).
    pub failures: u32,
    /// Locked on this node: every check is refused, right PIN or not.
    pub locked: bool,
}

/// A node's PIN failure counters ([`NodeRequest::PinState`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinState {
    /// The user PIN's.
    pub user: PinCounter,
    /// The security officer's PIN's.
    pub security_officer: PinCounter,
    /// Failures in a row at which this node locks a PIN.
    pub max_failures: u32,
}

impl PinState {
    /// The counter of `user`'s PIN.
    pub fn of(&self, user: PinUser) -> PinCounter {
        match user {
            PinUser::User => self.user,
            PinUser::SecurityOfficer => self.security_officer,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// `n` `Batch` envelopes of one request each around `ListKeys`, encoded by hand.
    fn nested_batches(n: usize) -> Vec<u8> {
        let empty = postcard::to_allocvec(&NodeRequest::Batch(Vec::new())).unwrap();
        let tag = &empty[..empty.len() - 1];
        let mut bytes = Vec::new();
        for _ in 0..n {
            bytes.extend_from_slice(tag);
            bytes.push(1);
        }
        bytes.extend_from_slice(&postcard::to_allocvec(&NodeRequest::ListKeys).unwrap());
        bytes
    }

    /// New variants go at the end (postcard encodes the variant's position): the retired `LoginFailed` keeps its
    /// place, so `AuditLog` keeps the encoding it had before the PIN requests, which follow it.
    #[test]
    fn the_unseal_and_pin_variants_are_appended_and_the_earlier_encodings_stay() {
        let encode = |r: &NodeRequest| postcard::to_allocvec(r).unwrap();
        assert_eq!(
            encode(&NodeRequest::AuditLog {
                from_line: 10,
                max_lines: 2000
            }),
            [0x1b, 0x0a, 0xd0, 0x0f]
        );
        assert_eq!(
            encode(&NodeRequest::LoginFailed {
                user: PinUser::SecurityOfficer,
                error: "x".into()
            }),
            [0x1a, 0x01, 0x01, b'x']
        );
        assert_eq!(
            encode(&NodeRequest::CheckPin {
                user: PinUser::User,
                pin: SecretBytes::new(b"1234".to_vec()),
            }),
            [0x1e, 0x00, 0x04, b'1', b'2', b'3', b'4']
        );
        assert_eq!(encode(&NodeRequest::UnsealChallenge), [0x1c]);
        assert_eq!(
            encode(&NodeRequest::ChangeUnsealSecret { envelope: vec![7] }),
            [0x1d, 0x01, 0x07]
        );
        assert_eq!(encode(&NodeRequest::PinState), [0x1f]);
        let state = NodeResponse::PinState(PinState {
            user: PinCounter {
                failures: 2,
                locked: false,
            },
            security_officer: PinCounter {
                failures: 5,
                locked: true,
            },
            max_failures: 5,
        });
        assert_eq!(
            postcard::to_allocvec(&state).unwrap(),
            [0x11, 2, 0, 5, 1, 5]
        );
        // The PIN is redacted wherever a request is printed.
        let printed = format!(
            "{:?}",
            NodeRequest::CheckPin {
                user: PinUser::User,
                pin: SecretBytes::new(b"1234".to_vec()),
            }
        );
        assert!(!printed.contains("1234"), "{printed}");
    }

    /// A fuzz finding: a frame of nested `Batch` headers overflowed the decoder's stack (and a response of nested
    /// batches would have done the same to the coordinator). Now the nesting is refused while decoding.
    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let deep = nested_batches(200_000);
        assert!(postcard::from_bytes::<NodeRequest>(&deep).is_err());
        let max = usize::try_from(MAX_NESTING).unwrap();
        assert!(postcard::from_bytes::<NodeRequest>(&nested_batches(max)).is_ok());
        assert!(postcard::from_bytes::<NodeRequest>(&nested_batches(max + 1)).is_err());
        // The counter is back at zero after a refusal: the envelopes the coordinator sends still decode.
        let usual = NodeRequest::OnBehalf {
            requester: "alice (user)".into(),
            purpose: "sign".into(),
            request: Box::new(NodeRequest::Batch(vec![NodeRequest::ListKeys])),
        };
        let bytes = postcard::to_allocvec(&usual).unwrap();
        for _ in 0..3 {
            assert!(matches!(
                postcard::from_bytes::<NodeRequest>(&bytes).unwrap(),
                NodeRequest::OnBehalf { .. }
            ));
        }
        // The same for answers.
        let mut answer = NodeResponse::Ok;
        for _ in 0..200 {
            answer = NodeResponse::Batch(vec![answer]);
        }
        let bytes = postcard::to_allocvec(&answer).unwrap();
        assert!(postcard::from_bytes::<NodeResponse>(&bytes).is_err());
    }
}
