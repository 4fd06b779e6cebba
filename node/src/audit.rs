//! The node's audit log: append-only, hash-chained, MACed, anchored in the sealed store, one entry per line, fail
//! closed.
//!
//! Every request that uses or changes a key, an object or the cluster's configuration is recorded in
//! `DATA_DIR/audit.log` ([`AUDIT_FILE`]), and so is every PIN check (`check-pin`: every login, right PIN or not,
//! with its outcome). Reads (status, lists, PIN counters, the log itself) are not recorded.
//!
//! # Format (version 2)
//!
//! One JSON object per line ([`Entry`]), `\n`-terminated, fields in this order:
//!
//! | field | meaning |
//! |---|---|
//! | `v` | format version, 2 (1 for entries written before version 2; see *Upgrade*) |
//! | `node` | the node that wrote it (a log copied to another node does not verify there) |
//! | `seq` | 0, 1, 2, … — equal to the line number |
//! | `time` | seconds since the Unix epoch |
//! | `prev` | the previous entry's `hash` (64 hex digits; 64 zeros for the first entry) |
//! | `op` | what was done: `generate`, `commit-key`, `abort-key`, `precommit` (FROST nonce commitments handed out ahead of time), `sign`, `evaluate` (split-AES encrypt or decrypt), `update-key`, `destroy`, `release-share`, `put-object`, `reshare`, `commit-reshare`, `abort-reshare`, `set-membership`, `clear-ban`, `set-key-state`, `unseal`, `change-unseal-secret`, `backup`, `restore`, `check-pin` (a login's PIN checked by this node; the result says right, wrong or locked). Logs of earlier releases also hold `login-failed` (a failed login the coordinator reported when it checked PINs itself) |
//! | `requester` | who asked: the client's certificate name and PIN user as the coordinator reported them (`alice (user)`), or `coordinator` for the coordinator's own housekeeping |
//! | `purpose` | the client request that caused it (`sign`, `encrypt`, `create-key`, …), empty if none |
//! | `key` | the key id (hex), if the operation concerns a key |
//! | `session` | the protocol session id (hex), if any: the entries of one operation on different nodes share it |
//! | `parties` | on the `ok` entry of a protocol run over the mesh (`generate`, an ECDSA `sign`, `reshare`): every node of the session (holders; signers; dealers and new committee). The run cannot complete without a message from each, and each wrote its own `attempt` entry (fsynced) before it sent one — so every node listed here holds an entry of the session. Empty otherwise (a FROST signature share is answered to the coordinator alone and proves nothing about the other signers) |
//! | `input` | SHA-256 of the node request (postcard encoding; for `unseal` and `change-unseal-secret` of the request with its HPKE envelope, which carries the secret only encrypted to the node — never of a secret in the clear; for `check-pin` of `check-pin/user` or `check-pin/so`, never of a PIN; for `sign` with the node's own nonce handle set to 0, so that every signer records the same input): never the input itself. Node requests carry no other secret (no share, nonce or plaintext: messages are signed as given, split-AES sends only the DPRF input α) |
//! | `result` | `attempt`, `ok`, or `error KIND: message` |
//! | `gen` | the store's generation (see `crate::store`) when the entry was written: the last one committed, so never more than the store on disk holds; `null` while the node is sealed (its store is not open) |
//! | `hash` | SHA-256 over `"vhsm/audit-entry/v2"` and the postcard encoding of every field above (in order) |
//! | `mac` | HMAC-SHA-256 under the node's **audit key** over `"vhsm/audit-entry-mac/v2" ‖ node (2, BE) ‖ hash (32)`, hex; `null` for an entry written while the node is sealed |
//!
//! The audit key is derived from the storage key (HKDF-SHA256, label `vhsm/audit-mac/v1`, through
//! `StorageKey::derive`), so only the node itself, unsealed, can write an entry that verifies: a log recomputed
//! by someone without the storage key, copied from another node, or written under another storage key fails.
//! Because every hash covers the previous one, a MACed entry vouches for every entry before it.
//!
//! **Entries without a MAC.** A sealed node does not have its storage key, yet it records what it is asked (an
//! unseal attempt, requests refused because it is sealed, PIN checks it refuses). Those entries carry no MAC and no
//! generation. They are accepted because such an entry never records a completed operation: its result is
//! `attempt` or `error …` (a sealed node does nothing else; the result of the unseal that opens the store is
//! written after the store is open, MACed). [`verify_chain`] refuses an entry without a MAC whose result is
//! anything else. The first MACed entry after them vouches for them; only a tail of such entries after the last
//! MACed one is unauthenticated, and it records nothing done.
//!
//! **Upgrade.** A log written by a build before version 2 holds version-1 entries (no `parties`, `gen`, `mac`;
//! hashed under `"vhsm/audit-entry/v1"`). They are read and verified as before, and accepted **unMACed** — but
//! only before the first version-2 entry: this build never writes a version-1 entry, so one after a version-2
//! entry is a break. A node upgraded in place therefore starts on its existing log.
//!
//! # When entries are written
//!
//! Every recorded request gets two entries: an `attempt` entry written and fsynced **before** the node does
//! anything, and a result entry (`ok` / `error …`) written and fsynced before the answer leaves the node —
//! except the requests whose only effect is their answer (a FROST signature share, a split-AES partial
//! evaluation, nonce commitments handed out): they get the result entry alone, written and
//! fsynced before the answer leaves. If the node stops before that entry is on disk, nothing of the operation left
//! the node, so an `attempt` entry would record nothing more (and it cost an fsync on the hot path of every
//! signature). An ECDSA signature is not such a request: its protocol messages leave the node over the mesh while
//! it runs.
//! Appends that arrive together share one fsync (group commit): each append writes its line under the chain's
//! lock, then waits until an fsync that began after its write has finished — the first waiter runs it for all.
//! An append therefore returns only once its own entry is on disk, but concurrent requests do not queue behind
//! one fsync each. An fsync that fails leaves the log refusing every further append (what reached the disk is
//! unknown; the restart verifies the chain). If the
//! attempt cannot be written the request is refused (nothing is signed, evaluated, generated or destroyed); if the
//! result cannot be written the answer is replaced by an error, so no signature share or partial leaves the node
//! unrecorded (a state change that already happened, e.g. a commit, is then recorded only by its attempt — like a
//! store commit whose outcome is unknown). A PIN check is recorded like any request: `attempt`, then `ok` (the right
//! PIN) or `error PinIncorrect: …` / `error PinLocked: …`, with this node's count.
//!
//! The file is opened by path for every append and its length checked against the node's own count: a log that
//! was removed, replaced (even by a directory), truncated or appended to behind the node's back makes every
//! operation fail until the node is restarted (and the restart checks the chain). A write that fails half-way is
//! cut back; if even that fails the log refuses every further append. The file is created with mode 0600.
//!
//! # The anchor in the store
//!
//! The log keeps its **durable head** ([`Head`]: how many entries are known to be on disk — fsynced — and the hash
//! of the last of them). The share store seals that head into its metadata row in every write transaction, and
//! again (an *anchor*) at unseal and within about a second of any later append (`Node::start_background`). The
//! log's entries in turn carry the store generation they saw (`gen`). The order is what makes a crash harmless:
//! an entry is fsynced before the store records it as the head, and the store commits (durably) before an entry
//! carries its new generation. So at any crash point:
//!
//! - the store's head is at most the log's durable length (the log may run ahead by the entries written since the
//!   last store write or anchor: at most about a second of entries, plus a torn line);
//! - no entry's `gen` exceeds the generation the store holds.
//!
//! # At start
//!
//! When the log is opened (before unseal, without the storage key) the whole chain is verified ([`verify_chain`]).
//! A torn last line (no newline: a crash during an append) is cut off, with a warning that says what is known: its
//! append never returned, so if it was an `attempt` entry the operation never started, and if it was a result entry
//! the operation may have run (a store change may have been made) but its answer never left the node. Any other
//! break — a flipped byte, a removed or reordered entry — makes the node **refuse to start**, naming the line.
//!
//! When the node unseals (at start with a key file or a passphrase, or later by `vhsm node unseal`), with the
//! storage key known and the store open, [`AuditLog::check_sealed`] checks, and the node refuses to serve
//! (naming the file, what is missing, and what to do) unless all hold:
//!
//! 1. every version-2 entry that carries a MAC verifies under the audit key;
//! 2. the log holds at least the store's head's count of entries, and the entry at seq `count − 1` has the head's
//!    hash (else entries were removed: the log was truncated, emptied, removed or replaced);
//! 3. no entry's `gen` exceeds the store's generation (else `shares.redb` is older than the log: it was rolled
//!    back to an older copy);
//! 4. a store that holds key records did not start with an empty or missing log (what a store written before the
//!    head was sealed relies on).
//!
//! Only then is the audit key given to the log (entries are MACed from then on) and the head anchored. A node
//! that refuses keeps its data untouched: restore the log (or the store) from a copy, or keep the data directory
//! as evidence, move it aside and repair the node (`vhsm node repair N`), which deals it fresh shares.
//!
//! # What the chain does not do
//!
//! - **A whole data directory rolled back** (store and log from the same older copy) is consistent, and this node
//!   cannot tell it from its own disk. The cluster can: the node's peers hold the entries of the sessions it took
//!   part in since (`vhsm audit verify` reports every session a node lacks, from the peers' `parties`), and its
//!   shares are behind the key's epoch if a refresh happened since (`vhsm status` flags them).
//! - **The tail after the last anchor** (at most about a second of entries before a crash, or before the node was
//!   stopped) can be cut without the store noticing; the peers' entries again show what the node lacks for mesh
//!   protocols (not for FROST signature shares, which involve no other node).
//! - **Entries written while sealed** are not MACed (see above); they record nothing done.
//! - `vhsm audit verify` reads the logs through the coordinator and has no node's storage key: it checks the
//!   chains, the agreement between nodes and the missing entries, not the MACs (each node checks its own at
//!   unseal).
//! - The coordinator's `requester` is asserted, not proven (the node trusts the coordinator for it).

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, OnceLock,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use hkdf::hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vhsm_core::KeyId;
use vhsm_protocols::SessionId;
use vhsm_wire::{client_api::AuditPage, node_api::NodeRequest, NodeId};
use zeroize::Zeroizing;

use crate::seal::StorageKey;

/// The audit log's file name inside the node's data directory.
pub const AUDIT_FILE: &str = "audit.log";
/// The entry format version this build writes.
pub const FORMAT_VERSION: u8 = 2;
/// The first format version, still read (see the module docs, *Upgrade*).
pub const FORMAT_VERSION_1: u8 = 1;
const HASH_DOMAIN_V1: &[u8] = b"vhsm/audit-entry/v1";
const HASH_DOMAIN: &[u8] = b"vhsm/audit-entry/v2";
const MAC_DOMAIN: &[u8] = b"vhsm/audit-entry-mac/v2";
/// The label the audit key is derived under (from the storage key).
const AUDIT_KEY_LABEL: &[u8] = b"vhsm/audit-mac/v1";
const GENESIS: [u8; 32] = [0; 32];
/// Bytes of one [`AuditPage`] at most (a frame is 4 MiB).
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// One audit entry, as stored (one JSON line). Version-1 entries have no `parties`, `gen` or `mac`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Format version.
    pub v: u8,
    /// The node that wrote it.
    pub node: NodeId,
    /// Sequence number (= line number, from 0).
    pub seq: u64,
    /// Seconds since the Unix epoch.
    pub time: u64,
    /// The previous entry's hash (hex).
    pub prev: String,
    /// The operation.
    pub op: String,
    /// Who asked.
    pub requester: String,
    /// The client request that caused it.
    pub purpose: String,
    /// The key (hex id).
    pub key: Option<String>,
    /// The protocol session (hex id).
    pub session: Option<String>,
    /// On the `ok` entry of a mesh protocol: every node of the session (see the module docs).
    #[serde(default)]
    pub parties: Vec<NodeId>,
    /// SHA-256 of the node request (hex).
    pub input: String,
    /// `attempt`, `ok` or `error KIND: message`.
    pub result: String,
    /// The store generation when it was written (`None` while sealed, and in version 1).
    #[serde(default)]
    pub gen: Option<u64>,
    /// This entry's hash (hex).
    pub hash: String,
    /// HMAC-SHA-256 of the hash under the audit key (hex); `None` while sealed, and in version 1.
    #[serde(default)]
    pub mac: Option<String>,
}

impl Entry {
    /// The hash this entry's fields (all but `hash` and `mac`) give, under its version's rules.
    pub fn compute_hash(&self) -> [u8; 32] {
        // Serializing strings, integers, options and vectors into a Vec cannot fail.
        let (domain, encoded) = if self.v == FORMAT_VERSION_1 {
            let body = (
                self.v,
                self.node,
                self.seq,
                self.time,
                &self.prev,
                &self.op,
                &self.requester,
                &self.purpose,
                &self.key,
                &self.session,
                &self.input,
                &self.result,
            );
            (
                HASH_DOMAIN_V1,
                postcard::to_allocvec(&body).unwrap_or_default(),
            )
        } else {
            let body = (
                self.v,
                self.node,
                self.seq,
                self.time,
                &self.prev,
                &self.op,
                &self.requester,
                &self.purpose,
                &self.key,
                &self.session,
                &self.parties,
                &self.input,
                &self.result,
                self.gen,
            );
            (
                HASH_DOMAIN,
                postcard::to_allocvec(&body).unwrap_or_default(),
            )
        };
        let mut h = Sha256::new();
        h.update(domain);
        h.update(&encoded);
        h.finalize().into()
    }

    /// Whether this is an attempt entry (written before the work).
    pub fn is_attempt(&self) -> bool {
        self.result == "attempt"
    }

    /// Whether the entry records a completed operation (its result is neither `attempt` nor an error).
    pub fn records_completion(&self) -> bool {
        !self.is_attempt() && !self.result.starts_with("error")
    }
}

/// The node's audit key: the MAC key of its entries, derived from the storage key. Zeroized on drop; never printed.
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    /// The audit key of the node whose storage key is `key` (HKDF-SHA256, label `vhsm/audit-mac/v1`).
    pub fn derive(key: &StorageKey) -> Self {
        AuditKey(key.derive(AUDIT_KEY_LABEL))
    }

    fn hmac(&self, node: NodeId, hash: &[u8; 32]) -> Option<Hmac<Sha256>> {
        // HMAC takes a key of any length: `new_from_slice` does not fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice()).ok()?;
        mac.update(MAC_DOMAIN);
        mac.update(&node.to_be_bytes());
        mac.update(hash);
        Some(mac)
    }

    /// The MAC of an entry of node `node` whose hash is `hash` (`None` only if HMAC refused the key, which it
    /// does not).
    pub fn mac(&self, node: NodeId, hash: &[u8; 32]) -> Option<[u8; 32]> {
        Some(self.hmac(node, hash)?.finalize().into_bytes().into())
    }

    /// Whether `entry` carries its MAC under this key (compared in constant time).
    pub fn verifies(&self, entry: &Entry) -> bool {
        let (Ok(mac), Ok(hash)) = (
            hex::decode(entry.mac.as_deref().unwrap_or("")),
            hex32(&entry.hash),
        ) else {
            return false;
        };
        self.hmac(entry.node, &hash)
            .is_some_and(|h| h.verify_slice(&mac).is_ok())
    }
}

fn hex32(text: &str) -> Result<[u8; 32], hex::FromHexError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)?;
    Ok(out)
}

/// How far a log reaches: the number of entries, and the hash of the last one (zeros for none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// How many entries (the next seq).
    pub entries: u64,
    /// The hash of entry `entries − 1`.
    pub hash: [u8; 32],
}

/// Why the audit log cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Reading or writing the file failed.
    #[error("audit log {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The chain does not verify.
    #[error("audit log {path} does not verify: {problem}")]
    Broken {
        /// The file.
        path: String,
        /// The first break.
        problem: ChainBreak,
    },
    /// Entries the store says were written are not in the log (missing, emptied, truncated or replaced log).
    #[error(
        "audit log {path} {problem}: entries this node wrote are gone, so the node refuses to serve. Restore the \
         file from a copy of this node's data directory; if it is lost for good, keep the data directory as \
         evidence, move it aside and repair the node (vhsm node repair {node}), which deals it fresh shares and \
         starts a new log"
    )]
    LostEntries {
        /// The file.
        path: String,
        /// This node.
        node: NodeId,
        /// What is missing, in words.
        problem: String,
    },
    /// The share database is older than what the log says the store reached (a rolled-back `shares.redb`).
    #[error(
        "share database {store} is at store generation {store_generation}, but audit log {path} records \
         generation {log_generation} at entry seq {seq}: the share database was replaced by an older copy (rolled \
         back) and may hold shares, key states or keys the cluster has moved on from, so the node refuses to \
         serve. Put the current share database back; if it is lost, keep the data directory as evidence, move it \
         aside and repair the node (vhsm node repair {node})"
    )]
    StoreBehind {
        /// The log.
        path: String,
        /// The share database.
        store: String,
        /// This node.
        node: NodeId,
        /// The store's generation.
        store_generation: u64,
        /// The highest generation an entry records.
        log_generation: u64,
        /// The entry that records it.
        seq: u64,
    },
    /// An entry's MAC does not verify under this node's audit key.
    #[error(
        "audit log {path}: entry seq {seq} is not authentic: {reason}. The log was altered and its chain \
         recomputed, copied from another node, or written under another storage key, so the node refuses to \
         serve. Keep the file as evidence; restore it from a copy, or move the data directory aside and repair \
         the node (vhsm node repair {node})"
    )]
    Unauthentic {
        /// The file.
        path: String,
        /// This node.
        node: NodeId,
        /// The entry.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// A place where a chain does not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("line {line}{}: {reason}", seq.map(|s| format!(" (entry seq {s})")).unwrap_or_default())]
pub struct ChainBreak {
    /// The line (0-based; equal to the entry's seq in an intact log).
    pub line: u64,
    /// The seq the entry claims, if it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// A chain read from raw lines: the entries that could be read, and every break found.
#[derive(Clone, Debug, Default)]
pub struct ChainReport {
    /// Every entry that parsed (including ones whose hash is wrong).
    pub entries: Vec<Entry>,
    /// Every break, in line order; empty if the chain verifies.
    pub breaks: Vec<ChainBreak>,
    /// The hash of the last entry.
    pub head: String,
}

/// Verifies `lines` (raw lines of node `node`'s log, starting at line 0) as one chain: versions, node, seq, prev
/// and hash of every entry, version-1 entries only before the first version-2 entry, and no entry without a MAC
/// that records a completed operation. MACs are not checked here (that needs the node's storage key:
/// [`AuditLog::check_sealed`]).
pub fn verify_chain<S: AsRef<str>>(node: NodeId, lines: &[S]) -> ChainReport {
    let mut report = ChainReport {
        head: hex::encode(GENESIS),
        ..ChainReport::default()
    };
    let mut seen_v2 = false;
    for (line_no, line) in lines.iter().enumerate() {
        let line_no = line_no as u64;
        let entry = match serde_json::from_str::<Entry>(line.as_ref()) {
            Ok(e) => e,
            Err(e) => {
                report.breaks.push(ChainBreak {
                    line: line_no,
                    seq: None,
                    reason: format!("not a readable entry ({e})"),
                });
                continue;
            }
        };
        let brk = |reason: String| ChainBreak {
            line: line_no,
            seq: Some(entry.seq),
            reason,
        };
        let mut problems = Vec::new();
        match entry.v {
            FORMAT_VERSION => {
                seen_v2 = true;
                if entry.mac.is_none() && entry.records_completion() {
                    problems.push(format!(
                        "it has no MAC but records a completed operation (result '{}'): only a sealed node writes \
                         an entry without a MAC, and it completes nothing",
                        entry.result
                    ));
                }
            }
            FORMAT_VERSION_1 => {
                if seen_v2 {
                    problems.push(
                        "a version-1 entry after version-2 entries (this build never writes one)"
                            .to_string(),
                    );
                }
                if !entry.parties.is_empty() || entry.gen.is_some() || entry.mac.is_some() {
                    problems.push("a version-1 entry with version-2 fields".to_string());
                }
            }
            other => problems.push(format!("unknown format version {other}")),
        }
        if entry.node != node {
            problems.push(format!("written by node {}, not node {node}", entry.node));
        }
        if entry.seq != line_no {
            problems.push(format!(
                "seq {} where {line_no} was expected (an entry was removed, inserted or reordered)",
                entry.seq
            ));
        }
        if entry.prev != report.head {
            problems.push("its prev hash is not the previous entry's hash (an entry before it was removed, altered or reordered)".to_string());
        }
        if hex::encode(entry.compute_hash()) != entry.hash {
            problems.push("its content does not match its hash (the entry was altered)".into());
        }
        if !problems.is_empty() {
            report.breaks.push(brk(problems.join("; ")));
        }
        report.head = entry.hash.clone();
        report.entries.push(entry);
    }
    report
}

/// What one recorded request is, for its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The `op` field.
    pub op: &'static str,
    /// The key concerned.
    pub key: Option<KeyId>,
    /// The session.
    pub session: Option<SessionId>,
    /// The nodes of the session, for a protocol run over the mesh (written on its `ok` entry only; see the module
    /// docs), sorted.
    pub parties: Vec<NodeId>,
    /// SHA-256 of the request.
    pub input: [u8; 32],
    /// Whether an attempt entry is written before the work (all but the requests whose only effect is their
    /// answer; see the module docs).
    pub attempt_first: bool,
}

/// The audit description of `request`, or `None` for requests that are not recorded (reads).
pub fn describe(request: &NodeRequest) -> Option<Operation> {
    let op = request.audit_name()?;
    let (key, session) = (request.key_id(), request.session());
    // `Unseal` and `ChangeUnsealSecret` carry no secret in the clear: their HPKE envelope is hashed like any
    // request (the digest of a ciphertext tells nothing of the secret it carries).
    let encoded = match request {
        // Never a digest of a PIN: only which PIN was checked.
        NodeRequest::CheckPin { user, .. } => match user {
            vhsm_core::PinUser::User => b"check-pin/user".to_vec(),
            vhsm_core::PinUser::SecurityOfficer => b"check-pin/so".to_vec(),
        },
        // Every signer of one signature records the same input: the handle of its own nonces is left out.
        NodeRequest::SignShare {
            session,
            key_id,
            epoch,
            package,
            ..
        } => postcard::to_allocvec(&NodeRequest::SignShare {
            session: *session,
            nonce: 0,
            key_id: *key_id,
            epoch: *epoch,
            package: package.clone(),
        })
        .unwrap_or_default(),
        other => postcard::to_allocvec(other).unwrap_or_default(),
    };
    // The mesh protocols, whose completion needs a message from every node of the session.
    let mut parties: Vec<NodeId> = match request {
        NodeRequest::GenerateKey { key, .. } => key.holders.clone(),
        NodeRequest::EcdsaSign { signers, .. } => signers.clone(),
        NodeRequest::Reshare {
            dealers, committee, ..
        } => dealers.iter().chain(committee).copied().collect(),
        _ => Vec::new(),
    };
    parties.sort_unstable();
    parties.dedup();
    Some(Operation {
        op,
        key,
        session,
        parties,
        input: Sha256::digest(&encoded).into(),
        attempt_first: !matches!(
            request,
            NodeRequest::SignShare { .. }
                | NodeRequest::Evaluate { .. }
                | NodeRequest::Precommit { .. }
        ),
    })
}

/// The `result` text of an outcome.
pub fn result_text(result: Result<(), &crate::error::ServiceError>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) => {
            let mut message: String = e.to_string().chars().take(200).collect();
            message.retain(|c| c != '\n');
            format!("error {:?}: {message}", e.kind())
        }
    }
}

/// What the store says about itself, for [`AuditLog::check_sealed`].
#[derive(Clone, Debug)]
pub struct StoreView {
    /// The share database file.
    pub path: PathBuf,
    /// Its generation (0 for a store that has no metadata row yet).
    pub generation: u64,
    /// The audit head it last recorded (`entries` 0 if none).
    pub head: Head,
    /// How many key records it holds (current, staged and tombstones).
    pub key_records: usize,
}

/// What [`AuditLog::check_sealed`] found, for the node's log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealedCheck {
    /// Entries in the log.
    pub entries: u64,
    /// Entries whose MAC verified.
    pub maced: u64,
    /// Version-2 entries without a MAC (written while sealed).
    pub unmaced: u64,
    /// Version-1 entries (before the upgrade; not MACed).
    pub version_1: u64,
}

struct Chain {
    /// Bytes of the file the node wrote (its expected length).
    len: u64,
    next_seq: u64,
    head: [u8; 32],
    /// Set when a failed append could not be cut back: nothing more is appended.
    poisoned: Option<String>,
}

/// A node's audit log (see the module docs).
pub struct AuditLog {
    node: NodeId,
    path: PathBuf,
    chain: Mutex<Chain>,
    /// The number of entries known to be on disk (every seq below it was fsynced); its lock is held by the
    /// append that is running the group's fsync.
    synced: Mutex<u64>,
    /// The durable head: the entries known to be on disk and the hash of the last (what the store may record).
    durable: Mutex<Head>,
    /// The audit key, once the node is unsealed and the log checked against the store.
    key: OnceLock<AuditKey>,
    /// The store's last committed generation (written into every entry once `key` is set).
    generation: AtomicU64,
    /// Whether the file existed when the log was opened.
    existed_at_open: bool,
    /// How many entries it held then.
    entries_at_open: u64,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> AuditError {
    AuditError::Io {
        path: path.display().to_string(),
        reason: format!("{what}: {e}"),
    }
}

fn open_for_append(path: &Path, create: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).read(true).create(create);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// What is known about a torn last line (its bytes), for the warning.
fn torn_entry_says(fragment: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(fragment);
    if text.contains("\"result\":\"attempt\"") {
        "it was an attempt entry, so its operation never started (the work begins only once the attempt is on disk)"
    } else if text.contains("\"result\":\"") {
        "it was a result entry, so its operation may have run (a change to the store may have been made) but its \
         answer never left the node"
    } else {
        "its kind cannot be read: if it was an attempt entry its operation never started; if it was a result entry \
         the operation may have run (a change to the store may have been made) but its answer never left the node"
    }
}

impl AuditLog {
    /// Opens (or creates) the log at `path` for node `node` and verifies its whole chain. A torn last line is cut
    /// off; any other break is an error and the node must not serve. MACs and the store's anchor are checked once
    /// the node is unsealed ([`AuditLog::check_sealed`]).
    pub fn open(path: &Path, node: NodeId) -> Result<Self, AuditError> {
        let existed = path.exists();
        let mut file = open_for_append(path, true).map_err(|e| io_error(path, "cannot open", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io_error(path, "cannot set mode 0600", e))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| io_error(path, "cannot read", e))?;
        let mut len = bytes.len();
        if bytes.last().is_some_and(|&b| b != b'\n') {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let known = torn_entry_says(bytes.get(keep..).unwrap_or_default());
            tracing::warn!(
                path = %path.display(),
                bytes = len - keep,
                "audit log ends in a torn entry: the node stopped while appending it, before it was on disk, so the \
                 append never returned; {known}. Cutting it off"
            );
            file.set_len(keep as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(path, "cannot cut off a torn entry", e))?;
            bytes.truncate(keep);
            len = keep;
        }
        // What a crashed process wrote may still be only in the page cache: make it durable before it counts as
        // the durable head (which the store records).
        file.sync_data()
            .map_err(|e| io_error(path, "cannot fsync", e))?;
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let report = verify_chain(node, &lines);
        if let Some(problem) = report.breaks.into_iter().next() {
            return Err(AuditError::Broken {
                path: path.display().to_string(),
                problem,
            });
        }
        let head = hex32(&report.head).map_err(|e| io_error(path, "bad head hash", e))?;
        let count = lines.len() as u64;
        Ok(AuditLog {
            node,
            path: path.to_path_buf(),
            chain: Mutex::new(Chain {
                len: len as u64,
                next_seq: count,
                head,
                poisoned: None,
            }),
            synced: Mutex::new(count),
            durable: Mutex::new(Head {
                entries: count,
                hash: head,
            }),
            key: OnceLock::new(),
            generation: AtomicU64::new(0),
            existed_at_open: existed,
            entries_at_open: count,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durable head: the entries known to be on disk (fsynced), and the hash of the last of them.
    pub fn durable_head(&self) -> Head {
        match self.durable.lock() {
            Ok(head) => *head,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Tells the log the store's newest committed generation (entries carry it once the log is checked).
    pub fn note_generation(&self, generation: u64) {
        self.generation.fetch_max(generation, Ordering::SeqCst);
    }

    /// Whether entries are MACed now (the node is unsealed and the log was checked against its store).
    pub fn is_keyed(&self) -> bool {
        self.key.get().is_some()
    }

    fn lock_chain(&self) -> Result<std::sync::MutexGuard<'_, Chain>, AuditError> {
        self.chain.lock().map_err(|_| self.poisoned_lock())
    }

    fn poisoned_lock(&self) -> AuditError {
        AuditError::Io {
            path: self.path.display().to_string(),
            reason: "a lock was poisoned by a panic; restart the node".into(),
        }
    }

    /// Checks the log against the store and the node's audit key, once the node is unsealed (see the module
    /// docs, *At start*, for the four checks); if all hold, entries are MACed from now on. Appends wait meanwhile.
    pub fn check_sealed(
        &self,
        key: AuditKey,
        store: &StoreView,
    ) -> Result<SealedCheck, AuditError> {
        let path_text = self.path.display().to_string();
        let chain = self.lock_chain()?;
        let bytes =
            std::fs::read(&self.path).map_err(|e| io_error(&self.path, "cannot read", e))?;
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let report = verify_chain(self.node, &lines);
        if let Some(problem) = report.breaks.into_iter().next() {
            return Err(AuditError::Broken {
                path: path_text,
                problem,
            });
        }
        let entries = report.entries;
        let mut check = SealedCheck {
            entries: entries.len() as u64,
            ..SealedCheck::default()
        };
        // 1. Every MAC verifies.
        let mut newest: Option<(u64, u64)> = None;
        for entry in &entries {
            if entry.v == FORMAT_VERSION_1 {
                check.version_1 += 1;
                continue;
            }
            match &entry.mac {
                Some(_) if key.verifies(entry) => check.maced += 1,
                Some(_) => {
                    return Err(AuditError::Unauthentic {
                        path: path_text,
                        node: self.node,
                        seq: entry.seq,
                        reason: "its MAC does not verify under this node's audit key".into(),
                    })
                }
                None => check.unmaced += 1,
            }
            if let Some(gen) = entry.gen {
                if newest.is_none_or(|(g, _)| gen > g) {
                    newest = Some((gen, entry.seq));
                }
            }
        }
        // 2. Every entry the store recorded is there.
        let count = entries.len() as u64;
        let gone = |problem: String| AuditError::LostEntries {
            path: path_text.clone(),
            node: self.node,
            problem,
        };
        let how = if !self.existed_at_open {
            " (the file did not exist when the node started; an empty one was created)"
        } else if self.entries_at_open == 0 {
            " (it was empty when the node started)"
        } else {
            ""
        };
        if count < store.head.entries {
            return Err(gone(format!(
                "holds {count} entries, but this node's sealed store records that {} had been written (the last \
                 with hash {}…): it was truncated, emptied, removed or replaced{how}",
                store.head.entries,
                hex::encode(store.head.hash.get(..8).unwrap_or_default())
            )));
        }
        if let Some(at) = store.head.entries.checked_sub(1) {
            let found = entries
                .get(at as usize)
                .map(|e| e.hash.as_str())
                .unwrap_or("");
            if found != hex::encode(store.head.hash) {
                return Err(gone(format!(
                    "has another entry at seq {at} than the one this node's sealed store recorded (hash {}…, the \
                     log has {}…): the log was truncated and written to since, or replaced{how}",
                    hex::encode(store.head.hash.get(..8).unwrap_or_default()),
                    found.get(..16).unwrap_or(found)
                )));
            }
        }
        // 3. The store is not older than the log.
        if let Some((gen, seq)) = newest.filter(|(gen, _)| *gen > store.generation) {
            return Err(AuditError::StoreBehind {
                path: path_text,
                store: store.path.display().to_string(),
                node: self.node,
                store_generation: store.generation,
                log_generation: gen,
                seq,
            });
        }
        // 4. A store that holds keys did not start with an empty or missing log.
        if store.key_records > 0 && (!self.existed_at_open || self.entries_at_open == 0) {
            return Err(gone(format!(
                "was {} when the node started, but the share database {} holds {} key record(s), whose generation \
                 the log recorded",
                if self.existed_at_open { "empty" } else { "missing" },
                store.path.display(),
                store.key_records
            )));
        }
        self.note_generation(store.generation);
        let _ = self.key.set(key);
        drop(chain);
        Ok(check)
    }

    /// Appends one entry and returns once it is on disk (fsynced, possibly by the fsync of a concurrent append).
    /// An error means the entry may not be in the log: the caller must fail.
    pub fn append(
        &self,
        operation: &Operation,
        requester: &str,
        purpose: &str,
        result: String,
    ) -> Result<Entry, AuditError> {
        let (entry, file, end) = self.write(operation, requester, purpose, result)?;
        self.sync_through(end, &file)?;
        Ok(entry)
    }

    /// Makes every entry below seq `end` durable. `file` is an open handle of the log (an fsync through any
    /// handle of the file covers every write made to it before the fsync began).
    fn sync_through(&self, end: u64, file: &File) -> Result<(), AuditError> {
        let path = &self.path;
        let mut synced = self.synced.lock().map_err(|_| self.poisoned_lock())?;
        if *synced >= end {
            return Ok(());
        }
        // Everything written so far is covered by the fsync that starts now.
        let target = {
            let chain = self.lock_chain()?;
            if let Some(why) = &chain.poisoned {
                return Err(io_error(path, "no longer writable", why));
            }
            Head {
                entries: chain.next_seq,
                hash: chain.head,
            }
        };
        if let Err(e) = file.sync_data() {
            if let Ok(mut chain) = self.chain.lock() {
                chain.poisoned = Some(format!(
                    "an fsync failed ({e}): what reached the disk is unknown; restart the node to verify the log"
                ));
            }
            return Err(io_error(path, "cannot fsync", e));
        }
        *synced = target.entries;
        if let Ok(mut durable) = self.durable.lock() {
            if durable.entries < target.entries {
                *durable = target;
            }
        }
        Ok(())
    }

    /// Writes one entry (not yet fsynced): the entry, the handle it was written through, and the seq after it.
    fn write(
        &self,
        operation: &Operation,
        requester: &str,
        purpose: &str,
        result: String,
    ) -> Result<(Entry, File, u64), AuditError> {
        let path = &self.path;
        let mut chain = self.lock_chain()?;
        if let Some(why) = &chain.poisoned {
            return Err(io_error(path, "no longer writable", why));
        }
        let key = self.key.get();
        if key.is_none() && result != "attempt" && !result.starts_with("error") {
            // Never reached by the node (a sealed node completes nothing); an entry like this would not verify.
            return Err(io_error(
                path,
                "refused",
                "a sealed node records no completed operation (the log has no audit key yet)",
            ));
        }
        let mut entry = Entry {
            v: FORMAT_VERSION,
            node: self.node,
            seq: chain.next_seq,
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            prev: hex::encode(chain.head),
            op: operation.op.to_string(),
            requester: requester.to_string(),
            purpose: purpose.to_string(),
            key: operation.key.map(|k| k.to_string()),
            session: operation.session.map(|s| s.to_hex()),
            // Only a completed run proves that every node of the session took part.
            parties: if result == "ok" {
                operation.parties.clone()
            } else {
                Vec::new()
            },
            input: hex::encode(operation.input),
            result,
            gen: key.map(|_| self.generation.load(Ordering::SeqCst)),
            hash: String::new(),
            mac: None,
        };
        let hash = entry.compute_hash();
        entry.hash = hex::encode(hash);
        if let Some(key) = key {
            let mac = key
                .mac(self.node, &hash)
                .ok_or_else(|| io_error(path, "cannot MAC", "HMAC refused the audit key"))?;
            entry.mac = Some(hex::encode(mac));
        }
        let mut line =
            serde_json::to_vec(&entry).map_err(|e| io_error(path, "cannot encode", e))?;
        line.push(b'\n');

        let mut file =
            open_for_append(path, false).map_err(|e| io_error(path, "cannot open", e))?;
        let on_disk = file
            .metadata()
            .map_err(|e| io_error(path, "cannot stat", e))?
            .len();
        if on_disk != chain.len {
            return Err(io_error(
                path,
                "changed behind the node's back",
                format!(
                    "{on_disk} bytes where the node wrote {}; restart the node to verify it",
                    chain.len
                ),
            ));
        }
        if let Err(e) = file.write_all(&line) {
            // Cut back whatever part was written, so that the chain stays whole.
            if let Err(cut) = file.set_len(chain.len).and_then(|()| file.sync_all()) {
                chain.poisoned = Some(format!(
                    "an append failed ({e}) and could not be cut back ({cut})"
                ));
            }
            return Err(io_error(path, "cannot write", e));
        }
        chain.len += line.len() as u64;
        chain.next_seq += 1;
        chain.head = hash;
        Ok((entry, file, chain.next_seq))
    }

    /// Raw lines from `from_line`, at most `max_lines` (and about 2 MiB).
    pub fn page(&self, from_line: u64, max_lines: u32) -> Result<AuditPage, AuditError> {
        let path = &self.path;
        let bytes = std::fs::read(path).map_err(|e| io_error(path, "cannot read", e))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = Vec::new();
        let mut size = 0usize;
        let mut all = text
            .lines()
            .skip(usize::try_from(from_line).unwrap_or(usize::MAX));
        let mut end = true;
        for line in all.by_ref() {
            if lines.len() >= max_lines.min(vhsm_wire::node_api::MAX_PAGE_LINES) as usize
                || (size + line.len() > MAX_PAGE_BYTES && !lines.is_empty())
            {
                end = false;
                break;
            }
            size += line.len();
            lines.push(line.to_string());
        }
        Ok(AuditPage {
            node: self.node,
            first_line: from_line,
            lines,
            end,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// Gives `log` the audit key of `storage`, as unsealing does (checked against an empty store).
    fn keyed(log: &AuditLog, storage: &StorageKey) -> Result<SealedCheck, AuditError> {
        log.check_sealed(AuditKey::derive(storage), &empty_store())
    }

    fn empty_store() -> StoreView {
        StoreView {
            path: PathBuf::from("shares.redb"),
            generation: 0,
            head: Head::default(),
            key_records: 0,
        }
    }

    fn op(n: u8) -> Operation {
        Operation {
            op: "sign",
            key: Some(KeyId([n; 16])),
            session: Some(SessionId([n; 32])),
            parties: vec![1, 2],
            input: [n; 32],
            attempt_first: true,
        }
    }

    fn lines_of(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn appends_verify_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let storage = StorageKey::generate();
        let log = AuditLog::open(&path, 2).unwrap();
        keyed(&log, &storage).unwrap();
        for i in 0..5u8 {
            log.append(&op(i), "alice (user)", "sign", "attempt".into())
                .unwrap();
        }
        drop(log);
        let log = AuditLog::open(&path, 2).unwrap();
        assert_eq!(keyed(&log, &storage).unwrap().maced, 5);
        let e = log
            .append(&op(9), "alice (user)", "sign", "ok".into())
            .unwrap();
        assert_eq!(e.seq, 5);
        assert_eq!(e.v, FORMAT_VERSION);
        assert_eq!(e.parties, vec![1, 2], "an ok entry names the parties");
        assert!(e.mac.is_some() && e.gen == Some(0));
        assert_eq!(log.durable_head().entries, 6);
        assert_eq!(hex::encode(log.durable_head().hash), e.hash);
        let page = log.page(0, 100).unwrap();
        assert!(page.end);
        let report = verify_chain(2, &page.lines);
        assert!(report.breaks.is_empty(), "{:?}", report.breaks);
        assert_eq!(report.entries.len(), 6);
        assert!(
            report.entries[..5].iter().all(|e| e.parties.is_empty()),
            "attempt entries prove nothing about the other parties"
        );
        // Another node's id: every entry is named.
        assert_eq!(verify_chain(3, &page.lines).breaks.len(), 6);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn concurrent_appends_share_fsyncs_and_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let storage = StorageKey::generate();
        let log = std::sync::Arc::new(AuditLog::open(&path, 1).unwrap());
        keyed(&log, &storage).unwrap();
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    (0..40)
                        .map(|_| {
                            log.append(&op(t), "bob (user)", "sign", "ok".into())
                                .unwrap()
                                .seq
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (0..320).collect::<Vec<_>>(),
            "every append got its own seq"
        );
        // Every returned append is durable and counted as synced, and the durable head is the last entry.
        assert_eq!(*log.synced.lock().unwrap(), 320);
        assert_eq!(log.durable_head().entries, 320);
        drop(log);
        let log = AuditLog::open(&path, 1).unwrap();
        assert_eq!(keyed(&log, &storage).unwrap().maced, 320);
        let report = verify_chain(1, &log.page(0, 1000).unwrap().lines);
        assert!(report.breaks.is_empty(), "{:?}", report.breaks);
        assert_eq!(report.entries.len(), 320);
        assert_eq!(hex::encode(log.durable_head().hash), report.head);
    }

    #[test]
    fn a_flipped_byte_is_named_and_the_node_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(&path, 1).unwrap();
        keyed(&log, &StorageKey::generate()).unwrap();
        for i in 0..4u8 {
            log.append(&op(i), "bob (user)", "sign", "ok".into())
                .unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let lines: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        // A byte inside the requester of entry 2.
        let start = lines[1] + 1;
        let at = start + bytes[start..].windows(3).position(|w| w == b"bob").unwrap();
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let lines: Vec<&str> = text.lines().collect();
        let report = verify_chain(1, &lines);
        assert_eq!(report.breaks.len(), 1, "{:?}", report.breaks);
        assert_eq!(report.breaks[0].line, 2);
        assert_eq!(report.breaks[0].seq, Some(2));
        // The node sees it too, and names the entry.
        drop(log);
        let err = AuditLog::open(&path, 1).unwrap_err().to_string();
        assert!(err.contains("line 2 (entry seq 2)"), "{err}");
    }

    #[test]
    fn a_torn_tail_is_cut_and_an_unwritable_log_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let storage = StorageKey::generate();
        let log = AuditLog::open(&path, 1).unwrap();
        keyed(&log, &storage).unwrap();
        log.append(&op(1), "c", "", "ok".into()).unwrap();
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"v\":2,\"node\"").unwrap();
        drop(f);
        let log = AuditLog::open(&path, 1).unwrap();
        keyed(&log, &storage).unwrap();
        log.append(&op(2), "c", "", "ok".into()).unwrap();
        assert!(verify_chain(1, &log.page(0, 10).unwrap().lines)
            .breaks
            .is_empty());
        // Replaced by a directory (works as root too): every append fails, naming the log.
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        std::fs::create_dir(&path).unwrap();
        let err = log.append(&op(3), "c", "", "attempt".into()).unwrap_err();
        assert!(err.to_string().contains("audit log"), "{err}");
        // Appended to behind its back: refused.
        std::fs::remove_dir(&path).unwrap();
        std::fs::rename(dir.path().join("moved"), &path).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"x\n").unwrap();
        let err = log.append(&op(3), "c", "", "attempt".into()).unwrap_err();
        assert!(err.to_string().contains("behind"), "{err}");
    }

    /// Issue 14, item 8: the warning about a torn entry says what is known, not that its operation never ran.
    #[test]
    fn a_torn_entry_is_described_truthfully() {
        let attempt = br#"{"v":2,"node":1,"seq":4,"time":1,"prev":"00","op":"destroy","requester":"c","purpose":"","key":null,"session":null,"parties":[],"input":"ab","result":"attempt","ge"#;
        assert!(torn_entry_says(attempt).contains("never started"));
        let result = br#"{"v":2,"node":1,"seq":5,"time":1,"prev":"00","op":"destroy","requester":"c","purpose":"","key":null,"session":null,"parties":[],"input":"ab","result":"ok","gen":3,"ha"#;
        let says = torn_entry_says(result);
        assert!(
            says.contains("may have run") && !says.contains("never started"),
            "{says}"
        );
        let unknown = torn_entry_says(br#"{"v":2,"node":1,"se"#);
        assert!(
            unknown.contains("may have run") && unknown.contains("never started"),
            "{unknown}"
        );
    }

    /// Issue 14, item 8: entries are MACed under a key derived from the storage key; a log whose chain was
    /// recomputed without it, or checked under another node's key, is refused, naming the entry.
    #[test]
    fn a_recomputed_chain_without_the_storage_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let storage = StorageKey::generate();
        let log = AuditLog::open(&path, 1).unwrap();
        // Written while sealed: no MAC, no generation.
        let sealed = log.append(&op(0), "c", "", "attempt".into()).unwrap();
        assert!(sealed.mac.is_none() && sealed.gen.is_none());
        // A sealed node records no completed operation: an unMACed `ok` would not verify, so it is refused.
        let err = log.append(&op(0), "c", "", "ok".into()).unwrap_err();
        assert!(err.to_string().contains("sealed"), "{err}");
        let check = keyed(&log, &storage).unwrap();
        assert_eq!((check.unmaced, check.maced), (1, 0));
        for i in 1..5u8 {
            log.append(&op(i), "bob (user)", "sign", "ok".into())
                .unwrap();
        }
        drop(log);
        // Under another storage key (another node's, a log copied here): the first MACed entry is named.
        let log = AuditLog::open(&path, 1).unwrap();
        let err = keyed(&log, &StorageKey::generate()).unwrap_err();
        assert!(
            matches!(err, AuditError::Unauthentic { seq: 1, .. }),
            "{err}"
        );
        assert!(!log.is_keyed(), "a refused log is not keyed");
        drop(log);
        // Entry 2 altered and the chain recomputed after it (as someone without the storage key can): the
        // chain verifies, the MAC does not.
        let mut entries: Vec<Entry> = lines_of(&path)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        entries[2].requester = "mallory (user)".into();
        let mut prev = entries[1].hash.clone();
        for e in entries.iter_mut().skip(2) {
            e.prev = prev;
            e.hash = hex::encode(e.compute_hash());
            prev = e.hash.clone();
        }
        let lines: Vec<String> = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        write_lines(&path, &lines);
        assert!(verify_chain(1, &lines).breaks.is_empty());
        let log = AuditLog::open(&path, 1).unwrap();
        let err = keyed(&log, &storage).unwrap_err();
        assert!(
            matches!(err, AuditError::Unauthentic { seq: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("vhsm node repair 1"), "{err}");
        // Stripping the MACs instead: an unMACed entry may not record a completed operation.
        let stripped: Vec<String> = entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.mac = None;
                serde_json::to_string(&e).unwrap()
            })
            .collect();
        let report = verify_chain(1, &stripped);
        assert_eq!(report.breaks.len(), 4, "{:?}", report.breaks);
        assert!(
            report.breaks[0].reason.contains("no MAC"),
            "{:?}",
            report.breaks
        );
    }

    /// Issue 14, item 8: a log written before entries were MACed (format version 1) still opens: its entries are
    /// accepted, unMACed, before the first version-2 entry — and only there.
    #[test]
    fn a_version_1_log_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let mut prev = hex::encode(GENESIS);
        let mut lines = Vec::new();
        for seq in 0..3u64 {
            let mut e = Entry {
                v: FORMAT_VERSION_1,
                node: 1,
                seq,
                time: 1_700_000_000 + seq,
                prev: prev.clone(),
                op: "sign".into(),
                requester: "alice (user)".into(),
                purpose: "sign".into(),
                key: Some(KeyId([7; 16]).to_string()),
                session: Some(SessionId([seq as u8; 32]).to_hex()),
                parties: Vec::new(),
                input: hex::encode([1u8; 32]),
                result: "ok".into(),
                gen: None,
                hash: String::new(),
                mac: None,
            };
            e.hash = hex::encode(e.compute_hash());
            prev = e.hash.clone();
            // Written as the first release wrote them: without the version-2 fields.
            let mut json: serde_json::Value = serde_json::to_value(&e).unwrap();
            let object = json.as_object_mut().unwrap();
            for field in ["parties", "gen", "mac"] {
                object.remove(field);
            }
            lines.push(serde_json::to_string(&json).unwrap());
        }
        write_lines(&path, &lines);
        let storage = StorageKey::generate();
        let log = AuditLog::open(&path, 1).unwrap();
        let check = keyed(&log, &storage).unwrap();
        assert_eq!((check.version_1, check.maced), (3, 0));
        let e = log.append(&op(4), "c", "", "ok".into()).unwrap();
        assert_eq!((e.v, e.seq), (FORMAT_VERSION, 3));
        drop(log);
        let log = AuditLog::open(&path, 1).unwrap();
        assert_eq!(keyed(&log, &storage).unwrap().maced, 1);
        drop(log);
        // A version-1 entry after a version-2 one is a break (this build never writes one).
        let mut all = lines_of(&path);
        let v1_again = {
            let mut e: Entry = serde_json::from_str(&lines[2]).unwrap();
            e.seq = 4;
            e.prev = serde_json::from_str::<Entry>(&all[3]).unwrap().hash;
            e.hash = hex::encode(e.compute_hash());
            serde_json::to_string(&e).unwrap()
        };
        all.push(v1_again);
        let report = verify_chain(1, &all);
        assert_eq!(report.breaks.len(), 1, "{:?}", report.breaks);
        assert!(report.breaks[0].reason.contains("version-1 entry after"));
        // A version-1 entry given version-2 fields (outside its hash) is a break too.
        let mut dressed: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        dressed["parties"] = serde_json::json!([3]);
        let report = verify_chain(1, &[serde_json::to_string(&dressed).unwrap()]);
        assert!(report.breaks[0].reason.contains("version-2 fields"));
    }

    /// The checks against the store: a log shorter than the store's head, another entry at the head, an entry
    /// recording a newer generation than the store's, and an empty log beside a store with keys.
    #[test]
    fn the_log_is_checked_against_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let storage = StorageKey::generate();
        let log = AuditLog::open(&path, 1).unwrap();
        keyed(&log, &storage).unwrap();
        log.note_generation(4);
        for i in 0..6u8 {
            log.append(&op(i), "c", "", "ok".into()).unwrap();
        }
        let head = log.durable_head();
        drop(log);
        let store = |generation: u64, head: Head, key_records: usize| StoreView {
            path: dir.path().join("shares.redb"),
            generation,
            head,
            key_records,
        };
        let check = |view: &StoreView| {
            AuditLog::open(&path, 1)
                .unwrap()
                .check_sealed(AuditKey::derive(&storage), view)
        };
        check(&store(4, head, 1)).unwrap();
        // The store older than the log.
        let err = check(&store(3, head, 1)).unwrap_err();
        assert!(
            matches!(
                err,
                AuditError::StoreBehind {
                    store_generation: 3,
                    log_generation: 4,
                    seq: 0,
                    ..
                }
            ),
            "{err}"
        );
        // A head the log does not reach, or another entry at it.
        let err = check(&store(4, Head { entries: 7, ..head }, 1)).unwrap_err();
        assert!(
            err.to_string().contains("holds 6 entries") && err.to_string().contains("7 had been"),
            "{err}"
        );
        let err = check(&store(4, Head { entries: 5, ..head }, 1)).unwrap_err();
        assert!(err.to_string().contains("another entry at seq 4"), "{err}");
        // Emptied: named as such.
        std::fs::write(&path, b"").unwrap();
        let err = check(&store(4, head, 1)).unwrap_err();
        assert!(
            err.to_string()
                .contains("it was empty when the node started"),
            "{err}"
        );
        let err = check(&store(0, Head::default(), 1)).unwrap_err();
        assert!(
            err.to_string().contains("was empty when the node started"),
            "{err}"
        );
        // A store without keys may start on an empty log (a new node).
        check(&store(0, Head::default(), 0)).unwrap();
    }
}
